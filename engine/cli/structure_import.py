"""``lattherm import STRUCTURES --system CE_OR_NAME --out CONFIGS.npz``: ASE-readable supercells of a system's
lattice as a samples file (every site mapped; foreign species or another lattice is one line, exit 2)."""

from __future__ import annotations

NAME = "import"


def add_parser(sub):
    p = sub.add_parser(NAME, help="read atomic structures (any ASE-readable file or a folder of them) of an alloy "
                       "system's lattice into a samples .npz")
    p.add_argument("structures", metavar="STRUCTURE_FILE", help="a file (all its frames) or a folder of files")
    p.add_argument("--system", required=True, help="a catalog alloy (cuau, feco) or a cluster-expansion .json")
    p.add_argument("--out", required=True, help="the samples .npz to write")
    p.add_argument("--format", help="the file format as ase.io names it (default: ASE's guess)")
    p.add_argument("--T", type=float, default=float("nan"), help="temperature for log_f (optional)")
    p.add_argument("--mu", type=float, default=float("nan"), help="chemical potential for log_f (optional)")
    return p


def run(args) -> int:
    from ..tasks.structure_import import import_structures

    res = import_structures(args.structures, args.system, args.out, args.T, args.mu, args.format)
    print(f"wrote {res.frames} {res.system} configurations on the {res.size} supercell to {res.path}")
    return 0
