"""Posterior-collapse diagnostics and latent-space helpers.

Posterior collapse: a latent dimension whose posterior q(z_i | x) equals the prior for every x
carries no information about x (its KL term is zero, and the decoder ignores it). Two measures:

* per-dimension KL, averaged over the data (the closed form of *Auto-Encoding Variational
  Bayes*, appendix B, one dimension at a time)::

      KL_i = mean_x 1/2 (mu_i(x)^2 + s_i(x)^2 - 1 - log s_i(x)^2)

* active units (Burda, Grosse and Salakhutdinov, *Importance Weighted Autoencoders*, section
  5.2): dimension i is active when ``A_i = Cov_x(E_q[z_i | x]) > 0.01``, i.e. when the
  posterior mean moves with x.

Both are the quantities of *Beyond Vanilla Variational Autoencoders: Detecting Posterior
Collapse in Conditional and Hierarchical Variational Autoencoders* (Dang et al.); for a linear
VAE the collapse is predicted exactly (:mod:`bayeskit.vae.linear`).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from .._validation import as_prng_key
from .model import F32, VAE
from .objectives import as_data, check_vae, gaussian_kl

__all__ = ["ActiveUnits", "active_units", "interpolate", "kl_per_dimension", "latent_traversal", "posterior_mean"]


class ActiveUnits(NamedTuple):
    """``count`` active dimensions; ``active`` (L,) bool; ``variance`` (L,) = Cov_x(E_q[z_i])."""

    count: int
    active: np.ndarray
    variance: np.ndarray


_encode_jit = jax.jit(lambda graphdef, state, x: nnx.merge(graphdef, state).encode_all(x), static_argnums=0)


def kl_per_dimension(vae: VAE, x) -> np.ndarray:
    """Mean over the rows of x (n, D) of KL(q(z_i | x) || N(0, 1)) for each latent i: (L,).

    Needs ``posterior='diagonal'`` (a flow mixes the dimensions, so its KL does not split into
    per-dimension terms). Values near 0 mark collapsed dimensions; they sum to the mean KL.
    """
    vae = check_vae(vae)
    if vae.posterior != "diagonal":
        raise ValueError(
            f"kl_per_dimension needs posterior='diagonal'; a {vae.posterior} flow couples the latent "
            "dimensions (use active_units instead)"
        )
    graphdef, state = nnx.split(vae)
    mean, log_std, _ = _encode_jit(graphdef, state, as_data(x, vae))
    return np.asarray(jnp.mean(gaussian_kl(mean, log_std), axis=0))


def posterior_mean(vae: VAE, x, key=None, *, n_samples: int = 64) -> np.ndarray:
    """E_q[z | x] for each row of x (n, D): (n, L).

    Exact (the encoder mean) for a diagonal posterior; for a flow posterior the mean of z_K is
    estimated from ``n_samples`` draws, which needs ``key``.
    """
    vae = check_vae(vae)
    xs = as_data(x, vae)
    if isinstance(n_samples, bool) or not hasattr(n_samples, "__index__") or int(n_samples) < 1:
        raise ValueError(f"n_samples must be a positive integer; got {n_samples!r}")
    graphdef, state = nnx.split(vae)
    mean, log_std, flow = _encode_jit(graphdef, state, xs)
    if flow is None:
        return np.asarray(mean)
    if key is None:
        raise ValueError(f"key is required: E_q[z] of a {vae.posterior} flow posterior is estimated by sampling")
    key = as_prng_key(key)
    z = _flow_samples(graphdef, state, xs, key, int(n_samples))
    return np.asarray(jnp.mean(z, axis=0))


def _flow_samples_fn(graphdef, state, x, key, n_samples):
    vae = nnx.merge(graphdef, state)
    mean, log_std, flow = vae.encode_all(x)
    keys = jax.vmap(lambda s: jax.random.fold_in(key, s))(jnp.arange(n_samples))
    eps = jax.vmap(lambda k: jax.random.normal(k, mean.shape, F32))(keys)
    z, _ = vae.flow(mean + jnp.exp(log_std) * eps, flow)
    return z


_flow_samples = jax.jit(_flow_samples_fn, static_argnums=(0, 4))


def active_units(vae: VAE, x, threshold: float = 0.01, *, key=None, n_samples: int = 64) -> ActiveUnits:
    """Active latent dimensions: ``Cov_x(E_q[z_i | x]) > threshold`` over the rows of x (n, D).

    The criterion of *Importance Weighted Autoencoders* (section 5.2; threshold 0.01 there).
    The variance is over the n data points (ddof = 0). For a flow posterior E_q[z] is
    estimated by sampling (pass ``key``); see :func:`posterior_mean`.
    """
    threshold = float(threshold)
    if not np.isfinite(threshold) or threshold < 0:
        raise ValueError(f"threshold must be finite and >= 0; got {threshold}")
    means = posterior_mean(vae, x, key, n_samples=n_samples)
    if means.shape[0] < 2:
        raise ValueError("x needs at least 2 rows to measure how the posterior mean varies with x")
    variance = np.var(means.astype(np.float64), axis=0)
    active = variance > threshold
    return ActiveUnits(int(active.sum()), active, variance)


_decode_mean = jax.jit(lambda graphdef, state, z: nnx.merge(graphdef, state).decode_mean(z), static_argnums=0)


def _latent(z, vae: VAE, name: str) -> np.ndarray:
    arr = np.asarray(z, dtype=np.float32)
    if arr.shape != (vae.latent_dim,):
        raise ValueError(f"{name} must be a latent vector of shape ({vae.latent_dim},); got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def latent_traversal(vae: VAE, z, dim: int, values) -> np.ndarray:
    """Decode z with latent ``dim`` set to each of ``values``: (len(values), D) means of p(x | z).

    z: (L,) the starting code (e.g. ``vae.encode(x[None])[0][0]``, or zeros for the prior
    mean); values: (m,) e.g. ``np.linspace(-3, 3, 9)`` (prior standard deviations). A collapsed
    dimension gives m identical images.
    """
    vae = check_vae(vae)
    z = _latent(z, vae, "z")
    if isinstance(dim, bool) or not hasattr(dim, "__index__") or not 0 <= int(dim) < vae.latent_dim:
        raise ValueError(f"dim must be an integer in [0, {vae.latent_dim}); got {dim!r}")
    values = np.asarray(values, dtype=np.float32)
    if values.ndim != 1 or values.size == 0 or not np.all(np.isfinite(values)):
        raise ValueError(f"values must be a non-empty finite 1-D array; got shape {values.shape}")
    codes = np.repeat(z[None, :], values.size, axis=0)
    codes[:, int(dim)] = values
    graphdef, state = nnx.split(vae)
    return np.asarray(_decode_mean(graphdef, state, jnp.asarray(codes)))


def interpolate(vae: VAE, z_start, z_end, n_steps: int = 8, *, spherical: bool = False) -> np.ndarray:
    """Decode ``n_steps`` codes from z_start to z_end (both (L,)): (n_steps, D) means of p(x | z).

    Linear interpolation ``(1 - t) z_0 + t z_1``, or spherical (slerp, ``spherical=True``),
    which keeps the norm typical of a Gaussian prior sample in high dimensions (White,
    *Sampling Generative Networks*). Endpoints included.
    """
    vae = check_vae(vae)
    a, b = _latent(z_start, vae, "z_start"), _latent(z_end, vae, "z_end")
    if isinstance(n_steps, bool) or not hasattr(n_steps, "__index__") or int(n_steps) < 2:
        raise ValueError(f"n_steps must be an integer >= 2; got {n_steps!r}")
    t = np.linspace(0.0, 1.0, int(n_steps))[:, None]
    if spherical:
        a64, b64 = a.astype(np.float64), b.astype(np.float64)
        cos = np.dot(a64, b64) / max(np.linalg.norm(a64) * np.linalg.norm(b64), 1e-300)
        omega = np.arccos(np.clip(cos, -1.0, 1.0))
        if omega < 1e-6:  # (nearly) the same direction: slerp tends to lerp
            codes = (1 - t) * a64 + t * b64
        else:
            codes = (np.sin((1 - t) * omega) * a64 + np.sin(t * omega) * b64) / np.sin(omega)
    else:
        codes = (1 - t) * a + t * b
    graphdef, state = nnx.split(vae)
    return np.asarray(_decode_mean(graphdef, state, jnp.asarray(codes, dtype=F32)))
