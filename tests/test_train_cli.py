"""Tests of course_lib.train_cli: bad flags, errors, and a run killed with SIGKILL then resumed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from course_lib.data import MNISTError, ensure_mnist
from course_lib.train import train
from course_lib.train_cli import main


def _mnist_available() -> bool:
    try:
        ensure_mnist(download_missing=False)
        return True
    except MNISTError:
        return False


needs_mnist = pytest.mark.skipif(not _mnist_available(), reason="MNIST files not present")


@pytest.mark.parametrize(
    "argv, match",
    [
        (["--model", "lenet7"], "invalid choice: 'lenet7'"),
        (["--model", "lenet5", "--recipe", "slow"], "invalid choice: 'slow'"),
        (["--model", "lenet5", "--epochs", "0"], "--epochs must be a positive integer, got 0"),
        (["--model", "lenet5", "--epochs", "two"], "--epochs must be a positive integer, got 'two'"),
        (["--model", "lenet5", "--limit", "-3"], "--limit must be a positive integer, got -3"),
        (["--model", "lenet5", "--device", "tpu"], "not a torch device name"),
        (["--model", "lenet5", "--threads", "0"], "--threads must be a positive integer, got 0"),
        ([], "the following arguments are required: --model"),
    ],
)
def test_cli_bad_flags(argv, match, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert match in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_cli_unavailable_device(capsys):
    with pytest.raises(SystemExit):
        main(["--model", "lenet5", "--device", "cuda"])
    assert "sees no CUDA GPU" in capsys.readouterr().err


def test_cli_corrupt_checkpoint(tmp_path, capsys):
    (tmp_path / "checkpoint.pt").write_bytes(b"\x00" * 10)
    assert main(["--model", "lenet300", "--out", str(tmp_path), "--resume", "--quiet"]) == 2
    assert "corrupt or unreadable" in capsys.readouterr().err


def test_cli_bad_seed_is_an_error_of_train(tmp_path, capsys):
    assert main(["--model", "lenet300", "--seed", "-1", "--out", str(tmp_path), "--quiet"]) == 2
    assert "seed must be a non-negative integer, got -1" in capsys.readouterr().err


def test_python_m_course_lib_train_is_this_command_line():
    done = subprocess.run(
        [sys.executable, "-m", "course_lib.train", "--help"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0 and "--model" in done.stdout and "--resume" in done.stdout
    assert done.stdout.startswith("usage: python -m course_lib.train")


# --- the CLI, end to end, with a real kill -9 ------------------------------------------


def _cli(out, *extra):
    return [
        sys.executable,
        "-m",
        "course_lib.train",
        "--model",
        "lenet300",
        "--epochs",
        "3",
        "--limit",
        "2000",
        "--device",
        "cpu",
        "--threads",
        "1",
        "--quiet",
        "--out",
        str(out),
        *extra,
    ]


@needs_mnist
def test_cli_sigkill_then_resume_matches_uninterrupted_run(tmp_path):
    # The uninterrupted reference runs in this process, with the CLI's settings (one thread).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _, full = train("lenet300", epochs=3, limit=2000, device="cpu", progress=False)
    finally:
        torch.set_num_threads(threads)
    env = dict(os.environ)

    ckpt = tmp_path / "cut" / "checkpoint.pt"
    proc = subprocess.Popen(
        _cli(tmp_path / "cut"), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 300
    while not ckpt.exists() and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (tmp_path / "cut" / "metrics.json").exists()  # it really died mid-run
    done = subprocess.run(
        _cli(tmp_path / "cut", "--resume"), env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    resumed = json.loads((tmp_path / "cut" / "metrics.json").read_text())
    for key in ("test_error", "compression", "layer_sparsity", "epochs"):
        assert resumed[key] == full[key], key
    assert [h["train_ce"] for h in resumed["history"]] == [h["train_ce"] for h in full["history"]]
