"""Per-step cost of each gradient method (PCGrad, MGDA, CAGrad, UPGrad, IMTL-G, Nash-MTL, Aligned-MTL).

1. `train()` with each gradient strategy, as a ratio to `weighted_sum`, on
   the default config; and Nash-MTL with its weights updated every k steps
   (`update_every=k`, the official code's `update_weights_every`).
2. The same step done with TorchJD 0.18 (`mtl_backward` + `jac_to_grad`
   with its aggregator) on the same model, data, batches and optimizer,
   against ours in the same bare loop: the ratio ours / TorchJD (goal <= 1).
   TorchJD's CAGrad solves its small dual problem with cvxpy (Clarabel);
   ours in closed form on every face of the simplex (one batched solve).

Everything is measured side by side in one process, interleaved, median of
REPEATS runs. Prints one JSON object on the last line.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable

import torch
from torchjd import aggregation as jd
from torchjd.autojac import jac_to_grad, mtl_backward
from torchjd.linalg import QuadprogProjector

from mtl_teach.aggregators import nash_mtl
from mtl_teach.config import TrainConfig
from mtl_teach.data import batch_indices
from mtl_teach.gradient_methods import make_gradient_method_step
from mtl_teach.losses import task_losses
from mtl_teach.registry import STRATEGIES, names
from mtl_teach.strategies import Setup, StepResult
from mtl_teach.train import build, train, training_run

REPEATS = 5
METHODS = names("gradient")
# TorchJD's aggregator for the same method. UPGrad's default projector normalises the
# Gram matrix and adds 1e-4 to its diagonal; turned off here so both solve the same problem.
TORCHJD = {
    "pcgrad": jd.PCGrad,
    "mgda": jd.MGDA,  # its defaults: for two tasks its first Frank-Wolfe step is already exact
    "upgrad": lambda: jd.UPGrad(projector=QuadprogProjector(norm_eps=0.0, reg_eps=0.0)),
    "imtl_g": jd.IMTLG,
    "cagrad": lambda: jd.CAGrad(c=0.5, norm_eps=0.0),  # c = 0.5: our default
    "aligned_mtl": lambda: jd.AlignedMTL(pref_vector=torch.ones(2)),  # ours sums the aligned gradients
}
NASH_EVERY = (5, 10)  # Nash-MTL: update the weights every k steps, reuse them in between


def torchjd_step(aggregator: jd.Aggregator) -> Callable[[Setup], Callable]:
    """A `make_step` that does the step the TorchJD way (its documented MTL recipe)."""

    def make_step(s: Setup) -> Callable:
        def step(batch) -> StepResult:
            X, targets = batch
            features = s.net.trunk(X)
            head_net = lambda _: [head(features).squeeze(-1) for head in s.net.heads]  # noqa: E731
            losses = task_losses(head_net, (X, targets), s.data.criteria)
            s.optimizer.zero_grad()
            mtl_backward([w * loss for w, loss in zip(s.config.weights, losses)], features=features)
            jac_to_grad(s.net.shared_parameters(), aggregator)
            s.optimizer.step()
            return StepResult(torch.stack(losses).detach(), s.config.weights)

        return step

    return make_step


def bare_loop(config: TrainConfig, make_step: Callable | None = None) -> list[float]:
    """The training loop without History bookkeeping; `make_step` replaces the strategy's."""
    s = build(config)
    step = (make_step or STRATEGIES[config.strategy].make_step)(s)
    totals = []
    for idx in batch_indices(len(s.data), config.batch_size, config.steps, config.seed):
        result = step((s.data.X[idx], [t[idx] for t in s.data.targets]))
        totals.append(sum(w * v for w, v in zip(config.weights, result.losses.tolist())))
    return totals


def seconds(fn: Callable) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def check_same_computation(config: TrainConfig) -> None:
    """Ours and TorchJD's follow the same trajectory (so the timings compare like with like)."""
    for name in TORCHJD:
        ours = bare_loop(config.replace(strategy=name))
        theirs = bare_loop(config.replace(strategy=name), torchjd_step(TORCHJD[name]()))
        torch.testing.assert_close(torch.tensor(ours), torch.tensor(theirs), rtol=1e-4, atol=1e-5)


def main() -> None:
    torch.set_num_threads(1)
    config = TrainConfig()
    check_same_computation(config.replace(steps=50))
    runs: dict[str, Callable] = {n: (lambda n=n: train(config.replace(strategy=n))) for n in ["weighted_sum"] + METHODS}
    for k in NASH_EVERY:
        every_k = make_gradient_method_step(nash_mtl, update_every=k)
        runs[f"nash_mtl/every_{k}"] = lambda m=every_k: list(training_run(config.replace(strategy="nash_mtl"), None, m))
    compared = list(runs)[1:]  # the gradient methods, and Nash-MTL every k steps
    for name in TORCHJD:
        runs[f"{name}/ours"] = lambda n=name: bare_loop(config.replace(strategy=n))
        runs[f"{name}/torchjd"] = lambda n=name: bare_loop(config.replace(strategy=n), torchjd_step(TORCHJD[n]()))
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(REPEATS):  # interleaved, so drifts in machine load hit all alike
        for name, run in runs.items():
            times[name].append(seconds(run))
    median = {name: statistics.median(t) for name, t in times.items()}
    result = {
        "config": {"steps": config.steps, "batch_size": config.batch_size, "hidden": config.hidden, "threads": 1},
        "per_step_ms": {k: round(1e3 * v / config.steps, 4) for k, v in median.items()},
        "ratio_to_weighted_sum": {n: round(median[n] / median["weighted_sum"], 3) for n in compared},
        "ours_over_torchjd": {n: round(median[f"{n}/ours"] / median[f"{n}/torchjd"], 3) for n in TORCHJD},
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
