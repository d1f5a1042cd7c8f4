"""Trajectory export: GIF/MP4 frames, captions burnt in, frame selection, path checks."""

import numpy as np
import pytest

from napari_unrollrecon.engine import export, phantoms
from napari_unrollrecon.methods.base import Update


@pytest.fixture
def stack():
    ref = np.abs(phantoms.mri_phantom(48)).astype(np.float32)
    rng = np.random.default_rng(0)
    frames = np.stack([ref + rng.normal(0, 0.2 / (k + 1), ref.shape).astype(np.float32) for k in range(5)])
    return ref, export.Panel(frames, [export.caption("tv", k + 1, 5, 20.0 + k) for k in range(5)])


def test_gif_has_one_frame_per_stage_and_the_rendered_size(stack, tmp_path):
    ref, panel = stack
    path = export.write_trajectory(tmp_path / "run.gif", [export.Panel(ref, "reference"), panel], fps=5)
    frames = export.read_frames(path)
    rendered = export.render([export.Panel(ref, "reference"), panel])
    scale = -(-export.MIN_WIDTH // 48)  # 48-px images enlarged to ≥ 256 px
    assert frames.shape == (5, *rendered[0].shape) and len(rendered) == 5
    band = rendered[0].shape[0] - 48 * scale
    assert rendered[0].shape[1] == 2 * 48 * scale + 4 and 14 <= band <= 60
    assert not list(tmp_path.glob(".*partial*"))  # written atomically


def test_caption_pixels_present(stack):
    ref, panel = stack
    frame = export.render(panel)[2]
    blank = export.render(export.Panel(panel.frames, [""]))[2]
    band = frame.shape[0] - 48 * 6  # the caption band above the 6× enlarged 48-px image
    assert frame.shape == blank.shape
    text = frame[:band]
    assert (text > 200).sum() > 100  # white glyphs on the black band
    assert (blank[:band] > 200).sum() == 0
    assert not np.array_equal(export.render(panel)[1][:band], text)  # the stage number changes
    np.testing.assert_array_equal(frame[band:], blank[band:])  # the image itself is untouched


def test_mp4_written_and_readable(stack, tmp_path):
    path = export.write_trajectory(tmp_path / "run.mp4", stack[1], fps=4)
    frames = export.read_frames(path)
    h, w = export.render(stack[1])[0].shape[:2]
    assert len(frames) == 5
    assert frames.shape[1] == -(-h // 16) * 16 and frames.shape[2] == -(-w // 16) * 16
    assert frames[2, h // 2:, : w // 2].mean() > 5  # the image is in it, not a black video


def test_panels_of_different_lengths_hold_their_last_frame(stack):
    ref, panel = stack
    short = export.Panel(panel.frames[:2], panel.captions[:2])
    frames = export.render([short, panel])
    assert len(frames) == 5
    left = frames[0].shape[1] // 2 - 2
    np.testing.assert_array_equal(frames[3][:, :left], frames[4][:, :left])


def test_frame_selection_of_long_runs():
    kept = [s for s in range(1, 1001) if export.keep_stage(s, 1000, 120)]
    assert len(kept) == 120 and kept[0] == 1 and kept[-1] == 1000
    assert all(export.keep_stage(s, 30, 120) for s in range(1, 31))
    rec = export.Recorder("sampler", on_grid=False, max_frames=4)
    for s in range(1, 21):
        rec.add(Update(s, 20, np.full((3, 4, 5), s, np.float32)))  # a cine: its first frame is shown
    assert len(rec.frames) < 8 and rec.frames[-1].shape == (4, 5) and rec.captions[-1] == "sampler · stage 20/20"


def test_recorder_computes_psnr_from_a_reference():
    ref = np.ones((8, 8), np.float32)
    ref[2:5] = 0
    rec = export.Recorder("fbp", reference=ref)
    rec.add(Update(1, 1, ref + 0.01))
    assert rec.captions == ["fbp · stage 1/1 · PSNR 40.00 dB"]


@pytest.mark.parametrize("name", ["run.avi", "run.png", "run"])
def test_bad_extension_one_line_error(name, tmp_path):
    with pytest.raises(ValueError, match=r"use a \.gif or \.mp4 file name") as err:
        export.check_path(tmp_path / name)
    assert "\n" not in str(err.value)


def test_an_input_is_never_overwritten(tmp_path):
    src = tmp_path / "in.gif"
    src.write_bytes(b"GIF89a")
    with pytest.raises(ValueError, match="is the input file"):
        export.check_path(src, [src])
