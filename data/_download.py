"""Checksummed downloads of datasets that bayeskit may not redistribute (pooch).

Files land in ``BAYESKIT_DATA_DIR`` if set, else in the user's cache (``pooch.os_cache``).
A file already present with the right SHA-256 is used as it is, with no network access, so
tests (and offline machines) point ``data_dir`` / ``BAYESKIT_DATA_DIR`` at a local copy.
"""

from __future__ import annotations

import os
from pathlib import Path

import pooch

# Flint et al. (2012) run 1, as preprocessed for the discriminative Kalman filter paper:
# repository burkh4rt/DKF-implementations, folder data/, MIT licence.
FLINT_COMMIT = "2f19111211277065dd2255833fad80bf824d8307"
FLINT_URL = f"https://raw.githubusercontent.com/burkh4rt/DKF-implementations/{FLINT_COMMIT}/data/"
FLINT_REGISTRY = {
    "x.csv": "sha256:9bd0d05589750cbfdaaacb0f848b4ed73ff42e2cf1aa17671e49a22d9ce5006d",
    "z.csv": "sha256:dc93cd54f4188b731e4323307505a2004fcf7347c67561624af04f3a1ce4518f",
}


def data_dir(override: str | os.PathLike | None = None, subdir: str = "") -> Path:
    """Where downloaded files live: ``override``, else ``$BAYESKIT_DATA_DIR``, else the OS cache."""
    if override is not None:
        return Path(override)
    base = os.environ.get("BAYESKIT_DATA_DIR")
    root = Path(base) if base else Path(pooch.os_cache("bayeskit"))
    return root / subdir if subdir else root


def fetch(name: str, *, base_url: str, registry: dict[str, str], folder: Path) -> Path:
    """Path of ``name`` in ``folder``, downloading it from ``base_url`` only if it is missing
    or its checksum differs. Raises ``ValueError`` for a corrupted download (checksum)."""
    known = registry.get(name)
    if known is None:
        raise KeyError(f"unknown file {name!r}; known: {sorted(registry)}")
    local = folder / name
    if local.is_file() and pooch.file_hash(str(local)) == known.split(":", 1)[1]:
        return local  # present and verified: no network, no write (the folder may be read-only)
    folder.mkdir(parents=True, exist_ok=True)
    return Path(pooch.retrieve(base_url + name, known_hash=known, fname=name, path=folder, progressbar=False))
