"""Run a chapter with other seeds (and, from the caller's environment, another CPU personality).

    python benchmarks/chapter_spread.py chapters/10_ensembling.ipynb --seed-offset 1 --out runs/spread/ch10-s1.json
    env $(python tools/cpu_personality.py) python benchmarks/chapter_spread.py chapters/10_ensembling.ipynb \
        --seed-offset 0 --out runs/spread/ch10-s0-cpu2.json

A chapter's claims about trained networks must hold for other seeds and on other CPUs, with the
margins its asserts use (CONTRIBUTING, "Numbers from training runs"). This script measures them: it
executes a copy of the notebook (the stored file is not touched) in which every integer seed literal
of the code is shifted by ``--seed-offset`` (``seed=K``, ``manual_seed(K)`` and ``SEED = K`` become
``K + offset``; the data, drawn with NumPy's ``default_rng``, stay the same), lets every cell run even after a failing one, and writes a JSON
record: every value the chapter glues (the numbers its prose pastes), every cell whose ``assert``
failed (with the failing line), the chapter's wall and CPU seconds, the CPU and torch's kernels.
``benchmarks/results/`` keeps the records that the chapters' margins were set from.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import time
from pathlib import Path

import nbformat
import torch
from nbclient import NotebookClient

from course_lib.runtime import cpu_name

# the training seeds; NumPy generators (``default_rng(K)``) draw the chapters' data sets and plot jitter and are
# left alone, so a shifted run trains on the same data (chapter 11's gap between its two clusters is that draw's)
SEED_LITERAL = re.compile(r"\b(seed\s*=\s*|manual_seed\(\s*|SEED\s*=\s*)(\d+)\b")
GLUE_PREFIX = "application/papermill.record/"


def shift_seeds(source: str, offset: int) -> tuple[str, int]:
    """``source`` with every integer seed literal shifted by ``offset``, and how many were shifted."""
    return SEED_LITERAL.subn(lambda m: f"{m[1]}{int(m[2]) + offset}", source)


def glued(nb: nbformat.NotebookNode) -> dict[str, object]:
    """Every glued value of an executed notebook, as Python literals where they parse."""
    values = {}
    for cell in nb.cells:
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            scrapbook = output.get("metadata", {}).get("scrapbook")
            if scrapbook is None:
                continue
            text = output.get("data", {}).get(GLUE_PREFIX + "text/plain")
            try:
                values[scrapbook["name"]] = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                values[scrapbook["name"]] = text
    return values


def printed(nb: nbformat.NotebookNode, limit: int = 3000) -> dict[str, str]:
    """What each code cell printed (its stream outputs), cut to ``limit`` characters: the values behind the asserts."""
    out = {}
    for index, cell in enumerate(nb.cells):
        text = "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")
        if cell.cell_type == "code" and text:
            out[str(index)] = text[:limit]
    return out


def failures(nb: nbformat.NotebookNode) -> list[dict]:
    """The cells that raised: index, exception and the last lines of the traceback."""
    found = []
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            if output.get("output_type") == "error":
                tail = [re.sub(r"\x1b\[[0-9;]*m", "", line) for line in output.get("traceback", [])[-3:]]
                found.append(
                    {"cell": index, "error": output["ename"], "value": output["evalue"], "where": tail}
                )
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebook", type=Path)
    parser.add_argument("--seed-offset", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--timeout", type=int, default=900, help="seconds per cell")
    args = parser.parse_args()
    nb = nbformat.read(args.notebook, as_version=4)
    shifted = 0
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.source, n = shift_seeds(cell.source, args.seed_offset)
            shifted += n
    wall = time.perf_counter()
    client = NotebookClient(
        nb,
        timeout=args.timeout,
        allow_errors=True,
        kernel_name="python3",
        resources={"metadata": {"path": str(args.notebook.parent)}},
    )
    client.execute()
    record = {
        "notebook": args.notebook.name,
        "seed_offset": args.seed_offset,
        "seed_literals_shifted": shifted,
        "cpu": cpu_name(),
        "kernels": str(torch.backends.cpu.get_cpu_capability()),
        "onednn_max_cpu_isa": os.environ.get("ONEDNN_MAX_CPU_ISA", ""),
        "torch": torch.__version__,
        "wall_seconds": round(time.perf_counter() - wall, 1),
        "failures": failures(nb),
        "glued": glued(nb),
        "printed": printed(nb),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n")
    print(
        f"{args.notebook.name} seed offset {args.seed_offset} ({record['kernels']}): {shifted} seeds shifted, "
        f"{record['wall_seconds']:.0f} s, {len(record['failures'])} failing cell(s)"
        + "".join(
            f"\n  cell {f['cell']}: {f['error']}: {f['where'][-2:] if f['where'] else ''}"
            for f in record["failures"]
        )
    )


if __name__ == "__main__":
    main()
