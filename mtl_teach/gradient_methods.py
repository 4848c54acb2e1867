"""Gradient methods as training steps (PCGrad, MGDA, CAGrad, UPGrad, IMTL-G, Nash-MTL, Aligned-MTL).

One step: forward; the weighted task losses w_i * L_i; their T x D matrix G
of gradients on the shared trunk (`mtl_teach.grads.task_gradients`); the
method's task weights lam from G (`mtl_teach.aggregators`); the trunk's
.grad set to lam @ G; each head gets its own task's gradient, as with
`weighted_sum`; one optimizer step. The step also reports how the task
gradients related (cosine, conflicting, each task's gradient norm).
"""

from __future__ import annotations

import math
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


def make_gradient_method_step(weighting: Weighting, update_every: int = 1) -> Callable[[Setup], StepFn]:
    """`make_step` for the registry: a gradient method's step, reporting how the task gradients related.

    `update_every=k` computes G and the weights lam only every k steps and
    reuses lam in between (Nash-MTL's `update_weights_every` option): a reuse
    step is one backward of sum_i lam_i w_i L_i into the trunk, plus the heads'
    own gradients, with no G. Its cosine and norms are not measured: NaN.
    """
    if not isinstance(update_every, int) or isinstance(update_every, bool) or update_every < 1:
        raise ValueError(f"update_every={update_every!r} must be a whole number of steps, at least 1")

    def make_step(setup: Setup) -> StepFn:
        net, criteria, optimizer, weights = setup.net, setup.data.criteria, setup.optimizer, setup.config.weights
        names, state = setup.data.task_names, {"steps": 0, "lam": None}  # lam: the weights of the last update

        def remembered(G: torch.Tensor) -> torch.Tensor:
            state["lam"] = weighting(G)
            return state["lam"]

        def step(batch: Batch) -> StepResult:
            reuse = state["steps"] % update_every != 0
            state["steps"] += 1
            if reuse:
                losses = reuse_weights_step(state["lam"], net, batch, criteria, optimizer, weights)
                return StepResult(torch.stack(losses).detach(), weights, dict.fromkeys(conflict_keys(names), math.nan))
            losses, G = gradient_method_step(remembered, net, batch, criteria, optimizer, weights)
            return StepResult(torch.stack(losses).detach(), weights, conflict(G).as_extras(names))

        return step

    return make_step


def reuse_weights_step(
    lam: torch.Tensor,
    net: nn.Module,
    batch: Batch,
    criteria: Sequence[nn.Module],
    optimizer: torch.optim.Optimizer,
    weights: Sequence[float],
) -> list[torch.Tensor]:
    """One step along lam @ G without computing G.

    One backward of sum_i lam_i w_i L_i puts exactly lam @ G into the trunk's
    .grad; head i, reached by task i alone, gets lam_i times its own gradient,
    so it is divided by lam_i. (With a zero weight, the heads get a backward of their own.)
    """
    losses = task_losses(net, batch, criteria)
    weighted = [w * loss for w, loss in zip(weights, losses)]
    optimizer.zero_grad()
    if (lam > 0).all():
        torch.autograd.backward(weighted, grad_tensors=list(lam))
        for lam_i, head in zip(lam, net.heads):
            for p in head.parameters():
                p.grad.div_(lam_i)
    else:
        torch.autograd.backward(weighted, grad_tensors=list(lam), inputs=net.shared_parameters(), retain_graph=True)
        torch.autograd.backward(sum(weighted), inputs=net.head_parameters())
    optimizer.step()
    return losses


def conflict_keys(task_names: Sequence[str]) -> list[str]:
    """The keys of `Conflict.as_extras`: what a gradient method's step reports."""
    return ["cosine", "conflicting", *(f"grad_norm/{name}" for name in task_names)]
