"""The Chinese edition is the English one with only its words changed, and says each term one way.

tools/check_translation.py compares a translated notebook with its English twin
(same cells, same kinds, same code once comments are out); these tests run it
on every notebook of notebooks/zh-CN/, and check what the package shows in
Chinese: every exercise hint a notebook passes to `check` has a translation.
"""

import ast
import sys
from pathlib import Path

import nbformat
import pytest

from mtl_teach.translations import ZH_CN

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from check_translation import code_without_comments, translation_problems  # noqa: E402
from course_notebooks import EDITIONS, notebooks_of  # noqa: E402

ENGLISH, CHINESE = EDITIONS
EN_NOTEBOOKS = notebooks_of(ENGLISH)
ZH_NOTEBOOKS = notebooks_of(CHINESE)
GLOSSARY = ROOT / "docs" / "glossary.zh-CN.md"

# Words a translation might use for a term the glossary settles: one idea, one word, in every notebook.
NOT_OUR_WORDS = {
    "反向传递": "反向传播",
    "后向传播": "反向传播",
    "逆向传播": "反向传播",
    "学习速率": "学习率",
    "帕累托前缘": "帕累托前沿",
    "帕累托边界": "帕累托前沿",
    "帕雷托": "帕累托",
    "优化程序": "优化器",
    "计算图表": "计算图",
    "损耗": "损失",
    "坡度": "梯度",
    "滑动条": "滑块",
    "滑杆": "滑块",
    "任务头部": "任务头",
    "您": "你",
}


def read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def test_every_english_notebook_has_its_chinese_twin_and_no_other():
    assert [p.name for p in ZH_NOTEBOOKS] == [p.name for p in EN_NOTEBOOKS]


@pytest.mark.parametrize("path", ZH_NOTEBOOKS, ids=lambda p: p.name)
def test_the_chinese_notebook_has_the_english_code(path):
    assert translation_problems(read(ROOT / "notebooks" / path.name), read(path)) == []


@pytest.mark.parametrize("path", ZH_NOTEBOOKS, ids=lambda p: p.name)
def test_the_chinese_notebook_says_its_language_for_colab(path):
    # In Colab the kernel cannot see the notebook's folder; mtl_teach.i18n reads this instead.
    assert read(path).metadata["mtl_teach"]["language"] == "zh-CN"


@pytest.mark.parametrize("path", ZH_NOTEBOOKS, ids=lambda p: p.name)
def test_the_chinese_notebook_uses_the_glossary_words(path):
    text = "\n".join(cell.source for cell in read(path).cells)
    found = {word: ours for word, ours in NOT_OUR_WORDS.items() if word in text}
    assert found == {}, f"{path.name}: use the glossary's words ({GLOSSARY.name}): {found}"


def test_the_glossary_gives_the_words_the_tests_ask_for():
    glossary = GLOSSARY.read_text(encoding="utf-8")
    missing = sorted({word for word in NOT_OUR_WORDS.values() if word != "你" and word not in glossary})
    assert missing == []


def check_hints(nb: nbformat.NotebookNode) -> list[str]:
    """The hint strings (third argument) of every `check(...)` call in the notebook's code."""
    hints = []
    for cell in nb.cells:
        if cell.cell_type != "code" or "check(" not in cell.source:
            continue
        for node in ast.walk(ast.parse(cell.source)):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "check" and len(node.args) == 3:
                hints.append(ast.literal_eval(node.args[2]))
    return hints


@pytest.mark.parametrize("path", EN_NOTEBOOKS, ids=lambda p: p.name)
def test_every_exercise_hint_has_a_chinese_translation(path):
    hints = check_hints(read(path))
    assert hints, f"{path.name}: no check(answer, is_right, hint) call found"
    assert [hint for hint in hints if hint not in ZH_CN] == []


def test_code_without_comments_ignores_comments_and_only_comments():
    english = "x = 1  # one\n# a note\ny = x + 1\n%time z = 2\n"
    translated = "x = 1  # 一\n# 说明\n\ny = x + 1\n%time z = 2\n"
    assert code_without_comments(english) == code_without_comments(translated)
    for changed in ("x = 2  # 一\ny = x + 1\n%time z = 2\n", "x = 1\ny = x + 1\n%time z = 3\n", 'x = "1"\ny = x + 1\n'):
        assert code_without_comments(english) != code_without_comments(changed), changed
    assert code_without_comments('s = "# not a comment"') != code_without_comments('s = "# 不是注释"')


def test_translation_problems_names_each_kind_of_difference():
    english = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_markdown_cell("# Title"), nbformat.v4.new_code_cell("print(1)  # show it")]
    )
    assert translation_problems(english, english) == []
    twin = nbformat.from_dict(nbformat.v4.new_notebook(cells=[c.copy() for c in english.cells]))
    twin.cells[0].source = "# 标题"
    twin.cells[1].source = "print(1)  # 显示"
    assert translation_problems(english, twin) == []
    twin.cells[1].source = "print(2)"
    code_differs = "cell 2: the code differs from the English edition's (comments aside)"
    assert translation_problems(english, twin) == [code_differs]
    twin.cells[1] = nbformat.v4.new_markdown_cell("print(1)")
    assert "a markdown cell where the English has a code cell" in translation_problems(english, twin)[0]
    twin.cells = twin.cells[:1]
    assert translation_problems(english, twin) == ["1 cells, the English edition has 2"]
    twin.cells.append(nbformat.v4.new_code_cell("print(1)", metadata={"slideshow": {"slide_type": "skip"}}))
    assert "slide mark" in translation_problems(english, twin)[0]


def test_the_chinese_readme_mirrors_the_quickstart_and_lists_every_notebook():
    readme = (ROOT / "README.zh-CN.md").read_text(encoding="utf-8")
    english = (ROOT / "README.md").read_text(encoding="utf-8")
    for command in ("make lab", "make test", "make test TORCH_INDEX=https://download.pytorch.org/whl/cpu"):
        assert command in english and command in readme, command
    assert [p.stem for p in EN_NOTEBOOKS if f"`{p.stem}`" not in readme] == []
    assert "(README.zh-CN.md)" in english and "(README.md)" in readme  # each links to the other
