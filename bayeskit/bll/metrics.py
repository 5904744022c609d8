"""Scores for predictive distributions: likelihoods, calibration and out-of-distribution detection.

These are the numbers the last-layer comparisons report (MAP, Laplace, MC dropout, deep
ensembles, VBLL). All functions take NumPy or JAX arrays, check them, and return Python floats
(or small NumPy arrays) computed in float64; every negative log-likelihood is the *mean over
points* (nats per point), so numbers from test sets of different sizes compare.

* regression: :func:`gaussian_nll`, :func:`student_t_nll`, :func:`rmse`;
* classification: :func:`accuracy`, :func:`categorical_nll`, :func:`expected_calibration_error`
  (with the reliability-diagram bins), :func:`predictive_entropy`;
* out-of-distribution detection: :func:`auroc` (rank based, ties counted one half) and
  :func:`ood_auroc` (in-distribution vs out-of-distribution scores).

Calibration follows Guo, Pleiss, Sun & Weinberger, *On Calibration of Modern Neural Networks*
(equal-width confidence bins, ECE = sum_b (n_b / n) |acc_b - conf_b|); AUROC is the
Mann-Whitney U statistic divided by n_pos n_neg (Hanley & McNeil, *The Meaning and Use of the
Area under a Receiver Operating Characteristic (ROC) Curve*).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.special import gammaln
from scipy.stats import rankdata

__all__ = [
    "gaussian_nll",
    "student_t_nll",
    "rmse",
    "accuracy",
    "categorical_nll",
    "predictive_entropy",
    "ReliabilityBins",
    "reliability_bins",
    "expected_calibration_error",
    "auroc",
    "ood_auroc",
]

_LOG_2PI = float(np.log(2.0 * np.pi))


# ----------------------------------------------------------------------------- input checks
def _finite_vector(a, name: str) -> np.ndarray:
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim == 2 and arr.shape[1] == 1:  # (n, 1) columns are common for 1-D regression
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array (n,); got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is empty: at least one point is needed")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains {int(np.sum(~np.isfinite(arr)))} NaN or infinite value(s)")
    return arr


def _same_length(n: int, **arrays):
    for name, arr in arrays.items():
        if arr.shape[0] != n:
            raise ValueError(f"{name} has {arr.shape[0]} entries but the targets have {n}; they must match")


def _positive(arr: np.ndarray, name: str):
    if np.any(arr <= 0):
        raise ValueError(f"{name} must be > 0 everywhere; got minimum {arr.min():g}")


def _probabilities(probs, name: str = "probs") -> np.ndarray:
    """(n, K) rows on the simplex (non-negative, summing to 1 within 1e-6)."""
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] == 0 or p.shape[1] < 2:
        raise ValueError(f"{name} must be (n, K) class probabilities with n >= 1, K >= 2; got shape {p.shape}")
    if not np.all(np.isfinite(p)):
        raise ValueError(f"{name} contains NaN or infinite values")
    if np.any(p < 0) or np.any(np.abs(p.sum(axis=1) - 1.0) > 1e-6):
        raise ValueError(f"{name} rows must be non-negative and sum to 1 (class probabilities); "
                         f"row sums range over [{p.sum(axis=1).min():g}, {p.sum(axis=1).max():g}]")
    return p


def _labels(labels, n: int, n_classes: int, name: str = "labels") -> np.ndarray:
    lab = np.asarray(labels)
    if lab.ndim != 1 or lab.shape[0] != n:
        raise ValueError(f"{name} must be (n,) = ({n},) integer class labels; got shape {lab.shape}")
    if not np.all(np.isfinite(lab.astype(np.float64))) or np.any(lab != np.round(lab)):
        raise ValueError(f"{name} must be integers")
    lab = lab.astype(np.int64)
    if lab.min() < 0 or lab.max() >= n_classes:
        raise ValueError(f"{name} must lie in [0, {n_classes}) for {n_classes} classes; "
                         f"got range [{lab.min()}, {lab.max()}]")
    return lab


# ----------------------------------------------------------------------------- regression
def gaussian_nll(y, mean, variance) -> float:
    """Mean negative log density of y under N(mean, variance), in nats per point.

    y, mean, variance: (n,). NLL = 1/n sum_i [ 0.5 log(2 pi var_i) + (y_i - mean_i)^2 / (2 var_i) ].
    ``variance`` is the *predictive* variance of y (observation noise included).
    """
    y = _finite_vector(y, "y")
    mean, variance = _finite_vector(mean, "mean"), _finite_vector(variance, "variance")
    _same_length(y.shape[0], mean=mean, variance=variance)
    _positive(variance, "variance")
    return float(np.mean(0.5 * (_LOG_2PI + np.log(variance)) + 0.5 * (y - mean) ** 2 / variance))


def student_t_nll(y, loc, scale, df) -> float:
    """Mean negative log density of y under a Student-t(df, loc, scale), in nats per point.

    y, loc, scale: (n,); df: a scalar or (n,) degrees of freedom nu > 0. With z = (y - loc) / scale::

        -log p = -log G((nu + 1) / 2) + log G(nu / 2) + 0.5 log(nu pi) + log scale
                 + (nu + 1) / 2 log(1 + z^2 / nu)

    (the predictive of a Gaussian with an inverse-gamma noise variance; tends to
    :func:`gaussian_nll` with variance scale^2 as nu -> infinity).
    """
    y = _finite_vector(y, "y")
    loc, scale = _finite_vector(loc, "loc"), _finite_vector(scale, "scale")
    _same_length(y.shape[0], loc=loc, scale=scale)
    _positive(scale, "scale")
    nu = np.asarray(df, dtype=np.float64)
    if nu.ndim == 0:
        nu = np.full(y.shape, float(nu))
    nu = _finite_vector(nu, "df")
    _same_length(y.shape[0], df=nu)
    _positive(nu, "df")
    z2 = ((y - loc) / scale) ** 2
    logp = (gammaln(0.5 * (nu + 1.0)) - gammaln(0.5 * nu) - 0.5 * np.log(nu * np.pi) - np.log(scale)
            - 0.5 * (nu + 1.0) * np.log1p(z2 / nu))
    return float(-np.mean(logp))


def rmse(y, mean) -> float:
    """Root mean squared error sqrt(1/n sum_i (y_i - mean_i)^2); y, mean: (n,)."""
    y, mean = _finite_vector(y, "y"), _finite_vector(mean, "mean")
    _same_length(y.shape[0], mean=mean)
    return float(np.sqrt(np.mean((y - mean) ** 2)))


# ----------------------------------------------------------------------------- classification
def accuracy(labels, probs) -> float:
    """Fraction of points whose most probable class (argmax of probs (n, K)) is the label (n,).

    Ties in probs go to the lowest class index (NumPy's argmax), as in scikit-learn.
    """
    p = _probabilities(probs)
    lab = _labels(labels, p.shape[0], p.shape[1])
    return float(np.mean(np.argmax(p, axis=1) == lab))


def categorical_nll(labels, probs, *, eps: float = 1e-15) -> float:
    """Mean negative log probability of the true class: -1/n sum_i log p_i[labels_i], in nats.

    probs: (n, K) class probabilities; labels: (n,) integers in [0, K). A probability below
    ``eps`` is counted as ``eps`` (so a confident wrong prediction costs -log eps = 34.5 nats,
    not infinity); pass ``eps=0`` for the raw value. Same as scikit-learn's ``log_loss`` for
    probabilities above ``eps``.
    """
    p = _probabilities(probs)
    lab = _labels(labels, p.shape[0], p.shape[1])
    if not 0.0 <= float(eps) < 1.0:
        raise ValueError(f"eps must be in [0, 1); got {eps}")
    picked = p[np.arange(p.shape[0]), lab]
    with np.errstate(divide="ignore"):
        return float(-np.mean(np.log(np.maximum(picked, float(eps)))))


def predictive_entropy(probs) -> np.ndarray:
    """Entropy -sum_k p_k log p_k (n,) of each row of probs (n, K), in nats (0 log 0 = 0).

    A common out-of-distribution score: high where the model spreads its probability.
    """
    p = _probabilities(probs)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)
    return -terms.sum(axis=1)


class ReliabilityBins(NamedTuple):
    """Equal-width confidence bins of a reliability diagram (B bins on [0, 1]).

    edges: (B + 1,) bin edges 0, 1/B, ..., 1. counts: (B,) points per bin. confidence: (B,) mean
    confidence (max probability) in each bin, accuracy: (B,) fraction correct in each bin (both
    NaN for an empty bin). ece: the expected calibration error sum_b (n_b / n) |acc_b - conf_b|.
    """

    edges: np.ndarray
    counts: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray
    ece: float


def reliability_bins(labels, probs, *, n_bins: int = 15) -> ReliabilityBins:
    """Bin the predictions by confidence c_i = max_k p_ik into ``n_bins`` equal-width bins.

    Bin b (0-based) holds the points with b / B < c_i <= (b + 1) / B, the first bin also c_i = 0
    (right-closed bins, as in Guo et al.; confidence is >= 1/K, so the first bins are empty for
    few classes). Returns :class:`ReliabilityBins` with per-bin mean confidence and accuracy
    (what a reliability diagram plots) and the ECE.
    """
    p = _probabilities(probs)
    lab = _labels(labels, p.shape[0], p.shape[1])
    if not isinstance(n_bins, (int, np.integer)) or isinstance(n_bins, bool) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer; got {n_bins!r}")
    n_bins = int(n_bins)
    conf = p.max(axis=1)
    correct = (np.argmax(p, axis=1) == lab).astype(np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # right-closed bins: ceil(c B) - 1, with c = 0 in bin 0; clip guards round-off at c = 1
    index = np.clip(np.ceil(conf * n_bins).astype(np.int64) - 1, 0, n_bins - 1)
    counts = np.bincount(index, minlength=n_bins).astype(np.int64)
    conf_sum = np.bincount(index, weights=conf, minlength=n_bins)
    acc_sum = np.bincount(index, weights=correct, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.where(counts > 0, conf_sum / np.maximum(counts, 1), np.nan)
        mean_acc = np.where(counts > 0, acc_sum / np.maximum(counts, 1), np.nan)
    # sum_b (n_b / n) |acc_b - conf_b| = 1/n sum_b |sum_{i in b} (correct_i - c_i)|
    ece = float(np.sum(np.abs(acc_sum - conf_sum)) / p.shape[0])
    return ReliabilityBins(edges, counts, mean_conf, mean_acc, ece)


def expected_calibration_error(labels, probs, *, n_bins: int = 15) -> float:
    """Expected calibration error with ``n_bins`` equal-width confidence bins (see
    :func:`reliability_bins`); in [0, 1], 0 for a perfectly calibrated classifier."""
    return reliability_bins(labels, probs, n_bins=n_bins).ece


# ----------------------------------------------------------------------------- OOD detection
def auroc(labels, scores) -> float:
    """Area under the ROC curve of ``scores`` (n,) for binary ``labels`` (n,) (1 = positive).

    Rank-based (the Mann-Whitney U statistic): with r_i the ranks of the scores (ties get their
    average rank), AUROC = (sum_{i positive} r_i - n_pos (n_pos + 1) / 2) / (n_pos n_neg), the
    probability that a random positive scores above a random negative, ties counting one half.
    Needs at least one positive and one negative.
    """
    s = _finite_vector(scores, "scores")
    lab = np.asarray(labels)
    if lab.shape != s.shape:
        raise ValueError(f"labels must have the shape of scores {s.shape}; got {lab.shape}")
    if not np.all(np.isin(lab, (0, 1))):
        raise ValueError("labels must be binary (0 = negative, 1 = positive, or booleans)")
    pos = lab.astype(bool)
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"AUROC needs both classes; got {n_pos} positive(s) and {n_neg} negative(s)")
    ranks = rankdata(s, method="average")
    u = ranks[pos].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def ood_auroc(scores_in, scores_out) -> float:
    """AUROC of separating out-of-distribution points from in-distribution points by a score
    that should be *higher* out of distribution (predictive entropy, predictive variance,
    1 - max probability). scores_in: (n_in,), scores_out: (n_out,). 0.5 = chance, 1 = perfect."""
    s_in, s_out = _finite_vector(scores_in, "scores_in"), _finite_vector(scores_out, "scores_out")
    scores = np.concatenate([s_in, s_out])
    labels = np.concatenate([np.zeros(s_in.shape[0], dtype=np.int64), np.ones(s_out.shape[0], dtype=np.int64)])
    return auroc(labels, scores)
