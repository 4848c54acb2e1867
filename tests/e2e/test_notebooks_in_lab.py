"""Every English notebook, opened in JupyterLab and run with Run All, shows no error and renders every widget.

The stored notebook is the reference: a cell must show as many widget views
as it stored widget outputs, and only cells tagged `raises-exception` may
show an error (they must show one). The exercise checks speak the notebook's
language: JupyterLab tells the kernel the notebook's path (mtl_teach.i18n).
The Chinese edition runs the same check from test_chinese_notebooks_in_lab.py
(a module of its own, so that `make test`'s two workers can share the editions).
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from mtl_teach.translations import ZH_CN

from .notebook_page import PANEL, code_cells, execution_counts, open_notebook, run_all, wait_for_widgets
from .paths import NOTEBOOKS

pytestmark = pytest.mark.e2e

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
NOTEBOOK_PATHS = sorted(NOTEBOOKS.glob("*.ipynb"))
NOT_ANSWERED = "Not answered yet: replace None with your answer, run that cell, then run this check again."


def expected_outputs(path: Path) -> tuple[list[bool], list[int]]:
    """Per code cell: whether it is tagged to raise, and how many widget views it stored."""
    cells = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
    raises = ["raises-exception" in c.metadata.get("tags", []) for c in cells]
    widgets = [sum(WIDGET_MIME in out.get("data", {}) for out in c.get("outputs", [])) for c in cells]
    return raises, widgets


def name(path: Path) -> str:
    return path.relative_to(NOTEBOOKS).as_posix()


@pytest.mark.parametrize("path", NOTEBOOK_PATHS, ids=[name(p) for p in NOTEBOOK_PATHS])
def test_notebook_runs_in_lab(page, lab_server, path: Path) -> None:
    runs_in_lab(page, lab_server, path)


def runs_in_lab(page, lab_server, path: Path) -> None:
    """Run All `path` in JupyterLab; fail with every problem seen (errors, widgets, the checks' language)."""
    raises, widgets = expected_outputs(path)
    open_notebook(page, lab_server, name(path), len(raises))

    prompts = run_all(page)

    counts = execution_counts(prompts)
    ran_all = counts == list(range(1, len(raises) + 1))
    cells = wait_for_widgets(page, widgets) if ran_all else code_cells(page)
    problems = [] if ran_all else [f"Run All should run every code cell once, in order; prompts: {prompts}"]
    for number, (cell, should_raise, n_widgets) in enumerate(zip(cells, raises, widgets)):
        if should_raise and not cell.stderr:
            problems.append(f"code cell {number} is tagged raises-exception but showed no error")
        if not should_raise and cell.stderr:
            problems.append(f"code cell {number} showed an error or warning:\n{cell.stderr[0]}")
        if cell.widget_errors:
            problems.append(f"code cell {number}: {cell.widget_errors} widget(s) showed 'Error displaying widget'")
        if ran_all and cell.widgets_rendered != n_widgets:
            problems.append(
                f"code cell {number} rendered {cell.widgets_rendered} widget view(s) "
                f"(sizes {cell.widget_sizes}); the stored notebook has {n_widgets}"
            )
    shown = page.locator(f"{PANEL} .jp-OutputArea-output").all_inner_texts()
    message = ZH_CN[NOT_ANSWERED] if path.parent.name == "zh-CN" else NOT_ANSWERED
    if not any(message in text for text in shown):
        problems.append(f"no exercise check printed {message!r}: the package spoke another language")
    assert not problems, f"{name(path)}:\n" + "\n".join(problems)
