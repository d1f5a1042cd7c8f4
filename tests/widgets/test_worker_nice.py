"""The reconstruction worker runs at a lower priority than the GUI thread (issue 13.11)."""

from __future__ import annotations

import os
import sys
import threading

import pytest

from napari_unrollrecon._widgets._worker_nice import NICE, niced


def _own_nice() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


def _gen():
    seen = [_own_nice()]
    got = yield seen[0]
    yield got
    return seen


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="threads have their own nice value on Linux")
def test_niced_generator_runs_at_nice_10_in_its_thread_and_passes_values_through():
    main_before, out = _own_nice(), {}

    def worker():
        gen = niced(_gen)()
        out["first"] = next(gen)
        out["echo"] = gen.send("live change")
        try:
            next(gen)
        except StopIteration as stop:
            out["returned"] = stop.value
        out["after"] = _own_nice()

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert out["first"] >= NICE and out["echo"] == "live change" and out["returned"] == [out["first"]]
    assert _own_nice() == main_before  # the GUI thread keeps its priority
    if os.geteuid() == 0:  # only a privileged process may lower nice again
        assert out["after"] == main_before


def test_the_worker_is_not_niced_when_other_work_fills_the_cores(monkeypatch):
    from napari_unrollrecon._widgets._worker_nice import worker_nice

    monkeypatch.delenv("UNROLLRECON_WORKER_NICE", raising=False)
    assert worker_nice(load=0.3, cores=2) == NICE  # idle: the GUI's repaints go first
    assert worker_nice(load=2.4, cores=2) == 0  # two trainings: a niced run would crawl
    monkeypatch.setenv("UNROLLRECON_WORKER_NICE", "10")
    assert worker_nice(load=2.4, cores=2) == NICE  # the user's explicit choice wins
