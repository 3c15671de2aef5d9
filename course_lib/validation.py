"""Argument checks shared by every ``course_lib`` module: one policy, one wording.

The policy:

* a value of the wrong **type** raises :class:`TypeError` (a float or a ``bool`` where an integer
  is asked for, a string or ``None`` where a number is, anything but ``True``/``False`` where a
  flag is);
* a value of the right type but a wrong **value** raises :class:`ValueError` (zero or a negative
  count, NaN or inf, a number outside its range, a name that is not among the choices);
* NumPy scalars count as Python ones (``np.int64(784)`` is an integer, ``np.float32(0.5)`` a
  number, ``np.bool_(True)`` a flag); ``bool`` is never a number here, although Python makes it one.

Every message names the argument, what it means (when the caller says), what was passed and the fix,
e.g. ``n_samples (Monte Carlo samples) must be a positive integer, got 0; use n_samples >= 1.``
Each check returns the value converted to the plain Python type (``int``, ``float``, ``bool``).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Collection
from typing import TypeVar

import numpy as np

__all__ = [
    "integer",
    "positive_int",
    "nonnegative_int",
    "finite_float",
    "positive_float",
    "nonnegative_float",
    "probability",
    "boolean",
    "one_of",
]

T = TypeVar("T")


def _label(name: str, meaning: str | None) -> str:
    return f"{name} ({meaning})" if meaning else name


def _is_integer(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _is_real(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _check_integer(
    value: object,
    name: str,
    minimum: int | None,
    maximum: int | None,
    what: str,
    meaning: str | None,
    hint: str | None,
) -> int:
    label = _label(name, meaning)
    if not _is_integer(value):
        example = 1 if minimum is None else max(minimum, 1) if maximum is None else minimum
        raise TypeError(
            f"{label} must be {what}, got {value!r} ({type(value).__name__}); "
            f"pass a whole number, e.g. {name}={example}."
        )
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        if hint is None:
            hint = (
                f"use {name} <= {maximum}"
                if minimum is None
                else f"use {name} >= {minimum}"
                if maximum is None
                else f"use a value from {minimum} to {maximum}"
            )
        raise ValueError(f"{label} must be {what}, got {value}; {hint}.")
    return int(value)


def integer(
    value: object,
    name: str,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    meaning: str | None = None,
    hint: str | None = None,
) -> int:
    """Check an integer argument, optionally within ``minimum .. maximum`` (both included).

    Parameters
    ----------
    value : object
        The argument to check.
    name : str
        Its name, as the caller spells it (it opens the message).
    minimum, maximum : int, optional
        The smallest and the largest allowed value; ``None`` leaves that side open.
    meaning : str, optional
        What the argument is, shown in brackets after its name (e.g. ``"Monte Carlo samples"``).
    hint : str, optional
        The fix for a value out of range; by default the allowed range is restated
        (``"use n_grid >= 3"``).

    Returns
    -------
    int
        ``value`` as a Python ``int``.

    Raises
    ------
    TypeError
        If ``value`` is not an integer (``bool``, ``float``, ``str``, ``None``, ...).
    ValueError
        If ``value`` is out of range.
    """
    if minimum is not None and maximum is not None:
        what = f"an integer from {minimum} to {maximum}"
    else:
        what = (
            "an integer"
            + ("" if minimum is None else f" >= {minimum}")
            + ("" if maximum is None else f" <= {maximum}")
        )
    return _check_integer(value, name, minimum, maximum, what, meaning, hint)


def positive_int(value: object, name: str, *, meaning: str | None = None, hint: str | None = None) -> int:
    """Check an integer >= 1 (a count, a size). See :func:`integer` for the parameters and errors."""
    return _check_integer(value, name, 1, None, "a positive integer", meaning, hint)


def nonnegative_int(value: object, name: str, *, meaning: str | None = None, hint: str | None = None) -> int:
    """Check an integer >= 0 (a seed, an index, a gap). See :func:`integer` for the parameters and errors."""
    return _check_integer(value, name, 0, None, "a non-negative integer", meaning, hint)


def _check_real(
    value: object, name: str, ok: Callable[[float], bool], what: str, meaning: str | None, hint: str
) -> float:
    label = _label(name, meaning)
    if not _is_real(value):
        raise TypeError(
            f"{label} must be {what}, got {value!r} ({type(value).__name__}); "
            f"pass a number such as {name}=1.0."
        )
    v = float(value)
    if not (math.isfinite(v) and ok(v)):
        raise ValueError(f"{label} must be {what}, got {value!r}; {hint}.")
    return v


def finite_float(
    value: object,
    name: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    meaning: str | None = None,
    hint: str | None = None,
) -> float:
    """Check a finite real number, optionally within ``[low, high]`` (each end may be open).

    Parameters
    ----------
    value : object
        The argument to check: a Python or NumPy real number (not a ``bool``).
    name : str
        Its name, as the caller spells it.
    low, high : float, optional
        The bounds of the allowed interval; ``None`` leaves that side unbounded.
    low_open, high_open : bool, default False
        Exclude the bound itself (``low < value`` instead of ``low <= value``).
    meaning : str, optional
        What the argument is, shown in brackets after its name.
    hint : str, optional
        The fix for a wrong value; by default "pass a value in that range" (or "pass a finite
        value" without bounds).

    Returns
    -------
    float
        ``value`` as a Python ``float``.

    Raises
    ------
    TypeError
        If ``value`` is not a real number (``str``, ``None``, an array, a ``bool``, ...).
    ValueError
        If ``value`` is NaN, infinite or outside the interval.
    """
    parts = [] if low is None else [f"{'>' if low_open else '>='} {low:g}"]
    parts += [] if high is None else [f"{'<' if high_open else '<='} {high:g}"]
    what = "a finite number" + (" " + " and ".join(parts) if parts else "")

    def ok(v: float) -> bool:
        above = low is None or (v > low if low_open else v >= low)
        below = high is None or (v < high if high_open else v <= high)
        return above and below

    return _check_real(
        value,
        name,
        ok,
        what,
        meaning,
        hint or ("pass a value in that range" if parts else "pass a finite value"),
    )


def positive_float(value: object, name: str, *, meaning: str | None = None, hint: str | None = None) -> float:
    """Check a finite number > 0 (a scale, a precision). See :func:`finite_float`."""
    return _check_real(
        value, name, lambda v: v > 0, "a positive finite number", meaning, hint or f"pass e.g. {name}=1.0"
    )


def nonnegative_float(
    value: object, name: str, *, meaning: str | None = None, hint: str | None = None
) -> float:
    """Check a finite number >= 0 (a weight that may vanish). See :func:`finite_float`."""
    return _check_real(
        value,
        name,
        lambda v: v >= 0,
        "a non-negative finite number",
        meaning,
        hint or f"pass e.g. {name}=0.0",
    )


def probability(
    value: object,
    name: str,
    *,
    low_open: bool = False,
    high_open: bool = False,
    meaning: str | None = None,
    hint: str | None = None,
) -> float:
    """Check a probability in [0, 1]; ``low_open``/``high_open`` exclude 0 or 1. See :func:`finite_float`."""
    what = f"a probability in {'(' if low_open else '['}0, 1{')' if high_open else ']'}"

    def ok(v: float) -> bool:
        return (v > 0 if low_open else v >= 0) and (v < 1 if high_open else v <= 1)

    return _check_real(value, name, ok, what, meaning, hint or f"pass e.g. {name}=0.5")


def boolean(value: object, name: str, *, meaning: str | None = None) -> bool:
    """Check a flag: ``True`` or ``False`` (or a NumPy ``bool_``), not ``0``/``1`` or a string.

    Raises
    ------
    TypeError
        If ``value`` is not a ``bool``.
    """
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(
            f"{_label(name, meaning)} must be True or False, got {value!r} "
            f"({type(value).__name__}); pass {name}=True or {name}=False."
        )
    return bool(value)


def one_of(value: T, name: str, choices: Collection[T], *, meaning: str | None = None) -> T:
    """Check that ``value`` is one of ``choices`` and return it.

    Raises
    ------
    ValueError
        If ``value`` is not among ``choices`` (the message lists them).
    """
    try:
        ok = value in choices
    except TypeError:  # an unhashable value asked of a set
        ok = False
    if not ok:
        listed = ", ".join(repr(c) for c in choices)
        raise ValueError(
            f"{_label(name, meaning)} must be one of {listed}, got {value!r}; pick one of those."
        )
    return value
