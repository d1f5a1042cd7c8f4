"""DD-UGM's k-space ramp weighting and its inverse."""

import math

import torch

from napari_unrollrecon.physics import kweight


def test_ramp_matches_the_authors_on_192_and_vanishes_at_dc():
    w = kweight.ramp((192, 192))
    assert w[96, 96] == 0
    # authors: 0.011·|k|/96 on unnormalised k-space = 0.011·192·|k|/96 on orthonormal k-space
    assert math.isclose(float(w[96, 96 + 48]), 0.011 * 192 * 48 / 96, rel_tol=1e-6)
    assert math.isclose(float(w[0, 96]), 0.011 * 192, rel_tol=1e-6)
    w2 = kweight.ramp((64, 128))  # any grid: ρ in fractions of the half-grid per axis
    assert math.isclose(float(w2[0, 64]), float(w2[32, 0]), rel_tol=1e-6)


def test_unweight_inverts_weight_and_takes_dc_from_the_fallback():
    g = torch.Generator().manual_seed(0)
    k = torch.complex(torch.randn(3, 16, 16, generator=g), torch.randn(3, 16, 16, generator=g))
    w = kweight.ramp(k.shape)
    back = kweight.unweight(kweight.weight(k, w), w, fallback=k)
    torch.testing.assert_close(back, k)
    other = kweight.unweight(kweight.weight(k, w), w, fallback=torch.zeros_like(k))
    assert torch.all(other[:, 8, 8] == 0) and torch.allclose(other[:, 0, 0], k[:, 0, 0])
