"""Gradient methods as training steps (PCGrad, MGDA, CAGrad, UPGrad, IMTL-G).

One step: forward; the weighted task losses w_i * L_i; their T x D matrix G
of gradients on the shared trunk (`mtl_teach.grads.task_gradients`); the
method's task weights lam from G (`mtl_teach.aggregators`); the trunk's
.grad set to lam @ G; each head gets its own task's gradient, as with
`weighted_sum`; one optimizer step. The step also reports how the task
gradients related (cosine, conflicting, each task's gradient norm).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from mtl_teach.aggregators import Weighting
from mtl_teach.grads import conflict, task_gradients, unflatten
from mtl_teach.losses import task_losses
from mtl_teach.strategies import Batch, Setup, StepFn, StepResult, TrainingDiverged


def gradient_method_step(
    weighting: Weighting,
    net: nn.Module,
    batch: Batch,
    criteria: Sequence[nn.Module],
    optimizer: torch.optim.Optimizer,
    weights: Sequence[float],
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """One step along `weighting(G) @ G`; returns the task losses and G (T x D)."""
    losses = task_losses(net, batch, criteria)
    weighted = [w * loss for w, loss in zip(weights, losses)]
    shared, heads = net.shared_parameters(), net.head_parameters()
    rows = task_gradients(weighted, shared + heads)  # row i: the gradient of w_i * L_i on every parameter
    if not torch.isfinite(rows).all():
        raise TrainingDiverged("a task gradient became NaN/inf")
    D = sum(p.numel() for p in shared)
    G = rows[:, :D]  # the trunk's part: where the tasks meet
    trunk = weighting(G) @ G  # the method's task weights, applied to the task gradients
    own_heads = rows[:, D:].sum(dim=0)  # a head is reached by its own task only: the rows add up to its gradient
    optimizer.zero_grad()
    for p, g in zip(shared + heads, unflatten(torch.cat([trunk, own_heads]), shared + heads)):
        p.grad = g
    optimizer.step()
    return losses, G


def make_gradient_method_step(weighting: Weighting) -> Callable[[Setup], StepFn]:
    """`make_step` for the registry: a gradient method's step, reporting how the task gradients related."""

    def make_step(setup: Setup) -> StepFn:
        net, criteria, optimizer, weights = setup.net, setup.data.criteria, setup.optimizer, setup.config.weights

        def step(batch: Batch) -> StepResult:
            losses, G = gradient_method_step(weighting, net, batch, criteria, optimizer, weights)
            return StepResult(torch.stack(losses).detach(), weights, conflict(G).as_extras(setup.data.task_names))

        return step

    return make_step
