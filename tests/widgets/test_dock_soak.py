"""Short soak of the dock (the full one is benchmarks/dock_soak.py): repeated Run/Stop must not
leave workers busy, add layers or keep each run's problem alive; closing the viewer mid-run must
end the worker without an exception."""

from __future__ import annotations

import gc
import random

import pytest
from qtpy.QtCore import QThreadPool

from napari_unrollrecon.methods.base import Problem

pytestmark = pytest.mark.gui


def _live_problems() -> int:
    gc.collect()
    return sum(type(o) is Problem for o in gc.get_objects())


def _run_stop(widget, qtbot, rng):
    widget.run()
    qtbot.wait(int(rng.uniform(0, 150)))
    widget.stop()
    qtbot.waitUntil(widget.settled, timeout=5000)


def _dock_with_dummy(make_napari_viewer, phantom, steps, delay):
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-unrollrecon", "Reconstruction")
    viewer.add_image(phantom, name="phantom")
    widget.method_combo.setCurrentIndex(widget.method_combo.findData("dummy-stages"))
    widget.param_form.set_value("steps", steps)
    widget.param_form.set_value("delay", delay)
    return viewer, widget


def test_run_stop_cycles_leave_nothing_behind(make_napari_viewer, dummy_method, qtbot, phantom):
    viewer, widget = _dock_with_dummy(make_napari_viewer, phantom, steps=50, delay=0.01)
    rng = random.Random(0)
    for _ in range(3):  # the first runs create the method's layers
        _run_stop(widget, qtbot, rng)
    layers, problems = len(viewer.layers), _live_problems()
    for _ in range(15):
        _run_stop(widget, qtbot, rng)
    qtbot.waitUntil(lambda: QThreadPool.globalInstance().activeThreadCount() == 0, timeout=3000)
    assert len(viewer.layers) == layers
    # napari keeps every worker for the session; a stopped run's problem must not stay with it
    assert _live_problems() <= problems + 1
    assert widget.run_button.isEnabled()


def test_closing_the_viewer_mid_run_ends_the_worker(make_napari_viewer, dummy_method, qtbot, phantom):
    viewer, widget = _dock_with_dummy(make_napari_viewer, phantom, steps=1000, delay=0.02)
    widget.run()
    qtbot.waitUntil(lambda: widget.active.last is not None, timeout=10000)
    with qtbot.capture_exceptions() as raised:
        viewer.close()
        qtbot.waitUntil(lambda: QThreadPool.globalInstance().activeThreadCount() == 0, timeout=5000)
        qtbot.wait(200)
    assert not raised, raised
