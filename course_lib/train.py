"""Train LeNet-300-100 / LeNet-5 with sparse variational dropout (or dense) on MNIST.

The course's training loop.  :func:`train` runs a :class:`~course_lib.recipes.Recipe` on a
:mod:`course_lib.models` network; every epoch is one pass of Adam steps on the negative ELBO
L_kappa (:func:`course_lib.objective.training_step`) in a seeded random batch order, with the
KL weight kappa warmed up from 0 to 1 (a dense net has no KL) and the learning rate of the
recipe's schedule::

    for epoch in range(start_epoch, recipe.epochs):
        set_lr(opt, recipe.lr_at(epoch))
        ce_sum, kl, kl_weight = train_epoch(net, opt, x_train, y_train, gen, recipe, epoch, sparse)
        check_finite(ce_sum / N, kl)               # TrainingDiverged
        history.append(row)                        # lr, kl_weight, train CE, KL, test error, ...
        save_checkpoint(DIR / "checkpoint.pt", checkpoint_state(...))
        on_epoch(epoch + 1, net, row)

The data live on the device as two tensors and batches are drawn by indexing with a seeded
permutation (:func:`course_lib.data.batches`: no DataLoader, no per-batch host copies).  With
``out=DIR`` every epoch writes ``DIR/checkpoint.pt`` (atomically), so a killed run continues
exactly where it stopped with ``resume=True``: model, optimizer, the batch order and the noise
RNG are all restored, and the final metrics equal those of an uninterrupted run.  The end of a
run writes ``DIR/metrics.json`` (:mod:`course_lib.checkpoints`).

From the shell: ``python -m course_lib.train --model lenet5 --recipe quick --out runs/q``
(:mod:`course_lib.train_cli`).
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import time
from pathlib import Path
from typing import Callable

import torch

from course_lib import validation as V
from course_lib.checkpoints import (
    CHECKPOINT_NAME,
    checkpoint_state,
    git_commit,
    provenance,
    restore_state,
    resume_state,
    save_checkpoint,
    write_metrics,
)
from course_lib.data import batches, center_inputs, mnist_tensors
from course_lib.models import build_model
from course_lib.objective import training_step
from course_lib.prediction import predict
from course_lib.recipes import Recipe, get_recipe, init_like_paper_
from course_lib.runtime import pick_device
from course_lib.scores import error_rate
from course_lib.sparsity import compression, layer_sparsity

Data = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


class TrainingDiverged(FloatingPointError):
    """The training loss became NaN or infinite (checked once per epoch)."""


class EpochHookError(RuntimeError):
    """The ``on_epoch`` hook of :func:`train` raised; the original error is its ``__cause__``."""


# --- the steps of train(), in the order it takes them -----------------------------------------


def _check_hooks(on_step: object, on_epoch: object) -> None:
    for hook_name, hook in (("on_step", on_step), ("on_epoch", on_epoch)):
        if hook is not None and not callable(hook):
            raise TypeError(f"{hook_name} must be a function (or None), got {type(hook).__name__} {hook!r}.")


def _run_config(model_name: str, sparse: bool, rec: Recipe, seed: int, limit: int | None) -> dict:
    """The settings that make a run (a checkpoint resumes only a run with the same ones)."""
    return {
        "model": model_name,
        "sparse": V.boolean(sparse, "sparse"),
        "recipe": rec.name,
        "epochs": rec.epochs,
        "seed": V.nonnegative_int(seed, "seed"),
        "limit": None if limit is None else V.positive_int(limit, "limit", meaning="training images"),
        "batch_size": rec.batch_size,
        "recipe_settings": dataclasses.asdict(rec),
    }


def load_data(rec: Recipe, device: torch.device, limit: int | None = None, data: Data | None = None) -> Data:
    """``(x_train, y_train, x_test, y_test)`` on ``device``, preprocessed as ``rec.inputs`` says.

    MNIST (:func:`course_lib.data.mnist_tensors`) unless ``data`` gives the four tensors;
    ``limit`` keeps the first training images only.  ``"center"`` starts from pixels in
    [0, 1] and subtracts the mean training image, as the paper's code does.
    """
    if data is None:
        standardize = rec.inputs == "standardize"
        x_tr, y_tr = mnist_tensors("train", device=device, limit=limit, normalize=standardize)
        x_te, y_te = mnist_tensors("test", device=device, normalize=standardize)
    else:
        if len(data) != 4:
            raise ValueError("data must be the 4-tuple (x_train, y_train, x_test, y_test).")
        x_tr, y_tr, x_te, y_te = (t.to(device) for t in data)
        if limit is not None:
            x_tr, y_tr = x_tr[:limit], y_tr[:limit]
    if rec.inputs == "center":
        x_tr, x_te = center_inputs(x_tr, x_te)
    return x_tr, y_tr, x_te, y_te


def build(
    model_name: str, sparse: bool, rec: Recipe, seed: int, device: torch.device
) -> tuple[torch.nn.Module, torch.optim.Optimizer, torch.Generator]:
    """The network (seeded, initialised as ``rec.init`` says), its Adam and the batch-order RNG."""
    torch.manual_seed(seed)
    net = build_model(
        model_name,
        sparse=sparse,
        threshold=rec.threshold,
        log_sigma2_init=rec.log_sigma2_init,
        train_clip=rec.train_clip,
    )
    if rec.init == "paper":
        init_like_paper_(net)
    net = net.to(device)
    # One fused kernel for the whole Adam update on a GPU (many small ones otherwise).
    opt = torch.optim.Adam(net.parameters(), lr=rec.lr, fused=device.type == "cuda")
    return net, opt, torch.Generator().manual_seed(seed)


def set_lr(opt: torch.optim.Optimizer, lr: float) -> float:
    """Set the learning rate of every parameter group; returns it."""
    for group in opt.param_groups:
        group["lr"] = lr
    return lr


def train_epoch(
    net: torch.nn.Module,
    opt: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    generator: torch.Generator,
    rec: Recipe,
    epoch: int,
    sparse: bool = True,
    progress: bool = False,
    on_step: Callable[[int, int], None] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """One pass over ``(x, y)`` in the batch order drawn from ``generator``.

    Step ``s`` of epoch ``epoch`` (both from 0) uses the KL weight
    ``rec.kl_weight(epoch + (s + 1) / steps)`` (0 for a dense net).

    Returns
    -------
    (ce_sum, kl, kl_weight)
        The sum over batches of mean CE times batch size (a tensor on the device: divide by
        ``len(x)`` for the epoch's mean train CE), the KL of the last step (a tensor) and the
        KL weight of the last step.
    """
    net.train()
    n_train = len(x)
    steps = math.ceil(n_train / rec.batch_size)
    ce_sum = torch.zeros((), device=x.device)
    kl = torch.zeros((), device=x.device)
    kl_weight = 0.0
    order = batches(n_train, rec.batch_size, generator, x.device)
    if progress:
        from tqdm.auto import tqdm

        order = tqdm(order, total=steps, desc=f"epoch {epoch + 1}/{rec.epochs}", leave=False)
    for step, idx in enumerate(order):
        kl_weight = rec.kl_weight(epoch + (step + 1) / steps) if sparse else 0.0
        ce, kl = training_step(net, opt, x[idx], y[idx], n_train, kl_weight)
        ce_sum += ce * len(idx)
        if on_step is not None:
            on_step(epoch, step)
    return ce_sum, kl, kl_weight


def check_finite(train_ce: float, kl: float, epoch: int, lr: float, ckpt_path: Path | None) -> None:
    """Raise :class:`TrainingDiverged` if the epoch's train CE or KL is NaN or infinite."""
    if math.isfinite(train_ce) and math.isfinite(kl):
        return
    last = (
        f"the last good state is in {ckpt_path} (epoch {epoch})"
        if ckpt_path is not None and epoch > 0
        else "nothing was saved"
    )
    raise TrainingDiverged(
        f"training diverged in epoch {epoch + 1}: mean train CE = {train_ce}, KL = {kl}; "
        f"{last}. Check the inputs for NaN/inf, or lower the learning rate (now {lr:g})."
    )


def _epoch_row(
    epoch: int,
    lr: float,
    kl_weight: float,
    train_ce: float,
    kl: float,
    seconds: float,
    net: torch.nn.Module,
    x_test: torch.Tensor,
    y_test: torch.Tensor,
) -> dict:
    """The history row of epoch ``epoch`` (from 0): its settings, train terms and the mean net's scores.

    ``test_error`` is the error of :func:`course_lib.prediction.predict` (the mean network,
    pruned), ``compression`` and ``layer_sparsity`` those of :mod:`course_lib.sparsity`, and
    ``seconds`` the training time so far.
    """
    return {
        "epoch": epoch + 1,
        "lr": lr,
        "kl_weight": kl_weight,
        "train_ce": train_ce,
        "kl": kl,
        "test_error": error_rate(predict(net, x_test), y_test),
        "compression": compression(net),
        "layer_sparsity": layer_sparsity(net),
        "seconds": seconds,
    }


def progress_line(row: dict) -> str:
    """The one line ``train(log=True)`` prints after an epoch."""
    return (
        f"epoch {row['epoch']:3d}  lr {row['lr']:.2e}  kl_weight {row['kl_weight']:.2f}  "
        f"train CE {row['train_ce']:.4f}  test error {100 * row['test_error']:.2f} %  "
        f"compression {row['compression']:.1f}x  ({row['seconds']:.0f} s)"
    )


def _call_epoch_hook(
    hook: Callable, epoch: int, net: torch.nn.Module, row: dict, dev: torch.device, ckpt_path: Path | None
) -> None:
    """Run ``hook(epoch, net, row)`` with the torch RNG restored afterwards; wrap its errors."""
    try:
        with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
            hook(epoch, net, {**row, "layer_sparsity": dict(row["layer_sparsity"])})
    except Exception as exc:
        kept = (
            f"the checkpoint of epoch {epoch} is in {ckpt_path}; fix the hook and call train "
            f"again with resume=True to continue"
            if ckpt_path is not None
            else "fix the hook and run again"
        )
        name = getattr(hook, "__qualname__", type(hook).__name__)
        raise EpochHookError(
            f"the on_epoch hook {name} raised {type(exc).__name__} after epoch "
            f"{epoch}: {exc}. Training stopped there; {kept}."
        ) from exc


def _run_metrics(
    config: dict,
    dev: torch.device,
    commit: str | None,
    net: torch.nn.Module,
    n_train: int,
    seconds: float,
    history: list[dict],
) -> dict:
    """What ``metrics.json`` holds: the settings, where and from which commit it ran, the results."""
    return {
        **config,
        **provenance(dev),
        "commit": commit,
        "n_train": n_train,
        "seconds": seconds,
        "test_error": history[-1]["test_error"],
        "compression": compression(net),
        "layer_sparsity": layer_sparsity(net),
        "history": history,
    }


# --- the loop -----------------------------------------------------------------------------------


def train(
    model_name: str = "lenet300",
    sparse: bool = True,
    recipe: str | Recipe = "quick",
    epochs: int | None = None,
    device: str | torch.device | None = "auto",
    out: str | os.PathLike | None = None,
    resume: bool = False,
    seed: int = 0,
    limit: int | None = None,
    data: Data | None = None,
    progress: bool = True,
    log: bool = False,
    on_step: Callable[[int, int], None] | None = None,
    on_epoch: Callable[[int, torch.nn.Module, dict], None] | None = None,
) -> tuple[torch.nn.Module, dict]:
    """Train one model with a recipe; optionally checkpoint to and resume from ``out``.

    Parameters
    ----------
    model_name : {"lenet300", "lenet5"}
        The network, by its name in :data:`course_lib.models.MODELS`.
    sparse : bool, default True
        Sparse variational dropout (True) or the dense baseline (False, no KL).
    recipe : {"paper", "quick"} or Recipe
        A recipe name, or a :class:`~course_lib.recipes.Recipe` of your own (e.g.
        ``dataclasses.replace(get_recipe("quick", "lenet300"), train_clip=True)``).
        See :data:`course_lib.recipes.PAPER` and :data:`~course_lib.recipes.QUICK`.
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
        Print one line per epoch (:func:`progress_line`; for notebooks, where a bar is noisy).
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
        The trained network (on ``device``, in eval mode).
    metrics : dict
        What ``metrics.json`` holds: ``model, recipe, sparse, epochs, device, torch_version,
        seconds, test_error, compression, layer_sparsity, history`` and the settings.

    Raises
    ------
    ValueError
        Bad model / recipe / epochs / limit / seed, an unavailable device, or ``out`` holding
        a checkpoint while ``resume`` is False.
    TypeError
        An argument of the wrong type (e.g. ``limit=2.5``, ``sparse="yes"``), or ``on_step`` /
        ``on_epoch`` given but not callable.
    CheckpointError
        A corrupt checkpoint, or one written by a run with other settings.
    TrainingDiverged
        The loss became NaN or infinite (checked at the end of every epoch, before the
        checkpoint is written, so the checkpoint on disk stays the last good one).
    EpochHookError
        The ``on_epoch`` hook raised (the hook's own error is chained as ``__cause__``); the
        checkpoint of that epoch, if ``out`` is given, is kept and ``resume=True`` continues.
    """
    _check_hooks(on_step, on_epoch)
    rec = get_recipe(recipe, model_name, epochs)
    dev = pick_device(device)
    commit = git_commit()  # at the start: the code that runs, even if HEAD moves meanwhile
    config = _run_config(model_name, sparse, rec, seed, limit)
    ckpt_path = Path(out) / CHECKPOINT_NAME if out is not None else None
    state = resume_state(ckpt_path, config, resume)

    x_tr, y_tr, x_te, y_te = load_data(rec, dev, config["limit"], data)
    n_train = len(x_tr)
    net, opt, gen = build(model_name, config["sparse"], rec, config["seed"], dev)
    history, start_epoch, seconds = (
        ([], 0, 0.0) if state is None else restore_state(state, net, opt, gen, dev)
    )
    if log and state is not None:
        print(f"resumed from {ckpt_path} after epoch {start_epoch}")
    if ckpt_path is not None:
        ckpt_path.parent.mkdir(parents=True, exist_ok=True)

    for epoch in range(start_epoch, rec.epochs):
        t0 = time.perf_counter()
        lr = set_lr(opt, rec.lr_at(epoch))
        ce_sum, kl, kl_weight = train_epoch(
            net, opt, x_tr, y_tr, gen, rec, epoch, config["sparse"], progress, on_step
        )
        seconds += time.perf_counter() - t0
        train_ce, kl = float(ce_sum) / n_train, float(kl)  # the epoch's one read-back
        check_finite(train_ce, kl, epoch, lr, ckpt_path)
        row = _epoch_row(epoch, lr, kl_weight, train_ce, kl, seconds, net, x_te, y_te)
        history.append(row)
        if log:
            print(progress_line(row))
        if ckpt_path is not None:
            save_checkpoint(
                ckpt_path, checkpoint_state(config, epoch + 1, seconds, net, opt, gen, dev, history)
            )
        if on_epoch is not None:
            _call_epoch_hook(on_epoch, epoch + 1, net, row, dev, ckpt_path)

    net.eval()
    metrics = _run_metrics(config, dev, commit, net, n_train, seconds, history)
    if out is not None:
        write_metrics(Path(out), metrics)
    return net, metrics


if __name__ == "__main__":  # python -m course_lib.train: the command line of course_lib.train_cli
    from course_lib.train_cli import main

    sys.exit(main())
