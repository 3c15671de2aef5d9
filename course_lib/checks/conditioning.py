"""The checks of assignment A1 (conditioning and Bayes on a joint table).

Checks: :func:`check_conditional`, :func:`check_posterior`.

Each runs the student's function on fixed inputs (other ones with ``hidden=SEED``), compares it
with the library's reference and names the typical mistake it matches; see :mod:`course_lib.checks`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from course_lib.checks.core import (
    _call,
    _diagnose,
    _graded,
    _ok,
    _rng,
)
from course_lib.probability import Table


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
            (
                "not_normalized",
                joint,
                f"you returned the joint p(X, Z={z}), which sums to p(Z={z}) = {joint.sum():.3f}, not 1. "
                f"Divide by p(Z={z}) = sum over x of p(x, Z={z}): conditioning renormalises the slice.",
            ),
            (
                "reversed",
                joint / p.sum(axis=(1, 2)),
                f"you divided by p(X), which gives the reversed conditional p(Z={z} | X). "
                f"p(X | Z={z}) divides by p(Z={z}), the sum of the slice over X.",
            ),
        ]
        if z < ny:
            wrong = p[:, z, :].sum(axis=1)
            mistakes.append(
                (
                    "wrong_slice",
                    wrong / wrong.sum(),
                    f"you took the slice p[:, {z}, :], which conditions on Y={z}: the axes of p are "
                    f"(X, Y, Z), so the observed Z=z is the last axis, p[:, :, z]; then sum over Y (axis 1).",
                )
            )
        for y in range(ny):
            mistakes.append(
                (
                    "nuisance_fixed",
                    p[:, y, z] / p[:, y, z].sum(),
                    f"you returned p(X | Y={y}, Z={z}): Y is a nuisance variable and must be summed "
                    "out (sum rule) before normalising, not fixed at one value.",
                )
            )
        shape_hints = {}
        if ny != nx:
            shape_hints[(ny,)] = (
                "wrong_axis",
                f"your result has {ny} entries, one per state of Y: you "
                "summed over X, the variable whose distribution you want. Sum out the nuisance "
                f"variable Y instead (which axis of p is Y?), to keep one entry per state of X ({nx}).",
            )
        if nz != nx:
            shape_hints[(nz,)] = (
                "wrong_slice",
                f"your result has {nz} entries, one per state of Z: "
                "slice the observed value with p[:, :, z] (Z is the last axis), then "
                "sum over Y.",
            )
        got = _call(fn, (p.copy(), z), check)
        _diagnose(check, got, expected, mistakes, f"p(X | Z={z})", shape_hints=shape_hints)
    _ok("p(X | Z=z) sums Y out and renormalises; it matches Table.query for every z.", hidden)


@_graded
def check_posterior(
    fn: Callable[[np.ndarray, np.ndarray, int], np.ndarray], hidden: int | None = None
) -> None:
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
            (
                "no_evidence",
                unnorm,
                f"your posterior sums to {unnorm.sum():.4f}, which is the evidence p(t={t}): divide "
                "prior times likelihood by it (the denominator of Bayes' theorem).",
            ),
            (
                "likelihood",
                lik[:, t],
                f"you returned the likelihood p(t={t} | d), not the posterior p(d | t={t}) (the base-rate "
                "fallacy). Multiply by the prior p(d), then normalise.",
            ),
            (
                "prior_forgotten",
                lik[:, t] / lik[:, t].sum(),
                "you normalised the likelihood but forgot the prior: a rare hypothesis stays rare "
                "after one test. Multiply by p(d) before normalising.",
            ),
        ]
        got = _call(fn, (prior.copy(), lik.copy(), t), check)
        _diagnose(check, got, expected, mistakes, f"p(d | t={t})")
    _ok("posterior = prior x likelihood / evidence, for every observed t.", hidden)
