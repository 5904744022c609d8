#!/usr/bin/env python3
"""Strip outputs from the notebook series, or check that it is stored stripped.

    python tools/strip_notebooks.py            # strip notebooks/*.ipynb in place
    python tools/strip_notebooks.py --check    # exit 1 listing notebooks that have outputs
    python tools/strip_notebooks.py FILE ...   # only these files

Stripping removes code-cell outputs and execution counts, per-cell execution timings
(``metadata.execution``) and saved widget state (``metadata.widgets``). Cell tags and
``jupyter.source_hidden`` (the hidden solution cells) are kept. Only the standard library and
nbformat are used, so the script runs from the project's virtual environment.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"


def problems(nb) -> list[str]:
    """What would be stripped, as short descriptions (empty when the notebook is clean)."""
    found = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            if cell.get("outputs"):
                found.append(f"cell {i}: outputs")
            if cell.get("execution_count") is not None:
                found.append(f"cell {i}: execution count")
        if "execution" in cell.get("metadata", {}):
            found.append(f"cell {i}: execution timing metadata")
    if "widgets" in nb.metadata:
        found.append("saved widget state")
    return found


def strip(nb):
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        cell.get("metadata", {}).pop("execution", None)
    nb.metadata.pop("widgets", None)
    return nb


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=Path, help="notebooks (default: notebooks/*.ipynb)")
    parser.add_argument("--check", action="store_true", help="only check; exit 1 if any has outputs")
    args = parser.parse_args(argv)
    files = args.files or sorted(NOTEBOOK_DIR.glob("*.ipynb"))
    dirty = 0
    for path in files:
        nb = nbformat.read(path, as_version=4)
        found = problems(nb)
        if not found:
            continue
        dirty += 1
        if args.check:
            print(f"{path}: not stripped ({'; '.join(found[:3])}{' ...' if len(found) > 3 else ''})")
        else:
            nbformat.write(strip(nb), path)
            print(f"stripped {path}")
    if args.check and dirty:
        print(f"{dirty} notebook(s) have outputs: run python tools/strip_notebooks.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
