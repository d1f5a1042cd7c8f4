"""Region-of-interest metrics and line profiles (Qt-free; the dock's ROI tab uses them).

Coordinates are (row, column) in pixels of a 2-D image, pixel centres at integers, as napari
and skimage use them. A ROI is a boolean mask (:func:`shape_mask` turns a rectangle, polygon or
ellipse's vertices into one). :func:`roi_metrics` scores the pixels inside it:

* ``mean`` and ``std`` (population std) of the image inside the ROI, always;
* with a reference, ``psnr`` = 10 log10(R² / MSE inside the ROI) with R = max − min of the
  *whole* reference (the same data range as the full-image PSNR of :mod:`.metrics`, so the
  two are comparable), and ``ssim`` = the mean of skimage's 7×7 SSIM map over the ROI's
  pixels (computed on the ROI's bounding box grown by the window's half width).

:func:`line_profile` samples an image along a segment with bilinear interpolation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

SSIM_WIN = 7  # skimage's default window (the dock's full-image SSIM uses the same)
AREA_TYPES = ("rectangle", "polygon", "ellipse")
LINE_TYPES = ("line",)


def _real(a) -> np.ndarray:
    a = np.asarray(a)
    return (np.abs(a) if np.iscomplexobj(a) else a).astype(np.float64)


def shape_mask(shape_type: str, vertices, hw: tuple[int, int]) -> np.ndarray:
    """Boolean (H, W) mask of a napari shape given by its (row, col) vertices: a rectangle or
    polygon covers the pixels whose centres lie inside it; an ellipse is given by the four
    corners of its bounding box, as napari stores it."""
    from skimage.draw import ellipse, polygon2mask

    v = np.asarray(vertices, float)[:, -2:]
    hw = (int(hw[0]), int(hw[1]))
    if shape_type == "ellipse":
        (r0, c0), (r1, c1) = v.min(0), v.max(0)
        mask = np.zeros(hw, bool)
        rr, cc = ellipse((r0 + r1) / 2, (c0 + c1) / 2, (r1 - r0) / 2, (c1 - c0) / 2, shape=hw)
        mask[rr, cc] = True
        return mask
    if shape_type not in AREA_TYPES:
        raise ValueError(f"a {shape_type} has no area; draw a rectangle, polygon or ellipse")
    return polygon2mask(hw, v)


def roi_metrics(image, reference=None, mask=None, data_range: float | None = None) -> dict[str, float]:
    """mean / std inside ``mask`` (all pixels if None) and, with a reference, PSNR and SSIM
    there (see the module doc for the conventions). An empty ROI gives NaNs."""
    x = _real(image)
    mask = np.ones(x.shape, bool) if mask is None else np.asarray(mask, bool)
    if mask.shape != x.shape:
        raise ValueError(f"ROI mask shape {mask.shape} does not match image shape {x.shape}")
    inside = x[mask]
    out = {"pixels": float(inside.size),
           "mean": float(inside.mean()) if inside.size else math.nan,
           "std": float(inside.std()) if inside.size else math.nan}
    if reference is None:
        return out
    ref = _real(reference)
    if ref.shape != x.shape:
        raise ValueError(f"reference shape {ref.shape} does not match image shape {x.shape}")
    rng = float(ref.max() - ref.min()) if data_range is None else float(data_range)
    rng = rng if rng > 0 else 1.0
    out["psnr"] = _psnr(x[mask] - ref[mask], rng)
    out["ssim"] = _roi_ssim(x, ref, mask, rng)
    return out


def _psnr(diff: np.ndarray, rng: float) -> float:
    if diff.size == 0:
        return math.nan
    mse = float(np.mean(diff**2))
    return math.inf if mse == 0 else 10 * math.log10(rng**2 / mse)


def _roi_ssim(x: np.ndarray, ref: np.ndarray, mask: np.ndarray, rng: float) -> float:
    """Mean of the SSIM map over the ROI, computed on its bounding box plus the window's half."""
    from skimage.metrics import structural_similarity

    rows, cols = np.nonzero(mask)
    if rows.size == 0:
        return math.nan
    half = SSIM_WIN // 2
    box = tuple(slice(max(int(lo) - half, 0), min(int(hi) + half + 1, n))
                for lo, hi, n in ((rows.min(), rows.max(), x.shape[0]), (cols.min(), cols.max(), x.shape[1])))
    if min(s.stop - s.start for s in box) < SSIM_WIN:
        return math.nan  # the image is smaller than one SSIM window
    _, smap = structural_similarity(x[box], ref[box], data_range=rng, full=True)
    return float(smap[mask[box]].mean())


def line_profile(image, p0, p1, n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Values of ``image`` at ``n`` evenly spaced points from ``p0`` to ``p1`` (both included),
    bilinearly interpolated between pixel centres; NaN outside the image. ``n`` defaults to one
    sample per pixel of length. Returns (distance from p0 in pixels, values)."""
    x = _real(image)
    p0, p1 = np.asarray(p0, float)[-2:], np.asarray(p1, float)[-2:]
    length = float(np.hypot(*(p1 - p0)))
    n = profile_samples(length) if n is None else max(int(n), 2)
    t = np.linspace(0.0, 1.0, n)
    r, c = p0[0] + t * (p1[0] - p0[0]), p0[1] + t * (p1[1] - p0[1])
    return t * length, bilinear(x, r, c)


def profile_samples(length: float, most: int = 2048) -> int:
    """One sample per pixel of length (at least 2, at most ``most``)."""
    return int(min(max(math.ceil(length) + 1, 2), most))


def bilinear(x: np.ndarray, r: np.ndarray, c: np.ndarray) -> np.ndarray:
    """``x`` at fractional (row, col) positions; NaN outside [0, H−1] × [0, W−1]."""
    h, w = x.shape
    out = np.full(r.shape, np.nan)
    ok = (r >= 0) & (r <= h - 1) & (c >= 0) & (c <= w - 1)
    r, c = r[ok], c[ok]
    r0 = np.minimum(np.floor(r).astype(int), max(h - 2, 0))
    c0 = np.minimum(np.floor(c).astype(int), max(w - 2, 0))
    r1, c1 = np.minimum(r0 + 1, h - 1), np.minimum(c0 + 1, w - 1)
    fr, fc = r - r0, c - c0
    top = x[r0, c0] * (1 - fc) + x[r0, c1] * fc
    bottom = x[r1, c0] * (1 - fc) + x[r1, c1] * fc
    out[ok] = top * (1 - fr) + bottom * fr
    return out


def plane(data, current_step) -> np.ndarray:
    """The 2-D image a viewer shows of ``data`` (its last two axes) at the viewer's
    ``current_step`` (one index per viewer axis; layers are right-aligned to the viewer's axes,
    leading indices clipped to the data's extent)."""
    lead = data.ndim - 2
    step = tuple(current_step)[-data.ndim:] if data.ndim <= len(current_step) else (0,) * data.ndim
    index = tuple(int(min(max(step[i], 0), data.shape[i] - 1)) for i in range(lead))
    return np.asarray(data[index])


def panel_origin(point, origins, hw) -> tuple[float, float]:
    """The (row, col) origin of the panel that contains ``point`` (world coordinates), among the
    panels' ``origins``, each ``hw`` large; (0, 0) when none does (a single view)."""
    y, x = (float(v) for v in np.asarray(point, float)[-2:])
    for oy, ox in origins:
        if oy - 0.5 <= y <= oy + hw[0] - 0.5 and ox - 0.5 <= x <= ox + hw[1] - 0.5:
            return float(oy), float(ox)
    return 0.0, 0.0


# ---------------------------------------------------------------------- panels of a viewer
#: Panel kinds: a method's result (scored against the reference), the reference itself, an
#: |error| map, an extra map of a method (other units: no profile), a user's image.
SCORED, PROFILED = ("method",), ("method", "reference", "error", "image")


@dataclass
class Panel:
    """One image on the canvas: ``data`` (its last two axes are the image, leading axes follow
    the viewer's sliders), placed with its top-left pixel at ``origin`` (row, col)."""

    name: str
    kind: str
    data: object
    origin: tuple[float, float] = (0.0, 0.0)


@dataclass
class Shape:
    """A drawn shape in world coordinates: a napari shape type and its (row, col) vertices."""

    kind: str
    vertices: np.ndarray


def measure_panels(panels: list[Panel], reference, step, area: Shape | None = None,
                   line: Shape | None = None) -> tuple[list[dict], list[tuple]]:
    """ROI metrics of every panel (rows: name, kind, metrics) and the line profile of every
    panel but extra maps (curves: name, distance, values), at the viewer's ``step``.

    The shapes are drawn on one panel (the one containing the area's centroid, or the line's
    midpoint) and apply at the same place in every panel; a single view has its origin at 0."""
    origins = [p.origin for p in panels]
    rows, curves, masks = [], [], {}
    for p in panels:
        image = plane(p.data, step)
        hw = image.shape[-2:]
        ref = plane(reference, step) if reference is not None and p.kind in SCORED else None
        ref = ref if ref is not None and ref.shape == image.shape else None
        if area is not None:
            if hw not in masks:
                masks[hw] = _local_mask(area, origins, hw)
            rows.append({"name": p.name, "kind": p.kind, **roi_metrics(image, ref, masks[hw])})
        if line is not None and p.kind in PROFILED:
            o = panel_origin(line.vertices[:2].mean(0), origins, hw)
            p0, p1 = line.vertices[0, -2:] - o, line.vertices[1, -2:] - o
            curves.append((p.name, *line_profile(image, p0, p1)))
    return rows, curves


def _local_mask(area: Shape, origins, hw) -> np.ndarray:
    v = np.asarray(area.vertices, float)[:, -2:]
    return shape_mask(area.kind, v - panel_origin(v.mean(0), origins, hw), hw)
