"""A QPainter plot of line profiles: one curve per panel against distance along the line.

Like :mod:`._plot` (no matplotlib, no vispy): a legend row with each panel's colour, the value
range on the left, the line's length under the axis. NaN samples (outside an image) break a
curve instead of being drawn.
"""

from __future__ import annotations

import numpy as np
from qtpy.QtCore import QPointF, QRectF, Qt
from qtpy.QtGui import QColor, QFont, QPainter, QPen, QPolygonF
from qtpy.QtWidgets import QSizePolicy, QWidget

from napari_unrollrecon._widgets._plot import _COLOURS

_LEFT, _TOP, _RIGHT, _BOTTOM = 46.0, 20.0, 8.0, 16.0  # margins around the axes (px)


def finite_runs(values: np.ndarray) -> list[slice]:
    """Slices of consecutive finite values (a curve is drawn as one polyline per run)."""
    ok = np.concatenate([[False], np.isfinite(values), [False]])
    edges = np.flatnonzero(np.diff(ok.astype(int)))
    return [slice(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2])]


def legend_name(name: str, n: int = 16) -> str:
    """A panel's name for the legend: without its parenthesised detail, cut to ``n`` characters."""
    name = name.split(" (")[0]
    return name if len(name) <= n else name[: n - 1] + "…"


def value_range(curves) -> tuple[float, float]:
    """(low, high) over every curve's finite values, widened when flat."""
    finite = [v[np.isfinite(v)] for _, _, v in curves]
    finite = [v for v in finite if v.size]
    if not finite:
        return 0.0, 1.0
    lo, hi = min(float(v.min()) for v in finite), max(float(v.max()) for v in finite)
    return (lo, hi) if hi - lo > 1e-12 else (lo - 0.5, hi + 0.5)


class ProfilePlot(QWidget):
    """``set_curves([(name, distance, values), ...])`` draws them; ``clear()`` empties it."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.curves: list[tuple[str, np.ndarray, np.ndarray]] = []
        self.message = "draw a line in the ROI layer for a profile"
        self.setMinimumHeight(140)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def set_curves(self, curves) -> None:
        self.curves = [(str(n), np.asarray(d, float), np.asarray(v, float)) for n, d, v in curves]
        self.update()

    def clear(self, message: str | None = None) -> None:
        self.curves = []
        if message is not None:
            self.message = message
        self.update()

    def paintEvent(self, event):  # noqa: N802 - Qt API
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        font = QFont(self.font())
        font.setPointSizeF(max(font.pointSizeF() - 1, 7))
        p.setFont(font)
        area = QRectF(_LEFT, _TOP, max(self.width() - _LEFT - _RIGHT, 10), max(self.height() - _TOP - _BOTTOM, 10))
        p.setPen(QPen(QColor(128, 128, 128, 120), 1))
        p.drawRect(area)
        if not self.curves:
            p.setPen(QColor(160, 160, 160))
            p.drawText(area, Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self.message)
        else:
            self._axes(p, area)
            for i, curve in enumerate(self.curves):
                self._curve(p, area, curve, QColor(_COLOURS[i % len(_COLOURS)]))
        p.end()

    def _axes(self, p: QPainter, area: QRectF) -> None:
        """Legend above the axes, value range on the left, the line's length below."""
        lo, hi = value_range(self.curves)
        p.setPen(QColor(160, 160, 160))
        for value, y in ((hi, area.top()), (lo, area.bottom())):
            p.drawText(QRectF(0, y - 7, _LEFT - 3, 14), Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                       f"{value:.3g}")
        length = max(float(d[-1]) for _, d, _ in self.curves if d.size)
        below = QRectF(area.left(), area.bottom() + 1, area.width(), _BOTTOM - 1)
        p.drawText(below, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop, "0")
        p.drawText(below, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop, f"{length:.0f} px along the line")
        x = area.left()
        for i, (name, _, _) in enumerate(self.curves):
            p.setPen(QColor(_COLOURS[i % len(_COLOURS)]))
            text = legend_name(name)
            width = p.fontMetrics().horizontalAdvance(text) + 10
            if x + width > self.width():
                break
            p.drawText(QRectF(x, 2, width, _TOP - 4), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, text)
            x += width

    def _curve(self, p: QPainter, area: QRectF, curve, colour: QColor) -> None:
        _, dist, values = curve
        lo, hi = value_range(self.curves)
        length = max(max(float(d[-1]) for _, d, _ in self.curves if d.size), 1e-9)
        xs = area.left() + dist / length * area.width()
        ys = area.bottom() - (values - lo) / (hi - lo) * area.height()
        p.setPen(QPen(colour, 1.4))
        for run in finite_runs(values):
            p.drawPolyline(QPolygonF([QPointF(float(x), float(y)) for x, y in zip(xs[run], ys[run])]))
