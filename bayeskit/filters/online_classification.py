"""Kalman filtering of last-layer weights for online learning on a non-stationary stream.

Titsias, Galashov, Rannen-Triki, Pascanu, Teh & Bornschein, *Kalman Filter for Online
Classification of Non-Stationary Data* (ICLR 2024). Fixed features phi(x) (D,) feed a linear
read-out W (D, K) whose posterior is tracked by a Kalman filter; w = vec(W) (P = D K, row-major,
w[d K + k] = W[d, k]). Logits f = W^T phi = J w with J = phi^T kron I_K (K, P).

Parameter drift (the paper's transition density, toward the prior)::

    w_t = mu_0 + gamma (w_{t-1} - mu_0) + sqrt(1 - gamma^2) eps_t,   eps_t ~ N(0, Sigma_0)
    predict:  m- = mu_0 + gamma (m - mu_0),   P- = gamma^2 P + (1 - gamma^2) Sigma_0

The prior N(mu_0, Sigma_0) is the stationary distribution: gamma = 1 never forgets (static Bayesian
learning), gamma < 1 forgets old data at rate gamma^2 per step and keeps the weights bounded.

Update with the label y_t:

* ``likelihood="gaussian"``: y ~ N(J w, noise_var I_K) (regression, or one-hot targets): the exact
  Kalman update, S = J P- J^T + noise_var I, K = P- J^T S^{-1}, Joseph form.
* ``likelihood="softmax"``: p(y = k | w) = softmax(J w)_k is not Gaussian. We replace its log by its
  second-order Taylor expansion at the predicted mean (a one-step Laplace / extended-Kalman
  update): with p = softmax(J m-), gradient g = onehot(y) - p and curvature Lam = diag(p) - p p^T,
  the Gaussian pseudo-likelihood gives (Woodbury with Lam possibly singular)::

      P = P- - P- J^T (I + Lam J P- J^T)^{-1} Lam J P-,    m = m- + P- J^T (I + Lam J P- J^T)^{-1} g

  which is one Newton step on the log-posterior from m- (exact for a quadratic log-likelihood).

Predictive probabilities: the logits are Gaussian, f ~ N(J m-, J P- J^T); we use the probit
(mean-field) approximation E[softmax(f)] ~ softmax(f_mean / sqrt(1 + pi/8 diag(f_cov))) (MacKay's
probit approximation, exact in the limit of vanishing variance, and the standard choice for K > 2).

Learning the forgetting coefficient online: gamma = sigmoid(theta); before the Kalman update at
step t, one optax step (Adam by default) on theta descends the negative one-step predictive
log-likelihood -log p(y_t | y_1..t-1, gamma), differentiated through the predict step (the
paper's online SGD on the transition coefficient). Drifting data make the older, more confident
weights predict worse, pushing gamma down; on stationary data forgetting only costs, pushing
gamma towards 1. Measured here: with the Gaussian likelihood the learned 1 - gamma is an order of
magnitude larger on a drifting stream than on a static one; with the softmax (Laplace) update the
one-step gradient barely separates them, because that update already takes large steps after
confident mistakes (its curvature p (1 - p) is small there), so forgetting buys little on the next
step. The filter still tracks drifting boundaries; only the value of gamma is uninformative there.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .. import _config  # noqa: F401  (float64)

__all__ = ["OnlineKalmanState", "OnlineKalmanResult", "init_state", "online_kalman_filter", "OnlineKalmanClassifier"]

_LOG_2PI = float(np.log(2.0 * np.pi))


class OnlineKalmanState(NamedTuple):
    """Posterior of vec(W): mean (P,), covariance (P, P); theta = logit(gamma); optimiser state."""

    mean: jax.Array
    cov: jax.Array
    theta: jax.Array
    opt_state: optax.OptState


class OnlineKalmanResult(NamedTuple):
    """Per-step outputs, each computed *before* that step's label was used (prequential)."""

    predictive: jax.Array  # (T, K): class probabilities (softmax) or predictive means (gaussian)
    predictive_variances: jax.Array  # (T, K): variances of the logits / outputs
    log_predictive: jax.Array  # (T,): log p(y_t | y_1..t-1) (probit-approximated for softmax)
    gammas: jax.Array  # (T,): the forgetting coefficient used for step t (after its gradient step)
    state: OnlineKalmanState  # final state


def _symmetrize(P):
    return 0.5 * (P + P.T)


def _jacobian(phi, n_outputs):
    return jnp.kron(phi[None, :], jnp.eye(n_outputs, dtype=phi.dtype))  # (K, D K)


def _predict(mean, cov, gamma, prior_mean, prior_cov):
    return (prior_mean + gamma * (mean - prior_mean),
            _symmetrize(gamma**2 * cov + (1.0 - gamma**2) * prior_cov))


def _output_moments(mean, cov, phi, n_outputs):
    J = _jacobian(phi, n_outputs)
    return J @ mean, _symmetrize(J @ cov @ J.T)


def _probit_probabilities(f_mean, f_cov):
    return jax.nn.softmax(f_mean / jnp.sqrt(1.0 + jnp.pi / 8.0 * jnp.diagonal(f_cov)))


def _log_predictive(mean, cov, phi, y, likelihood, n_outputs, noise_var):
    f_mean, f_cov = _output_moments(mean, cov, phi, n_outputs)
    if likelihood == "softmax":
        return jnp.log(_probit_probabilities(f_mean, f_cov)[y.astype(jnp.int32)])
    S = f_cov + noise_var * jnp.eye(n_outputs)
    L = jnp.linalg.cholesky(S)
    z = jax.scipy.linalg.solve_triangular(L, y - f_mean, lower=True)
    return -0.5 * z @ z - jnp.sum(jnp.log(jnp.diagonal(L))) - 0.5 * n_outputs * _LOG_2PI


def _update(mean, cov, phi, y, likelihood, n_outputs, noise_var):
    J = _jacobian(phi, n_outputs)
    if likelihood == "gaussian":
        R = noise_var * jnp.eye(n_outputs)
        S = _symmetrize(J @ cov @ J.T + R)
        gain = jax.scipy.linalg.cho_solve((jnp.linalg.cholesky(S), True), J @ cov).T
        I_KJ = jnp.eye(mean.shape[0]) - gain @ J
        return mean + gain @ (y - J @ mean), _symmetrize(I_KJ @ cov @ I_KJ.T + gain @ R @ gain.T)
    p = jax.nn.softmax(J @ mean)
    g = jax.nn.one_hot(y.astype(jnp.int32), n_outputs, dtype=mean.dtype) - p
    Lam = jnp.diag(p) - jnp.outer(p, p)
    PJt = cov @ J.T
    M = jnp.eye(n_outputs) + Lam @ J @ PJt  # (I + Lam J P- J^T)
    return mean + PJt @ jnp.linalg.solve(M, g), _symmetrize(cov - PJt @ jnp.linalg.solve(M, Lam @ PJt.T))


@partial(jax.jit, static_argnames=("likelihood", "n_outputs", "optimizer", "learn_gamma"))
def _scan(state, phis, ys, prior_mean, prior_cov, noise_var, likelihood, n_outputs, optimizer, learn_gamma):
    def objective(theta, mean, cov, phi, y):
        m_pred, P_pred = _predict(mean, cov, jax.nn.sigmoid(theta), prior_mean, prior_cov)
        return -_log_predictive(m_pred, P_pred, phi, y, likelihood, n_outputs, noise_var)

    def step(state, inputs):
        mean, cov, theta, opt_state = state
        phi, y = inputs
        # prequential: predict y_t with the current gamma before the label is used anywhere
        m_pred, P_pred = _predict(mean, cov, jax.nn.sigmoid(theta), prior_mean, prior_cov)
        f_mean, f_cov = _output_moments(m_pred, P_pred, phi, n_outputs)
        shown = _probit_probabilities(f_mean, f_cov) if likelihood == "softmax" else f_mean
        log_pred = -objective(theta, mean, cov, phi, y)
        if learn_gamma:
            grad = jax.grad(objective)(theta, mean, cov, phi, y)
            updates, opt_state = optimizer.update(grad, opt_state, theta)
            theta = optax.apply_updates(theta, updates)
            m_pred, P_pred = _predict(mean, cov, jax.nn.sigmoid(theta), prior_mean, prior_cov)
        mean, cov = _update(m_pred, P_pred, phi, y, likelihood, n_outputs, noise_var)
        return OnlineKalmanState(mean, cov, theta, opt_state), (shown, jnp.diagonal(f_cov), log_pred,
                                                                 jax.nn.sigmoid(theta))

    state, (shown, variances, log_preds, gammas) = jax.lax.scan(step, state, (phis, ys))
    return OnlineKalmanResult(shown, variances, log_preds, gammas, state)


def _gamma_to_theta(gamma):
    g = float(gamma)
    if not 0.0 < g <= 1.0:
        raise ValueError(f"gamma must be in (0, 1]; got {gamma}")
    # gamma = 1 exactly is a valid fixed value; as a learnable start it is pulled just inside (0, 1)
    g = min(g, 1.0 - 1e-12)
    return float(np.log(g) - np.log1p(-g))


def init_state(prior_mean, prior_cov, gamma: float, optimizer: optax.GradientTransformation) -> OnlineKalmanState:
    """The state before any data: the prior N(prior_mean (P,), prior_cov (P, P)) and logit(gamma)."""
    theta = jnp.asarray(_gamma_to_theta(gamma))
    return OnlineKalmanState(jnp.asarray(prior_mean, dtype=jnp.float64), jnp.asarray(prior_cov, dtype=jnp.float64),
                             theta, optimizer.init(theta))


def online_kalman_filter(state: OnlineKalmanState, phis, ys, *, prior_mean, prior_cov, n_outputs: int,
                         likelihood: str = "softmax", noise_var: float = 1.0,
                         optimizer: optax.GradientTransformation | None = None, learn_gamma: bool = True,
                         fixed_gamma: float | None = None) -> OnlineKalmanResult:
    """Functional core: run the filter over a stream phis (T, D), ys (T,) labels (softmax) or
    (T,) / (T, K) targets (gaussian), starting from ``state`` (see :func:`init_state`).

    With ``learn_gamma=False`` gamma stays sigmoid(state.theta) (or ``fixed_gamma`` if given;
    fixed_gamma = 1 gives exact static Bayesian updating).
    """
    if likelihood not in ("softmax", "gaussian"):
        raise ValueError(f"likelihood must be 'softmax' or 'gaussian'; got {likelihood!r}")
    phis = np.asarray(phis, dtype=np.float64)
    if phis.ndim != 2 or phis.shape[0] == 0 or not np.all(np.isfinite(phis)):
        raise ValueError(f"phis must be a finite (T, D) array of features with T >= 1; got shape {phis.shape}")
    T, D = phis.shape
    P = D * n_outputs
    if np.shape(state.mean) != (P,):
        raise ValueError(f"phis has D = {D} features but the state has {np.shape(state.mean)[0]} = D K weights (K = {n_outputs})")
    ys = np.asarray(ys)
    if likelihood == "softmax":
        if ys.shape != (T,) or not np.all(np.isfinite(ys)) or np.any(ys != np.round(ys)) \
                or ys.min() < 0 or ys.max() >= n_outputs:
            raise ValueError(f"labels must be (T,) = ({T},) integers in [0, {n_outputs}); got shape {ys.shape}")
        ys = ys.astype(np.int32)
    else:
        ys = ys.astype(np.float64).reshape(T, -1) if ys.ndim == 1 else ys.astype(np.float64)
        if ys.shape != (T, n_outputs) or not np.all(np.isfinite(ys)):
            raise ValueError(f"targets must be finite with shape (T, K) = ({T}, {n_outputs}); got {ys.shape}")
    noise = float(noise_var)
    if not np.isfinite(noise) or noise <= 0:
        raise ValueError(f"noise_var must be finite and > 0; got {noise_var}")
    optimizer = optax.adam(1e-2) if optimizer is None else optimizer
    if fixed_gamma is not None:
        theta = _gamma_to_theta(fixed_gamma)  # validates
        state = state._replace(theta=jnp.asarray(np.inf if float(fixed_gamma) == 1.0 else theta))
        learn_gamma = False
    return _scan(state, jnp.asarray(phis), jnp.asarray(ys), jnp.asarray(prior_mean, dtype=jnp.float64),
                 jnp.asarray(prior_cov, dtype=jnp.float64), noise, likelihood, int(n_outputs), optimizer,
                 bool(learn_gamma))


class OnlineKalmanClassifier:
    """Online (last-layer) classifier with parameter drift and a learned forgetting coefficient.

    n_features: D; n_classes: K (softmax) or the number of outputs (gaussian). prior_var: Sigma_0 =
    prior_var I (prior mean 0). gamma: the initial forgetting coefficient in (0, 1]. learn_gamma:
    adapt gamma online with ``gamma_optimizer`` (default ``optax.adam(1e-2)`` on logit(gamma)).
    likelihood: "softmax" (classification) or "gaussian" (regression with ``noise_var``).

    >>> clf = OnlineKalmanClassifier(3, 2)
    >>> clf.update([1.0, -0.5, 1.0], 1).predict_proba([1.0, -0.5, 1.0]).shape
    (1, 2)
    """

    def __init__(self, n_features: int, n_classes: int, *, prior_var: float = 10.0, gamma: float = 0.999,
                 learn_gamma: bool = True, gamma_optimizer: optax.GradientTransformation | None = None,
                 likelihood: str = "softmax", noise_var: float = 1.0):
        if int(n_features) < 1:
            raise ValueError(f"n_features must be >= 1; got {n_features}")
        if likelihood == "softmax" and int(n_classes) < 2:
            raise ValueError(f"n_classes must be >= 2 for classification; got {n_classes}")
        if likelihood == "gaussian" and int(n_classes) < 1:
            raise ValueError(f"n_classes (outputs) must be >= 1; got {n_classes}")
        if likelihood not in ("softmax", "gaussian"):
            raise ValueError(f"likelihood must be 'softmax' or 'gaussian'; got {likelihood!r}")
        if not np.isfinite(float(prior_var)) or float(prior_var) <= 0:
            raise ValueError(f"prior_var must be finite and > 0; got {prior_var}")
        self.n_features, self.n_classes = int(n_features), int(n_classes)
        self.likelihood, self.noise_var, self.learn_gamma = likelihood, float(noise_var), bool(learn_gamma)
        self.optimizer = optax.adam(1e-2) if gamma_optimizer is None else gamma_optimizer
        P = self.n_features * self.n_classes
        self.prior_mean = jnp.zeros(P)
        self.prior_cov = float(prior_var) * jnp.eye(P)
        self._fixed_gamma = None if learn_gamma else float(gamma)
        self.state = init_state(self.prior_mean, self.prior_cov, gamma, self.optimizer)
        self.history: list[OnlineKalmanResult] = []

    @property
    def gamma_(self) -> float:
        return 1.0 if self._fixed_gamma == 1.0 else float(jax.nn.sigmoid(self.state.theta))

    @property
    def coef_(self) -> np.ndarray:
        """Posterior mean of W (D, K)."""
        return np.asarray(self.state.mean).reshape(self.n_features, self.n_classes)

    def partial_fit(self, phis, labels) -> OnlineKalmanResult:
        """Filter a batch of the stream in order (phis (T, D), labels (T,)); returns the per-step
        prequential predictions, log predictive and gamma (also appended to ``history``)."""
        phis = np.atleast_2d(np.asarray(phis, dtype=np.float64))
        result = online_kalman_filter(self.state, phis, labels, prior_mean=self.prior_mean, prior_cov=self.prior_cov,
                                      n_outputs=self.n_classes, likelihood=self.likelihood,
                                      noise_var=self.noise_var, optimizer=self.optimizer,
                                      learn_gamma=self.learn_gamma, fixed_gamma=self._fixed_gamma)
        self.state = result.state
        self.history.append(result)
        return result

    def update(self, phi, label) -> OnlineKalmanClassifier:
        """One step of the stream: phi (D,), label (an int, or a target for the gaussian likelihood)."""
        label = np.asarray(label)
        self.partial_fit(np.asarray(phi, dtype=np.float64)[None, :], label.reshape(1, *label.shape))
        return self

    def _moments(self, phis):
        phis = np.atleast_2d(np.asarray(phis, dtype=np.float64))
        if phis.shape[1] != self.n_features or not np.all(np.isfinite(phis)):
            raise ValueError(f"phi must be finite with {self.n_features} features; got shape {phis.shape}")
        gamma = self.gamma_
        m, P = _predict(self.state.mean, self.state.cov, gamma, self.prior_mean, self.prior_cov)
        return jax.vmap(_output_moments, in_axes=(None, None, 0, None))(m, P, jnp.asarray(phis), self.n_classes)

    def predict_proba(self, phis) -> np.ndarray:
        """Class probabilities (n, K) for the next step (after the drift), probit approximation."""
        if self.likelihood != "softmax":
            raise ValueError("predict_proba needs likelihood='softmax'; use predict for regression")
        f_mean, f_cov = self._moments(phis)
        return np.asarray(jax.vmap(_probit_probabilities)(f_mean, f_cov))

    def predict(self, phis):
        """Most probable class (n,) (softmax), or the predictive mean (n, K) and variance (n, K)
        of the targets (gaussian)."""
        if self.likelihood == "softmax":
            return np.argmax(self.predict_proba(phis), axis=1)
        f_mean, f_cov = self._moments(phis)
        return np.asarray(f_mean), np.asarray(jnp.diagonal(f_cov, axis1=1, axis2=2) + self.noise_var)
