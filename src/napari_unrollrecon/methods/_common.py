"""Pieces shared by the classical baselines: initial estimate, wavelets (finite differences:
physics.differences)."""

from __future__ import annotations

import numpy as np
import torch

from napari_unrollrecon.methods.base import Param


# ----------------------------------------------------------------------- shared parameters
def relative_weight(mri: float, ct: float, what: str) -> Param:
    """The live regularisation weight λ, relative to the data scale, with a CT-specific default."""
    return Param("lam", mri, low=1e-6, high=1.0, live=True, log=True, relative=True, by_modality=(("ct", ct),),
                 label="λ (× data scale)", help=f"{what} weight relative to the peak of the initial image")


ITERATIONS = Param("iterations", 100, kind="int", low=1, high=5000, label="iterations")
NONNEG = Param("nonneg", True, kind="bool", label="non-negative (CT)", modalities=("ct",))


def begin(problem, params):
    """What every iterative baseline begins with: (iterations, UpdateMaker, A/‖A‖, Aᴴ/‖A‖,
    y/‖A‖, whether the operator's images are real — CT)."""
    from napari_unrollrecon.methods.base import UpdateMaker

    iters = int(params["iterations"])
    A, AH, y = normalised_operator(problem)
    return iters, UpdateMaker(problem, params, total=iters), A, AH, y, problem.operator.real_valued


def classical_spec(name: str, title: str, weight: Param, params: tuple, **kw):
    """The MethodSpec of an iterative baseline for every modality: its relative weight λ, the
    iteration count, its own parameters, then the CT non-negativity switch."""
    from napari_unrollrecon.methods.base import MethodSpec

    return MethodSpec(name=name, title=title, modalities=("mri", "dmri", "ct"),
                      params=(weight, ITERATIONS, *params, NONNEG), **kw)


def initial_estimate(problem) -> torch.Tensor:
    """The operator's cheap estimate on the data scale (Aᴴy for MRI, FBP for CT)."""
    return problem.operator.initial_estimate(problem.y)


def normalised_operator(problem):
    """(A/‖A‖, y/‖A‖): the data term ½‖Ax − y‖²/‖A‖² has unit curvature in every modality,
    so one relative weight means the same thing for MRI (‖A‖ = 1) and CT."""
    L = float(problem.operator.norm())
    op = problem.operator
    return (lambda x: op.A(x) / L), (lambda y: op.AH(y) / L), problem.y / L


# ----------------------------------------------------------------------- orthonormal wavelets
# Daubechies orthonormal scaling filters (published coefficients, Daubechies 1988).
_DAUBECHIES = {
    "haar": [0.7071067811865476, 0.7071067811865476],
    "db2": [-0.12940952255092145, 0.22414386804185735, 0.836516303737469, 0.48296291314469025],
    "db4": [
        -0.010597401784997278, 0.032883011666982945, 0.030841381835986965, -0.18703481171888114,
        -0.02798376941698385, 0.6308807679295904, 0.7148465705525415, 0.23037781330885523,
    ],
}
WAVELETS = tuple(_DAUBECHIES)


def _analysis_matrix(n: int, wavelet: str) -> np.ndarray:
    """One level of the periodic orthonormal DWT of length ``n`` (even) as an n×n matrix.

    Rows 0..n/2-1 are low-pass, n/2..n-1 high-pass; the matrix is orthogonal, so synthesis is
    its transpose. A matrix (not a convolution loop) keeps this exact and fast for n ≤ 1024.
    """
    h = np.asarray(_DAUBECHIES[wavelet], dtype=np.float64)
    g = np.array([(-1) ** k * h[len(h) - 1 - k] for k in range(len(h))])
    W = np.zeros((n, n))
    for k in range(n // 2):
        for j in range(len(h)):
            W[k, (2 * k + j) % n] += h[j]
            W[n // 2 + k, (2 * k + j) % n] += g[j]
    return W


class Wavelet2D:
    """Multi-level periodic orthonormal 2D DWT over the last two axes (sizes padded to 2^levels)."""

    def __init__(self, shape, wavelet: str = "db4", levels: int = 4, device=None):
        if wavelet not in _DAUBECHIES:
            raise ValueError(f"unknown wavelet {wavelet!r}; choose one of {WAVELETS}")
        self.shape = tuple(shape[-2:])
        m = 2**levels
        self.padded = tuple(-(-s // m) * m for s in self.shape)
        self.levels = levels
        self.mats = [
            tuple(
                torch.as_tensor(_analysis_matrix(s // 2**lv, wavelet), dtype=torch.float32, device=device)
                for s in self.padded
            )
            for lv in range(levels)
        ]

    def _pad(self, x):
        ph, pw = self.padded[0] - self.shape[0], self.padded[1] - self.shape[1]
        return torch.nn.functional.pad(x, (0, pw, 0, ph)) if ph or pw else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self._pad(x).clone()
        for lv, (Wh, Ww) in enumerate(self.mats):
            h, w = Wh.shape[0], Ww.shape[0]
            blk = c[..., :h, :w]
            Wh_, Ww_ = (Wh.to(blk.dtype), Ww.to(blk.dtype))
            c[..., :h, :w] = Wh_ @ blk @ Ww_.T
        return c

    def inverse(self, c: torch.Tensor) -> torch.Tensor:
        x = c.clone()
        for Wh, Ww in reversed(self.mats):
            h, w = Wh.shape[0], Ww.shape[0]
            blk = x[..., :h, :w]
            Wh_, Ww_ = (Wh.to(blk.dtype), Ww.to(blk.dtype))
            x[..., :h, :w] = Wh_.T @ blk @ Ww_
        return x[..., : self.shape[0], : self.shape[1]]

    def detail_mask(self, device=None) -> torch.Tensor:
        """1 on detail coefficients, 0 on the coarsest approximation (which is not penalised)."""
        m = torch.ones(self.padded, device=device)
        h, w = self.padded[0] >> self.levels, self.padded[1] >> self.levels
        m[:h, :w] = 0
        return m


def soft_threshold(z: torch.Tensor, t) -> torch.Tensor:
    """Soft thresholding of real or complex values (shrinks the magnitude, keeps the phase)."""
    mag = z.abs()
    return z * torch.clamp(1 - t / mag.clamp_min(1e-12), min=0)
