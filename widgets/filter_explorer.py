"""FilterExplorer: Kalman, extended, unscented and particle filters, and the discriminative
Kalman filter, on simulated data, in JupyterLab.

Two views (the ``view`` control):

* **tracking**: a target moving in the plane with nearly constant velocity, state
  x = (p_x, p_y, v_x, v_y), time step ``DT``, ``T`` steps::

      x_t = F x_{t-1} + w_t,   w_t ~ N(0, q Q1)     (white-noise acceleration, q = process noise)
      y_t = h_k(p_t) + v_t,    v_t ~ N(0, r I)      (r = observation noise)
      h_k(p) = p (1 + k |p|^2 / L^2)                (radial "lens" distortion, k = nonlinearity)

  With k = 0 the observation is linear and the Kalman filter (KF) is exact; the EKF and UKF then
  equal it to round-off, and the particle filter (PF) approximates it. With k > 0 the "KF" is the
  Kalman filter of the linearisation of h at the origin (h'(0) = I: it takes y for the position),
  the textbook mistake of ignoring a nonlinearity; the EKF re-linearises at every estimate, the
  UKF pushes sigma points through h, the PF weights particles by the exact likelihood. So all
  four methods always apply. The RTS smoother is offered for the KF (for the others it would be
  a different algorithm: the control is disabled with a note). Missing observations are a mask
  (NaN), never a change of shape. Filters are :mod:`bayeskit.filters` (``kalman``, ``nonlinear``).

* **decoding**: the discriminative Kalman filter (DKF, *A Discriminative Approach to Bayesian
  Filtering with Applications to Human Neural Decoding*) decoding a simulated 2-D cursor velocity
  from N nonlinearly tuned Poisson neurons (:func:`bayeskit.filters.dkf.simulate_cursor`),
  next to a Kalman filter with a linear-Gaussian observation model x = H z + b + N(0, R) fitted
  by least squares. The DKF's regressor is Nadaraya-Watson (bandwidth by leave-one-out, the
  cheapest of :mod:`bayeskit.filters.regressors`), with a held-out residual covariance.

Design (``DESIGN.md``, "Widgets"):

* Compute: the jitted bayeskit filters, called with arguments whose shapes and dtypes never
  change: T is fixed, missing data are NaN, the nonlinearity k is a traced argument (the
  nonlinear filters are wrapped in one jitted function each so their static ``h`` does not
  depend on k), the PF has a fixed number of particles. In the decoding view the simulation
  always has ``MAX_NEURONS`` neurons; a smaller N zeroes the unused neurons' counts (a zero
  column adds nothing to the Nadaraya-Watson distances, and gets a zero row in H), so the
  regressor and the filters see fixed shapes. The neurons are used in an order that spreads
  their preferred directions round the circle for every N. Fitting the regressor for a new N
  costs 0.1-0.5 s, so fits are cached per (seed, N) and every choice of N is fitted in a
  background thread, after the other filters have been compiled there.
* Draw: :class:`FilterCanvas`, an anywidget that paints stacked panels in the browser
  (``filter_canvas.js``) from float32 arrays sent as binary buffers inside one ``hold_sync()``;
  it echoes ``painted = seq`` after each paint.
"""

from __future__ import annotations

import contextlib
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

from bayeskit import _config  # noqa: F401  (float64 and the persistent compilation cache)
from bayeskit.filters import LinearGaussianSSM, NonlinearGaussianSSM
from bayeskit.filters import kalman as _kalman
from bayeskit.filters import nonlinear as _nonlinear
from bayeskit.plot import MEAN, PALETTE

from ._base import (
    Explorer,
    SpecCanvas,
    canonical_choice,
    canvas_module,
    explorer_view,
    help_panel,
    is_integer,
    log_sliders,
    one_of,
    record_time,
    single_threaded_blas,
)

__all__ = [
    "FilterExplorer",
    "FilterCanvas",
    "TrackingData",
    "simulate_tracking",
    "tracking_models",
    "distort",
    "neuron_order",
    "decoding_data",
    "METHODS",
    "NEURON_CHOICES",
]

# ---------------------------------------------------------------------------------------------
# Problem sizes and ranges
# ---------------------------------------------------------------------------------------------
T = 200  # time steps of both views: shapes never change
DT = 0.1
LENS_SCALE = 10.0  # L in h_k(p) = p (1 + k |p|^2 / L^2)
N_PARTICLES = 500
ELLIPSE_EVERY = 10  # draw a 95% ellipse every this many steps
CHI2_95_2D = 5.991464547107979  # 95% quantile of chi-square with 2 degrees of freedom
M0 = np.array([-8.0, -4.0, 0.8, 0.4])  # prior mean of the first state (and the simulation's)
P0 = np.diag([1.0, 1.0, 0.1, 0.1])

METHODS = ("KF", "EKF", "UKF", "PF")
METHOD_NAMES = {
    "KF": "Kalman filter",
    "EKF": "extended Kalman filter",
    "UKF": "unscented Kalman filter",
    "PF": f"bootstrap particle filter ({N_PARTICLES} particles)",
}
_METHOD_ALIASES = {
    "kf": "KF", "kalman": "KF", "kalmanfilter": "KF",
    "ekf": "EKF", "extended": "EKF", "ukf": "UKF", "unscented": "UKF",
    "pf": "PF", "particle": "PF", "particlefilter": "PF", "bootstrap": "PF",
}
ESTIMATES = ("filter", "smoother")
VIEWS = ("tracking", "decoding")

MAX_NEURONS = 200
NEURON_CHOICES = (5, 10, 20, 30, 50, 75, 100, 150, 200)
N_TRAIN = 600  # cursor steps used to learn the regressor and the dynamics; the next T are decoded

_PROCESS_RANGE = (-4.0, 0.0)  # log10 of q
_OBSERVATION_RANGE = (-2.0, 1.0)  # log10 of r
_LOG_SLIDERS = {
    "process_noise": ("process noise q", _PROCESS_RANGE,
                      "q: variance rate of the random acceleration (how much the target manoeuvres)"),
    "observation_noise": ("obs noise r", _OBSERVATION_RANGE, "r: variance of each observed coordinate"),
}
CONTROLS = ("view", "method", "estimate", "process_noise", "observation_noise", "missing",
            "nonlinearity", "seed", "n_neurons")
DEFAULTS = dict(view="tracking", method="KF", estimate="filter", process_noise=1e-2,
                observation_noise=0.25, missing=0.1, nonlinearity=0.0, seed=0, n_neurons=200)

# Okabe-Ito colours with the meanings bayeskit.plot gives them (colour-blind safe); greys for ink
COLORS = {
    "truth": "#222222",
    "obs": "rgba(230, 159, 0, 0.75)",  # ACCENT
    "missing": "#9a9a9a",
    "estimate": MEAN,
    "band": "rgba(86, 180, 233, 0.30)",  # BAND
    "ellipse": "rgba(0, 114, 178, 0.55)",  # MEAN
    "dkf": MEAN,
    "kf": PALETTE[4],  # reddish purple
}

LABELS = {
    "truth": "true path (simulated)",
    "obs": "observations y = h(p) + noise",
    "missing": "step with a missing observation",
    "ellipse": "95% ellipse of the position estimate (every 10th step)",
    "band": "±2 sd of the estimate: 95% credible band",
    "dkf": "DKF decoded velocity",
    "dkf_band": "±2 sd of the DKF: 95% credible band",
    "kf": "Kalman filter, linear observation model",
    "true_velocity": "true cursor velocity",
}

WHAT_TO_TRY = """
<b>What to try</b>
<ul style="margin-top:2px">
<li><i>Tracking</i>, KF: raise the <i>missing</i> fraction. Where observations are missing (grey
ticks) the filter only predicts, and its band widens until the next observation pulls it in.
Switch <i>estimate</i> to <i>smoother</i>: using the future too, the band pinches in the gaps and
the RMSE drops.</li>
<li>Raise <i>obs noise r</i>: the filter trusts the observations less and the estimate gets
smoother than the observations. Raise <i>process noise q</i>: the target manoeuvres more, and the
filter follows the observations more closely. The noise sliders change the simulated data too
(the filters are told the true noise levels): the data are regenerated from the <i>same</i>
random numbers of the seed, so the path deforms smoothly instead of jumping to a new random draw.
The method, estimate and missing fraction leave the data alone, so you compare methods on the
very same observations. Press <i>resample data</i> for a new seed.</li>
<li>With <i>nonlinearity</i> 0, KF, EKF and UKF give the same answer (the model is linear); the
PF is close. Raise the nonlinearity: observations are pushed outwards (a lens distortion). The KF
keeps treating y as the position and is biased far from the centre; the EKF and UKF account for
the distortion; the PF too, with some Monte-Carlo noise. Compare the RMSEs.</li>
<li><i>Decoding</i>: it starts with 200 neurons, where the DKF (a nonlinear regression of velocity
on spike counts, combined with the dynamics by Bayes' rule) beats the Kalman filter, whose linear
model of how neurons respond to velocity is wrong: they are sharply tuned to direction and respond
to speed squared. Slide the <i>neurons</i> down: with 50 or fewer the two are about even. The
paper's argument is that p(velocity | counts) becomes Gaussian only when the counts carry a lot of
information (many neurons); with little, the regression is poor and its errors are not Gaussian.
(The regressor here is the quick Nadaraya-Watson average trained on 600 steps; press
<i>resample data</i> to see how much the numbers vary between simulations.)</li>
</ul>
"""


# ---------------------------------------------------------------------------------------------
# Tracking: model and simulation (common random numbers per seed)
# ---------------------------------------------------------------------------------------------
def _transition_matrix(dt: float = DT) -> np.ndarray:
    F = np.eye(4)
    F[0, 2] = F[1, 3] = dt
    return F


def _unit_process_cov(dt: float = DT) -> np.ndarray:
    """Q1: covariance of the state increment per unit acceleration variance rate (q = 1)."""
    block = np.array([[dt**3 / 3, dt**2 / 2], [dt**2 / 2, dt]])
    return np.kron(block, np.eye(2))


F_MATRIX = _transition_matrix()
Q_UNIT = _unit_process_cov()
H_LINEAR = np.hstack([np.eye(2), np.zeros((2, 2))])  # h'(0) for every k: y ≈ position


def distort(x, k):
    """h_k: the observed position p (1 + k |p|^2 / L^2) of a state x (4,) (jax.numpy)."""
    p = x[:2]
    return p * (1.0 + k * jnp.dot(p, p) / LENS_SCALE**2)


def _dynamics(x):
    return jnp.asarray(F_MATRIX) @ x


def tracking_models(process_noise: float, observation_noise: float, nonlinearity: float):
    """The models the tracking view filters with: (LinearGaussianSSM, NonlinearGaussianSSM).

    The linear one is the KF's (observation linearised at the origin, exact when k = 0); the
    nonlinear one (f(x) = F x, h = :func:`distort` with this k) is the EKF's, UKF's and PF's.
    """
    Q = float(process_noise) * Q_UNIT
    R = float(observation_noise) * np.eye(2)
    k = float(nonlinearity)
    linear = LinearGaussianSSM(F_MATRIX, H_LINEAR, Q, R, M0, P0)
    nonlinear = NonlinearGaussianSSM(_dynamics, lambda x: distort(x, k), Q, R, M0, P0)
    return linear, nonlinear


class TrackingData(NamedTuple):
    """A simulated tracking run: states (T, 4), observations (T, 2) with NaN rows where missing,
    observed (T,) bool."""

    states: np.ndarray
    observations: np.ndarray
    observed: np.ndarray


def simulate_tracking(seed: int, process_noise: float, observation_noise: float, missing: float,
                      nonlinearity: float) -> TrackingData:
    """Simulate the tracking model from the standard-normal draws of ``seed``.

    The draws (initial state, process noise, observation noise, one uniform per step for the
    missing mask) depend on the seed only, so the noise levels scale the same random numbers
    and step t is missing when its uniform is below ``missing``: a larger fraction only adds
    missing steps.
    """
    rng = np.random.default_rng(int(seed))
    z0, zw, zv, u = rng.standard_normal(4), rng.standard_normal((T, 4)), rng.standard_normal((T, 2)), rng.uniform(size=T)
    LQ = np.linalg.cholesky(float(process_noise) * Q_UNIT)
    states = np.empty((T, 4))
    states[0] = M0 + np.sqrt(np.diag(P0)) * z0
    increments = zw @ LQ.T
    for i in range(1, T):
        states[i] = F_MATRIX @ states[i - 1] + increments[i]
    p = states[:, :2]
    y = p * (1.0 + float(nonlinearity) * np.sum(p * p, axis=1, keepdims=True) / LENS_SCALE**2)
    y = y + math.sqrt(float(observation_noise)) * zv
    observed = u >= float(missing)
    y[~observed] = np.nan
    return TrackingData(states, y, observed)


# Jitted wrappers of the bayeskit filters. k is traced, so the static ``h`` of the nonlinear
# filters is built inside the trace and one program serves every nonlinearity.
@jax.jit
def _run_kf(Q, R, ys):
    model = LinearGaussianSSM(jnp.asarray(F_MATRIX), jnp.asarray(H_LINEAR), Q, R, jnp.asarray(M0), jnp.asarray(P0))
    return _kalman._filter(model, ys, True)


@jax.jit
def _run_rts(Q, R, ys):
    model = LinearGaussianSSM(jnp.asarray(F_MATRIX), jnp.asarray(H_LINEAR), Q, R, jnp.asarray(M0), jnp.asarray(P0))
    filtered = _kalman._filter(model, ys, True)
    return _kalman._smooth(model, filtered)


@jax.jit
def _run_ekf(k, Q, R, ys):
    return _nonlinear._ekf(_dynamics, lambda x: distort(x, k), Q, R, jnp.asarray(M0), jnp.asarray(P0), ys)


@jax.jit
def _run_ukf(k, Q, R, ys):
    return _nonlinear._ukf(_dynamics, lambda x: distort(x, k), Q, R, jnp.asarray(M0), jnp.asarray(P0), ys,
                           1.0, 2.0, 0.0)


@jax.jit
def _run_pf(k, Q, R, ys, key):
    return _nonlinear._pf(_dynamics, lambda x: distort(x, k), Q, R, jnp.asarray(M0), jnp.asarray(P0), ys, key,
                          N_PARTICLES)


def particle_key(seed: int):
    """The PF's random key for a data seed (the same data and seed give the same PF answer)."""
    return jax.random.fold_in(jax.random.key(int(seed)), 1)


def _tracking_estimate(method: str, smooth: bool, q: float, r: float, k: float, ys: np.ndarray, seed: int):
    """(means (T, 4), covariances (T, 4, 4)) of the chosen method; smooth only applies to KF."""
    Q = np.float64(q) * Q_UNIT
    R = np.float64(r) * np.eye(2)
    kk = np.float64(k)
    if method == "KF":
        if smooth:
            means, covs = _run_rts(Q, R, ys)
        else:
            out = _run_kf(Q, R, ys)
            means, covs = out.means, out.covariances
    elif method == "EKF":
        out = _run_ekf(kk, Q, R, ys)
        means, covs = out.means, out.covariances
    elif method == "UKF":
        out = _run_ukf(kk, Q, R, ys)
        means, covs = out.means, out.covariances
    else:
        out = _run_pf(kk, Q, R, ys, particle_key(seed))
        means, covs = out.means, out.covariances
    return np.asarray(means), np.asarray(covs)


def _ellipses(means: np.ndarray, covs: np.ndarray, every: int = ELLIPSE_EVERY, n: int = 33):
    """95% ellipses of the 2-D positions at every ``every``-th step, as one NaN-separated polyline."""
    idx = np.arange(0, means.shape[0], every)
    angle = np.linspace(0.0, 2.0 * np.pi, n)
    circle = np.stack([np.cos(angle), np.sin(angle)])  # (2, n)
    C = covs[idx][:, :2, :2]
    C = 0.5 * (C + np.swapaxes(C, 1, 2))
    vals, vecs = np.linalg.eigh(C)
    scale = np.sqrt(np.maximum(vals, 0.0) * CHI2_95_2D)  # (m, 2)
    pts = means[idx, :2, None] + np.einsum("mij,mj,jn->min", vecs, scale, circle)  # (m, 2, n)
    pts = np.concatenate([pts, np.full((idx.size, 2, 1), np.nan)], axis=2)
    return pts[:, 0, :].ravel(), pts[:, 1, :].ravel()


# ---------------------------------------------------------------------------------------------
# Decoding: the simulated cursor, the DKF and the linear Kalman filter
# ---------------------------------------------------------------------------------------------
def neuron_order(n: int = MAX_NEURONS) -> np.ndarray:
    """Neuron indices ordered so that every prefix spreads the preferred directions evenly.

    :func:`~bayeskit.filters.dkf.simulate_cursor` gives neuron i the preferred direction
    2 pi i / n + offset; the first N neurons of this order are chosen greedily, each the one
    farthest (round the circle) from those already chosen.
    """
    position = np.arange(n) / n
    order = [0]
    nearest = np.abs((position - position[0] + 0.5) % 1.0 - 0.5)
    nearest[0] = -1.0
    for _ in range(n - 1):
        i = int(np.argmax(nearest))
        order.append(i)
        nearest = np.minimum(nearest, np.abs((position - position[i] + 0.5) % 1.0 - 0.5))
        nearest[order] = -1.0
    return np.array(order)


_NEURON_ORDER = neuron_order()


def decoding_data(seed: int):
    """(velocity (N_TRAIN + T, 2), counts (N_TRAIN + T, MAX_NEURONS)) for a seed: the first
    N_TRAIN rows train the decoders, the last T are decoded. Columns in :func:`neuron_order`."""
    from bayeskit.filters.dkf import simulate_cursor

    velocity, counts = simulate_cursor(jax.random.key(int(seed)), N_TRAIN + T, MAX_NEURONS)
    return velocity, counts[:, _NEURON_ORDER]


class DecodingResult(NamedTuple):
    dkf_means: np.ndarray  # (T, 2)
    dkf_covs: np.ndarray  # (T, 2, 2)
    kf_means: np.ndarray  # (T, 2)
    kf_covs: np.ndarray  # (T, 2, 2)
    n_fallback: int
    bandwidth: float


@jax.jit
def _reduced_kf(A, Gamma, S, m, y_reduced, R_reduced):
    model = LinearGaussianSSM(A, jnp.eye(2), Gamma, R_reduced, jnp.zeros(2), S)
    out = _kalman._filter(model, y_reduced, False)
    return out.means + m, out.covariances


def _decode(velocity: np.ndarray, counts: np.ndarray, n_neurons: int) -> DecodingResult:
    """Fit the DKF (Nadaraya-Watson) and the linear KF on the training rows; decode the test rows.

    Unused neurons (columns >= n_neurons) are zeroed, so every shape is fixed (module docstring).
    The linear KF x_t = H (z_t - m) + b + N(0, R) is run through the sufficient statistic of its
    observation: with J = H^T R^{-1} H, the 2-D pseudo-observation J^{-1} H^T R^{-1} (x_t - b)
    with noise covariance J^{-1} gives exactly the filter of the N-dimensional observation (the
    Gaussian likelihood of z_t is the same), and costs a 2 x 2 update per step.
    """
    from bayeskit.filters.dkf import DiscriminativeKalmanFilter

    x = counts.copy()
    x[:, n_neurons:] = 0.0
    x_train, z_train, x_test = x[:N_TRAIN], velocity[:N_TRAIN], x[N_TRAIN:]
    dkf = DiscriminativeKalmanFilter("nadaraya-watson", seed=0).fit(x_train, z_train)
    result = dkf.filter(x_test)
    dyn = dkf.dynamics_
    # linear-Gaussian observation model by least squares, on the used neurons only
    active = np.arange(MAX_NEURONS) < n_neurons
    zc = z_train - dyn.state_mean
    b = x_train.mean(axis=0)
    H = np.zeros((MAX_NEURONS, 2))
    H[active] = np.linalg.lstsq(zc, x_train[:, active] - b[active], rcond=None)[0].T
    resid = x_train[:, active] - b[active] - zc @ H[active].T
    R = np.cov(resid.T).reshape(n_neurons, n_neurons)
    L = np.linalg.cholesky(R + 1e-9 * np.mean(np.diag(R)) * np.eye(n_neurons))
    W = np.linalg.solve(L, H[active])  # L^{-1} H: J = W^T W
    J = W.T @ W
    Jinv = np.linalg.inv(J)
    Jinv = 0.5 * (Jinv + Jinv.T)
    y_white = np.linalg.solve(L, (x_test[:, active] - b[active]).T).T  # rows L^{-1} (x_t - b)
    y_reduced = y_white @ W @ Jinv  # rows J^{-1} H^T R^{-1} (x_t - b)
    kf_means, kf_covs = _reduced_kf(*(np.asarray(v) for v in dyn), y_reduced, Jinv)
    return DecodingResult(np.asarray(result.means), np.asarray(result.covariances), np.asarray(kf_means),
                          np.asarray(kf_covs), int(result.n_fallback),
                          float(dkf.regressor_.mean_regressor.bandwidth_))


def _nrmse(truth: np.ndarray, estimate: np.ndarray) -> float:
    spread = np.mean(np.sum((truth - truth.mean(axis=0)) ** 2, axis=1))
    return float(np.sqrt(np.mean(np.sum((truth - estimate) ** 2, axis=1)) / spread))


def _rmse(truth: np.ndarray, estimate: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.sum((truth - estimate) ** 2, axis=1))))


# ---------------------------------------------------------------------------------------------
# Draw: an anywidget canvas
# ---------------------------------------------------------------------------------------------


class FilterCanvas(SpecCanvas):
    """The plot: a <canvas> painted in the browser by ``filter_canvas.js``.

    ``spec`` (JSON) lists panels (ranges, axis labels, title) and their layers (``line``,
    ``band``, ``points``, ``ticks``), each naming arrays in ``arrays`` (float32 little-endian
    bytes, decoded by :meth:`array`) and carrying its legend label. ``seq`` is bumped by Python
    with every update; the front end sets ``painted = seq`` once it has painted that update.
    """

    _esm = canvas_module("filter_canvas.js")
    _css = Path(__file__).with_name("filter_canvas.css")

    width = t.Int(700).tag(sync=True)
    height = t.Int(680).tag(sync=True)


def _range(*arrays, pad: float = 0.06, minimum: float = 1.0):
    values = np.concatenate([np.asarray(a, dtype=float).ravel() for a in arrays])
    values = values[np.isfinite(values)]
    lo, hi = (float(values.min()), float(values.max())) if values.size else (-1.0, 1.0)
    span = max(hi - lo, minimum)
    mid = 0.5 * (lo + hi)
    half = 0.5 * span * (1 + 2 * pad)
    return [mid - half, mid + half]


# ---------------------------------------------------------------------------------------------
# The explorer
# ---------------------------------------------------------------------------------------------
class FilterExplorer(Explorer):
    """Filters on simulated data: tracking (KF / EKF / UKF / PF, filter or smoother) and neural
    decoding (DKF vs a Kalman filter) with one canvas drawn in the browser.

    ``FilterExplorer(**controls)`` starts from :data:`DEFAULTS` updated by ``controls`` (names
    in :data:`CONTROLS`). ``warm_up=False`` skips the background compilation and fitting (tests).
    Display it as the last expression of a cell. ``state`` and ``set(**controls)`` give scripted
    access; ``canvas`` is the :class:`FilterCanvas` (what the browser draws).
    """

    def __init__(self, *, warm_up: bool = True, **controls):
        values = dict(DEFAULTS)
        values.update({name: self._validate(name, v) for name, v in controls.items()})
        self.handler_times: list[float] = []
        self._batch_depth, self._dirty = 0, False
        self._data: TrackingData | None = None
        self._data_key = None
        self._decoding_lock = threading.RLock()
        self._decoding_data: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._decoding_cache: dict[tuple[int, int], DecodingResult] = {}
        self._summary: dict[str, Any] = {}
        self.canvas = FilterCanvas()

        style = {"description_width": "120px"}
        layout = w.Layout(width="360px")
        c: dict[str, w.Widget] = {}
        c["view"] = w.ToggleButtons(options=[("tracking", "tracking"), ("decoding (DKF)", "decoding")],
                                    value=values["view"], description="view", style=style)
        c["method"] = w.ToggleButtons(options=list(METHODS), value=values["method"], description="method",
                                      style={"description_width": "120px", "button_width": "52px"},
                                      tooltips=[METHOD_NAMES[m] for m in METHODS])
        c["estimate"] = w.ToggleButtons(options=list(ESTIMATES), value=values["estimate"], description="estimate",
                                        style={"description_width": "120px", "button_width": "80px"},
                                        tooltips=["p(x_t | y_0..t): past and present data",
                                                  "p(x_t | y_0..T-1): all data (RTS smoother; KF only)"])
        c.update(log_sliders(_LOG_SLIDERS, values, step=0.05, style=style, width="360px"))
        c["missing"] = w.FloatSlider(value=values["missing"], min=0.0, max=0.9, step=0.05, description="missing",
                                     readout_format=".2f", style=style, layout=layout,
                                     tooltip="fraction of time steps whose observation is missing")
        c["nonlinearity"] = w.FloatSlider(value=values["nonlinearity"], min=0.0, max=1.0, step=0.05,
                                          description="nonlinearity k", readout_format=".2f", style=style,
                                          layout=layout, tooltip="k in y = p (1 + k |p|^2 / 100) + noise")
        c["seed"] = w.BoundedIntText(value=values["seed"], min=0, max=2**31 - 1, description="seed", style=style,
                                     layout=w.Layout(width="220px"))
        c["n_neurons"] = w.SelectionSlider(options=list(NEURON_CHOICES), value=values["n_neurons"],
                                           description="neurons", style=style, layout=layout,
                                           continuous_update=True)
        self._use_controls(c)
        self.resample_button = w.Button(description="resample data", icon="refresh",
                                        tooltip="a new seed: new random numbers for the simulation",
                                        layout=w.Layout(width="150px"))
        self.resample_button.on_click(self._on_resample_clicked)
        self.note = w.HTML()
        self.rmse_label = w.HTML()
        self.status = w.HTML()
        self.help = help_panel(WHAT_TO_TRY, "1080px")
        self._tracking_box = w.VBox([c["method"], c["estimate"], c["process_noise"], c["observation_noise"],
                                     c["missing"], c["nonlinearity"]])
        self._decoding_box = w.VBox([c["n_neurons"]])
        side = w.VBox([c["view"], self._tracking_box, self._decoding_box,
                       w.HBox([c["seed"], self.resample_button]), self.rmse_label, self.note, self.status],
                      layout=w.Layout(min_width="380px"))
        self.view = explorer_view("Bayesian filtering explorer",
                                  "tracking with KF / EKF / UKF / particle filter; "
                                  "neural decoding with the discriminative Kalman filter",
                                  w.HBox([self.canvas, side]), self.help)
        self._warm_up = warm_up
        self._warm_thread: threading.Thread | None = None
        self._refresh()
        if warm_up:
            self._start_warm_up()

    # -- public API ------------------------------------------------------------------------
    @property
    def state(self) -> Mapping[str, Any]:
        """Read-only snapshot: every control's value (names in ``CONTROLS``) and what is shown.

        Plus the keys of the view on show. Tracking: ``showing`` (e.g. ``"KF smoother"``),
        ``rmse`` (position RMSE of the shown estimate against the true path),
        ``rmse_observations`` (of the observed y alone), ``n_missing``, ``missing_steps`` (tuple
        of t). Decoding: ``rmse_dkf``, ``rmse_kf`` (velocity RMSE), ``nrmse_dkf``, ``nrmse_kf``
        (divided by the spread of the true velocity), ``n_fallback`` (DKF steps that used the
        robust update).
        """
        return self._snapshot(CONTROLS, self._summary)

    def resample(self) -> FilterExplorer:
        """New data: the next seed."""
        return self.set(seed=self.controls["seed"].value + 1)

    def tracking_data(self) -> TrackingData:
        """The simulated tracking data currently shown (states, observations with NaN, observed)."""
        return self._tracking_data()

    def decoding_result(self) -> tuple[np.ndarray, np.ndarray, DecodingResult]:
        """(velocity, counts, DecodingResult) of the current seed and number of neurons."""
        seed, n = self.controls["seed"].value, self.controls["n_neurons"].value
        velocity, counts = self._cursor(seed)
        return velocity, counts, self._decoded(seed, n)

    # -- validation ------------------------------------------------------------------------
    @staticmethod
    def _validate(name: str, value):
        if name == "view":
            if value in VIEWS:
                return value
            if isinstance(value, str) and value.lower() in ("dkf", "decoding (dkf)", "neural decoding"):
                return "decoding"
            raise ValueError(f"view must be one of {VIEWS}; got {value!r}")
        if name == "method":
            return canonical_choice("method", value, METHODS, _METHOD_ALIASES)
        if name == "estimate":
            return one_of("estimate", value, ESTIMATES)
        if name == "seed":
            if not is_integer(value):
                raise ValueError(f"seed must be an integer >= 0; got {value!r}")
            if not 0 <= int(value) < 2**31:
                raise ValueError(f"seed must be an integer in [0, 2**31); got {value!r}")
            return int(value)
        if name == "n_neurons":
            if not is_integer(value) or int(value) not in NEURON_CHOICES:
                raise ValueError(f"n_neurons must be one of {NEURON_CHOICES}; got {value!r}")
            return int(value)
        if name not in ("process_noise", "observation_noise", "missing", "nonlinearity"):
            raise ValueError(f"unknown control {name!r}; the controls are {CONTROLS}")
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be a number; got {value!r}") from None
        if not math.isfinite(v):
            raise ValueError(f"{name} must be finite; got {value!r}")
        if name in _LOG_SLIDERS:
            lo, hi = (10.0**e for e in _LOG_SLIDERS[name][1])
            if v <= 0:
                raise ValueError(f"{name} is a variance and must be > 0; got {value!r}")
        else:
            lo, hi = (0.0, 0.9) if name == "missing" else (0.0, 1.0)
        if not lo * (1 - 1e-12) <= v <= hi * (1 + 1e-12):
            raise ValueError(f"{name} must lie in the slider's range [{lo:g}, {hi:g}]; got {v:g}")
        return v

    # -- events ----------------------------------------------------------------------------

    def _on_resample_clicked(self, button):
        self._report_failure("resampling", self.resample)

    # -- compute ---------------------------------------------------------------------------
    def _tracking_data(self) -> TrackingData:
        c = self.controls
        key = (c["seed"].value, c["process_noise"].value, c["observation_noise"].value, c["missing"].value,
               c["nonlinearity"].value)
        if key != self._data_key:
            self._data = simulate_tracking(*key)
            self._data_key = key
        return self._data

    def _cursor(self, seed: int):
        with self._decoding_lock:
            if seed not in self._decoding_data:
                self._decoding_data = {seed: decoding_data(seed)}  # keep one seed's data
                self._decoding_cache = {k: v for k, v in self._decoding_cache.items() if k[0] == seed}
            return self._decoding_data[seed]

    def _decoded(self, seed: int, n_neurons: int) -> DecodingResult:
        with self._decoding_lock:
            key = (seed, n_neurons)
            if key not in self._decoding_cache:
                velocity, counts = self._cursor(seed)
                # threadpoolctl's limit is process-wide: only the main thread sets (and restores) it,
                # so two threads cannot restore each other's settings out of order
                main = threading.current_thread() is threading.main_thread()
                with single_threaded_blas() if main else contextlib.nullcontext():
                    self._decoding_cache[key] = _decode(velocity, counts, n_neurons)
            return self._decoding_cache[key]

    # -- draw ------------------------------------------------------------------------------
    def _refresh(self):
        start = time.perf_counter()
        self._dirty = False
        tracking = self.controls["view"].value == "tracking"
        self._tracking_box.layout.display = None if tracking else "none"
        self._decoding_box.layout.display = "none" if tracking else None
        if tracking:
            self._draw_tracking()
        else:
            self._draw_decoding()
        record_time(self.handler_times, start)

    def _draw_tracking(self):
        c = self.controls
        method, estimate = c["method"].value, c["estimate"].value
        smooth = method == "KF" and estimate == "smoother"
        c["estimate"].disabled = method != "KF"
        data = self._tracking_data()
        with single_threaded_blas():
            means, covs = _tracking_estimate(method, smooth, c["process_noise"].value, c["observation_noise"].value,
                                             c["nonlinearity"].value, data.observations, c["seed"].value)
        truth = data.states
        rmse = _rmse(truth[:, :2], means[:, :2])
        obs = data.observations
        rmse_obs = _rmse(truth[data.observed, :2], obs[data.observed]) if data.observed.any() else float("nan")
        showing = f"{method} {'smoother' if smooth else 'filter'}"
        missing_steps = np.flatnonzero(~data.observed)
        self._summary = dict(showing=showing, rmse=rmse, rmse_observations=rmse_obs,
                             n_missing=int(missing_steps.size), missing_steps=tuple(int(i) for i in missing_steps))
        time_axis = np.arange(T) * DT
        sd_x = np.sqrt(np.maximum(covs[:, 0, 0], 0.0))
        ex, ey = _ellipses(means, covs)
        arrays = {
            "t": time_axis, "true_px": truth[:, 0], "true_py": truth[:, 1],
            "obs_x": obs[:, 0], "obs_y": obs[:, 1],
            "missing_px": truth[missing_steps, 0], "missing_py": truth[missing_steps, 1],
            "missing_t": time_axis[missing_steps],
            "est_px": means[:, 0], "est_py": means[:, 1],
            "lower_px": means[:, 0] - 2 * sd_x, "upper_px": means[:, 0] + 2 * sd_x,
            "ellipse_x": ex, "ellipse_y": ey,
        }
        est_label = f"{showing}: posterior mean"
        map_panel = {
            "title": "the target in the plane", "xlabel": "position p_x", "ylabel": "position p_y", "weight": 1.35,
            "equal": True,
            "x_range": _range(truth[:, 0], obs[:, 0], means[:, 0]),
            "y_range": _range(truth[:, 1], obs[:, 1], means[:, 1]),
            "layers": [
                {"kind": "line", "x": "ellipse_x", "y": "ellipse_y", "color": COLORS["ellipse"], "width": 1,
                 "label": LABELS["ellipse"]},
                {"kind": "points", "x": "obs_x", "y": "obs_y", "marker": "dot", "size": 2.2, "color": COLORS["obs"],
                 "label": LABELS["obs"]},
                {"kind": "line", "x": "true_px", "y": "true_py", "color": COLORS["truth"], "width": 1.5,
                 "label": LABELS["truth"]},
                {"kind": "points", "x": "missing_px", "y": "missing_py", "marker": "ring", "size": 2.5,
                 "color": COLORS["missing"], "label": "true position at a step whose observation is missing"},
                {"kind": "line", "x": "est_px", "y": "est_py", "color": COLORS["estimate"], "width": 2,
                 "label": est_label},
            ],
        }
        time_panel = {
            "title": "p_x over time", "xlabel": "time t", "ylabel": "position p_x", "weight": 1.0,
            "x_range": [0.0, float(time_axis[-1])],
            "y_range": _range(truth[:, 0], obs[:, 0], means[:, 0] - 2 * sd_x, means[:, 0] + 2 * sd_x),
            "layers": [
                {"kind": "band", "x": "t", "lower": "lower_px", "upper": "upper_px", "color": COLORS["band"],
                 "label": LABELS["band"]},
                {"kind": "points", "x": "t", "y": "obs_x", "marker": "dot", "size": 2.2, "color": COLORS["obs"],
                 "label": LABELS["obs"]},
                {"kind": "line", "x": "t", "y": "true_px", "color": COLORS["truth"], "width": 1.5,
                 "label": LABELS["truth"]},
                {"kind": "line", "x": "t", "y": "est_px", "color": COLORS["estimate"], "width": 2, "label": est_label},
                {"kind": "ticks", "x": "missing_t", "color": COLORS["missing"], "label": LABELS["missing"]},
            ],
        }
        caption = (f"{METHOD_NAMES[method]}{' + RTS smoother' if smooth else ''}: position RMSE {rmse:.3f} "
                   f"(observations alone {rmse_obs:.3f}); {missing_steps.size} of {T} observations missing")
        self.canvas.push({"caption": caption, "panels": [map_panel, time_panel]}, arrays)
        self.rmse_label.value = (f"<b>position RMSE</b> of the {showing}: {rmse:.3f}<br>"
                                 f"observations alone: {rmse_obs:.3f}")
        notes = []
        if method != "KF":
            notes.append("The smoother is offered for the KF only (an extended / unscented / particle smoother "
                         "is a different algorithm): the filter is shown.")
        if method == "KF" and c["nonlinearity"].value > 0:
            notes.append("k > 0: the KF uses h linearised at the origin (it takes y for the position).")
        self.note.value = "<br>".join(f"<i>{n}</i>" for n in notes)

    def _draw_decoding(self):
        c = self.controls
        seed, n = c["seed"].value, c["n_neurons"].value
        cached = (seed, n) in self._decoding_cache
        velocity, _ = self._cursor(seed)
        res = self._decoded(seed, n)
        truth = velocity[N_TRAIN:]
        self._summary = dict(
            rmse_dkf=_rmse(truth, res.dkf_means), rmse_kf=_rmse(truth, res.kf_means),
            nrmse_dkf=_nrmse(truth, res.dkf_means), nrmse_kf=_nrmse(truth, res.kf_means),
            n_fallback=res.n_fallback,
        )
        s = self._summary
        time_axis = np.arange(T) * DT  # simulate_cursor's default bin width, 0.1 s
        # cursor position: the integral of the velocity over the decoded window, from the origin
        pos = {name: np.vstack([np.zeros(2), np.cumsum(v, axis=0) * DT])
               for name, v in (("true", truth), ("dkf", res.dkf_means), ("kf", res.kf_means))}
        sd = np.sqrt(np.maximum(res.dkf_covs[:, 0, 0], 0.0))
        arrays = {
            "t": time_axis,
            "true_vx": truth[:, 0], "dkf_vx": res.dkf_means[:, 0], "kf_vx": res.kf_means[:, 0],
            "dkf_lower": res.dkf_means[:, 0] - 2 * sd, "dkf_upper": res.dkf_means[:, 0] + 2 * sd,
            "true_x": pos["true"][:, 0], "true_y": pos["true"][:, 1],
            "dkf_x": pos["dkf"][:, 0], "dkf_y": pos["dkf"][:, 1],
            "kf_x": pos["kf"][:, 0], "kf_y": pos["kf"][:, 1],
        }
        dkf_label = f"{LABELS['dkf']} (RMSE {s['rmse_dkf']:.3f})"
        kf_label = f"{LABELS['kf']} (RMSE {s['rmse_kf']:.3f})"
        path_panel = {
            "title": "cursor position: the decoded velocity integrated over the 20 s window",
            "xlabel": "cursor x", "ylabel": "cursor y", "weight": 1.2, "equal": True,
            "x_range": _range(pos["true"][:, 0], pos["dkf"][:, 0], pos["kf"][:, 0]),
            "y_range": _range(pos["true"][:, 1], pos["dkf"][:, 1], pos["kf"][:, 1]),
            "layers": [
                {"kind": "line", "x": "true_x", "y": "true_y", "color": COLORS["truth"], "width": 2,
                 "label": "true cursor path"},
                {"kind": "line", "x": "kf_x", "y": "kf_y", "color": COLORS["kf"], "width": 1.5, "dash": [5, 3],
                 "label": "cursor path from the Kalman filter's velocity"},
                {"kind": "line", "x": "dkf_x", "y": "dkf_y", "color": COLORS["dkf"], "width": 2,
                 "label": "cursor path from the DKF's velocity"},
            ],
        }
        velocity_panel = {
            "title": "velocity v_x over time (the decoded state)", "xlabel": "time t (s)", "ylabel": "velocity v_x",
            "weight": 1.0, "x_range": [0.0, float(time_axis[-1])],
            "y_range": _range(truth[:, 0], res.kf_means[:, 0], res.dkf_means[:, 0] - 2 * sd,
                              res.dkf_means[:, 0] + 2 * sd),
            "layers": [
                {"kind": "band", "x": "t", "lower": "dkf_lower", "upper": "dkf_upper", "color": COLORS["band"],
                 "label": LABELS["dkf_band"]},
                {"kind": "line", "x": "t", "y": "true_vx", "color": COLORS["truth"], "width": 1.5,
                 "label": LABELS["true_velocity"]},
                {"kind": "line", "x": "t", "y": "kf_vx", "color": COLORS["kf"], "width": 1.5, "dash": [5, 3],
                 "label": kf_label},
                {"kind": "line", "x": "t", "y": "dkf_vx", "color": COLORS["dkf"], "width": 2, "label": dkf_label},
            ],
        }
        caption = (f"{n} neurons: velocity RMSE DKF {s['rmse_dkf']:.3f} vs KF {s['rmse_kf']:.3f} "
                   f"(normalised {s['nrmse_dkf']:.2f} vs {s['nrmse_kf']:.2f})")
        self.canvas.push({"caption": caption, "panels": [path_panel, velocity_panel]}, arrays)
        self.rmse_label.value = (
            f"<b>velocity RMSE</b> ({n} neurons)<br>DKF: {s['rmse_dkf']:.3f} (normalised {s['nrmse_dkf']:.3f})<br>"
            f"Kalman filter: {s['rmse_kf']:.3f} (normalised {s['nrmse_kf']:.3f})")
        fallback = (f" The DKF used its robust update at {res.n_fallback} of {T} steps (the regression was less "
                    "certain than the prior)." if res.n_fallback else "")
        self.note.value = (
            f"<i>Trained on {N_TRAIN} steps, decoded the next {T}. DKF regressor: Nadaraya-Watson "
            f"(bandwidth {res.bandwidth:.3g}), Q from held-out residuals.{fallback}"
            f"{'' if cached else ' (fitted now: new neuron counts are fitted in the background)'}</i>")

    # -- background warm-up ----------------------------------------------------------------
    def _start_warm_up(self):
        seed = self.controls["seed"].value
        first_n = self.controls["n_neurons"].value

        def warm():
            ys = simulate_tracking(0, 1e-2, 0.25, 0.1, 0.0).observations
            Q, R, k = Q_UNIT * np.float64(1e-2), np.eye(2) * np.float64(0.25), np.float64(0.0)
            _run_kf(Q, R, ys)
            _run_rts(Q, R, ys)
            _run_ekf(k, Q, R, ys)
            _run_ukf(k, Q, R, ys)
            _run_pf(k, Q, R, ys, particle_key(0))
            for n in (first_n, *(m for m in NEURON_CHOICES if m != first_n)):
                if self.controls["seed"].value != seed:
                    return  # new data: fitted on demand from now on
                self._decoded(seed, n)

        self._start_warm_thread(warm, "FilterExplorer-warm-up")
