"""Live training curves: raw values faint behind an EMA-smoothed line, redrawn by one timer (never per message).

Buffers double when full (amortised O(1) appends); curves use clip-to-view and peak downsampling so a long run
stays cheap to draw. ``LiveCurves`` holds one plot per metric in a single GraphicsLayoutWidget.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QTimer

from .common import reset_range

# the app's plot style, set where the first plot of a window is made (the training curves, after the first frame):
# white paper, black ink, no antialiasing (live curves stay cheap to draw)
pg.setConfigOptions(background="w", foreground="k")

from .metrics import METRICS, OPTIONAL_METRICS  # noqa: F401  (re-exported: plots are drawn per metric)


LEGEND_ROW = 99  # below every plot row (optional plots go in rows 2, 3, ...)


class Series:
    def __init__(self):
        self.x = np.empty(256)
        self.y = np.empty(256)
        self.ema = np.empty(256)
        self.n = 0

    def extend(self, xs, ys, alpha: float) -> None:
        for x, y in zip(xs, ys):
            if self.n == len(self.x):
                self.x, self.y, self.ema = (np.resize(a, 2 * len(a)) for a in (self.x, self.y, self.ema))
            prev = self.ema[self.n - 1] if self.n else y
            self.x[self.n], self.y[self.n] = x, y
            self.ema[self.n] = y if not np.isfinite(prev) else (1 - alpha) * prev + alpha * y
            self.n += 1

    def recompute_ema(self, alpha: float) -> None:
        e = self.ema
        for i in range(self.n):
            e[i] = self.y[i] if i == 0 else (1 - alpha) * e[i - 1] + alpha * self.y[i]

    def data(self):
        return self.x[: self.n], self.y[: self.n], self.ema[: self.n]


class LiveCurves(pg.GraphicsLayoutWidget):
    def __init__(self, parent=None, smoothing: float = 0.9):
        super().__init__(parent)
        self.smoothing = smoothing  # EMA weight of the past: ema = s * ema + (1 - s) * y
        self.series = {key: Series() for key, _ in METRICS}
        self.plots, self.raw, self.smooth = {}, {}, {}
        self.log_y: set[str] = set()  # plots drawn on a log y axis (their non-positive points are left out)
        self.plots_changed = None  # optional callback when an optional plot appears or goes
        for key, title in METRICS:
            self._add_plot(key, title)
        # one key for every plot, in its own row under them (never over the data): the faint and the dark line
        self.legend = pg.LegendItem(colCount=2)
        key0 = METRICS[0][0]
        self.legend.addItem(self.raw[key0], "raw value")
        self.legend.addItem(self.smooth[key0], "EMA (smoothed)")
        self.addItem(self.legend, row=LEGEND_ROW, col=0, colspan=2)
        self._dirty = False
        self.timer = QTimer(self)
        self.timer.setInterval(40)  # 25 Hz redraw
        self.timer.timeout.connect(self.redraw)
        self.timer.start()

    def _add_plot(self, key: str, title: str) -> None:
        i = len(self.plots)
        p = self.addPlot(row=i // 2, col=i % 2, title=title)
        p.setLabel("bottom", "step")
        p.setClipToView(True)
        p.setDownsampling(auto=True, mode="peak")
        self.raw[key] = p.plot(pen=pg.mkPen((100, 150, 255, 70), width=1))
        self.smooth[key] = p.plot(pen=pg.mkPen((30, 90, 230), width=1), symbolBrush=(30, 90, 230), symbolPen=None)
        self.plots[key] = p
        for col in range(2):  # equal columns whatever the titles' lengths
            self.ci.layout.setColumnStretchFactor(col, 1)
        self.series.setdefault(key, Series())
        if self.plots_changed is not None:
            self.plots_changed()

    def metrics(self) -> list[tuple[str, str]]:
        """(key, title) of the plots shown now: the fixed ones, then optional ones that have appeared."""
        return list(METRICS) + [(k, t) for k, t in OPTIONAL_METRICS if k in self.plots]

    @property
    def alpha(self) -> float:
        return 1.0 - self.smoothing

    def reset(self) -> None:
        for key, _ in OPTIONAL_METRICS:  # a new run shows an optional curve again only if it logs it
            if key in self.plots:
                self.removeItem(self.plots.pop(key))
                del self.raw[key], self.smooth[key], self.series[key]
                if self.plots_changed is not None:
                    self.plots_changed()
        for key in self.series:
            self.series[key] = Series()
        self._dirty = True
        self.redraw()
        for p in self.plots.values():  # the next run's curves are framed afresh, not inside the last run's range
            reset_range(p)

    def add_records(self, records: list[dict]) -> None:
        for key, title in OPTIONAL_METRICS:
            if key not in self.plots and any(r.get(key) is not None for r in records):
                self._add_plot(key, title)
        for key in self.series:
            pts = [(r["step"], r[key]) for r in records if r.get(key) is not None and "step" in r]
            if pts:
                xs, ys = zip(*pts)
                self.series[key].extend(xs, ys, self.alpha)
        self._dirty = True

    def set_smoothing(self, s: float) -> None:
        self.smoothing = float(s)
        for ser in self.series.values():
            ser.recompute_ema(self.alpha)
        self._dirty = True

    def set_log_y(self, on: bool, key: str | None = None) -> None:
        """Log y on one plot (``key``) or on all; points <= 0 cannot be drawn on a log axis and are left out of that
        plot (F_q and the loss are often negative: their plot then shows what is positive, or nothing)."""
        for k in ([key] if key else list(self.plots)):
            if k not in self.plots:
                continue
            (self.log_y.add if on else self.log_y.discard)(k)
            self.plots[k].setLogMode(y=bool(on))
        self._dirty = True
        self.redraw()

    def n_points(self, key: str = "loss") -> int:
        ser = self.series.get(key)
        return 0 if ser is None else ser.n

    def redraw(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
        for key, ser in self.series.items():
            if key not in self.raw:
                continue
            x, y, e = ser.data()
            if key in self.log_y:
                pos = (y > 0) & (e > 0)
                x, y, e = x[pos], y[pos], e[pos]
            # a lone point (log_every larger than the steps so far) is a marker, not an invisible line
            self.smooth[key].setSymbol("o" if len(x) < 2 else None)
            self.smooth[key].setSymbolSize(7)
            self.raw[key].setData(x, y)
            self.smooth[key].setData(x, e)

    def table(self) -> tuple[list[str], list[list]]:
        """CSV header and rows: step, then raw and EMA values of each metric (blank where a metric is missing)."""
        header = ["step"]
        cols = {}
        shown = self.metrics()
        for key, _ in shown:
            header += [key, f"{key}_ema"]
            x, y, e = self.series[key].data()
            cols[key] = {float(a): (b, c) for a, b, c in zip(x, y, e)}
        steps = sorted(set().union(*[c.keys() for c in cols.values()]))
        rows = []
        for s in steps:
            row = [int(s)]
            for key, _ in shown:
                v = cols[key].get(s)
                row += [None, None] if v is None else [float(v[0]), float(v[1])]
            rows.append(row)
        return header, rows
