"""multi_digits (two digits side by side), the dataset config field, and the 2-D toy of the CAGrad paper."""

import importlib.util
import math
import sys

import pytest
import torch

from mtl_teach.config import ConfigError, TrainConfig
from mtl_teach.data import TOY_2D_PARETO_X2, TOY_2D_STARTS, multi_digits, toy_2d, two_task
from mtl_teach.models import SharedTrunkNet
from mtl_teach.train import train

needs_sklearn = pytest.mark.skipif(importlib.util.find_spec("sklearn") is None, reason="scikit-learn not installed")


def digit_index(images: torch.Tensor) -> dict[bytes, int]:
    """Exact-match lookup: 8x8 image bytes -> its index in the bundled digits (no two are equal)."""
    return {img.numpy().tobytes(): i for i, img in enumerate(images)}


@pytest.fixture(scope="module")
def bundled():
    from sklearn.datasets import load_digits

    digits = load_digits()
    return torch.tensor(digits.images, dtype=torch.float64) / 16, torch.tensor(digits.target)


@needs_sklearn
def test_shapes_ranges_and_labels():
    data = multi_digits()
    # 1797 digits: 1438 train and 359 test, each used in 3 pairs
    assert data.X.shape == (4314, 96) and data.X_test.shape == (1077, 96) and data.image_shape == (8, 12)
    assert data.X.dtype == torch.float32 and data.y_left.dtype == torch.int64
    assert 0 <= data.X.min() and data.X.max() <= 1
    assert set(data.y_left.tolist()) == set(range(10)) == set(data.y_right_test.tolist())
    assert len(data) == 4314 and data.task_names == ("left digit", "right digit")


@needs_sklearn
def test_without_overlap_images_are_two_bundled_digits_with_their_labels(bundled):
    images, labels = bundled
    lookup = digit_index(images)
    data = multi_digits(overlap=0, pairs_per_digit=2, dtype=torch.float64)
    used = {}
    for split, X, targets in (("train", data.X, data.targets), ("test", data.X_test, data.test_targets)):
        canvas = X.view(-1, 8, 16)
        left = [lookup[c[:, :8].contiguous().numpy().tobytes()] for c in canvas]
        right = [lookup[c[:, 8:].contiguous().numpy().tobytes()] for c in canvas]
        assert labels[left].tolist() == targets[0].tolist() and labels[right].tolist() == targets[1].tolist()
        assert sorted(left) == sorted(right)  # each digit as often on the left as on the right
        used[split] = set(left)
        assert len(left) == 2 * len(used[split])  # every digit in exactly 2 pairs
    assert len(used["train"]) + len(used["test"]) == 1797 and not used["train"] & used["test"]


@needs_sklearn
def test_overlapping_columns_take_the_darker_ink():
    plain, overlapped = multi_digits(overlap=0), multi_digits(overlap=4)  # same seed: the same pairs
    left, right = plain.X.view(-1, 8, 16)[:, :, :8], plain.X.view(-1, 8, 16)[:, :, 8:]
    middle = torch.maximum(left[:, :, 4:], right[:, :, :4])
    expected = torch.cat([left[:, :, :4], middle, right[:, :, 4:]], dim=2)
    assert torch.equal(overlapped.X.view(-1, 8, 12), expected)
    assert torch.equal(overlapped.y_left, plain.y_left) and torch.equal(overlapped.y_right, plain.y_right)


@needs_sklearn
def test_pairing_is_fixed_by_the_seed():
    a, b, c = multi_digits(seed=3), multi_digits(seed=3), multi_digits(seed=4)
    assert torch.equal(a.X, b.X) and torch.equal(a.y_right_test, b.y_right_test)
    assert not torch.equal(a.y_left, c.y_left)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(overlap=9), "overlap=9"),
        (dict(pairs_per_digit=0), "pairs_per_digit=0"),
        (dict(test_fraction=1.0), "test_fraction=1.0"),
    ],
)
def test_bad_arguments_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        multi_digits(**kwargs)


def test_missing_scikit_learn_gives_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)  # makes `import sklearn.datasets` fail
    with pytest.raises(ImportError, match="multi_digits\\(\\) needs scikit-learn.*pip install scikit-learn"):
        multi_digits()


@needs_sklearn
def test_small_mlp_reads_both_digits_above_90_percent_on_held_out_pairs():
    history = train(dataset="multi_digits")  # 300 steps of 64 = about 4.4 epochs of 4314 pairs
    assert history.finished
    assert history.metrics["left digit accuracy"] > 0.9 and history.metrics["right digit accuracy"] > 0.9
    assert set(history.losses) == {"left digit", "right digit"}


def test_dataset_field_is_validated_and_defaults_to_two_task():
    assert TrainConfig().dataset == "two_task"
    assert set(train(steps=2).metrics) == {"accuracy", "rmse"}
    with pytest.raises(ConfigError, match="dataset='mnist' is not allowed"):
        TrainConfig(dataset="mnist")


# --- the 2-D toy (Liu et al. 2021, CAGrad; github.com/Cranial-XIX/CAGrad toy.py) ---


def reference_toy(x1: float, x2: float) -> tuple[float, float]:
    """CAGrad's toy written out again with the math module, as a check of the torch version."""
    f1 = math.log(max(abs(0.5 * (-x1 - 7) - math.tanh(-x2)), 5e-6)) + 6
    f2 = math.log(max(abs(0.5 * (-x1 + 3) + math.tanh(-x2) + 2), 5e-6)) + 6
    c1, c2 = max(math.tanh(x2 * 0.5), 0), max(math.tanh(-x2 * 0.5), 0)
    f1_sq = ((-x1 + 7) ** 2 + 0.1 * (-x2 - 8) ** 2) / 10 - 20
    f2_sq = ((-x1 - 7) ** 2 + 0.1 * (-x2 - 8) ** 2) / 10 - 20
    return f1 * c1 + f1_sq * c2, f2 * c1 + f2_sq * c2


def test_toy_2d_matches_the_papers_formula_at_many_points():
    points = torch.tensor([*TOY_2D_STARTS, (1.0, 2.0), (1.0, -2.0), (-3.0, 0.5), (0.0, TOY_2D_PARETO_X2)])
    values = toy_2d(points.double())
    expected = torch.tensor([reference_toy(*p) for p in points.tolist()], dtype=torch.float64)
    assert values.shape == (7, 2) and torch.allclose(values, expected, rtol=0, atol=1e-12)
    assert toy_2d(torch.zeros(3, 4, 2)).shape == (3, 4, 2)


def test_toy_2d_minima_and_pareto_point():
    def gradient(x1: float, x2: float, weights: tuple[float, float]) -> torch.Tensor:
        x = torch.tensor([x1, x2], dtype=torch.float64, requires_grad=True)
        (toy_2d(x) @ torch.tensor(weights, dtype=torch.float64)).backward()
        return x.grad

    assert gradient(7.0, -8.43446, (1, 0)).abs().max() < 1e-4  # f1's minimum
    assert gradient(-7.0, -8.43446, (0, 1)).abs().max() < 1e-4  # f2's minimum
    assert gradient(0.0, TOY_2D_PARETO_X2, (1, 1)).abs().max() < 1e-3  # f1 + f2's minimum: on the Pareto set
    g1, g2 = gradient(0.0, TOY_2D_PARETO_X2, (1, 0)), gradient(0.0, TOY_2D_PARETO_X2, (0, 1))
    assert torch.nn.functional.cosine_similarity(g1, g2, dim=0) < -0.999  # the tasks pull in opposite directions


def test_toy_2d_refuses_points_that_are_not_2d():
    with pytest.raises(ValueError, match=r"shape \(5, 3\)"):
        toy_2d(torch.zeros(5, 3))


# --- what every dataset carries: tasks, heads, criteria, a held-out split, its metrics ---


def test_two_task_has_a_held_out_split_drawn_after_the_training_data():
    data = two_task(n_samples=256, seed=3, n_test=100)
    assert data.X.shape == (256, 8) and data.X_test.shape == (100, 8) and data.y_reg_test.shape == (100,)
    torch.testing.assert_close(two_task(n_samples=256, seed=3, n_test=7).X, data.X, rtol=0, atol=0)  # unchanged
    assert not torch.isin(data.X_test[:, 0], data.X[:, 0]).any()  # new examples, not copies
    assert data.task_names == ("classification", "regression") and data.head_dims == (1, 1)
    assert [type(c).__name__ for c in data.criteria] == ["BCEWithLogitsLoss", "MSELoss"]
    blog = two_task(classification_loss="sigmoid_bce")
    assert [type(c).__name__ for c in blog.criteria] == ["SigmoidBCELoss", "MSELoss"]


def test_metrics_are_measured_on_the_held_out_split():
    from mtl_teach.models import SharedTrunkNet

    data = two_task(seed=0)
    net = SharedTrunkNet(8, (16,), seed=0)
    with torch.no_grad():
        logits, y_hat = net(data.X_test)
    expected_rmse = torch.sqrt(torch.mean((y_hat - data.y_reg_test) ** 2)).item()
    expected_accuracy = ((logits > 0).float() == data.y_class_test).float().mean().item()
    assert data.evaluate(net) == {"accuracy": expected_accuracy, "rmse": expected_rmse}


@needs_sklearn
def test_multi_digits_carries_its_heads_criteria_and_metrics():
    data = multi_digits()
    assert data.head_dims == (10, 10)
    assert [type(c).__name__ for c in data.criteria] == ["CrossEntropyLoss", "CrossEntropyLoss"]
    from mtl_teach.models import SharedTrunkNet

    metrics = data.evaluate(SharedTrunkNet(96, (16,), (10, 10), seed=0))
    assert set(metrics) == {"left digit accuracy", "right digit accuracy"}
    assert all(0.0 <= v <= 1.0 for v in metrics.values())


# --- validation splits, for choosing settings without looking at the test split ---


def test_two_task_validation_split_is_drawn_last_and_changes_nothing_else():
    plain, with_val = two_task(seed=2), two_task(seed=2, n_val=300)
    for name in ("X", "y_class", "y_reg", "X_test", "y_class_test", "y_reg_test"):
        assert torch.equal(getattr(with_val, name), getattr(plain, name)), name
    assert plain.X_val is None and with_val.X_val.shape == (300, 8) and with_val.y_reg_val.shape == (300,)
    assert not torch.isin(with_val.X_val[:, 0], torch.cat([plain.X[:, 0], plain.X_test[:, 0]])).any()
    scaled = two_task(seed=2, n_val=300, regression_scale=100.0)  # the same examples, the target in other units
    torch.testing.assert_close(scaled.y_reg_val, 100 * with_val.y_reg_val)


def test_evaluate_on_the_validation_split():
    from mtl_teach.models import SharedTrunkNet

    data, net = two_task(seed=0, n_val=200), SharedTrunkNet(8, (16,), seed=0)
    with torch.no_grad():
        logits, y_hat = net(data.X_val)
    expected = {
        "accuracy": ((logits > 0).float() == data.y_class_val).float().mean().item(),
        "rmse": torch.sqrt(torch.mean((y_hat - data.y_reg_val) ** 2)).item(),
    }
    assert data.evaluate(net, split="val") == expected != data.evaluate(net)
    with pytest.raises(ValueError, match="has no validation split: make it with n_val"):
        two_task().evaluate(net, split="val")
    with pytest.raises(ValueError, match="split='train' is not known"):
        data.evaluate(net, split="train")
    with pytest.raises(ValueError, match="n_val=-1 must be a whole number"):
        two_task(n_val=-1)


def image_set(X: torch.Tensor) -> set[bytes]:
    """The 8x8 digit images in pairs made with overlap=0 (left half and right half of each row)."""
    halves = X.view(-1, 8, 16).split(8, dim=2)
    return {image.numpy().tobytes() for half in halves for image in half}


@needs_sklearn
def test_multi_digits_validation_pairs_share_no_image_with_test_or_training():
    plain, with_val = multi_digits(overlap=0), multi_digits(overlap=0, val_fraction=0.1)
    assert torch.equal(with_val.X, plain.X) and torch.equal(with_val.y_left, plain.y_left)  # training unchanged
    assert torch.equal(multi_digits(overlap=0, val_fraction=0.0).X_test, plain.X_test)  # the default: unchanged
    assert with_val.X_val.shape == (540, 128) and with_val.X_test.shape == (537, 128)  # 180 and 179 digits, x3
    assert len(with_val.X_val) + len(with_val.X_test) == len(plain.X_test)
    train, test, val = (image_set(x) for x in (with_val.X, with_val.X_test, with_val.X_val))
    assert not val & test and not val & train and not test & train
    assert set(with_val.evaluate(SharedTrunkNet(128, (16,), (10, 10)), split="val")) == {
        "left digit accuracy",
        "right digit accuracy",
    }
    with pytest.raises(ValueError, match="val_fraction=0.2 must be at least 0 and below test_fraction=0.2"):
        multi_digits(val_fraction=0.2)
