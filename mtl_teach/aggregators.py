"""Gradient methods: turn the T x D matrix of task gradients into one update.

Every function here is pure: `G` in (row i = task i's gradient of the
shared parameters), a direction `d` of shape (D,) out. The optimizer then
treats `d` as the gradient, so a step moves the parameters along -d.

The small optimisation problems inside MGDA, CAGrad and UPGrad live in
task space (T numbers, T is 2 or 3 here), so they are solved on the T x T
Gram matrix `A = G G^T` with plain Python floats.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

Aggregator = Callable[[torch.Tensor], torch.Tensor]


def mean(G: torch.Tensor) -> torch.Tensor:
    """The average gradient: what `weighted_sum` follows, divided by T."""
    _check_matrix(G)
    return G.mean(dim=0)


def plain_sum(G: torch.Tensor) -> torch.Tensor:
    """The summed gradient: exactly what `weighted_sum` follows."""
    _check_matrix(G)
    return G.sum(dim=0)


def pcgrad(G: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """PCGrad: Yu et al. 2020, "Gradient Surgery for Multi-Task Learning", Algorithm 1.

    Each g_i loses its component along every g_j it conflicts with
    (<g_i, g_j> < 0), one j at a time; the projected gradients are summed.
    Guarantees: with two tasks the result never conflicts with either
    gradient; when no pair conflicts it is the plain sum. The paper visits
    the other tasks in random order (pass a seeded `generator`); by default
    they are visited in task order, which is deterministic (and for two
    tasks there is only one order).
    """
    _check_matrix(G)
    T = G.shape[0]
    projected = G.clone()
    for i in range(T):
        order = range(T) if generator is None else torch.randperm(T, generator=generator).tolist()
        for j in order:
            inner = projected[i] @ G[j]
            if j != i and inner < 0:  # conflict: remove the part of g_i that points against g_j
                projected[i] -= inner / (G[j] @ G[j]) * G[j]
    return projected.sum(dim=0)


def mgda(G: torch.Tensor, max_iter: int = 1000, tol: float = 1e-10) -> torch.Tensor:
    """MGDA: Sener & Koltun 2018, "Multi-Task Learning as Multi-Objective Optimization".

    The min-norm point of the convex hull of the task gradients
    (Desideri 2012). Guarantee: <d, g_i> >= |d|^2 for every task i, so a
    small step along -d lowers every loss; d = 0 exactly when some convex
    combination of the gradients is zero (a Pareto-stationary point).
    Solved by Frank-Wolfe with exact line search (the paper's Algorithm 2,
    in its faster pairwise form); for two tasks the first step is already
    the exact closed form (the paper's Algorithm 1).
    """
    _check_matrix(G)
    if _not_finite(G):  # training diverged: pass the NaN on, the loop reports it
        return torch.full_like(G[0], math.nan)
    A = (G @ G.T).tolist()
    w = _min_norm_weights(A, max_iter, tol)
    return torch.tensor(w, dtype=G.dtype, device=G.device) @ G


def cagrad(G: torch.Tensor, c: float = 0.5, max_iter: int = 1000, tol: float = 1e-10) -> torch.Tensor:
    """CAGrad: Liu et al. 2021, "Conflict-Averse Gradient Descent for Multi-task Learning".

    Among directions within distance c * |g0| of the average gradient g0,
    take the one that most improves the worst-off task (maximise
    min_i <g_i, d>). Its dual gives d = g0 + c|g0| / |g_w| * g_w with
    w = argmin over the simplex of <g_w, g0> + c|g0| |g_w| (the paper's
    dual problem, Algorithm 1). Guarantees: c = 0 gives the mean (and
    identical gradients g give (1 + c) g); for 0 <= c < 1 training
    converges to a stationary point of the average loss (the paper's
    convergence theorem). No rescaling by 1/(1 + c^2) (an option in the
    official code), as in TorchJD.
    """
    _check_matrix(G)
    if not (isinstance(c, (int, float)) and math.isfinite(c) and c >= 0):
        raise ValueError(f"c={c!r} is not allowed: CAGrad's c must be a finite number >= 0 (e.g. 0.5)")
    if _not_finite(G):  # training diverged: pass the NaN on, the loop reports it
        return torch.full_like(G[0], math.nan)
    g0 = G.mean(dim=0)
    phi = c * g0.norm().item()  # radius of the ball around g0
    if phi == 0:
        return g0
    A = (G @ G.T).tolist()
    w = _cagrad_weights(A, phi, max_iter, tol)
    g_w = torch.tensor(w, dtype=G.dtype, device=G.device) @ G
    norm = g_w.norm().item()
    if norm <= 1e-12 * phi:  # 0 is in the hull: no direction helps every task; follow the average
        return g0
    return g0 + (phi / norm) * g_w


def upgrad(G: torch.Tensor, max_iter: int = 1000, tol: float = 1e-12) -> torch.Tensor:
    """UPGrad: Quinton & Rey 2024, "Jacobian Descent for Multi-Objective Optimization" (TorchJD's default).

    Project each g_i onto the dual cone {x : <g_j, x> >= 0 for all j} (the
    directions that conflict with no task) and average the projections.
    Guarantees: the result conflicts with no task; it is the mean when no
    pair conflicts; for two tasks it is PCGrad / 2. The projection of g_i
    is G^T v with v = argmin v^T A v subject to v >= e_i (paper Prop. 1),
    solved here by projected coordinate descent.
    """
    _check_matrix(G)
    if _not_finite(G):  # training diverged: pass the NaN on, the loop reports it
        return torch.full_like(G[0], math.nan)
    A = (G @ G.T).tolist()
    T = len(A)
    weights = [0.0] * T
    for i in range(T):
        v = _dual_cone_weights(A, [float(k == i) for k in range(T)], max_iter, tol)
        weights = [total + vk / T for total, vk in zip(weights, v)]
    return torch.tensor(weights, dtype=G.dtype, device=G.device) @ G


def imtl_g(G: torch.Tensor) -> torch.Tensor:
    """IMTL-G: Liu et al. 2021, "Towards Impartial Multi-task Learning" (gradient part).

    Weights that sum to 1 such that d has the same inner product with every
    task's unit gradient g_i / |g_i|: no task is favoured because of its
    gradient's size. As in TorchJD: v = A^+ |g| (pseudo-inverse of the Gram
    matrix times the norms), w = v / sum(v); the zero vector if sum(v) = 0.
    """
    _check_matrix(G)
    if _not_finite(G):  # training diverged: pass the NaN on, the loop reports it
        return torch.full_like(G[0], math.nan)
    A = G @ G.T
    v = torch.linalg.pinv(A) @ A.diagonal().sqrt()
    total = v.sum()
    if total.abs() < 1e-12:
        return torch.zeros_like(G[0])
    return (v / total) @ G


AGGREGATORS: dict[str, Aggregator] = {
    "mean": mean,
    "sum": plain_sum,
    "pcgrad": pcgrad,
    "mgda": mgda,
    "cagrad": cagrad,
    "upgrad": upgrad,
    "imtl_g": imtl_g,
}


# --- small solvers in task space (A is the T x T Gram matrix, as lists) ---


def _min_norm_weights(A: list[list[float]], max_iter: int, tol: float) -> list[float]:
    """Min over the simplex of |G^T w|^2 = w^T A w (MGDA's problem)."""

    def step(w: list[float], Aw: list[float], t: int, s: int) -> float:
        # exact line search: minimise |d + gamma (g_t - g_s)|^2 over gamma in [0, w_s]
        curvature = A[t][t] - 2.0 * A[t][s] + A[s][s]
        return min(w[s], (Aw[s] - Aw[t]) / curvature) if curvature > 0 else w[s]

    scale = max(A[k][k] for k in range(len(A)))
    return _pairwise_frank_wolfe(A, lambda w, Aw: Aw, step, max_iter, tol * scale)


def _cagrad_weights(A: list[list[float]], phi: float, max_iter: int, tol: float) -> list[float]:
    """Min over the simplex of F(w) = <g_w, g0> + phi |g_w| (CAGrad's dual problem)."""
    T = len(A)
    b = [sum(row) / T for row in A]  # b_i = <g_i, g0>

    def gradient(w: list[float], Aw: list[float]) -> list[float]:
        norm = math.sqrt(max(_dot(w, Aw), 0.0))  # |g_w|
        return [bk + (phi * awk / norm if norm > 0 else 0.0) for bk, awk in zip(b, Aw)]

    def step(w: list[float], Aw: list[float], t: int, s: int) -> float:
        # exact line search along g_w + gamma (g_t - g_s), gamma = tau * w_s with tau in [0, 1]
        P, Q = _dot(w, Aw), w[s] * (Aw[t] - Aw[s])
        R = w[s] ** 2 * (A[t][t] - 2.0 * A[t][s] + A[s][s])
        return w[s] * _cagrad_on_segment(w[s] * (b[t] - b[s]), phi, P, Q, R)

    scale = max(A[k][k] for k in range(T))
    return _pairwise_frank_wolfe(A, gradient, step, max_iter, tol * scale)


def _pairwise_frank_wolfe(
    A: list[list[float]],
    gradient: Callable[[list[float], list[float]], list[float]],
    step: Callable[[list[float], list[float], int, int], float],
    max_iter: int,
    tol: float,
) -> list[float]:
    """Minimise a convex function of w over the simplex (Lacoste-Julien & Jaggi 2015).

    Each iteration moves weight from the task s that the current direction
    helps most (largest gradient entry among those with weight) to the task t
    it helps least (smallest entry), by an exact line search. It stops when
    the two entries agree to `tol`: the optimality condition on the simplex.
    """
    T = len(A)
    w = [1.0 / T] * T
    for _ in range(max_iter):
        Aw = _matvec(A, w)
        grad = gradient(w, Aw)
        t = min(range(T), key=grad.__getitem__)
        s = max((k for k in range(T) if w[k] > 0), key=grad.__getitem__)
        if grad[s] - grad[t] <= tol:
            break
        gamma = step(w, Aw, t, s)
        w[t], w[s] = w[t] + gamma, w[s] - gamma
    return w


def _cagrad_on_segment(beta: float, phi: float, P: float, Q: float, R: float) -> float:
    """The tau in [0, 1] minimising beta * tau + phi |p + tau q|.

    With P = |p|^2, Q = <p, q>, R = |q|^2. The function is convex; its
    derivative beta + phi (Q + R tau) / |p + tau q| has one root, found in
    closed form with s = Q + R tau: s = kappa sqrt(D / (R - kappa^2)),
    kappa = -beta / phi, D = PR - Q^2. Outside [0, 1] the nearer end wins.
    """
    kappa = -beta / phi
    if R <= 0 or kappa * kappa >= R:  # the derivative never changes sign
        return 0.0 if beta >= 0 else 1.0
    s = kappa * math.sqrt(max(P * R - Q * Q, 0.0) / (R - kappa * kappa))
    return min(max((s - Q) / R, 0.0), 1.0)


def _dual_cone_weights(A: list[list[float]], u: list[float], max_iter: int, tol: float) -> list[float]:
    """Coordinate descent for min v^T A v subject to v >= u (Hildreth's method)."""
    v = list(u)
    for _ in range(max_iter):
        largest_change = 0.0
        for k in range(len(v)):
            if A[k][k] <= 0:  # a zero gradient constrains nothing
                continue
            new = max(u[k], v[k] - _dot(A[k], v) / A[k][k])
            largest_change = max(largest_change, abs(new - v[k]))
            v[k] = new
        if largest_change <= tol * max(1.0, max(abs(x) for x in v)):
            break
    return v


def _dot(x: list[float], y: list[float]) -> float:
    return sum(a * b for a, b in zip(x, y))


def _matvec(A: list[list[float]], x: list[float]) -> list[float]:
    return [_dot(row, x) for row in A]


def _not_finite(G: torch.Tensor) -> bool:
    return not torch.isfinite(G).all().item()


def _check_matrix(G: torch.Tensor) -> None:
    if not isinstance(G, torch.Tensor) or G.ndim != 2 or G.shape[0] < 1:
        shape = tuple(G.shape) if isinstance(G, torch.Tensor) else type(G).__name__
        raise ValueError(f"G must be a T x D matrix of task gradients (one row per task), got {shape}")
