"""Datasets for comparing Bayesian last layers: where is the model (rightly) unsure?

Each generator returns train and test sets plus inputs the model never saw in training, so one
call gives everything a comparison of MAP, last-layer Laplace, MC dropout, deep ensembles and
VBLL needs:

* :func:`gap_regression`: 1-D regression with a gap in the inputs (in-between uncertainty,
  *'In-Between' Uncertainty in Bayesian Neural Networks*, Foong et al.) and test inputs in the
  tails beyond the data (extrapolation); each test point carries its region.
* :func:`two_moons` and :func:`spirals`: 2-D classification with out-of-distribution probes,
  points far from every training input (:func:`far_points`), and :func:`grid_2d` for maps of
  predictive entropy / confidence.
* :func:`digits_shift`: scikit-learn's 8x8 handwritten digits (via :func:`bayeskit.data.load_digits`)
  in distribution, and the same test digits translated and noised as a shifted set.

Every generator takes an explicit ``seed``: an int, a ``numpy.random.Generator`` or a
``jax.random`` key (nothing is drawn from global state). Arrays are NumPy float64 (inputs) and
int64 (labels); the training code casts them to float32 for the networks.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = [
    "IN_DISTRIBUTION",
    "GAP",
    "TAILS",
    "RegressionSplit",
    "ClassificationSplit",
    "gap_regression",
    "two_moons",
    "spirals",
    "far_points",
    "grid_2d",
    "digits_shift",
]

#: region codes of :class:`RegressionSplit` test points
IN_DISTRIBUTION, GAP, TAILS = 0, 1, 2


class RegressionSplit(NamedTuple):
    """x_train (n, 1), y_train (n,); x_test (m, 1) on a regular grid, y_test (m,) noisy
    targets, f_test (m,) the noise-free function; region (m,) int: :data:`IN_DISTRIBUTION`
    (inside the training range, outside the gap), :data:`GAP` (inside the gap), :data:`TAILS`
    (beyond the training range); description."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    f_test: np.ndarray
    region: np.ndarray
    description: str


class ClassificationSplit(NamedTuple):
    """x_train (n, d), y_train (n,) int labels; x_test (m, d), y_test (m,) from the same
    distribution; x_ood (k, d) out-of-distribution inputs, y_ood (k,) their labels where they
    have one (shifted digits) or -1 (probes far from the data); n_classes; description."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    x_ood: np.ndarray
    y_ood: np.ndarray
    n_classes: int
    description: str


def _rng(seed) -> np.random.Generator:
    """A NumPy generator from an int seed, a Generator, or a jax.random key (never global state)."""
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        return np.random.default_rng(int(seed))
    try:
        import jax
    except ImportError:  # pragma: no cover - jax is a dependency
        jax = None
    if jax is not None and isinstance(seed, jax.Array):
        # derive a 63-bit seed from the key: reproducible and independent of global state
        bits = jax.random.bits(seed, (2,), dtype=np.uint32)
        return np.random.default_rng([int(b) for b in np.asarray(bits)])
    raise TypeError(f"seed must be an int, a numpy.random.Generator or a jax.random key; got {type(seed).__name__}")


def _positive_int(value, name: str, minimum: int = 1) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}")
    return int(value)


def _non_negative(value, name: str) -> float:
    v = float(value)
    if not np.isfinite(v) or v < 0:
        raise ValueError(f"{name} must be finite and >= 0; got {value!r}")
    return v


# ----------------------------------------------------------------------------- regression
def gap_regression(n_train: int = 80, n_test: int = 400, *, seed, noise_std: float = 0.1,
                   gap: tuple[float, float] = (-0.5, 1.0), bounds: tuple[float, float] = (-3.0, 3.0),
                   tail: float = 2.0) -> RegressionSplit:
    """1-D regression y = sin(2x) + x / 2 + noise with no training data in ``gap``.

    Training inputs are uniform on ``bounds`` minus ``gap`` (the generator of
    :func:`bayeskit.data.toy_gap`); test inputs are ``n_test`` evenly spaced points on
    [bounds[0] - tail, bounds[1] + tail], labelled by region: a well-calibrated model is
    confident IN_DISTRIBUTION, less so in the GAP, and least in the TAILS.
    """
    from bayeskit.data import toy_gap, toy_gap_function

    n_train = _positive_int(n_train, "n_train")
    n_test = _positive_int(n_test, "n_test", 2)
    noise_std = _non_negative(noise_std, "noise_std")
    tail = _non_negative(tail, "tail")
    rng = _rng(seed)
    # toy_gap takes an int seed: draw it from our generator so a Generator or key works too
    train = toy_gap(n_train, seed=int(rng.integers(2**63 - 1)), noise_std=noise_std, gap=tuple(gap),
                    bounds=tuple(bounds))
    lo, hi = bounds
    x_test = np.linspace(lo - tail, hi + tail, n_test)
    f_test = toy_gap_function(x_test)
    y_test = f_test + noise_std * rng.normal(size=n_test)
    region = np.full(n_test, IN_DISTRIBUTION, dtype=np.int64)
    region[(x_test > gap[0]) & (x_test < gap[1])] = GAP
    region[(x_test < lo) | (x_test > hi)] = TAILS
    return RegressionSplit(train.X, train.y, x_test[:, None], y_test, f_test, region,
                           f"sin(2x) + x/2, gap on {tuple(gap)}, data on {tuple(bounds)}, tails of {tail}, "
                           f"noise sd {noise_std}")


# ----------------------------------------------------------------------------- 2-D classification
def _moons(n: int, noise: float, rng: np.random.Generator):
    labels = rng.integers(0, 2, size=n)
    t = rng.uniform(0.0, np.pi, size=n)
    # upper moon: (cos t, sin t); lower moon: (1 - cos t, 1/2 - sin t), interleaved
    x = np.where(labels == 0, np.cos(t), 1.0 - np.cos(t))
    y = np.where(labels == 0, np.sin(t), 0.5 - np.sin(t))
    pts = np.stack([x, y], axis=1) + noise * rng.normal(size=(n, 2))
    return pts, labels.astype(np.int64)


def _spirals(n: int, n_classes: int, noise: float, turns: float, rng: np.random.Generator):
    labels = rng.integers(0, n_classes, size=n)
    t = np.sqrt(rng.uniform(0.05, 1.0, size=n))  # sqrt: about uniform density along the arm
    angle = 2.0 * np.pi * (turns * t + labels / n_classes)
    pts = 2.0 * t[:, None] * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    return pts + noise * rng.normal(size=(n, 2)), labels.astype(np.int64)


def far_points(x, n: int, *, seed, expand: float = 1.0, min_distance: float | None = None) -> np.ndarray:
    """``n`` points (n, d) uniform in the bounding box of ``x`` (m, d) widened by ``expand``
    times its side lengths on each side, keeping only those at least ``min_distance`` (default:
    half the largest per-coordinate standard deviation of x) from every point of x.

    These are out-of-distribution probes: a model should be unsure there. Rejection sampling;
    raises ``ValueError`` if the box has (almost) no room far from the data.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0 or not np.all(np.isfinite(x)):
        raise ValueError(f"x must be a finite, non-empty (m, d) array; got shape {x.shape}")
    n = _positive_int(n, "n")
    expand = _non_negative(expand, "expand")
    if min_distance is None:
        min_distance = 0.5 * float(np.max(np.std(x, axis=0)))
    min_distance = _non_negative(min_distance, "min_distance")
    rng = _rng(seed)
    lo, hi = x.min(axis=0), x.max(axis=0)
    span = np.maximum(hi - lo, 1e-12)
    lo, hi = lo - expand * span, hi + expand * span
    kept, total = [], 0
    for _ in range(200):
        cand = rng.uniform(lo, hi, size=(max(4 * n, 256), x.shape[1]))
        # squared distances to the nearest data point: |c|^2 + |x|^2 - 2 c.x, memory (candidates, m)
        d2 = np.min((cand**2).sum(1)[:, None] + (x**2).sum(1)[None, :] - 2.0 * cand @ x.T, axis=1)
        good = cand[d2 >= min_distance**2]
        kept.append(good)
        total += good.shape[0]
        if total >= n:
            return np.concatenate(kept)[:n]
    raise ValueError(f"could not place {n} points at distance >= {min_distance:g} from the data inside the "
                     f"box widened by expand={expand}; increase expand or decrease min_distance")


def grid_2d(x, n_per_axis: int = 100, *, expand: float = 0.5):
    """A regular grid over the bounding box of ``x`` (m, 2) widened by ``expand`` times its
    side lengths: returns (xx, yy) each (n_per_axis, n_per_axis) and the points (n_per_axis^2, 2)
    in row-major order, ready for ``plt.contourf(xx, yy, values.reshape(xx.shape))``."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != 2 or x.shape[0] == 0 or not np.all(np.isfinite(x)):
        raise ValueError(f"x must be a finite, non-empty (m, 2) array; got shape {x.shape}")
    n_per_axis = _positive_int(n_per_axis, "n_per_axis", 2)
    expand = _non_negative(expand, "expand")
    lo, hi = x.min(axis=0), x.max(axis=0)
    span = hi - lo
    a = np.linspace(lo[0] - expand * span[0], hi[0] + expand * span[0], n_per_axis)
    b = np.linspace(lo[1] - expand * span[1], hi[1] + expand * span[1], n_per_axis)
    xx, yy = np.meshgrid(a, b)
    return xx, yy, np.stack([xx.ravel(), yy.ravel()], axis=1)


def _split_2d(sample, n_train, n_test, n_ood, seed, expand, min_distance, n_classes, description):
    n_train = _positive_int(n_train, "n_train", 2)
    n_test = _positive_int(n_test, "n_test")
    n_ood = _positive_int(n_ood, "n_ood")
    rng = _rng(seed)
    x_train, y_train = sample(n_train, rng)
    x_test, y_test = sample(n_test, rng)
    x_ood = far_points(x_train, n_ood, seed=rng, expand=expand, min_distance=min_distance)
    return ClassificationSplit(x_train, y_train, x_test, y_test, x_ood, np.full(n_ood, -1, dtype=np.int64),
                               n_classes, description)


def two_moons(n_train: int = 300, n_test: int = 500, n_ood: int = 300, *, seed, noise: float = 0.1,
              ood_expand: float = 1.0, ood_min_distance: float | None = None) -> ClassificationSplit:
    """Two interleaving half circles: class 0 at (cos t, sin t), class 1 at (1 - cos t, 1/2 - sin t),
    t ~ U(0, pi), plus N(0, noise^2 I) (the same shape as scikit-learn's ``make_moons``, with
    random rather than evenly spaced t). OOD probes from :func:`far_points` with ``ood_expand``
    and ``ood_min_distance``."""
    noise = _non_negative(noise, "noise")
    return _split_2d(lambda n, rng: _moons(n, noise, rng), n_train, n_test, n_ood, seed, ood_expand,
                     ood_min_distance, 2, f"two moons, noise {noise}")


def spirals(n_train: int = 400, n_test: int = 500, n_ood: int = 300, *, seed, n_classes: int = 2,
            noise: float = 0.1, turns: float = 1.0, ood_expand: float = 0.5,
            ood_min_distance: float | None = None) -> ClassificationSplit:
    """``n_classes`` interleaved spiral arms: class c at radius 2t and angle
    2 pi (turns t + c / n_classes), t = sqrt(U(0.05, 1)), plus N(0, noise^2 I). OOD probes
    from :func:`far_points` (they lie outside the outer winding)."""
    n_classes = _positive_int(n_classes, "n_classes", 2)
    noise = _non_negative(noise, "noise")
    turns = _non_negative(turns, "turns")
    return _split_2d(lambda n, rng: _spirals(n, n_classes, noise, turns, rng), n_train, n_test, n_ood, seed,
                     ood_expand, ood_min_distance, n_classes,
                     f"{n_classes} spirals, {turns} turn(s), noise {noise}")


# ----------------------------------------------------------------------------- digits
def _shift_images(images: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """Translate (n, 8, 8) images by dx columns and dy rows, filling with 0 (background)."""
    out = np.zeros_like(images)
    h, w = images.shape[1:]
    src_r = slice(max(0, -dy), min(h, h - dy))
    dst_r = slice(max(0, dy), min(h, h + dy))
    src_c = slice(max(0, -dx), min(w, w - dx))
    dst_c = slice(max(0, dx), min(w, w + dx))
    out[:, dst_r, dst_c] = images[:, src_r, src_c]
    return out


def digits_shift(*, seed, test_fraction: float = 0.3, shift: int = 2, noise_std: float = 0.3) -> ClassificationSplit:
    """The 8x8 digits (1797 images, 10 classes), pixels scaled to [0, 1], split at random into
    train and test; the shifted set (x_ood, y_ood) is the test digits translated by ``shift``
    pixels right and down (zero fill) with N(0, noise_std^2) pixel noise, clipped to [0, 1].

    x: (n, 64) float64. A classifier that knows what it does not know is less confident on the
    shifted digits (it also gets fewer right: compare accuracy and NLL on both sets).
    Uses :func:`bayeskit.data.load_digits` (scikit-learn's copy of the UCI optical digits,
    shipped with bayeskit).
    """
    try:
        from bayeskit.data import load_digits
    except ImportError:  # pragma: no cover - depends on the installed data module
        raise ImportError("digits_shift needs bayeskit.data.load_digits, which this bayeskit lacks") from None
    if not 0.0 < float(test_fraction) < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1); got {test_fraction!r}")
    if not isinstance(shift, (int, np.integer)) or isinstance(shift, bool) or not 0 <= shift < 8:
        raise ValueError(f"shift must be an integer in [0, 8) pixels; got {shift!r}")
    noise_std = _non_negative(noise_std, "noise_std")
    data = load_digits(scaled=True)  # pixel counts 0..16 divided by 16
    X = np.asarray(data.X, dtype=np.float64)
    y = np.asarray(data.y).astype(np.int64)
    rng = _rng(seed)
    order = rng.permutation(X.shape[0])
    n_test = int(round(float(test_fraction) * X.shape[0]))
    test, train = order[:n_test], order[n_test:]
    shifted = _shift_images(X[test].reshape(-1, 8, 8), int(shift), int(shift)).reshape(-1, 64)
    shifted = np.clip(shifted + noise_std * rng.normal(size=shifted.shape), 0.0, 1.0)
    return ClassificationSplit(X[train], y[train], X[test], y[test], shifted, y[test].copy(), 10,
                               f"8x8 digits; shifted set: +{shift} px right/down, pixel noise sd {noise_std}")
