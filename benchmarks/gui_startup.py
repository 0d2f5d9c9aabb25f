"""GUI responsiveness: time to window on screen, time to engine ready, event-loop stalls while training streams.

    python benchmarks/gui_startup.py [--seconds 10] [--config resources/configs/quick-cpu.toml]

Targets (issue 14): window < 1 s, engine ready < 3 s, stalls < 30 ms. Runs offscreen unless a display is set.
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
    from PySide6.QtCore import QTimer

    gaps, last = [], [None]

    def tick():
        now = time.perf_counter()
        if last[0] is not None:
            gaps.append(now - last[0])
        last[0] = now

    t = QTimer()
    t.setInterval(5)
    t.timeout.connect(tick)
    t.start()
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.001)
    t.stop()
    return gaps or [float("nan")]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10.0, help="how long to watch training")
    ap.add_argument("--config", default=str(Path(__file__).resolve().parents[1] / "resources/configs/quick-cpu.toml"))
    ap.add_argument("--threads", default="1", help="torch threads in the engine")
    a = ap.parse_args()
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ["LATTHERM_HOME"] = tempfile.mkdtemp(prefix="lattherm-bench-")

    from PySide6.QtCore import QElapsedTimer, QTimer
    from PySide6.QtWidgets import QApplication

    app = QApplication(sys.argv)
    from lattherm.app.window import MainWindow

    win = MainWindow(engine_env={"OMP_NUM_THREADS": a.threads, "LATTHERM_THREADS": a.threads})
    win.show()
    app.processEvents()
    t_window = time.perf_counter() - T0
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
    print(f"idle baseline stall   {(max(baseline) - 0.005) * 1000:7.1f} ms   p99 "
          f"{(sorted(baseline)[int(0.99 * (len(baseline) - 1))] - 0.005) * 1000:.1f} ms (engine idle, same machine)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
