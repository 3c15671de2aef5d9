"""The install cell that lets every course notebook run on Colab (or any Python without the course).

Every chapter and assignment notebook has, as its first code cell (right after the title cell),
one cell tagged ``course-install`` (and ``remove-cell``, so the book does not show it). Where
``course_lib`` is importable -- locally, in CI, on Binder -- it does nothing and prints nothing,
so the stored outputs and nbval are unaffected. Where it is missing it installs the course
package from the repository named by the one switch ``repository.url`` in ``_config.yml``
(``pip install "bayesian-dnn-course @ git+<url>@<branch>"``); while that URL is empty it stops
with a message saying what to set. On Colab it also turns on Colab's custom widget manager,
which the explorables' ipywidgets 8 widgets need there.

Usage (from the repository root)::

    python tools/colab_cell.py --check                  # every notebook has the current cell
    python tools/colab_cell.py --write chapters/01_probability.ipynb ...   # insert or update it

After changing ``repository.url`` run ``--write`` on ``chapters/*.ipynb chapters/assignments/*.ipynb``.
``--write`` changes only that cell (its source and tags; a new cell has no output).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parents[1]
#: The distribution name of the course package (``pyproject.toml``); the import name is ``course_lib``.
DISTRIBUTION = "bayesian-dnn-course"
#: The tag that identifies the cell, and the tag that hides it in the book.
TAG = "course-install"
TAGS = [TAG, "remove-cell"]
#: The cell id given to a newly inserted cell (nbformat 4.5 ids: letters, digits, ``-``, ``_``).
CELL_ID = "course-install"

_COMMON_HEAD = """\
# Installs the course library where it is missing (Colab); does nothing locally, in CI or on Binder.
import importlib.util

if importlib.util.find_spec("course_lib") is None:
"""
_INSTALL = """\
    import subprocess
    import sys

    print("Installing the course library from {url} (branch {branch}) ...")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet",
                    "{spec}"], check=True)
    importlib.invalidate_caches()
"""
_NO_URL = """\
    raise ModuleNotFoundError(
        "course_lib is not installed, and this copy of the course names no repository to install "
        "it from: set repository.url in the course's _config.yml (e.g. https://github.com/<owner>/<repo>) "
        "and run `python tools/colab_cell.py --write chapters/*.ipynb chapters/assignments/*.ipynb`, "
        "or install it from a clone of the course with `pip install <clone>`.")
"""
_COMMON_TAIL = """\
try:  # On Colab: ipywidgets 8 widgets (the explorables) need Colab's custom widget manager.
    from google.colab import output as colab_output
except ImportError:
    colab_output = None
if colab_output is not None:
    colab_output.enable_custom_widget_manager()"""


def read_repository(config: Path = ROOT / "_config.yml") -> tuple[str, str]:
    """Return ``(url, branch)`` from ``repository`` in ``_config.yml``; ``url`` is ``""`` while unset.

    Parameters
    ----------
    config : Path
        The Jupyter Book configuration file.

    Returns
    -------
    tuple of str
        The repository URL without a trailing ``/`` or ``.git`` (``""`` when empty) and its branch.

    Raises
    ------
    FileNotFoundError
        If ``config`` does not exist.
    ValueError
        If ``repository.url`` is not a GitHub/GitLab repository address (the same rule as the book's
        ``_ext/repository_buttons.py``), or ``repository.branch`` is not a plain branch name.
    """
    config = Path(config)
    if not config.is_file():
        raise FileNotFoundError(
            f"{config} not found: run this tool from the course repository "
            "(it reads repository.url from _config.yml)."
        )
    repo = (yaml.safe_load(config.read_text(encoding="utf-8")) or {}).get("repository") or {}
    sys.path.insert(0, str(ROOT / "_ext"))
    try:
        from repository_buttons import normalize_repository_url
        from sphinx.errors import ConfigError
    finally:
        sys.path.pop(0)
    try:
        url, _host = normalize_repository_url(repo.get("url"))
    except ConfigError as err:
        raise ValueError(str(err)) from None
    branch = str(repo.get("branch") or "main").strip()
    if not branch or any(ch in branch for ch in " \"'\\@#"):
        raise ValueError(
            f"repository.branch in {config.name} is {branch!r}: use a plain branch name such as main."
        )
    return url, branch


def cell_source(url: str, branch: str = "main") -> str:
    """Return the source of the install cell for the repository ``url`` (``""``: none set).

    Parameters
    ----------
    url : str
        A pip-installable git URL of the course repository (``https://github.com/<owner>/<repo>``),
        or ``""`` while ``repository.url`` is empty: the cell then says what to set.
    branch : str
        The branch (or tag) to install from.

    Returns
    -------
    str
        The cell's Python source.
    """
    if not url:
        return _COMMON_HEAD + _NO_URL + _COMMON_TAIL
    spec = f"{DISTRIBUTION} @ git+{url}@{branch}"
    return _COMMON_HEAD + _INSTALL.format(url=url, branch=branch, spec=spec) + _COMMON_TAIL


def _find(nb: nbformat.NotebookNode) -> list[int]:
    return [i for i, c in enumerate(nb.cells) if TAG in c.get("metadata", {}).get("tags", [])]


def problems(nb: nbformat.NotebookNode, source: str) -> list[str]:
    """What is wrong with the install cell of ``nb`` (an empty list: it is current).

    Parameters
    ----------
    nb : nbformat.NotebookNode
        A course notebook.
    source : str
        The expected cell source (:func:`cell_source`).

    Returns
    -------
    list of str
        One line per problem.
    """
    found = _find(nb)
    if not found:
        return [f"no cell tagged {TAG!r}"]
    out = []
    if len(found) > 1:
        out.append(f"{len(found)} cells tagged {TAG!r} (cells {found}); keep one")
    i = found[0]
    cell = nb.cells[i]
    first_code = next(j for j, c in enumerate(nb.cells) if c.cell_type == "code")
    if cell.cell_type != "code":
        out.append(f"the cell tagged {TAG!r} is a {cell.cell_type} cell, not code")
    if i != first_code or i != 1 or nb.cells[0].cell_type != "markdown":
        out.append(f"it is cell {i}; it must be cell 1, the first code cell, right after the title cell")
    if cell.source != source:
        out.append("its source is not the current one (repository.url or branch changed, or it was edited)")
    missing = [t for t in TAGS if t not in cell.metadata.get("tags", [])]
    if missing:
        out.append(f"it lacks the tags {missing}")
    if cell.get("outputs"):
        out.append("it has stored output (where course_lib is installed it must print nothing)")
    return out


def update(nb: nbformat.NotebookNode, source: str) -> bool:
    """Insert or update the install cell of ``nb`` in place; return whether anything changed.

    Parameters
    ----------
    nb : nbformat.NotebookNode
        A course notebook whose first cell is the markdown title cell.
    source : str
        The cell source (:func:`cell_source`).

    Returns
    -------
    bool
        ``True`` if the notebook changed.

    Raises
    ------
    ValueError
        If the notebook does not start with a markdown (title) cell.
    """
    if not nb.cells or nb.cells[0].cell_type != "markdown":
        raise ValueError(
            "the notebook must start with its markdown title cell; the install cell goes right after it"
        )
    if not problems(nb, source):
        return False
    found = _find(nb)
    if found:
        cell = nb.cells[found[0]]
        for j in reversed(found):
            del nb.cells[j]
        cell.cell_type = "code"
        cell.source = source
        cell.outputs = []
        cell.setdefault("execution_count", None)
        tags = cell.metadata.setdefault("tags", [])
        tags.extend(t for t in TAGS if t not in tags)
    else:
        cell = nbformat.v4.new_code_cell(source, metadata={"tags": list(TAGS)})
        ids = {c.get("id") for c in nb.cells}
        if nb.nbformat_minor >= 5:
            cell.id = CELL_ID if CELL_ID not in ids else f"{CELL_ID}-{len(nb.cells)}"
        else:
            cell.pop("id", None)
    nb.cells.insert(1, cell)
    return True


def default_notebooks(root: Path = ROOT) -> list[Path]:
    """The notebooks that must carry the cell: ``chapters/*.ipynb`` and ``chapters/assignments/*.ipynb``."""
    return sorted((root / "chapters").glob("*.ipynb")) + sorted(
        (root / "chapters" / "assignments").glob("*.ipynb")
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument(
        "--check",
        nargs="*",
        metavar="PATH",
        help="check these notebooks (default: every chapter and assignment); exit 1 if any "
        "lacks the current cell",
    )
    mode.add_argument(
        "--write", nargs="+", metavar="PATH", help="insert or update the cell in these notebooks"
    )
    parser.add_argument("--config", type=Path, default=ROOT / "_config.yml", help="the book's _config.yml")
    args = parser.parse_args(argv)
    try:
        url, branch = read_repository(args.config)
    except (FileNotFoundError, ValueError) as err:
        parser.exit(2, f"colab_cell: {err}\n")
    source = cell_source(url, branch)
    where = (
        f"{url} (branch {branch})" if url else "nowhere (repository.url is empty: the cell says what to set)"
    )
    paths = [Path(p) for p in (args.write if args.write is not None else args.check or default_notebooks())]
    for p in paths:
        if p.suffix != ".ipynb" or not p.is_file():
            parser.exit(2, f"colab_cell: {p} is not a notebook file (give paths to .ipynb files).\n")
    bad = 0
    for p in paths:
        nb = nbformat.read(p, as_version=4)
        if args.write is not None:
            try:
                changed = update(nb, source)
            except ValueError as err:
                parser.exit(2, f"colab_cell: {p}: {err}\n")
            if changed:
                nbformat.write(nb, p)
            print(f"{p}: {'updated' if changed else 'already current'}")
        else:
            found = problems(nb, source)
            if found:
                bad += 1
                print(f"{p}: " + "; ".join(found))
    if args.write is None:
        if bad:
            print(
                f"colab_cell: {bad} of {len(paths)} notebooks lack the current install cell (it installs "
                f"from {where}); fix: python tools/colab_cell.py --write <those notebooks>"
            )
            return 1
        print(
            f"colab_cell: all {len(paths)} notebooks have the current install cell (it installs from {where})."
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
