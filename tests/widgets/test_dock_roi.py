"""The dock's ROI tab (issue 13.10): metrics inside a drawn area and line profiles of every
panel, following the stage slider, shape edits and Compare."""

from __future__ import annotations

import numpy as np
import pytest

from napari_unrollrecon._widgets._roi import ROI_NAME
from napari_unrollrecon.engine import roi
from test_dock_views import _compare, _run  # pytest puts this folder (no __init__.py) on sys.path

pytestmark = pytest.mark.gui


def _cells(widget, column: int) -> list[str]:
    table = widget.roi.tab.table
    return [table.item(r, column).text() for r in range(table.rowCount())]


def _settled(qtbot, widget, rows: int):
    qtbot.waitUntil(lambda: widget.roi.tab.table.rowCount() == rows, timeout=3000)
    qtbot.wait(300)  # the throttled update after the last event


def test_rectangle_button_adds_the_roi_layer_in_rectangle_mode(dock):
    viewer, widget = dock
    widget.roi.tab.buttons["rectangle"].click()
    layer = viewer.layers[ROI_NAME]
    assert layer.mode == "add_rectangle" and viewer.layers.selection.active is layer
    widget.roi.tab.buttons["line"].click()
    assert [lay.name for lay in viewer.layers].count(ROI_NAME) == 1 and layer.mode == "add_line"


def test_roi_metrics_follow_the_slider_and_the_shape(dock, qtbot, phantom):
    viewer, widget = dock
    viewer.add_image(phantom, name="phantom")
    _run(qtbot, widget, "dummy-stages", steps=4)
    widget.roi.tab.buttons["rectangle"].click()
    layer = viewer.layers[ROI_NAME]
    layer.add_rectangles(np.array([[20.0, 20.0], [40.0, 44.0]]))
    _settled(qtbot, widget, 2)  # the run's stack and the reference it is scored against
    assert _cells(widget, 0) == ["dummy-stages", "reference"]
    stack = widget.shown.layer.data
    step = viewer.dims.current_step
    mask = roi.shape_mask("rectangle", layer.data[0], phantom.shape)
    want = roi.roi_metrics(roi.plane(stack, step), phantom, mask)
    assert float(_cells(widget, 3)[0]) == pytest.approx(want["mean"], rel=1e-3)
    assert float(_cells(widget, 1)[0]) == pytest.approx(want["psnr"], abs=0.01)
    assert _cells(widget, 1)[1] == "–"  # the reference is not scored against itself
    assert float(_cells(widget, 3)[1]) == pytest.approx(phantom[mask].mean(), rel=1e-3)
    last = float(_cells(widget, 3)[0])
    viewer.dims.set_current_step(0, 0)  # stage 1 is a quarter of stage 4 (dummy: k/steps)
    qtbot.waitUntil(lambda: float(_cells(widget, 3)[0]) == pytest.approx(last / 4, rel=1e-3), timeout=3000)
    layer.data = [np.array([[0.0, 0.0], [0.0, 63.0], [63.0, 63.0], [63.0, 0.0]])]  # edit: the whole image
    qtbot.waitUntil(lambda: float(_cells(widget, 3)[1]) == pytest.approx(phantom.mean(), rel=1e-3), timeout=3000)


def test_line_profile_of_the_run_and_the_reference(dock, qtbot, phantom):
    viewer, widget = dock
    viewer.add_image(phantom, name="phantom")
    _run(qtbot, widget, "dummy-stages", steps=2)
    widget.roi.tab.buttons["line"].click()
    viewer.layers[ROI_NAME].add_lines(np.array([[32.0, 0.0], [32.0, 63.0]]))
    qtbot.waitUntil(lambda: len(widget.roi.tab.plot.curves) == 2, timeout=3000)
    (name, dist, ref_values) = widget.roi.tab.plot.curves[1]
    assert name == "reference" and len(dist) == 64
    np.testing.assert_allclose(ref_values, phantom[32], rtol=1e-5, atol=1e-6)
    assert widget.roi.tab.table.rowCount() == 0  # a line alone: no area to score


def test_roi_on_a_compare_scores_every_panel_and_stays_on_top(dock, qtbot, phantom):
    viewer, widget = dock
    viewer.add_image(phantom, name="phantom")
    widget.roi.tab.buttons["rectangle"].click()
    _compare(qtbot, widget, ("dummy-stages", "zero-filled"))
    layer = viewer.layers[ROI_NAME]
    qtbot.waitUntil(lambda: viewer.layers[-1] is layer, timeout=2000)  # above the panels made after it
    panel = widget.panels.layers[1]  # draw on the second panel: the same place applies to all
    y, x = panel.translate[-2:]
    layer.add_rectangles(np.array([[y + 10, x + 10], [y + 30, x + 30]]))
    layer.add_lines(np.array([[y + 20, x + 0], [y + 20, x + 63]]))
    _settled(qtbot, widget, 3)
    assert _cells(widget, 0)[0] == "reference" and _cells(widget, 1)[0] == "–"
    assert all(c != "–" for c in _cells(widget, 1)[1:]), "each method is scored against the reference"
    assert float(_cells(widget, 3)[0]) == pytest.approx(phantom[10:31, 10:31].mean(), rel=0.05)
    assert len(widget.roi.tab.plot.curves) == 3
    np.testing.assert_allclose(widget.roi.tab.plot.curves[0][2], phantom[20], rtol=1e-5, atol=1e-6)
