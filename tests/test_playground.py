"""The playground, driven from Python: controls retrain, buttons act, errors land in
the status line, stale runs are cancelled, and the shown frame is the last run's."""

import base64
import io
import threading
import time

import numpy as np
import pytest
import torch
from PIL import Image

from mtl_teach import playground as playground_module
from mtl_teach.config import ConfigError, TrainConfig
from mtl_teach.i18n import set_language
from mtl_teach.live import TOTAL
from mtl_teach.playground import CONTROLS, panel_series, playground
from mtl_teach.registry import names
from mtl_teach.train import one_torch_thread, train
from mtl_teach.weight_grid import final_point


def wait_until(predicate, timeout=120.0):
    """Poll `predicate` until it holds (generous timeout: the test machine is small and shared)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.005)


def assert_shows(pg, history):
    """The frame on screen and its status belong to `history`."""
    assert pg.history is history
    drawn = pg.curves.figure.line_data()
    for name, losses in history.losses.items():
        np.testing.assert_array_equal(drawn[name], losses)
    np.testing.assert_array_equal(drawn[TOTAL], history.total)
    for key in pg.curves.figure.extras:  # the third panel, if the method has one
        np.testing.assert_array_equal(drawn[key], history.series(key))
    assert pg.image.value == pg.curves.png


@pytest.fixture
def runs(monkeypatch):
    """Counts the runs the playground starts (configs in order)."""
    started = []
    real = playground_module.training_run

    def counting(config):
        started.append(config)
        return real(config)

    monkeypatch.setattr(playground_module, "training_run", counting)
    return started


@pytest.fixture
def threaded():
    """A playground that trains in its worker thread, closed after the test."""
    made = []

    def make(**kwargs):
        made.append(playground(mode="thread", **kwargs))
        return made[-1]

    yield make
    for pg in made:
        pg.close()


def test_all_controls_are_shown_and_the_strategy_list_is_the_registry_in_teaching_order():
    pg = playground(mode="sync", steps=10)
    assert list(pg.controls) == list(CONTROLS)
    assert list(pg.controls["strategy"].options) == names()


def test_first_run_trains_the_starting_config_and_draws_it():
    pg = playground(mode="sync", steps=40, seed=3)
    assert pg.history.config == TrainConfig(steps=40, seed=3)
    assert pg.history.finished
    assert_shows(pg, pg.history)
    assert pg.status.startswith("done, step 40/40: classification")


def test_moving_a_slider_retrains_with_that_value_exactly(runs):
    pg = playground(mode="sync", steps=40)
    pg.controls["alpha"].value = 0.8
    assert [c.alpha for c in runs] == [0.5, 0.8]
    expected = train(TrainConfig(steps=40, alpha=0.8))
    assert pg.history.losses == expected.losses and pg.history.total == expected.total
    assert_shows(pg, pg.history)


def test_every_control_changes_its_config_field(runs):
    pg = playground(mode="sync", steps=20)
    new_values = {
        "beta": 0.25,
        "strategy": "separate_backward",
        "optimizer": "sgd",
        "lr": 0.1,
        "steps": 30,
        "batch_size": 32,
        "seed": 7,
        "relatedness": -0.5,
    }
    for name, value in new_values.items():
        pg.controls[name].value = value
        assert getattr(pg.history.config, name) == pytest.approx(value), name
    assert len(runs) == 1 + len(new_values)


def test_sliders_retrain_on_release_only_except_weights_answered_by_a_grid():
    pg = playground(mode="sync", steps=10)
    sliders = [c for c in pg.controls.values() if hasattr(c, "continuous_update")]
    assert sliders and all(not c.continuous_update for c in sliders)
    with_grid = playground(mode="sync", grid=True, steps=10)
    following = {name for name, c in with_grid.controls.items() if getattr(c, "continuous_update", False)}
    assert following == {"alpha", "beta"}  # while dragged, the grid answers each value at once


def test_tied_beta_follows_alpha_with_one_run_per_change(runs):
    pg = playground(mode="sync", steps=20, tie_beta=True)
    assert pg.controls["beta"].disabled and pg.history.config.beta == 0.5
    pg.controls["alpha"].value = 0.3
    assert pg.controls["beta"].value == pytest.approx(0.7)
    assert pg.history.config.weights == pytest.approx((0.3, 0.7))
    assert len(runs) == 2


def test_a_subset_of_controls_keeps_the_other_fields():
    pg = playground(mode="sync", controls=["alpha", "beta"], steps=25, optimizer="sgd", lr=0.05)
    assert list(pg.controls) == ["alpha", "beta"]
    pg.controls["beta"].value = 0.9
    assert pg.history.config == TrainConfig(steps=25, optimizer="sgd", lr=0.05, beta=0.9)


def test_an_invalid_combination_shows_the_config_error_and_stays_usable(runs):
    pg = playground(mode="sync", steps=20)
    pg.controls["alpha"].value = 0.0
    shown = pg.history
    pg.controls["beta"].value = 0.0  # both weights zero: nothing would be trained
    assert pg.status.startswith("⚠ alpha, beta=(0.0, 0.0) is not allowed")
    assert "Traceback" not in pg.status and "&lt;" not in pg.status
    assert "not allowed" in pg.status_line.value
    assert pg.history is shown and len(runs) == 2  # the alpha=0 run; nothing for the invalid one
    pg.controls["beta"].value = 0.4
    assert pg.history.config.weights == (0.0, 0.4) and pg.status.startswith("done")


def test_a_diverging_run_shows_why_and_the_next_run_works():
    pg = playground(mode="sync", steps=300, regression_scale=100.0, optimizer="sgd")
    pg.controls["lr"].value = 10.0
    assert pg.history.diverged_at is not None
    assert pg.status.startswith(f"diverged: the loss became NaN/inf at step {pg.history.diverged_at}")
    assert "lr=10" in pg.status
    assert pg.curves.figure.step_text.get_text().startswith("diverged at step")
    pg.controls["lr"].value = 0.01
    assert pg.history.finished and pg.status.startswith("done")


def test_train_button_retrains_and_reset_restores_the_start(runs):
    pg = playground(mode="sync", steps=20, seed=2)
    pg.train_button.click()
    assert len(runs) == 2 and runs[1] == runs[0]
    pg.controls["alpha"].value = 0.9
    pg.controls["seed"].value = 5
    assert len(pg.curves.figure.ghost_lines[TOTAL].get_ydata()) > 0  # the previous run stays faint
    pg.reset_button.click()
    assert pg.controls["alpha"].value == 0.5 and pg.controls["seed"].value == 2
    assert pg.history.config == TrainConfig(steps=20, seed=2)
    assert len(pg.curves.figure.ghost_lines[TOTAL].get_ydata()) == 0  # reset clears the ghost
    assert len(runs) == 5  # start, train, alpha, seed, reset: one run each


def test_the_output_bundle_is_stable_text_plus_widget_and_final_frame():
    a, b = playground(mode="sync", steps=30), playground(mode="sync", steps=30)
    bundle = a._repr_mimebundle_()
    assert bundle["text/plain"] == b._repr_mimebundle_()["text/plain"]  # no timings, no ids
    assert bundle["text/plain"].splitlines() == [
        "Playground(alpha=0.5, beta=0.5, strategy='weighted_sum', optimizer='adam', lr=0.01, "
        "steps=30, batch_size=64, seed=0, relatedness=0.5)",
        playground_module.status_text(a.history, timing=False),
    ]
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == a.widget.model_id
    png = base64.b64decode(bundle["image/png"])
    assert png == a.curves.png and Image.open(io.BytesIO(png)).size == (800, 330)


def panels(pg) -> int:
    """How many panels the frame on screen has (4 inches, 400 px each)."""
    width, height = Image.open(io.BytesIO(pg.image.value)).size
    assert len(pg.curves.figure.figure.axes) == width // 400 and height == 330
    return width // 400


def test_learned_weights_get_a_third_panel_that_goes_when_the_strategy_changes():
    pg = playground(mode="sync", steps=40, strategy="uncertainty")
    assert pg.curves.figure.extras == ("weight/classification", "weight/regression") and panels(pg) == 3
    drawn = pg.curves.figure.line_data()
    for task in ("classification", "regression"):
        np.testing.assert_array_equal(drawn[f"weight/{task}"], pg.history.weights[task])
    assert_shows(pg, pg.history)
    pg.controls["strategy"].value = "weighted_sum"
    assert pg.curves.figure.extras == () and pg.curves.figure.extras_axes is None and panels(pg) == 2
    assert_shows(pg, pg.history)
    pg.controls["strategy"].value = "pcgrad"
    assert pg.curves.figure.extras == ("cosine",) and panels(pg) == 3
    np.testing.assert_array_equal(pg.curves.figure.line_data()["cosine"], pg.history.extras["cosine"])


def test_a_ghost_stays_only_while_the_panels_stay(runs):
    pg = playground(mode="sync", steps=30)
    pg.controls["strategy"].value = "uncertainty"  # other panels: the weighted_sum ghost is dropped
    assert all(len(line.get_ydata()) == 0 for line in pg.curves.figure.ghost_lines.values())
    uncertainty = pg.history
    pg.controls["strategy"].value = "dwa"  # the same panels: uncertainty's run stays faint, weights included
    ghost = pg.curves.figure.ghost_lines["weight/regression"]
    np.testing.assert_array_equal(ghost.get_ydata(), uncertainty.weights["regression"])
    assert [c.strategy for c in runs] == ["weighted_sum", "uncertainty", "dwa"]


def test_the_third_panel_follows_the_strategys_family():
    assert panel_series("gradnorm", ("a", "b")) == ("weight/a", "weight/b")
    assert panel_series("upgrad", ("a", "b")) == ("cosine",)
    assert panel_series("weighted_sum", ("a", "b")) == panel_series("alternating_steps", ("a", "b")) == ()


def test_status_line_and_curves_have_stable_css_classes():
    pg = playground(mode="sync", steps=10)
    assert "mtl-teach-status" in pg.status_line._dom_classes and "mtl-teach-curves" in pg.image._dom_classes


def test_auto_mode_is_synchronous_headless_and_threaded_in_a_notebook(monkeypatch):
    monkeypatch.setattr(playground_module, "is_headless", lambda: True)
    assert playground(steps=10).mode == "sync"
    monkeypatch.setattr(playground_module, "is_headless", lambda: False)
    pg = playground(steps=10)
    try:
        assert pg.mode == "thread" and pg.curves.live
    finally:
        pg.close()


def test_bad_arguments_name_the_bad_value():
    with pytest.raises(ValueError, match="control 'momentum' is not allowed: choose distinct names from"):
        playground(mode="sync", controls=["alpha", "momentum"], steps=10)
    with pytest.raises(ValueError, match="control 'gamma' is not allowed"):
        playground(mode="sync", controls=["gamma"], steps=10)
    with pytest.raises(ValueError, match=r"controls='alpha' must be a list of control names, e.g. \['alpha'\]"):
        playground(mode="sync", controls="alpha", steps=10)
    with pytest.raises(ValueError, match="control 'alpha' is not allowed: choose distinct"):
        playground(mode="sync", controls=["alpha", "alpha"], steps=10)
    with pytest.raises(ValueError, match="mode='async' is not known"):
        playground(mode="async", steps=10)
    with pytest.raises(ConfigError, match="steps=0"):
        playground(mode="sync", steps=0)


# ---- background mode: the worker thread ----


def test_background_run_draws_live_frames_and_ends_on_the_final_one(threaded):
    pg = threaded(steps=300)
    assert pg.wait()
    assert pg.history.finished and pg.curves.frames_drawn >= 2  # at least one live frame and the final one
    assert_shows(pg, pg.history)


def test_background_run_of_a_gradient_method_draws_its_cosine(threaded):
    pg = threaded(steps=60, strategy="mgda")
    assert pg.wait()
    assert pg.history.finished and pg.curves.figure.extras == ("cosine",)
    assert_shows(pg, pg.history)


def test_stop_ends_the_run_within_a_few_steps_and_keeps_its_curves(threaded):
    pg = threaded(steps=20_000)  # far longer than the test waits
    wait_until(lambda: pg.history is not None and pg.history.steps_done >= 5)
    pg.stop_button.click()
    assert pg.wait()
    stopped = pg.history
    assert stopped.stopped_at == stopped.steps_done < 20_000
    assert pg.status.startswith(f"stopped {stopped.steps_done}/20000")
    assert pg.curves.figure.step_text.get_text() == f"stopped at step {stopped.steps_done}/20000"
    assert_shows(pg, stopped)


def test_a_control_changed_mid_run_cancels_the_stale_run(threaded, runs):
    pg = threaded(steps=20_000)
    wait_until(lambda: pg.history is not None and pg.history.steps_done >= 5)
    stale = pg.history
    pg.controls["steps"].value = 60
    assert pg.wait()
    assert stale.stopped_at is not None and stale.steps_done < 20_000  # closed, not run to the end
    assert pg.history is not stale and pg.history.config == TrainConfig(steps=60)
    assert pg.history.finished and pg.status.startswith("done, step 60/60")
    assert_shows(pg, pg.history)
    assert [c.steps for c in runs] == [20_000, 60]


def test_a_hundred_rapid_changes_end_on_the_last_values(threaded):
    pg = threaded(steps=100)
    for i in range(100):
        pg.controls["alpha"].value = round(0.01 * (i + 1), 2)
        pg.controls["relatedness"].value = round(-1.0 + 0.02 * i, 2)
    assert pg.wait()
    assert (pg.history.config.alpha, pg.history.config.relatedness) == (1.0, 0.98)
    assert pg.history.finished and pg.status.startswith("done")
    assert_shows(pg, pg.history)
    expected = train(TrainConfig(steps=100, alpha=1.0, relatedness=0.98))
    assert pg.history.total == expected.total


def test_callbacks_from_other_threads_are_safe(threaded):
    """JupyterLab 4.6 delivers widget messages on subshell threads: changes may come from anywhere."""
    pg = threaded(steps=50)
    changers = [threading.Thread(target=setattr, args=(pg.controls[n], "value", v)) for n, v in [("seed", 4)]]
    changers += [threading.Thread(target=pg.stop_button.click), threading.Thread(target=pg.train_button.click)]
    for t in changers:
        t.start()
        t.join()
    assert pg.wait()
    assert pg.history.config == TrainConfig(steps=50, seed=4) and pg.history.finished
    assert_shows(pg, pg.history)


def test_runs_use_one_torch_thread_and_restore_the_setting():
    before = torch.get_num_threads()
    with one_torch_thread():
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_close_stops_the_worker(threaded):
    pg = threaded(steps=20_000)
    wait_until(lambda: pg.history is not None)
    pg.close(timeout=60)
    assert pg.wait(timeout=0)  # no worker left
    assert pg.history.steps_done < 20_000


def test_after_close_a_control_change_trains_nothing(runs):
    pg = playground(mode="sync", steps=10)
    pg.close()
    pg.controls["alpha"].value = 0.9  # the widget object still exists in Python
    pg.train()
    assert [c.alpha for c in runs] == [0.5]


def test_a_change_in_the_background_shows_at_once_that_the_frame_is_stale(threaded):
    pg = threaded(steps=3000)
    wait_until(lambda: pg.history is not None)
    seen = []  # every status text and image class change, in order
    pg.status_line.observe(lambda change: seen.append(("status", change["new"])), names="value")
    pg.image.observe(lambda change: seen.append(("classes", tuple(change["new"]))), names="_dom_classes")
    pg.controls["alpha"].value = 0.9
    first_two = seen[:2]  # made by the control's callback itself, before any frame of the new run
    assert first_two[0][0] == "status" and "training weighted_sum, alpha=0.9, beta=0.5 ..." in first_two[0][1]
    assert first_two[1] == ("classes", ("mtl-teach-curves", "mtl-teach-stale"))
    pg.stop()
    assert pg.wait()
    wait_until(lambda: "mtl-teach-stale" not in pg.image._dom_classes)  # a frame of the new run lifts it
    assert pg.history.config.alpha == 0.9


# ---- in a real kernel, spoken to the way JupyterLab 4.6 does ----


def _execute(client, code: str) -> str:
    """Run a cell as JupyterLab sends it (allow_stdin=True); return its printed text."""
    msg_id = client.execute(code, allow_stdin=True)
    reply = client.get_shell_msg(timeout=120)
    assert reply["parent_header"]["msg_id"] == msg_id
    assert reply["content"]["status"] == "ok", reply["content"]
    return "".join(_iopub_until_idle(client, msg_id, "stream", lambda c: c["text"]))


def _iopub_until_idle(client, msg_id, kind, take):
    while True:
        msg = client.get_iopub_msg(timeout=120)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == kind:
            yield take(msg["content"])
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return


def test_in_a_live_kernel_the_playground_trains_in_the_background_and_obeys_a_subshell_message():
    from jupyter_client.manager import start_new_kernel

    manager, client = start_new_kernel(kernel_name="python3")  # "python" runs as this interpreter
    try:
        setup = "from mtl_teach.playground import playground\npg = playground(steps=100)\n"
        mode, alpha_id = _execute(client, setup + "print(pg.mode, pg.controls['alpha'].model_id)").split()
        assert mode == "thread"  # a frontend that answers input(): the runs go to the worker
        request = client.session.msg("create_subshell_request", {})
        client.control_channel.send(request)
        subshell_id = client.get_control_msg(timeout=60)["content"]["subshell_id"]
        update = {"method": "update", "state": {"value": 0.8}, "buffer_paths": []}
        message = client.session.msg("comm_msg", {"comm_id": alpha_id, "data": update})
        message["header"]["subshell_id"] = subshell_id  # as JupyterLab 4.6 sends widget messages
        client.shell_channel.send(message)
        list(_iopub_until_idle(client, message["header"]["msg_id"], "none", None))  # the callback has run
        done = _execute(client, "pg.wait()\nprint(pg.history.config.alpha, pg.history.finished, pg.status[:5])")
        assert done.split() == ["0.8", "True", "done,"]
    finally:
        manager.shutdown_kernel(now=True)


# ---- the grid of weightings and the Pareto panel ----


def test_moving_alpha_shows_the_grids_run_at_once_without_training(runs):
    pg = playground(mode="sync", grid=True, controls=["alpha"], tie_beta=True, steps=200)
    assert len(runs) == 1 and len(pg.front_choice.options) == 21  # the first run, then the grid (one sweep)
    pg.controls["alpha"].value = 0.35
    assert len(runs) == 1  # nothing trained: the grid had it
    expected = train(TrainConfig(steps=200, alpha=0.35, beta=0.65))
    assert pg.history.config == expected.config
    np.testing.assert_allclose(pg.history.total, expected.total, rtol=0, atol=1e-5)  # tests/test_weight_grid.py
    assert pg.status.endswith("(from the grid)") and pg.status.startswith("done, step 200/200")
    assert_shows(pg, pg.history)
    assert pg.front_choice.value == (0.35, 0.65)


def test_a_weighting_between_grid_points_is_trained_live(runs):
    pg = playground(mode="sync", grid=True, controls=["alpha"], tie_beta=True, steps=50)
    pg.controls["alpha"].value = 0.33  # typed into the readout: not a slider position
    assert [c.alpha for c in runs] == [0.5, 0.33]
    assert pg.history.total == train(TrainConfig(steps=50, alpha=0.33, beta=0.67)).total
    assert pg.front_choice.value is None  # not one of the grid's runs


def test_the_pareto_dot_follows_the_slider_and_sits_on_the_grids_point():
    pg = playground(mode="sync", grid=True, controls=["alpha"], tie_beta=True, steps=100)
    front = dict(pg.grid.front(pg.history.config))
    for alpha in (0.2, 0.8):
        pg.controls["alpha"].value = alpha
        dot = pg.pareto.current_dot.get_xydata()[0]
        np.testing.assert_allclose(dot, front[(alpha, round(1 - alpha, 10))], atol=1e-6)
        np.testing.assert_allclose(dot, final_point(pg.history), atol=0)
        assert pg.pareto_image.value  # drawn and sent


def test_picking_a_point_of_the_front_moves_the_sliders_and_shows_that_run(runs):
    pg = playground(mode="sync", grid=True, controls=["alpha", "beta"], steps=60)
    pick = next(value for _, value in pg.front_choice.options if value[0] == 0.8)
    pg.front_choice.value = pick
    assert (pg.controls["alpha"].value, pg.controls["beta"].value) == pick
    assert pg.history.config.weights == pick and pg.status.endswith("(from the grid)")
    assert len(runs) == 1  # answered by the grid


def test_another_control_retrains_the_grid_for_the_new_settings(runs):
    pg = playground(mode="sync", grid=True, controls=["alpha", "lr"], tie_beta=True, steps=40)
    pg.controls["lr"].value = 0.02
    assert [c.lr for c in runs] == [0.01, 0.02]  # the new setting is trained live first
    assert pg.grid.history(TrainConfig(steps=40, lr=0.02, alpha=0.25, beta=0.75)) is not None
    pg.controls["alpha"].value = 0.25
    assert len(runs) == 2 and pg.history.config.lr == 0.02


def test_a_method_outside_the_sum_family_is_shown_against_the_plain_sums_front(runs):
    pg = playground(mode="sync", grid=True, controls=["alpha", "strategy"], tie_beta=True, steps=40)
    pg.controls["strategy"].value = "pcgrad"
    pg.controls["alpha"].value = 0.3
    assert [c.strategy for c in runs] == ["weighted_sum", "pcgrad", "pcgrad"]  # pcgrad is never cached
    assert "Pareto front of weighted_sum" in pg.grid_line.value
    np.testing.assert_allclose(pg.pareto.current_dot.get_xydata()[0], final_point(pg.history), atol=0)


def test_headless_there_is_no_grid_and_one_final_frame():
    pg = playground(steps=20)  # plain Python counts as headless
    assert pg.grid is None and pg.curves.frames_drawn == 1
    assert pg.pareto_image not in pg.widget.children and not pg.pareto_image.value


def test_the_status_line_speaks_chinese_in_a_chinese_notebook():
    set_language("zh-CN")
    try:
        pg = playground(mode="sync", grid=True, controls=["alpha"], tie_beta=True, steps=20)
        assert pg.status.startswith("完成，第 20/20 步：classification")
        pg.controls["alpha"].value = 0.4
        assert pg.status.endswith("（来自权重网格）")
        assert "帕累托前沿" in pg.grid_line.value
        pg.controls["alpha"].value = 0.0
        pg.controls["alpha"].value = 0.41
        assert pg.status.startswith("完成，第 20/20 步")
    finally:
        set_language(None)


def test_in_the_background_alpha_is_answered_from_the_grid_and_close_stops_the_grid(threaded, monkeypatch):
    pg = threaded(steps=200, controls=["alpha"], tie_beta=True, grid=True)
    assert pg.wait()
    pg.controls["alpha"].value = 0.7
    wait_until(lambda: pg.status.endswith("(from the grid)"))
    assert pg.history.config.alpha == 0.7 and pg.image.value == pg.curves.png
    stops = []
    real_sweep = playground_module.WeightGrid.train

    def slow_grid(self, config, pairs, should_stop=None):
        def recording():
            stops.append(should_stop())
            time.sleep(0.01)
            return stops[-1]

        return real_sweep(self, config, pairs, recording)

    monkeypatch.setattr(playground_module.WeightGrid, "train", slow_grid)
    pg.initial = pg.initial.replace(seed=5)  # other settings, so the grid must retrain (slowly)
    pg.train()
    wait_until(lambda: len(stops) > 3)
    pg.close(timeout=60)
    assert stops[-1] is True  # the sweep was told to stop
    assert not [t for t in threading.enumerate() if t.name.startswith("mtl-teach") and t.is_alive()]
