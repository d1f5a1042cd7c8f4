"""Low-rank projections: the block-Hankel step of DD-UGM and singular-value thresholding (L+S).

Block Hankel (DD-UGM, after annihilating-filter methods such as ALOHA): every w×w window of every
frame's k-space is a row segment, the T frames side by side, so the matrix is
P × (T·w²), P = (H − w + 1)(W − w + 1) window positions (34,969 × 576 for 16 frames of 192²).
Cine k-space is strongly linearly predictable across windows and frames, so the matrix is close
to low rank; DD-UGM keeps its top ⌊1.5·w²⌋ singular values and averages the windows back.

The projection only needs the top right singular vectors V_r, and those are the top eigenvectors
of the small Gram matrix HᴴH ((T·w²)², 576² here): ``method="gram"`` forms it with one matmul and
one Hermitian eigendecomposition instead of an SVD of the tall matrix (``method="svd"``, kept for
the test that the two agree). H·V_r·V_rᴴ is the exact rank-r projection in both cases.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def hankel(k: torch.Tensor, window: int = 6) -> torch.Tensor:
    """Complex frames (T, H, W) → block-Hankel matrix (P, T·window²), rows = window positions."""
    t = k.shape[0]
    ri = torch.view_as_real(k.to(torch.complex64)).permute(0, 3, 1, 2)  # (T, 2, H, W)
    cols = F.unfold(ri, window)  # (T, 2·w², P)
    cols = cols.view(t, 2, window * window, -1)
    z = torch.complex(cols[:, 0], cols[:, 1])  # (T, w², P)
    return z.permute(2, 0, 1).reshape(z.shape[-1], t * window * window)


def from_hankel(h: torch.Tensor, shape, window: int = 6) -> torch.Tensor:
    """Average a block-Hankel matrix back into frames (T, H, W): each k-space point is the mean
    of its copies (the adjoint of :func:`hankel` divided by the copy counts)."""
    t, hh, ww = shape
    z = h.reshape(-1, t, window * window).permute(1, 2, 0)  # (T, w², P)
    ri = torch.stack([z.real, z.imag], 1).reshape(t, 2 * window * window, -1)
    summed = F.fold(ri, (hh, ww), window)  # (T, 2, H, W)
    ones = torch.ones(1, window * window, z.shape[-1], dtype=summed.dtype, device=summed.device)
    counts = F.fold(ones, (hh, ww), window)
    out = summed / counts
    return torch.complex(out[:, 0], out[:, 1])


def top_right_vectors(h: torch.Tensor, rank: int, method: str = "gram") -> torch.Tensor:
    """(N, r) orthonormal top-``rank`` right singular vectors of ``h`` (P, N)."""
    if method == "svd":
        return torch.linalg.svd(h, full_matrices=False).Vh[:rank].mH
    if method != "gram":
        raise ValueError(f"unknown low-rank method {method!r}; use 'gram' or 'svd'")
    gram = h.mH @ h
    _vals, vecs = torch.linalg.eigh(gram)  # ascending
    return vecs[:, -rank:].flip(-1)


def hankel_project(k: torch.Tensor, rank: int | None = None, window: int = 6, method: str = "gram") -> torch.Tensor:
    """DD-UGM's low-rank step on k-space frames (T, H, W): rank-``rank`` projection of the
    block-Hankel matrix (default ⌊1.5·window²⌋), averaged back to frames."""
    h = hankel(k, window)
    r = min(int(rank if rank is not None else 1.5 * window * window), min(h.shape))
    v = top_right_vectors(h, r, method)
    return from_hankel((h @ v) @ v.mH, k.shape, window).to(k.dtype)


def casorati(x: torch.Tensor) -> torch.Tensor:
    """(T, H, W) → (H·W, T): one column per frame."""
    return x.reshape(x.shape[0], -1).T


def singular_value_threshold(x: torch.Tensor, threshold: float, relative: bool = False):
    """Soft-threshold the singular values of the Casorati matrix of ``x`` (T, H, W) by
    ``threshold`` (× the largest one when ``relative``); returns the result and the singular
    values before thresholding."""
    u, s, vh = torch.linalg.svd(casorati(x), full_matrices=False)
    t = threshold * float(s[0]) if relative else threshold
    low = (u * (s - t).clamp_min(0).to(u.dtype)) @ vh
    return low.T.reshape(x.shape), s
