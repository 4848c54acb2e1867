"""Schematic figures of the course's key ideas, drawn with matplotlib (no pyplot: safe in any thread).

- `trunk_backward_walks`: the shared trunk and the backward walks through it
  (sum: one walk; one backward per task: one walk per task, with the trunk's
  saved tensors kept alive by `retain_graph=True` in between);
- `cost_comparison`: passes, work, time and saved-tensor memory of the ways to
  backpropagate, from numbers a notebook measured;
- `recipe_timeline`: the blog post's recipe 2 on a timeline beside the sum,
  with what each `step()` does to the optimizer's state.

The schematics teach no numbers: the notebooks check every fact they show.
Artists carry a `gid` ("box:trunk", "backward:trunk:classification", ...),
so tests can find what was drawn. Each task keeps its course colour.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
from matplotlib.ticker import MaxNLocator

from mtl_teach.style import NEUTRAL, RECIPE_COLORS, TOTAL_COLOR, style_figure, task_colors

TWO_TASKS = ("classification", "regression")


def _box(ax: Axes, center: tuple[float, float], size: tuple[float, float], text: str, edge: str, gid: str) -> None:
    """A rounded box with centred text; the box's gid is `gid`, its text's `gid + ':text'`."""
    (x, y), (w, h) = center, size
    style = "round,pad=0.02,rounding_size=0.12"
    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle=style, ec=edge, fc="white", lw=1.6, gid=gid))
    ax.text(x, y, text, ha="center", va="center", fontsize=8.5, gid=f"{gid}:text")


def _arrow(ax: Axes, start, end, color: str, gid: str, width: float = 1.2, bend: float = 0.0, dashed=False) -> None:
    """An arrow from `start` to `end`; `bend` curves it (matplotlib's arc3 radius)."""
    ax.add_patch(
        FancyArrowPatch(
            start,
            end,
            arrowstyle="-|>",
            mutation_scale=11,
            color=color,
            lw=width,
            linestyle="--" if dashed else "-",
            connectionstyle=f"arc3,rad={bend}",
            gid=gid,
        )
    )


def _empty_axes(ax: Axes, xlim: tuple[float, float], ylim: tuple[float, float]) -> None:
    ax.set(xlim=xlim, ylim=ylim, xticks=[], yticks=[])
    for spine in ax.spines.values():
        spine.set_visible(False)


def _network(ax: Axes, names: Sequence[str], colors: Mapping[str, str], trunk_note: str) -> list[float]:
    """Input, trunk, one head and one loss per task, with grey forward arrows; returns the heads' heights."""
    heights = [5.0 - 3.8 * i / max(1, len(names) - 1) for i in range(len(names))]
    _box(ax, (0.5, 3.1), (0.7, 0.8), "X", NEUTRAL, "box:input")
    _box(ax, (3.0, 3.1), (3.2, 3.2), "", TOTAL_COLOR, "box:trunk")
    ax.text(3.0, 4.2, f"shared trunk\n{trunk_note}", ha="center", va="center", fontsize=8.5, gid="box:trunk:note")
    _arrow(ax, (0.85, 3.1), (1.4, 3.1), NEUTRAL, "forward")
    for name, y in zip(names, heights):
        _box(ax, (5.75, y), (1.4, 0.8), f"head\n{name}", colors[name], f"box:head:{name}")
        _box(ax, (7.8, y), (1.5, 0.8), f"loss\n{name}", colors[name], f"box:loss:{name}")
        _arrow(ax, (4.6, 3.6), (5.05, y), NEUTRAL, "forward")
        _arrow(ax, (6.45, y), (7.05, y), NEUTRAL, "forward")
    return heights


def _walk_back(ax: Axes, y: float, level: float, color: str, name: str, start_x: float) -> None:
    """Backward arrows of one task: from its loss (or the sum) into its head, then into the trunk at `level`."""
    side = 1 if y > 3.1 else -1
    _arrow(ax, (start_x, y + 0.3 * side), (6.45, y + 0.3 * side), color, f"backward:head:{name}", 1.8, 0.4 * side)
    _arrow(ax, (5.05, y - 0.2 * side), (4.6, level), color, f"backward:into_trunk:{name}", 1.8)


def trunk_backward_walks(task_names: Sequence[str] = TWO_TASKS) -> Figure:
    """Two panels: the sum's one backward walk through the trunk; one walk per task, retain_graph between."""
    names = list(task_names)
    colors = task_colors(names)
    fig = Figure(figsize=(11.5, 4.2), layout="constrained")
    sum_ax, each_ax = fig.subplots(1, 2)
    for ax in (sum_ax, each_ax):
        _empty_axes(ax, (0.0, 10.2), (0.0, 6.0))

    heights = _network(sum_ax, names, colors, "saved tensors: freed\nas the walk passes")
    sum_ax.set_title("sum, then one backward(): one walk through the trunk", fontsize=10)
    _box(sum_ax, (9.55, 3.1), (1.0, 0.9), "Σ w·L", TOTAL_COLOR, "box:total")
    for name, y in zip(names, heights):
        _arrow(sum_ax, (8.55, y), (9.05, 3.1), NEUTRAL, "forward")
        _walk_back(sum_ax, y, 2.3, TOTAL_COLOR, name, start_x=8.55)
    _arrow(sum_ax, (4.6, 2.3), (1.4, 2.3), TOTAL_COLOR, "backward:trunk:sum", width=2.8)
    sum_ax.text(3.0, 1.9, "1 walk", ha="center", va="center", fontsize=8.5, color=TOTAL_COLOR)

    heights = _network(each_ax, names, colors, "saved tensors: kept\nby retain_graph=True")
    each_ax.set_title("one backward() per task: one walk per task", fontsize=10)
    for number, (name, y) in enumerate(zip(names, heights), start=1):
        level = 2.9 - 0.65 * number
        _walk_back(each_ax, y, level, colors[name], name, start_x=8.55)
        _arrow(each_ax, (4.6, level), (1.4, level), colors[name], f"backward:trunk:{name}", width=2.2)
        call = f"backward {number}" + (", retain_graph=True" if number < len(names) else "")
        each_ax.text(3.0, level - 0.25, call, ha="center", va="center", fontsize=7.5, color=colors[name])
    return style_figure(fig)


def cost_comparison(
    trunk_passes: Mapping[str, int],
    relative_work: Mapping[str, float],
    relative_time: Mapping[str, float],
    saved_mb: Mapping[str, Sequence[float]],
) -> Figure:
    """Three panels, one bar or line per way (keys: "sum", "separate", "list", ...):

    backward passes through the trunk; multiply-adds counted and time measured,
    both relative to the sum; MB of saved tensors held at each node the
    backward calls run (one line per way: same start, different length).
    """
    ways = list(trunk_passes)
    colors = [RECIPE_COLORS.get(way, NEUTRAL) for way in ways]
    fig = Figure(figsize=(12.5, 3.6), layout="constrained")
    passes_ax, cost_ax, memory_ax = fig.subplots(1, 3)
    passes_ax.bar(ways, [trunk_passes[w] for w in ways], color=colors, gid="bars:passes")
    passes_ax.set(title="backward passes through the trunk", ylabel="passes")
    passes_ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    positions = range(len(ways))
    cost_ax.bar(
        [p - 0.2 for p in positions],
        [relative_work[w] for w in ways],
        0.4,
        color=colors,
        gid="bars:work",
        label="operations, counted",
    )
    cost_ax.bar(
        [p + 0.2 for p in positions],
        [relative_time[w] for w in ways],
        0.4,
        color=colors,
        alpha=0.45,
        hatch="//",
        gid="bars:time",
        label="time, measured",
    )
    cost_ax.axhline(1.0, color=NEUTRAL, lw=1, ls="--")
    cost_ax.set(title="cost of one forward + backward (× the sum's)", xticks=list(positions), xticklabels=ways)
    for number, (way, color) in enumerate(zip(ways, colors)):
        trace = list(saved_mb[way])
        dashes = "-" if number < 2 else (0, (4, 2))  # a third way that repeats the first stays visible
        memory_ax.step(
            range(len(trace)), trace, where="post", color=color, lw=1.8, ls=dashes, label=way, gid=f"saved:{way}"
        )
    memory_ax.set(title="saved tensors held during backward", xlabel="backward nodes run so far", ylabel="MB")
    memory_ax.set_ylim(bottom=0)
    handles, labels = cost_ax.get_legend_handles_labels()
    more_handles, more_labels = memory_ax.get_legend_handles_labels()
    fig.legend(handles + more_handles, labels + more_labels, loc="outside lower center", ncols=len(labels + ways))
    return style_figure(fig)


def _note(ax: Axes, xy: tuple[float, float], text: str, gid: str = "", **style) -> None:
    """Small text at `xy` (centred unless `style` says otherwise)."""
    ax.text(*xy, text, **({"ha": "center", "va": "center", "fontsize": 8, "gid": gid or None} | style))


def recipe_timeline(task_names: Sequence[str] = TWO_TASKS, optimizer: str = "Adam") -> Figure:
    """One batch of the sum (top lane) and of the blog post's recipe 2 (bottom lane), left to right in time.

    Under each step: which parameters it moves and the step count it gives
    their optimizer state (zero_grad sets gradients to None, so a parameter
    whose gradient is None is skipped).
    """
    first, second = task_names
    colors = task_colors(task_names)
    fig = Figure(figsize=(12.5, 4.2), layout="constrained")
    ax = fig.subplots()
    _empty_axes(ax, (-1.6, 11.6), (-0.9, 5.4))
    ax.set_title(f"one batch, two recipes ({optimizer})", fontsize=10)
    top, bottom, size = 4.5, 1.5, (1.9, 1.0)
    _note(ax, (-1.5, top), "recipe 1:\nsum", ha="left", fontsize=9, weight="bold")
    _note(ax, (-1.5, bottom), "recipe 2:\nstep after\neach backward", ha="left", fontsize=9, weight="bold")
    _box(ax, (1.0, top), size, "forward\nat θ₀", NEUTRAL, "sum:forward")
    _box(ax, (3.2, top), size, "backward Σ w·L\nat θ₀", TOTAL_COLOR, "sum:backward")
    _box(ax, (5.4, top), size, "step\nθ₀ → θ₁", TOTAL_COLOR, "sum:step")
    _note(ax, (5.4, top - 0.75), f"{optimizer} state: step 1\nfor every parameter", "sum:state", va="top")
    _box(ax, (1.0, bottom), size, "forward\nat θ₀", NEUTRAL, "recipe2:forward")
    _box(ax, (3.2, bottom), size, f"backward\n{first} loss\nat θ₀", colors[first], f"recipe2:backward:{first}")
    _box(ax, (5.4, bottom), size, "step\nθ₀ → θ₁", colors[first], "recipe2:step:1")
    _box(ax, (7.6, bottom), size, f"backward\n{second} loss\nstill at θ₀", colors[second], f"recipe2:backward:{second}")
    _box(ax, (9.8, bottom), size, "step\nθ₁ → θ₂", colors[second], "recipe2:step:2")
    state_1 = f"trunk, {first} head: step 1\n{second} head: None, skipped"
    _note(ax, (5.4, bottom - 0.75), state_1, "recipe2:state:1", va="top")
    _note(ax, (9.8, bottom - 0.75), f"trunk: step 2\n{second} head: step 1", "recipe2:state:2", va="top")
    _arrow(ax, (7.6, bottom + 0.5), (1.3, bottom + 0.5), colors[second], "recipe2:stale", bend=0.2, dashed=True)
    _note(ax, (4.3, bottom + 1.62), "the stale graph: activations of θ₀, not θ₁", color=colors[second])
    _arrow(ax, (0.0, -0.75), (11.0, -0.75), NEUTRAL, "time")
    _note(ax, (11.1, -0.75), "time", ha="left")
    return style_figure(fig)
