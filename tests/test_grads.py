"""Per-task gradients of the shared trunk agree with plain backward; cosines and conflict."""

import pytest
import torch
from helpers import losses_of

from mtl_teach.config import TrainConfig
from mtl_teach.grads import conflict, cosine_matrix, flatten, task_gradients, unflatten
from mtl_teach.train import build


def weighted_losses(dtype: str = "float64", alpha: float = 0.3, beta: float = 2.0):
    """A built setup and its two weighted task losses on one batch."""
    s = build(TrainConfig(dtype=dtype, alpha=alpha, beta=beta, hidden=(16, 8)))
    return s.net, [w * loss for w, loss in zip(s.config.weights, losses_of(s))]


def reference_rows(net, losses) -> torch.Tensor:
    """Row i from plain `loss_i.backward()` into fresh .grad fields."""
    rows = []
    for loss in losses:
        net.zero_grad()
        loss.backward(retain_graph=True)
        rows.append(torch.cat([p.grad.reshape(-1) for p in net.shared_parameters()]))
    return torch.stack(rows)


@pytest.mark.parametrize("dtype, tol", [("float64", 1e-13), ("float32", 1e-6)])
def test_per_task_gradients_equal_one_backward_per_task(dtype, tol):
    net, losses = weighted_losses(dtype)
    G = task_gradients(losses, net.shared_parameters())
    D = sum(p.numel() for p in net.shared_parameters())
    assert G.shape == (2, D) and G.dtype == getattr(torch, dtype)
    torch.testing.assert_close(G, reference_rows(net, losses), rtol=0, atol=tol)
    assert G.abs().sum() > 0  # not a comparison of zeros


def test_rows_add_up_to_the_gradient_of_the_weighted_sum():
    net, losses = weighted_losses()
    G = task_gradients(losses, net.shared_parameters())
    net.zero_grad()
    sum(losses).backward()
    summed = torch.cat([p.grad.reshape(-1) for p in net.shared_parameters()])
    torch.testing.assert_close(G.sum(dim=0), summed, rtol=0, atol=1e-13)


def test_a_parameter_a_loss_does_not_reach_gets_a_zero_column():
    used, unused = torch.ones(3, requires_grad=True), torch.ones(2, requires_grad=True)
    losses = [(used**2).sum(), (3 * used).sum()]
    G = task_gradients(losses, [used, unused])
    expected = torch.tensor([[2.0, 2.0, 2.0, 0.0, 0.0], [3.0, 3.0, 3.0, 0.0, 0.0]])
    torch.testing.assert_close(G, expected, rtol=0, atol=0)


def test_flatten_and_unflatten_are_inverses():
    params = [torch.randn(4, 3), torch.randn(3)]
    back = unflatten(flatten(params, params), params)
    for p, q in zip(params, back, strict=True):
        assert torch.equal(p, q)
    with pytest.raises(ValueError, match="vector has 14 entries but the parameters have 15"):
        unflatten(torch.zeros(14), params)


def test_non_scalar_losses_are_rejected_naming_their_shapes():
    x = torch.ones(3, requires_grad=True)
    with pytest.raises(ValueError, match=r"scalar .* got shapes \[\(\), \(3,\)\]"):
        task_gradients([x.sum(), x * 2], [x])


def test_cosine_matrix_on_known_vectors():
    G = torch.tensor([[1.0, 0.0], [0.0, 2.0], [-3.0, 0.0], [0.0, 0.0]])
    expected = torch.tensor(
        [[1.0, 0.0, -1.0, 0.0], [0.0, 1.0, 0.0, 0.0], [-1.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0]]
    )  # a zero gradient has cosine 0 with everything
    torch.testing.assert_close(cosine_matrix(G), expected)


def test_conflict_summary_of_two_gradients():
    opposed = conflict(torch.tensor([[3.0, 4.0], [-1.0, 0.0]]))
    assert opposed.conflicting and opposed.min_cosine == pytest.approx(-0.6)
    assert opposed.as_extras(["a", "b"]) == pytest.approx(
        {"cosine": -0.6, "conflicting": 1.0, "grad_norm/a": 5.0, "grad_norm/b": 1.0}
    )
    agreeing = conflict(torch.tensor([[3.0, 4.0], [1.0, 0.0]]))
    assert not agreeing.conflicting and agreeing.min_cosine == pytest.approx(0.6)


def test_conflict_of_one_task_and_of_a_non_matrix():
    single = conflict(torch.ones(1, 3))
    assert single.min_cosine == 1.0 and not single.conflicting  # nothing to conflict with
    with pytest.raises(ValueError, match=r"T x D matrix of task gradients, got shape \(3,\)"):
        conflict(torch.ones(3))


def test_conflict_of_huge_gradients_does_not_overflow():
    G = torch.tensor([[3e30, 4e30], [-1e30, 0.0]])  # float32: G @ G.T would be inf
    summary = conflict(G)
    assert summary.min_cosine == pytest.approx(-0.6)
    torch.testing.assert_close(summary.norms, torch.tensor([5e30, 1e30]))
