"""Tests for course_lib.checks.conditioning: A1, conditioning and Bayes on a joint table.

The solution passes and each typical mistake is named.
"""

from __future__ import annotations

import pytest
from check_helpers import expect_mistake

from course_lib import checks
from course_lib.checks import CheckFailed


def conditional(p, z):
    joint = p[:, :, z].sum(axis=1)
    return joint / joint.sum()


def posterior(prior, lik, t):
    u = prior * lik[:, t]
    return u / u.sum()


def test_conditional_passes_solution(capsys):
    checks.check_conditional(conditional)
    assert capsys.readouterr().out.startswith("OK - ")


@pytest.mark.parametrize(
    "fn, mistake, match",
    [
        (lambda p, z: p[:, :, z].sum(axis=1), "not_normalized", r"joint p\(X, Z=0\).*Divide by p\(Z=0\)"),
        (lambda p, z: p[:, 0, z] / p[:, 0, z].sum(), "nuisance_fixed", r"p\(X \| Y=0, Z=0\).*summed"),
        (lambda p, z: p[:, 2, z] / p[:, 2, z].sum(), "nuisance_fixed", r"p\(X \| Y=2, Z=0\)"),
        (lambda p, z: p[:, :, z].sum(axis=1) / p.sum(axis=(1, 2)), "reversed", r"reversed conditional"),
    ],
)
def test_conditional_mistakes(fn, mistake, match):
    expect_mistake(checks.check_conditional, fn, mistake, match)


def test_posterior_passes_solution():
    checks.check_posterior(posterior)


@pytest.mark.parametrize(
    "fn, mistake, match",
    [
        (lambda prior, lik, t: prior * lik[:, t], "no_evidence", r"evidence p\(t=0\)"),
        (lambda prior, lik, t: lik[:, t], "likelihood", r"base-rate fallacy"),
        (lambda prior, lik, t: lik[:, t] / lik[:, t].sum(), "prior_forgotten", r"forgot the prior"),
    ],
)
def test_posterior_mistakes(fn, mistake, match):
    expect_mistake(checks.check_posterior, fn, mistake, match)


def test_conditional_wrong_slice_and_wrong_axis():
    expect_mistake(
        checks.check_conditional,
        lambda p, z: p[:, z, :].sum(axis=1) / p[:, z, :].sum(),
        "wrong_slice",
        r"slice p\[:, 0, :\], which conditions on Y=0.*p\[:, :, z\]",
    )
    expect_mistake(
        checks.check_conditional,
        lambda p, z: p[:, :, z].sum(axis=0) / p[:, :, z].sum(),
        "wrong_axis",
        r"4 entries, one per state of Y: you summed over X",
    )
    expect_mistake(
        checks.check_conditional,
        lambda p, z: p[0, 0, :] / p[0, 0, :].sum(),
        "wrong_slice",
        r"one per state of Z",
    )


def test_hidden_inputs_catch_hard_coded_answers():
    p_visible = checks.conditioning._joint_xyz()
    answers = {z: conditional(p_visible, z) for z in range(p_visible.shape[2])}
    cheat = lambda p, z: answers[z]  # noqa: E731
    checks.check_conditional(cheat)
    with pytest.raises(CheckFailed):
        checks.check_conditional(cheat, hidden=1016)


@pytest.mark.parametrize(
    "check, fn",
    [
        (checks.check_conditional, conditional),
        (checks.check_posterior, posterior),
    ],
)
def test_hidden_inputs_pass_the_solution_silently(check, fn, capsys):
    check(fn, hidden=1016)
    assert capsys.readouterr().out == ""
