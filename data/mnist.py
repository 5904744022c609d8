"""MNIST and Fashion-MNIST: checksummed downloads and a reader for the IDX file format.

The IDX format (described on the MNIST page of Y. LeCun, C. Cortes and C. J. C. Burges) is a
header and a raw array, big-endian::

    bytes 0-1   0x00 0x00
    byte  2     element type: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64
    byte  3     number of dimensions k
    4k bytes    the k sizes, each a big-endian uint32
    then        prod(sizes) elements, big-endian, C order

MNIST images are ``idx3`` (n, 28, 28) uint8 and labels ``idx1`` (n,) uint8. The files are
distributed gzipped; :func:`read_idx` reads plain or gzipped files (it looks at the first bytes,
not the name).

Files are never shipped: :func:`load_mnist` downloads them once with SHA-256 checks (pooch,
through :mod:`bayeskit.data._download`), trying each mirror in turn, into ``data_dir`` (default
``$BAYESKIT_DATA_DIR/<kind>`` or the user cache); a folder that already holds verified copies is
used without any network access.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path
from typing import NamedTuple

import numpy as np

__all__ = ["ImageDataset", "MNIST_FILES", "load_mnist", "read_idx"]

_IDX_TYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

# name -> (mirrors, {file: sha256}). MNIST: the Google Cloud mirror TensorFlow uses and the S3
# mirror torchvision uses (the original yann.lecun.com page no longer serves reliably). Fashion-
# MNIST: the files in the zalandoresearch/fashion-mnist repository and its S3 website.
MNIST_FILES = {
    "mnist": (
        ("https://storage.googleapis.com/cvdf-datasets/mnist/",
         "https://ossci-datasets.s3.amazonaws.com/mnist/"),
        {
            "train-images-idx3-ubyte.gz": "sha256:440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            "train-labels-idx1-ubyte.gz": "sha256:3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            "t10k-images-idx3-ubyte.gz": "sha256:8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            "t10k-labels-idx1-ubyte.gz": "sha256:f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        },
    ),
    "fashion": (
        ("https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
         "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"),
        {
            "train-images-idx3-ubyte.gz": "sha256:3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
            "train-labels-idx1-ubyte.gz": "sha256:a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
            "t10k-images-idx3-ubyte.gz": "sha256:346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
            "t10k-labels-idx1-ubyte.gz": "sha256:67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
        },
    ),
}
_FOLDERS = {"mnist": "mnist", "fashion": "fashion-mnist"}
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


class ImageDataset(NamedTuple):
    """Train and test images, flattened, and their labels.

    x_train (n, h*w) and x_test (m, h*w): float32 pixel intensities in [0, 1] (the stored
    bytes / 255); reshape with ``x.reshape(-1, h, w)``. y_train (n,), y_test (m,): int64
    class labels. ``image_shape``: (h, w). ``description``: one line.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    image_shape: tuple[int, int]
    description: str


def read_idx(source: str | os.PathLike | bytes) -> np.ndarray:
    """Read an IDX array (plain or gzipped) from a path or from bytes; returns it in native byte order.

    Raises ``ValueError`` for anything that is not a complete IDX file: a bad magic number, an
    unknown element type, a truncated header or body, or trailing bytes.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        raw, where = bytes(source), "the given bytes"
    else:
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"no IDX file at {path}")
        raw, where = path.read_bytes(), str(path)
    if raw[:2] == b"\x1f\x8b":  # gzip magic
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as err:
            raise ValueError(f"{where}: a corrupt or truncated gzip stream ({err})") from None
    if len(raw) < 4:
        raise ValueError(f"{where}: too short for an IDX header ({len(raw)} bytes)")
    if raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{where}: not an IDX file (the first two bytes must be 0; got {raw[0]:#04x} {raw[1]:#04x})")
    dtype = _IDX_TYPES.get(raw[2])
    if dtype is None:
        raise ValueError(f"{where}: unknown IDX element type {raw[2]:#04x} (expected one of "
                         f"{', '.join(f'{t:#04x}' for t in _IDX_TYPES)})")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{where}: truncated IDX header ({ndim} dimensions need {header} bytes; got {len(raw)})")
    shape = tuple(int(s) for s in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    body = len(raw) - header
    if body != expected:
        problem = "truncated" if body < expected else "has trailing bytes"
        raise ValueError(f"{where}: IDX body {problem}: shape {shape} of {dtype.name} needs {expected} bytes; got {body}")
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="))


def _fetch(name: str, mirrors, registry, folder: Path) -> Path:
    from . import _download as dl

    errors = []
    for base in mirrors:
        try:
            return dl.fetch(name, base_url=base, registry=registry, folder=folder)
        except Exception as err:  # network failure or a checksum mismatch: try the next mirror
            errors.append((base, err))
    detail = "; ".join(f"{base}: {type(err).__name__}: {err}" for base, err in errors)
    if any(isinstance(err, ValueError) for _, err in errors):
        raise ValueError(f"could not get a verified copy of {name} (checksum): {detail}")
    raise OSError(
        f"could not download {name} (no network?): {detail}. Put verified copies of the files in {folder} "
        "(or set BAYESKIT_DATA_DIR) to load them offline."
    )


def load_mnist(data_dir: str | os.PathLike | None = None, kind: str = "mnist") -> ImageDataset:
    """MNIST (``kind="mnist"``) or Fashion-MNIST (``kind="fashion"``): 60,000 + 10,000 28x28 images.

    MNIST: Y. LeCun, C. Cortes and C. J. C. Burges, *The MNIST database of handwritten digits*;
    Fashion-MNIST: H. Xiao, K. Rasul and R. Vollgraf, *Fashion-MNIST: a Novel Image Dataset for
    Benchmarking Machine Learning Algorithms* (labels: :data:`FASHION_CLASSES`). Downloaded
    once into ``data_dir`` (default ``$BAYESKIT_DATA_DIR/mnist`` or ``.../fashion-mnist``, else
    the user cache) with SHA-256 checks; a folder holding verified copies is used offline.
    Returns an :class:`ImageDataset` (images flattened to (n, 784), float32 in [0, 1]).
    """
    if kind not in MNIST_FILES:
        raise ValueError(f"kind must be one of {tuple(MNIST_FILES)}; got {kind!r}")
    from . import _download as dl

    folder = dl.data_dir(data_dir, _FOLDERS[kind])
    mirrors, registry = MNIST_FILES[kind]
    arrays = {name: read_idx(_fetch(name, mirrors, registry, folder)) for name in registry}
    x_train = arrays["train-images-idx3-ubyte.gz"]
    x_test = arrays["t10k-images-idx3-ubyte.gz"]
    y_train = arrays["train-labels-idx1-ubyte.gz"].astype(np.int64)
    y_test = arrays["t10k-labels-idx1-ubyte.gz"].astype(np.int64)
    for xs, ys, split in ((x_train, y_train, "train"), (x_test, y_test, "test")):
        if xs.ndim != 3 or ys.ndim != 1 or xs.shape[0] != ys.shape[0]:
            raise ValueError(f"{kind} {split} files disagree: images {xs.shape}, labels {ys.shape}")
    h, w = x_train.shape[1:]
    name = "MNIST handwritten digits" if kind == "mnist" else "Fashion-MNIST clothing images"
    return ImageDataset(
        (x_train.reshape(len(x_train), -1) / np.float32(255)).astype(np.float32),
        y_train,
        (x_test.reshape(len(x_test), -1) / np.float32(255)).astype(np.float32),
        y_test,
        (int(h), int(w)),
        f"{name}: {len(x_train)} train + {len(x_test)} test {h}x{w} images, pixels in [0, 1]",
    )
