"""Bayesian filtering and smoothing.

* :mod:`bayeskit.filters.kalman`: the Kalman filter (Joseph form, missing data), the
  Rauch-Tung-Striebel smoother and the log-likelihood of linear-Gaussian state-space models.
"""

from .kalman import FilterResult, LinearGaussianSSM, SmootherResult, kalman_filter, rts_smoother

__all__ = ["FilterResult", "LinearGaussianSSM", "SmootherResult", "kalman_filter", "rts_smoother"]
