"""DD-UGM's sampler with small untrained networks: data consistency, samples, replay, training."""

import numpy as np
import pytest
import torch

from napari_unrollrecon.engine import phantoms, problems, registry, stream
from napari_unrollrecon.methods import dd_ugm_models as M
from napari_unrollrecon.methods.base import LiveParams
from napari_unrollrecon.physics.fft import fft2c
from napari_unrollrecon.physics.masks import make_mask

TINY = {**M.CONFIGS["cpu"], "nf": 8, "ch_mult": (1, 2)}


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    return M.build_model(TINY).eval(), M.build_model(TINY).eval()


@pytest.fixture(scope="module")
def problem():
    x0 = phantoms.cine_phantom(4, 24)
    return problems.mri_from_image(x0, make_mask("equispaced", x0.shape, 0.25, seed=0)), x0


def _run(models, problem, changes_at=None, **params):
    spec = registry.get("dd-ugm")
    with M.STORES["dd-ugm-k"].override(models[0]), M.STORES["dd-ugm-x"].override(models[1]):
        return stream.collect(spec.start(problem, LiveParams(spec.params, params)), changes_at=changes_at)


def test_data_consistency_holds_at_sampled_kt_points_after_every_iteration(models, problem):
    p, _x0 = problem
    updates, result = _run(models, p, iterations=4, samples=2, rank=20, init="zero-filled")
    mask = p.operator.mask.bool()
    assert len(updates) == 4
    for u in updates:
        k = fft2c(u.estimate)  # (K, T, H, W)
        assert u.estimate.shape == (2, 4, 24, 24)
        torch.testing.assert_close(k[:, mask], p.y[mask].expand(2, -1), atol=1e-5, rtol=1e-4)
    assert result.samples.shape == (2, 4, 24, 24) and result.std.shape == (4, 24, 24)
    assert result.meta["network_evaluations_per_frame"] == 4 * 4


def test_same_seed_replays_and_other_seed_differs(models, problem):
    p, _ = problem
    a = _run(models, p, iterations=3, seed=5)[1].complex_image
    b = _run(models, p, iterations=3, seed=5)[1].complex_image
    c = _run(models, p, iterations=3, seed=6)[1].complex_image
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_live_fusion_and_branch_layers(models, problem):
    p, _ = problem
    updates, _ = _run(models, p, {1: {"fusion": 0.0}}, iterations=3, branches=True, lowrank=True,
                      tv=0.0)
    assert {"k-space branch", "image branch", "low rank"} <= set(updates[-1].extras)
    assert updates[-1].params["fusion"] == 0.0
    # fusion 0 after the change (and no TV step): the estimate is the image branch after consistency
    np.testing.assert_allclose(updates[-1].image, updates[-1].extras["image branch"], atol=1e-5)


def test_refuses_single_images(models):
    p = problems.mri_from_image(np.ones((16, 16), np.float32), make_mask("random", (16, 16), 0.5))
    with pytest.raises(ValueError, match="handles dmri data"):
        _run(models, p)


@pytest.mark.parametrize("name", ["dd-ugm-k", "dd-ugm-x"])
def test_short_training_lowers_the_loss(name):
    torch.manual_seed(0)
    spec = M.TRAININGS[name]
    model = spec.build_model(TINY)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    frames = torch.from_numpy(phantoms.cine_phantom(8, 32)).to(torch.complex64)
    cfg = {**TINY, "sigma_max": 1.0}
    fixed = spec.make_batch(frames, torch.Generator().manual_seed(99), cfg)
    with torch.no_grad():
        before = float(spec.loss(model, fixed)[0])
    for step in range(40):
        loss, _ = spec.loss(model, spec.make_batch(frames, torch.Generator().manual_seed(step), cfg))
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        after = float(spec.loss(model, fixed)[0])
    assert after < 0.8 * before
    assert spec.predict(model, fixed).shape == frames.shape


def test_batches_carry_a_smooth_synthetic_phase():
    frames = torch.ones(2, 32, 32, dtype=torch.complex64)
    b = M.TRAININGS["dd-ugm-x"].make_batch(frames, torch.Generator().manual_seed(0), dict(TINY))
    t = b["target"]
    assert torch.angle(t).std() > 0.1  # a real phase, not zero
    step = torch.angle(t[:, 1:] * t[:, :-1].conj())  # phase change between neighbours (unwrapped)
    assert step.abs().max() < 0.5
    k = b["x"]  # image domain: (Re, Im) of the target
    torch.testing.assert_close(torch.complex(k[:, 0], k[:, 1]), b["target"])


def test_a_sigma_focus_puts_its_share_of_the_noise_levels_in_its_band():
    config = {"sigma_min": 0.01, "sigma_max": 4.0}
    plain = M._draw_sigma(20000, config, torch.Generator().manual_seed(0))
    focused = M._draw_sigma(20000, {**config, "sigma_focus": [0.005, 0.05, 0.5]}, torch.Generator().manual_seed(0))
    assert plain.min() >= 0.01 and plain.max() <= 4.0
    band = lambda s: float(((s >= 0.005) & (s <= 0.05)).float().mean())
    assert 0.25 < band(plain) < 0.29  # log-uniform over [0.01, 4]: ln 5 / ln 400 = 27 % in [0.01, 0.05]
    assert 0.61 < band(focused) < 0.66  # half drawn in the band, plus 27 % of the other half
    assert focused.min() >= 0.005 and focused.max() <= 4.0


def test_lplus_s_warm_start_streams_first(models, problem):
    p, _ = problem
    updates, result = _run(models, p, iterations=2, init="lplus-s", warm_iterations=3)
    assert [u.stage for u in updates] == [1, 2, 3, 4, 5] and result.stages == 5
    assert updates[0].label.startswith("L+S warm start") and updates[-1].label.startswith("DD-UGM iteration 2/2")
    assert updates[-1].total == 5


def test_without_networks_the_sampler_is_low_rank_projections_onto_the_data(models, problem):
    from napari_unrollrecon.methods.dd_ugm import low_rank

    p, _ = problem
    updates, result = _run(models, p, iterations=3, init="zero-filled", networks=False, rank=30, tv=0.0)
    assert result.meta["network_evaluations"] == 0
    x = p.operator.initial_estimate(p.y).to(torch.complex64)
    peak = p.scale
    x = x / peak
    for _ in range(3):  # the same steps by hand: project, then restore the measured k-t points
        x = p.operator.data_consistency(low_rank(x, 4, 30), p.y / peak)
    np.testing.assert_allclose(result.complex_image[0] if result.complex_image.ndim == 4 else result.complex_image,
                               (x * peak).numpy(), atol=1e-4)


def test_the_tv_step_follows_each_low_rank_step_and_keeps_its_dual(models, problem):
    from napari_unrollrecon.methods.dd_ugm import SCHEDULES, TV_ITERATIONS, low_rank
    from napari_unrollrecon.priors.tv import tv_prox

    p, _ = problem
    _, result = _run(models, p, iterations=3, init="zero-filled", networks=False, rank=30, tv=0.01)
    assert result.meta["schedule"]["tv"] == 0.01
    dc = lambda v: p.operator.data_consistency(v, p.y / p.scale)
    x, state = p.operator.initial_estimate(p.y).to(torch.complex64) / p.scale, {}
    for _ in range(3):  # by hand: project, restore the data, TV prox (dual kept), restore the data
        x = dc(low_rank(x, 4, 30))
        x = dc(tv_prox(x[None], 0.01, iterations=TV_ITERATIONS, state=state)[0])
    np.testing.assert_allclose(result.complex_image, (x * p.scale).numpy(), atol=1e-4)
    _, plain = _run(models, p, iterations=3, init="zero-filled", networks=False, rank=30, tv=0.0)
    assert np.abs(plain.complex_image - result.complex_image).max() > 1e-3  # the step does something
    assert _run(models, p, iterations=1, init="zero-filled", networks=False)[1].meta["schedule"]["tv"] == \
        SCHEDULES["fast"]["tv"]
    # with the low-rank step off too, the TV step alone (and no low-rank layer)
    updates, tv_only = _run(models, p, iterations=2, init="zero-filled", networks=False, lowrank=False, tv=0.01,
                            branches=True)
    x, state = p.operator.initial_estimate(p.y).to(torch.complex64) / p.scale, {}
    for _ in range(2):
        x = dc(tv_prox(x[None], 0.01, iterations=TV_ITERATIONS, state=state)[0])
    np.testing.assert_allclose(tv_only.complex_image, (x * p.scale).numpy(), atol=1e-4)
    assert "low rank" not in updates[-1].extras


def test_rank_zero_follows_the_mask_family(models):
    from napari_unrollrecon.methods.dd_ugm import AUTO_RANK

    x0 = phantoms.cine_phantom(4, 24)
    for kind, family in (("equispaced", "lines"), ("radial", "other")):
        p = problems.mri_from_image(x0, make_mask(kind, x0.shape, 0.3, seed=0))
        _, result = _run(models, p, iterations=1, init="zero-filled", networks=False)
        assert result.meta["schedule"]["rank"] == AUTO_RANK[family]
    p = problems.mri_from_image(x0, make_mask("radial", x0.shape, 0.3, seed=0))
    assert _run(models, p, iterations=1, init="zero-filled", rank=7)[1].meta["schedule"]["rank"] == 7


def test_bundled_models_load_verified_and_improve_a_cine_phantom():
    from napari_unrollrecon.engine.metrics import evaluate
    from napari_unrollrecon.methods import learned
    from napari_unrollrecon.methods.dd_ugm import padded

    found = {name: learned.bundled(name) for name in ("dd-ugm-k", "dd-ugm-x")}
    if not all(found.values()):
        pytest.skip("no bundled DD-UGM weights")
    for name, files in found.items():
        card = learned.read_card(files[0])
        assert card["method"] == name and card["sha256"] == learned.sha256(files[0])
    x0 = phantoms.cine_phantom(6, 64)
    p = problems.mri_from_image(x0, make_mask("radial", x0.shape, 0.2, seed=0))
    result = stream.run(registry.get("dd-ugm"), p, {"iterations": 3, "warm_iterations": 5})
    assert set(result.meta["weights"].split(" + ")) == {files[0].name for files in found.values()}
    # the image model is a trained denoiser: one Tweedie step at σ 0.05 removes much of the noise
    model, _ = M.STORES["dd-ugm-x"].resolve("", "cpu")
    clean = torch.from_numpy(x0 / x0.max()).to(torch.complex64)
    u = M.to_domain(clean, "image")
    noisy = u + 0.05 * torch.randn(u.shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        denoised = noisy + 0.05**2 * padded(model)(noisy, 0.05)

    def psnr(v):
        return evaluate(np.abs(M.from_domain(v, "image").numpy()), x0, "ddugm")["psnr"]

    assert psnr(denoised) > psnr(noisy) + 3
