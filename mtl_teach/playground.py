"""The training playground: controls that retrain the model, with live loss curves.

    playground()                                              # every control
    playground(controls=["alpha", "beta"], tie_beta=True, steps=200)

A changed control retrains at once. Alpha and beta answer instantly: while
the other settings stay fixed, the runs of every alpha/beta slider position
are trained together in the background (`mtl_teach.weight_grid`, one sweep),
so moving those sliders shows the matching run's final curves at once, even
while dragging; a value between the grid's points is trained live. A Pareto
panel shows the grid's final losses and where the current run ended; picking
a point there moves the sliders. The playground is driven the same way from
Python, which is how the tests use it::

    pg = playground(mode="thread")
    pg.controls["alpha"].value = 0.8      # cancels the run in progress, starts a new one
    pg.stop_button.click()
    pg.wait(); pg.history, pg.status

Scheduling, in short: in a notebook a control's callback only records the
request; one worker thread trains the newest request, and a generation
counter drops a stale run (and its frames) between two steps, so the final
frame belongs to the last request. A second thread trains the grid, and
pauses while a run trains (two cores are not enough for both). Headless
(nbclient, nbval) every run is synchronous and there is no grid, so the
stored output is deterministic. Why it is built this way
(kernel subshells, comm threads, what nbval compares): docs/DEVELOPING.md.
"""

from __future__ import annotations

import base64
import functools
import html
import math
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import ipywidgets as widgets

from mtl_teach.config import OPTIMIZERS, ConfigError, TrainConfig
from mtl_teach.data import DIGIT_TASK_NAMES, TWO_TASK_NAMES
from mtl_teach.i18n import tr
from mtl_teach.live import LiveCurves, is_headless
from mtl_teach.pareto import ParetoFigure
from mtl_teach.registry import STRATEGIES, names
from mtl_teach.sweep import SweepStopped
from mtl_teach.train import History, training_run
from mtl_teach.weight_grid import (
    GRID_STEP,
    WeightGrid,
    final_point,
    front_config,
    grid_pairs,
    settings_key,
    slider_values,
)

CONTROLS = ("alpha", "beta", "strategy", "optimizer", "lr", "steps", "batch_size", "seed", "relatedness")
MODES = ("auto", "sync", "thread")
STALE_FRAME_CSS = "<style>.mtl-teach-stale img, img.mtl-teach-stale { opacity: 0.45; }</style>"
_STYLE = {"description_width": "90px"}


def playground(
    *,
    controls: Sequence[str] | None = None,
    tie_beta: bool = False,
    log_scale: bool = False,
    mode: str = "auto",
    grid: bool | None = None,
    **config_overrides: Any,
) -> Playground:
    """Controls, Train/Stop/Reset buttons, a status line, live curves and a Pareto panel, in one cell.

    `config_overrides` set the starting config (e.g. `steps=200`);
    `controls` picks which controls to show (default: all of `CONTROLS`);
    `tie_beta=True` keeps beta = 1 - alpha; `grid` trains the alpha/beta
    grid that answers those sliders at once and draws the Pareto panel
    (default: when a person watches and alpha or beta is a control). Put
    the call last in the cell (or `display()` the result) to show it.
    """
    config = TrainConfig().replace(**config_overrides)
    chosen = CONTROLS if controls is None else _checked_controls(controls)
    return Playground(config, chosen, tie_beta, log_scale, mode, grid)


def _checked_controls(controls: Sequence[str]) -> tuple[str, ...]:
    """The control names as a tuple; a clear error for a lone string, an unknown name or a repeat."""
    if isinstance(controls, str):
        raise ValueError(f"controls={controls!r} must be a list of control names, e.g. [{controls!r}]")
    for name in controls:
        if name not in CONTROLS or list(controls).count(name) > 1:
            raise ValueError(f"control {name!r} is not allowed: choose distinct names from {list(CONTROLS)}")
    return tuple(controls)


def make_control(name: str, value: Any) -> widgets.ValueWidget:
    """The widget for one config field, starting at `value`."""
    if name in ("alpha", "beta"):
        return widgets.FloatSlider(value, min=0.0, max=max(1.0, value), step=GRID_STEP, readout_format=".2f")
    if name == "strategy":
        return widgets.Dropdown(options=names(), value=value)  # the registry, in teaching order
    if name == "optimizer":
        return widgets.Dropdown(options=list(OPTIMIZERS), value=value)
    if name == "lr":
        low, high = min(-4, math.floor(math.log10(value))), max(1, math.ceil(math.log10(value)))
        return widgets.FloatLogSlider(value, base=10, min=low, max=high, step=0.1, readout_format=".2g")
    if name == "steps":
        return widgets.IntSlider(value, min=min(10, value), max=max(1000, value), step=10)
    if name == "batch_size":
        return widgets.Dropdown(options=sorted({8, 16, 32, 64, 128, 256, 512, value}), value=value)
    if name == "seed":
        return widgets.BoundedIntText(value, min=0, max=max(10**6, value))
    if name == "relatedness":
        return widgets.FloatSlider(value, min=-1.0, max=1.0, step=0.1, readout_format=".1f")
    raise ValueError(f"control {name!r} is not known; choose from {list(CONTROLS)}")


def run_message(history: History) -> str:
    """`History.message` in the notebook's language: the step and each task's last loss, or why it diverged."""
    config = history.config
    if history.diverged_at is not None:
        return tr(
            "diverged: {why} at step {step} (lr={lr}, optimizer={optimizer}); try a smaller lr",
            why=tr(history.diverged_because), step=history.diverged_at, lr=f"{config.lr:g}", optimizer=config.optimizer,
        )  # fmt: skip
    losses = ", ".join(f"{name} {values[-1]:.4g}" for name, values in history.losses.items() if values)
    text = "stopped {done}/{steps}: {losses}" if history.stopped_at is not None else "step {done}/{steps}: {losses}"
    return tr(text, done=history.steps_done, steps=config.steps, losses=losses)


def status_text(history: History, timing: bool = True, from_grid: bool = False) -> str:
    """One line: step, per-task losses, and when done the metrics (and elapsed time, or that it came from the grid)."""
    text = run_message(history)
    if history.finished:
        metrics = ", ".join(f"{k} {v:.4g}" for k, v in history.metrics.items())
        text = tr("done, {run}", run=text) + (f"; {metrics}" if metrics else "")
    if from_grid:
        return text + tr(" (from the grid)")  # trained with the whole grid: it has no time of its own
    return text + (f" ({history.elapsed_s:.2f} s)" if timing else "")


def panel_series(strategy: str, task_names: Sequence[str]) -> tuple[str, ...]:
    """The series the playground draws in a third panel for a strategy, by its family.

    Methods that choose the weights: their weights ("weight/<task>"); methods
    that combine gradients: the cosine between the task gradients; the rest:
    none (two panels).
    """
    family = STRATEGIES[strategy].family
    if family == "weighting":
        return tuple(f"weight/{name}" for name in task_names)
    return ("cosine",) if family == "gradient" else ()


class Playground:
    """The widgets and the run scheduler behind `playground()` (see the module docstring)."""

    def __init__(
        self,
        config: TrainConfig,
        controls: Sequence[str],
        tie_beta: bool,
        log_scale: bool,
        mode: str,
        grid: bool | None = None,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode={mode!r} is not known; choose from {list(MODES)}")
        if grid not in (None, True, False):
            raise ValueError(f"grid={grid!r} is not allowed: choose True, False or None (decide automatically)")
        headless = is_headless()
        self.mode = ("sync" if headless else "thread") if mode == "auto" else mode
        self.initial = config
        self.tie_beta = tie_beta
        weights_shown = "alpha" in controls or "beta" in controls
        self.grid = WeightGrid() if (self.mode == "thread" and weights_shown if grid is None else grid) else None
        self.controls = {name: self._wire(name, make_control(name, getattr(config, name))) for name in controls}
        self.train_button = widgets.Button(description="Train", icon="play", button_style="success")
        self.stop_button = widgets.Button(description="Stop", icon="stop")
        self.reset_button = widgets.Button(description="Reset", icon="undo")
        self.train_button.on_click(lambda _: self.train())
        self.stop_button.on_click(lambda _: self.stop())
        self.reset_button.on_click(lambda _: self.reset())
        self.status_line = widgets.HTML()
        self.status_line.add_class("mtl-teach-status")  # stable hooks for styling and browser tests
        self.image = widgets.Image(format="png", layout=widgets.Layout(max_width="100%"))
        self.image.add_class("mtl-teach-curves")
        task_names = DIGIT_TASK_NAMES if config.dataset == "multi_digits" else TWO_TASK_NAMES
        self.curves = LiveCurves(task_names, log_scale, live=not headless or self.mode == "thread")
        self._make_pareto_widgets(task_names)
        self.widget = self._layout()
        self.history: History | None = None  # the run shown now
        self._status = ""
        self._quiet = threading.local()  # set while the playground moves its own controls
        self._lock = threading.Condition()  # guards everything below, and what is shown
        self._generation = 0  # bumped by every request: a run of an older one is stale
        self._stopping = False
        self._pending: tuple[TrainConfig, int, bool] | None = None  # next run for the worker
        self._worker: threading.Thread | None = None
        self._closed = False
        self._grid_wanted: tuple[TrainConfig, tuple] | None = None  # (settings, weightings) the grid should hold
        self._grid_generation = 0  # bumped when the wanted grid changes: a sweep for an older one stops
        self._grid_done = 0  # the grid generation trained last
        self._grid_thread: threading.Thread | None = None
        self._pareto_lock = threading.Lock()  # the Pareto figure is drawn by the worker and the grid thread
        self._sync_tied_beta()
        self.train()

    def _make_pareto_widgets(self, task_names: Sequence[str]) -> None:
        """The Pareto panel, the menu of its weightings, and the grid's status line (none without a grid)."""
        self.pareto = ParetoFigure(task_names) if self.grid is not None else None
        self.pareto_image = widgets.Image(format="png", layout=widgets.Layout(max_width="100%"))
        self.pareto_image.add_class("mtl-teach-pareto")
        self.front_choice = widgets.Dropdown(options=[], value=None, description=tr("weighting"), style=_STYLE)
        self.front_choice.add_class("mtl-teach-front-choice")
        self.front_choice.observe(self._on_front_choice, names="value")
        self.grid_line = widgets.HTML()
        self.grid_line.add_class("mtl-teach-grid-status")

    # ---- what a learner (or a test) does ----

    def train(self, keep_ghost: bool = True) -> None:
        """Start a run with the current control values (from the grid if it has it); a run in progress is cancelled."""
        try:
            config = self.config_from_controls()
        except ConfigError as err:
            with self._lock:
                self._generation += 1  # runs in progress or waiting no longer match the controls
                self._pending = None
                self._set_status(f"⚠ {err}")
            return
        with self._lock:
            if self._closed:
                return
            self._generation += 1
            self._stopping = False
            if self.mode == "thread":
                self._request_run(config, keep_ghost)
                self._request_grid(config)
                return
            generation = self._generation
            self._request_grid(config, start_thread=False)
        self._run_safely(config, generation, keep_ghost)
        if self.grid is not None:
            self._grid_work()  # synchronous too: the grid is ready when train() returns

    def stop(self) -> None:
        """Stop the run in progress after its current step; its curves stay."""
        with self._lock:
            self._stopping = True

    def reset(self) -> None:
        """Controls back to their starting values, no ghost, and retrain."""
        with self._quietly():
            for name, control in self.controls.items():
                control.value = getattr(self.initial, name)
        self._sync_tied_beta()
        self.train(keep_ghost=False)

    def wait(self, timeout: float = 120.0) -> bool:
        """Block until no run and no grid is training or waiting; False if `timeout` (s) passed first."""
        with self._lock:
            return self._lock.wait_for(lambda: self._worker is None and self._grid_thread is None, timeout)

    def close(self, timeout: float = 120.0) -> None:
        """Stop training (the run and the grid), unwire and close the widgets (gone from the page)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True  # from now on, train() does nothing
            self._generation += 1
            self._grid_generation += 1
            self._pending = None
            self._lock.notify_all()  # a grid waiting for the run to end sees it is closed
        for control in self.controls.values():
            control.unobserve(self._on_control_change, names="value")
        self.front_choice.unobserve(self._on_front_choice, names="value")
        self.wait(timeout)
        self._close_widgets()

    def config_from_controls(self) -> TrainConfig:
        """The config the controls describe now (raises ConfigError if it is not allowed).

        Alpha and beta are rounded to 10 decimals, so a slider's float steps
        (0.1 + 0.2 = 0.30000000000000004) land exactly on the grid's values.
        """
        values = {name: control.value for name, control in self.controls.items()}
        for name in ("alpha", "beta"):
            if isinstance(values.get(name), float):
                values[name] = round(values[name], 10)
        if self.tie_beta:
            values["beta"] = self._tied_beta()
        return self.initial.replace(**values)

    @property
    def status(self) -> str:
        """The status line as plain text."""
        return self._status

    def summary(self) -> str:
        """Config and final state without timings: the stable text an executed notebook stores."""
        try:
            config = self.config_from_controls()
        except ConfigError:
            config = self.initial
        fields = ", ".join(f"{name}={getattr(config, name)!r}" for name in CONTROLS)
        shown = status_text(self.history, timing=False) if self.history is not None else self._status
        return f"Playground({fields})\n{shown}"

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        # Built by hand: ipywidgets 8 has Widget._repr_mimebundle_, but 7 (Colab's) does not.
        view = {"version_major": 2, "version_minor": 0, "model_id": self.widget.model_id}
        bundle = {"application/vnd.jupyter.widget-view+json": view, "text/plain": self.summary()}
        if self.curves.png is not None:  # what a static renderer (GitHub, slides) shows
            bundle["image/png"] = base64.b64encode(self.curves.png).decode("ascii")
        return bundle

    # ---- the runs ----

    def _request_run(self, config: TrainConfig, keep_ghost: bool) -> None:
        """(Under the lock.) Hand `config` to the worker; say at once that the frame is stale unless the grid has it."""
        if self.grid is None or self.grid.history(config) is None:
            alpha, beta = f"{config.alpha:g}", f"{config.beta:g}"
            self._set_status(tr("training {strategy}, alpha={alpha}, beta={beta} ...", strategy=config.strategy,
                                alpha=alpha, beta=beta))  # fmt: skip
            self.image.add_class("mtl-teach-stale")  # the frame shown is the old run's until the new one draws
        self._pending = (config, self._generation, keep_ghost)
        if self._worker is None:
            self._worker = threading.Thread(target=self._work, name="mtl-teach-playground", daemon=True)
            self._worker.start()

    def _work(self) -> None:
        """The worker thread: run the newest request until none is left, then exit."""
        while True:
            with self._lock:
                if self._pending is None:
                    self._worker = None
                    self._lock.notify_all()
                    return
                config, generation, keep_ghost = self._pending
                self._pending = None
            self._run_safely(config, generation, keep_ghost)

    def _run_safely(self, config: TrainConfig, generation: int, keep_ghost: bool) -> None:
        try:
            self._run(config, generation, keep_ghost)
        except Exception as err:  # e.g. a strategy failed: say so, and stay usable
            with self._lock:
                if generation == self._generation:
                    self._set_status(tr("⚠ training failed: {error}", error=f"{type(err).__name__}: {err}"))

    def _run(self, config: TrainConfig, generation: int, keep_ghost: bool) -> None:
        """Show `config`'s run: from the grid at once, or trained live with throttled frames until done,
        stopped or superseded."""
        if generation != self._generation:
            return  # superseded before it started
        cached = self.grid.history(config) if self.grid is not None else None
        previous = self.history
        self.curves.set_ghost(previous if keep_ghost and previous is not None and previous.config != config else None)
        self.curves.set_extras(panel_series(config.strategy, self.curves.figure.task_names))
        self.curves.figure.cover(self._alpha_row(config) if cached is not None else [])  # one scale for the row
        self.curves.sink = functools.partial(self._show_frame, generation, cached is not None)
        history = cached if cached is not None else self._train_live(config, generation)
        if history is not None and generation == self._generation:
            self.curves.finish(history)  # the final frame (a stopped run keeps its curves)
            self._show_pareto_point(history)

    def _alpha_row(self, config: TrainConfig) -> list[History]:
        """The grid's runs the alpha slider reaches from `config` (all, or none if some are not trained yet).

        Axis limits that fit them all mean moving alpha never redraws the axes;
        "all or none" keeps the picture the same whatever the grid thread has done so far.
        """
        alphas = slider_values(self.controls["alpha"].max) if "alpha" in self.controls else [config.alpha]
        row = [
            self.grid.history(config.replace(alpha=a, beta=b)) for a, b in grid_pairs(config, alphas, (), self.tie_beta)
        ]
        return row if all(history is not None for history in row) else []

    def _train_live(self, config: TrainConfig, generation: int) -> History | None:
        """Train `config` step by step with live frames; the History as it ended (stopped if superseded)."""
        run = training_run(config)
        history = None
        for history in run:
            if generation != self._generation or self._stopping:
                run.close()  # marks the History as stopped
                break
            self.curves.update(history)
        return history

    def _show_frame(self, generation: int, from_grid: bool, png: bytes, history: History) -> None:
        """Show a frame and its status, unless a newer request made it stale."""
        with self._lock:
            if generation != self._generation:
                return
            self.history = history
            self._set_status(status_text(history, from_grid=from_grid))
            self.image.value = png
            self.image.remove_class("mtl-teach-stale")

    def _set_status(self, text: str) -> None:
        self._status = text
        self.status_line.value = f"<div style='white-space: normal'>{html.escape(text)}</div>"

    # ---- the grid of weightings and the Pareto panel ----

    def _request_grid(self, config: TrainConfig, start_thread: bool = True) -> None:
        """(Under the lock.) Want the grid around `config`; a sweep for another grid stops between two steps."""
        if self.grid is None:
            return
        target = front_config(config)  # a method outside the sum family is shown against the plain sum's front
        alphas = slider_values(self.controls["alpha"].max) if "alpha" in self.controls else []
        betas = slider_values(self.controls["beta"].max) if "beta" in self.controls and not self.tie_beta else []
        pairs = tuple(grid_pairs(target, alphas, betas, self.tie_beta))
        if self._grid_wanted is not None and self._grid_wanted[1] == pairs:
            if settings_key(self._grid_wanted[0]) == settings_key(target):
                return  # the same grid: a sweep in progress goes on
        self._grid_wanted = (target, pairs)
        self._grid_generation += 1
        self._lock.notify_all()
        if start_thread and self._grid_thread is None:
            self._grid_thread = threading.Thread(target=self._grid_work, name="mtl-teach-grid", daemon=True)
            self._grid_thread.start()

    def _grid_work(self) -> None:
        """The grid thread: train the newest wanted grid, then redraw the Pareto panel; exit when none is left."""
        while True:
            with self._lock:
                generation = self._grid_generation
                if self._closed or self._grid_wanted is None or generation == self._grid_done:
                    self._grid_thread = None
                    self._lock.notify_all()
                    return
                target, pairs = self._grid_wanted
            if self._train_grid(target, pairs, generation):
                with self._lock:
                    self._grid_done = generation
                self._refresh_pareto(target)

    def _train_grid(self, target: TrainConfig, pairs: Sequence[tuple[float, float]], generation: int) -> bool:
        """Train the grid's missing runs in one sweep; False if a newer request stopped it."""
        missing = len(self.grid.missing(target, pairs))
        if missing:
            self._set_grid_line(tr("Pareto front: training {count} weightings in the background ...", count=missing))
        try:
            self.grid.train(target, pairs, should_stop=functools.partial(self._grid_should_stop, generation))
        except SweepStopped:
            return False
        except Exception as err:  # a grid that cannot train must not stop the playground: the runs still work
            self._set_grid_line(tr("⚠ the grid could not be trained: {error}", error=f"{type(err).__name__}: {err}"))
        return True

    def _grid_should_stop(self, generation: int) -> bool:
        """Asked before every step of the sweep: wait while a run trains (it goes first), stop if stale."""
        with self._lock:
            self._lock.wait_for(
                lambda: self._worker is None or self._grid_generation != generation or self._closed
            )  # fmt: skip
            return self._grid_generation != generation or self._closed

    def _refresh_pareto(self, target: TrainConfig) -> None:
        """Draw the grid's front, the menu of its weightings, and the shown run's point on it."""
        front = self.grid.front(target)
        with self._pareto_lock:
            self.pareto.set_front(front)
        options = [(f"alpha={a:g}, beta={b:g}", (a, b)) for (a, b), _ in sorted(front)]
        with self._quietly():
            self.front_choice.options = options
        self._set_grid_line(tr("Pareto front of {strategy}: {count} weightings; pick one to show its run",
                               strategy=target.strategy, count=len(front)))  # fmt: skip
        with self._lock:
            shown = self.history
        self._show_pareto_point(shown)

    def _show_pareto_point(self, history: History | None) -> None:
        """Mark where `history` ended on the Pareto panel, and select its weighting in the menu if it is there."""
        if self.pareto is None:
            return
        point, label = None, ""
        if history is not None and history.steps_done > 0 and history.diverged_at is None:
            point = tuple(final_point(history)[:2].tolist())
            config = history.config
            label = f"{config.strategy}, alpha={config.alpha:g}, beta={config.beta:g}"
        with self._pareto_lock:
            self.pareto_image.value = self.pareto.render(point, label)
        weights = None if history is None else history.config.weights
        with self._quietly():
            self.front_choice.value = weights if weights in [value for _, value in self.front_choice.options] else None

    def _set_grid_line(self, text: str) -> None:
        self.grid_line.value = f"<div style='white-space: normal'>{html.escape(text)}</div>"

    def _on_front_choice(self, change: dict[str, Any]) -> None:
        """A weighting picked on the Pareto panel's menu: move the sliders there (the grid answers at once)."""
        if getattr(self._quiet, "active", False) or change["new"] is None:
            return
        alpha, beta = change["new"]
        with self._quietly():
            if "alpha" in self.controls:
                self.controls["alpha"].value = alpha
            if "beta" in self.controls and not self.tie_beta:
                self.controls["beta"].value = beta
        self._sync_tied_beta()
        self.train()

    # ---- the controls ----

    def _wire(self, name: str, control: widgets.ValueWidget) -> widgets.ValueWidget:
        control.description = name
        control.style = _STYLE
        if hasattr(control, "continuous_update"):
            # With a grid, alpha and beta answer at once, so they follow the drag; other sliders retrain on release.
            control.continuous_update = name in ("alpha", "beta") and self.grid is not None
        control.observe(self._on_control_change, names="value")
        return control

    def _on_control_change(self, change: dict[str, Any]) -> None:
        if getattr(self._quiet, "active", False):
            return
        if change["owner"] is self.controls.get("alpha"):
            self._sync_tied_beta()
        self.train()

    def _sync_tied_beta(self) -> None:
        """With tie_beta, show beta = 1 - alpha on a disabled beta slider."""
        beta = self.controls.get("beta")
        if not self.tie_beta or beta is None:
            return
        beta.disabled = True
        with self._quietly():
            beta.value = self._tied_beta()

    def _tied_beta(self) -> float:
        alpha = self.controls["alpha"].value if "alpha" in self.controls else self.initial.alpha
        return round(1.0 - alpha, 10)

    @contextmanager
    def _quietly(self) -> Iterator[None]:
        """Change controls from here without each change starting a run."""
        self._quiet.active = True
        try:
            yield
        finally:
            self._quiet.active = False

    def _layout(self) -> widgets.VBox:
        grid = widgets.GridBox(
            list(self.controls.values()), layout=widgets.Layout(grid_template_columns="repeat(3, minmax(240px, 1fr))")
        )
        buttons = widgets.HBox([self.train_button, self.stop_button, self.reset_button])
        figures: widgets.Widget = self.image
        if self.grid is not None:
            pareto = widgets.VBox([self.pareto_image, self.front_choice, self.grid_line])
            figures = widgets.HBox([self.image, pareto], layout=widgets.Layout(flex_flow="row wrap"))
        return widgets.VBox([grid, buttons, self.status_line, figures, widgets.HTML(STALE_FRAME_CSS)])

    def _close_widgets(self) -> None:
        """Close every widget of the playground, containers and what they hold."""

        def close_tree(widget: widgets.Widget) -> None:
            for child in getattr(widget, "children", ()):
                close_tree(child)
            widget.close()

        close_tree(self.widget)
        for widget in (*self.controls.values(), self.train_button, self.stop_button, self.reset_button):
            widget.close()
        for widget in (self.status_line, self.image, self.pareto_image, self.front_choice, self.grid_line):
            widget.close()  # also those a playground without a grid never showed
