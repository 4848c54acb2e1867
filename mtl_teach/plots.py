"""Static figures of finished runs (for slides and the CLI's --plot)."""

from __future__ import annotations

from collections.abc import Sequence

from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from mtl_teach.style import EXTRA_COLORS, TOTAL_COLOR
from mtl_teach.train import History


def plot_histories(histories: Sequence[History], log_scale: bool = False) -> Figure:
    """One axis per task plus the total; one line per run, labelled by strategy.

    The legend sits below the axes, so it never covers a curve.
    """
    names = list(histories[0].task_names) + ["total"]
    fig = Figure(figsize=(4 * len(names), 3.6), layout="constrained")
    axes = fig.subplots(1, len(names))
    for ax, name in zip(axes, names):
        for h in histories:
            ax.plot(h.series(name), label=h.config.strategy, linewidth=1.2)
        ax.set_title(name)
        ax.set_xlabel("step")
        if log_scale:
            ax.set_yscale("log")
    axes[0].set_ylabel("loss")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncols=min(len(histories), 5))
    return fig


def save_curves(histories: Sequence[History], path: str, log_scale: bool = False) -> None:
    """Save `plot_histories` to `path` (PNG, PDF or SVG by extension)."""
    plot_histories(histories, log_scale).savefig(path, dpi=120)


# Not the task colours (style.TASK_COLORS): these are phases of a step, not tasks.
PHASE_COLORS = {
    "forward": EXTRA_COLORS[2],
    "backward": EXTRA_COLORS[1],
    "step": EXTRA_COLORS[0],
    "all-reduce": TOTAL_COLOR,
}


def plot_step_timelines(timelines: dict[str, list[dict]]) -> Figure:
    """One row per recipe: one training step of one rank against time (ms), from its measured events.

    `timelines` maps a label to the events of one step (dicts with "what",
    "start", "end" in seconds, as `mtl_teach.distributed.train_ddp` records
    them). Upper lane: forward, backward and optimizer step calls, with a
    tick above it where each parameter's gradient arrived; lower lane: the
    all-reduces, each labelled with the kilobytes it sent.
    """
    fig = Figure(figsize=(10, 1.5 + 1.4 * len(timelines)), layout="constrained")
    axes = fig.subplots(len(timelines), 1, sharex=True, squeeze=False)[:, 0]
    for ax, (label, events) in zip(axes, timelines.items()):
        reduces = sorted((e for e in events if e["what"] == "all-reduce"), key=lambda e: e["start"])
        for event in events:
            start, width = 1e3 * event["start"], 1e3 * (event["end"] - event["start"])
            if event["what"] == "gradient":
                ax.plot([start, start], [1.43, 1.55], color=TOTAL_COLOR, linewidth=0.8)
            elif event["what"] == "all-reduce":
                ax.broken_barh([(start, width)], (0.25, 0.3), color=PHASE_COLORS["all-reduce"], edgecolor="white")
                above = reduces.index(event) % 2  # alternate above and below, so neighbours' labels never collide
                ax.text(start, 0.62 if above else 0.08, f"{event['bytes'] / 1e3:.0f} kB", va="bottom", fontsize=8)
            else:
                ax.broken_barh([(start, width)], (1.0, 0.4), color=PHASE_COLORS[event["what"]], edgecolor="white")
        ax.set_yticks([0.4, 1.2], ["all-reduce", "compute"])
        ax.set_ylim(0, 1.6)
        ax.set_title(label, loc="left", fontsize=10)
    axes[-1].set_xlabel("time since the step started (ms)")
    handles = [Patch(color=color, label=what) for what, color in PHASE_COLORS.items()]
    handles.append(Line2D([], [], color=TOTAL_COLOR, linewidth=0.8, label="a gradient arrives"))
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles))
    return fig
