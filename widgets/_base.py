"""Pieces every explorer shares: batched refreshes, float32 transport, single-threaded BLAS,
the canvas JavaScript common to all explorers, the canvas base classes (seq / painted
handshake), the layout (heading, help panel), control validation, and the explorer mixin
(``set``, ``state``, ``wait_ready``, background warm-up, button error reporting)."""

from __future__ import annotations

import contextlib
import functools
import math
import threading
import time
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anywidget
import ipywidgets as w
import numpy as np
import traitlets as t
from threadpoolctl import ThreadpoolController


def canvas_module(name: str) -> str:
    """A canvas's ES module: ``canvas_common.js`` (shared helpers) followed by ``name``."""
    here = Path(__file__).parent
    return (here / "canvas_common.js").read_text() + "\n" + (here / name).read_text()


def f32_bytes(a) -> bytes:
    """An array as little-endian float32 bytes, the format the canvases decode."""
    return np.ascontiguousarray(a, dtype=np.float32).tobytes()


@functools.cache
def _blas_controller() -> ThreadpoolController:
    return ThreadpoolController()


def single_threaded_blas():
    """Context in which OpenBLAS (JAX's CPU LAPACK, through SciPy) runs on one thread.

    Why: OpenBLAS's worker threads busy-wait; on a small, shared CPU (2 cores, other processes
    running) a 400 x 400 Cholesky then stalls for up to 1.5 s instead of taking 2-3 ms. The
    matrices in an explorer are too small for threads to pay off anyway.
    """
    return _blas_controller().limit(limits=1, user_api="blas")


class BatchedRefresh:
    """Mixin: control callbacks refresh the view once, also when ``set()`` changes several.

    The explorer sets ``_batch_depth = 0`` and ``_dirty = False`` in ``__init__``, defines
    ``_refresh()`` (which clears ``_dirty``) and observes its controls with ``_on_control``.
    """

    _batch_depth: int
    _dirty: bool

    @contextlib.contextmanager
    def _batch(self):
        """Group control changes into one update (``set()``, a fit)."""
        self._batch_depth += 1
        try:
            yield
        finally:
            self._batch_depth -= 1
            if self._batch_depth == 0 and self._dirty:
                self._refresh()

    def _on_control(self, change):
        if self._batch_depth:
            self._dirty = True
        else:
            self._refresh()

    def _refresh(self):  # pragma: no cover - provided by the explorer
        raise NotImplementedError


# ---------------------------------------------------------------------------------------------
# Canvases: the seq / painted handshake and float32 arrays
# ---------------------------------------------------------------------------------------------
class ExplorerCanvas(anywidget.AnyWidget):
    """Base of every explorer's canvas: ``seq`` is bumped by Python with every update, and the
    front end sets ``painted = seq`` once it has painted that update (tests and benchmarks check
    that the picture followed the state). Arrays travel as float32 little-endian bytes."""

    seq = t.Int(0).tag(sync=True)
    painted = t.Int(0).tag(sync=True)

    def array(self, name: str) -> np.ndarray:
        """The float32 array held by the bytes trait ``name`` (what the browser draws)."""
        return np.frombuffer(getattr(self, name), dtype=np.float32)

    @contextlib.contextmanager
    def update(self):
        """Change traits as one update: a single message (``hold_sync``), ``seq`` bumped last."""
        with self.hold_sync():
            yield self
            self.seq = self.seq + 1


class SpecCanvas(ExplorerCanvas):
    """A canvas drawn from a JSON ``spec`` (panels and their layers, each naming arrays in
    ``arrays``, a dict of float32 bytes, and carrying its legend label)."""

    spec = t.Dict().tag(sync=True)
    arrays = t.Dict(value_trait=t.Bytes()).tag(sync=True)

    def array(self, name: str) -> np.ndarray:
        """The float32 array ``name`` as the browser draws it."""
        return np.frombuffer(self.arrays[name], dtype=np.float32)

    def layers(self) -> list[dict]:
        """Every layer of every panel of the current picture."""
        return [layer for panel in self.spec.get("panels", []) for layer in panel["layers"]]

    def push(self, spec: dict, arrays: dict[str, np.ndarray]) -> None:
        """Send a new picture: the spec and its arrays (as float32) in one update."""
        with self.update():
            self.spec = spec
            self.arrays = {name: f32_bytes(a) for name, a in arrays.items()}


# ---------------------------------------------------------------------------------------------
# Layout and bookkeeping
# ---------------------------------------------------------------------------------------------
def heading(title: str, subtitle: str) -> w.HTML:
    """A bold title followed by a one-line summary of the model shown."""
    return w.HTML(f"<b>{title}</b> &nbsp; {subtitle}")


def help_panel(html: str, max_width: str) -> w.HTML:
    """The "What to try" panel under the plot."""
    return w.HTML(html, layout=w.Layout(max_width=max_width))


def explorer_view(title: str, subtitle: str, *rows: w.Widget) -> w.VBox:
    """An explorer's whole view: its heading over ``rows`` (plot and controls, help last)."""
    return w.VBox([heading(title, subtitle), *rows])


def log_sliders(specs: Mapping[str, tuple], values: Mapping[str, float], *, step: float, style: dict,
                width: str) -> dict[str, w.FloatLogSlider]:
    """One log10 slider per entry of ``specs`` (name -> (label, (lo, hi) exponents, tooltip)),
    at ``values[name]``, keyboard-usable and updating while dragged."""
    return {
        name: w.FloatLogSlider(value=values[name], base=10, min=lo, max=hi, step=step, description=label,
                               readout_format=".3g", continuous_update=True, tooltip=tip, style=style,
                               layout=w.Layout(width=width))
        for name, (label, (lo, hi), tip) in specs.items()
    }


def record_time(times: list[float], start: float) -> float:
    """Append the seconds since ``start`` (``time.perf_counter``) to ``times``, keeping the
    newest 1000; returns them."""
    seconds = time.perf_counter() - start
    times.append(seconds)
    del times[:-1000]
    return seconds


# ---------------------------------------------------------------------------------------------
# Validation of control values
# ---------------------------------------------------------------------------------------------
def is_integer(value) -> bool:
    """True for a Python or NumPy integer, False for bools (which are ints to Python)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def one_of(name: str, value, choices):
    """``value`` if it is one of ``choices``; ``ValueError`` naming the control otherwise."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}; got {value!r}")
    return value


def canonical_choice(name: str, value, choices: tuple, aliases: Mapping[str, str], keep: str = ""):
    """``value`` if it is one of ``choices``, else its alias (lower case, letters and digits
    and the characters in ``keep``); ``ValueError`` naming the control otherwise."""
    if isinstance(value, str):
        if value in choices:
            return value
        key = "".join(ch for ch in value.lower() if ch.isalnum() or ch in keep)
        if key in aliases:
            return aliases[key]
    raise ValueError(f"{name} must be one of {choices}; got {value!r}")


def positive_in_range(name: str, value, lo: float, hi: float, *, rel_tol: float = 0.0,
                      allow_bool: bool = False) -> float:
    """A log-slider's value: a finite number > 0 inside [lo, hi] (widened by ``rel_tol``, the
    slider's rounding); ``ValueError`` naming the control otherwise."""
    if not allow_bool and isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be a positive number; got {value!r}")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a positive number; got {value!r}") from None
    if not math.isfinite(v) or v <= 0:
        raise ValueError(f"{name} must be finite and > 0; got {value!r}")
    if not lo * (1 - rel_tol) <= v <= hi * (1 + rel_tol):
        raise ValueError(f"{name} must lie in the slider's range [{lo:g}, {hi:g}]; got {v:g}")
    return v


# ---------------------------------------------------------------------------------------------
# The explorer object
# ---------------------------------------------------------------------------------------------
class Explorer(BatchedRefresh):
    """Mixin: what every explorer object does the same way.

    The explorer defines ``controls`` (ipywidgets by control name), ``view`` (the widget
    displayed), ``status`` (an HTML line for messages), ``_validate(name, value)`` (returns the
    value to set, or raises ``ValueError`` naming the control) and, when it compiles or fits in
    the background, starts that work with :meth:`_start_warm_thread`.
    """

    controls: dict[str, w.Widget]
    view: w.Widget
    status: w.HTML
    _warm_thread: threading.Thread | None = None

    def _repr_mimebundle_(self, **kwargs):
        return self.view._repr_mimebundle_(**kwargs)

    def set(self, **controls):
        """Set several controls at once (one redraw); returns self.

        Raises ``ValueError`` naming the control for an unknown name or a bad value; nothing is
        changed when any value is bad.
        """
        values = {name: self._validate(name, value) for name, value in controls.items()}
        with self._batch():
            for name, value in values.items():
                self.controls[name].value = value
        return self

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Wait until the background work (compilation, fits) has finished; True when it has."""
        thread = self._warm_thread
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True

    def _use_controls(self, controls: dict[str, w.Widget]) -> None:
        """Own ``controls``; each change of any of them refreshes the view (batched in ``set``)."""
        self.controls = controls
        for widget in controls.values():
            widget.observe(self._on_control, names="value")

    def _snapshot(self, names, extra: Mapping[str, Any]) -> Mapping[str, Any]:
        """Read-only state: the value of each control in ``names``, then ``extra``."""
        out = {name: self.controls[name].value for name in names}
        out.update(extra)
        return types.MappingProxyType(out)

    def _start_warm_thread(self, target, name: str) -> None:
        # Not a daemon: interpreter shutdown waits for it, as killing a thread inside an XLA
        # compilation at exit crashes the process (a segmentation fault).
        self._warm_thread = threading.Thread(target=target, name=name, daemon=False)
        self._warm_thread.start()

    def _report_failure(self, what: str, action, pending: str | None = None) -> None:
        """Run a button's ``action``, showing an exception in the status line (a button
        callback has no other place to report it); ``pending`` is shown while it runs."""
        if pending is not None:
            self.status.value = pending
        try:
            action()
        except Exception as err:
            self.status.value = f"{what} failed: {type(err).__name__}: {err}"
