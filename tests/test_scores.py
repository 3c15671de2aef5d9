"""Tests of course_lib.scores: scores of class probabilities against hand-computed cases, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from course_lib.scores import (
    LOG_EPS,
    accuracy,
    confidence,
    error_rate,
    expected_calibration_error,
    nll,
    predictive_entropy,
    reliability_curve,
    score,
    validate_probs,
)

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


def test_error_rate_is_the_count_of_wrong_predictions_over_n():
    assert error_rate(P4, Y4) == 0.25
    wrong = torch.tensor([[0.2, 0.8]] * 235 + [[0.8, 0.2]] * (10_000 - 235))
    assert error_rate(wrong, torch.zeros(10_000, dtype=torch.long)) == 235 / 10_000 == 0.0235
    with pytest.raises(ValueError, match="one label per row"):
        error_rate(P4, Y4[:3])


def test_nll_hand_case():
    expected = -(math.log(0.9) + math.log(0.1) + math.log(0.6) + math.log(0.7)) / 4
    assert nll(P4, Y4) == pytest.approx(expected, rel=1e-12)


def test_accuracy_and_nll_of_a_three_example_hand_case():
    # (moved from test_dropout: chapter 5 scores its sweep with these two)
    probs = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    y = torch.tensor([0, 1, 1])
    assert math.isclose(accuracy(probs, y), 2 / 3)
    assert math.isclose(nll(probs, y), -(math.log(0.9) + math.log(0.8) + math.log(0.4)) / 3, rel_tol=1e-6)
    with pytest.raises(ValueError, match="must sum to 1.*softmax"):
        accuracy(torch.ones(3, 2), torch.tensor([0, 1, 0]))
    with pytest.raises(ValueError, match=r"labels must lie in 0\.\.1"):
        nll(torch.full((3, 2), 0.5), torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match=r"one label per row of probs: expected shape \(3,\)"):
        nll(torch.full((3, 2), 0.5), torch.tensor([0, 1]))


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
        validate_probs(torch.tensor([[float("nan"), 1.0]]))


@pytest.mark.parametrize("shape", [(4,), (2, 1), (0, 3), (2, 2, 2)])
def test_probs_of_the_wrong_shape_are_refused(shape):
    with pytest.raises(ValueError, match=r"shape \(N, C\)"):
        validate_probs(torch.full(shape, 0.5))


def test_integer_probs_are_refused():
    with pytest.raises(ValueError, match="floating point"):
        validate_probs(torch.tensor([[1, 0]]))


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


@pytest.mark.parametrize(
    "n_bins, error", [(0, ValueError), (-3, ValueError), (2.5, TypeError), (True, TypeError)]
)
def test_bad_number_of_bins_is_refused(n_bins, error):
    with pytest.raises(error, match=r"n_bins \(the number of confidence bins\) must be a positive integer"):
        reliability_curve(P4, Y4, n_bins=n_bins)
