import numpy as np
import pytest
import torch

from napari_unrollrecon.physics.mri import MRIOperator


def _rand(shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.complex(torch.randn(shape, generator=g, dtype=torch.float64), torch.randn(shape, generator=g, dtype=torch.float64))


@pytest.mark.parametrize("shape,mshape", [((24, 20), (24, 20)), ((5, 24, 20), (5, 24, 20)), ((5, 24, 20), (24, 20))])
def test_adjoint_inner_product(shape, mshape):
    mask = (torch.rand(mshape, generator=torch.Generator().manual_seed(1)) < 0.4).float()
    op = MRIOperator(mask)
    x, y = _rand(shape, 2).to(torch.complex64), _rand(shape, 3).to(torch.complex64)
    lhs = torch.vdot(op.A(x).flatten(), y.flatten())
    rhs = torch.vdot(x.flatten(), op.AH(y).flatten())
    assert abs(lhs - rhs) / abs(lhs) < 1e-5


def test_per_frame_masks_are_applied_per_frame():
    mask = torch.zeros(2, 8, 8)
    mask[0, :, 0] = 1
    mask[1, :, 4] = 1
    y = MRIOperator(mask).A(torch.ones(2, 8, 8))
    assert y[0, :, 1:].abs().max() == 0 and y[1, :, :4].abs().max() == 0


def test_norm_is_one_and_dc_is_idempotent():
    mask = (torch.rand(16, 16, generator=torch.Generator().manual_seed(4)) < 0.3).float()
    op = MRIOperator(mask)
    x = _rand((16, 16)).to(torch.complex64)
    assert torch.linalg.vector_norm(op.A(x)) <= torch.linalg.vector_norm(x) * (1 + 1e-6)
    y = op.A(x)
    x1 = op.data_consistency(torch.zeros_like(x), y)
    assert torch.allclose(op.A(x1), y, atol=1e-5)
    assert torch.allclose(op.data_consistency(x1, y), x1, atol=1e-5)
    # soft consistency with weight w: sampled k = (y + w k) / (1 + w)
    x2 = op.data_consistency(torch.zeros_like(x), y, weight=1.0)
    assert torch.allclose(op.A(x2), y / 2, atol=1e-5)


def test_shape_mismatch_is_explained():
    op = MRIOperator(np.ones((16, 16)))
    with pytest.raises(ValueError, match=r"mask shape \(16, 16\) does not match data shape \(8, 8\)"):
        op.A(torch.zeros(8, 8))


def test_device_is_honoured():
    op = MRIOperator(np.ones((4, 4)), device="cpu")
    assert op.mask.device.type == "cpu" and op.to("cpu").device.type == "cpu"
