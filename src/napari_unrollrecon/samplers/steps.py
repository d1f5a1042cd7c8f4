"""Predictor, corrector and Langevin steps as small registered functions.

Every step has the signature ``step(x, sigma, score_fn, generator, **options) -> (x, x_mean)``:
``x`` the noisy iterate, ``x_mean`` the same update without its fresh noise (what a sampler shows
and ends on). ``score_fn(x, sigma)`` is any :class:`~napari_unrollrecon.priors.score.ScoreFunction`
— wrap it with :func:`averaged_score` for several chains / noise views evaluated as one batch.

=====================  ===================================================================
predictor / corrector  update (z ~ N(0, I) from the generator)
=====================  ===================================================================
reverse_diffusion      x̄ = x + (σ² − σ'²)·s(x, σ);  x = x̄ + T·√(σ² − σ'²)·z   (σ' the next level)
langevin (SNR rule)    ε = 2·(snr·‖z‖/‖s‖)²;  x̄ = x + ε·s(x, σ);  x = x̄ + T·√(2ε)·z
annealed_langevin      α = ε·(σ/σ_L)²;  x̄ = x + α·s(x, σ);  x = x̄ + √(2α)·z   (NCSN)
gradient               α = ε·(σ/σ_L)²;  x = x̄ = x + α·s(x, σ)   (HGGDP, with a perturbed score)
=====================  ===================================================================

T is the noise temperature (1 = the sampler as derived): below 1 the chain draws from a sharpened
posterior, between a sample and its mode, which is what a single-sample PSNR rewards (HGGDP's fast
schedule, chosen on validation slices; docs/methods/hggdp.md).
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from napari_unrollrecon.samplers.sde import VESDE, noise

PREDICTORS: dict[str, Callable] = {}
CORRECTORS: dict[str, Callable] = {}


def register(table: dict, name: str):
    def deco(fn):
        table[name] = fn
        return fn

    return deco


def get(table: dict, name: str) -> Callable:
    try:
        return table[name]
    except KeyError:
        raise ValueError(f"unknown step {name!r}; choose one of {sorted(table)}") from None


def _norms(t: torch.Tensor) -> torch.Tensor:
    """Per-sample L2 norm, shaped for broadcasting."""
    return torch.linalg.vector_norm(t.flatten(1), dim=1).view(-1, *([1] * (t.ndim - 1)))


@register(PREDICTORS, "reverse_diffusion")
def reverse_diffusion(x, sigma, score_fn, generator, sigma_next: float = 0.0, add_noise: bool = True,
                      temperature: float = 1.0):
    var = sigma**2 - sigma_next**2
    x_mean = x + var * score_fn(x, sigma)
    if not add_noise or var <= 0:
        return x_mean, x_mean
    return x_mean + temperature * math.sqrt(var) * noise(x.shape, generator, x), x_mean


@register(PREDICTORS, "none")
def no_predictor(x, sigma, score_fn, generator, **_):
    return x, x


@register(CORRECTORS, "langevin")
def langevin(x, sigma, score_fn, generator, snr: float = 0.16, temperature: float = 1.0, **_):
    g = score_fn(x, sigma)
    z = noise(x.shape, generator, x)
    eps = 2 * (snr * _norms(z) / _norms(g).clamp_min(1e-12)) ** 2
    x_mean = x + eps * g
    return x_mean + temperature * (2 * eps).sqrt() * z, x_mean


@register(CORRECTORS, "annealed_langevin")
def annealed_langevin(x, sigma, score_fn, generator, eps: float = 2e-5, sigma_last: float = 0.01,
                      temperature: float = 1.0, **_):
    alpha = eps * (sigma / sigma_last) ** 2
    x_mean = x + alpha * score_fn(x, sigma)
    return x_mean + temperature * math.sqrt(2 * alpha) * noise(x.shape, generator, x), x_mean


@register(CORRECTORS, "gradient")
def gradient(x, sigma, score_fn, generator, eps: float = 1.5e-6, sigma_last: float = 0.01, **_):
    alpha = eps * (sigma / sigma_last) ** 2
    x_mean = x + alpha * score_fn(x, sigma)
    return x_mean, x_mean


@register(CORRECTORS, "none")
def no_corrector(x, sigma, score_fn, generator, **_):
    return x, x


def averaged_score(score_fn, views: int = 1, generator: torch.Generator | None = None, perturb: float = 0.0):
    """Score averaged over ``views`` copies evaluated as one batch.

    With ``perturb > 0`` each copy is x + perturb·σ·z, fresh z per copy and call: HGGDP's score
    "at a noisy copy of the iterate", and with views > 1 its multi-view noise. With ``perturb = 0``
    the copies would be identical, so the score itself is returned.
    """
    if perturb <= 0:
        return score_fn

    def score(x, sigma):
        rep = x.repeat_interleave(views, 0) if views > 1 else x
        rep = rep + perturb * sigma * noise(rep.shape, generator, rep)
        s = score_fn(rep, sigma)
        return s.view(x.shape[0], views, *x.shape[1:]).mean(1) if views > 1 else s

    return score


def pc_ladder(sde: VESDE, start: float | None = None) -> list[tuple[float, float]]:
    """(σ, σ_next) pairs over the ladder from ``start``; σ_next of the last level is 0."""
    s = sde.sigmas(start)
    return list(zip(s, s[1:] + [0.0]))
