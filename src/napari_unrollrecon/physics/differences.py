"""Finite differences over the spatial axes (and the frame axis of a series): the operator of
total variation, shared by the TV baseline and the TV proximal step of the samplers."""

from __future__ import annotations

import torch


def grad(x: torch.Tensor, time_weight: float = 0.0) -> torch.Tensor:
    """Forward differences with Neumann boundary, stacked on a new leading axis.

    Spatial axes are the last two; with ``time_weight > 0`` the third-from-last axis (frames) is
    differenced too, scaled by ``time_weight``.
    """
    dy = torch.zeros_like(x)
    dx = torch.zeros_like(x)
    dy[..., :-1, :] = x[..., 1:, :] - x[..., :-1, :]
    dx[..., :, :-1] = x[..., :, 1:] - x[..., :, :-1]
    parts = [dy, dx]
    if time_weight > 0 and x.ndim >= 3:
        dt = torch.zeros_like(x)
        dt[..., :-1, :, :] = (x[..., 1:, :, :] - x[..., :-1, :, :]) * time_weight
        parts.append(dt)
    return torch.stack(parts)


def grad_adjoint(g: torch.Tensor, time_weight: float = 0.0) -> torch.Tensor:
    """Exact adjoint of :func:`grad` (minus the divergence)."""

    def d_adj(d, dim):
        out = torch.zeros_like(d)
        n = d.shape[dim]
        first = d.narrow(dim, 0, n - 1)
        out.narrow(dim, 0, n - 1).sub_(first)
        out.narrow(dim, 1, n - 1).add_(first)
        return out  # (Dᵀd)_j = d_{j-1} - d_j, with d_{-1} = d_{n-1} = 0

    res = d_adj(g[0], -2) + d_adj(g[1], -1)
    if g.shape[0] == 3:
        res = res + d_adj(g[2], -3) * time_weight
    return res


def grad_norm_bound(time_weight: float = 0.0) -> float:
    """Upper bound of ‖grad‖²: 4 per differenced axis."""
    return 8.0 + 4.0 * time_weight**2
