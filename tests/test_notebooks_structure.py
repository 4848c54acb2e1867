"""Every notebook has the course's shape: Colab badge and install cell, a question and its
answer, stored outputs from one clean top-to-bottom run with no errors or warnings.

(nbval, run by the README's test command, re-executes the notebooks and compares outputs;
these tests check what nbval does not look at.)
"""

import copy
import subprocess
import sys
import types
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import notebook_header  # noqa: E402  (tools/ is not a package)
from course_notebooks import EDITIONS, edition_of, notebooks_of  # noqa: E402

NOTEBOOKS = [path for edition in EDITIONS for path in notebooks_of(edition)]  # every edition's, English first


def name(path: Path) -> str:
    """The notebook's name under notebooks/, e.g. "zh-CN/01_weighted_sum.ipynb": its id in these tests."""
    return notebook_header.notebook_name(path)


def read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def code_cells(nb: nbformat.NotebookNode) -> list:
    return [c for c in nb.cells if c.cell_type == "code"]


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 4, [p.name for p in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=name)
def test_badge_and_colab_cell_match_the_template(path):
    assert notebook_header.header_problems(read(path), name(path)) == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=name)
def test_first_cell_states_the_question_and_last_cell_answers_it(path):
    nb, labels = read(path), edition_of(path).labels
    question = [line for line in nb.cells[0].source.splitlines() if line.startswith(labels["question_label"])]
    one_question = len(question) == 1 and question[0].rstrip().endswith(labels["question_mark"])
    assert one_question, f"{name(path)}: first cell needs one {labels['question_label']} question line"
    last = nb.cells[-1]
    answers = last.cell_type == "markdown" and last.source.startswith(labels["answer_heading"])
    assert answers, f"{name(path)}: last cell must start with {labels['answer_heading']}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=name)
def test_kernel_is_python3(path):
    assert read(path).metadata.kernelspec.name == "python3"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=name)
def test_stored_run_is_one_clean_pass_top_to_bottom(path):
    cells = code_cells(read(path))
    assert [c.execution_count for c in cells] == list(range(1, len(cells) + 1)), "re-run: make execute"
    for cell in cells:
        for out in cell.outputs:
            if out.output_type == "execute_result":
                assert out.execution_count == cell.execution_count


@pytest.mark.parametrize("path", NOTEBOOKS, ids=name)
def test_no_error_or_warning_outputs(path):
    for number, cell in enumerate(code_cells(read(path))):
        expects_error = "raises-exception" in cell.metadata.get("tags", [])
        for out in cell.outputs:
            assert out.output_type != "error" or expects_error, f"code cell {number}: {out.ename}: {out.evalue}"
            assert not (out.output_type == "stream" and out.name == "stderr"), f"code cell {number}: {out.text}"


def playground_problem(nb: nbformat.NotebookNode) -> str | None:
    """Why `nb` breaks the playground rule, or None.

    A notebook has a playground cell, unless its topic cannot be shown by
    one (issue 11: a playground must train something its topic changes);
    then its metadata says so and why: {"mtl_teach": {"playground": "none: <why>"}}.
    """
    has_cell = any("playground(" in c.source for c in code_cells(nb))
    declared = nb.metadata.get("mtl_teach", {}).get("playground")
    if declared is None:
        return None if has_cell else 'no playground cell (or metadata {"mtl_teach": {"playground": "none: <why>"}})'
    if not isinstance(declared, str) or not declared.startswith("none: ") or len(declared[6:].strip()) < 20:
        return f'metadata mtl_teach.playground must be "none: <why, in a sentence>", got {declared!r}'
    return "it has a playground cell but its metadata says it has none" if has_cell else None


@pytest.mark.parametrize("path", NOTEBOOKS, ids=name)
def test_has_a_playground_or_says_why_not(path):
    problem = playground_problem(read(path))
    assert problem is None, f"{name(path)}: {problem}"


def test_the_playground_rule_refuses_a_silent_or_unexplained_opt_out():
    with_cell = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("playground(steps=10)")])
    without = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(1)")])
    assert playground_problem(with_cell) is None
    assert "no playground cell" in playground_problem(without)
    for declared in ("none", "none: ", "none: too short", "no: the topic is not trainable here", 3):
        without.metadata["mtl_teach"] = {"playground": declared}
        assert "must be" in playground_problem(without), declared
    without.metadata["mtl_teach"] = {"playground": "none: what happens between processes cannot be trained by a slider"}
    assert playground_problem(without) is None
    with_cell.metadata["mtl_teach"] = without.metadata["mtl_teach"]
    assert "says it has none" in playground_problem(with_cell)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=name)
def test_helpers_a_learner_need_not_read_come_from_the_package(path):
    """`check` is mtl_teach.exercises.check; no notebook redefines a package function under its name."""
    import mtl_teach.exercises
    import mtl_teach.losses

    package_names = {"check", *(n for n in dir(mtl_teach.losses) if not n.startswith("_"))}
    for number, cell in enumerate(code_cells(read(path))):
        defined = {line.split("(")[0][4:] for line in cell.source.splitlines() if line.startswith("def ")}
        assert not defined & package_names, f"code cell {number} redefines {defined & package_names}"
    assert any("from mtl_teach.exercises import check" in c.source for c in code_cells(read(path)))
    assert mtl_teach.exercises.check.__module__ == "mtl_teach.exercises"


@pytest.mark.parametrize("edition", EDITIONS, ids=lambda e: e.language)
def test_start_here_maps_every_notebook(edition):
    notebooks = notebooks_of(edition)
    if not notebooks:
        pytest.skip(f"no notebooks in the {edition.language} edition")
    start = next(p for p in notebooks if p.name.startswith("00_"))
    text = "\n".join(c.source for c in read(start).cells if c.cell_type == "markdown")
    missing = [p.name for p in notebooks if p.name not in text]
    assert missing == [], f"add these to the map in {name(start)}: {missing}"


def test_header_check_notices_a_stale_badge_and_an_edited_colab_cell():
    path = NOTEBOOKS[0]
    nb = read(path)
    renamed = notebook_header.header_problems(nb, "another_name.ipynb")
    assert any("badge" in p for p in renamed)
    edited = copy.deepcopy(nb)
    code_cells(edited)[0].source += "\nprint('and something else')"
    assert any("COLAB_CELL" in p for p in notebook_header.header_problems(edited, path.name))


def test_apply_header_is_what_the_notebooks_store():
    for path in NOTEBOOKS:
        nb = read(path)
        before = nbformat.writes(nb)
        notebook_header.apply_header(nb, name(path))
        assert nbformat.writes(nb) == before, f"{name(path)}: run python tools/notebook_header.py"


def run_colab_cell(monkeypatch, in_colab: bool) -> list:
    """Execute COLAB_CELL with subprocess.run recorded instead of run; return the calls."""
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda *args, **kwargs: calls.append((args, kwargs)))
    if in_colab:
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    exec(notebook_header.COLAB_CELL, {})
    return calls


def test_colab_cell_does_nothing_outside_colab(monkeypatch):
    assert run_colab_cell(monkeypatch, in_colab=False) == []


def test_colab_cell_installs_only_the_course_package_in_colab(monkeypatch):
    calls = run_colab_cell(monkeypatch, in_colab=True)
    assert len(calls) == 1
    (command,), kwargs = calls[0]
    assert command[:5] == [sys.executable, "-m", "pip", "install", "--quiet"]
    assert command[5:] == [f"mtl-teach @ git+{notebook_header.REPOSITORY}@{notebook_header.BRANCH}"]
    assert kwargs == {"check": True}
