"""Scores of predicted class probabilities: accuracy, NLL, entropy, confidence, calibration.

Every function takes predicted class probabilities ``probs`` (shape ``(N, C)``, rows summing to
one; :func:`validate_probs` checks them) and, where it scores them, labels ``y`` (shape ``(N,)``):

* :func:`accuracy`, :func:`error_rate` and :func:`nll` (the mean negative log-likelihood, in nats),
* :func:`predictive_entropy` and :func:`confidence` (per example),
* :func:`reliability_curve` and :func:`expected_calibration_error` (Guo et al., 2017):
  the confidences are cut into ``n_bins`` equal-width bins ``((m-1)/M, m/M]`` and

  .. math::

      \\mathrm{ECE} = \\sum_{m=1}^{M} \\frac{|B_m|}{N}\\,
          \\bigl|\\mathrm{acc}(B_m) - \\mathrm{conf}(B_m)\\bigr| ,

* :func:`score`: accuracy, NLL and ECE at once.

The probabilities come from :func:`course_lib.prediction.predict` (one network),
:func:`course_lib.ensemble.mc_predict` (an ensemble) or :func:`course_lib.dropout.mc_samples`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from course_lib import validation as V

#: How far a row of probabilities may be from summing to one (float32 softmax is ~1e-6 off).
PROB_ATOL: float = 1e-4
#: Probabilities are clamped at this value before a log (a zero probability gives NLL 34.5,
#: not infinity).
LOG_EPS: float = 1e-15


# ---------------------------------------------------------------------------------------
# input checks
# ---------------------------------------------------------------------------------------
def _as_tensor(value: object, name: str) -> Tensor:
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value)
    if not isinstance(value, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor or a NumPy array, got {type(value).__name__}.")
    return value


def validate_probs(probs: Tensor | np.ndarray, name: str = "probs") -> Tensor:
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
        raise ValueError(
            f"{name} has negative entries (min {float(p.min()):.3g}); probabilities "
            "are >= 0 -- apply torch.softmax(logits, dim=1) to logits first."
        )
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
    p = validate_probs(probs)
    return p, _check_labels(y, p.shape[0], p.shape[1]).to(p.device)


# ---------------------------------------------------------------------------------------
# scores
# ---------------------------------------------------------------------------------------
def accuracy(probs: Tensor | np.ndarray, y: Tensor | np.ndarray) -> float:
    """Fraction of examples whose most probable class is the label.

    Parameters
    ----------
    probs : Tensor or ndarray, shape (N, C)
        Class probabilities (see :func:`validate_probs`).
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


def error_rate(probs: Tensor | np.ndarray, y: Tensor | np.ndarray) -> float:
    """Fraction of examples whose most probable class is *not* the label (the test error).

    Parameters
    ----------
    probs : Tensor or ndarray, shape (N, C)
    y : Tensor or ndarray of int, shape (N,)

    Returns
    -------
    float
        ``wrong / N`` in [0, 1], computed from the count (so 235 errors in 10,000 give exactly
        ``0.0235``, which ``1 - accuracy`` need not).

    Examples
    --------
    >>> error_rate(torch.tensor([[0.9, 0.1], [0.3, 0.7]]), torch.tensor([0, 0]))
    0.5
    """
    p, y = _check_scored(probs, y)
    return int((p.argmax(1) != y).sum()) / p.shape[0]


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
    p = validate_probs(probs).double()
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
    return validate_probs(probs).max(1).values


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


def reliability_curve(
    probs: Tensor | np.ndarray, y: Tensor | np.ndarray, n_bins: int = 15
) -> ReliabilityCurve:
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
        Bad ``probs`` / ``y`` (see :func:`validate_probs`) or an ``n_bins`` below 1.
    TypeError
        ``n_bins`` is not an integer.
    """
    p, y = _check_scored(probs, y)
    n_bins = V.positive_int(n_bins, "n_bins", meaning="the number of confidence bins")
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
    return ReliabilityCurve(
        edges=np.linspace(0.0, 1.0, n_bins + 1),
        confidence=mean_conf,
        accuracy=mean_acc,
        counts=counts_np.astype(np.int64),
    )


def expected_calibration_error(probs: Tensor | np.ndarray, y: Tensor | np.ndarray, n_bins: int = 15) -> float:
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
