"""The training loop: `train(config) -> History`, seeded and deterministic.

`training_run(config)` is the same loop as a generator that yields after
every step, so a caller (the playground) can train in chunks and stay
responsive; `train` simply runs it to the end. The loop knows no strategy:
it asks the registry for the run's step function and records what each
step returns.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import nn

from mtl_teach.config import TrainConfig
from mtl_teach.data import batch_indices, multi_digits, two_task
from mtl_teach.models import SharedTrunkNet
from mtl_teach.registry import STRATEGIES
from mtl_teach.strategies import Setup, StepFn, StepResult, TrainingDiverged


@dataclass
class History:
    """What a run recorded: per-step losses and weights, and how it ended.

    Series keys (`series(key)`): a task name (its loss), "total" (the
    weighted objective), "weight/<task>" (the weight of that task's loss),
    or any key of `extras` (what the method measured, e.g. "cosine").
    """

    config: TrainConfig
    task_names: tuple[str, ...]
    losses: dict[str, list[float]] = field(default_factory=dict)  # task -> per-step loss, before the update
    weights: dict[str, list[float]] = field(default_factory=dict)  # task -> per-step weight of its loss
    total: list[float] = field(default_factory=list)  # sum of w_i * L_i with the weights of each step
    extras: dict[str, list[float]] = field(default_factory=dict)  # other per-step series a method reports
    diverged_at: int | None = None  # the step at which something became NaN/inf
    diverged_because: str = ""
    stopped_at: int | None = None  # set when a caller stopped the run early
    metrics: dict[str, float] = field(default_factory=dict)  # on held-out data, at the end
    elapsed_s: float = 0.0

    def __post_init__(self) -> None:
        for name in self.task_names:
            self.losses.setdefault(name, [])
            self.weights.setdefault(name, [])

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
                f"diverged: {self.diverged_because} at step {self.diverged_at} "
                f"(lr={self.config.lr:g}, optimizer={self.config.optimizer}); try a smaller lr"
            )
        last = ", ".join(f"{n} {v[-1]:.4g}" for n, v in self.losses.items() if v)
        state = "stopped" if self.stopped_at is not None else "step"
        return f"{state} {self.steps_done}/{self.config.steps}: {last}"

    def final_losses(self) -> dict[str, float]:
        return {name: values[-1] for name, values in self.losses.items()}

    def series(self, key: str) -> list[float]:
        """The per-step values of one series (see the class docstring); empty if not recorded."""
        if key in self.losses:
            return self.losses[key]
        if key == "total":
            return self.total
        kind, _, task = key.partition("/")
        if kind == "weight" and task in self.weights:
            return self.weights[task]
        return self.extras.get(key, [])

    def record(self, result: StepResult) -> None:
        """Append one step's measurements; raise TrainingDiverged if a loss or the total is NaN/inf."""
        losses = result.losses.tolist()
        weights = torch.as_tensor(result.weights, dtype=torch.float64).tolist()
        total = sum(w * loss for w, loss in zip(weights, losses, strict=True))
        if not all(map(math.isfinite, [*losses, total])):
            raise TrainingDiverged("the loss became NaN/inf")
        for name, loss, weight in zip(self.task_names, losses, weights, strict=True):
            self.losses[name].append(loss)
            self.weights[name].append(weight)
        self.total.append(total)
        for key, value in result.extras.items():
            self.extras.setdefault(key, []).append(float(value))


def make_data(config: TrainConfig, **split_sizes):
    """The dataset that `config.dataset` names, made from the config's seed and dtype.

    `split_sizes` go to the dataset's function: `n_val=...` (two_task) or
    `val_fraction=...` (multi_digits) add a validation split.
    """
    dtype = getattr(torch, config.dtype)
    if config.dataset == "multi_digits":
        return multi_digits(seed=config.seed, dtype=dtype, **split_sizes)
    return two_task(
        config.n_samples,
        config.n_features,
        config.relatedness,
        config.regression_scale,
        seed=config.seed,
        dtype=dtype,
        classification_loss=config.classification_loss,
        **split_sizes,
    )


def make_optimizer(net: SharedTrunkNet, name: str, lr: float, momentum: float = 0.0) -> torch.optim.Optimizer:
    """SGD or Adam with one param group for the trunk ("trunk") and one per head ("head0", ...)."""
    groups = [{"params": net.trunk.parameters(), "name": "trunk"}]
    groups += [{"params": head.parameters(), "name": f"head{i}"} for i, head in enumerate(net.heads)]
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum)
    if name == "adam":
        return torch.optim.Adam(groups, lr=lr)
    raise ValueError(f"optimizer={name!r} is not known; choose 'sgd' or 'adam'")


def build(config: TrainConfig, data=None) -> Setup:
    """Data, model and optimizer for `config` (the strategy builds its step from them).

    `data` replaces `make_data(config)`: e.g. the same dataset made once, with a validation split.
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {config!r}; e.g. build(TrainConfig(strategy='mgda'))")
    data = make_data(config) if data is None else data
    net = SharedTrunkNet(data.X.shape[1], config.hidden, data.head_dims, seed=config.seed, dtype=data.X.dtype)
    return Setup(config, data, net, make_optimizer(net, config.optimizer, config.lr, config.momentum))


@contextmanager
def one_torch_thread() -> Iterator[None]:
    """Run torch on one thread here (OpenMP keeps the setting per thread).

    These models are tiny: more threads do not help, and on a busy 2-core
    machine OpenMP's waiting threads made a 300-step run 10-40x slower. One
    thread also makes a run's numbers the same whatever the caller's setting.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def training_run(
    config: TrainConfig, setup: Setup | None = None, make_step: Callable[[Setup], StepFn] | None = None
) -> Iterator[History]:
    """Train step by step, yielding the (growing) History after each step.

    `setup` replaces `build(config)`; `make_step` replaces the registry's
    (e.g. a method with other settings: `partial(make_dwa_step, window=3)`).
    Stops at the first NaN/inf loss or gradient and records `diverged_at`
    instead of raising; closing the generator early marks the run as stopped.
    """
    if setup is not None and setup.config != config:
        raise ValueError(f"setup was built for another config ({setup.config}); pass the config it was built for")
    s = setup if setup is not None else build(config)
    with one_torch_thread():
        step = (make_step or STRATEGIES[config.strategy].make_step)(s)
    history = History(config, s.data.task_names)
    start = time.perf_counter()
    try:
        for step_number, idx in enumerate(batch_indices(len(s.data), config.batch_size, config.steps, config.seed)):
            try:
                with one_torch_thread():
                    history.record(step((s.data.X[idx], [t[idx] for t in s.data.targets])))
            except TrainingDiverged as why:
                history.diverged_at, history.diverged_because = step_number, str(why)
                break
            history.elapsed_s = time.perf_counter() - start
            yield history
        if history.diverged_at is None:
            _finish(history, s.net, s.data)
    except GeneratorExit:
        history.stopped_at = history.steps_done
        raise
    finally:
        history.elapsed_s = time.perf_counter() - start
    yield history


def _finish(history: History, net: nn.Module, data) -> None:
    """Held-out metrics at the end; non-finite parameters or metrics mean the run diverged."""
    with one_torch_thread():
        metrics = data.evaluate(net)
        finite = all(torch.isfinite(p).all() for p in net.parameters())
    if finite and all(map(math.isfinite, metrics.values())):
        history.metrics = metrics
    else:
        history.diverged_at, history.diverged_because = history.steps_done, "the parameters became NaN/inf"


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
    if config is not None and not isinstance(config, TrainConfig):
        raise TypeError(
            f"train() takes a TrainConfig (or keywords), got {config!r}; "
            f"write train(strategy='weighted_sum', steps=100) or train(TrainConfig(...)), or train(**settings)"
        )
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
