"""The built chapter 2 and 3 pages in a real browser: math, equations, figures, widgets, citations."""
from __future__ import annotations

import re

import pytest

CH2 = "chapters/02_bayes.html"
CH3 = "chapters/03_bayesian_ml.html"
EQUATIONS = {
    CH2: ("eq-ch2-inversion", "eq-ch2-bayes", "eq-ch2-names", "eq-ch2-mle", "eq-ch2-posterior",
          "eq-ch2-predictive", "eq-ch2-beta-posterior", "eq-ch2-gauss-posterior"),
    CH3: ("eq-ch3-training", "eq-ch3-test", "eq-ch3-ensemble", "eq-ch3-model", "eq-ch3-posterior",
          "eq-ch3-predictive", "eq-ch3-evidence", "eq-ch3-logistic"),
}
FIGURES = {CH2: 4, CH3: 4}
CITED = {CH2: ("Bishop", "MacKay", "Brown"), CH3: ("Bishop", "MacKay")}


@pytest.mark.parametrize("page", [CH2, CH3])
def test_math_typeset_and_equations_numbered(render, page):
    dom = render(page)
    assert len(re.findall(r"<mjx-container", dom)) >= 30, "MathJax did not typeset the page"
    assert not re.findall(r'<span class="math notranslate nohighlight">\\\(', dom), "untypeset inline math"
    for label in EQUATIONS[page]:
        assert f'id="equation-{label}"' in dom, f"equation {label} missing"
    text = re.sub(r"<script.*?</script>", "", dom, flags=re.S)
    assert "equation not found" not in text and "??" not in text


@pytest.mark.parametrize("page", [CH2, CH3])
def test_figures_proofs_exercises_citations(render, page):
    dom = render(page)
    figures = re.findall(r"<figure[^>]*>.*?</figure>", dom, flags=re.S)
    assert len(figures) >= FIGURES[page], f"only {len(figures)} figures"
    for fig in figures:
        assert "<figcaption" in fig
        assert re.search(r'<img[^>]+alt="[^"]+"', fig), "figure image without alt text"
    assert 'class="proof' in dom
    assert len(re.findall(r'class="[^"]*exercise', dom)) >= 2
    assert "solution" in dom
    for author in CITED[page]:
        assert author in dom, f"citation of {author} missing"


@pytest.mark.parametrize("page", [CH2, CH3])
def test_widget_is_rendered(render, page):
    dom = render(page)
    assert "widget-slider" in dom or "widget-hslider" in dom, "no rendered slider: the widget manager did not run"


def test_screenshots(screenshot):
    for page, name in ((CH2, "02_bayes"), (CH3, "03_bayesian_ml")):
        assert screenshot(page, name).stat().st_size > 20_000
