"""The files of a training run: ``checkpoint.pt`` every epoch, ``metrics.json`` at the end.

:func:`course_lib.train.train` with ``out=DIR`` writes

* ``DIR/checkpoint.pt`` after every epoch, atomically (:func:`save_checkpoint`): the run's
  settings, the model, the optimizer, the batch order's and the noise's RNG states and the
  history so far (:func:`checkpoint_state`), so that a killed run continues exactly where it
  stopped (:func:`resume_state`, :func:`restore_state`) and ends with the metrics of an
  uninterrupted run;
* ``DIR/metrics.json`` at the end (:func:`write_metrics`): the results, with the provenance
  that makes a recorded number traceable (:func:`provenance`, :func:`git_commit`).

A checkpoint is read with ``torch.load(weights_only=True)`` (:func:`load_checkpoint`) and a
damaged, foreign or mismatched one is refused with :class:`CheckpointError`.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import torch
from torch import nn

#: Version of the checkpoint layout; a checkpoint of another version is refused.
CHECKPOINT_FORMAT = 1
CHECKPOINT_NAME = "checkpoint.pt"
METRICS_NAME = "metrics.json"


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be read, or belongs to a different run."""


def save_checkpoint(path: Path, state: dict) -> None:
    """Write ``state`` to ``path`` atomically (a kill mid-write leaves the old file intact)."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read a checkpoint with ``torch.load(weights_only=True)`` and check its layout.

    A checkpoint written before the KL weight was named ``kl_weight`` (issue 17) has a
    history column ``"beta"``; it is renamed, in place in every row.

    Raises
    ------
    CheckpointError
        If the file is unreadable / corrupt, or not a checkpoint of this trainer.
    """
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a damaged file
        raise CheckpointError(
            f"{path}: checkpoint is corrupt or unreadable ({type(exc).__name__}: {exc}). "
            "Delete it to start the run over, or point --out at another folder."
        ) from exc
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{path}: not a course_lib.train checkpoint of format {CHECKPOINT_FORMAT}. "
            "Delete it to start the run over, or point --out at another folder."
        )
    state["history"] = [
        {("kl_weight" if k == "beta" else k): v for k, v in row.items()} for row in state.get("history", [])
    ]
    return state


def resume_state(path: Path | None, config: dict, resume: bool) -> dict | None:
    """The checkpoint at ``path`` to resume from, or None for a fresh run.

    Parameters
    ----------
    path : Path or None
        Where the run's checkpoint is (None: a run without an output folder).
    config : dict
        The settings of the run about to start; the checkpoint's must be the same.
    resume : bool
        Whether an existing checkpoint may be continued.

    Raises
    ------
    ValueError
        ``path`` exists but ``resume`` is False.
    CheckpointError
        The checkpoint is corrupt, foreign, or was written by a run with other settings.
    """
    if path is None or not path.exists():
        return None
    if not resume:
        raise ValueError(
            f"{path} already exists; pass resume=True (--resume) to continue that run, "
            "or choose another output folder."
        )
    state = load_checkpoint(path)
    if state["config"] != config:
        diff = {k: (state["config"].get(k), v) for k, v in config.items() if state["config"].get(k) != v}
        raise CheckpointError(
            f"{path} belongs to a run with other settings (checkpoint vs now: {diff}); "
            "resume with the same flags, or choose another --out."
        )
    return state


def checkpoint_state(
    config: dict,
    epoch: int,
    seconds: float,
    net: nn.Module,
    opt: torch.optim.Optimizer,
    generator: torch.Generator,
    device: torch.device,
    history: list[dict],
) -> dict:
    """What ``checkpoint.pt`` holds after epoch ``epoch`` (counted from 1).

    The RNG states are the batch order's ``generator``, the global torch RNG (the noise of the
    sparse layers on the CPU) and, on a GPU, the CUDA RNG of ``device``.
    """
    rng = {"batch": generator.get_state(), "torch": torch.get_rng_state()}
    if device.type == "cuda":
        rng["cuda"] = torch.cuda.get_rng_state(device)
    return {
        "format": CHECKPOINT_FORMAT,
        "config": config,
        "epoch": epoch,
        "seconds": seconds,
        "model": net.state_dict(),
        "optimizer": opt.state_dict(),
        "rng": rng,
        "history": history,
    }


def restore_state(
    state: dict, net: nn.Module, opt: torch.optim.Optimizer, generator: torch.Generator, device: torch.device
) -> tuple[list[dict], int, float]:
    """Load a checkpoint's model, optimizer and RNG states in place.

    Returns
    -------
    (history, epoch, seconds)
        The history so far, the number of epochs done and the training time they took.
    """
    net.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    generator.set_state(state["rng"]["batch"])
    torch.set_rng_state(state["rng"]["torch"])
    if device.type == "cuda" and "cuda" in state["rng"]:
        torch.cuda.set_rng_state(state["rng"]["cuda"], device)
    return list(state["history"]), int(state["epoch"]), float(state["seconds"])


def git_commit() -> str | None:
    """The git commit of the code that runs (None outside a git checkout)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=10,
        )
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def provenance(device: torch.device) -> dict:
    """Where a run ran: ``device, device_name, torch_version, num_threads``."""
    return {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch_version": torch.__version__,
        "num_threads": torch.get_num_threads(),
    }


def write_metrics(out_dir: Path, metrics: dict) -> Path:
    """Write ``metrics`` to ``out_dir/metrics.json`` atomically; returns the path."""
    path = out_dir / METRICS_NAME
    tmp = out_dir / (METRICS_NAME + ".tmp")
    tmp.write_text(json.dumps(metrics, indent=2))
    os.replace(tmp, path)
    return path
