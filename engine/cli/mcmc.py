"""`lattherm mcmc`: exact Markov chains by a model (neural MCMC, block neural MCMC) or classical Monte Carlo, with
acceptance, tau_int, standard errors and effective samples per second (engine/tasks/mcmc.py)."""

from __future__ import annotations

import json

NAME = "mcmc"


def add_parser(sub) -> None:
    from .main import NPROC_HELP, _number

    p = sub.add_parser(NAME, help="exact MCMC: a model as proposal (NMCMC, block NMCMC) or metropolis/wolff/"
                                  "swendsen-wang, with tau_int and effective samples per second")
    p.add_argument("model", metavar="MODEL_OR_METHOD",
                   help="a run, model folder or bundled model, or metropolis, wolff, swendsen-wang")
    p.add_argument("--size", help="lattice, e.g. 64x64 (default: the model's own; required for a method)")
    p.add_argument("--system", help="ising or cuau (for a method; default ising)")
    p.add_argument("--T", type=_number, required=True)
    p.add_argument("--mu", type=_number, default=0.0)
    p.add_argument("--steps", type=int, required=True, help="recorded steps per chain")
    p.add_argument("--equilibration", type=int, help="unrecorded steps first (default steps / 10)")
    p.add_argument("--block", help="block NMCMC with WxH blocks (at most the model's window)")
    p.add_argument("--positions", default="parallel", choices=["parallel", "random", "tiled"],
                   help="block corners: a randomly shifted sub-lattice of blocks that do not interact, proposed at "
                        "once (default); one block at a uniform corner at a time; or a shifted tiling, block by block")
    p.add_argument("--chains", type=int, default=16)
    p.add_argument("--sweeps-between", type=int, default=0, help="local Metropolis sweeps after each model step")
    p.add_argument("--init", choices=["model", "random"], help="start of a model's chains (default model)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--no-reference", action="store_true", help="skip the exact reference")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--out", help="FILE.npz with the recorded series")
    p.add_argument("--chain-batch", type=int, metavar="M",
                   help="run the chains in groups of M, each from its own seed (the unit --nproc splits; default: "
                        "all chains in one group)")
    p.add_argument("--nproc", type=int, metavar="N", help=NPROC_HELP.format(what="groups of chains"))


def run(a) -> int:
    from ..distributed import check_shardable, run_command
    from ..errors import LatthermError
    from ..tasks._common import chunks
    from ..tasks.mcmc import mcmc
    from .main import _ranked_bar, _device

    for flag, v in (("--steps", a.steps), ("--chains", a.chains), ("--chain-batch", a.chain_batch)):
        if v is not None and v < 1:
            raise LatthermError(f"{flag} must be >= 1, got {v}")
    for flag, v in (("--sweeps-between", a.sweeps_between), ("--equilibration", a.equilibration)):
        if v is not None and v < 0:
            raise LatthermError(f"{flag} must be >= 0, got {v}")
    device = _device(a.device)
    batch = a.chain_batch or a.chains

    def precheck():
        check_shardable(len(chunks(a.chains, batch)), a.nproc, "groups of chains",
                        f"{a.chains} chains in groups of --chain-batch {batch}: lower it")

    def body(world) -> int:
        res = _ranked_bar(world, "step", mcmc, model_or_method=a.model, T=a.T, mu=a.mu, steps=a.steps, size=a.size,
                          system=a.system, block=a.block, chains=a.chains, sweeps_between=a.sweeps_between,
                          equilibration=a.equilibration, positions=a.positions, init=a.init, seed=a.seed,
                          device=device, out=a.out, reference=not a.no_reference, chain_batch=a.chain_batch)
        if res is not None:
            _report(res, a.json)
        return 0

    return run_command(a.argv, a.nproc, body, device=device, precheck=precheck)


def _report(res, as_json: bool) -> None:
    d = res.to_dict()
    if as_json:
        print(json.dumps(d))
        return
    print(f"{d['method']} on {d['system']} {'x'.join(map(str, d['size']))} at T={d['T']:g}, mu={d['mu']:g}: "
          f"{d['chains']} chains x {d['steps']} steps, acceptance {d['acceptance']:.3f}, {d['seconds']:.2f} s")
    ref = d.get("reference") or {}
    for name, o in d["observables"].items():
        line = f"  {name:24s} {o['mean']:+.6f} +- {o['stderr']:.6f}  tau_int {o['tau_int']:.2f}"
        if ref.get(name) is not None:
            dev = ref["deviation_sigma"].get(name)
            line += f"  ref {ref[name]:+.6f} ({ref['method']}"
            line += f", {dev:+.1f} sigma)" if dev is not None else ")"
        print(line)
    print(f"  effective samples/s {d['effective_samples_per_second']:.1f}")
    if res.path is not None:
        print(f"  series -> {res.path}")
