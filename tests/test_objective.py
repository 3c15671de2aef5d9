"""Tests of course_lib.objective: the negative ELBO L_kappa and one optimizer step on it."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from course_lib.models import build_model
from course_lib.objective import negative_elbo, training_step


def _batch(n=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 28, 28, generator=g), torch.randint(0, 10, (n,), generator=g)


def test_negative_elbo_is_n_times_ce_plus_kappa_times_kl():
    ce, kl = torch.tensor(0.5), torch.tensor(200.0, requires_grad=True)
    assert float(negative_elbo(ce, kl, 60_000, 0.25).detach()) == 60_000 * 0.5 + 0.25 * 200.0
    assert float(negative_elbo(ce, kl, 60_000, 0.0).detach()) == 30_000.0
    # a dense net's KL is a constant zero without a graph: the objective is N * CE alone
    assert float(negative_elbo(ce, torch.zeros(()), 100, 1.0)) == 50.0


def test_training_step_returns_the_terms_before_the_step_and_takes_it():
    torch.manual_seed(0)
    net = build_model("lenet300", sparse=True)
    opt = torch.optim.SGD(net.parameters(), lr=1e-6)
    x, y = _batch()
    torch.manual_seed(1)
    expected_ce = F.cross_entropy(net(x), y)  # the same noise as the step's forward pass
    expected_kl = net.kl()
    theta = net.fc1.theta.detach().clone()
    torch.manual_seed(1)
    ce, kl = training_step(net, opt, x, y, n_train=1000, kl_weight=0.5)
    assert not ce.requires_grad and not kl.requires_grad
    assert torch.equal(ce, expected_ce.detach()) and torch.equal(kl, expected_kl.detach())
    assert not torch.equal(net.fc1.theta, theta)  # the step changed the weights


def test_the_kl_weight_scales_the_kl_gradient():
    x, y = _batch()
    grads = {}
    for kl_weight in (0.0, 1.0):
        torch.manual_seed(0)
        net = build_model("lenet300", sparse=True)
        opt = torch.optim.SGD(net.parameters(), lr=0.0)  # keep the weights, read the gradients
        torch.manual_seed(1)
        training_step(net, opt, x, y, n_train=1000, kl_weight=kl_weight)
        grads[kl_weight] = net.fc1.log_sigma2.grad.clone()
    # d KL / d log sigma^2 is nonzero, so the KL term moves the gradient only when kappa > 0
    torch.manual_seed(0)
    net = build_model("lenet300", sparse=True)
    net.kl().backward()
    assert torch.allclose(grads[1.0] - grads[0.0], net.fc1.log_sigma2.grad, rtol=1e-3, atol=1e-4)


def test_a_dense_step_has_no_kl():
    torch.manual_seed(0)
    net = build_model("lenet300", sparse=False)
    _, kl = training_step(net, torch.optim.Adam(net.parameters()), *_batch(), n_train=10, kl_weight=1.0)
    assert float(kl) == 0.0


def test_a_net_without_kl_trains_on_the_data_term_alone():
    """A plain classifier (chapter 10's MC-dropout baseline) takes the same step with kl_weight=0."""
    from course_lib.dropout import DropoutMLP

    x, y = _batch()
    x = x.flatten(1)
    torch.manual_seed(0)
    net = DropoutMLP((784, 30, 10), p=0.1)
    reference = DropoutMLP((784, 30, 10), p=0.1)
    reference.load_state_dict(net.state_dict())
    opt, ref_opt = (torch.optim.SGD(m.parameters(), lr=0.01) for m in (net, reference))
    torch.manual_seed(1)
    ce, kl = training_step(net, opt, x, y, n_train=100, kl_weight=0.0)
    torch.manual_seed(1)
    loss = 100 * F.cross_entropy(reference(x), y)  # the same dropout mask: N * mean CE
    ref_opt.zero_grad()
    loss.backward()
    ref_opt.step()
    assert float(kl) == 0.0 and torch.equal(ce, (loss / 100).detach())
    assert all(torch.equal(a, b) for a, b in zip(net.parameters(), reference.parameters()))


def test_a_kl_weight_for_a_net_without_kl_is_refused():
    from course_lib.dropout import DropoutMLP

    net = DropoutMLP((784, 30, 10), p=0.1)
    x, y = _batch()
    with pytest.raises(TypeError, match=r"DropoutMLP has no kl\(\) method.*kl_weight=0"):
        training_step(net, torch.optim.SGD(net.parameters(), lr=0.01), x.flatten(1), y, 100, kl_weight=0.5)
