"""Shared helpers for the benchmarks: timing, environment report, result files, RESULT line.

Every benchmark in this folder follows the same contract:

* timings are wall-clock seconds from :func:`time.perf_counter`, after at least one warm-up call
  (so JAX compilation is excluded from them: it is measured and reported separately);
* competing libraries are timed **in one run, interleaved** (A, B, C, A, B, C, ...) so that load
  from other processes on a shared machine hits all of them alike, and both the minimum and the
  median of the repeats are kept (the minimum is the least noisy estimate of the cost, the
  median is what a user typically sees);
* results go to ``benchmarks/results/<name>.json`` (everything, machine-readable) and
  ``benchmarks/results/<name>.md`` (a human-readable table);
* the last line on stdout is ``RESULT {json}`` with the key figures, for scripts and CI logs.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"
REPO_ROOT = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------------------------------------
# timing
# ---------------------------------------------------------------------------------------------
def summarize(times: Sequence[float]) -> dict[str, Any]:
    """``{"min", "median", "max", "repeats", "times"}`` of a list of durations in seconds."""
    times = [float(t) for t in times]
    if not times:
        return {"min": None, "median": None, "max": None, "repeats": 0, "times": []}
    return {
        "min": min(times),
        "median": statistics.median(times),
        "max": max(times),
        "repeats": len(times),
        "times": times,
    }


def time_call(fn: Callable[[], Any], *, repeats: int = 3, warmup: int = 1) -> dict[str, Any]:
    """Time ``fn()`` ``repeats`` times after ``warmup`` untimed calls; see :func:`summarize`.

    ``fn`` must block until its work is done (call ``jax.block_until_ready`` or convert to
    NumPy inside it): JAX dispatches asynchronously.
    """
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return summarize(times)


def time_interleaved(
    fns: dict[str, Callable[[], Any]], *, repeats: int = 3, warmup: int = 1
) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Time several competitors side by side, interleaving their repeats (A, B, A, B, ...).

    Returns ``(timings, last_results)``: ``timings[name]`` as :func:`summarize`, and the
    return value of each function's last call (to check what was computed).
    """
    last: dict[str, Any] = {}
    for _ in range(warmup):
        for name, fn in fns.items():
            last[name] = fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            last[name] = fn()
            times[name].append(time.perf_counter() - t0)
    return {name: summarize(ts) for name, ts in times.items()}, last


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """numerator / denominator, or None when either is missing or the denominator is 0."""
    if numerator is None or denominator is None or denominator == 0:
        return None
    return numerator / denominator


# ---------------------------------------------------------------------------------------------
# environment
# ---------------------------------------------------------------------------------------------
def _version(module: str) -> str | None:
    try:
        from importlib.metadata import version

        return version(module)
    except Exception:
        return None


def environment(packages: Sequence[str] = ()) -> dict[str, Any]:
    """Machine and library versions, and the load average when the run started."""
    env: dict[str, Any] = {
        "timestamp": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
    }
    try:
        env["loadavg_at_start"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        env["loadavg_at_start"] = None
    env["versions"] = {p: _version(p) for p in packages}
    try:
        env["git_commit"] = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10
        ).stdout.strip() or None
    except Exception:
        env["git_commit"] = None
    return env


def loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


# ---------------------------------------------------------------------------------------------
# output
# ---------------------------------------------------------------------------------------------
def fmt(value: Any, digits: int = 3) -> str:
    """Compact text for a table cell: floats to ``digits`` significant digits, None as '-'."""
    if value is None:
        return "-"
    if isinstance(value, float):
        if value != value:  # NaN
            return "nan"
        if value == 0:
            return "0"
        if abs(value) >= 1e5 or abs(value) < 1e-3:
            return f"{value:.{digits - 1}e}"
        return f"{value:.{digits}g}" if abs(value) < 10 ** digits else f"{value:.0f}"
    return str(value)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], digits: int = 3) -> str:
    """A GitHub-flavoured markdown table; cells go through :func:`fmt`."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(fmt(c, digits) if not isinstance(c, str) else c for c in row) + " |")
    return "\n".join(lines)


def _jsonable(obj: Any) -> Any:
    """Convert NumPy/JAX scalars and arrays (and non-finite floats) for ``json.dumps``."""
    try:
        import numpy as np
    except ImportError:  # pragma: no cover
        np = None
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if np is not None and isinstance(obj, np.generic):
        obj = obj.item()
    if np is not None and hasattr(obj, "__array__") and not isinstance(obj, (str, bytes)):
        arr = np.asarray(obj)
        return _jsonable(arr.item() if arr.ndim == 0 else arr.tolist())
    if isinstance(obj, float) and (obj != obj or obj in (float("inf"), float("-inf"))):
        return None
    return obj


def write_results(name: str, payload: dict[str, Any], markdown: str, results_dir: Path | None = None) -> tuple[Path, Path]:
    """Write ``<name>.json`` and ``<name>.md`` into ``benchmarks/results/``; returns both paths."""
    out = Path(results_dir) if results_dir is not None else RESULTS_DIR
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / f"{name}.json", out / f"{name}.md"
    json_path.write_text(json.dumps(_jsonable(payload), indent=2) + "\n")
    md_path.write_text(markdown.rstrip() + "\n")
    return json_path, md_path


def print_result_line(summary: dict[str, Any]) -> None:
    """Print ``RESULT {json}`` on one line; call it last so it is the last line of stdout."""
    sys.stdout.flush()
    print("RESULT " + json.dumps(_jsonable(summary), separators=(",", ":")), flush=True)


def log(*args: Any) -> None:
    """Progress messages go to stderr so stdout ends with the RESULT line."""
    print(*args, file=sys.stderr, flush=True)


def run_python(code_args: Sequence[str], env_overrides: dict[str, str] | None = None, timeout: float = 900) -> dict[str, Any]:
    """Run ``python <code_args>`` in a fresh process and parse its last stdout line as JSON.

    Used for cold-start measurements (a new process has no in-memory JAX compilation cache).
    """
    env = dict(os.environ)
    env.update(env_overrides or {})
    proc = subprocess.run(
        [sys.executable, *code_args], capture_output=True, text=True, env=env, timeout=timeout, cwd=REPO_ROOT
    )
    if proc.returncode != 0:
        raise RuntimeError(f"subprocess {code_args} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    return json.loads(lines[-1])
