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
import shutil
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import student_edition  # noqa: E402

ROOT = student_edition.ROOT
# nbgrader's own use of its SQLAlchemy session warns on every autograde; the warning is not ours.
warnings.filterwarnings("ignore", message=".*not in session.*")
LATE_METHODS = ("none", "zero", "per_day")
#: What a cell re-added by ``OverwriteCells.add_missing_cells`` starts with.
MISSING_NOTE = "was missing from the submission"

CONFIG_TEMPLATE = '''\
# Written by tools/grading.py from {settings}; edit that file, not this one.
# No absolute path: the course folder is the folder holding this file, wherever it is moved.
import math
import os

from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
from nbgrader.plugins import LateSubmissionPlugin
from nbgrader.preprocessors import ClearHiddenTests, GetGrades, NbGraderPreprocessor

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


class PerDayPenalty(LateSubmissionPlugin):
    """Late policy 'per_day': lose {per_day:g} of the score per started day late (at most all of it)."""

    def late_submission_penalty(self, student_id, score, total_seconds_late):
        return min(score, score * {per_day!r} * math.ceil(total_seconds_late / 86400))


{late}


class ShortTracebacks(NbGraderPreprocessor):  # enabled (nbconvert's base class is not)
    """In feedback, a failed check cell shows its message only: a traceback would quote hidden tests."""

    def preprocess_cell(self, cell, resources, index):
        if cell.get("metadata", {{}}).get("nbgrader", {{}}).get("grade"):
            for out in cell.get("outputs", []):
                if out.get("output_type") == "error":
                    out["traceback"] = [f"{{out['ename']}}: {{out['evalue']}}"]
        return cell, resources


# Feedback shows the graded notebook without the hidden tests (autograde ran them; the release
# never had them) and without the tracebacks of check cells.
c.GenerateFeedback.preprocessors = [GetGrades, ClearHiddenTests, ShortTracebacks, CSSHTMLHeaderPreprocessor]
'''


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
        return {
            "course_id": course_id,
            "exchange_root": raw.get("exchange_root") or "",
            "timeout": int(raw.get("timeout", 900)),
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
        path = self.folder / "nbgrader_config.py"
        path.write_text(
            CONFIG_TEMPLATE.format(
                settings=self.settings_file.name,
                course_id=s["course_id"],
                exchange=exchange,
                timeout=s["timeout"],
                per_day=s["per_day"],
                late=late,
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
        ``<assignment>/<assignment>.ipynb``); the submission time is the student folder's
        ``timestamp.txt`` (e.g. ``2027-01-15 22:10:00 UTC``) if present, else the notebook's
        modification time. Without ``submissions``, nbgrader collects from the exchange.

        Raises
        ------
        ValueError
            If ``submissions`` is missing, holds no student folder, or a notebook's name matches no
            assignment.
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
        submissions = Path(submissions)
        students = sorted(p for p in submissions.iterdir() if p.is_dir()) if submissions.is_dir() else []
        if not students:
            raise ValueError(
                f"{submissions}: no student folders; lay it out as "
                "SUBMISSIONS/<student id>/<assignment>.ipynb."
            )
        collected = []
        for student in students:
            for nb in sorted(student.rglob("*.ipynb")):
                if ".ipynb_checkpoints" in nb.parts:
                    continue
                if nb.stem not in known:
                    raise ValueError(
                        f"{nb}: not an assignment notebook; name it after its assignment "
                        f"({', '.join(sorted(known))}) plus .ipynb."
                    )
                stamp = student / "timestamp.txt"
                when = (
                    stamp.read_text().strip()
                    if stamp.is_file()
                    else dt.datetime.fromtimestamp(nb.stat().st_mtime, dt.timezone.utc).strftime(
                        "%Y-%m-%d %H:%M:%S.%f UTC"
                    )
                )
                target = self.folder / "submitted" / student.name / nb.stem
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy2(nb, target / nb.name)
                (target / "timestamp.txt").write_text(when)
                collected.append(target / nb.name)
        return collected

    def autograde(self, names: list[str] | None = None) -> dict[tuple[str, str], tuple[bool, float]]:
        """Autograde every collected submission: ``{(assignment, student): (ok, seconds)}``."""
        api, results = self.api(), {}
        for nb in self.assignments(names):
            for folder in sorted((self.folder / "submitted").glob(f"*/{nb.stem}")):
                start = time.perf_counter()
                result = api.autograde(nb.stem, folder.parent.name, force=True, create=True)
                results[nb.stem, folder.parent.name] = (
                    bool(result.get("success")),
                    time.perf_counter() - start,
                )
                if not result.get("success"):
                    print(f"autograde {nb.stem} {folder.parent.name} FAILED:\n{result.get('log', '')}")
        return results

    def feedback(self, names: list[str] | None = None) -> list[Path]:
        """``generate_feedback`` for each assignment: ``feedback/<student>/<assignment>/*.html``."""
        api = self.api()
        for nb in self.assignments(names):
            result = api.generate_feedback(nb.stem)
            if not result.get("success"):
                raise RuntimeError(f"generate_feedback {nb.stem} failed:\n{result.get('log', '')}")
        return sorted((self.folder / "feedback").glob("*/*/*.html"))

    def grades(self) -> list[dict]:
        """One row per student, assignment and task (check cell), plus a row per late penalty.

        ``flags`` lists, separated by ``;``: ``needs_manual_grade`` (nbgrader could not score the
        cell), ``missing_cell`` (the student deleted the check cell; it was put back and graded),
        ``late`` (submitted after the due date) and ``not_submitted``.
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
                    for nb in sub.notebooks:
                        present = self._grade_ids(student.id, assignment.name, nb.name)
                        for grade in sorted(nb.grades, key=lambda g: order.get(g.name, 0)):
                            flags = [
                                f
                                for f, on in (
                                    ("needs_manual_grade", grade.needs_manual_grade),
                                    ("missing_cell", grade.name not in present),
                                    ("late", late),
                                )
                                if on
                            ]
                            rows.append(
                                dict(
                                    student=student.id,
                                    assignment=assignment.name,
                                    task=grade.name,
                                    points=float(grade.score or 0.0),
                                    max_points=grade.max_score,
                                    flags=";".join(flags),
                                )
                            )
                        if nb.late_submission_penalty:
                            rows.append(
                                dict(
                                    student=student.id,
                                    assignment=assignment.name,
                                    task="late penalty",
                                    points=-nb.late_submission_penalty,
                                    max_points=0.0,
                                    flags="late",
                                )
                            )
        return rows

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
        paths = course.collect(args.submissions, args.assignments)
        print(f"collected {len(paths)} notebook(s) into {course.folder / 'submitted'}")
    elif args.step == "autograde":
        results = course.autograde(args.assignments or None)
        with course.gradebook() as gb:
            for (name, student), (ok, seconds) in results.items():
                s = gb.find_submission(name, student)
                flag = f"  late, penalty {s.late_submission_penalty:g}" if s.late_submission_penalty else ""
                flag += "" if ok else "  (autograde failed, see the log above)"
                flag += "  NEEDS MANUAL GRADE" if s.needs_manual_grade else ""
                print(f"{name:24s} {student:12s} {s.score:5.1f} / {s.max_score:.1f}  {seconds:4.0f} s{flag}")
        if not all(ok for ok, _ in results.values()):
            return 1
    elif args.step == "feedback":
        paths = course.feedback(args.assignments or None)
        print(f"{len(paths)} feedback file(s) in {course.folder / 'feedback'}")
    else:
        print(f"grades: {course.export(args.out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
