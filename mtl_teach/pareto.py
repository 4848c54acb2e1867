"""The Pareto panel: a grid of weightings' final losses (task 1 vs task 2), and where the current run ended.

    figure = ParetoFigure(("classification", "regression"))
    figure.set_front(grid.front(config))          # [((alpha, beta), (loss 1, loss 2)), ...]
    png = figure.render((0.21, 0.05), "alpha=0.5, beta=0.5")

Every grid run is a grey dot; those no other run beats on both tasks (the
front: `non_dominated`) are joined by a line. The current run is a large
dot that moves as the slider moves: the front is drawn once and cached, a
frame draws only the dot (blitting, as `live.CurveFigure` does).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from mtl_teach.live import png_bytes
from mtl_teach.style import EXTRA_COLORS, TOTAL_COLOR, style_figure, task_colors

Point = tuple[float, float]
FrontPoint = tuple[tuple[float, float], Point]  # ((alpha, beta), (task-1 loss, task-2 loss))
CURRENT_COLOR = "#CC79A7"  # not a task's colour in two-task figures, visible on the grey front


def non_dominated(points: Sequence[Point]) -> list[int]:
    """Indices of the points no other point beats (<= on both, < on one), sorted by the first loss."""
    kept = [i for i, (x, y) in enumerate(points) if not any(u <= x and v <= y and (u, v) != (x, y) for u, v in points)]
    return sorted(kept, key=lambda i: points[i])


class ParetoFigure:
    """Task-1 loss against task-2 loss: the grid's runs, its front, the current run; PNG frames by blitting."""

    def __init__(self, task_names: Sequence[str], size: tuple[float, float] = (3.6, 3.4), dpi: int = 100) -> None:
        self.task_names = tuple(task_names)[:2]
        self.figure = style_figure(Figure(figsize=size, dpi=dpi))
        self.canvas = FigureCanvasAgg(self.figure)
        self.axes = self.figure.subplots()
        self.figure.subplots_adjust(left=0.22, right=0.96, bottom=0.3, top=0.88)
        colors = task_colors(self.task_names)
        self.axes.set_xlabel(f"{self.task_names[0]} loss", color=colors[self.task_names[0]])
        self.axes.set_ylabel(f"{self.task_names[1]} loss", color=colors[self.task_names[1]])
        self.axes.set_title("final losses of the grid", fontsize=10)
        (self.grid_dots,) = self.axes.plot([], [], "o", color=EXTRA_COLORS[0], ms=3.5)
        (self.front_line,) = self.axes.plot([], [], "-", color=TOTAL_COLOR, lw=1.2)
        (self.current_dot,) = self.axes.plot([], [], "o", color=CURRENT_COLOR, ms=9, mec=TOTAL_COLOR, animated=True)
        self.label = self.figure.text(0.5, 0.015, "", ha="center", va="bottom", fontsize=8, animated=True)
        handles = [self.grid_dots, self.front_line, Line2D([], [], ls="", marker="o", color=CURRENT_COLOR)]
        self.figure.legend(handles, ["grid run", "Pareto front", "this run"], loc="lower center", ncol=3,
                           fontsize=7, frameon=False, bbox_to_anchor=(0.5, 0.07))  # fmt: skip
        self.points: list[FrontPoint] = []
        self.background = None

    def set_front(self, points: Sequence[FrontPoint]) -> None:
        """Show these grid runs (an empty list clears the panel); the cached picture is redrawn on the next frame."""
        self.points = list(points)
        losses = [loss for _, loss in self.points]
        xy = np.array(losses, dtype=float).reshape(-1, 2)
        self.grid_dots.set_data(xy[:, 0], xy[:, 1])
        front = xy[non_dominated(losses)] if losses else xy
        self.front_line.set_data(front[:, 0], front[:, 1])
        self.background = None

    def render(self, current: Point | None, label: str = "") -> bytes:
        """A frame: the cached front, the current run's point (None: no point), and a line of text under it."""
        if self.background is None:
            self._draw_background(current)
        elif current is not None and not self._inside(current):
            self._draw_background(current)  # the new point is off the axes: widen them
        self.canvas.restore_region(self.background)
        self.current_dot.set_data([] if current is None else [current[0]], [] if current is None else [current[1]])
        self.axes.draw_artist(self.current_dot)
        self.label.set_text(label)
        self.figure.draw_artist(self.label)
        return png_bytes(np.asarray(self.canvas.buffer_rgba()))

    def _inside(self, point: Point) -> bool:
        (x0, x1), (y0, y1) = self.axes.get_xlim(), self.axes.get_ylim()
        return x0 <= point[0] <= x1 and y0 <= point[1] <= y1

    def _draw_background(self, current: Point | None) -> None:
        """Axes limits around the grid and the current point, with a margin; then the static picture."""
        xy = [loss for _, loss in self.points] + ([current] if current is not None else [])
        if xy:
            array = np.array(xy, dtype=float)
            low, high = array.min(axis=0), array.max(axis=0)
            pad = np.maximum((high - low) * 0.08, 1e-3 * np.maximum(np.abs(high), 1e-12))
            self.axes.set_xlim(low[0] - pad[0], high[0] + pad[0])
            self.axes.set_ylim(low[1] - pad[1], high[1] + pad[1])
        self.canvas.draw()
        self.background = self.canvas.copy_from_bbox(self.figure.bbox)
