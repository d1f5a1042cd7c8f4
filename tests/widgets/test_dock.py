"""The reconstruction dock in a real (Xvfb) napari viewer: manifest wiring, streaming, Stop,
live tweaks, compare, bad input. Runs use the tiny ``dummy-stages`` method (conftest)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from qtpy.QtCore import QTimer

from napari_unrollrecon._widgets._controller import META_KEY

pytestmark = pytest.mark.gui


def _use(widget, method, **values):
    idx = widget.method_combo.findData(method)
    assert idx >= 0, f"{method} not offered"
    widget.method_combo.setCurrentIndex(idx)
    for name, value in values.items():
        widget.param_form.set_value(name, value)


def _wait_done(qtbot, widget, timeout=20000):
    qtbot.waitUntil(widget.settled, timeout=timeout)


def _recon_layers(viewer, kind="reconstruction"):
    return [l for l in viewer.layers if l.metadata.get(META_KEY, {}).get("kind") == kind]


def test_dock_loads_through_manifest(dock):
    viewer, widget = dock
    assert type(widget).__name__ == "ReconWidget"
    assert widget.method_combo.count() >= 1


def test_run_streams_stages_into_one_layer(dock, qtbot, phantom):
    viewer, widget = dock
    viewer.add_image(phantom, name="phantom")
    assert widget.input_combo.currentText() == "phantom"
    _use(widget, "dummy-stages", steps=6, delay=0.2)
    ticks = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start(10)
    widget.run()
    _wait_done(qtbot, widget)
    timer.stop()
    [layer] = _recon_layers(viewer)
    assert layer.data.shape == (6, 64, 64)
    assert layer.metadata[META_KEY]["stages"] == [1, 2, 3, 4, 5, 6]
    assert layer.metadata[META_KEY]["method"] == "dummy-stages"
    assert layer.metadata[META_KEY]["mask"].shape == (64, 64)
    assert "psnr" in layer.metadata[META_KEY]["metrics"]
    # stages differ (k/steps scaling) and the slider follows the newest one
    assert layer.data[0].max() < layer.data[-1].max()
    qtbot.waitUntil(lambda: viewer.dims.current_step[0] == 5, timeout=3000)  # follows in its own turn
    # the hidden |error| layer is built in a turn of its own after the run
    qtbot.waitUntil(lambda: len(_recon_layers(viewer, "error")) == 1, timeout=2000)
    assert len(widget.plot.series["psnr"]) == 6 and len(widget.plot.series["residual"]) == 6
    # the event loop kept turning during the run: a frozen GUI gives no ticks, then one long gap.
    # (A method's first run adds its layers: one-off stalls of a few 100 ms under Xvfb.)
    gaps = np.diff(ticks)
    assert len(ticks) >= 8, f"only {len(ticks)} timer ticks during the run"
    assert np.median(gaps) < 0.05 and gaps.max() < 1.0, f"event-loop gaps {np.round(gaps, 3)}"
    assert "PSNR" in widget.status.text()


def test_stop_takes_effect_within_a_stage(dock, qtbot, phantom):
    viewer, widget = dock
    viewer.add_image(phantom, name="phantom")
    _use(widget, "dummy-stages", steps=200, delay=0.1)
    widget.run()
    qtbot.waitUntil(lambda: widget.active.last is not None, timeout=10000)
    t_stop = time.perf_counter()
    widget.stop()
    _wait_done(qtbot, widget, timeout=3000)
    waited = time.perf_counter() - t_stop
    # Stop acts at the next stage boundary: within one 0.1 s stage (+ signal latency)
    assert waited < 0.6, f"stop took {waited:.2f} s"
    assert widget.active.last.stage < 20
    [layer] = _recon_layers(viewer)
    assert layer.data.shape[0] < 20
    assert "stopped" in widget.status.text()
    assert widget.run_button.isEnabled() and not widget.stop_button.isEnabled()


def test_live_tweak_mid_run_reaches_the_method(dock, qtbot, phantom):
    viewer, widget = dock
    viewer.add_image(phantom, name="phantom")
    _use(widget, "dummy-stages", steps=30, delay=0.04)
    widget.run()
    qtbot.waitUntil(lambda: widget.active.last is not None and widget.active.last.stage >= 2, timeout=10000)
    widget.param_form.set_value("gain", 5.0)
    _wait_done(qtbot, widget)
    rec = widget.record
    assert rec.params["gain"] == 5.0
    layer = _recon_layers(viewer)[0]
    # the final stage is 5x brighter than without the tweak (gain·k/steps with k = steps)
    ref_max = np.abs(phantom).max()
    assert layer.data[-1].max() > 3 * ref_max


def test_tweak_after_run_reruns_from_affected_stage(dock, qtbot, phantom):
    viewer, widget = dock
    viewer.add_image(phantom, name="phantom")
    _use(widget, "dummy-stages", steps=5)
    widget.run()
    _wait_done(qtbot, widget)
    layer = _recon_layers(viewer)[0]
    before = np.array(layer.data[-1])
    widget.param_form.set_value("offset", 1.0)  # Param.stage = 3: resume from stage 3
    qtbot.waitUntil(lambda: widget.record is not None and widget.record.params["offset"] == 1.0, timeout=5000)
    assert len(_recon_layers(viewer)) == 1, "a tweak re-run reuses the run's layer"
    assert np.allclose(layer.data[-1], before + 1.0, atol=1e-4)
    stages = layer.metadata[META_KEY]["stages"]  # shown stages (throttled to ≤ 20/s)
    assert stages[0] == 1 and stages[-1] == 5 and stages == sorted(set(stages))
    assert widget.record.cache.resumed_from == 3


def test_compare_labels_every_panel(dock, qtbot, phantom, tick):
    viewer, widget = dock
    viewer.add_image(phantom, name="phantom")
    tick(widget, ("dummy-stages", "zero-filled"))
    widget.compare()
    _wait_done(qtbot, widget)
    assert widget.table.rowCount() == 2
    psnrs = [float(widget.table.item(r, 1).text()) for r in range(2)]
    assert all(np.isfinite(psnrs))
    cmp = [l for l in _recon_layers(viewer, "compare") if l.visible]
    assert len(cmp) == 3  # reference + two methods, laid out side by side
    assert not viewer.canvas.grid.enabled
    corners = {tuple(np.round(l.translate[-2:], 3)) for l in cmp}
    assert len(corners) == 3, "panels must not overlap"
    # one text label per panel: the reference, then each method with its PSNR and SSIM
    [labels] = [l for l in viewer.layers if l.metadata.get(META_KEY, {}).get("kind") == "labels"]
    texts = [t for t in labels.features["label"] if t]
    assert len(texts) == 3 and texts[0].startswith("reference")
    for r in range(2):
        title, psnr = widget.table.item(r, 0).text(), widget.table.item(r, 1).text()
        [text] = [t for t in texts if t.startswith(title)]
        assert f"{psnr} dB" in text and "SSIM" in text
    # each label sits above its own panel: label i at the panel's x, just above its top
    pos = np.asarray(labels.data)
    for layer in cmp:
        y, x = layer.translate[-2:]
        assert np.any((np.abs(pos[:, 1] - x) < 0.1 * phantom.shape[1]) & (pos[:, 0] < y) & (pos[:, 0] > y - 64))


@pytest.mark.parametrize(
    "data, rgb, words",
    [
        (np.zeros((64, 64), np.float32), False, "all zeros"),
        (np.full((64, 64), np.nan, np.float32), False, "NaN"),
        (np.ones((64, 64, 3), np.uint8), True, "RGB"),
        (np.ones((2, 3, 64, 64), np.float32), False, "needs a 2D layer"),
    ],
)
def test_bad_input_gives_a_message_and_leaves_layers(dock, data, rgb, words):
    viewer, widget = dock
    layer = viewer.add_image(data, name="bad", rgb=rgb)
    before = np.array(layer.data, copy=True)
    widget.input_combo.setCurrentText("bad")
    widget.run()
    assert words in widget.status.text() or words.lower() in widget.status.text().lower()
    assert widget.worker is None and widget.run_button.isEnabled()
    assert len(viewer.layers) == 1 + sum(1 for l in viewer.layers if l.metadata.get(META_KEY, {}).get("kind") == "mask-preview")
    np.testing.assert_array_equal(np.asarray(layer.data), before)


def test_mask_mismatch_and_missing_weights(dock, phantom):
    viewer, widget = dock
    viewer.add_image(phantom, name="phantom")
    viewer.add_image(np.ones((32, 32), np.float32), name="small mask")
    widget.input_combo.setCurrentText("phantom")
    widget.mask_layer_combo.setCurrentText("small mask")
    widget.run()
    assert "does not match" in widget.status.text()
    widget.mask_layer_combo.setCurrentIndex(0)
    _use(widget, "dummy-learned")
    assert "no weights" in widget.method_info.text()
    widget.run()
    assert "no weights" in widget.status.text() and widget.worker is None


def test_exception_inside_method_is_reported(dock, qtbot, phantom):
    viewer, widget = dock
    viewer.add_image(phantom, name="phantom")
    _use(widget, "dummy-stages", steps=5, fail_at=3)
    widget.run()
    _wait_done(qtbot, widget)
    assert "dummy failure at stage 3" in widget.status.text()
    assert widget.run_button.isEnabled()


def test_mask_preview_and_realised_ratio(dock, qtbot, phantom):
    viewer, widget = dock
    viewer.add_image(phantom, name="phantom")
    widget.ratio_spin.setValue(0.2)
    qtbot.waitUntil(lambda: "realised ratio" in widget.realised_label.text(), timeout=3000)
    qtbot.wait(300)
    preview = viewer.layers[widget.mask_preview_name]
    assert preview.data.shape == (64, 64)
    assert abs(float(np.mean(preview.data != 0)) - 0.2) < 0.05


def _set_modality(widget, key):
    widget.modality_combo.setCurrentIndex(widget.modality_combo.findData(key))


def test_param_defaults_follow_the_modality_and_keep_edits(dock, qtbot, phantom):
    viewer, widget = dock
    viewer.add_image(phantom, name="phantom")
    _use(widget, "dummy-stages")
    spec = widget.param_form.spec
    mri, ct = spec.defaults("mri")["weight"], spec.defaults("ct")["weight"]
    assert mri != ct
    assert widget.param_form.value("weight") == pytest.approx(mri)
    _set_modality(widget, "ct")
    assert widget.param_form.value("weight") == pytest.approx(ct)
    assert "defaults for CT" in widget.method_info.text()
    widget.param_form.set_value("weight", 3 * ct)  # an edit for CT ...
    widget.param_form.set_value("steps", 7)  # ... and one that is not modality-specific
    _set_modality(widget, "mri")
    assert widget.param_form.value("weight") == pytest.approx(mri)
    assert widget.param_form.value("steps") == 7
    _set_modality(widget, "ct")
    assert widget.param_form.value("weight") == pytest.approx(3 * ct)
    widget.defaults_button.click()  # back to CT's defaults
    assert widget.param_form.value("weight") == pytest.approx(ct) and widget.param_form.value("steps") == 5
    widget.param_form.set_value("weight", 3 * ct)
    # a run uses what the form shows
    widget.run()
    assert widget.worker is not None, widget.status.text()
    assert widget.active.values["weight"] == pytest.approx(3 * ct)
    qtbot.waitUntil(widget.settled, timeout=20000)


def test_path_param_gets_a_file_picker(dock, phantom):
    from qtpy.QtWidgets import QLineEdit, QPushButton

    viewer, widget = dock
    viewer.add_image(phantom, name="phantom")
    _use(widget, "dummy-learned")
    _, control = widget.param_form.controls["weights"]
    [button] = control.findChildren(QPushButton)
    [edit] = control.findChildren(QLineEdit)
    assert button.text() == "Load weights…"
    assert "no weights loaded" in edit.placeholderText()
    widget.param_form.set_value("weights", "/nowhere/w.safetensors")
    assert "w.safetensors" in widget.method_info.text() and "no weights" not in widget.method_info.text()


def test_stage_axis_is_named_and_caption_maps_frames_to_stages(dock, qtbot, phantom):
    viewer, widget = dock
    viewer.add_image(phantom, name="phantom")
    _use(widget, "dummy-stages", steps=300, delay=0.002)  # ~0.6 s: the display shows a subset
    widget.run()
    _wait_done(qtbot, widget)
    [layer] = _recon_layers(viewer)
    stages = layer.metadata[META_KEY]["stages"]
    assert layer.data.shape[0] == len(stages) < 300 and stages[-1] == 300
    axis = viewer.dims.ndim - layer.ndim
    assert viewer.dims.axis_labels[axis] == "stage"
    overlay = viewer.canvas.overlays.text
    assert f"stage 300/300 (slider {len(stages) - 1})" in overlay.text
    i = next(i for i, s in enumerate(stages) if s != i + 1)  # a frame whose index is not its stage
    viewer.dims.set_current_step(axis, i)
    assert f"stage {stages[i]}/300 (slider {i}; newest: stage 300)" in overlay.text
    assert "PSNR" in overlay.text and "phantom" in overlay.text


def test_slider_stays_where_the_user_scrubbed_during_a_run(dock, qtbot, phantom):
    viewer, widget = dock
    viewer.add_image(phantom, name="phantom")
    _use(widget, "dummy-stages", steps=60, delay=0.05)
    widget.run()
    qtbot.waitUntil(lambda: widget.shown is not None and widget.shown.stack is not None
                    and widget.shown.frames_shown >= 3, timeout=10000)
    layer = widget.shown.layer
    axis = viewer.dims.ndim - layer.ndim
    viewer.dims.set_current_step(axis, 0)
    n = len(widget.shown.stack)
    qtbot.waitUntil(lambda: len(widget.shown.stack) >= n + 3 and widget.shown.frames_shown >= n + 3, timeout=10000)
    assert viewer.dims.current_step[axis] == 0, "a new stage must not yank the slider back"
    assert "newest: stage" in viewer.canvas.overlays.text.text
    widget.stop()
    _wait_done(qtbot, widget)


def test_runs_reuse_their_layer_and_side_by_side_is_labelled(dock, qtbot, phantom):
    viewer, widget = dock
    viewer.add_image(phantom, name="phantom")
    _use(widget, "dummy-stages", steps=4)
    widget.run()
    _wait_done(qtbot, widget)
    n_layers = len(viewer.layers)
    widget.param_form.set_value("steps", 5)  # not resumable from a stage: a fresh run, same layer
    widget.run()
    _wait_done(qtbot, widget)
    [layer] = _recon_layers(viewer)
    stages = layer.metadata[META_KEY]["stages"]
    assert stages[-1] == 5 and layer.data.shape[0] == len(stages) and len(viewer.layers) == n_layers
    widget.side_check.setChecked(True)
    panels = [l for l in viewer.layers if l.visible and l.metadata.get(META_KEY, {}).get("kind")
              in ("reference", "reconstruction", "error")]
    assert len(panels) == 3 and len({tuple(l.translate[-2:]) for l in panels}) == 3
    texts = [t for t in widget.panels.captions()]
    assert texts[0].startswith("reference") and texts[1].startswith("Dummy stages") and texts[2].startswith("|error|")
    widget.side_check.setChecked(False)
    assert all(np.allclose(l.translate, 0) for l in _recon_layers(viewer))


def test_gdunet_streams_threshold_maps_and_reruns_after_an_eps_tweak(dock, qtbot, phantom, monkeypatch):
    """A learned method's extra maps become a (hidden) layer with the same stage axis, shown as a
    labelled panel side by side; a per-stage ε change re-runs from that stage on cached inputs."""
    import torch

    from napari_unrollrecon.methods import gdunet as G

    from napari_unrollrecon._widgets import _controller

    monkeypatch.setattr(_controller, "bundled_weights", lambda spec, modality=None, param=None: [Path("in-memory.safetensors")])  # the override runs
    viewer, widget = dock
    viewer.add_image(phantom, name="phantom")
    torch.manual_seed(0)
    tiny = G.build_model({"modality": "mri", "stages": 4, "width": 4, "embed": 4, "blocks": 1, "res_blocks": 1,
                          "fusion_kernel": 1, "frame_size": 5})
    with G.STORE.override(tiny):
        _use(widget, "gdunet", threshold_channel=2)
        widget.run()
        _wait_done(qtbot, widget)
        [layer] = _recon_layers(viewer)
        [eps] = _recon_layers(viewer, "extra")
        assert layer.data.shape[0] == 4 and not eps.visible  # hidden: its frames are synced when shown
        assert eps.name.startswith("threshold ε[2]") and eps.axis_labels == layer.axis_labels
        eps.visible = True
        assert eps.data.shape == layer.data.shape and float(eps.data.min()) >= G.EPS_RANGE[0]
        eps.visible = False
        from napari_unrollrecon.methods.base import Update

        text = widget._progress_text(G.SPEC, Update(2, 4, before_img := np.zeros((2, 2), np.float32),
                                                      info={"eps_mean": 0.0123, "beta": 0.001}))
        assert "eps_mean 0.0123" in text and "beta 0.001" in text and before_img.shape == (2, 2)
        stack = widget.views["gdunet"].extras["threshold ε[2]"]
        eps_stage3 = np.array(stack.view[2])
        before = np.array(layer.data[-1])
        widget.param_form.set_value("eps_scale_3", 4.0)  # Param.stage = 3: resume from stage 3
        qtbot.waitUntil(lambda: widget.record is not None and widget.record.params["eps_scale_3"] == 4.0,
                        timeout=10000)
        assert not np.allclose(layer.data[-1], before)
        np.testing.assert_allclose(stack.view[2], 4.0 * eps_stage3, rtol=1e-5)  # same cached input, ε × 4
        widget.side_check.setChecked(True)
        qtbot.waitUntil(lambda: any("threshold ε[2]" in c for c in widget.panels.captions()), timeout=5000)
        assert eps.visible


def test_samplers_stream_mean_and_std_layers(dock, qtbot, phantom):
    """gaussian-langevin and HGGDP (K = 2 samples, a tiny untrained network) stream into the dock:
    the stage layer holds the sample mean, a 'std' extra layer (its own colour map) the spread."""
    import torch

    from napari_unrollrecon.methods import hggdp as H

    viewer, widget = dock
    viewer.add_image(phantom, name="phantom")
    _use(widget, "gaussian-langevin", samples=3, levels=2, steps=3)
    widget.side_check.setChecked(True)
    widget.run()
    _wait_done(qtbot, widget, timeout=60000)
    extras = _recon_layers(viewer, "extra")
    std = [l for l in extras if l.metadata[META_KEY]["extra"] == "std"]
    assert len(std) == 1 and std[0].colormap.name == "viridis"
    assert std[0].data.shape[-2:] == phantom.shape and float(np.asarray(std[0].data[-1]).max()) > 0
    active = viewer.layers.selection.active  # regression (issue 13.4): not a hidden helper layer
    assert active is not None and active.metadata.get(META_KEY, {}).get("kind") == "reconstruction", active
    torch.manual_seed(0)
    with H.STORE.override(H.build_model({**H.CONFIGS["cpu"], "ngf": 8}).eval()):
        _use(widget, "hggdp", samples=2, levels=6, steps=1)
        widget.run()
        _wait_done(qtbot, widget, timeout=60000)
    rec = [l for l in _recon_layers(viewer) if "hggdp" in l.name.lower()]
    assert len(rec) == 1 and rec[0].data.shape[-2:] == phantom.shape
    assert widget.record is not None and widget.record.method == "hggdp", widget.status.text()
    hg_std = [l for l in _recon_layers(viewer, "extra") if l.metadata[META_KEY]["extra"] == "std"
              and "hggdp" in l.metadata[META_KEY]["source"].lower()]
    assert len(hg_std) == 1 and float(np.asarray(hg_std[0].data[-1]).max()) > 0  # two samples differ


def test_live_plot_marks_the_best_psnr_as_an_oracle(qtbot):
    from napari_unrollrecon._widgets._plot import LivePlot

    plot = LivePlot()
    qtbot.addWidget(plot)
    for stage, value in enumerate([20.0, 24.0, 23.0, 22.5], start=1):
        plot.add("psnr", stage, value)
    assert plot.best("psnr") == (2.0, 24.0) and plot.last("psnr") == 22.5
    plot.resize(300, 160)
    plot.grab()  # paints, including the dashed oracle marker, without error
