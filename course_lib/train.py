"""Train LeNet-300-100 / LeNet-5 with sparse variational dropout (or dense) on MNIST.

The objective is the negative ELBO of the paper, per mini-batch of size B,

.. math::

    \\mathcal{L}_\\kappa = N \\cdot \\frac1B \\sum_{i \\in \\text{batch}}
        \\mathrm{CE}(f(x_i), y_i) + \\kappa \\, \\mathrm{KL}(q \\,\\|\\, p),

with N the training-set size and the KL weight kappa (``kl_weight``) warmed up from 0 to 1 (a dense net has
no KL).  Adam with a linearly decaying learning rate; the data live on the device as two
tensors and batches are drawn by indexing with a seeded permutation (no DataLoader, no
per-batch host copies).

Use it from Python (:func:`train`) or from the shell::

    python -m course_lib.train --model lenet5 --recipe quick --threads 1 --out runs/lenet5-quick
    python -m course_lib.train --model lenet300 --dense --epochs 10 --out runs/dense
    python -m course_lib.train --model lenet5 --recipe paper --device cuda --out runs/paper --resume

Every epoch writes ``DIR/checkpoint.pt`` (atomically), so a killed run continues exactly
where it stopped with ``--resume``: model, optimizer, the batch order and the noise RNG are
all restored, and the final metrics equal those of an uninterrupted run.  The end of a run
writes ``DIR/metrics.json``.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from course_lib.data import mnist_tensors
from course_lib.models import MODELS, build_model
from course_lib.recipes import INPUTS, PAPER, QUICK, RECIPES, Recipe, get_recipe, init_like_paper_  # noqa: F401
from course_lib.runtime import pick_device
from course_lib.sparsity import compression, layer_sparsity

#: Version of the checkpoint layout; a checkpoint of another version is refused.
CHECKPOINT_FORMAT = 1
CHECKPOINT_NAME = "checkpoint.pt"
METRICS_NAME = "metrics.json"


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be read, or belongs to a different run."""


class TrainingDiverged(FloatingPointError):
    """The training loss became NaN or infinite (checked once per epoch)."""


class EpochHookError(RuntimeError):
    """The ``on_epoch`` hook of :func:`train` raised; the original error is its ``__cause__``."""


def batches(n: int, batch_size: int, generator: torch.Generator, device: torch.device):
    """Yield index tensors of a seeded random permutation of ``range(n)``, on ``device``.

    The permutation is drawn on the CPU with ``generator`` (reproducible on every device)
    and moved to the device once per epoch; each batch is a slice of it.
    """
    perm = torch.randperm(n, generator=generator).to(device)
    for start in range(0, n, batch_size):
        yield perm[start:start + batch_size]


@torch.no_grad()
def evaluate(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
             batch_size: int = 2000) -> float:
    """Error rate of the deterministic (eval-mode, pruned) model on ``(x, y)``."""
    was_training = model.training
    model.eval()
    wrong = 0
    for start in range(0, len(x), batch_size):
        pred = model(x[start:start + batch_size]).argmax(1)
        wrong += int((pred != y[start:start + batch_size]).sum())
    model.train(was_training)
    return wrong / len(x)


def center_inputs(x_train: torch.Tensor, x_test: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Subtract the mean training image from both sets (the paper code's preprocessing).

    Returns new tensors; a pixel that is the same in every training image becomes 0 there.
    """
    if x_train.dim() < 2 or x_train.shape[1:] != x_test.shape[1:]:
        raise ValueError(
            f"train and test images must have the same shape per image, got "
            f"{tuple(x_train.shape)} and {tuple(x_test.shape)}."
        )
    mean_image = x_train.mean(0, keepdim=True)
    return x_train - mean_image, x_test - mean_image


def training_step(net: torch.nn.Module, opt: torch.optim.Optimizer, xb: torch.Tensor,
                  yb: torch.Tensor, n_train: int, kl_weight: float) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimizer step on the negative ELBO ``n_train * mean CE + kl_weight * KL``.

    Parameters
    ----------
    net : nn.Module
        A :mod:`course_lib.models` network in training mode (its ``kl()`` is 0 when dense).
    opt : torch.optim.Optimizer
    xb, yb : Tensor
        The mini-batch (images and labels), already on the device.
    n_train : int
        Training-set size N (scales the data term to the whole set).
    kl_weight : float
        The KL weight kappa.

    Returns
    -------
    (ce, kl) : detached scalar tensors
        The batch's mean cross-entropy and the model's KL (both before the step).
    """
    ce = F.cross_entropy(net(xb), yb)
    kl = net.kl()
    loss = n_train * ce + kl_weight * kl if kl.requires_grad else n_train * ce
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return ce.detach(), kl.detach()


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent,
                             capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def save_checkpoint(path: Path, state: dict) -> None:
    """Write ``state`` to ``path`` atomically (a kill mid-write leaves the old file intact)."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read a checkpoint with ``torch.load(weights_only=True)`` and check its layout.

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
    # Checkpoints written before the KL weight was named kl_weight (issue 17) call the
    # history column "beta": rename it, in place in each row, so a resumed history is uniform.
    state["history"] = [{("kl_weight" if k == "beta" else k): v for k, v in row.items()}
                        for row in state.get("history", [])]
    return state


def train(
    model: str = "lenet300",
    sparse: bool = True,
    recipe: str | Recipe = "quick",
    epochs: int | None = None,
    device: str | torch.device | None = "auto",
    out: str | os.PathLike | None = None,
    resume: bool = False,
    seed: int = 0,
    limit: int | None = None,
    data: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
    progress: bool = True,
    log: bool = False,
    on_step: Callable[[int, int], None] | None = None,
    on_epoch: Callable[[int, torch.nn.Module, dict], None] | None = None,
) -> tuple[torch.nn.Module, dict]:
    """Train one model with a recipe; optionally checkpoint to and resume from ``out``.

    Parameters
    ----------
    model : {"lenet300", "lenet5"}
    sparse : bool, default True
        Sparse variational dropout (True) or the dense baseline (False, no KL).
    recipe : {"paper", "quick"} or Recipe
        A recipe name, or a :class:`Recipe` of your own (e.g.
        ``dataclasses.replace(get_recipe("quick", "lenet300"), train_clip=True)``).
        See :data:`PAPER` and :data:`QUICK` (``epochs`` overrides the length).
    epochs : int, optional
        Override the recipe's number of epochs (the lr decays over the new length).
    device : str, torch.device or None, default "auto"
        ``"auto"``: CUDA if present, else CPU (:func:`course_lib.runtime.pick_device`).
    out : path-like, optional
        Folder for ``checkpoint.pt`` (every epoch) and ``metrics.json`` (at the end).
    resume : bool, default False
        Continue from ``out/checkpoint.pt`` if it exists (the run's settings must match).
    seed : int, default 0
        Seeds the initialisation, the batch order and the noise.
    limit : int, optional
        Train on the first ``limit`` training images only (tests, quick looks).
    data : (x_train, y_train, x_test, y_test), optional
        Tensors to use instead of loading MNIST (they are moved to the device once).
    progress : bool, default True
        Show a tqdm progress bar per epoch.
    log : bool, default False
        Print one line per epoch (for notebooks, where a bar is noisy).
    on_step : callable, optional
        Called as ``on_step(epoch, step)`` after every optimizer step (hooks, tests).
    on_epoch : callable, optional
        Called as ``on_epoch(epoch, model, row)`` once after every epoch this call trains, to
        record snapshots during training (e.g. a layer's log alpha for a figure per epoch):
        ``epoch`` counts from 1, ``model`` is the network (in training mode; read it, do not
        change it, and copy what you keep to the CPU), ``row`` a copy of that epoch's entry of
        ``metrics["history"]`` (``epoch, lr, kl_weight, train_ce, kl, test_error, compression,
        layer_sparsity, seconds``).  It runs after the epoch's checkpoint is written, and the
        global torch RNG is restored afterwards, so a hook cannot change the run.  On
        ``resume`` it is called for the remaining epochs only.

        Example -- the fraction of pruned weights of ``fc1`` after every epoch::

            pruned = {}
            def record(epoch, model, row):
                pruned[epoch] = row["layer_sparsity"]["fc1"]
            train("lenet300", on_epoch=record)

    Returns
    -------
    model : nn.Module
        The trained network (on ``device``).
    metrics : dict
        What ``metrics.json`` holds: ``model, recipe, sparse, epochs, device, torch_version,
        seconds, test_error, compression, layer_sparsity, history`` and the settings.

    Raises
    ------
    ValueError
        Bad model / recipe / epochs / limit, an unavailable device, or ``out`` holding a
        checkpoint while ``resume`` is False.
    CheckpointError
        A corrupt checkpoint, or one written by a run with other settings.
    TrainingDiverged
        The loss became NaN or infinite (checked at the end of every epoch, before the
        checkpoint is written, so the checkpoint on disk stays the last good one).
    EpochHookError
        The ``on_epoch`` hook raised (the hook's own error is chained as ``__cause__``); the
        checkpoint of that epoch, if ``out`` is given, is kept and ``resume=True`` continues.
    TypeError
        ``on_step`` or ``on_epoch`` is given but not callable.
    """
    for hook_name, hook in (("on_step", on_step), ("on_epoch", on_epoch)):
        if hook is not None and not callable(hook):
            raise TypeError(f"{hook_name} must be a function (or None), got "
                            f"{type(hook).__name__} {hook!r}.")
    rec = get_recipe(recipe, model, epochs)
    dev = pick_device(device)
    commit = _git_commit()  # at the start: the code that runs, even if HEAD moves meanwhile
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit must be a positive number of training images, got {limit!r}.")
    out_dir = Path(out) if out is not None else None
    ckpt_path = out_dir / CHECKPOINT_NAME if out_dir is not None else None
    config = {"model": model, "sparse": bool(sparse), "recipe": rec.name, "epochs": rec.epochs,
              "seed": int(seed), "limit": limit, "batch_size": rec.batch_size,
              "recipe_settings": dataclasses.asdict(rec)}
    state = None
    if ckpt_path is not None and ckpt_path.exists():
        if not resume:
            raise ValueError(
                f"{ckpt_path} already exists; pass resume=True (--resume) to continue that run, "
                "or choose another output folder."
            )
        state = load_checkpoint(ckpt_path)
        if state["config"] != config:
            diff = {k: (state["config"].get(k), v) for k, v in config.items()
                    if state["config"].get(k) != v}
            raise CheckpointError(
                f"{ckpt_path} belongs to a run with other settings (checkpoint vs now: {diff}); "
                "resume with the same flags, or choose another --out."
            )

    # Data, once, on the device.
    if data is None:  # "center" starts from pixels in [0, 1], as the paper's code does
        standardize = rec.inputs == "standardize"
        x_tr, y_tr = mnist_tensors("train", device=dev, limit=limit, normalize=standardize)
        x_te, y_te = mnist_tensors("test", device=dev, normalize=standardize)
    else:
        if len(data) != 4:
            raise ValueError("data must be the 4-tuple (x_train, y_train, x_test, y_test).")
        x_tr, y_tr, x_te, y_te = (t.to(dev) for t in data)
        if limit is not None:
            x_tr, y_tr = x_tr[:limit], y_tr[:limit]
    if rec.inputs == "center":
        x_tr, x_te = center_inputs(x_tr, x_te)
    n_train = len(x_tr)

    torch.manual_seed(seed)
    net = build_model(model, sparse=sparse, threshold=rec.threshold,
                      log_sigma2_init=rec.log_sigma2_init, train_clip=rec.train_clip)
    if rec.init == "paper":
        init_like_paper_(net)
    net = net.to(dev)
    # One fused kernel for the whole Adam update on a GPU (many small ones otherwise).
    opt = torch.optim.Adam(net.parameters(), lr=rec.lr, fused=dev.type == "cuda")
    gen = torch.Generator().manual_seed(seed)
    history: list[dict] = []
    start_epoch, seconds = 0, 0.0
    if state is not None:
        net.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        gen.set_state(state["rng"]["batch"])
        torch.set_rng_state(state["rng"]["torch"])
        if dev.type == "cuda" and "cuda" in state["rng"]:
            torch.cuda.set_rng_state(state["rng"]["cuda"], dev)
        history = list(state["history"])
        start_epoch, seconds = int(state["epoch"]), float(state["seconds"])
        if log:
            print(f"resumed from {ckpt_path} after epoch {start_epoch}")
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)

    steps = math.ceil(n_train / rec.batch_size)
    if progress:
        from tqdm.auto import tqdm
    for epoch in range(start_epoch, rec.epochs):
        t0 = time.perf_counter()
        lr = rec.lr_at(epoch)
        for group in opt.param_groups:
            group["lr"] = lr
        net.train()
        ce_sum = torch.zeros((), device=dev)
        kl_val = torch.zeros((), device=dev)
        it = batches(n_train, rec.batch_size, gen, dev)
        if progress:
            it = tqdm(it, total=steps, desc=f"epoch {epoch + 1}/{rec.epochs}", leave=False)
        kl_weight = 0.0
        for step, idx in enumerate(it):
            kl_weight = rec.kl_weight(epoch + (step + 1) / steps) if sparse else 0.0
            ce, kl_val = training_step(net, opt, x_tr[idx], y_tr[idx], n_train, kl_weight)
            ce_sum += ce * len(idx)
            if on_step is not None:
                on_step(epoch, step)
        seconds += time.perf_counter() - t0
        train_ce, kl_last = float(ce_sum) / n_train, float(kl_val)  # the epoch's one read-back
        if not (math.isfinite(train_ce) and math.isfinite(kl_last)):
            last = (f"the last good state is in {ckpt_path} (epoch {epoch})"
                    if ckpt_path is not None and epoch > 0 else "nothing was saved")
            raise TrainingDiverged(
                f"training diverged in epoch {epoch + 1}: mean train CE = {train_ce}, KL = {kl_last}; "
                f"{last}. Check the inputs for NaN/inf, or lower the learning rate (now {lr:g})."
            )
        row = {"epoch": epoch + 1, "lr": lr, "kl_weight": kl_weight,
               "train_ce": train_ce, "kl": kl_last,
               "test_error": evaluate(net, x_te, y_te),
               "compression": compression(net), "layer_sparsity": layer_sparsity(net),
               "seconds": seconds}
        history.append(row)
        if log:
            print(f"epoch {epoch + 1:3d}  lr {lr:.2e}  kl_weight {kl_weight:.2f}  train CE {row['train_ce']:.4f}  "
                  f"test error {100 * row['test_error']:.2f} %  compression {row['compression']:.1f}x  "
                  f"({seconds:.0f} s)")
        if ckpt_path is not None:
            rng = {"batch": gen.get_state(), "torch": torch.get_rng_state()}
            if dev.type == "cuda":
                rng["cuda"] = torch.cuda.get_rng_state(dev)
            save_checkpoint(ckpt_path, {"format": CHECKPOINT_FORMAT, "config": config,
                                        "epoch": epoch + 1, "seconds": seconds,
                                        "model": net.state_dict(), "optimizer": opt.state_dict(),
                                        "rng": rng, "history": history})
        if on_epoch is not None:
            _call_epoch_hook(on_epoch, epoch + 1, net, row, dev, ckpt_path)

    net.eval()
    final = history[-1] if history else None
    metrics = {
        **config,
        "device": str(dev),
        "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
        "torch_version": torch.__version__,
        "num_threads": torch.get_num_threads(),
        "commit": commit,
        "n_train": n_train,
        "seconds": seconds,
        "test_error": final["test_error"] if final else evaluate(net, x_te, y_te),
        "compression": compression(net),
        "layer_sparsity": layer_sparsity(net),
        "history": history,
    }
    if out_dir is not None:
        tmp = out_dir / (METRICS_NAME + ".tmp")
        tmp.write_text(json.dumps(metrics, indent=2))
        os.replace(tmp, out_dir / METRICS_NAME)
    return net, metrics


def _call_epoch_hook(hook: Callable, epoch: int, net: torch.nn.Module, row: dict,
                     dev: torch.device, ckpt_path: Path | None) -> None:
    """Run ``hook(epoch, net, row)`` with the torch RNG restored afterwards; wrap its errors."""
    try:
        with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
            hook(epoch, net, {**row, "layer_sparsity": dict(row["layer_sparsity"])})
    except Exception as exc:
        kept = (f"the checkpoint of epoch {epoch} is in {ckpt_path}; fix the hook and call train "
                f"again with resume=True to continue" if ckpt_path is not None
                else "fix the hook and run again")
        name = getattr(hook, "__qualname__", type(hook).__name__)
        raise EpochHookError(f"the on_epoch hook {name} raised {type(exc).__name__} after epoch "
                             f"{epoch}: {exc}. Training stopped there; {kept}.") from exc


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m course_lib.train`` argument parser."""
    p = argparse.ArgumentParser(
        prog="python -m course_lib.train",
        description="Train LeNet-300-100 or LeNet-5 with sparse variational dropout (or dense) "
                    "on MNIST; writes DIR/checkpoint.pt every epoch and DIR/metrics.json at the end.")
    p.add_argument("--model", required=True, choices=sorted(MODELS), help="the network")
    p.add_argument("--dense", action="store_true", help="train the dense baseline (no KL)")
    p.add_argument("--recipe", default="quick", choices=RECIPES,
                   help="'paper': 200 epochs as in the paper; 'quick': the CPU schedule (default)")
    p.add_argument("--epochs", type=_positive_int, default=None,
                   help="override the recipe's number of epochs")
    p.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda, cuda:N")
    p.add_argument("--out", default=None,
                   help="output folder (default runs/<model>-<recipe>[-dense])")
    p.add_argument("--resume", action="store_true", help="continue from DIR/checkpoint.pt")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--limit", type=_positive_int, default=None,
                   help="use only the first N training images")
    p.add_argument("--threads", type=_positive_int, default=None,
                   help="CPU threads for torch (default: torch's choice); the chapters use 1, "
                        "which also makes CPU runs bit-reproducible")
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
        _, m = train(args.model, sparse=not args.dense, recipe=args.recipe, epochs=args.epochs,
                     device=dev, out=out, resume=args.resume, seed=args.seed, limit=args.limit,
                     progress=not args.quiet, log=True)
    except (ValueError, CheckpointError, TrainingDiverged) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.model} ({'dense' if args.dense else 'sparse VD'}, {args.recipe}): "
          f"test error {100 * m['test_error']:.2f} %, compression {m['compression']:.1f}x, "
          f"{m['seconds']:.0f} s on {m['device']}; wrote {Path(out) / METRICS_NAME}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
