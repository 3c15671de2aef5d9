"""Feedback a student can read offline: nbgrader preprocessors of ``make feedback``.

``tools/grading.py`` copies this file beside ``nbgrader_config.py``, which lists them in
``GenerateFeedback.preprocessors`` (before and after nbgrader's ``ClearHiddenTests``):

* :class:`NeutraliseMarkers` -- a hidden-test marker that the student typed into an ungraded cell
  would make ``ClearHiddenTests`` raise and stop the feedback; it is rewritten.
* :class:`RedactHidden` -- no output line may quote a line of the hidden tests (a submission can
  print the cell it is run in); such lines are replaced. An error raised by a hidden-test line is
  labelled as such (the checks' own messages say so themselves, ``hidden=`` in ``course_lib.checks``).
* :class:`ShortTracebacks` -- every error shows ``Name: message`` only (a traceback would quote
  hidden tests, the grader's paths and library source).
* :class:`PlainMyST` -- MyST roles and directives become plain Markdown; absolute paths go.
"""

from __future__ import annotations

import re

from nbgrader.preprocessors import NbGraderPreprocessor

BEGIN, END = "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"
HIDDEN_FAILED = "The hidden tests (other inputs than the visible check's) failed: "
_PATH = re.compile(r"(?:/[\w.@+-]+){2,}/")
_ROLE = re.compile(r"\{(\w[\w:-]*)\}`([^`]*)`")
_FENCE = re.compile(r"^(`{3,}|:{3,})\{(\w[\w-]*)\}[ \t]*(.*)$")
_OPTION = re.compile(r"^:[\w-]+:.*$")
_EQ_LABEL = re.compile(r"\$\$\s*\(([\w:-]+)\)")


def _meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def _texts(cell):
    """(output, key) pairs of the text an output shows."""
    for out in cell.get("outputs", []):
        if "text" in out:
            yield out, "text"
        for mime in ("text/plain", "text/html", "text/markdown"):
            if mime in out.get("data", {}):
                yield out["data"], mime


def _join(value) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


class NeutraliseMarkers(NbGraderPreprocessor):
    """Rewrite hidden-test markers in cells that are no check cells (before ClearHiddenTests)."""

    enabled = True

    def preprocess_cell(self, cell, resources, index):  # noqa: D102
        if not _meta(cell).get("grade") and (BEGIN in cell.source or END in cell.source):
            cell.source = cell.source.replace(BEGIN, "(hidden-test marker removed)").replace(
                END, "(hidden-test marker removed)"
            )
        return cell, resources


class RedactHidden(NbGraderPreprocessor):
    """Replace every output line that quotes a hidden-test line (before ClearHiddenTests)."""

    enabled = True

    def preprocess(self, nb, resources):  # noqa: D102
        hidden = set()
        for cell in nb.cells:
            inside = False
            for line in cell.source.splitlines():
                if BEGIN in line:
                    inside = True
                elif END in line:
                    inside = False
                elif inside and len(line.strip()) >= 8:
                    hidden.add(line.strip())
        for cell in nb.cells:
            if _meta(cell).get("grade") and BEGIN in cell.source:
                for out in cell.get("outputs", []):
                    tb = out.get("traceback", [])
                    if out.get("output_type") == "error" and _failed_in_hidden(cell.source, tb):
                        out["traceback"] = [HIDDEN_FAILED] + list(tb)
        if not hidden:
            return nb, resources
        for cell in nb.cells:
            for holder, key in _texts(cell):
                lines = _join(holder[key]).split("\n")
                kept = [
                    "[a line of the hidden tests, removed]" if any(h in ln for h in hidden) else ln
                    for ln in lines
                ]
                holder[key] = "\n".join(kept)
        return nb, resources


class ShortTracebacks(NbGraderPreprocessor):
    """Every error as ``Name: message``; a failed check says which part (visible, hidden) failed."""

    enabled = True

    def preprocess_cell(self, cell, resources, index):  # noqa: D102
        for out in cell.get("outputs", []):
            if out.get("output_type") != "error":
                continue
            text = f"{out['ename']}: {_PATH.sub('', out.get('evalue', ''))}"
            if out.get("traceback", [""])[0].startswith(HIDDEN_FAILED):  # labelled by RedactHidden
                text = HIDDEN_FAILED + text
            out["evalue"] = _PATH.sub("", out.get("evalue", ""))
            out["traceback"] = [text]
        for holder, key in _texts(cell):
            holder[key] = _PATH.sub("", _join(holder[key]))
        return cell, resources


def _failed_in_hidden(source: str, traceback: list[str]) -> bool:
    """Whether the traceback's line in the cell lies between the hidden-test markers."""
    lines = source.splitlines()
    start = next((i for i, ln in enumerate(lines) if BEGIN in ln), len(lines))
    plain = re.compile(r"\x1b\[[0-9;]*m")
    for frame in traceback[:3]:
        for match in re.finditer(r"^-*>\s*(\d+)", plain.sub("", frame), re.M):
            return int(match.group(1)) - 1 > start
    return False


class PlainMyST(NbGraderPreprocessor):
    """Markdown cells without MyST syntax: roles become their text, directives plain blocks."""

    enabled = True

    def preprocess_cell(self, cell, resources, index):  # noqa: D102
        if cell.cell_type != "markdown":
            return cell, resources
        out, open_fences = [], []
        for line in cell.source.splitlines():
            fence = _FENCE.match(line.strip())
            if fence:
                title = fence.group(3).strip()
                kind = fence.group(2).split(":")[-1].replace("-", " ")
                out.append(f"**{kind.capitalize()}{': ' + title if title else ''}**")
                open_fences.append(fence.group(1))
                continue
            if open_fences and line.strip() == open_fences[-1]:
                open_fences.pop()
                continue
            if open_fences and _OPTION.match(line.strip()):
                continue
            line = _ROLE.sub(lambda m: f"({m.group(2)})" if m.group(1) == "eq" else m.group(2), line)
            out.append(_EQ_LABEL.sub("$$", line))
        cell.source = "\n".join(out)
        return cell, resources
