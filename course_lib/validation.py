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
e.g. ``n_samples (Monte Carlo samples) must be an integer >= 1, got 0; use n_samples >= 1.``
Each check returns the value converted to the plain Python type (``int``, ``float``, ``bool``).
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Collection
from typing import TypeVar

import numpy as np

__all__ = [
    "integer", "positive_int", "nonnegative_int",
    "finite_float", "positive_float", "nonnegative_float", "probability",
    "boolean", "one_of",
]

T = TypeVar("T")


def _label(name: str, meaning: str | None) -> str:
    return f"{name} ({meaning})" if meaning else name


def _is_integer(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _is_real(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def integer(value: object, name: str, *, minimum: int | None = None, meaning: str | None = None,
            hint: str | None = None) -> int:
    """Check an integer argument, optionally bounded below.

    Parameters
    ----------
    value : object
        The argument to check.
    name : str
        Its name, as the caller spells it (it opens the message).
    minimum : int, optional
        The smallest allowed value.
    meaning : str, optional
        What the argument is, shown in brackets after its name (e.g. ``"Monte Carlo samples"``).
    hint : str, optional
        The fix, for a value below ``minimum``; by default ``"use {name} >= {minimum}"``.

    Returns
    -------
    int
        ``value`` as a Python ``int``.

    Raises
    ------
    TypeError
        If ``value`` is not an integer (``bool``, ``float``, ``str``, ``None``, ...).
    ValueError
        If ``value`` is below ``minimum``.
    """
    label = _label(name, meaning)
    bound = "" if minimum is None else f" >= {minimum}"
    if not _is_integer(value):
        example = 1 if minimum is None else max(minimum, 1)
        raise TypeError(f"{label} must be an integer{bound}, got {value!r} ({type(value).__name__}); "
                        f"pass a whole number, e.g. {name}={example}.")
    if minimum is not None and value < minimum:
        raise ValueError(f"{label} must be an integer{bound}, got {value}; {hint or f'use {name}{bound}'}.")
    return int(value)


def positive_int(value: object, name: str, *, meaning: str | None = None, hint: str | None = None) -> int:
    """Check an integer >= 1 (a count, a size). See :func:`integer` for the parameters and errors."""
    return integer(value, name, minimum=1, meaning=meaning, hint=hint)


def nonnegative_int(value: object, name: str, *, meaning: str | None = None, hint: str | None = None) -> int:
    """Check an integer >= 0 (a seed, an index, a gap). See :func:`integer` for the parameters and errors."""
    return integer(value, name, minimum=0, meaning=meaning, hint=hint)


def finite_float(value: object, name: str, *, low: float | None = None, high: float | None = None,
                 low_open: bool = False, high_open: bool = False, meaning: str | None = None,
                 hint: str | None = None) -> float:
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
        The fix for a wrong value; by default the allowed interval is restated.

    Returns
    -------
    float
        ``value`` as a Python ``float``.

    Raises
    ------
    TypeError
        If ``value`` is not a real number.
    ValueError
        If ``value`` is NaN, infinite or outside the interval.
    """
    label = _label(name, meaning)
    parts = [] if low is None else [f"{'>' if low_open else '>='} {low:g}"]
    parts += [] if high is None else [f"{'<' if high_open else '<='} {high:g}"]
    what = "a finite number" + (" " + " and ".join(parts) if parts else "")
    if not _is_real(value):
        raise TypeError(f"{label} must be {what}, got {value!r} ({type(value).__name__}); "
                        f"pass a number such as {name}=1.0.")
    v = float(value)
    too_low = low is not None and (v <= low if low_open else v < low)
    too_high = high is not None and (v >= high if high_open else v > high)
    if not math.isfinite(v) or too_low or too_high:
        raise ValueError(f"{label} must be {what}, got {value!r}; {hint or 'pass a value in that range'}.")
    return v


def positive_float(value: object, name: str, *, meaning: str | None = None, hint: str | None = None) -> float:
    """Check a finite number > 0 (a scale, a precision). See :func:`finite_float`."""
    return finite_float(value, name, low=0.0, low_open=True, meaning=meaning,
                        hint=hint or f"pass e.g. {name}=1.0")


def nonnegative_float(value: object, name: str, *, meaning: str | None = None,
                      hint: str | None = None) -> float:
    """Check a finite number >= 0 (a weight that may vanish). See :func:`finite_float`."""
    return finite_float(value, name, low=0.0, meaning=meaning, hint=hint or f"pass e.g. {name}=0.0")


def probability(value: object, name: str, *, low_open: bool = False, high_open: bool = False,
                meaning: str | None = None, hint: str | None = None) -> float:
    """Check a probability in [0, 1]; ``low_open``/``high_open`` exclude 0 or 1. See :func:`finite_float`."""
    return finite_float(value, name, low=0.0, high=1.0, low_open=low_open, high_open=high_open,
                        meaning=meaning, hint=hint or f"pass e.g. {name}=0.5")


def boolean(value: object, name: str, *, meaning: str | None = None) -> bool:
    """Check a flag: ``True`` or ``False`` (or a NumPy ``bool_``), not ``0``/``1`` or a string.

    Raises
    ------
    TypeError
        If ``value`` is not a ``bool``.
    """
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{_label(name, meaning)} must be True or False, got {value!r} "
                        f"({type(value).__name__}); pass {name}=True or {name}=False.")
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
        raise ValueError(f"{_label(name, meaning)} must be one of {listed}, got {value!r}; pick one of those.")
    return value
