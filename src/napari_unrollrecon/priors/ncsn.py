"""Noise-conditional score network: NCSN RefineNet with conditional instance normalisation++.

The architecture of Song & Ermon's NCSN (v1, "CondRefineNetDilated"), as HGGDP uses it, written
from its description::

    x → 2x − 1 (``centered_input``) → 3×3 conv to ngf
    res1  2 conditional residual blocks, ngf                       full resolution
    res2  2 blocks ngf → 2ngf, the first with conv + 2×2 mean pool  ½ resolution
    res3  2 blocks 2ngf, dilation 2                                 ½
    res4  2 blocks 2ngf, dilation 4                                 ½
    refine1..4  RefineNet blocks (residual conv units, multi-resolution fusion, chained
                residual pooling), from res4 back up to res1
    CIN++ → ELU → 3×3 conv to the input channels

Every normalisation is CIN++ (conditional instance norm "plus"): instance-normalise each channel,
add α·(normalised channel means) back so colour shifts survive, then γ·h + β; γ, α, β are rows of
an embedding indexed by the noise level.

Deviations made for speed or for continuous σ, each a config switch (``paper`` keeps all off):

* ``interpolate``: σ between two ladder levels blends their embeddings linearly in log σ, so a
  sampler may use any σ in [σ_min, σ_max], not only the 10 levels (needed for warm starts and
  reverse-diffusion ladders of other lengths). At a ladder level it is exactly the paper's lookup.
* ``scale_by_sigma``: the output is divided by σ (NCSN v2's technique), so the network predicts
  the unit-variance noise; the loss is then equally hard at every level.
* ``space_to_depth``: the input is folded 2×2 into channels before the first conv and unfolded
  after the last, so every layer runs at ¼ of the pixels (the CPU configuration).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from napari_unrollrecon.priors.score import as_batch_sigma

PAPER = {"channels": 6, "ngf": 128, "n_levels": 10, "sigma_max": 1.0, "sigma_min": 0.01, "centered_input": True,
         "interpolate": False, "scale_by_sigma": False, "space_to_depth": False}


def sigma_ladder(sigma_max: float, sigma_min: float, n: int) -> torch.Tensor:
    """Geometric noise levels from σ_max down to σ_min (n ≥ 2), float64."""
    return torch.exp(torch.linspace(math.log(sigma_max), math.log(sigma_min), n, dtype=torch.float64))


class LevelWeights(nn.Module):
    """Maps σ (B,) to weights over the n ladder levels (B, n): one-hot at a level; with
    ``interpolate`` a linear blend of the two nearest levels in log σ, clamped at the ends."""

    def __init__(self, sigma_max: float, sigma_min: float, n: int, interpolate: bool):
        super().__init__()
        self.register_buffer("log_sigmas", sigma_ladder(sigma_max, sigma_min, n).log().float(), persistent=False)
        self.interpolate = interpolate

    def forward(self, sigma: torch.Tensor) -> torch.Tensor:
        ls = self.log_sigmas
        n = ls.numel()
        pos = (ls[0] - sigma.float().clamp_min(1e-12).log()) / (ls[0] - ls[-1]) * (n - 1)
        pos = pos.clamp(0, n - 1)
        if not self.interpolate:
            pos = pos.round()
        lo = pos.floor().long().clamp(max=n - 2)
        frac = (pos - lo).unsqueeze(1)
        w = torch.zeros(sigma.shape[0], n, device=sigma.device)
        w.scatter_(1, lo.unsqueeze(1), 1 - frac)
        w.scatter_add_(1, (lo + 1).unsqueeze(1), frac)
        return w


class CondInstanceNormPlus(nn.Module):
    """CIN++: γ·IN(x) + α·(normalised channel means) + β, (γ, α, β) from the level weights."""

    def __init__(self, c: int, n_levels: int):
        super().__init__()
        self.c = c
        embed = torch.empty(n_levels, 3 * c)
        embed[:, : 2 * c].normal_(1, 0.02)
        embed[:, 2 * c:] = 0
        self.embed = nn.Parameter(embed)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        mu = x.mean((2, 3))
        m, v = mu.mean(1, keepdim=True), mu.var(1, keepdim=True)
        mhat = (mu - m) / (v + 1e-5).sqrt()
        gamma, alpha, beta = (w @ self.embed).chunk(3, dim=1)
        h = F.instance_norm(x, eps=1e-5)
        return torch.addcmul((beta + gamma * alpha * mhat)[..., None, None], h, gamma[..., None, None])


def conv3x3(cin: int, cout: int, dilation: int = 1, bias: bool = True) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, padding=dilation, dilation=dilation, bias=bias)


class ConvMeanPool(nn.Module):
    """Conv then 2×2 mean pooling (the NCSN downsampling)."""

    def __init__(self, cin: int, cout: int, kernel: int = 3):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, padding=kernel // 2)

    def forward(self, x):
        return F.avg_pool2d(self.conv(x), 2)


class CondResBlock(nn.Module):
    """norm → ELU → conv → norm → ELU → conv, plus a (projected) shortcut.

    ``down``: without dilation the second conv and the shortcut mean-pool by 2; with dilation
    (res3, res4) "down" only changes the width, at the same resolution, as in NCSN."""

    def __init__(self, cin: int, cout: int, n_levels: int, down: bool = False, dilation: int = 1):
        super().__init__()
        mid = cin if down else cout
        self.norm1 = CondInstanceNormPlus(cin, n_levels)
        self.conv1 = conv3x3(cin, mid, dilation)
        self.norm2 = CondInstanceNormPlus(mid, n_levels)
        pool = down and dilation == 1
        self.conv2 = ConvMeanPool(mid, cout) if pool else conv3x3(mid, cout, dilation)
        if pool:
            self.shortcut = ConvMeanPool(cin, cout, kernel=1)
        elif down or cin != cout:
            self.shortcut = conv3x3(cin, cout, dilation) if dilation > 1 else nn.Conv2d(cin, cout, 1)
        else:
            self.shortcut = None

    def forward(self, x, w):
        h = self.conv1(F.elu(self.norm1(x, w)))
        h = self.conv2(F.elu(self.norm2(h, w)))
        return h + (x if self.shortcut is None else self.shortcut(x))


class CondRCU(nn.Module):
    """Residual conv unit: ``blocks`` × (``stages`` × (norm → ELU → conv, no bias) + skip)."""

    def __init__(self, c: int, blocks: int, stages: int, n_levels: int):
        super().__init__()
        self.norms = nn.ModuleList(CondInstanceNormPlus(c, n_levels) for _ in range(blocks * stages))
        self.convs = nn.ModuleList(conv3x3(c, c, bias=False) for _ in range(blocks * stages))
        self.stages = stages

    def forward(self, x, w):
        for i, (norm, conv) in enumerate(zip(self.norms, self.convs)):
            if i % self.stages == 0:
                skip = x
            x = conv(F.elu(norm(x, w)))
            if i % self.stages == self.stages - 1:
                x = x + skip
        return x


class CondMSF(nn.Module):
    """Multi-resolution fusion: norm → conv per input, upsampled to the finest, summed."""

    def __init__(self, cins: list[int], c: int, n_levels: int):
        super().__init__()
        self.norms = nn.ModuleList(CondInstanceNormPlus(ci, n_levels) for ci in cins)
        self.convs = nn.ModuleList(conv3x3(ci, c) for ci in cins)

    def forward(self, xs, shape, w):
        out = 0
        for x, norm, conv in zip(xs, self.norms, self.convs):
            h = conv(norm(x, w))
            out = out + F.interpolate(h, size=shape, mode="bilinear", align_corners=True)
        return out


class CondCRP(nn.Module):
    """Chained residual pooling: ELU, then ``stages`` × (norm → 5×5 mean pool → conv) summed in."""

    def __init__(self, c: int, stages: int, n_levels: int):
        super().__init__()
        self.norms = nn.ModuleList(CondInstanceNormPlus(c, n_levels) for _ in range(stages))
        self.convs = nn.ModuleList(conv3x3(c, c, bias=False) for _ in range(stages))

    def forward(self, x, w):
        x = F.elu(x)
        path = x
        for norm, conv in zip(self.norms, self.convs):
            path = conv(box5(norm(path, w)))
            x = x + path
        return x


def box5(x: torch.Tensor) -> torch.Tensor:
    """5×5 mean pooling, stride 1, zero padding counted (÷25), as shifted sums: on the CPU this is
    4-5× faster than ``avg_pool2d`` and equal to it up to rounding."""
    H, W = x.shape[-2:]
    p = F.pad(x, (2, 2, 2, 2))
    r = p[..., 0:H, :] + p[..., 1:H + 1, :] + p[..., 2:H + 2, :] + p[..., 3:H + 3, :] + p[..., 4:H + 4, :]
    return (r[..., 0:W] + r[..., 1:W + 1] + r[..., 2:W + 2] + r[..., 3:W + 3] + r[..., 4:W + 4]) / 25


class CondRefineBlock(nn.Module):
    def __init__(self, cins: list[int], c: int, n_levels: int, end: bool = False):
        super().__init__()
        self.adapt = nn.ModuleList(CondRCU(ci, 2, 2, n_levels) for ci in cins)
        self.msf = CondMSF(cins, c, n_levels) if len(cins) > 1 else None
        self.crp = CondCRP(c, 2, n_levels)
        self.out = CondRCU(c, 3 if end else 1, 2, n_levels)

    def forward(self, xs, shape, w):
        hs = [rcu(x, w) for rcu, x in zip(self.adapt, xs)]
        h = self.msf(hs, shape, w) if self.msf is not None else hs[0]
        return self.out(self.crp(h, w), w)


class NCSNRefineNet(nn.Module):
    """s(x, σ) for x (B, channels, H, W) real; H and W divisible by 2 (by 4 with space_to_depth)."""

    def __init__(self, channels: int = 6, ngf: int = 128, n_levels: int = 10, sigma_max: float = 1.0,
                 sigma_min: float = 0.01, centered_input: bool = True, interpolate: bool = False,
                 scale_by_sigma: bool = False, space_to_depth: bool = False):
        super().__init__()
        self.channels, self.centered_input = channels, centered_input
        self.scale_by_sigma, self.fold = scale_by_sigma, 2 if space_to_depth else 1
        self.sigma_max, self.sigma_min, self.n_levels = sigma_max, sigma_min, n_levels
        self.levels = LevelWeights(sigma_max, sigma_min, n_levels, interpolate)
        cin = channels * self.fold**2
        L = n_levels
        self.begin = conv3x3(cin, ngf)
        self.res1 = nn.ModuleList([CondResBlock(ngf, ngf, L), CondResBlock(ngf, ngf, L)])
        self.res2 = nn.ModuleList([CondResBlock(ngf, 2 * ngf, L, down=True), CondResBlock(2 * ngf, 2 * ngf, L)])
        self.res3 = nn.ModuleList([CondResBlock(2 * ngf, 2 * ngf, L, down=True, dilation=2),
                                   CondResBlock(2 * ngf, 2 * ngf, L, dilation=2)])
        self.res4 = nn.ModuleList([CondResBlock(2 * ngf, 2 * ngf, L, down=True, dilation=4),
                                   CondResBlock(2 * ngf, 2 * ngf, L, dilation=4)])
        self.refine1 = CondRefineBlock([2 * ngf], 2 * ngf, L)
        self.refine2 = CondRefineBlock([2 * ngf, 2 * ngf], 2 * ngf, L)
        self.refine3 = CondRefineBlock([2 * ngf, 2 * ngf], ngf, L)
        self.refine4 = CondRefineBlock([ngf, ngf], ngf, L, end=True)
        self.norm_end = CondInstanceNormPlus(ngf, L)
        self.end = conv3x3(ngf, cin)

    def forward(self, x: torch.Tensor, sigma) -> torch.Tensor:
        sigma = as_batch_sigma(sigma, x)
        w = self.levels(sigma)
        h = 2 * x - 1 if self.centered_input else x
        if self.fold > 1:
            h = F.pixel_unshuffle(h, self.fold)
        h = self.begin(h)
        feats = []
        for stage in (self.res1, self.res2, self.res3, self.res4):
            for block in stage:
                h = block(h, w)
            feats.append(h)
        l1, l2, l3, l4 = feats
        r = self.refine1([l4], l4.shape[2:], w)
        r = self.refine2([l3, r], l3.shape[2:], w)
        r = self.refine3([l2, r], l2.shape[2:], w)
        r = self.refine4([l1, r], l1.shape[2:], w)
        out = self.end(F.elu(self.norm_end(r, w)))
        if self.fold > 1:
            out = F.pixel_shuffle(out, self.fold)
        if self.scale_by_sigma:
            out = out / sigma.view(-1, 1, 1, 1).to(out.dtype)
        return out


def build(config: dict) -> NCSNRefineNet:
    keys = PAPER.keys()
    return NCSNRefineNet(**{k: config[k] for k in keys if k in config})


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
