"""Judging a probabilistic classifier, and the Bayesian ensemble of a sparse VD network.

Scores of predicted class probabilities ``probs`` (shape ``(N, C)``, rows summing to one)
against labels ``y`` (shape ``(N,)``):

* :func:`accuracy` and :func:`nll` (the mean negative log-likelihood, in nats),
* :func:`predictive_entropy` and :func:`confidence` (per example),
* :func:`reliability_curve` and :func:`expected_calibration_error` (Guo et al., 2017):
  the confidences are cut into ``n_bins`` equal-width bins ``((m-1)/M, m/M]`` and

  .. math::

      \\mathrm{ECE} = \\sum_{m=1}^{M} \\frac{|B_m|}{N}\\,
          \\bigl|\\mathrm{acc}(B_m) - \\mathrm{conf}(B_m)\\bigr| .

Predictions of a model (a :mod:`course_lib.models` network):

* :func:`predict` -- one deterministic pass in evaluation mode; for a sparse VD network this
  is the *mean network* (``theta`` with the weights of ``log_alpha >= threshold`` pruned);
* :func:`mc_samples` / :func:`mc_predict` -- the Monte Carlo estimate of the predictive
  distribution :math:`p(y \\mid x) \\approx \\frac1K \\sum_k p(y \\mid x, W_k)`, either with
  ``K`` weight samples :math:`W_k \\sim q(W)` shared by all inputs (``mode="weights"``) or
  with ``K`` noisy passes of the local reparameterization trick (``mode="lrt"``, fresh noise
  per example and unit);
* :func:`ensemble_predictions` / :func:`ensemble_curve` -- the average of the first ``k``
  samples, and its accuracy, NLL and ECE, for several ``k``, from one set of samples.

Unfamiliar inputs: :func:`rotate_images` (a rotation by ``affine_grid`` / ``grid_sample``)
and :func:`noise_images` (pixels drawn uniformly at random).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from course_lib.data import MNIST_MEAN, MNIST_STD
from course_lib.layers import LOG_ALPHA_MIN, SVDO_LAYERS

#: How far a row of probabilities may be from summing to one (float32 softmax is ~1e-6 off).
PROB_ATOL: float = 1e-4
#: Probabilities are clamped at this value before a log (a zero probability gives NLL 34.5,
#: not infinity).
LOG_EPS: float = 1e-15
#: The two ways of drawing ensemble members, see :func:`mc_samples`.
MC_MODES: tuple[str, ...] = ("weights", "lrt")


# ---------------------------------------------------------------------------------------
# input checks
# ---------------------------------------------------------------------------------------
def _as_tensor(value: object, name: str) -> Tensor:
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value)
    if not isinstance(value, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor or a NumPy array, got {type(value).__name__}.")
    return value


def check_probs(probs: Tensor | np.ndarray, name: str = "probs") -> Tensor:
    """Check that ``probs`` is an ``(N, C)`` array of probability vectors and return it.

    Parameters
    ----------
    probs : Tensor or ndarray, shape (N, C)
        One row of class probabilities per example.
    name : str, default "probs"
        The argument's name, used in the error messages.

    Returns
    -------
    Tensor
        ``probs`` as a floating-point tensor (not copied when it already is one).

    Raises
    ------
    TypeError
        If ``probs`` is neither a tensor nor an array.
    ValueError
        If it is not 2-D with at least one row and two classes, is not floating point, holds
        a NaN / infinity or a negative entry, or a row does not sum to one within
        :data:`PROB_ATOL` (the message says to apply a softmax to logits).
    """
    p = _as_tensor(probs, name)
    if p.dim() != 2 or p.shape[0] < 1 or p.shape[1] < 2:
        raise ValueError(
            f"{name} must have shape (N, C) with N >= 1 examples and C >= 2 classes, got "
            f"{tuple(p.shape)}; for a single example use probs.unsqueeze(0)."
        )
    if not p.is_floating_point():
        raise ValueError(f"{name} must be floating point, got dtype {p.dtype}; use probs.float().")
    if not torch.isfinite(p).all():
        raise ValueError(f"{name} holds NaN or infinite values; check the model's outputs.")
    if (p < 0).any():
        raise ValueError(f"{name} has negative entries (min {float(p.min()):.3g}); probabilities "
                         "are >= 0 -- apply torch.softmax(logits, dim=1) to logits first.")
    err = (p.sum(1) - 1.0).abs()
    if (err > PROB_ATOL).any():
        i = int(err.argmax())
        raise ValueError(
            f"each row of {name} must sum to 1, but row {i} sums to {float(p[i].sum()):.6f}; "
            "apply torch.softmax(logits, dim=1) to logits first, or normalise the rows."
        )
    return p


def _check_labels(y: Tensor | np.ndarray, n: int, n_classes: int) -> Tensor:
    y = _as_tensor(y, "y")
    if y.dim() != 1 or y.shape[0] != n:
        raise ValueError(
            f"y must hold one label per row of probs: expected shape ({n},), got "
            f"{tuple(y.shape)}; pass probs of shape (N, C) and labels of shape (N,)."
        )
    if y.is_floating_point() or y.dtype == torch.bool:
        raise ValueError(f"y must hold integer class labels, got dtype {y.dtype}; use y.long().")
    if int(y.min()) < 0 or int(y.max()) >= n_classes:
        raise ValueError(
            f"labels must lie in 0..{n_classes - 1} (probs has {n_classes} columns), got "
            f"{int(y.min())}..{int(y.max())}."
        )
    return y.to(torch.long)


def _check_scored(probs: Tensor | np.ndarray, y: Tensor | np.ndarray) -> tuple[Tensor, Tensor]:
    p = check_probs(probs)
    return p, _check_labels(y, p.shape[0], p.shape[1]).to(p.device)


def _check_positive_int(value: object, name: str, meaning: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer ({meaning}), got {value!r}.")
    return int(value)


# ---------------------------------------------------------------------------------------
# scores
# ---------------------------------------------------------------------------------------
def accuracy(probs: Tensor | np.ndarray, y: Tensor | np.ndarray) -> float:
    """Fraction of examples whose most probable class is the label.

    Parameters
    ----------
    probs : Tensor or ndarray, shape (N, C)
        Class probabilities (see :func:`check_probs`).
    y : Tensor or ndarray of int, shape (N,)
        Labels in ``0..C-1``.

    Returns
    -------
    float
        In [0, 1]. Ties go to the lowest class index (``argmax``).

    Examples
    --------
    >>> accuracy(torch.tensor([[0.9, 0.1], [0.3, 0.7]]), torch.tensor([0, 0]))
    0.5
    """
    p, y = _check_scored(probs, y)
    return float((p.argmax(1) == y).double().mean())


def nll(probs: Tensor | np.ndarray, y: Tensor | np.ndarray) -> float:
    """Mean negative log-likelihood :math:`-\\frac1N \\sum_i \\log p(y_i \\mid x_i)`, in nats.

    Parameters
    ----------
    probs : Tensor or ndarray, shape (N, C)
    y : Tensor or ndarray of int, shape (N,)

    Returns
    -------
    float
        >= 0; the probability of the label is clamped at :data:`LOG_EPS` before the log.

    Examples
    --------
    >>> round(nll(torch.tensor([[0.5, 0.5], [0.25, 0.75]]), torch.tensor([0, 1])), 4)
    0.4904
    """
    p, y = _check_scored(probs, y)
    picked = p.double()[torch.arange(p.shape[0], device=p.device), y]
    return float(-picked.clamp_min(LOG_EPS).log().mean())


def predictive_entropy(probs: Tensor | np.ndarray) -> Tensor:
    """Entropy :math:`H[p] = -\\sum_c p_c \\log p_c` of every row, in nats (``0 log 0 = 0``).

    Parameters
    ----------
    probs : Tensor or ndarray, shape (N, C)

    Returns
    -------
    Tensor of float64, shape (N,)
        Between 0 (one class is certain) and ``log C`` (the uniform distribution).

    Examples
    --------
    >>> predictive_entropy(torch.tensor([[1.0, 0.0], [0.5, 0.5]]))
    tensor([0.0000, 0.6931], dtype=torch.float64)
    """
    p = check_probs(probs).double()
    return torch.special.entr(p).sum(1) + 0.0  # + 0.0 turns -0.0 into 0.0


def confidence(probs: Tensor | np.ndarray) -> Tensor:
    """The probability of the predicted class, :math:`\\max_c p_c`, of every row.

    Parameters
    ----------
    probs : Tensor or ndarray, shape (N, C)

    Returns
    -------
    Tensor, shape (N,)
        Between ``1/C`` and 1.
    """
    return check_probs(probs).max(1).values


@dataclass(frozen=True)
class ReliabilityCurve:
    """Accuracy against confidence in equal-width confidence bins.

    Attributes
    ----------
    edges : ndarray, shape (n_bins + 1,)
        Bin edges ``0, 1/M, ..., 1``; bin ``m`` holds confidences in ``(edges[m], edges[m+1]]``.
    confidence : ndarray, shape (n_bins,)
        Mean confidence of the examples in each bin (NaN for an empty bin).
    accuracy : ndarray, shape (n_bins,)
        Fraction of them classified correctly (NaN for an empty bin).
    counts : ndarray of int, shape (n_bins,)
        Number of examples per bin.
    """

    edges: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray
    counts: np.ndarray

    @property
    def ece(self) -> float:
        """Expected calibration error: the count-weighted mean of ``|accuracy - confidence|``."""
        full = self.counts > 0
        gaps = np.abs(self.accuracy[full] - self.confidence[full])
        return float((self.counts[full] * gaps).sum() / self.counts.sum())


def reliability_curve(probs: Tensor | np.ndarray, y: Tensor | np.ndarray,
                      n_bins: int = 15) -> ReliabilityCurve:
    """Bin the examples by confidence and compare each bin's accuracy with its confidence.

    Parameters
    ----------
    probs : Tensor or ndarray, shape (N, C)
    y : Tensor or ndarray of int, shape (N,)
    n_bins : int, default 15
        Number M of equal-width bins on [0, 1] (Guo et al., 2017, use 15).

    Returns
    -------
    ReliabilityCurve
        A perfectly calibrated model has ``accuracy == confidence`` in every bin.

    Raises
    ------
    ValueError
        Bad ``probs`` / ``y`` (see :func:`check_probs`) or a non-positive ``n_bins``.
    """
    p, y = _check_scored(probs, y)
    n_bins = _check_positive_int(n_bins, "n_bins", "the number of confidence bins")
    conf, pred = p.double().max(1)
    correct = (pred == y).double()
    # bin m holds ((m-1)/M, m/M]; ceil puts a confidence exactly on an edge into the lower bin
    idx = (torch.ceil(conf * n_bins).long() - 1).clamp(0, n_bins - 1)
    counts = torch.bincount(idx, minlength=n_bins).double()
    conf_sum = torch.zeros(n_bins, dtype=torch.float64, device=p.device).index_add_(0, idx, conf)
    acc_sum = torch.zeros(n_bins, dtype=torch.float64, device=p.device).index_add_(0, idx, correct)
    with np.errstate(invalid="ignore", divide="ignore"):
        counts_np = counts.cpu().numpy()
        mean_conf = np.where(counts_np > 0, conf_sum.cpu().numpy() / counts_np, np.nan)
        mean_acc = np.where(counts_np > 0, acc_sum.cpu().numpy() / counts_np, np.nan)
    return ReliabilityCurve(edges=np.linspace(0.0, 1.0, n_bins + 1), confidence=mean_conf,
                            accuracy=mean_acc, counts=counts_np.astype(np.int64))


def expected_calibration_error(probs: Tensor | np.ndarray, y: Tensor | np.ndarray,
                               n_bins: int = 15) -> float:
    """Expected calibration error (ECE) with ``n_bins`` equal-width confidence bins.

    Parameters
    ----------
    probs : Tensor or ndarray, shape (N, C)
    y : Tensor or ndarray of int, shape (N,)
    n_bins : int, default 15

    Returns
    -------
    float
        In [0, 1]; 0 for a perfectly calibrated model.

    Examples
    --------
    >>> p = torch.tensor([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.6, 0.4]])
    >>> round(expected_calibration_error(p, torch.tensor([0, 1, 0, 0]), n_bins=10), 4)
    0.4
    """
    return reliability_curve(probs, y, n_bins).ece


@dataclass(frozen=True)
class Scores:
    """Accuracy, NLL (nats) and ECE of one set of predictions."""

    accuracy: float
    nll: float
    ece: float


def score(probs: Tensor | np.ndarray, y: Tensor | np.ndarray, n_bins: int = 15) -> Scores:
    """:func:`accuracy`, :func:`nll` and :func:`expected_calibration_error` at once.

    Parameters
    ----------
    probs : Tensor or ndarray, shape (N, C)
    y : Tensor or ndarray of int, shape (N,)
    n_bins : int, default 15

    Returns
    -------
    Scores
    """
    return Scores(accuracy(probs, y), nll(probs, y), expected_calibration_error(probs, y, n_bins))


# ---------------------------------------------------------------------------------------
# predictions of a network: the mean net and the Monte Carlo ensemble
# ---------------------------------------------------------------------------------------
def _check_batch(x: Tensor, batch_size: int) -> int:
    if not isinstance(x, Tensor) or x.dim() < 2 or x.shape[0] < 1:
        raise ValueError(
            f"x must be a batch of inputs, a tensor of shape (N, ...) with N >= 1, got "
            f"{tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__}."
        )
    return _check_positive_int(batch_size, "batch_size", "inputs per forward pass")


@torch.no_grad()
def predict(model: nn.Module, x: Tensor, batch_size: int = 2000) -> Tensor:
    """Class probabilities of one deterministic pass, ``softmax(model(x))`` in eval mode.

    For a sparse VD network this is the *mean network*: every weight at its mean ``theta``,
    and the weights with ``log_alpha >= threshold`` pruned. For a dense network it is the
    network itself. The model's training flags are restored afterwards.

    Parameters
    ----------
    model : nn.Module
        Maps a batch to logits of shape (B, C).
    x : Tensor, shape (N, ...)
        Inputs, on the model's device.
    batch_size : int, default 2000
        Inputs per forward pass (memory only; the result does not depend on it).

    Returns
    -------
    Tensor, shape (N, C)
    """
    batch_size = _check_batch(x, batch_size)
    modes = {m: m.training for m in model.modules()}
    model.eval()
    try:
        return torch.cat([F.softmax(model(x[i:i + batch_size]), dim=1)
                          for i in range(0, x.shape[0], batch_size)])
    finally:
        for m, mode in modes.items():
            m.training = mode


def _svdo_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    layers = [(n, m) for n, m in model.named_modules() if isinstance(m, SVDO_LAYERS)]
    if not layers:
        raise ValueError(
            f"{type(model).__name__} has no sparse variational dropout layer (LinearSVDO / "
            "Conv2dSVDO), so every ensemble member would be the same network; use predict(model, x)."
        )
    return layers


def _prefix(name: str) -> str:
    return f"{name}." if name else ""


@torch.no_grad()
def sample_weights(model: nn.Module, generator: torch.Generator | None = None,
                   prune: bool = False) -> dict[str, Tensor]:
    """Draw one weight sample :math:`W \\sim q(W)` of every sparse VD layer.

    ``w = theta + sigma * eps`` with ``eps ~ N(0, 1)`` per weight and
    ``sigma = exp(log_sigma2 / 2)``.

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
        ``{"<layer>.theta": w}`` for every sparse layer.

    Raises
    ------
    ValueError
        If the model has no sparse VD layer.
    """
    out = {}
    for name, layer in _svdo_layers(model):
        theta = layer.theta
        eps = torch.randn(theta.shape, generator=generator, device=theta.device, dtype=theta.dtype)
        w = theta + (0.5 * layer.log_sigma2).exp() * eps
        if prune:
            w = w * layer.mask()
        out[_prefix(name) + "theta"] = w
    return out


def _weights_params(model: nn.Module, generator: torch.Generator, prune: bool) -> dict[str, Tensor]:
    # The eval-mode forward of a sparse layer uses theta * (log_alpha < threshold); with
    # log_sigma2 = -inf every log_alpha is clipped to LOG_ALPHA_MIN, so the mask keeps every
    # entry and the layer computes op(x, w) exactly.
    params = sample_weights(model, generator, prune)
    for name, layer in _svdo_layers(model):
        if layer.threshold <= LOG_ALPHA_MIN:
            raise ValueError(
                f"layer {name!r} has threshold {layer.threshold} <= {LOG_ALPHA_MIN} (the lowest "
                "log alpha), so it prunes every weight; use a threshold above it (the paper uses 3)."
            )
        params[_prefix(name) + "log_sigma2"] = torch.full_like(layer.log_sigma2, -math.inf)
    return params


def _lrt_pruned_params(model: nn.Module) -> dict[str, Tensor]:
    # The train-mode forward samples op(x, theta) + sqrt(op(x^2, sigma^2)) eps; with the pruned
    # weights' theta = 0 and sigma^2 = exp(-inf) = 0 they drop out of both terms.
    params = {}
    for name, layer in _svdo_layers(model):
        keep = layer.mask()
        params[_prefix(name) + "theta"] = layer.theta * keep
        params[_prefix(name) + "log_sigma2"] = layer.log_sigma2.masked_fill(~keep, -math.inf)
    return params


@torch.no_grad()
def mc_samples(model: nn.Module, x: Tensor, n_samples: int, mode: str = "weights",
               prune: bool = False, seed: int = 0, batch_size: int = 2000) -> Tensor:
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
        ``"lrt"``: member k is one training-mode pass with the local reparameterization
        trick, which draws the pre-activations independently for every input and unit.
        For a fully connected network both give every single input the same distribution of
        outputs; they differ in the correlation *between* inputs.
    prune : bool, default False
        Sample only the weights the sparse network keeps (the pruned ones are exactly 0).
    seed : int, default 0
        Seed of the noise. A private generator / a forked RNG is used: the global torch RNG
        is left as it was.
    batch_size : int, default 2000
        Inputs per forward pass (memory only).

    Returns
    -------
    Tensor, shape (K, N, C)
        ``softmax`` of every member's logits; ``.mean(0)`` is the MC predictive.

    Raises
    ------
    ValueError
        ``n_samples < 1`` (or not an integer), an unknown ``mode``, an empty ``x``, or a
        model without sparse VD layers.
    """
    n_samples = _check_positive_int(n_samples, "n_samples", "the ensemble size K")
    if mode not in MC_MODES:
        raise ValueError(f"unknown mode {mode!r}; choose one of {MC_MODES}.")
    batch_size = _check_batch(x, batch_size)
    layers = _svdo_layers(model)
    device = layers[0][1].theta.device
    modes = {m: m.training for m in model.modules()}
    model.eval()
    out = []
    try:
        if mode == "weights":
            gen = torch.Generator(device=device).manual_seed(int(seed))
            for _ in range(n_samples):
                params = _weights_params(model, gen, prune)
                out.append(torch.cat([
                    F.softmax(functional_call(model, params, (x[i:i + batch_size],)), dim=1)
                    for i in range(0, x.shape[0], batch_size)]))
        else:
            for _, layer in layers:
                layer.train()
            params = _lrt_pruned_params(model) if prune else {}
            fork = [device] if device.type == "cuda" else []
            with torch.random.fork_rng(devices=fork):
                torch.manual_seed(int(seed))
                for _ in range(n_samples):
                    out.append(torch.cat([
                        F.softmax(functional_call(model, params, (x[i:i + batch_size],)), dim=1)
                        for i in range(0, x.shape[0], batch_size)]))
    finally:
        for m, was in modes.items():
            m.training = was
    return torch.stack(out)


def mc_predict(model: nn.Module, x: Tensor, n_samples: int, mode: str = "weights",
               prune: bool = False, seed: int = 0, batch_size: int = 2000) -> Tensor:
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

    Examples
    --------
    >>> s = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]], [[0.0, 1.0]]])
    >>> [p.tolist() for p in ensemble_predictions(s, [1, 2])]
    [[[1.0, 0.0]], [[0.5, 0.5]]]
    """
    samples = _as_tensor(samples, "samples")
    if samples.dim() != 3:
        raise ValueError(f"samples must have shape (K, N, C) (members, examples, classes), got "
                         f"{tuple(samples.shape)}; use mc_samples(...).")
    n_members = samples.shape[0]
    ks = list(ks)
    if not ks:
        raise ValueError("ks is empty; pass the ensemble sizes to score, e.g. [1, 5, 20].")
    for k in ks:
        _check_positive_int(k, "every k in ks", "an ensemble size")
        if k > n_members:
            raise ValueError(f"k = {k} is larger than the number of members K = {n_members}; "
                             f"draw more samples or use k <= {n_members}.")
    csum = samples.double().cumsum(0)
    return [csum[k - 1] / k for k in ks]


def ensemble_curve(samples: Tensor, y: Tensor | np.ndarray, ks: Sequence[int],
                   n_bins: int = 15) -> list[Scores]:
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
        labels (see :func:`check_probs`).
    """
    return [score(p, y, n_bins) for p in ensemble_predictions(samples, ks)]


# ---------------------------------------------------------------------------------------
# unfamiliar inputs
# ---------------------------------------------------------------------------------------
def rotate_images(x: Tensor, angle: float, background: float = 0.0) -> Tensor:
    """Rotate a batch of images counter-clockwise by ``angle`` degrees about their centre.

    Bilinear interpolation with ``torch.nn.functional.affine_grid`` / ``grid_sample``; the
    corners that come from outside the image are filled with ``background``.

    Parameters
    ----------
    x : Tensor, shape (N, C, H, W)
        Images (floating point).
    angle : float
        Degrees, counter-clockwise as the image is shown (row 0 at the top).
    background : float, default 0.0
        Value of the pixels that enter from outside. For standardised MNIST
        (:func:`course_lib.data.mnist_tensors`) the black background is
        ``-MNIST_MEAN / MNIST_STD``.

    Returns
    -------
    Tensor, same shape as ``x``

    Raises
    ------
    ValueError
        If ``x`` is not a floating-point (N, C, H, W) tensor, or ``angle`` / ``background`` is
        not a finite number.
    """
    if not isinstance(x, Tensor) or x.dim() != 4 or not x.is_floating_point():
        raise ValueError(
            "x must be a floating-point tensor of shape (N, C, H, W), got "
            f"{tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__}; add the channel "
            "dimension with x.unsqueeze(1) and convert with x.float()."
        )
    for name, v in (("angle", angle), ("background", background)):
        if isinstance(v, bool) or not isinstance(v, (int, float, np.floating, np.integer)) \
                or not math.isfinite(v):
            raise ValueError(f"{name} must be a finite number, got {v!r}.")
    a = math.radians(float(angle))
    c, s = math.cos(a), math.sin(a)
    # affine_grid maps output coordinates (x right, y down, in [-1, 1]) to input coordinates;
    # sampling the input at R(-angle) of each output point turns the picture by +angle on
    # screen, where y points down -- hence the signs.
    mat = torch.tensor([[c, -s, 0.0], [s, c, 0.0]], dtype=x.dtype, device=x.device)
    grid = F.affine_grid(mat.expand(x.shape[0], 2, 3), list(x.shape), align_corners=False)
    shifted = x - background
    return F.grid_sample(shifted, grid, mode="bilinear", padding_mode="zeros",
                         align_corners=False) + background


def noise_images(n: int, seed: int = 0, normalize: bool = True,
                 device: str | torch.device = "cpu") -> Tensor:
    """``n`` images of pure noise: every pixel uniform on [0, 1], independently.

    Parameters
    ----------
    n : int
        Number of images.
    seed : int, default 0
        Seed of a private generator (the global RNG is not touched).
    normalize : bool, default True
        Standardise like :func:`course_lib.data.mnist_tensors` (``(x - MNIST_MEAN) / MNIST_STD``).
    device : str or torch.device, default "cpu"

    Returns
    -------
    Tensor of float32, shape (n, 1, 28, 28)
    """
    n = _check_positive_int(n, "n", "the number of images")
    gen = torch.Generator().manual_seed(int(seed))
    x = torch.rand(n, 1, 28, 28, generator=gen)
    if normalize:
        x = (x - MNIST_MEAN) / MNIST_STD
    return x.to(device)
