"""The course as a package: `python -m build` makes an sdist and a wheel that install and run.

The wheel is installed (not editable) into a fresh virtual environment that has the course's
pinned third-party packages but no course_lib (tests/fresh_env.py), offline: ``pip install
--no-index`` resolves the wheel's dependency ranges against the pins already there.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tarfile
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from fresh_env import ROOT, clean_env, fresh_venv

DIST = "bayesian-dnn-course"


def _run(cmd, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)


@pytest.fixture(scope="module")
def dists(tmp_path_factory) -> dict[str, Path]:
    """Build the sdist, and the wheel from it, with the pinned setuptools (no download)."""
    out = tmp_path_factory.mktemp("dist")
    run = _run([sys.executable, "-m", "build", "--no-isolation", "--outdir", out, ROOT])
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    wheels, sdists = list(out.glob("*.whl")), list(out.glob("*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, sorted(p.name for p in out.iterdir())
    return {"wheel": wheels[0], "sdist": sdists[0]}


def _source_version() -> str:
    """``course_lib.__version__`` as written in course_lib/__init__.py (the one version source)."""
    tree = ast.parse((ROOT / "course_lib" / "__init__.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "__version__" for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError("course_lib/__init__.py defines no __version__")


def _metadata(wheel: Path):
    with zipfile.ZipFile(wheel) as zf:
        meta = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        entry = next(n for n in zf.namelist() if n.endswith(".dist-info/entry_points.txt"))
        return Parser().parsestr(zf.read(meta).decode()), zf.read(entry).decode()


def test_wheel_holds_only_the_package(dists):
    with zipfile.ZipFile(dists["wheel"]) as zf:
        names = zf.namelist()
    print("wheel:", dists["wheel"].name, *names, sep="\n  ")
    assert "course_lib/__init__.py" in names and "course_lib/train.py" in names
    sources = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "course_lib").rglob("*.py"))
    missing = [s for s in sources if s not in names]
    assert not missing, (
        f"the wheel lacks {missing}: pyproject's [tool.setuptools.packages.find] must find them"
    )
    stray = [
        n
        for n in names
        if not (n.startswith("course_lib/") or re.match(r"bayesian_dnn_course-[^/]+\.dist-info/", n))
    ]
    assert stray == [], f"the wheel must hold course_lib only: {stray}"
    assert not [n for n in names if n.endswith((".ipynb", ".md")) or "/tests/" in n]
    assert dists["wheel"].name.endswith("-py3-none-any.whl")


def test_sdist_holds_what_builds_the_wheel_and_no_course_material(dists):
    with tarfile.open(dists["sdist"]) as tf:
        names = [n.split("/", 1)[1] for n in tf.getnames() if "/" in n]
    top = {n.split("/")[0] for n in names if n}
    assert {"pyproject.toml", "README.md", "PKG-INFO", "course_lib"} <= top, top
    assert not top & {"tests", "chapters", "benchmarks", "tools", "_ext", "data", "binder"}, top


def test_metadata_name_version_and_entry_point(dists):
    meta, entry_points = _metadata(dists["wheel"])
    assert meta["Name"] == DIST
    assert meta["Version"] == _source_version()
    assert dists["wheel"].name.startswith(f"bayesian_dnn_course-{_source_version()}-")
    assert re.search(r"^course-train = course_lib\.train_cli:main$", entry_points, re.M), entry_points


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            req = Requirement(line)
            (spec,) = req.specifier
            assert spec.operator == "==", f"requirements.txt pins exactly: {line}"
            pins[canonicalize_name(req.name)] = spec.version
    return pins


def test_dependency_ranges_admit_the_pins(dists):
    meta, _ = _metadata(dists["wheel"])
    pins = _pins()
    requires = [Requirement(r) for r in meta.get_all("Requires-Dist")]
    assert requires, "the wheel declares no dependencies"
    for req in requires:
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is a dependency but has no pin in requirements.txt"
        assert req.specifier.contains(pins[name], prereleases=True), (
            f"pyproject.toml's range {req} excludes the pin {req.name}=={pins[name]}: widen the range "
            "or change the pin"
        )


@pytest.mark.slow  # about a minute: a fresh environment, three interpreters importing torch
def test_wheel_installs_into_a_fresh_environment_and_runs(dists, tmp_path):
    python = fresh_venv(tmp_path)
    env_dir = python.parent.parent
    env = clean_env(PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    work = tmp_path / "work"
    work.mkdir()
    # Before: the fresh environment has the pinned packages but no course_lib.
    before = _run(
        [
            python,
            "-c",
            "import importlib.util as u; print(u.find_spec('course_lib'), u.find_spec('torch') is not None)",
        ],
        cwd=work,
        env=env,
    )
    assert before.stdout.split() == ["None", "True"], before.stdout + before.stderr
    install = _run([python, "-m", "pip", "install", "--no-index", dists["wheel"]], cwd=work, env=env)
    assert install.returncode == 0, install.stdout + install.stderr
    assert f"Successfully installed {DIST}-{_source_version()}" in install.stdout, install.stdout
    for cmd in ([env_dir / "bin" / "course-train", "--help"], [python, "-m", "course_lib.train", "--help"]):
        run = _run(cmd, cwd=work, env=env)
        assert run.returncode == 0 and "--model" in run.stdout and "--recipe" in run.stdout, run.stderr
    smoke = _run([python, "-c", _SMOKE], cwd=work, env=clean_env(COURSE_DEVICE="cpu"))
    assert smoke.returncode == 0, smoke.stdout + smoke.stderr
    file, versions, *_ = smoke.stdout.splitlines()
    assert Path(file).is_relative_to(env_dir / "lib") and not Path(file).is_relative_to(ROOT), file
    assert versions.split() == [_source_version()] * 2
    assert smoke.stdout.strip().endswith("smoke: ok"), smoke.stdout


# One forward/backward pass of each model, the ELBO's KL term and the reference KL, from the wheel.
_SMOKE = f"""
import importlib.metadata
import numpy as np, torch
import course_lib
print(course_lib.__file__)
print(importlib.metadata.version({DIST!r}), course_lib.__version__)
from course_lib import kl, models, sparsity
course_lib.setup(seed=0, verbose=False)
for name, shape in (("lenet300", (4, 1, 28, 28)), ("lenet5", (4, 1, 28, 28))):
    net = models.build_model(name)
    out = net(torch.randn(shape))
    assert out.shape == (4, 10), out.shape
    loss = torch.nn.functional.cross_entropy(out, torch.tensor([0, 1, 2, 3])) + net.kl() / 60000
    loss.backward()
    assert torch.isfinite(loss) and sparsity.compression(net) >= 1.0
    print(name, "loss", f"{{loss.item():.3f}}")
ref = kl.neg_kl(np.array([-4.0, 0.0, 4.0]))
assert np.all(np.diff(ref) > 0), ref  # -KL grows with alpha
print("smoke: ok")
"""
