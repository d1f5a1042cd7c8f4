"""The TV proximal step: it solves its problem (optimality against perturbations), shrinks the
variation, leaves constant series alone and resumes from a kept dual."""

import torch

from napari_unrollrecon.priors.tv import tv, tv_prox


def _series(seed=0):
    g = torch.Generator().manual_seed(seed)
    clean = torch.zeros(4, 24, 24, dtype=torch.complex64)
    clean[:, 6:18, 8:16] = 1.0 + 0.5j
    noise = torch.complex(torch.randn(clean.shape, generator=g), torch.randn(clean.shape, generator=g))
    return clean, clean + 0.1 * noise


def _objective(x, z, lam):
    return 0.5 * float((x - z).abs().pow(2).sum()) + lam * tv(x)


def test_the_prox_minimises_its_objective():
    _, z = _series()
    lam = 0.05
    x = tv_prox(z, lam, iterations=400)
    best = _objective(x, z, lam)
    g = torch.Generator().manual_seed(1)
    for scale in (1e-2, 1e-3):
        for _ in range(5):
            d = torch.complex(torch.randn(x.shape, generator=g), torch.randn(x.shape, generator=g)) * scale
            assert _objective(x + d, z, lam) >= best - 1e-4
    assert _objective(x, z, lam) < _objective(z, z, lam)  # better than doing nothing


def test_it_denoises_and_shrinks_the_variation():
    clean, z = _series()
    x = tv_prox(z, 0.05, iterations=100)
    assert tv(x) < 0.5 * tv(z)
    assert (x - clean).abs().pow(2).mean() < 0.5 * (z - clean).abs().pow(2).mean()


def test_constant_series_and_zero_weight_are_left_alone():
    c = torch.full((3, 8, 8), 0.7 + 0.1j, dtype=torch.complex64)
    assert torch.allclose(tv_prox(c, 0.1), c, atol=1e-6)
    _, z = _series()
    assert tv_prox(z, 0.0) is z


def test_a_kept_dual_continues_the_solve():
    _, z = _series()
    ref = tv_prox(z, 0.05, iterations=300)
    state = {}
    for _ in range(15):
        x = tv_prox(z, 0.05, iterations=20, state=state)
    assert state["q"].shape == (3, *z.shape)
    assert (x - ref).abs().max() < 1e-3
    spatial = {}  # the frames are differenced only when time_weight > 0
    assert tv_prox(z, 0.05, iterations=2, time_weight=0.0, state=spatial).shape == z.shape
    assert spatial["q"].shape[0] == 2
