"""Tests for course_lib.explorable: frames over a grid, switched in the browser by jslink."""

from __future__ import annotations

import io

import ipywidgets as widgets
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from course_lib.explorable import (  # noqa: E402
    CAPTION_CLASS,
    CSS_CLASS,
    FRAME_CLASS,
    MAX_FRAMES,
    Explorable,
    Parameter,
    explorable,
    render_frame,
    render_frames,
)

calls: list[dict] = []


def draw(p, q=1, colour="C0"):
    calls.append({"p": p, "q": q})
    fig, ax = plt.subplots(figsize=(3, 2))
    x = np.linspace(0, 1, 50)
    ax.plot(x, p * np.sin(2 * np.pi * q * x), color=colour)
    ax.set_ylim(-2, 2)
    return fig


def links(box):
    return box.links


# --- Parameter ----------------------------------------------------------------------


def test_parameter_readout_default_and_units():
    p = Parameter("p", [0.1, 0.5, 0.9], label="dropout p", fmt="{:.1f}", default=0.5)
    assert p.values == (0.1, 0.5, 0.9)
    assert p.default_index == 1
    assert p.readout(0.5) == "0.5"
    q = Parameter("angle", [0, 45, 90], unit="°")
    assert q.default_index == 0 and q.readout(45) == "45 °"
    # float defaults are matched up to round-off (np.linspace grids)
    r = Parameter("x", np.linspace(0, 1, 11), fmt="{:.1f}", default=0.3)
    assert r.default_index == 3


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"name": "not a name", "values": [1, 2]}, "identifier"),
        ({"name": "p", "values": [1]}, "at least two values"),
        ({"name": "p", "values": [1, 2], "default": 3}, "not one of its values"),
        ({"name": "p", "values": [0.11, 0.12], "fmt": "{:.1f}"}, "appear twice"),
        ({"name": "p", "values": ["a", "b"]}, "cannot format"),
    ],
)
def test_parameter_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Parameter(**kwargs)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"name": "p", "values": "ab"}, r"at least two values .* got the string 'ab'; pass a list"),
        ({"name": 3, "values": [1, 2]}, "identifier"),
    ],
)
def test_parameter_wrong_types(kwargs, match):
    with pytest.raises(TypeError, match=match):
        Parameter(**kwargs)


# --- frames -------------------------------------------------------------------------


def test_render_frame_is_png_and_closes_the_figure():
    fig = draw(1.0)
    before = len(plt.get_fignums())
    png = render_frame(fig, dpi=50)
    assert len(plt.get_fignums()) == before - 1
    img = Image.open(io.BytesIO(png))
    assert img.format == "PNG" and img.size == (150, 100)
    full = render_frame(draw(1.0), dpi=50, colors=None)
    assert len(png) < len(full)  # the palette makes the frame smaller


def test_render_frame_refuses_what_is_not_a_figure():
    with pytest.raises(TypeError, match="return fig"):
        render_frame(None)


def test_render_frames_grid_order_and_fixed_keywords():
    calls.clear()
    frames = render_frames(draw, [Parameter("p", [1, 2]), Parameter("q", [1, 2, 3])], dpi=30, colour="k")
    assert frames.shape == (2, 3)
    assert calls == [{"p": p, "q": q} for p in (1, 2) for q in (1, 2, 3)]
    assert len({f for f in frames.flat}) == 6  # every frame differs


@pytest.mark.parametrize(
    "params, fixed, match",
    [
        ([], {}, "at least one Parameter"),
        ([Parameter("p", [1, 2]), Parameter("p", [3, 4])], {}, "must differ"),
        ([Parameter("p", [1, 2])], {"p": 1}, "both moved and fixed"),
        ([Parameter("p", range(20)), Parameter("q", range(MAX_FRAMES // 10))], {}, "max_frames"),
    ],
)
def test_render_frames_bad_input(params, fixed, match):
    with pytest.raises(ValueError, match=match):
        render_frames(draw, params, dpi=30, **fixed)


# --- the widget ---------------------------------------------------------------------


def test_one_parameter_explorable_links_slider_to_stack():
    e = explorable(
        draw,
        Parameter("p", [0.5, 1.0, 1.5], label="amplitude", default=1.0),
        caption="Watch the amplitude.",
        alt="A sine curve",
        dpi=30,
    )
    assert isinstance(e, Explorable) and CSS_CLASS in e._dom_classes
    slider, stack, note = e.children
    assert isinstance(slider, widgets.SelectionSlider)
    assert [label for label, _ in slider.options] == ["0.5", "1", "1.5"]
    assert slider.index == 1 and stack.selected_index == 1 and slider.description == "amplitude"
    assert CAPTION_CLASS in note.value and "Watch the amplitude." in note.value
    (link,) = links(e)
    assert (link.source[0], link.source[1]) == (slider, "index")
    assert (link.target[0], link.target[1]) == (stack, "selected_index")
    images = stack.children
    assert all(FRAME_CLASS in im._dom_classes for im in images)
    assert "Figure: A sine curve" in note.value
    assert all(im.tooltip is None for im in images)  # html-manager 1.0.15 cannot render an Image with one
    assert images[2].value == e.frame(p=1.5) and e.nbytes == sum(len(im.value) for im in images)


def test_two_parameter_explorable_nests_stacks():
    e = explorable(
        draw,
        [Parameter("p", [1, 2], default=2), Parameter("q", [1, 2, 3], unit="Hz", default=3)],
        caption="c",
        alt="a",
        dpi=30,
    )
    s1, s2, outer, _ = e.children
    assert s1.index == 1 and s2.index == 2 and outer.selected_index == 1
    assert all(isinstance(inner, widgets.Stack) and inner.selected_index == 2 for inner in outer.children)
    pairs = {(ln.source[0].model_id, ln.target[0].model_id) for ln in links(e)}
    assert (s1.model_id, outer.model_id) in pairs
    assert all((s2.model_id, inner.model_id) in pairs for inner in outer.children)
    assert outer.children[0].children[1].value == e.frame(p=1, q=2)


def test_play_button_steps_the_first_slider():
    e = explorable(draw, Parameter("p", [1, 2, 3], label="epoch"), caption="c", alt="a", play=True, dpi=30)
    row = e.children[0]
    player, slider = row.children
    assert isinstance(player, widgets.Play) and (player.min, player.max) == (0, 2)
    assert player.repeat  # a default at the last frame would otherwise leave Play nothing to play
    assert any(ln.source == (player, "value") and ln.target == (slider, "index") for ln in links(e))


@pytest.mark.parametrize("caption, alt", [("", "a"), ("c", " ")])
def test_explorable_needs_caption_and_alt(caption, alt):
    with pytest.raises(ValueError, match="caption"):
        explorable(draw, Parameter("p", [1, 2]), caption=caption, alt=alt)
    with pytest.raises(TypeError, match="caption"):
        explorable(draw, Parameter("p", [1, 2]), caption=None, alt=alt)


def test_explorable_options_are_checked():
    with pytest.raises(TypeError, match="play must be True or False, got 1"):
        explorable(draw, Parameter("p", [1, 2]), caption="c", alt="a", play=1)
    with pytest.raises(
        ValueError, match=r"interval_ms \(milliseconds between frames\) must be a positive integer"
    ):
        explorable(draw, Parameter("p", [1, 2]), caption="c", alt="a", interval_ms=0)
    with pytest.raises(
        TypeError, match=r"give a list of Parameter\(name, values, \.\.\.\) to move, got \['str'\]"
    ):
        render_frames(draw, ["p"], dpi=30)
    with pytest.raises(TypeError, match="dpi must be a positive integer, got 30.5"):
        render_frame(draw(1.0), dpi=30.5)


def test_frame_lookup_bad_input():
    e = explorable(draw, Parameter("p", [1, 2]), caption="c", alt="a", dpi=30)
    with pytest.raises(ValueError, match="exactly the values"):
        e.frame(q=1)
    with pytest.raises(ValueError, match="not one of its values"):
        e.frame(p=5)
