"""Class probabilities of a network: one deterministic pass in evaluation mode.

:func:`predict` is the one way the course turns a network into predicted probabilities,
``softmax(model(x))`` with every module in ``eval()`` mode, in batches. For a sparse VD
network (:mod:`course_lib.layers`) this is the *mean network* (``theta`` with the weights of
``log_alpha >= threshold`` pruned); for a dropout network it is the weight-scaling rule (the
noise of mean one is switched off); for a dense network it is the network itself.

Its parts serve the stochastic predictions too: :func:`eval_mode` (every module in eval mode
for a ``with`` block except the ones named, all flags restored afterwards) and
:func:`probabilities` (the batched softmax, modes as they are). :func:`course_lib.dropout.mc_samples`
keeps the dropout modules training; :func:`course_lib.ensemble.mc_samples` runs
:func:`predict` with weights drawn from q(W).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from course_lib import validation as V


@contextmanager
def eval_mode(model: nn.Module, train: Iterable[nn.Module] = ()) -> Iterator[nn.Module]:
    """Put ``model`` in ``eval()`` mode for a ``with`` block, the modules in ``train`` in ``train()``.

    On leaving the block (also by an exception) every submodule gets its own previous
    ``training`` flag back, so a model in a mixed state stays in it.

    Parameters
    ----------
    model : nn.Module
    train : iterable of nn.Module, default ()
        Submodules to keep stochastic (e.g. the dropout layers of MC dropout).

    Yields
    ------
    nn.Module
        ``model`` itself.

    Raises
    ------
    TypeError
        If ``model`` is not an ``nn.Module``.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}.")
    modes = {m: m.training for m in model.modules()}
    model.eval()
    for m in train:
        m.train()
    try:
        yield model
    finally:
        for m, was in modes.items():
            m.training = was


def _check_x(x: object) -> Tensor:
    if not isinstance(x, Tensor) or x.dim() < 2 or x.shape[0] < 1:
        raise ValueError(
            f"x must be a batch of inputs, a tensor of shape (N, ...) with N >= 1, got "
            f"{tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__}; for one input use "
            "x.unsqueeze(0)."
        )
    return x


@torch.no_grad()
def probabilities(model: nn.Module, x: Tensor, batch_size: int | None = 2000) -> Tensor:
    """``softmax(model(x))`` over the classes, in batches, with the modules' modes as they are.

    Parameters
    ----------
    model : nn.Module
        Maps a batch to logits of shape (B, C).
    x : Tensor, shape (N, ...)
        Inputs, on the model's device.
    batch_size : int or None, default 2000
        Inputs per forward pass; None: all N in one pass. For a deterministic model it affects
        memory only; a stochastic one draws its noise batch after batch.

    Returns
    -------
    Tensor, shape (N, C)

    Raises
    ------
    ValueError
        ``x`` is not a non-empty batch, or ``batch_size`` is below 1.
    TypeError
        ``batch_size`` is not an integer (or None).
    """
    x = _check_x(x)
    size = (
        x.shape[0]
        if batch_size is None
        else V.positive_int(batch_size, "batch_size", meaning="inputs per forward pass")
    )
    return torch.cat([F.softmax(model(xb), dim=1) for xb in x.split(size)])


def predict(model: nn.Module, x: Tensor, batch_size: int | None = 2000) -> Tensor:
    """Class probabilities of one deterministic pass, ``softmax(model(x))`` in eval mode.

    Every module is in ``eval()`` mode during the pass (:func:`eval_mode`) and gets its own
    training flag back afterwards.

    Parameters
    ----------
    model : nn.Module
        Maps a batch to logits of shape (B, C).
    x : Tensor, shape (N, ...)
        Inputs, on the model's device.
    batch_size : int or None, default 2000
        Inputs per forward pass (memory only; the result does not depend on it); None: one pass.

    Returns
    -------
    Tensor, shape (N, C)

    Examples
    --------
    >>> net = nn.Sequential(nn.Linear(3, 2), nn.Dropout(0.5)).train()
    >>> predict(net, torch.zeros(4, 3)).shape, net.training
    (torch.Size([4, 2]), True)
    """
    with eval_mode(model):
        return probabilities(model, x, batch_size)
