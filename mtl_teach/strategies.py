"""The recipes: every way the blog post (and the course) turns task losses into an update.

A recipe is a plain function of the run's pieces, one training step on
`batch = (X, targets)`: `recipe(net, batch, criteria, optimizer, ...)`. It
returns a `StepResult`: each task's loss measured before the update, the
weight each loss had in the objective, and anything else it measured.

The registry (`mtl_teach.registry`) builds one step function per run from
a `Setup`: `make_step(setup) -> step`, then `step(batch) -> StepResult`. A
method that keeps state across steps (learned weights, a loss history) or
needs its own optimizer settings creates them in its `make_step`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import torch
from torch import nn

from mtl_teach.losses import task_losses

if TYPE_CHECKING:  # type hints only: the config module imports the registry, which imports this one
    from mtl_teach.config import TrainConfig

Batch = tuple[torch.Tensor, Sequence[torch.Tensor]]


class StepResult(NamedTuple):
    """What one step measured. Keys of `extras`: "<name>" or "<name>/<task>"."""

    losses: torch.Tensor  # (T,) each task's loss on the batch, before the update (detached)
    weights: Sequence[float] | torch.Tensor  # (T,) the weight of each loss in the objective of this step
    extras: Mapping[str, float] = {}  # e.g. {"cosine": ..., "grad_norm/regression": ...}; never mutated


@dataclass
class Setup:
    """The pieces of one run, made from a config by `mtl_teach.train.build`."""

    config: TrainConfig
    data: Any  # a dataset of `mtl_teach.data`: X, targets, task_names, criteria, ...
    net: nn.Module
    optimizer: torch.optim.Optimizer


StepFn = Callable[[Batch], StepResult]


class TrainingDiverged(ArithmeticError):
    """A step computed something that is not finite (NaN or inf); the loop stops the run."""


def weighted_sum(
    net: nn.Module, batch: Batch, criteria: Sequence[nn.Module], optimizer: torch.optim.Optimizer, weights
) -> StepResult:
    """Recipe 1 of the blog post: one backward of sum(w_i * L_i), one step."""
    losses = task_losses(net, batch, criteria)
    total = sum(w * loss for w, loss in zip(weights, losses))
    optimizer.zero_grad()
    total.backward()
    optimizer.step()
    return StepResult(torch.stack(losses).detach(), weights)


def separate_backward(
    net: nn.Module, batch: Batch, criteria: Sequence[nn.Module], optimizer: torch.optim.Optimizer, weights
) -> StepResult:
    """One backward per task; .grad accumulates the sum; then one step.

    Every backward but the last keeps the shared graph (retain_graph=True),
    because the next task's backward walks through the same trunk.
    """
    losses = task_losses(net, batch, criteria)
    optimizer.zero_grad()
    for i, (w, loss) in enumerate(zip(weights, losses)):
        is_last = i == len(losses) - 1
        (w * loss).backward(retain_graph=not is_last)
    optimizer.step()
    return StepResult(torch.stack(losses).detach(), weights)


def backward_list(
    net: nn.Module, batch: Batch, criteria: Sequence[nn.Module], optimizer: torch.optim.Optimizer, weights
) -> StepResult:
    """One call for all tasks: backward([L_1, L_2], grad_tensors=[w_1, w_2])."""
    losses = task_losses(net, batch, criteria)
    optimizer.zero_grad()
    grad_tensors = [torch.tensor(w, dtype=loss.dtype) for w, loss in zip(weights, losses)]
    torch.autograd.backward(losses, grad_tensors=grad_tensors)
    optimizer.step()
    return StepResult(torch.stack(losses).detach(), weights)


def alternating_steps(
    net: nn.Module,
    batch: Batch,
    criteria: Sequence[nn.Module],
    optimizer: torch.optim.Optimizer,
    weights,
    order: Sequence[int] = (0, 1),
) -> StepResult:
    """Recipe 2 of the blog post: zero_grad, backward, step for each task in turn.

    This is alternating optimisation, not a sum: the second backward uses
    activations computed before the first step, and the optimizer's state
    (momentum, Adam moments, step count) advances once per task.
    """
    losses = task_losses(net, batch, criteria)
    for n, i in enumerate(order):
        is_last = n == len(order) - 1
        optimizer.zero_grad()
        (weights[i] * losses[i]).backward(retain_graph=not is_last)
        optimizer.step()
    return StepResult(torch.stack(losses).detach(), weights)


def per_task_lr(
    net: nn.Module, batch: Batch, criteria: Sequence[nn.Module], optimizer: torch.optim.Optimizer
) -> StepResult:
    """What the blog post wanted from separate backward: one lr per task, one step.

    The losses are summed without weights: the weights went into the
    optimizer instead, as each head's learning rate (see
    `make_per_task_lr_step`), so they act on the heads alone.
    """
    losses = task_losses(net, batch, criteria)
    optimizer.zero_grad()
    sum(losses).backward()
    optimizer.step()
    return StepResult(torch.stack(losses).detach(), [1.0] * len(losses))


# --- building a step for a run (the registry's `make_step`) ------------------------------------------------


def recipe_step(recipe: Callable[..., StepResult]) -> Callable[[Setup], StepFn]:
    """`make_step` for a recipe that needs only the run's pieces and the config's weights."""

    def make_step(setup: Setup) -> StepFn:
        net, criteria, optimizer, weights = setup.net, setup.data.criteria, setup.optimizer, setup.config.weights
        return lambda batch: recipe(net, batch, criteria, optimizer, weights)

    return make_step


def make_alternating_steps(setup: Setup) -> StepFn:
    """Alternating steps, visiting the tasks in `config.task_order`."""
    net, criteria, optimizer, config = setup.net, setup.data.criteria, setup.optimizer, setup.config
    return lambda batch: alternating_steps(net, batch, criteria, optimizer, config.weights, config.task_order)


def make_per_task_lr_step(setup: Setup) -> StepFn:
    """Per-task learning rates: head i's param group gets lr * w_i; the trunk keeps lr."""
    for group in setup.optimizer.param_groups:
        if group["name"].startswith("head"):
            group["lr"] = setup.config.lr * setup.config.weights[int(group["name"][4:])]
    net, criteria, optimizer = setup.net, setup.data.criteria, setup.optimizer
    return lambda batch: per_task_lr(net, batch, criteria, optimizer)


def alternating_steps_problem(config: TrainConfig) -> str | None:
    """Why a config cannot run the blog post's recipe 2 (None if it can)."""
    if len(config.hidden) == 1:
        return None
    return (
        f"hidden={config.hidden!r} is not allowed with strategy='alternating_steps': use one trunk layer, e.g. (32,). "
        "The recipe calls step() between two backward calls on one graph, and step() changes in place every "
        "parameter that has a gradient; the second backward still needs the weights of the trunk's later layers, "
        "saved by the forward, so PyTorch raises 'modified by an inplace operation'. One layer runs only because "
        "the forward saves no trunk weight then (the input needs no gradient) and zero_grad() sets gradients to "
        "None (set_to_none=True, its default), so the first step() skips the other head; with "
        "zero_grad(set_to_none=False) the recipe fails at the second batch even with one layer. See notebook 03"
    )
