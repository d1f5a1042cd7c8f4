import numpy as np
import pytest
import torch

from napari_unrollrecon.physics.fft import (
    fft2c,
    ifft2c,
    kspace_from_convention,
    kspace_to_convention,
    mask_to_centred,
    mask_to_uncentred,
)


def _img(shape, seed=0):
    g = np.random.default_rng(seed)
    return torch.as_tensor(g.standard_normal(shape) + 1j * g.standard_normal(shape), dtype=torch.complex128)


@pytest.mark.parametrize("shape", [(16, 16), (15, 22), (3, 8, 9)])
def test_fft2c_is_unitary_and_inverted(shape):
    x = _img(shape)
    k = fft2c(x)
    assert torch.allclose(ifft2c(k), x, atol=1e-12)
    assert torch.allclose(torch.linalg.vector_norm(k), torch.linalg.vector_norm(x))


@pytest.mark.parametrize("shape", [(16, 16), (15, 21)])
def test_dc_is_at_the_centre(shape):
    k = fft2c(torch.ones(shape, dtype=torch.complex128))
    peak = np.unravel_index(int(k.abs().argmax()), shape)
    assert peak == (shape[0] // 2, shape[1] // 2)
    assert k.abs().sum() == pytest.approx(k.abs().max().item())


@pytest.mark.parametrize("shape", [(16, 16), (15, 21)])
def test_centred_image_stays_centred(shape):
    """A point at the array centre has a flat-phase spectrum (fastMRI convention)."""
    x = torch.zeros(shape, dtype=torch.complex128)
    x[shape[0] // 2, shape[1] // 2] = 1
    k = fft2c(x)
    assert torch.allclose(k.imag, torch.zeros_like(k.imag), atol=1e-12)
    assert (k.real > 0).all()


@pytest.mark.parametrize("conv,norm", [("unnormalised-uncentred", "backward"), ("ortho-uncentred", "ortho")])
@pytest.mark.parametrize("shape", [(16, 16), (15, 21)])
def test_converters_match_published_conventions(conv, norm, shape):
    x = _img(shape, 1)
    theirs = torch.fft.fft2(x, norm=norm)
    ours = kspace_from_convention(theirs, conv)
    assert torch.allclose(ours, fft2c(x), atol=1e-9)
    assert torch.allclose(kspace_to_convention(ours, conv), theirs, atol=1e-9)


def test_unknown_convention_is_named():
    with pytest.raises(ValueError, match="unknown FFT convention 'bart'"):
        kspace_from_convention(np.zeros((4, 4)), "bart")


def test_uncentred_mask_gives_same_zero_filled_magnitude():
    """CGPD/ISTA-Net code does |ifft2(M_unc * fft2(x))|; with the mask centred ours is identical."""
    g = np.random.default_rng(2)
    x = g.random((32, 32))
    m_unc = (g.random((32, 32)) < 0.3).astype(np.float64)
    m_unc[0, 0] = 1
    theirs = np.abs(np.fft.ifft2(np.fft.fft2(x) * m_unc))
    mc = torch.as_tensor(mask_to_centred(m_unc))
    ours = ifft2c(mc * fft2c(torch.as_tensor(x, dtype=torch.complex128))).abs().numpy()
    np.testing.assert_allclose(ours, theirs, atol=1e-12)
    assert mc[16, 16] == 1
    np.testing.assert_array_equal(mask_to_uncentred(mask_to_centred(m_unc)), m_unc)
