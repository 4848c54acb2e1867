"""Training steps under DistributedDataParallel: the recipes notebook 07 runs on two processes.

Each is `step(ddp, optimizer, batch, criteria, weights)`: one training step
of the DDP-wrapped model `ddp` on this rank's `batch = (X, targets)`, with
loss weights `weights`. They are notebook 07's lesson (it prints their
source); they live in a module because every rank is a fresh process that
imports them (`mtl_teach.distributed.launch`).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext

import torch
import torch.distributed as dist
from torch import nn

from mtl_teach.aggregators import Weighting, pcgrad
from mtl_teach.grads import task_gradients, unflatten
from mtl_teach.losses import task_losses

Batch = tuple[torch.Tensor, Sequence[torch.Tensor]]


def sum_then_backward(ddp: nn.Module, optimizer, batch: Batch, criteria, weights: Sequence[float]) -> None:
    """One forward, one backward of the weighted sum, one step."""
    losses = task_losses(ddp, batch, criteria)  # one forward: DDP expects one backward from it
    optimizer.zero_grad()
    sum(w * loss for w, loss in zip(weights, losses)).backward()  # all-reduces bucket by bucket as they fill
    optimizer.step()


def backward_per_task(ddp: nn.Module, optimizer, batch: Batch, criteria, weights, set_to_none: bool = True) -> None:
    """One forward, then one backward per task (notebook 02's second recipe), one step."""
    losses = task_losses(ddp, batch, criteria)  # one forward
    optimizer.zero_grad(set_to_none=set_to_none)  # set_to_none=False: zero tensors, the default before torch 2.0
    for i, (w, loss) in enumerate(zip(weights, losses)):
        (w * loss).backward(retain_graph=i < len(losses) - 1)  # a second backward of the same forward
    optimizer.step()


def forward_per_task(ddp: nn.Module, optimizer, batch: Batch, criteria, weights: Sequence[float]) -> None:
    """A forward and a backward per task, then one step: every backward has a forward of its own."""
    X, targets = batch
    optimizer.zero_grad()
    for i, (w, criterion) in enumerate(zip(weights, criteria)):
        outputs = ddp(X)  # a new forward: every head runs, only head i's output enters task i's loss
        (w * criterion(outputs[i], targets[i])).backward()
    optimizer.step()


def accumulate_in_no_sync(ddp: nn.Module, optimizer, batch: Batch, criteria, weights, micro_batches: int = 2) -> None:
    """Gradient accumulation: each micro-batch but the last runs forward AND backward inside no_sync()."""
    X, targets = batch
    optimizer.zero_grad()
    for k, rows in enumerate(torch.arange(len(X)).chunk(micro_batches)):
        last = k == micro_batches - 1
        with nullcontext() if last else ddp.no_sync():  # DDP decides at the forward whether to all-reduce
            losses = task_losses(ddp, (X[rows], [t[rows] for t in targets]), criteria)
            (sum(w * loss for w, loss in zip(weights, losses)) / micro_batches).backward()
    optimizer.step()


def no_sync_around_backward_only(ddp: nn.Module, optimizer, batch: Batch, criteria, weights, micro_batches: int = 2):
    """The same accumulation with no_sync() around the backward only (a mistake: see notebook 07)."""
    X, targets = batch
    optimizer.zero_grad()
    for k, rows in enumerate(torch.arange(len(X)).chunk(micro_batches)):
        last = k == micro_batches - 1
        losses = task_losses(ddp, (X[rows], [t[rows] for t in targets]), criteria)  # forward outside no_sync()
        with nullcontext() if last else ddp.no_sync():
            (sum(w * loss for w, loss in zip(weights, losses)) / micro_batches).backward()
    optimizer.step()


def method_after_all_reduce(ddp, optimizer, batch: Batch, criteria, weights, weighting: Weighting = pcgrad) -> None:
    """A gradient method under DDP, done right: all-reduce every task's gradient, then combine them."""
    net = ddp.module  # the plain model: DDP's reducer would average only the one gradient that lands in .grad
    losses = task_losses(net, batch, criteria)
    params = net.shared_parameters() + net.head_parameters()
    rows = task_gradients([w * loss for w, loss in zip(weights, losses)], params)  # T x (all params): my shard
    dist.all_reduce(rows)
    rows /= dist.get_world_size()  # now every rank holds each task's gradient on the whole batch
    D = sum(p.numel() for p in net.shared_parameters())
    G = rows[:, :D]  # the trunk's part: where the tasks meet
    direction = torch.cat([weighting(G) @ G, rows[:, D:].sum(dim=0)])  # trunk: the method; heads: own task's gradient
    optimizer.zero_grad()
    for p, g in zip(params, unflatten(direction, params)):
        p.grad = g
    optimizer.step()


def method_then_all_reduce(ddp, optimizer, batch: Batch, criteria, weights, weighting: Weighting = pcgrad) -> None:
    """A gradient method under DDP, done wrong: combine my shard's task gradients, then all-reduce the result."""
    net = ddp.module
    losses = task_losses(net, batch, criteria)
    params = net.shared_parameters() + net.head_parameters()
    rows = task_gradients([w * loss for w, loss in zip(weights, losses)], params)  # T x (all params): my shard
    D = sum(p.numel() for p in net.shared_parameters())
    G = rows[:, :D]
    direction = torch.cat([weighting(G) @ G, rows[:, D:].sum(dim=0)])  # combined on my shard alone
    dist.all_reduce(direction)
    direction /= dist.get_world_size()  # the average of the ranks' directions
    optimizer.zero_grad()
    for p, g in zip(params, unflatten(direction, params)):
        p.grad = g
    optimizer.step()
