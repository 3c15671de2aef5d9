"""The built chapter 6 and 7 pages in a real browser: math, equations, figures, widget, citations."""
from __future__ import annotations

import re

import pytest

CH6 = "chapters/06_gaussian_dropout_log_uniform.html"
CH7 = "chapters/07_kl_approximation.html"
EQUATIONS = {
    CH6: ("eq-ch6-gauss-dropout", "eq-ch6-elbo", "eq-ch6-log-uniform", "eq-ch6-neg-kl",
          "eq-ch6-precision", "eq-ch6-variational-dropout", "eq-ch6-cubic"),
    CH7: ("eq-ch7-neg-kl", "eq-ch7-limit", "eq-ch7-neg-kl-mu", "eq-ch7-molchanov"),
}
FIGURES = {CH6: 2, CH7: 3}


@pytest.mark.parametrize("page", [CH6, CH7])
def test_math_typeset_and_equations_numbered(render, page):
    dom = render(page)
    assert len(re.findall(r"<mjx-container", dom)) >= 30, "MathJax did not typeset the page"
    assert not re.findall(r'<span class="math notranslate nohighlight">\\\(', dom)
    for label in EQUATIONS[page]:
        assert f'id="equation-{label}"' in dom, f"equation {label} missing"
    assert "equation not found" not in dom and "??" not in re.sub(r"<script.*?</script>", "", dom, flags=re.S)


@pytest.mark.parametrize("page", [CH6, CH7])
def test_figures_proofs_exercises_citations(render, page):
    dom = render(page)
    figures = re.findall(r"<figure[^>]*>.*?</figure>", dom, flags=re.S)
    assert len(figures) >= FIGURES[page]
    for fig in figures:
        assert "<figcaption" in fig
        assert re.search(r'<img[^>]+alt="[^"]+"', fig), "figure image without alt text"
    assert 'class="proof' in dom
    assert len(re.findall(r'class="[^"]*exercise', dom)) >= 2
    assert "Kingma" in dom and "Molchanov" in dom


def test_chapter7_widget_is_rendered(render):
    dom = render(CH7)
    assert "widget-slider" in dom or "widget-hslider" in dom, "no rendered slider: the widget manager did not run"
    assert "widget-checkbox" in dom


def test_screenshots(screenshot):
    for page, name in ((CH6, "06_gaussian_dropout_log_uniform"), (CH7, "07_kl_approximation")):
        assert screenshot(page, name).stat().st_size > 20_000
