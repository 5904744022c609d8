"""Bayesian last layers: a neural feature network with a Bayesian (or baseline) final layer.

* :mod:`bayeskit.bll.features`: the feature network (:class:`MLPFeatures`, Flax NNX, float32).
* :mod:`bayeskit.bll.vbll`: *Variational Bayesian Last Layers* (Harrison, Willes, Snoek):
  :class:`VBLLRegression`, :class:`VBLLStudentTRegression`, :class:`VBLLDiscClassification`,
  :class:`VBLLGenClassification`, and :class:`VBLLModel` (features + head).
* :mod:`bayeskit.bll.train`: :func:`train_vbll` (optax AdamW, mini-batches, tqdm.auto).
* :mod:`bayeskit.bll.baselines`: the same feature networks with a MAP last layer, last-layer
  Laplace (:mod:`bayeskit.bll.laplace`, prior precision by the evidence), MC dropout and deep
  ensembles behind one interface: ``make_baseline(name, task).fit(x, y, key).predict(x)``; and
  the Kalman-filtered last layer of :mod:`bayeskit.filters.online_classification` on their features.
* :mod:`bayeskit.bll.metrics`: NLLs, RMSE, accuracy, reliability bins and expected calibration
  error, out-of-distribution AUROC (NumPy).
* :mod:`bayeskit.bll.datasets`: 1-D regression with a gap and OOD tails, two moons, spirals,
  far-away probes, shifted digits.

Networks are float32; the VBLL heads default to float32 too and take ``dtype=jnp.float64``
for exact comparisons.
"""

from . import laplace, metrics
from .baselines import (
    BASELINES,
    ClassificationPredictive,
    DeepEnsemble,
    LastLayerLaplace,
    MAPLastLayer,
    MCDropout,
    RegressionPredictive,
    kalman_features,
    kalman_last_layer,
    make_baseline,
)
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
    "BASELINES",
    "ClassificationPredictive",
    "DeepEnsemble",
    "LastLayerLaplace",
    "MAPLastLayer",
    "MCDropout",
    "RegressionPredictive",
    "kalman_features",
    "kalman_last_layer",
    "laplace",
    "make_baseline",
    "metrics",
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
