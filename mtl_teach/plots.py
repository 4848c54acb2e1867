"""Static figures of finished runs (for slides and the CLI's --plot)."""

from __future__ import annotations

from collections.abc import Sequence

from matplotlib.figure import Figure

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
