"""Sweep time: 21 weightings x 300 steps of the default model, three ways.

- sequential: `train()` once per weighting (what a learner would loop over);
- vmap_grad: the textbook torch.func recipe (stack_module_state + functional_call
  + vmap(grad)) with torch's own optimizer on the stacked parameters;
- sweep: `mtl_teach.sweep.sweep` (vmap of the forward pass and the losses only,
  then one ordinary backward, torch's optimizer on one (K, D) tensor).

Measured side by side in one process, interleaved, median of REPEATS runs;
also checks that the three agree. Prints one JSON object on the last line.
Usage: python benchmarks/bench_sweep.py [repeats] [threads]

Threads default to 1: these matrices are tiny (21 x 64 x 32), a second
thread gains nothing, and on a busy machine torch's second thread waits for
a core and makes every timing swing by 10-100x. Pass 2 to measure with both.
"""

from __future__ import annotations

import copy
import json
import statistics
import sys
import time

import torch
from torch.func import functional_call, grad, stack_module_state, vmap

from mtl_teach.config import TrainConfig
from mtl_teach.data import batch_indices
from mtl_teach.losses import task_losses
from mtl_teach.sweep import sweep, weight_pairs
from mtl_teach.train import build, train

REPEATS = int(sys.argv[1]) if len(sys.argv) > 1 else 5
THREADS = int(sys.argv[2]) if len(sys.argv) > 2 else 1
GOAL_S = 0.8
CONFIG = TrainConfig()  # 8 features, hidden (32,), two heads, Adam lr 0.01, 300 steps of 64
PAIRS = weight_pairs(alphas=torch.linspace(0, 1, 21))


def sequential_sweep(config: TrainConfig, pairs: list[tuple[float, float]]) -> torch.Tensor:
    """One `train()` per weighting; the last minibatch losses (K, T)."""
    runs = [train(config.replace(alpha=a, beta=b)) for a, b in pairs]
    return torch.tensor([list(h.final_losses().values()) for h in runs])


def vmap_sweep(config: TrainConfig, pairs: list[tuple[float, float]]) -> torch.Tensor:
    """K models trained with torch.func.vmap; the last minibatch losses (K, T)."""
    setup = build(config)
    params, buffers = stack_module_state([copy.deepcopy(setup.net) for _ in pairs])
    template = copy.deepcopy(setup.net).to("meta")  # the structure only; weights come from `params`
    weights = torch.tensor(pairs, dtype=setup.data.X.dtype)

    def objective(p, b, w, X, targets):
        losses = torch.stack(
            task_losses(lambda X: functional_call(template, (p, b), (X,)), (X, targets), setup.data.criteria)
        )
        return (w * losses).sum(), losses

    per_model_grad = vmap(grad(objective, has_aux=True), in_dims=(0, 0, 0, None, None))
    if config.optimizer == "adam":
        optimizer = torch.optim.Adam(params.values(), lr=config.lr)
    else:
        optimizer = torch.optim.SGD(params.values(), lr=config.lr, momentum=config.momentum)
    X, targets = setup.data.X, setup.data.targets
    for idx in batch_indices(len(setup.data), config.batch_size, config.steps, config.seed):
        grads, losses = per_model_grad(params, buffers, weights, X[idx], [t[idx] for t in targets])
        for name, p in params.items():
            p.grad = grads[name]
        optimizer.step()
    return losses.detach()


def timed(fn) -> tuple[float, torch.Tensor]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def main() -> None:
    torch.set_num_threads(THREADS)
    methods = {
        "sequential": lambda: sequential_sweep(CONFIG, PAIRS),
        "vmap_grad": lambda: vmap_sweep(CONFIG, PAIRS),
        "sweep": lambda: sweep(CONFIG, weights=PAIRS).curves[-1],
    }
    times: dict[str, list[float]] = {name: [] for name in methods}
    last: dict[str, torch.Tensor] = {}
    for _ in range(REPEATS):
        for name, fn in methods.items():  # interleaved, so background load hits all three alike
            seconds, last[name] = timed(fn)
            times[name].append(seconds)
    median = {name: statistics.median(t) for name, t in times.items()}
    for name, t in times.items():
        print(f"{name:>10}: median {median[name]:.3f} s  ({', '.join(f'{x:.3f}' for x in t)})")
    result = {
        "benchmark": "sweep",
        "runs": len(PAIRS),
        "steps": CONFIG.steps,
        "repeats": REPEATS,
        "torch_threads": torch.get_num_threads(),
        "sequential_s": round(median["sequential"], 4),
        "vmap_grad_s": round(median["vmap_grad"], 4),
        "sweep_s": round(median["sweep"], 4),
        "speedup_vs_sequential": round(median["sequential"] / median["sweep"], 2),
        "speedup_vs_vmap_grad": round(median["vmap_grad"] / median["sweep"], 2),
        "goal_s": GOAL_S,
        "meets_goal": median["sweep"] <= GOAL_S,
        # float32: the three agree up to rounding (tests check 1e-8 in float64)
        "max_diff_vs_sequential": float((last["sweep"] - last["sequential"]).abs().max()),
        "max_diff_vs_vmap_grad": float((last["sweep"] - last["vmap_grad"]).abs().max()),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
