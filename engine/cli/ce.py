"""``lattherm ce import FILE --from icet|clease --out CE.json`` and ``lattherm ce energy CE.json STRUCTURES``:
bring a cluster expansion fitted elsewhere, and check it on structures in the source code's own energy definition."""

from __future__ import annotations

import json

NAME = "ce"


def add_parser(sub):
    p = sub.add_parser(NAME, help="cluster-expansion files: import from icet / CLEASE, energies of structures")
    ce_sub = p.add_subparsers(dest="ce_command", required=True, metavar="{import,energy}")
    i = ce_sub.add_parser("import", help="convert an icet ClusterExpansion file or CLEASE settings + ECIs into a "
                          "lattherm CE JSON (binary, one-site lattice)")
    i.add_argument("file", metavar="FILE", help="icet: the file ce.write made; clease: settings JSON "
                   "(settings.save), next to the database it names")
    i.add_argument("--from", dest="source", required=True, help="icet or clease")
    i.add_argument("--eci", help="clease: the ECI JSON {cluster name: value}")
    i.add_argument("--out", required=True, help="the CE .json to write")
    e = ce_sub.add_parser("energy", help="energy per site of every structure of an ASE-readable file, in the "
                          "CE source's own definition")
    e.add_argument("ce", metavar="CE.json")
    e.add_argument("structures", metavar="STRUCTURES", help="a file (all frames) or a folder of files")
    e.add_argument("--format", help="the structure format as ase.io names it (default: ASE's guess)")
    e.add_argument("--json", action="store_true")
    return p


def run(args) -> int:
    from ..tasks.ce import ce_energies, ce_import

    if args.ce_command == "import":
        res = ce_import(args.file, args.source, args.out, args.eci)
        print(f"wrote {res.path}: {'/'.join(res.species)} on {res.lattice} (a = {res.lattice_constant:g} A), "
              f"{res.clusters} clusters")
        return 0
    d = ce_energies(args.ce, args.structures, args.format)
    if args.json:
        print(json.dumps(d))
    else:
        print(f"# {d['ce']}: energy per site in eV ({d['definition']} definition)")
        for r in d["structures"]:
            print(f"{r['index']:>5}  {r['supercell']:>8}  {r['energy_per_site_eV']:.12g}")
    return 0
