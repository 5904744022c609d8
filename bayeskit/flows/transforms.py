"""Planar and radial flow layers: invertible maps with a cheap log-determinant.

Paper: D. J. Rezende and S. Mohamed, *Variational Inference with Normalizing Flows* (ICML 2015),
section 4.1 (the two families) and appendix A (the conditions that keep them invertible).

A normalizing flow pushes a simple density q_0 through invertible maps f_1, ..., f_K. By the
change-of-variables formula, for z_k = f_k(z_{k-1})::

    log q_k(z_k) = log q_{k-1}(z_{k-1}) - log |det d f_k / d z_{k-1}|

so every layer here returns the new point *and* ``log|det J|`` at that point, in O(d) operations
(the matrix-determinant lemma for planar layers, a radial symmetry for radial ones) instead of
the O(d^3) of a general Jacobian.

Shapes and broadcasting
-----------------------
``z`` has shape (..., d): any number of leading (batch / sample) axes and the event axis last.
The layer parameters broadcast against ``z``:

* a single layer shared by all points: vectors of shape (d,), scalars of shape ();
* amortised layers (parameters produced per data point by an encoder, as in the paper's
  flow-VAE): vectors of shape (..., d) and scalars of shape (...) whose leading axes broadcast
  with ``z.shape[:-1]``, e.g. ``z`` (S, n, d) samples with ``u`` (n, d) and ``b`` (n,).

The returned ``log_abs_det`` has shape ``z.shape[:-1]`` (broadcast with the parameters' leading
axes). Both functions are pure, jit/vmap/grad-compatible, and keep the floating dtype of their
inputs (float32 for neural-network use, float64 for checks); shape and dtype errors are raised
at trace time.

All parameters are *unconstrained* real numbers: the constraints that make each layer invertible
(appendix A of the paper) are applied inside, so an optimiser may move them freely.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = [
    "planar_transform",
    "planar_inverse",
    "planar_u_hat",
    "radial_transform",
    "radial_inverse",
    "radial_constrained",
]


# ---------------------------------------------------------------------------------------------
# input checks (static: shapes and dtypes are known at trace time, so these work under jit)
# ---------------------------------------------------------------------------------------------
def _as_float(x, name: str) -> jax.Array:
    arr = jnp.asarray(x)
    if not jnp.issubdtype(arr.dtype, jnp.floating):
        if jnp.issubdtype(arr.dtype, jnp.integer) or arr.dtype == jnp.bool_:
            # integers are accepted as values but computed in the default float dtype
            return arr.astype(jnp.result_type(float))
        raise TypeError(f"{name} must be a real floating array; got dtype {arr.dtype}")
    return arr


def _check_point(z) -> jax.Array:
    z = _as_float(z, "z")
    if z.ndim < 1:
        raise ValueError("z must have shape (..., d) with the event dimension last; got a scalar")
    if z.shape[-1] < 1:
        raise ValueError(f"z must have at least one event dimension; got shape {z.shape}")
    return z


def _check_vector(v, name: str, d: int) -> jax.Array:
    v = _as_float(v, name)
    if v.ndim < 1 or v.shape[-1] != d:
        raise ValueError(
            f"{name} must have shape (d,) or (..., d) with d = {d} (the last axis of z); "
            f"got shape {v.shape}"
        )
    return v


def _check_scalar_param(s, name: str) -> jax.Array:
    # a per-layer scalar: shape () or (...) broadcasting with z.shape[:-1]
    return _as_float(s, name)


def _broadcast_check(z, name_shapes: dict) -> None:
    batch = [z.shape[:-1]] + [s for s in name_shapes.values()]
    try:
        jnp.broadcast_shapes(*batch)
    except ValueError:
        detail = ", ".join(f"{k}: {v}" for k, v in name_shapes.items())
        raise ValueError(
            f"flow parameters' leading axes do not broadcast with z's batch shape "
            f"{z.shape[:-1]} ({detail})"
        ) from None


def _safe_sum_squares_ratio(num, den):
    """num / den where den > 0, else 0, with finite gradients on both branches (double where)."""
    positive = den > 0
    safe_den = jnp.where(positive, den, jnp.ones_like(den))
    return jnp.where(positive, num / safe_den, jnp.zeros_like(num))


def _safe_norm(x):
    """|x| over the last axis with a zero (not NaN) gradient at x = 0."""
    sq = jnp.sum(x * x, axis=-1)
    positive = sq > 0
    safe_sq = jnp.where(positive, sq, jnp.ones_like(sq))
    return jnp.where(positive, jnp.sqrt(safe_sq), jnp.zeros_like(sq))


# ---------------------------------------------------------------------------------------------
# planar flow
# ---------------------------------------------------------------------------------------------
def planar_u_hat(u, w) -> jax.Array:
    """The invertibility reparameterisation of u (Rezende & Mohamed, appendix A).

    ``u_hat = u + (m(w.u) - w.u) w / |w|^2`` with ``m(a) = -1 + softplus(a)``, so that
    ``w . u_hat = m(w.u) > -1``, which (as 0 < tanh' <= 1) makes the planar map with tanh
    strictly monotone along w and hence invertible. ``u``, ``w``: (..., d); returns (..., d).
    For w = 0 the map is a translation whatever u is, and u is returned unchanged.
    """
    wu = jnp.sum(w * u, axis=-1)
    m = -1.0 + jax.nn.softplus(wu)
    coef = _safe_sum_squares_ratio(m - wu, jnp.sum(w * w, axis=-1))
    return u + coef[..., None] * w


def planar_transform(z, u, w, b):
    """One planar layer ``f(z) = z + u_hat tanh(w.z + b)`` and ``log|det df/dz|``.

    Rezende & Mohamed, eqs. (10)-(12), with the invertible parameterisation of appendix A::

        u_hat        = u + (m(w.u) - w.u) w / |w|^2,   m(a) = -1 + softplus(a)
        f(z)         = z + u_hat h(w.z + b),           h = tanh
        psi(z)       = h'(w.z + b) w
        log|det J|   = log|1 + u_hat . psi(z)|

    Parameters
    ----------
    z : (..., d) points.
    u, w : (d,) for one shared layer, or (..., d) per-point (amortised) parameters whose leading
        axes broadcast with ``z.shape[:-1]``. Unconstrained.
    b : scalar, or (...) broadcasting with ``z.shape[:-1]``.

    Returns
    -------
    z_new : (..., d), the same dtype as the inputs.
    log_abs_det : (...) = broadcast of ``z.shape[:-1]`` with the parameters' leading axes.

    Notes
    -----
    ``u_hat . psi = h'(a) (w . u_hat) = h'(a) m(w.u)`` exactly, and ``m > -1``, ``0 < h' <= 1``,
    so ``1 + u_hat . psi > 0``: the determinant is computed as ``log1p(h'(a) m)``, which avoids
    the cancellation of forming ``w . u_hat`` again in floating point.
    """
    z = _check_point(z)
    d = z.shape[-1]
    u = _check_vector(u, "u", d)
    w = _check_vector(w, "w", d)
    b = _check_scalar_param(b, "b")
    _broadcast_check(z, {"u": u.shape[:-1], "w": w.shape[:-1], "b": b.shape})

    wu = jnp.sum(w * u, axis=-1)
    ww = jnp.sum(w * w, axis=-1)
    m = -1.0 + jax.nn.softplus(wu)
    u_hat = u + _safe_sum_squares_ratio(m - wu, ww)[..., None] * w
    # w . u_hat = m, except for w = 0 where u_hat = u and w . u_hat = 0 (a pure translation)
    m = jnp.where(ww > 0, m, jnp.zeros_like(m))
    a = jnp.sum(w * z, axis=-1) + b
    h = jnp.tanh(a)
    z_new = z + u_hat * h[..., None]
    h_prime = 1.0 - h * h  # tanh'(a)
    log_abs_det = jnp.log1p(h_prime * m)
    # the parameters' leading axes may be wider than z's: broadcast the log-det to match
    log_abs_det = jnp.broadcast_to(log_abs_det, z_new.shape[:-1])
    return z_new, log_abs_det


def planar_inverse(y, u, w, b, *, iterations: int = 100):
    """Invert one planar layer: the z with ``planar_transform(z, u, w, b)[0] == y``.

    No closed form exists, but the problem is one-dimensional (Rezende & Mohamed, appendix A):
    writing ``a = w.z + b``, ``w.y + b = a + m tanh(a)`` with ``m = w.u_hat > -1``, a strictly
    increasing function of a. Its root lies within ``|m|`` of ``w.y + b`` (|tanh| < 1) and is
    found by bisection; then ``z = y - u_hat tanh(a)``. Shapes as in :func:`planar_transform`;
    ``iterations`` halvings of an interval of width ``2|m| + 2`` (100 reach float64 precision).
    The result is differentiable (jax.grad / jacfwd give the inverse map's true Jacobian).
    """
    y = _check_point(y)
    d = y.shape[-1]
    u = _check_vector(u, "u", d)
    w = _check_vector(w, "w", d)
    b = _check_scalar_param(b, "b")
    _broadcast_check(y, {"u": u.shape[:-1], "w": w.shape[:-1], "b": b.shape})
    u_hat = planar_u_hat(u, w)
    m = jnp.sum(w * u_hat, axis=-1)
    target = jnp.sum(w * y, axis=-1) + b
    lo = target - jnp.abs(m) - 1.0
    hi = target + jnp.abs(m) + 1.0
    lo, hi, m = jnp.broadcast_arrays(lo, hi, m)

    def body(_, bounds):
        lo, hi = bounds
        mid = 0.5 * (lo + hi)
        too_small = mid + m * jnp.tanh(mid) < target
        return jnp.where(too_small, mid, lo), jnp.where(too_small, hi, mid)

    lo, hi = jax.lax.fori_loop(0, iterations, body, (lo, hi))
    # One Newton step from the (gradient-stopped) bisection root: its value changes by the
    # residual only (~ machine precision), and its derivatives are those of the implicit
    # function a(target, m) -- da/dtarget = 1 / (1 + m tanh'(a)) -- whereas differentiating
    # through the bisection's comparisons would give wrong ones.
    a0 = jax.lax.stop_gradient(0.5 * (lo + hi))
    t0 = jnp.tanh(a0)
    a = a0 - (a0 + m * t0 - target) / (1.0 + m * (1.0 - t0 * t0))
    return y - u_hat * jnp.tanh(a)[..., None]


# ---------------------------------------------------------------------------------------------
# radial flow
# ---------------------------------------------------------------------------------------------
def radial_constrained(alpha, beta):
    """The constrained radial parameters ``(alpha_pos, beta_hat)`` from unconstrained ones.

    ``alpha_pos = softplus(alpha) > 0`` and ``beta_hat = -alpha_pos + softplus(beta) > -alpha_pos``
    (Rezende & Mohamed, appendix A: beta >= -alpha makes the radial map invertible).
    """
    alpha_pos = jax.nn.softplus(alpha)
    beta_hat = -alpha_pos + jax.nn.softplus(beta)
    return alpha_pos, beta_hat


def radial_transform(z, z0, alpha, beta):
    """One radial layer ``f(z) = z + beta_hat h(alpha, r) (z - z0)`` and ``log|det df/dz|``.

    Rezende & Mohamed, eqs. (14)-(15), with the invertibility constraint of appendix A::

        alpha_pos  = softplus(alpha) > 0,       beta_hat = -alpha_pos + softplus(beta)
        r          = |z - z0|,                  h(alpha, r) = 1 / (alpha_pos + r)
        f(z)       = z + beta_hat h (z - z0)
        log|det J| = (d - 1) log(1 + beta_hat h) + log(1 + beta_hat h + beta_hat h'(r) r)

    with ``h'(r) = -1 / (alpha_pos + r)^2``, so the last factor is
    ``1 + beta_hat alpha_pos / (alpha_pos + r)^2``. Both factors are > 0 because
    beta_hat > -alpha_pos.

    Parameters
    ----------
    z : (..., d) points.
    z0 : (d,) or (..., d), the centre (unconstrained).
    alpha, beta : scalars or (...) broadcasting with ``z.shape[:-1]``; *unconstrained* (the
        softplus maps above are applied here). Use :func:`radial_constrained` to read the
        effective values.

    Returns
    -------
    z_new : (..., d); log_abs_det : (...), as for :func:`planar_transform`.
    """
    z = _check_point(z)
    d = z.shape[-1]
    z0 = _check_vector(z0, "z0", d)
    alpha = _check_scalar_param(alpha, "alpha")
    beta = _check_scalar_param(beta, "beta")
    _broadcast_check(z, {"z0": z0.shape[:-1], "alpha": alpha.shape, "beta": beta.shape})

    alpha_pos, beta_hat = radial_constrained(alpha, beta)
    diff = z - z0
    r = _safe_norm(diff)
    h = 1.0 / (alpha_pos + r)
    bh = beta_hat * h
    z_new = z + bh[..., None] * diff
    # 1 + beta_hat h + beta_hat h'(r) r  =  1 + beta_hat alpha / (alpha + r)^2
    radial_factor = 1.0 + beta_hat * alpha_pos * h * h
    log_abs_det = (d - 1) * jnp.log1p(bh) + jnp.log(radial_factor)
    log_abs_det = jnp.broadcast_to(log_abs_det, z_new.shape[:-1])
    return z_new, log_abs_det


def radial_inverse(y, z0, alpha, beta):
    """Invert one radial layer in closed form: the z with ``radial_transform(z, ...)[0] == y``.

    ``y - z0 = (1 + beta_hat h(r)) (z - z0)`` with a positive factor, so z lies on the ray from
    z0 through y, and its radius r solves ``|y - z0| = r + beta_hat r / (alpha + r)``, i.e. the
    quadratic ``r^2 + (alpha + beta_hat - s) r - s alpha = 0`` (s = |y - z0|), whose one
    non-negative root is taken. Shapes as in :func:`radial_transform`.
    """
    y = _check_point(y)
    d = y.shape[-1]
    z0 = _check_vector(z0, "z0", d)
    alpha = _check_scalar_param(alpha, "alpha")
    beta = _check_scalar_param(beta, "beta")
    _broadcast_check(y, {"z0": z0.shape[:-1], "alpha": alpha.shape, "beta": beta.shape})
    alpha_pos, beta_hat = radial_constrained(alpha, beta)
    diff = y - z0
    s = _safe_norm(diff)
    p = alpha_pos + beta_hat - s
    # r = (-p + sqrt(p^2 + 4 s alpha)) / 2, written without cancellation when p > 0
    disc = jnp.sqrt(p * p + 4.0 * s * alpha_pos)
    r = jnp.where(p > 0, 2.0 * s * alpha_pos / (p + disc), 0.5 * (disc - p))
    # z - z0 = (y - z0) r / s  (the scale factor 1 + beta_hat h(r) equals s / r)
    scale = _safe_sum_squares_ratio(r, s)
    return z0 + scale[..., None] * diff
