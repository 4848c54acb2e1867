"""Train many loss weightings at once: K copies of one model, one backward per step.

`sweep(config, alphas=torch.linspace(0, 1, 21))` trains one run per
weighting (alpha_k, beta_k) of the weighted sum, all from the same initial
weights on the same minibatches, and gives the numbers of K calls of
`train` (up to floating-point rounding), several times faster:

- the K runs' parameters are the rows of one (K, D) tensor `theta`;
- `torch.func.functional_call` runs the model with one row as its
  parameters, and `torch.func.vmap` maps that over the rows, so one call
  gives every run's task losses (K, T);
- one `backward()` of sum_k (alpha_k L1_k + beta_k L2_k) gives every run's
  own gradient, because run k's parameters appear only in its own term;
- `torch.optim` (SGD or Adam) updates `theta`: both act elementwise, so
  the rows never mix and each row takes exactly the step of its own run.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.func import functional_call, vmap

from mtl_teach.config import ConfigError, TrainConfig
from mtl_teach.data import batch_indices
from mtl_teach.losses import task_losses
from mtl_teach.registry import STRATEGIES, names
from mtl_teach.strategies import Setup
from mtl_teach.train import History, build, one_torch_thread


@dataclass
class SweepResult:
    """What a sweep recorded, one row per weighting k (K in all), T tasks."""

    config: TrainConfig  # the shared settings (its alpha, beta are not used)
    task_names: tuple[str, ...]
    weights: torch.Tensor  # (K, T): the loss weights (alpha_k, beta_k) of run k
    curves: torch.Tensor  # (steps, K, T): minibatch task losses before each update, as in History.losses
    final_losses: torch.Tensor  # (K, T): task losses on the whole training set after the last step
    test_losses: torch.Tensor  # (K, T): task losses on the held-out split after the last step
    params: torch.Tensor  # (K, D): each run's final parameters, flattened in `net.parameters()` order
    diverged_at: list[int | None]  # per run: first step whose loss was NaN/inf, or None
    setup: Setup  # the data and the initial model the runs started from
    elapsed_s: float = 0.0
    pairs: list[tuple[float, float]] = field(default_factory=list)  # the weightings exactly as asked (float64)

    def net(self, k: int) -> nn.Module:
        """Run k's trained model, as an ordinary network."""
        if not 0 <= k < len(self.weights):
            raise IndexError(f"k={k!r} is out of range: this sweep has runs 0 to {len(self.weights) - 1}")
        net = copy.deepcopy(self.setup.net)
        nn.utils.vector_to_parameters(self.params[k].clone(), net.parameters())
        return net

    def metrics(self, k: int) -> dict[str, float]:
        """Run k's metrics on the held-out split, as `History.metrics`."""
        with one_torch_thread():
            return self.setup.data.evaluate(self.net(k))

    def history(self, k: int) -> History:
        """Run k as the `History` that `train()` records for its config (losses, weights, total, metrics).

        A run that diverged keeps its finite steps and says where it stopped, as `train()` does.
        """
        alpha, beta = self.pairs[k] if self.pairs else self.weights[k].tolist()
        steps = self.diverged_at[k] if self.diverged_at[k] is not None else len(self.curves)
        history = History(self.config.replace(alpha=alpha, beta=beta), self.task_names)
        for losses in self.curves[:steps, k].tolist():  # the same float arithmetic as History.record
            for name, loss, weight in zip(self.task_names, losses, (alpha, beta), strict=True):
                history.losses[name].append(loss)
                history.weights[name].append(weight)
            history.total.append(alpha * losses[0] + beta * losses[1])
        if self.diverged_at[k] is not None:
            history.diverged_at, history.diverged_because = steps, "the loss became NaN/inf"
        elif not torch.isfinite(self.params[k]).all():
            history.diverged_at, history.diverged_because = steps, "the parameters became NaN/inf"
        else:
            history.metrics = self.metrics(k)
        history.elapsed_s = self.elapsed_s
        return history


def weight_pairs(
    alphas: Sequence[float] | torch.Tensor | None = None,
    betas: Sequence[float] | torch.Tensor | None = None,
    weights: Sequence[Sequence[float]] | None = None,
) -> list[tuple[float, float]]:
    """The (alpha, beta) of each run: from `weights` pairs, or from `alphas`
    with `betas` (default 1 - alpha). `sweep` then checks each pair like a config."""
    if (weights is None) == (alphas is None):
        raise ValueError("give alphas (and optionally betas), or weights=[(alpha, beta), ...]: exactly one of the two")
    if weights is not None:
        if betas is not None:
            raise ValueError("betas goes with alphas; with weights=[(alpha, beta), ...] leave betas out")
        pairs = [tuple(float(w) for w in pair) for pair in weights]
        bad = [pair for pair in pairs if len(pair) != 2]
        if bad:
            raise ValueError(f"weights must be (alpha, beta) pairs; got {bad[0]!r}")
    else:
        alphas = torch.as_tensor(alphas, dtype=torch.float64).reshape(-1).tolist()  # also takes one number
        betas = [1.0 - a for a in alphas] if betas is None else torch.as_tensor(betas).reshape(-1).tolist()
        if len(betas) != len(alphas):
            raise ValueError(f"got {len(alphas)} alphas but {len(betas)} betas; give one beta per alpha")
        pairs = list(zip(alphas, betas))
    if not pairs:
        raise ValueError("no weightings given: pass at least one alpha or (alpha, beta) pair")
    return pairs


def sweep(
    config: TrainConfig | None = None,
    alphas: Sequence[float] | torch.Tensor | None = None,
    betas: Sequence[float] | torch.Tensor | None = None,
    *,
    weights: Sequence[Sequence[float]] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> SweepResult:
    """Train the weighted sum once per weighting, all K runs at once (see the module docstring).

    `config` gives everything but the weights (its strategy must be in the
    "sum" family of the registry); the weightings come from `alphas` (with
    `betas`, default 1 - alpha) or from `weights=[(alpha, beta), ...]`.
    `should_stop()` is asked before every step: True ends the sweep with
    `SweepStopped` (the playground cancels its background grid this way).
    """
    config = config or TrainConfig()
    pairs = weight_pairs(alphas, betas, weights)
    if STRATEGIES[config.strategy].family != "sum":
        raise ConfigError(
            f"strategy={config.strategy!r} cannot be swept: sweep trains the weighted sum, so use one of {names('sum')}"
        )
    for k, (a, b) in enumerate(pairs):
        try:
            config.replace(alpha=a, beta=b)  # validates the pair exactly as a single run would
        except ConfigError as error:
            raise ConfigError(f"weighting {k} (alpha={a!r}, beta={b!r}): {error}") from None
    start = time.perf_counter()
    with one_torch_thread():
        result = _train_stacked(config, pairs, should_stop or _never)
    result.elapsed_s = time.perf_counter() - start
    result.pairs = pairs
    return result


class SweepStopped(Exception):
    """Raised by `sweep` when its `should_stop()` returned True."""


def _never() -> bool:
    return False


def _train_stacked(
    config: TrainConfig, pairs: list[tuple[float, float]], should_stop: Callable[[], bool]
) -> SweepResult:
    """The K runs as rows of one parameter tensor, trained together (see the module docstring)."""
    setup = build(config)  # the data, the initial model and its optimizer settings, as `train` builds them
    data, net = setup.data, setup.net
    shapes = [p.shape for p in net.parameters()]
    structure = copy.deepcopy(net).to("meta")  # the model without its numbers: they come from a row of theta

    def losses_of_one_run(row: torch.Tensor, batch) -> torch.Tensor:
        chunks = row.split([math.prod(shape) for shape in shapes])
        params = {name: chunk.view(shape) for (name, _), chunk, shape in zip(net.named_parameters(), chunks, shapes)}
        return torch.stack(task_losses(lambda X: functional_call(structure, params, (X,)), batch, data.criteria))

    losses_of_every_run = vmap(losses_of_one_run, in_dims=(0, None))  # (K, D), batch -> (K, T)
    theta = nn.utils.parameters_to_vector(net.parameters()).detach().repeat(len(pairs), 1).requires_grad_()
    optimizer = type(setup.optimizer)([theta], **setup.optimizer.defaults)  # same optimizer, same settings
    w = torch.tensor(pairs, dtype=theta.dtype)  # (K, T)
    indices = batch_indices(len(data), config.batch_size, config.steps, config.seed)
    curves = torch.empty(config.steps, len(pairs), len(data.task_names), dtype=w.dtype)
    for step, idx in enumerate(indices):
        if should_stop():
            raise SweepStopped(f"the sweep was stopped at step {step} of {config.steps}")
        losses = losses_of_every_run(theta, (data.X[idx], [t[idx] for t in data.targets]))
        optimizer.zero_grad()
        (w * losses).sum().backward()
        optimizer.step()
        curves[step] = losses.detach()
    with torch.no_grad():
        final = losses_of_every_run(theta, (data.X, data.targets))
        test = losses_of_every_run(theta, (data.X_test, data.test_targets))
    return SweepResult(
        config, data.task_names, w, curves, final, test, theta.detach().clone(), _first_nonfinite_steps(curves), setup
    )


def _first_nonfinite_steps(curves: torch.Tensor) -> list[int | None]:
    """Per run, the first step with a NaN/inf task loss (None if it never happened)."""
    bad = ~torch.isfinite(curves).all(dim=2)  # (steps, K)
    return [int(column.nonzero()[0]) if column.any() else None for column in bad.T]
