"""Re-execute notebooks in place, top to bottom, so their stored outputs are the nbval reference.

    python tools/execute_notebooks.py notebooks/*.ipynb      (what `make execute` runs)

Each notebook runs in a fresh python3 kernel with its own folder as the working
directory and a fixed environment (hash seed, matplotlib backend),
so two runs store the same outputs. A notebook is written back only if it ran
without an unexpected error; the tool then reports anything that must not be
stored: error outputs outside cells tagged `raises-exception`, and stderr
output (warnings). It prints each notebook's Run-All time.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

# Fixed for every kernel; children inherit them from this process.
KERNEL_ENV = {
    "PYTHONHASHSEED": "0",
    "MPLBACKEND": "module://matplotlib_inline.backend_inline",
}


def stored_problems(nb: nbformat.NotebookNode) -> list[str]:
    """Outputs that must not be stored: unexpected errors and stderr (warnings)."""
    problems = []
    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    for number, cell in enumerate(code_cells):
        expects_error = "raises-exception" in cell.metadata.get("tags", [])
        for out in cell.get("outputs", []):
            if out.output_type == "error" and not expects_error:
                problems.append(f"code cell {number}: error output {out.ename}: {out.evalue}")
            if out.output_type == "stream" and out.name == "stderr":
                problems.append(f"code cell {number}: stderr output: {out.text.strip()[:200]}")
    return problems


def execute(path: Path, timeout_s: int) -> float:
    """Run the notebook at `path` and write it back; returns the Run-All time in seconds."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=timeout_s,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent.resolve())}},
        record_timing=False,  # no timestamps in the stored notebook
        store_widget_state=False,  # widget model ids change on every run
    )
    start = time.perf_counter()
    client.execute()
    elapsed = time.perf_counter() - start
    nb.metadata.pop("widgets", None)
    nbformat.write(nb, path)
    return elapsed


def _strip_colours(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--timeout", type=int, default=300, help="seconds allowed per cell")
    args = parser.parse_args(argv)
    os.environ.update(KERNEL_ENV)
    failed = False
    for path in args.notebooks:
        try:
            seconds = execute(path, args.timeout)
        except CellExecutionError as err:  # the notebook is left as it was
            print(f"{path}: a cell failed, notebook not written:\n{_strip_colours(str(err))[-3000:]}")
            failed = True
            continue
        problems = stored_problems(nbformat.read(path, as_version=4))
        print(f"{path}: Run-All {seconds:.1f} s" + ("" if not problems else f", {len(problems)} problem(s)"))
        for problem in problems:
            print(f"  {problem}")
        failed = failed or bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
