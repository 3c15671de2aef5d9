"""The KL term of variational dropout under the log-uniform prior (chapters 6 and 7).

With the posterior q(w) = N(w | theta, alpha theta^2) and the improper log-uniform prior
p(|w|) proportional to 1/|w|, the negative KL divergence depends on alpha only:

    -KL(alpha) = 1/2 log alpha - E_{eps ~ N(0,1)} log|1 + sqrt(alpha) eps| + C.

The module fixes C so that -KL -> 0 as alpha -> infinity (C = -(gamma + ln 2)/2, see
:data:`C_INF`) and offers

* :func:`neg_kl` -- the reference, by adaptive quadrature (error below 1e-9 on
  log alpha in [-20, 20]); :func:`neg_kl_series` -- an exact series to check it;
  :func:`neg_kl_mc` -- the same by Monte Carlo, with standard errors;
* :func:`neg_kl_w_space` -- -KL computed directly over w for given theta and alpha, to
  check numerically that it does not depend on theta;
* :func:`neg_kl_molchanov` -- the sigmoid + softplus approximation of Molchanov et al. (2017),
  NumPy and torch friendly (the sparse variational dropout layers call it);
* :func:`neg_kl_kingma` -- the cubic approximation of Kingma et al. (2015), valid for alpha <= 1;
* :func:`fit_molchanov` -- least-squares fit of Molchanov's constants to the reference.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Union

import numpy as np
import numpy.typing as npt
import torch
from scipy import integrate, optimize

from course_lib import validation as V

ArrayOrTensor = Union[np.ndarray, torch.Tensor, float]

#: Published constants of Molchanov, Ashukha & Vetrov (2017), eq. (14).
K1, K2, K3 = 0.63576, 1.87320, 1.48695

#: -E log|eps| for eps ~ N(0, 1), i.e. (gamma + ln 2) / 2 = 0.6351814...: the alpha -> infinity
#: limit of 1/2 log alpha - E log|1 + sqrt(alpha) eps|, subtracted so that -KL -> 0.
C_INF = 0.5 * (np.euler_gamma + math.log(2.0))

#: Kingma, Salimans & Welling (2015)'s cubic coefficients c1, c2, c3 (their eq. for alpha <= 1).
C1, C2, C3 = 1.16145124, -1.50204118, 0.58629921

#: The largest log alpha the cubic was made for (alpha <= 1): variational-dropout layers that use
#: :func:`neg_kl_kingma` clip log alpha there (the sparse layers' own clip,
#: :data:`course_lib.layers.LOG_ALPHA_MAX` = 8, is a numerical guard of another KL).
KINGMA_LOG_ALPHA_MAX = 0.0

#: The constant of the cubic.  The paper leaves it unnamed; this is the least-squares offset of
#: 1/2 log alpha + c1 alpha + c2 alpha^2 + c3 alpha^3 from :func:`neg_kl` on the midpoint grid
#: alpha_i = (i - 1/2)/1000, i = 1..1000 (uniform in alpha on (0, 1], the range the cubic was
#: made for); :func:`kingma_constant` recomputes it.
C_KINGMA = -0.66959

#: Integration half-width in units of the standard deviation (the Gaussian mass beyond it is
#: below 1e-40).
_HALF_WIDTH = 14.0


def _check_numpy(log_alpha: npt.ArrayLike, name: str = "log_alpha") -> np.ndarray:
    """Convert to a float array and reject empty, NaN or infinite input."""
    try:
        x = np.asarray(log_alpha, dtype=float)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"{name} must be a number, a NumPy array or a torch tensor of real numbers; "
            f"got {type(log_alpha).__name__}."
        ) from exc
    if x.size == 0:
        raise ValueError(f"{name} is empty; pass at least one value of log alpha.")
    if not np.all(np.isfinite(x)):
        raise ValueError(
            f"{name} contains NaN or inf ({int(np.sum(~np.isfinite(x)))} of {x.size} values); "
            "log alpha must be finite -- clip it (e.g. to [-20, 20]) before calling."
        )
    return x


def _check_tensor(log_alpha: torch.Tensor, name: str = "log_alpha") -> None:
    """Reject empty, non-floating, NaN or infinite tensors."""
    if log_alpha.numel() == 0:
        raise ValueError(f"{name} is empty; pass at least one value of log alpha.")
    if not torch.is_floating_point(log_alpha):
        raise TypeError(
            f"{name} must be a floating-point tensor, got dtype {log_alpha.dtype}; convert it with .float()."
        )
    finite = torch.isfinite(log_alpha.detach())
    if not bool(finite.all()):
        n_bad = int((~finite).sum())
        raise ValueError(
            f"{name} contains NaN or inf ({n_bad} of {log_alpha.numel()} values); "
            "log alpha must be finite -- clip it (e.g. to [-20, 20]) before calling."
        )


def neg_kl_molchanov(
    log_alpha: ArrayOrTensor,
    k1: float = K1,
    k2: float = K2,
    k3: float = K3,
    check: bool = True,
) -> ArrayOrTensor:
    """Molchanov et al.'s approximation of -KL(N(theta, alpha theta^2) || log-uniform).

    .. math::

        -\\mathrm{KL} \\approx k_1 \\sigma(k_2 + k_3 \\log\\alpha)
            - \\tfrac12 \\log(1 + 1/\\alpha) - k_1,

    computed in the stable form ``-0.5 * softplus(-log_alpha)`` for the middle term.

    Parameters
    ----------
    log_alpha : float, numpy.ndarray or torch.Tensor
        Log of the dropout ratio alpha = sigma^2 / theta^2.  Any shape.
    k1, k2, k3 : float
        The constants; the defaults are the published ones (0.63576, 1.87320, 1.48695).
    check : bool, default True
        Validate a tensor input (not empty, floating point, finite).  The finiteness test
        reads a value back from the device, which stalls a GPU; the sparse layers, whose
        log alpha is clipped and so finite unless training has diverged (the trainer checks
        its loss every epoch), pass ``check=False`` on their hot path.

    Returns
    -------
    numpy.ndarray or torch.Tensor
        -KL, elementwise, same shape as ``log_alpha``: a tensor (gradients flow) for a
        tensor input, a float array otherwise.  Always <= 0 up to the fit error and -> 0
        as alpha -> infinity.

    Raises
    ------
    ValueError
        Empty input, or NaN / inf values.
    TypeError
        Non-numeric input or an integer tensor.

    Examples
    --------
    >>> round(float(neg_kl_molchanov(0.0)), 4)  # alpha = 1
    -0.4312
    """
    for kname, kval in (("k1", k1), ("k2", k2), ("k3", k3)):
        V.finite_float(kval, kname)
    if isinstance(log_alpha, torch.Tensor):
        if check:
            _check_tensor(log_alpha)
        return k1 * torch.sigmoid(k2 + k3 * log_alpha) - 0.5 * torch.nn.functional.softplus(-log_alpha) - k1
    x = _check_numpy(log_alpha)
    sig = 0.5 * (1.0 + np.tanh(0.5 * (k2 + k3 * x)))  # stable sigmoid
    return k1 * sig - 0.5 * np.logaddexp(0.0, -x) - k1


# ---------------------------------------------------------------------------------------
# The reference: quadrature and Monte Carlo
# ---------------------------------------------------------------------------------------


def _gauss_log_abs(mean: float, std: float) -> tuple[float, float]:
    """E log|w| for w ~ N(mean, std^2) by adaptive quadrature that handles the singularity at 0.

    The range mean +- 14 std is split at w = 0 when it contains 0; on each side the log
    singularity sits at an end point and is integrated exactly by QUADPACK's QAWS rule
    (``weight="alg-loga"``/``"alg-logb"``: the Gaussian density times log(w) or log(-w)).
    Returns the value and QUADPACK's error estimate.
    """
    lo, hi = mean - _HALF_WIDTH * std, mean + _HALF_WIDTH * std
    norm = 1.0 / (std * math.sqrt(2.0 * math.pi))

    def density(w: float) -> float:
        z = (w - mean) / std
        return norm * math.exp(-0.5 * z * z)

    opts = dict(epsabs=1e-14, epsrel=1e-12, limit=200)
    if not lo < 0.0 < hi:
        return integrate.quad(lambda w: density(w) * math.log(abs(w)), lo, hi, **opts)
    left, e_left = integrate.quad(density, lo, 0.0, weight="alg-logb", wvar=(0.0, 0.0), **opts)
    right, e_right = integrate.quad(density, 0.0, hi, weight="alg-loga", wvar=(0.0, 0.0), **opts)
    return left + right, e_left + e_right


@functools.lru_cache(maxsize=65536)
def _neg_kl_scalar(log_alpha: float) -> float:
    """-KL for one value: -E log|eps + alpha^(-1/2)| - C_INF (exact rewrite of the definition)."""
    mu = math.exp(-0.5 * log_alpha)
    value, _ = _gauss_log_abs(mu, 1.0)
    return -value - C_INF


def neg_kl(log_alpha: npt.ArrayLike | torch.Tensor) -> np.ndarray:
    """The reference -KL(N(theta, alpha theta^2) || log-uniform), by quadrature.

    .. math::

        -\\mathrm{KL}(\\alpha) = \\tfrac12\\log\\alpha
            - \\mathbb{E}_{\\varepsilon\\sim\\mathcal N(0,1)}\\log|1+\\sqrt\\alpha\\,\\varepsilon|
            - \\tfrac12(\\gamma + \\ln 2),

    normalised to vanish as alpha -> infinity.  It is evaluated in the equivalent form
    ``-E log|eps + alpha^(-1/2)| + E log|eps|`` with adaptive quadrature split at the log
    singularity eps = -alpha^(-1/2), which QUADPACK's QAWS rule integrates exactly; the error is below 1e-9 for log alpha in
    [-20, 20] (checked against an exact series in the tests).  Values are cached.

    Parameters
    ----------
    log_alpha : float or array_like
        Log of alpha = sigma^2 / theta^2, any shape.

    Returns
    -------
    numpy.ndarray
        -KL elementwise, same shape as ``log_alpha`` (a 0-d array for a scalar).

    Raises
    ------
    ValueError
        Empty input or NaN / inf values.
    TypeError
        Non-numeric input.

    Examples
    --------
    >>> round(float(neg_kl(0.0)), 6)
    -0.426686
    """
    if isinstance(log_alpha, torch.Tensor):
        log_alpha = log_alpha.detach().cpu().numpy()
    x = _check_numpy(log_alpha)
    uniq, inverse = np.unique(x, return_inverse=True)
    values = np.array([_neg_kl_scalar(float(v)) for v in uniq])
    return values[inverse].reshape(x.shape)


def neg_kl_series(log_alpha: npt.ArrayLike) -> np.ndarray:
    """-KL(alpha) from an exact series, independent of the quadrature (for checking it).

    (eps + mu)^2 with mu = alpha^(-1/2) is noncentral chi-square with one degree of freedom and
    noncentrality mu^2: a Poisson(mu^2 / 2) mixture of chi-square(1 + 2j) variables, whose log
    has mean log 2 + digamma(1/2 + j).  Hence
    ``-KL = -1/2 (log 2 + sum_j Pois(j; mu^2/2) digamma(1/2 + j)) - C_INF``.

    Parameters
    ----------
    log_alpha : float or array_like
        Log of alpha; at least -12 (below that the series needs millions of terms; use
        :func:`neg_kl`).

    Returns
    -------
    numpy.ndarray
        -KL, same shape as ``log_alpha``.

    Raises
    ------
    ValueError
        Empty or non-finite input, or values below -12.
    """
    from scipy import special, stats

    x = _check_numpy(log_alpha)
    if np.any(x < -12.0):
        raise ValueError(
            f"neg_kl_series needs log_alpha >= -12 (got min {x.min():.3g}): the series has about "
            "exp(-log_alpha)/2 terms there; use neg_kl for smaller alpha."
        )
    out = np.empty(x.size)
    for i, la in enumerate(x.reshape(-1)):
        m = 0.5 * math.exp(-la)
        j = np.arange(int(m + 40.0 * math.sqrt(m) + 60.0))
        e_log_x2 = math.log(2.0) + float(np.sum(stats.poisson.pmf(j, m) * special.digamma(j + 0.5)))
        out[i] = -0.5 * e_log_x2 - C_INF
    return out.reshape(x.shape)


@dataclass(frozen=True)
class MCEstimate:
    """A Monte Carlo estimate with its standard error.

    Attributes
    ----------
    mean : numpy.ndarray
        The estimate, one per input value.
    std_error : numpy.ndarray
        Its standard error, sample standard deviation / sqrt(n_samples).
    n_samples : int
        Number of samples behind each estimate.
    """

    mean: np.ndarray
    std_error: np.ndarray
    n_samples: int


def neg_kl_mc(log_alpha: npt.ArrayLike, n_samples: int = 10_000, seed: int = 0) -> MCEstimate:
    """-KL(alpha) by Monte Carlo: the average of ``-log|eps_i + alpha^(-1/2)| - C_INF``.

    The same samples eps_1..eps_n ~ N(0, 1) are used for every alpha (common random numbers),
    so the estimated curve is smooth in alpha.

    Parameters
    ----------
    log_alpha : float or array_like
        Log of alpha, any shape.
    n_samples : int, default 10000
        Number of samples (at least 2, for a standard error).
    seed : int, default 0
        Seed of the NumPy generator.

    Returns
    -------
    MCEstimate
        ``mean`` and ``std_error`` of the shape of ``log_alpha``.

    Raises
    ------
    ValueError
        Empty or non-finite ``log_alpha``, ``n_samples`` < 2 or a negative seed.
    TypeError
        Non-integer ``n_samples`` or ``seed``.
    """
    x = _check_numpy(log_alpha)
    n = V.integer(n_samples, "n_samples", minimum=2, hint="use at least 2 samples")
    s = V.nonnegative_int(seed, "seed", hint="use a non-negative integer seed")
    eps = np.random.default_rng(s).standard_normal(n)
    mu = np.exp(-0.5 * x.reshape(-1))
    means = np.empty(mu.size)
    errors = np.empty(mu.size)
    for i, m in enumerate(mu):  # a loop keeps memory at O(n), whatever the number of alphas
        values = -np.log(np.abs(eps + m)) - C_INF
        means[i] = values.mean()
        errors[i] = values.std(ddof=1) / math.sqrt(n)
    return MCEstimate(means.reshape(x.shape), errors.reshape(x.shape), n)


def neg_kl_w_space(theta: npt.ArrayLike, log_alpha: npt.ArrayLike) -> np.ndarray:
    """-KL(N(theta, alpha theta^2) || p), p(w) = 1/|w| unnormalised, computed over w itself.

    Evaluates the definition ``H[q] + E_q log p(w) = 1/2 log(2 pi e alpha theta^2) - E_q log|w|``
    by quadrature of the Gaussian density of w times log|w| -- the integrand depends on theta,
    so this checks (rather than assumes) that the result does not.  The log-uniform prior is
    improper, so -KL is defined up to an additive constant; this function uses p(w) = 1/|w|
    and therefore equals ``neg_kl(log_alpha) + 1/2 log(2 pi e) + C_INF`` for every theta.

    Parameters
    ----------
    theta : float or array_like
        Posterior means, non-zero; broadcast against ``log_alpha``.
    log_alpha : float or array_like
        Log of alpha.

    Returns
    -------
    numpy.ndarray
        -KL up to the prior's constant, of the broadcast shape.

    Raises
    ------
    ValueError
        Empty or non-finite input, theta = 0 (q would be a point mass), or shapes that do
        not broadcast.
    """
    t = _check_numpy(theta, "theta")
    x = _check_numpy(log_alpha)
    if np.any(t == 0):
        raise ValueError(
            "theta must be non-zero: with theta = 0 the variance alpha theta^2 is 0 and q is a "
            "point mass whose KL is infinite; use a small non-zero theta instead."
        )
    try:
        t, x = np.broadcast_arrays(t, x)
    except ValueError as exc:
        raise ValueError(
            f"theta (shape {t.shape}) and log_alpha (shape {x.shape}) do not broadcast; "
            "give arrays of the same shape or a scalar for one of them."
        ) from exc
    out = np.empty(t.shape)
    for idx in np.ndindex(t.shape):
        th, la = float(t[idx]), float(x[idx])
        std = math.exp(0.5 * la) * abs(th)
        e_log_abs, _ = _gauss_log_abs(th, std)
        entropy = 0.5 * math.log(2.0 * math.pi * math.e) + math.log(std)
        out[idx] = entropy - e_log_abs
    return out


# ---------------------------------------------------------------------------------------
# Kingma et al.'s cubic
# ---------------------------------------------------------------------------------------


def neg_kl_kingma(log_alpha: ArrayOrTensor, constant: float = C_KINGMA) -> ArrayOrTensor:
    """Kingma et al. (2015)'s cubic approximation of -KL, made for alpha <= 1.

    .. math::

        -\\mathrm{KL} \\approx C + \\tfrac12\\log\\alpha + c_1\\alpha + c_2\\alpha^2 + c_3\\alpha^3,

    with :data:`C1`, :data:`C2`, :data:`C3`.  Beyond alpha = 1 the cubic term makes it diverge
    (chapter 7); variational-dropout layers clip log alpha at :data:`KINGMA_LOG_ALPHA_MAX` = 0
    (alpha = 1) before calling it.

    Parameters
    ----------
    log_alpha : float, numpy.ndarray or torch.Tensor
        Log of alpha, any shape.
    constant : float, default :data:`C_KINGMA`
        The additive constant C (irrelevant for gradients).

    Returns
    -------
    numpy.ndarray or torch.Tensor
        Same type and shape as the input; gradients flow through tensors.

    Raises
    ------
    ValueError
        Empty or non-finite input, or a non-finite ``constant``.
    TypeError
        Non-numeric input or an integer tensor.
    """
    V.finite_float(constant, "constant")
    if isinstance(log_alpha, torch.Tensor):
        _check_tensor(log_alpha)
        alpha = torch.exp(log_alpha)
    else:
        log_alpha = _check_numpy(log_alpha)
        alpha = np.exp(log_alpha)
    return constant + 0.5 * log_alpha + alpha * (C1 + alpha * (C2 + alpha * C3))


def kingma_constant(n_points: int = 1000) -> float:
    """Least-squares constant of the cubic against :func:`neg_kl`, alpha uniform on (0, 1].

    Parameters
    ----------
    n_points : int, default 1000
        Midpoint grid alpha_i = (i - 1/2) / n_points.

    Returns
    -------
    float
        The mean of ``neg_kl - (1/2 log alpha + c1 alpha + c2 alpha^2 + c3 alpha^3)``.
    """
    n = V.positive_int(n_points, "n_points", hint="use a positive number of points")
    alpha = (np.arange(1, n + 1) - 0.5) / n
    log_alpha = np.log(alpha)
    return float(np.mean(neg_kl(log_alpha) - neg_kl_kingma(log_alpha, constant=0.0)))


# ---------------------------------------------------------------------------------------
# Fitting Molchanov et al.'s form
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MolchanovFit:
    """The result of :func:`fit_molchanov`.

    Attributes
    ----------
    k1, k2, k3 : float
        The fitted constants.
    C : float
        The additive constant used: ``-C_INF`` (paper procedure) or ``-k1`` (tied).
    tied : bool
        Whether C was tied to -k1 during the fit.
    sse : float
        Sum of squared errors against the reference on the grid.
    max_abs_error : float
        Largest absolute error on the grid.
    log_alpha : numpy.ndarray
        The grid.
    reference : numpy.ndarray
        The values fitted (quadrature, or Monte Carlo if ``n_samples`` was given).
    residual : numpy.ndarray
        Approximation minus reference on the grid.
    """

    k1: float
    k2: float
    k3: float
    C: float
    tied: bool
    sse: float
    max_abs_error: float
    log_alpha: np.ndarray = field(repr=False)
    reference: np.ndarray = field(repr=False)
    residual: np.ndarray = field(repr=False)

    @property
    def constants(self) -> tuple[float, float, float]:
        """``(k1, k2, k3)``."""
        return (self.k1, self.k2, self.k3)

    def relative_difference(self) -> np.ndarray:
        """``(k - k_published) / k_published`` for k1, k2, k3 (fractions, not per cent)."""
        return (np.array(self.constants) - np.array([K1, K2, K3])) / np.array([K1, K2, K3])

    def __call__(self, log_alpha: ArrayOrTensor) -> ArrayOrTensor:
        """The fitted approximation with the constant C that was used in the fit."""
        return neg_kl_molchanov(log_alpha, self.k1, self.k2, self.k3) + (self.k1 + self.C)


def molchanov_errors(
    k1: float,
    k2: float,
    k3: float,
    tied: bool = True,
    log_alpha_min: float = -10.0,
    log_alpha_max: float = 10.0,
    n_grid: int = 2001,
) -> tuple[float, float]:
    """SSE and max abs error of given constants against :func:`neg_kl` on a uniform grid.

    Parameters
    ----------
    k1, k2, k3 : float
        The constants (e.g. the published :data:`K1`, :data:`K2`, :data:`K3`).
    tied : bool, default True
        Use C = -k1 (True, the published formula) or C = -C_INF (False).
    log_alpha_min, log_alpha_max, n_grid : float, float, int
        The grid, as in :func:`fit_molchanov`.

    Returns
    -------
    (float, float)
        Sum of squared errors and maximum absolute error.
    """
    grid = _grid(log_alpha_min, log_alpha_max, n_grid)
    C = -k1 if tied else -C_INF
    r = neg_kl_molchanov(grid, k1, k2, k3) + (k1 + C) - neg_kl(grid)
    return float(np.sum(r**2)), float(np.max(np.abs(r)))


def _grid(lo: float, hi: float, n: int) -> np.ndarray:
    """A validated uniform grid on [lo, hi] with n points."""
    lo, hi = V.finite_float(lo, "log_alpha_min"), V.finite_float(hi, "log_alpha_max")
    if not lo < hi:
        raise ValueError(
            f"the fit range is empty: log_alpha_min={lo} must be smaller than log_alpha_max={hi}."
        )
    n = V.integer(n, "n_grid", minimum=4, hint="a fit of 3 constants needs at least 4 points")
    return np.linspace(lo, hi, n)


def fit_molchanov(
    log_alpha_min: float = -10.0,
    log_alpha_max: float = 10.0,
    n_grid: int = 2001,
    tied: bool = False,
    n_samples: int | None = None,
    seed: int = 0,
) -> MolchanovFit:
    """Fit k1, k2, k3 of ``k1 sigma(k2 + k3 log alpha) - 1/2 log(1 + 1/alpha) + C`` by least squares.

    Called with no arguments this follows the paper's procedure as reconstructed in chapter 7:
    a uniform grid of 2001 points on log alpha in [-10, 10], the quadrature reference, and C
    **fixed** at -(gamma + ln 2)/2 (the alpha -> infinity limit) with k1 free.  With
    ``tied=True`` the constant is tied, C = -k1, during the fit (the form the formula is
    usually written in).

    Parameters
    ----------
    log_alpha_min, log_alpha_max : float, default -10, 10
        The fit range of log alpha.
    n_grid : int, default 2001
        Number of grid points (uniform in log alpha, at least 4).
    tied : bool, default False
        Tie C = -k1 instead of fixing C = -C_INF.
    n_samples : int, optional
        Fit to a Monte Carlo reference with this many samples (:func:`neg_kl_mc`) instead of
        the quadrature; the errors are then against that noisy reference.
    seed : int, default 0
        Seed of the Monte Carlo reference.

    Returns
    -------
    MolchanovFit
        Constants, SSE, max abs error, the grid, the reference and the residual.

    Raises
    ------
    ValueError
        A non-finite or empty range, fewer than 4 grid points, or a bad ``n_samples``/``seed``.
    RuntimeError
        If the least-squares solver does not converge.

    Examples
    --------
    >>> fit = fit_molchanov()
    >>> [round(k, 4) for k in fit.constants]
    [0.6362, 1.8755, 1.4888]
    """
    grid = _grid(log_alpha_min, log_alpha_max, n_grid)
    tied = V.boolean(tied, "tied")
    if n_samples is None:
        reference = neg_kl(grid)
    else:
        reference = neg_kl_mc(grid, n_samples=n_samples, seed=seed).mean
    softplus_term = -0.5 * np.logaddexp(0.0, -grid)

    def residual(k: np.ndarray) -> np.ndarray:
        k1, k2, k3 = k
        C = -k1 if tied else -C_INF
        sig = 0.5 * (1.0 + np.tanh(0.5 * (k2 + k3 * grid)))
        return k1 * sig + softplus_term + C - reference

    sol = optimize.least_squares(
        residual, x0=np.array([K1, K2, K3]), method="lm", xtol=1e-14, ftol=1e-14, gtol=1e-14
    )
    if not sol.success:
        raise RuntimeError(f"the least-squares fit did not converge: {sol.message}")
    k1, k2, k3 = (float(v) for v in sol.x)
    r = residual(sol.x)
    return MolchanovFit(
        k1=k1,
        k2=k2,
        k3=k3,
        C=-k1 if tied else -C_INF,
        tied=bool(tied),
        sse=float(np.sum(r**2)),
        max_abs_error=float(np.max(np.abs(r))),
        log_alpha=grid,
        reference=reference,
        residual=r,
    )
