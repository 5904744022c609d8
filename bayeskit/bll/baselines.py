"""Baselines for Bayesian last layers: MAP, last-layer Laplace, MC dropout and deep ensembles.

All four train the same network, an :class:`~bayeskit.bll.features.MLPFeatures` feature map
phi(x) (float32) followed by a linear last layer, and share one small interface, so a notebook
or a widget can switch method by name (:data:`BASELINES`, :func:`make_baseline`)::

    model = make_baseline("laplace", "classification", width=32).fit(x, y, key)
    model.predict(x_test)  # ClassificationPredictive(probs (n, K))
                           # or RegressionPredictive(mean (n,), variance (n,), epistemic_variance (n,))

Likelihoods: regression y ~ N(f(x), sigma^2) with a learned homoscedastic noise sigma;
classification y ~ Categorical(softmax(f(x))). Training is MAP with a Gaussian prior
N(0, a^{-1} I), a = ``weight_prior_precision``, on every network weight (the noise scale is
unregularised)::

    loss(theta) = 1/B sum_{i in batch} -log p(y_i | x_i, theta) + a / (2 N) ||theta||^2

(the negative log posterior divided by N), minimised by Adam with a cosine-decayed step size
(optax) on random minibatches; every random choice comes from the ``key`` passed to ``fit``.

* :class:`MAPLastLayer`: the point estimate; its predictive has only the noise (regression) or
  the softmax (classification), no weight uncertainty.
* :class:`LastLayerLaplace`: the MAP network, then a Gaussian over the last layer (see
  :mod:`bayeskit.bll.laplace`): exact Bayesian linear regression on the learned features for
  regression; GGN (= Fisher = exact Hessian) Laplace at the MAP weights for classification,
  with the pairwise-probit ("probit" link) or Monte-Carlo ("mc") predictive. The last-layer
  prior precision maximises the (Laplace) marginal likelihood. *Laplace Redux -- Effortless
  Bayesian Deep Learning*.
* :class:`MCDropout`: dropout after every hidden layer, kept on at test time; the predictive
  averages ``n_samples`` stochastic passes. *Dropout as a Bayesian Approximation: Representing
  Model Uncertainty in Deep Learning* (Gal & Ghahramani). The regression noise is the learned
  sigma (the paper's tau^{-1}).
* :class:`DeepEnsemble`: M MAP networks from independent initialisations and minibatch orders
  (trained together with ``jax.vmap``); the predictive is the uniform mixture. *Simple and
  Scalable Predictive Uncertainty Estimation using Deep Ensembles* (Lakshminarayanan, Pritzel,
  Blundell). Without the paper's optional adversarial training; members learn a homoscedastic
  noise each, so the mixture variance is mean(sigma_m^2 + mu_m^2) - mu^2.

:func:`kalman_features` and :func:`kalman_last_layer` hand a trained feature network to the
Kalman-filtered last layer of :mod:`bayeskit.filters.online_classification` (online learning
on a drifting stream on top of fixed, pre-trained features).

Shapes: x (n, d) (or (n,) for d = 1); regression targets y (n,); class labels y (n,) ints in
[0, K). Networks are float32; everything after the features (Laplace, predictive moments) is
float64.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .. import _config  # noqa: F401  (float64 for everything but the networks)
from .._validation import as_inputs, as_prng_key, positive_scalar
from . import laplace as _laplace
from ._networks import (
    LastLayerNetwork,
    _Architecture,
    _compiled_dropout_forward,
    _compiled_forward,
    _fit_networks,
    _graphdefs,
    _TrainConfig,
)

__all__ = [
    "RegressionPredictive",
    "ClassificationPredictive",
    "LastLayerNetwork",
    "MAPLastLayer",
    "LastLayerLaplace",
    "MCDropout",
    "DeepEnsemble",
    "BASELINES",
    "make_baseline",
    "kalman_features",
    "kalman_last_layer",
]

TASKS = ("regression", "classification")


class RegressionPredictive(NamedTuple):
    """Predictive of y at n inputs: mean (n,), variance (n,) = epistemic_variance + noise
    variance; epistemic_variance (n,): the variance of f(x) from the weight uncertainty (0 for MAP)."""

    mean: np.ndarray
    variance: np.ndarray
    epistemic_variance: np.ndarray


class ClassificationPredictive(NamedTuple):
    """Predictive class probabilities probs (n, K), rows summing to 1."""

    probs: np.ndarray


# ----------------------------------------------------------------------------- estimators
def _positive_int(value, name: str) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}")
    return int(value)


class MAPLastLayer:
    """A network trained to its MAP weights; the predictive ignores weight uncertainty.

    Args:
        task: ``"regression"`` (Gaussian likelihood, learned noise) or ``"classification"`` (softmax).
        width, depth: of the :class:`~bayeskit.bll.features.MLPFeatures` feature map.
        steps, batch_size, learning_rate: Adam (cosine-decayed step size) on random minibatches.
        weight_prior_precision: precision of the N(0, 1 / precision) prior on every weight
            (weight decay prior_precision / N in the per-point loss).
        n_classes: number of classes K (classification); default: largest label + 1.
        progress: show a tqdm progress bar while training.

    After ``fit(x, y, key)``: ``predict(x)``, ``features(x)`` (n, width) float64, ``noise_std_``
    (regression), ``loss_history_`` (the minibatch loss at the end of each twentieth of training).
    """

    name = "map"
    _dropout_rate = 0.0

    def __init__(self, task: str = "regression", *, width: int = 50, depth: int = 2, steps: int = 2000,
                 batch_size: int = 128, learning_rate: float = 1e-2, weight_prior_precision: float = 1.0,
                 n_classes: int | None = None, init_noise_std: float = 0.5, progress: bool = True):
        if task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}; got {task!r}")
        self.task = task
        self.width, self.depth = _positive_int(width, "width"), _positive_int(depth, "depth")
        self.steps, self.batch_size = _positive_int(steps, "steps"), _positive_int(batch_size, "batch_size")
        self.learning_rate = positive_scalar(learning_rate, "learning_rate")
        self.weight_prior_precision = positive_scalar(weight_prior_precision, "weight_prior_precision",
                                                      allow_zero=True)
        if n_classes is not None and (not isinstance(n_classes, (int, np.integer)) or n_classes < 2):
            raise ValueError(f"n_classes must be an integer >= 2 (or None); got {n_classes!r}")
        self.n_classes = None if n_classes is None else int(n_classes)
        self.init_noise_std = positive_scalar(init_noise_std, "init_noise_std")
        self.progress = bool(progress)
        self._fitted = False

    # -- data checks
    def _check_data(self, x, y):
        x = as_inputs(x, "x")
        if self.task == "regression":
            y = np.asarray(y, dtype=np.float64)
            if y.ndim == 2 and y.shape[1] == 1:
                y = y[:, 0]
            if y.shape != (x.shape[0],):
                raise ValueError(f"y must be (n,) = ({x.shape[0]},) regression targets; got shape {y.shape}")
            if not np.all(np.isfinite(y)):
                raise ValueError("y contains NaN or infinite values; targets must be finite")
            return x, y, 1
        y = np.asarray(y)
        if y.shape != (x.shape[0],):
            raise ValueError(f"y must be (n,) = ({x.shape[0]},) class labels; got shape {y.shape}")
        if not np.all(np.isfinite(y.astype(np.float64))) or np.any(y != np.round(y)) or y.min() < 0:
            raise ValueError("y (class labels) must be non-negative integers")
        y = y.astype(np.int64)
        n_classes = self.n_classes if self.n_classes is not None else max(int(y.max()) + 1, 2)
        if y.max() >= n_classes:
            raise ValueError(f"y (class labels) must lie in [0, {n_classes}); got a label {int(y.max())}")
        return x, y, n_classes

    def _settings(self, x, n_outputs):
        arch = _Architecture(x.shape[1], n_outputs, self.width, self.depth, float(self._dropout_rate),
                             self.task == "regression", self.init_noise_std)
        config = _TrainConfig(self.task == "regression", self.batch_size, self.steps, self.learning_rate,
                              self.weight_prior_precision, self._dropout_rate > 0)
        return arch, config

    def _device_data(self, x, y):
        yd = jnp.asarray(y, dtype=jnp.float32 if self.task == "regression" else jnp.int32)
        return jnp.asarray(x, dtype=jnp.float32), yd

    def fit(self, x, y, key):
        """Train on x (n, d), y (n,) with all randomness from ``key``; returns self."""
        x, y, n_out = self._check_data(x, y)
        key = as_prng_key(key)
        self._arch, self._config = self._settings(x, n_out)
        xd, yd = self._device_data(x, y)
        keys = jax.random.split(key, 3)
        self.params_, self.rest_, self.loss_history_ = _fit_networks(
            self._arch, self._config, xd, yd, keys, members=False, progress=self.progress, desc=self.name)
        self._predict_key = keys[2]
        self.n_classes_ = n_out if self.task == "classification" else None
        self._x_train, self._y_train = x, y
        self._fitted = True
        self._after_fit(x, y)
        return self

    def _after_fit(self, x, y):
        """Hook for methods that post-process the trained network (Laplace)."""

    def _check_fitted(self):
        if not self._fitted:
            raise RuntimeError(f"{type(self).__name__} is not fitted yet: call fit(x, y, key) first")

    def _check_x(self, x):
        self._check_fitted()
        return as_inputs(x, "x", dim=self._arch.in_dim)

    def _network(self, x):
        """Deterministic outputs (n, out) and features (n, width), float64."""
        _, eval_def = _graphdefs(self._arch)
        out, phi = _compiled_forward(eval_def, False)(self.params_, self.rest_, jnp.asarray(x, jnp.float32))
        return np.asarray(out, dtype=np.float64), np.asarray(phi, dtype=np.float64)

    # -- public
    @property
    def noise_std_(self) -> float:
        """Learned observation-noise standard deviation sigma (regression)."""
        self._check_fitted()
        if self.task != "regression":
            raise AttributeError("noise_std_ exists for task='regression' only")
        return float(np.exp(np.asarray(self.params_["log_noise_std"][...], dtype=np.float64)))

    def features(self, x) -> np.ndarray:
        """phi(x): (n, width) float64 (dropout off)."""
        return self._network(self._check_x(x))[1]

    def last_layer(self) -> np.ndarray:
        """The trained last layer as one matrix (width + 1, out): kernel rows, then the bias row."""
        self._check_fitted()
        head = self.params_["head"]
        return np.concatenate([np.asarray(head["kernel"][...], np.float64),
                               np.asarray(head["bias"][...], np.float64)[None, :]], axis=0)

    def predict(self, x):
        """RegressionPredictive (noise only) or ClassificationPredictive (softmax of the logits)."""
        out, _ = self._network(self._check_x(x))
        if self.task == "regression":
            s2 = self.noise_std_**2
            return RegressionPredictive(out[:, 0], np.full(out.shape[0], s2), np.zeros(out.shape[0]))
        return ClassificationPredictive(np.asarray(jax.nn.softmax(out, axis=1)))

    def __repr__(self):
        state = "fitted" if self._fitted else "not fitted"
        return f"{type(self).__name__}(task={self.task!r}, width={self.width}, depth={self.depth}; {state})"


class LastLayerLaplace(MAPLastLayer):
    """MAP network + a Laplace (Gaussian) posterior over its last layer (bias included).

    Extra args:
        prior_precision: alpha of the last-layer prior N(0, alpha^{-1} I), or
            ``"marginal_likelihood"`` (default) to maximise the (Laplace) evidence
            (:func:`bayeskit.bll.laplace.optimize_prior_precision`).
        link: classification predictive, ``"probit"`` (default; the pairwise probit approximation
            of :func:`bayeskit.bll.laplace.probit_softmax`) or ``"mc"`` (``n_samples`` draws of the logits).
            With many classes the probit spreads the probabilities more than the Gaussian integral
            it approximates (on the 8x8 digits, K = 10: test NLL 0.22 probit vs 0.16 Monte Carlo);
            use ``"mc"`` when the numbers matter.

    Regression: the posterior is exact Bayesian linear regression on the learned features with the
    learned noise (the mean is re-solved for the chosen alpha). Classification: GGN Laplace at the
    trained weights. After fit: ``posterior_`` (:class:`~bayeskit.bll.laplace.LastLayerPosterior`).
    """

    name = "laplace"

    def __init__(self, task: str = "regression", *, prior_precision="marginal_likelihood", link: str = "probit",
                 n_samples: int = 1000, **kwargs):
        super().__init__(task, **kwargs)
        if isinstance(prior_precision, str):
            if prior_precision != "marginal_likelihood":
                raise ValueError(f"prior_precision must be a number > 0 or 'marginal_likelihood'; got {prior_precision!r}")
        else:
            prior_precision = positive_scalar(prior_precision, "prior_precision")
        if link not in ("probit", "mc"):
            raise ValueError(f"link must be 'probit' or 'mc'; got {link!r}")
        self.prior_precision, self.link = prior_precision, link
        self.n_samples = _positive_int(n_samples, "n_samples")

    def _after_fit(self, x, y):
        phi = _laplace.with_bias(self._network(x)[1])
        alpha = None if isinstance(self.prior_precision, str) else self.prior_precision
        if self.task == "regression":
            self.posterior_ = _laplace.regression_posterior(phi, y, self.noise_std_**2, alpha)
        else:
            self.posterior_ = _laplace.classification_posterior(phi, y, self.last_layer(), alpha)

    def predict(self, x, *, key=None):
        """Linearised predictive; ``key`` for the "mc" link (default: one fixed at fit time)."""
        _, phi = self._network(self._check_x(x))
        f_mean, f_cov = _laplace.linearized_predictive(self.posterior_, _laplace.with_bias(phi))
        if self.task == "regression":
            epistemic = f_cov[:, 0, 0]
            return RegressionPredictive(f_mean[:, 0], epistemic + self.noise_std_**2, epistemic)
        if self.link == "probit":
            return ClassificationPredictive(_laplace.probit_softmax(f_mean, f_cov))
        key = self._predict_key if key is None else as_prng_key(key)
        return ClassificationPredictive(_laplace.mc_softmax(f_mean, f_cov, key, self.n_samples))


class MCDropout(MAPLastLayer):
    """Dropout (rate ``dropout_rate``) after every hidden layer, in training and at test time.

    The predictive averages ``n_samples`` stochastic forward passes f_s(x): regression mean
    (1/S) sum_s f_s, variance var_s(f_s) + sigma^2; classification (1/S) sum_s softmax(f_s).
    ``predict(x, key=None)`` uses a key fixed at fit time unless one is given (same x, same answer).
    """

    name = "mc_dropout"

    def __init__(self, task: str = "regression", *, dropout_rate: float = 0.1, n_samples: int = 100, **kwargs):
        super().__init__(task, **kwargs)
        rate = float(dropout_rate)
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"dropout_rate must be in [0, 1); got {dropout_rate!r}")
        self._dropout_rate = rate
        self.n_samples = _positive_int(n_samples, "n_samples")

    @property
    def dropout_rate(self) -> float:
        return self._dropout_rate

    def predict(self, x, *, key=None):
        x = self._check_x(x)
        key = self._predict_key if key is None else as_prng_key(key)
        train_def, _ = _graphdefs(self._arch)
        keys = jax.random.split(key, self.n_samples)
        out = np.asarray(_compiled_dropout_forward(train_def)(self.params_, self.rest_, jnp.asarray(x, jnp.float32),
                                                              keys), dtype=np.float64)  # (S, n, out)
        if self.task == "regression":
            epistemic = out[..., 0].var(axis=0)
            return RegressionPredictive(out[..., 0].mean(axis=0), epistemic + self.noise_std_**2, epistemic)
        return ClassificationPredictive(np.asarray(jax.nn.softmax(out, axis=-1)).mean(axis=0))


class DeepEnsemble(MAPLastLayer):
    """``n_members`` MAP networks from independent keys, trained together (``jax.vmap``).

    Member m is exactly ``MAPLastLayer(...).fit(x, y, jax.random.split(key, n_members)[m])``.
    Predictive: the uniform mixture; regression mean mu = (1/M) sum_m mu_m, variance
    (1/M) sum_m (sigma_m^2 + mu_m^2) - mu^2 (epistemic part: the variance of the mu_m);
    classification (1/M) sum_m softmax(f_m). ``members_`` gives the members as MAP models;
    :meth:`from_members` builds an ensemble from fitted MAP models.
    """

    name = "ensemble"

    def __init__(self, task: str = "regression", *, n_members: int = 5, **kwargs):
        super().__init__(task, **kwargs)
        self.n_members = _positive_int(n_members, "n_members")

    def fit(self, x, y, key):
        x, y, n_out = self._check_data(x, y)
        key = as_prng_key(key)
        self._arch, self._config = self._settings(x, n_out)
        xd, yd = self._device_data(x, y)
        keys = jax.vmap(lambda k: jax.random.split(k, 3))(jax.random.split(key, self.n_members))  # (M, 3)
        self.params_, self.rest_, self.loss_history_ = _fit_networks(
            self._arch, self._config, xd, yd, keys, members=True, progress=self.progress, desc=self.name)
        self._member_predict_keys = keys[:, 2]
        self._predict_key = keys[0, 2]
        self.n_classes_ = n_out if self.task == "classification" else None
        self._x_train, self._y_train = x, y
        self._fitted = True
        return self

    @classmethod
    def from_members(cls, members) -> DeepEnsemble:
        """An ensemble of fitted :class:`MAPLastLayer` models of one architecture and task."""
        members = list(members)
        if not members or not all(isinstance(m, MAPLastLayer) and m._fitted for m in members):
            raise ValueError("members must be a non-empty list of fitted MAPLastLayer models")
        first = members[0]
        if any(m._arch != first._arch or m.task != first.task for m in members):
            raise ValueError("all members must share the task and the architecture (input size, width, depth, ...)")
        ens = cls(first.task, n_members=len(members), width=first.width, depth=first.depth, steps=first.steps,
                  batch_size=first.batch_size, learning_rate=first.learning_rate,
                  weight_prior_precision=first.weight_prior_precision, n_classes=first.n_classes,
                  init_noise_std=first.init_noise_std, progress=first.progress)
        ens._arch, ens._config = first._arch, first._config
        ens.params_ = jax.tree.map(lambda *a: jnp.stack(a), *[m.params_ for m in members])
        ens.rest_ = jax.tree.map(lambda *a: jnp.stack(a), *[m.rest_ for m in members])
        ens.loss_history_ = np.stack([m.loss_history_ for m in members], axis=1)
        ens._member_predict_keys = jnp.stack([m._predict_key for m in members])
        ens._predict_key = first._predict_key
        ens.n_classes_, ens._x_train, ens._y_train = first.n_classes_, first._x_train, first._y_train
        ens._fitted = True
        return ens

    @property
    def members_(self) -> list[MAPLastLayer]:
        """The members as fitted MAP models (views of the stacked parameters)."""
        self._check_fitted()
        out = []
        for m in range(self.n_members):
            member = MAPLastLayer(self.task, width=self.width, depth=self.depth, steps=self.steps,
                                  batch_size=self.batch_size, learning_rate=self.learning_rate,
                                  weight_prior_precision=self.weight_prior_precision, n_classes=self.n_classes,
                                  init_noise_std=self.init_noise_std, progress=self.progress)
            member._arch, member._config = self._arch, self._config
            member.params_ = jax.tree.map(lambda a, m=m: a[m], self.params_)
            member.rest_ = jax.tree.map(lambda a, m=m: a[m], self.rest_)
            member.loss_history_ = self.loss_history_[:, m]
            member._predict_key = self._member_predict_keys[m]
            member.n_classes_, member._x_train, member._y_train = self.n_classes_, self._x_train, self._y_train
            member._fitted = True
            out.append(member)
        return out

    @property
    def noise_std_(self) -> np.ndarray:
        """Per-member noise standard deviations (M,) (regression)."""
        self._check_fitted()
        if self.task != "regression":
            raise AttributeError("noise_std_ exists for task='regression' only")
        return np.exp(np.asarray(self.params_["log_noise_std"][...], dtype=np.float64))

    def features(self, x):
        raise TypeError("an ensemble has one feature map per member: use ensemble.members_[m].features(x)")

    def last_layer(self):
        raise TypeError("an ensemble has one last layer per member: use ensemble.members_[m].last_layer()")

    def predict(self, x):
        x = self._check_x(x)
        _, eval_def = _graphdefs(self._arch)
        out, _ = _compiled_forward(eval_def, True)(self.params_, self.rest_, jnp.asarray(x, jnp.float32))
        out = np.asarray(out, dtype=np.float64)  # (M, n, out)
        if self.task == "regression":
            mu = out[..., 0]
            epistemic = mu.var(axis=0)
            return RegressionPredictive(mu.mean(axis=0), np.mean(self.noise_std_**2) + epistemic, epistemic)
        return ClassificationPredictive(np.asarray(jax.nn.softmax(out, axis=-1)).mean(axis=0))


#: the baselines by name, for notebooks and widgets that switch method
BASELINES = {"map": MAPLastLayer, "laplace": LastLayerLaplace, "mc_dropout": MCDropout, "ensemble": DeepEnsemble}


def make_baseline(name: str, task: str = "regression", **kwargs) -> MAPLastLayer:
    """An unfitted baseline by name (one of :data:`BASELINES`), e.g. ``make_baseline("ensemble",
    "classification", n_members=5, width=32)``; keyword arguments go to its constructor."""
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; choose one of {sorted(BASELINES)}")
    return BASELINES[name](task, **kwargs)


# ----------------------------------------------------------------------------- Kalman adapter
def kalman_features(model: MAPLastLayer, x) -> np.ndarray:
    """Features for :mod:`bayeskit.filters.online_classification`: phi(x) with a trailing 1,
    (n, width + 1) float64, from a fitted single-network model (MAP, Laplace, MC dropout with
    dropout off). The filter then learns (and tracks) the last layer online on top of them."""
    if not isinstance(model, MAPLastLayer) or isinstance(model, DeepEnsemble):
        raise TypeError("model must be a fitted single-network baseline (MAPLastLayer, LastLayerLaplace, "
                        "MCDropout); for an ensemble pick a member")
    return _laplace.with_bias(model.features(x))


def kalman_last_layer(model: MAPLastLayer, **kwargs):
    """An :class:`~bayeskit.filters.online_classification.OnlineKalmanClassifier` sized for the
    features of ``model`` (n_features = width + 1, n_classes from the fit); ``kwargs`` go to it
    (prior_var, gamma, learn_gamma, likelihood, ...). Feed it ``kalman_features(model, x)``."""
    from ..filters.online_classification import OnlineKalmanClassifier

    model._check_fitted()
    if model.task == "classification":
        return OnlineKalmanClassifier(model.width + 1, model.n_classes_, **kwargs)
    kwargs.setdefault("likelihood", "gaussian")
    return OnlineKalmanClassifier(model.width + 1, 1, **kwargs)
