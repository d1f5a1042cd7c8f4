"""Block-Hankel low rank: the fast (Gram) projection equals the exact truncated SVD projection."""

import pytest
import torch

from napari_unrollrecon.priors.lowrank import (
    casorati,
    from_hankel,
    hankel,
    hankel_project,
    singular_value_threshold,
    top_right_vectors,
)


def _frames(t=4, h=14, w=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.complex(torch.randn(t, h, w, generator=g), torch.randn(t, h, w, generator=g))


def test_hankel_shape_and_round_trip():
    k = _frames()
    h = hankel(k, 3)
    assert h.shape == ((14 - 2) * (12 - 2), 4 * 9)
    # a window's entries are the k-space values it covers, frame-major
    assert h[0, 0] == k[0, 0, 0] and h[0, 9 + 4] == k[1, 1, 1] and h[1, 0] == k[0, 0, 1]
    torch.testing.assert_close(from_hankel(h, k.shape, 3), k)


def test_gram_projection_equals_exact_truncated_svd():
    k = _frames(seed=1)
    h = hankel(k, 3)
    for r in (1, 5, 20):
        v_svd, v_gram = top_right_vectors(h, r, "svd"), top_right_vectors(h, r, "gram")
        torch.testing.assert_close(h @ v_gram @ v_gram.mH, h @ v_svd @ v_svd.mH, atol=2e-4, rtol=1e-4)
        exact = torch.linalg.svd(h, full_matrices=False)
        best = (exact.U[:, :r] * exact.S[:r].to(h.dtype)) @ exact.Vh[:r]  # Eckart-Young
        torch.testing.assert_close(h @ v_gram @ v_gram.mH, best, atol=2e-4, rtol=1e-4)
    torch.testing.assert_close(hankel_project(k, 7, 3, "gram"), hankel_project(k, 7, 3, "svd"), atol=2e-4, rtol=1e-4)


def test_projection_keeps_a_low_rank_series_and_reduces_noise():
    # a series whose frames are one k-space pattern times a per-frame factor: Hankel rank ≤ 9 per
    # window structure, so a rank-9 projection keeps it exactly
    base = _frames(1, 16, 16, seed=2)[0]
    k = torch.stack([base * (1 + 0.3 * t) for t in range(5)])
    torch.testing.assert_close(hankel_project(k, 9, 3), k, atol=1e-4, rtol=1e-4)
    noisy = k + 0.3 * _frames(5, 16, 16, seed=3)
    assert (hankel_project(noisy, 9, 3) - k).norm() < 0.6 * (noisy - k).norm()


def test_default_rank_is_one_and_a_half_window_areas():
    k = _frames(6, 12, 12, seed=4)
    h = hankel(k, 6)
    v = top_right_vectors(h, 54)
    torch.testing.assert_close(hankel_project(k, window=6), from_hankel(h @ v @ v.mH, k.shape, 6), atol=2e-4, rtol=1e-4)
    with pytest.raises(ValueError, match="unknown low-rank method"):
        top_right_vectors(h, 3, "qr")


def test_singular_value_threshold():
    x = _frames(5, 6, 6, seed=5)
    low, s = singular_value_threshold(x, 0.0)
    torch.testing.assert_close(low, x, atol=1e-5, rtol=1e-5)
    low, s = singular_value_threshold(x, float(s[1]))
    assert torch.linalg.matrix_rank(casorati(low)) == 1
