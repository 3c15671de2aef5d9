"""Shared pytest fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from course_lib import data


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "slow: trains a network (tests/test_grading.py's A4); "
        "make test runs it, pytest -m 'not slow' skips it",
    )


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The folder holding the verified MNIST files (skips when none is available offline)."""
    try:
        return data.ensure_mnist(download_missing=False)
    except data.MNISTError as exc:  # pragma: no cover - depends on the machine
        if os.environ.get("CI"):
            raise
        pytest.skip(f"MNIST not available offline: {exc}")


@pytest.fixture(scope="module")
def tiny_data():
    """MNIST-shaped synthetic data for the trainer's tests: the label is the brightest quadrant.

    ``(x_train, y_train, x_test, y_test)``, 400 + 200 images of 4 classes (learnable in an epoch).
    """
    g = torch.Generator().manual_seed(0)
    x = torch.randn(600, 1, 28, 28, generator=g) * 0.3
    y = torch.randint(0, 4, (600,), generator=g)
    for k in range(4):
        r, c = divmod(k, 2)
        x[y == k, :, 14 * r : 14 * r + 14, 14 * c : 14 * c + 14] += 1.0
    return x[:400], y[:400], x[400:], y[400:]
