"""Run the reconstruction worker at a lower CPU priority than the GUI thread (Linux).

With software OpenGL a canvas repaint is done by llvmpipe's threads and the X server, and on a
busy machine they wait for CPU behind the worker (which computes flat out): a repaint took
120-210 ms wall for ~20 ms of the main thread's CPU. Lowering the *worker thread's* priority
(nice +10; Linux gives each thread its own nice value) lets the repaint go first and the worker
use what is left, so the run itself is barely slower. The nice value is put back when the run
ends where the system allows it (raising priority again needs privileges; napari's pool thread
then keeps nice +10 until it exits after 30 s idle). When other processes already keep every core
busy the worker is not niced (:func:`worker_nice`). Elsewhere this does nothing.
"""

from __future__ import annotations

import os
import threading
from typing import Callable

NICE = int(os.environ.get("UNROLLRECON_WORKER_NICE", "10"))  # 0: the worker keeps the GUI's priority


def worker_nice(load: float | None = None, cores: int | None = None) -> int:
    """:data:`NICE` unless other work already fills the cores (1-minute load average ≥ cores):
    there a niced worker gets about a tenth of a core against each busy process (a GDUNet CT run
    with 2.3 s to its first stage took 27.7 s beside two trainings; docs/gui.md). An explicit
    ``UNROLLRECON_WORKER_NICE`` always wins."""
    if "UNROLLRECON_WORKER_NICE" in os.environ or not hasattr(os, "getloadavg"):
        return NICE
    load = os.getloadavg()[0] if load is None else load
    cores = (os.cpu_count() or 1) if cores is None else cores
    return NICE if load < cores else 0


def _set_nice(value: int) -> tuple[int, int] | None:
    """Raise the calling thread's nice value to ``value``; returns (thread id, previous value),
    or None where threads have no nice value of their own."""
    if not hasattr(os, "setpriority") or not hasattr(threading, "get_native_id"):
        return None
    tid = threading.get_native_id()
    try:
        before = os.getpriority(os.PRIO_PROCESS, tid)
        if value > before:
            os.setpriority(os.PRIO_PROCESS, tid, value)
        return tid, before
    except OSError:
        return None


def _restore_nice(saved: tuple[int, int] | None) -> None:
    """Put the value back, from the same thread only (a generator closed later from the GUI
    thread must not touch a pool thread that may be running another job by then)."""
    if saved is None or saved[0] != threading.get_native_id():
        return
    try:
        os.setpriority(os.PRIO_PROCESS, *saved)
    except OSError:  # lowering nice again needs CAP_SYS_NICE / RLIMIT_NICE: keep it
        pass


def niced(gen_fn: Callable, nice: int = NICE) -> Callable:
    """A generator function running ``gen_fn()`` with its thread at nice ``nice``."""

    def run():
        saved = _set_nice(nice)
        try:
            return (yield from gen_fn())
        finally:
            _restore_nice(saved)

    return run
