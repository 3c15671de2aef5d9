"""Tests for course_lib.plots: the one figure style."""
from __future__ import annotations

import matplotlib as mpl
import matplotlib.pyplot as plt

from course_lib import plots


def test_style_is_white_and_readable_in_dark_mode():
    mpl.rcParams["axes.facecolor"] = "black"
    plots.apply_style()
    for key in ("figure.facecolor", "axes.facecolor", "savefig.facecolor"):
        assert mpl.rcParams[key] == "white", key
    assert mpl.rcParams["axes.grid"] is True


def test_figures_use_the_style_size_and_dpi():
    plots.apply_style()
    fig = plt.figure()
    try:
        assert tuple(fig.get_size_inches()) == tuple(plots.STYLE["figure.figsize"])
        assert fig.dpi == plots.STYLE["figure.dpi"]
    finally:
        plt.close(fig)
