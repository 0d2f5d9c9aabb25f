"""Cross-check and time the three exact solvers; print the paper-grid floors of -log Z.

Run:  .venv/bin/python benchmarks/exact_solvers.py            (about a minute on 2 cores)
      .venv/bin/python benchmarks/exact_solvers.py --wide     (adds the 14x14 grid, a few minutes)
      .venv/bin/python benchmarks/exact_solvers.py --tn       (adds the tensor-network table: ~10 minutes on an idle
                                                                 core, the 64x64 T_c row at chi 32/40 most of it)

Prints (1) Kaufman / transfer matrix / enumeration log Z side by side with their largest pairwise difference and
each method's time, (2) the 10x10-with-field timing (log Z, <E>, <M>, C), (3) the mean of -log Z over the paper's
25 conditions (mu in {-0.4..0.4} x kT in {1.5..3.5}) against the values quoted in docs/SCIENCE.md (beyond the
transfer matrix's width by the tensor network, log Z only), (4, --tn) the HOTRG tensor network against Kaufman and
the transfer matrix: true |error of log Z| / N next to the reported estimate, and seconds per condition.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

from lattherm.engine.errors import LatthermError
from lattherm.engine.exact import (
    MAX_TM_WIDTH,
    exact_grid,
    exact_reference,
    kaufman_log_z,
    tensor_network,
    transfer_matrix,
)
from lattherm.engine.systems.ising import Ising

T_C = 2.0 / math.log(1.0 + math.sqrt(2.0))
PAPER_GRID = [(kT, mu) for mu in (-0.4, -0.2, 0.0, 0.2, 0.4) for kT in (1.5, 2.0, 2.5, 3.0, 3.5)]
SCIENCE_FLOORS = {(5, 5): -26.2646, (10, 10): -104.7294, (20, 20): -418.7087}

CASES = [((4, 4), 3.0, 0.0), ((4, 4), 2.0, 0.2), ((3, 5), T_C, 0.0), ((4, 5), 1.5, -0.4),
         ((4, 5), 3.5, 0.0), ((4, 6), 2.5, 0.2), ((4, 6), T_C, 0.0)]
METHODS = ("kaufman", "transfer_matrix", "enumeration")


def timed(fn, *args, **kw):
    t = time.perf_counter()
    out = fn(*args, **kw)
    return out, time.perf_counter() - t


def cross_check() -> None:
    print("1. Cross-check: log Z by each method (time in s); '-' = method not applicable")
    head = f"{'size':>6} {'kT':>7} {'mu':>5} | " + " | ".join(f"{m:>24}" for m in METHODS) + " | max |diff|"
    print(head)
    print("-" * len(head))
    for size, T, mu in CASES:
        system = Ising(size)
        cells, values = [], []
        for method in METHODS:
            try:
                r, dt = timed(exact_reference, system, T, mu, method=method)
            except LatthermError:
                cells.append(f"{'-':>24}")
                continue
            values.append(r.log_Z)
            cells.append(f"{r.log_Z:16.10f} ({dt:5.2f})")
        spread = max(values) - min(values)
        print(f"{'x'.join(map(str, size)):>6} {T:7.4f} {mu:5.2f} | " + " | ".join(cells) + f" | {spread:.1e}")
    print()


def field_timing() -> None:
    system = Ising((10, 10))
    _, cold = timed(exact_reference, system, 2.5, 0.2)                 # also builds the width-10 row structure
    times = []
    for _ in range(5):
        r, dt = timed(exact_reference, system, 2.5, 0.2)
        times.append(dt)
    print("2. 10x10 with field (kT = 2.5, mu = 0.2), transfer matrix incl. <E>, <M>, C: "
          f"first call {cold * 1e3:.1f} ms, then median {statistics.median(times) * 1e3:.1f} ms over 5 runs")
    print(f"   log Z = {r.log_Z:.10f}, <E>/N = {r.mean_energy_per_site:.10f}, <M>/N = {r.mean_observable:.10f}, "
          f"C/N = {r.heat_capacity_per_site:.10f}")
    print()


def paper_floors(sizes) -> None:
    print("3. Paper-grid floor: mean over the 25 conditions of -log Z")
    print(f"{'size':>6} {'mean -log Z':>14} {'SCIENCE.md':>11} {'diff':>9} {'time s':>7}  methods")
    for L in sizes:
        system = Ising((L, L))
        try:
            if L > MAX_TM_WIDTH:                                       # log Z is all this table needs
                results, dt = timed(lambda: [exact_reference(system, T, mu) if mu == 0 else
                                             tensor_network(system, T, mu, derivatives=False)
                                             for T, mu in PAPER_GRID])
            else:
                results, dt = timed(exact_grid, system, PAPER_GRID)
        except LatthermError as err:
            target = SCIENCE_FLOORS.get((L, L))
            print(f"{L:>3}x{L:<2} {'n/a':>14} {target if target else '':>11} {'':>9} {'':>7}  {err}")
            continue
        mean = -statistics.fmean(r.log_Z for r in results)
        target = SCIENCE_FLOORS.get((L, L))
        diff = f"{mean - target:9.1e}" if target is not None else f"{'':>9}"
        counts = {m: sum(r.method == m for r in results) for m in METHODS + ("tensor_network",)}
        used = ", ".join(f"{k} x{v}" for k, v in counts.items() if v)
        print(f"{L:>3}x{L:<2} {mean:14.6f} {target if target else '':>11} {diff} {dt:7.2f}  {used}")
    print()


TN_CASES = [((32, 32), 1.5, 0.0), ((32, 32), 3.5, 0.0), ((32, 32), T_C, 0.0),
            ((64, 64), 1.5, 0.0), ((64, 64), 3.5, 0.0), ((64, 64), T_C, 0.0),
            ((128, 128), 1.5, 0.0), ((128, 128), 3.5, 0.0), ((128, 128), T_C, 0.0),
            ((12, 12), 2.5, 0.2), ((12, 12), T_C, 0.1), ((14, 14), 2.5, 0.2), ((12, 16), 2.0, 0.1)]
#: conditions also run at a larger bond dimension (the 1e-9 target with a field, and T_c's 1e-7: chi_check 40)
TN_WIDE = [((12, 12), 2.5, 0.2), ((14, 14), 2.5, 0.2), ((32, 32), T_C, 0.0), ((64, 64), T_C, 0.0)]


def tensor_network_table(chis) -> None:
    print("4. Tensor network (HOTRG, log Z only) against Kaufman (mu = 0) / the transfer matrix (field): "
          "|error| / N, true and estimated")
    head = f"{'size':>8} {'kT':>7} {'mu':>5} {'chi':>7} {'true err':>9} {'estimate':>9} {'bounds':>6} {'s':>7}"
    print(head)
    print("-" * len(head))
    for size, T, mu in TN_CASES:
        system = Ising(size)
        exact = (float(kaufman_log_z(*size, 1.0 / T)) if mu == 0 else transfer_matrix(system, T, mu).log_Z)
        for chi, chi_check in chis + ([(32, 40)] if (size, T, mu) in TN_WIDE else []):
            r, dt = timed(tensor_network, system, T, mu, chi=chi, chi_check=chi_check, derivatives=False)
            err = abs(r.log_Z - exact) / r.n_sites
            print(f"{'x'.join(map(str, size)):>8} {T:7.4f} {mu:5.2f} {chi:>3}/{chi_check:<3} {err:9.1e} "
                  f"{r.error:9.1e} {'yes' if err <= r.error else 'NO':>6} {dt:7.2f}")
    system = Ising((64, 64))
    r, dt = timed(tensor_network, system, 2.5, 0.2, derivatives=False)
    print(f"64x64 kT 2.5 mu 0.2, defaults chi {r.chi[0]}/{r.chi[1]}, log Z only (2 contractions): {dt:.1f} s")
    r, dt = timed(tensor_network, system, 2.5, 0.2)
    print(f"64x64 kT 2.5 mu 0.2, defaults chi {r.chi[0]}/{r.chi[1]} with <E>, <M>, C (14 contractions, 5 at "
          f"chi_check): {dt:.1f} s; "
          f"log Z/N = {r.log_Z / r.n_sites:.10f} +- {r.error:.1e}, <E>/N = {r.mean_energy_per_site:.8f} "
          f"+- {r.errors['mean_energy_per_site']:.1e}, <M>/N = {r.mean_observable:.8f} "
          f"+- {r.errors['mean_observable']:.1e}, C/N = {r.heat_capacity_per_site:.6f} "
          f"+- {r.errors['heat_capacity_per_site']:.1e}")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wide", action="store_true", help=f"also the {MAX_TM_WIDTH}x{MAX_TM_WIDTH} grid (slow)")
    parser.add_argument("--tn", action="store_true", help="also the tensor-network table (slow)")
    parser.add_argument("--tn-only", action="store_true", help="only the tensor-network table")
    args = parser.parse_args()
    if args.tn or args.tn_only:
        tensor_network_table([(16, 24)])
    if args.tn_only:
        return
    cross_check()
    field_timing()
    paper_floors([5, 10, 12] + ([MAX_TM_WIDTH] if args.wide else []) + [20])


if __name__ == "__main__":
    main()
