"""The built chapter 9 page in a real browser: math, equations, figures, proof, exercises, citations."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CH9 = "chapters/09_lenet5.html"
EQUATIONS = ("eq-ch9-objective", "eq-ch9-lrt-conv", "eq-ch9-compression", "eq-ch9-bytes")
FIGURES = ("fig-ch9-curves", "fig-ch9-conv1", "fig-ch9-conv2", "fig-ch9-fc1", "fig-ch9-log-alpha")


def test_math_typeset_and_equations_numbered(render):
    dom = render(CH9)
    assert len(re.findall(r"<mjx-container", dom)) >= 30, "MathJax did not typeset the page"
    assert not re.findall(r'<span class="math notranslate nohighlight">\\\(', dom)
    for label in EQUATIONS:
        assert f'id="equation-{label}"' in dom, f"equation {label} missing"
    assert "equation not found" not in dom
    assert "??" not in re.sub(r"<script.*?</script>", "", dom, flags=re.S)


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
    assert 'class="proof' in dom
    assert len(re.findall(r'class="[^"]*exercise', dom)) >= 3
    assert len(re.findall(r'class="[^"]*solution', dom)) >= 3
    for author in ("LeCun", "Molchanov", "Han"):
        assert author in dom, f"citation of {author} missing"
    # the 200-epoch LeNet-5 row: shown when benchmarks/results/lenet5-paper.json is recorded
    recorded = (ROOT / "benchmarks" / "results" / "lenet5-paper.json").is_file()
    assert ("course, paper (" in dom) == recorded, "the recorded LeNet-5 run and the page disagree"


def test_screenshot(screenshot):
    assert screenshot(CH9, "09_lenet5", size="1280,9000").stat().st_size > 50_000
