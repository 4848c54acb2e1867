"""Driving a notebook in JupyterLab the way a learner does: open it, Run All, read what it shows.

The DOM facts these helpers rely on (JupyterLab 4.6, ipywidgets 8):
- the notebook toolbar's `.jp-Notebook-ExecutionIndicator` carries the
  kernel status in `data-status` ("idle", "busy", ...);
- a code cell's `.jp-InputPrompt` reads `[ ]:` before it runs, `[*]:` while
  queued or running and `[n]:` once done;
- errors and stderr streams are rendered by the stderr renderer:
  `.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]`
  (a renderer that throws shows its message the same way);
- a widget output is a `.jp-OutputArea-output` holding the view's element
  (class `jupyter-widgets`) as a child; a widget that failed to render shows
  "Error displaying widget" as the output's own text instead.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from .lab_server import LabServer

PANEL = ".jp-NotebookPanel"

RUN_STATE_JS = """
() => {
  const indicator = document.querySelector('.jp-NotebookPanel .jp-Notebook-ExecutionIndicator');
  const prompts = [...document.querySelectorAll('.jp-NotebookPanel .jp-CodeCell .jp-InputPrompt')];
  return {status: indicator ? indicator.dataset.status : null, prompts: prompts.map(p => p.textContent.trim())};
}
"""

CELLS_JS = """
() => [...document.querySelectorAll('.jp-NotebookPanel .jp-CodeCell')].map(cell => {
  const outputs = [...cell.querySelectorAll('.jp-OutputArea-output')];
  const stderr = outputs.filter(o => o.matches('[data-mime-type="application/vnd.jupyter.stderr"]'));
  const views = outputs.map(o => o.querySelector(':scope > .jupyter-widgets')).filter(v => v !== null);
  return {
    prompt: cell.querySelector('.jp-InputPrompt').textContent.trim(),
    stderr: stderr.map(o => o.textContent.slice(0, 1500)),
    widget_sizes: views.map(v => [v.getBoundingClientRect().width, v.getBoundingClientRect().height]),
    widget_errors: outputs.filter(o => o.textContent.startsWith('Error displaying widget')).length,
  };
})
"""


@dataclass
class CellView:
    """What one code cell shows after a run."""

    prompt: str
    stderr: list[str]
    widget_sizes: list[tuple[float, float]]
    widget_errors: int

    @property
    def widgets_rendered(self) -> int:
        """Widget views with a visible box (a view of zero size did not render)."""
        return sum(1 for width, height in self.widget_sizes if width > 0 and height > 0)


def open_notebook(page, server: LabServer, name: str, n_code_cells: int) -> None:
    """Open `name` in a fresh JupyterLab page and wait until its kernel is idle and all cells are shown."""
    page.goto(server.url(f"lab/tree/{name}"))
    page.locator(f'{PANEL} .jp-Notebook-ExecutionIndicator[data-status="idle"]').wait_for(timeout=120_000)
    page.locator("#jp-main-statusbar").get_by_text("Idle").wait_for(timeout=120_000)
    deadline = time.monotonic() + 30
    while page.locator(f"{PANEL} .jp-CodeCell").count() < n_code_cells:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{name}: JupyterLab shows fewer than {n_code_cells} code cells")
        time.sleep(0.2)


def click_menu(page, menu: str, item: str) -> None:
    """Click `menu` > `item` in JupyterLab's menu bar."""
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(f"^{re.escape(menu)}$")).click()
    page.locator(".lm-Menu-content .lm-Menu-itemLabel").get_by_text(item, exact=True).click()


def run_all(page, timeout_s: float = 600.0) -> list[str]:
    """Clear all outputs, Run All Cells, and wait until the run is over; returns the input prompts.

    Collapsed code cells are expanded first: a collapsed cell shows no prompt.

    Over means: the kernel is idle and no cell is queued or running, and either
    every code cell has an execution count or that state has lasted 3 s (Run
    All stopped at an error, leaving the cells below it unrun).
    """
    click_menu(page, "View", "Expand All Code")
    click_menu(page, "Edit", "Clear Outputs of All Cells")
    click_menu(page, "Run", "Run All Cells")
    deadline = time.monotonic() + timeout_s
    settled_since = None
    while True:
        state = page.evaluate(RUN_STATE_JS)
        prompts = state["prompts"]
        settled = state["status"] == "idle" and all(p != "[*]:" for p in prompts)
        if settled and all(_execution_count(p) is not None for p in prompts):
            return prompts
        settled_since = (settled_since or time.monotonic()) if settled else None
        if settled_since is not None and time.monotonic() - settled_since > 3.0:
            return prompts
        if time.monotonic() > deadline:
            raise TimeoutError(f"Run All did not finish within {timeout_s} s; prompts: {prompts}")
        time.sleep(0.25)


def _execution_count(prompt: str) -> int | None:
    inside = prompt.removeprefix("[").removesuffix("]:")
    return int(inside) if inside.isdigit() else None


def execution_counts(prompts: list[str]) -> list[int | None]:
    """The execution count each prompt shows (None for a cell that did not run)."""
    return [_execution_count(p) for p in prompts]


def code_cells(page) -> list[CellView]:
    """What every code cell shows now, in notebook order."""
    return [CellView(**cell) for cell in page.evaluate(CELLS_JS)]


def wait_for_widgets(page, expected: list[int], timeout_s: float = 60.0) -> list[CellView]:
    """Wait until each code cell shows `expected[i]` rendered widget views (or time runs out)."""
    deadline = time.monotonic() + timeout_s
    while True:
        cells = code_cells(page)
        if [c.widgets_rendered for c in cells] == expected or time.monotonic() > deadline:
            return cells
        time.sleep(0.25)
