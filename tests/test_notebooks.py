"""The notebook series is tested like code.

* ``test_notebook_executes[<name>]`` (marked ``notebook``): runs ``notebooks/<name>.ipynb`` top to
  bottom in a fresh kernel of *this* interpreter, in fast mode (``BAYESKIT_FAST=1`` unless the
  caller set ``BAYESKIT_FAST`` explicitly, e.g. ``BAYESKIT_FAST=0`` to time the full mode), and
  fails on any cell error, including a failed assertion. The executed notebook is written to
  ``test-artifacts/notebooks/<name>.ipynb`` (also when it fails, to see where) and its wall time
  to ``test-artifacts/notebooks/<name>.runtime.json`` (``tests/conftest.py`` merges these into
  ``runtimes.json`` at the end of the session).
* ``test_notebook_is_stored_clean[<name>]``: the stored file has no outputs, and has the
  series' standard header (Binder badge, runtime line, ``bayeskit.doctor()`` and
  ``FAST = bayeskit.fast_mode()`` cells) and close (Exercises with hidden solution cells,
  References, a versions cell).
* ``test_doctor_prints_one_line_with_float64_on``: the environment report every notebook starts
  with.

Notebooks are collected when the tests are collected, so notebooks added to ``notebooks/`` are
picked up without editing this file. The kernel is started from a temporary kernelspec that
points at ``sys.executable -m ipykernel_launcher``: no user or system kernelspec is consulted.

Run: ``BAYESKIT_FAST=1 .venv/bin/pytest tests/test_notebooks.py -n 2``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
from runtime_report import stated_runtimes  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = REPO_ROOT / "notebooks"
ARTIFACTS = REPO_ROOT / "test-artifacts" / "notebooks"
NOTEBOOK_TIMEOUT_S = 600
KERNEL_NAME = "bayeskit-notebook-test"
BINDER_PREFIX = "https://mybinder.org/v2/gh/bayeskit/bayeskit/main?urlpath=lab/tree/notebooks/"

NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
IDS = [p.stem for p in NOTEBOOKS]


def _is_index(path: Path) -> bool:
    return path.stem.startswith("00_")


# ---------------------------------------------------------------------------------------------
# Execution
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def kernel_spec_dir(tmp_path_factory) -> Path:
    """A kernelspec directory holding one kernel: this interpreter, with fast mode set."""
    root = tmp_path_factory.mktemp("kernels")
    spec = root / KERNEL_NAME
    spec.mkdir()
    env = {"BAYESKIT_FAST": os.environ.get("BAYESKIT_FAST", "1")}
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": f"bayeskit test ({sys.executable})",
        "language": "python",
        "env": env,
        "metadata": {"debugger": False},
    }))
    return root


def _kernel_manager(kernel_spec_dir: Path):
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    ksm = KernelSpecManager(kernel_dirs=[str(kernel_spec_dir)], ensure_native_kernel=False)
    return KernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=ksm)


def _kernel_env() -> dict[str, str]:
    env = dict(os.environ)
    # The test session renders plots with Agg; notebooks should use the inline backend so the
    # executed artifacts show their figures.
    env.pop("MPLBACKEND", None)
    env["BAYESKIT_FAST"] = os.environ.get("BAYESKIT_FAST", "1")
    env.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    return env


@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_executes(path: Path, kernel_spec_dir: Path):
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    nb = nbformat.read(path, as_version=4)
    deadline = time.monotonic() + NOTEBOOK_TIMEOUT_S
    client = NotebookClient(
        nb,
        km=_kernel_manager(kernel_spec_dir),
        # one budget for the whole notebook: each cell gets what is left of it
        timeout_func=lambda cell: max(1, int(deadline - time.monotonic())),
        allow_errors=False,
        record_timing=True,
        resources={"metadata": {"path": str(NOTEBOOK_DIR)}},
    )
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    status, error = "ok", None
    start = time.perf_counter()
    try:
        client.execute(env=_kernel_env())
    except (CellExecutionError, CellTimeoutError, DeadKernelError) as exc:
        status, error = type(exc).__name__, exc
    seconds = time.perf_counter() - start
    nbformat.write(nb, ARTIFACTS / path.name)
    (ARTIFACTS / f"{path.stem}.runtime.json").write_text(json.dumps({
        "notebook": path.name,
        "seconds": round(seconds, 2),
        "fast_mode": _kernel_env()["BAYESKIT_FAST"] not in ("", "0"),
        "status": status,
    }) + "\n")
    if error is not None:
        pytest.fail(f"{path.name} failed after {seconds:.1f} s ({status}); executed copy in "
                    f"{ARTIFACTS / path.name}\n{error}", pytrace=False)


# ---------------------------------------------------------------------------------------------
# Stored form: stripped, standard header and close
# ---------------------------------------------------------------------------------------------
def _source(cell) -> str:
    return cell.source if isinstance(cell.source, str) else "".join(cell.source)


def _headings(nb) -> list[str]:
    found = []
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            found += [m.strip() for m in re.findall(r"^#+\s*(.+)$", _source(cell), flags=re.M)]
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_is_stored_clean(path: Path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.nbformat == 4, f"{path.name}: nbformat {nb.nbformat}, expected 4"
    kernelspec = nb.metadata.get("kernelspec", {})
    assert kernelspec.get("name") == "python3", f"{path.name}: kernelspec should be python3; got {kernelspec}"

    # stored stripped
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count is not None)]
    assert not dirty, f"{path.name}: cells {dirty} have outputs or execution counts; run tools/strip_notebooks.py"
    assert re.match(r"^\d\d[a-z]?_\w+\.ipynb$", path.name), (
        f"{path.name}: notebook names start with their number, e.g. 01a_gp_basics.ipynb")

    # header: title, what you will learn, prerequisites, runtime, Binder badge, doctor + FAST
    head = nb.cells[:8]
    head_md = "\n".join(_source(c) for c in head if c.cell_type == "markdown")
    head_code = "\n".join(_source(c) for c in head if c.cell_type == "code")
    assert re.search(r"^#\s+\S", head_md, flags=re.M), f"{path.name}: no title in the first cells"
    assert "what you will learn" in head_md.lower(), f"{path.name}: no 'What you will learn' in the header"
    assert "prerequisites" in head_md.lower(), f"{path.name}: no 'Prerequisites' in the header"
    # "Runtime: about N s ..." (markdown emphasis around the word is fine)
    assert re.search(r"Runtime\W{0,3}:\W{0,3}about\s+\d", head_md), (
        f"{path.name}: no 'Runtime: about N s' line in the header")
    stated = stated_runtimes(path)  # what tools/runtime_report.py measures against
    assert stated["full"] and stated["fast"], (
        f"{path.name}: the Runtime line must state both modes, as 'about N s on a 2-core CPU (full mode), "
        f"M s in fast mode'; read {stated}")
    badge = f"[![Binder](https://mybinder.org/badge_logo.svg)]({BINDER_PREFIX}{path.name})"
    assert badge in head_md, f"{path.name}: no Binder badge pointing at this notebook ({badge})"
    assert "bayeskit.doctor()" in head_code, f"{path.name}: no bayeskit.doctor() cell in the header"
    assert re.search(r"^FAST\s*=\s*bayeskit\.fast_mode\(\)", head_code, flags=re.M), (
        f"{path.name}: no 'FAST = bayeskit.fast_mode()' in the header")

    # close: Exercises (with hidden, asserting solution cells), References, versions cell
    headings = [h.lower() for h in _headings(nb)]
    assert any(h.startswith("references") for h in headings), f"{path.name}: no References section"
    if not _is_index(path):
        assert any(h.startswith("exercises") for h in headings), f"{path.name}: no Exercises section"
        solutions = [c for c in nb.cells if "solution" in c.metadata.get("tags", [])]
        assert len(solutions) >= 2, f"{path.name}: expected >= 2 solution cells, found {len(solutions)}"
        for cell in solutions:
            assert cell.cell_type == "code", f"{path.name}: a solution cell must be code"
            assert cell.metadata.get("jupyter", {}).get("source_hidden") is True, (
                f"{path.name}: solution cells must be hidden (metadata jupyter.source_hidden)")
            assert "assert" in _source(cell), f"{path.name}: every solution cell asserts its result"
    last_code = [c for c in nb.cells if c.cell_type == "code"][-1]
    assert "bayeskit.doctor()" in _source(last_code), f"{path.name}: the last code cell should report versions"


def test_series_is_not_empty():
    assert NOTEBOOKS, f"no notebooks found in {NOTEBOOK_DIR}"
    assert (NOTEBOOK_DIR / "00_index.ipynb").exists(), "notebooks/00_index.ipynb (the map of the series) is missing"


def test_index_links_resolve():
    """Every relative notebook link in the index points at a file that exists (or is marked coming)."""
    index = NOTEBOOK_DIR / "00_index.ipynb"
    if not index.exists():
        pytest.skip("no index yet")
    nb = nbformat.read(index, as_version=4)
    text = "\n".join(_source(c) for c in nb.cells if c.cell_type == "markdown")
    links = re.findall(r"\]\(([^)\s]+\.ipynb)\)", text)
    assert links, "the index links no notebook"
    missing = [link for link in links if not link.startswith("http") and not (NOTEBOOK_DIR / link).exists()]
    assert not missing, f"00_index.ipynb links notebooks that do not exist: {missing}"


def test_index_lists_every_notebook_and_the_notation_page():
    """The index is the map of the whole series: every notebook appears in it, once at least."""
    nb = nbformat.read(NOTEBOOK_DIR / "00_index.ipynb", as_version=4)
    text = "\n".join(_source(c) for c in nb.cells if c.cell_type == "markdown")
    unlisted = [p.name for p in NOTEBOOKS if not _is_index(p) and f"]({p.name})" not in text]
    assert not unlisted, f"00_index.ipynb does not link {unlisted}"
    assert "](notation.md)" in text, "00_index.ipynb should link the notation page (notation.md)"
    assert (NOTEBOOK_DIR / "notation.md").exists()


def test_index_runtime_table_matches_each_notebooks_header():
    """The index's Runtimes table says what each notebook's own Runtime line says."""
    nb = nbformat.read(NOTEBOOK_DIR / "00_index.ipynb", as_version=4)
    text = "\n".join(_source(c) for c in nb.cells if c.cell_type == "markdown")
    table = dict(re.findall(r"^\| \[\w+\]\((\S+\.ipynb)\) \| (about \d+ s \| \d+ s) \|$", text, flags=re.M))
    for path in NOTEBOOKS:
        if _is_index(path):
            continue
        stated = stated_runtimes(path)
        expected = f"about {int(stated['full'])} s | {int(stated['fast'])} s"
        assert table.get(path.name) == expected, (
            f"00_index.ipynb's Runtimes row for {path.name} is {table.get(path.name)!r}; its header says {expected!r} "
            "(python tools/runtime_report.py --write-index rewrites the table)")


def test_doctor_prints_one_line_with_float64_on():
    code = (
        "import contextlib, io, json, bayeskit\n"
        "buf = io.StringIO()\n"
        "with contextlib.redirect_stdout(buf):\n"
        "    info = bayeskit.doctor()\n"
        "print(json.dumps({'out': buf.getvalue(), 'float64': info['float64']}))\n"
    )
    env = dict(os.environ)
    env.pop("BAYESKIT_FAST", None)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    lines = result["out"].splitlines()
    assert len(lines) == 1, f"doctor() printed {len(lines)} lines: {result['out']!r}"
    assert "float64 on" in lines[0], lines[0]
    assert result["float64"] is True
    assert "FAST mode" not in lines[0]
