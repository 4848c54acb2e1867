"""Every notebook of the Chinese edition (notebooks/zh-CN/) runs in JupyterLab as the English one does.

Same check as test_notebooks_in_lab.py, including that the exercise checks
print Chinese: the kernel learns the notebook's language from its path.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .paths import NOTEBOOKS
from .test_notebooks_in_lab import name, runs_in_lab

pytestmark = pytest.mark.e2e

ZH_NOTEBOOK_PATHS = sorted(NOTEBOOKS.glob("zh-CN/*.ipynb"))


def test_the_chinese_edition_has_notebooks() -> None:
    assert len(ZH_NOTEBOOK_PATHS) == len(list(NOTEBOOKS.glob("*.ipynb")))


@pytest.mark.parametrize("path", ZH_NOTEBOOK_PATHS, ids=[name(p) for p in ZH_NOTEBOOK_PATHS])
def test_chinese_notebook_runs_in_lab(page, lab_server, path: Path) -> None:
    runs_in_lab(page, lab_server, path)
