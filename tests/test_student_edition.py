"""Tests for tools/student_edition.py: nothing handed out or published holds a solution.

* unit tests of the marker finder, the gated-solution stripper, the YAML config rewrite and the
  single exclude list;
* the real student edition (nbgrader generate_assignment on every assignment): no solution code,
  no hidden test, every stub in place, and each student notebook stops at its first stub;
* the published book: its assignment pages are student editions (the built ``_build/html`` when
  there is one, the generated pages otherwise), no launch button on them, no instructor page;
* a small book built with the student config: the exercise is there, its solution is not.
"""

from __future__ import annotations

import html
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest
import yaml
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT / "_ext"))
import student_edition  # noqa: E402
import student_pages  # noqa: E402


# -- unit tests ------------------------------------------------------------------------
def test_marked_lines_finds_code_between_markers_only():
    nb = new_notebook(
        cells=[
            new_code_cell(
                "def f(x):\n    ### BEGIN SOLUTION\n    # a comment\n    y = x + 1\n\n    return y\n"
                "    ### END SOLUTION\nprint('outside')\n### BEGIN HIDDEN TESTS\nassert f(2) == 3\n"
                "### END HIDDEN TESTS"
            ),
            new_markdown_cell("### BEGIN SOLUTION\nnot code"),
        ]
    )
    assert student_edition.marked_lines(nb) == ["y = x + 1", "return y"]
    assert student_edition.marked_lines(nb, "hidden") == ["assert f(2) == 3"]


def test_marked_lines_rejects_unclosed_marker_and_unknown_kind():
    nb = new_notebook(cells=[new_code_cell("### BEGIN SOLUTION\nx = 1")])
    with pytest.raises(ValueError, match="without '### END SOLUTION'"):
        student_edition.marked_lines(nb)
    with pytest.raises(ValueError, match="kind must be one of"):
        student_edition.marked_lines(nb, "answers")


def _chapter_with_gated_solutions():
    return new_notebook(
        cells=[
            new_markdown_cell("# Title"),
            new_markdown_cell(
                "```{exercise}\n:label: ex-a\n\nCompute it.\n```\n\n"
                "```{solution-start} ex-a\n:class: dropdown\n```\nSECRET prose"
            ),
            new_code_cell("SECRET_CODE = 1"),
            new_markdown_cell(
                "```{solution-end}\n```\n\n```{exercise}\n:label: ex-b\n\nSecond.\n```\n\n"
                "```{solution-start} ex-b\n:class: dropdown\n```\nSECRET two\n"
                "```{solution-end}\n```\n\n## Summary\nkept"
            ),
        ]
    )


def test_strip_gated_solutions_removes_spans_across_cells():
    nb = _chapter_with_gated_solutions()
    stripped, n = student_edition.strip_gated_solutions(nb)
    text = "\n".join(c.source for c in stripped.cells)
    assert n == 2
    assert "SECRET" not in text and "solution-" not in text
    assert "Compute it." in text and "Second." in text and "## Summary\nkept" in text
    assert [c.cell_type for c in stripped.cells] == ["markdown", "markdown", "markdown"]
    assert "SECRET_CODE" in nb.cells[2].source  # the input is not modified


def test_strip_gated_solutions_rejects_unclosed_start():
    nb = new_notebook(cells=[new_markdown_cell("```{solution-start} ex-a\n:class: dropdown\n```\ntext")])
    with pytest.raises(ValueError, match="no matching \\{solution-end\\}"):
        student_edition.strip_gated_solutions(nb)


def test_student_config_adds_hide_solutions_and_rejects_other_configs():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    new = student_edition.student_config(config)
    assert new["sphinx"]["config"]["hide_solutions"] is True
    assert "hide_solutions" not in config["sphinx"]["config"]  # the input is not modified
    rest = {k: v for k, v in new["sphinx"]["config"].items() if k != "hide_solutions"}
    assert rest == config["sphinx"]["config"] and new["title"] == config["title"]
    with pytest.raises(ValueError, match="no 'sphinx:' mapping"):
        student_edition.student_config({"title": "x"})


def test_exclude_patterns_is_the_books_one_list(tmp_path):
    patterns = student_edition.exclude_patterns(ROOT)
    for name in ("_build", ".venv", "student", "instructor", "chapters/assignments"):
        assert name in patterns
    (tmp_path / "_config.yml").write_text("title: t\n")
    with pytest.raises(ValueError, match="no sphinx.config.exclude_patterns"):
        student_edition.exclude_patterns(tmp_path)


def test_assignment_notebooks_lists_four_and_rejects_empty_folder(tmp_path):
    names = [p.name for p in student_edition.assignment_notebooks(ROOT)]
    assert len(names) >= 4 and names[0].startswith("a1_")
    with pytest.raises(FileNotFoundError, match="no assignment notebooks"):
        student_edition.assignment_notebooks(tmp_path)


def test_solution_notebooks_are_stored_executed():
    """The instructor's notebooks are stored run: every code cell ran, in order, each check printed OK."""
    for path in student_edition.assignment_notebooks(ROOT):
        nb = nbformat.read(path, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert [c.execution_count for c in code] == list(range(1, len(code) + 1)), path.name
        checks = [c for c in code if c.metadata.get("nbgrader", {}).get("grade")]
        assert checks, path.name
        for cell in checks:
            if "nbval-ignore-output" in cell.metadata.get("tags", []):
                continue
            text = "".join(o.get("text", "") for o in cell.outputs)
            assert text.startswith("OK - "), (path.name, cell.source)


# -- the real student edition -------------------------------------------------------------
@pytest.fixture(scope="module")
def student_edition_dir(tmp_path_factory) -> Path:
    """The book's assignment pages, generated as ``make build`` does (into a temporary folder)."""
    out = tmp_path_factory.mktemp("pages")
    student_edition.write_pages(ROOT, out)
    return out


def _is_solution(cell) -> bool:
    return cell.get("metadata", {}).get("nbgrader", {}).get("solution", False)


def _secret_lines(source: Path) -> list[str]:
    nb = nbformat.read(source, as_version=4)
    return student_edition.marked_lines(nb) + student_edition.marked_lines(nb, "hidden")


def _assert_no_secret(text: str, source: Path, where: str) -> None:
    leaked = [line for line in _secret_lines(source) if line in text]
    assert not leaked, f"{where} leaks solution or hidden-test lines of {source.name}: {leaked}"
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS"):
        assert marker not in text, f"{where} holds '{marker}'"


def test_student_notebooks_hold_no_solution_code(student_edition_dir):
    for source in student_edition.assignment_notebooks(ROOT):
        assert len(student_edition.marked_lines(nbformat.read(source, as_version=4))) >= 2, source.name
        student = nbformat.read(student_edition_dir / source.name, as_version=4)
        _assert_no_secret("\n".join(c.source for c in student.cells), source, f"student {source.name}")
        stubs = [c for c in student.cells if _is_solution(c)]
        assert stubs and all("raise NotImplementedError()" in c.source for c in stubs)
        assert all("# YOUR CODE HERE" in c.source for c in stubs)
        assert all(not c.get("outputs") for c in student.cells if c.cell_type == "code")


def test_student_notebooks_stop_at_their_first_stub(student_edition_dir):
    for path in sorted(student_edition_dir.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        first_stub = next(i for i, c in enumerate(nb.cells) if _is_solution(c))
        # the first stub is called by the check cell right after it
        client = NotebookClient(
            nb,
            timeout=300,
            kernel_name="python3",
            resources={"metadata": {"path": str(ROOT / "chapters" / "assignments")}},
        )
        with pytest.raises(CellExecutionError) as info:
            client.execute()
        assert info.value.ename == "NotImplementedError", (path.name, info.value.ename, info.value.evalue)
        failed = [
            i
            for i, c in enumerate(nb.cells)
            if c.cell_type == "code" and any(o.get("output_type") == "error" for o in c.get("outputs", []))
        ]
        assert failed == [first_stub + 1], (path.name, failed, first_stub)
        executed = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.get("execution_count")]
        assert max(executed) == first_stub + 1


def test_student_chapters_drop_every_gated_solution(tmp_path):
    removed = student_edition.student_chapters(tmp_path, ROOT)
    assert removed and sum(removed.values()) > 0
    for name, n in removed.items():
        source = nbformat.read(ROOT / "chapters" / name, as_version=4)
        n_starts = sum(c.source.count("{solution-start}") for c in source.cells if c.cell_type == "markdown")
        assert n == n_starts, name
        text = "\n".join(c.source for c in nbformat.read(tmp_path / "chapters" / name, as_version=4).cells)
        assert "{solution-start}" not in text and "{solution-end}" not in text and "{exercise}" in text


def test_student_book_source_uses_student_notebooks(student_edition_dir, tmp_path):
    student = tmp_path / "student"
    student_edition.student_chapters(student, ROOT)
    shutil.copytree(student_edition_dir, student / "assignments")
    src = student_edition.student_book_source(tmp_path / "src", student, ROOT)
    assert yaml.safe_load((src / "_config.yml").read_text())["sphinx"]["config"]["hide_solutions"] is True
    for excluded in (".venv", "instructor", "student", "tools", "chapters/assignments", ".git"):
        assert not (src / excluded).exists(), excluded
    for source in student_edition.assignment_notebooks(ROOT):
        text = (src / student_edition.PAGES / source.name).read_text()
        assert "raise NotImplementedError()" in text
        _assert_no_secret(text, source, f"student book source {source.name}")
    chapter = next((src / "chapters").glob("0*.ipynb"))
    assert "{solution-start}" not in chapter.read_text()


# -- what the book publishes --------------------------------------------------------------
def test_toc_publishes_the_student_pages_and_no_instructor_file():
    toc = (ROOT / "_toc.yml").read_text()
    entries = re.findall(r"(?:file|glob):\s*(\S+)", toc)
    assert "assignments/a*" in entries
    assert not [e for e in entries if e.startswith("chapters/assignments")], entries
    assert "chapters/assignments" in student_edition.exclude_patterns(ROOT)
    assert "student_pages" in yaml.safe_load((ROOT / "_config.yml").read_text())["sphinx"]["local_extensions"]


def _page_text(path: Path) -> str:
    """An HTML page's text: tags dropped (code is split into highlighting spans), entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", "", path.read_text(errors="replace")))


def test_published_book_holds_no_solution(student_edition_dir):
    """The built book if there is one (``make build``), else the pages ``make build`` would publish."""
    site = ROOT / "_build" / "html"
    sources = student_edition.assignment_notebooks(ROOT)
    if not (site / "index.html").is_file():
        for source in sources:
            _assert_no_secret((student_edition_dir / source.name).read_text(), source, "generated page")
        pytest.skip("no _build/html (run make build); checked the generated assignment pages instead")
    student_edition.check_site(site, ROOT)


def test_check_site_finds_a_planted_leak(student_edition_dir, tmp_path):
    """make build's check on a fake site: clean pages pass; a solution line, a marker, or an
    instructor page is named."""
    site = tmp_path / "html"
    (site / "_sources" / "assignments").mkdir(parents=True)
    (site / "assignments").mkdir()
    sources = student_edition.assignment_notebooks(ROOT)
    for source in sources:
        shutil.copy2(student_edition_dir / source.name, site / "_sources" / "assignments" / source.name)
        (site / "assignments" / f"{source.stem}.html").write_text("<p>the <b>student</b> edition</p>")
    (site / "index.html").write_text("<p>home</p>")
    student_edition.check_site(site, ROOT)
    secret = student_edition.marked_lines(nbformat.read(sources[0], as_version=4))[0]
    (site / "assignments" / f"{sources[0].stem}.html").write_text(
        f"<pre><span>{html.escape(secret)}</span></pre>"
    )
    (site / "chapters" / "assignments").mkdir(parents=True)
    (site / "chapters" / "assignments" / "instructor_guide.html").write_text("### BEGIN SOLUTION")
    with pytest.raises(RuntimeError) as info:
        student_edition.check_site(site, ROOT)
    message = str(info.value)
    assert secret in message and "an instructor page" in message and "BEGIN SOLUTION" in message


def test_no_launch_button_on_student_pages():
    group = {"label": "launch-buttons", "buttons": [{"url": "https://mybinder.org/v2/gh/o/r/main"}]}
    download = {"label": "download-buttons"}
    context = {"header_buttons": [download, group]}
    assert student_pages.drop_launch_buttons("assignments/a1_conditioning_bayes", context)
    assert context["header_buttons"] == [download]
    chapter = {"header_buttons": [download, group]}
    assert not student_pages.drop_launch_buttons("chapters/01_probability", chapter)
    assert chapter["header_buttons"] == [download, group]


def test_launch_buttons_skip_student_pages_in_a_built_book(tmp_path):
    """A book with repository.url set: a chapter page has Binder/Colab buttons, an assignment page none."""
    src = tmp_path / "src"
    for folder in ("chapters", "assignments"):
        (src / folder).mkdir(parents=True)
        nb = new_notebook(cells=[new_markdown_cell(f"# {folder}"), new_code_cell("x = 1")])
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(nb, src / folder / "page.ipynb")
    (src / "_config.yml").write_text(
        textwrap.dedent(f"""\
        title: t
        execute:
          execute_notebooks: "off"
        repository:
          url: https://github.com/owner/repo
          branch: main
        launch_buttons:
          binderhub_url: https://mybinder.org
          colab_url: https://colab.research.google.com
        sphinx:
          local_extensions:
            repository_buttons: {ROOT / "_ext"}
            student_pages: {ROOT / "_ext"}
        """)
    )
    (src / "_toc.yml").write_text(
        "format: jb-book\nroot: chapters/page\nchapters:\n  - file: assignments/page\n"
    )
    (src / "intro.md").write_text("# t\n")
    jb = Path(sys.executable).with_name("jupyter-book")
    proc = subprocess.run(
        [str(jb), "build", str(src), "--path-output", str(tmp_path / "out")], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    site = tmp_path / "out" / "_build" / "html"
    chapter = (site / "chapters" / "page.html").read_text()
    assignment = (site / "assignments" / "page.html").read_text()
    assert "mybinder.org/v2/gh/owner/repo" in chapter and "colab.research.google.com" in chapter
    assert "mybinder.org" not in assignment and "colab.research.google.com" not in assignment
    assert "_sources/assignments/page.ipynb" in assignment  # the student edition can still be downloaded


# -- the student book hides solutions -------------------------------------------------------
def test_student_book_config_hides_solutions(tmp_path):
    """A one-page book built with the student config shows exercises but no solutions."""
    src = tmp_path / "src"
    src.mkdir()
    config = yaml.safe_load(
        textwrap.dedent("""\
        title: t
        execute:
          execute_notebooks: "off"
        sphinx:
          extra_extensions:
            - sphinx_exercise
          config:
            nb_execution_mode: "off"
        """)
    )
    (src / "_config.yml").write_text(yaml.safe_dump(student_edition.student_config(config)))
    (src / "_toc.yml").write_text("format: jb-book\nroot: page\n")
    nb = _chapter_with_gated_solutions()
    nb.cells.append(new_markdown_cell("```{solution} ex-b\n:class: dropdown\nUNGATED secret\n```"))
    stripped, _ = student_edition.strip_gated_solutions(nb)
    stripped.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(stripped, src / "page.ipynb")
    jb = Path(sys.executable).with_name("jupyter-book")
    proc = subprocess.run(
        [str(jb), "build", str(src), "--path-output", str(tmp_path / "out"), "-W"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    page = (tmp_path / "out" / "_build" / "html" / "page.html").read_text()
    assert "Compute it." in page and "Second." in page
    assert "SECRET" not in page and "UNGATED" not in page and "solution-content" not in page
    shutil.rmtree(tmp_path / "out")
