"""Tests for course_lib.checks.ensemble: A6, the predictive ensemble.

The solution passes and each typical mistake is named.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from check_helpers import expect_mistake

from course_lib import checks


def entropy(probs):
    return torch.special.entr(probs).sum(-1)


def mutual_information(samples):
    return entropy(samples.mean(0)) - entropy(samples).mean(0)


def ece(probs, y, n_bins):
    from course_lib import scores

    return scores.expected_calibration_error(probs, y, n_bins)


def ece_by_hand(probs, y, n_bins):
    conf, pred = probs.max(1)
    correct = (pred == y).double()
    total = 0.0
    for m in range(n_bins):
        sel = (conf > m / n_bins) & (conf <= (m + 1) / n_bins)
        if sel.any():
            total += sel.sum() / len(y) * (correct[sel].mean() - conf[sel].mean()).abs()
    return float(total)


def test_a6_solutions_pass(capsys):
    checks.check_entropy(entropy)
    checks.check_mutual_information(mutual_information)
    checks.check_ece(ece)
    checks.check_ece(ece_by_hand)
    assert capsys.readouterr().out.count("OK - ") == 4


@pytest.mark.parametrize(
    "fn, mistake, match",
    [
        (lambda p: (p * p.clamp_min(1e-12).log()).sum(-1), "no_minus", "your entropy is negative"),
        (lambda p: torch.special.entr(p).sum(-1) / np.log(2), "bits", "nats"),
        (lambda p: torch.special.entr(p).mean(-1), "mean_over_classes", "averaged over the classes"),
        (lambda p: -(p * p.log()).sum(-1), "nan_zero_prob", r"torch.special.entr\(p\)"),
        (lambda p: torch.special.entr(p).sum(0), "wrong_axis", "summed over the examples"),
    ],
)
def test_entropy_mistakes(fn, mistake, match):
    expect_mistake(checks.check_entropy, fn, mistake, match)


@pytest.mark.parametrize(
    "fn, mistake, match",
    [
        (lambda s: entropy(s).mean(0) - entropy(s.mean(0)), "sign", "Swap the two terms"),
        (lambda s: entropy(s.mean(0)), "total_only", "total uncertainty"),
        (lambda s: entropy(s).mean(0), "aleatoric_only", "aleatoric part"),
        (lambda s: entropy(s.mean(0)) - entropy(s[0]), "one_member", "entropy of one member"),
        (lambda s: entropy(s.mean(1)) - entropy(s).mean(1), "wrong_axis", "one per member"),
    ],
)
def test_mutual_information_mistakes(fn, mistake, match):
    expect_mistake(checks.check_mutual_information, fn, mistake, match)


def test_mutual_information_is_graded_on_its_own():
    namespace = {"entropy": lambda p: -(p * p.log()).sum(-1)}  # a wrong Task 1 (NaN at 0)
    exec("def mutual_information(s):\n    return entropy(s.mean(0)) - entropy(s).mean(0)\n", namespace)
    checks.check_mutual_information(namespace["mutual_information"])


@pytest.mark.parametrize(
    "how, mistake, match",
    [
        ("unweighted", "unweighted", r"\|B_m\| / N"),
        ("signed", "signed", "cancel"),
        ("max", "max_gap", "maximum calibration error"),
        ("true_class", "true_class_prob", "predicted"),
        ("one_bin", "one_bin", "one bin"),
        ("bins15", "n_bins_ignored", "you used 15 bins"),
    ],
)
def test_ece_mistakes(how, mistake, match):
    def fn(probs, y, n_bins):
        conf, pred = probs.max(1)
        if how == "true_class":
            conf = probs[torch.arange(len(y)), y]
        correct = (pred == y).double()
        if how == "one_bin":
            return float((correct.mean() - conf.mean()).abs())
        n_bins = 15 if how == "bins15" else n_bins
        gaps, weights = [], []
        for m in range(n_bins):
            sel = (conf > m / n_bins) & (conf <= (m + 1) / n_bins)
            if sel.any():
                gaps.append(float(correct[sel].mean() - conf[sel].mean()))
                weights.append(float(sel.sum()) / len(y))
        gaps, weights = np.array(gaps), np.array(weights)
        return {
            "unweighted": np.abs(gaps).mean(),
            "signed": (weights * gaps).sum(),
            "max": np.abs(gaps).max(),
        }.get(how, (weights * np.abs(gaps)).sum())

    expect_mistake(checks.check_ece, fn, mistake, match)


@pytest.mark.parametrize(
    "check, fn",
    [
        (checks.check_entropy, entropy),
        (checks.check_mutual_information, mutual_information),
        (checks.check_ece, ece),
    ],
)
def test_hidden_inputs_pass_the_solution_silently(check, fn, capsys):
    check(fn, hidden=2024)
    assert capsys.readouterr().out == ""
