"""Sparse variational GP regression with the collapsed bound of Titsias (2009).

Reference: M. Titsias, *Variational Learning of Inducing Variables in Sparse Gaussian
Processes* (AISTATS 2009). With m inducing inputs Z (m, d), K_mm = k(Z, Z), K_mn = k(Z, X) and
the Nystrom matrix Q_nn = K_nm K_mm^{-1} K_mn, the optimal (collapsed) evidence lower bound is
(Titsias, eq. 9)::

    ELBO = log N(y | 0, Q_nn + noise I) - tr(K_nn - Q_nn) / (2 noise)   <=   log p(y)

Nothing of size n x n is ever formed. With L L^T = K_mm, A = L^{-1} K_mn / sqrt(noise) (m, n),
B = I_m + A A^T = L_B L_B^T and c = L_B^{-1} A y / sqrt(noise) (m,), the matrix determinant
lemma and the Woodbury identity give::

    log N(y | 0, Q_nn + noise I) = -n log(2 pi) / 2 - sum log diag L_B - n log(noise) / 2
                                   - y^T y / (2 noise) + c^T c / 2
    tr(K_nn - Q_nn) / noise      = sum_i k(x_i, x_i) / noise - tr(A A^T)

so one bound costs O(n m^2) time and O(n m) memory. The optimal q(u) = N(mu_u, S_u) over the
inducing values u = f(Z) (Titsias, eq. 10) is, with Sigma = K_mm + K_mn K_nm / noise = L B L^T::

    mu_u = K_mm Sigma^{-1} K_mn y / noise = L L_B^{-T} c
    S_u  = K_mm Sigma^{-1} K_mm          = L B^{-1} L^T

and the predictive of f at X* (m*, d) is p(f* | u) averaged over that q(u)::

    mean(X*) = K_*m L^{-T} L_B^{-T} c
    var(X*)  = k(x*, x*) - |L^{-1} K_m*|^2 + |L_B^{-1} L^{-1} K_m*|^2

When K_mm needs jitter (relative to its mean diagonal, escalated with a warning as everywhere
in bayeskit), the bound stays a valid lower bound: it is then exactly Titsias's bound for the
inducing variables u + e, e ~ N(0, jitter I), noisy views of f(Z), with the same jittered K_mm
used in both terms.
"""

from __future__ import annotations

import warnings
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import scipy.optimize

from .. import _config  # noqa: F401  (float64)
from .._validation import as_inputs, as_targets, positive_scalar
from ..kernels import RBF, Kernel
from ..linalg import SAMPLING_JITTER_LADDER, JitterWarning, escalate
from .exact import _check_kernel_dims, finish_prediction, target_scaling

__all__ = [
    "SparseGPRegressor",
    "SparsePosterior",
    "SparseFitResult",
    "sparse_elbo",
    "sparse_posterior",
    "sparse_predict",
    "fit_sparse",
    "select_inducing",
]

_LOG_2PI = float(np.log(2.0 * np.pi))

#: Inducing inputs of a smooth kernel are often close together, so k(Z, Z) is singular to
#: round-off as a rule rather than by mistake. Jitter up to this (relative to the mean diagonal)
#: is added silently; it keeps the bound valid (see the module docstring) and moves it by a
#: negligible amount. More than this is warned about.
QUIET_JITTER = 1e-8
_LADDER = SAMPLING_JITTER_LADDER  # 0, 1e-12, ..., 1e-4


# ---------------------------------------------------------------------------------------------
# Inducing-point selection
# ---------------------------------------------------------------------------------------------
def select_inducing(X, m: int, *, method: str = "kmeans++", seed: int = 0) -> np.ndarray:
    """Pick m rows of X (n, d) as initial inducing inputs; returns Z (m, d).

    ``method="kmeans++"``: k-means++ seeding (Arthur & Vassilvitskii, *k-means++: The
    Advantages of Careful Seeding*): the first row uniformly at random, each next row with
    probability proportional to its squared distance to the nearest row chosen so far, so the
    points spread over the data. ``method="random"``: a uniformly random subset.

    Both are *nested*: for a given seed the first m rows chosen are the same whatever the
    requested m, so Z_m is a subset of Z_{m+1} (the ELBO can then only grow with m).
    Draws come from ``numpy.random.default_rng(seed)``.
    """
    X = as_inputs(X, "X")
    n = X.shape[0]
    if not isinstance(m, (int, np.integer)) or isinstance(m, bool) or not 1 <= m <= n:
        raise ValueError(f"m (number of inducing points) must be an integer in [1, n={n}]; got {m!r}")
    rng = np.random.default_rng(seed)
    if method == "random":
        return X[rng.permutation(n)[:m]].copy()
    if method != "kmeans++":
        raise ValueError(f"method must be 'kmeans++' or 'random'; got {method!r}")
    chosen = [int(rng.integers(n))]
    nearest = np.sum((X - X[chosen[0]]) ** 2, axis=1)
    for _ in range(1, m):
        u = rng.random()  # one uniform per step keeps the sequence nested in m
        total = nearest.sum()
        if total <= 0:  # every row coincides with a chosen one: fall back to unused rows
            unused = np.setdiff1d(np.arange(n), chosen)
            nxt = int(unused[min(int(u * unused.size), unused.size - 1)])
        else:
            nxt = int(np.searchsorted(np.cumsum(nearest), u * total, side="right"))
            nxt = min(nxt, n - 1)
        chosen.append(nxt)
        nearest = np.minimum(nearest, np.sum((X - X[nxt]) ** 2, axis=1))
    return X[chosen].copy()


# ---------------------------------------------------------------------------------------------
# The collapsed bound and its pieces
# ---------------------------------------------------------------------------------------------
def _kmm(kernel, Z, jitter):
    # k(Z, Z) without White contributions (inducing values are noise-free function values),
    # plus jitter relative to the mean diagonal.
    Kmm = kernel(Z, Z)
    scale = jnp.mean(jnp.diagonal(Kmm))
    return Kmm + jitter * scale * jnp.eye(Z.shape[0], dtype=Kmm.dtype)


def _factors(kernel, X, y, Z, noise, jitter):
    """L (m, m), A (m, n), L_B (m, m), c (m,) as in the module docstring."""
    m = Z.shape[0]
    L = jnp.linalg.cholesky(_kmm(kernel, Z, jitter))
    Kmn = kernel(Z, X)
    sd = jnp.sqrt(noise)
    # L^{-1} once (m x m), then a matrix product: on the CPU a triangular solve against n
    # right-hand sides (and its backward pass) is several times slower than a matmul.
    L_inv = jax.scipy.linalg.solve_triangular(L, jnp.eye(m, dtype=L.dtype), lower=True)
    A = (L_inv / sd) @ Kmn
    B = jnp.eye(m, dtype=A.dtype) + A @ A.T
    LB = jnp.linalg.cholesky(B)
    c = jax.scipy.linalg.solve_triangular(LB, A @ y, lower=True) / sd
    return L, A, LB, c


@jax.jit
def _elbo(kernel, X, y, Z, noise, jitter):
    L, A, LB, c = _factors(kernel, X, y, Z, noise, jitter)
    n = X.shape[0]
    log_gauss = (
        -0.5 * n * _LOG_2PI
        - jnp.sum(jnp.log(jnp.diagonal(LB)))
        - 0.5 * n * jnp.log(noise)
        - 0.5 * jnp.sum(y * y) / noise
        + 0.5 * jnp.sum(c * c)
    )
    trace = jnp.sum(kernel.diag(X)) / noise - jnp.sum(A * A)  # tr(K_nn - Q_nn) / noise
    return log_gauss - 0.5 * trace


_elbo_value_and_grad = jax.jit(jax.value_and_grad(_elbo, argnums=(0, 3, 4)))


def _prepare(kernel, X, y, Z):
    if not isinstance(kernel, Kernel):
        raise TypeError(f"kernel must be a bayeskit.kernels.Kernel; got {type(kernel).__name__}")
    X = as_inputs(X, "X")
    y = as_targets(y, X.shape[0], "y")
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D (n,) for the sparse GP; got shape {y.shape}")
    Z = as_inputs(Z, "Z", dim=X.shape[1])
    _check_kernel_dims(kernel, X.shape[1])
    return X, y, Z


def sparse_elbo(kernel: Kernel, X, y, Z, noise) -> jax.Array:
    """Titsias's collapsed lower bound on log p(y) (eq. 9 of the paper); a scalar.

    kernel: a :class:`~bayeskit.kernels.Kernel`; X: (n, d) or (n,); y: (n,); Z: (m, d) inducing
    inputs; noise: observation-noise variance > 0. Costs O(n m^2). The bound equals the exact
    log marginal likelihood when Z = X and is never above it.
    """
    X, y, Z = _prepare(kernel, X, y, Z)
    noise = positive_scalar(noise, "noise")
    return escalate(lambda j: _elbo(kernel, X, y, Z, noise, j), ladder=_LADDER, what="k(Z, Z)",
                    quiet_up_to=QUIET_JITTER)


class SparsePosterior(NamedTuple):
    """Everything prediction needs; O(m^2) to store.

    Z: (m, d) inducing inputs; L: (m, m) Cholesky factor of k(Z, Z) (+ jitter); LB: (m, m)
    Cholesky factor of B = I + A A^T; c: (m,); q_mean: (m,) and q_cov: (m, m), the optimal
    q(u) = N(q_mean, q_cov) over u = f(Z); jitter: the relative jitter used in k(Z, Z).
    """

    kernel: Kernel
    Z: jax.Array
    L: jax.Array
    LB: jax.Array
    c: jax.Array
    q_mean: jax.Array
    q_cov: jax.Array
    noise: jax.Array
    jitter: float


@jax.jit
def _condition(kernel, X, y, Z, noise, jitter):
    L, A, LB, c = _factors(kernel, X, y, Z, noise, jitter)
    W = jax.scipy.linalg.solve_triangular(LB, L.T, lower=True)  # L_B^{-1} L^T
    q_mean = L @ jax.scipy.linalg.solve_triangular(LB.T, c, lower=False)
    q_cov = W.T @ W  # L B^{-1} L^T
    return L, LB, c, q_mean, q_cov


def sparse_posterior(kernel: Kernel, X, y, Z, noise) -> SparsePosterior:
    """Optimal q(u) and the factors for prediction (Titsias eq. 10); O(n m^2)."""
    X, y, Z = _prepare(kernel, X, y, Z)
    noise = positive_scalar(noise, "noise")
    used = {}

    def compute(j):
        used["jitter"] = j
        return _condition(kernel, X, y, Z, noise, j)

    L, LB, c, q_mean, q_cov = escalate(compute, ladder=_LADDER, what="k(Z, Z)", quiet_up_to=QUIET_JITTER)
    return SparsePosterior(kernel, jnp.asarray(Z), L, LB, c, q_mean, q_cov, jnp.asarray(noise), used["jitter"])


@partial(jax.jit, static_argnames=("full_cov",))
def _predict(post: SparsePosterior, Xs, full_cov: bool):
    Kms = post.kernel(post.Z, Xs)
    V = jax.scipy.linalg.solve_triangular(post.L, Kms, lower=True)  # L^{-1} K_m*
    W = jax.scipy.linalg.solve_triangular(post.LB, V, lower=True)  # L_B^{-1} L^{-1} K_m*
    mean = W.T @ post.c
    if full_cov:
        return mean, post.kernel(Xs) - V.T @ V + W.T @ W
    var = post.kernel.diag(Xs) - jnp.sum(V * V, axis=0) + jnp.sum(W * W, axis=0)
    return mean, jnp.maximum(var, 0.0)


def sparse_predict(post: SparsePosterior, Xs, *, full_cov: bool = False):
    """Predictive mean (m*,) of f at Xs (m*, d) and its variance (m*,) or covariance (m*, m*)."""
    Xs = as_inputs(Xs, "X", dim=post.Z.shape[1])
    return _predict(post, jnp.asarray(Xs), full_cov)


# ---------------------------------------------------------------------------------------------
# Fitting: hyperparameters, noise and inducing inputs by L-BFGS-B on the bound
# ---------------------------------------------------------------------------------------------
class SparseFitResult(NamedTuple):
    kernel: Kernel
    noise: float
    Z: np.ndarray
    elbo: float
    n_evaluations: int
    jitter_evaluations: int
    converged: bool
    message: str


def fit_sparse(
    kernel: Kernel,
    X,
    y,
    Z,
    noise,
    *,
    optimize_inducing: bool = True,
    noise_fixed: bool = False,
    bounds: tuple[float, float] = (1e-5, 1e5),
    noise_bounds: tuple[float, float] | None = (1e-6, 1e5),
    maxiter: int = 1000,
) -> SparseFitResult:
    """Maximise the collapsed bound over kernel hyperparameters, noise and (optionally) Z.

    Kernel hyperparameters and the noise are optimised as logarithms inside ``bounds`` /
    ``noise_bounds``; Z (m, d) is optimised unconstrained. scipy's L-BFGS-B does the search
    with JAX gradients of the bound. Each evaluation climbs the jitter ladder on k(Z, Z) until
    the bound is finite, starting from the rung the previous evaluation needed (so the search
    does not pay for failed factorisations again and again); one warning at the end reports
    jitter beyond ``QUIET_JITTER`` x mean(diagonal).
    """
    X, y, Z = _prepare(kernel, X, y, Z)
    noise = positive_scalar(noise, "noise")
    leaves, treedef = jax.tree_util.tree_flatten(kernel)
    sizes = [int(np.size(v)) for v in leaves]
    shapes = [np.shape(v) for v in leaves]
    lo, hi = np.log(bounds[0]), np.log(bounds[1])
    nlo, nhi = np.log(noise_bounds) if noise_bounds is not None else (lo, hi)
    n_kernel = sum(sizes)

    def unpack(theta):
        parts, i = [], 0
        for size, shape in zip(sizes, shapes):
            parts.append(np.exp(theta[i : i + size]).reshape(shape))
            i += size
        k = jax.tree_util.tree_unflatten(treedef, [p if p.shape else float(p) for p in parts])
        if noise_fixed:
            nz = noise
        else:
            nz = float(np.exp(theta[i]))
            i += 1
        z = theta[i:].reshape(Z.shape) if optimize_inducing else Z
        return k, nz, z

    theta0 = [np.log(np.ravel(np.asarray(v, dtype=float))) for v in leaves]
    box = [(lo, hi)] * n_kernel
    if not noise_fixed:
        theta0.append([np.log(noise)])
        box.append((nlo, nhi))
    if optimize_inducing:
        theta0.append(np.ravel(Z))
        box += [(None, None)] * Z.size
    theta0 = np.concatenate(theta0)
    low = np.array([b[0] if b[0] is not None else -np.inf for b in box])
    high = np.array([b[1] if b[1] is not None else np.inf for b in box])
    theta0 = np.clip(theta0, low, high)
    counters = {"evals": 0, "jitter": 0, "rung": 0}
    Xj, yj = jnp.asarray(X), jnp.asarray(y)

    def objective(theta):
        k, nz, z = unpack(theta)
        counters["evals"] += 1
        zj = jnp.asarray(z)
        for rung in range(counters["rung"], len(_LADDER)):
            value, (gk, gz, gn) = _elbo_value_and_grad(k, Xj, yj, zj, nz, _LADDER[rung])
            if np.isfinite(value):
                break
        else:
            return np.inf, np.zeros_like(theta)
        counters["rung"] = rung
        counters["jitter"] += _LADDER[rung] > QUIET_JITTER
        # chain rule to log-parameters: d/d log p = p * d/dp
        grads = [
            np.ravel(np.asarray(g) * np.asarray(v))
            for g, v in zip(jax.tree_util.tree_leaves(gk), jax.tree_util.tree_leaves(k))
        ]
        if not noise_fixed:
            grads.append([float(gn) * nz])
        if optimize_inducing:
            grads.append(np.ravel(np.asarray(gz)))
        grad = -np.concatenate(grads)
        if not np.all(np.isfinite(grad)):
            return np.inf, np.zeros_like(theta)
        return -float(value), grad

    res = scipy.optimize.minimize(
        objective, theta0, jac=True, method="L-BFGS-B", bounds=box, options={"maxiter": maxiter}
    )
    if not np.isfinite(res.fun):
        raise np.linalg.LinAlgError("sparse GP fit failed: the bound was not finite at the start")
    if counters["jitter"]:
        warnings.warn(
            f"jitter above {QUIET_JITTER:g} x mean(diagonal) was added to k(Z, Z) in "
            f"{counters['jitter']} of {counters['evals']} bound evaluations while fitting the "
            f"sparse GP (largest {_LADDER[counters['rung']]:g})",
            JitterWarning,
            stacklevel=2,
        )
    k, nz, z = unpack(res.x)
    return SparseFitResult(
        k, float(nz), np.array(z, dtype=np.float64), -float(res.fun), counters["evals"],
        counters["jitter"], bool(res.success), str(res.message),
    )


# ---------------------------------------------------------------------------------------------
# scikit-learn-style estimator
# ---------------------------------------------------------------------------------------------
class SparseGPRegressor:
    """Sparse variational GP regression (Titsias's collapsed bound), scikit-learn style.

    Parameters
    ----------
    kernel : Kernel, default ``RBF()``
    n_inducing : int
        Number m of inducing points (clipped to n). Cost per bound evaluation O(n m^2).
    noise : float
        Initial (or, with ``noise_fixed``, fixed) observation-noise variance.
    optimize : bool
        Maximise the bound over hyperparameters, noise and (with ``optimize_inducing``) Z.
    inducing_init : {"kmeans++", "random"}
        How Z starts: :func:`select_inducing` on the training inputs.
    Z : array (m, d), optional
        Explicit initial inducing inputs (overrides ``n_inducing`` and ``inducing_init``).
    normalize_y : bool
        Standardise y before fitting; predictions come back on the original scale and
        ``elbo_`` refers to the standardised targets.
    seed : int
        Seed of the inducing-point selection.

    Attributes after :meth:`fit`: ``kernel_``, ``noise_``, ``inducing_points_`` (m, d),
    ``elbo_`` (the bound at the fitted values), ``posterior_`` (:class:`SparsePosterior`, with
    the optimal q(u)), ``fit_result_`` (or None without optimisation).
    """

    def __init__(
        self,
        kernel: Kernel | None = None,
        n_inducing: int = 50,
        noise: float = 1e-2,
        *,
        optimize: bool = True,
        optimize_inducing: bool = True,
        noise_fixed: bool = False,
        inducing_init: str = "kmeans++",
        Z=None,
        bounds: tuple[float, float] = (1e-5, 1e5),
        noise_bounds: tuple[float, float] | None = (1e-6, 1e5),
        normalize_y: bool = False,
        maxiter: int = 1000,
        seed: int = 0,
    ):
        self.kernel = kernel if kernel is not None else RBF()
        self.n_inducing = n_inducing
        self.noise = noise
        self.optimize = optimize
        self.optimize_inducing = optimize_inducing
        self.noise_fixed = noise_fixed
        self.inducing_init = inducing_init
        self.Z = Z
        self.bounds = bounds
        self.noise_bounds = noise_bounds
        self.normalize_y = normalize_y
        self.maxiter = maxiter
        self.seed = seed

    def __repr__(self):
        fitted = f", elbo_={self.elbo_:.6g}" if hasattr(self, "elbo_") else ""
        return (f"SparseGPRegressor(kernel={self.kernel!r}, n_inducing={self.n_inducing}, "
                f"noise={self.noise!r}, optimize={self.optimize}{fitted})")

    def fit(self, X, y) -> SparseGPRegressor:
        """Fit to X (n, d) or (n,), y (n,); returns self."""
        X = as_inputs(X, "X")
        y = as_targets(y, X.shape[0], "y")
        if y.ndim != 1:
            raise ValueError(f"y must be 1-D (n,) for SparseGPRegressor; got shape {y.shape}")
        positive_scalar(self.noise, "noise")
        if self.Z is not None:
            Z = as_inputs(self.Z, "Z", dim=X.shape[1])
        else:
            m = self.n_inducing
            if not isinstance(m, (int, np.integer)) or isinstance(m, bool) or m < 1:
                raise ValueError(f"n_inducing must be a positive integer; got {m!r}")
            Z = select_inducing(X, min(int(m), X.shape[0]), method=self.inducing_init, seed=self.seed)
        self._y_mean, self._y_std = target_scaling(y, self.normalize_y)
        y_fit = (y - self._y_mean) / self._y_std
        if self.optimize:
            res = fit_sparse(
                self.kernel, X, y_fit, Z, self.noise, optimize_inducing=self.optimize_inducing,
                noise_fixed=self.noise_fixed, bounds=self.bounds, noise_bounds=self.noise_bounds,
                maxiter=self.maxiter,
            )
            self.kernel_, self.noise_, Z = res.kernel, res.noise, res.Z
            self.fit_result_ = res
        else:
            _check_kernel_dims(self.kernel, X.shape[1])
            self.kernel_, self.noise_ = self.kernel, float(self.noise)
            self.fit_result_ = None
        self.inducing_points_ = np.asarray(Z)
        self.posterior_ = sparse_posterior(self.kernel_, X, y_fit, Z, self.noise_)
        self.elbo_ = float(sparse_elbo(self.kernel_, X, y_fit, Z, self.noise_))
        self.n_features_in_ = X.shape[1]
        return self

    def predict(self, X, return_std: bool = False, return_cov: bool = False, include_noise: bool = False):
        """Predictive mean (m,) at X (m, d); with ``return_std`` also the sd (m,) of f (or of a
        new y with ``include_noise``); with ``return_cov`` the covariance (m, m) instead."""
        if not hasattr(self, "posterior_"):
            raise RuntimeError("this SparseGPRegressor is not fitted yet: call fit(X, y) first")
        if return_std and return_cov:
            raise ValueError("return_std and return_cov cannot both be True")
        mean, var = sparse_predict(self.posterior_, X, full_cov=return_cov)
        return finish_prediction(mean, var, self._y_mean, self._y_std, self.noise_, return_std=return_std,
                                 return_cov=return_cov, include_noise=include_noise)
