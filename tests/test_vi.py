"""Tests for course_lib.vi: Gaussian families, KL, the ELBO identity, unbiased gradients, fitting."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from course_lib import regression as reg
from course_lib import vi


@pytest.fixture(scope="module")
def problem():
    """A small Bayesian linear regression with a strongly correlated posterior."""
    rng = np.random.default_rng(1)
    x = rng.uniform(1.0, 3.0, 40)
    t = -0.5 + x + 0.5 * rng.standard_normal(40)
    Phi = reg.polynomial_features(x, 1)
    lam, beta = 1.0, 4.0
    blr = reg.BayesianLinearRegression(lam, beta).fit(Phi, t)
    return dict(Phi=torch.tensor(Phi), t=torch.tensor(t), prior_precision=lam, beta=beta, blr=blr)


def _loglik(beta):
    return lambda W, X, T: vi.gaussian_log_likelihood(W, X, T, beta)


# --- families ---------------------------------------------------------------------------
@pytest.mark.parametrize("family", ["mf", "fr"])
def test_log_prob_and_entropy_match_torch(family):
    mu = torch.tensor([0.3, -1.0, 2.0], dtype=torch.float64)
    if family == "mf":
        q = vi.MeanFieldGaussian(mu, [0.5, 1.5, 0.2])
    else:
        q = vi.FullRankGaussian(mu, scale_tril=[[1.0, 0, 0], [0.4, 0.5, 0], [-0.3, 0.2, 2.0]])
    ref = torch.distributions.MultivariateNormal(q.mu, scale_tril=q.scale_tril())
    w = torch.randn(7, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(q.log_prob(w), ref.log_prob(w), atol=1e-12)
    assert torch.allclose(q.entropy(), ref.entropy(), atol=1e-12)
    assert torch.allclose(q.covariance(), ref.covariance_matrix, atol=1e-12)


def test_sample_moments_and_reparameterized_gradient():
    q = vi.FullRankGaussian([1.0, -2.0], scale_tril=[[0.5, 0.0], [0.6, 0.3]])
    W = q.sample(200_000, torch.Generator().manual_seed(0))
    assert W.shape == (200_000, 2)
    assert torch.allclose(W.mean(0), q.mu, atol=0.01)
    assert torch.allclose(torch.cov(W.T), q.covariance(), atol=0.01)
    # d/dmu of E[W] is the identity: gradients flow through the samples
    W.mean(0).sum().backward()
    assert torch.allclose(q.mu.grad, torch.ones(2, dtype=torch.float64))


def test_mean_field_marginal_std_and_fullrank_default():
    q = vi.MeanFieldGaussian([0.0, 0.0], [0.1, 2.0])
    assert torch.allclose(q.marginal_std(), torch.tensor([0.1, 2.0], dtype=torch.float64))
    fr = vi.FullRankGaussian([0.0, 0.0], sigma=[0.1, 2.0])
    assert torch.allclose(fr.covariance(), q.covariance())


# --- KL ---------------------------------------------------------------------------------
def test_gaussian_kl_matches_torch_and_is_zero_for_equal():
    mu_q, mu_p = torch.tensor([0.0, 1.0]), torch.tensor([1.0, -1.0])
    cq = torch.tensor([[1.0, 0.3], [0.3, 0.5]])
    cp = torch.tensor([[2.0, -0.4], [-0.4, 1.0]])
    ref = torch.distributions.kl_divergence(
        torch.distributions.MultivariateNormal(mu_q.double(), cq.double()),
        torch.distributions.MultivariateNormal(mu_p.double(), cp.double()),
    )
    assert math.isclose(vi.gaussian_kl(mu_q.double(), cq, mu_p, cp).item(), ref.item(), abs_tol=1e-12)
    assert abs(vi.gaussian_kl(mu_q, cq, mu_q, cq).item()) < 1e-6


# --- the ELBO identity ---------------------------------------------------------------------
@pytest.mark.parametrize("family", ["mf", "fr"])
def test_log_evidence_minus_elbo_is_kl_to_posterior(problem, family):
    cls = vi.MeanFieldGaussian if family == "mf" else vi.FullRankGaussian
    q = cls([0.2, 0.7], 0.3)
    L = vi.linear_gaussian_elbo(q, problem["Phi"], problem["t"], problem["prior_precision"], problem["beta"])
    blr = problem["blr"]
    kl_post = vi.gaussian_kl(q.mu, q.covariance(), blr.mean, blr.cov)
    assert math.isclose(blr.log_evidence() - L.item(), kl_post.item(), rel_tol=1e-9, abs_tol=1e-8)


def test_exact_posterior_attains_the_evidence(problem):
    blr = problem["blr"]
    q = vi.FullRankGaussian(blr.mean, scale_tril=np.linalg.cholesky(blr.cov))
    L = vi.linear_gaussian_elbo(q, problem["Phi"], problem["t"], problem["prior_precision"], problem["beta"])
    assert math.isclose(L.item(), blr.log_evidence(), abs_tol=1e-9)


def test_mc_elbo_matches_closed_form_within_its_standard_error(problem):
    q = vi.MeanFieldGaussian([0.0, 0.8], 0.2)
    prior = vi.isotropic_prior(2, problem["prior_precision"])
    g = torch.Generator().manual_seed(3)
    est = torch.stack(
        [
            vi.elbo(
                q,
                _loglik(problem["beta"]),
                problem["Phi"],
                problem["t"],
                prior,
                n_samples=4,
                batch_size=10,
                generator=g,
            ).detach()
            for _ in range(1000)
        ]
    )
    exact = vi.linear_gaussian_elbo(
        q, problem["Phi"], problem["t"], problem["prior_precision"], problem["beta"]
    ).item()
    se = est.std().item() / math.sqrt(len(est))
    assert abs(est.mean().item() - exact) < 4 * se


# --- unbiased stochastic gradients (statistical tests) ------------------------------------------
def _z_scores(samples: torch.Tensor, exact: torch.Tensor) -> torch.Tensor:
    se = samples.std(0) / math.sqrt(samples.shape[0])
    return (samples.mean(0) - exact) / se


def test_minibatch_mc_gradient_is_unbiased(problem):
    """Tolerance: every component of the mean of 1500 estimates within 4 standard errors."""
    q = vi.MeanFieldGaussian([0.1, 0.5], 0.3)
    args = (problem["Phi"], problem["t"])
    exact = vi.flat_grad(q, vi.linear_gaussian_elbo(q, *args, problem["prior_precision"], problem["beta"]))
    prior = vi.isotropic_prior(2, problem["prior_precision"])
    g = torch.Generator().manual_seed(0)
    grads = torch.stack(
        [
            vi.flat_grad(
                q, vi.elbo(q, _loglik(problem["beta"]), *args, prior, n_samples=1, batch_size=5, generator=g)
            )
            for _ in range(1500)
        ]
    )
    assert torch.all(_z_scores(grads, exact).abs() < 4.0)


def test_the_statistical_test_detects_a_biased_estimator(problem):
    """The same test rejects a mini-batch estimate that forgets the N/B scaling."""
    q = vi.MeanFieldGaussian([0.1, 0.5], 0.3)
    args = (problem["Phi"], problem["t"])
    exact = vi.flat_grad(q, vi.linear_gaussian_elbo(q, *args, problem["prior_precision"], problem["beta"]))
    prior = vi.isotropic_prior(2, problem["prior_precision"])
    g = torch.Generator().manual_seed(0)
    B, N = 5, len(problem["t"])
    grads = torch.stack(
        [
            vi.flat_grad(
                q,
                vi.elbo(q, _loglik(problem["beta"]), *args, prior, 1, B, g, kl_weight=0) * (B / N)
                - vi.kl_divergence(q, *prior),
            )
            for _ in range(1500)
        ]
    )
    assert torch.any(_z_scores(grads, exact).abs() > 4.0)


@pytest.mark.parametrize("estimator", [vi.reparam_grad, vi.score_function_grad])
def test_gradient_estimators_are_unbiased(problem, estimator):
    q = vi.MeanFieldGaussian([0.1, 0.5], 0.3)
    beta = problem["beta"]

    def f(W):
        return vi.gaussian_log_likelihood(W, problem["Phi"], problem["t"], beta).sum(1)

    exact = vi.flat_grad(q, vi.linear_gaussian_elbo(q, problem["Phi"], problem["t"], 1.0, beta, kl_weight=0))
    g = torch.Generator().manual_seed(1)
    grads = torch.stack([estimator(q, f, 2, g) for _ in range(2000)])
    assert torch.all(_z_scores(grads, exact).abs() < 4.0)


def test_reparameterization_has_lower_variance_than_score_function(problem):
    q = vi.MeanFieldGaussian([0.1, 0.5], 0.3)

    def f(W):
        return vi.gaussian_log_likelihood(W, problem["Phi"], problem["t"], problem["beta"]).sum(1)

    g = torch.Generator().manual_seed(2)
    rep = torch.stack([vi.reparam_grad(q, f, 1, g) for _ in range(1000)])
    sf = torch.stack([vi.score_function_grad(q, f, 1, g) for _ in range(1000)])
    assert sf.var(0).sum() > 3 * rep.var(0).sum()  # about 8x here


# --- fitting -----------------------------------------------------------------------------
def test_fit_full_rank_reaches_the_posterior_and_mean_field_the_known_optimum(problem):
    P, t, blr = problem["Phi"], problem["t"], problem["blr"]
    a, b = problem["prior_precision"], problem["beta"]
    fr = vi.FullRankGaussian([0.0, 0.0], 0.3)
    hist = vi.fit(fr, lambda: vi.linear_gaussian_elbo(fr, P, t, a, b), n_steps=600, lr=0.1)
    assert hist.shape == (600,) and hist[-1] > hist[0]
    assert np.allclose(fr.mu.detach().numpy(), blr.mean, atol=1e-4)
    assert np.allclose(fr.covariance().detach().numpy(), blr.cov, atol=1e-5)
    mf = vi.MeanFieldGaussian([0.0, 0.0], 0.3)
    vi.fit(mf, lambda: vi.linear_gaussian_elbo(mf, P, t, a, b), n_steps=600, lr=0.1)
    precision = np.linalg.inv(blr.cov)  # mean-field optimum: sigma_j^2 = 1 / Lambda_jj (Bishop §10.1.2)
    assert np.allclose(mf.sigma.detach().numpy() ** 2, 1.0 / np.diag(precision), rtol=1e-3)


def test_without_kl_q_collapses_towards_the_ml_point(problem):
    P, t, b = problem["Phi"], problem["t"], problem["beta"]
    q = vi.MeanFieldGaussian([0.0, 0.0], 0.3)
    sigmas = []

    def data_term():
        sigmas.append(q.sigma.detach().clone())
        return vi.linear_gaussian_elbo(q, P, t, 1.0, b, kl_weight=0)

    vi.fit(q, data_term, n_steps=800, lr=0.05)
    w_ml, _ = reg.least_squares(P.numpy(), t.numpy())
    assert np.allclose(q.mu.detach().numpy(), w_ml, atol=1e-3)
    sigmas = torch.stack(sigmas)
    assert torch.all(sigmas[1:] < sigmas[:-1])  # sigma only ever shrinks ...
    with_kl = 1.0 / np.sqrt(np.diag(np.linalg.inv(problem["blr"].cov)))
    assert np.all(q.sigma.detach().numpy() < 0.5 * with_kl)  # ... below the ELBO optimum
    for sigma in (1.0, 1e-2, 1e-4):  # and the data term always pulls it further down
        r = vi.MeanFieldGaussian(w_ml, sigma)
        grad = vi.flat_grad(r, vi.linear_gaussian_elbo(r, P, t, 1.0, b, kl_weight=0))
        assert torch.all(grad[2:] < 0)


# --- bad input -------------------------------------------------------------------------------
@pytest.mark.parametrize("sigma", [0.0, -0.1, [0.1, -1.0]])
def test_non_positive_std_is_rejected(sigma):
    with pytest.raises(ValueError, match="sigma must be positive"):
        vi.MeanFieldGaussian([0.0, 0.0], sigma)
    with pytest.raises(ValueError, match="sigma must be positive"):
        vi.FullRankGaussian([0.0, 0.0], sigma)


def test_bad_family_arguments():
    with pytest.raises(ValueError, match="non-empty 1-D vector"):
        vi.MeanFieldGaussian([[0.0, 1.0]])
    with pytest.raises(ValueError, match="one standard deviation per weight"):
        vi.MeanFieldGaussian([0.0, 1.0], [1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="NaN or inf"):
        vi.MeanFieldGaussian([0.0, float("nan")])
    with pytest.raises(ValueError, match="lower triangular"):
        vi.FullRankGaussian([0.0, 0.0], scale_tril=[[1.0, 0.5], [0.0, 1.0]])
    with pytest.raises(ValueError, match="positive diagonal"):
        vi.FullRankGaussian([0.0, 0.0], scale_tril=[[1.0, 0.0], [0.5, -1.0]])
    with pytest.raises(ValueError, match=r"shape \(2, 2\)"):
        vi.FullRankGaussian([0.0, 0.0], scale_tril=[[1.0]])
    with pytest.raises(ValueError, match="last dimension 3"):
        vi.MeanFieldGaussian([0.0, 0.0]).log_prob(torch.zeros(4, 3))


@pytest.mark.parametrize("n", [0, -3])
def test_zero_samples_is_rejected(n, problem):
    q = vi.MeanFieldGaussian([0.0, 0.0])
    with pytest.raises(
        ValueError, match=r"n_samples \(the number of Monte Carlo samples\) must be a positive integer"
    ):
        q.sample(n)
    with pytest.raises(
        ValueError, match=r"n_samples \(the number of Monte Carlo samples\) must be a positive integer"
    ):
        vi.elbo(q, _loglik(4.0), problem["Phi"], problem["t"], vi.isotropic_prior(2, 1.0), n_samples=n)


def test_batch_larger_than_data_is_rejected(problem):
    q = vi.MeanFieldGaussian([0.0, 0.0])
    N = len(problem["t"])
    with pytest.raises(ValueError, match=f"batch_size={N + 1} is larger than the data set \\(N={N}\\)"):
        vi.elbo(q, _loglik(4.0), problem["Phi"], problem["t"], vi.isotropic_prior(2, 1.0), batch_size=N + 1)
    with pytest.raises(
        ValueError,
        match=r"batch_size \(the mini-batch size\) must be a positive integer, got 0; use batch_size >= 1",
    ):
        vi.elbo(q, _loglik(4.0), problem["Phi"], problem["t"], vi.isotropic_prior(2, 1.0), batch_size=0)


def test_bad_elbo_arguments(problem):
    q = vi.MeanFieldGaussian([0.0, 0.0])
    prior = vi.isotropic_prior(2, 1.0)
    with pytest.raises(ValueError, match="X is empty"):
        vi.elbo(q, _loglik(4.0), problem["Phi"][:0], problem["t"][:0], prior)
    with pytest.raises(ValueError, match="one target per input"):
        vi.elbo(q, _loglik(4.0), problem["Phi"], problem["t"][:-1], prior)
    with pytest.raises(ValueError, match="kl_weight must be >= 0"):
        vi.elbo(q, _loglik(4.0), problem["Phi"], problem["t"], prior, kl_weight=-1.0)
    with pytest.raises(ValueError, match=r"log_lik must return shape \(S, B\)"):
        vi.elbo(q, lambda W, X, T: W.sum(1), problem["Phi"], problem["t"], prior)
    with pytest.raises(TypeError, match="MeanFieldGaussian or FullRankGaussian"):
        vi.elbo(torch.nn.Linear(2, 1), _loglik(4.0), problem["Phi"], problem["t"], prior)
    with pytest.raises(TypeError, match="kl_weight must be a finite number, got '1'"):
        vi.elbo(q, _loglik(4.0), problem["Phi"], problem["t"], prior, kl_weight="1")
    with pytest.raises(
        TypeError,
        match=r"n_samples \(the number of Monte Carlo samples\) must be a positive integer, got 2\.0",
    ):
        vi.elbo(q, _loglik(4.0), problem["Phi"], problem["t"], prior, n_samples=2.0)


def test_bad_precisions_and_covariances(problem):
    q = vi.MeanFieldGaussian([0.0, 0.0])
    with pytest.raises(
        ValueError, match=r"prior_precision \(the prior precision\) must be a positive finite number"
    ):
        vi.isotropic_prior(2, 0.0)
    with pytest.raises(ValueError, match=r"beta \(the noise precision\) must be a positive finite number"):
        vi.linear_gaussian_elbo(q, problem["Phi"], problem["t"], 1.0, -4.0)
    with pytest.raises(ValueError, match=r"beta \(the noise precision\) must be a positive finite number"):
        vi.gaussian_log_likelihood(torch.zeros(1, 2), problem["Phi"], problem["t"], 0.0)
    with pytest.raises(ValueError, match=r"Phi must have shape \(N, 2\)"):
        vi.linear_gaussian_elbo(q, problem["Phi"][:, :1], problem["t"], 1.0, 4.0)
    with pytest.raises(ValueError, match="cov_p is not positive definite"):
        vi.gaussian_kl(torch.zeros(2), torch.eye(2), torch.zeros(2), -torch.eye(2))
    with pytest.raises(ValueError, match="same length"):
        vi.gaussian_kl(torch.zeros(2), torch.eye(2), torch.zeros(3), torch.eye(3))


def test_bad_fit_arguments():
    q = vi.MeanFieldGaussian([0.0])
    with pytest.raises(
        ValueError, match=r"n_steps \(the number of optimization steps\) must be a positive integer"
    ):
        vi.fit(q, lambda: -(q.mu**2).sum(), n_steps=0)
    with pytest.raises(ValueError, match=r"lr \(Adam's learning rate\) must be a positive finite number"):
        vi.fit(q, lambda: -(q.mu**2).sum(), lr=0.0)
    with pytest.raises(FloatingPointError, match="lower the learning rate"):
        vi.fit(q, lambda: q.mu.sum() * float("nan"), n_steps=3)
    with pytest.raises(ValueError, match="objective must return a scalar"):
        vi.fit(q, lambda: q.mu * 1.0, n_steps=1)


def test_estimators_check_f_shape():
    q = vi.MeanFieldGaussian([0.0, 0.0])
    with pytest.raises(ValueError, match="one value per sample"):
        vi.reparam_grad(q, lambda W: W, 3)
    with pytest.raises(ValueError, match="one value per sample"):
        vi.score_function_grad(q, lambda W: W, 3)
    with pytest.raises(ValueError, match="value must be a scalar"):
        vi.flat_grad(q, q.mu * 2)


def test_mean_field_kl_fast_path_matches_the_general_formula():
    q = vi.MeanFieldGaussian([0.3, -1.0, 2.0], [0.5, 1.5, 0.2])
    for mu_p, cov_p in [
        vi.isotropic_prior(3, 2.0),
        (torch.tensor([1.0, 0.0, -1.0]), torch.diag(torch.tensor([0.5, 2.0, 1.0]))),
    ]:
        general = vi.gaussian_kl(q.mu, q.covariance(), mu_p, cov_p)
        assert torch.allclose(vi.kl_divergence(q, mu_p, cov_p), general, atol=1e-12)


def test_fit_learning_rate_decays_geometrically_to_lr_final():
    q = vi.MeanFieldGaussian([3.0])
    seen = []

    def objective():
        seen.append(q.mu.item())
        return -(q.mu**2).sum()

    hist = vi.fit(q, objective, n_steps=5, lr=0.1, lr_final=0.001)
    assert hist.shape == (5,)
    steps = -np.diff(seen)  # Adam's first steps have size ~lr for a consistent gradient sign
    assert np.allclose(steps[:4], [0.1, 0.1 * 10**-0.5, 0.01, 0.01 * 10**-0.5], rtol=0.05)
    with pytest.raises(
        ValueError, match=r"lr_final \(the learning rate at the last step\) must be a positive"
    ):
        vi.fit(q, objective, n_steps=3, lr=0.1, lr_final=0.0)
