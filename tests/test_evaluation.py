"""Tests of course_lib.evaluation: scores against hand-computed cases, the MC ensemble, shifts."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from course_lib.data import MNIST_MEAN, MNIST_STD
from course_lib.evaluation import (
    LOG_EPS,
    accuracy,
    check_probs,
    confidence,
    ensemble_curve,
    ensemble_predictions,
    expected_calibration_error,
    mc_predict,
    mc_samples,
    nll,
    noise_images,
    predict,
    predictive_entropy,
    reliability_curve,
    rotate_images,
    sample_weights,
    score,
)
from course_lib.layers import LinearSVDO
from course_lib.models import LeNet300100

# Four examples, two classes: confidences 0.9, 0.9, 0.6, 0.3->0.7, labels chosen by hand.
P4 = torch.tensor([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.3, 0.7]], dtype=torch.float64)
Y4 = torch.tensor([0, 1, 0, 1])


# ---------------------------------------------------------------------------------------
# scores, hand-computed
# ---------------------------------------------------------------------------------------
def test_accuracy_hand_case():
    assert accuracy(P4, Y4) == 0.75  # rows 0, 2, 3 right, row 1 wrong


def test_accuracy_accepts_numpy():
    assert accuracy(P4.numpy(), Y4.numpy()) == 0.75


def test_nll_hand_case():
    expected = -(math.log(0.9) + math.log(0.1) + math.log(0.6) + math.log(0.7)) / 4
    assert nll(P4, Y4) == pytest.approx(expected, rel=1e-12)


def test_nll_of_a_zero_probability_is_clamped_not_infinite():
    p = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    assert nll(p, torch.tensor([1])) == pytest.approx(-math.log(LOG_EPS))


def test_predictive_entropy_hand_cases():
    p = torch.tensor([[1.0, 0.0, 0.0], [1 / 3, 1 / 3, 1 / 3], [0.5, 0.25, 0.25]], dtype=torch.float64)
    h = predictive_entropy(p)
    assert h.tolist() == pytest.approx([0.0, math.log(3), 1.5 * math.log(2)], abs=1e-12)


def test_confidence_is_the_largest_probability():
    assert confidence(P4).tolist() == pytest.approx([0.9, 0.9, 0.6, 0.7])


def test_reliability_curve_hand_case():
    curve = reliability_curve(P4, Y4, n_bins=10)
    assert curve.edges.tolist() == pytest.approx(np.linspace(0, 1, 11).tolist())
    # bins (0.5,0.6] <- 0.6 ; (0.6,0.7] <- 0.7 ; (0.8,0.9] <- 0.9, 0.9
    assert curve.counts.tolist() == [0, 0, 0, 0, 0, 1, 1, 0, 2, 0]
    assert curve.confidence[8] == pytest.approx(0.9) and curve.accuracy[8] == 0.5
    assert curve.confidence[5] == pytest.approx(0.6) and curve.accuracy[5] == 1.0
    assert curve.confidence[6] == pytest.approx(0.7) and curve.accuracy[6] == 1.0
    assert np.isnan(curve.accuracy[0]) and np.isnan(curve.confidence[9])
    # ECE = (2 * 0.4 + 1 * 0.4 + 1 * 0.3) / 4
    assert curve.ece == pytest.approx(0.375)
    assert expected_calibration_error(P4, Y4, n_bins=10) == pytest.approx(0.375)


def test_ece_with_one_bin_is_the_gap_between_mean_confidence_and_accuracy():
    mean_conf = (0.9 + 0.9 + 0.6 + 0.7) / 4
    assert expected_calibration_error(P4, Y4, n_bins=1) == pytest.approx(abs(0.75 - mean_conf))


def test_confidence_on_a_bin_edge_goes_to_the_lower_bin():
    p = torch.tensor([[0.5, 0.5], [0.2, 0.8]], dtype=torch.float64)
    curve = reliability_curve(p, torch.tensor([0, 1]), n_bins=2)
    assert curve.counts.tolist() == [1, 1]  # 0.5 is in (0, 0.5], 0.8 in (0.5, 1]


def test_ece_small_for_calibrated_and_large_for_overconfident_predictions():
    gen = torch.Generator().manual_seed(0)
    n = 20000
    q = torch.rand(n, generator=gen, dtype=torch.float64) * 0.5 + 0.5  # P(class 0) in [0.5, 1]
    y = (torch.rand(n, generator=gen, dtype=torch.float64) >= q).long()  # class 0 with prob q
    calibrated = torch.stack([q, 1 - q], 1)
    assert expected_calibration_error(calibrated, y) < 0.02
    sharp = torch.stack([0.5 + (q - 0.5) * 0.2 + 0.4, 0.1 - (q - 0.5) * 0.2], 1)  # conf >= 0.9
    assert expected_calibration_error(sharp, y) > 0.15


def test_score_bundles_the_three_scores():
    s = score(P4, Y4, n_bins=10)
    assert (s.accuracy, s.nll, s.ece) == (accuracy(P4, Y4), nll(P4, Y4), pytest.approx(0.375))


# ---------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------
def test_rows_not_summing_to_one_are_refused():
    bad = torch.tensor([[0.6, 0.6], [0.5, 0.5]])
    with pytest.raises(ValueError, match=r"row 0 sums to 1\.2.*softmax"):
        accuracy(bad, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="must sum to 1"):
        predictive_entropy(torch.tensor([[2.0, -1.0]]).abs())


def test_logits_are_refused_with_a_hint_to_apply_softmax():
    with pytest.raises(ValueError, match="negative entries.*softmax"):
        nll(torch.tensor([[1.5, -0.5]]), torch.tensor([0]))


def test_nan_probabilities_are_refused():
    with pytest.raises(ValueError, match="NaN or infinite"):
        check_probs(torch.tensor([[float("nan"), 1.0]]))


@pytest.mark.parametrize("shape", [(4,), (2, 1), (0, 3), (2, 2, 2)])
def test_probs_of_the_wrong_shape_are_refused(shape):
    with pytest.raises(ValueError, match=r"shape \(N, C\)"):
        check_probs(torch.full(shape, 0.5))


def test_integer_probs_are_refused():
    with pytest.raises(ValueError, match="floating point"):
        check_probs(torch.tensor([[1, 0]]))


def test_non_tensor_probs_are_refused():
    with pytest.raises(TypeError, match="torch.Tensor or a NumPy array"):
        accuracy([[0.5, 0.5]], torch.tensor([0]))


def test_mismatched_label_shape_is_refused():
    with pytest.raises(ValueError, match=r"one label per row of probs: expected shape \(4,\)"):
        nll(P4, torch.tensor([0, 1, 0]))
    with pytest.raises(ValueError, match="one label per row"):
        expected_calibration_error(P4, Y4.view(2, 2))


def test_labels_out_of_range_or_float_are_refused():
    with pytest.raises(ValueError, match=r"labels must lie in 0\.\.1"):
        accuracy(P4, torch.tensor([0, 1, 2, 0]))
    with pytest.raises(ValueError, match="integer class labels"):
        accuracy(P4, Y4.double())


@pytest.mark.parametrize("n_bins", [0, -3, 2.5, True])
def test_bad_number_of_bins_is_refused(n_bins):
    with pytest.raises(ValueError, match="n_bins must be a positive integer"):
        reliability_curve(P4, Y4, n_bins=n_bins)


# ---------------------------------------------------------------------------------------
# the mean net and the Monte Carlo ensemble
# ---------------------------------------------------------------------------------------
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


def test_predict_is_the_softmax_of_the_eval_pass_and_restores_the_mode():
    net = _net().train()
    x = _x()
    p = predict(net, x, batch_size=4)
    assert net.training  # restored
    net.eval()
    torch.testing.assert_close(p, torch.softmax(net(x), 1))


@pytest.mark.parametrize("mode", ["weights", "lrt"])
def test_with_vanishing_variance_every_member_is_the_mean_net(mode):
    net = _net(log_sigma2=-60.0)
    x = _x()
    s = mc_samples(net, x, 3, mode=mode)
    assert s.shape == (3, 6, 10)
    # (the LRT adds sqrt(var + 1e-8) noise: a standard deviation of 1e-4 per unit)
    for k in range(3):
        torch.testing.assert_close(s[k], predict(net, x), atol=1e-5 if mode == "weights" else 1e-3,
                                   rtol=0)


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
    torch.testing.assert_close(mc_samples(net, x, 2, "weights", batch_size=1),
                               mc_samples(net, x, 2, "weights", batch_size=6))
    assert not torch.allclose(mc_samples(net, x, 2, "lrt", batch_size=1),
                              mc_samples(net, x, 2, "lrt", batch_size=6))


def test_sample_weights_has_the_posterior_mean_and_variance():
    layer = LinearSVDO(4, 3)
    with torch.no_grad():
        layer.log_sigma2.copy_(torch.linspace(-4, 0, 12).view(3, 4))
    model = nn.Sequential(layer)
    gen = torch.Generator().manual_seed(0)
    draws = torch.stack([sample_weights(model, gen)["0.theta"] for _ in range(20000)])
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
    w = sample_weights(net, torch.Generator().manual_seed(0), prune=True)["fc2.theta"]
    assert (w[~keep] == 0).all() and (w[keep] != 0).all()
    w_all = sample_weights(net, torch.Generator().manual_seed(0), prune=False)["fc2.theta"]
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
        layer.theta.copy_(torch.tensor([[1.0, -0.5, 0.2, 0.0, 0.3]] * 3) * torch.tensor([[1.0], [0.5], [-1.0]]))
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
        check_probs(p)  # rows still sum to one
    # the same predictions that ensemble_curve scores
    y = torch.tensor([0, 1, 2, 3, 4, 5])
    assert ensemble_curve(s, y, [3])[0] == score(preds[2], y)


def test_ensemble_predictions_bad_input():
    s = torch.full((3, 4, 2), 0.5)
    with pytest.raises(ValueError, match="k = 4 is larger than the number of members K = 3"):
        ensemble_predictions(s, [4])
    with pytest.raises(ValueError, match="every k in ks must be a positive integer"):
        ensemble_predictions(s, [2.0])
    with pytest.raises(ValueError, match="ks is empty"):
        ensemble_predictions(s, [])
    with pytest.raises(ValueError, match=r"shape \(K, N, C\).*mc_samples"):
        ensemble_predictions(s[0], [1])
    with pytest.raises(TypeError, match="torch.Tensor or a NumPy array"):
        ensemble_predictions([[[0.5, 0.5]]], [1])

@pytest.mark.parametrize("k", [0, -1, 1.5])
def test_ensemble_size_below_one_is_refused(k):
    with pytest.raises(ValueError, match=r"n_samples must be a positive integer \(the ensemble size K\)"):
        mc_samples(_net(), _x(), k)
    with pytest.raises(ValueError, match="n_samples must be a positive integer"):
        mc_predict(_net(), _x(), k, mode="lrt")


def test_ensemble_curve_bad_input():
    s = torch.full((3, 4, 2), 0.5)
    y = torch.tensor([0, 1, 0, 1])
    with pytest.raises(ValueError, match="k = 4 is larger than the number of members K = 3"):
        ensemble_curve(s, y, [1, 4])
    with pytest.raises(ValueError, match="every k in ks must be a positive integer"):
        ensemble_curve(s, y, [0])
    with pytest.raises(ValueError, match="ks is empty"):
        ensemble_curve(s, y, [])
    with pytest.raises(ValueError, match=r"shape \(K, N, C\)"):
        ensemble_curve(s[0], y, [1])
    with pytest.raises(ValueError, match="one label per row"):
        ensemble_curve(s, y[:3], [1])


def test_unknown_mode_dense_model_and_empty_input_are_refused():
    with pytest.raises(ValueError, match=r"unknown mode 'mcmc'; choose one of \('weights', 'lrt'\)"):
        mc_samples(_net(), _x(), 2, mode="mcmc")
    with pytest.raises(ValueError, match="no sparse variational dropout layer.*predict"):
        mc_samples(LeNet300100(sparse=False), _x(), 2)
    with pytest.raises(ValueError, match=r"shape \(N, \.\.\.\) with N >= 1"):
        mc_samples(_net(), torch.zeros(0, 1, 28, 28), 2)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        predict(_net(), _x(), batch_size=0)


def test_a_threshold_that_prunes_everything_is_refused_in_weight_mode():
    net = _net()
    net.fc1.threshold = -9.0
    with pytest.raises(ValueError, match="prunes every weight"):
        mc_samples(net, _x(), 1)


# ---------------------------------------------------------------------------------------
# unfamiliar inputs
# ---------------------------------------------------------------------------------------
def test_rotation_by_90_degrees_is_counter_clockwise():
    x = torch.zeros(1, 1, 5, 5)
    x[0, 0, 0, 2] = 1.0  # top centre
    r = rotate_images(x, 90.0)
    expected = torch.zeros(1, 1, 5, 5)
    expected[0, 0, 2, 0] = 1.0  # left centre
    torch.testing.assert_close(r, expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(rotate_images(x, -90.0)[0, 0, 2, 4], torch.tensor(1.0))


def test_rotation_by_0_and_360_degrees_is_the_identity():
    x = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(rotate_images(x, 0.0), x, atol=1e-5, rtol=0)
    torch.testing.assert_close(rotate_images(x, 360.0), x, atol=1e-5, rtol=0)


def test_rotation_fills_the_corners_with_the_background():
    bg = -MNIST_MEAN / MNIST_STD
    x = torch.full((1, 1, 28, 28), 2.0)
    r = rotate_images(x, 45.0, background=bg)
    assert r[0, 0, 0, 0] == pytest.approx(bg, abs=1e-6)  # a corner comes from outside
    assert r[0, 0, 14, 14] == pytest.approx(2.0, abs=1e-6)  # the centre stays
    blank = torch.full((2, 1, 28, 28), bg)
    torch.testing.assert_close(rotate_images(blank, 30.0, background=bg), blank)


def test_rotation_bad_input():
    with pytest.raises(ValueError, match=r"\(N, C, H, W\).*unsqueeze\(1\)"):
        rotate_images(torch.zeros(2, 28, 28), 10.0)
    with pytest.raises(ValueError, match="floating-point"):
        rotate_images(torch.zeros(2, 1, 28, 28, dtype=torch.uint8), 10.0)
    with pytest.raises(ValueError, match="angle must be a finite number"):
        rotate_images(torch.zeros(2, 1, 28, 28), float("nan"))


def test_noise_images_are_uniform_pixels_standardised_and_seeded():
    x = noise_images(50, seed=2)
    assert x.shape == (50, 1, 28, 28) and x.dtype == torch.float32
    raw = x * MNIST_STD + MNIST_MEAN
    assert raw.min() >= -1e-6 and raw.max() <= 1 + 1e-6
    assert raw.mean().item() == pytest.approx(0.5, abs=0.01)
    torch.testing.assert_close(x, noise_images(50, seed=2))
    assert not torch.equal(x, noise_images(50, seed=3))
    torch.testing.assert_close(noise_images(5, seed=2, normalize=False), raw[:5])
    with pytest.raises(ValueError, match="n must be a positive integer"):
        noise_images(0)
