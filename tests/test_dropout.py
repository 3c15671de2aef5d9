"""Tests for course_lib.dropout: noise moments, modules, MC prediction, training loop, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from course_lib import dropout
from course_lib.prediction import predict
from course_lib.scores import accuracy, nll


# --- the rate conversion ------------------------------------------------------------------
@pytest.mark.parametrize("p", [0.0, 0.1, 0.5, 0.8, 0.99])
def test_alpha_and_rate_are_inverse(p):
    alpha = dropout.dropout_alpha(p)
    assert math.isclose(alpha, p / (1 - p))
    assert math.isclose(dropout.dropout_rate(alpha), p, abs_tol=1e-12)


# --- noise moments (statistical, n = 400k: the standard error of the variance is < 0.01) --------
@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_bernoulli_noise_has_mean_one_and_variance_alpha(p):
    xi = dropout.bernoulli_noise((400_000,), p, torch.Generator().manual_seed(0), dtype=torch.float64)
    alpha = dropout.dropout_alpha(p)
    se_mean = math.sqrt(alpha / len(xi))
    assert abs(xi.mean().item() - 1.0) < 5 * se_mean
    assert math.isclose(xi.var().item(), alpha, rel_tol=0.02)
    assert set(torch.unique(xi).tolist()) == {0.0, 1.0 / (1.0 - p)}


@pytest.mark.parametrize("alpha", [0.25, 1.0, 4.0])
def test_gaussian_noise_has_mean_one_and_variance_alpha(alpha):
    xi = dropout.gaussian_noise((400_000,), alpha, torch.Generator().manual_seed(0), dtype=torch.float64)
    assert abs(xi.mean().item() - 1.0) < 5 * math.sqrt(alpha / len(xi))
    assert math.isclose(xi.var().item(), alpha, rel_tol=0.02)


def test_matched_noises_give_the_same_output_moments():
    x = torch.linspace(-2, 2, 5, dtype=torch.float64)
    g = torch.Generator().manual_seed(1)
    b = torch.stack([dropout.bernoulli_dropout(x, 0.5, generator=g) for _ in range(40_000)])
    gs = torch.stack([dropout.gaussian_dropout(x, 1.0, generator=g) for _ in range(40_000)])
    assert torch.allclose(b.mean(0), x, atol=0.04) and torch.allclose(gs.mean(0), x, atol=0.04)
    assert torch.allclose(b.var(0), x**2, atol=0.1) and torch.allclose(gs.var(0), x**2, atol=0.1)


def test_dropout_is_identity_in_eval_mode_and_at_zero_rate():
    x = torch.randn(4, 3)
    assert torch.equal(dropout.bernoulli_dropout(x, 0.5, training=False), x)
    assert torch.equal(dropout.gaussian_dropout(x, 2.0, training=False), x)
    assert torch.equal(dropout.bernoulli_dropout(x, 0.0), x)
    m = dropout.BernoulliDropout(0.5).eval()
    assert torch.equal(m(x), x)
    assert torch.equal(dropout.GaussianDropout(1.0).eval()(x), x)


def test_modules_are_noisy_in_train_mode_and_report_their_matching_rate():
    x = torch.ones(1000)
    torch.manual_seed(0)
    out = dropout.BernoulliDropout(0.3).train()(x)
    assert 0.2 < (out == 0).float().mean().item() < 0.4
    gd = dropout.GaussianDropout.from_rate(0.5)
    assert gd.alpha == 1.0 and gd.p == 0.5
    assert dropout.BernoulliDropout(0.75).alpha == 3.0
    assert "p=0.3" in repr(dropout.BernoulliDropout(0.3))


def test_noise_on_input_units_equals_noise_on_weight_rows():
    """Dropping input unit i of a linear layer is zeroing row i of its weight matrix."""
    g = torch.Generator().manual_seed(0)
    x, W = torch.randn(3, 6, generator=g), torch.randn(6, 4, generator=g)
    xi = dropout.bernoulli_noise((6,), 0.5, g)
    assert torch.allclose((x * xi) @ W, x @ (xi[:, None] * W))


# --- the MLP, training and prediction ------------------------------------------------------------
def _toy_data(n=200, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 2, generator=g)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).long()
    return x, y


@pytest.mark.parametrize("kind", dropout.KINDS)
def test_dropout_mlp_learns_a_separable_problem(kind):
    torch.manual_seed(0)
    x, y = _toy_data()
    model = dropout.DropoutMLP((2, 32, 2), p=0.3, kind=kind)
    losses = dropout.train_classifier(
        model, x, y, epochs=30, batch_size=20, lr=1e-2, generator=torch.Generator().manual_seed(0)
    )
    assert losses.shape == (30,) and losses[-1] < 0.5 * losses[0]
    assert not model.training
    probs = predict(model, x)
    assert accuracy(probs, y) > 0.9 and nll(probs, y) < 0.3
    kinds = {type(m) for m in model.modules()}
    assert (dropout.BernoulliDropout if kind == "bernoulli" else dropout.GaussianDropout) in kinds


def test_mc_samples_are_noisy_passes_and_restore_modes():
    torch.manual_seed(0)
    model = dropout.DropoutMLP((2, 16, 3), p=0.5)
    model.train()
    x = torch.randn(5, 2)
    samples = dropout.mc_samples(model, x, n_samples=7)
    assert samples.shape == (7, 5, 3)
    assert torch.allclose(samples.sum(2), torch.ones(7, 5))
    assert not torch.allclose(samples[0], samples[1])  # the passes differ
    assert all(m.training for m in model.modules())  # modes restored
    model.eval()
    dropout.mc_samples(model, x, 3)
    assert not any(m.training for m in model.modules())


def test_mc_samples_draw_from_the_global_rng_pass_after_pass():
    # one pass of all inputs per sample, the dropout masks drawn from the global RNG: seeding it
    # reproduces the passes written out by hand
    torch.manual_seed(0)
    model = dropout.DropoutMLP((4, 8, 3), p=0.5)
    x = torch.randn(6, 4)
    torch.manual_seed(3)
    samples = dropout.mc_samples(model, x, n_samples=2)
    torch.manual_seed(3)
    model.train()
    with torch.no_grad():
        by_hand = torch.stack([torch.softmax(model(x), 1) for _ in range(2)])
    assert torch.equal(samples, by_hand)


def test_mc_predict_converges_to_the_exact_average_for_a_linear_model():
    """For a linear layer on noisy inputs, E softmax is estimated without bias: check with many passes."""
    torch.manual_seed(0)
    model = nn.Sequential(dropout.BernoulliDropout(0.5), nn.Linear(3, 2))
    x = torch.tensor([[1.0, -1.0, 0.5]])
    # exact: enumerate the 8 masks
    exact = torch.zeros(1, 2)
    with torch.no_grad():
        for mask in torch.cartesian_prod(*[torch.tensor([0.0, 2.0])] * 3):
            exact += torch.softmax(model[1](x * mask), -1) / 8
    torch.manual_seed(1)
    est = dropout.mc_samples(model, x, n_samples=20_000).mean(0)
    assert torch.allclose(est, exact, atol=0.01)


# --- bad input ---------------------------------------------------------------------------------
P_MSG = r"p \(the probability of dropping a unit\) must be a probability in \[0, 1\)"
ALPHA_MSG = r"alpha \(the variance of the Gaussian noise N\(1, alpha\)\) must be a non-negative finite number"


@pytest.mark.parametrize("p", [1.0, -0.1, 1.5])
def test_invalid_p_is_rejected(p):
    with pytest.raises(ValueError, match=P_MSG):
        dropout.BernoulliDropout(p)
    with pytest.raises(ValueError, match=P_MSG):
        dropout.bernoulli_dropout(torch.ones(3), p)
    with pytest.raises(ValueError, match=P_MSG):
        dropout.dropout_alpha(p)
    with pytest.raises(ValueError, match=P_MSG):
        dropout.DropoutMLP((4, 2), p=p)


@pytest.mark.parametrize("alpha", [-0.5, float("inf"), float("nan")])
def test_invalid_alpha_is_rejected(alpha):
    with pytest.raises(ValueError, match=ALPHA_MSG):
        dropout.GaussianDropout(alpha)
    with pytest.raises(ValueError, match=ALPHA_MSG):
        dropout.gaussian_dropout(torch.ones(3), alpha)
    with pytest.raises(ValueError, match=ALPHA_MSG):
        dropout.dropout_rate(alpha)


def test_non_numeric_rates_are_rejected():
    with pytest.raises(TypeError, match=P_MSG):
        dropout.BernoulliDropout("half")
    with pytest.raises(TypeError, match=ALPHA_MSG):
        dropout.GaussianDropout(None)
    with pytest.raises(TypeError, match=P_MSG):
        dropout.BernoulliDropout(True)


def test_bad_model_and_training_arguments():
    with pytest.raises(ValueError, match="at least two positive layer widths"):
        dropout.DropoutMLP((784,))
    with pytest.raises(
        ValueError, match=r"kind \(the dropout noise\) must be one of 'bernoulli', 'gaussian', got 'uniform'"
    ):
        dropout.DropoutMLP((4, 2), kind="uniform")
    with pytest.raises(TypeError, match="every entry of sizes .* must be a positive integer"):
        dropout.DropoutMLP((4, 2.5, 2))
    model = dropout.DropoutMLP((2, 2))
    x, y = _toy_data(10)
    with pytest.raises(ValueError, match="same length"):
        dropout.train_classifier(model, x, y[:5])
    with pytest.raises(ValueError, match="batch_size=20 is larger than the data set"):
        dropout.train_classifier(model, x, y, batch_size=20)
    with pytest.raises(ValueError, match="epochs must be a positive integer"):
        dropout.train_classifier(model, x, y, epochs=0, batch_size=5)
    with pytest.raises(TypeError, match="epochs must be a positive integer"):
        dropout.train_classifier(model, x, y, epochs=2.0, batch_size=5)
    with pytest.raises(
        ValueError, match=r"weight_decay \(an L2 penalty\) must be a non-negative finite number"
    ):
        dropout.train_classifier(model, x, y, batch_size=5, weight_decay=-1.0)
    with pytest.raises(ValueError, match=r"lr \(Adam's step size\) must be a positive finite number"):
        dropout.train_classifier(model, x, y, batch_size=5, lr=0.0)


def test_bad_prediction_arguments():
    model = dropout.DropoutMLP((2, 2), p=0.5)
    x = torch.randn(3, 2)
    with pytest.raises(
        ValueError, match=r"n_samples \(the number T of noisy passes\) must be a positive integer"
    ):
        dropout.mc_samples(model, x, n_samples=0)
    with pytest.raises(TypeError, match="n_samples .* must be a positive integer"):
        dropout.mc_samples(model, x, n_samples=2.0)
    with pytest.raises(ValueError, match="no dropout module.*course_lib.prediction.predict"):
        dropout.mc_samples(nn.Linear(2, 2), x)
