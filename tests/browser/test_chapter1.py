"""The built chapter-1 page in a real browser: math typeset, widget rendered, figures shown."""
from __future__ import annotations

import re

PAGE = "chapters/01_probability.html"


def test_math_is_typeset(render):
    dom = render(PAGE)
    containers = re.findall(r"<mjx-container", dom)
    assert len(containers) >= 20, f"only {len(containers)} MathJax elements: MathJax did not run"
    # Sphinx wraps math in \( \) / \[ \]; after MathJax ran none may be left as raw text.
    leftovers = re.findall(r'<span class="math notranslate nohighlight">\\\(', dom)
    assert not leftovers, f"{len(leftovers)} inline formulas left untypeset"
    # No TeX environment left as text: strip scripts and typeset math, nothing like \begin{ remains.
    text = re.sub(r"<script.*?</script>|<mjx-container.*?</mjx-container>", "", dom, flags=re.S)
    assert "\\begin{" not in text, "a TeX environment was left untypeset"


def test_numbered_equations(render):
    dom = render(PAGE)
    for label in ("eq-conditional", "eq-product-rule", "eq-sum-rule", "eq-arbitrary-conditioning"):
        assert f'id="equation-{label}"' in dom, f"equation {label} missing"


def test_explorable_is_rendered_and_kernel_widget_hidden(render):
    dom = render(PAGE)
    # The HTML manager turns the saved widget state into live controls (moved in test_explorables.py).
    assert "course-explorable" in dom and "widget-slider" in dom, "no rendered explorable slider"
    # The kernel-driven conditioning widget is for JupyterLab (test_jupyterlab.py): the book hides it.
    shown = re.sub(r"<script.*?</script>", "", dom, flags=re.S)  # the stored state names every model
    assert not re.search(r'class="[^"]*(course-kernel-widget|widget-dropdown)', shown), "kernel widget shown"


def test_figures_have_captions_and_alt_text(render):
    dom = render(PAGE)
    figures = re.findall(r"<figure[^>]*>.*?</figure>", dom, flags=re.S)
    assert len(figures) >= 2
    for fig in figures:
        assert "<figcaption" in fig
        assert re.search(r'<img[^>]+alt="[^"]+"', fig), "figure image without alt text"


def test_proofs_exercises_and_citations(render):
    dom = render(PAGE)
    assert 'class="proof' in dom
    assert "exercise" in dom and "solution" in dom
    assert "Bishop, 2006" in dom or "Bishop 2006" in dom


def test_screenshot_of_chapter1(screenshot):
    path = screenshot(PAGE, "01_probability")
    assert path.stat().st_size > 20_000
