"""Methods that choose the loss weights while the network trains.

Each `make_*_step(setup)` builds one run's step function, with the state the
method keeps (its weights, a loss history); learned weights join the run's
optimizer as a param group of their own. They choose the weights
themselves: the config's alpha and beta are not used. Each step returns the
weights it used (`StepResult.weights`), which the loop records per step.

- uncertainty: Kendall, Gal & Cipolla (2018)
- dwa:         Liu, Johns & Davison (2019), dynamic weight average
- gradnorm:    Chen, Badrinarayanan, Lee & Rabinovich (2018)
- log_sum:     the scale-invariant sum of log losses (the "SI" baseline of Navon et al. 2022)
- rlw:         Lin, Ye, Zhang & Tsang (2022), random loss weighting
- famo:        Liu, Feng, Stone & Liu (2023), fast adaptive multitask optimization

For a method whose objective is not a weighted sum (log_sum, famo), the
weights reported are those of the gradient: the update is that of
sum_i w_i L_i with the weights w_i held constant.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from mtl_teach.losses import task_losses
from mtl_teach.strategies import Setup, StepFn, StepResult, TrainingDiverged


def _dtype(setup: Setup) -> torch.dtype:
    return next(setup.net.parameters()).dtype


def make_uncertainty_step(setup: Setup) -> StepFn:
    """Uncertainty weighting (Kendall, Gal & Cipolla, CVPR 2018), the regression form (eq. 7) for every task.

    (Their eq. 10 gives a classification task exp(-s)·L + s/2 instead: the
    same method with s shifted by log 2, with the same weight 1/(2 L) at the
    optimum; notebook 04 checks both.) Each task i has a learned s_i = log(sigma_i^2) and the objective is

        L = sum_i  exp(-s_i) / 2 * L_i  +  s_i / 2        (= L_i / (2 sigma_i^2) + log sigma_i)

    dL/ds_i = 0 at exp(s_i) = L_i, so the weight exp(-s_i)/2 tends to
    1 / (2 L_i): a task with a larger (noisier) loss gets a smaller
    weight, and the s_i / 2 term stops every weight from going to 0.
    The s_i start at 0 (weights 1/2) and are trained by the run's
    optimizer, as a param group named "log_vars" with the network's lr.
    """
    log_vars = torch.zeros(len(setup.data.task_names), dtype=_dtype(setup), requires_grad=True)
    setup.optimizer.add_param_group({"params": [log_vars], "name": "log_vars"})
    net, criteria, optimizer = setup.net, setup.data.criteria, setup.optimizer

    def uncertainty_step(batch) -> StepResult:
        losses = torch.stack(task_losses(net, batch, criteria))
        task_weights = torch.exp(-log_vars) / 2
        objective = (task_weights * losses + log_vars / 2).sum()
        optimizer.zero_grad()
        objective.backward()
        optimizer.step()
        return StepResult(losses.detach(), task_weights.detach())

    return uncertainty_step


def dwa_weights(previous: torch.Tensor, before_previous: torch.Tensor, temperature: float = 2.0) -> torch.Tensor:
    """DWA's weights (Liu, Johns & Davison, CVPR 2019, eq. 7) from two epochs' mean losses (T,).

    w_i = T * exp(r_i / temperature) / sum_j exp(r_j / temperature), with
    r_i = L_i(previous epoch) / L_i(epoch before): the task whose loss fell
    least (r_i largest) gets the largest weight; the weights sum to T tasks.
    """
    if temperature <= 0:
        raise ValueError(f"temperature={temperature!r} must be positive")
    ratio = previous / before_previous
    return len(ratio) * torch.softmax(ratio / temperature, dim=0)


def make_dwa_step(setup: Setup, temperature: float = 2.0, window: int | None = None) -> StepFn:
    """Dynamic weight average: re-weight every epoch by how fast each loss falls.

    The paper's L_i(t) is task i's mean loss over epoch t, and the weights
    are 1 for the first two epochs. Here an "epoch" is a window of
    `window` steps; by default one pass over the data, len(data) //
    batch_size steps, the same epochs as the minibatch order of
    `batch_indices`. The weights change once per window, not every step.
    """
    if temperature <= 0:
        raise ValueError(f"temperature={temperature!r} must be positive")
    if window is not None and (not isinstance(window, int) or window < 1):
        raise ValueError(f"window={window!r} must be a whole number of steps, at least 1 (or None: one epoch)")
    size = window or max(1, len(setup.data) // min(setup.config.batch_size, len(setup.data)))
    equal_weights = torch.ones(len(setup.data.task_names), dtype=_dtype(setup))
    net, criteria, optimizer = setup.net, setup.data.criteria, setup.optimizer
    epoch_means: list[torch.Tensor] = []  # mean task losses of each finished window
    this_epoch: list[torch.Tensor] = []

    def dwa_step(batch) -> StepResult:
        if len(epoch_means) < 2:
            task_weights = equal_weights  # the paper's first two epochs
        else:
            task_weights = dwa_weights(epoch_means[-1], epoch_means[-2], temperature)
        losses = torch.stack(task_losses(net, batch, criteria))
        optimizer.zero_grad()
        (task_weights * losses).sum().backward()
        optimizer.step()
        this_epoch.append(losses.detach())
        if len(this_epoch) == size:
            epoch_means.append(torch.stack(this_epoch).mean(dim=0))
            this_epoch.clear()
        return StepResult(losses.detach(), task_weights)

    return dwa_step


def last_shared_layer(net: nn.Module) -> torch.Tensor:
    """The weight matrix of the trunk's last Linear layer (GradNorm's W)."""
    return [m for m in net.trunk if isinstance(m, nn.Linear)][-1].weight


def make_gradnorm_step(setup: Setup, alpha: float = 1.5) -> StepFn:
    """GradNorm (Chen, Badrinarayanan, Lee & Rabinovich, ICML 2018, eqs. 1-2).

    With W the last shared layer and w_i the learned weights (start at 1)::

      G_i = ||grad_W (w_i L_i)|| = w_i ||grad_W L_i||,   G_mean = mean_i G_i
      r_i = (L_i / L_i(0)) / mean_j (L_j / L_j(0))     (relative inverse training rate)
      L_grad = sum_i | G_i - G_mean * r_i^alpha |      (the target is held constant)

    The network takes a step on sum_i w_i L_i; the weights take a step on
    L_grad alone (same optimizer, a param group named "gradnorm_weights"),
    and are then renormalised to sum to T tasks. A task that lags behind
    (r_i > 1) gets a larger gradient norm; `alpha` sets how strongly (0: equal norms).
    """
    if not alpha >= 0:
        raise ValueError(f"alpha={alpha!r} must be a number >= 0 (0 asks for equal gradient norms)")
    task_names, n_tasks = setup.data.task_names, len(setup.data.task_names)
    task_weights = torch.ones(n_tasks, dtype=_dtype(setup), requires_grad=True)
    setup.optimizer.add_param_group({"params": [task_weights], "name": "gradnorm_weights"})
    net, criteria, optimizer = setup.net, setup.data.criteria, setup.optimizer
    initial_losses: list[torch.Tensor] = []  # L_i(0), from the first step

    def gradnorm_step(batch) -> StepResult:
        losses = torch.stack(task_losses(net, batch, criteria))
        if not initial_losses:
            initial_losses.append(losses.detach())
        W = last_shared_layer(net)
        raw_norms = torch.stack([torch.autograd.grad(loss, W, retain_graph=True)[0].norm() for loss in losses])
        G = task_weights * raw_norms  # differentiable in the weights only
        loss_ratio = losses.detach() / initial_losses[0]
        target = (G.mean() * (loss_ratio / loss_ratio.mean()) ** alpha).detach()
        grad_loss = (G - target).abs().sum()
        used = task_weights.detach().clone()
        optimizer.zero_grad()
        (used * losses).sum().backward()  # the network's gradient
        task_weights.grad = torch.autograd.grad(grad_loss, task_weights)[0]  # the weights' gradient
        optimizer.step()
        with torch.no_grad():  # keep them positive, then renormalise: sum_i w_i = T
            task_weights.clamp_(min=1e-6).mul_(n_tasks / task_weights.sum())
        extras = {f"grad_norm/{name}": g for name, g in zip(task_names, G.tolist())}
        return StepResult(losses.detach(), used, extras)

    return gradnorm_step


def make_log_sum_step(setup: Setup) -> StepFn:
    """The scale-invariant sum: minimise sum_i log L_i (Navon et al. 2022's "SI" baseline, their code's `scaleinvls`).

    Its gradient is sum_i grad L_i / L_i: a weighted sum whose weights 1 / L_i
    are renewed every step (so History.total, sum_i w_i L_i, is T at every
    step). Multiplying a loss by c > 0 adds log c, which has no gradient: the
    update is the same whether the target is in metres or centimetres.
    """
    net, criteria, optimizer, names = setup.net, setup.data.criteria, setup.optimizer, setup.data.task_names

    def log_sum_step(batch) -> StepResult:
        losses = torch.stack(task_losses(net, batch, criteria))
        if not (losses > 0).all():
            zero = names[int(torch.argmin(losses))]
            raise TrainingDiverged(f"the loss of task {zero!r} reached 0: the log sum needs every loss > 0")
        optimizer.zero_grad()
        torch.log(losses).sum().backward()
        optimizer.step()
        return StepResult(losses.detach(), 1 / losses.detach())

    return log_sum_step


def rlw_weights(n_tasks: int, generator: torch.Generator, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """RLW's weights for one step: softmax(z) with z ~ N(0, I) (Lin et al. 2022, Algorithm 2, as TorchJD cites it).

    Positive, summing to 1, 1/T each on average; as LibMTL's RLW (the authors' library) draws them.
    """
    return torch.softmax(torch.randn(n_tasks, generator=generator, dtype=dtype), dim=0)


RLW_SEED_OFFSET = 0x524C57  # RLW's generator: seed + this, so its draws are not the data's (seeded with `seed`)


def make_rlw_step(setup: Setup) -> StepFn:
    """Random loss weighting (Lin, Ye, Zhang & Tsang, TMLR 2022): new random weights every step.

    One backward of sum_i lam_i L_i with lam = `rlw_weights(...)`, drawn from
    the run's own generator seeded from `config.seed`: a run is reproducible,
    and the global random state is left alone. The paper offers it as a
    baseline that any weighting method should beat.
    """
    generator = torch.Generator().manual_seed(setup.config.seed + RLW_SEED_OFFSET)
    net, criteria, optimizer, n_tasks = setup.net, setup.data.criteria, setup.optimizer, len(setup.data.task_names)

    def rlw_step(batch) -> StepResult:
        task_weights = rlw_weights(n_tasks, generator, _dtype(setup))
        losses = torch.stack(task_losses(net, batch, criteria))
        optimizer.zero_grad()
        (task_weights * losses).sum().backward()
        optimizer.step()
        return StepResult(losses.detach(), task_weights)

    return rlw_step


def make_famo_step(setup: Setup, lr: float = 0.025, gamma: float = 0.01) -> StepFn:
    """FAMO (Liu, Feng, Stone & Liu, NeurIPS 2023, Algorithm 1): every loss should fall at the same rate.

    Task logits xi (start at 0), z = softmax(xi). The network steps along the
    gradient of sum_i z_i log L_i / c, c = sum_i z_i / L_i held constant: the
    weights z_i / (c L_i), which sum to 1. Then the losses on the same batch
    once more (one extra forward), and xi takes an Adam step (lr, weight decay
    gamma: the official code's defaults) on J^T delta, where delta_i =
    log L_i(before) - log L_i(after) and J = dz/dxi: so
    (J^T delta)_i = z_i (delta_i - z . delta). A task whose loss fell least
    gets a larger logit. As in the official code, 1e-8 is added to each loss
    inside the logs; its clipping of the trunk's gradient norm to 1 is not done here.
    """
    if not (lr > 0 and gamma >= 0):
        raise ValueError(f"lr={lr!r} must be > 0 and gamma={gamma!r} >= 0")
    logits, adam_state = torch.zeros(len(setup.data.task_names), dtype=_dtype(setup)), {}
    net, criteria, optimizer = setup.net, setup.data.criteria, setup.optimizer

    def famo_step(batch) -> StepResult:
        losses = torch.stack(task_losses(net, batch, criteria))
        z = torch.softmax(logits, dim=0)
        task_weights = z / (losses.detach() + 1e-8)
        task_weights = task_weights / task_weights.sum()  # z_i / (c L_i)
        optimizer.zero_grad()
        (task_weights * losses).sum().backward()
        optimizer.step()
        with torch.no_grad():
            after = torch.stack(task_losses(net, batch, criteria))
        if not torch.isfinite(after).all():
            raise TrainingDiverged("a loss became NaN/inf after the step")
        delta = torch.log(losses.detach() + 1e-8) - torch.log(after + 1e-8)
        adam_step(logits, z * (delta - z @ delta), adam_state, lr, gamma)  # J^T delta: the softmax's Jacobian
        return StepResult(losses.detach(), task_weights)

    return famo_step


def adam_step(
    param: torch.Tensor, grad: torch.Tensor, state: dict, lr: float, weight_decay: float = 0.0, eps: float = 1e-8
) -> None:
    """One Adam step (Kingma & Ba 2015, betas 0.9, 0.999) on a small tensor, in place, computed as
    torch.optim.Adam computes it (weight decay added to the gradient). Here torch.optim.Adam's own
    per-call overhead would cost as much as a forward pass of the network."""
    grad = grad + weight_decay * param
    step = state["step"] = state.get("step", 0) + 1
    m = state["m"] = state.get("m", torch.zeros_like(param)).lerp(grad, 0.1)
    v = state["v"] = state.get("v", torch.zeros_like(param)).mul(0.999).addcmul(grad, grad, value=0.001)
    denom = (v.sqrt() / math.sqrt(1 - 0.999**step)).add(eps)
    param.addcdiv_(m, denom, value=-lr / (1 - 0.9**step))
