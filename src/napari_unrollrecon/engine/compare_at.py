"""Compare at a fixed stage: what each method showed at its stage k, or after t seconds.

A Compare records, per method, the stages it showed (a :class:`Trajectory`: stage, elapsed
seconds, metrics and image of each shown update, bounded like the dock's stage stacks). The
Compare panels and table can then be re-laid at one point of every run without re-running:
``at(mode, value)`` with mode ``"final"``, ``"stage"`` (the newest recorded stage ≤ k; a method
with fewer stages shows its final one) or ``"time"`` (the newest stage shown within t seconds of
the method's start; the first one when none was). :func:`shared_limits` is the one contrast
range of linked panels. Qt-free; the dock's part is ``_widgets/_compare_stage.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

AT_MODES = {"final": "final results", "stage": "at stage k", "time": "at elapsed s"}
MAX_FRAMES = 100  # frames kept per method; older ones are thinned to every other
RECENT = 50  # the newest frames always kept in full


@dataclass
class Snapshot:
    """One shown stage of a run."""

    stage: int
    total: int
    elapsed: float
    image: np.ndarray
    metrics: dict = field(default_factory=dict)


class Trajectory:
    """The stages one method showed, in order, at most ``max_frames`` of them (the first and the
    newest ``recent`` always kept; older ones thinned to every other when full)."""

    def __init__(self, max_frames: int = MAX_FRAMES, recent: int = RECENT):
        self.max_frames, self.recent = max(int(max_frames), int(recent) + 2), int(recent)
        self.snaps: list[Snapshot] = []

    def __len__(self) -> int:
        return len(self.snaps)

    def add(self, stage: int, total: int, elapsed: float, image, metrics: dict | None = None) -> None:
        """Record one shown stage (the image is copied: the run may reuse its buffer)."""
        snap = Snapshot(int(stage), int(total or 0), float(elapsed), np.array(image, np.float32),
                        dict(metrics or {}))
        if self.snaps and self.snaps[-1].stage == snap.stage:
            self.snaps[-1] = snap  # the same stage shown again (e.g. the final one)
            return
        self.snaps.append(snap)
        if len(self.snaps) > self.max_frames:
            old = len(self.snaps) - self.recent
            self.snaps = self.snaps[:old:2] + self.snaps[old:]

    def at(self, mode: str, value: float = 0.0) -> Snapshot | None:
        """The snapshot shown at ``mode`` / ``value`` (see the module docstring); None if empty."""
        if not self.snaps:
            return None
        return self.snaps[pick([s.stage for s in self.snaps], [s.elapsed for s in self.snaps], mode, value)]

    @property
    def total(self) -> int:
        return max((s.total or s.stage for s in self.snaps), default=0)


def pick(stages: list[int], elapsed: list[float], mode: str, value: float = 0.0) -> int:
    """Index of the frame to show: the last (``"final"``), the newest with stage ≤ ``value``
    (``"stage"``) or with elapsed ≤ ``value`` seconds (``"time"``); the first when none is."""
    if mode not in AT_MODES:
        raise ValueError(f"mode must be one of {tuple(AT_MODES)}; got {mode!r}")
    if not stages:
        raise ValueError("no frame to pick from")
    if mode == "final":
        return len(stages) - 1
    keys = stages if mode == "stage" else elapsed
    within = [i for i, k in enumerate(keys) if k <= value + 1e-9]
    return within[-1] if within else 0


def shared_limits(limits: list) -> tuple[float, float] | None:
    """One contrast range for linked panels: the union of their ranges (nothing is clipped that
    one panel showed); None without panels."""
    limits = [tuple(map(float, lim)) for lim in limits]
    if not limits:
        return None
    lo, hi = min(lo for lo, _ in limits), max(hi for _, hi in limits)
    return (lo, hi) if hi > lo else (lo, lo + 1.0)
