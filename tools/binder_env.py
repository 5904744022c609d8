"""Build the environment Binder would build, from ``binder/`` alone, in a fresh folder.

A clean copy of the tracked (and untracked-but-not-ignored) files, as Binder clones them; a
virtual environment with the ``binder/runtime.txt`` Python; ``binder/requirements.txt`` (exact
pins) installed; then ``binder/postBuild``, which builds and installs bayeskit's wheel (not an
editable install). Used by ``tests/test_binder.py`` (one notebook) and ``tools/runtime_report.py
--binder`` (the whole series).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def runtime_python() -> str:
    """An interpreter of the Python version ``binder/runtime.txt`` names (PATH, then pyenv)."""
    wanted = (ROOT / "binder" / "runtime.txt").read_text().strip().removeprefix("python-")
    candidates = [shutil.which(f"python{wanted}")]
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates += sorted(str(p / "bin" / "python3") for p in pyenv.glob(f"{wanted}*"))
    for c in candidates:
        if c and subprocess.run([c, "-c", "import sys"], capture_output=True).returncode == 0:
            return c
    if sys.version_info[:2] == tuple(int(v) for v in wanted.split(".")):
        return sys.executable
    raise RuntimeError(f"binder/runtime.txt asks for Python {wanted}, which is not installed here")


def build(base: Path) -> tuple[Path, Path, dict[str, str]]:
    """Build under ``base``; returns (the environment's python, the repository copy, the env vars)."""
    base = Path(base)
    repo = base / "repo"
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
    subprocess.run([runtime_python(), "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    env = {**os.environ, "PATH": f"{venv / 'bin'}:{os.environ['PATH']}", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    env.pop("PYTHONPATH", None)
    subprocess.run([str(py), "-m", "pip", "install", "-q", "-r", "binder/requirements.txt"], cwd=repo, env=env, check=True)
    subprocess.run(["bash", "binder/postBuild"], cwd=repo, env=env, check=True)
    return py, repo, env


#: run by the environment's python: executes one notebook with nbconvert in a kernel of that
#: python, then prints the peak resident memory of its children (the kernel included) in kB
PEAK_MEMORY_RUNNER = (
    "import resource, subprocess, sys\n"
    "r = subprocess.run([sys.executable, '-m', 'jupyter', 'nbconvert', '--to', 'notebook', '--execute',\n"
    "    '--ExecutePreprocessor.timeout=' + sys.argv[3], '--output-dir', sys.argv[2], sys.argv[1]])\n"
    "print('PEAK_KB', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    "sys.exit(r.returncode)\n"
)


def execute_notebook(py, notebook, output_dir, *, cwd, env, timeout: int = 900):
    """Execute ``notebook`` with ``py``; returns (completed process, peak memory in bytes or None)."""
    out = subprocess.run(
        [str(py), "-c", PEAK_MEMORY_RUNNER, str(notebook), str(output_dir), str(timeout)],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout + 120,
    )
    peak = None
    if "PEAK_KB" in out.stdout:
        peak = int(out.stdout.split("PEAK_KB")[-1].split()[0]) * 1024
    return out, peak
