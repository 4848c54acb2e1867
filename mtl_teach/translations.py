"""Message catalogs: English text -> its translation (Simplified Chinese), for `mtl_teach.i18n.tr`.

Keys are the exact English messages the package shows, including the
hints the notebooks pass to `check`; `{name}` marks a field filled in later.
"""

from __future__ import annotations

ZH_CN: dict[str, str] = {
    # mtl_teach.exercises.check
    "Not answered yet: replace None with your answer, run that cell, then run this check again.": (
        "还没有作答：把 None 换成你的答案，运行那个单元格，再运行这个检查。"
    ),
    "Correct!": "正确！",
    "Not yet. {hint}": "还不对。{hint}",
    "Not yet: checking your answer raised {error}. {hint}": "还不对：检查你的答案时出错 {error}。{hint}",
}

CATALOGS: dict[str, dict[str, str]] = {"zh-CN": ZH_CN}
