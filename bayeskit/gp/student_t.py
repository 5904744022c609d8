"""Student-t process regression as an inverse-gamma scale mixture of Gaussian processes.

Reference: H. Lee, E. Yun, H. Yang, J. Lee, *Scale Mixtures of Neural Network Gaussian
Processes* (ICLR 2022): put an inverse-gamma prior on the variance of the last layer
of an infinitely wide network (equivalently, on the scale of its NNGP kernel)::

    sigma^2 ~ InvGamma(a, b)                  (shape a, scale b: density ~ s^{-a-1} e^{-b/s})
    f | sigma^2 ~ GP(0, sigma^2 k)
    y | f, sigma^2 ~ N(f(X), sigma^2 noise I)  (the noise is scaled too, which keeps it conjugate)

Write K~ = k(X, X) + noise I (n, n) and beta = y^T K~^{-1} y. Integrating sigma^2 out gives
closed forms (the inverse-gamma case of the paper; see also Shah, Wilson & Ghahramani,
*Student-t Processes as Alternatives to Gaussian Processes*):

* marginal likelihood: y ~ MultivariateStudentT(dof 2a, location 0, shape (b / a) K~)::

    log p(y) = lgamma(a + n/2) - lgamma(a) - n log(2 pi b) / 2 - log|K~| / 2
               - (a + n/2) log(1 + beta / (2 b))

* posterior of the scale: sigma^2 | y ~ InvGamma(a + n/2, b + beta / 2);
* predictive at X*: f* | y ~ StudentT(dof 2a + n, location m*, scale^2
  (b + beta / 2) / (a + n/2) v*), with m*, v* the GP posterior mean and variance for kernel k
  and noise ``noise`` (add ``noise`` to v* for a new observation y*).

So the predictive mean is the GP's; its spread is the GP's rescaled by how surprising the data
were under the prior (beta / n against b / a), with heavier tails while n is small.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import scipy.optimize
import scipy.stats

from .. import _config  # noqa: F401  (float64)
from .._validation import positive_scalar
from ..kernels import RBF, Kernel
from ..linalg import DEFAULT_JITTER_LADDER, escalate
from .exact import _prepare as _prepare_data
from .exact import _train_cov
from .exact import posterior as gp_posterior
from .exact import predict as gp_predict

__all__ = [
    "StudentTProcessRegressor",
    "StudentTPredictive",
    "log_marginal_likelihood",
    "scale_posterior",
]

_LOG_2PI = float(np.log(2.0 * np.pi))


@jax.jit
def _lml(kernel, X, y, noise, a, b, jitter):
    K = _train_cov(kernel, X, noise, jitter)
    L = jnp.linalg.cholesky(K)
    v = jax.scipy.linalg.solve_triangular(L, y, lower=True)
    beta = jnp.sum(v * v)
    n = X.shape[0]
    return (
        jax.scipy.special.gammaln(a + 0.5 * n)
        - jax.scipy.special.gammaln(a)
        - 0.5 * n * (_LOG_2PI + jnp.log(b))
        - jnp.sum(jnp.log(jnp.diagonal(L)))
        - (a + 0.5 * n) * jnp.log1p(beta / (2.0 * b))
    )


_lml_value_and_grad = jax.jit(jax.value_and_grad(_lml, argnums=(0, 3)))


@jax.jit
def _beta(kernel, X, y, noise, jitter):
    L = jnp.linalg.cholesky(_train_cov(kernel, X, noise, jitter))
    v = jax.scipy.linalg.solve_triangular(L, y, lower=True)
    return jnp.sum(v * v)


def _prepare(kernel, X, y, noise, a, b):
    X, y = _prepare_data(kernel, X, y, single_output_for="the Student-t process")
    noise = positive_scalar(noise, "noise", allow_zero=True)
    a = positive_scalar(a, "a (inverse-gamma shape)")
    b = positive_scalar(b, "b (inverse-gamma scale)")
    return X, y, noise, a, b


def log_marginal_likelihood(kernel: Kernel, X, y, noise, a, b) -> jax.Array:
    """log p(y) of the Student-t process: multivariate t, dof 2a, shape (b / a)(K + noise I).

    kernel: Kernel; X: (n, d) or (n,); y: (n,); noise >= 0: noise variance relative to the
    scale sigma^2; a, b > 0: inverse-gamma shape and scale of sigma^2. Returns a scalar.
    (*Scale Mixtures of Neural Network Gaussian Processes*, the inverse-gamma scale prior.)
    """
    X, y, noise, a, b = _prepare(kernel, X, y, noise, a, b)
    return escalate(lambda j: _lml(kernel, X, y, noise, a, b, j), what="k(X, X) + noise I")


def scale_posterior(kernel: Kernel, X, y, noise, a, b) -> tuple[float, float]:
    """Shape and scale (a + n/2, b + y^T K~^{-1} y / 2) of the inverse-gamma posterior of sigma^2."""
    X, y, noise, a, b = _prepare(kernel, X, y, noise, a, b)
    beta = float(escalate(lambda j: _beta(kernel, X, y, noise, j), what="k(X, X) + noise I"))
    return a + 0.5 * X.shape[0], b + 0.5 * beta


class StudentTPredictive(NamedTuple):
    """Marginal predictive Student-t at each test input: location (m,), scale (m,), dof."""

    mean: np.ndarray
    scale: np.ndarray
    dof: float

    def interval(self, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        """Equal-tailed credible interval (lower (m,), upper (m,)) with probability ``level``."""
        if not 0 < level < 1:
            raise ValueError(f"level must be in (0, 1); got {level}")
        q = scipy.stats.t.ppf(0.5 + level / 2, self.dof)
        return self.mean - q * self.scale, self.mean + q * self.scale

    def logpdf(self, y) -> np.ndarray:
        """Log predictive density of values y (m,), one per test input."""
        return scipy.stats.t.logpdf(np.asarray(y, dtype=float), self.dof, loc=self.mean, scale=self.scale)

    @property
    def std(self) -> np.ndarray:
        """Standard deviation scale * sqrt(dof / (dof - 2)); infinite when dof <= 2."""
        if self.dof <= 2:
            return np.full_like(self.scale, np.inf)
        return self.scale * np.sqrt(self.dof / (self.dof - 2.0))


class StudentTProcessRegressor:
    """Student-t process regression (inverse-gamma scale mixture of a GP), scikit-learn style.

    Parameters
    ----------
    kernel : Kernel, default ``RBF()``
        The base kernel k (an NNGP kernel from :mod:`bayeskit.gp.nngp` gives the paper's model).
    noise : float
        Noise variance relative to the random scale sigma^2 (y = f + sigma * N(0, noise)).
    a, b : float
        Shape and scale of the inverse-gamma prior on sigma^2. a -> infinity with b / a fixed
        recovers the GP with kernel (b / a) k.
    optimize : bool
        Maximise the Student-t log marginal likelihood over the kernel hyperparameters and the
        noise (as logarithms, L-BFGS-B with JAX gradients); a and b stay fixed.

    Attributes after :meth:`fit`: ``kernel_``, ``noise_``, ``log_marginal_likelihood_``,
    ``posterior_shape_`` and ``posterior_scale_`` (the inverse-gamma posterior of sigma^2),
    ``dof_`` = 2a + n.
    """

    def __init__(
        self,
        kernel: Kernel | None = None,
        noise: float = 1e-2,
        a: float = 2.0,
        b: float = 2.0,
        *,
        optimize: bool = False,
        bounds: tuple[float, float] = (1e-5, 1e5),
        maxiter: int = 1000,
    ):
        self.kernel = kernel if kernel is not None else RBF()
        self.noise = noise
        self.a = a
        self.b = b
        self.optimize = optimize
        self.bounds = bounds
        self.maxiter = maxiter

    def __repr__(self):
        return (f"StudentTProcessRegressor(kernel={self.kernel!r}, noise={self.noise!r}, "
                f"a={self.a!r}, b={self.b!r})")

    def fit(self, X, y) -> StudentTProcessRegressor:
        """Condition on X (n, d) or (n,), y (n,); returns self."""
        X, y, noise, a, b = _prepare(self.kernel, X, y, self.noise, self.a, self.b)
        kernel = self.kernel
        if self.optimize:
            kernel, noise = self._optimize(X, y, noise, a, b)
        self.kernel_, self.noise_ = kernel, noise
        self.posterior_ = gp_posterior(kernel, X, y, noise)
        self.posterior_shape_, self.posterior_scale_ = scale_posterior(kernel, X, y, noise, a, b)
        self.dof_ = 2.0 * self.posterior_shape_
        self.log_marginal_likelihood_ = float(log_marginal_likelihood(kernel, X, y, noise, a, b))
        self.X_train_, self.y_train_ = X, y
        return self

    def _optimize(self, X, y, noise, a, b):
        leaves, treedef = jax.tree_util.tree_flatten(self.kernel)
        sizes = [int(np.size(v)) for v in leaves]
        shapes = [np.shape(v) for v in leaves]
        lo, hi = np.log(self.bounds[0]), np.log(self.bounds[1])

        def unpack(theta):
            parts, i = [], 0
            for size, shape in zip(sizes, shapes):
                parts.append(np.exp(theta[i : i + size]).reshape(shape))
                i += size
            k = jax.tree_util.tree_unflatten(treedef, [p if p.shape else float(p) for p in parts])
            return k, float(np.exp(theta[i]))

        theta0 = np.concatenate([np.log(np.ravel(np.asarray(v, float))) for v in leaves]
                                + [[np.log(max(noise, self.bounds[0]))]])
        theta0 = np.clip(theta0, lo, hi)
        Xj, yj = jnp.asarray(X), jnp.asarray(y)

        def objective(theta):
            k, nz = unpack(theta)
            for jitter in DEFAULT_JITTER_LADDER:
                value, (gk, gn) = _lml_value_and_grad(k, Xj, yj, nz, a, b, jitter)
                if np.isfinite(value):
                    break
            else:
                return np.inf, np.zeros_like(theta)
            grads = [np.ravel(np.asarray(g) * np.asarray(v))  # d/d log p = p d/dp
                     for g, v in zip(jax.tree_util.tree_leaves(gk), jax.tree_util.tree_leaves(k))]
            grads.append([float(gn) * nz])
            return -float(value), -np.concatenate(grads)

        res = scipy.optimize.minimize(objective, theta0, jac=True, method="L-BFGS-B",
                                      bounds=[(lo, hi)] * theta0.size,
                                      options={"maxiter": self.maxiter})
        if not np.isfinite(res.fun):
            raise np.linalg.LinAlgError("Student-t process fit failed: likelihood not finite")
        return unpack(res.x)

    def _check_fitted(self):
        if not hasattr(self, "posterior_"):
            raise RuntimeError("this StudentTProcessRegressor is not fitted yet: call fit(X, y) first")

    def predictive(self, X, include_noise: bool = False) -> StudentTPredictive:
        """The marginal Student-t predictive of f (or of a new y with ``include_noise``) at X
        (m, d): location = GP posterior mean, scale^2 = (b + beta/2) / (a + n/2) * GP variance,
        dof = 2a + n."""
        self._check_fitted()
        mean, var = gp_predict(self.posterior_, X)
        var = np.asarray(var) + (self.noise_ if include_noise else 0.0)
        factor = self.posterior_scale_ / self.posterior_shape_
        return StudentTPredictive(np.asarray(mean), np.sqrt(factor * var), self.dof_)

    def predict(self, X, return_scale: bool = False, include_noise: bool = False):
        """Predictive location (m,) at X; with ``return_scale`` the tuple (mean, scale, dof)."""
        pred = self.predictive(X, include_noise=include_noise)
        if return_scale:
            return pred.mean, pred.scale, pred.dof
        return pred.mean

    def credible_interval(self, X, level: float = 0.95, include_noise: bool = False):
        """Equal-tailed predictive interval (lower (m,), upper (m,)) at X with probability level."""
        return self.predictive(X, include_noise=include_noise).interval(level)

    def log_marginal_likelihood(self) -> float:
        """The Student-t log marginal likelihood of the training data at the fitted values."""
        self._check_fitted()
        return self.log_marginal_likelihood_
