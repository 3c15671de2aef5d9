"""The instructor's workflow with nbgrader: release, collect, autograde, feedback, export.

One command per step (``make release`` etc. call these)::

    python tools/grading.py release  [ASSIGNMENT ...]   # source -> release (+ exchange), due dates
    python tools/grading.py collect  SUBMISSIONS [-a ASSIGNMENT ...]   # a folder -> submitted/
    python tools/grading.py autograde [ASSIGNMENT ...]  # run every submission, fill the gradebook
    python tools/grading.py feedback  [ASSIGNMENT ...]  # HTML feedback per student
    python tools/grading.py export   [--out FILE]       # per-task grades as CSV

The nbgrader course is the git-ignored folder ``instructor/`` (``--course`` to choose another):
``source/`` (a copy of ``chapters/assignments/``), ``release/``, ``submitted/``, ``autograded/``,
``feedback/``, ``gradebook.db``, ``grades.csv`` and ``nbgrader_config.py``. No make target deletes it
but ``make clean-grades``. The settings (course id, exchange root, due dates, late policy) are
in ``tools/grading.yml``; ``nbgrader_config.py`` is written from them at every step and holds no
absolute path, so a moved course folder grades into its own gradebook, also when ``nbgrader``
is run by hand from inside it.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import filecmp
import json
import math
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import grading_sandbox  # noqa: E402
import student_edition  # noqa: E402

ROOT = student_edition.ROOT
# nbgrader's own use of its SQLAlchemy session warns on every autograde; the warning is not ours.
warnings.filterwarnings("ignore", message=".*not in session.*")
LATE_METHODS = ("none", "zero", "per_day")
SANDBOXES = ("auto", "bwrap", "none")
#: The limits of one submission's run (``limits:`` in tools/grading.yml) and their defaults.
LIMITS = {"notebook_seconds": 600, "memory_mb": 6144, "output_kb": 1024, "file_mb": 64, "submission_mb": 20}


class CollectError(ValueError):
    """Problems found in a submissions folder (nothing was copied): one line each."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__(f"{len(problems)} problem(s), nothing collected:\n" + "\n".join(problems))


#: What a cell re-added by ``OverwriteCells.add_missing_cells`` starts with.
MISSING_NOTE = "was missing from the submission"

CONFIG_TEMPLATE = '''\
# Written by tools/grading.py from {settings}; edit that file, not this one.
# No absolute path: the course folder is the folder holding this file, wherever it is moved.
import math
import os
import sys

from nbconvert.preprocessors import ClearMetadataPreprocessor, CSSHTMLHeaderPreprocessor
from nbgrader.plugins import LateSubmissionPlugin
from nbgrader.preprocessors import (
    AssignLatePenalties, CheckCellMetadata, ClearHiddenTests, GetGrades, IgnorePattern, LimitOutput,
    SaveAutoGrades,
)

c = get_config()  # noqa: F821
here = os.path.dirname(os.path.abspath(__file__))
c.CourseDirectory.root = here
c.CourseDirectory.db_url = "sqlite:///" + os.path.join(here, "gradebook.db")
c.CourseDirectory.course_id = {course_id!r}
{exchange}
c.ClearSolutions.code_stub = {{"python": "# YOUR CODE HERE\\nraise NotImplementedError()"}}
# A deleted check cell is put back (from the gradebook) and graded, never left to manual grading.
c.OverwriteCells.add_missing_cells = True
c.Execute.timeout = {timeout}

# The sandbox and the limits (grading_sandbox.py, copied beside this file by tools/grading.py).
sys.path.insert(0, here)
from grading_sandbox import LimitedExecute  # noqa: E402

c.Autograde.autograde_preprocessors = [
    LimitedExecute, IgnorePattern, ClearMetadataPreprocessor, LimitOutput, SaveAutoGrades,
    AssignLatePenalties, CheckCellMetadata,
]
c.LimitedExecute.notebook_timeout = {notebook_seconds}
c.LimitedExecute.max_output_kb = {output_kb}
c.SandboxKernelManager.sandbox = {sandbox!r}
c.SandboxKernelManager.memory_mb = {memory_mb}
c.SandboxKernelManager.max_file_mb = {file_mb}
c.LimitOutput.max_lines = 200
c.LimitOutput.max_traceback = 20


class PerDayPenalty(LateSubmissionPlugin):
    """Late policy 'per_day': lose {per_day:g} of the score per started day late (at most all of it)."""

    def late_submission_penalty(self, student_id, score, total_seconds_late):
        return min(score, score * {per_day!r} * math.ceil(total_seconds_late / 86400))


{late}


# Feedback (grading_feedback.py): the graded notebook without the hidden tests (autograde ran them;
# the release never had them), every error as one line, no path of this machine, plain Markdown.
from grading_feedback import NeutraliseMarkers, PlainMyST, RedactHidden, ShortTracebacks  # noqa: E402

c.GenerateFeedback.preprocessors = [
    GetGrades, NeutraliseMarkers, RedactHidden, ClearHiddenTests, ShortTracebacks, PlainMyST,
    CSSHTMLHeaderPreprocessor,
]
'''


def _points(value) -> float:
    """Points as grades.csv writes them: rounded to 1e-4 (no ``-0.6000000000000001``)."""
    return round(float(value or 0.0), 4) + 0.0


def _last_error(log: str) -> str:
    """The last line of nbgrader's log that names an error (or its last line)."""
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    errors = [line for line in lines if "Error" in line or "error" in line]
    return (errors or lines or ["nbgrader failed without a log"])[-1][:300]


def _write_readonly(path: Path, text: str) -> None:
    """Rewrite a file nbgrader made read-only, and leave it read-only."""
    if path.exists():
        path.chmod(path.stat().st_mode | stat.S_IWUSR)
    path.write_text(text)
    path.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)


_MATHJAX2 = re.compile(r"<!-- Load mathjax -->.*?<!-- End of mathjax configuration -->", re.S)
_MATHJAX3 = """<!-- MathJax 3 from the folder mathjax/ beside this page: math without a network -->
<script>
window.MathJax = {
  tex: {inlineMath: [["$", "$"], ["\\\\(", "\\\\)"]], displayMath: [["$$", "$$"], ["\\\\[", "\\\\]"]],
        processEscapes: true},
  chtml: {fontURL: "mathjax/output/chtml/fonts/woff-v2"},
  options: {enableMenu: false}
};
</script>
<script src="mathjax/tex-chtml.js" id="MathJax-script"></script>"""


def _offline_math(page: Path, mathjax: Path) -> None:
    """Serve a feedback page's math from a copy of the book's MathJax beside it (no CDN)."""
    text = page.read_text()
    if "<!-- Load mathjax -->" not in text:
        return
    page.write_text(_MATHJAX2.sub(lambda _: _MATHJAX3, text, count=1))
    target = page.parent / "mathjax"
    target.mkdir(exist_ok=True)
    shutil.copy2(mathjax / "tex-chtml.js", target / "tex-chtml.js")
    fonts = Path("output") / "chtml" / "fonts" / "woff-v2"
    shutil.copytree(mathjax / fonts, target / fonts, dirs_exist_ok=True)


def _utc(text: str) -> dt.datetime:
    """A due date or timestamp as naive UTC (nbgrader's convention); naive input is UTC."""
    when = dt.datetime.fromisoformat(str(text).strip().replace(" UTC", "").replace("Z", "+00:00"))
    return when.astimezone(dt.timezone.utc).replace(tzinfo=None) if when.tzinfo else when


@dataclass
class Course:
    """The instructor's nbgrader course of this repository.

    Parameters
    ----------
    root : Path
        The course repository (its ``chapters/assignments/`` are the sources).
    folder : Path, optional
        The nbgrader course folder (default ``root/instructor``).
    settings_file : Path, optional
        The settings (default ``root/tools/grading.yml``).
    """

    root: Path = ROOT
    folder: Path | None = None
    settings_file: Path | None = None
    settings: dict = field(init=False)

    def __post_init__(self) -> None:
        self.root = Path(self.root).resolve()
        self.folder = Path(self.folder or self.root / "instructor").resolve()
        self.settings_file = Path(self.settings_file or self.root / "tools" / "grading.yml")
        self.settings = self._read_settings()
        student_edition.alembic_on_path()

    # -- settings and nbgrader config ---------------------------------------------------
    def _read_settings(self) -> dict:
        raw = yaml.safe_load(self.settings_file.read_text()) or {}
        where = f"{self.settings_file}"
        course_id = raw.get("course_id")
        if not isinstance(course_id, str) or not course_id.strip() or " " in course_id:
            raise ValueError(
                f"{where}: course_id must be a name without spaces (e.g. dnn-bayes), got {course_id!r}."
            )
        late = raw.get("late_policy") or {"method": "none"}
        if late.get("method") not in LATE_METHODS:
            raise ValueError(
                f"{where}: late_policy.method must be one of {LATE_METHODS}, got {late.get('method')!r}."
            )
        per_day = float(late.get("per_day", 0.1))
        if not 0 <= per_day <= 1:
            raise ValueError(
                f"{where}: late_policy.per_day is a fraction of the score in [0, 1], got {per_day}."
            )
        due = {}
        for name, entry in (raw.get("assignments") or {}).items():
            when = (entry or {}).get("due")
            try:
                due[name] = _utc(when) if when else None
            except ValueError:
                raise ValueError(
                    f"{where}: due date of {name} is {when!r}; write it as ISO 8601, "
                    "e.g. '2027-01-15T23:59:00+01:00' (no offset means UTC)."
                ) from None
        sandbox = raw.get("sandbox", "auto")
        if sandbox not in SANDBOXES:
            raise ValueError(f"{where}: sandbox must be one of {SANDBOXES}, got {sandbox!r}.")
        limits = {**LIMITS, **(raw.get("limits") or {})}
        for key, value in limits.items():
            if key not in LIMITS:
                raise ValueError(f"{where}: limits.{key} is not a limit; the limits are {sorted(LIMITS)}.")
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{where}: limits.{key} must be a positive number, got {value!r}.")
        return {
            "course_id": course_id,
            "exchange_root": raw.get("exchange_root") or "",
            "timeout": int(raw.get("timeout", 900)),
            "sandbox": sandbox,
            "limits": limits,
            "late": late["method"],
            "per_day": per_day,
            "due": due,
        }

    def write_config(self) -> Path:
        """Write ``nbgrader_config.py`` into the course folder (relative paths only)."""
        s = self.settings
        exchange = (
            f"c.Exchange.root = {s['exchange_root']!r}"
            if s["exchange_root"]
            else "# no exchange: exchange_root is empty in the settings"
        )
        late = {
            "none": "c.LateSubmissionPlugin.penalty_method = 'none'",
            "zero": "c.LateSubmissionPlugin.penalty_method = 'zero'",
            "per_day": "c.AssignLatePenalties.plugin_class = PerDayPenalty",
        }[s["late"]]
        self.folder.mkdir(parents=True, exist_ok=True)
        for helper in ("grading_sandbox.py", "grading_feedback.py"):
            shutil.copy2(Path(__file__).with_name(helper), self.folder / helper)
        path = self.folder / "nbgrader_config.py"
        limits = s["limits"]
        path.write_text(
            CONFIG_TEMPLATE.format(
                settings=self.settings_file.name,
                course_id=s["course_id"],
                exchange=exchange,
                timeout=s["timeout"],
                per_day=s["per_day"],
                late=late,
                sandbox=s["sandbox"],
                notebook_seconds=float(limits["notebook_seconds"]),
                output_kb=int(limits["output_kb"]),
                memory_mb=int(limits["memory_mb"]),
                file_mb=int(limits["file_mb"]),
            )
        )
        return path

    def api(self):
        """An ``NbGraderAPI`` configured by the course folder's ``nbgrader_config.py``."""
        from nbgrader.apps import NbGraderAPI
        from traitlets.config.loader import PyFileConfigLoader

        path = self.write_config()
        config = PyFileConfigLoader(path.name, path=str(path.parent)).load_config()
        return NbGraderAPI(config=config)

    def gradebook(self):
        from nbgrader.api import Gradebook

        return Gradebook(f"sqlite:///{self.folder / 'gradebook.db'}", self.settings["course_id"])

    def assignments(self, names: list[str] | None = None) -> list[Path]:
        """The instructor's notebooks of ``names`` (all when ``None``).

        Raises
        ------
        ValueError
            If a name is not an assignment of ``chapters/assignments/``.
        """
        found = {p.stem: p for p in student_edition.assignment_notebooks(self.root)}
        unknown = sorted(set(names or []) - set(found))
        if unknown:
            raise ValueError(f"unknown assignment(s) {unknown}; the assignments are {sorted(found)}.")
        return [found[n] for n in (names or sorted(found))]

    # -- the steps ----------------------------------------------------------------------
    def release(self, names: list[str] | None = None) -> list[Path]:
        """Generate the student version of each assignment; set its due date; release to the exchange.

        An assignment that already has submissions is regenerated only if its source is unchanged
        (nbgrader would refuse, and the grades would no longer match the source).

        Raises
        ------
        RuntimeError
            If a changed assignment already has submissions, or nbgrader fails.
        """
        api = self.api()
        notebooks = self.assignments(names)
        with self.gradebook() as gb:
            for nb in notebooks:
                stored = self.folder / "source" / nb.stem / nb.name
                subs = [s for s in gb.assignments if s.name == nb.stem and s.submissions]
                if subs and not (stored.is_file() and filecmp.cmp(stored, nb, shallow=False)):
                    raise RuntimeError(
                        f"{nb.stem} changed since it was released and has submissions in "
                        f"{self.folder / 'gradebook.db'}: releasing it again would grade them "
                        "against another source. Release it under a new name, or (losing its "
                        "grades) run `make clean-grades`."
                    )
        released = student_edition.generate(self.folder, notebooks, api.config)
        with self.gradebook() as gb:
            for nb in notebooks:
                gb.update_or_create_assignment(nb.stem, duedate=self.settings["due"].get(nb.stem))
        if self.settings["exchange_root"]:
            for nb in notebooks:
                result = api.release_assignment(nb.stem)
                if not result.get("success"):
                    raise RuntimeError(f"nbgrader release_assignment {nb.stem} failed:\n{result.get('log')}")
        return released

    def collect(self, submissions: Path | None, names: list[str] | None = None) -> list[Path]:
        """Put submissions into ``submitted/<student>/<assignment>/`` (with ``timestamp.txt``).

        ``submissions`` holds one folder per student id, each with ``<assignment>.ipynb`` (or
        ``<assignment>/<assignment>.ipynb``); the submission time is the ``timestamp.txt`` beside it
        (e.g. ``2027-01-15 22:10:00 UTC``), else the student folder's, else the notebook's
        modification time. Without ``submissions``, nbgrader collects from the exchange.

        Everything is checked before anything is copied: with any problem (a notebook named after no
        assignment, in the wrong place, twice, unreadable, or a bad ``timestamp.txt``) nothing is
        copied and :class:`CollectError` lists them all, one line each. A per-assignment
        ``<assignment>/timestamp.txt`` wins over the student's. A notebook over
        ``limits.submission_mb`` is collected without its outputs (autograde clears them anyway).

        Raises
        ------
        ValueError
            If no folder is given and there is no exchange.
        CollectError
            If the folder has any problem (nothing was copied).
        """
        known = {p.stem for p in self.assignments(names)}
        if submissions is None:
            if not self.settings["exchange_root"]:
                raise ValueError(
                    "no SUBMISSIONS folder given and exchange_root is empty in "
                    f"{self.settings_file}: pass the folder of the students' notebooks."
                )
            api = self.api()
            for name in sorted(known):
                api.collect(name)
            return sorted((self.folder / "submitted").glob("*/*/*.ipynb"))
        plan, problems = self._plan_collect(Path(submissions), known)
        if problems:
            raise CollectError(problems)
        collected = []
        for nb, student, when, strip in plan:
            target = self.folder / "submitted" / student / nb.stem
            target.mkdir(parents=True, exist_ok=True)
            if strip:
                content = nbformat.read(nb, as_version=4)
                for cell in content.cells:
                    if cell.cell_type == "code":
                        cell.outputs, cell.execution_count = [], None
                nbformat.write(content, target / nb.name)
                print(
                    f"{nb}: {nb.stat().st_size >> 20} MiB, collected without its outputs (limit {strip} MiB)"
                )
            else:
                shutil.copy2(nb, target / nb.name)
            (target / "timestamp.txt").write_text(when)
            collected.append(target / nb.name)
        return collected

    def _plan_collect(self, submissions: Path, known: set[str]) -> tuple[list[tuple], list[str]]:
        """What collect would copy ``(notebook, student, time, strip)``, and every problem found."""
        if not submissions.is_dir():
            return [], [
                f"{submissions}: no such folder; pass the folder SUBMISSIONS/<student id>/<assignment>.ipynb."
            ]
        students = sorted(p for p in submissions.iterdir() if p.is_dir() and not p.name.startswith("."))
        if not students:
            return [], [
                f"{submissions}: no student folders; lay it out as SUBMISSIONS/<student id>/<assignment>.ipynb."
            ]
        plan, problems = [], []
        max_mb = int(self.settings["limits"]["submission_mb"])
        for student in students:
            seen: dict[str, Path] = {}
            for nb in sorted(student.rglob("*.ipynb")):
                if ".ipynb_checkpoints" in nb.parts:
                    continue
                where = nb.relative_to(submissions)
                if nb.stem not in known:
                    problems.append(
                        f"{where}: not an assignment notebook; name it after its assignment "
                        f"({', '.join(sorted(known))}) plus .ipynb."
                    )
                    continue
                if nb.parent != student and nb.parent.name != nb.stem:
                    problems.append(f"{where}: put it in {student.name}/ or {student.name}/{nb.stem}/.")
                    continue
                if nb.stem in seen:
                    problems.append(
                        f"{where}: a second {nb.name} of {student.name} (also {seen[nb.stem]}); keep one."
                    )
                    continue
                seen[nb.stem] = where
                try:
                    nbformat.validate(nbformat.read(nb, as_version=4))
                except Exception as err:  # JSON or schema
                    problems.append(
                        f"{where}: not a readable notebook ({type(err).__name__}: {str(err)[:120]})."
                    )
                    continue
                when, problem = self._submission_time(nb, student)
                if problem:
                    problems.append(problem)
                    continue
                plan.append((nb, student.name, when, max_mb if nb.stat().st_size > max_mb << 20 else 0))
        return plan, problems

    @staticmethod
    def _submission_time(nb: Path, student: Path) -> tuple[str, str | None]:
        """The time of ``nb``: its assignment folder's timestamp.txt, the student's, else its mtime."""
        for stamp in (nb.parent / "timestamp.txt", student / "timestamp.txt"):
            if stamp.is_file():
                text = stamp.read_text().strip()
                try:
                    _utc(text)
                except ValueError:
                    return "", f"{stamp}: {text[:40]!r} is not a time; write e.g. 2027-01-15 22:10:00 UTC."
                return text, None
        mtime = dt.datetime.fromtimestamp(nb.stat().st_mtime, dt.timezone.utc)
        return mtime.strftime("%Y-%m-%d %H:%M:%S.%f UTC"), None

    def autograde(self, names: list[str] | None = None) -> dict[tuple[str, str], dict]:
        """Autograde every collected submission, carrying on past any failure.

        Each submission: nbgrader's autograde (the kernel in the sandbox, see grading_sandbox.py),
        then :meth:`rerun` (the checks again in a fresh process). Returns
        ``{(assignment, student): {"ok", "seconds", "error", "report"}}``.
        """
        api, results = self.api(), {}
        for nb in self.assignments(names):
            for folder in sorted((self.folder / "submitted").glob(f"*/{nb.stem}")):
                student, start, error = folder.parent.name, time.perf_counter(), None
                try:
                    result = api.autograde(nb.stem, student, force=True, create=True)
                    if not result.get("success"):
                        error = _last_error(result.get("log", ""))
                    else:
                        self.rerun(nb.stem, student)
                except Exception as err:  # one broken submission never stops the others
                    error = f"{type(err).__name__}: {err}"
                results[nb.stem, student] = dict(
                    ok=error is None,
                    seconds=time.perf_counter() - start,
                    error=error,
                    report=self.report(nb.stem, student),
                )
        return results

    def report(self, assignment: str, student: str) -> dict:
        """The sandbox's report of a submission's last autograde (``{}`` when there is none)."""
        path = self.folder / "autograded" / student / assignment / grading_sandbox.REPORT
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return {}

    def rerun(self, assignment: str, student: str) -> dict:
        """Run the autograded notebook again in a fresh process (grading_verify.py), in the sandbox.

        A check cell that passed in the kernel but fails here (the student's kernel had switched
        its check off, e.g. by rebinding ``checks.check_posterior``) scores 0, and its cell in the
        autograded notebook gets the error, which the feedback shows. What the submission rebound
        in ``course_lib`` goes into the report (flag ``rebinds_course_lib``).
        """
        folder = self.folder / "autograded" / student / assignment
        path = folder / f"{assignment}.ipynb"
        nb = nbformat.read(path, as_version=4)
        cells, imports = [], False
        for cell in (c for c in nb.cells if c.cell_type == "code"):
            meta = cell.metadata.get("nbgrader", {})
            if meta.get("grade"):
                kind = "check"
            elif not imports and ("import course_lib" in cell.source or "from course_lib" in cell.source):
                kind, imports = "imports", True
            else:
                kind = "course" if meta.get("locked") else "student"
            cells.append(dict(source=cell.source, kind=kind, grade_id=meta.get("grade_id")))
        start = time.perf_counter()
        outcome = self._run_verifier(cells, folder)
        failed = {}
        with self.gradebook() as gb:
            for cell in nb.cells:
                gid = cell.metadata.get("nbgrader", {}).get("grade_id")
                if not cell.metadata.get("nbgrader", {}).get("grade"):
                    continue
                error = outcome["checks"].get(gid, outcome.get("error") or "the check did not run")
                grade = gb.find_grade(gid, assignment, assignment, student)
                if error is None or not grade.auto_score:
                    continue
                failed[gid] = error
                grade.auto_score = 0.0
                cell.outputs.append(
                    nbformat.v4.new_output(
                        "error",
                        ename="CleanRerunFailed",
                        evalue=f"this check passed in your notebook but fails when the notebook is run "
                        f"again in a fresh Python process, with the course library as it ships: {error}",
                        traceback=[f"CleanRerunFailed: {error}"],
                    )
                )
            gb.db.commit()
            if failed:
                self._repenalise(gb, assignment, student)
        if failed:
            _write_readonly(path, nbformat.writes(nb))
        report = self.report(assignment, student)
        report["rerun"] = dict(
            failed=sorted(failed),
            rebinds=outcome.get("rebinds", []),
            seconds=round(time.perf_counter() - start, 1),
            error=outcome.get("error"),
        )
        _write_readonly(folder / grading_sandbox.REPORT, json.dumps(report, indent=1))
        return report["rerun"]

    def _run_verifier(self, cells: list[dict], folder: Path) -> dict:
        """grading_verify.py on ``cells`` in the sandbox, in a copy of ``folder``: its JSON result."""
        limits, token = self.settings["limits"], f"@@verdict-{os.urandom(8).hex()}@@"
        with tempfile.TemporaryDirectory(prefix="nbgrader-rerun-") as tmp:
            private = Path(tmp)
            work = private / "work"
            shutil.copytree(folder, work, ignore=shutil.ignore_patterns("*.ipynb", grading_sandbox.REPORT))
            (private / "job.json").write_text(json.dumps(dict(cells=cells, token=token)))
            mode = grading_sandbox.sandbox_mode(self.settings["sandbox"])
            script = Path(__file__).with_name("grading_verify.py").read_text()
            cmd = [sys.executable, "-c", script, str(private / "job.json")]
            cmd = grading_sandbox.sandboxed(
                cmd, mode, work, private, int(limits["memory_mb"]), int(limits["file_mb"])
            )
            env = None if mode == "bwrap" else {**os.environ, "HOME": str(private), "MPLBACKEND": "agg"}
            try:
                run = subprocess.run(
                    cmd,
                    cwd=work,
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=float(limits["notebook_seconds"]),
                )
            except subprocess.TimeoutExpired:
                return {
                    "checks": {},
                    "error": f"the re-run passed the time limit of {limits['notebook_seconds']} s",
                }
        lines = [line for line in run.stdout.splitlines() if line.startswith(token)]
        if not lines:
            return {"checks": {}, "error": f"the re-run stopped (exit status {run.returncode})"}
        return json.loads(lines[-1][len(token) :])

    def _repenalise(self, gb, assignment: str, student: str) -> None:
        """Recompute a late penalty after scores changed (the late policy of the settings)."""
        sub = gb.find_submission(assignment, student)
        for nb in sub.notebooks:
            if not nb.late_submission_penalty:
                continue
            late, score = sub.total_seconds_late, nb.score
            penalty = {
                "none": 0.0,
                "zero": score,
                "per_day": min(score, score * self.settings["per_day"] * math.ceil(late / 86400)),
            }[self.settings["late"]]
            nb.late_submission_penalty = penalty
        gb.db.commit()

    def feedback(self, names: list[str] | None = None) -> tuple[list[Path], list[str]]:
        """HTML feedback ``feedback/<student>/<assignment>/*.html`` for every autograded submission.

        Carries on past a failing notebook; an assignment without autograded submissions is
        skipped. Returns the feedback files and one line per problem.
        """
        api, problems = self.api(), []
        for nb in self.assignments(names):
            students = sorted(p.parent.name for p in (self.folder / "autograded").glob(f"*/{nb.stem}"))
            if not students:
                print(f"{nb.stem}: no autograded submission yet; no feedback")
            for student in students:
                try:
                    result = api.generate_feedback(nb.stem, student)
                    if not result.get("success"):
                        problems.append(f"{nb.stem} {student}: {_last_error(result.get('log', ''))}")
                except Exception as err:
                    problems.append(f"{nb.stem} {student}: {type(err).__name__}: {err}")
        pages = sorted((self.folder / "feedback").glob("*/*/*.html"))
        mathjax = self.root / "_vendor" / "mathjax"
        if not (mathjax / "tex-chtml.js").is_file():
            print(
                f"feedback: no {mathjax}/tex-chtml.js (run `make vendor`); the pages load MathJax from a CDN"
            )
        for page in pages:
            (page.parent / grading_sandbox.REPORT).unlink(missing_ok=True)  # the grader's, not the student's
            if (mathjax / "tex-chtml.js").is_file():
                _offline_math(page, mathjax)
        return pages, problems

    def grades(self) -> list[dict]:
        """One row per student, assignment and task (check cell), plus a row per late penalty.

        ``flags`` lists, separated by ``;``: ``needs_manual_grade`` (nbgrader could not score the
        cell), ``missing_cell`` (the student deleted the check cell; it was put back and graded),
        ``edited_locked_cell`` (the student edited it, or the import cell; autograde restored it),
        ``failed_clean_rerun`` (passed in the kernel, failed in the fresh re-run: scored 0),
        ``late`` (submitted after the due date), ``not_submitted``, and for every task of a
        submission the sandbox's ``unsandboxed``, ``timed_out``, ``time_limit``, ``output_cut``,
        ``kernel_died``, ``rebinds_course_lib``, ``patches_library`` (NumPy, torch, builtins) and
        ``rerun_failed`` (see :func:`report_flags`).
        """
        rows = []
        with self.gradebook() as gb:
            for assignment in sorted(gb.assignments, key=lambda a: a.name):
                order = self._task_order(assignment.name)
                for student in sorted(gb.students, key=lambda s: s.id):
                    try:
                        sub = gb.find_submission(assignment.name, student.id)
                    except Exception:  # nbgrader.api.MissingEntry: nothing submitted
                        for nb in assignment.notebooks:
                            for cell in sorted(nb.grade_cells, key=lambda c: order.get(c.name, 0)):
                                rows.append(
                                    dict(
                                        student=student.id,
                                        assignment=assignment.name,
                                        task=cell.name,
                                        points=0.0,
                                        max_points=cell.max_score,
                                        flags="not_submitted",
                                    )
                                )
                        continue
                    late = sub.total_seconds_late > 0
                    report = self.report(assignment.name, student.id)
                    common = report_flags(report)
                    failed_rerun = set((report.get("rerun") or {}).get("failed", []))
                    for nb in sub.notebooks:
                        present = self._grade_ids(student.id, assignment.name, nb.name)
                        edited = self._edited_locked(student.id, assignment.name, nb.name)
                        for grade in sorted(nb.grades, key=lambda g: order.get(g.name, 0)):
                            flags = [
                                f
                                for f, on in (
                                    ("needs_manual_grade", grade.needs_manual_grade),
                                    ("missing_cell", grade.name not in present),
                                    ("edited_locked_cell", grade.name in edited or "" in edited),
                                    ("failed_clean_rerun", grade.name in failed_rerun),
                                    ("late", late),
                                )
                                if on
                            ] + common
                            rows.append(
                                dict(
                                    student=student.id,
                                    assignment=assignment.name,
                                    task=grade.name,
                                    points=_points(grade.score),
                                    max_points=_points(grade.max_score),
                                    flags=";".join(flags),
                                )
                            )
                        if nb.late_submission_penalty:
                            rows.append(
                                dict(
                                    student=student.id,
                                    assignment=assignment.name,
                                    task="late penalty",
                                    points=_points(-nb.late_submission_penalty),
                                    max_points=0.0,
                                    flags="late",
                                )
                            )
        return rows

    def _edited_locked(self, student: str, assignment: str, notebook: str) -> set[str]:
        """Locked cells whose submitted source differs from the release (autograde restored them).

        The grade ids of the edited check cells; ``""`` stands for an edited locked cell that is
        no check (e.g. the import cell), which flags every task.
        """
        path = self.folder / "submitted" / student / assignment / f"{notebook}.ipynb"
        release = self.folder / "release" / assignment / f"{notebook}.ipynb"
        if not (path.is_file() and release.is_file()):
            return set()
        locked = {
            c.metadata["nbgrader"]["grade_id"]: c
            for c in nbformat.read(release, as_version=4).cells
            if c.metadata.get("nbgrader", {}).get("locked")
        }
        edited = set()
        for cell in nbformat.read(path, as_version=4).cells:
            gid = cell.metadata.get("nbgrader", {}).get("grade_id")
            if gid in locked and cell.source.strip() != locked[gid].source.strip():
                edited.add(gid if locked[gid].metadata["nbgrader"].get("grade") else "")
        return edited

    def _task_order(self, assignment: str) -> dict[str, int]:
        path = self.folder / "source" / assignment / f"{assignment}.ipynb"
        cells = nbformat.read(path, as_version=4).cells if path.is_file() else []
        return {c.metadata.get("nbgrader", {}).get("grade_id"): i for i, c in enumerate(cells)}

    def _grade_ids(self, student: str, assignment: str, notebook: str) -> set[str]:
        path = self.folder / "submitted" / student / assignment / f"{notebook}.ipynb"
        if not path.is_file():
            return set()
        nb = nbformat.read(path, as_version=4)
        return {c.metadata.get("nbgrader", {}).get("grade_id") for c in nb.cells}

    def export(self, out: Path | None = None) -> Path:
        """Write :meth:`grades` as CSV (default ``grades.csv`` in the course folder)."""
        out = Path(out or self.folder / "grades.csv")
        with open(out, "w", newline="") as f:
            writer = csv.DictWriter(f, ["student", "assignment", "task", "points", "max_points", "flags"])
            writer.writeheader()
            writer.writerows(self.grades())
        return out


def report_flags(report: dict) -> list[str]:
    """The ``grades.csv`` flags that a sandbox report gives every task of its submission."""
    rerun = report.get("rerun") or {}
    return [
        flag
        for flag, on in (
            ("unsandboxed", report.get("sandbox") == "none"),
            ("timed_out", report.get("timed_out")),
            ("time_limit", report.get("not_run")),
            ("output_cut", report.get("truncated")),
            ("kernel_died", report.get("kernel_died")),
            ("rebinds_course_lib", [r for r in rerun.get("rebinds", []) if _ours(r)]),
            ("patches_library", [r for r in rerun.get("rebinds", []) if not _ours(r)]),
            ("rerun_failed", rerun.get("error")),
        )
        if on
    ]


def _ours(name: str) -> bool:
    """Whether a rebound name (grading_verify.py) is course_lib's or a name the import cell bound."""
    return name.startswith(("course_lib", "sys.modules['course_lib")) or "." not in name


def _explain(report: dict) -> str:
    """The sandbox report in words, for the autograde summary."""
    rerun = report.get("rerun") or {}
    parts = []
    if report.get("timed_out"):
        parts.append(f"timed out: {', '.join(report['timed_out'])}")
    if report.get("not_run"):
        parts.append(f"not run (notebook time limit): {len(report['not_run'])} cell(s)")
    if report.get("truncated"):
        parts.append(f"output cut: {', '.join(report['truncated'][:3])}")
    if report.get("kernel_died"):
        parts.append(f"kernel died: {report['kernel_died'][:80]}")
    if rerun.get("failed"):
        parts.append(f"failed the clean re-run: {', '.join(rerun['failed'])}")
    if rerun.get("rebinds"):
        parts.append(f"rebinds {', '.join(rerun['rebinds'][:3])}")
    if rerun.get("error"):
        parts.append(f"re-run: {rerun['error']}")
    return "; ".join(parts)


def _print_autograde(course: Course, results: dict) -> int:
    """One line per submission (score, seconds, flags), then the failures; the exit status."""
    failures = []
    with course.gradebook() as gb:
        for (name, student), r in results.items():
            if not r["ok"]:
                failures.append(f"{name} {student}: {r['error']}")
                print(f"{name:24s} {student:12s}   autograde FAILED  {r['seconds']:4.0f} s")
                continue
            s = gb.find_submission(name, student)
            flag = f"  late, penalty {s.late_submission_penalty:g}" if s.late_submission_penalty else ""
            flag += "  NEEDS MANUAL GRADE" if s.needs_manual_grade else ""
            flag += "  [" + _explain(r["report"]) + "]" if _explain(r["report"]) else ""
            print(f"{name:24s} {student:12s} {s.score:5.1f} / {s.max_score:.1f}  {r['seconds']:4.0f} s{flag}")
    sandboxes = {r["report"].get("sandbox") for r in results.values() if r["report"]}
    if "none" in sandboxes:
        print(
            "WARNING: some submissions ran WITHOUT a sandbox (flag unsandboxed in grades.csv).",
            file=sys.stderr,
        )
    if failures:
        print(f"autograde failed for {len(failures)} submission(s):\n" + "\n".join(failures), file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    """Command line; see the module docstring."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    parser.add_argument("--course", type=Path, help="nbgrader course folder (default: instructor/)")
    parser.add_argument("--settings", type=Path, help="settings file (default: tools/grading.yml)")
    sub = parser.add_subparsers(dest="step", required=True)
    for step, text in (
        ("release", "generate the student version, set due dates, release to the exchange"),
        ("autograde", "autograde every collected submission"),
        ("feedback", "generate HTML feedback"),
    ):
        sub.add_parser(step, help=text).add_argument("assignments", nargs="*", help="default: all")
    collect = sub.add_parser("collect", help="copy submissions (or nbgrader collect from the exchange)")
    collect.add_argument(
        "submissions",
        nargs="?",
        type=Path,
        help="folder SUBMISSIONS/<student id>/<assignment>.ipynb (default: the exchange)",
    )
    collect.add_argument("-a", "--assignment", action="append", dest="assignments", help="default: all")
    export = sub.add_parser("export", help="per-task grades as CSV")
    export.add_argument("--out", type=Path, help="default: grades.csv in the course folder")
    args = parser.parse_args(argv)
    course = Course(folder=args.course, settings_file=args.settings)
    if args.step == "release":
        for nb in course.release(args.assignments or None):
            print(f"released {nb.relative_to(course.folder.parent)}")
        print(f"hand out {course.folder / 'release'} (or make student for the whole student edition)")
    elif args.step == "collect":
        try:
            paths = course.collect(args.submissions, args.assignments)
        except CollectError as err:
            print("\n".join(err.problems), file=sys.stderr)
            print(f"collect: {len(err.problems)} problem(s); nothing was collected.", file=sys.stderr)
            return 1
        print(f"collected {len(paths)} notebook(s) into {course.folder / 'submitted'}")
    elif args.step == "autograde":
        return _print_autograde(course, course.autograde(args.assignments or None))
    elif args.step == "feedback":
        paths, problems = course.feedback(args.assignments or None)
        print(f"{len(paths)} feedback file(s) in {course.folder / 'feedback'}")
        if problems:
            print(
                f"feedback failed for {len(problems)} submission(s):\n" + "\n".join(problems), file=sys.stderr
            )
            return 1
    else:
        print(f"grades: {course.export(args.out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
