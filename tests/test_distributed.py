"""Two real processes on gloo: the launcher's results, errors and clean-up, and the DDP recipes of notebook 07.

The programs below run inside the launched processes, which import them from
this module (tests/ is on sys.path, and the fork server copies it).
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import psutil
import pytest
import torch
import torch.distributed as dist

from mtl_teach import aggregators, ddp_recipes
from mtl_teach.data import two_task
from mtl_teach.distributed import GRACE_S, RankFailed, launch, shard, train_ddp, warm_up
from mtl_teach.gradient_methods import gradient_method_step
from mtl_teach.grads import task_gradients
from mtl_teach.losses import task_losses
from mtl_teach.models import SharedTrunkNet
from mtl_teach.plots import plot_step_timelines

# ---- programs run by the launched processes ----


def sum_of_ranks(rank: int, world_size: int, scale: float = 1.0) -> dict:
    total = torch.tensor([float(rank)])
    dist.all_reduce(total)  # a real collective: every rank gets 0 + 1 + ... + (world_size - 1)
    return {"rank": rank, "world_size": world_size, "total": total.item() * scale, "pid": os.getpid()}


def raise_on_rank(rank: int, world_size: int, bad_rank: int) -> None:
    if rank == bad_rank:
        raise ValueError(f"rank {rank} was told to fail")
    dist.barrier()  # the others wait for the failed rank, which never comes


def hang_on_rank(rank: int, world_size: int, bad_rank: int, pid_folder: str, ignore_sigterm: bool = False) -> None:
    Path(pid_folder, f"{rank}.pid").write_text(str(os.getpid()))
    if ignore_sigterm:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if rank == bad_rank:
        time.sleep(600)
    dist.barrier()


def die_on_rank(rank: int, world_size: int, bad_rank: int) -> None:
    if rank == bad_rank:
        print("about to leave without a word")
        os._exit(3)
    dist.barrier()


# ---- helpers ----


def new_processes(before: set[int]) -> set[int]:
    """Processes below this one (any depth) that were not there before, except ones already exiting."""
    now = {p.pid for p in psutil.Process().children(recursive=True) if p.status() != psutil.STATUS_ZOMBIE}
    return now - before


@pytest.fixture
def processes_before() -> set[int]:
    """This process's descendants after a first launch (which starts the fork server and its helpers)."""
    launch(sum_of_ranks, world_size=2)
    return {p.pid for p in psutil.Process().children(recursive=True)}


def reference_run(step_fn, steps: int, **data_options) -> list[torch.Tensor]:
    """The same training on one process and the whole batch: the parameters after each step, flat."""
    data = two_task(n_samples=64, seed=0, dtype=torch.float64, **data_options)
    net = SharedTrunkNet(8, (32, 32), seed=0, dtype=torch.float64)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    params = []
    for _ in range(steps):
        step_fn(net, optimizer, (data.X, data.targets), data.criteria)
        params.append(torch.cat([p.detach().reshape(-1) for p in net.parameters()]))
    return params


def weighted_sum_step(net, optimizer, batch, criteria, weights=(0.5, 0.5)) -> None:
    losses = task_losses(net, batch, criteria)
    optimizer.zero_grad()
    sum(w * loss for w, loss in zip(weights, losses)).backward()
    optimizer.step()


def all_reduces(result: dict) -> list[tuple[int, int]]:
    """(step, numbers sent) of every all-reduce DDP launched on a rank."""
    return [(e["step"], e["numbers"]) for e in result["events"] if e["what"] == "all-reduce"]


N_PARAMS = 8 * 32 + 32 + 32 * 32 + 32 + 2 * (32 + 1)  # the (32, 32) trunk and two heads of width 1


# ---- the launcher ----


def test_launch_returns_each_ranks_result_in_rank_order_from_a_real_process_group():
    results = launch(sum_of_ranks, world_size=3, scale=2.0)
    assert [r["rank"] for r in results] == [0, 1, 2]
    assert all(r["world_size"] == 3 and r["total"] == 2.0 * (0 + 1 + 2) for r in results)
    assert len({r["pid"] for r in results} | {os.getpid()}) == 4  # three processes, none of them this one


def test_a_rank_that_raises_is_named_with_its_error_and_no_process_is_left(processes_before):
    start = time.monotonic()
    with pytest.raises(RankFailed) as failed:
        launch(raise_on_rank, world_size=2, timeout_s=60, bad_rank=1)
    assert time.monotonic() - start < 60  # it did not wait for the timeout
    assert failed.value.errors[1] == "raised ValueError: rank 1 was told to fail"
    assert "rank 1 of 2 raised ValueError: rank 1 was told to fail" in str(failed.value)
    assert "raise ValueError" in failed.value.tracebacks[1]  # the traceback comes along
    assert new_processes(processes_before) == set()


@pytest.mark.parametrize("ignore_sigterm", [False, True], ids=["stops-on-sigterm", "ignores-sigterm"])
def test_a_rank_that_hangs_is_stopped_at_the_timeout_and_no_process_is_left(processes_before, tmp_path, ignore_sigterm):
    start = time.monotonic()
    with pytest.raises(RankFailed) as failed:
        launch(
            hang_on_rank, world_size=2, timeout_s=8, bad_rank=1, pid_folder=str(tmp_path), ignore_sigterm=ignore_sigterm
        )
    elapsed = time.monotonic() - start
    assert 8 <= elapsed < 8 + 2.0 + 10  # the timeout, the wait for SIGTERM, and slack for a busy machine
    assert set(failed.value.errors) == {0, 1}
    assert all("did not finish within 8 s and was stopped" in what for what in failed.value.errors.values())
    pids = [int(p.read_text()) for p in tmp_path.glob("*.pid")]
    alive = [(pid, psutil.Process(pid).status()) for pid in pids if psutil.pid_exists(pid)]
    assert len(pids) == 2 and not alive, (pids, alive)
    assert new_processes(processes_before) == set()


def test_a_rank_that_dies_is_named_with_its_exit_code_and_its_output(processes_before):
    start = time.monotonic()
    with pytest.raises(RankFailed) as failed:
        launch(die_on_rank, world_size=2, timeout_s=60, bad_rank=0)
    assert time.monotonic() - start < 60
    assert failed.value.errors[0].startswith("died with exit code 3 before reporting")
    assert "about to leave without a word" in failed.value.errors[0]
    assert failed.value.errors.get(1, "was stopped after another rank failed").startswith(("was stopped", "raised"))
    assert time.monotonic() - start < 60 - GRACE_S
    assert new_processes(processes_before) == set()


def test_bad_arguments_are_refused_before_anything_starts():
    def defined_in_main(rank, world_size):  # as if typed in a notebook cell
        return rank

    defined_in_main.__module__ = "__main__"
    with pytest.raises(ValueError, match="defined in __main__"):
        launch(defined_in_main)
    with pytest.raises(ValueError, match="step=.*defined in __main__"):
        launch(train_ddp, step=defined_in_main)
    for world_size in (0, 17, 1.5, True):
        with pytest.raises(ValueError, match=f"world_size={world_size!r}"):
            launch(sum_of_ranks, world_size=world_size)
    for timeout_s in (0, -1, float("inf"), "10"):
        with pytest.raises(ValueError, match="timeout_s="):
            launch(sum_of_ranks, timeout_s=timeout_s)


def test_shard_gives_each_rank_every_world_size_th_row_and_refuses_an_uneven_split():
    X = torch.arange(12.0).reshape(6, 2)
    targets = [torch.arange(6.0), torch.arange(6.0) * 10]
    X1, (a1, b1) = shard((X, targets), rank=1, world_size=3)
    assert X1.tolist() == [[2.0, 3.0], [8.0, 9.0]] and a1.tolist() == [1.0, 4.0] and b1.tolist() == [10.0, 40.0]
    with pytest.raises(ValueError, match="6 rows does not split evenly over 4 ranks"):
        shard((X, targets), rank=0, world_size=4)


# ---- the recipes of notebook 07, on two processes ----


def test_sum_then_backward_keeps_the_replicas_equal_to_one_process_on_the_whole_batch():
    r0, r1 = launch(train_ddp, step=ddp_recipes.sum_then_backward, steps=3)
    assert r0["error"] is None
    reference = reference_run(weighted_sum_step, steps=3)
    for p0, p1, ref in zip(r0["params"], r1["params"], reference, strict=True):
        assert torch.equal(p0, p1)  # the replicas agree to the last bit
        torch.testing.assert_close(p0, ref, rtol=0, atol=1e-12)
    assert all_reduces(r0) == [(0, N_PARAMS), (1, N_PARAMS), (2, N_PARAMS)]  # one bucket, once per step
    sizes = [e["bytes"] for e in r0["events"] if e["what"] == "all-reduce"]
    assert sizes == [8 * N_PARAMS] * 3  # float64


def test_one_backward_per_task_is_refused_by_default():
    r0, r1 = launch(train_ddp, step=ddp_recipes.backward_per_task, steps=3)
    for r in (r0, r1):
        assert r["error_step"] == 0 and r["error"].startswith(
            "RuntimeError: Expected to mark a variable ready only once"
        )
        backward_1 = next(e for e in r["events"] if e["what"] == "backward")
        assert not [e for e in r["events"] if e["what"] == "all-reduce" and e["start"] < backward_1["end"]]


def shard_task_gradients(rank: int) -> torch.Tensor:
    """Each weighted task loss's gradient on rank `rank`'s shard at the start: T x (all parameters)."""
    data = two_task(n_samples=64, seed=0, dtype=torch.float64)
    net = SharedTrunkNet(8, (32, 32), seed=0, dtype=torch.float64)
    losses = task_losses(net, shard((data.X, data.targets), rank, 2), data.criteria)
    return task_gradients([0.5 * loss for loss in losses], list(net.parameters()))


def test_find_unused_parameters_lets_two_backwards_run_silently_with_only_the_first_all_reduced():
    r0, r1 = launch(
        train_ddp, step=ddp_recipes.backward_per_task, steps=3, ddp_options={"find_unused_parameters": True}
    )
    (class_0, reg_0), (class_1, reg_1) = shard_task_gradients(0), shard_task_gradients(1)
    first_averaged = (class_0 + class_1) / 2
    torch.testing.assert_close(r0["grads"][0], first_averaged + reg_0, rtol=0, atol=1e-12)  # task 2: local only
    torch.testing.assert_close(r1["grads"][0], first_averaged + reg_1, rtol=0, atol=1e-12)
    assert (r0["params"][0] - r1["params"][0]).abs().max() > 1e-3  # the replicas have drifted apart
    assert all_reduces(r0) == [(0, N_PARAMS)]  # one all-reduce, in the first backward
    assert r0["error_step"] == 1 and "Encountered gradient which is undefined" in r0["error"]


def test_with_zero_filled_grads_the_drift_goes_on_without_any_error():
    r0, r1 = launch(
        train_ddp,
        step=ddp_recipes.backward_per_task,
        steps=4,
        ddp_options={"find_unused_parameters": True},
        step_options={"set_to_none": False},
    )
    assert r0["error"] is None and len(r0["params"]) == 4
    gaps = [(a - b).abs().max().item() for a, b in zip(r0["params"], r1["params"])]
    assert all(later > earlier > 1e-3 for earlier, later in zip(gaps, gaps[1:]))


def test_static_graph_lets_the_first_step_pass_and_refuses_the_second():
    r0, r1 = launch(train_ddp, step=ddp_recipes.backward_per_task, steps=3, ddp_options={"static_graph": True})
    assert (r0["params"][0] - r1["params"][0]).abs().max() > 1e-3
    assert r0["error_step"] == 1 and "Your training graph has changed in this iteration" in r0["error"]


def test_a_forward_per_task_fails_by_default_and_all_reduces_twice_with_find_unused_parameters():
    r0, _ = launch(train_ddp, step=ddp_recipes.forward_per_task, steps=2)
    assert r0["error_step"] == 0 and "Expected to have finished reduction in the prior iteration" in r0["error"]
    r0, r1 = launch(train_ddp, step=ddp_recipes.forward_per_task, steps=3, ddp_options={"find_unused_parameters": True})
    reference = reference_run(weighted_sum_step, steps=3)
    for p0, p1, ref in zip(r0["params"], r1["params"], reference, strict=True):
        assert torch.equal(p0, p1)
        torch.testing.assert_close(p0, ref, rtol=0, atol=1e-12)
    assert all_reduces(r0) == [(step, N_PARAMS) for step in range(3) for _ in range(2)]


@pytest.mark.parametrize(
    ("step", "per_step"),
    [(ddp_recipes.accumulate_in_no_sync, 1), (ddp_recipes.no_sync_around_backward_only, 2)],
    ids=["forward-and-backward-in-no_sync", "backward-only-in-no_sync"],
)
def test_no_sync_saves_the_all_reduce_only_when_it_wraps_the_forward(step, per_step):
    r0, r1 = launch(train_ddp, step=step, steps=2)
    reference = reference_run(weighted_sum_step, steps=2)
    for p0, p1, ref in zip(r0["params"], r1["params"], reference, strict=True):
        assert torch.equal(p0, p1)
        torch.testing.assert_close(p0, ref, rtol=0, atol=1e-12)
    assert all_reduces(r0) == [(s, N_PARAMS) for s in range(2) for _ in range(per_step)]


def method_reference_step(weighting):
    def step(net, optimizer, batch, criteria):
        gradient_method_step(weighting, net, batch, criteria, optimizer, (0.5, 0.5))

    return step


@pytest.mark.parametrize("name", ["pcgrad", "mgda", "upgrad"])
def test_a_gradient_method_all_reduced_first_is_the_method_on_the_whole_batch_and_combined_first_is_not(name):
    weighting = aggregators.WEIGHTINGS[name]
    options = {"steps": 3, "relatedness": -0.5, "step_options": {"weighting": weighting}}
    right = launch(train_ddp, step=ddp_recipes.method_after_all_reduce, **options)
    wrong = launch(train_ddp, step=ddp_recipes.method_then_all_reduce, **options)
    reference = reference_run(method_reference_step(weighting), steps=3, relatedness=-0.5)
    for step in range(3):
        assert torch.equal(right[0]["params"][step], right[1]["params"][step])
        assert torch.equal(wrong[0]["params"][step], wrong[1]["params"][step])  # wrong, but the same on every rank
        torch.testing.assert_close(right[0]["params"][step], reference[step], rtol=0, atol=1e-12)
    assert (wrong[0]["grads"][0] - right[0]["grads"][0]).abs().max() > 1e-5


def test_the_timeline_has_every_forward_backward_all_reduce_and_step_in_order():
    r0, _ = launch(train_ddp, step=ddp_recipes.sum_then_backward, steps=3, ddp_options={"bucket_cap_mb": 0.001})
    for step in range(3):
        events = sorted((e for e in r0["events"] if e["step"] == step), key=lambda e: e["start"])
        kinds = [e["what"] for e in events if e["what"] != "gradient"]
        assert kinds[:2] == ["forward", "backward"] and kinds[-1] == "step"
        backward = events[[e["what"] for e in events].index("backward")]
        reduces = [e for e in events if e["what"] == "all-reduce"]
        assert all(backward["start"] <= e["start"] and e["end"] <= backward["end"] for e in reduces)
        assert sum(e["numbers"] for e in reduces) == N_PARAMS
        gradients = [e for e in events if e["what"] == "gradient"]
        assert len(gradients) == 8
        if step == 0:  # DDP's first iteration: one bucket, sent once every gradient is ready
            assert len(reduces) == 1 and reduces[0]["start"] > max(g["start"] for g in gradients)
        else:  # then buckets of at most ~1 KB, rebuilt in the order the gradients arrived, sent as each fills
            assert len(reduces) > 1 and reduces[0]["start"] < max(g["start"] for g in gradients)


def test_warm_up_starts_the_server_so_that_later_launches_are_quick():
    assert warm_up() >= 0
    start = time.monotonic()
    launch(sum_of_ranks, world_size=2)
    assert time.monotonic() - start < 30  # forked from the warm server (a fraction of a second when idle)


def test_the_timeline_figure_draws_every_measured_event_of_each_run():
    r0, _ = launch(train_ddp, step=ddp_recipes.forward_per_task, steps=2, ddp_options={"find_unused_parameters": True})
    events = [e for e in r0["events"] if e["step"] == 1]
    fig = plot_step_timelines({"one forward per task": events, "the same again": events})
    axes = fig.get_axes()
    assert [ax.get_title(loc="left") for ax in axes] == ["one forward per task", "the same again"]
    bars = [e for e in events if e["what"] != "gradient"]
    ticks = [e for e in events if e["what"] == "gradient"]
    assert len(axes[0].collections) == len(bars) and len(axes[0].lines) == len(ticks) == 16
    labels = [t.get_text() for t in axes[0].texts]
    assert labels == [f"{e['bytes'] / 1e3:.0f} kB" for e in events if e["what"] == "all-reduce"]
    assert fig.get_facecolor()[:3] == (1.0, 1.0, 1.0)  # white: reads on a light and a dark page
