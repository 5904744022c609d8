"""Pieces every explorer shares: batched refreshes, float32 transport, single-threaded BLAS,
and the canvas JavaScript common to all explorers."""

from __future__ import annotations

import contextlib
import functools
from pathlib import Path

import numpy as np
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
