"""One typed, validated configuration for a training run.

Every field is checked in `TrainConfig.__post_init__`, so a bad value fails
at once with a message that names the field, the value and what is allowed.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from mtl_teach.data import TWO_TASK_TEST_SAMPLES
from mtl_teach.registry import STRATEGIES


class ConfigError(ValueError):
    """A configuration value is outside what is allowed."""


OPTIMIZERS = ("sgd", "adam")
CLASSIFICATION_LOSSES = ("logits", "sigmoid_bce")
DTYPES = ("float32", "float64")
DATASETS = ("two_task", "multi_digits")
MEMORY_LIMIT_GB = 2.0  # data plus parameters, gradients and optimizer state of one run


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a run; two equal configs give bitwise-equal runs."""

    strategy: str = "weighted_sum"
    alpha: float = 0.5  # weight of the classification loss
    beta: float = 0.5  # weight of the regression loss
    optimizer: str = "adam"
    lr: float = 0.01
    momentum: float = 0.0  # SGD only
    steps: int = 300
    batch_size: int = 64
    seed: int = 0
    relatedness: float = 0.5  # -1 opposed tasks, 0 unrelated, 1 same signal
    regression_scale: float = 1.0  # multiplies the regression target
    n_samples: int = 512
    n_features: int = 8
    hidden: tuple[int, ...] = (32,)  # trunk layer widths
    classification_loss: str = "logits"  # or "sigmoid_bce" (the blog post's)
    task_order: tuple[int, ...] = (0, 1)  # alternating_steps only
    dtype: str = "float32"
    dataset: str = "two_task"  # or "multi_digits" (two 10-class tasks; ignores the two_task knobs above)

    def __post_init__(self) -> None:
        # Lists from JSON or a widget become tuples, so configs stay hashable.
        for name, example in (("hidden", "(32,)"), ("task_order", "(0, 1)")):
            value = getattr(self, name)
            if not isinstance(value, (tuple, list)):
                _fail(name, value, f"a tuple of whole numbers, e.g. {example}")
            object.__setattr__(self, name, tuple(value))
        _check_config(self)

    @property
    def weights(self) -> tuple[float, float]:
        """The per-task weights (alpha, beta), in task order."""
        return (self.alpha, self.beta)

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with some fields changed (validated like a new config)."""
        unknown = set(changes) - {f.name for f in fields(self)}
        if unknown:
            raise ConfigError(f"unknown config field(s) {sorted(unknown)}; allowed: {[f.name for f in fields(self)]}")
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _fail(name: str, value: Any, allowed: str) -> None:
    raise ConfigError(f"{name}={value!r} is not allowed: {name} must be {allowed}")


def _check_number(name: str, value: Any, low: float, high: float, *, low_open: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value > low if low_open else value >= low) and value <= high
    if not ok:
        bracket = "(" if low_open else "["
        _fail(name, value, f"a finite number in {bracket}{low}, {high}]")


def _check_int(name: str, value: Any, low: int, high: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        _fail(name, value, f"a whole number from {low} to {high}")


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        _fail(name, value, f"one of {list(choices)}")


def _check_config(c: TrainConfig) -> None:
    _check_choice("strategy", c.strategy, tuple(STRATEGIES))
    _check_number("alpha", c.alpha, 0.0, 1e6)
    _check_number("beta", c.beta, 0.0, 1e6)
    if c.alpha == 0 and c.beta == 0:
        _fail("alpha, beta", (c.alpha, c.beta), "not both zero (nothing would be trained)")
    _check_choice("optimizer", c.optimizer, OPTIMIZERS)
    _check_number("lr", c.lr, 0.0, 1e3, low_open=True)
    _check_number("momentum", c.momentum, 0.0, 0.999)
    _check_int("steps", c.steps, 1, 1_000_000)
    _check_int("batch_size", c.batch_size, 1, 1_000_000)
    _check_int("seed", c.seed, 0, 2**63 - 1)
    _check_number("relatedness", c.relatedness, -1.0, 1.0)
    _check_number("regression_scale", c.regression_scale, 0.0, 1e6, low_open=True)
    _check_int("n_samples", c.n_samples, 2, 10_000_000)
    _check_int("n_features", c.n_features, 2, 100_000)  # two task directions
    if not c.hidden or not all(isinstance(h, int) and not isinstance(h, bool) and h >= 1 for h in c.hidden):
        _fail("hidden", c.hidden, "a non-empty tuple of positive layer widths, e.g. (32,)")
    _check_choice("classification_loss", c.classification_loss, CLASSIFICATION_LOSSES)
    if not all(type(i) is int for i in c.task_order) or sorted(c.task_order) != [0, 1]:
        _fail("task_order", c.task_order, "(0, 1) or (1, 0)")
    _check_choice("dtype", c.dtype, DTYPES)
    _check_choice("dataset", c.dataset, DATASETS)
    _check_memory(c)
    problem = STRATEGIES[c.strategy].check(c)
    if problem is not None:
        raise ConfigError(problem)


def _check_memory(c: TrainConfig) -> None:
    """Refuse, before anything is allocated, a run whose tensors would not fit."""
    widths = (c.n_features, *c.hidden)
    n_params = sum((a + 1) * b for a, b in zip(widths, widths[1:])) + 2 * (c.hidden[-1] + 1) * 10  # heads: <= 10 wide
    n_data = (c.n_samples + TWO_TASK_TEST_SAMPLES) * (c.n_features + 2) if c.dataset == "two_task" else 0
    gigabytes = (n_data + 4 * n_params) * (8 if c.dtype == "float64" else 4) / 1e9  # params: value, grad, 2 moments
    if gigabytes > MEMORY_LIMIT_GB:
        sizes = f"n_samples={c.n_samples}, n_features={c.n_features}, hidden={c.hidden}"
        raise ConfigError(
            f"{sizes} would need about {gigabytes:.3g} GB for data and parameters; "
            f"the limit is {MEMORY_LIMIT_GB:g} GB: make them smaller"
        )
