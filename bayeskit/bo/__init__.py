"""Bayesian optimisation (minimisation) with GP surrogates.

* :mod:`bayeskit.bo.acquisitions`: EI, log-EI, PI, log-PI, LCB, max-value entropy search,
  knowledge gradient (discrete), Monte-Carlo noisy EI and batch q-EI, as pure JAX functions.
* :mod:`bayeskit.bo.sampling`: Thompson sampling (exact on candidates; random-Fourier-feature
  sample paths), samples of the minimum value (exact or Gumbel).
* :mod:`bayeskit.bo.optimize`: Sobol candidates + multi-start L-BFGS-B with JAX gradients.
* :mod:`bayeskit.bo.loop`: :class:`BayesianOptimizer` (ask/tell) and :func:`minimize`.
* :mod:`bayeskit.bo.fully_bayesian`: acquisitions averaged over NUTS samples of the GP
  hyperparameters (``BayesianOptimizer(model="fully_bayesian")``).
* :mod:`bayeskit.bo.user_guided`: ColaBO, a user prior over the minimiser's location reweighting
  posterior sample paths inside Monte-Carlo acquisitions (``BayesianOptimizer(user_prior=...)``).
* :mod:`bayeskit.bo.asynchronous`: asynchronous epsilon-greedy BO (AEGiS) and a kriging-believer
  baseline, with simulated workers (:func:`aegis_minimize`, :func:`async_minimize`).
* :mod:`bayeskit.bo.one_shot_kg`: the one-shot knowledge gradient (fantasy minimisers optimised
  jointly with the candidate).
* :mod:`bayeskit.bo.surface`: what an optimiser's acquisition looked like where it chose its
  point (posterior and acquisition on a grid, simple regret), for plots and the BOExplorer.
* :mod:`bayeskit.bo.test_functions` (also ``bayeskit.bo.benchmarks``): Forrester, Branin,
  Hartmann-3/6, Ackley, Levy, Rosenbrock with bounds, optimum and optimisers.
"""

from . import fully_bayesian, test_functions, user_guided
from . import test_functions as benchmarks
from .acquisitions import (
    expected_improvement,
    expected_max_of_affine,
    knowledge_gradient,
    log_expected_improvement,
    log_h,
    log_probability_of_improvement,
    lower_confidence_bound,
    max_value_entropy_search,
    noisy_expected_improvement,
    posterior_mean_cov,
    probability_of_improvement,
    q_expected_improvement,
)
from .asynchronous import (
    AsyncBayesianOptimizer,
    aegis_epsilon,
    aegis_minimize,
    async_minimize,
    pareto_front_mask,
    simulate_workers,
)
from .fully_bayesian import (
    FullyBayesianGP,
    averaged_expected_improvement,
    averaged_log_expected_improvement,
    averaged_log_probability_of_improvement,
    averaged_lower_confidence_bound,
    averaged_probability_of_improvement,
    draw_marginals,
    fit_fully_bayesian,
)
from .loop import (
    ACQUISITIONS,
    FULLY_BAYESIAN_ACQUISITIONS,
    MODELS,
    BayesianOptimizer,
    minimize,
    validate_bounds,
)
from .one_shot_kg import (
    OneShotKGResult,
    maximize_one_shot_kg,
    one_shot_knowledge_gradient,
)
from .optimize import maximize_acquisition, sobol_points
from .sampling import (
    PosteriorSamplePath,
    RandomFourierFeatures,
    gumbel_min_values,
    joint_posterior_samples,
    pathwise_posterior_sample,
    random_fourier_features,
    sampled_min_values,
    thompson_sample_candidates,
)
from .surface import AcquisitionSurface, acquisition_surface, box_grid, simple_regret
from .user_guided import (
    ReweightedPaths,
    UserPrior,
    colabo_expected_improvement,
    colabo_log_expected_improvement,
    colabo_log_probability_of_improvement,
    reweighted_sample_paths,
)

__all__ = [
    "expected_improvement",
    "log_expected_improvement",
    "log_h",
    "probability_of_improvement",
    "log_probability_of_improvement",
    "lower_confidence_bound",
    "max_value_entropy_search",
    "knowledge_gradient",
    "expected_max_of_affine",
    "noisy_expected_improvement",
    "q_expected_improvement",
    "posterior_mean_cov",
    "thompson_sample_candidates",
    "joint_posterior_samples",
    "sampled_min_values",
    "gumbel_min_values",
    "random_fourier_features",
    "RandomFourierFeatures",
    "pathwise_posterior_sample",
    "PosteriorSamplePath",
    "sobol_points",
    "maximize_acquisition",
    "BayesianOptimizer",
    "minimize",
    "validate_bounds",
    "ACQUISITIONS",
    "MODELS",
    "FULLY_BAYESIAN_ACQUISITIONS",
    "fully_bayesian",
    "FullyBayesianGP",
    "fit_fully_bayesian",
    "draw_marginals",
    "averaged_expected_improvement",
    "averaged_log_expected_improvement",
    "averaged_probability_of_improvement",
    "averaged_log_probability_of_improvement",
    "averaged_lower_confidence_bound",
    "user_guided",
    "UserPrior",
    "ReweightedPaths",
    "reweighted_sample_paths",
    "colabo_expected_improvement",
    "colabo_log_expected_improvement",
    "colabo_log_probability_of_improvement",
    "AsyncBayesianOptimizer",
    "aegis_minimize",
    "async_minimize",
    "aegis_epsilon",
    "simulate_workers",
    "pareto_front_mask",
    "one_shot_knowledge_gradient",
    "maximize_one_shot_kg",
    "OneShotKGResult",
    "AcquisitionSurface",
    "acquisition_surface",
    "box_grid",
    "simple_regret",
    "test_functions",
    "benchmarks",
]
