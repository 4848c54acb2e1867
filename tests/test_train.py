"""The training loop: deterministic, stops cleanly on divergence or request."""

import math

import pytest
import torch

from mtl_teach.config import TrainConfig
from mtl_teach.data import batch_indices, two_task
from mtl_teach.registry import names
from mtl_teach.train import build, train, training_run


@pytest.mark.parametrize("strategy", names("sum") + names("recipe"))
def test_same_seed_gives_bitwise_equal_history(strategy):
    a, b = train(strategy=strategy, steps=40), train(strategy=strategy, steps=40)
    assert a.losses == b.losses and a.total == b.total and a.metrics == b.metrics


def test_another_seed_gives_another_run():
    assert train(steps=20, seed=0).total != train(steps=20, seed=1).total


def test_training_learns_both_tasks():
    h = train()
    assert h.finished and h.steps_done == 300
    assert h.metrics["accuracy"] > 0.95
    first, last = {n: v[0] for n, v in h.losses.items()}, h.final_losses()
    assert all(last[n] < 0.2 * first[n] for n in h.task_names)


def test_total_is_the_weighted_sum_of_task_losses():
    h = train(alpha=0.2, beta=3.0, steps=10)
    for i, total in enumerate(h.total):
        assert total == pytest.approx(0.2 * h.losses["classification"][i] + 3.0 * h.losses["regression"][i])


def test_diverging_run_stops_and_reports_the_step():
    h = train(optimizer="sgd", lr=1000.0, regression_scale=100.0, steps=300)
    assert h.diverged_at is not None and h.diverged_at < 300
    assert h.steps_done == h.diverged_at  # every recorded loss is finite
    assert all(math.isfinite(v) for v in h.total)
    assert f"NaN/inf at step {h.diverged_at}" in h.message and "lr=1000" in h.message
    assert not h.finished and h.metrics == {}


def test_should_stop_ends_the_run_early():
    calls = []
    h = train(steps=300, on_step=calls.append, should_stop=lambda: len(calls) >= 7)
    assert h.stopped_at == 7 and h.steps_done == 7 and not h.finished
    assert h.message.startswith("stopped 7/300")


def test_on_step_sees_the_growing_history():
    seen = []
    train(steps=5, on_step=lambda h: seen.append(h.steps_done))
    assert seen[:5] == [1, 2, 3, 4, 5]


def test_generator_yields_after_every_step():
    run = training_run(TrainConfig(steps=4))
    assert [h.steps_done for h in run] == [1, 2, 3, 4, 4]  # the last yield adds the metrics


def test_float64_runs_in_float64():
    config = TrainConfig(steps=3, dtype="float64")
    setup = build(config)
    *_, history = training_run(config, setup)
    assert history.finished
    assert setup.data.X.dtype == torch.float64
    assert all(p.dtype == torch.float64 for p in setup.net.parameters())
    assert all(s["exp_avg"].dtype == torch.float64 for s in setup.optimizer.state.values())
    # float32 rounds the same run differently: the recorded losses are not the float32 ones
    assert history.losses != train(steps=3, dtype="float32").losses


def test_total_and_weights_record_what_each_step_used():
    h = train(strategy="uncertainty", steps=20)
    for i in range(20):
        weights = [h.weights[name][i] for name in h.task_names]
        assert h.total[i] == pytest.approx(sum(w * h.losses[name][i] for w, name in zip(weights, h.task_names)))
    assert h.series("weight/regression") == h.weights["regression"]
    assert h.series("classification") == h.losses["classification"] and h.series("total") == h.total
    assert h.series("no such series") == []


@pytest.mark.parametrize("dataset", ["two_task", "multi_digits"])
def test_a_run_is_bitwise_the_same_whatever_the_callers_thread_setting(dataset):
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = train(dataset=dataset, steps=15, hidden=(64,))
        torch.set_num_threads(2)
        two = train(dataset=dataset, steps=15, hidden=(64,))
        assert torch.get_num_threads() == 2  # the caller's setting is left as it was
    finally:
        torch.set_num_threads(before)
    assert one.losses == two.losses and one.metrics == two.metrics


def test_a_run_whose_parameters_overflow_without_a_nan_loss_is_reported_as_diverged():
    """Three huge SGD steps: every recorded minibatch loss is finite, but the final parameters are not."""
    h = train(optimizer="sgd", lr=30.0, steps=3)
    assert h.diverged_at == 3 and h.steps_done == 3 and not h.finished and h.metrics == {}
    assert "the parameters became NaN/inf at step 3" in h.message


@pytest.mark.parametrize("bad", ["weighted_sum", {"alpha": 0.3}, 0.5])
def test_train_with_a_positional_non_config_says_how_to_call_it(bad):
    with pytest.raises(TypeError, match=r"train\(\) takes a TrainConfig .*train\(strategy="):
        train(bad)


def test_batches_cover_each_epoch_once():
    batches = batch_indices(n_samples=100, batch_size=10, steps=10, seed=0)
    assert sorted(torch.cat(batches).tolist()) == list(range(100))


def label_target_correlation(relatedness: float) -> float:
    data = two_task(n_samples=4000, relatedness=relatedness, noise=0.0, seed=3, dtype=torch.float64)
    signed_label = 2 * data.y_class - 1
    return torch.corrcoef(torch.stack([signed_label, data.y_reg]))[0, 1].item()


def test_relatedness_moves_the_tasks_from_opposed_to_the_same_signal():
    same = label_target_correlation(1.0)
    assert same > 0.8  # one signal read twice
    assert label_target_correlation(-1.0) == pytest.approx(-same, abs=1e-9)  # opposed
    assert abs(label_target_correlation(0.0)) < 0.05  # unrelated
    assert 0.3 * same < label_target_correlation(0.5) < 0.7 * same  # in between


def test_regression_scale_multiplies_the_target():
    small, large = two_task(regression_scale=1.0), two_task(regression_scale=100.0)
    torch.testing.assert_close(large.y_reg, 100.0 * small.y_reg, rtol=1e-5, atol=1e-4)
    assert torch.equal(large.y_class, small.y_class)


def test_model_init_is_seeded_and_leaves_the_global_rng_alone():
    from mtl_teach.models import SharedTrunkNet

    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    a = SharedTrunkNet(8, (32,), seed=5)
    assert torch.equal(torch.rand(3), expected_next)  # the global RNG did not move
    b = SharedTrunkNet(8, (32,), seed=5)
    c = SharedTrunkNet(8, (32,), seed=6)
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
    assert not torch.equal(a.trunk[0].weight, c.trunk[0].weight)
    bound = 1 / 8**0.5  # PyTorch's default nn.Linear init range for 8 inputs
    assert a.trunk[0].weight.abs().max() <= bound and a.trunk[0].weight.abs().max() > 0.9 * bound
