"""Tests of course_lib.sparsity: per-layer pruned fractions and the compression accounting."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from course_lib.layers import LinearSVDO
from course_lib.models import LeNet5, LeNet300100
from course_lib.sparsity import compression, layer_sparsity, pruned_fraction, use_threshold, weight_counts


def _fresh(model):
    """Set every theta to 0.1 so that no weight is pruned by accident (log alpha = -5.4)."""
    with torch.no_grad():
        for _, m in model.weight_layers():
            m.theta.fill_(0.1)
    return model


def _prune(layer, n):
    """Prune the first n weights of a sparse layer (log alpha = 8 >= 3)."""
    with torch.no_grad():
        layer.log_sigma2.view(-1)[:n] = 20.0


def test_fresh_sparse_model_is_dense():
    model = _fresh(LeNet5())
    assert layer_sparsity(model) == {"conv1": 0.0, "conv2": 0.0, "fc1": 0.0, "fc2": 0.0}
    assert compression(model) == 1.0


def test_at_init_tiny_weights_already_count_as_pruned():
    # theta ~ U(-1/28, 1/28) and log sigma^2 = -10: |theta| < exp(-6.5) has log alpha > 3.
    model = LeNet300100()
    expected = math.exp(-6.5) * 28  # P(|U(-1/28, 1/28)| < e^-6.5)
    assert layer_sparsity(model)["fc1"] == pytest.approx(expected, abs=0.005)


def test_layer_sparsity_and_compression_by_hand():
    model = _fresh(LeNet300100())
    _prune(model.fc1, 784 * 300 - 2352)  # keep 1 %
    _prune(model.fc2, 15_000)  # prune half
    sp = layer_sparsity(model)
    assert sp["fc1"] == pytest.approx(0.99)
    assert sp["fc2"] == pytest.approx(0.5)
    assert sp["fc3"] == 0.0
    kept = 2352 + 15_000 + 1000
    assert compression(model) == pytest.approx(266_200 / kept)
    assert weight_counts(model)["fc2"] == (15_000, 30_000)


def test_biases_and_log_sigma2_do_not_count():
    model = _fresh(LeNet300100())
    before = compression(model)
    with torch.no_grad():
        for _, m in model.weight_layers():
            m.bias.zero_()  # zero biases are not "pruned weights"
    assert compression(model) == before == 1.0
    assert sum(t for _, t in weight_counts(model).values()) == 266_200  # theta only


def test_dense_layers_count_nonzero_weights():
    model = LeNet300100(sparse=False)
    with torch.no_grad():
        model.fc3.weight[:5].zero_()
    assert layer_sparsity(model)["fc3"] == pytest.approx(0.5)
    assert compression(model) == pytest.approx(266_200 / (266_200 - 500))


def test_everything_pruned_gives_infinite_compression():
    layer = LinearSVDO(4, 3)
    _prune(layer, 12)
    assert compression(nn.Sequential(layer)) == math.inf


def test_bad_input():
    with pytest.raises(TypeError, match="expected a torch.nn.Module, got dict"):
        compression({"fc1": torch.zeros(3)})
    with pytest.raises(ValueError, match="has no Linear/Conv2d or sparse VD layer"):
        layer_sparsity(nn.Sequential(nn.ReLU()))


def test_use_threshold_moves_every_sparse_layer_and_restores_it():
    model = _fresh(LeNet300100())  # log alpha = -10 - log(0.01) = -5.4 everywhere
    model.fc2.threshold = 4.0  # layers may differ; each gets its own back
    with use_threshold(model, -6.0) as same:
        assert same is model
        assert {m.threshold for _, m in model.weight_layers()} == {-6.0}
        assert compression(model) == math.inf  # everything pruned at -6 ...
    assert compression(model) == 1.0  # ... nothing at 3 again
    assert [m.threshold for _, m in model.weight_layers()] == [3.0, 4.0, 3.0]
    with pytest.raises(RuntimeError, match="inside"):
        with use_threshold(model, -6.0):
            raise RuntimeError("inside")
    assert [m.threshold for _, m in model.weight_layers()] == [3.0, 4.0, 3.0]


def test_use_threshold_bad_input():
    with pytest.raises(ValueError, match=r"threshold \(log alpha .*\) must be a finite number.*got nan"):
        with use_threshold(LeNet300100(), float("nan")):
            pass
    with pytest.raises(ValueError, match="no sparse variational dropout layer.*sparse=True"):
        with use_threshold(LeNet300100(sparse=False), 3.0):
            pass


def test_pruned_fraction_is_the_overall_sparsity():
    model = _fresh(LeNet300100())
    assert pruned_fraction(model) == 0.0
    _prune(model.fc1, 784 * 300 - 2352)  # keep 1 % of fc1
    kept = 2352 + 30_000 + 1000
    assert pruned_fraction(model) == pytest.approx(1 - kept / 266_200)
    assert pruned_fraction(model) == pytest.approx(1 - 1 / compression(model))
    _prune(model.fc2, 30_000)
    _prune(model.fc3, 1000)
    _prune(model.fc1, 784 * 300)
    assert pruned_fraction(model) == 1.0 and compression(model) == math.inf
    with pytest.raises(ValueError, match="has no Linear/Conv2d or sparse VD layer"):
        pruned_fraction(nn.Sequential(nn.ReLU()))
