"""The training playground: controls that retrain the model, with live loss curves.

    playground()                                              # every control
    playground(controls=["alpha", "beta"], tie_beta=True, steps=200)

A changed control retrains at once (sliders fire on release). The playground
is driven the same way from Python, which is how the tests use it::

    pg = playground(mode="thread")
    pg.controls["alpha"].value = 0.8      # cancels the run in progress, starts a new one
    pg.stop_button.click()
    pg.wait(); pg.history, pg.status

Scheduling, in short: in a notebook a control's callback only records the
request; one worker thread trains the newest request, and a generation
counter drops a stale run (and its frames) between two steps, so the final
frame belongs to the last request. Headless (nbclient, nbval) every run is
synchronous, so the stored output is deterministic. Why it is built this way
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
from mtl_teach.live import LiveCurves, is_headless
from mtl_teach.registry import STRATEGIES, names
from mtl_teach.train import History, training_run

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
    **config_overrides: Any,
) -> Playground:
    """Controls, Train/Stop/Reset buttons, a status line and live curves, in one cell.

    `config_overrides` set the starting config (e.g. `steps=200`);
    `controls` picks which controls to show (default: all of `CONTROLS`);
    `tie_beta=True` keeps beta = 1 - alpha. Put the call last in the cell
    (or `display()` the result) to show it.
    """
    config = TrainConfig().replace(**config_overrides)
    return Playground(config, CONTROLS if controls is None else _checked_controls(controls), tie_beta, log_scale, mode)


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
        return widgets.FloatSlider(value, min=0.0, max=max(1.0, value), step=0.05, readout_format=".2f")
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


def status_text(history: History, timing: bool = True) -> str:
    """One line: step, per-task losses, and when done the metrics (and elapsed time)."""
    text = history.message
    if history.finished:
        metrics = ", ".join(f"{k} {v:.4g}" for k, v in history.metrics.items())
        text = f"done, {text}" + (f"; {metrics}" if metrics else "")
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
        self, config: TrainConfig, controls: Sequence[str], tie_beta: bool, log_scale: bool, mode: str
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode={mode!r} is not known; choose from {list(MODES)}")
        headless = is_headless()
        self.mode = ("sync" if headless else "thread") if mode == "auto" else mode
        self.initial = config
        self.tie_beta = tie_beta
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
        self._sync_tied_beta()
        self.train()

    # ---- what a learner (or a test) does ----

    def train(self, keep_ghost: bool = True) -> None:
        """Start a run with the current control values; a run in progress is cancelled."""
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
                self._set_status(f"training {config.strategy}, alpha={config.alpha:g}, beta={config.beta:g} ...")
                self.image.add_class("mtl-teach-stale")  # the frame shown is the old run's until the new one draws
                self._pending = (config, self._generation, keep_ghost)
                if self._worker is None:
                    self._worker = threading.Thread(target=self._work, name="mtl-teach-playground", daemon=True)
                    self._worker.start()
                return
            generation = self._generation
        self._run_safely(config, generation, keep_ghost)

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
        """Block until no run is running or waiting; False if `timeout` (s) passed first."""
        with self._lock:
            return self._lock.wait_for(lambda: self._worker is None, timeout)

    def close(self, timeout: float = 120.0) -> None:
        """Stop training, unwire and close the widgets (a closed playground is gone from the page)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True  # from now on, train() does nothing
            self._generation += 1
            self._pending = None
        for control in self.controls.values():
            control.unobserve(self._on_control_change, names="value")
        self.wait(timeout)
        self._close_widgets()

    def config_from_controls(self) -> TrainConfig:
        """The config the controls describe now (raises ConfigError if it is not allowed)."""
        values = {name: control.value for name, control in self.controls.items()}
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
                    self._set_status(f"⚠ training failed: {type(err).__name__}: {err}")

    def _run(self, config: TrainConfig, generation: int, keep_ghost: bool) -> None:
        """Train `config`, drawing throttled frames, until done, stopped or superseded."""
        if generation != self._generation:
            return  # superseded before it started
        previous = self.history
        self.curves.set_ghost(previous if keep_ghost and previous is not None and previous.config != config else None)
        self.curves.set_extras(panel_series(config.strategy, self.curves.figure.task_names))
        self.curves.sink = functools.partial(self._show_frame, generation)
        run = training_run(config)
        history = None
        for history in run:
            if generation != self._generation or self._stopping:
                run.close()  # marks the History as stopped
                break
            self.curves.update(history)
        if history is not None and generation == self._generation:
            self.curves.finish(history)  # the final frame (a stopped run keeps its curves)

    def _show_frame(self, generation: int, png: bytes, history: History) -> None:
        """Show a frame and its status, unless a newer request made it stale."""
        with self._lock:
            if generation != self._generation:
                return
            self.image.value = png
            self.image.remove_class("mtl-teach-stale")
            self.history = history
            self._set_status(status_text(history))

    def _set_status(self, text: str) -> None:
        self._status = text
        self.status_line.value = f"<div style='white-space: normal'>{html.escape(text)}</div>"

    # ---- the controls ----

    def _wire(self, name: str, control: widgets.ValueWidget) -> widgets.ValueWidget:
        control.description = name
        control.style = _STYLE
        if hasattr(control, "continuous_update"):
            control.continuous_update = False  # sliders retrain on release, not on every pixel
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
        return widgets.VBox([grid, buttons, self.status_line, self.image, widgets.HTML(STALE_FRAME_CSS)])

    def _close_widgets(self) -> None:
        for control in self.controls.values():
            control.close()
        for widget in (self.train_button, self.stop_button, self.reset_button, self.status_line, self.image):
            widget.close()
        for child in self.widget.children:
            child.close()
        self.widget.close()
