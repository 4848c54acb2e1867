"""Memory of a long playground session: does RSS keep growing while the strategy cycles?

Retrains the playground N times in its worker thread, cycling through every
strategy of the registry (each change of family rebuilds the figure), and
prints the process's resident memory every STEP retrains, then one JSON
object: the growth over the first half and over the second half. A leak
grows in both halves; caches filling up grow in the first only.
Usage: python benchmarks/bench_memory.py [retrains]
"""

from __future__ import annotations

import json
import sys

import psutil

from mtl_teach.playground import playground
from mtl_teach.registry import names

RETRAINS = int(sys.argv[1]) if len(sys.argv) > 1 else 1200
STEP = 100


def main() -> None:
    process = psutil.Process()
    pg = playground(mode="thread", steps=20)
    strategies = names()
    rss_mb = []
    for i in range(RETRAINS + 1):
        if i % STEP == 0:
            rss_mb.append(round(process.memory_info().rss / 2**20, 1))
        pg.controls["strategy"].value = strategies[i % len(strategies)]
        pg.wait()
    pg.close()
    half = len(rss_mb) // 2
    result = {
        "benchmark": "memory",
        "retrains": RETRAINS,
        "rss_mb_every_100": rss_mb,
        "growth_first_half_mb": round(rss_mb[half] - rss_mb[0], 1),
        "growth_second_half_mb": round(rss_mb[-1] - rss_mb[half], 1),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
