"""The GitHub workflows do what the README says (actionlint and zizmor check them as workflows:
`make lint-workflows`); their shell steps that compute something are run here."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from course_lib import data

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"


def _load(name: str) -> dict:
    wf = yaml.safe_load((WORKFLOWS / name).read_text())
    wf["on"] = wf.pop(True, wf.get("on"))  # YAML 1.1 reads the key `on` as True
    return wf


def _steps(job: dict) -> list[dict]:
    return job["steps"]


def _step(job: dict, name_part: str) -> dict:
    found = [s for s in _steps(job) if name_part in s.get("name", "")]
    assert len(found) == 1, f"one step named like {name_part!r}, found {len(found)}"
    return found[0]


def _uses(job: dict) -> list[str]:
    return [s["uses"].split("@")[0] for s in _steps(job) if "uses" in s]


def _binder_torch_index() -> str:
    text = (ROOT / "binder" / "requirements.txt").read_text()
    (url,) = re.findall(r"^--extra-index-url\s+(\S+)", text, re.M)
    return url


def test_ci_runs_the_readme_test_command_on_push_and_pull_request():
    wf = _load("ci.yml")
    assert {"push", "pull_request"} <= set(wf["on"])
    (job,) = wf["jobs"].values()
    assert job["runs-on"].startswith("ubuntu")
    setup = next(s for s in _steps(job) if s.get("uses", "").startswith("actions/setup-python@"))
    assert setup["with"]["python-version"] == "3.11" and setup["with"]["cache"] == "pip"
    assert "make test" in [s.get("run", "").strip() for s in _steps(job)]
    assert "make test" in (ROOT / "README.md").read_text()
    assert wf["permissions"] == {"contents": "read"}


def test_ci_takes_torch_alone_from_the_cpu_index_binder_uses():
    for name in ("ci.yml", "pages.yml"):
        wf = _load(name)
        assert wf["env"]["TORCH_CPU_INDEX"] == _binder_torch_index(), name
        job = wf["jobs"]["test" if name == "ci.yml" else "build"]
        script = _step(job, "CPU build of the pinned torch")["run"]
        assert '--index-url "$TORCH_CPU_INDEX"' in script and "--no-deps" in script
        # The pin the step extracts is requirements.txt's torch pin.
        line = next(ln for ln in script.splitlines() if ln.strip().startswith("torch_pin="))
        pin = subprocess.run(
            ["bash", "-c", line.strip() + '; echo "$torch_pin"'],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        assert re.fullmatch(r"torch==\d+\.\d+\.\d+", pin), pin
        assert pin in (ROOT / "requirements.txt").read_text().split()


def test_ci_caches_mnist_under_its_sha256_list(tmp_path):
    (job,) = _load("ci.yml")["jobs"].values()
    step = _step(job, "MNIST cache key")
    out = tmp_path / "github_output"
    subprocess.run(
        ["bash", "-c", step["run"]],
        cwd=ROOT,
        env={"GITHUB_OUTPUT": str(out), "PATH": "/usr/bin:/bin"},
        check=True,
    )
    key = out.read_text().strip()
    assert re.fullmatch(r"key=mnist-[0-9a-f]{16}", key), key
    # The key is made of exactly the four SHA-256 sums the files are checked against.
    listed = sorted(f'"{h}"' for h in data.SHA256.values())
    expected = subprocess.run(
        ["sha256sum"], input="\n".join(listed) + "\n", capture_output=True, text=True, check=True
    ).stdout[:16]
    assert key == f"key=mnist-{expected}"
    cache = next(s for s in _steps(job) if s.get("uses", "").startswith("actions/cache@"))
    assert cache["with"]["path"] == "data/mnist"
    assert cache["with"]["key"] == "${{ steps.mnist.outputs.key }}" and step["id"] == "mnist"
    # The download (on a cache miss) and the check are course_lib.data's own.
    assert any("python -m course_lib.data" in s.get("run", "") for s in _steps(job))


def test_ci_points_the_browser_tests_at_the_runners_chrome():
    (job,) = _load("ci.yml")["jobs"].values()
    script = _step(job, "Browser for the browser checks")["run"]
    assert "google-chrome" in script and 'COURSE_CHROMIUM=$chrome" >> "$GITHUB_ENV"' in script


def test_pages_builds_and_deploys_with_the_official_actions():
    wf = _load("pages.yml")
    assert "push" in wf["on"] and wf["on"]["push"]["branches"] == ["main"]
    assert wf["concurrency"]["group"] and wf["concurrency"]["cancel-in-progress"] is False
    build, deploy = wf["jobs"]["build"], wf["jobs"]["deploy"]
    assert "make build" in [s.get("run", "").strip() for s in _steps(build)]
    assert _uses(build)[-2:] == ["actions/configure-pages", "actions/upload-pages-artifact"]
    assert _steps(build)[-1]["with"]["path"] == "_build/html"
    assert deploy["needs"] == "build" and _uses(deploy) == ["actions/deploy-pages"]
    assert deploy["permissions"] == {"pages": "write", "id-token": "write"}
    assert deploy["environment"]["name"] == "github-pages"


@pytest.mark.parametrize("name", ["ci.yml", "pages.yml"])
def test_checkout_keeps_no_credentials(name):
    for job in _load(name)["jobs"].values():
        for s in _steps(job):
            if s.get("uses", "").startswith("actions/checkout@"):
                assert s["with"]["persist-credentials"] is False


def _browser_step_script() -> str:
    (job,) = _load("ci.yml")["jobs"].values()
    return _step(job, "Browser for the browser checks")["run"]


def test_ci_browser_step_exports_the_chrome_it_finds(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    chrome = bin_dir / "google-chrome"
    chrome.write_text("#!/bin/bash\necho 'Google Chrome 140.0'\n")
    chrome.chmod(0o755)
    env_file = tmp_path / "github_env"
    run = subprocess.run(
        ["/bin/bash", "-c", _browser_step_script()],
        capture_output=True,
        text=True,
        env={"PATH": str(bin_dir), "GITHUB_ENV": str(env_file)},
    )
    assert run.returncode == 0, run.stderr
    assert "Google Chrome 140.0" in run.stdout
    assert env_file.read_text() == f"COURSE_CHROMIUM={chrome}\n"


def test_ci_browser_step_fails_clearly_without_a_browser(tmp_path):
    empty = tmp_path / "bin"
    empty.mkdir()
    run = subprocess.run(
        ["/bin/bash", "-c", _browser_step_script()],
        capture_output=True,
        text=True,
        env={"PATH": str(empty), "GITHUB_ENV": str(tmp_path / "github_env")},
    )
    assert run.returncode == 1 and "::error::no Chrome or Chromium on this runner" in run.stdout


_BROKEN = """name: broken
on: push
permissions: write-all
jobs:
  t:
    runs-on: ubuntu-latst
    steps:
      - uses: actions/checkout@v4
      - run: echo "${{ github.event.pull_request.title }} ${{ steps.nope.outputs.x }}"
  d:
    needs: [tt]
    runs-on: ubuntu-24.04
    steps:
      - uses: someone/action@main
"""


def _actionlint_dir() -> Path:
    makefile = (ROOT / "Makefile").read_text()
    version = re.search(r"^ACTIONLINT_PKG := actionlint@(\S+)$", makefile, re.M)[1]
    return ROOT / ".tools" / f"actionlint-{version}" / "package"


def test_the_workflow_linters_catch_a_broken_workflow(tmp_path):
    """What `make lint-workflows` runs fails on real mistakes (it is not a check that cannot fail)."""
    package = _actionlint_dir()
    zizmor = Path(sys.executable).parent / "zizmor"
    if not (package / "node.cjs").is_file() or not zizmor.is_file() or not shutil.which("node"):
        pytest.skip("the workflow linters are not installed: run `make lint-workflows` first")
    bad = tmp_path / ".github" / "workflows" / "broken.yml"
    bad.parent.mkdir(parents=True)
    bad.write_text(_BROKEN)
    lint = subprocess.run(
        ["node", str(ROOT / "tools" / "actionlint.cjs"), str(package), str(bad)],
        capture_output=True,
        text=True,
    )
    assert lint.returncode == 1, lint.stdout + lint.stderr
    for kind in ("[runner-label]", "[expression]", "[job-needs]"):
        assert kind in lint.stdout, (kind, lint.stdout)
    assert 'label "ubuntu-24.04" is unknown' not in lint.stdout  # accepted (NEWER_RUNNER_LABELS)
    audit = subprocess.run(
        [str(zizmor), "--offline", "--config", str(ROOT / ".github" / "zizmor.yml"), str(bad.parent)],
        capture_output=True,
        text=True,
    )
    assert audit.returncode != 0
    for finding in ("template-injection", "unpinned-uses", "excessive-permissions"):
        assert finding in audit.stdout, (finding, audit.stdout[-3000:])
    # The course's own workflows pass both.
    ours = sorted(str(p) for p in WORKFLOWS.glob("*.yml"))
    assert (
        subprocess.run(
            ["node", str(ROOT / "tools" / "actionlint.cjs"), str(package), *ours],
            capture_output=True,
            text=True,
        ).returncode
        == 0
    )


def _run_scripts() -> list[tuple[str, str]]:
    scripts = []
    for path in sorted(WORKFLOWS.glob("*.yml")):
        for job_id, job in _load(path.name)["jobs"].items():
            for i, s in enumerate(_steps(job)):
                if "run" in s:
                    # As actionlint does: an expression becomes underscores of the same length.
                    body = re.sub(r"\$\{\{.*?\}\}", lambda m: "_" * len(m[0]), s["run"])
                    scripts.append((f"{path.name}:{job_id}:{s.get('name', i)}", body))
    return scripts


def test_run_scripts_pass_shellcheck(tmp_path):
    """The `run:` scripts, checked by shellcheck as actionlint's native build would (its WebAssembly
    build cannot run it). GitHub runs them with bash -e; variables set by the workflow's `env:` are
    unknown to shellcheck (SC2154 off, as in actionlint)."""
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck is not installed (apt-get install shellcheck; .ci/run installs it)")
    scripts = _run_scripts()
    assert len(scripts) >= 6
    problems = []
    for where, body in scripts:
        run = subprocess.run(
            [shellcheck, "-s", "bash", "-e", "SC2154", "-"], input=body, capture_output=True, text=True
        )
        if run.returncode:
            problems.append(f"{where}:\n{run.stdout}")
    assert not problems, "\n".join(problems)
    # And shellcheck does catch a mistake in such a script.
    bad = subprocess.run(
        [shellcheck, "-s", "bash", "-"],
        input="cd $DIR\nif [ $x == 1 ] then echo; fi\n",
        capture_output=True,
        text=True,
    )
    assert bad.returncode != 0
