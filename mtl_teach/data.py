"""Datasets made in-process from a seed: nothing is downloaded."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

TWO_TASK_NAMES = ("classification", "regression")


@dataclass(frozen=True)
class TwoTaskData:
    """Shared inputs `X` (N, F); a binary label `y_class` (N,) in {0., 1.};
    a regression target `y_reg` (N,)."""

    X: torch.Tensor
    y_class: torch.Tensor
    y_reg: torch.Tensor
    task_names: tuple[str, ...] = TWO_TASK_NAMES

    @property
    def targets(self) -> tuple[torch.Tensor, torch.Tensor]:
        return (self.y_class, self.y_reg)

    def __len__(self) -> int:
        return self.X.shape[0]


def two_task(
    n_samples: int = 512,
    n_features: int = 8,
    relatedness: float = 0.5,
    regression_scale: float = 1.0,
    noise: float = 0.1,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
) -> TwoTaskData:
    """The seed article's pair of tasks from one set of features.

    Each task reads the features along its own unit direction; `relatedness`
    is the cosine between the two directions (1: the same signal, 0:
    unrelated, -1: opposed). The label is whether the first reading plus a
    bend is positive; the regression target is the second reading plus a bend,
    times `regression_scale` (so the two losses can differ by orders of
    magnitude).
    """
    if not -1.0 <= relatedness <= 1.0:
        raise ValueError(f"relatedness={relatedness!r} must be in [-1, 1]")
    if n_features < 2:
        raise ValueError(f"n_features={n_features!r} must be at least 2 (two task directions)")
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n_samples, n_features, generator=g, dtype=torch.float64)
    basis, _ = torch.linalg.qr(torch.randn(n_features, 2, generator=g, dtype=torch.float64))
    w_class = basis[:, 0]
    w_reg = relatedness * basis[:, 0] + math.sqrt(1.0 - relatedness**2) * basis[:, 1]
    z_class, z_reg = X @ w_class, X @ w_reg
    eps = torch.randn(2, n_samples, generator=g, dtype=torch.float64)
    # A bend (sin) makes the tasks need the hidden layer, not just a linear map.
    y_class = (z_class + 0.5 * torch.sin(2 * z_class) + noise * eps[0] > 0).to(dtype)
    y_reg = regression_scale * (z_reg + 0.5 * torch.sin(2 * z_reg) + noise * eps[1])
    return TwoTaskData(X.to(dtype), y_class, y_reg.to(dtype))


def batch_indices(n_samples: int, batch_size: int, steps: int, seed: int) -> list[torch.Tensor]:
    """Minibatch indices for every step: shuffled epochs, fixed by `seed`."""
    g = torch.Generator().manual_seed(seed + 1)
    size = min(batch_size, n_samples)
    out: list[torch.Tensor] = []
    while len(out) < steps:
        perm = torch.randperm(n_samples, generator=g)
        out.extend(perm[i : i + size] for i in range(0, n_samples - size + 1, size))
    return out[:steps]
