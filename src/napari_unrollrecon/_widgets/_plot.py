"""A tiny QPainter line plot for the dock: one panel per series against stage.

matplotlib is not a dependency and pyqtgraph is not installed; three stacked sparkline panels
(PSNR, SSIM, residual) with the latest value printed are all the dock needs.
"""

from __future__ import annotations

import math

from qtpy.QtCore import QPointF, QRectF, Qt
from qtpy.QtGui import QColor, QFont, QPainter, QPen, QPolygonF
from qtpy.QtWidgets import QSizePolicy, QWidget

_COLOURS = ("#4fc3f7", "#ffb74d", "#aed581", "#f06292", "#ba68c8")


class LivePlot(QWidget):
    """Stacked panels; ``add(name, stage, value)`` appends a point, ``clear()`` empties all."""

    def __init__(self, panels=(("psnr", "PSNR (dB)", False), ("ssim", "SSIM", False),
                               ("residual", "residual ‖Ax−y‖/‖y‖", True)), parent=None):
        super().__init__(parent)
        self.panels = list(panels)  # (key, title, log-scale)
        self.series: dict[str, list[tuple[float, float]]] = {k: [] for k, _, _ in self.panels}
        self.total = 1
        self.setMinimumHeight(150)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)

    def clear(self, total: int = 1) -> None:
        for v in self.series.values():
            v.clear()
        self.total = max(total, 1)
        self.update()

    def add(self, key: str, stage: float, value: float | None) -> None:
        if value is None or key not in self.series or not math.isfinite(value):
            return
        self.series[key].append((float(stage), float(value)))
        self.total = max(self.total, int(stage))
        self.update()

    def set_total(self, total: int) -> None:
        self.total = max(int(total), 1)

    def last(self, key: str) -> float | None:
        s = self.series.get(key)
        return s[-1][1] if s else None

    def best(self, key: str = "psnr") -> tuple[float, float] | None:
        """(stage, value) of the highest value so far: an *oracle* (it is chosen against the
        reference), shown as a marker and never reported as the result."""
        s = self.series.get(key)
        return max(s, key=lambda sv: sv[1]) if s else None

    # ------------------------------------------------------------------ painting
    def paintEvent(self, event):  # noqa: N802 - Qt API
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        shown = [pn for pn in self.panels if self.series[pn[0]]] or self.panels[:1]
        h = self.height() / len(shown)
        for i, (key, title, log) in enumerate(shown):
            colour = QColor(_COLOURS[self.panels.index((key, title, log)) % len(_COLOURS)])
            self._panel(p, QRectF(0, i * h, self.width(), h), key, title, log, colour)
        p.end()

    def _panel(self, p: QPainter, rect: QRectF, key, title, log, colour):
        font = QFont(self.font())
        font.setPointSizeF(max(font.pointSizeF() - 1, 7))
        p.setFont(font)
        area = rect.adjusted(44, 16, -8, -4)
        p.setPen(QPen(QColor(128, 128, 128, 120), 1))
        p.drawRect(area)
        pts = self.series[key]
        value = f"{pts[-1][1]:.4g}" if pts else "–"
        p.setPen(QColor(220, 220, 220))
        p.drawText(QRectF(rect.left() + 4, rect.top(), rect.width() - 8, 16),
                   Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, title)
        p.setPen(colour)
        p.drawText(QRectF(rect.left() + 4, rect.top(), rect.width() - 8, 16),
                   Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, value)
        if not pts:
            return
        f = (lambda v: math.log10(max(v, 1e-12))) if log else (lambda v: v)
        ys = [f(v) for _, v in pts]
        lo, hi = min(ys), max(ys)
        if hi - lo < 1e-9:
            lo, hi = lo - 0.5, hi + 0.5
        x_hi = max(self.total, max(s for s, _ in pts), 2)
        p.setPen(QColor(160, 160, 160))
        for v, y in ((hi, area.top()), (lo, area.bottom())):
            txt = f"{10 ** v:.0e}" if log else f"{v:.3g}"
            p.drawText(QRectF(rect.left(), y - 7, 42, 14), Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, txt)

        def to_xy(s, y):
            return QPointF(area.left() + (s - 1) / max(x_hi - 1, 1) * area.width(),
                           area.bottom() - (y - lo) / (hi - lo) * area.height())

        poly = QPolygonF([to_xy(s, y) for (s, _), y in zip(pts, ys)])
        p.setPen(QPen(colour, 1.6))
        p.drawPolyline(poly)
        p.setBrush(colour)
        p.drawEllipse(poly[poly.size() - 1], 2.5, 2.5)
        p.setBrush(Qt.BrushStyle.NoBrush)
        best = self.best(key) if key == "psnr" else None
        if best is not None and len(pts) > 2 and best[1] > pts[-1][1] + 1e-3:  # only when it differs
            at = to_xy(best[0], f(best[1]))
            p.setPen(QPen(QColor(255, 255, 255), 1.2, Qt.PenStyle.DashLine))
            p.drawLine(QPointF(at.x(), area.top()), QPointF(at.x(), area.bottom()))
            p.drawText(QRectF(area.left() + 2, area.top(), area.width() - 4, 14),
                       Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop,
                       f"best so far (oracle) {best[1]:.2f} @ {best[0]:g}")
