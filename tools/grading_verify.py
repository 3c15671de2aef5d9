"""Re-run an autograded notebook in a fresh Python process, outside the student's kernel.

``tools/grading.py`` runs this file's source with ``python -c`` in the same sandbox as the kernel
(``grading_sandbox.sandboxed``), after nbgrader's autograde, with a job file (JSON) as its argument:
``{"cells": [{"source", "kind", "grade_id"}], "token": ...}``. It executes every code cell in order
in one plain namespace (no IPython: ``get_ipython()`` and magics do nothing, hooks register
nowhere, ``display`` shows nothing), and runs each
check cell (``kind == "check"``, the instructor's version from the gradebook) only after putting
back what the course library, the names the import cell bound, and NumPy/torch/builtins were right
after the import cell: a rebound ``checks.check_posterior``, a replaced ``np.allclose`` or a
redefined ``checks`` is undone before the check runs, and again after every call of a function the
submission defined, so the verdict comes from the references. It prints one line, the token and a
JSON object ``{"checks": {grade_id: null or "Error: message"}, "rebinds": [...]}``, on a copy of
the original stdout (the submission's own output goes to ``/dev/null``).

Limits: the submission's code still runs in this process; code written to defeat this re-run (for
instance by finding this process's objects through ``gc`` or ``ctypes``) is not undone. The
``rebinds`` list and ``tools/grading.py``'s scan of the source flag such submissions for a human.
"""

import functools
import io
import json
import os
import sys
import types

MISSING = object()
GUARDED = ("builtins", "math", "numpy", "numpy.linalg", "torch", "torch.nn.functional", "scipy")


def _course_modules():
    return {n: m for n, m in list(sys.modules.items()) if n == "course_lib" or n.startswith("course_lib.")}


def snapshot(ns, names):
    """The state to put back: module dicts, function code, class dicts, the import cell's names."""
    mods = {**_course_modules(), **{n: sys.modules[n] for n in GUARDED if n in sys.modules}}
    state = {"mods": {}, "funcs": [], "classes": [], "ns": {k: ns[k] for k in names if k in ns}}
    for name, mod in mods.items():
        d = dict(vars(mod))
        state["mods"][name] = (mod, d)
        for value in d.values():
            if isinstance(value, types.FunctionType):
                state["funcs"].append((value, value.__code__, value.__defaults__, value.__kwdefaults__))
            elif isinstance(value, type) and str(getattr(value, "__module__", "")).startswith("course_lib"):
                state["classes"].append((value, dict(vars(value))))
    return state


def _student_made(value):
    """Code that no library file defines (a lambda or function of a notebook cell)."""
    code = getattr(value, "__code__", None) or getattr(getattr(value, "__func__", None), "__code__", None)
    return code is not None and not code.co_filename.endswith(".py")


def _suspicious(old, new):
    """A rebinding that replaces library code (not a cache filled in)."""
    return _student_made(new) or (
        isinstance(old, (types.FunctionType, types.ModuleType, type)) and new is not old
    )


def restore(state, ns):
    """Put ``state`` back; the names of what had been rebound (course_lib and the import cell's)."""
    changed = []
    for name, (mod, saved) in state["mods"].items():
        if sys.modules.get(name) is not mod:
            changed.append(f"sys.modules[{name!r}]")
            sys.modules[name] = mod
        current, ours = vars(mod), name == "course_lib" or name.startswith("course_lib.")
        for key, value in saved.items():
            now = current.get(key, MISSING)
            if now is value or not (ours or now is MISSING or _student_made(now)):
                continue  # NumPy's, torch's own rebinding (torch._dynamo wraps torch.manual_seed)
            if now is MISSING or _suspicious(value, now):
                changed.append(f"{name}.{key}")
            current[key] = value
    for func, code, defaults, kwdefaults in state["funcs"]:
        if func.__code__ is not code or func.__defaults__ is not defaults:
            changed.append(f"{func.__module__}.{func.__qualname__}.__code__")
            func.__code__, func.__defaults__, func.__kwdefaults__ = code, defaults, kwdefaults
    for cls, saved in state["classes"]:
        for key, value in saved.items():
            if key not in ("__dict__", "__weakref__", "__doc__") and vars(cls).get(key, MISSING) is not value:
                changed.append(f"{cls.__module__}.{cls.__qualname__}.{key}")
                setattr(cls, key, value)
        for key in [k for k in vars(cls) if k not in saved]:
            changed.append(f"{cls.__module__}.{cls.__qualname__}.{key}")
            delattr(cls, key)
    for key, value in state["ns"].items():
        if ns.get(key, MISSING) is not value:
            changed.append(key)
            ns[key] = value
    return changed


def guard(func, state, ns, log):
    """``func`` (defined by the submission) that puts the references back after every call."""

    @functools.wraps(func)
    def guarded(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        finally:
            log.extend(restore(state, ns))

    guarded.__grading_guard__ = True
    return guarded


def _python(source):
    """The cell as plain Python (magics become get_ipython() calls, which do nothing here)."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        return TransformerManager().transform_cell(source)
    except Exception:
        return source


class _NoIPython:
    """``get_ipython()`` here: every attribute and call is a no-op (a magic does nothing, a hook
    registers nowhere), so a solution cell that starts with ``%matplotlib inline`` still defines its
    function."""

    def __getattr__(self, name):
        return self

    def __call__(self, *args, **kwargs):
        return self

    def __iter__(self):
        return iter(())


def run(job):
    """Execute the job's cells; the verdict of each check cell and what was rebound."""
    shell = _NoIPython()
    ns = {
        "__name__": "__main__",
        "__builtins__": __builtins__,
        "get_ipython": lambda: shell,
        "display": lambda *a, **k: None,
    }
    state, log, verdicts = None, [], {}
    for i, cell in enumerate(job["cells"]):
        if state is not None and cell["kind"] == "check":
            log.extend(restore(state, ns))
        try:
            code = compile(_python(cell["source"]), f"<{cell['kind']} cell {i}>", "exec")
            exec(code, ns)
            error = None
        except BaseException as err:  # noqa: BLE001 (SystemExit, KeyboardInterrupt: the cell failed)
            error = f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else ''}"
        if cell["kind"] == "check":
            verdicts[cell["grade_id"]] = error
        if cell["kind"] == "imports" and state is None:
            names = [k for k in ns if not k.startswith("__")]
            state = snapshot(ns, names)
        if state is not None:
            for key, value in list(ns.items()):
                code = getattr(value, "__code__", None)
                if (
                    code is not None
                    and code.co_filename.startswith("<student")
                    and not hasattr(value, "__grading_guard__")
                ):
                    ns[key] = guard(value, state, ns, log)
    return {"checks": verdicts, "rebinds": sorted(set(log))}


def main():
    with open(sys.argv[1]) as f:
        job = json.load(f)
    out = os.fdopen(os.dup(1), "w")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    sys.stdout = sys.stderr = io.TextIOWrapper(io.BufferedWriter(io.FileIO(devnull, "w", closefd=False)))
    os.environ.setdefault("MPLBACKEND", "agg")
    result = run(job)
    out.write(job["token"] + json.dumps(result) + "\n")
    out.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
