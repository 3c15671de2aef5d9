"""The checks of assignment A4 (LinearSVDO: sparse variational dropout on LeNet).

Checks: :func:`check_log_alpha`, :func:`check_lrt_forward`, :func:`check_eval_forward`,
:func:`check_kl`, :func:`check_negative_elbo`, :func:`check_trained`.

Each runs the student's function on fixed inputs (other ones with ``hidden=SEED``), compares it
with the library's reference and names the typical mistake it matches; see :mod:`course_lib.checks`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from course_lib import kl as kl_lib
from course_lib.checks.core import (
    _UPSTREAM,
    CheckFailed,
    _call,
    _require_tensor,
    _diagnose,
    _graded,
    _ok,
    _to_array,
    _where_in_student_code,
)
from course_lib.layers import LOG_ALPHA_MAX, LOG_ALPHA_MIN, THETA2_EPS, VAR_EPS


def _svdo_problem(seed: int = 6):
    g = torch.Generator().manual_seed(seed)
    theta = torch.randn(5, 8, generator=g, dtype=torch.float64) * 0.5
    theta[0, 0] = 0.0  # a weight driven to zero: log alpha is clipped at 8
    log_sigma2 = torch.full_like(theta, -4.0) + torch.randn(5, 8, generator=g, dtype=torch.float64)
    bias = torch.linspace(-1.0, 1.0, 5, dtype=torch.float64)  # negative entries on purpose
    x = torch.randn(6, 8, generator=g, dtype=torch.float64)
    eps = torch.randn(6, 5, generator=g, dtype=torch.float64)
    return x, theta, log_sigma2, bias, eps


def _ref_log_alpha(theta: torch.Tensor, log_sigma2: torch.Tensor) -> torch.Tensor:
    return torch.clamp(log_sigma2 - torch.log(theta * theta + THETA2_EPS), LOG_ALPHA_MIN, LOG_ALPHA_MAX)


def _ref_lrt_forward(x, theta, log_sigma2, bias, eps):
    return F.linear(x, theta, bias) + torch.sqrt(F.linear(x * x, log_sigma2.exp()) + VAR_EPS) * eps


def _ref_eval_forward(x, theta, log_sigma2, bias, threshold):
    return F.linear(x, theta * (_ref_log_alpha(theta, log_sigma2) < threshold), bias)


def _ref_kl_term(log_alpha):
    return -kl_lib.neg_kl_molchanov(log_alpha).sum()


def _ref_negative_elbo(logits, y, kl_value, n_train, kl_weight):
    return n_train * F.cross_entropy(logits, y) + kl_weight * kl_value


_UPSTREAM.update(
    {
        "log_alpha": ("check_log_alpha", _ref_log_alpha),
        "lrt_forward": ("check_lrt_forward", _ref_lrt_forward),
        "eval_forward": ("check_eval_forward", _ref_eval_forward),
        "kl_term": ("check_kl", _ref_kl_term),
        "negative_elbo": ("check_negative_elbo", _ref_negative_elbo),
    }
)


@_graded
def check_log_alpha(
    fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], hidden: int | None = None
) -> None:
    """Check ``fn(theta, log_sigma2) -> log alpha = clip(log sigma^2 - log(theta^2 + 1e-8), -8, 8)``.

    Mistakes caught: ``log(2|theta|)`` instead of ``2 log|theta|`` (a bug that shipped in a
    public course notebook); ``log|theta|`` (the 2 missing); no clipping; ``2 log|theta|``
    without the 1e-8 (right values, but a NaN gradient at theta = 0); a result detached from
    the autograd graph.  ``hidden``: seed of other inputs.

    Raises
    ------
    CheckFailed
        With the hint of the diagnosed mistake.
    """
    check = "check_log_alpha"
    _, theta, log_sigma2, _, _ = _svdo_problem(6 if hidden is None else hidden)
    expected = _ref_log_alpha(theta, log_sigma2)
    clip = lambda v: torch.clamp(v, LOG_ALPHA_MIN, LOG_ALPHA_MAX)  # noqa: E731
    mistakes = []
    for wrap, note in ((clip, ""), (lambda v: v, " (and clip the result to [-8, 8])")):
        mistakes += [
            (
                "log_2_abs_theta",
                wrap(log_sigma2 - torch.log(2 * theta.abs())),
                "you used log(2|theta|); alpha = sigma^2 / theta^2 needs log(theta^2) = 2 log|theta|, "
                f"written stably as log(theta^2 + 1e-8){note}.",
            ),
            (
                "log_abs_theta",
                wrap(log_sigma2 - torch.log(theta.abs() + THETA2_EPS)),
                f"alpha divides by theta^2: subtract log(theta^2 + 1e-8), not log|theta|{note}.",
            ),
        ]
    no_eps_hint = (
        "you left out the 1e-8: log(theta^2) (or 2 log|theta|) differs where theta is tiny, "
        "and at theta = 0 its gradient is NaN (a division by zero in the backward pass, even "
        "where the clip cuts the value off); one NaN gradient ruins the whole network. "
        "Write log(theta**2 + 1e-8)."
    )
    mistakes.append(("no_eps", clip(log_sigma2 - torch.log(theta * theta)), no_eps_hint))
    mistakes.append(
        (
            "no_clip",
            log_sigma2 - torch.log(theta * theta + THETA2_EPS),
            "log alpha is right but not clipped: clamp it to [-8, 8] (LOG_ALPHA_MIN, "
            "LOG_ALPHA_MAX) so a weight at theta = 0 does not send it to +infinity.",
        )
    )
    theta_g = theta.clone().requires_grad_(True)
    log_sigma2_g = log_sigma2.clone().requires_grad_(True)
    got = _call(fn, (theta_g, log_sigma2_g), check)
    _diagnose(check, got, expected, mistakes, "log alpha")
    if not (isinstance(got, torch.Tensor) and got.requires_grad):
        raise CheckFailed(
            check,
            "the values are right, but no gradient flows through your log alpha "
            "(it is not a tensor of the autograd graph): use torch operations only, no "
            ".detach(), .item(), .numpy() or torch.no_grad().",
            "detached",
        )
    grads = torch.autograd.grad(got.sum(), (theta_g, log_sigma2_g), allow_unused=True)
    if any(g is None or not torch.all(torch.isfinite(g)) for g in grads):
        raise CheckFailed(
            check, "the values are right, but the gradient is NaN at theta = 0: " + no_eps_hint, "no_eps"
        )
    _ok("log alpha = clip(log sigma^2 - log(theta^2 + 1e-8), -8, 8).", hidden)


@_graded
def check_lrt_forward(fn: Callable[..., torch.Tensor], hidden: int | None = None) -> None:
    """Check ``fn(x, theta, log_sigma2, bias, eps)``: the local reparameterization forward.

    ``x @ theta.T + bias + sqrt(x^2 @ sigma2.T + 1e-8) * eps``.  Mistakes caught: the bias
    inside the variance (negative variances, NaN); ``log_sigma2`` used as the variance (NaN);
    the variance term forgotten (no noise); the variance used as a standard deviation;
    ``x`` instead of ``x^2``; ``sigma`` instead of ``sigma^2``.  ``hidden``: seed of other inputs.

    Raises
    ------
    CheckFailed
        With the hint of the diagnosed mistake.
    """
    check = "check_lrt_forward"
    x, theta, log_sigma2, bias, eps = _svdo_problem(6 if hidden is None else hidden)
    sigma2 = log_sigma2.exp()
    mean = F.linear(x, theta, bias)
    expected = mean + torch.sqrt(F.linear(x * x, sigma2) + VAR_EPS) * eps
    mistakes = [
        (
            "bias_in_variance",
            mean + torch.sqrt(F.linear(x * x, sigma2, bias) + VAR_EPS) * eps,
            "the bias is inside the variance: the bias is deterministic, so it belongs to the mean "
            "only. F.linear(x * x, sigma2, bias) adds a (possibly negative) bias to a variance, and "
            "its square root is NaN. Use F.linear(x * x, sigma2) with no bias.",
        ),
        (
            "log_sigma2_as_variance",
            mean + torch.sqrt(F.linear(x * x, log_sigma2) + VAR_EPS) * eps,
            "you used log_sigma2 itself as the variance: it is the log of sigma^2 and mostly negative, "
            "so the square root is NaN. The variance is x^2 @ exp(log_sigma2).T: "
            "F.linear(x * x, log_sigma2.exp()).",
        ),
        (
            "no_noise",
            mean,
            "your pre-activations have no noise: the variance term sqrt(x^2 sigma^2 + 1e-8) * eps is "
            "missing, so the layer is the plain mean network and the KL has nothing to balance.",
        ),
        (
            "var_not_std",
            mean + (F.linear(x * x, sigma2) + VAR_EPS) * eps,
            "the noise is scaled by the variance; scale eps by the standard deviation "
            "sqrt(x^2 sigma^2 + 1e-8).",
        ),
        (
            "x_not_squared",
            mean + torch.sqrt(F.linear(x, sigma2) + VAR_EPS) * eps,
            "the variance of sum_j x_j w_j is sum_j x_j^2 sigma_j^2: use x * x, not x.",
        ),
        (
            "sigma_not_sigma2",
            mean + torch.sqrt(F.linear(x * x, sigma2.sqrt()) + VAR_EPS) * eps,
            "you used sigma = exp(log_sigma2 / 2) in the variance; it needs sigma^2 = exp(log_sigma2).",
        ),
    ]
    args = (x.clone(), theta.clone(), log_sigma2.clone(), bias.clone(), eps.clone())
    got = _call(fn, args, check)
    _require_tensor(check, got, "the output", grad_of=(fn, args))
    _diagnose(
        check,
        got,
        expected,
        mistakes,
        "the pre-activations",
        nan_hint="the output has NaN: a square root of a negative number. A variance is >= 0: "
        "is something that can be negative (the bias, log_sigma2 itself) inside it? The "
        "variance is F.linear(x * x, log_sigma2.exp()).",
    )
    _ok("pre-activations = mean + sqrt(variance) * eps, bias in the mean only.", hidden)


@_graded
def check_eval_forward(fn: Callable[..., torch.Tensor], hidden: int | None = None) -> None:
    """Check ``fn(x, theta, log_sigma2, bias, threshold)``: the deterministic, pruned test-time net.

    ``x @ (theta * (log_alpha < threshold)).T + bias``.  The student's ``log_alpha`` is
    replaced by the library's while the check runs (Task 1 is graded on its own).  Mistakes
    caught: noise at test time (two calls differ); no pruning; keeping the weights with large
    alpha instead; the mask on log sigma^2 instead of log alpha; the bias missing.
    ``hidden``: seed of other inputs.

    Raises
    ------
    CheckFailed
        With the hint of the diagnosed mistake.
    """
    check = "check_eval_forward"
    x, theta, log_sigma2, bias, _ = _svdo_problem(6 if hidden is None else hidden)
    threshold = -2.0  # prunes a good share of the test weights
    mask = _ref_log_alpha(theta, log_sigma2) < threshold
    expected = F.linear(x, theta * mask, bias)
    args = (x.clone(), theta.clone(), log_sigma2.clone(), bias.clone(), threshold)
    first = _call(fn, args, check, upstream=("log_alpha",))
    _require_tensor(check, first, "the output")
    first = _to_array(first, check, "the output")
    second = _to_array(_call(fn, args, check, upstream=("log_alpha",)), check, "the output")
    if first.shape == second.shape and not np.array_equal(first, second):
        raise CheckFailed(
            check,
            "two calls with the same input give different outputs: you evaluate "
            "with noise. At test time use the mean weights theta, with the pruned ones "
            "(log alpha >= threshold) set to zero, and no sampling.",
            "noisy",
        )
    mistakes = [
        (
            "unpruned",
            F.linear(x, theta, bias),
            "you use all of theta: zero the weights whose log alpha >= threshold (their posterior is "
            "pure noise), i.e. theta * (log_alpha < threshold).",
        ),
        (
            "mask_reversed",
            F.linear(x, theta * ~mask, bias),
            "the mask is reversed: keep the weights with log alpha < threshold (small noise), prune the "
            "others.",
        ),
        (
            "mask_on_log_sigma2",
            F.linear(x, theta * (log_sigma2 < threshold), bias),
            "your mask compares log_sigma2 with the threshold; pruning is decided by the relative noise "
            "log alpha = log sigma^2 - log theta^2: mask = log_alpha(theta, log_sigma2) < threshold.",
        ),
        ("no_bias", F.linear(x, theta * mask), "the bias is missing: the pruned layer is x @ W.T + bias."),
    ]
    _diagnose(check, first, expected, mistakes, "the output")
    _ok("at test time the layer is deterministic and uses the pruned mean weights.", hidden)


@_graded
def check_kl(fn: Callable[[torch.Tensor], torch.Tensor], hidden: int | None = None) -> None:
    """Check ``fn(log_alpha) -> KL`` of a layer: ``-sum(neg_kl_molchanov(log_alpha))``, a positive scalar.

    Mistakes caught: the sign flipped (-KL returned), alone or with the mean; the mean over
    weights instead of the sum; the published constants' ``+k1`` typo (constant of the wrong
    sign); the approximation evaluated at -log alpha.  ``hidden``: seed of other inputs.

    Raises
    ------
    CheckFailed
        With the hint of the diagnosed mistake.
    """
    check = "check_kl"
    _, theta, log_sigma2, _, _ = _svdo_problem(6 if hidden is None else hidden)
    la = _ref_log_alpha(theta, log_sigma2)
    neg = kl_lib.neg_kl_molchanov(la)
    expected = -neg.sum()
    sign_hint = (
        "your KL is negative: kl.neg_kl_molchanov returns the approximation of -KL (k1 "
        "sigmoid(...) - 1/2 softplus(-log alpha) - k1 <= 0); the KL is minus that, a positive "
        "number that the loss adds."
    )
    mistakes = [
        ("kl_sign", neg.sum(), sign_hint),
        ("kl_sign", neg.mean(), sign_hint + " Also sum over the weights rather than averaging."),
        (
            "mean_not_sum",
            -neg.mean(),
            "you averaged over weights; the KL of the layer is the sum over its weights (each weight has "
            "its own q and prior).",
        ),
        (
            "plus_k1",
            -(neg + 2 * kl_lib.K1).sum(),
            "the constant is -k1, not +k1: -KL = k1 sigmoid(k2 + k3 log alpha) - 1/2 log(1 + 1/alpha) - k1.",
        ),
        (
            "minus_log_alpha",
            -kl_lib.neg_kl_molchanov(-la).sum(),
            "you evaluated the approximation at -log alpha: pass log alpha itself to "
            "kl.neg_kl_molchanov and negate the result.",
        ),
    ]
    got = _call(fn, (la.clone(),), check)
    _require_tensor(check, got, "the KL", grad_of=(fn, (la.clone(),)))
    _diagnose(check, got, expected, mistakes, "the KL")
    _ok("KL = -sum of Molchanov's approximation, a positive scalar.", hidden)


def _loss_problem(hidden: int | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int, float]:
    """``(logits, y, kl, n_train, kl_weight)`` of check_negative_elbo: a batch of 16 (12 hidden)."""
    seed, B = (7, 16) if hidden is None else (hidden, 12)
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(B, 10, generator=g, dtype=torch.float64)
    y = torch.randint(0, 10, (B,), generator=g)
    if hidden is None:
        return logits, y, torch.tensor(123.0, dtype=torch.float64), 60000, 0.3
    return logits, y, torch.tensor(77.0, dtype=torch.float64), 20000, 0.6


@_graded
def check_negative_elbo(fn: Callable[..., torch.Tensor], hidden: int | None = None) -> None:
    """Check ``fn(logits, y, kl, n_train, kl_weight) -> N * mean CE + kl_weight * KL`` (the loss).

    ``kl_weight`` is the KL weight kappa, which training warms up from 0 to 1.
    Mistakes caught: the data term not scaled by N; the batch's summed CE (scaled by B, not N);
    N times the summed CE (scaled by N B); the KL divided by N (the per-example loss); the
    KL's sign flipped; the KL weight ignored.  ``hidden``: seed of other inputs.

    Raises
    ------
    CheckFailed
        With the hint of the diagnosed mistake.
    """
    check = "check_negative_elbo"
    logits, y, kl, n_train, kl_weight = _loss_problem(hidden)
    B = len(y)
    ce = F.cross_entropy(logits, y)
    expected = n_train * ce + kl_weight * kl
    mistakes = [
        (
            "no_n_scaling",
            ce + kl_weight * kl,
            f"the data term is the batch mean only: multiply it by N = n_train ({n_train}) so that it "
            "estimates the sum over the training set; otherwise the KL overwhelms the data and "
            "every weight is pruned.",
        ),
        (
            "batch_sum",
            B * ce + kl_weight * kl,
            "you summed the cross-entropy over the batch (a factor B); the data term is N times the "
            "batch mean.",
        ),
        (
            "n_times_batch_sum",
            n_train * B * ce + kl_weight * kl,
            f"you multiplied the batch's summed cross-entropy by N: that counts the data {B} times (the "
            "batch size) too often. Use N times the batch mean, n_train * F.cross_entropy(logits, y).",
        ),
        (
            "kl_over_n",
            ce + kl_weight * kl / n_train,
            "you divided the KL by N: that is the per-example loss, -ELBO / N (the same optimum, but "
            "not the loss the task asks for, and the learning rate of the recipe is tuned for N * CE "
            "+ kl_weight * KL). Multiply both terms by N: n_train * CE + kl_weight * KL.",
        ),
        (
            "kl_over_n",
            n_train * ce + kl_weight * kl / n_train,
            "the KL is divided by N: the ELBO of the whole training set has N * CE and the full KL, "
            "so the loss is n_train * CE + kl_weight * KL (dividing the KL by N weakens the prior N-fold "
            "and hardly anything is pruned).",
        ),
        (
            "kl_sign",
            n_train * ce - kl_weight * kl,
            "the KL is subtracted: the loss is the negative ELBO, N * CE + kl_weight * KL (the KL is a penalty).",
        ),
        (
            "kl_weight_ignored",
            n_train * ce + kl,
            "the KL weight kappa is ignored: multiply the KL by kl_weight (warmed up from 0 to 1).",
        ),
    ]
    got = _call(fn, (logits.clone(), y.clone(), kl.clone(), n_train, kl_weight), check)
    _require_tensor(
        check, got, "the loss", grad_of=(fn, (logits.clone(), y.clone(), kl.clone(), n_train, kl_weight))
    )
    _diagnose(check, got, expected, mistakes, "the loss")
    _ok("loss = N * mean cross-entropy + kl_weight * KL.", hidden)


def _run_trained(check: str, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """The eval-mode test error and compression of the student's network; raise if it fails or is noisy."""
    from course_lib.prediction import predict
    from course_lib.scores import error_rate
    from course_lib.sparsity import compression

    model.eval()
    try:
        with torch.no_grad():
            a, b = model(x[:64]), model(x[:64])
        error = error_rate(predict(model, x), y)
        ratio = compression(model)
    except Exception as exc:  # the student's layer code, run by the check
        raise CheckFailed(
            check,
            f"running your network on the test images raised "
            f"{type(exc).__name__}: {exc}{_where_in_student_code(exc)}. Run the "
            "checks of the tasks above: the network is built from those functions.",
            "error",
        ) from None
    if not torch.equal(a, b):
        raise CheckFailed(
            check,
            "in eval mode the network gives different outputs for the same input: "
            "it evaluates with noise. The test-time net is the pruned mean.",
            "noisy",
        )
    return error, ratio


def _reference_sparsity(model: nn.Module, default: float) -> float:
    """The pruned fraction counted with the library's log alpha of each sparse layer's parameters.

    The student's network is built from the student's own layer class, not from
    :data:`course_lib.layers.SVDO_LAYERS`, so its sparse layers are found by their parameters
    (``theta`` and ``log_sigma2``), not by type as :func:`course_lib.layers.sparse_layers` does.
    """
    layers = [
        m
        for m in model.modules()
        if isinstance(getattr(m, "theta", None), torch.Tensor)
        and isinstance(getattr(m, "log_sigma2", None), torch.Tensor)
    ]
    if not layers:
        return default
    with torch.no_grad():
        kept = sum(int((_ref_log_alpha(m.theta, m.log_sigma2) < m.threshold).sum()) for m in layers)
    return 1.0 - kept / sum(m.theta.numel() for m in layers)


@_graded
def check_trained(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    max_error: float | None = None,
    min_sparsity: float | None = None,
    hidden: int | None = None,
) -> dict[str, float]:
    """Check a trained sparse network: deterministic in eval mode, accurate and/or sparse enough.

    Parameters
    ----------
    model : nn.Module
        The trained network (its sparse layers must offer ``mask()``).
    x, y : Tensor
        Test images and labels.
    max_error : float, optional
        Largest accepted test error (a fraction, e.g. 0.05); not checked if None.
    min_sparsity : float, optional
        Smallest accepted fraction of pruned weights over all layers; not checked if None.
        Give one or both (the two are graded as separate parts).
    hidden : int, optional
        A hidden test: print nothing when it passes, and count the pruned weights with the
        library's log alpha of each layer's parameters instead of the layer's own mask.

    Returns
    -------
    dict
        ``{"error": ..., "sparsity": ..., "compression": ...}``.

    Raises
    ------
    CheckFailed
        The network raises, evaluates with noise, or a result is outside its target (with what
        to try).
    ValueError
        A target outside its range, or no target.
    """
    check = "check_trained"
    if not isinstance(model, nn.Module):
        raise CheckFailed(check, f"pass the trained network, got {type(model).__name__}.", "type")
    if max_error is None and min_sparsity is None:
        raise ValueError("give max_error, min_sparsity or both: the targets of the trained network.")
    if not ((max_error is None or 0 < max_error < 1) and (min_sparsity is None or 0 <= min_sparsity < 1)):
        raise ValueError(
            f"max_error must be in (0, 1) and min_sparsity in [0, 1), got {max_error!r} and {min_sparsity!r}."
        )
    error, ratio = _run_trained(check, model, x, y)
    sparsity = 1.0 - 1.0 / ratio  # the pruned fraction; ratio = total / kept weights (inf: all pruned)
    if hidden is not None:  # recount with the library's log alpha (not the model's own mask)
        sparsity = _reference_sparsity(model, default=sparsity)
    result = {"error": error, "sparsity": sparsity, "compression": ratio}
    if max_error is not None and error > max_error:
        raise CheckFailed(
            check,
            f"test error {error:.2%} is above the target {max_error:.2%}. If the "
            "sparsity is also very high, the KL dominates: is the data term scaled by N?",
            "error_high",
        )
    if min_sparsity is not None and sparsity < min_sparsity:
        raise CheckFailed(
            check,
            f"only {sparsity:.1%} of the weights are pruned (target "
            f"{min_sparsity:.1%}). Is the KL in the loss, with the right sign, and does "
            "the KL weight kappa (kl_weight) reach 1?",
            "not_sparse",
        )
    parts = []
    if max_error is not None:
        parts.append(f"test error {error:.2%} <= {max_error:.1%}")
    if min_sparsity is not None:
        parts.append(f"{sparsity:.1%} of the weights pruned >= {min_sparsity:.1%}")
    _ok(f"{' and '.join(parts)} (compression {ratio:.1f}x).", hidden)
    return result
