"""The course's one figure style, and small plotting helpers shared by chapters.

Figures are drawn on a white background so that they stay readable when the book
is shown in dark mode; axes are labelled and titles are left to the captions.
"""
from __future__ import annotations

import matplotlib as mpl

#: rcParams applied by :func:`apply_style` (and so by ``course_lib.setup``).
STYLE: dict[str, object] = {
    "figure.figsize": (6.4, 3.6),
    "figure.dpi": 100,  # small stored notebooks; the book scales images to the page
    "savefig.dpi": 100,
    "figure.facecolor": "white",
    "axes.facecolor": "white",
    "savefig.facecolor": "white",
    "axes.edgecolor": "#333333",
    "axes.labelcolor": "#111111",
    "xtick.color": "#333333",
    "ytick.color": "#333333",
    "text.color": "#111111",
    "axes.grid": True,
    "grid.color": "#dddddd",
    "grid.linewidth": 0.6,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "font.size": 10,
    "axes.labelsize": 10,
    "legend.fontsize": 9,
    "legend.frameon": False,
    "figure.constrained_layout.use": True,
    "image.cmap": "viridis",
    "axes.prop_cycle": mpl.cycler(
        color=["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#17becf"]
    ),
}


def apply_style() -> None:
    """Apply :data:`STYLE` to matplotlib's global rcParams."""
    mpl.rcParams.update(STYLE)
