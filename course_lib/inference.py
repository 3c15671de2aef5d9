"""Statistical inference with conjugate models: MLE, posterior, MAP, predictive, credible intervals.

Chapter 2 ("Bayes' theorem and inference") compares the maximum-likelihood estimate with
the Bayesian posterior on two models whose posterior has a closed form:

* :class:`BetaBernoulli` — a coin with unknown probability of heads ``theta``,
  prior Beta(theta | a, b), data x_n in {0, 1};
* :class:`GaussianMean` — Gaussian data with unknown mean ``mu`` and known variance
  ``sigma2``, prior N(mu | mu0, sigma2_0).

Both are immutable: ``update(x)`` returns the posterior as a new object of the same class
(conjugacy: the posterior is in the prior's family), so ``prior.update(x1).update(x2)``
equals ``prior.update(concatenate([x1, x2]))``.  :func:`grid_posterior` is the brute-force
check: it normalizes prior x likelihood numerically on a grid.  :func:`coverage_experiment`
measures how often credible and maximum-likelihood (Wald) intervals contain the true
``theta`` (the "valid for all n" row of the frequentist-vs-Bayesian table).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats
from scipy.special import logsumexp

from course_lib import validation as V

__all__ = [
    "BetaBernoulli",
    "GaussianMean",
    "bernoulli_mle",
    "gaussian_mle",
    "bernoulli_log_likelihood",
    "gaussian_mean_log_likelihood",
    "grid_posterior",
    "coverage_experiment",
]


# ---------------------------------------------------------------------------------------
# input checks
# ---------------------------------------------------------------------------------------
def _level(level) -> float:
    return V.probability(level, "level", low_open=True, high_open=True, hint="pass e.g. level=0.95")


def _binary_data(x) -> np.ndarray:
    x = np.asarray(x, dtype=float).ravel()
    if x.size == 0:
        raise ValueError("no observations: x is empty. Give at least one toss (0 = tails, 1 = heads).")
    if not np.all((x == 0) | (x == 1)):
        bad = np.unique(x[(x != 0) & (x != 1)])[:5]
        raise ValueError(
            f"Bernoulli data must be 0 or 1, got values such as {bad}; encode heads as 1, tails as 0."
        )
    return x


def _real_data(x) -> np.ndarray:
    x = np.asarray(x, dtype=float).ravel()
    if x.size == 0:
        raise ValueError("no observations: x is empty. Give at least one data point.")
    if not np.all(np.isfinite(x)):
        raise ValueError("x contains NaN or infinite values; clean or drop them.")
    return x


def _theta(theta) -> np.ndarray:
    theta = np.asarray(theta, dtype=float)
    if np.any(~np.isfinite(theta)) or np.any(theta < 0) or np.any(theta > 1):
        raise ValueError("theta is a probability: every value must lie in [0, 1].")
    return theta


# ---------------------------------------------------------------------------------------
# maximum likelihood and log-likelihoods
# ---------------------------------------------------------------------------------------
def bernoulli_mle(x) -> float:
    """theta_ML = (number of heads) / n, the argmax of sum_n log p(x_n | theta).

    Parameters
    ----------
    x : array_like of {0, 1}
        Tosses, ``1`` for heads.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        Empty or non-binary data.
    """
    return float(np.mean(_binary_data(x)))


def gaussian_mle(x) -> float:
    """mu_ML = the sample mean, the argmax of sum_n log N(x_n | mu, sigma2) for any sigma2.

    Raises
    ------
    ValueError
        Empty or non-finite data.
    """
    return float(np.mean(_real_data(x)))


def bernoulli_log_likelihood(theta, x) -> np.ndarray:
    """log p(X | theta) = k log theta + (n - k) log(1 - theta), for an array of theta.

    Parameters
    ----------
    theta : array_like
        Probabilities of heads in [0, 1] (``log 0 = -inf`` where the data rule theta out).
    x : array_like of {0, 1}
        Tosses.

    Returns
    -------
    ndarray, the shape of ``theta``

    Raises
    ------
    ValueError
        ``theta`` outside [0, 1]; empty or non-binary data.
    """
    theta = _theta(theta)
    x = _binary_data(x)
    k, n = x.sum(), x.size
    with np.errstate(divide="ignore", invalid="ignore"):
        heads = np.where(k > 0, k * np.log(theta), 0.0)
        tails = np.where(n - k > 0, (n - k) * np.log1p(-theta), 0.0)
    return heads + tails


def gaussian_mean_log_likelihood(mu, x, sigma2: float) -> np.ndarray:
    """log p(X | mu) = sum_n log N(x_n | mu, sigma2), for an array of mu: the likelihood of
    :class:`GaussianMean`, which takes variances.

    (Not :func:`course_lib.vi.gaussian_log_likelihood`, the per-example regression likelihood
    of weight samples with a noise *precision* beta.)

    Parameters
    ----------
    mu : array_like
        Candidate means.
    x : array_like
        Data.
    sigma2 : float
        Known noise variance (> 0).

    Returns
    -------
    ndarray, the shape of ``mu``

    Raises
    ------
    TypeError
        ``sigma2`` is not a number.
    ValueError
        Empty or non-finite data, non-positive ``sigma2``.
    """
    sigma2 = V.positive_float(sigma2, "sigma2", meaning="the known data variance")
    x = _real_data(x)
    mu = np.asarray(mu, dtype=float)
    n, s1, s2 = x.size, x.sum(), np.sum(x**2)  # sum_n (x_n - mu)^2 = s2 - 2 mu s1 + n mu^2
    return -0.5 * n * np.log(2 * np.pi * sigma2) - 0.5 * (s2 - 2 * mu * s1 + n * mu**2) / sigma2


def grid_posterior(theta, log_prior, log_likelihood) -> np.ndarray:
    """Brute-force Bayes: normalize prior x likelihood numerically on an even 1-D grid.

    p(theta | X) = p(X | theta) p(theta) / integral of p(X | theta) p(theta) dtheta, with
    the integral replaced by a Riemann sum.

    Parameters
    ----------
    theta : array_like, shape (G,)
        Evenly spaced grid.
    log_prior, log_likelihood : array_like, shape (G,)
        Log densities on the grid (any additive constants).

    Returns
    -------
    ndarray, shape (G,)
        The posterior density on the grid (``sum * dtheta == 1``).

    Raises
    ------
    ValueError
        A grid that is not even and increasing, arrays of different lengths, NaN values,
        or zero mass everywhere.
    """
    theta = np.asarray(theta, dtype=float)
    if theta.ndim != 1 or theta.size < 3:
        raise ValueError(f"theta must be a 1-D grid of at least 3 points, got shape {theta.shape}.")
    steps = np.diff(theta)
    if np.any(steps <= 0) or not np.allclose(steps, steps[0], rtol=1e-6):
        raise ValueError("theta must be increasing and evenly spaced (use np.linspace).")
    log_prior = np.asarray(log_prior, dtype=float)
    log_likelihood = np.asarray(log_likelihood, dtype=float)
    if log_prior.shape != theta.shape or log_likelihood.shape != theta.shape:
        raise ValueError(
            f"shape mismatch: theta has shape {theta.shape} but log_prior has shape {log_prior.shape} "
            f"and log_likelihood {log_likelihood.shape}; evaluate both on the grid."
        )
    log_joint = log_prior + log_likelihood
    if np.any(np.isnan(log_joint)) or not np.any(np.isfinite(log_joint)):
        raise ValueError("prior x likelihood is NaN or zero everywhere on the grid; check the grid's range.")
    return np.exp(log_joint - logsumexp(log_joint)) / steps[0]


# ---------------------------------------------------------------------------------------
# the coin: Beta-Bernoulli
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BetaBernoulli:
    """A Beta(theta | a, b) belief about a coin's probability of heads.

    Used as a prior, ``update(x)`` returns the posterior Beta(a + k, b + n - k) after k
    heads in n tosses.

    Parameters
    ----------
    a, b : float
        Positive pseudo-counts of heads and tails.

    Raises
    ------
    ValueError
        If ``a`` or ``b`` is not a positive finite number.

    Examples
    --------
    >>> post = BetaBernoulli(2, 2).update([1, 1, 1])
    >>> post
    BetaBernoulli(a=5.0, b=2.0)
    >>> round(post.map, 4), round(post.predictive(), 4)
    (0.8, 0.7143)
    """

    a: float = 1.0
    b: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "a", V.positive_float(self.a, "a", meaning="the prior pseudo-count of heads")
        )
        object.__setattr__(
            self, "b", V.positive_float(self.b, "b", meaning="the prior pseudo-count of tails")
        )

    # -- Bayes' theorem ---------------------------------------------------------------
    def update(self, x) -> BetaBernoulli:
        """The posterior after observing the tosses ``x`` (1 = heads, 0 = tails).

        Raises
        ------
        ValueError
            Empty or non-binary data.
        """
        x = _binary_data(x)
        k = float(x.sum())
        return BetaBernoulli(self.a + k, self.b + x.size - k)

    def update_counts(self, heads: int, tails: int) -> BetaBernoulli:
        """The posterior after ``heads`` heads and ``tails`` tails (counts may be zero).

        Raises
        ------
        TypeError
            Non-integer counts.
        ValueError
            Negative counts.
        """
        heads = V.nonnegative_int(heads, "heads", hint="a count of heads is 0 or more")
        tails = V.nonnegative_int(tails, "tails", hint="a count of tails is 0 or more")
        return BetaBernoulli(self.a + heads, self.b + tails)

    # -- summaries --------------------------------------------------------------------
    @property
    def mean(self) -> float:
        """E[theta] = a / (a + b)."""
        return self.a / (self.a + self.b)

    @property
    def var(self) -> float:
        """Var[theta] = ab / ((a + b)^2 (a + b + 1))."""
        s = self.a + self.b
        return self.a * self.b / (s * s * (s + 1.0))

    @property
    def map(self) -> float:
        """The mode (MAP estimate when this is a posterior).

        (a - 1) / (a + b - 2) when a, b >= 1; 0 or 1 when the density is unbounded at
        that end (a < 1 <= b, or b < 1 <= a).

        Raises
        ------
        ValueError
            For a = b = 1 (flat: every theta is a mode) and for a, b < 1 (two modes, at
            0 and at 1).
        """
        a, b = self.a, self.b
        if a >= 1 and b >= 1:
            if a == 1 and b == 1:
                raise ValueError("Beta(1, 1) is flat: every theta is a mode, so the MAP is not unique.")
            return (a - 1) / (a + b - 2)
        if a < 1 and b < 1:
            raise ValueError(f"Beta({a:g}, {b:g}) has two modes (theta = 0 and 1): the MAP is not unique.")
        return 0.0 if a < 1 else 1.0

    def pdf(self, theta) -> np.ndarray:
        """The density Beta(theta | a, b) at ``theta`` in [0, 1]."""
        return stats.beta(self.a, self.b).pdf(_theta(theta))

    def logpdf(self, theta) -> np.ndarray:
        """log Beta(theta | a, b) at ``theta`` in [0, 1]."""
        return stats.beta(self.a, self.b).logpdf(_theta(theta))

    def predictive(self) -> float:
        """p(x* = 1 | X) = integral of theta p(theta | X) dtheta = a / (a + b)."""
        return self.mean

    def credible_interval(self, level: float = 0.95) -> tuple[float, float]:
        """The central interval holding probability ``level`` (equal tails).

        Raises
        ------
        ValueError
            ``level`` not strictly between 0 and 1.
        """
        level = _level(level)
        lo, hi = stats.beta(self.a, self.b).ppf([(1 - level) / 2, (1 + level) / 2])
        return float(lo), float(hi)


# ---------------------------------------------------------------------------------------
# a Gaussian mean with known variance
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GaussianMean:
    """A Gaussian belief N(mu | mu0, sigma2_0) about the mean of N(x | mu, sigma2), sigma2 known.

    ``update(x)`` returns the posterior N(mu | mu_N, sigma2_N) with
    1 / sigma2_N = 1 / sigma2_0 + n / sigma2 and
    mu_N = sigma2_N (mu0 / sigma2_0 + sum_n x_n / sigma2)   (Bishop 2006, eqs. 2.141-2.142).

    Parameters
    ----------
    mu0 : float
        Mean of the belief about mu.
    sigma2_0 : float
        Variance of the belief about mu (> 0).
    sigma2 : float
        Known variance of the data (> 0).

    Raises
    ------
    ValueError
        Non-finite ``mu0`` or non-positive variances.

    Examples
    --------
    >>> GaussianMean(mu0=0.0, sigma2_0=1.0, sigma2=1.0).update([2.0])
    GaussianMean(mu0=1.0, sigma2_0=0.5, sigma2=1.0)
    """

    mu0: float = 0.0
    sigma2_0: float = 1.0
    sigma2: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "mu0", V.finite_float(self.mu0, "mu0", meaning="the prior mean"))
        object.__setattr__(
            self, "sigma2_0", V.positive_float(self.sigma2_0, "sigma2_0", meaning="the prior variance of mu")
        )
        object.__setattr__(
            self, "sigma2", V.positive_float(self.sigma2, "sigma2", meaning="the known data variance")
        )

    def update(self, x) -> GaussianMean:
        """The posterior after observing ``x``.

        Raises
        ------
        ValueError
            Empty or non-finite data.
        """
        x = _real_data(x)
        precision = 1.0 / self.sigma2_0 + x.size / self.sigma2
        sigma2_n = 1.0 / precision
        mu_n = sigma2_n * (self.mu0 / self.sigma2_0 + x.sum() / self.sigma2)
        return GaussianMean(mu_n, sigma2_n, self.sigma2)

    @property
    def mean(self) -> float:
        """E[mu] = mu0."""
        return self.mu0

    @property
    def var(self) -> float:
        """Var[mu] = sigma2_0."""
        return self.sigma2_0

    @property
    def map(self) -> float:
        """The mode, equal to the mean for a Gaussian."""
        return self.mu0

    def pdf(self, mu) -> np.ndarray:
        """The density N(mu | mu0, sigma2_0)."""
        return stats.norm(self.mu0, np.sqrt(self.sigma2_0)).pdf(np.asarray(mu, dtype=float))

    def logpdf(self, mu) -> np.ndarray:
        """log N(mu | mu0, sigma2_0)."""
        return stats.norm(self.mu0, np.sqrt(self.sigma2_0)).logpdf(np.asarray(mu, dtype=float))

    def predictive(self) -> tuple[float, float]:
        """Mean and variance of p(x* | X) = N(x* | mu0, sigma2_0 + sigma2)."""
        return self.mu0, self.sigma2_0 + self.sigma2

    def credible_interval(self, level: float = 0.95) -> tuple[float, float]:
        """The central interval of mu holding probability ``level``.

        Raises
        ------
        ValueError
            ``level`` not strictly between 0 and 1.
        """
        level = _level(level)
        lo, hi = stats.norm(self.mu0, np.sqrt(self.sigma2_0)).ppf([(1 - level) / 2, (1 + level) / 2])
        return float(lo), float(hi)


# ---------------------------------------------------------------------------------------
# frequentist vs Bayesian: interval coverage
# ---------------------------------------------------------------------------------------
def coverage_experiment(
    prior: BetaBernoulli, n: int, n_trials: int, rng: np.random.Generator, level: float = 0.95
) -> dict[str, float]:
    """How often do intervals from n tosses contain the coin's true theta?

    Each trial draws theta from ``prior``, tosses the coin ``n`` times and builds two
    intervals: the central Bayesian credible interval of the posterior, and the
    maximum-likelihood (Wald) interval theta_ML +- z sqrt(theta_ML (1 - theta_ML) / n).
    Averaged over theta drawn from the prior, the credible interval holds the truth with
    probability exactly ``level`` for every n; the Wald interval relies on n >> 1 and is
    empty-width (zero) whenever all tosses agree.

    Parameters
    ----------
    prior : BetaBernoulli
        Where the true theta comes from, and the prior of the Bayesian analysis.
    n : int
        Tosses per trial (>= 1).
    n_trials : int
        Number of simulated experiments (>= 1).
    rng : numpy.random.Generator
        Source of randomness.
    level : float, default 0.95
        Nominal coverage.

    Returns
    -------
    dict
        ``"bayes"`` and ``"wald"``: fraction of trials whose interval contains theta;
        ``"mle_at_edge"``: fraction of trials with theta_ML equal to 0 or 1.

    Raises
    ------
    TypeError
        ``prior`` not a :class:`BetaBernoulli`, ``rng`` not a Generator, a non-integer count.
    ValueError
        Non-positive ``n`` or ``n_trials``, ``level`` outside (0, 1).
    """
    if not isinstance(prior, BetaBernoulli):
        raise TypeError(
            f"prior must be a BetaBernoulli, got {type(prior).__name__}; pass e.g. BetaBernoulli(1, 1)."
        )
    n = V.positive_int(n, "n")
    n_trials = V.positive_int(n_trials, "n_trials")
    if not isinstance(rng, np.random.Generator):
        raise TypeError("rng must be a numpy.random.Generator; use np.random.default_rng(seed).")
    level = _level(level)
    theta = rng.beta(prior.a, prior.b, size=n_trials)
    k = rng.binomial(n, theta)
    post = stats.beta(prior.a + k, prior.b + n - k)
    lo, hi = post.ppf((1 - level) / 2), post.ppf((1 + level) / 2)
    p_ml = k / n
    half = stats.norm.ppf((1 + level) / 2) * np.sqrt(p_ml * (1 - p_ml) / n)
    return {
        "bayes": float(np.mean((lo <= theta) & (theta <= hi))),
        "wald": float(np.mean((p_ml - half <= theta) & (theta <= p_ml + half))),
        "mle_at_edge": float(np.mean((k == 0) | (k == n))),
    }
