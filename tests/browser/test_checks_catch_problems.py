"""The browser and crawl checks of test_book.py fail when they should.

A tiny hand-made "book" with one problem of each kind is loaded by the same machinery
(Playwright's Chromium with ``browser.Recorder``, ``page_check.js``, ``crawl``), and every problem
must be reported:
a request to another host, a JavaScript exception, a console error, untypeset TeX, an
unrendered widget view, an image without alt text, a broken link and a missing anchor.

The chapter checks' DOM helpers (``page_dom``) fail too: on a hand-made page that only *mentions*
an explorable, a slider, exercises and an equation, and on chapter 1 served with its MathJax and
its widget views cut out (the page as a reader without JavaScript sees it).
"""

from __future__ import annotations

import json
import re

import pytest

from browser import CHECK_JS, Recorder, open_page, serve
from crawl import crawl
from page_dom import exercises, page_text, shown, solved, unresolved_references, with_class

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
    "1f15c4890000000d49444154789c6360000002000100e221bc330000000049454e44ae426082"
)


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
    assert any("cdn.example.invalid" in f or "NAME_NOT_RESOLVED" in f for f in events.failed_requests), (
        f"the outside request should fail (host resolver rule): {events.failed_requests}"
    )


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
    bad_anchors = [
        l.href
        for l in index.links
        if l.fragment and l.target in pages and l.fragment not in pages[l.target].ids
    ]
    assert bad_anchors == ["#nowhere"]
    assert "https://cdn.example.invalid/lib.js" in index.resources
    # A numbered reference whose text disagrees with its target's number.
    eq_link = next(l for l in index.links if l.text == "(2.1)")
    assert pages["other.html"].eqno["eq"] == "(2.2)" != eq_link.text


def test_summary_is_json_serializable(broken_visit):
    _, check, _ = broken_visit
    json.dumps(check)


# -- the chapter checks (page_dom) ---------------------------------------------------------------

#: Mentions everything the chapter checks look for, renders none of it: the widget state names
#: the explorable's class, a stylesheet the slider's, the head links exercise.css, an exercise has
#: no solution, a solution names another page's exercise, and two references dangle.
MENTIONS_ONLY = """<html><head><link rel="stylesheet" href="_static/exercise.css">
<style>.widget-slider { width: 100%; } .course-explorable {}</style></head><body>
<script type="application/vnd.jupyter.widget-state+json">{"_dom_classes": ["course-explorable"]}</script>
<div class="exercise admonition" id="ex-a"><p class="admonition-title">Exercise 1.1</p></div>
<div class="solution dropdown admonition" id="s-b"><p class="admonition-title">Solution to<a class="reference internal" href="#ex-b"> Exercise 1.2</a></p></div>
<p>See <code class="xref eq docutils literal notranslate"><span class="pre">eq-missing</span></code>,
<code class="xref std std-numref docutils literal notranslate"><span class="pre">fig-missing</span></code> and
<a class="reference internal" href="#x"><code class="xref std std-ref docutils literal notranslate"><span class="pre">resolved</span></code></a>;
course, paper (cpu) 0.77 &amp; more</p></body></html>"""


def test_page_dom_counts_rendered_elements_not_mentions():
    assert (
        "course-explorable" in MENTIONS_ONLY
        and "widget-slider" in MENTIONS_ONLY
        and "exercise" in MENTIONS_ONLY
    )
    assert with_class(MENTIONS_ONLY, "course-explorable") == 0
    assert with_class(MENTIONS_ONLY, "widget-slider") == 0
    assert with_class(MENTIONS_ONLY, "exercise") == 1 and exercises(MENTIONS_ONLY) == ["ex-a"]
    assert solved(MENTIONS_ONLY) == ["ex-b"] != exercises(MENTIONS_ONLY)
    assert unresolved_references(MENTIONS_ONLY) == ["eq-missing", "fig-missing"]
    assert "widget-slider" not in shown(MENTIONS_ONLY)
    assert page_text(MENTIONS_ONLY).endswith("course, paper (cpu) 0.77 & more")


def test_chapter1_checks_fail_without_mathjax_and_widget_views(browser, book):
    """Chapter 1 with its MathJax and widget-view scripts removed: the display-math and explorable checks fail."""
    page = "chapters/01_probability.html"
    built = (book / page).read_text(encoding="utf-8")
    cut, n_mathjax = re.subn(r'<script[^>]*src="[^"]*mathjax/[^"]*"[^>]*>\s*</script>', "", built)
    cut, n_views = re.subn(
        r'<script type="application/vnd\.jupyter\.widget-view\+json">.*?</script>', "", cut, flags=re.S
    )
    assert n_mathjax == 1 and n_views >= 1, (n_mathjax, n_views)
    fake = "/chapters/01_probability_cut.html"
    httpd, origin = serve(book, overrides={fake: cut})
    try:
        tab, check = open_page(browser, origin + fake)
        dom = tab.content()
        tab.close()
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert check["mathjax"] == "absent" and check["widgets"] == []
    # test_chapter1.py's checks on this page:
    assert not re.findall(r'<mjx-container[^>]*display="true"', dom)
    assert "\\[" in re.sub(r"<mjx-container.*?</mjx-container>", "", shown(dom), flags=re.S)
    assert with_class(dom, "course-explorable") == 0 and with_class(dom, "widget-hslider") == 0
    # what stays true of the page: its exercises and solutions (no JavaScript needed)
    assert len(exercises(dom)) >= 3 and solved(dom) == exercises(dom)
