"""Regression tests (issue 13) for what the canvas shows across runs: panel labels when the
number of panels changes, a single run after side by side or Compare, the stage slider's range,
the selected layer, the |error| layer without side by side, controls per modality."""

from __future__ import annotations

import numpy as np
import pytest
from qtpy.QtCore import Qt

from napari_unrollrecon._widgets._controller import META_KEY
from napari_unrollrecon._widgets._view import LABELS_NAME, unwrapped

pytestmark = pytest.mark.gui


def _run(qtbot, widget, method, **values):
    widget.method_combo.setCurrentIndex(widget.method_combo.findData(method))
    for name, value in values.items():
        widget.param_form.set_value(name, value)
    widget.run()
    assert widget.worker is not None, widget.status.text()
    qtbot.waitUntil(widget.settled, timeout=20000)


def _compare(qtbot, widget, names):
    for i in range(widget.compare_list.count()):
        item = widget.compare_list.item(i)
        on = item.data(Qt.ItemDataRole.UserRole) in names
        item.setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)
    widget.compare()
    assert widget.worker is not None, widget.status.text()
    qtbot.waitUntil(widget.settled, timeout=20000)


def _stage_frames(viewer, widget) -> int:
    layer = widget.shown.layer
    return int(viewer.dims.nsteps[viewer.dims.ndim - layer.ndim])


def test_fewer_panels_then_compare_on_fewer_methods_keep_labels_and_status(dock, qtbot, phantom):
    viewer, widget = dock
    viewer.add_image(phantom, name="phantom")
    widget.side_check.setChecked(True)
    _run(qtbot, widget, "dummy-stages", steps=3, extra=True)  # reference | stages | |error| | map
    qtbot.waitUntil(lambda: len(widget.panels.captions()) == 4, timeout=2000)
    _run(qtbot, widget, "zero-filled")
    assert len(widget.panels.captions()) == 3 and widget.panels.captions()[1].startswith("Zero-filled")
    _compare(qtbot, widget, ("zero-filled", "dummy-stages"))
    assert widget.table.rowCount() == 2 and len(widget.panels.captions()) == 3
    _compare(qtbot, widget, ("zero-filled",))
    assert widget.table.rowCount() == 1 and len(widget.panels.captions()) == 2
    assert "compared 1 method " in widget.status.text()


def test_a_single_run_after_side_by_side_and_compare_resets_the_view(dock, qtbot, phantom):
    viewer, widget = dock
    viewer.add_image(phantom, name="phantom")
    widget.side_check.setChecked(True)
    _run(qtbot, widget, "dummy-stages", steps=3)
    _compare(qtbot, widget, ("zero-filled", "dummy-stages"))
    widget.side_check.setChecked(False)
    _run(qtbot, widget, "dummy-stages", steps=2)
    assert LABELS_NAME not in viewer.layers, "hidden label points would still count in the world extent"
    extent = viewer.layers.extent.world
    np.testing.assert_allclose(extent[:, -2:], [[0, 0], [63, 63]])  # the panels are gone: one image
    np.testing.assert_allclose(viewer.scene.camera.center[-2:], (31.5, 31.5), atol=1.0)
    viewer.reset_view()  # Home fits the same single image
    np.testing.assert_allclose(viewer.scene.camera.center[-2:], (31.5, 31.5), atol=1.0)


def test_stage_slider_spans_the_current_run_and_the_result_is_selected(dock, qtbot, phantom):
    viewer, widget = dock
    viewer.add_image(phantom, name="phantom")
    _run(qtbot, widget, "dummy-stages", steps=7, extra=True)
    assert _stage_frames(viewer, widget) == 7
    _run(qtbot, widget, "zero-filled")
    assert _stage_frames(viewer, widget) == 1, "hidden earlier stacks must not stretch the stage slider"
    active = viewer.layers.selection.active
    assert active.name == widget.shown.layer.name  # (the dock holds proxies of the layers)
    assert active.visible
    earlier = viewer.layers["dummy-stages"]
    earlier.visible = True  # showing an earlier result brings its stages back
    assert earlier.data.shape[0] == 7 and _stage_frames(viewer, widget) == 7


def test_showing_the_error_layer_lays_the_run_out_side_by_side(dock, qtbot, phantom):
    viewer, widget = dock
    viewer.add_image(phantom, name="phantom")
    _run(qtbot, widget, "dummy-stages", steps=3)
    err = widget.shown.err_layer
    assert err is not None and not err.visible and not widget.side_check.isChecked()
    err.visible = True  # its eye in the layer list
    qtbot.waitUntil(lambda: widget.side_check.isChecked(), timeout=2000)
    assert any(c.startswith("|error|") for c in widget.panels.captions())
    assert err.visible and not np.allclose(err.translate, widget.shown.layer.translate)  # beside, not over it


def test_controls_and_weights_follow_the_modality(dock, phantom):
    viewer, widget = dock
    viewer.add_image(phantom, name="phantom")
    widget.method_combo.setCurrentIndex(widget.method_combo.findData("dummy-stages"))
    _, ct_only = widget.param_form.controls["ct_only"]
    assert widget.modality_combo.currentData() == "mri"
    assert ct_only.isHidden() and widget.frames_combo.isHidden() and widget.views_spin.isHidden()
    assert "ct_only" in widget.param_form.values()  # hidden, still passed to the method
    widget.method_combo.setCurrentIndex(widget.method_combo.findData("gdunet"))
    assert "gdunet-mri" in widget.method_info.text() and "gdunet-ct" not in widget.method_info.text()
    widget.modality_combo.setCurrentIndex(widget.modality_combo.findData("ct"))
    assert "gdunet-ct" in widget.method_info.text()
    widget.method_combo.setCurrentIndex(widget.method_combo.findData("dummy-stages"))
    _, ct_only = widget.param_form.controls["ct_only"]
    assert not ct_only.isHidden() and widget.mask_combo.isHidden() and not widget.views_spin.isHidden()
    widget.modality_combo.setCurrentIndex(widget.modality_combo.findData("dmri"))
    assert not widget.frames_combo.isHidden()


def test_the_dock_keeps_its_width_and_compare_labels_and_rows_fit(dock, qtbot, phantom):
    viewer, widget = dock
    viewer.add_image(phantom, name="phantom")
    frame = widget.parentWidget()  # napari's dock widget around ours
    qtbot.wait(50)
    before = frame.minimumSizeHint().width(), widget.sizeHint().width()
    long_name = "a_mask_layer_named_after_its_folder_without_any_spaces_" * 3
    viewer.add_image(np.ones((32, 32), np.float32), name=long_name)
    widget.input_combo.setCurrentText("phantom")
    widget.mask_layer_combo.setCurrentText(long_name)
    qtbot.waitUntil(lambda: "does not match" in widget.realised_label.text(), timeout=3000)
    widget._say("a long message " * 30 + long_name)
    qtbot.wait(50)
    assert (frame.minimumSizeHint().width(), widget.sizeHint().width()) == before
    for method in ("cgpd-csnet", "gdunet", "tv"):  # the sections fit the dock's width (nothing is cut)
        widget.method_combo.setCurrentIndex(widget.method_combo.findData(method))
        assert widget.body_scroll.widget().minimumSizeHint().width() <= before[1] - 20, method
    window, screen = viewer.window._qt_window, viewer.window._qt_window.screen().availableGeometry()
    assert window.minimumSizeHint().height() <= screen.height()
    widget.mask_layer_combo.setCurrentIndex(0)
    viewer.canvas.size = (600, 250)  # a narrow canvas: panels narrower than a label's score line
    _compare(qtbot, widget, ("zero-filled", "dummy-stages"))
    panel_px = phantom.shape[1] * viewer.scene.camera.zoom
    for caption in widget.panels.captions():  # no label runs into its neighbour's (~9 px a character)
        assert max(len(line) for line in caption.splitlines()) * 9.0 <= panel_px, (caption, panel_px)
    table = widget.table
    rows = table.verticalHeader().defaultSectionSize()
    assert table.minimumHeight() >= table.horizontalHeader().sizeHint().height() + 5 * rows


def test_an_extra_maps_contrast_follows_the_stage_on_the_slider(dock, qtbot, phantom):
    viewer, widget = dock
    viewer.add_image(phantom, name="phantom")
    widget.side_check.setChecked(True)
    _run(qtbot, widget, "dummy-stages", steps=3, extra=True)  # map of stage k = 10^k × stage k's image
    qtbot.waitUntil(lambda: len(widget.panels.captions()) == 4, timeout=2000)
    [layer] = [l for l in viewer.layers if l.metadata.get(META_KEY, {}).get("kind") == "extra"]
    axis = viewer.dims.ndim - layer.ndim
    highs = []
    for frame in range(3):
        viewer.dims.set_current_step(axis, frame)
        qtbot.wait(20)
        highs.append(layer.contrast_limits[1])
        expected = np.percentile(widget.shown.extras["map"].view[frame], 99)
        assert highs[-1] == pytest.approx(expected, rel=1e-5)
    assert highs[2] > 50 * highs[0]  # one range for all stages would leave stage 1 flat


def test_an_extra_map_that_starts_later_keeps_frames_aligned_with_the_image():
    """DD-UGM streams its branch maps only after the L+S warm start: frame i of a map must still
    belong to the image's frame i (blank before the map begins)."""
    from types import SimpleNamespace

    from napari_unrollrecon._widgets import _controller as C
    from napari_unrollrecon._widgets._view import ResultView

    view = ResultView(None, "x")
    view.stack = C.StageStack((2, 2))
    for stage in range(1, 6):
        extras = {"branch": np.full((2, 2), stage, np.float32)} if stage >= 4 else None
        view.add(SimpleNamespace(image=np.zeros((2, 2), np.float32), stage=stage, label="", metrics={},
                                 total=5, extras=extras))
    branch = view.extras["branch"]
    assert branch.stages == view.stack.stages == [1, 2, 3, 4, 5]
    np.testing.assert_array_equal(branch.view[:, 0, 0], [0, 0, 0, 4, 5])


def test_extra_maps_stay_aligned_when_a_long_run_thins_its_stages():
    """A long sampler thins its stack, then overwrites the newest frame between kept frames: the
    extra maps (std over K samples) must mirror the thinning once, not on every overwrite
    (they shrank to a quarter of the image's frames and the std panel showed another stage)."""
    from types import SimpleNamespace

    from napari_unrollrecon._widgets import _controller as C
    from napari_unrollrecon._widgets._view import ResultView

    clock = iter(np.arange(0.0, 1000.0, 0.3))  # every other stage overwrites (keep_every 0.5 s)
    view = ResultView(None, "x")
    view.stack = C.StageStack((2, 2), keep_all=4, keep_every=0.5, max_frames=12, recent=4,
                              clock=lambda: next(clock))
    for stage in range(1, 80):
        image = np.full((2, 2), stage, np.float32)
        view.add(SimpleNamespace(image=image, stage=stage, label="", metrics={}, total=79, extras={"std": image}))
    std = view.extras["std"]
    assert view.stack.thinned and std.stages == view.stack.stages
    np.testing.assert_array_equal(std.view[:, 0, 0], view.stack.view[:, 0, 0])


def test_inputs_under_a_streaming_result_are_hidden_while_it_runs_and_restored(dock, qtbot, phantom):
    """Layers the opaque result covers cost a repaint each (issue 13, item 11): hidden while the
    run streams, named in the status line, shown again at the end unless the user toggled one."""
    viewer, widget = dock
    viewer.add_image(phantom, name="phantom")
    viewer.add_image(phantom[:32], name="half", translate=(16, 0))  # inside the result's extent
    viewer.add_image(phantom, name="beside", translate=(0, 100))  # not covered: stays
    widget.input_combo.setCurrentText("phantom")
    widget.method_combo.setCurrentIndex(widget.method_combo.findData("dummy-stages"))
    widget.param_form.set_value("steps", 40)
    widget.param_form.set_value("delay", 0.05)
    widget.run()
    qtbot.waitUntil(lambda: not viewer.layers["phantom"].visible, timeout=10000)
    assert not viewer.layers["half"].visible and viewer.layers["beside"].visible
    assert "hidden under the result" in widget.status.text() and "'half'" in widget.status.text()
    viewer.layers["half"].visible = True  # the user wants it: the dock must not undo that...
    viewer.layers["half"].visible = False  # ...nor a later choice to hide it
    qtbot.waitUntil(widget.settled, timeout=20000)
    assert viewer.layers["phantom"].visible and viewer.layers["beside"].visible
    assert not viewer.layers["half"].visible


def test_side_by_side_hides_no_input(dock, qtbot, phantom):
    viewer, widget = dock
    viewer.add_image(phantom, name="phantom")
    widget.side_check.setChecked(True)
    seen = []
    viewer.layers["phantom"].events.visible.connect(lambda e: seen.append(e.source.visible))
    _run(qtbot, widget, "dummy-stages", steps=3, delay=0.05)
    assert seen == [] and viewer.layers["phantom"].visible


def test_the_stage_slider_stays_on_screen_from_one_run_to_the_next(dock, qtbot, phantom):
    """A second run must not hide the stage slider at its first stage and show it again at its
    second: each flip resized the canvas (two full repaints in the Run click's stall)."""
    viewer, widget = dock
    viewer.add_image(phantom, name="phantom")
    _run(qtbot, widget, "dummy-stages", steps=5)
    axis = viewer.dims.ndim - widget.shown.layer.ndim
    seen = []
    viewer.dims.events.range.connect(lambda e: seen.append(int(viewer.dims.nsteps[axis])))
    _run(qtbot, widget, "dummy-stages", steps=5)
    assert all(n >= 2 for n in seen), seen  # (before: [1, 5], the slider hidden then shown)
    assert _stage_frames(viewer, widget) == 5


def test_a_new_methods_layer_replaces_the_previous_result_at_its_first_stage(dock, qtbot, phantom):
    """A method's first run builds its layer hidden (two blank frames) and swaps it for the
    previous result when its first stage arrives: the old result stays on screen meanwhile, and
    the stage slider never loses its row (each flip resized the canvas: a full repaint)."""
    viewer, widget = dock
    viewer.add_image(phantom, name="phantom")
    _run(qtbot, widget, "dummy-stages", steps=5)
    old = widget.shown.layer
    axis = viewer.dims.ndim - old.ndim
    seen = []
    viewer.dims.events.range.connect(lambda e: seen.append(int(viewer.dims.nsteps[axis])))
    widget.method_combo.setCurrentIndex(widget.method_combo.findData("tv"))
    widget.run()
    new = widget.shown.layer
    assert new is not old and not new.visible and old.visible  # swapped at the first stage, not now
    qtbot.waitUntil(widget.settled, timeout=20000)
    assert new.visible and not old.visible
    assert seen and all(n >= 2 for n in seen), seen
    assert unwrapped(viewer.layers.selection.active) is unwrapped(new)


def test_a_run_that_fails_before_its_first_stage_leaves_the_previous_result_on_screen(
        dock, qtbot, phantom, monkeypatch):
    import dataclasses

    from napari_unrollrecon.engine import registry

    viewer, widget = dock
    viewer.add_image(phantom, name="phantom")
    _run(qtbot, widget, "dummy-stages", steps=3)
    old = widget.shown.layer

    def boom(*args, **kwargs):
        raise RuntimeError("no first stage")
        yield  # a generator, as a method's run is

    monkeypatch.setitem(registry._REGISTRY, "tv", dataclasses.replace(registry.get("tv"), run=boom))
    widget.method_combo.setCurrentIndex(widget.method_combo.findData("tv"))
    widget.run()
    qtbot.waitUntil(widget.settled, timeout=20000)
    assert old.visible and "tv" not in [layer.name for layer in viewer.layers]
    assert "no first stage" in widget.status.text()


def test_helper_layers_are_added_without_taking_the_layer_controls(dock, phantom):
    """|error|, extra maps, the mask preview and the reference panel are added unselected: napari
    would otherwise switch the layer controls to each new helper (a Qt layout pass per layer)."""
    from napari_unrollrecon._widgets._view import unselected_insert

    viewer, _ = dock
    mine = viewer.add_image(phantom, name="mine")
    with unselected_insert(viewer):
        viewer.add_image(phantom, name="helper")
    assert unwrapped(viewer.layers.selection.active) is unwrapped(mine)
    viewer.add_image(phantom, name="plain")  # napari's own behaviour is back after the block
    assert viewer.layers.selection.active.name == "plain"


def test_deferred_turns_run_one_job_per_event_loop_turn(qtbot):
    """Jobs on timers of their own with the same delay fire in one pass of Qt's timers, so their
    costs (a layer build, a fold that resizes the canvas) added up in one stall."""
    import time

    from napari_unrollrecon._widgets._view import LATER_MS, Turns

    turns, times = Turns(), []
    for _ in range(3):
        turns.add(lambda: times.append(time.perf_counter()))
    assert turns.pending() and not times
    qtbot.waitUntil(lambda: not turns.pending(), timeout=2000)
    assert len(times) == 3
    assert all(b - a >= 0.9 * LATER_MS / 1000 for a, b in zip(times, times[1:])), times


def test_a_methods_first_run_starts_its_worker_after_the_new_layer_is_built(dock, qtbot, phantom):
    viewer, widget = dock
    viewer.add_image(phantom, name="phantom")
    started, start = [], widget._start_worker
    widget._start_worker = lambda worker: (started.append(worker), start(worker))
    widget.method_combo.setCurrentIndex(widget.method_combo.findData("dummy-stages"))
    widget.run()
    assert widget.shown.layer in viewer.layers and not started  # built in the click's turn
    qtbot.waitUntil(widget.settled, timeout=20000)
    assert len(started) == 1 and widget.shown.stack is not None and len(widget.shown.stack) > 1


def test_the_slider_row_keeps_its_height_when_the_stage_slider_goes(dock, qtbot, phantom):
    """The slider's row is there from the dock's opening and stays when a single-stage result
    follows a stage stack, instead of resizing the canvas (a full repaint) each time the stage
    slider comes or goes; napari's own sizing is back when the dock lets go."""
    viewer, widget = dock
    qt_dims = viewer.window._qt_viewer.dims
    viewer.add_image(phantom, name="phantom")
    row = qt_dims.minimumHeight()
    assert row == qt_dims.SLIDERHEIGHT  # reserved before any stack (napari: 0 for a 2D image)
    _run(qtbot, widget, "dummy-stages", steps=5)
    assert qt_dims.minimumHeight() == row
    _run(qtbot, widget, "zero-filled")
    assert _stage_frames(viewer, widget) == 1  # no stage slider: nothing to scrub
    assert qt_dims.minimumHeight() == row
    widget.slider_rows.release()
    assert qt_dims.minimumHeight() == 0
