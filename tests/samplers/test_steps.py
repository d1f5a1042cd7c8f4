"""Predictor and corrector steps: the registry, the noise-free mean, and the noise temperature."""

from __future__ import annotations

import pytest
import torch

from napari_unrollrecon.samplers import steps as S


def _score(x, sigma):  # the score of N(0, I) smoothed by σ: −x / (1 + σ²)
    return -x / (1 + sigma**2)


@pytest.mark.parametrize("name,table,kw", [("reverse_diffusion", S.PREDICTORS, {"sigma_next": 0.3}),
                                           ("langevin", S.CORRECTORS, {"snr": 0.3}),
                                           ("annealed_langevin", S.CORRECTORS, {"eps": 1e-3})])
def test_temperature_scales_only_the_fresh_noise(name, table, kw):
    step = S.get(table, name)
    x = torch.randn(2, 2, 16, 16, generator=torch.Generator().manual_seed(0))
    out = {}
    for t in (1.0, 0.5, 0.0):
        out[t] = step(x, 0.5, _score, torch.Generator().manual_seed(1), temperature=t, **kw)
    torch.testing.assert_close(out[1.0][1], out[0.0][1])  # the same mean x̄ at every temperature
    torch.testing.assert_close(out[0.0][0], out[0.0][1])  # T = 0: no fresh noise
    noise1, noise_half = out[1.0][0] - out[1.0][1], out[0.5][0] - out[0.5][1]
    assert float(noise1.abs().max()) > 1e-3
    torch.testing.assert_close(noise_half, 0.5 * noise1)  # the same draw, half as large


def test_unknown_step_names_the_choices():
    with pytest.raises(ValueError, match="reverse_diffusion"):
        S.get(S.PREDICTORS, "euler")
