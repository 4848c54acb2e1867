"""What the site and slide builders read from the notebooks, for every edition of the course.

An edition is one language: English in notebooks/, and each translation in a
sub-folder named by its language code (e.g. notebooks/zh-CN/, issue 15). Each
edition's pages are built into their own folder with the same page names, so a
language switch can point at the same page in another edition. Adding a
language is one entry in EDITIONS (its folder and the few labels the builders
write themselves); everything else comes from its notebooks.

Nothing here runs a notebook: the builders show the outputs stored (and
validated by nbval) in each file.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from notebook_header import COLAB_CELL, colab_url

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
BADGE_LINE = re.compile(r"^\[!\[Open In Colab\]\(.*\)\]\(.*\)\s*$", re.MULTILINE)
BOLD_LABEL_LINE = re.compile(r"^\*\*[^*]+\*\*\s*(\S.*)$", re.MULTILINE)  # "**Question:** ...", in any language


@dataclass(frozen=True, eq=False)  # compared (and hashed) by identity: one object per edition
class Edition:
    """One language of the course: where its notebooks are and the labels the builders write."""

    language: str  # BCP 47 code, and the edition's folder in the built site: "en", "zh-CN"
    subfolder: str  # where its notebooks are, under notebooks/: "" for English, else the language code
    sphinx_language: str  # Sphinx's code for its own words (search, navigation)
    labels: dict[str, str] = field(default_factory=dict)


EDITIONS = [
    Edition(
        "en",
        "",
        "en",
        {
            "label": "English",
            "course_title": "Combining multi-task losses in PyTorch",
            "course_question": (
                "Should my task losses be **summed into one `backward()`**, "
                "or should each task call **`backward()` separately**?"
            ),
            "answer": "The answer in short",
            "map": "Map of the course",
            "notebook": "Notebook",
            "question": "The question it answers",
            "api": "API reference",
            "api_intro": (
                "The functions and classes of the `mtl_teach` package that the notebooks use, "
                "with their docstrings. Each entry names the notebooks that use it."
            ),
            "used_in": "Used in",
            "run_it": "Run it",
            "open_in_colab": "Open in Colab",
            "run_locally": (
                "or on your machine, in a clone of the repository: <code>make lab</code> opens JupyterLab "
                "on the notebooks, <code>make test</code> re-runs every notebook and compares its outputs "
                "with the ones shown here."
            ),
            "show_solution": "Show the solution",
            "hide_solution": "Hide the solution",
            "widget_note": "An interactive control: run the notebook (in Colab or JupyterLab) to use it.",
            "slides": "Slides",
            "question_label": "**Question:**",  # the first cell's question line starts with it
            "question_mark": "?",
            "answer_heading": "## Answer",  # the last cell starts with it
        },
    ),
    Edition(
        "zh-CN",
        "zh-CN",
        "zh_CN",
        {
            "label": "简体中文",
            "course_title": "在 PyTorch 中组合多任务损失",
            "course_question": (
                "多个任务的损失应该**相加后调用一次 `backward()`**，还是每个任务**分别调用 `backward()`**？"
            ),
            "answer": "简短的回答",
            "map": "课程地图",
            "notebook": "笔记本",
            "question": "它回答的问题",
            "api": "API 参考",
            "api_intro": "笔记本中用到的 `mtl_teach` 包的函数和类及其文档字符串；每一项都列出用到它的笔记本。",
            "used_in": "用于",
            "run_it": "运行",
            "open_in_colab": "在 Colab 中打开",
            "run_locally": (
                "或在本机克隆仓库后运行：<code>make lab</code> 在笔记本目录中打开 JupyterLab，"
                "<code>make test</code> 重新运行每个笔记本，并把输出与这里显示的比对。"
            ),
            "show_solution": "显示答案",
            "hide_solution": "隐藏答案",
            "widget_note": "交互控件：请运行笔记本（在 Colab 或 JupyterLab 中）来使用它。",
            "slides": "幻灯片",
            "question_label": "**问题：**",
            "question_mark": "？",
            "answer_heading": "## 答案",
        },
    ),
]


def editions_present(root: Path = NOTEBOOKS) -> list[Edition]:
    """The editions that have notebooks under `root` now (English first)."""
    return [e for e in EDITIONS if notebooks_of(e, root)]


def edition_of(path: Path) -> Edition:
    """The edition a notebook belongs to, by its folder (notebooks/ is English, notebooks/zh-CN/ Chinese)."""
    folder = path.resolve().parent.name
    return next((e for e in EDITIONS if e.subfolder == folder), EDITIONS[0])


def notebooks_of(edition: Edition, root: Path = NOTEBOOKS) -> list[Path]:
    """The edition's notebooks, in course order (their names start with the number)."""
    folder = root / edition.subfolder
    return sorted(folder.glob("[0-9]*.ipynb")) if folder.is_dir() else []


@dataclass(frozen=True)
class Summary:
    """What the map of the course shows for one notebook, read from its first cell."""

    name: str  # file stem, e.g. "01_weighted_sum"; the page is <name>.html
    title: str  # the "# ..." line, e.g. "01 · The weighted sum of task losses"
    question: str  # the text after the bold label, e.g. "what does ... do ...?"


def summary(path: Path) -> Summary:
    """Title and question of a notebook, from its first cell; a clear error if they are missing."""
    nb = nbformat.read(path, as_version=4)
    first = nb.cells[0].source if nb.cells and nb.cells[0].cell_type == "markdown" else ""
    title = next((line[2:].strip() for line in first.splitlines() if line.startswith("# ")), None)
    question = BOLD_LABEL_LINE.search(first)
    if title is None or question is None:
        raise ValueError(
            f"{path}: the first cell must hold a '# title' line and a '**Question:** ...' line "
            "(tests/test_notebooks_structure.py); the course map is made from them"
        )
    return Summary(path.stem, title, question.group(1).strip())


def answer(path: Path) -> str:
    """The body of the notebook's last cell (its "## Answer"), without the heading."""
    nb = nbformat.read(path, as_version=4)
    last = nb.cells[-1].source if nb.cells and nb.cells[-1].cell_type == "markdown" else ""
    lines = last.splitlines()
    if not lines or not lines[0].startswith("## "):
        raise ValueError(f"{path}: the last cell must be markdown starting with '## Answer'")
    return "\n".join(lines[1:]).strip()


def for_reading(nb: nbformat.NotebookNode, edition: Edition) -> nbformat.NotebookNode:
    """A copy of the notebook as a reader sees it off-line, outputs unchanged otherwise.

    The Colab badge (an image from Colab's server) leaves the first cell (the
    builders put their own "run it" link instead); a widget's output keeps the
    image/png frame the playground stored with it, or becomes a short note
    where there is none (a widget needs a running kernel).
    """
    nb = copy.deepcopy(nb)
    if nb.cells and nb.cells[0].cell_type == "markdown":
        nb.cells[0].source = BADGE_LINE.sub("", nb.cells[0].source).lstrip("\n")
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if WIDGET_VIEW not in data:
                continue
            if "image/png" in data:
                output["data"] = {"image/png": data["image/png"]}
            else:
                note = f'<p class="widget-note">{edition.labels["widget_note"]}</p>'
                output["data"] = {"text/html": note}
            output.pop("metadata", None)
            output["metadata"] = {}
    return nb


def is_hidden(cell: nbformat.NotebookNode) -> bool:
    """A cell JupyterLab shows collapsed: an exercise's solution (metadata jupyter.source_hidden)."""
    return bool(cell.metadata.get("jupyter", {}).get("source_hidden", False))


def is_colab_cell(cell: nbformat.NotebookNode) -> bool:
    """The first code cell every notebook has: it installs the package in Colab, does nothing elsewhere."""
    return cell.cell_type == "code" and cell.source.strip() == COLAB_CELL.strip()


def colab_link(edition: Edition, path: Path) -> str:
    """Where "Open in Colab" goes for this notebook (the badge's address, tools/notebook_header.py)."""
    return colab_url(f"{edition.subfolder}/{path.name}" if edition.subfolder else path.name)
