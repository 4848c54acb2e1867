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
    # The exercise hints the notebooks pass to check (tests/test_translation.py: every one is here)
    # 00_start_here
    "Where was the second loss's gradient taken: before or after the first step? (Notebook 03.)": (
        "第二个损失的梯度是在什么时候算的：第一步更新之前，还是之后？（见笔记本 03。）"
    ),
    "A loss with weight 0 contributes nothing to the gradient.": "权重为 0 的损失对梯度没有任何贡献。",
    # 01_weighted_sum
    "The regression gradient is proportional to beta: scale beta by g_class / g_reg.": (
        "回归任务的梯度与 beta 成正比：把 beta 乘以 g_class / g_reg。"
    ),
    "Once sigmoid rounds to 1.0, BCELoss returns its clamp; the true loss is about the logit.": (
        "一旦 sigmoid 被舍入为 1.0，BCELoss 返回的就是它截断后的值；真实的损失约等于 logit 本身。"
    ),
    "With label 1 the loss is -log(p), and log(1.0) = 0: no clamp is reached.": (
        "标签为 1 时，损失是 -log(p)，而 log(1.0) = 0：不会触及截断。"
    ),
    # 02_sum_vs_separate_backward
    "Every call but the last needs retain_graph=True; no zero_grad in between.": (
        "除最后一次外，每次调用都需要 retain_graph=True；中间不要调用 zero_grad。"
    ),
    "backward() adds to .grad; it never overwrites it.": "backward() 把梯度累加到 .grad 上，从不覆盖它。",
    "Each loss's starting gradient is its weight, as a tensor of the loss's dtype.": (
        "每个损失的起始梯度就是它的权重，写成与该损失数据类型（dtype）相同的张量。"
    ),
    # 03_alternating_steps_and_per_task_lr
    "Adam counts calls to step() that reach a parameter; the recipe calls step() once per task.": (
        "Adam 只统计真正作用到某个参数上的 step() 调用；这个写法每个任务调用一次 step()。"
    ),
    "Pass a list of dicts: one with net_2.heads[1].parameters() and lr=0.01, the rest with 0.001.": (
        "传入一个字典列表：一个放 net_2.heads[1].parameters()，lr=0.01；其余参数用 0.001。"
    ),
    "Both gradients are taken at the start of the batch; plain SGD just subtracts them.": (
        "两个梯度都是在批次开始时求的；普通 SGD 只是把它们减掉。"
    ),
    # 04_choosing_weights
    "Add the two columns of result.test_losses and find the row with the smallest sum.": (
        "把 result.test_losses 的两列相加，找出和最小的那一行。"
    ),
    "Divide alpha (and beta = 1 - alpha) by each task's initial loss.": (
        "用 alpha（以及 beta = 1 - alpha）分别除以对应任务的初始损失。"
    ),
    "r = (0.5 / 1.0, 2.0 / 2.0); the weights are 2 * softmax(r / 2).": (
        "r = (0.5 / 1.0, 2.0 / 2.0)；权重为 2 * softmax(r / 2)。"
    ),
    # 05_gradient_conflict
    "<g1, g2> = -1 < 0: remove from g1 its part along g2 (and from g2 its part along g1), then add.": (
        "<g1, g2> = -1 < 0：从 g1 中去掉它沿 g2 方向的分量（也从 g2 中去掉它沿 g1 方向的分量），再相加。"
    ),
    "gamma = <g2 - g1, g2> / |g1 - g2|^2, then d = gamma g1 + (1 - gamma) g2.": (
        "gamma = <g2 - g1, g2> / |g1 - g2|^2，然后 d = gamma g1 + (1 - gamma) g2。"
    ),
    "<g1 + g2, g2> = t^2 + 4t + 1: where is it zero?": "<g1 + g2, g2> = t^2 + 4t + 1：它在哪里等于零？",
    # 06_tuned_sum_vs_methods
    "Accuracy: -(0.90 - 0.96) / 0.96; RMSE: +(0.30 - 0.24) / 0.24; average them, times 100.": (
        "准确率：-(0.90 - 0.96) / 0.96；RMSE：+(0.30 - 0.24) / 0.24；两者取平均，再乘以 100。"
    ),
    "lam_i^2 |g_i|^2 = 1, so lam_i = 1 / |g_i|: d is the sum of the unit gradients.": (
        "lam_i^2 |g_i|^2 = 1，所以 lam_i = 1 / |g_i|：d 就是各单位梯度之和。"
    ),
    "Look at the digits column of the table, or use results.summary()[method]['digits']['mean'].": (
        "看表格中的 digits 一列，或者用 results.summary()[method]['digits']['mean']。"
    ),
    # 07_distributed
    "no_sync() wraps every micro-batch's forward and backward but the last one.": (
        "除了最后一个微批次，no_sync() 包住了每个微批次的前向传播和反向传播。"
    ),
    "The first backward was all-reduced (averaged); the second stayed on its rank.": (
        "第一次反向传播的梯度做了 all-reduce（取了平均）；第二次的梯度留在了各自的 rank 上。"
    ),
    "Average the ranks' G first (that is the all-reduce), then apply the method.": (
        "先对各 rank 的 G 取平均（这就是 all-reduce），再应用该方法。"
    ),
    # 08_mixed_precision
    "A step with an inf or NaN gradient is skipped and the scale is multiplied by backoff_factor.": (
        "梯度中有 inf 或 NaN 的那一步会被跳过，缩放因子乘以 backoff_factor。"
    ),
    "Scale the losses (or their sum), backward, scaler.step(optimizer), scaler.update() once.": (
        "缩放各个损失（或它们的和），反向传播，调用 scaler.step(optimizer)，再调用一次 scaler.update()。"
    ),
    "Call scaler.unscale_(optimizer) before clip_grad_norm_, then scaler.step and update.": (
        "在 clip_grad_norm_ 之前调用 scaler.unscale_(optimizer)，然后调用 scaler.step 和 update。"
    ),
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
