"""Exact Gaussian-process regression: posterior, samples, marginal likelihood and ML-II.

Model (Rasmussen & Williams, *Gaussian Processes for Machine Learning*, ch. 2 and 5)::

    f ~ GP(0, k),   y_i = f(x_i) + eps_i,   eps_i ~ N(0, noise)

With K = k(X, X) + noise I = L L^T and alpha = K^{-1} y:

* posterior mean      m(X*) = k(X*, X) alpha                                    (R&W eq. 2.25)
* posterior cov       C(X*) = k(X*, X*) - V^T V,  V = L^{-1} k(X, X*)            (R&W eq. 2.26)
* log marginal lik.   log p(y) = -y^T alpha / 2 - sum log L_ii - n log(2 pi) / 2  (R&W eq. 2.30)
* its gradient        d log p / d theta = tr((alpha alpha^T - K^{-1}) dK/dtheta) / 2  (R&W eq. 5.9)

The gradient is implemented as a custom vector-Jacobian product of the log marginal likelihood
with respect to K, so one Cholesky and one Cholesky inverse (LAPACK ``potri`` on the CPU) serve
every hyperparameter; differentiating through the Cholesky factorisation instead costs several
times more at n in the thousands.

``y`` may be (n,) or (n, k): k independent outputs sharing one kernel (their log marginal
likelihoods add up).
"""

from __future__ import annotations

import warnings
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg
import scipy.optimize

from .. import _config  # noqa: F401  (float64)
from .._validation import as_inputs, as_prng_key, as_targets, positive_scalar
from ..kernels import RBF, Kernel
from ..linalg import DEFAULT_JITTER_LADDER, SAMPLING_JITTER_LADDER, JitterWarning, escalate

__all__ = [
    "GPRegressor",
    "log_marginal_likelihood",
    "log_marginal_likelihood_and_grad",
    "posterior",
    "Posterior",
    "fit_ml2",
]

_LOG_2PI = float(np.log(2.0 * np.pi))


# ---------------------------------------------------------------------------------------------
# Cholesky inverse: LAPACK potri on the CPU for large n (a third of the flops of two solves)
# ---------------------------------------------------------------------------------------------
def _potri_lower_host(L):
    """K^{-1} from the lower factor L (C order), valid in its lower triangle only.

    ``L.T`` is the Fortran-ordered upper factor U = L^T of the same K = U^T U, so LAPACK reads it
    in place (no copy into Fortran order) and the result, transposed back, is C-ordered with the
    inverse in its lower triangle. The symmetric fill happens in XLA, fused with its consumer.
    """
    L = np.asarray(L)
    inv, info = scipy.linalg.lapack.dpotri(L.T, lower=0)
    if info != 0:
        return np.full(L.shape, np.nan, dtype=L.dtype)
    return inv.T


def _symmetric_from_lower(W):
    """The symmetric matrix whose lower triangle (diagonal included) is that of W (n, n)."""
    n = W.shape[-1]
    row = jax.lax.broadcasted_iota(jnp.int32, (n, n), 0)
    col = jax.lax.broadcasted_iota(jnp.int32, (n, n), 1)
    return jnp.where(row >= col, W, W.T)


#: from this many rows on, K^{-1} comes from LAPACK potri through a host callback. Below it,
#: XLA's triangular solves take microseconds while a callback costs tens of microseconds to
#: milliseconds (much more on a loaded machine, and it serialises vmapped chains under NUTS).
POTRI_FROM_ROWS = 512


def cholesky_inverse(L):
    """K^{-1} (n, n) from the lower Cholesky factor L of K."""
    n = L.shape[-1]
    if jax.default_backend() == "cpu" and L.dtype == jnp.float64 and n >= POTRI_FROM_ROWS:
        shape = jax.ShapeDtypeStruct(L.shape, L.dtype)
        lower = jax.pure_callback(_potri_lower_host, shape, L, vmap_method="sequential")
        return _symmetric_from_lower(lower)
    eye = jnp.eye(n, dtype=L.dtype)
    return jax.scipy.linalg.cho_solve((L, True), eye)


# ---------------------------------------------------------------------------------------------
# Log marginal likelihood of a covariance matrix, with the analytic gradient as its VJP
# ---------------------------------------------------------------------------------------------
def _cholesky(K):
    """Lower Cholesky factor of a symmetric K (NaN where it fails).

    Reads only the lower triangle, as LAPACK and scikit-learn do: ``jnp.linalg.cholesky`` would
    first average K with its transpose, a full extra pass over n^2 entries that changes nothing
    for the exactly symmetric matrices kernels build.
    """
    return jax.lax.linalg.cholesky(K, symmetrize_input=False)


def _lml_parts(K, y):
    L = _cholesky(K)
    alpha = jax.scipy.linalg.cho_solve((L, True), y)
    n_out = 1 if y.ndim == 1 else y.shape[1]
    value = (
        -0.5 * jnp.sum(y * alpha)
        - n_out * jnp.sum(jnp.log(jnp.diagonal(L)))
        - 0.5 * n_out * K.shape[0] * _LOG_2PI
    )
    return value, L, alpha, n_out


@jax.custom_vjp
def gaussian_log_likelihood_from_cov(K, y):
    """log N(y | 0, K) summed over the columns of y; K (n, n) must include the noise."""
    return _lml_parts(K, y)[0]


def _lml_fwd(K, y):
    value, L, alpha, _ = _lml_parts(K, y)
    return value, (L, alpha)


def _lml_bwd(residuals, g):
    L, alpha = residuals
    n_out = 1 if alpha.ndim == 1 else alpha.shape[1]
    # alpha alpha^T as a broadcast product (fused by XLA with the rest) when y is one column
    aat = alpha[:, None] * alpha[None, :] if alpha.ndim == 1 else alpha @ alpha.T
    dK = 0.5 * (aat - n_out * cholesky_inverse(L))  # R&W eq. 5.9
    return g * dK, -g * alpha  # d/dy of -y^T K^{-1} y / 2 is -alpha


gaussian_log_likelihood_from_cov.defvjp(_lml_fwd, _lml_bwd)


def _train_cov(kernel, X, noise, jitter):
    K = kernel(X)
    n = X.shape[0]
    scale = jnp.mean(jnp.diagonal(K)) + noise
    return K + (noise + jitter * scale) * jnp.eye(n, dtype=K.dtype)


@jax.jit
def _lml(kernel, X, y, noise, jitter):
    return gaussian_log_likelihood_from_cov(_train_cov(kernel, X, noise, jitter), y)


_lml_value_and_grad = jax.jit(jax.value_and_grad(_lml, argnums=(0, 3)))


def _check_kernel_dims(kernel: Kernel, d: int):
    if not isinstance(kernel, Kernel):
        raise TypeError(f"kernel must be a bayeskit.kernels.Kernel; got {type(kernel).__name__}")
    for name, value in kernel.hyperparameters.items():
        if name.split(".")[-1] == "lengthscale" and np.ndim(value) == 1 and np.size(value) != d:
            raise ValueError(
                f"kernel hyperparameter {name} has {np.size(value)} entries (ARD) but X has "
                f"{d} column(s); they must match"
            )


def _is_concrete(*trees) -> bool:
    return not any(isinstance(x, jax.core.Tracer) for t in trees for x in jax.tree_util.tree_leaves(t))


def _prepare(kernel, X, y, noise=None, *, single_output_for: str | None = None):
    """X (n, d) and y (n,) or (n, k), checked against each other and the kernel; a model that
    takes one output only names itself in ``single_output_for`` and gets y (n,)."""
    if not isinstance(kernel, Kernel):
        raise TypeError(f"kernel must be a bayeskit.kernels.Kernel; got {type(kernel).__name__}")
    X = as_inputs(X, "X")
    y = as_targets(y, X.shape[0], "y")
    if single_output_for is not None and y.ndim != 1:
        raise ValueError(f"y must be 1-D (n,) for {single_output_for}; got shape {y.shape}")
    _check_kernel_dims(kernel, X.shape[1])
    return X, y


def log_marginal_likelihood(kernel: Kernel, X, y, noise) -> jax.Array:
    """log p(y | X, kernel, noise) for the GP y = f(X) + N(0, noise) (R&W eq. 2.30).

    X: (n, d) or (n,); y: (n,) or (n, k) (k outputs sharing the kernel, summed); noise: the
    observation-noise variance (>= 0). Returns a scalar. Differentiable in ``kernel`` and
    ``noise`` (the gradient is R&W eq. 5.9). With concrete inputs a failed Cholesky is retried
    with jitter and a warning.
    """
    X, y = _prepare(kernel, X, y, noise)
    if _is_concrete(kernel, noise):
        noise = positive_scalar(noise, "noise", allow_zero=True)
        return escalate(lambda j: _lml(kernel, X, y, noise, j), what="k(X, X) + noise I")
    return _lml(kernel, X, y, noise, 0.0)


def log_marginal_likelihood_and_grad(kernel: Kernel, X, y, noise):
    """(value, (d value / d kernel, d value / d noise)); the kernel gradient is a Kernel pytree."""
    X, y = _prepare(kernel, X, y, noise)
    noise = positive_scalar(noise, "noise", allow_zero=True)
    return escalate(lambda j: _lml_value_and_grad(kernel, X, y, noise, j), what="k(X, X) + noise I")


# ---------------------------------------------------------------------------------------------
# Posterior
# ---------------------------------------------------------------------------------------------
class Posterior(NamedTuple):
    """What conditioning on (X, y) keeps: enough to predict anywhere in O(n^2) per point.

    L: (n, n) Cholesky factor of k(X, X) + noise I; alpha: (n,) or (n, k) = K^{-1} y.
    """

    kernel: Kernel
    X: jax.Array
    L: jax.Array
    alpha: jax.Array
    noise: jax.Array


@jax.jit
def _condition(kernel, X, y, noise, jitter):
    L = _cholesky(_train_cov(kernel, X, noise, jitter))
    alpha = jax.scipy.linalg.cho_solve((L, True), y)
    return L, alpha


@jax.jit
def _lml_from_factor(L, alpha, y):
    """log p(y) (R&W eq. 2.30) from the factor and weights :func:`posterior` already holds."""
    n_out = 1 if y.ndim == 1 else y.shape[1]
    return -0.5 * jnp.sum(y * alpha) - n_out * jnp.sum(jnp.log(jnp.diagonal(L))) - 0.5 * n_out * L.shape[0] * _LOG_2PI


def posterior(kernel: Kernel, X, y, noise) -> Posterior:
    """Condition the GP prior on data; X (n, d), y (n,) or (n, k), noise variance >= 0."""
    X, y = _prepare(kernel, X, y, noise)
    noise = positive_scalar(noise, "noise", allow_zero=True)
    L, alpha = escalate(lambda j: _condition(kernel, X, y, noise, j), what="k(X, X) + noise I")
    return Posterior(kernel, jnp.asarray(X), L, alpha, jnp.asarray(noise))


@partial(jax.jit, static_argnames=("full_cov",))
def _predict(post: Posterior, Xs, full_cov: bool):
    Ks = post.kernel(post.X, Xs)  # (n, m)
    mean = Ks.T @ post.alpha
    V = jax.scipy.linalg.solve_triangular(post.L, Ks, lower=True)
    if full_cov:
        cov = post.kernel(Xs) - V.T @ V
        return mean, cov
    var = post.kernel.diag(Xs) - jnp.sum(V * V, axis=0)
    return mean, jnp.maximum(var, 0.0)


def predict(post: Posterior, Xs, *, full_cov: bool = False):
    """Posterior mean (m,) or (m, k) of f at Xs (m, d) and its variance (m,) or covariance (m, m).

    The variance is clipped at zero: round-off can make it slightly negative near the data.
    """
    Xs = as_inputs(Xs, "X", dim=post.X.shape[1])
    return _predict(post, jnp.asarray(Xs), full_cov)


# ---------------------------------------------------------------------------------------------
# ML-II: maximise the log marginal likelihood over log-hyperparameters with L-BFGS-B
# ---------------------------------------------------------------------------------------------
class ML2Result(NamedTuple):
    kernel: Kernel
    noise: float
    log_marginal_likelihood: float
    n_evaluations: int
    jitter_evaluations: int


def fit_ml2(
    kernel: Kernel,
    X,
    y,
    noise,
    *,
    noise_fixed: bool = False,
    n_restarts: int = 0,
    bounds: tuple[float, float] = (1e-5, 1e5),
    noise_bounds: tuple[float, float] | None = None,
    seed: int = 0,
    maxiter: int = 15000,
    optimizer_options: dict | None = None,
) -> ML2Result:
    """Type-II maximum likelihood: argmax over hyperparameters of log p(y | X, theta).

    Every hyperparameter is optimised as its logarithm within ``bounds`` (scikit-learn's default
    box, 1e-5 to 1e5) by L-BFGS-B with the exact gradient (R&W eq. 5.9). The first run starts
    at the given values; each of ``n_restarts`` more starts at log-uniform random values inside
    the box (as scikit-learn does), drawn from ``numpy.random.default_rng(seed)``. Returns the
    best run. A Cholesky that fails during the search is retried with jitter; a single warning
    at the end counts how often. ``optimizer_options`` go to scipy's L-BFGS-B (e.g.
    ``{"ftol": 1e-12, "gtol": 1e-8}`` for composite kernels whose flat directions make the
    default tolerances stop early); the defaults are scikit-learn's.
    """
    X, y = _prepare(kernel, X, y, noise)
    noise = positive_scalar(noise, "noise", allow_zero=noise_fixed)
    if n_restarts < 0:
        raise ValueError(f"n_restarts must be >= 0; got {n_restarts}")
    leaves, treedef = jax.tree_util.tree_flatten(kernel)
    sizes = [int(np.size(v)) for v in leaves]
    shapes = [np.shape(v) for v in leaves]
    lo, hi = np.log(bounds[0]), np.log(bounds[1])
    nlo, nhi = np.log(noise_bounds) if noise_bounds is not None else (lo, hi)

    def unpack(theta):
        parts, i = [], 0
        for size, shape in zip(sizes, shapes):
            parts.append(np.exp(theta[i : i + size]).reshape(shape))
            i += size
        k = jax.tree_util.tree_unflatten(treedef, [p if p.shape else float(p) for p in parts])
        nz = noise if noise_fixed else float(np.exp(theta[i]))
        return k, nz

    theta0 = np.concatenate([np.log(np.ravel(np.asarray(v, dtype=float))) for v in leaves])
    box = [(lo, hi)] * theta0.size
    if not noise_fixed:
        theta0 = np.append(theta0, np.log(max(noise, np.exp(nlo))))
        box.append((nlo, nhi))
    theta0 = np.clip(theta0, [b[0] for b in box], [b[1] for b in box])
    counters = {"evals": 0, "jitter": 0}
    Xj, yj = jnp.asarray(X), jnp.asarray(y)

    def objective(theta):
        k, nz = unpack(theta)
        counters["evals"] += 1
        for jitter in DEFAULT_JITTER_LADDER:
            value, (gk, gn) = _lml_value_and_grad(k, Xj, yj, nz, jitter)
            if np.isfinite(value):
                break
        else:
            return np.inf, np.zeros_like(theta)
        counters["jitter"] += jitter > 0
        # chain rule to log-parameters: d/d log p = p * d/dp
        grads = [np.ravel(np.asarray(g) * np.asarray(v)) for g, v in zip(jax.tree_util.tree_leaves(gk), jax.tree_util.tree_leaves(k))]
        if not noise_fixed:
            grads.append([float(gn) * nz])
        grad = -np.concatenate(grads)
        return -float(value), grad

    rng = np.random.default_rng(seed)
    starts = [theta0] + [rng.uniform([b[0] for b in box], [b[1] for b in box]) for _ in range(n_restarts)]
    best = None
    for start in starts:
        res = scipy.optimize.minimize(
            objective, start, jac=True, method="L-BFGS-B", bounds=box,
            options={"maxiter": maxiter, **(optimizer_options or {})},
        )
        if np.isfinite(res.fun) and (best is None or res.fun < best.fun):
            best = res
    if best is None:
        raise np.linalg.LinAlgError("ML-II failed: the marginal likelihood was not finite at any start")
    if counters["jitter"]:
        warnings.warn(
            f"jitter was added to k(X, X) + noise I in {counters['jitter']} of "
            f"{counters['evals']} marginal-likelihood evaluations during ML-II",
            JitterWarning,
            stacklevel=2,
        )
    k, nz = unpack(best.x)
    return ML2Result(k, float(nz), -float(best.fun), counters["evals"], counters["jitter"])


def target_scaling(y, normalize: bool):
    """Mean and standard deviation (shape y.shape[1:]) that ``normalize_y`` divides out.

    Zeros and ones when ``normalize`` is off; a constant target keeps a scale of 1.
    """
    if not normalize:
        return np.zeros(y.shape[1:]), np.ones(y.shape[1:])
    std = y.std(axis=0)
    return y.mean(axis=0), np.where(std > 0, std, 1.0)


def finish_prediction(mean, var, y_mean, y_std, noise, *, return_std, return_cov, include_noise,
                      multi=False):
    """What a regressor's ``predict`` returns, from the posterior of f on the normalised scale.

    mean (m,) or (m, k); var (m,) or cov (m, m) (``return_cov``). Undoes ``normalize_y``, adds
    the noise variance with ``include_noise`` (a new y rather than f), and returns the mean
    alone, (mean, std) or (mean, cov); for k outputs std is (m, k) and cov (m, m, k).
    """
    mean = np.asarray(mean) * y_std + y_mean
    if not (return_std or return_cov):
        return mean
    var = np.asarray(var)
    if include_noise:
        var = var + (noise * np.eye(var.shape[0]) if return_cov else noise)
    if return_cov:
        return mean, (var[..., None] * y_std**2 if multi else var * y_std**2)
    std = np.sqrt(np.maximum(var, 0.0))
    return mean, (std[:, None] * y_std if multi else std * y_std)


# ---------------------------------------------------------------------------------------------
# scikit-learn-style estimator
# ---------------------------------------------------------------------------------------------
class GPRegressor:
    """Gaussian-process regression with the scikit-learn estimator interface.

    Parameters
    ----------
    kernel : Kernel, default ``RBF(lengthscale=1.0, variance=1.0)``
    noise : float, default 1e-2
        Observation-noise variance (not a standard deviation). With ``optimize=True`` it is
        fitted too unless ``noise_fixed=True``.
    optimize : bool
        Fit hyperparameters by ML-II in :meth:`fit` (``False`` keeps the given ones).
    n_restarts : int
        Extra ML-II starts at random log-uniform points inside ``bounds``.
    bounds : (low, high)
        Box for every hyperparameter (and the noise, unless ``noise_bounds``) during ML-II.
    normalize_y : bool
        Subtract the mean and divide by the standard deviation of y before fitting (as
        scikit-learn's option; predictions are returned on the original scale, and
        ``log_marginal_likelihood_`` refers to the normalised targets).
    seed : int
        Seed for the restart points.
    optimizer_options : dict, optional
        Options for scipy's L-BFGS-B during ML-II (see :func:`fit_ml2`).

    Attributes after :meth:`fit`: ``kernel_``, ``noise_``, ``log_marginal_likelihood_``,
    ``X_train_`` (n, d), ``y_train_`` (n,) or (n, k), ``posterior_``.
    """

    def __init__(
        self,
        kernel: Kernel | None = None,
        noise: float = 1e-2,
        *,
        optimize: bool = True,
        noise_fixed: bool = False,
        n_restarts: int = 0,
        bounds: tuple[float, float] = (1e-5, 1e5),
        noise_bounds: tuple[float, float] | None = None,
        normalize_y: bool = False,
        seed: int = 0,
        optimizer_options: dict | None = None,
    ):
        self.kernel = kernel if kernel is not None else RBF(lengthscale=1.0, variance=1.0)
        self.noise = noise
        self.optimize = optimize
        self.noise_fixed = noise_fixed
        self.n_restarts = n_restarts
        self.bounds = bounds
        self.noise_bounds = noise_bounds
        self.normalize_y = normalize_y
        self.seed = seed
        self.optimizer_options = optimizer_options

    def __repr__(self):
        fitted = f", kernel_={self.kernel_!r}, noise_={self.noise_:.4g}" if hasattr(self, "kernel_") else ""
        return f"GPRegressor(kernel={self.kernel!r}, noise={self.noise!r}, optimize={self.optimize}{fitted})"

    def fit(self, X, y) -> GPRegressor:
        """Fit to X (n, d) or (n,), y (n,) or (n, k); returns self."""
        X, y = _prepare(self.kernel, X, y, self.noise)
        positive_scalar(self.noise, "noise", allow_zero=not self.optimize or self.noise_fixed)
        self._y_mean, self._y_std = target_scaling(y, self.normalize_y)
        y_fit = (y - self._y_mean) / self._y_std
        if self.optimize:
            res = fit_ml2(
                self.kernel, X, y_fit, self.noise, noise_fixed=self.noise_fixed,
                n_restarts=self.n_restarts, bounds=self.bounds, noise_bounds=self.noise_bounds,
                seed=self.seed, optimizer_options=self.optimizer_options,
            )
            self.kernel_, self.noise_ = res.kernel, res.noise
        else:
            self.kernel_, self.noise_ = self.kernel, float(self.noise)
        self.X_train_, self.y_train_ = X, y
        self.posterior_ = posterior(self.kernel_, X, y_fit, self.noise_)
        # the same value log_marginal_likelihood() gives, from the factor just computed (saves a
        # second kernel matrix and Cholesky)
        self.log_marginal_likelihood_ = float(
            _lml_from_factor(self.posterior_.L, self.posterior_.alpha, jnp.asarray(y_fit))
        )
        return self

    def _check_fitted(self):
        if not hasattr(self, "posterior_"):
            raise RuntimeError("this GPRegressor is not fitted yet: call fit(X, y) first")

    def predict(self, X, return_std: bool = False, return_cov: bool = False, include_noise: bool = False):
        """Posterior predictive at X (m, d).

        Returns the mean (m,) or (m, k), and with ``return_std`` the standard deviation of the
        latent function f (m,) (or (m, k) for k outputs), with ``return_cov`` its covariance
        (m, m) (or (m, m, k)). ``include_noise=True`` adds the noise variance: the spread of a
        new noisy observation y instead of f.
        """
        self._check_fitted()
        if return_std and return_cov:
            raise ValueError("return_std and return_cov cannot both be True")
        mean, var = predict(self.posterior_, X, full_cov=return_cov)
        return finish_prediction(
            mean, var, self._y_mean, self._y_std, self.noise_, return_std=return_std,
            return_cov=return_cov, include_noise=include_noise, multi=self.y_train_.ndim == 2,
        )

    def sample_y(self, X, n_samples: int = 1, key=None) -> np.ndarray:
        """Draws of f at X (m, d) from the posterior: (m, n_samples), or (m, k, n_samples).

        ``key`` is a ``jax.random`` key (or an int seed); it is required so draws are
        reproducible.
        """
        self._check_fitted()
        return sample_posterior(self, X, n_samples, key)

    def log_marginal_likelihood(self, kernel: Kernel | None = None, noise: float | None = None) -> float:
        """LML of the training data under ``kernel`` / ``noise`` (default: the fitted ones)."""
        self._check_fitted()
        y_fit = (self.y_train_ - self._y_mean) / self._y_std
        return float(log_marginal_likelihood(
            kernel if kernel is not None else self.kernel_, self.X_train_, y_fit,
            noise if noise is not None else self.noise_,
        ))


def mvn_samples(key, mean, cov, n_samples: int, what: str = "posterior covariance"):
    """Draws (m, n_samples) from N(mean (m,), cov (m, m)) through a jittered Cholesky factor."""
    # Posterior covariances are often singular to round-off near the data, so a tiny relative
    # jitter is expected there and only jitter beyond 1e-8 x mean(diagonal) is warned about.
    L = escalate(lambda j: _jittered_cholesky(cov, j), ladder=SAMPLING_JITTER_LADDER, what=what,
                 quiet_up_to=1e-8)
    z = jax.random.normal(as_prng_key(key), (mean.shape[0], n_samples), dtype=mean.dtype)
    return mean[:, None] + L @ z


@jax.jit
def _jittered_cholesky(cov, jitter):
    scale = jnp.maximum(jnp.mean(jnp.diagonal(cov)), 1e-300)
    return jnp.linalg.cholesky(cov + jitter * scale * jnp.eye(cov.shape[0], dtype=cov.dtype))


def sample_posterior(model: GPRegressor, X, n_samples: int, key) -> np.ndarray:
    if int(n_samples) < 1:
        raise ValueError(f"n_samples must be >= 1; got {n_samples}")
    key = as_prng_key(key)
    mean, cov = predict(model.posterior_, X, full_cov=True)
    mean = jnp.asarray(mean)
    if mean.ndim == 1:
        draws = mvn_samples(key, mean, cov, int(n_samples))
        return np.asarray(draws) * model._y_std + model._y_mean
    keys = jax.random.split(key, mean.shape[1])
    cols = [np.asarray(mvn_samples(keys[j], mean[:, j], cov, int(n_samples))) for j in range(mean.shape[1])]
    return np.stack(cols, axis=1) * model._y_std[None, :, None] + model._y_mean[None, :, None]
