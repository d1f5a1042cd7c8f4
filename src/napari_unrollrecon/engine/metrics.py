"""Image-quality metrics with explicit data-range conventions.

Our default (``convention="range"``): both images are magnitudes on the reference's intensity
scale and ``data_range = max(ref) - min(ref)``; nothing is clipped; a series (T, H, W) is scored
frame by frame (each frame's own range) and the frame values are averaged, so a cine PSNR is a
per-frame-mean PSNR as the dynamic-MRI papers report it. The published conventions are
reachable by name, so paper tables can be reproduced exactly (see ../shared/docs/methods.md):

* ``"cgpd"`` - CGPD-CSNet / ISTA-Net+: images on a 0-255 scale, output clipped to [0, 255],
  PSNR = 20 log10(255 / RMSE), SSIM with skimage defaults (7×7 uniform window), data_range 255.
* ``"gdunet"`` - images in [0, 1], PSNR and SSIM with data_range 1, no clipping.
* ``"gdunet-ct"`` - as ``gdunet`` but SSIM Gaussian-weighted (11×11, σ = 1.5).
* ``"hggdp"`` - PSNR of 255|x| vs 255|gt| with data_range 255, SSIM data_range 1.
* ``"ddugm"`` - per frame |x|/max|x| for both, PSNR on ×255 (data_range 255), SSIM data_range 1,
  averaged over frames.
"""

from __future__ import annotations

import numpy as np
from skimage.metrics import structural_similarity

CONVENTIONS = ("range", "cgpd", "gdunet", "gdunet-ct", "hggdp", "ddugm")


def _real(a) -> np.ndarray:
    """Complex images are compared by magnitude; real ones as they are (signs kept)."""
    a = np.asarray(a)
    return (np.abs(a) if np.iscomplexobj(a) else a).astype(np.float64)


def _pair(x, ref):
    x, ref = _real(x), _real(ref)
    if x.shape != ref.shape:
        raise ValueError(f"image shape {x.shape} does not match reference shape {ref.shape}")
    return x, ref


def _range(ref, data_range):
    if data_range is None:
        data_range = float(ref.max() - ref.min())
    return data_range if data_range > 0 else 1.0


def psnr(x, ref, data_range: float | None = None) -> float:
    """Peak signal-to-noise ratio in dB; ``data_range`` defaults to max(ref) - min(ref)."""
    x, ref = _pair(x, ref)
    mse = np.mean((x - ref) ** 2)
    if mse == 0:
        return float("inf")
    return float(10 * np.log10(_range(ref, data_range) ** 2 / mse))


def nmse(x, ref) -> float:
    """Normalised mean squared error ||x - ref||² / ||ref||²."""
    x, ref = _pair(x, ref)
    return float(np.sum((x - ref) ** 2) / max(np.sum(ref**2), 1e-30))


def ssim(x, ref, data_range: float | None = None, gaussian: bool = False) -> float:
    """Structural similarity of 2D images (a stack is averaged over its leading axis).

    ``gaussian=False`` is skimage's default 7×7 uniform window; ``True`` the 11×11, σ = 1.5
    Gaussian window of Wang et al.
    """
    x, ref = _pair(x, ref)
    if x.ndim > 2:
        return float(np.mean([ssim(a, b, data_range, gaussian) for a, b in zip(x.reshape(-1, *x.shape[-2:]), ref.reshape(-1, *ref.shape[-2:]))]))
    kw = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False) if gaussian else {}
    return float(structural_similarity(x, ref, data_range=_range(ref, data_range), **kw))


def log_kernel(size: int = 15, sigma: float = 1.5) -> np.ndarray:
    """Laplacian-of-Gaussian kernel as MATLAB's ``fspecial('log', size, sigma)`` defines it."""
    r = (size - 1) / 2
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    g = np.exp(-(xx**2 + yy**2) / (2 * sigma**2))
    g[g < np.finfo(float).eps * g.max()] = 0
    g /= g.sum()
    h = g * (xx**2 + yy**2 - 2 * sigma**2) / sigma**4
    return h - h.sum() / h.size


def hfen(x, ref, kernel: np.ndarray | None = None, normalised: bool = False) -> float:
    """High-frequency error norm: ||LoG * (x - ref)||_F (15×15, σ 1.5 LoG by default).

    HGGDP reports the un-normalised Frobenius norm; ``normalised=True`` divides by ||LoG * ref||.
    """
    from scipy.ndimage import correlate

    x, ref = _pair(x, ref)
    k = log_kernel() if kernel is None else np.asarray(kernel, dtype=np.float64)
    err = np.linalg.norm(correlate(x - ref, k, mode="nearest"))
    if normalised:
        err /= max(np.linalg.norm(correlate(ref, k, mode="nearest")), 1e-30)
    return float(err)


def evaluate(x, ref, convention: str = "range", with_ssim: bool = True) -> dict[str, float]:
    """PSNR, SSIM and NMSE of ``x`` against ``ref`` under a named convention."""
    x, ref = _pair(x, ref)
    if convention == "range" and ref.size and float(ref.max()) == float(ref.min()):
        raise ValueError(f"the reference is constant (every pixel {float(ref.max()):g}), so its range is 0 and "
                         "PSNR/SSIM are undefined; use a non-constant reference or a fixed-peak --metric-convention")
    if convention == "range" and x.ndim == 3:
        out = {"psnr": float(np.mean([psnr(a, b) for a, b in zip(x, ref)]))}
        if with_ssim:
            out["ssim"] = float(np.mean([ssim(a, b) for a, b in zip(x, ref)]))
    elif convention == "range":
        out = {"psnr": psnr(x, ref)}
        if with_ssim:
            out["ssim"] = ssim(x, ref)
    elif convention == "cgpd":
        xc = np.clip(x, 0, 255)
        out = {"psnr": psnr(xc, ref, 255.0)}
        if with_ssim:
            out["ssim"] = ssim(xc, ref, 255.0)
    elif convention in ("gdunet", "gdunet-ct"):
        out = {"psnr": psnr(x, ref, 1.0)}
        if with_ssim:
            out["ssim"] = ssim(x, ref, 1.0, gaussian=convention == "gdunet-ct")
    elif convention == "hggdp":
        out = {"psnr": psnr(255 * x, 255 * ref, 255.0)}
        if with_ssim:  # the full set the paper reports: SSIM and HFEN on [0, 1] magnitudes
            out["ssim"] = ssim(x, ref, 1.0)
            out["hfen"] = hfen(x, ref)
    elif convention == "ddugm":
        frames = [(a / max(a.max(), 1e-30), b / max(b.max(), 1e-30)) for a, b in zip(x.reshape(-1, *x.shape[-2:]), ref.reshape(-1, *ref.shape[-2:]))]
        out = {"psnr": float(np.mean([psnr(255 * a, 255 * b, 255.0) for a, b in frames]))}
        if with_ssim:
            out["ssim"] = float(np.mean([ssim(a, b, 1.0) for a, b in frames]))
    else:
        raise ValueError(f"unknown metric convention {convention!r}; choose one of {CONVENTIONS}")
    out["nmse"] = nmse(x, ref)
    return out
