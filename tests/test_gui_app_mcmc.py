"""The Sampler's exact-estimates view against the ``mcmc`` job's protocol: the request it sends, the JSON rows it
shows with standard errors and the reference named exact or tensor network, and a clear message from an engine
that has no such job yet (pytest-qt, offscreen)."""

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
    view.block.setValue(5)
    view.run()
    method, p = view.client.calls[-1]
    assert method == "mcmc" and p["type"] == "mcmc" and p["model_or_method"] == ISING
    assert (p["size"], p["block"], p["steps"], p["chains"]) == ("5x5", 5, 1000, 16)
    view.on_event("cancelled", view.job, {})
    view.method.setCurrentIndex(3)  # Wolff needs no model; block means nothing there
    view.size.setText("16x16")
    view.run()
    p = view.client.calls[-1][1]
    assert (p["model_or_method"], p["size"], p["block"]) == ("wolff", "16x16", 0)


def test_results_show_side_by_side_with_errors_and_the_reference(view):
    view.run()
    job = view.job
    view.on_event("progress", job, {"step": 5, "total": 10, "fraction": 0.5, "eta_s": 2.0})
    assert view.progress.value() == 500
    view.on_event("finished", job, {"results": [
        {"method": "nmcmc", "F": -2.1234567, "F_stderr": 0.0012, "acceptance": 0.91, "reference_method": "kaufman",
         "tau_int": {"E": 1.2}},
        {"method": "wolff", "F": -2.1231, "F_stderr": 0.003, "reference_method": "tensor-network"}]})
    assert view.job is None and view.progress.format() == "idle" and view.table.rowCount() == 2
    heads = [view.table.horizontalHeaderItem(j).text() for j in range(view.table.columnCount())]
    assert heads == ["method", "F", "acceptance", "reference"]  # no _stderr column, no nested objects
    assert view.table.item(0, 1).text() == "-2.12346 ± 0.0012"
    assert view.table.item(0, 3).text() == "exact (kaufman)" and view.table.item(1, 3).text() == "tensor network"
    assert view.table.item(1, 2).text() == ""


def test_an_engine_without_the_mcmc_job_says_so(qtbot):
    v = MCMCView(InProcessEngine())
    qtbot.addWidget(v)
    v.set_model(ISING, None)
    v.run()
    assert "unknown method 'mcmc'" in v.status.text() and v.job is None and v.go.isEnabled()


def test_json_helpers():
    assert estimate_rows({"F": 1.0}) == [{"F": 1.0}] and estimate_rows([1, 2]) == []
    assert columns([{"a": 1, "a_stderr": 0.1, "b": [1]}, {"c": "x", "a": 2}]) == ["a", "c"]
    assert reference_label({}) == "" and reference_label({"exact_method": "enumeration"}) == "exact (enumeration)"
