"""Regressors of the state given the observation, for the discriminative Kalman filter.

The discriminative Kalman filter (*A Discriminative Approach to Bayesian Filtering with
Applications to Human Neural Decoding*, the model of ch. 3: p(z_t | x_t) ~ N(f(x_t), Q(x_t)))
needs two things from supervised data (x_i, z_i): a mean f(x) of the state z given the
observation x, and a covariance Q(x) of z around it. This module supplies:

* three mean regressors with the scikit-learn ``fit(x, z)`` / ``predict(x) -> (n, d)``
  interface, each choosing its own settings from the training rows it is given:

  - :class:`GPMeanRegressor`: exact GP regression (:class:`bayeskit.gp.GPRegressor`), the d
    outputs sharing one ARD RBF kernel whose hyperparameters come from ML-II on a random
    subset of rows (the O(n^3) search is the expensive part), then conditioned on every row;
  - :class:`NadarayaWatsonRegressor`: a Gaussian-kernel weighted average of the training
    states, its bandwidth chosen by leave-one-out squared error;
  - :class:`MLPRegressor`: a small Flax NNX multilayer perceptron (float32) trained with
    optax's AdamW, its number of steps and weight decay chosen on an inner validation split;

* :class:`HeldOutGaussianRegressor`, which turns any mean regressor into the Gaussian model
  the filter needs: f is fitted on one part of the rows, and Q is the covariance of the
  residuals z - f(x) on the other (held-out) part, so it measures the error f really makes
  on data it has not seen. Its ``predict(x)`` returns (mean (n, d), cov (n, d, d)).

Why a constant Q, also for the GP: the held-out residual covariance is an honest, calibrated
estimate of the total error of f (the regressor's own uncertainty plus the irreducible spread
of z given x plus misspecification). The GP's latent predictive variance measures only the
first, is derived under a model that is misspecified here, and adding it to the residual
covariance would count that part twice on average. A regressor with an input-dependent Q can
still be passed to the filter directly (anything with ``predict(x) -> (mean, cov)``).
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import scipy.optimize

from .. import _config  # noqa: F401  (float64)
from .._validation import as_inputs, as_prng_key
from ..gp.exact import GPRegressor
from ..kernels import RBF

__all__ = [
    "GPMeanRegressor",
    "HeldOutGaussianRegressor",
    "MLPRegressor",
    "NadarayaWatsonRegressor",
    "as_states",
]


def as_states(z, n: int, name: str = "z") -> np.ndarray:
    """Return states ``z`` as float64 (n, d) ((n,) is read as d = 1), checking rows and finiteness."""
    arr = np.asarray(z, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"{name} must be (T, d) (or (T,) for one state); got shape {arr.shape}")
    if arr.shape[0] != n:
        raise ValueError(f"{name} has {arr.shape[0]} rows but x has {n}; they must match (one state per observation)")
    if arr.shape[1] == 0:
        raise ValueError(f"{name} has no columns: at least one state dimension is needed")
    if not np.all(np.isfinite(arr)):
        bad = int(np.sum(~np.isfinite(arr)))
        raise ValueError(f"{name} contains {bad} NaN or infinite value(s); states must be finite")
    return arr


def _check_fitted(obj, attr: str):
    if not hasattr(obj, attr):
        raise RuntimeError(f"this {type(obj).__name__} is not fitted yet: call fit(x, z) first")


class _Standardizer:
    """Column means and standard deviations (a constant column keeps scale 1)."""

    def __init__(self, a: np.ndarray):
        self.mean = a.mean(axis=0)
        std = a.std(axis=0)
        self.std = np.where(std > 0, std, 1.0)

    def __call__(self, a):
        return (a - self.mean) / self.std

    def inverse(self, a):
        return a * self.std + self.mean


# ---------------------------------------------------------------------------------------------
# Gaussian process
# ---------------------------------------------------------------------------------------------
class GPMeanRegressor:
    """Posterior mean of a multi-output GP: f(x) (n, d), the d outputs sharing one kernel.

    Kernel ``variance * exp(-sum_j (x_j - x'_j)^2 / (2 l_j^2))`` (ARD RBF, Rasmussen & Williams,
    *Gaussian Processes for Machine Learning*, eq. 5.2) plus Gaussian noise, on inputs and
    targets standardised by their training means and standard deviations. Hyperparameters are
    the ML-II argmax of the summed log marginal likelihood of the d outputs (R&W eq. 5.8),
    found on ``n_hyperparameter_rows`` rows drawn at random (ML-II costs O(n^3) per
    evaluation, so it runs on a subset; the hyperparameters of a smooth kernel change little
    beyond a thousand rows); the posterior mean (R&W eq. 2.25) then conditions on every row.

    Parameters: ``n_hyperparameter_rows`` (int), ``n_restarts`` (extra ML-II starts),
    ``seed`` (the subset and restarts). After :meth:`fit`: ``gp_`` (the conditioned
    :class:`~bayeskit.gp.GPRegressor`), ``kernel_``, ``noise_``.
    """

    def __init__(self, n_hyperparameter_rows: int = 1200, *, n_restarts: int = 0, seed: int = 0):
        self.n_hyperparameter_rows = n_hyperparameter_rows
        self.n_restarts = n_restarts
        self.seed = seed

    def fit(self, x, z) -> GPMeanRegressor:
        """Fit to observations x (n, m) and states z (n, d); returns self."""
        x = as_inputs(x, "x")
        z = as_states(z, x.shape[0])
        if int(self.n_hyperparameter_rows) < 2:
            raise ValueError(f"n_hyperparameter_rows must be >= 2; got {self.n_hyperparameter_rows}")
        self._x_scale = _Standardizer(x)
        xs = self._x_scale(x)
        rng = np.random.default_rng(self.seed)
        n_sub = min(int(self.n_hyperparameter_rows), x.shape[0])
        rows = np.sort(rng.choice(x.shape[0], size=n_sub, replace=False))
        start = RBF(lengthscale=np.ones(x.shape[1]), variance=1.0)
        search = GPRegressor(start, noise=0.1, normalize_y=True, n_restarts=self.n_restarts,
                             noise_bounds=(1e-4, 10.0), seed=self.seed).fit(xs[rows], z[rows])
        self.kernel_, self.noise_ = search.kernel_, search.noise_
        self.gp_ = GPRegressor(self.kernel_, noise=self.noise_, optimize=False, normalize_y=True).fit(xs, z)
        return self

    def predict(self, x) -> np.ndarray:
        """Posterior mean of the states at x (n, m): (n, d)."""
        _check_fitted(self, "gp_")
        x = as_inputs(x, "x", dim=self._x_scale.mean.shape[0])
        return np.asarray(self.gp_.predict(self._x_scale(x))).reshape(x.shape[0], -1)


# ---------------------------------------------------------------------------------------------
# Nadaraya-Watson
# ---------------------------------------------------------------------------------------------
def _sq_dists(a, b):
    # |a|^2 + |b|^2 - 2 a.b: a single matrix product, which matters at thousands of rows
    d2 = jnp.sum(a * a, 1)[:, None] + jnp.sum(b * b, 1)[None, :] - 2.0 * a @ b.T
    return jnp.maximum(d2, 0.0)


@jax.jit
def _nw_weights(d2, log_bandwidth):
    # a softmax over -d^2 / (2 h^2): log-sum-exp keeps far-away queries from dividing 0 by 0
    return jax.nn.softmax(-0.5 * d2 * jnp.exp(-2.0 * log_bandwidth), axis=1)


@jax.jit
def _nw_loo_mse(log_bandwidth, d2_self, z):
    # leaving row i out of its own average = setting its own weight to zero
    logits = -0.5 * d2_self * jnp.exp(-2.0 * log_bandwidth)
    logits = jnp.where(jnp.eye(d2_self.shape[0], dtype=bool), -jnp.inf, logits)
    pred = jax.nn.softmax(logits, axis=1) @ z
    return jnp.mean(jnp.sum((z - pred) ** 2, axis=1))


class NadarayaWatsonRegressor:
    """Kernel-weighted average f(x) = sum_i w_i(x) z_i, w_i ∝ exp(-|x - x_i|^2 / (2 h^2)).

    The Nadaraya-Watson estimator (Nadaraya, *On Estimating Regression*; Watson, *Smooth
    Regression Analysis*) on inputs standardised column by column. The bandwidth h minimises
    the leave-one-out mean squared error (1/n) sum_i |z_i - f_{-i}(x_i)|^2: first over a
    log-spaced grid of ``n_grid`` values between 1/20 and 2 times the median pairwise
    distance, then refined by scipy's bounded scalar minimiser around the best grid value.
    Memory is O(n^2) in the training rows.

    After :meth:`fit`: ``bandwidth_`` (on the standardised scale) and ``loo_mse_``.
    """

    def __init__(self, n_grid: int = 20):
        self.n_grid = n_grid

    def fit(self, x, z) -> NadarayaWatsonRegressor:
        """Fit to observations x (n, m) and states z (n, d), n >= 2; returns self."""
        x = as_inputs(x, "x")
        z = as_states(z, x.shape[0])
        if x.shape[0] < 2:
            raise ValueError("x needs at least 2 rows for leave-one-out bandwidth selection")
        self._x_scale = _Standardizer(x)
        xs = jnp.asarray(self._x_scale(x))
        zj = jnp.asarray(z)
        d2 = _sq_dists(xs, xs)
        median = float(jnp.sqrt(jnp.median(d2)))
        median = median if median > 0 else 1.0
        grid = np.log(median) + np.linspace(np.log(1 / 20), np.log(2.0), int(self.n_grid))
        losses = np.array([float(_nw_loo_mse(g, d2, zj)) for g in grid])
        i = int(np.nanargmin(losses))
        lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
        res = scipy.optimize.minimize_scalar(lambda g: float(_nw_loo_mse(g, d2, zj)), bounds=(lo, hi),
                                             method="bounded", options={"xatol": 1e-3})
        best = (res.x, res.fun) if res.fun <= losses[i] else (grid[i], losses[i])
        self.bandwidth_, self.loo_mse_ = float(np.exp(best[0])), float(best[1])
        self._x_train, self._z_train = xs, zj
        return self

    def predict(self, x) -> np.ndarray:
        """Weighted averages of the training states at x (n, m): (n, d)."""
        _check_fitted(self, "bandwidth_")
        x = as_inputs(x, "x", dim=self._x_scale.mean.shape[0])
        xs = jnp.asarray(self._x_scale(x))
        out = []
        for start in range(0, xs.shape[0], 2048):  # bounded memory for long test sequences
            w = _nw_weights(_sq_dists(xs[start:start + 2048], self._x_train), np.log(self.bandwidth_))
            out.append(np.asarray(w @ self._z_train))
        return np.concatenate(out, axis=0)


# ---------------------------------------------------------------------------------------------
# Multilayer perceptron (Flax NNX, float32)
# ---------------------------------------------------------------------------------------------
@functools.cache
def _mlp_class():
    """The NNX module class, built on first use so importing the filters does not import Flax."""
    from flax import nnx

    class _MLP(nnx.Module):
        def __init__(self, n_in: int, hidden: tuple[int, ...], n_out: int, rngs: nnx.Rngs):
            sizes = (n_in, *hidden)
            self.hidden = nnx.List([nnx.Linear(a, b, dtype=jnp.float32, param_dtype=jnp.float32, rngs=rngs)
                                    for a, b in zip(sizes[:-1], sizes[1:])])
            self.out = nnx.Linear(sizes[-1], n_out, dtype=jnp.float32, param_dtype=jnp.float32, rngs=rngs)

        def __call__(self, x):
            for layer in self.hidden:
                x = jnp.tanh(layer(x))
            return self.out(x)

    return _MLP


def _train_mlp(graphdef, params, x_fit, z_fit, x_val, z_val, n_steps, learning_rate, weight_decay):
    """Full-batch AdamW for ``n_steps`` steps in one lax.scan; keeps the best-validation params.

    Returns (best params, best validation MSE, the step it was reached at, validation curve).
    """
    from flax import nnx

    tx = optax.adamw(learning_rate, weight_decay=weight_decay)

    def mse(p, x, z):
        return jnp.mean(jnp.sum((nnx.merge(graphdef, p)(x) - z) ** 2, axis=1))

    def step(carry, i):
        p, opt_state, best_p, best_loss, best_step = carry
        grads = jax.grad(mse)(p, x_fit, z_fit)
        updates, opt_state = tx.update(grads, opt_state, p)
        p = optax.apply_updates(p, updates)
        val = mse(p, x_val, z_val)
        better = val < best_loss
        best_p = jax.tree.map(lambda new, old: jnp.where(better, new, old), p, best_p)
        return (p, opt_state, best_p, jnp.where(better, val, best_loss), jnp.where(better, i + 1, best_step)), val

    init = (params, tx.init(params), params, mse(params, x_val, z_val), jnp.asarray(0))
    (_, _, best_p, best_loss, best_step), curve = jax.lax.scan(step, init, jnp.arange(n_steps))
    return best_p, best_loss, best_step, curve


_train_mlp_jit = jax.jit(_train_mlp, static_argnums=(0, 6))


class MLPRegressor:
    """A small multilayer perceptron f(x) (n, d), tanh hidden layers, trained by AdamW (optax).

    Inputs and targets are standardised; the network and its training run in float32 (this is
    neural-network code, see the design notes), predictions come back as float64. Settings are
    chosen by validation on the rows given to :meth:`fit` only: a random ``validation_fraction``
    of them is held out, one network per ``weight_decays`` entry is trained full-batch for
    ``n_steps`` steps, and the parameters at the step with the lowest validation squared error
    of the best run are kept (early stopping).

    ``key``: a ``jax.random`` key (or int seed) for the initialisation and the split.
    After :meth:`fit`: ``weight_decay_``, ``n_steps_`` (the chosen step), ``validation_mse_``
    (on the standardised targets), ``model_`` (the :class:`flax.nnx.Module`).
    """

    def __init__(
        self,
        hidden: tuple[int, ...] = (64, 64),
        *,
        n_steps: int = 1000,
        learning_rate: float = 3e-3,
        weight_decays: tuple[float, ...] = (1e-4, 1e-2),
        validation_fraction: float = 0.2,
        key: Any = 0,
    ):
        self.hidden = tuple(int(h) for h in hidden)
        self.n_steps = n_steps
        self.learning_rate = learning_rate
        self.weight_decays = tuple(weight_decays)
        self.validation_fraction = validation_fraction
        self.key = key

    def fit(self, x, z) -> MLPRegressor:
        """Fit to observations x (n, m) and states z (n, d); returns self."""
        x = as_inputs(x, "x")
        z = as_states(z, x.shape[0])
        if not 0 < self.validation_fraction < 1:
            raise ValueError(f"validation_fraction must be in (0, 1); got {self.validation_fraction}")
        n_val = int(round(self.validation_fraction * x.shape[0]))
        if n_val < 1 or n_val >= x.shape[0]:
            raise ValueError(f"x has too few rows ({x.shape[0]}) for a validation split")
        key = as_prng_key(self.key)
        split_key, init_key = jax.random.split(key)
        perm = np.asarray(jax.random.permutation(split_key, x.shape[0]))
        val, fit = perm[:n_val], perm[n_val:]
        self._x_scale, self._z_scale = _Standardizer(x[fit]), _Standardizer(z[fit])
        xs = jnp.asarray(self._x_scale(x), dtype=jnp.float32)
        zs = jnp.asarray(self._z_scale(z), dtype=jnp.float32)
        from flax import nnx

        best = None
        for weight_decay in self.weight_decays:
            model = _mlp_class()(x.shape[1], self.hidden, z.shape[1], nnx.Rngs(init_key))
            graphdef, params = nnx.split(model)
            p, loss, step, _ = _train_mlp_jit(graphdef, params, xs[fit], zs[fit], xs[val], zs[val],
                                              int(self.n_steps), float(self.learning_rate), float(weight_decay))
            if best is None or float(loss) < best[1]:
                best = (p, float(loss), int(step), weight_decay, graphdef)
        p, self.validation_mse_, self.n_steps_, self.weight_decay_, graphdef = best
        self.model_ = nnx.merge(graphdef, p)
        return self

    def predict(self, x) -> np.ndarray:
        """Network output at x (n, m): (n, d), float64."""
        _check_fitted(self, "model_")
        x = as_inputs(x, "x", dim=self._x_scale.mean.shape[0])
        out = self.model_(jnp.asarray(self._x_scale(x), dtype=jnp.float32))
        return self._z_scale.inverse(np.asarray(out, dtype=np.float64))


# ---------------------------------------------------------------------------------------------
# Mean regressor + held-out residual covariance = the Gaussian model p(z | x) ~ N(f(x), Q)
# ---------------------------------------------------------------------------------------------
class HeldOutGaussianRegressor:
    """p(z | x) ~ N(f(x), Q): f from a mean regressor, Q from residuals on held-out rows.

    :meth:`fit` splits the rows at random (``seed``) into a part for f (1 - held_out_fraction)
    and a held-out part, fits ``mean_regressor`` on the first, and sets
    ``observation_state_cov_`` Q = (1/n_h) sum_h (z_h - f(x_h)) (z_h - f(x_h))^T (d, d) over the
    held-out rows (the mean of the residuals is not subtracted: a bias of f is an error the
    filter should know about). This is how the discriminative Kalman filter's Q is learned in
    *A Discriminative Approach to Bayesian Filtering with Applications to Human Neural Decoding*.

    ``predict(x)`` returns (mean (n, d), cov (n, d, d)), the covariance the same for every row.
    After :meth:`fit`: ``observation_state_cov_`` (d, d), ``held_out_rows_`` and ``fit_rows_``
    (row indices of the split).
    """

    def __init__(self, mean_regressor, *, held_out_fraction: float = 0.3, seed: int = 0):
        if not (hasattr(mean_regressor, "fit") and hasattr(mean_regressor, "predict")):
            raise TypeError(f"mean_regressor must have fit(x, z) and predict(x); got {type(mean_regressor).__name__}")
        self.mean_regressor = mean_regressor
        self.held_out_fraction = held_out_fraction
        self.seed = seed

    def fit(self, x, z) -> HeldOutGaussianRegressor:
        """Fit f and Q to observations x (n, m) and states z (n, d); returns self."""
        x = as_inputs(x, "x")
        z = as_states(z, x.shape[0])
        if not 0 < self.held_out_fraction < 1:
            raise ValueError(f"held_out_fraction must be in (0, 1); got {self.held_out_fraction}")
        n_held = int(round(self.held_out_fraction * x.shape[0]))
        if n_held <= z.shape[1] or x.shape[0] - n_held < 2:
            raise ValueError(
                f"x has too few rows ({x.shape[0]}) to hold out {self.held_out_fraction:.0%} for the residual "
                f"covariance of a {z.shape[1]}-dimensional state"
            )
        perm = np.random.default_rng(self.seed).permutation(x.shape[0])
        held, fit = np.sort(perm[:n_held]), np.sort(perm[n_held:])
        self.mean_regressor.fit(x[fit], z[fit])
        residuals = z[held] - np.asarray(self.mean_regressor.predict(x[held])).reshape(n_held, -1)
        cov = residuals.T @ residuals / n_held
        self.observation_state_cov_ = 0.5 * (cov + cov.T)
        self.held_out_rows_, self.fit_rows_ = held, fit
        if np.linalg.eigvalsh(self.observation_state_cov_).min() <= 0:
            raise np.linalg.LinAlgError("the held-out residual covariance is singular: the states are collinear or f is exact")
        self.n_features_, self.n_states_ = x.shape[1], z.shape[1]
        return self

    def predict(self, x):
        """(mean (n, d), observation_state_cov (n, d, d)) of p(z | x) at observations x (n, m)."""
        _check_fitted(self, "observation_state_cov_")
        x = as_inputs(x, "x", dim=self.n_features_)
        mean = np.asarray(self.mean_regressor.predict(x), dtype=np.float64).reshape(x.shape[0], self.n_states_)
        cov = np.broadcast_to(self.observation_state_cov_, (x.shape[0], self.n_states_, self.n_states_))
        return mean, cov.copy()
