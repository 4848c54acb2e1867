"""Train many loss weightings at once: K copies of one model in stacked tensors.

`sweep(config, alphas=torch.linspace(0, 1, 21))` trains one run per
weighting (alpha_k, beta_k) of the weighted sum, all from the same
initial weights on the same minibatches, and gives the same numbers as
K calls of `train` (up to floating-point rounding), an order of
magnitude faster: every layer runs as one batched matmul over the K
models (`torch.baddbmm`), one backward computes all K gradients, and the
optimizer (SGD with momentum or Adam, written out below exactly as
`torch.optim` computes it) updates all K rows of one parameter matrix.

Why one backward is enough: the objective is sum_k (alpha_k L1_k + beta_k L2_k),
and model k's parameters appear only in its own term, so the gradient
for row k is exactly model k's own gradient.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.func import vmap
from torch.nn import functional as F

from mtl_teach.config import ConfigError, TrainConfig
from mtl_teach.data import batch_indices
from mtl_teach.losses import SigmoidBCELoss
from mtl_teach.models import SharedTrunkNet
from mtl_teach.train import build

# Strategies whose update is one step on the gradient of the weighted sum (the others are not a weighted sum).
SUM_STRATEGIES = ("weighted_sum", "separate_backward", "backward_list")


@dataclass
class SweepResult:
    """What a sweep recorded, one row per weighting k (K in all), T tasks."""

    config: TrainConfig  # the shared settings (its alpha, beta are not used)
    task_names: tuple[str, ...]
    weights: torch.Tensor  # (K, T): the loss weights (alpha_k, beta_k) of run k
    curves: torch.Tensor  # (steps, K, T): minibatch task losses before each update, as in History.losses
    final_losses: torch.Tensor  # (K, T): task losses on the whole training set after the last step
    params: torch.Tensor  # (K, D): each run's final parameters, flattened in `net.parameters()` order
    diverged_at: list[int | None]  # per run: first step whose loss was NaN/inf, or None
    elapsed_s: float = 0.0

    def net(self, k: int) -> SharedTrunkNet:
        """Run k's trained model, as an ordinary `SharedTrunkNet`."""
        if not 0 <= k < len(self.weights):
            raise IndexError(f"k={k!r} is out of range: this sweep has runs 0 to {len(self.weights) - 1}")
        net = build(self.config).net
        nn.utils.vector_to_parameters(self.params[k].clone(), net.parameters())
        return net


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
) -> SweepResult:
    """Train the weighted sum once per weighting, all K runs at once (see the module docstring).

    `config` gives everything but the weights (its strategy must be a
    weighted sum, see SUM_STRATEGIES); the weightings come from `alphas`
    (with `betas`, default 1 - alpha) or from `weights=[(alpha, beta), ...]`.
    """
    config = config or TrainConfig()
    pairs = weight_pairs(alphas, betas, weights)
    if config.strategy not in SUM_STRATEGIES:
        raise ConfigError(
            f"strategy={config.strategy!r} cannot be swept: sweep trains the weighted sum, "
            f"so use one of {list(SUM_STRATEGIES)}"
        )
    for k, (a, b) in enumerate(pairs):
        try:
            config.replace(alpha=a, beta=b)  # validates the pair exactly as a single run would
        except ConfigError as error:
            raise ConfigError(f"weighting {k} (alpha={a!r}, beta={b!r}): {error}") from None
    start = time.perf_counter()
    setup = build(config)  # the data, the initial model and the loss functions, as `train` builds them
    runs = StackedRuns(setup.net, len(pairs))
    w = torch.tensor(pairs, dtype=runs.theta.dtype)  # (K, T)
    optimizer = BatchedOptimizer(runs.theta, config)
    X, targets = setup.data.X, setup.data.targets
    indices = batch_indices(len(setup.data), config.batch_size, config.steps, config.seed)
    curves = torch.empty(config.steps, len(pairs), len(targets), dtype=w.dtype)
    for step, idx in enumerate(indices):
        outputs = runs.forward(X[idx])
        losses = per_run_losses(setup.criterion.criteria, outputs, [t[idx] for t in targets])  # (K, T)
        runs.theta.grad = None
        (w * losses).sum().backward()
        optimizer.step()
        curves[step] = losses.detach()
    with torch.no_grad():
        outputs = runs.forward(X)
        final = per_run_losses(setup.criterion.criteria, outputs, targets)
    return SweepResult(
        config=config,
        task_names=setup.data.task_names,
        weights=w,
        curves=curves,
        final_losses=final,
        params=runs.theta.detach().clone(),
        diverged_at=_first_nonfinite_steps(curves),
        elapsed_s=time.perf_counter() - start,
    )


def per_run_losses(
    criteria: Sequence[nn.Module], outputs: list[torch.Tensor], targets: Sequence[torch.Tensor]
) -> torch.Tensor:
    """Each run's mean loss per task, (K, T), from outputs (K, B) or (K, B, C) and targets (B,)."""
    return torch.stack([_per_run_loss(c, o, t) for c, o, t in zip(criteria, outputs, targets, strict=True)], dim=1)


def _per_run_loss(criterion: nn.Module, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """`criterion` (a mean over the batch) for each run k at once: (K,)."""
    target = target.expand(output.shape[:2])  # (K, B): the same targets for every run
    if isinstance(criterion, nn.BCEWithLogitsLoss):
        per_sample = F.binary_cross_entropy_with_logits(output, target, reduction="none")
    elif isinstance(criterion, nn.MSELoss):
        per_sample = F.mse_loss(output, target, reduction="none")
    elif isinstance(criterion, nn.CrossEntropyLoss):
        per_sample = F.cross_entropy(output.transpose(1, 2), target, reduction="none")  # wants (K, C, B)
    elif isinstance(criterion, SigmoidBCELoss):
        per_sample = F.binary_cross_entropy(torch.sigmoid(output), target, reduction="none")
    else:  # any other loss: map it over the runs (slower, but general)
        return vmap(criterion)(output, target)
    return per_sample.mean(dim=1)


def _first_nonfinite_steps(curves: torch.Tensor) -> list[int | None]:
    """Per run, the first step with a NaN/inf task loss (None if it never happened)."""
    bad = ~torch.isfinite(curves).all(dim=2)  # (steps, K)
    return [int(column.nonzero()[0]) if column.any() else None for column in bad.T]


class StackedRuns:
    """K copies of a `SharedTrunkNet` as rows of one (K, D) parameter matrix `theta`.

    Row k is `parameters_to_vector(net_k.parameters())`; `forward` reads each
    layer's weights as views of `theta`, so autograd writes every layer's
    gradient into `theta.grad` (K, D), and the optimizer updates one tensor.
    """

    def __init__(self, net: SharedTrunkNet, k: int) -> None:
        self.shapes = [p.shape for p in net.parameters()]
        self.head_dims = [head.out_features for head in net.heads]
        row = nn.utils.parameters_to_vector(net.parameters()).detach()
        self.theta = row.repeat(k, 1).requires_grad_()  # same initial weights for every run

    def layers(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(weight (K, out, in), bias (K, out)) of each Linear layer, trunk first, then heads."""
        blocks = self.theta.split([math.prod(shape) for shape in self.shapes], dim=1)
        views = [block.unflatten(1, shape) for block, shape in zip(blocks, self.shapes)]
        return list(zip(views[0::2], views[1::2]))

    def forward(self, X: torch.Tensor) -> list[torch.Tensor]:
        """Every run's head outputs for the shared input X (B, F): (K, B) or (K, B, C) per head."""
        layers = self.layers()
        trunk, heads = layers[: -len(self.head_dims)], layers[-len(self.head_dims) :]
        h = X.expand(len(self.theta), *X.shape)  # (K, B, F): the same batch for every run
        for W, b in trunk:
            h = torch.relu(torch.baddbmm(b.unsqueeze(1), h, W.transpose(1, 2)))  # h @ W^T + b, per run
        outputs = [torch.baddbmm(b.unsqueeze(1), h, W.transpose(1, 2)) for W, b in heads]
        return [o.squeeze(-1) if o.shape[-1] == 1 else o for o in outputs]


class BatchedOptimizer:
    """SGD (with momentum) or Adam on a (K, D) matrix, each row its own run.

    The arithmetic is `torch.optim.SGD` / `torch.optim.Adam` with default
    settings, operation for operation (see their `_single_tensor_*`
    functions); every update is elementwise, so the rows never mix.
    """

    def __init__(self, theta: torch.Tensor, config: TrainConfig, betas: tuple[float, float] = (0.9, 0.999)) -> None:
        self.theta, self.name, self.lr, self.momentum = theta, config.optimizer, config.lr, config.momentum
        self.beta1, self.beta2, self.eps = betas[0], betas[1], 1e-8
        self.t = 0  # steps taken
        self.exp_avg = torch.zeros_like(theta)  # Adam's first moment, or SGD's momentum buffer
        self.exp_avg_sq = torch.zeros_like(theta)  # Adam's second moment

    @torch.no_grad()
    def step(self) -> None:
        self.t += 1
        grad = self.theta.grad
        if self.name == "adam":
            self.exp_avg.lerp_(grad, 1 - self.beta1)
            self.exp_avg_sq.mul_(self.beta2).addcmul_(grad, grad, value=1 - self.beta2)
            step_size = self.lr / (1 - self.beta1**self.t)
            denom = (self.exp_avg_sq.sqrt() / (1 - self.beta2**self.t) ** 0.5).add_(self.eps)
            self.theta.addcdiv_(self.exp_avg, denom, value=-step_size)
        elif self.momentum != 0:
            if self.t == 1:
                self.exp_avg.copy_(grad)  # torch starts the buffer at the first gradient
            else:
                self.exp_avg.mul_(self.momentum).add_(grad)
            self.theta.add_(self.exp_avg, alpha=-self.lr)
        else:
            self.theta.add_(grad, alpha=-self.lr)
