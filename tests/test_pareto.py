"""The Pareto panel: the front is the runs no other run beats, and the current run's dot is drawn where it ended."""

import io

import numpy as np
from PIL import Image

from mtl_teach.pareto import ParetoFigure, non_dominated

POINTS = [((0.0, 1.0), (0.9, 0.1)), ((0.5, 0.5), (0.4, 0.4)), ((0.6, 0.4), (0.5, 0.5)), ((1.0, 0.0), (0.1, 0.9))]


def test_non_dominated_keeps_the_runs_no_other_beats_in_order():
    losses = [loss for _, loss in POINTS]
    assert non_dominated(losses) == [3, 1, 0]  # (0.5, 0.5) is beaten by (0.4, 0.4); sorted by the first loss
    assert non_dominated([(1.0, 1.0), (1.0, 1.0)]) == [0, 1]  # equal points beat neither
    assert non_dominated([]) == []


def test_the_current_dot_moves_without_redrawing_the_front():
    figure = ParetoFigure(("classification", "regression"))
    figure.set_front(POINTS)
    first = figure.render((0.4, 0.4), "alpha=0.5")
    background = figure.background
    second = figure.render((0.1, 0.9), "alpha=1")
    assert figure.background is background  # only the dot and its label were drawn
    assert first != second and Image.open(io.BytesIO(second)).size == (360, 340)
    np.testing.assert_array_equal(figure.current_dot.get_xydata(), [[0.1, 0.9]])
    np.testing.assert_array_equal(figure.front_line.get_xydata(), [[0.1, 0.9], [0.4, 0.4], [0.9, 0.1]])


def test_a_point_off_the_axes_widens_them():
    figure = ParetoFigure(("classification", "regression"))
    figure.set_front(POINTS)
    figure.render(None)
    figure.render((3.0, 0.2))
    x_low, x_high = figure.axes.get_xlim()
    assert x_low < 0.1 and x_high > 3.0


def test_the_axes_are_labelled_in_the_task_colours():
    figure = ParetoFigure(("classification", "regression"))
    assert figure.axes.get_xlabel() == "classification loss" and figure.axes.xaxis.label.get_color() == "#0072B2"
    assert figure.axes.get_ylabel() == "regression loss" and figure.axes.yaxis.label.get_color() == "#D55E00"
