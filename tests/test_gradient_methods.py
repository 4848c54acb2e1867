"""The gradient methods as training strategies: registered, deterministic, and doing what they say."""

import dataclasses
import math

import pytest
import torch
from helpers import first_batch, losses_of
from torch import nn

from mtl_teach import aggregators
from mtl_teach.config import TrainConfig
from mtl_teach.data import batch_indices
from mtl_teach.gradient_methods import make_gradient_method_step, reuse_weights_step
from mtl_teach.grads import task_gradients
from mtl_teach.registry import CAGRAD, STRATEGIES, names
from mtl_teach.train import build, train, training_run

METHODS = names("gradient")
WEIGHTINGS = {"pcgrad": aggregators.pcgrad, "mgda": aggregators.mgda, "cagrad": CAGRAD}
WEIGHTINGS |= {"upgrad": aggregators.upgrad, "imtl_g": aggregators.imtl_g}
WEIGHTINGS |= {"nash_mtl": aggregators.nash_mtl, "aligned_mtl": aggregators.aligned_mtl}


def test_every_gradient_method_is_registered_and_accepted_by_the_config():
    assert set(METHODS) == set(WEIGHTINGS)
    for name in METHODS:
        assert STRATEGIES[name].family == "gradient" and STRATEGIES[name].summary
        assert TrainConfig(strategy=name).strategy == name


@pytest.mark.parametrize("name", METHODS)
def test_training_with_each_method_learns_and_records_the_cosine(name):
    history = train(strategy=name, steps=40, lr=0.05)
    assert history.finished and all(math.isfinite(t) for t in history.total)
    assert sum(history.total[-5:]) < 0.8 * sum(history.total[:5])  # it learns
    assert len(history.extras["cosine"]) == 40
    assert all(-1 - 1e-6 <= c <= 1 + 1e-6 for c in history.extras["cosine"])
    assert set(history.extras) == {"cosine", "conflicting", "grad_norm/classification", "grad_norm/regression"}


@pytest.mark.parametrize("name", METHODS)
def test_training_is_deterministic(name):
    first, second = (train(strategy=name, steps=15, optimizer="sgd", momentum=0.9) for _ in range(2))
    assert first.total == second.total
    assert first.extras == second.extras


def one_step_grads(name: str, relatedness: float = 0.5):
    """The .grad each strategy leaves after one step on the same batch, and that batch's G."""
    config = TrainConfig(strategy=name, alpha=0.3, beta=2.0, relatedness=relatedness, dtype="float64", lr=1e-9)
    s = build(config)
    G = task_gradients([w * loss for w, loss in zip(config.weights, losses_of(s))], s.net.shared_parameters())
    STRATEGIES[name].make_step(s)(first_batch(s))
    trunk = torch.cat([p.grad.reshape(-1) for p in s.net.shared_parameters()])
    heads = [p.grad.clone() for p in s.net.head_parameters()]
    return trunk, heads, G


@pytest.mark.parametrize("name", METHODS)
def test_the_trunk_gets_the_aggregated_direction_and_the_heads_their_usual_gradient(name):
    trunk, heads, G = one_step_grads(name)
    torch.testing.assert_close(trunk, WEIGHTINGS[name](G) @ G, rtol=0, atol=1e-12)
    _, reference_heads, _ = one_step_grads("weighted_sum")
    for g, ref in zip(heads, reference_heads, strict=True):
        torch.testing.assert_close(g, ref, rtol=0, atol=1e-12)


def test_mgda_and_upgrad_steps_conflict_with_no_task_on_a_conflicting_batch():
    trunk, _, G = one_step_grads("mgda", relatedness=-1.0)
    assert G[0] @ G[1] < 0  # this batch really has conflicting task gradients
    assert (G @ trunk >= 0).all()
    trunk, _, G = one_step_grads("upgrad", relatedness=-1.0)
    assert (G @ trunk >= -1e-15).all()


def copies_of_one_task(strategy: str, optimizer: str):
    """A setup whose two tasks are the same task (same head, loss and target):
    the task gradients always agree, so PCGrad never has anything to project."""
    config = TrainConfig(strategy=strategy, dtype="float64", alpha=0.3, beta=0.7, optimizer=optimizer, steps=30)
    s = build(config)
    s.net.heads[1].load_state_dict(s.net.heads[0].state_dict())
    data = s.data
    s.data = dataclasses.replace(data, y_reg=data.y_class, criteria=(nn.BCEWithLogitsLoss(), nn.BCEWithLogitsLoss()))
    *_, history = training_run(config, s)
    return history


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_pcgrad_follows_weighted_sum_exactly_when_the_task_gradients_agree(optimizer):
    pcgrad = copies_of_one_task("pcgrad", optimizer)
    summed = copies_of_one_task("weighted_sum", optimizer)
    assert pcgrad.extras["conflicting"] == [0.0] * 30
    torch.testing.assert_close(torch.tensor(pcgrad.total), torch.tensor(summed.total), rtol=1e-12, atol=0)
    assert summed.total[-1] < summed.total[0]


def test_pcgrad_differs_from_weighted_sum_when_the_tasks_conflict():
    pcgrad = train(strategy="pcgrad", steps=40, lr=0.05)
    summed = train(strategy="weighted_sum", steps=40, lr=0.05)
    assert sum(pcgrad.extras["conflicting"]) > 0
    assert abs(pcgrad.total[-1] - summed.total[-1]) > 1e-4


@pytest.mark.parametrize("name", METHODS)
def test_a_diverging_run_is_reported_not_crashed(name):
    history = train(strategy=name, optimizer="sgd", lr=500.0, steps=50, regression_scale=1000.0)
    assert history.diverged_at is not None and "diverged" in history.message


@pytest.mark.parametrize("name", METHODS)
def test_gradients_too_large_for_the_gram_matrix_are_not_a_crash(name):
    """The fuzz repro of issue 9: SGD with lr=100 makes |g| ~ 1e19 and more; the run reports divergence."""
    history = train(strategy=name, optimizer="sgd", lr=100.0)
    assert history.diverged_at is not None and history.message.startswith("diverged: ")


def test_a_gradient_method_trains_on_multi_digits():
    history = train(strategy="mgda", dataset="multi_digits", steps=20, hidden=(32,))
    assert history.finished and history.total[-1] < history.total[0]
    assert len(history.extras["cosine"]) == 20


def test_the_registry_runs_cagrad_with_c_one_half():
    assert CAGRAD.func is aggregators.cagrad and CAGRAD.keywords == {"c": 0.5}


@pytest.mark.parametrize("name", METHODS)
@pytest.mark.parametrize("scale", [dict(alpha=1e6, beta=1e6, regression_scale=1e6), dict(alpha=1e-6, beta=1e-6)])
def test_every_step_moves_the_trunk_at_extreme_loss_scales(name, scale):
    """Issue 9's fuzz finding: IMTL-G's absolute tolerance froze the trunk at |g| ~ 1e12; weights are scale-free now."""
    config = TrainConfig(strategy=name, steps=30, **scale)
    s = build(config)
    step = STRATEGIES[name].make_step(s)
    moved = 0
    for idx in batch_indices(len(s.data), config.batch_size, config.steps, config.seed):
        before = s.net.trunk[0].weight.detach().clone()
        result = step((s.data.X[idx], [t[idx] for t in s.data.targets]))
        assert torch.isfinite(result.losses).all()
        moved += not torch.equal(before, s.net.trunk[0].weight)
    assert moved == 30


# --- reusing the weights between updates (Nash-MTL's update_weights_every) ---


def test_reusing_the_weights_every_k_steps_steps_along_the_old_weights_applied_to_the_new_gradients():
    """With update_every=3 the weights are computed at steps 0, 3, ...; at steps 1 and 2 the trunk gets
    lam_0 @ G_t (G_t of the batch at step t, never formed by the step itself), the heads their own gradients."""
    config = TrainConfig(strategy="nash_mtl", alpha=0.3, beta=2.0, dtype="float64", lr=1e-3)
    s = build(config)
    step = make_gradient_method_step(aggregators.nash_mtl, update_every=3)(s)
    batches = [first_batch(s, 64), (s.data.X[64:128], [t[64:128] for t in s.data.targets])] * 2
    G0 = task_gradients([w * L for w, L in zip(config.weights, losses_of(s, batches[0]))], s.net.shared_parameters())
    lam0 = aggregators.nash_mtl(G0)
    results = [step(batches[0])]
    for t in (1, 2):
        weighted = [w * L for w, L in zip(config.weights, losses_of(s, batches[t]))]
        G = task_gradients(weighted, s.net.shared_parameters())
        heads = torch.autograd.grad(sum(weighted), s.net.head_parameters())
        results.append(step(batches[t]))
        trunk = torch.cat([p.grad.reshape(-1) for p in s.net.shared_parameters()])
        torch.testing.assert_close(trunk, lam0 @ G, rtol=0, atol=1e-12)
        for g, p in zip(heads, s.net.head_parameters(), strict=True):
            torch.testing.assert_close(p.grad, g, rtol=0, atol=1e-12)
        assert not torch.allclose(aggregators.nash_mtl(G), lam0)  # the weights would have changed
    assert math.isfinite(results[0].extras["cosine"])
    assert all(math.isnan(v) for r in results[1:] for v in r.extras.values())  # not measured on reuse steps
    assert set(results[1].extras) == set(results[0].extras)


def test_update_every_one_is_the_registered_step():
    config = TrainConfig(strategy="nash_mtl", steps=12, dtype="float64")
    *_, ours = training_run(config, make_step=make_gradient_method_step(aggregators.nash_mtl, update_every=1))
    assert ours.total == train(config).total


def test_update_every_k_trains_and_measures_the_cosine_on_update_steps_only():
    config = TrainConfig(strategy="nash_mtl", steps=40, lr=0.05)
    *_, h = training_run(config, make_step=make_gradient_method_step(aggregators.nash_mtl, update_every=4))
    cosine = h.extras["cosine"]
    assert [i for i, c in enumerate(cosine) if not math.isnan(c)] == list(range(0, 40, 4))
    assert h.finished and sum(h.total[-5:]) < 0.8 * sum(h.total[:5])


@pytest.mark.parametrize("bad", [0, -2, 1.5, True])
def test_update_every_must_be_a_positive_whole_number(bad):
    with pytest.raises(ValueError, match=f"update_every={bad!r} must be a whole number"):
        make_gradient_method_step(aggregators.nash_mtl, update_every=bad)


@pytest.mark.parametrize("lam", [(0.0, 0.8), (0.0, 0.0), (1e-3, 50.0)])
def test_a_reuse_step_gives_the_trunk_lam_at_G_and_each_head_its_own_gradient(lam):
    """Positive weights: one backward, each head's gradient divided back by its lam_i; a zero weight: two backwards."""
    config = TrainConfig(alpha=0.3, beta=2.0, dtype="float64", lr=1e-3)
    s = build(config)
    lam = torch.tensor(lam, dtype=torch.float64)
    weighted = [w * L for w, L in zip(config.weights, losses_of(s))]
    G = task_gradients(weighted, s.net.shared_parameters())
    heads = torch.autograd.grad(sum(weighted), s.net.head_parameters())
    reuse_weights_step(lam, s.net, first_batch(s), s.data.criteria, s.optimizer, config.weights)
    trunk = torch.cat([p.grad.reshape(-1) for p in s.net.shared_parameters()])
    torch.testing.assert_close(trunk, lam @ G, rtol=0, atol=1e-12)
    for g, p in zip(heads, s.net.head_parameters(), strict=True):
        torch.testing.assert_close(p.grad, g, rtol=1e-12, atol=1e-15)
