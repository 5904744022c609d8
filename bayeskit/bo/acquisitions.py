"""Acquisition functions for Bayesian optimisation, all for **minimisation** of f.

Every analytic acquisition is a pure, elementwise JAX function of the GP posterior marginals at
the candidate points (``mean``, ``std``: arrays of one shape) and of the incumbent ``best``; it
returns a *utility*: larger means more worth evaluating (the lower confidence bound is the
exception: it is the bound itself, and the optimiser minimises it). Monte-Carlo acquisitions take
a :class:`bayeskit.gp.Posterior` and explicit base samples or PRNG keys.

With z = (best - mean) / std (improvement measured downwards) and h(z) = phi(z) + z Phi(z):

* expected improvement  EI = E[max(best - f, 0)] = std h(z)
  (*A Tutorial on Bayesian Optimization*, Frazier, eq. (8), written for minimisation)
* log EI = log std + log h(z), computed without forming h where it underflows
  (*Unexpected Improvements to Expected Improvement for Bayesian Optimization*, eq. (9))
* probability of improvement  PI = P(f < best) = Phi(z), and log PI = log Phi(z)
* lower confidence bound  LCB = mean - sqrt(beta) std
  (*Gaussian Process Optimization in the Bandit Setting: No Regret and Experimental Design*)
* max-value entropy search (*Max-value Entropy Search for Efficient Bayesian Optimization*, eq. 6)
* knowledge gradient on a discrete set (*The Knowledge-Gradient Policy for Correlated Normal
  Beliefs*, Algorithm 1; Frazier's tutorial, section 4.2)
* noisy EI and batch q-EI by Monte Carlo over joint posterior samples (*A Tutorial on Bayesian
  Optimization*, section 5; *Maximizing acquisition functions for Bayesian optimization*)
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import scipy.special
from jax.scipy.special import erfcx, log_ndtr, ndtr

from .. import _config  # noqa: F401  (float64)
from ..gp.exact import Posterior

__all__ = [
    "expected_improvement",
    "log_expected_improvement",
    "log_h",
    "probability_of_improvement",
    "log_probability_of_improvement",
    "lower_confidence_bound",
    "max_value_entropy_search",
    "knowledge_gradient",
    "expected_max_of_affine",
    "noisy_expected_improvement",
    "q_expected_improvement",
    "posterior_mean_cov",
]

_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)
_LOG_SQRT_PI_OVER_2 = 0.5 * math.log(math.pi / 2.0)
_INV_SQRT_EPS = 1.0 / math.sqrt(np.finfo(np.float64).eps)  # ~6.7e7


def _z(mean, std, best):
    mean, std, best = jnp.asarray(mean), jnp.asarray(std), jnp.asarray(best)
    return (best - mean) / std, std


def _h(z):
    """h(z) = phi(z) + z Phi(z): EI of a standard normal below the threshold z."""
    return jnp.exp(-0.5 * z * z - _LOG_SQRT_2PI) + z * ndtr(z)


def _log1mexp(x):
    """log(1 - exp(x)) for x < 0, accurate at both ends (*Accurately Computing log(1 - exp(-|a|))*)."""
    return jnp.where(x > -math.log(2.0), jnp.log(-jnp.expm1(x)), jnp.log1p(-jnp.exp(x)))


def log_h(z):
    """log h(z), h(z) = phi(z) + z Phi(z), finite for every finite z.

    Three regimes (*Unexpected Improvements to Expected Improvement for Bayesian Optimization*,
    eq. (9)):

    * z > -1: log h(z) directly; h(-1) = 0.083, no cancellation.
    * -1/sqrt(eps) < z <= -1: writing Phi(z) = erfcx(-z / sqrt 2) phi(z) sqrt(pi / 2),
      h(z) = phi(z) (1 - |z| erfcx(-z / sqrt 2) sqrt(pi / 2)), so
      log h = -z^2 / 2 - log sqrt(2 pi) + log1mexp(log(|z| erfcx(-z / sqrt 2)) + log sqrt(pi / 2)).
      Nothing underflows: erfcx(x) ~ 1 / (x sqrt pi) decays only slowly.
    * z <= -1/sqrt(eps): the asymptote h(z) ~ phi(z) / z^2 (the correction 3 / z^2 is below eps).
    """
    z = jnp.asarray(z)
    # each branch sees only inputs valid for it, so no NaN leaks into gradients through where
    z_hi = jnp.where(z > -1.0, z, -1.0)
    z_mid = jnp.clip(z, -_INV_SQRT_EPS, -1.0)
    z_lo = jnp.where(z <= -_INV_SQRT_EPS, z, -_INV_SQRT_EPS)
    direct = jnp.log(_h(z_hi))
    mid = (
        -0.5 * z_mid**2
        - _LOG_SQRT_2PI
        + _log1mexp(jnp.log(erfcx(-z_mid / math.sqrt(2.0)) * -z_mid) + _LOG_SQRT_PI_OVER_2)
    )
    tail = -0.5 * z_lo**2 - _LOG_SQRT_2PI - 2.0 * jnp.log(-z_lo)
    return jnp.where(z > -1.0, direct, jnp.where(z > -_INV_SQRT_EPS, mid, tail))


def expected_improvement(mean, std, best):
    """EI(x) = E[max(best - f(x), 0)] = std h((best - mean) / std)  (minimisation).

    mean, std: (...,) posterior mean and standard deviation of f; best: scalar or broadcastable.
    Frazier, *A Tutorial on Bayesian Optimization*, eq. (8). Underflows to 0 for z below about
    -38; use :func:`log_expected_improvement` to rank points there. std must be > 0.
    """
    z, std = _z(mean, std, best)
    return std * _h(z)


def log_expected_improvement(mean, std, best):
    """log EI = log std + log h(z), finite and accurate wherever std > 0 (see :func:`log_h`).

    *Unexpected Improvements to Expected Improvement for Bayesian Optimization*, eq. (9).
    Shapes as :func:`expected_improvement`.
    """
    z, std = _z(mean, std, best)
    return jnp.log(std) + log_h(z)


def probability_of_improvement(mean, std, best):
    """PI(x) = P(f(x) < best) = Phi((best - mean) / std)  (Kushner's criterion, minimisation)."""
    z, _ = _z(mean, std, best)
    return ndtr(z)


def log_probability_of_improvement(mean, std, best):
    """log PI = log Phi(z) via ``log_ndtr`` (finite where PI underflows)."""
    z, _ = _z(mean, std, best)
    return log_ndtr(z)


def lower_confidence_bound(mean, std, beta=4.0):
    """LCB(x) = mean - sqrt(beta) std: an optimistic value of f, to be *minimised*.

    beta >= 0 trades exploitation (0) against exploration; *Gaussian Process Optimization in
    the Bandit Setting: No Regret and Experimental Design* (GP-UCB, eq. (6), with the sign turned
    for minimisation). Under the posterior, P(f(x) < LCB(x)) = Phi(-sqrt(beta)).
    """
    return jnp.asarray(mean) - jnp.sqrt(beta) * jnp.asarray(std)


def max_value_entropy_search(mean, std, min_samples):
    """Max-value entropy search for minimisation; mean, std: (m,), min_samples: (s,).

    The information gained about the minimum value f* by observing f(x), averaged over samples
    of f* (*Max-value Entropy Search for Efficient Bayesian Optimization*, eq. (6)), with
    gamma = (mean - f*) / std (the mirror image of the paper's maximisation):

        MES(x) = mean_s [ gamma phi(gamma) / (2 Phi(gamma)) - log Phi(gamma) ]

    The ratio phi / Phi is taken in log space so that very negative gamma stays finite.
    Returns (m,).
    """
    mean = jnp.asarray(mean)[..., None]
    std = jnp.asarray(std)[..., None]
    gamma = (mean - jnp.asarray(min_samples)) / std
    log_cdf = log_ndtr(gamma)
    ratio = jnp.exp(-0.5 * gamma**2 - _LOG_SQRT_2PI - log_cdf)  # phi(gamma) / Phi(gamma)
    return jnp.mean(0.5 * gamma * ratio - log_cdf, axis=-1)


# ---------------------------------------------------------------------------------------------
# Joint posterior at new points (differentiable in the points, unlike bayeskit.gp.predict's
# host-side input checks)
# ---------------------------------------------------------------------------------------------
def posterior_mean_cov(post: Posterior, Xs):
    """Posterior mean (m,) and covariance (m, m) of f at Xs (m, d) as traceable JAX code.

    R&W, *Gaussian Processes for Machine Learning*, eqs. (2.25)-(2.26); post.alpha must be (n,).
    """
    Ks = post.kernel(post.X, Xs)
    mean = Ks.T @ post.alpha
    V = jax.scipy.linalg.solve_triangular(post.L, Ks, lower=True)
    return mean, post.kernel(Xs) - V.T @ V


def _cholesky_psd(cov):
    """Cholesky factor of a posterior covariance, with a relative jitter that keeps it finite.

    Posterior covariances at points close to the data or to each other are singular to round
    off; Monte-Carlo acquisitions only need a factor that reproduces the covariance to ~1e-8.
    """
    scale = jnp.maximum(jnp.mean(jnp.diagonal(cov)), 1e-30)
    eye = jnp.eye(cov.shape[0], dtype=cov.dtype)
    return jnp.linalg.cholesky(cov + 1e-8 * scale * eye)


def q_expected_improvement(post: Posterior, Xq, best, base_samples):
    """Monte-Carlo batch EI of q points: E[max(best - min_j f(x_j), 0)].

    Xq: (q, d); base_samples: (s, q) standard normals held fixed across calls, so the estimate
    is a smooth deterministic function of Xq that L-BFGS-B can climb (the reparameterisation of
    *Maximizing acquisition functions for Bayesian optimization*, section 3). With q = 1 it is a
    Monte-Carlo estimate of :func:`expected_improvement` (*Kriging is well-suited to parallelize
    optimization*, defines q-EI). Returns a scalar.
    """
    mean, cov = posterior_mean_cov(post, Xq)
    L = _cholesky_psd(cov)
    f = mean[None, :] + base_samples @ L.T  # (s, q)
    return jnp.mean(jnp.maximum(best - jnp.min(f, axis=1), 0.0))


def noisy_expected_improvement(post: Posterior, X_observed, Xs, base_samples):
    """Noisy EI at each row of Xs (m, d) by Monte Carlo over the incumbent's posterior.

    With noisy observations the best value so far is unknown, so EI is averaged over its
    posterior (Frazier's *A Tutorial on Bayesian Optimization*, section 5, and *Constrained
    Bayesian Optimization with Noisy Experiments*): for each joint draw of f at the n observed
    points and at x, improvement = max(min_i f(x_i) - f(x), 0).

    X_observed: (n, d); base_samples: (s, n + 1) fixed standard normals (common random numbers
    across x, so the result is smooth in x). Returns (m,).
    """
    X_observed = jnp.asarray(X_observed)

    def one(x):
        Z = jnp.concatenate([X_observed, x[None, :]], axis=0)
        mean, cov = posterior_mean_cov(post, Z)
        f = mean[None, :] + base_samples @ _cholesky_psd(cov).T  # (s, n + 1)
        return jnp.mean(jnp.maximum(jnp.min(f[:, :-1], axis=1) - f[:, -1], 0.0))

    return jax.vmap(one)(jnp.asarray(Xs))


# ---------------------------------------------------------------------------------------------
# Knowledge gradient on a discrete set
# ---------------------------------------------------------------------------------------------
def expected_max_of_affine(a, b) -> float:
    """E[max_i (a_i + b_i Z)] - max_i a_i for Z ~ N(0, 1), exactly; a, b: (p,) numpy arrays.

    Algorithm 1 of *The Knowledge-Gradient Policy for Correlated Normal Beliefs* (Frazier,
    Powell & Dayanik): sort the lines by slope, keep those on the upper envelope, and sum
    (b_{i+1} - b_i) f(-|c_i|) over its breakpoints c_i, where f(z) = z Phi(z) + phi(z) = h(z).
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    order = np.lexsort((a, b))  # by slope, ties broken by intercept
    a, b = a[order], b[order]
    # among equal slopes only the largest intercept can be on the envelope
    keep = np.append(b[1:] != b[:-1], True)
    a, b = a[keep], b[keep]
    hull_a, hull_b, breaks = [a[0]], [b[0]], [-np.inf]
    for ai, bi in zip(a[1:], b[1:]):
        while True:
            # line i overtakes the last envelope line at c
            c = (hull_a[-1] - ai) / (bi - hull_b[-1])
            if c <= breaks[-1]:
                hull_a.pop(), hull_b.pop(), breaks.pop()
                if not hull_a:
                    c = -np.inf
                    break
            else:
                break
        hull_a.append(ai), hull_b.append(bi), breaks.append(c)
    hb = np.asarray(hull_b)
    c = np.asarray(breaks[1:])
    if c.size == 0:
        return 0.0
    # h in NumPy/SciPy, not _h: the envelope's size changes from call to call, and each new
    # size would compile a new XLA program (seconds per KG step in the BO loop)
    z = -np.abs(c)
    h = np.exp(-0.5 * z * z - _LOG_SQRT_2PI) + z * scipy.special.ndtr(z)
    return float(np.sum(np.diff(hb) * h))


def knowledge_gradient(mean_A, cov_A_x, var_x, noise) -> np.ndarray:
    """Knowledge gradient of measuring each candidate x, for minimisation, on a discrete set A.

    KG(x) = E[min_A mu_n - min_A mu_{n+1} | measure y = f(x) + eps], where after the measurement
    mu_{n+1}(A) = mu_n(A) + sigma~(A, x) Z with sigma~ = Sigma_n(A, x) / sqrt(Sigma_n(x, x) + noise)
    (Frazier's tutorial, eq. (12), and *The Knowledge-Gradient Policy for Correlated Normal
    Beliefs*, eq. (3)). Computed exactly by :func:`expected_max_of_affine` on -mu, -sigma~.

    mean_A: (p,) posterior mean on A; cov_A_x: (p, m) posterior covariance between A and the
    m candidates; var_x: (m,) their posterior variances; noise: observation-noise variance.
    Put each candidate in A too: its own mean then changes with the measurement. Returns (m,).
    """
    mean_A = np.asarray(mean_A, dtype=np.float64)
    cov_A_x = np.asarray(cov_A_x, dtype=np.float64)
    sd = np.sqrt(np.maximum(np.asarray(var_x, dtype=np.float64), 0.0) + float(noise))
    out = np.zeros(cov_A_x.shape[1])
    for j in range(cov_A_x.shape[1]):
        if sd[j] <= 0:
            continue
        out[j] = expected_max_of_affine(-mean_A, -cov_A_x[:, j] / sd[j])
    return out
