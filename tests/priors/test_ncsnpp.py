"""The NCSN++-style score network of DD-UGM: parameter count, shapes, σ conditioning, padding."""

import pytest
import torch

from napari_unrollrecon.methods import dd_ugm, dd_ugm_models
from napari_unrollrecon.priors import ncsnpp
from napari_unrollrecon.priors.blocks import parameter_count


def _count(channels, nf, ch_mult, num_res_blocks, attn_levels, space_to_depth=1, **_):
    """The parameters of the layers the module docstring lists, counted by hand."""
    def conv(i, o, k):
        return i * o * k * k + o

    def gn(c):
        return 2 * c

    temb = 4 * nf

    def res(i, o, resample=False):
        return gn(i) + conv(i, o, 3) + temb * o + o + gn(o) + conv(o, o, 3) + (conv(i, o, 1) if i != o or resample else 0)

    def attn(c):
        return gn(c) + conv(c, 3 * c, 1) + conv(c, c, 1)

    total = nf * temb + temb + temb * temb + temb + conv(channels * space_to_depth**2, nf, 3)
    widths, c = [nf], nf
    for lvl, m in enumerate(ch_mult):
        for _ in range(num_res_blocks):
            total += res(c, nf * m) + (attn(nf * m) if lvl in attn_levels else 0)
            c = nf * m
            widths.append(c)
        if lvl < len(ch_mult) - 1:
            total += res(c, c, True)
            widths.append(c)
    total += 2 * res(c, c) + attn(c)
    for lvl in reversed(range(len(ch_mult))):
        for _ in range(num_res_blocks + 1):
            total += res(c + widths.pop(), nf * ch_mult[lvl]) + (attn(nf * ch_mult[lvl]) if lvl in attn_levels else 0)
            c = nf * ch_mult[lvl]
        if lvl > 0:
            total += res(c, c, True)
    return total + gn(c) + conv(c, channels * space_to_depth**2, 3)


@pytest.mark.parametrize("preset", ["paper", "cpu"])
def test_parameter_count(preset):
    config = dd_ugm_models.CONFIGS[preset]
    model = ncsnpp.build(config)
    assert parameter_count(model) == _count(**config)
    if preset == "paper":  # the authors report ≈65 M (NCSN++ with FIR and progressive branches)
        assert parameter_count(model) == 65_987_970
    else:
        assert parameter_count(model) < 1.5e6


def test_shapes_and_sigma_conditioning():
    torch.manual_seed(0)
    model = ncsnpp.build({**dd_ugm_models.CONFIGS["cpu"], "nf": 8}).eval()
    for p in model.parameters():  # a non-trivial network (zero-initialised convs would hide σ)
        torch.nn.init.normal_(p, std=0.05)
    x = torch.randn(3, 2, 32, 48)
    with torch.no_grad():
        a = model(x, torch.tensor([0.1, 0.1, 0.1]))
        b = model(x, torch.tensor([0.1, 1.0, 0.1]))
    assert a.shape == x.shape
    torch.testing.assert_close(a[0], b[0]) and torch.testing.assert_close(a[2], b[2])
    assert not torch.allclose(a[1], b[1])  # σ changes the output of its own sample only
    with pytest.raises(ValueError, match="divisible by 16"):
        model(torch.randn(1, 2, 30, 32), 0.1)
    # the sampler's wrapper pads any grid to the network's multiple and crops back
    assert dd_ugm.padded(model)(torch.randn(2, 2, 30, 22), torch.tensor([0.2, 0.2])).shape == (2, 2, 30, 22)


def test_output_scaled_by_sigma():
    torch.manual_seed(1)
    model = ncsnpp.build({**dd_ugm_models.CONFIGS["cpu"], "nf": 8}).eval()
    x = torch.randn(1, 2, 16, 16)
    with torch.no_grad():  # at initialisation the network is (nearly) σ-independent before ÷σ
        ratio = (model(x, 0.5).norm() / model(x, 0.05).norm()).item()
    assert 0.05 < ratio < 0.2
