"""GUI responsiveness: time to window on screen, time to engine ready, event-loop stalls while training, an MCMC
job and a phase-diagram job stream into the app.

    python benchmarks/gui_startup.py [--seconds 10] [--config resources/configs/quick-cpu.toml]

Targets (issue 14): window < 1 s, engine ready < 3 s, stalls < 30 ms. "Window on screen" is the first paint
event of the main window (an event filter); the panels it does not show are built right after it. Runs offscreen unless a display is set.
Uses a throw-away LATTHERM_HOME so no user run is touched.
"""

from __future__ import annotations

import time

T0 = time.perf_counter()

import argparse  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402


def idle_gaps(app, seconds: float) -> list[float]:
    """Tick gaps between consecutive ticks over ``seconds`` with nothing streaming (the scheduler's own noise)."""
    return watch(app, lambda: True, seconds)[0][1:] or [float("nan")]


def watch(app, running, limit: float) -> tuple[list[float], float]:
    """Event-loop tick gaps (5 ms timer) while ``running()`` holds (at most ``limit`` s); and the seconds watched."""
    from PySide6.QtCore import QTimer

    gaps, last = [], [time.perf_counter()]

    def tick():
        now = time.perf_counter()
        gaps.append(now - last[0])
        last[0] = now

    t = QTimer()
    t.setInterval(5)
    t.timeout.connect(tick)
    t.start()
    t0 = time.perf_counter()
    while running() and time.perf_counter() - t0 < limit:
        app.processEvents()
        time.sleep(0.001)
    t.stop()
    return gaps or [float("nan")], time.perf_counter() - t0


def stall_row(label: str, gaps: list[float], seconds: float) -> str:
    stall = max(gaps) - 0.005
    p99 = sorted(gaps)[int(0.99 * (len(gaps) - 1))] - 0.005
    return (f"{label:22s}{stall * 1000:7.1f} ms   p99 {p99 * 1000:.1f} ms over {len(gaps)} ticks in {seconds:.1f} s, "
            f"{sum(g > 0.035 for g in gaps)} ticks > 30 ms (target < 30)")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10.0, help="how long to watch training")
    ap.add_argument("--config", default=str(Path(__file__).resolve().parents[1] / "resources/configs/quick-cpu.toml"))
    ap.add_argument("--threads", default="1", help="torch threads in the engine")
    ap.add_argument("--job-seconds", type=float, default=20.0, help="longest watch of each Sampler job")
    ap.add_argument("--no-jobs", action="store_true", help="skip the MCMC and phase-diagram rows")
    a = ap.parse_args()
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ["LATTHERM_HOME"] = tempfile.mkdtemp(prefix="lattherm-bench-")

    from PySide6.QtCore import QElapsedTimer, QTimer
    from PySide6.QtWidgets import QApplication

    app = QApplication(sys.argv)
    from lattherm.app.window import MainWindow

    from PySide6.QtCore import QEvent, QObject

    painted = []

    class FirstPaint(QObject):
        def eventFilter(self, obj, event):
            if not painted and event.type() == QEvent.Paint:
                painted.append(time.perf_counter())
            return False

    win = MainWindow(engine_env={"OMP_NUM_THREADS": a.threads, "LATTHERM_THREADS": a.threads})
    spy = FirstPaint()
    win.installEventFilter(spy)
    win.show()
    while not painted:
        app.processEvents()
    t_window = painted[0] - T0
    t_engine0 = time.perf_counter()
    win.start_engine()
    while not win.client.is_ready():
        app.processEvents()
        time.sleep(0.002)
        if time.perf_counter() - t_engine0 > 60:
            print("engine did not become ready in 60 s")
            return 1
    t_engine = time.perf_counter() - t_engine0

    baseline = idle_gaps(app, 3.0)  # same machine, engine idle: the scheduler's own noise
    win.training.start(Path(a.config).read_text(encoding="utf-8"))
    gaps: list[float] = []
    clock = QElapsedTimer()
    tick = QTimer()
    tick.setInterval(5)
    state = {"last": None, "first_points": None, "t_start": time.perf_counter()}

    def on_tick():
        now = clock.nsecsElapsed() / 1e9 if clock.isValid() else None
        if now is not None and state["last"] is not None and win.training.curves.n_points() > 0:
            gaps.append(now - state["last"])
        if state["first_points"] is None and win.training.curves.n_points() > 0:
            state["first_points"] = time.perf_counter() - state["t_start"]
        if not clock.isValid():
            clock.start()
            now = 0.0
        state["last"] = now

    tick.timeout.connect(on_tick)
    tick.start()
    end = time.perf_counter() + 60
    while time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.001)
        if state["first_points"] is not None and time.perf_counter() - state["t_start"] > state["first_points"] + a.seconds:
            break
    tick.stop()
    points = win.training.curves.n_points()
    win.training.stop()
    watch(app, lambda: win.training.state not in ("idle", "finished", "stopped", "failed", "cancelled"), 30)
    jobs = []  # (label, gaps, seconds) while each Sampler job streams
    if not a.no_jobs:
        end = time.perf_counter() + 30
        while win.bundled is None and time.perf_counter() < end:
            app.processEvents()
            time.sleep(0.002)
        paths = {m["name"]: m["path"] for m in win.bundled or []}
        sp = win.sampler
        for label, name, view, start in (("mcmc job streams", "ising-5x5-ao-mlp", "mcmc", "run"),
                                          ("phase diagram streams", "cuau-2x2x4-ao-mlp", "phase", "compute")):
            if name not in paths:
                print(f"{label}: bundled model {name} missing")
                continue
            sp.model.select(paths[name])
            v = getattr(sp, view)
            watch(app, lambda: v.model != paths[name] or not v.info, 30)  # the model's info has arrived
            getattr(v, start)()
            jobs.append((label, *watch(app, lambda: v.job is not None, a.job_seconds)))
            if v.job is not None:
                win.client.request("cancel", {"job": v.job})
    win.client.shutdown()
    stall = max(gaps) - 0.005 if gaps else float("nan")
    p99 = sorted(gaps)[int(0.99 * (len(gaps) - 1))] - 0.005 if gaps else float("nan")
    slow = sum(g > 0.035 for g in gaps)
    print(f"window on screen      {t_window * 1000:7.0f} ms   (target < 1000)")
    print(f"engine ready          {t_engine * 1000:7.0f} ms   (target < 3000)")
    print(f"first curve points    {(state['first_points'] or float('nan')) * 1000:7.0f} ms after Start")
    print(f"event-loop stall max  {stall * 1000:7.1f} ms   p99 {p99 * 1000:.1f} ms over {len(gaps)} ticks, "
          f"{points} points streamed (target < 30)")
    print(f"  ticks > 30 ms       {slow} of {len(gaps)}")
    for label, g, secs in jobs:
        print(stall_row(label, g, secs))
    print(f"idle baseline stall   {(max(baseline) - 0.005) * 1000:7.1f} ms   p99 "
          f"{(sorted(baseline)[int(0.99 * (len(baseline) - 1))] - 0.005) * 1000:.1f} ms (engine idle, same machine)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
