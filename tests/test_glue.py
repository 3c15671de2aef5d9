"""Every number a chapter's prose pastes with myst-nb's ``glue`` is stored in that notebook.

A markdown cell or a figure caption (a code cell's ``metadata.mystnb.figure.caption``) that uses
``{glue:text}`key:fmt` `` (or ``{glue}``, ``{glue:}``, ``{glue:any}``,
``{glue:md}``, or a ``{glue}``/``{glue:figure}``/``{glue:math}``/``{glue:md}`` directive) renders the
value that a code cell stored with ``myst_nb.glue(key, value, display=False)``. myst-nb 1.4 stores it
as an output of that code cell whose metadata is ``{"scrapbook": {"name": key, "mime_prefix": ...}}``
and whose data keys carry the prefix ``application/papermill.record/`` (none with ``display=True``).
A key that is used but not stored would make the book build warn (and fail under ``-W``) or, in a
notebook not yet re-executed, leave the text stale; this test says which key, where, and the fix.
"""

from __future__ import annotations

import ast
import decimal
import importlib
import math
import re
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p for p in (ROOT / "chapters").rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)

# roles: {glue}`key`, {glue:}`key`, {glue:any}`key`, {glue:text}`key:fmt`, {glue:md}`key:fmt`
ROLE = re.compile(r"\{glue(?::(?:any|text|md)?)?\}`([^`]+)`")
# directives: ```{glue} key, ```{glue:figure} key, ```{glue:math} key, ```{glue:md} key (also ::: fences)
DIRECTIVE = re.compile(
    r"^[ \t]*(?:`{3,}|:{3,})\{glue(?::(?:any|figure|math|md)?)?\}[ \t]+(\S+)", re.MULTILINE
)
ROLE_WITH_FORMAT = re.compile(r"\{glue:(text|md)\}`([^`]+)`")
INLINE_CODE = re.compile(r"``.+?``")  # a role quoted inside a code span is not a use
GLUE_PREFIX = "application/papermill.record/"


def _key(text: str) -> str:
    """The key of a role's content ``[doc::]key[:fmt]`` (glue keys contain no colon)."""
    return text.split("::", 1)[-1].split(":", 1)[0].strip()


def pasting_text(cell: nbformat.NotebookNode) -> str:
    """The MyST of a cell that myst-nb renders with glue: a markdown cell's source, or the caption
    of a code cell's figure (``metadata.mystnb.figure.caption``, parsed as MyST after the notebook's
    glue data is loaded, so a role there pastes too)."""
    if cell.cell_type == "markdown":
        return INLINE_CODE.sub("", cell.source)
    if cell.cell_type == "code":
        caption = cell.metadata.get("mystnb", {}).get("figure", {}).get("caption", "")
        return INLINE_CODE.sub("", caption) if isinstance(caption, str) else ""
    return ""


def used_keys(nb: nbformat.NotebookNode) -> dict[str, list[int]]:
    """Glue keys pasted by the notebook's markdown cells and figure captions, each with the indices
    of the cells using it."""
    keys: dict[str, list[int]] = {}
    for index, cell in enumerate(nb.cells):
        source = pasting_text(cell)
        for match in [*ROLE.finditer(source), *DIRECTIVE.finditer(source)]:
            keys.setdefault(_key(match.group(1)), []).append(index)
    return keys


def stored_keys(nb: nbformat.NotebookNode) -> dict[str, list[nbformat.NotebookNode]]:
    """Glue keys stored in the code cells' outputs (the myst-nb 1.4 ``scrapbook`` metadata)."""
    keys: dict[str, list[nbformat.NotebookNode]] = {}
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for output in cell.get("outputs", []):
            scrapbook = output.get("metadata", {}).get("scrapbook")
            if scrapbook is not None:
                keys.setdefault(scrapbook["name"], []).append(output)
    return keys


def text_plain(output: nbformat.NotebookNode) -> str | None:
    """The text/plain value of a stored glue output, with or without the papermill prefix."""
    data = output.get("data", {})
    return data.get(GLUE_PREFIX + "text/plain", data.get("text/plain"))


def glue_problems(nb: nbformat.NotebookNode, name: str = "notebook") -> list[str]:
    """Every used key that is not stored, stored twice, or cannot take the format its role asks for."""
    from myst_nb.core.variables import format_plain_text

    stored = stored_keys(nb)
    problems = []
    for key, cells in sorted(used_keys(nb).items()):
        if key not in stored:
            problems.append(
                f"{name}: glue key {key!r} is used in cell(s) {cells} but no code cell "
                f"stores it: add `glue({key!r}, value, display=False)` to the cell that computes it "
                f"and re-execute the notebook"
            )
    for key, outputs in sorted(stored.items()):
        if len(outputs) > 1:
            problems.append(
                f"{name}: glue key {key!r} is stored {len(outputs)} times (myst-nb keeps the last): "
                "give each value its own key"
            )
    for index, cell in enumerate(nb.cells):
        for match in ROLE_WITH_FORMAT.finditer(pasting_text(cell)):
            content = match.group(2).split("::", 1)[-1]
            key, _, fmt = content.partition(":")
            if key not in stored or not fmt:
                continue
            text = text_plain(stored[key][-1])
            if text is None:
                problems.append(f"{name}: glue key {key!r} (cell {index}) has no text/plain value")
                continue
            try:
                format_plain_text(text, fmt)
            except (ValueError, TypeError) as exc:
                problems.append(
                    f"{name}: glue key {key!r} (cell {index}) stores {text!r}, which the "
                    f"format {fmt!r} cannot print ({exc}): glue a number, or change the format"
                )
    return problems


# --- precision: a glued float carries the digits its prose shows, no more (issue 24) ---
# A float glued at full precision (0.07498439130406764) is stored in the cell's output, which strict
# nbval compares: its last digits come from the CPU's kernels and differ on the next CPU, although
# the prose prints two decimals. Glue the value rounded to what the prose shows.
FORMAT_PRECISION = re.compile(r"^[^.]*\.(?P<digits>\d+)(?P<kind>[fF%eEgG]?)$")


def _float_value(text: str | None) -> float | None:
    """The stored value if it is a float literal (``'2.4'``, ``'-1e-05'``), else None."""
    try:
        value = ast.literal_eval(text) if text is not None else None
    except (ValueError, SyntaxError):
        return None
    return value if isinstance(value, float) and math.isfinite(value) else None


def stored_digits(text: str) -> tuple[int, int]:
    """Decimals and significant digits of a stored float literal, trailing zeros ignored."""
    sign, digits, exponent = decimal.Decimal(text).normalize().as_tuple()
    significant = len(digits) if any(digits) else 0
    return max(0, -exponent), significant


def allowed_digits(fmt: str) -> tuple[str, int] | None:
    """What a format shows of a float: ``("decimals", n)`` for ``.nf`` / ``.n%``, ``("significant", n)``
    for ``.ne`` / ``.ng`` / ``.n``, None for a format without a precision (it shows the repr)."""
    match = FORMAT_PRECISION.match(fmt)
    if match is None:
        return None
    digits, kind = int(match["digits"]), match["kind"]
    if kind in "fF" and kind:
        return "decimals", digits
    if kind == "%":
        return "decimals", digits + 2
    if kind in "eE":
        return "significant", digits + 1
    return "significant", max(digits, 1)


#: A float pasted with no precision (``{glue:text}`key` ``) shows its repr: it must be stored rounded.
MAX_SIGNIFICANT_WITHOUT_FORMAT = 6


def precision_problems(nb: nbformat.NotebookNode, name: str = "notebook") -> list[str]:
    """Every stored float glue value with more digits than any use in the prose shows, or never pasted."""
    formats: dict[str, set[str]] = {}
    for cell in nb.cells:
        source = pasting_text(cell)
        for match in ROLE.finditer(source):
            key, _, fmt = match.group(1).split("::", 1)[-1].partition(":")
            formats.setdefault(key.strip(), set()).add(fmt.strip())
        for match in DIRECTIVE.finditer(source):
            formats.setdefault(_key(match.group(1)), set()).add("")
    problems = []
    for key, outputs in sorted(stored_keys(nb).items()):
        text = text_plain(outputs[-1])
        value = _float_value(text)
        if value is None:
            continue
        if key not in formats:
            problems.append(
                f"{name}: glue key {key!r} stores the float {text} but the prose never pastes it: "
                "glue only what the prose shows (remove the glue call), or paste it"
            )
            continue
        decimals, significant = stored_digits(text)
        needs = [allowed_digits(fmt) for fmt in sorted(formats[key])]
        if any(need is None for need in needs):
            ok, shown = significant <= MAX_SIGNIFICANT_WITHOUT_FORMAT, "its repr (no precision in the format)"
        else:
            max_decimals = max((n for kind, n in needs if kind == "decimals"), default=-1)
            max_significant = max((n for kind, n in needs if kind == "significant"), default=-1)
            ok = decimals <= max_decimals or significant <= max_significant
            shown = " and ".join(f"{kind} {n}" for kind, n in needs)
        if not ok:
            problems.append(
                f"{name}: glue key {key!r} stores {text}, more digits than the prose shows ({shown} "
                f"from {sorted(formats[key])}): its last digits depend on the CPU and strict nbval then "
                "fails on another one; glue the value rounded as the prose prints it, e.g. "
                "glue(key, round(value, 2), display=False) for :.2f"
            )
    return problems


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[str(p.relative_to(ROOT)) for p in NOTEBOOKS])
def test_glued_floats_carry_only_the_digits_the_prose_shows(path):
    nb = nbformat.read(path, as_version=4)
    assert precision_problems(nb, str(path.relative_to(ROOT))) == []


def test_the_precision_check_catches_full_precision_and_unpasted_floats():
    nb = _notebook(
        "{glue:text}`ms:.2f`, {glue:text}`share:.1%`, {glue:text}`big:.3g`, {glue:text}`raw`, "
        "{glue:text}`ok:.2f`, {glue:text}`pct:.1%`, {glue:text}`n:d` and {glue:text}`two:.1f`, {glue:text}`two:.3f`",
        [
            _glue_output("ms", 0.07498439130406764),  # full precision for :.2f
            _glue_output("share", 0.12345),  # :.1% shows 3 decimals
            _glue_output("big", 214.79),  # :.3g shows 3 significant digits
            _glue_output("raw", 2.4176226077193093),  # no precision: the repr is shown, must be rounded
            _glue_output("ok", 0.07),
            _glue_output("pct", 0.123),
            _glue_output("n", 12),  # integers are exact
            _glue_output("two", 0.125),  # the widest use (:.3f) counts
            _glue_output("unused", 0.5),
        ],
    )
    problems = precision_problems(nb, "tiny.ipynb")
    flagged = sorted(re.search(r"glue key '([^']+)'", p)[1] for p in problems)
    assert flagged == ["big", "ms", "raw", "share", "unused"], problems
    assert "never pastes it" in next(p for p in problems if "'unused'" in p)
    assert "round(value, 2)" in next(p for p in problems if "'ms'" in p)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[str(p.relative_to(ROOT)) for p in NOTEBOOKS])
def test_every_glued_key_is_stored(path):
    nb = nbformat.read(path, as_version=4)
    assert glue_problems(nb, str(path.relative_to(ROOT))) == []


def test_some_chapters_glue_their_numbers():
    """The check above is not vacuous: chapters 5-7 paste computed numbers through glue."""
    for stem in ("05_", "06_", "07_"):
        (path,) = [p for p in NOTEBOOKS if p.name.startswith(stem)]
        nb = nbformat.read(path, as_version=4)
        assert used_keys(nb) and stored_keys(nb), path.name


#: Chapter 10's comparison with the baselines (issue 17): the table's prose and the rotation sweep's
#: conclusion paste these computed numbers; a key typed in again as a literal, or no longer stored, fails.
CH10_BASELINE_KEYS = {
    "ch10-dense-error",
    "ch10-ece-dense",
    "ch10-machine",
    "ch10-base-err-dense",
    "ch10-base-err-drop",
    "ch10-base-err-deep",
    "ch10-base-err-mean",
    "ch10-base-nll-dense",
    "ch10-base-nll-drop",
    "ch10-base-nll-deep",
    "ch10-base-nll-mean",
    "ch10-base-ece-dense",
    "ch10-base-ece-mean",
    "ch10-base-conf90-max-other",
    "ch10-base-cost-ratio",
    "ch10-base-sparse-ratio",
    "ch10-noise-H-drop",
    "ch10-noise-H-deep",
    "ch10-noise-H-ens",
    "ch10-rot-acc-spread",
    "ch10-rot-acc90-min",
    "ch10-rot-acc90-max",
    "ch10-rot-peak",
    "ch10-rot-H-dense",
    "ch10-rot-H-drop",
    "ch10-rot-H-deep",
    "ch10-rot-H-mean",
    "ch10-rot-H-ens",
    "ch10-rot-H-most",
    "ch10-rot-H-least",
    "ch10-rot-H-ratio",
    "ch10-rot-gap-min",
    "ch10-rot-gap-max",
    "ch10-rot-gap-min-name",
    "ch10-rot-gap-max-name",
}


#: Chapter 8's numbers that issue 17 found typed in or unbacked: the slopes of section 8.3.1 and the
#: one-weight toy (item 3), the threshold exercise's transit / at-the-clip shares for this run and the
#: recorded 40-epoch run (the "matters even less" claim), and train_clip's compression.
CH8_ISSUE17_KEYS = {
    "ch8-slope-theta",
    "ch8-slope-sigma2",
    "ch8-theta-ratio",
    "ch8-toy-slope-theta",
    "ch8-toy-slope-sigma2",
    "ch8-pruned-ls2",
    "ch8-kept-ls2",
    "ch8-fc1-transit",
    "ch8-fc1-at-clip",
    "ch8-fc1-transit40",
    "ch8-fc1-at-clip40",
    "ch8-thr-comp-0",
    "ch8-thr-comp-6",
    "ch8-thr-err-range",
    "ch8-clip-compression",
    "ch8-clip-error",
    "ch8-clip-ratio",
    "ch8-ratio-add-lrt",
}

#: Chapter 9 (issue 17): every number its prose computes, glued (the paper's own numbers stay literal).
CH9_KEYS = {
    "ch9-total-weights",
    "ch9-fc1-share",
    "ch9-dense-error",
    "ch9-quick-error",
    "ch9-error-gap",
    "ch9-quick-compression",
    "ch9-conv1-pruned",
    "ch9-fc1-kept",
    "ch9-dense-epoch-share",
    "ch9-recorded-error",
    "ch9-recorded-compression",
    "ch9-recorded-minutes",
    "ch9-recorded-lenet300-minutes",
    "ch9-conv2-kernels-kept",
    "ch9-conv2-filters-empty",
    "ch9-conv1-kept-first",
    "ch9-conv1-kept-last",
    "ch9-conv2-kept-first",
    "ch9-conv2-kept-second",
    "ch9-conv2-kept-last",
    "ch9-conv2-filters-first",
    "ch9-conv2-filters-second",
    "ch9-conv2-filters-last",
    "ch9-fc1-units-kept",
    "ch9-fc1-inputs-kept",
    "ch9-sweep-comp-tau7",
    "ch9-sweep-comp-tau1",
    "ch9-sweep-err-min",
    "ch9-sweep-err-max",
    "ch9-sweep-patch-min",
    "ch9-sweep-patch-max",
    "ch9-sweep-err-lowest",
    "ch9-sweep-comp-lowest",
    "ch9-dense-kb",
    "ch9-training-kb",
    "ch9-csr-bytes-per-kept",
    "ch9-file-ratio",
    "ch9-magnitude-error",
    "ch9-fp16-saving",
    "ch9-fp16-bytes-per-kept",
    "ch9-fp16-error",
    "ch9-table-compression",
    "ch9-table-compression-lo",
    "ch9-table-compression-hi",
    "ch9-table-conv1-kept",
}

#: Notebook -> keys its prose (or captions) must keep pasting: a key typed in again as a literal, or
#: no longer stored, fails.
PASTED_KEYS = {
    "08_sparse_vd.ipynb": CH8_ISSUE17_KEYS,
    "09_lenet5.ipynb": CH9_KEYS,
    "10_ensembling.ipynb": CH10_BASELINE_KEYS,
}


@pytest.mark.parametrize("name", sorted(PASTED_KEYS))
def test_the_chapters_keep_pasting_their_issue_17_numbers(name):
    (path,) = [p for p in NOTEBOOKS if p.name == name]
    keys = PASTED_KEYS[name]
    nb = nbformat.read(path, as_version=4)
    missing_in_prose = sorted(keys - used_keys(nb).keys())
    missing_in_cells = sorted(keys - stored_keys(nb).keys())
    assert not missing_in_prose, (
        f"{path.name}: the prose no longer pastes {missing_in_prose} (typed in again?)"
    )
    assert not missing_in_cells, (
        f"{path.name}: no code cell stores {missing_in_cells}: re-execute the notebook"
    )


def _glue_output(key: str, value) -> nbformat.NotebookNode:
    """The output that ``myst_nb.glue(key, value, display=False)`` emits, captured in-process."""
    from myst_nb.ext import glue as glue_module

    captured = {}

    def fake_display(data, raw, metadata):
        captured.update(data=data, metadata=metadata)

    original = glue_module.ipy_display
    glue_module.ipy_display = fake_display
    try:
        glue_module.glue(key, value, display=False)
    finally:
        glue_module.ipy_display = original
    return nbformat.v4.new_output("display_data", data=captured["data"], metadata=captured["metadata"])


def _notebook(markdown: str, outputs: list[nbformat.NotebookNode]) -> nbformat.NotebookNode:
    code = nbformat.v4.new_code_cell("from myst_nb import glue")
    code.outputs = outputs
    return nbformat.v4.new_notebook(cells=[code, nbformat.v4.new_markdown_cell(markdown)])


def test_glue_output_is_read_as_myst_nb_stores_it():
    output = _glue_output("ms", 0.1312)
    assert output.metadata["scrapbook"]["name"] == "ms"
    assert text_plain(output) == "0.1312"
    nb = _notebook("about {glue:text}`ms:.2f` ms per value", [output])
    assert stored_keys(nb).keys() == {"ms"}
    assert glue_problems(nb) == []


def test_a_missing_key_fails_with_its_name_and_the_fix():
    nb = _notebook(
        "about {glue:text}`ms:.2f` ms, {glue}`other` and\n\n```{glue:figure} fig-x\n```\n",
        [_glue_output("ms", 0.13)],
    )
    problems = glue_problems(nb, "tiny.ipynb")
    assert len(problems) == 2  # one per missing key, in key order
    assert "'fig-x'" in problems[0] and "directive" not in problems[0]
    assert "'other'" in problems[1] and "cell(s) [1]" in problems[1] and "glue('other'" in problems[1]


def test_a_key_in_a_figure_caption_is_a_use():
    nb = _notebook("text", [_glue_output("ratio", 6.2)])
    nb.cells[0].metadata["mystnb"] = {
        "figure": {
            "caption": "lower by {glue:text}`ratio:.1f`, then by {glue:text}`gone:.1f`",
            "name": "fig-x",
        }
    }
    assert used_keys(nb) == {"ratio": [0], "gone": [0]}
    problems = glue_problems(nb, "tiny.ipynb")
    assert len(problems) == 1 and "'gone'" in problems[0] and "cell(s) [0]" in problems[0]


def test_a_key_quoted_in_a_code_span_is_not_a_use():
    nb = _notebook("write ``{glue:text}`key:.2f` `` in the markdown", [])
    assert used_keys(nb) == {}


def test_a_duplicate_key_and_an_unformattable_value_fail():
    nb = _notebook(
        "{glue:text}`x:.2f` and {glue:text}`word:.1f`",
        [_glue_output("x", 1.0), _glue_output("x", 2.0), _glue_output("word", "many")],
    )
    problems = glue_problems(nb)
    assert any("'x' is stored 2 times" in p for p in problems)
    assert any("'word'" in p and "cannot print" in p for p in problems)
    assert not any("'x'" in p and "cannot print" in p for p in problems)


# --- course_lib.glue: myst-nb's glue where installed, a working stand-in without it (Colab) ---
def _fresh_glue_module(monkeypatch, myst_nb_present: bool):
    if not myst_nb_present:
        monkeypatch.setitem(sys.modules, "myst_nb", None)  # `import myst_nb` raises ImportError
    monkeypatch.delitem(sys.modules, "course_lib.glue", raising=False)
    return importlib.import_module("course_lib.glue")


def test_with_myst_nb_it_is_myst_nbs_own_glue(monkeypatch):
    import myst_nb

    module = _fresh_glue_module(monkeypatch, myst_nb_present=True)
    assert module.HAVE_MYST_NB and module.glue is myst_nb.glue


def test_without_myst_nb_a_chapter_still_runs(monkeypatch, capsys):
    module = _fresh_glue_module(monkeypatch, myst_nb_present=False)
    assert not module.HAVE_MYST_NB
    assert module.glue("ch0-x", 0.125, display=False) is None
    assert capsys.readouterr().out == ""  # display=False: nothing shown, nothing raised
    module.glue("ch0-y", 0.25)  # display=True shows the value, as myst_nb.glue does
    assert "0.25" in capsys.readouterr().out
    with pytest.raises(TypeError, match="glue name must be a string"):
        module.glue(7, 0.5)
    monkeypatch.delitem(sys.modules, "course_lib.glue")  # the next import sees myst-nb again
