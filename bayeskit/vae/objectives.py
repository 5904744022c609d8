"""Bounds on log p(x) and their gradients: the ELBO, beta-VAE, IWAE, and two gradient estimators.

For one data point x and z ~ q(z | x) the log importance weight is

    log w(z) = log p(x | z) + log p(z) - log q(z | x)

* ELBO (*Auto-Encoding Variational Bayes*, eq. 3; *Stochastic Backpropagation ...*, eq. 9):
  ``E_q[log w] = E_q[log p(x | z)] - KL(q(z | x) || p(z)) <= log p(x)``. With a diagonal
  Gaussian posterior the KL has the closed form (AEVB appendix B)::

      KL = 1/2 sum_i (mu_i^2 + s_i^2 - 1 - log s_i^2)

  and only the reconstruction term is estimated by sampling (``analytic_kl=True``, the lower
  variance estimator); ``analytic_kl=False`` averages log w instead (needed for flows, whose
  KL has no closed form).
* beta-VAE (Higgins et al., *beta-VAE: Learning Basic Visual Concepts with a Constrained
  Variational Framework*): ``E_q[log p(x | z)] - beta KL``; beta = 1 is the ELBO.
* IWAE (Burda, Grosse and Salakhutdinov, *Importance Weighted Autoencoders*, eq. 8)::

      L_K = E[ log (1/K) sum_k w(z_k) ],  z_k ~ q(z | x) independently

  L_1 is the ELBO, L_K <= L_{K+1} <= log p(x) (their theorem 1), and L_K -> log p(x). The sum is
  taken in log space (logsumexp): the weights themselves underflow in float32.

Sampling: draw s (0, 1, 2, ...) uses ``jax.random.fold_in(key, s)``, so the same key gives the
same z's to :func:`elbo`, :func:`iwae_bound` and :func:`elbo_components` (an IWAE with K = 1 is
then exactly the ``analytic_kl=False`` ELBO estimate) and the first K draws of a larger K are
the same points.

Gradient estimators of the ELBO with respect to the encoder's parameters phi (the variational
parameters, *AEVB* section 2.2): the reparameterisation (pathwise) estimator differentiates
log w(mu + s * eps) through the sample; the score-function (REINFORCE, likelihood-ratio)
estimator uses ``grad E_q[f] = E_q[f(z) grad log q(z | x)]`` with f = log w held fixed (the
extra term ``E_q[grad_phi f] = -E_q[grad log q] = 0`` is dropped, as is usual). Both are unbiased;
:func:`gradient_estimates` returns many draws of each so their variances can be compared.
"""

from __future__ import annotations

import math
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from .._validation import as_prng_key
from .model import F32, VAE

__all__ = [
    "ELBOComponents",
    "elbo",
    "elbo_components",
    "gradient_estimates",
    "gradient_variance",
    "iwae_bound",
]

_LOG_2PI = math.log(2.0 * math.pi)
ESTIMATORS = ("reparameterization", "score_function")
# at most this many floats of decoder output per chunk of samples (64 MiB of float32)
_CHUNK_ELEMENTS = 1 << 24


class ELBOComponents(NamedTuple):
    """The two parts of the ELBO per data point, ``elbo = reconstruction - kl``."""

    reconstruction: jax.Array  # (n,): estimate of E_q[log p(x | z)]
    kl: jax.Array  # (n,): KL(q(z | x) || p(z)), closed form (diagonal) or estimated (flows)


# ---------------------------------------------------------------------------------------------
# checks
# ---------------------------------------------------------------------------------------------
def check_vae(vae) -> VAE:
    if not isinstance(vae, VAE):
        raise TypeError(f"vae must be a bayeskit.vae.VAE; got {type(vae).__name__}")
    return vae


def as_data(x, vae: VAE, name: str = "x") -> jax.Array:
    """x as float32 (n, D) for ``vae``: finite, right width, in [0, 1] for a Bernoulli decoder."""
    arr = np.asarray(x)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise TypeError(f"{name} must be a numeric array; got dtype {arr.dtype}")
    arr = np.asarray(arr, dtype=np.float32)
    if arr.ndim == 1 and arr.shape[0] == vae.data_dim:
        raise ValueError(f"{name} must be 2-D (n, {vae.data_dim}); for one data point pass x[None, :]")
    if arr.ndim != 2:
        raise ValueError(
            f"{name} must be 2-D (n, {vae.data_dim}) (flatten images: x.reshape(len(x), -1)); got shape {arr.shape}"
        )
    if arr.shape[1] != vae.data_dim:
        raise ValueError(f"{name} must have {vae.data_dim} columns (the VAE's data_dim); got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is empty: at least one row (data point) is needed")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains {int(np.sum(~np.isfinite(arr)))} NaN or infinite value(s)")
    if vae.likelihood == "bernoulli" and (arr.min() < 0 or arr.max() > 1):
        raise ValueError(
            f"{name} must lie in [0, 1] for likelihood='bernoulli' (got values in [{arr.min():.3g}, {arr.max():.3g}]); "
            "rescale it (e.g. pixels / 255) or use likelihood='gaussian'"
        )
    return jnp.asarray(arr)


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise TypeError(f"{name} must be a positive integer; got {value!r}")
    v = int(value.__index__())
    if v < 1:
        raise ValueError(f"{name} must be >= 1; got {v}")
    return v


def _beta(beta) -> float:
    try:
        b = float(beta)
    except (TypeError, ValueError):
        raise TypeError(f"beta must be a number; got {beta!r}") from None
    if not math.isfinite(b) or b < 0:
        raise ValueError(f"beta must be finite and >= 0; got {b}")
    return b


# ---------------------------------------------------------------------------------------------
# the core (pure, traced inside jit)
# ---------------------------------------------------------------------------------------------
def gaussian_kl(mean, log_std):
    """KL(N(mean, diag s^2) || N(0, I)) per dimension: (..., L) -> (..., L). AEVB appendix B."""
    return 0.5 * (mean * mean + jnp.exp(2.0 * log_std) - 1.0 - 2.0 * log_std)


def log_weight_terms(vae: VAE, x, key, s, encoded):
    """(log p(x | z), log p(z), log q(z | x)), each (n,), for draw number ``s`` (an int or traced)."""
    mean, log_std, flow = encoded
    eps = jax.random.normal(jax.random.fold_in(key, s), mean.shape, F32)
    z0 = mean + jnp.exp(log_std) * eps
    log_q = jnp.sum(-0.5 * eps * eps - log_std - 0.5 * _LOG_2PI, axis=-1)
    if flow is not None:
        z, log_det = vae.flow(z0, flow)
        log_q = log_q - log_det
    else:
        z = z0
    log_px = vae.log_likelihood(x, vae.decode(z))
    log_pz = jnp.sum(-0.5 * z * z - 0.5 * _LOG_2PI, axis=-1)
    return log_px, log_pz, log_q


def sample_terms(vae: VAE, x, key, n_samples: int, encoded=None):
    """The three log-densities for draws 0..n_samples-1: each (n_samples, n), in memory-bounded chunks."""
    if encoded is None:
        encoded = vae.encode_all(x)
    draws = jnp.arange(n_samples)

    def one(s):
        return log_weight_terms(vae, x, key, s, encoded)

    chunk = max(1, min(n_samples, _CHUNK_ELEMENTS // max(1, x.shape[0] * vae.data_dim)))
    if chunk >= n_samples:
        return jax.vmap(one)(draws)
    return jax.lax.map(one, draws, batch_size=chunk)


def elbo_parts(vae: VAE, x, key, n_samples: int, analytic_kl: bool):
    """(reconstruction (n,), kl (n,)) estimates; see :func:`elbo_components`."""
    encoded = vae.encode_all(x)
    log_px, log_pz, log_q = sample_terms(vae, x, key, n_samples, encoded)
    rec = jnp.mean(log_px, axis=0)
    if analytic_kl:
        kl = jnp.sum(gaussian_kl(encoded[0], encoded[1]), axis=-1)
    else:
        kl = jnp.mean(log_q - log_pz, axis=0)
    return rec, kl


@partial(jax.jit, static_argnames=("graphdef", "n_samples", "analytic_kl"))
def _elbo_parts_jit(graphdef, state, x, key, n_samples, analytic_kl):
    return elbo_parts(nnx.merge(graphdef, state), x, key, n_samples, analytic_kl)


@partial(jax.jit, static_argnames=("graphdef", "k"))
def _iwae_jit(graphdef, state, x, key, k):
    vae = nnx.merge(graphdef, state)
    log_px, log_pz, log_q = sample_terms(vae, x, key, k)
    return jax.scipy.special.logsumexp(log_px + log_pz - log_q, axis=0) - jnp.log(jnp.asarray(k, F32))


def _resolve_analytic(vae: VAE, analytic_kl) -> bool:
    if analytic_kl is None:
        return vae.posterior == "diagonal"
    if analytic_kl and vae.posterior != "diagonal":
        raise ValueError(f"analytic_kl=True needs posterior='diagonal': the KL of a {vae.posterior} flow has no closed form")
    return bool(analytic_kl)


# ---------------------------------------------------------------------------------------------
# public functions
# ---------------------------------------------------------------------------------------------
def elbo_components(vae: VAE, x, key, *, n_samples: int = 1, analytic_kl: bool | None = None) -> ELBOComponents:
    """Reconstruction term and KL per data point (``elbo = reconstruction - kl``), each (n,).

    ``reconstruction`` averages log p(x | z) over ``n_samples`` draws z ~ q(z | x); ``kl`` is
    the closed form for a diagonal posterior (default) or the average of log q(z | x) - log p(z)
    over the same draws (``analytic_kl=False``, and always for flows).
    """
    vae = check_vae(vae)
    xs = as_data(x, vae)
    key = as_prng_key(key)
    n_samples = _positive_int(n_samples, "n_samples")
    graphdef, state = nnx.split(vae)
    rec, kl = _elbo_parts_jit(graphdef, state, xs, key, n_samples, _resolve_analytic(vae, analytic_kl))
    return ELBOComponents(rec, kl)


def elbo(vae: VAE, x, key, beta: float = 1.0, *, n_samples: int = 1, analytic_kl: bool | None = None) -> jax.Array:
    """The (beta-)ELBO estimate per data point: x (n, D) -> (n,) float32.

    ``E_q[log p(x | z)] - beta KL(q(z | x) || p(z))`` with the expectation estimated from
    ``n_samples`` reparameterised draws (the same draws for every ``beta``); ``beta=1`` is the
    evidence lower bound of *Auto-Encoding Variational Bayes*. ``analytic_kl``: see
    :func:`elbo_components`. ``key``: a ``jax.random.key`` (or int seed).
    """
    beta = _beta(beta)
    rec, kl = elbo_components(vae, x, key, n_samples=n_samples, analytic_kl=analytic_kl)
    return rec - jnp.asarray(beta, F32) * kl


def iwae_bound(vae: VAE, x, key, k: int) -> jax.Array:
    """The importance-weighted bound L_k per data point: x (n, D) -> (n,) float32.

    ``log (1/k) sum_j p(x, z_j) / q(z_j | x)`` with z_1..z_k ~ q(z | x) (*Importance Weighted
    Autoencoders*, eq. 8), in log space. One draw of the estimator; its expectation grows with
    k towards log p(x). Memory is bounded: draws are processed in chunks.
    """
    vae = check_vae(vae)
    xs = as_data(x, vae)
    key = as_prng_key(key)
    k = _positive_int(k, "k")
    graphdef, state = nnx.split(vae)
    return _iwae_jit(graphdef, state, xs, key, k)


def _path_name(path) -> str:
    return "/".join(str(p) for p in path)


@partial(jax.jit, static_argnames=("graphdef", "estimator", "n_estimates"))
def _gradient_estimates_jit(graphdef, state, x, key, estimator, n_estimates):
    def objective(st, k):
        vae = nnx.merge(graphdef, st)
        mean, log_std, _ = vae.encode_all(x)
        eps = jax.random.normal(k, mean.shape, F32)
        z = mean + jnp.exp(log_std) * eps
        if estimator == "score_function":
            z = jax.lax.stop_gradient(z)
        std = jnp.exp(log_std)
        # log q(z | x) as a function of phi at a fixed z (for the pathwise estimator z itself
        # depends on phi as well, and the gradient flows through both)
        log_q = jnp.sum(-0.5 * ((z - mean) / std) ** 2 - log_std - 0.5 * _LOG_2PI, axis=-1)
        log_w = vae.log_likelihood(x, vae.decode(z)) + jnp.sum(-0.5 * z * z - 0.5 * _LOG_2PI, axis=-1) - log_q
        if estimator == "score_function":
            return jnp.mean(jax.lax.stop_gradient(log_w) * log_q)
        return jnp.mean(log_w)

    def one(k):
        grads = jax.grad(objective)(state, k)
        return {_path_name(p): v[...] for p, v in nnx.to_flat_state(grads) if p[0] == "encoder"}

    keys = jax.random.split(key, n_estimates)
    return jax.lax.map(one, keys, batch_size=min(n_estimates, 256))


def gradient_estimates(vae: VAE, x, key, *, estimator: str = "reparameterization", n_estimates: int = 100) -> dict:
    """Independent single-sample estimates of grad_phi ELBO(x) for the encoder's parameters phi.

    The objective is the batch mean of the ELBO over the rows of x (n, D), one z per row per
    estimate. ``estimator``: ``"reparameterization"`` (differentiate log w(mu + s eps) through
    z) or ``"score_function"`` (``f(z) grad log q(z | x)`` with f = log w, z held fixed; no
    baseline). Estimate j of both estimators uses the same eps, so they can be compared draw by
    draw. Returns ``{"encoder/...": (n_estimates, *parameter shape)}``. Only the encoder is
    included: the decoder's gradient is the same for both estimators. Needs
    ``posterior='diagonal'`` (the score of a flow posterior needs the flow's inverse).
    """
    vae = check_vae(vae)
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {ESTIMATORS}; got {estimator!r}")
    if vae.posterior != "diagonal":
        raise ValueError("gradient_estimates needs posterior='diagonal'")
    xs = as_data(x, vae)
    key = as_prng_key(key)
    n_estimates = _positive_int(n_estimates, "n_estimates")
    if n_estimates < 2:
        raise ValueError("n_estimates must be >= 2 to measure a variance")
    graphdef, state = nnx.split(vae)
    return dict(_gradient_estimates_jit(graphdef, state, xs, key, estimator, n_estimates))


def gradient_variance(estimates: dict) -> float:
    """Total variance of a set of gradient estimates: the trace of their covariance matrix.

    ``estimates``: as returned by :func:`gradient_estimates` (each entry (m, ...)); the sample
    variance (ddof = 1) of every parameter element across the m draws, summed.
    """
    if not isinstance(estimates, dict) or not estimates:
        raise ValueError("estimates must be a non-empty dict of (n_estimates, ...) arrays")
    total = 0.0
    for name, g in estimates.items():
        g = np.asarray(g, dtype=np.float64)
        if g.ndim < 1 or g.shape[0] < 2:
            raise ValueError(f"estimates[{name!r}] needs a leading axis of >= 2 draws; got shape {g.shape}")
        total += float(np.sum(np.var(g, axis=0, ddof=1)))
    return total
