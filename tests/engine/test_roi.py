"""ROI metrics and line profiles (engine/roi.py) against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from skimage.metrics import structural_similarity

from napari_unrollrecon.engine import roi


def test_roi_mean_std_and_psnr_by_hand():
    image = np.array([[1.0, 2.0], [3.0, 4.0]])
    reference = np.array([[0.0, 0.0], [0.0, 4.0]])  # range 4
    top = np.array([[True, True], [False, False]])
    m = roi.roi_metrics(image, reference, top)
    assert m["pixels"] == 2 and m["mean"] == 1.5 and m["std"] == 0.5  # population std of {1, 2}
    # inside: errors 1 and 2 -> MSE 2.5; PSNR = 10 log10(4² / 2.5)
    assert m["psnr"] == pytest.approx(10 * math.log10(16 / 2.5))
    assert math.isnan(m["ssim"])  # a 2×2 image is smaller than one 7×7 SSIM window


def test_roi_metrics_without_reference_or_mask():
    image = np.arange(6.0).reshape(2, 3)
    m = roi.roi_metrics(image)
    assert set(m) == {"pixels", "mean", "std"}
    assert m["mean"] == 2.5 and m["std"] == pytest.approx(np.sqrt(35 / 12))
    empty = roi.roi_metrics(image, image, np.zeros((2, 3), bool))
    assert math.isnan(empty["mean"]) and math.isnan(empty["psnr"]) and math.isnan(empty["ssim"])


def test_roi_psnr_uses_the_whole_reference_range_and_complex_magnitude():
    ref = np.zeros((4, 4))
    ref[0, 0] = 10.0  # range 10 even though the ROI (bottom right) is flat
    image = ref.astype(complex)
    image[3, 3] = 1j  # magnitude 1
    mask = np.zeros((4, 4), bool)
    mask[2:, 2:] = True  # 4 pixels, one error of 1 -> MSE 0.25
    m = roi.roi_metrics(image, ref, mask)
    assert m["psnr"] == pytest.approx(10 * math.log10(100 / 0.25))
    assert roi.roi_metrics(ref, ref, mask)["psnr"] == math.inf


def test_roi_ssim_is_the_ssim_map_averaged_over_the_roi():
    rng = np.random.default_rng(0)
    ref = rng.random((32, 32))
    image = ref + 0.1 * rng.standard_normal((32, 32))
    mask = np.zeros((32, 32), bool)
    mask[10:20, 5:25] = True
    _, smap = structural_similarity(image, ref, data_range=float(ref.max() - ref.min()), full=True)
    assert roi.roi_metrics(image, ref, mask)["ssim"] == pytest.approx(smap[mask].mean())
    assert roi.roi_metrics(ref, ref, mask)["ssim"] == pytest.approx(1.0)


def test_shape_masks():
    square = roi.shape_mask("rectangle", [(0.5, 0.5), (0.5, 2.5), (2.5, 2.5), (2.5, 0.5)], (5, 5))
    assert np.argwhere(square).tolist() == [[1, 1], [1, 2], [2, 1], [2, 2]]  # pixel centres inside
    ellipse = roi.shape_mask("ellipse", [(0, 0), (0, 4), (4, 4), (4, 0)], (5, 5))
    assert ellipse[2, 2] and ellipse[1, 1] and not ellipse[0, 0] and ellipse.sum() == 9
    with pytest.raises(ValueError, match="no area"):
        roi.shape_mask("line", [(0, 0), (3, 3)], (5, 5))


def test_bilinear_by_hand():
    x = np.array([[0.0, 1.0], [2.0, 3.0]])
    v = roi.bilinear(x, np.array([0.5, 0.0, 1.0, 0.25, -0.1, 1.0]), np.array([0.5, 1.0, 1.0, 0.0, 0.0, 1.2]))
    np.testing.assert_allclose(v[:4], [1.5, 1.0, 3.0, 0.5])  # centre, corners, a quarter down
    assert np.isnan(v[4:]).all()  # outside the image


def test_line_profile_is_exact_on_a_linear_ramp():
    image = np.add.outer(4.0 * np.arange(4), np.arange(4))  # value 4r + c
    dist, values = roi.line_profile(image, (0.0, 0.0), (3.0, 3.0), n=4)
    np.testing.assert_allclose(values, [0, 5, 10, 15])
    np.testing.assert_allclose(dist, np.arange(4) * math.sqrt(2))
    _, mid = roi.line_profile(image, (1.5, 0.0), (1.5, 3.0), n=5)
    np.testing.assert_allclose(mid, 6.0 + np.array([0, 0.75, 1.5, 2.25, 3.0]))


def test_line_profile_default_sampling_is_one_per_pixel():
    dist, values = roi.line_profile(np.ones((10, 10)), (0, 0), (3, 4))  # length 5
    np.testing.assert_allclose(dist, np.arange(6.0))
    assert roi.profile_samples(0.2) == 2 and roi.profile_samples(1e6) == 2048


def test_plane_takes_the_viewed_slice_right_aligned():
    data = np.arange(5 * 3 * 2 * 2).reshape(5, 3, 2, 2)
    np.testing.assert_array_equal(roi.plane(data, (2, 1, 0, 0)), data[2, 1])
    np.testing.assert_array_equal(roi.plane(data[0], (2, 1, 0, 0)), data[0, 1])  # (frame, H, W) in a 4-D viewer
    np.testing.assert_array_equal(roi.plane(data, (9, 7, 0, 0)), data[4, 2])  # clipped to the extent
    np.testing.assert_array_equal(roi.plane(data[0, 0], (3, 0, 0)), data[0, 0])


def test_panel_origin():
    origins = [(0.0, 0.0), (0.0, 70.0), (80.0, 0.0)]
    assert roi.panel_origin((10, 80), origins, (64, 64)) == (0.0, 70.0)
    assert roi.panel_origin((90, 5), origins, (64, 64)) == (80.0, 0.0)
    assert roi.panel_origin((200, 200), origins, (64, 64)) == (0.0, 0.0)


def test_measure_panels_applies_the_shapes_at_the_same_place_in_every_panel():
    ref = np.arange(16.0).reshape(4, 4)  # range 15
    stack = np.stack([ref, ref + 1.0])  # stage 2 is off by one everywhere
    panels = [roi.Panel("tv", "method", stack, (0.0, 0.0)), roi.Panel("reference", "reference", ref, (0.0, 10.0)),
              roi.Panel("map", "extra", 2 * stack, (0.0, 20.0))]
    # drawn on the reference panel (origin x = 10): pixels (1..2, 1..2) and the row 1.5 across
    area = roi.Shape("rectangle", np.array([(0.5, 10.5), (0.5, 12.5), (2.5, 12.5), (2.5, 10.5)]))
    line = roi.Shape("line", np.array([(1.5, 10.0), (1.5, 13.0)]))
    rows, curves = roi.measure_panels(panels, ref, (1, 0, 0), area, line)
    tv, reference, extra = rows
    assert tv["mean"] == 8.5 and reference["mean"] == 7.5 and extra["mean"] == 17.0  # (5+6+9+10)/4 (+1, ×2)
    assert tv["psnr"] == pytest.approx(20 * math.log10(15))  # MSE 1
    assert "psnr" not in reference and "psnr" not in extra
    assert [name for name, _, _ in curves] == ["tv", "reference"]  # extra maps have other units
    np.testing.assert_allclose(curves[0][2], [7, 8, 9, 10])
    np.testing.assert_allclose(curves[1][2], [6, 7, 8, 9])
    np.testing.assert_allclose(curves[1][1], [0, 1, 2, 3])
