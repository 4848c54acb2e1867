"""Gradient methods: how much of each task's gradient goes into the update.

Each method is a function of `G` (T x D, row i = task i's gradient of the
shared parameters) that returns task weights `lam` (T,); the update
direction is `d = lam @ G`, which the optimizer treats as the gradient.

Every method depends on G only through its Gram matrix A = G G^T (all inner
products between task gradients), and its weights stay the same when G is
multiplied by a number (except Nash-MTL's, which are divided by it: its
direction stays the same). So `gram(G)` computes A in float64 from G divided
by its largest entry: no overflow for huge gradients, no underflow for tiny ones.

MGDA, CAGrad and UPGrad each solve a small convex problem in task space. T is
small here (2 or 3 tasks), so they are solved exactly: on every face of the
simplex (every subset of tasks) the optimum has a closed form, one batched
linear solve covers all faces, and the best feasible candidate wins.
Nash-MTL's weights solve a convex problem too, without constraints but with
a log barrier: Newton's method finds them to rounding in a few steps.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import torch

Weighting = Callable[[torch.Tensor], torch.Tensor]  # G (T x D) -> task weights (T,)
MAX_TASKS = 12  # the exact solvers visit all 2^T faces
NASH_MAX_NEWTON_STEPS = 100  # Nash-MTL's solver: about 10 are enough unless 0 is nearly in the hull
NASH_TOLERANCE = 1e-6  # Nash-MTL: its solution has lam_i (A lam)_i = 1 for every task, to this much


def gram(G: torch.Tensor) -> torch.Tensor:
    """A = G G^T (T x T, float64) of G scaled to a largest entry of 1, after checking G."""
    if not isinstance(G, torch.Tensor) or G.ndim != 2 or G.shape[0] < 1 or G.shape[1] < 1:
        shape = tuple(G.shape) if isinstance(G, torch.Tensor) else type(G).__name__
        raise ValueError(f"G must be a T x D matrix of task gradients (one row per task), got {shape}")
    if not G.is_floating_point():
        raise ValueError(f"G has dtype {G.dtype}: task gradients must be floating point (e.g. torch.float32)")
    if G.shape[0] > MAX_TASKS:
        raise ValueError(f"G has {G.shape[0]} tasks; these exact solvers visit 2^T faces, so T <= {MAX_TASKS}")
    scale = G.abs().max().double()  # NaN or inf if any entry is
    if not torch.isfinite(scale):
        raise ValueError("G has NaN or infinite entries: the task gradients are not finite (did training diverge?)")
    scaled = G.double() / scale if scale > 0 else G.double()
    return scaled @ scaled.T


def mean(G: torch.Tensor) -> torch.Tensor:
    """The average gradient: what `weighted_sum` follows, divided by T."""
    return torch.full((len(gram(G)),), 1.0 / len(G), dtype=G.dtype)


def plain_sum(G: torch.Tensor) -> torch.Tensor:
    """The summed gradient: exactly what `weighted_sum` follows."""
    return torch.ones(len(gram(G)), dtype=G.dtype)


def pcgrad(G: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """PCGrad: Yu et al. 2020, "Gradient Surgery for Multi-Task Learning", Algorithm 1.

    Each g_i loses its component along every g_j it conflicts with
    (<g_i, g_j> < 0), one j at a time; the projected gradients are summed.
    Row i of C holds g_i's projection as weights of the rows of G, so that
    <projection, g_j> = C[i] @ A[:, j]. Guarantees: with two tasks the result
    conflicts with neither gradient; when no pair conflicts it is the plain
    sum. The paper visits the other tasks in random order (pass a seeded
    `generator`); by default in task order (for two tasks there is only one).
    """
    A = gram(G)
    T = len(A)
    C = torch.eye(T, dtype=A.dtype)
    for i in range(T):
        for j in range(T) if generator is None else torch.randperm(T, generator=generator).tolist():
            inner = C[i] @ A[:, j]
            if j != i and inner < 0:  # conflict: remove the part that points against g_j
                C[i, j] -= inner / A[j, j]
    return C.sum(dim=0).to(G.dtype)


def mgda(G: torch.Tensor) -> torch.Tensor:
    """MGDA: Sener & Koltun 2018, "Multi-Task Learning as Multi-Objective Optimization".

    The min-norm point of the convex hull of the task gradients (Desideri
    2012): lam = argmin over the simplex of |lam @ G|^2 = lam^T A lam.
    Guarantee: <d, g_i> >= |d|^2 for every task, so a small step along -d
    lowers every loss; d = 0 exactly at a Pareto-stationary point. On the
    face of tasks S the optimum solves A_SS w = mu 1, sum(w) = 1 (the paper's
    Algorithm 1 is this for two tasks); the faces are solved all at once.
    """
    A = gram(G)
    T = len(A)
    faces, system = _faces(T), _kkt_template(T).clone()  # system: (K, T + 1, T + 1), one per face
    system[:, :T, :T] = torch.where(faces.unsqueeze(2), A, torch.eye(T, dtype=A.dtype))  # w_i = 0 off the face
    w, info = torch.linalg.solve_ex(system, _kkt_rhs(T))  # a singular face gives no candidate (info > 0)
    w = w[:, :T, 0]
    norms = ((w @ A) * w).sum(dim=1).masked_fill((info > 0) | (w < -1e-9).any(dim=1), math.inf)
    best = w[norms.argmin()].clamp(min=0)
    return (best / best.sum()).to(G.dtype)


def cagrad(G: torch.Tensor, c: float = 0.5) -> torch.Tensor:
    """CAGrad: Liu et al. 2021, "Conflict-Averse Gradient Descent for Multi-task Learning", Algorithm 1.

    Among directions within distance c |g0| of the average gradient g0, take
    the one that most improves the worst-off task. Its dual: w = argmin over
    the simplex of F(w) = <g_w, g0> + phi |g_w|, phi = c |g0|, g_w = w @ G;
    then d = g0 + (phi / |g_w|) g_w. Guarantees: c = 0 gives the mean; for
    0 <= c < 1 training converges to a stationary point of the average loss
    (the paper's Theorem 3.2). No 1 / (1 + c^2) rescaling (an option of the
    official code), as in TorchJD. Inside the face of tasks S, grad F = mu 1
    gives w = (mu p - q) / sqrt(disc) with p = A_SS^-1 1, q = A_SS^-1 b
    (b = A 1 / T) and mu the root of s_p mu^2 - 2 s_q mu + t - phi^2 = 0.
    """
    if not (isinstance(c, (int, float)) and math.isfinite(c) and c >= 0):
        raise ValueError(f"c={c!r} is not allowed: CAGrad's c must be a finite number >= 0 (e.g. 0.5)")
    A = gram(G)
    T = len(A)
    b = A.mean(dim=1)  # b_i = <g_i, g0>
    phi = c * A.mean().sqrt()  # c |g0|
    if phi == 0:
        return mean(G)
    faces = _faces(T)
    system = torch.where(faces.unsqueeze(2) & faces.unsqueeze(1), A, torch.eye(T, dtype=A.dtype))  # A_SS, 1 off S
    rhs = torch.stack([faces.to(A.dtype), faces * b], dim=2)  # (K, T, 2): the columns 1_S and b_S
    solution, singular = torch.linalg.solve_ex(system, rhs)
    p, q = solution.unbind(dim=2)  # A_SS^-1 1, A_SS^-1 b (zero off S)
    s_p, s_q, t = p.sum(dim=1), q.sum(dim=1), q @ b
    root = (s_q**2 - s_p * (t - phi**2)).sqrt()
    w = (((s_q + root) / s_p).unsqueeze(1) * p - q) / root.unsqueeze(1)
    F = w @ b + phi * ((w @ A) * w).sum(dim=1).clamp(min=0).sqrt()
    F = F.masked_fill(~((w >= -1e-9).all(dim=1) & ((w.sum(dim=1) - 1).abs() <= 1e-9)), math.inf)
    k = F.argmin()
    if F[k] >= 0 and singular.any():  # linearly dependent gradients: F = 0 where g_w = 0, if 0 is in the hull
        w_min = mgda(G).double()
        if ((w_min @ A) @ w_min).sqrt() <= 1e-12 * phi:  # no direction helps every task; follow the average
            return mean(G)
    g_w_norm = ((w[k] @ A) @ w[k]).sqrt()
    return (1.0 / T + (phi / g_w_norm) * w[k].clamp(min=0)).to(G.dtype)


def upgrad(G: torch.Tensor) -> torch.Tensor:
    """UPGrad: Quinton & Rey 2024, "Jacobian Descent for Multi-Objective Optimization" (TorchJD's default).

    Project each g_i onto the dual cone {x : <g_j, x> >= 0 for all j} (the
    directions that conflict with no task) and average the projections.
    Guarantees: the result conflicts with no task; it is the mean when no pair
    conflicts; for two tasks it is PCGrad / 2. The projection of g_i is
    v @ G with v = argmin v^T A v subject to v >= e_i (the paper's
    Proposition 1). With the tasks S free, the optimum solves (A v)_S = 0 and
    v_i = e_i off S; every S for every i is one batched solve.
    """
    A = gram(G)
    T = len(A)
    faces = torch.cat([torch.zeros(1, T, dtype=torch.bool), _faces(T)]).unsqueeze(0)  # (1, K, T): free tasks
    lower = torch.eye(T, dtype=A.dtype).unsqueeze(1)  # (T, 1, T): the bound e_i of projection i
    system = torch.where(faces.unsqueeze(3), A, torch.eye(T, dtype=A.dtype))  # row k free: (A v)_k = 0
    rhs = torch.where(faces, 0.0, lower).unsqueeze(3)  # free rows: 0; fixed rows: the bound
    v = torch.linalg.solve_ex(system.expand(T, -1, -1, -1), rhs).result[..., 0]  # (T, K, T); singular: no candidate
    scale = A.diagonal().max()
    feasible = (v >= lower - 1e-9).all(dim=2) & ((v @ A) >= -1e-9 * scale).all(dim=2)  # v >= e_i; no conflict
    norms = ((v @ A) * v).sum(dim=2).masked_fill(~feasible, math.inf)
    best = v[torch.arange(T), norms.argmin(dim=1)]  # (T, T): one projection per task
    return best.mean(dim=0).to(G.dtype)


def imtl_g(G: torch.Tensor) -> torch.Tensor:
    """IMTL-G: Liu et al. 2021, "Towards Impartial Multi-task Learning" (gradient part).

    Weights that sum to 1 such that d has the same inner product with every
    task's unit gradient g_i / |g_i|: no task is favoured because of its
    gradient's size. As in TorchJD: v = A^+ |g| (pseudo-inverse of the Gram
    matrix times the norms), lam = v / sum(v); zero weights if sum(v) is 0
    (up to rounding, relative to the size of v).
    """
    A = gram(G)
    v = torch.linalg.pinv(A) @ A.diagonal().sqrt()
    total = v.sum()
    if total.abs() <= 1e-12 * v.abs().sum():
        return torch.zeros(len(A), dtype=G.dtype)
    return (v / total).to(G.dtype)


def nash_mtl(G: torch.Tensor) -> torch.Tensor:
    """Nash-MTL: Navon et al. 2022, "Multi-Task Learning as a Bargaining Game", Algorithm 1.

    The tasks bargain over d = lam @ G. The Nash bargaining solution has
    lam > 0 with (A lam)_i = 1 / lam_i for every task: task i gains
    <g_i, d> = 1 / lam_i, and |d|^2 = T whatever the gradients' size. So a
    small gradient gets a large weight, and d does not change when any g_i is
    multiplied by a positive number; for two tasks d = (u_1 + u_2) / sqrt(1 + cos),
    u_i = g_i / |g_i|. Solved exactly, not with the official code's 20 cvxpy
    steps: lam minimises the convex f = lam^T A lam / 2 - sum(log lam), whose
    gradient is A lam - 1 / lam; damped Newton from lam_i = 1 / |g_i| (f is
    self-concordant: Boyd & Vandenberghe 2004, section 9.6). No clipping of |d|
    (the official code clips it to 1), and as for every method here each head
    gets its own task's gradient (the official code weights it by lam_i). With
    0 in the convex hull of the gradients (g_1 = -g_2, a zero gradient) there
    is no solution: weights 0, d = 0.
    """
    A = gram(G)  # G scaled by s = max |G_ij|: lam for the scaled G, divided by s, is lam for G
    if not (A.diagonal() > 0).all():
        return torch.zeros(len(A), dtype=G.dtype)  # a zero gradient: 0 is in the hull
    lam = A.diagonal().rsqrt()
    for _ in range(NASH_MAX_NEWTON_STEPS):
        gradient = A @ lam - 1 / lam
        step, singular = torch.linalg.solve_ex(A + torch.diag(lam**-2), gradient)  # Hessian^-1 gradient
        decrement = (gradient @ step).clamp(min=0).sqrt()  # Newton decrement: f - min f is about its square / 2
        if singular or not torch.isfinite(decrement):
            break
        lam = lam - step / (1 + decrement) if decrement > 0.25 else lam - step  # damped while far: stays > 0
        if decrement <= 1e-6:  # that last full step squared the error (to rounding)
            break
    if (lam > 0).all() and ((A @ lam) * lam - 1).abs().max() <= NASH_TOLERANCE:  # the bargaining condition
        return (lam / G.abs().max().double()).to(G.dtype)
    return torch.zeros(len(A), dtype=G.dtype)  # no solution: f is unbounded, 0 is (numerically) in the hull


def aligned_mtl(G: torch.Tensor, preference: torch.Tensor | None = None) -> torch.Tensor:
    """Aligned-MTL: Senushkin et al. 2023, "Independent Component Alignment for Multi-Task Learning", Algorithm 1.

    The task gradients are replaced by aligned ones, B G, with
    B = sqrt(s_min) V diag(s)^(-1/2) V^T from the eigendecomposition
    A = V diag(s) V^T of the Gram matrix (s_min its smallest non-zero
    eigenvalue): the aligned gradients are orthogonal and all of length
    sqrt(s_min), so the matrix they form has condition number 1, the paper's
    measure of a stable update. The update is their sum, each weighted by
    `preference` (default 1, as the official code; TorchJD's default is 1/T):
    lam = B @ preference. Eigenvalues at most s_max * T * eps (eps of G's
    dtype) count as 0, as in the official code. If G = 0, B = I (as TorchJD).
    """
    A = gram(G)
    T = len(A)
    w = torch.ones(T, dtype=A.dtype) if preference is None else torch.as_tensor(preference, dtype=A.dtype)
    if w.shape != (T,) or not torch.isfinite(w).all():
        raise ValueError(f"preference must be {T} finite numbers (one per task), got {preference!r}")
    s, V = torch.linalg.eigh(A)
    kept = s > s.max() * T * torch.finfo(G.dtype).eps  # the rank of G, up to G's rounding
    s, V = s[kept], V[:, kept]
    if len(s) == 0:
        return w.to(G.dtype)
    B = (V * (s.min() / s).sqrt()) @ V.T
    return (B @ w).to(G.dtype)


WEIGHTINGS: dict[str, Weighting] = {
    "mean": mean,
    "sum": plain_sum,
    "pcgrad": pcgrad,
    "mgda": mgda,
    "cagrad": cagrad,
    "upgrad": upgrad,
    "imtl_g": imtl_g,
    "nash_mtl": nash_mtl,
    "aligned_mtl": aligned_mtl,
}


def direction(weighting: Weighting, G: torch.Tensor) -> torch.Tensor:
    """The update direction d = lam @ G of a method (D,)."""
    return weighting(G) @ G


@functools.cache
def _faces(T: int) -> torch.Tensor:
    """Every non-empty subset of T tasks as a (2^T - 1, T) bool mask."""
    codes = torch.arange(1, 2**T).unsqueeze(1)
    return (codes >> torch.arange(T)) & 1 == 1


@functools.cache
def _kkt_template(T: int) -> torch.Tensor:
    """MGDA's systems without A: [[., 1_S], [1_S^T, 0]] per face (the multiplier and sum(w) = 1 rows)."""
    faces = _faces(T).double()
    system = torch.zeros(len(faces), T + 1, T + 1, dtype=torch.float64)
    system[:, :T, T] = system[:, T, :T] = faces
    return system


@functools.cache
def _kkt_rhs(T: int) -> torch.Tensor:
    rhs = torch.zeros(2**T - 1, T + 1, 1, dtype=torch.float64)
    rhs[:, T] = 1.0
    return rhs
