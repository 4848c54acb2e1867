"""LiveCurves: the drawn lines equal the History, frames are throttled and cached,
headless runs publish one final frame, and the display handle is updated in place."""

import base64
import io
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from mtl_teach import live
from mtl_teach.config import TrainConfig
from mtl_teach.live import TOTAL, LiveCurves, is_headless, png_bytes
from mtl_teach.train import History, train

TASKS = ("classification", "regression")


class FakeClock:
    """Stands in for the `time` module inside mtl_teach.live, so throttling is tested without sleeps."""

    def __init__(self):
        self.now = 100.0

    def perf_counter(self):
        return self.now


class Recorder:
    """A frame sink that keeps every frame it is sent."""

    def __init__(self):
        self.frames = []

    def __call__(self, png, history):
        self.frames.append((png, history.steps_done))


def decode(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)))


@pytest.fixture(scope="module")
def run():
    return train(steps=60)


def test_png_bytes_round_trips_through_pillow():
    rgba = np.random.default_rng(0).integers(0, 256, size=(7, 5, 4), dtype=np.uint8)
    np.testing.assert_array_equal(decode(png_bytes(rgba)), rgba)


def test_drawn_lines_equal_the_history(run):
    sink = Recorder()
    curves = LiveCurves(TASKS, live=True, sink=sink)
    curves.finish(run)
    drawn = curves.figure.line_data()
    for name in TASKS:
        np.testing.assert_array_equal(drawn[name], run.losses[name])
    np.testing.assert_array_equal(drawn[TOTAL], run.total)
    assert len(sink.frames) == 1 and sink.frames[0][0] == curves.png


def test_frame_is_a_png_of_fixed_size_equal_to_the_canvas(run):
    curves = LiveCurves(TASKS, live=True, sink=Recorder())
    curves.finish(run)
    first = decode(curves.png)
    curves.finish(train(steps=20))
    assert first.shape == decode(curves.png).shape == (330, 800, 4)  # no tight bbox: the size never changes
    canvas = np.asarray(curves.figure.canvas.buffer_rgba())
    np.testing.assert_array_equal(decode(curves.png), canvas)


def test_update_is_throttled_by_wall_time(run, monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(live, "time", clock)
    curves = LiveCurves(TASKS, max_fps=5, live=True, sink=Recorder())
    assert curves.update(run)  # the first update always draws
    curves.mean_frame_ms = 1.0  # cheap frames: the fps limit decides
    clock.now += 0.19
    assert not curves.update(run)
    clock.now += 0.02
    assert curves.update(run)
    curves.mean_frame_ms = 100.0  # slow frames: wait until drawing is <= DRAW_SHARE (15%) of the time
    clock.now += 0.1 / live.DRAW_SHARE - 0.01
    assert not curves.update(run)
    clock.now += 0.02
    assert curves.update(run)
    assert curves.frames_drawn == 3


def test_a_run_with_a_frame_after_every_step_caches_the_axes():
    curves = LiveCurves(TASKS, live=True, sink=Recorder())
    train(steps=150, on_step=curves.finish)  # finish draws whatever the throttle says
    assert curves.frames_drawn == 151  # one per step, one after the final evaluation
    assert curves.figure.background_draws <= 3  # axes redrawn only when the limits change


def test_headless_update_draws_nothing_and_finish_draws_once(run):
    sink = Recorder()
    curves = LiveCurves(TASKS, live=False, sink=sink)
    for _ in range(50):
        assert not curves.update(run)
    curves.finish(run)
    assert [steps for _, steps in sink.frames] == [run.steps_done]


def test_display_handle_is_created_once_and_updated_in_place(monkeypatch):
    shown, updates = [], []
    handle = SimpleNamespace(update=lambda bundle, raw: updates.append(bundle))

    def fake_display(bundle, raw, display_id):
        assert raw and display_id is True
        shown.append(bundle)
        return handle

    monkeypatch.setattr(live, "display", fake_display)
    monkeypatch.setattr(live, "_in_ipython", lambda: True)
    curves = LiveCurves(TASKS, live=True)
    curves.display()  # shown at once, empty
    assert len(shown) == 1 and shown[0]["text/plain"] == "[loss curves]"
    history = train(steps=5, on_step=curves.finish)
    curves.finish(history)
    assert len(shown) == 1 and len(updates) == 7  # 5 steps + end of run + finish: all in the same output
    final = updates[-1]
    assert base64.b64decode(final["image/png"]) == curves.png
    assert final["text/plain"] == f"[loss curves] {history.message}"


def test_ghost_stays_as_a_faint_line_and_can_be_removed(run):
    curves = LiveCurves(TASKS, live=True, sink=Recorder())
    curves.set_ghost(run)
    curves.finish(train(steps=60, alpha=0.9))
    ghost = curves.figure.ghost_lines["regression"]
    np.testing.assert_array_equal(ghost.get_ydata(), run.losses["regression"])
    assert ghost.get_alpha() == 0.25 and curves.figure.lines["regression"].get_alpha() is None  # faint vs opaque
    assert ghost.get_color() == curves.figure.lines["regression"].get_color()
    assert "previous run" in [t.get_text() for t in curves.figure.legend.get_texts()]
    curves.set_ghost(None)
    assert len(ghost.get_ydata()) == 0


def test_linear_limits_cover_the_data_and_ghost(run):
    curves = LiveCurves(TASKS, live=True, sink=Recorder())
    bigger = train(steps=60, regression_scale=3.0)
    curves.set_ghost(bigger)
    curves.finish(run)
    low, high = curves.figure.task_axes.get_ylim()
    assert low == 0 and high >= max(bigger.losses["regression"])
    assert curves.figure.task_axes.get_xlim() == (0, 60)


def test_log_scale_limits_span_at_least_a_decade_for_a_single_point():
    curves = LiveCurves(TASKS, log_scale=True, live=True, sink=Recorder())
    history = train(steps=300, should_stop=lambda: True)  # one step
    history.total[0] = 1.0  # an exact power of ten: floor and ceiling of its log agree
    curves.finish(history)
    assert curves.figure.total_axes.get_ylim() == pytest.approx((1.0, 10.0))


def test_log_scale_limits_are_whole_decades_around_the_data(run):
    curves = LiveCurves(TASKS, log_scale=True, live=True, sink=Recorder())
    curves.finish(run)
    low, high = curves.figure.task_axes.get_ylim()
    values = np.concatenate([run.losses[n] for n in TASKS])
    assert low <= values.min() and high >= values.max()
    assert np.log10(low) == int(np.log10(low)) and np.log10(high) == int(np.log10(high))
    assert curves.figure.task_axes.get_yscale() == "log"


def test_a_diverged_run_draws_its_finite_part_and_says_so():
    history = train(optimizer="sgd", lr=1000.0, regression_scale=100.0, steps=300)
    curves = LiveCurves(TASKS, live=True, sink=Recorder())
    curves.finish(history)
    assert len(curves.figure.line_data()[TOTAL]) == history.steps_done
    assert curves.figure.step_text.get_text() == f"diverged at step {history.diverged_at}"


def test_nice_ceiling_rounds_up_to_a_readable_limit():
    assert [live._nice_ceiling(v) for v in (0.73, 1.0, 1.01, 0.0123, 470.0)] == pytest.approx(
        [0.8, 1.0, 1.2, 0.015, 500.0]
    )


def test_bad_max_fps_names_the_value():
    with pytest.raises(ValueError, match="max_fps=0"):
        LiveCurves(TASKS, max_fps=0)


def _kernel_with(parent):
    return SimpleNamespace(get_parent=lambda channel: parent)


def _execute(allow_stdin):
    return {"header": {"msg_type": "execute_request"}, "content": {"allow_stdin": allow_stdin}}


@pytest.mark.parametrize(
    ("kernel", "expected"),
    [
        (None, True),  # plain Python or pytest
        (_kernel_with(_execute(False)), True),  # nbclient, nbconvert, nbval, papermill
        (_kernel_with(_execute(True)), False),  # JupyterLab, Notebook, Colab, VS Code
        (_kernel_with({"header": {"msg_type": "comm_msg"}, "content": {}}), False),  # inside a widget callback
        (SimpleNamespace(_parent_header=_execute(True)), False),  # ipykernel 5 (older Colab)
    ],
)
def test_is_headless_reads_the_request_that_runs_the_cell(monkeypatch, kernel, expected):
    monkeypatch.delenv("MTL_TEACH_HEADLESS", raising=False)
    monkeypatch.setattr(live, "_current_kernel", lambda: kernel)
    assert is_headless() is expected


def test_is_headless_can_be_forced_by_environment(monkeypatch):
    monkeypatch.setattr(live, "_current_kernel", lambda: None)
    monkeypatch.setenv("MTL_TEACH_HEADLESS", "0")
    assert is_headless() is False
    monkeypatch.setenv("MTL_TEACH_HEADLESS", "1")
    monkeypatch.setattr(live, "_current_kernel", lambda: _kernel_with(_execute(True)))
    assert is_headless() is True


def test_config_steps_set_the_x_range_before_the_run_ends():
    curves = LiveCurves(TASKS, live=True, sink=Recorder())
    history = train(TrainConfig(steps=200), should_stop=lambda: True)  # stopped after one step
    curves.finish(history)
    assert curves.figure.task_axes.get_xlim() == (0, 200)
    assert curves.figure.step_text.get_text() == "stopped at step 1/200"


# ---- a third panel for History.extras (learned weights, a cosine) ----

WEIGHTS = ("weight/classification", "weight/regression")


@pytest.fixture(scope="module")
def uncertainty_run():
    return train(steps=60, strategy="uncertainty")


def test_extras_lines_equal_the_history_extras_in_a_third_panel(uncertainty_run):
    curves = LiveCurves(TASKS, extras=WEIGHTS, live=True, sink=Recorder())
    curves.finish(uncertainty_run)
    drawn = curves.figure.line_data()
    for key in WEIGHTS:
        np.testing.assert_array_equal(drawn[key], uncertainty_run.series(key))
    np.testing.assert_array_equal(drawn["regression"], uncertainty_run.losses["regression"])  # the others too
    axes = curves.figure.extras_axes
    assert len(curves.figure.figure.axes) == 3 and curves.figure.lines[WEIGHTS[0]].axes is axes
    assert axes.get_title() == "learned weights"
    assert [t.get_text() for t in curves.figure.legend.get_texts()] == [*TASKS, *WEIGHTS]
    assert curves.figure.lines["weight/regression"].get_color() == curves.figure.lines["regression"].get_color()
    assert decode(curves.png).shape == (330, 1200, 4)  # 4 inches a panel, 100 dpi


def test_without_extras_there_are_two_panels_as_before(run):
    curves = LiveCurves(TASKS, live=True, sink=Recorder())
    curves.finish(run)
    assert len(curves.figure.figure.axes) == 2 and curves.figure.extras_axes is None
    assert set(curves.figure.line_data()) == {*TASKS, TOTAL}
    assert decode(curves.png).shape == (330, 800, 4)


def test_extras_not_recorded_yet_draw_nothing_and_do_not_crash(run):
    curves = LiveCurves(TASKS, extras=["cosine"], live=True, sink=Recorder())
    empty = History(TrainConfig(steps=60), TASKS, {n: [] for n in TASKS})  # before the first step
    curves.finish(empty)
    assert len(curves.figure.line_data()["cosine"]) == 0 and curves.figure.extras_axes.get_ylim() == (0.0, 1.0)
    curves.finish(run)  # weighted_sum records no extras at all
    assert len(curves.figure.line_data()["cosine"]) == 0
    np.testing.assert_array_equal(curves.figure.line_data()[TOTAL], run.total)


def test_a_cosine_gets_limits_below_zero_in_nice_steps():
    history = train(steps=60, strategy="pcgrad")
    curves = LiveCurves(TASKS, extras=["cosine"], live=True, sink=Recorder())
    curves.finish(history)
    cosines = np.asarray(history.extras["cosine"])
    low, high = curves.figure.extras_axes.get_ylim()
    assert cosines.min() < 0 < cosines.max()  # this run has both signs
    assert low <= cosines.min() and high >= cosines.max() and -1.5 <= low < 0 < high <= 1.5
    mantissas = [round(v / 10 ** np.floor(np.log10(v)), 9) for v in (-low, high)]
    assert set(mantissas) <= {1, 1.5, 2, 3, 5}  # coarse nice steps
    assert curves.figure.extras_axes.get_title() == "cosine between task gradients"
    np.testing.assert_array_equal(curves.figure.line_data()["cosine"], cosines)


def test_signed_limits_for_edge_cases():
    assert live._signed_limits(np.array([])) == (0.0, 1.0)
    assert live._signed_limits(np.array([0.0, 0.0])) == (0.0, 1.0)
    assert live._signed_limits(np.array([-0.8, -0.1])) == pytest.approx((-1.0, 0.0))
    assert live._signed_limits(np.array([0.5, 2.7])) == pytest.approx((0.0, 3.0))


def test_extras_panel_title_says_what_it_shows():
    assert live.extras_title(WEIGHTS) == "learned weights"
    assert live.extras_title(["cosine"]) == "cosine between task gradients"
    assert live.extras_title(["cosine", "conflicting"]) == "extras"


def test_extras_have_ghosts_too(uncertainty_run):
    curves = LiveCurves(TASKS, extras=WEIGHTS, live=True, sink=Recorder())
    curves.set_ghost(uncertainty_run)
    curves.finish(train(steps=60, strategy="uncertainty", lr=0.05))
    ghost = curves.figure.ghost_lines["weight/classification"]
    np.testing.assert_array_equal(ghost.get_ydata(), uncertainty_run.series("weight/classification"))
    assert ghost.axes is curves.figure.extras_axes and ghost.get_alpha() == 0.25
    assert curves.figure.extras_axes.get_ylim()[1] >= max(uncertainty_run.series("weight/classification"))


def test_set_extras_changes_the_panels_and_drops_the_ghost(run, uncertainty_run):
    curves = LiveCurves(TASKS, log_scale=True, title="a run", live=True, sink=Recorder())
    curves.set_ghost(run)
    assert curves.set_extras(WEIGHTS)
    figure = curves.figure
    assert figure.extras == WEIGHTS and figure.log_scale and figure.title == "a run"
    assert all(len(line.get_ydata()) == 0 for line in figure.ghost_lines.values())  # the ghost is gone
    assert not curves.set_extras(list(WEIGHTS)) and curves.figure is figure  # the same panels: nothing rebuilt
    curves.finish(uncertainty_run)
    np.testing.assert_array_equal(curves.figure.line_data()[WEIGHTS[1]], uncertainty_run.series(WEIGHTS[1]))
    assert curves.set_extras(()) and len(curves.figure.figure.axes) == 2


def test_a_run_with_extras_still_caches_the_axes():
    curves = LiveCurves(TASKS, extras=WEIGHTS, live=True, sink=Recorder())
    history = train(steps=150, strategy="uncertainty", on_step=curves.finish)
    assert curves.frames_drawn == 151
    assert curves.figure.background_draws <= 6  # the weights grow: their limits step 0.6, 1, 1.5, 2, 3, 5 at most
    assert max(history.series(WEIGHTS[0])) <= curves.figure.extras_axes.get_ylim()[1]


@pytest.mark.parametrize(
    ("extras", "message"),
    [
        ("cosine", r"extras='cosine' must be a list of History.extras keys, e.g. \['cosine'\]"),
        (["classification"], "extras key 'classification' is not allowed"),
        (["total"], "extras key 'total' is not allowed"),
        (["cosine", "cosine"], "extras key 'cosine' is not allowed: extras must be distinct strings"),
    ],
)
def test_bad_extras_name_the_value(extras, message):
    with pytest.raises(ValueError, match=message):
        LiveCurves(TASKS, extras=extras)


def test_live_frames_add_only_the_new_steps_and_the_final_frame_is_drawn_whole():
    full = train(steps=200)
    growing = History(full.config, full.task_names)
    curves = LiveCurves(TASKS, live=True, sink=Recorder())
    drawn_points = []
    real_draw = curves.figure.lines[TOTAL].axes.draw_artist

    def counting(artist):
        drawn_points.append(len(artist.get_xdata()))
        return real_draw(artist)

    for step in range(200):
        for name in TASKS:
            growing.losses[name].append(full.losses[name][step])
        growing.total.append(full.total[step])
        if step in (100, 150):
            curves.figure.total_axes.draw_artist = counting if step == 150 else real_draw
            curves.figure.render(growing, live=True)
    assert drawn_points == [51]  # steps 100 to 150: the new piece and the step before it
    live_frame = decode(curves.figure.render(growing, live=True))
    np.testing.assert_array_equal(curves.figure.line_data()[TOTAL], growing.total)  # the line keeps all its data
    curves.finish(growing)
    whole = LiveCurves(TASKS, live=True, sink=Recorder())
    whole.finish(growing)
    assert curves.png == whole.png  # the final frame: drawn whole, exactly as a fresh figure draws it
    assert np.any(live_frame != decode(whole.png), axis=-1).mean() < 0.01  # live: joints and the label differ
