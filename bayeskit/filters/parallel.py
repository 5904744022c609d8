"""Parallel-in-time Kalman filter and RTS smoother (associative scan).

*Temporal Parallelization of Bayesian Smoothers* (Sarkka & Garcia-Fernandez) writes filtering
as a prefix "sum" of per-step elements under an associative operator, so
``jax.lax.associative_scan`` computes all T filtered moments in O(log T) parallel depth. On a
GPU that beats the sequential ``lax.scan`` for long sequences; on a CPU it does several times
more arithmetic, so :func:`bayeskit.filters.kalman_filter` remains the default there.

Filtering element of step t (a conditional Gaussian p(x_t | x_{t-1}, y_t) = N(A x + b, C) and
the information eta, J that y_t carries about x_{t-1}), from the paper's Lemmas 7-8::

    S = H Q H^T + R,  K = Q H^T S^{-1}
    A = (I - K H) F,  b = K y,  C = (I - K H) Q
    eta = F^T H^T S^{-1} y,  J = F^T H^T S^{-1} H F

and at t = 0 the prior is conditioned on y_0 directly (A = 0, J = 0). Two elements combine as::

    A_ij = A_j (I + C_i J_j)^{-1} A_i
    b_ij = A_j (I + C_i J_j)^{-1} (b_i + C_i eta_j) + b_j
    C_ij = A_j (I + C_i J_j)^{-1} C_i A_j^T + C_j
    eta_ij = A_i^T (I + J_j C_i)^{-1} (eta_j - J_j b_i) + eta_i
    J_ij = A_i^T (I + J_j C_i)^{-1} J_j A_i + J_i

The filtered mean and covariance of step t are b and C of the prefix combination. The
log-likelihood then needs only each step's predictive N(H m-, H P- H^T + R), computed for all
steps at once from the previous filtered moments. Missing values (NaN) are masked as in the
sequential filter. Smoothing combines elements (E, g, L) = (P F^T (P-)^{-1}, m - E F m, P - E F P)
in reverse with E_ij = E_i E_j, g_ij = E_i g_j + g_i, L_ij = E_i L_j E_i^T + L_i (Lemmas 9-10).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from .kalman import (
    FilterResult,
    LinearGaussianSSM,
    SmootherResult,
    _symmetrize,
    _update,
    validate,
)

__all__ = ["parallel_kalman_filter", "parallel_rts_smoother"]


def _masked(y, H, R):
    observed = ~jnp.isnan(y)
    mask = observed.astype(y.dtype)
    return jnp.where(observed, y, 0.0), H * mask[:, None], R * jnp.outer(mask, mask) + jnp.diag(1.0 - mask)


def _filter_element(model: LinearGaussianSSM, y, first):
    F, H, Q, R, m0, P0 = model
    d = F.shape[0]
    eye = jnp.eye(d, dtype=F.dtype)
    y0, Hm, Rm = _masked(y, H, R)

    def generic():
        S = _symmetrize(Hm @ Q @ Hm.T + Rm)
        L = jnp.linalg.cholesky(S)
        K = jax.scipy.linalg.cho_solve((L, True), Hm @ Q).T
        HF = Hm @ F
        A = (eye - K @ Hm) @ F
        b = K @ y0
        C = _symmetrize((eye - K @ Hm) @ Q)
        eta = HF.T @ jax.scipy.linalg.cho_solve((L, True), y0)
        J = _symmetrize(HF.T @ jax.scipy.linalg.cho_solve((L, True), HF))
        return A, b, C, J, eta

    def initial():
        m, P, _ = _update(m0, P0, y, H, R)
        zero = jnp.zeros((d, d), dtype=F.dtype)
        return zero, m, P, zero, jnp.zeros(d, dtype=F.dtype)

    return jax.tree_util.tree_map(lambda a, b: jnp.where(first, a, b), initial(), generic())


def _combine_filter(ei, ej):
    Ai, bi, Ci, Ji, etai = ei
    Aj, bj, Cj, Jj, etaj = ej
    d = Ai.shape[-1]
    eye = jnp.eye(d, dtype=Ai.dtype)
    # batched over the scan's leading axis
    M = jnp.linalg.solve(eye + Ci @ Jj, jnp.concatenate([Ai, (bi + (Ci @ etaj[..., None])[..., 0])[..., None], Ci], axis=-1))
    MA, Mb, MC = M[..., :d], M[..., d], M[..., d + 1:]
    A = Aj @ MA
    b = (Aj @ Mb[..., None])[..., 0] + bj
    C = _symmetrize_batched(Aj @ MC @ jnp.swapaxes(Aj, -1, -2) + Cj)
    At = jnp.swapaxes(Ai, -1, -2)
    N = jnp.linalg.solve(eye + Jj @ Ci, jnp.concatenate([(etaj - (Jj @ bi[..., None])[..., 0])[..., None], Jj @ Ai], axis=-1))
    eta = (At @ N[..., :1])[..., 0] + etai
    J = _symmetrize_batched(At @ N[..., 1:] + Ji)
    return A, b, C, J, eta


def _symmetrize_batched(P):
    return 0.5 * (P + jnp.swapaxes(P, -1, -2))


@jax.jit
def _parallel_filter(model: LinearGaussianSSM, ys):
    F, H, Q, R, m0, P0 = model
    T = ys.shape[0]
    first = jnp.arange(T) == 0
    elements = jax.vmap(_filter_element, in_axes=(None, 0, 0))(model, ys, first)
    _, means, covs, _, _ = jax.lax.associative_scan(_combine_filter, elements)
    # predictive moments of every step from the previous filtered ones
    pred_means = jnp.concatenate([m0[None], means[:-1] @ F.T], axis=0)
    pred_covs = jnp.concatenate([P0[None], _symmetrize_batched(F @ covs[:-1] @ F.T + Q)], axis=0)

    def step_ll(m_pred, P_pred, y):
        return _update(m_pred, P_pred, y, H, R)[2]

    lls = jax.vmap(step_ll)(pred_means, pred_covs, ys)
    return FilterResult(means, covs, pred_means, pred_covs, jnp.sum(lls), lls)


def parallel_kalman_filter(model: LinearGaussianSSM, ys) -> FilterResult:
    """The filter of :func:`bayeskit.filters.kalman_filter`, in O(log T) parallel depth.

    Same inputs and outputs (means (T, d), covariances (T, d, d), log-likelihood); the results
    agree with the sequential filter to round-off.
    """
    model, ys = validate(model, ys)
    return _parallel_filter(LinearGaussianSSM(*map(jnp.asarray, model)), jnp.asarray(ys))


def _smoother_element(F, Q, m, P, last):
    d = F.shape[0]
    P_pred = _symmetrize(F @ P @ F.T + Q)
    L = jnp.linalg.cholesky(P_pred)
    E = jax.scipy.linalg.cho_solve((L, True), F @ P).T
    g = m - E @ (F @ m)
    Lc = _symmetrize(P - E @ F @ P)
    zero = jnp.zeros((d, d), dtype=F.dtype)
    return (jnp.where(last, zero, E), jnp.where(last, m, g), jnp.where(last, P, Lc))


def _combine_smoother(ei, ej):
    # ei is the later element in reverse order: apply as E_j(E_i x + g_i) ... see module doc
    Ej, gj, Lj = ei
    Ei, gi, Li = ej
    E = Ei @ Ej
    g = (Ei @ gj[..., None])[..., 0] + gi
    L = _symmetrize_batched(Ei @ Lj @ jnp.swapaxes(Ei, -1, -2) + Li)
    return E, g, L


@jax.jit
def _parallel_smooth(model: LinearGaussianSSM, filtered: FilterResult):
    T = filtered.means.shape[0]
    last = jnp.arange(T) == T - 1
    elements = jax.vmap(_smoother_element, in_axes=(None, None, 0, 0, 0))(
        model.F, model.Q, filtered.means, filtered.covariances, last
    )
    _, means, covs = jax.lax.associative_scan(_combine_smoother, elements, reverse=True)
    return means, covs


def parallel_rts_smoother(model: LinearGaussianSSM, ys) -> SmootherResult:
    """The RTS smoother of :func:`bayeskit.filters.rts_smoother`, in O(log T) parallel depth."""
    model, ys = validate(model, ys)
    jm = LinearGaussianSSM(*map(jnp.asarray, model))
    filtered = _parallel_filter(jm, jnp.asarray(ys))
    means, covs = _parallel_smooth(jm, filtered)
    return SmootherResult(means, covs, filtered)
