"""The built chapter 4 and 5 pages in a real browser: math, equations, figures, widget, citations."""
from __future__ import annotations

import re

import pytest

CH4 = "chapters/04_variational_inference.html"
CH5 = "chapters/05_regularization_dropout.html"
EQUATIONS = {
    CH4: ("eq-ch4-vb", "eq-ch4-elbo", "eq-ch4-decomposition", "eq-ch4-elbo-linear", "eq-ch4-estimator",
          "eq-ch4-two-estimators", "eq-ch4-data-kl"),
    CH5: ("eq-ch5-map", "eq-ch5-l2", "eq-ch5-elbo", "eq-ch5-noise", "eq-ch5-alpha", "eq-ch5-mc"),
}
FIGURES = {CH4: 6, CH5: 4}
CITED = {CH4: ("Kingma", "Williams", "Hoffman"), CH5: ("Srivastava", "Gal")}


@pytest.mark.parametrize("page", [CH4, CH5])
def test_math_typeset_and_equations_numbered(render, page):
    dom = render(page)
    assert len(re.findall(r"<mjx-container", dom)) >= 30, "MathJax did not typeset the page"
    assert not re.findall(r'<span class="math notranslate nohighlight">\\\(', dom)
    for label in EQUATIONS[page]:
        assert f'id="equation-{label}"' in dom, f"equation {label} missing"
    assert "equation not found" not in dom and "??" not in re.sub(r"<script.*?</script>", "", dom, flags=re.S)


@pytest.mark.parametrize("page", [CH4, CH5])
def test_figures_proofs_exercises_citations(render, page):
    dom = render(page)
    figures = re.findall(r"<figure[^>]*>.*?</figure>", dom, flags=re.S)
    assert len(figures) >= FIGURES[page]
    for fig in figures:
        assert "<figcaption" in fig
        assert re.search(r'<img[^>]+alt="[^"]+"', fig), "figure image without alt text"
    assert 'class="proof' in dom
    assert len(re.findall(r'class="[^"]*exercise', dom)) >= 2
    for name in CITED[page]:
        assert name in dom, f"citation of {name} missing"


def test_chapter4_widget_is_rendered(render):
    dom = render(CH4)
    assert "widget-slider" in dom or "widget-hslider" in dom, "no rendered slider: the widget manager did not run"


def test_screenshots(screenshot):
    for page, name in ((CH4, "04_variational_inference"), (CH5, "05_regularization_dropout")):
        assert screenshot(page, name).stat().st_size > 20_000
