"""Chapter 8's experiment: the variance of three stochastic gradient estimators of one layer.

The data term of a linear softmax layer whose weights follow
:math:`q(W) = \\prod \\mathcal N(w_{ij} \\mid \\theta_{ij}, \\alpha\\theta_{ij}^2)` is differentiated
in :math:`\\theta` by three estimators (:data:`GRAD_ESTIMATORS`), which differ in how a sample
is drawn: the multiplicative noise of Gaussian dropout, the *additive noise reparameterization*
of sparse VD (:math:`\\sigma` a parameter of its own), and the additive one with the *local
reparameterization trick* (:mod:`course_lib.layers` trains with the last). Their gradients have the
same mean; :func:`theta_grad_samples` draws many of them so that their variances can be compared.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from course_lib import validation as V
from course_lib.layers import VAR_EPS


#: The three gradient estimators compared in chapter 8 (see :func:`theta_grad_samples`).
GRAD_ESTIMATORS = ("multiplicative", "additive", "additive+lrt")


def theta_grad_samples(
    x: torch.Tensor,
    y: torch.Tensor,
    theta: torch.Tensor,
    log_alpha: float,
    estimator: str,
    n_samples: int = 100,
    seed: int = 0,
) -> torch.Tensor:
    """Independent stochastic gradients dL/dtheta of one linear softmax layer.

    The data term is ``L = sum_i CE(x_i W^T, y_i)`` for one mini-batch, with the weights
    drawn from q(W) = N(theta, alpha theta^2) (the same alpha for every weight) by one of

    * ``"multiplicative"``: ``W = theta * (1 + sqrt(alpha) eps)``, one weight sample per
      mini-batch -- so dW/dtheta = 1 + sqrt(alpha) eps;
    * ``"additive"``: ``W = theta + sigma eps`` with sigma^2 = alpha theta^2 a separate
      parameter -- dW/dtheta = 1;
    * ``"additive+lrt"``: the additive parameterization with the local reparameterization
      trick, sampling pre-activations independently per example.

    Parameters
    ----------
    x : Tensor, shape (B, D)
        Inputs of the mini-batch.
    y : Tensor of int64, shape (B,)
        Labels in ``[0, K)`` with ``K = theta.shape[0]``.
    theta : Tensor, shape (K, D)
        Weight means (the point at which the gradient is taken).
    log_alpha : float
        log alpha, shared by all weights.
    estimator : {"multiplicative", "additive", "additive+lrt"}
    n_samples : int, default 100
        Number of independent gradient draws.
    seed : int, default 0
        Seed of the noise (a private generator; the global RNG is not touched).

    Returns
    -------
    Tensor, shape (n_samples, K, D)
        One gradient dL/dtheta per draw; ``.var(0).mean()`` is the average per-weight
        gradient variance.

    Raises
    ------
    ValueError
        Unknown estimator, mismatched shapes, ``n_samples`` below 1 or a non-finite ``log_alpha``.
    TypeError
        ``n_samples`` or ``seed`` not an integer, ``log_alpha`` not a number.
    """
    V.one_of(estimator, "estimator", GRAD_ESTIMATORS, meaning="the gradient estimator")
    if x.dim() != 2 or theta.dim() != 2 or x.shape[1] != theta.shape[1]:
        raise ValueError(
            f"x must be (B, D) and theta (K, D) with the same D, got x {tuple(x.shape)} and "
            f"theta {tuple(theta.shape)}; flatten images with x.flatten(1)."
        )
    if y.shape != (x.shape[0],):
        raise ValueError(f"y must hold one label per row of x, got shape {tuple(y.shape)}.")
    n_samples = V.positive_int(n_samples, "n_samples", meaning="independent gradient draws")
    log_alpha = V.finite_float(log_alpha, "log_alpha", meaning="shared by all weights")
    gen = torch.Generator(device=x.device).manual_seed(V.nonnegative_int(seed, "seed"))
    sqrt_alpha = math.exp(0.5 * log_alpha)
    theta_k = theta.detach().expand(n_samples, *theta.shape).clone().requires_grad_(True)
    sigma = sqrt_alpha * theta.detach().abs()  # a separate parameter: no gradient to theta
    if estimator == "additive+lrt":
        eps = torch.randn(n_samples, x.shape[0], theta.shape[0], generator=gen, device=x.device)
        mean = torch.einsum("bd,skd->sbk", x, theta_k)
        var = (x * x) @ (sigma * sigma).T
        logits = mean + var.add(VAR_EPS).sqrt() * eps
    else:
        eps = torch.randn(theta_k.shape, generator=gen, device=x.device)
        if estimator == "multiplicative":
            w = theta_k * (1.0 + sqrt_alpha * eps)
        else:
            w = theta_k + sigma * eps
        logits = torch.einsum("bd,skd->sbk", x, w)
    loss = F.cross_entropy(logits.reshape(-1, theta.shape[0]), y.repeat(n_samples), reduction="sum")
    (grad,) = torch.autograd.grad(loss, theta_k)
    return grad
