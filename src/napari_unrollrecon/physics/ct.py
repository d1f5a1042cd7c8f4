"""Parallel-beam CT: Radon transform, its exact adjoint and filtered back-projection, in pure torch.

Geometry (the same as ``skimage.transform.radon(image, theta, circle=False)``):

* The image is ``N × N`` (rows, columns) with its rotation centre at pixel ``(N//2, N//2)``.
* A view at angle ``θ`` (degrees) has ``n_detectors`` bins of width one pixel; bin ``k`` sits at the
  signed offset ``s = k - n_detectors//2``. The ray of bin ``k`` is the set of points
  ``centre + s·(cos θ, -sin θ) + t·(sin θ, cos θ)`` in (column, row) coordinates.
* The default ``n_detectors = ceil(√2·N)`` covers the whole square image at every angle.
* Sinograms are stored **(views, detectors)** - one row per view. skimage returns the transpose,
  (detectors, views).

The projector is ray-driven: every ray is sampled at unit steps ``t = -P//2 … P - 1 - P//2``
(``P = ceil(√2·N)``) with bilinear interpolation of the zero-extended image; the adjoint ``AH``
spreads with exactly the same weights, so ``<A x, y> = <x, AH y>`` up to rounding. Both are
wrapped in autograd functions that call each other, so gradients through ``A``/``AH`` are exact.

Two backends compute the same model:

* ``"sparse"`` (what the default ``"auto"`` picks): the operator is precomputed once per
  geometry, dtype and device as two CSR matrices with int32 indices - ``A`` (rows = rays) and
  ``Aᵀ`` (rows = pixels) - so both directions are a sparse matrix product, a batch being its
  columns (MKL on CPU, cuSPARSE on CUDA; on a CPU shared with other busy processes, one torch
  thread is often faster: the threaded product stalls when a core is taken). The weights are built
  pixel-wise without sorting the samples: a pixel lies in the bilinear footprint of at most three
  consecutive rays and, on each, of at most three consecutive samples, so ``3 × 3`` candidates
  per pixel and view give every non-zero exactly once (~2.2 per pixel and view). Memory is
  halved by symmetry: the sample lattice of view ``θ + 90°`` is that of view ``θ`` turned by 90°,
  so ``A_{θ+90°} x = A_θ rot(x)`` exactly (``rot`` a permutation of pixels about the centre, on an
  odd ``(2·(N//2)+1)²`` canvas). Views whose ``+90°`` partner is also in the set share one matrix
  and are applied to the image and its rotation as two columns. Matrices are cached
  module-wide (least recently used first out, :data:`SPARSE_CACHE_BYTES`), so operators of the
  same geometry share them. Float32, both directions: 67 MB at 256², 60 views; 0.8 GB at 512²,
  180 views (1.6 GB if no view had a +90° partner). A build that took ≥ 0.5 s is also saved on
  disk (:mod:`.ct_cache`, a user cache folder keyed by geometry), so later processes load it
  (512², 180 views: ~7 s to build on one idle core, ~0.1 s to load from the page cache); a
  build or load of large matrices is announced (:mod:`.notices`) for a GUI's status line. Geometries whose matrices would exceed
  :data:`SPARSE_MAX_BYTES` use the grid backend. Weights are those of the grid backend and of
  skimage to rounding (relative 1e-15 in float64, 2e-7 in float32).
* ``"grid"``: matrix-free rotate-and-sum with ``grid_sample`` for ``A`` and its native backward
  kernel for ``AH`` (the same weights up to rounding of the normalised coordinates). Little
  memory, ~10× slower on CPU.

:meth:`RadonOperator.fbp` is the analytic inverse: each view is filtered along the detector axis
(zero-padded FFT, Kak & Slaney's band-limited ramp times an optional window) and back-projected
*pixel-driven* with linear interpolation along the detector, scaled by ``Δθ/2`` - like
``skimage.transform.iradon``. It is therefore not ``AH`` of the filtered data (``AH`` is the
transpose of the ray-driven model); the pixel-driven back-projector is the usual, sharper, choice.

Grid-backend sampling grids are cached per dtype when they fit a 256 MB budget and otherwise
rebuilt chunk by chunk on every call; the working set of one call stays around 64 MB per image.
On CUDA the grid adjoint accumulates with atomic adds, so it is not bitwise deterministic.
"""

from __future__ import annotations

import math
import threading
import time
import warnings
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from napari_unrollrecon.physics import ct_cache
from napari_unrollrecon.physics.notices import announce
from napari_unrollrecon.physics.operator import LinearOperator

FBP_FILTERS = ("ramp", "shepp-logan", "cosine", "hann")
BACKENDS = ("auto", "sparse", "grid")

# Sparse backend: largest pair of matrices built for one operator, and total kept by the
# module cache (operators keep their own matrices alive regardless).
SPARSE_MAX_BYTES = 2 * 2**30
SPARSE_CACHE_BYTES = 2 * 2**30
_NNZ_PER_PIXEL_VIEW = 2.3  # measured 2.20-2.22 at 48²…512²; used only to estimate memory
_BUILD_ELEMS = 2**21  # candidate weights evaluated per chunk while building
_ANNOUNCE_BYTES = 32 * 2**20  # matrices this large take about a second or more: say so (notices)

# Grid backend working-set and cache budgets (elements / bytes); 512² × 180 views fits easily.
_CHUNK_ELEMS = 2**24
_CACHE_BYTES = 256 * 2**20
_BILINEAR, _ZEROS = 0, 0  # grid_sample enum values for mode / padding_mode


# --------------------------------------------------------------------------- geometry helpers
def default_n_detectors(image_size: int) -> int:
    """``ceil(√2·N)`` detector bins: enough to cover an ``N × N`` image at every angle."""
    # Written as N + ceil(√2·N - N), as skimage does, so both round identically.
    return int(image_size + math.ceil(math.sqrt(2) * image_size - image_size))


def sparse_view_angles(n_views: int, full_views: int = 180, arc: float = 180.0) -> np.ndarray:
    """Pick ``n_views`` of a full set of ``full_views`` views evenly spread over ``[0, arc)``.

    The full set is ``arange(full_views) * arc / full_views`` degrees; view ``i`` of the sparse
    set is full view ``floor(i · full_views / n_views)`` - every k-th view when
    ``k = full_views / n_views`` is an integer. Returns angles in degrees (float64).
    """
    n_views, full_views = int(n_views), int(full_views)
    if full_views < 1 or not 1 <= n_views <= full_views:
        raise ValueError(
            f"need 1 <= n_views <= full_views, got n_views={n_views}, full_views={full_views}"
        )
    index = (np.arange(n_views) * full_views) // n_views
    return index * (float(arc) / full_views)


def fbp_filter(size: int, name: str = "ramp") -> np.ndarray:
    """Frequency response (rfft layout, ``size//2 + 1`` values) of an FBP filter for ``size`` bins.

    The ramp is the DFT of the band-limited spatial ramp kernel (Kak & Slaney, ch. 3, eq. 61):
    ``h[0] = 1/4``, ``h[n] = -1/(π n)²`` for odd ``n``, 0 for even ``n ≠ 0``, taken circularly,
    which avoids the DC bias of a sampled ``|ω|``. Windows (``f`` = DFT frequency in cycles per
    bin): shepp-logan ``sinc(f)``, cosine ``cos(π f)``, hann the symmetric Hann window of length
    ``size`` centred on DC (skimage's convention, whose odd part is dropped as it only adds an
    imaginary part to the filtered real data).
    """
    if name not in FBP_FILTERS:
        raise ValueError(f"unknown FBP filter {name!r}; choose one of {list(FBP_FILTERS)}")
    lag = np.arange(size)
    lag = np.minimum(lag, size - lag)  # circular distance from 0
    h = np.where(lag % 2 == 1, -1.0 / (np.pi * np.maximum(lag, 1)) ** 2, 0.0)
    h[0] = 0.25
    response = 2 * np.real(np.fft.fft(h))
    freq = np.fft.fftfreq(size)
    if name == "shepp-logan":
        response *= np.sinc(freq)  # numpy's sinc is sin(πf)/(πf)
    elif name == "cosine":
        response *= np.cos(np.pi * freq)
    elif name == "hann":
        centred = (np.arange(size) + size // 2) % size
        response *= 0.5 - 0.5 * np.cos(2 * np.pi * centred / (size - 1))
    even = 0.5 * (response + np.roll(response[::-1], 1))
    return even[: size // 2 + 1]


def _padded_length(n_detectors: int) -> int:
    """FFT length for filtering: a power of two ≥ 2·n_detectors (no circular wrap), at least 64."""
    return max(64, 2 ** math.ceil(math.log2(2 * n_detectors)))


def _same_device(a: torch.device, b: torch.device) -> bool:
    """Device equality that treats "cuda" and "cuda:0" (the current device) as the same."""
    if a.type != b.type:
        return False
    return a.index is None or b.index is None or a.index == b.index


# --------------------------------------------------------------------------- sparse backend
def _slot_weights(di, dj, cos, sin, t_range, dtype):
    """Ray-driven weights of pixels at offsets ``(di, dj)`` from the centre, for views ``(cos, sin)``.

    In the view's (s, t) frame the pixel sits at ``q = (cos·di - sin·dj, sin·di + cos·dj)``; the
    lattice points whose bilinear footprint ``(-1, 1)²`` covers it lie within ``r = |cos| + |sin|``
    of ``q`` along each axis, i.e. among the three integers above ``q - r``. Returns the first
    ray offset ``s0`` (int32) and the weights of rays ``s0, s0+1, s0+2`` (``(..., 3)``), each
    summed over its (≤ 3) samples inside ``t_range``. Positions in float64; the 3 × 3 hat
    products, which only see offsets of size < 3, in ``dtype``.
    """
    cos = torch.as_tensor(cos, dtype=torch.float64, device=di.device)
    sin = torch.as_tensor(sin, dtype=torch.float64, device=di.device)
    r = cos.abs() + sin.abs()
    qs, qt = cos * di - sin * dj, sin * di + cos * dj
    s0, t0 = torch.floor(qs - r) + 1, torch.floor(qt - r) + 1
    a, b = s0 - qs, t0 - qt
    # Pixel-to-sample offset of candidate (s0 + k, t0 + m): base offset plus a per-view constant.
    x0 = (cos * a + sin * b).to(dtype).unsqueeze(-1)
    y0 = (cos * b - sin * a).to(dtype).unsqueeze(-1)
    step = torch.arange(3, dtype=torch.float64, device=di.device)
    m, k = step.repeat_interleave(3), step.repeat(3)  # candidates in (sample, ray) order
    cos9, sin9 = cos.unsqueeze(-1), sin.unsqueeze(-1)
    wx = (x0 + (k * cos9 + m * sin9).to(dtype)).abs_().neg_().add_(1).clamp_min_(0)
    wy = (y0 + (m * cos9 - k * sin9).to(dtype)).abs_().neg_().add_(1).clamp_min_(0)
    w = wx.mul_(wy).unflatten(-1, (3, 3))
    lo, hi = t_range
    if float(t0.min()) < lo or float(t0.max()) + 2 > hi:  # only corners reach the last samples
        t = t0.unsqueeze(-1) + step
        w = w * ((t >= lo) & (t <= hi)).to(dtype).unsqueeze(-1)
    return s0.to(torch.int32), w[..., 0, :] + w[..., 1, :] + w[..., 2, :]  # faster than sum(-2)


def _stable_argsort(keys: torch.Tensor) -> torch.Tensor:
    """Stable sort order of small non-negative integer keys (NumPy's radix sort on CPU)."""
    if keys.device.type != "cpu":
        return torch.sort(keys, stable=True).indices
    small = np.int16 if keys.numel() == 0 or int(keys.max()) < 2**15 else np.int32
    return torch.from_numpy(np.argsort(keys.numpy().astype(small), kind="stable"))


def _csr(counts, cols, vals, shape) -> torch.Tensor:
    """CSR matrix from per-row counts and entries in row order (lists of chunks or tensors)."""
    counts, cols, vals = (torch.cat(a) if isinstance(a, list) else a for a in (counts, cols, vals))
    crow = torch.zeros(len(counts) + 1, dtype=torch.int64, device=counts.device)
    torch.cumsum(counts, 0, out=crow[1:])
    index = torch.int32 if int(crow[-1]) < 2**31 else torch.int64  # int32: MKL's fast path
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(crow.to(index), cols.to(index), vals, size=shape,
                                       check_invariants=False)


class _Entries:
    """CSR entries written chunk by chunk into one buffer (grown by copying when too small).

    Large single buffers instead of lists of chunks joined at the end: the peak stays near the
    final size, and freed chunks do not linger in the allocator's heap.
    """

    def __init__(self, capacity: int, dtype, device):
        self.cols = torch.empty(max(capacity, 1), dtype=torch.int32, device=device)
        self.vals = torch.empty(max(capacity, 1), dtype=dtype, device=device)
        self.size = 0

    def append(self, cols: torch.Tensor, vals: torch.Tensor) -> None:
        end = self.size + len(cols)
        if end > len(self.cols):
            grown = max(end, int(1.25 * len(self.cols)))
            self.cols = torch.cat((self.cols[:self.size], self.cols.new_empty(grown - self.size)))
            self.vals = torch.cat((self.vals[:self.size], self.vals.new_empty(grown - self.size)))
        self.cols[self.size:end] = cols
        self.vals[self.size:end] = vals
        self.size = end

    def result(self):
        cols, vals = self.cols[:self.size], self.vals[:self.size]
        if self.size < 0.9 * len(self.cols):  # overestimated: do not keep the slack
            cols, vals = cols.clone(), vals.clone()
        return cols, vals


def _ray_matrices(cos, sin, size, centre, n_det, n_samples, dtype, device):
    """CSR ``(A, Aᵀ)`` of the ray-driven projector for views ``(cos, sin)`` on a size² image."""
    d = torch.arange(size, dtype=torch.float64, device=device) - centre
    t_range = (-(n_samples // 2), n_samples - 1 - n_samples // 2)
    slots = torch.arange(3, dtype=torch.int32, device=device) + n_det // 2
    # A, a few views at a time (few large ops: small ones stall when another process holds a
    # core): a stable sort by (view, bin) keeps each ray's pixels in order.
    n_pix = size * size
    views = max(1, min(2**15 // n_det, _BUILD_ELEMS // (9 * n_pix)))
    counts = []
    entries = _Entries(int(_NNZ_PER_PIXEL_VIEW * len(cos) * n_pix), dtype, device)
    for v0 in range(0, len(cos), views):
        c, s = (torch.as_tensor(np.asarray(a[v0:v0 + views]), device=device).view(-1, 1, 1)
                for a in (cos, sin))
        s0, w = _slot_weights(d.view(1, 1, -1), d.view(1, -1, 1), c, s, t_range, dtype)
        bins, w = s0.view(len(c), -1, 1) + slots, w.view(len(c), -1, 3)
        local = torch.arange(len(c), dtype=torch.int32, device=device).view(-1, 1, 1) * n_det
        key = (bins + local).view(-1)
        kept = ((w > 0) & (bins >= 0) & (bins < n_det)).view(-1).nonzero().squeeze(1)
        key = key[kept]
        kept = kept[_stable_argsort(key)]
        counts.append(torch.bincount(key, minlength=len(c) * n_det))
        entries.append((kept % (3 * n_pix)).div_(3, rounding_mode="floor"), w.view(-1)[kept])
    matrix = _csr(counts, *entries.result(), (len(cos) * n_det, n_pix))
    del entries
    # Aᵀ, chunks of pixels over all views: entries come out in (view, bin) order by construction,
    # and they are A's, so their number is known.
    cos_t = torch.as_tensor(np.asarray(cos), device=device).view(1, -1)
    sin_t = torch.as_tensor(np.asarray(sin), device=device).view(1, -1)
    first = (torch.arange(len(cos), dtype=torch.int32, device=device) * n_det).view(1, -1, 1) + slots
    step = max(1, _BUILD_ELEMS // (9 * len(cos)))
    counts = []
    entries = _Entries(matrix._nnz(), dtype, device)
    for p0 in range(0, n_pix, step):
        p = torch.arange(p0, min(p0 + step, n_pix), device=device)
        s0, w = _slot_weights(d[p % size].view(-1, 1), d[p // size].view(-1, 1), cos_t, sin_t,
                              t_range, dtype)
        bins = s0.unsqueeze(-1) + slots
        keep = (w > 0) & (bins >= 0) & (bins < n_det)
        counts.append(keep.sum((1, 2)))
        kept = keep.view(-1).nonzero().squeeze(1)
        entries.append((s0.unsqueeze(-1) + first).view(-1)[kept], w.view(-1)[kept])
    if entries.size != matrix._nnz():  # same weights, so the same entries: a mismatch is a bug
        raise RuntimeError(f"sparse CT build: Aᵀ has {entries.size} entries but A {matrix._nnz()}")
    transpose = _csr(counts, *entries.result(), (n_pix, len(cos) * n_det))
    return matrix, transpose


def _pair_views(angles: np.ndarray):
    """Split views into (base, partner, single) index arrays with ``partner = base + 90°`` (mod 360).

    Angles match to 1e-9 degrees; each view is used at most once (a missed pair only costs memory).
    """
    def key(a):
        return int(round(float(np.mod(a, 360.0)) * 1e6)) % 360_000_000

    order = np.argsort(np.mod(angles, 360.0), kind="stable")
    free: dict[int, list[int]] = {}
    for i in order:
        free.setdefault(key(angles[i]), []).append(int(i))
    paired = np.zeros(len(angles), dtype=bool)
    base, partner = [], []
    for i in order:
        if paired[i]:
            continue
        for j in free.get(key(angles[i] + 90.0), ()):
            gap = np.mod(angles[j] - angles[i] - 90.0 + 180.0, 360.0) - 180.0
            if not paired[j] and j != i and abs(gap) <= 1e-9:
                paired[i] = paired[j] = True
                base.append(int(i))
                partner.append(j)
                break
    return (np.array(base, dtype=np.int64), np.array(partner, dtype=np.int64),
            np.flatnonzero(~paired))


@dataclass
class _SparseProjector:
    """Cached CSR matrices of one geometry and the index maps that apply them.

    Paired views: one matrix on the ``M × M`` canvas (``M = 2c + 1``), applied to two canvases -
    the image and the image turned by 90° - as the two column blocks of one product. Single
    views: a matrix on the image itself. Each direction is one gather in, one sparse product,
    one gather out: few large operations, which keeps a busy shared CPU from stalling them.
    """

    pair: tuple | None          # (A, Aᵀ) of the base views on the canvas
    alone: tuple | None         # (A, Aᵀ) of the single views on the image
    # Flat gather indices (rows of (n, C) blocks); see RadonOperator._build_sparse.
    canvas_in: torch.Tensor     # image pixel (N² = zero) -> (canvas pixel, canvas 0/1)
    pair_out: torch.Tensor      # (base row, bin, canvas) -> (pair view, bin)
    pair_in: torch.Tensor       # sinogram (view, bin) -> (base row, bin, canvas)
    canvas_out: torch.Tensor    # (canvas pixel, canvas) -> (image pixel, canvas 0/1)
    single_in: torch.Tensor     # sinogram (view, bin) -> (single row, bin)
    pair_views: torch.Tensor    # sinogram views the pair matrix serves, ascending
    single: torch.Tensor        # sinogram views of the single matrix, in its row order

    @property
    def nbytes(self) -> int:
        total = 0
        for mats in (self.pair, self.alone):
            for m in mats or ():
                total += sum(t.numel() * t.element_size()
                             for t in (m.crow_indices(), m.col_indices(), m.values()))
        return total

    @property
    def nnz(self) -> int:
        return sum(mats[0]._nnz() for mats in (self.pair, self.alone) if mats)


def _canvas_maps(n: int, centre: int):
    """Index maps between the ``n × n`` image and the two ``(2c+1)²`` canvases (see above).

    Canvas 0 holds the image as is, canvas 1 the image turned so that ``x'[j, i] = x[2c - i, j]``
    (the +90° view of ``x`` is the base view of ``x'``).
    """
    size = 2 * centre + 1
    j, i = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    straight = np.where((j < n) & (i < n), j * n + i, n * n)
    r = 2 * centre - i  # image row that lands on canvas-1 pixel (j, i); its column is j
    turned = np.where((r >= 0) & (r < n) & (j < n), r * n + j, n * n)
    rows, cols = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    image_pos = np.stack([rows * size + cols, cols * size + 2 * centre - rows], axis=-1)
    return (np.stack([straight.ravel(), turned.ravel()], axis=-1), image_pos.reshape(-1, 2))


_SPARSE_CACHE: "OrderedDict[tuple, _SparseProjector]" = OrderedDict()
_SPARSE_LOCK = threading.Lock()


def _spmm(matrix: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """CSR matrix times a dense ``(n, K)`` block; one column goes as a vector (~2× faster)."""
    if x.shape[1] == 1:
        return (matrix @ x[:, 0]).unsqueeze(1)
    return matrix @ x


# --------------------------------------------------------------------------- autograd wrappers
class _Linear(torch.autograd.Function):
    """``A`` (``adjoint=False``) or ``AH`` whose backward is the other one: exact gradients of any order."""

    @staticmethod
    def forward(ctx, x, op, adjoint: bool):
        ctx.op, ctx.adjoint = op, adjoint
        return op._backproject(x) if adjoint else op._project(x)

    @staticmethod
    def backward(ctx, g):
        return _Linear.apply(g, ctx.op, not ctx.adjoint), None, None


#: Views allowed per detector bin: π/2 per bin already samples the angles at Nyquist; 4 leaves room.
MAX_VIEWS_PER_DETECTOR = 4


class RadonOperator(LinearOperator):
    """Parallel-beam Radon transform ``y = A x`` of ``N × N`` images, batched over leading dims.

    Parameters
    ----------
    image_size : int
        ``N``, the side of the square image (≥ 2).
    n_views : int, optional
        Number of views; required unless ``angles`` is given.
    angles : array of float, optional
        View angles in degrees. Default: ``n_views`` angles evenly spread over ``[0, arc)``, or,
        with ``full_views``, the subset :func:`sparse_view_angles` picks from that full set.
    n_detectors : int, optional
        Detector bins (unit spacing, centred at bin ``n_detectors//2``). Default ``ceil(√2·N)``.
    arc : float
        Angular range in degrees covered by the views (180 for a full parallel-beam scan); also
        sets the FBP weight ``Δθ/2`` with ``Δθ = arc/n_views`` in radians.
    full_views : int, optional
        Size of the full view set the sparse views are drawn from (see :func:`sparse_view_angles`).
    device : torch device or str, optional
        Where matrices / sampling grids live and computations run (default CPU).
    backend : {"auto", "sparse", "grid"}
        How ``A`` and ``AH`` are computed (same model, see the module notes): ``"sparse"``
        precomputed CSR matrices (fast; built on first use, ~1 s at 256², 60 views),
        ``"grid"`` matrix-free ``grid_sample`` (little memory, slower). ``"auto"`` (default)
        is ``"sparse"`` unless its matrices would exceed :data:`SPARSE_MAX_BYTES`.
    """

    modality = "ct"
    real_valued = True

    def __init__(self, image_size: int, n_views: int | None = None, angles=None,
                 n_detectors: int | None = None, arc: float = 180.0,
                 full_views: int | None = None, device=None, backend: str = "auto"):
        self.image_size = int(image_size)
        if self.image_size < 2:
            raise ValueError(f"image_size must be at least 2 pixels, got {image_size}")
        self.arc = float(arc)
        if not 0 < self.arc <= 360:
            raise ValueError(f"arc must be in (0, 360] degrees, got {arc}")
        self.angles = self._make_angles(n_views, angles, full_views)
        self.n_views = len(self.angles)
        self.n_detectors = int(n_detectors) if n_detectors is not None else default_n_detectors(self.image_size)
        if self.n_detectors < 2:
            raise ValueError(f"n_detectors must be at least 2, got {n_detectors}")
        if self.n_views > MAX_VIEWS_PER_DETECTOR * self.n_detectors:
            raise ValueError(
                f"{self.n_views} views for {self.n_detectors} detector bins: beyond about π/2 views per bin "
                f"(angular Nyquist) more views add nothing; use at most {MAX_VIEWS_PER_DETECTOR * self.n_detectors}")
        self.full_views = full_views
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self._n_samples = default_n_detectors(self.image_size)  # ray samples, covers the image
        self._grids: dict = {}
        self._norm: float | None = None
        self._fbp_gain: float | None = None
        self._sparse: dict = {}
        self._fbp_memo: tuple | None = None  # (sinogram, (its version, filter), image) of the last FBP
        self.backend = self._choose_backend(backend)

    def _make_angles(self, n_views, angles, full_views) -> np.ndarray:
        if angles is not None:
            angles = np.asarray(angles, dtype=np.float64).reshape(-1)
            if angles.size == 0 or not np.all(np.isfinite(angles)):
                raise ValueError("angles must be a non-empty array of finite values in degrees")
            if n_views is not None and int(n_views) != angles.size:
                raise ValueError(f"n_views={n_views} disagrees with the {angles.size} angles given")
            return angles
        if n_views is None or int(n_views) < 1:
            raise ValueError(f"give n_views >= 1 or an array of angles (degrees); got n_views={n_views}")
        if full_views is not None:
            return sparse_view_angles(int(n_views), int(full_views), self.arc)
        return np.arange(int(n_views)) * (self.arc / int(n_views))

    def _choose_backend(self, backend: str) -> str:
        if backend not in BACKENDS:
            raise ValueError(f"unknown CT backend {backend!r}; choose one of {list(BACKENDS)}")
        if backend != "auto":
            return backend
        return "sparse" if self.sparse_bytes_estimate(torch.float32) <= SPARSE_MAX_BYTES else "grid"

    def key(self) -> tuple:
        return ("ct", self.n_views, self.image_size)

    def sparse_bytes_estimate(self, dtype=torch.float32) -> int:
        """Memory of the sparse backend's matrices (both directions) in bytes, estimated from
        the views it must store (a +90° partner costs nothing); a slight overestimate."""
        base, _, single = _pair_views(self.angles)
        views = len(base) + len(single)
        nnz = _NNZ_PER_PIXEL_VIEW * views * self.image_size**2
        return int(nnz * 2 * (torch.finfo(dtype).bits // 8 + 4))

    def __repr__(self):
        return (f"RadonOperator(image_size={self.image_size}, n_views={self.n_views}, "
                f"n_detectors={self.n_detectors}, arc={self.arc:g}, device={self.device}, "
                f"backend={self.backend!r})")

    # ----------------------------------------------------------------- shapes and checks
    @property
    def image_shape(self) -> tuple[int, int]:
        return (self.image_size, self.image_size)

    @property
    def sinogram_shape(self) -> tuple[int, int]:
        """(views, detectors)."""
        return (self.n_views, self.n_detectors)

    @staticmethod
    def image_size_for(n_detectors: int) -> int:
        """Largest image size whose default detector count fits: ``floor(n_detectors / √2)``.

        Inverse of the default ``n_detectors = ceil(√2·N)`` (and skimage ``iradon``'s default
        output size). For a sinogram whose detector only spans the inscribed circle
        (skimage ``circle=True``), pass ``image_size = n_detectors`` instead.
        """
        n_detectors = int(n_detectors)
        if n_detectors < 3:
            raise ValueError(f"a sinogram needs at least 3 detector bins, got {n_detectors}")
        return int(math.floor(n_detectors / math.sqrt(2)))

    def _flatten(self, x, tail: tuple, what: str):
        """Validate ``x`` (..., *tail) and return it as (C, *tail) in a compute dtype."""
        if not isinstance(x, torch.Tensor):
            x = torch.as_tensor(np.asarray(x))
        if torch.is_complex(x) or not torch.is_floating_point(x):
            raise ValueError(f"CT {what} must be a real floating-point tensor, got dtype {x.dtype}; "
                             "convert with .float() (and take .real / .abs() of complex data)")
        if x.ndim < 2 or tuple(x.shape[-2:]) != tail:
            raise ValueError(f"CT {what} must have shape (..., {tail[0]}, {tail[1]}) for {self!r}; "
                             f"got {tuple(x.shape)}")
        if not _same_device(x.device, self.device):
            raise ValueError(f"CT {what} is on {x.device} but the operator on {self.device}; "
                             "move one of them (tensor.to(...) or operator.to(...))")
        dtype = x.dtype if x.dtype in (torch.float32, torch.float64) else torch.float32
        return x.reshape(-1, *tail).to(dtype), x.shape[:-2], x.dtype

    def check(self, x: torch.Tensor) -> None:
        """Raise ValueError unless ``x`` is a valid (..., N, N) image batch for this operator."""
        self._flatten(x, self.image_shape, "image")

    # ----------------------------------------------------------------- public operators
    def A(self, x: torch.Tensor) -> torch.Tensor:
        """Sinogram ``(..., n_views, n_detectors)`` of images ``(..., N, N)``."""
        flat, lead, dtype = self._flatten(x, self.image_shape, "image")
        return _Linear.apply(flat, self, False).reshape(*lead, *self.sinogram_shape).to(dtype)

    def AH(self, y: torch.Tensor) -> torch.Tensor:
        """Exact adjoint (unfiltered ray-driven back-projection) of sinograms ``(..., V, D)``."""
        flat, lead, dtype = self._flatten(y, self.sinogram_shape, "sinogram")
        return _Linear.apply(flat, self, True).reshape(*lead, *self.image_shape).to(dtype)

    def AHA(self, x: torch.Tensor) -> torch.Tensor:
        return self.AH(self.A(x))

    def initial_estimate(self, y: torch.Tensor) -> torch.Tensor:
        """FBP (ramp): on the image's intensity scale, unlike the plain adjoint."""
        return self.fbp(y)

    def fbp(self, y: torch.Tensor, filter: str = "ramp") -> torch.Tensor:
        """Filtered back-projection of sinograms ``(..., V, D)`` to images ``(..., N, N)``.

        ``filter`` is one of :data:`FBP_FILTERS`. For views evenly covering 180° the result is on
        the image's intensity scale (it matches ``skimage.transform.iradon``).
        """
        if filter not in FBP_FILTERS:
            raise ValueError(f"unknown FBP filter {filter!r}; choose one of {list(FBP_FILTERS)}")
        memo = self._fbp_memo  # the same sinogram again (problem scale, then the FBP method): reuse
        if memo is not None and memo[0] is y and memo[1] == (y._version, filter) and not y.requires_grad:
            return memo[2].clone()
        flat, lead, dtype = self._flatten(y, self.sinogram_shape, "sinogram")
        q = self._filter(flat, filter)
        weight = math.radians(self.arc) / self.n_views / 2
        x = self._backproject_pixel(q) * weight
        x = x.reshape(*lead, *self.image_shape).to(dtype)
        if isinstance(y, torch.Tensor) and not y.requires_grad:
            self._fbp_memo = (y, (y._version, filter), x.clone())  # holds y: its id cannot be reused
        return x

    def norm(self, iterations: int = 100, tol: float = 1e-4) -> float:
        """Spectral norm ``||A||₂`` by power iteration on ``AᴴA`` (cached; a lower estimate).

        Starts from a constant image, close to the top singular vector (low frequencies dominate
        a projector's spectrum), so a few iterations usually suffice.
        """
        if self._norm is None:
            with torch.no_grad():
                g = torch.Generator(device="cpu").manual_seed(0)
                x = 1 + 0.01 * torch.rand(self.image_shape, generator=g, dtype=torch.float32)
                x = x.to(self.device)
                x /= torch.linalg.vector_norm(x)
                value = 0.0
                for _ in range(iterations):
                    z = self.AHA(x)
                    new = float(torch.linalg.vector_norm(z))
                    x = z / max(new, 1e-30)
                    if abs(new - value) <= tol * new:
                        value = new
                        break
                    value = new
            self._norm = math.sqrt(value)
        return self._norm

    def fbp_gain(self, iterations: int = 30) -> float:
        """Largest gain of FBP∘A by power iteration (cached; at least 1). FBP inverts A only for
        dense views: with few views the pixels they barely see are amplified (6-7× at 128², 30
        views), which a preconditioned gradient step must be divided by to stay stable."""
        if self._fbp_gain is None:
            gain = 1.0
            with torch.no_grad():
                g = torch.Generator(device="cpu").manual_seed(0)
                x = torch.rand(self.image_shape, generator=g).to(self.device)
                for _ in range(iterations):
                    y = self.fbp(self.A(x))
                    gain = float(torch.linalg.vector_norm(y) / torch.linalg.vector_norm(x).clamp_min(1e-12))
                    x = y / torch.linalg.vector_norm(y).clamp_min(1e-12)
            self._fbp_gain = max(gain, 1.0)
        return self._fbp_gain

    def to(self, device) -> "RadonOperator":
        """The same geometry on ``device`` (matrices and grids are built there lazily)."""
        op = RadonOperator(self.image_size, angles=self.angles, n_detectors=self.n_detectors,
                           arc=self.arc, device=device, backend=self.backend)
        op.full_views, op._norm, op._fbp_gain = self.full_views, self._norm, self._fbp_gain
        if op.device == self.device:
            op._grids, op._sparse = self._grids, self._sparse  # same tensors, no need to rebuild
        return op

    # ----------------------------------------------------------------- sampling grids
    def _chunks(self, per_view: int):
        """View ranges whose working set (``per_view`` elements each) fits the chunk budget."""
        step = max(1, _CHUNK_ELEMS // max(per_view, 1))
        return [(v, min(v + step, self.n_views)) for v in range(0, self.n_views, step)]

    def _trig(self, v0, v1, dtype):
        theta = torch.as_tensor(np.deg2rad(self.angles[v0:v1]), dtype=torch.float64)
        shape = (-1, 1, 1)
        return (theta.cos().to(self.device, dtype).view(shape),
                theta.sin().to(self.device, dtype).view(shape))

    def _ray_grid(self, v0, v1, dtype):
        """Normalised sample positions (views, ray samples, detectors, 2) of the ray-driven model."""
        n, c = self.image_size, self.image_size // 2
        cos, sin = self._trig(v0, v1, dtype)
        s = torch.arange(self.n_detectors, device=self.device, dtype=dtype) - self.n_detectors // 2
        t = torch.arange(self._n_samples, device=self.device, dtype=dtype) - self._n_samples // 2
        s, t = s.view(1, 1, -1), t.view(1, -1, 1)
        col = c + cos * s + sin * t
        row = c - sin * s + cos * t
        # align_corners=True: pixel centres at -1 … 1, so pixel index i -> 2 i / (N - 1) - 1.
        return torch.stack((col, row), dim=-1).mul_(2.0 / (n - 1)).sub_(1.0)

    def _pixel_grid(self, v0, v1, dtype):
        """Normalised detector positions (views, N, N, 2) of every pixel centre (pixel-driven)."""
        n, c = self.image_size, self.image_size // 2
        cos, sin = self._trig(v0, v1, dtype)
        d = torch.arange(n, device=self.device, dtype=dtype) - c
        pos = cos * d.view(1, 1, -1) - sin * d.view(1, -1, 1) + self.n_detectors // 2
        pos = pos.mul_(2.0 / (self.n_detectors - 1)).sub_(1.0)
        # The sinogram row is a 1-pixel-high image: any y samples exactly that row.
        return torch.stack((pos, torch.zeros_like(pos)), dim=-1)

    def _grid(self, kind: str, v0: int, v1: int, dtype):
        """Grid of views ``v0:v1``; the all-view grid is cached when it fits the byte budget."""
        build, per_view = ((self._ray_grid, self._n_samples * self.n_detectors) if kind == "ray"
                           else (self._pixel_grid, self.image_size**2))
        if self.n_views * per_view * 2 * torch.finfo(dtype).bits // 8 > _CACHE_BYTES:
            return build(v0, v1, dtype)
        key = (kind, dtype)
        if key not in self._grids:
            self._grids[key] = build(0, self.n_views, dtype)
        return self._grids[key][v0:v1]

    # ----------------------------------------------------------------- kernels (C = batch)
    def _project(self, x: torch.Tensor) -> torch.Tensor:
        """(C, N, N) -> (C, V, D) with the chosen backend."""
        return self._project_sparse(x) if self.backend == "sparse" else self._project_grid(x)

    def _backproject(self, y: torch.Tensor) -> torch.Tensor:
        """(C, V, D) -> (C, N, N), the transpose of :meth:`_project`."""
        return self._backproject_sparse(y) if self.backend == "sparse" else self._backproject_grid(y)

    def _matrices(self, dtype) -> _SparseProjector:
        """The sparse projector of this geometry in ``dtype``, from the module cache or built."""
        if dtype not in self._sparse:
            key = (self.image_size, self.n_detectors, self._n_samples, self.angles.tobytes(),
                   dtype, str(self.device))
            with _SPARSE_LOCK:
                found = _SPARSE_CACHE.get(key)
                if found is None:
                    found = self._build_sparse(dtype)
                    _SPARSE_CACHE[key] = found
                    total = sum(p.nbytes for p in _SPARSE_CACHE.values())
                    while total > SPARSE_CACHE_BYTES and len(_SPARSE_CACHE) > 1:
                        total -= _SPARSE_CACHE.popitem(last=False)[1].nbytes
                _SPARSE_CACHE.move_to_end(key)
            self._sparse[dtype] = found
        return self._sparse[dtype]

    def _build_sparse(self, dtype) -> _SparseProjector:
        base, partner, single = _pair_views(self.angles)
        pair, alone = self._stored_or_built(dtype, base, single)
        c, n = self.image_size // 2, self.image_size
        canvas_src, image_pos = _canvas_maps(n, c)
        bins = np.arange(self.n_detectors)
        pair_rows = np.stack([base, partner], axis=-1)  # (Vb, 2) sinogram views
        pair_views = np.sort(pair_rows.ravel())
        row = np.zeros(self.n_views, dtype=np.int64)  # base row serving each view
        turned = np.zeros(self.n_views, dtype=np.int64)  # 1 if through the turned canvas
        row[base] = row[partner] = np.arange(len(base))
        turned[partner] = 1
        row, turned = row[pair_views, None], turned[pair_views, None]
        index = dict(
            canvas_in=canvas_src.ravel(),
            pair_out=((row * self.n_detectors + bins) * 2 + turned).ravel(),
            pair_in=(pair_rows[:, None, :] * self.n_detectors + bins[:, None]).ravel(),
            canvas_out=(image_pos * 2 + np.arange(2)).ravel(),
            single_in=(single[:, None] * self.n_detectors + bins).ravel(),
            pair_views=pair_views, single=single)
        index = {k: torch.as_tensor(v, dtype=torch.int64, device=self.device) for k, v in index.items()}
        return _SparseProjector(pair=pair, alone=alone, **index)

    def _stored_or_built(self, dtype, base, single):
        """``(pair, alone)`` matrices from the disk cache (:mod:`.ct_cache`), else built (and
        saved when the build was slow); either is announced (:mod:`.notices`)."""
        name = ct_cache.geometry_key(self.image_size, self.n_detectors, self._n_samples, self.angles, dtype)
        what = f"the CT projector for {self.n_views} views at {self.image_size}²"
        say = announce if self.sparse_bytes_estimate(dtype) >= _ANNOUNCE_BYTES else (lambda text: None)
        if ct_cache.stored(name):
            say(f"loading {what} from the cache…")
            found = ct_cache.load(name, self.device)
            if found is not None:
                return found["pair"], found["alone"]
        say(f"building {what} (first use; kept for next time)…")
        t0 = time.perf_counter()
        pair, alone = self._build_matrices(dtype, base, single)
        if time.perf_counter() - t0 >= ct_cache.MIN_SECONDS:
            ct_cache.save(name, {"pair": pair, "alone": alone})
        return pair, alone

    def _build_matrices(self, dtype, base, single):
        """CSR ``(A, Aᵀ)`` of the base views on the canvas and of the single views on the image."""
        theta = np.deg2rad(self.angles)
        c, n = self.image_size // 2, self.image_size
        geometry = (self.n_detectors, self._n_samples, dtype, self.device)
        pair = alone = None
        if len(base):
            pair = _ray_matrices(np.cos(theta[base]), np.sin(theta[base]), 2 * c + 1, c, *geometry)
        if len(single):
            alone = _ray_matrices(np.cos(theta[single]), np.sin(theta[single]), n, c, *geometry)
        return pair, alone

    def build(self, dtype=torch.float32) -> None:
        """Make the sparse matrices now (load or build; no-op for the grid backend), so a slow
        first use happens where the caller can report it rather than inside a method's stage."""
        if self.backend == "sparse":
            self._matrices(dtype)

    def _project_sparse(self, x: torch.Tensor) -> torch.Tensor:
        mats = self._matrices(x.dtype)
        channels, n_det = x.shape[0], self.n_detectors
        pixels = x.reshape(channels, -1).T  # (N², C): a batch is the columns of one product
        if mats.pair is not None:
            padded = F.pad(pixels, (0, 0, 0, 1))  # row N² reads zero (canvas pixels off the image)
            canvases = padded.index_select(0, mats.canvas_in).view(-1, 2 * channels)
            y = _spmm(mats.pair[0], canvases).view(-1, channels).index_select(0, mats.pair_out)
            paired = y.T.reshape(channels, -1, n_det)
            if mats.alone is None:
                return paired
        out = x.new_empty(channels, self.n_views, n_det)
        if mats.pair is not None:
            out[:, mats.pair_views] = paired
        if mats.alone is not None:
            y = _spmm(mats.alone[0], pixels.contiguous())
            out[:, mats.single] = y.T.reshape(channels, -1, n_det)
        return out

    def _backproject_sparse(self, y: torch.Tensor) -> torch.Tensor:
        mats = self._matrices(y.dtype)
        channels = y.shape[0]
        rays = y.reshape(channels, -1).T  # (V·D, C)
        x = None
        if mats.pair is not None:
            rows = rays.index_select(0, mats.pair_in).view(-1, 2 * channels)
            canvases = _spmm(mats.pair[1], rows).view(-1, channels)
            both = canvases.index_select(0, mats.canvas_out).view(-1, 2, channels)
            x = both[:, 0] + both[:, 1]
        if mats.alone is not None:
            part = _spmm(mats.alone[1], rays.index_select(0, mats.single_in))
            x = part if x is None else x + part
        return x.T.reshape(channels, *self.image_shape)

    def _project_grid(self, x: torch.Tensor) -> torch.Tensor:
        """(C, N, N) -> (C, V, D): bilinear samples along each ray, summed."""
        out = x.new_empty(x.shape[0], self.n_views, self.n_detectors)
        image = x.unsqueeze(0)
        for v0, v1 in self._chunks(self._n_samples * self.n_detectors * (x.shape[0] + 2)):
            grid = self._grid("ray", v0, v1, x.dtype)
            # Views are the grid_sample batch; the image batch rides along as channels.
            samples = F.grid_sample(image.expand(v1 - v0, -1, -1, -1), grid, mode="bilinear",
                                    padding_mode="zeros", align_corners=True)
            out[:, v0:v1] = samples.sum(dim=2).transpose(0, 1)
        return out

    def _backproject_grid(self, y: torch.Tensor) -> torch.Tensor:
        """(C, V, D) -> (C, N, N): the transpose of :meth:`_project_grid`, same grids and weights."""
        channels = y.shape[0]
        x = y.new_zeros(channels, *self.image_shape)
        for v0, v1 in self._chunks(self._n_samples * self.n_detectors * (channels + 2)):
            grid = self._grid("ray", v0, v1, y.dtype)
            n = v1 - v0
            grad = y[:, v0:v1].transpose(0, 1).unsqueeze(2).expand(n, channels, self._n_samples, self.n_detectors)
            shape_only = y.new_zeros(()).expand(n, channels, *self.image_shape)
            gin, _ = torch.ops.aten.grid_sampler_2d_backward(
                grad, shape_only, grid, _BILINEAR, _ZEROS, True, [True, False])
            x += gin.sum(dim=0)
        return x

    def _backproject_pixel(self, q: torch.Tensor) -> torch.Tensor:
        """(C, V, D) -> (C, N, N): linear interpolation of each view at every pixel's projection."""
        channels = q.shape[0]
        x = q.new_zeros(channels, *self.image_shape)
        rows = q.transpose(0, 1).unsqueeze(2)  # (V, C, 1, D)
        for v0, v1 in self._chunks(self.image_size**2 * (channels + 2)):
            grid = self._grid("pixel", v0, v1, q.dtype)
            x += F.grid_sample(rows[v0:v1], grid, mode="bilinear", padding_mode="zeros",
                               align_corners=True).sum(dim=0)
        return x

    def _filter(self, y: torch.Tensor, name: str) -> torch.Tensor:
        """Filter each view along the detector axis (zero-padded to avoid circular wrap)."""
        size = _padded_length(self.n_detectors)
        key = ("filter", name, y.dtype)
        if key not in self._grids:
            self._grids[key] = torch.as_tensor(fbp_filter(size, name), dtype=y.dtype, device=self.device)
        spectrum = torch.fft.rfft(y, n=size, dim=-1) * self._grids[key]
        return torch.fft.irfft(spectrum, n=size, dim=-1)[..., : self.n_detectors]
