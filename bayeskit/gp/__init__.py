"""Gaussian-process regression.

* :mod:`bayeskit.gp.exact`: exact GP posterior, samples, log marginal likelihood, ML-II and the
  scikit-learn-style :class:`GPRegressor`.
"""

from .exact import (
    GPRegressor,
    Posterior,
    fit_ml2,
    log_marginal_likelihood,
    log_marginal_likelihood_and_grad,
    posterior,
    predict,
)

__all__ = [
    "GPRegressor",
    "Posterior",
    "fit_ml2",
    "log_marginal_likelihood",
    "log_marginal_likelihood_and_grad",
    "posterior",
    "predict",
]
