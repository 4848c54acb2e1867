"""The playground's grid: a grid run is the run train() gives for its weighting (to CACHED_TOLERANCE),
lookups miss what the grid does not hold, a stopped sweep stores nothing, and old settings are dropped."""

import numpy as np
import pytest

from mtl_teach import weight_grid
from mtl_teach.config import TrainConfig
from mtl_teach.sweep import SweepStopped, sweep
from mtl_teach.train import train
from mtl_teach.weight_grid import WeightGrid, final_point, front_config, grid_pairs, settings_key, slider_values

# A grid run and train() differ only in floating-point rounding (vmap sums in another order): measured
# up to about 2e-7 on the default 300-step config; 1e-5 leaves room for other BLAS builds and longer runs.
CACHED_TOLERANCE = 1e-5


def assert_same_run(cached, expected):
    """The cached History is the run train() records: config, losses, weights, total and metrics."""
    assert cached.config == expected.config and cached.finished and expected.finished
    for name in expected.task_names:
        np.testing.assert_allclose(cached.losses[name], expected.losses[name], rtol=0, atol=CACHED_TOLERANCE)
        assert cached.weights[name] == expected.weights[name]
    np.testing.assert_allclose(cached.total, expected.total, rtol=0, atol=CACHED_TOLERANCE)
    assert cached.metrics == pytest.approx(expected.metrics, abs=CACHED_TOLERANCE)


@pytest.mark.parametrize("strategy", ["weighted_sum", "separate_backward"])
def test_a_grid_run_is_the_run_train_gives_for_that_weighting(strategy):
    config = TrainConfig(strategy=strategy)  # the default 300 steps
    grid = WeightGrid()
    grid.train(config, grid_pairs(config, alpha_values=slider_values(1.0), tie_beta=True))
    for alpha in (0.05, 0.3, 0.85):
        wanted = config.replace(alpha=alpha, beta=round(1 - alpha, 10))
        assert_same_run(grid.history(wanted), train(wanted))


def test_lookups_miss_what_the_grid_does_not_hold():
    config = TrainConfig(steps=30)
    grid = WeightGrid()
    grid.train(config, [(0.5, 0.5), (0.25, 0.5)])
    assert grid.history(config.replace(alpha=0.25)) is not None
    assert grid.history(config.replace(alpha=0.3)) is None  # between grid points: trained live
    assert grid.history(config.replace(alpha=0.25, lr=0.02)) is None  # other settings: another grid
    assert grid.missing(config, [(0.5, 0.5), (0.75, 0.5)]) == [(0.75, 0.5)]
    assert sorted(pair for pair, _ in grid.front(config)) == [(0.25, 0.5), (0.5, 0.5)]


def test_a_diverged_grid_run_is_not_answered_from_the_grid():
    config = TrainConfig(steps=40, optimizer="sgd", lr=10.0)  # diverges
    grid = WeightGrid()
    grid.train(config, [(1.0, 1.0)])
    assert grid.history(config.replace(alpha=1.0, beta=1.0)) is None
    assert grid.front(config) == []


def test_a_stopped_sweep_raises_and_stores_nothing():
    config = TrainConfig(steps=50)
    asked = []

    def stop_at_step_3():
        asked.append(True)
        return len(asked) > 3

    grid = WeightGrid()
    with pytest.raises(SweepStopped, match="stopped at step 3 of 50"):
        grid.train(config, [(0.5, 0.5)], should_stop=stop_at_step_3)
    assert grid.history(config) is None and grid.missing(config, [(0.5, 0.5)]) == [(0.5, 0.5)]


def test_only_the_newest_settings_are_kept(monkeypatch):
    monkeypatch.setattr(weight_grid, "MAX_SETTINGS_KEPT", 2)
    grid = WeightGrid()
    configs = [TrainConfig(steps=10, seed=seed) for seed in range(3)]
    for config in configs:
        grid.train(config, [(0.5, 0.5)])
    assert grid.history(configs[0]) is None  # dropped, the oldest
    assert grid.history(configs[1]) is not None and grid.history(configs[2]) is not None


def test_grid_pairs_follow_the_sliders():
    config = TrainConfig(alpha=0.3, beta=0.6)
    assert slider_values(0.2) == [0.0, 0.05, 0.1, 0.15, 0.2]
    assert grid_pairs(config, alpha_values=[0.0, 0.5]) == [(0.0, 0.6), (0.5, 0.6)]
    assert grid_pairs(config, alpha_values=[0.2, 1.0], tie_beta=True) == [(0.2, 0.8), (1.0, 0.0)]
    assert grid_pairs(config, [0.3], [0.6, 0.0]) == [(0.3, 0.6), (0.3, 0.0)]  # no repeat of the config's own pair
    both_zero = TrainConfig(alpha=0.0, beta=0.5)
    assert (0.0, 0.0) not in grid_pairs(both_zero, beta_values=[0.0, 0.5])  # the config refuses it: left out
    with pytest.raises(ValueError, match="high=-1 is not allowed"):
        slider_values(-1)


def test_other_families_are_shown_against_the_plain_sum():
    assert front_config(TrainConfig(strategy="pcgrad", lr=0.02)) == TrainConfig(strategy="weighted_sum", lr=0.02)
    assert front_config(TrainConfig(strategy="backward_list")).strategy == "backward_list"
    assert settings_key(TrainConfig(alpha=0.1)) == settings_key(TrainConfig(alpha=0.9, beta=0.2))


def test_final_point_is_the_same_measure_for_a_sweep_and_a_history():
    config = TrainConfig(steps=40, alpha=0.3)
    result = sweep(config, weights=[(0.3, 0.5)])
    np.testing.assert_allclose(final_point(result.curves[:, 0, :]), final_point(train(config)), atol=1e-6)
    assert final_point(train(config)).shape == (2,)
