"""Chapters 2-8, 10 and 11 in a real browser: their equations, figures, proofs, exercises, citations, widgets.

The crawl in ``test_book.py`` checks every page generically; this file checks what each of these
chapters must contain (its labelled equations, how many figures, whom it cites, which widget).
Chapters 1 and 9 have files of their own (``test_chapter1.py``, ``test_chapter9.py``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

from page_dom import exercises, shown, solved, unresolved_references, with_class


@dataclass(frozen=True)
class Chapter:
    stem: str
    equations: tuple[str, ...]
    figures: int  # static captioned figures (an explorable replaced the one it would repeat)
    cited: tuple[str, ...]
    widgets: tuple[str, ...] = ()  # CSS classes of rendered widget controls that must appear

    @property
    def page(self) -> str:
        return f"chapters/{self.stem}.html"


SLIDER = ("widget-slider", "widget-hslider")
CHAPTERS = [
    Chapter(
        "02_bayes",
        (
            "eq-ch2-inversion",
            "eq-ch2-bayes",
            "eq-ch2-names",
            "eq-ch2-mle",
            "eq-ch2-posterior",
            "eq-ch2-predictive",
            "eq-ch2-beta-posterior",
            "eq-ch2-gauss-posterior",
        ),
        3,
        ("Bishop", "MacKay", "Brown"),
        ("explorable",),
    ),
    Chapter(
        "03_bayesian_ml",
        (
            "eq-ch3-training",
            "eq-ch3-test",
            "eq-ch3-ensemble",
            "eq-ch3-model",
            "eq-ch3-posterior",
            "eq-ch3-predictive",
            "eq-ch3-evidence",
            "eq-ch3-logistic",
        ),
        3,
        ("Bishop", "MacKay"),
        ("explorable",),
    ),
    Chapter(
        "04_variational_inference",
        (
            "eq-ch4-vb",
            "eq-ch4-elbo",
            "eq-ch4-decomposition",
            "eq-ch4-elbo-linear",
            "eq-ch4-estimator",
            "eq-ch4-two-estimators",
            "eq-ch4-data-kl",
        ),
        6,
        ("Kingma", "Williams", "Hoffman"),
        ("explorable",),
    ),
    Chapter(
        "05_regularization_dropout",
        ("eq-ch5-map", "eq-ch5-l2", "eq-ch5-elbo", "eq-ch5-noise", "eq-ch5-alpha", "eq-ch5-mc"),
        3,
        ("Srivastava", "Gal"),
        ("explorable",),
    ),
    Chapter(
        "06_gaussian_dropout_log_uniform",
        (
            "eq-ch6-gauss-dropout",
            "eq-ch6-elbo",
            "eq-ch6-log-uniform",
            "eq-ch6-neg-kl",
            "eq-ch6-precision",
            "eq-ch6-variational-dropout",
            "eq-ch6-cubic",
        ),
        1,
        ("Kingma", "Molchanov"),
        ("explorable",),
    ),
    Chapter(
        "07_kl_approximation",
        ("eq-ch7-neg-kl", "eq-ch7-limit", "eq-ch7-neg-kl-mu", "eq-ch7-molchanov"),
        3,
        ("Kingma", "Molchanov"),
        ("explorable",),
    ),
    Chapter(
        "08_sparse_vd",
        (
            "eq-svdo-family",
            "eq-svdo-kl",
            "eq-svdo-elbo",
            "eq-multiplicative",
            "eq-additive",
            "eq-kl-theta",
            "eq-lrt",
            "eq-ch8-train-clip",
        ),
        4,
        ("Molchanov", "Kingma", "LeCun"),
        ("explorable",),
    ),
    Chapter(
        "10_ensembling",
        ("eq-ch10-predictive", "eq-ch10-mc", "eq-ch10-lrt", "eq-ch10-ece"),
        4,
        ("Gal", "Lakshminarayanan", "Ovadia", "Guo"),
        ("explorable",),
    ),
    Chapter(
        "11_predictive_uncertainty",
        ("eq-ch11-mixture", "eq-ch11-variance", "eq-ch11-elbo"),
        1,
        ("Foong", "Blundell", "Gal", "Lakshminarayanan"),
        ("explorable",),
    ),
]
IDS = [c.stem for c in CHAPTERS]


@pytest.mark.parametrize("chapter", CHAPTERS, ids=IDS)
def test_math_typeset_and_equations_numbered(render, chapter):
    dom = render(chapter.page)
    assert len(re.findall(r"<mjx-container", dom)) >= 30, "MathJax did not typeset the page"
    assert not re.findall(r'<span class="math notranslate nohighlight">\\\(', dom), "untypeset inline math"
    for label in chapter.equations:
        assert f'id="equation-{label}"' in dom, f"equation {label} missing"
    # a dangling {eq}/{numref} stays as its label in code (the build log says "equation not found")
    assert not unresolved_references(dom), f"unresolved references: {unresolved_references(dom)}"
    assert "??" not in shown(dom)


@pytest.mark.parametrize("chapter", CHAPTERS, ids=IDS)
def test_figures_proofs_exercises_citations(render, chapter):
    dom = render(chapter.page)
    figures = re.findall(r"<figure[^>]*>.*?</figure>", dom, flags=re.S)
    assert len(figures) >= chapter.figures, f"only {len(figures)} figures"
    for fig in figures:
        assert "<figcaption" in fig
        assert re.search(r'<img[^>]+alt="[^"]+"', fig), "figure image without alt text"
    assert with_class(dom, "proof") >= 1
    assert len(exercises(dom)) >= 2, f"exercises on the page: {exercises(dom)}"
    # every exercise has its (gated) solution, and each solution names an exercise of the page
    assert solved(dom) == exercises(dom), f"exercises {exercises(dom)}, solutions of {solved(dom)}"
    for author in chapter.cited:
        assert author in dom, f"citation of {author} missing"


@pytest.mark.parametrize(
    "chapter", [c for c in CHAPTERS if c.widgets], ids=[c.stem for c in CHAPTERS if c.widgets]
)
def test_widgets_are_rendered(render, chapter):
    dom = render(chapter.page)
    # rendered elements only: the stored widget state and the manager's stylesheet name every class
    for kind in chapter.widgets:
        if kind == "explorable":  # a slider over precomputed frames (moved in test_explorables.py)
            found = with_class(dom, "course-explorable") >= 1 and any(with_class(dom, k) for k in SLIDER)
        else:
            found = with_class(dom, kind) >= 1
        assert found, f"no rendered {kind}: the widget manager did not run"


def test_screenshots(screenshot):
    for chapter in CHAPTERS:
        assert screenshot(chapter.page, chapter.stem).stat().st_size > 20_000
