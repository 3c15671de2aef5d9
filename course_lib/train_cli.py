"""The trainer's command line: ``python -m course_lib.train`` (or ``course-train``).

::

    python -m course_lib.train --model lenet5 --recipe quick --threads 1 --out runs/lenet5-quick
    python -m course_lib.train --model lenet300 --dense --epochs 10 --out runs/dense
    python -m course_lib.train --model lenet5 --recipe paper --device cuda --out runs/paper --resume

Each flag is an argument of :func:`course_lib.train.train`.  The output folder gets
``checkpoint.pt`` every epoch and ``metrics.json`` at the end (:mod:`course_lib.checkpoints`),
so a killed run continues with ``--resume``.  The exit status is 0 on success and 2 for a bad
flag, a checkpoint that cannot be resumed, or a diverged run (the message says which).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import torch

from course_lib import validation as V
from course_lib.checkpoints import CHECKPOINT_NAME, METRICS_NAME, CheckpointError
from course_lib.models import MODELS
from course_lib.recipes import RECIPES
from course_lib.runtime import pick_device
from course_lib.train import TrainingDiverged, train


def _count(flag: str) -> Callable[[str], int]:
    """The argparse ``type`` of a flag that takes a positive integer (checked by validation)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} must be a positive integer, got {text!r}") from None
        try:
            return V.positive_int(value, flag)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m course_lib.train`` argument parser."""
    p = argparse.ArgumentParser(
        prog="python -m course_lib.train",
        description="Train LeNet-300-100 or LeNet-5 with sparse variational dropout (or dense) "
        "on MNIST; writes DIR/checkpoint.pt every epoch and DIR/metrics.json at the end.",
    )
    p.add_argument("--model", required=True, choices=sorted(MODELS), help="the network")
    p.add_argument("--dense", action="store_true", help="train the dense baseline (no KL)")
    p.add_argument(
        "--recipe",
        default="quick",
        choices=RECIPES,
        help="'paper': 200 epochs as in the paper; 'quick': the CPU schedule (default)",
    )
    p.add_argument(
        "--epochs", type=_count("--epochs"), default=None, help="override the recipe's number of epochs"
    )
    p.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda, cuda:N")
    p.add_argument("--out", default=None, help="output folder (default runs/<model>-<recipe>[-dense])")
    p.add_argument("--resume", action="store_true", help="continue from DIR/checkpoint.pt")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument(
        "--limit", type=_count("--limit"), default=None, help="use only the first N training images"
    )
    p.add_argument(
        "--threads",
        type=_count("--threads"),
        default=None,
        help="CPU threads for torch (default: torch's choice); the chapters use 1, "
        "which also makes CPU runs bit-reproducible",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m course_lib.train``; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    out = args.out or f"runs/{args.model}-{args.recipe}{'-dense' if args.dense else ''}"
    try:
        dev = pick_device(args.device)
    except ValueError as exc:
        parser.error(str(exc))
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.resume and not (Path(out) / CHECKPOINT_NAME).exists():
        print(f"--resume: no checkpoint in {out} yet; starting a new run.", file=sys.stderr)
    try:
        _, m = train(
            args.model,
            sparse=not args.dense,
            recipe=args.recipe,
            epochs=args.epochs,
            device=dev,
            out=out,
            resume=args.resume,
            seed=args.seed,
            limit=args.limit,
            progress=not args.quiet,
            log=True,
        )
    except (ValueError, TypeError, CheckpointError, TrainingDiverged) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(
        f"{args.model} ({'dense' if args.dense else 'sparse VD'}, {args.recipe}): "
        f"test error {100 * m['test_error']:.2f} %, compression {m['compression']:.1f}x, "
        f"{m['seconds']:.0f} s on {m['device']}; wrote {Path(out) / METRICS_NAME}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
