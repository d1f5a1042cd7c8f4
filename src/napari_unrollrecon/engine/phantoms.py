"""Synthetic phantoms for sample data, demos and tests (honest phantoms, not patient data).

* :func:`mri_phantom` - a modified Shepp-Logan head with a smooth, low-order phase (complex), the
  way a single-coil MR image looks after coil combination without magnitude-only assumptions.
* :func:`cine_phantom` - a "beating heart" series: a bright ellipse (blood pool) inside a ring
  (myocardium) that contracts and relaxes over the frames, in a torso-like background.
* :func:`ct_phantom` - the modified Shepp-Logan phantom in [0, 1] (attenuation-like values).
"""

from __future__ import annotations

import numpy as np

# Modified Shepp-Logan (Toft 1996): intensity, semi-axes a, b, centre x0, y0, angle (degrees).
_SHEPP_LOGAN = (
    (1.0, 0.69, 0.92, 0.0, 0.0, 0),
    (-0.8, 0.6624, 0.8740, 0.0, -0.0184, 0),
    (-0.2, 0.1100, 0.3100, 0.22, 0.0, -18),
    (-0.2, 0.1600, 0.4100, -0.22, 0.0, 18),
    (0.1, 0.2100, 0.2500, 0.0, 0.35, 0),
    (0.1, 0.0460, 0.0460, 0.0, 0.1, 0),
    (0.1, 0.0460, 0.0460, 0.0, -0.1, 0),
    (0.1, 0.0460, 0.0230, -0.08, -0.605, 0),
    (0.1, 0.0230, 0.0230, 0.0, -0.606, 0),
    (0.1, 0.0230, 0.0460, 0.06, -0.605, 0),
)


def _grid(n: int):
    c = (np.arange(n) - (n - 1) / 2) / (n / 2)
    return np.meshgrid(c, -c, indexing="xy")  # x to the right, y up


def _ellipses(n: int, ellipses) -> np.ndarray:
    x, y = _grid(n)
    img = np.zeros((n, n), dtype=np.float64)
    for value, a, b, x0, y0, angle in ellipses:
        t = np.deg2rad(angle)
        xr = (x - x0) * np.cos(t) + (y - y0) * np.sin(t)
        yr = -(x - x0) * np.sin(t) + (y - y0) * np.cos(t)
        img[(xr / a) ** 2 + (yr / b) ** 2 <= 1] += value
    return img


def ct_phantom(n: int = 256) -> np.ndarray:
    """Modified Shepp-Logan phantom, float32 in [0, 1]."""
    return np.clip(_ellipses(n, _SHEPP_LOGAN), 0, None).astype(np.float32)


def mri_phantom(n: int = 256, phase: bool = True) -> np.ndarray:
    """Complex64 head phantom: Shepp-Logan magnitude (max 1) times a smooth linear+quadratic phase."""
    mag = ct_phantom(n).astype(np.float64)
    mag /= mag.max()
    if not phase:
        return mag.astype(np.complex64)
    x, y = _grid(n)
    ph = 0.6 * x + 0.3 * y + 0.4 * (x**2 - y**2)
    return (mag * np.exp(1j * ph)).astype(np.complex64)


def cine_phantom(frames: int = 16, n: int = 128) -> np.ndarray:
    """Float32 (frames, n, n) cardiac-cycle phantom in [0, 1]; one full contraction over the frames."""
    out = np.empty((frames, n, n), dtype=np.float32)
    for t in range(frames):
        s = 1.0 - 0.25 * (1 - np.cos(2 * np.pi * t / frames)) / 2  # 1 -> 0.75 -> 1
        ellipses = (
            (0.35, 0.85, 0.65, 0.0, 0.0, 0),  # torso
            (0.25, 0.30 * s + 0.08, 0.26 * s + 0.08, -0.15, 0.05, 20),  # myocardium ring
            (0.40, 0.30 * s, 0.26 * s, -0.15, 0.05, 20),  # blood pool (adds to ring)
            (-0.25, 0.08, 0.08, 0.45, 0.1, 0),  # lung-like dark region
            (0.2, 0.07, 0.12, 0.0, -0.5, 0),  # spine-like blob (static)
        )
        out[t] = np.clip(_ellipses(n, ellipses), 0, None)
    return out / out.max()
