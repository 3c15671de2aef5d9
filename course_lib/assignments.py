"""The student edition: assignment notebooks without solutions, chapters without gated solutions.

``make student`` (``python -m course_lib.assignments --out student``) writes, into the
git-ignored folder ``student/``:

* ``student/assignments/aN_*.ipynb`` -- every assignment of ``chapters/assignments/`` through
  ``nbgrader generate_assignment``: the code between ``### BEGIN SOLUTION`` and
  ``### END SOLUTION`` becomes ``raise NotImplementedError()``, outputs are cleared, and the
  check cells are locked (nbgrader's checksums);
* ``student/chapters/NN_*.ipynb`` -- the chapters with every gated solution
  (``{solution-start}`` ... ``{solution-end}``, including the code cells in between) removed;
* ``student/book/`` -- the book built from those notebooks with sphinx-exercise's
  ``hide_solutions: true`` (unless ``--no-book``);
* ``student/nbgrader/`` -- the nbgrader course folder used to generate the release (its
  ``source/`` and ``release/`` folders and the SQLite gradebook), which an instructor can reuse
  to collect and autograde submissions (see the instructor guide in the book).

sphinx-exercise's ``hide_solutions`` alone removes only the solution *directive*: the cells of a
gated solution between ``solution-start`` and ``solution-end`` would still be shown, which is why
:func:`strip_gated_solutions` removes them from the notebooks first.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat

#: The repository root (the folder holding ``_config.yml``).
ROOT = Path(__file__).resolve().parent.parent
#: Where the assignment notebooks (with solutions) live, relative to the root.
ASSIGNMENTS = Path("chapters") / "assignments"

_BEGIN, _END = "### BEGIN SOLUTION", "### END SOLUTION"
_FENCE = r"^\s*(`{3,}|:{3,})"
_START = re.compile(_FENCE + r"\{solution-start\}")
_END_DIRECTIVE = re.compile(_FENCE + r"\{solution-end\}")
_CLOSE = re.compile(_FENCE + r"\s*$")
#: Folders never copied into the student book's source.
_SKIP = {".git", ".venv", "_build", "data", "student", "runs", "screenshots", "benchmarks", "tests",
         ".pytest_cache", ".npm-cache", "__pycache__", ".ipynb_checkpoints", "course_lib"}


def assignment_notebooks(root: str | Path = ROOT) -> list[Path]:
    """The assignment notebooks (with solutions), sorted by name.

    Raises
    ------
    FileNotFoundError
        If ``root`` has no ``chapters/assignments/*.ipynb``.
    """
    folder = Path(root) / ASSIGNMENTS
    found = sorted(folder.glob("*.ipynb"))
    if not found:
        raise FileNotFoundError(
            f"no assignment notebooks in {folder}; pass the course repository's root folder "
            "(the one holding _config.yml)."
        )
    return found


def solution_lines(nb: nbformat.NotebookNode) -> list[str]:
    """The stripped, non-empty, non-comment code lines between the solution markers.

    These are the lines that must not appear in the student edition.

    Raises
    ------
    ValueError
        If a ``### BEGIN SOLUTION`` has no matching ``### END SOLUTION``.
    """
    lines: list[str] = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        inside = False
        for line in cell.source.splitlines():
            text = line.strip()
            if text == _BEGIN:
                inside = True
            elif text == _END:
                inside = False
            elif inside and text and not text.startswith("#"):
                lines.append(text)
        if inside:
            raise ValueError(f"a cell opens '{_BEGIN}' without '{_END}':\n{cell.source[:200]}")
    return lines


def strip_gated_solutions(nb: nbformat.NotebookNode) -> tuple[nbformat.NotebookNode, int]:
    """Remove every gated solution: the ``{solution-start}`` ... ``{solution-end}`` span.

    The span may cross cells: the markdown before the start and after the end stays, every
    cell (markdown or code) strictly inside is dropped, and markdown cells left empty are
    dropped.

    Parameters
    ----------
    nb : NotebookNode
        A chapter notebook (not modified).

    Returns
    -------
    (NotebookNode, int)
        The stripped copy and the number of solutions removed.

    Raises
    ------
    ValueError
        If a ``solution-start`` is never closed by a ``solution-end``.
    """
    out = nbformat.from_dict(nb)
    cells, inside, removed, skip_close = [], False, 0, False
    for cell in out.cells:
        if cell.cell_type != "markdown":
            if not inside:
                cells.append(cell)
            continue
        kept = []
        for line in cell.source.splitlines():
            if skip_close:
                skip_close = False
                if _CLOSE.match(line):
                    continue
            if not inside and _START.match(line):
                inside, removed = True, removed + 1
            elif inside and _END_DIRECTIVE.match(line):
                inside, skip_close = False, True
            elif not inside:
                kept.append(line)
        skip_close = False  # a directive's closing fence is in the same cell
        text = "\n".join(kept).strip("\n")
        if text.strip():
            cell.source = text
            cells.append(cell)
    if inside:
        raise ValueError("a {solution-start} has no matching {solution-end}; fix the notebook's "
                         "gated solution before building the student edition.")
    out.cells = cells
    return out, removed


def _nbgrader_config(course: Path) -> None:
    course.mkdir(parents=True, exist_ok=True)
    (course / "nbgrader_config.py").write_text(
        "c = get_config()\n"
        "c.CourseDirectory.root = r'%s'\n"
        "c.CourseDirectory.db_url = 'sqlite:///%s'\n"
        "c.ClearSolutions.code_stub = {'python': '# YOUR CODE HERE\\nraise NotImplementedError()'}\n"
        "c.ExecutePreprocessor.timeout = 600\n"
        % (course, course / "gradebook.db")
    )


def generate_student_notebooks(out: str | Path, root: str | Path = ROOT) -> list[Path]:
    """Run ``nbgrader generate_assignment`` on every assignment; copy the releases to ``out/assignments``.

    Each notebook ``aN_name.ipynb`` becomes the nbgrader assignment ``aN_name`` of the course
    folder ``out/nbgrader`` (its source is copied there; the gradebook is
    ``out/nbgrader/gradebook.db``).

    Returns
    -------
    list of Path
        The student notebooks.

    Raises
    ------
    RuntimeError
        If nbgrader fails (its log is in the message).
    """
    out = Path(out)
    course = out / "nbgrader"
    _nbgrader_config(course)
    from nbgrader.apps import NbGraderAPI
    from traitlets.config import Config

    # nbgrader's gradebook runs the ``alembic`` script: make this interpreter's scripts findable.
    bindir = str(Path(sys.executable).parent)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
    config = Config()
    config.CourseDirectory.root = str(course)
    config.CourseDirectory.db_url = f"sqlite:///{course / 'gradebook.db'}"
    api = NbGraderAPI(config=config)
    released = []
    for nb_path in assignment_notebooks(root):
        name = nb_path.stem
        source = course / "source" / name
        source.mkdir(parents=True, exist_ok=True)
        shutil.copy2(nb_path, source / nb_path.name)
        result = api.generate_assignment(name, force=True)
        release = course / "release" / name / nb_path.name
        if not result.get("success") or not release.is_file():
            raise RuntimeError(f"nbgrader generate_assignment {name} failed:\n{result.get('log', '')}\n"
                               f"{result.get('error', '')}")
        target = out / "assignments" / nb_path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(release, target)
        released.append(target)
    return released


def student_chapters(out: str | Path, root: str | Path = ROOT) -> dict[str, int]:
    """Write the chapters with gated solutions removed to ``out/chapters``.

    Returns
    -------
    dict
        ``{notebook name: number of solutions removed}``.
    """
    result = {}
    target = Path(out) / "chapters"
    target.mkdir(parents=True, exist_ok=True)
    for path in sorted((Path(root) / "chapters").glob("*.ipynb")):
        stripped, n = strip_gated_solutions(nbformat.read(path, as_version=4))
        nbformat.write(stripped, target / path.name)
        result[path.name] = n
    return result


def student_config(text: str) -> str:
    """The book's ``_config.yml`` with ``hide_solutions: true`` in ``sphinx.config``.

    Raises
    ------
    ValueError
        If the config has no ``sphinx:`` / ``config:`` section to extend.
    """
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("sphinx:"):
            for j in range(i + 1, len(lines)):
                if re.match(r"^\s+config:\s*$", lines[j]):
                    indent = len(lines[j]) - len(lines[j].lstrip()) + 2
                    lines.insert(j + 1, " " * indent + "hide_solutions: true  # student edition")
                    return "\n".join(lines) + "\n"
    raise ValueError("the config has no 'sphinx:' section with a 'config:' mapping; add one "
                     "(e.g. 'sphinx:\\n  config:\\n    hide_solutions: true').")


def student_book_source(out: str | Path, root: str | Path = ROOT) -> Path:
    """Assemble ``out/book-src``: the book with student notebooks and ``hide_solutions: true``.

    Requires :func:`generate_student_notebooks` and :func:`student_chapters` to have run.
    """
    root, out = Path(root), Path(out)
    src = out / "book-src"
    if src.exists():
        shutil.rmtree(src)
    def ignore(folder: str, names: list[str]) -> list[str]:
        # skip build/data folders and anything that is neither a file nor a folder (kernel sockets)
        return [n for n in names if n in _SKIP or not (os.path.isfile(os.path.join(folder, n))
                                                       or os.path.isdir(os.path.join(folder, n)))]

    shutil.copytree(root, src, ignore=ignore)
    (src / "_config.yml").write_text(student_config((root / "_config.yml").read_text()))
    for folder in ("chapters", "assignments"):
        for nb in (out / folder).glob("*.ipynb"):
            dest = src / "chapters" / nb.name if folder == "chapters" else src / ASSIGNMENTS / nb.name
            shutil.copy2(nb, dest)
    return src


def build_student_book(out: str | Path, root: str | Path = ROOT) -> Path:
    """Build the student book into ``out/book`` (``jupyter-book build -W --keep-going``).

    Raises
    ------
    RuntimeError
        If the build fails (its log tail is in the message).
    """
    out = Path(out).resolve()
    src = student_book_source(out, root)
    jb = Path(sys.executable).with_name("jupyter-book")
    proc = subprocess.run([str(jb), "build", str(src), "--path-output", str(out / "book"), "-W", "--keep-going"],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"the student book did not build:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return out / "book" / "_build" / "html"


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m course_lib.assignments --out student [--no-book]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="student", help="output folder (default: student)")
    parser.add_argument("--no-book", action="store_true", help="skip building the student book")
    args = parser.parse_args(argv)
    out = Path(args.out).resolve()
    notebooks = generate_student_notebooks(out)
    print(f"student notebooks: {len(notebooks)} in {out / 'assignments'}")
    removed = student_chapters(out)
    print(f"chapters: {len(removed)} in {out / 'chapters'}, {sum(removed.values())} gated solutions removed")
    if not args.no_book:
        html = build_student_book(out)
        print(f"student book: file://{html / 'index.html'}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
