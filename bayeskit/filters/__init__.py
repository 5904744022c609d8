"""Bayesian filtering and smoothing.

* :mod:`bayeskit.filters.kalman`: the Kalman filter (Joseph form, missing data), the
  Rauch-Tung-Striebel smoother, the log-likelihood of linear-Gaussian state-space models and
  its maximisation over parameters.
* :mod:`bayeskit.filters.parallel`: the same filter and smoother as associative scans
  (O(log T) depth; for long sequences on a GPU).
* :mod:`bayeskit.filters.nonlinear`: extended and unscented Kalman filters and the bootstrap
  particle filter for nonlinear models.
* :mod:`bayeskit.filters.dkf`: the discriminative Kalman filter (learned p(state | observation)
  combined with linear-Gaussian dynamics), with GP, Nadaraya-Watson and MLP regressors
  (:mod:`bayeskit.filters.regressors`) and a simulated neural-decoding task.
* :mod:`bayeskit.filters.implicit_map`: filtering as K optimiser steps per observation
  (implicit MAP), with the step sizes that reproduce the Kalman filter exactly.
* :mod:`bayeskit.filters.online_classification`: Kalman-tracked drifting last-layer weights with
  a learned forgetting coefficient.
* :mod:`bayeskit.filters.changepoint`: Bayesian online changepoint detection and its robust
  (diffusion score matching) generalised-Bayes variant.
"""

from .changepoint import (
    BOCPDResult,
    DSMGaussian,
    GaussianKnownVariance,
    NormalGamma,
    bocpd,
    changepoint_locations,
    dsm_log_predictive,
    dsm_posterior,
)
from .dkf import (
    DiscriminativeKalmanFilter,
    DKFResult,
    StationaryLinearDynamics,
    discriminative_kalman_filter,
    dkf_update,
    fit_stationary_dynamics,
    normalised_rmse,
    simulate_cursor,
)
from .implicit_map import (
    IMAPResult,
    gaussian_measurement_loss,
    implicit_map_filter,
    kalman_learning_rates,
)
from .kalman import (
    EMResult,
    FilterResult,
    LinearGaussianSSM,
    MLEResult,
    SmootherResult,
    fit_em,
    fit_mle,
    kalman_filter,
    rts_smoother,
    sample,
)
from .nonlinear import (
    NonlinearGaussianSSM,
    ParticleFilterResult,
    bootstrap_particle_filter,
    extended_kalman_filter,
    unscented_kalman_filter,
)
from .online_classification import (
    OnlineKalmanClassifier,
    OnlineKalmanResult,
    OnlineKalmanState,
    init_state,
    online_kalman_filter,
)
from .parallel import parallel_kalman_filter, parallel_rts_smoother

__all__ = [
    "DKFResult", "DiscriminativeKalmanFilter", "StationaryLinearDynamics", "discriminative_kalman_filter",
    "dkf_update", "fit_stationary_dynamics", "normalised_rmse", "simulate_cursor",
    "BOCPDResult", "DSMGaussian", "GaussianKnownVariance", "NormalGamma", "bocpd", "changepoint_locations",
    "dsm_log_predictive", "dsm_posterior",
    "IMAPResult", "gaussian_measurement_loss", "implicit_map_filter", "kalman_learning_rates",
    "OnlineKalmanClassifier", "OnlineKalmanResult", "OnlineKalmanState", "init_state", "online_kalman_filter",
    "EMResult", "fit_em", "sample",
    "NonlinearGaussianSSM", "ParticleFilterResult", "bootstrap_particle_filter", "extended_kalman_filter",
    "unscented_kalman_filter",
    "FilterResult", "LinearGaussianSSM", "MLEResult", "SmootherResult", "fit_mle", "kalman_filter",
    "parallel_kalman_filter", "parallel_rts_smoother", "rts_smoother",
]
