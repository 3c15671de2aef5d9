"""The machinery every check shares: the verdict, the diagnosis, grading each task on its own.

* :class:`CheckFailed` (what a failing check raises: the message and the ``mistake`` it names) and
  :class:`StubNotImplemented` (the student's function is still the stub);
* :func:`_graded`, the decorator of every ``check_*``: it records pass / fail (read by
  :func:`passed`), silences warnings (nbgrader scores a cell that writes to stderr 0) and trims
  the traceback; in IPython a failed check shows its message alone (:func:`_install_short_tracebacks`);
* :func:`_call` runs the student's function, turning its errors into the check's words and
  putting the library's references (:func:`reference`, registered by the topic modules in
  ``_UPSTREAM``) in place of the earlier tasks' functions it calls; :func:`passed_or_reference`
  builds a network from the student's functions that passed and the references for the others;
* :func:`_diagnose` compares the answer with the reference and, when it differs, with the answers
  the typical mistakes give, and raises the hint of the one it matches.
"""

from __future__ import annotations

import functools
import traceback
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

#: How a failure of the hidden tests (a check called with ``hidden=``) starts its message.
HIDDEN_LABEL = "[hidden tests: other inputs than the visible check's] "
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


def _short_traceback(
    shell: Any, etype: type, value: BaseException, tb: Any, tb_offset: int | None = None
) -> list[str]:
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
            if kwargs.get("hidden") is not None and isinstance(exc, CheckFailed):
                exc.args = (f"{HIDDEN_LABEL}{exc}",)  # the feedback says which part failed
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


def passed_or_reference(
    namespace: dict, names: Sequence[str], verbose: bool = True, min_own: int = 0
) -> dict[str, Callable]:
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
        raise CheckFailed(
            "passed_or_reference",
            f"only {own} of your functions passed its check "
            f"(at least {min_own} needed): the points of this cell are for a network built "
            "from your own code. Make the checks above pass, then run this cell again.",
            "nothing_own",
        )
    return chosen


def _format_index(i: tuple) -> str:
    return "[" + ", ".join(str(int(v)) for v in i) + "]"


def _to_array(value: Any, check: str, what: str) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().double().numpy()
    if value is None:
        raise CheckFailed(
            check,
            f"your function returned None instead of {what}: end it with "
            "`return ...` (printing a value does not return it).",
            "type",
        )
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise CheckFailed(
            check,
            f"{what} should be a number or an array of numbers, but your function returned "
            f"a {type(value).__name__}: {value!r:.80}.",
            "type",
        ) from None
    return arr


def _require_tensor(check: str, got: Any, what: str, grad_of: tuple[Callable, tuple] | None = None) -> None:
    """Fail, naming the type, unless ``got`` is a ``torch.Tensor`` (and, with ``grad_of``, one
    that carries gradients).

    ``grad_of = (fn, args)``: ``fn(*args)`` is run again with every floating-point tensor of
    ``args`` requiring gradients, and its result must require them too: training differentiates
    through it, and a result cut from the graph (``.item()``, ``.detach()``, ``.numpy()``,
    ``torch.tensor(...)``) would only fail later, in another task's cell.
    """
    if not isinstance(got, torch.Tensor):
        if isinstance(got, np.ndarray):
            how = "a NumPy array: you left torch (.numpy(), np.* functions); compute with torch.* functions"
        elif isinstance(got, (float, int, np.floating, np.integer)):
            how = f"a Python {type(got).__name__}: .item() or float(...) turned the tensor into a number"
        elif got is None:
            how = "None: end your function with `return ...`"
        else:
            how = f"a {type(got).__name__}"
        raise CheckFailed(
            check,
            f"{what} must be a torch.Tensor, but your function returned {how}. Return the tensor itself.",
            "type",
        )
    if grad_of is None:
        return
    fn, args = grad_of
    grad_args = tuple(
        a.detach().clone().requires_grad_(True)
        if isinstance(a, torch.Tensor) and a.is_floating_point()
        else a
        for a in args
    )
    again = _call(fn, grad_args, check)
    if not (isinstance(again, torch.Tensor) and again.requires_grad):
        raise CheckFailed(
            check,
            f"{what} carries no gradient: something in your function cut it from the autograd graph "
            "(.item(), .detach(), .numpy(), float(...) or torch.tensor(...) of a tensor). Training "
            "differentiates through this function; keep every step in torch.",
            "detached",
        )


def _where_in_student_code(exc: BaseException) -> str:
    """' (line N of your code: `...`)' for the deepest frame outside the library, or ''."""
    here = str(Path(__file__).resolve().parents[1])  # course_lib/, not only course_lib/checks/
    frames = [
        f
        for f in traceback.extract_tb(exc.__traceback__)
        if not f.filename.startswith(here)
        and "site-packages" not in f.filename
        and "/lib/python" not in f.filename
    ]
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
        raise CheckFailed(
            check,
            f"expected your function, got {type(fn).__name__}; pass the function itself (no parentheses).",
            "type",
        )
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
        raise CheckFailed(
            check,
            f"calling your function raised {type(exc).__name__}: {exc}"
            f"{_where_in_student_code(exc)}. Run it on a small example and read the "
            "traceback.",
            "error",
        ) from None
    finally:
        g.update(saved)


def _close(a: np.ndarray, b: np.ndarray, rtol: float, atol: float) -> bool:
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=rtol, atol=atol, equal_nan=False))


def _diagnose(
    check: str,
    got: Any,
    expected: Any,
    mistakes: Sequence[tuple[str, Any, str]],
    what: str,
    nan_hint: str | None = None,
    rtol: float = RTOL,
    atol: float = ATOL,
    shape_hints: dict[tuple, tuple[str, str]] | None = None,
) -> None:
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
            if (
                value.shape == got_a.shape
                and not np.all(fin)
                and np.array_equal(fin, np.isfinite(got_a))
                and np.allclose(got_a[fin], value[fin], rtol=rtol, atol=atol)
            ):
                raise CheckFailed(check, hint, name)
        raise CheckFailed(
            check,
            nan_hint
            or f"{what} contains NaN or inf; the reference is finite. "
            "Look for a log or square root of a negative number or of zero.",
            "nan",
        )
    if _close(got_a, exp_a, rtol, atol):
        return
    for name, value, hint in mistakes:
        if _close(got_a, np.asarray(value, dtype=float), rtol, atol):
            raise CheckFailed(check, hint, name)
    diff = np.abs(got_a - exp_a)
    i = np.unravel_index(np.argmax(diff), diff.shape) if diff.ndim else ()
    where = f"at index {_format_index(i)} " if diff.ndim else ""
    raise CheckFailed(
        check,
        f"{what} is wrong and matches none of the typical mistakes: {where}you return "
        f"{got_a[i]:.6g}, the reference is {exp_a[i]:.6g} (largest difference {diff.max():.3g}). "
        "Compare your formula with the equation in the task, term by term.",
        "wrong",
    )


def _ok(message: str, hidden: int | None = None) -> None:
    if hidden is None:  # hidden tests print nothing
        print(f"OK - {message}")


def _rng(hidden: int | None, default: int) -> np.random.Generator:
    return np.random.default_rng(default if hidden is None else hidden)
