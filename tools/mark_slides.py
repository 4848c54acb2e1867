"""Mark where each slide starts, in the notebooks' own cell metadata (`slideshow.slide_type`).

    python tools/mark_slides.py notebooks/*.ipynb            mark every cell that has no mark yet
    python tools/mark_slides.py --redo notebooks/*.ipynb     recompute every mark by the rule
    python tools/mark_slides.py --check notebooks/*.ipynb    exit 1 if a cell has no mark

The same marks drive the live slides (RISE in JupyterLab) and the static decks
(`make slides`), so a notebook is never copied into a second, slide-shaped
version. The rule, for a cell that has no mark (a mark already there, set by
hand or by an earlier run, is kept unless --redo):

1. a hidden cell (a solution: metadata jupyter.source_hidden) and the Colab
   install cell are skipped: "skip";
2. the first cell (title and question) starts a slide: "slide";
3. a markdown cell that opens with a heading starts a slide ("#" or "##")
   or a sub-slide ("###" and deeper);
4. a markdown cell right after a code cell starts a sub-slide: "subslide"
   (the argument's next point, so a slide holds one point and its code);
5. any other cell continues the slide before it: "-".

Only metadata changes, so the stored outputs (and nbval) are untouched.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat
from course_notebooks import is_colab_cell, is_hidden

SLIDE_TYPES = ("slide", "subslide", "fragment", "-", "skip", "notes")
HEADING = re.compile(r"^(#{1,6})\s")


def is_plumbing(cell: nbformat.NotebookNode) -> bool:
    """A cell not to project: a hidden solution, or the Colab install cell."""
    return is_hidden(cell) or is_colab_cell(cell)


def slide_type_by_rule(cells: list[nbformat.NotebookNode], index: int) -> str:
    """The slide type the module's rule gives cell `index` (see the module docstring)."""
    cell = cells[index]
    if is_plumbing(cell):
        return "skip"
    if index == 0:
        return "slide"
    if cell.cell_type == "markdown":
        heading = HEADING.match(cell.source.lstrip())
        if heading:
            return "slide" if len(heading.group(1)) <= 2 else "subslide"
        shown_before = [c for c in cells[:index] if slide_type_of(c) != "skip" and not is_plumbing(c)]
        if shown_before and shown_before[-1].cell_type == "code":
            return "subslide"
    return "-"


def slide_type_of(cell: nbformat.NotebookNode) -> str | None:
    """The cell's mark, or None when it has none."""
    return cell.metadata.get("slideshow", {}).get("slide_type")


def mark(nb: nbformat.NotebookNode, redo: bool = False) -> int:
    """Give every cell without a mark (every cell, with `redo`) its mark by the rule; return how many changed."""
    changed = 0
    if redo:
        for cell in nb.cells:
            cell.metadata.pop("slideshow", None)
    for index, cell in enumerate(nb.cells):
        if slide_type_of(cell) is None:
            cell.metadata["slideshow"] = {"slide_type": slide_type_by_rule(nb.cells, index)}
            changed += 1
    return changed


def problems(nb: nbformat.NotebookNode) -> list[str]:
    """What keeps the notebook from being presented as marked: cells without a valid mark, a first cell not a slide."""
    found = []
    for index, cell in enumerate(nb.cells):
        kind = slide_type_of(cell)
        if kind is None:
            found.append(f"cell {index} has no slideshow.slide_type")
        elif kind not in SLIDE_TYPES:
            found.append(f"cell {index} has slide_type {kind!r}; allowed: {list(SLIDE_TYPES)}")
    if nb.cells and slide_type_of(nb.cells[0]) != "slide":
        found.append("cell 0 (title and question) must start a slide")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--redo", action="store_true", help="recompute every mark, hand-set ones too")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a mark is missing")
    args = parser.parse_args(argv)
    failed = False
    for path in args.notebooks:
        nb = nbformat.read(path, as_version=4)
        if args.check:
            for problem in problems(nb):
                print(f"{path}: {problem} (run: python tools/mark_slides.py {path})")
                failed = True
            continue
        changed = mark(nb, redo=args.redo)
        if changed:
            nbformat.write(nb, path)
        print(f"{path}: {changed} cell(s) marked")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
