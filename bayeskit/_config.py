"""JAX configuration for bayeskit, in one place.

Importing bayeskit turns on float64 (``jax_enable_x64``): Gaussian processes, filters and
Bayesian optimisation are compared against float64 references and lose digits in float32.
Neural-network code (VAEs, last layers) asks for float32 explicitly.

It also points JAX's persistent compilation cache at ``~/.cache/bayeskit/jax`` (override with
``BAYESKIT_JAX_CACHE``; set it to an empty string to turn the cache off), so a restarted kernel
reuses compiled programs instead of paying 0.25-0.3 s per shape again.
"""

from __future__ import annotations

import os
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)


def _cache_dir() -> str | None:
    configured = os.environ.get("BAYESKIT_JAX_CACHE")
    if configured is not None:
        return configured or None
    return str(Path.home() / ".cache" / "bayeskit" / "jax")


CACHE_DIR = _cache_dir()
if CACHE_DIR:
    try:
        Path(CACHE_DIR).mkdir(parents=True, exist_ok=True)
        jax.config.update("jax_compilation_cache_dir", CACHE_DIR)
        # Widgets recompile small programs (0.1-0.3 s each); cache those too.
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.05)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    except OSError:  # read-only home: run without the cache rather than fail to import
        CACHE_DIR = None


def fast_mode() -> bool:
    """True when ``BAYESKIT_FAST`` is set to a non-empty value other than ``0``.

    Notebooks and benchmarks read it to shrink iterations, draws and sizes while keeping every
    assertion (this is how CI executes the series).
    """
    return os.environ.get("BAYESKIT_FAST", "") not in ("", "0")
