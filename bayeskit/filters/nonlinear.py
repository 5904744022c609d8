"""Filters for nonlinear state-space models: extended, unscented and bootstrap particle.

Model, with ``f`` and ``h`` written in ``jax.numpy``::

    x_0 ~ N(m0, P0),   x_t = f(x_{t-1}) + w_t, w_t ~ N(0, Q),   y_t = h(x_t) + v_t, v_t ~ N(0, R)

* **Extended Kalman filter (EKF)**: linearise f and h at the current mean (Jacobians by
  ``jax.jacfwd``), then the Kalman predict/update of :mod:`bayeskit.filters.kalman`.
* **Unscented Kalman filter (UKF)**: propagate 2d + 1 sigma points through f and h and match
  moments (Wan & van der Merwe, *The Unscented Kalman Filter for Nonlinear Estimation*;
  scaled sigma points with alpha, beta, kappa).
* **Bootstrap particle filter**: propagate N particles through the dynamics, weight them by
  the likelihood, resample systematically (Gordon, Salmond & Smith, *Novel approach to
  nonlinear/non-Gaussian Bayesian state estimation*). log p(y) is estimated by the running
  sum of log-mean weights, unbiased for p(y) itself; weights are kept in log space.

For a linear model the EKF and the UKF are exactly the Kalman filter, a check the tests use.
NaN rows in ``ys`` are missing observations: the update is skipped.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .._validation import as_prng_key
from .kalman import FilterResult, _symmetrize

__all__ = [
    "NonlinearGaussianSSM",
    "ParticleFilterResult",
    "extended_kalman_filter",
    "unscented_kalman_filter",
    "bootstrap_particle_filter",
]

_LOG_2PI = float(np.log(2.0 * np.pi))


class NonlinearGaussianSSM(NamedTuple):
    """f: (d,) -> (d,) dynamics; h: (d,) -> (m,) observation; Q (d, d); R (m, m); m0 (d,); P0 (d, d)."""

    f: Callable
    h: Callable
    Q: jax.Array
    R: jax.Array
    m0: jax.Array
    P0: jax.Array


class ParticleFilterResult(NamedTuple):
    """Weighted-particle summaries: means (T, d), covariances (T, d, d), log p(y) estimate,
    effective sample size before resampling (T,), and the final particles (N, d)."""

    means: jax.Array
    covariances: jax.Array
    log_likelihood: jax.Array
    effective_sample_size: jax.Array
    particles: jax.Array


def as_observations(ys, m: int) -> np.ndarray:
    """``ys`` as a float (T, m) array with T >= 1 ((T,) accepted when m = 1); NaN marks a missing
    observation, infinity is an error."""
    ys = np.asarray(ys, dtype=np.float64)
    if ys.ndim == 1 and m == 1:
        ys = ys[:, None]
    if ys.ndim != 2 or ys.shape[1] != m or ys.shape[0] == 0:
        raise ValueError(f"ys must have shape (T, {m}) with T >= 1 (or (T,) when m = 1); got {ys.shape}")
    if np.any(np.isinf(ys)):
        raise ValueError("ys contains infinite values (use NaN for missing observations)")
    return ys


def _validate(model: NonlinearGaussianSSM, ys):
    m0 = np.asarray(model.m0, dtype=np.float64)
    if m0.ndim != 1:
        raise ValueError(f"m0 must be a vector (d,); got shape {m0.shape}")
    d = m0.shape[0]
    Q, R, P0 = (np.atleast_2d(np.asarray(a, dtype=np.float64)) for a in (model.Q, model.R, model.P0))
    if Q.shape != (d, d) or P0.shape != (d, d):
        raise ValueError(f"Q and P0 must have shape ({d}, {d}); got {Q.shape} and {P0.shape}")
    m = R.shape[0]
    if R.shape != (m, m):
        raise ValueError(f"R must be square (m, m); got {R.shape}")
    for name, M in (("Q", Q), ("R", R), ("P0", P0)):
        if not np.all(np.isfinite(M)) or np.linalg.eigvalsh(0.5 * (M + M.T)).min() < -1e-12:
            raise ValueError(f"{name} must be a finite positive semi-definite matrix")
    ys = as_observations(ys, m)
    y_try = np.asarray(model.h(jnp.asarray(m0)))
    x_try = np.asarray(model.f(jnp.asarray(m0)))
    if y_try.shape != (m,) or x_try.shape != (d,):
        raise ValueError(f"f must map (d,) = ({d},) to ({d},) and h to ({m},); got {x_try.shape} and {y_try.shape}")
    return model._replace(Q=jnp.asarray(Q), R=jnp.asarray(R), m0=jnp.asarray(m0), P0=jnp.asarray(P0)), jnp.asarray(ys)


def _gaussian_update(m_pred, P_pred, y, y_pred, S, cross):
    """Update given the predicted observation mean (m,), its covariance S (m, m) and the
    state-observation cross-covariance (d, m); skipped (with zero log-likelihood) if y has NaN."""
    L = jnp.linalg.cholesky(_symmetrize(S))
    K = jax.scipy.linalg.cho_solve((L, True), cross.T).T
    e = y - y_pred
    m_new = m_pred + K @ e
    P_new = _symmetrize(P_pred - K @ S @ K.T)
    z = jax.scipy.linalg.solve_triangular(L, e, lower=True)
    ll = -0.5 * z @ z - jnp.sum(jnp.log(jnp.diagonal(L))) - 0.5 * y.shape[0] * _LOG_2PI
    missing = jnp.any(jnp.isnan(y))
    return (jnp.where(missing, m_pred, m_new), jnp.where(missing, P_pred, P_new), jnp.where(missing, 0.0, ll))


def _run(step, m0, P0, ys):
    first = jnp.arange(ys.shape[0]) == 0

    def body(carry, inputs):
        m, P = carry
        y, is_first = inputs
        m_pred, P_pred, m_new, P_new, ll = step(m, P, y, is_first)
        return (m_new, P_new), (m_new, P_new, m_pred, P_pred, ll)

    _, (ms, Ps, mps, Pps, lls) = jax.lax.scan(body, (m0, P0), (ys, first))
    return FilterResult(ms, Ps, mps, Pps, jnp.sum(lls), lls)


@partial(jax.jit, static_argnames=("f", "h"))
def _ekf(f, h, Q, R, m0, P0, ys):

    def step(m, P, y, is_first):
        Fj = jax.jacfwd(f)(m)
        m_pred = jnp.where(is_first, m0, f(m))
        P_pred = jnp.where(is_first, P0, _symmetrize(Fj @ P @ Fj.T + Q))
        Hj = jax.jacfwd(h)(m_pred)
        S = Hj @ P_pred @ Hj.T + R
        m_new, P_new, ll = _gaussian_update(m_pred, P_pred, y, h(m_pred), S, P_pred @ Hj.T)
        return m_pred, P_pred, m_new, P_new, ll

    return _run(step, m0, P0, ys)


def extended_kalman_filter(model: NonlinearGaussianSSM, ys) -> FilterResult:
    """EKF: filtered means (T, d), covariances (T, d, d) and the Gaussian-approximate log p(y)."""
    model, ys = _validate(model, ys)
    return _ekf(*model, ys)


def sigma_points(m, P, alpha: float = 1.0, beta: float = 2.0, kappa: float = 0.0):
    """Scaled sigma points (2d + 1, d) and mean / covariance weights (2d + 1,).

    lambda = alpha^2 (d + kappa) - d; points m and m +- columns of chol((d + lambda) P);
    W_m0 = lambda / (d + lambda), W_c0 = W_m0 + 1 - alpha^2 + beta, others 1 / (2 (d + lambda)).
    """
    d = m.shape[0]
    lam = alpha**2 * (d + kappa) - d
    L = jnp.linalg.cholesky(_symmetrize((d + lam) * P))
    points = jnp.concatenate([m[None], m + L.T, m - L.T], axis=0)
    wm = jnp.full(2 * d + 1, 0.5 / (d + lam)).at[0].set(lam / (d + lam))
    wc = wm.at[0].add(1.0 - alpha**2 + beta)
    return points, wm, wc


@partial(jax.jit, static_argnames=("f", "h", "alpha", "beta", "kappa"))
def _ukf(f, h, Q, R, m0, P0, ys, alpha, beta, kappa):

    def step(m, P, y, is_first):
        X, wm, wc = sigma_points(m, P, alpha, beta, kappa)
        FX = jax.vmap(f)(X)
        mf = wm @ FX
        Pf = _symmetrize((FX - mf).T @ (wc[:, None] * (FX - mf)) + Q)
        m_pred = jnp.where(is_first, m0, mf)
        P_pred = jnp.where(is_first, P0, Pf)
        Xp, wm, wc = sigma_points(m_pred, P_pred, alpha, beta, kappa)
        HX = jax.vmap(h)(Xp)
        y_pred = wm @ HX
        S = (HX - y_pred).T @ (wc[:, None] * (HX - y_pred)) + R
        cross = (Xp - m_pred).T @ (wc[:, None] * (HX - y_pred))
        m_new, P_new, ll = _gaussian_update(m_pred, P_pred, y, y_pred, S, cross)
        return m_pred, P_pred, m_new, P_new, ll

    return _run(step, m0, P0, ys)


def unscented_kalman_filter(model: NonlinearGaussianSSM, ys, *, alpha: float = 1.0,
                            beta: float = 2.0, kappa: float = 0.0) -> FilterResult:
    """UKF with scaled sigma points (see :func:`sigma_points`); same outputs as the EKF."""
    if not alpha > 0:
        raise ValueError(f"alpha must be > 0; got {alpha}")
    model, ys = _validate(model, ys)
    return _ukf(*model, ys, float(alpha), float(beta), float(kappa))


def systematic_resample(key, log_weights):
    """Indices (N,) of a systematic resample: one uniform offset, N evenly spaced positions."""
    n = log_weights.shape[0]
    w = jnp.exp(log_weights - jax.scipy.special.logsumexp(log_weights))
    positions = (jax.random.uniform(key, dtype=w.dtype) + jnp.arange(n)) / n
    return jnp.clip(jnp.searchsorted(jnp.cumsum(w), positions), 0, n - 1)


@partial(jax.jit, static_argnames=("f", "h", "n_particles"))
def _pf(f, h, Q, R, m0, P0, ys, key, n_particles):
    d, m = m0.shape[0], R.shape[0]
    LQ = jnp.linalg.cholesky(Q + 1e-300 * jnp.eye(d))
    LR = jnp.linalg.cholesky(R)
    key, sub = jax.random.split(key)
    x0 = m0 + jax.random.normal(sub, (n_particles, d)) @ jnp.linalg.cholesky(P0 + 1e-300 * jnp.eye(d)).T

    def log_lik(x, y):
        z = jax.scipy.linalg.solve_triangular(LR, y - h(x), lower=True)
        return -0.5 * z @ z - jnp.sum(jnp.log(jnp.diagonal(LR))) - 0.5 * m * _LOG_2PI

    def body(carry, inputs):
        x, key = carry
        y, is_first = inputs
        key, k_prop, k_res = jax.random.split(key, 3)
        moved = jax.vmap(f)(x) + jax.random.normal(k_prop, x.shape) @ LQ.T
        x = jnp.where(is_first, x, moved)
        missing = jnp.any(jnp.isnan(y))
        logw = jnp.where(missing, 0.0, jax.vmap(log_lik, in_axes=(0, None))(x, jnp.nan_to_num(y)))
        ll = jax.scipy.special.logsumexp(logw) - jnp.log(n_particles)
        w = jnp.exp(logw - jax.scipy.special.logsumexp(logw))
        mean = w @ x
        cov = _symmetrize((x - mean).T @ (w[:, None] * (x - mean)))
        ess = 1.0 / jnp.sum(w**2)
        x = x[systematic_resample(k_res, logw)]
        return (x, key), (mean, cov, ll, ess)

    first = jnp.arange(ys.shape[0]) == 0
    (x, _), (means, covs, lls, ess) = jax.lax.scan(body, (x0, key), (ys, first))
    return ParticleFilterResult(means, covs, jnp.sum(lls), ess, x)


def bootstrap_particle_filter(model: NonlinearGaussianSSM, ys, *, key, n_particles: int = 1000) -> ParticleFilterResult:
    """Bootstrap particle filter with systematic resampling at every step.

    ``key`` is a ``jax.random`` key or an int seed (required, for reproducibility). Returns weighted means
    (T, d), covariances (T, d, d), the log-likelihood estimate and the effective sample sizes.
    """
    if int(n_particles) < 2:
        raise ValueError(f"n_particles must be >= 2; got {n_particles}")
    key = as_prng_key(key)
    model, ys = _validate(model, ys)
    return _pf(*model, ys, key, int(n_particles))
