"""Static figures of finished runs (for slides and the CLI's --plot)."""

from __future__ import annotations

from collections.abc import Sequence

from mtl_teach.train import History


def plot_histories(histories: Sequence[History], log_scale: bool = False):
    """One axis per task plus the total; one line per run, labelled by strategy."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    names = list(histories[0].task_names) + ["total"]
    fig = Figure(figsize=(4 * len(names), 3.2), layout="constrained")
    axes = fig.subplots(1, len(names))
    for ax, name in zip(axes, names):
        for h in histories:
            values = h.total if name == "total" else h.losses[name]
            ax.plot(values, label=h.config.strategy, linewidth=1.2)
        ax.set_title(name)
        ax.set_xlabel("step")
        if log_scale:
            ax.set_yscale("log")
    axes[0].set_ylabel("loss")
    axes[-1].legend(fontsize="small")
    return fig


def save_curves(histories: Sequence[History], path: str, log_scale: bool = False) -> None:
    """Save `plot_histories` to `path` (PNG, PDF or SVG by extension)."""
    plot_histories(histories, log_scale).savefig(path, dpi=120)
