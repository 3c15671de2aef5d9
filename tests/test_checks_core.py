"""Tests for course_lib.checks.core.

The machinery every check shares: bad input, the messages, pass / fail and the references, IPython.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from check_helpers import expect_mistake
from test_checks_conditioning import posterior
from test_checks_svdo import log_alpha

from course_lib import checks, kl
from course_lib.checks import CheckFailed


def test_not_callable_is_explained():
    expect_mistake(checks.check_conditional, np.zeros(3), "type", "pass the function itself")


def test_stub_is_explained():
    def stub(p, z):
        raise NotImplementedError()

    with pytest.raises(NotImplementedError, match="check_conditional: your function is still the stub"):
        checks.check_conditional(stub)


def test_student_exception_is_reported():
    expect_mistake(checks.check_posterior, lambda prior, lik, t: prior[10], "error", "raised IndexError")


def test_none_return_is_explained():
    expect_mistake(checks.check_posterior, lambda prior, lik, t: None, "type", r"end it with `return \.\.\.`")


def test_wrong_shape_is_explained():
    expect_mistake(
        checks.check_posterior,
        lambda prior, lik, t: np.ones((2, 2)) / 4,
        "shape",
        r"has shape \(2, 2\), expected \(3,\)",
    )


def test_unknown_mistake_gives_numbers():
    expect_mistake(
        checks.check_posterior,
        lambda prior, lik, t: np.array([0.2, 0.3, 0.5]),
        "wrong",
        "matches none of the typical mistakes.*reference is",
    )


def test_unknown_nan_is_explained():
    expect_mistake(
        checks.check_posterior, lambda prior, lik, t: np.full(3, np.nan), "nan", "contains NaN or inf"
    )


def test_check_failed_is_an_assertion_error_with_the_check_name():
    assert issubclass(CheckFailed, AssertionError)
    err = CheckFailed("check_x", "what to fix", "kl_sign")
    assert str(err) == "check_x: what to fix" and err.mistake == "kl_sign"


def test_index_is_printed_plainly():
    with pytest.raises(CheckFailed) as info:
        checks.check_posterior(lambda prior, lik, t: np.array([0.2, 0.3, 0.5]))
    assert re.search(r"at index \[\d\] you return", str(info.value)) and "np.int64" not in str(info.value)
    with pytest.raises(CheckFailed, match=r"at index \[0, 1\] you return"):
        checks.check_log_alpha(lambda th, ls: log_alpha(th, ls) + (torch.arange(40).reshape(5, 8) == 1) * 0.5)


def test_return_hint_only_when_nothing_was_returned():
    expect_mistake(checks.check_posterior, lambda prior, lik, t: None, "type", "returned None")
    with pytest.raises(CheckFailed) as info:
        checks.check_posterior(lambda prior, lik, t: "posterior")
    assert "return" not in str(info.value).split("returned", 1)[1].replace("returned", "")


def test_student_error_names_the_line():
    def posterior_bug(prior, lik, t):
        u = prior * lik[:, t]
        return u / u.summ()

    with pytest.raises(CheckFailed, match=r"AttributeError.*line \d+ of your code: `return u / u.summ\(\)`"):
        checks.check_posterior(posterior_bug)


def test_failure_traceback_is_trimmed():
    with pytest.raises(CheckFailed) as info:
        checks.check_posterior(lambda prior, lik, t: prior)
    assert info.value.__cause__ is None and info.value.__suppress_context__
    frames = [f.name for f in __import__("traceback").extract_tb(info.value.__traceback__)]
    assert frames[-1] == "wrapper" and "_diagnose" not in frames


def test_warnings_of_the_student_code_are_silenced(recwarn):
    import warnings

    def noisy(prior, lik, t):
        warnings.warn("student warning")
        return posterior(prior, lik, t)

    checks.check_posterior(noisy)
    assert len(recwarn) == 0


def test_passed_and_passed_or_reference(capsys):
    checks.check_log_alpha(log_alpha)
    with pytest.raises(CheckFailed):
        checks.check_kl(lambda la: kl.neg_kl_molchanov(la).sum())
    assert checks.passed("check_log_alpha") and not checks.passed("check_kl")
    wrong_kl = lambda la: 0  # noqa: E731
    chosen = checks.passed_or_reference(
        {"log_alpha": log_alpha, "kl_term": wrong_kl}, ["log_alpha", "kl_term"]
    )
    assert chosen["log_alpha"] is log_alpha and chosen["kl_term"] is checks.reference("kl_term")
    out = capsys.readouterr().out
    assert "log_alpha: yours" in out and "kl_term: the library's reference (check_kl did not pass" in out
    with pytest.raises(CheckFailed, match="only 0 of your functions passed") as info:
        checks.passed_or_reference({"kl_term": wrong_kl}, ["kl_term"], min_own=1)
    assert info.value.mistake == "nothing_own"
    assert checks.passed_or_reference({"log_alpha": log_alpha}, ["log_alpha"], min_own=1, verbose=False)
    with pytest.raises(KeyError, match="no reference for 'nope'"):
        checks.reference("nope")


def test_failed_check_shows_its_message_only_in_ipython():
    """In a notebook a failed check prints one line: no traceback, no lines of the (hidden) cell."""
    shown = []

    class Shell:
        def set_custom_exc(self, exc_tuple, handler):
            self.exc_tuple, self.handler = exc_tuple, handler

        def _showtraceback(self, etype, value, stb):
            shown.append(stb)

    shell = Shell()
    import IPython

    original = IPython.get_ipython
    IPython.get_ipython = lambda: shell
    try:
        assert checks.core._install_short_tracebacks()
    finally:
        IPython.get_ipython = original
    assert CheckFailed in shell.exc_tuple and checks.StubNotImplemented in shell.exc_tuple
    err = CheckFailed("check_x", "what to fix", "kl_sign")
    assert shell.handler(shell, CheckFailed, err, None) == ["CheckFailed: check_x: what to fix"]
    assert shown == [["CheckFailed: check_x: what to fix"]]


def test_every_public_check_is_graded():
    """Each ``check_*`` of every assignment module goes through ``_graded``: it records pass/fail
    for ``passed``/``passed_or_reference`` (a later task builds on what passed) and trims tracebacks.
    A helper inserted between the decorator and the check would silently take the decorator."""
    import importlib
    import inspect
    import pkgutil

    found = []
    for info in pkgutil.iter_modules(checks.__path__):
        module = importlib.import_module(f"course_lib.checks.{info.name}")
        for name, fn in inspect.getmembers(module, inspect.isfunction):
            if name.startswith("check_") and fn.__module__ == module.__name__:
                found.append(name)
                assert getattr(fn, "__wrapped__", None) is not None, (
                    f"{module.__name__}.{name} is not @_graded"
                )
        for name, fn in inspect.getmembers(module, inspect.isfunction):
            if name.startswith("_") and fn.__module__ == module.__name__:
                assert getattr(fn, "__wrapped__", None) is None, (
                    f"{module.__name__}.{name} (a helper) is @_graded"
                )
    assert "check_negative_elbo" in found and len(found) >= 15, found
