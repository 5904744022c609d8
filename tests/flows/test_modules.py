"""Flow stacks: the density from eq. 7 against an independent autodiff change of variables."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import bayeskit  # noqa: F401  (float64)
from bayeskit.flows import (
    DiagonalGaussian,
    PlanarFlow,
    RadialFlow,
    flow_log_prob,
    flow_sample_and_log_prob,
    grid_points,
    make_flow,
)


def _randomised(kind: str, length: int, seed: int = 0, dtype=jnp.float64):
    """A flow far from the identity (tests at the initialisation would prove little)."""
    rng = np.random.default_rng(seed)
    flow = make_flow(kind, 2, length, nnx.Rngs(seed), dtype=dtype)
    flow.base.mean[...] = jnp.asarray(rng.normal(size=2) * 0.5, dtype)
    flow.base.log_std[...] = jnp.asarray(rng.normal(size=2) * 0.3, dtype)
    if kind == "planar":
        flow.u[...] = jnp.asarray(rng.normal(size=(length, 2)) * 1.5, dtype)
        flow.w[...] = jnp.asarray(rng.normal(size=(length, 2)) * 1.5, dtype)
        flow.b[...] = jnp.asarray(rng.normal(size=length), dtype)
    else:
        flow.alpha[...] = jnp.asarray(rng.normal(size=length), dtype)
        flow.beta[...] = jnp.asarray(rng.normal(size=length) * 2, dtype)
    return flow


@pytest.mark.parametrize("kind", ["planar", "radial"])
def test_log_prob_matches_autodiff_change_of_variables(kind):
    """log q_K(z) = log q_0(f^{-1}(z)) + log|det d f^{-1}/dz|, the Jacobian by jax.jacfwd.

    This uses neither the layers' analytic log-dets nor the forward pass: only the inverse and
    autodiff. It also checks sample_and_log_prob's log q at the drawn points.
    """
    flow = _randomised(kind, 4)

    @jax.jit
    def check(key):
        z, log_q = flow.sample_and_log_prob(key, 16)
        jac_inv = jax.vmap(jax.jacfwd(flow.inverse))(z)
        ref = flow.base.log_prob(flow.inverse(z)) + jnp.linalg.slogdet(jac_inv)[1]
        return z, log_q, flow.log_prob(z), ref, flow.forward(flow.inverse(z))[0]

    z, log_q, log_q_by_inverse, ref, round_trip = check(jax.random.key(1))
    np.testing.assert_allclose(log_q, ref, rtol=1e-7, atol=1e-7)
    np.testing.assert_allclose(log_q_by_inverse, ref, rtol=1e-7, atol=1e-7)
    np.testing.assert_allclose(round_trip, z, atol=1e-9)
    # the cached compiled entry points give the same numbers
    np.testing.assert_allclose(flow_log_prob(flow, z), ref, rtol=1e-7, atol=1e-7)
    z_c, log_q_c = flow_sample_and_log_prob(flow, jax.random.key(1), 16)
    np.testing.assert_allclose(z_c, z, atol=1e-12)
    np.testing.assert_allclose(log_q_c, log_q, atol=1e-10)


@pytest.mark.parametrize("kind", ["planar", "radial"])
def test_density_integrates_to_one(kind):
    """The pushed-forward density keeps unit mass (a wrong log-det sign or factor would not)."""
    flow = _randomised(kind, 3, seed=2)
    z = flow.sample(jax.random.key(0), 4000)
    lo, hi = np.asarray(z.min(0)) - 3.0, np.asarray(z.max(0)) + 3.0
    _, _, pts, area = grid_points(((lo[0], hi[0]), (lo[1], hi[1])), 200)
    mass = float(jnp.sum(jnp.exp(flow_log_prob(flow, pts))) * area)
    assert mass == pytest.approx(1.0, abs=3e-3)


def test_length_zero_is_the_base_gaussian_and_trajectory_shapes():
    flow = PlanarFlow(2, 0, nnx.Rngs(0), dtype=jnp.float64)
    flow.base.mean[...] = jnp.array([1.0, -2.0])
    flow.base.log_std[...] = jnp.log(jnp.array([0.5, 2.0]))
    z, log_q = flow.sample_and_log_prob(jax.random.key(3), 20000)
    np.testing.assert_allclose(z.mean(0), [1.0, -2.0], atol=0.05)
    np.testing.assert_allclose(z.std(0), [0.5, 2.0], rtol=0.03)
    ref = -0.5 * np.sum(((np.asarray(z) - [1.0, -2.0]) / [0.5, 2.0]) ** 2, -1) - np.log(2 * np.pi * 0.5 * 2.0)
    np.testing.assert_allclose(log_q, ref, rtol=1e-12)
    deep = _randomised("radial", 5)
    z0 = jax.random.normal(jax.random.key(0), (7, 2))
    traj = deep.trajectory(z0)
    assert traj.shape == (6, 7, 2)
    np.testing.assert_allclose(traj[0], z0)
    np.testing.assert_allclose(traj[-1], deep.forward(z0)[0], atol=1e-12)


def test_float32_default_and_init_near_identity():
    flow = RadialFlow(3, 4, nnx.Rngs(0))
    z, log_q = flow.sample_and_log_prob(jax.random.key(0), 5)
    assert z.dtype == jnp.float32 and log_q.dtype == jnp.float32
    # radial layers start as the identity (beta_hat = 0): q_K = q_0
    z0 = jax.random.normal(jax.random.key(1), (5, 3), jnp.float32)
    zk, log_det = flow.forward(z0)
    np.testing.assert_allclose(zk, z0, atol=1e-6)
    np.testing.assert_allclose(log_det, 0.0, atol=1e-6)


def test_bad_arguments():
    with pytest.raises(ValueError, match="dim"):
        PlanarFlow(0, 2, nnx.Rngs(0))
    with pytest.raises(ValueError, match="length"):
        RadialFlow(2, -1, nnx.Rngs(0))
    with pytest.raises(ValueError, match="kind"):
        make_flow("sylvester", 2, 2, nnx.Rngs(0))
    with pytest.raises(TypeError, match="dtype"):
        DiagonalGaussian(2, dtype=jnp.int32)
    flow = PlanarFlow(2, 2, nnx.Rngs(0))
    with pytest.raises(ValueError, match="number of samples"):
        flow.sample_and_log_prob(jax.random.key(0), 0)
    with pytest.raises(ValueError, match=r"shape \(\.\.\., 2\)"):
        flow.log_prob(jnp.zeros((3, 4)))
