"""The one browser client of the course's checks: Playwright for Python driving Debian's Chromium.

Chromium is never downloaded (``playwright install`` cannot work offline and is not needed): the
executable comes from ``$COURSE_CHROMIUM`` or the first of :data:`CHROMIUM_NAMES` on ``PATH``
(GitHub's runners ship Google Chrome; Debian's package is ``chromium``). It is started with a host
resolver rule that maps every host but 127.0.0.1 to "not found", so a request that tries to leave
the machine is still *recorded* (the tests fail on it) but cannot reach the network.

:class:`Recorder` listens to one page and keeps what it did: every request, every failed request
(a network failure or an HTTP status >= 400), every console error and uncaught exception.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path

#: How long a page may take to typeset its math and render its widgets.
PAGE_TIMEOUT_S = 30
#: The page checks (math typeset, widgets rendered, images, alt text), run in each page.
CHECK_JS = (Path(__file__).parent / "page_check.js").read_text(encoding="utf-8")

#: Names tried on PATH when $COURSE_CHROMIUM is not set.
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
#: Flags for a quiet, offline, reproducible headless Chromium (a fresh profile per launch).
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-quic",
    "--mute-audio",
    "--hide-scrollbars",
    "--metrics-recording-only",
    "--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication",
    # Nothing but the local servers resolves: no request can leave the machine.
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
]


def find_chromium() -> str | None:
    """The browser executable: ``$COURSE_CHROMIUM`` if set, else the first Chromium on PATH.

    Raises
    ------
    FileNotFoundError
        ``$COURSE_CHROMIUM`` is set but names no executable file.
    """
    env = os.environ.get("COURSE_CHROMIUM", "").strip()
    if env:
        path = shutil.which(env)
        if path is None:
            raise FileNotFoundError(
                f"COURSE_CHROMIUM={env!r} is not an executable; point it at a "
                f"Chromium or Chrome binary, or unset it to search PATH for {CHROMIUM_NAMES}."
            )
        return path
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def launch_args(executable: str) -> dict:
    """Keyword arguments of ``playwright.chromium.launch`` for ``executable``."""
    return {"executable_path": executable, "headless": True, "args": list(FLAGS)}


@dataclass
class Recorder:
    """What one page did since :meth:`clear`: requests, failed requests, console errors."""

    requests: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)

    @classmethod
    def attach(cls, page) -> "Recorder":
        rec = cls()
        page.on("request", lambda r: rec.requests.append(r.url))
        # ERR_ABORTED is a request the page itself cancelled (e.g. the favicon of the index.html
        # redirect, left behind when the page moves on): not a failure, as with the DevTools client.
        page.on(
            "requestfailed",
            lambda r: r.failure != "net::ERR_ABORTED" and rec.failed_requests.append(f"{r.failure} {r.url}"),
        )
        page.on(
            "response", lambda r: r.status >= 400 and rec.failed_requests.append(f"HTTP {r.status} {r.url}")
        )
        page.on(
            "console",
            lambda m: (
                m.type in ("error", "assert") and rec.console_errors.append(f"console.{m.type}: {m.text}")
            ),
        )
        page.on("pageerror", lambda e: rec.console_errors.append(f"uncaught exception: {e}"))
        return rec

    def clear(self) -> None:
        self.requests.clear()
        self.failed_requests.clear()
        self.console_errors.clear()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    overrides: dict[str, bytes] = {}

    def do_GET(self):  # noqa: N802 (http.server's name)
        body = self.overrides.get(self.path.split("?")[0])
        if body is None:
            return super().do_GET()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):  # keep pytest output clean
        pass


def serve(directory: Path, overrides: dict[str, str] | None = None):
    """Start a quiet HTTP server for ``directory`` on 127.0.0.1; returns (server, origin).

    ``overrides`` maps a URL path (``"/chapters/x.html"``) to an HTML page served from memory
    instead of the disk: a tampered copy of a page, for a negative control.
    """
    pages = {path: html.encode("utf-8") for path, html in (overrides or {}).items()}
    handler = functools.partial(
        type("_Handler", (_QuietHandler,), {"overrides": pages}), directory=str(directory)
    )
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}"


def run_checks(page) -> dict:
    """Wait for MathJax and the widget manager in ``page``; return :data:`CHECK_JS`'s findings."""
    return page.evaluate(f"({CHECK_JS})({PAGE_TIMEOUT_S * 1000})")


def open_page(browser, url: str, width: int = 1280, height: int = 900, recorder=None):
    """A new page at ``url`` once MathJax and the widget manager ran; returns (page, findings).

    ``recorder(page)`` is called before navigation (to listen to the page's events).
    """
    page = browser.new_page(viewport={"width": width, "height": height})
    if recorder is not None:
        recorder(page)
    page.goto(url, wait_until="load", timeout=PAGE_TIMEOUT_S * 1000)
    return page, run_checks(page)
