"""The variance-exploding SDE, dx = √(d[σ²(t)]/dt) dw, on a discrete geometric σ ladder."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class VESDE:
    """σ(t) geometric from ``sigma_max`` (t = 1) to ``sigma_min`` (t = 0), discretised in N levels."""

    sigma_min: float = 0.01
    sigma_max: float = 1.0
    N: int = 10

    def __post_init__(self):
        if not 0 < self.sigma_min < self.sigma_max:
            raise ValueError(f"a VE SDE needs 0 < sigma_min < sigma_max, got {self.sigma_min}, {self.sigma_max}")
        if self.N < 1:
            raise ValueError(f"a VE SDE needs at least one level, got N={self.N}")

    def sigmas(self, start: float | None = None) -> list[float]:
        """The ladder σ_1 > … > σ_N (N = 1: just σ_min); with ``start``, only the levels ≤ start
        (a warm start from an estimate whose error is about ``start``)."""
        if self.N == 1:
            ladder = [self.sigma_min]
        else:
            a, b = math.log(self.sigma_max), math.log(self.sigma_min)
            ladder = [math.exp(a + (b - a) * i / (self.N - 1)) for i in range(self.N)]
        if start is not None:
            ladder = [s for s in ladder if s <= start * (1 + 1e-9)] or [self.sigma_min]
        return ladder

    def prior_sampling(self, shape, generator: torch.Generator, like: torch.Tensor) -> torch.Tensor:
        """A draw from p_T = N(0, σ_max² I), on ``like``'s device and dtype."""
        return self.sigma_max * noise(shape, generator, like)

    @staticmethod
    def transition_std(sigma: float, sigma_next: float) -> float:
        """√(σ² − σ_next²): the noise the forward SDE adds from σ_next to σ (0 at the last level)."""
        return math.sqrt(max(sigma**2 - sigma_next**2, 0.0))


def noise(shape, generator: torch.Generator, like: torch.Tensor) -> torch.Tensor:
    """Standard normal noise drawn from ``generator`` on ``like``'s device (never the global RNG)."""
    return torch.randn(tuple(shape), generator=generator, device=like.device, dtype=like.dtype)
