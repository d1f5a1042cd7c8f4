"""Annealed Langevin sampling of the MRI posterior under an analytic Gaussian prior.

The prior x ~ CN(0, Fᴴ diag(p) F) (stationary, diagonal in k-space) has an exact score
(:class:`~napari_unrollrecon.priors.score.GaussianScore`), and with a noisy linear measurement
y = M F x + n, n ~ CN(0, 2η²) the posterior is Gaussian in closed form — so this method is the
sampler floor's correctness check (tests/methods/test_gaussian_langevin.py) and shows a sampler
streaming, its mean and std, before any network is trained.

Per level σ_i of a geometric ladder σ_max → σ_min (relative to the data scale), ``steps``
Langevin steps (α = τσ_i²/2, or the signal-to-noise rule) on the posterior score
s(x, σ) = s_prior(x, σ) + Aᴴ(y − A x)/(η² + σ²). The prior spectrum is ``problem.meta
["prior_power"]`` when given (H, W, absolute units), else fitted to the measured k-space: the
mean |y|² of the sampled points in radial bins, filled outward over unsampled radii, floored at
the noise power 2η².
"""

from __future__ import annotations

import numpy as np
import torch

from napari_unrollrecon.methods.base import (
    STOCHASTIC_PARAMS, MethodSpec, Param, UpdateMaker, noise_generator, resume_point,
)
from napari_unrollrecon.priors.channels import from_channels, to_channels
from napari_unrollrecon.priors.score import GaussianScore
from napari_unrollrecon.samplers import steps as S
from napari_unrollrecon.samplers.sde import VESDE, noise

NAME = "gaussian-langevin"


def fitted_power(y: torch.Tensor, mask: torch.Tensor, floor: float, bins: int = 32) -> torch.Tensor:
    """A radial power spectrum p(|k|) from the sampled k-space points, at least ``floor``.

    The floor (the measurement noise power 2η²: power below it cannot be told from noise) also
    keeps the posterior's curvature within a small multiple of 1/η² everywhere, which the
    signal-to-noise step rule needs to stay stable."""
    h, w = y.shape[-2:]
    ky = torch.arange(h, device=y.device) - h // 2
    kx = torch.arange(w, device=y.device) - w // 2
    r = torch.sqrt(ky[:, None].float() ** 2 + kx[None].float() ** 2)
    idx = (r / r.max() * (bins - 1)).round().long()
    sampled = mask > 0
    p = torch.zeros(bins, device=y.device)
    n = torch.zeros(bins, device=y.device)
    p.index_add_(0, idx[sampled], y[sampled].abs() ** 2)
    n.index_add_(0, idx[sampled], torch.ones(int(sampled.sum()), device=y.device))
    prof = p / n.clamp_min(1)
    for i in range(1, bins):  # unsampled radii take the previous radius's power
        if n[i] == 0:
            prof[i] = prof[i - 1]
    return prof[idx].clamp_min(max(float(floor), 1e-12))


def _prior(problem, eta2: float) -> GaussianScore:
    power = problem.meta.get("prior_power")
    if power is None:
        sampled = (problem.y.abs() > 0).to(torch.float32)  # no mask needed: sampled points are nonzero
        power = fitted_power(problem.y, sampled, floor=2 * eta2)
    return GaussianScore(torch.as_tensor(np.asarray(power) if not torch.is_tensor(power) else power))


@torch.no_grad()
def run(problem, params, cache=None, start=0):
    op, y = problem.operator, problem.y
    k, levels, steps = int(params["samples"]), int(params["levels"]), int(params["steps"])
    total = levels * steps
    make = UpdateMaker(problem, params, total=total, samples=k)
    scale = problem.scale
    sde = VESDE(params["sigma_min"] * scale, params["sigma_max"] * scale, levels)
    eta2 = (params["noise"] * scale) ** 2
    prior = _prior(problem, eta2)

    def score(x, sigma):
        lik = to_channels(op.likelihood_grad(from_channels(x)[:, 0], y)) / (eta2 + sigma**2)
        return prior(x, sigma) + lik

    gen = noise_generator(params, problem.device)
    key = (NAME, tuple(y.shape), float(y.abs().sum()), k, levels, steps, params["seed"], params["noise"],
           params["sigma_max"], params["sigma_min"])
    done, state = resume_point(cache, key, start, NAME)
    if state is None:
        x = to_channels(op.initial_estimate(y)[None]).repeat(k, 1, 1, 1)
        x = x + sde.sigma_max * noise(x.shape, gen, x)
    else:
        x, rng = state
        x = x.clone()
        gen.set_state(rng)
    sigmas = sde.sigmas()
    if cache is not None and done == 0:
        cache.put(0, (x, gen.get_state()))
    for stage in range(done + 1, total + 1):
        sigma = sigmas[(stage - 1) // steps]
        if params["step_rule"] == "snr":
            x, _ = S.langevin(x, sigma, score, gen, snr=params["snr"])
        else:  # α = τσ²/2: the posterior's curvature is ≤ 2/σ² at level σ, so any τ < 2 is stable
            x, _ = S.annealed_langevin(x, sigma, score, gen, eps=params["tau"] * sde.sigma_min**2 / 2,
                                       sigma_last=sde.sigma_min)
        if cache is not None:
            cache.put(stage, (x, gen.get_state()))
        level = (stage - 1) // steps + 1
        yield make(stage, from_channels(x)[:, 0], label=f"level {level}/{levels} · step {(stage - 1) % steps + 1}"
                   f"/{steps} · σ {sigma / scale:.3g}", info={"sigma": sigma / scale})
    return make.result(NAME, from_channels(x)[:, 0], stages=total,
                       meta={"prior": "given" if "prior_power" in problem.meta else "fitted radial spectrum"})


SPEC = MethodSpec(
    name=NAME,
    title="Gaussian prior, annealed Langevin",
    modalities=("mri",),
    params=(
        Param("noise", 0.02, low=1e-4, high=1.0, log=True, label="noise η (× data scale)",
              help="assumed std of the measurement noise per real channel, relative to the data scale"),
        Param("levels", 10, kind="int", low=1, high=1000, label="noise levels"),
        Param("steps", 20, kind="int", low=1, high=1000, label="steps per level"),
        Param("step_rule", "annealed", kind="choice", choices=("annealed", "snr"), label="step rule",
              help="annealed: α = τσ²/2 per level (stable from any start); snr: ε = 2(snr·‖z‖/‖s‖)², "
                   "accurate near equilibrium"),
        Param("tau", 0.5, low=1e-3, high=1.9, live=True, log=True, label="τ (annealed step)"),
        Param("snr", 0.16, low=1e-3, high=1.0, live=True, log=True, label="corrector SNR (snr rule)",
              help="Langevin step from the signal-to-noise rule ε = 2(snr·‖z‖/‖s‖)²"),
        Param("sigma_max", 1.0, low=1e-3, high=100.0, log=True, label="σ_max (× data scale)"),
        Param("sigma_min", 0.002, low=1e-5, high=1.0, log=True, label="σ_min (× data scale)"),
        *STOCHASTIC_PARAMS,
    ),
    run=run,
    resumable=True,
    description="Posterior sampling under an analytic stationary Gaussian prior: the exact-score reference for "
                "the samplers, with K posterior samples (mean and std).",
    reference="Song & Ermon, 'Generative modeling by estimating gradients of the data distribution' (annealed "
              "Langevin); Song et al., 'Score-based generative modeling through SDEs' (corrector SNR rule)",
)
