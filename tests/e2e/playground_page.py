"""Watching the playground in the browser: every frame the page shows, every status line, every input.

`watch(root)` installs listeners on the playground's widget view:
- each time the curve image (an ipywidgets `Image`, `img.widget-image`)
  finishes loading a new frame, the time and a hash of its pixels;
- each change of the status line (an ipywidgets `HTML` with the class `mtl-teach-status`);
- each keydown, change and click anywhere on the page (capture phase, so the
  time is taken before any widget code runs).
Times are the page's `performance.now()` in ms, so a latency measured here
is what a learner sees, from the key press to the frame on the page.
"""

from __future__ import annotations

import base64
import io
import re
import time
from dataclasses import dataclass

import numpy as np
from PIL import Image

WATCH_JS = """
(root) => {
  const img = root.querySelector('img.mtl-teach-curves');
  const status = root.querySelector('.mtl-teach-status .widget-html-content');
  const log = {frames: [], statuses: [], inputs: []};
  window.__playground = log;
  const canvas = document.createElement('canvas');
  const context = canvas.getContext('2d', {willReadFrequently: true});
  img.addEventListener('load', () => {
    const t = performance.now();
    canvas.width = img.naturalWidth;
    canvas.height = img.naturalHeight;
    context.drawImage(img, 0, 0);
    const pixels = context.getImageData(0, 0, canvas.width, canvas.height).data;
    let hash = 2166136261;  // FNV-1a over every byte
    for (let i = 0; i < pixels.length; i++) hash = Math.imul(hash ^ pixels[i], 16777619);
    log.frames.push({t, hash: hash >>> 0});
  });
  new MutationObserver(() => log.statuses.push({t: performance.now(), text: status.textContent}))
    .observe(status, {childList: true, subtree: true, characterData: true});
  for (const type of ['keydown', 'change', 'click']) {
    document.addEventListener(type, () => log.inputs.push({t: performance.now(), type}), true);
  }
}
"""

IMAGE_BYTES_JS = """
async (img) => {
  const bytes = new Uint8Array(await (await fetch(img.src)).arrayBuffer());
  let text = '';
  for (const b of bytes) text += String.fromCharCode(b);
  return btoa(text);
}
"""

STATUS_RE = re.compile(r"^(?:done, )?(step|stopped) (\d+)/(\d+)")
TIMING_RE = re.compile(r" \(\d+(?:\.\d+)? s\)$")


@dataclass
class Log:
    """What the page recorded since the last `clear`."""

    frames: list[dict]
    statuses: list[dict]
    inputs: list[dict]

    def distinct_frames(self, after_ms: float = -1.0, before_ms: float = float("inf")) -> int:
        """How many different pictures were shown between the two times."""
        return len({f["hash"] for f in self.frames if after_ms < f["t"] < before_ms})

    def first_input(self, kind: str) -> float:
        return next(i["t"] for i in self.inputs if i["type"] == kind)

    def last_input(self, kind: str) -> float:
        return [i["t"] for i in self.inputs if i["type"] == kind][-1]


def watch(page, root) -> None:
    root.evaluate(WATCH_JS)


def clear(page) -> None:
    page.evaluate("() => { for (const list of Object.values(window.__playground)) list.length = 0; }")


def read(page) -> Log:
    return Log(**page.evaluate("() => window.__playground"))


def status_of(root) -> str:
    return root.locator(".mtl-teach-status .widget-html-content").inner_text().strip()


def grid_status_of(root) -> str:
    """The Pareto panel's line: whether the grid of weightings is training or ready."""
    return root.locator(".mtl-teach-grid-status .widget-html-content").inner_text().strip()


def wait_for_grid(root, timeout_s: float = 180.0) -> str:
    """Wait until the grid of weightings is trained (its line names the front); returns the line."""
    return poll(
        lambda: grid_status_of(root), lambda text: text.startswith("Pareto front of"), timeout_s,
        lambda text: f"the grid to be trained; its line says {text!r}",
    )  # fmt: skip


def without_timing(status: str) -> str:
    """The status line minus its elapsed time, e.g. ' (0.41 s)', which differs run to run."""
    return TIMING_RE.sub("", status)


def step_of(status: str) -> int | None:
    """The step a status line reports (None if it reports none, e.g. a message)."""
    match = STATUS_RE.match(status)
    return int(match.group(2)) if match else None


def poll(read_value, condition, timeout_s: float, describe):
    """Read a value every 20 ms until `condition(value)` holds; returns it.

    On time-out, raises TimeoutError with `describe(last_value)`.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        value = read_value()
        if condition(value):
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout_s} s for {describe(value)}")
        time.sleep(0.02)


def wait_for_status(root, predicate, timeout_s: float = 120.0, what: str = "a status") -> str:
    """Poll the status line until `predicate(text)` holds; returns the text."""
    return poll(lambda: status_of(root), predicate, timeout_s, lambda text: f"{what}; the status line says {text!r}")


def wait_until_quiet(page, quiet_s: float = 1.0, timeout_s: float = 60.0) -> Log:
    """Wait until no frame and no status change arrived for `quiet_s`; returns the log."""
    deadline = time.monotonic() + timeout_s
    while True:
        before = read(page)
        time.sleep(quiet_s)
        after = read(page)
        if (len(after.frames), len(after.statuses)) == (len(before.frames), len(before.statuses)):
            return after
        if time.monotonic() > deadline:
            raise TimeoutError(f"the playground kept changing for {timeout_s} s")


def shown_frame(root) -> np.ndarray:
    """The frame the page shows now, as an RGB array decoded from the image's own PNG bytes."""
    png = base64.b64decode(root.locator("img.mtl-teach-curves").evaluate(IMAGE_BYTES_JS))
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def decode_png(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def differing_pixels(a: np.ndarray, b: np.ndarray) -> float:
    """The fraction of pixels that differ between two frames of the same size (1.0 if sizes differ)."""
    if a.shape != b.shape:
        return 1.0
    return float(np.any(a != b, axis=-1).mean())


def wait_for_log(page, condition, timeout_s: float = 120.0, what: str = "the playground") -> Log:
    """Poll the log until `condition(log)` holds; returns that log."""
    return poll(
        lambda: read(page),
        condition,
        timeout_s,
        lambda log: f"{what}; statuses seen: {[s['text'] for s in log.statuses][-5:]}",
    )
