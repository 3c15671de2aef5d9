"""The checks of assignment A5 (dropout as noise, and its two predictions).

Checks: :func:`check_inverted_dropout`, :func:`check_gaussian_dropout`, :func:`check_mc_average`.

Each runs the student's function on fixed inputs (other ones with ``hidden=SEED``), compares it
with the library's reference and names the typical mistake it matches; see :mod:`course_lib.checks`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from course_lib.checks.core import (
    _call,
    _require_tensor,
    _diagnose,
    _graded,
    _ok,
)


def _dropout_problem(hidden: int | None):
    g = torch.Generator().manual_seed(11 if hidden is None else hidden)
    shape = (6, 8) if hidden is None else (5, 7)
    x = torch.randn(*shape, generator=g, dtype=torch.float64)
    u = torch.rand(*shape, generator=g, dtype=torch.float64)
    eps = torch.randn(*shape, generator=g, dtype=torch.float64)
    ps = (0.2, 0.7) if hidden is None else (0.3, 0.8)
    return x, u, eps, ps


@_graded
def check_inverted_dropout(
    fn: Callable[[torch.Tensor, float, torch.Tensor], torch.Tensor], hidden: int | None = None
) -> None:
    """Check ``fn(x, p, u) -> x * (u >= p) / (1 - p)``: Bernoulli (inverted) dropout of units.

    ``u`` holds uniform samples on [0, 1), one per unit, so a unit is dropped when ``u < p``
    (drop probability ``p``, PyTorch's convention) and the kept ones are scaled by 1/(1 - p)
    so that E[output] = x.  Mistakes caught: no rescaling; keeping the units with ``u < p``;
    the retain convention (p as the keep probability); dividing by p; multiplying by 1 - p
    (the original paper's test-time scaling, applied at training time).  ``hidden``: seed of
    other inputs.

    Raises
    ------
    CheckFailed
        With the hint of the diagnosed mistake.
    """
    check = "check_inverted_dropout"
    x, u, _, ps = _dropout_problem(hidden)
    for p in ps:
        keep = (u >= p).double()
        expected = x * keep / (1 - p)
        mistakes = [
            (
                "no_rescale",
                x * keep,
                f"the kept units are not rescaled: divide them by 1 - p = {1 - p:.1f}, so that the "
                "expected output equals x (E[mask] = 1 - p) and the network needs no change at test time.",
            ),
            (
                "keep_is_drop",
                x * (1 - keep) / (1 - p),
                f"you keep the units with u < p, i.e. drop with probability 1 - p = {1 - p:.1f}: p is the "
                "drop probability, so keep a unit when u >= p.",
            ),
            (
                "retain_convention",
                x * (1 - keep) / p,
                "you treated p as the probability of keeping a unit (Srivastava et al.'s retain "
                "probability); here p is the drop probability: keep when u >= p and divide by 1 - p.",
            ),
            (
                "divide_by_p",
                x * keep / p,
                "the kept units are divided by p; divide by the keep probability 1 - p.",
            ),
            (
                "times_keep_prob",
                x * keep * (1 - p),
                "you multiplied by 1 - p: that is the original paper's test-time weight scaling. Inverted "
                "dropout divides by 1 - p during training instead, so that E[output] = x.",
            ),
        ]
        got = _call(fn, (x.clone(), p, u.clone()), check)
        _require_tensor(check, got, f"the output for p = {p}", grad_of=(fn, (x.clone(), p, u.clone())))
        _diagnose(check, got, expected, mistakes, f"the output for p = {p}")
    got0 = _call(fn, (x.clone(), 0.0, u.clone()), check)
    _diagnose(check, got0, x, [], "the output for p = 0 (no dropout: x itself)")
    _ok("units dropped with probability p, the kept ones scaled by 1/(1 - p).", hidden)


@_graded
def check_gaussian_dropout(
    fn: Callable[[torch.Tensor, float, torch.Tensor], torch.Tensor], hidden: int | None = None
) -> None:
    """Check ``fn(x, p, eps) -> x * (1 + sqrt(alpha) eps)`` with alpha = p / (1 - p).

    Gaussian dropout with the mean and variance of Bernoulli dropout of rate ``p``.  Mistakes
    caught: alpha used as the standard deviation; alpha = (1 - p)/p; alpha = p (1 - p) (the
    variance of the unscaled mask); alpha = p; zero-mean noise (the 1 forgotten); additive
    noise.  ``hidden``: seed of other inputs.

    Raises
    ------
    CheckFailed
        With the hint of the diagnosed mistake.
    """
    check = "check_gaussian_dropout"
    x, _, eps, ps = _dropout_problem(hidden)
    for p in ps:
        a = p / (1 - p)
        expected = x * (1 + math.sqrt(a) * eps)
        mistakes = [
            (
                "alpha_as_std",
                x * (1 + a * eps),
                f"the noise is scaled by alpha = {a:.3g}; alpha is the variance of xi ~ N(1, alpha), so "
                "scale eps by sqrt(alpha).",
            ),
            (
                "inverse_alpha",
                x * (1 + math.sqrt(1 / a) * eps),
                f"you used alpha = (1 - p)/p = {1 / a:.3g}; the variance of the Bernoulli noise m/(1 - p) "
                f"is p/(1 - p) = {a:.3g}.",
            ),
            (
                "mask_variance",
                x * (1 + math.sqrt(p * (1 - p)) * eps),
                f"p(1 - p) = {p * (1 - p):.3g} is the variance of the mask m before rescaling; the rescaled "
                f"noise m/(1 - p) has variance p(1 - p)/(1 - p)^2 = p/(1 - p) = {a:.3g}.",
            ),
            (
                "alpha_is_p",
                x * (1 + math.sqrt(p) * eps),
                f"you used alpha = p; the matching variance is alpha = p/(1 - p) = {a:.3g}.",
            ),
            (
                "zero_mean",
                x * math.sqrt(a) * eps,
                "the noise has mean 0: multiplicative dropout noise has mean 1, xi = 1 + sqrt(alpha) eps.",
            ),
            (
                "additive",
                x + math.sqrt(a) * eps,
                "you added the noise; dropout multiplies: x * (1 + sqrt(alpha) eps), so the noise "
                "scales with the unit.",
            ),
        ]
        got = _call(fn, (x.clone(), p, eps.clone()), check)
        _require_tensor(check, got, f"the output for p = {p}")
        _diagnose(check, got, expected, mistakes, f"the output for p = {p}")
    _ok("Gaussian noise N(1, p/(1 - p)): the same mean and variance as Bernoulli dropout.", hidden)


@_graded
def check_mc_average(fn: Callable[[torch.Tensor], torch.Tensor], hidden: int | None = None) -> None:
    """Check ``fn(logits) -> mean_t softmax(logits[t])``: the MC-dropout predictive distribution.

    ``logits`` has shape (T, N, C): T noisy passes over N inputs.  Mistakes caught: the
    softmax of the mean logits (weight scaling's cousin, not the ensemble); the mean of the
    log-probabilities; one pass only; a majority vote; the softmax over the T passes; the
    sum instead of the mean.  ``hidden``: seed of other inputs.

    Raises
    ------
    CheckFailed
        With the hint of the diagnosed mistake.
    """
    check = "check_mc_average"
    g = torch.Generator().manual_seed(12 if hidden is None else hidden)
    T, N, C = (5, 4, 3) if hidden is None else (7, 5, 4)
    logits = 2.0 * torch.randn(T, N, C, generator=g, dtype=torch.float64)
    probs = F.softmax(logits, dim=-1)
    expected = probs.mean(0)
    mistakes = [
        (
            "mean_logits",
            F.softmax(logits.mean(0), dim=-1),
            "you averaged the logits and then applied the softmax; the predictive distribution is the "
            "average of the T passes' probabilities: softmax first, then the mean over passes (dim 0).",
        ),
        (
            "mean_log_probs",
            F.log_softmax(logits, dim=-1).mean(0),
            "you averaged log-probabilities; average the probabilities softmax(logits) over the passes.",
        ),
        (
            "one_pass",
            probs[0],
            "you used one pass only; MC dropout averages the probabilities of all T passes (dim 0).",
        ),
        (
            "vote",
            F.one_hot(logits.argmax(-1), C).double().mean(0),
            "you averaged one-hot votes of the passes; average their probabilities instead (a vote "
            "throws away how sure each pass is).",
        ),
        (
            "softmax_over_passes",
            F.softmax(logits, dim=0).mean(0),
            "the softmax runs over the passes (dim 0); it turns each pass's logits into class "
            "probabilities, so it runs over the classes (dim=-1).",
        ),
        (
            "sum_not_mean",
            probs.sum(0),
            f"you summed the {T} passes' probabilities; take their mean so each row sums to 1.",
        ),
    ]
    shape_hints = {
        (T, C): (
            "mean_over_inputs",
            "your result has one row per pass: you averaged over "
            "the inputs (dim 1); average over the passes, dim 0.",
        ),
        (C,): (
            "mean_over_inputs",
            "your result has one entry per class: average over the "
            "passes only (dim 0), keep one row per input.",
        ),
    }
    got = _call(fn, (logits.clone(),), check)
    _require_tensor(check, got, "the predictive probabilities")
    _diagnose(check, got, expected, mistakes, "the predictive probabilities", shape_hints=shape_hints)
    _ok("the MC-dropout prediction averages the probabilities of the passes.", hidden)
