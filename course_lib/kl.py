"""The KL term of variational dropout under the log-uniform prior (chapters 6 and 7).

With the posterior q(w) = N(w | theta, alpha theta^2) and the improper log-uniform prior
p(|w|) proportional to 1/|w|, the negative KL divergence depends on alpha only:

    -KL(alpha) = 1/2 log alpha - E_{eps ~ N(0,1)} log|1 + sqrt(alpha) eps| + C.

This module computes it (normalised so that -KL -> 0 as alpha -> infinity) and its
approximations:

* :func:`neg_kl_molchanov` -- the sigmoid + softplus approximation of Molchanov et al. (2017),
  NumPy and torch friendly (used by the sparse variational dropout layers).
"""
from __future__ import annotations

from typing import Union

import numpy as np
import torch

ArrayOrTensor = Union[np.ndarray, torch.Tensor, float]

#: Published constants of Molchanov, Ashukha & Vetrov (2017), eq. (14).
K1, K2, K3 = 0.63576, 1.87320, 1.48695


def _check_numpy(log_alpha, name: str = "log_alpha") -> np.ndarray:
    """Convert to a float array and reject empty, NaN or infinite input."""
    try:
        x = np.asarray(log_alpha, dtype=float)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"{name} must be a number, a NumPy array or a torch tensor of real numbers; "
            f"got {type(log_alpha).__name__}."
        ) from exc
    if x.size == 0:
        raise ValueError(f"{name} is empty; pass at least one value of log alpha.")
    if not np.all(np.isfinite(x)):
        raise ValueError(
            f"{name} contains NaN or inf ({int(np.sum(~np.isfinite(x)))} of {x.size} values); "
            "log alpha must be finite -- clip it (e.g. to [-20, 20]) before calling."
        )
    return x


def _check_tensor(log_alpha: torch.Tensor, name: str = "log_alpha") -> None:
    """Reject empty, non-floating, NaN or infinite tensors."""
    if log_alpha.numel() == 0:
        raise ValueError(f"{name} is empty; pass at least one value of log alpha.")
    if not torch.is_floating_point(log_alpha):
        raise TypeError(
            f"{name} must be a floating-point tensor, got dtype {log_alpha.dtype}; "
            "convert it with .float()."
        )
    finite = torch.isfinite(log_alpha.detach())
    if not bool(finite.all()):
        n_bad = int((~finite).sum())
        raise ValueError(
            f"{name} contains NaN or inf ({n_bad} of {log_alpha.numel()} values); "
            "log alpha must be finite -- clip it (e.g. to [-20, 20]) before calling."
        )


def neg_kl_molchanov(
    log_alpha: ArrayOrTensor,
    k1: float = K1,
    k2: float = K2,
    k3: float = K3,
) -> ArrayOrTensor:
    """Molchanov et al.'s approximation of -KL(N(theta, alpha theta^2) || log-uniform).

    .. math::

        -\\mathrm{KL} \\approx k_1 \\sigma(k_2 + k_3 \\log\\alpha)
            - \\tfrac12 \\log(1 + 1/\\alpha) - k_1,

    computed in the stable form ``-0.5 * softplus(-log_alpha)`` for the middle term.

    Parameters
    ----------
    log_alpha : float, numpy.ndarray or torch.Tensor
        Log of the dropout ratio alpha = sigma^2 / theta^2.  Any shape.
    k1, k2, k3 : float
        The constants; the defaults are the published ones (0.63576, 1.87320, 1.48695).

    Returns
    -------
    numpy.ndarray or torch.Tensor
        -KL, elementwise, same shape as ``log_alpha``: a tensor (gradients flow) for a
        tensor input, a float array otherwise.  Always <= 0 up to the fit error and -> 0
        as alpha -> infinity.

    Raises
    ------
    ValueError
        Empty input, or NaN / inf values.
    TypeError
        Non-numeric input or an integer tensor.

    Examples
    --------
    >>> round(float(neg_kl_molchanov(0.0)), 4)  # alpha = 1
    -0.4312
    """
    for kname, kval in (("k1", k1), ("k2", k2), ("k3", k3)):
        if not np.isfinite(float(kval)):
            raise ValueError(f"{kname} must be a finite number, got {kval!r}.")
    if isinstance(log_alpha, torch.Tensor):
        _check_tensor(log_alpha)
        return (
            k1 * torch.sigmoid(k2 + k3 * log_alpha)
            - 0.5 * torch.nn.functional.softplus(-log_alpha)
            - k1
        )
    x = _check_numpy(log_alpha)
    sig = 0.5 * (1.0 + np.tanh(0.5 * (k2 + k3 * x)))  # stable sigmoid
    return k1 * sig - 0.5 * np.logaddexp(0.0, -x) - k1
