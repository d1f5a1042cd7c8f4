"""The dock's Qt-free run logic: input checks, problem building, throttling, resume planning."""

from __future__ import annotations

import numpy as np
import torch
import pytest

from napari_unrollrecon._widgets import _controller as C
from napari_unrollrecon.engine.stream import collect


def _drain(gen, sends=None):
    return collect(gen, sends, stage=lambda frame: frame.update.stage)


@pytest.mark.parametrize(
    "data, modality, rgb, words",
    [
        (np.ones((8, 8, 3)), "mri", True, "RGB"),
        (np.ones((4, 16, 16)), "mri", False, "dynamic MRI"),
        (np.ones((16, 16)), "dmri", False, "(frames, H, W)"),
        (np.zeros((16, 16)), "mri", False, "all zeros"),
        (np.full((16, 16), np.nan), "mri", False, "NaN"),
        (np.ones((16, 20)), "ct", False, "square"),
        (np.ones((4, 4)), "mri", False, "too small"),
    ],
)
def test_bad_inputs_name_the_problem(data, modality, rgb, words):
    with pytest.raises(C.InputError, match=words.replace("(", r"\(").replace(")", r"\)")):
        C.check_input(data, "image", modality, rgb=rgb)


def test_kind_and_modality_must_agree():
    with pytest.raises(C.InputError, match="CT"):
        C.check_input(np.ones((16, 16)), "sinogram", "mri")
    with pytest.raises(C.InputError, match="MRI"):
        C.check_input(np.ones((16, 16)), "kspace", "ct")


def test_layer_array_prefers_complex_original():
    z = (np.ones((8, 8)) * (1 + 1j)).astype(np.complex64)
    meta = {C.META_KEY: {"complex": z, "kind": "kspace"}}
    assert np.iscomplexobj(C.layer_array(np.abs(z), meta))
    assert C.guess_kind(None, meta) == "kspace"
    # a stale complex array of another shape is ignored
    assert not np.iscomplexobj(C.layer_array(np.ones((4, 4)), meta))


def test_mask_shape_mismatch_is_an_input_error():
    with pytest.raises(C.InputError, match="does not match"):
        C.check_mask(np.ones((32, 32)), (64, 64))
    with pytest.raises(C.InputError, match="samples nothing"):
        C.check_mask(np.zeros((64, 64)), (64, 64))


def test_subsample_views_keeps_evenly_spread_rows():
    sino = np.arange(180)[:, None] * np.ones((1, 5))
    kept, angles = C.subsample_views(sino, 60)
    assert kept.shape == (60, 5) and np.allclose(kept[:, 0], np.arange(0, 180, 3))
    assert np.allclose(angles, np.arange(0, 180, 3))
    kept, angles = C.subsample_views(sino, 180)
    assert angles is None and kept.shape[0] == 180


def test_throttle_limits_rate_but_shows_first_and_last():
    t = [0.0]
    th = C.Throttle(max_rate=20, clock=lambda: t[0])
    shown = []
    for k in range(1, 101):  # 100 stages in 1 s
        t[0] = k * 0.01
        shown.append(th(k, 100))
    assert shown[0] and shown[-1]
    assert 15 <= sum(shown) <= 22


def test_drive_streams_metrics_and_returns_outcome(dummy_method, phantom):
    settings = C.RunSettings(modality="mri", kind="image", ratio=0.3)
    prep = lambda: C.build_problem(phantom, settings)  # noqa: E731
    frames, outcome = _drain(C.drive(dummy_method, prep, {"steps": 4}, reference=phantom,
                                     throttle=C.Throttle(max_rate=0)))
    assert [f.update.stage for f in frames] == [1, 2, 3, 4]
    assert all(f.show and "psnr" in f.update.metrics for f in frames)
    assert outcome.error is None and outcome.result.stages == 4
    assert outcome.result.metrics["psnr"] > frames[0].update.metrics["psnr"]
    assert abs(outcome.prepared.meta["realised_ratio"] - 0.3) < 0.05


def test_drive_yields_notices_while_preparing(dummy_method, phantom):
    """A slow preparation (a CT projector's first build) is announced before stage 1 (issue 13.6)."""
    from napari_unrollrecon.engine.notices import Notice
    from napari_unrollrecon.physics.notices import announce

    prepared = C.build_problem(phantom, C.RunSettings(modality="mri", kind="image"))

    def prep():
        announce("building the CT projector for 180 views at 512² (first use; kept for next time)…")
        return prepared

    items, outcome = collect(C.drive(dummy_method, prep, {"steps": 2}), stage=lambda item: None)
    assert items[0] == Notice("building the CT projector for 180 views at 512² (first use; kept for next time)…")
    assert [f.update.stage for f in items[1:]] == [1, 2] and outcome.error is None


def test_drive_forwards_live_changes(dummy_method, phantom):
    settings = C.RunSettings(modality="mri", kind="image")
    prepared = C.build_problem(phantom, settings)
    frames, outcome = _drain(C.drive(dummy_method, prepared, {"steps": 4}), sends={2: {"gain": 3.0}})
    last = frames[-1].update
    assert last.params["gain"] == 3.0
    ratio = frames[2].update.image.max() / frames[1].update.image.max()
    assert ratio == pytest.approx(3.0 * 3 / 2, rel=1e-4)


def test_drive_turns_exceptions_into_messages(dummy_method, phantom):
    prepared = C.build_problem(phantom, C.RunSettings())
    frames, outcome = _drain(C.drive(dummy_method, prepared, {"steps": 5, "fail_at": 3}))
    assert len(frames) == 2
    assert outcome.result is None and "RuntimeError" in outcome.error and "stage 3" in outcome.error


def test_resume_stage_uses_param_stage(dummy_method):
    assert C.resume_stage(dummy_method, {"offset"}, stages_done=5, has_cache=True) == 3
    assert C.resume_stage(dummy_method, {"gain"}, stages_done=5, has_cache=True) == 0
    assert C.resume_stage(dummy_method, {"offset"}, stages_done=5, has_cache=False) == 0
    assert C.resume_stage(dummy_method, {"offset"}, stages_done=2, has_cache=True) == 2


def test_resumed_run_recomputes_only_later_stages(dummy_method, phantom):
    prepared = C.build_problem(phantom, C.RunSettings())
    first_frames, first = _drain(C.drive(dummy_method, prepared, {"steps": 5}))
    start = C.resume_stage(dummy_method, {"offset"}, 5, True)
    frames, second = _drain(C.drive(dummy_method, prepared, {"steps": 5, "offset": 1.0},
                                    cache=first.cache, start=start))
    assert [f.update.stage for f in frames] == [3, 4, 5]
    assert np.allclose(second.result.image, first.result.image + 1.0, atol=1e-5)


def test_live_changes_split_and_weights_check(dummy_method):
    from napari_unrollrecon.engine import registry

    LEARNED = registry.get("dummy-learned")
    now, later = C.live_changes(dummy_method, {"gain": 1.0, "steps": 5}, {"gain": 2.0, "steps": 6})
    assert now == {"gain": 2.0} and later == {"steps"}
    assert "no weights" in C.missing_weights(LEARNED, {"weights": None})
    assert C.missing_weights(LEARNED, {"weights": "w.safetensors"}) is None
    assert C.missing_weights(dummy_method, {}) is None


def test_stage_stack_grows_and_truncates():
    s = C.StageStack((4, 4), capacity=2)
    for k in range(1, 6):
        s.append(np.full((4, 4), k, np.float32), k)
    assert s.view.shape == (5, 4, 4) and s.view[-1, 0, 0] == 5
    s.truncate_after(2)
    assert s.view.shape == (2, 4, 4) and s.stages == [1, 2]
    with pytest.raises(ValueError):
        s.append(np.zeros((3, 3), np.float32), 3)


def test_ct_problem_from_sinogram(phantom):
    from napari_unrollrecon.physics.ct import RadonOperator
    import torch

    img = phantom[:64, :64]
    sino = RadonOperator(64, n_views=90).A(torch.from_numpy(np.ascontiguousarray(img))).numpy()
    prep = C.build_problem(sino, C.RunSettings(modality="ct", kind="sinogram", n_views=30))
    assert prep.problem.y.shape[0] == 30 and prep.meta["views"] == 30


def test_param_edits_are_per_modality_only_where_defaults_differ(dummy_method):
    edits = C.ParamEdits()
    assert edits.values(dummy_method, "ct")["weight"] == dummy_method.defaults("ct")["weight"] != \
        dummy_method.defaults("mri")["weight"]
    edits.record(dummy_method, "ct", "weight", 0.5)
    edits.record(dummy_method, "ct", "steps", 9)
    assert edits.values(dummy_method, "ct")["weight"] == 0.5
    assert edits.values(dummy_method, "mri")["weight"] == dummy_method.defaults("mri")["weight"]
    assert edits.values(dummy_method, "mri")["steps"] == edits.values(dummy_method, "ct")["steps"] == 9
    edits.forget(dummy_method, "ct")
    assert edits.values(dummy_method, "ct") == dummy_method.defaults("ct")


def test_missing_weights_is_declared_by_path_params(dummy_method, monkeypatch):
    from napari_unrollrecon.engine import registry

    learned = registry.get("dummy-learned")
    assert "Load weights…" in C.missing_weights(learned, {"weights": ""})
    assert "required" in C.path_hint(learned, learned.params[0])
    # a method shipping bundled weights runs without a file: empty means "the bundled default"
    monkeypatch.setattr(C, "bundled_weights", lambda spec, modality=None, param=None: [__import__("pathlib").Path("b.safetensors")])
    assert C.missing_weights(learned, {"weights": ""}) is None
    assert "bundled b.safetensors" in C.path_hint(learned, learned.params[0])


def test_each_path_parameter_looks_for_its_own_bundled_weights(monkeypatch):
    """DD-UGM loads two networks: each path parameter names its weights kind (Param.weights)."""
    from pathlib import Path

    from napari_unrollrecon.engine import registry
    from napari_unrollrecon.methods import learned

    spec = registry.get("dd-ugm")
    shipped = {"dd-ugm-k": [Path("k.safetensors")], "dd-ugm-x": [Path("x.safetensors")]}
    monkeypatch.setattr(learned, "bundled", lambda method: shipped.get(method, []))
    monkeypatch.setattr(learned, "read_card", lambda path: {"config": {}})
    assert C.missing_weights(spec, {"weights_k": "", "weights_x": ""}, "dmri") is None
    hints = {p.name: C.path_hint(spec, p, "dmri") for p in spec.params if p.kind == "path"}
    assert hints == {"weights_k": "empty: bundled k.safetensors", "weights_x": "empty: bundled x.safetensors"}
    shipped.pop("dd-ugm-k")  # only the image model shipped: the message names the k-space model
    assert "no k-space model loaded" in C.missing_weights(spec, {"weights_k": "", "weights_x": ""}, "dmri")
    assert C.missing_weights(spec, {"weights_k": "k.safetensors", "weights_x": ""}, "dmri") is None


def test_stage_stack_captions_map_frames_to_stages():
    s = C.StageStack((2, 2))
    for stage in (1, 7, 30):
        s.append(np.zeros((2, 2), np.float32), stage, metrics={"psnr": stage + 0.5, "ssim": 0.5}, total=30)
    assert s.caption(1) == "stage 7/30 · PSNR 7.50 dB · SSIM 0.500"
    assert s.stage_text(99) == "stage 30/30"  # clipped to the frames held
    s.truncate_after(7)
    assert s.stages == [1, 7] and len(s.metrics) == 2


def test_error_stack_is_computed_lazily_and_follows_truncation():
    ref = np.full((3, 3), 2.0, np.float32)
    s, e = C.StageStack((3, 3), capacity=1), C.ErrorStack(ref)
    for k in range(1, 4):
        s.append(np.full((3, 3), k, np.float32), k)
    assert e.done == 0  # nothing computed until asked
    err = e.sync(s)
    assert err.shape == (3, 3, 3) and np.allclose(err[:, 0, 0], [1, 0, 1])
    s.truncate_after(1)
    e.invalidate_after(len(s))
    s.append(np.full((3, 3), 5, np.float32), 2)
    assert np.allclose(e.sync(s)[:, 0, 0], [1, 3])


@pytest.mark.parametrize("n, canvas, cols", [(4, (800, 800), 2), (3, (400, 1600), 3), (2, (1600, 400), 1)])
def test_panel_layout_fills_the_canvas_without_overlap(n, canvas, cols):
    offsets, label_h = C.panel_layout(n, (100, 100), canvas)
    assert offsets[0] == (0.0, 0.0) and label_h > 0
    assert len({x for _, x in offsets}) == cols
    boxes = [(y, x, y + 100, x + 100) for y, x in offsets]
    for i, a in enumerate(boxes):  # no two panels (with their label strips) overlap
        for b in boxes[i + 1:]:
            assert a[2] + label_h <= b[0] + 1e-9 or b[2] + label_h <= a[0] + 1e-9 or a[3] <= b[1] or b[3] <= a[1]


def test_wrap_breaks_long_lines_at_separators():
    text = C.wrap("alpha · beta · gamma · delta", width=14)
    assert all(len(line) <= 14 for line in text.splitlines()) and "delta" in text


def test_stage_stack_keeps_every_stage_of_short_runs_and_samples_long_ones():
    t = [0.0]
    short = C.StageStack((2, 2), keep_all=10, keep_every=0.25, clock=lambda: t[0])
    for k in range(1, 11):
        t[0] = 0.01 * k
        short.add(np.full((2, 2), k, np.float32), k, total=10)
    assert short.stages == list(range(1, 11))
    long = C.StageStack((2, 2), keep_all=10, keep_every=0.25, clock=lambda: t[0])
    for k in range(1, 101):  # 100 stages in 1 s: a frame kept every 0.25 s, the newest overwritten
        t[0] = 0.01 * k
        long.add(np.full((2, 2), k, np.float32), k, total=100)
    assert long.stages[0] == 1 and long.stages[-1] == 100 and 4 <= len(long) <= 7
    assert long.view[-1, 0, 0] == 100 and long.stages == sorted(long.stages)
    assert all(long.view[i, 0, 0] == s for i, s in enumerate(long.stages))


def test_stage_stack_of_a_long_run_stays_bounded_keeping_the_last_stages_and_a_thinned_history():
    s = C.StageStack((2, 2), keep_all=10, keep_every=0.0, max_frames=20, recent=8)
    mirror = C.StageStack((2, 2), keep_all=1 << 30, max_frames=1 << 30)
    for k in range(1, 1001):  # 1000 sampler steps, each kept
        s.add(np.full((2, 2), k, np.float32), k, total=1000)
        if s.last_kept is not None:
            mirror.keep_only(s.last_kept)
        mirror.add(np.full((2, 2), -k, np.float32), k, total=1000)
        assert len(s) <= 20
    assert s.stages[0] == 1 and s.stages[-8:] == list(range(993, 1001))  # every one of the last 8
    assert s.stages == sorted(s.stages) and all(s.view[i, 0, 0] == k for i, k in enumerate(s.stages))
    assert mirror.stages == s.stages and all(mirror.view[i, 0, 0] == -k for i, k in enumerate(s.stages))
    assert "thinned" in s.caption(0) and "thinned" not in C.StageStack((2, 2)).caption(0)


def test_throttle_shows_every_stage_of_short_runs():
    t = [0.0]
    th = C.Throttle(max_rate=20, clock=lambda: t[0], keep_all=10)
    assert all(th(k, 10) for k in range(1, 11))


def test_an_uncentred_mask_layer_is_detected_and_shifted_like_a_mask_file(phantom):
    """Regression (issue 13.2a): a CGPD-style mask (DC at [0, 0]) used as a mask layer was taken
    as centred. The dock now goes through the CLI's path: layout detected, shifted, and said."""
    from napari_unrollrecon.physics.fft import mask_to_uncentred
    from napari_unrollrecon.physics.masks import make_mask

    centred = make_mask("cartesian", phantom.shape, 0.2, seed=1)
    prepared = C.build_problem(phantom, C.RunSettings(), mask=mask_to_uncentred(centred), mask_name="mask layer 'm'")
    assert np.array_equal(prepared.mask, centred)
    assert prepared.meta["mask_layout"] == "uncentred" and "shifted to centre" in prepared.meta["mask_note"]
    same = C.build_problem(phantom, C.RunSettings(), mask=centred)
    assert np.array_equal(same.mask, centred) and same.meta["mask_layout"] == "centred"


def test_dock_and_cli_build_the_same_problem(phantom):
    from napari_unrollrecon.engine.pipeline import MaskSettings, build_problem

    settings = C.RunSettings(mask_kind="radial", ratio=0.3, seed=4)
    dock = C.build_problem(phantom, settings)
    cli, _ = build_problem(phantom, "image", "mri", MaskSettings("radial", 0.3, 4))
    assert torch.equal(dock.problem.y, cli.y)


def test_frame_axis_override_undoes_or_applies_the_move():
    stored = np.arange(4 * 5 * 3, dtype=np.float32).reshape(4, 5, 3)  # a file's H×W×T
    moved = np.moveaxis(stored, -1, 0)  # what the reader gave (frames first)
    meta = {C.META_KEY: {"file_meta": {"frame_axis": "frame axis assumed last ... moved first"}}}
    assert C.frames_first(moved, meta, "auto") is moved
    np.testing.assert_array_equal(C.frames_first(moved, meta, "last"), moved)
    np.testing.assert_array_equal(C.frames_first(moved, meta, "first"), stored)  # the file's first axis
    plain = np.zeros((6, 8, 8), np.float32)  # not moved by a reader: "last" moves the last axis first
    assert C.frames_first(plain, {}, "last").shape == (8, 6, 8)
    assert "assumed last" in C.frame_note(moved, meta, "auto")
    assert "set in the dock" in C.frame_note(moved, meta, "first") and C.frame_note(np.zeros((2, 2)), {}, "auto") == ""


def test_bundled_text_names_the_model_of_each_mask_family(tmp_path):
    import json

    from napari_unrollrecon._widgets._controller import bundled_text

    files = []
    for name, family in (("m-cart", "cartesian"), ("m-radial", "radial")):
        (tmp_path / f"{name}.json").write_text(json.dumps({"method": "x", "config": {"mask_family": family}}))
        files.append(tmp_path / f"{name}.safetensors")
    assert bundled_text(files) == "bundled, one per mask family: cartesian → m-cart, radial → m-radial"
    assert bundled_text(files[:1]) == "bundled m-cart.safetensors"
    assert bundled_text([]) == ""
    by_ratio = []
    for name, ratios in (("general", [0.05, 0.1, 0.2, 0.3]), ("low", [0.05])):
        (tmp_path / f"{name}.json").write_text(json.dumps({"method": "x", "config": {"ratios": ratios}}))
        by_ratio.append(tmp_path / f"{name}.safetensors")
    assert bundled_text(by_ratio) == "bundled, the one trained nearest the sampling ratio: 5–30 % → general, 5 % → low"


def test_drive_materialises_shown_updates_in_the_worker(phantom):
    """The GUI thread only copies arrays: image and residual of a shown update are computed by the
    worker's generator (an FFT on the main thread cost 10-30 ms of a refresh); hidden ones stay lazy."""
    from napari_unrollrecon.engine import registry

    spec = registry.get("tv")
    prepared = C.build_problem(phantom, C.RunSettings(modality="mri", kind="image", ratio=0.3))
    t = [0.0]

    def clock():
        t[0] += 0.002
        return t[0]

    frames, _ = _drain(C.drive(spec, prepared, {"iterations": 30}, throttle=C.Throttle(max_rate=20, clock=clock, keep_all=0)))
    shown = [f.update for f in frames if f.show]
    hidden = [f.update for f in frames if not f.show]
    assert shown and hidden
    assert all(u._image is not None and u._residual is not None for u in shown)
    assert all(u._image is None and u._residual is None for u in hidden)


def test_stage_stack_display_keeps_two_frames_while_a_longer_run_has_one():
    stack = C.StageStack((4, 4), capacity=1)
    one = np.ones((4, 4), np.float32)
    stack.add(one, 1, total=5)
    assert len(stack) == 1 and stack.view.shape[0] == 1
    shown = stack.display
    assert shown.shape[0] == 2 and np.array_equal(shown[1], one)  # the first stage, repeated
    stack.add(2 * one, 2, total=5)
    assert stack.display.shape[0] == 2 and np.array_equal(stack.display[1], 2 * one)
    single = C.StageStack((4, 4))
    single.add(one, 1, total=1)
    assert single.display.shape[0] == 1  # a one-stage method never gets a slider


def test_a_held_job_waits_before_its_next_step_and_passes_sends_and_the_result_on():
    """Job.held pauses the worker at its next step while the GUI thread builds layers."""
    import threading
    import time

    got = []

    def counting():
        for k in range(3):
            got.append((yield k))
        return "done"

    job = C.Job(counting)
    gen = job.run()
    assert next(gen) == 0
    out = []
    with job.held():
        t = threading.Thread(target=lambda: out.append(gen.send("a")))
        t.start()
        time.sleep(0.2)
        assert not out  # waiting while held
    t.join(2)
    assert out == [1] and got == ["a"]
    assert gen.send("b") == 2
    with pytest.raises(StopIteration) as stop:
        gen.send("c")
    assert stop.value.value == "done" and got == ["a", "b", "c"]


def test_quiet_gc_freezes_while_any_run_holds_it():
    import gc

    quiet = C.QuietGC()
    before = gc.get_freeze_count()
    try:
        quiet.hold()
        quiet.hold()  # two docks running
        assert gc.get_freeze_count() > before
        quiet.release()
        assert gc.get_freeze_count() > before  # one still running
        quiet.release()
        assert gc.get_freeze_count() == 0
        quiet.release()  # an extra release does nothing
        assert quiet.holders == 0
    finally:
        gc.unfreeze()
