"""GPExplorer: an interactive Gaussian-process regression explorer for JupyterLab.

What it shows (Rasmussen & Williams, *Gaussian Processes for Machine Learning*, ch. 2 and 5):
the posterior mean of f, a +-2 sd band of f (95 % credible band of the latent function), a wider
+-2 sd band of a new observation y = f + noise, optional posterior samples of f, the data, and
the log marginal likelihood log p(y | X, theta) of the current hyperparameters. A button fits
the hyperparameters by ML-II (:func:`bayeskit.gp.fit_ml2`).

Design (see ``DESIGN.md``, "Widgets"):

* **Compute** is one pure jitted JAX function, :func:`posterior_on_grid`, built on the
  :mod:`bayeskit.kernels` classes. It never recompiles on interaction: the training set is
  padded to a bucket size (8, 16, ..., 512) with a mask that gives padded points no influence,
  the kernel is chosen by an integer index through ``jax.lax.switch`` over a fixed-length
  hyperparameter vector, and samples are switched on by a traced flag (``jax.lax.cond``). The
  buckets around the current size are compiled in a background thread (and land in bayeskit's
  persistent compilation cache, so a restarted kernel pays ~0.01 s instead of ~0.3 s).
* **Draw** happens in the browser: :class:`GPCanvas` is an anywidget whose JavaScript
  (``gp_canvas.js``) paints axes, band, mean, samples, points and a legend on a ``<canvas>``
  from float32 arrays sent as binary ``Bytes`` traits inside one ``hold_sync()``. After each
  paint the front end writes ``painted = seq`` back, so tests and benchmarks can check that the
  picture followed the state.
"""

from __future__ import annotations

import math
import threading
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import ipywidgets as w
import jax
import jax.numpy as jnp
import numpy as np
import traitlets as t

from bayeskit import _config  # noqa: F401  (float64 and the persistent compilation cache)
from bayeskit.gp import fit_ml2
from bayeskit.kernels import (
    RBF,
    Kernel,
    Linear,
    Matern12,
    Matern32,
    Matern52,
    Periodic,
    RationalQuadratic,
)
from bayeskit.linalg import DEFAULT_JITTER_LADDER

from ._base import (
    Explorer,
    ExplorerCanvas,
    canonical_choice,
    canvas_module,
    explorer_view,
    f32_bytes,
    help_panel,
    log_sliders,
    positive_in_range,
    record_time,
    single_threaded_blas,
)

__all__ = [
    "GPExplorer",
    "GPCanvas",
    "posterior_on_grid",
    "make_kernel",
    "KERNEL_NAMES",
    "BUCKETS",
]

#: kernels offered, in the order of the integer index used by :func:`posterior_on_grid`
KERNEL_NAMES = (
    "RBF",
    "Matern 1/2",
    "Matern 3/2",
    "Matern 5/2",
    "Periodic",
    "Rational quadratic",
    "Linear",
)
#: the fixed-length hyperparameter vector theta (5,) that every kernel reads its values from
HYPERPARAMETERS = ("lengthscale", "variance", "period", "alpha", "bias")
#: which entries of theta each kernel uses (the others are hidden in the controls)
KERNEL_USES = {
    "RBF": ("lengthscale", "variance"),
    "Matern 1/2": ("lengthscale", "variance"),
    "Matern 3/2": ("lengthscale", "variance"),
    "Matern 5/2": ("lengthscale", "variance"),
    "Periodic": ("lengthscale", "period", "variance"),
    "Rational quadratic": ("lengthscale", "alpha", "variance"),
    "Linear": ("variance", "bias"),
}
_ALIASES = {
    "rbf": "RBF", "se": "RBF", "squaredexponential": "RBF", "gaussian": "RBF",
    "matern12": "Matern 1/2", "exponential": "Matern 1/2",
    "matern32": "Matern 3/2", "matern52": "Matern 5/2",
    "periodic": "Periodic", "expsinesquared": "Periodic",
    "rationalquadratic": "Rational quadratic", "rq": "Rational quadratic",
    "linear": "Linear", "dotproduct": "Linear",
}
#: padded training-set sizes; a data set of n points uses the smallest bucket >= n
BUCKETS = (8, 16, 32, 64, 128, 256, 512)
MAX_POINTS = BUCKETS[-1]
N_GRID = 400  # test points: a fixed grid, so their shape never changes
N_SAMPLES = 5
X_RANGE = (-5.0, 5.0)

# Slider ranges (log10 exponents). ML-II is bounded to the same box so a fit always lands on a
# value the sliders can show.
_HYPER_RANGE = (-2.0, 2.0)
_NOISE_RANGE = (-4.0, 1.0)
_SLIDERS = {
    "lengthscale": ("lengthscale", _HYPER_RANGE, "how far apart two inputs must be before f(x) and f(x') decorrelate"),
    "variance": ("signal var", _HYPER_RANGE, "prior variance of f(x): how far f strays from 0 without data"),
    "noise": ("noise var", _NOISE_RANGE, "observation-noise variance sigma_n^2 of y = f(x) + noise"),
    "period": ("period", _HYPER_RANGE, "Periodic kernel: distance after which the pattern repeats"),
    "alpha": ("RQ alpha", _HYPER_RANGE, "Rational quadratic: mixture of lengthscales (alpha -> inf is RBF)"),
    "bias": ("bias", _HYPER_RANGE, "Linear kernel: prior variance of the intercept (relative to the slope)"),
}
CONTROLS = ("kernel", *_SLIDERS, "presets", "samples")

LABELS = {
    "band_y": "±2 sd of y = f + noise: 95% of new observations",
    "band_f": "±2 sd of f: 95% credible band of the function",
    "mean": "posterior mean E[f(x) | data]",
    "samples": "posterior samples of f",
    "presets": "preset data (toggle 'preset points')",
    "added": "your points (click on the plot to add)",
}

WHAT_TO_TRY = """
<b>What to try</b>
<ul style="margin-top:2px">
<li>Slide the <i>lengthscale</i> down: the mean wiggles through every point and falls back to 0
between them, where the band widens to the prior. Slide it up: a smooth, almost straight fit.</li>
<li>Raise the <i>noise var</i>: the mean stops passing through the points, the band of y grows,
and the band of f stays narrower: noise is in the data, not in the function.</li>
<li>Click on the plot to add points; watch the band pinch near them and the log marginal
likelihood change. Turn the preset points off and build a data set of your own.</li>
<li>Switch to <i>Periodic</i>: far from the data the pattern repeats. <i>Linear</i>: Bayesian
linear regression, whose band grows away from the data. <i>Matern 1/2</i>: rough, jagged functions.</li>
<li>Press <i>fit hyperparameters</i> (ML-II: maximise log p(y | X, theta)) and compare with your
own guess. Try it with 2 or 3 points only: ML-II can overfit.</li>
<li>Turn on <i>posterior samples</i>: each curve is one plausible function; at every x, 95% of them
lie inside the band of f.</li>
</ul>
"""

_LOG_2PI = float(np.log(2.0 * np.pi))
_SAMPLE_JITTER_LADDER = (1e-8, 1e-6, 1e-4)


# ---------------------------------------------------------------------------------------------
# Compute: pure JAX, one compiled program per bucket size
# ---------------------------------------------------------------------------------------------
def _kernel_at(index: int, theta) -> Kernel:
    """The bayeskit kernel number ``index`` of KERNEL_NAMES with hyperparameters from theta (5,)."""
    lengthscale, variance, period, alpha, bias = (theta[i] for i in range(len(HYPERPARAMETERS)))
    name = KERNEL_NAMES[index]
    if name == "RBF":
        return RBF(lengthscale=lengthscale, variance=variance)
    if name == "Matern 1/2":
        return Matern12(lengthscale=lengthscale, variance=variance)
    if name == "Matern 3/2":
        return Matern32(lengthscale=lengthscale, variance=variance)
    if name == "Matern 5/2":
        return Matern52(lengthscale=lengthscale, variance=variance)
    if name == "Periodic":
        return Periodic(lengthscale=lengthscale, period=period, variance=variance)
    if name == "Rational quadratic":
        return RationalQuadratic(lengthscale=lengthscale, alpha=alpha, variance=variance)
    return Linear(variance=variance, bias=bias)


def make_kernel(name: str, **hyperparameters: float) -> Kernel:
    """A concrete :mod:`bayeskit.kernels` kernel as the explorer uses it (for ML-II and tests).

    ``name``: one of :data:`KERNEL_NAMES` (or an alias such as ``"matern32"``);
    ``hyperparameters``: lengthscale, variance, period, alpha, bias (unused ones are ignored,
    missing ones default to 1).
    """
    canonical = _kernel_name(name)
    theta = [float(hyperparameters.get(p, 1.0)) for p in HYPERPARAMETERS]
    return _kernel_at(KERNEL_NAMES.index(canonical), theta)


class GridPosterior(NamedTuple):
    """Output of :func:`posterior_on_grid` (m = number of grid points, s = number of samples)."""

    mean: jax.Array  # (m,) posterior mean of f
    sd_f: jax.Array  # (m,) posterior standard deviation of f (noise excluded)
    samples: jax.Array  # (m, s) posterior draws of f, zeros when not requested
    log_marginal_likelihood: jax.Array  # () log p(y | X, theta), R&W eq. 2.30


@jax.jit
def posterior_on_grid(
    kernel_index, theta, X, y, mask, noise, x_grid, z, draw_samples, jitter, sample_jitter
) -> GridPosterior:
    """GP posterior of f on a grid from a padded 1-D training set (R&W eqs. 2.25, 2.26, 2.30).

    Parameters (every argument keeps its shape and dtype between calls, so nothing recompiles):
      kernel_index: () int32, index into :data:`KERNEL_NAMES` (``lax.switch``).
      theta: (5,) float64, hyperparameters in the order of :data:`HYPERPARAMETERS`.
      X, y: (b,) float64 training inputs and targets, padded to a bucket size b.
      mask: (b,) float64, 1 for a real point, 0 for padding.
      noise: () observation-noise variance.
      x_grid: (m,) test inputs.  z: (m, s) standard-normal draws used for the samples.
      draw_samples: () bool; when False the (m, m) sampling Cholesky is skipped (``lax.cond``).
      jitter: () added to the training diagonal, relative to mean(k(x, x)) + noise (as
        :func:`bayeskit.gp.posterior`); sample_jitter: () the same for the posterior covariance.

    Padding: padded rows and columns of K + noise I are those of the identity and padded targets
    are 0, so alpha is 0 there, their cross-covariances are zeroed, and log L_ii = 0: the mean,
    variance and log marginal likelihood equal those of the unpadded data exactly.
    """
    Xc, G = X[:, None], x_grid[:, None]

    def branch(index):
        def matrices(th):
            kernel = _kernel_at(index, th)
            return kernel(Xc), kernel(Xc, G), kernel(G)

        return matrices

    K, Ks, Kss = jax.lax.switch(kernel_index, [branch(i) for i in range(len(KERNEL_NAMES))], theta)
    n = jnp.sum(mask)
    scale = jnp.sum(mask * jnp.diagonal(K)) / jnp.maximum(n, 1.0) + noise
    K = mask[:, None] * K * mask[None, :] + jnp.diag(mask * (noise + jitter * scale) + (1.0 - mask))
    L = jnp.linalg.cholesky(K)
    y = y * mask
    alpha = jax.scipy.linalg.cho_solve((L, True), y)
    Ks = mask[:, None] * Ks  # (b, m)
    mean = Ks.T @ alpha  # R&W eq. 2.25
    V = jax.scipy.linalg.solve_triangular(L, Ks, lower=True)  # (b, m)
    var = jnp.maximum(jnp.diagonal(Kss) - jnp.sum(V * V, axis=0), 0.0)  # R&W eq. 2.26, diagonal
    lml = -0.5 * jnp.dot(y, alpha) - jnp.sum(jnp.log(jnp.diagonal(L))) - 0.5 * n * _LOG_2PI

    def draw(_):
        cov = Kss - V.T @ V
        s = jnp.maximum(jnp.mean(jnp.diagonal(Kss)), 1e-300)
        Ls = jnp.linalg.cholesky(cov + sample_jitter * s * jnp.eye(cov.shape[0], dtype=cov.dtype))
        return mean[:, None] + Ls @ z

    samples = jax.lax.cond(draw_samples, draw, lambda _: jnp.zeros_like(z), None)
    return GridPosterior(mean, jnp.sqrt(var), samples, lml)


def _bucket(n: int) -> int:
    for b in BUCKETS:
        if n <= b:
            return b
    raise ValueError(f"the explorer holds at most {MAX_POINTS} points; got {n}")


def _kernel_name(value) -> str:
    if not isinstance(value, str):
        raise ValueError(f"kernel must be a string, one of {KERNEL_NAMES}; got {value!r}")
    return canonical_choice("kernel", value, KERNEL_NAMES, _ALIASES)






# ---------------------------------------------------------------------------------------------
# Draw: an anywidget canvas
# ---------------------------------------------------------------------------------------------
class GPCanvas(ExplorerCanvas):
    """The plot: a <canvas> painted in the browser by ``gp_canvas.js``.

    Array traits are float32 little-endian bytes (decode with :meth:`array`): ``x_grid``,
    ``mean``, ``lower_f`` / ``upper_f`` (mean -+ 2 sd of f), ``lower_y`` / ``upper_y``
    (mean -+ 2 sd of y), each (m,); ``samples`` (n_samples * m,) row-major (n_samples, m);
    ``x_presets`` / ``y_presets`` and ``x_added`` / ``y_added`` the drawn data points.
    ``seq`` is bumped by Python with every update; the front end sets ``painted = seq`` once it
    has painted that update. Clicking in the plot sends ``{"type": "add_point", "x", "y"}``.
    """

    _esm = canvas_module("gp_canvas.js")
    _css = Path(__file__).with_name("gp_canvas.css")

    x_grid = t.Bytes(b"").tag(sync=True)
    mean = t.Bytes(b"").tag(sync=True)
    lower_f = t.Bytes(b"").tag(sync=True)
    upper_f = t.Bytes(b"").tag(sync=True)
    lower_y = t.Bytes(b"").tag(sync=True)
    upper_y = t.Bytes(b"").tag(sync=True)
    samples = t.Bytes(b"").tag(sync=True)
    n_samples = t.Int(0).tag(sync=True)
    x_presets = t.Bytes(b"").tag(sync=True)
    y_presets = t.Bytes(b"").tag(sync=True)
    x_added = t.Bytes(b"").tag(sync=True)
    y_added = t.Bytes(b"").tag(sync=True)
    x_range = t.List(t.Float(), default_value=list(X_RANGE)).tag(sync=True)
    y_range = t.List(t.Float(), default_value=[-3.0, 3.0]).tag(sync=True)
    labels = t.Dict(default_value=dict(LABELS)).tag(sync=True)
    caption = t.Unicode("").tag(sync=True)
    width = t.Int(660).tag(sync=True)
    height = t.Int(440).tag(sync=True)


# ---------------------------------------------------------------------------------------------
# The explorer
# ---------------------------------------------------------------------------------------------
def _default_presets() -> tuple[np.ndarray, np.ndarray]:
    """Eight noisy observations of a smooth function, fixed so every learner sees the same."""
    x = np.array([-4.2, -3.1, -2.3, -0.9, 0.2, 1.1, 2.6, 3.7])
    eps = np.random.default_rng(0).normal(0.0, 0.1, x.size)
    return x, np.sin(x) + 0.3 * np.cos(2.1 * x) + eps


class GPExplorer(Explorer):
    """Interactive GP regression in one dimension: controls, a live plot, and the LML.

    ``GPExplorer()`` shows eight preset points with an RBF kernel. Controls:

    * ``kernel``: RBF, Matern 1/2, 3/2, 5/2, Periodic, Rational quadratic, Linear.
    * ``lengthscale``, ``variance`` (signal variance), ``noise`` (noise variance), ``period``
      (Periodic), ``alpha`` (Rational quadratic), ``bias`` (Linear): log-scaled sliders;
      sliders a kernel does not use are hidden.
    * ``presets``: include the preset points; ``samples``: draw posterior samples of f.
    * clicking on the plot (or :meth:`add_point`) adds a point; "clear my points" removes them.
    * "fit hyperparameters": ML-II (:meth:`fit`).

    Parameters: ``X``, ``y`` (n,) replace the preset points (inputs inside ``X_RANGE``);
    keyword arguments give the initial value of any control. ``warm_up`` compiles the
    neighbouring bucket sizes in a background thread.

    For tests and scripts: :attr:`state` (a read-only mapping), :meth:`set`, :attr:`canvas`
    (the traits sent to the browser), :attr:`controls` (the ipywidgets by control name).
    """

    def __init__(
        self,
        X=None,
        y=None,
        *,
        kernel: str = "RBF",
        lengthscale: float = 1.0,
        variance: float = 1.0,
        noise: float = 0.01,
        period: float = 2.0,
        alpha: float = 1.0,
        bias: float = 1.0,
        presets: bool = True,
        samples: bool = False,
        seed: int = 0,
        warm_up: bool = True,
    ):
        if X is None and y is None:
            X, y = _default_presets()
        elif X is None or y is None:
            raise ValueError("give both X and y (the preset points), or neither")
        self._x_presets, self._y_presets = self._check_points(X, y)
        self._x_added: list[float] = []
        self._y_added: list[float] = []
        initial = dict(kernel=kernel, lengthscale=lengthscale, variance=variance, noise=noise,
                       period=period, alpha=alpha, bias=bias, presets=presets, samples=samples)
        values = {name: self._validate(name, value) for name, value in initial.items()}

        self._x_grid = np.linspace(*X_RANGE, N_GRID)
        # fixed standard-normal draws: samples move smoothly as the sliders move
        self._z = np.asarray(np.random.default_rng(seed).standard_normal((N_GRID, N_SAMPLES)))
        self._batch_depth = 0
        self._dirty = False
        self._lml = float("nan")
        self._jitter = 0.0
        self.handler_times: list[float] = []  # seconds per update (compute + push), newest last

        self.canvas = GPCanvas()
        self.canvas.x_grid = f32_bytes(self._x_grid)
        self.canvas.on_msg(self._on_canvas_message)
        c: dict[str, w.Widget] = {}
        c["kernel"] = w.Dropdown(options=KERNEL_NAMES, value=values["kernel"], description="kernel")
        c.update(log_sliders(_SLIDERS, values, step=0.02, style={"description_width": "80px"}, width="330px"))
        c["presets"] = w.Checkbox(value=values["presets"], description="preset points", indent=False)
        c["samples"] = w.Checkbox(value=values["samples"], description="posterior samples", indent=False)
        self._use_controls(c)
        self.fit_button = w.Button(description="fit hyperparameters", icon="magic",
                                   tooltip="ML-II: maximise log p(y | X, theta) from the current values",
                                   layout=w.Layout(width="210px"))
        self.fit_button.on_click(self._on_fit_clicked)
        self.clear_button = w.Button(description="clear my points", icon="eraser",
                                     layout=w.Layout(width="210px"))
        self.clear_button.on_click(self._on_clear_clicked)
        self.lml_label = w.HTML()
        self.status = w.HTML()
        self.help = help_panel(WHAT_TO_TRY, "980px")

        side = w.VBox(
            [self.controls["kernel"], *(self.controls[n] for n in _SLIDERS),
             w.HBox([self.controls["presets"], self.controls["samples"]]),
             self.fit_button, self.clear_button, self.lml_label, self.status],
            layout=w.Layout(min_width="340px"),
        )
        self.view = explorer_view("Gaussian-process regression explorer",
                                  "f ~ GP(0, k), y = f(x) + N(0, noise var)",
                                  w.HBox([self.canvas, side]), self.help)
        self._warm_up = warm_up
        self._warm_thread: threading.Thread | None = None
        self._refresh()

    # -- public API ------------------------------------------------------------------------
    @property
    def state(self) -> Mapping[str, Any]:
        """Read-only snapshot: every control's value, the data and the log marginal likelihood.

        Keys: the names in ``CONTROLS``, ``X`` and ``y`` (the points the GP is conditioned on,
        tuples), ``n_points``, ``added_points`` (list of (x, y)), ``log_marginal_likelihood``,
        ``bucket`` (padded size), ``jitter`` (relative jitter the last update needed).
        """
        X, y = self._data()
        return self._snapshot(CONTROLS, dict(
            X=tuple(float(v) for v in X), y=tuple(float(v) for v in y), n_points=int(X.size),
            added_points=list(zip(self._x_added, self._y_added, strict=True)),
            log_marginal_likelihood=self._lml, bucket=_bucket(X.size), jitter=self._jitter,
        ))

    def set(self, **controls) -> GPExplorer:
        """Set several controls at once (one redraw); returns self.

        Names: ``kernel``, ``lengthscale``, ``variance``, ``noise``, ``period``, ``alpha``,
        ``bias`` (positive, inside the slider's range), ``presets``, ``samples`` (bools).
        Raises ``ValueError`` naming the control for an unknown name or a bad value; nothing is
        changed when any value is bad.
        """
        return super().set(**controls)

    def add_point(self, x: float, y: float) -> GPExplorer:
        """Condition on one more observation (x, y); x must lie inside ``X_RANGE``."""
        xs, ys = self._check_points([x], [y])
        if self._n_points() + 1 > MAX_POINTS:
            raise ValueError(f"the explorer holds at most {MAX_POINTS} points")
        self._x_added.append(float(xs[0]))
        self._y_added.append(float(ys[0]))
        self._refresh()
        return self

    def clear_points(self) -> GPExplorer:
        """Remove every point added by clicking or :meth:`add_point` (presets stay)."""
        self._x_added.clear()
        self._y_added.clear()
        self._refresh()
        return self

    def kernel(self) -> Kernel:
        """The current kernel as a concrete :mod:`bayeskit.kernels` object."""
        return make_kernel(self.controls["kernel"].value, **{n: self.controls[n].value for n in HYPERPARAMETERS})

    def fit(self):
        """Fit the current kernel's hyperparameters and the noise by ML-II; returns the result.

        Runs :func:`bayeskit.gp.fit_ml2` (L-BFGS-B on log-hyperparameters, started at the current
        values, so the log marginal likelihood cannot go down) inside the sliders' ranges, then
        moves the sliders to the optimum. Returns ``None`` when there is no data.
        """
        X, y = self._data()
        if X.size == 0:
            self.status.value = "No data to fit: turn on the preset points or click to add some."
            return None
        before = self._lml
        lo, hi = 10.0 ** np.array(_HYPER_RANGE)
        nlo, nhi = 10.0 ** np.array(_NOISE_RANGE)
        with warnings.catch_warnings(record=True) as caught, single_threaded_blas():
            warnings.simplefilter("always")
            result = fit_ml2(self.kernel(), X, y, self.controls["noise"].value,
                             bounds=(lo, hi), noise_bounds=(nlo, nhi))
        fitted = {name: float(np.clip(v, lo, hi)) for name, v in result.kernel.hyperparameters.items()}
        fitted["noise"] = float(np.clip(result.noise, nlo, nhi))
        self.set(**fitted)
        note = f" ({len(caught)} warning(s): {caught[0].message})" if caught else ""
        self.status.value = (
            f"ML-II: log p(y | X, theta) {before:.3f} &rarr; {self._lml:.3f} "
            f"in {result.n_evaluations} evaluations{note}"
        )
        return result

    # -- internals -------------------------------------------------------------------------
    @staticmethod
    def _check_points(X, y) -> tuple[np.ndarray, np.ndarray]:
        X = np.asarray(X, dtype=np.float64).ravel()
        y = np.asarray(y, dtype=np.float64).ravel()
        if X.shape != y.shape:
            raise ValueError(f"X and y must have the same length; got {X.size} and {y.size}")
        if not (np.all(np.isfinite(X)) and np.all(np.isfinite(y))):
            raise ValueError("points must be finite (no NaN or inf in x or y)")
        if np.any((X < X_RANGE[0]) | (X > X_RANGE[1])):
            raise ValueError(f"x must lie inside the plotted range {X_RANGE}; got {X[(X < X_RANGE[0]) | (X > X_RANGE[1])]}")
        if X.size > MAX_POINTS:
            raise ValueError(f"the explorer holds at most {MAX_POINTS} points; got {X.size}")
        return X, y

    @staticmethod
    def _validate(name: str, value):
        if name == "kernel":
            return _kernel_name(value)
        if name in ("presets", "samples"):
            if not isinstance(value, (bool, np.bool_)):
                raise ValueError(f"{name} must be True or False; got {value!r}")
            return bool(value)
        if name not in _SLIDERS:
            raise ValueError(f"unknown control {name!r}; the controls are {CONTROLS}")
        lo, hi = (10.0**e for e in _SLIDERS[name][1])
        return positive_in_range(name, value, lo, hi, allow_bool=True)


    def _on_canvas_message(self, widget, content, buffers):
        if isinstance(content, dict) and content.get("type") == "add_point":
            try:
                self.add_point(content["x"], content["y"])
            except (KeyError, TypeError, ValueError) as err:
                self.status.value = f"could not add the point: {err}"

    def _on_fit_clicked(self, button):
        self._report_failure("ML-II", self.fit, pending="fitting...")

    def _on_clear_clicked(self, button):
        self.clear_points()

    def _n_points(self) -> int:
        return len(self._x_added) + (self._x_presets.size if self.controls["presets"].value else 0)

    def _data(self) -> tuple[np.ndarray, np.ndarray]:
        """The points the GP is conditioned on: (presets if shown) + added points, each (n,)."""
        xs, ys = [np.asarray(self._x_added)], [np.asarray(self._y_added)]
        if self.controls["presets"].value:
            xs.insert(0, self._x_presets)
            ys.insert(0, self._y_presets)
        return np.concatenate(xs).astype(np.float64), np.concatenate(ys).astype(np.float64)

    def _arguments(self, X, y, draw_samples: bool):
        """Arguments of posterior_on_grid with stable shapes and dtypes (no retracing)."""
        b = _bucket(X.size)
        Xp, yp, mask = np.zeros(b), np.zeros(b), np.zeros(b)
        Xp[: X.size], yp[: y.size], mask[: X.size] = X, y, 1.0
        theta = np.array([self.controls[n].value for n in HYPERPARAMETERS], dtype=np.float64)
        index = np.int32(KERNEL_NAMES.index(self.controls["kernel"].value))
        return (index, theta, Xp, yp, mask, np.float64(self.controls["noise"].value),
                self._x_grid, self._z, np.bool_(draw_samples))

    def _compute(self, X, y, draw_samples: bool):
        """Run the jitted posterior, retrying with jitter where a Cholesky failed (NaN)."""
        args = self._arguments(X, y, draw_samples)
        with single_threaded_blas():
            return self._compute_with_jitter(args, draw_samples)

    @staticmethod
    def _compute_with_jitter(args, draw_samples: bool):
        for jitter in DEFAULT_JITTER_LADDER:
            for sample_jitter in _SAMPLE_JITTER_LADDER if draw_samples else _SAMPLE_JITTER_LADDER[:1]:
                out = posterior_on_grid(*args, np.float64(jitter), np.float64(sample_jitter))
                mean, sd, lml = np.asarray(out.mean), np.asarray(out.sd_f), float(out.log_marginal_likelihood)
                if not (np.isfinite(lml) and np.all(np.isfinite(mean)) and np.all(np.isfinite(sd))):
                    break  # the training Cholesky failed: more training jitter
                samples = np.asarray(out.samples)
                if np.all(np.isfinite(samples)):
                    return mean, sd, samples, lml, jitter
            else:  # every sample jitter failed: draw none rather than NaN curves
                return mean, sd, np.zeros_like(samples), lml, jitter
        raise np.linalg.LinAlgError(
            "k(X, X) + noise I is not positive definite even with jitter; raise the noise"
        )

    def _refresh(self):
        """Recompute the posterior and push it to the canvas (one binary message)."""
        start = time.perf_counter()
        self._dirty = False
        name = self.controls["kernel"].value
        for p in ("lengthscale", "period", "alpha", "bias"):
            visible = p in KERNEL_USES[name]
            self.controls[p].layout.display = None if visible else "none"
        X, y = self._data()
        draw_samples = bool(self.controls["samples"].value)
        mean, sd, samples, lml, jitter = self._compute(X, y, draw_samples)
        self._lml, self._jitter = lml, jitter
        sd_y = np.sqrt(sd**2 + self.controls["noise"].value)
        presets_on = bool(self.controls["presets"].value)
        y_lim = max(3.0, 1.15 * float(np.max(np.abs(y), initial=0.0)))
        y_lim = math.ceil(y_lim * 2) / 2  # keep the axis still unless the data need more room
        lml_text = "no data: log p(y | X) = 0" if X.size == 0 else f"log p(y | X, theta) = {lml:.3f}"
        with self.canvas.update() as c:
            c.mean = f32_bytes(mean)
            c.lower_f, c.upper_f = f32_bytes(mean - 2 * sd), f32_bytes(mean + 2 * sd)
            c.lower_y, c.upper_y = f32_bytes(mean - 2 * sd_y), f32_bytes(mean + 2 * sd_y)
            c.samples = f32_bytes(samples.T) if draw_samples else b""
            c.n_samples = N_SAMPLES if draw_samples else 0
            c.x_presets = f32_bytes(self._x_presets) if presets_on else b""
            c.y_presets = f32_bytes(self._y_presets) if presets_on else b""
            c.x_added, c.y_added = f32_bytes(self._x_added), f32_bytes(self._y_added)
            c.y_range = [-y_lim, y_lim]
            c.caption = f"{name} kernel, n = {X.size}: {lml_text}"
        jitter_note = f" (jitter {jitter:g} added)" if jitter else ""
        self.lml_label.value = f"<b>log marginal likelihood</b>: {lml_text}{jitter_note}"
        record_time(self.handler_times, start)
        if self._warm_up:
            self._ensure_warm(X.size)

    def _ensure_warm(self, n: int):
        """Compile bucket sizes a next interaction may need, in a background thread.

        Wanted: every size below the current one (hiding the presets, clearing points) and the
        next one up (adding points). Compiled programs are shared by all explorers (the jit
        cache is per function) and persist on disk (bayeskit's compilation cache).
        """
        current = BUCKETS.index(_bucket(n))
        with _WARM_LOCK:
            missing = [b for b in BUCKETS[: current + 2] if b not in _WARMED]
            if not missing or (self._warm_thread is not None and self._warm_thread.is_alive()):
                return
            _WARMED.update(missing)
        x_grid, z = self._x_grid, self._z

        def warm():
            for b in missing:
                zeros = np.zeros(b)
                posterior_on_grid(np.int32(0), np.ones(5), zeros, zeros, zeros, np.float64(0.01),
                                  x_grid, z, np.bool_(False), np.float64(0.0), np.float64(1e-8))

        self._start_warm_thread(warm, "GPExplorer-warm-up")


_WARMED: set[int] = set()  # bucket sizes compiled (or being compiled) in this process
_WARM_LOCK = threading.Lock()
