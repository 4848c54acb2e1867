"""The course's look: each task keeps its colour in every figure and in the playground.

Okabe & Ito's colour-blind-safe palette for the tasks; the recipes (ways of
turning task losses into an update) get colours of their own, never a task's.
Every figure is drawn on an opaque white background (`style_figure`), so it
reads the same on a light or a dark page.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

TASK_COLORS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9")  # task 1, task 2, ...
TOTAL_COLOR = "#222222"  # the weighted objective
EXTRA_COLORS = ("#7F7F7F", "#8C564B", "#17BECF")  # series that belong to no task (e.g. a cosine)
BACKGROUND = "#FFFFFF"  # opaque: a transparent figure on a dark page hides its black text
NEUTRAL = "#BBBBBB"  # boxes, forward arrows and other scaffolding of a schematic

# One colour per recipe, by the names the notebooks and the registry use; none is a task's colour.
RECIPE_COLORS = {
    "sum": TOTAL_COLOR,
    "weighted_sum": TOTAL_COLOR,
    "separate": "#8C564B",
    "separate_backward": "#8C564B",
    "list": "#17BECF",
    "backward_list": "#17BECF",
    "alternating_steps": "#6A3D9A",
}


def task_colors(task_names: Sequence[str]) -> dict[str, str]:
    """{task name: its colour}, in task order."""
    if len(task_names) > len(TASK_COLORS):
        raise ValueError(f"{len(task_names)} tasks but only {len(TASK_COLORS)} task colours")
    return dict(zip(task_names, TASK_COLORS))


def style_figure(fig: Any) -> Any:
    """Give `fig` (a matplotlib Figure) and each of its axes an opaque white background; return `fig`.

    Jupyter front ends with a dark theme show a figure's transparent parts in
    the page's colour, where black labels disappear; white behind everything
    keeps a figure readable on any page, projected or printed.
    """
    fig.set_facecolor(BACKGROUND)
    fig.patch.set_alpha(1.0)
    for ax in fig.axes:
        ax.set_facecolor(BACKGROUND)
        ax.patch.set_alpha(1.0)
    return fig
