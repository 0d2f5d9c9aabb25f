"""Run an exact solve on one thread, so a busy neighbour process cannot make it crawl.

On a 2-core machine shared with a training job, OpenMP/LAPACK threads spin against each other. Measured under
load: a 12x12 transfer-matrix solve took 2.5-3 s on 2 threads vs 0.45 s on 1 (a 352x352 Hermitian eigh 5 s vs
0.035 s); enumerating a 4x5 Ising torus 2.4 s vs 0.6 s. On an idle machine one thread costs at most ~2x, and only
for the largest problems. The previous thread count is always restored.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch


@contextmanager
def single_threaded():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)
