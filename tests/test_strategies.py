"""The facts the course teaches about summing vs separate backward, proven on the package."""

import pytest
import torch
from helpers import losses_of, one_step

from mtl_teach.config import TrainConfig
from mtl_teach.registry import STRATEGIES, names
from mtl_teach.train import build, make_optimizer, train

EQUAL_GRAD_STRATEGIES = ["weighted_sum", "separate_backward", "backward_list"]


def grads_after_one_step(strategy: str, alpha: float, beta: float, dtype: str) -> list[torch.Tensor]:
    """Gradients each strategy leaves in .grad on the same batch (lr tiny: we read grads, not steps)."""
    config = TrainConfig(strategy=strategy, alpha=alpha, beta=beta, dtype=dtype, optimizer="sgd", lr=1e-9)
    s, _ = one_step(config)
    return [p.grad.clone() for p in s.net.parameters()]


@pytest.mark.parametrize("alpha, beta", [(0.5, 0.5), (1.0, 0.0), (0.2, 3.0), (10.0, 0.01)])
@pytest.mark.parametrize("dtype, tol", [("float64", 1e-12), ("float32", 1e-6)])
def test_sum_separate_and_list_backward_give_identical_gradients(alpha, beta, dtype, tol):
    reference = grads_after_one_step("weighted_sum", alpha, beta, dtype)
    for name in EQUAL_GRAD_STRATEGIES[1:]:
        for g_ref, g in zip(reference, grads_after_one_step(name, alpha, beta, dtype), strict=True):
            torch.testing.assert_close(g, g_ref, atol=tol, rtol=0)
    assert any(g.abs().sum() > 0 for g in reference)  # the comparison is not of zeros


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_sum_separate_and_list_backward_give_the_same_trajectory(optimizer):
    histories = [train(strategy=s, optimizer=optimizer, lr=0.05, steps=20) for s in EQUAL_GRAD_STRATEGIES]
    for h in histories[1:]:
        for name in h.task_names:
            torch.testing.assert_close(torch.tensor(h.losses[name]), torch.tensor(histories[0].losses[name]))


# (optimizer, momentum): plain SGD is the surprising case, see the next test.
STATEFUL_OPTIMIZERS = [("sgd", 0.9), ("adam", 0.0)]


@pytest.mark.parametrize("optimizer, momentum", STATEFUL_OPTIMIZERS)
def test_alternating_steps_differs_from_weighted_sum(optimizer, momentum):
    kwargs = dict(optimizer=optimizer, momentum=momentum, lr=0.05, steps=50)
    summed = train(strategy="weighted_sum", **kwargs)
    alternating = train(strategy="alternating_steps", **kwargs)
    # Step 0 is measured before any update, so it agrees; afterwards the runs part.
    assert alternating.total[0] == summed.total[0]
    assert abs(alternating.total[-1] - summed.total[-1]) > 1e-3


def test_alternating_steps_with_plain_sgd_is_the_sum_in_disguise():
    """The blog post's recipe 2 reuses the activations of one forward pass, so the second
    gradient is taken at the *old* parameters; plain SGD then adds up the same two
    gradients as the sum does (up to float rounding)."""
    summed = train(strategy="weighted_sum", optimizer="sgd", lr=0.05, steps=50)
    alternating = train(strategy="alternating_steps", optimizer="sgd", lr=0.05, steps=50)
    torch.testing.assert_close(torch.tensor(alternating.total), torch.tensor(summed.total), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("optimizer, momentum", STATEFUL_OPTIMIZERS)
def test_alternating_steps_depends_on_task_order(optimizer, momentum):
    kwargs = dict(strategy="alternating_steps", optimizer=optimizer, momentum=momentum, lr=0.05, steps=50)
    forward = train(task_order=(0, 1), **kwargs)
    backward = train(task_order=(1, 0), **kwargs)
    assert abs(forward.total[-1] - backward.total[-1]) > 1e-3


def test_weighted_sum_ignores_task_order():
    # task_order only exists for alternating steps; a sum is commutative.
    assert train(steps=30, task_order=(0, 1)).total == train(steps=30, task_order=(1, 0)).total


def recipe_2_batches(hidden: tuple[int, ...], set_to_none: bool, batches: int = 3) -> str:
    """Run the blog post's recipe 2 for a few batches; "ran", or the RuntimeError's message."""
    setup = build(TrainConfig(hidden=hidden, optimizer="sgd", lr=0.05))
    for _ in range(batches):
        losses = losses_of(setup)
        try:
            for i, loss in enumerate(losses):
                setup.optimizer.zero_grad(set_to_none=set_to_none)
                loss.backward(retain_graph=i == 0)
                setup.optimizer.step()
        except RuntimeError as err:
            return str(err)
    return "ran"


def test_what_the_alternating_steps_config_error_says_is_true():
    """The ConfigError's reasons, checked on plain SGD: a deeper trunk fails at once; one layer runs
    with zero_grad()'s default set_to_none=True, and fails with set_to_none=False."""
    message = STRATEGIES["alternating_steps"].check(TrainConfig(hidden=(8, 8)))
    assert "set_to_none=False" in message and "second batch" in message
    assert "modified by an inplace operation" in recipe_2_batches((8, 8), set_to_none=True, batches=1)
    assert recipe_2_batches((8,), set_to_none=True) == "ran"
    assert recipe_2_batches((8,), set_to_none=False, batches=1) == "ran"
    assert "modified by an inplace operation" in recipe_2_batches((8,), set_to_none=False, batches=2)


def test_alternating_steps_advances_adam_twice_per_batch():
    s, _ = one_step(TrainConfig(strategy="alternating_steps"))
    trunk_weight = s.net.trunk[0].weight
    assert s.optimizer.state[trunk_weight]["step"].item() == 2.0


def test_missing_retain_graph_raises_the_error_a_learner_sees():
    s = build(TrainConfig())
    losses = losses_of(s)
    losses[0].backward()  # frees the shared graph's saved tensors
    with pytest.raises(RuntimeError, match="Trying to backward through the graph a second time"):
        losses[1].backward()


def test_seed_recipe_two_breaks_with_a_deeper_trunk():
    """One forward, step between backwards: the step overwrites weights the second backward needs."""
    s = build(TrainConfig(hidden=(16, 16)))
    losses = losses_of(s)
    s.optimizer.zero_grad()
    losses[0].backward(retain_graph=True)
    s.optimizer.step()
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        losses[1].backward()


@pytest.mark.parametrize("optimizer, expect_same", [("adam", True), ("sgd", False)])
def test_scaling_all_losses_by_ten(optimizer, expect_same):
    lr = 0.01 if optimizer == "adam" else 0.002
    base = train(optimizer=optimizer, lr=lr, steps=100, alpha=1.0, beta=1.0)
    scaled = train(optimizer=optimizer, lr=lr, steps=100, alpha=10.0, beta=10.0)
    gap = max(
        abs(a - b) for name in base.task_names for a, b in zip(base.losses[name], scaled.losses[name], strict=True)
    )
    if expect_same:
        assert gap <= 1e-3  # Adam divides the scale out (up to eps)
    else:
        assert gap > 1e-2  # SGD takes 10x larger steps


def test_per_task_lr_gives_each_head_its_own_learning_rate():
    s, result = one_step(TrainConfig(strategy="per_task_lr", alpha=0.3, beta=2.0, lr=0.01))
    lrs = {g["name"]: g["lr"] for g in s.optimizer.param_groups}
    assert lrs == pytest.approx({"trunk": 0.01, "head0": 0.003, "head1": 0.02})
    # And it changes only the heads' updates: the losses are summed unweighted.
    assert list(result.weights) == [1.0, 1.0]


def test_per_task_lr_with_sgd_equals_scaled_head_gradients():
    """SGD with head lr = lr * w_i moves head i exactly as plain SGD on w_i * L_i would (heads only)."""
    config = TrainConfig(strategy="per_task_lr", optimizer="sgd", alpha=0.3, beta=2.0, lr=0.1, dtype="float64")
    before = [h.weight.detach().clone() for h in build(config).net.heads]
    s, _ = one_step(config)
    for head, w0, w in zip(s.net.heads, before, (0.3, 2.0)):
        torch.testing.assert_close(head.weight.detach(), w0 - 0.1 * w * head.weight.grad, atol=1e-12, rtol=0)


def test_make_optimizer_rejects_unknown_name():
    s = build(TrainConfig())
    with pytest.raises(ValueError, match="optimizer='rmsprop'"):
        make_optimizer(s.net, "rmsprop", 0.1)


def test_registry_lists_the_core_strategies_in_teaching_order():
    assert names("sum") + names("recipe") == [
        "weighted_sum",
        "separate_backward",
        "backward_list",
        "alternating_steps",
        "per_task_lr",
    ]
    assert list(STRATEGIES)[:5] == names("sum") + names("recipe")  # the table's order is the teaching order
    with pytest.raises(ValueError, match="family='sums' is not known"):
        names("sums")


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_every_strategy_builds_a_step_that_reports_losses_and_weights(name):
    config = TrainConfig(strategy=name, dtype="float64")
    s, result = one_step(config)
    expected = torch.stack(losses_of(build(config))).detach()  # the same batch on the untouched initial net
    torch.testing.assert_close(result.losses, expected, rtol=0, atol=0)  # measured before the update
    weights = torch.as_tensor(result.weights, dtype=torch.float64)
    assert weights.shape == (2,) and torch.isfinite(weights).all()
    family = STRATEGIES[name].family
    if family in ("sum", "gradient"):
        assert weights.tolist() == [config.alpha, config.beta]
    assert all(isinstance(key, str) and isinstance(value, float) for key, value in result.extras.items())
    assert family in ("sum", "recipe", "weighting", "gradient")
