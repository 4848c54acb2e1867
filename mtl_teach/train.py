"""The training loop: `train(config) -> History`, seeded and deterministic.

`training_run(config)` is the same loop as a generator that yields after
every step, so a caller (the playground) can train in chunks and stay
responsive; `train` simply runs it to the end.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch
from torch import nn

from mtl_teach.config import TrainConfig
from mtl_teach.data import MultiDigitsData, TwoTaskData, batch_indices, multi_digits, two_task
from mtl_teach.losses import MultiTaskLoss
from mtl_teach.models import SharedTrunkNet
from mtl_teach.strategies import STRATEGIES, make_optimizer


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite; `History.diverged_at` has the step."""


@dataclass
class History:
    """What a run recorded: per-step losses, and how it ended."""

    config: TrainConfig
    task_names: tuple[str, ...]
    losses: dict[str, list[float]] = field(default_factory=dict)  # task -> per-step loss
    total: list[float] = field(default_factory=list)  # sum of w_i * L_i (learned w_i where a method learns them)
    diverged_at: int | None = None  # first step with a NaN/inf loss
    stopped_at: int | None = None  # set when a caller stopped the run early
    metrics: dict[str, float] = field(default_factory=dict)  # on all data, at the end
    extras: dict[str, list[float]] = field(default_factory=dict)  # per-step series a method reports
    elapsed_s: float = 0.0

    @property
    def steps_done(self) -> int:
        return len(self.total)

    @property
    def finished(self) -> bool:
        return self.diverged_at is None and self.stopped_at is None and self.steps_done == self.config.steps

    @property
    def message(self) -> str:
        """One line for a status bar or the CLI."""
        if self.diverged_at is not None:
            return (
                f"diverged: the loss became NaN/inf at step {self.diverged_at} "
                f"(lr={self.config.lr:g}, optimizer={self.config.optimizer}); try a smaller lr"
            )
        last = ", ".join(f"{n} {v[-1]:.4g}" for n, v in self.losses.items() if v)
        state = "stopped" if self.stopped_at is not None else "step"
        return f"{state} {self.steps_done}/{self.config.steps}: {last}"

    def final_losses(self) -> dict[str, float]:
        return {name: values[-1] for name, values in self.losses.items()}


@dataclass
class Setup:
    """The pieces of a run, built from a config; `train` and tests share them."""

    data: TwoTaskData | MultiDigitsData
    net: SharedTrunkNet
    criterion: MultiTaskLoss
    optimizer: torch.optim.Optimizer
    step: Callable


def make_data(config: TrainConfig) -> TwoTaskData | MultiDigitsData:
    """The dataset that `config.dataset` names, made from the config's seed and dtype."""
    dtype = getattr(torch, config.dtype)
    if config.dataset == "multi_digits":
        return multi_digits(seed=config.seed, dtype=dtype)
    return two_task(
        config.n_samples, config.n_features, config.relatedness, config.regression_scale, seed=config.seed, dtype=dtype
    )


def build(config: TrainConfig) -> Setup:
    """Data, model, loss, optimizer and step function for `config`."""
    data = make_data(config)
    digits = config.dataset == "multi_digits"  # two 10-class heads and cross-entropy losses
    net = SharedTrunkNet(
        data.X.shape[1], config.hidden, (10, 10) if digits else (1, 1), seed=config.seed, dtype=data.X.dtype
    )
    strategy = STRATEGIES[config.strategy]
    criterion = MultiTaskLoss(
        config.weights if not strategy.weights_are_head_lrs else (1.0, 1.0),
        criteria=(nn.CrossEntropyLoss(), nn.CrossEntropyLoss()) if digits else None,  # None: the default pair
        from_logits=config.classification_loss == "logits",
    )
    head_lrs = [config.lr * w for w in config.weights] if strategy.weights_are_head_lrs else None
    optimizer = make_optimizer(net, config.optimizer, config.lr, config.momentum, head_lrs)
    setup = Setup(data, net, criterion, optimizer, strategy.step)
    if strategy.make_step is not None:
        setup.step = strategy.make_step(setup)
    if config.strategy == "alternating_steps":
        setup.step = functools.partial(setup.step, order=config.task_order)
    return setup


def training_run(config: TrainConfig, setup: Setup | None = None) -> Iterator[History]:
    """Train step by step, yielding the (growing) History after each step.

    Stops at the first NaN/inf loss and records `diverged_at` instead of
    raising; closing the generator early marks the run as stopped.
    """
    s = setup if setup is not None else build(config)
    history = History(config, s.data.task_names, {n: [] for n in s.data.task_names})
    weights = s.criterion.weights
    start = time.perf_counter()
    try:
        for step_number, idx in enumerate(batch_indices(len(s.data), config.batch_size, config.steps, config.seed)):
            batch = (s.data.X[idx], [t[idx] for t in s.data.targets])
            losses = s.step(s.net, batch, s.criterion, s.optimizer, weights).tolist()
            if not all(map(math.isfinite, losses)):
                history.diverged_at = step_number
                break
            for name, value in zip(s.data.task_names, losses):
                history.losses[name].append(value)
            extras = getattr(s.step, "last_extras", {})
            # A weighting method that learns its weights reports them as "weight/<task>".
            step_weights = [float(extras.get(f"weight/{name}", w)) for name, w in zip(s.data.task_names, weights)]
            history.total.append(sum(w * v for w, v in zip(step_weights, losses)))
            for key, value in extras.items():
                history.extras.setdefault(key, []).append(float(value))
            history.elapsed_s = time.perf_counter() - start
            yield history
        if history.diverged_at is None:
            history.metrics = evaluate(s.net, s.data)
    except GeneratorExit:
        history.stopped_at = history.steps_done
        raise
    finally:
        history.elapsed_s = time.perf_counter() - start
    yield history


@torch.no_grad()
def evaluate(net: SharedTrunkNet, data: TwoTaskData | MultiDigitsData) -> dict[str, float]:
    """Accuracy of the classification head, RMSE of the regression head;
    for multi_digits, each head's accuracy on the held-out test pairs."""
    if isinstance(data, MultiDigitsData):
        outputs = net(data.X_test)
        return {
            f"{name} accuracy": (logits.argmax(dim=1) == y).float().mean().item()
            for name, logits, y in zip(data.task_names, outputs, data.test_targets)
        }
    logits, y_hat = net(data.X)
    accuracy = ((logits > 0).to(data.y_class.dtype) == data.y_class).float().mean().item()
    rmse = torch.sqrt(torch.mean((y_hat - data.y_reg) ** 2)).item()
    return {"accuracy": accuracy, "rmse": rmse}


def train(
    config: TrainConfig | None = None,
    on_step: Callable[[History], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    **changes,
) -> History:
    """Run `config` (fields may be overridden by keyword) to the end.

    `on_step(history)` is called after every step (live plots throttle
    themselves); `should_stop()` returning True ends the run early.
    """
    config = config or TrainConfig()
    if changes:
        config = config.replace(**changes)
    history = None
    run = training_run(config)
    for history in run:
        if on_step is not None:
            on_step(history)
        if should_stop is not None and should_stop() and not history.finished:
            run.close()
            break
    assert history is not None  # steps >= 1 is validated
    return history
