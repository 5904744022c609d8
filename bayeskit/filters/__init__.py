"""Bayesian filtering and smoothing.

* :mod:`bayeskit.filters.kalman`: the Kalman filter (Joseph form, missing data), the
  Rauch-Tung-Striebel smoother, the log-likelihood of linear-Gaussian state-space models and
  its maximisation over parameters.
"""

from .kalman import (
    FilterResult,
    LinearGaussianSSM,
    MLEResult,
    SmootherResult,
    fit_mle,
    kalman_filter,
    rts_smoother,
)

__all__ = [
    "FilterResult", "LinearGaussianSSM", "MLEResult", "SmootherResult", "fit_mle", "kalman_filter",
    "rts_smoother",
]
