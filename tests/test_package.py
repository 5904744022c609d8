"""Packaging and architecture rules: console command, import boundaries, shipped data."""

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
UI_MODULES = ("ipywidgets", "IPython", "altair", "anywidget", "bayeskit.widgets", "widgets")


def test_core_never_imports_ui_code_statically():
    """bayeskit/ (the maths) must not import UI libraries; widgets import bayeskit, not the reverse."""
    offenders = []
    for path in (ROOT / "bayeskit").rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                if any(name == m or name.startswith(m + ".") for m in UI_MODULES):
                    offenders.append(f"{path.relative_to(ROOT)}: {name}")
    assert not offenders, offenders


def test_importing_the_library_loads_no_ui_module():
    code = (
        "import sys, bayeskit, bayeskit.gp, bayeskit.kernels, bayeskit.plot, bayeskit.data;"
        f"print([m for m in {UI_MODULES!r} if m in sys.modules] + "
        "[m for m in ('matplotlib',) if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_doctor_console_command_reports_float64():
    exe = Path(sys.executable).with_name("bayeskit")
    out = subprocess.run([str(exe), "doctor", "--json"], capture_output=True, text=True, check=True)
    info = json.loads(out.stdout)
    assert info["float64"] is True
    assert info["packages"]["jax"]
    assert info["jax_backend"] in ("cpu", "gpu", "cuda", "rocm", "tpu")
    one_line = subprocess.run([str(exe), "doctor"], capture_output=True, text=True, check=True).stdout
    assert len(one_line.strip().splitlines()) == 1 and "float64 on" in one_line


def test_shipped_data_loads_with_provenance():
    from bayeskit.data import data_path, load_co2

    co2 = load_co2()
    assert co2.X.shape == (521, 1) and co2.y.shape == (521,)
    assert 1958 < co2.X[0, 0] < 1959 and 2001 < co2.X[-1, 0] < 2002
    assert 310 < co2.y.min() < co2.y.max() < 375
    readme = (ROOT / "data" / "README.md").read_text()
    assert "mauna_loa_co2_monthly.csv" in readme and "public domain" in readme
    with pytest.raises(FileNotFoundError, match="no data file"):
        data_path("nope.csv")


def test_toy_gap_leaves_the_gap_empty():
    from bayeskit.data import toy_gap

    d = toy_gap(200, seed=3, gap=(-0.5, 1.0))
    assert d.X.shape == (200, 1)
    assert not ((d.X > -0.5) & (d.X < 1.0)).any()
    with pytest.raises(ValueError, match="gap"):
        toy_gap(gap=(2.0, 1.0))


def test_every_subpackage_is_listed_for_the_wheel():
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {
        ".".join(("bayeskit", *p.parent.relative_to(ROOT / "bayeskit").parts)).rstrip(".")
        for p in (ROOT / "bayeskit").rglob("__init__.py")
    }
    found |= {"bayeskit.widgets", "bayeskit.data"}
    assert found <= listed, f"add to [tool.setuptools] packages in pyproject.toml: {sorted(found - listed)}"
