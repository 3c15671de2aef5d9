"""Tests for the computations behind the chapters' widgets (course_lib.widgets)."""

from __future__ import annotations

import numpy as np
import pytest

from course_lib.probability import Table
from course_lib.widgets import conditioning_view


# ---- chapter 1: conditioning ----------------------------------------------------------


@pytest.fixture
def rain_table() -> Table:
    rng = np.random.default_rng(0)
    return Table.from_weights(rng.random((2, 2, 2)), ["rain", "sprinkler", "grass"])


def test_conditioning_view_is_arbitrary_conditioning(rain_table):
    roles = {"rain": "target", "sprinkler": "integrated out", "grass": "observed"}
    view = conditioning_view(rain_table, roles, {"grass": 1, "sprinkler": 0})
    p = rain_table.probs[:, :, 1].sum(axis=1)
    assert np.allclose(view.probs, p / p.sum())


def test_conditioning_view_no_observation_is_marginal(rain_table):
    roles = {"rain": "target", "sprinkler": "target", "grass": "integrated out"}
    assert conditioning_view(rain_table, roles, {}).allclose(rain_table.marginal(["rain", "sprinkler"]))


def test_conditioning_view_needs_a_target(rain_table):
    roles = {"rain": "observed", "sprinkler": "integrated out", "grass": "observed"}
    with pytest.raises(ValueError, match="choose at least one target"):
        conditioning_view(rain_table, roles, {"rain": 0, "grass": 0})


def test_conditioning_view_rejects_unknown_role(rain_table):
    roles = {"rain": "target", "sprinkler": "ignored", "grass": "observed"}
    with pytest.raises(ValueError, match=r"unknown role\(s\) \{'sprinkler': 'ignored'\}"):
        conditioning_view(rain_table, roles, {"grass": 0})


def test_conditioning_view_needs_every_role(rain_table):
    with pytest.raises(ValueError, match=r"missing for \['grass'\]"):
        conditioning_view(rain_table, {"rain": "target", "sprinkler": "target"}, {})


def test_conditioning_slice_keeps_the_agreeing_entries_and_renormalizes(rain_table):
    from course_lib.widgets import conditioning_slice

    s = conditioning_slice(rain_table, "rain", {"grass": 1, "sprinkler": 0})
    assert len(s["entries"]) == 8 and s["entries"][0] == (0, 0, 0) and s["entries"][-1] == (1, 1, 1)
    np.testing.assert_array_equal(s["joint"], rain_table.probs.ravel())
    # kept: exactly the entries with sprinkler = 0 and grass = 1
    assert [e for e, k in zip(s["entries"], s["kept"]) if k] == [(0, 0, 1), (1, 0, 1)]
    assert s["evidence_prob"] == pytest.approx(rain_table.probs[:, 0, 1].sum())
    np.testing.assert_allclose(s["conditional"].probs, rain_table.probs[:, 0, 1] / s["evidence_prob"])
    assert s["marginal"].allclose(rain_table.marginal(["rain"]))


def test_conditioning_slice_without_evidence_is_the_marginal(rain_table):
    from course_lib.widgets import conditioning_slice

    s = conditioning_slice(rain_table, "grass", {})
    assert s["kept"].all() and s["evidence_prob"] == pytest.approx(1.0)
    assert s["conditional"].allclose(rain_table.marginal(["grass"]))


def test_conditioning_slice_bad_input(rain_table):
    from course_lib.widgets import conditioning_slice

    with pytest.raises(ValueError, match="target must be the name of one variable"):
        conditioning_slice(rain_table, "snow", {})
    with pytest.raises(ValueError, match="cannot be both the target and observed"):
        conditioning_slice(rain_table, "rain", {"rain": 1})
    with pytest.raises(ValueError, match="is not a state of grass"):
        conditioning_slice(rain_table, "rain", {"grass": "soggy"})
    zero = Table([[0.5, 0.0], [0.5, 0.0]], ["a", "b"])
    with pytest.raises(ValueError, match="the evidence is impossible"):
        conditioning_slice(zero, "a", {"b": 1})
    with pytest.raises(TypeError, match=r"target must be the name \(a str\) of one variable"):
        conditioning_slice(rain_table, ["rain"], {})


def test_conditioning_widget_is_marked_kernel_only_and_greys_out_unused_values(rain_table):
    import ipywidgets as widgets

    from course_lib.widgets import KERNEL_WIDGET_CLASS, conditioning_widget

    ui = conditioning_widget(
        rain_table, {"rain": ("target", 1), "sprinkler": ("integrated out", 0), "grass": ("observed", 1)}
    )
    assert KERNEL_WIDGET_CLASS == "course-kernel-widget" and KERNEL_WIDGET_CLASS in ui._dom_classes
    rain_role, rain_value, sprinkler_role, sprinkler_value, grass_role, grass_value = [
        c for c in ui.children[0].children if isinstance(c, widgets.Dropdown)
    ]
    # only an observed variable's value is used
    assert (rain_value.disabled, sprinkler_value.disabled, grass_value.disabled) == (True, True, False)
    sprinkler_role.value = "observed"
    assert not sprinkler_value.disabled
    grass_role.value = "target"
    assert grass_value.disabled


# ---- chapter 2: the coin ------------------------------------------------------------------
from course_lib.inference import BetaBernoulli  # noqa: E402
from course_lib.widgets import REGRESSION_MAX_POINTS, coin_view, regression_view  # noqa: E402


def test_coin_view_default_shows_mle_overconfidence():
    v = coin_view()
    assert v["mle"] == 1.0 and v["map"] == pytest.approx(0.8) and v["mean"] == pytest.approx(5 / 7)
    dt = v["theta"][1] - v["theta"][0]
    for key in ("prior", "likelihood", "posterior"):
        assert v[key].sum() * dt == pytest.approx(1.0, abs=1e-3)  # all three are densities in theta
    # posterior = likelihood x prior / evidence, on the grid
    unnorm = v["likelihood"] * v["prior"]
    np.testing.assert_allclose(v["posterior"], unnorm / (unnorm.sum() * dt), rtol=1e-3)
    lo, hi = v["interval"]
    assert lo < v["map"] < hi < 1.0


def test_coin_view_without_data_and_flat_posterior():
    v = coin_view(a=1.0, b=1.0, heads=0, tails=0)
    assert v["mle"] is None and v["map"] is None  # flat: no unique MAP
    np.testing.assert_allclose(v["posterior"], 1.0)
    assert coin_view(a=1.0, b=1.0, heads=2, tails=6)["map"] == pytest.approx(0.25)  # flat prior: MAP = MLE


def test_coin_view_matches_conjugate_update():
    v = coin_view(a=3.0, b=1.5, heads=4, tails=7)
    post = BetaBernoulli(3.0, 1.5).update_counts(4, 7)
    np.testing.assert_allclose(v["posterior"], post.pdf(v["theta"]))
    assert v["mle"] == pytest.approx(4 / 11)


def test_coin_view_bad_input():
    with pytest.raises(ValueError, match="a .* must be a positive finite number"):
        coin_view(a=0.0)
    with pytest.raises(ValueError, match="heads must be a non-negative integer, got -1"):
        coin_view(heads=-1)
    with pytest.raises(ValueError, match="n_grid must be an integer >= 2"):
        coin_view(n_grid=1)
    with pytest.raises(TypeError, match=r"n_grid must be an integer >= 2, got 400\.0 \(float\)"):
        coin_view(n_grid=400.0)
    assert coin_view(n_grid=np.int64(10))["theta"].shape == (10,)


# ---- chapter 3: Bayesian linear regression ------------------------------------------------
def test_regression_view_default_shows_the_gap_and_ml_overfitting():
    v = regression_view()
    assert v["x"].shape == (8,) and v["samples"].shape == (5, v["x_grid"].size)
    gap = (v["x_grid"] > 0.4) & (v["x_grid"] < 0.6)
    assert v["std"][gap].min() > 2 * v["std"][~gap].min()  # unsure where there is no data
    assert np.abs(v["ml"]).max() > 5.0  # 10 parameters, 8 points: the ML fit interpolates wildly
    assert np.all(np.abs(v["mean"]) < 1.5)
    assert np.isfinite(v["log_evidence"])


def test_regression_view_more_points_keep_the_old_ones_and_shrink_error_bars():
    few, many = regression_view(n_points=5), regression_view(n_points=REGRESSION_MAX_POINTS)
    np.testing.assert_array_equal(many["x"][:5], few["x"])
    assert many["std"].mean() < few["std"].mean()
    assert np.all(many["std"] >= 1 / np.sqrt(25.0))  # never below the noise level


def test_regression_view_bad_input():
    with pytest.raises(ValueError, match="n_points must be an integer from 1 to 50"):
        regression_view(n_points=0)
    with pytest.raises(ValueError, match="n_points must be an integer from 1 to 50"):
        regression_view(n_points=51)
    with pytest.raises(ValueError, match="prior_precision .* must be a positive finite number"):
        regression_view(prior_precision=-1.0)
    with pytest.raises(ValueError, match="n_basis must be a positive integer"):
        regression_view(n_basis=0)
    with pytest.raises(TypeError, match="n_points must be an integer from 1 to 50, got True"):
        regression_view(n_points=True)


# --- Chapter 4: the ELBO view ---------------------------------------------------------------
from course_lib.widgets import elbo_data, elbo_view  # noqa: E402


def test_elbo_view_decomposes_the_log_evidence():
    v = elbo_view()
    assert np.isclose(v["elbo"] + v["kl"], v["log_evidence"], atol=1e-9)
    assert np.isclose(v["data_term"] - v["kl_prior"], v["elbo"])
    assert v["kl"] > 1.0  # the default q leaves a visible gap
    dw = v["w"][1] - v["w"][0]
    assert np.isclose(v["q"].sum() * dw, 1.0, atol=1e-3)
    assert np.isclose(v["posterior"].sum() * dw, 1.0, atol=1e-3)


def test_elbo_view_touches_the_evidence_at_the_posterior():
    v = elbo_view()
    at = elbo_view(mu=v["post_mean"], sigma=v["post_std"])
    assert abs(at["kl"]) < 1e-10 and np.isclose(at["elbo"], at["log_evidence"], atol=1e-9)
    # and every other q is below it
    for mu, sigma in [(v["post_mean"] + 0.1, v["post_std"]), (v["post_mean"], 2 * v["post_std"])]:
        assert elbo_view(mu=mu, sigma=sigma)["elbo"] < at["elbo"]


def test_elbo_data_is_fixed_by_the_seed():
    Phi, t = elbo_data()
    Phi2, t2 = elbo_data()
    assert Phi.shape == (20, 1) and np.array_equal(t, t2)


def test_elbo_view_bad_input():
    with pytest.raises(ValueError, match="sigma must be positive"):
        elbo_view(sigma=0.0)
    with pytest.raises(ValueError, match="beta .* must be a positive finite number"):
        elbo_view(beta=-1.0)
    with pytest.raises(ValueError, match="prior_precision .* must be a positive"):
        elbo_view(prior_precision=0.0)
    with pytest.raises(ValueError, match="n_grid must be an integer >= 3"):
        elbo_view(n_grid=2)
    with pytest.raises(ValueError, match="n_points must be a positive integer"):
        elbo_data(n_points=0)
    with pytest.raises(
        TypeError, match=r"beta \(the noise precision\) must be a positive finite number, got '4'"
    ):
        elbo_data(beta="4")


# ---- chapter 7: refitting the KL approximation ----------------------------------------

from course_lib import kl as _kl  # noqa: E402
from course_lib.widgets import kl_fit_view  # noqa: E402


def test_kl_fit_view_default_is_the_paper_procedure():
    v = kl_fit_view()
    assert np.all(np.abs(v["relative_difference"]) < 0.002)
    assert v["k"] == pytest.approx(_kl.fit_molchanov().constants)
    assert v["max_error_in_range"] < 0.0095
    # outside [-10, 10] the form stays accurate: both asymptotes are built in
    assert v["max_error_outside"] < 0.01
    assert v["error"].shape == v["log_alpha"].shape == v["error_published"].shape == (301,)


def test_kl_fit_view_narrow_range_and_mc_reference():
    narrow = kl_fit_view(log_alpha_min=-2.0, log_alpha_max=2.0, n_grid=41)
    assert narrow["max_error_in_range"] < narrow["max_error_outside"]
    mc = kl_fit_view(n_grid=101, n_samples=5000, seed=1)
    assert np.all(np.abs(mc["relative_difference"]) < 0.1)
    assert mc["fit"].reference.shape == (101,)


def test_kl_fit_view_bad_input():
    with pytest.raises(ValueError, match="n_samples must be 0"):
        kl_fit_view(n_samples=1)
    with pytest.raises(ValueError, match="n_samples must be 0"):
        kl_fit_view(n_samples=-5)
    with pytest.raises(ValueError, match="fit range is empty"):
        kl_fit_view(log_alpha_min=1.0, log_alpha_max=0.0)
    with pytest.raises(ValueError, match="evaluation grid"):
        kl_fit_view(eval_min=5.0, eval_max=-5.0)
    with pytest.raises(TypeError, match="n_samples must be an integer, got 100.0"):
        kl_fit_view(n_samples=100.0)
    with pytest.raises(
        ValueError, match=r"n_eval \(points of the evaluation grid\) must be an integer >= 2, got 1"
    ):
        kl_fit_view(n_eval=1)
    with pytest.raises(ValueError, match="eval_max must be a finite number, got inf"):
        kl_fit_view(eval_max=np.inf)


def test_conditioning_widget_builds_controls_for_every_variable():
    import ipywidgets as widgets

    from course_lib.widgets import conditioning_widget

    t = Table([[0.1, 0.2], [0.3, 0.4]], ["a", "b"], states={"a": ["lo", "hi"], "b": ["no", "yes"]})
    ui = conditioning_widget(t, {"a": ("target", "lo"), "b": ("observed", "yes")})
    grid, out = ui.children
    dropdowns = [c for c in grid.children if isinstance(c, widgets.Dropdown)]
    assert [d.value for d in dropdowns] == ["target", "lo", "observed", "yes"]
    assert isinstance(out, widgets.Output)
