import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from napari_unrollrecon.engine import metrics as M


@pytest.fixture
def pair():
    g = np.random.default_rng(0)
    ref = g.random((40, 40)) * 200
    return ref + g.normal(0, 5, ref.shape), ref


def test_psnr_matches_definition_and_skimage(pair):
    x, ref = pair
    mse = np.mean((x - ref) ** 2)
    assert M.psnr(x, ref, 255) == pytest.approx(10 * np.log10(255**2 / mse))
    assert M.psnr(x, ref) == pytest.approx(peak_signal_noise_ratio(ref, x, data_range=ref.max() - ref.min()))
    assert M.psnr(ref, ref) == float("inf")


def test_ssim_conventions(pair):
    x, ref = pair
    assert M.ssim(ref, ref) == pytest.approx(1.0)
    assert M.ssim(x, ref, 255) == pytest.approx(structural_similarity(x, ref, data_range=255))
    g = M.ssim(x, ref, 255, gaussian=True)
    assert g == pytest.approx(structural_similarity(x, ref, data_range=255, gaussian_weights=True, sigma=1.5,
                                                    use_sample_covariance=False))
    stack = M.ssim(np.stack([x, ref]), np.stack([ref, ref]), 255)
    assert stack == pytest.approx((M.ssim(x, ref, 255) + 1) / 2)


def test_nmse_and_shape_check(pair):
    x, ref = pair
    assert M.nmse(x, ref) == pytest.approx(np.sum((x - ref) ** 2) / np.sum(ref**2))
    with pytest.raises(ValueError, match="does not match reference shape"):
        M.psnr(x[:10], ref)


def test_log_kernel_is_matlab_fspecial_log():
    h = M.log_kernel(15, 1.5)
    assert h.shape == (15, 15)
    assert abs(h.sum()) < 1e-12  # zero-mean: a flat image gives no response
    np.testing.assert_allclose(h, h.T)
    np.testing.assert_allclose(h, h[::-1, ::-1])
    assert h[7, 7] == h.min() < 0  # negative centre lobe
    # closed form at the centre before the mean removal: g(0)/sum(g) * (-2 sigma^2)/sigma^4
    r = np.arange(-7, 8)
    g = np.exp(-(r[:, None] ** 2 + r[None] ** 2) / (2 * 1.5**2))
    raw = g / g.sum() * (r[:, None] ** 2 + r[None] ** 2 - 2 * 1.5**2) / 1.5**4
    np.testing.assert_allclose(h, raw - raw.mean(), atol=1e-15)


def test_hfen_is_zero_for_identical_and_grows_with_detail_error(pair):
    x, ref = pair
    assert M.hfen(ref, ref) == 0
    blurred = (ref + np.roll(ref, 1, 0) + np.roll(ref, 1, 1)) / 3
    assert M.hfen(blurred, ref) > 0
    assert M.hfen(blurred, ref, normalised=True) < M.hfen(blurred, ref)


@pytest.mark.parametrize("conv", M.CONVENTIONS)
def test_every_convention_reports_psnr_ssim_nmse(conv, pair):
    x, ref = pair
    scale = 1 / 255 if conv not in ("range", "cgpd") else 1.0
    out = M.evaluate(x * scale, ref * scale, conv)
    extra = {"hfen"} if conv == "hggdp" else set()  # HGGDP's tables report HFEN too
    assert set(out) == {"psnr", "ssim", "nmse"} | extra and np.isfinite(out["psnr"])
    if extra:
        assert out["hfen"] == pytest.approx(M.hfen(x * scale, ref * scale))


def test_cgpd_convention_clips_to_8bit(pair):
    x, ref = pair
    over = x + 100  # values beyond 255 are clipped before PSNR, as in the CGPD-CSNet code
    assert M.evaluate(over, ref, "cgpd")["psnr"] == pytest.approx(M.psnr(np.clip(over, 0, 255), ref, 255))
    with pytest.raises(ValueError, match="unknown metric convention"):
        M.evaluate(x, ref, "psnr-of-my-choice")


def test_series_are_scored_frame_by_frame():
    from napari_unrollrecon.engine.metrics import evaluate, psnr

    rng = np.random.default_rng(0)
    ref = rng.random((3, 16, 16))
    ref[1] *= 4  # frames on different scales: each frame uses its own data range
    x = ref + 0.01 * rng.standard_normal(ref.shape)
    got = evaluate(x, ref)["psnr"]
    assert np.isclose(got, np.mean([psnr(a, b) for a, b in zip(x, ref)]))
    assert not np.isclose(got, psnr(x, ref))
