"""Small Bayesian neural networks for 1-D regression: mean-field VI, MC dropout, deep ensembles.

Chapter 11 puts the methods of the course side by side on chapter 3's sine data, where the
exact Bayesian answer of a linear model is known:

* :class:`MeanFieldMLP` -- a fully factorised Gaussian q(W) = prod_j N(w_j | mu_j, sigma_j^2)
  over every weight and bias (Bayes by backprop, Blundell et al. 2015), sampled with the
  reparameterization trick w = mu + sigma eps, with the prior N(0, 1/lambda) and the closed-form
  :meth:`MeanFieldMLP.kl`;
* :class:`EnsembleMLP` -- ``n_members`` independent point-estimate networks evaluated in one
  batched pass: a deep ensemble (Lakshminarayanan et al. 2017), or, with a dropout rate per
  member, Bernoulli dropout nets for Monte Carlo dropout (Gal & Ghahramani 2016), whose
  :meth:`EnsembleMLP.penalty` is chapter 5's KL term of the spike posterior;
* :func:`log_likelihood` and :func:`predictive`, the likelihood with a known noise
  precision beta and the mean and standard deviation of a predictive estimated from function
  samples.

Every network is an MLP 1-H-...-H-1 whose forward pass takes inputs ``x`` of shape (N,) and
returns function values of shape (S, N): one row per weight sample (mean field), per member
(ensemble) or per noisy pass (dropout).  The book's symbols are the names: ``prior_precision``
is lambda, ``beta`` the noise precision, ``p`` the dropout rate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from course_lib import validation as V

Tensor = torch.Tensor

__all__ = ["MeanFieldMLP", "EnsembleMLP", "log_likelihood", "predictive", "ACTIVATIONS"]

#: The activations a network may use, by name.
ACTIVATIONS = {"tanh": torch.tanh, "relu": torch.relu}


# ---------------------------------------------------------------------------------------
# input checks
# ---------------------------------------------------------------------------------------
def _hidden(hidden) -> tuple[int, ...]:
    if isinstance(hidden, (int, np.integer)) and not isinstance(hidden, bool):
        hidden = (hidden,)
    if not isinstance(hidden, Sequence) or isinstance(hidden, str):
        raise TypeError(f"hidden must be a sequence of layer widths, e.g. (50, 50), got {hidden!r}.")
    if len(hidden) == 0:
        raise ValueError("hidden must name at least one hidden layer, e.g. hidden=(50, 50), got ().")
    return tuple(V.positive_int(h, "hidden", meaning="the width of a hidden layer") for h in hidden)


def _precisions(value, n_layers: int) -> tuple[float, ...]:
    values = [value] * n_layers if np.ndim(value) == 0 else list(value)
    if len(values) != n_layers:
        raise ValueError(f"prior_precision must be one number or one per layer ({n_layers}), got {value!r}.")
    return tuple(V.positive_float(v, "prior_precision", meaning="the prior precision lambda") for v in values)


def _activation(name: str):
    return ACTIVATIONS[V.one_of(name, "activation", tuple(ACTIVATIONS))]


def _inputs(x) -> Tensor:
    x = torch.as_tensor(x, dtype=torch.get_default_dtype())
    if x.ndim != 1:
        raise ValueError(
            f"x must be a 1-D tensor of scalar inputs of shape (N,), got shape {tuple(x.shape)}; "
            "flatten it with x.reshape(-1)."
        )
    if not torch.all(torch.isfinite(x)):
        raise ValueError("x contains NaN or infinite values.")
    return x


def _widths(hidden: tuple[int, ...]) -> list[tuple[int, int]]:
    sizes = (1, *hidden, 1)
    return list(zip(sizes[:-1], sizes[1:]))


# ---------------------------------------------------------------------------------------
# the MLP on a flat parameter vector
# ---------------------------------------------------------------------------------------
def _layout(hidden: tuple[int, ...]) -> list[tuple[int, int, int]]:
    """(offset, n_in, n_out) of each layer's [weight, bias] block in a flat parameter vector."""
    layout, offset = [], 0
    for n_in, n_out in _widths(hidden):
        layout.append((offset, n_in, n_out))
        offset += (n_in + 1) * n_out
    return layout


def _init_flat(n_rows: int, layout) -> Tensor:
    """Flat parameters initialized as ``nn.Linear`` does: U(-1/sqrt(n_in), 1/sqrt(n_in))."""
    blocks = [
        torch.empty(n_rows, (n_in + 1) * n_out).uniform_(-1.0, 1.0) / math.sqrt(n_in)
        for _, n_in, n_out in layout
    ]
    return torch.cat(blocks, dim=1)


def _layer_values(values: Sequence[float], layout) -> Tensor:
    """A flat vector holding ``values[l]`` at every weight and bias of layer l."""
    return torch.cat(
        [torch.full(((n_in + 1) * n_out,), float(v)) for v, (_, n_in, n_out) in zip(values, layout)]
    )


def _forward(flat: Tensor, x: Tensor, layout, act, dropout=None) -> Tensor:
    """The MLP of each row of ``flat`` (S, D) at the inputs x (N,); returns (S, N).

    Each layer's block is a weight matrix (n_in, n_out) followed by a bias row; ``dropout``,
    if given, is applied to the inputs of every layer after the first.
    """
    h = x.reshape(1, -1, 1).expand(flat.shape[0], -1, 1)
    for layer, (offset, n_in, n_out) in enumerate(layout):
        block = flat[:, offset : offset + (n_in + 1) * n_out].reshape(-1, n_in + 1, n_out)
        if layer > 0:
            h = act(h)
            if dropout is not None:
                h = dropout(h)
        h = torch.baddbmm(block[:, n_in:], h, block[:, :n_in])
    return h[..., 0]


# ---------------------------------------------------------------------------------------
# mean-field Gaussian VI (Bayes by backprop)
# ---------------------------------------------------------------------------------------
class MeanFieldMLP(nn.Module):
    """An MLP with a fully factorised Gaussian posterior over all its weights and biases.

    q(W) = prod_j N(w_j | mu_j, sigma_j^2), with the D means in ``mu`` and the D log standard
    deviations in ``log_sigma`` (flat vectors, layer after layer: weights, then biases); the
    prior is p(W) = N(0, lambda^-1 I) with lambda = ``prior_precision``.  Each forward pass draws
    ``n_samples`` weight vectors w = mu + sigma * eps, eps ~ N(0, I) (the reparameterization
    trick), one per row of the output, shared by all inputs.

    Parameters
    ----------
    hidden : sequence of int, default (50, 50)
        Widths of the hidden layers.
    prior_precision : float or sequence of float, default 1.0
        lambda, the precision of the Gaussian prior on every weight and bias (> 0); or one
        per layer (a layer's weights and biases share it).
    activation : {"tanh", "relu"}, default "tanh"
    init_log_sigma : float, default -4.0
        Initial log sigma of every weight (small: training starts near a point estimate).
        The means start as ``nn.Linear`` initializes its weights (torch's global generator).

    Raises
    ------
    ValueError
        Bad widths, precision, activation or ``init_log_sigma``.

    Examples
    --------
    >>> net = MeanFieldMLP(hidden=(8,), prior_precision=1.0)
    >>> net.n_weights
    25
    >>> net(torch.linspace(0, 1, 5), n_samples=3).shape
    torch.Size([3, 5])
    """

    def __init__(
        self,
        hidden: Sequence[int] = (50, 50),
        prior_precision: float | Sequence[float] = 1.0,
        activation: str = "tanh",
        init_log_sigma: float = -4.0,
    ) -> None:
        super().__init__()
        self.hidden = _hidden(hidden)
        self._layout = _layout(self.hidden)
        self.prior_precision = _precisions(prior_precision, len(self._layout))
        self.activation = activation
        self._act = _activation(activation)
        init_log_sigma = V.finite_float(init_log_sigma, "init_log_sigma", meaning="the initial log sigma")
        self.mu = nn.Parameter(_init_flat(1, self._layout)[0])
        self.log_sigma = nn.Parameter(torch.full_like(self.mu, float(init_log_sigma)))
        self.register_buffer("_lam", _layer_values(self.prior_precision, self._layout))

    @property
    def n_weights(self) -> int:
        """The number D of weights and biases (q has 2 D parameters)."""
        return self.mu.numel()

    def sample(self, n_samples: int = 1) -> Tensor:
        """Weight vectors w = mu + sigma * eps drawn from q, shape (n_samples, D)."""
        n_samples = V.positive_int(n_samples, "n_samples", meaning="the number of weight samples")
        return self.mu + self.log_sigma.exp() * torch.randn(n_samples, self.n_weights)

    def forward(self, x, n_samples: int = 1) -> Tensor:
        """Function values f(x; W_s) for ``n_samples`` weight samples W_s ~ q, shape (S, N)."""
        return _forward(self.sample(n_samples), _inputs(x), self._layout, self._act)

    def kl(self) -> Tensor:
        """KL(q || p) in closed form: sum_j 1/2 [lambda (sigma_j^2 + mu_j^2) - 1 - log(lambda sigma_j^2)]."""
        lam, ls = self._lam, self.log_sigma
        return 0.5 * (lam * (torch.exp(2 * ls) + self.mu**2) - 1.0 - torch.log(lam) - 2 * ls).sum()


# ---------------------------------------------------------------------------------------
# point-estimate networks in a batch: deep ensembles and dropout nets
# ---------------------------------------------------------------------------------------
class EnsembleMLP(nn.Module):
    """``n_members`` independent MLPs in one batched pass, each with an optional dropout rate.

    Member m is row m of the parameter matrix ``weights`` (M, D), initialized as ``nn.Linear``
    initializes its weights (from torch's global generator, so ``torch.manual_seed`` fixes
    them), with Bernoulli dropout of rate ``p[m]`` on the inputs of every layer after the
    first (inverted dropout: kept units are scaled by 1 / (1 - p); a fresh mask per input and
    unit, as ``nn.Dropout`` draws them).  Dropout is on in training mode (``model.train()``,
    the default) and in :meth:`mc_samples`; ``model.eval()`` switches it off.  The members
    share no parameter, so the sum of their losses trains each one exactly as it would be
    trained alone (Adam works element by element).

    Parameters
    ----------
    n_members : int, default 5
        Number of networks M.
    hidden : sequence of int, default (50, 50)
        Widths of the hidden layers.
    p : float or sequence of float, default 0.0
        Dropout rate in [0, 1), one for all members or one per member.
    activation : {"tanh", "relu"}, default "tanh"

    Raises
    ------
    ValueError
        Bad sizes, a rate outside [0, 1), a list of rates of the wrong length, a bad activation.

    Examples
    --------
    >>> nets = EnsembleMLP(n_members=4, hidden=(8,), p=[0.0, 0.1, 0.2, 0.5]).eval()
    >>> nets(torch.linspace(0, 1, 5)).shape
    torch.Size([4, 5])
    """

    def __init__(
        self,
        n_members: int = 5,
        hidden: Sequence[int] = (50, 50),
        p: float | Sequence[float] = 0.0,
        activation: str = "tanh",
    ) -> None:
        super().__init__()
        self.n_members = V.positive_int(n_members, "n_members", meaning="the number of networks")
        self.hidden = _hidden(hidden)
        self._layout = _layout(self.hidden)
        self.activation = activation
        self._act = _activation(activation)
        rates = [p] * self.n_members if np.ndim(p) == 0 else list(p)
        if len(rates) != self.n_members:
            raise ValueError(f"p must be one dropout rate or one per member ({self.n_members}), got {p!r}.")
        rates = [V.probability(r, "p", high_open=True, meaning="the dropout rate") for r in rates]
        self.register_buffer("p", torch.tensor(rates, dtype=torch.get_default_dtype()))
        self.weights = nn.Parameter(_init_flat(self.n_members, self._layout))

    def _dropout(self, h: Tensor) -> Tensor:
        keep = (1.0 - self.p).reshape(-1, 1, 1)
        return h * torch.bernoulli(keep.expand_as(h)) / keep

    def forward(self, x) -> Tensor:
        """Function values of every member, shape (M, N); with dropout noise in training mode."""
        noisy = self.training and bool(torch.any(self.p > 0))
        return _forward(self.weights, _inputs(x), self._layout, self._act, self._dropout if noisy else None)

    def penalty(self, prior_precision: float | Sequence[float]) -> Tensor:
        """Each member's -log prior, up to a constant: chapter 5's KL term for its dropout rate.

        lambda/2 ||W||^2 over the first layer and all biases, and lambda / (2 (1 - p_m)) ||M||^2
        over the weight matrices whose inputs are dropped (Gal & Ghahramani 2016); with
        p = 0 this is weight decay, the Gaussian prior of the MAP objective.

        Parameters
        ----------
        prior_precision : float or sequence of float
            lambda (> 0), one for all layers or one per layer.

        Returns
        -------
        Tensor, shape (M,)
        """
        lam = _layer_values(_precisions(prior_precision, len(self._layout)), self._layout)
        dropped = torch.zeros_like(lam, dtype=torch.bool)  # weights (not biases) of layers 2, 3, ...
        for offset, n_in, n_out in self._layout[1:]:
            dropped[offset : offset + n_in * n_out] = True
        scale = torch.where(dropped, 1.0 / (1.0 - self.p[:, None]), torch.ones(()))
        return 0.5 * (lam * scale * self.weights**2).sum(1)

    def mc_samples(self, x, n_samples: int) -> Tensor:
        """``n_samples`` noisy passes of every member with dropout on, shape (n_samples, M, N)."""
        n_samples = V.positive_int(n_samples, "n_samples", meaning="the number of noisy passes")
        x = _inputs(x)
        with torch.no_grad():
            return torch.stack(
                [_forward(self.weights, x, self._layout, self._act, self._dropout) for _ in range(n_samples)]
            )


# ---------------------------------------------------------------------------------------
# likelihood and predictive
# ---------------------------------------------------------------------------------------
def log_likelihood(f: Tensor, t, beta: float) -> Tensor:
    """log p(t | f) = sum_n log N(t_n | f_n, 1/beta) for every row of ``f``.

    Parameters
    ----------
    f : Tensor, shape (S, N) or (N,)
        Function values at the training inputs.
    t : array_like, shape (N,)
        Targets.
    beta : float
        Noise precision (> 0).

    Returns
    -------
    Tensor, shape (S,) (or a scalar for 1-D ``f``)

    Raises
    ------
    ValueError
        A non-positive ``beta``, or ``t`` that does not match the last axis of ``f``.
    """
    beta = V.positive_float(beta, "beta", meaning="the noise precision")
    t = torch.as_tensor(t, dtype=f.dtype)
    if t.ndim != 1 or f.shape[-1] != t.shape[0]:
        raise ValueError(
            f"shape mismatch: f has {f.shape[-1]} values per row but t has shape {tuple(t.shape)}; "
            "evaluate the network at the training inputs."
        )
    return 0.5 * t.shape[0] * math.log(beta / (2 * math.pi)) - 0.5 * beta * ((f - t) ** 2).sum(-1)


def predictive(f, beta: float) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of the predictive of t = f(x) + noise, from function samples.

    The mean is the average of the samples and the variance their variance (the spread of the
    networks, epistemic) plus the noise variance 1/beta (aleatoric): the same decomposition as
    Bayesian linear regression's sigma_N^2(x) = 1/beta + phi^T S_N phi.

    Parameters
    ----------
    f : array_like or Tensor, shape (..., N)
        Function samples; all leading axes are samples (e.g. passes x members).
    beta : float
        Noise precision (> 0).

    Returns
    -------
    mean, std : ndarray, shape (N,)

    Raises
    ------
    ValueError
        Fewer than two samples, non-finite values or a non-positive ``beta``.
    """
    beta = V.positive_float(beta, "beta", meaning="the noise precision")
    f = f.detach().cpu().numpy() if isinstance(f, torch.Tensor) else np.asarray(f, dtype=float)
    if f.ndim < 2:
        raise ValueError(f"f must hold samples along its leading axes, shape (S, N), got shape {f.shape}.")
    f = f.reshape(-1, f.shape[-1])
    if f.shape[0] < 2:
        raise ValueError("predictive needs at least two function samples to estimate a spread.")
    if not np.all(np.isfinite(f)):
        raise ValueError("f contains NaN or infinite values; did the training diverge?")
    return f.mean(0), np.sqrt(f.var(0) + 1.0 / beta)
