"""Sparse variational dropout layers (Molchanov, Ashukha & Vetrov, 2017).

Every weight :math:`w_{ij}` has its own Gaussian posterior

.. math::

    q(w_{ij}) = \\mathcal N(w_{ij} \\mid \\theta_{ij}, \\sigma^2_{ij}),
    \\qquad \\sigma^2_{ij} = \\alpha_{ij} \\theta_{ij}^2 ,

stored in the *additive noise reparameterization*: the trainable parameters are the
means ``theta`` and ``log_sigma2`` (not ``log_alpha``), so that
:math:`\\partial w / \\partial \\theta = 1` and the gradient of the data term does not blow up
when :math:`\\alpha \\gg 1`.  The dropout ratio is derived,

.. math::

    \\log\\alpha = \\log\\sigma^2 - \\log(\\theta^2 + 10^{-8}),

and clipped to ``[LOG_ALPHA_MIN, LOG_ALPHA_MAX] = [-8, 8]`` (see :data:`LOG_ALPHA_MAX`).

Training uses the *local reparameterization trick*: instead of sampling a weight matrix,
the pre-activations are sampled, per example and unit, from their exact Gaussian

.. math::

    b = \\mathrm{op}(x, \\theta) + \\text{bias}
        + \\sqrt{\\mathrm{op}(x^2, \\sigma^2) + 10^{-8}} \\odot \\varepsilon,
    \\qquad \\varepsilon \\sim \\mathcal N(0, I),

where ``op`` is the layer's linear map (a matrix product or a convolution).  In evaluation
mode the layer is deterministic: it uses ``theta`` with the weights whose
``log_alpha >= threshold`` set to zero (pruned).

Speed: the noise is drawn and applied in one fused autograd function (:class:`LRTNoise`,
one saved tensor, one backward pass).  The mean and the variance are two plain
convolutions: computing both with one grouped convolution (input ``[x, x^2]``, weight
``[theta, sigma^2]``, ``groups=2``) is the same arithmetic and measured *slower* with
oneDNN on the course's CPU; ``benchmarks/step_time.py`` measures both, and
``benchmarks/README.md`` records the step-time ratio against the dense layers.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from course_lib.kl import neg_kl_molchanov

#: Lower clip of log alpha.  Below -8 (alpha < 3.4e-4) the noise is negligible; the clip
#: only guards the KL and the mask against -inf when sigma^2 underflows.
LOG_ALPHA_MIN: float = -8.0
#: Upper clip of log alpha, as in the paper's code.  At log alpha = 8 (alpha ~ 3000) the
#: approximate -KL is within 2e-4 of its limit 0, so nothing is lost by stopping there,
#: while ``log(theta^2)`` of a weight driven to zero would otherwise send log alpha -> inf.
LOG_ALPHA_MAX: float = 8.0
#: Added to theta^2 inside the log so that theta = 0 gives a finite log alpha.
THETA2_EPS: float = 1e-8
#: Added to the pre-activation variance before the square root (a finite gradient at 0).
VAR_EPS: float = 1e-8
#: The paper's initial log sigma^2 (alpha starts tiny, the net starts almost deterministic).
LOG_SIGMA2_INIT: float = -10.0


class LRTNoise(torch.autograd.Function):
    """``mean + sqrt(var + VAR_EPS) * eps`` with ``eps ~ N(0, 1)``, fused.

    Forward draws ``eps`` once and returns the sample; backward uses
    d out / d mean = 1 and d out / d var = eps / (2 sqrt(var + VAR_EPS)), which is kept
    from the forward pass (one tensor saved instead of autograd's three).
    """

    @staticmethod
    def forward(ctx, mean: torch.Tensor, var: torch.Tensor) -> torch.Tensor:  # noqa: D102
        std = (var + VAR_EPS).sqrt_()
        eps = torch.randn_like(mean)
        out = torch.addcmul(mean, std, eps)
        ctx.save_for_backward(eps.div_(std.mul_(2.0)))  # eps / (2 std), reusing buffers
        return out

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):  # noqa: D102
        (half_eps_over_std,) = ctx.saved_tensors
        return grad_out, grad_out * half_eps_over_std


def _check_positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return value


def _check_bool(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}.")
    return value


def _check_threshold(threshold: object) -> float:
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not math.isfinite(threshold):
        raise ValueError(
            f"threshold must be a finite number (log alpha above which a weight is pruned; "
            f"the paper uses 3.0), got {threshold!r}."
        )
    return float(threshold)


class _SVDOBase(nn.Module):
    """What :class:`LinearSVDO` and :class:`Conv2dSVDO` share: log alpha, the mask, the KL."""

    theta: nn.Parameter
    log_sigma2: nn.Parameter
    bias: nn.Parameter | None
    threshold: float
    #: Zero the pruned weights in the training-mode mean as well (see ``_train_mean_weight``).
    train_clip: bool = False

    @property
    def sigma2(self) -> torch.Tensor:
        """The posterior variances sigma^2 = exp(log_sigma2) (same shape as ``theta``)."""
        return self.log_sigma2.exp()

    @property
    def log_alpha(self) -> torch.Tensor:
        """log alpha = log sigma^2 - log(theta^2 + 1e-8), clipped to [-8, 8]."""
        la = self.log_sigma2 - torch.log(self.theta * self.theta + THETA2_EPS)
        return torch.clamp(la, LOG_ALPHA_MIN, LOG_ALPHA_MAX)

    def mask(self) -> torch.Tensor:
        """Boolean tensor, True for the weights that are kept (``log_alpha < threshold``)."""
        with torch.no_grad():
            return self.log_alpha < self.threshold

    def sparse_weight(self) -> torch.Tensor:
        """``theta`` with the pruned weights set to zero (the weight used in eval mode)."""
        return self.theta * self.mask()

    def _train_mean_weight(self) -> torch.Tensor:
        # With train_clip the weights already past the threshold are zero in the mean during
        # training too (as in the paper's code, ``train_clip=True``): the net trains as the
        # pruned net it will be evaluated as, and a pruned weight gets no data gradient.
        # Their variance stays in the noise term.
        return self.sparse_weight() if self.train_clip else self.theta

    def kl(self) -> torch.Tensor:
        """The layer's KL(q || log-uniform prior), summed over weights: a positive scalar.

        Uses :func:`course_lib.kl.neg_kl_molchanov` on the clipped ``log_alpha``; the bias
        is deterministic and has no KL.
        """
        # check=False: no read-back from the device on every step (log alpha is clipped).
        return -neg_kl_molchanov(self.log_alpha, check=False).sum()

    @torch.no_grad()
    def load_dense_(self, weight: torch.Tensor, bias: torch.Tensor | None = None,
                    log_sigma2: float = LOG_SIGMA2_INIT) -> "_SVDOBase":
        """Start from trained dense weights: ``theta <- weight``, ``log_sigma2 <- log_sigma2``.

        Parameters
        ----------
        weight : Tensor
            A dense weight of exactly ``theta``'s shape (e.g. ``nn.Linear(...).weight``).
        bias : Tensor, optional
            The dense bias; required if and only if this layer has a bias.
        log_sigma2 : float, default -10
            The initial log variance of every weight.

        Returns
        -------
        The layer itself (modified in place).
        """
        if tuple(weight.shape) != tuple(self.theta.shape):
            raise ValueError(
                f"dense weight has shape {tuple(weight.shape)} but this layer's theta has shape "
                f"{tuple(self.theta.shape)}; load a layer with the same in/out sizes."
            )
        if (bias is None) != (self.bias is None):
            raise ValueError(
                "the dense layer and this layer disagree on having a bias "
                f"(dense bias given: {bias is not None}, this layer has bias: {self.bias is not None}); "
                "build this layer with bias=(dense.bias is not None)."
            )
        if not math.isfinite(log_sigma2):
            raise ValueError(f"log_sigma2 must be finite, got {log_sigma2!r}.")
        self.theta.copy_(weight)
        if bias is not None:
            self.bias.copy_(bias)
        self.log_sigma2.fill_(log_sigma2)
        return self

    def _reset(self, fan_in: int, log_sigma2: float) -> None:
        # theta and bias exactly as nn.Linear / nn.Conv2d initialise weight and bias.
        nn.init.kaiming_uniform_(self.theta, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
            nn.init.uniform_(self.bias, -bound, bound)
        with torch.no_grad():
            self.log_sigma2.fill_(log_sigma2)


class LinearSVDO(_SVDOBase):
    """A fully connected layer with sparse variational dropout; reads like ``nn.Linear``.

    Parameters
    ----------
    in_features, out_features : int
        Sizes of the input and output.
    bias : bool, default True
        Add a deterministic bias (never part of the variance, no KL).
    threshold : float, default 3.0
        Weights with ``log_alpha >= threshold`` are pruned in eval mode (alpha > e^3 ~ 20,
        i.e. Bernoulli-equivalent dropout rate alpha / (1 + alpha) > 0.95).
    log_sigma2_init : float, default -10
        Initial log sigma^2 of every weight (the paper's value).
    train_clip : bool, default False
        Also zero the pruned weights (``log_alpha >= threshold``) in the *training* mean, as
        the paper's code does; they keep their noise.  Used by the trainer's ``paper`` recipe.

    Attributes
    ----------
    theta : Parameter, shape (out_features, in_features)
        Weight means, initialised like ``nn.Linear.weight``.
    log_sigma2 : Parameter, same shape as ``theta``
    bias : Parameter of shape (out_features,) or None

    Examples
    --------
    >>> layer = LinearSVDO(784, 300)
    >>> layer
    LinearSVDO(in_features=784, out_features=300, bias=True, threshold=3.0)
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 threshold: float = 3.0, log_sigma2_init: float = LOG_SIGMA2_INIT,
                 train_clip: bool = False) -> None:
        super().__init__()
        self.train_clip = _check_bool("train_clip", train_clip)
        self.in_features = _check_positive_int("in_features", in_features)
        self.out_features = _check_positive_int("out_features", out_features)
        self.threshold = _check_threshold(threshold)
        self.log_sigma2_init = float(log_sigma2_init)
        self.theta = nn.Parameter(torch.empty(out_features, in_features))
        self.log_sigma2 = nn.Parameter(torch.empty(out_features, in_features))
        self.bias = nn.Parameter(torch.empty(out_features)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Initialise ``theta`` and ``bias`` like ``nn.Linear`` and fill ``log_sigma2``."""
        self._reset(self.in_features, self.log_sigma2_init)

    @classmethod
    def from_dense(cls, dense: nn.Linear, threshold: float = 3.0,
                   log_sigma2: float = LOG_SIGMA2_INIT) -> "LinearSVDO":
        """A new layer whose ``theta`` (and bias) are copied from a trained ``nn.Linear``."""
        if not isinstance(dense, nn.Linear):
            raise TypeError(f"from_dense expects an nn.Linear, got {type(dense).__name__}.")
        layer = cls(dense.in_features, dense.out_features, bias=dense.bias is not None,
                    threshold=threshold, log_sigma2_init=log_sigma2)
        return layer.to(dense.weight.device).load_dense_(dense.weight, dense.bias, log_sigma2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Sampled pre-activations in training mode, the pruned mean net in eval mode."""
        if x.shape[-1] != self.in_features:
            raise ValueError(
                f"LinearSVDO expects inputs with {self.in_features} features in the last "
                f"dimension, got shape {tuple(x.shape)}; flatten images with x.flatten(1)."
            )
        if not self.training:
            return F.linear(x, self.sparse_weight(), self.bias)
        mean = F.linear(x, self._train_mean_weight(), self.bias)
        var = F.linear(x * x, self.log_sigma2.exp())
        return LRTNoise.apply(mean, var)

    def extra_repr(self) -> str:  # noqa: D102
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}, threshold={self.threshold}"
                + (", train_clip=True" if self.train_clip else ""))


def _pair(name: str, value: object) -> tuple[int, int]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value, value)
    if (not isinstance(value, tuple) or len(value) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)):
        raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}.")
    return value  # type: ignore[return-value]


class Conv2dSVDO(_SVDOBase):
    """A 2-D convolution with sparse variational dropout; reads like ``nn.Conv2d``.

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size : int or (int, int)
    stride : int or (int, int), default 1
    padding : int or (int, int), default 0
    bias : bool, default True
        Deterministic bias (no variance, no KL).
    threshold : float, default 3.0
        Weights with ``log_alpha >= threshold`` are pruned in eval mode.
    log_sigma2_init : float, default -10
        Initial log sigma^2 of every weight.
    train_clip : bool, default False
        Also zero the pruned weights in the training mean (see :class:`LinearSVDO`).

    Attributes
    ----------
    theta : Parameter, shape (out_channels, in_channels, kH, kW)
        Weight means, initialised like ``nn.Conv2d.weight``.
    log_sigma2 : Parameter, same shape as ``theta``
    bias : Parameter of shape (out_channels,) or None

    Notes
    -----
    The training forward pass computes ``conv(x, theta) + bias`` and ``conv(x^2, sigma^2)``
    and samples the output with :class:`LRTNoise`.

    Examples
    --------
    >>> Conv2dSVDO(1, 20, 5)
    Conv2dSVDO(1, 20, kernel_size=(5, 5), stride=(1, 1), padding=(0, 0), bias=True, threshold=3.0)
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int],
                 stride: int | tuple[int, int] = 1, padding: int | tuple[int, int] = 0,
                 bias: bool = True, threshold: float = 3.0,
                 log_sigma2_init: float = LOG_SIGMA2_INIT, train_clip: bool = False) -> None:
        super().__init__()
        self.train_clip = _check_bool("train_clip", train_clip)
        self.in_channels = _check_positive_int("in_channels", in_channels)
        self.out_channels = _check_positive_int("out_channels", out_channels)
        self.kernel_size = _pair("kernel_size", kernel_size)
        self.stride = _pair("stride", stride)
        self.padding = _pair("padding", padding)
        if min(self.kernel_size) < 1 or min(self.stride) < 1 or min(self.padding) < 0:
            raise ValueError(
                f"kernel_size and stride must be >= 1 and padding >= 0, got kernel_size="
                f"{self.kernel_size}, stride={self.stride}, padding={self.padding}."
            )
        self.threshold = _check_threshold(threshold)
        self.log_sigma2_init = float(log_sigma2_init)
        shape = (out_channels, in_channels, *self.kernel_size)
        self.theta = nn.Parameter(torch.empty(shape))
        self.log_sigma2 = nn.Parameter(torch.empty(shape))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Initialise ``theta`` and ``bias`` like ``nn.Conv2d`` and fill ``log_sigma2``."""
        fan_in = self.in_channels * self.kernel_size[0] * self.kernel_size[1]
        self._reset(fan_in, self.log_sigma2_init)

    @classmethod
    def from_dense(cls, dense: nn.Conv2d, threshold: float = 3.0,
                   log_sigma2: float = LOG_SIGMA2_INIT) -> "Conv2dSVDO":
        """A new layer whose ``theta`` (and bias) are copied from a trained ``nn.Conv2d``."""
        if not isinstance(dense, nn.Conv2d):
            raise TypeError(f"from_dense expects an nn.Conv2d, got {type(dense).__name__}.")
        if dense.groups != 1 or dense.dilation != (1, 1) or not isinstance(dense.padding, tuple):
            raise ValueError("from_dense supports plain convolutions only (groups=1, dilation=1, "
                             "numeric padding).")
        layer = cls(dense.in_channels, dense.out_channels, dense.kernel_size, dense.stride,
                    dense.padding, bias=dense.bias is not None, threshold=threshold,
                    log_sigma2_init=log_sigma2)
        return layer.to(dense.weight.device).load_dense_(dense.weight, dense.bias, log_sigma2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Sampled pre-activations in training mode, the pruned mean net in eval mode."""
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"Conv2dSVDO expects a batch of shape (N, {self.in_channels}, H, W), got "
                f"{tuple(x.shape)}; add the channel dimension with x.unsqueeze(1) for "
                "single-channel images."
            )
        if not self.training:
            return F.conv2d(x, self.sparse_weight(), self.bias, self.stride, self.padding)
        mean = F.conv2d(x, self._train_mean_weight(), self.bias, self.stride, self.padding)
        var = F.conv2d(x * x, self.log_sigma2.exp(), None, self.stride, self.padding)
        return LRTNoise.apply(mean, var)

    def extra_repr(self) -> str:  # noqa: D102
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, bias={self.bias is not None}, "
                f"threshold={self.threshold}" + (", train_clip=True" if self.train_clip else ""))


#: The layer types that carry a KL term and a pruning mask.
SVDO_LAYERS = (LinearSVDO, Conv2dSVDO)


#: The three gradient estimators compared in chapter 8 (see :func:`theta_grad_samples`).
GRAD_ESTIMATORS = ("multiplicative", "additive", "additive+lrt")


def theta_grad_samples(x: torch.Tensor, y: torch.Tensor, theta: torch.Tensor,
                       log_alpha: float, estimator: str, n_samples: int = 100,
                       seed: int = 0) -> torch.Tensor:
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
        Unknown estimator, mismatched shapes or a non-positive ``n_samples``.
    """
    if estimator not in GRAD_ESTIMATORS:
        raise ValueError(f"unknown estimator {estimator!r}; choose one of {GRAD_ESTIMATORS}.")
    if x.dim() != 2 or theta.dim() != 2 or x.shape[1] != theta.shape[1]:
        raise ValueError(
            f"x must be (B, D) and theta (K, D) with the same D, got x {tuple(x.shape)} and "
            f"theta {tuple(theta.shape)}; flatten images with x.flatten(1)."
        )
    if y.shape != (x.shape[0],):
        raise ValueError(f"y must hold one label per row of x, got shape {tuple(y.shape)}.")
    if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 1:
        raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}.")
    if not math.isfinite(log_alpha):
        raise ValueError(f"log_alpha must be a finite number, got {log_alpha!r}.")
    gen = torch.Generator(device=x.device).manual_seed(seed)
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
    loss = F.cross_entropy(logits.reshape(-1, theta.shape[0]), y.repeat(n_samples),
                           reduction="sum")
    (grad,) = torch.autograd.grad(loss, theta_k)
    return grad
