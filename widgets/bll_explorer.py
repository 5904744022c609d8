"""LastLayerExplorer: Bayesian last layers (VBLL) against MAP, last-layer Laplace, MC dropout and
deep ensembles, on 1-D regression with a gap and 2-D classification, in JupyterLab.

What it shows:

* **gap regression** (:func:`bayeskit.bll.datasets.gap_regression`): the data, the predictive
  mean and its ±2 sd (95%) band of y, with the gap in the inputs and the tails beyond the
  training range shaded; beside it, the coverage of central predictive intervals in each region
  (a regression reliability diagram: on the diagonal = calibrated).
* **two moons / spirals** (:func:`~bayeskit.bll.datasets.two_moons`,
  :func:`~bayeskit.bll.datasets.spirals`): the predictive entropy on a fixed 64 x 64 grid (a heat
  map), the training data and far-away probes; beside it the reliability diagram of the test set
  (:func:`bayeskit.bll.metrics.reliability_bins`) with its ECE, and the out-of-distribution AUROC
  of the entropy (:func:`bayeskit.bll.metrics.ood_auroc`).

Methods (*Variational Bayesian Last Layers*, Harrison, Willes & Snoek; baselines from
:mod:`bayeskit.bll.baselines`): ``VBLL`` (features trained jointly with a VBLL head by
:func:`bayeskit.bll.train_vbll`), ``MAP``, ``Laplace`` (last-layer Laplace on the MAP network),
``dropout`` (MC dropout) and ``ensemble`` (deep ensemble).

Latency design (``DESIGN.md``, "Widgets"): a network is trained once per (dataset, width,
method) and cached (the retrain button trains the current one again, with a new seed); its
features and predictions on every fixed point set (grid, test set, probes) are stored. The
sliders then only change the last layer, which is recomputed from the frozen features:

* VBLL regression: with frozen features phi (n, d), lambda = ``regularization_weight`` / n and
  a fixed noise sigma, the VBLL objective is minimised in closed form by

      S = c (Phi^T Phi / sigma^2 + (c / s0) I)^-1,   m = S Phi^T y / (c sigma^2),   c = lambda n,

  s0 = prior_scale / d (:func:`vbll_regression_head`; c = 1 is Bayesian linear regression);
* VBLL classification: the discriminative head's objective (the paper's Jensen bound) has, for
  fixed class probabilities p~ = softmax(M phi + v / 2), the exact covariance update
  S_c = c (c I / s0 + sum_i p~_ic phi_i phi_i^T)^-1, and is convex in the means M: one jitted
  program alternates that update with Newton steps on M (:func:`vbll_classification_head`),
  with fixed shapes, so moving a slider never recompiles;
* Laplace: :func:`bayeskit.bll.laplace.regression_posterior` /
  :func:`~bayeskit.bll.laplace.classification_posterior` with prior precision d / prior_scale
  (the same prior variance as the VBLL head) and, for regression, the slider's noise;
* MAP, dropout, ensemble: their cached predictive; for regression the slider's noise replaces the
  learned one (variance = epistemic variance + sigma^2).

Draw: :class:`LastLayerCanvas` (``bll_canvas.js``) paints the panels in the browser from float32
arrays sent inside one ``hold_sync()``, and echoes ``painted = seq`` after each paint.
"""

from __future__ import annotations

import contextlib
import functools
import math
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import ipywidgets as w
import jax
import jax.numpy as jnp
import numpy as np
import traitlets as t
from flax import nnx
from scipy.stats import norm

import bayeskit
from bayeskit import _config  # noqa: F401  (float64 and the persistent compilation cache)
from bayeskit.bll import MLPFeatures, VBLLDiscClassification, VBLLModel, VBLLRegression, train_vbll
from bayeskit.bll import baselines as B
from bayeskit.bll import datasets as D
from bayeskit.bll import laplace as LA
from bayeskit.bll import metrics as M
from bayeskit.plot import ACCENT, MEAN, PALETTE, PRIOR, SAMPLES, TRUTH

from ._base import (
    Explorer,
    SpecCanvas,
    canonical_choice,
    canvas_module,
    explorer_view,
    help_panel,
    is_integer,
    log_sliders,
    positive_in_range,
    record_time,
    single_threaded_blas,
)

__all__ = [
    "LastLayerExplorer",
    "LastLayerCanvas",
    "vbll_regression_head",
    "vbll_classification_head",
    "load_head",
    "training_key",
    "baseline",
    "METHODS",
    "DATASETS",
    "WIDTHS",
    "CONTROLS",
]

DATASETS = ("gap", "two moons", "spirals")
METHODS = ("VBLL", "MAP", "Laplace", "dropout", "ensemble")
WIDTHS = (16, 32, 64)
CONTROLS = ("dataset", "method", "width", "prior_scale", "regularization_weight", "noise")
DEFAULTS = dict(dataset="gap", method="VBLL", width=32, prior_scale=1.0, regularization_weight=1.0, noise=0.1)
_BASELINE_NAMES = {"MAP": "map", "Laplace": "laplace", "dropout": "mc_dropout", "ensemble": "ensemble"}
_METHOD_ALIASES = {"vbll": "VBLL", "map": "MAP", "laplace": "Laplace", "dropout": "dropout",
                   "mcdropout": "dropout", "mc_dropout": "dropout", "ensemble": "ensemble",
                   "deepensemble": "ensemble"}
_LOG_SLIDERS = {
    "prior_scale": ("prior scale", (-2.0, 2.0),
                    "last-layer prior w ~ N(0, (prior scale / d) I) (VBLL and Laplace)"),
    "regularization_weight": ("reg. weight λN", (-2.0, 2.0),
                              "VBLL: lambda times N, the weight of the KL term (1 = the ELBO)"),
    "noise": ("noise sd σ", (-2.0, 0.5),
              "regression: observation-noise sd of every method; classification: VBLL logit-noise sd"),
}
GRID_SIZE = 64  # the entropy map's grid is GRID_SIZE x GRID_SIZE points: a fixed shape
N_BINS = 10  # reliability-diagram bins
N_LOGIT_DRAWS = 32  # fixed standard-normal draws for the VBLL classification predictive
NEWTON_ITERATIONS = 15
COVERAGE_LEVELS = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99])

WIDTH, HEIGHT = 1000, 500

# Okabe-Ito colours with the meanings bayeskit.plot gives them; greys for ink
COLORS = {
    "data": "#000000",
    "mean": MEAN,
    "band": "rgba(86, 180, 233, 0.35)",  # BAND
    "truth": TRUTH,
    "gap": "rgba(230, 159, 0, 0.13)",  # ACCENT
    "tails": "rgba(153, 153, 153, 0.16)",  # PRIOR
    "classes": (MEAN, SAMPLES, PALETTE[4]),
    "probes": "#555555",
    "bars": "rgba(86, 180, 233, 0.55)",
    "diagonal": PRIOR,
    "in": MEAN,
    "gap_line": ACCENT,
    "tails_line": TRUTH,
}
#: the entropy ramp: white (certain) -> orange -> vermilion (most uncertain), as RGB numbers
ENTROPY_STOPS = [[255, 255, 255], [230, 159, 0], [213, 94, 0]]

LABELS = {
    "band": "±2 sd (95%) predictive band of y",
    "mean": "predictive mean",
    "data": "training data",
    "truth": "true function",
    "gap": "gap: no training inputs",
    "tails": "tails: beyond the training range",
    "probes": "far-away probes (out of distribution)",
    "reliability": "accuracy per confidence bin (test set)",
    "diagonal": "perfect calibration",
    "coverage_in": "coverage, in distribution",
    "coverage_gap": "coverage, in the gap",
    "coverage_tails": "coverage, in the tails",
}

WHAT_TO_TRY = """
<b>What to try</b>
<ul style="margin-top:2px">
<li><i>gap</i>, method <i>MAP</i>: the band has the same width everywhere, so it is far too
narrow in the gap and the tails (look at the coverage lines on the right: far below the
diagonal there). Switch to <i>VBLL</i> or <i>Laplace</i>: the band widens away from the data.</li>
<li>With <i>VBLL</i>, slide the <i>prior scale</i> up and down: a tighter prior shrinks the band far
from the data (and the mean towards 0); a broad one widens it. The <i>reg. weight λN</i> scales
the KL term: at 1 the head is the exact Bayesian posterior on the learned features; above 1 the
band widens and the mean shrinks, below 1 it collapses towards MAP.</li>
<li>Raise the <i>noise sd</i>: the band grows by the same amount everywhere (aleatoric), while the
extra width in the gap (epistemic) stays.</li>
<li><i>two moons</i>: the heat map is the predictive entropy. MAP is confident (white) almost
everywhere, even far from the data; <i>ensemble</i> and <i>dropout</i> are unsure along the
boundary; the discriminative VBLL head is unsure along the boundary too, yet still confident far
away (the OOD AUROC in the caption can be below 0.5: notebook 05c explains why, and what the
generative head does instead).</li>
<li>Change the <i>feature width</i> or press <i>retrain</i>: a new network is trained (seconds);
everything else is recomputed from frozen features in milliseconds.</li>
</ul>
"""


# ---------------------------------------------------------------------------------------------
# Compute: last layers on frozen features
# ---------------------------------------------------------------------------------------------
class GaussianHead(NamedTuple):
    """A Gaussian last layer q(w_k) = N(mean_k, cov_k): mean (k, d), cov (k, d, d) (float64)."""

    mean: np.ndarray
    cov: np.ndarray


def vbll_regression_head(phi, y, *, prior_scale: float, regularization_weight: float,
                         noise_std: float) -> GaussianHead:
    """The minimiser of the VBLL regression objective on frozen features, noise fixed.

    phi: (n, d) features; y: (n,) targets. With lambda = ``regularization_weight`` (absolute, the
    ``VBLLRegression`` argument), c = lambda n, s0 = prior_scale / d and sigma = ``noise_std``,
    the objective -(1/n) sum_i E_q log N(y_i | w^T phi_i, sigma^2) + lambda KL(q || N(0, s0 I))
    (*Variational Bayesian Last Layers*, regression objective) is minimised by

        S = c (Phi^T Phi / sigma^2 + (c / s0) I)^-1,    m = S Phi^T y / (c sigma^2),

    (set its derivatives in m and S to zero). c = 1 (lambda = 1/n) is the exact Bayesian
    linear-regression posterior. Returns :class:`GaussianHead` with mean (1, d), cov (1, d, d).
    """
    phi = np.asarray(phi, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    n, d = phi.shape
    if y.shape[0] != n:
        raise ValueError(f"y has {y.shape[0]} entries but phi has {n} rows")
    c = float(regularization_weight) * n
    s2 = float(noise_std) ** 2
    precision = phi.T @ phi / s2 + (c * d / float(prior_scale)) * np.eye(d)
    chol = np.linalg.cholesky(precision)
    inv_chol = np.linalg.solve(chol, np.eye(d))
    inverse = inv_chol.T @ inv_chol
    mean = inverse @ (phi.T @ y) / s2
    cov = c * inverse
    return GaussianHead(mean[None, :], 0.5 * (cov + cov.T)[None])


def _quad(cov, phi):
    """phi_i^T cov_k phi_i: (n, k) for cov (k, d, d), phi (n, d)."""
    # (phi cov_k) . phi row by row: two plain matrix products, no (n, d, d) intermediate
    return jnp.sum(jnp.matmul(phi[None], cov) * phi[None], axis=-1).T


@functools.partial(jax.jit, static_argnames=("iterations",))
def _disc_head_optimum(phi, onehot, mean0, cov0, prior_variance, kl_weight, noise_variance, iterations):
    """Alternate the exact covariance update and a Newton step on the means (see
    :func:`vbll_classification_head`); every argument has a fixed shape per (n, d, C)."""
    n, d = phi.shape
    C = onehot.shape[1]
    eye = jnp.eye(d)

    def probs(mean, cov):
        v = _quad(cov, phi) + noise_variance
        return jax.nn.softmax(phi @ mean.T + 0.5 * v, axis=1)

    def body(_, carry):
        mean, cov = carry
        p = probs(mean, cov)
        # S_c = c (c I / s0 + sum_i p_ic phi_i phi_i^T)^-1
        A = jnp.einsum("nc,nd,ne->cde", p, phi, phi) + (kl_weight / prior_variance) * eye
        cov = kl_weight * jnp.linalg.inv(A)
        cov = 0.5 * (cov + jnp.swapaxes(cov, 1, 2))
        p = probs(mean, cov)
        # Newton on the means: gradient sum_i (p_i - y_i) phi_i^T + c M / s0, Hessian the softmax GGN
        grad = (p - onehot).T @ phi + (kl_weight / prior_variance) * mean  # (C, d)
        lam = p[:, :, None] * jnp.eye(C)[None] - p[:, :, None] * p[:, None, :]  # (n, C, C)
        H = jnp.einsum("nab,nd,ne->adbe", lam, phi, phi).reshape(C * d, C * d)
        H = H + (kl_weight / prior_variance) * jnp.eye(C * d)
        step = jnp.linalg.solve(H, grad.reshape(-1)).reshape(C, d)
        return mean - step, cov

    return jax.lax.fori_loop(0, iterations, body, (mean0, cov0))


def vbll_classification_head(phi, labels, n_classes: int, *, prior_scale: float, regularization_weight: float,
                             noise_std: float, init: GaussianHead | None = None,
                             iterations: int = NEWTON_ITERATIONS) -> GaussianHead:
    """The minimiser of the discriminative VBLL objective on frozen features, logit noise fixed.

    phi: (n, d); labels: (n,) ints in [0, C). The objective (the paper's Jensen bound, as
    :meth:`bayeskit.bll.VBLLDiscClassification.loss`) is, with c = lambda n, s0 = 2 prior_scale / d,
    v_ic = phi_i^T S_c phi_i + sigma^2 and p~_i = softmax(M phi_i + v_i / 2),

        n J = -sum_i [ m_{y_i}^T phi_i - log sum_c exp(m_c^T phi_i + v_ic / 2) ] + c KL(q || N(0, s0 I)).

    Its derivative in S_c vanishes at S_c = c (c I / s0 + sum_i p~_ic phi_i phi_i^T)^-1 (for the
    current p~), and it is convex in M with gradient sum_i (p~_i - y_i) phi_i^T + c M / s0 and
    Hessian sum_i (diag p~_i - p~_i p~_i^T) kron phi_i phi_i^T + (c / s0) I. ``iterations``
    rounds of (covariance update, Newton step), from ``init`` (e.g. the jointly trained head) or
    from zero means and the prior covariance. Returns :class:`GaussianHead` (C, d), (C, d, d).
    """
    phi = np.asarray(phi, dtype=np.float64)
    n, d = phi.shape
    onehot = np.eye(n_classes)[np.asarray(labels, dtype=np.int64)]
    s0 = 2.0 * float(prior_scale) / d
    if init is None:
        init = GaussianHead(np.zeros((n_classes, d)), np.broadcast_to(s0 * np.eye(d), (n_classes, d, d)).copy())
    mean, cov = _disc_head_optimum(jnp.asarray(phi), jnp.asarray(onehot), jnp.asarray(init.mean, jnp.float64),
                                   jnp.asarray(init.cov, jnp.float64), jnp.float64(s0),
                                   jnp.float64(float(regularization_weight) * n), jnp.float64(float(noise_std) ** 2),
                                   iterations=int(iterations))
    mean, cov = np.asarray(mean), np.asarray(cov)
    if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(cov))):
        raise FloatingPointError("the VBLL classification head did not converge (NaN); change the prior scale")
    return GaussianHead(mean, cov)


@jax.jit
def _disc_predictive(phi, mean, cov, noise_variance, normal_draws):
    """(1/S) sum_s softmax(M phi + sqrt(v) eps_s): the VBLL discriminative predictive (n, C)."""
    m = phi @ mean.T
    v = _quad(cov, phi) + noise_variance
    return jnp.mean(jax.nn.softmax(m[None] + jnp.sqrt(v)[None] * normal_draws, axis=-1), axis=0)


def load_head(head: nnx.Module, gaussian: GaussianHead, noise_std: float) -> nnx.Module:
    """Write a :class:`GaussianHead` and a noise sd into a dense bayeskit VBLL head (in place).

    The head's q(W) is stored as a Cholesky factor: log_diag = log diag(L), factor = strict
    lower part of L, L L^T = cov; noise_log_std = log sigma. Returns the head, so its own
    ``predict`` / ``loss`` can be compared with what the explorer draws.
    """
    L = np.linalg.cholesky(gaussian.cov)
    head.mean[...] = jnp.asarray(gaussian.mean, head.dtype)
    head.log_diag[...] = jnp.asarray(np.log(np.diagonal(L, axis1=1, axis2=2)), head.dtype)
    head.factor[...] = jnp.asarray(np.tril(L, -1), head.dtype)
    head.noise_log_std[...] = jnp.full(head.noise_log_std[...].shape, math.log(noise_std), head.dtype)
    return head


# ---------------------------------------------------------------------------------------------
# Data and trained models
# ---------------------------------------------------------------------------------------------
class _Data(NamedTuple):
    """A dataset with the fixed point sets the explorer evaluates on."""

    task: str
    split: Any  # RegressionSplit or ClassificationSplit
    x_eval: np.ndarray  # (m, d): regression test grid, or classification grid + test + probes
    n_classes: int
    grid_axes: tuple | None  # (a (G,), b (G,)) of the entropy map


@functools.lru_cache(maxsize=8)
def _dataset(name: str, seed: int = 0) -> _Data:
    if name == "gap":
        split = D.gap_regression(80, 300, seed=seed, noise_std=0.1)
        return _Data("regression", split, split.x_test, 1, None)
    split = (D.two_moons(300, 500, 200, seed=seed) if name == "two moons"
             else D.spirals(400, 500, 200, seed=seed, noise=0.08))
    xx, yy, grid = D.grid_2d(split.x_train, GRID_SIZE, expand=0.5)
    x_eval = np.concatenate([grid, split.x_test, split.x_ood])
    return _Data("classification", split, x_eval, split.n_classes, (xx[0], yy[:, 0]))


class _Trained(NamedTuple):
    """A trained network, reduced to what the sliders need (all float64 NumPy).

    phi_train (n, d) and phi_eval (m, d) features (VBLL, Laplace) or None; predictive on the
    evaluation points for the baselines: mean (m,) and epistemic (m,) (regression) or probs
    (m, C); last_layer (d + 1, C) (Laplace classification); init: the VBLL head as trained;
    info: learned noise and training time.
    """

    phi_train: np.ndarray | None
    phi_eval: np.ndarray | None
    mean: np.ndarray | None
    epistemic: np.ndarray | None
    probs: np.ndarray | None
    last_layer: np.ndarray | None
    init: GaussianHead | None
    info: dict


def training_key(method: str, width: int, seed: int) -> jax.Array:
    """The PRNG key the explorer trains ``method``'s network with (one per method, width, seed)."""
    return jax.random.fold_in(jax.random.key(seed), METHODS.index(method) * 1000 + width)


def baseline(method: str, task: str, width: int, steps: int, n_train: int, **overrides) -> B.MAPLastLayer:
    """The unfitted :mod:`bayeskit.bll.baselines` model the explorer trains for ``method``
    (``"MAP"``, ``"Laplace"``, ``"dropout"``, ``"ensemble"``); ``overrides`` go to its constructor."""
    kwargs = dict(width=width, depth=2, steps=steps, batch_size=min(n_train, 128), learning_rate=1e-2,
                  progress=False)
    if method == "ensemble":
        kwargs["n_members"] = 5
    kwargs.update(overrides)
    return B.make_baseline(_BASELINE_NAMES[method], task, **kwargs)


def _train(data: _Data, width: int, method: str, steps: int, seed: int) -> _Trained:
    """Train ``method``'s network at ``width`` on ``data`` (seconds); see :class:`_Trained`."""
    start = time.perf_counter()
    split = data.split
    x, y = split.x_train, split.y_train
    n = x.shape[0]
    key = training_key(method, width, seed)
    regression = data.task == "regression"
    if method == "VBLL":
        features = MLPFeatures(x.shape[1], width, 2, nnx.Rngs(jax.random.fold_in(key, 1)))
        rngs = nnx.Rngs(jax.random.fold_in(key, 2))
        head = (VBLLRegression(width, 1, regularization_weight=1.0 / n, rngs=rngs) if regression
                else VBLLDiscClassification(width, data.n_classes, regularization_weight=1.0 / n, rngs=rngs))
        model = VBLLModel(features, head)
        targets = y.astype(np.float32) if regression else y.astype(np.int32)
        history = train_vbll(model, x.astype(np.float32), targets, epochs=steps, batch_size=n,
                             learning_rate=1e-2, key=jax.random.fold_in(key, 3), progress=False)
        phi_train = np.asarray(model.features(x), dtype=np.float64)
        phi_eval = np.asarray(model.features(data.x_eval), dtype=np.float64)
        init = GaussianHead(np.asarray(head.mean[...], np.float64), np.asarray(head.weight_covariance(), np.float64))
        info = dict(learned_noise_std=float(np.sqrt(np.asarray(head.noise_variance())).mean()),
                    final_loss=float(history["loss"][-1]))
        return _Trained(phi_train, phi_eval, None, None, None, None, init,
                        info | dict(seconds=time.perf_counter() - start))
    model = baseline(method, data.task, width, steps, n).fit(x, y, key)
    info = {}
    if regression:
        info["learned_noise_std"] = float(np.mean(model.noise_std_))
    if method == "Laplace":
        phi_train = model.features(x)
        phi_eval = model.features(data.x_eval)
        return _Trained(phi_train, phi_eval, None, None, None, None if regression else model.last_layer(), None,
                        info | dict(seconds=time.perf_counter() - start))
    pred = model.predict(data.x_eval)
    if regression:
        return _Trained(None, None, np.asarray(pred.mean), np.asarray(pred.epistemic_variance), None, None, None,
                        info | dict(seconds=time.perf_counter() - start))
    return _Trained(None, None, None, None, np.asarray(pred.probs), None, None,
                    info | dict(seconds=time.perf_counter() - start))


# ---------------------------------------------------------------------------------------------
# Draw: an anywidget canvas
# ---------------------------------------------------------------------------------------------
class LastLayerCanvas(SpecCanvas):
    """The plot: a <canvas> painted in the browser by ``bll_canvas.js``.

    ``spec`` (JSON) lists the panels (pixel box, ranges, labels) and their layers (``heatmap``,
    ``span``, ``band``, ``line``, ``points``, ``bars``), each naming arrays in ``arrays`` (float32
    bytes, decoded by :meth:`array`) and carrying its legend label. Python bumps ``seq`` with every
    update; the front end sets ``painted = seq`` once it has painted it.
    """

    _esm = canvas_module("bll_canvas.js")
    _css = Path(__file__).with_name("bll_canvas.css")

    width = t.Int(WIDTH).tag(sync=True)
    height = t.Int(HEIGHT).tag(sync=True)


# ---------------------------------------------------------------------------------------------
# The explorer
# ---------------------------------------------------------------------------------------------
class LastLayerExplorer(Explorer):
    """Bayesian last layers vs the baselines, on gap regression and 2-D classification.

    ``LastLayerExplorer(**controls)`` starts from :data:`DEFAULTS` updated by ``controls`` (names
    in :data:`CONTROLS`: ``dataset`` in :data:`DATASETS`, ``method`` in :data:`METHODS`, ``width``
    in :data:`WIDTHS`, and the positive sliders ``prior_scale``, ``regularization_weight`` (lambda
    times the training-set size N: 1 is the ELBO) and ``noise``). ``steps``: training steps
    (epochs of full-batch training for VBLL; default 1500, 400 in fast mode). ``seed`` fixes data
    and networks. ``warm_up=True`` trains the other methods of the current (dataset, width) in a
    background thread, so switching method is instant. ``state`` and ``set(**controls)`` give
    scripted access; ``canvas`` is the :class:`LastLayerCanvas` (what the browser draws);
    ``handler_times`` the seconds each update took (compute + push).
    """

    def __init__(self, *, steps: int | None = None, seed: int = 0, warm_up: bool = True, **controls):
        values = dict(DEFAULTS)
        values.update({name: self._validate(name, v) for name, v in controls.items()})
        if steps is None:
            steps = 400 if bayeskit.fast_mode() else 1500
        if not isinstance(steps, (int, np.integer)) or isinstance(steps, bool) or steps < 1:
            raise ValueError(f"steps must be a positive integer; got {steps!r}")
        if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
            raise ValueError(f"seed must be an integer >= 0; got {seed!r}")
        self.steps, self.seed = int(steps), int(seed)
        self.handler_times: list[float] = []
        self._batch_depth, self._dirty = 0, False
        self._cache: dict[tuple, _Trained] = {}
        self._locks: dict[tuple, threading.Lock] = {}
        self._cache_lock = threading.Lock()
        self._retrains: dict[tuple, int] = {}  # (dataset, width, method) -> times retrained
        self._summary: dict[str, Any] = {}
        self._drawn: dict[str, np.ndarray] = {}
        self._draws = {}  # fixed logit draws per (m, C)
        self._head: GaussianHead | None = None
        self.canvas = LastLayerCanvas()

        style = {"description_width": "110px"}
        c: dict[str, w.Widget] = {}
        c["dataset"] = w.ToggleButtons(options=list(DATASETS), value=values["dataset"], description="dataset",
                                       style={"description_width": "110px", "button_width": "80px"})
        c["method"] = w.ToggleButtons(options=list(METHODS), value=values["method"], description="method",
                                      style={"description_width": "110px", "button_width": "68px"},
                                      tooltips=["variational Bayesian last layer", "point estimate",
                                                "last-layer Laplace on the MAP network", "MC dropout",
                                                "deep ensemble of 5 networks"])
        c["width"] = w.ToggleButtons(options=list(WIDTHS), value=values["width"], description="feature width",
                                     style={"description_width": "110px", "button_width": "48px"})
        c.update(log_sliders(_LOG_SLIDERS, values, step=0.05, style=style, width="380px"))
        self._use_controls(c)
        self.retrain_button = w.Button(description="retrain", icon="refresh",
                                       tooltip="train the current method's network again (new seed)",
                                       layout=w.Layout(width="140px"))
        self.retrain_button.on_click(self._on_retrain_clicked)
        self.metrics_label = w.HTML()
        self.note = w.HTML()
        self.status = w.HTML()
        self.help = help_panel(WHAT_TO_TRY, "1000px")
        side = w.VBox([c["dataset"], c["method"], c["width"], c["prior_scale"], c["regularization_weight"],
                       c["noise"], self.retrain_button, self.metrics_label, self.note, self.status])
        self.view = explorer_view("Bayesian last-layer explorer",
                                  "a trained feature network phi(x) with a Bayesian (VBLL, Laplace) or "
                                  "baseline last layer",
                                  side, self.canvas, self.help)
        self._warm_up = warm_up
        self._warm_thread: threading.Thread | None = None
        self._refresh()

    # -- public API ------------------------------------------------------------------------
    @property
    def state(self) -> Mapping[str, Any]:
        """Read-only snapshot: every control (names in :data:`CONTROLS`) and what is shown.

        Plus ``task``, ``lambda`` (the absolute regularisation weight, regularization_weight / N),
        ``n_train``, metrics of the shown predictive (regression: ``nll``, ``rmse``,
        ``coverage_in``, ``coverage_gap``, ``coverage_tails`` (fraction of test y inside the ±2 sd
        band per region), ``mean_sd_gap``, ``mean_sd_in``; classification: ``accuracy``, ``nll``,
        ``ece``, ``ood_auroc``), ``train_seconds`` and ``retrains``.
        """
        return self._snapshot(CONTROLS, self._summary)

    def retrain(self) -> LastLayerExplorer:
        """Train the current method's network again, with a new seed, and redraw."""
        key = self._key()
        with self._cache_lock:
            self._cache.pop(key, None)
        base = key[:3]
        self._retrains[base] = self._retrains.get(base, 0) + 1
        self._refresh()
        return self

    def predictive(self) -> dict[str, np.ndarray]:
        """What is drawn, in float64: regression ``mean`` (m,), ``sd`` (m,) at ``x`` (m,);
        classification ``probs`` on the grid, test set and probes (``probs_grid``, ``probs_test``,
        ``probs_ood``) and ``entropy_grid`` (G, G)."""
        return dict(self._drawn)

    def features(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(phi_train (n, d), phi_eval (m, d), x_eval (m, in_dim)) of the current VBLL or Laplace
        network: the frozen features the sliders' last layer is computed from (float64)."""
        trained = self._trained(self._key())
        if trained.phi_train is None:
            raise ValueError(f"method {self.controls['method'].value!r} keeps no features; use VBLL or Laplace")
        return trained.phi_train, trained.phi_eval, _dataset(self.controls["dataset"].value, self.seed).x_eval

    @property
    def head(self) -> GaussianHead | None:
        """The VBLL last layer behind the current picture (None for the other methods)."""
        return self._head if self.controls["method"].value == "VBLL" else None

    def data(self):
        """The current dataset split (:class:`bayeskit.bll.datasets.RegressionSplit` or
        :class:`~bayeskit.bll.datasets.ClassificationSplit`)."""
        return _dataset(self.controls["dataset"].value, self.seed).split

    # -- validation ------------------------------------------------------------------------
    @staticmethod
    def _validate(name: str, value):
        if name == "dataset":
            if isinstance(value, str) and value.replace("_", " ").lower() in DATASETS:
                return value.replace("_", " ").lower()
            raise ValueError(f"dataset must be one of {DATASETS}; got {value!r}")
        if name == "method":
            return canonical_choice("method", value, METHODS, _METHOD_ALIASES, keep="_")
        if name == "width":
            if not is_integer(value) or int(value) not in WIDTHS:
                raise ValueError(f"width must be one of {WIDTHS}; got {value!r}")
            return int(value)
        if name not in _LOG_SLIDERS:
            raise ValueError(f"unknown control {name!r}; the controls are {CONTROLS}")
        lo, hi = (10.0**e for e in _LOG_SLIDERS[name][1])
        return positive_in_range(name, value, lo, hi, rel_tol=1e-9)

    # -- training cache --------------------------------------------------------------------
    def _key(self, method: str | None = None) -> tuple:
        c = self.controls
        base = (c["dataset"].value, c["width"].value, method or c["method"].value)
        return (*base, self._retrains.get(base, 0))

    def _trained(self, key: tuple) -> _Trained:
        dataset, width, method, retrains = key
        with self._cache_lock:
            if key in self._cache:
                return self._cache[key]
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:  # a background thread may be training this one: wait for it
            with self._cache_lock:
                if key in self._cache:
                    return self._cache[key]
            main = threading.current_thread() is threading.main_thread()
            with single_threaded_blas() if main else contextlib.nullcontext():
                trained = _train(_dataset(dataset, self.seed), width, method, self.steps, self.seed + retrains)
            with self._cache_lock:
                self._cache[key] = trained
            return trained

    def _start_warm_up(self):
        if not self._warm_up or (self._warm_thread is not None and self._warm_thread.is_alive()):
            return
        keys = [self._key(m) for m in METHODS]
        if all(k in self._cache for k in keys):
            return

        def warm():
            for key in keys:
                self._trained(key)

        self._start_warm_thread(warm, "LastLayerExplorer-warm-up")

    # -- events ----------------------------------------------------------------------------
    def _on_retrain_clicked(self, button):
        self._report_failure("training", self.retrain, pending="training...")

    # -- compute + draw --------------------------------------------------------------------
    def _refresh(self):
        start = time.perf_counter()
        self._dirty = False
        c = self.controls
        data = _dataset(c["dataset"].value, self.seed)
        key = self._key()
        cached = key in self._cache
        if not cached:
            self.status.value = f"training the {c['method'].value} network (width {c['width'].value})..."
        trained = self._trained(key)
        method = c["method"].value
        regression = data.task == "regression"
        uses = {"prior_scale": method in ("VBLL", "Laplace"), "regularization_weight": method == "VBLL",
                "noise": regression or method == "VBLL"}
        for name, used in uses.items():
            c[name].disabled = not used
        with single_threaded_blas():
            if regression:
                self._draw_regression(data, trained)
            else:
                self._draw_classification(data, trained)
        seconds = record_time(self.handler_times, start)
        ignored = [_LOG_SLIDERS[n][0] for n, used in uses.items() if not used]
        self.note.value = (f"<i>{method} ignores: {', '.join(ignored)} (greyed out).</i>" if ignored else "")
        self.status.value = (f"network trained in {trained.info['seconds']:.1f} s" if not cached
                             else f"updated in {1000 * seconds:.0f} ms (frozen features)")
        self._start_warm_up()

    # regression ---------------------------------------------------------------------------
    def _regression_predictive(self, data: _Data, trained: _Trained) -> tuple[np.ndarray, np.ndarray]:
        c = self.controls
        method, sigma = c["method"].value, c["noise"].value
        split = data.split
        n, d = split.x_train.shape[0], c["width"].value
        if method == "VBLL":
            head = vbll_regression_head(trained.phi_train, split.y_train, prior_scale=c["prior_scale"].value,
                                        regularization_weight=c["regularization_weight"].value / n, noise_std=sigma)
            self._head = head
            mean = trained.phi_eval @ head.mean[0]
            var = np.einsum("nd,de,ne->n", trained.phi_eval, head.cov[0], trained.phi_eval) + sigma**2
        elif method == "Laplace":
            posterior = LA.regression_posterior(LA.with_bias(trained.phi_train), split.y_train, sigma**2,
                                                d / c["prior_scale"].value)
            f_mean, f_cov = LA.linearized_predictive(posterior, LA.with_bias(trained.phi_eval))
            mean, var = f_mean[:, 0], f_cov[:, 0, 0] + sigma**2
        else:
            mean, var = trained.mean, trained.epistemic + sigma**2
        return np.asarray(mean, np.float64), np.sqrt(np.asarray(var, np.float64))

    def _draw_regression(self, data: _Data, trained: _Trained):
        split = data.split
        mean, sd = self._regression_predictive(data, trained)
        x = split.x_test[:, 0]
        self._drawn = dict(x=x, mean=mean, sd=sd)
        y = split.y_test
        inside = np.abs(y - mean) <= 2 * sd
        z = norm.ppf(0.5 + COVERAGE_LEVELS / 2)
        regions = {"in": D.IN_DISTRIBUTION, "gap": D.GAP, "tails": D.TAILS}
        coverage = {r: np.mean(np.abs(y - mean)[split.region == code, None] <= z * sd[split.region == code, None],
                               axis=0) for r, code in regions.items()}
        in_d = split.region == D.IN_DISTRIBUTION
        self._summary = dict(
            task="regression", n_train=int(split.x_train.shape[0]),
            **{"lambda": self.controls["regularization_weight"].value / split.x_train.shape[0]},
            nll=M.gaussian_nll(y, mean, sd**2), rmse=M.rmse(y[in_d], mean[in_d]),
            coverage_in=float(inside[in_d].mean()), coverage_gap=float(inside[split.region == D.GAP].mean()),
            coverage_tails=float(inside[split.region == D.TAILS].mean()),
            mean_sd_in=float(sd[in_d].mean()), mean_sd_gap=float(sd[split.region == D.GAP].mean()),
            train_seconds=trained.info["seconds"], retrains=self._key()[3],
        )
        s = self._summary
        lo_x, hi_x = float(x[0]), float(x[-1])
        gap_lo, gap_hi = (-0.5, 1.0)
        data_lo, data_hi = float(split.x_train.min()), float(split.x_train.max())
        y_lo = float(min(split.y_train.min(), split.f_test.min())) - 1.0
        y_hi = float(max(split.y_train.max(), split.f_test.max())) + 1.0
        arrays = dict(x=x, mean=mean, lower=mean - 2 * sd, upper=mean + 2 * sd, f=split.f_test,
                      x_train=split.x_train[:, 0], y_train=split.y_train, levels=COVERAGE_LEVELS,
                      cov_in=coverage["in"], cov_gap=coverage["gap"], cov_tails=coverage["tails"],
                      diag=np.array([0.0, 1.0]))
        method = self.controls["method"].value
        main = {
            "box": [70, 40, 560, 290], "title": f"{method}: predictive of y on the gap data",
            "xlabel": "x", "ylabel": "y", "x_range": [lo_x, hi_x], "y_range": [y_lo, y_hi],
            "layers": [
                {"kind": "span", "x0": lo_x, "x1": data_lo, "color": COLORS["tails"], "text": "tail",
                 "label": LABELS["tails"]},
                {"kind": "span", "x0": data_hi, "x1": hi_x, "color": COLORS["tails"], "text": "tail"},
                {"kind": "span", "x0": gap_lo, "x1": gap_hi, "color": COLORS["gap"], "text": "gap",
                 "label": LABELS["gap"]},
                {"kind": "band", "x": "x", "lower": "lower", "upper": "upper", "color": COLORS["band"],
                 "label": LABELS["band"]},
                {"kind": "line", "x": "x", "y": "f", "color": COLORS["truth"], "width": 1.2, "dash": [5, 4],
                 "label": LABELS["truth"]},
                {"kind": "line", "x": "x", "y": "mean", "color": COLORS["mean"], "width": 2.2,
                 "label": LABELS["mean"]},
                {"kind": "points", "x": "x_train", "y": "y_train", "marker": "dot", "size": 3,
                 "color": COLORS["data"], "label": LABELS["data"]},
            ],
        }
        side = {
            "box": [720, 40, 250, 250], "title": "coverage of central predictive intervals",
            "xlabel": "nominal level", "ylabel": "observed fraction of test y", "x_range": [0, 1], "y_range": [0, 1],
            "layers": [
                {"kind": "line", "x": "diag", "y": "diag", "color": COLORS["diagonal"], "dash": [4, 3],
                 "label": LABELS["diagonal"]},
                {"kind": "line", "x": "levels", "y": "cov_in", "color": COLORS["in"], "width": 2,
                 "label": LABELS["coverage_in"]},
                {"kind": "line", "x": "levels", "y": "cov_gap", "color": COLORS["gap_line"], "width": 2,
                 "label": LABELS["coverage_gap"]},
                {"kind": "line", "x": "levels", "y": "cov_tails", "color": COLORS["tails_line"], "width": 2,
                 "label": LABELS["coverage_tails"]},
                {"kind": "points", "x": "levels", "y": "cov_gap", "marker": "dot", "size": 2.5,
                 "color": COLORS["gap_line"]},
            ],
        }
        caption = (f"{method}, width {self.controls['width'].value}: test NLL {s['nll']:.2f}; inside the ±2 sd band: "
                   f"{s['coverage_in']:.0%} in distribution, {s['coverage_gap']:.0%} in the gap, "
                   f"{s['coverage_tails']:.0%} in the tails (95% if calibrated)")
        self.canvas.push({"caption": caption, "panels": [main, side]}, arrays)
        self.metrics_label.value = (
            f"<b>test NLL</b> {s['nll']:.3f} &nbsp; <b>RMSE</b> (in distribution) {s['rmse']:.3f}<br>"
            f"mean sd: {s['mean_sd_in']:.3f} near the data, {s['mean_sd_gap']:.3f} in the gap")

    # classification -----------------------------------------------------------------------
    def logit_draws(self, m: int, C: int) -> np.ndarray:
        """The fixed standard-normal draws (N_LOGIT_DRAWS, m, C) of the VBLL classification predictive."""
        if (m, C) not in self._draws:
            rng = np.random.default_rng(12345)
            self._draws[(m, C)] = rng.standard_normal((N_LOGIT_DRAWS, m, C))
        return self._draws[(m, C)]

    def _classification_probs(self, data: _Data, trained: _Trained) -> np.ndarray:
        c = self.controls
        method = c["method"].value
        split = data.split
        d = c["width"].value
        if method == "VBLL":
            sigma = c["noise"].value
            head = vbll_classification_head(trained.phi_train, split.y_train, data.n_classes,
                                            prior_scale=c["prior_scale"].value,
                                            regularization_weight=c["regularization_weight"].value / split.x_train.shape[0],
                                            noise_std=sigma, init=trained.init)
            self._head = head
            draws = self.logit_draws(trained.phi_eval.shape[0], data.n_classes)
            return np.asarray(_disc_predictive(trained.phi_eval, head.mean, head.cov, sigma**2, draws))
        if method == "Laplace":
            alpha = d / (2.0 * c["prior_scale"].value)
            posterior = LA.classification_posterior(LA.with_bias(trained.phi_train), split.y_train,
                                                    trained.last_layer, alpha)
            f_mean, f_cov = LA.linearized_predictive(posterior, LA.with_bias(trained.phi_eval))
            return LA.probit_softmax(f_mean, f_cov)
        return trained.probs

    def _draw_classification(self, data: _Data, trained: _Trained):
        split = data.split
        probs = self._classification_probs(data, trained)
        probs = probs / probs.sum(axis=1, keepdims=True)  # float round-off only
        g = GRID_SIZE * GRID_SIZE
        n_test = split.x_test.shape[0]
        p_grid, p_test, p_ood = probs[:g], probs[g:g + n_test], probs[g + n_test:]
        entropy = M.predictive_entropy(probs)
        e_grid, e_test, e_ood = entropy[:g], entropy[g:g + n_test], entropy[g + n_test:]
        bins = M.reliability_bins(split.y_test, p_test, n_bins=N_BINS)
        self._drawn = dict(probs_grid=p_grid, probs_test=p_test, probs_ood=p_ood,
                           entropy_grid=e_grid.reshape(GRID_SIZE, GRID_SIZE))
        self._summary = dict(
            task="classification", n_train=int(split.x_train.shape[0]),
            **{"lambda": self.controls["regularization_weight"].value / split.x_train.shape[0]},
            accuracy=M.accuracy(split.y_test, p_test), nll=M.categorical_nll(split.y_test, p_test), ece=bins.ece,
            ood_auroc=M.ood_auroc(e_test, e_ood), train_seconds=trained.info["seconds"], retrains=self._key()[3],
        )
        s = self._summary
        a, b = data.grid_axes
        centres = 0.5 * (bins.edges[:-1] + bins.edges[1:])
        arrays = dict(entropy=e_grid, x_ood=split.x_ood[:, 0], y_ood=split.x_ood[:, 1], centres=centres,
                      accuracy=np.where(bins.counts > 0, bins.accuracy, np.nan),
                      confidence=np.where(bins.counts > 0, bins.confidence, np.nan), diag=np.array([0.0, 1.0]))
        layers = [{"kind": "heatmap", "values": "entropy", "nx": GRID_SIZE, "ny": GRID_SIZE,
                   "x_extent": [float(a[0]), float(a[-1])], "y_extent": [float(b[0]), float(b[-1])],
                   "vmin": 0.0, "vmax": float(np.log(data.n_classes)), "stops": ENTROPY_STOPS,
                   "colorbar_label": "predictive entropy (nats)", "label": "predictive entropy"},
                  {"kind": "points", "x": "x_ood", "y": "y_ood", "marker": "cross", "size": 2.2,
                   "color": COLORS["probes"], "label": LABELS["probes"]}]
        for k in range(data.n_classes):
            arrays[f"x{k}"] = split.x_train[split.y_train == k, 0]
            arrays[f"y{k}"] = split.x_train[split.y_train == k, 1]
            layers.append({"kind": "points", "x": f"x{k}", "y": f"y{k}", "marker": "dot", "size": 3,
                           "color": COLORS["classes"][k % 3], "label": f"training data, class {k}"})
        method = self.controls["method"].value
        # the plot keeps equal units on both axes: the box's aspect follows the grid's
        span_x, span_y = float(a[-1] - a[0]), float(b[-1] - b[0])
        height = 300
        width = int(min(520, max(200, height * span_x / span_y)))
        main = {"box": [70, 40, width, height], "title": f"{method}: predictive entropy, {self.controls['dataset'].value}",
                "xlabel": "x1", "ylabel": "x2", "x_range": [float(a[0]), float(a[-1])],
                "y_range": [float(b[0]), float(b[-1])], "layers": layers}
        side = {"box": [720, 40, 250, 250], "title": f"reliability diagram (ECE {bins.ece:.3f})",
                "xlabel": "confidence (max probability)", "ylabel": "accuracy", "x_range": [0, 1], "y_range": [0, 1],
                "layers": [
                    {"kind": "bars", "x": "centres", "y": "accuracy", "bar_width": 1.0 / N_BINS, "color": COLORS["bars"],
                     "label": LABELS["reliability"]},
                    {"kind": "line", "x": "diag", "y": "diag", "color": COLORS["diagonal"], "dash": [4, 3],
                     "label": LABELS["diagonal"]},
                    {"kind": "points", "x": "confidence", "y": "accuracy", "marker": "dot", "size": 3,
                     "color": COLORS["mean"], "label": "(mean confidence, accuracy) of each bin"},
                ]}
        caption = (f"{method}, width {self.controls['width'].value}: test accuracy {s['accuracy']:.1%}, NLL "
                   f"{s['nll']:.3f}, ECE {s['ece']:.3f}; OOD AUROC of the entropy (test vs far probes) "
                   f"{s['ood_auroc']:.2f}")
        self.canvas.push({"caption": caption, "panels": [main, side]}, arrays)
        self.metrics_label.value = (
            f"<b>accuracy</b> {s['accuracy']:.1%} &nbsp; <b>NLL</b> {s['nll']:.3f} &nbsp; <b>ECE</b> {s['ece']:.3f}<br>"
            f"<b>OOD AUROC</b> (entropy, far probes) {s['ood_auroc']:.3f}")

