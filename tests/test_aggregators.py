"""Properties of the gradient methods (TorchJD-style), and cross-checks against TorchJD.

Each method returns task weights; its direction is `weights @ G`. G is a T x D
matrix of task gradients, float64 unless said otherwise, drawn from seeded
generators so every case is reproducible.
"""

import itertools
import math

import numpy as np
import pytest
import torch
from scipy.optimize import minimize
from torchjd import aggregation as jd
from torchjd.linalg import QuadprogProjector

from mtl_teach import aggregators as agg

SEEDS = range(25)
SHAPES = [(2, 3), (2, 10), (3, 4), (3, 10), (5, 8)]
ORDER_INVARIANT = ["mean", "sum", "mgda", "cagrad", "upgrad", "imtl_g", "nash_mtl", "aligned_mtl"]
# d(s G) = s^DEGREE d(G): every method is linear under scaling but Nash-MTL, whose d does not change (|d|^2 = T).
DEGREE = {"nash_mtl": 0}
METHODS = list(agg.WEIGHTINGS)


def direction(name_or_method, G: torch.Tensor, **kwargs) -> torch.Tensor:
    """The update direction of a method: its task weights applied to G."""
    method = agg.WEIGHTINGS[name_or_method] if isinstance(name_or_method, str) else name_or_method
    return method(G, **kwargs) @ G


def random_G(seed: int, T: int, D: int) -> torch.Tensor:
    return torch.randn(T, D, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def conflicting_pair(seed: int, D: int = 5) -> torch.Tensor:
    """Two gradients with a negative inner product (different norms, random directions)."""
    G = random_G(seed, 2, D)
    if G[0] @ G[1] > 0:
        G[1] = -G[1]
    return G * torch.tensor([[1.0], [3.0]], dtype=torch.float64)


def agreeing(seed: int, T: int, D: int) -> torch.Tensor:
    """T gradients with all pairwise inner products positive (all entries positive)."""
    return random_G(seed, T, D).abs() + 0.1


def all_cases():
    return [(seed, T, D) for seed in SEEDS for T, D in SHAPES]


# --- PCGrad ---


def test_pcgrad_matches_a_hand_computed_example():
    G = torch.tensor([[1.0, 0.0], [-1.0, 1.0]], dtype=torch.float64)  # <g1, g2> = -1
    # g1 - (-1 / |g2|^2) g2 = (0.5, 0.5);  g2 - (-1 / |g1|^2) g1 = (0, 1)
    torch.testing.assert_close(direction(agg.pcgrad, G), torch.tensor([0.5, 1.5], dtype=torch.float64))


@pytest.mark.parametrize("seed", SEEDS)
def test_pcgrad_result_never_conflicts_with_either_of_two_tasks(seed):
    G = conflicting_pair(seed)
    assert G[0] @ G[1] < 0  # the case is a real conflict
    d = direction(agg.pcgrad, G)
    assert (G @ d >= -1e-12 * G.norm() ** 2).all()


@pytest.mark.parametrize("seed, T, D", all_cases()[::3])
def test_pcgrad_is_the_plain_sum_when_no_pair_conflicts(seed, T, D):
    G = agreeing(seed, T, D)
    assert torch.equal(agg.pcgrad(G), torch.ones(T, dtype=G.dtype))  # nothing projected: weights exactly 1


def test_pcgrad_random_order_is_reproducible_with_a_seeded_generator():
    G = random_G(1, 5, 8)
    first = direction(agg.pcgrad, G, generator=torch.Generator().manual_seed(3))
    again = direction(agg.pcgrad, G, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(first, again, rtol=0, atol=0)
    # Some seed visits the tasks in another order and lands elsewhere (order matters for T > 2).
    others = [direction(agg.pcgrad, G, generator=torch.Generator().manual_seed(s)) for s in range(10)]
    assert max((o - direction(agg.pcgrad, G)).abs().max().item() for o in others) > 1e-6


# --- MGDA ---


@pytest.mark.parametrize("seed, T, D", all_cases())
def test_mgda_is_the_min_norm_point_of_the_convex_hull(seed, T, D):
    G = random_G(seed, T, D)
    d = direction(agg.mgda, G)
    # Optimality on the hull: every g_i lies beyond the plane through d orthogonal to d.
    assert ((G @ d) >= d @ d - 1e-9 * G.norm() ** 2).all()
    # d is in the hull: d = G^T w with w >= 0, sum w = 1 (solve with the extra row of ones).
    system = torch.cat([G.T, torch.ones(1, T, dtype=G.dtype)])
    w = torch.linalg.lstsq(system, torch.cat([d, torch.ones(1, dtype=G.dtype)])).solution
    if T <= D:  # w is unique
        assert (w >= -1e-8).all()
        torch.testing.assert_close(system @ w, torch.cat([d, torch.ones(1, dtype=G.dtype)]))


@pytest.mark.parametrize("seed", SEEDS)
def test_mgda_two_tasks_equals_a_brute_force_search_over_the_segment(seed):
    G = conflicting_pair(seed)
    gamma = torch.linspace(0, 1, 200_001, dtype=torch.float64).unsqueeze(1)
    norms = (gamma * G[0] + (1 - gamma) * G[1]).norm(dim=1)
    best = gamma[norms.argmin()].item() * G[0] + (1 - gamma[norms.argmin()].item()) * G[1]
    d = direction(agg.mgda, G)
    assert d.norm() <= norms.min() + 1e-12  # never worse than any grid point
    torch.testing.assert_close(d, best, atol=1e-4 * G.norm().item(), rtol=0)  # grid spacing 5e-6


def test_mgda_is_zero_when_zero_is_in_the_hull_and_g_when_all_agree():
    opposed = torch.tensor([[1.0, 2.0], [-2.0, -4.0]], dtype=torch.float64)
    torch.testing.assert_close(direction(agg.mgda, opposed), torch.zeros(2, dtype=torch.float64))
    same = torch.tensor([[1.0, 2.0], [1.0, 2.0], [1.0, 2.0]], dtype=torch.float64)
    torch.testing.assert_close(direction(agg.mgda, same), same[0])


# --- CAGrad ---


def cagrad_reference(G: torch.Tensor, c: float) -> torch.Tensor:
    """The official CAGrad code's recipe (scipy SLSQP on the dual), without rescaling."""
    A = (G @ G.T).numpy()
    T = len(A)
    phi = c * math.sqrt(A.mean())  # c * |g0|
    objective = lambda x: x @ A.mean(axis=1) + phi * np.sqrt(x @ A @ x)  # noqa: E731
    constraint = {"type": "eq", "fun": lambda x: 1 - x.sum()}
    res = minimize(objective, np.ones(T) / T, bounds=[(0, 1)] * T, constraints=constraint, tol=1e-14)
    g_w = torch.tensor(res.x) @ G
    return G.mean(dim=0) + phi / g_w.norm() * g_w


@pytest.mark.parametrize("seed, T, D", all_cases()[::2])
def test_cagrad_matches_the_official_algorithm(seed, T, D):
    G = random_G(seed, T, D)
    torch.testing.assert_close(
        direction(agg.cagrad, G, c=0.5), cagrad_reference(G, 0.5), atol=1e-5 * G.norm().item(), rtol=0
    )


@pytest.mark.parametrize("seed, T, D", all_cases()[::2])
def test_cagrad_is_the_best_direction_for_the_worst_task_within_its_ball(seed, T, D):
    G, c = random_G(seed, T, D), 0.5
    g0 = G.mean(dim=0)
    d = direction(agg.cagrad, G, c=c)
    torch.testing.assert_close((d - g0).norm(), c * g0.norm())  # on the ball's surface
    # No other point of the ball does better for the worst-off task.
    gen = torch.Generator().manual_seed(seed)
    u = torch.randn(5000, D, generator=gen, dtype=torch.float64)
    radius = c * g0.norm() * torch.rand(5000, 1, generator=gen, dtype=torch.float64) ** (1 / D)
    points = g0 + radius * u / u.norm(dim=1, keepdim=True)
    assert (G @ d).min() >= (points @ G.T).min(dim=1).values.max() - 1e-12


@pytest.mark.parametrize("seed, T, D", all_cases()[::3])
def test_cagrad_with_c_zero_is_the_mean_and_large_c_points_like_mgda(seed, T, D):
    G = random_G(seed, T, D)
    assert torch.equal(agg.cagrad(G, c=0.0), torch.full((T,), 1 / T, dtype=G.dtype))  # exactly the mean
    far = direction(agg.cagrad, G, c=1e6)
    assert torch.nn.functional.cosine_similarity(far, direction(agg.mgda, G), dim=0) > 1 - 1e-6


def test_cagrad_rejects_a_negative_c():
    with pytest.raises(ValueError, match=r"c=-0\.5 is not allowed"):
        direction(agg.cagrad, random_G(0, 2, 3), c=-0.5)


# --- UPGrad and IMTL-G ---


@pytest.mark.parametrize("seed, T, D", all_cases())
def test_upgrad_and_mgda_never_conflict_with_any_task(seed, T, D):
    G = random_G(seed, T, D)
    for method in (agg.upgrad, agg.mgda):
        assert (G @ direction(method, G) >= -1e-9 * G.norm() ** 2).all(), method.__name__


@pytest.mark.parametrize("seed", SEEDS)
def test_upgrad_for_two_tasks_is_half_of_pcgrad(seed):
    G = conflicting_pair(seed)
    torch.testing.assert_close(direction(agg.upgrad, G), direction(agg.pcgrad, G) / 2)


@pytest.mark.parametrize("seed, T, D", all_cases()[::3])
def test_upgrad_is_the_mean_when_no_pair_conflicts(seed, T, D):
    G = agreeing(seed, T, D)
    torch.testing.assert_close(direction(agg.upgrad, G), G.mean(dim=0))


@pytest.mark.parametrize("seed, T, D", all_cases())
def test_imtl_g_projects_equally_on_every_unit_task_gradient(seed, T, D):
    G = random_G(seed, T, D)
    d = direction(agg.imtl_g, G)
    projections = (G / G.norm(dim=1, keepdim=True)) @ d
    torch.testing.assert_close(projections, projections[0].expand(T))
    w = torch.linalg.lstsq(G.T, d.unsqueeze(1)).solution.squeeze(1)  # d = G^T w
    torch.testing.assert_close(w.sum(), torch.tensor(1.0, dtype=G.dtype))


# --- Nash-MTL ---


@pytest.mark.parametrize("seed, T, D", all_cases())
def test_nash_mtl_meets_the_bargaining_condition(seed, T, D):
    """At its solution every weight is positive and lam_i (G G^T lam)_i = 1: each task gains <g_i, d> = 1 / lam_i."""
    G = random_G(seed, T, D)
    lam = agg.nash_mtl(G)
    assert (lam > 0).all()
    torch.testing.assert_close(lam * (G @ G.T @ lam), torch.ones(T, dtype=G.dtype), rtol=0, atol=1e-9)
    d = lam @ G
    torch.testing.assert_close(d @ d, torch.tensor(float(T), dtype=G.dtype))  # |d|^2 = sum_i lam_i <g_i, d> = T
    assert (G @ d > 0).all()  # every task gains: d conflicts with none


@pytest.mark.parametrize("seed", SEEDS)
def test_nash_mtl_for_two_tasks_is_the_sum_of_unit_gradients_rescaled(seed):
    G = random_G(seed, 2, 5)
    u = G / G.norm(dim=1, keepdim=True)
    cos = u[0] @ u[1]
    torch.testing.assert_close(direction("nash_mtl", G), (u[0] + u[1]) / (1 + cos).sqrt())


@pytest.mark.parametrize("seed, T, D", all_cases()[::3])
def test_nash_mtl_ignores_the_scale_of_each_task_gradient(seed, T, D):
    """The bargaining solution is invariant to rescaling each player's utility: g_i -> c_i g_i leaves d as it is."""
    G = random_G(seed, T, D)
    c = torch.logspace(-6, 6, T, dtype=G.dtype)[torch.randperm(T, generator=torch.Generator().manual_seed(seed))]
    torch.testing.assert_close(direction("nash_mtl", c.unsqueeze(1) * G), direction("nash_mtl", G))


@pytest.mark.parametrize("T, D", [(3, 2), (4, 2), (6, 3)])
def test_nash_mtl_has_a_solution_exactly_when_zero_is_outside_the_hull(T, D):
    """With more tasks than dimensions, 0 is often a convex combination of the gradients (MGDA's d = 0): then
    f(lam) = lam^T A lam / 2 - sum(log lam) is unbounded below, there is no bargaining solution: weights 0."""
    outcomes = set()
    for seed in range(60):
        G = random_G(seed, T, D)
        lam, zero_in_hull = agg.nash_mtl(G), direction("mgda", G).norm() < 1e-9 * G.norm()
        if zero_in_hull:
            assert torch.equal(lam, torch.zeros(T, dtype=G.dtype))
        else:  # near-degenerate cases: to the solver's stated tolerance
            torch.testing.assert_close(
                lam * (G @ G.T @ lam), torch.ones(T, dtype=G.dtype), rtol=0, atol=agg.NASH_TOLERANCE
            )
        outcomes.add(bool(zero_in_hull))
    assert outcomes == {True, False}  # both cases were met


def test_nash_mtl_without_a_solution_gives_zero_weights():
    opposed = torch.tensor([[1.0, 2.0], [-2.0, -4.0]], dtype=torch.float64)
    with_zero = torch.tensor([[1.0, 2.0], [0.0, 0.0]], dtype=torch.float64)
    for G in (opposed, with_zero):
        assert torch.equal(agg.nash_mtl(G), torch.zeros(2, dtype=torch.float64))


def test_nash_mtl_nearly_opposed_gradients_get_large_weights_and_still_meet_the_condition():
    """cos = -1 + 5e-9: lam = 1 / (|g| sqrt(1 + cos)), about 1.4e4, found in a few dozen Newton steps."""
    G = torch.tensor([[1.0, 0.0], [-1.0, 1e-4]], dtype=torch.float64)
    lam = agg.nash_mtl(G)
    u = G / G.norm(dim=1, keepdim=True)
    torch.testing.assert_close(lam * G.norm(dim=1), (1 + u[0] @ u[1]).rsqrt().expand(2), rtol=1e-6, atol=0)
    assert lam.min() > 1e4


CVXPY_NOT_DPP = "ignore:You are solving a parameterized problem that is not DPP"  # cvxpy's note on speed


@pytest.mark.filterwarnings(CVXPY_NOT_DPP)
@pytest.mark.parametrize("seed, T, D", all_cases())
def test_nash_mtl_agrees_with_torchjd_where_its_solver_succeeds(seed, T, D):
    """TorchJD's NashMTL ports the official code: 20 convex-concave steps with cvxpy/ECOS, starting from weights 1.
    Where that meets the bargaining condition to 1e-6, the weights agree to 1e-6 (relative); where its solver
    gives up (it then returns its starting weights: 7 of these 125 cases), ours still meets the condition."""
    G = random_G(seed, T, D)
    ours = agg.nash_mtl(G)
    theirs = jd.NashMTL(n_tasks=T, max_norm=0.0).weighting(G)  # max_norm=0: no clipping of |d|, as ours
    A = G @ G.T
    if ((theirs * (A @ theirs)) - 1).abs().max() <= 1e-6:
        torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=0)
    else:
        torch.testing.assert_close(ours * (A @ ours), torch.ones(T, dtype=G.dtype), rtol=0, atol=1e-9)


@pytest.mark.filterwarnings(CVXPY_NOT_DPP)
def test_nash_mtl_cross_check_meets_both_branches():
    """The TorchJD comparison above is not vacuous: most cases agree, and the solver really does give up sometimes."""
    results = []
    for seed, T, D in all_cases():
        G = random_G(seed, T, D)
        theirs = jd.NashMTL(n_tasks=T, max_norm=0.0).weighting(G)
        results.append(bool(((theirs * (G @ G.T @ theirs)) - 1).abs().max() <= 1e-6))
    assert sum(results) >= 100 and not all(results)


# --- Aligned-MTL ---


def alignment_matrix(G: torch.Tensor) -> torch.Tensor:
    """Aligned-MTL's B, column by column: the weights for a preference that picks one task."""
    T = len(G)
    return torch.stack([agg.aligned_mtl(G, preference=torch.eye(T, dtype=G.dtype)[i]) for i in range(T)], dim=1)


@pytest.mark.parametrize("seed, T, D", all_cases())
def test_aligned_mtl_aligned_gradients_are_orthogonal_with_equal_norms(seed, T, D):
    """B G has Gram matrix s_min I: orthogonal rows of length sqrt(s_min), a condition number of 1 (T <= D here)."""
    G = random_G(seed, T, D)
    aligned = alignment_matrix(G) @ G
    s_min = torch.linalg.eigvalsh(G @ G.T).min()
    torch.testing.assert_close(aligned @ aligned.T, s_min * torch.eye(T, dtype=G.dtype), rtol=0, atol=1e-9 * s_min)
    torch.testing.assert_close(torch.linalg.cond(aligned @ aligned.T), torch.tensor(1.0, dtype=G.dtype))
    torch.testing.assert_close(direction("aligned_mtl", G), aligned.sum(dim=0))  # the update: their sum


@pytest.mark.parametrize("T, D", [(3, 2), (5, 3)])
def test_aligned_mtl_with_more_tasks_than_dimensions_aligns_within_the_span(T, D):
    """A has rank D < T: B G has Gram matrix s_min P, P the projection on the range of A (s_min: smallest non-zero)."""
    G = random_G(1, T, D)
    s, V = torch.linalg.eigh(G @ G.T)
    kept = V[:, -D:]  # the D non-zero eigenvalues are the largest
    aligned = alignment_matrix(G) @ G
    torch.testing.assert_close(aligned @ aligned.T, s[-D] * kept @ kept.T, rtol=0, atol=1e-9 * s[-D])


def test_aligned_mtl_preference_must_be_one_number_per_task():
    with pytest.raises(ValueError, match="preference must be 2 finite numbers"):
        agg.aligned_mtl(random_G(0, 2, 3), preference=torch.ones(3))


@pytest.mark.parametrize("seed, T, D", all_cases()[::2])
def test_aligned_mtl_agrees_with_torchjd(seed, T, D):
    """TorchJD's AlignedMTL averages the aligned gradients by default; with preference 1 per task it is the sum."""
    G = random_G(seed, T, D)
    theirs = jd.AlignedMTL(pref_vector=torch.ones(T, dtype=G.dtype))(G)
    torch.testing.assert_close(direction("aligned_mtl", G), theirs, atol=1e-9, rtol=1e-9)
    torch.testing.assert_close(direction("aligned_mtl", G) / T, jd.AlignedMTL()(G), atol=1e-9, rtol=1e-9)


# --- properties shared by several methods ---


ORDER_CASES = [(name, case) for name in ORDER_INVARIANT for case in all_cases()[::4]]
# PCGrad with T > 2 depends on the order of its projections (see the random-order test).
ORDER_CASES += [("pcgrad", case) for case in all_cases() if case[1] == 2]


@pytest.mark.parametrize("name, case", ORDER_CASES)
def test_invariant_to_task_order(name, case):
    seed, T, D = case
    G = random_G(seed, T, D)
    for perm in itertools.islice(itertools.permutations(range(T)), 6):
        torch.testing.assert_close(direction(name, G[list(perm)]), direction(name, G), atol=1e-9, rtol=1e-9)


@pytest.mark.parametrize("name", METHODS)
@pytest.mark.parametrize("scale", [1e-3, 7.0])
def test_scaling_all_gradients_scales_the_result(name, scale):
    G, factor = random_G(4, 3, 6), scale ** DEGREE.get(name, 1)
    torch.testing.assert_close(direction(name, scale * G), factor * direction(name, G), atol=1e-9 * factor, rtol=1e-7)


@pytest.mark.parametrize("name", METHODS)
def test_identical_task_gradients_give_the_mean_or_the_sum(name):
    g = random_G(5, 1, 6)[0]
    G = g.repeat(3, 1)
    expected = {"sum": 3 * g, "pcgrad": 3 * g, "cagrad": 1.5 * g, "aligned_mtl": 3 * g}.get(
        name, g
    )  # CAGrad: (1 + c) g
    if name == "nash_mtl":  # lam_i (A lam)_i = 3 lam_i^2 |g|^2 = 1
        expected = math.sqrt(3) * g / g.norm()
    torch.testing.assert_close(direction(name, G), expected)


@pytest.mark.parametrize("name", METHODS)
@pytest.mark.parametrize("bad", [torch.zeros(4), torch.zeros(0, 3), torch.zeros(2, 2, 2)])
def test_a_non_matrix_input_is_rejected_naming_its_shape(name, bad):
    with pytest.raises(ValueError, match=r"T x D matrix .* got \(" + ", ".join(map(str, bad.shape))):
        direction(name, bad)


@pytest.mark.parametrize("name", METHODS)
@pytest.mark.parametrize("bad_value", [math.nan, math.inf, -math.inf])
def test_a_non_finite_gradient_is_refused_with_a_clear_error(name, bad_value):
    """The training step checks G first and reports divergence; called directly, a method says what is wrong."""
    G = torch.tensor([[bad_value, 1.0], [1.0, 2.0]], dtype=torch.float64)
    with pytest.raises(ValueError, match="NaN or infinite entries"):
        agg.WEIGHTINGS[name](G)


@pytest.mark.parametrize("name", METHODS)
def test_an_integer_matrix_is_refused_naming_its_dtype(name):
    with pytest.raises(ValueError, match="dtype torch.int64"):
        agg.WEIGHTINGS[name](torch.tensor([[1, 0], [-1, 1]]))


# --- cross-checks against TorchJD 0.18 on random matrices ---

TORCHJD = {
    "mean": jd.Mean,
    "sum": jd.Sum,
    "imtl_g": jd.IMTLG,
    # Default projector normalises G and adds 1e-4 to the diagonal; without them it solves the same QP exactly.
    "upgrad": lambda: jd.UPGrad(projector=QuadprogProjector(norm_eps=0.0, reg_eps=0.0)),
}


@pytest.mark.parametrize("c", [0.1, 0.5, 0.9])
@pytest.mark.parametrize("seed, T, D", all_cases()[::2])
def test_cagrad_agrees_with_torchjd_and_is_never_worse(c, seed, T, D):
    """TorchJD solves CAGrad's dual with cvxpy (Clarabel, an interior-point solver, to about 1e-4 here):
    the two directions agree to that precision, and ours serves the worst-off task at least as well."""
    G = random_G(seed, T, D)
    ours, theirs = direction(agg.cagrad, G, c=c), jd.CAGrad(c=c, norm_eps=0.0)(G)
    torch.testing.assert_close(ours, theirs, atol=2e-4 * G.norm().item(), rtol=0)
    assert (G @ ours).min() >= (G @ theirs).min() - 1e-12


@pytest.mark.parametrize("name", list(TORCHJD))
@pytest.mark.parametrize("seed, T, D", all_cases()[::2])
def test_agrees_with_torchjd(name, seed, T, D):
    G = random_G(seed, T, D)
    torch.testing.assert_close(direction(name, G), TORCHJD[name]()(G), atol=1e-9, rtol=1e-9)


@pytest.mark.parametrize("seed, T, D", all_cases()[::2])
def test_pcgrad_random_order_agrees_with_torchjd(seed, T, D):
    """TorchJD draws its orders from torch's global generator: seed both alike."""
    G = random_G(seed, T, D)
    torch.manual_seed(seed)
    theirs = jd.PCGrad()(G)
    ours = direction(agg.pcgrad, G, generator=torch.Generator().manual_seed(seed))
    torch.testing.assert_close(ours, theirs, atol=1e-9, rtol=1e-9)


@pytest.mark.parametrize("seed, T, D", all_cases()[::2])
def test_mgda_agrees_with_torchjd_and_is_never_longer(seed, T, D):
    """TorchJD runs plain Frank-Wolfe (slow to converge for T > 2): ours is at least as short."""
    G = random_G(seed, T, D)
    theirs = jd.MGDA(epsilon=1e-12, max_iters=2000)(G)
    ours = direction(agg.mgda, G)
    assert ours.norm() <= theirs.norm() + 1e-12
    tol = 1e-9 if T == 2 else 1e-2  # exact for two tasks
    torch.testing.assert_close(ours, theirs, atol=tol * G.norm().item(), rtol=0)


# --- edge cases every method must survive (TorchJD's property-test style) ---


@pytest.mark.parametrize("name", METHODS)
@pytest.mark.parametrize("T, D", [(1, 4), (2, 3), (3, 5)])
def test_all_zero_gradients_give_a_zero_direction(name, T, D):
    G = torch.zeros(T, D, dtype=torch.float64)
    weights = agg.WEIGHTINGS[name](G)
    assert weights.shape == (T,) and torch.isfinite(weights).all()
    assert torch.equal(weights @ G, torch.zeros(D, dtype=torch.float64))


@pytest.mark.parametrize("name", METHODS)
def test_a_single_task_gets_its_own_gradient_back(name):
    g = random_G(7, 1, 6)
    expected = {"cagrad": 1.5, "nash_mtl": 1 / g.norm()}.get(name, 1.0)  # CAGrad: (1 + c) g; Nash-MTL: lam^2 |g|^2 = 1
    torch.testing.assert_close(direction(name, g), expected * g[0], rtol=1e-12, atol=0)


@pytest.mark.parametrize("name", METHODS)
@pytest.mark.parametrize("scale", [0.0, 1e-20, 1e-12, 1e-3, 7.0, 1e6, 1e12, 1e15, 1e20])
def test_weights_do_not_change_when_all_gradients_are_scaled(name, scale):
    """Each method is linear under scaling: weights(s G) = weights(G), so d(s G) = s d(G); at s = 0, d = 0.
    Nash-MTL's weights are divided by s instead (DEGREE 0): its d stays the same."""
    G = random_G(4, 3, 6)
    if name == "pcgrad":
        G[1] = -G[1]  # make sure some pair conflicts, so PCGrad projects
    weights, scaled = agg.WEIGHTINGS[name](G), agg.WEIGHTINGS[name](scale * G)
    if scale == 0.0:
        assert torch.equal(scaled @ (scale * G), torch.zeros(6, dtype=torch.float64))
    else:
        factor = scale ** (DEGREE.get(name, 1) - 1)
        torch.testing.assert_close(scaled, factor * weights, rtol=1e-9, atol=1e-12 * factor)
        assert torch.isfinite(scaled @ (scale * G)).all()


@pytest.mark.parametrize("name", ["imtl_g", "mgda", "upgrad", "cagrad"])
def test_float32_gradients_too_large_for_a_float32_gram_matrix_still_work(name):
    """|g| ~ 1e20 overflows G @ G.T in float32 (max ~3.4e38); the methods work on G scaled down."""
    G = (random_G(2, 2, 8) * 1e20).float()
    assert not torch.isfinite(G @ G.T).all()  # the naive Gram matrix really overflows
    weights = agg.WEIGHTINGS[name](G)
    torch.testing.assert_close(weights, agg.WEIGHTINGS[name](G.double() / 1e20).float(), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name", METHODS)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_low_precision_gradients_give_weights_in_their_dtype(name, dtype):
    G = random_G(3, 2, 5)
    weights = agg.WEIGHTINGS[name](G.to(dtype))
    assert weights.dtype == dtype
    reference = agg.WEIGHTINGS[name](G.to(dtype).double())  # the same rounded numbers, solved in float64
    torch.testing.assert_close(weights.double(), reference, rtol=1e-2, atol=1e-2)


@pytest.mark.parametrize("T, D", [(3, 1), (3, 2), (4, 2), (5, 3), (6, 4)])
@pytest.mark.parametrize("seed", range(40))
def test_upgrad_and_mgda_never_conflict_even_with_more_tasks_than_dimensions(T, D, seed):
    """With D < T the Gram matrix is singular; the exact solvers still find directions that
    conflict with no task, to 1e-9 of the scale of G (the stated tolerance)."""
    G = random_G(seed, T, D)
    for name in ("upgrad", "mgda"):
        d = direction(name, G)
        assert (G @ d >= -1e-9 * G.norm() ** 2).all(), (name, (G @ d).min().item())


def test_pcgrad_with_three_tasks_can_conflict_with_one_of_them():
    """PCGrad's guarantee is for two tasks; with three its sum can point against a task gradient."""
    conflicting = [s for s in range(200) if (random_G(s, 3, 2) @ direction("pcgrad", random_G(s, 3, 2))).min() < 0]
    assert len(conflicting) > 0
    G = random_G(conflicting[0], 3, 2)
    assert (G @ direction("pcgrad", G)).min() < -1e-3 * G.norm() ** 2  # by a clear margin, not rounding


def test_too_many_tasks_are_refused_with_the_limit():
    with pytest.raises(ValueError, match="13 tasks.*T <= 12"):
        agg.mgda(torch.randn(13, 4, dtype=torch.float64))


def test_cagrad_when_zero_is_in_the_hull_follows_the_average():
    """g1 = -g2: no direction helps both; CAGrad's dual optimum is at g_w = 0 (F = 0), and the mean is
    then a best direction for the worst task inside the ball (every d has min_i <g_i, d> <= 0 = the mean's)."""
    G = torch.tensor([[1.0, 0.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=torch.float64)
    torch.testing.assert_close(agg.cagrad(G, c=0.5), torch.full((3,), 1 / 3, dtype=torch.float64))
    assert (G @ direction("cagrad", G)).min() == 0.0
