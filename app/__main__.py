"""``python -m lattherm.app``: same as ``lattherm-gui``."""

from lattherm.app.main import main

if __name__ == "__main__":
    raise SystemExit(main())
