"""The sampler floor against a closed-form posterior: Gaussian prior, noisy linear MRI data.

Prior x ~ CN(0, Fᴴ diag(p) F), data y = M F x + n with n of std η per real channel. In k-space
the posterior factorises: on sampled points mean (p/2)/(p/2 + η²)·y and variance
(p/2)η²/(p/2 + η²) per real channel; elsewhere mean 0 and variance p/2. Through the real
protocol (registry, engine.stream, K samples) the sampler must reproduce both.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_unrollrecon.engine import registry
from napari_unrollrecon.engine.stream import collect, run, stream
from napari_unrollrecon.methods.base import Problem, StageCache
from napari_unrollrecon.physics.fft import fft2c, ifft2c
from napari_unrollrecon.physics.mri import MRIOperator
from napari_unrollrecon.priors.score import GaussianScore

N = 8
ETA = 0.3


def _setup(seed=0):
    g = torch.Generator().manual_seed(seed)
    ky, kx = torch.meshgrid(torch.arange(N) - N // 2, torch.arange(N) - N // 2, indexing="ij")
    power = 0.4 + 1.6 / (1 + (ky**2 + kx**2).float() / 8)  # p/2 in [0.2, 1]
    x = GaussianScore(power).sample(1, g)[0]
    mask = (torch.rand(N, N, generator=g) < 0.5).float()
    mask[N // 2 - 2:N // 2 + 2, N // 2 - 2:N // 2 + 2] = 1
    n = torch.complex(torch.randn(N, N, generator=g), torch.randn(N, N, generator=g)) * ETA
    op = MRIOperator(mask)
    y = op.A(x) + mask * n
    problem = Problem("mri", op, y, scale=1.0, image_shape=(N, N), meta={"prior_power": power})
    half = power / 2
    gain = torch.where(mask > 0, half / (half + ETA**2), torch.zeros_like(half))
    var_k = torch.where(mask > 0, half * ETA**2 / (half + ETA**2), half)
    mean = ifft2c(gain * y)
    var_pixel = float(var_k.mean())  # stationary: every pixel, each real channel
    return problem, mean, var_pixel


def test_langevin_reproduces_the_closed_form_posterior():
    problem, mean, var = _setup()
    spec = registry.get("gaussian-langevin")
    res = run(spec, problem, {"samples": 8192, "levels": 6, "steps": 40, "noise": ETA, "sigma_max": 1.0,
                              "sigma_min": 0.01, "snr": 0.2, "step_rule": "snr", "seed": 1})
    s = torch.as_tensor(res.samples)
    assert s.shape == (8192, N, N) and torch.is_complex(s)
    est_mean = s.mean(0)
    rel_mean = float((est_mean - mean).abs().norm() / mean.abs().norm())
    est_var = (s.real.var(0) + s.imag.var(0)) / 2  # pixel-wise, per real channel
    rel_var = float((est_var - var).norm() / (var * N))
    assert rel_mean <= 0.02, rel_mean
    assert rel_var <= 0.10, rel_var
    assert np.allclose(res.image, np.abs(est_mean.numpy()), atol=1e-5)
    assert res.std is not None and res.std.shape == (N, N)


def test_a_wrong_step_rule_is_caught():
    """The check can fail: a step far too large inflates the variance beyond the tolerance."""
    problem, mean, var = _setup()
    res = run(registry.get("gaussian-langevin"), problem,
              {"samples": 2048, "levels": 6, "steps": 40, "noise": ETA, "sigma_min": 0.01, "snr": 0.6, "step_rule": "snr", "seed": 1})
    s = torch.as_tensor(res.samples)
    rel_var = float(((s.real.var(0) + s.imag.var(0)) / 2 - var).norm() / (var * N))
    assert rel_var > 0.10


def test_replay_after_a_live_change_is_bit_exact():
    """Resume at stage ℓ after a change = a fresh run with the same change at ℓ (generator state cached)."""
    problem, _, _ = _setup()
    spec = registry.get("gaussian-langevin")
    params = {"samples": 3, "levels": 3, "steps": 4, "seed": 7}
    fresh_items, fresh = collect(stream(spec, problem, params), changes_at={5: {"tau": 0.05}})
    cache = StageCache()
    _, first = collect(stream(spec, problem, params, cache=cache))
    _, resumed = collect(stream(spec, problem, {**params, "tau": 0.05}, cache=cache, start=6))
    assert cache.resumed_from == 6
    assert np.array_equal(resumed.samples, fresh.samples)
    assert not np.array_equal(first.samples, fresh.samples)
    _, again = collect(stream(spec, problem, params))
    assert np.array_equal(again.samples, first.samples), "the same seed replays the same run"


def test_updates_carry_mean_and_std():
    problem, _, _ = _setup()
    items, res = collect(stream(registry.get("gaussian-langevin"), problem, {"samples": 4, "levels": 2, "steps": 2}))
    u = items[-1]
    assert u.samples == 4 and u.image.shape == (N, N) and u.extras["std"].shape == (N, N)
    assert np.allclose(u.extras["std"], res.std)
