"""Zero-filled, TV and L1-wavelet follow the protocol and actually reconstruct."""

import numpy as np
import pytest
import torch

from napari_unrollrecon.engine import phantoms, problems, registry
from napari_unrollrecon.engine.metrics import psnr
from napari_unrollrecon.engine.stream import run, stream
from napari_unrollrecon.physics.masks import make_mask
from napari_unrollrecon.engine.stream import collect

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def mri():
    x = phantoms.mri_phantom(64)
    mask = make_mask("cartesian", (64, 64), 0.35, seed=1)
    return x, problems.mri_from_image(x, mask)


_drain = collect  # (updates, result), live changes sent after chosen stages


def test_zero_filled_is_adjoint(mri):
    x, p = mri
    updates, res = _drain(registry.get("zero-filled").start(p))
    assert len(updates) == 1 and updates[0].total == 1
    np.testing.assert_allclose(res.image, p.operator.AH(p.y).abs().numpy(), rtol=1e-6)
    assert res.image.dtype == np.float32


@pytest.mark.parametrize("name", ["tv", "l1-wavelet"])
def test_iterative_baselines_beat_zero_filled(mri, name):
    x, p = mri
    zf = run(registry.get("zero-filled"), p, reference=np.abs(x)).metrics["psnr"]
    res = run(registry.get(name), p, {"iterations": 60}, reference=np.abs(x))
    assert res.metrics["psnr"] > zf + 2.0, (name, res.metrics["psnr"], zf)
    assert res.stages == 60


@pytest.mark.parametrize("name", ["tv", "l1-wavelet"])
def test_updates_follow_protocol(mri, name):
    x, p = mri
    updates, res = _drain(stream(registry.get(name), p, {"iterations": 5}, reference=np.abs(x)))
    assert [u.stage for u in updates] == [1, 2, 3, 4, 5]
    assert all(u.total == 5 and u.image.shape == (64, 64) and u.image.dtype == np.float32 for u in updates)
    assert all(u.residual is not None and "psnr" in u.metrics for u in updates)
    assert updates[-1].elapsed >= updates[0].elapsed
    np.testing.assert_array_equal(updates[-1].image, res.image)


@pytest.mark.parametrize("name", ["tv", "l1-wavelet"])
def test_live_change_reaches_running_generator(mri, name):
    x, p = mri
    spec = registry.get(name)
    _, plain = _drain(spec.start(p, {"iterations": 8}))
    updates, tweaked = _drain(spec.start(p, {"iterations": 8}), changes_at={3: {"lam": 0.2}})
    assert updates[2].params["lam"] != 0.2 and updates[3].params["lam"] == 0.2
    assert np.abs(tweaked.image - plain.image).max() > 1e-3 * plain.image.max()
    # a heavier weight smooths: less total variation in the result
    tv = lambda im: np.abs(np.diff(im, axis=0)).sum() + np.abs(np.diff(im, axis=1)).sum()
    assert tv(tweaked.image) < tv(plain.image)


def test_intensity_scale_is_preserved(mri):
    """Relative weights: the same reconstruction on ×1000 data is ×1000."""
    x, p = mri
    p2 = problems.mri_from_image(x * 1000, p.operator.mask)
    a = run(registry.get("tv"), p, {"iterations": 20}).image
    b = run(registry.get("tv"), p2, {"iterations": 20}).image
    np.testing.assert_allclose(b, 1000 * a, rtol=2e-3, atol=1e-3 * b.max())


def test_dynamic_tv_uses_time(mri):
    cine = phantoms.cine_phantom(frames=8, n=48)
    mask = make_mask("equispaced", cine.shape, 0.25, seed=0)
    p = problems.mri_from_image(cine, mask)
    assert p.modality == "dmri"
    zf = psnr(run(registry.get("zero-filled"), p).image, cine)
    spatial = psnr(run(registry.get("tv"), p, {"iterations": 60, "time_weight": 0.0}).image, cine)
    st = psnr(run(registry.get("tv"), p, {"iterations": 60, "time_weight": 1.0}).image, cine)
    assert st > spatial > zf


def test_wrong_modality_is_refused():
    p = problems.ct_from_image(phantoms.ct_phantom(32), 8)
    with pytest.raises(ValueError, match="handles mri, dmri data, not 'ct'"):
        registry.get("zero-filled").start(p)


@pytest.mark.parametrize("name", ["tv", "l1-wavelet"])
def test_ct_baselines_beat_fbp(name):
    x = phantoms.ct_phantom(64)
    p = problems.ct_from_image(x, 20)
    fbp = run(registry.get("fbp"), p, reference=x).metrics["psnr"]
    res = run(registry.get(name), p, {"iterations": 60}, reference=x).metrics["psnr"]
    assert res > fbp + 2.0, (name, res, fbp)


@pytest.mark.parametrize("name", ["zero-filled", "tv", "l1-wavelet"])
def test_paused_run_leaves_autograd_on_in_the_consumer(mri, name):
    _, p = mri
    gen = registry.get(name).start(p, {} if name == "zero-filled" else {"iterations": 3})
    next(gen)
    assert torch.is_grad_enabled()
