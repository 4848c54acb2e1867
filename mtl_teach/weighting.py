"""Methods that learn the loss weights while the network trains.

Each is a strategy with state (its weights, a loss history), so it is
registered with `make_step(setup)`, which builds a fresh step function
for one run. They choose the weights themselves: the config's alpha and
beta are not used. Each step sets `step.last_extras["weight/<task>"]`
(the weights used at that step), which the loop records in
`History.extras`, so the weights can be plotted while they move.

- uncertainty: Kendall, Gal & Cipolla (2018)
- dwa:         Liu, Johns & Davison (2019), dynamic weight average
- gradnorm:    Chen, Badrinarayanan, Lee & Rabinovich (2018)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from mtl_teach.strategies import StepFn, Strategy, register, task_losses

if TYPE_CHECKING:  # only for type hints: train.py imports the strategies, not the other way round
    from mtl_teach.train import Setup


def _named(task_names: tuple[str, ...], prefix: str, values: torch.Tensor) -> dict[str, float]:
    """{"<prefix>/<task>": value} for the live plots."""
    return {f"{prefix}/{name}": v for name, v in zip(task_names, values.tolist(), strict=True)}


def _dtype(setup: Setup) -> torch.dtype:
    return next(setup.net.parameters()).dtype


# --- Uncertainty weighting -------------------------------------------------------------------------------


def make_uncertainty_step(setup: Setup) -> StepFn:
    """Uncertainty weighting (Kendall, Gal & Cipolla, CVPR 2018, eq. 7).

    Each task i has a learned s_i = log(sigma_i^2) and the objective is

        L = sum_i  exp(-s_i) / 2 * L_i  +  s_i / 2        (= L_i / (2 sigma_i^2) + log sigma_i)

    dL/ds_i = 0 at exp(s_i) = L_i, so the weight exp(-s_i)/2 tends to
    1 / (2 L_i): a task with a larger (noisier) loss gets a smaller
    weight, and the s_i / 2 term stops every weight from going to 0.
    The s_i start at 0 (weights 1/2) and are trained by the run's
    optimizer, as an extra param group with the network's lr.
    """
    log_vars = torch.zeros(len(setup.net.heads), dtype=_dtype(setup), requires_grad=True)
    setup.optimizer.add_param_group({"params": [log_vars], "name": "log_vars"})
    task_names = setup.data.task_names

    def uncertainty_step(net, batch, criterion, optimizer, weights) -> torch.Tensor:
        losses = torch.stack(task_losses(net, batch, criterion))
        task_weights = torch.exp(-log_vars) / 2
        objective = (task_weights * losses + log_vars / 2).sum()
        optimizer.zero_grad()
        objective.backward()
        optimizer.step()
        uncertainty_step.last_extras = _named(task_names, "weight", task_weights.detach())
        return losses.detach()

    uncertainty_step.log_vars = log_vars  # for inspection: s_i = log sigma_i^2
    return uncertainty_step


# --- Dynamic weight average ------------------------------------------------------------------------------


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
    task_names, equal_weights = setup.data.task_names, torch.ones(len(setup.net.heads), dtype=_dtype(setup))
    epoch_means: list[torch.Tensor] = []  # mean task losses of each finished window
    this_epoch: list[torch.Tensor] = []

    def dwa_step(net, batch, criterion, optimizer, weights) -> torch.Tensor:
        size = window or max(1, len(setup.data) // len(batch[0]))
        if len(epoch_means) < 2:
            task_weights = equal_weights  # the paper's first two epochs
        else:
            task_weights = dwa_weights(epoch_means[-1], epoch_means[-2], temperature)
        losses = torch.stack(task_losses(net, batch, criterion))
        optimizer.zero_grad()
        (task_weights * losses).sum().backward()
        optimizer.step()
        this_epoch.append(losses.detach())
        if len(this_epoch) == size:
            epoch_means.append(torch.stack(this_epoch).mean(dim=0))
            this_epoch.clear()
        dwa_step.last_extras = _named(task_names, "weight", task_weights)
        return losses.detach()

    return dwa_step


# --- GradNorm --------------------------------------------------------------------------------------------


def last_shared_layer(net: nn.Module) -> torch.Tensor:
    """The weight matrix of the trunk's last Linear layer (GradNorm's W)."""
    return [m for m in net.trunk if isinstance(m, nn.Linear)][-1].weight


def make_gradnorm_step(setup: Setup, alpha: float = 1.5) -> StepFn:
    """GradNorm (Chen, Badrinarayanan, Lee & Rabinovich, ICML 2018, eqs. 1-2).

    With W the last shared layer and w_i the learned weights (start at 1):
      G_i = ||grad_W (w_i L_i)|| = w_i ||grad_W L_i||,   G_mean = mean_i G_i
      r_i = (L_i / L_i(0)) / mean_j (L_j / L_j(0))     (relative inverse training rate)
      L_grad = sum_i | G_i - G_mean * r_i^alpha |      (the target is held constant)
    The network takes a step on sum_i w_i L_i; the weights take a step on
    L_grad alone (same optimizer, an extra param group), and are then
    renormalised to sum to T tasks. A task that lags behind (r_i > 1)
    gets a larger gradient norm; `alpha` sets how strongly (0: equal norms).
    """
    if not alpha >= 0:
        raise ValueError(f"alpha={alpha!r} must be a number >= 0 (0 asks for equal gradient norms)")
    n_tasks, task_names = len(setup.net.heads), setup.data.task_names
    task_weights = torch.ones(n_tasks, dtype=_dtype(setup), requires_grad=True)
    setup.optimizer.add_param_group({"params": [task_weights], "name": "gradnorm_weights"})
    initial_losses: list[torch.Tensor] = []  # L_i(0), from the first step

    def gradnorm_step(net, batch, criterion, optimizer, weights) -> torch.Tensor:
        losses = torch.stack(task_losses(net, batch, criterion))
        if not initial_losses:
            initial_losses.append(losses.detach())
        W = last_shared_layer(net)
        raw_norms = torch.stack([torch.autograd.grad(loss, W, retain_graph=True)[0].norm() for loss in losses])
        G = task_weights * raw_norms  # differentiable in the weights only
        loss_ratio = losses.detach() / initial_losses[0]
        target = (G.mean() * (loss_ratio / loss_ratio.mean()) ** alpha).detach()
        grad_loss = (G - target).abs().sum()
        optimizer.zero_grad()
        (task_weights.detach() * losses).sum().backward()  # the network's gradient
        task_weights.grad = torch.autograd.grad(grad_loss, task_weights)[0]  # the weights' gradient
        gradnorm_step.last_extras = {
            **_named(task_names, "weight", task_weights.detach()),
            **_named(task_names, "grad_norm", G.detach()),
        }
        optimizer.step()
        with torch.no_grad():  # keep them positive, then renormalise: sum_i w_i = T
            task_weights.clamp_(min=1e-6).mul_(n_tasks / task_weights.sum())
        return losses.detach()

    gradnorm_step.task_weights = task_weights
    return gradnorm_step


register(
    Strategy(
        "uncertainty",
        None,
        "learned weights exp(-s_i)/2, s_i = log sigma_i^2 (Kendall et al. 2018)",
        make_step=make_uncertainty_step,
    )
)
register(
    Strategy("dwa", None, "weights from how fast each loss fell last epoch (Liu et al. 2019)", make_step=make_dwa_step)
)
register(
    Strategy("gradnorm", None, "weights that balance gradient norms (Chen et al. 2018)", make_step=make_gradnorm_step)
)
