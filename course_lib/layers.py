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

Beyond ``nn.Linear``'s interface a sparse layer offers its posterior: :meth:`~LinearSVDO.sample_weight`
draws one weight matrix :math:`W \\sim q(W)` and :meth:`~LinearSVDO.forward_with` runs the layer with a
given weight (and, optionally, a given variance: a local-reparameterization sample around it).
:func:`use_weights` runs a whole network with given weights for a ``with`` block -- the Monte Carlo
ensemble of chapter 10 (:mod:`course_lib.ensemble`) is built on these, not on the clip or the mask.
:func:`weight_layers` and :func:`sparse_layers` list the layers of a network that carry weights.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from course_lib import validation as V
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


def check_threshold(threshold: object) -> float:
    """Check a pruning threshold on log alpha (a finite number) and return it as a float.

    Raises
    ------
    TypeError
        If ``threshold`` is not a number.
    ValueError
        If it is NaN or infinite.
    """
    return V.finite_float(
        threshold,
        "threshold",
        meaning="log alpha at and above which a weight is pruned",
        hint="the paper uses threshold=3.0",
    )


class _SVDOBase(nn.Module):
    """What :class:`LinearSVDO` and :class:`Conv2dSVDO` share: q(W), the mask, the KL, the forward.

    A subclass defines ``_op(x, weight, bias)`` (its linear map) and ``_check_input(x)``.
    """

    theta: nn.Parameter
    log_sigma2: nn.Parameter
    bias: nn.Parameter | None
    #: Zero the pruned weights in the training-mode mean as well (see ``_train_mean_weight``).
    train_clip: bool = False
    #: (weight, sigma2 or None) while :func:`use_weights` holds the layer, else None.
    _fixed: tuple[torch.Tensor, torch.Tensor | None] | None = None

    @property
    def threshold(self) -> float:
        """log alpha at and above which a weight is pruned in eval mode (see :meth:`mask`)."""
        return self._threshold

    @threshold.setter
    def threshold(self, value: float) -> None:
        self._threshold = check_threshold(value)

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

    def sample_weight(self, generator: torch.Generator | None = None, prune: bool = False) -> torch.Tensor:
        """One weight sample ``w = theta + sigma * eps``, ``eps ~ N(0, I)``: a draw from q(W).

        ``sigma = exp(log_sigma2 / 2)``; neither the clip of log alpha nor the threshold enters
        (unless ``prune``), so the law of the sample is q(W) itself.

        Parameters
        ----------
        generator : torch.Generator, optional
            Source of ``eps`` (on the layer's device); the global RNG when None.
        prune : bool, default False
            Set the weights that :meth:`mask` prunes to zero (sample only the kept weights).

        Returns
        -------
        Tensor, the shape of ``theta``
            Differentiable in ``theta`` and ``log_sigma2`` (the reparameterization trick).
        """
        eps = torch.randn(
            self.theta.shape, generator=generator, device=self.theta.device, dtype=self.theta.dtype
        )
        w = self.theta + (0.5 * self.log_sigma2).exp() * eps
        return w * self.mask() if V.boolean(prune, "prune") else w

    def forward_with(
        self, x: torch.Tensor, weight: torch.Tensor, sigma2: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The layer's map with a given weight: ``op(x, weight) + bias``.

        With ``sigma2`` the output is a local-reparameterization sample around it,
        ``op(x, weight) + bias + sqrt(op(x^2, sigma2) + 1e-8) * eps`` (:class:`LRTNoise`).
        The training-mode forward is ``forward_with(x, theta, sigma2)``, the eval-mode one
        ``forward_with(x, sparse_weight())``.

        Parameters
        ----------
        x : Tensor
            A batch the layer accepts.
        weight : Tensor, the shape of ``theta``
        sigma2 : Tensor, the shape of ``theta``, optional
            Per-weight variances.

        Returns
        -------
        Tensor
            The pre-activations.
        """
        mean = self._op(x, weight, self.bias)
        if sigma2 is None:
            return mean
        return LRTNoise.apply(mean, self._op(x * x, sigma2, None))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Sampled pre-activations in training mode, the pruned mean net in eval mode.

        Inside :func:`use_weights` the layer runs with the weight it was given, in either mode.
        """
        self._check_input(x)
        if self._fixed is not None:
            return self.forward_with(x, *self._fixed)
        if self.training:
            return self.forward_with(x, self._train_mean_weight(), self.sigma2)
        return self.forward_with(x, self.sparse_weight())

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
    def load_dense_(
        self, weight: torch.Tensor, bias: torch.Tensor | None = None, log_sigma2: float = LOG_SIGMA2_INIT
    ) -> "_SVDOBase":
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
        log_sigma2 = V.finite_float(log_sigma2, "log_sigma2", meaning="the initial log variance")
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

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        threshold: float = 3.0,
        log_sigma2_init: float = LOG_SIGMA2_INIT,
        train_clip: bool = False,
    ) -> None:
        super().__init__()
        self.train_clip = V.boolean(train_clip, "train_clip")
        self.in_features = V.positive_int(in_features, "in_features")
        self.out_features = V.positive_int(out_features, "out_features")
        self.threshold = threshold
        self.log_sigma2_init = V.finite_float(
            log_sigma2_init, "log_sigma2_init", meaning="initial log sigma^2"
        )
        self.theta = nn.Parameter(torch.empty(out_features, in_features))
        self.log_sigma2 = nn.Parameter(torch.empty(out_features, in_features))
        self.bias = nn.Parameter(torch.empty(out_features)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Initialise ``theta`` and ``bias`` like ``nn.Linear`` and fill ``log_sigma2``."""
        self._reset(self.in_features, self.log_sigma2_init)

    @classmethod
    def from_dense(
        cls, dense: nn.Linear, threshold: float = 3.0, log_sigma2: float = LOG_SIGMA2_INIT
    ) -> "LinearSVDO":
        """A new layer whose ``theta`` (and bias) are copied from a trained ``nn.Linear``."""
        if not isinstance(dense, nn.Linear):
            raise TypeError(f"from_dense expects an nn.Linear, got {type(dense).__name__}.")
        layer = cls(
            dense.in_features,
            dense.out_features,
            bias=dense.bias is not None,
            threshold=threshold,
            log_sigma2_init=log_sigma2,
        )
        return layer.to(dense.weight.device).load_dense_(dense.weight, dense.bias, log_sigma2)

    def _check_input(self, x: torch.Tensor) -> None:
        if x.shape[-1] != self.in_features:
            raise ValueError(
                f"LinearSVDO expects inputs with {self.in_features} features in the last "
                f"dimension, got shape {tuple(x.shape)}; flatten images with x.flatten(1)."
            )

    def _op(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        return F.linear(x, weight, bias)

    def extra_repr(self) -> str:  # noqa: D102
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}, threshold={self.threshold}"
            + (", train_clip=True" if self.train_clip else "")
        )


def _pair(name: str, value: object) -> tuple[int, int]:
    items = value if isinstance(value, tuple) else (value, value)
    if len(items) != 2:
        raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}.")
    pair = tuple(V.integer(v, name, meaning="an int or a pair of ints") for v in items)
    return pair  # type: ignore[return-value]


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

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        bias: bool = True,
        threshold: float = 3.0,
        log_sigma2_init: float = LOG_SIGMA2_INIT,
        train_clip: bool = False,
    ) -> None:
        super().__init__()
        self.train_clip = V.boolean(train_clip, "train_clip")
        self.in_channels = V.positive_int(in_channels, "in_channels")
        self.out_channels = V.positive_int(out_channels, "out_channels")
        self.kernel_size = _pair("kernel_size", kernel_size)
        self.stride = _pair("stride", stride)
        self.padding = _pair("padding", padding)
        if min(self.kernel_size) < 1 or min(self.stride) < 1 or min(self.padding) < 0:
            raise ValueError(
                f"kernel_size and stride must be >= 1 and padding >= 0, got kernel_size="
                f"{self.kernel_size}, stride={self.stride}, padding={self.padding}."
            )
        self.threshold = threshold
        self.log_sigma2_init = V.finite_float(
            log_sigma2_init, "log_sigma2_init", meaning="initial log sigma^2"
        )
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
    def from_dense(
        cls, dense: nn.Conv2d, threshold: float = 3.0, log_sigma2: float = LOG_SIGMA2_INIT
    ) -> "Conv2dSVDO":
        """A new layer whose ``theta`` (and bias) are copied from a trained ``nn.Conv2d``."""
        if not isinstance(dense, nn.Conv2d):
            raise TypeError(f"from_dense expects an nn.Conv2d, got {type(dense).__name__}.")
        if dense.groups != 1 or dense.dilation != (1, 1) or not isinstance(dense.padding, tuple):
            raise ValueError(
                "from_dense supports plain convolutions only (groups=1, dilation=1, numeric padding)."
            )
        layer = cls(
            dense.in_channels,
            dense.out_channels,
            dense.kernel_size,
            dense.stride,
            dense.padding,
            bias=dense.bias is not None,
            threshold=threshold,
            log_sigma2_init=log_sigma2,
        )
        return layer.to(dense.weight.device).load_dense_(dense.weight, dense.bias, log_sigma2)

    def _check_input(self, x: torch.Tensor) -> None:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"Conv2dSVDO expects a batch of shape (N, {self.in_channels}, H, W), got "
                f"{tuple(x.shape)}; add the channel dimension with x.unsqueeze(1) for "
                "single-channel images."
            )

    def _op(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        return F.conv2d(x, weight, bias, self.stride, self.padding)

    def extra_repr(self) -> str:  # noqa: D102
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}, bias={self.bias is not None}, "
            f"threshold={self.threshold}" + (", train_clip=True" if self.train_clip else "")
        )


#: The layer types that carry a KL term and a pruning mask.
SVDO_LAYERS = (LinearSVDO, Conv2dSVDO)
#: The layer types whose weight :mod:`course_lib.sparsity` counts (sparse and dense).
WEIGHT_LAYERS = (*SVDO_LAYERS, nn.Linear, nn.Conv2d)


def _named(model: nn.Module, types: tuple[type, ...]) -> list[tuple[str, nn.Module]]:
    if not isinstance(model, nn.Module):
        raise TypeError(f"expected a torch.nn.Module, got {type(model).__name__}.")
    return [(n, m) for n, m in model.named_modules() if isinstance(m, types)]


def weight_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``(name, layer)`` of every layer of ``model`` with a weight tensor, in forward order.

    The layers of :data:`WEIGHT_LAYERS`: the sparse ones (weight ``theta``) and ``nn.Linear`` /
    ``nn.Conv2d`` (weight ``weight``). An empty list if there is none.

    Raises
    ------
    TypeError
        If ``model`` is not an ``nn.Module``.
    """
    return _named(model, WEIGHT_LAYERS)


def sparse_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``(name, layer)`` of every sparse variational dropout layer of ``model``, in forward order.

    Raises
    ------
    TypeError
        If ``model`` is not an ``nn.Module``.
    """
    return _named(model, SVDO_LAYERS)


@contextmanager
def use_weights(
    model: nn.Module, weights: Mapping[str, torch.Tensor], sigma2: Mapping[str, torch.Tensor] | None = None
) -> Iterator[nn.Module]:
    """Run the named sparse layers of ``model`` with given weights inside a ``with`` block.

    Inside the block layer ``name`` computes ``forward_with(x, weights[name], sigma2[name])``
    (see :meth:`LinearSVDO.forward_with`) in training and in eval mode alike: a deterministic
    pass with that weight, or with ``sigma2`` a local-reparameterization sample around it.
    Neither the clip of log alpha nor the pruning mask is consulted. On leaving the block (also
    by an exception) every layer runs its own forward again.

    Parameters
    ----------
    model : nn.Module
    weights : mapping of str to Tensor
        ``{layer name: weight}`` (names as in ``model.named_modules()``), each of the shape of
        that layer's ``theta``, e.g. ``{name: layer.sample_weight()}``.
    sigma2 : mapping of str to Tensor, optional
        ``{layer name: variances}`` for the same layers.

    Yields
    ------
    nn.Module
        ``model`` itself.

    Raises
    ------
    ValueError
        A name that is not a sparse layer of ``model``, a weight of the wrong shape, or
        ``sigma2`` for other layers than ``weights``.
    """
    layers = dict(sparse_layers(model))
    if sigma2 is not None and set(sigma2) != set(weights):
        raise ValueError(
            f"sigma2 must name the same layers as weights, got {sorted(sigma2)} and {sorted(weights)}."
        )
    for name, w in weights.items():
        if name not in layers:
            raise ValueError(
                f"{name!r} is not a sparse layer of the model; its sparse layers are {sorted(layers)}."
            )
        if tuple(w.shape) != tuple(layers[name].theta.shape):
            raise ValueError(
                f"the weight for {name!r} has shape {tuple(w.shape)}, its theta "
                f"{tuple(layers[name].theta.shape)}; pass one of theta's shape."
            )
    before = {name: layers[name]._fixed for name in weights}
    try:
        for name, w in weights.items():
            layers[name]._fixed = (w, None if sigma2 is None else sigma2[name])
        yield model
    finally:
        for name, fixed in before.items():
            layers[name]._fixed = fixed
