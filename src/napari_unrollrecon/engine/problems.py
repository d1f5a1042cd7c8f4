"""Build :class:`Problem` s from what users have: images to simulate from, or measured data.

An *image* input is turned into simulated measurements (noise-free unless ``noise`` > 0, given
relative to the RMS of the clean measurements). *k-space* or *sinogram* input is used as measured.
"""

from __future__ import annotations

import numpy as np
import torch

from napari_unrollrecon.methods.base import Problem
from napari_unrollrecon.physics.mri import MRIOperator


#: Largest magnitude accepted: squares in norms and sums over a 4096² FFT must stay inside float32.
MAX_ABS = 1e15


def _check_image(x: np.ndarray, what: str = "image") -> np.ndarray:
    x = np.asarray(x)
    if x.ndim < 2:
        raise ValueError(f"{what} must be at least 2D (H, W); got shape {x.shape}")
    if x.size == 0:
        raise ValueError(f"{what} is empty")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{what} contains NaN or Inf values; clean the data first")
    if not np.any(x):
        raise ValueError(f"{what} is all zeros; nothing to reconstruct")
    peak = float(np.max(np.abs(x)))
    if peak > MAX_ABS:
        raise ValueError(f"{what} values reach {peak:.3g}; above {MAX_ABS:.0e} the float32 transforms and norms "
                         "overflow; divide the data by its maximum (results scale linearly)")
    return x


def _noise(y: torch.Tensor, mask: torch.Tensor, level: float, seed: int) -> torch.Tensor:
    level = float(level)
    if not np.isfinite(level) or level < 0:
        raise ValueError(f"noise must be a finite level ≥ 0 (relative to the RMS of the measurements), got {level}")
    if level == 0:
        return y
    g = torch.Generator(device="cpu").manual_seed(seed)
    rms = torch.sqrt(torch.mean(y.abs() ** 2 * (mask > 0))) if mask is not None else y.abs().pow(2).mean().sqrt()
    n = torch.randn(y.shape, generator=g, dtype=torch.float32)
    if torch.is_complex(y):
        n = torch.complex(n, torch.randn(y.shape, generator=g, dtype=torch.float32)) / np.sqrt(2)
    n = n.to(y.device) * float(rms) * level
    return y + (n * mask if mask is not None else n)


def mri_from_image(image, mask, device="cpu", noise: float = 0.0, seed: int = 0, meta=None) -> Problem:
    """Simulate single-coil k-space ``y = M F x`` from a (complex or magnitude) image.

    ``image`` is (H, W) or (T, H, W) (dynamic); ``mask`` is centred, (H, W) or (T, H, W).
    """
    image = _check_image(image)
    x = torch.as_tensor(image)
    x = x.to(torch.complex64) if not torch.is_complex(x) else x.to(torch.complex64)
    op = MRIOperator(mask, device=device)
    op.check(x)
    y = op.A(x.to(device))
    y = _noise(y, op.mask, noise, seed)
    return _mri_problem(op, y, image.shape, meta)


def mri_from_kspace(kspace, mask=None, device="cpu", meta=None) -> Problem:
    """Use measured centred k-space. Without a mask, the sampled points are where k-space != 0."""
    kspace = _check_image(kspace, "k-space")
    y = torch.as_tensor(kspace).to(torch.complex64)
    if mask is None:
        mask = (y.abs() > 0).to(torch.float32)
    op = MRIOperator(mask, device=device)
    op.check(y)
    y = op.mask * y.to(device)
    return _mri_problem(op, y, tuple(kspace.shape), meta)


def _mri_problem(op, y, shape, meta) -> Problem:
    x0 = op.AH(y)
    scale = float(x0.abs().max()) or 1.0
    modality = "dmri" if len(shape) == 3 else "mri"
    meta = dict(meta or {})
    meta.setdefault("ratio", float(op.mask.mean()))
    return Problem(modality=modality, operator=op, y=y, scale=scale, image_shape=tuple(shape), meta=meta)


def ct_from_image(image, n_views: int, device="cpu", noise: float = 0.0, seed: int = 0, meta=None, **geometry) -> Problem:
    """Simulate a parallel-beam sinogram ``(views, detectors)`` of a square 2D image.

    Views are evenly spread over 180° unless ``geometry`` says otherwise: it is passed to
    :class:`~napari_unrollrecon.physics.ct.RadonOperator` (``angles``, ``n_detectors``, ``arc``,
    ``full_views``). The default detector has ``ceil(√2·N)`` bins and covers the whole image.
    """
    from napari_unrollrecon.physics.ct import RadonOperator

    image = _check_image(np.real(image), "CT image")
    if image.ndim != 2 or image.shape[0] != image.shape[1]:
        raise ValueError(f"CT images must be square 2D arrays; got shape {image.shape}")
    op = RadonOperator(image.shape[-1], n_views=n_views, device=device, **geometry)
    x = torch.as_tensor(image, dtype=torch.float32, device=op.device)
    y = _noise(op.A(x), None, noise, seed)
    return _ct_problem(op, y, image.shape, meta)


def ct_from_sinogram(sinogram, image_size: int | None = None, device="cpu", meta=None, **geometry) -> Problem:
    """Use a measured sinogram of shape (views, detectors), views evenly spread over 180°.

    Without ``image_size`` the image is ``floor(detectors / √2)`` pixels wide, the largest square
    the detector covers at every angle (``RadonOperator.image_size_for``); for a detector that
    only spans the inscribed circle pass ``image_size = detectors``. ``geometry`` (``angles``,
    ``arc``, ``full_views``) is passed to the operator.
    """
    from napari_unrollrecon.physics.ct import RadonOperator

    sino = _check_image(np.real(sinogram), "sinogram")
    if sino.ndim != 2:
        raise ValueError(f"a sinogram must be 2D (views, detectors); got shape {sino.shape}")
    n_views, n_det = sino.shape
    if geometry.pop("n_detectors", n_det) != n_det:
        raise ValueError(f"n_detectors must match the sinogram's {n_det} detector columns")
    size = image_size or RadonOperator.image_size_for(n_det)
    op = RadonOperator(size, n_views=n_views, n_detectors=n_det, device=device, **geometry)
    y = torch.as_tensor(sino, dtype=torch.float32, device=op.device)
    return _ct_problem(op, y, (size, size), meta)


def _ct_problem(op, y, shape, meta) -> Problem:
    x0 = op.fbp(y)
    scale = float(x0.abs().max()) or 1.0
    meta = dict(meta or {})
    meta.setdefault("views", op.n_views)
    meta.setdefault("detectors", op.n_detectors)
    meta.setdefault("arc", op.arc)
    return Problem(modality="ct", operator=op, y=y, scale=scale, image_shape=tuple(shape), meta=meta)
