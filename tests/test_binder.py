"""Binder simulation: a fresh environment from binder/ alone, bayeskit installed from its wheel.

Builds a virtual environment with the runtime.txt Python, installs binder/requirements.txt
(exact pins), runs binder/postBuild in a clean copy of the tracked files (which builds and
installs bayeskit's wheel, not an editable install), then checks ``import bayeskit.widgets``
from the wheel and executes one notebook in fast mode, measuring the kernel's peak memory
against the 2 GB a free Binder gives.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = "notebooks/01a_gp_basics.ipynb"
BINDER_MEMORY_BYTES = 2 * 1024**3

pytestmark = [pytest.mark.binder, pytest.mark.slow, pytest.mark.xdist_group("binder")]


def _runtime_python() -> str:
    wanted = (ROOT / "binder" / "runtime.txt").read_text().strip().removeprefix("python-")
    candidates = [shutil.which(f"python{wanted}")]
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates += sorted(str(p / "bin" / "python3") for p in pyenv.glob(f"{wanted}*"))
    for c in candidates:
        if c and subprocess.run([c, "-c", "import sys"], capture_output=True).returncode == 0:
            return c
    if sys.version_info[:2] == tuple(int(v) for v in wanted.split(".")):
        return sys.executable
    pytest.fail(f"binder/runtime.txt asks for Python {wanted}, which is not installed here")


@pytest.fixture(scope="module")
def binder_env(tmp_path_factory):
    base = tmp_path_factory.mktemp("binder")
    repo = base / "repo"
    # a clean copy of what git tracks (plus untracked-but-not-ignored files), as Binder clones it
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.split()
    for rel in files:
        src = ROOT / rel
        if src.is_file():
            dst = repo / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
    venv = base / "venv"
    subprocess.run([_runtime_python(), "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    env = {**os.environ, "PATH": f"{venv / 'bin'}:{os.environ['PATH']}", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    env.pop("PYTHONPATH", None)
    subprocess.run([str(py), "-m", "pip", "install", "-q", "-r", "binder/requirements.txt"], cwd=repo, env=env, check=True)
    subprocess.run(["bash", "binder/postBuild"], cwd=repo, env=env, check=True)
    return py, repo, env


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
    runner = (
        "import resource, subprocess, sys\n"
        "r = subprocess.run([sys.executable, '-m', 'jupyter', 'nbconvert', '--to', 'notebook', '--execute',\n"
        f"    '--ExecutePreprocessor.timeout=600', '--output-dir', {str(tmp_path)!r}, {NOTEBOOK!r}])\n"
        "print('PEAK_KB', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
        "sys.exit(r.returncode)\n"
    )
    out = subprocess.run(
        [str(py), "-c", runner], cwd=repo, env={**env, "BAYESKIT_FAST": "1"},
        capture_output=True, text=True, timeout=900,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    peak = int(out.stdout.split("PEAK_KB")[-1].split()[0]) * 1024
    assert peak < BINDER_MEMORY_BYTES, f"peak memory {peak / 1e9:.2f} GB exceeds Binder's 2 GB"
