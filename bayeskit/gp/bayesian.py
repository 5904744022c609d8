"""Fully Bayesian GP regression: priors on hyperparameters, NUTS over them, averaged predictions.

ML-II (:func:`bayeskit.gp.exact.fit_ml2`) plugs one point estimate of the kernel hyperparameters
and the noise into the predictive. With few data the marginal likelihood is flat in some
directions (lengthscale against amplitude, signal against noise) and a point estimate hides that
uncertainty. The fully Bayesian treatment, as studied in *Approximate Inference for Fully
Bayesian Gaussian Process Regression* (Lalchand & Rasmussen), puts a prior p(theta) on the
positive hyperparameters theta = (kernel leaves, noise), samples

    p(theta | y)  propto  N(y | 0, K_theta + noise I) p(theta)                        (paper, eq. 3)

and averages the GP predictive over the draws (paper, eq. 4)::

    p(f* | y) = integral p(f* | y, theta) p(theta | y) dtheta
              ~ (1 / S) sum_s N(f* | m_s(x*), v_s(x*)),   theta_s ~ p(theta | y).

The sampler works on u = log theta (unconstrained), so the density it sees includes the
log-Jacobian of theta = exp(u)::

    log p(u | y) = log N(y | 0, K_theta + noise I) + sum_i [log p_i(exp(u_i)) + u_i] + const.

The likelihood term reuses :func:`bayeskit.gp.exact.gaussian_log_likelihood_from_cov`, whose
gradient is the analytic R&W eq. 5.9 (one Cholesky inverse serves every hyperparameter).
Sampling is BlackJAX's NUTS with Stan-style window adaptation; the draws come back as an ArviZ
``DataTree`` plus the kernel of every draw, ready for :func:`predict_averaged`.

Shapes: X (n, d), y (n,), test inputs Xs (m, d); S = num_chains * num_samples draws.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Mapping
from functools import partial
from typing import NamedTuple

import blackjax
import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import gammaln

from .. import _config  # noqa: F401  (float64)
from .._validation import as_inputs, as_prng_key, as_targets, positive_scalar
from ..kernels import Kernel
from ..linalg import DEFAULT_JITTER_LADDER, JitterWarning
from .exact import _check_kernel_dims, _prepare, _train_cov, gaussian_log_likelihood_from_cov

__all__ = [
    "LogNormal",
    "Gamma",
    "InverseGamma",
    "HalfNormal",
    "FIXED",
    "default_prior",
    "HyperPosterior",
    "HyperparameterDraws",
    "sample_hyperparameters",
    "predict_averaged",
    "predictive_interval",
]

_LOG_2PI = math.log(2.0 * math.pi)


# ---------------------------------------------------------------------------------------------
# Priors on one positive hyperparameter
# ---------------------------------------------------------------------------------------------
def _check_positive(owner, **params):
    for name, value in params.items():
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise TypeError(f"{owner}.{name} must be a number; got {value!r}") from None
        if not math.isfinite(v) or v <= 0:
            raise ValueError(f"{owner}.{name} must be finite and > 0; got {value!r}")


class Prior:
    """A prior on a positive hyperparameter p. Subclasses give ``log_prob(p)``.

    ``log_prob_log(u)`` is the density of u = log p that the sampler needs:
    ``log_prob(exp(u)) + u`` (the ``+ u`` is the log-Jacobian of p = exp(u)).
    """

    def log_prob(self, p):  # pragma: no cover - abstract
        raise NotImplementedError

    def log_prob_log(self, u):
        return self.log_prob(jnp.exp(u)) + u

    def sample(self, key, shape=()):  # pragma: no cover - abstract
        raise NotImplementedError


@dataclasses.dataclass(frozen=True)
class LogNormal(Prior):
    """log p ~ Normal(loc, scale): median exp(loc), a factor exp(2 scale) either side covers 95%."""

    loc: float = 0.0
    scale: float = 1.0

    def __post_init__(self):
        if not math.isfinite(float(self.loc)):
            raise ValueError(f"LogNormal.loc must be finite; got {self.loc!r}")
        _check_positive("LogNormal", scale=self.scale)

    def log_prob(self, p):
        return self.log_prob_log(jnp.log(p)) - jnp.log(p)

    def log_prob_log(self, u):
        # the density of u = log p is exactly the normal one; no Jacobian to add
        z = (u - self.loc) / self.scale
        return -0.5 * z**2 - jnp.log(self.scale) - 0.5 * _LOG_2PI

    def sample(self, key, shape=()):
        return jnp.exp(self.loc + self.scale * jax.random.normal(key, shape))


@dataclasses.dataclass(frozen=True)
class Gamma(Prior):
    """Gamma(concentration a, rate b): density b^a p^(a-1) exp(-b p) / Gamma(a); mean a / b."""

    concentration: float = 2.0
    rate: float = 1.0

    def __post_init__(self):
        _check_positive("Gamma", concentration=self.concentration, rate=self.rate)

    def log_prob(self, p):
        a, b = self.concentration, self.rate
        return a * jnp.log(b) - gammaln(a) + (a - 1.0) * jnp.log(p) - b * p

    def log_prob_log(self, u):
        a, b = self.concentration, self.rate
        return a * jnp.log(b) - gammaln(a) + a * u - b * jnp.exp(u)

    def sample(self, key, shape=()):
        return jax.random.gamma(key, self.concentration, shape) / self.rate


@dataclasses.dataclass(frozen=True)
class InverseGamma(Prior):
    """InverseGamma(concentration a, scale b): 1/p ~ Gamma(a, rate b); mean b / (a - 1) for a > 1.

    Its light left tail keeps lengthscales away from zero, and it is conjugate for a kernel
    amplitude: with K = s K0 (no separate noise), s | y ~ InverseGamma(a + n/2, b + y^T K0^-1 y / 2).
    """

    concentration: float = 2.0
    scale: float = 1.0

    def __post_init__(self):
        _check_positive("InverseGamma", concentration=self.concentration, scale=self.scale)

    def log_prob(self, p):
        a, b = self.concentration, self.scale
        return a * jnp.log(b) - gammaln(a) - (a + 1.0) * jnp.log(p) - b / p

    def log_prob_log(self, u):
        a, b = self.concentration, self.scale
        return a * jnp.log(b) - gammaln(a) - a * u - b * jnp.exp(-u)

    def sample(self, key, shape=()):
        return self.scale / jax.random.gamma(key, self.concentration, shape)


@dataclasses.dataclass(frozen=True)
class HalfNormal(Prior):
    """|Normal(0, scale^2)|: density sqrt(2 / pi) / scale * exp(-p^2 / (2 scale^2)) for p > 0."""

    scale: float = 1.0

    def __post_init__(self):
        _check_positive("HalfNormal", scale=self.scale)

    def log_prob(self, p):
        return 0.5 * math.log(2.0 / math.pi) - jnp.log(self.scale) - 0.5 * (p / self.scale) ** 2

    def sample(self, key, shape=()):
        return self.scale * jnp.abs(jax.random.normal(key, shape))


class _Fixed:
    """Marker: hold this hyperparameter at its starting value (not sampled)."""

    def __repr__(self):
        return "FIXED"


#: Use as a prior entry to hold a hyperparameter at the value it has in the kernel (or ``noise``).
FIXED = _Fixed()

#: Default priors by hyperparameter name (the last part of a dotted name such as k1.lengthscale).
#: They assume inputs and targets of order one (standardise X and y first, or pass your own).
_DEFAULTS = {
    "lengthscale": LogNormal(0.0, 1.0),  # 95% between 0.14 and 7.4 input units
    "variance": LogNormal(0.0, 1.0),  # signal variance 0.14 to 7.4 (sd 0.37 to 2.7)
    "period": LogNormal(0.0, 1.0),
    "alpha": LogNormal(0.0, 1.0),
    "bias": LogNormal(0.0, 1.0),
    "noise": LogNormal(-3.0, 1.5),  # median noise variance 0.05 (sd 0.22); 0.003 to 0.9
}


def default_prior(kernel: Kernel) -> dict[str, Prior]:
    """The default prior of every hyperparameter of ``kernel`` and of ``noise``, by full name.

    Every hyperparameter gets an independent log-normal prior chosen for inputs and targets of
    order one: lengthscale, variance, period, alpha, bias ~ LogNormal(0, 1) and the noise
    variance ~ LogNormal(-3, 1.5). An ARD lengthscale gets the prior for each of its entries.
    """
    if not isinstance(kernel, Kernel):
        raise TypeError(f"kernel must be a bayeskit.kernels.Kernel; got {type(kernel).__name__}")
    out = {}
    for name in kernel.hyperparameters:
        out[name] = _DEFAULTS.get(name.split(".")[-1], LogNormal(0.0, 1.0))
    out["noise"] = _DEFAULTS["noise"]
    return out


def _resolve_prior(kernel: Kernel, prior) -> dict[str, object]:
    """Merge the user's prior entries (full names or last-part names) over the defaults."""
    resolved = default_prior(kernel)
    if prior is None:
        return resolved
    if not isinstance(prior, Mapping):
        raise TypeError(
            "prior must be a mapping {hyperparameter name: Prior or FIXED}; "
            f"got {type(prior).__name__}"
        )
    names = list(resolved)
    for key, value in prior.items():
        if not (isinstance(value, Prior) or value is FIXED):
            raise TypeError(
                f"prior[{key!r}] must be a bayeskit.gp.bayesian prior (LogNormal, Gamma, "
                f"InverseGamma, HalfNormal) or FIXED; got {value!r}"
            )
        if key not in names and not any(n.split(".")[-1] == key for n in names):
            raise ValueError(
                f"prior has an entry {key!r} that is not a hyperparameter of the kernel or "
                f"'noise'; the names are {names}"
            )
    # short names ("lengthscale") first, so a full name ("k1.lengthscale") wins where both apply
    for key, value in prior.items():
        if key not in names:
            resolved.update({n: value for n in names if n.split(".")[-1] == key})
    resolved.update({key: value for key, value in prior.items() if key in names})
    return resolved


# ---------------------------------------------------------------------------------------------
# Jitter inside jit: a while_loop over the ladder picks the smallest jitter that factorises
# ---------------------------------------------------------------------------------------------
_LADDER = jnp.asarray(DEFAULT_JITTER_LADDER)


def _jitter_index(kernel, X, noise):
    """Index into the jitter ladder of the smallest jitter for which K + noise I factorises.

    Runs inside jit (a failed Cholesky is NaN there, not an error); the result carries no
    gradient. Returns len(ladder) - 1 when even the largest fails (the density is then -inf).
    """
    kernel, noise = jax.lax.stop_gradient((kernel, noise))

    def fails(i):
        L = jnp.linalg.cholesky(_train_cov(kernel, X, noise, _LADDER[i]))
        return ~jnp.all(jnp.isfinite(L))

    return jax.lax.while_loop(lambda i: (i < _LADDER.shape[0] - 1) & fails(i), lambda i: i + 1, 0)


def _log_likelihood(kernel, X, y, noise):
    """log N(y | 0, K + noise I) with the smallest working jitter (R&W eq. 2.30)."""
    jitter = _LADDER[_jitter_index(kernel, X, noise)]
    # the analytic gradient of bayeskit.gp.exact (R&W eq. 5.9); its K^{-1} avoids the LAPACK
    # host callback for the small matrices NUTS sees ~10^4 times
    return gaussian_log_likelihood_from_cov(_train_cov(kernel, X, noise, jitter), y)


# ---------------------------------------------------------------------------------------------
# The log posterior over u = log theta
# ---------------------------------------------------------------------------------------------
@jax.tree_util.register_pytree_node_class
class HyperPosterior:
    """The posterior over log-hyperparameters of a GP regression model, as a pure JAX density.

    Parameters
    ----------
    kernel : Kernel
        The kernel; its values are the starting point and the values of ``FIXED`` entries.
    X : (n, d) or (n,) inputs; y : (n,) targets.
    noise : float
        Observation-noise variance: the starting value (or the held value if FIXED).
    prior : mapping, optional
        ``{name: Prior or FIXED}`` over :func:`default_prior`. Names are the kernel's
        ``hyperparameters`` keys (``"lengthscale"``, ``"k1.variance"``, ...) or their last part
        (applies to every match), plus ``"noise"``.

    Attributes: ``names`` (free hyperparameter names), ``sizes`` (entries of each; an ARD
    lengthscale has d), ``dim`` (length of u), ``priors`` (the resolved mapping).

    ``log_density(u)`` (``u``: (dim,)) is log p(y | theta) + log p(theta) + sum(u), up to the
    evidence; it is a pure function that ``jax.jit``, ``jax.grad`` and ``jax.vmap`` accept.
    The object is itself a pytree (data as leaves, structure and priors as static metadata), so
    jitted functions taking it compile once per structure and data shape, not once per data set.
    """

    def __init__(self, kernel: Kernel, X, y, noise, prior: Mapping | None = None):
        X, y = _prepare(kernel, X, y, single_output_for="fully Bayesian regression")
        self.priors = _resolve_prior(kernel, prior)
        noise_fixed = self.priors["noise"] is FIXED
        self.noise_init = positive_scalar(noise, "noise", allow_zero=noise_fixed)
        self.X, self.y = jnp.asarray(X), jnp.asarray(y)
        leaves, self._treedef = jax.tree_util.tree_flatten(kernel)
        all_names = list(kernel.hyperparameters)
        if len(all_names) != len(leaves):  # pragma: no cover - guards a kernels.py change
            raise RuntimeError("kernel hyperparameters and pytree leaves disagree")
        self._leaf_names = all_names
        self._leaf_values = [jnp.asarray(v, dtype=jnp.float64) for v in leaves]
        self.names = [n for n in all_names if self.priors[n] is not FIXED]
        if not noise_fixed:
            self.names.append("noise")
        self.shapes = {n: tuple(np.shape(v)) for n, v in zip(all_names, leaves)}
        self.shapes["noise"] = ()
        self.sizes = [int(np.prod(self.shapes[n], dtype=int)) for n in self.names]
        self.dim = int(sum(self.sizes))
        if self.dim == 0:
            raise ValueError("prior holds every hyperparameter FIXED: nothing to sample")
        self.noise_init = jnp.asarray(self.noise_init, dtype=jnp.float64)

    # -- pytree ----------------------------------------------------------------------------
    _STATIC = ("_treedef", "_leaf_names", "names", "sizes", "dim")

    def tree_flatten(self):
        children = (self.X, self.y, tuple(self._leaf_values), self.noise_init)
        static = tuple(getattr(self, a) if not isinstance(getattr(self, a), list) else tuple(getattr(self, a))
                       for a in self._STATIC)
        return children, (static, tuple(self.priors.items()), tuple(self.shapes.items()))

    @classmethod
    def tree_unflatten(cls, aux, children):
        static, priors, shapes = aux
        self = object.__new__(cls)
        for a, v in zip(cls._STATIC, static):
            setattr(self, a, list(v) if isinstance(v, tuple) and a in ("_leaf_names", "names", "sizes") else v)
        self.priors, self.shapes = dict(priors), dict(shapes)
        self.X, self.y, leaf_values, self.noise_init = children
        self._leaf_values = list(leaf_values)
        return self

    @property
    def kernel(self) -> Kernel:
        """The starting kernel (its values are also those of FIXED entries)."""
        return jax.tree_util.tree_unflatten(self._treedef, self._leaf_values)

    # -- packing ---------------------------------------------------------------------------
    def unpack(self, u):
        """(kernel, noise) for a log-parameter vector u (dim,); works under jit and vmap."""
        values, i = {}, 0
        for name, size in zip(self.names, self.sizes):
            values[name] = jnp.exp(u[i : i + size]).reshape(self.shapes[name])
            i += size
        leaves = [values.get(n, v) for n, v in zip(self._leaf_names, self._leaf_values)]
        kernel = jax.tree_util.tree_unflatten(self._treedef, leaves)
        noise = values.get("noise", self.noise_init)
        return kernel, noise

    def pack(self, kernel: Kernel, noise) -> jax.Array:
        """The log-parameter vector u (dim,) of the free hyperparameters of (kernel, noise)."""
        hp = dict(kernel.hyperparameters)
        hp["noise"] = noise
        return jnp.concatenate([jnp.log(jnp.ravel(jnp.asarray(hp[n], dtype=jnp.float64))) for n in self.names])

    def initial_position(self) -> jax.Array:
        """u (dim,) of the kernel and noise this posterior was built with."""
        return self.pack(self.kernel, self.noise_init)

    # -- densities -------------------------------------------------------------------------
    def log_prior(self, u):
        """sum_i log p_i(exp(u_i)) + u_i: the prior density of u (Jacobian included)."""
        total, i = 0.0, 0
        for name, size in zip(self.names, self.sizes):
            total = total + jnp.sum(self.priors[name].log_prob_log(u[i : i + size]))
            i += size
        return total

    def log_likelihood(self, u):
        """log p(y | theta = exp(u)): the GP log marginal likelihood (R&W eq. 2.30)."""
        kernel, noise = self.unpack(u)
        return _log_likelihood(kernel, self.X, self.y, noise)

    def log_density(self, u):
        """Unnormalised log p(u | y); -inf where K + noise I cannot be factorised."""
        value = self.log_likelihood(u) + self.log_prior(u)
        return jnp.where(jnp.isfinite(value), value, -jnp.inf)

    __call__ = log_density


# ---------------------------------------------------------------------------------------------
# Draws of hyperparameters and the kernels they define
# ---------------------------------------------------------------------------------------------
class HyperparameterDraws(NamedTuple):
    """Posterior draws of GP hyperparameters.

    idata : arviz DataTree with groups ``posterior`` (one variable per hyperparameter, dims
        (chain, draw[, <name>_dim_0])), ``sample_stats`` (``diverging``, ``acceptance_rate``,
        ``n_steps``, ``lp``, ``step_size``) and ``observed_data`` (``y``).
    kernels : one Kernel pytree whose leaves carry a leading axis of S = chains x draws.
    noise : (S,) noise variances.
    """

    idata: object
    kernels: Kernel
    noise: jax.Array

    @property
    def num_draws(self) -> int:
        return int(self.noise.shape[0])

    @classmethod
    def from_arrays(cls, kernel: Kernel, values: Mapping[str, object], noise) -> HyperparameterDraws:
        """Draws from any sampler (PyMC, a VI fit): ``values`` {hyperparameter name: (S,) or
        (S, d)}; names missing from ``values`` keep ``kernel``'s value; ``noise``: (S,) or a
        scalar. ``idata`` is built from the same arrays with a single chain.
        """
        noise = jnp.atleast_1d(jnp.asarray(noise, dtype=jnp.float64))
        lengths = {int(np.shape(v)[0]) for v in values.values()} | ({noise.shape[0]} if noise.shape[0] > 1 else set())
        if len(lengths) != 1:
            raise ValueError(f"every array in values (and noise) must have the same number of draws; got {lengths}")
        S = lengths.pop()
        names = list(kernel.hyperparameters)
        unknown = set(values) - set(names)
        if unknown:
            raise ValueError(f"values has names {sorted(unknown)} that are not hyperparameters of the kernel {names}")
        leaves, treedef = jax.tree_util.tree_flatten(kernel)
        batched = []
        for name, leaf in zip(names, leaves):
            if name in values:
                v = jnp.asarray(values[name], dtype=jnp.float64)
                if v.shape[1:] != np.shape(leaf):
                    raise ValueError(f"values[{name!r}] must have shape (S,) + {np.shape(leaf)}; got {v.shape}")
                if not bool(jnp.all(jnp.isfinite(v) & (v > 0))):
                    raise ValueError(f"values[{name!r}] must be finite and > 0")
            else:
                v = jnp.broadcast_to(jnp.asarray(leaf, dtype=jnp.float64), (S,) + np.shape(leaf))
            batched.append(v)
        noise = jnp.broadcast_to(noise, (S,))
        if not bool(jnp.all(jnp.isfinite(noise) & (noise >= 0))):
            raise ValueError("noise must be finite and >= 0")
        posterior = {n: np.asarray(v)[None] for n, v in zip(names, batched)}
        posterior["noise"] = np.asarray(noise)[None]
        import arviz as az  # lazily: it imports its plotting stack (matplotlib)

        idata = az.from_dict({"posterior": posterior})
        return cls(idata, jax.tree_util.tree_unflatten(treedef, batched), noise)


def _positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1; got {value!r}")
    return int(value)


def sample_hyperparameters(
    kernel: Kernel,
    X,
    y,
    noise,
    *,
    key,
    num_warmup: int = 500,
    num_samples: int = 500,
    num_chains: int = 4,
    prior: Mapping | None = None,
    init_spread: float = 0.5,
    target_acceptance_rate: float = 0.8,
) -> HyperparameterDraws:
    """Sample p(theta | y) of a GP's hyperparameters with NUTS (BlackJAX, window adaptation).

    Each chain starts at log(kernel values, noise) plus ``init_spread`` x standard-normal noise
    (over-dispersed starts make R-hat meaningful), adapts its step size and diagonal mass matrix
    for ``num_warmup`` steps (Stan's windowed scheme, BlackJAX ``window_adaptation``), then
    draws ``num_samples``. Chains run in parallel under ``jax.vmap``.

    X: (n, d) or (n,); y: (n,); noise: starting noise variance. ``prior``: see
    :class:`HyperPosterior` (``FIXED`` entries are held at their starting values).
    ``key``: a ``jax.random.key`` (or int seed), required.

    Returns :class:`HyperparameterDraws` (ArviZ DataTree + kernels per draw). Warns when
    transitions diverged (the posterior has regions the step size cannot follow; look at
    ``idata.sample_stats.diverging``).
    """
    key = as_prng_key(key)
    num_warmup = _positive_int(num_warmup, "num_warmup")
    num_samples = _positive_int(num_samples, "num_samples")
    num_chains = _positive_int(num_chains, "num_chains")
    init_spread = float(init_spread)
    if not (math.isfinite(init_spread) and init_spread >= 0):
        raise ValueError(f"init_spread must be finite and >= 0; got {init_spread}")
    if not 0.0 < float(target_acceptance_rate) < 1.0:
        raise ValueError(f"target_acceptance_rate must be in (0, 1); got {target_acceptance_rate}")
    post = HyperPosterior(kernel, X, y, noise, prior)
    u0 = post.initial_position()
    if not bool(jnp.isfinite(post.log_density(u0))):
        raise ValueError(
            "the log posterior is not finite at the starting kernel and noise; check that the "
            "starting values lie inside the support of their priors"
        )
    init_key, chain_key = jax.random.split(key)
    starts = u0 + init_spread * jax.random.normal(init_key, (num_chains, post.dim), dtype=u0.dtype)
    positions, stats = _run_chains(
        post, jax.random.split(chain_key, num_chains), starts,
        num_warmup, num_samples, float(target_acceptance_rate),
    )
    return _to_draws(post, positions, stats, num_warmup)


@partial(jax.jit, static_argnames=("num_warmup", "num_samples", "target"))
def _run_chains(post, keys, starts, num_warmup, num_samples, target):
    """Window adaptation then NUTS for each chain (vmapped): positions (C, D, dim) and stats."""

    def one_chain(key, start):
        warm_key, sample_key = jax.random.split(key)
        adaptation = blackjax.window_adaptation(
            blackjax.nuts, post.log_density, target_acceptance_rate=target,
            adaptation_info_fn=blackjax.adaptation.base.get_filter_adapt_info_fn(),
        )
        (state, params), _ = adaptation.run(warm_key, start, num_steps=num_warmup)
        step = blackjax.nuts(post.log_density, **params).step

        def body(state, k):
            state, info = step(k, state)
            return state, (state.position, state.logdensity, info.is_divergent,
                           info.acceptance_rate, info.num_integration_steps)

        _, (pos, lp, div, acc, nsteps) = jax.lax.scan(body, state, jax.random.split(sample_key, num_samples))
        step_size = jnp.full((num_samples,), params["step_size"])
        return pos, dict(lp=lp, diverging=div, acceptance_rate=acc, n_steps=nsteps, step_size=step_size)

    return jax.vmap(one_chain)(keys, starts)


@jax.jit
def _jitter_indices(post, positions):
    """Jitter-ladder index needed at each of the (S, dim) positions (0: no jitter)."""

    def one(u):
        kernel, noise = post.unpack(u)
        return _jitter_index(kernel, post.X, noise)

    return jax.vmap(one)(positions)


def _to_draws(post: HyperPosterior, positions, stats, num_warmup) -> HyperparameterDraws:
    C, D, _ = positions.shape
    flat = positions.reshape(C * D, post.dim)
    kernels, noise = jax.vmap(post.unpack)(flat)
    posterior, i = {}, 0
    for name, size in zip(post.names, post.sizes):
        values = np.exp(np.asarray(positions[..., i : i + size]))
        posterior[name] = values.reshape((C, D) + post.shapes[name])
        i += size
    sample_stats = {k: np.asarray(v) for k, v in stats.items()}
    import arviz as az  # lazily: it imports its plotting stack (matplotlib)

    idata = az.from_dict(
        {"posterior": posterior, "sample_stats": sample_stats, "observed_data": {"y": np.asarray(post.y)}},
        attrs={"/": {"inference_library": "blackjax", "sampler": "nuts (window adaptation)",
                     "num_warmup": int(num_warmup)}},
    )
    n_div = int(np.sum(sample_stats["diverging"]))
    if n_div:
        warnings.warn(
            f"{n_div} of {C * D} NUTS transitions diverged; the draws may be biased. Try a "
            "higher target_acceptance_rate, more warmup, or tighter priors",
            RuntimeWarning,
            stacklevel=3,
        )
    n_jit = int(jnp.sum(_jitter_indices(post, flat) > 0))
    if n_jit:
        warnings.warn(
            f"k(X, X) + noise I needed jitter on its diagonal at {n_jit} of {C * D} draws",
            JitterWarning,
            stacklevel=3,
        )
    return HyperparameterDraws(idata, kernels, noise)


# ---------------------------------------------------------------------------------------------
# The hyperparameter-averaged predictive
# ---------------------------------------------------------------------------------------------
def _per_draw_predictive(kernels, noise, X, y, Xs, include_noise, batch_size):
    """Means and variances (S, m) of p(f* | y, theta_s) (R&W eqs. 2.25-2.26) for every draw."""

    def one(args):
        kernel, nz = args
        jitter = _LADDER[_jitter_index(kernel, X, nz)]
        L = jnp.linalg.cholesky(_train_cov(kernel, X, nz, jitter))
        alpha = jax.scipy.linalg.cho_solve((L, True), y)
        Ks = kernel(X, Xs)
        V = jax.scipy.linalg.solve_triangular(L, Ks, lower=True)
        var = jnp.maximum(kernel.diag(Xs) - jnp.sum(V * V, axis=0), 0.0)
        return Ks.T @ alpha, var + jnp.where(include_noise, nz, 0.0)

    return jax.lax.map(one, (kernels, noise), batch_size=batch_size)


_per_draw_predictive_jit = jax.jit(_per_draw_predictive, static_argnames=("batch_size",))


def _check_draws(draws):
    if not isinstance(draws, HyperparameterDraws):
        raise TypeError(
            "draws must be a HyperparameterDraws (from sample_hyperparameters or "
            f"HyperparameterDraws.from_arrays); got {type(draws).__name__}"
        )


def predict_averaged(draws: HyperparameterDraws, X, y, Xs, *, include_noise: bool = False,
                     return_per_draw: bool = False, batch_size: int = 256):
    """The hyperparameter-averaged GP predictive at Xs (m, d): mixture mean and variance.

    With per-draw predictive means m_s and variances v_s (R&W eqs. 2.25-2.26, v_s plus the
    draw's noise if ``include_noise``), the equal-weight mixture over S draws has (law of total
    variance; *Approximate Inference for Fully Bayesian GP Regression*, eq. 4)::

        mean = (1/S) sum_s m_s,    var = (1/S) sum_s v_s + (1/S) sum_s m_s^2 - mean^2.

    X (n, d), y (n,): the training data the draws were fitted to. Returns mean (m,), var (m,);
    with ``return_per_draw`` also the per-draw means and variances (S, m). Draws are processed
    ``batch_size`` at a time (vmapped) to bound memory.
    """
    _check_draws(draws)
    X = as_inputs(X, "X")
    y = as_targets(y, X.shape[0], "y")
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D (n,); got shape {y.shape}")
    _check_kernel_dims(jax.tree_util.tree_map(lambda v: v[0], draws.kernels), X.shape[1])
    Xs = as_inputs(Xs, "Xs", dim=X.shape[1])
    batch_size = _positive_int(batch_size, "batch_size")
    means, variances = _per_draw_predictive_jit(
        draws.kernels, draws.noise, jnp.asarray(X), jnp.asarray(y), jnp.asarray(Xs),
        bool(include_noise), batch_size=batch_size,
    )
    mean = jnp.mean(means, axis=0)
    # centre before squaring: E[(m_s - mean)^2] equals E[m_s^2] - mean^2 without cancellation
    var = jnp.mean(variances, axis=0) + jnp.mean((means - mean) ** 2, axis=0)
    if return_per_draw:
        return mean, var, means, variances
    return mean, var


def predictive_interval(draws: HyperparameterDraws, X, y, Xs, *, prob: float = 0.95,
                        include_noise: bool = True, batch_size: int = 256):
    """Central ``prob`` interval (lower (m,), upper (m,)) of the averaged predictive mixture.

    The averaged predictive is a mixture of S Gaussians, not a Gaussian, so its quantiles are
    found by bisection on the mixture CDF F(t) = (1/S) sum_s Phi((t - m_s) / sqrt(v_s)), to
    about 1e-10 of the interval width. ``include_noise=True`` (default) gives the interval for a
    new observation y*, which is what held-out coverage checks need.
    """
    prob = float(prob)
    if not 0.0 < prob < 1.0:
        raise ValueError(f"prob must be in (0, 1); got {prob}")
    _, _, means, variances = predict_averaged(draws, X, y, Xs, include_noise=include_noise,
                                              return_per_draw=True, batch_size=batch_size)
    sd = jnp.sqrt(jnp.maximum(variances, 1e-300))
    return _mixture_quantiles(means, sd, (1.0 - prob) / 2.0), _mixture_quantiles(means, sd, (1.0 + prob) / 2.0)


@jax.jit
def _mixture_quantiles(means, sd, level):
    lo = jnp.min(means - 40.0 * sd, axis=0)
    hi = jnp.max(means + 40.0 * sd, axis=0)

    def body(_, bounds):
        lo, hi = bounds
        mid = 0.5 * (lo + hi)
        below = jnp.mean(jax.scipy.stats.norm.cdf((mid - means) / sd), axis=0) < level
        return jnp.where(below, mid, lo), jnp.where(below, hi, mid)

    lo, hi = jax.lax.fori_loop(0, 100, body, (lo, hi))
    return 0.5 * (lo + hi)
