"""The Sampler's exact-estimates view against the ``mcmc`` job's protocol: the request it sends, the JSON rows it
shows with standard errors and the reference named exact or tensor network, and the engine's validation of the
request (pytest-qt, offscreen)."""

from __future__ import annotations

import pytest

pytest.importorskip("pytestqt")

from lattherm.app.mcmc import MCMCView, columns, estimate_rows, reference_label  # noqa: E402
from lattherm.engine import tasks  # noqa: E402
from lattherm.engine.store import bundled_models_dir  # noqa: E402
from _gui_inprocess import InProcessEngine  # noqa: E402

ISING = str(bundled_models_dir() / "ising-5x5-ao-mlp")


class _Jobs(InProcessEngine):
    """Takes every job (an engine that knows mcmc)."""

    def request(self, method, params=None, on_result=None, on_error=None) -> None:
        self.calls.append((method, dict(params or {})))
        if on_result:
            on_result({"job": f"job-{len(self.calls)}"})


@pytest.fixture
def view(qtbot):
    v = MCMCView(_Jobs())
    qtbot.addWidget(v)
    v.set_model(ISING, tasks.describe_model(ISING))
    return v


def test_requests_follow_the_protocol_for_each_method(view):
    assert view.T.suffix() == " kT/ε" and 1.5 <= view.T.value() <= 3.5
    view.method.setCurrentIndex(1)  # block neural MCMC
    view.block.setValue(3)
    view.size.setText("8x8")
    view.run()
    method, p = view.client.calls[-1]
    assert method == "mcmc" and p["model"] == ISING
    assert (p["size"], p["block"], p["steps"], p["chains"]) == ("8x8", "3x3", 1000, 16)
    view.on_event("cancelled", view.job, {})
    view.method.setCurrentIndex(3)  # Wolff needs no model; no block
    view.size.setText("16x16")
    view.run()
    p = view.client.calls[-1][1]
    assert p["model"] == "wolff" and p["size"] == "16x16" and "block" not in p


def test_results_of_real_runs_show_side_by_side_with_errors_and_the_reference(view):
    """Two real answers of the mcmc task (NMCMC of the bundled 5x5 model; Wolff) become two rows."""
    from lattherm.engine.tasks.mcmc import mcmc

    answers = [mcmc(ISING, 2.5, 0.0, 40, chains=4, seed=1).to_dict(),
               mcmc("wolff", 2.5, 0.0, 40, size="5x5", chains=4, seed=1).to_dict()]
    for data in answers:
        view.run()
        job = view.job
        view.on_event("progress", job, {"step": 5, "total": 10, "fraction": 0.5, "eta_s": 2.0})
        assert view.progress.value() == 500
        view.on_event("finished", job, data)
    assert view.job is None and view.progress.format() == "idle" and view.table.rowCount() == 2
    heads = [view.table.horizontalHeaderItem(j).text() for j in range(view.table.columnCount())]
    assert heads[:6] == ["method", "size", "T (kT/ε)", "μ (ε)", "acceptance", "E/N (ε)"] and heads[-1] == "reference"
    assert not any(h.endswith("_stderr") for h in heads)
    e = answers[0]["observables"]["energy_per_site"]
    assert view.table.item(0, 5).text() == f"{e['mean']:.6g} ± {e['stderr']:.2g}"
    assert view.table.item(0, len(heads) - 1).text() == "exact (kaufman)"
    assert view.table.item(1, 0).text() == "wolff"


def test_the_job_request_passes_the_engines_validation(qtbot):
    v = MCMCView(InProcessEngine())
    qtbot.addWidget(v)
    v.set_model(ISING, tasks.describe_model(ISING))
    v.method.setCurrentIndex(1)
    v.block.setValue(9)  # larger than the 5x5 model's window: refused when the job runs, not by the request
    v.run()
    assert v.job and v.job != "pending" and v.client.calls[-1] == ("mcmc", v.params())
    v.on_event("cancelled", v.job, {})
    v.method.setCurrentIndex(2)  # Metropolis with a misspelt method name is refused by the engine's validation
    v.client.request("mcmc", dict(v.params(), model="metropolos"), None, lambda e: setattr(v, "error", str(e)))
    assert "metropolos" in v.error


def test_json_helpers():
    row = estimate_rows({"method": "wolff", "observables": {"x": {"mean": 1.0, "stderr": 0.1, "tau_int": 2.0}},
                         "reference": {"method": "tensor_network", "error": 1e-9, "x": 1.05}})[0]
    assert (row["x"], row["x_stderr"], row["x τ_int"], row["x reference"]) == (1.0, 0.1, 2.0, 1.05)
    assert reference_label(row).startswith("tensor network") and estimate_rows([1, 2]) == []
    assert columns([{"a": 1, "a_stderr": 0.1, "b": [1]}, {"c": "x", "a": 2}]) == ["a", "c"]
    assert reference_label({}) == "" and reference_label({"exact_method": "enumeration"}) == "exact (enumeration)"
    assert reference_label({"reference_method": "tensor_network", "reference_error": 2e-9}) == \
        "tensor network (± 2.0e-09 per site)"
