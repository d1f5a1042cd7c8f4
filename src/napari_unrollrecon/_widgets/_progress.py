"""The dock's own progress bar (replaces napari's activity progress bar during a run).

napari's ``progress`` bar calls ``QApplication.processEvents`` when it is created and on every
update, so a pending canvas repaint (45-125 ms with software OpenGL) ran inside it: it was the
longest event-loop stall of a run. This bar is a painted strip in the dock: updating
it asks for a repaint of a few pixels of the dock (joined with the next repaint) and never
processes events. It keeps its place in the layout when hidden, so showing it never re-lays out
the dock.
"""

from __future__ import annotations

from qtpy.QtGui import QColor, QPainter
from qtpy.QtWidgets import QSizePolicy, QWidget

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
    """A thin bar under the status line, shown while a run lasts longer than a moment.

    Not a ``QProgressBar``: its ``setValue`` repaints synchronously, and a synchronous repaint
    composes the whole window (the OpenGL canvas included) inside the call; ``update()`` here
    joins the next repaint the event loop does anyway."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.fraction = 0.0
        self.setFixedHeight(5)
        policy = self.sizePolicy()
        policy.setRetainSizeWhenHidden(True)
        policy.setHorizontalPolicy(QSizePolicy.Policy.Expanding)
        self.setSizePolicy(policy)
        self.setToolTip("progress of the running method (or of Compare)")
        self.hide()

    def show_fraction(self, fraction: float | None) -> None:
        """Show the bar at ``fraction`` (0-1); None keeps it where it is."""
        if fraction is not None and int(STEPS * fraction) != int(STEPS * self.fraction):
            self.fraction = float(fraction)
            self.update()
        if self.isHidden():
            self.show()

    def finish(self) -> None:
        self.hide()
        self.fraction = 0.0

    def paintEvent(self, event):  # noqa: N802 - Qt API
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(128, 128, 128, 60))
        p.fillRect(0, 0, int(self.width() * self.fraction), self.height(), QColor(_COLOURS[0]))
        p.end()
