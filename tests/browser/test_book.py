"""Every page of the built book in a real (headless) browser, plus a crawl of its links.

Pages are discovered by crawling the built HTML from ``index.html`` (see ``crawl.py``); pages
on disk that no link reaches are checked too, and a page written from a source file that the
crawl cannot reach fails. One Chromium, driven by Playwright (``browser.py``), loads every page
once and records:

* every request the page makes — any URL not served by the local 127.0.0.1 server fails
  (the book is fully offline); a request the local server answers with an error fails too;
* console errors and uncaught JavaScript exceptions;
* math: every ``.math`` element typeset by MathJax (an ``mjx-container`` inside), no raw TeX
  left in the text, no MathJax error (e.g. an unknown macro);
* widgets: every saved widget view rendered by the HTML manager in its static state;
* figures: output images load, have real alt text and sit in a captioned figure;
* a screenshot of the top of each page (and of each chapter in dark mode) in ``screenshots/``.

Links are checked on disk: every internal link points to a file that exists, every anchor
exists on its page, and every numbered cross-reference (``(7.3)``, ``Fig. 2.1``) shows the
number its target carries — across chapters too.

Run: ``make browser`` (``COURSE_BOOK_HTML=/path/to/_build/html`` to check another build).
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest
from playwright.sync_api import Error as PlaywrightError

from browser import PAGE_TIMEOUT_S, Recorder, open_page, run_checks, serve
from crawl import Page, crawl, html_files

ROOT = Path(__file__).resolve().parents[2]
BOOK = Path(os.environ.get("COURSE_BOOK_HTML", ROOT / "_build" / "html"))
SCREENSHOTS = ROOT / "screenshots"
#: Requests that never leave the machine and need no server.
LOCAL_SCHEMES = ("data:", "blob:", "about:")


def _discover() -> tuple[dict[str, Page], list[str]]:
    """The crawled pages plus unreachable pages on disk; empty when the book is not built."""
    try:
        pages = crawl(BOOK)
    except FileNotFoundError:
        return {}, []
    orphans = [p for p in html_files(BOOK) if p not in pages]
    from crawl import parse_page  # orphans are checked like any other page

    for rel in orphans:
        pages[rel] = parse_page(BOOK, rel)[0]
    return pages, orphans


PAGES, ORPHANS = _discover()
PAGE_IDS = list(PAGES) or ["<book not built>"]


def _slug(page: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "_", page.removesuffix(".html"))


def _has_source(page: str) -> str | None:
    """The source file a page was built from (``_sources/<page>.<ext>``), or None."""
    stem = page.removesuffix(".html")
    for cand in sorted((BOOK / "_sources").glob(f"{stem}.*")):
        return str(cand.relative_to(BOOK))
    return None


def _is_notebook(page: str) -> bool:
    src = _has_source(page)
    return bool(src and src.endswith(".ipynb"))


@pytest.fixture(scope="session")
def visits(browser):
    """Load every page once; ``page -> {"check": <page_check.js result>, "events": Recorder}``."""
    if not PAGES:
        pytest.fail(f"{BOOK}/index.html not found: build the book first with `make build`.")
    httpd, origin = serve(BOOK)
    SCREENSHOTS.mkdir(exist_ok=True)
    results: dict[str, dict] = {}
    started = time.perf_counter()
    try:
        for page in PAGES:
            try:
                results[page] = _visit_page(browser, origin, page)
            except PlaywrightError as exc:  # reported by every test of this page, not the whole run
                results[page] = {"error": f"{type(exc).__name__}: {exc}"}
    finally:
        httpd.shutdown()
        httpd.server_close()
    results["__origin__"] = {"origin": origin, "total_s": time.perf_counter() - started}
    _write_summary(results)
    return results


def _visit_page(browser, origin: str, page: str) -> dict:
    """Load one page, wait for MathJax and widgets, run the checks, take the screenshots."""
    t0 = time.perf_counter()
    events: list[Recorder] = []
    url = f"{origin}/{page}"
    if PAGES[page].refresh:  # a redirect page (index.html): check where it lands
        tab = browser.new_page(viewport={"width": 1280, "height": 900})
        events.append(Recorder.attach(tab))
        tab.goto(url, wait_until="load", timeout=PAGE_TIMEOUT_S * 1000)
        tab.wait_for_url(lambda u: u != url, timeout=PAGE_TIMEOUT_S * 1000)
        tab.wait_for_load_state("load")
        check = run_checks(tab)
    else:
        tab, check = open_page(browser, url, recorder=lambda p: events.append(Recorder.attach(p)))
    ready_s = time.perf_counter() - t0  # navigation to typeset and widgets rendered
    slug = _slug(page)
    tab.evaluate("window.scrollTo(0, 0)")
    shots = [_shot(tab, SCREENSHOTS / f"top-{slug}.png")]
    if _is_notebook(page):
        # For review: the first widget in its static state, and the first figure in dark mode.
        if _scroll_to(tab, ".widget-subarea"):
            shots.append(_shot(tab, SCREENSHOTS / f"widget-{slug}.png"))
        tab.evaluate(
            "document.documentElement.dataset.theme='dark';"
            "document.documentElement.dataset.mode='dark'; window.scrollTo(0, 0)"
        )
        tab.wait_for_timeout(200)
        shots.append(_shot(tab, SCREENSHOTS / f"top-{slug}-dark.png"))
        if _scroll_to(tab, "article figure img"):
            shots.append(_shot(tab, SCREENSHOTS / f"figure-{slug}-dark.png"))
    tab.wait_for_timeout(200)  # late console errors, late requests
    tab.close()
    return {"check": check, "events": events[0], "ready_s": ready_s, "screenshots": shots}


def _shot(tab, path: Path) -> Path:
    tab.screenshot(path=str(path))
    return path


def _scroll_to(tab, selector: str) -> bool:
    """Scroll the first element matching ``selector`` to the top of the viewport; False if none."""
    found = tab.evaluate(
        f"(() => {{ const el = document.querySelector({json.dumps(selector)}); if (!el) return false;"
        " el.scrollIntoView({block: 'start'}); window.scrollBy(0, -16); return true; })()"
    )
    if found:
        tab.wait_for_timeout(200)
    return bool(found)


def _write_summary(results: dict) -> None:
    """screenshots/summary.json and one printed line per page: the counts the issue asks for."""
    rows = {p: r for p, r in results.items() if not p.startswith("__") and "error" not in r}
    if not rows:
        return
    summary = {
        "book": str(BOOK),
        "pages": len(rows),
        "equations_typeset": sum(r["check"]["mjxContainers"] for r in rows.values()),
        "display_equations": sum(r["check"]["displayMath"] for r in rows.values()),
        "widgets_rendered": sum(sum(w["rendered"] for w in r["check"]["widgets"]) for r in rows.values()),
        "internal_links": sum(len(PAGES[p].links) for p in rows),
        "requests": sum(len(r["events"].requests) for r in rows.values()),
        "slowest_page": max(rows, key=lambda p: rows[p]["ready_s"]),
        "slowest_page_s": round(max(r["ready_s"] for r in rows.values()), 2),
        "browser_total_s": round(results["__origin__"]["total_s"], 1),
        "per_page": {
            p: {
                "ready_s": round(r["ready_s"], 2),
                "math": r["check"]["mjxContainers"],
                "widgets": len(r["check"]["widgets"]),
                "links": len(PAGES[p].links),
                "requests": len(r["events"].requests),
            }
            for p, r in rows.items()
        },
    }
    (SCREENSHOTS / "summary.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")


def _visit(visits, page):
    if page not in visits:
        pytest.fail(f"{page} was not visited")
    if "error" in visits[page]:
        pytest.fail(f"{page} could not be checked in the browser: {visits[page]['error']}")
    return visits[page]


# -- in the browser ---------------------------------------------------------------------------------


@pytest.mark.parametrize("page", PAGE_IDS)
def test_no_request_leaves_the_machine(visits, page):
    origin = visits["__origin__"]["origin"]
    events = _visit(visits, page)["events"]
    outside = [u for u in events.requests if not u.startswith((origin + "/", *LOCAL_SCHEMES))]
    assert not outside, f"{page} requested {len(outside)} URL(s) outside the local book: {outside[:10]}"
    assert events.requests, f"{page}: no request recorded at all (is the recorder working?)"


@pytest.mark.parametrize("page", PAGE_IDS)
def test_no_console_errors_or_failed_requests(visits, page):
    events = _visit(visits, page)["events"]
    assert not events.console_errors, f"{page}: JavaScript errors: {events.console_errors[:10]}"
    assert not events.failed_requests, f"{page}: failed requests: {events.failed_requests[:10]}"


@pytest.mark.parametrize("page", PAGE_IDS)
def test_math_is_typeset(visits, page):
    check = _visit(visits, page)["check"]
    if check["mathElements"] == 0 and check["mathjax"] == "absent":
        return  # a page without math (its HTML loads no MathJax)
    assert check["mathjax"] == "done", f"{page}: MathJax {check['mathjax']}"
    assert not check["untypeset"], (
        f"{page}: {len(check['untypeset'])} formulas not typeset: {check['untypeset'][:5]}"
    )
    assert check["mjxContainers"] >= check["mathElements"], (
        f"{page}: fewer typeset formulas than math elements"
    )
    assert not check["rawTex"], f"{page}: raw TeX left in the text: {check['rawTex'][:5]}"
    assert not check["merrors"], f"{page}: MathJax errors (bad TeX?): {check['merrors'][:5]}"


@pytest.mark.parametrize("page", PAGE_IDS)
def test_widgets_render_in_their_static_state(visits, page):
    widgets = _visit(visits, page)["check"]["widgets"]
    for w in widgets:
        assert w["rendered"], f"{page}: widget {w['model']} was not rendered by the widget manager"
        assert not w["error"], f"{page}: widget {w['model']} shows an error instead of its state"
        assert w["height"] >= 20 and w["width"] >= 100, f"{page}: widget {w['model']} rendered empty ({w})"
        assert w["controls"] + w["images"] > 0, f"{page}: widget {w['model']} has no control or output"
    if widgets and check_has_mathjax(visits, page):
        assert _visit(visits, page)["check"]["mathjaxHub"], (
            f"{page}: widgets and MathJax 3 on one page without the MathJax.Hub shim of "
            "_ext/page_hygiene.py: widget labels throw 'reading Queue' depending on load order"
        )


def check_has_mathjax(visits, page) -> bool:
    return _visit(visits, page)["check"]["mathjax"] != "absent"


@pytest.mark.parametrize("page", PAGE_IDS)
def test_figures_load_with_alt_text_and_caption(visits, page):
    check = _visit(visits, page)["check"]
    assert not check["broken"], f"{page}: images that did not load: {check['broken'][:5]}"
    assert not check["noAlt"], (
        f"{page}: output images without alt text (cell metadata mystnb.image.alt): {check['noAlt'][:5]}"
    )
    assert not check["noCaption"], (
        f"{page}: output images without a figure caption "
        f"(cell metadata mystnb.figure.caption): {check['noCaption'][:5]}"
    )


@pytest.mark.parametrize("page", PAGE_IDS)
def test_screenshot_of_the_top(visits, page):
    for shot in _visit(visits, page)["screenshots"]:
        assert shot.stat().st_size > 10_000, f"{shot} is suspiciously small (a blank page?)"


# -- on disk ----------------------------------------------------------------------------------------


def test_crawl_reaches_every_chapter():
    assert PAGES, f"{BOOK}/index.html not found: build the book first with `make build`."
    sourced_orphans = [p for p in ORPHANS if _has_source(p)]
    assert not sourced_orphans, f"pages built from a source but linked from nowhere: {sourced_orphans}"
    chapters = [p for p in PAGES if _is_notebook(p)]
    assert chapters, "the crawl found no chapter notebook page"


@pytest.mark.parametrize("page", PAGE_IDS)
def test_internal_links_and_anchors_resolve(page):
    if page not in PAGES:
        pytest.fail(f"{BOOK}/index.html not found: build the book first with `make build`.")
    problems = []
    for link in PAGES[page].links:
        if not (BOOK / link.target).is_file():
            problems.append(f"{link.href!r}: {link.target} does not exist")
            continue
        if link.fragment and link.target.endswith(".html"):
            target = PAGES.get(link.target)
            if target is None:
                from crawl import parse_page

                target = PAGES[link.target] = parse_page(BOOK, link.target)[0]
            if link.fragment not in target.ids:
                problems.append(f"{link.href!r}: no id {link.fragment!r} in {link.target}")
    for res in PAGES[page].resources:
        if "://" in res or res.startswith("//"):
            problems.append(f"loads {res} from outside the book")
        elif not (BOOK / res.split("?")[0]).is_file():
            problems.append(f"loads {res}, which does not exist")
    assert not problems, f"{page}: {len(problems)} broken links: {problems[:10]}"


_EQ_TEXT = re.compile(r"\((\d+(?:\.\d+)+)\)")
_NAMED_TEXT = re.compile(
    r"(Fig\.|Figure|Table|Exercise|Definition|Theorem|Lemma|Algorithm|Example|Remark"
    r"|Proposition|Corollary|Property|Axiom|Criterion|Conjecture|Assumption|Observation"
    r"|Solution to Exercise)\s+(\d+(?:\.\d+)+)"
)


def _numbered_references(page: str) -> tuple[int, list[str]]:
    """How many links of ``page`` show a number their target carries, and those that show another."""
    compared, wrong = 0, []
    for link in PAGES[page].links:
        target = PAGES.get(link.target)
        if target is None or not link.fragment:
            continue
        shown = _EQ_TEXT.fullmatch(link.text)
        if shown and link.fragment in target.eqno:
            compared += 1
            expected = re.search(r"\d+(?:\.\d+)+", target.eqno[link.fragment])
            if not expected or expected[0] != shown[1]:
                wrong.append(
                    f"{link.text} -> {link.target}#{link.fragment} numbered {target.eqno[link.fragment]}"
                )
        named = _NAMED_TEXT.fullmatch(link.text)
        if named and link.fragment in target.numbers:
            compared += 1
            if target.numbers[link.fragment] != named[2]:
                wrong.append(
                    f"{link.text} -> {link.target}#{link.fragment} numbered {target.numbers[link.fragment]}"
                )
        if "??" in link.text:
            wrong.append(f"unresolved number {link.text!r} -> {link.target}#{link.fragment}")
    return compared, wrong


@pytest.mark.parametrize("page", PAGE_IDS)
def test_numbered_references_show_their_targets_number(page):
    """``{eq}``/``{numref}`` links (also across chapters) carry the number of what they point to."""
    if page not in PAGES:
        pytest.fail(f"{BOOK}/index.html not found: build the book first with `make build`.")
    _, wrong = _numbered_references(page)
    assert not wrong, f"{page}: references showing the wrong number: {wrong[:10]}"


def test_numbered_references_are_compared_at_all():
    """The check above compares a link only when the crawl read its target's number: it must read them."""
    if not PAGES:
        pytest.fail(f"{BOOK}/index.html not found: build the book first with `make build`.")
    compared = sum(_numbered_references(page)[0] for page in PAGES)
    # 2026-12-02: 146 equation and 45 figure/exercise references compared over the book
    assert compared >= 150, (
        f"only {compared} numbered references compared: does crawl.py still read eqno/numbers?"
    )


@pytest.mark.parametrize("page", PAGE_IDS)
def test_download_buttons_offer_the_source(page):
    """Every page built from a source offers it for download (notebooks as .ipynb)."""
    if page not in PAGES:
        pytest.fail(f"{BOOK}/index.html not found: build the book first with `make build`.")
    source = _has_source(page)
    if source is None:
        return  # generated pages (search, index) have no source
    targets = {link.target for link in PAGES[page].links}
    assert source in targets, (
        f"{page}: no download link to its source {source} (html.use_download_button in _config.yml?)"
    )
