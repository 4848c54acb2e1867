"""The site and slide builders (tools/build_site.py, build_slides.py, mark_slides.py), piece by piece.

The built site and decks are opened in Chromium by tests/e2e/test_site.py;
here: the slide marks stored in the notebooks, the slide rule, what the
builders read from a notebook, and that a page missing from the table of
contents fails the build.
"""

from __future__ import annotations

import ast
import base64
import importlib
import inspect
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import build_site  # noqa: E402  (tools/ is not a package)
import course_notebooks  # noqa: E402
import mark_slides  # noqa: E402
from notebook_header import COLAB_CELL, badge, colab_url  # noqa: E402

NOTEBOOK_PATHS = sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
PNG = base64.b64encode(b"\x89PNG not really").decode()


def toy_notebook(name: str = "01_toy.ipynb") -> nbformat.NotebookNode:
    """A notebook of the course's shape, small: header, a heading, code, a playground, a solution, the answer."""
    nb = nbformat.v4.new_notebook()
    playground = nbformat.v4.new_code_cell("playground()")
    playground.outputs = [
        nbformat.v4.new_output(
            "display_data", data={WIDGET_VIEW: {"model_id": "x"}, "image/png": PNG, "text/plain": "Playground()"}
        ),
        nbformat.v4.new_output("display_data", data={WIDGET_VIEW: {"model_id": "y"}, "text/plain": "interactive()"}),
    ]
    solution = nbformat.v4.new_code_cell("answer_1 = 2\nassert answer_1 == 2")
    solution.metadata["jupyter"] = {"source_hidden": True, "outputs_hidden": True}
    nb.cells = [
        nbformat.v4.new_markdown_cell(f"{badge(name)}\n# 01 · A toy\n\n**Question:** does it work?\n\nIntro."),
        nbformat.v4.new_code_cell(COLAB_CELL),
        nbformat.v4.new_markdown_cell("## Setup\n\nText."),
        nbformat.v4.new_code_cell("x = 1"),
        nbformat.v4.new_markdown_cell("More text after code."),
        nbformat.v4.new_markdown_cell("### A detail"),
        playground,
        nbformat.v4.new_markdown_cell("## Solutions"),
        solution,
        nbformat.v4.new_markdown_cell("## Answer\n\nIt works."),
    ]
    return nb


# --- slide marks -----------------------------------------------------------


@pytest.mark.parametrize("path", NOTEBOOK_PATHS, ids=[p.stem for p in NOTEBOOK_PATHS])
def test_stored_notebook_has_slide_marks(path: Path) -> None:
    """Live slides (RISE) read the marks from the notebook: every cell needs one (run tools/mark_slides.py)."""
    nb = nbformat.read(path, as_version=4)
    assert mark_slides.problems(nb) == []
    hidden = [i for i, c in enumerate(nb.cells) if course_notebooks.is_hidden(c)]
    shown = [i for i in hidden if mark_slides.slide_type_of(nb.cells[i]) != "skip"]
    assert shown == [], f"{path.name}: solution cells {shown} would be projected; mark them 'skip'"


def test_slide_rule() -> None:
    nb = toy_notebook()
    assert mark_slides.mark(nb) == len(nb.cells)
    kinds = [mark_slides.slide_type_of(c) for c in nb.cells]
    assert kinds == ["slide", "skip", "slide", "-", "subslide", "subslide", "-", "slide", "skip", "slide"]
    assert mark_slides.problems(nb) == []


def test_mark_keeps_hand_set_marks_unless_redo() -> None:
    nb = toy_notebook()
    nb.cells[3].metadata["slideshow"] = {"slide_type": "fragment"}  # set by hand
    assert mark_slides.mark(nb) == len(nb.cells) - 1
    assert mark_slides.slide_type_of(nb.cells[3]) == "fragment"
    assert mark_slides.mark(nb) == 0  # idempotent
    assert mark_slides.mark(nb, redo=True) == len(nb.cells)
    assert mark_slides.slide_type_of(nb.cells[3]) == "-"


def test_problems_name_the_unmarked_cell_and_a_bad_mark() -> None:
    nb = toy_notebook()
    mark_slides.mark(nb)
    del nb.cells[4].metadata["slideshow"]
    nb.cells[5].metadata["slideshow"]["slide_type"] = "page"
    assert mark_slides.problems(nb) == [
        "cell 4 has no slideshow.slide_type",
        "cell 5 has slide_type 'page'; allowed: ['slide', 'subslide', 'fragment', '-', 'skip', 'notes']",
    ]


def test_mark_slides_changes_only_metadata(tmp_path: Path) -> None:
    """The tool rewrites a notebook with the same cells and outputs (nbval compares those)."""
    path = tmp_path / NOTEBOOK_PATHS[1].name
    path.write_bytes(NOTEBOOK_PATHS[1].read_bytes())
    before = nbformat.read(path, as_version=4)
    assert mark_slides.main(["--redo", str(path)]) == 0
    assert mark_slides.main(["--check", str(path)]) == 0
    after = nbformat.read(path, as_version=4)
    assert [(c.cell_type, c.source, c.get("outputs")) for c in after.cells] == [
        (c.cell_type, c.source, c.get("outputs")) for c in before.cells
    ]
    for cell in after.cells:
        cell.metadata.pop("slideshow")
    assert [c.metadata for c in after.cells] == [
        {k: v for k, v in c.metadata.items() if k != "slideshow"} for c in before.cells
    ]


# --- what the builders read from a notebook ---------------------------------


def test_summary_and_answer_of_every_notebook() -> None:
    for path in NOTEBOOK_PATHS:
        summary = course_notebooks.summary(path)
        assert summary.name == path.stem
        assert summary.title[:2] == path.name[:2], summary.title
        assert summary.question.endswith("?"), summary.question
        assert course_notebooks.answer(path)


def test_summary_of_a_notebook_without_a_question_says_what_is_missing(tmp_path: Path) -> None:
    nb = toy_notebook()
    nb.cells[0].source = "# 01 · A toy\n\nNo question here."
    nbformat.write(nb, tmp_path / "01_toy.ipynb")
    with pytest.raises(ValueError, match=r"01_toy.ipynb: the first cell must hold .*\*\*Question:\*\*"):
        course_notebooks.summary(tmp_path / "01_toy.ipynb")


def test_for_reading_drops_the_badge_and_keeps_the_playground_frame() -> None:
    edition = course_notebooks.EDITIONS[0]
    nb = course_notebooks.for_reading(toy_notebook(), edition)
    assert "colab-badge" not in nb.cells[0].source and nb.cells[0].source.startswith("# 01 · A toy")
    frame, control = nb.cells[6].outputs
    assert frame.data == {"image/png": PNG}  # no widget view, which would need a kernel (or a CDN)
    assert control.data == {"text/html": f'<p class="widget-note">{edition.labels["widget_note"]}</p>'}
    assert toy_notebook().cells[6].outputs[0].data[WIDGET_VIEW]  # the input is left as it was


def test_notebook_page_collapses_solutions_and_links_to_colab(tmp_path: Path) -> None:
    edition = course_notebooks.EDITIONS[0]
    path = tmp_path / "01_toy.ipynb"
    nbformat.write(toy_notebook(), path)
    page = nbformat.reads(build_site.notebook_page(path, edition), as_version=4)
    assert colab_url("01_toy.ipynb") in page.cells[1].source and 'class="run-it"' in page.cells[1].source
    colab, solution = page.cells[2], page.cells[9]
    assert colab.metadata.tags == ["remove-cell"]
    assert solution.metadata.tags == ["hide-cell"]
    assert solution.metadata.mystnb["code_prompt_show"] == edition.labels["show_solution"]


def test_colab_link_of_a_translation_points_into_its_folder() -> None:
    chinese = next(e for e in course_notebooks.EDITIONS if e.language == "zh-CN")
    assert course_notebooks.colab_link(chinese, Path("notebooks/zh-CN/01_x.ipynb")) == colab_url("zh-CN/01_x.ipynb")


def test_package_names_used_follow_imports_and_module_attributes() -> None:
    cells = [
        "import torch\nfrom mtl_teach import aggregators\nfrom mtl_teach.train import train as run\n",
        "import mtl_teach.sweep\n%matplotlib inline\n",
        "d = aggregators.cagrad(G)\nprint(mtl_teach.sweep.sweep.__doc__, torch.ones(1))",
    ]
    assert build_site.package_names_used(cells) == {
        "mtl_teach.aggregators",
        "mtl_teach.sweep",
        "mtl_teach.aggregators.cagrad",
        "mtl_teach.train.train",
        "mtl_teach",
        "mtl_teach.sweep.sweep",
        "mtl_teach.sweep.sweep.__doc__",
    }
    assert build_site.resolve("mtl_teach.aggregators.cagrad")[0] == "mtl_teach.aggregators"
    assert build_site.resolve("mtl_teach.aggregators") is None  # a module: its members are listed instead
    assert build_site.resolve("mtl_teach.sweep.sweep.__doc__") is None


def test_api_entries_cover_every_package_import_of_the_notebooks() -> None:
    """Every function, class or constant a notebook imports from the package has an API entry."""
    entries = build_site.api_entries(NOTEBOOK_PATHS)
    documented = {name for names in entries.values() for name in names}
    imported = set()
    for path in NOTEBOOK_PATHS:
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "code":
                tree = ast.parse("\n".join(x for x in cell.source.splitlines() if not x.startswith(("%", "!"))))
                for node in ast.walk(tree):
                    if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("mtl_teach"):
                        imported |= {(node.module, alias.name) for alias in node.names}
    objects = {(m, n) for m, n in imported if not inspect.ismodule(getattr(importlib.import_module(m), n))}
    assert ("mtl_teach.data", "two_task") in objects
    assert {f"{m}.{n}" for m, n in objects} <= documented
    assert "mtl_teach.aggregators.cagrad" in documented  # reached through `from mtl_teach import aggregators`


# --- the table of contents --------------------------------------------------


def test_check_toc_fails_on_a_notebook_missing_from_the_navigation(tmp_path: Path) -> None:
    (tmp_path / "01_a.html").write_text("<html></html>")
    (tmp_path / "02_b.html").write_text("<html></html>")
    nav = '<div class="sidebar-tree"><ul><li><a href="01_a.html">01</a></li></ul></div>'
    (tmp_path / "index.html").write_text(f"<html><body>{nav}<a href='02_b.html'>elsewhere</a></body></html>")
    notebooks = [Path("01_a.ipynb"), Path("02_b.ipynb")]
    with pytest.raises(build_site.SiteError, match="missing from the site's table of contents: 02_b.ipynb"):
        build_site.check_toc(tmp_path, notebooks)
    (tmp_path / "index.html").write_text(nav.replace("</ul>", '<li><a href="02_b.html#top">02</a></li></ul>'))
    build_site.check_toc(tmp_path, notebooks)


def test_sphinx_fails_on_a_page_left_out_of_the_toctree(tmp_path: Path) -> None:
    """The build's own Sphinx run: a notebook page no toctree lists is an error, not a warning."""
    src = tmp_path / "src"
    src.mkdir()
    nbformat.write(toy_notebook(), src / "01_toy.ipynb")
    nbformat.write(toy_notebook("02_toy.ipynb"), src / "02_toy.ipynb")
    (src / "index.md").write_text("# Course\n\n```{toctree}\n:hidden:\n\n01_toy\n```\n")
    settings = {"language": "en", "editions": [], "extra_static": []}
    with pytest.raises(build_site.SiteError, match="02_toy.*isn't included in any toctree"):
        build_site.run_sphinx(src, tmp_path / "out", settings)
