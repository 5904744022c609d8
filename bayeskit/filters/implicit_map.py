"""Implicit MAP (IMAP) filtering: a Bayesian filter defined by an optimiser.

Bencomo, Snell & Griffiths, *Implicit Maximum a Posteriori Filtering via Adaptive Optimization*
(ICLR 2024). Instead of propagating covariances, each time step runs K steps of an optimiser
(plain gradient descent, momentum, Adam, ... any ``optax`` transformation) on the negative
log-likelihood of the new measurement alone::

    predict     x_t^(0) = f(x_{t-1})            (x_0^(0) = x0: no predict before the first y)
    update      x_t^(k+1) = x_t^(k) + optax_update(grad l_t(x_t^(k))),  k = 0, ..., K-1
    estimate    x_t = x_t^(K)
    loss        l_t(x) = 1/2 (y_t - h(x))^T R^{-1} (y_t - h(x))         (= -log p(y_t | x) + const)

No prior term appears in l_t: the prior is *implicit*, set by where the optimiser starts (the
prediction f(x_{t-1})), by how far K truncated steps can travel, and by the step sizes. Truncated
gradient descent on a quadratic is ridge regularisation in disguise (the paper's Fig. 1, after
Santos, *Equivalence of regularization and truncated iteration for general ill-posed problems*).

Linear-Gaussian case: the Kalman filter as K steps of gradient descent
----------------------------------------------------------------------
The paper shows every Kalman filter can be written as K steps of gradient descent with suitable
(matrix) learning rates. The construction used here, and its proof:

Let P- = C C^T be the predicted covariance (any square-root factor C) and write x = m- + C z.
In z the measurement loss is l(z) = 1/2 ||e - H C z||^2_{R^{-1}} with e = y - H m-, so with
A = C^T H^T R^{-1} H C (symmetric PSD, eigen-decomposition A = U diag(lambda) U^T) and
b = C^T H^T R^{-1} e its gradient is A z - b. The Kalman update in z is (push-through identity)

    z* = C^T H^T (H P- H^T + R)^{-1} e = (I + A)^{-1} b.

Gradient descent from z = 0 with a fixed matrix step M = U diag(mu) U^T (which commutes with A)
gives z_K = [I - (I - M A)^K] A^+ b, because b lies in the range of A. On eigen-direction i this is
(1 - (1 - mu_i lambda_i)^K) / lambda_i times b_i, and it equals the Kalman factor 1 / (1 + lambda_i)
exactly when

    (1 - mu_i lambda_i)^K = 1 / (1 + lambda_i),   i.e.   mu_i = (1 - (1 + lambda_i)^{-1/K}) / lambda_i

(mu_i -> 1/K as lambda_i -> 0). Every mu_i is real and 0 < mu_i lambda_i < 1, so each step is a
monotone contraction, for any K >= 1. Back in x, a step z <- z - M grad_z becomes
x <- x - L grad_x l(x) with the learning-rate matrix L = C M C^T (grad_z = C^T grad_x). For K = 1,
L = (P-^{-1} + H^T R^{-1} H)^{-1} is the posterior covariance: one Newton step on the log-posterior.
Since P- does not depend on the data (only on the model and on which entries of y are missing),
:func:`kalman_learning_rates` computes every L_t before filtering; :func:`implicit_map_filter` with
``optax.sgd(1.0)`` and those preconditioners then reproduces the Kalman filter means to round-off.

Missing data: NaN entries of y_t drop out of l_t (a fully missing row leaves x_t = x_t^(0)).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .. import _config  # noqa: F401  (float64)
from .kalman import LinearGaussianSSM, kalman_filter
from .nonlinear import as_observations

__all__ = ["IMAPResult", "implicit_map_filter", "kalman_learning_rates", "gaussian_measurement_loss"]


class IMAPResult(NamedTuple):
    """IMAP filter output: estimates x_t (T, d), predictions x_t^(0) (T, d), final loss values (T,)."""

    means: jax.Array  # (T, d): x_t after K optimiser steps
    predicted_means: jax.Array  # (T, d): x_t^(0), where the optimiser started
    losses: jax.Array  # (T,): l_t(x_t), the measurement loss at the estimate


def gaussian_measurement_loss(h: Callable, R) -> Callable:
    """l(x, y) = 1/2 (y - h(x))^T R^{-1} (y - h(x)) over the observed (non-NaN) entries of y.

    R: (m, m) observation-noise covariance. Missing entries get no cross-covariance and unit
    placeholder variance with a zero residual, so they contribute nothing (exact marginalisation).
    """
    R = jnp.asarray(R, dtype=jnp.float64)

    def loss(x, y):
        observed = ~jnp.isnan(y)
        mask = observed.astype(R.dtype)
        residual = jnp.where(observed, y - h(x), 0.0)
        R_masked = R * jnp.outer(mask, mask) + jnp.diag(1.0 - mask)
        L = jnp.linalg.cholesky(R_masked)
        z = jax.scipy.linalg.solve_triangular(L, residual, lower=True)
        return 0.5 * z @ z

    return loss


@partial(jax.jit, static_argnames=("f", "loss", "optimizer", "n_steps", "reset_state"))
def _imap(f, loss, optimizer, n_steps, reset_state, ys, x0, preconditioners):
    grad_loss = jax.grad(loss)
    first = jnp.arange(ys.shape[0]) == 0

    def time_step(carry, inputs):
        x_prev, opt_state = carry
        y, is_first, L = inputs
        x_start = jnp.where(is_first, x0, f(x_prev))
        # each time step is a fresh MAP problem unless the user asked to carry Adam's moments over
        opt_state = optimizer.init(x_start) if reset_state else opt_state

        def inner(_, state):
            x, s = state
            g = L @ grad_loss(x, y)
            updates, s = optimizer.update(g, s, x)
            return optax.apply_updates(x, updates), s

        x, opt_state = jax.lax.fori_loop(0, n_steps, inner, (x_start, opt_state))
        return (x, opt_state), (x, x_start, loss(x, y))

    init = (x0, optimizer.init(x0))
    _, (xs, starts, losses) = jax.lax.scan(time_step, init, (ys, first, preconditioners))
    return IMAPResult(xs, starts, losses)


def implicit_map_filter(f: Callable, h: Callable, ys, x0, optimizer: optax.GradientTransformation,
                        n_steps: int, *, R=None, loss: Callable | None = None, preconditioners=None,
                        reset_optimizer_state: bool = True) -> IMAPResult:
    """Implicit MAP filter (Bencomo, Snell & Griffiths, Algorithm 1): K optimiser steps per time step.

    f: (d,) -> (d,) dynamics (written in ``jax.numpy``); h: (d,) -> (m,) observation function.
    ys: (T, m) measurements (or (T,) when m = 1), NaN = missing. x0: (d,) the estimate the
    optimiser starts from at t = 0 (the prior mean of the first state). optimizer: any optax
    transformation, e.g. ``optax.sgd(0.1)``, ``optax.sgd(0.1, momentum=0.9)``, ``optax.adam(0.1)``.
    n_steps: K >= 0. Give either R: (m, m) (Gaussian loss, see :func:`gaussian_measurement_loss`)
    or loss: (x (d,), y (m,)) -> scalar, e.g. a robust or non-Gaussian negative log-likelihood.
    preconditioners: optional (T, d, d) learning-rate matrices L_t applied to the gradient before
    the optimiser (see :func:`kalman_learning_rates`). reset_optimizer_state: re-initialise the
    optimiser (Adam's moments, momentum) at every time step (default) or carry it across steps.
    Returns :class:`IMAPResult`.
    """
    if (R is None) == (loss is None):
        raise ValueError("give exactly one of R (Gaussian measurement noise) or loss")
    x0 = np.asarray(x0, dtype=np.float64)
    if x0.ndim != 1 or not np.all(np.isfinite(x0)):
        raise ValueError(f"x0 must be a finite vector (d,); got shape {x0.shape}")
    d = x0.shape[0]
    if not isinstance(n_steps, (int, np.integer)) or n_steps < 0:
        raise ValueError(f"n_steps must be an integer >= 0; got {n_steps!r}")
    if not isinstance(optimizer, optax.GradientTransformation):
        raise TypeError(f"optimizer must be an optax.GradientTransformation (e.g. optax.adam(0.1)); got {type(optimizer)}")
    y_try = np.asarray(h(jnp.asarray(x0)))
    if y_try.ndim != 1:
        raise ValueError(f"h must map (d,) to a vector (m,); got shape {y_try.shape}")
    m = y_try.shape[0]
    ys = as_observations(ys, m)
    if np.asarray(f(jnp.asarray(x0))).shape != (d,):
        raise ValueError(f"f must map (d,) = ({d},) to ({d},)")
    if R is not None:
        R = np.atleast_2d(np.asarray(R, dtype=np.float64))
        if R.shape != (m, m) or not np.all(np.isfinite(R)):
            raise ValueError(f"R must be a finite ({m}, {m}) matrix; got shape {R.shape}")
        if not np.allclose(R, R.T) or np.linalg.eigvalsh(0.5 * (R + R.T)).min() <= 0:
            raise ValueError("R must be symmetric positive definite")
        loss = gaussian_measurement_loss(h, R)
    T = ys.shape[0]
    if preconditioners is None:
        preconditioners = np.broadcast_to(np.eye(d), (T, d, d))
    preconditioners = np.asarray(preconditioners, dtype=np.float64)
    if preconditioners.shape != (T, d, d) or not np.all(np.isfinite(preconditioners)):
        raise ValueError(f"preconditioners must be finite with shape (T, d, d) = ({T}, {d}, {d}); got {preconditioners.shape}")
    return _imap(f, loss, optimizer, int(n_steps), bool(reset_optimizer_state), jnp.asarray(ys),
                 jnp.asarray(x0), jnp.asarray(preconditioners))


def _psd_sqrt(P):
    """A factor C with C C^T = P for a symmetric PSD P (eigen-based, so a singular P is fine)."""
    s, V = jnp.linalg.eigh(0.5 * (P + P.T))
    return V * jnp.sqrt(jnp.clip(s, 0.0))


@partial(jax.jit, static_argnames=("n_steps",))
def _learning_rates(P_pred, H, R, observed, n_steps):
    def one(P, obs):
        mask = obs.astype(P.dtype)
        Hm = H * mask[:, None]
        Rm = R * jnp.outer(mask, mask) + jnp.diag(1.0 - mask)
        C = _psd_sqrt(P)
        HC = Hm @ C
        A = HC.T @ jnp.linalg.solve(Rm, HC)
        lam, U = jnp.linalg.eigh(0.5 * (A + A.T))
        lam = jnp.clip(lam, 0.0)
        safe = jnp.where(lam > 1e-12, lam, 1.0)
        # mu = (1 - (1 + lam)^(-1/K)) / lam, via expm1/log1p for accuracy at small lam; limit 1/K
        mu = jnp.where(lam > 1e-12, -jnp.expm1(-jnp.log1p(safe) / n_steps) / safe, 1.0 / n_steps)
        M = (U * mu) @ U.T
        return C @ M @ C.T

    return jax.vmap(one)(P_pred, observed)


def kalman_learning_rates(model: LinearGaussianSSM, ys, n_steps: int) -> jax.Array:
    """Learning-rate matrices L_t (T, d, d) for which K = ``n_steps`` steps of gradient descent
    (``optax.sgd(1.0)`` on L_t grad l_t) reproduce the Kalman filter update exactly.

    L_t = C_t U_t diag(mu_t) U_t^T C_t^T with C_t C_t^T = P-_t (the Kalman predicted covariance),
    C_t^T H^T R^{-1} H C_t = U_t diag(lambda_t) U_t^T and mu = (1 - (1 + lambda)^{-1/K}) / lambda
    (proof in the module docstring). ys: (T, m); only its length and NaN pattern are used (P-_t
    does not depend on the observed values).
    """
    if not isinstance(n_steps, (int, np.integer)) or n_steps < 1:
        raise ValueError(f"n_steps must be an integer >= 1; got {n_steps!r}")
    filtered = kalman_filter(model, ys)  # validates model and ys
    ys = np.asarray(ys, dtype=np.float64)
    H = np.asarray(model.H, dtype=np.float64)
    H = H.reshape(1, -1) if H.ndim == 1 else H
    R = np.atleast_2d(np.asarray(model.R, dtype=np.float64))
    ys = ys[:, None] if ys.ndim == 1 else ys
    observed = jnp.asarray(~np.isnan(ys))
    return _learning_rates(filtered.predicted_covariances, jnp.asarray(H), jnp.asarray(R), observed, int(n_steps))
