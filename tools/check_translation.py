"""Is a translated notebook the English one with only its words changed?

An edition of the course in another language (notebooks/zh-CN/, see
tools/course_notebooks.py) shares the English edition's code: the same cells,
in the same order, of the same kinds, and every code cell the same once its
comments are taken out (comments may be translated). Only markdown cells and
comments change. `translation_problems(english, translated)` lists what breaks
that; tests/test_translation.py runs it on every translated notebook, and a
translator runs it while working:

    python tools/check_translation.py notebooks/zh-CN/01_weighted_sum.ipynb

(the English twin is the notebook of the same name in notebooks/).
"""

from __future__ import annotations

import io
import sys
import tokenize
from pathlib import Path

import nbformat

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
IGNORED = (tokenize.COMMENT, tokenize.NL, tokenize.ENCODING)


def code_without_comments(source: str) -> list[tuple[int, str]]:
    """The cell's Python tokens with comments and blank lines left out, as (type, text) pairs.

    Two cells give the same list exactly when they differ only in comments and
    in blank or comment-only lines. Layout inside a line is compared too (the
    English edition is formatted by ruff, and so is its twin). A line IPython
    reads as a command (`%time ...`, `!pip ...`) is compared as text.
    """
    lines = source.splitlines()
    python = "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in lines)
    magics = [(-1, line.strip()) for line in lines if line.lstrip().startswith(("%", "!"))]
    try:
        tokens = tokenize.generate_tokens(io.StringIO(python + "\n").readline)
        kept = [(tok.type, tok.string) for tok in tokens if tok.type not in IGNORED]
    except (tokenize.TokenError, SyntaxError, IndentationError) as error:
        raise ValueError(f"cannot read this cell as Python ({error}):\n{source}") from error
    return magics + [(kind, text) for kind, text in kept if kind not in (tokenize.DEDENT, tokenize.ENDMARKER)]


def translation_problems(english: nbformat.NotebookNode, translated: nbformat.NotebookNode) -> list[str]:
    """What makes `translated` more than a translation of `english`; empty when it is one."""
    problems = []
    if len(english.cells) != len(translated.cells):
        problems.append(f"{len(translated.cells)} cells, the English edition has {len(english.cells)}")
    for number, (en, other) in enumerate(zip(english.cells, translated.cells), start=1):
        if en.cell_type != other.cell_type:
            problems.append(f"cell {number}: a {other.cell_type} cell where the English has a {en.cell_type} cell")
        elif en.cell_type == "code" and code_without_comments(en.source) != code_without_comments(other.source):
            problems.append(f"cell {number}: the code differs from the English edition's (comments aside)")
        elif en.metadata.get("slideshow") != other.metadata.get("slideshow"):
            problems.append(f"cell {number}: its slide mark differs from the English edition's (tools/mark_slides.py)")
        elif en.metadata.get("jupyter", {}) != other.metadata.get("jupyter", {}):
            problems.append(f"cell {number}: collapsed or shown unlike the English cell (metadata 'jupyter')")
    return problems


def english_twin(path: Path) -> Path:
    """The English notebook a translation is made from: same name, in notebooks/."""
    return NOTEBOOKS / path.name


def main(paths: list[str]) -> int:
    if not paths:
        print("usage: python tools/check_translation.py notebooks/zh-CN/NN_name.ipynb ...", file=sys.stderr)
        return 2
    failed = 0
    for path in map(Path, paths):
        english = nbformat.read(english_twin(path), as_version=4)
        problems = translation_problems(english, nbformat.read(path, as_version=4))
        failed += bool(problems)
        verdict = "\n  ".join(["", *problems]) if problems else "the same code as the English edition"
        print(f"{path}: {verdict}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
