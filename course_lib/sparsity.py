"""How sparse is a network?  Per-layer pruned fractions and the compression ratio.

The accounting is the paper's (Molchanov et al., 2017, Table 1): only **weight tensors**
count -- the ``theta`` of a sparse variational dropout layer, the ``weight`` of an
``nn.Linear`` / ``nn.Conv2d``.  Biases are not counted (they are few and never pruned), and
neither is ``log_sigma2`` (it is needed only during training; the pruned net stores
``theta`` alone).

* A sparse layer's weight is *kept* when ``log_alpha < threshold`` (its eval-mode mask).
* A dense layer's weight is kept when it is non-zero.

:func:`weight_counts` counts per layer; :func:`layer_sparsity`, :func:`pruned_fraction` (all
layers together) and :func:`compression` are read off those counts. :func:`use_threshold`
moves the pruning threshold of every sparse layer for a ``with`` block
(chapter 9: test error against compression as the threshold moves).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn

from course_lib.layers import SVDO_LAYERS, check_threshold, sparse_layers, weight_layers


def _weight_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    layers = weight_layers(model)
    if not layers:
        raise ValueError(
            f"{type(model).__name__} has no Linear/Conv2d or sparse VD layer, so it has no weights "
            "to count; pass a model such as course_lib.models.LeNet5."
        )
    return layers


def weight_counts(model: nn.Module) -> dict[str, tuple[int, int]]:
    """(kept, total) weights of every weight layer, by module name, in forward order.

    Parameters
    ----------
    model : nn.Module
        A network made of :mod:`course_lib.layers` sparse layers and/or ``nn.Linear`` /
        ``nn.Conv2d``.

    Returns
    -------
    dict
        ``{name: (kept, total)}``; biases and ``log_sigma2`` are not counted.

    Raises
    ------
    TypeError
        If ``model`` is not an ``nn.Module``.
    ValueError
        If it has no weight layer.
    """
    out = {}
    for name, m in _weight_layers(model):
        if isinstance(m, SVDO_LAYERS):
            kept = int(m.mask().sum())
            total = m.theta.numel()
        else:
            kept = int((m.weight != 0).sum())
            total = m.weight.numel()
        out[name] = (kept, total)
    return out


def layer_sparsity(model: nn.Module) -> dict[str, float]:
    """Fraction of pruned weights per layer (0 = dense, 0.99 = 99 % of the weights removed).

    Parameters
    ----------
    model : nn.Module

    Returns
    -------
    dict
        ``{name: pruned fraction}`` in forward order, e.g. ``{"fc1": 0.989, ...}``.

    Examples
    --------
    >>> from course_lib.models import LeNet300100
    >>> layer_sparsity(LeNet300100(sparse=False))  # a dense net has no zero weights
    {'fc1': 0.0, 'fc2': 0.0, 'fc3': 0.0}
    """
    return {name: 1.0 - kept / total for name, (kept, total) in weight_counts(model).items()}


def _totals(model: nn.Module) -> tuple[int, int]:
    counts = weight_counts(model).values()
    return sum(k for k, _ in counts), sum(t for _, t in counts)


def pruned_fraction(model: nn.Module) -> float:
    """Fraction of pruned weights over all weight layers together, ``1 - kept / total``.

    The overall sparsity (what an assignment's target "99 % of the weights pruned" means);
    ``1 - 1 / compression(model)``.

    Returns
    -------
    float
        In [0, 1].

    Examples
    --------
    >>> from course_lib.models import LeNet300100
    >>> pruned_fraction(LeNet300100(sparse=False))
    0.0
    """
    kept, total = _totals(model)
    return 1.0 - kept / total


def compression(model: nn.Module) -> float:
    """Compression ratio = number of weights / number of non-zero (kept) weights.

    Weight tensors only: biases and ``log_sigma2`` are excluded, which is the accounting of
    the paper's Table 1 (e.g. 68x for LeNet-300-100, 280x for LeNet-5-Caffe).

    Returns
    -------
    float
        >= 1; ``inf`` if every weight was pruned.
    """
    kept, total = _totals(model)
    return float("inf") if kept == 0 else total / kept


@contextmanager
def use_threshold(model: nn.Module, threshold: float) -> Iterator[nn.Module]:
    """Prune at another log alpha threshold inside a ``with`` block, then restore the old ones.

    Every sparse variational dropout layer of ``model`` gets ``threshold``; on leaving the
    block (also by an exception) each layer gets its own previous threshold back.  The
    eval-mode network, :func:`weight_counts`, :func:`layer_sparsity` and :func:`compression`
    all follow the threshold.

    Parameters
    ----------
    model : nn.Module
        A network with :mod:`course_lib.layers` sparse layers.
    threshold : float
        A weight is pruned when ``log_alpha >= threshold`` (the paper uses 3).

    Yields
    ------
    nn.Module
        ``model`` itself.

    Raises
    ------
    TypeError
        If ``threshold`` is not a number.
    ValueError
        If ``threshold`` is NaN or infinite, or ``model`` has no sparse layer.

    Examples
    --------
    >>> from course_lib.models import LeNet300100
    >>> net = LeNet300100()
    >>> with use_threshold(net, 1.0):
    ...     net.fc1.threshold
    1.0
    >>> net.fc1.threshold
    3.0
    """
    threshold = check_threshold(threshold)
    layers = [m for _, m in sparse_layers(model)]
    if not layers:
        raise ValueError(
            f"{type(model).__name__} has no sparse variational dropout layer, so it "
            "has no threshold to move; pass a model built with sparse=True."
        )
    before = [m.threshold for m in layers]
    try:
        for m in layers:
            m.threshold = threshold
        yield model
    finally:
        for m, t in zip(layers, before):
            m.threshold = t
