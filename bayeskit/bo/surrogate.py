"""The BO surrogate: ML-II GP fits on data padded to a few fixed sizes.

A BO run grows its data one point at a time, and JAX compiles every function again for each new
array shape (about a second per shape for a marginal likelihood and its gradient on a 2-core CPU),
which would dominate a run. So the n observations are padded to ``bucket_size(n)`` rows with a
mask m (1 for data, 0 for padding) and the covariance is built as

    K_pad = (m m^T) * (k(X, X) + noise I) + diag(1 - m),     y_pad = m * y,

a block-diagonal matrix with an identity block for the padding. Then log N(y_pad | 0, K_pad) =
log N(y | 0, K) - (n_pad - n) log(2 pi) / 2: the same maximiser and gradient as the unpadded
marginal likelihood (R&W, *Gaussian Processes for Machine Learning*, eq. 2.30 and 5.9, through
``bayeskit.gp``'s analytic-gradient likelihood), and the Cholesky factor and K^{-1} y of the
padded matrix are those of :func:`bayeskit.bo.loop.pad_posterior` (padding rows far away, an
identity block in L, zeros in alpha). Hyperparameters are optimised as logarithms by scipy's
L-BFGS-B, as ``bayeskit.gp.fit_ml2`` does.
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import scipy.optimize

from .. import _config  # noqa: F401  (float64)
from ..gp.exact import Posterior, gaussian_log_likelihood_from_cov
from ..kernels import Kernel
from ..linalg import DEFAULT_JITTER_LADDER, JitterWarning, escalate

__all__ = ["fit_padded_gp"]

FAR = 1e4  # unit-cube coordinate of padding rows: with lengthscales <= 1e2 a Matern-5/2 kernel is below 1e-90 there


def _padded_cov(kernel, X, mask, noise, jitter):
    K = kernel(X)
    n = X.shape[0]
    scale = jnp.sum(jnp.diagonal(K) * mask) / jnp.sum(mask) + noise
    K = K + (noise + jitter * scale) * jnp.eye(n, dtype=K.dtype)
    return mask[:, None] * mask[None, :] * K + jnp.diag(1.0 - mask)


@jax.jit
def _padded_lml(kernel, X, y, mask, noise, jitter):
    return gaussian_log_likelihood_from_cov(_padded_cov(kernel, X, mask, noise, jitter), y * mask)


_padded_lml_grad = jax.jit(jax.value_and_grad(_padded_lml, argnums=(0, 4)))


@jax.jit
def _padded_condition(kernel, X, y, mask, noise, jitter):
    L = jnp.linalg.cholesky(_padded_cov(kernel, X, mask, noise, jitter))
    return L, jax.scipy.linalg.cho_solve((L, True), y * mask)


def pad_data(U, z, size: int):
    """(X (size, d), y (size,), mask (size,)) as NumPy arrays: the n data rows, then padding rows
    at ``FAR`` with target 0 and mask 0, so every padded size shares one compiled program."""
    U = np.asarray(U, dtype=np.float64)
    n, d = U.shape
    X = np.full((size, d), FAR)
    X[:n] = U
    y = np.zeros(size)
    y[:n] = np.asarray(z, dtype=np.float64)
    mask = np.zeros(size)
    mask[:n] = 1.0
    return X, y, mask


def fit_padded_gp(kernel: Kernel, U, z, noise: float, *, size: int, noise_fixed: bool,
                  noise_bounds=(1e-6, 1.0), bounds=(1e-2, 1e2), n_restarts: int = 0, seed: int = 0):
    """ML-II fit of ``kernel`` (and the noise unless fixed) to U (n, d) in the unit cube, z (n,).

    Returns (kernel, noise, Posterior) where the posterior is stored padded to ``size`` rows.
    Each hyperparameter is searched as its logarithm within ``bounds``; the first start is the
    given kernel (a warm start from the previous iteration), then ``n_restarts`` log-uniform
    random starts from ``numpy.random.default_rng(seed)``.
    """
    X, y, mask = map(jnp.asarray, pad_data(U, z, size))

    leaves, treedef = jax.tree_util.tree_flatten(kernel)
    shapes = [np.shape(v) for v in leaves]
    sizes = [int(np.size(v)) for v in leaves]
    box = [tuple(np.log(bounds))] * sum(sizes)
    if not noise_fixed:
        box.append(tuple(np.log(noise_bounds)))
    lo, hi = np.array([b[0] for b in box]), np.array([b[1] for b in box])

    def unpack(theta):
        parts, i = [], 0
        for k, shape in zip(sizes, shapes):
            parts.append(np.exp(theta[i : i + k]).reshape(shape))
            i += k
        kern = jax.tree_util.tree_unflatten(treedef, [p if p.shape else float(p) for p in parts])
        return kern, (noise if noise_fixed else float(np.exp(theta[i])))

    def objective(theta):
        kern, nz = unpack(theta)
        for jitter in DEFAULT_JITTER_LADDER:
            value, (gk, gn) = _padded_lml_grad(kern, X, y, mask, nz, jitter)
            if np.isfinite(value):
                break
        else:
            return 1e300, np.zeros_like(theta)
        # chain rule to log-parameters: d / d log p = p d / dp
        grads = [np.ravel(np.asarray(g) * np.asarray(v))
                 for g, v in zip(jax.tree_util.tree_leaves(gk), jax.tree_util.tree_leaves(kern))]
        if not noise_fixed:
            grads.append([float(gn) * nz])
        return -float(value), -np.concatenate(grads)

    theta0 = np.concatenate([np.log(np.ravel(np.asarray(v, dtype=float))) for v in leaves])
    if not noise_fixed:
        theta0 = np.append(theta0, np.log(noise))
    theta0 = np.clip(theta0, lo, hi)
    rng = np.random.default_rng(seed)
    starts = [theta0] + [rng.uniform(lo, hi) for _ in range(n_restarts)]
    best = None
    for start in starts:
        res = scipy.optimize.minimize(objective, start, jac=True, method="L-BFGS-B", bounds=box,
                                      options={"maxiter": 500})
        if res.fun < 1e300 and (best is None or res.fun < best.fun):
            best = res
    if best is None:
        raise np.linalg.LinAlgError("ML-II failed: the marginal likelihood was not finite at any start")
    kern, nz = unpack(best.x)
    with warnings.catch_warnings():
        # the 1e-6 nugget makes jitter rare; when it is needed the warning is expected noise here
        warnings.simplefilter("ignore", JitterWarning)
        L, alpha = escalate(lambda j: _padded_condition(kern, X, y, mask, nz, j), what="k(X, X) + noise I")
    return kern, nz, Posterior(kern, X, L, alpha, jnp.asarray(nz))


def condition_padded(kernel: Kernel, U, z, noise: float, size: int) -> Posterior:
    """The GP posterior given fixed hyperparameters, stored padded to ``size`` rows."""
    X, y, mask = map(jnp.asarray, pad_data(U, z, size))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", JitterWarning)
        L, alpha = escalate(lambda j: _padded_condition(kernel, X, y, mask, noise, j), what="k(X, X) + noise I")
    return Posterior(kernel, X, L, alpha, jnp.asarray(noise))
