"""Bayesian regression models whose posterior can be computed: exactly, or on a grid.

Chapter 3 ("Bayesian machine learning") needs two posteriors over weights:

* **Bayesian linear regression** (Bishop 2006, §3.3), where everything is Gaussian and
  closed-form: the posterior p(w | t) = N(w | m_N, S_N), the predictive mean and
  variance, and the log evidence log p(t | lambda, beta).  :class:`BayesianLinearRegression`
  uses the book's notation: ``prior_precision`` is the prior precision lambda
  (p(w) = N(0, lambda^-1 I); Bishop writes alpha, which the book keeps for the dropout
  variance) and ``beta`` the noise precision (p(t | x, w) = N(w^T phi(x), beta^-1)).
* **Bayesian logistic regression with two weights** (MacKay 2003, ch. 41), whose posterior
  has no closed form.  With only two weights we can still compute it by brute force on a
  grid: :class:`GridPosterior2D` normalizes any 2-D log joint numerically, and
  :func:`logistic_grid_posterior` builds it for the logistic model.
  :func:`logistic_predictive` averages the classifier over weights (posterior samples or
  grid cells): the Bayesian predictive p(t* = 1 | x*, X, T) as an ensemble.

Shapes: ``Phi`` is a design matrix (N, D) with one row phi(x_n) per data point, ``t`` the
targets (N,).  Weights are (D,) vectors; samples of weights are stacked as (S, D).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.linalg import cho_factor, cho_solve
from scipy.special import expit, logsumexp

from course_lib import validation as V

__all__ = [
    "sinusoidal_data",
    "polynomial_features",
    "gaussian_features",
    "least_squares",
    "BayesianLinearRegression",
    "GridPosterior2D",
    "logistic_log_likelihood",
    "logistic_grid_posterior",
    "logistic_predictive",
]


# ---------------------------------------------------------------------------------------
# input checks (shared)
# ---------------------------------------------------------------------------------------
def _check_precision(value: float, name: str, meaning: str) -> float:
    return V.positive_float(
        value, name, meaning=meaning, hint=f"a precision is 1 / variance, so pass e.g. {name}=1.0"
    )


def _check_design(Phi, name: str = "Phi") -> np.ndarray:
    Phi = np.asarray(Phi, dtype=float)
    if Phi.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D design matrix of shape (N, D), got shape {Phi.shape}; "
            "for a single feature use x.reshape(-1, 1) or polynomial_features(x, degree)."
        )
    if Phi.shape[0] == 0:
        raise ValueError(f"{name} is empty (0 data points); give at least one row.")
    if Phi.shape[1] == 0:
        raise ValueError(f"{name} has 0 columns; give at least one feature.")
    if not np.all(np.isfinite(Phi)):
        raise ValueError(f"{name} contains NaN or infinite values; clean or drop those rows.")
    return Phi


def _check_targets(t, n: int, name: str = "t") -> np.ndarray:
    t = np.asarray(t, dtype=float)
    if t.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of targets of shape (N,), got shape {t.shape}.")
    if t.shape[0] != n:
        raise ValueError(
            f"shape mismatch: the design matrix has {n} rows but {name} has {t.shape[0]} targets; "
            "give one target per row."
        )
    if not np.all(np.isfinite(t)):
        raise ValueError(f"{name} contains NaN or infinite values; clean or drop those targets.")
    return t


def _check_rng(rng) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"rng must be a numpy.random.Generator, got {type(rng).__name__}; "
            "create one with np.random.default_rng(seed)."
        )
    return rng


def _check_count(n, name: str = "n") -> int:
    return V.positive_int(n, name)


# ---------------------------------------------------------------------------------------
# features and the maximum-likelihood fit
# ---------------------------------------------------------------------------------------
def polynomial_features(x, degree: int) -> np.ndarray:
    """The polynomial design matrix Phi with columns x**0, x**1, ..., x**degree.

    Parameters
    ----------
    x : array_like, shape (N,)
        Scalar inputs.
    degree : int
        Highest power, ``>= 0``.

    Returns
    -------
    ndarray, shape (N, degree + 1)
        ``Phi[n, j] = x[n] ** j``.

    Raises
    ------
    ValueError
        If ``x`` is not 1-D or not finite, or ``degree`` is not a non-negative integer.

    Examples
    --------
    >>> polynomial_features([0.0, 2.0], degree=2)
    array([[1., 0., 0.],
           [1., 2., 4.]])
    """
    degree = V.nonnegative_int(degree, "degree")
    x = np.asarray(x, dtype=float)
    if x.ndim != 1:
        raise ValueError(
            f"x must be a 1-D array of scalar inputs of shape (N,), got shape {x.shape}; "
            "flatten it with np.ravel(x)."
        )
    if not np.all(np.isfinite(x)):
        raise ValueError("x contains NaN or infinite values.")
    return x[:, None] ** np.arange(int(degree) + 1)[None, :]


def sinusoidal_data(
    n: int, rng: np.random.Generator, noise_std: float = 0.2, gap: tuple[float, float] | None = (0.35, 0.65)
) -> tuple[np.ndarray, np.ndarray]:
    """Toy regression data t = sin(2 pi x) + noise, with x uniform on [0, 1] minus a gap.

    The curve of Bishop (2006, §1.1); leaving out the interval ``gap`` shows where a
    model should be unsure.  The first ``m`` of ``n`` points are distributed as a draw
    of size ``m``, so growing ``n`` with the same seed adds points.

    Parameters
    ----------
    n : int
        Number of points (>= 1).
    rng : numpy.random.Generator
        Source of randomness.
    noise_std : float, default 0.2
        Standard deviation of the Gaussian noise (> 0); the noise precision is
        ``beta = 1 / noise_std**2``.
    gap : (float, float) or None, default (0.35, 0.65)
        An interval inside [0, 1] with no inputs; ``None`` for none.

    Returns
    -------
    x, t : ndarray, shape (n,)

    Raises
    ------
    ValueError
        Bad ``n``, ``rng``, ``noise_std`` or ``gap``.
    """
    n = _check_count(n)
    rng = _check_rng(rng)
    noise_std = V.positive_float(noise_std, "noise_std", meaning="the noise standard deviation")
    lo, hi = (0.0, 0.0) if gap is None else (float(gap[0]), float(gap[1]))
    if gap is not None and not (0.0 <= lo < hi <= 1.0 and hi - lo < 1.0):
        raise ValueError(
            f"gap must be an interval (lo, hi) with 0 <= lo < hi <= 1, not all of [0, 1]; got {gap!r}."
        )
    u = rng.uniform(0.0, 1.0 - (hi - lo), size=n)
    x = np.where(u < lo, u, u + (hi - lo))
    t = np.sin(2 * np.pi * x) + noise_std * rng.standard_normal(n)
    return x, t


def gaussian_features(x, centers, width: float, bias: bool = True) -> np.ndarray:
    """A design matrix of Gaussian bumps exp(-(x - c_j)^2 / (2 width^2)), plus a bias column.

    Local basis functions (Bishop 2006, eq. 3.4): away from the data every bump is
    unconstrained, so a Bayesian model's error bars grow there.

    Parameters
    ----------
    x : array_like, shape (N,)
        Scalar inputs.
    centers : array_like, shape (K,)
        Centres c_j of the bumps.
    width : float
        Common width (> 0).
    bias : bool, default True
        Prepend a column of ones.

    Returns
    -------
    ndarray, shape (N, K + bias)

    Raises
    ------
    ValueError
        Non-1-D or non-finite ``x`` or ``centers``, empty ``centers``, non-positive ``width``.
    """
    x = np.asarray(x, dtype=float)
    centers = np.asarray(centers, dtype=float)
    for name, v in (("x", x), ("centers", centers)):
        if v.ndim != 1 or not np.all(np.isfinite(v)):
            raise ValueError(f"{name} must be a 1-D array of finite numbers, got shape {v.shape}.")
    if centers.size == 0:
        raise ValueError("centers is empty; give at least one centre, e.g. np.linspace(0, 1, 9).")
    width = V.positive_float(width, "width", meaning="the width of the Gaussian bumps")
    Phi = np.exp(-0.5 * ((x[:, None] - centers[None, :]) / width) ** 2)
    return np.column_stack([np.ones_like(x), Phi]) if bias else Phi


def least_squares(Phi, t) -> tuple[np.ndarray, float]:
    """The maximum-likelihood fit of linear regression with Gaussian noise.

    w_ML minimizes the sum of squared errors (Bishop 2006, eq. 3.15) and the ML noise
    precision is the inverse mean squared residual (eq. 3.21).

    Parameters
    ----------
    Phi : array_like, shape (N, D)
        Design matrix.
    t : array_like, shape (N,)
        Targets.

    Returns
    -------
    w_ml : ndarray, shape (D,)
        Minimum-norm least-squares weights (unique when ``N >= D`` and Phi has full rank).
    beta_ml : float
        ``1 / mean((t - Phi w_ml)**2)``; ``inf`` when the fit interpolates the data,
        which is the ML estimate's overconfidence when ``N <= D``.

    Raises
    ------
    ValueError
        Empty, non-finite or mismatched inputs.
    """
    Phi = _check_design(Phi)
    t = _check_targets(t, Phi.shape[0])
    w_ml, *_ = np.linalg.lstsq(Phi, t, rcond=None)
    mse = float(np.mean((t - Phi @ w_ml) ** 2))
    beta_ml = np.inf if mse <= 1e-12 * max(1.0, float(np.mean(t**2))) else 1.0 / mse
    return w_ml, beta_ml


# ---------------------------------------------------------------------------------------
# Bayesian linear regression (exact)
# ---------------------------------------------------------------------------------------
class BayesianLinearRegression:
    """Bayesian linear regression with a Gaussian prior and known noise (Bishop 2006, §3.3).

    Model: p(w) = N(w | 0, lambda^-1 I) and p(t_n | w) = N(t_n | w^T phi_n, beta^-1).
    The posterior is Gaussian, p(w | t) = N(w | m_N, S_N), with

        S_N^-1 = lambda I + beta Phi^T Phi,     m_N = beta S_N Phi^T t.

    Parameters
    ----------
    prior_precision : float
        Prior precision lambda of the weights (> 0).
    beta : float
        Noise precision (> 0).

    Attributes
    ----------
    mean : ndarray, shape (D,)
        Posterior mean m_N (available after :meth:`fit`).
    cov : ndarray, shape (D, D)
        Posterior covariance S_N (available after :meth:`fit`).

    Raises
    ------
    ValueError
        If ``prior_precision`` or ``beta`` is not a positive finite number.

    Examples
    --------
    >>> Phi = polynomial_features(np.array([0.0, 1.0]), degree=1)
    >>> model = BayesianLinearRegression(prior_precision=1.0, beta=4.0).fit(Phi, np.array([0.0, 1.0]))
    >>> np.round(model.mean, 4)
    array([0.1379, 0.6897])
    """

    def __init__(self, prior_precision: float, beta: float) -> None:
        self.prior_precision = _check_precision(prior_precision, "prior_precision", "the prior precision")
        self.beta = _check_precision(beta, "beta", "the noise precision")
        self._fitted = False

    def __repr__(self) -> str:
        state = f", D={self.mean.size}, N={self._n}" if self._fitted else ", unfitted"
        lam = self.prior_precision
        return f"BayesianLinearRegression(prior_precision={lam:g}, beta={self.beta:g}{state})"

    # -- training stage ------------------------------------------------------------
    def fit(self, Phi, t) -> BayesianLinearRegression:
        """Compute the posterior N(w | m_N, S_N) for the data (Phi, t).

        Parameters
        ----------
        Phi : array_like, shape (N, D)
            Design matrix, ``N >= 1``.
        t : array_like, shape (N,)
            Targets.

        Returns
        -------
        BayesianLinearRegression
            ``self``, fitted.

        Raises
        ------
        ValueError
            Empty data, non-finite values, or a number of targets different from the
            number of rows of ``Phi``.
        """
        Phi = _check_design(Phi)
        t = _check_targets(t, Phi.shape[0])
        D = Phi.shape[1]
        precision = self.prior_precision * np.eye(D) + self.beta * Phi.T @ Phi  # S_N^{-1}, Bishop eq. 3.54
        chol = cho_factor(precision, lower=True)
        self.cov = cho_solve(chol, np.eye(D))
        self.cov = 0.5 * (self.cov + self.cov.T)
        self.mean = self.beta * cho_solve(chol, Phi.T @ t)  # m_N = beta S_N Phi^T t, eq. 3.53
        self._logdet_precision = 2.0 * float(np.sum(np.log(np.diag(chol[0]))))
        self._Phi, self._t, self._n = Phi, t, Phi.shape[0]
        self._fitted = True
        return self

    def _require_fit(self) -> None:
        if not self._fitted:
            raise RuntimeError("the model is not fitted yet; call fit(Phi, t) first.")

    def _check_new_design(self, Phi) -> np.ndarray:
        Phi = _check_design(Phi)
        if Phi.shape[1] != self.mean.size:
            raise ValueError(
                f"shape mismatch: the model was fitted with D={self.mean.size} features but Phi has "
                f"{Phi.shape[1]} columns; build the test design matrix with the same basis."
            )
        return Phi

    # -- test stage ---------------------------------------------------------------
    def predict(self, Phi, return_std: bool = False):
        """The posterior predictive p(t* | x*, t) = N(t* | m_N^T phi*, sigma_N^2(x*)).

        Parameters
        ----------
        Phi : array_like, shape (M, D)
            Design matrix of the test inputs.
        return_std : bool, default False
            Also return the predictive standard deviation.

        Returns
        -------
        mean : ndarray, shape (M,)
            ``Phi @ m_N``.
        std : ndarray, shape (M,)
            Only if ``return_std``: sqrt(1/beta + phi^T S_N phi) (Bishop eq. 3.59), noise
            plus weight uncertainty.

        Raises
        ------
        RuntimeError
            If called before :meth:`fit`.
        ValueError
            If ``Phi`` has a different number of columns than the training design.
        """
        self._require_fit()
        Phi = self._check_new_design(Phi)
        mean = Phi @ self.mean
        if not return_std:
            return mean
        var = 1.0 / self.beta + np.einsum("md,de,me->m", Phi, self.cov, Phi)
        return mean, np.sqrt(var)

    def log_evidence(self) -> float:
        """The log marginal likelihood log p(t | lambda, beta) of the fitted data.

        Bishop 2006, eq. 3.86 (his alpha is the book's lambda):
        (D/2) log lambda + (N/2) log beta - E(m_N) - (1/2) log|S_N^-1| - (N/2) log 2 pi,
        with E(m_N) = (beta/2) ||t - Phi m_N||^2 + (lambda/2) m_N^T m_N.

        Returns
        -------
        float

        Raises
        ------
        RuntimeError
            If called before :meth:`fit`.
        """
        self._require_fit()
        N, D = self._Phi.shape
        resid = self._t - self._Phi @ self.mean
        E = 0.5 * self.beta * float(resid @ resid) + 0.5 * self.prior_precision * float(self.mean @ self.mean)
        return float(
            0.5 * D * np.log(self.prior_precision)
            + 0.5 * N * np.log(self.beta)
            - E
            - 0.5 * self._logdet_precision
            - 0.5 * N * np.log(2.0 * np.pi)
        )

    def sample_weights(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Draw weight vectors from the posterior N(m_N, S_N).

        Parameters
        ----------
        n : int
            Number of samples (>= 1).
        rng : numpy.random.Generator
            Source of randomness.

        Returns
        -------
        ndarray, shape (n, D)

        Raises
        ------
        RuntimeError
            If called before :meth:`fit`.
        ValueError
            If ``n`` is not a positive integer or ``rng`` is not a Generator.
        """
        self._require_fit()
        n = _check_count(n)
        rng = _check_rng(rng)
        L = np.linalg.cholesky(
            self.cov + 1e-12 * np.trace(self.cov) / self.mean.size * np.eye(self.mean.size)
        )
        return self.mean[None, :] + rng.standard_normal((n, self.mean.size)) @ L.T


# ---------------------------------------------------------------------------------------
# 2-D posteriors on a grid ("usually intractable", but not in two dimensions)
# ---------------------------------------------------------------------------------------
def _check_axis(w, name: str) -> np.ndarray:
    w = np.asarray(w, dtype=float)
    if w.ndim != 1 or w.size < 3:
        raise ValueError(f"{name} must be a 1-D grid of at least 3 points, got shape {w.shape}.")
    steps = np.diff(w)
    if not np.all(np.isfinite(w)) or np.any(steps <= 0) or not np.allclose(steps, steps[0], rtol=1e-6):
        raise ValueError(f"{name} must be finite, increasing and evenly spaced (use np.linspace).")
    return w


@dataclass(frozen=True)
class GridPosterior2D:
    """A posterior over two weights (w1, w2), normalized numerically on an even grid.

    The grid follows ``np.meshgrid(w1, w2)`` (``indexing="xy"``): arrays of shape
    ``(len(w2), len(w1))``, row ``i`` at ``w2[i]``, column ``j`` at ``w1[j]``, so
    ``plt.contour(w1, w2, post.density)`` draws it directly.

    Parameters
    ----------
    w1, w2 : ndarray
        Evenly spaced grid axes.
    log_joint : ndarray, shape (len(w2), len(w1))
        log p(data | w) + log p(w) at every grid point (any additive constant).

    Attributes
    ----------
    probs : ndarray, shape (len(w2), len(w1))
        Posterior probability of each grid cell (sums to one).
    density : ndarray, shape (len(w2), len(w1))
        Posterior density ``probs / cell_area``.
    log_evidence : float
        log of the Riemann sum of exp(log_joint) * cell_area: the evidence
        log p(data) if ``log_joint`` is normalized in w.

    Raises
    ------
    ValueError
        Uneven or too small axes, a ``log_joint`` of the wrong shape, NaN or +inf values,
        or a log joint that is -inf everywhere.
    """

    w1: np.ndarray
    w2: np.ndarray
    log_joint: np.ndarray
    probs: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        w1 = _check_axis(self.w1, "w1")
        w2 = _check_axis(self.w2, "w2")
        lj = np.asarray(self.log_joint, dtype=float)
        if lj.shape != (w2.size, w1.size):
            raise ValueError(
                f"log_joint must have shape (len(w2), len(w1)) = {(w2.size, w1.size)}, got {lj.shape}; "
                "evaluate it on np.meshgrid(w1, w2) (indexing='xy')."
            )
        if np.any(np.isnan(lj)) or np.any(lj == np.inf):
            raise ValueError("log_joint contains NaN or +inf; check the model's log density.")
        if not np.any(np.isfinite(lj)):
            raise ValueError("log_joint is -inf everywhere: the grid holds no posterior mass; widen it.")
        object.__setattr__(self, "w1", w1)
        object.__setattr__(self, "w2", w2)
        object.__setattr__(self, "log_joint", lj)
        object.__setattr__(self, "probs", np.exp(lj - logsumexp(lj)))

    @property
    def cell_area(self) -> float:
        """Area of one grid cell, dw1 * dw2."""
        return float((self.w1[1] - self.w1[0]) * (self.w2[1] - self.w2[0]))

    @property
    def density(self) -> np.ndarray:
        """Posterior density at the grid points (integrates to one on the grid)."""
        return self.probs / self.cell_area

    @property
    def log_evidence(self) -> float:
        """log of sum(exp(log_joint)) * cell_area, the numerical evidence."""
        return float(logsumexp(self.log_joint) + np.log(self.cell_area))

    @property
    def points(self) -> np.ndarray:
        """All grid points as an array of shape (len(w1) * len(w2), 2), in ``probs.ravel()`` order."""
        W1, W2 = np.meshgrid(self.w1, self.w2)
        return np.column_stack([W1.ravel(), W2.ravel()])

    @property
    def mean(self) -> np.ndarray:
        """Posterior mean E[w], shape (2,)."""
        return self.probs.ravel() @ self.points

    @property
    def cov(self) -> np.ndarray:
        """Posterior covariance, shape (2, 2)."""
        d = self.points - self.mean
        return (d * self.probs.ravel()[:, None]).T @ d

    @property
    def map(self) -> np.ndarray:
        """The grid point of highest posterior density, shape (2,)."""
        return self.points[int(np.argmax(self.log_joint))]

    @property
    def edge_mass(self) -> float:
        """Posterior mass on the grid's border cells; near zero when the grid is wide enough."""
        inner = self.probs[1:-1, 1:-1].sum()
        return float(max(0.0, 1.0 - inner))

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Draw weights from the grid posterior: a cell by its probability, then uniform in the cell.

        Parameters
        ----------
        n : int
            Number of samples (>= 1).
        rng : numpy.random.Generator
            Source of randomness.

        Returns
        -------
        ndarray, shape (n, 2)
        """
        n = _check_count(n)
        rng = _check_rng(rng)
        p = self.probs.ravel()
        idx = rng.choice(p.size, size=n, p=p / p.sum())
        step = np.array([self.w1[1] - self.w1[0], self.w2[1] - self.w2[0]])
        return self.points[idx] + (rng.random((n, 2)) - 0.5) * step


def _check_classification_data(X, t) -> tuple[np.ndarray, np.ndarray]:
    X = np.asarray(X, dtype=float)
    if X.ndim != 2 or X.shape[1] != 2:
        raise ValueError(f"X must have shape (N, 2) (two inputs per point), got {X.shape}.")
    if X.shape[0] == 0:
        raise ValueError("X is empty (0 data points); give at least one labelled point.")
    if not np.all(np.isfinite(X)):
        raise ValueError("X contains NaN or infinite values.")
    t = np.asarray(t, dtype=float)
    if t.ndim != 1 or t.shape[0] != X.shape[0]:
        raise ValueError(
            f"shape mismatch: X has {X.shape[0]} points but t has shape {t.shape}; give one label per point."
        )
    if not np.all((t == 0) | (t == 1)):
        raise ValueError(f"labels t must be 0 or 1, got values {np.unique(t)[:5]}.")
    return X, t


def _check_weights(W) -> np.ndarray:
    W = np.asarray(W, dtype=float)
    if W.ndim == 1:
        W = W[None, :]
    if W.ndim != 2 or W.shape[1] != 2 or W.shape[0] == 0:
        raise ValueError(f"weights must have shape (2,) or (S, 2) with S >= 1, got {np.shape(W)}.")
    if not np.all(np.isfinite(W)):
        raise ValueError("weights contain NaN or infinite values.")
    return W


def logistic_log_likelihood(W, X, t) -> np.ndarray:
    """log p(t | X, w) = sum_n [t_n log s(w^T x_n) + (1 - t_n) log s(-w^T x_n)] for many w.

    s is the logistic sigmoid; the model has no bias (MacKay 2003, ch. 41).

    Parameters
    ----------
    W : array_like, shape (S, 2) or (2,)
        Weight vectors.
    X : array_like, shape (N, 2)
        Inputs.
    t : array_like, shape (N,)
        Labels in {0, 1}.

    Returns
    -------
    ndarray, shape (S,)

    Raises
    ------
    ValueError
        Wrong shapes, empty data, non-finite values, labels other than 0/1.
    """
    W = _check_weights(W)
    X, t = _check_classification_data(X, t)
    z = W @ X.T  # (S, N)
    sign = 2.0 * t - 1.0  # log s(z) if t = 1, log s(-z) if t = 0
    return -np.logaddexp(0.0, -sign[None, :] * z).sum(axis=1)


def logistic_grid_posterior(
    X, t, prior_precision: float, lim: float = 8.0, n_grid: int = 201
) -> GridPosterior2D:
    """The posterior of a 2-weight logistic regression on a square grid.

    p(w | X, t) is proportional to prod_n s(w^T x_n)^t_n s(-w^T x_n)^(1-t_n) N(w | 0, lambda^-1 I),
    evaluated at every point of [-lim, lim]^2 and normalized numerically.

    Parameters
    ----------
    X : array_like, shape (N, 2)
        Inputs, ``N >= 1``.
    t : array_like, shape (N,)
        Labels in {0, 1}.
    prior_precision : float
        Prior precision lambda (> 0).
    lim : float, default 8.0
        Half-width of the grid.
    n_grid : int, default 201
        Points per axis (>= 3).

    Returns
    -------
    GridPosterior2D
        Check ``edge_mass`` is small: otherwise widen ``lim``.

    Raises
    ------
    ValueError
        Bad data (see :func:`logistic_log_likelihood`), non-positive ``prior_precision`` or ``lim``,
        or ``n_grid < 3``.
    """
    prior_precision = _check_precision(prior_precision, "prior_precision", "the prior precision")
    X, t = _check_classification_data(X, t)
    lim = V.positive_float(lim, "lim", meaning="the grid half-width")
    n_grid = V.integer(n_grid, "n_grid", minimum=3)
    w = np.linspace(-lim, lim, n_grid)
    W1, W2 = np.meshgrid(w, w)
    pts = np.column_stack([W1.ravel(), W2.ravel()])
    log_prior = np.log(prior_precision / (2 * np.pi)) - 0.5 * prior_precision * np.sum(pts**2, axis=1)
    log_joint = logistic_log_likelihood(pts, X, t) + log_prior
    return GridPosterior2D(w, w, log_joint.reshape(W1.shape))


def logistic_predictive(X, W, probs=None, chunk: int = 4096) -> np.ndarray:
    """The ensemble prediction p(t* = 1 | x*) = sum_s pi_s s(w_s^T x*).

    With posterior samples (``probs=None``, equal weights 1/S) this is the Monte Carlo
    estimate of the Bayesian predictive; with grid points and their ``probs`` it is the
    quadrature on the grid; with a single weight vector (e.g. the MAP) it is the plug-in
    classifier.

    Parameters
    ----------
    X : array_like, shape (M, 2)
        Test inputs.
    W : array_like, shape (S, 2) or (2,)
        Weight vectors.
    probs : array_like, shape (S,), optional
        Non-negative weights of the ensemble members, summing to one.
    chunk : int, default 4096
        Test inputs processed at once (bounds memory at ``chunk * S`` floats).
        Members with ``probs`` below 1e-12 of the largest are skipped (grid cells far
        in the tails), which changes the result by less than 1e-12 per skipped member.

    Returns
    -------
    ndarray, shape (M,)

    Raises
    ------
    ValueError
        Wrong shapes, non-finite values, or ``probs`` that are negative or do not sum to one.
    """
    W = _check_weights(W)
    X = np.asarray(X, dtype=float)
    if X.ndim != 2 or X.shape[1] != 2:
        raise ValueError(f"X must have shape (M, 2), got {X.shape}.")
    if not np.all(np.isfinite(X)):
        raise ValueError("X contains NaN or infinite values.")
    if probs is None:
        probs = np.full(W.shape[0], 1.0 / W.shape[0])
    else:
        probs = np.asarray(probs, dtype=float).ravel()
        if probs.shape[0] != W.shape[0]:
            raise ValueError(f"shape mismatch: {W.shape[0]} weight vectors but {probs.shape[0]} probs.")
        if np.any(probs < 0) or not np.isclose(probs.sum(), 1.0, atol=1e-6):
            raise ValueError("probs must be non-negative and sum to one (normalize them first).")
    keep = probs > 1e-12 * probs.max()  # skip grid cells without mass (total error < 1e-12 per cell)
    W, probs = W[keep], probs[keep]
    chunk = _check_count(chunk, "chunk")
    out = np.empty(X.shape[0])
    for start in range(0, X.shape[0], chunk):
        out[start : start + chunk] = expit(X[start : start + chunk] @ W.T) @ probs
    return out
