"""An engine client for GUI panel tests that answers quick requests by calling the engine's own handlers in this
process (real model_info, real validation and memory estimates, no engine process); job requests are validated
as the engine validates them and then only recorded, so a test feeds the panel the job's events itself."""

from __future__ import annotations

import itertools

from lattherm.app.client import EngineError
from lattherm.engine.server import handlers


class InProcessEngine:
    hello: dict = {}
    state = "ready"

    def __init__(self):
        self.calls: list[tuple[str, dict]] = []
        self.restarts = 0
        self._ids = itertools.count(1)

    def is_ready(self) -> bool:
        return True

    def restart(self) -> None:
        self.restarts += 1

    def request(self, method, params=None, on_result=None, on_error=None) -> None:
        params = dict(params or {})
        self.calls.append((method, params))
        try:
            if method in ("start_training", "resume_training", "sample", "paint", "evaluate", "phase_diagram", "mcmc"):
                handlers.validate_job(method, params)
                result = {"job": f"job-{next(self._ids)}"}
            elif method in ("cancel", "pause", "resume"):
                result = {}
            elif hasattr(handlers, f"do_{method}"):
                result = getattr(handlers, f"do_{method}")(params)
            else:
                raise handlers.LatthermError(f"unknown method {method!r}")
        except handlers.USER_ERRORS as exc:
            if on_error:
                on_error(EngineError(type(exc).__name__, handlers.error_text(exc)))
            return
        if on_result:
            on_result(result)
