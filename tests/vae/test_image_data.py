"""The shipped 8x8 digits, the IDX reader, and the MNIST loader offline from a verified folder."""

import gzip
import hashlib
import struct
import sys

import numpy as np
import pooch
import pytest
from bayeskit.data import load_digits, load_mnist, read_idx
from bayeskit.data import mnist as mnist_module

from bayeskit import data as bdata


def idx_bytes(array: np.ndarray, type_code: int) -> bytes:
    """The IDX encoding written out by hand from the format's description (big-endian)."""
    big = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}[type_code]
    header = bytes([0, 0, type_code, array.ndim]) + b"".join(struct.pack(">I", s) for s in array.shape)
    return header + np.ascontiguousarray(array, dtype=big).tobytes()


def test_digits_file_is_the_documented_one_and_loads_without_sklearn():
    raw = bdata.data_path("digits.csv.gz").read_bytes()
    assert hashlib.sha256(raw).hexdigest() == bdata.DIGITS_SHA256
    d = load_digits()
    assert d.X.shape == (1797, 64) and d.y.shape == (1797,) and d.y.dtype == np.int64
    assert d.X.min() == 0.0 and d.X.max() == 1.0
    assert np.bincount(d.y).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    counts = load_digits(scaled=False).X
    np.testing.assert_array_equal(counts / 16.0, d.X)
    assert int(counts.sum()) == 561718


def test_digits_match_scikit_learn():
    sk = pytest.importorskip("sklearn.datasets")
    ref = sk.load_digits()
    d = load_digits(scaled=False)
    np.testing.assert_array_equal(d.X, ref.data)
    np.testing.assert_array_equal(d.y, ref.target)


def test_loading_digits_does_not_import_sklearn():
    import subprocess

    code = "import sys; from bayeskit.data import load_digits; load_digits(); print('sklearn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("type_code,dtype", [(0x08, np.uint8), (0x09, np.int8), (0x0B, np.int16),
                                             (0x0C, np.int32), (0x0D, np.float32), (0x0E, np.float64)])
def test_idx_round_trip_every_element_type(tmp_path, type_code, dtype):
    rng = np.random.default_rng(type_code)
    values = rng.integers(-100, 100, size=(3, 4, 5)) if np.issubdtype(dtype, np.signedinteger) else rng.integers(0, 255, size=(3, 4, 5))
    array = values.astype(dtype) if np.issubdtype(dtype, np.integer) else rng.normal(size=(3, 4, 5)).astype(dtype)
    raw = idx_bytes(array, type_code)
    plain = tmp_path / "a.idx"
    plain.write_bytes(raw)
    zipped = tmp_path / "a.idx.gz"
    zipped.write_bytes(gzip.compress(raw))
    for source in (plain, zipped, raw):
        back = read_idx(source)
        assert back.dtype == np.dtype(dtype) and back.dtype.byteorder in ("=", "|")
        np.testing.assert_array_equal(back, array)
    assert read_idx(idx_bytes(np.arange(7, dtype=np.uint8), 0x08)).tolist() == list(range(7))


def test_idx_errors():
    good = idx_bytes(np.zeros((2, 3), np.uint8), 0x08)
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(b"\x01" + good[1:])
    with pytest.raises(ValueError, match="unknown IDX element type"):
        read_idx(good[:2] + b"\x07" + good[3:])
    with pytest.raises(ValueError, match="truncated"):
        read_idx(good[:-1])
    with pytest.raises(ValueError, match="trailing bytes"):
        read_idx(good + b"\x00")
    with pytest.raises(ValueError, match="header"):
        read_idx(good[:6])
    with pytest.raises(ValueError, match="gzip"):
        read_idx(gzip.compress(good)[:-8])
    with pytest.raises(FileNotFoundError):
        read_idx("/nonexistent/file.idx")


def _fake_mnist_folder(folder, n_train=5, n_test=3):
    """Tiny files in the MNIST layout; returns their registry (name -> sha256)."""
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte.gz": (rng.integers(0, 256, (n_train, 28, 28)).astype(np.uint8), 0x08),
        "train-labels-idx1-ubyte.gz": (rng.integers(0, 10, n_train).astype(np.uint8), 0x08),
        "t10k-images-idx3-ubyte.gz": (rng.integers(0, 256, (n_test, 28, 28)).astype(np.uint8), 0x08),
        "t10k-labels-idx1-ubyte.gz": (rng.integers(0, 10, n_test).astype(np.uint8), 0x08),
    }
    folder.mkdir(parents=True, exist_ok=True)
    registry = {}
    for name, (a, code) in arrays.items():
        blob = gzip.compress(idx_bytes(a, code), mtime=0)
        (folder / name).write_bytes(blob)
        registry[name] = "sha256:" + hashlib.sha256(blob).hexdigest()
    return registry, {k: v[0] for k, v in arrays.items()}


def test_mnist_loads_offline_from_a_verified_folder(tmp_path, monkeypatch):
    registry, arrays = _fake_mnist_folder(tmp_path / "m")

    def no_network(*args, **kwargs):
        raise AssertionError("a verified local copy must not be downloaded again")

    monkeypatch.setattr(pooch, "retrieve", no_network)
    monkeypatch.setitem(mnist_module.MNIST_FILES, "mnist", (("https://example.invalid/",), registry))
    d = load_mnist(tmp_path / "m")
    assert d.x_train.shape == (5, 784) and d.x_test.shape == (3, 784) and d.image_shape == (28, 28)
    assert d.x_train.dtype == np.float32 and d.y_train.dtype == np.int64
    np.testing.assert_allclose(d.x_train.reshape(-1, 28, 28) * 255, arrays["train-images-idx3-ubyte.gz"], atol=1e-4)
    np.testing.assert_array_equal(d.y_test, arrays["t10k-labels-idx1-ubyte.gz"])


def test_mnist_refuses_a_corrupted_file_and_reports_no_network(tmp_path, monkeypatch):
    registry, _ = _fake_mnist_folder(tmp_path / "m")
    monkeypatch.setitem(mnist_module.MNIST_FILES, "fashion", (("https://a.invalid/", "https://b.invalid/"), registry))

    def serve(corrupt):
        def fake_download(self, url, output_file, pooch_obj, check_only=False):
            data = (tmp_path / "m" / url.rsplit("/", 1)[1]).read_bytes()
            if corrupt:
                data = data[:-4] + b"0000"
            with open(output_file if isinstance(output_file, str) else output_file.name, "wb") as f:
                f.write(data)
        return fake_download

    monkeypatch.setattr(pooch.HTTPDownloader, "__call__", serve(corrupt=False))
    d = load_mnist(tmp_path / "fresh", kind="fashion")  # downloaded (from the fake server) and verified
    assert d.x_train.shape == (5, 784) and (tmp_path / "fresh" / "t10k-images-idx3-ubyte.gz").is_file()

    monkeypatch.setattr(pooch.HTTPDownloader, "__call__", serve(corrupt=True))
    with pytest.raises(ValueError, match="checksum"):
        load_mnist(tmp_path / "other", kind="fashion")

    def offline(self, url, output_file, pooch_obj, check_only=False):
        raise ConnectionError("no route to host")

    monkeypatch.setattr(pooch.HTTPDownloader, "__call__", offline)
    with pytest.raises(OSError, match="no network"):
        load_mnist(tmp_path / "third", kind="fashion")
    with pytest.raises(ValueError, match="kind"):
        load_mnist(tmp_path, kind="kmnist")


def test_registry_has_sha256_for_every_file():
    for kind, (mirrors, registry) in mnist_module.MNIST_FILES.items():
        assert len(mirrors) >= 2 and len(registry) == 4
        for name, value in registry.items():
            algo, digest = value.split(":")
            assert algo == "sha256" and len(digest) == 64 and int(digest, 16) >= 0, (kind, name)
