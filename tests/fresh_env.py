"""A fresh virtual environment with the course's pinned third-party packages but without course_lib.

Used by the wheel smoke test (tests/test_package.py) and the simulated Colab (tests/test_colab.py).
Building it is offline and takes a second: ``python -m venv --without-pip``, then one ``.pth`` file
that adds a *shadow* of this interpreter's site-packages -- a folder of symlinks to every entry
except the course's own (its editable install, dist-info and finder) -- with ``site.addsitedir``,
so the shadow's ``.pth`` files run as they would in ``.venv``. ``pip`` comes from the shadow and
installs into the new environment's own site-packages, which come first on ``sys.path``.
(``--system-site-packages`` would not do: ``.venv`` holds course_lib in editable mode.)
"""

from __future__ import annotations

import os
import subprocess
import sysconfig
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Names (lower-case, ``-`` as ``_``) of site-packages entries that belong to the course itself.
COURSE_MARKERS = ("course_lib", "bayesian_dnn_course")


def _is_course_entry(entry: Path) -> bool:
    name = entry.name.lower().replace("-", "_")
    if any(m in name for m in COURSE_MARKERS):
        return True
    if entry.suffix == ".pth" and entry.is_file():
        return str(ROOT) in entry.read_text(errors="replace")
    return False


def shadow_site_packages(dest: Path) -> tuple[Path, list[str]]:
    """Symlink every entry of this interpreter's site-packages into ``dest``, except the course's.

    Returns
    -------
    tuple
        ``dest`` and the names left out (the course's own entries).
    """
    site = Path(sysconfig.get_paths()["purelib"])
    dest.mkdir(parents=True)
    left_out = []
    for entry in sorted(site.iterdir()):
        if _is_course_entry(entry):
            left_out.append(entry.name)
            continue
        (dest / entry.name).symlink_to(entry)
    return dest, left_out


def fresh_venv(where: Path) -> Path:
    """Create a virtual environment in ``where/venv`` that has the pinned packages but no course_lib.

    Parameters
    ----------
    where : Path
        An empty folder (e.g. pytest's ``tmp_path``).

    Returns
    -------
    Path
        The environment's ``python``.
    """
    env_dir = where / "venv"
    venv.EnvBuilder(with_pip=False, symlinks=True).create(env_dir)
    python = env_dir / "bin" / "python"
    own_site = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    shadow, _ = shadow_site_packages(where / "pinned-site-packages")
    (own_site / "_course_pinned_packages.pth").write_text(f"import site; site.addsitedir({str(shadow)!r})\n")
    return python


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without anything that would put the repository on ``sys.path``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")
    }
    env["PYTHONNOUSERSITE"] = "1"
    env.update(extra)
    return env
