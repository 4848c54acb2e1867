"""Uncertainty weighting, DWA and GradNorm: registered, deterministic, right by hand and by direction."""

import dataclasses
import functools
import math

import pytest
import torch
from torch import nn
from torchjd import aggregation as jd

from mtl_teach.config import TrainConfig
from mtl_teach.data import batch_indices
from mtl_teach.losses import task_losses
from mtl_teach.registry import STRATEGIES, names
from mtl_teach.strategies import TrainingDiverged, recipe_step, weighted_sum
from mtl_teach.train import build, train, training_run
from mtl_teach.weighting import (
    RLW_SEED_OFFSET,
    adam_step,
    dwa_weights,
    last_shared_layer,
    make_dwa_step,
    make_famo_step,
    make_gradnorm_step,
    rlw_weights,
)

METHODS = ("uncertainty", "dwa", "gradnorm", "log_sum", "rlw", "famo")
NAMES = ("classification", "regression")


def run(config: TrainConfig, make_step=None):
    *_, history = training_run(config, make_step=make_step)  # run to the end, keep the last History
    return history


def first_batch(config: TrainConfig, setup):
    idx = batch_indices(len(setup.data), config.batch_size, 1, config.seed)[0]
    return setup.data.X[idx], [t[idx] for t in setup.data.targets]


def param_group(setup, name: str) -> torch.Tensor:
    """The learned tensor a method added to the optimizer as the param group `name`."""
    (tensor,) = next(g["params"] for g in setup.optimizer.param_groups if g.get("name") == name)
    return tensor


@pytest.mark.parametrize("name", METHODS)
def test_each_method_is_registered_trains_and_is_deterministic(name):
    assert name in names("weighting") and STRATEGIES[name].family == "weighting"
    config = TrainConfig(strategy=name, steps=60)
    a, b = train(config), train(config)
    assert a.finished and all(math.isfinite(v) for values in a.losses.values() for v in values)
    assert a.losses == b.losses and a.weights == b.weights and a.extras == b.extras
    assert all(len(a.weights[n]) == 60 for n in NAMES)
    assert any(a.weights[n][-1] != a.weights[n][0] for n in NAMES)  # the weights moved
    assert a.losses["regression"][-1] < 0.5 * a.losses["regression"][0]  # it learns


def test_learned_weighting_on_multi_digits():
    history = train(strategy="uncertainty", dataset="multi_digits", steps=150)
    assert history.metrics["left digit accuracy"] > 0.85 and history.metrics["right digit accuracy"] > 0.85
    assert set(history.weights) == {"left digit", "right digit"}
    assert history.weights["left digit"][-1] != 0.5  # learned, not the starting exp(0) / 2


# --- uncertainty weighting ---


def test_uncertainty_one_step_by_hand():
    config = TrainConfig(strategy="uncertainty", optimizer="sgd", lr=0.1, dtype="float64")
    setup, reference = build(config), build(config.replace(strategy="weighted_sum", alpha=0.5, beta=0.5))
    batch = first_batch(config, setup)
    result = STRATEGIES["uncertainty"].make_step(setup)(batch)
    # s_i starts at 0: dL/ds_i = -exp(-s_i) L_i / 2 + 1/2 = (1 - L_i) / 2, and SGD steps against it.
    assert torch.allclose(param_group(setup, "log_vars"), -0.1 * (1 - result.losses) / 2, rtol=0, atol=1e-15)
    # The network sees weights exp(0)/2 = 1/2: the same step as weighted_sum with alpha = beta = 1/2.
    recipe_step(weighted_sum)(reference)(batch)
    for ours, theirs in zip(setup.net.parameters(), reference.net.parameters()):
        assert torch.allclose(ours, theirs, rtol=0, atol=1e-15)
    assert result.weights.tolist() == [0.5, 0.5]


def test_uncertainty_gives_the_task_with_the_larger_loss_the_smaller_weight():
    history = train(strategy="uncertainty", regression_scale=5.0)
    final = history.final_losses()
    assert final["regression"] > 10 * final["classification"]
    weight = {n: history.weights[n][-1] for n in NAMES}
    assert weight["regression"] < 0.1 * weight["classification"]
    # and the weight moves towards the optimum 1 / (2 L_i): within a factor 2 for the noisy regression
    assert 0.5 < weight["regression"] * 2 * final["regression"] < 2.0


# --- dynamic weight average ---


def test_dwa_weights_by_hand():
    weights = dwa_weights(torch.tensor([1.0, 0.5]), torch.tensor([1.0, 1.0]), temperature=2.0)
    e1, e2 = math.exp(1.0 / 2), math.exp(0.5 / 2)
    assert torch.allclose(weights, torch.tensor([2 * e1 / (e1 + e2), 2 * e2 / (e1 + e2)]))
    assert weights[0] > 1 > weights[1]  # the task whose loss did not fall gets the larger weight
    assert torch.allclose(weights.sum(), torch.tensor(2.0))
    with pytest.raises(ValueError, match="temperature=0 must be positive"):
        dwa_weights(torch.ones(2), torch.ones(2), temperature=0)


def test_dwa_weights_follow_the_epoch_mean_losses_of_the_run():
    config = TrainConfig(strategy="dwa", steps=48, dtype="float64")  # 512 // 64 = 8 steps per epoch
    history = run(config)
    losses = torch.tensor([history.losses[n] for n in NAMES], dtype=torch.float64).T  # (steps, T)
    weights = torch.tensor([history.weights[n] for n in NAMES], dtype=torch.float64).T
    epoch_means = losses.view(6, 8, 2).mean(dim=1)
    assert torch.equal(weights[:16], torch.ones(16, 2))  # the first two epochs
    for epoch in range(2, 6):
        expected = dwa_weights(epoch_means[epoch - 1], epoch_means[epoch - 2], 2.0)
        assert torch.allclose(weights[8 * epoch : 8 * epoch + 8], expected.expand(8, 2), rtol=0, atol=1e-12)
        slower = torch.argmax(epoch_means[epoch - 1] / epoch_means[epoch - 2])
        assert weights[8 * epoch, slower] > 1  # the slower-decreasing task gets the larger weight


# --- GradNorm ---


def test_gradnorm_one_step_by_hand():
    config = TrainConfig(strategy="gradnorm", optimizer="sgd", lr=0.1, dtype="float64")
    setup, reference = build(config), build(config.replace(strategy="weighted_sum", alpha=1.0, beta=1.0))
    batch = first_batch(config, setup)
    losses = task_losses(reference.net, batch, reference.data.criteria)
    norms = torch.stack(
        [torch.autograd.grad(L, last_shared_layer(reference.net), retain_graph=True)[0].norm() for L in losses]
    )
    result = STRATEGIES["gradnorm"].make_step(setup)(batch)
    # Step 0: w = 1 and r_i = 1, so target_i = mean(norms) and dL_grad/dw_i = sign(norm_i - mean) * norm_i.
    w = 1 - 0.1 * torch.sign(norms - norms.mean()) * norms
    assert torch.allclose(param_group(setup, "gradnorm_weights"), w * 2 / w.sum(), rtol=0, atol=1e-14)
    assert result.extras["grad_norm/regression"] == pytest.approx(norms[1].item(), abs=1e-14)
    assert result.weights.tolist() == [1.0, 1.0]  # the weights this step used
    # The network took a plain step on w_1 L_1 + w_2 L_2 with w = 1.
    recipe_step(weighted_sum)(reference)(batch)
    for ours, theirs in zip(setup.net.parameters(), reference.net.parameters()):
        assert torch.allclose(ours, theirs, rtol=0, atol=1e-15)


def test_gradnorm_balances_gradient_norms_better_than_fixed_weights():
    config = TrainConfig(strategy="gradnorm", regression_scale=5.0, steps=200)
    history = run(config, functools.partial(make_gradnorm_step, alpha=0.0))  # alpha = 0: aim for equal norms
    weighted = torch.tensor([history.extras[f"grad_norm/{n}"] for n in NAMES])  # G_i = w_i ||grad L_i||
    weights = torch.tensor([history.weights[n] for n in NAMES])
    raw = weighted / weights  # what equal fixed weights give at the same points
    imbalance = lambda norms: (norms[0] / norms[1]).log().abs()[-100:].mean()  # noqa: E731
    assert imbalance(raw) > 1.5  # the regression gradient is several times larger (e^1.5 = 4.5)...
    assert imbalance(weighted) < 0.2 * imbalance(raw)  # ...until GradNorm rebalances it
    assert weights[1, -1] < weights[0, -1]  # by down-weighting the regression
    assert torch.allclose(weights.sum(dim=0), torch.tensor(2.0))  # renormalised to T tasks every step


@pytest.mark.parametrize(
    "make, kwargs, message",
    [
        (make_dwa_step, dict(temperature=-1.0), "temperature=-1.0 must be positive"),
        (make_dwa_step, dict(window=0), "window=0 must be a whole number"),
        (make_gradnorm_step, dict(alpha=float("nan")), "alpha=nan must be a number >= 0"),
    ],
)
def test_bad_hyperparameters_are_refused(make, kwargs, message):
    with pytest.raises(ValueError, match=message):
        make(build(TrainConfig()), **kwargs)


def test_dwa_window_sets_the_epoch_length():
    history = run(TrainConfig(strategy="dwa", steps=12), functools.partial(make_dwa_step, window=3))
    weights = history.weights["classification"]
    assert weights[:6] == [1.0] * 6 and weights[6] != 1.0  # two windows of 3 steps at weight 1, then DWA
    assert weights[6:9] == [weights[6]] * 3 and weights[9] != weights[6]  # one value per window


@pytest.mark.parametrize("strategy", METHODS)
def test_history_total_uses_the_learned_weights(strategy):
    h = train(strategy=strategy, steps=30, alpha=0.9, beta=0.1)
    names = h.task_names
    for i, total in enumerate(h.total):
        learned = sum(h.weights[n][i] * h.losses[n][i] for n in names)
        assert total == pytest.approx(learned, rel=1e-12)
    # and not the config's alpha/beta, which these methods ignore
    assert any(t != pytest.approx(0.9 * c + 0.1 * r) for t, c, r in zip(h.total, *(h.losses[n] for n in names)))


def net_after(config: TrainConfig, make_step, criteria=None, steps: int = 1):
    """The parameters after `steps` steps of `make_step` on the run's first batches (optionally other criteria)."""
    setup = build(config)
    if criteria is not None:
        setup.data = dataclasses.replace(setup.data, criteria=criteria)
    step = make_step(setup)
    for idx in batch_indices(len(setup.data), config.batch_size, steps, config.seed):
        step((setup.data.X[idx], [t[idx] for t in setup.data.targets]))
    return torch.cat([p.detach().reshape(-1) for p in setup.net.parameters()])


class Scaled(nn.Module):
    """A criterion times a constant: the same task, in other units of loss."""

    def __init__(self, criterion: nn.Module, factor: float) -> None:
        super().__init__()
        self.criterion, self.factor = criterion, factor

    def forward(self, output, target):
        return self.factor * self.criterion(output, target)


# --- the scale-invariant (log) sum ---


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_log_sum_update_does_not_depend_on_the_scale_of_a_loss(optimizer):
    """log(c L) = log c + log L: multiplying a loss by 100 (or 1e-3) leaves every update the same."""
    config = TrainConfig(strategy="log_sum", dtype="float64", optimizer=optimizer, lr=0.01)
    make = STRATEGIES["log_sum"].make_step
    reference = net_after(config, make, steps=20)
    for factor in (100.0, 1e-3):
        criteria = (nn.BCEWithLogitsLoss(), Scaled(nn.MSELoss(), factor))
        torch.testing.assert_close(net_after(config, make, criteria, steps=20), reference, rtol=1e-10, atol=1e-12)
    # The weighted sum is not: the same change moves its parameters elsewhere.
    summed = TrainConfig(strategy="weighted_sum", dtype="float64", optimizer=optimizer, lr=0.01)
    sum_step = STRATEGIES["weighted_sum"].make_step
    scaled = net_after(summed, sum_step, (nn.BCEWithLogitsLoss(), Scaled(nn.MSELoss(), 100.0)), steps=20)
    assert (scaled - net_after(summed, sum_step, steps=20)).abs().max() > 1e-3


def test_log_sum_is_the_weighted_sum_with_weights_one_over_each_loss():
    config = TrainConfig(strategy="log_sum", optimizer="sgd", lr=0.1, dtype="float64")
    setup = build(config)
    batch = first_batch(config, setup)
    result = STRATEGIES["log_sum"].make_step(setup)(batch)
    alpha, beta = (1 / result.losses).tolist()
    reference = build(config.replace(strategy="weighted_sum", alpha=alpha, beta=beta))
    recipe_step(weighted_sum)(reference)(batch)
    for ours, theirs in zip(setup.net.parameters(), reference.net.parameters()):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-14)
    torch.testing.assert_close(result.weights * result.losses, torch.ones(2, dtype=torch.float64))  # total = T


def test_log_sum_refuses_a_zero_loss_naming_the_task():
    config = TrainConfig(strategy="log_sum", dtype="float64")
    setup = build(config)
    setup.data = dataclasses.replace(setup.data, criteria=(nn.BCEWithLogitsLoss(), Scaled(nn.MSELoss(), 0.0)))
    with pytest.raises(TrainingDiverged, match="the loss of task 'regression' reached 0"):
        STRATEGIES["log_sum"].make_step(setup)(first_batch(config, setup))


# --- random loss weighting ---


def test_rlw_weights_are_a_softmax_of_standard_normal_draws():
    g = torch.Generator().manual_seed(5)
    draws = torch.stack([rlw_weights(3, g, torch.float64) for _ in range(20000)])
    assert (draws > 0).all()
    torch.testing.assert_close(draws.sum(dim=1), torch.ones(20000, dtype=torch.float64))
    # E[softmax(z)_i] = 1/3 by symmetry; 20000 draws: standard error about 0.0015, so 0.01 is > 6 of them.
    torch.testing.assert_close(draws.mean(dim=0), torch.full((3,), 1 / 3, dtype=torch.float64), rtol=0, atol=0.01)
    again = torch.Generator().manual_seed(5)
    z = torch.stack([torch.randn(3, generator=again, dtype=torch.float64) for _ in range(20000)])
    torch.testing.assert_close(draws, torch.softmax(z, dim=1), rtol=0, atol=0)  # exactly those draws


@pytest.mark.parametrize("seed", range(10))
def test_rlw_weights_agree_with_torchjd_random(seed):
    """TorchJD's Random (RLW applied to the Jacobian) draws from the global generator: seeded alike, the same."""
    G = torch.randn(3, 7, generator=torch.Generator().manual_seed(100 + seed), dtype=torch.float64)
    torch.manual_seed(seed)
    theirs = jd.Random()(G)
    ours = rlw_weights(3, torch.Generator().manual_seed(seed), torch.float64) @ G
    torch.testing.assert_close(ours, theirs, rtol=0, atol=0)


def test_rlw_step_uses_its_own_seeded_generator_and_leaves_the_global_one_alone():
    config = TrainConfig(strategy="rlw", steps=30, seed=3)
    torch.manual_seed(123)
    before = torch.get_rng_state()
    history = train(config)
    assert torch.equal(torch.get_rng_state(), before)
    g = torch.Generator().manual_seed(3 + RLW_SEED_OFFSET)
    expected = torch.stack([rlw_weights(2, g) for _ in range(30)])
    assert torch.tensor([history.weights[n] for n in NAMES]).T.tolist() == expected.double().tolist()
    assert train(config.replace(seed=4)).weights != history.weights  # another seed, other weights


def test_rlw_one_step_is_the_weighted_sum_with_its_drawn_weights():
    config = TrainConfig(strategy="rlw", optimizer="sgd", lr=0.1, dtype="float64")
    setup = build(config)
    batch = first_batch(config, setup)
    result = STRATEGIES["rlw"].make_step(setup)(batch)
    alpha, beta = result.weights.tolist()
    reference = build(config.replace(strategy="weighted_sum", alpha=alpha, beta=beta))
    recipe_step(weighted_sum)(reference)(batch)
    for ours, theirs in zip(setup.net.parameters(), reference.net.parameters()):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-15)


# --- FAMO ---


def test_famo_one_step_by_hand():
    """Step 0: z = (1/2, 1/2), so the network's weights are (1/L_i) / sum_j (1/L_j); then the logits take one
    Adam step on J^T delta, computed here as the official code does (autograd through the softmax)."""
    config = TrainConfig(strategy="famo", optimizer="sgd", lr=0.1, dtype="float64")
    setup = build(config)
    batch = first_batch(config, setup)
    step = make_famo_step(setup)
    result = step(batch)
    inverse = 1 / (result.losses + 1e-8)
    torch.testing.assert_close(result.weights, inverse / inverse.sum(), rtol=0, atol=1e-15)
    alpha, beta = result.weights.tolist()
    reference = build(config.replace(strategy="weighted_sum", alpha=alpha, beta=beta))
    recipe_step(weighted_sum)(reference)(batch)
    for ours, theirs in zip(setup.net.parameters(), reference.net.parameters()):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-15)
    # The logits: delta = log L(before) - log L(after, same batch); gradient J^T delta through the softmax.
    after = torch.stack(task_losses(reference.net, batch, reference.data.criteria)).detach()
    delta = torch.log(result.losses + 1e-8) - torch.log(after + 1e-8)
    logits = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    grad = torch.autograd.grad(torch.softmax(logits, dim=0), logits, grad_outputs=delta)[0]
    adam = torch.optim.Adam([logits], lr=0.025, weight_decay=0.01)
    logits.grad = grad
    adam.step()
    second = step(batch)  # its weights come from the updated logits
    z = torch.softmax(logits.detach(), dim=0)
    assert delta[0] != delta[1] and z[int(delta.argmin())] > 0.5  # the loss that fell less gets the larger z
    expected = z / (second.losses + 1e-8)
    torch.testing.assert_close(second.weights, expected / expected.sum(), rtol=0, atol=1e-15)


def test_famo_weights_sum_to_one_at_every_step_of_a_run():
    history = train(TrainConfig(strategy="famo", steps=100, regression_scale=5.0))
    weights = torch.tensor([history.weights[n] for n in NAMES])
    torch.testing.assert_close(weights.sum(dim=0), torch.ones(100, dtype=weights.dtype))
    assert history.finished and history.losses["regression"][-1] < 0.5 * history.losses["regression"][0]


def test_famo_bad_settings_are_refused():
    with pytest.raises(ValueError, match="lr=0 must be > 0"):
        make_famo_step(build(TrainConfig()), lr=0)


@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_adam_step_is_torch_adam(weight_decay):
    """FAMO's logits take Adam steps written out (torch.optim.Adam's call overhead is a forward pass here)."""
    g = torch.Generator().manual_seed(0)
    ours, theirs = torch.zeros(3, dtype=torch.float64), torch.zeros(3, dtype=torch.float64, requires_grad=True)
    adam, state = torch.optim.Adam([theirs], lr=0.025, weight_decay=weight_decay), {}
    for _ in range(50):
        grad = torch.randn(3, generator=g, dtype=torch.float64)
        adam_step(ours, grad, state, lr=0.025, weight_decay=weight_decay)
        theirs.grad = grad.clone()
        adam.step()
        torch.testing.assert_close(ours, theirs.detach(), rtol=0, atol=1e-15)
