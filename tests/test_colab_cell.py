"""tools/colab_cell.py: the install cell every notebook starts with (Colab)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("colab_cell", ROOT / "tools" / "colab_cell.py")
colab_cell = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(colab_cell)

URL = "https://github.com/someone/bayesian-dnn-course"


def _notebook() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Title"),
        nbformat.v4.new_code_cell("import course_lib\ncourse_lib.setup(seed=0)"),
    ]
    return nb


def _config(tmp_path: Path, url: str, branch: str = "main") -> Path:
    cfg = tmp_path / "_config.yml"
    cfg.write_text(f'title: t\nrepository:\n  url: "{url}"\n  branch: {branch}\n')
    return cfg


def test_cell_installs_from_the_configured_repository():
    source = colab_cell.cell_source(URL, "main")
    assert f'"bayesian-dnn-course @ git+{URL}@main"' in source
    assert "raise" not in source
    compile(source, "cell", "exec")


def test_cell_without_url_says_what_to_set():
    source = colab_cell.cell_source("")
    assert "repository.url" in source and "git+" not in source
    compile(source, "cell", "exec")


def test_read_repository_follows_the_config(tmp_path):
    assert colab_cell.read_repository(_config(tmp_path, URL + ".git", "dev")) == (URL, "dev")
    assert colab_cell.read_repository(_config(tmp_path, "")) == ("", "main")
    assert colab_cell.read_repository(ROOT / "_config.yml")[1]  # the course's own config parses


@pytest.mark.parametrize("url", ["github.com/a/b", "https://example.org/a/b", "https://github.com/a"])
def test_read_repository_rejects_a_bad_url(tmp_path, url):
    with pytest.raises(ValueError, match="repository.url"):
        colab_cell.read_repository(_config(tmp_path, url))


def test_read_repository_rejects_a_bad_branch_and_a_missing_file(tmp_path):
    with pytest.raises(ValueError, match="repository.branch"):
        colab_cell.read_repository(_config(tmp_path, URL, "'a b'"))
    with pytest.raises(FileNotFoundError, match="_config.yml"):
        colab_cell.read_repository(tmp_path / "missing" / "_config.yml")


def test_update_inserts_after_the_title_once():
    nb = _notebook()
    source = colab_cell.cell_source(URL)
    assert colab_cell.problems(nb, source) == ["no cell tagged 'course-install'"]
    assert colab_cell.update(nb, source) is True
    assert [c.cell_type for c in nb.cells] == ["markdown", "code", "code"]
    cell = nb.cells[1]
    assert cell.source == source and cell.outputs == [] and cell.id == "course-install"
    assert set(colab_cell.TAGS) <= set(cell.metadata.tags)
    assert colab_cell.problems(nb, source) == []
    assert colab_cell.update(nb, source) is False  # idempotent
    nbformat.validate(nb)


def test_update_moves_and_refreshes_a_stale_cell():
    nb = _notebook()
    stale = nbformat.v4.new_code_cell("print('old')", metadata={"tags": ["course-install", "keep-me"]})
    stale.outputs = [nbformat.v4.new_output("stream", text="old\n")]
    nb.cells.append(stale)
    source = colab_cell.cell_source("")
    found = colab_cell.problems(nb, source)
    assert any("must be cell 1" in p for p in found) and any("not the current" in p for p in found)
    assert any("stored output" in p for p in found)
    assert colab_cell.update(nb, source)
    assert len(nb.cells) == 3 and nb.cells[1].source == source and nb.cells[1].outputs == []
    assert nb.cells[1].metadata.tags[:2] == ["course-install", "keep-me"]
    assert colab_cell.problems(nb, source) == []


def test_update_refuses_a_notebook_without_title_cell():
    nb = _notebook()
    del nb.cells[0]
    with pytest.raises(ValueError, match="markdown title cell"):
        colab_cell.update(nb, colab_cell.cell_source(URL))


def test_cli_write_then_check(tmp_path, capsys):
    path = tmp_path / "nb.ipynb"
    nbformat.write(_notebook(), path)
    cfg = _config(tmp_path, URL)
    assert colab_cell.main(["--config", str(cfg), "--check", str(path)]) == 1
    assert "lack the current install cell" in capsys.readouterr().out
    assert colab_cell.main(["--config", str(cfg), "--write", str(path)]) == 0
    assert colab_cell.main(["--config", str(cfg), "--check", str(path)]) == 0
    # Switching repository.url makes the stored cell stale: the check says so.
    assert colab_cell.main(["--config", str(_config(tmp_path, "")), "--check", str(path)]) == 1


def test_cli_rejects_a_path_that_is_no_notebook(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        colab_cell.main(["--write", str(tmp_path / "x.txt")])
    assert info.value.code == 2 and "is not a notebook file" in capsys.readouterr().err


@pytest.mark.parametrize("url", ["", URL])
def test_cell_prints_nothing_where_course_lib_is_installed(url):
    run = subprocess.run(
        [sys.executable, "-c", colab_cell.cell_source(url)], capture_output=True, text=True, cwd=ROOT
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout == "" and run.stderr == ""


def test_cell_without_url_stops_with_the_fix_where_course_lib_is_missing(tmp_path):
    # -I -S: no site-packages and no current directory, so course_lib is not importable.
    run = subprocess.run(
        [sys.executable, "-I", "-S", "-c", colab_cell.cell_source("")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert run.returncode == 1
    assert "ModuleNotFoundError" in run.stderr and "set repository.url" in run.stderr


def test_every_notebook_has_the_install_cell_of_repository_url():
    """Every chapter and assignment has the install cell, and it agrees with ``repository.url``."""
    url, branch = colab_cell.read_repository()
    source = colab_cell.cell_source(url, branch)
    notebooks = colab_cell.default_notebooks()
    assert len(notebooks) >= 14, [p.name for p in notebooks]
    stale = {}
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        found = colab_cell.problems(nb, source)
        if found:
            stale[path.name] = found
    assert not stale, f"fix with: python tools/colab_cell.py --write <notebooks>: {stale}"
