"""Store a pruned network in a sparse format and load it back.

Sparse variational dropout removes most weights, but a ``state_dict`` still stores every
entry of every tensor (and, for the training-time layers, ``log_sigma2`` beside ``theta``).
To see what the pruning is worth on disk, :func:`save_sparse` writes only the *kept* weights
of each layer in the **compressed sparse row** (CSR) format:

* the weight tensor is viewed as a matrix with one row per output unit (a convolution's
  ``(out, in, kH, kW)`` kernel becomes ``(out, in * kH * kW)``);
* ``values`` holds the kept weights row after row (float32, so the reloaded net is exact);
* ``col_indices`` holds the column of each kept weight, in the smallest integer type that
  fits the number of columns (int16 for LeNet-5 and LeNet-300-100: 2 bytes per weight);
* ``crow_indices`` (int32, rows + 1 entries) says where each row starts in ``values``;
* biases are stored densely (they are few and never pruned).

These are the three component arrays of torch's own CSR layout (``torch.sparse_csr``), which does
the conversions: :func:`to_csr` is ``Tensor.to_sparse_csr`` with the index arrays narrowed for
storage, :func:`from_csr` is ``torch.sparse_csr_tensor(...).to_dense()`` with torch's invariant
checks (sorted, distinct, in-range column indices).

A kept weight therefore costs 6 bytes instead of 4, so the file-size ratio against the dense
``state_dict`` is smaller than the weight compression ratio of
:func:`course_lib.sparsity.compression`; deep compression (Han, Mao & Dally, 2016) goes
further with relative indices, quantized values and Huffman coding.  :func:`load_sparse` rebuilds the *dense* architecture
(``sparse=False``) with the pruned weights set to zero: its predictions equal those of the
sparse-VD network in evaluation mode.
"""

from __future__ import annotations

import math
import os
import warnings
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn

from course_lib.layers import SVDO_LAYERS
from course_lib.models import MODELS, build_model

#: Version of the file layout written by :func:`save_sparse` (and the only one :func:`load_sparse` reads).
SPARSE_FORMAT = 1

_CSR_KEYS = ("shape", "crow_indices", "col_indices", "values")


@contextmanager
def _quiet_sparse_csr():
    """Silence torch's one-time "Sparse CSR tensor support is in beta" warning (chapter 9 prints no stderr)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        yield


def _index_dtype(n_columns: int) -> torch.dtype:
    """The smallest signed integer type that holds column indices ``0 .. n_columns - 1``."""
    return torch.int16 if n_columns <= torch.iinfo(torch.int16).max + 1 else torch.int32


def to_csr(weight: torch.Tensor) -> dict[str, object]:
    """The non-zero entries of a weight tensor in CSR form (one row per output unit).

    Parameters
    ----------
    weight : Tensor, at least 2-D
        A linear ``(out, in)`` or convolution ``(out, in, kH, kW)`` weight; zeros are the
        pruned entries.

    Returns
    -------
    dict
        ``shape`` (list of int, the original shape), ``crow_indices`` (int32, ``out + 1``),
        ``col_indices`` (int16 or int32, one per non-zero) and ``values`` (float32, one per
        non-zero), all on the CPU.

    Raises
    ------
    TypeError
        If ``weight`` is not a floating-point tensor.
    ValueError
        If ``weight`` has fewer than 2 dimensions.

    Examples
    --------
    >>> csr = to_csr(torch.tensor([[0.0, 2.0, 0.0], [1.0, 0.0, 3.0]]))
    >>> csr["crow_indices"].tolist(), csr["col_indices"].tolist(), csr["values"].tolist()
    ([0, 1, 3], [1, 0, 2], [2.0, 1.0, 3.0])
    """
    got = (
        f"a {weight.dim()}-D {weight.dtype} tensor"
        if isinstance(weight, torch.Tensor)
        else type(weight).__name__
    )
    wrong_type = not isinstance(weight, torch.Tensor) or not weight.is_floating_point()
    if wrong_type or weight.dim() < 2:
        raise (TypeError if wrong_type else ValueError)(
            f"to_csr expects a floating-point weight tensor with at least 2 dimensions "
            f"(out, in[, kH, kW]), got {got}; pass a layer's weight, not its bias."
        )
    # (out, in * kH * kW) spelled out: reshape(out, -1) is ambiguous for a weight with 0 rows
    w = weight.detach().to("cpu", torch.float32).reshape(weight.shape[0], math.prod(weight.shape[1:]))
    with _quiet_sparse_csr():
        csr = w.to_sparse_csr()  # keeps the non-zero entries, row after row
    return {
        "shape": list(weight.shape),
        "crow_indices": csr.crow_indices().to(torch.int32),
        "col_indices": csr.col_indices().to(_index_dtype(w.shape[1])),
        "values": csr.values().clone(),
    }


def from_csr(csr: dict[str, object]) -> torch.Tensor:
    """The dense weight tensor (zeros where pruned) of a :func:`to_csr` dictionary.

    Raises
    ------
    ValueError
        If a key is missing or the index arrays do not fit the shape (torch's CSR invariants:
        ``crow_indices`` non-decreasing from 0 to the number of values, column indices in range,
        sorted and distinct within a row).
    """
    missing = set(_CSR_KEYS) - set(csr)
    if missing:
        raise ValueError(f"CSR dictionary lacks {sorted(missing)}; build it with to_csr(weight).")
    shape = [int(s) for s in csr["shape"]]
    crow, col, values = csr["crow_indices"], csr["col_indices"], csr["values"]
    n_rows, n_cols = shape[0], math.prod(shape[1:])
    damaged = (
        f"CSR arrays do not fit the shape {shape}: {len(crow)} row pointers, {len(col)} "
        f"column indices, {len(values)} values; the data are damaged, save them again "
        "with to_csr(weight)."
    )
    if len(crow) != n_rows + 1 or len(col) != len(values):
        raise ValueError(damaged)
    try:
        with _quiet_sparse_csr():
            dense = torch.sparse_csr_tensor(
                crow.long(), col.long(), values, size=(n_rows, n_cols), check_invariants=True
            ).to_dense()
    except RuntimeError as exc:  # torch names the broken invariant
        raise ValueError(f"{damaged} (torch: {exc})") from exc
    return dense.reshape(shape)


def _model_name(model: nn.Module) -> str:
    for name, cls in MODELS.items():
        if type(model) is cls:
            return name
    raise TypeError(
        f"save_sparse stores the course's networks {sorted(MODELS)} (course_lib.models), got "
        f"{type(model).__name__}; build the model with course_lib.models.build_model."
    )


def sparse_state(model: nn.Module) -> dict[str, object]:
    """What :func:`save_sparse` writes: the model's name and every layer's kept weights.

    Sparse-VD layers contribute ``theta`` masked by their threshold (the weight they use in
    evaluation mode); dense layers their non-zero weights.  ``log_sigma2`` is not stored.

    Parameters
    ----------
    model : LeNet300100 or LeNet5
        Sparse (``sparse=True``) or dense.

    Returns
    -------
    dict
        ``{"format": SPARSE_FORMAT, "model": name, "layers": {layer: {**to_csr(weight), "bias": tensor}}}``.

    Raises
    ------
    TypeError
        If ``model`` is not one of the networks of :mod:`course_lib.models`.
    """
    name = _model_name(model)
    layers = {}
    for lname, m in model.weight_layers():
        weight = m.sparse_weight() if isinstance(m, SVDO_LAYERS) else m.weight
        entry = to_csr(weight)
        entry["bias"] = None if m.bias is None else m.bias.detach().to("cpu", torch.float32).clone()
        layers[lname] = entry
    return {"format": SPARSE_FORMAT, "model": name, "layers": layers}


def save_sparse(model: nn.Module, path: str | os.PathLike) -> int:
    """Write the pruned ``model`` to ``path`` in CSR form; return the file size in bytes.

    The file is a ``torch.save`` archive of :func:`sparse_state` (plain tensors, readable with
    ``torch.load(weights_only=True)``).

    Raises
    ------
    TypeError
        If ``model`` is not one of the networks of :mod:`course_lib.models`.
    """
    state = sparse_state(model)
    path = Path(path)
    torch.save(state, path)
    return path.stat().st_size


def load_sparse(path: str | os.PathLike, device: str | torch.device = "cpu") -> nn.Module:
    """Load a :func:`save_sparse` file as the *dense* network with the pruned weights at zero.

    Parameters
    ----------
    path : path-like
    device : str or torch.device, default "cpu"

    Returns
    -------
    nn.Module
        ``build_model(name, sparse=False)`` in evaluation mode, on ``device``; its outputs
        equal those of the saved sparse-VD network in evaluation mode.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is unreadable, not a sparse file, of another format than
        :data:`SPARSE_FORMAT`, or does not fit the network it names.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file; write one with save_sparse(model, path).")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a damaged file
        raise ValueError(
            f"{path}: not a readable torch file ({type(exc).__name__}: {exc}); "
            "write it again with save_sparse(model, path)."
        ) from exc
    if not isinstance(state, dict) or "format" not in state or not isinstance(state.get("layers"), dict):
        raise ValueError(
            f"{path}: not a course_lib sparse file of format {SPARSE_FORMAT}; "
            "write it with course_lib.storage.save_sparse(model, path)."
        )
    fmt = state["format"]
    if type(fmt) is not int or fmt != SPARSE_FORMAT:
        raise ValueError(
            f"{path}: a course_lib sparse file of format {fmt!r}, but this course_lib reads format "
            f"{SPARSE_FORMAT} only; load it with the course_lib that wrote it, or write it again "
            "with course_lib.storage.save_sparse(model, path)."
        )
    if state.get("model") not in MODELS:
        raise ValueError(f"{path}: unknown model {state.get('model')!r}; expected one of {sorted(MODELS)}.")
    net = build_model(state["model"], sparse=False)
    layers = dict(net.weight_layers())
    if set(layers) != set(state["layers"]):
        raise ValueError(
            f"{path}: layers {sorted(state['layers'])} do not match "
            f"{state['model']}'s {sorted(layers)}; the file is damaged."
        )
    with torch.no_grad():
        for lname, entry in state["layers"].items():
            m = layers[lname]
            weight = from_csr(entry)
            if weight.shape != m.weight.shape:
                raise ValueError(
                    f"{path}: layer {lname} has shape {tuple(weight.shape)} but "
                    f"{state['model']} expects {tuple(m.weight.shape)}."
                )
            if (entry.get("bias") is None) != (m.bias is None):
                raise ValueError(
                    f"{path}: layer {lname}'s bias is missing or unexpected; "
                    "the file is damaged, write it again with save_sparse."
                )
            m.weight.copy_(weight)
            if m.bias is not None:
                m.bias.copy_(entry["bias"])
    return net.to(device).eval()
