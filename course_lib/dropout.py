"""Dropout as multiplicative noise: Bernoulli and Gaussian noise, MC prediction, a small sweep model.

Chapter 5 reads dropout (Srivastava et al. 2014) as noise injection: during training every
unit (or weight) x is multiplied by a random ξ with E ξ = 1,

* Bernoulli dropout: ξ = m / (1 − p), m ~ Ber(1 − p), so a unit is dropped with
  probability ``p`` (PyTorch's convention; Srivastava et al. write the *retain*
  probability) and Var ξ = p / (1 − p);
* Gaussian dropout: ξ ~ N(1, α), so Var ξ = α.

They have the same mean and variance exactly when α = p / (1 − p) (:func:`dropout_alpha`).
Because E ξ = 1, the *weight-scaling* prediction of Srivastava et al. is the plain
deterministic pass (:func:`course_lib.prediction.predict`); *Monte Carlo dropout* averages the
predictive probabilities of T noisy passes (:func:`mc_samples`, Gal & Ghahramani 2016), scored
by :mod:`course_lib.scores`.

The module also holds the small MLP and training loop of chapter 5's sweep over p
(:class:`DropoutMLP`, :func:`train_classifier`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from course_lib import validation as V
from course_lib.data import batches
from course_lib.prediction import eval_mode, probabilities

Tensor = torch.Tensor

#: Dropout kinds understood by :class:`DropoutMLP`.
KINDS = ("bernoulli", "gaussian")


# ---------------------------------------------------------------------------------------
# the noise and its rate
# ---------------------------------------------------------------------------------------
def _check_p(p: float) -> float:
    return V.probability(
        p,
        "p",
        high_open=True,
        meaning="the probability of dropping a unit",
        hint="p = 1 would drop every unit; alpha = p/(1-p) needs p < 1",
    )


def _check_alpha(alpha: float) -> float:
    return V.nonnegative_float(
        alpha,
        "alpha",
        meaning="the variance of the Gaussian noise N(1, alpha)",
        hint="alpha = p/(1-p) matches Bernoulli dropout with drop probability p",
    )


def dropout_alpha(p: float) -> float:
    """The Gaussian-dropout variance α = p / (1 − p) matching Bernoulli dropout with drop rate p.

    Raises
    ------
    ValueError
        If ``p`` is outside [0, 1).

    Examples
    --------
    >>> dropout_alpha(0.5)
    1.0
    """
    p = _check_p(p)
    return p / (1.0 - p)


def dropout_rate(alpha: float) -> float:
    """The inverse of :func:`dropout_alpha`: p = α / (1 + α).

    Raises
    ------
    ValueError
        If ``alpha`` is negative or not finite.
    """
    alpha = _check_alpha(alpha)
    return alpha / (1.0 + alpha)


def bernoulli_noise(
    shape: Sequence[int],
    p: float,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
) -> Tensor:
    """Samples of ξ = m / (1 − p), m ~ Ber(1 − p): mean 1, variance p / (1 − p).

    Parameters
    ----------
    shape : sequence of int
    p : float
        Drop probability in [0, 1).
    generator : torch.Generator, optional
    dtype, device : torch dtype and device of the result

    Raises
    ------
    ValueError
        If ``p`` is outside [0, 1).
    """
    p = _check_p(p)
    keep = torch.full(tuple(shape), 1.0 - p, dtype=dtype, device=device)
    return torch.bernoulli(keep, generator=generator) / (1.0 - p)


def gaussian_noise(
    shape: Sequence[int],
    alpha: float,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
) -> Tensor:
    """Samples of ξ ~ N(1, α): mean 1, variance α.

    Raises
    ------
    ValueError
        If ``alpha`` is negative or not finite.
    """
    alpha = _check_alpha(alpha)
    eps = torch.randn(tuple(shape), generator=generator, dtype=dtype, device=device)
    return 1.0 + math.sqrt(alpha) * eps


def bernoulli_dropout(
    x: Tensor, p: float, training: bool = True, generator: torch.Generator | None = None
) -> Tensor:
    """Multiply ``x`` elementwise by Bernoulli noise ξ = m/(1 − p); identity when not training.

    ``x`` may hold unit activations or a weight matrix (noise on weights).

    Raises
    ------
    ValueError
        If ``p`` is outside [0, 1).
    """
    p = _check_p(p)
    if not training or p == 0.0:
        return x
    return x * bernoulli_noise(x.shape, p, generator, x.dtype, x.device)


def gaussian_dropout(
    x: Tensor, alpha: float, training: bool = True, generator: torch.Generator | None = None
) -> Tensor:
    """Multiply ``x`` elementwise by Gaussian noise ξ ~ N(1, α); identity when not training.

    Raises
    ------
    ValueError
        If ``alpha`` is negative or not finite.
    """
    alpha = _check_alpha(alpha)
    if not training or alpha == 0.0:
        return x
    return x * gaussian_noise(x.shape, alpha, generator, x.dtype, x.device)


class BernoulliDropout(nn.Module):
    """Bernoulli dropout with drop probability ``p`` (active in ``train()`` mode only).

    Noise on the units: it multiplies its input (the activations it is applied to), like
    ``nn.Dropout``; for noise on a layer's *weights* see :mod:`course_lib.variational_dropout`.

    Parameters
    ----------
    p : float
        Drop probability in [0, 1).

    Raises
    ------
    ValueError
        If ``p`` is outside [0, 1).
    """

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        self.p = _check_p(p)

    @property
    def alpha(self) -> float:
        """The matching Gaussian variance p / (1 − p)."""
        return dropout_alpha(self.p)

    def forward(self, x: Tensor) -> Tensor:
        return bernoulli_dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class GaussianDropout(nn.Module):
    """Gaussian dropout ξ ~ N(1, α) (active in ``train()`` mode only).

    Noise on the units, like :class:`BernoulliDropout`; for Gaussian noise on a layer's
    *weights* (alpha fixed or learned) see :mod:`course_lib.variational_dropout`.

    Parameters
    ----------
    alpha : float
        Noise variance α ≥ 0; :meth:`from_rate` builds it from a drop probability.

    Raises
    ------
    ValueError
        If ``alpha`` is negative or not finite.
    """

    def __init__(self, alpha: float = 1.0) -> None:
        super().__init__()
        self.alpha = _check_alpha(alpha)

    @classmethod
    def from_rate(cls, p: float) -> GaussianDropout:
        """The Gaussian dropout with the same noise variance as Bernoulli dropout of rate ``p``."""
        return cls(dropout_alpha(p))

    @property
    def p(self) -> float:
        """The matching Bernoulli drop probability α / (1 + α)."""
        return dropout_rate(self.alpha)

    def forward(self, x: Tensor) -> Tensor:
        return gaussian_dropout(x, self.alpha, self.training)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha:.4g}"


#: Module types that :func:`mc_samples` keeps stochastic.
DROPOUT_TYPES: tuple[type[nn.Module], ...] = (BernoulliDropout, GaussianDropout, nn.Dropout)


# ---------------------------------------------------------------------------------------
# a network for the sweep
# ---------------------------------------------------------------------------------------
class DropoutMLP(nn.Module):
    """A ReLU multilayer perceptron with dropout on its inputs and on every hidden layer.

    ``Flatten → [drop(p_in) → Linear → ReLU] → [drop(p) → Linear → ReLU] … → drop(p) → Linear``

    Parameters
    ----------
    sizes : sequence of int
        Layer widths from input to output, e.g. ``(784, 256, 256, 10)``; at least two.
    p : float, default 0.5
        Drop probability of the hidden units (noise on the input of every layer after the first).
    p_input : float, default 0.0
        Drop probability of the input units (Srivastava et al. use 0.2).
    kind : {"bernoulli", "gaussian"}
        The noise; ``"gaussian"`` uses α = p/(1 − p) so that its variance matches.

    Raises
    ------
    ValueError
        If ``sizes`` has fewer than two positive widths, a rate is outside [0, 1), or
        ``kind`` is unknown.
    TypeError
        A width that is not an integer, a rate that is not a number.
    """

    def __init__(
        self, sizes: Sequence[int], p: float = 0.5, p_input: float = 0.0, kind: str = "bernoulli"
    ) -> None:
        super().__init__()
        sizes = [V.positive_int(s, "every entry of sizes", meaning="a layer width") for s in sizes]
        if len(sizes) < 2:
            raise ValueError(
                f"sizes must list at least two positive layer widths (input, ..., output), got {sizes}."
            )
        self.kind = V.one_of(kind, "kind", KINDS, meaning="the dropout noise")
        self.p, self.p_input = _check_p(p), _check_p(p_input)

        def noise(rate: float) -> nn.Module:
            return BernoulliDropout(rate) if kind == "bernoulli" else GaussianDropout.from_rate(rate)

        layers: list[nn.Module] = [nn.Flatten()]
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(noise(self.p_input if i == 0 else self.p))
            layers.append(nn.Linear(n_in, n_out))
            if i < len(sizes) - 2:
                layers.append(nn.ReLU())
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        """Logits, shape (N, sizes[-1])."""
        return self.net(x)


def train_classifier(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    epochs: int = 20,
    batch_size: int = 100,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    generator: torch.Generator | None = None,
) -> np.ndarray:
    """Train ``model`` with Adam on the mean cross-entropy; return the mean loss per epoch.

    The model is in ``train()`` mode (noise on) while training and is left in ``eval()``
    mode. Mini-batches are a fresh permutation each epoch drawn from ``generator``.

    Parameters
    ----------
    model : nn.Module
        Maps a batch of ``x`` to logits.
    x : Tensor, shape (N, ...)
    y : Tensor of int64, shape (N,)
    epochs : int, default 20
    batch_size : int, default 100
    lr : float, default 1e-3
    weight_decay : float, default 0.0
        L2 penalty λ ≥ 0 (Adam's coupled weight decay adds λW to the gradient of the mean loss,
        i.e. a Gaussian prior of precision λN on the summed log-likelihood).
    generator : torch.Generator, optional

    Returns
    -------
    ndarray, shape (epochs,)

    Raises
    ------
    ValueError
        For empty or mismatched data, a non-positive ``epochs``/``batch_size``/``lr`` or a
        batch larger than the data, or a negative ``weight_decay``.
    TypeError
        ``epochs``/``batch_size`` not integers, ``lr``/``weight_decay`` not numbers.
    """
    N = len(x)
    if N == 0 or len(y) != N:
        raise ValueError(f"x and y must be non-empty and of the same length, got {N} and {len(y)}.")
    epochs = V.positive_int(epochs, "epochs")
    batch_size = V.positive_int(batch_size, "batch_size")
    if batch_size > N:
        raise ValueError(
            f"batch_size={batch_size} is larger than the data set (N={N}); use batch_size <= {N}."
        )
    lr = V.positive_float(lr, "lr", meaning="Adam's step size")
    weight_decay = V.nonnegative_float(weight_decay, "weight_decay", meaning="an L2 penalty")
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    losses = np.empty(epochs)
    model.train()
    for epoch in range(epochs):
        total = 0.0
        for idx in batches(N, batch_size, generator, x.device):
            opt.zero_grad()
            loss = F.cross_entropy(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        losses[epoch] = total / N
    model.eval()
    return losses


# ---------------------------------------------------------------------------------------
# Monte Carlo dropout
# ---------------------------------------------------------------------------------------
@torch.no_grad()
def mc_samples(model: nn.Module, x: Tensor, n_samples: int = 20, batch_size: int | None = None) -> Tensor:
    """Monte Carlo dropout: the class probabilities of ``n_samples`` noisy passes.

    Pass t is ``softmax(f(x; W ∘ ξ_t))``; their mean over t, ``mc_samples(...).mean(0)``, is
    the MC-dropout predictive p(y | x) ≈ (1/T) Σ_t softmax(f(x; W ∘ ξ_t)). Only dropout modules
    (:data:`DROPOUT_TYPES`) are switched to ``train()`` mode; every other module stays in
    ``eval()`` mode, and all modes are restored afterwards
    (:func:`course_lib.prediction.eval_mode`). The noise comes from the global torch RNG:
    seed it with ``torch.manual_seed`` for a reproducible draw.

    Parameters
    ----------
    model : nn.Module
    x : Tensor, shape (N, ...)
    n_samples : int, default 20
        The number T of noisy passes.
    batch_size : int or None, default None
        Inputs per forward pass; None: all N in one pass. (The noise is drawn batch after batch,
        so the draw depends on it.)

    Returns
    -------
    Tensor, shape (T, N, C)

    Raises
    ------
    ValueError
        If ``n_samples`` is below 1, or the model has no dropout module (every pass would be
        the same).
    TypeError
        If ``n_samples`` is not an integer.
    """
    n_samples = V.positive_int(n_samples, "n_samples", meaning="the number T of noisy passes")
    drops = [m for m in model.modules() if isinstance(m, DROPOUT_TYPES)]
    if not drops:
        raise ValueError(
            "the model has no dropout module, so MC dropout would repeat one deterministic pass; "
            "use course_lib.prediction.predict, or add BernoulliDropout/GaussianDropout layers."
        )
    with eval_mode(model, train=drops):
        return torch.stack([probabilities(model, x, batch_size) for _ in range(n_samples)])
