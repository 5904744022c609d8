"""Saving and loading a trained VAE without pickle.

One ``.npz`` file (NumPy's zip of ``.npy`` arrays): each parameter under its path in the
module (``"encoder/layers/0/kernel"``), and the constructor arguments as a JSON string in the
entry ``"__config__"`` (a NumPy unicode array, which needs no pickle). :func:`load` reads it
with ``allow_pickle=False``, rebuilds the module from the config and checks every parameter's
shape and dtype, so a file cannot execute code and a mismatched file fails loudly.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from flax import nnx

from .model import VAE

__all__ = ["load", "save"]

FORMAT = "bayeskit.vae/1"
_CONFIG_KEY = "__config__"


def _flat_params(vae: VAE) -> dict[str, np.ndarray]:
    _, state = nnx.split(vae)
    return {"/".join(str(p) for p in path): np.asarray(v[...]) for path, v in nnx.to_flat_state(state)}


def save(vae: VAE, path: str | os.PathLike) -> Path:
    """Write ``vae`` to ``path`` (``.npz`` is appended if missing); returns the path written."""
    if not isinstance(vae, VAE):
        raise TypeError(f"vae must be a bayeskit.vae.VAE; got {type(vae).__name__}")
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    arrays = _flat_params(vae)
    if _CONFIG_KEY in arrays:  # pragma: no cover - parameter paths never start with "__"
        raise RuntimeError("a parameter is named like the config entry")
    config = {"format": FORMAT, "config": vae.config}
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        np.savez(f, **arrays, **{_CONFIG_KEY: np.array(json.dumps(config))})
    return path


def load(path: str | os.PathLike) -> VAE:
    """Rebuild a VAE saved by :func:`save`. Raises ``ValueError`` for a file that is not one."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no VAE checkpoint at {path}")
    try:
        data = np.load(path, allow_pickle=False)
    except Exception as err:  # not a zip / npz
        raise ValueError(f"{path} is not a bayeskit VAE checkpoint (.npz): {err}") from None
    with data:
        if _CONFIG_KEY not in data.files:
            raise ValueError(f"{path} has no {_CONFIG_KEY!r} entry: not a bayeskit VAE checkpoint")
        meta = json.loads(str(data[_CONFIG_KEY]))
        if meta.get("format") != FORMAT:
            raise ValueError(f"{path}: unknown checkpoint format {meta.get('format')!r} (expected {FORMAT!r})")
        config = dict(meta["config"])
        config["hidden"] = tuple(config["hidden"])
        vae = VAE(**config, rngs=nnx.Rngs(0))
        graphdef, state = nnx.split(vae)
        expected = _flat_params(vae)
        stored = {name: data[name] for name in data.files if name != _CONFIG_KEY}
    missing, extra = sorted(set(expected) - set(stored)), sorted(set(stored) - set(expected))
    if missing or extra:
        raise ValueError(f"{path} does not match its config: missing {missing}, unexpected {extra}")
    flat = nnx.to_flat_state(state)
    for p, variable in flat:
        name = "/".join(str(x) for x in p)
        value = stored[name]
        if value.shape != expected[name].shape or value.dtype != expected[name].dtype:
            raise ValueError(
                f"{path}: parameter {name} has shape {value.shape} and dtype {value.dtype}; "
                f"expected {expected[name].shape} and {expected[name].dtype}"
            )
        variable[...] = value
    nnx.update(vae, nnx.from_flat_state(flat))
    return vae
