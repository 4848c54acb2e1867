"""Per-step cost of each core strategy, as a ratio to weighted_sum, and the
overhead of `train()` against a hand-written PyTorch loop on the same config.

Everything is measured side by side in one process, interleaved, median of
REPEATS runs. Prints one JSON object on the last line.
"""

from __future__ import annotations

import json
import statistics
import time

import torch

from mtl_teach.config import TrainConfig
from mtl_teach.data import batch_indices
from mtl_teach.train import build, train

REPEATS = 7
CORE = ["weighted_sum", "separate_backward", "backward_list", "alternating_steps", "per_task_lr"]


def hand_written_loop(config: TrainConfig) -> list[float]:
    """The loop a learner would write: same data, model, optimizer, batches."""
    s = build(config)
    X, (y_class, y_reg) = s.data.X, s.data.targets
    bce, mse = torch.nn.BCEWithLogitsLoss(), torch.nn.MSELoss()
    totals = []
    for idx in batch_indices(len(s.data), config.batch_size, config.steps, config.seed):
        logits, y_hat = s.net(X[idx])
        loss_class, loss_reg = bce(logits, y_class[idx]), mse(y_hat, y_reg[idx])
        loss = config.alpha * loss_class + config.beta * loss_reg
        s.optimizer.zero_grad()
        loss.backward()
        s.optimizer.step()
        totals.append(loss.item())
    return totals


def seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    config = TrainConfig()
    # Warm-up, and a check that the baseline really is the same computation.
    reference = train(config).total
    torch.testing.assert_close(torch.tensor(hand_written_loop(config)), torch.tensor(reference))
    times: dict[str, list[float]] = {name: [] for name in CORE + ["hand_written"]}
    for _ in range(REPEATS):  # interleave so drifts in machine load hit all alike
        for name in CORE:
            times[name].append(seconds(lambda n=name: train(config.replace(strategy=n))))
        times["hand_written"].append(seconds(lambda: hand_written_loop(config)))
    median = {name: statistics.median(t) for name, t in times.items()}
    per_step_ms = {name: 1e3 * m / config.steps for name, m in median.items()}
    result = {
        "config": {"steps": config.steps, "batch_size": config.batch_size, "threads": torch.get_num_threads()},
        "per_step_ms": {k: round(v, 4) for k, v in per_step_ms.items()},
        "ratio_to_weighted_sum": {n: round(median[n] / median["weighted_sum"], 3) for n in CORE},
        "train_overhead_vs_hand_written": round(median["weighted_sum"] / median["hand_written"], 3),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
