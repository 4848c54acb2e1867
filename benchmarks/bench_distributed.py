"""How long notebook 07's two-process runs take: the fork server's start, and a launch of `train_ddp`
(two processes, 3 steps of the weighted sum) against the same 3 steps on one process.

Issue 11 asks that each multi-process run finish in under 15 s on the course's
machines. Launches and one-process runs are interleaved, REPEATS of each;
medians. Prints one JSON object on the last line.
"""

from __future__ import annotations

import json
import os
import statistics
import time

import torch

from mtl_teach import ddp_recipes
from mtl_teach.distributed import launch, train_ddp, warm_up

REPEATS = 7


def one_process_run() -> None:
    """`train_ddp`'s work on one process: the same program, world size 1, no new processes."""
    import torch.distributed as dist

    from mtl_teach.distributed import free_port

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{free_port()}", rank=0, world_size=1)
    try:
        train_ddp(0, 1, step=ddp_recipes.sum_then_backward, steps=3)
    finally:
        dist.destroy_process_group()


def seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    torch.set_num_threads(1)
    server_s = warm_up()
    one_process_run()  # warm-up: DDP's first use imports torch._dynamo in this process too
    launches, locals_ = [], []
    for _ in range(REPEATS):
        launches.append(seconds(lambda: launch(train_ddp, step=ddp_recipes.sum_then_backward, steps=3)))
        locals_.append(seconds(one_process_run))
    result = {
        "server_start_s": round(server_s, 3),
        "launch_median_s": round(statistics.median(launches), 3),
        "launch_max_s": round(max(launches), 3),
        "one_process_median_s": round(statistics.median(locals_), 3),
        "launch_over_one_process": round(statistics.median(launches) / statistics.median(locals_), 2),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
