"""The checks of assignment A6 (the predictive ensemble).

Checks: :func:`check_entropy`, :func:`check_mutual_information`, :func:`check_ece`.

Each runs the student's function on fixed inputs (other ones with ``hidden=SEED``), compares it
with the library's reference and names the typical mistake it matches; see :mod:`course_lib.checks`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from course_lib.checks.core import (
    _UPSTREAM,
    _call,
    _require_tensor,
    _diagnose,
    _graded,
    _ok,
)


def _ensemble_problem(hidden: int | None):
    g = torch.Generator().manual_seed(13 if hidden is None else hidden)
    K, N, C = (6, 5, 4) if hidden is None else (5, 7, 3)
    samples = F.softmax(2.5 * torch.randn(K, N, C, generator=g, dtype=torch.float64), dim=-1)
    samples[:, 0] = F.one_hot(torch.tensor(1), C).double()  # every member certain: 0 log 0
    samples[:, 1] = 1.0 / C  # every member uniform
    return samples


def _entropy(probs: torch.Tensor) -> torch.Tensor:
    return torch.special.entr(probs).sum(-1)


def _ref_mutual_information(samples: torch.Tensor) -> torch.Tensor:
    return _entropy(samples.mean(0)) - _entropy(samples).mean(0)


@_graded
def check_entropy(fn: Callable[[torch.Tensor], torch.Tensor], hidden: int | None = None) -> None:
    """Check ``fn(probs) -> H[p] = -sum_c p_c log p_c`` per row, in nats, with 0 log 0 = 0.

    Mistakes caught: no minus sign; log base 2 (bits); the mean over classes instead of the
    sum; NaN from 0 log 0; the sum over the examples instead of the classes.  Reference:
    :func:`course_lib.scores.predictive_entropy`.  ``hidden``: seed of other inputs.

    Raises
    ------
    CheckFailed
        With the hint of the diagnosed mistake.
    """
    check = "check_entropy"
    probs = _ensemble_problem(hidden)[0]
    N, C = probs.shape
    expected = _entropy(probs)
    mistakes = [
        (
            "no_minus",
            -expected,
            "your entropy is negative: H = -sum_c p_c log p_c (log p <= 0, so the minus sign makes H >= 0).",
        ),
        (
            "bits",
            expected / math.log(2),
            "you used log base 2 (bits); the course measures entropy in nats: torch.log (natural log).",
        ),
        (
            "mean_over_classes",
            expected / C,
            "you averaged over the classes; the entropy sums -p_c log p_c over them.",
        ),
        (
            "nan_zero_prob",
            -(probs * probs.log()).sum(-1),
            "NaN where a probability is exactly 0: 0 * log 0 is nan in floating point, but its limit is "
            "0. Use torch.special.entr(p), torch.xlogy(p, p), or clamp p before the log.",
        ),
    ]
    shape_hints = (
        {
            (C,): (
                "wrong_axis",
                f"your result has {C} entries, one per class: you summed over "
                "the examples (dim 0); sum over the classes (dim=-1), one entropy per row.",
            ),
            (): ("wrong_axis", "you returned one number: return one entropy per row (sum over dim=-1 only)."),
        }
        if N != C
        else {}
    )
    got = _call(fn, (probs.clone(),), check)
    _require_tensor(check, got, "the entropy")
    _diagnose(
        check,
        got,
        expected,
        mistakes,
        "the entropy",
        shape_hints=shape_hints,
        nan_hint="your entropy has NaN: where p_c = 0, p_c log p_c is 0 * (-inf) = nan in "
        "floating point but its limit is 0. Use torch.special.entr(p) or torch.xlogy(p, p).",
    )
    _ok("H[p] in nats, 0 log 0 = 0; it matches course_lib.scores.predictive_entropy.", hidden)


_UPSTREAM["entropy"] = ("check_entropy", _entropy)


@_graded
def check_mutual_information(fn: Callable[[torch.Tensor], torch.Tensor], hidden: int | None = None) -> None:
    """Check ``fn(samples) -> I = H[mean_k p_k] - mean_k H[p_k]`` per input.

    ``samples`` has shape (K, N, C): K ensemble members' probabilities for N inputs.  The
    student's ``entropy`` is replaced by the library's while the check runs (Task 1 is graded
    on its own).  Mistakes caught: the sign flipped; the total uncertainty H[mean] only; the
    expected (aleatoric) entropy only; the entropy of the first member instead of the mean
    over members; the mean over inputs instead of over members.  ``hidden``: seed of other
    inputs.

    Raises
    ------
    CheckFailed
        With the hint of the diagnosed mistake.
    """
    check = "check_mutual_information"
    samples = _ensemble_problem(hidden)
    K, N, C = samples.shape
    total, aleatoric = _entropy(samples.mean(0)), _entropy(samples).mean(0)
    expected = total - aleatoric
    mistakes = [
        (
            "sign",
            aleatoric - total,
            "your mutual information is negative: I = H[mean of the members] - mean of H[member] >= 0 "
            "(the entropy is concave: Jensen). Swap the two terms.",
        ),
        (
            "total_only",
            total,
            "you returned the total uncertainty H[mean_k p_k]; subtract the expected entropy "
            "mean_k H[p_k] (the aleatoric part) to keep the disagreement between members.",
        ),
        (
            "aleatoric_only",
            aleatoric,
            "you returned the expected entropy mean_k H[p_k] (the aleatoric part); the mutual "
            "information is H[mean_k p_k] minus it.",
        ),
        (
            "one_member",
            total - _entropy(samples[0]),
            "you subtracted the entropy of one member; subtract the mean of all members' entropies.",
        ),
    ]
    shape_hints = (
        {
            (K,): (
                "wrong_axis",
                f"your result has {K} entries, one per member: average over the "
                "members (dim 0), keep one value per input.",
            )
        }
        if K != N
        else {}
    )
    got = _call(fn, (samples.clone(),), check, upstream=("entropy",))
    _require_tensor(check, got, "the mutual information")
    _diagnose(check, got, expected, mistakes, "the mutual information", shape_hints=shape_hints)
    _ok("I = H[mean] - mean H >= 0: 0 where the members agree, large where they disagree.", hidden)


def _ece_problem(hidden: int | None):
    g = torch.Generator().manual_seed(14 if hidden is None else hidden)
    N, C = (60, 3) if hidden is None else (80, 4)
    probs = F.softmax(1.5 * torch.randn(N, C, generator=g, dtype=torch.float64), dim=-1)
    y = torch.multinomial(probs, 1, generator=g)[:, 0]  # calibrated on average: gaps of both signs
    return probs, y, (10 if hidden is None else 8)


def _bins(conf: torch.Tensor, n_bins: int) -> torch.Tensor:
    return (torch.ceil(conf * n_bins).long() - 1).clamp(0, n_bins - 1)


def _ece_variant(conf: torch.Tensor, correct: torch.Tensor, n_bins: int, how: str) -> float:
    idx = _bins(conf, n_bins)
    gaps, counts = [], []
    for m in range(n_bins):
        sel = idx == m
        if sel.any():
            gaps.append(float(correct[sel].mean() - conf[sel].mean()))
            counts.append(int(sel.sum()))
    gaps_a, counts_a = np.array(gaps), np.array(counts)
    if how == "unweighted":
        return float(np.abs(gaps_a).mean())
    if how == "signed":
        return float((counts_a * gaps_a).sum() / counts_a.sum())
    if how == "max":
        return float(np.abs(gaps_a).max())
    return float((counts_a * np.abs(gaps_a)).sum() / counts_a.sum())


@_graded
def check_ece(fn: Callable[[torch.Tensor, torch.Tensor, int], float], hidden: int | None = None) -> None:
    """Check ``fn(probs, y, n_bins) -> ECE`` with equal-width confidence bins ((m-1)/M, m/M].

    ECE = sum_m |B_m|/N |acc(B_m) - conf(B_m)|, the confidence of an example being its largest
    probability.  Reference: :func:`course_lib.scores.expected_calibration_error`.
    Mistakes caught: the unweighted mean of the bins' gaps; the signed gap (no absolute value);
    the largest gap (the maximum calibration error); the probability of the true class as the
    confidence; one bin for all examples; ``n_bins`` ignored (15 bins).  ``hidden``: seed of
    other inputs.

    Raises
    ------
    CheckFailed
        With the hint of the diagnosed mistake.
    """
    from course_lib.scores import expected_calibration_error

    check = "check_ece"
    probs, y, n_bins = _ece_problem(hidden)
    conf, pred = probs.max(1)
    correct = (pred == y).double()
    expected = expected_calibration_error(probs, y, n_bins)
    true_conf = probs[torch.arange(len(y)), y]
    mistakes = [
        (
            "unweighted",
            _ece_variant(conf, correct, n_bins, "unweighted"),
            "you averaged the bins' gaps with equal weights; weight each bin by its share of the "
            "examples, |B_m| / N (a bin with two examples must not count as much as one with forty).",
        ),
        (
            "signed",
            _ece_variant(conf, correct, n_bins, "signed"),
            "the gaps are signed, so over- and under-confident bins cancel: take |acc(B_m) - conf(B_m)|.",
        ),
        (
            "max_gap",
            _ece_variant(conf, correct, n_bins, "max"),
            "you returned the largest gap over the bins (the maximum calibration error); the ECE is "
            "their weighted mean.",
        ),
        (
            "true_class_prob",
            _ece_variant(true_conf, correct, n_bins, "ece"),
            "the confidence is the probability of the *predicted* class, max_c p_c, not of the true "
            "class: the model does not know the label.",
        ),
        (
            "one_bin",
            abs(float(correct.mean() - conf.mean())),
            "you compared the overall accuracy with the overall mean confidence (one bin); cut the "
            f"confidences into n_bins = {n_bins} equal-width bins first.",
        ),
        (
            "n_bins_ignored",
            expected_calibration_error(probs, y, 15),
            f"you used 15 bins; use the n_bins argument ({n_bins} here).",
        ),
    ]
    got = _call(fn, (probs.clone(), y.clone(), n_bins), check)
    _diagnose(
        check,
        got,
        expected,
        mistakes,
        "the ECE",
        nan_hint="your ECE is NaN: an empty bin's mean accuracy and mean confidence are 0 / 0. "
        "Skip the bins that hold no input (e.g. `if in_bin.any():`); they add nothing to the ECE.",
    )
    _ok(
        "ECE = sum over bins of |B_m|/N |acc - conf|; it matches "
        "course_lib.scores.expected_calibration_error.",
        hidden,
    )
