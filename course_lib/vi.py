"""Variational inference with Gaussian families: the ELBO, its stochastic gradients, a fit loop.

Chapter 4 approximates a posterior p(W | X, T) by q(W | φ) from a Gaussian family and
maximizes the evidence lower bound (ELBO)

.. math::

    \\mathcal{L}(φ) = \\mathbb{E}_{q(W|φ)} \\log p(T | X, W) - \\mathrm{KL}(q(W|φ) \\,\\|\\, p(W)).

This module holds, in torch (float64 by default, so that identities can be checked to
round-off):

* the variational families :class:`MeanFieldGaussian` (q = N(μ, diag σ²), parameters
  ``mu`` and ``log_sigma``) and :class:`FullRankGaussian` (q = N(μ, L Lᵀ), parameters
  ``mu``, ``log_diag`` and ``offdiag`` of the Cholesky factor L), both sampled with the
  reparameterization W = μ + L ε, ε ~ N(0, I);
* :func:`gaussian_kl` and :func:`kl_divergence`, the closed-form Gaussian KL;
* :func:`elbo`, the unbiased mini-batch + Monte Carlo ELBO estimator, and
  :func:`linear_gaussian_elbo`, the exact ELBO of Bayesian linear regression (the test
  bed where log p(T|X) − ELBO = KL(q ‖ posterior) can be checked);
* the gradient estimators :func:`reparam_grad` and :func:`score_function_grad` of
  ∇_φ E_q f(W), and :func:`flat_grad`;
* :func:`fit`, a small Adam loop that maximizes an objective over q's parameters.

The symbols follow the book: ``mu`` = μ, ``sigma`` = σ, ``prior_precision`` = λ (the prior
precision; ``lambda`` is a Python keyword), ``beta`` = β (noise precision), ``kl_weight`` = κ.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from course_lib import validation as V

Tensor = torch.Tensor

#: The floating-point type of the variational families unless another is asked for.
DEFAULT_DTYPE = torch.float64

_LOG_2PI = math.log(2.0 * math.pi)


# ---------------------------------------------------------------------------------------
# input checks shared by the module
# ---------------------------------------------------------------------------------------
def _as_tensor(x, name: str, dtype: torch.dtype) -> Tensor:
    t = torch.as_tensor(x, dtype=dtype) if not isinstance(x, Tensor) else x.to(dtype)
    if not torch.all(torch.isfinite(t)):
        raise ValueError(f"{name} contains NaN or inf; pass finite numbers.")
    return t


# ---------------------------------------------------------------------------------------
# variational families
# ---------------------------------------------------------------------------------------
class GaussianFamily(nn.Module):
    """Base class of the Gaussian variational families q(W | φ) = N(W | μ, L Lᵀ).

    Subclasses define :meth:`scale_tril` (the Cholesky factor L); everything else —
    reparameterized sampling, log density, entropy, covariance — follows from μ and L.
    """

    mu: nn.Parameter

    @property
    def dim(self) -> int:
        """The number of weights D."""
        return self.mu.shape[0]

    def scale_tril(self) -> Tensor:  # pragma: no cover - abstract
        """The lower-triangular Cholesky factor L of the covariance, shape (D, D)."""
        raise NotImplementedError

    def covariance(self) -> Tensor:
        """The covariance Σ = L Lᵀ, shape (D, D)."""
        L = self.scale_tril()
        return L @ L.T

    def _log_diag(self) -> Tensor:
        return torch.log(torch.diagonal(self.scale_tril()))

    def sample(self, n_samples: int = 1, generator: torch.Generator | None = None) -> Tensor:
        """Draw W = μ + L ε with ε ~ N(0, I) (the reparameterization trick).

        Gradients flow from the samples to μ and L, which is what makes
        :func:`reparam_grad` possible.

        Parameters
        ----------
        n_samples : int, default 1
            The number S of Monte Carlo samples.
        generator : torch.Generator, optional
            The random number generator (default: torch's global one).

        Returns
        -------
        Tensor, shape (S, D)

        Raises
        ------
        ValueError
            If ``n_samples`` is not a positive integer.
        """
        n_samples = V.positive_int(n_samples, "n_samples", meaning="the number of Monte Carlo samples")
        eps = torch.randn(n_samples, self.dim, generator=generator, dtype=self.mu.dtype)
        return self.mu + eps @ self.scale_tril().T

    def log_prob(self, w: Tensor) -> Tensor:
        """log q(w | φ) for weights ``w`` of shape (..., D); returns shape (...)."""
        w = torch.as_tensor(w, dtype=self.mu.dtype)
        if w.shape[-1] != self.dim:
            raise ValueError(f"w has last dimension {w.shape[-1]} but q is over D={self.dim} weights.")
        L = self.scale_tril()
        diff = (w - self.mu).reshape(-1, self.dim)
        z = torch.linalg.solve_triangular(L, diff.T, upper=False).T
        logp = -0.5 * (z**2).sum(-1) - self._log_diag().sum() - 0.5 * self.dim * _LOG_2PI
        return logp.reshape(w.shape[:-1])

    def entropy(self) -> Tensor:
        """The differential entropy H[q] = D/2 (1 + log 2π) + Σ_j log L_jj."""
        return 0.5 * self.dim * (1.0 + _LOG_2PI) + self._log_diag().sum()

    def marginal_std(self) -> Tensor:
        """The standard deviation of each weight under q, sqrt(diag Σ), shape (D,)."""
        return torch.sqrt(torch.diagonal(self.covariance()))


class MeanFieldGaussian(GaussianFamily):
    """The mean-field family q(W | φ) = Π_j N(w_j | μ_j, σ_j²), φ = (μ, log σ).

    Parameters
    ----------
    mu : array_like, shape (D,)
        Initial means.
    sigma : float or array_like, shape (D,)
        Initial standard deviations; must be positive (they are stored as ``log_sigma``).
    dtype : torch.dtype, default torch.float64

    Raises
    ------
    ValueError
        If ``mu`` is not a non-empty vector, ``sigma`` does not match it, or any σ is not
        positive and finite.

    Examples
    --------
    >>> q = MeanFieldGaussian([0.0, 1.0], sigma=0.5)
    >>> q.sample(3).shape
    torch.Size([3, 2])
    """

    def __init__(self, mu, sigma=1.0, dtype: torch.dtype = DEFAULT_DTYPE) -> None:
        super().__init__()
        mu_t = _as_tensor(mu, "mu", dtype)
        if mu_t.ndim != 1 or mu_t.numel() == 0:
            raise ValueError(f"mu must be a non-empty 1-D vector of means, got shape {tuple(mu_t.shape)}.")
        sigma_t = _as_tensor(sigma, "sigma", dtype)
        try:
            sigma_t = torch.broadcast_to(sigma_t, mu_t.shape).clone()
        except RuntimeError as exc:
            raise ValueError(
                f"sigma has shape {tuple(sigma_t.shape)} but mu has {tuple(mu_t.shape)}; "
                "give one standard deviation per weight, or a single number."
            ) from exc
        if torch.any(sigma_t <= 0):
            raise ValueError(
                f"sigma must be positive (it is a standard deviation), got min {sigma_t.min().item():.4g}; "
                "pass sigma > 0, e.g. sigma=0.1."
            )
        self.mu = nn.Parameter(mu_t.detach().clone())
        self.log_sigma = nn.Parameter(torch.log(sigma_t).detach())

    @property
    def sigma(self) -> Tensor:
        """The standard deviations σ = exp(log σ), shape (D,)."""
        return torch.exp(self.log_sigma)

    def scale_tril(self) -> Tensor:
        return torch.diag(self.sigma)

    def covariance(self) -> Tensor:
        return torch.diag(self.sigma**2)

    def _log_diag(self) -> Tensor:
        return self.log_sigma

    def sample(self, n_samples: int = 1, generator: torch.Generator | None = None) -> Tensor:
        n_samples = V.positive_int(n_samples, "n_samples", meaning="the number of Monte Carlo samples")
        eps = torch.randn(n_samples, self.dim, generator=generator, dtype=self.mu.dtype)
        return self.mu + self.sigma * eps

    def log_prob(self, w: Tensor) -> Tensor:
        w = torch.as_tensor(w, dtype=self.mu.dtype)
        if w.shape[-1] != self.dim:
            raise ValueError(f"w has last dimension {w.shape[-1]} but q is over D={self.dim} weights.")
        z = (w - self.mu) / self.sigma
        return (-0.5 * z**2 - self.log_sigma - 0.5 * _LOG_2PI).sum(-1)

    def marginal_std(self) -> Tensor:
        return self.sigma

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class FullRankGaussian(GaussianFamily):
    """The full-covariance family q(W | φ) = N(W | μ, L Lᵀ), φ = (μ, L).

    L is lower triangular with a positive diagonal, stored as ``log_diag`` (log of the
    diagonal) and ``offdiag`` (a (D, D) matrix of which only the strictly lower triangle
    is used), so every value of the parameters is a valid covariance.

    Parameters
    ----------
    mu : array_like, shape (D,)
        Initial means.
    sigma : float or array_like, shape (D,), default 1.0
        Initial standard deviations (L starts diagonal); ignored when ``scale_tril`` is given.
    scale_tril : array_like, shape (D, D), optional
        An initial Cholesky factor: lower triangular with a positive diagonal.
    dtype : torch.dtype, default torch.float64

    Raises
    ------
    ValueError
        If ``mu`` is not a non-empty vector, any σ is not positive, or ``scale_tril`` has
        the wrong shape, is not lower triangular or has a non-positive diagonal.
    """

    def __init__(self, mu, sigma=1.0, scale_tril=None, dtype: torch.dtype = DEFAULT_DTYPE) -> None:
        super().__init__()
        mu_t = _as_tensor(mu, "mu", dtype)
        if mu_t.ndim != 1 or mu_t.numel() == 0:
            raise ValueError(f"mu must be a non-empty 1-D vector of means, got shape {tuple(mu_t.shape)}.")
        D = mu_t.numel()
        if scale_tril is None:
            init = MeanFieldGaussian(mu_t, sigma, dtype=dtype)  # validates sigma
            L = torch.diag(init.sigma.detach())
        else:
            L = _as_tensor(scale_tril, "scale_tril", dtype)
            if L.shape != (D, D):
                raise ValueError(f"scale_tril must have shape ({D}, {D}) to match mu, got {tuple(L.shape)}.")
            if torch.any(torch.triu(L, diagonal=1) != 0):
                raise ValueError(
                    "scale_tril must be lower triangular (a Cholesky factor); "
                    "use torch.linalg.cholesky(cov) to get one from a covariance."
                )
            if torch.any(torch.diagonal(L) <= 0):
                raise ValueError(
                    "scale_tril must have a positive diagonal; "
                    "use torch.linalg.cholesky(cov) to get one from a covariance."
                )
        self.mu = nn.Parameter(mu_t.detach().clone())
        self.log_diag = nn.Parameter(torch.log(torch.diagonal(L)).detach().clone())
        self.offdiag = nn.Parameter(torch.tril(L, diagonal=-1).detach().clone())

    def scale_tril(self) -> Tensor:
        return torch.tril(self.offdiag, diagonal=-1) + torch.diag(torch.exp(self.log_diag))

    def _log_diag(self) -> Tensor:
        return self.log_diag

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


# ---------------------------------------------------------------------------------------
# KL divergences
# ---------------------------------------------------------------------------------------
def _cholesky(cov: Tensor, name: str) -> Tensor:
    L, info = torch.linalg.cholesky_ex(cov)
    if info.item() != 0:
        raise ValueError(
            f"{name} is not positive definite (its Cholesky factorization failed); "
            "pass a symmetric covariance with positive eigenvalues."
        )
    return L


def gaussian_kl(mu_q, cov_q, mu_p, cov_p) -> Tensor:
    """KL(N(μ_q, Σ_q) ‖ N(μ_p, Σ_p)) in closed form.

    .. math::

        \\tfrac12 \\big[\\operatorname{tr}(Σ_p^{-1} Σ_q) + (μ_p - μ_q)^⊤ Σ_p^{-1} (μ_p - μ_q)
        - D + \\log\\det Σ_p - \\log\\det Σ_q\\big]

    Parameters
    ----------
    mu_q, mu_p : array_like, shape (D,)
    cov_q, cov_p : array_like, shape (D, D)
        Symmetric positive definite covariances.

    Returns
    -------
    Tensor
        A scalar (differentiable with respect to tensor inputs), dtype of ``mu_q`` if it is a
        floating tensor, else float64.

    Raises
    ------
    ValueError
        If shapes disagree or a covariance is not positive definite.
    """
    dtype = mu_q.dtype if isinstance(mu_q, Tensor) and mu_q.is_floating_point() else DEFAULT_DTYPE
    mu_q, mu_p = (torch.as_tensor(m, dtype=dtype) for m in (mu_q, mu_p))
    cov_q, cov_p = (torch.as_tensor(c, dtype=dtype) for c in (cov_q, cov_p))
    if mu_q.ndim != 1 or mu_q.shape != mu_p.shape:
        raise ValueError(
            f"mu_q and mu_p must be vectors of the same length, got {tuple(mu_q.shape)} "
            f"and {tuple(mu_p.shape)}."
        )
    D = mu_q.shape[0]
    for c, name in ((cov_q, "cov_q"), (cov_p, "cov_p")):
        if c.shape != (D, D):
            raise ValueError(f"{name} must have shape ({D}, {D}) to match the means, got {tuple(c.shape)}.")
    Lq, Lp = _cholesky(cov_q, "cov_q"), _cholesky(cov_p, "cov_p")
    A = torch.linalg.solve_triangular(Lp, Lq, upper=False)  # Lp^{-1} Lq: tr(Σp^{-1}Σq) = ‖A‖²
    b = torch.linalg.solve_triangular(Lp, (mu_p - mu_q).unsqueeze(-1), upper=False).squeeze(-1)
    logdet_p = 2.0 * torch.log(torch.diagonal(Lp)).sum()
    logdet_q = 2.0 * torch.log(torch.diagonal(Lq)).sum()
    return 0.5 * ((A**2).sum() + (b**2).sum() - D + logdet_p - logdet_q)


def kl_divergence(q: GaussianFamily, mu_p, cov_p) -> Tensor:
    """KL(q ‖ N(μ_p, Σ_p)) for a variational family ``q`` (differentiable in q's parameters)."""
    if not isinstance(q, GaussianFamily):
        raise TypeError(f"q must be a MeanFieldGaussian or FullRankGaussian, got {type(q).__name__}.")
    cov_p = torch.as_tensor(cov_p, dtype=q.mu.dtype)
    mu_p = torch.as_tensor(mu_p, dtype=q.mu.dtype)
    if (
        isinstance(q, MeanFieldGaussian)
        and cov_p.shape == (q.dim, q.dim)
        and mu_p.shape == (q.dim,)
        and torch.equal(cov_p, torch.diag(torch.diagonal(cov_p)))
        and torch.all(torch.diagonal(cov_p) > 0)
    ):
        # both diagonal: the KL is a sum of D one-dimensional KLs (no factorization needed)
        var_p = torch.diagonal(cov_p)
        return (
            0.5
            * ((q.sigma**2 + (q.mu - mu_p) ** 2) / var_p - 1.0 + torch.log(var_p) - 2.0 * q.log_sigma).sum()
        )
    return gaussian_kl(q.mu, q.covariance(), mu_p, cov_p)


def isotropic_prior(
    dim: int, prior_precision: float, dtype: torch.dtype = DEFAULT_DTYPE
) -> tuple[Tensor, Tensor]:
    """The prior p(W) = N(0, λ⁻¹ I) as ``(mean, cov)`` (Bishop 2006 §3.3; λ is the precision)."""
    dim = V.positive_int(dim, "dim", meaning="the number of weights")
    prior_precision = V.positive_float(prior_precision, "prior_precision", meaning="the prior precision")
    return torch.zeros(dim, dtype=dtype), torch.eye(dim, dtype=dtype) / prior_precision


# ---------------------------------------------------------------------------------------
# likelihood and ELBO
# ---------------------------------------------------------------------------------------
def gaussian_log_likelihood(W: Tensor, Phi: Tensor, t: Tensor, beta: float) -> Tensor:
    """Per-example log N(t_i | φ_iᵀ w_s, β⁻¹) for S weight samples and B examples.

    Parameters
    ----------
    W : Tensor, shape (S, D)
        Weight samples.
    Phi : Tensor, shape (B, D)
        Design matrix (features of the B examples).
    t : Tensor, shape (B,)
        Targets.
    beta : float
        Noise precision β > 0.

    Returns
    -------
    Tensor, shape (S, B)
    """
    beta = V.positive_float(beta, "beta", meaning="the noise precision")
    if W.ndim != 2 or Phi.ndim != 2 or W.shape[1] != Phi.shape[1]:
        raise ValueError(
            f"W must be (S, D) and Phi (B, D) with the same D, got {tuple(W.shape)} and {tuple(Phi.shape)}."
        )
    if t.shape != (Phi.shape[0],):
        raise ValueError(f"t must have shape ({Phi.shape[0]},) to match Phi, got {tuple(t.shape)}.")
    resid = t.unsqueeze(0) - W @ Phi.T
    return 0.5 * (math.log(beta) - _LOG_2PI) - 0.5 * beta * resid**2


def elbo(
    q: GaussianFamily,
    log_lik: Callable[[Tensor, Tensor, Tensor], Tensor],
    X: Tensor,
    T: Tensor,
    prior: tuple[Tensor, Tensor],
    n_samples: int = 1,
    batch_size: int | None = None,
    generator: torch.Generator | None = None,
    kl_weight: float = 1.0,
) -> Tensor:
    """An unbiased mini-batch, Monte Carlo estimate of the ELBO.

    .. math::

        \\hat{\\mathcal{L}} = \\frac{N}{B} \\sum_{i \\in \\mathcal{B}} \\frac1S \\sum_{s=1}^S
        \\log p(t_i | x_i, W_s) - \\mathrm{KL}(q \\| p(W)), \\qquad W_s = μ + L ε_s,

    with the mini-batch 𝓑 of B indices drawn uniformly without replacement. Its
    expectation over 𝓑 and ε is the ELBO, and so is that of its gradient.

    Parameters
    ----------
    q : MeanFieldGaussian or FullRankGaussian
    log_lik : callable
        ``log_lik(W, X_batch, T_batch)`` returns per-example log-likelihoods of shape (S, B)
        for weight samples ``W`` of shape (S, D).
    X, T : Tensor
        The N inputs and targets (first dimension N).
    prior : (Tensor, Tensor)
        Mean and covariance of the Gaussian prior p(W) (see :func:`isotropic_prior`).
    n_samples : int, default 1
        Monte Carlo samples S.
    batch_size : int, optional
        Mini-batch size B (1 ≤ B ≤ N); ``None`` uses all N examples.
    generator : torch.Generator, optional
        Drives both the mini-batch choice and ε.
    kl_weight : float, default 1.0
        The KL weight κ, which multiplies the KL term; 0 drops it (chapter 4 shows q then
        collapses to the ML point).

    Returns
    -------
    Tensor
        A scalar, differentiable in q's parameters.

    Raises
    ------
    ValueError
        If the data are empty or of different lengths, ``batch_size`` exceeds N,
        ``n_samples`` < 1, ``kl_weight`` < 0, or ``log_lik`` returns the wrong shape.
    """
    if not isinstance(q, GaussianFamily):
        raise TypeError(f"q must be a MeanFieldGaussian or FullRankGaussian, got {type(q).__name__}.")
    N = len(X)
    if N == 0:
        raise ValueError("X is empty; the ELBO needs at least one training example.")
    if len(T) != N:
        raise ValueError(f"X has {N} examples but T has {len(T)}; give one target per input.")
    n_samples = V.positive_int(n_samples, "n_samples", meaning="the number of Monte Carlo samples")
    if batch_size is None:
        batch_size = N
    batch_size = V.positive_int(batch_size, "batch_size", meaning="the mini-batch size")
    if batch_size > N:
        raise ValueError(
            f"batch_size={batch_size} is larger than the data set (N={N}); "
            f"use batch_size <= {N}, or None for the full data."
        )
    if V.finite_float(kl_weight, "kl_weight") < 0:
        raise ValueError(f"kl_weight must be >= 0 (1 is the ELBO, 0 drops the KL term), got {kl_weight}.")
    if batch_size < N:
        idx = torch.randperm(N, generator=generator)[:batch_size]
        Xb, Tb = X[idx], T[idx]
    else:
        Xb, Tb = X, T
    W = q.sample(n_samples, generator)
    ll = log_lik(W, Xb, Tb)
    if ll.shape != (n_samples, batch_size):
        raise ValueError(
            f"log_lik must return shape (S, B) = ({n_samples}, {batch_size}), got {tuple(ll.shape)}."
        )
    data_term = ll.sum(dim=1).mean() * (N / batch_size)
    if kl_weight == 0:
        return data_term
    return data_term - kl_weight * kl_divergence(q, *prior)


def linear_gaussian_elbo(
    q: GaussianFamily, Phi: Tensor, t: Tensor, prior_precision: float, beta: float, kl_weight: float = 1.0
) -> Tensor:
    """The exact ELBO of Bayesian linear regression, p(t|Φ,W) = N(ΦW, β⁻¹I), p(W) = N(0, λ⁻¹I).

    .. math::

        \\mathcal{L} = \\frac N2 \\log\\frac{β}{2π} - \\frac β2 \\big(\\lVert t - Φμ\\rVert^2
        + \\operatorname{tr}(Φ Σ Φ^⊤)\\big) - κ\\,\\mathrm{KL}(q \\| N(0, λ^{-1} I)).

    Parameters
    ----------
    q : MeanFieldGaussian or FullRankGaussian
    Phi : Tensor, shape (N, D)
    t : Tensor, shape (N,)
    prior_precision, beta : float
        Prior precision λ > 0 and noise precision β > 0.
    kl_weight : float, default 1.0
        The KL weight κ (1 gives the ELBO).

    Returns
    -------
    Tensor
        A scalar, differentiable in q's parameters.
    """
    prior_precision = V.positive_float(prior_precision, "prior_precision", meaning="the prior precision")
    beta = V.positive_float(beta, "beta", meaning="the noise precision")
    Phi = torch.as_tensor(Phi, dtype=q.mu.dtype)
    t = torch.as_tensor(t, dtype=q.mu.dtype)
    if Phi.ndim != 2 or Phi.shape[1] != q.dim:
        raise ValueError(f"Phi must have shape (N, {q.dim}) to match q, got {tuple(Phi.shape)}.")
    if t.shape != (Phi.shape[0],):
        raise ValueError(f"t must have shape ({Phi.shape[0]},) to match Phi, got {tuple(t.shape)}.")
    N = Phi.shape[0]
    L = q.scale_tril()
    resid = t - Phi @ q.mu
    trace = ((Phi @ L) ** 2).sum()
    data_term = 0.5 * N * (math.log(beta) - _LOG_2PI) - 0.5 * beta * ((resid**2).sum() + trace)
    if kl_weight == 0:
        return data_term
    return data_term - kl_weight * kl_divergence(q, *isotropic_prior(q.dim, prior_precision, q.mu.dtype))


# ---------------------------------------------------------------------------------------
# gradient estimators of ∇_φ E_q f(W)
# ---------------------------------------------------------------------------------------
def flat_grad(q: nn.Module, value: Tensor) -> Tensor:
    """The gradient of a scalar ``value`` with respect to all of q's parameters, flattened.

    The order is that of ``q.parameters()`` (for :class:`MeanFieldGaussian`: μ then log σ).
    """
    if value.ndim != 0:
        raise ValueError(f"value must be a scalar, got shape {tuple(value.shape)}; sum or average it first.")
    params = [p for p in q.parameters() if p.requires_grad]
    grads = torch.autograd.grad(value, params, allow_unused=True)
    return torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1) for p, g in zip(params, grads)])


def reparam_grad(
    q: GaussianFamily,
    f: Callable[[Tensor], Tensor],
    n_samples: int = 1,
    generator: torch.Generator | None = None,
) -> Tensor:
    """The reparameterization estimate of ∇_φ E_q f(W) (Kingma & Welling 2014).

    (1/S) Σ_s ∇_φ f(μ + L ε_s): the gradient goes *through* the sample.

    Parameters
    ----------
    q : GaussianFamily
    f : callable
        Maps weight samples (S, D) to values (S,); must be differentiable.
    n_samples : int, default 1
    generator : torch.Generator, optional

    Returns
    -------
    Tensor, shape (P,)
        One stochastic gradient, flattened as in :func:`flat_grad`.
    """
    W = q.sample(n_samples, generator)
    values = f(W)
    if values.shape != (W.shape[0],):
        raise ValueError(
            f"f must return one value per sample, shape ({W.shape[0]},), got {tuple(values.shape)}."
        )
    return flat_grad(q, values.mean())


def score_function_grad(
    q: GaussianFamily,
    f: Callable[[Tensor], Tensor],
    n_samples: int = 1,
    generator: torch.Generator | None = None,
    baseline: float = 0.0,
) -> Tensor:
    """The score-function (REINFORCE) estimate of ∇_φ E_q f(W) (Williams 1992).

    (1/S) Σ_s (f(W_s) − b) ∇_φ log q(W_s | φ), with W_s drawn and then held fixed. It needs
    only values of f (no gradient of f); subtracting a constant baseline b keeps it unbiased
    (E_q ∇ log q = 0) and can reduce its variance.

    Parameters
    ----------
    q : GaussianFamily
    f : callable
        Maps weight samples (S, D) to values (S,).
    n_samples : int, default 1
    generator : torch.Generator, optional
    baseline : float, default 0.0

    Returns
    -------
    Tensor, shape (P,)
    """
    with torch.no_grad():
        W = q.sample(n_samples, generator)
        values = f(W)
    if values.shape != (W.shape[0],):
        raise ValueError(
            f"f must return one value per sample, shape ({W.shape[0]},), got {tuple(values.shape)}."
        )
    surrogate = ((values - baseline) * q.log_prob(W)).mean()
    return flat_grad(q, surrogate)


# ---------------------------------------------------------------------------------------
# fitting
# ---------------------------------------------------------------------------------------
def fit(
    q: nn.Module,
    objective: Callable[[], Tensor],
    n_steps: int = 500,
    lr: float = 0.05,
    lr_final: float | None = None,
    params: Sequence[nn.Parameter] | None = None,
) -> np.ndarray:
    """Maximize ``objective()`` over q's parameters with Adam; return the objective per step.

    Parameters
    ----------
    q : nn.Module
        The variational family (its parameters are optimized unless ``params`` is given).
    objective : callable
        Returns a scalar tensor to *maximize* (e.g. an ELBO estimate); called once per step,
        so a stochastic objective gives stochastic gradient ascent.
    n_steps : int, default 500
    lr : float, default 0.05
        Adam's learning rate (at the first step).
    lr_final : float, optional
        If given, the learning rate decays geometrically from ``lr`` to ``lr_final`` over the
        ``n_steps`` steps — the decaying step sizes under which stochastic gradient ascent on
        a noisy ELBO settles at the optimum instead of jittering around it.
    params : sequence of Parameter, optional
        Optimize only these.

    Returns
    -------
    ndarray, shape (n_steps,)
        The objective's value at every step (before that step's update).

    Raises
    ------
    ValueError
        If ``n_steps`` < 1, or ``lr`` or ``lr_final`` ≤ 0.
    FloatingPointError
        If the objective becomes NaN or infinite (the message suggests a smaller ``lr``).
    """
    n_steps = V.positive_int(n_steps, "n_steps", meaning="the number of optimization steps")
    lr = V.positive_float(lr, "lr", meaning="Adam's learning rate")
    opt = torch.optim.Adam(list(params) if params is not None else list(q.parameters()), lr=lr)
    decay = 1.0
    if lr_final is not None:
        lr_final = V.positive_float(lr_final, "lr_final", meaning="the learning rate at the last step")
        decay = (lr_final / lr) ** (1.0 / max(n_steps - 1, 1))
    history = np.empty(n_steps)
    for step in range(n_steps):
        opt.zero_grad()
        value = objective()
        if value.ndim != 0:
            raise ValueError(f"objective must return a scalar, got shape {tuple(value.shape)}.")
        if not torch.isfinite(value):
            raise FloatingPointError(
                f"the objective became {value.item()} at step {step}; "
                f"lower the learning rate (lr={lr}) or check the model."
            )
        (-value).backward()
        opt.step()
        history[step] = value.item()
        if decay != 1.0:
            for group in opt.param_groups:
                group["lr"] *= decay
    return history
