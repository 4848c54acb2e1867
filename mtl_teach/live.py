"""Live loss curves: a growing History drawn in place while `train()` runs.

Usage in a notebook cell (the curves show themselves on the first frame)::

    curves = LiveCurves(("classification", "regression"))
    history = train(config, on_step=curves.update)
    curves.finish(history)  # always call it: it draws the final frame

`extras=["weight/classification", "weight/regression"]` (any series of
`History.series`: learned weights, or an extras key such as "cosine") adds a
third panel that draws those per-step series the same way.

How it stays fast and flicker-free:

- one IPython display handle (`display(..., display_id=True)`) updated in
  place, never `clear_output` (which flickers and breaks nbval's comparison);
  the frontend needs no extension, so it works in JupyterLab, Colab, VS Code;
- frames are throttled by wall time, and drawing never takes more than about
  a quarter of the time (a slow frame widens the gap to the next one);
- axes, ticks and legend are drawn once and cached; a frame restores that
  picture and draws only the lines (blitting), so a new run with the same
  axis limits costs no full redraw; the PNG keeps a fixed size (no tight
  bbox) and is encoded fast.

When nobody watches (plain Python, or a notebook executed by nbconvert,
nbclient, nbval or papermill) `update` draws nothing and `finish` shows the
one final frame, so an executed notebook stores exactly one figure per cell.
"""

from __future__ import annotations

import base64
import math
import os
import struct
import time
import zlib
from collections.abc import Callable, Sequence

import numpy as np
from IPython.display import display
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.legend_handler import HandlerTuple
from matplotlib.lines import Line2D

from mtl_teach.style import EXTRA_COLORS, TOTAL_COLOR, task_colors
from mtl_teach.train import History

TOTAL = "total"  # the name of the weighted-objective line
_NICE_STEPS = (1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0)
_COARSE_STEPS = (1.0, 1.5, 2.0, 3.0, 5.0, 10.0)  # extras often grow (learned weights): fewer full redraws
# Live frames take at most this share of a run's time (on average, leaving out the full redraw a new
# run's axes need): with that redraw, a 1000-step run takes about 1 / (1 - 0.12) + 0.04 = 1.18x training alone.
DRAW_SHARE = 0.12


def is_headless() -> bool:
    """True when no person watches the output, so runs should be synchronous.

    Set MTL_TEACH_HEADLESS=1 (or 0) to force it. Otherwise: headless outside
    a Jupyter kernel, and for a cell sent with allow_stdin=False, which is what
    nbclient (nbconvert, papermill) and nbval send; JupyterLab, Notebook,
    Colab and VS Code send allow_stdin=True because they can answer input().
    """
    forced = os.environ.get("MTL_TEACH_HEADLESS", "").strip().lower()
    if forced in {"1", "true", "yes"}:
        return True
    if forced in {"0", "false", "no"}:
        return False
    kernel = _current_kernel()
    if kernel is None:
        return True
    get_parent = getattr(kernel, "get_parent", None)  # ipykernel >= 6
    parent = get_parent("shell") if get_parent else getattr(kernel, "_parent_header", {})  # ipykernel 5
    if (parent.get("header") or {}).get("msg_type") != "execute_request":
        return False  # e.g. called from a widget callback: a frontend is there
    return not (parent.get("content") or {}).get("allow_stdin", False)


def _current_kernel():
    """The running ipykernel, or None outside a Jupyter kernel."""
    from IPython import get_ipython

    return getattr(get_ipython(), "kernel", None)


def _in_ipython() -> bool:
    from IPython.core.interactiveshell import InteractiveShell

    return InteractiveShell.initialized()


def _nice_ceiling(value: float, steps: Sequence[float] = _NICE_STEPS) -> float:
    """The smallest of 1, 1.2, 1.5, 2, ... x 10^k (or other `steps`) that is >= value (stable axis limits)."""
    exponent = math.floor(math.log10(value))
    return next(s * 10.0**exponent for s in steps if s * 10.0**exponent >= value * (1 - 1e-12))


def _signed_limits(data: np.ndarray) -> tuple[float, float]:
    """Linear limits in coarse nice steps: from 0 up, and below 0 too if the data goes there (a cosine)."""
    if data.size == 0:
        return (0.0, 1.0)
    high = _nice_ceiling(data.max() * 1.05, _COARSE_STEPS) if data.max() > 0 else 0.0
    low = -_nice_ceiling(-data.min() * 1.05, _COARSE_STEPS) if data.min() < 0 else 0.0
    return (low, high) if high > low else (0.0, 1.0)


def extras_title(keys: Sequence[str]) -> str:
    """The third panel's title for these `History.extras` keys."""
    if all(key.startswith("weight/") for key in keys):
        return "learned weights"
    if tuple(keys) == ("cosine",):
        return "cosine between task gradients"
    return "extras"


def _check_extras(extras: Sequence[str], task_names: tuple[str, ...]) -> tuple[str, ...]:
    """The extras keys as a tuple; a clear error for a lone string, a repeat, or a clash with a line name."""
    if isinstance(extras, str):
        raise ValueError(f"extras={extras!r} must be a list of History.extras keys, e.g. [{extras!r}]")
    keys = tuple(extras)
    for key in keys:
        if not isinstance(key, str) or key in task_names or key == TOTAL or keys.count(key) > 1:
            allowed = f"distinct strings other than {[*task_names, TOTAL]}"
            raise ValueError(f"extras key {key!r} is not allowed: extras must be {allowed}")
    return keys


def _extras_colors(keys: tuple[str, ...], task_colors: dict[str, str]) -> dict[str, str]:
    """A key ending in a task name ("weight/regression") takes that task's colour once; others get new ones."""
    colors, taken, spare = {}, set(), iter(EXTRA_COLORS * len(keys))
    for key in keys:
        task = key.rpartition("/")[2]
        if task in task_colors and task not in taken:
            colors[key] = task_colors[task]
            taken.add(task)
        else:
            colors[key] = next(spare)
    return colors


def _finite(values: Sequence[float]) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    return array[np.isfinite(array)]


class CurveFigure:
    """Per-task losses and the weighted objective (and optionally `History.extras`
    series in a third panel), rendered to PNG by blitting.

    The static picture (axes, ticks, legend) is drawn only when the axis
    limits change; limits follow the data in "nice" steps, so within a run
    they change a few times at most.
    """

    def __init__(
        self,
        task_names: Sequence[str],
        log_scale: bool = False,
        title: str | None = None,
        size: tuple[float, float] | None = None,
        dpi: int = 100,
        extras: Sequence[str] = (),
    ) -> None:
        self.task_names = tuple(task_names)
        self.extras = _check_extras(extras, self.task_names)
        self.log_scale = log_scale  # the loss panels only: extras may be negative
        self.title = title
        n_panels = 3 if self.extras else 2
        width, height = size if size is not None else (4.0 * n_panels, 3.3)  # 4 inches a panel
        self.figure = Figure(figsize=(width, height), dpi=dpi)
        self.canvas = FigureCanvasAgg(self.figure)
        self.panels = tuple(self.figure.subplots(1, n_panels))
        self.task_axes, self.total_axes = self.panels[:2]
        self.extras_axes = self.panels[2] if self.extras else None
        top = 1 - (0.6 if title else 0.42) / height  # margins fixed in inches, whatever the size
        left, right = 0.64 / width, 1 - 0.16 / width
        bottom = 0.8 / height  # tick labels, the x label, and the legend under them: it never covers a curve
        self.figure.subplots_adjust(left=left, right=right, bottom=bottom, top=top, wspace=0.22)
        if title:
            self.figure.suptitle(title)
        colors = task_colors(self.task_names) | {TOTAL: TOTAL_COLOR}
        colors |= _extras_colors(self.extras, colors)
        self.lines: dict[str, Line2D] = {}  # the moving lines, redrawn every frame
        self.ghost_lines: dict[str, Line2D] = {}  # a previous run, faint; drawn with every frame too
        for name, color in colors.items():
            axes = self.total_axes if name == TOTAL else self.extras_axes if name in self.extras else self.task_axes
            (self.lines[name],) = axes.plot([], [], color=color, lw=1.6, animated=True)
            (self.ghost_lines[name],) = axes.plot([], [], color=color, lw=1.2, alpha=0.25, animated=True)
        self.colors = colors
        self._style_axes()
        self.step_text = self.figure.text(0.01, 0.99, "", ha="left", va="top", fontsize=9, animated=True)
        self.legend = None
        self._legend(ghost=False)
        self.has_ghost = False
        self.covered: dict[str, np.ndarray] = {}  # line name -> values the axes must show (`cover`)
        self.limits: tuple | None = None
        self.background = None  # the axes, ticks and legend, drawn when the limits change
        self.ghost_background = None  # the background with the ghost run on it
        self._live_drawn: tuple[History, int] | None = None  # the run the canvas shows live, and its steps
        self.background_draws = 0  # full draws, for tests and benchmarks

    def _style_axes(self) -> None:
        self.task_axes.set_title("task losses (unweighted)", fontsize=10)
        self.total_axes.set_title("weighted objective  Σ w·L", fontsize=10)
        for axes in (self.task_axes, self.total_axes):
            axes.set_xlabel("step")
            if self.log_scale:
                axes.set_yscale("log", nonpositive="mask")
        if self.extras_axes is not None:
            self.extras_axes.set_title(extras_title(self.extras), fontsize=10)
            self.extras_axes.set_xlabel("step")
            self.extras_axes.axhline(0.0, color="0.75", lw=0.8)  # static: part of the cached picture

    def _legend(self, ghost: bool) -> None:
        """One legend for every panel, under the axes (so it never covers a curve), in one row."""
        # Stand-in lines: the real ones are animated, so left out of the cached picture.
        names = [*self.task_names, *self.extras]
        handles: list = [Line2D([], [], color=self.colors[n]) for n in names]
        if ghost:  # one faint swatch per task colour, as the ghost lines are drawn
            handles.append(tuple(Line2D([], [], color=self.colors[n], alpha=0.25) for n in self.task_names))
            names.append("previous run")
        if self.legend is not None:
            self.legend.remove()
        self.legend = self.figure.legend(
            handles, names, loc="lower center", bbox_to_anchor=(0.5, 0.0), ncol=len(names), fontsize=9,
            frameon=False, handler_map={tuple: HandlerTuple(None)},
        )  # fmt: skip

    def set_ghost(self, history: History | None) -> None:
        """Show `history` as faint lines behind the live ones (None removes them)."""
        for name, line in self.ghost_lines.items():
            values = [] if history is None else self._series(history, name)
            line.set_data(np.arange(len(values)), values)
        self.ghost_background = None
        if (history is not None) != self.has_ghost:  # the legend changes: redraw the cached picture
            self.has_ghost = history is not None
            self._legend(ghost=self.has_ghost)
            self.background = None

    def cover(self, histories: Sequence[History]) -> None:
        """Axis limits that fit all these runs (e.g. a grid's): showing any of them then needs no full redraw."""
        self.covered = {}
        for name in self.lines:
            values = [_finite(self._series(h, name)) for h in histories]
            values = np.concatenate(values) if values else np.empty(0)
            self.covered[name] = np.array([values.min(), values.max()]) if values.size else values

    def render(self, history: History, live: bool = False) -> bytes:
        """One frame for `history` as PNG bytes.

        A live frame (`live=True`) leaves out the step label: drawing text
        costs more than drawing every line (the status line says the step);
        and it draws only the steps added since the previous live frame of
        the same run, on top of it (rasterizing whole 1000-step lines was
        half of a frame's cost). The final frame is drawn whole, label included.
        """
        if tuple(history.task_names) != self.task_names:
            raise ValueError(f"this figure draws tasks {self.task_names}, but the run has tasks {history.task_names}")
        limits = self._limits_for(history)
        if limits != self.limits or self.background is None:
            self._draw_background(limits)
        if self.ghost_background is None:  # the axes with the ghost run: cached too, as it stays for a whole run
            self.canvas.restore_region(self.background)
            for line in self.ghost_lines.values():
                line.axes.draw_artist(line)
            self.ghost_background = self.canvas.copy_from_bbox(self.figure.bbox)
            self._live_drawn = None
        first = 0
        if live and self._live_drawn is not None and self._live_drawn[0] is history:
            first = max(self._live_drawn[1] - 1, 0)  # one step back, so the new piece joins the old line
        else:
            self.canvas.restore_region(self.ghost_background)
        self._draw_lines(history, first)
        self._live_drawn = (history, history.steps_done) if live else None
        if not live:
            self.step_text.set_text(_step_label(history))
            self.figure.draw_artist(self.step_text)
        return self._png()

    def _draw_lines(self, history: History, first: int) -> None:
        """Draw each live line from step `first` on; the lines keep all their data (`line_data`)."""
        for name, line in self.lines.items():
            values = self._series(history, name)
            line.set_data(np.arange(first, len(values)), values[first:])
            line.axes.draw_artist(line)
            if first:
                line.set_data(np.arange(len(values)), values)

    def render_empty(self) -> bytes:
        """The axes without data, as PNG bytes (what `LiveCurves.display` shows)."""
        self.canvas.draw()
        self.background = self.ghost_background = self._live_drawn = None
        return self._png()

    def line_data(self) -> dict[str, np.ndarray]:
        """The y values of the live lines as last drawn, by name (tasks, "total", extras keys)."""
        return {name: np.asarray(line.get_ydata(), dtype=float) for name, line in self.lines.items()}

    def _series(self, history: History, name: str) -> Sequence[float]:
        """The values of one line; a series the run has not recorded (yet) is empty."""
        return history.series(name)

    def _limits_for(self, history: History) -> tuple:
        ghost_steps = len(self.ghost_lines[TOTAL].get_xdata())
        x_limits = (0, max(history.config.steps, ghost_steps, 1))
        limits = (x_limits, self._y_limits(history, self.task_names), self._y_limits(history, (TOTAL,)))
        if self.extras:
            limits += (_signed_limits(self._data(history, self.extras)),)
        return limits

    def _data(self, history: History, names: Sequence[str]) -> np.ndarray:
        """The finite values of these lines and of their ghosts, in one array."""
        values = [self._series(history, n) for n in names] + [self.ghost_lines[n].get_ydata() for n in names]
        values += [self.covered.get(n, ()) for n in names]
        return np.concatenate([_finite(v) for v in values])

    def _y_limits(self, history: History, names: Sequence[str]) -> tuple[float, float]:
        data = self._data(history, names)
        if self.log_scale:
            data = data[data > 0]
            if data.size == 0:
                return (1e-3, 10.0)
            low = 10.0 ** math.floor(math.log10(data.min()))
            return (low, max(10.0 ** math.ceil(math.log10(data.max())), 10 * low))  # at least one decade
        top = data.max() if data.size else 0.0
        return (0.0, _nice_ceiling(top * 1.05) if top > 0 else 1.0)

    def _draw_background(self, limits: tuple) -> None:
        x_limits, *y_limits_per_panel = limits
        for axes, y_limits in zip(self.panels, y_limits_per_panel):
            axes.set_xlim(*x_limits)
            axes.set_ylim(*y_limits)
        self.canvas.draw()  # animated artists are left out of this picture
        self.background = self.canvas.copy_from_bbox(self.figure.bbox)
        self.ghost_background = None
        self.limits = limits
        self.background_draws += 1

    def _png(self) -> bytes:
        return png_bytes(np.asarray(self.canvas.buffer_rgba()))


def png_bytes(rgba: np.ndarray) -> bytes:
    """Encode an (H, W, 4) uint8 image as an RGBA PNG, built for speed.

    Every row uses PNG filter 0 (none) and zlib level 1; the rows are the
    canvas's own RGBA bytes, so making them is one contiguous copy (leaving
    out alpha took a strided copy as long as the compression). About 3 ms
    and 36 KB for a plot; Pillow's adaptive filters take several times longer.
    """
    height, width, _ = rgba.shape
    rows = np.empty((height, 1 + 4 * width), dtype=np.uint8)
    rows[:, 0] = 0  # first byte of a row: its filter, none
    rows[:, 1:] = rgba.reshape(height, 4 * width)
    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)  # 8 bits per channel, RGBA
    chunks = [(b"IHDR", header), (b"IDAT", zlib.compress(rows.data, 1)), (b"IEND", b"")]
    return b"\x89PNG\r\n\x1a\n" + b"".join(_png_chunk(tag, data) for tag, data in chunks)


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def _step_label(history: History) -> str:
    if history.diverged_at is not None:
        return f"diverged at step {history.diverged_at}"
    if history.stopped_at is not None:
        return f"stopped at step {history.steps_done}/{history.config.steps}"
    return f"step {history.steps_done}/{history.config.steps}"


FrameSink = Callable[[bytes, History], None]


class LiveCurves:
    """Per-task and total loss curves that redraw in place while a run grows.

    `update(history)` is cheap to call after every step: it draws at most
    `max_fps` frames a second. `finish(history)` always draws the final
    frame. `live=None` decides from `is_headless()`; `sink(png, history)`
    replaces the display handle (the playground sends frames to a widget).
    `extras` names `History.extras` series (learned weights, a cosine) for
    a third panel.
    """

    def __init__(
        self,
        task_names: Sequence[str],
        log_scale: bool = False,
        title: str | None = None,
        max_fps: float = 30.0,
        live: bool | None = None,
        sink: FrameSink | None = None,
        extras: Sequence[str] = (),
    ) -> None:
        if not max_fps > 0:
            raise ValueError(f"max_fps={max_fps!r} is not allowed: it must be a positive number of frames a second")
        self.figure = CurveFigure(task_names, log_scale, title, extras=extras)
        self.max_fps = max_fps
        self.live = (not is_headless()) if live is None else live
        self.sink = sink if sink is not None else self._show
        self.frames_drawn = 0
        self.png: bytes | None = None  # the last frame
        self.last_frame_ms = 0.0
        self.mean_frame_ms = 0.0  # a moving average: one slow frame (new axis limits) does not stall the next ones
        self._last_frame_start = -math.inf
        self._handle = None  # the IPython display handle, made on the first frame

    def update(self, history: History) -> bool:
        """Draw a frame if enough time has passed since the last one; True if it drew."""
        if not self.live:
            return False
        # At most max_fps frames a second, and drawing at most DRAW_SHARE of the time (on average).
        gap = max(1.0 / self.max_fps, self.mean_frame_ms / 1000 / DRAW_SHARE)
        if time.perf_counter() - self._last_frame_start < gap:
            return False
        self._draw(history, live=True)
        return True

    def finish(self, history: History) -> None:
        """Draw the final frame (in every mode, whatever the throttle says)."""
        self._draw(history)

    def set_ghost(self, history: History | None) -> None:
        """Keep `history` (a previous run) on the axes as a faint line; None removes it."""
        self.figure.set_ghost(history)

    def set_extras(self, extras: Sequence[str]) -> bool:
        """Draw these `History.extras` series in a third panel (none: two panels); True if that changed.

        Other panels need a new figure, so a ghost run set before is dropped.
        """
        old = self.figure
        if not isinstance(extras, str) and tuple(extras) == old.extras:
            return False
        self.figure = CurveFigure(old.task_names, old.log_scale, old.title, extras=extras)
        self.figure.covered = old.covered
        return True

    def display(self) -> None:
        """Show the (still empty) figure now instead of on the first frame."""
        self._show(self.figure.render_empty(), None)

    def _draw(self, history: History, live: bool = False) -> None:
        self._last_frame_start = time.perf_counter()
        background_draws = self.figure.background_draws
        self.png = self.figure.render(history, live)
        self.sink(self.png, history)
        self.frames_drawn += 1
        self.last_frame_ms = 1000 * (time.perf_counter() - self._last_frame_start)
        if self.figure.background_draws == background_draws:
            # A full redraw (new limits: about once a run) would hold back the next frames for long.
            self.mean_frame_ms += (
                0.3 * (self.last_frame_ms - self.mean_frame_ms) if self.mean_frame_ms else self.last_frame_ms
            )

    def _show(self, png: bytes, history: History | None) -> None:
        """Publish a frame through one display handle: shown once, then updated in place."""
        if not _in_ipython():
            return  # plain Python: nothing to show it in; the frame stays in `self.png`
        text = f"[loss curves] {history.message}" if history is not None else "[loss curves]"
        bundle = {"image/png": base64.b64encode(png).decode("ascii"), "text/plain": text}
        if self._handle is None:
            self._handle = display(bundle, raw=True, display_id=True)
        else:
            self._handle.update(bundle, raw=True)
