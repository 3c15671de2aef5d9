"""Tests for tools/grading.py: every assignment graded through nbgrader, grades that survive.

For EVERY ``chapters/assignments/a*.ipynb`` a fresh instructor course (in a temporary folder)
releases the assignment, collects four submissions and autogrades them with the course's own
``nbgrader_config.py``:

* ``right``: every stub replaced by the solution -> all points;
* ``wrong``: the solution with one function replaced by the wrong body of :data:`WRONG`
  -> all points but that task's;
* ``raising``: the release as handed out (every stub raises ``NotImplementedError``) -> 0;
* ``deleted``: the right solution with its first check cell deleted -> all points (nbgrader puts
  the cell back, ``add_missing_cells``) and the flag ``missing_cell`` in the export.

No cell may need manual grading. Every test that executes a notebook is marked ``slow`` (each
submission runs twice: in the sandboxed kernel, then in the clean re-run; A4 trains a network in
both): ``make test`` runs them, ``pytest -m "not slow"`` (``make check``) skips them for a quick loop. Also: the late policy, the settings' errors,
a moved course, and ``make clean`` leaving ``instructor/`` alone.
"""

from __future__ import annotations

import csv
import html
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import grading  # noqa: E402
import student_edition  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning")  # nbgrader's own session use

#: One wrong function per assignment: the solution cell's grade_id, the whole wrong cell, and the
#: check cells it must fail (the task's own only: tasks are graded on their own).
#: Add an entry for a new assignment (a test fails until there is one).
WRONG = {
    "a1_conditioning_bayes": (
        "a1-conditional",  # the joint p(X, Z=z), not normalised
        "def conditional(p, z):\n    return p[:, :, z].sum(axis=1)\n",
        {"a1-conditional-check"},
    ),
    "a2_elbo_regression": (
        "a2-mean-field",  # the marginal variances diag(S_N)
        "def mean_field(Phi, t, lam, beta):\n"
        "    precision = lam * np.eye(Phi.shape[1]) + beta * Phi.T @ Phi\n"
        "    cov = np.linalg.inv(precision)\n"
        "    return beta * cov @ Phi.T @ t, np.diag(cov)\n",
        {"a2-mean-field-s2-check"},
    ),
    "a3_kl_approximation": (
        "a3-neg-kl-mc",  # the sign flipped (+KL)
        "def neg_kl_mc(log_alpha, eps):\n"
        "    log_alpha = np.asarray(log_alpha, dtype=float)\n"
        "    e_log = np.log(np.abs(1.0 + np.exp(0.5 * log_alpha)[..., None] * eps)).mean(axis=-1)\n"
        "    return -(0.5 * log_alpha - e_log - kl.C_INF)\n",
        {"a3-neg-kl-mc-check"},
    ),
    "a4_sparse_vd_lenet": (
        "a4-eval",  # no pruning at test time
        "def eval_forward(x, theta, log_sigma2, bias, threshold):\n    return F.linear(x, theta, bias)\n",
        {"a4-eval-check"},
    ),
    "a5_dropout": (
        "a5-gaussian",  # alpha = p instead of p / (1 - p)
        "def gaussian_dropout(x, p, eps):\n    return x * (1.0 + p**0.5 * eps)\n",
        {"a5-gaussian-check"},
    ),
    "a6_ensemble": (
        "a6-ece",  # the bins' gaps not weighted by their share of the inputs
        "def ece(probs, y, n_bins):\n"
        "    conf, pred = probs.max(dim=1)\n"
        "    correct = (pred == y).double()\n"
        "    total = 0.0\n"
        "    for m in range(n_bins):\n"
        "        in_bin = (conf > m / n_bins) & (conf <= (m + 1) / n_bins)\n"
        "        if in_bin.any():\n"
        "            total += (correct[in_bin].mean() - conf[in_bin].double().mean()).abs()\n"
        "    return float(total)\n",
        {"a6-ece-check"},
    ),
}
KINDS = ("right", "wrong", "raising", "deleted")
ASSIGNMENTS = [p.stem for p in student_edition.assignment_notebooks(ROOT)]


def _meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def submission(release: nbformat.NotebookNode, source: nbformat.NotebookNode, kind: str, wrong: tuple):
    """The released notebook completed as a student of ``kind`` would (see the module docstring)."""
    answers = {_meta(c)["grade_id"]: c.source for c in source.cells if _meta(c).get("solution")}
    nb = nbformat.from_dict(release)
    if kind == "raising":
        return nb
    for cell in nb.cells:
        if _meta(cell).get("solution"):
            gid = _meta(cell)["grade_id"]
            code = wrong[1] if (kind == "wrong" and gid == wrong[0]) else answers[gid]
            cell.source = "\n".join(line for line in code.splitlines() if "### " not in line)
    if kind == "deleted":
        first_check = next(i for i, c in enumerate(nb.cells) if _meta(c).get("grade"))
        del nb.cells[first_check]
    return nb


def _settings(tmp: Path, due: str = "", method: str = "per_day") -> Path:
    path = tmp / "grading.yml"
    path.write_text(
        f"course_id: test-course\nexchange_root: ''\ntimeout: 900\n"
        f"late_policy: {{method: {method}, per_day: 0.1}}\n"
        f"assignments:\n  a1_conditioning_bayes: {{due: {due!r}}}\n"
    )
    return path


def _run(course: Path, settings: Path, *args: str) -> None:
    assert grading.main(["--course", str(course), "--settings", str(settings), *args]) == 0


def _read_grades(path: Path) -> list[dict]:
    """grades.csv's rows, without the flag ``unsandboxed`` (where bwrap cannot run, e.g. on a CI
    runner without user namespaces, every row has it; grading_sandbox warns loudly there)."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        row["flags"] = ";".join(f for f in row["flags"].split(";") if f and f != "unsandboxed")
    return rows


@pytest.fixture(scope="module", params=[pytest.param(a, marks=pytest.mark.slow) for a in ASSIGNMENTS])
def graded(request, tmp_path_factory):
    """One assignment released, four submissions collected and autograded; its grades.csv rows."""
    name = request.param
    assert name in WRONG, f"add a wrong function for {name} to WRONG in {__file__}"
    if "mnist" in (ROOT / "chapters" / "assignments" / f"{name}.ipynb").read_text():
        request.getfixturevalue("mnist_dir")  # skips offline without MNIST (fails on CI)
    tmp = tmp_path_factory.mktemp(name)
    course, settings = tmp / "instructor", _settings(tmp)
    _run(course, settings, "release", name)
    release = nbformat.read(course / "release" / name / f"{name}.ipynb", as_version=4)
    source = nbformat.read(ROOT / "chapters" / "assignments" / f"{name}.ipynb", as_version=4)
    for kind in KINDS:
        folder = tmp / "submissions" / kind
        folder.mkdir(parents=True)
        nbformat.write(submission(release, source, kind, WRONG[name]), folder / f"{name}.ipynb")
    _run(course, settings, "collect", str(tmp / "submissions"), "-a", name)
    _run(course, settings, "autograde", name)
    _run(course, settings, "feedback", name)
    _run(course, settings, "export")
    checks = {_meta(c)["grade_id"]: float(_meta(c)["points"]) for c in source.cells if _meta(c).get("grade")}
    return name, course, checks, _read_grades(course / "grades.csv")


def test_grading_scores_every_kind_of_submission(graded):
    name, course, checks, rows = graded
    by_kind = {kind: {r["task"]: r for r in rows if r["student"] == kind} for kind in KINDS}
    scores = {kind: sum(float(r["points"]) for r in tasks.values()) for kind, tasks in by_kind.items()}
    total = sum(checks.values())
    failing = WRONG[name][2]
    first_check = next(iter(checks))
    print(f"\n{name}: " + ", ".join(f"{k} {scores[k]:g}/{total:g}" for k in KINDS))
    for kind in KINDS:
        assert set(by_kind[kind]) == set(checks), (kind, sorted(by_kind[kind]))
        assert all(float(r["max_points"]) == checks[t] for t, r in by_kind[kind].items())
        assert not [r for r in by_kind[kind].values() if "needs_manual_grade" in r["flags"]], kind
    lost = sum(checks[t] for t in failing)
    assert scores == {"right": total, "wrong": total - lost, "raising": 0.0, "deleted": total}
    assert {t for t, r in by_kind["wrong"].items() if float(r["points"]) == 0} == failing
    assert [t for t, r in by_kind["deleted"].items() if r["flags"]] == [first_check]
    assert by_kind["deleted"][first_check]["flags"] == "missing_cell"
    assert not any(r["flags"] for kind in ("right", "wrong", "raising") for r in by_kind[kind].values())
    # the feedback a student gets: one HTML page per submission, the check's message in it
    source = nbformat.read(ROOT / "chapters" / "assignments" / f"{name}.ipynb", as_version=4)
    hidden = student_edition.marked_lines(source, "hidden")
    for kind in KINDS:
        page = (course / "feedback" / kind / name / f"{name}.html").read_text()
        assert "HIDDEN TESTS" not in page and not [line for line in hidden if line in html.unescape(page)], (
            kind
        )
    graded_nb = nbformat.read(course / "autograded" / "wrong" / name / f"{name}.ipynb", as_version=4)
    for cell in (c for c in graded_nb.cells if _meta(c).get("grade_id") in failing):
        assert any(o.get("output_type") == "error" for o in cell.outputs)


def test_a1_wrong_submission_names_its_mistake(graded):
    name, course, _, rows = graded
    if name != "a1_conditioning_bayes":
        pytest.skip("the message is asserted for assignment 1")
    tasks = {r["task"]: float(r["points"]) for r in rows if r["student"] == "wrong"}
    assert (tasks["a1-conditional-check"], tasks["a1-posterior-check"]) == (0.0, 2.0)
    graded_nb = nbformat.read(course / "autograded" / "wrong" / name / f"{name}.ipynb", as_version=4)
    feedback = "".join(o.get("evalue", "") for c in graded_nb.cells for o in c.get("outputs", []))
    assert "you returned the joint p(X, Z=0)" in feedback
    page = (course / "feedback" / "wrong" / name / f"{name}.html").read_text()
    assert "you returned the joint p(X, Z=0)" in page


@pytest.mark.slow  # executes a notebook
def test_late_submission_is_flagged_and_penalised(tmp_path):
    """Due 2027-01-15 23:59 UTC, submitted 1.5 days later: 2 started days x 10 % of the score."""
    name = "a1_conditioning_bayes"
    course, settings = tmp_path / "instructor", _settings(tmp_path, due="2027-01-15T23:59:00+00:00")
    _run(course, settings, "release", name)
    release = nbformat.read(course / "release" / name / f"{name}.ipynb", as_version=4)
    source = nbformat.read(ROOT / "chapters" / "assignments" / f"{name}.ipynb", as_version=4)
    folder = tmp_path / "submissions" / "latecomer"
    folder.mkdir(parents=True)
    nbformat.write(submission(release, source, "right", WRONG[name]), folder / f"{name}.ipynb")
    (folder / "timestamp.txt").write_text("2027-01-17 11:59:00.000000 UTC")
    _run(course, settings, "collect", str(tmp_path / "submissions"))
    _run(course, settings, "autograde", name)
    _run(course, settings, "export", "--out", str(tmp_path / "grades.csv"))
    rows = _read_grades(tmp_path / "grades.csv")
    assert all("late" in r["flags"].split(";") for r in rows)
    penalty = [r for r in rows if r["task"] == "late penalty"]
    assert len(penalty) == 1 and float(penalty[0]["points"]) == pytest.approx(-0.8)
    assert sum(float(r["points"]) for r in rows) == pytest.approx(3.2)


def test_release_to_an_exchange(tmp_path):
    """With exchange_root set, release also puts the student version into nbgrader's exchange."""
    settings = _settings(tmp_path)
    settings.write_text(
        settings.read_text().replace("exchange_root: ''", f"exchange_root: '{tmp_path / 'exchange'}'")
    )
    name = "a1_conditioning_bayes"
    _run(tmp_path / "instructor", settings, "release", name)
    outbound = tmp_path / "exchange" / "test-course" / "outbound" / name / f"{name}.ipynb"
    assert outbound.is_file()
    nb = nbformat.read(outbound, as_version=4)
    assert "BEGIN SOLUTION" not in "\n".join(c.source for c in nb.cells)


def test_config_has_no_absolute_path_and_a_moved_course_grades_into_its_own_gradebook(tmp_path):
    course = grading.Course(folder=tmp_path / "a" / "instructor", settings_file=_settings(tmp_path))
    text = course.write_config().read_text()
    assert str(tmp_path) not in text and str(ROOT) not in text
    assert "c.OverwriteCells.add_missing_cells = True" in text
    assert "c.CourseDirectory.course_id = 'test-course'" in text
    shutil.move(tmp_path / "a", tmp_path / "b")
    moved = tmp_path / "b" / "instructor"
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "from traitlets.config.loader import PyFileConfigLoader as L; "
            f"c = L('nbgrader_config.py', path={str(moved)!r}).load_config(); "
            "print(c.CourseDirectory.root); print(c.CourseDirectory.db_url)",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert out == [str(moved), f"sqlite:///{moved / 'gradebook.db'}"]


def test_feedback_hides_hidden_tests_and_check_tracebacks(tmp_path):
    """The feedback preprocessors of the course's config, on a graded check cell with hidden tests."""
    from traitlets.config.loader import PyFileConfigLoader

    path = grading.Course(folder=tmp_path / "instructor", settings_file=_settings(tmp_path)).write_config()
    config = PyFileConfigLoader(path.name, path=str(path.parent)).load_config()
    names = [p.__name__ for p in config.GenerateFeedback.preprocessors]
    assert names == [
        "GetGrades",
        "NeutraliseMarkers",
        "RedactHidden",
        "ClearHiddenTests",
        "ShortTracebacks",
        "PlainMyST",
        "CSSHTMLHeaderPreprocessor",
    ]
    cell = nbformat.v4.new_code_cell(
        "checks.check_x(f)\n### BEGIN HIDDEN TESTS\nchecks.check_x(f, hidden=1234)\n### END HIDDEN TESTS",
        metadata={
            "nbgrader": {
                "grade": True,
                "solution": False,
                "locked": True,
                "grade_id": "x-check",
                "points": 1,
                "schema_version": 3,
            }
        },
        outputs=[
            nbformat.v4.new_output(
                "error",
                ename="CheckFailed",
                evalue="check_x: wrong on other inputs",
                traceback=["----> 3 checks.check_x(f, hidden=1234)", "..."],
            )
        ],
    )
    nb = nbformat.v4.new_notebook(cells=[cell])
    for klass in config.GenerateFeedback.preprocessors[1:6]:
        nb, _ = klass()(nb, {})  # as the exporter calls it (a disabled preprocessor does nothing)
    text = nbformat.writes(nb)
    assert "hidden=1234" not in text and "HIDDEN TESTS" not in text
    assert nb.cells[0].outputs[0].traceback == [
        "The hidden tests (other inputs than the visible check's) failed: CheckFailed: check_x: wrong on other inputs"
    ]


def _feedback_nb(cells):
    import grading_feedback as fb

    nb = nbformat.v4.new_notebook(cells=cells)
    from nbgrader.preprocessors import ClearHiddenTests

    for klass in (fb.NeutraliseMarkers, fb.RedactHidden, ClearHiddenTests, fb.ShortTracebacks, fb.PlainMyST):
        nb, _ = klass()(nb, {})
    return nb


def test_feedback_is_readable_offline():
    """Short tracebacks without paths everywhere, no quoted hidden line, no MyST, no stray marker."""
    check = nbformat.v4.new_code_cell(
        "checks.check_x(f)\n### BEGIN HIDDEN TESTS\nchecks.check_x(f, hidden=1234)\n### END HIDDEN TESTS",
        metadata={"nbgrader": {"grade": True, "grade_id": "x-check", "points": 1, "locked": True}},
        outputs=[
            nbformat.v4.new_output("stream", text="checks.check_x(f, hidden=1234)\nOK - fine\n"),
            nbformat.v4.new_output(
                "error", ename="CheckFailed", evalue="check_x: wrong", traceback=["----> 1 checks.check_x(f)"]
            ),
        ],
    )
    student = nbformat.v4.new_code_cell(
        "# ### BEGIN HIDDEN TESTS\nx = np.log(-1)",
        outputs=[
            nbformat.v4.new_output(
                "error",
                ename="ValueError",
                evalue="bad value in /work/main/.venv/lib/python3.11/site-packages/numpy/core.py",
                traceback=[
                    "File /work/main/.venv/lib/python3.11/site-packages/numpy/core.py:3",
                    "...",
                    "ValueError",
                ],
            )
        ],
    )
    text = nbformat.v4.new_markdown_cell(
        "By {eq}`a1-bayes` and {cite:p}`bishop2006`:\n$$ p = 1 $$ (a1-bayes)\n```{exercise} Why?\n:label: ex\nSay.\n```"
    )
    nb = _feedback_nb([check, student, text])
    out = nbformat.writes(nb)
    assert "hidden=1234" not in out and "BEGIN HIDDEN" not in out and "OK - fine" in out
    assert nb.cells[0].outputs[1].traceback == ["CheckFailed: check_x: wrong"]  # the visible check failed
    assert nb.cells[1].outputs[0].traceback == ["ValueError: bad value in core.py"]
    assert "/work/main" not in out and "site-packages" not in out
    assert nb.cells[2].source == "By (a1-bayes) and bishop2006:\n$$ p = 1 $$\n**Exercise: Why?**\nSay."


def test_feedback_pages_load_math_from_beside_them(tmp_path):
    mathjax = tmp_path / "vendor" / "mathjax"
    (mathjax / "output" / "chtml" / "fonts" / "woff-v2").mkdir(parents=True)
    (mathjax / "tex-chtml.js").write_text("// mathjax")
    (mathjax / "output" / "chtml" / "fonts" / "woff-v2" / "a.woff").write_text("font")
    page = tmp_path / "fb" / "a1.html"
    page.parent.mkdir()
    page.write_text(
        "<head><!-- Load mathjax -->\n<script src='https://cdnjs.cloudflare.com/ajax/libs/mathjax/2.7.7/latest.js'>"
        "</script>\n<!-- End of mathjax configuration --></head>"
    )
    grading._offline_math(page, mathjax)
    text = page.read_text()
    assert "cdnjs" not in text and 'src="mathjax/tex-chtml.js"' in text
    assert (page.parent / "mathjax" / "tex-chtml.js").is_file()
    assert (page.parent / "mathjax" / "output" / "chtml" / "fonts" / "woff-v2" / "a.woff").is_file()


def test_collect_checks_everything_before_copying_anything(tmp_path):
    """All or nothing: every problem on its own line; the per-assignment timestamp wins."""
    course = grading.Course(folder=tmp_path / "instructor", settings_file=_settings(tmp_path))
    subs = tmp_path / "subs"
    good = nbformat.v4.new_notebook()
    for rel in ("ann/a1_conditioning_bayes.ipynb", "bob/a2_elbo_regression/a2_elbo_regression.ipynb"):
        (subs / rel).parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(good, subs / rel)
    (subs / "bob" / "timestamp.txt").write_text("2027-01-20 10:00:00 UTC")
    (subs / "bob" / "a2_elbo_regression" / "timestamp.txt").write_text("2027-01-15 09:00:00 UTC")
    (subs / "cat").mkdir()
    nbformat.write(good, subs / "cat" / "homework.ipynb")
    (subs / "cat" / "a3_kl_approximation.ipynb").write_text("{not json")
    (subs / "dan" / "a1_conditioning_bayes").mkdir(parents=True)
    nbformat.write(good, subs / "dan" / "a1_conditioning_bayes.ipynb")
    nbformat.write(good, subs / "dan" / "a1_conditioning_bayes" / "a1_conditioning_bayes.ipynb")
    (subs / "eve").mkdir()
    nbformat.write(good, subs / "eve" / "a1_conditioning_bayes.ipynb")
    (subs / "eve" / "timestamp.txt").write_text("yesterday")
    with pytest.raises(grading.CollectError) as info:
        course.collect(subs)
    problems = info.value.problems
    assert len(problems) == 4, problems
    assert any("cat/homework.ipynb: not an assignment notebook" in p for p in problems)
    assert any("cat/a3_kl_approximation.ipynb: not a readable notebook" in p for p in problems)
    assert any("a second a1_conditioning_bayes.ipynb of dan" in p for p in problems)
    assert any("'yesterday' is not a time" in p for p in problems)
    assert not (tmp_path / "instructor" / "submitted").exists()  # nothing was copied
    assert (
        grading.main(
            [
                "--course",
                str(tmp_path / "instructor"),
                "--settings",
                str(_settings(tmp_path)),
                "collect",
                str(subs),
            ]
        )
        == 1
    )
    for bad in ("cat", "dan", "eve"):
        shutil.rmtree(subs / bad)
    course.collect(subs)
    stamp = tmp_path / "instructor" / "submitted" / "bob" / "a2_elbo_regression" / "timestamp.txt"
    assert stamp.read_text() == "2027-01-15 09:00:00 UTC"  # the assignment's own, not the student's


def test_a_huge_notebook_is_collected_without_its_outputs(tmp_path):
    settings = _settings(tmp_path)
    settings.write_text(settings.read_text() + "limits: {submission_mb: 1}\n")
    course = grading.Course(folder=tmp_path / "instructor", settings_file=settings)
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell(
                "print('x' * 3_000_000)", outputs=[nbformat.v4.new_output("stream", text="x" * 3_000_000)]
            )
        ]
    )
    (tmp_path / "subs" / "ann").mkdir(parents=True)
    nbformat.write(nb, tmp_path / "subs" / "ann" / "a1_conditioning_bayes.ipynb")
    (path,) = course.collect(tmp_path / "subs")
    assert path.stat().st_size < 10_000
    assert nbformat.read(path, as_version=4).cells[0].source == "print('x' * 3_000_000)"


def test_feedback_without_submissions_is_no_error(tmp_path, capsys):
    course = grading.Course(folder=tmp_path / "instructor", settings_file=_settings(tmp_path))
    pages, problems = course.feedback(["a2_elbo_regression"])
    assert (pages, problems) == ([], [])
    assert "a2_elbo_regression: no autograded submission yet" in capsys.readouterr().out


def test_points_are_rounded():
    assert grading._points(-0.6000000000000001) == -0.6
    assert str(grading._points(-0.0)) == "0.0"


def test_sandbox_degrades_loudly_where_bwrap_cannot_run(monkeypatch, capsys):
    import grading_sandbox

    monkeypatch.setattr(grading_sandbox, "bwrap_problem", lambda: "no user namespaces (test)")
    monkeypatch.setattr(grading_sandbox, "_WARNED", set())
    with pytest.warns(RuntimeWarning, match="WITHOUT a sandbox"):
        assert grading_sandbox.sandbox_mode("auto") == "none"
    assert (
        "WARNING: autograde runs submissions WITHOUT a sandbox: no user namespaces" in capsys.readouterr().err
    )
    with pytest.raises(RuntimeError, match="sandbox: bwrap is required"):
        grading_sandbox.sandbox_mode("bwrap")
    assert grading.report_flags({"sandbox": "none"}) == ["unsandboxed"]


def test_the_sandbox_command_mounts_no_course_file(tmp_path):
    import grading_sandbox

    work, private = tmp_path / "work", tmp_path / "private"
    cmd = grading_sandbox.sandboxed(["python", "-V"], "bwrap", work, private, 2048, 16)
    assert cmd[0] == "bwrap" and "--unshare-all" in cmd and "--clearenv" in cmd
    assert cmd[cmd.index("--") + 1 :][:1] == ["prlimit"] and f"--as={2048 << 20}" in cmd
    mounted = [cmd[i + 1] for i, a in enumerate(cmd) if a in ("--bind", "--ro-bind")]
    writable = [cmd[i + 1] for i, a in enumerate(cmd) if a == "--bind"]
    assert sorted(writable) == sorted([str(private), str(work)])
    for path in mounted:  # the repository itself is never mounted, only course_lib and data inside it
        assert path != str(ROOT) and not path.startswith(str(ROOT / "chapters")), path
        assert "instructor" not in Path(path).parts, path


@pytest.mark.parametrize(
    "text, message",
    [
        ("course_id: 'has space'\n", "course_id must be a name without spaces"),
        ("course_id: c\nlate_policy: {method: half}\n", "late_policy.method must be one of"),
        ("course_id: c\nlate_policy: {method: per_day, per_day: 2}\n", "per_day is a fraction"),
        ("course_id: c\nsandbox: docker\n", "sandbox must be one of"),
        ("course_id: c\nlimits: {memory_mb: 0}\n", "limits.memory_mb must be a positive number"),
        ("course_id: c\nlimits: {cpu: 3}\n", "limits.cpu is not a limit"),
        (
            "course_id: c\nassignments:\n  a1_conditioning_bayes: {due: 'next friday'}\n",
            "write it as ISO 8601",
        ),
    ],
)
def test_bad_settings_say_what_to_fix(tmp_path, text, message):
    (tmp_path / "grading.yml").write_text(text)
    with pytest.raises(ValueError, match=message):
        grading.Course(folder=tmp_path / "instructor", settings_file=tmp_path / "grading.yml")


def test_bad_collect_input_says_what_to_fix(tmp_path):
    course = grading.Course(folder=tmp_path / "instructor", settings_file=_settings(tmp_path))
    with pytest.raises(ValueError, match="no such folder"):
        course.collect(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no student folders"):
        course.collect(tmp_path / "empty")
    (tmp_path / "subs" / "ann").mkdir(parents=True)
    nbformat.write(nbformat.v4.new_notebook(), tmp_path / "subs" / "ann" / "homework.ipynb")
    with pytest.raises(ValueError, match="not an assignment notebook; name it after its assignment"):
        course.collect(tmp_path / "subs")
    with pytest.raises(ValueError, match="exchange_root is empty"):
        course.collect(None)
    with pytest.raises(ValueError, match="unknown assignment"):
        course.assignments(["a9_nothing"])


def test_make_clean_leaves_the_grades_alone(tmp_path):
    """make clean and make distclean in a copy of the Makefile: instructor/ survives, outputs go."""
    shutil.copy2(ROOT / "Makefile", tmp_path / "Makefile")
    grades = [
        "instructor/gradebook.db",
        "instructor/submitted/ann/a1/a1.ipynb",
        "instructor/autograded/ann/a1/a1.ipynb",
        "instructor/feedback/ann/a1/a1.html",
        "instructor/grades.csv",
    ]
    outputs = ["_build/html/index.html", "student/assignments/a1.ipynb", "assignments/a1.ipynb"]
    for rel in grades + outputs:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x")
    for target in ("clean", "distclean"):
        subprocess.run(["make", target], cwd=tmp_path, check=True, capture_output=True)
        assert all((tmp_path / rel).is_file() for rel in grades), target
        assert not any((tmp_path / rel).exists() for rel in outputs), target
    for line in (ROOT / "Makefile").read_text().splitlines():
        if "rm " in line and "instructor" in line:
            assert line.strip() == "rm -rf instructor", line  # only in clean-grades
    subprocess.run(["make", "clean-grades"], cwd=tmp_path, check=True, capture_output=True)
    assert not (tmp_path / "instructor").exists()


def test_cli_help_names_every_step():
    out = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "grading.py"), "--help"],
        capture_output=True,
        text=True,
        check=True,
        env=dict(os.environ),
    ).stdout
    for step in ("release", "collect", "autograde", "feedback", "export"):
        assert step in out


def test_the_clean_rerun_undoes_what_a_submission_rebinds(tmp_path):
    """grading_verify.py: a check switched off by rebinding, or by replacing np.allclose, still fails."""
    cells = [
        ("imports", "import numpy as np\nfrom course_lib import checks"),
        ("student", "def posterior(prior, likelihood, t):\n    return prior * likelihood[:, t]\n"),
        (
            "student",
            "checks.check_posterior = lambda *a, **k: print('OK')\nnp.allclose = lambda *a, **k: True",
        ),
        ("check", "checks.check_posterior(posterior)"),
        (
            "student",
            "def conditional(p, z):\n    j = p[:, :, z].sum(axis=1)\n    checks.check_conditional = print\n"
            "    return j / j.sum()\n",
        ),
        ("check", "checks.check_conditional(conditional)"),
        (
            "student",
            "%matplotlib inline\ndef posterior(prior, likelihood, t):\n    display(t)\n"
            "    return prior * likelihood[:, t] / (prior * likelihood[:, t]).sum()\n",
        ),
        ("check", "checks.check_conditional(conditional)\nchecks.check_posterior(posterior)"),
    ]
    job = {
        "cells": [dict(kind=k, source=src, grade_id=f"c{i}") for i, (k, src) in enumerate(cells)],
        "token": "@@T@@",
    }
    (tmp_path / "job.json").write_text(json.dumps(job))
    run = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "grading_verify.py"), str(tmp_path / "job.json")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    (line,) = [ln for ln in run.stdout.splitlines() if ln.startswith("@@T@@")]
    result = json.loads(line[len("@@T@@") :])
    assert result["checks"]["c3"].startswith("CheckFailed: check_posterior"), result
    assert result["checks"]["c5"] is None and result["checks"]["c7"] is None, result
    assert {
        "course_lib.checks.check_posterior",
        "numpy.allclose",
        "course_lib.checks.check_conditional",
    } <= set(result["rebinds"])
    assert grading.report_flags({"rerun": {"rebinds": ["course_lib.checks.x", "numpy.allclose"]}}) == [
        "rebinds_course_lib",
        "patches_library",
    ]


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_the_import_cell_is_locked(name):
    """A typo in the import cell would turn every check into a NameError: autograde restores it."""
    nb = nbformat.read(ROOT / "chapters" / "assignments" / f"{name}.ipynb", as_version=4)
    cell = next(c for c in nb.cells if c.cell_type == "code" and "import course_lib" in c.source)
    meta = _meta(cell)
    assert meta.get("locked") and not meta.get("grade") and not meta.get("solution"), meta
    assert meta["grade_id"] == f"{name.split('_')[0]}-imports"
