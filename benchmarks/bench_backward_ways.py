"""What one backward of the sum, one backward per task, and one backward of a list cost, on notebook 02's
bigger model (1024 x 64 input, trunk 256-256, two heads): matrix-product operations counted
(FlopCounterMode), time (interleaved, median of REPEATS), and the allocator's peak memory during
forward + backward as PyTorch's profiler reports it (CPU memory events; the notebook cannot use the
profiler because it writes to stderr). Everything is a ratio to the sum, measured side by side.

The bound the course states: separate / sum <= (F + T * B_trunk + B_heads) / (F + B_trunk + B_heads) < T
(F: forward; B: backward parts). Prints one JSON object on the last line.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from mtl_teach.data import two_task
from mtl_teach.models import SharedTrunkNet

REPEATS = 31
WEIGHTS = (0.3, 0.7)


def backward_sum(losses):
    sum(w * loss for w, loss in zip(WEIGHTS, losses)).backward()


def backward_separate(losses):
    for i, (w, loss) in enumerate(zip(WEIGHTS, losses)):
        (w * loss).backward(retain_graph=i < len(losses) - 1)


def backward_list(losses):
    torch.autograd.backward(losses, grad_tensors=[torch.tensor(w) for w in WEIGHTS])


WAYS = {"sum": backward_sum, "separate": backward_separate, "list": backward_list}


def main() -> None:
    torch.set_num_threads(1)
    data = two_task(n_samples=1024, n_features=64, seed=0)
    net = SharedTrunkNet(64, (256, 256), seed=0)
    criteria = (nn.BCEWithLogitsLoss(), nn.MSELoss())

    def run(way) -> None:
        net.zero_grad(set_to_none=True)
        outputs = net(data.X)
        losses = [c(o, t) for c, o, t in zip(criteria, outputs, data.targets)]
        if way is not None:
            way(losses)

    ways = {"forward only": None} | WAYS
    operations = {}
    for name, way in ways.items():
        with FlopCounterMode(display=False) as counter:
            run(way)
        operations[name] = counter.get_total_flops()
    seconds = {name: [] for name in ways}
    for _ in range(REPEATS):
        for name, way in ways.items():
            start = time.perf_counter()
            run(way)
            seconds[name].append(time.perf_counter() - start)
    ms = {name: 1000 * statistics.median(s) for name, s in seconds.items()}
    peak_mb = {name: profiled_peak_mb(run, way) for name, way in WAYS.items()}
    result = {
        "benchmark": "backward_ways",
        "torch": torch.__version__,
        "repeats": REPEATS,
        "operations_vs_sum": {n: round(operations[n] / operations["sum"], 4) for n in ways},
        "ms": {n: round(v, 2) for n, v in ms.items()},
        "time_vs_sum": {n: round(ms[n] / ms["sum"], 3) for n in ways},
        "allocator_peak_mb": {n: round(v, 3) for n, v in peak_mb.items()},
        "allocator_peak_vs_sum": {n: round(peak_mb[n] / peak_mb["sum"], 3) for n in WAYS},
    }
    print(json.dumps(result))


def profiled_peak_mb(run, way) -> float:
    """Peak of the bytes allocated during `run(way)`, from the profiler's memory events, relative to its start."""
    run(way)  # warm up
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], profile_memory=True) as prof:
        run(way)
    with tempfile.TemporaryDirectory() as folder:
        trace = Path(folder) / "trace.json"
        prof.export_chrome_trace(str(trace))
        events = json.loads(trace.read_text())["traceEvents"]
    memory = sorted((e for e in events if e.get("name") == "[memory]"), key=lambda e: e["ts"])
    allocated = peak = 0
    for event in memory:
        allocated += event["args"]["Bytes"]  # negative for a free
        peak = max(peak, allocated)
    return peak / 2**20


if __name__ == "__main__":
    main()
