"""Screenshots of the desktop app's panels for the README, taken from the real app and its engine process.

Usage (from the repository root; any X display works, Xvfb needs none)::

    xvfb-run -a -s "-screen 0 1400x900x24" .venv/bin/python packaging/screenshots.py [--out docs/screenshots]

It opens lattherm's main window with a throw-away ``LATTHERM_HOME`` and drives the panels through their own widgets:

- Training: starts ``resources/configs/quick-cpu.toml`` and lets the live curves run for a while;
- Sampler: samples a model at one condition (the bundled ``ising-5x5-ao-mlp`` when it is installed, else the
  quick-cpu run, trained to its end first) and shows the gallery and the histograms;
- Lattice painting: fixes a few sites of an 8x8 lattice and in-paints it with the same model, then evaluates the
  model painted on 8x8 (``painting-evaluation``); fills a square of a 48x48 target and in-paints it
  (``painting-48x48``); paints a 4x4x4 fcc supercell of the bundled CuAu model in 2D and 3D and in-paints it
  (``painting-3d``, and the 3D view of the first completion alone, ``crystal3d``).

Each view is written to ``OUT/<name>.png``; the engine is shut down at the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIZE = (1400, 860)  # window size of the pictures (the Training panel alone needs about 1040 px)
CURVES_S = 15.0  # how long the training curves run before the Training picture


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=str(ROOT / "docs" / "screenshots"), help="folder for the PNGs")
    p.add_argument("--curves-seconds", type=float, default=CURVES_S, help="training time before the first picture")
    p.add_argument("--timeout", type=float, default=900.0, help="longest wait for training to finish (s)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or os.environ.get("QT_QPA_PLATFORM")):
        print("screenshots.py: no display; run it under xvfb-run (see the docstring)", file=sys.stderr)
        return 2
    home = tempfile.mkdtemp(prefix="lattherm-screenshots-")
    os.environ["LATTHERM_HOME"] = home  # before lattherm reads it: no user run is seen or touched
    try:
        return shoot(Path(args.out), args)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def shoot(out: Path, args) -> int:
    import pyqtgraph as pg
    from PySide6.QtCore import QPoint, Qt
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication, QDockWidget

    from lattherm.app.gui import _style
    from lattherm.app.window import PREFERRED_MODEL, MainWindow
    from lattherm.engine import paths
    from lattherm.engine.store import bundled_models, bundled_models_dir

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("lattherm")
    pg.setConfigOptions(background="w", foreground="k")  # as lattherm.app.gui.run
    _style(app)
    out.mkdir(parents=True, exist_ok=True)

    def wait(pred, timeout: float, what: str) -> None:
        end = time.monotonic() + timeout
        while not pred():
            if time.monotonic() > end:
                raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
            QTest.qWait(50)

    def save(name: str) -> None:
        QTest.qWait(300)  # let the 25 Hz curve timer and pending paints run
        app.processEvents()
        path = out / f"{name}.png"
        if not win.grab().save(str(path), "PNG", 9):
            raise OSError(f"could not write {path}")
        print(f"wrote {path} ({path.stat().st_size // 1024} KiB)", flush=True)

    win = MainWindow()
    win.resize(*SIZE)
    win.show()
    win.start_engine()
    try:
        wait(win.client.is_ready, 180, "the engine")  # a loaded machine starts it slowly
        runs_dock = next(d for d in win.findChildren(QDockWidget) if d.widget() is win.browser)
        win.resizeDocks([runs_dock], [340], Qt.Horizontal)  # room for more of the run table

        # ---- Training: quick-cpu with live curves
        win.tabs.setCurrentWidget(win.training)
        tr = win.training
        tr.preset.setCurrentText("quick-cpu")
        QTest.mouseClick(tr.start_btn, Qt.LeftButton)
        wait(lambda: tr.curves.n_points("loss") > 0, 120, "the first training metrics")
        t0 = time.monotonic()  # the picture while the run is still going: Pause / Stop live, progress moving
        wait(lambda: time.monotonic() - t0 >= args.curves_seconds or tr.progress.value() >= 800
             or tr.state == "idle", args.curves_seconds + 5, "the curves")
        win.browser.refresh()
        win.browser.select(tr.run_id)
        save("training")

        # ---- the model to sample and paint with
        if PREFERRED_MODEL in bundled_models():
            ref = str(bundled_models_dir() / PREFERRED_MODEL)
            QTest.mouseClick(tr.stop_btn, Qt.LeftButton)
        else:
            print("no bundled model: training quick-cpu to its end", flush=True)
        wait(lambda: tr.state == "idle", args.timeout, "the training run to end")
        run_id = tr.run_id
        win.browser.refresh()
        wait(lambda: (win.browser.row(run_id) or {}).get("status") not in (None, "running"), 30, "the run list")
        if PREFERRED_MODEL not in bundled_models():
            ref = win.browser.row(run_id)["path"]
        conf = tomllib.loads((Path(paths.RESOURCES) / "configs" / "quick-cpu.toml").read_text(encoding="utf-8"))
        T = 2.5 if PREFERRED_MODEL in bundled_models() else sum(conf["conditions"]["T"]) / 2

        # ---- Sampler: one condition, gallery and histograms
        sp = win.sampler
        win.tabs.setCurrentWidget(sp)
        if not sp.model.select(ref):
            raise RuntimeError(f"model {ref} is not in the sampler's list")
        sp.single.setChecked(True)
        sp.T.setValue(T)
        sp.mu.setValue(0.0)
        sp.n.setValue(1000)
        QTest.mouseClick(sp.go, Qt.LeftButton)
        wait(lambda: sp.samples is not None and sp.job is None, 300, "the samples")
        sp.tabs.setCurrentIndex(0)  # histograms
        save("sampler")

        # ---- Lattice painting: a few fixed sites on an 8x8 lattice, in-painted by the model
        pp = win.painting
        win.tabs.setCurrentWidget(pp)
        if not (pp.info and pp.info.get("path") == ref):  # the panel follows the run browser's newest run
            if pp.model.current_ref() == ref:
                pp.model_changed()
            elif not pp.model.select(ref):  # a new choice asks the engine by itself
                raise RuntimeError(f"model {ref} is not in the painting panel's list")
            wait(lambda: pp.info is not None and pp.info.get("path") == ref, 60, "the model's info")
        pp.target.setText("8x8")
        pp.apply_target()
        pp.T.setValue(T)
        pp.mu.setValue(0.0)
        pp.n.setValue(4)
        ed = pp.editor

        def click(i: int, j: int) -> None:
            QTest.mouseClick(ed, Qt.LeftButton, Qt.NoModifier, QPoint(j * ed.cell + ed.cell // 2,
                                                                      i * ed.cell + ed.cell // 2))

        pp.brush_buttons[1].setChecked(True)
        for i, j in ((0, 0), (0, 1), (1, 0), (1, 1), (6, 6), (6, 7), (7, 6), (7, 7)):
            click(i, j)
        pp.brush_buttons[-1].setChecked(True)
        pp.rect.setChecked(True)  # a down-spin block in the middle, dragged with the rectangle tool
        QTest.mousePress(ed, Qt.LeftButton, Qt.NoModifier, QPoint(3 * ed.cell + 5, 3 * ed.cell + 5))
        QTest.mouseRelease(ed, Qt.LeftButton, Qt.NoModifier, QPoint(4 * ed.cell + 5, 4 * ed.cell + 5))
        pp.rect.setChecked(False)
        pp.brush_buttons[1].setChecked(True)
        QTest.mouseClick(pp.go, Qt.LeftButton)
        wait(lambda: not pp.busy, 120, "the in-painting")
        if pp.result is None:
            raise RuntimeError(f"in-painting failed: {pp.status.text()}")
        save("painting")

        # ---- the same model evaluated painted on the 8x8 lattice: F_q, -log Z_nis, ESS, gap to the exact -log Z
        pp.eval_n.setValue(200)
        QTest.mouseClick(pp.eval_go, Qt.LeftButton)
        wait(lambda: pp.eval_job is None, 300, "the painted evaluation")
        if pp.evaluation is None:
            raise RuntimeError(f"painted evaluation failed: {pp.eval_status.text()}")
        save("painting-evaluation")

        # ---- a 48x48 target: the editor zooms and scrolls inside the window
        pp.target.setText("48x48")
        pp.apply_target()
        pp.select.setChecked(True)
        QTest.mousePress(ed, Qt.LeftButton, Qt.NoModifier, QPoint(8 * ed.cell + 1, 8 * ed.cell + 1))
        QTest.mouseRelease(ed, Qt.LeftButton, Qt.NoModifier, QPoint(39 * ed.cell + 1, 39 * ed.cell + 1))
        pp.fill.setCurrentIndex(0)  # a checkerboard (antiferromagnetic) square in the middle
        QTest.mouseClick(pp.fill_btn, Qt.LeftButton)
        pp.editor.clear_selection()
        pp.pen.setChecked(True)
        pp.n.setValue(3)
        QTest.mouseClick(pp.go, Qt.LeftButton)
        wait(lambda: not pp.busy, 600, "the 48x48 in-painting")
        if pp.result is None:
            raise RuntimeError(f"48x48 in-painting failed: {pp.status.text()}")
        save("painting-48x48")

        # ---- the 3D crystal view: the bundled CuAu fcc model on a 4x4x4 supercell
        cuau = "cuau-2x2x4-ao-mlp"
        if cuau in bundled_models():
            cref = str(bundled_models_dir() / cuau)
            if not pp.model.select(cref):
                raise RuntimeError(f"model {cref} is not in the painting panel's list")
            wait(lambda: pp.info is not None and pp.info.get("path") == cref, 60, "the CuAu model's info")
            pp.target.setText("4x4x4")
            pp.apply_target()
            pp.T.setValue(500.0)
            pp.mu.setValue(0.0)
            pp.layer.setValue(0)
            pp.fill.setCurrentIndex(2)  # layer 1 all Au ...
            QTest.mouseClick(pp.fill_btn, Qt.LeftButton)
            pp.layer.setValue(1)
            pp.fill.setCurrentIndex(3)  # ... layer 2 all Cu: an L1_0-like start
            QTest.mouseClick(pp.fill_btn, Qt.LeftButton)
            view = pp.crystal
            pp.brush_buttons[1].setChecked(True)
            for i in range(len(view.points)):  # a few sites of layer 3 set in 3D, as a click would
                if view.site_layer(i) == 2 and i % 3 == 0:
                    QTest.mouseClick(view, Qt.LeftButton, Qt.NoModifier, view.screen_pos(i).toPoint())
            pp.layer.setValue(2)
            pp.n.setValue(4)
            QTest.mouseClick(pp.go, Qt.LeftButton)
            wait(lambda: not pp.busy, 300, "the CuAu in-painting")
            if pp.result is None:
                raise RuntimeError(f"CuAu in-painting failed: {pp.status.text()}")
            save("painting-3d")
            path = out / "crystal3d.png"
            pp.result_crystal.grab().save(str(path), "PNG", 9)
            print(f"wrote {path}", flush=True)
    finally:
        win.client.shutdown()
        if win.client.proc is not None:
            win.client.kill()
        win.close()
        app.processEvents()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
