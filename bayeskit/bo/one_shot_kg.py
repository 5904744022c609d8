"""One-shot knowledge gradient (KG) for minimisation, in the continuous domain.

The knowledge gradient of measuring x is the expected drop in the minimum of the posterior mean
(Frazier, *A Tutorial on Bayesian Optimization*, section 4.2):

    KG(x) = min_x' mu_n(x') - E_y[ min_x' mu_{n+1}(x') | y observed at x ].

After observing y = f(x) + eps, the posterior mean anywhere is an affine function of one standard
normal z (the predictive of y is N(mu_n(x), Sigma_n(x, x) + noise)):

    mu_{n+1}(x') = mu_n(x') + sigma~(x', x) z,    sigma~(x', x) = Sigma_n(x', x) / sqrt(Sigma_n(x, x) + noise).

:func:`bayeskit.bo.acquisitions.knowledge_gradient` computes the expectation exactly when x'
ranges over a finite set. In the continuous domain the inner minimum has no closed form. The
*one-shot* formulation (*BoTorch: A Framework for Efficient Monte-Carlo Bayesian Optimization*,
section 5 on the one-shot KG) fixes K base samples z_1..z_K (common random numbers) and gives
each fantasy its own minimiser x'_k:

    KG_os(x, x'_1..x'_K) = c - (1/K) sum_k [ mu_n(x'_k) + sigma~(x'_k, x) z_k ],    c = min_x' mu_n(x').

For any choice of the x'_k this is a lower bound on the sample-average KG (each mu_{n+1}^(k)(x'_k)
is at least the fantasy's minimum), with equality at the fantasy minimisers, so maximising KG_os
*jointly* over x and the K fantasy points is maximising the sample-average KG over x: one
deterministic smooth optimisation in (K + 1) d variables instead of an optimisation nested inside
another. :func:`maximize_one_shot_kg` starts it from the discrete KG on a Sobol set (fantasy
points at each fantasy's minimiser on that set) and polishes with L-BFGS-B and exact JAX
gradients.

Everything works on a :class:`bayeskit.gp.Posterior` (padded or not; the BO loop's posteriors live
on the unit cube with standardised outputs). ``noise`` defaults to ``post.noise``.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import scipy.optimize
from jax.scipy.special import ndtri

from .. import _config  # noqa: F401  (float64)
from ..gp.exact import Posterior
from .acquisitions import posterior_mean_cov
from .loop import _marginals
from .optimize import bucket_size, maximize_acquisition, sobol_points

__all__ = [
    "fantasy_means",
    "one_shot_knowledge_gradient",
    "fantasy_minimizers_on_set",
    "optimize_fantasy_points",
    "maximize_one_shot_kg",
    "OneShotKGResult",
    "qmc_normal_samples",
]


def qmc_normal_samples(n: int, seed: int) -> np.ndarray:
    """n (n,) standard-normal base samples from a scrambled Sobol sequence (inverse CDF).

    Quasi-random base samples reduce the Monte-Carlo error of the fantasy average for the same K.
    """
    u = sobol_points(int(n), 1, seed)[:, 0]
    u = np.clip(u, 1e-12, 1 - 1e-12)
    return np.asarray(ndtri(jnp.asarray(u)))


def _fantasy_means(post, x, Xf, z, noise):
    """mu_{n+1}^(k)(Xf[k]) for one candidate x (d,), Xf (K, d), z (K,): (K,)."""
    Z = jnp.concatenate([x[None, :], Xf], axis=0)
    Ks = post.kernel(post.X, Z)  # (n, K + 1)
    mean = Ks.T @ post.alpha
    V = jax.scipy.linalg.solve_triangular(post.L, Ks, lower=True)
    cov_x = post.kernel(x[None, :], Z)[0] - V[:, 0] @ V  # Sigma_n(x, [x, Xf])
    sd = jnp.sqrt(jnp.maximum(cov_x[0], 0.0) + noise)
    return mean[1:] + cov_x[1:] / sd * z


_FANTASY_MEANS_BATCH = jax.jit(jax.vmap(_fantasy_means, in_axes=(None, 0, 0, None, None)))


@jax.jit
def _fantasy_table(post, x, A, z, noise):
    """mu_{n+1}^(k)(a) for every a in A (p, d) and fantasy k: (p, K)."""
    mean, cov = posterior_mean_cov(post, jnp.concatenate([x[None, :], A], axis=0))
    sd = jnp.sqrt(jnp.maximum(cov[0, 0], 0.0) + noise)
    return mean[1:, None] + (cov[1:, 0] / sd)[:, None] * z[None, :]


def _check(post, X, fantasy_points, base_samples):
    if not isinstance(post, Posterior):
        raise TypeError(f"post must be a bayeskit.gp.Posterior; got {type(post).__name__}")
    d = post.X.shape[1]
    X = jnp.asarray(X, dtype=jnp.float64)
    Xf = jnp.asarray(fantasy_points, dtype=jnp.float64)
    z = jnp.asarray(base_samples, dtype=jnp.float64)
    single = X.ndim == 1
    if single:
        X = X[None, :]
    if X.ndim != 2 or X.shape[1] != d:
        raise ValueError(f"X must have shape ({d},) or (m, {d}); got {np.shape(X)}")
    if z.ndim != 1 or z.shape[0] < 1:
        raise ValueError(f"base_samples must be a non-empty 1-D array (K,); got shape {np.shape(base_samples)}")
    K = z.shape[0]
    if Xf.ndim == 2:
        Xf = jnp.broadcast_to(Xf, (X.shape[0],) + Xf.shape)
    if Xf.shape != (X.shape[0], K, d):
        raise ValueError(
            f"fantasy_points must have shape (K, d) = ({K}, {d}) or (m, K, d) = ({X.shape[0]}, {K}, {d}); "
            f"got {np.shape(fantasy_points)}")
    for name, arr in (("X", X), ("fantasy_points", Xf), ("base_samples", z)):
        if isinstance(arr, jax.core.Tracer):  # inside jit: values are not known here
            continue
        if not bool(jnp.all(jnp.isfinite(arr))):
            raise ValueError(f"{name} contains NaN or infinite values")
    return X, Xf, z, single


def fantasy_means(post: Posterior, X, fantasy_points, base_samples, noise=None):
    """Fantasy posterior means mu_{n+1}^(k)(x'_k) after observing y_k at x: (m, K) or (K,).

    X: (d,) or (m, d) candidates; fantasy_points: (K, d) or (m, K, d); base_samples: (K,)
    standard normals z_k (the fantasised y_k = mu_n(x) + sqrt(Sigma_n(x, x) + noise) z_k).
    """
    X, Xf, z, single = _check(post, X, fantasy_points, base_samples)
    noise = post.noise if noise is None else noise
    out = _FANTASY_MEANS_BATCH(post, X, Xf, z, jnp.asarray(noise, dtype=jnp.float64))
    return out[0] if single else out


def one_shot_knowledge_gradient(post: Posterior, X, fantasy_points, base_samples, current_min=0.0, noise=None):
    """One-shot KG (minimisation): c - mean_k mu_{n+1}^(k)(x'_k), for each candidate x.

    X: (d,) or (m, d); fantasy_points: (K, d) shared by all candidates or (m, K, d); base_samples:
    (K,) fixed standard normals; current_min: c = min_x' mu_n(x') (a constant: it only shifts the
    value). Returns a scalar for X (d,) or (m,). Differentiable in X and the fantasy points.
    A lower bound on the sample-average KG for these base samples, tight when each x'_k
    minimises its fantasy mean (module docstring).
    """
    return current_min - jnp.mean(fantasy_means(post, X, fantasy_points, base_samples, noise), axis=-1)


def fantasy_minimizers_on_set(post: Posterior, x, A, base_samples, noise=None):
    """For each fantasy k, the point of the finite set A (p, d) that minimises mu_{n+1}^(k).

    x: (d,); base_samples: (K,). Returns (indices (K,), values (K,)) with
    values[k] = min_{a in A} mu_{n+1}^(k)(a). Put x itself in A if it should count.
    """
    x = jnp.asarray(x, dtype=jnp.float64)
    A = jnp.asarray(A, dtype=jnp.float64)
    z = jnp.asarray(base_samples, dtype=jnp.float64)
    noise = jnp.asarray(post.noise if noise is None else noise, dtype=jnp.float64)
    table = _fantasy_table(post, x, A, z, noise)  # (p, K)
    idx = jnp.argmin(table, axis=0)
    return np.array(idx), np.array(jnp.min(table, axis=0))


def _u_neg_mean(X, post):
    return -_marginals(post, X)[0]


def _neg_os_kg(theta, post, z, current_min, noise):
    d = post.X.shape[1]
    x = theta[:d]
    Xf = theta[d:].reshape(z.shape[0], d)
    return -(current_min - jnp.mean(_fantasy_means(post, x, Xf, z, noise)))


_NEG_OS_KG_VG = jax.jit(jax.value_and_grad(_neg_os_kg))


@jax.jit
def _screen(post, S, A, z, noise):
    """Sample-average KG on the discrete set A for each row of S: (m,), and the argmins (m, K)."""
    mean_A, _ = _marginals(post, A)
    Ks_S = post.kernel(post.X, S)
    Ks_A = post.kernel(post.X, A)
    V_S = jax.scipy.linalg.solve_triangular(post.L, Ks_S, lower=True)
    V_A = jax.scipy.linalg.solve_triangular(post.L, Ks_A, lower=True)
    cov_AS = post.kernel(A, S) - V_A.T @ V_S  # (p, m)
    var_S = post.kernel.diag(S) - jnp.sum(V_S * V_S, axis=0)
    sd = jnp.sqrt(jnp.maximum(var_S, 0.0) + noise)

    def one(cov_col, sd_j):
        table = mean_A[:, None] + (cov_col / sd_j)[:, None] * z[None, :]  # (p, K)
        return jnp.mean(jnp.min(table, axis=0)), jnp.argmin(table, axis=0)

    avg_min, idx = jax.lax.map(lambda args: one(*args), (cov_AS.T, sd))
    return jnp.min(mean_A) - avg_min, idx


def _sum_fantasy_means(flat, x, post, z, noise):
    return jnp.sum(_fantasy_means(post, x, flat.reshape(z.shape[0], -1), z, noise))


_SUM_FANTASY_VG = jax.jit(jax.value_and_grad(_sum_fantasy_means))


def optimize_fantasy_points(post: Posterior, x, base_samples, A, *, noise=None, maxiter: int = 200):
    """The inner problem of KG for a fixed x (d,): each fantasy's minimiser of mu_{n+1}^(k) on [0, 1]^d.

    Starts every fantasy at its best point of the finite set A (p, d)
    (:func:`fantasy_minimizers_on_set`) and runs L-BFGS-B on the sum of the K fantasy means (the
    fantasies do not interact, so this minimises each one). Returns (fantasy_points (K, d),
    values (K,)); each value is <= its minimum over A.
    """
    x = np.asarray(x, dtype=np.float64)
    z = np.asarray(base_samples, dtype=np.float64)
    A = np.asarray(A, dtype=np.float64)
    noise = float(post.noise) if noise is None else float(noise)
    idx, start_vals = fantasy_minimizers_on_set(post, x, A, z, noise)
    d = x.shape[0]
    args = (jnp.asarray(x), post, jnp.asarray(z), noise)

    def objective(flat):
        v, g = _SUM_FANTASY_VG(jnp.asarray(flat), *args)
        return float(v), np.asarray(g, dtype=np.float64)

    theta0 = A[idx].ravel()
    res = scipy.optimize.minimize(objective, theta0, jac=True, method="L-BFGS-B",
                                  bounds=[(0.0, 1.0)] * theta0.size,
                                  # the sum of K terms: tight tolerances so each term converges
                                  options={"maxiter": int(maxiter), "ftol": 1e-14, "gtol": 1e-10})
    Xf = np.clip(res.x, 0.0, 1.0).reshape(-1, d)
    vals = np.array(fantasy_means(post, x, Xf, z, noise))
    start_vals = np.array(start_vals)
    # never worse than the start, fantasy by fantasy
    worse = vals > start_vals
    Xf[worse], vals[worse] = A[idx][worse], start_vals[worse]
    return Xf, vals


class OneShotKGResult(NamedTuple):
    """x (d,): the proposed point (unit cube); value: its one-shot KG; fantasy_points (K, d);
    current_min: min of the current posterior mean used as c; base_samples (K,)."""

    x: np.ndarray
    value: float
    fantasy_points: np.ndarray
    current_min: float
    base_samples: np.ndarray


def maximize_one_shot_kg(post: Posterior, dim: int, *, n_fantasies: int = 64, seed: int = 0,
                         n_candidates: int = 256, n_starts: int = 4, data=None, base_samples=None,
                         noise=None, maxiter: int = 200) -> OneShotKGResult:
    """Maximise the one-shot KG jointly over x and K fantasy points in [0, 1]^dim.

    Steps: (1) c = min of the posterior mean (Sobol screen + L-BFGS-B); (2) on a set A of
    ``n_candidates`` Sobol points plus ``data`` (k, dim), the sample-average KG of every x in A
    with the fantasy minimisers restricted to A (the discrete KG of the same base samples);
    (3) from the ``n_starts`` best, with each fantasy point at its minimiser in A, L-BFGS-B over
    all (K + 1) dim coordinates with exact JAX gradients; keep the best.

    base_samples: (K,) standard normals; default quasi-random (:func:`qmc_normal_samples`) with
    ``n_fantasies`` points. Returns :class:`OneShotKGResult`.

    To use it in :class:`bayeskit.bo.BayesianOptimizer` (acquisition "kg"), call it on the loop's
    padded posterior with ``data`` the observed points in the unit cube and take ``result.x``.
    """
    if not isinstance(post, Posterior):
        raise TypeError(f"post must be a bayeskit.gp.Posterior; got {type(post).__name__}")
    dim = int(dim)
    if dim != post.X.shape[1]:
        raise ValueError(f"dim must equal the posterior's input dimension {post.X.shape[1]}; got {dim}")
    if base_samples is None:
        if isinstance(n_fantasies, bool) or not isinstance(n_fantasies, (int, np.integer)) or n_fantasies < 1:
            raise ValueError(f"n_fantasies must be an int >= 1; got {n_fantasies!r}")
        z = qmc_normal_samples(int(n_fantasies), seed)
    else:
        z = np.asarray(base_samples, dtype=np.float64)
        if z.ndim != 1 or z.size < 1 or not np.all(np.isfinite(z)):
            raise ValueError(f"base_samples must be a finite 1-D array (K,); got shape {np.shape(base_samples)}")
    if int(n_starts) < 1:
        raise ValueError(f"n_starts must be >= 1; got {n_starts}")
    noise = float(post.noise) if noise is None else float(noise)
    K = z.shape[0]
    A = sobol_points(int(n_candidates), dim, seed + 1)
    if data is not None and len(data):
        extra = np.clip(np.asarray(data, dtype=np.float64).reshape(-1, dim), 0.0, 1.0)
        # repeat a row up to a bucket size: a growing data set does not recompile every step
        extra = np.vstack([extra, np.repeat(extra[:1], bucket_size(len(extra)) - len(extra), axis=0)])
        A = np.vstack([A, extra])
    x_min, neg_c = maximize_acquisition(_u_neg_mean, dim, args=(post,), seed=seed, candidates=A)
    A = np.vstack([A, x_min[None, :]])  # the current minimiser is a good fantasy start too
    c = -neg_c
    kg_A, idx = _screen(post, jnp.asarray(A), jnp.asarray(A), jnp.asarray(z), noise)
    kg_A, idx = np.asarray(kg_A), np.asarray(idx)
    order = np.argsort(-np.where(np.isfinite(kg_A), kg_A, -np.inf))[: int(n_starts)]

    zj = jnp.asarray(z)
    box = [(0.0, 1.0)] * ((K + 1) * dim)

    def objective(theta):
        v, g = _NEG_OS_KG_VG(jnp.asarray(theta), post, zj, c, noise)
        v, g = float(v), np.asarray(g, dtype=np.float64)
        if not (np.isfinite(v) and np.all(np.isfinite(g))):
            return 1e300, np.zeros_like(theta)
        return v, g

    best = None
    for j in order:
        theta0 = np.concatenate([A[j], A[idx[j]].ravel()])
        res = scipy.optimize.minimize(objective, theta0, jac=True, method="L-BFGS-B", bounds=box,
                                      options={"maxiter": int(maxiter)})
        theta = np.clip(res.x, 0.0, 1.0)
        value = -float(objective(theta)[0])
        start = -float(objective(theta0)[0])
        if start > value:  # keep the start if the line search went astray
            theta, value = theta0, start
        if best is None or value > best[1]:
            best = (theta, value)
    theta, value = best
    return OneShotKGResult(theta[:dim], float(value), theta[dim:].reshape(K, dim), float(c), z)
