"""The dock's own progress bar (replaces napari's activity progress bar during a run).

napari's ``progress`` bar calls ``QApplication.processEvents`` when it is created and on every
update, so a pending canvas repaint (45-125 ms with software OpenGL) ran inside it: it was the
longest event-loop stall of a run. This bar is a painted strip in the dock: updating
it asks for a repaint of a few pixels of the dock (joined with the next repaint) and never
processes events. It is always in the layout (drawn empty between runs): showing a hidden widget
re-lays out the dock.
"""

from __future__ import annotations

from qtpy.QtGui import QColor, QPainter
from qtpy.QtWidgets import QLabel, QSizePolicy, QWidget

from napari_unrollrecon._widgets._plot import _COLOURS

STEPS = 400  # resolution of the bar (a fraction of the run)
TICK_MS = 500  # the bar moves at most twice a second


def run_fraction(active) -> float | None:
    """How far a run (or a Compare: finished methods plus the running one's share) has got,
    from the dock's run state; None before its first stage."""
    u = getattr(active, "last", None)
    if getattr(active, "compare", False):
        n = max(len(active.titles), 1)
        part = u.stage / u.total if u is not None and 0 < u.stage < u.total else 0.0  # a finished one is in done
        return min((active.done + part) / n, 1.0)
    if u is None:
        return None
    return min(u.stage / max(u.total, 1), 1.0)


class RunProgress(QWidget):
    """A thin bar under the status line, drawn while a run lasts longer than a moment.

    Not a ``QProgressBar``: its ``setValue`` repaints synchronously, and a synchronous repaint
    composes the whole window (the OpenGL canvas included) inside the call; ``update()`` here
    joins the next repaint the event loop does anyway."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.fraction: float | None = None  # None: no run shown, nothing drawn
        self.setFixedHeight(5)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setToolTip("progress of the running method (or of Compare)")

    def active(self) -> bool:
        return self.fraction is not None

    def show_fraction(self, fraction: float | None) -> None:
        """Draw the bar at ``fraction`` (0-1); None before a run's first stage (an empty bar)."""
        fraction = 0.0 if fraction is None else float(fraction)
        if self.fraction is None or int(STEPS * fraction) != int(STEPS * self.fraction):
            self.fraction = fraction
            self.update()

    def finish(self) -> None:
        if self.fraction is not None:
            self.fraction = None
            self.update()

    def paintEvent(self, event):  # noqa: N802 - Qt API
        if self.fraction is None:
            return
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(128, 128, 128, 60))
        p.fillRect(0, 0, int(self.width() * self.fraction), self.height(), QColor(_COLOURS[0]))
        p.end()


class StatusLine(QLabel):
    """The dock's status text. While ``hold`` is on (a run streams), its height only grows: a
    status that changes its line count moves every widget below it (plot, tabs), and the moved
    widgets repaint the whole dock — with the OpenGL canvas composed in, ~25 ms more per frame
    under llvmpipe. Released, it takes the height of its text again."""

    def __init__(self, text: str = "", parent=None):
        super().__init__(text, parent)
        self.setWordWrap(True)
        self._held = 0  # the tallest height seen while held; 0 = not held

    def hold(self, on: bool) -> None:
        self._held = max(self.height(), 1) if on else 0
        self.updateGeometry()

    def heightForWidth(self, width: int) -> int:  # noqa: N802 - Qt API
        h = super().heightForWidth(width)
        if self._held:
            self._held = max(self._held, h)
            return self._held
        return h
