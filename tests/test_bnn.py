"""Tests for course_lib.bnn: the flat-parameter MLP, mean-field VI, ensembles and dropout nets."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from course_lib import bnn


def _sequential(flat: torch.Tensor, hidden, act) -> nn.Sequential:
    """The same network as row ``flat`` of a bnn model, built from nn.Linear layers."""
    layers, offset, sizes = [], 0, (1, *hidden, 1)
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        block = flat[offset : offset + (n_in + 1) * n_out].reshape(n_in + 1, n_out)
        lin = nn.Linear(n_in, n_out)
        with torch.no_grad():
            lin.weight.copy_(block[:n_in].T)
            lin.bias.copy_(block[n_in])
        layers += [lin, act]
        offset += (n_in + 1) * n_out
    return nn.Sequential(*layers[:-1])


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_forward_is_the_mlp_of_nn_linear_layers(activation):
    torch.manual_seed(0)
    nets = bnn.EnsembleMLP(n_members=3, hidden=(7, 5), activation=activation).eval()
    x = torch.linspace(-2, 2, 11)
    act = nn.Tanh() if activation == "tanh" else nn.ReLU()
    for m in range(3):
        ref = _sequential(nets.weights[m].detach(), (7, 5), act)(x[:, None])[:, 0]
        torch.testing.assert_close(nets(x)[m], ref)
    mf = bnn.MeanFieldMLP(hidden=(7, 5), activation=activation, init_log_sigma=-30.0)
    ref = _sequential(mf.mu.detach(), (7, 5), act)(x[:, None])[:, 0]
    torch.testing.assert_close(mf(x, n_samples=2), ref.expand(2, -1))  # sigma ~ 0: the mean network


def test_weight_counts_and_shapes():
    mf = bnn.MeanFieldMLP(hidden=(50, 50))
    assert mf.n_weights == 2 * 50 + 51 * 50 + 51 == sum(p.numel() for p in mf.parameters()) // 2
    assert mf(torch.zeros(4), n_samples=6).shape == (6, 4)
    assert bnn.EnsembleMLP(n_members=3, hidden=(4,)).weights.shape == (3, (1 + 1) * 4 + 5)


def test_samples_share_weights_across_inputs_and_have_the_variance_of_q():
    torch.manual_seed(1)
    mf = bnn.MeanFieldMLP(hidden=(3,), init_log_sigma=math.log(0.3))
    w = mf.sample(20_000)
    assert w.shape == (20_000, mf.n_weights)
    torch.testing.assert_close(w.std(0), torch.full((mf.n_weights,), 0.3), atol=0.01, rtol=0)
    # one weight sample per row: a row is a deterministic function of x (same x -> same value)
    f = mf(torch.tensor([0.5, 0.5, -1.0]), n_samples=4)
    torch.testing.assert_close(f[:, 0], f[:, 1])
    assert f[:, 0].unique().numel() == 4


def test_kl_matches_torch_distributions_with_per_layer_precisions():
    torch.manual_seed(2)
    mf = bnn.MeanFieldMLP(hidden=(4, 3), prior_precision=(1.0, 4.0, 0.5))
    with torch.no_grad():
        mf.log_sigma.uniform_(-2, 0.5)
    q = torch.distributions.Normal(mf.mu, mf.log_sigma.exp())
    lam = torch.cat(
        [
            torch.full(((n_in + 1) * n_out,), v)
            for v, (n_in, n_out) in zip((1.0, 4.0, 0.5), [(1, 4), (4, 3), (3, 1)])
        ]
    )
    p = torch.distributions.Normal(torch.zeros_like(lam), lam.rsqrt())
    torch.testing.assert_close(mf.kl(), torch.distributions.kl_divergence(q, p).sum())
    at_prior = bnn.MeanFieldMLP(hidden=(4,), prior_precision=4.0, init_log_sigma=math.log(0.5))
    with torch.no_grad():
        at_prior.mu.zero_()
    assert abs(at_prior.kl().item()) < 1e-5  # q = p: no KL


def test_members_are_independent_and_the_penalty_is_chapter_5s_kl_term():
    torch.manual_seed(3)
    nets = bnn.EnsembleMLP(n_members=3, hidden=(4, 4), p=[0.0, 0.5, 0.0])
    nets.eval()(torch.linspace(0, 1, 5))[0].sum().backward()
    assert nets.weights.grad[0].abs().sum() > 0 and torch.all(nets.weights.grad[1:] == 0)
    w = nets.weights.detach()
    first, dropped = slice(0, 2 * 4), slice(2 * 4, 2 * 4 + 4 * 4)
    biases = w[:, 2 * 4 + 4 * 4 : 2 * 4 + 5 * 4]
    expected = (
        0.5
        * 2.0
        * (
            (w[:, first] ** 2).sum(1)
            + (w[:, dropped] ** 2).sum(1) / (1 - nets.p)
            + (biases**2).sum(1)
            + (w[:, -5:-1] ** 2).sum(1) / (1 - nets.p)
            + w[:, -1] ** 2
        )
    )
    torch.testing.assert_close(nets.penalty(2.0), expected)
    assert nets.penalty(2.0)[1] > 0.5 * 2.0 * (w[1] ** 2).sum()  # dropout raises the penalty's weight


def test_dropout_only_in_training_mode_and_mc_mean_is_the_deterministic_net():
    torch.manual_seed(4)
    nets = bnn.EnsembleMLP(n_members=2, hidden=(16,), p=[0.0, 0.3])
    x = torch.linspace(-1, 1, 7)
    train_out = nets.train()(x)
    torch.testing.assert_close(train_out[0], nets.eval()(x)[0])  # p = 0: no noise
    assert not torch.allclose(train_out[1], nets(x)[1])
    samples = nets.mc_samples(x, 4000)
    assert samples.shape == (4000, 2, 7) and not nets.training  # the mode is left as it was
    # one hidden layer: the output is linear in the (inverted) dropout mask, so E = the eval net
    torch.testing.assert_close(samples.mean(0), nets(x), atol=0.03, rtol=0)
    assert torch.all(samples[:, 0].std(0) == 0) and torch.all(samples[:, 1].std(0) > 0)


def test_log_likelihood_and_predictive():
    f = torch.tensor([[0.0, 1.0, 2.0], [0.5, 0.5, 0.5]])
    t = torch.tensor([0.1, 0.9, 2.5])
    ref = torch.distributions.Normal(f, 0.5).log_prob(t).sum(-1)
    torch.testing.assert_close(bnn.log_likelihood(f, t, beta=4.0), ref)
    mean, std = bnn.predictive(f, beta=4.0)
    np.testing.assert_allclose(mean, [0.25, 0.75, 1.25])
    np.testing.assert_allclose(std, np.sqrt(np.array([0.0625, 0.0625, 0.5625]) + 0.25))
    mean3, std3 = bnn.predictive(torch.stack([f, f]), beta=4.0)  # (passes, members, N): all are samples
    np.testing.assert_allclose(mean3, mean)
    np.testing.assert_allclose(std3, std)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: bnn.MeanFieldMLP(hidden=()), "hidden"),
        (lambda: bnn.MeanFieldMLP(hidden=(50, 0)), "width of a hidden layer"),
        (lambda: bnn.MeanFieldMLP(prior_precision=0.0), "prior precision"),
        (lambda: bnn.MeanFieldMLP(hidden=(5,), prior_precision=(1.0, 2.0, 3.0)), "one per layer"),
        (lambda: bnn.MeanFieldMLP(activation="sigmoid"), "activation"),
        (lambda: bnn.MeanFieldMLP(init_log_sigma=float("nan")), "init_log_sigma"),
        (lambda: bnn.EnsembleMLP(n_members=0), "number of networks"),
        (lambda: bnn.EnsembleMLP(p=1.0), r"\[0, 1\)"),
        (lambda: bnn.EnsembleMLP(n_members=3, p=[0.1, 0.2]), "one per member"),
        (lambda: bnn.EnsembleMLP(n_members=2).penalty(-1.0), "prior precision"),
        (lambda: bnn.MeanFieldMLP(hidden=(3,))(torch.zeros(4, 1)), "1-D"),
        (lambda: bnn.MeanFieldMLP(hidden=(3,))(torch.tensor([0.0, float("inf")])), "NaN or infinite"),
        (lambda: bnn.MeanFieldMLP(hidden=(3,))(torch.zeros(3), n_samples=0), "number of weight samples"),
        (lambda: bnn.EnsembleMLP(hidden=(3,)).mc_samples(torch.zeros(3), 0), "number of noisy passes"),
        (lambda: bnn.log_likelihood(torch.zeros(2, 3), torch.zeros(4), 1.0), "shape mismatch"),
        (lambda: bnn.log_likelihood(torch.zeros(3), torch.zeros(3), 0.0), "noise precision"),
        (lambda: bnn.predictive(np.zeros((1, 3)), 1.0), "at least two"),
        (lambda: bnn.predictive(np.zeros(3), 1.0), "samples along"),
        (lambda: bnn.predictive(np.full((2, 3), np.nan), 1.0), "NaN"),
    ],
)
def test_bad_input_names_the_problem(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: bnn.MeanFieldMLP(hidden="50"), "sequence of layer widths"),
        (lambda: bnn.MeanFieldMLP(hidden=(50.0,)), "width of a hidden layer"),
        (lambda: bnn.MeanFieldMLP(prior_precision="1"), "prior precision"),
        (lambda: bnn.MeanFieldMLP(init_log_sigma=None), "init_log_sigma"),
        (lambda: bnn.MeanFieldMLP(hidden=(3,))(torch.zeros(3), n_samples=2.0), "n_samples"),
        (lambda: bnn.EnsembleMLP(n_members=True), "n_members"),
        (lambda: bnn.EnsembleMLP(p="0.1"), "dropout rate"),
        (lambda: bnn.predictive(np.zeros((2, 3)), "25"), "noise precision"),
    ],
)
def test_wrong_types_are_type_errors(make, match):
    with pytest.raises(TypeError, match=match):
        make()
