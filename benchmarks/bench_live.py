"""How fast are the live curves and the playground?

1. Per-frame cost of LiveCurves (cached axes, blitted lines, fast PNG) against
   a naive full redraw (new figure, plot everything, PNG with a tight bbox,
   which is what IPython's inline backend does), for 2 axes and 300 steps,
   and with a third panel of `History.extras` (two learned weights).
2. Time from a control change to the final frame of the default 300-step
   config (training in the worker thread, live frames), as a ratio to
   training alone, and the number of frames drawn.
3. Time from a Stop click to the worker being idle.

Medians of repeats taken side by side in one process. Prints one JSON
object on the last line.
"""

from __future__ import annotations

import io
import json
import statistics
import time

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from mtl_teach.config import TrainConfig
from mtl_teach.live import LiveCurves
from mtl_teach.playground import playground
from mtl_teach.train import History, one_torch_thread, train

REPEATS = 7


def synthetic_history(task_names: tuple[str, ...], steps: int = 300, scale: float = 1.0) -> History:
    """A finished-looking run: decaying, noisy losses for each task, and a drifting weight for each."""
    import numpy as np

    rng = np.random.default_rng(0)
    x = np.arange(steps)
    losses = {n: list(scale * (i + 1) * np.exp(-x / 80) + 0.05 * rng.random(steps)) for i, n in enumerate(task_names)}
    total = list(np.sum([losses[n] for n in task_names], axis=0))
    extras = {f"weight/{n}": list(1 + (-1) ** i * scale * np.tanh(x / 100) / 2) for i, n in enumerate(task_names)}
    return History(TrainConfig(steps=steps), task_names, losses, total, extras=extras)


def naive_frame(history: History, extras: tuple[str, ...] = ()) -> bytes:
    """Everything redrawn from scratch, saved with a tight bbox."""
    figure = Figure(figsize=(12 if extras else 8, 3), dpi=100)
    FigureCanvasAgg(figure)
    task_axes, total_axes, *extras_axes = figure.subplots(1, 3 if extras else 2)
    for name, values in history.losses.items():
        task_axes.plot(values, label=name)
    total_axes.plot(history.total, color="black")
    for key in extras:
        extras_axes[0].plot(history.series(key), label=key)
    task_axes.legend()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight")
    return buffer.getvalue()


def frame_costs_ms(task_names: tuple[str, ...], extras: tuple[str, ...] = ()) -> dict[str, float]:
    history = synthetic_history(task_names)
    curves = LiveCurves(task_names, live=True, sink=lambda png, h: None, extras=extras)
    curves.set_ghost(synthetic_history(task_names, scale=1.3))
    curves.finish(history)  # the first frame draws the cached axes
    live_ms, naive_ms = [], []
    for _ in range(REPEATS):
        start = time.perf_counter()
        for _ in range(10):
            curves.finish(history)
        live_ms.append(100 * (time.perf_counter() - start))  # per frame, ms
        start = time.perf_counter()
        naive_frame(history, extras)
        naive_ms.append(1000 * (time.perf_counter() - start))
    return {"live_ms": statistics.median(live_ms), "naive_ms": statistics.median(naive_ms)}


def change_to_final_frame() -> dict[str, float]:
    """A control change in a threaded playground, against training alone (same torch threads)."""
    pg = playground(mode="thread")
    pg.wait()
    ratios, frames, change_s, train_s = [], [], [], []
    for i in range(REPEATS):
        alpha = round(0.3 + 0.05 * i, 2)
        with one_torch_thread():
            start = time.perf_counter()
            train(TrainConfig(alpha=alpha))
            alone = time.perf_counter() - start
        frames_before = pg.curves.frames_drawn
        start = time.perf_counter()
        pg.controls["alpha"].value = alpha
        pg.wait()
        changed = time.perf_counter() - start
        assert pg.history.finished and pg.history.config.alpha == alpha
        ratios.append(changed / alone)
        frames.append(pg.curves.frames_drawn - frames_before)
        change_s.append(changed)
        train_s.append(alone)
    pg.close()
    return {
        "change_to_final_frame_s": statistics.median(change_s),
        "train_alone_s": statistics.median(train_s),
        "ratio": statistics.median(ratios),
        "frames_drawn": statistics.median(frames),
        "min_frames_drawn": min(frames),
    }


def stop_latency_ms() -> float:
    pg = playground(mode="thread", steps=5000)
    latencies, stopped = [], None
    for _ in range(REPEATS):
        while pg.history is None or pg.history is stopped or pg.history.steps_done < 50:
            time.sleep(0.01)  # let the new run train a little
        start = time.perf_counter()
        pg.stop_button.click()
        pg.wait()
        latencies.append(1000 * (time.perf_counter() - start))
        stopped = pg.history
        pg.train_button.click()
    pg.close()
    return statistics.median(latencies)


def main() -> None:
    two_tasks = frame_costs_ms(("classification", "regression"))
    three_panels = frame_costs_ms(("classification", "regression"), ("weight/classification", "weight/regression"))
    four_tasks = frame_costs_ms(("t1", "t2", "t3", "t4"))
    change = change_to_final_frame()
    result = {
        "frame_ms_2_tasks": round(two_tasks["live_ms"], 2),
        "naive_frame_ms_2_tasks": round(two_tasks["naive_ms"], 1),
        "frame_ms_2_tasks_3_panels": round(three_panels["live_ms"], 2),
        "naive_frame_ms_2_tasks_3_panels": round(three_panels["naive_ms"], 1),
        "frame_ms_4_tasks": round(four_tasks["live_ms"], 2),
        "naive_frame_ms_4_tasks": round(four_tasks["naive_ms"], 1),
        "speedup_4_tasks": round(four_tasks["naive_ms"] / four_tasks["live_ms"], 1),
        **{k: round(v, 3) for k, v in change.items()},
        "stop_latency_ms": round(stop_latency_ms(), 1),
    }
    print(
        "per frame: 2 axes, 300 steps, live lines + a ghost run; 4_tasks: 4 task lines + total; "
        "3_panels: 2 tasks + a third panel with 2 learned weights"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
