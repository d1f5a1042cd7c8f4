"""Drive a method's generator: add metrics against a reference, forward live changes, finish.

``stream`` wraps the method generator and is itself a generator with the same protocol (send a
dict of changes, get the next :class:`Update`; ``StopIteration.value`` is the :class:`Result`), so
the GUI worker, the CLI and ``bench`` all drive methods the same way. ``run`` drains it.
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np

from napari_unrollrecon.engine import memory
from napari_unrollrecon.engine import metrics as M
from napari_unrollrecon.methods.base import Problem, Result, StageCache, Update

MAX_RATE = 20.0  # updates per second a consumer is shown by default
KEEP_ALL = 32  # runs of at most this many stages (unrolled networks) show every stage


class NonFiniteError(ValueError):
    """A method produced NaN or infinite values: the run stops with the method and the stage named."""


def check_finite(spec, update: Update) -> None:
    """One reduction per stage on the estimate (no copy to numpy): a non-finite stage stops the run."""
    import torch

    est = update.estimate
    bad = (not bool(torch.isfinite(est).all())) if isinstance(est, torch.Tensor) else \
        (not np.all(np.isfinite(update.image)))
    if bad:
        raise NonFiniteError(f"{spec.title} produced NaN or infinite values at stage {update.stage}/{update.total}; "
                             "lower its step size or weight, or check the input's scale")


class Throttle:
    """Which updates a consumer is shown: ≤ ``max_rate`` per second and always the last one;
    every stage of a short run (≤ ``keep_all`` stages). The first update counts against the rate
    from the moment the throttle starts, so a run of duration d shows ≤ rate·d + 1 updates."""

    def __init__(self, max_rate: float = MAX_RATE, clock: Callable[[], float] = time.perf_counter,
                 keep_all: int = KEEP_ALL):
        self.interval = 1.0 / max_rate if max_rate > 0 else 0.0
        self.clock = clock
        self.keep_all = keep_all
        self.last: float | None = None

    def start(self) -> None:
        self.last = self.clock()

    def __call__(self, stage: int, total: int) -> bool:
        now = self.clock()
        if self.last is None:
            self.last = now - self.interval  # not started: show the first update at once
        if stage >= total or total <= self.keep_all or now - self.last >= self.interval:
            self.last = now
            return True
        return False


def check_memory(spec, problem: Problem, params: dict | None = None) -> None:
    """Refuse a run whose estimated working set (image elements × the method's bytes per element ×
    K samples) exceeds the memory limit (:mod:`engine.memory`), before anything is allocated."""
    per = spec.memory_per_pixel or (768 if spec.learned else 128)
    k = max(1, int((params or {}).get("samples", 1) or 1))
    shape = tuple(problem.image_shape)
    memory.check(memory.array_bytes(shape, per * k), f"{spec.title} on a {' × '.join(map(str, shape))} problem")


def stream(
    spec,
    problem: Problem,
    params: dict | None = None,
    reference: np.ndarray | None = None,
    convention: str = "range",
    ssim_every: int = 1,
    cache: StageCache | None = None,
    start: int = 0,
    throttle: Throttle | None = None,
):
    """Run ``spec`` on ``problem``; yields every Update, with ``show`` set by ``throttle`` (all
    shown without one) and ``metrics`` filled for shown updates when a reference is given.

    SSIM costs ~10 ms per 256² image: ``ssim_every=k`` computes it on every k-th stage and the last
    (PSNR and NMSE on every shown stage). Updates not shown are never materialised here.
    """
    check_memory(spec, problem, params)
    gen = spec.start(problem, params, cache=cache, start=start)
    if reference is not None:
        reference = np.abs(np.asarray(reference)).astype(np.float32)
    if throttle is not None and throttle.last is None:
        throttle.start()
    changes = None
    while True:
        try:
            update: Update = gen.send(changes)
        except StopIteration as stop:
            result: Result = stop.value
            if reference is not None:
                result.metrics = M.evaluate(result.image, reference, convention)
            return result
        check_finite(spec, update)
        update.show = throttle(update.stage, update.total) if throttle is not None else True
        if reference is not None and update.show:
            last = update.stage >= update.total
            want_ssim = last or ssim_every <= 1 or update.stage % ssim_every == 0
            update.metrics = M.evaluate(update.image, reference, convention, with_ssim=want_ssim)
        changes = yield update


def run(
    spec,
    problem: Problem,
    params: dict | None = None,
    reference: np.ndarray | None = None,
    convention: str = "range",
    on_update: Callable[[Update], dict | None] | None = None,
    ssim_every: int = 0,
    throttle: Throttle | None = None,
    **kw,
) -> Result:
    """Drain :func:`stream` and return the Result; ``on_update`` may return live changes.

    By default intermediate SSIMs are skipped (``ssim_every=0`` means "final only"). Without an
    ``on_update`` nothing looks at the updates, so none is materialised (metrics come only for
    the Result); with one, metrics come for the updates ``throttle`` shows (all without one).
    """
    t0 = time.perf_counter()
    if on_update is None:
        metric_ref, throttle = None, None
    else:
        metric_ref = reference
    gen = stream(spec, problem, params, metric_ref, convention, ssim_every=ssim_every or 10**9,
                 throttle=throttle, **kw)
    changes = None
    while True:
        try:
            update = gen.send(changes)
        except StopIteration as stop:
            result = stop.value
            if on_update is None and reference is not None:
                result.metrics = M.evaluate(result.image, np.abs(np.asarray(reference)).astype(np.float32),
                                            convention)
            result.seconds = time.perf_counter() - t0
            return result
        changes = on_update(update) if on_update else None


def relay(gen, wrap: Callable = lambda item: item):
    """Re-yield a protocol generator's items through ``wrap``, forwarding what is sent back; returns
    its return value (``result = yield from relay(gen, wrap)`` inside another generator)."""
    changes = None
    while True:
        try:
            item = gen.send(changes)
        except StopIteration as stop:
            return stop.value
        changes = yield wrap(item)


def collect(gen, changes_at: dict | None = None, stage=lambda item: item.stage):
    """Drain any protocol generator, keeping every yielded item: returns (items, return value).

    ``changes_at`` maps a stage number to the dict of live changes sent after that stage's item;
    ``stage`` reads the stage number from an item (for generators that wrap Updates).
    """
    items, changes, pending = [], None, dict(changes_at or {})
    while True:
        try:
            item = gen.send(changes)
        except StopIteration as stop:
            return items, stop.value
        items.append(item)
        changes = pending.pop(stage(item), None)
