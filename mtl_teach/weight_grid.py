"""The playground's grid of weightings: many (alpha, beta) runs trained together, then looked up at once.

When every setting but the loss weights stays fixed, one `sweep` trains the
run of every slider position together (21 weightings x 300 steps take about
a third of a second on a laptop CPU), so moving alpha or beta can show the
matching run at once instead of retraining it:

    grid = WeightGrid()
    grid.train(config, grid_pairs(config, alpha_values=slider_values(1.0)))
    grid.history(config.replace(alpha=0.35))   # the run train() would give, or None if not in the grid

The same grid's final losses are the Pareto panel's front (`front`). Only
the "sum" family can be swept; for the others `front_config` names the
plain weighted sum whose front the panel shows instead.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Sequence

import torch

from mtl_teach.config import ConfigError, TrainConfig
from mtl_teach.registry import STRATEGIES
from mtl_teach.sweep import SweepResult, sweep
from mtl_teach.train import History

GRID_STEP = 0.05  # the alpha/beta sliders' step: every slider position is a grid point
MAX_SETTINGS_KEPT = 4  # grids of this many other-settings are kept (e.g. the last few learning rates)
WEIGHTS = ("alpha", "beta")


def settings_key(config: TrainConfig) -> tuple:
    """Every field of `config` except the loss weights: configs with one key share one grid."""
    return tuple((f.name, getattr(config, f.name)) for f in dataclasses.fields(config) if f.name not in WEIGHTS)


def front_config(config: TrainConfig) -> TrainConfig:
    """The config whose grid the Pareto panel shows: `config` itself in the sum family, else its plain weighted sum."""
    return config if STRATEGIES[config.strategy].family == "sum" else config.replace(strategy="weighted_sum")


def slider_values(high: float, step: float = GRID_STEP) -> list[float]:
    """0, step, 2 step, ... up to `high`: the positions of a weight slider, rounded as the slider shows them."""
    if not high >= 0:
        raise ValueError(f"high={high!r} is not allowed: a slider's top must be a number >= 0")
    return [round(i * step, 10) for i in range(int(round(high / step)) + 1)]


def grid_pairs(
    config: TrainConfig, alpha_values: Sequence[float] = (), beta_values: Sequence[float] = (), tie_beta: bool = False
) -> list[tuple[float, float]]:
    """The weightings of the grid around `config`: a row of alphas at its beta (beta = 1 - alpha if tied),
    then a row of betas at its alpha; pairs the config does not allow (e.g. both zero) are left out."""
    pairs = [(a, round(1.0 - a, 10) if tie_beta else config.beta) for a in alpha_values]
    pairs += [(config.alpha, b) for b in beta_values]
    allowed = []
    for pair in dict.fromkeys(pairs):  # in order, without repeats
        try:
            config.replace(alpha=pair[0], beta=pair[1])
        except ConfigError:
            continue
        allowed.append(pair)
    return allowed


class WeightGrid:
    """Runs of one or more sweeps, by settings and weighting; safe to use from several threads.

    `train` is slow (it runs the sweep) and may be stopped; `history`,
    `missing` and `front` are quick lookups.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs: dict[tuple, dict[tuple[float, float], tuple[SweepResult, int]]] = {}
        self._histories: dict[TrainConfig, History] = {}

    def missing(self, config: TrainConfig, pairs: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
        """The pairs not in the grid yet for `config`'s settings."""
        with self._lock:
            runs = self._runs.get(settings_key(config), {})
            return [pair for pair in pairs if pair not in runs]

    def train(
        self, config: TrainConfig, pairs: Sequence[tuple[float, float]], should_stop: Callable[[], bool] | None = None
    ) -> None:
        """Train the missing pairs for `config`'s settings in one sweep (raises SweepStopped if stopped)."""
        todo = self.missing(config, pairs)
        if not todo:
            return
        result = sweep(config, weights=todo, should_stop=should_stop)
        histories = {config.replace(alpha=a, beta=b): result.history(k) for k, (a, b) in enumerate(todo)}
        key = settings_key(config)
        with self._lock:
            runs = self._runs.pop(key, {})  # re-inserted last: the newest settings are kept longest
            runs.update({pair: (result, k) for k, pair in enumerate(todo)})
            self._histories.update(histories)
            self._runs[key] = runs
            while len(self._runs) > MAX_SETTINGS_KEPT:
                dropped = next(iter(self._runs))
                del self._runs[dropped]
                self._histories = {c: h for c, h in self._histories.items() if settings_key(c) != dropped}

    def history(self, config: TrainConfig) -> History | None:
        """The finished run of `config` from the grid (as `train()` records it), or None.

        None also for a run that diverged in the sweep: the playground then
        trains it live, which shows where and why.
        """
        with self._lock:
            history = self._histories.get(config)
        return history if history is not None and history.finished else None

    def front(self, config: TrainConfig) -> list[tuple[tuple[float, float], tuple[float, float]]]:
        """((alpha, beta), (task-1 loss, task-2 loss)) of each finite run in the grid for `config`'s settings,
        the losses as `final_point` measures them."""
        with self._lock:
            runs = dict(self._runs.get(settings_key(config), {}))
        points = []
        for pair, (result, k) in runs.items():
            if result.diverged_at[k] is None:
                point = final_point(result.curves[:, k, :])
                if all(map(torch.isfinite, point)):
                    points.append((pair, tuple(float(v) for v in point[:2])))
        return points


def final_point(losses: torch.Tensor | History) -> torch.Tensor:
    """Where a run ended: each task's minibatch loss averaged over the last tenth of its steps, (T,).

    An average, because one minibatch's loss is noisy; the same measure for
    a grid run and a live run, so the current run's point sits on the front
    when it is a grid run.
    """
    if isinstance(losses, History):
        losses = torch.tensor([losses.losses[name] for name in losses.task_names], dtype=torch.float64).T
    steps = losses.shape[0]
    return losses[steps - max(1, steps // 10) :].to(torch.float64).mean(dim=0)
