"""Shared pytest fixtures."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from course_lib import data


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: trains a network (tests/test_grading.py's A4); "
                            "make test runs it, pytest -m 'not slow' skips it")


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The folder holding the verified MNIST files (skips when none is available offline)."""
    try:
        return data.ensure_mnist(download_missing=False)
    except data.MNISTError as exc:  # pragma: no cover - depends on the machine
        if os.environ.get("CI"):
            raise
        pytest.skip(f"MNIST not available offline: {exc}")
