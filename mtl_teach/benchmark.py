"""Does any method beat a tuned sum? Every registered method against a weighted sum tuned on validation data.

For each problem and seed (the seed fixes the data, the initial weights and the minibatches):

1. a validation split, apart from the test split (`VALIDATION`): two_task draws
   512 more examples after its test examples; multi_digits pairs half of its
   held-out digits among themselves (no digit image in two splits);
2. one sweep (`mtl_teach.sweep`) trains the weighted sum for every alpha in
   `ALPHAS` (beta = 1 - alpha) at once. Its two ends are the single-task
   baselines: alpha = 1 trains the trunk and head 1 on task 1 alone, alpha = 0 on task 2 alone;
3. the tuned sum: the alpha strictly between 0 and 1 whose run has the lowest
   Delta m on the validation split (the test split is not looked at);
4. every method of `METHODS` trains once, with the registry's settings;
5. each run is scored on the test split by its Delta m against that seed's
   single-task runs (`delta_m`).

Delta m (Maninis, Radosavovic & Kokkinos, CVPR 2019; computed as `delta_fn` in
the Nash-MTL code, github.com/AvivNavon/nash-mtl, experiments/nyuv2/utils.py):
    Delta m % = 100 / K * sum_k (-1)^h_k (M_k - B_k) / B_k
over the K metrics, M_k the method's, B_k the single-task model's, h_k = 1 where
a higher value is better (accuracy), 0 where lower is (RMSE). It is a relative
loss of quality: lower is better, and below 0 the multi-task model beats the
single-task ones on average.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from mtl_teach.config import TrainConfig
from mtl_teach.registry import STRATEGIES, names
from mtl_teach.sweep import sweep
from mtl_teach.train import build, make_data, one_torch_thread, training_run

PROBLEMS: dict[str, dict[str, Any]] = {  # name -> the config fields that make the problem
    "metres": {"dataset": "two_task", "regression_scale": 1.0},
    "centimetres": {"dataset": "two_task", "regression_scale": 100.0},
    "digits": {"dataset": "multi_digits"},
}
VALIDATION = {"two_task": {"n_val": 512}, "multi_digits": {"val_fraction": 0.1}}  # make_data's split sizes
ALPHAS = tuple(k / 20 for k in range(21))  # the sweep: 0, 0.05, ..., 1; the ends are the single-task runs
SAME_AS_WEIGHTED_SUM = ("separate_backward", "backward_list")  # the same gradients (notebook 02): not re-run
METHODS = tuple(n for n in names() if n not in SAME_AS_WEIGHTED_SUM)
TUNED = "tuned_sum"


def higher_is_better(metric: str) -> bool:
    """Accuracy: higher is better; RMSE: lower is."""
    if "accuracy" in metric:
        return True
    if metric == "rmse":
        return False
    raise ValueError(f"metric {metric!r} is not known: is higher or lower better?")


def delta_m(metrics: dict[str, float], baseline: dict[str, float]) -> float:
    """Delta m % of `metrics` against the single-task `baseline` (same keys): lower is better, 0 is single-task."""
    if set(metrics) != set(baseline):
        raise ValueError(f"metrics {sorted(metrics)} and baseline {sorted(baseline)} must name the same metrics")
    terms = [(-1) ** higher_is_better(k) * (metrics[k] - baseline[k]) / baseline[k] for k in baseline]
    return 100 * sum(terms) / len(terms)


@dataclass
class Run:
    """One trained model of the benchmark, scored on the test split."""

    problem: str
    seed: int
    method: str
    metrics: dict[str, float]  # on the test split; empty if the run diverged
    delta_m: float  # against this seed's single-task runs; NaN if the run diverged
    alpha: float | None = None  # the tuned sum's alpha (chosen on the validation split)


def tuned_sum(config: TrainConfig, data) -> tuple[dict[str, float], float, dict[str, float]]:
    """One sweep over `ALPHAS`: the single-task baselines' test metrics, the tuned alpha, and its test metrics.

    `data` is `make_data(config)` with a validation split: the sweep trains on
    the same training examples, and each of its runs is scored on both splits.
    """
    result = sweep(config, alphas=ALPHAS)
    nets = [result.net(k) for k in range(len(ALPHAS))]
    with one_torch_thread():
        scores = {split: [data.evaluate(net, split) for net in nets] for split in ("val", "test")}
    baselines = {split: single_task(s) for split, s in scores.items()}  # alpha = 1 (task 1), alpha = 0 (task 2)
    val_delta = [delta_m(m, baselines["val"]) for m in scores["val"]]
    best = min(range(1, len(ALPHAS) - 1), key=lambda k: val_delta[k])  # both weights > 0; ties: smaller alpha
    return baselines["test"], ALPHAS[best], scores["test"][best]


def single_task(scores: list[dict[str, float]]) -> dict[str, float]:
    """Each metric from the run trained on its own task alone: the last run (alpha = 1) for task 1's, the first
    (alpha = 0) for task 2's. Each dataset reports one metric per task, in task order."""
    first_task, second_task = list(scores[-1]), list(scores[0])
    return {first_task[0]: scores[-1][first_task[0]], second_task[1]: scores[0][second_task[1]]}


def method_metrics(config: TrainConfig, data) -> dict[str, float]:
    """Train `config.strategy` on `data` (as `train` does): its test metrics, or {} if it diverged."""
    *_, history = training_run(config, build(config, data))
    return history.metrics if history.diverged_at is None else {}


@dataclass
class BenchmarkResult:
    """Every run of `run_benchmark`, and how they compare (`summary`, `markdown`, `figure`)."""

    problems: tuple[str, ...]
    seeds: tuple[int, ...]
    methods: tuple[str, ...]  # TUNED first, then the registry's methods
    steps: int
    batch_size: int
    runs: list[Run] = field(default_factory=list)
    baselines: dict[str, dict[int, dict[str, float]]] = field(default_factory=dict)  # problem -> seed -> metrics
    elapsed_s: float = 0.0

    def deltas(self, method: str, problem: str) -> list[float]:
        """Delta m % of `method` on `problem`, one per seed (NaN: diverged)."""
        return [r.delta_m for r in self.runs if r.method == method and r.problem == problem]

    def summary(self) -> dict[str, dict[str, dict[str, float]]]:
        """method -> problem -> mean and standard deviation of Delta m % over seeds, and how many diverged."""
        out: dict[str, dict[str, dict[str, float]]] = {}
        for method in self.methods:
            for problem in self.problems:
                values = [d for d in self.deltas(method, problem) if not math.isnan(d)]
                out.setdefault(method, {})[problem] = {
                    "mean": statistics.fmean(values) if values else math.nan,
                    "std": statistics.stdev(values) if len(values) > 1 else math.nan,
                    "diverged": len(self.deltas(method, problem)) - len(values),
                }
        return out

    def overall(self, method: str) -> float:
        """The mean over problems of `method`'s mean Delta m % (NaN if it diverged on every seed of one)."""
        return statistics.fmean(self.summary()[method][p]["mean"] for p in self.problems)

    def ranked(self) -> list[str]:
        """The methods, best (lowest `overall`) first; a method that diverged everywhere on a problem last."""
        return sorted(self.methods, key=lambda m: math.inf if math.isnan(self.overall(m)) else self.overall(m))

    def markdown(self) -> str:
        """The table: Delta m % (mean ± standard deviation over seeds) per method and problem, best first."""
        summary, order = self.summary(), self.ranked()
        head = "| method | family | " + " | ".join(self.problems) + " | mean |"
        lines = [head, "|" + " --- |" * (len(self.problems) + 3)]
        for method in order:
            cells = [_cell(summary[method][p]) for p in self.problems]
            mean = self.overall(method)
            lines.append(f"| {method} | {_family(method)} | " + " | ".join(cells) + f" | {mean:+.2f} |")
        alphas = "; ".join(
            f"{p}: " + ", ".join(f"{r.alpha:.2f}" for r in self.runs if r.method == TUNED and r.problem == p)
            for p in self.problems
        )
        note = (
            f"Delta m % on the test split against single-task models (lower is better; below 0 beats them), "
            f"mean ± standard deviation over seeds {list(self.seeds)}, "
            f"{self.steps} steps of {self.batch_size} examples. "
            f"The tuned sum's alpha per seed, chosen on the validation split: {alphas}."
        )
        return "\n".join(lines) + "\n\n" + note + "\n"

    def to_json(self) -> dict[str, Any]:
        """Everything, as JSON-able data (NaN becomes None)."""
        return _no_nan(
            {
                "problems": {p: PROBLEMS[p] for p in self.problems},
                "seeds": list(self.seeds),
                "steps": self.steps,
                "batch_size": self.batch_size,
                "methods": list(self.methods),
                "delta_m_summary": self.summary(),
                "single_task_metrics": self.baselines,
                "runs": [dataclasses.asdict(r) for r in self.runs],
                "elapsed_s": self.elapsed_s,
            }
        )

    def figure(self):
        """One panel per problem: each method's Delta m % per seed (dots), their mean and spread (bar)."""
        from matplotlib.figure import Figure  # matplotlib only when a figure is asked for

        summary, order = self.summary(), self.ranked()[::-1]  # the best at the top
        fig = Figure(figsize=(3.6 * len(self.problems) + 1.6, 0.3 * len(order) + 1.8), layout="constrained")
        fig.patch.set_facecolor("white")
        axes = fig.subplots(1, len(self.problems), sharey=True, squeeze=False)[0]
        for ax, problem in zip(axes, self.problems):
            for y, method in enumerate(order):
                color, stats = FAMILY_COLORS[_family(method)], summary[method][problem]
                ax.plot(self.deltas(method, problem), [y] * len(self.seeds), "o", ms=3, color=color, alpha=0.45)
                ax.errorbar(stats["mean"], y, xerr=stats["std"], fmt="D", ms=5, color=color, capsize=2)
            ax.axvline(0.0, color="0.3", lw=0.8)  # the single-task models
            ax.axvline(summary[TUNED][problem]["mean"], color=FAMILY_COLORS["tuned"], lw=0.8, ls="--")
            ax.set_title(problem, fontsize=10)
            ax.set_xlabel("Δm % vs single-task (lower is better)")
            ax.grid(axis="x", color="0.9")
        axes[0].set_yticks(range(len(order)), order, fontsize=8)
        handles = [axes[0].plot([], [], "D", color=c, label=f)[0] for f, c in FAMILY_COLORS.items()]
        fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize=8)
        return fig


FAMILY_COLORS = {
    "tuned": "#6A3D9A",
    "sum": "#222222",
    "recipe": "#7F7F7F",
    "weighting": "#8C564B",
    "gradient": "#006D77",
}


def _family(method: str) -> str:
    return "tuned" if method == TUNED else STRATEGIES[method].family


def _cell(stats: dict[str, float]) -> str:
    spread = "" if math.isnan(stats["std"]) else f" ± {stats['std']:.2f}"  # one seed: no spread
    text = "diverged" if math.isnan(stats["mean"]) else f"{stats['mean']:+.2f}{spread}"
    return text + (f" ({stats['diverged']} diverged)" if stats["diverged"] and not math.isnan(stats["mean"]) else "")


def _no_nan(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _no_nan(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_no_nan(v) for v in value]
    return value


def settings_problem(
    problems: Sequence[str], n_seeds: int, methods: Sequence[str], steps: int, batch_size: int
) -> str | None:
    """Why these benchmark settings cannot run (None: they can), before anything is trained."""
    for kind, given, known in (("problem", problems, list(PROBLEMS)), ("method", methods, names())):
        unknown = [name for name in given if name not in known]
        if unknown or not given:
            return f"{kind} {unknown[0] if unknown else 'list'!r} is not allowed: choose one or more of {known}"
    if not isinstance(n_seeds, int) or n_seeds < 1:
        return f"seeds={n_seeds!r} is not allowed: the number of seeds must be a whole number, at least 1"
    try:
        TrainConfig(steps=steps, batch_size=batch_size)
    except ValueError as error:
        return str(error)
    return None


def run_benchmark(
    problems: Sequence[str] = tuple(PROBLEMS),
    seeds: Sequence[int] = (0, 1, 2),
    methods: Sequence[str] = METHODS,
    steps: int = 300,
    batch_size: int = 64,
) -> BenchmarkResult:
    """The tuned sum and each of `methods` on each problem and seed (see the module docstring)."""
    problem = settings_problem(problems, len(seeds), methods, steps, batch_size)
    if problem is not None:
        raise ValueError(problem)
    result = BenchmarkResult(tuple(problems), tuple(seeds), (TUNED, *methods), steps, batch_size)
    start = time.perf_counter()
    for problem in problems:
        for seed in seeds:
            config = TrainConfig(steps=steps, batch_size=batch_size, seed=seed, **PROBLEMS[problem])
            data = make_data(config, **VALIDATION[config.dataset])
            baseline, alpha, metrics = tuned_sum(config, data)
            result.baselines.setdefault(problem, {})[seed] = baseline
            result.runs.append(Run(problem, seed, TUNED, metrics, delta_m(metrics, baseline), alpha))
            for method in methods:
                metrics = method_metrics(config.replace(strategy=method), data)
                score = delta_m(metrics, baseline) if metrics else math.nan
                result.runs.append(Run(problem, seed, method, metrics, score))
    result.elapsed_s = time.perf_counter() - start
    return result
