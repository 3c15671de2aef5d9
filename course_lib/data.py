"""MNIST, verified: find, download and parse the four canonical IDX files.

Where the files are looked for, in order:

1. ``data_dir`` if given (a folder holding the four ``*-ubyte.gz`` files),
2. ``$COURSE_DATA_DIR/mnist``,
3. the default folder: ``data/mnist`` in the course repository when ``course_lib`` runs from
   a checkout (``pip install -e .``), else -- ``course_lib`` installed from a package into
   site-packages -- the user's cache ``$XDG_CACHE_HOME/course_lib/mnist`` (``~/.cache/course_lib/mnist``).

If none has them, they are downloaded (with a progress bar) from public mirrors into
``data_dir`` or the default folder.  Every file is checked against its SHA-256 before it is
parsed, and the IDX header is validated.  A missing, truncated or corrupted file raises
:class:`MNISTError` naming the file, what is wrong and how to fix it; nothing is ever
silently replaced.

Then the tensors a network trains on: :func:`mnist_tensors` (on a device, optionally
standardized), :func:`center_inputs` (minus the mean training image, the paper code's
preprocessing) and :func:`batches` (the index tensors of a seeded random order).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import struct
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from course_lib import validation as V

#: Splits and their (images, labels) files.
SPLITS: dict[str, tuple[str, str]] = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}

#: SHA-256 of the canonical gzip files (the same as ``shared/data/mnist/SHA256SUMS``).
SHA256: dict[str, str] = {
    "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}

#: Sizes in bytes of the canonical gzip files (a shorter file is reported as truncated).
SIZES: dict[str, int] = {
    "train-images-idx3-ubyte.gz": 9912422,
    "train-labels-idx1-ubyte.gz": 28881,
    "t10k-images-idx3-ubyte.gz": 1648877,
    "t10k-labels-idx1-ubyte.gz": 4542,
}

#: Public mirrors tried in order; each serves the four files under these names.
MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)

#: Mean and standard deviation of the training pixels scaled to [0, 1].
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081

#: Environment variable naming a data folder that holds ``mnist/``.
DATA_ENV = "COURSE_DATA_DIR"


def default_mnist_dir(package_parent: str | os.PathLike | None = None) -> Path:
    """Where MNIST goes by default: the checkout's ``data/mnist``, else the user's cache.

    Parameters
    ----------
    package_parent : path-like, optional
        The folder holding the ``course_lib`` package (default: where it is imported from). It is
        a course checkout when it holds the book's ``_config.yml``; a site-packages folder is not,
        and data is never written into it.
    """
    parent = Path(package_parent) if package_parent is not None else Path(__file__).resolve().parents[1]
    if (parent / "_config.yml").is_file():
        return parent / "data" / "mnist"
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache).expanduser() / "course_lib" / "mnist"


_REPO_DATA = default_mnist_dir()


class MNISTError(RuntimeError):
    """A missing, truncated, corrupted or malformed MNIST file (the message says which and why)."""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def candidate_dirs(data_dir: str | os.PathLike | None = None) -> list[Path]:
    """The folders searched for the MNIST files, in order (see the module docstring)."""
    dirs = []
    if data_dir is not None:
        dirs.append(Path(data_dir).expanduser())
    env = os.environ.get(DATA_ENV)
    if env:
        dirs.append(Path(env).expanduser() / "mnist")
    dirs.append(_REPO_DATA)
    return dirs


def verify_file(path: str | os.PathLike) -> Path:
    """Check one MNIST gzip file's size and SHA-256 against the canonical values.

    Raises
    ------
    MNISTError
        If the file is missing, truncated or its checksum differs.
    """
    path = Path(path)
    name = path.name
    if name not in SHA256:
        raise MNISTError(f"{path}: not one of the MNIST files {sorted(SHA256)}.")
    fix = (
        f"Delete {path} and run load_mnist() again to download a fresh copy, "
        f"or copy a good file there (check it with `sha256sum`, expected {SHA256[name]})."
    )
    if not path.is_file():
        raise MNISTError(f"{path}: file is missing. {fix}")
    size = path.stat().st_size
    if size < SIZES[name]:
        raise MNISTError(f"{path}: file is truncated ({size} of {SIZES[name]} bytes). {fix}")
    digest = _sha256(path)
    if digest != SHA256[name]:
        raise MNISTError(
            f"{path}: file is corrupted (SHA-256 {digest}, expected {SHA256[name]}, size {size} bytes). {fix}"
        )
    return path


def download(name: str, dest_dir: Path, mirrors: tuple[str, ...] = MIRRORS) -> Path:
    """Download one MNIST file into ``dest_dir``, verified before it is kept.

    The file is written to a temporary name and moved into place only when its
    SHA-256 matches, so an interrupted or bad download never leaves a file behind.
    """
    dest_dir.mkdir(parents=True, exist_ok=True)
    errors = []
    for mirror in mirrors:
        url = mirror + name
        fd, tmp = tempfile.mkstemp(prefix=name + ".", suffix=".part", dir=dest_dir)
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=30) as resp:
                total = int(resp.headers.get("Content-Length") or SIZES[name])
                with tqdm(total=total, unit="B", unit_scale=True, desc=f"download {name}") as bar:
                    for chunk in iter(lambda: resp.read(1 << 16), b""):
                        out.write(chunk)
                        bar.update(len(chunk))
            digest = _sha256(Path(tmp))
            if digest != SHA256[name]:
                errors.append(f"{url}: wrong SHA-256 {digest}")
                continue
            final = dest_dir / name
            shutil.move(tmp, final)
            return final
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            errors.append(f"{url}: {exc}")
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
    raise MNISTError(
        f"{dest_dir / name}: file is missing and could not be downloaded "
        f"({'; '.join(errors)}). Fix: connect to the internet and run again, or copy the four "
        f"MNIST files into {dest_dir} (or set ${DATA_ENV} to a folder holding mnist/)."
    )


def ensure_mnist(data_dir: str | os.PathLike | None = None, download_missing: bool = True) -> Path:
    """Return the folder holding all four verified MNIST files, downloading them if needed.

    Parameters
    ----------
    data_dir : path-like, optional
        A folder with the four ``*-ubyte.gz`` files; searched first, and the download
        target when given.
    download_missing : bool, default True
        Download the files when no candidate folder has them.

    Raises
    ------
    MNISTError
        If a found file is truncated or corrupted (it is not replaced), or a missing file
        cannot be downloaded.
    """
    names = [n for pair in SPLITS.values() for n in pair]
    for d in candidate_dirs(data_dir):
        present = [n for n in names if (d / n).is_file()]
        if present:
            # A folder that holds some of the files is *the* folder: verify what is
            # there (never fall through to other data) and fetch only what is missing.
            for n in present:
                verify_file(d / n)
            for n in names:
                if n not in present:
                    if not download_missing:
                        raise MNISTError(
                            f"{d / n}: file is missing and downloads are off. "
                            f"Copy it into {d} or call with download_missing=True."
                        )
                    download(n, d)
            return d
    target = Path(data_dir).expanduser() if data_dir is not None else _REPO_DATA
    if not download_missing:
        raise MNISTError(
            f"MNIST not found in {[str(d) for d in candidate_dirs(data_dir)]} and downloads are off. "
            f"Fix: set ${DATA_ENV} to a folder holding mnist/, or call with download_missing=True."
        )
    for n in names:
        download(n, target)
    return target


def _read_idx(path: Path, magic: int, ndim: int) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise MNISTError(f"{path}: IDX header is incomplete ({len(raw)} bytes).")
    (found,) = struct.unpack(">i", raw[:4])
    if found != magic:
        raise MNISTError(
            f"{path}: wrong magic number {found}, expected {magic} for an IDX file with {ndim} "
            "dimension(s); the file is not the MNIST file its name says. Replace it with the canonical file."
        )
    dims = struct.unpack(">" + "i" * ndim, raw[4 : 4 + 4 * ndim])
    offset = 4 + 4 * ndim
    expected = int(np.prod(dims))
    if len(raw) - offset != expected:
        raise MNISTError(
            f"{path}: header says {dims} ({expected} bytes of data) but {len(raw) - offset} bytes follow."
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=offset).reshape(dims)


def load_mnist(
    split: str = "train", data_dir: str | os.PathLike | None = None, download_missing: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Load an MNIST split as NumPy arrays.

    Parameters
    ----------
    split : {"train", "test"}
        60,000 training or 10,000 test images.
    data_dir : path-like, optional
        Folder with the four gzip files (see :func:`ensure_mnist`).
    download_missing : bool, default True
        Download missing files from the public mirrors.

    Returns
    -------
    images : ndarray of uint8, shape (N, 28, 28)
    labels : ndarray of int64, shape (N,)

    Raises
    ------
    ValueError
        If ``split`` is not one of ``"train"``, ``"test"``.
    MNISTError
        If a file is missing (and cannot be downloaded), truncated, corrupted or malformed.

    Examples
    --------
    >>> x, y = load_mnist("train")
    >>> x.shape, y[:10]
    ((60000, 28, 28), array([5, 0, 4, 1, 9, 2, 1, 3, 1, 4]))
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid splits are {sorted(SPLITS)}.")
    folder = ensure_mnist(data_dir, V.boolean(download_missing, "download_missing"))
    img_name, lab_name = SPLITS[split]
    images = _read_idx(folder / img_name, 2051, 3)
    labels = _read_idx(folder / lab_name, 2049, 1).astype(np.int64)
    if images.shape[1:] != (28, 28):
        raise MNISTError(f"{folder / img_name}: images are {images.shape[1:]}, expected (28, 28).")
    if len(images) != len(labels):
        raise MNISTError(f"{folder}: {len(images)} images but {len(labels)} labels in the {split!r} split.")
    return images.copy(), labels


def mnist_tensors(
    split: str = "train",
    device: str | torch.device = "cpu",
    data_dir: str | os.PathLike | None = None,
    normalize: bool = True,
    limit: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST as float tensors ready for a network, already on ``device``.

    Parameters
    ----------
    split : {"train", "test"}
    device : str or torch.device, default "cpu"
    data_dir : path-like, optional
    normalize : bool, default True
        Scale pixels to [0, 1] and standardize with :data:`MNIST_MEAN`, :data:`MNIST_STD`;
        otherwise only scale to [0, 1].
    limit : int, optional
        Keep only the first ``limit`` examples (quick experiments).

    Returns
    -------
    x : Tensor of float32, shape (N, 1, 28, 28)
    y : Tensor of int64, shape (N,)
    """
    normalize = V.boolean(normalize, "normalize")
    if limit is not None:
        limit = V.positive_int(
            limit, "limit", meaning="examples to keep", hint="use limit >= 1, or None for all"
        )
    images, labels = load_mnist(split, data_dir)
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    x = torch.from_numpy(images).float().div_(255.0).unsqueeze(1)
    if normalize:
        x = (x - MNIST_MEAN) / MNIST_STD
    return x.to(device), torch.from_numpy(labels).to(device)


def center_inputs(x_train: torch.Tensor, x_test: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Subtract the mean training image from both sets (the paper code's preprocessing).

    Returns new tensors; a pixel that is the same in every training image becomes 0 there.

    Raises
    ------
    ValueError
        If the two sets' images differ in shape.
    """
    if x_train.dim() < 2 or x_train.shape[1:] != x_test.shape[1:]:
        raise ValueError(
            f"train and test images must have the same shape per image, got "
            f"{tuple(x_train.shape)} and {tuple(x_test.shape)}."
        )
    mean_image = x_train.mean(0, keepdim=True)
    return x_train - mean_image, x_test - mean_image


def batches(n: int, batch_size: int, generator: torch.Generator, device: torch.device):
    """Yield index tensors of a seeded random permutation of ``range(n)``, on ``device``.

    The permutation is drawn on the CPU with ``generator`` (reproducible on every device)
    and moved to the device once per epoch; each batch is a slice of it (the last one is
    shorter when ``batch_size`` does not divide ``n``).

    Raises
    ------
    TypeError, ValueError
        (at the first batch) ``n`` is not an integer >= 0 or ``batch_size`` not one >= 1.
    """
    n = V.nonnegative_int(n, "n", meaning="examples")
    batch_size = V.positive_int(batch_size, "batch_size")
    perm = torch.randperm(n, generator=generator).to(device)
    for start in range(0, n, batch_size):
        yield perm[start : start + batch_size]


def main() -> None:
    """``python -m course_lib.data``: make sure MNIST is present and verified."""
    folder = ensure_mnist()
    x, y = load_mnist("train")
    xt, _ = load_mnist("test")
    print(f"MNIST verified in {folder}: train {x.shape}, test {xt.shape}, first labels {y[:10]}")


if __name__ == "__main__":
    main()
