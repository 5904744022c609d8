"""Normalizing flows for variational inference (Rezende & Mohamed, *Variational Inference with
Normalizing Flows*, ICML 2015).

* :mod:`bayeskit.flows.transforms` -- pure JAX planar and radial layers returning
  ``(z_new, log_abs_det)``, with their inverses (usable per data point, as in a flow-VAE);
* :mod:`bayeskit.flows.modules` -- Flax NNX flow stacks (:class:`PlanarFlow`,
  :class:`RadialFlow`) on a learnable :class:`DiagonalGaussian`, with
  ``sample_and_log_prob(key, n)`` and ``log_prob(z)`` (and :func:`flow_log_prob` /
  :func:`flow_sample_and_log_prob`, compiled once per flow structure);
* :mod:`bayeskit.flows.targets` -- 2-D unnormalised targets (banana, ring, mixture, the paper's
  U1-U4) and a brute-force grid normaliser;
* :mod:`bayeskit.flows.fit` -- :func:`fit_flow` (reverse-KL ELBO with optax) and
  :func:`evaluate_flow` (ELBO, KL(q || p) on a grid, importance-sampling ESS).
"""

from .fit import FlowEvaluation, elbo_estimate, evaluate_flow, fit_flow, length_sweep
from .modules import (
    FLOW_KINDS,
    DiagonalGaussian,
    PlanarFlow,
    RadialFlow,
    flow_log_prob,
    flow_sample_and_log_prob,
    make_flow,
)
from .targets import (
    Target,
    banana,
    gaussian_mixture,
    grid_log_normalizer,
    grid_points,
    paper_energy,
    ring,
    standard_targets,
)
from .transforms import (
    planar_inverse,
    planar_transform,
    planar_u_hat,
    radial_constrained,
    radial_inverse,
    radial_transform,
)

__all__ = [
    # transforms
    "planar_transform",
    "planar_inverse",
    "planar_u_hat",
    "radial_transform",
    "radial_inverse",
    "radial_constrained",
    # modules
    "DiagonalGaussian",
    "PlanarFlow",
    "RadialFlow",
    "make_flow",
    "FLOW_KINDS",
    "flow_log_prob",
    "flow_sample_and_log_prob",
    # targets
    "Target",
    "banana",
    "ring",
    "gaussian_mixture",
    "paper_energy",
    "standard_targets",
    "grid_points",
    "grid_log_normalizer",
    # fitting and evaluation
    "fit_flow",
    "evaluate_flow",
    "FlowEvaluation",
    "elbo_estimate",
    "length_sweep",
]
