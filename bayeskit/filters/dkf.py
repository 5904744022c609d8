"""The discriminative Kalman filter (DKF), and a simulated neural-decoding task to try it on.

Reference: *A Discriminative Approach to Bayesian Filtering with Applications to Human Neural
Decoding* (M. C. Burkhart; the same filter is in *The discriminative Kalman filter for Bayesian
filtering with nonlinear and nongaussian observation models*, eqs. 2.1-2.7 there).

Model. The hidden state z_t (d,) is a stationary linear-Gaussian process with mean m::

    z_t - m = A (z_{t-1} - m) + w_t,   w_t ~ N(0, Gamma)        (``process_cov``)
    p(z_t) = N(m, S),                   S = A S A^T + Gamma      (``stationary_cov``)

and, instead of a generative model p(x_t | z_t) of the observation x_t (m,), the filter uses a
*discriminative* one, learned by regression of states on observations::

    p(z_t | x_t) ~ N(f(x_t), Q(x_t))                             (``observation_state_cov``)

Update. By Bayes' rule p(x_t | z_t) = p(z_t | x_t) p(x_t) / p(z_t), so

    p(z_t | x_{1:t}) ∝ p(z_t | x_{1:t-1}) p(z_t | x_t) / p(z_t),

a product of two Gaussians divided by a third. With the filtered N(mu_{t-1}, Sigma_{t-1}) and
the prediction nu_t = m + A (mu_{t-1} - m), M_t = A Sigma_{t-1} A^T + Gamma, it is the Gaussian
(in information form; the paper's eq. 2.7 has m = 0)::

    Sigma_t^{-1} = M_t^{-1} + Q(x_t)^{-1} - S^{-1}
    Sigma_t^{-1} mu_t = M_t^{-1} nu_t + Q(x_t)^{-1} f(x_t) - S^{-1} m

Read Lambda_t = Q(x_t)^{-1} - S^{-1} as the precision of the Gaussian likelihood in z_t that
the regression implies. At t = 0 the prediction is the stationary prior (m, S), so the first
filtered moments are exactly (f(x_0), Q(x_0)).

Robust fallback. Lambda_t is a valid (possibly flat) likelihood precision only when it is
positive semi-definite; a regressor that is less certain than the prior in some direction
(Q(x) larger than S there) makes it indefinite, and then the division by p(z_t) can even make
Sigma_t^{-1} indefinite. In those steps the DKF falls back to treating N(f(x_t), Q(x_t)) itself
as the likelihood of z_t, i.e. it drops the -S^{-1} term from *both* lines::

    Sigma_t^{-1} = M_t^{-1} + Q(x_t)^{-1},   Sigma_t^{-1} mu_t = M_t^{-1} nu_t + Q(x_t)^{-1} f(x_t)

This is an ordinary Kalman update with f(x_t) as a direct measurement of z_t with noise
Q(x_t): always positive definite, and its mean and covariance come from one and the same
Gaussian density. (The author's reference code instead replaces Q by (Q^{-1} + S^{-1})^{-1}
and keeps the exact formulas. That gives the same covariance, but it adds
Sigma_t S^{-1} (f(x_t) - m) to the mean: it weights f(x_t) as if the regression were more
precise than its own Q says.) When to fall back is the ``fallback`` option:

* ``"likelihood"`` (default; the paper's rule, "exact when Q(x)^{-1} - S^{-1} is positive
  definite"): when Lambda_t has an eigenvalue below -1e-9 x the largest eigenvalue of
  Q(x_t)^{-1}, i.e. is not positive semi-definite up to round-off. Semi-definite rather than
  definite, so that an uninformative observation (Q = S, f = m: Lambda = 0) leaves the
  prediction untouched, as Bayes' rule says it should.
* ``"posterior"``: only when the exact Sigma_t^{-1} is not positive definite (its smallest
  eigenvalue below 1e-9 x the largest eigenvalue of M_t^{-1} + Q(x_t)^{-1}), i.e. only when the
  exact formula cannot give a covariance at all.

Every step uses Cholesky factors: M_t^{-1} nu_t, Q^{-1} f and the filtered moments are
Cholesky solves; the precision matrices themselves have to be formed (information form) and
come from the factors too. The recursion runs in one jitted ``lax.scan``; the result reports
which steps used the fallback.
"""

from __future__ import annotations

from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg

from .. import _config  # noqa: F401  (float64)
from .._validation import as_inputs, as_prng_key
from .regressors import (
    GPMeanRegressor,
    HeldOutGaussianRegressor,
    MLPRegressor,
    NadarayaWatsonRegressor,
    as_states,
)

__all__ = [
    "DKFResult",
    "DiscriminativeKalmanFilter",
    "StationaryLinearDynamics",
    "discriminative_kalman_filter",
    "dkf_update",
    "fit_stationary_dynamics",
    "normalised_rmse",
    "simulate_cursor",
]

REGRESSORS = ("gp", "nadaraya-watson", "mlp")
FALLBACK_RULES = ("likelihood", "posterior")
_RTOL = 1e-9


class StationaryLinearDynamics(NamedTuple):
    """z_t - m = A (z_{t-1} - m) + N(0, Gamma), stationary: p(z_t) = N(m, S), S = A S A^T + Gamma.

    transition: (d, d) A, spectral radius < 1; process_cov: (d, d) Gamma; stationary_cov: (d, d)
    S; state_mean: (d,) m.
    """

    transition: jax.Array
    process_cov: jax.Array
    stationary_cov: jax.Array
    state_mean: jax.Array


class DKFResult(NamedTuple):
    """Filtered and predicted moments of the discriminative Kalman filter, and the fallback log."""

    means: jax.Array  # (T, d): mu_t, mean of p(z_t | x_0..t)
    covariances: jax.Array  # (T, d, d): Sigma_t
    predicted_means: jax.Array  # (T, d): nu_t, mean of p(z_t | x_0..t-1) (m at t = 0)
    predicted_covariances: jax.Array  # (T, d, d): M_t (S at t = 0)
    used_fallback: jax.Array  # (T,) bool: the robust update was used at step t
    n_fallback: jax.Array  # (): how many steps used it


# ---------------------------------------------------------------------------------------------
# State dynamics by least squares
# ---------------------------------------------------------------------------------------------
def fit_stationary_dynamics(z) -> StationaryLinearDynamics:
    """Learn A, Gamma, S and m from a training sequence of states z (T, d) (or (T,)).

    m is the mean of z; A minimises sum_t |(z_t - m) - A (z_{t-1} - m)|^2 (least squares on
    consecutive centred states, ``numpy.linalg.lstsq``); Gamma is the mean outer product of its
    residuals (the maximum-likelihood estimate given A); S solves the discrete Lyapunov
    equation S = A S A^T + Gamma (``scipy.linalg.solve_discrete_lyapunov``), the covariance
    under which the learned process is stationary (eq. 2.1 of the Neural Computation paper).
    Raises ValueError when the learned A is not stable (spectral radius >= 1).
    """
    z = np.asarray(z, dtype=np.float64)
    z = as_states(z, z.shape[0] if z.ndim else 0, "z")
    T, d = z.shape
    if T < d + 2:
        raise ValueError(f"z needs more than d + 1 = {d + 1} rows to learn the dynamics; got {T}")
    state_mean = z.mean(axis=0)
    zc = z - state_mean
    A = np.linalg.lstsq(zc[:-1], zc[1:], rcond=None)[0].T
    radius = np.max(np.abs(np.linalg.eigvals(A)))
    if radius >= 1:
        raise ValueError(f"the learned transition A has spectral radius {radius:.4f} >= 1: the states do not look "
                         "stationary, so the stationary covariance S does not exist")
    residuals = zc[1:] - zc[:-1] @ A.T
    process_cov = residuals.T @ residuals / residuals.shape[0]
    process_cov = 0.5 * (process_cov + process_cov.T)
    S = scipy.linalg.solve_discrete_lyapunov(A, process_cov)
    return StationaryLinearDynamics(A, process_cov, 0.5 * (S + S.T), state_mean)


def _check_matrix(name: str, M: np.ndarray, d: int, *, definite: bool):
    if M.shape != (d, d):
        raise ValueError(f"{name} must have shape ({d}, {d}); got {M.shape}")
    if not np.all(np.isfinite(M)):
        raise ValueError(f"{name} contains NaN or infinite values")
    if not np.allclose(M, M.T, rtol=1e-8, atol=1e-12 * max(1.0, np.abs(M).max())):
        raise ValueError(f"{name} must be symmetric; got max asymmetry {np.abs(M - M.T).max():.3g}")
    eig = np.linalg.eigvalsh(0.5 * (M + M.T))
    if (eig.min() <= 0) if definite else (eig.min() < -1e-10 * max(1.0, eig.max())):
        kind = "positive definite" if definite else "positive semi-definite"
        raise ValueError(f"{name} must be {kind}; its smallest eigenvalue is {eig.min():.3g}")


def _validate_dynamics(dynamics: StationaryLinearDynamics) -> StationaryLinearDynamics:
    if not isinstance(dynamics, StationaryLinearDynamics):
        raise TypeError(f"dynamics must be a StationaryLinearDynamics; got {type(dynamics).__name__}")
    A, G, S, m = (np.asarray(v, dtype=np.float64) for v in dynamics)
    if m.ndim != 1:
        raise ValueError(f"state_mean must be a vector (d,); got shape {m.shape}")
    d = m.shape[0]
    if A.shape != (d, d) or not np.all(np.isfinite(A)):
        raise ValueError(f"transition must be a finite ({d}, {d}) matrix; got shape {A.shape}")
    if not np.all(np.isfinite(m)):
        raise ValueError("state_mean contains NaN or infinite values")
    _check_matrix("process_cov", G, d, definite=False)
    _check_matrix("stationary_cov", S, d, definite=True)
    return StationaryLinearDynamics(A, G, S, m)


# ---------------------------------------------------------------------------------------------
# The update and the filter (pure functions)
# ---------------------------------------------------------------------------------------------
def _sym(P):
    return 0.5 * (P + P.swapaxes(-1, -2))


def _chol_inverse(L):
    return jax.scipy.linalg.cho_solve((L, True), jnp.eye(L.shape[-1], dtype=L.dtype))


def _update_centred(nu, M, Q_prec, Q_prec_f, S_prec, fallback: str):
    """One DKF update in coordinates centred at the state mean (so p(z) = N(0, S)).

    nu (d,), M (d, d): prediction; Q_prec = Q^{-1} (d, d) and Q_prec_f = Q^{-1} f (d,) from the
    regression; S_prec = S^{-1}. Returns (mu, Sigma, used_fallback).
    """
    L_M = jnp.linalg.cholesky(_sym(M))
    M_prec = _chol_inverse(L_M)
    likelihood_prec = Q_prec - S_prec  # Lambda = Q^{-1} - S^{-1}
    exact_prec = _sym(M_prec + likelihood_prec)
    robust_prec = _sym(M_prec + Q_prec)
    if fallback == "likelihood":
        scale = jnp.linalg.eigvalsh(_sym(Q_prec))[-1]
        use = jnp.linalg.eigvalsh(_sym(likelihood_prec))[0] < -_RTOL * scale
    else:
        scale = jnp.linalg.eigvalsh(robust_prec)[-1]
        use = jnp.linalg.eigvalsh(exact_prec)[0] <= _RTOL * scale
    precision = jnp.where(use, robust_prec, exact_prec)
    # the centred linear term has no S^{-1} m part: both rules share it
    information = jax.scipy.linalg.cho_solve((L_M, True), nu) + Q_prec_f
    L_P = jnp.linalg.cholesky(precision)
    Sigma = _sym(_chol_inverse(L_P))
    mu = jax.scipy.linalg.cho_solve((L_P, True), information)
    return mu, Sigma, use


def _regression_precisions(f_c, Q):
    L_Q = jnp.linalg.cholesky(_sym(Q))
    return _chol_inverse(L_Q), jax.scipy.linalg.cho_solve((L_Q, True), f_c)


@partial(jax.jit, static_argnames=("fallback",))
def _dkf_update(predicted_mean, predicted_cov, obs_mean, obs_cov, stationary_cov, state_mean, fallback):
    S_prec = _chol_inverse(jnp.linalg.cholesky(stationary_cov))
    Q_prec, Q_prec_f = _regression_precisions(obs_mean - state_mean, obs_cov)
    mu, Sigma, use = _update_centred(predicted_mean - state_mean, predicted_cov, Q_prec, Q_prec_f, S_prec, fallback)
    return mu + state_mean, Sigma, use


def dkf_update(predicted_mean, predicted_cov, observation_state_mean, observation_state_cov,
               stationary_cov, state_mean=None, *, fallback: str = "likelihood"):
    """One discriminative Kalman update: (mean (d,), cov (d, d), used_fallback ()).

    p(z | past, x) ∝ N(z; nu, M) N(z; f, Q) / N(z; m, S) (eq. 2.7 of the Neural Computation
    paper), with the robust fallback described in the module docstring. predicted_mean nu (d,),
    predicted_cov M (d, d), observation_state_mean f(x) (d,), observation_state_cov Q(x)
    (d, d), stationary_cov S (d, d), state_mean m (d,) (default 0).
    """
    if fallback not in FALLBACK_RULES:
        raise ValueError(f"fallback must be one of {FALLBACK_RULES}; got {fallback!r}")
    nu = np.atleast_1d(np.asarray(predicted_mean, dtype=np.float64))
    d = nu.shape[0]
    if nu.shape != (d,) or not np.all(np.isfinite(nu)):
        raise ValueError(f"predicted_mean must be a finite vector (d,); got shape {nu.shape}")
    f = np.atleast_1d(np.asarray(observation_state_mean, dtype=np.float64))
    if f.shape != (d,) or not np.all(np.isfinite(f)):
        raise ValueError(f"observation_state_mean must be a finite vector ({d},); got shape {f.shape}")
    m = np.zeros(d) if state_mean is None else np.atleast_1d(np.asarray(state_mean, dtype=np.float64))
    if m.shape != (d,) or not np.all(np.isfinite(m)):
        raise ValueError(f"state_mean must be a finite vector ({d},); got shape {m.shape}")
    mats = {}
    for name, value in (("predicted_cov", predicted_cov), ("observation_state_cov", observation_state_cov),
                        ("stationary_cov", stationary_cov)):
        mats[name] = np.asarray(value, dtype=np.float64).reshape(d, d) if np.size(value) == d * d else np.asarray(value)
        _check_matrix(name, mats[name], d, definite=True)
    return _dkf_update(nu, mats["predicted_cov"], f, mats["observation_state_cov"], mats["stationary_cov"], m, fallback)


@partial(jax.jit, static_argnames=("fallback",))
def _dkf_scan(A, process_cov, stationary_cov, state_mean, obs_means, obs_covs, fallback):
    S_prec = _chol_inverse(jnp.linalg.cholesky(stationary_cov))
    f_c = obs_means - state_mean
    # the regression's precisions do not depend on the recursion: one batched Cholesky for all t
    Q_prec, Q_prec_f = jax.vmap(_regression_precisions)(f_c, obs_covs)
    d = state_mean.shape[0]

    def step(carry, inputs):
        mu, Sigma = carry
        Qp_t, Qpf_t, first = inputs
        nu = jnp.where(first, jnp.zeros(d, dtype=mu.dtype), A @ mu)
        M = jnp.where(first, stationary_cov, _sym(A @ Sigma @ A.T + process_cov))
        mu_new, Sigma_new, use = _update_centred(nu, M, Qp_t, Qpf_t, S_prec, fallback)
        return (mu_new, Sigma_new), (mu_new, Sigma_new, nu, M, use)

    first = jnp.arange(obs_means.shape[0]) == 0
    init = (jnp.zeros(d, dtype=obs_means.dtype), stationary_cov)
    _, (mus, Sigmas, nus, Ms, used) = jax.lax.scan(step, init, (Q_prec, Q_prec_f, first))
    return DKFResult(mus + state_mean, Sigmas, nus + state_mean, Ms, used, jnp.sum(used))


def _run(dynamics: StationaryLinearDynamics, means, covs, fallback: str) -> DKFResult:
    result = _dkf_scan(*map(jnp.asarray, dynamics), jnp.asarray(means), jnp.asarray(covs), fallback)
    # inside jit a failed Cholesky is NaN, not an exception: surface it here rather than return NaN
    if not (bool(jnp.all(jnp.isfinite(result.means))) and bool(jnp.all(jnp.isfinite(result.covariances)))):
        t = int(np.argmax(~np.all(np.isfinite(np.asarray(result.means)), axis=1)))
        raise FloatingPointError(f"the filter produced non-finite moments from step t = {t}: a predicted or "
                                 "posterior precision was numerically singular (check the scales of S, Gamma and Q)")
    return result


def _check_regression_output(mean, cov, T: int, d: int, source: str):
    mean = np.asarray(mean, dtype=np.float64)
    cov = np.asarray(cov, dtype=np.float64)
    if mean.shape != (T, d):
        raise ValueError(f"{source}: the means must have shape ({T}, {d}); got {mean.shape}")
    if cov.shape != (T, d, d):
        raise ValueError(f"{source}: the covariances must have shape ({T}, {d}, {d}); got {cov.shape}")
    if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(cov))):
        raise ValueError(f"{source}: the means or covariances contain NaN or infinite values")
    if not np.allclose(cov, cov.swapaxes(1, 2), rtol=1e-8, atol=1e-12 * max(1.0, np.abs(cov).max())):
        raise ValueError(f"{source}: the covariances must be symmetric")
    smallest = np.linalg.eigvalsh(0.5 * (cov + cov.swapaxes(1, 2)))[:, 0]
    if np.any(smallest <= 0):
        t = int(np.argmin(smallest))
        raise ValueError(f"{source}: the covariances must be positive definite; at t = {t} the smallest "
                         f"eigenvalue is {smallest[t]:.3g}")
    return mean, cov


def discriminative_kalman_filter(dynamics: StationaryLinearDynamics, observation_state_means,
                                 observation_state_covs, *, fallback: str = "likelihood") -> DKFResult:
    """Run the DKF over a sequence, given the regression's outputs at every step.

    dynamics: the stationary linear-Gaussian state model (A, Gamma, S, m);
    observation_state_means: (T, d) f(x_t); observation_state_covs: (T, d, d) Q(x_t), each
    positive definite; fallback: ``"likelihood"`` or ``"posterior"`` (module docstring).
    Returns a :class:`DKFResult` (means (T, d), covariances (T, d, d), ...).
    """
    if fallback not in FALLBACK_RULES:
        raise ValueError(f"fallback must be one of {FALLBACK_RULES}; got {fallback!r}")
    dynamics = _validate_dynamics(dynamics)
    d = dynamics.state_mean.shape[0]
    means = np.asarray(observation_state_means, dtype=np.float64)
    if means.ndim != 2 or means.shape[0] == 0:
        raise ValueError(f"observation_state_means must be (T, {d}) with T >= 1; got shape {means.shape}")
    means, covs = _check_regression_output(means, observation_state_covs, means.shape[0], d,
                                           "observation_state_means/observation_state_covs")
    return _run(dynamics, means, covs, fallback)


# ---------------------------------------------------------------------------------------------
# The estimator
# ---------------------------------------------------------------------------------------------
class DiscriminativeKalmanFilter:
    """Discriminative Kalman filter with a learned state model and a pluggable regressor.

    Parameters
    ----------
    regressor : ``"gp"`` | ``"nadaraya-watson"`` | ``"mlp"`` | a fitted regressor
        A name builds a :class:`~bayeskit.filters.regressors.HeldOutGaussianRegressor` around
        :class:`~bayeskit.filters.regressors.GPMeanRegressor`,
        :class:`~bayeskit.filters.regressors.NadarayaWatsonRegressor` or
        :class:`~bayeskit.filters.regressors.MLPRegressor` (f fitted on
        1 - ``held_out_fraction`` of the training rows, Q the residual covariance on the rest);
        ``regressor_options`` go to the mean regressor's constructor. Any other object must be
        already fitted and provide ``predict(x) -> (mean (T, d), cov (T, d, d))``; :meth:`fit`
        then learns only the state dynamics.
    fallback : ``"likelihood"`` (default) | ``"posterior"``
        When the robust update replaces the exact one (see :mod:`bayeskit.filters.dkf`).
    held_out_fraction : float, seed : int
        The split for Q and its random seed (also the seed of the regressor, unless given).

    After :meth:`fit`: ``dynamics_`` (:class:`StationaryLinearDynamics`), ``regressor_``.
    """

    def __init__(self, regressor: str | Any = "gp", *, fallback: str = "likelihood", held_out_fraction: float = 0.3,
                 seed: int = 0, regressor_options: dict | None = None):
        if isinstance(regressor, str):
            if regressor not in REGRESSORS:
                raise ValueError(f"regressor must be one of {REGRESSORS} or a fitted regressor with "
                                 f"predict(x) -> (mean, cov); got {regressor!r}")
        elif not callable(getattr(regressor, "predict", None)):
            raise TypeError(f"regressor must be a name {REGRESSORS} or an object with predict(x) -> (mean, cov); "
                            f"got {type(regressor).__name__}")
        if fallback not in FALLBACK_RULES:
            raise ValueError(f"fallback must be one of {FALLBACK_RULES}; got {fallback!r}")
        self.regressor = regressor
        self.fallback = fallback
        self.held_out_fraction = held_out_fraction
        self.seed = seed
        self.regressor_options = dict(regressor_options or {})

    def _make_regressor(self):
        options = dict(self.regressor_options)
        if self.regressor == "gp":
            options.setdefault("seed", self.seed)
            mean = GPMeanRegressor(**options)
        elif self.regressor == "nadaraya-watson":
            mean = NadarayaWatsonRegressor(**options)
        else:
            options.setdefault("key", self.seed)
            mean = MLPRegressor(**options)
        return HeldOutGaussianRegressor(mean, held_out_fraction=self.held_out_fraction, seed=self.seed)

    def fit(self, x, z) -> DiscriminativeKalmanFilter:
        """Learn the dynamics from states z (T, d) and p(z | x) from observations x (T, m); returns self.

        Rows are time steps: the dynamics use consecutive rows of z, the regressor all rows.
        """
        x = as_inputs(x, "x")
        z = as_states(z, x.shape[0], "z")
        dynamics = fit_stationary_dynamics(z)
        if isinstance(self.regressor, str):
            regressor = self._make_regressor().fit(x, z)
        else:
            regressor = self.regressor
            _check_regression_output(*regressor.predict(x[:2]), 2, z.shape[1], "regressor.predict")
        self.dynamics_, self.regressor_ = dynamics, regressor
        self.n_features_, self.n_states_ = x.shape[1], z.shape[1]
        return self

    def filter(self, x) -> DKFResult:
        """Filtered means (T, d) and covariances (T, d, d) of p(z_t | x_0..t) for observations x (T, m)."""
        if not hasattr(self, "dynamics_"):
            raise RuntimeError("this DiscriminativeKalmanFilter is not fitted yet: call fit(x, z) first")
        x = as_inputs(x, "x", dim=self.n_features_)
        mean, cov = self.regressor_.predict(x)
        mean, cov = _check_regression_output(mean, cov, x.shape[0], self.n_states_, "regressor.predict")
        return _run(self.dynamics_, mean, cov, self.fallback)

    def predict(self, x) -> np.ndarray:
        """Filtered means (T, d) only (the scikit-learn spelling)."""
        return np.asarray(self.filter(x).means)


def normalised_rmse(z_true, z_estimate) -> float:
    """sqrt(mean_t |z_t - ẑ_t|^2) / sqrt(mean_t |z_t - z̄|^2), z̄ the mean of z_true (T, d).

    1 is the error of always guessing the mean of the true states; 0 is perfect.
    """
    z_true = np.asarray(z_true, dtype=np.float64)
    z_true = z_true[:, None] if z_true.ndim == 1 else z_true
    z_estimate = as_states(z_estimate, z_true.shape[0], "z_estimate")
    if z_estimate.shape != z_true.shape:
        raise ValueError(f"z_estimate must have shape {z_true.shape}; got {z_estimate.shape}")
    spread = np.mean(np.sum((z_true - z_true.mean(axis=0)) ** 2, axis=1))
    if spread == 0:
        raise ValueError("z_true is constant: the normalised RMSE is undefined")
    return float(np.sqrt(np.mean(np.sum((z_true - z_estimate) ** 2, axis=1)) / spread))


# ---------------------------------------------------------------------------------------------
# Simulated neural decoding: a 2-D cursor and von-Mises-tuned Poisson neurons
# ---------------------------------------------------------------------------------------------
def simulate_cursor(key, T: int, n_neurons: int, *, decay: float = 0.95, rotation: float = 0.05,
                    speed: float = 1.0, baseline_rate: float = 2.0, peak_rate: float = 12.0,
                    concentration: float = 2.0, speed_exponent: float = 2.0, bin_width: float = 0.1):
    """Simulate a 2-D cursor velocity and the spike counts of tuned Poisson neurons.

    Velocity (the state, (T, 2)): v_t = a R(omega) v_{t-1} + w_t, a = ``decay`` < 1, R a rotation
    by ``rotation`` radians (a slowly turning reach), w_t ~ N(0, (1 - a^2) speed^2 I), so the
    process is stationary with covariance speed^2 I and v_0 is drawn from it.

    Neuron i (preferred direction theta_i, evenly spread with a random offset; gain g_i drawn
    uniformly in [0.5, 1.5]) fires Poisson(bin_width * rate_i(v)) spikes per bin with a von Mises
    tuning curve scaled by a power of the speed,

        rate_i(v) = baseline_rate + g_i peak_rate (|v| / speed)^p exp(kappa (cos(angle(v) - theta_i) - 1)),

    kappa = ``concentration``, p = ``speed_exponent``: a nonlinear, sharply direction-selective
    observation model, as in the neural-decoding application of *A Discriminative Approach to
    Bayesian Filtering with Applications to Human Neural Decoding*.

    key: a ``jax.random`` key (or int seed). Returns (velocity (T, 2) float64, counts
    (T, n_neurons) float64 of non-negative integers).
    """
    T, n_neurons = int(T), int(n_neurons)
    if T < 1 or n_neurons < 1:
        raise ValueError(f"T and n_neurons must be >= 1; got T={T}, n_neurons={n_neurons}")
    if not 0 <= decay < 1:
        raise ValueError(f"decay must be in [0, 1) for a stable velocity process; got {decay}")
    for name, value in (("speed", speed), ("peak_rate", peak_rate), ("bin_width", bin_width)):
        if not value > 0:
            raise ValueError(f"{name} must be > 0; got {value}")
    for name, value in (("baseline_rate", baseline_rate), ("concentration", concentration),
                        ("speed_exponent", speed_exponent)):
        if not value >= 0:
            raise ValueError(f"{name} must be >= 0; got {value}")
    key = as_prng_key(key)
    k_init, k_noise, k_dir, k_gain, k_spikes = jax.random.split(key, 5)
    c, s = np.cos(rotation), np.sin(rotation)
    A = decay * jnp.array([[c, -s], [s, c]])
    v0 = speed * jax.random.normal(k_init, (2,))
    noise = speed * np.sqrt(1 - decay**2) * jax.random.normal(k_noise, (T, 2))

    def step(v, w):
        v_new = A @ v + w
        return v_new, v_new

    _, rest = jax.lax.scan(step, v0, noise[1:])
    velocity = jnp.concatenate([v0[None], rest], axis=0)
    theta = (2 * jnp.pi * jnp.arange(n_neurons) / n_neurons + jax.random.uniform(k_dir, (), maxval=2 * jnp.pi))
    gain = jax.random.uniform(k_gain, (n_neurons,), minval=0.5, maxval=1.5)
    norm = jnp.linalg.norm(velocity, axis=1, keepdims=True)
    angle = jnp.arctan2(velocity[:, 1], velocity[:, 0])[:, None]
    tuning = jnp.exp(concentration * (jnp.cos(angle - theta[None, :]) - 1.0))
    rate = baseline_rate + gain * peak_rate * (norm / speed) ** speed_exponent * tuning
    counts = jax.random.poisson(k_spikes, bin_width * rate)
    return np.asarray(velocity, dtype=np.float64), np.asarray(counts, dtype=np.float64)
