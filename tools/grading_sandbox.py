"""Autograde's sandbox: each submission's kernel in bubblewrap, with limits on time, memory, output.

``tools/grading.py`` copies this file into the nbgrader course folder (beside ``nbgrader_config.py``,
which imports it), so that ``nbgrader autograde`` run by hand is sandboxed the same way.

* :class:`SandboxKernelManager` starts the kernel under ``bwrap`` (Debian's ``bubblewrap``): new
  user, pid, network, IPC, UTS and cgroup namespaces (no network at all, not even loopback), an
  empty file system into which only the interpreter, the virtual environment, the course library
  and the MNIST folder are mounted read-only, and one writable folder: a throw-away copy of the
  submission's own folder (the kernel's working directory). The kernel talks to the grader over
  Unix sockets in a private folder (``transport = ipc``). Under ``prlimit`` it gets at most
  ``memory_mb`` of address space and writes files of at most ``max_file_mb``. Where bwrap cannot
  run (no user namespaces, e.g. some CI runners) the kernel runs unsandboxed, with the same limits
  and a loud warning, unless ``sandbox: bwrap`` requires it.
* :class:`LimitedExecute` is nbgrader's ``Execute`` with a wall-time limit per notebook (a cell
  never gets more than the time left; the cells after the limit are not run, and fail), a limit on
  the bytes of output a notebook keeps (the rest is dropped and a note says so) and a report,
  ``autograde_report.json`` beside the autograded notebook, of what was cut, which
  ``tools/grading.py`` prints and turns into flags of ``grades.csv``.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
import warnings
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import run_sync
from nbformat.notebooknode import NotebookNode
from nbgrader.preprocessors import Execute
from traitlets import Enum, Float, Integer

REPORT = "autograde_report.json"
#: The environment a sandboxed kernel gets (nothing else of the grader's is passed on).
KEEP_ENV = ("LANG", "LC_ALL", "TZ", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
_WARNED: set[str] = set()


def bwrap_problem() -> str | None:
    """Why bubblewrap cannot sandbox a kernel here (``None`` when it can)."""
    exe = shutil.which("bwrap")
    if exe is None:
        return "bwrap is not installed (Debian: apt-get install bubblewrap)"
    probe = [exe, "--unshare-all", "--die-with-parent", "--ro-bind", "/", "/", "--proc", "/proc", "true"]
    try:
        run = subprocess.run(probe, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"bwrap failed to start: {err}"
    if run.returncode != 0:
        return f"bwrap cannot create namespaces here ({run.stderr.strip() or run.returncode})"
    return None


def warn_once(text: str) -> None:
    """Print ``text`` loudly on stderr once per process (and as a Python warning)."""
    if text not in _WARNED:
        _WARNED.add(text)
        bar = "!" * 78
        print(f"{bar}\nWARNING: {text}\n{bar}", file=sys.stderr, flush=True)
        warnings.warn(text, RuntimeWarning, stacklevel=2)


def readonly_paths() -> list[Path]:
    """What a kernel needs to read: the system, the interpreter, the venv, course_lib, MNIST."""
    paths = [Path(p) for p in ("/usr", "/etc/ld.so.cache", "/etc/localtime", "/etc/fonts")]
    paths += [Path(sys.base_prefix), Path(sys.prefix), Path(sysconfig.get_paths()["purelib"])]
    spec = importlib.util.find_spec("course_lib")
    if spec and spec.submodule_search_locations:
        paths += [Path(p) for p in spec.submodule_search_locations]
    paths += [p.parent for p in mnist_dirs()]
    return [p.resolve() for p in paths if p.exists()]


def mnist_dirs() -> list[Path]:
    """The MNIST folders course_lib would search (the kernel reads them, never writes)."""
    spec = importlib.util.find_spec("course_lib")
    found = []
    if os.environ.get("COURSE_DATA_DIR"):
        found.append(Path(os.environ["COURSE_DATA_DIR"]).expanduser() / "mnist")
    if spec and spec.submodule_search_locations:
        found.append(Path(next(iter(spec.submodule_search_locations))).parent / "data" / "mnist")
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    found.append(Path(cache).expanduser() / "course_lib" / "mnist")
    return [p for p in found if p.is_dir()]


def bwrap_args(workdir: Path, private: Path, tmp_mb: int) -> list[str]:
    """The bwrap command line (up to the command) for a kernel working in ``workdir``."""
    args = ["bwrap", "--unshare-all", "--die-with-parent", "--clearenv", "--proc", "/proc", "--dev", "/dev"]
    for link, target in (
        ("/bin", "usr/bin"),
        ("/lib", "usr/lib"),
        ("/lib64", "usr/lib64"),
        ("/sbin", "usr/sbin"),
    ):
        if Path(link).is_symlink():
            args += ["--symlink", target, link]
        elif Path(link).is_dir():
            args += ["--ro-bind", link, link]
    args += ["--size", str(tmp_mb << 20), "--tmpfs", "/tmp"]
    for path in readonly_paths():
        args += ["--ro-bind", str(path), str(path)]
    args += [
        "--bind",
        str(private),
        str(private),
        "--bind",
        str(workdir),
        str(workdir),
        "--chdir",
        str(workdir),
    ]
    env = {k: os.environ[k] for k in KEEP_ENV if k in os.environ}
    env.update(HOME="/tmp", MPLCONFIGDIR="/tmp/matplotlib", MPLBACKEND="agg", PATH="/usr/bin:/bin")
    data = mnist_dirs()
    if data:
        env["COURSE_DATA_DIR"] = str(data[0].parent.resolve())
    for key, value in sorted(env.items()):
        args += ["--setenv", key, value]
    return args


def sandbox_mode(setting: str) -> str:
    """``"bwrap"`` or ``"none"`` for the setting ``auto``/``bwrap``/``none`` (warns when ``none``).

    Raises
    ------
    RuntimeError
        If the setting is ``bwrap`` and bwrap cannot run here.
    """
    if setting == "none":
        warn_once("autograde runs submissions WITHOUT a sandbox (sandbox: none in tools/grading.yml).")
        return "none"
    problem = bwrap_problem()
    if problem and setting == "bwrap":
        raise RuntimeError(f"sandbox: bwrap is required by tools/grading.yml, but {problem}.")
    if problem:
        warn_once(
            f"autograde runs submissions WITHOUT a sandbox: {problem}. A submission can read and "
            "write everything this user can (instructor/source, the gradebook, other students' "
            "work) and reach the network. Grade untrusted submissions only where bwrap runs "
            "(sandbox: bwrap in tools/grading.yml makes that a requirement)."
        )
        return "none"
    return "bwrap"


def sandboxed(
    cmd: list[str], mode: str, workdir: Path, private: Path, memory_mb: int, file_mb: int, tmp_mb: int = 256
) -> list[str]:
    """``cmd`` under prlimit's limits, inside bwrap when ``mode`` is ``"bwrap"``."""
    limits = ["prlimit", f"--as={memory_mb << 20}", f"--fsize={file_mb << 20}", "--core=0", "--"]
    if mode == "bwrap":
        return bwrap_args(workdir, private, tmp_mb) + ["--"] + limits + list(cmd)
    return limits + list(cmd)


class SandboxKernelManager(AsyncKernelManager):
    """A kernel manager that starts each kernel in its own bubblewrap sandbox (see the module)."""

    sandbox = Enum(["auto", "bwrap", "none"], "auto", help="bwrap, or none, or auto (bwrap if it runs)").tag(
        config=True
    )
    memory_mb = Integer(6144, help="address space of the kernel, MiB (prlimit --as)").tag(config=True)
    max_file_mb = Integer(64, help="largest file the kernel may write, MiB (prlimit --fsize)").tag(
        config=True
    )
    tmp_mb = Integer(256, help="size of the kernel's private /tmp, MiB").tag(config=True)

    used = "none"  # what the last kernel ran under: "bwrap" or "none"

    async def start_kernel(self, **kw):  # noqa: D102 (see AsyncKernelManager)
        self._private = Path(tempfile.mkdtemp(prefix="nbgrader-kernel-"))
        cwd = Path(kw.get("cwd") or os.getcwd()).resolve()
        self._workdir = self._working_copy(cwd)
        kw["cwd"] = str(self._workdir)
        self.mode = self._mode()
        kw.setdefault("stdout", subprocess.DEVNULL)  # the kernel's own banner and log
        kw.setdefault("stderr", subprocess.DEVNULL)
        if self.mode == "bwrap":
            # a signal to the process group would stop bwrap itself: interrupt by message
            self.kernel_spec.interrupt_mode = "message"
            self.transport = "ipc"
            self.connection_file = str(self._private / "kernel.json")
            self.ip = str(self._private / "kernel-ipc")
        else:
            kw["env"] = {**os.environ, **kw.get("env", {}), "HOME": str(self._private)}
        SandboxKernelManager.used = self.mode
        return await super().start_kernel(**kw)

    def _working_copy(self, folder: Path) -> Path:
        """A throw-away copy of the submission's folder: the kernel writes there, nowhere else."""
        copy = self._private / "work"
        # no notebook: the autograded one holds the restored check cells, hidden tests included
        shutil.copytree(folder, copy, symlinks=True, ignore=shutil.ignore_patterns("*.ipynb", REPORT))
        return copy

    def _mode(self) -> str:
        return sandbox_mode(self.sandbox)

    def format_kernel_cmd(self, extra_arguments=None):  # noqa: D102
        cmd = super().format_kernel_cmd(extra_arguments)
        return sandboxed(
            cmd, self.mode, self._workdir, self._private, self.memory_mb, self.max_file_mb, self.tmp_mb
        )

    async def cleanup_resources(self, restart: bool = False) -> None:  # noqa: D102
        await super().cleanup_resources(restart=restart)
        if not restart and getattr(self, "_private", None):
            shutil.rmtree(self._private, ignore_errors=True)


def _error(ename: str, evalue: str) -> NotebookNode:
    return NotebookNode(output_type="error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])


def _size(msg: dict) -> int:
    content = msg.get("content", {})
    if "text" in content:
        return len(content["text"])
    return len(json.dumps(content.get("data", content), default=str))


class LimitedExecute(Execute):
    """nbgrader's ``Execute`` in the sandbox, with a time limit per notebook and an output limit."""

    notebook_timeout = Float(1200, help="seconds the whole notebook may run (kernel start included)").tag(
        config=True
    )
    max_output_kb = Integer(
        1024, help="KiB of output a cell keeps (ungraded cells: four times that in all); the rest is dropped"
    ).tag(config=True)

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("kernel_manager_class", SandboxKernelManager)
        super().__init__(*args, **kwargs)

    def preprocess(self, nb, resources=None, km=None):  # noqa: D102
        self._deadline = time.monotonic() + self.notebook_timeout
        self._report = {
            "sandbox": None,
            "timed_out": [],
            "not_run": [],
            "truncated": [],
            "kernel_died": False,
        }
        self._bytes, self._cell_timeout, self._index = 0, self.timeout, 0
        folder = Path((resources or {}).get("metadata", {}).get("path") or ".")
        (folder / REPORT).unlink(missing_ok=True)
        try:
            return super().preprocess(nb, resources, km)
        except Exception as err:  # the kernel died (memory) or could not start: the rest is not run
            self._report["kernel_died"] = f"{type(err).__name__}: {str(err).splitlines()[0]}"
            for cell in nb.cells[self._index :]:
                if cell.cell_type == "code" and cell.source.strip():
                    cell.outputs = [
                        _error("KernelDied", f"the notebook's kernel stopped: {type(err).__name__}")
                    ]
            return nb, resources
        finally:
            self._report["sandbox"] = SandboxKernelManager.used
            (folder / REPORT).write_text(json.dumps(self._report, indent=1))

    async def async_execute_cell(self, cell, cell_index, execution_count=None, store_history=True):  # noqa: D102
        self._index = cell_index
        if cell.cell_type != "code" or not cell.source.strip():
            return await super().async_execute_cell(cell, cell_index, execution_count, store_history)
        left = self._deadline - time.monotonic()
        name = cell.metadata.get("nbgrader", {}).get("grade_id") or f"cell {cell_index}"
        if left <= 0:
            cell.outputs = [
                _error(
                    "NotebookTimeout",
                    f"not run: the notebook's time limit of {self.notebook_timeout:g} s was reached",
                )
            ]
            self._report["not_run"].append(name)
            return cell
        self.timeout = max(1, min(self._cell_timeout or math.inf, math.ceil(left)))
        cell = await super().async_execute_cell(cell, cell_index, execution_count, store_history)
        if any(o.get("ename") == "CellTimeoutError" for o in cell.get("outputs", [])):
            self._report["timed_out"].append(name)
            for o in cell.outputs:
                if o.get("ename") == "CellTimeoutError":
                    o["evalue"] = f"the cell ran past its time limit of {self.timeout} s and was interrupted"
                    o["traceback"] = [f"CellTimeoutError: {o['evalue']}"]
        if self._cut_here:
            self._report["truncated"].append(name)
            cell.outputs.append(
                NotebookNode(
                    output_type="stream",
                    name="stdout",
                    text=f"\n[output cut: this cell, or the notebook, reached its output limit ({self.max_output_kb} KiB a cell)]\n",
                )
            )
            self._cut_here = False
        return cell

    execute_cell = run_sync(async_execute_cell)  # nbconvert calls the synchronous name
    _cut_here, _cell_of_bytes, _cell_bytes = False, -1, 0

    def output(self, outs, msg, display_id, cell_index):  # noqa: D102
        """Keep at most ``max_output_kb`` a cell, and four times that for all ungraded cells."""
        if msg.get("msg_type") != "error":
            size = _size(msg)
            if cell_index != self._cell_of_bytes:
                self._cell_of_bytes, self._cell_bytes = cell_index, 0
            graded = self.nb.cells[cell_index].metadata.get("nbgrader", {}).get("grade")
            cap = self.max_output_kb << 10
            if self._cell_bytes + size > cap or (not graded and self._bytes + size > 4 * cap):
                self._cut_here = True
                return None
            self._cell_bytes += size
            self._bytes += 0 if graded else size
        return super().output(outs, msg, display_id, cell_index)
