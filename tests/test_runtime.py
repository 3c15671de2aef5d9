"""Tests for course_lib.setup: seeding, device choice, figure style."""

from __future__ import annotations

import random

import matplotlib as mpl
import numpy as np
import pytest
import torch

import course_lib
from course_lib import runtime


def test_setup_seeds_everything_and_reports(capsys):
    s = course_lib.setup(seed=123, device="cpu")
    a = (random.random(), np.random.rand(), torch.rand(1).item())
    course_lib.setup(seed=123, device="cpu")
    b = (random.random(), np.random.rand(), torch.rand(1).item())
    assert a == b
    assert s.seed == 123 and s.device == torch.device("cpu")
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"course_lib.setup: seed=123, device=cpu, torch {torch.__version__}"
    assert repr(s) == "Setup(seed=123, device=cpu)"


def test_setup_applies_white_figure_style():
    mpl.rcParams["figure.facecolor"] = "black"
    course_lib.setup(seed=0, device="cpu", verbose=False)
    assert mpl.rcParams["figure.facecolor"] == "white"
    assert mpl.rcParams["savefig.facecolor"] == "white"


def test_auto_device_follows_cuda_availability(monkeypatch):
    monkeypatch.delenv(runtime.DEVICE_ENV, raising=False)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert runtime.pick_device(None).type == expected
    assert runtime.pick_device("auto").type == expected


def test_env_var_overrides_auto(monkeypatch):
    monkeypatch.setenv(runtime.DEVICE_ENV, "cpu")
    assert runtime.pick_device(None) == torch.device("cpu")


# ---- bad input -----------------------------------------------------------------------


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_unavailable_cuda_is_a_clear_error():
    with pytest.raises(ValueError, match=r"'cuda' was requested but torch .* sees no CUDA GPU.*device='cpu'"):
        course_lib.setup(device="cuda")


def test_unknown_device_name():
    with pytest.raises(ValueError, match="'gpu0' is not a torch device name"):
        runtime.pick_device("gpu0")


@pytest.mark.parametrize(
    "seed, err", [(-1, ValueError), (1.5, TypeError), ("0", TypeError), (True, TypeError)]
)
def test_bad_seed(seed, err):
    with pytest.raises(err, match="seed must be"):
        course_lib.setup(seed=seed, device="cpu")


def test_numpy_seed_is_accepted():
    assert course_lib.setup(seed=np.int64(7), device="cpu", verbose=False).seed == 7


def test_verbose_must_be_a_flag():
    with pytest.raises(TypeError, match="verbose must be True or False, got 0"):
        course_lib.setup(seed=0, device="cpu", verbose=0)


def test_missing_cuda_index_names_the_valid_range(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    with pytest.raises(
        ValueError, match=r"only 2 CUDA device\(s\) exist; use 'cuda:0' \.\. 'cuda:1' or 'auto'"
    ):
        runtime.pick_device("cuda:5")


def test_cpu_name_reads_proc_cpuinfo_or_falls_back(monkeypatch):
    """The benchmarks record where they ran with runtime.cpu_name(): /proc/cpuinfo's model name, else platform's."""
    import builtins
    import io
    import platform

    real_open = builtins.open

    def fake_open(path, *args, **kwargs):
        if path == "/proc/cpuinfo":
            return io.StringIO("processor\t: 0\nmodel name\t: Test CPU 9000\nflags\t: avx2\n")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", fake_open)
    assert runtime.cpu_name() == "Test CPU 9000"

    def no_cpuinfo(path, *args, **kwargs):
        if path == "/proc/cpuinfo":
            raise FileNotFoundError(path)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", no_cpuinfo)
    monkeypatch.setattr(platform, "processor", lambda: "")
    monkeypatch.setattr(platform, "machine", lambda: "arm64")
    assert runtime.cpu_name() == "arm64"
