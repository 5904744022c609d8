"""Bayesian online changepoint detection (BOCPD), standard and robust (generalised Bayes).

Run-length recursion (Adams & MacKay, *Bayesian Online Changepoint Detection*, eqs. 1-3, in log
space). The data are split into segments with independent parameters; the run length r_t is the
number of observations before y_t in y_t's segment, so y_{t-r_t}, ..., y_t share parameters and
r_t = 0 means y_t opens a new segment (a changepoint at t). With a constant hazard H::

    p(r_t, y_1..t) = sum_{r_{t-1}} p(r_t | r_{t-1}) p(y_t | r_t, y_{t-r_t}..y_{t-1}) p(r_{t-1}, y_1..t-1)
    p(r_t = r_{t-1} + 1 | r_{t-1}) = 1 - H,   p(r_t = 0 | r_{t-1}) = H,   r_1 = 0.

(Adams & MacKay predict y_t with the run *before* the transition, so their p(r_t = 0 | y_1..t) is
always H under a constant hazard; here the run includes y_t, which makes p(r_t = 0 | y_1..t) the
filtered probability that y_t starts a new segment. Both define the same segmentation model.)
Everything is normalised at every step and kept as logarithms, with log p(y_t | y_1..t-1) the
normaliser, so nothing underflows. Run lengths are truncated to R_max: the top bin r = R_max - 1
holds all longer runs and predicts with the last R_max - 1 observations (a sliding window), so the
cost is O(T R_max); with R_max >= T the recursion is exact.

Segment models (``prior``):

* :class:`GaussianKnownVariance`: y ~ N(mu, noise_var), mu ~ N(prior_mean, prior_var); Gaussian
  predictive.
* :class:`NormalGamma`: unknown mean and precision, y ~ N(mu, 1/lam), mu | lam ~
  N(mu0, 1/(kappa0 lam)), lam ~ Gamma(alpha0, rate beta0); Student-t predictive with 2 alpha_n
  degrees of freedom, location mu_n, scale^2 = beta_n (kappa_n + 1) / (alpha_n kappa_n).
* :class:`DSMGaussian` (robust): Altamirano, Briol & Knoblauch, *Robust and Scalable Bayesian
  Online Changepoint Detection* (ICML 2023). The Bayes update of each run is replaced by the
  generalised-Bayes posterior pi(eta | y_1..n) ~ pi(eta) exp(-omega sum_i L(eta; y_i)) where L is
  the diffusion score-matching loss with weight m(y)::

      L(eta; y) = (m(y) d/dy log p(y | eta))^2 + 2 d/dy [m(y)^2 d/dy log p(y | eta)].

  For the Gaussian in natural parameters eta = (mu / sigma^2, 1 / sigma^2), d/dy log p = eta_1 -
  eta_2 y is linear in eta, so L is quadratic, L = eta^T A(y) eta + 2 eta^T v(y) with (the paper's
  Proposition on exponential families; A = grad_t^T m m^T grad_t, v = grad_t^T div(m m^T) + the
  trace of m m^T times the Hessian of the sufficient statistic)::

      A(y) = m^2 [[1, -y], [-y, y^2]],   v(y) = (2 m m',  -2 m m' y - m^2),

  and a Gaussian prior N(mu_0, Sigma_0) on eta stays Gaussian, truncated to eta_2 > 0:
  precision Sigma_n^{-1} = Sigma_0^{-1} + 2 omega sum A(y_i), and
  Sigma_n^{-1} mu_n = Sigma_0^{-1} mu_0 - 2 omega sum v(y_i), closed form "through simple algebra".
  omega > 0 is the learning rate (temperature) of the generalised posterior: small omega widens it;
  m(y) = (1 + ((y - weight_center) / weight_scale)^2)^{-1/2} is the paper's inverse-multiquadric
  weight (it uses centre 0, scale 1 on standardised data), which makes the influence of an outlier
  on the posterior bounded; weight_scale = inf gives m = 1, plain (non-robust) score matching.
  The predictive p(y | run) = E[N(y | eta_1 / eta_2, 1 / eta_2)] under that truncated Gaussian: the
  paper estimates it by sampling; we integrate eta_1 in closed form,
  E[N(y | ...) | eta_2] = eta_2 N(eta_2 y | a + b eta_2, s^2 + eta_2) with eta_1 | eta_2 ~
  N(a + b eta_2, s^2), and eta_2 by Gauss-Legendre quadrature (deterministic, no key). Because the
  posterior density does not vanish at eta_2 -> 0, the predictive has polynomial tails: a lone
  outlier is not astronomically improbable under a long run, so it does not force a changepoint.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import gammaln, logsumexp

from .. import _config  # noqa: F401  (float64)

__all__ = [
    "GaussianKnownVariance", "NormalGamma", "DSMGaussian", "BOCPDResult", "bocpd", "changepoint_locations",
    "dsm_posterior", "dsm_log_predictive",
]

_LOG_2PI = float(np.log(2.0 * np.pi))


class GaussianKnownVariance(NamedTuple):
    """y ~ N(mu, noise_var) within a segment; mu ~ N(prior_mean, prior_var) for each new segment."""

    prior_mean: float
    prior_var: float
    noise_var: float


class NormalGamma(NamedTuple):
    """Unknown mean and precision lam: mu | lam ~ N(mu0, 1 / (kappa0 lam)), lam ~ Gamma(alpha0, rate beta0)."""

    mu0: float
    kappa0: float
    alpha0: float
    beta0: float


class DSMGaussian(NamedTuple):
    """Robust Gaussian segments by diffusion score matching (see the module docstring).

    prior_mean: (2,) and prior_cov: (2, 2) of the Gaussian prior on eta = (mu / sigma^2,
    1 / sigma^2); omega > 0 the generalised-Bayes learning rate; weight_center, weight_scale
    of the weight m(y) = (1 + ((y - c) / s)^2)^{-1/2} (s = inf: m = 1).
    """

    prior_mean: jax.Array
    prior_cov: jax.Array
    omega: float
    weight_center: float = 0.0
    weight_scale: float = 1.0


class BOCPDResult(NamedTuple):
    """Filtered run-length posterior and what follows from it (T observations, R run lengths)."""

    log_run_length_posterior: jax.Array  # (T, R): log p(r_t = r | y_1..t); -inf for r >= t
    map_run_lengths: jax.Array  # (T,): argmax_r p(r_t = r | y_1..t)
    changepoint_probabilities: jax.Array  # (T,): p(r_t = 0 | y_1..t), y_t starts a new segment
    step_log_likelihoods: jax.Array  # (T,): log p(y_t | y_1..t-1)
    log_likelihood: jax.Array  # (): log p(y_1..T)


# --- segment models: "empty" statistics (the prior), add one observation, log predictive -------

def _empty(model):
    if isinstance(model, GaussianKnownVariance):
        return jnp.array([model.prior_mean, 1.0 / model.prior_var])  # posterior mean, precision
    if isinstance(model, NormalGamma):
        return jnp.array([model.mu0, model.kappa0, model.alpha0, model.beta0])
    P = jnp.linalg.inv(model.prior_cov)
    h = P @ model.prior_mean
    return jnp.array([P[0, 0], P[0, 1], P[1, 1], h[0], h[1]])  # precision (3 entries), P @ mean


def _dsm_terms(model: DSMGaussian, y):
    """A(y) as its 3 distinct entries and v(y) (2,) of the DSM loss eta^T A eta + 2 eta^T v."""
    u = (y - model.weight_center) / model.weight_scale
    m = (1.0 + u * u) ** -0.5
    dm = -(u / model.weight_scale) * (1.0 + u * u) ** -1.5  # m'(y)
    A = m * m * jnp.array([1.0, -y, y * y])
    v = jnp.array([2.0 * m * dm, -2.0 * m * dm * y - m * m])
    return A, v


def _add(model, stats, y):
    if isinstance(model, GaussianKnownVariance):
        mean, prec = stats
        new_prec = prec + 1.0 / model.noise_var
        return jnp.array([(mean * prec + y / model.noise_var) / new_prec, new_prec])
    if isinstance(model, NormalGamma):
        mu, kappa, alpha, beta = stats
        # sequential form of the Normal-Gamma update: no cancellation in sum(y^2) - n mean^2
        return jnp.array([(kappa * mu + y) / (kappa + 1.0), kappa + 1.0, alpha + 0.5,
                          beta + kappa * (y - mu) ** 2 / (2.0 * (kappa + 1.0))])
    A, v = _dsm_terms(model, y)
    return stats + 2.0 * model.omega * jnp.concatenate([A, -v])


def _gauss_legendre(n):
    x, w = np.polynomial.legendre.leggauss(n)
    return jnp.asarray(x), jnp.asarray(w)


_GL_NODES = _gauss_legendre(64)


def _dsm_log_predictive(stats, y):
    """log E[N(y | eta_1/eta_2, 1/eta_2)] under N(eta | mu, P^{-1}) truncated to eta_2 > 0."""
    P11, P12, P22, h1, h2 = stats
    det = P11 * P22 - P12 * P12
    mu1 = (P22 * h1 - P12 * h2) / det
    mu2 = (P11 * h2 - P12 * h1) / det
    var2 = P11 / det  # marginal variance of eta_2
    sd2 = jnp.sqrt(var2)
    # eta_1 | eta_2 ~ N(a + b eta_2, s2): conditional moments read off the precision matrix
    b = -P12 / P11
    a = mu1 - b * mu2
    s2 = 1.0 / P11
    x, w = _GL_NODES
    # bulk [lo, hi] holds the posterior mass; the tail [0, lo] (cubic map: nodes crowd towards 0)
    # is where an outlier's likelihood lives (small precision = wide Gaussians)
    scale = jnp.where(mu2 > 0, sd2, sd2 * jnp.minimum(1.0, sd2 / jnp.maximum(-mu2, 1e-300)))
    lo = jnp.where(mu2 > 0, jnp.maximum(0.0, mu2 - 8.0 * sd2), 0.0)
    hi = jnp.where(mu2 > 0, mu2 + 8.0 * sd2, 10.0 * scale)
    bulk = lo + (hi - lo) * 0.5 * (x + 1.0)
    log_w_bulk = jnp.log(w * 0.5 * (hi - lo))
    u = 0.5 * (x + 1.0)
    tail = lo * u**3
    log_w_tail = jnp.log(w * 0.5 * 3.0 * lo * u**2)
    eta2 = jnp.concatenate([bulk, tail])
    log_w = jnp.concatenate([log_w_bulk, log_w_tail])
    log_prior = -0.5 * (eta2 - mu2) ** 2 / var2  # unnormalised N(eta_2 | mu2, var2)
    var_y = s2 + eta2
    log_lik = jnp.log(eta2) - 0.5 * (_LOG_2PI + jnp.log(var_y)) - 0.5 * (eta2 * y - a - b * eta2) ** 2 / var_y
    return logsumexp(log_w + log_prior + log_lik) - logsumexp(log_w + log_prior)


def _log_predictive(model, stats, y):
    if isinstance(model, GaussianKnownVariance):
        mean, prec = stats
        var = 1.0 / prec + model.noise_var
        return -0.5 * (_LOG_2PI + jnp.log(var) + (y - mean) ** 2 / var)
    if isinstance(model, NormalGamma):
        mu, kappa, alpha, beta = stats
        df = 2.0 * alpha
        scale2 = beta * (kappa + 1.0) / (alpha * kappa)
        z2 = (y - mu) ** 2 / scale2
        return (gammaln(0.5 * (df + 1.0)) - gammaln(0.5 * df) - 0.5 * jnp.log(df * np.pi * scale2)
                - 0.5 * (df + 1.0) * jnp.log1p(z2 / df))
    return _dsm_log_predictive(stats, y)


# --- the recursion -------------------------------------------------------------------------------

@partial(jax.jit, static_argnames=("max_run_length",))
def _bocpd(model, ys, log_hazard, log_survival, max_run_length):
    R = max_run_length
    empty = _empty(model)
    stats0 = jnp.broadcast_to(empty, (R, empty.shape[0]))
    log_post0 = jnp.full(R, -jnp.inf).at[0].set(0.0)
    first = jnp.arange(ys.shape[0]) == 0

    def step(carry, inputs):
        stats_prev, log_post_prev = carry
        y, is_first = inputs
        # statistics of the r_t observations before y_t: run r_t = r_{t-1} + 1 inherits those of
        # r_{t-1}; r_t = 0 starts from the prior; the top bin keeps a window of R - 1 observations
        stats = jnp.concatenate([empty[None], stats_prev[:-1]], axis=0)
        growth = jnp.concatenate([jnp.array([-jnp.inf]), log_post_prev[:-1]])
        growth = growth.at[-1].set(jnp.logaddexp(growth[-1], log_post_prev[-1]) if R > 1 else -jnp.inf)
        log_prior = jnp.where(
            is_first,
            jnp.full(R, -jnp.inf).at[0].set(0.0),
            jnp.concatenate([jnp.array([log_hazard]), log_survival + growth[1:]]),  # log_post_prev sums to 1
        )
        log_pred = jax.vmap(_log_predictive, in_axes=(None, 0, None))(model, stats, y)
        log_joint = log_prior + jnp.where(jnp.isneginf(log_prior), 0.0, log_pred)
        log_evidence = logsumexp(log_joint)
        log_post = log_joint - log_evidence
        new_stats = jax.vmap(_add, in_axes=(None, 0, None))(model, stats, y)
        return (new_stats, log_post), (log_post, log_evidence)

    _, (log_posts, lls) = jax.lax.scan(step, (stats0, log_post0), (ys, first))
    return BOCPDResult(log_posts, jnp.argmax(log_posts, axis=1), jnp.exp(log_posts[:, 0]), lls, jnp.sum(lls))


def _check_prior(prior):
    def positive(name, value):
        v = float(value)
        if not np.isfinite(v) or v <= 0:
            raise ValueError(f"prior.{name} must be finite and > 0; got {value}")
        return v

    if isinstance(prior, GaussianKnownVariance):
        if not np.isfinite(float(prior.prior_mean)):
            raise ValueError("prior.prior_mean must be finite")
        return GaussianKnownVariance(float(prior.prior_mean), positive("prior_var", prior.prior_var),
                                     positive("noise_var", prior.noise_var))
    if isinstance(prior, NormalGamma):
        if not np.isfinite(float(prior.mu0)):
            raise ValueError("prior.mu0 must be finite")
        return NormalGamma(float(prior.mu0), positive("kappa0", prior.kappa0), positive("alpha0", prior.alpha0),
                           positive("beta0", prior.beta0))
    if isinstance(prior, DSMGaussian):
        mean = np.asarray(prior.prior_mean, dtype=np.float64)
        cov = np.asarray(prior.prior_cov, dtype=np.float64)
        if mean.shape != (2,) or not np.all(np.isfinite(mean)):
            raise ValueError(f"prior.prior_mean must be a finite (2,) vector over (mu/sigma^2, 1/sigma^2); got {mean.shape}")
        if cov.shape != (2, 2) or not np.all(np.isfinite(cov)) or not np.allclose(cov, cov.T) \
                or np.linalg.eigvalsh(cov).min() <= 0:
            raise ValueError("prior.prior_cov must be a symmetric positive-definite (2, 2) matrix")
        scale = float(prior.weight_scale)
        if not scale > 0:
            raise ValueError(f"prior.weight_scale must be > 0 (inf for m = 1); got {prior.weight_scale}")
        if not np.isfinite(float(prior.weight_center)):
            raise ValueError("prior.weight_center must be finite")
        return DSMGaussian(jnp.asarray(mean), jnp.asarray(cov), positive("omega", prior.omega),
                           float(prior.weight_center), scale)
    raise TypeError(f"prior must be GaussianKnownVariance, NormalGamma or DSMGaussian; got {type(prior).__name__}")


def bocpd(ys, hazard: float, prior, *, max_run_length: int | None = None) -> BOCPDResult:
    """Run-length posterior of Bayesian online changepoint detection (module docstring).

    ys: (T,) a univariate series (finite values). hazard: the constant changepoint probability
    H in (0, 1) per step (expected segment length 1/H). prior: a :class:`GaussianKnownVariance`,
    :class:`NormalGamma` or (robust) :class:`DSMGaussian`. max_run_length: R_max, the number of
    run lengths kept (default T: exact). Returns :class:`BOCPDResult` with the (T, R_max)
    log run-length posterior, MAP run lengths, changepoint probabilities and log p(y).
    """
    ys = np.asarray(ys, dtype=np.float64)
    if ys.ndim != 1 or ys.shape[0] == 0:
        raise ValueError(f"ys must be a non-empty 1-D series (T,); got shape {ys.shape}")
    if not np.all(np.isfinite(ys)):
        raise ValueError(f"ys contains {int(np.sum(~np.isfinite(ys)))} NaN or infinite value(s)")
    try:
        H = float(hazard)
    except (TypeError, ValueError):
        raise TypeError(f"hazard must be a number in (0, 1); got {hazard!r}") from None
    if not 0.0 < H < 1.0:
        raise ValueError(f"hazard must be in (0, 1) (1 / expected segment length); got {hazard}")
    R = ys.shape[0] if max_run_length is None else max_run_length
    if not isinstance(R, (int, np.integer)) or R < 1:
        raise ValueError(f"max_run_length must be an integer >= 1; got {max_run_length!r}")
    prior = _check_prior(prior)
    return _bocpd(prior, jnp.asarray(ys), float(np.log(H)), float(np.log1p(-H)), int(R))


def changepoint_locations(map_run_lengths, min_duration: int = 5) -> np.ndarray:
    """Changepoints read off the MAP run lengths: the segment start s_t = t - r_t is reported when
    it stays the MAP start for at least ``min_duration`` consecutive steps (0 excluded: the series
    start). A brief excursion of the MAP run length, e.g. at an outlier, is thereby not reported.
    """
    r = np.asarray(map_run_lengths)
    if r.ndim != 1:
        raise ValueError(f"map_run_lengths must be 1-D (T,); got shape {r.shape}")
    if int(min_duration) < 1:
        raise ValueError(f"min_duration must be >= 1; got {min_duration}")
    starts = np.arange(r.shape[0]) - r
    found, t = [], 0
    while t < len(starts):
        u = t
        while u < len(starts) and starts[u] == starts[t]:
            u += 1
        if u - t >= min_duration and starts[t] > 0 and starts[t] not in found:
            found.append(int(starts[t]))
        t = u
    return np.array(sorted(found), dtype=int)


@jax.jit
def _dsm_stats(prior, ys):
    stats, _ = jax.lax.scan(lambda s, y: (_add(prior, s, y), None), _empty(prior), ys)
    return stats


_dsm_log_predictive_many = jax.jit(jax.vmap(_dsm_log_predictive, in_axes=(None, 0)))


def dsm_posterior(prior: DSMGaussian, ys) -> tuple[jax.Array, jax.Array]:
    """Mean (2,) and covariance (2, 2) of the (untruncated) DSM generalised posterior over eta =
    (mu / sigma^2, 1 / sigma^2) after the observations ys (n,), in closed form (module docstring)."""
    prior = _check_prior(prior)
    stats = _dsm_stats(prior, jnp.asarray(np.asarray(ys, dtype=np.float64).reshape(-1)))
    P = jnp.array([[stats[0], stats[1]], [stats[1], stats[2]]])
    cov = jnp.linalg.inv(P)
    return cov @ stats[3:], cov


def dsm_log_predictive(prior: DSMGaussian, ys, y_new) -> jax.Array:
    """log p(y_new | ys) under the DSM generalised posterior (quadrature over eta_2; see module)."""
    prior = _check_prior(prior)
    stats = _dsm_stats(prior, jnp.asarray(np.asarray(ys, dtype=np.float64).reshape(-1)))
    return _dsm_log_predictive_many(stats, jnp.atleast_1d(jnp.asarray(y_new, dtype=jnp.float64)))
