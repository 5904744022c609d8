"""Shared pytest configuration for the whole suite (kept deliberately small).

* Plots render off-screen (``MPLBACKEND=Agg``) so tests never need a display.
* After the session, the per-notebook runtime files that ``tests/test_notebooks.py`` writes
  (``test-artifacts/notebooks/<name>.runtime.json``, one per notebook so that parallel xdist
  workers never write the same file) are merged into ``test-artifacts/notebooks/runtimes.json``.
  Only the controlling process merges (xdist workers have ``workerinput``), after all workers
  are done.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

os.environ.setdefault("MPLBACKEND", "Agg")

REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_ARTIFACTS = REPO_ROOT / "test-artifacts" / "notebooks"


def pytest_sessionfinish(session, exitstatus):
    if hasattr(session.config, "workerinput"):  # an xdist worker: the controller merges
        return
    parts = sorted(NOTEBOOK_ARTIFACTS.glob("*.runtime.json")) if NOTEBOOK_ARTIFACTS.is_dir() else []
    if not parts:
        return
    merged = {}
    for part in parts:
        try:
            record = json.loads(part.read_text())
        except (OSError, ValueError):
            continue
        merged[record.get("notebook", part.name.removesuffix(".runtime.json"))] = record
    tmp = NOTEBOOK_ARTIFACTS / "runtimes.json.tmp"
    tmp.write_text(json.dumps(merged, indent=2, sort_keys=True) + "\n")
    tmp.replace(NOTEBOOK_ARTIFACTS / "runtimes.json")
