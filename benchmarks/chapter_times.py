"""Execution time of the book's chapters, each executed top to bottom in a fresh kernel.

    python benchmarks/chapter_times.py                          # every chapters/NN_*.ipynb
    python benchmarks/chapter_times.py chapters/08_sparse_vd.ipynb --json times.json

Each notebook is executed by nbval in lax mode (``pytest --nbval-lax``), the same kernel
runner CI uses, so the stored notebook is not modified and nbconvert's widget-capture
deadlock (jupyter/nbconvert#1921) cannot stall a timing; the wall time includes kernel
start-up.  The budgets are those of the course (2-core CPU): 60 s a chapter, 6 min for
chapters 8 and 9 and for chapter 10 (which trains its own model; issue 8 sets 6 min), 15 min
for the book.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LONG_CHAPTERS = {"08", "09", "10"}


def budget_s(notebook: Path) -> int:
    """The course's time budget for one chapter, in seconds."""
    return 360 if notebook.name[:2] in LONG_CHAPTERS else 60


def time_notebook(notebook: Path, timeout: int = 1200) -> tuple[float, bool]:
    """Execute ``notebook`` in a temporary folder; return (seconds, succeeded)."""
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "--nbval-lax",
        "--nbval-current-env",
        f"--nbval-cell-timeout={timeout}",
        str(notebook),
    ]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        print(proc.stdout[-2000:], proc.stderr[-2000:], file=sys.stderr)
    return seconds, proc.returncode == 0


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "notebooks", nargs="*", type=Path, help="notebooks to time (default: every chapters/NN_*.ipynb)"
    )
    p.add_argument("--json", default=None, help="also write the results here")
    args = p.parse_args(argv)
    notebooks = args.notebooks or sorted((REPO / "chapters").glob("[0-9][0-9]_*.ipynb"))
    rows = []
    print(f"{'chapter':<40}{'seconds':>9}{'budget':>8}  status")
    for nb in notebooks:
        seconds, ok = time_notebook(nb.resolve())
        status = "ok" if ok and seconds <= budget_s(nb) else ("FAILED" if not ok else "over budget")
        rows.append(
            {"chapter": nb.name, "seconds": round(seconds, 1), "budget_s": budget_s(nb), "status": status}
        )
        print(f"{nb.name:<40}{seconds:>9.1f}{budget_s(nb):>8}  {status}", flush=True)
    total = sum(r["seconds"] for r in rows)
    print(f"{'total':<40}{total:>9.1f}{900:>8}")
    result = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU(s)",
        "rows": rows,
        "total_s": round(total, 1),
    }
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
