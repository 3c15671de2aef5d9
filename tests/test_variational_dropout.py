"""Tests for course_lib.variational_dropout: Gaussian dropout layers with fixed or learned alpha."""

from __future__ import annotations

import math

import pytest
import torch

from course_lib import kl
from course_lib.variational_dropout import (
    VariationalDropoutLinear,
    VariationalDropoutMLP,
    train_elbo,
)


def test_local_reparameterization_moments():
    torch.manual_seed(0)
    layer = VariationalDropoutLinear(5, 3, alpha=0.5)
    x = torch.randn(1, 5).expand(20000, 5)
    out = layer(x)
    theta = layer.theta.detach()
    mean = x[0] @ theta.T + layer.bias.detach()
    var = (x[0] ** 2) @ (0.5 * theta**2).T
    torch.testing.assert_close(out.mean(0).detach(), mean, atol=4 * float(var.max().sqrt()) / 141, rtol=0)
    torch.testing.assert_close(out.var(0).detach(), var, rtol=0.05, atol=1e-6)
    layer.eval()
    torch.testing.assert_close(layer(x[:1]).detach(), mean.unsqueeze(0))


def test_no_noise_when_alpha_is_zero():
    layer = VariationalDropoutLinear(4, 2, alpha=0.0)
    x = torch.randn(3, 4)
    torch.testing.assert_close(layer(x), layer(x))
    assert float(layer.kl().detach()) == 0.0


def test_kl_counts_weights_and_uses_the_cubic():
    layer = VariationalDropoutLinear(4, 3, alpha=0.3, learn_alpha=True)
    expected = -12 * kl.neg_kl_kingma(math.log(0.3))
    assert float(layer.kl().detach()) == pytest.approx(float(expected), rel=1e-6)
    unit = VariationalDropoutLinear(4, 3, alpha=0.3, learn_alpha=True, alpha_shape="unit")
    assert unit.log_alpha.shape == (4,)
    assert float(unit.kl().detach()) == pytest.approx(float(expected), rel=1e-6)


def test_alpha_is_clipped_at_one():
    layer = VariationalDropoutLinear(4, 3, alpha=0.5, learn_alpha=True)
    with torch.no_grad():
        layer.raw_log_alpha.fill_(2.0)
    assert float(layer.log_alpha.detach()) == 0.0  # log_alpha is the clipped value, as in course_lib.layers
    assert float(layer.alpha()) == pytest.approx(1.0)
    assert float(layer.kl().detach()) == pytest.approx(float(-12 * kl.neg_kl_kingma(0.0)), rel=1e-6)


def test_training_learns_alpha_and_fits_a_toy_problem():
    torch.manual_seed(0)
    x = torch.randn(400, 6)
    y = (x[:, 0] + x[:, 1] > 0).long()
    model = VariationalDropoutMLP((6, 16, 2), alpha=0.1, learn_alpha=True)
    res = train_elbo(model, x, y, x, y, epochs=15, batch_size=50, lr=1e-2)
    assert res.test_error < 0.1
    # the KL pushes alpha up from its start (it decreases with alpha)
    assert all(float(a.min()) > 0.1 for a in res.alphas)
    assert len(res.history) == 15 and res.kl_per_example > 0


def test_fixed_alpha_is_not_trained():
    model = VariationalDropoutMLP((6, 4, 2), alpha=[0.25, 1.0])
    names = [n for n, _ in model.named_parameters()]
    assert not any("log_alpha" in n for n in names)
    assert [float(layer.alpha()) for layer in model.layers] == pytest.approx([0.25, 1.0])


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\].*dropout_alpha"):
        VariationalDropoutLinear(3, 2, alpha=2.0)
    with pytest.raises(ValueError, match="positive starting value"):
        VariationalDropoutLinear(3, 2, alpha=0.0, learn_alpha=True)
    with pytest.raises(ValueError, match="alpha_shape must be one of"):
        VariationalDropoutLinear(3, 2, alpha_shape="weight")
    with pytest.raises(ValueError, match="in_features must be a positive integer"):
        VariationalDropoutLinear(0, 2)
    with pytest.raises(ValueError, match="one per layer"):
        VariationalDropoutMLP((3, 4, 2), alpha=[0.1])
    with pytest.raises(ValueError, match="at least an input and an output"):
        VariationalDropoutMLP((3,))
    model = VariationalDropoutMLP((3, 2))
    x, y = torch.randn(4, 3), torch.zeros(4, dtype=torch.long)
    with pytest.raises(ValueError, match="differ in length"):
        train_elbo(model, x, y[:3], x, y)
    with pytest.raises(ValueError, match="epochs must be a positive integer, got 0"):
        train_elbo(model, x, y, x, y, epochs=0)
    with pytest.raises(TypeError, match="batch_size must be a positive integer, got 2.5"):
        train_elbo(model, x, y, x, y, batch_size=2.5)
    with pytest.raises(ValueError, match=r"lr \(Adam step size\) must be a positive finite number, got 0"):
        train_elbo(model, x, y, x, y, lr=0)


def test_numpy_sizes_are_accepted_and_bad_types_are_type_errors():
    import numpy as np

    layer = VariationalDropoutLinear(np.int64(784), np.int32(300), alpha=np.float32(0.5))
    assert layer.theta.shape == (300, 784) and float(layer.alpha()) == pytest.approx(0.5)
    with pytest.raises(TypeError, match="in_features must be a positive integer, got 3.0"):
        VariationalDropoutLinear(3.0, 2)
    with pytest.raises(TypeError, match="alpha must be a finite number, got '0.5'"):
        VariationalDropoutLinear(3, 2, alpha="0.5")
    with pytest.raises(TypeError, match="learn_alpha must be True or False, got 1"):
        VariationalDropoutLinear(3, 2, learn_alpha=1)
