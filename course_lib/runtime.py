"""Reproducible start of every chapter: seeds, device choice and figure style.

``setup`` is the first call of every notebook.  It

1. seeds Python's ``random``, NumPy's global generator and torch (CPU and CUDA),
2. picks the device: the one asked for, else ``$COURSE_DEVICE``, else ``"cuda"`` when
   torch sees a GPU, else ``"cpu"``,
3. applies the course figure style (:func:`course_lib.plots.apply_style`),

prints one line saying what it chose and returns it.
"""

from __future__ import annotations

import os
import platform
import random
from dataclasses import dataclass

import numpy as np
import torch

from course_lib.plots import apply_style
from course_lib import validation as V

#: Environment variable that overrides the automatic device choice.
DEVICE_ENV = "COURSE_DEVICE"


@dataclass(frozen=True)
class Setup:
    """What :func:`setup` chose.

    Attributes
    ----------
    seed : int
        The seed given to ``random``, NumPy and torch.
    device : torch.device
        The device the chapter should put its tensors and models on.
    """

    seed: int
    device: torch.device

    def __repr__(self) -> str:
        return f"Setup(seed={self.seed}, device={self.device})"

    def _ipython_display_(self) -> None:
        # ``setup`` has already printed this line; do not echo it a second time
        # when ``course_lib.setup(...)`` is the last expression of a notebook cell.
        pass


def cpu_name() -> str:
    """The CPU's model name, for the record of where a run ran.

    Returns
    -------
    str
        The ``model name`` line of ``/proc/cpuinfo`` (Linux), else what :mod:`platform` reports.

    Examples
    --------
    >>> isinstance(cpu_name(), str)
    True
    """
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global generator and torch (all devices).

    Parameters
    ----------
    seed : int
        A non-negative integer.

    Raises
    ------
    TypeError
        If ``seed`` is not an integer.
    ValueError
        If ``seed`` is negative.
    """
    seed = V.nonnegative_int(seed, "seed", hint="pass e.g. seed=0")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """Return the device to compute on.

    Parameters
    ----------
    device : str, torch.device or None
        ``None`` (default) reads ``$COURSE_DEVICE`` and, if that is unset, takes
        ``"cuda"`` when ``torch.cuda.is_available()`` and ``"cpu"`` otherwise.
        ``"auto"`` means the same as ``None``.  Anything else (``"cpu"``, ``"cuda"``,
        ``"cuda:1"``, ``"mps"``) is checked and returned.

    Raises
    ------
    ValueError
        If the name is not a torch device, or the device is not available here;
        the message says what is available.
    """
    if device is None or device == "auto":
        device = os.environ.get(DEVICE_ENV) or None
        if device is None or device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"{device!r} is not a torch device name; use 'cpu', 'cuda', 'cuda:N', 'mps' or 'auto'."
        ) from exc
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device {str(dev)!r} was requested but torch {torch.__version__} sees no CUDA GPU "
                "(torch.cuda.is_available() is False). Use device='cpu' (or 'auto'), or install a "
                "CUDA build of torch on a machine with a GPU."
            )
        n = torch.cuda.device_count()
        if dev.index is not None and dev.index >= n:
            raise ValueError(
                f"device {str(dev)!r} was requested but only {n} CUDA device(s) exist; "
                f"use 'cuda:0' .. 'cuda:{n - 1}' or 'auto'."
            )
    elif dev.type == "mps":
        if not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            raise ValueError("device 'mps' was requested but this machine has no Apple GPU; use 'cpu'.")
    elif dev.type != "cpu":
        raise ValueError(f"device type {dev.type!r} is not supported by the course; use 'cpu' or 'cuda'.")
    return dev


def setup(seed: int = 0, device: str | torch.device | None = None, verbose: bool = True) -> Setup:
    """Seed everything, choose the device and apply the figure style.

    Parameters
    ----------
    seed : int, default 0
        Seed for ``random``, NumPy and torch.
    device : str, torch.device or None, default None
        See :func:`pick_device`; ``None`` chooses automatically.
    verbose : bool, default True
        Print one line saying what was chosen.

    Returns
    -------
    Setup
        The seed and the device.

    Examples
    --------
    >>> import course_lib
    >>> s = course_lib.setup(seed=0, device="cpu")
    course_lib.setup: seed=0, device=cpu, torch 2.13.0+cpu
    >>> s.device
    device(type='cpu')
    """
    seed_everything(seed)
    verbose = V.boolean(verbose, "verbose")
    dev = pick_device(device)
    apply_style()
    if verbose:
        print(f"course_lib.setup: seed={seed}, device={dev}, torch {torch.__version__}")
    return Setup(seed=int(seed), device=dev)
