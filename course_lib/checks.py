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
A5 dropout                    :func:`check_inverted_dropout`, :func:`check_gaussian_dropout`,
                              :func:`check_mc_average`
A6 the predictive ensemble    :func:`check_entropy`, :func:`check_mutual_information`,
                              :func:`check_ece`
============================  =========================================================

Grading each task on its own: a check of a later task runs the student's function with the
library's reference in place of the earlier tasks' functions it calls (``_call(...,
upstream=...)``), and :func:`passed_or_reference` builds assignment 4's network from the
student's functions whose checks passed and the references for the others.  Every check takes
``hidden=SEED``: the same diagnosis on other inputs, silent when it passes (the hidden tests of
the assignments' check cells).  A failing check raises :class:`CheckFailed` with a trimmed
traceback and no chained exception; warnings raised by the student's code inside a check are
silenced (nbgrader scores a cell that writes to stderr 0).
"""
from __future__ import annotations

import functools
import math
import traceback
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
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
    "check_negative_elbo", "check_trained", "check_inverted_dropout", "check_gaussian_dropout",
    "check_mc_average", "check_entropy", "check_mutual_information", "check_ece", "passed",
    "passed_or_reference", "reference", "StubNotImplemented",
]

#: Relative and absolute tolerance for "the same number" (float64 inputs everywhere).
RTOL, ATOL = 1e-6, 1e-8


class StubNotImplemented(NotImplementedError):
    """The student's function is still the stub (its ``raise NotImplementedError()``).

    Shown (and reported by Jupyter) under the name ``NotImplementedError``: it is one, and a
    student reads the familiar name.
    """


StubNotImplemented.__name__ = StubNotImplemented.__qualname__ = "NotImplementedError"


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


def _short_traceback(shell: Any, etype: type, value: BaseException, tb: Any,
                     tb_offset: int | None = None) -> list[str]:
    """IPython handler for a failed check: the message alone, no traceback.

    IPython prints a cell's failing line with the lines around it; in a check cell those are the
    hidden tests, which nbgrader's feedback must not show, and the frames of ``course_lib`` tell
    a student nothing.  The check's message says what is wrong.  The cell still fails (IPython
    records the error, nbgrader gives the cell no points).
    """
    stb = [f"{etype.__name__}: {value}"]
    shell._showtraceback(etype, value, stb)
    return stb


def _install_short_tracebacks() -> bool:
    """Show failed checks without a traceback in IPython / Jupyter (see :func:`_short_traceback`)."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython is part of the course's environment
        return False
    shell = get_ipython()
    if shell is None or not hasattr(shell, "set_custom_exc"):
        return False
    shell.set_custom_exc((CheckFailed, StubNotImplemented), _short_traceback)
    return True


# ---------------------------------------------------------------------------------------
# the diagnosis machinery
# ---------------------------------------------------------------------------------------
#: The outcome of the last call of each check in this kernel (``check name -> passed``); read by
#: :func:`passed` and :func:`passed_or_reference`.
_PASSED: dict[str, bool] = {}

#: The library's reference for each assignment function that a later task builds on, under the
#: name the notebook gives it (``name -> (its check, the reference)``).  A check of a later task
#: runs the student's function with these references in place of the student's own, so that one
#: mistake costs one task (see :func:`_call`).
_UPSTREAM: dict[str, tuple[str, Callable]] = {}


def _graded(check_fn: Callable) -> Callable:
    """Decorate a check: record pass / fail, silence warnings, and trim the traceback.

    nbgrader scores a check cell 0 when anything reaches stderr, so warnings raised while the
    student's function runs inside the check are silenced (the check reports NaNs itself).  A
    failing check raises its :class:`CheckFailed` (or the stub's ``NotImplementedError``) from
    this wrapper with the check's internal frames removed and no chained exception: the feedback
    shows the cell's line and the message, not a page of ``course_lib`` internals.
    """
    name = check_fn.__name__

    @functools.wraps(check_fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        _PASSED[name] = False
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                result = check_fn(*args, **kwargs)
        except (CheckFailed, NotImplementedError) as exc:
            raise exc.with_traceback(None) from None
        _PASSED[name] = True
        return result

    return wrapper


def passed(check: str) -> bool:
    """Whether the last call of ``check`` (e.g. ``"check_log_alpha"``) in this kernel passed."""
    return _PASSED.get(check, False)


def reference(name: str) -> Callable:
    """The library's reference for the assignment function called ``name`` (e.g. ``"log_alpha"``).

    Raises
    ------
    KeyError
        If no assignment function of that name has a reference (the message lists them).
    """
    try:
        return _UPSTREAM[name][1]
    except KeyError:
        raise KeyError(f"no reference for {name!r}; known: {sorted(_UPSTREAM)}.") from None


def passed_or_reference(namespace: dict, names: Sequence[str], verbose: bool = True,
                        min_own: int = 0) -> dict[str, Callable]:
    """The student's functions whose checks passed, the library's reference for the others.

    A task that builds on earlier ones (assignment 4's trained network) uses this so that a
    mistake in an earlier task costs that task's points only.

    Parameters
    ----------
    namespace : dict
        Where the student's functions live (``globals()`` of the notebook).
    names : sequence of str
        Function names with a reference (see :func:`reference`).
    verbose : bool, default True
        Print, per function, whether the student's or the reference is used.
    min_own : int, default 0
        Fail unless at least this many of the functions are the student's: a network built
        from references only is not the student's work (a submission of stubs scores 0).

    Raises
    ------
    CheckFailed
        Fewer than ``min_own`` of the student's functions passed their checks.
    """
    chosen = {}
    for name in names:
        check, ref = _UPSTREAM[name]
        mine = namespace.get(name)
        if callable(mine) and passed(check):
            chosen[name] = mine
            note = "yours"
        else:
            chosen[name] = ref
            note = f"the library's reference ({check} did not pass, or was not run)"
        if verbose:
            print(f"{name}: {note}")
    own = sum(chosen[name] is not _UPSTREAM[name][1] for name in names)
    if own < min_own:
        raise CheckFailed("passed_or_reference", f"only {own} of your functions passed its check "
                          f"(at least {min_own} needed): the points of this cell are for a network built "
                          "from your own code. Make the checks above pass, then run this cell again.",
                          "nothing_own")
    return chosen


def _format_index(i: tuple) -> str:
    return "[" + ", ".join(str(int(v)) for v in i) + "]"


def _to_array(value: Any, check: str, what: str) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().double().numpy()
    if value is None:
        raise CheckFailed(check, f"your function returned None instead of {what}: end it with "
                          "`return ...` (printing a value does not return it).", "type")
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise CheckFailed(
            check, f"{what} should be a number or an array of numbers, but your function returned "
            f"a {type(value).__name__}: {value!r:.80}.", "type",
        ) from None
    return arr


def _where_in_student_code(exc: BaseException) -> str:
    """' (line N of your code: `...`)' for the deepest frame outside the library, or ''."""
    here = str(Path(__file__).resolve().parent)
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if not f.filename.startswith(here) and "site-packages" not in f.filename
              and "/lib/python" not in f.filename]
    if not frames:
        return ""
    f = frames[-1]
    return f" (line {f.lineno} of your code: `{(f.line or '').strip()}`)"


def _call(fn: Callable, args: tuple, check: str, upstream: Sequence[str] = ()) -> Any:
    """Run the student's ``fn(*args)`` and turn its errors into the check's words.

    ``upstream`` names functions of earlier tasks (keys of ``_UPSTREAM``); while ``fn`` runs,
    those found in its module's globals are replaced by the library's references, so a wrong
    earlier function cannot fail this task.
    """
    if not callable(fn):
        raise CheckFailed(check, f"expected your function, got {type(fn).__name__}; pass the function "
                          "itself (no parentheses).", "type")
    g = getattr(fn, "__globals__", {})
    saved = {name: g[name] for name in upstream if name in g and name in _UPSTREAM}
    try:
        for name in saved:
            g[name] = _UPSTREAM[name][1]
        return fn(*args)
    except NotImplementedError:  # a stub: keep the type, so the notebook stops right here
        raise StubNotImplemented(
            f"{check}: your function is still the stub; replace the `# YOUR CODE HERE` and "
            "`raise NotImplementedError()` lines with your code, then run this check again."
        ) from None
    except Exception as exc:  # the student's bug: report it in the check's words
        raise CheckFailed(check, f"calling your function raised {type(exc).__name__}: {exc}"
                          f"{_where_in_student_code(exc)}. Run it on a small example and read the "
                          "traceback.", "error") from None
    finally:
        g.update(saved)


def _close(a: np.ndarray, b: np.ndarray, rtol: float, atol: float) -> bool:
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=rtol, atol=atol, equal_nan=False))


def _diagnose(check: str, got: Any, expected: Any, mistakes: Sequence[tuple[str, Any, str]],
              what: str, nan_hint: str | None = None, rtol: float = RTOL, atol: float = ATOL,
              shape_hints: dict[tuple, tuple[str, str]] | None = None) -> None:
    """Pass if ``got`` equals ``expected``; else raise with the hint of the matching mistake.

    ``shape_hints`` maps a wrong shape to ``(mistake, hint)``: a shape that betrays a mistake
    (a sum over the wrong axis) gets that hint instead of the plain shape message.
    """
    got_a = _to_array(got, check, what)
    exp_a = np.asarray(expected, dtype=float)
    if got_a.shape != exp_a.shape:
        if got_a.size == exp_a.size == 1:
            got_a = got_a.reshape(exp_a.shape)
        elif shape_hints and got_a.shape in shape_hints:
            name, hint = shape_hints[got_a.shape]
            raise CheckFailed(check, hint, name)
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
    where = f"at index {_format_index(i)} " if diff.ndim else ""
    raise CheckFailed(
        check, f"{what} is wrong and matches none of the typical mistakes: {where}you return "
        f"{got_a[i]:.6g}, the reference is {exp_a[i]:.6g} (largest difference {diff.max():.3g}). "
        "Compare your formula with the equation in the task, term by term.",
        "wrong",
    )


def _ok(message: str, hidden: int | None = None) -> None:
    if hidden is None:  # hidden tests print nothing
        print(f"OK - {message}")


def _rng(hidden: int | None, default: int) -> np.random.Generator:
    return np.random.default_rng(default if hidden is None else hidden)


# ---------------------------------------------------------------------------------------
# A1: conditioning and Bayes on a joint table
# ---------------------------------------------------------------------------------------
def _joint_xyz(hidden: int | None = None) -> np.ndarray:
    shape = (3, 4, 2) if hidden is None else (4, 3, 3)
    w = _rng(hidden, 1).gamma(1.0, size=shape)
    return w / w.sum()


@_graded
def check_conditional(fn: Callable[[np.ndarray, int], np.ndarray], hidden: int | None = None) -> None:
    """Check ``fn(p_xyz, z) -> p(X | Z=z)`` with Y summed out, for a joint array p[x, y, z].

    Mistakes caught: returning the joint p(X, Z=z) (not divided by p(Z=z)); fixing Y at one
    value instead of summing it out; the reversed conditional p(Z=z | X); the wrong slice of
    the table (conditioning on Y = z, or summing over X).

    Parameters
    ----------
    fn : callable
        The student's function.
    hidden : int, optional
        Seed of other inputs (a hidden test); the check then prints nothing when it passes.

    Raises
    ------
    CheckFailed
        With the hint of the diagnosed mistake.
    """
    check = "check_conditional"
    p = _joint_xyz(hidden)
    nx, ny, nz = p.shape
    for z in range(nz):
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
        if z < ny:
            wrong = p[:, z, :].sum(axis=1)
            mistakes.append((
                "wrong_slice", wrong / wrong.sum(),
                f"you took the slice p[:, {z}, :], which conditions on Y={z}: the axes of p are "
                f"(X, Y, Z), so the observed Z=z is the last axis, p[:, :, z]; then sum over Y (axis 1).",
            ))
        for y in range(ny):
            mistakes.append((
                "nuisance_fixed", p[:, y, z] / p[:, y, z].sum(),
                f"you returned p(X | Y={y}, Z={z}): Y is a nuisance variable and must be summed "
                "out (sum rule) before normalising, not fixed at one value.",
            ))
        shape_hints = {}
        if ny != nx:
            shape_hints[(ny,)] = ("wrong_axis", f"your result has {ny} entries, one per state of Y: you "
                                  "summed over X (axis 0). Sum the slice p[:, :, z] over Y (axis=1) to "
                                  f"keep one entry per state of X ({nx}).")
        if nz != nx:
            shape_hints[(nz,)] = ("wrong_slice", f"your result has {nz} entries, one per state of Z: "
                                  "slice the observed value with p[:, :, z] (Z is the last axis), then "
                                  "sum over Y.")
        got = _call(fn, (p.copy(), z), check)
        _diagnose(check, got, expected, mistakes, f"p(X | Z={z})", shape_hints=shape_hints)
    _ok("p(X | Z=z) sums Y out and renormalises; it matches Table.query for every z.", hidden)


@_graded
def check_posterior(fn: Callable[[np.ndarray, np.ndarray, int], np.ndarray],
                    hidden: int | None = None) -> None:
    """Check ``fn(prior, likelihood, t) -> p(d | t)`` (Bayes' theorem on a discrete hypothesis).

    ``prior`` has shape (K,), ``likelihood[d, t] = p(t | d)`` has shape (K, M), ``t`` is the
    observed column.  Mistakes caught: no division by the evidence; the likelihood returned
    as the posterior (the base-rate fallacy); the normalised likelihood (prior forgotten).
    ``hidden``: seed of other inputs (a hidden test).

    Raises
    ------
    CheckFailed
        With the hint of the diagnosed mistake.
    """
    check = "check_posterior"
    if hidden is None:
        prior = np.array([0.01, 0.09, 0.9])
        lik = np.array([[0.95, 0.05], [0.6, 0.4], [0.1, 0.9]])
    else:
        rng = _rng(hidden, 0)
        prior = rng.dirichlet(np.ones(4))
        lik = rng.dirichlet(np.ones(3), size=4)
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
    _ok("posterior = prior x likelihood / evidence, for every observed t.", hidden)


# ---------------------------------------------------------------------------------------
# A2: the ELBO of Bayesian linear regression
# ---------------------------------------------------------------------------------------
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
    return dict(const=const, resid2=resid2, trace=trace, kl=kl, beta=beta, N=N, D=D,
                logdet_S=logdet_S)


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
    problems = [dict(seed=2), dict(seed=3)] if hidden is None else [dict(seed=hidden, n=17, d=2),
                                                                      dict(seed=hidden + 1, n=9, d=4)]
    for kw in problems:
        Phi, t, m, S, lam, beta = _regression_problem(**kw)
        p = _elbo_parts(m, S, Phi, t, lam, beta)
        N, D = p["N"], p["D"]
        data = p["const"] - 0.5 * beta * (p["resid2"] + p["trace"])
        expected = data - p["kl"]
        swapped = (0.5 * D * math.log(beta / (2 * math.pi)) - 0.5 * beta * (p["resid2"] + p["trace"])
                   - _kl_gauss(m, S, lam, N, p["logdet_S"]))
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
            ("n_d_swapped", swapped,
             f"N and D are swapped: Phi has shape (N, D) = ({N}, {D}), one row per data point, so "
             "write `n, d = Phi.shape`. N multiplies log(beta / 2 pi) in the data term, D is the "
             "number of weights in the KL."),
            ("no_minus_d", data - (p["kl"] + 0.5 * D),
             f"the KL is missing its '- D' (here D = {D}): KL(N(m, S) || N(0, I/lambda)) = 1/2 (lambda tr S "
             "+ lambda m^T m - D - D log lambda - log det S); the D is the trace of the identity."),
            ("slogdet_sign", data - (p["kl"] + 0.5 * p["logdet_S"] - 0.5),
             "np.linalg.slogdet(S) returns (sign, log|det S|): you used [0], the sign (1 for a "
             "covariance). Use np.linalg.slogdet(S)[1]."),
        ]
        got = _call(fn, (m.copy(), S.copy(), Phi.copy(), t.copy(), lam, beta), check)
        _diagnose(check, got, expected, mistakes, "the ELBO")
    _ok("the closed-form ELBO matches course_lib.vi.linear_gaussian_elbo on two problems.", hidden)


@_graded
def check_mean_field(fn: Callable[..., tuple[np.ndarray, np.ndarray]], part: str | None = None,
                     hidden: int | None = None) -> None:
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
    Phi, t, _, _, lam, beta = (_regression_problem() if hidden is None
                               else _regression_problem(n=15, d=4, seed=hidden))
    post = BayesianLinearRegression(lam, beta).fit(Phi, t)
    precision = lam * np.eye(Phi.shape[1]) + beta * Phi.T @ Phi
    got = _call(fn, (Phi.copy(), t.copy(), lam, beta), check)
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        raise CheckFailed(check, "return a pair (m, s2): the means and the variances of q.", "type")
    m, s2 = got
    if part in (None, "m"):
        _diagnose(check, m, post.mean, [
            ("prior_mean", np.zeros_like(post.mean), "m is the prior mean 0; the optimal q is centred at "
             "the posterior mean m_N = beta S_N Phi^T t."),
            ("beta_missing_m", np.linalg.solve(precision, Phi.T @ t),
             f"m is off by the factor beta = {beta}: the posterior mean is m_N = beta S_N Phi^T t, "
             "i.e. beta * np.linalg.solve(precision, Phi.T @ t)."),
        ], "m")
    if part in (None, "s2"):
        _diagnose(check, s2, 1.0 / np.diag(precision), [
            ("marginal_variances", np.diag(post.cov),
             "s2 = diag(S_N) are the posterior's marginal variances: that q minimises KL(p || q), not "
             "the ELBO's KL(q || p). Mean-field VI matches the precision: s2_i = 1 / (S_N^-1)_ii, "
             "which is smaller (VI underestimates the variance)."),
            ("prior_variance", np.full(Phi.shape[1], 1 / lam),
             "s2 is the prior variance 1/lambda (1 / lam); use the posterior precision's "
             "diagonal, 1 / (S_N^-1)_ii."),
            ("std_not_variance", np.sqrt(1.0 / np.diag(precision)),
             "you returned standard deviations; s2 asks for variances 1 / (S_N^-1)_ii."),
        ], "s2")
    what = {None: "q has the posterior mean and variances 1/diag(precision): smaller than the marginals.",
            "m": "q's means are the posterior mean m_N.",
            "s2": "q's variances are 1/diag(precision), smaller than the posterior's marginals."}[part]
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
        ("sum_over_samples", N / B * ll.sum() - kl,
         f"you summed over the {n_samples} weight samples: the Monte Carlo estimate of the "
         "expectation over q is their mean (sum over the batch, mean over the samples: "
         "log_lik.sum(axis=1).mean())."),
    ]
    got = _call(fn, (m.copy(), L.copy(), Phi_b.copy(), t_b.copy(), N, lam, beta, eps.copy()), check)
    _diagnose(check, got, expected, mistakes, "the ELBO estimate")
    _ok("the mini-batch estimate scales the data term by N/B and subtracts the KL.", hidden)


# ---------------------------------------------------------------------------------------
# A3: the KL approximation
# ---------------------------------------------------------------------------------------
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
        ("sign", -expected, "you return +KL: the task asks for -KL (<= 0, rising to 0 as alpha grows). "
         "Flip the sign."),
        ("no_constant", expected + kl_lib.C_INF,
         "the constant C = -(gamma + ln 2)/2 = -0.6352 is missing: without it -KL does not tend to 0 "
         "as alpha -> infinity."),
        ("plus_constant", expected + 2 * kl_lib.C_INF,
         "the constant has the wrong sign: subtract kl.C_INF = (gamma + ln 2)/2 = 0.6352, do not add "
         "it (-KL must be <= 0 and tend to 0 as alpha -> infinity)."),
        ("log_alpha_not_half", expected + 0.5 * la,
         "the first term should be 1/2 log alpha (from log sqrt(alpha)), not log alpha."),
        ("alpha_not_sqrt", 0.5 * la - e_log(np.exp(la)) - kl_lib.C_INF,
         "eps is multiplied by alpha; the weight is w = theta (1 + sqrt(alpha) eps), so the log holds "
         "|1 + sqrt(alpha) eps| with sqrt(alpha) = exp(log_alpha / 2)."),
        ("no_abs", no_abs,
         "the log of a negative number gives NaN: 1 + sqrt(alpha) eps is negative for some eps; "
         "the KL has log|1 + sqrt(alpha) eps| with an absolute value."),
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
def check_neg_kl_approx(fn: Callable[[np.ndarray, float, float, float], np.ndarray],
                        hidden: int | None = None) -> None:
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

    sol = optimize.least_squares(residual, x0=[kl_lib.K1, kl_lib.K2, kl_lib.K3], xtol=1e-14,
                                 ftol=1e-14, gtol=1e-14)
    return tuple(float(v) for v in sol.x)


@functools.lru_cache(maxsize=8)
def _fit_reference(grid: tuple[float, float, int]):
    """The grid, the quadrature reference on it and the paper procedure's constants."""
    fit = kl_lib.fit_molchanov(*grid[:2], n_grid=grid[2])
    return fit.log_alpha, fit.reference, fit.constants


@_graded
def check_fit(fn: Callable[[np.ndarray, np.ndarray], Sequence[float]], grid: tuple | None = None,
              tol: float = 1e-3, hidden: int | None = None) -> tuple[float, float, float]:
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
        raise CheckFailed(check, "pass your function fit_constants itself (no parentheses, not its "
                          "result): the check runs it on the grid.", "type")
    got = _to_array(_call(fn, (la.copy(), ref_values.copy()), check, upstream=("neg_kl_approx",)),
                    check, "the constants")
    if got.shape != (3,):
        raise CheckFailed(check, f"return the three constants (k1, k2, k3), got shape {got.shape}.", "shape")
    constants = tuple(float(v) for v in got)
    if np.allclose(got, ref, atol=tol, rtol=0):
        _ok(f"k = ({got[0]:.4f}, {got[1]:.4f}, {got[2]:.4f}) match the paper procedure's fit.", hidden)
        return constants
    if np.allclose(got, (kl_lib.K1, kl_lib.K2, kl_lib.K3), atol=1e-5, rtol=0):
        raise CheckFailed(check, "these are the published constants, your starting point: run "
                          "optimize.least_squares and return its solution (`.x`).", "published")
    if np.allclose(got, _fit_variant(grid, "ok+tied"), atol=tol, rtol=0):
        raise CheckFailed(check, "you tied C = -k1 during the fit; the paper's procedure fixes C at "
                          "-(gamma + ln 2)/2 = -0.6352 (the alpha -> infinity limit) and lets k1 move: "
                          "the model is neg_kl_approx(...) + k1 - kl.C_INF.", "tied")
    if np.allclose(got, _fit_variant(grid, "ok+c_sign"), atol=tol, rtol=0):
        raise CheckFailed(check, "your model adds C_INF: with the constant fixed the model is "
                          "neg_kl_approx(...) + k1 - kl.C_INF (C = -0.6352, not +0.6352).", "c_sign")
    # a wrong approximation written inside fn: the constants fit that wrong form best
    errors = {form: float(np.max(np.abs(np.nan_to_num(values + got[0] - kl_lib.C_INF - ref_values,
                                                      nan=np.inf))))
              for form, values in _approx_variants(la, *got).items()}
    form = min(errors, key=errors.get)
    if form != "ok" and errors[form] < 0.5 * errors["ok"]:
        raise CheckFailed(check, "your fit uses a wrong approximation inside fit_constants: "
                          + _APPROX_HINTS[form] + " Call neg_kl_approx rather than writing the "
                          "formula again.", "wrong_approx")
    model = kl_lib.neg_kl_molchanov(la, *got) + got[0] - kl_lib.C_INF
    mine = float(np.max(np.abs(model - ref_values)))
    best = float(np.max(np.abs(kl_lib.neg_kl_molchanov(la, *ref) + ref[0] - kl_lib.C_INF - ref_values)))
    raise CheckFailed(check, f"your constants ({got[0]:.2f}, {got[1]:.2f}, {got[2]:.2f}) are not the "
                      f"least-squares fit: with C = -0.6352 they miss the reference by up to {mine:.3g} "
                      f"on the grid, the best fit by {best:.2g}. Check that the residual is model "
                      "minus reference on the grid you were given, and that the solver converged "
                      "(tight xtol/ftol/gtol).", "wrong")


# ---------------------------------------------------------------------------------------
# A4: LinearSVDO
# ---------------------------------------------------------------------------------------
def _svdo_problem(seed: int = 6):
    g = torch.Generator().manual_seed(seed)
    theta = torch.randn(5, 8, generator=g, dtype=torch.float64) * 0.5
    theta[0, 0] = 0.0       # a weight driven to zero: log alpha is clipped at 8
    log_sigma2 = torch.full_like(theta, -4.0) + torch.randn(5, 8, generator=g, dtype=torch.float64)
    bias = torch.linspace(-1.0, 1.0, 5, dtype=torch.float64)  # negative entries on purpose
    x = torch.randn(6, 8, generator=g, dtype=torch.float64)
    eps = torch.randn(6, 5, generator=g, dtype=torch.float64)
    return x, theta, log_sigma2, bias, eps


def _ref_log_alpha(theta: torch.Tensor, log_sigma2: torch.Tensor) -> torch.Tensor:
    return torch.clamp(log_sigma2 - torch.log(theta * theta + THETA2_EPS), LOG_ALPHA_MIN, LOG_ALPHA_MAX)


def _ref_lrt_forward(x, theta, log_sigma2, bias, eps):
    return F.linear(x, theta, bias) + torch.sqrt(F.linear(x * x, log_sigma2.exp()) + VAR_EPS) * eps


def _ref_eval_forward(x, theta, log_sigma2, bias, threshold):
    return F.linear(x, theta * (_ref_log_alpha(theta, log_sigma2) < threshold), bias)


def _ref_kl_term(log_alpha):
    return -kl_lib.neg_kl_molchanov(log_alpha).sum()


def _ref_negative_elbo(logits, y, kl_value, n_train, beta):
    return n_train * F.cross_entropy(logits, y) + beta * kl_value


_UPSTREAM.update({
    "log_alpha": ("check_log_alpha", _ref_log_alpha),
    "lrt_forward": ("check_lrt_forward", _ref_lrt_forward),
    "eval_forward": ("check_eval_forward", _ref_eval_forward),
    "kl_term": ("check_kl", _ref_kl_term),
    "negative_elbo": ("check_negative_elbo", _ref_negative_elbo),
})


@_graded
def check_log_alpha(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                    hidden: int | None = None) -> None:
    """Check ``fn(theta, log_sigma2) -> log alpha = clip(log sigma^2 - log(theta^2 + 1e-8), -8, 8)``.

    Mistakes caught: ``log(2|theta|)`` instead of ``2 log|theta|`` (a bug that shipped in a
    public course notebook); ``log|theta|`` (the 2 missing); no clipping; ``2 log|theta|``
    without the 1e-8 (right values, but a NaN gradient at theta = 0); a result detached from
    the autograd graph.  ``hidden``: seed of other inputs.

    Raises
    ------
    CheckFailed
        With the hint of the diagnosed mistake.
    """
    check = "check_log_alpha"
    _, theta, log_sigma2, _, _ = _svdo_problem(6 if hidden is None else hidden)
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
    no_eps_hint = ("you left out the 1e-8: log(theta^2) (or 2 log|theta|) differs where theta is tiny, "
                   "and at theta = 0 its gradient is NaN (a division by zero in the backward pass, even "
                   "where the clip cuts the value off); one NaN gradient ruins the whole network. "
                   "Write log(theta**2 + 1e-8).")
    mistakes.append(("no_eps", clip(log_sigma2 - torch.log(theta * theta)), no_eps_hint))
    mistakes.append(("no_clip", log_sigma2 - torch.log(theta * theta + THETA2_EPS),
                     "log alpha is right but not clipped: clamp it to [-8, 8] (LOG_ALPHA_MIN, "
                     "LOG_ALPHA_MAX) so a weight at theta = 0 does not send it to +infinity."))
    theta_g = theta.clone().requires_grad_(True)
    log_sigma2_g = log_sigma2.clone().requires_grad_(True)
    got = _call(fn, (theta_g, log_sigma2_g), check)
    _diagnose(check, got, expected, mistakes, "log alpha")
    if not (isinstance(got, torch.Tensor) and got.requires_grad):
        raise CheckFailed(check, "the values are right, but no gradient flows through your log alpha "
                          "(it is not a tensor of the autograd graph): use torch operations only, no "
                          ".detach(), .item(), .numpy() or torch.no_grad().", "detached")
    grads = torch.autograd.grad(got.sum(), (theta_g, log_sigma2_g), allow_unused=True)
    if any(g is None or not torch.all(torch.isfinite(g)) for g in grads):
        raise CheckFailed(check, "the values are right, but the gradient is NaN at theta = 0: "
                          + no_eps_hint, "no_eps")
    _ok("log alpha = clip(log sigma^2 - log(theta^2 + 1e-8), -8, 8).", hidden)


@_graded
def check_lrt_forward(fn: Callable[..., torch.Tensor], hidden: int | None = None) -> None:
    """Check ``fn(x, theta, log_sigma2, bias, eps)``: the local reparameterization forward.

    ``x @ theta.T + bias + sqrt(x^2 @ sigma2.T + 1e-8) * eps``.  Mistakes caught: the bias
    inside the variance (negative variances, NaN); ``log_sigma2`` used as the variance (NaN);
    the variance term forgotten (no noise); the variance used as a standard deviation;
    ``x`` instead of ``x^2``; ``sigma`` instead of ``sigma^2``.  ``hidden``: seed of other inputs.

    Raises
    ------
    CheckFailed
        With the hint of the diagnosed mistake.
    """
    check = "check_lrt_forward"
    x, theta, log_sigma2, bias, eps = _svdo_problem(6 if hidden is None else hidden)
    sigma2 = log_sigma2.exp()
    mean = F.linear(x, theta, bias)
    expected = mean + torch.sqrt(F.linear(x * x, sigma2) + VAR_EPS) * eps
    mistakes = [
        ("bias_in_variance", mean + torch.sqrt(F.linear(x * x, sigma2, bias) + VAR_EPS) * eps,
         "the bias is inside the variance: the bias is deterministic, so it belongs to the mean "
         "only. F.linear(x * x, sigma2, bias) adds a (possibly negative) bias to a variance, and "
         "its square root is NaN. Use F.linear(x * x, sigma2) with no bias."),
        ("log_sigma2_as_variance", mean + torch.sqrt(F.linear(x * x, log_sigma2) + VAR_EPS) * eps,
         "you used log_sigma2 itself as the variance: it is the log of sigma^2 and mostly negative, "
         "so the square root is NaN. The variance is x^2 @ exp(log_sigma2).T: "
         "F.linear(x * x, log_sigma2.exp())."),
        ("no_noise", mean,
         "your pre-activations have no noise: the variance term sqrt(x^2 sigma^2 + 1e-8) * eps is "
         "missing, so the layer is the plain mean network and the KL has nothing to balance."),
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
              nan_hint="the output has NaN: a square root of a negative number. A variance is >= 0: "
              "is something that can be negative (the bias, log_sigma2 itself) inside it? The "
              "variance is F.linear(x * x, log_sigma2.exp()).")
    _ok("pre-activations = mean + sqrt(variance) * eps, bias in the mean only.", hidden)


@_graded
def check_eval_forward(fn: Callable[..., torch.Tensor], hidden: int | None = None) -> None:
    """Check ``fn(x, theta, log_sigma2, bias, threshold)``: the deterministic, pruned test-time net.

    ``x @ (theta * (log_alpha < threshold)).T + bias``.  The student's ``log_alpha`` is
    replaced by the library's while the check runs (Task 1 is graded on its own).  Mistakes
    caught: noise at test time (two calls differ); no pruning; keeping the weights with large
    alpha instead; the mask on log sigma^2 instead of log alpha; the bias missing.
    ``hidden``: seed of other inputs.

    Raises
    ------
    CheckFailed
        With the hint of the diagnosed mistake.
    """
    check = "check_eval_forward"
    x, theta, log_sigma2, bias, _ = _svdo_problem(6 if hidden is None else hidden)
    threshold = -2.0  # prunes a good share of the test weights
    mask = _ref_log_alpha(theta, log_sigma2) < threshold
    expected = F.linear(x, theta * mask, bias)
    args = (x.clone(), theta.clone(), log_sigma2.clone(), bias.clone(), threshold)
    first = _to_array(_call(fn, args, check, upstream=("log_alpha",)), check, "the output")
    second = _to_array(_call(fn, args, check, upstream=("log_alpha",)), check, "the output")
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
        ("mask_on_log_sigma2", F.linear(x, theta * (log_sigma2 < threshold), bias),
         "your mask compares log_sigma2 with the threshold; pruning is decided by the relative noise "
         "log alpha = log sigma^2 - log theta^2: mask = log_alpha(theta, log_sigma2) < threshold."),
        ("no_bias", F.linear(x, theta * mask),
         "the bias is missing: the pruned layer is x @ W.T + bias."),
    ]
    _diagnose(check, first, expected, mistakes, "the output")
    _ok("at test time the layer is deterministic and uses the pruned mean weights.", hidden)


@_graded
def check_kl(fn: Callable[[torch.Tensor], torch.Tensor], hidden: int | None = None) -> None:
    """Check ``fn(log_alpha) -> KL`` of a layer: ``-sum(neg_kl_molchanov(log_alpha))``, a positive scalar.

    Mistakes caught: the sign flipped (-KL returned), alone or with the mean; the mean over
    weights instead of the sum; the published constants' ``+k1`` typo (constant of the wrong
    sign); the approximation evaluated at -log alpha.  ``hidden``: seed of other inputs.

    Raises
    ------
    CheckFailed
        With the hint of the diagnosed mistake.
    """
    check = "check_kl"
    _, theta, log_sigma2, _, _ = _svdo_problem(6 if hidden is None else hidden)
    la = _ref_log_alpha(theta, log_sigma2)
    neg = kl_lib.neg_kl_molchanov(la)
    expected = -neg.sum()
    sign_hint = ("your KL is negative: kl.neg_kl_molchanov returns the approximation of -KL (k1 "
                 "sigmoid(...) - 1/2 softplus(-log alpha) - k1 <= 0); the KL is minus that, a positive "
                 "number that the loss adds.")
    mistakes = [
        ("kl_sign", neg.sum(), sign_hint),
        ("kl_sign", neg.mean(), sign_hint + " Also sum over the weights rather than averaging."),
        ("mean_not_sum", -neg.mean(),
         "you averaged over weights; the KL of the layer is the sum over its weights (each weight has "
         "its own q and prior)."),
        ("plus_k1", -(neg + 2 * kl_lib.K1).sum(),
         "the constant is -k1, not +k1: -KL = k1 sigmoid(k2 + k3 log alpha) - 1/2 log(1 + 1/alpha) - k1."),
        ("minus_log_alpha", -kl_lib.neg_kl_molchanov(-la).sum(),
         "you evaluated the approximation at -log alpha: pass log alpha itself to "
         "kl.neg_kl_molchanov and negate the result."),
    ]
    got = _call(fn, (la.clone(),), check)
    _diagnose(check, got, expected, mistakes, "the KL")
    _ok("KL = -sum of Molchanov's approximation, a positive scalar.", hidden)


@_graded
def check_negative_elbo(fn: Callable[..., torch.Tensor], hidden: int | None = None) -> None:
    """Check ``fn(logits, y, kl, n_train, beta) -> N * mean CE + beta * KL`` (the training loss).

    Mistakes caught: the data term not scaled by N; the batch's summed CE (scaled by B, not N);
    N times the summed CE (scaled by N B); the KL divided by N (the per-example loss); the
    KL's sign flipped; beta ignored.  ``hidden``: seed of other inputs.

    Raises
    ------
    CheckFailed
        With the hint of the diagnosed mistake.
    """
    check = "check_negative_elbo"
    seed, B = (7, 16) if hidden is None else (hidden, 12)
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(B, 10, generator=g, dtype=torch.float64)
    y = torch.randint(0, 10, (B,), generator=g)
    kl, n_train, beta = ((torch.tensor(123.0, dtype=torch.float64), 60000, 0.3) if hidden is None
                         else (torch.tensor(77.0, dtype=torch.float64), 20000, 0.6))
    ce = F.cross_entropy(logits, y)
    expected = n_train * ce + beta * kl
    mistakes = [
        ("no_n_scaling", ce + beta * kl,
         f"the data term is the batch mean only: multiply it by N = n_train ({n_train}) so that it "
         "estimates the sum over the training set; otherwise the KL overwhelms the data and "
         "every weight is pruned."),
        ("batch_sum", B * ce + beta * kl,
         "you summed the cross-entropy over the batch (a factor B); the data term is N times the "
         "batch mean."),
        ("n_times_batch_sum", n_train * B * ce + beta * kl,
         f"you multiplied the batch's summed cross-entropy by N: that counts the data {B} times (the "
         "batch size) too often. Use N times the batch mean, n_train * F.cross_entropy(logits, y)."),
        ("kl_over_n", ce + beta * kl / n_train,
         "you divided the KL by N: that is the per-example loss, -ELBO / N (the same optimum, but "
         "not the loss the task asks for, and the learning rate of the recipe is tuned for N * CE "
         "+ beta * KL). Multiply both terms by N: n_train * CE + beta * KL."),
        ("kl_over_n", n_train * ce + beta * kl / n_train,
         "the KL is divided by N: the ELBO of the whole training set has N * CE and the full KL, "
         "so the loss is n_train * CE + beta * KL (dividing the KL by N weakens the prior N-fold "
         "and hardly anything is pruned)."),
        ("kl_sign", n_train * ce - beta * kl,
         "the KL is subtracted: the loss is the negative ELBO, N * CE + beta * KL (the KL is a "
         "penalty)."),
        ("beta_ignored", n_train * ce + kl,
         "beta is ignored: multiply the KL by beta (the warm-up weight)."),
    ]
    got = _call(fn, (logits.clone(), y.clone(), kl.clone(), n_train, beta), check)
    _diagnose(check, got, expected, mistakes, "the loss")
    _ok("loss = N * mean cross-entropy + beta * KL.", hidden)


@_graded
def check_trained(model: nn.Module, x: torch.Tensor, y: torch.Tensor, max_error: float | None = None,
                  min_sparsity: float | None = None, hidden: int | None = None) -> dict[str, float]:
    """Check a trained sparse network: deterministic in eval mode, accurate and/or sparse enough.

    Parameters
    ----------
    model : nn.Module
        The trained network (its sparse layers must offer ``mask()``).
    x, y : Tensor
        Test images and labels.
    max_error : float, optional
        Largest accepted test error (a fraction, e.g. 0.05); not checked if None.
    min_sparsity : float, optional
        Smallest accepted fraction of pruned weights over all layers; not checked if None.
        Give one or both (the two are graded as separate parts).
    hidden : int, optional
        A hidden test: print nothing when it passes, and count the pruned weights with the
        library's log alpha of each layer's parameters instead of the layer's own mask.

    Returns
    -------
    dict
        ``{"error": ..., "sparsity": ..., "compression": ...}``.

    Raises
    ------
    CheckFailed
        The network raises, evaluates with noise, or a result is outside its target (with what
        to try).
    ValueError
        A target outside its range, or no target.
    """
    from course_lib.sparsity import compression, weight_counts
    from course_lib.train import evaluate

    check = "check_trained"
    if not isinstance(model, nn.Module):
        raise CheckFailed(check, f"pass the trained network, got {type(model).__name__}.", "type")
    if max_error is None and min_sparsity is None:
        raise ValueError("give max_error, min_sparsity or both: the targets of the trained network.")
    if not ((max_error is None or 0 < max_error < 1) and (min_sparsity is None or 0 <= min_sparsity < 1)):
        raise ValueError(f"max_error must be in (0, 1) and min_sparsity in [0, 1), got "
                         f"{max_error!r} and {min_sparsity!r}.")
    model.eval()
    try:
        with torch.no_grad():
            a, b = model(x[:64]), model(x[:64])
        error = evaluate(model, x, y)
        counts = weight_counts(model).values()
        ratio = compression(model)
    except Exception as exc:  # the student's layer code, run by the check
        raise CheckFailed(check, f"running your network on the test images raised "
                          f"{type(exc).__name__}: {exc}{_where_in_student_code(exc)}. Run the "
                          "checks of the tasks above: the network is built from those functions.",
                          "error") from None
    if not torch.equal(a, b):
        raise CheckFailed(check, "in eval mode the network gives different outputs for the same input: "
                          "it evaluates with noise. The test-time net is the pruned mean.", "noisy")
    sparsity = 1.0 - sum(k for k, _ in counts) / sum(t for _, t in counts)
    if hidden is not None:  # recount with the library's log alpha (not the model's own mask)
        layers = [m for m in model.modules() if isinstance(getattr(m, "theta", None), torch.Tensor)
                  and isinstance(getattr(m, "log_sigma2", None), torch.Tensor)]
        with torch.no_grad():
            kept = sum(int((_ref_log_alpha(m.theta, m.log_sigma2) < m.threshold).sum()) for m in layers)
        sparsity = 1.0 - kept / sum(m.theta.numel() for m in layers) if layers else sparsity
    result = {"error": error, "sparsity": sparsity, "compression": ratio}
    if max_error is not None and error > max_error:
        raise CheckFailed(check, f"test error {error:.2%} is above the target {max_error:.2%}. If the "
                          "sparsity is also very high, the KL dominates: is the data term scaled by N?",
                          "error_high")
    if min_sparsity is not None and sparsity < min_sparsity:
        raise CheckFailed(check, f"only {sparsity:.1%} of the weights are pruned (target "
                          f"{min_sparsity:.1%}). Is the KL in the loss, with the right sign, and does "
                          "beta reach 1?", "not_sparse")
    parts = []
    if max_error is not None:
        parts.append(f"test error {error:.2%} <= {max_error:.1%}")
    if min_sparsity is not None:
        parts.append(f"{sparsity:.1%} of the weights pruned >= {min_sparsity:.1%}")
    _ok(f"{' and '.join(parts)} (compression {ratio:.1f}x).", hidden)
    return result


# ---------------------------------------------------------------------------------------
# A5: dropout as noise, and its two predictions
# ---------------------------------------------------------------------------------------
def _dropout_problem(hidden: int | None):
    g = torch.Generator().manual_seed(11 if hidden is None else hidden)
    shape = (6, 8) if hidden is None else (5, 7)
    x = torch.randn(*shape, generator=g, dtype=torch.float64)
    u = torch.rand(*shape, generator=g, dtype=torch.float64)
    eps = torch.randn(*shape, generator=g, dtype=torch.float64)
    ps = (0.2, 0.7) if hidden is None else (0.3, 0.8)
    return x, u, eps, ps


@_graded
def check_inverted_dropout(fn: Callable[[torch.Tensor, float, torch.Tensor], torch.Tensor],
                           hidden: int | None = None) -> None:
    """Check ``fn(x, p, u) -> x * (u >= p) / (1 - p)``: Bernoulli (inverted) dropout of units.

    ``u`` holds uniform samples on [0, 1), one per unit, so a unit is dropped when ``u < p``
    (drop probability ``p``, PyTorch's convention) and the kept ones are scaled by 1/(1 - p)
    so that E[output] = x.  Mistakes caught: no rescaling; keeping the units with ``u < p``;
    the retain convention (p as the keep probability); dividing by p; multiplying by 1 - p
    (the original paper's test-time scaling, applied at training time).  ``hidden``: seed of
    other inputs.

    Raises
    ------
    CheckFailed
        With the hint of the diagnosed mistake.
    """
    check = "check_inverted_dropout"
    x, u, _, ps = _dropout_problem(hidden)
    for p in ps:
        keep = (u >= p).double()
        expected = x * keep / (1 - p)
        mistakes = [
            ("no_rescale", x * keep,
             f"the kept units are not rescaled: divide them by 1 - p = {1 - p:.1f}, so that the "
             "expected output equals x (E[mask] = 1 - p) and the network needs no change at test time."),
            ("keep_is_drop", x * (1 - keep) / (1 - p),
             f"you keep the units with u < p, i.e. drop with probability 1 - p = {1 - p:.1f}: p is the "
             "drop probability, so keep a unit when u >= p."),
            ("retain_convention", x * (1 - keep) / p,
             "you treated p as the probability of keeping a unit (Srivastava et al.'s retain "
             "probability); here p is the drop probability: keep when u >= p and divide by 1 - p."),
            ("divide_by_p", x * keep / p,
             "the kept units are divided by p; divide by the keep probability 1 - p."),
            ("times_keep_prob", x * keep * (1 - p),
             "you multiplied by 1 - p: that is the original paper's test-time weight scaling. Inverted "
             "dropout divides by 1 - p during training instead, so that E[output] = x."),
        ]
        got = _call(fn, (x.clone(), p, u.clone()), check)
        _diagnose(check, got, expected, mistakes, f"the output for p = {p}")
    got0 = _call(fn, (x.clone(), 0.0, u.clone()), check)
    _diagnose(check, got0, x, [], "the output for p = 0 (no dropout: x itself)")
    _ok("units dropped with probability p, the kept ones scaled by 1/(1 - p).", hidden)


@_graded
def check_gaussian_dropout(fn: Callable[[torch.Tensor, float, torch.Tensor], torch.Tensor],
                           hidden: int | None = None) -> None:
    """Check ``fn(x, p, eps) -> x * (1 + sqrt(alpha) eps)`` with alpha = p / (1 - p).

    Gaussian dropout with the mean and variance of Bernoulli dropout of rate ``p``.  Mistakes
    caught: alpha used as the standard deviation; alpha = (1 - p)/p; alpha = p (1 - p) (the
    variance of the unscaled mask); alpha = p; zero-mean noise (the 1 forgotten); additive
    noise.  ``hidden``: seed of other inputs.

    Raises
    ------
    CheckFailed
        With the hint of the diagnosed mistake.
    """
    check = "check_gaussian_dropout"
    x, _, eps, ps = _dropout_problem(hidden)
    for p in ps:
        a = p / (1 - p)
        expected = x * (1 + math.sqrt(a) * eps)
        mistakes = [
            ("alpha_as_std", x * (1 + a * eps),
             f"the noise is scaled by alpha = {a:.3g}; alpha is the variance of xi ~ N(1, alpha), so "
             "scale eps by sqrt(alpha)."),
            ("inverse_alpha", x * (1 + math.sqrt(1 / a) * eps),
             f"you used alpha = (1 - p)/p = {1 / a:.3g}; the variance of the Bernoulli noise m/(1 - p) "
             f"is p/(1 - p) = {a:.3g}."),
            ("mask_variance", x * (1 + math.sqrt(p * (1 - p)) * eps),
             f"p(1 - p) = {p * (1 - p):.3g} is the variance of the mask m before rescaling; the rescaled "
             f"noise m/(1 - p) has variance p(1 - p)/(1 - p)^2 = p/(1 - p) = {a:.3g}."),
            ("alpha_is_p", x * (1 + math.sqrt(p) * eps),
             f"you used alpha = p; the matching variance is alpha = p/(1 - p) = {a:.3g}."),
            ("zero_mean", x * math.sqrt(a) * eps,
             "the noise has mean 0: multiplicative dropout noise has mean 1, xi = 1 + sqrt(alpha) eps."),
            ("additive", x + math.sqrt(a) * eps,
             "you added the noise; dropout multiplies: x * (1 + sqrt(alpha) eps), so the noise "
             "scales with the unit."),
        ]
        got = _call(fn, (x.clone(), p, eps.clone()), check)
        _diagnose(check, got, expected, mistakes, f"the output for p = {p}")
    _ok("Gaussian noise N(1, p/(1 - p)): the same mean and variance as Bernoulli dropout.", hidden)


@_graded
def check_mc_average(fn: Callable[[torch.Tensor], torch.Tensor], hidden: int | None = None) -> None:
    """Check ``fn(logits) -> mean_t softmax(logits[t])``: the MC-dropout predictive distribution.

    ``logits`` has shape (T, N, C): T noisy passes over N inputs.  Mistakes caught: the
    softmax of the mean logits (weight scaling's cousin, not the ensemble); the mean of the
    log-probabilities; one pass only; a majority vote; the softmax over the T passes; the
    sum instead of the mean.  ``hidden``: seed of other inputs.

    Raises
    ------
    CheckFailed
        With the hint of the diagnosed mistake.
    """
    check = "check_mc_average"
    g = torch.Generator().manual_seed(12 if hidden is None else hidden)
    T, N, C = (5, 4, 3) if hidden is None else (7, 5, 4)
    logits = 2.0 * torch.randn(T, N, C, generator=g, dtype=torch.float64)
    probs = F.softmax(logits, dim=-1)
    expected = probs.mean(0)
    mistakes = [
        ("mean_logits", F.softmax(logits.mean(0), dim=-1),
         "you averaged the logits and then applied the softmax; the predictive distribution is the "
         "average of the T passes' probabilities: softmax first, then the mean over passes (dim 0)."),
        ("mean_log_probs", F.log_softmax(logits, dim=-1).mean(0),
         "you averaged log-probabilities; average the probabilities softmax(logits) over the passes."),
        ("one_pass", probs[0],
         "you used one pass only; MC dropout averages the probabilities of all T passes (dim 0)."),
        ("vote", F.one_hot(logits.argmax(-1), C).double().mean(0),
         "you averaged one-hot votes of the passes; average their probabilities instead (a vote "
         "throws away how sure each pass is)."),
        ("softmax_over_passes", F.softmax(logits, dim=0).mean(0),
         "the softmax runs over the passes (dim 0); it turns each pass's logits into class "
         "probabilities, so it runs over the classes (dim=-1)."),
        ("sum_not_mean", probs.sum(0),
         f"you summed the {T} passes' probabilities; take their mean so each row sums to 1."),
    ]
    shape_hints = {(T, C): ("mean_over_inputs", "your result has one row per pass: you averaged over "
                            "the inputs (dim 1); average over the passes, dim 0."),
                   (C,): ("mean_over_inputs", "your result has one entry per class: average over the "
                          "passes only (dim 0), keep one row per input.")}
    got = _call(fn, (logits.clone(),), check)
    _diagnose(check, got, expected, mistakes, "the predictive probabilities", shape_hints=shape_hints)
    _ok("the MC-dropout prediction averages the probabilities of the passes.", hidden)


# ---------------------------------------------------------------------------------------
# A6: the predictive ensemble
# ---------------------------------------------------------------------------------------
def _ensemble_problem(hidden: int | None):
    g = torch.Generator().manual_seed(13 if hidden is None else hidden)
    K, N, C = (6, 5, 4) if hidden is None else (5, 7, 3)
    samples = F.softmax(2.5 * torch.randn(K, N, C, generator=g, dtype=torch.float64), dim=-1)
    samples[:, 0] = F.one_hot(torch.tensor(1), C).double()  # every member certain: 0 log 0
    samples[:, 1] = 1.0 / C                                   # every member uniform
    return samples


def _entropy(probs: torch.Tensor) -> torch.Tensor:
    return torch.special.entr(probs).sum(-1)


def _ref_mutual_information(samples: torch.Tensor) -> torch.Tensor:
    return _entropy(samples.mean(0)) - _entropy(samples).mean(0)


@_graded
def check_entropy(fn: Callable[[torch.Tensor], torch.Tensor], hidden: int | None = None) -> None:
    """Check ``fn(probs) -> H[p] = -sum_c p_c log p_c`` per row, in nats, with 0 log 0 = 0.

    Mistakes caught: no minus sign; log base 2 (bits); the mean over classes instead of the
    sum; NaN from 0 log 0; the sum over the examples instead of the classes.  Reference:
    :func:`course_lib.evaluation.predictive_entropy`.  ``hidden``: seed of other inputs.

    Raises
    ------
    CheckFailed
        With the hint of the diagnosed mistake.
    """
    check = "check_entropy"
    probs = _ensemble_problem(hidden)[0]
    N, C = probs.shape
    expected = _entropy(probs)
    mistakes = [
        ("no_minus", -expected, "your entropy is negative: H = -sum_c p_c log p_c (log p <= 0, so the "
         "minus sign makes H >= 0)."),
        ("bits", expected / math.log(2), "you used log base 2 (bits); the course measures entropy in "
         "nats: torch.log (natural log)."),
        ("mean_over_classes", expected / C, "you averaged over the classes; the entropy sums "
         "-p_c log p_c over them."),
        ("nan_zero_prob", -(probs * probs.log()).sum(-1),
         "NaN where a probability is exactly 0: 0 * log 0 is nan in floating point, but its limit is "
         "0. Use torch.special.entr(p), torch.xlogy(p, p), or clamp p before the log."),
    ]
    shape_hints = {(C,): ("wrong_axis", f"your result has {C} entries, one per class: you summed over "
                          "the examples (dim 0); sum over the classes (dim=-1), one entropy per row."),
                   (): ("wrong_axis", "you returned one number: return one entropy per row "
                        "(sum over dim=-1 only).")} if N != C else {}
    got = _call(fn, (probs.clone(),), check)
    _diagnose(check, got, expected, mistakes, "the entropy", shape_hints=shape_hints,
              nan_hint="your entropy has NaN: where p_c = 0, p_c log p_c is 0 * (-inf) = nan in "
              "floating point but its limit is 0. Use torch.special.entr(p) or torch.xlogy(p, p).")
    _ok("H[p] in nats, 0 log 0 = 0; it matches course_lib.evaluation.predictive_entropy.", hidden)


_UPSTREAM["entropy"] = ("check_entropy", _entropy)


@_graded
def check_mutual_information(fn: Callable[[torch.Tensor], torch.Tensor],
                             hidden: int | None = None) -> None:
    """Check ``fn(samples) -> I = H[mean_k p_k] - mean_k H[p_k]`` per input.

    ``samples`` has shape (K, N, C): K ensemble members' probabilities for N inputs.  The
    student's ``entropy`` is replaced by the library's while the check runs (Task 1 is graded
    on its own).  Mistakes caught: the sign flipped; the total uncertainty H[mean] only; the
    expected (aleatoric) entropy only; the entropy of the first member instead of the mean
    over members; the mean over inputs instead of over members.  ``hidden``: seed of other
    inputs.

    Raises
    ------
    CheckFailed
        With the hint of the diagnosed mistake.
    """
    check = "check_mutual_information"
    samples = _ensemble_problem(hidden)
    K, N, C = samples.shape
    total, aleatoric = _entropy(samples.mean(0)), _entropy(samples).mean(0)
    expected = total - aleatoric
    mistakes = [
        ("sign", aleatoric - total,
         "your mutual information is negative: I = H[mean of the members] - mean of H[member] >= 0 "
         "(the entropy is concave: Jensen). Swap the two terms."),
        ("total_only", total,
         "you returned the total uncertainty H[mean_k p_k]; subtract the expected entropy "
         "mean_k H[p_k] (the aleatoric part) to keep the disagreement between members."),
        ("aleatoric_only", aleatoric,
         "you returned the expected entropy mean_k H[p_k] (the aleatoric part); the mutual "
         "information is H[mean_k p_k] minus it."),
        ("one_member", total - _entropy(samples[0]),
         "you subtracted the entropy of one member; subtract the mean of all members' entropies."),
    ]
    shape_hints = {(K,): ("wrong_axis", f"your result has {K} entries, one per member: average over the "
                          "members (dim 0), keep one value per input.")} if K != N else {}
    got = _call(fn, (samples.clone(),), check, upstream=("entropy",))
    _diagnose(check, got, expected, mistakes, "the mutual information", shape_hints=shape_hints)
    _ok("I = H[mean] - mean H >= 0: 0 where the members agree, large where they disagree.", hidden)


def _ece_problem(hidden: int | None):
    g = torch.Generator().manual_seed(14 if hidden is None else hidden)
    N, C = (60, 3) if hidden is None else (80, 4)
    probs = F.softmax(1.5 * torch.randn(N, C, generator=g, dtype=torch.float64), dim=-1)
    y = torch.multinomial(probs, 1, generator=g)[:, 0]  # calibrated on average: gaps of both signs
    return probs, y, (10 if hidden is None else 8)


def _bins(conf: torch.Tensor, n_bins: int) -> torch.Tensor:
    return (torch.ceil(conf * n_bins).long() - 1).clamp(0, n_bins - 1)


def _ece_variant(conf: torch.Tensor, correct: torch.Tensor, n_bins: int, how: str) -> float:
    idx = _bins(conf, n_bins)
    gaps, counts = [], []
    for m in range(n_bins):
        sel = idx == m
        if sel.any():
            gaps.append(float(correct[sel].mean() - conf[sel].mean()))
            counts.append(int(sel.sum()))
    gaps_a, counts_a = np.array(gaps), np.array(counts)
    if how == "unweighted":
        return float(np.abs(gaps_a).mean())
    if how == "signed":
        return float((counts_a * gaps_a).sum() / counts_a.sum())
    if how == "max":
        return float(np.abs(gaps_a).max())
    return float((counts_a * np.abs(gaps_a)).sum() / counts_a.sum())


@_graded
def check_ece(fn: Callable[[torch.Tensor, torch.Tensor, int], float], hidden: int | None = None) -> None:
    """Check ``fn(probs, y, n_bins) -> ECE`` with equal-width confidence bins ((m-1)/M, m/M].

    ECE = sum_m |B_m|/N |acc(B_m) - conf(B_m)|, the confidence of an example being its largest
    probability.  Reference: :func:`course_lib.evaluation.expected_calibration_error`.
    Mistakes caught: the unweighted mean of the bins' gaps; the signed gap (no absolute value);
    the largest gap (the maximum calibration error); the probability of the true class as the
    confidence; one bin for all examples; ``n_bins`` ignored (15 bins).  ``hidden``: seed of
    other inputs.

    Raises
    ------
    CheckFailed
        With the hint of the diagnosed mistake.
    """
    from course_lib.evaluation import expected_calibration_error

    check = "check_ece"
    probs, y, n_bins = _ece_problem(hidden)
    conf, pred = probs.max(1)
    correct = (pred == y).double()
    expected = expected_calibration_error(probs, y, n_bins)
    true_conf = probs[torch.arange(len(y)), y]
    mistakes = [
        ("unweighted", _ece_variant(conf, correct, n_bins, "unweighted"),
         "you averaged the bins' gaps with equal weights; weight each bin by its share of the "
         "examples, |B_m| / N (a bin with two examples must not count as much as one with forty)."),
        ("signed", _ece_variant(conf, correct, n_bins, "signed"),
         "the gaps are signed, so over- and under-confident bins cancel: take |acc(B_m) - conf(B_m)|."),
        ("max_gap", _ece_variant(conf, correct, n_bins, "max"),
         "you returned the largest gap over the bins (the maximum calibration error); the ECE is "
         "their weighted mean."),
        ("true_class_prob", _ece_variant(true_conf, correct, n_bins, "ece"),
         "the confidence is the probability of the *predicted* class, max_c p_c, not of the true "
         "class: the model does not know the label."),
        ("one_bin", abs(float(correct.mean() - conf.mean())),
         "you compared the overall accuracy with the overall mean confidence (one bin); cut the "
         f"confidences into n_bins = {n_bins} equal-width bins first."),
        ("n_bins_ignored", expected_calibration_error(probs, y, 15),
         f"you used 15 bins; use the n_bins argument ({n_bins} here)."),
    ]
    got = _call(fn, (probs.clone(), y.clone(), n_bins), check)
    _diagnose(check, got, expected, mistakes, "the ECE")
    _ok("ECE = sum over bins of |B_m|/N |acc - conf|; it matches "
        "course_lib.evaluation.expected_calibration_error.", hidden)


_install_short_tracebacks()
