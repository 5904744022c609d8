"""BOExplorer: Bayesian optimisation, one step at a time, in JupyterLab.

What it shows (*A Tutorial on Bayesian Optimization*, Frazier; *Taking the Human Out of the
Loop: A Review of Bayesian Optimization*, Shahriari et al.): a GP surrogate fitted by ML-II to
the evaluations so far, the acquisition that decides where to evaluate next, the point it
chose, and the simple regret of the run (how far the best evaluation so far is from the known
optimum).

* 1-D problems: the objective (dashed), the observations, the posterior mean and its +-2 sd band
  (95 % credible band of f), and below it the acquisition with the next point marked.
* 2-D problems: a heat map on a fixed 48 x 48 grid of the posterior mean, the acquisition, or
  the objective (a toggle), with the observations, the next point and the true minimisers.
* Both: log10 simple regret against the number of evaluations.

Design (``DESIGN.md``, "Widgets"):

* **Compute**: the run is a :class:`bayeskit.bo.BayesianOptimizer` (ask/tell) with its default
  settings; the picture is :func:`bayeskit.bo.surface.acquisition_surface`, a pure function of
  the optimiser after its ``ask()``. The explorer always holds the *next* point (asked, not yet
  evaluated): "Step" evaluates it, tells the optimiser, and asks for the next one. So a run here
  is exactly ``bayeskit.bo.minimize`` with the same seed. The loop pads its GP to bucket sizes
  (16, 32, 64); the explorer holds at most ``MAX_EVALUATIONS = 64`` points and compiles the
  buckets a run will reach in a background thread (they also land in bayeskit's persistent
  compilation cache).
* **Draw**: :class:`BOCanvas`, an anywidget that paints panels in the browser (``bo_canvas.js``)
  from float32 arrays sent as binary buffers inside one ``hold_sync()``; it echoes
  ``painted = seq`` after each paint so tests and benchmarks can see the picture followed.

Changing the problem, the acquisition, the seed or the noise starts a new run (the same seed
gives the same initial design, so acquisitions can be compared from the same start).
"""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import ipywidgets as w
import numpy as np
import traitlets as t

from bayeskit import _config  # noqa: F401  (float64 and the persistent compilation cache)
from bayeskit import plot as _plot
from bayeskit.bo import ACQUISITIONS, BayesianOptimizer
from bayeskit.bo.surface import AcquisitionSurface, acquisition_surface, box_grid, simple_regret
from bayeskit.bo.test_functions import Ackley, Branin, Forrester, Levy, Rosenbrock, TestFunction

from ._base import (
    Explorer,
    SpecCanvas,
    canvas_module,
    explorer_view,
    help_panel,
    is_integer,
    one_of,
    single_threaded_blas,
)

__all__ = ["BOExplorer", "BOCanvas", "PROBLEMS", "ACQUISITION_LABELS", "MAX_EVALUATIONS"]

#: problems offered: name -> (test-function class, constructor keywords); all 1-D or 2-D
PROBLEMS: dict[str, tuple[type[TestFunction], dict]] = {
    "Forrester (1-D)": (Forrester, {}),
    "Levy (1-D)": (Levy, {"dim": 1}),
    "Ackley (1-D)": (Ackley, {"dim": 1}),
    "Branin (2-D)": (Branin, {}),
    "Levy (2-D)": (Levy, {"dim": 2}),
    "Ackley (2-D)": (Ackley, {"dim": 2}),
    "Rosenbrock (2-D)": (Rosenbrock, {"dim": 2}),
}
#: acquisition name -> (what the panel calls it, its unit / what the loop does with it)
ACQUISITION_LABELS = {
    "ei": "expected improvement EI(x) (maximised)",
    "log_ei": "log expected improvement log EI(x) (maximised)",
    "pi": "probability of improvement PI(x) (its log is maximised)",
    "lcb": "lower confidence bound mean - 2 sd (minimised)",
    "ts": "Thompson sample: one posterior draw of f (minimised)",
    "kg": "knowledge gradient on the loop's 128 Sobol candidates (maximised)",
    "mes": "max-value entropy search: information about min f (maximised)",
    "noisy_ei": "noisy EI, Monte Carlo (maximised)",
}
#: noise levels: name -> noise standard deviation as a fraction of the objective's range on the grid
NOISE_LEVELS = {"none": 0.0, "1% of range": 0.01, "5% of range": 0.05}
SHOW_2D = ("posterior mean", "acquisition", "objective")
CONTROLS = ("problem", "acquisition", "seed", "noise", "show", "n_run")
DEFAULTS = dict(problem="Forrester (1-D)", acquisition="log_ei", seed=0, noise="none",
                show="posterior mean", n_run=5)
MAX_EVALUATIONS = 64  # the loop's buckets 16, 32, 64: three compiled sizes per acquisition
MAX_RUN = 30
N_GRID_1D = 200
N_GRID_2D = 48
LOG_EI_SPAN = 30.0  # log EI is drawn over its top 30 nats (far from the data it reaches -1000s)
REGRET_FLOOR = 1e-12  # log10 regret is drawn no lower than -12 (the optimum is known to ~1e-15)

COLORS = {
    "objective": _plot.TRUTH,
    "mean": _plot.MEAN,
    "band": "rgba(86, 180, 233, 0.35)",  # bayeskit.plot.BAND at alpha 0.35
    "data": _plot.DATA,
    "next": _plot.ACCENT,
    "acquisition": "#CC79A7",  # reddish purple of the Okabe-Ito palette
    "regret": _plot.SAMPLES,  # bluish green: not to be confused with the posterior mean
    "initial": "rgba(153, 153, 153, 0.18)",
    "optimum": _plot.TRUTH,
}
LABELS = {
    "objective": "objective f(x) (hidden from the optimiser)",
    "band": "±2 sd (95%) credible band of f",
    "mean": "posterior mean of f",
    "data": "observations",
    "next": "next point (argmax of the acquisition)",
    "next_min": "next point (argmin of the acquisition)",
    "initial": "initial design (Sobol)",
    "regret": "log10 simple regret",
    "optimum": "true minimiser(s)",
}

WHAT_TO_TRY = """
<b>What to try</b>
<ul style="margin-top:2px">
<li>Press <i>Step</i> a few times on Forrester with <i>log_ei</i>: the next point sits where the
mean is low <i>or</i> the band is wide. Watch the band collapse at each new observation and the
acquisition drop to nothing there.</li>
<li>Switch the acquisition to <i>pi</i>: probability of improvement ignores <i>how much</i> better a
point may be, so it keeps polishing near the incumbent. <i>lcb</i> and <i>ts</i> explore more; <i>ts</i> is
random (a new sample path every step), so compare seeds.</li>
<li>Press <i>Run N</i> and watch the regret panel: BO typically finds Forrester's global minimum (not the
local one at x = 0.14) in a handful of steps. Try <i>Ackley</i>: many local minima, and a GP with one
lengthscale finds it much harder.</li>
<li>Turn the <i>noise</i> up and use <i>noisy_ei</i>: observations scatter around f, the band no longer
pinches to zero, and the incumbent is the lowest posterior mean rather than the lowest observation.</li>
<li>In 2-D (<i>Branin</i>, three global minima) toggle the heat map between the posterior mean and the
acquisition: the acquisition is high in unexplored corners and near the current best.</li>
</ul>
"""


# ---------------------------------------------------------------------------------------------
# Draw: an anywidget canvas
# ---------------------------------------------------------------------------------------------
class BOCanvas(SpecCanvas):
    """The plot: a <canvas> painted in the browser by ``bo_canvas.js``.

    ``spec`` (JSON) lists panels (position, ranges, axis labels, title) and their layers
    (``line``, ``band``, ``points``, ``vline``, ``shade``, ``heat``), each naming arrays in
    ``arrays`` (float32 little-endian bytes, decoded by :meth:`array`) and carrying its legend
    label. ``seq`` is bumped by Python with every update; the front end sets ``painted = seq``
    once it has painted that update.
    """

    _esm = canvas_module("bo_canvas.js")
    _css = Path(__file__).with_name("bo_canvas.css")

    width = t.Int(600).tag(sync=True)
    height = t.Int(640).tag(sync=True)


def _range(*arrays, pad: float = 0.08):
    values = np.concatenate([np.asarray(a, dtype=float).ravel() for a in arrays])
    values = values[np.isfinite(values)]
    lo, hi = (float(values.min()), float(values.max())) if values.size else (-1.0, 1.0)
    span = hi - lo if hi > lo else max(abs(hi), 1.0)
    return [lo - pad * span, hi + pad * span]


# ---------------------------------------------------------------------------------------------
# The explorer
# ---------------------------------------------------------------------------------------------
class BOExplorer(Explorer):
    """Bayesian optimisation of a 1-D or 2-D test function, step by step, drawn in the browser.

    ``BOExplorer(**controls)`` starts from :data:`DEFAULTS` updated by ``controls``:

    * ``problem``: a key of :data:`PROBLEMS` (Forrester (1-D) by default; Branin (2-D), ...);
    * ``acquisition``: one of ``bayeskit.bo.ACQUISITIONS`` (ei, log_ei, pi, lcb, ts, kg, mes,
      noisy_ei);
    * ``seed``: int >= 0, seeds the initial design, the optimiser and the observation noise;
    * ``noise``: a key of :data:`NOISE_LEVELS`; the optimiser is told the noise variance;
    * ``show`` (2-D only): what the heat map shows, one of :data:`SHOW_2D`;
    * ``n_run``: how many steps "Run N" takes (1 to ``MAX_RUN``).

    Buttons: "Step" (one BO iteration: evaluate the next point, refit, propose), "Run N",
    "Reset" (a new run with the same settings). All are keyboard usable (Tab, Enter).
    ``warm_up=False`` skips the background compilation (tests).

    Scripted use: :attr:`state`, :meth:`set`, :meth:`step`, :meth:`run`, :meth:`reset`;
    :attr:`optimizer` (the live :class:`bayeskit.bo.BayesianOptimizer`), :attr:`surface` (the
    arrays behind the picture), :attr:`canvas` (what the browser draws).
    """

    def __init__(self, *, warm_up: bool = True, **controls):
        values = dict(DEFAULTS)
        values.update({name: self._validate(name, v) for name, v in controls.items()})
        self.handler_times: list[float] = []  # seconds per step (tell + ask + surface + push)
        self.timings: list[dict[str, float]] = []  # per step: ask_s, surface_s, push_s
        self._batch_depth, self._dirty, self._run_dirty = 0, False, False
        self.canvas = BOCanvas()
        style = {"description_width": "90px"}
        c: dict[str, w.Widget] = {}
        c["problem"] = w.Dropdown(options=list(PROBLEMS), value=values["problem"], description="problem",
                                  style=style, layout=w.Layout(width="280px"))
        c["acquisition"] = w.Dropdown(options=list(ACQUISITIONS), value=values["acquisition"],
                                      description="acquisition", style=style, layout=w.Layout(width="280px"))
        c["seed"] = w.BoundedIntText(value=values["seed"], min=0, max=2**31 - 1, description="seed",
                                     style=style, layout=w.Layout(width="200px"))
        c["noise"] = w.Dropdown(options=list(NOISE_LEVELS), value=values["noise"], description="noise",
                                style=style, layout=w.Layout(width="280px"))
        c["show"] = w.ToggleButtons(options=list(SHOW_2D), value=values["show"], description="heat map",
                                    style={"description_width": "90px", "button_width": "105px"})
        c["n_run"] = w.BoundedIntText(value=values["n_run"], min=1, max=MAX_RUN, description="N",
                                      style={"description_width": "20px"}, layout=w.Layout(width="110px"))
        self.controls = c
        for name in ("problem", "acquisition", "seed", "noise"):
            c[name].observe(self._on_setting, names="value")
        c["show"].observe(self._on_show, names="value")
        self.step_button = w.Button(description="Step", icon="step-forward", button_style="primary",
                                    tooltip="one BO iteration: evaluate the next point, refit the GP, propose",
                                    layout=w.Layout(width="95px"))
        self.run_button = w.Button(description="Run N", icon="forward", tooltip="N iterations, drawn one by one",
                                   layout=w.Layout(width="95px"))
        self.reset_button = w.Button(description="Reset", icon="undo", tooltip="start again from the initial design",
                                     layout=w.Layout(width="95px"))
        self.step_button.on_click(self._on_step_clicked)
        self.run_button.on_click(self._on_run_clicked)
        self.reset_button.on_click(self._on_reset_clicked)
        self.summary = w.HTML()
        self.status = w.HTML()
        self.help = help_panel(WHAT_TO_TRY, "1100px")
        side = w.VBox([
            c["problem"], c["acquisition"], c["noise"], c["seed"],
            w.HBox([self.step_button, self.reset_button]),
            w.HBox([self.run_button, c["n_run"]]),
            self.summary, self.status,
        ], layout=w.Layout(min_width="290px"))
        self.view = explorer_view("Bayesian optimisation explorer",
                                  "GP surrogate (Matern 5/2, ML-II) + an acquisition decide where to evaluate "
                                  "next; minimising f",
                                  w.HBox([w.VBox([self.canvas, c["show"]]), side]), self.help)
        self._warm_up = warm_up
        self._warm_thread: threading.Thread | None = None
        self._reset()

    # -- public API ------------------------------------------------------------------------
    @property
    def state(self) -> Mapping[str, Any]:
        """Read-only snapshot of the controls (names in ``CONTROLS``) and of the run.

        Run keys: ``dim``, ``bounds``, ``noise_std``, ``n_initial`` (initial design size),
        ``n_evaluations``, ``x_iters`` (tuple of tuples), ``func_vals`` (observed, with noise),
        ``true_vals`` (noise-free f at the same points), ``next_point`` (tuple, None when the
        run is full), ``best_value`` (lowest observation), ``regret`` (simple regret now),
        ``regret_history`` (after each evaluation), ``grid_shape``, ``optimum``, ``full``.
        """
        f, opt = self._problem, self._opt
        regret = self._regret()
        return self._snapshot(CONTROLS, dict(
            dim=f.dim, bounds=tuple(tuple(float(v) for v in b) for b in f.bounds), noise_std=f.noise_std,
            n_initial=opt.n_initial_points, n_evaluations=len(opt.func_vals),
            x_iters=tuple(tuple(float(v) for v in x) for x in opt.x_iters),
            func_vals=tuple(float(v) for v in opt.func_vals), true_vals=tuple(self._true_vals),
            next_point=None if self._next is None else tuple(float(v) for v in self._next),
            best_value=float(np.min(opt.func_vals)), regret=float(regret[-1]),
            regret_history=tuple(float(r) for r in regret), grid_shape=self._grid_shape,
            optimum=float(f.optimum), full=self._next is None,
        ))

    @property
    def optimizer(self) -> BayesianOptimizer:
        """The live optimiser (read it; telling it points by hand desynchronises the picture)."""
        return self._opt

    @property
    def problem(self) -> TestFunction:
        """The test function being minimised (``problem.evaluate`` is noise-free)."""
        return self._problem

    @property
    def surface(self) -> AcquisitionSurface:
        """The arrays behind the current picture, on the grid (see ``acquisition_surface``)."""
        return self._surface

    @property
    def grid(self) -> np.ndarray:
        """The fixed evaluation grid (m, d): 200 points in 1-D, 48 x 48 in 2-D (x_1 fastest)."""
        return self._grid

    def set(self, **controls) -> BOExplorer:
        """Set several controls at once (one new run, one redraw); returns self.

        Raises ``ValueError`` naming the control for an unknown name or a bad value; nothing is
        changed when any value is bad.
        """
        return super().set(**controls)

    def step(self, n: int = 1) -> BOExplorer:
        """Take ``n`` BO iterations (each one drawn); stops at ``MAX_EVALUATIONS``. Returns self."""
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"n must be an int >= 1; got {n!r}")
        for _ in range(int(n)):
            if self._next is None:
                self.status.value = f"<i>The run is full ({MAX_EVALUATIONS} evaluations): press Reset.</i>"
                break
            self._step_once()
        return self

    def run(self, n: int | None = None) -> BOExplorer:
        """``n`` steps (default: the ``n_run`` control), the canvas updating after each."""
        return self.step(self.controls["n_run"].value if n is None else n)

    def reset(self) -> BOExplorer:
        """Start the run again from the seeded initial design."""
        self._reset()
        return self

    # -- validation ------------------------------------------------------------------------
    @staticmethod
    def _validate(name: str, value):
        choices = {"problem": PROBLEMS, "acquisition": ACQUISITIONS, "noise": NOISE_LEVELS, "show": SHOW_2D}
        if name in choices:
            return one_of(name, value, choices[name])
        if name in ("seed", "n_run"):
            if not is_integer(value):
                raise ValueError(f"{name} must be an integer; got {value!r}")
            lo, hi = (0, 2**31 - 1) if name == "seed" else (1, MAX_RUN)
            if not lo <= int(value) <= hi:
                raise ValueError(f"{name} must be an integer in [{lo}, {hi}]; got {value!r}")
            return int(value)
        raise ValueError(f"unknown control {name!r}; the controls are {CONTROLS}")

    # -- events ----------------------------------------------------------------------------
    def _on_setting(self, change):
        """Problem, acquisition, seed or noise changed: a new run (one, also from set())."""
        if self._batch_depth:
            self._dirty = self._run_dirty = True
        else:
            self._reset()

    def _on_show(self, change):
        """The 2-D heat map's content changed: a redraw of the same run."""
        if self._batch_depth:
            self._dirty = True
        else:
            self._draw()

    def _refresh(self):  # BatchedRefresh, at the end of set(): one new run, or one redraw
        if self._run_dirty:
            self._reset()
        else:
            self._dirty = False
            self._draw()

    def _busy(self, busy: bool):
        for b in (self.step_button, self.run_button, self.reset_button):
            b.disabled = busy
        if not busy and self._next is None:
            self.step_button.disabled = self.run_button.disabled = True

    def _guarded(self, what: str, action):
        self._busy(True)
        try:
            self._report_failure(what, action)
        finally:
            self._busy(False)

    def _on_step_clicked(self, button):
        self._guarded("Step", lambda: self.step(1))

    def _on_run_clicked(self, button):
        self._guarded("Run N", self.run)

    def _on_reset_clicked(self, button):
        self._guarded("Reset", self.reset)

    # -- the run ---------------------------------------------------------------------------
    def _make_problem(self) -> TestFunction:
        cls, kwargs = PROBLEMS[self.controls["problem"].value]
        fraction = NOISE_LEVELS[self.controls["noise"].value]
        clean = cls(**kwargs)
        grid = box_grid(clean.bounds, N_GRID_1D if clean.dim == 1 else N_GRID_2D)
        values = clean.evaluate(grid)
        self._grid, self._objective = grid, values
        if fraction == 0:
            return clean
        noise_std = fraction * float(np.max(values) - np.min(values))
        return cls(**kwargs, noise_std=noise_std, seed=self.controls["seed"].value)

    def _reset(self):
        self._dirty = self._run_dirty = False
        start = time.perf_counter()
        f = self._make_problem()
        self._problem = f
        self._grid_shape = (N_GRID_1D,) if f.dim == 1 else (N_GRID_2D, N_GRID_2D)
        noise = None if f.noise_std == 0 else f.noise_std**2
        self._opt = BayesianOptimizer(f.bounds, self.controls["acquisition"].value, self.controls["seed"].value,
                                      noise=noise)
        self._true_vals: list[float] = []
        with warnings.catch_warnings(), single_threaded_blas():
            warnings.simplefilter("ignore", RuntimeWarning)
            for _ in range(self._opt.n_initial_points):  # the seeded Sobol design
                self._evaluate(self._opt.ask())
            t0 = time.perf_counter()
            self._next = self._opt.ask()
            ask_s = time.perf_counter() - t0
        self._compute_and_draw(ask_s, start)
        self.controls["show"].layout.display = None if f.dim == 2 else "none"
        self.status.value = ""
        self._busy(False)
        if self._warm_up:
            self._start_warm_up()

    def _evaluate(self, x):
        self._opt.tell(x, self._problem(x))
        self._true_vals.append(float(self._problem.evaluate(x)))

    def _step_once(self):
        start = time.perf_counter()
        with warnings.catch_warnings(), single_threaded_blas():
            warnings.simplefilter("ignore", RuntimeWarning)
            self._evaluate(self._next)
            t0 = time.perf_counter()
            self._next = self._opt.ask() if len(self._opt.func_vals) < MAX_EVALUATIONS else None
            ask_s = time.perf_counter() - t0
        self._compute_and_draw(ask_s, start)

    def _compute_and_draw(self, ask_s: float, start: float):
        t0 = time.perf_counter()
        if self._next is not None:
            # the grid plus the next point: one fixed shape, and the acquisition's value there
            X = np.vstack([self._grid, self._next[None, :]])
            with single_threaded_blas():
                s = acquisition_surface(self._opt, X)
            self._surface = s._replace(X=self._grid, mean=s.mean[:-1], std=s.std[:-1],
                                       acquisition=s.acquisition[:-1])
            self._next_acquisition = float(s.acquisition[-1])
            if s.points is not None:  # KG: its value at the chosen candidate
                i = int(np.argmin(np.sum((s.points - self._next) ** 2, axis=1)))
                self._next_acquisition = float(s.points_values[i])
        # a full run keeps the last picture's model; only the data and regret are redrawn
        t1 = time.perf_counter()
        self._draw()
        t2 = time.perf_counter()
        self.handler_times.append(t2 - start)
        self.timings.append({"ask_s": ask_s, "surface_s": t1 - t0, "push_s": t2 - t1})
        del self.handler_times[:-1000], self.timings[:-1000]

    def _regret(self) -> np.ndarray:
        return simple_regret(self._true_vals, self._problem.optimum)

    # -- draw ------------------------------------------------------------------------------
    def _draw(self):
        f, opt, s = self._problem, self._opt, self._surface
        X = np.asarray(opt.x_iters).reshape(-1, f.dim)
        y = np.asarray(opt.func_vals)
        regret = self._regret()
        log_regret = np.log10(np.maximum(regret, REGRET_FLOOR))
        evals = np.arange(1, len(regret) + 1, dtype=float)
        acq = opt.acquisition
        minimised = not s.maximize
        next_label = LABELS["next_min"] if minimised else LABELS["next"]
        nxt = self._next
        arrays = {
            "evals": evals, "log_regret": log_regret,
            "next_x": np.array([np.nan]) if nxt is None else nxt[:1],
        }
        n0 = opt.n_initial_points
        regret_panel = {
            "box": [0.0, 0.75, 1.0, 0.25] if f.dim == 1 else [0.0, 0.7, 1.0, 0.3],
            "title": "simple regret: min f(x_i) - min f (the run's best so far against the optimum)",
            "xlabel": "evaluation", "ylabel": "log10 regret",
            "x_range": [0.5, max(len(regret), n0 + 10) + 0.5],
            "y_range": _range(log_regret, [min(1.0, float(np.max(log_regret)) + 0.5)], pad=0.06),
            "layers": [
                {"kind": "shade", "x0": 0.5, "x1": n0 + 0.5, "color": COLORS["initial"], "label": LABELS["initial"]},
                {"kind": "line", "x": "evals", "y": "log_regret", "color": COLORS["regret"], "width": 2,
                 "label": LABELS["regret"]},
                {"kind": "points", "x": "evals", "y": "log_regret", "marker": "dot", "size": 3,
                 "color": COLORS["regret"]},
            ],
        }
        if f.dim == 1:
            panels = self._panels_1d(arrays, X, y, next_label)
        else:
            panels = self._panels_2d(arrays, X, next_label)
        panels.append(regret_panel)
        n = len(y)
        best = float(np.min(y))
        caption = (f"{f.name}{' (noisy)' if f.noise_std else ''}, {acq}, seed {self.controls['seed'].value}: "
                   f"{n} evaluations, best observed {best:.4g}, log10 regret {log_regret[-1]:.2f}")
        self.canvas.push({"caption": caption, "panels": panels, "legend_columns": 2}, arrays)
        nxt_text = "none (the run is full)" if nxt is None else "(" + ", ".join(f"{v:.4g}" for v in nxt) + ")"
        self.summary.value = (
            f"<b>{n}</b> evaluations ({n0} initial)<br>best observed f: <b>{best:.5g}</b> "
            f"(optimum {f.optimum:.5g})<br>simple regret: {regret[-1]:.3g}<br>next point: {nxt_text}")

    def _panels_1d(self, arrays, X, y, next_label):
        f, s = self._problem, self._surface
        x = self._grid[:, 0]
        lower, upper = s.mean - 2 * s.std, s.mean + 2 * s.std
        arrays.update(x=x, objective=self._objective, mean=s.mean, lower=lower, upper=upper,
                      obs_x=X[:, 0], obs_y=y)
        lo, hi = f.bounds[0]
        y_range = _range(self._objective, y)
        # the band may balloon far from the data: keep the axis on the function, clip the band
        top = {
            "box": [0.0, 0.0, 1.0, 0.46], "title": "objective and GP posterior", "xlabel": "x", "ylabel": "f(x)",
            "x_range": [lo, hi], "y_range": y_range,
            "layers": [
                {"kind": "band", "x": "x", "lower": "lower", "upper": "upper", "color": COLORS["band"],
                 "label": LABELS["band"]},
                {"kind": "line", "x": "x", "y": "objective", "color": COLORS["objective"], "width": 1.5,
                 "dash": [6, 4], "label": LABELS["objective"]},
                {"kind": "line", "x": "x", "y": "mean", "color": COLORS["mean"], "width": 2.2,
                 "label": LABELS["mean"]},
                {"kind": "points", "x": "obs_x", "y": "obs_y", "marker": "dot", "size": 4, "color": COLORS["data"],
                 "label": LABELS["data"]},
                {"kind": "vline", "x": "next_x", "color": COLORS["next"], "width": 2, "dash": [4, 3],
                 "label": next_label},
            ],
        }
        if s.points is not None:  # KG lives on a discrete candidate set: draw it there
            order = np.argsort(s.points[:, 0])
            arrays.update(acq_x=s.points[order, 0], acq=s.points_values[order])
        else:
            arrays.update(acq_x=x, acq=s.acquisition)
        arrays["next_acq"] = np.array([self._next_acquisition if self._next is not None else np.nan])
        shown = arrays["acq"]
        if s.name == "log_ei":  # log EI spans hundreds of nats far from the data: show the top ones
            top_value = max(float(np.nanmax(shown)), float(arrays["next_acq"][0]))
            shown = np.maximum(shown, top_value - LOG_EI_SPAN)
        acq_range = _range(shown, arrays["next_acq"])
        bottom = {
            "box": [0.0, 0.46, 1.0, 0.29], "title": ACQUISITION_LABELS[s.name], "xlabel": "x",
            "ylabel": "acquisition", "x_range": [lo, hi], "y_range": acq_range,
            "layers": [
                {"kind": "line", "x": "acq_x", "y": "acq", "color": COLORS["acquisition"], "width": 2,
                 "label": f"acquisition: {s.name}"},
                {"kind": "vline", "x": "next_x", "color": COLORS["next"], "width": 2, "dash": [4, 3]},
                {"kind": "points", "x": "next_x", "y": "next_acq", "marker": "star", "size": 4,
                 "color": COLORS["next"], "label": "acquisition at the next point"},
            ],
        }
        return [top, bottom]

    def _panels_2d(self, arrays, X, next_label):
        f, s = self._problem, self._surface
        (x0, x1), (y0, y1) = f.bounds
        show = self.controls["show"].value
        if show == "acquisition":
            if s.points is not None:  # KG: each grid cell shows its nearest candidate's value
                d2 = np.sum((self._grid[:, None, :] - s.points[None, :, :]) ** 2 / np.square(
                    np.array([x1 - x0, y1 - y0])), axis=-1)
                z = s.points_values[np.argmin(d2, axis=1)]
            else:
                z = s.acquisition
            colorbar, title = f"acquisition: {s.name}", ACQUISITION_LABELS[s.name]
            if s.name == "log_ei":
                z = np.maximum(z, np.nanmax(z) - LOG_EI_SPAN)  # the rest is one colour
        elif show == "objective":
            z, colorbar, title = self._objective, "f(x)", "the objective f (hidden from the optimiser)"
        else:
            z, colorbar, title = s.mean, "posterior mean of f", "GP posterior mean of f"
        finite = z[np.isfinite(z)]
        vmin, vmax = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        arrays.update(heat=z, obs_x=X[:, 0], obs_y=X[:, 1],
                      next_y=np.array([np.nan]) if self._next is None else self._next[1:2],
                      opt_x=f.optimizers[:, 0], opt_y=f.optimizers[:, 1])
        heat = {
            "box": [0.0, 0.0, 1.0, 0.7], "title": title, "xlabel": "x_1", "ylabel": "x_2",
            "margin": {"left": 52, "right": 90, "top": 18, "bottom": 34},
            "x_range": [x0, x1], "y_range": [y0, y1],
            "layers": [
                {"kind": "heat", "z": "heat", "nx": N_GRID_2D, "ny": N_GRID_2D, "vmin": vmin, "vmax": vmax,
                 "colorbar": colorbar},
                {"kind": "points", "x": "opt_x", "y": "opt_y", "marker": "plus", "size": 4,
                 "color": COLORS["optimum"], "label": LABELS["optimum"]},
                {"kind": "points", "x": "obs_x", "y": "obs_y", "marker": "dot", "size": 4, "color": COLORS["data"],
                 "label": LABELS["data"]},
                {"kind": "points", "x": "next_x", "y": "next_y", "marker": "star", "size": 5,
                 "color": COLORS["next"], "label": next_label},
            ],
        }
        return [heat]

    # -- background warm-up ----------------------------------------------------------------
    def _start_warm_up(self):
        """Compile the bucket sizes this run will reach (32 and 64 points) in a background thread.

        A throwaway optimiser with the same problem, acquisition and settings is told 17 and then
        33 points and asked once each, which compiles the loop's ML-II fit and acquisition search
        for those sizes, and the surface is computed once per size. Compiled programs are shared
        by the whole process (and persist on disk), so the main thread finds them ready.
        """
        f, opt = self._problem, self._opt
        key = (f.dim, opt.acquisition, opt.noise is None)
        with _WARM_LOCK:
            if key in _WARMED or (self._warm_thread is not None and self._warm_thread.is_alive()):
                return
            _WARMED.add(key)
        bounds, acquisition, noise, grid = f.bounds, opt.acquisition, opt.noise, self._grid
        clean = type(f)(**PROBLEMS[self.controls["problem"].value][1])

        def warm():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                rng = np.random.default_rng(12345)
                lo, hi = np.asarray(bounds, dtype=float).T
                for size in (17, 33):
                    if size > MAX_EVALUATIONS:
                        break
                    dummy = BayesianOptimizer(bounds, acquisition, 0, noise=noise)
                    Xw = lo + (hi - lo) * rng.uniform(size=(size, len(lo)))
                    dummy.tell(Xw, clean.evaluate(Xw))
                    x_next = dummy.ask()
                    acquisition_surface(dummy, np.vstack([grid, x_next[None, :]]))

        self._start_warm_thread(warm, "BOExplorer-warm-up")


_WARMED: set = set()  # (dim, acquisition, noise-free) compiled (or being compiled) in this process
_WARM_LOCK = threading.Lock()
