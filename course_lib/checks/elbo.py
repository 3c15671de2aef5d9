"""The checks of assignment A2 (the ELBO of Bayesian linear regression).

Checks: :func:`check_elbo`, :func:`check_mean_field`, :func:`check_elbo_estimate`.

Each runs the student's function on fixed inputs (other ones with ``hidden=SEED``), compares it
with the library's reference and names the typical mistake it matches; see :mod:`course_lib.checks`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from course_lib.checks.core import (
    CheckFailed,
    _call,
    _diagnose,
    _graded,
    _ok,
)
from course_lib.regression import BayesianLinearRegression


def _regression_problem(n: int = 12, d: int = 3, seed: int = 2):
    rng = np.random.default_rng(seed)
    Phi = rng.normal(size=(n, d))
    w_true = np.array([0.5, -1.0, 2.0])[:d] if d <= 3 else rng.normal(size=d)
    t = Phi @ w_true + 0.3 * rng.normal(size=n)
    A = rng.normal(size=(d, d))
    S = 0.05 * (A @ A.T) + 0.02 * np.eye(d)
    m = rng.normal(size=d)
    return Phi, t, m, S, 2.0, 5.0


def _kl_gauss(m, S, lam, D, logdet_S) -> float:
    return float(0.5 * (lam * np.trace(S) + lam * m @ m - D - D * math.log(lam) - logdet_S))


def _elbo_parts(m, S, Phi, t, lam, beta) -> dict[str, float]:
    """The pieces of the exact ELBO of q = N(m, S) (and their typical corruptions)."""
    N, D = Phi.shape
    resid2 = float(np.sum((t - Phi @ m) ** 2))
    trace = float(np.trace(Phi @ S @ Phi.T))
    const = 0.5 * N * math.log(beta / (2 * math.pi))
    logdet_S = float(np.linalg.slogdet(S)[1])
    kl = _kl_gauss(m, S, lam, D, logdet_S)
    return dict(const=const, resid2=resid2, trace=trace, kl=kl, beta=beta, N=N, D=D, logdet_S=logdet_S)


def _elbo_mistakes(m, S, Phi, t, lam, beta) -> tuple[float, list[tuple[str, float, str]]]:
    """The exact ELBO of q = N(m, S) and what each typical mistake of ``check_elbo`` returns instead."""
    p = _elbo_parts(m, S, Phi, t, lam, beta)
    N, D = p["N"], p["D"]
    data = p["const"] - 0.5 * beta * (p["resid2"] + p["trace"])
    expected = data - p["kl"]
    swapped = (
        0.5 * D * math.log(beta / (2 * math.pi))
        - 0.5 * beta * (p["resid2"] + p["trace"])
        - _kl_gauss(m, S, lam, N, p["logdet_S"])
    )
    mistakes = [
        (
            "kl_sign",
            data + p["kl"],
            "the KL has the wrong sign: ELBO = E_q[log p(t|w)] - KL(q || p(w)); the KL is >= 0 and "
            "is subtracted (it pulls q towards the prior).",
        ),
        (
            "kl_half",
            data - 2 * p["kl"],
            "your KL is twice too large: KL between Gaussians is 1/2 [tr + quadratic - D + log det]; "
            "the factor 1/2 is missing.",
        ),
        (
            "data_half",
            p["const"] - beta * (p["resid2"] + p["trace"]) - p["kl"],
            "the data term is missing a factor 1/2: log N(t | y, 1/beta) = 1/2 log(beta / 2 pi) "
            "- beta/2 (t - y)^2.",
        ),
        (
            "no_trace",
            p["const"] - 0.5 * beta * p["resid2"] - p["kl"],
            "the expected log-likelihood ignores q's spread: E_q ||t - Phi w||^2 = ||t - Phi m||^2 "
            "+ tr(Phi S Phi^T). Add the trace term.",
        ),
        ("no_kl", data, "the KL term is missing: ELBO = expected log-likelihood - KL(q || p(w))."),
        (
            "n_d_swapped",
            swapped,
            f"N and D are swapped: Phi has shape (N, D) = ({N}, {D}), one row per data point, so "
            "write `n, d = Phi.shape`. N multiplies log(beta / 2 pi) in the data term, D is the "
            "number of weights in the KL.",
        ),
        (
            "no_minus_d",
            data - (p["kl"] + 0.5 * D),
            f"the KL is missing its '- D' (here D = {D}): KL(N(m, S) || N(0, I/lambda)) = 1/2 (lambda tr S "
            "+ lambda m^T m - D - D log lambda - log det S); the D is the trace of the identity.",
        ),
        (
            "slogdet_sign",
            data - (p["kl"] + 0.5 * p["logdet_S"] - 0.5),
            "np.linalg.slogdet(S) returns (sign, log|det S|): you used [0], the sign (1 for a "
            "covariance). Use np.linalg.slogdet(S)[1].",
        ),
    ]
    return expected, mistakes


@_graded
def check_elbo(fn: Callable[..., float], hidden: int | None = None) -> None:
    """Check ``fn(m, S, Phi, t, lam, beta) -> ELBO`` of q = N(m, S) in closed form.

    Model p(w) = N(0, lambda^-1 I) (``lam`` = lambda, the prior precision), p(t | w) =
    N(Phi w, beta^-1 I).  Mistakes caught: the KL's sign flipped; a missing 1/2 in the KL or in
    the data term; the trace term tr(Phi S Phi^T) forgotten (q's variance ignored); the KL left
    out; N and D swapped (``d, n = Phi.shape``); the ``- D`` of the KL missing; ``slogdet(S)[0]``
    (the sign) for the log-determinant.  The reference equals
    :func:`course_lib.vi.linear_gaussian_elbo`.  ``hidden``: seed of other inputs.

    Raises
    ------
    CheckFailed
        With the hint of the diagnosed mistake.
    """
    check = "check_elbo"
    problems = (
        [dict(seed=2), dict(seed=3)]
        if hidden is None
        else [dict(seed=hidden, n=17, d=2), dict(seed=hidden + 1, n=9, d=4)]
    )
    for kw in problems:
        Phi, t, m, S, lam, beta = _regression_problem(**kw)
        expected, mistakes = _elbo_mistakes(m, S, Phi, t, lam, beta)
        got = _call(fn, (m.copy(), S.copy(), Phi.copy(), t.copy(), lam, beta), check)
        _diagnose(check, got, expected, mistakes, "the ELBO")
    _ok("the closed-form ELBO matches course_lib.vi.linear_gaussian_elbo on two problems.", hidden)


def _mean_field_mistakes(post, precision, Phi, t, lam, beta) -> dict[str, list[tuple[str, np.ndarray, str]]]:
    """What each typical mistake of ``check_mean_field`` returns for ``m`` and for ``s2``."""
    return {
        "m": [
            (
                "prior_mean",
                np.zeros_like(post.mean),
                "m is the prior mean 0; the optimal q is centred at "
                "the posterior mean m_N = beta S_N Phi^T t.",
            ),
            (
                "beta_missing_m",
                np.linalg.solve(precision, Phi.T @ t),
                f"m is off by the factor beta = {beta}: the posterior mean is m_N = beta S_N Phi^T t, "
                "i.e. beta * np.linalg.solve(precision, Phi.T @ t).",
            ),
        ],
        "s2": [
            (
                "marginal_variances",
                np.diag(post.cov),
                "s2 = diag(S_N) are the posterior's marginal variances: that q minimises KL(p || q), not "
                "the ELBO's KL(q || p). Mean-field VI matches the precision: s2_i = 1 / (S_N^-1)_ii, "
                "which is smaller (VI underestimates the variance).",
            ),
            (
                "prior_variance",
                np.full(Phi.shape[1], 1 / lam),
                "s2 is the prior variance 1/lambda (1 / lam); use the posterior precision's "
                "diagonal, 1 / (S_N^-1)_ii.",
            ),
            (
                "std_not_variance",
                np.sqrt(1.0 / np.diag(precision)),
                "you returned standard deviations; s2 asks for variances 1 / (S_N^-1)_ii.",
            ),
        ],
    }


@_graded
def check_mean_field(
    fn: Callable[..., tuple[np.ndarray, np.ndarray]], part: str | None = None, hidden: int | None = None
) -> None:
    """Check ``fn(Phi, t, lam, beta) -> (m, s2)``: the optimal factorised Gaussian q.

    The best q(w) = prod_i N(w_i | m_i, s2_i) (minimising KL(q || posterior)) has the
    posterior mean and variances ``1 / diag(S_N^-1)``.  Mistakes caught: for ``m``, the prior
    mean, beta missing in ``m_N = beta S_N Phi^T t``; for ``s2``, the posterior's marginal
    variances ``diag(S_N)`` (what KL(p || q) would give), the prior's variance, standard
    deviations.

    Parameters
    ----------
    fn : callable
    part : {"m", "s2"}, optional
        Check only the means or only the variances (each is graded on its own); both if None.
    hidden : int, optional
        Seed of other inputs (a hidden test).

    Raises
    ------
    CheckFailed
        With the hint of the diagnosed mistake.
    """
    check = "check_mean_field"
    if part not in (None, "m", "s2"):
        raise ValueError(f"part must be 'm', 's2' or None, got {part!r}.")
    Phi, t, _, _, lam, beta = (
        _regression_problem() if hidden is None else _regression_problem(n=15, d=4, seed=hidden)
    )
    post = BayesianLinearRegression(lam, beta).fit(Phi, t)
    precision = lam * np.eye(Phi.shape[1]) + beta * Phi.T @ Phi
    got = _call(fn, (Phi.copy(), t.copy(), lam, beta), check)
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        raise CheckFailed(check, "return a pair (m, s2): the means and the variances of q.", "type")
    m, s2 = got
    mistakes = _mean_field_mistakes(post, precision, Phi, t, lam, beta)
    if part in (None, "m"):
        _diagnose(check, m, post.mean, mistakes["m"], "m")
    if part in (None, "s2"):
        _diagnose(check, s2, 1.0 / np.diag(precision), mistakes["s2"], "s2")
    what = {
        None: "q has the posterior mean and variances 1/diag(precision): smaller than the marginals.",
        "m": "q's means are the posterior mean m_N.",
        "s2": "q's variances are 1/diag(precision), smaller than the posterior's marginals.",
    }[part]
    _ok(what, hidden)


@_graded
def check_elbo_estimate(fn: Callable[..., float], hidden: int | None = None) -> None:
    """Check ``fn(m, L, Phi_b, t_b, N, lam, beta, eps) -> ELBO estimate`` on a mini-batch.

    The estimate is ``N/B * sum_i mean_s log N(t_i | phi_i^T w_s, 1/beta) - KL`` with the
    weight samples ``w_s = m + L eps_s`` (``eps`` has shape (S, D), so ``W = m + eps @ L.T``).
    Mistakes caught: the data term not scaled by N/B (mean or plain sum over the batch);
    ``eps @ L`` instead of ``eps @ L.T``; the KL's sign flipped; a sum over the samples instead
    of their mean.  ``hidden``: seed of other inputs.

    Raises
    ------
    CheckFailed
        With the hint of the diagnosed mistake.
    """
    check = "check_elbo_estimate"
    if hidden is None:
        Phi, t, m, S, lam, beta = _regression_problem(n=40)
        batch, n_samples = np.arange(5, 15), 7
        eps = np.random.default_rng(4).normal(size=(n_samples, Phi.shape[1]))
    else:
        Phi, t, m, S, lam, beta = _regression_problem(n=33, d=3, seed=hidden)
        batch, n_samples = np.arange(3, 14), 5
        eps = np.random.default_rng(hidden + 1).normal(size=(n_samples, Phi.shape[1]))
    L = np.linalg.cholesky(S)
    Phi_b, t_b = Phi[batch], t[batch]
    N, B = len(t), len(batch)
    kl = _elbo_parts(m, S, Phi, t, lam, beta)["kl"]

    def loglik(W):
        resid = t_b[None, :] - W @ Phi_b.T
        return 0.5 * math.log(beta / (2 * math.pi)) - 0.5 * beta * resid**2  # (S, B)

    ll = loglik(m + eps @ L.T)
    data = ll.sum(axis=1).mean()
    expected = N / B * data - kl
    mistakes = [
        (
            "no_n_scaling",
            data - kl,
            f"the data term is the batch's sum only: it must be scaled by N/B = {N}/{B} to estimate the "
            "sum over all N examples (otherwise the KL is weighted as if the data set had B examples).",
        ),
        (
            "batch_mean",
            data / B - kl,
            f"you averaged the log-likelihood over the batch: multiply the mean by N = {N} (sum over "
            "the data set), not 1.",
        ),
        (
            "kl_sign",
            N / B * data + kl,
            "the KL has the wrong sign: the estimate is N/B * data term - KL(q || p(w)).",
        ),
        (
            "l_not_transposed",
            N / B * loglik(m + eps @ L).sum(axis=1).mean() - kl,
            "the samples use eps @ L; with eps of shape (S, D) the reparameterisation w = m + L eps "
            "is W = m + eps @ L.T.",
        ),
        (
            "sum_over_samples",
            N / B * ll.sum() - kl,
            f"you summed over the {n_samples} weight samples: the Monte Carlo estimate of the "
            "expectation over q is their mean (sum over the batch, mean over the samples: "
            "log_lik.sum(axis=1).mean()).",
        ),
    ]
    got = _call(fn, (m.copy(), L.copy(), Phi_b.copy(), t_b.copy(), N, lam, beta, eps.copy()), check)
    _diagnose(check, got, expected, mistakes, "the ELBO estimate")
    _ok("the mini-batch estimate scales the data term by N/B and subtracts the KL.", hidden)
