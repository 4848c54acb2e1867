"""How fast does the playground answer? Side by side in one process, on the machine it runs on:

1. a control change -> the final frame on the `Image` widget, for alpha (answered by the grid
   when the playground has one) and for a retrain (another seed), with training alone for scale;
2. a 1000-step run: frames a second sent to the widget, and run time / training alone;
3. one live frame and one final frame: ms to draw and encode, and bytes sent.

Latencies are measured to the frame the kernel sends, not to the page (the browser adds its
own share: tests/e2e/test_playground_in_lab.py measures that). Prints ranges (min, median,
max) and one JSON object on the last line. Runs on older versions of the package too (no
grid there): `PYTHONPATH=<old checkout> python benchmarks/bench_playground.py`.
"""

from __future__ import annotations

import inspect
import json
import statistics
import time

from mtl_teach.config import TrainConfig
from mtl_teach.live import LiveCurves
from mtl_teach.playground import playground
from mtl_teach.train import one_torch_thread, train

REPEATS = 5


def spread(values: list[float], digits: int = 3) -> dict[str, float]:
    return {k: round(f(values), digits) for k, f in (("min", min), ("median", statistics.median), ("max", max))}


def has_grid() -> bool:
    return "grid" in inspect.signature(playground).parameters


def final_frame_of(pg, config: TrainConfig, timeout: float = 120.0) -> None:
    """Wait until the widget shows the finished run of `config` (its status and its final frame)."""
    deadline = time.monotonic() + timeout
    while True:
        with pg._lock:
            history = pg.history
            if history is not None and history.config == config and history.finished:
                if pg.image.value == pg.curves.png and pg._pending is None:
                    return
        if time.monotonic() > deadline:
            raise TimeoutError(f"no final frame for {config}")
        time.sleep(0.002)


def change_latency(pg, control: str, value, config: TrainConfig) -> float:
    """Seconds from setting one control to the final frame of `config` on the widget."""
    pg.wait()  # nothing in the background: each change starts from rest
    start = time.perf_counter()
    pg.controls[control].value = value
    final_frame_of(pg, config)
    return time.perf_counter() - start


def training_alone(config: TrainConfig) -> float:
    with one_torch_thread():
        start = time.perf_counter()
        train(config)
        return time.perf_counter() - start


def latencies() -> dict:
    """Alpha (from the grid, if there is one), then a retrain (a new seed) with training alone."""
    kwargs = {"grid": True} if has_grid() else {}
    pg = playground(mode="thread", controls=["alpha", "seed"], tie_beta=True, **kwargs)
    pg.wait()
    alpha_s, retrain_s, alone_s = [], [], []
    for i in range(REPEATS):  # scrubbing alpha: one value after another
        alpha = round(0.3 + 0.05 * i, 2)
        alpha_s.append(
            change_latency(
                pg, "alpha", alpha, pg.config_from_controls().replace(alpha=alpha, beta=round(1 - alpha, 10))
            )
        )
    for i in range(REPEATS):  # then another seed each time: a retrain, and the same run alone
        config = pg.config_from_controls().replace(seed=100 + i)
        retrain_s.append(change_latency(pg, "seed", 100 + i, config))
        pg.wait()  # the grid for the new seed trains now: let it finish before timing training alone
        alone_s.append(training_alone(config))
    pg.close()
    return {"alpha_change_s": spread(alpha_s), "retrain_s": spread(retrain_s), "training_alone_s": spread(alone_s)}


def long_run(steps: int = 1000) -> dict:
    """A `steps`-step run from a control change: frames a second and time against training alone."""
    pg = playground(mode="thread", controls=["seed", "steps"], steps=steps)
    pg.wait()
    fps, ratios, run_s = [], [], []
    for i in range(REPEATS):
        config = pg.initial.replace(seed=200 + i)
        alone = training_alone(config)
        frames_before = pg.curves.frames_drawn
        start = time.perf_counter()
        pg.controls["seed"].value = 200 + i
        pg.wait()  # no polling here: a polling thread would take the GIL from the run it measures
        took = time.perf_counter() - start
        assert pg.history.config == config and pg.history.finished and pg.image.value == pg.curves.png
        fps.append((pg.curves.frames_drawn - frames_before) / took)
        ratios.append(took / alone)
        run_s.append(took)
    pg.close()
    return {"fps_sent": spread(fps, 1), "run_over_training_alone": spread(ratios, 2), "run_s": spread(run_s, 2)}


def frame_cost(steps: int = 1000) -> dict:
    """ms and bytes of a live frame and of the final frame, 2 tasks, a ghost run behind."""
    run, ghost = train(TrainConfig(steps=steps)), train(TrainConfig(steps=steps, alpha=0.3))
    curves = LiveCurves(run.task_names, live=True, sink=lambda png, history: None)
    curves.set_ghost(ghost)
    curves.finish(run)  # draws the cached axes once
    live_render = "live" in inspect.signature(curves.figure.render).parameters
    result = {}
    for kind, live in (("live", True), ("final", False)):
        times = []
        for _ in range(20):
            start = time.perf_counter()
            png = curves.figure.render(run, live) if live_render else curves.figure.render(run)
            times.append(1000 * (time.perf_counter() - start))
        result[f"{kind}_frame_ms"] = spread(times, 2)
        result[f"{kind}_frame_bytes"] = len(png)
    return result


def main() -> None:
    result = {"grid": has_grid(), **latencies(), **{"run_1000_steps": long_run()}, **frame_cost()}
    print("ranges are (min, median, max) of", REPEATS, "repeats; frame costs of 20")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
