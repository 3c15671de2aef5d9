"""The browser and crawl checks of test_book.py fail when they should.

A tiny hand-made "book" with one problem of each kind is loaded by the same machinery
(Playwright's Chromium with ``browser.Recorder``, ``page_check.js``, ``crawl``), and every problem
must be reported:
a request to another host, a JavaScript exception, a console error, untypeset TeX, an
unrendered widget view, an image without alt text, a broken link and a missing anchor.
"""
from __future__ import annotations

import json

import pytest

from browser import CHECK_JS, Recorder, serve
from crawl import crawl

BROKEN_PAGE = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>broken</title>
<link rel="icon" href="data:,">
<script src="https://cdn.example.invalid/lib.js"></script>
</head><body><article>
<p id="top">Math left raw: <span class="math notranslate nohighlight">\\(x^2\\)</span></p>
<div class="cell_output"><img src="pixel.png" alt="pixel.png"></div>
<script type="application/vnd.jupyter.widget-view+json">{"version_major": 2, "version_minor": 0, "model_id": "abc"}</script>
<a href="missing.html">a missing page</a> <a href="#nowhere">a missing anchor</a>
<a href="#top">a good anchor</a> <a href="other.html#sec">a good link</a>
<a href="other.html#eq">(2.1)</a>
</article>
<script>console.error("deliberate console error"); throw new Error("deliberate exception");</script>
</body></html>"""

OTHER_PAGE = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>other</title>
<link rel="icon" href="data:,"></head><body>
<h1 id="sec">Section</h1><div class="math" id="eq"><span class="eqno">(2.2)</span></div>
</body></html>"""

# A 1x1 PNG.
PIXEL = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000100e221bc330000000049454e44ae426082")


@pytest.fixture(scope="module")
def broken_site(tmp_path_factory):
    root = tmp_path_factory.mktemp("broken-book")
    (root / "index.html").write_text(BROKEN_PAGE, encoding="utf-8")
    (root / "other.html").write_text(OTHER_PAGE, encoding="utf-8")
    (root / "pixel.png").write_bytes(PIXEL)
    return root


@pytest.fixture(scope="module")
def broken_visit(browser, broken_site):
    httpd, origin = serve(broken_site)
    try:
        tab = browser.new_page()
        events = Recorder.attach(tab)
        tab.goto(f"{origin}/index.html", wait_until="load", timeout=30_000)
        check = tab.evaluate(f"({CHECK_JS})(3000)")
        tab.wait_for_timeout(300)
        tab.close()
    finally:
        httpd.shutdown()
        httpd.server_close()
    return origin, check, events


def test_outside_request_is_recorded_not_sent(broken_visit):
    origin, _, events = broken_visit
    outside = [u for u in events.requests if not u.startswith(origin)]
    assert outside == ["https://cdn.example.invalid/lib.js"]
    assert any("cdn.example.invalid" in f or "NAME_NOT_RESOLVED" in f for f in events.failed_requests), \
        f"the outside request should fail (host resolver rule): {events.failed_requests}"


def test_console_error_and_exception_are_recorded(broken_visit):
    _, _, events = broken_visit
    text = " | ".join(events.console_errors)
    assert "deliberate console error" in text
    assert "deliberate exception" in text


def test_untypeset_math_unrendered_widget_and_bad_alt_are_found(broken_visit):
    _, check, _ = broken_visit
    assert check["mathElements"] == 1 and check["untypeset"] == ["\\(x^2\\)"]
    assert check["rawTex"], "the raw \\( should be reported"
    assert [w["rendered"] for w in check["widgets"]] == [False]
    assert check["noAlt"] == ["pixel.png"] and check["noCaption"] == ["pixel.png"]
    assert check["broken"] == []


def test_crawl_finds_broken_links_and_anchors(broken_site):
    pages = crawl(broken_site)
    assert list(pages) == ["index.html", "other.html"]
    index = pages["index.html"]
    missing_files = [l.href for l in index.links if not (broken_site / l.target).is_file()]
    assert missing_files == ["missing.html"]
    bad_anchors = [l.href for l in index.links
                   if l.fragment and l.target in pages and l.fragment not in pages[l.target].ids]
    assert bad_anchors == ["#nowhere"]
    assert "https://cdn.example.invalid/lib.js" in index.resources
    # A numbered reference whose text disagrees with its target's number.
    eq_link = next(l for l in index.links if l.text == "(2.1)")
    assert pages["other.html"].eqno["eq"] == "(2.2)" != eq_link.text


def test_summary_is_json_serializable(broken_visit):
    _, check, _ = broken_visit
    json.dumps(check)
