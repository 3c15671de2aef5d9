"""The built chapter-1 page in a real browser: math typeset, widget rendered, figures shown."""

from __future__ import annotations

import re
from pathlib import Path

from page_dom import exercises, shown, solved, with_class

PAGE = "chapters/01_probability.html"


def test_math_is_typeset(render, book: Path):
    dom = render(PAGE)
    containers = re.findall(r"<mjx-container", dom)
    assert len(containers) >= 20, f"only {len(containers)} MathJax elements: MathJax did not run"
    # Sphinx wraps math in \( \) / \[ \]; after MathJax ran none may be left as raw text.
    leftovers = re.findall(r'<span class="math notranslate nohighlight">\\\(', dom)
    assert not leftovers, f"{len(leftovers)} inline formulas left untypeset"
    # Display math: the page as built holds its numbered equations as \[ ... \] (no \begin{
    # environment); after MathJax every one is a display container and no \[ is left as text.
    built = (book / PAGE).read_text(encoding="utf-8")
    n_display = len(re.findall(r'<div class="math notranslate nohighlight"', built))
    assert n_display >= 4 and built.count("\\[") >= n_display, "the built page has lost its display math"
    displayed = len(re.findall(r'<mjx-container[^>]*display="true"', dom))
    assert displayed >= n_display, f"{displayed} of {n_display} display equations typeset"
    text = re.sub(r"<mjx-container.*?</mjx-container>", "", shown(dom), flags=re.S)
    assert "\\[" not in text, "a display equation was left untypeset"


def test_numbered_equations(render):
    dom = render(PAGE)
    for label in ("eq-conditional", "eq-product-rule", "eq-sum-rule", "eq-arbitrary-conditioning"):
        assert f'id="equation-{label}"' in dom, f"equation {label} missing"


def test_explorable_is_rendered_and_kernel_widget_hidden(render):
    dom = render(PAGE)
    # The HTML manager turns the saved widget state into live controls (moved in test_explorables.py).
    # Rendered elements only: the stored state names every model's class, the manager's stylesheet
    # every widget class.
    assert with_class(dom, "course-explorable") >= 1, "no rendered explorable"
    assert with_class(dom, "widget-hslider") >= 1, "the explorable has no rendered slider"
    # The kernel-driven conditioning widget is for JupyterLab (test_jupyterlab.py): the book hides it.
    assert with_class(dom, "course-kernel-widget") == 0 and with_class(dom, "widget-dropdown") == 0, (
        "kernel widget shown"
    )


def test_figures_have_captions_and_alt_text(render):
    dom = render(PAGE)
    figures = re.findall(r"<figure[^>]*>.*?</figure>", dom, flags=re.S)
    assert len(figures) >= 2
    for fig in figures:
        assert "<figcaption" in fig
        assert re.search(r'<img[^>]+alt="[^"]+"', fig), "figure image without alt text"


def test_proofs_exercises_and_citations(render):
    dom = render(PAGE)
    assert with_class(dom, "proof") >= 1
    # every page links exercise.css: count the exercises themselves, and the solution of each
    assert len(exercises(dom)) >= 3, f"exercises on the page: {exercises(dom)}"
    assert solved(dom) == exercises(dom), "an exercise has no solution (or a solution names no exercise)"
    assert "Bishop, 2006" in dom or "Bishop 2006" in dom


def test_screenshot_of_chapter1(screenshot):
    path = screenshot(PAGE, "01_probability")
    assert path.stat().st_size > 20_000
