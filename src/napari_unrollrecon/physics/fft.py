"""The package's single FFT convention and exact converters to the published ones.

Convention (same as fastMRI): images and k-space are both *centred* - the image's field of view
is centred in the array and the k-space DC sample sits at index (H//2, W//2) - and the 2D DFT is
*orthonormal* (``norm="ortho"``), so ``ifft2c(fft2c(x)) == x`` and ``||fft2c(x)|| == ||x||``::

    fft2c(x)  = fftshift(fft2(ifftshift(x), norm="ortho"))
    ifft2c(k) = fftshift(ifft2(ifftshift(k), norm="ortho"))

Masks are stored centred as well (DC at the centre).  The published methods use other
conventions (see docs/conventions.md and ../shared/docs/methods.md):

====================  ==========================  ======================
method                FFT                         mask on disk
====================  ==========================  ======================
CGPD-CSNet, ISTA-Net  fft2 unnormalised, no shift  uncentred (DC at [0,0])
GDUNet                fft2 / 256 (ortho at 256²)  centred
HGGDP                 fft2 unnormalised, no shift  centred
DD-UGM                centred k-space             centred, one per frame
====================  ==========================  ======================

``kspace_from_convention`` / ``kspace_to_convention`` and ``mask_to_centred`` /
``mask_to_uncentred`` convert exactly between ours and theirs.
"""

from __future__ import annotations

import math

import numpy as np
import torch

_DIMS = (-2, -1)

#: FFT scalings of the published code, as the factor applied by their forward transform
#: relative to the unnormalised DFT.
CONVENTIONS = {
    "ortho-centred": ("ortho", True),  # ours
    "unnormalised-uncentred": ("backward", False),  # CGPD-CSNet, ISTA-Net+, HGGDP
    "ortho-uncentred": ("ortho", False),  # GDUNet (fft2/256 at 256x256)
}


def _shift(x, inverse: bool):
    if isinstance(x, torch.Tensor):
        return torch.fft.ifftshift(x, dim=_DIMS) if inverse else torch.fft.fftshift(x, dim=_DIMS)
    return np.fft.ifftshift(x, axes=_DIMS) if inverse else np.fft.fftshift(x, axes=_DIMS)


def fft2c(x: torch.Tensor) -> torch.Tensor:
    """Centred orthonormal 2D DFT over the last two dimensions."""
    return torch.fft.fftshift(
        torch.fft.fft2(torch.fft.ifftshift(x, dim=_DIMS), norm="ortho"), dim=_DIMS
    )


def ifft2c(k: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`fft2c`."""
    return torch.fft.fftshift(
        torch.fft.ifft2(torch.fft.ifftshift(k, dim=_DIMS), norm="ortho"), dim=_DIMS
    )


def mask_to_centred(mask):
    """Move a mask stored with DC at [0, 0] (uncentred) to our centred layout."""
    return _shift(mask, inverse=False)


def mask_to_uncentred(mask):
    """Move a centred mask to the DC-at-[0, 0] layout used by CGPD-CSNet / ISTA-Net code."""
    return _shift(mask, inverse=True)


def _as_tensor(k):
    return k if isinstance(k, torch.Tensor) else torch.as_tensor(np.asarray(k))


def kspace_from_convention(k, convention: str) -> torch.Tensor:
    """Convert k-space measured in a published ``convention`` to ours (exact, any size).

    We pass through the image domain, which makes the conversion exact for odd and even sizes
    alike: the published transform is inverted with its own scaling, then ours is applied.
    """
    norm, centred = _convention(convention)
    k = _as_tensor(k).to(torch.complex64) if not torch.is_complex(_as_tensor(k)) else _as_tensor(k)
    if centred:
        k = torch.fft.ifftshift(k, dim=_DIMS)
        return fft2c(torch.fft.fftshift(torch.fft.ifft2(k, norm=norm), dim=_DIMS))
    return fft2c(torch.fft.ifft2(k, norm=norm))


def kspace_to_convention(k, convention: str) -> torch.Tensor:
    """Convert our k-space to a published ``convention`` (inverse of ``kspace_from_convention``)."""
    norm, centred = _convention(convention)
    x = ifft2c(_as_tensor(k))
    if centred:
        return torch.fft.fftshift(torch.fft.fft2(torch.fft.ifftshift(x, dim=_DIMS), norm=norm), dim=_DIMS)
    return torch.fft.fft2(x, norm=norm)


def _convention(name: str):
    try:
        return CONVENTIONS[name]
    except KeyError:
        raise ValueError(
            f"unknown FFT convention {name!r}; choose one of {sorted(CONVENTIONS)}"
        ) from None
