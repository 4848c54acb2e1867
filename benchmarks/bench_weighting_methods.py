"""Per-step cost of each method that chooses the loss weights, as a ratio to `weighted_sum`.

Uncertainty weighting, DWA, GradNorm, the log sum, RLW and FAMO, each with
`train()` on the default config. FAMO does one more forward pass per step
(the losses after the update, on the same batch); GradNorm one more
gradient per task (of the last shared layer).

Everything is measured side by side in one process, interleaved, median of
REPEATS runs. Prints one JSON object on the last line.
"""

from __future__ import annotations

import json
import statistics
import time

import torch

from mtl_teach.config import TrainConfig
from mtl_teach.registry import names
from mtl_teach.train import train

REPEATS = 7
METHODS = names("weighting")


def seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    torch.set_num_threads(1)
    config = TrainConfig()
    for name in ["weighted_sum", *METHODS]:  # warm-up, and each method really trains
        assert train(config.replace(strategy=name, steps=20)).finished, name
    times: dict[str, list[float]] = {name: [] for name in ["weighted_sum", *METHODS]}
    for _ in range(REPEATS):  # interleaved, so drifts in machine load hit all alike
        for name in times:
            times[name].append(seconds(lambda n=name: train(config.replace(strategy=n))))
    median = {name: statistics.median(t) for name, t in times.items()}
    result = {
        "config": {"steps": config.steps, "batch_size": config.batch_size, "hidden": config.hidden, "threads": 1},
        "per_step_ms": {k: round(1e3 * v / config.steps, 4) for k, v in median.items()},
        "ratio_to_weighted_sum": {n: round(median[n] / median["weighted_sum"], 3) for n in METHODS},
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
