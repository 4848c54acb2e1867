"""The benchmark: Delta m as the MTL literature computes it, a sum tuned on validation data only, and the report."""

import json
import math

import pytest
import torch

from mtl_teach import benchmark as bm
from mtl_teach.config import TrainConfig
from mtl_teach.sweep import sweep
from mtl_teach.train import make_data, train

# --- Delta m ---


def test_delta_m_by_hand():
    """Accuracy 0.9 vs 0.8 is 12.5 % better (counts -12.5); RMSE 0.3 vs 0.2 is 50 % worse (+50): mean +18.75."""
    assert bm.delta_m({"accuracy": 0.9, "rmse": 0.3}, {"accuracy": 0.8, "rmse": 0.2}) == pytest.approx(18.75)
    assert bm.delta_m({"accuracy": 0.8, "rmse": 0.2}, {"accuracy": 0.8, "rmse": 0.2}) == 0.0  # single-task: 0
    both = {"left digit accuracy": 0.99, "right digit accuracy": 0.99}
    assert bm.delta_m(both, {"left digit accuracy": 0.9, "right digit accuracy": 0.9}) == pytest.approx(-10.0)


def test_delta_m_matches_the_nash_mtl_codes_formula():
    """delta_fn in github.com/AvivNavon/nash-mtl (experiments/nyuv2/utils.py): mean((-1)^SIGN (a - B) / B) * 100,
    SIGN = 1 where higher is better; written out here for two metrics."""
    a, base, sign = torch.tensor([0.93, 0.41]), torch.tensor([0.95, 0.37]), torch.tensor([1, 0])
    expected = ((-1.0) ** sign * (a - base) / base).mean().item() * 100
    ours = bm.delta_m({"accuracy": 0.93, "rmse": 0.41}, {"accuracy": 0.95, "rmse": 0.37})
    assert ours == pytest.approx(expected, rel=1e-6)


def test_delta_m_refuses_unmatched_or_unknown_metrics():
    with pytest.raises(ValueError, match="must name the same metrics"):
        bm.delta_m({"accuracy": 1.0}, {"rmse": 1.0})
    with pytest.raises(ValueError, match="metric 'loss' is not known"):
        bm.delta_m({"loss": 1.0}, {"loss": 2.0})


# --- the tuned sum and its single-task baselines ---


@pytest.fixture(scope="module")
def small():
    """A short benchmark: metres, two seeds, two methods, 30 steps."""
    return bm.run_benchmark(["metres"], seeds=(0, 1), methods=["weighted_sum", "nash_mtl"], steps=30)


def test_the_tuned_alpha_is_the_best_on_the_validation_split_and_its_score_is_on_the_test_split():
    config = TrainConfig(steps=30, seed=1)
    data = make_data(config, **bm.VALIDATION["two_task"])
    baseline, alpha, metrics = bm.tuned_sum(config, data)
    runs = sweep(config, alphas=bm.ALPHAS)  # the same runs, again
    val = [data.evaluate(runs.net(k), "val") for k in range(21)]
    val_baseline = {"accuracy": val[-1]["accuracy"], "rmse": val[0]["rmse"]}
    scores = [bm.delta_m(m, val_baseline) for m in val[1:-1]]
    assert alpha == bm.ALPHAS[1 + scores.index(min(scores))] and 0 < alpha < 1
    k = bm.ALPHAS.index(alpha)
    assert metrics == data.evaluate(runs.net(k))  # scored on the test split
    assert baseline == {"accuracy": data.evaluate(runs.net(20))["accuracy"], "rmse": data.evaluate(runs.net(0))["rmse"]}


def test_the_single_task_baselines_are_the_sweeps_ends_and_match_single_task_training():
    """alpha = 1 trains only task 1 (head 2 gets no gradient): the same test accuracy as `train` with beta = 0."""
    config = TrainConfig(steps=30, seed=0)
    baseline, _, _ = bm.tuned_sum(config, make_data(config, n_val=512))
    alone = train(config.replace(alpha=1.0, beta=0.0)).metrics
    assert baseline["accuracy"] == pytest.approx(alone["accuracy"], abs=1 / 1024)  # one test example, at most
    assert baseline["rmse"] == pytest.approx(train(config.replace(alpha=0.0, beta=1.0)).metrics["rmse"], rel=1e-4)


def test_methods_train_on_the_same_examples_as_train_and_are_scored_on_its_test_split():
    config = TrainConfig(strategy="pcgrad", steps=30, seed=2)
    metrics = bm.method_metrics(config, make_data(config, n_val=512))
    assert metrics == train(config).metrics


def test_a_diverging_method_is_recorded_as_diverged_not_scored():
    config = TrainConfig(strategy="weighted_sum", optimizer="sgd", lr=30.0, steps=3)
    assert bm.method_metrics(config, make_data(config, n_val=8)) == {}


# --- the report ---


def test_a_benchmark_has_every_run_and_a_summary_over_seeds(small):
    assert small.methods == ("tuned_sum", "weighted_sum", "nash_mtl")
    assert len(small.runs) == 2 * 3  # seeds x (tuned sum + two methods)
    summary = small.summary()
    for method in small.methods:
        deltas = small.deltas(method, "metres")
        assert len(deltas) == 2 and all(math.isfinite(d) for d in deltas)
        assert summary[method]["metres"]["mean"] == pytest.approx(sum(deltas) / 2)
        assert summary[method]["metres"]["std"] == pytest.approx(abs(deltas[0] - deltas[1]) / math.sqrt(2))
    for run in small.runs:
        assert run.delta_m == pytest.approx(bm.delta_m(run.metrics, small.baselines["metres"][run.seed]))
    assert all(r.alpha is not None for r in small.runs if r.method == "tuned_sum")


def test_markdown_table_lists_methods_best_first(small):
    text = small.markdown()
    rows = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert [row.split("|")[1].strip() for row in rows] == small.ranked()
    means = [small.overall(m) for m in small.ranked()]
    assert means == sorted(means)
    assert "The tuned sum's alpha per seed, chosen on the validation split: metres:" in text


def test_json_is_strict_and_complete(small):
    out = json.loads(json.dumps(small.to_json(), allow_nan=False))
    assert out["seeds"] == [0, 1] and out["steps"] == 30 and len(out["runs"]) == 6
    assert set(out["delta_m_summary"]) == set(small.methods)
    assert out["problems"] == {"metres": {"dataset": "two_task", "regression_scale": 1.0}}


def test_figure_has_one_panel_per_problem_with_every_method(small):
    fig = small.figure()
    (ax,) = fig.axes
    assert [t.get_text() for t in ax.get_yticklabels()] == small.ranked()[::-1]
    assert ax.get_title() == "metres"


def test_a_diverged_run_shows_in_the_table_and_json_without_nan():
    result = bm.BenchmarkResult(("metres",), (0, 1), ("tuned_sum", "weighted_sum"), 10, 64)
    result.runs = [
        bm.Run("metres", 0, "tuned_sum", {"accuracy": 0.9, "rmse": 0.2}, 1.0, 0.5),
        bm.Run("metres", 1, "tuned_sum", {"accuracy": 0.9, "rmse": 0.2}, 3.0, 0.5),
        bm.Run("metres", 0, "weighted_sum", {}, math.nan),
        bm.Run("metres", 1, "weighted_sum", {"accuracy": 0.9, "rmse": 0.2}, 2.0),
    ]
    assert "| weighted_sum | sum | +2.00 (1 diverged) |" in result.markdown()
    assert "| tuned_sum | tuned | +2.00 ± 1.41 |" in result.markdown()
    json.dumps(result.to_json(), allow_nan=False)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(problems=["nope"]), "problem 'nope' is not allowed"),
        (dict(methods=["nope"]), "method 'nope' is not allowed"),
        (dict(methods=[]), "method 'list' is not allowed"),
        (dict(seeds=()), "seeds=0 is not allowed"),
        (dict(steps=0), "steps=0 is not allowed"),
    ],
)
def test_bad_settings_are_refused_before_training(kwargs, message):
    with pytest.raises(ValueError, match=message):
        bm.run_benchmark(**kwargs)


def test_the_default_methods_are_the_registry_but_two_spellings_of_the_weighted_sum():
    from mtl_teach.registry import names

    assert set(bm.METHODS) | set(bm.SAME_AS_WEIGHTED_SUM) == set(names())
    assert "weighted_sum" in bm.METHODS and len(bm.METHODS) == len(names()) - 2
