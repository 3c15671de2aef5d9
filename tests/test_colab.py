"""The notebooks as Colab runs them: the first cell installs the course, then the chapter runs.

The simulation, offline and in about a minute:

* a fresh virtual environment with the course's pinned third-party packages but no course_lib
  (tests/fresh_env.py), as Colab comes with numpy, torch, ... but not the course;
* an importable stand-in for ``google.colab`` that records ``output.enable_custom_widget_manager()``;
* no myst-nb (Colab has none): the chapters' glue comes from ``course_lib.glue``'s stand-in;
* the notebook's install cell as ``tools/colab_cell.py --write`` makes it once ``repository.url`` is
  set (here to ``SIM_URL``), and git told to fetch that URL from a local clone of this repository
  (``url.<clone>.insteadOf``): pip installs ``bayesian-dnn-course @ git+SIM_URL@main`` from it;
* a Jupyter kernel of that environment runs the title, the install cell and the next code cells of
  chapters 1 and 9 (their text outputs must match the stored ones), then checks where course_lib
  came from, and runs the install cell again, which must print nothing.

Where it differs from Colab: pip is offline (``--no-index``), so the package is built with the
pinned setuptools (no build isolation) and every dependency must already be installed, as it is on
Colab except ipywidgets (Colab ships 7.x; the course needs 8, which pip then installs there).
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest

from fresh_env import ROOT, clean_env, fresh_venv

pytestmark = pytest.mark.slow

_spec = importlib.util.spec_from_file_location("colab_cell", ROOT / "tools" / "colab_cell.py")
colab_cell = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(colab_cell)

SIM_URL = "https://github.com/course-sim/bayesian-dnn-course"
#: Chapter notebook -> how many code cells after the install cell to run (the first ones).
CHAPTERS = {"01_probability.ipynb": 3, "09_lenet5.ipynb": 2}

_STAND_IN = '''"""Stand-in for Colab's google.colab.output (tests/test_colab.py): records the course's calls.

Colab's own (google/colab/output/_widgets.py) registers a display hook that names its CDN widget
manager in every widget output; it takes the widgets version, default "5.0.0a".
"""
calls = []


def enable_custom_widget_manager(version="5.0.0a"):
    if version != "5.0.0a":
        raise ValueError(f"Unknown widgets version: {version}")
    calls.append("enable_custom_widget_manager")
'''

_REPORT = """import importlib.metadata, json, sys
import course_lib, course_lib.glue
from google.colab import output
dist = importlib.metadata.distribution("bayesian-dnn-course")
print(json.dumps({"python": sys.executable, "course_lib": course_lib.__file__,
                  "version": dist.version, "direct_url": json.loads(dist.read_text("direct_url.json")),
                  "colab_calls": output.calls, "have_myst_nb": course_lib.glue.HAVE_MYST_NB}))"""

_DRIVER = """import importlib.util, json, sys, nbformat
from nbclient import NotebookClient
assert importlib.util.find_spec("course_lib") is None, "course_lib must be missing before the install cell"
path, cwd = sys.argv[1], sys.argv[2]
nb = nbformat.read(path, as_version=4)
NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": cwd}}).execute()
nbformat.write(nb, path)
"""


def _text(cell) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")


def _errors(cell) -> list[str]:
    return [f"{o.ename}: {o.evalue}" for o in cell.get("outputs", []) if o.get("output_type") == "error"]


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> tuple[Path, str]:
    """A local clone of this repository whose main branch holds the working tree's package files."""
    where = tmp_path_factory.mktemp("clone") / "bayesian-dnn-course"
    git = ["git", "-c", "user.name=Colab simulation", "-c", "user.email=colab-sim@localhost"]
    subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(ROOT), str(where)], check=True)
    subprocess.run(git + ["-C", str(where), "checkout", "--quiet", "-B", "main"], check=True)
    for name in ("pyproject.toml", "README.md", "MANIFEST.in"):
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, where / name)
    shutil.rmtree(where / "course_lib", ignore_errors=True)
    shutil.copytree(ROOT / "course_lib", where / "course_lib", ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(
        git + ["-C", str(where), "add", "-A", "pyproject.toml", "README.md", "course_lib"], check=True
    )
    subprocess.run(
        git + ["-C", str(where), "commit", "--quiet", "--allow-empty", "-m", "working tree's package files"],
        check=True,
    )
    head = subprocess.run(
        ["git", "-C", str(where), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    return where, head


@pytest.mark.parametrize("chapter", sorted(CHAPTERS))
def test_first_cells_install_the_course_and_run_as_on_colab(chapter, clone, tmp_path):
    clone_dir, head = clone
    python = fresh_venv(tmp_path)
    env_dir = python.parent.parent
    own_site = next((env_dir / "lib").glob("python3*/site-packages"))
    (own_site / "google" / "colab").mkdir(parents=True)  # a namespace package `google`, like Colab's
    (own_site / "google" / "colab" / "__init__.py").write_text('"""Stand-in for Colab\'s google.colab."""\n')
    (own_site / "google" / "colab" / "output.py").write_text(_STAND_IN)
    # Colab has no myst-nb (the book's glue): a .pth line hides the pinned copy from every process
    # of this environment, so the chapters' `from course_lib.glue import glue` must work without it.
    (own_site / "colab_has_no_myst_nb.pth").write_text("import sys; sys.modules['myst_nb'] = None\n")

    stored = nbformat.read(ROOT / "chapters" / chapter, as_version=4)
    nb = nbformat.read(ROOT / "chapters" / chapter, as_version=4)
    install = colab_cell.cell_source(SIM_URL, "main")
    colab_cell.update(nb, install)
    code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    keep = code[: 1 + CHAPTERS[chapter]]
    nb.cells = nb.cells[: keep[-1] + 1]
    nb.cells = [c for i, c in enumerate(nb.cells) if c.cell_type != "code" or i in keep]
    for c in nb.cells:
        if c.cell_type == "code":
            c.outputs, c.execution_count = [], None
    nb.cells += [nbformat.v4.new_code_cell(_REPORT), nbformat.v4.new_code_cell(install)]
    content = tmp_path / "content"  # Colab's working folder
    content.mkdir()
    path = content / chapter
    nbformat.write(nb, path)

    env = clean_env(
        PIP_NO_INDEX="1",
        PIP_NO_BUILD_ISOLATION="0",
        PIP_NO_CACHE_DIR="1",
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        GIT_CONFIG_COUNT="1",
        GIT_CONFIG_KEY_0=f"url.{clone_dir.as_uri()}.insteadOf",
        GIT_CONFIG_VALUE_0=SIM_URL,
        GIT_TERMINAL_PROMPT="0",
        COURSE_DEVICE="cpu",
    )
    run = subprocess.run(
        [str(python), "-c", _DRIVER, str(path), str(content)],
        capture_output=True,
        text=True,
        cwd=content,
        env=env,
        timeout=900,
    )
    ran = nbformat.read(path, as_version=4)
    cells = [c for c in ran.cells if c.cell_type == "code"]
    transcript = [f"== {chapter}: {len(cells)} code cells in a fresh venv ({env_dir})"]
    for c in cells:
        transcript.append(f"-- [{c.execution_count}] {c.source.splitlines()[0][:90]}")
        transcript += [f"   | {line}" for line in (_text(c) + "".join(_errors(c))).splitlines()]
    print("\n".join(transcript))
    assert run.returncode == 0, run.stderr[-4000:] + "\n".join(transcript)

    first, *chapter_cells, report, again = cells
    assert _text(first).strip() == f"Installing the course library from {SIM_URL} (branch main) ..."
    # The chapter's own cells print what the stored notebook shows.
    stored_code = [
        c
        for c in stored.cells
        if c.cell_type == "code" and "course-install" not in c.metadata.get("tags", [])
    ][: len(chapter_cells)]
    for mine, theirs in zip(chapter_cells, stored_code):
        assert mine.source == theirs.source
        if "nbval-ignore-output" not in theirs.metadata.get("tags", []):
            assert _text(mine) == _text(theirs), (chapter, mine.source[:200])
    info = json.loads(_text(report))
    assert Path(info["python"]).parent.parent == env_dir
    assert Path(info["course_lib"]).is_relative_to(own_site), info["course_lib"]
    assert info["direct_url"]["url"] == SIM_URL
    assert info["direct_url"]["vcs_info"]["commit_id"] == head  # the clone's main, through the URL
    assert info["direct_url"]["vcs_info"]["requested_revision"] == "main"
    assert info["colab_calls"] == ["enable_custom_widget_manager"]  # by the install cell
    assert info["have_myst_nb"] is False  # the chapter's cells ran with course_lib.glue's stand-in
    assert _text(again) == "" and not again.get("outputs")  # present now: the cell does nothing
    # Only the course was installed: every other package came from the pinned set already there.
    installed = sorted(p.name for p in own_site.glob("*.dist-info"))
    assert installed == [f"bayesian_dnn_course-{info['version']}.dist-info"], installed
