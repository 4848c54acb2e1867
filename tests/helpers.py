"""Small helpers shared by the unit tests (tests/ is on sys.path: pytest's rootdir-less import mode)."""

from __future__ import annotations

import torch

from mtl_teach.config import TrainConfig
from mtl_teach.losses import task_losses
from mtl_teach.registry import STRATEGIES
from mtl_teach.strategies import Setup, StepResult
from mtl_teach.train import build


def first_batch(setup: Setup, size: int = 64):
    """The first `size` examples as a batch (X, targets)."""
    return setup.data.X[:size], [t[:size] for t in setup.data.targets]


def losses_of(setup: Setup, batch=None) -> list[torch.Tensor]:
    """The unweighted task losses of `setup`'s net on `batch` (default: the first batch)."""
    return task_losses(setup.net, batch if batch is not None else first_batch(setup), setup.data.criteria)


def one_step(config: TrainConfig, batch=None) -> tuple[Setup, StepResult]:
    """Build `config`'s run and take one step of its strategy on `batch` (default: the first batch)."""
    setup = build(config)
    step = STRATEGIES[config.strategy].make_step(setup)
    return setup, step(batch if batch is not None else first_batch(setup))
