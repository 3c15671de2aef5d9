"""A helper of the tests of course_lib.checks (tests/test_checks_*.py)."""

from __future__ import annotations

import pytest

from course_lib.checks import CheckFailed


def expect_mistake(check, arg, mistake: str, match: str) -> None:
    """The check fails on ``arg`` with the named mistake and a message matching ``match``."""
    with pytest.raises(CheckFailed, match=match) as info:
        check(arg)
    assert info.value.mistake == mistake, str(info.value)
