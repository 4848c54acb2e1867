"""Several processes that train one model together over gloo: DistributedDataParallel for real, on a CPU.

`launch(program, world_size=2, **kwargs)` starts `world_size` fresh Python
processes, joins them into one process group (backend "gloo", on 127.0.0.1,
a free port), runs `program(rank, world_size, **kwargs)` in each and returns
what each returned, in rank order: what `torchrun` and
`init_process_group` do, small enough to call from a notebook cell.

The processes start from a fork server that imported torch once (or, where
there is none, as fresh interpreters: "spawn"), so `program` and its
arguments travel by pickle: they must be importable, i.e. defined in a
module, not in a notebook cell. Each process
writes its result, or its traceback, to a temporary folder, and its own
stdout and stderr to a log there, so nothing it prints lands in the
notebook. Every process is stopped and reaped before `launch` returns or
raises: on success, when a rank raises or dies (`RankFailed` says which and
why), and when the run outlives `timeout_s`.

`train_ddp` is the program the notebooks launch: a `SharedTrunkNet` wrapped
in DDP, this rank's shard of one batch, a few calls of a step function (the
recipe the notebook teaches), and what was measured on the way: parameters,
the gradient each optimizer step used, and a timeline of the forward and
backward calls, every all-reduce DDP launched (with its size) and the steps.
"""

from __future__ import annotations

import multiprocessing.connection
import os
import socket
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.distributed.algorithms.ddp_comm_hooks import default_hooks
from torch.nn.parallel import DistributedDataParallel as DDP

from mtl_teach.data import two_task
from mtl_teach.models import SharedTrunkNet

MAX_WORLD_SIZE = 16  # each rank is a whole Python process with its own torch
GRACE_S = 3.0  # once a rank has failed, how long the others may still take to finish


class RankFailed(RuntimeError):
    """A distributed run failed: `errors` maps each rank that raised, died or was stopped to what happened."""

    def __init__(self, errors: dict[int, str], world_size: int, tracebacks: dict[int, str]) -> None:
        self.errors, self.tracebacks = dict(sorted(errors.items())), tracebacks
        lines = [f"rank {rank} of {world_size} {what}" for rank, what in self.errors.items()]
        details = [f"\n--- traceback of rank {rank} ---\n{text.rstrip()}" for rank, text in sorted(tracebacks.items())]
        super().__init__("\n".join(lines) + "".join(details))


def launch(program: Callable[..., Any], world_size: int = 2, timeout_s: float = 60.0, **kwargs: Any) -> list[Any]:
    """Run `program(rank, world_size, **kwargs)` on `world_size` processes joined over gloo; results in rank order.

    A program returns tensors, numbers, strings, and lists, tuples and dicts
    of them. Raises `RankFailed` if a rank raises, dies, or is still running
    after `timeout_s` seconds (start-up included).
    """
    _check_launch(program, world_size, timeout_s, kwargs)
    context = _start_method()
    with tempfile.TemporaryDirectory(prefix="mtl_teach_ranks_") as folder:
        address = f"tcp://127.0.0.1:{free_port()}"
        processes = [
            context.Process(target=_run_rank, args=(program, rank, world_size, address, kwargs, folder, timeout_s))
            for rank in range(world_size)
        ]
        for process in processes:
            process.daemon = True  # multiprocessing stops daemonic processes when this Python exits
        try:
            for process in processes:
                process.start()
            timed_out = _wait(processes, timeout_s)
        finally:
            stopped = _stop(processes)
        return _results(processes, Path(folder), stopped, timed_out, timeout_s)


def warm_up() -> float:
    """Start the fork server now, and return how many seconds that took.

    The first launch starts the server, which imports torch and what DDP
    needs (seconds of work, done once per Python session); call this in a
    notebook's setup so that every later launch starts in a fraction of a
    second. It launches one process that does nothing.
    """
    start = time.perf_counter()
    launch(_nothing, world_size=1)
    return time.perf_counter() - start


def _nothing(rank: int, world_size: int) -> None:
    """A program that does nothing (see `warm_up`)."""


def _check_launch(program: Callable[..., Any], world_size: int, timeout_s: float, kwargs: dict[str, Any]) -> None:
    """Clear errors for what would otherwise fail inside the processes."""
    if isinstance(world_size, bool) or not isinstance(world_size, int) or not 1 <= world_size <= MAX_WORLD_SIZE:
        raise ValueError(f"world_size={world_size!r}: give a whole number of processes from 1 to {MAX_WORLD_SIZE}")
    if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or not 0 < timeout_s < float("inf"):
        raise ValueError(f"timeout_s={timeout_s!r}: give a number of seconds > 0")
    for name, value in [("program", program), *kwargs.items()]:
        if callable(value) and getattr(value, "__module__", None) == "__main__":
            raise ValueError(
                f"{name}={getattr(value, '__name__', value)!r} is defined in __main__ (a notebook cell or a script); "
                "the ranks find functions by importing their module: define it in a module"
            )


def _start_method() -> Any:
    """A fork server where the platform has one (Linux, macOS): it imports torch and this module once, then
    forks a fresh process per rank in milliseconds. Elsewhere "spawn": a new interpreter per rank."""
    if "forkserver" not in mp.get_all_start_methods():
        return mp.get_context("spawn")
    context = mp.get_context("forkserver")
    # Imported once by the server when it starts (the first launch): this module and torch, and torch._dynamo,
    # which DDP's constructor imports (seconds of work every rank would otherwise repeat).
    context.set_forkserver_preload([__name__, "torch._dynamo"])
    return context


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (the operating system picks it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait(processes: Sequence[Any], timeout_s: float) -> bool:
    """Until every process has exited or a deadline passes; True if processes still ran at `timeout_s`.

    Once a rank has failed, the others get GRACE_S more seconds (they may be
    waiting in a collective that the failed rank will never reach).
    """
    deadline = time.monotonic() + timeout_s
    failed = False
    while (running := [p for p in processes if p.exitcode is None]) and (left := deadline - time.monotonic()) > 0:
        multiprocessing.connection.wait([p.sentinel for p in running], timeout=left)
        if not failed and any(p.exitcode not in (None, 0) for p in processes):
            failed, deadline = True, min(deadline, time.monotonic() + GRACE_S)
    return not failed and any(p.exitcode is None for p in processes)


def _stop(processes: Sequence[Any]) -> set[int]:
    """Terminate, then kill, every process still running, and reap all of them; the ranks that had to be stopped."""
    started = [(rank, p) for rank, p in enumerate(processes) if p.pid is not None]
    stopped = {rank for rank, p in started if p.exitcode is None}
    for rank in stopped:
        processes[rank].terminate()
    for _, process in started:
        process.join(timeout=2.0)
        if process.exitcode is None:
            process.kill()
            process.join()
    return stopped


def _results(processes: Sequence[Any], folder: Path, stopped: set[int], timed_out: bool, timeout_s: float) -> list:
    """Each rank's result, or RankFailed naming every rank that did not deliver one, and why."""
    errors, tracebacks = {}, {}
    for rank, process in enumerate(processes):
        error = folder / f"rank{rank}.error"
        if error.exists():
            tracebacks[rank] = error.read_text()
            errors[rank] = "raised " + tracebacks[rank].strip().splitlines()[-1]
        elif rank in stopped and timed_out:
            errors[rank] = f"did not finish within {timeout_s:g} s and was stopped (waiting in a collective?)"
        elif rank in stopped:
            errors[rank] = "was stopped after another rank failed"
        elif process.exitcode != 0 or not (folder / f"rank{rank}.pt").exists():
            log = folder / f"rank{rank}.log"
            output = log.read_text(errors="replace").strip()[-300:] if log.exists() else ""
            errors[rank] = f"died with exit code {process.exitcode} before reporting; its output ends: {output!r}"
    if errors:
        raise RankFailed(errors, len(processes), tracebacks)
    return [torch.load(folder / f"rank{rank}.pt", weights_only=True) for rank in range(len(processes))]


def _run_rank(program, rank, world_size, address, kwargs, folder, timeout_s) -> None:
    """One rank: join the group, run `program`, write its result (or its traceback) to `folder`, leave."""
    folder = Path(folder)
    log = os.open(folder / f"rank{rank}.log", os.O_WRONLY | os.O_CREAT)
    os.dup2(log, 1)  # what this process prints, warnings included, goes to its log and not into the notebook
    os.dup2(log, 2)
    code = 1
    try:
        torch.set_num_threads(1)  # tiny models: one thread is fastest, and gives the same numbers everywhere
        timeout = timedelta(seconds=timeout_s + 30)  # longer than `launch` waits: it decides, unless it has died
        dist.init_process_group("gloo", init_method=address, rank=rank, world_size=world_size, timeout=timeout)
        result = program(rank, world_size, **kwargs)
        dist.barrier()  # no rank leaves while another may still be talking to it
        torch.save(result, folder / f"rank{rank}.pt")
        code = 0
    except BaseException:
        (folder / f"rank{rank}.error").write_text(traceback.format_exc())
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)  # no destructors: a DDP model that an error left half-reduced may abort while being freed


def shard(batch: tuple[torch.Tensor, Sequence[torch.Tensor]], rank: int, world_size: int):
    """Rank `rank`'s rows of `batch = (X, targets)`: rank, rank + world_size, ..., as DistributedSampler(shuffle=False).

    Every rank gets the same number of rows, so the average of the ranks'
    mean losses is the mean loss over the whole batch.
    """
    X, targets = batch
    if len(X) % world_size:
        raise ValueError(f"a batch of {len(X)} rows does not split evenly over {world_size} ranks")
    return X[rank::world_size], [t[rank::world_size] for t in targets]


class Timeline:
    """What one rank did, in order: each event's step, what it was, and when it started and ended (seconds
    from the start of its step)."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.step, self.step_started = 0, time.perf_counter()

    def now(self) -> float:
        return time.perf_counter()

    def start_step(self, step: int) -> None:
        self.step, self.step_started = step, time.perf_counter()

    def add(self, what: str, started: float, **details: Any) -> None:
        """An event that started at `started` (time.perf_counter()) and ends now."""
        now = time.perf_counter()
        start, end = started - self.step_started, now - self.step_started
        self.events.append({"step": self.step, "what": what, "start": start, "end": end, **details})


def instrument(ddp: DDP, optimizer: torch.optim.Optimizer, timeline: Timeline, grads: list) -> None:
    """Hooks that time every forward, all-reduce and optimizer step of `ddp`, note when each parameter's
    gradient is ready, and keep the gradient each optimizer step uses.

    The communication hook all-reduces exactly as DDP does without one (the
    average over the ranks, `default_hooks.allreduce_hook`) and records each
    bucket's size: one "all-reduce" event per bucket, from the moment DDP
    launched it to the moment it finished.
    """
    started: dict[str, float] = {}

    def all_reduce(state, bucket):  # no annotations: DDP checks them, and this module's are strings
        launched, buffer = time.perf_counter(), bucket.buffer()

        def finished(future: torch.futures.Future) -> torch.Tensor:
            timeline.add("all-reduce", launched, numbers=buffer.numel(), bytes=buffer.numel() * buffer.element_size())
            return future.value()

        return default_hooks.allreduce_hook(None, bucket).then(finished)

    def before_step(optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        started["step"] = time.perf_counter()
        grads.append(_flat([p.grad if p.grad is not None else torch.zeros_like(p) for p in ddp.parameters()]))

    ddp.register_comm_hook(None, all_reduce)
    for name, param in ddp.module.named_parameters():  # each gradient, the moment it is accumulated into .grad
        param.register_post_accumulate_grad_hook(lambda p, of=name: timeline.add("gradient", timeline.now(), of=of))
    ddp.register_forward_pre_hook(lambda module, args: started.update(forward=time.perf_counter()))
    ddp.register_forward_hook(lambda module, args, output: timeline.add("forward", started["forward"]))
    optimizer.register_step_pre_hook(before_step)
    optimizer.register_step_post_hook(lambda optimizer, args, kwargs: timeline.add("step", started["step"]))


@contextmanager
def timed_backward(timeline: Timeline) -> Iterator[None]:
    """Time every backward() call in this process (`Tensor.backward` calls `torch.autograd.backward`).

    The span includes what DDP does at the end of a backward: wait for the
    all-reduces it launched and copy the averaged gradients into .grad.
    """
    original = torch.autograd.backward

    def backward(*args: Any, **kwargs: Any) -> None:
        started = time.perf_counter()
        try:
            original(*args, **kwargs)
        finally:
            timeline.add("backward", started)

    torch.autograd.backward = backward
    try:
        yield
    finally:
        torch.autograd.backward = original


def train_ddp(
    rank: int,
    world_size: int,
    step: Callable[..., None],
    steps: int = 3,
    weights: Sequence[float] = (0.5, 0.5),
    ddp_options: dict[str, Any] | None = None,
    step_options: dict[str, Any] | None = None,
    hidden: tuple[int, ...] = (32, 32),
    n_samples: int = 64,
    relatedness: float = 0.5,
    dtype: torch.dtype = torch.float64,
    lr: float = 0.1,
) -> dict[str, Any]:
    """A program for `launch`: DDP on this rank's shard of one `two_task` batch, `steps` calls of
    `step(ddp, optimizer, batch, criteria, weights, **step_options)` with SGD.

    Returns what this rank measured: "params" (all parameters, flat, after
    each step), "grads" (the .grad each optimizer step used, flat; None as
    zeros), "events" (the `Timeline`), and "error" ("Type: message" of the
    first RuntimeError a step raised, or None) with "error_step"; the run
    stops at that error.
    """
    data = two_task(n_samples=n_samples, relatedness=relatedness, seed=0, dtype=dtype)
    batch = shard((data.X, data.targets), rank, world_size)
    net = SharedTrunkNet(data.X.shape[1], hidden, data.head_dims, seed=0, dtype=dtype)
    ddp = DDP(net, **(ddp_options or {}))
    optimizer = torch.optim.SGD(ddp.parameters(), lr=lr)
    record: dict[str, Any] = {"params": [], "grads": [], "error": None, "error_step": None}
    timeline = Timeline()
    instrument(ddp, optimizer, timeline, record["grads"])
    with timed_backward(timeline):
        for i in range(steps):
            timeline.start_step(i)
            try:
                step(ddp, optimizer, batch, data.criteria, weights, **(step_options or {}))
            except RuntimeError as error:
                record["error"], record["error_step"] = f"{type(error).__name__}: {error}", i
                break
            record["params"].append(_flat([p.detach() for p in net.parameters()]))
    return {**record, "events": timeline.events}


def _flat(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    return torch.cat([t.reshape(-1) for t in tensors])
