"""Environment report: versions, JAX devices, float64, the JupyterLab widget extension."""

from __future__ import annotations

import importlib.metadata
import json
import platform
import subprocess
import sys
from pathlib import Path

KEY_PACKAGES = (
    "bayeskit", "jax", "jaxlib", "numpy", "scipy", "optax", "flax", "blackjax", "pymc",
    "arviz", "matplotlib", "ipywidgets", "anywidget", "jupyterlab",
)


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _widget_extensions() -> dict[str, bool]:
    """Which JupyterLab front-end extensions the explorers need are installed (prebuilt)."""
    found = {"@jupyter-widgets/jupyterlab-manager": False, "anywidget": False}
    prefixes = {Path(sys.prefix), Path(sys.base_prefix), Path.home() / ".local"}
    for prefix in prefixes:
        root = prefix / "share" / "jupyter" / "labextensions"
        for name in found:
            if (root / name / "package.json").exists():
                found[name] = True
    return found


def report() -> dict:
    """The environment as a dict (see :func:`doctor`)."""
    import jax

    from . import _config

    devices = jax.devices()
    info = {
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "packages": {name: _version(name) for name in KEY_PACKAGES},
        "jax_backend": jax.default_backend(),
        "jax_devices": [str(d) for d in devices],
        "gpu": any(d.platform == "gpu" for d in devices),
        "float64": bool(jax.config.jax_enable_x64),
        "compilation_cache": _config.CACHE_DIR,
        "fast_mode": _config.fast_mode(),
        "widget_extensions": _widget_extensions(),
    }
    return info


def doctor(verbose: bool = False) -> dict:
    """Print a one-line environment report (or a detailed one with ``verbose``) and return it.

    The line names the bayeskit, JAX and Python versions, the device JAX computes on (GPU or
    CPU), whether float64 is on, and whether the JupyterLab widget extensions are installed.
    """
    info = report()
    pk = info["packages"]
    ext = all(info["widget_extensions"].values())
    line = (
        f"bayeskit {pk['bayeskit']} | jax {pk['jax']} on {info['jax_backend'].upper()}"
        f" ({len(info['jax_devices'])} device{'s' if len(info['jax_devices']) != 1 else ''})"
        f" | float64 {'on' if info['float64'] else 'OFF'}"
        f" | python {info['python']}"
        f" | widgets {'ok' if ext else 'extension missing'}"
        + (" | FAST mode" if info["fast_mode"] else "")
    )
    print(line)
    if verbose:
        print(json.dumps(info, indent=2))
    return info


def lab_extension_list() -> str:
    """Output of ``jupyter labextension list`` (for the CLI's verbose report)."""
    try:
        out = subprocess.run(
            [sys.executable, "-m", "jupyter", "labextension", "list"],
            capture_output=True, text=True, timeout=60,
        )
        return out.stdout + out.stderr
    except (OSError, subprocess.SubprocessError) as exc:  # pragma: no cover
        return f"could not run jupyter labextension list: {exc}"
