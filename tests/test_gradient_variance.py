"""Tests of course_lib.gradient_variance: chapter 8's three gradient estimators."""

from __future__ import annotations

import pytest
import torch

from course_lib.gradient_variance import GRAD_ESTIMATORS, theta_grad_samples


def test_theta_grad_samples_shapes_means_and_variance_order():
    torch.manual_seed(5)
    x, y = torch.randn(32, 20), torch.randint(0, 4, (32,))
    theta = torch.randn(4, 20) * 0.1
    g = {e: theta_grad_samples(x, y, theta, 3.0, e, n_samples=400) for e in GRAD_ESTIMATORS}
    assert g["additive"].shape == (400, 4, 20)
    var = {e: float(v.var(0).mean()) for e, v in g.items()}
    assert var["multiplicative"] > 5 * var["additive"] > 5 * var["additive+lrt"]
    # additive and additive+LRT estimate the same expected gradient.
    diff = (g["additive"].mean(0) - g["additive+lrt"].mean(0)).abs()
    se = (g["additive"].var(0) / 400 + g["additive+lrt"].var(0) / 400).sqrt()
    assert float((diff / se).mean()) < 1.5
    # Tiny alpha: all three are (almost) the deterministic gradient.
    small = [theta_grad_samples(x, y, theta, -16.0, e, 10).var(0).mean() for e in g]
    assert max(float(s) for s in small) < 1e-6


def test_theta_grad_samples_is_seeded():
    x, y, theta = torch.randn(8, 5), torch.randint(0, 3, (8,)), torch.randn(3, 5)
    a = theta_grad_samples(x, y, theta, 0.0, "additive", 5, seed=7)
    b = theta_grad_samples(x, y, theta, 0.0, "additive", 5, seed=7)
    assert torch.equal(a, b)


def test_theta_grad_samples_bad_input():
    x, y, theta = torch.randn(8, 5), torch.randint(0, 3, (8,)), torch.randn(3, 5)
    with pytest.raises(
        ValueError,
        match=r"estimator \(the gradient estimator\) must be one of 'multiplicative', .*got 'mult'",
    ):
        theta_grad_samples(x, y, theta, 0.0, "mult")
    with pytest.raises(ValueError, match="same D"):
        theta_grad_samples(x, y, theta[:, :4], 0.0, "additive")
    with pytest.raises(ValueError, match="one label per row"):
        theta_grad_samples(x, y[:3], theta, 0.0, "additive")
    with pytest.raises(
        ValueError, match=r"n_samples \(independent gradient draws\) must be a positive integer"
    ):
        theta_grad_samples(x, y, theta, 0.0, "additive", n_samples=0)
    with pytest.raises(ValueError, match="log_alpha .* must be a finite number"):
        theta_grad_samples(x, y, theta, float("inf"), "additive")
    with pytest.raises(TypeError, match="n_samples .* must be a positive integer"):
        theta_grad_samples(x, y, theta, 0.0, "additive", n_samples=2.0)


def test_the_experiment_is_no_longer_in_layers():
    # it moved out of the layers module (issue 15): the old names are gone, not aliased
    from course_lib import layers

    assert not hasattr(layers, "theta_grad_samples") and not hasattr(layers, "GRAD_ESTIMATORS")
