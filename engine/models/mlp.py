"""MLP building blocks shared by the AO-ARM and MADE networks: residual LeakyReLU stacks with a condition shift."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class ResidualStack(nn.Module):
    """``layers`` hidden layers of width ``hidden``: h <- h + act(W h + b + c) after the first (MaM's MLPRes),
    where c is the condition embedding added to every layer so (T, mu) reach the whole depth."""

    def __init__(self, hidden: int, layers: int):
        super().__init__()
        self.blocks = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(layers - 1))

    def forward(self, h: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        for lin in self.blocks:
            h = h + F.leaky_relu(lin(h) + c, 0.2)
        return h
