"""MRI k-space sampling masks: generate, load, save and preview them.

Layout
------
A mask is a float32 array of {0, 1} (1 = sampled), *centred* like our k-space (DC at
``(H//2, W//2)``, see :mod:`.fft`), shape ``(H, W)`` or ``(T, H, W)`` for dynamic (k-t) sampling,
where every frame gets a different pattern. 1D kinds sample whole *columns*
(``mask[:, j] = 1``): phase encoding runs along the width axis, as in fastMRI and the CGPD-CSNet
masks. The *ratio* is the fraction of sampled k-space points (``1/ratio`` is the acceleration).

Every kind reaches the requested ratio to within one percentage point, per frame: 1D kinds pick
``round(ratio * W)`` columns (or the nearest equispaced count), the 2D point kinds pick exactly
``round(ratio * H * W)`` points, radial picks the spoke count closest to the target.
``ratio = 1`` gives a fully sampled mask. All kinds are deterministic per ``seed``; frame ``t`` of a
k-t mask draws from ``(seed, t)`` and frame 0 equals the 2D mask of the same seed.

Centre region (``center_fraction``)
-----------------------------------
1D kinds fully sample the ``round(center_fraction * W)`` central columns (auto-calibration
signal, ACS); 2D kinds fully sample the points with normalised radius
``sqrt((ky/(H/2))^2 + (kx/(W/2))^2) <= center_fraction`` (a disc spanning that fraction of each
axis). ``None`` means ``DEFAULT_CENTER_FRACTION`` (0.08) but at most half the sampling budget; an
explicit value is capped at the whole budget. Radial adds a centre disc only when one is asked for
(its spokes already cover the centre).

Kinds
-----
``cartesian``
    1D variable-density random lines: the centre band plus columns drawn without replacement with
    probability ``(1 - |kx|)^2 + 0.05``, decaying away from the centre line (variable density after
    Lustig, Donoho & Pauly 2007; random lines with a fully sampled centre after fastMRI's
    ``RandomMaskFunc``).
``equispaced``
    1D lines every ``W/m`` columns (floor of a real step, random offset) plus the ACS band; ``m`` is
    searched so that the union hits the ratio (fastMRI's ``EquispacedMaskFunc`` idea of an
    acceleration adjusted for the ACS lines). k-t frames are sheared: the offset moves by one
    column per frame, as in the DD-UGM ``mask_R*`` masks.
``radial``
    Pseudo-radial: ``n`` evenly spaced lines through the DC point rasterised on the Cartesian grid
    (as in the ADMM-Net / CGPD-CSNet masks); ``n`` is the spoke count whose realised ratio is
    closest to the target. The seed draws the rotation; k-t frames rotate by the golden angle
    (180 deg / 1.618, Winkelmann et al. 2007).
``random``
    2D uniform random points plus the centre region.
``gaussian``
    2D variable density: the centre region plus points drawn without replacement with probability
    ``exp(-rho^2 / (2 * 0.35^2))`` (``rho`` the normalised radius).
``poisson``
    Variable-density Poisson-disc: no two points closer than ``r(rho) = s * (1 + rho)`` (the
    radius doubles from centre to edge), plus the centre region. Dart throwing on the grid in a
    random order (Bridson 2007 uses a background grid for the same test; here the grid *is* the
    k-space grid), the scale ``s`` tuned in a few passes from the packing density of random
    sequential adsorption; a few points are then dropped at random or added in the largest gaps
    so the count is exact. Above ~30% sampling the radius near DC drops below a pixel, so the
    middle fills in completely (a larger calibration disc).

Checking a user's mask
----------------------
Mask *files* are read by :func:`napari_unrollrecon.engine.io.read_mask` (any format the readers
take; 3D arrays whose last axis is the shortest are taken as frames-last, MATLAB ``H x W x T``,
and moved to ``(T, H, W)``); a file's or a layer's array then goes through :func:`centred_mask`
here. Values: integer and
boolean data (PNG 0/255, uint8 .mat) and float data with values above 1 are *binarised*
(``> 0``); float data already in ``[0, 1]`` with fractional values is kept as a *weighting*
(``info["weighted"]``), which :class:`~.mri.MRIOperator` accepts. Negative or non-finite values
are errors. The centring is detected with :func:`detect_centring` unless the caller says.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from napari_unrollrecon.physics.fft import mask_to_centred, mask_to_uncentred

MASK_KINDS = ("cartesian", "equispaced", "radial", "random", "gaussian", "poisson")
#: Kinds available for k-t shapes ``(T, H, W)``; each frame gets its own pattern.
KT_KINDS = ("cartesian", "equispaced", "radial", "random", "gaussian", "poisson")

DEFAULT_CENTER_FRACTION = 0.08
_VD_POWER, _VD_FLOOR = 2.0, 0.05  # cartesian line density (1 - |kx|)^2 + floor
_GAUSS_SIGMA = 0.35  # gaussian density width, in units of the half-width
_POISSON_VD = 1.0  # Poisson radius grows by this factor times rho
_RSA_DENSITY = 0.70  # points per r^2 of a jammed random-sequential-adsorption disc packing
_GOLDEN_ANGLE = math.pi * (math.sqrt(5) - 1) / 2  # 111.25 degrees
_CENTRING_MARGIN = 0.05  # density difference below which the centring is ambiguous
_MAT_KEY = "mask_matrix"


class MaskError(ValueError):
    """A mask request or file that cannot be honoured; the message says what to change."""


# --------------------------------------------------------------------------- validation
def _check_kind(kind) -> str:
    if kind not in MASK_KINDS:
        raise MaskError(f"unknown mask kind {kind!r}; choose one of {list(MASK_KINDS)}")
    return kind


def _check_ratio(ratio) -> float:
    try:
        value = float(ratio)
    except (TypeError, ValueError):
        value = float("nan")
    if not (math.isfinite(value) and 0 < value <= 1):
        raise MaskError(
            f"sampling ratio must be in (0, 1] (fraction of k-space sampled, e.g. 0.25 for 4x), "
            f"got {ratio!r}"
        )
    return value


def _check_shape(shape) -> tuple[int, ...]:
    ok = isinstance(shape, (tuple, list)) and len(shape) in (2, 3)
    ok = ok and all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s > 0 for s in shape)
    if not ok:
        raise MaskError(
            f"mask shape must be (H, W) or (T, H, W) of positive integers, got {shape!r}"
        )
    return tuple(int(s) for s in shape)


def _check_seed(seed) -> int:
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise MaskError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def _check_center_fraction(cf):
    if cf is None:
        return None
    try:
        value = float(cf)
    except (TypeError, ValueError):
        value = float("nan")
    if not (math.isfinite(value) and 0 <= value <= 1):
        raise MaskError(f"center_fraction must be in [0, 1] or None, got {cf!r}")
    return value


def _as_mask_array(mask) -> np.ndarray:
    """Validate an in-memory mask: numeric, finite, 2D or 3D; returned as float32."""
    m = np.asarray(mask)
    if m.dtype.kind not in "biuf":
        raise MaskError(f"a mask must hold real numbers, got dtype {m.dtype}")
    if m.ndim not in (2, 3):
        raise MaskError(
            f"a mask must be 2D (H, W) or 3D (T, H, W), got shape {m.shape}"
        )
    m = m.astype(np.float32, copy=False)
    if not np.all(np.isfinite(m)):
        raise MaskError("mask contains NaN or infinite values; a mask holds 0/1 (or weights in [0, 1])")
    return m


# --------------------------------------------------------------------------- public helpers
def realised_ratio(mask) -> float:
    """Fraction of k-space points with a non-zero mask value (over all frames for k-t)."""
    m = _as_mask_array(mask)
    return float(np.count_nonzero(m) / m.size)


def is_line_mask(mask) -> bool:
    """Whether every frame samples whole lines (Cartesian: constant along one axis, the same
    axis for all frames) - radial, random and Poisson-disc masks are not."""
    m = _as_mask_array(mask) != 0
    m = m.reshape(-1, *m.shape[-2:])
    return bool(np.all(m == m[:, :1, :]) or np.all(m == m[:, :, :1]))


#: Mask families (the CGPD-CSNet paper's three tables): which family each generated kind belongs to.
FAMILY_OF_KIND = {"cartesian": "cartesian", "equispaced": "cartesian", "radial": "radial",
                  "random": "random2d", "gaussian": "random2d", "poisson": "random2d"}
_RAY_MARGIN = 0.2  # radial: a sampled point's outward neighbour is sampled this much more often than its tangential one


def mask_family(mask) -> str:
    """``cartesian`` (whole lines), ``radial`` (spokes through the centre) or ``random2d`` (points),
    from the pattern alone, so a mask file of unknown origin picks the right model.

    Along a spoke, the next point outward is sampled almost surely while the next point across
    (tangential) is sampled at about the local density; a 2D random pattern treats both alike.
    Measured on the outer ring (radius 60-100 % of the half-width) of the first frame, where even
    50 % radial spokes leave gaps between them (paper mask: 0.72 outward vs 0.16 tangential;
    2D random 40 %: 0.35 vs 0.35)."""
    if is_line_mask(mask):
        return "cartesian"
    m = (_as_mask_array(mask) != 0).reshape(-1, *np.shape(mask)[-2:])[0]
    h, w = m.shape
    ky, kx = np.nonzero(m)
    dy, dx = ky - h // 2, kx - w // 2
    r = np.hypot(dy, dx)
    ring = (r > 0.6 * min(h, w) / 2) & (r < min(h, w) / 2)
    if ring.sum() < 8:
        return "random2d"
    uy, ux = dy[ring] / r[ring], dx[ring] / r[ring]

    def sampled(oy, ox):
        yy = np.clip(np.rint(ky[ring] + oy).astype(int), 0, h - 1)
        xx = np.clip(np.rint(kx[ring] + ox).astype(int), 0, w - 1)
        return float(m[yy, xx].mean())

    outward = sampled(1.5 * uy, 1.5 * ux)
    tangential = 0.5 * (sampled(-1.5 * ux, 1.5 * uy) + sampled(1.5 * ux, -1.5 * uy))
    return "radial" if outward - tangential > _RAY_MARGIN else "random2d"


def check_mask_shape(mask, image_shape) -> None:
    """Raise :class:`MaskError` unless ``mask`` fits images of ``image_shape`` (..., H, W)."""
    ms, ims = tuple(np.shape(mask)), tuple(image_shape)
    frames_ok = len(ms) == 2 or (len(ims) >= 3 and ims[-3] == ms[0])
    if ms[-2:] != ims[-2:] or not frames_ok:
        raise MaskError(
            f"mask shape {ms} does not match image shape {ims}; make or load a mask of the "
            f"image's size (H, W), or (T, H, W) with one frame per time point"
        )


def _centring_scores(mask) -> tuple[float, float]:
    """Gaussian-weighted sampling density around the array centre and around the corners."""
    m = _as_mask_array(mask)
    m2 = m.reshape(-1, *m.shape[-2:]).mean(axis=0)
    h, w = m2.shape
    sy, sx = max(0.04 * h, 1.5), max(0.04 * w, 1.5)
    y = (np.arange(h) - h // 2)[:, None] / sy
    x = (np.arange(w) - w // 2)[None, :] / sx
    weight = np.exp(-0.5 * (y**2 + x**2))
    weight /= weight.sum()
    centre = float(np.sum(weight * m2))
    corner = float(np.sum(np.fft.ifftshift(weight) * m2))  # same kernel around DC at [0, 0]
    return centre, corner


def detect_centring(mask) -> str:
    """``"centred"`` (DC at the middle) or ``"uncentred"`` (DC at [0, 0], corners after wrap).

    Compares the sampling density near the centre with that near the corners. Undersampling
    always keeps the low frequencies, so they mark where DC is. A mask with no denser region
    (e.g. equispaced lines without ACS) is ambiguous and reported as ``"centred"``.
    """
    centre, corner = _centring_scores(mask)
    return "uncentred" if corner > centre + _CENTRING_MARGIN else "centred"


# --------------------------------------------------------------------------- generation
def make_mask(
    kind: str,
    shape: tuple[int, int] | tuple[int, int, int],
    ratio: float,
    seed: int = 0,
    center_fraction: float | None = None,
) -> np.ndarray:
    """Centred float32 {0,1} sampling mask of ``kind`` (see the module docstring).

    ``shape`` ``(H, W)`` gives one pattern; ``(T, H, W)`` a k-t mask with a different pattern per
    frame, each frame reaching ``ratio``.
    """
    kind = _check_kind(kind)
    shape = _check_shape(shape)
    ratio = _check_ratio(ratio)
    seed = _check_seed(seed)
    cf = _check_center_fraction(center_fraction)
    if len(shape) == 2:
        return _frame(kind, shape, ratio, seed, cf, 0)
    return np.stack([_frame(kind, shape[1:], ratio, seed, cf, t) for t in range(shape[0])])


def _frame(kind, hw, ratio, seed, cf, t) -> np.ndarray:
    if ratio >= 1:
        return np.ones(hw, np.float32)
    rng = np.random.default_rng(seed if t == 0 else [seed, t])
    return _MAKERS[kind](hw, ratio, rng, cf, t).astype(np.float32)


def _count(ratio: float, n: int) -> int:
    """Number of samples for ``ratio`` of ``n`` points: rounded, at least one."""
    return min(n, max(1, int(math.floor(ratio * n + 0.5))))


def _centre_size(available: int, budget: int, cf) -> int:
    """Size of the fully sampled centre: ``available`` points fit ``cf``; capped by the budget."""
    cap = budget // 2 if cf is None else budget
    n = min(available, cap)
    return max(n, 1) if (cf is None or cf > 0) else n


def _centre_lines(w: int, budget: int, cf) -> np.ndarray:
    frac = DEFAULT_CENTER_FRACTION if cf is None else cf
    return _centre_lines_n(w, _centre_size(int(round(frac * w)), budget, cf))


def _rho(hw) -> np.ndarray:
    """Normalised k-space radius: 0 at DC, 1 at the middle of each edge."""
    h, w = hw
    y = (np.arange(h) - h // 2)[:, None] / (h / 2)
    x = (np.arange(w) - w // 2)[None, :] / (w / 2)
    return np.sqrt(y**2 + x**2)


def _centre_points(hw, budget: int, cf) -> np.ndarray:
    """Flat indices of the fully sampled centre disc (the points nearest DC)."""
    rho = _rho(hw).ravel()
    frac = DEFAULT_CENTER_FRACTION if cf is None else cf
    n = _centre_size(int(np.count_nonzero(rho <= frac)), budget, cf)
    return np.argsort(rho, kind="stable")[:n]


def _weighted_choice(rng, items: np.ndarray, weight: np.ndarray, k: int) -> np.ndarray:
    """``k`` distinct items drawn successively with probability proportional to ``weight``.

    Efraimidis-Spirakis keys ``log(u) / w``: the ``k`` largest keys are such a draw.
    """
    if k <= 0:
        return items[:0]
    with np.errstate(divide="ignore"):
        keys = np.log(rng.random(items.size)) / weight
    return items[np.argpartition(-keys, k - 1)[:k]]


def _from_flat(hw, flat) -> np.ndarray:
    m = np.zeros(hw[0] * hw[1], bool)
    m[flat] = True
    return m.reshape(hw)


def _from_columns(hw, cols) -> np.ndarray:
    m = np.zeros(hw, bool)
    m[:, cols] = True
    return m


def _cartesian(hw, ratio, rng, cf, t):
    w = hw[1]
    n = _count(ratio, w)
    centre = _centre_lines(w, n, cf)
    others = np.setdiff1d(np.arange(w), centre)
    kx = np.minimum(np.abs(others - w // 2) / (w / 2), 1.0)
    weight = (1 - kx) ** _VD_POWER + _VD_FLOOR
    chosen = _weighted_choice(rng, others, weight, n - centre.size)
    return _from_columns(hw, np.concatenate([centre, chosen]))


def _equispaced(hw, ratio, rng, cf, t):
    w = hw[1]
    n = _count(ratio, w)
    acs = _centre_lines(w, n, cf)
    phase = rng.random()  # offset as a fraction of the step
    best = (w + 1, acs)
    # ACS lines may land on the equispaced grid; widening the ACS band by a line or two
    # absorbs that, so the count can be met exactly.
    sizes = [acs.size + e for e in (0, 1, -1, 2, -2, 3, -3)] if acs.size else [0]
    for size in sizes:
        if best[0] == 0 or not min(acs.size, 1) <= size <= n:
            continue
        trial = _equispaced_lines(w, n, _centre_lines_n(w, size), phase, t)
        best = trial if trial[0] < best[0] else best
    row = _from_columns((1, w), best[1])
    if best[0]:  # rare (tiny widths): widen the ACS band or drop the outermost line
        row = _fix_count_by_radius(row, n)
    return np.broadcast_to(row, hw)


def _centre_lines_n(w: int, n: int) -> np.ndarray:
    start = w // 2 - n // 2
    return np.arange(start, start + n)


def _equispaced_lines(w, n, acs, phase, t):
    """Closest (error, columns) over line counts ``m``: lines every ``w/m`` plus ``acs``."""
    best = (abs(acs.size - n), acs)  # m = 0: the ACS band alone
    for m in range(1, w + 1):
        if m > n + best[0]:  # the union has >= m lines: no larger m can get closer
            break
        step = w / m
        offset = (phase * step + t) % step  # shear: one column per frame
        cols = np.floor(offset + step * np.arange(m)).astype(int) % w
        chosen = np.union1d(acs, cols)
        err = abs(chosen.size - n)
        if err < best[0]:
            best = (err, chosen)
    return best


def _spokes(hw, n: int, rotation: float) -> np.ndarray:
    """``n`` evenly spaced lines through DC, rasterised with half-pixel steps (8-connected)."""
    h, w = hw
    steps = int(math.ceil(math.hypot(h, w))) + 2
    s = 0.5 * np.arange(-steps, steps + 1)  # symmetric about DC, so the mask is point-symmetric
    angles = rotation + math.pi * np.arange(n) / n
    y = np.rint(h // 2 + np.outer(np.sin(angles), s)).astype(np.intp)
    x = np.rint(w // 2 + np.outer(np.cos(angles), s)).astype(np.intp)
    inside = (y >= 0) & (y < h) & (x >= 0) & (x < w)
    m = np.zeros(hw, bool)
    m[y[inside], x[inside]] = True
    return m


def _radial(hw, ratio, rng, cf, t):
    h, w = hw
    target = _count(ratio, h * w)
    base = np.zeros(hw, bool) if cf is None else _from_flat(hw, _centre_points(hw, target, cf))
    rotation = rng.random() * math.pi + t * _GOLDEN_ANGLE

    def build(n):
        return _spokes(hw, n, rotation) | base

    lo, hi = 1, 1
    while np.count_nonzero(build(hi)) < target and hi < 4 * (h + w):
        lo, hi = hi, hi * 2
    while hi - lo > 1:  # smallest n reaching the target (the count grows with n, nearly monotone)
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if np.count_nonzero(build(mid)) < target else (lo, mid)
    candidates = [build(n) for n in {max(lo, 1), hi}]
    mask = min(candidates, key=lambda m: abs(np.count_nonzero(m) - target))
    if abs(np.count_nonzero(mask) - target) > 0.005 * h * w:  # coarse grids / ratios near 1
        mask = _fix_count_by_radius(mask, target)
    return mask


def _fix_count_by_radius(mask: np.ndarray, target: int) -> np.ndarray:
    """Add the unsampled points nearest DC, or drop the sampled ones farthest, to hit ``target``."""
    flat = mask.ravel().copy()
    order = np.argsort(_rho(mask.shape).ravel(), kind="stable")
    diff = target - int(flat.sum())
    if diff > 0:
        flat[order[~flat[order]][:diff]] = True
    elif diff < 0:
        flat[order[flat[order]][diff:]] = False
    return flat.reshape(mask.shape)


def _random(hw, ratio, rng, cf, t):
    n = _count(ratio, hw[0] * hw[1])
    centre = _centre_points(hw, n, cf)
    others = np.setdiff1d(np.arange(hw[0] * hw[1]), centre)
    chosen = rng.choice(others, n - centre.size, replace=False)
    return _from_flat(hw, np.concatenate([centre, chosen]))


def _gaussian(hw, ratio, rng, cf, t):
    n = _count(ratio, hw[0] * hw[1])
    centre = _centre_points(hw, n, cf)
    others = np.setdiff1d(np.arange(hw[0] * hw[1]), centre)
    weight = np.exp(-0.5 * (_rho(hw).ravel()[others] / _GAUSS_SIGMA) ** 2)
    chosen = _weighted_choice(rng, others, weight, n - centre.size)
    return _from_flat(hw, np.concatenate([centre, chosen]))


def _poisson(hw, ratio, rng, cf, t):
    h, w = hw
    n = _count(ratio, h * w)
    centre = _centre_points(hw, n, cf)
    need = n - centre.size
    if need <= 0:
        return _from_flat(hw, centre)
    taken = _from_flat(hw, centre).ravel()
    order = rng.permutation(np.flatnonzero(~taken))  # random priority of the free points
    shape_r = 1 + _POISSON_VD * _rho(hw).ravel()
    scale = math.sqrt(_RSA_DENSITY * np.sum(shape_r[order] ** -2.0) / need)
    best = None
    for _ in range(6):  # points ~ 1/scale^2: a few multiplicative corrections converge
        pts = _dart_throw(hw, order, scale * shape_r)
        if best is None or abs(pts.size - need) < abs(best[0].size - need):
            best = (pts, scale)
        if abs(pts.size - need) <= max(0.002 * h * w, 0.02 * need):
            break
        scale *= math.sqrt(pts.size / need)
    pts = _exact_count(hw, best[0], need, order, best[1] * shape_r, taken, rng)
    return _from_flat(hw, np.concatenate([centre, pts]))


def _dart_throw(hw, order: np.ndarray, radius: np.ndarray, limit: int | None = None) -> np.ndarray:
    """Accept points of ``order`` in turn unless within ``radius`` of an accepted one.

    ``radius`` is per pixel (flat); each accepted point blocks a disc of its own radius on a
    padded occupancy grid, so the test per candidate is one lookup.
    """
    h, w = hw
    if order.size == 0:
        return order
    q = np.maximum(np.round(radius[order] * 8).astype(int), 1)  # radius in 1/8 px, for disc reuse
    pad = int(math.ceil(q.max() / 8))
    blocked = np.zeros((h + 2 * pad, w + 2 * pad), bool)
    flat = memoryview(blocked.reshape(-1))
    ys, xs = np.divmod(order, w)
    cells = ((ys + pad) * (w + 2 * pad) + xs + pad).tolist()
    discs: dict[int, tuple[int, np.ndarray]] = {}
    accepted = []
    for k, (cell, y, x, qk) in enumerate(zip(cells, ys.tolist(), xs.tolist(), q.tolist())):
        if flat[cell]:
            continue
        accepted.append(k)
        if limit is not None and len(accepted) >= limit:
            break
        if qk not in discs:
            discs[qk] = _disc(qk / 8)
        r, disc = discs[qk]
        blocked[y + pad - r : y + pad + r + 1, x + pad - r : x + pad + r + 1] |= disc
    return order[np.asarray(accepted, dtype=np.intp)]


def _disc(radius: float) -> tuple[int, np.ndarray]:
    """Offsets strictly closer than ``radius`` (the point itself included)."""
    r = int(math.ceil(radius))
    d = np.arange(-r, r + 1)
    return r, (d[:, None] ** 2 + d[None, :] ** 2) < radius**2


def _exact_count(hw, pts, need, order, radius, fixed, rng) -> np.ndarray:
    """Trim random points or fill the largest gaps so that exactly ``need`` points remain.

    ``fixed`` (flat bool) marks the centre points, which count as neighbours for the gaps.
    """
    if pts.size > need:
        return np.delete(pts, rng.choice(pts.size, pts.size - need, replace=False))
    if pts.size == need:
        return pts
    from scipy.ndimage import distance_transform_edt

    sampled = fixed.copy()
    sampled[pts] = True
    free = order[~sampled[order]]
    gap = distance_transform_edt(~sampled.reshape(hw)).ravel()[free] / radius[free]
    free = free[np.argsort(-gap, kind="stable")]  # widest gaps (relative to the radius) first
    extra = _dart_throw(hw, free, 0.6 * radius, limit=need - pts.size)
    if extra.size < need - pts.size:  # no room left: take the next widest gaps regardless
        rest = free[~np.isin(free, extra)]
        extra = np.concatenate([extra, rest[: need - pts.size - extra.size]])
    return np.concatenate([pts, extra])


_MAKERS = {
    "cartesian": _cartesian,
    "equispaced": _equispaced,
    "radial": _radial,
    "random": _random,
    "gaussian": _gaussian,
    "poisson": _poisson,
}


# --------------------------------------------------------------------------- reading
def centred_mask(arr, centred: bool | None = None, source: str = "mask", key: str | None = None):
    """Validate a mask array (a file's or a layer's) and return it centred, with ``info`` saying
    what was assumed and why: the one place where a user's mask gets its values and layout checked.

    Values: 0/1 (anything > 0 counts as sampled) or float weights in [0, 1]; NaN, ±Inf, negative
    values and all-zero masks are refused. ``centred=None`` detects the layout
    (:func:`detect_centring`); ``True``/``False`` states it.
    """
    arr = np.asarray(arr)
    mask, weighted = _values(arr, Path(source))
    assumed, detected, reason = _centring_of(mask, centred)
    if assumed == "uncentred":
        mask = np.ascontiguousarray(mask_to_centred(mask))
    ratio = realised_ratio(mask)
    where = "DC at [0,0]" if assumed == "uncentred" else "DC at the centre"
    action = "shifted to centre" if assumed == "uncentred" else "used as is"
    message = (
        f"{source} {mask.shape} ({100 * ratio:.1f}% sampled"
        f"{', weighted' if weighted else ''}): assumed {assumed} ({where}) because {reason}; {action}"
    )
    info = {"assumed": assumed, "detected": detected, "key": key, "ratio": ratio,
            "weighted": weighted, "shape": mask.shape, "message": message}
    return mask, info


def _centring_of(mask, centred):
    if centred is not None:
        assumed = "centred" if centred else "uncentred"
        return assumed, False, f"the caller said so (centred={bool(centred)})"
    centre, corner = _centring_scores(mask)
    assumed = detect_centring(mask)
    if abs(corner - centre) <= _CENTRING_MARGIN:
        reason = (f"the sampling density near the centre ({centre:.2f}) and near the corners "
                  f"({corner:.2f}) is about the same, so the layout cannot be told and ours is "
                  f"assumed; pass centred=False if DC is at [0,0]")
    else:
        near, far = ("corners", "centre") if assumed == "uncentred" else ("centre", "corners")
        dense, sparse = max(centre, corner), min(centre, corner)
        reason = f"sampling is denser near the {near} ({dense:.2f}) than near the {far} ({sparse:.2f})"
    return assumed, True, reason


def _values(arr: np.ndarray, path: Path) -> tuple[np.ndarray, bool]:
    """Binarise (> 0), or keep a float weighting in [0, 1]; reject what is not a mask."""
    if arr.dtype.kind not in "biuf":
        raise MaskError(f"{path.name}: mask values must be real numbers, got dtype {arr.dtype}")
    a = arr.astype(np.float32)
    if not np.all(np.isfinite(a)):
        raise MaskError(f"{path.name}: mask contains NaN or infinite values")
    if a.min() < 0:
        raise MaskError(
            f"{path.name}: mask has negative values (min {a.min():g}); expected 0/1 or weights in [0, 1]"
        )
    if not a.any():
        raise MaskError(f"{path.name}: mask samples nothing (all zeros)")
    fractional = arr.dtype.kind == "f" and a.max() <= 1 and np.any((a > 0) & (a < 1))
    if fractional:
        return a, True
    return (a > 0).astype(np.float32), False


# --------------------------------------------------------------------------- writing
def save_mask(path, mask, uncentred: bool = False) -> None:
    """Write a centred mask to .npy ``(T, H, W)`` or .mat (key ``mask_matrix``, ``H x W x T``).

    ``uncentred=True`` writes the DC-at-[0, 0] layout of the CGPD-CSNet / ISTA-Net code.
    Binary masks are stored as uint8, weightings as float32.
    """
    path = Path(path)
    m = _as_mask_array(mask)
    if uncentred:
        m = mask_to_uncentred(m)
    binary = bool(np.all((m == 0) | (m == 1)))
    out = np.ascontiguousarray(m.astype(np.uint8) if binary else m)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        np.save(path, out)
    elif suffix == ".mat":
        import scipy.io

        data = out if out.ndim == 2 else np.moveaxis(out, 0, -1)
        scipy.io.savemat(path, {_MAT_KEY: data}, do_compression=True)
    else:
        raise MaskError(f"cannot save masks as {suffix!r} ({path}); use .npy or .mat")


def mask_preview_png(mask, path, title: str | None = None) -> None:
    """Write a PNG of the mask (white = sampled); a k-t mask becomes a montage of its frames."""
    import imageio.v3 as iio

    m = _as_mask_array(mask)
    frames = m if m.ndim == 3 else m[None]
    t, h, w = frames.shape
    cols = int(math.ceil(math.sqrt(t)))
    rows = int(math.ceil(t / cols))
    gap = 2
    canvas = np.full((rows * (h + gap) - gap, cols * (w + gap) - gap), 96, np.uint8)
    for i, frame in enumerate(frames):
        r, c = divmod(i, cols)
        canvas[r * (h + gap) : r * (h + gap) + h, c * (w + gap) : c * (w + gap) + w] = np.rint(
            255 * np.clip(frame, 0, 1)
        ).astype(np.uint8)
    if title:
        canvas = _with_title(canvas, title)
    iio.imwrite(Path(path), canvas)


def _with_title(canvas: np.ndarray, title: str) -> np.ndarray:
    """Add a text band above ``canvas`` (skipped quietly if Pillow cannot draw text)."""
    try:
        from PIL import Image, ImageDraw, ImageFont
    except ImportError:
        return canvas
    band = np.zeros((14, canvas.shape[1]), np.uint8)
    image = Image.fromarray(np.vstack([band, canvas]))
    ImageDraw.Draw(image).text((2, 1), title, fill=255, font=ImageFont.load_default())
    return np.asarray(image)
