"""L1-wavelet reconstruction by FISTA (Beck and Teboulle 2009) with random cycle spinning.

Solves  min_x ½‖Ax − y‖²/‖A‖² + λ‖Ψx‖₁  with Ψ an orthonormal Daubechies DWT (db4, 4 levels,
periodic) applied per frame; the coarsest approximation band is not penalised. As in BART's
`pics -R W`, the image is shifted by a random offset before each shrinkage (cycle spinning), which
removes the blocky artefacts of a fixed decimated wavelet. λ = ``lam``·scale (peak of the initial
estimate). Each iteration is one streamed stage; ``lam`` may change mid-run.
"""

from __future__ import annotations

import torch

from napari_unrollrecon.methods._common import (
    begin,
    WAVELETS,
    Wavelet2D,
    classical_spec,
    initial_estimate,
    relative_weight,
    soft_threshold,
)
from napari_unrollrecon.methods.base import Param


def _shrink(x, wt, detail, thresh, shift):
    """prox of thresh·‖Ψ S x‖₁ for a circular shift S (orthonormal, so prox = Sᵀ Ψᵀ soft Ψ S)."""
    xs = torch.roll(x, shifts=shift, dims=(-2, -1))
    c = wt.forward(xs)
    c = detail * soft_threshold(c, thresh) + (1 - detail) * c
    return torch.roll(wt.inverse(c), shifts=(-shift[0], -shift[1]), dims=(-2, -1))


# The decorator (unlike a `with` block) restores grad mode around every yield, so a paused run
# never leaves autograd disabled in the consumer's thread.
@torch.no_grad()
def run(problem, params, cache=None, start=0):
    iters, make, A, AH, y, ct = begin(problem, params)
    rng = torch.Generator().manual_seed(int(params["seed"]))
    x = initial_estimate(problem)
    x = x.real if ct else x
    wt = Wavelet2D(x.shape, params["wavelet"], levels=int(params["levels"]), device=x.device)
    detail = wt.detail_mask(x.device)
    z, t = x.clone(), 1.0
    for it in range(1, iters + 1):
        thresh = params["lam"] * problem.scale
        g = z - AH(A(z) - y)  # step 1/L with L = 1 after normalisation
        g = g.real if ct else g
        shift = tuple(int(v) for v in torch.randint(0, 2 ** wt.levels, (2,), generator=rng)) if params["cycle_spin"] else (0, 0)
        x_new = _shrink(g, wt, detail, thresh, shift)
        if ct and params["nonneg"]:
            x_new = x_new.clamp_min(0)
        t_new = (1 + (1 + 4 * t * t) ** 0.5) / 2
        z = x_new + ((t - 1) / t_new) * (x_new - x)
        x, t = x_new, t_new
        yield make(it, x, label=f"L1-wavelet iteration {it}/{iters}")
    return make.result(SPEC.name, x, stages=iters)


SPEC = classical_spec(
    "l1-wavelet", "L1-wavelet (FISTA)", relative_weight(0.001, 3e-5, "wavelet L1"),
    (
        Param("wavelet", "db4", kind="choice", choices=WAVELETS, label="wavelet"),
        Param("levels", 4, kind="int", low=1, high=6, label="levels"),
        Param("cycle_spin", True, kind="bool", label="random cycle spinning"),
        Param("seed", 0, kind="int", low=0, high=2**31 - 1, label="shift seed"),
    ),
    run=run,
    description="Orthonormal Daubechies wavelets, FISTA with random shifts.",
    reference="A. Beck, M. Teboulle, SIAM J. Imaging Sci. 2:183-202 (2009); Lustig, Donoho, Pauly, MRM 58:1182 (2007).",
)
