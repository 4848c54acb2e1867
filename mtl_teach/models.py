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
        g = torch.Generator().manual_seed(seed)  # our own RNG: the global one is left alone
        layers: list[nn.Module] = []
        width = in_features
        for h in hidden:
            layers += [_seeded_linear(width, h, g, dtype), nn.ReLU()]
            width = h
        self.trunk = nn.Sequential(*layers)
        self.heads = nn.ModuleList(_seeded_linear(width, d, g, dtype) for d in head_dims)

    def forward(self, X: torch.Tensor) -> tuple[torch.Tensor, ...]:
        features = self.trunk(X)
        outputs = [head(features) for head in self.heads]
        return tuple(o.squeeze(-1) if o.shape[-1] == 1 else o for o in outputs)

    def shared_parameters(self) -> list[nn.Parameter]:
        """The trunk's parameters: the ones every task's loss reaches."""
        return list(self.trunk.parameters())

    def head_parameters(self) -> list[nn.Parameter]:
        """The heads' parameters: each is reached by one task's loss only."""
        return list(self.heads.parameters())


def _seeded_linear(in_features: int, out_features: int, g: torch.Generator, dtype: torch.dtype) -> nn.Linear:
    """An `nn.Linear` with PyTorch's default init, U(-1/sqrt(in), 1/sqrt(in)),
    drawn from `g`. Safe to call from several threads at once."""
    layer = nn.utils.skip_init(nn.Linear, in_features, out_features, dtype=dtype)  # no global-RNG draw
    bound = 1.0 / in_features**0.5
    with torch.no_grad():
        layer.weight.uniform_(-bound, bound, generator=g)
        layer.bias.uniform_(-bound, bound, generator=g)
    return layer
