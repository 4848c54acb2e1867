"""sweep(): K weightings trained at once give the numbers of K separate runs."""

import dataclasses

import pytest
import torch
from helpers import losses_of
from torch import nn

from mtl_teach.config import ConfigError, TrainConfig
from mtl_teach.sweep import sweep, weight_pairs
from mtl_teach.train import build, train, training_run

PAIRS = [(0.0, 1.0), (0.3, 0.7), (1.0, 0.0), (2.0, 0.5)]


def sequential(config: TrainConfig, alpha: float, beta: float):
    """One ordinary run: its final parameters (flat), per-step losses (steps, T) and History."""
    config = config.replace(alpha=alpha, beta=beta)
    setup = build(config)
    *_, history = training_run(config, setup)  # run to the end, keep the last History
    curves = torch.tensor([history.losses[name] for name in history.task_names], dtype=torch.float64).T
    return nn.utils.parameters_to_vector(setup.net.parameters()).detach(), curves, history


@pytest.mark.parametrize(
    "changes",
    [
        dict(optimizer="adam", lr=0.01),
        dict(optimizer="sgd", lr=0.05, momentum=0.9),
        dict(optimizer="sgd", lr=0.1, momentum=0.0),
        dict(optimizer="adam", lr=0.01, strategy="separate_backward", hidden=(16, 8)),
        dict(optimizer="adam", lr=0.01, classification_loss="sigmoid_bce", relatedness=-0.5),
    ],
)
def test_sweep_equals_sequential_training(changes):
    config = TrainConfig(steps=20, dtype="float64", **changes)
    result = sweep(config, weights=PAIRS)
    assert result.curves.shape == (20, len(PAIRS), 2)
    for k, (alpha, beta) in enumerate(PAIRS):
        params, curves, _ = sequential(config, alpha, beta)
        assert torch.allclose(result.params[k], params, rtol=0, atol=1e-8)
        assert torch.allclose(result.curves[:, k], curves, rtol=0, atol=1e-8)


def test_sweep_on_multi_digits_equals_sequential_training():
    config = TrainConfig(steps=5, dtype="float64", dataset="multi_digits")
    result = sweep(config, alphas=[0.2, 0.9])
    assert result.task_names == ("left digit", "right digit")
    for k, alpha in enumerate([0.2, 0.9]):
        params, curves, _ = sequential(config, alpha, 1 - alpha)
        assert torch.allclose(result.params[k], params, rtol=0, atol=1e-8)
        assert torch.allclose(result.curves[:, k], curves, rtol=0, atol=1e-8)


def test_final_losses_are_the_full_data_losses_of_each_trained_net():
    config = TrainConfig(steps=15, dtype="float64")
    result = sweep(config, alphas=torch.linspace(0, 1, 3))
    setup = build(config)
    for k in range(3):
        setup.net = result.net(k)
        with torch.no_grad():
            losses = torch.stack(losses_of(setup, (setup.data.X, setup.data.targets)))
            test = torch.stack(losses_of(setup, (setup.data.X_test, setup.data.test_targets)))
        assert torch.allclose(result.final_losses[k], losses, rtol=0, atol=1e-12)
        assert torch.allclose(result.test_losses[k], test, rtol=0, atol=1e-12)


def test_each_runs_metrics_equal_train_for_that_weighting():
    """The tolerance the playground's cached answers rely on: float32, 300 steps, as `train` runs them."""
    config = TrainConfig()
    result = sweep(config, alphas=[0.2, 0.6])
    for k, alpha in enumerate([0.2, 0.6]):
        history = train(config, alpha=alpha, beta=1 - alpha)
        curves = torch.tensor([history.losses[name] for name in history.task_names]).T
        torch.testing.assert_close(result.curves[:, k].float(), curves, rtol=0, atol=2e-5)
        for name, value in history.metrics.items():
            assert result.metrics(k)[name] == pytest.approx(value, abs=1e-3)


def test_equal_weightings_give_identical_runs():
    """Same init and same minibatches for every run: equal weights, bitwise-equal results."""
    result = sweep(TrainConfig(steps=30), weights=[(0.4, 0.6)] * 3)
    assert torch.equal(result.params[0], result.params[1]) and torch.equal(result.params[0], result.params[2])
    initial = nn.utils.parameters_to_vector(build(TrainConfig()).net.parameters())
    assert (result.params[0] - initial).abs().max() > 0.01  # and they did train


def test_alphas_default_to_betas_one_minus_alpha():
    assert weight_pairs(alphas=[0.0, 0.25, 1.0]) == [(0.0, 1.0), (0.25, 0.75), (1.0, 0.0)]
    assert weight_pairs(alphas=[1.0, 2.0], betas=[3.0, 4.0]) == [(1.0, 3.0), (2.0, 4.0)]
    assert weight_pairs(alphas=0.5) == [(0.5, 0.5)]
    result = sweep(TrainConfig(steps=3), alphas=torch.linspace(0, 1, 5))
    assert torch.allclose(result.weights.sum(dim=1), torch.ones(5))
    assert result.diverged_at == [None] * 5


def test_divergence_is_recorded_per_run_at_the_same_step_as_train():
    config = TrainConfig(steps=40, optimizer="sgd", lr=0.5, dtype="float64", regression_scale=10.0)
    result = sweep(config, weights=[(1.0, 0.0), (1.0, 1.0)])
    _, _, history = sequential(config, 1.0, 1.0)
    assert history.diverged_at is not None  # the check below needs a run that diverges
    assert result.diverged_at == [None, history.diverged_at]
    assert torch.isfinite(result.final_losses[0]).all()


def test_net_k_is_checked():
    result = sweep(TrainConfig(steps=2), alphas=[0.5])
    with pytest.raises(IndexError, match="k=1 is out of range"):
        result.net(1)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(), "exactly one of the two"),
        (dict(alphas=[0.5], weights=[(0.5, 0.5)]), "exactly one of the two"),
        (dict(alphas=[0.1, 0.2], betas=[0.9]), "2 alphas but 1 betas"),
        (dict(weights=[(0.5, 0.5, 0.1)]), r"\(alpha, beta\) pairs; got \(0.5, 0.5, 0.1\)"),
        (dict(alphas=[]), "no weightings given"),
    ],
)
def test_bad_weight_lists_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        sweep(TrainConfig(steps=2), **kwargs)


def test_bad_weights_name_the_run_and_value():
    with pytest.raises(ConfigError, match=r"weighting 1 \(alpha=1.5, beta=-0.5\): beta=-0.5 is not allowed"):
        sweep(TrainConfig(steps=2), alphas=[0.5, 1.5])
    with pytest.raises(ConfigError, match=r"weighting 0 \(alpha=0.0, beta=0.0\)"):
        sweep(TrainConfig(steps=2), weights=[(0, 0)])
    with pytest.raises(ConfigError, match="alpha=nan"):
        sweep(TrainConfig(steps=2), alphas=[float("nan")])


@pytest.mark.parametrize("strategy", ["alternating_steps", "per_task_lr", "uncertainty", "pcgrad"])
def test_strategies_that_are_not_a_weighted_sum_are_refused(strategy):
    with pytest.raises(ConfigError, match=f"strategy='{strategy}' cannot be swept.*'weighted_sum'"):
        sweep(TrainConfig(strategy=strategy, steps=2), alphas=[0.5])


def test_a_sweep_is_the_same_whatever_the_callers_thread_setting():
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        two = sweep(TrainConfig(steps=20, dataset="multi_digits", hidden=(64,)), alphas=[0.3, 0.7])
        torch.set_num_threads(1)
        one = sweep(TrainConfig(steps=20, dataset="multi_digits", hidden=(64,)), alphas=[0.3, 0.7])
    finally:
        torch.set_num_threads(before)
    assert torch.equal(one.params, two.params)


def test_any_loss_function_is_swept_through_vmap(monkeypatch):
    """No list of known losses: the criteria are mapped over the runs as they are (here L1 for the regression)."""

    def build_with_l1(config):
        setup = build(config)
        setup.data = dataclasses.replace(setup.data, criteria=(setup.data.criteria[0], nn.L1Loss()))
        return setup

    monkeypatch.setattr("mtl_teach.sweep.build", build_with_l1)
    config = TrainConfig(steps=10, dtype="float64", alpha=0.4, beta=0.6)
    result = sweep(config, alphas=[0.4])
    *_, history = training_run(config, build_with_l1(config))
    expected = torch.tensor(history.losses["regression"], dtype=torch.float64)
    torch.testing.assert_close(result.curves[:, 0, 1], expected, rtol=0, atol=1e-12)
    assert history.losses["regression"] != train(config).losses["regression"]  # L1 really was used
