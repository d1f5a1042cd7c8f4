"""The operator protocol every forward model implements (MRI 2D and 2D+t, parallel-beam CT).

Methods talk to the physics only through this: they never branch on a modality string or reach
into an operator's mask or geometry.

==================================  =====================================================
``A(x)``, ``AH(y)``                 forward model and its adjoint (any leading batch dims)
``norm()``                          ‖A‖₂ (1 for masked unitary Fourier sampling)
``to(device)``                      the same operator on another device
``initial_estimate(y)``             a cheap image on the data scale (Aᴴy; FBP for CT)
``data_consistency(x, y, weight)``  hard (``weight=None``): the nearest x' with A x' = y;
                                    weighted: argmin ‖A x' − y‖² + w‖x' − x‖²
``likelihood_grad(x, y)``           Aᴴ(y − A x), the gradient of −½‖A x − y‖²
==================================  =====================================================

The base class solves both consistency problems by conjugate gradients on the normal equations
(good enough for CT, where no closed form exists); MRI overrides them with the exact k-space
formulas.
"""

from __future__ import annotations

import torch


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Real inner product per leading-batch element, summed over everything."""
    return (a.conj() * b).real.sum() if torch.is_complex(a) else (a * b).sum()


def conjugate_gradient(apply, rhs: torch.Tensor, x0: torch.Tensor, iterations: int = 20, tol: float = 1e-6):
    """Solve apply(x) = rhs for a symmetric positive (semi-)definite ``apply``."""
    x = x0.clone()
    r = rhs - apply(x)
    p = r.clone()
    rr = _dot(r, r)
    stop = tol**2 * _dot(rhs, rhs).clamp_min(1e-30)
    for _ in range(iterations):
        if rr <= stop:
            break
        Ap = apply(p)
        alpha = rr / _dot(p, Ap).clamp_min(1e-30)
        x = x + alpha * p
        r = r - alpha * Ap
        rr_new = _dot(r, r)
        p = r + (rr_new / rr) * p
        rr = rr_new
    return x


class LinearOperator:
    """Base of the forward models; subclasses define ``A``, ``AH``, ``norm``, ``to``."""

    modality = ""
    #: images are real (and non-negative where a method asks for it) for this measurement, e.g. CT
    real_valued = False
    cg_iterations = 20

    def A(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def AH(self, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def AHA(self, x: torch.Tensor) -> torch.Tensor:
        return self.AH(self.A(x))

    def norm(self) -> float:
        raise NotImplementedError

    def to(self, device) -> "LinearOperator":
        raise NotImplementedError

    def initial_estimate(self, y: torch.Tensor) -> torch.Tensor:
        return self.AH(y)

    def key(self) -> tuple:
        """A small hashable summary of the measurement geometry (cache keys, fingerprints)."""
        return (type(self).__name__,)

    def likelihood_grad(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.AH(y - self.A(x))

    def data_consistency(self, x: torch.Tensor, y: torch.Tensor, weight: float | None = None) -> torch.Tensor:
        if weight is None:  # x + Aᴴ(AAᴴ)⁻¹(y − Ax), via CG on AAᴴ
            u = conjugate_gradient(lambda v: self.A(self.AH(v)), y - self.A(x), torch.zeros_like(y),
                                   self.cg_iterations)
            return x + self.AH(u)
        w = float(weight)
        return conjugate_gradient(lambda v: self.AHA(v) + w * v, self.AH(y) + w * x, x, self.cg_iterations)
