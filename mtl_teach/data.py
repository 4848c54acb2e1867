"""Datasets made in-process from a seed: nothing is downloaded.

Each dataset carries what a run needs to know about its tasks, so no other
module checks which dataset it has: `task_names`, `head_dims` (the width of
each task's head), `criteria` (each task's loss function), a held-out test
split, and `evaluate(net)` (each task's metric on that split).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
from torch import nn

from mtl_teach.losses import SigmoidBCELoss

TWO_TASK_NAMES = ("classification", "regression")
TWO_TASK_TEST_SAMPLES = 1024  # the size of two_task's held-out split


@dataclass(frozen=True)
class TwoTaskData:
    """Inputs `X` (N, F); a binary label `y_class` (N,) in {0., 1.}; a regression
    target `y_reg` (N,); and a held-out split of the same kind (`X_test`, ...).

    `criteria`: `BCEWithLogitsLoss` and `MSELoss` (or the blog post's
    `sigmoid` + `BCELoss` pair for the first, see `two_task`).
    """

    X: torch.Tensor
    y_class: torch.Tensor
    y_reg: torch.Tensor
    X_test: torch.Tensor
    y_class_test: torch.Tensor
    y_reg_test: torch.Tensor
    criteria: tuple[nn.Module, ...]
    task_names: tuple[str, ...] = TWO_TASK_NAMES
    head_dims: tuple[int, ...] = (1, 1)
    X_val: torch.Tensor | None = None  # a validation split, when asked for (`two_task(n_val=...)`)
    y_class_val: torch.Tensor | None = None
    y_reg_val: torch.Tensor | None = None

    @property
    def targets(self) -> tuple[torch.Tensor, torch.Tensor]:
        return (self.y_class, self.y_reg)

    @property
    def test_targets(self) -> tuple[torch.Tensor, torch.Tensor]:
        return (self.y_class_test, self.y_reg_test)

    def __len__(self) -> int:
        return self.X.shape[0]

    @torch.no_grad()
    def evaluate(self, net: nn.Module, split: str = "test") -> dict[str, float]:
        """On a held-out split ("test", or "val" if made): classification accuracy, regression RMSE."""
        X, (y_class, y_reg) = _split(
            self, split, (self.y_class_test, self.y_reg_test), (self.y_class_val, self.y_reg_val)
        )
        logits, y_hat = net(X)
        accuracy = ((logits > 0).to(y_class.dtype) == y_class).float().mean().item()
        rmse = torch.sqrt(torch.mean((y_hat - y_reg) ** 2)).item()
        return {"accuracy": accuracy, "rmse": rmse}


def _split(data, split: str, test_targets: tuple, val_targets: tuple) -> tuple[torch.Tensor, tuple]:
    """The inputs and targets of a held-out split: "test", or "val" where the dataset was made with one."""
    if split == "test":
        return data.X_test, test_targets
    if split == "val" and data.X_val is not None:
        return data.X_val, val_targets
    if split == "val":
        raise ValueError(
            "this dataset has no validation split: make it with n_val (two_task) or val_fraction (multi_digits)"
        )
    raise ValueError(f"split={split!r} is not known; choose 'test' or 'val'")


def two_task(
    n_samples: int = 512,
    n_features: int = 8,
    relatedness: float = 0.5,
    regression_scale: float = 1.0,
    noise: float = 0.1,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    n_test: int = TWO_TASK_TEST_SAMPLES,
    classification_loss: str = "logits",
    n_val: int = 0,
) -> TwoTaskData:
    """The blog post's pair of tasks from one set of features.

    Each task reads the features along its own unit direction; `relatedness`
    is the cosine between the two directions (1: the same signal, 0:
    unrelated, -1: the same direction with its sign flipped, which a learned
    head absorbs; notebook 05 shows it conflicts least). The label is whether the first reading plus a
    bend is positive; the regression target is the second reading plus a bend,
    times `regression_scale` (so the two losses can differ by orders of
    magnitude). `n_test` more examples, drawn after the training ones, form
    the held-out split. `classification_loss="sigmoid_bce"` gives the blog
    post's fragile `sigmoid` + `BCELoss` instead of `BCEWithLogitsLoss`.
    `n_val` more examples, drawn after those, form a validation split (for
    choosing settings without looking at the test split); the training and
    test examples are the same whatever `n_val` is.
    """
    if not -1.0 <= relatedness <= 1.0:
        raise ValueError(f"relatedness={relatedness!r} must be in [-1, 1]")
    if n_features < 2:
        raise ValueError(f"n_features={n_features!r} must be at least 2 (two task directions)")
    if classification_loss not in ("logits", "sigmoid_bce"):
        raise ValueError(f"classification_loss={classification_loss!r} must be 'logits' or 'sigmoid_bce'")
    if not isinstance(n_val, int) or isinstance(n_val, bool) or n_val < 0:
        raise ValueError(f"n_val={n_val!r} must be a whole number of examples, at least 0")
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n_samples, n_features, generator=g, dtype=torch.float64)
    basis, _ = torch.linalg.qr(torch.randn(n_features, 2, generator=g, dtype=torch.float64))
    directions = (basis[:, 0], relatedness * basis[:, 0] + math.sqrt(1.0 - relatedness**2) * basis[:, 1])
    train = _two_task_labels(X, directions, regression_scale, noise, g)
    X_test = torch.randn(n_test, n_features, generator=g, dtype=torch.float64)  # drawn last: X is as before
    test = _two_task_labels(X_test, directions, regression_scale, noise, g)
    classify = nn.BCEWithLogitsLoss() if classification_loss == "logits" else SigmoidBCELoss()
    data = TwoTaskData(*(t.to(dtype) for t in (X, *train, X_test, *test)), criteria=(classify, nn.MSELoss()))
    if n_val == 0:
        return data
    X_val = torch.randn(n_val, n_features, generator=g, dtype=torch.float64)  # drawn after the test split
    val = _two_task_labels(X_val, directions, regression_scale, noise, g)
    return replace(data, X_val=X_val.to(dtype), y_class_val=val[0].to(dtype), y_reg_val=val[1].to(dtype))


def _two_task_labels(X, directions, regression_scale, noise, g) -> tuple[torch.Tensor, torch.Tensor]:
    """(y_class, y_reg) for the float64 inputs X, with fresh noise from g."""
    z_class, z_reg = X @ directions[0], X @ directions[1]
    eps = torch.randn(2, len(X), generator=g, dtype=torch.float64)
    # A bend (sin) makes the tasks need the hidden layer, not just a linear map.
    y_class = (z_class + 0.5 * torch.sin(2 * z_class) + noise * eps[0] > 0).double()
    y_reg = regression_scale * (z_reg + 0.5 * torch.sin(2 * z_reg) + noise * eps[1])
    return y_class, y_reg


def batch_indices(n_samples: int, batch_size: int, steps: int, seed: int) -> list[torch.Tensor]:
    """Minibatch indices for every step: shuffled epochs, fixed by `seed`."""
    g = torch.Generator().manual_seed(seed + 1)
    size = min(batch_size, n_samples)
    out: list[torch.Tensor] = []
    while len(out) < steps:
        perm = torch.randperm(n_samples, generator=g)
        out.extend(perm[i : i + size] for i in range(0, n_samples - size + 1, size))
    return out[:steps]


# --- Two digits side by side: two 10-class tasks from one image --------------------------------------------

DIGIT_TASK_NAMES = ("left digit", "right digit")


@dataclass(frozen=True)
class MultiDigitsData:
    """Two-digit images and their two labels, with a held-out test split.

    `X` (N, 8 * W) holds the images flattened row by row, pixel values in
    [0, 1]; `y_left`, `y_right` (N,) are class labels 0-9 (int64).
    `X_test`, `y_left_test`, `y_right_test` are pairs made from digits the
    training pairs never use. `image_shape` is (8, W), for plotting.
    """

    X: torch.Tensor
    y_left: torch.Tensor
    y_right: torch.Tensor
    X_test: torch.Tensor
    y_left_test: torch.Tensor
    y_right_test: torch.Tensor
    image_shape: tuple[int, int]
    task_names: tuple[str, ...] = DIGIT_TASK_NAMES
    head_dims: tuple[int, ...] = (10, 10)
    criteria: tuple[nn.Module, ...] = (nn.CrossEntropyLoss(), nn.CrossEntropyLoss())
    X_val: torch.Tensor | None = None  # a validation split, when asked for (`multi_digits(val_fraction=...)`)
    y_left_val: torch.Tensor | None = None
    y_right_val: torch.Tensor | None = None

    @property
    def targets(self) -> tuple[torch.Tensor, torch.Tensor]:
        return (self.y_left, self.y_right)

    @property
    def test_targets(self) -> tuple[torch.Tensor, torch.Tensor]:
        return (self.y_left_test, self.y_right_test)

    def __len__(self) -> int:
        return self.X.shape[0]

    @torch.no_grad()
    def evaluate(self, net: nn.Module, split: str = "test") -> dict[str, float]:
        """Each head's accuracy on held-out pairs ("test", or "val" if made)."""
        X, targets = _split(self, split, self.test_targets, (self.y_left_val, self.y_right_val))
        outputs = net(X)
        return {
            f"{name} accuracy": (logits.argmax(dim=1) == y).float().mean().item()
            for name, logits, y in zip(self.task_names, outputs, targets)
        }


def multi_digits(
    seed: int = 0,
    overlap: int = 4,
    pairs_per_digit: int = 3,
    test_fraction: float = 0.2,
    dtype: torch.dtype = torch.float32,
    val_fraction: float = 0.0,
) -> MultiDigitsData:
    """Two 8x8 scikit-learn digits side by side, sharing `overlap` columns.

    The images are 8 x (16 - overlap) (8 x 12 by default); where the two
    digits overlap, a pixel takes the darker ink of the two (the maximum).
    Task 1 reads the left digit, task 2 the right one. The 1797 bundled
    digits are first split into train and test pools (`test_fraction`),
    then each pool, repeated `pairs_per_digit` times, is paired with a
    shuffled copy of itself: every digit appears that many times on the
    left and as many on the right (1438 digits give 4314 training pairs by
    default), and no test pair shares a digit image with training. The
    split and the pairing depend only on `seed`. Needs scikit-learn (its
    digits are bundled: nothing is downloaded). `val_fraction` of the
    digits, taken from the test pool, form validation pairs of their own
    (no image in both); the training pairs are the same whatever it is.
    """
    if not isinstance(overlap, int) or not 0 <= overlap <= 8:
        raise ValueError(f"overlap={overlap!r} must be a whole number of columns from 0 to 8")
    if not isinstance(pairs_per_digit, int) or pairs_per_digit < 1:
        raise ValueError(f"pairs_per_digit={pairs_per_digit!r} must be a whole number, at least 1")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction={test_fraction!r} must be between 0 and 1 (exclusive)")
    if not 0.0 <= val_fraction < test_fraction:
        raise ValueError(f"val_fraction={val_fraction!r} must be at least 0 and below test_fraction={test_fraction!r}")
    try:
        from sklearn.datasets import load_digits  # optional dependency, imported only when needed
    except ImportError as error:
        raise ImportError(
            "multi_digits() needs scikit-learn for its bundled 8x8 digits: "
            "pip install scikit-learn (or pip install 'mtl-teach[digits]')"
        ) from error
    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float64) / 16.0  # (1797, 8, 8), ink in [0, 1]
    labels = torch.tensor(digits.target, dtype=torch.int64)
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(images), generator=g)
    n_test, n_val = round(test_fraction * len(images)), round(val_fraction * len(images))
    pools = (order[n_test:].repeat(pairs_per_digit), order[n_val:n_test].repeat(pairs_per_digit))  # train, test
    (X, y_left, y_right), (X_test, y_left_test, y_right_test) = (
        _digit_pairs(images, labels, pool, overlap, g, dtype) for pool in pools
    )
    data = MultiDigitsData(X, y_left, y_right, X_test, y_left_test, y_right_test, (8, 16 - overlap))
    if n_val == 0:
        return data
    X_val, y_left_val, y_right_val = _digit_pairs(
        images, labels, order[:n_val].repeat(pairs_per_digit), overlap, g, dtype
    )
    return replace(data, X_val=X_val, y_left_val=y_left_val, y_right_val=y_right_val)


def _digit_pairs(
    images: torch.Tensor, labels: torch.Tensor, pool: torch.Tensor, overlap: int, g: torch.Generator, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pair each digit of `pool` with a shuffled partner: (X flattened, y_left, y_right)."""
    left, right = pool, pool[torch.randperm(len(pool), generator=g)]
    width = 16 - overlap
    canvas = torch.zeros(len(pool), 8, width, dtype=torch.float64)
    canvas[:, :, :8] = images[left]
    shifted = torch.zeros_like(canvas)
    shifted[:, :, width - 8 :] = images[right]
    canvas = torch.maximum(canvas, shifted)  # overlapping ink: the darker of the two
    return canvas.flatten(1).to(dtype), labels[left], labels[right]


# --- The 2-D two-objective toy from the gradient-method papers ---------------------------------------------

TOY_2D_STARTS = ((-8.5, 7.5), (-8.5, -5.0), (9.0, 9.0))  # the three starting points of the CAGrad paper's figure
# The papers draw the Pareto set as the segment x1 in [-7, 7] at x2 = -8.3552, where f1 + f2 is smallest
# (at x1 = 0); the exact set bends slightly, down to x2 = -8.43 at the single-task minima x1 = +-7.
TOY_2D_PARETO_X2 = -8.3552


def toy_2d(x: torch.Tensor) -> torch.Tensor:
    """The two objectives (f1, f2) of the 2-D toy in the CAGrad and Nash-MTL papers.

    `x` has shape (..., 2): points (x1, x2); the result has shape (..., 2):
    (f1(x), f2(x)) at each point. For x2 > 0 each objective is a log-valley
    (log|...| + 6), for x2 < 0 a quadratic bowl, blended by tanh(x2 / 2).
    The two objectives disagree: f1 is smallest at (7, -8.43), f2 at
    (-7, -8.43), and their sum at (0, -8.36); between them lies the Pareto set.
    Differentiable: use it for optimisation-trajectory pictures.

    The formula is copied term by term from `Toy.batch_forward` in the
    CAGrad code (github.com/Cranial-XIX/CAGrad, toy.py; Liu et al. 2021),
    also used by Nash-MTL (github.com/AvivNavon/nash-mtl,
    experiments/toy/problem.py; Navon et al. 2022).
    """
    if x.shape[-1] != 2:
        raise ValueError(f"x has shape {tuple(x.shape)}; toy_2d needs points of 2 coordinates, shape (..., 2)")
    x1, x2 = x[..., 0], x[..., 1]
    lower = 0.000005  # clamp |...| away from 0 before the log, as the original
    f1 = torch.clamp((0.5 * (-x1 - 7) - torch.tanh(-x2)).abs(), lower).log() + 6
    f2 = torch.clamp((0.5 * (-x1 + 3) + torch.tanh(-x2) + 2).abs(), lower).log() + 6
    c1 = torch.clamp(torch.tanh(x2 * 0.5), 0)
    f1_sq = ((-x1 + 7).pow(2) + 0.1 * (-x2 - 8).pow(2)) / 10 - 20
    f2_sq = ((-x1 - 7).pow(2) + 0.1 * (-x2 - 8).pow(2)) / 10 - 20
    c2 = torch.clamp(torch.tanh(-x2 * 0.5), 0)
    return torch.stack([f1 * c1 + f1_sq * c2, f2 * c1 + f2_sq * c2], dim=-1)
