"""The built site's size against the course's budget, and the report that ``make build`` prints.

``sphinx.ext.duration`` (loaded by ``_config.yml``) times the reading of every page and logs
the five slowest.  This extension adds what it does not do:

1. **The site's size against its budget.**  At the end of an HTML build it measures the output
   folder and warns when it is over ``site_budget_mib`` (default 45, the budget of COURSE.md),
   so that ``jupyter-book build -W`` fails on an oversized site.
2. **One report file.**  It writes the size and the slowest pages to read (sphinx.ext.duration's
   own measurements) to ``<outdir>/../build_report.txt`` (``_build/build_report.txt``), which
   ``make build`` prints last.
"""

from __future__ import annotations

import os
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.errors import ExtensionError
from sphinx.util import logging

logger = logging.getLogger(__name__)

REPORT_NAME = "build_report.txt"
#: COURSE.md: the built site <= 45 MB (MiB, as the size is reported).
SITE_BUDGET_MIB = 45.0


def site_size(outdir: Path) -> tuple[int, int, int]:
    """Return ``(total_bytes, n_files, n_html_pages)`` of the built site under ``outdir``.

    Parameters
    ----------
    outdir : pathlib.Path
        The HTML output folder (``_build/html``).

    Raises
    ------
    FileNotFoundError
        If ``outdir`` does not exist (the build wrote nothing).
    """
    outdir = Path(outdir)
    if not outdir.is_dir():
        raise FileNotFoundError(f"{outdir} does not exist: build the book before measuring it.")
    total = n_files = n_pages = 0
    for folder, _, files in os.walk(outdir):
        for name in files:
            total += (Path(folder) / name).stat().st_size
            n_files += 1
            n_pages += name.endswith(".html")
    return total, n_files, n_pages


def over_budget(total: int, budget_mib: float) -> str | None:
    """The warning for a site of ``total`` bytes over ``budget_mib`` MiB, or None within it.

    Raises
    ------
    ValueError
        If ``budget_mib`` is not a positive number (the ``site_budget_mib`` setting).
    """
    if isinstance(budget_mib, bool) or not isinstance(budget_mib, (int, float)) or not budget_mib > 0:
        raise ValueError(
            f"site_budget_mib must be a positive number of MiB (COURSE.md: 45), got {budget_mib!r}: "
            "set it under sphinx: config: in _config.yml."
        )
    if total <= budget_mib * 2**20:
        return None
    return (
        f"the built site is {total / 2**20:.1f} MiB, over its budget of {budget_mib:g} MiB: "
        "look for large figures or frames (du -a _build/html | sort -n | tail)."
    )


def format_report(
    total: int, n_files: int, n_pages: int, read_seconds: dict[str, float], top: int = 3
) -> str:
    """One human-readable summary: size of the site and the ``top`` slowest documents to read.

    Parameters
    ----------
    total, n_files, n_pages : int
        As returned by :func:`site_size`.
    read_seconds : dict
        ``docname -> seconds`` to read it (sphinx.ext.duration's ``reading_durations``).
    top : int
        How many of the slowest documents to list (at least 1).

    Raises
    ------
    ValueError
        If ``top`` is smaller than 1.
    """
    if top < 1:
        raise ValueError(f"top must be at least 1 (how many slow pages to list), got {top}.")
    lines = [f"Built site: {total / 2**20:.1f} MiB in {n_files} files ({n_pages} HTML pages)."]
    ranked = sorted(read_seconds.items(), key=lambda kv: -kv[1])[:top]
    if ranked:
        name, seconds = ranked[0]
        lines.append(f"Slowest page to read: {name} ({seconds:.2f} s).")
        others = ", ".join(f"{n} {s:.2f} s" for n, s in ranked[1:])
        if others:
            lines.append(f"Next slowest: {others}.")
    else:
        lines.append("Slowest page to read: no page was read in this build.")
    return "\n".join(lines)


def _reading_durations(app: Sphinx) -> dict[str, float]:
    try:
        return dict(app.env.get_domain("duration").reading_durations)
    except ExtensionError:  # sphinx.ext.duration is not loaded
        return {}


def _build_finished(app: Sphinx, exception: Exception | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    outdir = Path(app.outdir)
    total, n_files, n_pages = site_size(outdir)
    report = format_report(total, n_files, n_pages, _reading_durations(app))
    (outdir.parent / REPORT_NAME).write_text(report + "\n", encoding="utf-8")
    for line in report.splitlines():
        logger.info("build_report: %s", line)
    warning = over_budget(total, app.config.site_budget_mib)
    if warning:
        logger.warning("build_report: %s", warning)


def setup(app: Sphinx) -> dict:
    app.add_config_value("site_budget_mib", SITE_BUDGET_MIB, "html", types=(int, float))
    # After Jupyter Book's own build-finished handlers (e.g. the index.html redirect).
    app.connect("build-finished", _build_finished, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
