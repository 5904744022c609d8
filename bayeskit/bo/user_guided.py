"""User-guided BO (ColaBO): a user's prior over where the minimiser lies reweights posterior samples.

*A General Framework for User-Guided Bayesian Optimization* (Hvarfner, Hutter & Nardi; ColaBO)
lets a user state a belief rho(x*) about the location x* of the optimum. It enters the model,
not the acquisition: the GP prior p(f) is tilted towards functions whose minimiser the user finds
plausible (the paper's "belief-weighted prior" over functions),

    p(f | rho)  propto  p(f) rho(x*_f),          x*_f = argmin_x f(x),

and Bayes' rule gives the belief-weighted posterior p(f | D, rho) propto p(f | D) rho(x*_f).
Any Monte-Carlo acquisition E_{f | D, rho}[u(x; f)] can then be estimated by self-normalised
importance sampling with the ordinary GP posterior as the proposal (the paper's Monte-Carlo
acquisitions under the belief-weighted posterior): draw L posterior sample paths f_l ~ p(f | D), find
their minimisers x*_l, and weight them

    w_l = rho(x*_l) / sum_j rho(x*_j),
    alpha_rho(x) = sum_l w_l u(x; f_l).

With u(x; f) = max(best - f(x), 0) this is ColaBO-EI; with a flat rho every w_l = 1/L and it
is plain Monte-Carlo EI, which converges to the closed-form EI as L grows. bayeskit uses:

* ``"ei"``:      sum_l w_l max(best - f_l(x), 0)
* ``"log_ei"``:  log sum_l w_l tau softplus((best - f_l(x)) / tau), tau = 1e-3 (standardised units),
  by log-sum-exp: the smooth log-EI of *Unexpected Improvements to Expected Improvement for
  Bayesian Optimization* (section 4.1), finite and with a gradient where no path improves; it
  differs from log of ColaBO-EI by at most tau log 2 in the improvement.
* ``"pi"``:      log sum_l w_l sigmoid((best - f_l(x)) / tau), the smoothed log probability of
  improvement.
* ``"ts"``:      draw one path with probability w_l and take its minimiser (Thompson sampling
  from the belief-weighted posterior).

Sample paths are the random-Fourier-feature paths of :func:`bayeskit.bo.sampling.pathwise_posterior_sample`
(Matheron's rule), the same set for every x within a BO step (common random numbers), so the
acquisition is a smooth deterministic function that L-BFGS-B can climb. Each path's minimiser
is found on a Sobol grid plus the data, then refined by projected gradient steps. The effective
sample size 1 / sum_l w_l^2 says how many paths carry the estimate; a prior that disagrees with
every path leaves few.

The prior is a density over the ORIGINAL coordinates of the search box; the map to the unit
cube has a constant Jacobian, which the self-normalisation cancels.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.scipy.special import log_ndtr, logsumexp

from .. import _config  # noqa: F401  (float64)
from .._validation import as_prng_key
from ..gp.exact import Posterior
from .optimize import sobol_points
from .sampling import PosteriorSamplePath, pathwise_posterior_sample

__all__ = [
    "UserPrior",
    "ReweightedPaths",
    "reweighted_sample_paths",
    "colabo_expected_improvement",
    "colabo_log_expected_improvement",
    "colabo_log_probability_of_improvement",
    "COLABO_ACQUISITIONS",
]

COLABO_ACQUISITIONS = ("ei", "log_ei", "pi", "ts")
TAU = 1e-3  # smoothing temperature of log EI / log PI, in standardised units of y


def _validate_box(bounds) -> np.ndarray:
    from .loop import validate_bounds  # the loop owns the check; imported lazily (no cycle)

    return validate_bounds(bounds)


class UserPrior:
    """A prior over the location of the minimiser, in the original coordinates of the box.

    Build it from a log-density, ``UserPrior(logpdf=callable)``, where ``callable(X)`` takes
    X (m, d) as a numpy array and returns (m,) log-densities (up to a constant; -inf allowed,
    NaN not), or from :meth:`normal`. :meth:`bind` attaches a box (the optimiser does it) and
    checks that the prior puts mass inside it.
    """

    def __init__(self, logpdf: Callable, *, dim: int | None = None, bounds=None, name: str = "user prior"):
        if not callable(logpdf):
            raise TypeError(f"logpdf must be a callable X (m, d) -> (m,) log-densities; got {type(logpdf).__name__}")
        if dim is not None and (isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 1):
            raise ValueError(f"dim must be an int >= 1; got {dim!r}")
        self._logpdf = logpdf
        self.dim = None if dim is None else int(dim)
        self.name = name
        self.bounds = None if bounds is None else _validate_box(bounds)
        if self.bounds is not None and self.dim is not None and self.bounds.shape[0] != self.dim:
            raise ValueError(f"bounds has {self.bounds.shape[0]} rows but the prior has dim {self.dim}")
        self.mean = self.std = None

    # -- constructors ------------------------------------------------------------------------
    @classmethod
    def normal(cls, mean, std, bounds=None) -> UserPrior:
        """Independent Gaussians N(mean_i, std_i^2) per input, truncated to the box.

        mean: (d,); std: (d,) or a scalar > 0. With ``bounds`` (or after :meth:`bind`) the
        density is normalised on the box: sum_i log phi(z_i) - log std_i - log(Phi(b_i) - Phi(a_i)),
        z_i = (x_i - mean_i) / std_i, a_i, b_i the standardised box edges; -inf outside.
        """
        try:
            mean_arr = np.atleast_1d(np.asarray(mean, dtype=np.float64))
            std_arr = np.asarray(std, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"mean and std must be numbers or arrays of numbers; got {mean!r}, {std!r}") from None
        if mean_arr.ndim != 1:
            raise ValueError(f"mean must have shape (d,); got {np.shape(mean)}")
        if not np.all(np.isfinite(mean_arr)):
            raise ValueError(f"mean must be finite; got {mean_arr.tolist()}")
        if std_arr.ndim > 1 or (std_arr.ndim == 1 and std_arr.shape[0] != mean_arr.shape[0]):
            raise ValueError(f"std must be a scalar or have shape ({mean_arr.shape[0]},) like mean; got {std_arr.shape}")
        std_arr = np.broadcast_to(std_arr, mean_arr.shape).copy()
        if not np.all(np.isfinite(std_arr)) or np.any(std_arr <= 0):
            raise ValueError(f"std must be finite and > 0; got {std_arr.tolist()}")
        prior = cls(lambda X: np.zeros(len(X)), dim=mean_arr.shape[0], name="normal")
        prior.mean, prior.std = mean_arr, std_arr
        prior._logpdf = prior._normal_logpdf
        if bounds is not None:
            prior = prior.bind(bounds)
        return prior

    def _normal_logpdf(self, X):
        z = (X - self.mean) / self.std
        out = np.sum(-0.5 * z**2 - 0.5 * math.log(2 * math.pi) - np.log(self.std), axis=1)
        if self.bounds is not None:
            a = (self.bounds[:, 0] - self.mean) / self.std
            b = (self.bounds[:, 1] - self.mean) / self.std
            # log(Phi(b) - Phi(a)) without cancellation: log Phi(b) + log(1 - Phi(a) / Phi(b))
            log_mass = np.asarray(log_ndtr(b)) + np.log1p(-np.exp(np.asarray(log_ndtr(a)) - np.asarray(log_ndtr(b))))
            out = out - np.sum(log_mass)
            inside = np.all((X >= self.bounds[:, 0]) & (X <= self.bounds[:, 1]), axis=1)
            out = np.where(inside, out, -np.inf)
        return out

    def bind(self, bounds) -> UserPrior:
        """A copy attached to ``bounds`` (d, 2), after checking that the prior fits the box.

        Raises ValueError when the dimension differs, when a normal prior's mean lies outside the
        box, or when a log-density is NaN or -inf on every one of 256 Sobol points of the box.
        """
        box = _validate_box(bounds)
        d = box.shape[0]
        if self.dim is not None and self.dim != d:
            raise ValueError(f"user_prior has dimension {self.dim} but bounds has {d} rows")
        if self.mean is not None:
            outside = (self.mean < box[:, 0]) | (self.mean > box[:, 1])
            if np.any(outside):
                i = int(np.nonzero(outside)[0][0])
                raise ValueError(
                    f"user_prior mean[{i}] = {self.mean[i]} lies outside bounds[{i}] = {box[i].tolist()}; "
                    "a prior over the minimiser must be centred inside the search box"
                )
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        new.bounds, new.dim = box, d
        if self.mean is not None:
            new._logpdf = new._normal_logpdf
        probe = box[:, 0] + sobol_points(256, d, 0) * (box[:, 1] - box[:, 0])
        values = new.logpdf(probe)
        if not np.any(np.isfinite(values)):
            raise ValueError("user_prior's log-density is -inf at every probe point inside bounds: "
                             "the prior puts no mass inside the search box")
        return new

    # -- evaluation --------------------------------------------------------------------------
    def logpdf(self, X) -> np.ndarray:
        """Log-density (m,) at X (m, d) (or (d,) -> (1,)) in the original coordinates."""
        X = np.atleast_2d(np.asarray(X, dtype=np.float64))
        if self.dim is not None and X.shape[1] != self.dim:
            raise ValueError(f"X must have shape (m, {self.dim}); got {X.shape}")
        out = np.asarray(self._logpdf(X.copy()), dtype=np.float64)
        if out.shape != (X.shape[0],):
            # accept a callable written for one point at a time
            if out.size == 1 and X.shape[0] == 1:
                out = out.reshape(1)
            else:
                try:
                    out = np.array([float(np.asarray(self._logpdf(x.copy())).reshape(())) for x in X])
                except (TypeError, ValueError):
                    raise ValueError(f"user_prior's logpdf must return shape ({X.shape[0]},) for X of shape "
                                     f"{X.shape}; got {np.shape(out)}") from None
        if np.any(np.isnan(out)):
            raise ValueError("user_prior's logpdf returned NaN; return -inf where the prior has no mass")
        if np.any(out == np.inf):
            raise ValueError("user_prior's logpdf returned +inf; it must be a log-density (finite or -inf)")
        return out

    def __repr__(self):
        if self.mean is not None:
            return f"UserPrior.normal(mean={self.mean.tolist()}, std={self.std.tolist()})"
        return f"UserPrior({self.name}, dim={self.dim})"


# ---------------------------------------------------------------------------------------------
# Reweighted sample paths
# ---------------------------------------------------------------------------------------------
class ReweightedPaths(NamedTuple):
    """L posterior sample paths with the prior weights of their minimisers.

    paths : :class:`bayeskit.bo.sampling.PosteriorSamplePath` with a leading path axis (L) on
        every leaf; evaluate with :func:`evaluate_paths`.
    argmins : (L, d) minimiser of each path, in the unit cube.
    log_weights : (L,) normalised log w_l (logsumexp = 0).
    ess : effective sample size 1 / sum_l w_l^2, between 1 and L.
    """

    paths: PosteriorSamplePath
    argmins: jax.Array
    log_weights: jax.Array
    ess: float

    @property
    def weights(self) -> np.ndarray:
        return np.exp(np.asarray(self.log_weights))


def evaluate_paths(paths: PosteriorSamplePath, X):
    """Values (L, m) of every path at X (m, d) (unit cube).

    Paths are evaluated 16 at a time: all at once would hold an (L, m, n_features) array of
    cosines (half a gigabyte for L = 128, m = 1024, 512 features) and run far slower.
    """
    return jax.lax.map(lambda p: p(X), paths, batch_size=16)


@partial(jax.jit, static_argnames=("n_features",))
def _draw_paths(posteriors, draw_index, keys, n_features):
    def one(key, i):
        post = jax.tree_util.tree_map(lambda v: v[i], posteriors)._replace(X=posteriors.X)
        return pathwise_posterior_sample(post, key, n_features)

    return jax.vmap(one)(keys, draw_index)


@jax.jit
def _grid_argmins(paths, grid):
    values = evaluate_paths(paths, grid)  # (L, g)
    return grid[jnp.argmin(values, axis=1)]


@jax.jit
def _refine_argmins(paths, starts, steps):
    """Projected Adam steps on each path from its grid minimiser, kept inside the unit cube."""
    opt = optax.adam(steps)  # steps: the learning rate, a traced scalar

    def one(path, x0):
        grad = jax.grad(lambda x: path(x[None, :])[0])

        def body(carry, _):
            x, state, best_x, best_v = carry
            g = grad(x)
            upd, state = opt.update(g, state)
            x = jnp.clip(optax.apply_updates(x, upd), 0.0, 1.0)
            v = path(x[None, :])[0]
            better = v < best_v
            return (x, state, jnp.where(better, x, best_x), jnp.where(better, v, best_v)), None

        v0 = path(x0[None, :])[0]
        (_, _, best_x, _), _ = jax.lax.scan(body, (x0, opt.init(x0), x0, v0), None, length=40)
        return best_x

    return jax.vmap(one)(paths, starts)


def reweighted_sample_paths(posteriors: Posterior, prior: UserPrior, bounds, key, *, n_paths: int = 128,
                            n_features: int = 256, n_grid: int = 512, data=None) -> ReweightedPaths:
    """Draw L = ``n_paths`` posterior sample paths and weight each by the prior at its minimiser.

    ``posteriors``: a padded :class:`bayeskit.gp.exact.Posterior` in unit-cube coordinates, or a
    batch of S of them (leaves with a leading draw axis, X shared: fully Bayesian BO), in which
    case path l uses draw l mod S. ``prior``: a :class:`UserPrior` bound to ``bounds`` (d, 2).
    Minimisers: the best of ``n_grid`` Sobol points plus ``data`` (k, d) (unit cube), refined by
    40 projected Adam steps (learning rate 0.01) on each path. Returns :class:`ReweightedPaths`.
    """
    box = _validate_box(bounds)
    if not isinstance(prior, UserPrior):
        raise TypeError(f"prior must be a bayeskit.bo.user_guided.UserPrior; got {type(prior).__name__}")
    if prior.bounds is None or not np.array_equal(prior.bounds, box):
        prior = prior.bind(box)
    key = as_prng_key(key)
    batched = posteriors.L.ndim == 3
    if not batched:
        posteriors = jax.tree_util.tree_map(lambda v: jnp.asarray(v)[None], posteriors)._replace(X=posteriors.X)
    S = posteriors.L.shape[0]
    d = posteriors.X.shape[1]
    k_paths, k_grid = jax.random.split(key)
    draw_index = jnp.arange(int(n_paths)) % S
    paths = _draw_paths(posteriors, draw_index, jax.random.split(k_paths, int(n_paths)), int(n_features))
    seed = int(jax.random.randint(k_grid, (), 0, 2**31 - 1))
    grid = sobol_points(int(n_grid), d, seed)
    if data is not None and len(data):
        grid = np.vstack([grid, np.asarray(data, dtype=np.float64)])
    starts = _grid_argmins(paths, jnp.asarray(grid))
    argmins = _refine_argmins(paths, starts, jnp.asarray(0.01))
    log_rho = prior.logpdf(box[:, 0] + np.asarray(argmins) * (box[:, 1] - box[:, 0]))
    if not np.any(np.isfinite(log_rho)):
        warnings.warn("the user prior is zero at every sample path's minimiser; using equal weights",
                      RuntimeWarning, stacklevel=2)
        log_rho = np.zeros_like(log_rho)
    log_w = log_rho - logsumexp(log_rho)
    log_w = np.asarray(log_w)
    ess = float(1.0 / np.sum(np.exp(2 * log_w)))
    return ReweightedPaths(paths, argmins, jnp.asarray(log_w), ess)


# ---------------------------------------------------------------------------------------------
# ColaBO acquisitions: (L, m) path values and (L,) normalised log-weights -> (m,)
# ---------------------------------------------------------------------------------------------
def colabo_expected_improvement(values, log_weights, best):
    """sum_l w_l max(best - f_l(x), 0): values (L, m), log_weights (L,) normalised. (m,)."""
    return jnp.sum(jnp.exp(log_weights)[:, None] * jnp.maximum(best - values, 0.0), axis=0)


def _log_softplus(t):
    # log(log(1 + e^t)): for t < -30 softplus(t) = e^t to double precision, so the log is t
    safe = jnp.where(t < -30.0, 0.0, t)
    return jnp.where(t < -30.0, t, jnp.log(jax.nn.softplus(safe)))


def colabo_log_expected_improvement(values, log_weights, best, tau: float = TAU):
    """log sum_l w_l tau softplus((best - f_l(x)) / tau), by log-sum-exp. (m,).

    Tends to log :func:`colabo_expected_improvement` as tau -> 0 (each term is within tau log 2
    of max(best - f_l, 0)); finite and differentiable where no path improves.
    """
    t = (best - values) / tau
    return logsumexp(log_weights[:, None] + _log_softplus(t), axis=0) + math.log(tau)


def colabo_log_probability_of_improvement(values, log_weights, best, tau: float = TAU):
    """log sum_l w_l sigmoid((best - f_l(x)) / tau), by log-sum-exp. (m,)."""
    return logsumexp(log_weights[:, None] + jax.nn.log_sigmoid((best - values) / tau), axis=0)


def _u_colabo_ei(X, paths, log_weights, best):
    return colabo_expected_improvement(evaluate_paths(paths, X), log_weights, best)


def _u_colabo_log_ei(X, paths, log_weights, best):
    return colabo_log_expected_improvement(evaluate_paths(paths, X), log_weights, best)


def _u_colabo_log_pi(X, paths, log_weights, best):
    return colabo_log_probability_of_improvement(evaluate_paths(paths, X), log_weights, best)


def _u_single_path(X, paths, index):
    path = jax.tree_util.tree_map(lambda v: v[index], paths)
    return -path(X)

