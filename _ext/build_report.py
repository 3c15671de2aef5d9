"""Report the built site's total size and the slowest pages to build.

For every document Sphinx times the *read* phase (parsing the notebook or Markdown into a
doctree: from ``source-read`` to ``doctree-read``, as ``sphinx.ext.duration`` does) and the
*write* phase (from ``doctree-resolved`` to ``html-page-context``: resolving references and
translating to HTML).  Read times are kept in the environment, so an incremental build
still knows pages it did not re-read.  At the end of an HTML build it logs one summary and
writes it to ``<outdir>/../build_report.txt`` (``_build/build_report.txt``), which
``make build`` prints last.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment
from sphinx.util import logging

logger = logging.getLogger(__name__)

REPORT_NAME = "build_report.txt"


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


def format_report(total: int, n_files: int, n_pages: int, timings: dict[str, tuple[float, float]],
                  top: int = 3) -> str:
    """One human-readable summary: size of the site and the ``top`` slowest documents.

    Parameters
    ----------
    total, n_files, n_pages : int
        As returned by :func:`site_size`.
    timings : dict
        ``docname -> (read_seconds, write_seconds)``.
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
    ranked = sorted(timings.items(), key=lambda kv: -(kv[1][0] + kv[1][1]))[:top]
    if ranked:
        name, (read, write) = ranked[0]
        lines.append(f"Slowest page to build: {name} ({read + write:.2f} s = read {read:.2f} s + write {write:.2f} s).")
        others = ", ".join(f"{n} {r + w:.2f} s" for n, (r, w) in ranked[1:])
        if others:
            lines.append(f"Next slowest: {others}.")
    else:
        lines.append("Slowest page to build: no page was read or written in this build.")
    return "\n".join(lines)


def _env(app: Sphinx) -> BuildEnvironment:
    env = app.env
    if not hasattr(env, "build_report_read"):
        env.build_report_read = {}
    return env


def _source_read(app: Sphinx, docname: str, source: list[str]) -> None:
    app._build_report_started = time.perf_counter()  # type: ignore[attr-defined]


def _doctree_read(app: Sphinx, doctree: Any) -> None:
    started = getattr(app, "_build_report_started", None)
    if started is not None:
        _env(app).build_report_read[app.env.docname] = time.perf_counter() - started
        app._build_report_started = None  # type: ignore[attr-defined]


def _purge(app: Sphinx, env: BuildEnvironment, docname: str) -> None:
    getattr(env, "build_report_read", {}).pop(docname, None)


def _merge(app: Sphinx, env: BuildEnvironment, docnames: set[str], other: BuildEnvironment) -> None:
    _env(app).build_report_read.update(getattr(other, "build_report_read", {}))


def _doctree_resolved(app: Sphinx, doctree: Any, docname: str) -> None:
    app._build_report_writing = (docname, time.perf_counter())  # type: ignore[attr-defined]


def _page_context(app: Sphinx, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    writing = getattr(app, "_build_report_writing", None)
    if writing and writing[0] == pagename:
        app._build_report_write[pagename] = time.perf_counter() - writing[1]  # type: ignore[attr-defined]
        app._build_report_writing = None  # type: ignore[attr-defined]


def _build_finished(app: Sphinx, exception: Exception | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    outdir = Path(app.outdir)
    read = getattr(app.env, "build_report_read", {})
    write = app._build_report_write  # type: ignore[attr-defined]
    timings = {d: (read.get(d, 0.0), write.get(d, 0.0)) for d in set(read) | set(write)}
    report = format_report(*site_size(outdir), timings)
    (outdir.parent / REPORT_NAME).write_text(report + "\n", encoding="utf-8")
    for line in report.splitlines():
        logger.info("build_report: %s", line)


def setup(app: Sphinx) -> dict:
    app._build_report_write = {}  # type: ignore[attr-defined]
    app.connect("source-read", _source_read)
    app.connect("doctree-read", _doctree_read)
    app.connect("env-purge-doc", _purge)
    app.connect("env-merge-info", _merge)
    app.connect("doctree-resolved", _doctree_resolved)
    app.connect("html-page-context", _page_context, priority=900)
    # After Jupyter Book's own build-finished handlers (e.g. the index.html redirect).
    app.connect("build-finished", _build_finished, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "env_version": 1}
