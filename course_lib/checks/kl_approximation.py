"""The checks of assignment A3 (the KL approximation).

Checks: :func:`check_neg_kl_mc`, :func:`check_neg_kl_approx`, :func:`check_fit`.

Each runs the student's function on fixed inputs (other ones with ``hidden=SEED``), compares it
with the library's reference and names the typical mistake it matches; see :mod:`course_lib.checks`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import NoReturn

import numpy as np

from course_lib import kl as kl_lib
from course_lib.checks.core import (
    _UPSTREAM,
    CheckFailed,
    _call,
    _diagnose,
    _graded,
    _ok,
    _rng,
    _to_array,
)

_LOG_ALPHA_TEST = np.array([-6.0, -2.0, -0.5, 0.0, 1.0, 3.0, 6.0])


def _ref_neg_kl_approx(log_alpha, k1, k2, k3):
    return kl_lib.neg_kl_molchanov(np.asarray(log_alpha, dtype=float), k1, k2, k3)


_UPSTREAM["neg_kl_approx"] = ("check_neg_kl_approx", _ref_neg_kl_approx)


@_graded
def check_neg_kl_mc(fn: Callable[[np.ndarray, np.ndarray], np.ndarray], hidden: int | None = None) -> None:
    """Check ``fn(log_alpha, eps) -> -KL(alpha)`` by Monte Carlo with the given samples ``eps``.

    Reference: ``1/2 log alpha - mean(log|1 + sqrt(alpha) eps|) - (gamma + ln 2)/2`` (equal to
    :func:`course_lib.kl.neg_kl_mc` with the same samples).  Mistakes caught: the sign flipped
    (KL instead of -KL); the constant C left out, or added (+C); ``log alpha`` instead of
    ``1/2 log alpha``; alpha instead of sqrt(alpha) in front of eps; no absolute value inside
    the log (NaN).  ``hidden``: seed of other inputs.

    Raises
    ------
    CheckFailed
        With the hint of the diagnosed mistake.
    """
    check = "check_neg_kl_mc"
    if hidden is None:
        eps = np.random.default_rng(5).standard_normal(2000)
        la = _LOG_ALPHA_TEST
    else:
        rng = _rng(hidden, 0)
        eps = rng.standard_normal(1500)
        la = np.sort(rng.uniform(-7, 7, size=9))

    def e_log(scale: np.ndarray, absolute: bool = True) -> np.ndarray:
        inner = 1 + scale[:, None] * eps[None, :]
        return np.mean(np.log(np.abs(inner) if absolute else inner), axis=1)

    sqrt_alpha = np.exp(0.5 * la)
    expected = 0.5 * la - e_log(sqrt_alpha) - kl_lib.C_INF
    no_abs = 0.5 * la - e_log(sqrt_alpha, absolute=False) - kl_lib.C_INF
    mistakes = [
        (
            "sign",
            -expected,
            "you return +KL: the task asks for -KL (<= 0, rising to 0 as alpha grows). Flip the sign.",
        ),
        (
            "no_constant",
            expected + kl_lib.C_INF,
            "the constant C = -(gamma + ln 2)/2 = -0.6352 is missing: without it -KL does not tend to 0 "
            "as alpha -> infinity.",
        ),
        (
            "plus_constant",
            expected + 2 * kl_lib.C_INF,
            "the constant has the wrong sign: subtract kl.C_INF = (gamma + ln 2)/2 = 0.6352, do not add "
            "it (-KL must be <= 0 and tend to 0 as alpha -> infinity).",
        ),
        (
            "log_alpha_not_half",
            expected + 0.5 * la,
            "the first term should be 1/2 log alpha (from log sqrt(alpha)), not log alpha.",
        ),
        (
            "alpha_not_sqrt",
            0.5 * la - e_log(np.exp(la)) - kl_lib.C_INF,
            "eps is multiplied by alpha; the weight is w = theta (1 + sqrt(alpha) eps), so the log holds "
            "|1 + sqrt(alpha) eps| with sqrt(alpha) = exp(log_alpha / 2).",
        ),
        (
            "no_abs",
            no_abs,
            "the log of a negative number gives NaN: 1 + sqrt(alpha) eps is negative for some eps; "
            "the KL has log|1 + sqrt(alpha) eps| with an absolute value.",
        ),
    ]
    got = _call(fn, (la.copy(), eps.copy()), check)
    _diagnose(check, got, expected, mistakes, "-KL", rtol=1e-6, atol=1e-6)
    _ok("the Monte Carlo -KL matches the reference formula for the same samples.", hidden)


def _approx_variants(la: np.ndarray, k1: float, k2: float, k3: float) -> dict[str, np.ndarray]:
    """The approximation and its typical corruptions, for the checks of Tasks 2 and 3."""
    sig = 1.0 / (1.0 + np.exp(-(k2 + k3 * la)))
    sp = np.logaddexp(0.0, -la)
    return {
        "ok": k1 * sig - 0.5 * sp - k1,
        "log_one_plus_alpha": k1 * sig - 0.5 * np.logaddexp(0.0, la) - k1,
        "softplus_half": k1 * sig - sp - k1,
        "plus_k1": k1 * sig - 0.5 * sp + k1,
        "alpha_in_sigmoid": k1 / (1.0 + np.exp(-(k2 + k3 * np.exp(la)))) - 0.5 * sp - k1,
    }


_APPROX_HINTS = {
    "log_one_plus_alpha": "the middle term is -1/2 log(1 + 1/alpha) (= -1/2 softplus(-log alpha)), "
    "not log(1 + alpha).",
    "softplus_half": "the factor 1/2 in front of log(1 + 1/alpha) is missing.",
    "plus_k1": "the constant is -k1 (so that -KL -> 0 as alpha -> infinity), not +k1.",
    "alpha_in_sigmoid": "the sigmoid takes log alpha: sigma(k2 + k3 log alpha); you put alpha = "
    "exp(log_alpha) inside it.",
}


@_graded
def check_neg_kl_approx(
    fn: Callable[[np.ndarray, float, float, float], np.ndarray], hidden: int | None = None
) -> None:
    """Check ``fn(log_alpha, k1, k2, k3)`` = k1 sigmoid(k2 + k3 log alpha) - 1/2 log(1 + 1/alpha) - k1.

    Mistakes caught: ``log(1 + alpha)`` instead of ``log(1 + 1/alpha)``; a missing 1/2; ``+ k1``
    instead of ``- k1``; alpha instead of log alpha inside the sigmoid.  Reference:
    :func:`course_lib.kl.neg_kl_molchanov`.  ``hidden``: seed of other inputs.

    Raises
    ------
    CheckFailed
        With the hint of the diagnosed mistake.
    """
    check = "check_neg_kl_approx"
    if hidden is None:
        la, k = _LOG_ALPHA_TEST, (0.7, 1.9, 1.4)
    else:
        rng = _rng(hidden, 0)
        la = np.sort(rng.uniform(-6, 6, size=9))
        k = tuple(float(v) for v in rng.uniform([0.4, 1.0, 1.0], [0.9, 2.5, 2.0]))
    variants = _approx_variants(la, *k)
    expected = kl_lib.neg_kl_molchanov(la, *k)
    mistakes = [(name, variants[name], hint) for name, hint in _APPROX_HINTS.items()]
    got = _call(fn, (la.copy(), *k), check)
    _diagnose(check, got, expected, mistakes, "the approximation")
    _ok("the sigmoid + softplus form matches course_lib.kl.neg_kl_molchanov.", hidden)


#: The visible check's fit grid (the paper's procedure) and the hidden test's default.
FIT_GRID = (-10.0, 10.0, 2001)


@functools.lru_cache(maxsize=32)
def _fit_variant(grid: tuple[float, float, int], variant: str) -> tuple[float, float, float]:
    """Least-squares constants of a (possibly corrupted) model on ``grid``, C fixed or tied."""
    from scipy import optimize

    la, ref, _ = _fit_reference(grid)
    form, _, tie = variant.partition("+")

    def residual(k):
        model = _approx_variants(la, *k)[form]
        shift = {"fixed": k[0] - kl_lib.C_INF, "tied": 0.0, "c_sign": k[0] + kl_lib.C_INF}[tie]
        return model + shift - ref

    sol = optimize.least_squares(
        residual, x0=[kl_lib.K1, kl_lib.K2, kl_lib.K3], xtol=1e-14, ftol=1e-14, gtol=1e-14
    )
    return tuple(float(v) for v in sol.x)


@functools.lru_cache(maxsize=8)
def _fit_reference(grid: tuple[float, float, int]):
    """The grid, the quadrature reference on it and the paper procedure's constants."""
    fit = kl_lib.fit_molchanov(*grid[:2], n_grid=grid[2])
    return fit.log_alpha, fit.reference, fit.constants


def _diagnose_fit(check: str, got: np.ndarray, grid: tuple[float, float, int], tol: float) -> NoReturn:
    """Raise the hint for constants that are not the reference fit on ``grid``."""
    la, ref_values, ref = _fit_reference(grid)
    if np.allclose(got, (kl_lib.K1, kl_lib.K2, kl_lib.K3), atol=1e-5, rtol=0):
        raise CheckFailed(
            check,
            "these are the published constants, your starting point: run "
            "optimize.least_squares and return its solution (`.x`).",
            "published",
        )
    if np.allclose(got, _fit_variant(grid, "ok+tied"), atol=tol, rtol=0):
        raise CheckFailed(
            check,
            "you tied C = -k1 during the fit; the paper's procedure fixes C at "
            "-(gamma + ln 2)/2 = -0.6352 (the alpha -> infinity limit) and lets k1 move: "
            "the model is neg_kl_approx(...) + k1 - kl.C_INF.",
            "tied",
        )
    if np.allclose(got, _fit_variant(grid, "ok+c_sign"), atol=tol, rtol=0):
        raise CheckFailed(
            check,
            "your model adds C_INF: with the constant fixed the model is "
            "neg_kl_approx(...) + k1 - kl.C_INF (C = -0.6352, not +0.6352).",
            "c_sign",
        )
    # a wrong approximation written inside fn: the constants fit that wrong form best
    errors = {
        form: float(np.max(np.abs(np.nan_to_num(values + got[0] - kl_lib.C_INF - ref_values, nan=np.inf))))
        for form, values in _approx_variants(la, *got).items()
    }
    form = min(errors, key=errors.get)
    if form != "ok" and errors[form] < 0.5 * errors["ok"]:
        raise CheckFailed(
            check,
            "your fit uses a wrong approximation inside fit_constants: "
            + _APPROX_HINTS[form]
            + " Call neg_kl_approx rather than writing the "
            "formula again.",
            "wrong_approx",
        )
    model = kl_lib.neg_kl_molchanov(la, *got) + got[0] - kl_lib.C_INF
    mine = float(np.max(np.abs(model - ref_values)))
    best = float(np.max(np.abs(kl_lib.neg_kl_molchanov(la, *ref) + ref[0] - kl_lib.C_INF - ref_values)))
    raise CheckFailed(
        check,
        f"your constants ({got[0]:.2f}, {got[1]:.2f}, {got[2]:.2f}) are not the "
        f"least-squares fit: with C = -0.6352 they miss the reference by up to {mine:.3g} "
        f"on the grid, the best fit by {best:.2g}. Check that the residual is model "
        "minus reference on the grid you were given, and that the solver converged "
        "(tight xtol/ftol/gtol).",
        "wrong",
    )


@_graded
def check_fit(
    fn: Callable[[np.ndarray, np.ndarray], Sequence[float]],
    grid: tuple | None = None,
    tol: float = 1e-3,
    hidden: int | None = None,
) -> tuple[float, float, float]:
    """Run the student's ``fn(log_alpha, reference) -> (k1, k2, k3)`` on a grid and check the fit.

    The check computes the grid and the quadrature reference itself and calls ``fn`` (so the
    graded constants cannot be typed in), with the library's approximation in place of the
    student's ``neg_kl_approx`` (so a mistake of Task 2 does not fail Task 3).  The reference
    is the paper's procedure, :func:`course_lib.kl.fit_molchanov`, on the same grid.  Mistakes
    caught: the published constants returned unfitted; the fit with C tied to -k1 or with
    +C instead of -C; a wrong approximation written inside ``fn`` (its term is named); constants
    that fit badly (the message gives the student's largest error, never the reference's
    constants).

    Parameters
    ----------
    fn : callable
        The student's ``fit_constants``.
    grid : (lo, hi, n), optional
        The log-alpha grid; default :data:`FIT_GRID`.
    tol : float, default 1e-3
        Allowed absolute difference of each constant from the reference fit.
    hidden : int, optional
        A hidden test: the check prints nothing when it passes.

    Returns
    -------
    (k1, k2, k3) : the student's constants.

    Raises
    ------
    CheckFailed
        With the hint of the diagnosed mistake.
    """
    check = "check_fit"
    grid = tuple(grid) if grid is not None else FIT_GRID
    grid = (float(grid[0]), float(grid[1]), int(grid[2]))
    la, ref_values, ref = _fit_reference(grid)
    if not callable(fn):
        raise CheckFailed(
            check,
            "pass your function fit_constants itself (no parentheses, not its "
            "result): the check runs it on the grid.",
            "type",
        )
    got = _to_array(
        _call(fn, (la.copy(), ref_values.copy()), check, upstream=("neg_kl_approx",)), check, "the constants"
    )
    if got.shape != (3,):
        raise CheckFailed(check, f"return the three constants (k1, k2, k3), got shape {got.shape}.", "shape")
    constants = tuple(float(v) for v in got)
    if np.allclose(got, ref, atol=tol, rtol=0):
        _ok(f"k = ({got[0]:.4f}, {got[1]:.4f}, {got[2]:.4f}) match the paper procedure's fit.", hidden)
        return constants
    _diagnose_fit(check, got, grid, tol)
