"""The linear VAE in closed form, probabilistic PCA, and posterior collapse exactly predicted.

Papers: M. E. Tipping and C. M. Bishop, *Probabilistic Principal Component Analysis* (J. R.
Stat. Soc. B, 1999); J. Lucas, G. Tucker, R. Grosse and M. Norouzi, *Don't Blame the ELBO! A
Linear VAE Perspective on Posterior Collapse* (NeurIPS 2019); H. Dang, T. Tran, S. Osher,
H. Tran-The, N. Ho and T. Nguyen, *Beyond Vanilla Variational Autoencoders: Detecting Posterior
Collapse in Conditional and Hierarchical Variational Autoencoders* (ICLR 2024), whose linear
(standard) VAE result this module implements.

The model, for data x (D,) and latents z (L,), with noise variance sigma^2::

    p(z) = N(0, I),  p(x | z) = N(W z + mu, sigma^2 I),  q(z | x) = N(V x + c, diag(d))

pPCA (Tipping & Bishop, eqs. 7-8): with S the data covariance (divided by n), eigenvalues
lambda_1 >= ... >= lambda_D and eigenvectors U, the maximum-likelihood parameters are
``W = U_L (Lambda_L - sigma^2 I)^{1/2}`` (any rotation on the right) and, when sigma^2 is also
estimated, ``sigma^2 = mean(lambda_{L+1}, ..., lambda_D)``.

Linear VAE. For data with covariance S and the (beta-)ELBO averaged over the data::

    E_q log p(x | z) = -D/2 log(2 pi sigma^2) - (|x - mu - W m|^2 + tr(W diag(d) W^T)) / (2 sigma^2)
    KL(q || p)       = 1/2 sum_i (d_i + m_i^2 - 1 - log d_i),   m = V x + c

Maximising ``E_q log p(x | z) - beta KL`` one eigen-direction at a time (W's columns along the
eigenvectors, as a diagonal posterior forces) gives, with s_i the length of column i of W::

    a_i = s_i^2 + beta sigma^2 minimises  lambda_i / a_i + log a_i  over a_i >= beta sigma^2
    =>  s_i^2 = max(lambda_i - beta sigma^2, 0),   V_i = s_i u_i^T / lambda_i,
        d_i = beta sigma^2 / lambda_i (active) or 1 (collapsed)

so latent i collapses (W's column is 0, q(z_i | x) = p(z_i) = N(0, 1), KL_i = 0) **exactly when
lambda_i <= beta sigma^2**, and otherwise ``KL_i = 1/2 log(lambda_i / (beta sigma^2))``. For beta = 1
the decoder is pPCA's maximum-likelihood W and q(z | x) is pPCA's exact posterior, so the
ELBO equals the pPCA log-likelihood (:func:`linear_vae_elbo` vs :func:`ppca`).

All of this is small dense linear algebra on D x D matrices, done in float64 (it is compared
with closed forms to many digits).
"""

from __future__ import annotations

import math
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .. import _config  # noqa: F401  (float64)
from .._validation import as_inputs, as_prng_key, positive_scalar

__all__ = [
    "LinearVAEParams",
    "PPCAResult",
    "collapsed_dimensions",
    "fit_linear_vae",
    "linear_vae_elbo",
    "linear_vae_kl_per_dimension",
    "linear_vae_optimum",
    "ppca",
]


class PPCAResult(NamedTuple):
    """Maximum-likelihood probabilistic PCA (Tipping & Bishop)."""

    weight: np.ndarray  # (D, L): W = U_L (Lambda_L - sigma^2)^{1/2} (columns 0 where lambda <= sigma^2)
    mean: np.ndarray  # (D,): the data mean
    noise_variance: float  # sigma^2 (estimated or given)
    eigenvalues: np.ndarray  # (D,): of the data covariance (divided by n), descending
    log_likelihood: float  # mean over the data of log N(x; mean, W W^T + sigma^2 I)


class LinearVAEParams(NamedTuple):
    """A linear VAE: decoder N(W z + mu, sigma^2 I), encoder N(V x + c, diag(d))."""

    decoder_weight: np.ndarray  # (D, L) W
    decoder_bias: np.ndarray  # (D,) mu
    encoder_weight: np.ndarray  # (L, D) V
    encoder_bias: np.ndarray  # (L,) c
    posterior_variance: np.ndarray  # (L,) d
    noise_variance: float  # sigma^2


def _data(X, latent_dim) -> tuple[np.ndarray, int]:
    X = as_inputs(X, "X")
    if X.shape[0] < 2:
        raise ValueError(f"X needs at least 2 rows to estimate a covariance; got {X.shape[0]}")
    if isinstance(latent_dim, bool) or not hasattr(latent_dim, "__index__"):
        raise TypeError(f"latent_dim must be an integer; got {latent_dim!r}")
    L = int(latent_dim)
    if not 1 <= L <= X.shape[1]:
        raise ValueError(f"latent_dim must be in [1, D = {X.shape[1]}]; got {L}")
    return X, L


def _eigh_desc(S):
    lam, U = np.linalg.eigh(S)
    order = np.argsort(lam)[::-1]
    return np.maximum(lam[order], 0.0), U[:, order]


def _gaussian_loglik(X, mean, cov) -> float:
    L = np.linalg.cholesky(cov)
    r = np.linalg.solve(L, (X - mean).T)
    D = X.shape[1]
    return float(np.mean(-0.5 * np.sum(r * r, axis=0)) - np.sum(np.log(np.diag(L))) - 0.5 * D * math.log(2 * math.pi))


def ppca(X, latent_dim: int, noise_variance: float | None = None) -> PPCAResult:
    """Probabilistic PCA by maximum likelihood, in closed form (Tipping & Bishop, eqs. 7-8).

    X: (n, D). ``noise_variance``: sigma^2, or ``None`` to estimate it as the mean of the
    D - L smallest eigenvalues of the covariance S = (1/n) sum (x - mean)(x - mean)^T
    (needs L < D). Returns a :class:`PPCAResult`, the sign of each column of W fixed so its
    largest-magnitude entry is positive.
    """
    X, L = _data(X, latent_dim)
    mean = X.mean(axis=0)
    S = np.cov(X, rowvar=False, bias=True).reshape(X.shape[1], X.shape[1])
    lam, U = _eigh_desc(S)
    if noise_variance is None:
        if L >= X.shape[1]:
            raise ValueError("noise_variance=None (estimate it) needs latent_dim < D")
        sigma2 = float(np.mean(lam[L:]))
        if sigma2 <= 0:
            raise ValueError("the data lie in an L-dimensional subspace: the estimated noise variance is 0")
    else:
        sigma2 = positive_scalar(noise_variance, "noise_variance")
    W = _fix_signs(U[:, :L] * np.sqrt(np.maximum(lam[:L] - sigma2, 0.0)))
    cov = W @ W.T + sigma2 * np.eye(X.shape[1])
    return PPCAResult(W, mean, sigma2, lam, _gaussian_loglik(X, mean, cov))


def _fix_signs(W):
    W = np.array(W, dtype=np.float64)
    for j in range(W.shape[1]):
        i = np.argmax(np.abs(W[:, j]))
        if W[i, j] < 0:
            W[:, j] = -W[:, j]
    return W


def collapsed_dimensions(eigenvalues, noise_variance: float, beta: float = 1.0) -> np.ndarray:
    """Which latent dimensions of the optimal linear (beta-)VAE collapse: lambda_i <= beta sigma^2.

    eigenvalues: (L,) the data-covariance eigenvalues the latents are matched to (descending).
    Returns (L,) bool.
    """
    lam = np.asarray(eigenvalues, dtype=np.float64)
    if lam.ndim != 1 or not np.all(np.isfinite(lam)) or np.any(lam < 0):
        raise ValueError("eigenvalues must be a finite 1-D array of values >= 0")
    sigma2 = positive_scalar(noise_variance, "noise_variance")
    beta = positive_scalar(beta, "beta")
    return lam <= beta * sigma2


def linear_vae_optimum(X, latent_dim: int, *, noise_variance: float | None = None, beta: float = 1.0) -> LinearVAEParams:
    """The global maximiser of the linear VAE's (beta-)ELBO averaged over X (n, D), in closed form.

    ``s_i^2 = max(lambda_i - beta sigma^2, 0)``, ``W = U_L diag(s)``, ``V = diag(s / lambda) U_L^T``,
    ``c = -V mean``, ``d_i = beta sigma^2 / lambda_i`` (1 when collapsed), decoder bias = the
    data mean (module docstring). ``noise_variance``: sigma^2, or ``None`` for pPCA's estimate
    (the joint maximiser when beta = 1). Unique up to the signs (and, for equal eigenvalues,
    an orthogonal mixing) of the latent dimensions.
    """
    X, L = _data(X, latent_dim)
    beta = positive_scalar(beta, "beta")
    base = ppca(X, L, noise_variance)
    sigma2 = base.noise_variance
    lam = base.eigenvalues[:L]
    S = np.cov(X, rowvar=False, bias=True).reshape(X.shape[1], X.shape[1])
    _, U = _eigh_desc(S)
    s = np.sqrt(np.maximum(lam - beta * sigma2, 0.0))
    active = s > 0
    W = U[:, :L] * s
    signs = np.sign(W[np.argmax(np.abs(W), axis=0), np.arange(L)])
    signs[signs == 0] = 1.0
    W = W * signs
    safe_lam = np.where(active, lam, 1.0)
    V = (np.where(active, s / safe_lam, 0.0) * signs)[:, None] * U[:, :L].T
    d = np.where(active, beta * sigma2 / safe_lam, 1.0)
    return LinearVAEParams(W, base.mean, V, -V @ base.mean, d, sigma2)


def _check_params(params) -> LinearVAEParams:
    if not isinstance(params, LinearVAEParams):
        raise TypeError(f"params must be a LinearVAEParams; got {type(params).__name__}")
    return params


def _elbo_terms(W, mu, V, c, d, sigma2, X):
    """Per-point (E_q log p(x|z), KL), each (n,), exact (expectations in closed form)."""
    m = X @ V.T + c
    resid = X - mu - m @ W.T
    D = X.shape[1]
    rec = (-0.5 * D * jnp.log(2 * jnp.pi * sigma2)
           - 0.5 * (jnp.sum(resid * resid, axis=1) + jnp.sum((W * W) @ d)) / sigma2)
    kl = 0.5 * jnp.sum(d + m * m - 1.0 - jnp.log(d), axis=1)
    return rec, kl


def linear_vae_elbo(params: LinearVAEParams, X, beta: float = 1.0) -> np.ndarray:
    """The exact (beta-)ELBO of each row of X (n, D) under a linear VAE: (n,), float64.

    No sampling: for a linear Gaussian decoder E_q log p(x | z) has the closed form in the
    module docstring, and the KL is the Gaussian one.
    """
    p = _check_params(params)
    X = as_inputs(X, "X", dim=np.asarray(p.decoder_bias).shape[0])
    beta = positive_scalar(beta, "beta", allow_zero=True)
    rec, kl = _elbo_terms(*(jnp.asarray(a, jnp.float64) for a in p[:5]), float(p.noise_variance), jnp.asarray(X))
    return np.asarray(rec - beta * kl)


def linear_vae_kl_per_dimension(params: LinearVAEParams, X) -> np.ndarray:
    """mean_x KL(q(z_i | x) || N(0, 1)) for each latent i: (L,). Zero exactly for collapsed ones."""
    p = _check_params(params)
    X = as_inputs(X, "X", dim=np.asarray(p.decoder_bias).shape[0])
    m = X @ np.asarray(p.encoder_weight).T + np.asarray(p.encoder_bias)
    d = np.asarray(p.posterior_variance, dtype=np.float64)
    return np.mean(0.5 * (d + m * m - 1.0 - np.log(d)), axis=0)


@partial(jax.jit, static_argnames=("steps",))
def _fit(init, X, sigma2, beta, learning_rate, steps):
    # a cosine-decayed step: Adam at a fixed rate hovers around the optimum; collapsed
    # directions converge slowly (their gradient vanishes quadratically) and need the small steps
    tx = optax.adam(optax.cosine_decay_schedule(learning_rate, steps, alpha=1e-2))

    def loss(p):
        W, mu, V, c, log_d = p
        rec, kl = _elbo_terms(W, mu, V, c, jnp.exp(log_d), sigma2, X)
        return -jnp.mean(rec - beta * kl)

    def step(carry, _):
        p, s = carry
        value, g = jax.value_and_grad(loss)(p)
        u, s = tx.update(g, s, p)
        return (optax.apply_updates(p, u), s), value

    (p, _), curve = jax.lax.scan(step, (init, tx.init(init)), None, length=steps)
    return p, curve


def fit_linear_vae(
    X,
    latent_dim: int,
    *,
    noise_variance: float,
    beta: float = 1.0,
    key,
    steps: int = 5000,
    learning_rate: float = 1e-2,
) -> tuple[LinearVAEParams, np.ndarray]:
    """Train a linear VAE by gradient ascent (full-batch Adam, cosine-decayed step) on its exact mean (beta-)ELBO.

    The check on :func:`linear_vae_optimum`: the ELBO of the linear VAE has no spurious local
    optima (Lucas et al.), so training from a random start reaches the closed form. X: (n, D);
    sigma^2 = ``noise_variance`` is fixed. Returns (params, curve of the negative mean ELBO per
    step). Float64.
    """
    X, L = _data(X, latent_dim)
    sigma2 = positive_scalar(noise_variance, "noise_variance")
    beta = positive_scalar(beta, "beta")
    if isinstance(steps, bool) or not hasattr(steps, "__index__") or int(steps) < 1:
        raise ValueError(f"steps must be a positive integer; got {steps!r}")
    lr = positive_scalar(learning_rate, "learning_rate")
    key = as_prng_key(key)
    D = X.shape[1]
    k1, k2 = jax.random.split(key)
    scale = math.sqrt(float(np.mean(np.var(X, axis=0))) + 1e-12)
    init = (
        0.1 * scale * jax.random.normal(k1, (D, L), jnp.float64),
        jnp.zeros(D, jnp.float64),
        0.1 / scale * jax.random.normal(k2, (L, D), jnp.float64),
        jnp.zeros(L, jnp.float64),
        jnp.zeros(L, jnp.float64),
    )
    (W, mu, V, c, log_d), curve = _fit(init, jnp.asarray(X), sigma2, beta, lr, int(steps))
    params = LinearVAEParams(np.asarray(W), np.asarray(mu), np.asarray(V), np.asarray(c), np.exp(np.asarray(log_d)), sigma2)
    return params, np.asarray(curve)
