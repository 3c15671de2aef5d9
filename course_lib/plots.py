"""The course's one figure style, and small plotting helpers shared by chapters.

Figures are drawn on a white background so that they stay readable when the book
is shown in dark mode; axes are labelled and titles are left to the captions.
"""

from __future__ import annotations

import matplotlib as mpl
import numpy as np

from course_lib import validation as V

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


# --------------------------------------------------------------------------------------
# Weights of a pruned network (chapter 9): filter mosaics, weight patches, log alpha.
# --------------------------------------------------------------------------------------

#: Colour of the gaps between tiles of a :func:`filter_mosaic` (NaN entries).
GAP_COLOR = "#bdbdbd"


def _as_numpy(x) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch tensor
        x = x.detach().to("cpu").numpy()
    return np.asarray(x, dtype=float)


def filter_mosaic(weights, ncols: int | None = None, gap: int = 1) -> np.ndarray:
    """Tile convolution kernels into one 2-D image, with NaN gaps between tiles.

    Parameters
    ----------
    weights : array or Tensor, shape (out, in, kH, kW)
        A convolution weight (pruned entries are 0 and stay 0 in the image).
    ncols : int, optional
        Only for ``in == 1``: number of kernels per row (default: all ``out`` in one row).
    gap : int, default 1
        Width in pixels of the NaN separators (drawn in :data:`GAP_COLOR`).

    Returns
    -------
    ndarray of float
        With ``in == 1``: ``ceil(out / ncols)`` rows of ``ncols`` kernels.  With ``in > 1``:
        one row per input channel and one column per output channel (tile ``(i, o)`` is
        ``weights[o, i]``).  Unused tiles and gaps are NaN.

    Raises
    ------
    ValueError
        If ``weights`` is not 4-D, or ``ncols`` / ``gap`` is out of range.

    Examples
    --------
    >>> filter_mosaic(np.ones((3, 1, 2, 2)), ncols=2).shape
    (5, 5)
    """
    w = _as_numpy(weights)
    if w.ndim != 4:
        raise ValueError(
            f"filter_mosaic expects conv weights of shape (out, in, kH, kW), got "
            f"shape {w.shape}; pass layer.theta or layer.weight of a Conv2d."
        )
    gap = V.nonnegative_int(gap, "gap", hint="it counts pixels between tiles, e.g. gap=1")
    n_out, n_in, kh, kw = w.shape
    if n_in == 1:
        if ncols is None:
            ncols = n_out
        ncols = V.positive_int(ncols, "ncols")
        nrows = -(-n_out // ncols)
        tiles = {(k // ncols, k % ncols): w[k, 0] for k in range(n_out)}
    else:
        if ncols is not None:
            raise ValueError(
                "ncols applies to single-channel kernels only; with in > 1 the "
                "mosaic has one row per input channel and one column per output."
            )
        nrows, ncols = n_in, n_out
        tiles = {(i, o): w[o, i] for i in range(n_in) for o in range(n_out)}
    image = np.full((nrows * (kh + gap) - gap, ncols * (kw + gap) - gap), np.nan)
    for (r, c), tile in tiles.items():
        image[r * (kh + gap) : r * (kh + gap) + kh, c * (kw + gap) : c * (kw + gap) + kw] = tile
    return image


def show_weights(ax, image, vmax: float | None = None, cmap: str = "RdBu_r"):
    """Draw weights on a diverging colour map: 0 (a pruned weight) is white, NaN is grey.

    Parameters
    ----------
    ax : matplotlib Axes
    image : 2-D array or Tensor
        Weights, e.g. a :func:`filter_mosaic` or a patch of a weight matrix.
    vmax : float, optional
        Colour scale ``[-vmax, vmax]``; default: the largest finite ``|weight|``.
    cmap : str, default "RdBu_r"
        A diverging colour map whose middle is white.

    Returns
    -------
    matplotlib.image.AxesImage
        For a colour bar.

    Raises
    ------
    ValueError
        If ``image`` is not 2-D or ``vmax`` is not positive.
    """
    import matplotlib.pyplot as plt

    img = _as_numpy(image)
    if img.ndim != 2:
        raise ValueError(
            f"show_weights expects a 2-D image, got shape {img.shape}; build one "
            "with filter_mosaic(weights) or slice a weight matrix."
        )
    if vmax is None:
        finite = np.abs(img[np.isfinite(img)])
        vmax = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    vmax = V.positive_float(vmax, "vmax", meaning="the colour scale runs from -vmax to vmax")
    cm = plt.get_cmap(cmap).with_extremes(bad=GAP_COLOR)
    im = ax.imshow(np.ma.masked_invalid(img), cmap=cm, vmin=-vmax, vmax=vmax, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    return im


def show_mask(ax, mask):
    """Draw a pruning mask: kept weights black, pruned weights white.

    Parameters
    ----------
    ax : matplotlib Axes
    mask : 2-D bool array or Tensor
        True where a weight is kept (``layer.mask()``).

    Returns
    -------
    matplotlib.image.AxesImage
    """
    m = _as_numpy(mask)
    if m.ndim != 2:
        raise ValueError(
            f"show_mask expects a 2-D mask, got shape {m.shape}; slice the layer's mask() to a matrix first."
        )
    im = ax.imshow(m, cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    return im


def log_alpha_histograms(model, axes=None, bins: int = 64):
    """One histogram of log alpha per sparse-VD layer, with the pruning threshold.

    Parameters
    ----------
    model : nn.Module
        A network with :mod:`course_lib.layers` sparse layers (e.g. ``LeNet5()``).
    axes : sequence of Axes, optional
        One per sparse layer; default: a new row of panels.
    bins : int, default 64
        Bins over the clip range ``[LOG_ALPHA_MIN, LOG_ALPHA_MAX]`` of log alpha.

    Returns
    -------
    list of Axes
        Panel ``k`` is named after layer ``k``; the y axis (weight count) is logarithmic,
        a dashed line marks the threshold and the text gives the pruned percentage.

    Raises
    ------
    ValueError
        If the model has no sparse-VD layer, or ``axes`` has the wrong length.
    """
    import matplotlib.pyplot as plt

    from course_lib.layers import LOG_ALPHA_MAX, LOG_ALPHA_MIN, sparse_layers

    layers = sparse_layers(model)
    if not layers:
        raise ValueError(
            f"{type(model).__name__} has no sparse variational dropout layer, so it "
            "has no log alpha; pass a model built with sparse=True."
        )
    bins = V.positive_int(bins, "bins")
    if axes is None:
        _, axes = plt.subplots(1, len(layers), figsize=(2.4 * len(layers), 2.6), sharey=True)
    axes = list(np.atleast_1d(axes))
    if len(axes) != len(layers):
        raise ValueError(
            f"got {len(axes)} axes for {len(layers)} sparse layers "
            f"({[n for n, _ in layers]}); pass one Axes per layer."
        )
    edges = np.linspace(LOG_ALPHA_MIN, LOG_ALPHA_MAX, bins + 1)
    for ax, (name, m) in zip(axes, layers):
        la = _as_numpy(m.log_alpha).ravel()
        pruned = float(np.mean(la >= m.threshold))
        ax.hist(la, bins=edges, color="#1f77b4")
        ax.axvline(m.threshold, color="#d62728", ls="--", lw=1.2)
        ax.set_yscale("log")
        ax.set_title(name)
        ax.set_xlabel(r"$\log\alpha$")
        ax.text(
            0.03,
            0.97,
            f"pruned\n{100 * pruned:.1f} %",
            transform=ax.transAxes,
            va="top",
            ha="left",
            fontsize=8,
        )
    axes[0].set_ylabel("number of weights")
    return axes
