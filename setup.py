"""Maps the top-level engine/, app/ and resources/ folders onto lattherm.engine, lattherm.app and
lattherm.resources, so nothing generic like `engine` lands in site-packages. Metadata is in pyproject.toml."""

from setuptools import find_packages, setup

MAPPED = {"engine": "lattherm.engine", "app": "lattherm.app"}

packages, package_dir = [], {}
for folder, name in MAPPED.items():
    package_dir[name] = folder
    packages.append(name)
    for sub in find_packages(folder):
        packages.append(f"{name}.{sub}")
        package_dir[f"{name}.{sub}"] = f"{folder}/{sub.replace('.', '/')}"
packages.append("lattherm.resources")
package_dir["lattherm.resources"] = "resources"

setup(
    packages=packages,
    package_dir=package_dir,
    package_data={"lattherm.resources": ["**/*"], "lattherm.app": ["**/*.svg", "**/*.png", "**/*.qss"]},
    include_package_data=True,
)
