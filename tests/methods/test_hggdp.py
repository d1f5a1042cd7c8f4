"""HGGDP: the score network's shapes and conditioning, the DSM loss, training, the sampler's data
consistency, seed replay and K posterior samples through the protocol."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from napari_unrollrecon.engine import problems
from napari_unrollrecon.engine.stream import collect, stream
from napari_unrollrecon.methods import hggdp as H
from napari_unrollrecon.physics.fft import fft2c
from napari_unrollrecon.physics.masks import make_mask

TINY = {**H.CONFIGS["cpu"], "ngf": 8}


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return H.build_model(TINY).eval()


def _problem(size=32, ratio=0.3, seed=0):
    yy, xx = np.mgrid[-1:1:size * 1j, -1:1:size * 1j]
    img = ((xx**2 + yy**2) < 0.6).astype(np.float32) * np.exp(1j * 0.5 * xx)
    mask = make_mask("radial", (size, size), ratio, seed=seed)
    return problems.mri_from_image(img, mask), mask


def test_stacked_embedding_round_trip():
    z = torch.randn(2, 8, 8, dtype=torch.complex64)
    x = H.to_stack(z)
    assert x.shape == (2, 6, 8, 8)
    back = H.from_stack(x)
    assert back.shape == (2, 3, 8, 8) and torch.equal(back[:, 1], z)


def test_score_depends_on_sigma_and_fits_any_even_grid(tiny):
    x = torch.randn(2, 6, 24, 40)
    with torch.no_grad():
        a, b = tiny(x, torch.tensor([0.5, 0.5])), tiny(x, torch.tensor([0.05, 0.05]))
    assert a.shape == x.shape
    assert not torch.allclose(a, b)
    assert not torch.allclose(a * 0.5, b * 0.05, rtol=1e-3)  # conditioned on σ, not only scaled by 1/σ


def test_level_weights_are_one_hot_on_the_ladder_and_blend_between():
    lw = H.ncsn.LevelWeights(1.0, 0.01, 10, interpolate=True)
    ladder = H.ncsn.sigma_ladder(1.0, 0.01, 10).float()
    w = lw(ladder)
    assert torch.allclose(w, torch.eye(10), atol=1e-5)
    mid = lw(torch.sqrt(ladder[2:3] * ladder[3:4]))  # geometric midpoint of levels 3 and 4
    assert torch.allclose(mid[0, 2:4], torch.tensor([0.5, 0.5]), atol=1e-4)
    discrete = H.ncsn.LevelWeights(1.0, 0.01, 10, interpolate=False)(torch.sqrt(ladder[2:3] * ladder[3:4]) * 1.01)
    assert discrete.sum() == 1 and discrete.max() == 1


def test_paper_network_has_the_counted_parameters():
    """30,124,550 = our count of NCSN v1 RefineNet at ngf 128, 6 channels, 10 levels (docs/methods/hggdp.md)."""
    model = H.build_model(H.CONFIGS["paper"])
    assert H.ncsn.parameter_count(model) == 30_124_550
    cpu = H.build_model(H.CONFIGS["cpu"])
    assert 0.9e6 < H.ncsn.parameter_count(cpu) < 1.3e6


class _ExactGaussianScore(torch.nn.Module):
    """The exact score of data x ~ N(0, s0² I) smoothed by σ: −x̃ / (s0² + σ²)."""

    def __init__(self, s0):
        super().__init__()
        self.s0 = s0

    def forward(self, x, sigma):
        return -x / (self.s0**2 + sigma.view(-1, 1, 1, 1) ** 2)


def test_dsm_loss_is_minimal_for_the_true_score():
    s0, n = 0.7, 512
    g = torch.Generator().manual_seed(0)
    targets = torch.complex(torch.randn(n, 8, 8, generator=g), torch.randn(n, 8, 8, generator=g)) * s0
    cfg = {**TINY, "intensity": [1.0, 1.0]}
    batch = H.make_batch(targets, g, cfg)
    loss, _ = H.loss(_ExactGaussianScore(s0), batch)
    expected = float((0.5 * s0**2 / (s0**2 + batch["sigma"] ** 2)).mean())
    assert abs(float(loss) - expected) / expected < 0.03
    zero, _ = H.loss(lambda x, s: torch.zeros_like(x), batch)
    assert abs(float(zero) - 0.5) < 0.02 and float(zero) > float(loss)


def test_a_short_training_run_lowers_the_loss():
    torch.manual_seed(0)
    model = H.build_model(TINY)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    yy, xx = np.mgrid[-1:1:32j, -1:1:32j]
    base = torch.from_numpy(((xx**2 + yy**2) < 0.5).astype(np.float32)).to(torch.complex64)
    held_out = H.make_batch(base.expand(16, 32, 32), torch.Generator().manual_seed(99), TINY)
    with torch.no_grad():
        before = float(H.loss(model, held_out)[0])
    for _ in range(60):
        loss, _ = H.loss(model, H.make_batch(base.expand(8, 32, 32), g, TINY))
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        after = float(H.loss(model, held_out)[0])
    assert after < 0.85 * before, (before, after)


def _run(tiny, problem, params, changes_at=None):
    with H.STORE.override(tiny):
        return collect(stream(H.SPEC, problem, params), changes_at=changes_at)


def test_every_step_is_exactly_consistent_with_the_sampled_kspace(tiny):
    problem, mask = _problem()
    items, res = _run(tiny, problem, {"levels": 6, "steps": 1, "samples": 2})
    assert len(items) == len(H.SCHEDULES["fast"]) * 0 + res.stages and res.stages > 2
    m = torch.from_numpy(mask) > 0
    for u in items:
        k = fft2c(u.estimate)  # (K, H, W): every sample, not only the mean
        assert torch.allclose(k[:, m], problem.y[m].expand(2, -1), atol=1e-5)
    assert res.samples.shape == (2, 32, 32) and res.std.shape == (32, 32)
    assert "level" in items[0].label and items[-1].stage == res.stages


def test_seed_replays_and_changes_the_run(tiny):
    problem, _ = _problem()
    params = {"levels": 5, "steps": 1, "samples": 1, "seed": 3}
    _, a = _run(tiny, problem, params)
    _, b = _run(tiny, problem, params)
    _, c = _run(tiny, problem, {**params, "seed": 4})
    assert np.array_equal(a.samples, b.samples)
    assert not np.array_equal(a.samples, c.samples)


def test_live_steps_and_stop_sigma(tiny):
    problem, _ = _problem()
    items, res = _run(tiny, problem, {"levels": 8, "steps": 1}, changes_at={2: {"steps": 3}})
    per_level = [u.info["level"] for u in items]
    assert per_level.count(per_level[-1]) == 4  # 3 corrector steps + the predictor after the change
    items2, res2 = _run(tiny, problem, {"levels": 8, "steps": 1, "sigma_stop": 0.05})
    assert items2[-1].info["sigma"] >= 0.05 and res2.stages < res.stages


def test_paper_schedule_uses_views_and_gradient_steps(tiny):
    sch = H.schedule_from({"schedule": "paper", "levels": 0, "steps": 2, "views": 0, "sigma_start": 0.0,
                           "step_scale": 1.0, "sigma_stop": 0.0, "temperature": 1.0})
    assert sch["views"] == 3 and sch["corrector"] == "gradient" and sch["steps"] == 2
    assert math.isclose(sch["step_size"], 1.5e-6)


def test_noise_temperature_is_live_and_recorded(tiny):
    problem, _ = _problem()
    base = {"levels": 6, "steps": 1, "samples": 1, "seed": 3}
    _, a = _run(tiny, problem, {**base, "temperature": 1.0})
    _, b = _run(tiny, problem, {**base, "temperature": 0.2})
    items, c = _run(tiny, problem, {**base, "temperature": 1.0}, changes_at={4: {"temperature": 0.2}})
    assert a.meta["schedule"]["temperature"] == 1.0 and c.meta["schedule"]["temperature"] == 0.2
    assert not np.array_equal(a.samples, b.samples)
    assert not np.array_equal(c.samples, a.samples) and not np.array_equal(c.samples, b.samples)
    assert H.SPEC.defaults()["temperature"] == H.TEMPERATURE
