"""Every explorable of the built book, moved by hand in a real browser with no kernel.

An explorable (``course_lib.explorable``) is a VBox of ``SelectionSlider``s over a ``Stack`` of
precomputed frames, nested once per slider, wired by ``jslink`` in the browser. For every
``.course-explorable`` on every chapter page this test

* reads the page's stored widget state (the JSON the book embeds) to know, for each combination of
  slider positions, which frame must be shown (the SHA-256 of its PNG);
* moves every slider with the keyboard (End, Home, ArrowRight) and with a pointer drag, and (in
  test_play_buttons_animate) presses Play where there is one;
* after each move, reads the sliders' positions (``aria-valuenow``) and checks that exactly one
  frame is visible and that its pixels are the stored frame for those positions;
* fails on console errors and on requests that leave the machine, and takes a screenshot of each
  explorable before and after its first move (``screenshots/explorable-*.png``).

A negative control serves a chapter page whose links were removed from the widget state: the sliders
still move but the frames cannot, and the same check must say so.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
from pathlib import Path

import os

import pytest

from browser import Recorder, open_page, serve
from crawl import crawl

ROOT = Path(__file__).resolve().parents[2]
BOOK = Path(os.environ.get("COURSE_BOOK_HTML", ROOT / "_build" / "html"))
SCREENSHOTS = ROOT / "screenshots"

STATE = 'script[type="application/vnd.jupyter.widget-state+json"]'
CHAPTER = re.compile(r"^chapters/\d\d_[a-z0-9_]+\.html$")


def _chapter_pages() -> list[str]:
    try:
        return sorted(p for p in crawl(BOOK) if CHAPTER.match(p))
    except FileNotFoundError:
        return []


CHAPTERS = _chapter_pages()
RESULTS: dict[str, dict] = {}
DEAD_PLAYS: list[str] = []

# -- reading the stored widget state ---------------------------------------------------------------

#: Marks every rendered explorable with the model id of its saved view, returns the ids in page order.
MARK_JS = """() => Array.from(document.querySelectorAll(
    'script[type="application/vnd.jupyter.widget-view+json"]')).flatMap((view) => {
  const area = view.previousElementSibling;
  const box = area && area.querySelector('.course-explorable');
  if (!box) return [];
  const id = JSON.parse(view.textContent).model_id;
  box.setAttribute('data-model-id', id);
  return [id];
})"""

#: The icon a Play button shows: Font Awesome's ``<svg data-icon>`` (the theme's SVG + JS turns
#: every ``<i class="fa fa-...">`` into one) or the ``<i>``'s own ``fa-`` class.
ICON_JS = """(button) => {
  const svg = button.querySelector('svg[data-icon]');
  if (svg) return svg.getAttribute('data-icon');
  const i = button.querySelector('i');
  const name = i && Array.from(i.classList).find((c) => c.startsWith('fa-'));
  return name ? name.slice(3) : 'no icon';
}"""

#: SHA-256 (hex) of the one visible frame of an explorable, or an error string.
VISIBLE_JS = """async (box) => {
  const shown = Array.from(box.querySelectorAll('img.course-explorable-frame'))
    .filter((img) => img.offsetParent !== null && img.getBoundingClientRect().height > 0);
  if (shown.length !== 1) return 'visible frames: ' + shown.length;
  const bytes = await (await fetch(shown[0].src)).arrayBuffer();
  const digest = await crypto.subtle.digest('SHA-256', bytes);
  return Array.from(new Uint8Array(digest)).map((b) => b.toString(16).padStart(2, '0')).join('');
}"""


class Explorable:
    """What the stored state says about one explorable: its sliders and the frame behind each position."""

    def __init__(self, state: dict, model_id: str):
        self.id = model_id
        model = state[model_id]
        if "course-explorable" not in model["state"].get("_dom_classes", []):
            raise AssertionError(f"{model_id} is not an explorable box")
        self.state = state
        self.sliders: list[str] = []
        self.play: str | None = None
        self.stack: str | None = None
        for child in self._children(model_id):
            name = state[child]["model_name"]
            if name == "SelectionSliderModel":
                self.sliders.append(child)
            elif name == "HBoxModel":  # Play + the first slider
                for sub in self._children(child):
                    if state[sub]["model_name"] == "PlayModel":
                        self.play = sub
                    elif state[sub]["model_name"] == "SelectionSliderModel":
                        self.sliders.append(sub)
            elif name == "StackModel":
                self.stack = child
        if not self.sliders or self.stack is None:
            raise AssertionError(f"explorable {model_id}: no slider or no frame stack in its state")
        self.sizes = [len(state[s]["state"]["_options_labels"]) for s in self.sliders]

    def _children(self, mid: str) -> list[str]:
        return [c.removeprefix("IPY_MODEL_") for c in self.state[mid]["state"].get("children", [])]

    def frame_sha(self, index: tuple[int, ...]) -> str:
        node = self.stack
        for i in index:
            kids = self._children(node)
            if self.state[node]["model_name"] != "StackModel" or not 0 <= i < len(kids):
                raise AssertionError(f"explorable {self.id}: no frame at slider positions {index}")
            node = kids[i]
        image = self.state[node]
        if image["model_name"] != "ImageModel":
            raise AssertionError(f"explorable {self.id}: positions {index} lead to a {image['model_name']}")
        (buf,) = [b for b in image.get("buffers", []) if b["path"] == ["value"]]
        return hashlib.sha256(base64.b64decode(buf["data"])).hexdigest()

    def frame_count(self) -> int:
        def count(mid):
            kids = self._children(mid)
            return sum(count(k) for k in kids) if self.state[mid]["model_name"] == "StackModel" else 1

        return count(self.stack)


# -- moving the sliders ----------------------------------------------------------------------------


def _positions(handles) -> tuple[int, ...]:
    return tuple(int(round(float(h.get_attribute("aria-valuenow")))) for h in handles)


def _verify(tab, box, exp: Explorable, what: str, problems: list[str]) -> bool:
    """Check that the visible frame is the stored one for the sliders' positions; record problems."""
    handles = box.locator(".noUi-handle").all()
    pos = _positions(handles)
    shown = box.evaluate(VISIBLE_JS)
    expected = exp.frame_sha(pos)
    if shown != expected:
        problems.append(
            f"{what}: sliders at {pos} but the visible frame is not the stored frame for "
            f"them ({shown[:16]} vs {expected[:16]})"
        )
        return False
    return True


def _expect(
    box, exp: Explorable, handles, k: int, want: int, what: str, counts: dict, problems: list
) -> None:
    """After a move: slider ``k`` must stand at ``want`` and the visible frame must be the stored one."""
    got = _positions(handles)[k]
    if got != want:
        problems.append(f"{what}: the slider stands at {got}, expected {want}")
    elif _verify(None, box, exp, what, problems):
        counts["frames_verified"] += 1


def _drag(tab, handle, track, fraction: float) -> None:
    h, t = handle.bounding_box(), track.bounding_box()
    tab.mouse.move(h["x"] + h["width"] / 2, h["y"] + h["height"] / 2)
    tab.mouse.down()
    tab.mouse.move(t["x"] + fraction * t["width"], t["y"] + t["height"] / 2, steps=8)
    tab.mouse.up()
    tab.wait_for_timeout(150)


def exercise_explorable(
    tab, box, exp: Explorable, label: str, shots: bool = True, play: bool = False
) -> dict:
    """Move every slider of one explorable (keyboard, drag, Play); returns counts and problems."""
    problems: list[str] = []
    counts = {"sliders": 0, "keyboard_moves": 0, "drags": 0, "plays": 0, "frames_verified": 0}
    box.scroll_into_view_if_needed()
    handles = box.locator(".noUi-handle").all()
    tracks = box.locator(".noUi-target").all()
    if len(handles) != len(exp.sliders):
        return {
            **counts,
            "problems": [
                f"{label}: {len(handles)} slider handles on the page, {len(exp.sliders)} sliders in the state"
            ],
        }
    if not _verify(tab, box, exp, f"{label} as loaded", problems):
        return {**counts, "problems": problems}
    counts["frames_verified"] += 1
    if shots:
        box.screenshot(path=str(SCREENSHOTS / f"explorable-{label}-before.png"))
    for k, (handle, n) in enumerate(zip(handles, exp.sizes)):
        counts["sliders"] += 1
        for key, want in (("End", n - 1), ("Home", 0), ("ArrowRight", 1)):
            handle.focus()
            tab.keyboard.press(key)
            tab.wait_for_timeout(100)
            counts["keyboard_moves"] += 1
            _expect(box, exp, handles, k, want, f"{label} slider {k} after {key}", counts, problems)
        # a drag to the middle (or to the end when the middle is where ArrowRight left it)
        target = (n - 1) // 2 if (n - 1) // 2 != 1 else n - 1
        _drag(tab, handle, tracks[k], target / (n - 1))
        counts["drags"] += 1
        _expect(
            box,
            exp,
            handles,
            k,
            target,
            f"{label} slider {k} after a drag to {target} of {n}",
            counts,
            problems,
        )
        if k == 0 and shots:
            box.screenshot(path=str(SCREENSHOTS / f"explorable-{label}-after.png"))
    if exp.play and play:
        start = _positions(handles)[0]
        play_pause = box.locator(".widget-play button").first
        play_pause.click()
        deadline = time.monotonic() + 10
        while _positions(handles)[0] == start and time.monotonic() < deadline:
            tab.wait_for_timeout(100)
        icon = play_pause.evaluate(ICON_JS)
        if icon != "pause":
            problems.append(f"{label}: while playing, the Play button shows {icon!r}, not the pause icon")
        play_pause.click()  # pause where it is
        tab.wait_for_timeout(150)
        counts["plays"] += 1
        if _positions(handles)[0] == start:
            DEAD_PLAYS.append(label)
        elif _verify(tab, box, exp, f"{label} after Play", problems):
            counts["frames_verified"] += 1
        if shots:
            box.screenshot(path=str(SCREENSHOTS / f"explorable-{label}-played.png"))
    return {**counts, "problems": problems}


def exercise_page(browser, origin: str, page: str, play: bool = False) -> dict:
    """Open one page and exercise all its explorables."""
    events: list[Recorder] = []
    tab, _ = open_page(
        browser, f"{origin}/{page}", 1280, 1000, recorder=lambda p: events.append(Recorder.attach(p))
    )
    try:
        ids = tab.evaluate(MARK_JS)
        state = json.loads(tab.locator(STATE).first.text_content())["state"] if ids else {}
        out = {
            "explorables": len(ids),
            "frames": 0,
            "sliders": 0,
            "keyboard_moves": 0,
            "drags": 0,
            "plays": 0,
            "frames_verified": 0,
            "problems": [],
        }
        slug = re.sub(r"[^A-Za-z0-9_-]+", "_", page.removesuffix(".html").removeprefix("chapters/"))
        for i, mid in enumerate(ids):
            exp = Explorable(state, mid)
            out["frames"] += exp.frame_count()
            res = exercise_explorable(
                tab,
                tab.locator(f'.course-explorable[data-model-id="{mid}"]'),
                exp,
                f"{slug}-{i + 1}",
                play=play,
            )
            for key in ("sliders", "keyboard_moves", "drags", "plays", "frames_verified"):
                out[key] += res[key]
            out["problems"] += res["problems"]
        tab.wait_for_timeout(200)
        out["console_errors"] = list(events[0].console_errors)
        out["outside"] = [
            u for u in events[0].requests if not u.startswith((origin + "/", "data:", "blob:", "about:"))
        ]
        return out
    finally:
        tab.close()


# -- the tests -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def origin(server):
    yield server
    if RESULTS:
        SCREENSHOTS.mkdir(exist_ok=True)
        total = {
            k: sum(r[k] for r in RESULTS.values())
            for k in (
                "explorables",
                "frames",
                "sliders",
                "keyboard_moves",
                "drags",
                "plays",
                "frames_verified",
            )
        }
        summary = {
            "pages": len(RESULTS),
            **total,
            "per_page": {p: {k: r[k] for k in total} for p, r in RESULTS.items()},
        }
        (SCREENSHOTS / "explorables.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")


def test_every_chapter_page_is_found():
    assert len(CHAPTERS) >= 10, f"expected the ten chapter pages in {BOOK}, found {CHAPTERS}"


@pytest.mark.parametrize("page", CHAPTERS or ["<book not built>"])
def test_every_explorable_responds_without_a_kernel(browser, origin, page):
    if page not in CHAPTERS:
        pytest.fail(f"{BOOK}/index.html not found: build the book first with `make build`.")
    res = exercise_page(browser, origin, page)
    RESULTS[page] = res
    assert res["explorables"] >= 1, f"{page}: no explorable (a figure the reader moves) on the chapter page"
    assert not res["problems"], f"{page}: {len(res['problems'])} problems: {res['problems'][:8]}"
    assert res["frames_verified"] >= res["sliders"] * 4 + 1, f"{page}: too few frames checked ({res})"
    assert not res["console_errors"], (
        f"{page}: console errors while moving sliders: {res['console_errors'][:5]}"
    )
    assert not res["outside"], f"{page}: requests outside the book: {res['outside'][:5]}"


def _play_pages() -> list[str]:
    return [p for p in CHAPTERS if '"PlayModel"' in (BOOK / p).read_text(encoding="utf-8")]


def test_play_buttons_animate(browser, origin):
    """Play advances the epoch slider, shows the pause icon, and the frame follows the slider.

    Needs _ext/page_hygiene.py's Play icon fix: the theme's Font Awesome replaces the button's
    ``<i>`` by an ``<svg>``, which html-manager 1.0.15's Play view does not expect.
    """
    pages = _play_pages()
    assert pages, "no page with a Play button"
    DEAD_PLAYS.clear()
    for page in pages:
        res = exercise_page(browser, origin, page, play=True)
        if page in RESULTS:  # counted in screenshots/explorables.json and the terminal summary
            RESULTS[page]["plays"] += res["plays"]
        assert res["plays"] >= 1, f"{page}: a PlayModel in the page but no Play button was pressed ({res})"
        assert not DEAD_PLAYS, f"{page}: Play did not advance the slider in 10 s ({DEAD_PLAYS})"
        assert not res["problems"], f"{page}: {res['problems'][:4]}"
        assert not res["console_errors"], f"{page}: Play threw: {res['console_errors'][:2]}"


def test_play_without_the_icon_fix_is_dead(browser):
    """Negative control: the same page without page_hygiene's Play fix throws on Play and stays put."""
    pages = _play_pages()
    if not pages:
        pytest.fail("no page with a Play button")
    html = (BOOK / pages[0]).read_text(encoding="utf-8")
    start = html.find(
        'document.addEventListener("DOMContentLoaded", function () {\n  if (typeof window.require'
    )
    assert start > 0, f"{pages[0]}: page_hygiene's Play icon fix is not in the page"
    end = html.index("\n});", html.index("courseIconFix = true", start)) + len("\n});")
    fake = pages[0].replace(".html", "_no_play_fix.html")
    httpd, origin = serve(BOOK, overrides={"/" + fake: html[:start] + html[end:]})
    dead_before = len(DEAD_PLAYS)
    try:
        res = exercise_page(browser, origin, fake, play=True)
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert res["plays"] >= 1
    assert len(DEAD_PLAYS) > dead_before, f"Play advanced without the fix: is the fix still needed? {res}"
    assert any("setting 'className'" in e for e in res["console_errors"]), res["console_errors"]


def test_a_page_whose_links_are_cut_fails_the_check(browser):
    """Negative control: without the jslinks the sliders move but the frames do not."""
    page = next((p for p in CHAPTERS if "course-explorable" in (BOOK / p).read_text(encoding="utf-8")), None)
    if page is None:
        pytest.fail("no chapter page with an explorable to cut the links of")
    html = (BOOK / page).read_text(encoding="utf-8")
    m = re.search(r'(<script type="application/vnd.jupyter.widget-state\+json">)(.*?)(</script>)', html, re.S)
    state = json.loads(m[2])
    cut = {k: v for k, v in state["state"].items() if v["model_name"] != "LinkModel"}
    assert len(cut) < len(state["state"]), "the page's state has no LinkModel to cut"
    state["state"] = cut
    broken = html[: m.start(2)] + json.dumps(state) + html[m.end(2) :]
    fake = page.replace(".html", "_links_cut.html")
    httpd, origin = serve(BOOK, overrides={"/" + fake: broken})
    try:
        res = exercise_page(browser, origin, fake)
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert res["explorables"] >= 1
    assert any("not the stored frame" in p for p in res["problems"]), (
        f"cutting every jslink should leave the frames behind the sliders, but the check found no "
        f"problem: {res}"
    )
