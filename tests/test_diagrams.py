"""The schematic figures draw what they claim to: the right walks, bars, lines and boxes, in the course's colours."""

import matplotlib
import numpy as np
import pytest
from matplotlib.colors import to_rgba
from matplotlib.patches import Patch

from mtl_teach.diagrams import cost_comparison, recipe_timeline, trunk_backward_walks
from mtl_teach.style import BACKGROUND, RECIPE_COLORS, TASK_COLORS, TOTAL_COLOR, style_figure, task_colors

TASKS = ("classification", "regression")


def by_gid(ax, prefix: str) -> dict:
    """{gid: artist} for the patches and texts of `ax` whose gid starts with `prefix`."""
    artists = [*ax.patches, *ax.texts]
    return {a.get_gid(): a for a in artists if (a.get_gid() or "").startswith(prefix)}


def same_color(a, b) -> bool:
    return np.allclose(to_rgba(a), to_rgba(b))


def white(color) -> bool:
    return same_color(color, BACKGROUND)


def test_task_colours_are_fixed_by_position():
    assert task_colors(TASKS) == {"classification": "#0072B2", "regression": "#D55E00"}
    assert list(task_colors(["a", "b", "c"]).values()) == list(TASK_COLORS[:3])
    with pytest.raises(ValueError, match="7 tasks but only 6 task colours"):
        task_colors([str(i) for i in range(7)])


def test_no_recipe_wears_a_task_colour():
    assert not set(RECIPE_COLORS.values()) & set(TASK_COLORS)


def test_style_figure_makes_a_transparent_figure_opaque_white():
    with matplotlib.rc_context({"figure.facecolor": (1, 1, 1, 0), "axes.facecolor": (0, 0, 0, 0)}):
        fig = matplotlib.figure.Figure()
        fig.subplots(1, 2)
    assert fig.get_facecolor()[3] == 0
    assert style_figure(fig) is fig
    assert white(fig.get_facecolor()) and all(white(ax.get_facecolor()) for ax in fig.axes)


def test_the_sum_walks_the_trunk_once_and_separate_once_per_task():
    fig = trunk_backward_walks(TASKS)
    sum_ax, each_ax = fig.axes
    assert "one walk through the trunk" in sum_ax.get_title()
    assert "one walk per task" in each_ax.get_title()
    sum_walks = by_gid(sum_ax, "backward:trunk:")
    assert list(sum_walks) == ["backward:trunk:sum"]
    assert same_color(sum_walks["backward:trunk:sum"].get_edgecolor(), TOTAL_COLOR)
    task_walks = by_gid(each_ax, "backward:trunk:")
    assert sorted(task_walks) == [f"backward:trunk:{t}" for t in TASKS]
    for task, color in task_colors(TASKS).items():
        assert same_color(task_walks[f"backward:trunk:{task}"].get_edgecolor(), color)
        for ax in (sum_ax, each_ax):  # each head and loss box is framed in its task's colour
            assert same_color(by_gid(ax, f"box:head:{task}")[f"box:head:{task}"].get_edgecolor(), color)
            assert same_color(by_gid(ax, f"box:loss:{task}")[f"box:loss:{task}"].get_edgecolor(), color)


def test_retain_graph_is_written_on_every_backward_call_but_the_last():
    names = ("a", "b", "c")
    each_ax = trunk_backward_walks(names).axes[1]
    calls = sorted(t.get_text() for t in each_ax.texts if t.get_text().startswith("backward "))
    assert calls == ["backward 1, retain_graph=True", "backward 2, retain_graph=True", "backward 3"]
    assert "kept\nby retain_graph=True" in by_gid(each_ax, "box:trunk:note")["box:trunk:note"].get_text()
    assert len(by_gid(each_ax, "backward:trunk:")) == 3


def test_cost_comparison_draws_the_numbers_it_is_given():
    passes = {"sum": 1, "separate": 2, "list": 1}
    work = {"sum": 1.0, "separate": 1.64, "list": 1.0}
    time = {"sum": 1.0, "separate": 1.5, "list": 1.1}
    saved = {"sum": [2.0, 1.0, 0.0], "separate": [2.0, 2.0, 2.0, 1.0, 0.1], "list": [2.0, 1.0, 0.0]}
    fig = cost_comparison(passes, work, time, saved)
    passes_ax, cost_ax, memory_ax = fig.axes
    assert [bar.get_height() for bar in passes_ax.patches] == [1, 2, 1]
    work_bars = [b for b in cost_ax.patches if b.get_gid() == "bars:work"]
    time_bars = [b for b in cost_ax.patches if b.get_gid() == "bars:time"]
    assert [b.get_height() for b in work_bars] == [1.0, 1.64, 1.0]
    assert [b.get_height() for b in time_bars] == [1.0, 1.5, 1.1]
    for bar, way in zip(passes_ax.patches, passes):
        assert same_color(bar.get_facecolor(), RECIPE_COLORS[way])
    lines = {line.get_gid(): line for line in memory_ax.lines}
    for way, trace in saved.items():
        assert list(lines[f"saved:{way}"].get_ydata()) == trace
        assert same_color(lines[f"saved:{way}"].get_color(), RECIPE_COLORS[way])
    assert len(fig.legends) == 1 and all(ax.get_legend() is None for ax in fig.axes)  # the legend is outside
    assert white(fig.get_facecolor())


def test_recipe_timeline_puts_the_stale_backward_between_the_two_steps():
    fig = recipe_timeline(TASKS, optimizer="Adam")
    (ax,) = fig.axes
    boxes = {gid: a for gid, a in by_gid(ax, "recipe2:").items() if isinstance(a, Patch) and "stale" not in gid}
    order = sorted(boxes, key=lambda gid: boxes[gid].get_x())
    assert order == [
        "recipe2:forward",
        "recipe2:backward:classification",
        "recipe2:step:1",
        "recipe2:backward:regression",
        "recipe2:step:2",
    ]
    colors = task_colors(TASKS)
    assert same_color(boxes["recipe2:backward:classification"].get_edgecolor(), colors["classification"])
    assert same_color(boxes["recipe2:backward:regression"].get_edgecolor(), colors["regression"])
    texts = {gid: t.get_text() for gid, t in by_gid(ax, "").items() if hasattr(t, "get_text")}
    assert "still at θ₀" in texts["recipe2:backward:regression:text"]
    assert texts["recipe2:state:1"].startswith("trunk, classification head: step 1")
    assert "regression head: None, skipped" in texts["recipe2:state:1"]
    assert texts["recipe2:state:2"].startswith("trunk: step 2")
    assert texts["sum:state"].startswith("Adam state: step 1")
    assert by_gid(ax, "recipe2:stale")["recipe2:stale"].get_linestyle() == "--"
