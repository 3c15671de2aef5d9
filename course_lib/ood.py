"""Unfamiliar inputs for a digit classifier: rotated digits and images of pure noise.

Chapter 10 asks how a network's uncertainty grows away from the training data:

* :func:`rotate_images` turns a batch of images about their centre (bilinear interpolation
  with ``affine_grid`` / ``grid_sample``), a shift that grows with the angle;
* :func:`noise_images` draws images whose pixels are uniform at random, standardised like
  MNIST (:func:`course_lib.data.mnist_tensors`), which look like no digit at all.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from course_lib import validation as V
from course_lib.data import MNIST_MEAN, MNIST_STD


def rotate_images(x: Tensor, angle: float, background: float = 0.0) -> Tensor:
    """Rotate a batch of images counter-clockwise by ``angle`` degrees about their centre.

    Bilinear interpolation with ``torch.nn.functional.affine_grid`` / ``grid_sample``; the
    corners that come from outside the image are filled with ``background``.

    Parameters
    ----------
    x : Tensor, shape (N, C, H, W)
        Images (floating point).
    angle : float
        Degrees, counter-clockwise as the image is shown (row 0 at the top).
    background : float, default 0.0
        Value of the pixels that enter from outside. For standardised MNIST
        (:func:`course_lib.data.mnist_tensors`) the black background is
        ``-MNIST_MEAN / MNIST_STD``.

    Returns
    -------
    Tensor, same shape as ``x``

    Raises
    ------
    ValueError
        If ``x`` is not a floating-point (N, C, H, W) tensor, or ``angle`` / ``background`` is
        NaN or infinite.
    TypeError
        If ``angle`` / ``background`` is not a number.
    """
    if not isinstance(x, Tensor) or x.dim() != 4 or not x.is_floating_point():
        raise ValueError(
            "x must be a floating-point tensor of shape (N, C, H, W), got "
            f"{tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__}; add the channel "
            "dimension with x.unsqueeze(1) and convert with x.float()."
        )
    angle = V.finite_float(angle, "angle", meaning="degrees, counter-clockwise")
    background = V.finite_float(background, "background", meaning="the value of the pixels that enter")
    a = math.radians(angle)
    c, s = math.cos(a), math.sin(a)
    # affine_grid maps output coordinates (x right, y down, in [-1, 1]) to input coordinates;
    # sampling the input at R(-angle) of each output point turns the picture by +angle on
    # screen, where y points down -- hence the signs.
    mat = torch.tensor([[c, -s, 0.0], [s, c, 0.0]], dtype=x.dtype, device=x.device)
    grid = F.affine_grid(mat.expand(x.shape[0], 2, 3), list(x.shape), align_corners=False)
    shifted = x - background
    return (
        F.grid_sample(shifted, grid, mode="bilinear", padding_mode="zeros", align_corners=False) + background
    )


def noise_images(n: int, seed: int = 0, normalize: bool = True, device: str | torch.device = "cpu") -> Tensor:
    """``n`` images of pure noise: every pixel uniform on [0, 1], independently.

    Parameters
    ----------
    n : int
        Number of images.
    seed : int, default 0
        Seed of a private generator (the global RNG is not touched).
    normalize : bool, default True
        Standardise like :func:`course_lib.data.mnist_tensors` (``(x - MNIST_MEAN) / MNIST_STD``).
    device : str or torch.device, default "cpu"

    Returns
    -------
    Tensor of float32, shape (n, 1, 28, 28)

    Raises
    ------
    ValueError
        ``n`` below 1 or a negative ``seed``.
    TypeError
        ``n`` or ``seed`` not an integer, ``normalize`` not a bool.
    """
    n = V.positive_int(n, "n", meaning="the number of images")
    gen = torch.Generator().manual_seed(V.nonnegative_int(seed, "seed"))
    x = torch.rand(n, 1, 28, 28, generator=gen)
    if V.boolean(normalize, "normalize"):
        x = (x - MNIST_MEAN) / MNIST_STD
    return x.to(device)
