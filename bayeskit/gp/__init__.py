"""Gaussian-process regression.

* :mod:`bayeskit.gp.exact`: exact GP posterior, samples, log marginal likelihood, ML-II and the
  scikit-learn-style :class:`GPRegressor`.
* :mod:`bayeskit.gp.sparse`: the sparse variational GP (Titsias's collapsed bound),
  :class:`SparseGPRegressor`.
* :mod:`bayeskit.gp.student_t`: the Student-t process as an inverse-gamma scale mixture of GPs,
  :class:`StudentTProcessRegressor`.
* :mod:`bayeskit.gp.nngp`: kernels of infinitely wide deep networks (:class:`ReLUNNGP`,
  :class:`ErfNNGP`).
* :mod:`bayeskit.gp.bayesian`: fully Bayesian hyperparameters: priors, NUTS (BlackJAX) and the
  hyperparameter-averaged predictive.
"""

from .bayesian import (
    HyperparameterDraws,
    HyperPosterior,
    default_prior,
    predict_averaged,
    predictive_interval,
    sample_hyperparameters,
)
from .exact import (
    GPRegressor,
    Posterior,
    fit_ml2,
    log_marginal_likelihood,
    log_marginal_likelihood_and_grad,
    posterior,
    predict,
)
from .nngp import ErfNNGP, ReLUNNGP
from .sparse import SparseGPRegressor, fit_sparse, sparse_elbo
from .student_t import StudentTProcessRegressor

__all__ = [
    "GPRegressor",
    "Posterior",
    "fit_ml2",
    "log_marginal_likelihood",
    "log_marginal_likelihood_and_grad",
    "posterior",
    "predict",
    "SparseGPRegressor",
    "fit_sparse",
    "sparse_elbo",
    "StudentTProcessRegressor",
    "ReLUNNGP",
    "ErfNNGP",
    "HyperPosterior",
    "HyperparameterDraws",
    "default_prior",
    "predict_averaged",
    "predictive_interval",
    "sample_hyperparameters",
]
