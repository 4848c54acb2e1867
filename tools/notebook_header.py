"""The Colab badge and the Colab install cell every notebook starts with, kept in one place.

Every notebook opens with a markdown cell holding the badge (a link that opens that
notebook in Google Colab) and, as its first code cell, `COLAB_CELL`: in Colab it
installs `mtl_teach` from the project's repository; anywhere else it does nothing.
The repository address lives only here (`REPOSITORY`); change it here and run

    python tools/notebook_header.py notebooks/*.ipynb notebooks/zh-CN/*.ipynb

to rewrite the badge and the Colab cell of every notebook. `header_problems(...)`
lists what is out of date; tests/test_notebooks_structure.py uses it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat

REPOSITORY = "https://github.com/mtl-teach/mtl-teach"  # the one place holding the repository URL
BRANCH = "main"
NOTEBOOK_DIR = "notebooks"  # where the notebooks live inside the repository

COLAB_CELL = f"""\
# In Google Colab, install the course package (torch, numpy, matplotlib and ipywidgets come with Colab).
# Anywhere else this cell does nothing: install the project as the README says.
import sys

if "google.colab" in sys.modules:
    import subprocess

    package = "mtl-teach @ git+{REPOSITORY}@{BRANCH}"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", package], check=True)"""


def colab_url(notebook_name: str) -> str:
    """Address that opens `notebook_name` (e.g. '01_weighted_sum.ipynb') from GitHub in Colab."""
    github_path = REPOSITORY.removeprefix("https://github.com/")
    return f"https://colab.research.google.com/github/{github_path}/blob/{BRANCH}/{NOTEBOOK_DIR}/{notebook_name}"


def badge(notebook_name: str) -> str:
    """The 'Open in Colab' badge as one markdown line."""
    image = "https://colab.research.google.com/assets/colab-badge.svg"
    return f"[![Open In Colab]({image})]({colab_url(notebook_name)})"


def _first_code_cell(nb: nbformat.NotebookNode) -> nbformat.NotebookNode | None:
    return next((c for c in nb.cells if c.cell_type == "code"), None)


def header_problems(nb: nbformat.NotebookNode, notebook_name: str) -> list[str]:
    """What is missing or stale in the notebook's header; empty when it is right."""
    problems = []
    first = nb.cells[0] if nb.cells else None
    if first is None or first.cell_type != "markdown":
        problems.append("the first cell must be markdown (badge, title, question)")
    elif not first.source.startswith(badge(notebook_name)):
        problems.append(f"the first cell must start with the Colab badge: {badge(notebook_name)}")
    code = _first_code_cell(nb)
    if code is None or code.source != COLAB_CELL:
        problems.append("the first code cell must be tools/notebook_header.py's COLAB_CELL, unchanged")
    return problems


def apply_header(nb: nbformat.NotebookNode, notebook_name: str) -> None:
    """Put the current badge and Colab cell into `nb` (in place).

    An old badge line (one that starts with '[![Open In Colab]') is replaced;
    the Colab cell is recognised by its `"google.colab" in sys.modules` test.
    """
    first = nb.cells[0]
    if first.cell_type != "markdown":
        raise ValueError(f"{notebook_name}: the first cell is {first.cell_type}, expected markdown (title, question)")
    lines = first.source.split("\n")
    if lines and lines[0].startswith("[![Open In Colab]"):
        lines = lines[1:]
    first.source = "\n".join([badge(notebook_name), *lines])
    code = _first_code_cell(nb)
    if code is not None and '"google.colab" in sys.modules' in code.source:
        code.source = COLAB_CELL
    else:
        cell = nbformat.v4.new_code_cell(COLAB_CELL)
        nb.cells.insert(nb.cells.index(code) if code is not None else 1, cell)


def notebook_name(path: Path) -> str:
    """The path under notebooks/: "01_weighted_sum.ipynb", or "zh-CN/01_weighted_sum.ipynb" in a sub-folder."""
    folder = path.resolve().parent.name
    return path.name if folder == NOTEBOOK_DIR else f"{folder}/{path.name}"


def main(paths: list[str]) -> int:
    if not paths:
        print("usage: python tools/notebook_header.py notebooks/*.ipynb", file=sys.stderr)
        return 2
    for path in map(Path, paths):
        nb = nbformat.read(path, as_version=4)
        before = nbformat.writes(nb)
        apply_header(nb, notebook_name(path))
        if nbformat.writes(nb) != before:
            nbformat.write(nb, path)
            print(f"updated {path} (re-execute it: python tools/execute_notebooks.py {path})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
