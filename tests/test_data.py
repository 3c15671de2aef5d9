"""Tests for course_lib.data: finding, verifying and parsing MNIST; every failure mode."""

from __future__ import annotations

import gzip
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from course_lib import data
from course_lib.data import MNISTError


def test_load_train_matches_canonical(mnist_dir):
    x, y = data.load_mnist("train", data_dir=mnist_dir)
    assert x.shape == (60000, 28, 28) and x.dtype == np.uint8
    assert y.shape == (60000,) and y.dtype == np.int64
    assert y[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert abs(x.mean() / 255 - 0.1306604762738429) < 1e-12
    assert np.bincount(y).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


def test_load_test_split(mnist_dir):
    x, y = data.load_mnist("test", data_dir=mnist_dir)
    assert x.shape == (10000, 28, 28)
    assert np.bincount(y).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_mnist_tensors_normalized_on_device(mnist_dir):
    x, y = data.mnist_tensors("test", device="cpu", data_dir=mnist_dir, limit=500)
    assert x.shape == (500, 1, 28, 28) and x.dtype == torch.float32
    assert y.dtype == torch.int64 and y.shape == (500,)
    raw, _ = data.mnist_tensors("test", data_dir=mnist_dir, normalize=False, limit=500)
    assert 0.0 <= raw.min() and raw.max() <= 1.0
    assert torch.allclose(x, (raw - data.MNIST_MEAN) / data.MNIST_STD)


def test_search_order_prefers_data_dir_then_env(tmp_path, monkeypatch):
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path / "envdata"))
    dirs = data.candidate_dirs(tmp_path / "mine")
    assert dirs[0] == tmp_path / "mine"
    assert dirs[1] == tmp_path / "envdata" / "mnist"
    assert dirs[2].parts[-2:] == ("data", "mnist")


def test_default_folder_is_the_checkout_or_the_user_cache(tmp_path, monkeypatch):
    """A checkout (it holds _config.yml) keeps data/mnist; an installed package never writes
    into site-packages but into the user's cache."""
    checkout = tmp_path / "course"
    checkout.mkdir()
    (checkout / "_config.yml").write_text("title: t\n")
    assert data.default_mnist_dir(checkout) == checkout / "data" / "mnist"
    site = tmp_path / "site-packages"
    site.mkdir()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert data.default_mnist_dir(site) == tmp_path / "cache" / "course_lib" / "mnist"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data.default_mnist_dir(site) == tmp_path / "home" / ".cache" / "course_lib" / "mnist"
    # this repository is a checkout: its data/mnist is the default
    assert data.default_mnist_dir() == Path(data.__file__).resolve().parents[1] / "data" / "mnist"


# ---- bad input -----------------------------------------------------------------------


def test_unknown_split_lists_valid_ones(mnist_dir):
    with pytest.raises(ValueError, match=r"unknown split 'validation'.*\['test', 'train'\]"):
        data.load_mnist("validation", data_dir=mnist_dir)


@pytest.fixture
def copy_of_mnist(mnist_dir, tmp_path) -> Path:
    d = tmp_path / "mnist"
    shutil.copytree(mnist_dir, d)
    return d


def test_truncated_file_is_named_and_not_replaced(copy_of_mnist):
    f = copy_of_mnist / "t10k-labels-idx1-ubyte.gz"
    f.write_bytes(f.read_bytes()[:1000])
    with pytest.raises(
        MNISTError, match=r"t10k-labels-idx1-ubyte\.gz: file is truncated \(1000 of 4542 bytes\).*Delete"
    ):
        data.load_mnist("test", data_dir=copy_of_mnist)
    assert f.stat().st_size == 1000  # never silently replaced


def test_corrupted_file_reports_checksum(copy_of_mnist):
    f = copy_of_mnist / "t10k-labels-idx1-ubyte.gz"
    raw = bytearray(f.read_bytes())
    raw[100] ^= 0xFF
    f.write_bytes(bytes(raw))
    with pytest.raises(
        MNISTError,
        match=r"t10k-labels-idx1-ubyte\.gz: file is corrupted \(SHA-256 [0-9a-f]{64}, expected f7ae60f9",
    ):
        data.load_mnist("test", data_dir=copy_of_mnist)


def test_corrupted_file_in_one_split_blocks_the_other_too(copy_of_mnist):
    # A folder with a bad file is never used, not even partly: the user must fix it.
    f = copy_of_mnist / "train-labels-idx1-ubyte.gz"
    f.write_bytes(b"\x00" * 28881)
    with pytest.raises(MNISTError, match="train-labels-idx1-ubyte.gz: file is corrupted"):
        data.load_mnist("test", data_dir=copy_of_mnist)


def test_missing_file_offline_is_a_clear_error(copy_of_mnist):
    (copy_of_mnist / "t10k-images-idx3-ubyte.gz").unlink()
    with pytest.raises(
        MNISTError, match=r"t10k-images-idx3-ubyte\.gz: file is missing and downloads are off"
    ):
        data.load_mnist("test", data_dir=copy_of_mnist, download_missing=False)


def test_failed_download_names_file_and_fix(copy_of_mnist, monkeypatch):
    (copy_of_mnist / "t10k-images-idx3-ubyte.gz").unlink()
    monkeypatch.setattr(data, "MIRRORS", ("http://127.0.0.1:9/",))
    monkeypatch.setattr(data.download, "__defaults__", (("http://127.0.0.1:9/",),))
    with pytest.raises(
        MNISTError,
        match=r"t10k-images-idx3-ubyte\.gz: file is missing and could not be downloaded.*Fix: connect",
    ):
        data.load_mnist("test", data_dir=copy_of_mnist)
    assert not list(copy_of_mnist.glob("*.part"))  # no half-written file left behind


def test_nothing_found_offline(tmp_path, monkeypatch):
    monkeypatch.delenv(data.DATA_ENV, raising=False)
    monkeypatch.setattr(data, "_REPO_DATA", tmp_path / "repo" / "data" / "mnist")
    with pytest.raises(MNISTError, match=r"MNIST not found in .* downloads are off.*COURSE_DATA_DIR"):
        data.load_mnist("train", data_dir=tmp_path / "empty", download_missing=False)


def test_wrong_magic_number(tmp_path):
    f = tmp_path / "t10k-labels-idx1-ubyte.gz"
    with gzip.open(f, "wb") as g:
        g.write(struct.pack(">ii", 2051, 3) + bytes(3))
    with pytest.raises(MNISTError, match=r"wrong magic number 2051, expected 2049"):
        data._read_idx(f, 2049, 1)


def test_header_length_mismatch(tmp_path):
    f = tmp_path / "t10k-labels-idx1-ubyte.gz"
    with gzip.open(f, "wb") as g:
        g.write(struct.pack(">ii", 2049, 10) + bytes(3))
    with pytest.raises(MNISTError, match=r"header says \(10,\) \(10 bytes of data\) but 3 bytes follow"):
        data._read_idx(f, 2049, 1)


def test_verify_rejects_unknown_file(tmp_path):
    f = tmp_path / "notes.txt"
    f.write_text("hi")
    with pytest.raises(MNISTError, match="not one of the MNIST files"):
        data.verify_file(f)


def test_limit_must_be_positive(mnist_dir):
    with pytest.raises(
        ValueError, match=r"limit \(examples to keep\) must be a positive integer, got 0; use limit >= 1"
    ):
        data.mnist_tensors("test", data_dir=mnist_dir, limit=0)
    # checked before any file is read, so a bad limit fails fast even without the data
    with pytest.raises(TypeError, match=r"limit \(examples to keep\) must be a positive integer, got 2\.5"):
        data.mnist_tensors("test", data_dir="/nonexistent", limit=2.5)
    with pytest.raises(TypeError, match="normalize must be True or False"):
        data.mnist_tensors("test", data_dir="/nonexistent", normalize="yes")
    x, _ = data.mnist_tensors("test", data_dir=mnist_dir, limit=np.int64(3))
    assert x.shape == (3, 1, 28, 28)


def test_center_inputs():
    g = torch.Generator().manual_seed(0)
    x_tr, x_te = torch.rand(50, 1, 4, 4, generator=g), torch.rand(7, 1, 4, 4, generator=g)
    x_tr[:, :, 0, 0] = 0.25  # a pixel that never changes ...
    c_tr, c_te = data.center_inputs(x_tr, x_te)
    assert torch.all(c_tr[:, :, 0, 0] == 0)  # ... is exactly 0 afterwards
    assert torch.allclose(c_tr.mean(0), torch.zeros(1, 4, 4), atol=1e-6)
    assert torch.allclose(c_te, x_te - x_tr.mean(0, keepdim=True))
    assert torch.equal(x_tr[0, 0, 0, 0], torch.tensor(0.25))  # inputs untouched
    with pytest.raises(ValueError, match="same shape per image"):
        data.center_inputs(x_tr, torch.rand(7, 1, 5, 4))


def test_batches_cover_every_index_once_and_are_seeded():
    g = torch.Generator().manual_seed(1)
    parts = list(data.batches(23, 5, g, torch.device("cpu")))
    assert [len(p) for p in parts] == [5, 5, 5, 5, 3]
    assert sorted(torch.cat(parts).tolist()) == list(range(23))
    again = list(data.batches(23, 5, torch.Generator().manual_seed(1), torch.device("cpu")))
    assert all(torch.equal(a, b) for a, b in zip(parts, again))
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0"):
        next(data.batches(23, 0, g, torch.device("cpu")))
    with pytest.raises(TypeError, match=r"n \(examples\) must be a non-negative integer, got 2.5"):
        next(data.batches(2.5, 5, g, torch.device("cpu")))
