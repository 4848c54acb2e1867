"""Gradient methods as training strategies (PCGrad, MGDA, CAGrad, UPGrad, IMTL-G).

One step: forward; the weighted task losses w_i * L_i; their T x D matrix
of gradients on the shared trunk (`mtl_teach.grads`); one direction from an
aggregator (`mtl_teach.aggregators`) written into the trunk's `.grad`; each
head gets its own task's gradient, as with `weighted_sum`; one optimizer step. The step
reports how the task gradients related (`last_extras`: cosine, norms).

Importing this module registers the strategies (see the last line of
`mtl_teach/strategies.py`), so every playground dropdown lists them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import torch
from torch import nn

from mtl_teach import aggregators
from mtl_teach.grads import conflict, flatten, unflatten
from mtl_teach.losses import MultiTaskLoss
from mtl_teach.strategies import Batch, StepFn, Strategy, register, task_losses


def gradient_method_step(
    aggregate: aggregators.Aggregator,
    net: nn.Module,
    batch: Batch,
    criterion: MultiTaskLoss,
    optimizer: torch.optim.Optimizer,
    weights: Sequence[float],
) -> tuple[torch.Tensor, torch.Tensor]:
    """One step along `aggregate(G)`; returns the losses (detached, (T,)) and G (T x D)."""
    losses = task_losses(net, batch, criterion)
    weighted = [w * loss for w, loss in zip(weights, losses)]
    shared = net.shared_parameters()
    optimizer.zero_grad()
    G = backward_per_task(weighted, shared, task_specific_parameters(net))
    direction = aggregate(G)
    for p, g in zip(shared, unflatten(direction, shared)):
        p.grad = g  # trunk: the aggregated direction
    optimizer.step()
    return torch.stack(losses).detach(), G


def backward_per_task(
    losses: Sequence[torch.Tensor], shared: Sequence[nn.Parameter], heads: Sequence[nn.Parameter]
) -> torch.Tensor:
    """One backward pass per task; returns G (T x D) and adds into the heads' `.grad`.

    Each pass gives task i's row of G (its gradient on the trunk) and its
    gradient on its own head. A head is reached by one task only, so its
    `.grad` ends up exactly as after `sum(losses).backward()`.
    """
    rows = []
    for i, loss in enumerate(losses):
        is_last = i == len(losses) - 1
        grads = torch.autograd.grad(loss, [*shared, *heads], retain_graph=not is_last, allow_unused=True)
        rows.append(flatten(grads[: len(shared)], shared))
        for p, g in zip(heads, grads[len(shared) :]):
            if g is not None:
                p.grad = g if p.grad is None else p.grad + g
    return torch.stack(rows)


def task_specific_parameters(net: nn.Module) -> list[nn.Parameter]:
    """Every parameter outside the shared trunk (the heads)."""
    shared = {id(p) for p in net.shared_parameters()}
    return [p for p in net.parameters() if id(p) not in shared]


class GradientMethodStep:
    """A step function for one aggregator, made fresh for each run.

    After each step `last_extras` holds how the task gradients related
    (cosine, each norm, conflicting 0/1); the loop records it in
    `History.extras`.
    """

    def __init__(self, aggregate: aggregators.Aggregator) -> None:
        self.aggregate = aggregate
        self.last_extras: dict[str, float] = {}

    def __call__(
        self,
        net: nn.Module,
        batch: Batch,
        criterion: MultiTaskLoss,
        optimizer: torch.optim.Optimizer,
        weights: Sequence[float],
    ) -> torch.Tensor:
        losses, G = gradient_method_step(self.aggregate, net, batch, criterion, optimizer, weights)
        self.last_extras = conflict(G).as_extras()
        return losses


def _step_maker(aggregate: aggregators.Aggregator) -> Callable[[object], StepFn]:
    """`make_step` for the registry: a fresh `GradientMethodStep` per run."""

    def make_step(setup: object) -> StepFn:
        return GradientMethodStep(aggregate)

    return make_step


GRADIENT_METHODS: dict[str, tuple[aggregators.Aggregator, str]] = {
    "pcgrad": (aggregators.pcgrad, "PCGrad: drop the conflicting part of each task gradient, then sum"),
    "mgda": (aggregators.mgda, "MGDA: the min-norm convex combination of the task gradients"),
    "cagrad": (
        functools.partial(aggregators.cagrad, c=0.5),
        "CAGrad (c=0.5): near the mean gradient, best for the worst-off task",
    ),
    "upgrad": (aggregators.upgrad, "UPGrad: mean of the task gradients projected to conflict with none"),
    "imtl_g": (aggregators.imtl_g, "IMTL-G: equal projection onto every task's unit gradient"),
}

for _name, (_aggregate, _summary) in GRADIENT_METHODS.items():
    register(Strategy(_name, None, _summary, make_step=_step_maker(_aggregate)))
