"""The built chapter 9 page in a real browser: math, equations, figures, proof, exercises, citations."""

from __future__ import annotations

import json
import re
from pathlib import Path

from page_dom import exercises, page_text, shown, solved, unresolved_references, with_class

ROOT = Path(__file__).resolve().parents[2]
#: The recorded 200-epoch paper-recipe run (benchmarks/README.md); chapter 9 prints it as a table row.
RECORDED = ROOT / "benchmarks" / "results" / "lenet5-paper.json"

CH9 = "chapters/09_lenet5.html"
EQUATIONS = ("eq-ch9-objective", "eq-ch9-lrt-conv", "eq-ch9-compression", "eq-ch9-bytes")
FIGURES = ("fig-ch9-curves", "fig-ch9-conv1", "fig-ch9-conv2", "fig-ch9-fc1", "fig-ch9-log-alpha")


def test_math_typeset_and_equations_numbered(render):
    dom = render(CH9)
    assert len(re.findall(r"<mjx-container", dom)) >= 30, "MathJax did not typeset the page"
    assert not re.findall(r'<span class="math notranslate nohighlight">\\\(', dom)
    for label in EQUATIONS:
        assert f'id="equation-{label}"' in dom, f"equation {label} missing"
    # a dangling {eq}/{numref} stays as its label in code (the build log says "equation not found")
    assert not unresolved_references(dom), f"unresolved references: {unresolved_references(dom)}"
    assert "??" not in shown(dom)


def test_figures_have_captions_and_alt_text(render):
    dom = render(CH9)
    figures = re.findall(r"<figure[^>]*>.*?</figure>", dom, flags=re.S)
    for name in FIGURES:
        fig = next((f for f in figures if f'id="{name}"' in f), None)
        assert fig is not None, f"figure {name} missing"
        assert "<figcaption" in fig
        assert re.search(r'<img[^>]+alt="[^"]+"', fig), f"figure {name} has no alt text"


def test_proof_exercises_solutions_citations_and_pending_row(render):
    dom = render(CH9)
    assert with_class(dom, "proof") >= 1
    assert len(exercises(dom)) >= 3, f"exercises on the page: {exercises(dom)}"
    assert solved(dom) == exercises(dom), "an exercise has no solution (or a solution names no exercise)"
    for author in ("LeCun", "Molchanov", "Han"):
        assert author in dom, f"citation of {author} missing"


def recorded_row(run: dict) -> str:
    """The table row chapter 9 prints for a recorded run: error %, pruned % per layer, compression."""
    cells = [
        f"{100 * run['test_error']:.2f}",
        *(f"{100 * p:.1f}" for p in run["layer_sparsity"].values()),
        f"{run['compression']:.0f}",
    ]
    return " ".join([f"course, paper ({run['device']})", *cells])


def test_the_recorded_paper_run_is_the_row_on_the_page(render):
    """The 200-epoch LeNet-5 run is recorded in the repository, and the page shows its numbers."""
    assert RECORDED.is_file(), f"{RECORDED.relative_to(ROOT)} (the recorded paper-recipe run) is missing"
    run = json.loads(RECORDED.read_text(encoding="utf-8"))
    text = page_text(render(CH9))
    assert recorded_row(run) in text, (
        f"chapter 9 does not show the recorded run {recorded_row(run)!r}: re-execute the chapter "
        "after recording the run"
    )
    other = {**run, "test_error": run["test_error"] + 0.0001}  # a run the page does not show
    assert recorded_row(other) not in text


def test_screenshot(screenshot):
    assert screenshot(CH9, "09_lenet5", size="1280,9000").stat().st_size > 50_000
