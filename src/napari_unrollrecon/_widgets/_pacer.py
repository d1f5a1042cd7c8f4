"""How often the dock may refresh the display during a run: at most ``MAX_RATE`` times a second,
and never so often that refreshing and repainting take more than a third of the time.

With software OpenGL under load one refresh plus the canvas repaint it causes takes 60-200 ms,
so 20 refreshes a second kept the GUI thread (and llvmpipe's threads) busy all the time: the
worker lost CPU and events queued behind back-to-back repaints. The pacer measures each
refresh's cost up to the next timer turn (a timer fires after the posted repaint has been
handled) and spaces the next refresh by ``SPACING`` times a running mean of that cost.
"""

from __future__ import annotations

import time

from qtpy.QtCore import QTimer

SPACING = 3.0  # refresh + repaint at most 1/SPACING of the time
MAX_WAIT = 0.5  # s: however slow the repaint, the display moves at least twice a second


class DisplayPacer:
    def __init__(self, max_rate: float):
        self.min_interval = 1.0 / max_rate
        self.last = 0.0  # when the last refresh started
        self.cost = 0.0  # running mean of refresh + repaint (s)

    def interval(self) -> float:
        return min(max(self.min_interval, SPACING * self.cost), MAX_WAIT)

    def wait(self) -> float:
        """Seconds until the next refresh may run (<= 0: now)."""
        return self.last + self.interval() - time.perf_counter()

    def started(self) -> None:
        """A refresh starts now: measure it, with its repaint, up to the next timer turn."""
        self.last = t0 = time.perf_counter()
        QTimer.singleShot(1, lambda: self._done(t0))

    def _done(self, t0: float) -> None:
        cost = time.perf_counter() - t0
        self.cost = cost if self.cost == 0.0 else 0.5 * (self.cost + cost)
