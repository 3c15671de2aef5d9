"""Explorables: figures the reader moves by hand, in the static book and in JupyterLab alike.

An explorable is a chapter's own plotting function drawn once for every point of a
declared grid of parameter values.  The frames are PNG images in an ``ipywidgets.Stack``
whose ``selected_index`` is ``jslink``-ed to a ``SelectionSlider``'s ``index``: the link
runs in the browser, so moving the slider switches the frame with no kernel (the book's
locally served widget manager renders the stored widget state).  Two parameters give
nested stacks, each inner one linked to the second slider.  ::

    def draw(p):                      # the chapter's plotting function
        fig, ax = plt.subplots(figsize=(6.4, 3.0))
        ...
        return fig

    explorable(draw, [Parameter("p", [0.1, 0.3, 0.5], label="dropout p", default=0.5)],
               caption="Train and test error as the dropout rate p moves.",
               alt="Two error curves against epochs")

The default frame is what a reader sees first (and what a static rendering without the
widget manager would show), so choose a default that already makes the point.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import ipywidgets as widgets
import numpy as np

from course_lib import validation as V

#: Resolution of the frames: modest, so that notebooks stay small (the book scales them).
FRAME_DPI = 80
#: Most frames one explorable may hold (each is a PNG stored in the notebook and the page).
MAX_FRAMES = 120
#: CSS classes the browser tests look for.
CSS_CLASS, FRAME_CLASS = "course-explorable", "course-explorable-frame"
CAPTION_CLASS, ALT_CLASS = "course-explorable-caption", "course-explorable-alt"
#: The alt text is read by screen readers but not shown (the frames are images without alt).
_VISUALLY_HIDDEN = (
    "position:absolute;width:1px;height:1px;margin:-1px;padding:0;overflow:hidden;"
    "clip:rect(0,0,0,0);white-space:nowrap;border:0"
)


@dataclass(frozen=True)
class Parameter:
    """One axis of an explorable's grid.

    Parameters
    ----------
    name : str
        The keyword under which each value is passed to the plotting function.
    values : sequence
        The declared grid (at least two values, no repeats).
    label : str, optional
        The slider's description (default: ``name``).
    unit : str, default ""
        Shown after each value in the slider's readout, e.g. ``"°"`` or ``"epochs"``.
    fmt : str, default "{:g}"
        Format of the value in the readout.
    default : optional
        The value shown first (default: the first value); must be one of ``values``.
    """

    name: str
    values: Sequence[Any]
    label: str | None = None
    unit: str = ""
    fmt: str = "{:g}"
    default: Any = None
    _index: int = field(init=False, repr=False, compare=False, default=0)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise (ValueError if isinstance(self.name, str) else TypeError)(
                f"Parameter name must be a Python identifier (a keyword of the plotting "
                f"function), got {self.name!r}."
            )
        if isinstance(self.values, (str, bytes)):
            raise TypeError(
                f"Parameter {self.name!r} needs a sequence of at least two values to move "
                f"between, got the string {self.values!r}; pass a list, e.g. list({self.values!r})."
            )
        values = list(self.values)
        if len(values) < 2:
            raise ValueError(
                f"Parameter {self.name!r} needs a sequence of at least two values to move "
                f"between, got {self.values!r}."
            )
        labels = [self.readout(v) for v in values]
        repeated = sorted({lab for lab in labels if labels.count(lab) > 1})
        if repeated:
            raise ValueError(
                f"Parameter {self.name!r}: values {repeated} appear twice in the readout; "
                f"remove the repeats or give a finer fmt (now {self.fmt!r})."
            )
        object.__setattr__(self, "values", tuple(values))
        object.__setattr__(self, "_index", 0 if self.default is None else self._find(self.default))

    def _find(self, value: Any) -> int:
        for i, v in enumerate(self.values):
            same = v == value
            if isinstance(v, (int, float, np.number)) and isinstance(value, (int, float, np.number)):
                same = bool(np.isclose(float(v), float(value), rtol=1e-9, atol=0.0))
            if same:
                return i
        raise ValueError(
            f"Parameter {self.name!r}: default {value!r} is not one of its values "
            f"{list(self.values)}; pick one of them or add it to the grid."
        )

    @property
    def default_index(self) -> int:
        """Position of the default value in :attr:`values`."""
        return self._index

    def readout(self, value: Any) -> str:
        """The slider's text for ``value``: the formatted value, then the unit."""
        try:
            text = self.fmt.format(value)
        except (ValueError, TypeError) as err:
            raise ValueError(
                f"Parameter {self.name!r}: fmt {self.fmt!r} cannot format {value!r} "
                f"({err}); use e.g. '{{}}' for text values."
            ) from None
        return f"{text} {self.unit}".strip() if self.unit else text


def render_frame(fig, dpi: int = FRAME_DPI, colors: int | None = 256) -> bytes:
    """A matplotlib figure as PNG bytes; the figure is closed afterwards.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    dpi : int, default FRAME_DPI
    colors : int or None, default 256
        Reduce the image to this many colours (an adaptive palette: line plots look the same
        and the file is several times smaller); ``None`` keeps full colour.
    """
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure
    from PIL import Image

    if not isinstance(fig, Figure):
        raise TypeError(
            f"the plotting function must return a matplotlib Figure (end it with "
            f"`return fig`), got {type(fig).__name__}."
        )
    dpi = V.positive_int(dpi, "dpi")
    if colors is not None:
        colors = V.integer(colors, "colors", minimum=2, maximum=256, meaning="palette size")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)  # no bbox_inches: every frame keeps the same size
    plt.close(fig)
    if colors is None:
        return buf.getvalue()
    img = Image.open(io.BytesIO(buf.getvalue())).convert("RGB").quantize(colors=colors)
    out = io.BytesIO()
    img.save(out, format="PNG", optimize=True)
    return out.getvalue()


def render_frames(
    draw: Callable[..., Any],
    parameters: Sequence[Parameter],
    dpi: int = FRAME_DPI,
    max_frames: int = MAX_FRAMES,
    **fixed: Any,
) -> np.ndarray:
    """Draw ``draw(**point, **fixed)`` at every point of the grid.

    Returns
    -------
    ndarray of object, shape ``(len(p.values) for p in parameters)``
        PNG bytes of every frame; entry ``[i, j]`` has the i-th value of the first parameter
        and the j-th of the second.

    Raises
    ------
    ValueError
        No parameter, repeated names, or more than ``max_frames`` frames.
    """
    parameters = list(parameters)
    if not all(isinstance(p, Parameter) for p in parameters):
        raise TypeError(
            f"give a list of Parameter(name, values, ...) to move, got "
            f"{[type(p).__name__ for p in parameters]}."
        )
    if not parameters:
        raise ValueError("give a list of at least one Parameter(name, values, ...) to move.")
    max_frames = V.positive_int(max_frames, "max_frames")
    names = [p.name for p in parameters]
    if len(set(names)) != len(names):
        raise ValueError(f"parameter names must differ, got {names}.")
    clash = sorted(set(names) & set(fixed))
    if clash:
        raise ValueError(f"{clash} are both moved and fixed; drop them from the fixed keywords.")
    shape = tuple(len(p.values) for p in parameters)
    if math.prod(shape) > max_frames:
        raise ValueError(
            f"{' x '.join(map(str, shape))} = {math.prod(shape)} frames is more than "
            f"max_frames={max_frames}; use a coarser grid (frames are stored in the "
            f"notebook and the page)."
        )
    frames = np.empty(shape, dtype=object)
    for idx in np.ndindex(*shape):
        point = {p.name: p.values[i] for p, i in zip(parameters, idx)}
        frames[idx] = render_frame(draw(**point, **fixed), dpi=dpi)
    return frames


def explorable(
    draw: Callable[..., Any],
    parameters: Parameter | Sequence[Parameter],
    *,
    caption: str,
    alt: str,
    play: bool = False,
    interval_ms: int = 600,
    dpi: int = FRAME_DPI,
    max_frames: int = MAX_FRAMES,
    **fixed: Any,
):
    """An explorable figure: sliders over a declared grid that switch precomputed frames.

    Parameters
    ----------
    draw : callable
        The chapter's plotting function: ``draw(**values, **fixed)`` returns a Figure.
        Keep the axes' limits fixed across the grid so that only the data move.
    parameters : Parameter or sequence of Parameter
        One or two (or more) axes of the grid; the first is the outer slider.
    caption : str
        Shown under the figure (plain text or simple HTML).
    alt : str
        What the figure shows, for a reader who cannot see it (kept in the caption, visually
        hidden; the sliders' readouts give the values of the frame shown).
    play : bool, default False
        Add a Play button that steps the first slider (e.g. through epochs). In the static book
        it works through ``_ext/page_hygiene.py`` (the theme's Font Awesome swaps the button's
        ``<i>`` icon for an ``<svg>``, which html-manager 1.0.15's Play view does not expect).
    interval_ms : int, default 600
        Time between frames when playing.
    dpi : int, default FRAME_DPI
    max_frames : int, default MAX_FRAMES
    **fixed
        Further keywords passed unchanged to every call of ``draw``.

    Returns
    -------
    Explorable
        An ``ipywidgets.VBox`` (sliders, frames, caption) with ``frames`` (PNG bytes over the
        grid), ``nbytes``, ``parameters`` and ``links`` (the browser-side jslinks) attributes.
    """
    if isinstance(parameters, Parameter):
        parameters = [parameters]
    parameters = list(parameters)
    if not isinstance(caption, str) or not isinstance(alt, str) or not caption.strip() or not alt.strip():
        raise (ValueError if isinstance(caption, str) and isinstance(alt, str) else TypeError)(
            "an explorable needs a caption (what to look for) and an alt text (what the "
            "figure shows), both non-empty strings."
        )
    play = V.boolean(play, "play")
    interval_ms = V.positive_int(interval_ms, "interval_ms", meaning="milliseconds between frames")
    frames = render_frames(draw, parameters, dpi=dpi, max_frames=max_frames, **fixed)

    sliders = [_slider(p) for p in parameters]
    links: list = []  # every jslink, kept on the box (tests and readers can see what moves what)
    figure = _frame_stack(frames, parameters, sliders, links, level=0, prefix=())
    controls: list = list(sliders)
    if play:
        controls = [_play_row(parameters[0], sliders[0], interval_ms, links), *sliders[1:]]
    box = Explorable([*controls, figure, _caption(caption, alt)])
    box.add_class(CSS_CLASS)
    box.frames, box.parameters, box.links = frames, parameters, links
    box.nbytes = int(sum(len(f) for f in frames.flat))
    return box


def _slider(p: Parameter) -> widgets.SelectionSlider:
    """The slider of one parameter: its readouts as labels, the frame index as value."""
    return widgets.SelectionSlider(
        options=[(p.readout(v), i) for i, v in enumerate(p.values)],
        value=p.default_index,
        description=p.label or p.name,
        continuous_update=True,
        style={"description_width": "initial"},
        layout=widgets.Layout(width="min(30em, 95%)"),
    )


def _frame_stack(frames, parameters, sliders, links, *, level: int, prefix: tuple[int, ...]):
    """The frames of the grid below ``prefix`` as (nested) Stacks jslinked to their sliders."""
    p = parameters[level]
    if level == len(parameters) - 1:
        children = []
        for i in range(len(p.values)):
            # No tooltip: the book's widget manager (html-manager 1.0.15) cannot render an
            # Image that has one ("Could not create a view"). The alt text is in the caption.
            image = widgets.Image(
                value=frames[prefix + (i,)],
                format="png",
                layout=widgets.Layout(max_width="100%", height="auto"),
            )
            image.add_class(FRAME_CLASS)
            children.append(image)
    else:
        children = [
            _frame_stack(frames, parameters, sliders, links, level=level + 1, prefix=prefix + (i,))
            for i in range(len(p.values))
        ]
    stack = widgets.Stack(children, selected_index=p.default_index)
    links.append(widgets.jslink((sliders[level], "index"), (stack, "selected_index")))
    return stack


def _play_row(p: Parameter, slider: widgets.SelectionSlider, interval_ms: int, links: list) -> widgets.HBox:
    """A repeating Play button that steps ``slider`` (one-way linked), beside it."""
    player = widgets.Play(
        min=0,
        max=len(p.values) - 1,
        step=1,
        value=p.default_index,
        interval=int(interval_ms),
        description="play",
        repeat=True,
    )  # from the last frame, Play restarts
    # one-way: a two-way link to the slider stops the slider's own link to the frames in the
    # book's widget manager (html-manager 1.0.15, checked in the browser)
    links.append(widgets.jsdlink((player, "value"), (slider, "index")))
    return widgets.HBox([player, slider])


def _caption(caption: str, alt: str) -> widgets.HTML:
    """The caption, and the alt text visually hidden (html-manager cannot give an Image a tooltip)."""
    return widgets.HTML(
        value=f'<p class="{CAPTION_CLASS}">{caption}</p>'
        f'<p class="{ALT_CLASS}" style="{_VISUALLY_HIDDEN}">Figure: {alt}</p>'
    )


class Explorable(widgets.VBox):
    """A VBox of sliders, precomputed frames and a caption (built by :func:`explorable`)."""

    def frame(self, **values: Any) -> bytes:
        """The PNG bytes of the frame at the given parameter values."""
        names = [p.name for p in self.parameters]
        if sorted(values) != sorted(names):
            raise ValueError(f"give exactly the values of {names}, got {sorted(values)}.")
        return self.frames[tuple(p._find(values[p.name]) for p in self.parameters)]
