"""Variational autoencoders (Flax NNX, float32) and the linear VAE in closed form.

Papers: *Auto-Encoding Variational Bayes* (Kingma & Welling); *Stochastic Backpropagation and
Approximate Inference in Deep Generative Models* (Rezende, Mohamed & Wierstra); *Importance
Weighted Autoencoders* (Burda, Grosse & Salakhutdinov); *beta-VAE* (Higgins et al.);
*Variational Inference with Normalizing Flows* (Rezende & Mohamed); *Beyond Vanilla Variational
Autoencoders: Detecting Posterior Collapse in Conditional and Hierarchical VAEs* (Dang et al.)
and *Probabilistic Principal Component Analysis* (Tipping & Bishop).

Quick start::

    import jax
    from bayeskit.data import load_digits
    from bayeskit.vae import VAE, train, elbo, iwae_bound
    X = load_digits().X                       # (1797, 64) in [0, 1]
    vae = VAE(data_dim=64, latent_dim=2, hidden=(256,))
    history = train(vae, X[:1500], epochs=100, batch_size=128, learning_rate=1e-3,
                    key=jax.random.key(0), x_test=X[1500:])
    iwae_bound(vae, X[1500:], jax.random.key(1), k=100).mean()

The model (:class:`VAE`): ``encode(x) -> (mean, log_std)``, ``decode(z) -> logits / means``,
``decode_mean(z)``. Objectives: :func:`elbo`, :func:`elbo_components`, :func:`iwae_bound`;
gradient estimators: :func:`gradient_estimates` (reparameterisation vs score function),
:func:`gradient_variance`. Training: :func:`train` -> :class:`TrainHistory`. Diagnostics:
:func:`kl_per_dimension`, :func:`active_units`, :func:`posterior_mean`; pictures:
:func:`latent_traversal`, :func:`interpolate`. Checkpoints: :func:`save`, :func:`load` (no
pickle). Linear VAE and pPCA: :func:`linear_vae_optimum`, :func:`fit_linear_vae`,
:func:`linear_vae_elbo`, :func:`linear_vae_kl_per_dimension`, :func:`collapsed_dimensions`,
:func:`ppca`.
"""

from .checkpoint import load, save
from .diagnostics import (
    ActiveUnits,
    active_units,
    interpolate,
    kl_per_dimension,
    latent_traversal,
    posterior_mean,
)
from .linear import (
    LinearVAEParams,
    PPCAResult,
    collapsed_dimensions,
    fit_linear_vae,
    linear_vae_elbo,
    linear_vae_kl_per_dimension,
    linear_vae_optimum,
    ppca,
)
from .model import LIKELIHOODS, POSTERIORS, VAE
from .objectives import (
    ELBOComponents,
    elbo,
    elbo_components,
    gradient_estimates,
    gradient_variance,
    iwae_bound,
)
from .training import TrainHistory, train

__all__ = [
    "LIKELIHOODS",
    "POSTERIORS",
    "VAE",
    "ActiveUnits",
    "ELBOComponents",
    "LinearVAEParams",
    "PPCAResult",
    "TrainHistory",
    "active_units",
    "collapsed_dimensions",
    "elbo",
    "elbo_components",
    "fit_linear_vae",
    "gradient_estimates",
    "gradient_variance",
    "interpolate",
    "iwae_bound",
    "kl_per_dimension",
    "latent_traversal",
    "linear_vae_elbo",
    "linear_vae_kl_per_dimension",
    "linear_vae_optimum",
    "load",
    "posterior_mean",
    "ppca",
    "save",
    "train",
]
