"""Network blocks and helpers shared by the learned methods (one definition each)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn


class ResBlock(nn.Module):
    """conv3×3 → ReLU → conv3×3, plus the identity (CGPD-CSNet's solver, GDUNet's local branch)."""

    def __init__(self, c: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x):
        return x + self.conv2(F.relu(self.conv1(x)))


def parameter_count(model: nn.Module) -> int:
    return sum(t.numel() for t in model.parameters())
