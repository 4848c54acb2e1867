"""Every training strategy, in the order the course introduces them: one line each.

A strategy is a name, how to build its step for a run (`make_step(setup)`,
see `mtl_teach.strategies`), a one-line summary, and its family:

- "sum":       one update along the gradient of the weighted sum (the same
               algorithm, three ways to write it);
- "recipe":    the blog post's other recipes, which are not that sum;
- "weighting": methods that choose the loss weights while training;
- "gradient":  methods that combine the per-task gradients themselves.

`check(config)` says why a config cannot run the strategy (None: it can);
`TrainConfig` calls it. The CLI, the playground and the tests read this table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from mtl_teach.aggregators import aligned_mtl, cagrad, imtl_g, mgda, nash_mtl, pcgrad, upgrad
from mtl_teach.gradient_methods import make_gradient_method_step as gradient
from mtl_teach.strategies import (
    Setup,
    StepFn,
    alternating_steps_problem,
    backward_list,
    make_alternating_steps,
    make_per_task_lr_step,
    recipe_step,
    separate_backward,
    weighted_sum,
)
from mtl_teach.weighting import (
    make_dwa_step,
    make_famo_step,
    make_gradnorm_step,
    make_log_sum_step,
    make_rlw_step,
    make_uncertainty_step,
)

if TYPE_CHECKING:
    from mtl_teach.config import TrainConfig

FAMILIES = ("sum", "recipe", "weighting", "gradient")
CAGRAD = partial(cagrad, c=0.5)  # c in [0, 1), where the paper's convergence theorem holds


def no_problem(config: TrainConfig) -> None:
    """Every config can run this strategy."""
    return None


@dataclass(frozen=True)
class Strategy:
    name: str
    make_step: Callable[[Setup], StepFn]
    family: str
    summary: str
    check: Callable[[TrainConfig], str | None] = no_problem


TABLE = (
    Strategy("weighted_sum", recipe_step(weighted_sum), "sum", "one backward of the weighted sum, one step"),
    Strategy("separate_backward", recipe_step(separate_backward), "sum", "one backward per task; .grad adds up"),
    Strategy("backward_list", recipe_step(backward_list), "sum", "autograd.backward([L1, L2], grad_tensors=[a, b])"),
    Strategy(
        "alternating_steps", make_alternating_steps, "recipe", "the blog post's recipe 2: a step after each backward",
        check=alternating_steps_problem,
    ),
    Strategy("per_task_lr", make_per_task_lr_step, "recipe", "plain sum, one lr per head (param groups)"),
    Strategy("uncertainty", make_uncertainty_step, "weighting", "learned weights exp(-s_i)/2 (Kendall et al. 2018)"),
    Strategy("dwa", make_dwa_step, "weighting", "weights from how fast each loss fell (Liu et al. 2019)"),
    Strategy("gradnorm", make_gradnorm_step, "weighting", "weights that balance gradient norms (Chen et al. 2018)"),
    Strategy("log_sum", make_log_sum_step, "weighting", "scale-invariant sum of log L_i: weights 1/L_i"),
    Strategy("rlw", make_rlw_step, "weighting", "RLW: random weights softmax(N(0, I)) each step (Lin et al. 2022)"),
    Strategy("famo", make_famo_step, "weighting", "FAMO: weights so every loss falls at one rate (Liu et al. 2023)"),
    Strategy("pcgrad", gradient(pcgrad), "gradient", "PCGrad: drop each gradient's conflicting part, then sum"),
    Strategy("mgda", gradient(mgda), "gradient", "MGDA: the min-norm convex combination of the task gradients"),
    Strategy("cagrad", gradient(CAGRAD), "gradient", "CAGrad (c=0.5): best for the worst task, near the mean"),
    Strategy("upgrad", gradient(upgrad), "gradient", "UPGrad: mean of the gradients projected to conflict with none"),
    Strategy("imtl_g", gradient(imtl_g), "gradient", "IMTL-G: equal projection onto every task's unit gradient"),
    Strategy("nash_mtl", gradient(nash_mtl), "gradient", "Nash-MTL: the bargaining solution, lam_i (G G^T lam)_i = 1"),
    Strategy("aligned_mtl", gradient(aligned_mtl), "gradient", "Aligned-MTL: the gradients made orthogonal, equal"),
)  # fmt: skip

STRATEGIES: dict[str, Strategy] = {s.name: s for s in TABLE}


def names(family: str | None = None) -> list[str]:
    """The strategies' names in teaching order, all or those of one family."""
    if family is not None and family not in FAMILIES:
        raise ValueError(f"family={family!r} is not known; choose from {list(FAMILIES)}")
    return [s.name for s in TABLE if family is None or s.family == family]
