"""Tests of course_lib.ood: rotated digits and noise images."""

from __future__ import annotations

import pytest
import torch

from course_lib.data import MNIST_MEAN, MNIST_STD
from course_lib.ood import noise_images, rotate_images


def test_rotation_by_90_degrees_is_counter_clockwise():
    x = torch.zeros(1, 1, 5, 5)
    x[0, 0, 0, 2] = 1.0  # top centre
    r = rotate_images(x, 90.0)
    expected = torch.zeros(1, 1, 5, 5)
    expected[0, 0, 2, 0] = 1.0  # left centre
    torch.testing.assert_close(r, expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(rotate_images(x, -90.0)[0, 0, 2, 4], torch.tensor(1.0))


def test_rotation_by_0_and_360_degrees_is_the_identity():
    x = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(rotate_images(x, 0.0), x, atol=1e-5, rtol=0)
    torch.testing.assert_close(rotate_images(x, 360.0), x, atol=1e-5, rtol=0)


def test_rotation_fills_the_corners_with_the_background():
    bg = -MNIST_MEAN / MNIST_STD
    x = torch.full((1, 1, 28, 28), 2.0)
    r = rotate_images(x, 45.0, background=bg)
    assert r[0, 0, 0, 0] == pytest.approx(bg, abs=1e-6)  # a corner comes from outside
    assert r[0, 0, 14, 14] == pytest.approx(2.0, abs=1e-6)  # the centre stays
    blank = torch.full((2, 1, 28, 28), bg)
    torch.testing.assert_close(rotate_images(blank, 30.0, background=bg), blank)


def test_rotation_bad_input():
    with pytest.raises(ValueError, match=r"\(N, C, H, W\).*unsqueeze\(1\)"):
        rotate_images(torch.zeros(2, 28, 28), 10.0)
    with pytest.raises(ValueError, match="floating-point"):
        rotate_images(torch.zeros(2, 1, 28, 28, dtype=torch.uint8), 10.0)
    with pytest.raises(ValueError, match=r"angle \(degrees, counter-clockwise\) must be a finite number"):
        rotate_images(torch.zeros(2, 1, 28, 28), float("nan"))
    with pytest.raises(TypeError, match="background .* must be a finite number"):
        rotate_images(torch.zeros(2, 1, 28, 28), 10.0, background="black")


def test_noise_images_are_uniform_pixels_standardised_and_seeded():
    x = noise_images(50, seed=2)
    assert x.shape == (50, 1, 28, 28) and x.dtype == torch.float32
    raw = x * MNIST_STD + MNIST_MEAN
    assert raw.min() >= -1e-6 and raw.max() <= 1 + 1e-6
    assert raw.mean().item() == pytest.approx(0.5, abs=0.01)
    torch.testing.assert_close(x, noise_images(50, seed=2))
    assert not torch.equal(x, noise_images(50, seed=3))
    torch.testing.assert_close(noise_images(5, seed=2, normalize=False), raw[:5])
    with pytest.raises(ValueError, match=r"n \(the number of images\) must be a positive integer"):
        noise_images(0)
    with pytest.raises(TypeError, match="n .* must be a positive integer"):
        noise_images(2.0)
