"""Neural MCMC is exact: the block move satisfies detailed balance state by state, proposals follow the log q the
move uses, long runs of NMCMC and block NMCMC reproduce the enumerated 4x4 distribution (chi-square, with and
without a field, while the raw proposals fail the same test), and the mcmc command refuses bad input in one line.
(Wolff / Swendsen-Wang against enumeration and the transfer matrix with a field: tests/test_cluster.py.)"""

from __future__ import annotations

import itertools
import json
import math
import subprocess
import sys

import pytest
import torch

from lattherm.engine.cli.main import main
from lattherm.engine.models import build_model
from lattherm.engine.montecarlo.flips import flip_tables
from lattherm.engine.montecarlo.metropolis import SpinChains
from lattherm.engine.sampling.block_nmcmc import BlockProposer, block_move
from lattherm.engine.sampling.nmcmc import NeuralMCMC
from lattherm.engine.systems import make_system

from _flips import assert_no_interaction

T, MU = 2.5, 0.3


def _model(n_sites: int, symmetric: bool, scale: float = 10.0, seed: int = 0):
    """An untrained AO-ARM with its readout scaled up: conditionals far from uniform, so a wrong log q shows."""
    torch.manual_seed(seed)
    m = build_model("ao-arm", "mlp", n_sites=n_sites, hidden=16, layers=1, symmetric=bool(symmetric),
                    mode_weight=symmetric == "weighted")
    with torch.no_grad():
        m.out_w.mul_(scale)
        if m.mode_weight is not None:  # a learned Z2 mode weight far from 1/2
            for q in m.mode_weight.parameters():
                q.normal_(0, 2.0)
    return m.eval()


def _all_states(n: int) -> torch.Tensor:
    return torch.tensor(list(itertools.product([-1.0, 1.0], repeat=n)))


@pytest.mark.parametrize("symmetric", [False, True])
@pytest.mark.parametrize("mu", [0.0, MU])
def test_block_move_detailed_balance_exact(symmetric, mu):
    """For one state, position and order, over all 2^4 values of the 2x2 block: the proposal is normalised and
    f(x) q(x'|x) a(x->x') = f(x') q(x|x') a(x'->x), with a from the move's own ratio (flip-table Delta E)."""
    system = make_system("ising", "4x4")
    window = make_system("ising", "3x3").lattice
    p = BlockProposer(_model(9, symmetric, 40.0), window, system.lattice, "2x2")
    g = torch.Generator().manual_seed(5)
    x = (2 * torch.randint(0, 2, (16,), generator=g) - 1).float()
    corner = torch.tensor([[3, 2]])  # the block wraps around both axes
    key = torch.rand(1, 9, generator=g)
    sites = p.window_sites(corner)[0, torch.as_tensor(p.block_local)]
    states = []
    for vals in itertools.product([-1.0, 1.0], repeat=4):
        y = x.clone()
        y[sites] = torch.tensor(vals)
        states.append(y)
    S = torch.stack(states)
    n = len(S)
    Tt, mut = torch.full((n,), T, dtype=torch.float64), torch.full((n,), mu, dtype=torch.float64)
    # log q(x_j's block | context), the same for every state i (the context does not change)
    win = p.window_sites(corner.expand(n, -1))
    tok = (S.gather(1, win) > 0).long() + 1
    ctx = tok.clone()
    ctx[:, torch.as_tensor(p.block_local)] = 0
    log_q = p.log_q(ctx, tok, key.expand(n, -1), Tt, mut).detach()
    assert math.isclose(float(log_q.exp().sum()), 1.0, rel_tol=1e-6)  # float32 network
    log_f = system.log_f(S, T, mu)
    P = torch.zeros(n, n, dtype=torch.float64)
    beta = torch.full((n,), 1 / T, dtype=torch.float64)
    for i in range(n):
        chains = SpinChains(system, S[i].expand(n, -1).clone())
        new = S[:, sites]
        _, _, _, log_a = block_move(chains, sites.expand(n, -1), new, log_q, log_q[i].expand(n), beta, mut,
                                    logu=torch.full((n,), math.inf, dtype=torch.float64))
        assert torch.equal(chains.spins, S[i].expand(n, -1))  # every move undone
        P[i] = log_q.exp() * log_a.clamp(max=0).exp()
    flow = log_f.exp()[:, None] * P
    assert torch.allclose(flow, flow.T, rtol=1e-9, atol=0)
    assert float((P.sum(1) - P.diagonal()).max()) <= 1.0
    assert float(P.sum() - P.diagonal().sum()) > 0.5  # moves are really proposed and accepted


@pytest.mark.parametrize("symmetric", [False, True, "weighted"])
def test_walk_draws_what_log_q_scores(symmetric):
    """At one fixed order and context the painting walk's proposals follow exp(log q) (chi-square over the 16
    block states) and the forward log q it returns is the teacher-forced score of what it drew."""
    system = make_system("ising", "4x4")
    window = make_system("ising", "3x3").lattice
    p = BlockProposer(_model(9, symmetric, 20.0, seed=1), window, system.lattice, "2x2")
    g = torch.Generator().manual_seed(2)
    n = 4000
    x = (2 * torch.randint(0, 2, (1, 16), generator=g) - 1).float().expand(n, -1)
    corner = torch.tensor([[1, 0]]).expand(n, -1)
    key = torch.rand(1, 9, generator=g).expand(n, -1)
    Tt, mut = torch.full((n,), T, dtype=torch.float64), torch.full((n,), MU, dtype=torch.float64)
    sites, new, fwd, rev = p.propose(x, Tt, mut, corner, g, key=key)
    win = p.window_sites(corner)
    blk = torch.as_tensor(p.block_local)
    ctx = (x.gather(1, win) > 0).long() + 1
    ctx[:, blk] = 0
    drawn = ctx.clone()
    drawn[:, blk] = (new > 0).long() + 1
    assert torch.allclose(fwd, p.log_q(ctx, drawn, key, Tt, mut).detach(), atol=1e-9)
    assert torch.allclose(rev, rev[:1].expand(n))  # the current block's score: one value for one state
    codes = ((new > 0).long() * torch.tensor([8, 4, 2, 1])).sum(1)
    counts = torch.bincount(codes, minlength=16).double()
    states = torch.tensor(list(itertools.product([1, 2], repeat=4)))
    full = ctx[:16].clone()
    full[:, blk] = states
    q = p.log_q(ctx[:16], full, key[:16], Tt[:16], mut[:16]).detach().exp()
    expected = n * q
    keep = expected > 5
    chi2 = float((((counts - expected) ** 2 / expected)[keep]).sum())
    assert chi2 < 45.0  # 15 degrees of freedom at most: p ~ 1e-4


def _chi2_against_enumeration(system, final: torch.Tensor, mu: float) -> float:
    """chi-square / dof of the (E, M) histogram of i.i.d. final states against enumeration (bins with >= 5
    expected; the rest pooled)."""
    S = _all_states(system.n_sites)
    p = torch.softmax(system.log_f(S, T, mu), 0)
    key_all = system.energy(S).round().long() * 100 + S.sum(1).long()
    key = system.energy(final.double()).round().long() * 100 + final.sum(1).long()
    cats, inv = torch.unique(key_all, return_inverse=True)
    prob = torch.zeros(len(cats), dtype=torch.float64).index_add_(0, inv, p)
    obs = torch.tensor([(key == c).sum().item() for c in cats], dtype=torch.float64)
    n = final.shape[0]
    exp = n * prob
    big = exp >= 5
    o = torch.cat([obs[big], obs[~big].sum()[None]])
    e = torch.cat([exp[big], exp[~big].sum()[None]])
    chi2 = float(((o - e) ** 2 / e).sum())
    return chi2 / (len(o) - 1)


@pytest.mark.parametrize("mu", [0.0, MU])
@pytest.mark.parametrize("mode", ["whole", "block", "parallel"])
def test_chains_leave_the_exact_distribution_invariant(mode, mu):
    """2000 chains started from exact draws of the enumerated 4x4 distribution are still in it after many moves
    (chi-square of the final states): NMCMC with a 4x4 model, block NMCMC with 2x2 blocks in a 3x3 window (one
    block at a time), and four 1x1 blocks in 2x2 windows proposed at once."""
    system = make_system("ising", "4x4")
    if mode == "whole":
        model, window, block, steps = _model(16, False, 5.0), system.lattice, None, 40
    elif mode == "block":
        model, window, block, steps = _model(9, True, 10.0), make_system("ising", "3x3").lattice, "2x2", 5
    else:
        model, window, block, steps = _model(4, True, 10.0), make_system("ising", "2x2").lattice, "1x1", 5
    g = torch.Generator().manual_seed(11)
    S = _all_states(16)
    start = S[torch.multinomial(torch.softmax(system.log_f(S, T, mu), 0).float(), 2000, True, generator=g)]
    mc = NeuralMCMC(model, system, T, mu, 2000, window=window, block=block, init=start, generator=g)
    assert mc.method == ("nmcmc" if mode == "whole" else "block-nmcmc")
    if mode != "whole":
        assert mc.proposer.blocks_per_proposal == (4 if mode == "parallel" else 1)
    for _ in range(steps):
        mc.step()
    E = mc.E.clone()
    mc.resync()
    assert torch.allclose(E, mc.E)  # the running energy of accepted blocks
    assert 0.01 < float(mc.acceptance.mean()) < 0.95
    assert float((mc.chains.spins != start).any(1).double().mean()) > 0.1  # hundreds of chains have moved
    assert _chi2_against_enumeration(system, mc.chains.spins.clone(), mu) < 1.6


@pytest.mark.parametrize("system_name, size, cell, block", [("ising", "12x12", "5x5", "3x3"),
                                                             ("cuau", "4x4x8", "2x2x4", "1x1x2")])
def test_parallel_blocks_do_not_interact(system_name, size, cell, block):
    """The parallel layout's blocks are independent, checked by full energies: flipping any site of one block
    leaves the flip energy of every site of every other block unchanged, and no block lies in another's window."""
    system = make_system(system_name, size)
    window = make_system(system_name, cell).lattice
    model = build_model("ao-arm", "mlp", n_sites=window.n_sites, hidden=8, layers=1)
    p = BlockProposer(model, window, system.lattice, block, "parallel", partners=flip_tables(system).partners())
    assert p.blocks_per_proposal >= 2
    shift = torch.as_tensor(system.lattice.grid[7])
    win = p.window_sites(torch.as_tensor(p.layout) + shift)
    blocks = win[:, torch.as_tensor(p.block_local)]
    g = torch.Generator().manual_seed(0)
    x = (2 * torch.randint(0, 2, (1, system.n_sites), generator=g) - 1).double()

    for a in range(len(blocks)):
        others = torch.cat([blocks[b] for b in range(len(blocks)) if b != a])
        assert not bool(torch.isin(others, win[a]).any())
        i = int(blocks[a][torch.randint(0, len(blocks[a]), (1,), generator=g)])
        assert_no_interaction(system, x, i, others[torch.randperm(len(others), generator=g)[:12]].tolist())


def test_raw_proposals_fail_where_the_chain_passes():
    """The untrained model's own draws are far from f: the enumeration test rejects them (it has power)."""
    system = make_system("ising", "4x4")
    model = _model(16, False, 5.0)
    sb = model.sample(T, MU, batch=2000, generator=torch.Generator().manual_seed(3))
    assert _chi2_against_enumeration(system, sb.spins, MU) > 3.0


def test_local_sweeps_and_tiled_blocks_keep_the_energy_bookkeeping():
    """Interleaved Metropolis sweeps and tiled block sweeps: the running energy equals the full energy and the
    whole-lattice weight is re-scored along the kept order."""
    system = make_system("ising", "4x4")
    g = torch.Generator().manual_seed(4)
    mc = NeuralMCMC(_model(16, True), system, T, MU, 8, sweeps_between=1, generator=g)
    for _ in range(3):
        mc.step()
    E = mc.E.clone()
    mc.resync()
    assert torch.allclose(E, mc.E)
    lq = mc.model.log_prob(mc.chains.spins.clone(), T, MU, ranks=mc.ranks).double()
    assert torch.allclose(mc.log_w, system.log_f(mc.chains.spins, T, MU) - lq, atol=1e-4)
    mb = NeuralMCMC(_model(9, False), system, T, MU, 8, window=make_system("ising", "3x3").lattice, block="2x2",
                    positions="tiled", generator=g)
    assert mb.proposals_per_step == 4
    for _ in range(3):
        mb.step()
    E = mb.E.clone()
    mb.resync()
    assert torch.allclose(E, mb.E)


def test_cli_mcmc_json_and_reference(capsys):
    rc = main(["mcmc", "ising-5x5-ao-mlp", "--T", "2.5", "--mu", "0.2", "--steps", "40", "--chains", "4", "--json"])
    assert rc == 0
    d = json.loads(capsys.readouterr().out)
    assert d["method"] == "nmcmc" and 0 < d["acceptance"] <= 1
    assert set(d["observables"]) == {"energy_per_site", "magnetisation_per_site"}
    for o in d["observables"].values():
        assert set(o) == {"mean", "stderr", "tau_int"} and o["stderr"] > 0 and o["tau_int"] >= 0.5
    assert d["seconds"] > 0 and d["effective_samples_per_second"] > 0
    assert d["reference"]["method"] == "transfer_matrix"
    assert abs(d["reference"]["deviation_sigma"]["energy_per_site"]) < 5


def test_cli_block_and_wolff(tmp_path, capsys):
    out = tmp_path / "s.npz"
    rc = main(["mcmc", "ising-5x5-ao-mlp", "--size", "6x6", "--block", "2x2", "--T", "2.5", "--steps", "4",
               "--chains", "2", "--json", "--out", str(out)])
    d = json.loads(capsys.readouterr().out)
    assert rc == 0 and d["method"] == "block-nmcmc" and d["block"] == [2, 2]
    import numpy as np

    with np.load(out) as z:
        assert z["energy_per_site"].shape == (2, 4) and z["final"].shape == (2, 36)
    rc = main(["mcmc", "wolff", "--size", "6x6", "--T", "2.5", "--mu", "0.1", "--steps", "30", "--json"])
    d = json.loads(capsys.readouterr().out)
    assert rc == 0 and d["method"] == "wolff" and d["reference"]["method"] == "transfer_matrix"
    # the semi-grand energy: E/N - mu M, within a loose band of the exact value
    assert abs(d["observables"]["energy_per_site"]["mean"] - d["reference"]["energy_per_site"]) < 0.2


@pytest.mark.parametrize("args,needle", [
    (["ising-5x5-ao-mlp", "--size", "8x8", "--block", "6x6"], "larger than the model's window"),
    (["ising-5x5-ao-mlp", "--size", "8x8", "--block", "9x2"], "larger than"),
    (["ising-5x5-ao-mlp", "--size", "4x4", "--block", "3x3"], "does not fit"),
    (["ising-5x5-ao-mlp", "--steps", "0"], "--steps must be >= 1"),
    (["ising-5x5-ao-mlp", "--steps", "-2"], "--steps must be >= 1"),
    (["nosuchmethod", "--size", "4x4"], "unknown method or model"),
    (["wolff", "--system", "cuau", "--size", "2x2x4", "--T", "300"], "square-lattice Ising"),
    (["ising-5x5-ao-mlp", "--system", "cuau"], "is for ising, not cuau"),
    (["metropolis"], "needs the lattice size"),
])
def test_cli_bad_input_one_line_exit_2(args, needle, capsys):
    argv = ["mcmc", *args]
    if "--T" not in argv:
        argv += ["--T", "2.0"]
    if "--steps" not in argv:
        argv += ["--steps", "5"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err, err


@pytest.mark.slow
def test_cli_subprocess_exit_code():
    r = subprocess.run([sys.executable, "-m", "lattherm.engine.cli.main", "mcmc", "swendsen-wang", "--size", "4x4",
                        "--T", "2.0", "--steps", "0"], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.count("\n") == 1


def test_server_mcmc_job_validation_and_call():
    """The engine server's mcmc job: method names need no model, unknown parameters are refused, the job runs
    the mcmc task."""
    from lattherm.engine.errors import LatthermError
    from lattherm.engine.server import handlers
    from lattherm.engine.server.main import JOB_METHODS
    from lattherm.engine.tasks.mcmc import mcmc

    assert JOB_METHODS["mcmc"] == "sample"
    handlers.validate_job("mcmc", {"model": "wolff", "T": 2.5, "size": "8x8", "steps": 10})
    handlers.validate_job("mcmc", {"model": "ising-5x5-ao-mlp", "T": 2.5, "block": "3x3", "steps": 10})
    with pytest.raises(LatthermError, match="takes no"):
        handlers.validate_job("mcmc", {"model": "wolff", "T": 2.5, "n": 3})
    fn, kw = handlers._task_call("mcmc", {"model": "wolff", "T": 2.5, "steps": 3})
    assert fn is mcmc and kw == {"T": 2.5, "steps": 3}
    res = fn("wolff", **kw, size="4x4", chains=2)
    assert res.to_dict()["method"] == "wolff"
