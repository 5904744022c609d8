"""Datasets for the notebook series (installed as ``bayeskit.data``).

Small public-domain files ship inside the package (``data/*.csv``, provenance and licence in
``data/README.md``); generators make synthetic sets from an explicit seed.

* :func:`load_co2`: monthly mean atmospheric CO2 at Mauna Loa, 1958-2001 (R&W sec. 5.4.3).
* :func:`load_nile`: annual flow of the Nile at Aswan, 1871-1970 (Durbin & Koopman's example).
* :func:`toy_gap`: a 1-D regression set with a gap in the inputs, for in-between uncertainty.
* :func:`load_flint`: motor-cortex spike features and hand velocity (downloaded with a checksum,
  never shipped), the neural-decoding set of the discriminative Kalman filter.
* :func:`load_digits`: the 1797 8x8 handwritten digits bundled with scikit-learn (shipped as
  ``digits.csv.gz``; scikit-learn is not needed), for VAEs that train in seconds on a CPU.
* :func:`load_mnist`: MNIST or Fashion-MNIST (downloaded with checksums, never shipped), read by
  :func:`read_idx`, a reader for the IDX file format (:mod:`bayeskit.data.mnist`).
"""

from __future__ import annotations

from importlib import resources
from typing import NamedTuple

import numpy as np

from .mnist import FASHION_CLASSES, ImageDataset, load_mnist, read_idx

__all__ = [
    "Dataset",
    "FASHION_CLASSES",
    "ImageDataset",
    "data_path",
    "load_co2",
    "load_digits",
    "load_flint",
    "load_mnist",
    "load_nile",
    "read_idx",
    "toy_gap",
]

# SHA-256 of the shipped data/digits.csv.gz (also in data/README.md; tests check it)
DIGITS_SHA256 = "ad8bdbd5ae0e92f68033108f331b6fae4be0990d250e01d6b959a6bb81e7832c"


class Dataset(NamedTuple):
    """Inputs ``X`` (n, d), targets ``y`` (n,), and a one-line ``description``."""

    X: np.ndarray
    y: np.ndarray
    description: str


def data_path(name: str):
    """Path of a file shipped in the package's data folder."""
    path = resources.files(__name__) / name
    if not path.is_file():
        raise FileNotFoundError(f"bayeskit ships no data file named {name!r}")
    return path


def load_co2() -> Dataset:
    """Monthly mean CO2 (ppm) at Mauna Loa, March 1958 - December 2001: X (521, 1) decimal years.

    Monthly means of the weekly continuous-analyser record that statsmodels ships
    (``statsmodels.datasets.co2``; C. D. Keeling and T. P. Whorf, Scripps Institution of
    Oceanography; public domain). Months with no valid week are absent. Each month is dated
    at its middle (year + (month - 0.5) / 12).
    """
    table = np.loadtxt(data_path("mauna_loa_co2_monthly.csv"), delimiter=",", skiprows=1)
    return Dataset(table[:, :1], table[:, 1], "Mauna Loa monthly mean CO2 (ppm), 1958-2001")


def load_nile() -> Dataset:
    """Annual flow volume of the Nile at Aswan (10^8 m^3), 1871-1970: X (100, 1) years, y (100,).

    The series statsmodels ships (``statsmodels.datasets.nile``; public domain), first analysed
    in Cobb, *The Problem of the Nile: Conditional Solution to a Changepoint Problem*, and the
    running example of Durbin & Koopman, *Time Series Analysis by State Space Methods*.
    """
    table = np.loadtxt(data_path("nile.csv"), delimiter=",", skiprows=1)
    return Dataset(table[:, :1], table[:, 1], "Nile annual flow at Aswan (1e8 m^3), 1871-1970")


def load_digits(*, scaled: bool = True) -> Dataset:
    """The 8x8 handwritten digits: X (1797, 64) pixel intensities, y (1797,) int64 labels 0-9.

    The copy scikit-learn bundles (``sklearn.datasets.load_digits``, same rows in the same
    order): the test set of the UCI *Optical Recognition of Handwritten Digits* data (E.
    Alpaydin and C. Kaynak, 1998), each 32x32 bitmap reduced to an 8x8 grid of counts of "on"
    pixels in 4x4 blocks (integers 0-16). ``scaled=True`` (default) divides by 16, giving
    float64 values in [0, 1] (what a Bernoulli VAE decoder models); ``scaled=False`` returns
    the counts. Images: ``X.reshape(-1, 8, 8)``. Shipped as ``digits.csv.gz`` (provenance in
    ``data/README.md``); reading it does not need scikit-learn.
    """
    table = np.loadtxt(data_path("digits.csv.gz"), delimiter=",", skiprows=1, dtype=np.int64)
    X = table[:, :64].astype(np.float64)
    if scaled:
        X = X / 16.0
    unit = "in [0, 1] (counts / 16)" if scaled else "counts 0-16"
    return Dataset(X, table[:, 64], f"8x8 handwritten digits (UCI / scikit-learn), 1797 images, pixels {unit}")


def load_flint(data_dir=None) -> Dataset:
    """Neural decoding data, Flint et al. (2012) run 1: X (7792, 10), y (7792, 2).

    X: the first 10 principal components of binned spike counts (100 ms bins) from motor
    cortex; y: the hand velocity in the same bins (the state a decoder tracks). As
    preprocessed for *A Discriminative Approach to Bayesian Filtering with Applications to
    Human Neural Decoding* (repository burkh4rt/DKF-implementations, MIT licence). Not shipped:
    downloaded once with SHA-256 checks into ``data_dir`` (default ``$BAYESKIT_DATA_DIR`` or the
    user cache); a folder already holding verified copies is used offline.
    """
    from . import _download as dl

    folder = dl.data_dir(data_dir, "flint")
    paths = {name: dl.fetch(name, base_url=dl.FLINT_URL, registry=dl.FLINT_REGISTRY, folder=folder)
             for name in ("x.csv", "z.csv")}
    X = np.loadtxt(paths["x.csv"], delimiter=",")
    y = np.loadtxt(paths["z.csv"], delimiter=",")
    return Dataset(X, y, "Flint 2012 run 1: 10 spike-count principal components -> 2-D hand velocity")


def toy_gap(
    n: int = 60,
    *,
    seed: int = 0,
    noise_std: float = 0.1,
    gap: tuple[float, float] = (-0.5, 1.0),
    bounds: tuple[float, float] = (-3.0, 3.0),
) -> Dataset:
    """A 1-D regression problem with no data inside ``gap``: y = sin(2x) + x / 2 + noise.

    Inputs are uniform on ``bounds`` minus ``gap``; a good model is confident near the data
    and uncertain inside the gap ("in-between" uncertainty). Returns X (n, 1), y (n,).
    """
    if n < 1:
        raise ValueError(f"n must be >= 1; got {n}")
    if noise_std < 0:
        raise ValueError(f"noise_std must be >= 0; got {noise_std}")
    lo, hi = bounds
    g0, g1 = gap
    if not lo <= g0 < g1 <= hi:
        raise ValueError(f"gap {gap} must lie inside bounds {bounds} with gap[0] < gap[1]")
    rng = np.random.default_rng(seed)
    left, right = g0 - lo, hi - g1
    u = rng.uniform(0.0, left + right, size=n)
    x = np.where(u < left, lo + u, g1 + (u - left))
    x = np.sort(x)
    y = toy_gap_function(x) + noise_std * rng.normal(size=n)
    return Dataset(x[:, None], y, f"sin(2x) + x/2 with a gap on {gap}, noise sd {noise_std}")


def toy_gap_function(x):
    """The noise-free function behind :func:`toy_gap`."""
    x = np.asarray(x)
    return np.sin(2.0 * x) + 0.5 * x
