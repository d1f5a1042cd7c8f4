"""Complex images ↔ real channel stacks, the form score networks take.

``to_channels(z, copies)`` turns complex (B, *S) into real (B, 2·copies, *S): ``copies`` stacked
(Re, Im) pairs (HGGDP's high-dimensional embedding for copies = 3). ``from_channels`` inverts it
per copy: (B, 2·copies, *S) → complex (B, copies, *S).
"""

from __future__ import annotations

import torch


def to_channels(z: torch.Tensor, copies: int = 1) -> torch.Tensor:
    z = z if torch.is_complex(z) else z.to(torch.complex64)
    x = torch.stack([z.real, z.imag], 1)
    return x.repeat(1, copies, *([1] * (x.ndim - 2))) if copies > 1 else x


def from_channels(x: torch.Tensor) -> torch.Tensor:
    b, c = x.shape[:2]
    if c % 2:
        raise ValueError(f"a channel stack of (Re, Im) pairs needs an even channel count, got {c}")
    x = x.reshape(b, c // 2, 2, *x.shape[2:])
    return torch.complex(x[:, :, 0].contiguous(), x[:, :, 1].contiguous())


def copies_to_channels(z: torch.Tensor) -> torch.Tensor:
    """Complex (B, copies, *S) → real (B, 2·copies, *S): the inverse of :func:`from_channels`."""
    return torch.stack([z.real, z.imag], 2).flatten(1, 2)


def as_complex(x: torch.Tensor) -> torch.Tensor:
    """(B, 2, H, W) (Re, Im) or (B, 1, H, W) real → complex (B, H, W)."""
    if x.shape[1] == 2:
        return torch.complex(x[:, 0], x[:, 1])
    return torch.complex(x[:, 0], torch.zeros_like(x[:, 0]))
