"""Input checks shared by the library: clear errors that name the argument and the expectation."""

from __future__ import annotations

import jax
import numpy as np


def as_inputs(X, name: str = "X", *, dim: int | None = None, allow_empty: bool = False) -> np.ndarray:
    """Return ``X`` as a float64 array of shape (n, d); a 1-D array is read as n points in 1-D.

    Raises ``ValueError`` naming ``name`` for wrong rank, NaN/inf, a dimension other than
    ``dim``, or no rows (unless ``allow_empty``).
    """
    arr = np.asarray(X, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 1-D (n,) or 2-D (n, d); got an array of shape {arr.shape}")
    if arr.shape[0] == 0 and not allow_empty:
        raise ValueError(f"{name} is empty: at least one row (data point) is needed")
    if dim is not None and arr.shape[1] != dim:
        raise ValueError(f"{name} must have {dim} column(s) (input dimension); got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        bad = int(np.sum(~np.isfinite(arr)))
        raise ValueError(f"{name} contains {bad} NaN or infinite value(s); all inputs must be finite")
    return arr


def as_targets(y, n: int, name: str = "y") -> np.ndarray:
    """Return ``y`` as float64 (n,) or (n, k), checking length ``n`` and finiteness."""
    arr = np.asarray(y, dtype=np.float64)
    if arr.ndim not in (1, 2):
        raise ValueError(f"{name} must be (n,) or (n, k); got shape {arr.shape}")
    if arr.shape[0] != n:
        raise ValueError(f"{name} has {arr.shape[0]} rows but X has {n}; they must match")
    if not np.all(np.isfinite(arr)):
        bad = int(np.sum(~np.isfinite(arr)))
        raise ValueError(f"{name} contains {bad} NaN or infinite value(s); targets must be finite")
    return arr


def positive_scalar(value, name: str, *, allow_zero: bool = False) -> float:
    """Return ``value`` as a float, requiring it to be finite and > 0 (or >= 0)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number; got {value!r}") from None
    if not np.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        expect = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be finite and {expect}; got {v}")
    return v


def as_prng_key(key) -> jax.Array:
    """A ``jax.random`` key from a key or an int seed; ``None`` or anything else is an error.

    bayeskit never draws from hidden global state: every random function takes an explicit key.
    """
    if key is None:
        raise ValueError("key is required: pass a jax.random.key(seed) (or an int seed)")
    if isinstance(key, (int, np.integer)):
        return jax.random.key(int(key))
    if not isinstance(key, jax.Array):
        raise TypeError(f"key must be a jax.random.key or an int seed; got {type(key).__name__}")
    return key
