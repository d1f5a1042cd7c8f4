"""L+S on a synthetic low-rank + sparse series: it recovers the series and separates both parts."""

import numpy as np
import pytest

from napari_unrollrecon.engine import problems, registry, stream
from napari_unrollrecon.methods.base import LiveParams
from napari_unrollrecon.physics.masks import make_mask


def _series(t=12, n=32):
    yy, xx = np.mgrid[:n, :n]
    static = ((xx - 16) ** 2 + (yy - 16) ** 2 < 100).astype(np.float32) * 0.8 + 0.1
    low = np.repeat(static[None], t, 0)  # rank 1 Casorati matrix, spread over the whole image
    sparse = np.zeros((t, n, n), np.float32)
    # small blobs, each oscillating at its own temporal frequency: few pixels and few temporal
    # Fourier coefficients (sparse), but together of rank 5 (not low rank)
    for f, (cy, cx) in enumerate([(8, 8), (8, 22), (22, 9), (24, 24), (15, 27)], start=1):
        blob = (xx - cx) ** 2 + (yy - cy) ** 2 <= 2
        for i in range(t):
            sparse[i][blob] = 0.4 * np.cos(2 * np.pi * f * i / t + f)
    return low, sparse


def _run(problem, **params):
    spec = registry.get("lplus-s")
    return stream.collect(spec.start(problem, LiveParams(spec.params, params)))


def test_separates_the_low_rank_and_the_sparse_part():
    low, sparse = _series()
    x0 = (low + sparse).astype(np.complex64)
    problem = problems.mri_from_image(x0, np.ones(x0.shape, np.float32), noise=0.002, seed=3)
    updates, _result = _run(problem, lam_l=0.01, lam_s=0.1, iterations=100)
    parts = updates[-1].extras
    assert np.linalg.norm(parts["L"] - low) / np.linalg.norm(low) < 0.03
    # S is shrunk by its threshold (≈ lam_s of the largest dynamic coefficient), nothing else
    assert np.linalg.norm(parts["S"] - np.abs(sparse)) / np.linalg.norm(sparse) < 0.2
    blob = np.abs(sparse).max(0) > 0
    assert np.abs(parts["S"][:, ~blob]).max() < 0.02  # the static part stays out of S


def test_undersampled_series_beats_zero_filling():
    low, sparse = _series()
    x0 = (low + sparse).astype(np.complex64)
    problem = problems.mri_from_image(x0, make_mask("random", x0.shape, 0.4, seed=1))
    _updates, result = _run(problem, lam_l=0.05, lam_s=0.2, iterations=100)
    rel = np.linalg.norm(result.complex_image - x0) / np.linalg.norm(x0)
    zf = np.linalg.norm(problem.operator.AH(problem.y).numpy() - x0) / np.linalg.norm(x0)
    assert rel < 0.3 * zf, (rel, zf)


def test_refuses_single_images():
    problem = problems.mri_from_image(np.ones((16, 16), np.float32), make_mask("random", (16, 16), 0.5))
    with pytest.raises(ValueError, match="handles dmri data"):
        stream.run(registry.get("lplus-s"), problem)
