"""Numerically careful linear algebra: Cholesky with jitter escalation.

Inside ``jit`` a failed Cholesky returns NaN instead of raising, so the retry lives on the host,
where the failure is visible: :func:`cholesky` factorises, checks the result, and adds
geometrically growing jitter to the diagonal until the factor is finite, warning each time so the
user knows the matrix was numerically singular.
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np

DEFAULT_JITTER_LADDER = (0.0, 1e-10, 1e-8, 1e-6, 1e-4)
#: for posterior covariances, singular to round-off near the data by nature
SAMPLING_JITTER_LADDER = (0.0, 1e-12, 1e-10, 1e-8, 1e-6, 1e-4)


class NotPositiveDefiniteError(np.linalg.LinAlgError):
    """Raised when a matrix stays non-positive-definite after the largest jitter."""


class JitterWarning(RuntimeWarning):
    """Warned when jitter had to be added to a diagonal for the Cholesky factor to exist."""


@jax.jit
def _cholesky_with_jitter(K, jitter):
    """Lower Cholesky factor of K + jitter * mean(diag K) * I (NaN where that fails)."""
    scale = jnp.mean(jnp.diagonal(K))
    return jnp.linalg.cholesky(K + jitter * scale * jnp.eye(K.shape[-1], dtype=K.dtype))


def escalate(compute, ladder=DEFAULT_JITTER_LADDER, what: str = "matrix", quiet_up_to: float = 0.0):
    """Call ``compute(jitter)`` for each jitter of ``ladder`` until its result is finite.

    ``compute`` returns an array, or a tuple whose first element is checked. Warns with
    :class:`JitterWarning` when a non-zero jitter was needed; raises
    :class:`NotPositiveDefiniteError` when even the largest fails. Jitter is relative to the
    mean of the diagonal, so it means the same for any kernel amplitude; jitter up to
    ``quiet_up_to`` is added without a warning.
    """
    for jitter in ladder:
        result = compute(jitter)
        check = result[0] if isinstance(result, tuple) else result
        if bool(jnp.all(jnp.isfinite(check))):
            if jitter > quiet_up_to:
                warnings.warn(
                    f"{what} was not numerically positive definite; added jitter "
                    f"{jitter:g} x mean(diagonal) to its diagonal",
                    JitterWarning,
                    stacklevel=3,
                )
            return result
    raise NotPositiveDefiniteError(
        f"{what} is not positive definite, even with jitter {ladder[-1]:g} x mean(diagonal); "
        "check for duplicated inputs with zero noise, or a kernel variance of zero"
    )


def cholesky(K, ladder=DEFAULT_JITTER_LADDER, what: str = "matrix") -> jax.Array:
    """Lower Cholesky factor L (n, n) with L L^T = K + jitter I, escalating jitter as needed."""
    K = jnp.asarray(K)
    if K.ndim != 2 or K.shape[0] != K.shape[1]:
        raise ValueError(f"{what} must be square (n, n); got shape {K.shape}")
    if not bool(jnp.all(jnp.isfinite(K))):
        raise ValueError(f"{what} contains NaN or infinite entries")
    return escalate(lambda j: _cholesky_with_jitter(K, j), ladder, what)
