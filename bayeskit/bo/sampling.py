"""Posterior function samples for Thompson sampling and max-value entropy search.

* exact joint draws of f on a finite candidate set (a Cholesky of the posterior covariance);
* random-Fourier-feature sample paths conditioned by Matheron's rule (*Random Features for
  Large-Scale Kernel Machines*; *Efficiently Sampling Functions from Gaussian Process
  Posteriors*, eq. (13)), callable anywhere and differentiable, so their minimum can be found by
  gradient-based search in the continuous domain;
* samples of the minimum value f* (exact on candidates, or the Gumbel fit of *Max-value Entropy
  Search for Efficient Bayesian Optimization*, section 3.1).

Every function takes an explicit ``jax.random`` key (or int seed).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import scipy.special

from .. import _config  # noqa: F401  (float64)
from .._validation import as_prng_key
from ..gp.exact import Posterior, mvn_samples
from ..kernels import RBF, Kernel, Matern12, Matern32, Matern52
from .acquisitions import posterior_mean_cov

__all__ = [
    "joint_posterior_samples",
    "thompson_sample_candidates",
    "sampled_min_values",
    "gumbel_min_values",
    "RandomFourierFeatures",
    "random_fourier_features",
    "pathwise_posterior_sample",
    "PosteriorSamplePath",
]


def joint_posterior_samples(post: Posterior, candidates, key, n_samples: int = 1) -> np.ndarray:
    """Joint draws of f at candidates (m, d) from the GP posterior: (n_samples, m).

    Uses a jittered Cholesky of the (m, m) posterior covariance (warns if the jitter is large).
    """
    mean, cov = posterior_mean_cov(post, jnp.asarray(candidates))
    draws = mvn_samples(as_prng_key(key), mean, cov, int(n_samples), what="posterior covariance on the candidates")
    return np.asarray(draws).T


def thompson_sample_candidates(post: Posterior, candidates, key):
    """Exact Thompson sampling on a finite set: draw f jointly at candidates (m, d), return argmin.

    Returns (index of the sample's minimiser, the sample (m,)). *On the Likelihood that One
    Unknown Probability Exceeds Another in View of the Evidence of Two Samples* (Thompson).
    """
    sample = joint_posterior_samples(post, candidates, key, 1)[0]
    return int(np.argmin(sample)), sample


def sampled_min_values(post: Posterior, candidates, key, n_samples: int = 16) -> np.ndarray:
    """Samples of the minimum value f* as minima of joint posterior draws on candidates: (s,)."""
    return joint_posterior_samples(post, candidates, key, n_samples).min(axis=1)


def gumbel_min_values(mean, std, key, n_samples: int = 16) -> np.ndarray:
    """Samples of f* from a Gumbel fit to P(f* > y) ~ prod_x Phi((mean(x) - y) / std(x)): (s,).

    *Max-value Entropy Search for Efficient Bayesian Optimization*, section 3.1, mirrored for
    minimisation: the approximate survival function treats the candidates as independent; its
    quartiles are found by bisection in log space, and a Gumbel distribution for -f* is matched
    to them. mean, std: (m,) posterior marginals on a candidate set.
    """
    mean = np.asarray(mean, dtype=np.float64)
    std = np.maximum(np.asarray(std, dtype=np.float64), 1e-12)

    def log_survival(y):  # log P(f* > y), decreasing in y
        return float(np.sum(scipy.special.log_ndtr((mean - y) / std)))

    def quantile(p):  # y with P(f* <= y) = p, i.e. log_survival(y) = log(1 - p)
        target = math.log1p(-p)
        step = 10.0 * float(np.max(std))
        lo, hi = float(np.min(mean - 10 * std)), float(np.min(mean))
        while log_survival(lo) < target:
            lo -= step
        while log_survival(hi) > target:
            hi += step
        for _ in range(80):
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if log_survival(mid) > target else (lo, mid)
        return 0.5 * (lo + hi)

    q1, q2, q3 = quantile(0.25), quantile(0.5), quantile(0.75)
    # -f* ~ Gumbel(loc, scale): its quantiles are loc - scale log(-log p); match the quartiles
    scale = max((q3 - q1) / (math.log(math.log(4.0)) - math.log(math.log(4.0 / 3.0))), 1e-12)
    loc = -q2 + scale * math.log(math.log(2.0))
    u = np.asarray(jax.random.uniform(as_prng_key(key), (int(n_samples),), minval=1e-12, maxval=1 - 1e-12))
    return -(loc - scale * np.log(-np.log(u)))


# ---------------------------------------------------------------------------------------------
# Random Fourier features and pathwise (Matheron) conditioning
# ---------------------------------------------------------------------------------------------
class RandomFourierFeatures(NamedTuple):
    """phi(x) = sqrt(2 variance / M) cos(x @ omega + phase): omega (d, M), phase (M,)."""

    omega: jax.Array
    phase: jax.Array
    variance: jax.Array

    def __call__(self, X):
        X = jnp.atleast_2d(jnp.asarray(X))
        M = self.phase.shape[0]
        return jnp.sqrt(2.0 * self.variance / M) * jnp.cos(X @ self.omega + self.phase)


_MATERN_NU = {Matern12: 0.5, Matern32: 1.5, Matern52: 2.5}


def random_fourier_features(kernel: Kernel, dim: int, n_features: int, key) -> RandomFourierFeatures:
    """Random features with E[phi(x) . phi(x')] = k(x, x') for RBF and Matern kernels.

    Bochner's theorem (*Random Features for Large-Scale Kernel Machines*, eq. (2)): frequencies
    come from the kernel's spectral density. RBF: omega ~ N(0, diag(1 / lengthscale^2)); Matern
    nu: a multivariate Student-t with 2 nu degrees of freedom, omega = g / lengthscale *
    sqrt(2 nu / u), g ~ N(0, I), u ~ chi^2(2 nu) (R&W, eq. (4.15)).
    """
    if n_features < 1:
        raise ValueError(f"n_features must be >= 1; got {n_features}")
    if not isinstance(kernel, (RBF, Matern12, Matern32, Matern52)):
        raise TypeError(
            "random_fourier_features needs an RBF or Matern12/32/52 kernel; got "
            f"{type(kernel).__name__}"
        )
    k_g, k_u, k_b = jax.random.split(as_prng_key(key), 3)
    g = jax.random.normal(k_g, (dim, n_features))
    lengthscale = jnp.broadcast_to(jnp.asarray(kernel.lengthscale, dtype=jnp.float64), (dim,))
    omega = g / lengthscale[:, None]
    if type(kernel) in _MATERN_NU:
        nu = _MATERN_NU[type(kernel)]
        u = 2.0 * jax.random.gamma(k_u, nu, (n_features,))  # chi^2 with 2 nu dof
        omega = omega * jnp.sqrt(2.0 * nu / u)[None, :]
    phase = jax.random.uniform(k_b, (n_features,), maxval=2.0 * jnp.pi)
    return RandomFourierFeatures(omega, phase, jnp.asarray(kernel.variance, dtype=jnp.float64))


class PosteriorSamplePath(NamedTuple):
    """A posterior sample path f~(X) = phi(X) @ weights + k(X, X_train) @ update; a pytree."""

    features: RandomFourierFeatures
    weights: jax.Array
    kernel: Kernel
    X_train: jax.Array
    update: jax.Array

    def __call__(self, Xs):
        """f~ at Xs (m, d): (m,)."""
        Xs = jnp.atleast_2d(jnp.asarray(Xs))
        return self.features(Xs) @ self.weights + self.kernel(Xs, self.X_train) @ self.update


def pathwise_posterior_sample(post: Posterior, key, n_features: int = 1024) -> PosteriorSamplePath:
    """One approximate posterior sample path f~, callable on X (m, d) -> (m,).

    Matheron's rule (*Efficiently Sampling Functions from Gaussian Process Posteriors*, eq. (13)):
    f~(x) = f_prior(x) + k(x, X) K^{-1} (y - f_prior(X) - eps), with f_prior an RFF prior draw
    and eps ~ N(0, noise). Since post.alpha = K^{-1} y, only K^{-1} (f_prior(X) + eps) is new.
    The update term is exact, so the path interpolates the data however few features are used;
    only the prior part is approximate. Differentiable in X; a pytree, so it can be passed to
    jitted code.
    """
    k_f, k_w, k_e = jax.random.split(as_prng_key(key), 3)
    X = post.X
    features = random_fourier_features(post.kernel, X.shape[1], n_features, k_f)
    w = jax.random.normal(k_w, (n_features,))
    eps = jnp.sqrt(post.noise) * jax.random.normal(k_e, (X.shape[0],))
    resid = jax.scipy.linalg.cho_solve((post.L, True), features(X) @ w + eps)
    return PosteriorSamplePath(features, w, post.kernel, X, post.alpha - resid)
