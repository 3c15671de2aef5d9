"""Tests for course_lib.assignments and the student edition of chapters/assignments.

* unit tests of the solution finder, the gated-solution stripper and the config rewrite;
* the real student edition (nbgrader generate_assignment on every assignment): no solution code,
  every stub in place, and each student notebook stops at its first stub with NotImplementedError;
* nbgrader autograde of assignment 1 on two sample submissions, with asserted scores;
* a small book built with the student config: the exercise is there, its solution is not.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from course_lib import assignments

ROOT = Path(__file__).resolve().parent.parent


# -- unit tests ------------------------------------------------------------------------
def test_solution_lines_finds_code_between_markers_only():
    nb = new_notebook(cells=[
        new_code_cell("def f(x):\n    ### BEGIN SOLUTION\n    # a comment\n    y = x + 1\n\n    return y\n"
                      "    ### END SOLUTION\nprint('outside')"),
        new_markdown_cell("### BEGIN SOLUTION\nnot code"),
    ])
    assert assignments.solution_lines(nb) == ["y = x + 1", "return y"]


def test_solution_lines_rejects_unclosed_marker():
    nb = new_notebook(cells=[new_code_cell("### BEGIN SOLUTION\nx = 1")])
    with pytest.raises(ValueError, match="without '### END SOLUTION'"):
        assignments.solution_lines(nb)


def _chapter_with_gated_solutions():
    return new_notebook(cells=[
        new_markdown_cell("# Title"),
        new_markdown_cell("```{exercise}\n:label: ex-a\n\nCompute it.\n```\n\n"
                          "```{solution-start} ex-a\n:class: dropdown\n```\nSECRET prose"),
        new_code_cell("SECRET_CODE = 1"),
        new_markdown_cell("```{solution-end}\n```\n\n```{exercise}\n:label: ex-b\n\nSecond.\n```\n\n"
                          "```{solution-start} ex-b\n:class: dropdown\n```\nSECRET two\n"
                          "```{solution-end}\n```\n\n## Summary\nkept"),
    ])


def test_strip_gated_solutions_removes_spans_across_cells():
    nb = _chapter_with_gated_solutions()
    stripped, n = assignments.strip_gated_solutions(nb)
    text = "\n".join(c.source for c in stripped.cells)
    assert n == 2
    assert "SECRET" not in text and "solution-" not in text
    assert "Compute it." in text and "Second." in text and "## Summary\nkept" in text
    assert [c.cell_type for c in stripped.cells] == ["markdown", "markdown", "markdown"]
    assert "SECRET_CODE" in nb.cells[2].source  # the input is not modified


def test_strip_gated_solutions_rejects_unclosed_start():
    nb = new_notebook(cells=[new_markdown_cell("```{solution-start} ex-a\n:class: dropdown\n```\ntext")])
    with pytest.raises(ValueError, match="no matching \\{solution-end\\}"):
        assignments.strip_gated_solutions(nb)


def test_student_config_adds_hide_solutions_and_rejects_other_configs():
    text = (ROOT / "_config.yml").read_text()
    new = assignments.student_config(text)
    assert "    hide_solutions: true" in new and text.count("\n") + 1 == new.count("\n")
    with pytest.raises(ValueError, match="no 'sphinx:' section"):
        assignments.student_config("title: x\n")


def test_assignment_notebooks_lists_four_and_rejects_empty_folder(tmp_path):
    names = [p.name for p in assignments.assignment_notebooks(ROOT)]
    assert len(names) >= 4 and names[0].startswith("a1_")
    with pytest.raises(FileNotFoundError, match="no assignment notebooks"):
        assignments.assignment_notebooks(tmp_path)


def test_solution_notebooks_are_stored_executed():
    """The book renders stored outputs: every code cell ran, in order, and each check printed OK."""
    for path in assignments.assignment_notebooks(ROOT):
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
def student_edition(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("student")
    assignments.generate_student_notebooks(out, ROOT)
    return out


def _is_solution(cell) -> bool:
    return cell.get("metadata", {}).get("nbgrader", {}).get("solution", False)


def test_student_notebooks_hold_no_solution_code(student_edition):
    for source in assignments.assignment_notebooks(ROOT):
        lines = assignments.solution_lines(nbformat.read(source, as_version=4))
        assert len(lines) >= 2, source.name
        student = nbformat.read(student_edition / "assignments" / source.name, as_version=4)
        text = "\n".join(c.source for c in student.cells)
        leaked = [line for line in lines if line in text]
        assert not leaked, f"{source.name} leaks solution lines {leaked}"
        stubs = [c for c in student.cells if _is_solution(c)]
        assert stubs and all("raise NotImplementedError()" in c.source for c in stubs)
        assert all(not c.get("outputs") for c in student.cells if c.cell_type == "code")
        assert "BEGIN SOLUTION" not in text


def test_student_notebooks_stop_at_their_first_stub(student_edition):
    for path in sorted((student_edition / "assignments").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        first_stub = next(i for i, c in enumerate(nb.cells) if _is_solution(c))
        # the first stub is called by the check cell right after it
        client = NotebookClient(nb, timeout=300, kernel_name="python3",
                                resources={"metadata": {"path": str(ROOT / "chapters" / "assignments")}})
        with pytest.raises(CellExecutionError) as info:
            client.execute()
        assert info.value.ename == "NotImplementedError", (path.name, info.value.ename, info.value.evalue)
        failed = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"
                  and any(o.get("output_type") == "error" for o in c.get("outputs", []))]
        assert failed == [first_stub + 1], (path.name, failed, first_stub)
        executed = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.get("execution_count")]
        assert max(executed) == first_stub + 1


def test_student_chapters_drop_every_gated_solution(tmp_path):
    removed = assignments.student_chapters(tmp_path, ROOT)
    assert removed and sum(removed.values()) > 0
    for name, n in removed.items():
        source = nbformat.read(ROOT / "chapters" / name, as_version=4)
        n_starts = sum(c.source.count("{solution-start}") for c in source.cells if c.cell_type == "markdown")
        assert n == n_starts, name
        text = "\n".join(c.source for c in nbformat.read(tmp_path / "chapters" / name, as_version=4).cells)
        assert "{solution-start}" not in text and "{solution-end}" not in text and "{exercise}" in text


def test_student_book_source_uses_student_notebooks(student_edition):
    assignments.student_chapters(student_edition, ROOT)
    src = assignments.student_book_source(student_edition, ROOT)
    assert "hide_solutions: true" in (src / "_config.yml").read_text()
    assert not (src / ".venv").exists() and not (src / "course_lib").exists()
    for source in assignments.assignment_notebooks(ROOT):
        text = (src / assignments.ASSIGNMENTS / source.name).read_text()
        assert "raise NotImplementedError()" in text and "BEGIN SOLUTION" not in text
    chapter = next((src / "chapters").glob("0*.ipynb"))
    assert "{solution-start}" not in chapter.read_text()


# -- nbgrader autograde on two sample submissions ------------------------------------------
A1 = "a1_conditioning_bayes"
#: The sample submission with mistakes: Task 1 returns the joint p(X, Z=z) (not normalised).
MISTAKE = {"a1-conditional": "def conditional(p, z):\n    return p[:, :, z].sum(axis=1)\n"}


def _submission(release: nbformat.NotebookNode, source: nbformat.NotebookNode, overrides: dict):
    """The released notebook with each stub replaced by the solution (or an override)."""
    answers = {c.metadata["nbgrader"]["grade_id"]: c.source for c in source.cells if _is_solution(c)}
    nb = nbformat.from_dict(release)
    for cell in nb.cells:
        if _is_solution(cell):
            gid = cell.metadata["nbgrader"]["grade_id"]
            code = overrides.get(gid, answers[gid])
            cell.source = "\n".join(l for l in code.splitlines() if "### " not in l)
    return nb


@pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning")  # from nbgrader's own session use
def test_autograde_scores_two_sample_submissions(student_edition):
    from nbgrader.api import Gradebook
    from nbgrader.apps import NbGraderAPI
    from traitlets.config import Config

    course = student_edition / "nbgrader"
    name = f"{A1}.ipynb"
    release = nbformat.read(course / "release" / A1 / name, as_version=4)
    source = nbformat.read(ROOT / "chapters" / "assignments" / name, as_version=4)
    for student, overrides in (("correct", {}), ("mistaken", MISTAKE)):
        folder = course / "submitted" / student / A1
        folder.mkdir(parents=True, exist_ok=True)
        nbformat.write(_submission(release, source, overrides), folder / name)
    config = Config()
    config.CourseDirectory.root = str(course)
    config.CourseDirectory.db_url = f"sqlite:///{course / 'gradebook.db'}"
    api = NbGraderAPI(config=config)
    for student in ("correct", "mistaken"):
        result = api.autograde(A1, student)
        assert result["success"], result.get("log")
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        scores = {s: (gb.find_submission(A1, s).score, gb.find_submission(A1, s).max_score)
                  for s in ("correct", "mistaken")}
        task1 = gb.find_grade("a1-conditional-check", A1, A1, "mistaken")
        task2 = gb.find_grade("a1-posterior-check", A1, A1, "mistaken")
        assert (task1.score, task2.score) == (0.0, 2.0)
    assert scores == {"correct": (4.0, 4.0), "mistaken": (2.0, 4.0)}
    graded = nbformat.read(course / "autograded" / "mistaken" / A1 / name, as_version=4)
    feedback = "".join(o.get("evalue", "") for c in graded.cells for o in c.get("outputs", []))
    assert "you returned the joint p(X, Z=0)" in feedback


# -- the student book hides solutions -------------------------------------------------------
def test_student_book_config_hides_solutions(tmp_path):
    """A one-page book built with the student config shows exercises but no solutions."""
    src = tmp_path / "src"
    src.mkdir()
    config = textwrap.dedent("""\
        title: t
        execute:
          execute_notebooks: "off"
        sphinx:
          extra_extensions:
            - sphinx_exercise
          config:
            nb_execution_mode: "off"
        """)
    (src / "_config.yml").write_text(assignments.student_config(config))
    (src / "_toc.yml").write_text("format: jb-book\nroot: page\n")
    nb = _chapter_with_gated_solutions()
    nb.cells.append(new_markdown_cell("```{solution} ex-b\n:class: dropdown\nUNGATED secret\n```"))
    stripped, _ = assignments.strip_gated_solutions(nb)
    stripped.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(stripped, src / "page.ipynb")
    jb = Path(sys.executable).with_name("jupyter-book")
    proc = subprocess.run([str(jb), "build", str(src), "--path-output", str(tmp_path / "out"), "-W"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    html = (tmp_path / "out" / "_build" / "html" / "page.html").read_text()
    assert "Compute it." in html and "Second." in html
    assert "SECRET" not in html and "UNGATED" not in html and "solution-content" not in html
    shutil.rmtree(tmp_path / "out")
