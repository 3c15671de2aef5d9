"""Tests of course_lib.models: architectures, weight counts, KL, dense baseline, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from course_lib.layers import Conv2dSVDO, LinearSVDO
from course_lib.models import LeNet5, LeNet300100, build_model


def _n_weights(model):
    return sum((m.theta if hasattr(m, "theta") else m.weight).numel() for _, m in model.weight_layers())


@pytest.mark.parametrize("cls, n_weights", [(LeNet300100, 266_200), (LeNet5, 430_500)])
@pytest.mark.parametrize("sparse", [True, False])
def test_shapes_and_weight_counts(cls, n_weights, sparse):
    model = cls(sparse=sparse)
    assert model(torch.zeros(3, 1, 28, 28)).shape == (3, 10)
    assert _n_weights(model) == n_weights


def test_lenet5_layers_are_the_caffe_ones():
    sparse, dense = LeNet5(), LeNet5(sparse=False)
    shapes = [tuple(m.theta.shape) for _, m in sparse.weight_layers()]
    assert shapes == [(20, 1, 5, 5), (50, 20, 5, 5), (500, 800), (10, 500)]
    assert [tuple(m.weight.shape) for _, m in dense.weight_layers()] == shapes
    assert isinstance(sparse.conv1, Conv2dSVDO) and isinstance(sparse.fc2, LinearSVDO)
    assert isinstance(dense.conv1, nn.Conv2d) and isinstance(dense.fc2, nn.Linear)


def test_lenet300_layers():
    assert [n for n, _ in LeNet300100().weight_layers()] == ["fc1", "fc2", "fc3"]
    assert [tuple(m.weight.shape) for _, m in LeNet300100(sparse=False).weight_layers()] == [
        (300, 784),
        (100, 300),
        (10, 100),
    ]


def test_kl_sums_the_layers_and_is_zero_for_dense():
    model = LeNet300100()
    total = sum(float(m.kl().detach()) for _, m in model.weight_layers())
    assert float(model.kl().detach()) == pytest.approx(total, rel=1e-6)
    assert float(model.kl().detach()) > 0
    assert float(LeNet5(sparse=False).kl()) == 0.0


def test_train_is_noisy_eval_is_deterministic():
    model = LeNet5()
    with torch.no_grad():
        for _, m in model.weight_layers():
            m.log_sigma2.fill_(-3.0)
        x = torch.randn(2, 1, 28, 28)
        model.train()
        assert not torch.equal(model(x), model(x))
        model.eval()
        assert torch.equal(model(x), model(x))


def test_threshold_and_init_are_passed_to_layers():
    model = build_model("lenet5", threshold=2.0, log_sigma2_init=-8.0)
    for _, m in model.weight_layers():
        assert m.threshold == 2.0 and torch.all(m.log_sigma2 == -8.0)
    assert isinstance(build_model("lenet300", sparse=False).fc1, nn.Linear)


def test_train_clip_is_passed_to_layers():
    assert build_model("lenet300", train_clip=True).fc2.train_clip


def test_bad_input():
    with pytest.raises(ValueError, match=r"unknown model 'lenet7'.*lenet300"):
        build_model("lenet7")
    with pytest.raises(ValueError, match=r"shape \(N, 1, 28, 28\), got \(2, 784\)"):
        LeNet300100()(torch.zeros(2, 784))
    with pytest.raises(ValueError, match="mnist_tensors"):
        LeNet5()(torch.zeros(2, 3, 28, 28))
    with pytest.raises(
        TypeError, match=r"LeNet5 expects a torch.Tensor of MNIST images, got ndarray.*as_tensor"
    ):
        LeNet5()(np.zeros((2, 1, 28, 28), dtype=np.float32))
    with pytest.raises(TypeError, match="sparse must be True or False, got 'no'"):
        build_model("lenet300", sparse="no")
