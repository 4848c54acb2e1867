"""The language a learner reads the package's messages in: English, or Simplified Chinese.

The two editions of the course share their code cells exactly, so the
language cannot be set in a code cell. It is found, in this order, from:
`set_language(...)`; the environment variable MTL_TEACH_LANG; the folder of
the running notebook (`notebooks/zh-CN/...` reads Chinese; JupyterLab passes
the notebook's path as JPY_SESSION_NAME, nbval and VS Code start the kernel
in the notebook's folder); in Colab, the notebook's metadata
`{"mtl_teach": {"language": "zh-CN"}}`. Otherwise English.

`tr(text, **fields)` looks the English text up in the language's catalog
(`mtl_teach.translations`) and fills in the fields; a text without a
translation is shown in English.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from mtl_teach.translations import CATALOGS

LANGUAGES = ("en", *CATALOGS)
_chosen: str | None = None


def set_language(language: str | None) -> None:
    """Show messages in `language` ("en" or "zh-CN"); None goes back to finding it (see the module docstring)."""
    global _chosen
    if language is not None and language not in LANGUAGES:
        raise ValueError(f"language={language!r} is not available; choose one of {list(LANGUAGES)}")
    _chosen = language


def language() -> str:
    """The language messages are shown in now."""
    for found in (_chosen, os.environ.get("MTL_TEACH_LANG"), _from_notebook_path(), _from_colab_metadata()):
        if found in LANGUAGES:
            return found
    return "en"


def tr(text: str, **fields: object) -> str:
    """`text` in the current language (English if the catalog lacks it), with `fields` filled in."""
    translated = CATALOGS.get(language(), {}).get(text, text)
    return translated.format(**fields) if fields else translated


def _from_notebook_path() -> str | None:
    """A language folder (e.g. "zh-CN") in the running notebook's path, or None."""
    session = os.environ.get("JPY_SESSION_NAME")
    folder = Path(session).parent if session else Path.cwd()
    return next((part for part in reversed(folder.parts) if part in CATALOGS), None)


def _from_colab_metadata() -> str | None:
    """In Colab, the notebook's metadata["mtl_teach"]["language"], or None (anywhere else, or on failure)."""
    if "google.colab" not in sys.modules:
        return None
    try:
        from google.colab import _message  # Colab's own module: it answers with the open notebook

        notebook = _message.blocking_request("get_ipynb", timeout_sec=5)["ipynb"]
        return notebook["metadata"]["mtl_teach"]["language"]
    except Exception:  # an older or newer Colab: fall back to English rather than fail a learner's cell
        return None
