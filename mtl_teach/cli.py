"""Command line: `python -m mtl_teach train ...` and `python -m mtl_teach compare ...`.

Instructors use it to make figures for slides; tests use it as a stable interface.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from mtl_teach.config import OPTIMIZERS, ConfigError, TrainConfig
from mtl_teach.strategies import STRATEGIES
from mtl_teach.train import History, train


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
    p.add_argument("--plot", metavar="PNG", help="save the loss curves to this file")
    p.add_argument("--log", action="store_true", help="log-scale loss axis in the plot")


def _config(args: argparse.Namespace, strategy: str) -> TrainConfig:
    return TrainConfig(
        strategy=strategy,
        alpha=args.alpha,
        beta=args.beta,
        optimizer=args.optimizer,
        lr=args.lr,
        momentum=args.momentum,
        steps=args.steps,
        batch_size=args.batch_size,
        seed=args.seed,
        relatedness=args.relatedness,
        regression_scale=args.regression_scale,
    )


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
    p_train.add_argument("--strategy", default="weighted_sum", help=f"one of {list(STRATEGIES)}")
    _add_config_arguments(p_train)
    p_compare = sub.add_parser("compare", help="train several strategies on the same data and init")
    p_compare.add_argument("--strategies", nargs="+", default=list(STRATEGIES)[:5], metavar="NAME")
    _add_config_arguments(p_compare)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    names = [args.strategy] if args.command == "train" else args.strategies
    try:
        configs = [_config(args, name) for name in names]
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    histories = [train(c) for c in configs]
    if args.plot:
        from mtl_teach.plots import save_curves  # matplotlib only when asked

        save_curves(histories, args.plot, log_scale=args.log)
    if args.json:
        out = summary(histories[0]) if args.command == "train" else {h.config.strategy: summary(h) for h in histories}
        print(json.dumps(out, sort_keys=True))
    else:
        for h in histories:
            print(f"{h.config.strategy:>18}: {h.message}  {_fmt_metrics(h)}")
    return 1 if any(h.diverged_at is not None for h in histories) else 0


def _fmt_metrics(h: History) -> str:
    return " ".join(f"{k}={v:.4f}" for k, v in h.metrics.items())
