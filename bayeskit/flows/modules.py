"""Flow stacks as Flax NNX modules: a learnable diagonal Gaussian pushed through K layers.

Rezende & Mohamed, *Variational Inference with Normalizing Flows* (ICML 2015), eq. (7): with
z_0 ~ q_0 = N(mean, diag(exp(log_std))^2) and z_k = f_k(z_{k-1}),

    log q_K(z_K) = log q_0(z_0) - sum_{k=1}^{K} log |det d f_k / d z_{k-1}|.

:class:`PlanarFlow` and :class:`RadialFlow` stack :func:`~bayeskit.flows.planar_transform` /
:func:`~bayeskit.flows.radial_transform` layers (parameters stacked on a leading axis of length
K and applied with ``jax.lax.scan``, so K = 32 compiles as fast as K = 1). Every module offers

* ``sample_and_log_prob(key, n)`` -> ``(z (n, d), log_q (n,))`` -- what the reverse-KL ELBO needs;
* ``log_prob(z)`` for any points ``z (..., d)`` -- by inverting the layers (closed form for
  radial, a 1-D bisection for planar), for density plots and grid KL;
* ``forward(z0)`` / ``inverse(z)`` and ``trajectory(z0)`` (every intermediate z_k, for pictures).

The modules are float32 by default (neural-network code; pass ``dtype=jnp.float64`` for checks).
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
from flax import nnx

from .transforms import planar_inverse, planar_transform, radial_inverse, radial_transform

__all__ = [
    "DiagonalGaussian",
    "PlanarFlow",
    "RadialFlow",
    "make_flow",
    "FLOW_KINDS",
    "flow_log_prob",
    "flow_sample_and_log_prob",
]

_LOG_2PI = math.log(2 * math.pi)


def _check_dim(dim, name: str = "dim", minimum: int = 1) -> int:
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {dim!r}")
    return dim


def _check_n(n) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n (number of samples) must be a positive integer; got {n!r}")
    return n


def _check_dtype(dtype):
    dt = jnp.dtype(dtype)
    if not jnp.issubdtype(dt, jnp.floating):
        raise TypeError(f"dtype must be a floating dtype (float32 or float64); got {dt}")
    return dt


class DiagonalGaussian(nnx.Module):
    """q_0(z) = N(z; mean, diag(exp(log_std))^2), both learnable (d,) parameters.

    Initialised at the standard normal. ``log_prob(z)`` for z (..., d) returns (...).
    """

    def __init__(self, dim: int, *, dtype=jnp.float32):
        self.dim = _check_dim(dim)
        self.dtype = _check_dtype(dtype)
        self.mean = nnx.Param(jnp.zeros(dim, self.dtype))
        self.log_std = nnx.Param(jnp.zeros(dim, self.dtype))

    def _check_z(self, z):
        z = jnp.asarray(z)
        if z.ndim < 1 or z.shape[-1] != self.dim:
            raise ValueError(f"z must have shape (..., {self.dim}); got shape {z.shape}")
        return z.astype(self.dtype)

    def sample_and_log_prob(self, key, n: int):
        """n reparameterised draws z = mean + exp(log_std) eps, eps ~ N(0, I); (n, d), (n,)."""
        _check_n(n)
        eps = jax.random.normal(key, (n, self.dim), dtype=self.dtype)
        log_std = self.log_std[...]
        z = self.mean[...] + jnp.exp(log_std) * eps
        log_q = jnp.sum(-0.5 * eps**2 - log_std, axis=-1) - 0.5 * self.dim * _LOG_2PI
        return z, log_q

    def sample(self, key, n: int):
        return self.sample_and_log_prob(key, n)[0]

    def log_prob(self, z):
        z = self._check_z(z)
        log_std = self.log_std[...]
        eps = (z - self.mean[...]) * jnp.exp(-log_std)
        return jnp.sum(-0.5 * eps**2 - log_std, axis=-1) - 0.5 * self.dim * _LOG_2PI


class _FlowStack(nnx.Module):
    """Shared machinery: a base Gaussian plus K layers whose parameters stack on axis 0."""

    kind = "base"

    def _layer(self, z, params):  # pragma: no cover - overridden
        raise NotImplementedError

    def _layer_inverse(self, y, params):  # pragma: no cover - overridden
        raise NotImplementedError

    def _stacked(self):  # pragma: no cover - overridden
        raise NotImplementedError

    def forward(self, z0):
        """Push base points z0 (..., d) through all layers: (z_K (..., d), sum log|det| (...))."""
        z0 = self.base._check_z(z0)

        def step(carry, params):
            z, total = carry
            z_new, log_det = self._layer(z, params)
            return (z_new, total + log_det), None

        init = (z0, jnp.zeros(z0.shape[:-1], self.dtype))
        (z, total), _ = jax.lax.scan(step, init, self._stacked())
        return z, total

    def trajectory(self, z0):
        """Every intermediate point: (K + 1, ..., d) with z_0 first and z_K last."""
        z0 = self.base._check_z(z0)

        def step(z, params):
            z_new, _ = self._layer(z, params)
            return z_new, z_new

        _, zs = jax.lax.scan(step, z0, self._stacked())
        return jnp.concatenate([z0[None], zs], axis=0)

    def inverse(self, z):
        """The base point z_0 with ``forward(z_0)[0] == z``; z (..., d)."""
        z = self.base._check_z(z)

        def step(y, params):
            return self._layer_inverse(y, params), None

        z0, _ = jax.lax.scan(step, z, self._stacked(), reverse=True)
        return z0

    def sample_and_log_prob(self, key, n: int):
        """n draws from q_K and their log-densities (eq. 7): (z (n, d), log_q (n,))."""
        z0, log_q0 = self.base.sample_and_log_prob(key, n)
        z, log_det = self.forward(z0)
        return z, log_q0 - log_det

    def sample(self, key, n: int):
        return self.sample_and_log_prob(key, n)[0]

    def log_prob(self, z):
        """log q_K(z) for any z (..., d): invert the layers, then apply eq. 7 along the way back."""
        z0 = self.inverse(z)
        _, log_det = self.forward(z0)
        return self.base.log_prob(z0) - log_det


class PlanarFlow(_FlowStack):
    """K planar layers ``f(z) = z + u_hat tanh(w.z + b)`` on a learnable diagonal Gaussian.

    Parameters: ``u``, ``w`` (K, d) and ``b`` (K,), unconstrained (u_hat keeps each layer
    invertible, see :func:`~bayeskit.flows.planar_transform`); the base ``mean`` and ``log_std``.
    ``u`` and ``w`` start as N(0, init_scale^2) draws so that the flow starts near the identity
    but with non-zero gradients; ``b`` starts at 0. ``length = 0`` is the plain Gaussian.
    """

    kind = "planar"

    def __init__(self, dim: int, length: int, rngs: nnx.Rngs, *, init_scale: float = 0.1,
                 dtype=jnp.float32):
        self.dim = _check_dim(dim)
        self.length = _check_dim(length, "length", minimum=0)
        self.dtype = _check_dtype(dtype)
        self.base = DiagonalGaussian(dim, dtype=self.dtype)
        ku, kw = jax.random.split(rngs.params())
        self.u = nnx.Param(init_scale * jax.random.normal(ku, (length, dim), self.dtype))
        self.w = nnx.Param(init_scale * jax.random.normal(kw, (length, dim), self.dtype))
        self.b = nnx.Param(jnp.zeros(length, self.dtype))

    def _stacked(self):
        return self.u[...], self.w[...], self.b[...]

    def _layer(self, z, params):
        u, w, b = params
        return planar_transform(z, u, w, b)

    def _layer_inverse(self, y, params):
        u, w, b = params
        iterations = 60 if self.dtype == jnp.float32 else 110
        return planar_inverse(y, u, w, b, iterations=iterations)


class RadialFlow(_FlowStack):
    """K radial layers ``f(z) = z + beta_hat (z - z0) / (alpha + |z - z0|)`` on a diagonal Gaussian.

    Parameters: centres ``z0`` (K, d) drawn N(0, I) (where the base puts its mass), unconstrained
    ``alpha`` (K,) = 0 (alpha_pos = log 2) and ``beta`` = ``alpha`` so that beta_hat = 0: every
    layer starts as the identity. See :func:`~bayeskit.flows.radial_transform`.
    """

    kind = "radial"

    def __init__(self, dim: int, length: int, rngs: nnx.Rngs, *, dtype=jnp.float32):
        self.dim = _check_dim(dim)
        self.length = _check_dim(length, "length", minimum=0)
        self.dtype = _check_dtype(dtype)
        self.base = DiagonalGaussian(dim, dtype=self.dtype)
        self.z0 = nnx.Param(jax.random.normal(rngs.params(), (length, dim), self.dtype))
        self.alpha = nnx.Param(jnp.zeros(length, self.dtype))
        self.beta = nnx.Param(jnp.zeros(length, self.dtype))

    def _stacked(self):
        return self.z0[...], self.alpha[...], self.beta[...]

    def _layer(self, z, params):
        z0, alpha, beta = params
        return radial_transform(z, z0, alpha, beta)

    def _layer_inverse(self, y, params):
        z0, alpha, beta = params
        return radial_inverse(y, z0, alpha, beta)


FLOW_KINDS = ("planar", "radial")


def make_flow(kind: str, dim: int, length: int, rngs: nnx.Rngs, *, dtype=jnp.float32):
    """A :class:`PlanarFlow` or :class:`RadialFlow` by name (``kind`` in ``FLOW_KINDS``)."""
    if kind == "planar":
        return PlanarFlow(dim, length, rngs, dtype=dtype)
    if kind == "radial":
        return RadialFlow(dim, length, rngs, dtype=dtype)
    raise ValueError(f"kind must be one of {FLOW_KINDS}; got {kind!r}")


# ---------------------------------------------------------------------------------------------
# compiled entry points, cached per flow structure
# ---------------------------------------------------------------------------------------------
# Calling ``flow.log_prob`` eagerly (or through a fresh ``jax.jit``) traces and compiles its
# ``lax.scan`` again on every call. These cache one compiled program per flow *structure*
# (kind, d, K, dtype -- the NNX graphdef) and take the parameters as arguments, so density plots
# and evaluations of many fitted flows of the same shape compile once.
@functools.lru_cache(maxsize=64)
def _log_prob_program(graphdef):
    return jax.jit(lambda state, z: nnx.merge(graphdef, state).log_prob(z))


@functools.lru_cache(maxsize=64)
def _sampler_program(graphdef, n: int):
    return jax.jit(lambda state, key: nnx.merge(graphdef, state).sample_and_log_prob(key, n))


def flow_log_prob(flow, z):
    """``flow.log_prob(z)`` through a compiled program cached per flow structure; z (..., d)."""
    graphdef, state = nnx.split(flow)
    z = flow.base._check_z(z) if hasattr(flow, "base") else jnp.asarray(z)
    return _log_prob_program(graphdef)(state, z)


def flow_sample_and_log_prob(flow, key, n: int):
    """``flow.sample_and_log_prob(key, n)`` through a compiled program cached per structure and n."""
    _check_n(n)
    graphdef, state = nnx.split(flow)
    return _sampler_program(graphdef, n)(state, key)
