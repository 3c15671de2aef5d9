"""The training objective of sparse variational dropout, and one optimizer step on it.

The objective is the negative ELBO of the paper, per mini-batch of size B,

.. math::

    \\mathcal{L}_\\kappa = N \\cdot \\frac1B \\sum_{i \\in \\text{batch}}
        \\mathrm{CE}(f(x_i), y_i) + \\kappa \\, \\mathrm{KL}(q \\,\\|\\, p),

with N the training-set size and kappa (``kl_weight``) the KL weight, warmed up from 0 to 1
by the recipe (:meth:`course_lib.recipes.Recipe.kl_weight`).  ``f`` is a
:mod:`course_lib.models` network, whose ``kl()`` is the sum of its sparse layers' KL terms
(0 for the dense baseline, whose objective is then plain N times the cross-entropy).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def negative_elbo(ce: torch.Tensor, kl: torch.Tensor, n_train: int, kl_weight: float) -> torch.Tensor:
    """``L_kappa = n_train * ce + kl_weight * kl`` (just ``n_train * ce`` when ``kl`` has no graph).

    Parameters
    ----------
    ce : Tensor, scalar
        The mini-batch's mean cross-entropy.
    kl : Tensor, scalar
        KL(q || p) of the network (a constant zero for a dense network).
    n_train : int
        Training-set size N (scales the data term to the whole set).
    kl_weight : float
        The KL weight kappa.
    """
    return n_train * ce + kl_weight * kl if kl.requires_grad else n_train * ce


def training_step(
    net: nn.Module,
    opt: torch.optim.Optimizer,
    xb: torch.Tensor,
    yb: torch.Tensor,
    n_train: int,
    kl_weight: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimizer step on the negative ELBO ``n_train * mean CE + kl_weight * KL``.

    Parameters
    ----------
    net : nn.Module
        A network in training mode: a :mod:`course_lib.models` network (its ``kl()`` is 0 when
        dense), or any classifier without a ``kl()`` method (e.g.
        :class:`course_lib.dropout.DropoutMLP`), which is trained on ``n_train * mean CE`` alone
        and then needs ``kl_weight == 0``.
    opt : torch.optim.Optimizer
    xb, yb : Tensor
        The mini-batch (images and labels), already on the device.
    n_train : int
        Training-set size N (scales the data term to the whole set).
    kl_weight : float
        The KL weight kappa.

    Returns
    -------
    (ce, kl) : detached scalar tensors
        The batch's mean cross-entropy and the model's KL (both before the step; 0 without ``kl()``).

    Raises
    ------
    TypeError
        ``kl_weight > 0`` for a network that has no ``kl()`` method.
    """
    has_kl = callable(getattr(net, "kl", None))
    if not has_kl and kl_weight != 0:
        raise TypeError(
            f"{type(net).__name__} has no kl() method, so there is no KL term to weight by "
            f"kl_weight={kl_weight}: pass kl_weight=0 (a dense net's loss is N * CE), or train a "
            "network with sparse variational dropout layers (course_lib.models, sparse=True)."
        )
    ce = F.cross_entropy(net(xb), yb)
    kl = net.kl() if has_kl else ce.new_zeros(())
    loss = negative_elbo(ce, kl, n_train, kl_weight)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return ce.detach(), kl.detach()
