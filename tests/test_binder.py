"""Binder simulation: a fresh environment from binder/ alone, bayeskit installed from its wheel.

Builds the environment with ``tools/binder_env.py`` (the runtime.txt Python, binder/requirements.txt
with exact pins, binder/postBuild in a clean copy of the tracked files, which builds and installs
bayeskit's wheel, not an editable install), then checks ``import bayeskit.widgets``
from the wheel and executes one notebook in fast mode, measuring the kernel's peak memory
against the 2 GB a free Binder gives.
"""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import binder_env as binder  # noqa: E402

NOTEBOOK = "notebooks/01a_gp_basics.ipynb"
BINDER_MEMORY_BYTES = 2 * 1024**3

pytestmark = [pytest.mark.binder, pytest.mark.slow, pytest.mark.xdist_group("binder")]


@pytest.fixture(scope="module")
def binder_env(tmp_path_factory):
    try:
        return binder.build(tmp_path_factory.mktemp("binder"))
    except RuntimeError as err:  # the runtime.txt Python is missing
        pytest.fail(str(err))


def test_widgets_import_from_the_installed_wheel(binder_env, tmp_path):
    py, _, env = binder_env
    code = (
        "import bayeskit, bayeskit.widgets, bayeskit.data, os;"
        "print(bayeskit.widgets.__file__); print(bayeskit.data.load_co2().X.shape)"
    )
    out = subprocess.run([str(py), "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, check=True)
    lines = out.stdout.split("\n")
    assert "site-packages/bayeskit/widgets/__init__.py" in lines[0], out.stdout
    assert lines[1] == "(521, 1)"


def test_a_notebook_executes_within_binder_memory(binder_env, tmp_path):
    py, repo, env = binder_env
    out, peak = binder.execute_notebook(py, NOTEBOOK, tmp_path, cwd=repo, env={**env, "BAYESKIT_FAST": "1"}, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert peak < BINDER_MEMORY_BYTES, f"peak memory {peak / 1e9:.2f} GB exceeds Binder's 2 GB"


def _imported_modules(source: str) -> set[str]:
    import ast

    names = set()
    try:
        tree = ast.parse(source)
    except SyntaxError:  # cell magics and shell escapes
        return names
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.binder
def test_every_package_a_notebook_imports_is_pinned_for_binder():
    """A notebook importing a package Binder does not install fails there (and nowhere else)."""
    import importlib.metadata as md
    import re

    import nbformat

    pinned = {re.sub(r"[-_.]+", "-", line.split("==")[0]).lower()
              for line in (ROOT / "binder" / "requirements.txt").read_text().splitlines()
              if line and not line.startswith("#")}
    owners = md.packages_distributions()
    missing = {}
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            for module in _imported_modules(cell.source):
                if module in sys.stdlib_module_names or module == "bayeskit":
                    continue
                dists = {re.sub(r"[-_.]+", "-", d).lower() for d in owners.get(module, [module])}
                if not dists & pinned:
                    missing.setdefault(module, []).append(path.name)
    assert not missing, f"imported by notebooks but not in binder/requirements.txt: {missing}"
