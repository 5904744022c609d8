"""Planar and radial layers: log|det| against the autodiff Jacobian, invertibility, dtypes."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bayeskit  # noqa: F401  (float64)
from bayeskit.flows import (
    planar_inverse,
    planar_transform,
    planar_u_hat,
    radial_constrained,
    radial_inverse,
    radial_transform,
)

DIMS = (1, 2, 3, 5)


def _params(seed: int, d: int, scale: float, n: int = 6):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, d)) * 2.0
    u = rng.normal(size=d) * scale
    w = rng.normal(size=d) * scale
    b = rng.normal() * scale
    z0 = rng.normal(size=d)
    alpha = rng.normal() * scale
    beta = rng.normal() * scale
    return z, u, w, b, z0, alpha, beta


@jax.jit
def _planar_check(z, u, w, b):
    """(log|det| from the layer, log|det| of jax.jacfwd's Jacobian) at every row of z."""
    _, logdet = planar_transform(z, u, w, b)
    jac = jax.vmap(jax.jacfwd(lambda x: planar_transform(x, u, w, b)[0]))(z)
    return logdet, jnp.linalg.slogdet(jac)


@jax.jit
def _radial_check(z, z0, alpha, beta):
    _, logdet = radial_transform(z, z0, alpha, beta)
    jac = jax.vmap(jax.jacfwd(lambda x: radial_transform(x, z0, alpha, beta)[0]))(z)
    return logdet, jnp.linalg.slogdet(jac)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1), d=st.sampled_from(DIMS), scale=st.sampled_from([0.1, 1.0, 4.0]))
def test_planar_logdet_matches_autodiff_jacobian(seed, d, scale):
    z, u, w, b, *_ = _params(seed, d, scale)
    logdet, (sign, ref) = _planar_check(z, u, w, b)
    # the reparameterised layer is invertible: the Jacobian determinant is positive everywhere
    assert np.all(np.asarray(sign) > 0)
    np.testing.assert_allclose(logdet, ref, rtol=1e-9, atol=1e-9)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1), d=st.sampled_from(DIMS), scale=st.sampled_from([0.1, 1.0, 4.0]))
def test_radial_logdet_matches_autodiff_jacobian(seed, d, scale):
    z, *_, z0, alpha, beta = _params(seed, d, scale)
    logdet, (sign, ref) = _radial_check(z, z0, alpha, beta)
    assert np.all(np.asarray(sign) > 0)
    np.testing.assert_allclose(logdet, ref, rtol=1e-8, atol=1e-9)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1), d=st.sampled_from(DIMS), scale=st.sampled_from([0.3, 1.0, 5.0]))
def test_inverses_recover_the_input(seed, d, scale):
    """Injectivity, shown constructively: the 1-D root (planar) / quadratic (radial) inverse."""
    z, u, w, b, z0, alpha, beta = _params(seed, d, scale)
    zp, zr = _round_trips(z, u, w, b, z0, alpha, beta)
    np.testing.assert_allclose(zp, z, atol=1e-9)
    np.testing.assert_allclose(zr, z, atol=1e-9)


@jax.jit
def _round_trips(z, u, w, b, z0, alpha, beta):
    zp = planar_inverse(planar_transform(z, u, w, b)[0], u, w, b)
    zr = radial_inverse(radial_transform(z, z0, alpha, beta)[0], z0, alpha, beta)
    return zp, zr


def test_inverse_jacobians_are_the_inverse_matrices():
    """Autodiff through the inverses gives J_f(z)^{-1} (implicit-function derivative)."""
    z, u, w, b, z0, alpha, beta = _params(5, 3, 2.0, n=1)

    @jax.jit
    def products(z):
        y = planar_transform(z, u, w, b)[0]
        jf = jax.jacfwd(lambda x: planar_transform(x, u, w, b)[0])(z)
        jinv = jax.jacfwd(lambda x: planar_inverse(x, u, w, b))(y)
        y = radial_transform(z, z0, alpha, beta)[0]
        kf = jax.jacfwd(lambda x: radial_transform(x, z0, alpha, beta)[0])(z)
        kinv = jax.jacfwd(lambda x: radial_inverse(x, z0, alpha, beta))(y)
        return jinv @ jf, kinv @ kf

    planar_product, radial_product = products(z[0])
    np.testing.assert_allclose(planar_product, np.eye(3), atol=1e-10)
    np.testing.assert_allclose(radial_product, np.eye(3), atol=1e-10)


def test_planar_is_strictly_monotone_along_w_even_for_adversarial_u():
    """Appendix A: with u_hat, a -> a + (w.u_hat) tanh(a) is strictly increasing, so f is 1-1.

    The raw u below has w.u = -20, for which z + u tanh(w.z + b) folds the plane (its Jacobian
    determinant 1 + h'(a) w.u changes sign); u_hat must repair that.
    """
    w = jnp.array([1.0, 0.5])
    u = -20.0 * w / jnp.sum(w * w)
    assert float(jnp.sum(w * u)) == pytest.approx(-20.0)
    raw_det_at_zero = 1.0 + 1.0 * float(jnp.sum(w * u))  # tanh'(0) = 1
    assert raw_det_at_zero < 0
    u_hat = planar_u_hat(u, w)
    assert float(jnp.sum(w * u_hat)) > -1.0
    # points along w: their images' projections on w must be strictly increasing
    t = jnp.linspace(-6.0, 6.0, 2001)
    z = t[:, None] * w / jnp.linalg.norm(w)
    y, logdet = planar_transform(z, u, w, 0.2)
    proj = y @ w
    assert np.all(np.diff(np.asarray(proj)) > 0)
    assert np.all(np.isfinite(np.asarray(logdet)))


def test_radial_is_injective_along_rays():
    """|f(z) - z0| is strictly increasing in r = |z - z0| at the most contracting beta_hat."""
    z0 = jnp.array([0.3, -0.2])
    direction = jnp.array([0.6, 0.8])
    r = jnp.linspace(0.0, 10.0, 4001)
    z = z0 + r[:, None] * direction
    y, logdet = radial_transform(z, z0, 0.0, -30.0)  # beta_hat = -alpha + softplus(-30) ~ -alpha
    alpha_pos, beta_hat = radial_constrained(0.0, -30.0)
    assert float(beta_hat) > -float(alpha_pos)
    s = jnp.linalg.norm(y - z0, axis=-1)
    assert np.all(np.diff(np.asarray(s)) > 0)
    assert np.all(np.isfinite(np.asarray(logdet)))


def test_identities_at_special_points():
    """Closed-form values: w = 0 is a translation; at z = z0 the radial map is the identity."""
    z = jnp.array([[0.5, -1.0], [2.0, 3.0]])
    u = jnp.array([1.0, 2.0])
    y, logdet = planar_transform(z, u, jnp.zeros(2), 0.7)
    np.testing.assert_allclose(y, z + u * np.tanh(0.7), atol=1e-14)
    np.testing.assert_allclose(logdet, 0.0, atol=1e-14)
    # at r = 0: f(z0) = z0 and J = (1 + beta_hat / alpha) I, log|det| = d log(1 + beta_hat / alpha)
    z0 = jnp.array([0.1, 0.2, 0.3])
    y, logdet = radial_transform(z0, z0, 0.4, 0.9)
    a, bh = radial_constrained(0.4, 0.9)
    np.testing.assert_allclose(y, z0, atol=1e-15)
    np.testing.assert_allclose(logdet, 3 * np.log1p(bh / a), rtol=1e-12)
    # and the gradient there is finite (no 0/0 from |z - z0|)
    g = jax.grad(lambda c: radial_transform(c, z0, 0.4, 0.9)[1])(z0)
    assert np.all(np.isfinite(np.asarray(g)))


def test_amortised_parameters_broadcast_per_point():
    """Per-point parameters (n, d) / (n,) give the same result as n separate layers."""
    rng = np.random.default_rng(3)
    n, s, d = 4, 3, 2
    z = rng.normal(size=(s, n, d))
    u, w, z0 = rng.normal(size=(3, n, d))
    b, alpha, beta = rng.normal(size=(3, n))

    @jax.jit
    def batched_and_separate(z):
        yp, lp = planar_transform(z, u, w, b)
        yr, lr = radial_transform(z, z0, alpha, beta)
        # the same n layers applied one at a time (a Python loop, unrolled at trace time)
        sep_p = [planar_transform(z[:, i], u[i], w[i], b[i]) for i in range(n)]
        sep_r = [radial_transform(z[:, i], z0[i], alpha[i], beta[i]) for i in range(n)]
        yp_sep = jnp.stack([y for y, _ in sep_p], axis=1)
        lp_sep = jnp.stack([ld for _, ld in sep_p], axis=1)
        yr_sep = jnp.stack([y for y, _ in sep_r], axis=1)
        lr_sep = jnp.stack([ld for _, ld in sep_r], axis=1)
        back = planar_inverse(yp, u, w, b), radial_inverse(yr, z0, alpha, beta)
        return (yp, lp, yr, lr), (yp_sep, lp_sep, yr_sep, lr_sep), back

    batched, separate, (zp, zr) = batched_and_separate(z)
    yp, lp, yr, lr = batched
    assert yp.shape == (s, n, d) and lp.shape == (s, n)
    assert yr.shape == (s, n, d) and lr.shape == (s, n)
    for got, expected in zip(batched, separate):
        np.testing.assert_allclose(got, expected, atol=1e-14)
    # the inverses broadcast the same way
    np.testing.assert_allclose(zp, z, atol=1e-9)
    np.testing.assert_allclose(zr, z, atol=1e-9)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_dtypes_are_kept_and_float32_agrees_with_float64(dtype):
    z, u, w, b, z0, alpha, beta = _params(11, 3, 1.5)
    cast = lambda x: jnp.asarray(x, dtype=dtype)  # noqa: E731
    both = jax.jit(lambda *a: (*planar_transform(*a[:4]), *radial_transform(a[0], *a[4:])))
    yp, lp, yr, lr = both(*(cast(x) for x in (z, u, w, b, z0, alpha, beta)))
    for arr in (yp, lp, yr, lr):
        assert arr.dtype == dtype
    tol = 1e-5 if dtype == jnp.float32 else 1e-13
    yp64, lp64, yr64, lr64 = both(z, u, w, b, z0, alpha, beta)
    np.testing.assert_allclose(yp, yp64, atol=tol, rtol=tol)
    np.testing.assert_allclose(lp, lp64, atol=tol, rtol=tol)
    np.testing.assert_allclose(yr, yr64, atol=tol, rtol=tol)
    np.testing.assert_allclose(lr, lr64, atol=tol, rtol=tol)
    # float32 log-dets still match the float32 autodiff Jacobian
    logdet, (_, ref) = _planar_check(cast(z), cast(u), cast(w), cast(b))
    np.testing.assert_allclose(logdet, ref, atol=10 * tol, rtol=10 * tol)
    logdet, (_, ref) = _radial_check(cast(z), cast(z0), cast(alpha), cast(beta))
    np.testing.assert_allclose(logdet, ref, atol=10 * tol, rtol=10 * tol)


def test_bad_inputs_raise_clear_errors():
    z = jnp.zeros((4, 2))
    with pytest.raises(ValueError, match="u must have shape"):
        planar_transform(z, jnp.zeros(3), jnp.zeros(2), 0.0)
    with pytest.raises(ValueError, match="w must have shape"):
        planar_transform(z, jnp.zeros(2), jnp.zeros(()), 0.0)
    with pytest.raises(ValueError, match="z must have shape"):
        planar_transform(jnp.float64(1.0), jnp.zeros(1), jnp.zeros(1), 0.0)
    with pytest.raises(ValueError, match="do not broadcast"):
        planar_transform(z, jnp.zeros((3, 2)), jnp.zeros(2), 0.0)
    with pytest.raises(ValueError, match="z0 must have shape"):
        radial_transform(z, jnp.zeros(5), 0.0, 0.0)
    with pytest.raises(ValueError, match="do not broadcast"):
        radial_transform(z, jnp.zeros(2), jnp.zeros(3), 0.0)
    with pytest.raises(TypeError, match="real floating"):
        planar_transform(z.astype(jnp.complex64), jnp.zeros(2), jnp.zeros(2), 0.0)
