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
    sparse_layers,
    use_weights,
    weight_layers,
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


@pytest.mark.parametrize(
    "make, x",
    [
        (lambda: LinearSVDO(8, 5), torch.randn(3, 8)),
        (lambda: Conv2dSVDO(2, 3, 3), torch.randn(2, 2, 6, 6)),
    ],
)
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


# --- train_clip (the paper code's option) -----------------------------------------------


@pytest.mark.parametrize(
    "make",
    [lambda clip: LinearSVDO(6, 4, train_clip=clip), lambda clip: Conv2dSVDO(2, 3, 3, train_clip=clip)],
)
def test_train_clip_zeroes_pruned_weights_in_the_training_mean(make):
    grads = {}
    for clip in (False, True):
        torch.manual_seed(0)
        layer = _randomise(make(clip))
        with torch.no_grad():  # prune every other weight: log alpha = 5 >= 3, else -5
            pruned = torch.zeros_like(layer.theta, dtype=torch.bool).flatten()
            pruned[::2] = True
            pruned = pruned.view_as(layer.theta)
            layer.log_sigma2.copy_((layer.theta**2).log() + torch.where(pruned, 5.0, -5.0))
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


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(in_features=0, out_features=3), ValueError, "in_features must be a positive integer"),
        (dict(in_features=3, out_features=2.5), TypeError, "out_features must be a positive integer"),
        (
            dict(in_features=3, out_features=2, threshold="3"),
            TypeError,
            r"threshold \(log alpha .*\) must be a finite number",
        ),
        (
            dict(in_features=3, out_features=2, threshold=float("nan")),
            ValueError,
            "threshold .* must be a finite",
        ),
        (
            dict(in_features=3, out_features=2, train_clip=1),
            TypeError,
            "train_clip must be True or False, got 1",
        ),
    ],
)
def test_linear_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        LinearSVDO(**kwargs)


def test_threshold_is_checked_when_it_is_set():
    layer = LinearSVDO(3, 2)
    with pytest.raises(ValueError, match="threshold .* must be a finite number"):
        layer.threshold = float("inf")
    with pytest.raises(TypeError, match="threshold .* must be a finite number"):
        layer.threshold = None
    assert layer.threshold == 3.0
    layer.threshold = 2
    assert layer.threshold == 2.0 and isinstance(layer.threshold, float)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(kernel_size=(3,)), ValueError, "kernel_size must be an int or a pair"),
        (dict(kernel_size=0), ValueError, "kernel_size and stride must be >= 1"),
        (dict(kernel_size=3, padding=-1), ValueError, "padding >= 0"),
        (
            dict(kernel_size=3, stride=True),
            TypeError,
            r"stride \(an int or a pair of ints\) must be an integer",
        ),
    ],
)
def test_conv_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
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


# --- the posterior's public interface: sample a weight, run with a given weight --------------


@pytest.mark.parametrize("make", [lambda: LinearSVDO(4, 3), lambda: Conv2dSVDO(2, 3, 2)])
def test_sample_weight_is_a_draw_from_q(make):
    layer = _randomise(make())
    gen = torch.Generator().manual_seed(0)
    draws = torch.stack([layer.sample_weight(gen).detach() for _ in range(20000)])
    sigma2 = layer.sigma2.detach()
    assert ((draws.mean(0) - layer.theta.detach()).abs() < 5 * (sigma2 / 20000).sqrt()).all()
    torch.testing.assert_close(draws.var(0), sigma2, rtol=0.05, atol=0)
    # the same generator state gives the same draw; prune zeroes exactly what the mask prunes
    a = layer.sample_weight(torch.Generator().manual_seed(1))
    torch.testing.assert_close(
        layer.sample_weight(torch.Generator().manual_seed(1), prune=True), a * layer.mask()
    )
    a.sum().backward()  # differentiable: the reparameterization trick
    assert layer.theta.grad is not None and layer.log_sigma2.grad is not None


@pytest.mark.parametrize(
    "make, x",
    [
        (lambda: LinearSVDO(8, 5), torch.randn(3, 8)),
        (lambda: Conv2dSVDO(2, 3, 3, padding=1), torch.randn(2, 2, 6, 6)),
    ],
)
def test_forward_with_a_weight_is_the_layer_map(make, x):
    layer = _randomise(make())
    w = torch.randn(layer.theta.shape)
    op = F.linear if isinstance(layer, LinearSVDO) else (lambda a, b, c: F.conv2d(a, b, c, padding=1))
    with torch.no_grad():
        assert torch.equal(layer.forward_with(x, w), op(x, w, layer.bias))
        layer.eval()
        assert torch.equal(layer(x), layer.forward_with(x, layer.sparse_weight()))
        torch.manual_seed(0)
        lrt = layer.forward_with(x, layer.theta, layer.sigma2)
        torch.manual_seed(0)
        assert torch.equal(layer.train()(x), lrt)  # the training forward is the LRT around theta


def test_use_weights_runs_the_network_with_the_given_weights_in_both_modes():
    torch.manual_seed(0)
    net = nn.Sequential(LinearSVDO(5, 4), nn.ReLU(), LinearSVDO(4, 3))
    x = torch.randn(7, 5)
    w = {"0": torch.randn(4, 5), "2": torch.randn(3, 4)}
    expected = F.linear(F.linear(x, w["0"], net[0].bias).relu(), w["2"], net[2].bias)
    with torch.no_grad():
        for mode in (True, False):
            net.train(mode)
            with use_weights(net, w) as same:
                assert same is net
                assert torch.equal(net(x), expected)
        with use_weights(net, {"2": w["2"]}):  # only some layers
            assert torch.equal(net(x), F.linear(net[1](net[0](x)), w["2"], net[2].bias))
        assert torch.equal(net(x), net[2](net[1](net[0](x))))  # its own forward again


def test_use_weights_with_variances_samples_around_the_given_mean():
    torch.manual_seed(0)
    net = nn.Sequential(LinearSVDO(5, 2))
    x = torch.randn(1, 5).repeat(20000, 1)
    mean_w, var_w = torch.randn(2, 5), torch.rand(2, 5)
    with torch.no_grad(), use_weights(net.eval(), {"0": mean_w}, {"0": var_w}):
        out = net(x)
    var_ref = F.linear(x[:1] ** 2, var_w) + VAR_EPS
    assert torch.all(
        (out.mean(0) - F.linear(x[:1], mean_w, net[0].bias)).abs() < 5 * (var_ref / 20000).sqrt()
    )
    torch.testing.assert_close(out.var(0, keepdim=True), var_ref, rtol=0.05, atol=0)


def test_use_weights_bad_input_and_restores_after_an_exception():
    net = nn.Sequential(LinearSVDO(5, 4), nn.ReLU(), LinearSVDO(4, 3))
    with pytest.raises(
        ValueError, match=r"'1' is not a sparse layer of the model; its sparse layers are \['0', '2'\]"
    ):
        with use_weights(net, {"1": torch.zeros(4, 5)}):
            pass
    with pytest.raises(ValueError, match=r"the weight for '0' has shape \(5, 4\), its theta \(4, 5\)"):
        with use_weights(net, {"0": torch.zeros(5, 4)}):
            pass
    with pytest.raises(ValueError, match="sigma2 must name the same layers as weights"):
        with use_weights(net, {"0": torch.zeros(4, 5)}, {"2": torch.zeros(3, 4)}):
            pass
    with pytest.raises(RuntimeError, match="inside"):
        with use_weights(net, {"0": torch.zeros(4, 5)}):
            raise RuntimeError("inside")
    assert net[0]._fixed is None and net[2]._fixed is None


def test_weight_layers_and_sparse_layers_in_forward_order():
    net = nn.Sequential(
        nn.Conv2d(1, 2, 3), Conv2dSVDO(2, 2, 3), nn.Flatten(), LinearSVDO(8, 4), nn.Linear(4, 2)
    )
    assert [n for n, _ in weight_layers(net)] == ["0", "1", "3", "4"]
    assert [n for n, _ in sparse_layers(net)] == ["1", "3"]
    assert weight_layers(nn.ReLU()) == [] and sparse_layers(nn.Linear(2, 2)) == []
    with pytest.raises(TypeError, match="expected a torch.nn.Module, got dict"):
        weight_layers({})
