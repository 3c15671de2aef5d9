"""The Bayesian ensemble of a sparse VD network: Monte Carlo averaging over q(W) (chapter 10).

The predictive distribution of a network with a posterior q(W) is estimated by ``K`` members,

.. math::

    p(y \\mid x) \\approx \\frac1K \\sum_{k=1}^{K} p(y \\mid x, W_k), \\qquad W_k \\sim q(W),

* :func:`sample_weights` -- one draw :math:`W_k` of every sparse layer
  (:meth:`course_lib.layers.LinearSVDO.sample_weight`);
* :func:`mc_samples` / :func:`mc_predict` -- the members' probabilities and their mean, with
  ``K`` weight samples shared by all inputs (``mode="weights"``) or ``K`` noisy passes of the
  local reparameterization trick (``mode="lrt"``, fresh noise per example and unit). A member
  is :func:`course_lib.prediction.predict` run inside :func:`course_lib.layers.use_weights`: it
  depends on q(W) only -- not on the clip of log alpha, nor on the threshold unless ``prune``;
* :func:`ensemble_predictions` / :func:`ensemble_curve` -- the average of the first ``k``
  members, and its accuracy, NLL and ECE (:mod:`course_lib.scores`), for several ``k``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch
from torch import Tensor, nn

from course_lib import validation as V
from course_lib.layers import sparse_layers, use_weights
from course_lib.prediction import predict
from course_lib.scores import Scores, score

#: The two ways of drawing ensemble members, see :func:`mc_samples`.
MC_MODES: tuple[str, ...] = ("weights", "lrt")


def _layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    layers = sparse_layers(model)
    if not layers:
        raise ValueError(
            f"{type(model).__name__} has no sparse variational dropout layer (LinearSVDO / "
            "Conv2dSVDO), so every ensemble member would be the same network; use "
            "course_lib.prediction.predict(model, x)."
        )
    return layers


@torch.no_grad()
def sample_weights(
    model: nn.Module, generator: torch.Generator | None = None, prune: bool = False
) -> dict[str, Tensor]:
    """Draw one weight sample :math:`W \\sim q(W)` of every sparse VD layer.

    ``w = theta + sigma * eps`` with ``eps ~ N(0, 1)`` per weight and
    ``sigma = exp(log_sigma2 / 2)``, layer after layer in forward order.

    Parameters
    ----------
    model : nn.Module
        A network with :class:`~course_lib.layers.LinearSVDO` / ``Conv2dSVDO`` layers.
    generator : torch.Generator, optional
        Source of ``eps`` (on the model's device); the global RNG when None.
    prune : bool, default False
        Set the pruned weights (``log_alpha >= threshold``) of the sample to zero, i.e.
        sample only the weights the sparse network keeps.

    Returns
    -------
    dict
        ``{layer name: w}``, what :func:`course_lib.layers.use_weights` takes.

    Raises
    ------
    ValueError
        If the model has no sparse VD layer.
    """
    return {name: layer.sample_weight(generator, prune) for name, layer in _layers(model)}


@contextmanager
def _seeded_global_rng(device: torch.device, seed: int) -> Iterator[None]:
    # the LRT draws its noise from the global RNG: seed a fork of it, leave the caller's alone
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        yield


@torch.no_grad()
def mc_samples(
    model: nn.Module,
    x: Tensor,
    n_samples: int,
    mode: str = "weights",
    prune: bool = False,
    seed: int = 0,
    batch_size: int = 2000,
) -> Tensor:
    """Class probabilities of ``K = n_samples`` ensemble members drawn from q(W).

    Parameters
    ----------
    model : nn.Module
        A network with sparse VD layers (:mod:`course_lib.models`, ``sparse=True``).
    x : Tensor, shape (N, ...)
        Inputs, on the model's device.
    n_samples : int
        The ensemble size K >= 1.
    mode : {"weights", "lrt"}, default "weights"
        ``"weights"``: member k is the network with one weight sample W_k ~ q(W)
        (:func:`sample_weights`), the same for all N inputs -- a true ensemble of K networks.
        ``"lrt"``: member k is one pass with the local reparameterization trick around
        ``theta``, which draws the pre-activations independently for every input and unit.
        For a fully connected network both give every single input the same distribution of
        outputs; they differ in the correlation *between* inputs.
    prune : bool, default False
        Sample only the weights the sparse network keeps (the pruned ones are exactly 0, in
        the mean and in the variance).
    seed : int, default 0
        Seed of the noise. A private generator / a forked RNG is used: the global torch RNG
        is left as it was.
    batch_size : int, default 2000
        Inputs per forward pass (memory only for ``"weights"``; the LRT draws its noise batch
        after batch).

    Returns
    -------
    Tensor, shape (K, N, C)
        ``softmax`` of every member's logits; ``.mean(0)`` is the MC predictive.

    Raises
    ------
    ValueError
        ``n_samples < 1``, an unknown ``mode``, an empty ``x``, or a model without sparse VD
        layers.
    TypeError
        ``n_samples`` or ``seed`` not an integer.
    """
    n_samples = V.positive_int(n_samples, "n_samples", meaning="the ensemble size K")
    V.one_of(mode, "mode", MC_MODES, meaning="how the members are drawn")
    seed = V.nonnegative_int(seed, "seed")
    layers = _layers(model)
    device = layers[0][1].theta.device
    if mode == "weights":
        gen = torch.Generator(device=device).manual_seed(seed)
        members = []
        for _ in range(n_samples):
            with use_weights(model, sample_weights(model, gen, prune)):
                members.append(predict(model, x, batch_size))
        return torch.stack(members)
    means = {name: (m.sparse_weight() if prune else m.theta) for name, m in layers}
    sigma2 = {name: (m.sigma2 * m.mask() if prune else m.sigma2) for name, m in layers}
    with use_weights(model, means, sigma2), _seeded_global_rng(device, seed):
        return torch.stack([predict(model, x, batch_size) for _ in range(n_samples)])


def mc_predict(
    model: nn.Module,
    x: Tensor,
    n_samples: int,
    mode: str = "weights",
    prune: bool = False,
    seed: int = 0,
    batch_size: int = 2000,
) -> Tensor:
    """The Monte Carlo predictive :math:`\\frac1K \\sum_k p(y \\mid x, W_k)`, ``W_k ~ q(W)``.

    The mean over the members of :func:`mc_samples` (same arguments).

    Returns
    -------
    Tensor, shape (N, C)
    """
    return mc_samples(model, x, n_samples, mode, prune, seed, batch_size).mean(0)


def ensemble_predictions(samples: Tensor, ks: Sequence[int]) -> list[Tensor]:
    """The Monte Carlo predictive of the first ``k`` members, for every ``k`` in ``ks``.

    One pass of cumulative sums over the members: entry ``i`` is
    ``samples[:ks[i]].mean(0)`` (in float64), the ensemble of the first ``ks[i]`` members.

    Parameters
    ----------
    samples : Tensor, shape (K, N, C)
        Members' probabilities, as returned by :func:`mc_samples`.
    ks : sequence of int
        Ensemble sizes, each in ``1..K``.

    Returns
    -------
    list of Tensor of float64, shape (N, C)
        One per ``k``, in the order of ``ks``.

    Raises
    ------
    ValueError
        ``samples`` not 3-D, an empty ``ks``, or a ``k`` outside ``1..K``.
    TypeError
        ``samples`` not a tensor or array, a ``k`` not an integer.

    Examples
    --------
    >>> s = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]], [[0.0, 1.0]]])
    >>> [p.tolist() for p in ensemble_predictions(s, [1, 2])]
    [[[1.0, 0.0]], [[0.5, 0.5]]]
    """
    if isinstance(samples, np.ndarray):
        samples = torch.from_numpy(samples)
    if not isinstance(samples, Tensor):
        raise TypeError(f"samples must be a torch.Tensor or a NumPy array, got {type(samples).__name__}.")
    if samples.dim() != 3:
        raise ValueError(
            f"samples must have shape (K, N, C) (members, examples, classes), got "
            f"{tuple(samples.shape)}; use mc_samples(...)."
        )
    n_members = samples.shape[0]
    ks = [
        V.positive_int(
            k, "every k in ks", meaning="an ensemble size", hint=f"use ensemble sizes in 1..{n_members}"
        )
        for k in ks
    ]
    if not ks:
        raise ValueError("ks is empty; pass the ensemble sizes to score, e.g. [1, 5, 20].")
    for k in ks:
        if k > n_members:
            raise ValueError(
                f"k = {k} is larger than the number of members K = {n_members}; "
                f"draw more samples or use k <= {n_members}."
            )
    csum = samples.double().cumsum(0)
    return [csum[k - 1] / k for k in ks]


def ensemble_curve(
    samples: Tensor, y: Tensor | np.ndarray, ks: Sequence[int], n_bins: int = 15
) -> list[Scores]:
    """Scores of the ensemble of the first ``k`` members, for every ``k`` in ``ks``.

    Parameters
    ----------
    samples : Tensor, shape (K, N, C)
        Members' probabilities, as returned by :func:`mc_samples`.
    y : Tensor or ndarray of int, shape (N,)
    ks : sequence of int
        Ensemble sizes, each in ``1..K``.
    n_bins : int, default 15
        Bins of the ECE.

    Returns
    -------
    list of Scores
        One per ``k``, in the order of ``ks``: the scores of :func:`ensemble_predictions`.

    Raises
    ------
    ValueError
        ``samples`` not 3-D, an empty ``ks``, or a ``k`` outside ``1..K``; bad members or
        labels (see :func:`course_lib.scores.validate_probs`).
    """
    return [score(p, y, n_bins) for p in ensemble_predictions(samples, ks)]
