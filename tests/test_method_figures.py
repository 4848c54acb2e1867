"""method_figures: each method's weights for given task gradients, and the figure that draws them."""

import pytest
import torch
from matplotlib.colors import to_rgba
from matplotlib.quiver import Quiver

from mtl_teach import aggregators, method_figures
from mtl_teach.method_figures import draw_methods, figure_methods, method_weights, settled_weights
from mtl_teach.registry import STRATEGIES, names
from mtl_teach.style import TASK_COLORS, TOTAL_COLOR

G = torch.tensor([[4.0, 0.0], [-1.5, 1.0]], dtype=torch.float64)  # two conflicting gradients
LOSSES = (2.0, 0.5)


def test_figure_methods_are_the_sum_then_every_weighting_and_gradient_method_of_the_registry():
    methods = figure_methods()
    assert methods[0] == "weighted_sum"
    assert methods[1:] == names("weighting") + names("gradient")


@pytest.mark.parametrize("name", names("weighting"))
def test_a_weighting_method_sends_its_reported_weights_times_G_to_the_optimizer(name):
    # The probe measures the direction the method's own step put in .grad: it must be weights @ G.
    weights, direction = settled_weights(name, G, LOSSES, steps=20)
    assert weights.shape == (2,) and torch.isfinite(weights).all()
    torch.testing.assert_close(direction, weights @ G)


@pytest.mark.parametrize("name", names("gradient"))
def test_a_gradient_method_uses_its_aggregator(name):
    weights = method_weights(G, LOSSES, [name])[name]
    torch.testing.assert_close(weights, aggregators.WEIGHTINGS[name](G))
    _, direction = settled_weights(name, G, LOSSES, steps=1)  # its registered step, run on the probe
    torch.testing.assert_close(direction, weights @ G)


def test_a_gradient_method_missing_from_weightings_is_read_back_from_its_step(monkeypatch):
    monkeypatch.setattr(method_figures, "WEIGHTINGS", {})
    weights = method_weights(G, LOSSES, ["pcgrad", "mgda"])
    torch.testing.assert_close(weights["pcgrad"], aggregators.pcgrad(G))
    torch.testing.assert_close(weights["mgda"], aggregators.mgda(G))


def test_the_weights_each_known_method_settles_on():
    weights = method_weights(G, LOSSES, ["weighted_sum", "uncertainty", "dwa", "gradnorm"])
    losses = torch.tensor(LOSSES, dtype=torch.float64)
    torch.testing.assert_close(weights["weighted_sum"], torch.ones(2, dtype=torch.float64))
    torch.testing.assert_close(weights["uncertainty"], 1 / (2 * losses), rtol=1e-3, atol=0)  # exp(s_i) = L_i
    torch.testing.assert_close(weights["dwa"], torch.ones(2, dtype=torch.float64))  # losses that do not fall
    norms = weights["gradnorm"] * G.norm(dim=1)  # GradNorm: equal weighted gradient norms, weights sum to T
    assert abs(norms[0] / norms[1] - 1) < 0.02 and abs(weights["gradnorm"].sum().item() - 2) < 1e-9


def test_three_tasks():
    G3 = torch.tensor([[-1.0, -1.0], [0.0, 1.0], [1.0, 0.0]], dtype=torch.float64)
    weights = method_weights(G3, (1.0, 2.0, 4.0), ["uncertainty", "pcgrad"])
    torch.testing.assert_close(
        weights["uncertainty"], torch.tensor([0.5, 0.25, 0.125], dtype=torch.float64), rtol=1e-3, atol=0
    )
    torch.testing.assert_close(weights["pcgrad"], aggregators.pcgrad(G3))
    fig = draw_methods(G3, (1.0, 2.0, 4.0), ["weighted_sum", "pcgrad"])
    parts = [q for q in fig.axes[1].collections if q.get_gid().startswith("part/")]
    assert len(parts) == 3


def quivers(ax) -> dict[str, Quiver]:
    return {q.get_gid(): q for q in ax.collections if isinstance(q, Quiver)}


def test_draw_methods_draws_one_panel_per_method_with_d_equal_to_weights_at_G():
    methods = figure_methods()
    fig = draw_methods(G, LOSSES, task_names=("classification", "regression"), columns=4)
    weights = method_weights(G, LOSSES)
    panels = [ax for ax in fig.axes if ax.axison]
    assert len(panels) == len(methods) and len(fig.axes) == 4 * -(-len(methods) // 4)  # spare cells switched off
    for ax, name in zip(panels, methods):
        assert ax.get_title().startswith(f"{name} ({STRATEGIES[name].family})")
        arrows = quivers(ax)
        d = arrows["direction"]
        torch.testing.assert_close(torch.tensor([d.U[0], d.V[0]], dtype=torch.float64), weights[name] @ G)
        assert to_rgba(d.get_facecolor()[0]) == to_rgba(TOTAL_COLOR)
        tip = torch.zeros(2, dtype=torch.float64)
        for i, task in enumerate(("classification", "regression")):
            part, g = arrows[f"part/{task}"], arrows[f"g/{task}"]
            torch.testing.assert_close(torch.tensor(part.X.tolist() + part.Y.tolist(), dtype=torch.float64), tip)
            part_vector = torch.tensor([part.U[0], part.V[0]], dtype=torch.float64)
            torch.testing.assert_close(part_vector, weights[name][i] * G[i])  # w_i g_i, tip to tail
            tip = tip + part_vector
            torch.testing.assert_close(torch.tensor([g.U[0], g.V[0]], dtype=torch.float64), G[i])
            assert to_rgba(part.get_facecolor()[0]) == to_rgba(TASK_COLORS[i])  # each task keeps its colour
            assert to_rgba(g.get_facecolor()[0]) == to_rgba(TASK_COLORS[i], 0.3)
        torch.testing.assert_close(tip, weights[name] @ G)  # the chain ends where d ends
        assert ax.get_legend() is None
    assert len(fig.legends) == 1 and fig.get_facecolor() == to_rgba("white")


def test_draw_methods_can_reuse_weights_computed_before():
    weights = {"mgda": aggregators.mgda(G), "my weights": torch.tensor([0.5, 2.0])}
    fig = draw_methods(G, weights=weights)
    assert [ax.get_title().split("\n")[0] for ax in fig.axes] == ["mgda (gradient)", "my weights"]
    for ax, w in zip(fig.axes, weights.values()):
        d = quivers(ax)["direction"]
        torch.testing.assert_close(torch.tensor([d.U[0], d.V[0]], dtype=torch.float64), w.double() @ G)
    with pytest.raises(ValueError, match="one weight per task"):
        draw_methods(G, weights={"mgda": torch.ones(3)})


def test_every_arrow_fits_its_panel():
    fig = draw_methods(G, LOSSES, ["weighted_sum", "mgda", "pcgrad"])
    for ax in fig.axes:
        (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
        for q in quivers(ax).values():
            for x, y in ((q.X[0], q.Y[0]), (q.X[0] + q.U[0], q.Y[0] + q.V[0])):
                assert x0 < x < x1 and y0 < y < y1


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: method_weights(torch.ones(3)), "T x D matrix"),
        (lambda: method_weights(torch.ones(1, 2)), "T >= 2"),
        (lambda: method_weights(G, (1.0,)), "2 positive finite numbers"),
        (lambda: method_weights(G, (1.0, 0.0)), "2 positive finite numbers"),
        (lambda: method_weights(G.clone().fill_(float("nan"))), "NaN"),
        (lambda: method_weights(G, methods=["adam"]), "'adam' is not in the registry"),
        (lambda: settled_weights("dwa", G, LOSSES, steps=0), "steps=0"),
        (lambda: method_weights(G, methods=["alternating_steps"]), "no single direction"),
        (lambda: draw_methods(torch.ones(2, 3)), "T x 2"),
    ],
)
def test_bad_input_gets_a_clear_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()
