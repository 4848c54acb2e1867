"""Command line: `python -m mtl_teach train ...`, `... compare ...` and `... benchmark ...`.

Instructors use it to make figures for slides; tests use it as a stable interface.
Exit status: 0 done, 1 a run diverged, 2 a bad value (nothing was trained).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from mtl_teach.config import OPTIMIZERS, ConfigError, TrainConfig
from mtl_teach.registry import names
from mtl_teach.train import History, train

PLOT_FORMATS = (".png", ".pdf", ".svg")


def _add_config_arguments(p: argparse.ArgumentParser) -> None:
    d = TrainConfig()
    p.add_argument("--alpha", type=float, default=d.alpha, help="weight of the classification loss")
    p.add_argument("--beta", type=float, default=d.beta, help="weight of the regression loss")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default=d.optimizer)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--momentum", type=float, default=d.momentum, help="SGD momentum")
    p.add_argument("--steps", type=int, default=d.steps)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--relatedness", type=float, default=d.relatedness, help="-1 opposed .. 1 same signal")
    p.add_argument("--regression-scale", type=float, default=d.regression_scale)
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.add_argument("--plot", metavar="FILE", help=f"save the loss curves to this file ({', '.join(PLOT_FORMATS)})")
    p.add_argument("--log", action="store_true", help="log-scale loss axis in the plot")


FIELDS = (
    "alpha",
    "beta",
    "optimizer",
    "lr",
    "momentum",
    "steps",
    "batch_size",
    "seed",
    "relatedness",
    "regression_scale",
)


def _config(args: argparse.Namespace, strategy: str) -> TrainConfig:
    return TrainConfig(strategy=strategy, **{name: getattr(args, name) for name in FIELDS})


def plot_path_problem(path: str) -> str | None:
    """Why the figure could not be written to `path` (None: it can), checked before training."""
    folder = os.path.dirname(os.path.abspath(path)) if path else ""
    if not path or os.path.isdir(path):
        return f"--plot {path!r} must name a file, e.g. curves.png"
    if os.path.splitext(path)[1].lower() not in PLOT_FORMATS:
        return f"--plot {path!r} must end in one of {', '.join(PLOT_FORMATS)}"
    if not os.path.isdir(folder):
        return f"--plot {path!r}: the folder {folder!r} does not exist"
    if not os.access(folder, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        return f"--plot {path!r}: no permission to write there"
    return None


def summary(history: History) -> dict:
    """The JSON-able summary of a run: config, final losses, metrics, outcome."""
    return {
        "config": history.config.to_dict(),
        "steps_done": history.steps_done,
        "final_losses": history.final_losses(),
        "final_total": history.total[-1] if history.total else None,
        "metrics": history.metrics,
        "diverged_at": history.diverged_at,
        "message": history.message,
    }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mtl_teach", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_train = sub.add_parser("train", help="train one strategy and print a summary")
    p_train.add_argument("--strategy", default="weighted_sum", help=f"one of {names()}")
    _add_config_arguments(p_train)
    p_compare = sub.add_parser("compare", help="train several strategies on the same data and init")
    p_compare.add_argument("--strategies", nargs="+", default=names("sum") + names("recipe"), metavar="NAME")
    _add_config_arguments(p_compare)
    p_bench = sub.add_parser("benchmark", help="every method against a tuned weighted sum (Delta m %%, several seeds)")
    p_bench.add_argument("--seeds", type=int, default=3, help="seeds 0 .. N-1 (default 3)")
    p_bench.add_argument("--out", required=True, metavar="DIR", help="folder for benchmark.md, .json and .png")
    p_bench.add_argument("--steps", type=int, default=300)
    p_bench.add_argument("--batch-size", type=int, default=64)
    p_bench.add_argument("--problems", nargs="+", default=None, metavar="NAME", help="default: all")
    p_bench.add_argument("--methods", nargs="+", default=None, metavar="NAME", help="default: all but duplicates")
    return parser


def benchmark_main(args: argparse.Namespace) -> int:
    """Run `mtl_teach.benchmark.run_benchmark` and write its table (Markdown, JSON) and figure to --out."""
    from mtl_teach import benchmark  # the sweep and matplotlib only when asked

    problems = args.problems or list(benchmark.PROBLEMS)
    methods = args.methods or list(benchmark.METHODS)
    problem = benchmark.settings_problem(problems, args.seeds, methods, args.steps, args.batch_size)
    problem = problem or out_dir_problem(args.out)
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    result = benchmark.run_benchmark(problems, range(args.seeds), methods, args.steps, args.batch_size)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "benchmark.md"), "w", encoding="utf-8") as f:
        f.write(result.markdown())
    with open(os.path.join(args.out, "benchmark.json"), "w", encoding="utf-8") as f:
        json.dump(result.to_json(), f, indent=1, sort_keys=True, allow_nan=False)
    result.figure().savefig(os.path.join(args.out, "benchmark.png"), dpi=120)
    print(result.markdown())
    print(f"wrote benchmark.md, benchmark.json and benchmark.png to {args.out} ({result.elapsed_s:.0f} s)")
    return 0


def out_dir_problem(path: str) -> str | None:
    """Why --out cannot hold the results (None: it can, made if missing), checked before training."""
    folder = os.path.abspath(path)
    existing = folder
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if os.path.exists(folder) and not os.path.isdir(folder):
        return f"--out {path!r} is a file; name a folder"
    if not os.access(existing, os.W_OK):
        return f"--out {path!r}: no permission to write in {existing!r}"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "benchmark":
        return benchmark_main(args)
    names_asked = [args.strategy] if args.command == "train" else args.strategies
    try:
        configs = [_config(args, name) for name in names_asked]
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    problem = plot_path_problem(args.plot) if args.plot is not None else None
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    histories = [train(c) for c in configs]
    if args.plot:
        from mtl_teach.plots import save_curves  # matplotlib only when asked

        save_curves(histories, args.plot, log_scale=args.log)
    if args.json:
        out = summary(histories[0]) if args.command == "train" else {h.config.strategy: summary(h) for h in histories}
        print(json.dumps(out, sort_keys=True, allow_nan=False))
    else:
        for h in histories:
            print(f"{h.config.strategy:>18}: {h.message}  {_fmt_metrics(h)}")
    return 1 if any(h.diverged_at is not None for h in histories) else 0


def _fmt_metrics(h: History) -> str:
    return " ".join(f"{k}={v:.4f}" for k, v in h.metrics.items())
