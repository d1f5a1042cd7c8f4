"""The proximal operator of (spatio-temporal) total variation, a classical prior step for the
samplers: prox_λTV(z) = argmin_x ½‖x − z‖² + λ·TV(x), isotropic over space (and the frames,
scaled by ``time_weight``), complex x with real and imaginary parts in one gradient norm.

Solved by Chambolle-Pock primal-dual iterations (Chambolle & Pock 2011) with the dual variable
kept between calls (``state``), so a sampler that calls it once per iteration on a slowly moving
iterate converges it over the run instead of paying many inner iterations each time.
"""

from __future__ import annotations

import torch

from napari_unrollrecon.physics.differences import grad, grad_adjoint, grad_norm_bound


def tv_prox(z: torch.Tensor, lam: float, iterations: int = 20, time_weight: float = 1.0,
            state: dict | None = None) -> torch.Tensor:
    """prox of λ·TV at ``z`` ((…, H, W) or (…, T, H, W) with ``time_weight`` > 0); λ ≤ 0 returns z."""
    if lam <= 0:
        return z
    tau = 0.25
    sigma = 0.99 / (tau * grad_norm_bound(time_weight))  # τσ‖∇‖² < 1
    parts = 3 if time_weight > 0 and z.ndim >= 3 else 2
    q = state.get("q") if state is not None else None
    if q is None or q.shape != (parts, *z.shape):
        q = z.new_zeros((parts, *z.shape))
    x = z - grad_adjoint(q, time_weight)  # the primal point of the kept dual (z itself from zero)
    xbar = x
    for _ in range(iterations):
        q = q + sigma * grad(xbar, time_weight)
        norm = torch.sqrt((q.abs() ** 2).sum(0, keepdim=True))
        q = q / torch.clamp(norm / lam, min=1.0)  # project onto the ball of radius λ per pixel
        x_new = (x - tau * grad_adjoint(q, time_weight) + tau * z) / (1 + tau)
        xbar, x = 2 * x_new - x, x_new
    if state is not None:
        state["q"] = q
    return x


def tv(x: torch.Tensor, time_weight: float = 1.0) -> float:
    """Isotropic TV of ``x`` (the sum of per-pixel gradient norms)."""
    return float(torch.sqrt((grad(x, time_weight).abs() ** 2).sum(0)).sum())
