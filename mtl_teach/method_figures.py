"""Every method as a picture: what each one does with the same task gradients.

Each method of the registry, given the task gradients as the rows of G
(T x D), puts task weights w (T,) on them and updates along d = w @ G:

- the plain sum ("sum" family): w = (1, ..., 1);
- a gradient method ("gradient" family): w = aggregators.WEIGHTINGS[name](G),
  the function its training step applies to G;
- a loss-weighting method ("weighting" family): the weights it settles on
  when the task losses and gradients stay at the given values
  (`settled_weights`: its own training step, run on a network that does
  not move).

`method_weights` computes them all; `draw_methods` draws one panel per
method (2-D gradients), with the arrows w_i g_i laid tip to tail so the
picture shows how d = w @ G is built.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from matplotlib.figure import Figure
from torch import nn

from mtl_teach.aggregators import WEIGHTINGS
from mtl_teach.config import TrainConfig
from mtl_teach.models import SharedTrunkNet
from mtl_teach.registry import STRATEGIES, names
from mtl_teach.strategies import Setup
from mtl_teach.style import TOTAL_COLOR, task_colors
from mtl_teach.train import one_torch_thread


def figure_methods() -> list[str]:
    """The methods a figure shows by default: the plain sum, then every weighting and gradient method."""
    return ["weighted_sum", *names("weighting"), *names("gradient")]


class _LinearLoss(nn.Module):
    """loss = output - target: a loss whose value and gradient we choose (the probe's tasks)."""

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return (output - target).mean()


@dataclass(frozen=True)
class _ProbeData:
    """One example whose task i has loss `losses[i]` and trunk gradient G[i] (see `_probe`)."""

    X: torch.Tensor
    targets: tuple[torch.Tensor, ...]
    task_names: tuple[str, ...]
    criteria: tuple[nn.Module, ...]
    head_dims: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.X)


def _probe(G: torch.Tensor, losses: torch.Tensor, lr: float) -> Setup:
    """A run whose task losses are `losses` and whose trunk gradients are the rows of G, and stay so.

    The trunk is one Linear layer of D units with weight 1 and no bias, so its
    features are all 1 on the input x = 1; head i has weight G[i], so
    d loss_i / d (trunk weight) = G[i], and the trunk has no other parameter
    (a bias would add a second copy of G[i] to the shared gradient, doubling
    the Gram matrix that Nash-MTL's weights depend on). The network's own param groups have
    lr 0 (it never moves); a method's learned weights join with lr `lr`.
    """
    T, D = G.shape
    net = SharedTrunkNet(1, hidden=(D,), head_dims=(1,) * T, dtype=torch.float64)
    net.trunk[0].register_parameter("bias", None)
    with torch.no_grad():
        net.trunk[0].weight.fill_(1.0)
        for head, g in zip(net.heads, G):
            head.weight.copy_(g.unsqueeze(0))
            head.bias.zero_()
    targets = tuple((g.sum() - loss).reshape(1) for g, loss in zip(G, losses))  # head output - target = loss
    task_names = tuple(f"task {i + 1}" for i in range(T))
    data = _ProbeData(torch.ones(1, 1, dtype=torch.float64), targets, task_names, (_LinearLoss(),) * T, (1,) * T)
    groups = [{"params": net.trunk.parameters(), "name": "trunk", "lr": 0.0}]
    groups += [{"params": head.parameters(), "name": f"head{i}", "lr": 0.0} for i, head in enumerate(net.heads)]
    optimizer = torch.optim.Adam(groups, lr=lr)
    config = TrainConfig(alpha=1.0, beta=1.0, lr=lr, batch_size=1, dtype="float64")
    return Setup(config, data, net, optimizer)


def settled_weights(
    name: str, G: torch.Tensor, losses: Sequence[float], steps: int = 200, lr: float = 0.05
) -> tuple[torch.Tensor, torch.Tensor]:
    """(weights, direction) of a registered method after `steps` steps at fixed losses and gradients.

    Its own step (`registry.STRATEGIES[name].make_step`) runs `steps` times on
    a network that does not move (`_probe`), so each task keeps loss
    `losses[i]` and trunk gradient G[i]; its learned weights train with Adam
    at `lr`. Returns the weights its last step reports and the direction it
    sent to the optimizer (the trunk weight's .grad), which is w @ G.
    """
    if name not in STRATEGIES:
        raise ValueError(f"method {name!r} is not in the registry; choose from {list(STRATEGIES)}")
    G, losses = _checked(G, losses)
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps={steps!r} must be a whole number, at least 1")
    setup = _probe(G, losses, lr)
    batch = (setup.data.X, list(setup.data.targets))
    with one_torch_thread():  # tiny tensors: one thread is faster (see train.one_torch_thread)
        step = STRATEGIES[name].make_step(setup)
        for _ in range(steps):
            result = step(batch)
    weights = torch.as_tensor(result.weights, dtype=torch.float64)
    return weights, setup.net.trunk[0].weight.grad[:, 0].clone()


def method_weights(
    G: torch.Tensor, losses: Sequence[float] | None = None, methods: Sequence[str] | None = None
) -> dict[str, torch.Tensor]:
    """{method: its task weights (T,)} for the task gradients G (T x D) and task losses (default all 1).

    The sum: all 1. Gradient methods: `aggregators.WEIGHTINGS[name](G)`
    (one without an entry there: read back from its step's direction).
    Weighting methods: `settled_weights`. Recipes have no single direction.
    """
    G, losses = _checked(G, [1.0] * len(G) if losses is None else losses)
    out = {}
    for name in figure_methods() if methods is None else methods:
        if name not in STRATEGIES:
            raise ValueError(f"method {name!r} is not in the registry; choose from {list(STRATEGIES)}")
        family = STRATEGIES[name].family
        if family == "recipe":
            raise ValueError(f"{name!r} steps more than once per batch: it has no single direction to draw")
        if family == "sum":
            out[name] = torch.ones(len(G), dtype=G.dtype)
        elif family == "gradient" and name in WEIGHTINGS:
            out[name] = WEIGHTINGS[name](G)
        elif family == "gradient":  # its step applies w to G; read w back from d = w @ G
            _, d = settled_weights(name, G, losses, steps=1)
            out[name] = torch.linalg.lstsq(G.T, d.unsqueeze(1)).solution[:, 0]
        else:
            out[name] = settled_weights(name, G, losses)[0]
    return out


def _checked(G: torch.Tensor, losses: Sequence[float]) -> tuple[torch.Tensor, torch.Tensor]:
    """G as a float64 T x D matrix and the losses as T positive numbers, or a clear error."""
    if not isinstance(G, torch.Tensor) or G.ndim != 2 or G.shape[0] < 2 or G.shape[1] < 1:
        shape = tuple(G.shape) if isinstance(G, torch.Tensor) else type(G).__name__
        raise ValueError(f"G must be a T x D matrix of task gradients with T >= 2 tasks, got {shape}")
    losses = torch.as_tensor(losses, dtype=torch.float64).reshape(-1)
    if len(losses) != len(G) or not (torch.isfinite(losses).all() and (losses > 0).all()):
        raise ValueError(f"losses={losses.tolist()} must be {len(G)} positive finite numbers, one per task")
    if not torch.isfinite(G).all():
        raise ValueError("G has NaN or infinite entries")
    return G.double(), losses


def draw_methods(
    G: torch.Tensor,
    losses: Sequence[float] | None = None,
    methods: Sequence[str] | None = None,
    task_names: Sequence[str] | None = None,
    columns: int = 5,
    weights: dict[str, torch.Tensor] | None = None,
) -> Figure:
    """One panel per method for 2-D task gradients G (T x 2): its weights, and d = w @ G.

    In each panel: the task gradients g_i (pale, in the task's colour), the
    weighted gradients w_i g_i laid tip to tail (the task's colour), and
    their sum d (black). The title names the method and its weights; the
    label under it gives <d, g_i> for each task (negative: d works against it).
    `weights` ({method: w}, e.g. from `method_weights`) skips computing them again.
    """
    G = _checked(G, [1.0] * len(G) if losses is None else losses)[0]
    if G.shape[1] != 2:
        raise ValueError(f"draw_methods draws 2-D gradients: G must be T x 2, got {tuple(G.shape)}")
    if weights is None:
        weights = method_weights(G, losses, methods)
    elif any(torch.as_tensor(w).shape != (len(G),) for w in weights.values()):
        raise ValueError(f"weights must hold one weight per task ({len(G)}) for each method")
    weights = {name: torch.as_tensor(w, dtype=G.dtype) for name, w in weights.items()}
    colors = list(task_colors(task_names or [f"task {i + 1}" for i in range(len(G))]).items())
    rows = math.ceil(len(weights) / columns)
    limits = _limits(G, weights.values())
    height = 2.6 * min(1.5, max(0.3, (limits[1][1] - limits[1][0]) / (limits[0][1] - limits[0][0])))  # aspect 1
    fig = Figure(figsize=(2.6 * min(columns, len(weights)), (height + 0.8) * rows + 0.5), layout="constrained")
    fig.set_facecolor("white")
    axes = fig.subplots(rows, min(columns, len(weights)), squeeze=False).flatten()
    for ax, (name, w) in zip(axes, weights.items()):
        _draw_panel(ax, name, G, w, colors, limits)
    for ax in axes[len(weights) :]:
        ax.set_axis_off()
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=len(handles))
    return fig


def _draw_panel(ax, name: str, G: torch.Tensor, w: torch.Tensor, colors, limits) -> None:
    """Task gradients, the weighted gradients tip to tail, and d = w @ G, on one axis."""
    arrow = {"angles": "xy", "scale_units": "xy", "scale": 1}
    tip = torch.zeros(2, dtype=torch.float64)
    for (task, color), g, w_i in zip(colors, G, w):
        ax.quiver(0, 0, g[0], g[1], color=color, alpha=0.3, width=0.012, label=f"g ({task})", gid=f"g/{task}", **arrow)
        part = w_i * g
        ax.quiver(*tip, *part, color=color, width=0.02, label=f"w·g ({task})", gid=f"part/{task}", **arrow)
        tip = tip + part
    d = w @ G
    ax.quiver(0, 0, d[0], d[1], color=TOTAL_COLOR, width=0.012, label="d = w @ G", gid="direction", **arrow)
    label = f"{name} ({STRATEGIES[name].family})" if name in STRATEGIES else name  # given weights may be anything
    ax.set_title(f"{label}\nw = ({', '.join(f'{v:.2f}' for v in w.tolist())})", fontsize=9)
    ax.set_xlabel("<d, g_i> = (" + ", ".join(f"{v:+.2g}" for v in (G @ d).tolist()) + ")", fontsize=8)
    ax.set(xlim=limits[0], ylim=limits[1], aspect="equal", xticks=[], yticks=[])
    ax.axhline(0, color="0.85", lw=0.6, zorder=0)
    ax.axvline(0, color="0.85", lw=0.6, zorder=0)


def _limits(G: torch.Tensor, all_weights) -> tuple[tuple[float, float], tuple[float, float]]:
    """Common x and y limits that hold every arrow of every panel, with a margin."""
    points = [torch.zeros(1, 2, dtype=torch.float64), G]
    for w in all_weights:
        points.append((w.unsqueeze(1) * G).cumsum(dim=0))  # the tips of the tip-to-tail chain, d last
    points = torch.cat(points)
    low, high = points.min(dim=0).values, points.max(dim=0).values
    margin = 0.1 * (high - low).max().item()
    return (low[0].item() - margin, high[0].item() + margin), (low[1].item() - margin, high[1].item() + margin)
