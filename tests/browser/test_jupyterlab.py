"""Chapter 1 in a live JupyterLab: MyST renders, every cell runs, an explorable and a kernel widget respond.

CI starts ``jupyter lab`` on 127.0.0.1 (no token, a throw-away copy of the notebook so the stored
outputs are never touched, settings and runtime files in a temporary folder), opens the chapter in
Playwright's Chromium, and

* asserts that the markdown cells show no raw MyST: no ``{exercise}``, ``:label:``, ``{cite``,
  ``{eq}``, ``{term}``, ``{prf:`` or ``{solution`` (``jupyterlab-myst`` renders them);
* runs all cells (JupyterLab's own ``notebook:run-all-cells`` command) and asserts that every code
  cell ran without an error output;
* moves the explorable's slider (End) and asserts that the visible frame changes;
* changes a dropdown of the kernel-driven widget (``.course-kernel-widget``) and asserts that its
  figure, redrawn by the kernel, changes;
* takes screenshots (``screenshots/lab-*.png``) and writes ``screenshots/jupyterlab.json``.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from browser import Recorder

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "screenshots"
NOTEBOOK = "01_probability.ipynb"
RAW_MYST = ("{exercise}", ":label:", "{cite", "{eq}", "{term}", "{prf:", "{solution", "{glue")
START_TIMEOUT_S = 90
RUN_TIMEOUT_S = 300

VISIBLE_SRC_JS = """(box) => Array.from(box.querySelectorAll('img.course-explorable-frame'))
  .filter((img) => img.offsetParent !== null).map((img) => img.src)"""


#: The rendered text of every markdown cell (its hidden editor removed).
MARKDOWN_JS = """() => Array.from(document.querySelectorAll('.jp-MarkdownCell')).map((cell) => {
  const copy = cell.cloneNode(true);
  copy.querySelectorAll('.cm-editor, .jp-InputArea-editor, .jp-InputPrompt').forEach((e) => e.remove());
  return copy.textContent; })"""
#: How the chapter's citations look once rendered: the sentence with {cite:p}`bishop2006` (§1.2).
CITE_JS = """() => { for (const cell of document.querySelectorAll('.jp-MarkdownCell')) {
  const copy = cell.cloneNode(true);
  copy.querySelectorAll('.cm-editor, .jp-InputArea-editor').forEach((e) => e.remove());
  const t = copy.textContent, i = t.indexOf('for a longer refresher');
  if (i >= 0) return t.slice(Math.max(0, i - 70), i).trim(); } return null; }"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(chromium):
    """A JupyterLab server over a temporary copy of the chapter; yields its URL."""
    work = Path(tempfile.mkdtemp(prefix="course-lab-"))
    shutil.copy(ROOT / "chapters" / NOTEBOOK, work / NOTEBOOK)
    settings = work / ".settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    # Render every cell (no windowing), so that the whole notebook is in the page to be read.
    (settings / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    port = _free_port()
    env = {
        **os.environ,
        "JUPYTER_RUNTIME_DIR": str(work / ".runtime"),
        "JUPYTER_CONFIG_DIR": str(work / ".config"),
        "JUPYTERLAB_WORKSPACES_DIR": str(work / ".ws"),
    }
    cmd = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        "--IdentityProvider.token=",
        "--ServerApp.password=",
        "--ServerApp.disable_check_xsrf=True",
        "--ServerApp.allow_root=True",
        f"--ServerApp.root_dir={work}",
        "--LabApp.expose_app_in_browser=True",
        f"--LabApp.user_settings_dir={work / '.settings'}",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.news_url=None",
    ]
    log = open(work / "lab.log", "w")
    proc = subprocess.Popen(cmd, cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT_S
    try:
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/status", timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    pytest.fail(f"jupyter lab did not start: {(work / 'lab.log').read_text()[-3000:]}")
                time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="module")
def notebook(browser, lab):
    """The chapter open in JupyterLab with every cell run; yields (page, facts, recorder)."""
    SCREENSHOTS.mkdir(exist_ok=True)
    (SCREENSHOTS / "jupyterlab.json.part").unlink(missing_ok=True)
    tab = browser.new_page(viewport={"width": 1400, "height": 1000})
    events = Recorder.attach(tab)
    tab.goto(f"{lab}/lab/tree/{NOTEBOOK}", wait_until="load", timeout=START_TIMEOUT_S * 1000)
    tab.wait_for_function(
        "() => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;"
        " return w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel"
        " && w.content && w.content.widgets.length > 0; }",
        timeout=START_TIMEOUT_S * 1000,
    )
    markdown, deadline = None, time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:  # MyST renders asynchronously: wait until the text settles
        tab.wait_for_timeout(700)
        now = tab.evaluate(MARKDOWN_JS)
        if now == markdown and now and "Exercise" in " ".join(now):
            break
        markdown = now
    tab.screenshot(path=str(SCREENSHOTS / "lab-opened.png"))
    t0 = time.perf_counter()
    tab.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    tab.wait_for_function(
        "() => { const w = window.jupyterapp.shell.currentWidget; const cells = w.content.model.cells;"
        " let ran = 0, code = 0; for (let i = 0; i < cells.length; i++) { const c = cells.get(i);"
        " if (c.type === 'code') { code++; if (c.executionCount !== null) ran++; } }"
        " return code > 0 && ran === code && w.sessionContext.session.kernel.status === 'idle'"
        " && !Array.from(document.querySelectorAll('.jp-InputPrompt')).some((p) => p.textContent.includes('[*]')); }",
        timeout=RUN_TIMEOUT_S * 1000,
        polling=500,
    )
    run_s = time.perf_counter() - t0
    tab.wait_for_timeout(1500)  # widget views render after the last reply
    facts = tab.evaluate(
        "() => { const cells = window.jupyterapp.shell.currentWidget.content.model.cells; const out = [];"
        " for (let i = 0; i < cells.length; i++) { const c = cells.get(i); if (c.type !== 'code') continue;"
        " const errs = []; for (let j = 0; j < c.outputs.length; j++) { const o = c.outputs.get(j);"
        " if (o.type === 'error') errs.push(JSON.stringify(o.toJSON()).slice(0, 300)); }"
        " out.push({count: c.executionCount, errors: errs}); } return out; }"
    )
    cite = tab.evaluate(CITE_JS)
    yield tab, {"markdown": markdown, "cells": facts, "run_s": run_s, "cite": cite}, events
    tab.close()


def test_markdown_shows_no_raw_myst(notebook):
    _, facts, _ = notebook
    md = facts["markdown"]
    assert len(md) >= 10, f"only {len(md)} rendered markdown cells: did JupyterLab open the chapter?"
    raw = [(i, tok) for i, text in enumerate(md) for tok in RAW_MYST if tok in text]
    assert not raw, (
        f"raw MyST visible in rendered markdown (is jupyterlab-myst installed and enabled?): {raw[:10]}"
    )
    joined = " ".join(md)
    assert "Exercise" in joined, "no rendered exercise title in the chapter's markdown"


def test_every_cell_runs_without_error(notebook):
    _, facts, _ = notebook
    cells = facts["cells"]
    assert cells and all(c["count"] is not None for c in cells), "some code cells did not run"
    errors = [c["errors"] for c in cells if c["errors"]]
    assert not errors, f"cells raised in JupyterLab: {errors[:3]}"


def test_explorable_responds_in_jupyterlab(notebook):
    tab, _, _ = notebook
    box = tab.locator(".course-explorable").first
    box.scroll_into_view_if_needed()
    before = box.evaluate(VISIBLE_SRC_JS)
    assert len(before) == 1, f"expected one visible frame, found {len(before)}"
    handle = box.locator(".noUi-handle").first
    start = handle.get_attribute("aria-valuenow")
    handle.focus()
    tab.keyboard.press("End" if start in ("0", "0.0") else "Home")
    tab.wait_for_timeout(300)
    after = box.evaluate(VISIBLE_SRC_JS)
    assert handle.get_attribute("aria-valuenow") != start, "the slider did not move"
    assert len(after) == 1 and after != before, "moving the slider did not change the frame in JupyterLab"
    box.screenshot(path=str(SCREENSHOTS / "lab-explorable-moved.png"))
    _record("explorable", f"slider {start} -> {handle.get_attribute('aria-valuenow')}, frame changed")


def test_kernel_widget_redraws_in_jupyterlab(notebook):
    tab, _, _ = notebook
    box = tab.locator(".course-kernel-widget").first
    assert box.count() == 1, "chapter 1 has no kernel-driven widget (.course-kernel-widget)"
    box.scroll_into_view_if_needed()
    figure = lambda: box.evaluate(  # noqa: E731
        "(b) => Array.from(b.querySelectorAll('.jp-OutputArea-output img, .widget-output img')).map((i) => i.src)"
    )
    before = figure()
    assert before, "the kernel widget shows no figure"
    # Observe the sprinkler too (on): p(rain | grass wet, sprinkler on), the chapter's explaining away.
    role = box.locator(".widget-dropdown").filter(has=tab.locator("label", has_text="sprinkler"))
    assert role.count() == 1, "no 'sprinkler' role menu in the kernel widget"
    role.locator("select").select_option(label="observed")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and figure() == before:
        tab.wait_for_timeout(200)
    changed = "sprinkler set to 'observed': figure redrawn by the kernel" if figure() != before else None
    assert changed, "choosing another role in the kernel widget did not redraw its figure"
    box.screenshot(path=str(SCREENSHOTS / "lab-kernel-widget-changed.png"))
    _record("kernel_widget", changed)


def test_no_request_leaves_the_machine_and_summary(notebook, lab):
    tab, facts, events = notebook
    outside = [
        u
        for u in events.requests
        if not u.startswith((lab + "/", "data:", "blob:", "about:", "ws://127.0.0.1"))
    ]
    assert not outside, f"JupyterLab requested URLs outside the machine: {outside[:5]}"
    tab.screenshot(path=str(SCREENSHOTS / "lab-after.png"))
    _record("notebook", NOTEBOOK)
    _record("cells_run", len(facts["cells"]))
    _record("run_s", facts["run_s"])
    _record("markdown_cells", len(facts["markdown"]))
    _record("citation_sample", facts["cite"])
    data = json.loads((SCREENSHOTS / "jupyterlab.json.part").read_text())
    data.setdefault("explorable", "not checked")
    data.setdefault("kernel_widget", "not checked")
    (SCREENSHOTS / "jupyterlab.json").write_text(json.dumps(data, indent=1))


def _record(key: str, value) -> None:
    part = SCREENSHOTS / "jupyterlab.json.part"
    data = json.loads(part.read_text()) if part.is_file() else {}
    data[key] = value
    part.write_text(json.dumps(data))
