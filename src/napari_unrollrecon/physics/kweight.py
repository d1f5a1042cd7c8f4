"""DD-UGM's k-space ramp weighting w(k) = c·|k|, which flattens k-space's dynamic range so a score
network can model it like an image.

The authors weight unnormalised, centred 192² k-space by 0.011·|k|/96 (|k| in samples from DC).
In our orthonormal convention (unnormalised = √(H·W)·ortho) and for any grid this is

    w(k) = c·√(H·W)·ρ(k),  ρ = √((k_y/(H/2))² + (k_x/(W/2))²),  c = 0.011,

identical to theirs on 192² and scaled with the grid elsewhere. w = 0 at DC: the weighted k-space
carries no DC, so :func:`unweight` takes it (and any other w = 0 point) from a fallback — the
previous estimate, which data consistency has already made exact at DC.
"""

from __future__ import annotations

import math

import torch

AUTHORS_C = 0.011


def ramp(shape, c: float = AUTHORS_C, device=None) -> torch.Tensor:
    """w(k) on a centred (H, W) grid, float32."""
    h, w = int(shape[-2]), int(shape[-1])
    ky = (torch.arange(h, device=device, dtype=torch.float32) - h // 2) / (h / 2)
    kx = (torch.arange(w, device=device, dtype=torch.float32) - w // 2) / (w / 2)
    rho = torch.sqrt(ky[:, None] ** 2 + kx[None, :] ** 2)
    return c * math.sqrt(h * w) * rho


def weight(k: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return k * w


def unweight(kw: torch.Tensor, w: torch.Tensor, fallback: torch.Tensor) -> torch.Tensor:
    """Invert :func:`weight` where w > 0; ``fallback`` (same shape as ``kw``) elsewhere."""
    safe = torch.where(w > 0, w, torch.ones_like(w))
    return torch.where(w > 0, kw / safe, fallback)
