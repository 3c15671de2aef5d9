"""The student edition: what is handed out and what is published, with no solution in it.

The assignment notebooks in ``chapters/assignments/`` are the instructor's source (solutions and
hidden tests). Everything a student sees is derived from them by nbgrader's own release pipeline
(``generate_assignment``: solutions replaced by ``raise NotImplementedError()``, hidden tests
removed, outputs cleared, check cells locked):

``python tools/student_edition.py pages``
    the book's assignment pages: the student editions in the git-ignored folder ``assignments/``,
    which ``_toc.yml`` lists (``make build`` runs this first). Released through a throw-away
    nbgrader course, so the book never touches the instructor's gradebook.
``python tools/student_edition.py handout [--out student] [--no-book]``
    ``make student``: ``student/assignments/`` (the release of the instructor's course, see
    ``tools/grading.py release``), ``student/chapters/`` (the chapters with every gated solution
    removed) and ``student/book/`` (the book built from those with ``hide_solutions: true``).
    Nothing else: no source, no gradebook.

sphinx-exercise's ``hide_solutions`` alone removes only the solution *directive*: the cells of a
gated solution between ``solution-start`` and ``solution-end`` would still show, which is why
:func:`strip_gated_solutions` removes them from the notebooks first.
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
import yaml

#: The repository root (the folder holding ``_config.yml``).
ROOT = Path(__file__).resolve().parent.parent
#: The instructor's assignment notebooks (with solutions), relative to the root.
ASSIGNMENTS = Path("chapters") / "assignments"
#: The git-ignored folder of the book's assignment pages (student editions), relative to the root.
PAGES = Path("assignments")

#: Markers of what a student must never see (nbgrader's defaults).
MARKERS = {
    "solution": ("### BEGIN SOLUTION", "### END SOLUTION"),
    "hidden": ("### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"),
}
_FENCE = r"^\s*(`{3,}|:{3,})"
_START = re.compile(_FENCE + r"\{solution-start\}")
_END_DIRECTIVE = re.compile(_FENCE + r"\{solution-end\}")
_CLOSE = re.compile(_FENCE + r"\s*$")


def assignment_notebooks(root: str | Path = ROOT) -> list[Path]:
    """The instructor's assignment notebooks ``chapters/assignments/a*.ipynb``, sorted by name.

    Raises
    ------
    FileNotFoundError
        If ``root`` has none.
    """
    folder = Path(root) / ASSIGNMENTS
    found = sorted(folder.glob("a*.ipynb"))
    if not found:
        raise FileNotFoundError(
            f"no assignment notebooks in {folder}; pass the course repository's root folder "
            "(the one holding _config.yml)."
        )
    return found


def exclude_patterns(root: str | Path = ROOT) -> list[str]:
    """``sphinx.config.exclude_patterns`` of the book's ``_config.yml``: the one list of what is not book.

    Raises
    ------
    ValueError
        If ``_config.yml`` has no such list.
    """
    config = yaml.safe_load((Path(root) / "_config.yml").read_text())
    patterns = ((config or {}).get("sphinx") or {}).get("config", {}).get("exclude_patterns")
    if not isinstance(patterns, list):
        raise ValueError(
            f"{Path(root) / '_config.yml'} has no sphinx.config.exclude_patterns list; "
            "add one (the folders that are not part of the book)."
        )
    return patterns


def marked_lines(nb: nbformat.NotebookNode, kind: str = "solution") -> list[str]:
    """The stripped, non-empty, non-comment code lines between a kind of markers.

    Parameters
    ----------
    nb : NotebookNode
        An instructor's notebook.
    kind : {"solution", "hidden"}
        Solution code (``### BEGIN/END SOLUTION``) or hidden tests (``### BEGIN/END HIDDEN TESTS``).

    Raises
    ------
    ValueError
        If ``kind`` is unknown, or a begin marker has no matching end marker.
    """
    if kind not in MARKERS:
        raise ValueError(f"kind must be one of {sorted(MARKERS)}, got {kind!r}.")
    begin, end = MARKERS[kind]
    lines: list[str] = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        inside = False
        for line in cell.source.splitlines():
            text = line.strip()
            if text == begin:
                inside = True
            elif text == end:
                inside = False
            elif inside and text and not text.startswith("#"):
                lines.append(text)
        if inside:
            raise ValueError(f"a cell opens '{begin}' without '{end}':\n{cell.source[:200]}")
    return lines


def strip_gated_solutions(nb: nbformat.NotebookNode) -> tuple[nbformat.NotebookNode, int]:
    """Remove every gated solution: the ``{solution-start}`` ... ``{solution-end}`` span.

    The span may cross cells: the markdown before the start and after the end stays, every
    cell (markdown or code) strictly inside is dropped, and markdown cells left empty are dropped.

    Returns
    -------
    (NotebookNode, int)
        The stripped copy (``nb`` is not modified) and the number of solutions removed.

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
        raise ValueError(
            "a {solution-start} has no matching {solution-end}; fix the notebook's "
            "gated solution before building the student edition."
        )
    out.cells = cells
    return out, removed


def alembic_on_path() -> None:
    """nbgrader's gradebook runs the ``alembic`` script: make this interpreter's scripts findable."""
    bindir = str(Path(sys.executable).parent)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")


def generate(course: Path, notebooks: list[Path], config=None) -> list[Path]:
    """``nbgrader generate_assignment`` of each notebook in the nbgrader course folder ``course``.

    Each ``aN_name.ipynb`` is the assignment ``aN_name``: copied to ``course/source/aN_name/``,
    released to ``course/release/aN_name/aN_name.ipynb`` (returned, in order).

    Raises
    ------
    RuntimeError
        If nbgrader fails (its log is in the message).
    """
    from nbgrader.apps import NbGraderAPI
    from traitlets.config import Config

    alembic_on_path()
    config = config or Config()
    config.CourseDirectory.root = str(course)
    api = NbGraderAPI(config=config)
    released = []
    for nb_path in notebooks:
        name = nb_path.stem
        (course / "source" / name).mkdir(parents=True, exist_ok=True)
        shutil.copy2(nb_path, course / "source" / name / nb_path.name)
        result = api.generate_assignment(name, force=True)
        release = course / "release" / name / nb_path.name
        if not result.get("success") or not release.is_file():
            raise RuntimeError(
                f"nbgrader generate_assignment {name} failed:\n{result.get('log', '')}\n"
                f"{result.get('error', '')}"
            )
        released.append(release)
    return released


def write_pages(root: str | Path = ROOT, target: str | Path | None = None) -> list[Path]:
    """The book's assignment pages: the student edition of every assignment in ``root/assignments/``.

    Released through a temporary nbgrader course (never the instructor's) into ``target``
    (default ``root/assignments``), which is emptied first (no stale page survives).
    """
    root = Path(root)
    target = Path(target) if target is not None else root / PAGES
    if target.exists():
        shutil.rmtree(target)
    target.mkdir()
    (target / "README.md").write_text(
        "Generated by `python tools/student_edition.py pages` (make build) from chapters/assignments/:\n"
        "the student editions the book publishes. Do not edit; edit chapters/assignments/ instead.\n"
    )
    with tempfile.TemporaryDirectory() as tmp:
        released = generate(Path(tmp), assignment_notebooks(root))
        return [Path(shutil.copy2(nb, target / nb.name)) for nb in released]


def leaks(text: str, sources: list[Path]) -> list[str]:
    """The solution lines, hidden-test lines and markers of ``sources`` that occur in ``text``."""
    found = [m for pair in MARKERS.values() for m in pair if m.lstrip("# ") in text]
    for source in sources:
        nb = nbformat.read(source, as_version=4)
        found += [
            f"{source.name}: {line}" for kind in MARKERS for line in marked_lines(nb, kind) if line in text
        ]
    return found


def check_site(site: str | Path, root: str | Path = ROOT) -> None:
    """Fail if a built book publishes an instructor page or a line of a solution or hidden test.

    Checks every assignment page (its text, tags removed) and its ``.ipynb`` download, and every
    page for the markers. ``make build`` runs it on ``_build/html``.

    Raises
    ------
    RuntimeError
        Naming each page and what leaked.
    """
    import html

    site, sources = Path(site), assignment_notebooks(root)
    problems = [
        f"{p}: an instructor page"
        for p in site.rglob("*")
        if "instructor_guide" in p.name or p.is_relative_to(site / ASSIGNMENTS)
    ]
    for source in sources:
        for path in (site / PAGES / f"{source.stem}.html", site / "_sources" / PAGES / source.name):
            if not path.is_file():
                problems.append(f"{path}: missing (every assignment is published as its student edition)")
                continue
            text = path.read_text(errors="replace")
            if path.suffix == ".html":
                text = html.unescape(re.sub(r"<[^>]+>", "", text))
            problems += [f"{path}: {leak}" for leak in leaks(text, sources)]
    for page in site.rglob("*.html"):
        text = page.read_text(errors="replace")
        problems += [f"{page}: {m}" for pair in MARKERS.values() for m in pair[:1] if m.lstrip("# ") in text]
    if problems:
        raise RuntimeError("the built book publishes what students must not see:\n  " + "\n  ".join(problems))


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


def student_config(config: dict) -> dict:
    """A copy of the book's configuration with sphinx-exercise's ``hide_solutions: true``.

    Raises
    ------
    ValueError
        If ``config`` has no ``sphinx`` mapping to extend.
    """
    if not isinstance(config.get("sphinx"), dict):
        raise ValueError(
            "the config has no 'sphinx:' mapping; add one "
            "(e.g. 'sphinx:\\n  config:\\n    hide_solutions: true')."
        )
    new = dict(config, sphinx=dict(config["sphinx"]))
    new["sphinx"]["config"] = dict(new["sphinx"].get("config") or {}, hide_solutions=True)
    return new


def student_book_source(src: Path, student: Path, root: str | Path = ROOT) -> Path:
    """Assemble the student book's source in ``src``: the book with the student notebooks.

    Copies the repository without what ``_config.yml`` excludes (which names the instructor's
    ``chapters/assignments/``) and hidden folders; puts ``student/chapters/*.ipynb`` in place of the
    chapters and ``student/assignments/*.ipynb`` as the book's assignment pages.
    """
    root = Path(root).resolve()
    excluded = exclude_patterns(root)

    def ignore(folder: str, names: list[str]) -> list[str]:
        rel = Path(folder).resolve().relative_to(root)
        return [
            n
            for n in names
            if n.startswith(".")
            or any(fnmatch.fnmatch(str(rel / n), p) for p in excluded)
            or not (os.path.isfile(os.path.join(folder, n)) or os.path.isdir(os.path.join(folder, n)))
        ]

    if src.exists():
        shutil.rmtree(src)
    shutil.copytree(root, src, ignore=ignore)
    config = yaml.safe_load((root / "_config.yml").read_text())
    (src / "_config.yml").write_text(yaml.safe_dump(student_config(config), sort_keys=False))
    for nb in (student / "chapters").glob("*.ipynb"):
        shutil.copy2(nb, src / "chapters" / nb.name)
    (src / PAGES).mkdir(exist_ok=True)
    for nb in (student / "assignments").glob("*.ipynb"):
        shutil.copy2(nb, src / PAGES / nb.name)
    return src


def build_student_book(student: Path, root: str | Path = ROOT) -> Path:
    """Build the student book into ``student/book`` (``jupyter-book build -W --keep-going``).

    Raises
    ------
    RuntimeError
        If the build fails (its log tail is in the message).
    """
    with tempfile.TemporaryDirectory() as tmp:
        src = student_book_source(Path(tmp) / "src", student, root)
        jb = Path(sys.executable).with_name("jupyter-book")
        proc = subprocess.run(
            [str(jb), "build", str(src), "-W", "--keep-going"], capture_output=True, text=True
        )
        if proc.returncode != 0:
            raise RuntimeError(
                f"the student book did not build:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
            )
        book = student / "book"
        if book.exists():
            shutil.rmtree(book)
        shutil.copytree(src / "_build" / "html", book)
    return book


def handout(out: Path, book: bool = True, root: str | Path = ROOT) -> None:
    """``make student``: release through the instructor's course, then chapters and book into ``out``."""
    sys.path.insert(0, str(Path(__file__).parent))
    import grading

    out.mkdir(parents=True, exist_ok=True)
    for stale in ("nbgrader", "book-src"):  # what older versions of this tool left there
        if (out / stale).exists():
            shutil.rmtree(out / stale)
    course = grading.Course(root=Path(root))
    released = course.release()
    (out / "assignments").mkdir(exist_ok=True)
    for nb in released:
        shutil.copy2(nb, out / "assignments" / nb.name)
    print(f"student notebooks: {len(released)} in {out / 'assignments'}")
    removed = student_chapters(out, root)
    print(f"chapters: {len(removed)} in {out / 'chapters'}, {sum(removed.values())} gated solutions removed")
    if book:
        book = build_student_book(out, root)
        check_site(book, root)
        print(f"student book: file://{book / 'index.html'}")


def main(argv: list[str] | None = None) -> int:
    """Command line; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("pages", help="the book's assignment pages (student editions) in assignments/")
    check = sub.add_parser("check-site", help="fail if a built book publishes a solution")
    check.add_argument("site", nargs="?", default=str(ROOT / "_build" / "html"))
    hand = sub.add_parser("handout", help="make student: the student edition in --out")
    hand.add_argument("--out", default="student", help="output folder (default: student)")
    hand.add_argument("--no-book", action="store_true", help="skip building the student book")
    args = parser.parse_args(argv)
    if args.command == "pages":
        pages = write_pages()
        print(f"book assignment pages (student edition): {len(pages)} in {ROOT / PAGES}")
    elif args.command == "check-site":
        check_site(args.site)
        print(f"{args.site}: no solution, hidden test or instructor page published")
    else:
        handout(Path(args.out).resolve(), book=not args.no_book)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
