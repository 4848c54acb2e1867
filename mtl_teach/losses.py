"""Task losses: one per task from one forward pass, and the blog post's weighted sum of them."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def task_losses(
    net: nn.Module, batch: tuple[torch.Tensor, Sequence[torch.Tensor]], criteria: Sequence[nn.Module]
) -> list[torch.Tensor]:
    """One forward pass of `batch = (X, targets)`, then each task's (unweighted) loss."""
    X, targets = batch
    return [criterion(output, target) for criterion, output, target in zip(criteria, net(X), targets, strict=True)]


class MultiTaskLoss(nn.Module):
    """`loss = alpha * loss_class + beta * loss_regress`, generalised.

    `criteria[i]` scores output i against target i; `weights[i]` scales it.
    By default: a binary classification on logits (`BCEWithLogitsLoss`,
    numerically safe) and a regression (`MSELoss`). `from_logits=False`
    gives the blog post's fragile `sigmoid` + `BCELoss` pair instead.
    """

    def __init__(
        self,
        weights: Sequence[float] = (0.5, 0.5),
        criteria: Sequence[nn.Module] | None = None,
        from_logits: bool = True,
    ) -> None:
        super().__init__()
        if criteria is None:
            classify = nn.BCEWithLogitsLoss() if from_logits else SigmoidBCELoss()
            criteria = (classify, nn.MSELoss())
        if len(weights) != len(criteria):
            raise ValueError(
                f"got {len(weights)} weights {tuple(weights)} for {len(criteria)} tasks; give one weight per task"
            )
        self.weights = tuple(float(w) for w in weights)
        self.criteria = nn.ModuleList(criteria)

    def per_task(self, outputs: Sequence[torch.Tensor], targets: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """One unweighted scalar loss per task."""
        return [c(o, t) for c, o, t in zip(self.criteria, outputs, targets, strict=True)]

    def forward(self, outputs: Sequence[torch.Tensor], targets: Sequence[torch.Tensor]) -> torch.Tensor:
        losses = self.per_task(outputs, targets)
        return sum(w * loss for w, loss in zip(self.weights, losses))


class SigmoidBCELoss(nn.Module):
    """The blog post's classification loss: `BCELoss()(sigmoid(logit), y)`.

    Kept to show why it is fragile: in float32 `sigmoid` rounds to exactly
    1.0 for logits above ~17, and `BCELoss` then clamps log(0) to -100.
    """

    def __init__(self) -> None:
        super().__init__()
        self.bce = nn.BCELoss()

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.bce(torch.sigmoid(logits), target)
