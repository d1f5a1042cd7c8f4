"""The score-function interface and the analytic Gaussian prior.

A score function maps a batch ``x`` (B, C, H, W) real and noise levels ``sigma`` (B,) to
``∇ₓ log p_σ(x)`` of the same shape, where ``p_σ`` is the data density convolved with
N(0, σ²I). Networks implement it by ``forward(x, sigma)``; :class:`GaussianScore` implements it
in closed form, which is what lets the samplers be checked against an exact posterior.
"""

from __future__ import annotations

from typing import Protocol

import torch

from napari_unrollrecon.physics.fft import fft2c, ifft2c
from napari_unrollrecon.priors.channels import from_channels, to_channels


class ScoreFunction(Protocol):
    def __call__(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor: ...


def as_batch_sigma(sigma, x: torch.Tensor) -> torch.Tensor:
    """σ as a (B,) tensor on x's device, from a float or a tensor."""
    s = torch.as_tensor(sigma, dtype=torch.float32, device=x.device)
    return s.expand(x.shape[0]) if s.ndim == 0 else s


class GaussianScore:
    """Exact score of a stationary complex Gaussian prior x ~ CN(0, Σ), Σ = Fᴴ diag(p) F.

    ``power`` (H, W) is the prior's variance per centred k-space point (real, > 0). Images are
    carried as 2 real channels (Re, Im) so the same samplers serve networks and this prior. Each
    real channel of a k-space coefficient has variance p/2 and noise of level σ adds σ² to it
    (F is unitary), so the score of the smoothed prior is −F⁻¹[F z / (p/2 + σ²)] in (Re, Im).
    """

    def __init__(self, power: torch.Tensor):
        self.power = torch.as_tensor(power, dtype=torch.float32)
        if (self.power <= 0).any():
            raise ValueError("a Gaussian prior needs a positive power spectrum")

    def __call__(self, x: torch.Tensor, sigma) -> torch.Tensor:
        s = as_batch_sigma(sigma, x).view(-1, 1, 1)
        var = self.power.to(x.device) / 2 + s**2  # per real channel
        return -to_channels(ifft2c(fft2c(from_channels(x)[:, 0]) / var))

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """n draws of the prior as complex images (n, H, W) on the CPU."""
        shape = (n, *self.power.shape)
        w = torch.complex(torch.randn(shape, generator=generator), torch.randn(shape, generator=generator))
        return ifft2c(w * (self.power / 2).sqrt())


def dsm_loss(model, x: torch.Tensor, sigma: torch.Tensor, z: torch.Tensor):
    """Denoising score matching weighted by σ² (Vincent 2011; NCSN's λ(σ) = σ²):
    ½·mean ‖σ·s(x + σz, σ) + z‖² per sample, averaged; returns (loss, per-sample values)."""
    s4 = sigma.view(-1, *([1] * (x.ndim - 1)))
    per = 0.5 * (s4 * model(x + s4 * z, sigma) + z).pow(2).flatten(1).mean(1)
    return per.mean(), per.detach()
