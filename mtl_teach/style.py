"""The course's colours: each task keeps its colour in every figure and in the playground.

Okabe & Ito's colour-blind-safe palette; every figure is drawn on a white
background, so it reads the same on a light or a dark page.
"""

from __future__ import annotations

from collections.abc import Sequence

TASK_COLORS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9")  # task 1, task 2, ...
TOTAL_COLOR = "#222222"  # the weighted objective
EXTRA_COLORS = ("#7F7F7F", "#8C564B", "#17BECF")  # series that belong to no task (e.g. a cosine)


def task_colors(task_names: Sequence[str]) -> dict[str, str]:
    """{task name: its colour}, in task order."""
    if len(task_names) > len(TASK_COLORS):
        raise ValueError(f"{len(task_names)} tasks but only {len(TASK_COLORS)} task colours")
    return dict(zip(task_names, TASK_COLORS))
