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


# ---------------------------------------------------------------- chapter 9 weight pictures
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402


def test_filter_mosaic_single_channel_layout_and_gaps():
    w = np.arange(3 * 4, dtype=float).reshape(3, 1, 2, 2) + 1
    img = plots.filter_mosaic(w, ncols=2, gap=1)
    assert img.shape == (2 * 2 + 1, 2 * 2 + 1)
    np.testing.assert_array_equal(img[0:2, 0:2], w[0, 0])
    np.testing.assert_array_equal(img[0:2, 3:5], w[1, 0])
    np.testing.assert_array_equal(img[3:5, 0:2], w[2, 0])
    assert np.isnan(img[2]).all() and np.isnan(img[:, 2]).all()  # gaps
    assert np.isnan(img[3:5, 3:5]).all()  # the unused 4th tile


def test_filter_mosaic_multi_channel_puts_inputs_in_rows_and_keeps_zeros():
    w = torch.randn(4, 3, 5, 5)
    w[2, 1] = 0.0  # a pruned kernel stays exactly zero, not NaN
    img = plots.filter_mosaic(w, gap=1)
    assert img.shape == (3 * 6 - 1, 4 * 6 - 1)
    np.testing.assert_allclose(img[6:11, 12:17], 0.0)
    np.testing.assert_allclose(img[12:17, 18:23], w[3, 2].numpy())
    assert np.isfinite(img).sum() == w.numel()


def test_show_weights_centres_the_colour_map_on_zero_and_greys_the_gaps():
    fig, ax = plt.subplots()
    try:
        img = np.array([[0.0, 2.0], [-1.0, np.nan]])
        im = plots.show_weights(ax, img)
        assert im.get_clim() == (-2.0, 2.0)
        rgba = im.to_rgba(np.ma.masked_invalid(img))
        assert np.all(rgba[0, 0, :3] > 0.9)  # zero -> (near) white
        np.testing.assert_allclose(rgba[1, 1, :3], mpl.colors.to_rgb(plots.GAP_COLOR))
    finally:
        plt.close(fig)


def test_log_alpha_histograms_count_every_weight_and_mark_the_threshold():
    from course_lib.models import LeNet300100

    net = LeNet300100(threshold=2.5)
    fig, axes = plt.subplots(1, 3)
    try:
        out = plots.log_alpha_histograms(net, axes)
        for ax, (name, m) in zip(out, net.weight_layers()):
            heights = sum(p.get_height() for p in ax.patches)
            assert heights == m.theta.numel()
            assert ax.get_title() == name
            assert ax.lines[0].get_xdata()[0] == 2.5
            assert ax.get_yscale() == "log"
    finally:
        plt.close(fig)


def test_weight_picture_helpers_reject_bad_input():
    from torch import nn

    with pytest.raises(ValueError, match=r"shape \(out, in, kH, kW\).*Conv2d"):
        plots.filter_mosaic(np.zeros((5, 5)))
    with pytest.raises(ValueError, match="ncols must be a positive integer"):
        plots.filter_mosaic(np.zeros((4, 1, 5, 5)), ncols=0)
    with pytest.raises(ValueError, match="ncols applies to single-channel kernels only"):
        plots.filter_mosaic(np.zeros((4, 2, 5, 5)), ncols=2)
    with pytest.raises(ValueError, match="gap must be a non-negative integer"):
        plots.filter_mosaic(np.zeros((4, 1, 5, 5)), gap=-1)
    with pytest.raises(TypeError, match="ncols must be a positive integer, got 2.0"):
        plots.filter_mosaic(np.zeros((4, 1, 5, 5)), ncols=2.0)
    assert plots.filter_mosaic(np.zeros((4, 1, 5, 5)), ncols=np.int64(2), gap=np.int64(0)).shape == (10, 10)
    fig, ax = plt.subplots()
    try:
        with pytest.raises(ValueError, match="expects a 2-D image.*filter_mosaic"):
            plots.show_weights(ax, np.zeros((2, 2, 2)))
        with pytest.raises(
            ValueError, match=r"vmax \(the colour scale runs from -vmax to vmax\) must be a positive"
        ):
            plots.show_weights(ax, np.zeros((2, 2)), vmax=0.0)
        with pytest.raises(ValueError, match="expects a 2-D mask"):
            plots.show_mask(ax, np.zeros(3, dtype=bool))
        with pytest.raises(ValueError, match="no sparse variational dropout layer.*sparse=True"):
            plots.log_alpha_histograms(nn.Sequential(nn.Linear(2, 2)), [ax])
        from course_lib.models import LeNet5

        with pytest.raises(ValueError, match="got 1 axes for 4 sparse layers"):
            plots.log_alpha_histograms(LeNet5(), [ax])
        with pytest.raises(ValueError, match="bins must be a positive integer"):
            plots.log_alpha_histograms(LeNet5(), bins=0)
        with pytest.raises(TypeError, match="bins must be a positive integer, got 30.0"):
            plots.log_alpha_histograms(LeNet5(), bins=30.0)
    finally:
        plt.close("all")
