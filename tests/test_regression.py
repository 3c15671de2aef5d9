"""Tests for course_lib.regression: closed forms against brute force, and bad input."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit
from scipy.stats import multivariate_normal

from course_lib.regression import (
    BayesianLinearRegression,
    GridPosterior2D,
    least_squares,
    logistic_grid_posterior,
    logistic_log_likelihood,
    logistic_predictive,
    polynomial_features,
    gaussian_features,
    sinusoidal_data,
)


@pytest.fixture
def line_data():
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, size=6)
    t = -0.3 + 0.5 * x + rng.normal(0, 0.2, size=x.size)
    return polynomial_features(x, 1), t


@pytest.fixture
def two_clouds():
    rng = np.random.default_rng(2)
    X = np.vstack([rng.normal([1.5, 1.0], 0.8, (5, 2)), rng.normal([-1.5, -1.0], 0.8, (5, 2))])
    t = np.r_[np.ones(5), np.zeros(5)]
    return X, t


def gaussian_line_grid(Phi, t, lam, beta, lim=3.0, n=301):
    """Brute force: the linear-Gaussian log joint on a grid over (w0, w1)."""
    w = np.linspace(-lim, lim, n)
    W0, W1 = np.meshgrid(w, w)
    pts = np.column_stack([W0.ravel(), W1.ravel()])
    resid = t[None, :] - pts @ Phi.T
    log_lik = 0.5 * t.size * np.log(beta / (2 * np.pi)) - 0.5 * beta * np.sum(resid**2, axis=1)
    log_prior = np.log(lam / (2 * np.pi)) - 0.5 * lam * np.sum(pts**2, axis=1)
    return GridPosterior2D(w, w, (log_lik + log_prior).reshape(W0.shape))


# -- polynomial_features ----------------------------------------------------------------
def test_polynomial_features_columns_are_powers():
    x = np.array([-2.0, 0.5, 3.0])
    Phi = polynomial_features(x, 3)
    assert Phi.shape == (3, 4)
    np.testing.assert_allclose(Phi, np.column_stack([np.ones(3), x, x**2, x**3]))
    assert polynomial_features(x, 0).shape == (3, 1)


@pytest.mark.parametrize(
    "degree, err", [(-1, ValueError), (1.5, TypeError), (True, TypeError), ("2", TypeError)]
)
def test_polynomial_features_bad_degree(degree, err):
    with pytest.raises(err, match="degree must be a non-negative integer"):
        polynomial_features([1.0, 2.0], degree)


def test_polynomial_features_bad_x():
    with pytest.raises(ValueError, match="x must be a 1-D array"):
        polynomial_features(np.ones((3, 2)), 2)
    with pytest.raises(ValueError, match="NaN or infinite"):
        polynomial_features([1.0, np.nan], 2)


# -- least squares ------------------------------------------------------------------------
def test_least_squares_recovers_exact_line_and_is_overconfident():
    x = np.array([0.0, 1.0, 2.0])
    w_ml, beta_ml = least_squares(polynomial_features(x, 1), 1.0 + 2.0 * x)
    np.testing.assert_allclose(w_ml, [1.0, 2.0], atol=1e-12)
    assert beta_ml == np.inf  # zero residual: the ML noise precision is infinite


def test_least_squares_noise_precision(line_data):
    Phi, t = line_data
    w_ml, beta_ml = least_squares(Phi, t)
    np.testing.assert_allclose(Phi.T @ (t - Phi @ w_ml), 0.0, atol=1e-12)  # normal equations
    assert beta_ml == pytest.approx(1.0 / np.mean((t - Phi @ w_ml) ** 2))


# -- Bayesian linear regression: closed forms vs brute force ------------------------------
def test_posterior_matches_grid_brute_force(line_data):
    Phi, t = line_data
    model = BayesianLinearRegression(prior_precision=2.0, beta=25.0).fit(Phi, t)
    grid = gaussian_line_grid(Phi, t, 2.0, 25.0)
    assert grid.edge_mass < 1e-8
    np.testing.assert_allclose(model.mean, grid.mean, atol=1e-4)
    np.testing.assert_allclose(model.cov, grid.cov, atol=1e-4)
    np.testing.assert_allclose(grid.map, model.mean, atol=0.02)  # grid step 0.02


def test_log_evidence_matches_marginal_gaussian_and_grid(line_data):
    Phi, t = line_data
    lam, beta = 2.0, 25.0
    model = BayesianLinearRegression(lam, beta).fit(Phi, t)
    # t ~ N(0, beta^-1 I + lam^-1 Phi Phi^T) once w is integrated out
    C = np.eye(t.size) / beta + Phi @ Phi.T / lam
    exact = multivariate_normal(mean=np.zeros(t.size), cov=C).logpdf(t)
    assert model.log_evidence() == pytest.approx(exact, abs=1e-9)
    assert model.log_evidence() == pytest.approx(gaussian_line_grid(Phi, t, lam, beta).log_evidence, abs=1e-4)


def test_log_evidence_prefers_the_true_degree():
    rng = np.random.default_rng(3)
    x = np.linspace(-1, 1, 30)
    t = 1.0 - 2.0 * x**2 + rng.normal(0, 0.1, x.size)
    ev = [
        BayesianLinearRegression(1.0, 100.0).fit(polynomial_features(x, d), t).log_evidence()
        for d in range(6)
    ]
    assert int(np.argmax(ev)) == 2


def test_predict_std_matches_monte_carlo(line_data):
    Phi, t = line_data
    model = BayesianLinearRegression(prior_precision=2.0, beta=25.0).fit(Phi, t)
    Phi_test = polynomial_features(np.linspace(-3, 3, 7), 1)
    mean, std = model.predict(Phi_test, return_std=True)
    np.testing.assert_allclose(model.predict(Phi_test), mean)
    W = model.sample_weights(200_000, np.random.default_rng(0))
    f = W @ Phi_test.T
    np.testing.assert_allclose(f.mean(axis=0), mean, atol=0.01)  # the ensemble average
    np.testing.assert_allclose(np.sqrt(f.var(axis=0) + 1 / 25.0), std, rtol=0.01)
    assert std[0] > std[3] and std[-1] > std[3]  # error bars widen away from the data
    assert np.all(std >= 1 / np.sqrt(25.0))


def test_sample_weights_moments(line_data):
    Phi, t = line_data
    model = BayesianLinearRegression(prior_precision=1.0, beta=10.0).fit(Phi, t)
    W = model.sample_weights(100_000, np.random.default_rng(1))
    assert W.shape == (100_000, 2)
    np.testing.assert_allclose(W.mean(axis=0), model.mean, atol=0.01)
    np.testing.assert_allclose(np.cov(W.T), model.cov, atol=0.01 * np.abs(model.cov).max() + 1e-4)


def test_limits_prior_and_ml():
    x = np.linspace(-1, 1, 50)
    Phi, t = polynomial_features(x, 2), 0.5 + x - x**2
    strong = BayesianLinearRegression(prior_precision=1e8, beta=1.0).fit(Phi, t)
    np.testing.assert_allclose(strong.mean, 0.0, atol=1e-6)  # the prior wins
    weak = BayesianLinearRegression(prior_precision=1e-8, beta=1e4).fit(Phi, t)
    np.testing.assert_allclose(weak.mean, least_squares(Phi, t)[0], atol=1e-6)  # the data win


def test_repr():
    model = BayesianLinearRegression(1.0, 2.0)
    assert model.prior_precision == 1.0 and model.beta == 2.0
    assert repr(model).startswith("BayesianLinearRegression(prior_precision=1, beta=2")
    assert "unfitted" in repr(model)
    model.fit(np.ones((3, 1)), np.zeros(3))
    assert "D=1, N=3" in repr(model)


# -- Bayesian linear regression: bad input ----------------------------------------------
@pytest.mark.parametrize("name", ["prior_precision", "beta"])
@pytest.mark.parametrize("value", [0.0, -1.0, np.inf, np.nan])
def test_non_positive_precision(name, value):
    kwargs = {"prior_precision": 1.0, "beta": 1.0, name: value}
    with pytest.raises(ValueError, match=rf"{name} \(the .* precision\) must be a positive finite number"):
        BayesianLinearRegression(**kwargs)


@pytest.mark.parametrize("value", ["1", None, [1.0], True])
def test_precision_not_a_number(value):
    with pytest.raises(TypeError, match="prior_precision .* must be a positive finite number"):
        BayesianLinearRegression(prior_precision=value, beta=1.0)


def test_fit_empty_data():
    with pytest.raises(ValueError, match="Phi is empty"):
        BayesianLinearRegression(1.0, 1.0).fit(np.empty((0, 2)), np.empty(0))


def test_fit_shape_mismatch():
    with pytest.raises(ValueError, match="shape mismatch: the design matrix has 3 rows but t has 2"):
        BayesianLinearRegression(1.0, 1.0).fit(np.ones((3, 2)), np.ones(2))
    with pytest.raises(ValueError, match="Phi must be a 2-D design matrix"):
        BayesianLinearRegression(1.0, 1.0).fit(np.ones(3), np.ones(3))
    with pytest.raises(ValueError, match="t must be a 1-D array"):
        BayesianLinearRegression(1.0, 1.0).fit(np.ones((3, 2)), np.ones((3, 1)))


def test_fit_non_finite():
    with pytest.raises(ValueError, match="Phi contains NaN"):
        BayesianLinearRegression(1.0, 1.0).fit(np.array([[1.0, np.nan]]), np.ones(1))
    with pytest.raises(ValueError, match="t contains NaN"):
        BayesianLinearRegression(1.0, 1.0).fit(np.ones((1, 2)), np.array([np.inf]))


def test_use_before_fit():
    model = BayesianLinearRegression(1.0, 1.0)
    for call in (
        lambda: model.predict(np.ones((1, 2))),
        model.log_evidence,
        lambda: model.sample_weights(1, np.random.default_rng()),
    ):
        with pytest.raises(RuntimeError, match=r"call fit\(Phi, t\) first"):
            call()


def test_predict_wrong_number_of_features(line_data):
    model = BayesianLinearRegression(1.0, 1.0).fit(*line_data)
    with pytest.raises(ValueError, match="fitted with D=2 features but Phi has 3 columns"):
        model.predict(np.ones((4, 3)))


def test_sample_weights_bad_arguments(line_data):
    model = BayesianLinearRegression(1.0, 1.0).fit(*line_data)
    with pytest.raises(ValueError, match="n must be a positive integer"):
        model.sample_weights(0, np.random.default_rng())
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        model.sample_weights(3, 0)


def test_least_squares_bad_input():
    with pytest.raises(ValueError, match="shape mismatch"):
        least_squares(np.ones((3, 2)), np.ones(4))


# -- grid posterior -----------------------------------------------------------------------
def test_grid_posterior_normalizes_a_gaussian():
    w = np.linspace(-8, 8, 321)
    W1, W2 = np.meshgrid(w, w)
    mu, cov = np.array([0.5, -1.0]), np.array([[1.0, 0.6], [0.6, 2.0]])
    log_joint = multivariate_normal(mu, cov).logpdf(np.dstack([W1, W2])) + 7.0  # any constant
    post = GridPosterior2D(w, w, log_joint)
    assert post.probs.sum() == pytest.approx(1.0)
    assert post.density.sum() * post.cell_area == pytest.approx(1.0)
    assert post.log_evidence == pytest.approx(7.0, abs=1e-4)
    np.testing.assert_allclose(post.mean, mu, atol=1e-3)
    np.testing.assert_allclose(post.cov, cov, atol=2e-3)
    np.testing.assert_allclose(post.map, mu, atol=0.05)
    S = post.sample(50_000, np.random.default_rng(0))
    np.testing.assert_allclose(S.mean(axis=0), mu, atol=0.03)
    np.testing.assert_allclose(np.cov(S.T), cov, atol=0.05)


def test_grid_posterior_edge_mass_flags_a_narrow_grid():
    w = np.linspace(-1, 1, 41)
    W1, W2 = np.meshgrid(w, w)
    post = GridPosterior2D(w, w, -0.5 * (W1**2 + W2**2))
    assert post.edge_mass > 0.05


def test_grid_posterior_bad_input():
    w = np.linspace(-1, 1, 5)
    with pytest.raises(ValueError, match=r"log_joint must have shape \(len\(w2\), len\(w1\)\) = \(5, 5\)"):
        GridPosterior2D(w, w, np.zeros((4, 5)))
    with pytest.raises(ValueError, match="w1 must be finite, increasing and evenly spaced"):
        GridPosterior2D(np.array([0.0, 1.0, 3.0, 4.0, 5.0]), w, np.zeros((5, 5)))
    with pytest.raises(ValueError, match="w2 must be a 1-D grid of at least 3 points"):
        GridPosterior2D(w, np.array([0.0, 1.0]), np.zeros((2, 5)))
    with pytest.raises(ValueError, match="-inf everywhere"):
        GridPosterior2D(w, w, np.full((5, 5), -np.inf))
    with pytest.raises(ValueError, match="NaN or \\+inf"):
        GridPosterior2D(w, w, np.full((5, 5), np.nan))
    post = GridPosterior2D(w, w, np.zeros((5, 5)))
    with pytest.raises(ValueError, match="n must be a positive integer"):
        post.sample(-2, np.random.default_rng())


# -- logistic regression on a grid --------------------------------------------------------
def test_logistic_log_likelihood_matches_direct_formula(two_clouds):
    X, t = two_clouds
    W = np.array([[0.3, -0.2], [2.0, 1.0], [0.0, 0.0]])
    p = expit(W @ X.T)
    direct = np.sum(t * np.log(p) + (1 - t) * np.log(1 - p), axis=1)
    np.testing.assert_allclose(logistic_log_likelihood(W, X, t), direct, rtol=1e-12)
    assert logistic_log_likelihood(np.zeros(2), X, t)[0] == pytest.approx(t.size * np.log(0.5))


def test_logistic_grid_posterior_matches_importance_sampling(two_clouds):
    X, t = two_clouds
    lam = 0.5
    post = logistic_grid_posterior(X, t, prior_precision=lam, lim=8.0, n_grid=161)
    assert post.edge_mass < 1e-4
    # independent brute force: sample the prior, weight by the likelihood
    rng = np.random.default_rng(5)
    W = rng.normal(0, 1 / np.sqrt(lam), size=(400_000, 2))
    logw = logistic_log_likelihood(W, X, t)
    wts = np.exp(logw - logw.max())
    wts /= wts.sum()
    np.testing.assert_allclose(post.mean, wts @ W, atol=0.05)
    # the evidence: E_prior[p(t | w)]
    log_ev_is = np.log(np.mean(np.exp(logw - logw.max()))) + logw.max()
    assert post.log_evidence == pytest.approx(log_ev_is, abs=0.02)
    assert post.mean[0] > 0 and post.mean[1] > 0  # class 1 lies up and to the right


def test_logistic_predictive_mc_vs_grid_vs_plugin(two_clouds):
    X, t = two_clouds
    post = logistic_grid_posterior(X, t, prior_precision=0.5, n_grid=161)
    X_test = np.array([[1.0, 1.0], [-6.0, 8.0], [0.0, 0.0]])
    quad = logistic_predictive(X_test, post.points, post.probs.ravel())
    mc = logistic_predictive(X_test, post.sample(20_000, np.random.default_rng(0)))
    np.testing.assert_allclose(mc, quad, atol=0.02)
    plug = logistic_predictive(X_test, post.map)
    np.testing.assert_allclose(plug, expit(X_test @ post.map))
    assert quad[2] == pytest.approx(0.5, abs=1e-9)  # no bias: x = 0 is always 50/50
    # far from the data along the boundary the ensemble is less confident than the plug-in
    assert abs(quad[1] - 0.5) < abs(plug[1] - 0.5)


def test_logistic_predictive_small_chunks_agree(two_clouds):
    X, _ = two_clouds
    W = np.random.default_rng(0).normal(size=(50, 2))
    np.testing.assert_allclose(logistic_predictive(X, W, chunk=3), logistic_predictive(X, W))


def test_logistic_bad_input(two_clouds):
    X, t = two_clouds
    with pytest.raises(ValueError, match="labels t must be 0 or 1"):
        logistic_grid_posterior(X, t * 2, prior_precision=1.0)
    with pytest.raises(ValueError, match=r"X must have shape \(N, 2\)"):
        logistic_grid_posterior(X[:, :1], t, prior_precision=1.0)
    with pytest.raises(ValueError, match="X is empty"):
        logistic_grid_posterior(np.empty((0, 2)), np.empty(0), prior_precision=1.0)
    with pytest.raises(ValueError, match="shape mismatch: X has 10 points"):
        logistic_grid_posterior(X, t[:4], prior_precision=1.0)
    with pytest.raises(ValueError, match="prior_precision .* must be a positive finite number"):
        logistic_grid_posterior(X, t, prior_precision=0.0)
    with pytest.raises(ValueError, match="lim .* must be a positive finite number"):
        logistic_grid_posterior(X, t, prior_precision=1.0, lim=-2.0)
    with pytest.raises(ValueError, match="n_grid must be an integer >= 3"):
        logistic_grid_posterior(X, t, prior_precision=1.0, n_grid=2)
    with pytest.raises(ValueError, match=r"weights must have shape \(2,\) or \(S, 2\)"):
        logistic_log_likelihood(np.ones((3, 3)), X, t)
    with pytest.raises(ValueError, match="shape mismatch: 2 weight vectors but 3 probs"):
        logistic_predictive(X, np.ones((2, 2)), probs=[0.2, 0.3, 0.5])
    with pytest.raises(ValueError, match="probs must be non-negative and sum to one"):
        logistic_predictive(X, np.ones((2, 2)), probs=[0.2, 0.3])
    with pytest.raises(ValueError, match=r"X must have shape \(M, 2\)"):
        logistic_predictive(np.ones(3), np.ones((2, 2)))


# -- toy data and Gaussian features -------------------------------------------------------
def test_sinusoidal_data_respects_gap_and_noise():
    x, t = sinusoidal_data(20_000, np.random.default_rng(0), noise_std=0.1, gap=(0.3, 0.6))
    assert x.min() >= 0 and x.max() <= 1 and not np.any((x > 0.3) & (x < 0.6))
    assert np.std(t - np.sin(2 * np.pi * x)) == pytest.approx(0.1, rel=0.03)
    x5, _ = sinusoidal_data(5, np.random.default_rng(3))
    x8, _ = sinusoidal_data(8, np.random.default_rng(3))
    assert sinusoidal_data(4, np.random.default_rng(3), gap=None)[0].shape == (4,)
    assert x5.shape == (5,) and x8.shape == (8,)


def test_gaussian_features_shape_and_values():
    Phi = gaussian_features(np.array([0.0, 0.5]), centers=[0.0, 0.5, 1.0], width=0.5)
    assert Phi.shape == (2, 4)
    np.testing.assert_allclose(Phi[:, 0], 1.0)
    assert Phi[0, 1] == pytest.approx(1.0) and Phi[0, 2] == pytest.approx(np.exp(-0.5))
    assert gaussian_features(np.zeros(3), [0.0], 1.0, bias=False).shape == (3, 1)


def test_error_bars_grow_in_the_gap():
    x, t = sinusoidal_data(25, np.random.default_rng(0))
    centers = np.linspace(0, 1, 9)
    model = BayesianLinearRegression(2.0, 25.0).fit(gaussian_features(x, centers, 0.1), t)
    _, std = model.predict(gaussian_features(np.array([0.15, 0.5, 0.85]), centers, 0.1), return_std=True)
    assert std[1] > 1.5 * max(std[0], std[2])


def test_toy_data_and_features_bad_input():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="n must be a positive integer"):
        sinusoidal_data(0, rng)
    with pytest.raises(ValueError, match="noise_std .* must be a positive finite number"):
        sinusoidal_data(5, rng, noise_std=0.0)
    with pytest.raises(ValueError, match=r"gap must be an interval \(lo, hi\)"):
        sinusoidal_data(5, rng, gap=(0.7, 0.2))
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        sinusoidal_data(5, 0)
    with pytest.raises(ValueError, match="width .* must be a positive finite number"):
        gaussian_features([0.1], [0.0], width=-1.0)
    with pytest.raises(ValueError, match="centers is empty"):
        gaussian_features([0.1], [], width=1.0)
    with pytest.raises(ValueError, match="x must be a 1-D array of finite numbers"):
        gaussian_features(np.ones((2, 2)), [0.0], width=1.0)
