"""learned.sample_masks: a family, a ratio and a pooled mask per sample; published mask files."""

import numpy as np
import pytest
import scipy.io
import torch

from napari_unrollrecon.methods.learned import sample_masks
from napari_unrollrecon.physics.masks import MaskError, make_mask


def test_each_sample_gets_its_family_and_ratio():
    rng = torch.Generator().manual_seed(0)
    draw = sample_masks(40, (32, 32), ["cartesian", "radial"], {"cartesian": [0.2, 0.4], "radial": [0.3]}, rng)
    assert draw.mask.shape == (40, 32, 32) and draw.mask.dtype == torch.float32
    assert set(draw.family) == {"cartesian", "radial"}
    for m, r, f in zip(draw.mask, draw.ratio.tolist(), draw.family):
        allowed = (0.2, 0.4) if f == "cartesian" else (0.3,)
        assert min(abs(r - a) for a in allowed) < 1e-6
        assert abs(float(m.mean()) - r) < 0.05
        if f == "cartesian":  # whole columns
            assert torch.equal(m, m[:1].expand_as(m))
    assert len(set(draw.ratio.tolist())) == 3


def test_draws_are_reproducible_from_the_generator():
    a = sample_masks(6, (16, 16), "random", [0.25], torch.Generator().manual_seed(5), pool=8)
    b = sample_masks(6, (16, 16), "random", [0.25], torch.Generator().manual_seed(5), pool=8)
    c = sample_masks(6, (16, 16), "random", [0.25], torch.Generator().manual_seed(6), pool=8)
    assert torch.equal(a.mask, b.mask) and not torch.equal(a.mask, c.mask)
    with pytest.raises(ValueError, match="no sampling ratios for mask families \\['radial'\\]"):
        sample_masks(1, (16, 16), ["radial"], {"cartesian": [0.2]}, torch.Generator())


def test_file_masks_are_loaded_per_ratio_and_centred(tmp_path):
    for pct in (10, 30):
        centred = make_mask("cartesian", (32, 32), pct / 100, seed=pct)
        scipy.io.savemat(tmp_path / f"mask_{pct}.mat", {"mask_matrix": np.fft.ifftshift(centred).astype(np.uint8)})
    family = f"file:{tmp_path}/mask_{{pct}}.mat"
    draw = sample_masks(10, (32, 32), [family], [0.1, 0.3], torch.Generator().manual_seed(1))
    for m, r in zip(draw.mask, draw.ratio.tolist()):
        pct = round(r * 100)
        expected = make_mask("cartesian", (32, 32), pct / 100, seed=pct)
        assert np.array_equal(m.numpy(), expected)
    with pytest.raises(MaskError, match="train on whole images"):
        sample_masks(1, (16, 16), [family], [0.1], torch.Generator())
