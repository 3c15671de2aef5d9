"""The layout the redesign asks of course_lib (issue 15): short functions.

No function or method in ``course_lib/`` (subpackages included) has more than
:data:`MAX_CODE_LINES` lines of code.  A code line holds a token of code: blank lines, comment
lines and docstrings (of the function and of anything nested in it) do not count; a line of a
multi-line string that is not a docstring does.  A nested function counts in its own right and
within the function that holds it.
"""

from __future__ import annotations

import ast
import io
import textwrap
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "course_lib"
MAX_CODE_LINES = 60

_NOT_CODE = {
    tokenize.COMMENT,
    tokenize.NL,
    tokenize.NEWLINE,
    tokenize.INDENT,
    tokenize.DEDENT,
    tokenize.ENCODING,
    tokenize.ENDMARKER,
}


def _docstring_lines(tree: ast.AST) -> set[int]:
    """Line numbers of every docstring (module, class, function) in ``tree``."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if (
                body
                and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)
            ):
                lines.update(range(body[0].lineno, body[0].end_lineno + 1))
    return lines


def _code_lines(source: str, tree: ast.AST) -> set[int]:
    """Line numbers that hold code: a token other than a comment or a line break, no docstring."""
    lines: set[int] = set()
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type not in _NOT_CODE:
            lines.update(range(tok.start[0], tok.end[0] + 1))
    return lines - _docstring_lines(tree)


def function_lengths(source: str) -> dict[str, int]:
    """Code lines of every function in ``source``, by qualified name (``Class.method``, ``f.<inner>``).

    The count runs from the ``def`` line to the function's last line (decorators are not counted).
    """
    tree = ast.parse(source)
    code = _code_lines(source, tree)
    out: dict[str, int] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = f"{prefix}{child.name}"
                out[name] = len(code & set(range(child.lineno, child.end_lineno + 1)))
                visit(child, f"{name}.<locals>.")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")
            else:
                visit(child, prefix)

    visit(tree, "")
    return out


def long_functions(root: Path = PACKAGE, limit: int = MAX_CODE_LINES) -> list[str]:
    """``"path:function (N code lines)"`` for every function under ``root`` longer than ``limit``."""
    found = []
    for path in sorted(root.rglob("*.py")):
        for name, n in function_lengths(path.read_text(encoding="utf-8")).items():
            if n > limit:
                found.append(f"{path.relative_to(root.parent)}:{name} ({n} code lines)")
    return found


SYNTHETIC = textwrap.dedent('''\
    """Module docstring: not in any function."""
    import os


    @staticmethod
    def documented(a, b):
        """A docstring
        of three lines
        does not count."""
        # a comment line does not count

        x = (a +      # code with a trailing comment counts
             b)
        text = """a multi-line
        string that is code"""
        return x, text


    class K:
        def method(self):
            def inner():
                """Inner docstring."""
                return 1
            return inner()


    async def short():
        pass
    ''')


def test_counts_code_lines_only():
    """def line + 2 (x = ...) + 2 (text = ...) + return = 6 in documented; decorators not counted."""
    assert function_lengths(SYNTHETIC) == {
        "documented": 6,
        "K.method": 4,  # def, def inner, return 1, return inner()
        "K.method.<locals>.inner": 2,  # def, return 1
        "short": 2,
    }


def test_flags_a_long_function_by_name(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    body = "\n".join(f"    x{i} = {i}" for i in range(60))
    (pkg / "sub" / "long.py").write_text(
        f"def too_long():\n{body}\n    return x0\n\n\ndef fine():\n    return 1\n"
    )
    at_limit = "\n".join(f"    y{i} = {i}" for i in range(58))  # + def + return = 60 lines: not flagged
    (pkg / "ok.py").write_text(f"def at_limit():\n{at_limit}\n    return 0\n")
    assert long_functions(pkg) == ["pkg/sub/long.py:too_long (62 code lines)"]
    assert long_functions(pkg, limit=62) == []


def test_no_function_in_course_lib_is_over_60_code_lines():
    """Issue 15: split a longer function into named steps (one idea each)."""
    found = long_functions()
    assert not found, f"{len(found)} function(s) over {MAX_CODE_LINES} code lines:\n" + "\n".join(found)
