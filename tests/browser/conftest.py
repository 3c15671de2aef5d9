"""Fixtures for browser checks: a local HTTP server over the built book and headless Chromium.

One maintained client drives the browser: Playwright for Python (``pytest-playwright`` provides
the session's ``browser``; ``browser.py`` says which executable and flags). The book must
already be built (``make build``); nothing touches the network: the servers listen on 127.0.0.1
and Chromium resolves no other host.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from browser import find_chromium, launch_args, open_page, serve

ROOT = Path(__file__).resolve().parents[2]
BOOK = Path(os.environ.get("COURSE_BOOK_HTML", ROOT / "_build" / "html"))
SCREENSHOTS = ROOT / "screenshots"


@pytest.fixture(scope="session")
def chromium() -> str:
    path = find_chromium()
    if path is None:
        pytest.skip(
            "no Chromium found (install Debian's `chromium` package, or set COURSE_CHROMIUM "
            "to a Chromium/Chrome executable) to run the browser checks"
        )
    return path


@pytest.fixture(scope="session")
def browser_type_launch_args(chromium) -> dict:
    """pytest-playwright's launch arguments: our Chromium and offline flags (no downloaded browser)."""
    return launch_args(chromium)


@pytest.fixture(scope="session")
def book() -> Path:
    if not (BOOK / "index.html").is_file():
        pytest.fail(f"{BOOK}/index.html not found: build the book first with `make build`.")
    return BOOK


@pytest.fixture(scope="session")
def server(book: Path):
    httpd, origin = serve(book)
    yield origin
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="session")
def render(browser, server):
    """``render(page)`` → the DOM of ``page`` after MathJax and the widget manager ran."""
    cache: dict[str, str] = {}

    def _render(page: str) -> str:
        if page not in cache:
            tab, _ = open_page(browser, f"{server}/{page}")
            cache[page] = tab.content()
            tab.close()
        return cache[page]

    return _render


@pytest.fixture(scope="session")
def screenshot(browser, server):
    """``screenshot(page, name)`` writes ``screenshots/<name>.png`` (git-ignored) and returns its path."""
    SCREENSHOTS.mkdir(exist_ok=True)

    def _shot(page: str, name: str, size: str = "1280,2400") -> Path:
        width, height = (int(v) for v in size.split(","))
        out = SCREENSHOTS / f"{name}.png"
        tab, _ = open_page(browser, f"{server}/{page}", width, height)
        tab.screenshot(path=str(out))
        tab.close()
        return out

    return _shot


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Print the counts of the browser runs (written by test_book.py, test_explorables.py, test_jupyterlab.py)."""
    started = getattr(config, "_book_session_started", None)
    if started is None:
        return

    def fresh(name: str) -> dict | None:
        f = SCREENSHOTS / name
        if not f.is_file() or f.stat().st_mtime < started:
            return None
        return json.loads(f.read_text(encoding="utf-8"))

    s = fresh("summary.json")
    if s:
        terminalreporter.write_sep("-", "built book in the browser")
        terminalreporter.write_line(
            f"{s['pages']} pages, {s['equations_typeset']} formulas typeset ({s['display_equations']} displayed), "
            f"{s['widgets_rendered']} widgets rendered, {s['internal_links']} internal links checked, "
            f"{s['requests']} requests (all local); slowest page {s['slowest_page']} "
            f"({s['slowest_page_s']:.2f} s to typeset and render); browser run {s['browser_total_s']:.0f} s; "
            f"screenshots in {SCREENSHOTS}/"
        )
    e = fresh("explorables.json")
    if e:
        terminalreporter.write_sep("-", "explorables in the built book (no kernel)")
        terminalreporter.write_line(
            f"{e['explorables']} explorables on {e['pages']} pages: {e['sliders']} sliders moved "
            f"({e['keyboard_moves']} keyboard moves, {e['drags']} pointer drags, {e['plays']} plays), "
            f"{e['frames_verified']} frames verified against the stored frame for the slider's value"
        )
    j = fresh("jupyterlab.json")
    if j:
        terminalreporter.write_sep("-", "live JupyterLab")
        terminalreporter.write_line(
            f"{j['notebook']}: {j['cells_run']} cells run in {j['run_s']:.0f} s; explorable moved "
            f"({j['explorable']}); kernel widget changed ({j['kernel_widget']}); "
            f"{j['markdown_cells']} markdown cells without raw MyST; citations look like: {j['citation_sample']!r}"
        )


def pytest_sessionstart(session):
    session.config._book_session_started = time.time()
