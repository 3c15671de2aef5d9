"""The book's configuration: every toc entry exists, and offline assets switch on and off cleanly."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _toc_files(node) -> list[str]:
    files = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("file", "root"):
                files.append(value)
            else:
                files += _toc_files(value)
    elif isinstance(node, list):
        for item in node:
            files += _toc_files(item)
    return files


def test_every_toc_entry_exists():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = _toc_files(toc)
    assert "intro" in files and "chapters/01_probability" in files
    missing = [f for f in files if not any((ROOT / f"{f}{ext}").is_file() for ext in (".md", ".ipynb"))]
    assert not missing, f"_toc.yml names files that do not exist: {missing}"


def test_every_chapter_notebook_is_in_the_toc():
    files = set(_toc_files(yaml.safe_load((ROOT / "_toc.yml").read_text())))
    notebooks = {
        p.relative_to(ROOT).with_suffix("").as_posix() for p in (ROOT / "chapters").glob("[0-9][0-9]_*.ipynb")
    }
    assert notebooks <= files, f"chapters missing from _toc.yml: {sorted(notebooks - files)}"


@pytest.fixture
def offline_assets():
    spec = importlib.util.spec_from_file_location("offline_assets", ROOT / "_ext" / "offline_assets.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["offline_assets"] = module
    spec.loader.exec_module(module)
    return module


def _config():
    return SimpleNamespace(
        html_static_path=[],
        mathjax_path="https://cdn/mathjax.js",
        nb_ipywidgets_js={"https://cdn/require.js": {}},
    )


def test_offline_assets_used_when_vendored(tmp_path, offline_assets):
    for rel in offline_assets.REQUIRED.values():
        (tmp_path / "_vendor" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "_vendor" / rel).write_text("//")
    config = _config()
    offline_assets._configure(SimpleNamespace(srcdir=str(tmp_path)), config)
    assert config.mathjax_path == "mathjax/tex-chtml.js"
    assert str(tmp_path / "_vendor") in config.html_static_path
    assert all("://" not in url for url in config.nb_ipywidgets_js)


def test_cdn_fallback_when_not_vendored(tmp_path, offline_assets, caplog):
    config = _config()
    offline_assets._configure(SimpleNamespace(srcdir=str(tmp_path)), config)
    assert config.mathjax_path == "https://cdn/mathjax.js"
    assert config.html_static_path == []


# -- budgets (COURSE.md): every chapter notebook <= 3 MB ------------------------------------------
NOTEBOOK_BUDGET_BYTES = 3 * 1024 * 1024


def test_every_chapter_notebook_fits_its_size_budget():
    notebooks = sorted((ROOT / "chapters").glob("[0-9][0-9]_*.ipynb"))
    assert len(notebooks) >= 10
    over = {nb.name: nb.stat().st_size for nb in notebooks if nb.stat().st_size > NOTEBOOK_BUDGET_BYTES}
    assert not over, f"chapter notebooks over 3 MB (fewer or smaller explorable frames?): {over}"
