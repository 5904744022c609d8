"""Fully Bayesian Bayesian optimisation: acquisitions averaged over NUTS draws of GP hyperparameters.

ML-II BO (:mod:`bayeskit.bo.loop` with ``model="ml2"``) plugs one estimate theta_hat of the
kernel hyperparameters into the acquisition. *How Bayesian Should Bayesian Optimisation Be?*
(De Ath, Everson & Fieldsend) instead integrates them out: with S draws theta_s ~ p(theta | D)
the acquisition is the posterior expectation of the per-draw acquisition, estimated by its
Monte-Carlo average over the draws (the paper's marginalised acquisition; the same construction as
the "integrated acquisition function" of *Practical Bayesian Optimization of Machine Learning
Algorithms*, Snoek, Larochelle & Adams, section 3.2):

    alpha_FB(x) = E_{theta | D}[alpha(x | theta)]  ~  (1/S) sum_s alpha(x | theta_s).

For the acquisitions bayeskit offers, with per-draw posterior marginals (m_s(x), s_s(x)):

* EI:     (1/S) sum_s EI(m_s, s_s, best)
* log EI: log of that average, computed as log-mean-exp of the per-draw log EI (finite where
  every EI underflows; *Unexpected Improvements to Expected Improvement for Bayesian
  Optimization*, eq. (9), for log EI itself)
* PI:     (1/S) sum_s PI(m_s, s_s, best) (maximised as its log, by log-mean-exp of log PI)
* LCB:    (1/S) sum_s (m_s - sqrt(beta) s_s) (to be minimised); the paper's UCB mirrored for
  minimisation. Draws with short lengthscales carry large s_s far from the data and pull the
  average towards exploration: the paper's "UCB over-explores under full Bayes".
* Thompson sampling: draw theta_s at random, then a posterior sample path given theta_s.

The hyperparameter posterior is sampled by BlackJAX NUTS (through
:func:`bayeskit.gp.bayesian`'s chain runner, with Stan-style window adaptation) on
u = log theta, with the priors of :mod:`bayeskit.gp.bayesian` (log-normal by default). The data
are padded to :func:`bayeskit.bo.optimize.bucket_size` rows as in :mod:`bayeskit.bo.surrogate`
(a mask turns the padding into an identity block of the covariance, which leaves the marginal
likelihood's maximiser and gradient unchanged), so the sampler compiles once per bucket, not
once per BO step. Chains are warm-started at the last positions of the previous step.

Units: inputs in the unit cube, outputs standardised (the loop's scaling); every default prior
assumes that. Shapes: U (n, d), z (n,), candidates X (m, d); S draws; padded size N >= n.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp

from .. import _config  # noqa: F401  (float64)
from .._validation import as_prng_key
from ..gp.bayesian import FIXED, LogNormal, Prior, _run_chains
from ..gp.exact import Posterior, gaussian_log_likelihood_from_cov
from ..kernels import Matern52
from . import acquisitions as acq
from .surrogate import _padded_cov, pad_data

__all__ = [
    "FullyBayesianGP",
    "PaddedHyperPosterior",
    "fit_fully_bayesian",
    "condition_draws",
    "draw_marginals",
    "averaged_expected_improvement",
    "averaged_log_expected_improvement",
    "averaged_probability_of_improvement",
    "averaged_log_probability_of_improvement",
    "averaged_lower_confidence_bound",
    "DEFAULT_HYPER_PRIOR",
]

_STD_FLOOR = 1e-9  # as bayeskit.bo.loop: the acquisitions divide by the posterior std
_JITTER = 1e-10  # relative diagonal jitter inside the sampler (the noise-free nugget does the rest)

#: Priors on the hyperparameters of the BO surrogate (unit-cube inputs, standardised outputs).
#: Lengthscale: median 0.5 of the box, 95% between 0.07 and 3.5 box widths; signal variance:
#: median 1 (the outputs are standardised); noise variance (only when it is fitted): median 0.01.
DEFAULT_HYPER_PRIOR = {
    "lengthscale": LogNormal(math.log(0.5), 1.0),
    "variance": LogNormal(0.0, 1.0),
    "noise": LogNormal(math.log(1e-2), 1.5),
}


def _check_prior(prior):
    resolved = dict(DEFAULT_HYPER_PRIOR)
    if prior is None:
        return resolved
    if not isinstance(prior, Mapping):
        raise TypeError(f"prior must be a mapping {{'lengthscale'|'variance'|'noise': Prior}}; got {type(prior).__name__}")
    for key, value in prior.items():
        if key not in resolved:
            raise ValueError(f"prior has an entry {key!r}; the names are 'lengthscale', 'variance', 'noise'")
        if not isinstance(value, Prior) or value is FIXED:
            raise TypeError(f"prior[{key!r}] must be a bayeskit.gp.bayesian prior (LogNormal, Gamma, ...); got {value!r}")
        resolved[key] = value
    return resolved


@jax.tree_util.register_pytree_node_class
class PaddedHyperPosterior:
    """log p(u | D) of a Matern-5/2 GP's log-hyperparameters u on data padded to N rows.

    u = (log lengthscale (d), log variance, log noise) always has d + 2 entries, so ARD and
    isotropic kernels, with the noise sampled or held fixed, share one compiled sampler per N.
    Isotropic (``ard=False``): the lengthscale is exp(u_0) in every direction and u_1..u_{d-1}
    are unused auxiliary coordinates with a standard-normal density; fixed noise
    (``noise_fixed`` a number): the noise is that value and u_{d+1} is such an auxiliary
    coordinate. An auxiliary coordinate independent of the data and the other coordinates leaves
    the posterior of the used ones unchanged, and costs NUTS almost nothing. The likelihood is the
    padded marginal likelihood of :mod:`bayeskit.bo.surrogate` (equal to the unpadded one up to
    a constant); the prior is :data:`DEFAULT_HYPER_PRIOR` (or the one given) with the Jacobian
    of theta = exp(u).

    X: (N, d) padded inputs, y: (N,) padded targets, mask: (N,) 1 for data, 0 for padding.
    """

    def __init__(self, X, y, mask, *, ard: bool, noise_fixed, prior=None):
        self.X, self.y, self.mask = jnp.asarray(X), jnp.asarray(y), jnp.asarray(mask)
        self.ard = jnp.asarray(bool(ard))
        self.fit_noise = jnp.asarray(noise_fixed is None)
        self.noise_value = jnp.asarray(1.0 if noise_fixed is None else float(noise_fixed))
        self.priors = _check_prior(prior)

    @property
    def dim(self) -> int:
        return int(self.X.shape[1]) + 2

    # -- pytree ----------------------------------------------------------------------------
    def tree_flatten(self):
        return (self.X, self.y, self.mask, self.ard, self.fit_noise, self.noise_value), tuple(self.priors.items())

    @classmethod
    def tree_unflatten(cls, aux, children):
        self = object.__new__(cls)
        self.X, self.y, self.mask, self.ard, self.fit_noise, self.noise_value = children
        self.priors = dict(aux)
        return self

    # -- packing ---------------------------------------------------------------------------
    def unpack(self, u):
        """(Matern52 kernel with a (d,) lengthscale, noise variance) for u (d + 2,); jit/vmap-safe."""
        d = self.X.shape[1]
        lengthscale = jnp.exp(jnp.where(self.ard, u[:d], u[0]))
        kernel = Matern52(lengthscale=lengthscale, variance=jnp.exp(u[d]))
        noise = jnp.where(self.fit_noise, jnp.exp(u[d + 1]), self.noise_value)
        return kernel, noise

    def pack(self, lengthscale, variance, noise=1e-2) -> jax.Array:
        """u (d + 2,) from hyperparameter values (a scalar lengthscale is repeated)."""
        d = int(self.X.shape[1])
        ls = np.broadcast_to(np.asarray(lengthscale, dtype=np.float64), (d,))
        return jnp.asarray(np.concatenate([np.log(ls), [math.log(float(variance)), math.log(float(noise))]]))

    # -- density ---------------------------------------------------------------------------
    def log_prior(self, u):
        d = self.X.shape[1]
        aux = lambda v: -0.5 * v**2 - 0.5 * math.log(2 * math.pi)  # noqa: E731  (auxiliary coordinates)
        ls_prior = self.priors["lengthscale"].log_prob_log
        total = ls_prior(u[0]) + jnp.sum(jnp.where(self.ard, ls_prior(u[1:d]), aux(u[1:d])))
        total = total + self.priors["variance"].log_prob_log(u[d])
        return total + jnp.where(self.fit_noise, self.priors["noise"].log_prob_log(u[d + 1]), aux(u[d + 1]))

    def log_likelihood(self, u):
        kernel, noise = self.unpack(u)
        cov = _padded_cov(kernel, self.X, self.mask, noise, _JITTER)
        return gaussian_log_likelihood_from_cov(cov, self.y * self.mask)

    def log_density(self, u):
        """Unnormalised log p(u | D); -inf where the covariance cannot be factorised."""
        value = self.log_likelihood(u) + self.log_prior(u)
        return jnp.where(jnp.isfinite(value), value, -jnp.inf)

    __call__ = log_density


class FullyBayesianGP(NamedTuple):
    """S hyperparameter draws and the GP posterior given each, padded to N rows.

    posteriors : a :class:`bayeskit.gp.exact.Posterior` whose kernel leaves, L (S, N, N),
        alpha (S, N) and noise (S,) carry a leading draw axis; X (N, d) is shared.
    lengthscale : (S, d) (isotropic: equal columns); variance, noise : (S,).
    last_positions : (C, dim) last state of each chain (the next step's warm start).
    n_divergent : divergent NUTS transitions among the kept draws; acceptance : mean acceptance.
    """

    posteriors: Posterior
    lengthscale: jax.Array
    variance: jax.Array
    noise: jax.Array
    last_positions: jax.Array
    n_divergent: int
    acceptance: float

    @property
    def num_draws(self) -> int:
        return int(self.noise.shape[0])

    def draw(self, i: int) -> Posterior:
        """The posterior given draw i alone (an ordinary padded Posterior)."""
        return jax.tree_util.tree_map(lambda v: v[i], self.posteriors)._replace(X=self.posteriors.X)


@jax.jit
def _condition_draws(target, positions):
    """Cholesky factors (S, N, N) and weights (S, N) of the padded covariance for every draw."""

    def one(u):
        kernel, noise = target.unpack(u)
        # a little more jitter than inside the sampler: these factors serve the acquisitions
        L = jnp.linalg.cholesky(_padded_cov(kernel, target.X, target.mask, noise, 1e-9))
        alpha = jax.scipy.linalg.cho_solve((L, True), target.y * target.mask)
        return kernel, noise, L, alpha

    return jax.vmap(one)(positions)


def fit_fully_bayesian(U, z, *, size: int, ard: bool = True, noise=1e-6, key, init=None,
                       num_warmup: int = 150, num_samples: int = 64, num_chains: int = 2,
                       thin: int = 4, prior=None, target_acceptance_rate: float = 0.8) -> FullyBayesianGP:
    """NUTS over a Matern-5/2 GP's hyperparameters for unit-cube inputs U (n, d), targets z (n,).

    ``size`` >= n: the padded size (a bucket, so steps of a BO run reuse the compiled sampler).
    ``noise``: a fixed noise variance (standardised units), or None to sample it as well.
    ``init``: (num_chains, dim) warm-start positions in log space (e.g. ``last_positions`` of
    the previous fit); default: lengthscale 0.3, variance 1 (noise 0.01), plus N(0, 0.3^2)
    jitter per chain. Every chain runs ``num_warmup`` steps of BlackJAX window adaptation, then
    ``num_samples`` NUTS steps, of which every ``thin``-th is kept: S = num_chains *
    num_samples / thin draws. Returns :class:`FullyBayesianGP`.
    """
    U = np.asarray(U, dtype=np.float64)
    z = np.asarray(z, dtype=np.float64)
    n, d = U.shape
    if z.shape != (n,):
        raise ValueError(f"z must have shape ({n},); got {z.shape}")
    if size < n:
        raise ValueError(f"size must be >= n = {n}; got {size}")
    for name, value in (("num_warmup", num_warmup), ("num_samples", num_samples), ("num_chains", num_chains),
                        ("thin", thin)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be an int >= 1; got {value!r}")
    if num_samples % thin:
        raise ValueError(f"num_samples ({num_samples}) must be a multiple of thin ({thin})")
    X, y, mask = pad_data(U, z, size)
    target = PaddedHyperPosterior(X, y, mask, ard=ard, noise_fixed=noise, prior=prior)
    key = as_prng_key(key)
    init_key, chain_key = jax.random.split(key)
    if init is None:
        init = target.pack(0.3, 1.0, 1e-2) + 0.3 * jax.random.normal(init_key, (num_chains, target.dim))
    init = jnp.asarray(init, dtype=jnp.float64)
    if init.shape != (num_chains, target.dim):
        raise ValueError(f"init must have shape ({num_chains}, {target.dim}); got {init.shape}")
    # a chain start where the density is not finite (e.g. a tiny lengthscale after new data
    # made K singular) would stall the adaptation: fall back to the default start there
    ok = jax.vmap(target.log_density)(init)
    default = target.pack(0.3, 1.0, 1e-2)
    init = jnp.where(jnp.isfinite(ok)[:, None], init, default[None, :])
    positions, stats = _run_chains(target, jax.random.split(chain_key, num_chains), init,
                                   int(num_warmup), int(num_samples), float(target_acceptance_rate))
    last = positions[:, -1, :]
    kept = positions[:, thin - 1 :: thin, :].reshape(-1, target.dim)
    kernels, noise_draws, L, alpha = _condition_draws(target, kept)
    # a draw whose factor failed (NaN) is replaced by the first finite one: it must not turn the
    # averaged acquisition into NaN
    finite = np.asarray(jnp.all(jnp.isfinite(L), axis=(1, 2)) & jnp.all(jnp.isfinite(alpha), axis=1))
    if not finite.any():
        raise np.linalg.LinAlgError("no hyperparameter draw gave a factorisable covariance")
    if not finite.all():
        idx = np.where(finite, np.arange(finite.size), int(np.argmax(finite)))
        kernels, noise_draws, L, alpha = jax.tree_util.tree_map(lambda v: v[idx], (kernels, noise_draws, L, alpha))
    posts = Posterior(kernels, target.X, L, alpha, noise_draws)
    div = np.asarray(stats["diverging"])[:, thin - 1 :: thin]
    return FullyBayesianGP(posts, kernels.lengthscale, kernels.variance, noise_draws, last,
                           int(div.sum()), float(np.mean(np.asarray(stats["acceptance_rate"]))))


@jax.jit
def _recondition(kernels, noise, X, y, mask):
    def one(kernel, nz):
        L = jnp.linalg.cholesky(_padded_cov(kernel, X, mask, nz, 1e-9))
        return L, jax.scipy.linalg.cho_solve((L, True), y * mask)

    return jax.vmap(one)(kernels, noise)


def condition_draws(posteriors: Posterior, U, z, size: int) -> Posterior:
    """The S posteriors of ``posteriors`` (same hyperparameter draws) conditioned on new data.

    U (n, d) unit-cube inputs and z (n,) targets, padded to ``size`` rows; used by the
    kriging-believer batch, which adds a believed observation without refitting.
    """
    X, y, mask = pad_data(U, z, size)
    L, alpha = _recondition(posteriors.kernel, posteriors.noise, jnp.asarray(X), jnp.asarray(y), jnp.asarray(mask))
    return Posterior(posteriors.kernel, jnp.asarray(X), L, alpha, posteriors.noise)


# ---------------------------------------------------------------------------------------------
# Per-draw marginals and the averaged acquisitions (pure JAX; (S, m) in, (m,) out)
# ---------------------------------------------------------------------------------------------
def draw_marginals(posteriors: Posterior, X):
    """Posterior mean and std (S, m) of f at X (m, d) under each of the S hyperparameter draws.

    R&W, *Gaussian Processes for Machine Learning*, eqs. (2.25)-(2.26) per draw; the std is
    floored at 1e-9 (the acquisitions divide by it).
    """

    def one(kernel, L, alpha):
        Ks = kernel(posteriors.X, X)
        mean = Ks.T @ alpha
        V = jax.scipy.linalg.solve_triangular(L, Ks, lower=True)
        var = kernel.diag(X) - jnp.sum(V * V, axis=0)
        return mean, jnp.sqrt(jnp.maximum(var, _STD_FLOOR**2))

    return jax.vmap(one)(posteriors.kernel, posteriors.L, posteriors.alpha)


def averaged_expected_improvement(mean, std, best):
    """(1/S) sum_s EI(mean_s, std_s, best): mean, std (S, m); best scalar or (S, 1). Returns (m,)."""
    return jnp.mean(acq.expected_improvement(mean, std, best), axis=0)


def averaged_log_expected_improvement(mean, std, best):
    """log[(1/S) sum_s EI_s] = logsumexp_s(log EI_s) - log S, finite where EI underflows. (m,)."""
    log_ei = acq.log_expected_improvement(mean, std, best)
    return logsumexp(log_ei, axis=0) - math.log(log_ei.shape[0])


def averaged_probability_of_improvement(mean, std, best):
    """(1/S) sum_s PI(mean_s, std_s, best). (m,)."""
    return jnp.mean(acq.probability_of_improvement(mean, std, best), axis=0)


def averaged_log_probability_of_improvement(mean, std, best):
    """log of the averaged PI by log-mean-exp of the per-draw log PI. (m,)."""
    log_pi = acq.log_probability_of_improvement(mean, std, best)
    return logsumexp(log_pi, axis=0) - math.log(log_pi.shape[0])


def averaged_lower_confidence_bound(mean, std, beta=4.0):
    """(1/S) sum_s (mean_s - sqrt(beta) std_s): the averaged LCB, to be minimised. (m,)."""
    return jnp.mean(acq.lower_confidence_bound(mean, std, beta), axis=0)


# Utilities to maximise, as functions of (X (m, d), posteriors, ...): module level, so the
# compiled code is reused across BO steps (see bayeskit.bo.optimize.maximize_acquisition).
def _u_fb_ei(X, posteriors, best):
    m, s = draw_marginals(posteriors, X)
    return averaged_expected_improvement(m, s, best)


def _u_fb_log_ei(X, posteriors, best):
    m, s = draw_marginals(posteriors, X)
    return averaged_log_expected_improvement(m, s, best)


def _u_fb_log_pi(X, posteriors, best):
    m, s = draw_marginals(posteriors, X)
    return averaged_log_probability_of_improvement(m, s, best)


def _u_fb_lcb(X, posteriors, beta):
    m, s = draw_marginals(posteriors, X)
    return -averaged_lower_confidence_bound(m, s, beta)


def _check_divergences(fit: FullyBayesianGP):
    if fit.n_divergent > fit.num_draws // 4:
        warnings.warn(
            f"{fit.n_divergent} of {fit.num_draws} kept NUTS draws of the GP hyperparameters diverged; "
            "the averaged acquisition may be biased (more warmup or tighter priors help)",
            RuntimeWarning, stacklevel=3,
        )
