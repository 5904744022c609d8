"""Variational Bayesian last layers (VBLL): regression, discriminative and generative classification heads.

*Variational Bayesian Last Layers* (Harrison, Willes, Snoek, ICLR 2024) keeps a network's
feature map phi(x) deterministic and puts a Gaussian variational posterior on the last layer
only. Because the last layer is linear in its weights, the expected log-likelihood under q is
available in closed form (exactly for regression, as a Jensen lower bound for softmax
classification), so training needs no sampling: the objective is

    loss = -(1/B) sum_{i in batch} E_q[log p(y_i | phi_i, W)]  (or its bound)
           + lambda * ( KL(q(W) || p(W)) - log p(Sigma) ),                lambda ~ 1/N,

with p(W) = N(0, s I) per output and p(Sigma) the inverse-Wishart noise prior (up to its
constant; see :func:`bayeskit.bll._gaussian.inverse_wishart_log_density`). The noise
covariance Sigma (diagonal) is a point estimate. With lambda = 1/N the loss is the negative
ELBO divided by N, which is what makes its optimum the exact Bayesian posterior in the linear-
Gaussian case (see ``tests/bll/test_vbll_exact.py``).

Heads (Flax NNX modules, parameters float32 unless ``dtype=jnp.float64`` is passed; the
inputs ``phi`` are cast to the head's dtype):

* :class:`VBLLRegression`: y = W phi + eps, eps ~ N(0, diag sigma^2); Gaussian predictive
  N(m_j^T phi, phi^T S_j phi + sigma_j^2).
* :class:`VBLLStudentTRegression`: the same with a variational Gamma posterior on the noise
  precision (normal-gamma family) and the Student-t predictive.
* :class:`VBLLDiscClassification`: logits z = W phi + eps, eps ~ N(0, diag sigma^2); Jensen
  bound on E log softmax; Monte-Carlo predictive.
* :class:`VBLLGenClassification`: phi | y = k ~ N(mu_k, Sigma) with q(mu_k) = N(mean_k, S_k)
  (diagonal); exact predictive softmax_k log N(phi | mean_k, S_k + Sigma) and the feature
  density as out-of-distribution score.

Shapes: features phi (n, d), regression targets y (n, k) or (n,), class labels y (n,) ints in
[0, C). ``regularization_weight`` is lambda; ``prior_scale``, ``wishart_scale`` and ``dof``
follow the ``vbll`` package (0.4.9) so that its models map 1:1 onto these heads.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from .._validation import as_prng_key
from . import _gaussian as G
from ._gaussian import WeightPosterior

__all__ = [
    "VBLLDiscClassification",
    "VBLLGenClassification",
    "VBLLModel",
    "VBLLRegression",
    "VBLLStudentTRegression",
    "gamma_kl",
    "max_probability",
    "predictive_entropy",
]

_LOG_2PI = math.log(2.0 * math.pi)


# ---------------------------------------------------------------------------------------------
# checks
# ---------------------------------------------------------------------------------------------
def _is_concrete(x) -> bool:
    return not isinstance(x, jax.core.Tracer)


def _positive_int(value, name: str) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}")
    return int(value)


def _nonneg_float(value, name: str, *, positive: bool = False) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number; got {value!r}") from None
    if not math.isfinite(v) or v < 0 or (positive and v == 0):
        raise ValueError(f"{name} must be finite and {'> 0' if positive else '>= 0'}; got {v}")
    return v


def _check_features(phi, d: int, dtype) -> jax.Array:
    phi = jnp.asarray(phi, dtype=dtype)
    if phi.ndim != 2 or phi.shape[1] != d:
        raise ValueError(f"phi (features) must have shape (n, {d}); got {phi.shape}")
    if phi.shape[0] == 0:
        raise ValueError("phi (features) is empty: at least one row is needed")
    if _is_concrete(phi) and not bool(jnp.all(jnp.isfinite(phi))):
        raise ValueError("phi (features) contains NaN or infinite values")
    return phi


def _check_regression_targets(y, n: int, k: int, dtype) -> jax.Array:
    y = jnp.asarray(y, dtype=dtype)
    if y.ndim == 1 and k == 1:
        y = y[:, None]
    if y.shape != (n, k):
        raise ValueError(f"y must have shape ({n}, {k})" + (f" or ({n},)" if k == 1 else "") + f"; got {y.shape}")
    if _is_concrete(y) and not bool(jnp.all(jnp.isfinite(y))):
        raise ValueError("y contains NaN or infinite values")
    return y


def _check_labels(y, n: int, num_classes: int) -> jax.Array:
    if _is_concrete(y):
        arr = np.asarray(y)
        if arr.shape != (n,):
            raise ValueError(f"y (class labels) must have shape ({n},); got {arr.shape}")
        if not np.issubdtype(arr.dtype, np.integer):
            if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
                raise TypeError("y (class labels) must be integers in [0, num_classes)")
        if arr.size and (arr.min() < 0 or arr.max() >= num_classes):
            raise ValueError(f"y (class labels) must lie in [0, {num_classes}); got range [{arr.min()}, {arr.max()}]")
    y = jnp.asarray(y)
    if y.shape != (n,):
        raise ValueError(f"y (class labels) must have shape ({n},); got {y.shape}")
    return y.astype(jnp.int32)


def _init_normal(key, shape, std, dtype):
    return std * jax.random.normal(key, shape, dtype=dtype)


# ---------------------------------------------------------------------------------------------
# scores shared by the classifiers
# ---------------------------------------------------------------------------------------------
def predictive_entropy(probs: jax.Array) -> jax.Array:
    """Entropy -sum_c p_c log p_c of predictive probabilities (n, C): (n,). High = uncertain."""
    probs = jnp.asarray(probs)
    return -jnp.sum(jnp.where(probs > 0, probs * jnp.log(jnp.where(probs > 0, probs, 1.0)), 0.0), axis=-1)


def max_probability(probs: jax.Array) -> jax.Array:
    """max_c p_c of predictive probabilities (n, C): (n,). Low = uncertain / out of distribution."""
    return jnp.max(jnp.asarray(probs), axis=-1)


# ---------------------------------------------------------------------------------------------
# a Gaussian last layer (shared by regression and discriminative classification)
# ---------------------------------------------------------------------------------------------
class _GaussianLastLayer(nnx.Module):
    """Holds q(W) (k outputs over d features) and a diagonal noise sigma^2 (k,); see _gaussian."""

    def __init__(self, in_features, out_features, *, regularization_weight, parameterization, cov_rank,
                 prior_variance, wishart_scale, dof, rngs, dtype, log_diag_init):
        self.in_features = _positive_int(in_features, "in_features")
        self.out_features = _positive_int(out_features, "out_features")
        G.check_parameterization(parameterization, cov_rank)
        self.parameterization = parameterization
        self.regularization_weight = _nonneg_float(regularization_weight, "regularization_weight")
        self.prior_variance = _nonneg_float(prior_variance, "prior_scale", positive=True)
        self.wishart_scale = _nonneg_float(wishart_scale, "wishart_scale")
        self.dof = _nonneg_float(dof, "dof")
        self.dtype = jnp.dtype(dtype)
        d, k = self.in_features, self.out_features
        keys = jax.random.split(rngs.params(), 3)
        # initial q: mean ~ N(0, 1/d) (unit-variance outputs for unit-variance features),
        # covariance about exp(2 log_diag_init) I with small random off-diagonal terms
        self.mean = nnx.Param(_init_normal(keys[0], (k, d), 1.0 / math.sqrt(d), self.dtype))
        self.log_diag = nnx.Param(jnp.full((k, d), log_diag_init, dtype=self.dtype))
        if parameterization == "dense":
            self.factor = nnx.Param(_init_normal(keys[1], (k, d, d), 1e-3 / d, self.dtype))
        elif parameterization == "lowrank":
            self.factor = nnx.Param(_init_normal(keys[1], (k, d, cov_rank), 1e-3 / d, self.dtype))
        else:
            self.factor = None
        self.noise_log_std = nnx.Param(jnp.zeros((k,), dtype=self.dtype))

    # -- the posterior and its moments -------------------------------------------------------
    def weight_posterior(self) -> WeightPosterior:
        """q(W) as a :class:`~bayeskit.bll._gaussian.WeightPosterior` (mean (k, d), ...)."""
        factor = None if self.factor is None else self.factor[...]
        return WeightPosterior(self.mean[...], self.log_diag[...], factor, self.parameterization)

    def weight_covariance(self) -> jax.Array:
        """S_j for every output j, (k, d, d)."""
        return G.covariance(self.weight_posterior())

    def noise_variance(self) -> jax.Array:
        """sigma_j^2, (k,)."""
        return jnp.exp(2.0 * self.noise_log_std[...])

    def linear_moments(self, phi) -> tuple[jax.Array, jax.Array]:
        """Mean (n, k) and variance (n, k) of W phi under q (without the noise)."""
        phi = _check_features(phi, self.in_features, self.dtype)
        q = self.weight_posterior()
        return phi @ q.mean.T, G.quad_form(q, phi)

    def regularizer(self) -> jax.Array:
        """KL(q(W) || N(0, s I)) - log p_IW(Sigma): the term multiplied by lambda in the loss."""
        return G.kl_to_isotropic(self.weight_posterior(), self.prior_variance) - G.inverse_wishart_log_density(
            self.noise_log_std[...], self.dof, self.wishart_scale
        )


class VBLLRegression(_GaussianLastLayer):
    """VBLL regression head: y = W phi + eps, q(w_j) = N(m_j, S_j), eps ~ N(0, diag(sigma^2)).

    Args:
        in_features: d, the feature width.
        out_features: k, the number of regression outputs.
        regularization_weight: lambda; 1/N (N = training-set size) makes the loss the
            negative ELBO over N.
        parameterization: ``"dense"`` (Cholesky), ``"diagonal"`` or ``"lowrank"`` (rank
            ``cov_rank`` plus diagonal) covariance of each w_j.
        prior_scale: the prior is w_j ~ N(0, (prior_scale / d) I)  (``vbll`` convention).
        wishart_scale, dof: the noise prior IW(Sigma | nu = dof, psi = wishart_scale I); for
            k = 1, sigma^2 ~ inverse-gamma(dof / 2, wishart_scale / 2).
        rngs: ``nnx.Rngs`` for the initial mean.
        dtype: parameter dtype, float32 by default (float64 for exactness checks).

    The training objective (:meth:`loss`) is the paper's closed-form regression objective
    (its regression section), per data point,

        E_q log N(y | W phi, Sigma) = sum_j [ log N(y_j | m_j^T phi, sigma_j^2) - phi^T S_j phi / (2 sigma_j^2) ],

    exact (not a bound) for a Gaussian likelihood; the predictive (:meth:`predict`) is
    N(m_j^T phi, phi^T S_j phi + sigma_j^2).
    """

    def __init__(self, in_features: int, out_features: int = 1, *, regularization_weight: float,
                 parameterization: str = "dense", prior_scale: float = 1.0, wishart_scale: float = 1e-2,
                 dof: float = 1.0, cov_rank: int | None = None, rngs: nnx.Rngs, dtype=jnp.float32):
        d = _positive_int(in_features, "in_features")
        super().__init__(d, out_features, regularization_weight=regularization_weight,
                         parameterization=parameterization, cov_rank=cov_rank,
                         prior_variance=_nonneg_float(prior_scale, "prior_scale", positive=True) / d,
                         wishart_scale=wishart_scale, dof=dof, rngs=rngs, dtype=dtype,
                         log_diag_init=-0.5 * math.log(d))

    def expected_log_likelihood(self, phi, y) -> jax.Array:
        """E_q log p(y_i | phi_i, W) for every row, (n,) (summed over the k outputs)."""
        mean, quad = self.linear_moments(phi)
        y = _check_regression_targets(y, mean.shape[0], self.out_features, self.dtype)
        log_std = self.noise_log_std[...]
        var = jnp.exp(2.0 * log_std)
        log_lik = -0.5 * _LOG_2PI - log_std - 0.5 * (y - mean) ** 2 / var
        return jnp.sum(log_lik - 0.5 * quad / var, axis=-1)

    def loss(self, phi, y) -> jax.Array:
        """The training objective, a scalar: -mean_i E_q log p(y_i | phi_i) + lambda * regularizer()."""
        return -jnp.mean(self.expected_log_likelihood(phi, y)) + self.regularization_weight * self.regularizer()

    def predict(self, phi) -> tuple[jax.Array, jax.Array]:
        """Predictive mean (n, k) and variance (n, k) of y: N(m^T phi, phi^T S phi + sigma^2)."""
        mean, quad = self.linear_moments(phi)
        return mean, quad + self.noise_variance()

    __call__ = predict

    def log_predictive(self, phi, y) -> jax.Array:
        """log p(y_i | phi_i, data) under the Gaussian predictive, summed over outputs: (n,)."""
        mean, var = self.predict(phi)
        y = _check_regression_targets(y, mean.shape[0], self.out_features, self.dtype)
        return jnp.sum(-0.5 * (_LOG_2PI + jnp.log(var) + (y - mean) ** 2 / var), axis=-1)

    def nll(self, phi, y) -> jax.Array:
        """Mean negative log predictive density, a scalar (the ``vbll`` package's validation loss)."""
        return -jnp.mean(self.log_predictive(phi, y))


def gamma_kl(shape, rate, prior_shape, prior_rate) -> jax.Array:
    """KL(Gamma(shape, rate) || Gamma(prior_shape, prior_rate)), elementwise (rate parameterisation):

        (a - a0) psi(a) - ln Gamma(a) + ln Gamma(a0) + a0 (ln b - ln b0) + a (b0 - b) / b.
    """
    from jax.scipy.special import digamma, gammaln

    return ((shape - prior_shape) * digamma(shape) - gammaln(shape) + gammaln(prior_shape)
            + prior_shape * (jnp.log(rate) - jnp.log(prior_rate)) + shape * (prior_rate - rate) / rate)


class VBLLStudentTRegression(_GaussianLastLayer):
    """VBLL regression with a variational noise posterior and a Student-t predictive.

    Model, per output j: noise precision tau_j ~ Gamma(a0, b0), weights w_j | tau_j ~
    N(0, (s / tau_j) I), y_j = w_j^T phi + N(0, 1 / tau_j). Variational family (normal-gamma,
    the conjugate form): q(tau_j) = Gamma(a_j, b_j), q(w_j | tau_j) = N(m_j, S_j / tau_j), S_j
    parameterised as in :class:`VBLLRegression`. The objective (:meth:`loss`) is again closed
    form, per data point,

        E_q log p(y | phi) = sum_j [ (psi(a_j) - log b_j - log 2 pi) / 2
                                     - (a_j / b_j) (y_j - m_j^T phi)^2 / 2 - phi^T S_j phi / 2 ],

    and the regulariser is E_q(tau) KL(q(W | tau) || p(W | tau)) + KL(q(tau) || p(tau)).
    Marginalising tau gives the Student-t predictive (:meth:`predict`)

        y_j | phi ~ t_{2 a_j}( m_j^T phi, (1 + phi^T S_j phi) b_j / a_j ).

    Because the family contains the exact posterior, with lambda = 1/N and frozen features the
    optimum is exact Bayesian linear regression with unknown noise (normal-gamma posterior).

    Args: as :class:`VBLLRegression`, except the noise prior, which is
    ``Gamma(noise_prior_shape, noise_prior_rate)`` on each tau_j (``vbll``'s ``tRegression``:
    shape = ``dof``, rate = 1 / ``wishart_scale``), and the weight prior, s = 2 prior_scale / d
    (``vbll``'s convention for this layer).
    """

    def __init__(self, in_features: int, out_features: int = 1, *, regularization_weight: float,
                 parameterization: str = "dense", prior_scale: float = 1.0, noise_prior_shape: float = 1.0,
                 noise_prior_rate: float = 0.01, cov_rank: int | None = None, rngs: nnx.Rngs, dtype=jnp.float32):
        d = _positive_int(in_features, "in_features")
        super().__init__(d, out_features, regularization_weight=regularization_weight,
                         parameterization=parameterization, cov_rank=cov_rank,
                         prior_variance=2.0 * _nonneg_float(prior_scale, "prior_scale", positive=True) / d,
                         wishart_scale=0.0, dof=0.0, rngs=rngs, dtype=dtype, log_diag_init=-0.5 * math.log(d))
        self.noise_prior_shape = _nonneg_float(noise_prior_shape, "noise_prior_shape", positive=True)
        self.noise_prior_rate = _nonneg_float(noise_prior_rate, "noise_prior_rate", positive=True)
        del self.noise_log_std  # the noise is a distribution here, not a point estimate
        k = self.out_features
        self.noise_log_shape = nnx.Param(jnp.full((k,), math.log(self.noise_prior_shape), dtype=self.dtype))
        self.noise_log_rate = nnx.Param(jnp.full((k,), math.log(self.noise_prior_rate), dtype=self.dtype))

    def noise_variance(self) -> jax.Array:
        """Posterior mean of the noise variance, E_q[1 / tau] = b / (a - 1) (inf where a <= 1), (k,)."""
        a, b = self.noise_posterior()
        return jnp.where(a > 1, b / jnp.where(a > 1, a - 1.0, 1.0), jnp.inf)

    def noise_posterior(self) -> tuple[jax.Array, jax.Array]:
        """(shape a (k,), rate b (k,)) of q(tau) = Gamma(a, b) over the noise precisions."""
        return jnp.exp(self.noise_log_shape[...]), jnp.exp(self.noise_log_rate[...])

    def expected_log_likelihood(self, phi, y) -> jax.Array:
        """E_q log p(y_i | phi_i, W, tau) for every row, (n,) (summed over the k outputs)."""
        from jax.scipy.special import digamma

        mean, quad = self.linear_moments(phi)
        y = _check_regression_targets(y, mean.shape[0], self.out_features, self.dtype)
        a, b = self.noise_posterior()
        e_log_tau = digamma(a) - jnp.log(b)
        return jnp.sum(0.5 * (e_log_tau - _LOG_2PI) - 0.5 * (a / b) * (y - mean) ** 2 - 0.5 * quad, axis=-1)

    def regularizer(self) -> jax.Array:
        """E_q(tau) KL(q(W | tau) || p(W | tau)) + KL(q(tau) || p(tau))."""
        q = self.weight_posterior()
        a, b = self.noise_posterior()
        d, s = self.in_features, self.prior_variance
        # E_tau KL(N(m, S/tau) || N(0, s/tau I)) = 0.5 [E tau ||m||^2 / s + tr S / s - d + d log s - log|S|]
        kl_w = 0.5 * jnp.sum((a / b) * jnp.sum(q.mean**2, axis=-1) / s + G.trace(q) / s - d + d * jnp.log(s)
                             - G.logdet(q))
        return kl_w + jnp.sum(gamma_kl(a, b, self.noise_prior_shape, self.noise_prior_rate))

    def loss(self, phi, y) -> jax.Array:
        """The training objective, a scalar: -mean_i E_q log p(y_i | phi_i) + lambda * regularizer()."""
        return -jnp.mean(self.expected_log_likelihood(phi, y)) + self.regularization_weight * self.regularizer()

    def predict(self, phi) -> tuple[jax.Array, jax.Array, jax.Array]:
        """Student-t predictive: (df (k,), location (n, k), scale (n, k)), scale^2 = (1 + phi^T S phi) b / a."""
        mean, quad = self.linear_moments(phi)
        a, b = self.noise_posterior()
        return 2.0 * a, mean, jnp.sqrt((1.0 + quad) * b / a)

    __call__ = predict

    def predictive_variance(self, phi) -> jax.Array:
        """Variance of the Student-t predictive, (n, k): scale^2 df / (df - 2) (inf where df <= 2)."""
        df, _, scale = self.predict(phi)
        return jnp.where(df > 2, scale**2 * df / jnp.where(df > 2, df - 2.0, 1.0), jnp.inf)

    def log_predictive(self, phi, y) -> jax.Array:
        """log p(y_i | phi_i, data) under the Student-t predictive, summed over outputs: (n,)."""
        from jax.scipy.stats import t as student_t

        df, loc, scale = self.predict(phi)
        y = _check_regression_targets(y, loc.shape[0], self.out_features, self.dtype)
        return jnp.sum(student_t.logpdf(y, df, loc, scale), axis=-1)

    def nll(self, phi, y) -> jax.Array:
        """Mean negative log predictive density, a scalar."""
        return -jnp.mean(self.log_predictive(phi, y))


class VBLLDiscClassification(_GaussianLastLayer):
    """Discriminative VBLL classifier: logits z = W phi + eps, eps ~ N(0, diag(sigma^2)), p(y|z) = softmax(z)_y.

    Arguments as :class:`VBLLRegression` with k = ``num_classes`` outputs; here the prior is
    w_c ~ N(0, (2 prior_scale / d) I) (``vbll`` convention) and ``wishart_scale`` defaults to 1.

    Training objective (:meth:`loss`): the paper's Jensen bound for the softmax,

        E_q log softmax(z)_y >= m_y^T phi - log sum_c exp(m_c^T phi + (phi^T S_c phi + sigma_c^2) / 2),

    which follows from E log sum exp(z) <= log sum E exp(z) and the Gaussian moment generating
    function. Predictive (:meth:`predict_proba`): Monte-Carlo average of softmax(z) over
    z ~ N(m^T phi, diag(phi^T S phi + sigma^2)); :meth:`predict_proba_bound` gives the
    closed-form lower bounds exp(bound_c) on each class probability instead.
    """

    def __init__(self, in_features: int, num_classes: int, *, regularization_weight: float,
                 parameterization: str = "dense", prior_scale: float = 1.0, wishart_scale: float = 1.0,
                 dof: float = 1.0, cov_rank: int | None = None, rngs: nnx.Rngs, dtype=jnp.float32):
        d = _positive_int(in_features, "in_features")
        if _positive_int(num_classes, "num_classes") < 2:
            raise ValueError(f"num_classes must be >= 2; got {num_classes}")
        super().__init__(d, num_classes, regularization_weight=regularization_weight,
                         parameterization=parameterization, cov_rank=cov_rank,
                         prior_variance=2.0 * _nonneg_float(prior_scale, "prior_scale", positive=True) / d,
                         wishart_scale=wishart_scale, dof=dof, rngs=rngs, dtype=dtype,
                         log_diag_init=-math.log(d))

    @property
    def num_classes(self) -> int:
        return self.out_features

    def logit_moments(self, phi) -> tuple[jax.Array, jax.Array]:
        """Mean (n, C) and variance (n, C) of the logits z = W phi + eps under q."""
        mean, quad = self.linear_moments(phi)
        return mean, quad + self.noise_variance()

    def _bound_all_classes(self, phi) -> jax.Array:
        mean, var = self.logit_moments(phi)
        return mean - jax.nn.logsumexp(mean + 0.5 * var, axis=-1, keepdims=True)

    def log_prob_bound(self, phi, y) -> jax.Array:
        """The Jensen lower bound on E_q log p(y_i | phi_i) for every row, (n,)."""
        bound = self._bound_all_classes(phi)
        y = _check_labels(y, bound.shape[0], self.num_classes)
        return jnp.take_along_axis(bound, y[:, None], axis=-1)[:, 0]

    def loss(self, phi, y) -> jax.Array:
        """The training objective, a scalar: -mean_i bound_i + lambda * regularizer()."""
        return -jnp.mean(self.log_prob_bound(phi, y)) + self.regularization_weight * self.regularizer()

    def predict_proba_bound(self, phi) -> jax.Array:
        """Closed-form lower bounds exp(bound_c) on the predictive probabilities, (n, C) (rows sum <= 1)."""
        return jnp.exp(self._bound_all_classes(phi))

    def predict_proba_from_draws(self, phi, normal_draws) -> jax.Array:
        """Monte-Carlo predictive (n, C) from given standard-normal draws eps (S, n, C):
        (1/S) sum_s softmax(mean + sqrt(var) * eps_s)."""
        mean, var = self.logit_moments(phi)
        eps = jnp.asarray(normal_draws, dtype=self.dtype)
        if eps.ndim != 3 or eps.shape[1:] != mean.shape:
            raise ValueError(f"normal_draws must have shape (S, {mean.shape[0]}, {mean.shape[1]}); got {eps.shape}")
        return jnp.mean(jax.nn.softmax(mean + jnp.sqrt(var) * eps, axis=-1), axis=0)

    def predict_proba(self, phi, *, key, num_samples: int = 100) -> jax.Array:
        """Monte-Carlo predictive probabilities (n, C) with ``num_samples`` logit draws (explicit ``key``)."""
        key = as_prng_key(key)
        num_samples = _positive_int(num_samples, "num_samples")
        phi = _check_features(phi, self.in_features, self.dtype)
        eps = jax.random.normal(key, (num_samples, phi.shape[0], self.num_classes), dtype=self.dtype)
        return self.predict_proba_from_draws(phi, eps)


class VBLLGenClassification(nnx.Module):
    """Generative VBLL classifier: phi | y = c ~ N(mu_c, Sigma), q(mu_c) = N(mean_c, diag(s_c^2)), uniform p(y).

    Args:
        in_features: d; num_classes: C (>= 2); regularization_weight: lambda (about 1/N).
        prior_scale: the prior mu_c ~ N(0, prior_scale I) (``vbll`` convention: not scaled by d).
        wishart_scale, dof: the noise prior IW(Sigma | nu = dof, psi = wishart_scale I) on the
            diagonal d x d feature-noise covariance Sigma = diag(exp(2 noise_log_std)).
        rngs, dtype: as :class:`VBLLRegression`.

    Only diagonal q(mu_c) is implemented (as in the ``vbll`` package). With
    lp_c(phi) = log N(phi | mean_c, diag(s_c^2) + Sigma), the closed-form predictive is
    p(y = c | phi) = softmax_c lp_c(phi) (Bayes' rule with the class means marginalised), and
    the training objective (:meth:`loss`) is the paper's generative-classification bound

        E_q log p(y | phi) >= log N(phi | mean_y, Sigma) - tr(Sigma^-1 diag(s_y^2)) / 2 - log sum_c exp lp_c(phi)

    (the uniform log p(y) cancels between numerator and normaliser). The out-of-distribution
    score is the feature density log p(phi) = log (1/C) sum_c exp lp_c(phi)
    (:meth:`log_feature_density`; low = out of distribution).
    """

    def __init__(self, in_features: int, num_classes: int, *, regularization_weight: float,
                 prior_scale: float = 1.0, wishart_scale: float = 1.0, dof: float = 1.0,
                 rngs: nnx.Rngs, dtype=jnp.float32):
        self.in_features = _positive_int(in_features, "in_features")
        self.num_classes = _positive_int(num_classes, "num_classes")
        if self.num_classes < 2:
            raise ValueError(f"num_classes must be >= 2; got {num_classes}")
        self.regularization_weight = _nonneg_float(regularization_weight, "regularization_weight")
        self.prior_variance = _nonneg_float(prior_scale, "prior_scale", positive=True)
        self.wishart_scale = _nonneg_float(wishart_scale, "wishart_scale")
        self.dof = _nonneg_float(dof, "dof")
        self.dtype = jnp.dtype(dtype)
        d, c = self.in_features, self.num_classes
        key = rngs.params()
        self.mean = nnx.Param(_init_normal(key, (c, d), 0.1, self.dtype))
        self.log_diag = nnx.Param(jnp.full((c, d), -1.0, dtype=self.dtype))
        self.noise_log_std = nnx.Param(jnp.zeros((d,), dtype=self.dtype))

    def mean_posterior(self) -> WeightPosterior:
        """q(mu) as a diagonal :class:`~bayeskit.bll._gaussian.WeightPosterior` (mean (C, d))."""
        return WeightPosterior(self.mean[...], self.log_diag[...], None, "diagonal")

    def noise_variance(self) -> jax.Array:
        """Diagonal of Sigma, (d,)."""
        return jnp.exp(2.0 * self.noise_log_std[...])

    def class_log_likelihoods(self, phi) -> jax.Array:
        """lp_c(phi_i) = log N(phi_i | mean_c, diag(s_c^2) + Sigma), (n, C)."""
        phi = _check_features(phi, self.in_features, self.dtype)
        var = jnp.exp(2.0 * self.log_diag[...]) + self.noise_variance()  # (C, d)
        diff2 = (phi[:, None, :] - self.mean[...][None, :, :]) ** 2
        return -0.5 * jnp.sum(_LOG_2PI + jnp.log(var) + diff2 / var, axis=-1)

    def log_prob_bound(self, phi, y) -> jax.Array:
        """The lower bound on E_q log p(y_i | phi_i) for every row, (n,)."""
        lp = self.class_log_likelihoods(phi)
        phi = _check_features(phi, self.in_features, self.dtype)
        y = _check_labels(y, phi.shape[0], self.num_classes)
        mean_y = self.mean[...][y]  # (n, d)
        s2_y = jnp.exp(2.0 * self.log_diag[...])[y]
        log_std = self.noise_log_std[...]
        noise_var = jnp.exp(2.0 * log_std)
        log_n = -0.5 * jnp.sum(_LOG_2PI + 2.0 * log_std + (phi - mean_y) ** 2 / noise_var, axis=-1)
        return log_n - 0.5 * jnp.sum(s2_y / noise_var, axis=-1) - jax.nn.logsumexp(lp, axis=-1)

    def regularizer(self) -> jax.Array:
        """KL(q(mu) || N(0, s I)) - log p_IW(Sigma)."""
        return G.kl_to_isotropic(self.mean_posterior(), self.prior_variance) - G.inverse_wishart_log_density(
            self.noise_log_std[...], self.dof, self.wishart_scale
        )

    def loss(self, phi, y) -> jax.Array:
        """The training objective, a scalar: -mean_i bound_i + lambda * regularizer()."""
        return -jnp.mean(self.log_prob_bound(phi, y)) + self.regularization_weight * self.regularizer()

    def predict_proba(self, phi) -> jax.Array:
        """Exact predictive p(y = c | phi_i) = softmax_c lp_c(phi_i), (n, C)."""
        return jax.nn.softmax(self.class_log_likelihoods(phi), axis=-1)

    __call__ = predict_proba

    def log_feature_density(self, phi) -> jax.Array:
        """log p(phi_i) = log (1/C) sum_c N(phi_i | mean_c, diag(s_c^2) + Sigma), (n,): the OOD score."""
        return jax.nn.logsumexp(self.class_log_likelihoods(phi), axis=-1) - math.log(self.num_classes)


class VBLLModel(nnx.Module):
    """A feature network followed by a VBLL head: ``loss(x, y) = head.loss(features(x), y)``.

    The features (float32 for an :class:`~bayeskit.bll.features.MLPFeatures`) are cast to the
    head's dtype. :func:`bayeskit.bll.train.train_vbll` trains both parts jointly (weight decay
    on the features only: the last layer is regularised by its KL term).
    """

    def __init__(self, features: nnx.Module, head: nnx.Module):
        self.features = features
        self.head = head

    def head_inputs(self, x) -> jax.Array:
        """phi(x), (n, d), in the head's dtype."""
        return jnp.asarray(self.features(x), dtype=self.head.dtype)

    def loss(self, x, y) -> jax.Array:
        return self.head.loss(self.head_inputs(x), y)
