"""Every way to turn task losses into a parameter update, one short function each.

A strategy is `step(
    net: nn.Module, batch: Batch, criterion: MultiTaskLoss, optimizer: torch.optim.Optimizer, weights: Sequence[float]
) -> losses`:
it runs one training step on `batch = (X, targets)` and returns the
per-task losses (detached, shape (T,)) measured before the update.
`STRATEGIES` is the registry that the CLI and the playground list.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from mtl_teach.losses import MultiTaskLoss

Batch = tuple[torch.Tensor, Sequence[torch.Tensor]]
StepFn = Callable[[nn.Module, Batch, MultiTaskLoss, torch.optim.Optimizer, Sequence[float]], torch.Tensor]


def task_losses(net: nn.Module, batch: Batch, criterion: MultiTaskLoss) -> list[torch.Tensor]:
    """Forward pass, then one unweighted loss per task."""
    X, targets = batch
    return criterion.per_task(net(X), targets)


def weighted_sum(
    net: nn.Module, batch: Batch, criterion: MultiTaskLoss, optimizer: torch.optim.Optimizer, weights: Sequence[float]
) -> torch.Tensor:
    """Recipe 1 of the blog post: one backward of sum(w_i * L_i), one step."""
    losses = task_losses(net, batch, criterion)
    total = sum(w * loss for w, loss in zip(weights, losses))
    optimizer.zero_grad()
    total.backward()
    optimizer.step()
    return torch.stack(losses).detach()


def separate_backward(
    net: nn.Module, batch: Batch, criterion: MultiTaskLoss, optimizer: torch.optim.Optimizer, weights: Sequence[float]
) -> torch.Tensor:
    """One backward per task; .grad accumulates the sum; then one step.

    Every backward but the last keeps the shared graph (retain_graph=True),
    because the next task's backward walks through the same trunk.
    """
    losses = task_losses(net, batch, criterion)
    optimizer.zero_grad()
    for i, (w, loss) in enumerate(zip(weights, losses)):
        is_last = i == len(losses) - 1
        (w * loss).backward(retain_graph=not is_last)
    optimizer.step()
    return torch.stack(losses).detach()


def backward_list(
    net: nn.Module, batch: Batch, criterion: MultiTaskLoss, optimizer: torch.optim.Optimizer, weights: Sequence[float]
) -> torch.Tensor:
    """One call for all tasks: backward([L_1, L_2], grad_tensors=[w_1, w_2])."""
    losses = task_losses(net, batch, criterion)
    optimizer.zero_grad()
    grad_tensors = [torch.tensor(w, dtype=loss.dtype) for w, loss in zip(weights, losses)]
    torch.autograd.backward(losses, grad_tensors=grad_tensors)
    optimizer.step()
    return torch.stack(losses).detach()


def alternating_steps(
    net: nn.Module,
    batch: Batch,
    criterion: MultiTaskLoss,
    optimizer: torch.optim.Optimizer,
    weights: Sequence[float],
    order: Sequence[int] = (0, 1),
) -> torch.Tensor:
    """Recipe 2 of the blog post: zero_grad, backward, step for each task in turn.

    This is alternating optimisation, not a sum: the second backward uses
    activations computed before the first step, and the optimizer's state
    (momentum, Adam moments, step count) advances once per task.
    """
    losses = task_losses(net, batch, criterion)
    for n, i in enumerate(order):
        is_last = n == len(order) - 1
        optimizer.zero_grad()
        (weights[i] * losses[i]).backward(retain_graph=not is_last)
        optimizer.step()
    return torch.stack(losses).detach()


def per_task_lr(
    net: nn.Module, batch: Batch, criterion: MultiTaskLoss, optimizer: torch.optim.Optimizer, weights: Sequence[float]
) -> torch.Tensor:
    """What the blog post wanted from separate backward: one lr per task, one step.

    The losses are summed without weights; each head has its own param
    group whose lr is `lr * w_i` (see `make_optimizer`), so the weights act
    as per-head learning-rate multipliers, for SGD and Adam alike.
    """
    losses = task_losses(net, batch, criterion)
    optimizer.zero_grad()
    sum(losses).backward()
    optimizer.step()
    return torch.stack(losses).detach()


@dataclass(frozen=True)
class Strategy:
    """A registry entry. `step` is the step function; a method that keeps
    state across steps (learned weights, loss history) gives `make_step`
    instead, called once per run with the run's `Setup` to build a fresh
    step function. A step function may set `step.last_extras` (a dict of
    floats, e.g. learned weights) and the loop records it in `History.extras`.
    """

    name: str
    step: StepFn | None
    summary: str
    weights_are_head_lrs: bool = False  # True: weights scale head lrs, not losses
    make_step: Callable[..., StepFn] | None = None


def register(strategy: Strategy) -> Strategy:
    """Add a strategy to the registry (the CLI and playground list it)."""
    if (strategy.step is None) == (strategy.make_step is None):
        raise ValueError(f"strategy {strategy.name!r} needs exactly one of step or make_step")
    STRATEGIES[strategy.name] = strategy
    return strategy


STRATEGIES: dict[str, Strategy] = {
    s.name: s
    for s in (
        Strategy("weighted_sum", weighted_sum, "one backward of the weighted sum, one step"),
        Strategy("separate_backward", separate_backward, "one backward per task, grads add up, one step"),
        Strategy("backward_list", backward_list, "autograd.backward([L1, L2], grad_tensors=[a, b])"),
        Strategy(
            "alternating_steps", alternating_steps, "recipe 2 of the blog post: a step after each task's backward"
        ),
        Strategy("per_task_lr", per_task_lr, "plain sum, one lr per head (param groups)", True),
    )
}


def make_optimizer(
    net: nn.Module, name: str, lr: float, momentum: float = 0.0, head_lrs: Sequence[float] | None = None
) -> torch.optim.Optimizer:
    """SGD or Adam with one param group for the trunk and one per head.

    `head_lrs[i]`, if given, is head i's learning rate; the trunk keeps `lr`.
    """
    heads_lr = head_lrs if head_lrs is not None else [lr] * len(net.heads)
    groups = [{"params": net.trunk.parameters(), "lr": lr, "name": "trunk"}]
    groups += [
        {"params": head.parameters(), "lr": head_lr, "name": f"head{i}"}
        for i, (head, head_lr) in enumerate(zip(net.heads, heads_lr, strict=True))
    ]
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum)
    if name == "adam":
        return torch.optim.Adam(groups, lr=lr)
    raise ValueError(f"optimizer={name!r} is not known; choose 'sgd' or 'adam'")


import mtl_teach.gradient_strategies  # noqa: E402, F401  (registers pcgrad, mgda, cagrad, upgrad, imtl_g)
from mtl_teach import weighting  # noqa: E402, F401  (registers uncertainty, dwa, gradnorm)
