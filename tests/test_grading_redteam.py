"""Red team: submissions written to cheat or to break the grading, each with its outcome asserted.

``test_red_team_submissions`` (slow: it autogrades eleven A1 submissions through nbgrader, about
20 s each, and one that sleeps until the limits stop it) releases assignment 1 into a temporary
course with short limits (a cell 15 s, a notebook 40 s, 64 KiB of output a cell), collects,
autogrades, writes feedback and grades.csv, and asserts for each submission what it got:

========== ============================================================ ==========================
student    what it tries                                                what it gets
========== ============================================================ ==========================
right      the solution (the baseline)                                  4 / 4, no flag
snoop      reads instructor/source, the gradebook, the release, the     4 / 4 (its code is right);
           repository's solutions, another student's work; the network  sees none of it, no network
monkey     a wrong ``posterior`` and ``checks.check_posterior = ...``   2 / 4, ``failed_clean_rerun``
           (the attack of the issue)                                    and ``rebinds_course_lib``
hook       a wrong ``posterior`` and an IPython input transformer that  2 / 4, ``failed_clean_rerun``
           deletes the check's line before the kernel runs it
huge       prints 100 MB                                                4 / 4, ``output_cut``; the
                                                                        autograded notebook < 1 MB
sleep      sleeps 10 minutes in an extra cell                           0 / 4, ``timed_out``,
                                                                        ``rerun_failed``; < 2 min
markers    nested hidden-test markers in its own cell (stopped the      4 / 4, and feedback for
           feedback of the whole class)                                 everyone
locked     edits the visible check in a locked cell                     4 / 4 (restored),
                                                                        ``edited_locked_cell``
typo       a typo in the import cell (every check a ``NameError``)      4 / 4 (the cell is locked,
                                                                        restored), every task
                                                                        ``edited_locked_cell``
hog        allocates 16 GB                                              4 / 4: ``MemoryError`` in
                                                                        its own cell (6 GiB limit)
killer     SIGKILLs its own kernel                                      0 / 4, ``kernel_died``,
                                                                        ``rerun_failed``
========== ============================================================ ==========================

A wrongly named notebook (``homework.ipynb``) is refused by collect with one line, and nothing
of the folder is collected (all or nothing); the fast tests of this are in test_grading.py.
"""

from __future__ import annotations

import csv
import html
import sys
import time
import warnings
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT / "tests"))
import grading  # noqa: E402
import grading_sandbox  # noqa: E402
import student_edition  # noqa: E402
from test_grading import WRONG, submission  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning")]
NAME = "a1_conditioning_bayes"
WRONG_POSTERIOR = "def posterior(prior, likelihood, t):\n    return prior * likelihood[:, t]\n"


def _extra(nb, source: str, at: int = 3) -> None:
    nb.cells.insert(at, nbformat.v4.new_code_cell(source))


def _set_solution(nb, grade_id: str, source: str) -> None:
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == grade_id:
            cell.source = source


def _snoop(course: Path) -> str:
    targets = [
        course / "source",
        course / "gradebook.db",
        course / "release",
        course / "submitted" / "right",
        course / "autograded" / "right",
        ROOT / "chapters" / "assignments",
        ROOT / "instructor",
    ]
    return (
        "import os, socket\n"
        f"for p in {[str(t) for t in targets]!r}:\n"
        "    print('FOUND' if os.path.exists(p) else 'absent', p)\n"
        "try:\n"
        "    socket.create_connection(('1.1.1.1', 53), timeout=3)\n"
        "    print('NETWORK-REACHED')\n"
        "except OSError as err:\n"
        "    print('no network:', type(err).__name__)\n"
    )


def _submissions(release, source, course: Path) -> dict:
    subs = {}
    kinds = (
        "right",
        "snoop",
        "monkey",
        "hook",
        "huge",
        "sleep",
        "markers",
        "locked",
        "typo",
        "hog",
        "killer",
    )
    for kind in kinds:
        nb = submission(release, source, "right", WRONG[NAME])
        if kind == "snoop":
            _extra(nb, _snoop(course))
        elif kind == "monkey":
            _set_solution(nb, "a1-posterior", WRONG_POSTERIOR)
            _extra(nb, "checks.check_posterior = lambda *a, **k: print('OK - posterior')")
        elif kind == "hook":
            _set_solution(nb, "a1-posterior", WRONG_POSTERIOR)
            _extra(
                nb,
                "get_ipython().input_transformers_post.append(\n"
                "    lambda lines: [ln for ln in lines if 'check_posterior' not in ln] or ['pass\\n'])",
            )
        elif kind == "huge":
            _extra(nb, "print('x' * 100_000_000)")
        elif kind == "sleep":
            _extra(nb, "import time\ntime.sleep(600)")
        elif kind == "markers":
            _extra(nb, "# ### BEGIN HIDDEN TESTS\n# ### BEGIN HIDDEN TESTS\nx = 1")
        elif kind == "locked":
            for cell in nb.cells:
                if cell.metadata.get("nbgrader", {}).get("grade_id") == "a1-conditional-check":
                    cell.source = "print('OK - trust me')"
        elif kind == "hog":  # 16 GB: past the kernel's address space (6 GiB by default)
            _extra(
                nb,
                "import numpy as np\ntry:\n    x = np.ones(2_000_000_000)\nexcept MemoryError:\n    print('MEMORY-LIMIT')",
            )
        elif kind == "killer":
            _extra(nb, "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)")
        elif kind == "typo":  # the import cell (locked) with a typo: every check would be a NameError
            for cell in nb.cells:
                if cell.metadata.get("nbgrader", {}).get("grade_id") == "a1-imports":
                    cell.source = cell.source.replace(
                        "from course_lib import checks", "from course_lib import chekcs"
                    )
        subs[kind] = nb
    return subs


@pytest.fixture(scope="module")
def red_team(tmp_path_factory):
    problem = grading_sandbox.bwrap_problem()
    if problem:  # e.g. GitHub's runners without user namespaces: said loudly, snoop not asserted
        warnings.warn(f"red team without the sandbox: {problem}", RuntimeWarning, stacklevel=1)
    tmp = tmp_path_factory.mktemp("redteam")
    course, settings = tmp / "instructor", tmp / "grading.yml"
    settings.write_text(
        f"course_id: red-team\nexchange_root: ''\ntimeout: 15\nsandbox: {'auto' if problem else 'bwrap'}\n"
        "limits: {notebook_seconds: 40, output_kb: 64}\nassignments: {}\n"
    )
    run = lambda *a: grading.main(["--course", str(course), "--settings", str(settings), *a])  # noqa: E731
    assert run("release", NAME) == 0
    release = nbformat.read(course / "release" / NAME / f"{NAME}.ipynb", as_version=4)
    source = nbformat.read(ROOT / "chapters" / "assignments" / f"{NAME}.ipynb", as_version=4)
    for kind, nb in _submissions(release, source, course).items():
        (tmp / "in" / kind).mkdir(parents=True)
        nbformat.write(nb, tmp / "in" / kind / f"{NAME}.ipynb")
    # a wrongly named notebook: collect refuses the whole folder, naming it
    (tmp / "in" / "zed").mkdir()
    nbformat.write(release, tmp / "in" / "zed" / "homework.ipynb")
    assert run("collect", str(tmp / "in"), "-a", NAME) == 1
    assert not (course / "submitted").exists()
    (tmp / "in" / "zed" / "homework.ipynb").unlink()
    (tmp / "in" / "zed").rmdir()
    assert run("collect", str(tmp / "in"), "-a", NAME) == 0
    start = time.perf_counter()
    course_obj = grading.Course(folder=course, settings_file=settings)
    results = course_obj.autograde([NAME])
    seconds = {student: r["seconds"] for (_, student), r in results.items()}
    print(f"\nautograde: {time.perf_counter() - start:.0f} s;", {k: round(v) for k, v in seconds.items()})
    paths, problems = course_obj.feedback([NAME])
    assert run("export") == 0
    with open(course / "grades.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return dict(
        course=course,
        results=results,
        seconds=seconds,
        feedback=(paths, problems),
        rows=rows,
        sandboxed=not problem,
    )


def _score(rows, student):
    return sum(float(r["points"]) for r in rows if r["student"] == student)


def _flags(rows, student):
    return {f for r in rows if r["student"] == student for f in r["flags"].split(";") if f} - {"unsandboxed"}


def _outputs(course: Path, student: str) -> str:
    nb = nbformat.read(course / "autograded" / student / NAME / f"{NAME}.ipynb", as_version=4)
    return "".join(
        str(o.get("text", "")) + str(o.get("ename", "")) + str(o.get("evalue", ""))
        for c in nb.cells
        for o in c.get("outputs", [])
    )


def test_red_team_submissions(red_team):
    course, rows = red_team["course"], red_team["rows"]
    assert all(r["ok"] for r in red_team["results"].values()), red_team["results"]
    outcome = {s: (_score(rows, s), _flags(rows, s)) for s in sorted({r["student"] for r in rows})}
    print(outcome)
    assert outcome["right"] == (4.0, set())
    # monkeypatching and an input transformer switch the check off in the kernel only
    assert (
        outcome["monkey"][0] == 2.0 and {"failed_clean_rerun", "rebinds_course_lib"} <= outcome["monkey"][1]
    )
    assert outcome["hook"][0] == 2.0 and "failed_clean_rerun" in outcome["hook"][1]
    assert "CleanRerunFailed" in _outputs(course, "monkey")
    # huge output: cut, flagged, small files
    assert outcome["huge"] == (4.0, {"output_cut"})
    assert (course / "autograded" / "huge" / NAME / f"{NAME}.ipynb").stat().st_size < 1 << 20
    assert (course / "feedback" / "huge" / NAME / f"{NAME}.html").stat().st_size < 2 << 20
    # sleeping: interrupted, then stopped by the notebook's time limit in the re-run
    assert outcome["sleep"][0] == 0.0 and {"timed_out", "rerun_failed"} <= outcome["sleep"][1]
    assert red_team["seconds"]["sleep"] < 150
    # markers: feedback for everyone, this one included
    paths, problems = red_team["feedback"]
    assert problems == [] and len(paths) == len(outcome)
    assert outcome["markers"] == (4.0, set())
    # an edited locked cell is restored, and flagged on its task
    assert outcome["locked"][0] == 4.0
    flagged = {r["task"] for r in rows if r["student"] == "locked" and "edited_locked_cell" in r["flags"]}
    assert flagged == {"a1-conditional-check"}
    # memory: the allocation fails inside the sandbox, the rest is graded
    assert outcome["hog"] == (4.0, set()) and "MEMORY-LIMIT" in _outputs(course, "hog")
    # a kernel that kills itself: the cells after it fail, and the re-run too
    assert outcome["killer"] == (0.0, {"kernel_died", "rerun_failed"})
    assert "KernelDied" in _outputs(course, "killer")
    # a typo in the (locked) import cell: restored, full marks, every task flagged
    assert outcome["typo"] == (4.0, {"edited_locked_cell"})
    # snoop: sandboxed, nothing of the course or the network is visible
    assert outcome["snoop"] == (4.0, set())
    seen = _outputs(course, "snoop")
    if not red_team["sandboxed"]:
        assert all("unsandboxed" in r["flags"] for r in rows)
        return
    assert "absent" in seen and "FOUND" not in seen
    assert "NETWORK-REACHED" not in seen and "no network" in seen


def test_red_team_feedback_is_offline_and_hides_the_hidden_tests(red_team):
    course = red_team["course"]
    source = nbformat.read(ROOT / "chapters" / "assignments" / f"{NAME}.ipynb", as_version=4)
    hidden = student_edition.marked_lines(source, "hidden")
    for page in (course / "feedback").glob(f"*/{NAME}/{NAME}.html"):
        text = html.unescape(page.read_text())
        assert not [line for line in hidden if line in text], page
        if page.parent.parent.name != "snoop":  # whose own code names the paths it looks for
            assert str(course) not in text and str(ROOT) not in text and "site-packages" not in text, page
        assert "{eq}`" not in text and "{cite" not in text, page
        if (ROOT / "_vendor" / "mathjax" / "tex-chtml.js").is_file():  # make vendor (make test runs it)
            assert "cdnjs" not in text and 'src="mathjax/tex-chtml.js"' in text, page
