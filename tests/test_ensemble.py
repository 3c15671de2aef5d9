"""Tests of course_lib.ensemble: the Monte Carlo ensemble over q(W) and its scores."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_lib import layers
from course_lib.ensemble import (
    ensemble_curve,
    ensemble_predictions,
    mc_predict,
    mc_samples,
    sample_weights,
)
from course_lib.layers import LinearSVDO
from course_lib.models import LeNet300100
from course_lib.prediction import predict
from course_lib.scores import nll, score, validate_probs
from course_lib.sparsity import use_threshold


def _net(log_sigma2: float = -8.0, seed: int = 0) -> LeNet300100:
    torch.manual_seed(seed)
    net = LeNet300100()
    with torch.no_grad():
        for _, m in net.weight_layers():
            m.theta.mul_(3.0)  # |theta| up to 0.1; at log sigma^2 = -8 only |theta| < 0.004 is pruned
            m.log_sigma2.fill_(log_sigma2)
    return net


def _x(n: int = 6) -> torch.Tensor:
    return torch.randn(n, 1, 28, 28, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("mode", ["weights", "lrt"])
def test_with_vanishing_variance_every_member_is_the_mean_net(mode):
    net = _net(log_sigma2=-60.0)
    x = _x()
    s = mc_samples(net, x, 3, mode=mode)
    assert s.shape == (3, 6, 10)
    # (the LRT adds sqrt(var + 1e-8) noise: a standard deviation of 1e-4 per unit)
    for k in range(3):
        torch.testing.assert_close(s[k], predict(net, x), atol=1e-5 if mode == "weights" else 1e-3, rtol=0)


@pytest.mark.parametrize("mode", ["weights", "lrt"])
def test_members_differ_are_seeded_and_leave_the_global_rng_alone(mode):
    net = _net()
    net.fc2.eval()  # a mixed state, to check that every flag is restored
    x = _x()
    state = torch.get_rng_state()
    a = mc_samples(net, x, 2, mode=mode, seed=3)
    assert torch.equal(state, torch.get_rng_state())
    torch.testing.assert_close(a, mc_samples(net, x, 2, mode=mode, seed=3))
    assert not torch.allclose(a[0], a[1])
    assert not torch.allclose(a, mc_samples(net, x, 2, mode=mode, seed=4))
    torch.testing.assert_close(mc_predict(net, x, 2, mode=mode, seed=3), a.mean(0))
    assert net.training and net.fc1.training and not net.fc2.training


def test_weight_members_are_whole_networks_shared_by_all_inputs():
    # A weight sample is drawn once per member, so splitting the inputs into batches of one
    # does not change a member's outputs (with the LRT it would: noise is per input).
    net, x = _net(), _x()
    torch.testing.assert_close(
        mc_samples(net, x, 2, "weights", batch_size=1), mc_samples(net, x, 2, "weights", batch_size=6)
    )
    assert not torch.allclose(
        mc_samples(net, x, 2, "lrt", batch_size=1), mc_samples(net, x, 2, "lrt", batch_size=6)
    )


def test_sample_weights_has_the_posterior_mean_and_variance():
    layer = LinearSVDO(4, 3)
    with torch.no_grad():
        layer.log_sigma2.copy_(torch.linspace(-4, 0, 12).view(3, 4))
    model = nn.Sequential(layer)
    gen = torch.Generator().manual_seed(0)
    draws = torch.stack([sample_weights(model, gen)["0"] for _ in range(20000)])
    sigma2 = layer.log_sigma2.exp().detach()
    # mean within 5 standard errors, variance within 5 % (20000 draws: sd of s^2 is 1 %)
    assert ((draws.mean(0) - layer.theta.detach()).abs() < 5 * (sigma2 / 20000).sqrt()).all()
    torch.testing.assert_close(draws.var(0), sigma2, rtol=0.05, atol=0)


def test_pruned_samples_are_zero_where_the_mask_prunes():
    net = _net()
    with torch.no_grad():
        net.fc2.log_sigma2[:, :50] = 20.0  # log alpha clipped to 8 >= 3: pruned
    keep = net.fc2.mask()
    assert not keep[:, :50].any() and keep.float().mean() > 0.5
    w = sample_weights(net, torch.Generator().manual_seed(0), prune=True)["fc2"]
    assert (w[~keep] == 0).all() and (w[keep] != 0).all()
    w_all = sample_weights(net, torch.Generator().manual_seed(0), prune=False)["fc2"]
    assert (w_all[:, :50] != 0).all()


@pytest.mark.parametrize("mode", ["weights", "lrt"])
def test_pruned_ensemble_with_vanishing_variance_is_the_pruned_mean_net(mode):
    net = _net(log_sigma2=-60.0)
    with torch.no_grad():
        net.fc1.theta[:, :400] = 1e-3  # small means with a huge variance:
        net.fc1.log_sigma2[:, :400] = 20.0  # log alpha clipped to 8 >= 3, so they are pruned
    x = _x()
    mean_net = predict(net, x)  # eval mode prunes them
    pruned = mc_samples(net, x, 2, mode=mode, prune=True)
    torch.testing.assert_close(pruned[0], mean_net, atol=1e-5 if mode == "weights" else 1e-3, rtol=0)
    unpruned = mc_samples(net, x, 2, mode=mode, prune=False)
    assert (unpruned[0] - mean_net).abs().max() > 1e-3  # the pruned weights' noise matters


def test_weights_and_lrt_give_one_input_the_same_predictive():
    # One linear layer: for a single input both modes draw logits from the same Gaussian,
    # so their Monte Carlo predictives agree within Monte Carlo error.
    torch.manual_seed(0)
    layer = LinearSVDO(5, 3)
    with torch.no_grad():
        layer.theta.copy_(
            torch.tensor([[1.0, -0.5, 0.2, 0.0, 0.3]] * 3) * torch.tensor([[1.0], [0.5], [-1.0]])
        )
        layer.log_sigma2.fill_(-1.0)
    model = nn.Sequential(layer)
    x = torch.tensor([[1.0, 2.0, -1.0, 0.5, 1.5]])
    k = 4000
    pw = mc_samples(model, x, k, "weights", seed=1)[:, 0]
    pl = mc_samples(model, x, k, "lrt", seed=2)[:, 0]
    se = (pw.var(0) / k + pl.var(0) / k).sqrt()
    assert ((pw.mean(0) - pl.mean(0)).abs() < 5 * se).all()
    # and both differ clearly from the mean net's softmax (the ensemble is less confident)
    mean_net = predict(model, x)[0]
    assert pw.mean(0).max() < mean_net.max() - 0.02


def test_ensemble_curve_matches_direct_scores():
    net = _net()
    x, y = _x(), torch.tensor([0, 1, 2, 3, 4, 5])
    s = mc_samples(net, x, 5)
    curve = ensemble_curve(s, y, [1, 5], n_bins=10)
    assert curve[0] == score(s[0], y, 10)
    assert curve[1].nll == pytest.approx(nll(s.mean(0), y), rel=1e-6)


def test_ensemble_predictions_are_the_means_of_the_first_k_members():
    s = mc_samples(_net(), _x(), 5)
    preds = ensemble_predictions(s, [5, 1, 3])
    assert [p.dtype for p in preds] == [torch.float64] * 3
    for p, k in zip(preds, [5, 1, 3]):
        torch.testing.assert_close(p, s[:k].double().mean(0))
        validate_probs(p)  # rows still sum to one
    # the same predictions that ensemble_curve scores
    y = torch.tensor([0, 1, 2, 3, 4, 5])
    assert ensemble_curve(s, y, [3])[0] == score(preds[2], y)


def test_ensemble_predictions_bad_input():
    s = torch.full((3, 4, 2), 0.5)
    with pytest.raises(ValueError, match="k = 4 is larger than the number of members K = 3"):
        ensemble_predictions(s, [4])
    with pytest.raises(TypeError, match=r"every k in ks \(an ensemble size\) must be a positive integer"):
        ensemble_predictions(s, [2.0])
    with pytest.raises(ValueError, match="ks is empty"):
        ensemble_predictions(s, [])
    with pytest.raises(ValueError, match=r"shape \(K, N, C\).*mc_samples"):
        ensemble_predictions(s[0], [1])
    with pytest.raises(TypeError, match="torch.Tensor or a NumPy array"):
        ensemble_predictions([[[0.5, 0.5]]], [1])


@pytest.mark.parametrize("k, error", [(0, ValueError), (-1, ValueError), (1.5, TypeError)])
def test_ensemble_size_below_one_is_refused(k, error):
    with pytest.raises(error, match=r"n_samples \(the ensemble size K\) must be a positive integer"):
        mc_samples(_net(), _x(), k)
    with pytest.raises(error, match="n_samples .* must be a positive integer"):
        mc_predict(_net(), _x(), k, mode="lrt")


def test_ensemble_curve_bad_input():
    s = torch.full((3, 4, 2), 0.5)
    y = torch.tensor([0, 1, 0, 1])
    with pytest.raises(ValueError, match="k = 4 is larger than the number of members K = 3"):
        ensemble_curve(s, y, [1, 4])
    with pytest.raises(ValueError, match="every k in ks .* must be a positive integer"):
        ensemble_curve(s, y, [0])
    with pytest.raises(ValueError, match="ks is empty"):
        ensemble_curve(s, y, [])
    with pytest.raises(ValueError, match=r"shape \(K, N, C\)"):
        ensemble_curve(s[0], y, [1])
    with pytest.raises(ValueError, match="one label per row"):
        ensemble_curve(s, y[:3], [1])


def test_unknown_mode_dense_model_and_empty_input_are_refused():
    with pytest.raises(ValueError, match=r"mode .* must be one of 'weights', 'lrt', got 'mcmc'"):
        mc_samples(_net(), _x(), 2, mode="mcmc")
    with pytest.raises(ValueError, match="no sparse variational dropout layer.*predict"):
        mc_samples(LeNet300100(sparse=False), _x(), 2)
    with pytest.raises(ValueError, match=r"shape \(N, \.\.\.\) with N >= 1"):
        mc_samples(_net(), torch.zeros(0, 1, 28, 28), 2)
    with pytest.raises(ValueError, match="batch_size .* must be a positive integer"):
        mc_samples(_net(), _x(), 2, batch_size=0)


def _members_by_hand(net, x, n_samples, seed):
    """The weight-mode members from the definition: w = theta + exp(log_sigma2 / 2) eps, W_k ~ q(W)."""
    gen = torch.Generator().manual_seed(seed)
    members = []
    with torch.no_grad():
        for _ in range(n_samples):
            h = x.flatten(1)
            for i, layer in enumerate((net.fc1, net.fc2, net.fc3)):
                eps = torch.randn(layer.theta.shape, generator=gen)
                h = F.linear(h, layer.theta + (0.5 * layer.log_sigma2).exp() * eps, layer.bias)
                h = h.relu() if i < 2 else h
            members.append(torch.softmax(h, 1))
    return torch.stack(members)


def test_weight_members_are_networks_drawn_from_q():
    net, x = _net(), _x()
    torch.testing.assert_close(mc_samples(net, x, 3, seed=5), _members_by_hand(net, x, 3, seed=5))


def test_the_clip_and_the_mask_do_not_change_the_ensemble(monkeypatch):
    # A member is a network drawn from q(W): it must not depend on the clip of log alpha or on
    # the threshold (chapter 10's ensemble used to run the eval-mode forward with log sigma^2 = -inf,
    # relying on the lower clip to keep every weight).
    net, x = _net(), _x()
    reference = _members_by_hand(net, x, 3, seed=5)
    lrt_before = mc_samples(net, x, 3, mode="lrt", seed=5)
    monkeypatch.setattr(layers, "LOG_ALPHA_MIN", 5.0)  # a clip above the threshold: every weight 'pruned'
    assert not net.fc1.mask().any()
    torch.testing.assert_close(mc_samples(net, x, 3, seed=5), reference)
    torch.testing.assert_close(mc_samples(net, x, 3, mode="lrt", seed=5), lrt_before, rtol=0, atol=0)
    monkeypatch.undo()
    with use_threshold(net, -100.0):  # a threshold that prunes every weight
        torch.testing.assert_close(mc_samples(net, x, 3, seed=5), reference)
        # prune=True follows the mask: with every weight pruned a member is the (all-pruned) mean net
        torch.testing.assert_close(
            mc_samples(net, x, 1, prune=True, seed=5)[0], predict(net, x), rtol=0, atol=0
        )
    with use_threshold(net, 100.0):  # a threshold that prunes nothing: prune=True is then q(W) itself
        torch.testing.assert_close(mc_samples(net, x, 3, prune=True, seed=5), reference)


def test_the_model_runs_its_own_forward_again_after_the_ensemble():
    net, x = _net(), _x()
    before = predict(net, x)
    mc_samples(net, x, 2)
    mc_samples(net, x, 2, mode="lrt", prune=True)
    torch.testing.assert_close(predict(net, x), before, rtol=0, atol=0)
    assert all(m._fixed is None for _, m in net.weight_layers())
