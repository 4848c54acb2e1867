"""Exercise checks for the notebooks, defined once: `check(answer, is_right, hint)`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mtl_teach.i18n import tr


def check(answer: Any, is_right: Callable[[Any], bool], hint: str) -> None:
    """Print whether `answer` is right (`is_right(answer)` decides), or a hint if not.

    `None` means "not answered yet"; an answer that makes the check itself
    fail (an exception) is reported as not right, with what went wrong.
    Messages and the hint are shown in the notebook's language (`mtl_teach.i18n`).
    """
    if answer is None:
        print(tr("Not answered yet: replace None with your answer, run that cell, then run this check again."))
        return
    try:
        right = bool(is_right(answer))
    except Exception as error:  # a learner's answer may break the check: say how, never a traceback
        print(
            tr(
                "Not yet: checking your answer raised {error}. {hint}",
                error=f"{type(error).__name__}: {error}",
                hint=tr(hint),
            )
        )
        return
    print(tr("Correct!") if right else tr("Not yet. {hint}", hint=tr(hint)))
