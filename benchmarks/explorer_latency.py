"""How quickly GPExplorer answers a control change: in the kernel, and in a real browser.

(a) Kernel side, n = 50 points, 400 grid points: the handler time of one slider change (the
    trait change, the jitted posterior, the float32 push inside ``hold_sync``), median / p95 /
    max, with and without posterior samples; the bare compute; and the first interactions that
    change array shapes or the kernel (adding a point that crosses a bucket size, switching to
    each kernel for the first time), which must not pay a JAX recompile.
(b) Browser: JupyterLab + headless Debian chromium (the harness of ``tests/browser/conftest.py``),
    the same explorer; the time from a key press on the lengthscale slider (ArrowRight /
    ArrowLeft, one step) to the end of the canvas paint that shows the resulting update, median
    and max. Both ends are stamped in the page with ``performance.now()``.

Budgets (DESIGN.md, "Widgets"): compute < 20 ms, handler <= 10 ms, slider step to painted plot
<= 50 ms median and <= 100 ms worst. Nothing here is asserted: the numbers are reported.

Usage::

    python benchmarks/explorer_latency.py [--quick]

prints ``RESULT {json}`` as its last line and writes ``benchmarks/results/explorer_latency.json``.
``measure(quick)`` returns the same dict (``benchmarks/gp.py`` imports it); ``measure_filter(quick)``
does the same for FilterExplorer (handler time of a slider step per method and view, and the key
press to painted canvas round trip on its 'missing' slider), under ``"filter_explorer"``;
``measure_bo(quick)`` for BOExplorer (handler time of one BO step, i.e. tell + refit + acquisition
optimisation + drawing + push, in 1-D and 2-D, the first step reported apart, and the click on
"Step" to painted canvas round trip; budget 300 ms), under ``"bo_explorer"``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import platform
import sys
import threading
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent
RESULTS = HERE / "results" / "explorer_latency.json"
HARNESS = REPO_ROOT / "tests" / "browser" / "conftest.py"
N_POINTS = 50
SEED = 0


def _summary(seconds) -> dict:
    ms = np.asarray(seconds, dtype=float) * 1e3
    return {
        "n": int(ms.size),
        "median_ms": round(float(np.median(ms)), 3),
        "p95_ms": round(float(np.percentile(ms, 95)), 3),
        "max_ms": round(float(np.max(ms)), 3),
        "min_ms": round(float(np.min(ms)), 3),
    }


def _data(n: int = N_POINTS):
    rng = np.random.default_rng(SEED)
    x = np.sort(rng.uniform(-4.5, 4.5, n))
    return x, np.sin(x) + 0.3 * np.cos(2.1 * x) + rng.normal(0.0, 0.1, n)


def _slider_values(steps: int) -> list[float]:
    """Log-slider positions one step (0.02 in log10) apart, going up and down around 1."""
    exponents = [0.02 * (k % 20 if (k // 20) % 2 == 0 else 20 - k % 20) - 0.2 for k in range(1, steps + 1)]
    return [10.0**e for e in exponents]


# ---------------------------------------------------------------------------------------------
# (a) kernel side
# ---------------------------------------------------------------------------------------------
def kernel_side(quick: bool) -> dict:
    import jax
    from bayeskit.widgets import GPExplorer
    from bayeskit.widgets._base import single_threaded_blas as _single_threaded_blas
    from bayeskit.widgets.gp_explorer import BUCKETS, KERNEL_NAMES, posterior_on_grid

    steps = 20 if quick else 100
    x, y = _data()
    start = time.perf_counter()
    explorer = GPExplorer(X=x, y=y)
    construct_s = time.perf_counter() - start
    explorer.wait_ready()
    slider = explorer.controls["lengthscale"]

    def slider_steps(count):
        times = []
        for value in _slider_values(count):
            t0 = time.perf_counter()
            slider.value = value
            times.append(time.perf_counter() - t0)
        return times

    slider_steps(5)  # the first calls after compilation are slower (allocations, caches)
    handler = slider_steps(steps)
    explorer.set(samples=True)
    slider_steps(3)
    handler_samples = slider_steps(steps)
    explorer.set(samples=False)

    # bare compute: the jitted posterior and the host copy of its results
    X, Y = explorer._data()
    args = explorer._arguments(X, Y, False)
    compute = []
    with _single_threaded_blas():  # as the handler runs it
        for _ in range(steps):
            t0 = time.perf_counter()
            out = posterior_on_grid(*args, np.float64(0.0), np.float64(1e-8))
            np.asarray(out.mean), np.asarray(out.sd_f), float(out.log_marginal_likelihood)
            compute.append(time.perf_counter() - t0)

    # First interactions that could need a new program: each kernel, then a bucket crossing.
    # A (re)trace in the main thread is what a user would wait for; the warm-up thread's
    # compilations of the next bucket run in the background and are not counted.
    traces = []

    def on_event(name, duration, **kwargs):
        if name == "/jax/core/compile/jaxpr_trace_duration" and threading.current_thread() is main:
            traces.append(duration)

    main = threading.main_thread()
    jax.monitoring.register_event_duration_secs_listener(on_event)
    first_kernel = {}
    for name in (*KERNEL_NAMES[1:], KERNEL_NAMES[0]):
        t0 = time.perf_counter()
        explorer.set(kernel=name)
        first_kernel[name] = round((time.perf_counter() - t0) * 1e3, 3)
    bucket = explorer.state["bucket"]
    next_bucket = BUCKETS[BUCKETS.index(bucket) + 1]
    rng = np.random.default_rng(1)
    while explorer.state["n_points"] < bucket:  # fill the current bucket
        explorer.add_point(float(rng.uniform(-4.5, 4.5)), float(rng.normal()))
    t0 = time.perf_counter()
    explorer.add_point(0.123, 0.5)  # one more: the next bucket size
    crossing_s = time.perf_counter() - t0
    recompiles = len(traces)

    return {
        "n_points": N_POINTS,
        "grid_points": int(explorer.canvas.array("x_grid").size),
        "construct_s": round(construct_s, 3),
        "handler": _summary(handler),
        "handler_with_samples": _summary(handler_samples),
        "compute": _summary(compute),
        "first_kernel_switch_ms": first_kernel,
        "first_kernel_switch_max_ms": max(first_kernel.values()),
        "add_point_crossing_bucket_ms": round(crossing_s * 1e3, 3),
        "bucket_crossed": [bucket, next_bucket],
        "retraces_in_handler_during_interaction": int(recompiles),
    }


# ---------------------------------------------------------------------------------------------
# (b) browser
# ---------------------------------------------------------------------------------------------
def _harness():
    spec = importlib.util.spec_from_file_location("bayeskit_browser_harness", HARNESS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_NOTEBOOK_SOURCE = """\
import numpy as np
from bayeskit.widgets import GPExplorer

rng = np.random.default_rng({seed})
x = np.sort(rng.uniform(-4.5, 4.5, {n}))
y = np.sin(x) + 0.3 * np.cos(2.1 * x) + rng.normal(0.0, 0.1, {n})
explorer = GPExplorer(X=x, y=y)
explorer.wait_ready()
explorer"""

def _install_stamps(event: str) -> str:
    """JS: stamp ``window.__bkStamp`` with performance.now() at every ``event`` (keydown, click)."""
    return f"""() => {{
    window.__bkStamp = null;
    document.addEventListener('{event}', () => {{ window.__bkStamp = performance.now(); }}, {{capture: true}});
}}"""


def _seq_js(canvas: str) -> str:
    """JS: the update number the canvas (a CSS selector) last painted, -1 before the first."""
    return f"() => +(document.querySelector('{canvas}')?.dataset.seq ?? -1)"


def _painted_after_js(canvas: str) -> str:
    """JS (seq) -> ms from the last stamp to the paint of an update newer than seq, else null."""
    return f"""(seq) => {{
    const c = document.querySelector('{canvas}');
    return c && +c.dataset.seq > seq ? +c.dataset.paintedAt - window.__bkStamp : null;
}}"""


@contextlib.contextmanager
def _explorer_page(harness, lab, browser, name: str, source: str, canvas: str, *, timeout_s: float = 60.0,
                   run_timeout_s: float = 180.0):
    """Write a one-cell notebook showing an explorer, open it in a fresh browser context, run
    it and wait for the first paint; yields (page, LabPage). The context is closed on exit."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nbformat.write(nb, lab.root_dir / name)
    context = browser.new_context(viewport={"width": 1500, "height": 1100})
    try:
        page = context.new_page()
        page.set_default_timeout(timeout_s * 1000)
        lab_page = harness.LabPage(page, lab)
        lab_page.open_notebook(name)
        lab_page.run_all(timeout=run_timeout_s)
        page.wait_for_selector(canvas, state="visible")
        page.wait_for_function(f"() => ({_seq_js(canvas)})() >= 1")
        lab_page.assert_no_errors()
        yield page, lab_page
    finally:
        context.close()


_GP_CANVAS = "canvas.bayeskit-gp-canvas"
_FILTER_CANVAS = "canvas.bayeskit-filter-canvas"
_BO_CANVAS = "canvas.bayeskit-bo-canvas"


def browser_side(quick: bool) -> dict:
    harness = _harness()
    reason = harness.browser_unavailable_reason()
    if reason:
        return {"skipped": reason}
    steps = 10 if quick else 40
    latencies = []
    source = _NOTEBOOK_SOURCE.format(seed=SEED, n=N_POINTS)
    with harness.jupyter_lab_server() as lab, harness.chromium_browser() as browser, \
            _explorer_page(harness, lab, browser, "latency.ipynb", source, _GP_CANVAS) as (page, lab_page):
        page.evaluate(_install_stamps("keydown"))
        handle = lab_page.slider_handle("lengthscale")
        handle.scroll_into_view_if_needed()
        handle.focus()
        for k in range(steps + 3):  # 3 warm-up steps, not recorded
            key = "ArrowRight" if (k // 10) % 2 == 0 else "ArrowLeft"
            seq = page.evaluate(_seq_js(_GP_CANVAS))
            handle.press(key)
            latency = page.wait_for_function(_painted_after_js(_GP_CANVAS), arg=seq, timeout=30_000).json_value()
            if k >= 3:
                latencies.append(latency / 1e3)
            page.wait_for_timeout(120)  # a person's key presses are this far apart at least
        lab_page.screenshot("explorer_latency")
    return {"what": "key press on the lengthscale slider -> canvas painted with the new posterior",
            "n_points": N_POINTS, "slider_step": _summary(latencies)}


# ---------------------------------------------------------------------------------------------
# FilterExplorer: (a) kernel side per method and per view, (b) browser
# ---------------------------------------------------------------------------------------------
def filter_kernel_side(quick: bool) -> dict:
    import jax
    from bayeskit.widgets import FilterExplorer
    from bayeskit.widgets.filter_explorer import METHODS, NEURON_CHOICES

    steps = 10 if quick else 40
    start = time.perf_counter()
    explorer = FilterExplorer()
    construct_s = time.perf_counter() - start
    explorer.wait_ready()
    warm_s = time.perf_counter() - start
    traces = []
    main = threading.main_thread()

    def on_event(name, duration, **kwargs):
        if name == "/jax/core/compile/jaxpr_trace_duration" and threading.current_thread() is main:
            traces.append(duration)

    jax.monitoring.register_event_duration_secs_listener(on_event)
    slider = explorer.controls["missing"]
    values = [0.05 * (k % 10) for k in range(steps)]

    def slider_steps(control, vals):
        times = []
        for v in vals:
            t0 = time.perf_counter()
            control.value = v
            times.append(time.perf_counter() - t0)
        return times

    handler = {}
    for method, estimate in [(m, "filter") for m in METHODS] + [("KF", "smoother")]:
        explorer.set(method=method, estimate=estimate, nonlinearity=0.3)
        slider_steps(slider, values[:3])
        handler[f"{method} {estimate}"] = _summary(slider_steps(slider, values))
    explorer.set(method="KF", estimate="filter")
    noise = explorer.controls["observation_noise"]  # regenerates the data too
    handler["KF filter, obs noise slider (data regenerated)"] = _summary(
        slider_steps(noise, [10 ** (-0.6 + 0.05 * (k % 10)) for k in range(steps)]))
    explorer.set(view="decoding")
    neurons = explorer.controls["n_neurons"]
    cached = slider_steps(neurons, [NEURON_CHOICES[k % len(NEURON_CHOICES)] for k in range(steps)])
    explorer._decoding_cache.clear()  # what a neuron count costs before the background fit reached it
    uncached = slider_steps(neurons, list(NEURON_CHOICES[1:5]))  # the current N is NEURON_CHOICES[0]
    jax.monitoring.unregister_event_duration_listener(on_event)
    return {
        "T": 200,
        "construct_s": round(construct_s, 3),
        "background_warm_up_s": round(warm_s, 3),
        "handler_missing_slider": handler,
        "decoding_neurons_cached": _summary(cached),
        "decoding_neurons_fit_now": _summary(uncached),
        "retraces_in_handler_during_interaction": len(traces),
    }


_FILTER_NOTEBOOK = """\
from bayeskit.widgets import FilterExplorer

explorer = FilterExplorer(method={method!r})
explorer.wait_ready()
explorer"""


def filter_browser_side(quick: bool) -> dict:
    harness = _harness()
    reason = harness.browser_unavailable_reason()
    if reason:
        return {"skipped": reason}
    steps = 10 if quick else 30
    out = {"what": "key press on the 'missing' slider -> canvas painted with the new estimate"}
    seq_js, painted_after = _seq_js(_FILTER_CANVAS), _painted_after_js(_FILTER_CANVAS)
    with harness.jupyter_lab_server() as lab, harness.chromium_browser() as browser:
        for method in ("KF", "PF"):
            latencies = []
            with _explorer_page(harness, lab, browser, f"filter_{method}.ipynb", _FILTER_NOTEBOOK.format(method=method),
                                _FILTER_CANVAS, timeout_s=120, run_timeout_s=300) as (page, lab_page):
                page.evaluate(_install_stamps("keydown"))
                handle = lab_page.slider_handle("missing")
                handle.scroll_into_view_if_needed()
                handle.focus()
                for k in range(steps + 3):
                    key = "ArrowRight" if (k // 5) % 2 == 0 else "ArrowLeft"
                    seq = page.evaluate(seq_js)
                    handle.press(key)
                    latency = page.wait_for_function(painted_after, arg=seq, timeout=30_000).json_value()
                    if k >= 3:
                        latencies.append(latency / 1e3)
                    page.wait_for_timeout(120)
                canvas = page.locator(_FILTER_CANVAS)
                canvas.screenshot(path=str(harness._artifacts() / f"filter_explorer_{method}.png"))
                if method == "KF":  # the decoding view, for the record
                    seq = page.evaluate(seq_js)
                    page.get_by_role("button", name="decoding (DKF)").click()
                    page.wait_for_function(f"() => ({seq_js})() > {seq}", timeout=120_000)
                    canvas.screenshot(path=str(harness._artifacts() / "filter_explorer_decoding.png"))
            out[f"slider_step_{method}"] = _summary(latencies)
    return out


def measure_filter(quick: bool = False) -> dict:
    """FilterExplorer latencies: handler per method and view, and the browser round trip."""
    result = {"kernel_side": filter_kernel_side(quick)}
    try:
        result["browser"] = filter_browser_side(quick)
    except Exception as err:
        result["browser"] = {"error": f"{type(err).__name__}: {err}"[:2000]}
    return result


# ---------------------------------------------------------------------------------------------
# BOExplorer: (a) handler time of a BO step in 1-D and 2-D, (b) click on Step -> painted canvas
# ---------------------------------------------------------------------------------------------
BO_PROBLEMS = ("Forrester (1-D)", "Branin (2-D)")


def bo_kernel_side(quick: bool) -> dict:
    """Per problem: construction, background warm-up, then Step after Step (default log_ei).

    The first step after construction is reported on its own (``first_step_ms``); the summary
    covers the rest, which cross the loop's bucket size 16 -> 32 (in 2-D) and must not retrace
    in the main thread (``retraces_in_handler``: jaxpr traces counted by jax.monitoring there).
    ``breakdown_median_ms``: the loop's ask() (ML-II refit + acquisition optimisation), the
    drawn surface, and building + pushing the arrays.
    """
    import jax
    from bayeskit.widgets.bo_explorer import BOExplorer

    steps = 12 if quick else 40
    out = {}
    main = threading.main_thread()
    traces = []

    def on_event(name, duration, **kwargs):
        if name == "/jax/core/compile/jaxpr_trace_duration" and threading.current_thread() is main:
            traces.append(duration)

    jax.monitoring.register_event_duration_secs_listener(on_event)
    try:
        for problem in BO_PROBLEMS:
            t0 = time.perf_counter()
            explorer = BOExplorer(problem=problem)
            construct_s = time.perf_counter() - t0
            explorer.wait_ready()
            warm_s = time.perf_counter() - t0
            explorer.step()
            first_ms = explorer.handler_times[-1] * 1e3
            before = len(traces)
            n_steps = min(steps, 64 - explorer.state["n_evaluations"] - 1)
            explorer.step(n_steps)
            times = explorer.handler_times[-n_steps:]
            parts = explorer.timings[-n_steps:]
            out[problem] = {
                "acquisition": explorer.state["acquisition"],
                "construct_s": round(construct_s, 3),
                "background_warm_up_s": round(warm_s, 3),
                "first_step_ms": round(first_ms, 3),
                "step": _summary(times),
                "breakdown_median_ms": {k: round(float(np.median([p[k] for p in parts])) * 1e3, 3)
                                        for k in ("ask_s", "surface_s", "push_s")},
                "n_evaluations_at_end": explorer.state["n_evaluations"],
                "retraces_in_handler": len(traces) - before,
                "final_log10_regret": round(float(np.log10(max(explorer.state["regret"], 1e-12))), 3),
            }
    finally:
        jax.monitoring.unregister_event_duration_listener(on_event)
    return out


_BO_NOTEBOOK = """\
from bayeskit.widgets.bo_explorer import BOExplorer

explorer = BOExplorer(problem={problem!r})
explorer.wait_ready()
explorer"""


def bo_browser_side(quick: bool) -> dict:
    harness = _harness()
    reason = harness.browser_unavailable_reason()
    if reason:
        return {"skipped": reason}
    import re

    steps = 6 if quick else 20
    out = {"what": "click on Step -> canvas painted with the refitted GP, new acquisition and next point"}
    seq_js, painted_after = _seq_js(_BO_CANVAS), _painted_after_js(_BO_CANVAS)
    with harness.jupyter_lab_server() as lab, harness.chromium_browser() as browser:
        for k, problem in enumerate(BO_PROBLEMS):
            latencies = []
            with _explorer_page(harness, lab, browser, f"bo_{k}.ipynb", _BO_NOTEBOOK.format(problem=problem),
                                _BO_CANVAS, timeout_s=120, run_timeout_s=300) as (page, _):
                page.evaluate(_install_stamps("click"))
                button = page.get_by_role("button", name=re.compile(r"\bStep$"))
                button.scroll_into_view_if_needed()
                for i in range(steps + 2):  # 2 warm-up steps, not recorded
                    seq = page.evaluate(seq_js)
                    button.click()
                    latency = page.wait_for_function(painted_after, arg=seq, timeout=60_000).json_value()
                    if i >= 2:
                        latencies.append(latency / 1e3)
                    # the buttons are disabled while a step runs: wait until Step is usable again
                    page.wait_for_function("() => [...document.querySelectorAll('button')].some("
                                           "b => /Step$/.test(b.textContent) && !b.disabled)")
                    page.wait_for_timeout(150)
                page.locator(_BO_CANVAS).screenshot(path=str(harness._artifacts() / f"bo_explorer_latency_{k}.png"))
            out[problem] = {"click_to_paint": _summary(latencies)}
    return out


def measure_bo(quick: bool = False) -> dict:
    """BOExplorer latencies: the handler time of a Step (1-D, 2-D) and the browser round trip."""
    result = {"budget_ms": 300, "kernel_side": bo_kernel_side(quick)}
    try:
        result["browser"] = bo_browser_side(quick)
    except Exception as err:
        result["browser"] = {"error": f"{type(err).__name__}: {err}"[:2000]}
    return result


# ---------------------------------------------------------------------------------------------
def measure(quick: bool = False) -> dict:
    """Run (a) and (b); returns a JSON-serialisable dict (see the module docstring)."""
    result = {
        "benchmark": "explorer_latency",
        "quick": bool(quick),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform(),
                    "load_average_1min": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None},
        "kernel_side": kernel_side(quick),
    }
    try:
        result["browser"] = browser_side(quick)
    except Exception as err:  # report, so the kernel-side numbers still land in the file
        result["browser"] = {"error": f"{type(err).__name__}: {err}"[:2000]}
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps (CI smoke run)")
    args = parser.parse_args(argv)
    result = measure(quick=args.quick)
    result["filter_explorer"] = measure_filter(quick=args.quick)
    result["bo_explorer"] = measure_bo(quick=args.quick)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(REPO_ROOT)}", file=sys.stderr)
    print("RESULT " + json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
