"""Cluster expansions from other codes (icet, CLEASE) as lattherm's CE JSON.

What a source gives: its primitive cell, the two species, and per cluster type one representative cluster (site
positions in angstrom) with its ECI. What lattherm derives from positions alone: the Bravais lattice and its
constant (:func:`lattherm.engine.lattices.identify_bravais`), and every figure of the cluster's orbit that contains
the origin (:meth:`Lattice.cluster_figures`, from the lattice's point group) -- checked against the source's own
multiplicity, so a figure list that differs from the library's is an error, not a silently different model.

Both libraries define the energy per site as E/N = sum_alpha J_alpha <Phi_alpha>, the average over the orbit's
clusters of products of +-1 site functions for a binary; that is lattherm's E_raw / N with spin +1 on the species
whose point function is +1, so the file records ``energy_definition = "raw"``. icet and CLEASE are optional (the
``ce`` extra); they are imported only here, and only to read their own files.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np

from ..errors import LatthermError
from ..lattices import identify_bravais, lattice_for


def _need(module: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise LatthermError(f"reading this file needs the {module} package (pip install 'lattherm[ce]')") from None


def build_ce_json(prim_cell, species: tuple[str, str], clusters: list[dict], meta: dict) -> dict:
    """Our CE JSON from a primitive cell (rows, angstrom), species [spin -1, spin +1] and clusters
    [{name, eci_key, eci, positions (k, 3) angstrom or None for the empty cluster, multiplicity (figures per site
    expected, optional)}]."""
    kind, a = identify_bravais(prim_cell)
    unit = lattice_for(kind, (1, 1, 1), a)
    eci, out = {}, []
    for c in clusters:
        key, name = str(c["eci_key"]), str(c["name"])
        if key in eci:
            raise LatthermError(f"{meta.get('source', 'the source')}: two clusters share the ECI name {key!r}")
        eci[key] = float(c["eci"])
        pos = c.get("positions")
        if pos is None:
            out.append({"name": name, "eci_key": key, "size": 0, "description": "empty cluster (constant)"})
            continue
        pos = np.asarray(pos, dtype=np.float64).reshape(-1, 3)
        if len(pos) == 1:
            out.append({"name": name, "eci_key": key, "size": 1, "description": "point cluster"})
            continue
        figures = unit.cluster_figures(pos / unit.unit_length)
        want = c.get("figures_per_site")
        if want is not None and int(want) != len(figures):
            raise LatthermError(f"{meta.get('source', 'the source')}: cluster {name!r} has {want} figures per site "
                                f"there but {len(figures)} in the {kind} lattice's orbit (a merged or lower-symmetry "
                                "orbit is not supported)")
        diameter = max(np.linalg.norm(p - q) for p in pos for q in pos)
        out.append({"name": name, "eci_key": key, "size": int(len(pos)), "n_figures_per_site": int(len(figures)),
                    "diameter_angstrom": float(diameter),
                    "figures_offsets_in_units_of_half_a": figures.astype(int).tolist()})
    return {**meta, "species": list(species),
            "lattice": {"kind": kind, "conventional_lattice_constant_angstrom": float(a),
                        "primitive_vectors_in_units_of_half_a": unit.vectors.astype(int).tolist()},
            "energy_definition": "raw", "eci_eV_per_site": eci, "clusters": out}


def _binary(symbols, source: str) -> list[str]:
    syms = [str(s) for s in symbols]
    if len(syms) != 2:
        raise LatthermError(f"{source}: lattherm imports binary cluster expansions; this one has species "
                            f"{syms} on its site")
    return syms


# ---- icet -------------------------------------------------------------------------------------------------------
def from_icet(path) -> dict:
    """An icet ``ClusterExpansion`` file (``ce.write``) of a binary, one-site system -> CE JSON."""
    icet = _need("icet")
    source = repr(str(path))
    if not Path(path).is_file():
        raise LatthermError(f"{source}: no such icet cluster-expansion file")
    try:
        ce = icet.ClusterExpansion.read(str(path))
    except Exception as exc:  # noqa: BLE001 - a corrupt archive raises anything from tarfile to pickle
        raise LatthermError(f"{source}: not a readable icet ClusterExpansion file ({type(exc).__name__})") from None
    cs = ce.get_cluster_space_copy()
    prim = cs.primitive_structure
    if len(prim) != 1:
        raise LatthermError(f"{source}: the primitive cell has {len(prim)} sites; lattherm handles one-site "
                            "(single-sublattice) lattices only")
    species = _binary(cs.chemical_symbols[0], source)
    # spin +1 is the species whose point function is +1 (icet's basis for a binary is +-1)
    point = {}
    for x in species:
        pure = prim.copy()
        pure.set_chemical_symbols([x])
        point[x] = float(cs.get_cluster_vector(pure)[1])
    plus = [x for x in species if point[x] > 0.5]
    if sorted(abs(v) for v in point.values()) != [1.0, 1.0] or len(plus) != 1:
        raise LatthermError(f"{source}: icet's point functions {point} are not a +-1 spin basis")
    minus = [x for x in species if x != plus[0]][0]
    params = np.asarray(ce.parameters, dtype=np.float64)
    mult = cs.get_multiplicities()
    orbits = cs.orbit_list.orbits
    if len(params) != len(orbits) + 1:
        raise LatthermError(f"{source}: {len(params)} parameters for {len(orbits)} orbits + the zerolet")
    clusters = [{"name": "zerolet", "eci_key": "icet_0", "eci": params[0], "positions": None}]
    for i, orbit in enumerate(orbits):
        pos = np.asarray(cs.get_coordinates_of_representative_cluster(i), dtype=np.float64)
        clusters.append({"name": f"icet_orbit_{i}_order_{orbit.order}", "eci_key": f"icet_{i + 1}",
                         "eci": params[i + 1], "positions": pos, "figures_per_site": int(mult[i + 1]) * orbit.order})
    meta = {"title": f"{minus}{plus[0]} cluster expansion imported from icet",
            "source": {"code": "icet", "version": str(getattr(icet, "__version__", "?")), "file": str(path)}}
    return build_ce_json(prim.cell[:], (minus, plus[0]), clusters, meta)


# ---- CLEASE -----------------------------------------------------------------------------------------------------
def _read_json(path, name: str, article: str):
    """The parsed JSON file of a ``name`` input; a missing or unreadable one is one line naming it."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LatthermError(f"{str(path)!r}: no such {name} file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LatthermError(f"{str(path)!r}: not {article} {name} JSON ({type(exc).__name__})") from None


def _clease_settings(path):
    """CLEASE settings from their JSON (``settings.save``); the database it names is read from a temporary copy,
    so importing never writes the user's files."""
    _need("clease")
    from clease.settings import settings_from_json

    source = repr(str(path))
    dct = _read_json(path, "CLEASE settings", "a")
    if not isinstance(dct, dict) or dct.get("__clease_objtype__") != "ce_settings":
        raise LatthermError(f"{source}: not a CLEASE settings file (save one with settings.save('settings.json'))")
    tmp = Path(tempfile.mkdtemp(prefix="lattherm-clease-"))
    db = Path(str(dct.get("db_name", "")))
    if not db.is_absolute():
        db = Path(path).parent / db
    try:
        if db.is_file():
            shutil.copy(db, tmp / "clease.db")
        dct["db_name"] = str(tmp / "clease.db")
        try:
            (tmp / "settings.json").write_text(json.dumps(dct), encoding="utf-8")
            settings = settings_from_json(str(tmp / "settings.json"))
            settings.cluster_list  # noqa: B018 - builds the clusters now, while the copy exists
        except LatthermError:
            raise
        except Exception as exc:  # noqa: BLE001 - CLEASE raises many kinds on foreign input
            raise LatthermError(f"{source}: CLEASE cannot load these settings ({type(exc).__name__}: {exc})") from None
        return settings, tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def from_clease(settings_path, eci_path) -> dict:
    """CLEASE settings (their JSON, with the database it names) + an ECI JSON {cf name: value} -> CE JSON."""
    source = repr(str(settings_path))
    if eci_path is None:
        raise LatthermError("a CLEASE import needs --eci ECI.json (the fitted ECIs by cluster name)")
    ecis = _read_json(eci_path, "ECI", "an")
    if not isinstance(ecis, dict) or not ecis:
        raise LatthermError(f"{str(eci_path)!r}: the ECI file must map cluster names to numbers")
    settings, tmp = _clease_settings(settings_path)
    try:
        prim = settings.prim_cell
        if len(prim) != 1 or len(settings.basis_elements) != 1:
            raise LatthermError(f"{source}: the primitive cell has {len(prim)} sites in "
                                f"{len(settings.basis_elements)} basis; lattherm handles one-site lattices only")
        species = _binary(settings.basis_elements[0], source)
        bf = settings.basis_functions
        if len(bf) != 1 or sorted(bf[0].values()) != [-1.0, 1.0]:
            raise LatthermError(f"{source}: CLEASE basis {settings.basis_func_type.name!r} gives site functions "
                                f"{bf}; lattherm imports a +-1 spin basis (polynomial) only")
        plus = [x for x in species if bf[0][x] > 0][0]
        minus = [x for x in species if x != plus][0]
        by_name = {c.name: c for c in settings.cluster_list}
        clusters = []
        for key, value in ecis.items():
            name, _, dec = str(key).rpartition("_") if str(key) != "c0" else ("c0", "", "")
            c = by_name.get(name)
            if c is None:
                raise LatthermError(f"{str(eci_path)!r}: ECI {key!r} names no cluster of the CLEASE settings")
            if dec and set(dec) != {"0"}:
                raise LatthermError(f"{str(eci_path)!r}: ECI {key!r} has decoration {dec}; a binary has only 0")
            try:
                value = float(value)
            except (TypeError, ValueError):
                raise LatthermError(f"{str(eci_path)!r}: ECI {key!r} is not a number") from None
            if c.size == 0:
                pos = None
            else:
                fig = c.figures[0]
                pos = np.array([np.array([v.ix, v.iy, v.iz]) @ prim.cell[:] + prim.positions[v.sublattice]
                                for v in fig.components])
            clusters.append({"name": name, "eci_key": str(key), "eci": value, "positions": pos,
                             "figures_per_site": len(c.figures) if c.size >= 2 else None})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    import clease

    meta = {"title": f"{minus}{plus} cluster expansion imported from CLEASE",
            "source": {"code": "clease", "version": str(getattr(clease, "__version__", "?")),
                       "settings": str(settings_path), "eci": str(eci_path)}}
    return build_ce_json(prim.cell[:], (minus, plus), clusters, meta)


IMPORTERS = ("icet", "clease")


def import_ce(path, source: str, eci=None) -> dict:
    """Dispatch on ``source`` ('icet' or 'clease'); the returned JSON is checked by building a system from it."""
    if source == "icet":
        return from_icet(path)
    if source == "clease":
        return from_clease(path, eci)
    raise LatthermError(f"unknown cluster-expansion source {source!r} (choose from: {', '.join(IMPORTERS)})")


__all__ = ["IMPORTERS", "build_ce_json", "from_icet", "from_clease", "import_ce"]
