"""Hard parameter sharing: one trunk shared by all tasks, one head per task."""

from __future__ import annotations

import torch
from torch import nn


class SharedTrunkNet(nn.Module):
    """`trunk` (Linear+ReLU layers) feeds every head in `heads`.

    `forward(X)` returns one output per head: shape (N,) for a head of
    width 1 (a logit or a regression value), (N, C) for a C-class head.
    """

    def __init__(
        self,
        in_features: int,
        hidden: tuple[int, ...] = (32,),
        head_dims: tuple[int, ...] = (1, 1),
        seed: int = 0,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        # Initialise from our own seed without touching the global RNG.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            layers: list[nn.Module] = []
            width = in_features
            for h in hidden:
                layers += [nn.Linear(width, h, dtype=dtype), nn.ReLU()]
                width = h
            self.trunk = nn.Sequential(*layers)
            self.heads = nn.ModuleList(nn.Linear(width, d, dtype=dtype) for d in head_dims)

    def forward(self, X: torch.Tensor) -> tuple[torch.Tensor, ...]:
        features = self.trunk(X)
        outputs = [head(features) for head in self.heads]
        return tuple(o.squeeze(-1) if o.shape[-1] == 1 else o for o in outputs)

    def shared_parameters(self) -> list[nn.Parameter]:
        """The trunk's parameters: the ones every task's loss reaches."""
        return list(self.trunk.parameters())
