"""Kalman filter, Rauch-Tung-Striebel smoother and log-likelihood for linear-Gaussian models.

Model (Durbin & Koopman, *Time Series Analysis by State Space Methods*, ch. 4; our time index
starts at the first observation)::

    x_0 ~ N(m0, P0)                      prior of the first state, before y_0 is seen
    x_t = F x_{t-1} + w_t,  w_t ~ N(0, Q)
    y_t = H x_t + v_t,      v_t ~ N(0, R)

Filter, for t = 0, ..., T-1 (predict is skipped at t = 0, where the prior is (m0, P0))::

    predict   m- = F m,               P- = F P F^T + Q
    innovate  e = y - H m-,           S = H P- H^T + R
    gain      K = P- H^T S^{-1}       (via a Cholesky solve of S, no explicit inverse)
    update    m = m- + K e,           P = (I - K H) P- (I - K H)^T + K R K^T   (Joseph form)
    log p(y_t | y_{<t}) = log N(e | 0, S)

The Joseph form keeps P symmetric positive semi-definite under round-off, where the short
form (I - K H) P- loses symmetry over long runs. Missing values are NaN: a row of NaNs skips
the update; a partly missing row uses only its observed entries (the others get zero rows in H,
no cross-covariance in R, and their unit-variance placeholder term is removed from the
log-likelihood, so the result is exact).

Everything runs inside one ``jax.lax.scan``, jitted: dynamax's design (functional core returning
shape-annotated NamedTuples).
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import scipy.optimize

from .. import _config  # noqa: F401  (float64)
from .._validation import as_prng_key

__all__ = [
    "LinearGaussianSSM", "FilterResult", "SmootherResult", "MLEResult", "kalman_filter", "rts_smoother",
    "fit_mle", "fit_em", "EMResult", "sample",
]

_LOG_2PI = float(np.log(2.0 * np.pi))


class LinearGaussianSSM(NamedTuple):
    """Parameters of a time-invariant linear-Gaussian state-space model.

    F: (d, d) transition; H: (m, d) observation; Q: (d, d) process-noise covariance;
    R: (m, m) observation-noise covariance; m0: (d,) and P0: (d, d) the prior of the first
    state before the first observation.
    """

    F: jax.Array
    H: jax.Array
    Q: jax.Array
    R: jax.Array
    m0: jax.Array
    P0: jax.Array


class FilterResult(NamedTuple):
    """Filtered moments of p(x_t | y_0..t), predicted moments of p(x_t | y_0..t-1), log p(y)."""

    means: jax.Array  # (T, d)
    covariances: jax.Array  # (T, d, d)
    predicted_means: jax.Array  # (T, d)
    predicted_covariances: jax.Array  # (T, d, d)
    log_likelihood: jax.Array  # (): sum of step_log_likelihoods
    step_log_likelihoods: jax.Array  # (T,): log p(y_t | y_0..t-1)


class SmootherResult(NamedTuple):
    """Smoothed moments of p(x_t | y_0..T-1), and the filter they came from."""

    means: jax.Array  # (T, d)
    covariances: jax.Array  # (T, d, d)
    filtered: FilterResult


def _symmetrize(P):
    return 0.5 * (P + P.T)


def _check_psd(name: str, M: np.ndarray):
    if not np.allclose(M, M.T, rtol=1e-10, atol=1e-12 * max(1.0, np.abs(M).max())):
        raise ValueError(f"{name} must be symmetric; got max asymmetry {np.abs(M - M.T).max():.3g}")
    eig = np.linalg.eigvalsh(0.5 * (M + M.T))
    if eig.min() < -1e-10 * max(1.0, eig.max()):
        raise ValueError(f"{name} must be positive semi-definite; its smallest eigenvalue is {eig.min():.3g}")


def validate(model: LinearGaussianSSM, ys) -> tuple[LinearGaussianSSM, np.ndarray]:
    """Check shapes and covariances; return float64 arrays and ys as (T, m).

    Raises ValueError naming the offending argument (shape, non-finite, non-PSD).
    """
    arrays = {k: np.asarray(v, dtype=np.float64) for k, v in model._asdict().items()}
    F, H, Q, R, m0, P0 = (arrays[k] for k in LinearGaussianSSM._fields)
    if m0.ndim != 1:
        raise ValueError(f"m0 must be a vector (d,); got shape {m0.shape}")
    d = m0.shape[0]
    H = H.reshape(1, -1) if H.ndim == 1 else H
    R = R.reshape(1, 1) if R.ndim == 0 else R
    m = H.shape[0]
    for name, arr, shape in (("F", F, (d, d)), ("H", H, (m, d)), ("Q", Q, (d, d)), ("R", R, (m, m)), ("P0", P0, (d, d))):
        if arr.shape != shape:
            raise ValueError(f"{name} must have shape {shape} (d={d} states, m={m} observations); got {arr.shape}")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} contains NaN or infinite values")
    if not np.all(np.isfinite(m0)):
        raise ValueError("m0 contains NaN or infinite values")
    for name, arr in (("Q", Q), ("R", R), ("P0", P0)):
        _check_psd(name, arr)
    ys = np.asarray(ys, dtype=np.float64)
    if ys.ndim == 1 and m == 1:
        ys = ys[:, None]
    if ys.ndim != 2 or ys.shape[1] != m:
        raise ValueError(f"ys must have shape (T, {m}) (or (T,) when m = 1); got {ys.shape}")
    if ys.shape[0] == 0:
        raise ValueError("ys is empty: at least one time step is needed")
    if np.any(np.isinf(ys)):
        raise ValueError("ys contains infinite values (use NaN for missing observations)")
    return LinearGaussianSSM(F, H, Q, R, m0, P0), ys


def _update(m_pred, P_pred, y, H, R, masked: bool = True):
    """One Joseph-form measurement update with a (possibly partial) NaN mask.

    ``masked=False`` (static) skips the masking arithmetic when no value can be missing.
    """
    if masked:
        observed = ~jnp.isnan(y)
        mask = observed.astype(y.dtype)
        y0 = jnp.where(observed, y, 0.0)
        Hm = H * mask[:, None]
        # missing entries: no cross-covariance, unit variance placeholder (removed from the LL)
        Rm = R * jnp.outer(mask, mask) + jnp.diag(1.0 - mask)
        n_obs = jnp.sum(mask)
    else:
        y0, Hm, Rm, n_obs = y, H, R, y.shape[0]
    e = y0 - Hm @ m_pred
    S = _symmetrize(Hm @ P_pred @ Hm.T + Rm)
    L = jnp.linalg.cholesky(S)
    # K = P- H^T S^{-1}, solved with the Cholesky factor: K^T = S^{-1} H P-
    K = jax.scipy.linalg.cho_solve((L, True), Hm @ P_pred).T
    m_new = m_pred + K @ e
    I_KH = jnp.eye(m_pred.shape[0], dtype=y.dtype) - K @ Hm
    P_new = _symmetrize(I_KH @ P_pred @ I_KH.T + K @ Rm @ K.T)
    z = jax.scipy.linalg.solve_triangular(L, e, lower=True)
    # log N(e | 0, S) minus the placeholder terms log N(0 | 0, 1) of missing entries
    ll = -0.5 * jnp.sum(z * z) - jnp.sum(jnp.log(jnp.diagonal(L))) - 0.5 * n_obs * _LOG_2PI
    return m_new, P_new, ll


@partial(jax.jit, static_argnames=("masked",))
def _filter(model: LinearGaussianSSM, ys, masked: bool = True):
    F, H, Q, R, m0, P0 = model

    def step(carry, inputs):
        m, P = carry
        y, first = inputs
        m_pred = jnp.where(first, m0, F @ m)
        P_pred = jnp.where(first, P0, _symmetrize(F @ P @ F.T + Q))
        m_new, P_new, ll_t = _update(m_pred, P_pred, y, H, R, masked)
        return (m_new, P_new), (m_new, P_new, m_pred, P_pred, ll_t)

    first = jnp.arange(ys.shape[0]) == 0
    _, (ms, Ps, mps, Pps, lls) = jax.lax.scan(step, (m0, P0), (ys, first))
    return FilterResult(ms, Ps, mps, Pps, jnp.sum(lls), lls)


def kalman_filter(model: LinearGaussianSSM, ys) -> FilterResult:
    """Filtered means (T, d), covariances (T, d, d) and log p(y_0..T-1) of a linear-Gaussian model.

    ys: (T, m) observations, or (T,) when m = 1; NaN marks a missing value.
    """
    model, ys = validate(model, ys)
    masked = bool(np.isnan(ys).any())
    return _filter(LinearGaussianSSM(*map(jnp.asarray, model)), jnp.asarray(ys), masked)


@jax.jit
def _smooth(model: LinearGaussianSSM, filtered: FilterResult):
    F = model.F

    def step(carry, inputs):
        m_next_s, P_next_s = carry
        m_f, P_f, m_next_pred, P_next_pred = inputs
        # smoother gain G = P_f F^T (P-_{t+1})^{-1}, via a Cholesky solve
        L = jnp.linalg.cholesky(P_next_pred)
        G = jax.scipy.linalg.cho_solve((L, True), F @ P_f).T
        m_s = m_f + G @ (m_next_s - m_next_pred)
        P_s = _symmetrize(P_f + G @ (P_next_s - P_next_pred) @ G.T)
        return (m_s, P_s), (m_s, P_s)

    last = (filtered.means[-1], filtered.covariances[-1])
    inputs = (
        filtered.means[:-1],
        filtered.covariances[:-1],
        filtered.predicted_means[1:],
        filtered.predicted_covariances[1:],
    )
    _, (ms, Ps) = jax.lax.scan(step, last, inputs, reverse=True)
    means = jnp.concatenate([ms, last[0][None]], axis=0)
    covs = jnp.concatenate([Ps, last[1][None]], axis=0)
    return means, covs


def rts_smoother(model: LinearGaussianSSM, ys) -> SmootherResult:
    """Rauch-Tung-Striebel smoothed means (T, d) and covariances (T, d, d) of p(x_t | all y).

    G_t = P_t F^T (P-_{t+1})^{-1};  m^s_t = m_t + G_t (m^s_{t+1} - m-_{t+1});
    P^s_t = P_t + G_t (P^s_{t+1} - P-_{t+1}) G_t^T   (Durbin & Koopman sec. 4.4).
    """
    model, ys = validate(model, ys)
    jm = LinearGaussianSSM(*map(jnp.asarray, model))
    filtered = _filter(jm, jnp.asarray(ys))
    means, covs = _smooth(jm, filtered)
    return SmootherResult(means, covs, filtered)


class MLEResult(NamedTuple):
    """Maximum-likelihood parameters ``theta`` (p,), the model they build, and the maximised
    log-likelihood (log p(y) without the first ``burn_in`` terms)."""

    theta: np.ndarray
    model: LinearGaussianSSM
    log_likelihood: float
    n_evaluations: int


def fit_mle(build, theta0, ys, *, burn_in: int = 0, bounds=None) -> MLEResult:
    """Maximise the Kalman-filter log-likelihood over unconstrained parameters ``theta``.

    ``build(theta) -> LinearGaussianSSM`` must be written in ``jax.numpy`` (e.g. variances as
    ``jnp.exp`` of log-variances), so the gradient comes from automatic differentiation through
    the filter's ``lax.scan``; scipy's L-BFGS-B does the optimisation. ``burn_in`` leaves the
    first observations out of the objective: with a very wide prior P0 and ``burn_in = d``
    this approximates the exact diffuse initialisation of Durbin & Koopman (sec. 5.2), whose
    first d terms carry no information about the parameters.
    """
    ys_checked = validate(build(jnp.asarray(theta0, dtype=jnp.float64)), ys)[1]
    ys_j = jnp.asarray(ys_checked)
    if not 0 <= burn_in < ys_j.shape[0]:
        raise ValueError(f"burn_in must be in [0, T) = [0, {ys_j.shape[0]}); got {burn_in}")

    @jax.jit
    def negative_ll(theta):
        return -jnp.sum(_filter(build(theta), ys_j).step_log_likelihoods[burn_in:])

    value_and_grad = jax.jit(jax.value_and_grad(negative_ll))
    calls = [0]

    def objective(theta):
        calls[0] += 1
        v, g = value_and_grad(jnp.asarray(theta))
        return float(v), np.asarray(g, dtype=np.float64)

    res = scipy.optimize.minimize(objective, np.asarray(theta0, dtype=np.float64), jac=True,
                                  method="L-BFGS-B", bounds=bounds)
    if not np.isfinite(res.fun):
        raise FloatingPointError("the log-likelihood was not finite at the optimum; check build(theta)")
    theta = np.asarray(res.x)
    return MLEResult(theta, build(jnp.asarray(theta)), -float(res.fun), calls[0])


# ---------------------------------------------------------------------------------------------
# Sampling and EM
# ---------------------------------------------------------------------------------------------
def sample(model: LinearGaussianSSM, key, T: int):
    """Draw states (T, d) and observations (T, m) from the model, with an explicit PRNG key
    (a ``jax.random`` key or an int seed)."""
    key = as_prng_key(key)
    if int(T) < 1:
        raise ValueError(f"T must be >= 1; got {T}")
    model, _ = validate(model, np.zeros((1, np.atleast_2d(np.asarray(model.H)).shape[0])))
    return _sample(LinearGaussianSSM(*map(jnp.asarray, model)), key, int(T))


def _psd_sqrt(M):
    # eigh, not Cholesky: Q or P0 may be singular (e.g. a noise-free state component)
    w, V = jnp.linalg.eigh(_symmetrize(M))
    return V * jnp.sqrt(jnp.maximum(w, 0.0))


@partial(jax.jit, static_argnames=("T",))
def _sample(model: LinearGaussianSSM, key, T: int):
    F, H, Q, R, m0, P0 = model
    d, m = F.shape[0], H.shape[0]
    k0, kw, kv = jax.random.split(key, 3)
    x0 = m0 + _psd_sqrt(P0) @ jax.random.normal(k0, (d,), dtype=F.dtype)
    w = jax.random.normal(kw, (T, d), dtype=F.dtype) @ _psd_sqrt(Q).T
    v = jax.random.normal(kv, (T, m), dtype=F.dtype) @ _psd_sqrt(R).T

    def step(x, w_t):
        x_next = F @ x + w_t
        return x_next, x_next

    _, rest = jax.lax.scan(step, x0, w[1:])
    xs = jnp.concatenate([x0[None], rest], axis=0)
    return xs, xs @ H.T + v


class EMResult(NamedTuple):
    """The fitted model and the log-likelihood before each EM iteration (non-decreasing)."""

    model: LinearGaussianSSM
    log_likelihoods: np.ndarray


_EM_FIELDS = ("F", "H", "Q", "R", "m0", "P0")


@partial(jax.jit, static_argnames=("update",))
def _em_step(model: LinearGaussianSSM, ys, observed, update):
    filtered = _filter(model, ys)
    ms, Ps = _smooth(model, filtered)
    F = model.F
    # smoother gains G_t = P_t F^T (P-_{t+1})^{-1}, t = 0..T-2, for the lag-one covariances
    G = jax.vmap(lambda P, Pp: jax.scipy.linalg.solve(Pp, F @ P, assume_a="pos").T)(
        filtered.covariances[:-1], filtered.predicted_covariances[1:]
    )
    V = Ps + ms[:, :, None] * ms[:, None, :]  # E[x_t x_t^T]
    C = Ps[1:] @ jnp.swapaxes(G, 1, 2) + ms[1:, :, None] * ms[:-1, None, :]  # E[x_t x_{t-1}^T]
    new = dict(model._asdict())
    T = ys.shape[0]
    if "F" in update:
        new["F"] = jax.scipy.linalg.solve(jnp.sum(V[:-1], 0), jnp.sum(C, 0).T, assume_a="pos").T
    if "Q" in update:
        Fn = new["F"]
        S = jnp.sum(V[1:] - C @ Fn.T - Fn @ jnp.swapaxes(C, 1, 2) + Fn @ V[:-1] @ Fn.T, 0)
        new["Q"] = _symmetrize(S / (T - 1))
    w = observed.astype(ys.dtype)  # rows with observations
    y0 = jnp.where(observed[:, None], ys, 0.0)
    if "H" in update:
        Syx = jnp.sum(y0[:, :, None] * ms[:, None, :], 0)
        new["H"] = jax.scipy.linalg.solve(jnp.sum(w[:, None, None] * V, 0), Syx.T, assume_a="pos").T
    if "R" in update:
        Hn = new["H"]
        r = y0 - ms @ Hn.T
        S = jnp.sum(w[:, None, None] * (r[:, :, None] * r[:, None, :] + Hn @ Ps @ Hn.T), 0)
        new["R"] = _symmetrize(S / jnp.sum(w))
    if "m0" in update:
        new["m0"] = ms[0]
    if "P0" in update:
        new["P0"] = _symmetrize(Ps[0])
    return LinearGaussianSSM(**new), filtered.log_likelihood


def fit_em(model: LinearGaussianSSM, ys, *, n_iter: int = 100, update=("F", "H", "Q", "R"),
           tol: float = 1e-9) -> EMResult:
    """Expectation-maximisation for the parameters named in ``update`` (the others stay fixed).

    E-step: RTS-smoothed moments and lag-one covariances E[x_t x_{t-1}^T] = P^s_t G_{t-1}^T +
    m^s_t m^s_{t-1}^T. M-step: the closed forms of Shumway & Stoffer (*An approach to time
    series smoothing and forecasting using the EM algorithm*), e.g.
    F = (sum E[x_t x_{t-1}^T]) (sum E[x_{t-1} x_{t-1}^T])^{-1} and Q the mean squared one-step
    residual. Every iteration cannot lower the log-likelihood. Rows of ``ys`` must be fully
    observed or fully missing (NaN) when H or R is updated. Stops after ``n_iter`` iterations
    or when the log-likelihood gains less than ``tol`` (relative).
    """
    unknown = set(update) - set(_EM_FIELDS)
    if unknown:
        raise ValueError(f"update may name only {_EM_FIELDS}; got {sorted(unknown)}")
    model, ys = validate(model, ys)
    if ys.shape[0] < 2:
        raise ValueError("EM needs at least 2 time steps")
    nan = np.isnan(ys)
    if ({"H", "R"} & set(update)) and np.any(nan.any(1) & ~nan.all(1)):
        raise ValueError("with H or R in update, each row of ys must be fully observed or fully missing")
    observed = jnp.asarray(~nan.any(1))
    current = LinearGaussianSSM(*map(jnp.asarray, model))
    ys_j = jnp.asarray(ys)
    lls = []
    for _ in range(int(n_iter)):
        nxt, ll = _em_step(current, ys_j, observed, tuple(sorted(update)))
        lls.append(float(ll))
        if len(lls) > 1 and abs(lls[-1] - lls[-2]) <= tol * abs(lls[-2]):
            break
        current = nxt
    return EMResult(current, np.array(lls))
