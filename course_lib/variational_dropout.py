"""Gaussian and variational dropout with a shared alpha (Kingma, Salimans & Welling 2015; chapter 6).

A :class:`VariationalDropoutLinear` layer has the posterior q(W) = prod N(w_ij | theta_ij,
alpha theta_ij^2) with one alpha per layer (``alpha_shape="layer"``) or one per input unit
(``alpha_shape="unit"``).  It is sampled with the local reparameterization trick: the
pre-activation b = x W^T is Gaussian with mean x theta^T and variance (x^2)(alpha theta^2)^T.

* ``learn_alpha=False`` is Gaussian dropout with a hand-set rate, alpha = p / (1 - p)
  (:func:`course_lib.dropout.dropout_alpha`);
* ``learn_alpha=True`` is variational dropout: log alpha is a parameter trained on the ELBO,
  whose KL term is Kingma et al.'s cubic (:func:`course_lib.kl.neg_kl_kingma`) with alpha
  clipped at 1, the range the cubic is valid in.

As in the sparse layers of :mod:`course_lib.layers`, ``layer.log_alpha`` is the clipped value
the layer computes with; the trained (or fixed) tensor behind it is ``raw_log_alpha``.  The
noise here is on the weights; :class:`course_lib.dropout.GaussianDropout` puts the same
N(1, alpha) noise on activations.

:class:`VariationalDropoutMLP` stacks such layers and :func:`train_elbo` fits it on the (per-example) ELBO.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from course_lib import validation as V
from course_lib.data import batches
from course_lib.kl import KINGMA_LOG_ALPHA_MAX, neg_kl_kingma
from course_lib.prediction import predict
from course_lib.scores import error_rate

ALPHA_SHAPES = ("layer", "unit")


class VariationalDropoutLinear(nn.Module):
    """A linear layer with Gaussian multiplicative weight noise, alpha fixed or learned.

    Parameters
    ----------
    in_features, out_features : int
        Sizes of the layer.
    alpha : float, default 0.25
        The initial (``learn_alpha=True``) or fixed (``learn_alpha=False``) alpha; 0 means
        no noise (only allowed when alpha is fixed).  Must be <= 1.
    learn_alpha : bool, default False
        Train log alpha on the ELBO (variational dropout).
    alpha_shape : {"layer", "unit"}, default "layer"
        One alpha for the whole layer or one per input unit.

    Attributes
    ----------
    theta : nn.Parameter, shape (out_features, in_features)
        The weight means.
    raw_log_alpha : nn.Parameter or buffer, shape (1,) or (in_features,)
        log alpha as trained (a parameter) or set (a buffer), before clipping.

    Raises
    ------
    TypeError
        Sizes that are not integers, an ``alpha`` that is not a number, a non-bool ``learn_alpha``.
    ValueError
        Non-positive sizes, alpha outside [0, 1] (or 0 with ``learn_alpha``), an unknown
        ``alpha_shape``.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        alpha: float = 0.25,
        learn_alpha: bool = False,
        alpha_shape: str = "layer",
    ) -> None:
        super().__init__()
        in_features = V.positive_int(in_features, "in_features")
        out_features = V.positive_int(out_features, "out_features")
        alpha_shape = V.one_of(alpha_shape, "alpha_shape", ALPHA_SHAPES)
        learn_alpha = V.boolean(learn_alpha, "learn_alpha")
        alpha = V.finite_float(alpha, "alpha")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(
                f"alpha must be in [0, 1] (the cubic KL is valid only there), got {alpha!r}; "
                "for a dropout rate p use course_lib.dropout.dropout_alpha(p) = p/(1-p), e.g. p = 0.5 -> alpha = 1."
            )
        if learn_alpha and alpha == 0.0:
            raise ValueError(
                "a learned alpha needs a positive starting value (log alpha = -inf at 0); "
                "start from e.g. alpha=0.1."
            )
        self.in_features, self.out_features = in_features, out_features
        self.learn_alpha, self.alpha_shape = learn_alpha, alpha_shape
        self.theta = nn.Parameter(torch.empty(out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(out_features))
        nn.init.kaiming_uniform_(self.theta, a=math.sqrt(5))
        n_alpha = 1 if alpha_shape == "layer" else in_features
        init = math.log(alpha) if alpha > 0 else -math.inf
        raw_log_alpha = torch.full((n_alpha,), init)
        if learn_alpha:
            self.raw_log_alpha = nn.Parameter(raw_log_alpha)
        else:
            self.register_buffer("raw_log_alpha", raw_log_alpha)

    @property
    def log_alpha(self) -> torch.Tensor:
        """log alpha clipped to at most :data:`course_lib.kl.KINGMA_LOG_ALPHA_MAX` = 0 (alpha <= 1)."""
        return self.raw_log_alpha.clamp(max=KINGMA_LOG_ALPHA_MAX)

    def alpha(self) -> torch.Tensor:
        """The (clipped) alpha, one value per layer or per input unit."""
        return self.log_alpha.exp().detach()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """A sample of the pre-activation in training mode, its mean in eval mode."""
        mean = nn.functional.linear(x, self.theta, self.bias)
        if not self.training or not torch.isfinite(self.raw_log_alpha).any():
            return mean
        alpha = self.log_alpha.exp()  # (1,) or (in,)
        var = nn.functional.linear(x * x * alpha, self.theta * self.theta)
        return mean + torch.sqrt(var + 1e-8) * torch.randn_like(mean)

    def kl(self) -> torch.Tensor:
        """KL(q || log-uniform) of the layer's weights: sum over weights of -neg_kl_kingma.

        Zero for a fixed alpha (it is a constant of the optimisation then).
        """
        if not self.learn_alpha:
            return torch.zeros(())
        per_alpha = -neg_kl_kingma(self.log_alpha)
        weights_per_alpha = self.out_features * (self.in_features if self.alpha_shape == "layer" else 1)
        return weights_per_alpha * per_alpha.sum()


class VariationalDropoutMLP(nn.Module):
    """A ReLU multilayer perceptron of :class:`VariationalDropoutLinear` layers.

    Parameters
    ----------
    sizes : sequence of int
        Layer widths, input first, e.g. ``(784, 300, 100, 10)``.
    alpha : float or sequence of float, default 0.25
        alpha of every layer, or one per layer.
    learn_alpha : bool, default False
    alpha_shape : {"layer", "unit"}, default "layer"

    Raises
    ------
    ValueError
        Fewer than two sizes, or as many alphas as layers not given.
    """

    def __init__(
        self,
        sizes: Sequence[int],
        alpha: float | Sequence[float] = 0.25,
        learn_alpha: bool = False,
        alpha_shape: str = "layer",
    ) -> None:
        super().__init__()
        sizes = list(sizes)
        if len(sizes) < 2:
            raise ValueError(f"sizes needs at least an input and an output width, got {sizes}.")
        n_layers = len(sizes) - 1
        alphas = [alpha] * n_layers if isinstance(alpha, numbers.Real) else list(alpha)
        if len(alphas) != n_layers:
            raise ValueError(f"give one alpha or {n_layers} (one per layer), got {len(alphas)}.")
        self.layers = nn.ModuleList(
            VariationalDropoutLinear(i, o, a, learn_alpha, alpha_shape)
            for i, o, a in zip(sizes[:-1], sizes[1:], alphas)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for inputs of shape (N, sizes[0]) (images are flattened)."""
        x = x.flatten(1)
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = torch.relu(x)
        return x

    def kl(self) -> torch.Tensor:
        """Total KL of all layers."""
        return sum((layer.kl() for layer in self.layers), torch.zeros(()))


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train_elbo` returns.

    Attributes
    ----------
    test_error : float
        Error rate of the mean network on the test set.
    train_nll : float
        Final average negative log-likelihood on the training data (one noisy pass).
    kl_per_example : float
        KL / N at the end.
    alphas : list of torch.Tensor
        The (clipped) alpha of each layer.
    history : list of tuple
        (epoch, average loss) per epoch.
    """

    test_error: float
    train_nll: float
    kl_per_example: float
    alphas: list
    history: list


def train_elbo(
    model: VariationalDropoutMLP,
    x: torch.Tensor,
    y: torch.Tensor,
    x_test: torch.Tensor,
    y_test: torch.Tensor,
    epochs: int = 10,
    batch_size: int = 100,
    lr: float = 1e-3,
    lr_log_alpha: float = 0.05,
    seed: int = 0,
) -> TrainResult:
    """Maximise the ELBO per example, E_q log p(y | x, W) - KL / N, with Adam.

    Parameters
    ----------
    model : VariationalDropoutMLP
    x, y : torch.Tensor
        Training inputs and integer labels (N examples).
    x_test, y_test : torch.Tensor
        Test data for the error of the mean network.
    epochs, batch_size : int
    lr : float
        Adam step size of theta and the biases.
    lr_log_alpha : float, default 0.05
        Adam step size of the learned log alphas (Adam moves each parameter by about its step
        size per update, so log alpha needs a larger one to travel a few units).
    seed : int
        Seeds the batch order and the noise.

    Returns
    -------
    TrainResult

    Raises
    ------
    TypeError
        A count that is not an integer or a step size that is not a number.
    ValueError
        Mismatched lengths or non-positive epochs / batch size / step sizes, a negative seed.
    """
    if len(x) != len(y) or len(x_test) != len(y_test):
        raise ValueError(
            f"inputs and labels differ in length: {len(x)} vs {len(y)}, test {len(x_test)} vs {len(y_test)}."
        )
    epochs, batch_size = V.positive_int(epochs, "epochs"), V.positive_int(batch_size, "batch_size")
    lr = V.positive_float(lr, "lr", meaning="Adam step size", hint="pass e.g. lr=1e-3")
    lr_log_alpha = V.positive_float(lr_log_alpha, "lr_log_alpha", hint="pass e.g. lr_log_alpha=0.05")
    seed = V.nonnegative_int(seed, "seed")
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    raw = {
        id(m.raw_log_alpha)
        for m in model.modules()
        if isinstance(m, VariationalDropoutLinear) and m.learn_alpha
    }
    log_alphas = [p for p in model.parameters() if id(p) in raw]
    others = [p for p in model.parameters() if id(p) not in raw]
    groups = [{"params": others, "lr": lr}]
    if log_alphas:
        groups.append({"params": log_alphas, "lr": lr_log_alpha})
    opt = torch.optim.Adam(groups)
    n = len(x)
    history = []
    for epoch in range(epochs):
        model.train()
        total = 0.0
        for idx in batches(n, batch_size, gen, x.device):
            nll = nn.functional.cross_entropy(model(x[idx]), y[idx])
            loss = nll + model.kl() / n
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        history.append((epoch + 1, total / n))
    model.eval()
    test_error = error_rate(predict(model, x_test), y_test)
    with torch.no_grad():
        model.train()
        train_nll = float(nn.functional.cross_entropy(model(x), y))
        model.eval()
        kl_n = float(model.kl()) / n
    return TrainResult(test_error, train_nll, kl_n, [layer.alpha() for layer in model.layers], history)
