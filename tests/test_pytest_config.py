"""pyproject.toml's pytest settings: strict nbval collects the chapters, never JupyterLab's stale copies.

``norecursedirs`` replaces pytest's default list, which skips hidden folders; without ``".*"`` in it,
``make test`` after a JupyterLab session also ran strict nbval on
``chapters/.ipynb_checkpoints/*-checkpoint.ipynb`` (issue 24: two stale copies, 25 extra cells).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]


def test_nbval_skips_jupyterlab_checkpoints(tmp_path):
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    chapters = tmp_path / "chapters"
    (chapters / ".ipynb_checkpoints").mkdir(parents=True)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")])
    nbformat.write(nb, chapters / "01_topic.ipynb")
    nbformat.write(nb, chapters / ".ipynb_checkpoints" / "01_topic-checkpoint.ipynb")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--collect-only",
            "-q",
            "--nbval",
            "-p",
            "no:cacheprovider",
            "chapters",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "chapters/01_topic.ipynb::Cell 0" in result.stdout, result.stdout
    assert "checkpoint" not in result.stdout, result.stdout
