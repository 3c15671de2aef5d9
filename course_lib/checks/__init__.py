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

The package: :mod:`course_lib.checks.core` holds the machinery every check shares
(:class:`CheckFailed`, the ``_graded`` decorator, :func:`passed`, :func:`reference`,
:func:`passed_or_reference`, running and diagnosing the student's function); one module per
assignment holds its checks: ``conditioning`` (A1), ``elbo`` (A2), ``kl_approximation`` (A3),
``svdo`` (A4), ``dropout`` (A5), ``ensemble`` (A6).  Notebooks call them all through this
package: ``from course_lib import checks; checks.check_conditional(conditional)``.
"""

from __future__ import annotations

from course_lib.checks.conditioning import check_conditional, check_posterior
from course_lib.checks.core import (
    CheckFailed,
    StubNotImplemented,
    _install_short_tracebacks,
    passed,
    passed_or_reference,
    reference,
)
from course_lib.checks.dropout import check_gaussian_dropout, check_inverted_dropout, check_mc_average
from course_lib.checks.elbo import check_elbo, check_elbo_estimate, check_mean_field
from course_lib.checks.ensemble import check_ece, check_entropy, check_mutual_information
from course_lib.checks.kl_approximation import FIT_GRID, check_fit, check_neg_kl_approx, check_neg_kl_mc
from course_lib.checks.svdo import (
    check_eval_forward,
    check_kl,
    check_log_alpha,
    check_lrt_forward,
    check_negative_elbo,
    check_trained,
)

__all__ = [
    "CheckFailed",
    "check_conditional",
    "check_posterior",
    "check_elbo",
    "check_mean_field",
    "check_elbo_estimate",
    "check_neg_kl_mc",
    "check_neg_kl_approx",
    "check_fit",
    "check_log_alpha",
    "check_lrt_forward",
    "check_eval_forward",
    "check_kl",
    "check_negative_elbo",
    "check_trained",
    "check_inverted_dropout",
    "check_gaussian_dropout",
    "check_mc_average",
    "check_entropy",
    "check_mutual_information",
    "check_ece",
    "passed",
    "passed_or_reference",
    "reference",
    "StubNotImplemented",
    "FIT_GRID",
]

_install_short_tracebacks()
