"""Tests of course_lib.prediction: the one deterministic prediction, its batching and its modes."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from course_lib.dropout import BernoulliDropout, DropoutMLP
from course_lib.models import LeNet300100
from course_lib.prediction import eval_mode, predict, probabilities


def _net(seed: int = 0) -> LeNet300100:
    torch.manual_seed(seed)
    net = LeNet300100()
    with torch.no_grad():
        for _, m in net.weight_layers():
            m.theta.mul_(3.0)
            m.log_sigma2.fill_(-8.0)
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


def test_predict_does_not_depend_on_the_batch_size():
    net, x = _net(), _x(7)
    full = predict(net, x, batch_size=None)
    for b in (1, 3, 7, 100):
        torch.testing.assert_close(predict(net, x, batch_size=b), full)


def test_predict_of_a_dropout_net_is_the_noise_free_pass():
    torch.manual_seed(0)
    model = DropoutMLP((4, 8, 3), p=0.5).train()
    x = torch.randn(6, 4)
    probs = predict(model, x)
    assert torch.allclose(probs, torch.softmax(model.eval()(x), -1))


def test_eval_mode_restores_a_mixed_state_also_after_an_exception():
    net = nn.Sequential(nn.Linear(2, 2), BernoulliDropout(0.5), nn.Linear(2, 2))
    net.train()
    net[2].eval()
    with pytest.raises(RuntimeError, match="inside"):
        with eval_mode(net, train=[net[1]]) as same:
            assert same is net
            assert [m.training for m in net] == [False, True, False] and not net.training
            raise RuntimeError("inside")
    assert [m.training for m in net] == [True, True, False] and net.training


def test_probabilities_keep_the_modes_as_they_are():
    torch.manual_seed(0)
    model = DropoutMLP((4, 8, 3), p=0.5).train()
    x = torch.randn(50, 4)
    assert not torch.allclose(probabilities(model, x), probabilities(model, x))  # noise on
    assert model.training


def test_bad_input():
    with pytest.raises(ValueError, match=r"shape \(N, \.\.\.\) with N >= 1"):
        predict(_net(), torch.zeros(0, 1, 28, 28))
    with pytest.raises(ValueError, match=r"shape \(N, \.\.\.\).*unsqueeze\(0\)"):
        predict(nn.Linear(3, 2), torch.zeros(3))
    with pytest.raises(
        ValueError, match=r"batch_size \(inputs per forward pass\) must be a positive integer"
    ):
        predict(_net(), _x(), batch_size=0)
    with pytest.raises(TypeError, match="batch_size .* must be a positive integer"):
        predict(_net(), _x(), batch_size=2.5)
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        predict(lambda x: x, _x())
