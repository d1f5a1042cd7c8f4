"""NCSN++-style score network for the VE SDE (DD-UGM's k-space and image models).

Song et al.'s NCSN++ ("Score-based generative modeling through stochastic differential
equations", 2021), written from its description, as a U-Net over levels of halving resolution::

    σ → Gaussian Fourier features of log σ (nf) → Dense 4nf → SiLU → Dense 4nf   (the embedding)
    3×3 conv to nf
    down  per level ℓ: ``num_res_blocks`` residual blocks to nf·ch_mult[ℓ] (+ attention at the
          ``attn_levels``), then a residual block with 2×2 average-pool down-sampling (not after
          the last level)
    mid   residual block, attention, residual block
    up    per level from the deepest: num_res_blocks + 1 residual blocks on [h, skip] (+ attention),
          then a residual block with nearest up-sampling (not after level 0)
    GroupNorm → SiLU → 3×3 conv to the input channels, output ÷ σ

Residual blocks are BigGAN-style (GroupNorm, SiLU, conv, + Dense(embedding), GroupNorm, SiLU,
dropout, conv; 1×1 skip when the width or resolution changes; sum scaled by 1/√2).

Left out, as they change neither the interface nor the idea: FIR resampling kernels and the
progressive input/output branches. ``space_to_depth`` (our CPU switch) folds s×s pixels into
channels before the first conv and unfolds after the last, so the whole U-Net runs at 1/s² pixels.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from napari_unrollrecon.priors.score import as_batch_sigma

#: Our reading of the authors' model: score_sde's NCSN++ for large MR images (its fastMRI knee
#: configuration, from which DD-UGM's configs derive): nf 128, 7 levels, 2 blocks per level,
#: attention at 1/16 resolution. 65,987,970 parameters; DD-UGM reports ≈65 M
#: (tests/priors/test_ncsnpp.py counts ours layer by layer).
PAPER = {"channels": 2, "nf": 128, "ch_mult": (1, 1, 2, 2, 2, 2, 2), "num_res_blocks": 2, "attn_levels": (4,),
         "dropout": 0.1, "sigma_min": 0.01, "sigma_max": 4.0, "fourier_scale": 16.0, "space_to_depth": 1}


def groups(c: int) -> int:
    return max(1, min(c // 4, 32))


class FourierEmbedding(nn.Module):
    """Fixed random Fourier features of log σ: [sin 2πWu, cos 2πWu], W ~ N(0, scale²)."""

    def __init__(self, size: int, scale: float):
        super().__init__()
        self.register_buffer("W", torch.randn(size // 2) * scale)

    def forward(self, log_sigma: torch.Tensor) -> torch.Tensor:
        proj = 2 * math.pi * log_sigma[:, None] * self.W[None]
        return torch.cat([proj.sin(), proj.cos()], 1)


class ResBlock(nn.Module):
    """BigGAN residual block with a noise-level embedding; ``resample`` = None, "down" or "up"."""

    def __init__(self, cin: int, cout: int, temb: int, dropout: float = 0.0, resample: str | None = None):
        super().__init__()
        self.norm1, self.norm2 = nn.GroupNorm(groups(cin), cin), nn.GroupNorm(groups(cout), cout)
        self.conv1, self.conv2 = nn.Conv2d(cin, cout, 3, padding=1), nn.Conv2d(cout, cout, 3, padding=1)
        self.dense = nn.Linear(temb, cout)
        self.drop = nn.Dropout(dropout)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout or resample else None
        self.resample = resample
        nn.init.zeros_(self.conv2.weight)  # each block starts as the identity (stable deep U-Nets)

    def _resample(self, x):
        if self.resample == "down":
            return F.avg_pool2d(x, 2)
        if self.resample == "up":
            return F.interpolate(x, scale_factor=2.0, mode="nearest")
        return x

    def forward(self, x, emb):
        h = self._resample(F.silu(self.norm1(x)))
        h = self.conv1(h) + self.dense(emb)[:, :, None, None]
        h = self.conv2(self.drop(F.silu(self.norm2(h))))
        skip = self._resample(x)
        return (h + (self.skip(skip) if self.skip is not None else skip)) / math.sqrt(2.0)


class Attention(nn.Module):
    """Single-head self-attention over all pixels (1×1 q, k, v, out), residual scaled by 1/√2."""

    def __init__(self, c: int):
        super().__init__()
        self.norm = nn.GroupNorm(groups(c), c)
        self.qkv, self.out = nn.Conv2d(c, 3 * c, 1), nn.Conv2d(c, c, 1)
        nn.init.zeros_(self.out.weight)

    def forward(self, x):
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).flatten(2).transpose(1, 2).chunk(3, dim=2)
        a = F.scaled_dot_product_attention(q, k, v)
        return (x + self.out(a.transpose(1, 2).reshape(b, c, h, w))) / math.sqrt(2.0)


class NCSNpp(nn.Module):
    """s(x, σ) for real channel stacks (B, channels, H, W); H, W divisible by s·2^(levels − 1)."""

    def __init__(self, channels: int = 2, nf: int = 128, ch_mult=(1, 2, 2, 2), num_res_blocks: int = 4,
                 attn_levels=(1,), dropout: float = 0.1, sigma_min: float = 0.01, sigma_max: float = 4.0,
                 fourier_scale: float = 16.0, space_to_depth: int = 1):
        super().__init__()
        self.channels, self.sigma_min, self.sigma_max = channels, float(sigma_min), float(sigma_max)
        self.s2d, self.levels = int(space_to_depth), len(ch_mult)
        temb = 4 * nf
        self.embed = FourierEmbedding(nf, fourier_scale)
        self.dense = nn.Sequential(nn.Linear(nf, temb), nn.SiLU(), nn.Linear(temb, temb))
        self.head = nn.Conv2d(channels * self.s2d**2, nf, 3, padding=1)
        self.down, widths, c = nn.ModuleList(), [nf], nf
        for lvl, mult in enumerate(ch_mult):
            for _ in range(num_res_blocks):
                self.down.append(ResBlock(c, nf * mult, temb, dropout))
                c = nf * mult
                if lvl in attn_levels:
                    self.down.append(Attention(c))
                widths.append(c)
            if lvl < self.levels - 1:
                self.down.append(ResBlock(c, c, temb, dropout, resample="down"))
                widths.append(c)
        self.mid = nn.ModuleList([ResBlock(c, c, temb, dropout), Attention(c), ResBlock(c, c, temb, dropout)])
        self.up = nn.ModuleList()
        for lvl in reversed(range(self.levels)):
            for _ in range(num_res_blocks + 1):
                self.up.append(ResBlock(c + widths.pop(), nf * ch_mult[lvl], temb, dropout))
                c = nf * ch_mult[lvl]
                if lvl in attn_levels:
                    self.up.append(Attention(c))
            if lvl > 0:
                self.up.append(ResBlock(c, c, temb, dropout, resample="up"))
        self.tail = nn.Sequential(nn.GroupNorm(groups(c), c), nn.SiLU(),
                                  nn.Conv2d(c, channels * self.s2d**2, 3, padding=1))

    @property
    def multiple(self) -> int:
        """Image sides must be multiples of this."""
        return self.s2d * 2 ** (self.levels - 1)

    def forward(self, x: torch.Tensor, sigma) -> torch.Tensor:
        sigma = as_batch_sigma(sigma, x)
        if x.shape[-1] % self.multiple or x.shape[-2] % self.multiple:
            raise ValueError(f"this score network needs image sides divisible by {self.multiple}; got "
                             f"{tuple(x.shape[-2:])} (pad or crop the image)")
        emb = F.silu(self.dense(self.embed(sigma.float().log())))
        h = F.pixel_unshuffle(x, self.s2d) if self.s2d > 1 else x
        h = self.head(h)
        skips = [h]
        for block in self.down:
            if isinstance(block, Attention):
                h = block(h)
                skips[-1] = h  # attention refines the skip of the block before it
            else:
                h = block(h, emb)
                skips.append(h)
        for block in self.mid:
            h = block(h) if isinstance(block, Attention) else block(h, emb)
        for block in self.up:
            if isinstance(block, Attention):
                h = block(h)
            elif block.resample == "up":
                h = block(h, emb)
            else:
                h = block(torch.cat([h, skips.pop()], 1), emb)
        out = self.tail(h)
        out = F.pixel_shuffle(out, self.s2d) if self.s2d > 1 else out
        return out / sigma.view(-1, 1, 1, 1).to(out.dtype)


def build(config: dict) -> NCSNpp:
    keys = ("channels", "nf", "ch_mult", "num_res_blocks", "attn_levels", "dropout", "sigma_min", "sigma_max",
            "fourier_scale", "space_to_depth")
    return NCSNpp(**{k: (tuple(config[k]) if k in ("ch_mult", "attn_levels") else config[k])
                     for k in keys if k in config})
