"""Tests for course_lib.inference: closed forms against brute force, and bad input."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from course_lib.inference import (
    BetaBernoulli,
    GaussianMean,
    bernoulli_log_likelihood,
    bernoulli_mle,
    coverage_experiment,
    gaussian_mean_log_likelihood,
    gaussian_mle,
    grid_posterior,
)

THETA = np.linspace(0.0, 1.0, 20001)


# -- maximum likelihood -------------------------------------------------------------------
def test_bernoulli_mle_is_argmax_of_log_likelihood():
    x = [1, 0, 1, 1, 0, 1, 1]
    assert bernoulli_mle(x) == pytest.approx(5 / 7)
    assert THETA[np.argmax(bernoulli_log_likelihood(THETA, x))] == pytest.approx(5 / 7, abs=1e-4)
    assert bernoulli_mle([1, 1, 1]) == 1.0  # the small-n overconfidence of the MLE


def test_bernoulli_log_likelihood_edges():
    ll = bernoulli_log_likelihood([0.0, 0.5, 1.0], [1, 1, 1])
    assert ll[0] == -np.inf and ll[2] == 0.0
    assert ll[1] == pytest.approx(3 * np.log(0.5))


def test_gaussian_mean_log_likelihood_matches_scipy():
    x = np.array([0.3, -1.2, 2.5])
    mu = np.array([-1.0, 0.0, 0.7])
    expected = [stats.norm(m, 1.5).logpdf(x).sum() for m in mu]
    np.testing.assert_allclose(gaussian_mean_log_likelihood(mu, x, sigma2=2.25), expected, rtol=1e-12)
    assert gaussian_mle(x) == pytest.approx(x.mean())


# -- Beta-Bernoulli -----------------------------------------------------------------------
def test_beta_bernoulli_posterior_matches_grid():
    prior = BetaBernoulli(2.0, 3.0)
    x = [1, 1, 0, 1, 1, 1, 0, 1]
    post = prior.update(x)
    assert (post.a, post.b) == (8.0, 5.0)
    theta = THETA[1:-1]
    dens = grid_posterior(theta, prior.logpdf(theta), bernoulli_log_likelihood(theta, x))
    np.testing.assert_allclose(dens, post.pdf(theta), atol=1e-3)
    dt = theta[1] - theta[0]
    assert np.sum(theta * dens) * dt == pytest.approx(post.mean, abs=1e-6)
    assert theta[np.argmax(dens)] == pytest.approx(post.map, abs=1e-4)
    # predictive p(x*=1|X) = E[theta | X]
    assert post.predictive() == pytest.approx(np.sum(theta * dens) * dt, abs=1e-6)
    lo, hi = post.credible_interval(0.9)
    cdf = np.cumsum(dens) * dt
    assert np.interp(lo, theta, cdf) == pytest.approx(0.05, abs=1e-3)
    assert np.interp(hi, theta, cdf) == pytest.approx(0.95, abs=1e-3)


def test_beta_bernoulli_sequential_equals_batch():
    prior = BetaBernoulli(0.5, 0.5)
    assert prior.update([1, 0]).update([1, 1, 0]) == prior.update([1, 0, 1, 1, 0])
    assert prior.update_counts(3, 2) == prior.update([1, 0, 1, 1, 0])
    assert prior.update_counts(0, 0) == prior


def test_beta_bernoulli_summaries():
    post = BetaBernoulli(2, 2).update([1, 1, 1])
    assert post.map == pytest.approx(0.8) and post.mean == pytest.approx(5 / 7)
    assert post.var == pytest.approx(stats.beta(5, 2).var())
    assert BetaBernoulli(1, 1).update([1, 1, 1]).map == 1.0  # flat prior: MAP = MLE
    assert BetaBernoulli(0.5, 2.0).map == 0.0 and BetaBernoulli(2.0, 0.5).map == 1.0


def test_beta_bernoulli_posterior_concentrates():
    rng = np.random.default_rng(0)
    x = (rng.random(10_000) < 0.3).astype(float)
    stds = [np.sqrt(BetaBernoulli(1, 1).update(x[:n]).var) for n in (10, 100, 1000, 10_000)]
    assert all(s1 > s2 for s1, s2 in zip(stds, stds[1:]))
    post = BetaBernoulli(1, 1).update(x)
    assert abs(post.map - bernoulli_mle(x)) < 1e-3 and abs(post.mean - 0.3) < 0.02


# -- Gaussian mean ------------------------------------------------------------------------
def test_gaussian_mean_posterior_matches_grid():
    prior = GaussianMean(mu0=1.0, sigma2_0=4.0, sigma2=2.0)
    x = np.array([2.1, 3.5, 2.9, 4.0])
    post = prior.update(x)
    assert 1 / post.sigma2_0 == pytest.approx(1 / 4.0 + 4 / 2.0)
    mu = np.linspace(-5, 10, 30001)
    dens = grid_posterior(mu, prior.logpdf(mu), gaussian_mean_log_likelihood(mu, x, 2.0))
    np.testing.assert_allclose(dens, post.pdf(mu), atol=1e-6)
    assert mu[np.argmax(dens)] == pytest.approx(post.map, abs=1e-3)
    m, v = post.predictive()
    assert (m, v) == (pytest.approx(post.mu0), pytest.approx(post.sigma2_0 + 2.0))
    # predictive by brute force: integrate N(x* | mu, sigma2) against the posterior
    xs = 5.0
    brute = np.sum(stats.norm(mu, np.sqrt(2.0)).pdf(xs) * dens) * (mu[1] - mu[0])
    assert brute == pytest.approx(stats.norm(m, np.sqrt(v)).pdf(xs), rel=1e-5)
    lo, hi = post.credible_interval()
    assert stats.norm(post.mu0, np.sqrt(post.sigma2_0)).cdf(hi) == pytest.approx(0.975)
    assert lo < post.mean < hi


def test_gaussian_mean_limits():
    x = np.array([2.0, 4.0])
    vague = GaussianMean(0.0, 1e8, 1.0).update(x)
    assert vague.map == pytest.approx(gaussian_mle(x), abs=1e-6)  # data win
    stubborn = GaussianMean(0.0, 1e-8, 1.0).update(x)
    assert stubborn.map == pytest.approx(0.0, abs=1e-6)  # prior wins
    assert GaussianMean(0, 1, 1).update([1.0]).update([3.0]) == GaussianMean(0, 1, 1).update([1.0, 3.0])


# -- grid posterior -----------------------------------------------------------------------
def test_grid_posterior_integrates_to_one():
    theta = np.linspace(-3, 3, 601)
    dens = grid_posterior(theta, np.zeros_like(theta), -0.5 * theta**2 + 100.0)
    assert dens.sum() * (theta[1] - theta[0]) == pytest.approx(1.0)


# -- coverage -----------------------------------------------------------------------------
def test_coverage_bayes_is_nominal_for_every_n_wald_is_not():
    rng = np.random.default_rng(0)
    small = coverage_experiment(BetaBernoulli(2, 2), n=3, n_trials=40_000, rng=rng)
    large = coverage_experiment(BetaBernoulli(2, 2), n=1000, n_trials=40_000, rng=rng)
    assert small["bayes"] == pytest.approx(0.95, abs=0.006)
    assert large["bayes"] == pytest.approx(0.95, abs=0.006)
    assert small["wald"] < 0.85  # n = 3: the ML interval is far too narrow
    assert large["wald"] == pytest.approx(0.95, abs=0.01)
    assert small["mle_at_edge"] > 0.2 and large["mle_at_edge"] == 0.0


# -- bad input ----------------------------------------------------------------------------
@pytest.mark.parametrize("a", [0.0, -1.0, np.inf, np.nan])
def test_beta_non_positive_hyperparameters(a):
    with pytest.raises(
        ValueError, match=r"a \(the prior pseudo-count of heads\) must be a positive finite number"
    ):
        BetaBernoulli(a, 1.0)
    with pytest.raises(
        ValueError, match=r"b \(the prior pseudo-count of tails\) must be a positive finite number"
    ):
        BetaBernoulli(1.0, a)


def test_beta_hyperparameter_not_a_number():
    with pytest.raises(
        TypeError,
        match=r"a \(the prior pseudo-count of heads\) must be a positive finite number, "
        r"got '1' \(str\); pass a number such as a=1\.0",
    ):
        BetaBernoulli("1", 1.0)


@pytest.mark.parametrize("x", [[0, 1, 2], [0.5], [1, -1], [np.nan]])
def test_non_binary_data(x):
    with pytest.raises(ValueError, match="Bernoulli data must be 0 or 1"):
        BetaBernoulli().update(x)
    with pytest.raises(ValueError, match="Bernoulli data must be 0 or 1"):
        bernoulli_mle(x)


def test_empty_data():
    with pytest.raises(ValueError, match="no observations: x is empty"):
        BetaBernoulli().update([])
    with pytest.raises(ValueError, match="no observations: x is empty"):
        bernoulli_mle([])
    with pytest.raises(ValueError, match="no observations: x is empty"):
        GaussianMean().update(np.array([]))
    with pytest.raises(ValueError, match="no observations: x is empty"):
        gaussian_mle([])


@pytest.mark.parametrize("theta", [-0.1, 1.5, [0.2, 2.0], np.nan])
def test_probability_outside_unit_interval(theta):
    with pytest.raises(ValueError, match=r"theta is a probability: every value must lie in \[0, 1\]"):
        bernoulli_log_likelihood(theta, [1, 0])
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
        BetaBernoulli().pdf(theta)


@pytest.mark.parametrize("level", [0.0, 1.0, 1.5, -0.2])
def test_bad_credible_level(level):
    with pytest.raises(
        ValueError, match=r"level must be a probability in \(0, 1\), got .*; pass e\.g\. level=0\.95"
    ):
        BetaBernoulli().credible_interval(level)
    with pytest.raises(
        ValueError, match=r"level must be a probability in \(0, 1\), got .*; pass e\.g\. level=0\.95"
    ):
        GaussianMean().credible_interval(level)


def test_map_not_unique():
    with pytest.raises(ValueError, match="flat: every theta is a mode"):
        BetaBernoulli(1, 1).map
    with pytest.raises(ValueError, match="two modes"):
        BetaBernoulli(0.5, 0.5).map


def test_bad_counts():
    with pytest.raises(
        ValueError, match="heads must be a non-negative integer, got -1; a count of heads is 0"
    ):
        BetaBernoulli().update_counts(-1, 2)
    with pytest.raises(TypeError, match="tails must be a non-negative integer, got 2.5"):
        BetaBernoulli().update_counts(1, 2.5)
    assert BetaBernoulli().update_counts(np.int64(3), 0).a == 4.0


@pytest.mark.parametrize("var", [0.0, -2.0, np.inf])
def test_gaussian_non_positive_variances(var):
    with pytest.raises(
        ValueError, match=r"sigma2_0 \(the prior variance of mu\) must be a positive finite number"
    ):
        GaussianMean(0.0, var, 1.0)
    with pytest.raises(
        ValueError, match=r"sigma2 \(the known data variance\) must be a positive finite number"
    ):
        GaussianMean(0.0, 1.0, var)
    with pytest.raises(
        ValueError, match=r"sigma2 \(the known data variance\) must be a positive finite number"
    ):
        gaussian_mean_log_likelihood(0.0, [1.0], var)


def test_gaussian_bad_mean_and_data():
    with pytest.raises(ValueError, match=r"mu0 \(the prior mean\) must be a finite number"):
        GaussianMean(np.nan, 1.0, 1.0)
    with pytest.raises(ValueError, match="x contains NaN or infinite"):
        GaussianMean().update([1.0, np.inf])


def test_grid_posterior_bad_input():
    theta = np.linspace(0, 1, 11)
    with pytest.raises(ValueError, match="increasing and evenly spaced"):
        grid_posterior(theta[::-1], np.zeros(11), np.zeros(11))
    with pytest.raises(ValueError, match="shape mismatch: theta has shape"):
        grid_posterior(theta, np.zeros(11), np.zeros(10))
    with pytest.raises(ValueError, match="zero everywhere"):
        grid_posterior(theta, np.zeros(11), np.full(11, -np.inf))
    with pytest.raises(ValueError, match="at least 3 points"):
        grid_posterior([0.0, 1.0], [0.0, 0.0], [0.0, 0.0])


def test_coverage_bad_input():
    rng = np.random.default_rng(0)
    with pytest.raises(TypeError, match="prior must be a BetaBernoulli"):
        coverage_experiment(GaussianMean(), 3, 10, rng)
    with pytest.raises(ValueError, match="n must be a positive integer"):
        coverage_experiment(BetaBernoulli(), 0, 10, rng)
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        coverage_experiment(BetaBernoulli(), 3, 10, 42)
