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
    # mtl_teach.playground
    "step {done}/{steps}: {losses}": "第 {done}/{steps} 步：{losses}",
    "stopped {done}/{steps}: {losses}": "已停止，第 {done}/{steps} 步：{losses}",
    "done, {run}": "完成，{run}",
    " (from the grid)": "（来自权重网格）",
    "diverged: {why} at step {step} (lr={lr}, optimizer={optimizer}); try a smaller lr": (
        "发散：第 {step} 步{why}（学习率={lr}，优化器={optimizer}）；请试试更小的学习率"
    ),
    "the loss became NaN/inf": "损失变成了 NaN/inf",
    "the parameters became NaN/inf": "参数变成了 NaN/inf",
    "training {strategy}, alpha={alpha}, beta={beta} ...": "训练中：{strategy}，alpha={alpha}，beta={beta} ...",
    "⚠ training failed: {error}": "⚠ 训练失败：{error}",
    "weighting": "权重",
    "Pareto front: training {count} weightings in the background ...": "帕累托前沿：正在后台训练 {count} 组权重 ...",
    "⚠ the grid could not be trained: {error}": "⚠ 权重网格无法训练：{error}",
    "Pareto front of {strategy}: {count} weightings; pick one to show its run": (
        "{strategy} 的帕累托前沿：{count} 组权重；选一组即可显示它的训练曲线"
    ),
}

CATALOGS: dict[str, dict[str, str]] = {"zh-CN": ZH_CN}
