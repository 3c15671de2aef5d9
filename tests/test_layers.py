"""Tests of course_lib.layers: the sparse VD layers' statistics, masking, KL and bad input."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_lib.kl import neg_kl_molchanov
from course_lib.layers import (
    LOG_ALPHA_MAX,
    LOG_ALPHA_MIN,
    VAR_EPS,
    Conv2dSVDO,
    LinearSVDO,
    LRTNoise,
    theta_grad_samples,
)


def _randomise(layer, log_sigma2_low=-4.0, log_sigma2_high=-1.0, seed=0):
    """Give a layer non-trivial theta and log_sigma2 so that the variance is visible."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        layer.theta.copy_(torch.randn(layer.theta.shape, generator=g) * 0.5)
        layer.log_sigma2.uniform_(log_sigma2_low, log_sigma2_high, generator=g)
        if layer.bias is not None:
            layer.bias.copy_(torch.randn(layer.bias.shape, generator=g))
    return layer


# --- construction -----------------------------------------------------------------------

def test_linear_reads_like_nn_linear():
    layer = LinearSVDO(7, 3)
    assert layer.theta.shape == nn.Linear(7, 3).weight.shape
    assert layer.log_sigma2.shape == layer.theta.shape
    assert layer.bias.shape == (3,)
    assert torch.all(layer.log_sigma2 == -10.0)  # the paper's initialisation
    assert repr(layer) == "LinearSVDO(in_features=7, out_features=3, bias=True, threshold=3.0)"
    assert LinearSVDO(7, 3, bias=False).bias is None
    names = {n for n, _ in layer.named_parameters()}
    assert names == {"theta", "log_sigma2", "bias"}


def test_conv_reads_like_nn_conv2d():
    layer = Conv2dSVDO(3, 4, (3, 5), stride=2, padding=1)
    assert layer.theta.shape == nn.Conv2d(3, 4, (3, 5)).weight.shape
    assert "kernel_size=(3, 5), stride=(2, 2), padding=(1, 1)" in repr(layer)
    x = torch.randn(2, 3, 9, 9)
    layer.eval()
    ref = nn.Conv2d(3, 4, (3, 5), stride=2, padding=1)
    assert layer(x).shape == ref(x).shape


def test_reset_parameters_bounds_like_torch():
    layer = LinearSVDO(100, 50, log_sigma2_init=-7.0)
    bound = 1 / math.sqrt(100)  # kaiming_uniform(a=sqrt(5)) gives U(-1/sqrt(fan_in), ...)
    assert layer.theta.abs().max() <= bound + 1e-6
    assert layer.bias.abs().max() <= bound + 1e-6
    assert torch.all(layer.log_sigma2 == -7.0)


# --- training-mode statistics: mean op(x, theta) + b, variance op(x^2, sigma^2) --------

def test_linear_train_output_statistics():
    torch.manual_seed(0)
    layer = _randomise(LinearSVDO(6, 4)).train()
    x = torch.randn(3, 6)
    n = 40_000
    with torch.no_grad():
        out = layer(x.repeat(n, 1)).view(n, 3, 4)
        mean_ref = F.linear(x, layer.theta, layer.bias)
        var_ref = F.linear(x * x, layer.log_sigma2.exp()) + VAR_EPS
    se_mean = (var_ref / n).sqrt()
    assert torch.all((out.mean(0) - mean_ref).abs() < 5 * se_mean)
    # The sample variance of n Gaussians has relative s.e. sqrt(2/n) ~ 0.7 %.
    assert torch.allclose(out.var(0), var_ref, rtol=0.05)


def test_conv_train_output_statistics():
    torch.manual_seed(1)
    layer = _randomise(Conv2dSVDO(2, 3, 3, padding=1)).train()
    x = torch.randn(1, 2, 5, 5)
    n = 20_000
    with torch.no_grad():
        out = layer(x.expand(n, -1, -1, -1))
        mean_ref = F.conv2d(x, layer.theta, layer.bias, padding=1)[0]
        var_ref = F.conv2d(x * x, layer.log_sigma2.exp(), padding=1)[0] + VAR_EPS
    se_mean = (var_ref / n).sqrt()
    assert torch.all((out.mean(0) - mean_ref).abs() < 5 * se_mean)
    assert torch.allclose(out.var(0), var_ref, rtol=0.06)


def test_noise_is_independent_per_example_and_unit():
    torch.manual_seed(2)
    layer = _randomise(LinearSVDO(5, 2)).train()
    x = torch.randn(1, 5).repeat(20_000, 1)
    with torch.no_grad():
        out = layer(x)
    corr = torch.corrcoef(out.T)[0, 1]  # two units of the same example
    assert abs(float(corr)) < 0.03
    corr_ex = torch.corrcoef(torch.stack([out[0::2, 0], out[1::2, 0]]))[0, 1]  # two examples
    assert abs(float(corr_ex)) < 0.03


def test_lrt_noise_matches_autograd_reference():
    mean = torch.randn(4, 5, requires_grad=True)
    var = torch.rand(4, 5, requires_grad=True)
    torch.manual_seed(3)
    out = LRTNoise.apply(mean, var)
    g = torch.randn(4, 5)
    gm, gv = torch.autograd.grad(out, (mean, var), g)
    torch.manual_seed(3)
    ref = mean + torch.sqrt(var + VAR_EPS) * torch.randn_like(mean)
    rm, rv = torch.autograd.grad(ref, (mean, var), g)
    assert torch.allclose(out, ref)
    assert torch.allclose(gm, rm) and torch.allclose(gv, rv, rtol=1e-5)


def test_gradients_reach_all_parameters():
    layer = _randomise(Conv2dSVDO(1, 2, 3)).train()
    layer(torch.randn(4, 1, 6, 6)).square().sum().backward()
    layer.kl().backward()
    for name, p in layer.named_parameters():
        assert p.grad is not None and torch.all(torch.isfinite(p.grad)), name
        assert p.grad.abs().sum() > 0, name


# --- eval mode: deterministic, theta masked where log alpha >= threshold ---------------

@pytest.mark.parametrize("make, x", [
    (lambda: LinearSVDO(8, 5), torch.randn(3, 8)),
    (lambda: Conv2dSVDO(2, 3, 3), torch.randn(2, 2, 6, 6)),
])
def test_eval_masks_weights_above_threshold(make, x):
    layer = make()
    with torch.no_grad():
        layer.theta.fill_(0.5)  # log theta^2 = log 0.25
        layer.log_sigma2.fill_(-10.0)
        flat = layer.log_sigma2.view(-1)
        flat[::2] = math.log(0.25) + 3.0 + 0.1  # log alpha = 3.1 >= 3: pruned
        flat[1::4] = math.log(0.25) + 2.9  # log alpha = 2.9 < 3: kept
    layer.eval()
    mask = layer.mask()
    assert mask.view(-1)[::2].sum() == 0 and mask.view(-1)[1::2].all()
    op = F.linear if isinstance(layer, LinearSVDO) else F.conv2d
    expected = op(x, layer.theta * mask, layer.bias)
    with torch.no_grad():
        assert torch.allclose(layer(x), expected)
        assert torch.equal(layer(x), layer(x))  # no noise
        assert not torch.allclose(layer(x), op(x, layer.theta, layer.bias))


def test_threshold_changes_what_is_pruned():
    layer = LinearSVDO(10, 10, threshold=3.0)
    with torch.no_grad():
        layer.theta.fill_(1.0)
        layer.log_sigma2.copy_(torch.linspace(-5, 5, 100).view(10, 10))
    assert int(layer.mask().sum()) == int((torch.linspace(-5, 5, 100) < 3.0).sum())
    layer.threshold = 0.0
    assert int(layer.mask().sum()) == 50


def test_log_alpha_definition_and_clip():
    layer = LinearSVDO(3, 1)
    with torch.no_grad():
        layer.theta.copy_(torch.tensor([[1.0, 0.0, 1e3]]))
        layer.log_sigma2.copy_(torch.tensor([[-1.0, 0.0, -30.0]]))
    la = layer.log_alpha.detach()[0]
    assert la[0] == pytest.approx(-1.0 - math.log(1.0 + 1e-8))
    assert la[1] == LOG_ALPHA_MAX  # theta = 0: log alpha -> +inf, clipped
    assert la[2] == LOG_ALPHA_MIN  # tiny variance: clipped below


# --- KL --------------------------------------------------------------------------------

def test_kl_value_at_alpha_one():
    layer = LinearSVDO(4, 5)
    with torch.no_grad():
        layer.theta.fill_(1.0)
        layer.log_sigma2.fill_(0.0)  # alpha = 1
    # -KL(alpha = 1) = k1 sigmoid(k2) - 0.5 log 2 - k1 = -0.43117 per weight.
    k1, k2 = 0.63576, 1.87320
    per_weight = -(k1 / (1 + math.exp(-k2)) - 0.5 * math.log(2.0) - k1)
    assert float(layer.kl().detach()) == pytest.approx(20 * per_weight, rel=1e-5)
    assert float(layer.kl().detach()) == pytest.approx(20 * 0.4312, rel=1e-3)


def test_kl_is_positive_sum_of_molchanov_and_decreases_with_alpha():
    layer = _randomise(Conv2dSVDO(2, 3, 3))
    kl = layer.kl()
    assert kl.dim() == 0 and float(kl.detach()) > 0
    assert torch.allclose(kl, -neg_kl_molchanov(layer.log_alpha).sum())
    with torch.no_grad():
        layer.log_sigma2.add_(2.0)  # larger alpha everywhere: closer to the prior
    assert float(layer.kl().detach()) < float(kl.detach())


# --- starting from a dense layer -------------------------------------------------------

def test_from_dense_linear_and_conv_match_dense_output():
    torch.manual_seed(4)
    dense_fc, dense_conv = nn.Linear(6, 3), nn.Conv2d(2, 4, 3, padding=1)
    fc, conv = LinearSVDO.from_dense(dense_fc), Conv2dSVDO.from_dense(dense_conv)
    fc.eval(), conv.eval()
    x, xi = torch.randn(5, 6), torch.randn(2, 2, 5, 5)
    with torch.no_grad():
        assert torch.allclose(fc(x), dense_fc(x), atol=1e-6)
        assert torch.allclose(conv(xi), dense_conv(xi), atol=1e-6)
    assert torch.all(fc.log_sigma2 == -10.0)
    fc.load_dense_(dense_fc.weight, dense_fc.bias, log_sigma2=-6.0)
    assert torch.all(fc.log_sigma2 == -6.0)


# --- the gradient-variance experiment of chapter 8 ---------------------------------------

def test_theta_grad_samples_shapes_means_and_variance_order():
    torch.manual_seed(5)
    x, y = torch.randn(32, 20), torch.randint(0, 4, (32,))
    theta = torch.randn(4, 20) * 0.1
    g = {e: theta_grad_samples(x, y, theta, 3.0, e, n_samples=400)
         for e in ("multiplicative", "additive", "additive+lrt")}
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


# --- train_clip (the paper code's option) -----------------------------------------------

@pytest.mark.parametrize("make", [lambda clip: LinearSVDO(6, 4, train_clip=clip),
                                  lambda clip: Conv2dSVDO(2, 3, 3, train_clip=clip)])
def test_train_clip_zeroes_pruned_weights_in_the_training_mean(make):
    grads = {}
    for clip in (False, True):
        torch.manual_seed(0)
        layer = _randomise(make(clip))
        with torch.no_grad():  # prune every other weight: log alpha = 5 >= 3, else -5
            pruned = torch.zeros_like(layer.theta, dtype=torch.bool).flatten()
            pruned[::2] = True
            pruned = pruned.view_as(layer.theta)
            layer.log_sigma2.copy_((layer.theta ** 2).log() + torch.where(pruned, 5.0, -5.0))
        assert torch.equal(~layer.mask(), pruned)
        x = torch.randn(5, 6) if isinstance(layer, LinearSVDO) else torch.randn(5, 2, 6, 6)
        layer(x).sum().backward()
        grads[clip] = layer.theta.grad.clone()
    assert torch.all(grads[True][pruned] == 0)  # no data gradient through a pruned mean
    assert torch.all(grads[True][~pruned] != 0) and torch.all(grads[False][pruned] != 0)


def test_train_clip_in_repr_only_when_on():
    assert "train_clip" not in repr(LinearSVDO(3, 2))
    assert repr(LinearSVDO(3, 2, train_clip=True)).endswith("threshold=3.0, train_clip=True)")
    assert repr(Conv2dSVDO(1, 2, 3, train_clip=True)).endswith("train_clip=True)")


# --- bad input -------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, match", [
    (dict(in_features=0, out_features=3), "in_features must be a positive integer"),
    (dict(in_features=3, out_features=2.5), "out_features must be a positive integer"),
    (dict(in_features=3, out_features=2, threshold="3"), "threshold must be a finite number"),
    (dict(in_features=3, out_features=2, threshold=float("nan")), "threshold must be a finite"),
    (dict(in_features=3, out_features=2, train_clip=1), "train_clip must be True or False, got 1"),
])
def test_linear_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LinearSVDO(**kwargs)


@pytest.mark.parametrize("kwargs, match", [
    (dict(kernel_size=(3,)), "kernel_size must be an int or a pair"),
    (dict(kernel_size=0), "kernel_size and stride must be >= 1"),
    (dict(kernel_size=3, padding=-1), "padding >= 0"),
    (dict(kernel_size=3, stride=True), "stride must be an int or a pair"),
])
def test_conv_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Conv2dSVDO(2, 3, **kwargs)


def test_wrong_input_shapes_say_what_to_do():
    with pytest.raises(ValueError, match=r"expects inputs with 8 features.*flatten"):
        LinearSVDO(8, 2)(torch.randn(4, 7))
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\).*unsqueeze"):
        Conv2dSVDO(1, 2, 3)(torch.randn(4, 28, 28))


def test_bad_dense_weights():
    layer = LinearSVDO(4, 3)
    with pytest.raises(ValueError, match=r"dense weight has shape \(3, 5\).*same in/out sizes"):
        layer.load_dense_(torch.zeros(3, 5), torch.zeros(3))
    with pytest.raises(ValueError, match="disagree on having a bias"):
        layer.load_dense_(torch.zeros(3, 4), None)
    with pytest.raises(TypeError, match="from_dense expects an nn.Linear"):
        LinearSVDO.from_dense(nn.Conv2d(1, 2, 3))
    with pytest.raises(TypeError, match="from_dense expects an nn.Conv2d"):
        Conv2dSVDO.from_dense(nn.Linear(2, 3))


def test_theta_grad_samples_bad_input():
    x, y, theta = torch.randn(8, 5), torch.randint(0, 3, (8,)), torch.randn(3, 5)
    with pytest.raises(ValueError, match="unknown estimator 'mult'"):
        theta_grad_samples(x, y, theta, 0.0, "mult")
    with pytest.raises(ValueError, match="same D"):
        theta_grad_samples(x, y, theta[:, :4], 0.0, "additive")
    with pytest.raises(ValueError, match="one label per row"):
        theta_grad_samples(x, y[:3], theta, 0.0, "additive")
    with pytest.raises(ValueError, match="n_samples must be a positive integer"):
        theta_grad_samples(x, y, theta, 0.0, "additive", n_samples=0)
