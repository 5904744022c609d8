"""LatentExplorer: a VAE's 2-D latent space linked to its decoder, and a planar flow's fit vs K.

What it shows (Kingma & Welling, *Auto-Encoding Variational Bayes*; Rezende & Mohamed,
*Variational Inference with Normalizing Flows*):

* **Latent space**: the encoder means E_q[z | x] = mu_phi(x) of held-out digits, one glyph per
  image (its class, drawn in its class colour), and the image the decoder produces at one latent
  point z, the mean of p(x | z) (pixel probabilities for a Bernoulli decoder). Move the pointer
  over the scatter, or the z1 / z2 sliders (keyboard: focus a handle, arrow keys), and the image
  follows. For a latent size L > 2 the plane shown is either the first two latent dimensions
  (the others held at 0, the prior mean) or the first two principal components of the encoder
  means (the point decoded is mean + p1 v1 + p2 v2); the caption says which.
* **Training**: beta (the KL weight of a beta-VAE, Higgins et al.) and the latent size; the
  "train N more epochs" button trains in a background thread (:func:`bayeskit.vae.train`) with a
  progress bar, then redraws the scatter and reports the held-out ELBO.
* **Flow view**: a 2-D unnormalised target from :mod:`bayeskit.flows.targets` next to the
  density of a planar flow of K layers fitted to it by reverse KL (:func:`bayeskit.flows.fit_flow`).
  Fits for K in :data:`FLOW_LENGTHS` are made when first asked for and cached, so moving the K
  control among fitted values only repaints.

Design (``DESIGN.md``, "Widgets"): inference-only interactions (pointer, sliders, switching to a
cached K) run one jitted, fixed-shape decode (a (1, L) code) or no JAX at all, and push float32
bytes to an anywidget canvas (``vae_canvas.js``) inside one ``hold_sync()``; the front end echoes
``painted = seq`` after each paint. Training and flow fitting never run on the UI path.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import ipywidgets as w
import jax
import jax.numpy as jnp
import numpy as np
import traitlets as t
from flax import nnx

from bayeskit import _config  # noqa: F401  (bayeskit's JAX settings and compilation cache)
from bayeskit.flows import evaluate_flow, fit_flow, grid_points, standard_targets
from bayeskit.plot import PALETTE, PRIOR
from bayeskit.vae import VAE, elbo, train

from ._base import (
    Explorer,
    ExplorerCanvas,
    canvas_module,
    explorer_view,
    f32_bytes,
    heading,
    help_panel,
    one_of,
    record_time,
    single_threaded_blas,
)

__all__ = ["LatentExplorer", "LatentCanvas", "FlowCanvas", "FLOW_LENGTHS", "LATENT_SIZES", "CLASS_COLORS"]

#: flow lengths K offered by the flow view (each fitted once, when first shown, then cached)
FLOW_LENGTHS = (1, 2, 4, 8, 16)
#: latent sizes offered (one model per size, kept while the explorer lives)
LATENT_SIZES = (2, 4, 8, 16)
PROJECTIONS = ("first two dims", "PCA of means")
#: the square shown in latent coordinates (prior standard deviations)
Z_RANGE = (-4.0, 4.0)
FLOW_GRID = 64  # the flow densities are drawn on FLOW_GRID x FLOW_GRID cells
LEARNING_RATE = 3e-3  # Adam step for the explorer's training runs (as in notebooks 04b-04e)
# Ten classes, eight Okabe-Ito colours: the last two classes are greys, and every point is drawn
# as its class's digit glyph, so the class never rests on colour alone.
CLASS_COLORS = (*PALETTE[:7], PALETTE[7], PRIOR, "#555555")
CONTROLS = ("z1", "z2", "projection", "latent_dim", "beta", "epochs", "flow_target", "flow_length")

LABELS = {
    "scatter": "encoder means E[z | x] of held-out digits (glyph = class)",
    "pointer": "decoded point (pointer or z1 / z2 sliders)",
    "image": "decoder mean E[x | z] at the marked point",
    "target": "target density p(z) (normalised on the grid)",
    "flow": "planar flow q_K(z) fitted by reverse KL",
}

WHAT_TO_TRY = """
<b>What to try</b>
<ul style="margin-top:2px">
<li>Move the pointer across the scatter (or the <i>z1</i> / <i>z2</i> sliders with the arrow keys):
the digit morphs smoothly from class to class. Between clusters you get plausible in-between digits;
far outside the cloud (|z| &gt; 3, where the prior has little mass) the images degrade.</li>
<li>Press <i>train N more epochs</i> and watch the clusters separate and the held-out ELBO rise.</li>
<li>Raise <i>beta</i> to 2, then 4, and train again: the KL term is weighted more, the cloud is squeezed
towards N(0, I) and the images blur (a beta-VAE trades reconstruction for a simpler code). At beta = 4 the
code of these digits collapses: every point decodes to the same average digit (notebook 04c says why).</li>
<li>Set the <i>latent size</i> to 16: the ELBO improves, and the plane shown is only a slice
(first two dims) or a PCA projection of the code: switch <i>projection</i> and compare.</li>
<li>Flow view: pick the <i>ring</i> or <i>U3</i> target and move <i>flow layers K</i> from 1 to 16:
one planar layer can only bend the Gaussian once; more layers wrap it around the target
(the KL in the caption falls). The first visit to each K fits it (a few seconds); afterwards it is instant.</li>
</ul>
"""


# ---------------------------------------------------------------------------------------------
# Compute: jitted, fixed-shape programs (one compile per latent size)
# ---------------------------------------------------------------------------------------------
def _decode_fn(graphdef):
    """Decoder mean E[x | z] at codes z (k, L) -> (k, D); one compile per model shape."""
    return jax.jit(lambda state, z: nnx.merge(graphdef, state).decode_mean(z))


def _encode_fn(graphdef):
    return jax.jit(lambda state, x: nnx.merge(graphdef, state).encode(x)[0])


def _flow_log_prob_fn(graphdef):
    return jax.jit(lambda state, z: nnx.merge(graphdef, state).log_prob(z))


class _Model:
    """One VAE of the explorer with its compiled decode / encode and what training measured."""

    def __init__(self, vae: VAE):
        self.vae = vae
        self.lock = threading.Lock()
        self.epochs = 0
        self.train_elbo: list[float] = []
        self.test_elbo: list[float] = []
        self.betas: list[float] = []
        self.snapshot()

    def snapshot(self):
        graphdef, state = nnx.split(self.vae)
        with self.lock:
            if getattr(self, "graphdef", None) != graphdef:
                self.graphdef = graphdef
                self.decode = _decode_fn(graphdef)
                self.encode = _encode_fn(graphdef)
            self.state = state


# ---------------------------------------------------------------------------------------------
# Canvases
# ---------------------------------------------------------------------------------------------
class _Canvas(ExplorerCanvas):
    _esm = canvas_module("vae_canvas.js")
    _css = Path(__file__).with_name("vae_canvas.css")

    panel = t.Unicode("latent").tag(sync=True)
    labels = t.Dict(default_value=dict(LABELS)).tag(sync=True)
    caption = t.Unicode("").tag(sync=True)
    width = t.Int(820).tag(sync=True)
    height = t.Int(430).tag(sync=True)


class LatentCanvas(_Canvas):
    """Scatter of the latent means and the decoded image, painted by ``vae_canvas.js``.

    ``points`` (n * 2,) row-major (n, 2) plotted coordinates; ``classes`` (n,) class index of
    each point (as float32); ``pointer`` [p1, p2] the decoded point; ``image`` (side * side,)
    decoder mean in [0, 1], row-major; ``z_range`` the square shown. Moving the pointer over
    the scatter sends ``{"type": "pointer", "z1", "z2"}`` (at most one message in flight).
    """

    panel = t.Unicode("latent").tag(sync=True)
    points = t.Bytes(b"").tag(sync=True)
    classes = t.Bytes(b"").tag(sync=True)
    class_colors = t.List(t.Unicode(), default_value=list(CLASS_COLORS)).tag(sync=True)
    pointer = t.List(t.Float(), default_value=[0.0, 0.0]).tag(sync=True)
    image = t.Bytes(b"").tag(sync=True)
    image_side = t.Int(8).tag(sync=True)
    z_range = t.List(t.Float(), default_value=list(Z_RANGE)).tag(sync=True)
    axis_labels = t.List(t.Unicode(), default_value=["z1", "z2"]).tag(sync=True)
    image_caption = t.Unicode("").tag(sync=True)


class FlowCanvas(_Canvas):
    """Target density and the planar flow's density on a grid, painted by ``vae_canvas.js``.

    ``target`` and ``density`` (grid * grid,) row-major with rows along z2 (as
    :func:`bayeskit.flows.grid_points`), each normalised on the grid; ``bounds`` [z1_lo, z1_hi,
    z2_lo, z2_hi].
    """

    panel = t.Unicode("flow").tag(sync=True)
    height = t.Int(380).tag(sync=True)
    target = t.Bytes(b"").tag(sync=True)
    density = t.Bytes(b"").tag(sync=True)
    grid = t.Int(FLOW_GRID).tag(sync=True)
    bounds = t.List(t.Float(), default_value=[-4.0, 4.0, -4.0, 4.0]).tag(sync=True)
    flow_caption = t.Unicode("").tag(sync=True)


# ---------------------------------------------------------------------------------------------
# The explorer
# ---------------------------------------------------------------------------------------------
def _digits_split(seed: int):
    from bayeskit.data import load_digits

    d = load_digits()
    order = np.random.default_rng(seed).permutation(len(d.y))
    test, train_idx = order[:297], order[297:]
    return d.X[train_idx], d.X[test], d.y[test]


def _finite_array(x, name: str, ndim: int) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype == object or not np.issubdtype(arr.dtype, np.number):
        raise TypeError(f"{name} must be a numeric array; got dtype {arr.dtype}")
    if arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D; got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


class LatentExplorer(Explorer):
    """Explore a VAE's latent space and a planar flow's fit (see the module docstring).

    Parameters
    ----------
    vae : a trained :class:`bayeskit.vae.VAE` whose data are square images (data_dim = s^2), or
        ``None`` to build and train a small one (hidden (128,), Bernoulli decoder) on the 8x8
        digits. The explorer works on a copy: training from the explorer never changes ``vae``.
    x_train : (n, D) training images for the "train" button (default: 1500 digits).
    x_test, y_test : (m, D) held-out images and their (m,) integer classes 0-9, drawn in the
        scatter and used for the held-out ELBO (default: the other 297 digits).
    latent_dim : latent size of the model built when ``vae`` is None (one of :data:`LATENT_SIZES`).
    epochs : epochs per press of "train N more epochs"; ``initial_epochs``: training of a newly
        built model (when ``vae`` is None or the latent size is switched to a new one).
    beta : KL weight used when training (1 is the ELBO).
    flow_target : one of ``bayeskit.flows.standard_targets()`` (banana, ring, mixture, U1-U4);
        ``flow_length`` in :data:`FLOW_LENGTHS`; ``flow_steps`` Adam steps per flow fit.
    seed : data split, weight initialisation and training draws.
    """

    def __init__(self, vae: VAE | None = None, *, x_train=None, x_test=None, y_test=None,
                 latent_dim: int = 2, epochs: int = 20, initial_epochs: int = 40, beta: float = 1.0,
                 flow_target: str = "banana", flow_length: int = 2, flow_steps: int = 1000,
                 batch_size: int = 64, seed: int = 0):
        if vae is not None and not isinstance(vae, VAE):
            raise TypeError(f"vae must be a bayeskit.vae.VAE or None; got {type(vae).__name__}")
        if (x_test is None) != (y_test is None):
            raise ValueError("give both x_test and y_test (held-out images and their classes), or neither")
        d_train, d_test, d_y = _digits_split(seed) if (x_train is None or x_test is None) else (None, None, None)
        x_train = d_train if x_train is None else _finite_array(x_train, "x_train", 2)
        x_test = d_test if x_test is None else _finite_array(x_test, "x_test", 2)
        y_test = d_y if y_test is None else _finite_array(y_test, "y_test", 1)
        if x_test.shape[0] != y_test.shape[0]:
            raise ValueError(f"x_test and y_test must have the same number of rows; got {x_test.shape[0]} and {y_test.shape[0]}")
        if np.any(y_test != np.round(y_test)) or y_test.min() < 0 or y_test.max() >= len(CLASS_COLORS):
            raise ValueError(f"y_test must hold integer classes 0-{len(CLASS_COLORS) - 1}")
        if x_train.shape[1] != x_test.shape[1]:
            raise ValueError(f"x_train and x_test must have the same width; got {x_train.shape[1]} and {x_test.shape[1]}")
        data_dim = x_test.shape[1]
        side = math.isqrt(data_dim)
        if side * side != data_dim:
            raise ValueError(f"the data must be square images flattened to s*s columns (64 for 8x8, 784 for 28x28); got {data_dim}")
        if vae is not None and vae.data_dim != data_dim:
            raise ValueError(f"vae.data_dim ({vae.data_dim}) does not match the data's {data_dim} columns")
        self._x_train = np.asarray(x_train, dtype=np.float32)
        self._x_test = np.asarray(x_test, dtype=np.float32)
        self._y_test = np.asarray(y_test).astype(np.int64)
        self._side, self._seed, self._batch_size = side, int(seed), int(batch_size)
        self._initial_epochs = self._check_epochs(initial_epochs, "initial_epochs")
        self._flow_steps = self._check_epochs(flow_steps, "flow_steps")
        self._targets = standard_targets()
        self._models: dict[int, _Model] = {}
        self._flows: dict[tuple[str, int], dict] = {}
        self._target_density: dict[str, np.ndarray] = {}
        self._busy = threading.Lock()  # one training run at a time
        self._flow_thread: threading.Thread | None = None
        self._push_lock = threading.RLock()
        self._threads: list[threading.Thread] = []
        self._batch_depth, self._dirty = 0, False
        self.handler_times: list[float] = []  # seconds per pointer / slider update (decode + push)
        self.flow_handler_times: list[float] = []  # seconds per flow-view repaint of a cached fit
        self._projection_basis: tuple[np.ndarray, np.ndarray] | None = None

        if vae is not None:
            latent_dim = vae.latent_dim
            model = _Model(nnx.clone(vae))
            # the held-out ELBO of the model as given (one draw per image, the key training uses)
            model.test_elbo.append(float(np.mean(elbo(model.vae, np.asarray(x_test, np.float32), jax.random.key(12345)))))
            self._models[latent_dim] = model
        values = {"z1": 0.0, "z2": 0.0, "projection": PROJECTIONS[0], "latent_dim": latent_dim,
                  "beta": beta, "epochs": epochs, "flow_target": flow_target, "flow_length": flow_length}
        if vae is not None and latent_dim not in LATENT_SIZES:
            values["latent_dim"] = LATENT_SIZES[0]  # validated below; replaced just after
        values = {name: self._validate(name, v) for name, v in values.items()}
        if vae is not None:
            values["latent_dim"] = latent_dim

        self.canvas = LatentCanvas(image_side=side)
        self.canvas.on_msg(self._on_canvas_message)
        self.flow_canvas = FlowCanvas()
        self.controls: dict[str, w.Widget] = {}
        c = self.controls
        style = {"description_width": "110px"}
        wide = w.Layout(width="330px")
        c["z1"] = w.FloatSlider(value=values["z1"], min=Z_RANGE[0], max=Z_RANGE[1], step=0.05, description="z1",
                                continuous_update=True, style=style, layout=wide,
                                tooltip="first coordinate of the decoded point (arrow keys move it)")
        c["z2"] = w.FloatSlider(value=values["z2"], min=Z_RANGE[0], max=Z_RANGE[1], step=0.05, description="z2",
                                continuous_update=True, style=style, layout=wide,
                                tooltip="second coordinate of the decoded point")
        c["projection"] = w.Dropdown(options=PROJECTIONS, value=values["projection"], description="plane shown",
                                     style=style, layout=wide)
        c["latent_dim"] = w.Dropdown(options=sorted(set(LATENT_SIZES) | {values["latent_dim"]}),
                                     value=values["latent_dim"], description="latent size L", style=style, layout=wide)
        c["beta"] = w.FloatLogSlider(value=values["beta"], base=10, min=-1, max=1, step=0.05, description="beta (KL weight)",
                                     readout_format=".2f", continuous_update=False, style=style, layout=wide)
        c["epochs"] = w.IntSlider(value=values["epochs"], min=1, max=200, description="N (epochs)",
                                  continuous_update=False, style=style, layout=wide)
        c["flow_target"] = w.Dropdown(options=tuple(self._targets), value=values["flow_target"],
                                      description="flow target", style=style, layout=wide)
        c["flow_length"] = w.SelectionSlider(options=FLOW_LENGTHS, value=values["flow_length"],
                                             description="flow layers K", continuous_update=True,
                                             style=style, layout=wide)
        for name in ("z1", "z2"):
            c[name].observe(self._on_latent_control, names="value")
        c["projection"].observe(self._on_model_control, names="value")
        c["latent_dim"].observe(self._on_latent_dim, names="value")
        c["flow_target"].observe(self._on_flow_control, names="value")
        c["flow_length"].observe(self._on_flow_control, names="value")
        c["epochs"].observe(self._on_epochs, names="value")
        self.train_button = w.Button(description=f"train {values['epochs']} more epochs", icon="play",
                                     tooltip="maximise the (beta-)ELBO for N more epochs (Adam, in the background)",
                                     layout=w.Layout(width="210px"))
        self.train_button.on_click(lambda _: self.train_more(wait=False))
        self.progress = w.IntProgress(value=0, min=0, max=1, description="training", style=style,
                                      layout=w.Layout(width="330px"))
        self.elbo_label = w.HTML()
        self.status = w.HTML()
        self.help = help_panel(WHAT_TO_TRY, "980px")
        side_box = w.VBox([c["z1"], c["z2"], c["projection"], c["latent_dim"], c["beta"], c["epochs"],
                           self.train_button, self.progress, self.elbo_label, self.status],
                          layout=w.Layout(min_width="340px"))
        flow_box = w.VBox([c["flow_target"], c["flow_length"],
                           w.HTML("The first visit to a (target, K) fits the flow in the background; "
                                  "later visits are instant.")], layout=w.Layout(min_width="340px"))
        self.view = explorer_view(
            "VAE latent-space explorer",
            "p(z) = N(0, I), p(x | z) = Bernoulli(decoder(z)), q(z | x) = N(mu(x), diag s(x)^2)",
            w.HBox([self.canvas, side_box]),
            heading("Flow view", "q_K = planar flow of K layers on a Gaussian, fitted to an "
                                 "unnormalised 2-D target by maximising E_q[log p~(z) - log q_K(z)]"),
            w.HBox([self.flow_canvas, flow_box]),
            self.help,
        )
        self._latent_dim = values["latent_dim"]
        if self._latent_dim not in self._models:
            self._build_and_train(self._latent_dim, wait=True)
        self._refresh_model()
        # the flow view is fitted lazily: when the explorer is first displayed, or asked for

    def show_flow(self) -> LatentExplorer:
        """Draw the flow view now (starting its first fit in the background if needed)."""
        self._refresh_flow()
        return self

    # -- display ---------------------------------------------------------------------------
    def _repr_mimebundle_(self, **kwargs):
        if self.flow_canvas.seq == 0:
            self._refresh_flow()
        return super()._repr_mimebundle_(**kwargs)

    # -- public API ------------------------------------------------------------------------
    @property
    def vae(self) -> VAE:
        """The model shown now (the explorer's own copy)."""
        return self._models[self._latent_dim].vae

    @property
    def state(self) -> Mapping[str, Any]:
        """Read-only snapshot of the controls, the model and the flow view.

        Keys: the names in ``CONTROLS``; ``latent_code`` (L,) the point decoded; ``plane`` (what
        the 2-D view shows); ``epochs_trained``, ``test_elbo`` (held-out ELBO, nats per image,
        after the last training; None before any), ``elbo_history``; ``training`` (a run in
        progress); ``cached_flows`` (K fitted for the current target); ``flow_kl`` (grid KL(q_K
        || p) of the shown fit, None while fitting); ``seq`` / ``painted`` of each canvas.
        """
        m = self._models[self._latent_dim]
        target = self.controls["flow_target"].value
        fit = self._flows.get((target, self.controls["flow_length"].value))
        return self._snapshot(CONTROLS, dict(
            latent_code=tuple(float(v) for v in self.latent_code()),
            plane=self._plane_text(),
            epochs_trained=m.epochs,
            test_elbo=m.test_elbo[-1] if m.test_elbo else None,
            elbo_history=tuple(m.test_elbo),
            training=self._busy.locked(),
            cached_flows=tuple(sorted(k for (tg, k) in self._flows if tg == target)),
            flow_kl=None if fit is None else fit["kl"],
            seq=self.canvas.seq, painted=self.canvas.painted,
            flow_seq=self.flow_canvas.seq, flow_painted=self.flow_canvas.painted,
        ))

    def set(self, **controls) -> LatentExplorer:
        """Set several controls at once (one redraw); returns self.

        Names: ``z1``, ``z2`` (in [-4, 4]), ``projection`` ("first two dims" / "PCA of means"),
        ``latent_dim`` (one of :data:`LATENT_SIZES`; a new size builds and trains a model, and
        ``set`` waits for it), ``beta`` (in [0.1, 10]), ``epochs`` (1-200), ``flow_target``,
        ``flow_length`` (in :data:`FLOW_LENGTHS`; ``set`` waits for a new fit). Raises
        ``ValueError`` naming the control for an unknown name or a bad value; nothing changes
        when any value is bad.
        """
        super().set(**controls)
        self.wait_ready()
        return self

    def latent_code(self) -> np.ndarray:
        """The full latent vector (L,) float32 decoded for the current z1, z2 and plane."""
        p = np.array([self.controls["z1"].value, self.controls["z2"].value], dtype=np.float64)
        L = self._latent_dim
        if L == 2 or self.controls["projection"].value == PROJECTIONS[0] or self._projection_basis is None:
            z = np.zeros(L)
            z[:2] = p
        else:
            centre, basis = self._projection_basis
            z = centre + basis @ p
        return z.astype(np.float32)

    def train_more(self, epochs: int | None = None, *, wait: bool = True) -> LatentExplorer:
        """Train the shown model for ``epochs`` more epochs (default: the N control) at the
        current beta, then redraw. ``wait=False`` returns at once (the button's path); the
        progress bar and status follow the run. Raises ``RuntimeError`` if a run is going."""
        n = self.controls["epochs"].value if epochs is None else self._check_epochs(epochs, "epochs")
        L = self._latent_dim
        if not self._busy.acquire(blocking=False):
            self.status.value = "busy: a training run or flow fit is in progress"
            if wait:
                raise RuntimeError("a training run or flow fit is already in progress; call wait_ready() first")
            return self
        self._run(lambda: self._train(L, n), wait)
        return self

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Wait for background training / flow fits; True when none is left running."""
        for thread in list(self._threads):
            thread.join(timeout)
        self._threads = [th for th in self._threads if th.is_alive()]
        return not self._threads

    def flow_fit(self, target: str | None = None, length: int | None = None) -> dict:
        """The cached fit for (target, K) (default: the shown one), fitting it now if needed.

        Returns a dict: ``flow`` (the :class:`bayeskit.flows.PlanarFlow`), ``density`` (grid,
        grid) q_K normalised on the grid, ``kl`` (grid KL(q_K || p)), ``elbo``.
        """
        target = self._validate("flow_target", self.controls["flow_target"].value if target is None else target)
        length = self._validate("flow_length", self.controls["flow_length"].value if length is None else length)
        if (target, length) not in self._flows:
            self._fit_flow(target, length)
        return self._flows[(target, length)]

    # -- validation ------------------------------------------------------------------------
    @staticmethod
    def _check_epochs(value, name: str) -> int:
        if isinstance(value, bool) or not hasattr(value, "__index__") or not 1 <= int(value) <= 100_000:
            raise ValueError(f"{name} must be a positive integer; got {value!r}")
        return int(value)

    def _validate(self, name: str, value):
        if name in ("z1", "z2"):
            try:
                v = float(value)
            except (TypeError, ValueError):
                raise ValueError(f"{name} must be a number in {Z_RANGE}; got {value!r}") from None
            if not math.isfinite(v) or not Z_RANGE[0] <= v <= Z_RANGE[1]:
                raise ValueError(f"{name} must be a finite number in [{Z_RANGE[0]}, {Z_RANGE[1]}]; got {value!r}")
            return v
        if name == "projection":
            return one_of("projection", value, PROJECTIONS)
        if name == "latent_dim":
            if isinstance(value, bool) or not hasattr(value, "__index__") or int(value) not in LATENT_SIZES:
                raise ValueError(f"latent_dim must be one of {LATENT_SIZES}; got {value!r}")
            return int(value)
        if name == "beta":
            try:
                v = float(value)
            except (TypeError, ValueError):
                raise ValueError(f"beta must be a number in [0.1, 10]; got {value!r}") from None
            if not math.isfinite(v) or not 0.1 - 1e-9 <= v <= 10 + 1e-9:
                raise ValueError(f"beta must be a finite number in [0.1, 10] (the slider's range); got {value!r}")
            return v
        if name == "epochs":
            v = self._check_epochs(value, "epochs")
            if v > 200:
                raise ValueError(f"epochs must be in [1, 200] (the slider's range); got {v}")
            return v
        if name == "flow_target":
            return one_of("flow_target", value, self._targets)
        if name == "flow_length":
            if isinstance(value, bool) or not hasattr(value, "__index__") or int(value) not in FLOW_LENGTHS:
                raise ValueError(f"flow_length must be one of {FLOW_LENGTHS}; got {value!r}")
            return int(value)
        raise ValueError(f"unknown control {name!r}; the controls are {CONTROLS}")

    # -- callbacks -------------------------------------------------------------------------
    def _on_canvas_message(self, widget, content, buffers):
        if not (isinstance(content, dict) and content.get("type") == "pointer"):
            return
        try:
            z1 = float(np.clip(float(content["z1"]), *Z_RANGE))
            z2 = float(np.clip(float(content["z2"]), *Z_RANGE))
            with self._batch():
                self.controls["z1"].value = z1
                self.controls["z2"].value = z2
        except (KeyError, TypeError, ValueError) as err:
            self.status.value = f"could not use the pointer position: {err}"

    def _on_latent_control(self, change):
        self._on_control(change)

    def _refresh(self):  # BatchedRefresh: the pointer / sliders changed
        self._dirty = False
        self._refresh_image()

    def _on_model_control(self, change):
        self._refresh_model()

    def _on_epochs(self, change):
        self.train_button.description = f"train {change['new']} more epochs"

    def _on_latent_dim(self, change):
        L = int(change["new"])
        if L in self._models:
            self._latent_dim = L
            self._refresh_model()
            return
        if not self._busy.acquire(blocking=False):
            self.status.value = "busy: wait for the run in progress, then pick the latent size again"
            self._show_latent_dim(self._latent_dim)
            return
        self.status.value = f"building a VAE with L = {L} and training it for {self._initial_epochs} epochs..."
        self._run(lambda: self._new_model(L), wait=False)

    def _on_flow_control(self, change):
        self._refresh_flow()

    # -- background work -------------------------------------------------------------------
    def _run(self, job, wait: bool):
        """Run ``job`` holding the busy lock (already acquired), in a thread unless ``wait``."""
        def body():
            try:
                job()
            except Exception as err:  # shown in the widget: a thread has no other place to report
                self.status.value = f"failed: {type(err).__name__}: {err}"
                if wait:
                    raise
            finally:
                self._busy.release()

        if wait:
            body()
            return
        # not a daemon: killing a thread inside an XLA compilation at exit crashes the process
        thread = threading.Thread(target=body, name="LatentExplorer-work", daemon=False)
        self._threads.append(thread)
        thread.start()

    def _build_and_train(self, L: int, wait: bool):
        if not self._busy.acquire(blocking=False):
            raise RuntimeError("a training run or flow fit is already in progress")
        self._run(lambda: self._new_model(L), wait)

    def _new_model(self, L: int):
        vae = VAE(data_dim=self._x_train.shape[1], latent_dim=L, hidden=(128,),
                  rngs=nnx.Rngs(self._seed + 1000 * L))
        self._models[L] = _Model(vae)
        self._train(L, self._initial_epochs, switch=True)

    def _train(self, L: int, epochs: int, switch: bool = False):
        m = self._models[L]
        beta = float(self.controls["beta"].value)
        chunks = min(epochs, 5)  # the progress bar moves per chunk (each chunk is one train() call)
        sizes = [epochs // chunks + (1 if i < epochs % chunks else 0) for i in range(chunks)]
        self.progress.max, self.progress.value = epochs, 0
        self.status.value = f"training L = {L}, beta = {beta:.2f} for {epochs} epochs..."
        start = time.perf_counter()
        with single_threaded_blas():
            for size in sizes:
                history = train(m.vae, self._x_train, epochs=size, batch_size=self._batch_size, beta=beta,
                                learning_rate=LEARNING_RATE, key=jax.random.key(self._seed * 7919 + m.epochs), progress=False)
                m.epochs += size
                m.train_elbo.extend(history.train_elbo)
                m.betas.extend([beta] * size)
                self.progress.value += size
            m.snapshot()
            test = float(np.mean(elbo(m.vae, self._x_test, jax.random.key(12345))))
        m.test_elbo.append(test)
        self.status.value = f"trained {epochs} epochs in {time.perf_counter() - start:.1f} s"
        if switch:
            self._latent_dim = L
        if L == self._latent_dim:
            self._refresh_model()

    # -- drawing ---------------------------------------------------------------------------
    def _plane_text(self) -> str:
        L = self._latent_dim
        if L == 2:
            return "the 2-D latent space (z1, z2)"
        if self.controls["projection"].value == PROJECTIONS[0]:
            return f"latent dims 1 and 2 of {L} (the other {L - 2} held at 0, the prior mean)"
        return f"first two principal components of the encoder means (L = {L})"

    def scatter_points(self) -> np.ndarray:
        """The plotted coordinates (m, 2) of the held-out images (encoder means, projected)."""
        m = self._models[self._latent_dim]
        with m.lock:
            means = np.asarray(m.encode(m.state, jnp.asarray(self._x_test)), dtype=np.float64)
        L = self._latent_dim
        if L == 2 or self.controls["projection"].value == PROJECTIONS[0]:
            return means[:, :2]
        centre, basis = self._projection_basis
        return (means - centre) @ basis

    def _update_projection(self):
        m = self._models[self._latent_dim]
        with m.lock:
            means = np.asarray(m.encode(m.state, jnp.asarray(self._x_test)), dtype=np.float64)
        centre = means.mean(axis=0)
        # principal axes of the encoder means: the top-2 right singular vectors of the centred means
        _, _, vt = np.linalg.svd(means - centre, full_matrices=False)
        basis = vt[:2].T
        basis = basis * np.sign(basis[np.argmax(np.abs(basis), axis=0), [0, 1]])  # deterministic signs
        self._projection_basis = (centre, basis)

    def _show_latent_dim(self, L: int):
        """Put the latent-size control on L without starting a model switch."""
        control = self.controls["latent_dim"]
        if control.value != L:
            control.unobserve(self._on_latent_dim, names="value")
            try:
                control.value = L
            finally:
                control.observe(self._on_latent_dim, names="value")

    def _refresh_model(self):
        """Scatter, axis labels, controls' visibility and the ELBO line for the shown model."""
        L = self._latent_dim
        self.controls["projection"].disabled = L == 2
        self._show_latent_dim(L)
        self._update_projection()
        pts = self.scatter_points()
        m = self._models[L]
        pca = L > 2 and self.controls["projection"].value == PROJECTIONS[1]
        outside = int(np.sum(np.any(np.abs(pts) > Z_RANGE[1], axis=1)))
        note = f"; {outside} outside the box" if outside else ""
        with self._push_lock, self.canvas.update() as c:
            c.points = f32_bytes(pts)
            c.classes = f32_bytes(self._y_test)
            c.axis_labels = ["PC1 of the means", "PC2 of the means"] if pca else ["z1", "z2"]
            c.caption = f"{self._plane_text()}: {len(pts)} held-out digits{note}"
            self._push_image(c)
        elbo_text = f"{m.test_elbo[-1]:.2f} nats per image" if m.test_elbo else "(not measured: press train)"
        self.elbo_label.value = (f"<b>held-out ELBO</b> {elbo_text}; {m.epochs} epochs trained here, "
                                 f"L = {L}")

    def _push_image(self, c):
        m = self._models[self._latent_dim]
        z = self.latent_code()
        with m.lock:
            image = np.asarray(m.decode(m.state, jnp.asarray(z[None, :])))[0]
        c.image = f32_bytes(image)
        c.pointer = [float(self.controls["z1"].value), float(self.controls["z2"].value)]
        c.image_caption = "decoded at z = (" + ", ".join(f"{v:.2f}" for v in z[:4]) + (", ...)" if z.size > 4 else ")")

    def _refresh_image(self):
        start = time.perf_counter()
        with self._push_lock, self.canvas.update() as c:
            self._push_image(c)
        record_time(self.handler_times, start)

    def decoded_image(self) -> np.ndarray:
        """The image drawn now: (side, side) float32, the decoder mean at :meth:`latent_code`."""
        return self.canvas.array("image").reshape(self._side, self._side)

    # -- flow view -------------------------------------------------------------------------
    def _target_on_grid(self, name: str) -> np.ndarray:
        if name not in self._target_density:
            tg = self._targets[name]
            _, _, pts, area = grid_points(tg.view, FLOW_GRID)
            lp = np.asarray(tg.log_prob(pts), dtype=np.float64)
            p = np.exp(lp - lp.max())
            self._target_density[name] = p / (p.sum() * area)
        return self._target_density[name]

    def _fit_flow(self, name: str, K: int):
        tg = self._targets[name]
        with single_threaded_blas():
            flow, history = fit_flow(tg, "planar", K, steps=self._flow_steps, key=jax.random.key(self._seed + K),
                                     progress=False)
            graphdef, state = nnx.split(flow)
            _, _, pts, area = grid_points(tg.view, FLOW_GRID, dtype=jnp.float32)
            log_q = np.asarray(_flow_log_prob_fn(graphdef)(state, pts.reshape(-1, 2)), dtype=np.float64)
            ev = evaluate_flow(flow, tg, key=jax.random.key(99), n_samples=4000, grid_size=150)
        q = np.exp(log_q).reshape(FLOW_GRID, FLOW_GRID)
        self._flows[(name, K)] = {"flow": flow, "density": q, "kl": float(ev.kl_grid), "elbo": float(ev.elbo),
                                  "mass": float(q.sum() * area)}

    def _refresh_flow(self):
        """Draw the cached fit the controls ask for, or start fitting it in the background.

        One flow worker at a time: when K moves while a fit runs, the worker fits the newest
        request next (fits asked for in between are skipped), so the UI never waits on a fit.
        """
        name, K = self.controls["flow_target"].value, self.controls["flow_length"].value
        if (name, K) in self._flows:
            self._draw_flow(name, K)
            return
        self.flow_canvas.flow_caption = f"fitting a planar flow with K = {K} to {name} (first visit)..."
        if self._flow_thread is not None and self._flow_thread.is_alive():
            return  # the running worker picks up the newest request when its fit ends

        def worker():
            while True:
                wanted = (self.controls["flow_target"].value, self.controls["flow_length"].value)
                if wanted in self._flows:
                    self._draw_flow(*wanted)
                    return
                try:
                    self._fit_flow(*wanted)
                except Exception as err:  # shown in the widget: a thread has no other place to report
                    self.flow_canvas.flow_caption = f"the flow fit failed: {type(err).__name__}: {err}"
                    return

        # not a daemon: killing a thread inside an XLA compilation at exit crashes the process
        self._flow_thread = threading.Thread(target=worker, name="LatentExplorer-flow", daemon=False)
        self._threads.append(self._flow_thread)
        self._flow_thread.start()

    def _draw_flow(self, name: str, K: int):
        start = time.perf_counter()
        tg = self._targets[name]
        fit = self._flows[(name, K)]
        (a0, a1), (b0, b1) = tg.view
        with self._push_lock, self.flow_canvas.update() as c:
            c.target = f32_bytes(self._target_on_grid(name))
            c.density = f32_bytes(fit["density"])
            c.grid = FLOW_GRID
            c.bounds = [a0, a1, b0, b1]
            c.caption = f"target: {name}"
            c.flow_caption = (f"planar flow, K = {K}: KL(q_K || p) = {fit['kl']:.3f} nats (grid), "
                              f"ELBO = {fit['elbo']:.3f}")
        record_time(self.flow_handler_times, start)
