"""Fixtures for browser checks of the built book: a local HTTP server and headless Chromium.

The book must already be built (``make build``); the checks never touch the network:
the server listens on 127.0.0.1 and Chromium runs with background networking off.
"""
from __future__ import annotations

import functools
import http.server
import os
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BOOK = Path(os.environ.get("COURSE_BOOK_HTML", ROOT / "_build" / "html"))
SCREENSHOTS = ROOT / "screenshots"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "chrome")
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
    "--hide-scrollbars", "--disable-default-apps", "--mute-audio",
]


def find_chromium() -> str | None:
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.fixture(scope="session")
def chromium() -> str:
    path = find_chromium()
    if path is None:
        pytest.skip("no chromium binary on PATH (install Debian's `chromium` package to run the browser checks)")
    return path


@pytest.fixture(scope="session")
def book() -> Path:
    if not (BOOK / "index.html").is_file():
        pytest.fail(f"{BOOK}/index.html not found: build the book first with `make build`.")
    return BOOK


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass


@pytest.fixture(scope="session")
def server(book: Path):
    handler = functools.partial(_QuietHandler, directory=str(book))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def run_chromium(chromium: str, url: str, *args: str, budget_ms: int = 15000, timeout: float = 90) -> str:
    """Load ``url`` headless, let its scripts run for ``budget_ms`` of virtual time, return stdout."""
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        cmd = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
               f"--virtual-time-budget={budget_ms}", *args, url]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"chromium exited {proc.returncode}: {proc.stderr[-2000:]}")
    return proc.stdout


@pytest.fixture(scope="session")
def render(chromium, server):
    """``render(page)`` → the DOM of ``page`` after MathJax and the widget manager ran."""
    cache: dict[str, str] = {}

    def _render(page: str) -> str:
        if page not in cache:
            cache[page] = run_chromium(chromium, f"{server}/{page}", "--dump-dom")
        return cache[page]

    return _render


@pytest.fixture(scope="session")
def screenshot(chromium, server):
    """``screenshot(page, name)`` writes ``screenshots/<name>.png`` (git-ignored) and returns its path."""
    SCREENSHOTS.mkdir(exist_ok=True)

    def _shot(page: str, name: str, size: str = "1280,2400") -> Path:
        out = SCREENSHOTS / f"{name}.png"
        run_chromium(chromium, f"{server}/{page}", f"--screenshot={out}", f"--window-size={size}")
        return out

    return _shot


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Print the counts of the whole-book browser run (written by test_book.py) after the results."""
    import json

    summary_file = SCREENSHOTS / "summary.json"
    started = getattr(config, "_book_session_started", None)
    if not summary_file.is_file() or started is None or summary_file.stat().st_mtime < started:
        return
    s = json.loads(summary_file.read_text(encoding="utf-8"))
    terminalreporter.write_sep("-", "built book in the browser")
    terminalreporter.write_line(
        f"{s['pages']} pages, {s['equations_typeset']} formulas typeset ({s['display_equations']} displayed), "
        f"{s['widgets_rendered']} widgets rendered, {s['internal_links']} internal links checked, "
        f"{s['requests']} requests (all local); slowest page {s['slowest_page']} "
        f"({s['slowest_page_s']:.2f} s to typeset and render); browser run {s['browser_total_s']:.0f} s; "
        f"screenshots in {SCREENSHOTS}/")


def pytest_sessionstart(session):
    import time

    session.config._book_session_started = time.time()
