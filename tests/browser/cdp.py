"""A minimal Chrome DevTools Protocol client: one headless Chromium, one tab, every event recorded.

Used by ``test_book.py`` to load each page of the built book and record what the page did:
every network request it made (``Network.requestWillBeSent``), every console error and
uncaught exception, and the state of the DOM after MathJax and the widget manager ran.

Chromium is started with ``--remote-debugging-port=0`` (it picks a free port and writes it to
``DevToolsActivePort`` in its profile) and with a host-resolver rule that maps every host but
127.0.0.1 to "not found": a request that tries to leave the machine is still *recorded* (the
test fails on it), but it cannot reach the network.
"""
from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import websocket  # websocket-client

#: Flags for a quiet, offline, reproducible headless Chromium.
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--disable-extensions", "--disable-domain-reliability",
    "--disable-client-side-phishing-detection", "--no-first-run", "--no-default-browser-check",
    "--disable-quic", "--mute-audio", "--hide-scrollbars", "--metrics-recording-only",
    "--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication",
    # Nothing but the local book server resolves: no request can leave the machine.
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
]


class CDPError(RuntimeError):
    """Chromium or the protocol failed (not a finding about the page)."""


@dataclass
class PageEvents:
    """What one page load did, as recorded from protocol events."""

    requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)


class Chromium:
    """Headless Chromium driven over the DevTools Protocol (one tab, synchronous).

    Parameters
    ----------
    binary : str
        Path of the chromium executable.
    width, height : int
        Viewport size in CSS pixels (screenshots have this size).
    timeout : float
        Seconds to wait for Chromium to start and for any single protocol reply.
    """

    def __init__(self, binary: str, width: int = 1280, height: int = 900, timeout: float = 60) -> None:
        self.timeout = timeout
        self._profile = tempfile.TemporaryDirectory(prefix="chromium-cdp-")
        profile = Path(self._profile.name)
        self._stderr = tempfile.TemporaryFile()  # a file, not a pipe: chromium can never block on it
        self._proc = subprocess.Popen(
            [binary, *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0",
             f"--window-size={width},{height}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=self._stderr,
            start_new_session=True,  # its own process group: close() stops every chromium process
        )
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while not (port_file.is_file() and port_file.read_text().count("\n") >= 1):
            if self._proc.poll() is not None:
                self._stderr.seek(0)
                err = self._stderr.read().decode(errors="replace")[-2000:]
                raise CDPError(f"chromium exited with {self._proc.returncode} before it listened: {err}")
            if time.monotonic() > deadline:
                self.close()
                raise CDPError(f"chromium did not open its DevTools port within {timeout:.0f} s")
            time.sleep(0.05)
        port = int(port_file.read_text().splitlines()[0])
        no_proxy = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with no_proxy.open(f"http://127.0.0.1:{port}/json/list", timeout=timeout) as resp:
            targets = json.load(resp)
        pages = [t for t in targets if t.get("type") == "page"]
        if not pages:
            self.close()
            raise CDPError(f"chromium has no page target to attach to: {targets}")
        self._ws = websocket.create_connection(pages[0]["webSocketDebuggerUrl"], timeout=timeout,
                                               suppress_origin=True, enable_multithread=False)
        self._next_id = 0
        self._events: list[dict[str, Any]] = []
        for domain in ("Page", "Runtime", "Network", "Log"):
            self.send(f"{domain}.enable")
        self.send("Network.setCacheDisabled", cacheDisabled=False)
        self.send("Emulation.setDeviceMetricsOverride", width=width, height=height,
                  deviceScaleFactor=1, mobile=False)

    # -- protocol ---------------------------------------------------------------------------------
    def send(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one command and return its result; events arriving meanwhile are buffered."""
        self._next_id += 1
        msg_id = self._next_id
        self._ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        deadline = time.monotonic() + self.timeout
        while True:
            msg = self._recv(deadline, f"reply to {method}")
            if msg.get("id") == msg_id:
                if "error" in msg:
                    raise CDPError(f"{method} failed: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                self._events.append(msg)

    def _recv(self, deadline: float, what: str) -> dict[str, Any]:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise CDPError(f"no {what} within {self.timeout:.0f} s")
        self._ws.settimeout(remaining)
        try:
            return json.loads(self._ws.recv())
        except websocket.WebSocketTimeoutException as exc:
            raise CDPError(f"no {what} within {self.timeout:.0f} s") from exc

    def wait_event(self, method: str, timeout: float) -> dict[str, Any]:
        """Wait for the next event called ``method`` (buffered ones count)."""
        for i, ev in enumerate(self._events):
            if ev["method"] == method:
                return self._events.pop(i)
        deadline = time.monotonic() + timeout
        while True:
            msg = self._recv(deadline, f"{method} event")
            if msg.get("method") == method:
                return msg
            if "method" in msg:
                self._events.append(msg)

    def drain(self, seconds: float = 0.0) -> None:
        """Read events for ``seconds`` more (late console errors, late requests)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self._ws.settimeout(max(deadline - time.monotonic(), 0.01))
            try:
                msg = json.loads(self._ws.recv())
            except websocket.WebSocketTimeoutException:
                break
            if "method" in msg:
                self._events.append(msg)

    # -- page helpers -----------------------------------------------------------------------------
    def evaluate(self, expression: str, timeout: float | None = None) -> Any:
        """Evaluate JavaScript (awaiting a returned promise) and return its JSON value."""
        saved = self.timeout
        if timeout is not None:
            self.timeout = timeout
        try:
            res = self.send("Runtime.evaluate", expression=expression, awaitPromise=True,
                            returnByValue=True, timeout=int(self.timeout * 1000))
        finally:
            self.timeout = saved
        if "exceptionDetails" in res:
            raise CDPError(f"evaluating a check script failed: {res['exceptionDetails']}")
        return res["result"].get("value")

    def load(self, url: str, timeout: float = 30) -> None:
        """Navigate to ``url`` and wait for its load event; starts a fresh event record."""
        self._events.clear()
        res = self.send("Page.navigate", url=url)
        if res.get("errorText"):
            raise CDPError(f"navigating to {url} failed: {res['errorText']}")
        self.wait_event("Page.loadEventFired", timeout)

    def events(self) -> PageEvents:
        """Summarize the buffered events since the last :meth:`load`."""
        out = PageEvents()
        for ev in self._events:
            method, p = ev["method"], ev.get("params", {})
            if method == "Network.requestWillBeSent":
                out.requests.append(p["request"]["url"])
            elif method == "Network.loadingFailed" and not p.get("canceled"):
                out.failed_requests.append(f"{p.get('errorText')} (request {p.get('requestId')})")
            elif method == "Network.responseReceived" and p["response"]["status"] >= 400:
                out.failed_requests.append(f"HTTP {p['response']['status']} {p['response']['url']}")
            elif method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                text = " ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", []))
                out.console_errors.append(f"console.{p['type']}: {text}")
            elif method == "Runtime.exceptionThrown":
                d = p["exceptionDetails"]
                desc = d.get("exception", {}).get("description") or d.get("text")
                out.console_errors.append(f"uncaught exception: {desc} at {d.get('url', '')}:{d.get('lineNumber')}")
            elif method == "Log.entryAdded" and p["entry"]["level"] == "error":
                e = p["entry"]
                out.console_errors.append(f"log ({e.get('source')}): {e.get('text')} {e.get('url', '')}".strip())
        return out

    def screenshot(self, path: Path) -> Path:
        """Write a PNG of the current viewport to ``path``."""
        data = self.send("Page.captureScreenshot", format="png")["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        """Stop Chromium and remove its temporary profile."""
        ws = getattr(self, "_ws", None)
        if ws is not None:
            try:
                ws.close()
            except Exception:  # noqa: BLE001 - closing a dead socket is fine
                pass
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self._proc.pid, sig)  # the group this class started, nothing else
            except ProcessLookupError:
                break
            try:
                self._proc.wait(timeout=10)
                break
            except subprocess.TimeoutExpired:
                continue
        self._profile.cleanup()
        self._stderr.close()

    def __enter__(self) -> "Chromium":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
