"""Tests for course_lib.kl: the variational-dropout KL term and its approximations."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from course_lib import kl


def test_molchanov_formula_by_hand():
    la = np.array([-3.0, 0.0, 2.5])
    expected = (
        kl.K1 / (1 + np.exp(-(kl.K2 + kl.K3 * la))) - 0.5 * np.log(1 + 1 / np.exp(la)) - kl.K1
    )
    np.testing.assert_allclose(kl.neg_kl_molchanov(la), expected, rtol=1e-12, atol=1e-14)


def test_molchanov_numpy_and_torch_agree_and_are_finite_on_wide_range():
    la = np.linspace(-20, 20, 401)
    out_np = kl.neg_kl_molchanov(la)
    out_t = kl.neg_kl_molchanov(torch.tensor(la, dtype=torch.float64))
    assert isinstance(out_t, torch.Tensor)
    assert np.all(np.isfinite(out_np))
    np.testing.assert_allclose(out_t.numpy(), out_np, rtol=1e-12, atol=1e-14)
    # -KL -> -0.5 log(1/alpha) - k1 + k1 sigma(.) for small alpha, -> 0 for large alpha
    assert abs(out_np[-1]) < 1e-8
    assert out_np[0] == pytest.approx(-10.0 - kl.K1 + kl.K1 / (1 + np.exp(-(kl.K2 - 20 * kl.K3))), rel=1e-9)


def test_molchanov_float32_extremes_are_finite():
    la = torch.tensor([-20.0, -10.0, 0.0, 10.0, 20.0], dtype=torch.float32)
    out = kl.neg_kl_molchanov(la)
    assert torch.isfinite(out).all()
    assert out.dtype == torch.float32


def test_molchanov_torch_gradients_flow():
    la = torch.linspace(-20, 20, 41, dtype=torch.float64, requires_grad=True)
    kl.neg_kl_molchanov(la).sum().backward()
    assert la.grad is not None and torch.isfinite(la.grad).all()
    # -KL increases with alpha: the gradient is positive everywhere
    assert (la.grad > 0).all()
    # compare with a finite difference
    check = torch.tensor([0.3], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(kl.neg_kl_molchanov, (check,))


@pytest.mark.parametrize("bad", [np.array([0.0, np.nan]), np.array([np.inf]), [-np.inf, 1.0]])
def test_molchanov_rejects_nan_inf_numpy(bad):
    with pytest.raises(ValueError, match="NaN or inf.*clip it"):
        kl.neg_kl_molchanov(bad)


def test_molchanov_rejects_nan_inf_torch():
    with pytest.raises(ValueError, match="NaN or inf"):
        kl.neg_kl_molchanov(torch.tensor([0.0, float("nan")]))
    with pytest.raises(ValueError, match="NaN or inf"):
        kl.neg_kl_molchanov(torch.tensor([float("inf")], requires_grad=True))


def test_molchanov_rejects_empty():
    with pytest.raises(ValueError, match="empty"):
        kl.neg_kl_molchanov(np.array([]))
    with pytest.raises(ValueError, match="empty"):
        kl.neg_kl_molchanov(torch.empty(0))


def test_molchanov_rejects_non_numeric_and_integer_tensors():
    with pytest.raises(TypeError, match="must be a number"):
        kl.neg_kl_molchanov("abc")
    with pytest.raises(TypeError, match="floating-point tensor"):
        kl.neg_kl_molchanov(torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="k2 must be a finite number"):
        kl.neg_kl_molchanov(0.0, k2=float("nan"))
