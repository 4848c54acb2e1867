"""The playground in JupyterLab, used with keyboard and mouse in headless Chromium.

Each test opens a one-cell notebook that calls `playground()` with its
defaults, waits for the first run, then acts as a learner would. What the
page shows is checked against a reference computed in this process: the
same `Playground` driven from Python (synchronously) or the same
`training_run`, which are deterministic, so the status line must name the
same losses and the final frame must have the same pixels.

The times from a key press to the final frame (alpha, answered by the grid
of weightings; and a retrain) and the frames a second reaching the page
during a 1000-step run are measured in the page and written to
.e2e-artifacts/browser_latency.json (a report, not an assertion: the goals
are <= 0.15 s for alpha and >= 20 frames a second on the project's 2-core
machine).
"""

from __future__ import annotations

import json
import os
import statistics
import time

import nbformat
import pytest

from mtl_teach.config import TrainConfig
from mtl_teach.playground import playground, status_text
from mtl_teach.train import History, training_run

from .notebook_page import code_cells, open_notebook, run_all
from .paths import ARTIFACTS
from .playground_page import (
    Log,
    clear,
    decode_png,
    differing_pixels,
    shown_frame,
    status_of,
    step_of,
    wait_for_grid,
    wait_for_log,
    wait_for_status,
    wait_until_quiet,
    watch,
    without_timing,
)

pytestmark = pytest.mark.e2e

NOTEBOOK = "e2e_playground.ipynb"
CELL = """\
import torch

from mtl_teach.playground import playground

torch.set_num_threads(1)  # as the course notebooks do: the model is tiny
playground()
"""
# Frames of the same run drawn in two processes may differ in a few anti-aliased
# pixels if a loss differs in its last bits; frames of different runs differ far more.
PIXEL_TOLERANCE = 0.001
ALPHA_LATENCY_GOAL_S = 0.15
FPS_GOAL = 20


@pytest.fixture
def playground_view(page, lab_server):
    """The playground's widget view, after its first run finished, with the page watching it."""
    notebook = nbformat.v4.new_notebook()
    notebook.metadata.kernelspec = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    notebook.cells = [nbformat.v4.new_code_cell(CELL)]
    nbformat.write(notebook, lab_server.root_dir / NOTEBOOK)
    open_notebook(page, lab_server, NOTEBOOK, n_code_cells=1)
    assert run_all(page) == ["[1]:"]
    view = page.locator(".jp-OutputArea-output > .widget-vbox").first
    wait_for_status(view, lambda s: s.startswith("done"), what="the first run to finish")
    wait_for_grid(view)
    watch(page, view)
    return view


def slider(view, name: str):
    return view.locator(f".widget-slider:has(.widget-label:text-is('{name}'))")


def press_on_slider(view, name: str, key: str) -> float:
    """Press `key` on slider `name`'s handle; returns the value its readout shows then."""
    control = slider(view, name)
    control.locator(".noUi-handle").press(key)
    # The readout (readout_format) has the value; the handle's aria-valuenow is rounded to 0.1.
    return float(control.locator(".widget-readout").inner_text())


def assert_no_error_output(page) -> None:
    """Nothing went to stderr: no traceback from a widget callback or the training thread."""
    stderr = [text for cell in code_cells(page) for text in cell.stderr]
    assert not stderr, f"the playground cell showed an error or warning:\n{stderr[0]}"


def a_run_finished(log: Log) -> bool:
    return any(s["text"].startswith("done") for s in log.statuses)


def history_at(full: History, steps: int, stopped: bool) -> History:
    """`full` as it stood after `steps` steps; `stopped` marks it stopped there (as Stop does)."""
    losses = {name: values[:steps] for name, values in full.losses.items()}
    stopped_at = steps if stopped else None
    return History(full.config, full.task_names, losses=losses, total=full.total[:steps], stopped_at=stopped_at)


def test_alpha_is_answered_by_the_grid_and_a_retrain_is_live_and_both_final_frames_match(page, playground_view):
    """Arrow keys on alpha show the grid's run at once; a key on relatedness retrains live. The final
    frame and status are the last config's, as the same playground in this process draws them."""
    view = playground_view
    reference = playground(mode="sync", grid=True)  # in this process: the same runs and grid, synchronously
    assert without_timing(status_of(view)) == without_timing(reference.status)
    assert differing_pixels(shown_frame(view), decode_png(reference.curves.png)) <= PIXEL_TOLERANCE

    samples = []
    for name, key in (
        ("alpha", "ArrowRight"),
        ("alpha", "ArrowLeft"),
        ("alpha", "ArrowRight"),
        ("relatedness", "ArrowLeft"),
    ):
        clear(page)
        value = press_on_slider(view, name, key)
        wait_for_log(page, a_run_finished, what="the run to finish")
        log = wait_until_quiet(page)

        previous_png = reference.curves.png
        reference.controls[name].value = value
        assert without_timing(status_of(view)) == without_timing(reference.status)
        assert getattr(reference.history.config, name) == value
        assert status_of(view).endswith("(from the grid)") == (name == "alpha")  # alpha: the grid's run
        frame, expected = shown_frame(view), decode_png(reference.curves.png)
        assert differing_pixels(frame, expected) <= PIXEL_TOLERANCE, "the final frame is not the last config's"
        assert differing_pixels(decode_png(previous_png), expected) > 5 * PIXEL_TOLERANCE  # so the check can tell
        pressed = log.first_input("keydown")
        samples.append(
            {
                "control": name,
                "value": value,
                "key_to_final_frame_s": (log.frames[-1]["t"] - pressed) / 1000,
                "frames": log.distinct_frames(after_ms=pressed),
            }
        )
        if name == "relatedness":
            wait_for_grid(view)  # the grid for the new relatedness, so the reference's grid matches it
    assert_no_error_output(page)
    report_latency(samples)


def report_latency(samples: list[dict], fps: float | None = None) -> None:
    """Add these measurements to .e2e-artifacts/browser_latency.json (one file for the whole run)."""
    path = ARTIFACTS / "browser_latency.json"
    report = json.loads(path.read_text()) if path.exists() else {}
    for kind in {s["control"] for s in samples}:
        latencies = [s["key_to_final_frame_s"] for s in samples if s["control"] == kind]
        report[f"{kind}_key_to_final_frame_s"] = {
            "median": round(statistics.median(latencies), 3),
            "samples": [round(x, 3) for x in latencies],
            "frames": [s["frames"] for s in samples if s["control"] == kind],
        }
    if fps is not None:
        report["fps_reaching_the_page_1000_steps"] = round(fps, 1)
    report |= {
        "goals": {"alpha_s": ALPHA_LATENCY_GOAL_S, "fps": FPS_GOAL},
        "cpu_count": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    ARTIFACTS.mkdir(exist_ok=True)
    path.write_text(json.dumps(report, indent=1))
    print("\nbrowser latency:", json.dumps(report))


def test_rapid_slider_moves_end_on_the_last_value_each_answered_by_the_grid(page, playground_view):
    """Three quick key presses: each is answered from the grid (nothing trains), the last value's run stays."""
    view = playground_view
    clear(page)
    for _ in range(3):
        alpha = press_on_slider(view, "alpha", "ArrowRight")
    assert alpha == pytest.approx(0.65)
    wait_for_log(page, lambda log: any(s["text"].endswith("(from the grid)") for s in log.statuses))
    log = wait_until_quiet(page)

    expected = status_text(_final(TrainConfig(alpha=alpha)), from_grid=True)
    assert without_timing(status_of(view)) == expected
    assert not [s for s in log.statuses if s["text"].startswith("training")], "the grid had every value"
    assert_no_error_output(page)


def _final(config: TrainConfig) -> History:
    *_, history = training_run(config)  # the generator's last item is the finished History
    return history


def test_strategy_change_mid_run_then_stop(page, playground_view) -> None:
    """Steps to 1000, another strategy mid-run, then Stop: the new run is shown, and Stop freezes it."""
    view = playground_view
    new_config = TrainConfig(strategy="alternating_steps", steps=1000)
    full = _final(new_config)  # the reference run, computed before the clicks

    assert press_on_slider(view, "steps", "End") == 1000
    wait_for_status(view, lambda s: "/1000" in s and (step_of(s) or 0) >= 100, what="the 1000-step run")
    clear(page)
    view.locator(".widget-dropdown:has(.widget-label:text-is('strategy')) select").select_option("alternating_steps")

    def new_run_under_way(text: str) -> bool:
        """Past step 300, with exactly the losses of the new config's run at that step."""
        step = step_of(text) or 0
        return step >= 300 and without_timing(text) == history_at(full, step, stopped=False).message

    wait_for_status(view, new_run_under_way, what="the alternating_steps run to pass step 300")
    view.get_by_role("button", name="Stop").click()
    stopped = wait_for_status(view, lambda s: s.startswith("stopped"), timeout_s=30, what="Stop to take effect")
    log = wait_until_quiet(page, quiet_s=1.5)

    step = step_of(stopped)
    assert step < 1000, "Stop should end the run before its last step"
    assert without_timing(stopped) == history_at(full, step, stopped=True).message, "not the last config's run"
    assert log.statuses[-1]["text"] == stopped, "nothing may change after Stop"
    changed, clicked = log.first_input("change"), log.last_input("click")
    assert log.distinct_frames(after_ms=changed, before_ms=clicked) >= 3, "the plot should change while it trains"
    report_latency([], fps=log.distinct_frames(after_ms=changed, before_ms=clicked) / ((clicked - changed) / 1000))
    stop_s = (next(s["t"] for s in log.statuses if s["text"].startswith("stopped")) - clicked) / 1000
    print(f"\nbrowser: Stop click to 'stopped' status: {stop_s:.3f} s")
    assert view.locator(".widget-dropdown:has(.widget-label:text-is('strategy')) select").input_value() == (
        "alternating_steps"
    )
    assert log.frames[-1]["t"] > clicked, "the stopped run should draw its final frame"
    assert_no_error_output(page)


def test_picking_a_weighting_of_the_pareto_front_moves_the_sliders(page, playground_view):
    """The menu under the Pareto panel (an image cannot be clicked): the sliders follow, the grid's run shows."""
    view = playground_view
    clear(page)
    view.locator(".mtl-teach-front-choice select").select_option(label="alpha=0.8, beta=0.5")
    wait_for_log(page, lambda log: any(s["text"].endswith("(from the grid)") for s in log.statuses))
    wait_until_quiet(page)
    assert float(slider(view, "alpha").locator(".widget-readout").inner_text()) == 0.8
    assert float(slider(view, "beta").locator(".widget-readout").inner_text()) == 0.5
    expected = status_text(_final(TrainConfig(alpha=0.8, beta=0.5)), from_grid=True)
    assert without_timing(status_of(view)) == expected
    assert_no_error_output(page)
