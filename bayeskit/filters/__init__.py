"""Bayesian filtering and smoothing.

* :mod:`bayeskit.filters.kalman`: the Kalman filter (Joseph form, missing data), the
  Rauch-Tung-Striebel smoother, the log-likelihood of linear-Gaussian state-space models and
  its maximisation over parameters.
* :mod:`bayeskit.filters.parallel`: the same filter and smoother as associative scans
  (O(log T) depth; for long sequences on a GPU).
* :mod:`bayeskit.filters.nonlinear`: extended and unscented Kalman filters and the bootstrap
  particle filter for nonlinear models.
"""

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
from .parallel import parallel_kalman_filter, parallel_rts_smoother

__all__ = [
    "EMResult", "fit_em", "sample",
    "NonlinearGaussianSSM", "ParticleFilterResult", "bootstrap_particle_filter", "extended_kalman_filter",
    "unscented_kalman_filter",
    "FilterResult", "LinearGaussianSSM", "MLEResult", "SmootherResult", "fit_mle", "kalman_filter",
    "parallel_kalman_filter", "parallel_rts_smoother", "rts_smoother",
]
