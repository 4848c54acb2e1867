"""Per-task gradients of the shared parameters, and how much they conflict.

Row i of the T x D matrix `G` is the gradient of task i's loss with respect
to the D shared (trunk) parameters, flattened. `task_gradients` is the one
place the course computes it; every gradient method in
`mtl_teach.aggregators` is a function of this matrix.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch


def task_gradients(losses: Sequence[torch.Tensor], params: Sequence[torch.Tensor]) -> torch.Tensor:
    """The T x D matrix of per-task gradients, one `autograd.grad` call per task.

    The graph is kept (`retain_graph=True`) so the caller can still
    backpropagate through it afterwards, e.g. into the heads.
    """
    if len(losses) == 0 or len(params) == 0:
        raise ValueError(f"need at least one loss and one parameter, got {len(losses)} and {len(params)}")
    shapes = [tuple(loss.shape) for loss in losses]
    if any(shape != () for shape in shapes):
        raise ValueError(f"each loss must be a scalar (shape ()), got shapes {shapes}")
    rows = []
    for loss in losses:
        grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
        rows.append(flatten(grads, params))
    return torch.stack(rows)


def flatten(grads: Sequence[torch.Tensor | None], params: Sequence[torch.Tensor]) -> torch.Tensor:
    """One flat vector from per-parameter gradients (None, an unused parameter, counts as zeros)."""
    return torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1) for g, p in zip(grads, params)])


def unflatten(vector: torch.Tensor, params: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Split a flat vector back into tensors shaped like `params` (inverse of `flatten`)."""
    sizes = [p.numel() for p in params]
    if vector.numel() != sum(sizes):
        raise ValueError(f"vector has {vector.numel()} entries but the parameters have {sum(sizes)}")
    return [chunk.view_as(p) for chunk, p in zip(vector.split(sizes), params)]


def cosine_matrix(G: torch.Tensor) -> torch.Tensor:
    """T x T cosine similarities between the rows of G (0 where a row is all zeros)."""
    return conflict(G).cosine


@dataclass(frozen=True)
class Conflict:
    """How the task gradients of one step relate: cosines, norms, conflict."""

    cosine: torch.Tensor  # (T, T) pairwise cosine similarity
    norms: torch.Tensor  # (T,) gradient norm per task

    @property
    def min_cosine(self) -> float:
        """The most negative pairwise cosine (for two tasks: their cosine); 1.0 for a single task."""
        rows = self.cosine.tolist()
        return min((c for i, row in enumerate(rows) for j, c in enumerate(row) if j != i), default=1.0)

    @property
    def conflicting(self) -> bool:
        """True when some pair of task gradients points apart (negative cosine)."""
        return self.min_cosine < 0

    def as_extras(self, task_names: Sequence[str]) -> dict[str, float]:
        """Floats for `History.extras`: "cosine", "conflicting" (0/1), "grad_norm/<task>"."""
        cosine = self.min_cosine
        extras = {"cosine": cosine, "conflicting": float(cosine < 0)}
        extras.update({f"grad_norm/{name}": n for name, n in zip(task_names, self.norms.tolist(), strict=True)})
        return extras


def conflict(G: torch.Tensor) -> Conflict:
    """Summarise a T x D gradient matrix as a `Conflict` (T >= 1; a zero row has cosine 0 with every row)."""
    if G.ndim != 2 or G.shape[0] < 1:
        raise ValueError(f"G must be a T x D matrix of task gradients, got shape {tuple(G.shape)}")
    scale = G.abs().max().double()  # the Gram matrix of G / scale cannot overflow, whatever the gradients' size
    scaled = G.double() / scale if scale > 0 else G.double()
    A = scaled @ scaled.T  # all inner products at once
    norms = A.diagonal().sqrt()
    safe = torch.where(norms > 0, norms, 1.0)
    cosine = A / safe.outer(safe)  # a zero row: cosine 0 (its inner products are 0)
    return Conflict(cosine.to(G.dtype), (norms * scale).to(G.dtype))
