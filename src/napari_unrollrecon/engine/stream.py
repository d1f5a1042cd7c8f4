"""Drive a method's generator: add metrics against a reference, forward live changes, finish.

``stream`` wraps the method generator and is itself a generator with the same protocol (send a
dict of changes, get the next :class:`Update`; ``StopIteration.value`` is the :class:`Result`), so
the GUI worker, the CLI and ``bench`` all drive methods the same way. ``run`` drains it.
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np

from napari_unrollrecon.engine import metrics as M
from napari_unrollrecon.methods.base import Problem, Result, StageCache, Update


def stream(
    spec,
    problem: Problem,
    params: dict | None = None,
    reference: np.ndarray | None = None,
    convention: str = "range",
    ssim_every: int = 1,
    cache: StageCache | None = None,
    start: int = 0,
):
    """Run ``spec`` on ``problem``; yields Updates with ``metrics`` filled when a reference is given.

    SSIM costs ~10 ms per 256² image: ``ssim_every=k`` computes it on every k-th stage and the last
    (PSNR and NMSE every stage), which keeps 1000-step samplers fast.
    """
    gen = spec.start(problem, params, cache=cache, start=start)
    if reference is not None:
        reference = np.abs(np.asarray(reference)).astype(np.float32)
    changes = None
    while True:
        try:
            update: Update = gen.send(changes)
        except StopIteration as stop:
            result: Result = stop.value
            if reference is not None:
                result.metrics = M.evaluate(result.image, reference, convention)
            return result
        if reference is not None:
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
    **kw,
) -> Result:
    """Drain :func:`stream` and return the Result; ``on_update`` may return live changes.

    By default intermediate SSIMs are skipped (``ssim_every=0`` means "final only").
    """
    t0 = time.perf_counter()
    gen = stream(spec, problem, params, reference, convention, ssim_every=ssim_every or 10**9, **kw)
    changes = None
    while True:
        try:
            update = gen.send(changes)
        except StopIteration as stop:
            result = stop.value
            result.seconds = time.perf_counter() - t0
            return result
        changes = on_update(update) if on_update else None


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
