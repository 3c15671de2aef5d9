"""The two networks of the sparse variational dropout paper, sparse or dense.

* :class:`LeNet300100` -- the fully connected 784-300-100-10 net (266,200 weights).
* :class:`LeNet5` -- LeNet-5-Caffe: conv 20@5x5 -> max-pool 2 -> conv 50@5x5 -> max-pool 2 ->
  fc 500 -> fc 10, ReLU activations (430,500 weights).

``sparse=True`` builds them from :class:`course_lib.layers.LinearSVDO` and
:class:`course_lib.layers.Conv2dSVDO`; ``sparse=False`` from ``nn.Linear`` / ``nn.Conv2d``
(the dense baseline).  Both expect MNIST batches of shape (N, 1, 28, 28) as given by
:func:`course_lib.data.mnist_tensors` and return logits of shape (N, 10).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from course_lib import validation as V
from course_lib.layers import LOG_SIGMA2_INIT, Conv2dSVDO, LinearSVDO, sparse_layers, weight_layers


def _check_input(x: torch.Tensor, model: str) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(
            f"{model} expects a torch.Tensor of MNIST images, got {type(x).__name__}; "
            "use course_lib.data.mnist_tensors (or torch.as_tensor(x, dtype=torch.float32))."
        )
    if x.dim() != 4 or tuple(x.shape[1:]) != (1, 28, 28):
        raise ValueError(
            f"{model} expects MNIST batches of shape (N, 1, 28, 28), got {tuple(x.shape)}; "
            "use course_lib.data.mnist_tensors (or x.view(-1, 1, 28, 28))."
        )


class _SparseVDNet(nn.Module):
    """Shared helpers: the KL of all sparse layers and the list of weight layers."""

    sparse: bool

    def weight_layers(self) -> list[tuple[str, nn.Module]]:
        """(name, layer) of every layer that has a weight tensor, in forward order."""
        return weight_layers(self)

    def kl(self) -> torch.Tensor:
        """Sum of the KL terms of the sparse layers (a zero tensor for the dense net)."""
        terms = [m.kl() for _, m in sparse_layers(self)]
        if not terms:
            return torch.zeros((), device=next(self.parameters()).device)
        return torch.stack(terms).sum()


class LeNet300100(_SparseVDNet):
    """LeNet-300-100: 784 -> 300 -> 100 -> 10, ReLU.

    Parameters
    ----------
    sparse : bool, default True
        Sparse variational dropout layers (True) or plain ``nn.Linear`` (False).
    threshold : float, default 3.0
        Pruning threshold on log alpha (sparse only).
    log_sigma2_init : float, default -10
        Initial log sigma^2 (sparse only).
    train_clip : bool, default False
        Zero the pruned weights in the training mean too (sparse only; see
        :class:`course_lib.layers.LinearSVDO`).

    Examples
    --------
    >>> net = LeNet300100()
    >>> net(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 10])
    """

    def __init__(
        self,
        sparse: bool = True,
        threshold: float = 3.0,
        log_sigma2_init: float = LOG_SIGMA2_INIT,
        train_clip: bool = False,
    ) -> None:
        super().__init__()
        self.sparse = V.boolean(sparse, "sparse")
        if sparse:
            kw = dict(threshold=threshold, log_sigma2_init=log_sigma2_init, train_clip=train_clip)
            self.fc1, self.fc2, self.fc3 = (
                LinearSVDO(784, 300, **kw),
                LinearSVDO(300, 100, **kw),
                LinearSVDO(100, 10, **kw),
            )
        else:
            self.fc1, self.fc2, self.fc3 = nn.Linear(784, 300), nn.Linear(300, 100), nn.Linear(100, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (N, 10) for images (N, 1, 28, 28)."""
        _check_input(x, "LeNet300100")
        h = F.relu(self.fc1(x.flatten(1)))
        h = F.relu(self.fc2(h))
        return self.fc3(h)


class LeNet5(_SparseVDNet):
    """LeNet-5-Caffe: conv 20@5x5, pool, conv 50@5x5, pool, fc 500, fc 10 (ReLU).

    Max-pooling is applied before the ReLU (the two commute, and pooling first is cheaper).

    Parameters
    ----------
    sparse : bool, default True
        Sparse variational dropout layers (True) or plain ``nn.Conv2d`` / ``nn.Linear`` (False).
    threshold : float, default 3.0
        Pruning threshold on log alpha (sparse only).
    log_sigma2_init : float, default -10
        Initial log sigma^2 (sparse only).
    train_clip : bool, default False
        Zero the pruned weights in the training mean too (sparse only; see
        :class:`course_lib.layers.LinearSVDO`).

    Examples
    --------
    >>> net = LeNet5(sparse=False)
    >>> sum(m.weight.numel() for _, m in net.weight_layers())
    430500
    """

    def __init__(
        self,
        sparse: bool = True,
        threshold: float = 3.0,
        log_sigma2_init: float = LOG_SIGMA2_INIT,
        train_clip: bool = False,
    ) -> None:
        super().__init__()
        self.sparse = V.boolean(sparse, "sparse")
        if sparse:
            kw = dict(threshold=threshold, log_sigma2_init=log_sigma2_init, train_clip=train_clip)
            self.conv1, self.conv2 = Conv2dSVDO(1, 20, 5, **kw), Conv2dSVDO(20, 50, 5, **kw)
            self.fc1, self.fc2 = LinearSVDO(800, 500, **kw), LinearSVDO(500, 10, **kw)
        else:
            self.conv1, self.conv2 = nn.Conv2d(1, 20, 5), nn.Conv2d(20, 50, 5)
            self.fc1, self.fc2 = nn.Linear(800, 500), nn.Linear(500, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (N, 10) for images (N, 1, 28, 28)."""
        _check_input(x, "LeNet5")
        h = F.relu(F.max_pool2d(self.conv1(x), 2))
        h = F.relu(F.max_pool2d(self.conv2(h), 2))
        h = F.relu(self.fc1(h.flatten(1)))
        return self.fc2(h)


#: Model names used by the trainer's ``--model`` flag.
MODELS: dict[str, type[_SparseVDNet]] = {"lenet300": LeNet300100, "lenet5": LeNet5}


def build_model(name: str, sparse: bool = True, **kwargs) -> _SparseVDNet:
    """Build a model by its trainer name.

    Parameters
    ----------
    name : {"lenet300", "lenet5"}
    sparse : bool, default True
    **kwargs
        Passed to the model (``threshold``, ``log_sigma2_init``, ``train_clip``).

    Raises
    ------
    ValueError
        For an unknown name (the message lists the known ones).
    TypeError
        For a ``sparse`` that is not ``True``/``False``.
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)}.")
    return MODELS[name](sparse=sparse, **kwargs)
