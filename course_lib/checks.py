"""Checks that teach: feedback on a student's function in words a student can act on.

Every ``check_*`` function takes the student's function (or result), runs it on a few
fixed inputs, and compares the output with a reference computed by the library.  When
the answer is wrong it does not stop at "assert failed": it also computes the answers that
the *typical mistakes* would give (a missing 1/2, a flipped KL sign, ``log(2|theta|)`` in
``log alpha``, the bias inside the variance, a data term not scaled by N, evaluation with
noise, ...) and, if the student's output equals one of them, raises :class:`CheckFailed`
with the hint for that mistake.  A correct answer prints one line starting with ``OK``.

The assignments in ``chapters/assignments/`` call one check after each graded task; nbgrader
gives the task's points when the check cell runs without an exception.

============================  =========================================================
assignment                    checks
============================  =========================================================
A1 conditioning and Bayes     :func:`check_conditional`, :func:`check_posterior`
A2 ELBO of Bayesian linear    :func:`check_elbo`, :func:`check_mean_field`,
regression                    :func:`check_elbo_estimate`
A3 the KL approximation       :func:`check_neg_kl_mc`, :func:`check_neg_kl_approx`,
                              :func:`check_fit`
A4 LinearSVDO                 :func:`check_log_alpha`, :func:`check_lrt_forward`,
                              :func:`check_eval_forward`, :func:`check_kl`,
                              :func:`check_negative_elbo`, :func:`check_trained`
============================  =========================================================
"""
from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from course_lib import kl as kl_lib
from course_lib.layers import LOG_ALPHA_MAX, LOG_ALPHA_MIN, THETA2_EPS, VAR_EPS
from course_lib.probability import Table
from course_lib.regression import BayesianLinearRegression

__all__ = [
    "CheckFailed", "check_conditional", "check_posterior", "check_elbo", "check_mean_field",
    "check_elbo_estimate", "check_neg_kl_mc", "check_neg_kl_approx", "check_fit",
    "check_log_alpha", "check_lrt_forward", "check_eval_forward", "check_kl",
    "check_negative_elbo", "check_trained",
]

#: Relative and absolute tolerance for "the same number" (float64 inputs everywhere).
RTOL, ATOL = 1e-6, 1e-8


class CheckFailed(AssertionError):
    """A check found a wrong answer; the message says what is wrong and how to fix it.

    Attributes
    ----------
    mistake : str
        A short name of the diagnosed mistake (e.g. ``"kl_sign"``), or ``"wrong"`` when the
        answer matches no known mistake, ``"error"`` when the function raised, ``"shape"`` for
        a wrong shape, ``"nan"`` for NaN / inf output.
    """

    def __init__(self, check: str, message: str, mistake: str) -> None:
        super().__init__(f"{check}: {message}")
        self.mistake = mistake


# ---------------------------------------------------------------------------------------
# the diagnosis machinery
# ---------------------------------------------------------------------------------------
def _to_array(value: Any, check: str, what: str) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().double().numpy()
    try:
        if value is None:
            raise TypeError("None")
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise CheckFailed(
            check, f"{what} should be a number or an array of numbers, but it returned "
            f"{type(value).__name__} {value!r:.80}. Return the value (use `return ...`).", "type",
        ) from None
    return arr


def _call(fn: Callable, args: tuple, check: str) -> Any:
    if not callable(fn):
        raise CheckFailed(check, f"expected your function, got {type(fn).__name__}; pass the function "
                          "itself (no parentheses).", "type")
    try:
        return fn(*args)
    except NotImplementedError as exc:  # a stub: keep the type, so the notebook stops right here
        raise NotImplementedError(
            f"{check}: your function is still the stub; replace the `raise NotImplementedError()` "
            "line with your code, then run this check again."
        ) from exc
    except Exception as exc:  # the student's bug: report it in the check's words
        raise CheckFailed(check, f"calling your function raised {type(exc).__name__}: {exc}. "
                          "Run it on a small example and read the traceback.", "error") from exc


def _close(a: np.ndarray, b: np.ndarray, rtol: float, atol: float) -> bool:
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=rtol, atol=atol, equal_nan=False))


def _diagnose(check: str, got: Any, expected: Any, mistakes: Sequence[tuple[str, Any, str]],
              what: str, nan_hint: str | None = None, rtol: float = RTOL, atol: float = ATOL) -> None:
    """Pass if ``got`` equals ``expected``; else raise with the hint of the matching mistake."""
    got_a = _to_array(got, check, what)
    exp_a = np.asarray(expected, dtype=float)
    if got_a.shape != exp_a.shape:
        if got_a.size == exp_a.size == 1:
            got_a = got_a.reshape(exp_a.shape)
        else:
            raise CheckFailed(check, f"{what} has shape {got_a.shape}, expected {exp_a.shape}.", "shape")
    if not np.all(np.isfinite(got_a)):
        for name, value, hint in mistakes:
            value = np.asarray(value, dtype=float)
            fin = np.isfinite(value)
            if (value.shape == got_a.shape and not np.all(fin)
                    and np.array_equal(fin, np.isfinite(got_a))
                    and np.allclose(got_a[fin], value[fin], rtol=rtol, atol=atol)):
                raise CheckFailed(check, hint, name)
        raise CheckFailed(check, nan_hint or f"{what} contains NaN or inf; the reference is finite. "
                          "Look for a log or square root of a negative number or of zero.", "nan")
    if _close(got_a, exp_a, rtol, atol):
        return
    for name, value, hint in mistakes:
        if _close(got_a, np.asarray(value, dtype=float), rtol, atol):
            raise CheckFailed(check, hint, name)
    diff = np.abs(got_a - exp_a)
    i = np.unravel_index(np.argmax(diff), diff.shape) if diff.ndim else ()
    raise CheckFailed(
        check, f"{what} is wrong and matches none of the typical mistakes: at index {tuple(i)} "
        f"you return {got_a[i]:.6g}, the reference is {exp_a[i]:.6g} (largest difference "
        f"{diff.max():.3g}). Compare your formula with the equation in the task, term by term.",
        "wrong",
    )


def _ok(message: str) -> None:
    print(f"OK - {message}")


# ---------------------------------------------------------------------------------------
# A1: conditioning and Bayes on a joint table
# ---------------------------------------------------------------------------------------
def _joint_xyz() -> np.ndarray:
    w = np.random.default_rng(1).gamma(1.0, size=(3, 4, 2))
    return w / w.sum()


def check_conditional(fn: Callable[[np.ndarray, int], np.ndarray]) -> None:
    """Check ``fn(p_xyz, z) -> p(X | Z=z)`` with Y summed out, for a joint array p[x, y, z].

    Mistakes caught: returning the joint p(X, Z=z) (not divided by p(Z=z)); fixing Y at one
    value instead of summing it out; the reversed conditional p(Z=z | X).

    Raises
    ------
    CheckFailed
        With the hint of the diagnosed mistake.
    """
    check = "check_conditional"
    p = _joint_xyz()
    for z in range(p.shape[2]):
        expected = Table(p, ["X", "Y", "Z"]).query(["X"], {"Z": z}).probs
        joint = p[:, :, z].sum(axis=1)
        mistakes = [
            ("not_normalized", joint,
             f"you returned the joint p(X, Z={z}), which sums to p(Z={z}) = {joint.sum():.3f}, not 1. "
             f"Divide by p(Z={z}) = sum over x of p(x, Z={z}): conditioning renormalises the slice."),
            ("reversed", joint / p.sum(axis=(1, 2)),
             f"you divided by p(X), which gives the reversed conditional p(Z={z} | X). "
             f"p(X | Z={z}) divides by p(Z={z}), the sum of the slice over X."),
        ]
        for y in range(p.shape[1]):
            mistakes.append((
                "nuisance_fixed", p[:, y, z] / p[:, y, z].sum(),
                f"you returned p(X | Y={y}, Z={z}): Y is a nuisance variable and must be summed "
                "out (sum rule) before normalising, not fixed at one value.",
            ))
        got = _call(fn, (p.copy(), z), check)
        _diagnose(check, got, expected, mistakes, f"p(X | Z={z})")
    _ok("p(X | Z=z) sums Y out and renormalises; it matches Table.query for every z.")


def check_posterior(fn: Callable[[np.ndarray, np.ndarray, int], np.ndarray]) -> None:
    """Check ``fn(prior, likelihood, t) -> p(d | t)`` (Bayes' theorem on a discrete hypothesis).

    ``prior`` has shape (K,), ``likelihood[d, t] = p(t | d)`` has shape (K, M), ``t`` is the
    observed column.  Mistakes caught: no division by the evidence; the likelihood returned
    as the posterior (the base-rate fallacy); the normalised likelihood (prior forgotten).

    Raises
    ------
    CheckFailed
        With the hint of the diagnosed mistake.
    """
    check = "check_posterior"
    prior = np.array([0.01, 0.09, 0.9])
    lik = np.array([[0.95, 0.05], [0.6, 0.4], [0.1, 0.9]])
    for t in range(lik.shape[1]):
        unnorm = prior * lik[:, t]
        expected = unnorm / unnorm.sum()
        mistakes = [
            ("no_evidence", unnorm,
             f"your posterior sums to {unnorm.sum():.4f}, which is the evidence p(t={t}): divide "
             "prior times likelihood by it (the denominator of Bayes' theorem)."),
            ("likelihood", lik[:, t],
             f"you returned the likelihood p(t={t} | d), not the posterior p(d | t={t}) (the base-rate "
             "fallacy). Multiply by the prior p(d), then normalise."),
            ("prior_forgotten", lik[:, t] / lik[:, t].sum(),
             "you normalised the likelihood but forgot the prior: a rare hypothesis stays rare "
             "after one test. Multiply by p(d) before normalising."),
        ]
        got = _call(fn, (prior.copy(), lik.copy(), t), check)
        _diagnose(check, got, expected, mistakes, f"p(d | t={t})")
    _ok("posterior = prior x likelihood / evidence, for every observed t.")


# ---------------------------------------------------------------------------------------
# A2: the ELBO of Bayesian linear regression
# ---------------------------------------------------------------------------------------
def _regression_problem(n: int = 12, d: int = 3, seed: int = 2):
    rng = np.random.default_rng(seed)
    Phi = rng.normal(size=(n, d))
    t = Phi @ np.array([0.5, -1.0, 2.0])[:d] + 0.3 * rng.normal(size=n)
    A = rng.normal(size=(d, d))
    S = 0.05 * (A @ A.T) + 0.02 * np.eye(d)
    m = rng.normal(size=d)
    return Phi, t, m, S, 2.0, 5.0


def _elbo_parts(m, S, Phi, t, alpha, beta) -> dict[str, float]:
    """The pieces of the exact ELBO of q = N(m, S) (and their typical corruptions)."""
    N, D = Phi.shape
    resid2 = float(np.sum((t - Phi @ m) ** 2))
    trace = float(np.trace(Phi @ S @ Phi.T))
    const = 0.5 * N * math.log(beta / (2 * math.pi))
    logdet_S = float(np.linalg.slogdet(S)[1])
    kl = 0.5 * (alpha * np.trace(S) + alpha * m @ m - D - D * math.log(alpha) - logdet_S)
    return dict(const=const, resid2=resid2, trace=trace, kl=float(kl), beta=beta)


def check_elbo(fn: Callable[..., float]) -> None:
    """Check ``fn(m, S, Phi, t, alpha, beta) -> ELBO`` of q = N(m, S) in closed form.

    Model p(w) = N(0, alpha^-1 I), p(t | w) = N(Phi w, beta^-1 I).  Mistakes caught: the KL's
    sign flipped; a missing 1/2 in the KL or in the data term; the trace term tr(Phi S Phi^T)
    forgotten (q's variance ignored); the KL left out.  The reference equals
    :func:`course_lib.vi.linear_gaussian_elbo`.

    Raises
    ------
    CheckFailed
        With the hint of the diagnosed mistake.
    """
    check = "check_elbo"
    for seed in (2, 3):
        Phi, t, m, S, alpha, beta = _regression_problem(seed=seed)
        p = _elbo_parts(m, S, Phi, t, alpha, beta)
        data = p["const"] - 0.5 * beta * (p["resid2"] + p["trace"])
        expected = data - p["kl"]
        mistakes = [
            ("kl_sign", data + p["kl"],
             "the KL has the wrong sign: ELBO = E_q[log p(t|w)] - KL(q || p(w)); the KL is >= 0 and "
             "is subtracted (it pulls q towards the prior)."),
            ("kl_half", data - 2 * p["kl"],
             "your KL is twice too large: KL between Gaussians is 1/2 [tr + quadratic - D + log det]; "
             "the factor 1/2 is missing."),
            ("data_half", p["const"] - beta * (p["resid2"] + p["trace"]) - p["kl"],
             "the data term is missing a factor 1/2: log N(t | y, 1/beta) = 1/2 log(beta / 2 pi) "
             "- beta/2 (t - y)^2."),
            ("no_trace", p["const"] - 0.5 * beta * p["resid2"] - p["kl"],
             "the expected log-likelihood ignores q's spread: E_q ||t - Phi w||^2 = ||t - Phi m||^2 "
             "+ tr(Phi S Phi^T). Add the trace term."),
            ("no_kl", data,
             "the KL term is missing: ELBO = expected log-likelihood - KL(q || p(w))."),
        ]
        got = _call(fn, (m.copy(), S.copy(), Phi.copy(), t.copy(), alpha, beta), check)
        _diagnose(check, got, expected, mistakes, "the ELBO")
    _ok("the closed-form ELBO matches course_lib.vi.linear_gaussian_elbo on two problems.")


def check_mean_field(fn: Callable[..., tuple[np.ndarray, np.ndarray]]) -> None:
    """Check ``fn(Phi, t, alpha, beta) -> (m, s2)``: the optimal factorised Gaussian q.

    The best q(w) = prod_i N(w_i | m_i, s2_i) (minimising KL(q || posterior)) has the
    posterior mean and variances ``1 / diag(S_N^-1)``.  Mistakes caught: the posterior's
    marginal variances ``diag(S_N)`` (what KL(p || q) would give); the prior's variance.

    Raises
    ------
    CheckFailed
        With the hint of the diagnosed mistake.
    """
    check = "check_mean_field"
    Phi, t, _, _, alpha, beta = _regression_problem()
    post = BayesianLinearRegression(alpha, beta).fit(Phi, t)
    precision = alpha * np.eye(Phi.shape[1]) + beta * Phi.T @ Phi
    got = _call(fn, (Phi.copy(), t.copy(), alpha, beta), check)
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        raise CheckFailed(check, "return a pair (m, s2): the means and the variances of q.", "type")
    m, s2 = got
    _diagnose(check, m, post.mean, [
        ("prior_mean", np.zeros_like(post.mean), "m is the prior mean 0; the optimal q is centred at "
         "the posterior mean m_N = beta S_N Phi^T t."),
    ], "m")
    _diagnose(check, s2, 1.0 / np.diag(precision), [
        ("marginal_variances", np.diag(post.cov),
         "s2 = diag(S_N) are the posterior's marginal variances: that q minimises KL(p || q), not "
         "the ELBO's KL(q || p). Mean-field VI matches the precision: s2_i = 1 / (S_N^-1)_ii, "
         "which is smaller (VI underestimates the variance)."),
        ("prior_variance", np.full(Phi.shape[1], 1 / alpha),
         "s2 is the prior variance 1/alpha; use the posterior precision's diagonal, 1 / (S_N^-1)_ii."),
        ("std_not_variance", np.sqrt(1.0 / np.diag(precision)),
         "you returned standard deviations; s2 asks for variances 1 / (S_N^-1)_ii."),
    ], "s2")
    _ok("q has the posterior mean and variances 1/diag(precision): smaller than the marginals.")


def check_elbo_estimate(fn: Callable[..., float]) -> None:
    """Check ``fn(m, L, Phi_b, t_b, N, alpha, beta, eps) -> ELBO estimate`` on a mini-batch.

    The estimate is ``N/B * sum_i mean_s log N(t_i | phi_i^T w_s, 1/beta) - KL`` with the
    weight samples ``w_s = m + L eps_s`` (``eps`` has shape (S, D), so ``W = m + eps @ L.T``).
    Mistakes caught: the data term not scaled by N/B (mean or plain sum over the batch);
    ``eps @ L`` instead of ``eps @ L.T``; the KL's sign flipped.

    Raises
    ------
    CheckFailed
        With the hint of the diagnosed mistake.
    """
    check = "check_elbo_estimate"
    Phi, t, m, S, alpha, beta = _regression_problem(n=40)
    L = np.linalg.cholesky(S)
    batch = np.arange(5, 15)
    Phi_b, t_b = Phi[batch], t[batch]
    N, B = len(t), len(batch)
    eps = np.random.default_rng(4).normal(size=(7, Phi.shape[1]))
    kl = _elbo_parts(m, S, Phi, t, alpha, beta)["kl"]

    def loglik(W):
        resid = t_b[None, :] - W @ Phi_b.T
        return 0.5 * math.log(beta / (2 * math.pi)) - 0.5 * beta * resid**2  # (S, B)

    ll = loglik(m + eps @ L.T)
    data = ll.sum(axis=1).mean()
    expected = N / B * data - kl
    mistakes = [
        ("no_n_scaling", data - kl,
         f"the data term is the batch's sum only: it must be scaled by N/B = {N}/{B} to estimate the "
         "sum over all N examples (otherwise the KL is weighted as if the data set had B examples)."),
        ("batch_mean", data / B - kl,
         f"you averaged the log-likelihood over the batch: multiply the mean by N = {N} (sum over "
         "the data set), not 1."),
        ("kl_sign", N / B * data + kl,
         "the KL has the wrong sign: the estimate is N/B * data term - KL(q || p(w))."),
        ("l_not_transposed", N / B * loglik(m + eps @ L).sum(axis=1).mean() - kl,
         "the samples use eps @ L; with eps of shape (S, D) the reparameterisation w = m + L eps "
         "is W = m + eps @ L.T."),
    ]
    got = _call(fn, (m.copy(), L.copy(), Phi_b.copy(), t_b.copy(), N, alpha, beta, eps.copy()), check)
    _diagnose(check, got, expected, mistakes, "the ELBO estimate")
    _ok("the mini-batch estimate scales the data term by N/B and subtracts the KL.")


# ---------------------------------------------------------------------------------------
# A3: the KL approximation
# ---------------------------------------------------------------------------------------
_LOG_ALPHA_TEST = np.array([-6.0, -2.0, -0.5, 0.0, 1.0, 3.0, 6.0])


def check_neg_kl_mc(fn: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> None:
    """Check ``fn(log_alpha, eps) -> -KL(alpha)`` by Monte Carlo with the given samples ``eps``.

    Reference: ``1/2 log alpha - mean(log|1 + sqrt(alpha) eps|) - (gamma + ln 2)/2`` (equal to
    :func:`course_lib.kl.neg_kl_mc` with the same samples).  Mistakes caught: the sign flipped
    (KL instead of -KL); the constant C left out; ``log alpha`` instead of ``1/2 log alpha``;
    no absolute value inside the log (NaN).

    Raises
    ------
    CheckFailed
        With the hint of the diagnosed mistake.
    """
    check = "check_neg_kl_mc"
    eps = np.random.default_rng(5).standard_normal(2000)
    la = _LOG_ALPHA_TEST
    e_log = np.array([np.mean(np.log(np.abs(1 + math.sqrt(math.exp(a)) * eps))) for a in la])
    expected = 0.5 * la - e_log - kl_lib.C_INF
    with np.errstate(invalid="ignore"):
        no_abs = 0.5 * la - np.array([np.mean(np.log(1 + math.sqrt(math.exp(a)) * eps)) for a in la]) \
            - kl_lib.C_INF
    mistakes = [
        ("sign", -expected, "you return +KL: the task asks for -KL (<= 0, rising to 0 as alpha grows). "
         "Flip the sign."),
        ("no_constant", expected + kl_lib.C_INF,
         "the constant C = -(gamma + ln 2)/2 = -0.6352 is missing: without it -KL does not tend to 0 "
         "as alpha -> infinity."),
        ("log_alpha_not_half", expected + 0.5 * la,
         "the first term should be 1/2 log alpha (from log sqrt(alpha)), not log alpha."),
        ("no_abs", no_abs,
         "the log of a negative number gives NaN: 1 + sqrt(alpha) eps is negative for some eps; "
         "the KL has log|1 + sqrt(alpha) eps| with an absolute value."),
    ]
    got = _call(fn, (la.copy(), eps.copy()), check)
    _diagnose(check, got, expected, mistakes, "-KL", rtol=1e-6, atol=1e-6)
    _ok("the Monte Carlo -KL matches the reference formula for the same samples.")


def check_neg_kl_approx(fn: Callable[[np.ndarray, float, float, float], np.ndarray]) -> None:
    """Check ``fn(log_alpha, k1, k2, k3)`` = k1 sigmoid(k2 + k3 log alpha) - 1/2 log(1 + 1/alpha) - k1.

    Mistakes caught: ``log(1 + alpha)`` instead of ``log(1 + 1/alpha)``; a missing 1/2; ``+ k1``
    instead of ``- k1``.  Reference: :func:`course_lib.kl.neg_kl_molchanov`.

    Raises
    ------
    CheckFailed
        With the hint of the diagnosed mistake.
    """
    check = "check_neg_kl_approx"
    la = _LOG_ALPHA_TEST
    k = (0.7, 1.9, 1.4)
    sig = 1.0 / (1.0 + np.exp(-(k[1] + k[2] * la)))
    sp = np.log1p(np.exp(-la))
    expected = kl_lib.neg_kl_molchanov(la, *k)
    mistakes = [
        ("log_one_plus_alpha", k[0] * sig - 0.5 * np.log1p(np.exp(la)) - k[0],
         "the middle term is -1/2 log(1 + 1/alpha) (= -1/2 softplus(-log alpha)), not log(1 + alpha)."),
        ("softplus_half", k[0] * sig - sp - k[0],
         "the factor 1/2 in front of log(1 + 1/alpha) is missing."),
        ("plus_k1", k[0] * sig - 0.5 * sp + k[0],
         "the constant is -k1 (so that -KL -> 0 as alpha -> infinity), not +k1."),
    ]
    got = _call(fn, (la.copy(), *k), check)
    _diagnose(check, got, expected, mistakes, "the approximation")
    _ok("the sigmoid + softplus form matches course_lib.kl.neg_kl_molchanov.")


@functools.lru_cache(maxsize=2)
def _reference_fit(tied: bool):
    return kl_lib.fit_molchanov(tied=tied)


def check_fit(constants: Sequence[float], tol: float = 1e-3) -> None:
    """Check fitted ``(k1, k2, k3)`` against the paper's procedure (:func:`course_lib.kl.fit_molchanov`).

    The procedure: 2001 points uniform on log alpha in [-10, 10], the quadrature reference, C
    fixed at -(gamma + ln 2)/2.  Mistakes caught: the published constants copied; the fit with
    C tied to -k1; constants that fit badly (the message gives the largest error).

    Parameters
    ----------
    constants : sequence of 3 floats
    tol : float, default 1e-3
        Allowed absolute difference of each constant from the reference fit.

    Raises
    ------
    CheckFailed
        With the hint of the diagnosed mistake.
    """
    check = "check_fit"
    got = _to_array(constants, check, "the constants")
    if got.shape != (3,):
        raise CheckFailed(check, f"pass the three constants (k1, k2, k3), got shape {got.shape}.", "shape")
    ref = _reference_fit(False)
    if np.allclose(got, ref.constants, atol=tol, rtol=0):
        _ok(f"k = ({got[0]:.4f}, {got[1]:.4f}, {got[2]:.4f}) match the paper procedure's fit.")
        return
    if np.allclose(got, (kl_lib.K1, kl_lib.K2, kl_lib.K3), atol=1e-5, rtol=0):
        raise CheckFailed(check, "these are the published constants: fit your own with least squares "
                          "against the reference -KL on the grid.", "published")
    if np.allclose(got, _reference_fit(True).constants, atol=tol, rtol=0):
        raise CheckFailed(check, "you tied C = -k1 during the fit; the paper's procedure fixes C at "
                          "-(gamma + ln 2)/2 = -0.6352 (the alpha -> infinity limit) and lets k1 move.",
                          "tied")
    _, max_err = kl_lib.molchanov_errors(*got, tied=False)
    raise CheckFailed(check, f"your constants differ from the fit ({ref.k1:.4f}, {ref.k2:.4f}, "
                      f"{ref.k3:.4f}) by more than {tol}; with C = -0.6352 they miss the reference by "
                      f"up to {max_err:.3g}. Check the grid (2001 points on [-10, 10]) and that the "
                      "residual is approximation minus reference.", "wrong")


# ---------------------------------------------------------------------------------------
# A4: LinearSVDO
# ---------------------------------------------------------------------------------------
def _svdo_problem(seed: int = 6):
    g = torch.Generator().manual_seed(seed)
    theta = torch.randn(5, 8, generator=g, dtype=torch.float64) * 0.5
    theta[0, 0] = 1e-6      # a weight driven to (almost) zero: log alpha is clipped at 8
    log_sigma2 = torch.full_like(theta, -4.0) + torch.randn(5, 8, generator=g, dtype=torch.float64)
    bias = torch.linspace(-1.0, 1.0, 5, dtype=torch.float64)  # negative entries on purpose
    x = torch.randn(6, 8, generator=g, dtype=torch.float64)
    eps = torch.randn(6, 5, generator=g, dtype=torch.float64)
    return x, theta, log_sigma2, bias, eps


def _ref_log_alpha(theta: torch.Tensor, log_sigma2: torch.Tensor) -> torch.Tensor:
    return torch.clamp(log_sigma2 - torch.log(theta * theta + THETA2_EPS), LOG_ALPHA_MIN, LOG_ALPHA_MAX)


def check_log_alpha(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
    """Check ``fn(theta, log_sigma2) -> log alpha = clip(log sigma^2 - log(theta^2 + 1e-8), -8, 8)``.

    Mistakes caught: ``log(2|theta|)`` instead of ``2 log|theta|`` (a bug that shipped in a
    public course notebook); ``log|theta|`` (the 2 missing); no clipping.

    Raises
    ------
    CheckFailed
        With the hint of the diagnosed mistake.
    """
    check = "check_log_alpha"
    _, theta, log_sigma2, _, _ = _svdo_problem()
    expected = _ref_log_alpha(theta, log_sigma2)
    clip = lambda v: torch.clamp(v, LOG_ALPHA_MIN, LOG_ALPHA_MAX)  # noqa: E731
    mistakes = []
    for wrap, note in ((clip, ""), (lambda v: v, " (and clip the result to [-8, 8])")):
        mistakes += [
            ("log_2_abs_theta", wrap(log_sigma2 - torch.log(2 * theta.abs())),
             "you used log(2|theta|); alpha = sigma^2 / theta^2 needs log(theta^2) = 2 log|theta|, "
             f"written stably as log(theta^2 + 1e-8){note}."),
            ("log_abs_theta", wrap(log_sigma2 - torch.log(theta.abs() + THETA2_EPS)),
             f"alpha divides by theta^2: subtract log(theta^2 + 1e-8), not log|theta|{note}."),
        ]
    mistakes.append(("no_clip", log_sigma2 - torch.log(theta * theta + THETA2_EPS),
                     "log alpha is right but not clipped: clamp it to [-8, 8] (LOG_ALPHA_MIN, "
                     "LOG_ALPHA_MAX) so a weight at theta = 0 does not send it to +infinity."))
    got = _call(fn, (theta.clone(), log_sigma2.clone()), check)
    _diagnose(check, got, expected, mistakes, "log alpha")
    _ok("log alpha = clip(log sigma^2 - log(theta^2 + 1e-8), -8, 8).")


def check_lrt_forward(fn: Callable[..., torch.Tensor]) -> None:
    """Check ``fn(x, theta, log_sigma2, bias, eps)``: the local reparameterization forward.

    ``x @ theta.T + bias + sqrt(x^2 @ sigma2.T + 1e-8) * eps``.  Mistakes caught: the bias
    inside the variance (negative variances, NaN); the variance used as a standard deviation;
    ``x`` instead of ``x^2``; ``sigma`` instead of ``sigma^2``.

    Raises
    ------
    CheckFailed
        With the hint of the diagnosed mistake.
    """
    check = "check_lrt_forward"
    x, theta, log_sigma2, bias, eps = _svdo_problem()
    sigma2 = log_sigma2.exp()
    mean = F.linear(x, theta, bias)
    expected = mean + torch.sqrt(F.linear(x * x, sigma2) + VAR_EPS) * eps
    mistakes = [
        ("bias_in_variance", mean + torch.sqrt(F.linear(x * x, sigma2, bias) + VAR_EPS) * eps,
         "the bias is inside the variance: the bias is deterministic, so it belongs to the mean "
         "only. F.linear(x * x, sigma2, bias) adds a (possibly negative) bias to a variance, and "
         "its square root is NaN. Use F.linear(x * x, sigma2) with no bias."),
        ("var_not_std", mean + (F.linear(x * x, sigma2) + VAR_EPS) * eps,
         "the noise is scaled by the variance; scale eps by the standard deviation "
         "sqrt(x^2 sigma^2 + 1e-8)."),
        ("x_not_squared", mean + torch.sqrt(F.linear(x, sigma2) + VAR_EPS) * eps,
         "the variance of sum_j x_j w_j is sum_j x_j^2 sigma_j^2: use x * x, not x."),
        ("sigma_not_sigma2", mean + torch.sqrt(F.linear(x * x, sigma2.sqrt()) + VAR_EPS) * eps,
         "you used sigma = exp(log_sigma2 / 2) in the variance; it needs sigma^2 = exp(log_sigma2)."),
    ]
    got = _call(fn, (x.clone(), theta.clone(), log_sigma2.clone(), bias.clone(), eps.clone()), check)
    _diagnose(check, got, expected, mistakes, "the pre-activations",
              nan_hint="the output has NaN: a square root of a negative number. Is the bias (which "
              "can be negative) inside the variance? It belongs to the mean only.")
    _ok("pre-activations = mean + sqrt(variance) * eps, bias in the mean only.")


def check_eval_forward(fn: Callable[..., torch.Tensor]) -> None:
    """Check ``fn(x, theta, log_sigma2, bias, threshold)``: the deterministic, pruned test-time net.

    ``x @ (theta * (log_alpha < threshold)).T + bias``.  Mistakes caught: noise at test time
    (two calls differ); no pruning; keeping the weights with large alpha instead.

    Raises
    ------
    CheckFailed
        With the hint of the diagnosed mistake.
    """
    check = "check_eval_forward"
    x, theta, log_sigma2, bias, _ = _svdo_problem()
    threshold = -2.0  # prunes a good share of the test weights
    mask = _ref_log_alpha(theta, log_sigma2) < threshold
    expected = F.linear(x, theta * mask, bias)
    args = (x.clone(), theta.clone(), log_sigma2.clone(), bias.clone(), threshold)
    first = _to_array(_call(fn, args, check), check, "the output")
    second = _to_array(_call(fn, args, check), check, "the output")
    if first.shape == second.shape and not np.array_equal(first, second):
        raise CheckFailed(check, "two calls with the same input give different outputs: you evaluate "
                          "with noise. At test time use the mean weights theta, with the pruned ones "
                          "(log alpha >= threshold) set to zero, and no sampling.", "noisy")
    mistakes = [
        ("unpruned", F.linear(x, theta, bias),
         "you use all of theta: zero the weights whose log alpha >= threshold (their posterior is "
         "pure noise), i.e. theta * (log_alpha < threshold)."),
        ("mask_reversed", F.linear(x, theta * ~mask, bias),
         "the mask is reversed: keep the weights with log alpha < threshold (small noise), prune the "
         "others."),
        ("no_bias", F.linear(x, theta * mask),
         "the bias is missing: the pruned layer is x @ W.T + bias."),
    ]
    _diagnose(check, first, expected, mistakes, "the output")
    _ok("at test time the layer is deterministic and uses the pruned mean weights.")


def check_kl(fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
    """Check ``fn(log_alpha) -> KL`` of a layer: ``-sum(neg_kl_molchanov(log_alpha))``, a positive scalar.

    Mistakes caught: the sign flipped (-KL returned); the mean over weights instead of the sum;
    the published constants' ``+k1`` typo (constant of the wrong sign).

    Raises
    ------
    CheckFailed
        With the hint of the diagnosed mistake.
    """
    check = "check_kl"
    _, theta, log_sigma2, _, _ = _svdo_problem()
    la = _ref_log_alpha(theta, log_sigma2)
    neg = kl_lib.neg_kl_molchanov(la)
    expected = -neg.sum()
    mistakes = [
        ("kl_sign", neg.sum(),
         "your KL is negative: -KL is the approximation k1 sigmoid(...) - 1/2 softplus(-log alpha) - k1; "
         "the KL is minus that, a positive number that the loss adds."),
        ("mean_not_sum", -neg.mean(),
         "you averaged over weights; the KL of the layer is the sum over its weights (each weight has "
         "its own q and prior)."),
        ("plus_k1", -(neg + 2 * kl_lib.K1).sum(),
         "the constant is -k1, not +k1: -KL = k1 sigmoid(k2 + k3 log alpha) - 1/2 log(1 + 1/alpha) - k1."),
    ]
    got = _call(fn, (la.clone(),), check)
    _diagnose(check, got, expected, mistakes, "the KL")
    _ok("KL = -sum of Molchanov's approximation, a positive scalar.")


def check_negative_elbo(fn: Callable[..., torch.Tensor]) -> None:
    """Check ``fn(logits, y, kl, n_train, beta) -> N * mean CE + beta * KL`` (the training loss).

    Mistakes caught: the data term not scaled by N; the batch's summed CE (scaled by B, not N);
    the KL's sign flipped; beta ignored.

    Raises
    ------
    CheckFailed
        With the hint of the diagnosed mistake.
    """
    check = "check_negative_elbo"
    g = torch.Generator().manual_seed(7)
    logits = torch.randn(16, 10, generator=g, dtype=torch.float64)
    y = torch.randint(0, 10, (16,), generator=g)
    kl, n_train, beta = torch.tensor(123.0, dtype=torch.float64), 60000, 0.3
    ce = F.cross_entropy(logits, y)
    expected = n_train * ce + beta * kl
    mistakes = [
        ("no_n_scaling", ce + beta * kl,
         f"the data term is the batch mean only: multiply it by N = n_train ({n_train}) so that it "
         "estimates the sum over the training set; otherwise the KL overwhelms the data and "
         "every weight is pruned."),
        ("batch_sum", len(y) * ce + beta * kl,
         "you summed the cross-entropy over the batch (a factor B); the data term is N times the "
         "batch mean."),
        ("kl_sign", n_train * ce - beta * kl,
         "the KL is subtracted: the loss is the negative ELBO, N * CE + beta * KL (the KL is a "
         "penalty)."),
        ("beta_ignored", n_train * ce + kl,
         "beta is ignored: multiply the KL by beta (the warm-up weight)."),
    ]
    got = _call(fn, (logits.clone(), y.clone(), kl.clone(), n_train, beta), check)
    _diagnose(check, got, expected, mistakes, "the loss")
    _ok("loss = N * mean cross-entropy + beta * KL.")


def check_trained(model: nn.Module, x: torch.Tensor, y: torch.Tensor, max_error: float,
                  min_sparsity: float) -> dict[str, float]:
    """Check a trained sparse network: deterministic in eval mode, accurate and sparse enough.

    Parameters
    ----------
    model : nn.Module
        The trained network (its sparse layers must offer ``mask()``).
    x, y : Tensor
        Test images and labels.
    max_error : float
        Largest accepted test error (a fraction, e.g. 0.05).
    min_sparsity : float
        Smallest accepted fraction of pruned weights over all layers.

    Returns
    -------
    dict
        ``{"error": ..., "sparsity": ..., "compression": ...}``.

    Raises
    ------
    CheckFailed
        Evaluation with noise, or a result outside the targets (with what to try).
    """
    from course_lib.sparsity import compression, weight_counts
    from course_lib.train import evaluate

    check = "check_trained"
    if not isinstance(model, nn.Module):
        raise CheckFailed(check, f"pass the trained network, got {type(model).__name__}.", "type")
    if not (0 < max_error < 1 and 0 <= min_sparsity < 1):
        raise ValueError(f"max_error must be in (0, 1) and min_sparsity in [0, 1), got "
                         f"{max_error!r} and {min_sparsity!r}.")
    model.eval()
    with torch.no_grad():
        a, b = model(x[:64]), model(x[:64])
    if not torch.equal(a, b):
        raise CheckFailed(check, "in eval mode the network gives different outputs for the same input: "
                          "it evaluates with noise. The test-time net is the pruned mean.", "noisy")
    error = evaluate(model, x, y)
    counts = weight_counts(model).values()
    sparsity = 1.0 - sum(k for k, _ in counts) / sum(t for _, t in counts)
    result = {"error": error, "sparsity": sparsity, "compression": compression(model)}
    if error > max_error:
        raise CheckFailed(check, f"test error {error:.2%} is above the target {max_error:.2%}. If the "
                          "sparsity is also very high, the KL dominates: is the data term scaled by N?",
                          "error_high")
    if sparsity < min_sparsity:
        raise CheckFailed(check, f"only {sparsity:.1%} of the weights are pruned (target "
                          f"{min_sparsity:.0%}). Is the KL in the loss, with the right sign, and does "
                          "beta reach 1?", "not_sparse")
    _ok(f"test error {error:.2%} <= {max_error:.0%} with {sparsity:.1%} of the weights pruned "
        f"(compression {result['compression']:.1f}x).")
    return result
