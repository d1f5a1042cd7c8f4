"""Single-coil Cartesian MRI forward model, 2D and 2D+time.

``A x = M ⊙ F x`` with ``F`` the centred orthonormal DFT of :mod:`.fft` applied over the last two
dimensions and ``M`` a {0,1} (or weighted) sampling mask broadcast over leading dimensions. A
dynamic series ``(T, H, W)`` takes a mask ``(T, H, W)`` (a different pattern per frame) or one
``(H, W)`` pattern for all frames. Because ``F`` is unitary and ``M`` binary, ``||A|| = 1``.
"""

from __future__ import annotations

import torch

from napari_unrollrecon.physics.fft import fft2c, ifft2c
from napari_unrollrecon.physics.operator import LinearOperator


class MRIOperator(LinearOperator):
    """Masked Fourier sampling ``y = M ⊙ F x`` on any leading batch/time dimensions."""

    modality = "mri"

    def __init__(self, mask, device=None):
        mask = torch.as_tensor(mask)
        if mask.ndim < 2:
            raise ValueError(f"an MRI mask needs at least 2 dimensions (H, W); got shape {tuple(mask.shape)}")
        mask = mask.to(device=device, dtype=torch.float32)
        if not bool(torch.isfinite(mask).all()) or float(mask.min()) < 0 or float(mask.max()) > 1:
            raise ValueError("an MRI mask must hold finite values in [0, 1] (0/1 samples, or weights); "
                             f"got values in [{float(mask.nan_to_num().min()):g}, {float(mask.nan_to_num().max()):g}]"
                             + ("" if bool(torch.isfinite(mask).all()) else " and NaN/Inf"))
        if not bool(mask.any()):
            raise ValueError("the MRI mask samples nothing (all zeros)")
        self.mask = mask
        self.device = self.mask.device

    @property
    def shape(self):
        """Image shape the mask was made for (its last two or three dimensions)."""
        return tuple(self.mask.shape)

    def check(self, x: torch.Tensor) -> None:
        if tuple(x.shape[-2:]) != tuple(self.mask.shape[-2:]):
            raise ValueError(
                f"mask shape {tuple(self.mask.shape[-2:])} does not match data shape "
                f"{tuple(x.shape[-2:])}; make a mask for this image size"
            )

    def A(self, x: torch.Tensor) -> torch.Tensor:
        self.check(x)
        return self.mask * fft2c(x.to(torch.complex64) if not torch.is_complex(x) else x)

    def AH(self, y: torch.Tensor) -> torch.Tensor:
        self.check(y)
        return ifft2c(self.mask * y)

    def AHA(self, x: torch.Tensor) -> torch.Tensor:
        return self.AH(self.A(x))

    def data_consistency(self, x: torch.Tensor, y: torch.Tensor, weight: float | None = None):
        """Replace (``weight=None``) or blend sampled k-space of ``x`` with ``y``.

        ``weight=None`` is hard consistency ``k = M y + (1-M) F x``; a float ``w`` gives the
        weighted solution ``k = (M y + w F x) / (M + w)``, argmin ‖A x' − y‖² + w‖x' − x‖².
        (For a weighted mask M ∈ (0, 1) the formulas use M as the weight of each sample.)
        """
        k = fft2c(x.to(torch.complex64) if not torch.is_complex(x) else x)
        if weight is None:
            k = self.mask * y + (1 - self.mask) * k
        else:
            k = (self.mask * y + weight * k) / (self.mask + weight)
        return ifft2c(k)

    def norm(self) -> float:
        return 1.0

    @property
    def sampling_ratio(self) -> float:
        """Fraction of k-space sampled (the mean of the mask, over frames and batch)."""
        return float(self.mask.mean())

    def key(self) -> tuple:
        return ("mri", tuple(self.mask.shape), float(self.mask.sum()))

    def to(self, device):
        return MRIOperator(self.mask, device=device)


def as_operator(mask_or_operator, device=None) -> LinearOperator:
    """An operator as it is, or the MRI operator of a mask (networks accept either)."""
    if isinstance(mask_or_operator, LinearOperator):
        return mask_or_operator
    return MRIOperator(mask_or_operator, device=device)
