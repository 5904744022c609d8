"""Bayesian last layers: a neural feature network with a Bayesian (or baseline) final layer.

* :mod:`bayeskit.bll.features`: the feature network (:class:`MLPFeatures`, Flax NNX, float32).
* :mod:`bayeskit.bll.vbll`: *Variational Bayesian Last Layers* (Harrison, Willes, Snoek):
  :class:`VBLLRegression`, :class:`VBLLStudentTRegression`, :class:`VBLLDiscClassification`,
  :class:`VBLLGenClassification`, and :class:`VBLLModel` (features + head).
* :mod:`bayeskit.bll.train`: :func:`train_vbll` (optax AdamW, mini-batches, tqdm.auto).

Networks are float32; the VBLL heads default to float32 too and take ``dtype=jnp.float64``
for exact comparisons.
"""

from .features import MLPFeatures
from .train import train_vbll
from .vbll import (
    VBLLDiscClassification,
    VBLLGenClassification,
    VBLLModel,
    VBLLRegression,
    VBLLStudentTRegression,
    max_probability,
    predictive_entropy,
)

__all__ = [
    "MLPFeatures",
    "VBLLDiscClassification",
    "VBLLGenClassification",
    "VBLLModel",
    "VBLLRegression",
    "VBLLStudentTRegression",
    "max_probability",
    "predictive_entropy",
    "train_vbll",
]
