#!/usr/bin/env python
"""Exact GP regression, ML-II fit + predict: bayeskit against scikit-learn (and tinygp / GPJax).

    .venv/bin/python benchmarks/gp.py            # n = 500, 1000, 2000, 4000 (several minutes)
    .venv/bin/python benchmarks/gp.py --quick    # n = 500, 1000 (well under 2 minutes)

The problem (identical for every library):

* inputs X ~ U(-3, 3)^2 (n points), targets y = sin(x1) cos(x2) + N(0, 0.1^2); 1000 test points;
* kernel ``variance * exp(-|x - x'|^2 / (2 lengthscale^2))`` plus fitted white noise:
  scikit-learn ``ConstantKernel * RBF + WhiteKernel`` with ``alpha=0`` (so no extra diagonal),
  bayeskit ``GPRegressor(RBF(lengthscale, variance), noise, optimize=True)``, tinygp
  ``variance * ExpSquared(scale=lengthscale)`` with ``diag=noise``;
* ML-II over the log-hyperparameters with scipy's L-BFGS-B at its default tolerances (what
  scikit-learn's ``_constrained_optimization`` calls), the same starting point
  (lengthscale 1, variance 1, noise 0.1), the same box (1e-5, 1e5) for all three, and the same
  restart points when restarts are used (drawn as bayeskit draws them and handed to the others);
* predict: posterior mean and standard deviation at the 1000 test points.

Timings exclude JAX compilation (each library is warmed up at each n first). Compilation is
measured separately in a fresh process with the persistent compilation cache off
(``BAYESKIT_JAX_CACHE=``): the tracing + lowering + XLA compile time JAX reports (through
``jax.monitoring``) while fit + predict's programs are first run, and reported both on its own and added to the fit time in one column. Repeats of the three
libraries are interleaved so load from other processes hits them alike; the tables show the
median (and the JSON also the minimum) of the repeats.

Writes ``benchmarks/results/gp.json`` and ``benchmarks/results/gp.md``; the last stdout line is
``RESULT {json}`` with the key figures.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
from _common import (  # noqa: E402
    environment,
    fmt,
    loadavg,
    log,
    markdown_table,
    print_result_line,
    ratio,
    run_python,
    time_interleaved,
    write_results,
)

FULL_SIZES = (500, 1000, 2000, 4000)
QUICK_SIZES = (500, 1000)
N_TEST = 1000
BOUNDS = (1e-5, 1e5)
START = {"lengthscale": 1.0, "variance": 1.0, "noise": 0.1}
NOISE_STD = 0.1
SEED = 0


# ---------------------------------------------------------------------------------------------
# problem
# ---------------------------------------------------------------------------------------------
def make_problem(n: int, seed: int = SEED, n_test: int = N_TEST):
    """X (n, 2), y (n,), X_test (n_test, 2): a smooth 2-D function plus Gaussian noise."""
    rng = np.random.default_rng(seed + n)
    X = rng.uniform(-3.0, 3.0, (n, 2))
    y = np.sin(X[:, 0]) * np.cos(X[:, 1]) + NOISE_STD * rng.normal(size=n)
    X_test = rng.uniform(-3.0, 3.0, (n_test, 2))
    return X, y, X_test


def start_points(n_restarts: int, seed: int = SEED) -> list[np.ndarray]:
    """Log-hyperparameter starts in bayeskit's order (lengthscale, variance, noise).

    The first is the given start; the others are drawn exactly as ``bayeskit.gp.fit_ml2`` draws
    its restarts (``numpy.random.default_rng(seed)``, log-uniform in the box), so every library
    gets the same starting points.
    """
    lo, hi = np.log(BOUNDS[0]), np.log(BOUNDS[1])
    theta0 = np.log([START["lengthscale"], START["variance"], START["noise"]])
    rng = np.random.default_rng(seed)
    return [theta0] + [rng.uniform([lo] * 3, [hi] * 3) for _ in range(n_restarts)]


# scikit-learn orders its theta as (ConstantKernel, RBF, WhiteKernel) = (variance, lengthscale, noise)
_TO_SKLEARN = np.array([1, 0, 2])


# ---------------------------------------------------------------------------------------------
# scikit-learn
# ---------------------------------------------------------------------------------------------
class _SklearnLBFGSB:
    """scikit-learn's own optimizer (``_constrained_optimization`` with "fmin_l_bfgs_b"):
    ``scipy.optimize.minimize(obj, x0, method="L-BFGS-B", jac=True, bounds=bounds)`` with
    default tolerances, plus an evaluation counter and (optionally) fixed start points."""

    def __init__(self, starts=None):
        self.starts = starts
        self.calls = 0
        self.evaluations = 0

    def __call__(self, obj_func, initial_theta, bounds):
        import scipy.optimize

        x0 = initial_theta if self.starts is None else self.starts[self.calls]
        self.calls += 1

        def counted(theta):
            self.evaluations += 1
            return obj_func(theta)

        res = scipy.optimize.minimize(counted, x0, method="L-BFGS-B", jac=True, bounds=bounds)
        return res.x, res.fun


def sklearn_fit(X, y, n_restarts: int = 0):
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

    kernel = ConstantKernel(START["variance"], BOUNDS) * RBF(START["lengthscale"], BOUNDS) + WhiteKernel(
        START["noise"], BOUNDS
    )
    starts = [s[_TO_SKLEARN] for s in start_points(n_restarts)] if n_restarts else None
    opt = _SklearnLBFGSB(starts)
    gpr = GaussianProcessRegressor(kernel, alpha=0.0, optimizer=opt, n_restarts_optimizer=n_restarts, random_state=SEED)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning about bounds at random restarts
        gpr.fit(X, y)
    theta = np.exp(gpr.kernel_.theta)
    return {
        "model": gpr,
        "lml": float(gpr.log_marginal_likelihood_value_),
        "evaluations": opt.evaluations,
        "hyperparameters": {"variance": theta[0], "lengthscale": theta[1], "noise": theta[2]},
    }


def sklearn_predict(fit, X_test):
    return fit["model"].predict(X_test, return_std=True)


# ---------------------------------------------------------------------------------------------
# bayeskit
# ---------------------------------------------------------------------------------------------
_BK_LAST_ML2 = {}


def _instrument_bayeskit():
    """Record the ML2Result of the last ``fit_ml2`` call made by ``GPRegressor.fit``.

    (Only to report the number of evaluations; the wrapper costs nothing measurable.)
    """
    from bayeskit.gp import exact

    if getattr(exact.fit_ml2, "_benchmark_wrapper", False):
        return
    original = exact.fit_ml2

    def recording_fit_ml2(*args, **kwargs):
        res = original(*args, **kwargs)
        _BK_LAST_ML2["result"] = res
        return res

    recording_fit_ml2._benchmark_wrapper = True
    exact.fit_ml2 = recording_fit_ml2


def bayeskit_fit(X, y, n_restarts: int = 0):
    from bayeskit.gp import GPRegressor
    from bayeskit.kernels import RBF

    _instrument_bayeskit()
    model = GPRegressor(
        RBF(START["lengthscale"], START["variance"]), noise=START["noise"], optimize=True,
        n_restarts=n_restarts, bounds=BOUNDS, seed=SEED,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # JitterWarning at extreme random restarts
        model.fit(X, y)
    res = _BK_LAST_ML2["result"]
    return {
        "model": model,
        "lml": float(model.log_marginal_likelihood_),
        "evaluations": int(res.n_evaluations),
        "jitter_evaluations": int(res.jitter_evaluations),
        "hyperparameters": {
            "variance": float(model.kernel_.variance),
            "lengthscale": float(model.kernel_.lengthscale),
            "noise": float(model.noise_),
        },
    }


def bayeskit_predict(fit, X_test):
    # scikit-learn's WhiteKernel puts the noise into kernel.diag, so its std is that of a noisy y
    return fit["model"].predict(X_test, return_std=True, include_noise=True)


def bayeskit_warmup(X, y, X_test):
    """Compile every jitted program ``fit`` + ``predict`` use at this n (a few evaluations)."""
    from bayeskit.gp import GPRegressor, fit_ml2
    from bayeskit.kernels import RBF

    kernel = RBF(START["lengthscale"], START["variance"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit_ml2(kernel, X, y, START["noise"], bounds=BOUNDS, maxiter=1)
        model = GPRegressor(kernel, noise=START["noise"], optimize=False).fit(X, y)
        model.predict(X_test, return_std=True)


# ---------------------------------------------------------------------------------------------
# tinygp: the usual pattern, jax.value_and_grad of log_probability + scipy L-BFGS-B
# ---------------------------------------------------------------------------------------------
_TINYGP = {}


def _tinygp_functions():
    if _TINYGP:
        return _TINYGP
    import jax
    import jax.numpy as jnp
    import tinygp

    def build(log_theta, X):
        lengthscale, variance, noise = jnp.exp(log_theta)  # bayeskit's order
        return tinygp.GaussianProcess(variance * tinygp.kernels.ExpSquared(scale=lengthscale), X, diag=noise)

    @jax.jit
    def value_and_grad(log_theta, X, y):
        return jax.value_and_grad(lambda t: build(t, X).log_probability(y))(log_theta)

    @jax.jit
    def predict(log_theta, X, y, X_test):
        mean, var = build(log_theta, X).predict(y, X_test, return_var=True)
        noise = jnp.exp(log_theta[2])  # std of a noisy y, as scikit-learn's WhiteKernel gives
        return mean, jnp.sqrt(jnp.maximum(var, 0.0) + noise)

    _TINYGP.update(value_and_grad=value_and_grad, predict=predict, jnp=jnp)
    return _TINYGP


def tinygp_fit(X, y, n_restarts: int = 0):
    import scipy.optimize

    f = _tinygp_functions()
    jnp = f["jnp"]
    Xj, yj = jnp.asarray(X), jnp.asarray(y)
    box = [(np.log(BOUNDS[0]), np.log(BOUNDS[1]))] * 3
    count = [0]

    def objective(theta):
        count[0] += 1
        value, grad = f["value_and_grad"](jnp.asarray(theta), Xj, yj)
        value = float(value)
        if not np.isfinite(value):
            return np.inf, np.zeros_like(theta)
        return -value, -np.asarray(grad, dtype=float)

    best = None
    for start in start_points(n_restarts):
        res = scipy.optimize.minimize(objective, start, jac=True, method="L-BFGS-B", bounds=box)
        if np.isfinite(res.fun) and (best is None or res.fun < best.fun):
            best = res
    theta = np.exp(best.x)
    return {
        "log_theta": best.x,
        "X": Xj,
        "y": yj,
        "lml": -float(best.fun),
        "evaluations": count[0],
        "hyperparameters": {"lengthscale": theta[0], "variance": theta[1], "noise": theta[2]},
    }


def tinygp_predict(fit, X_test):
    f = _tinygp_functions()
    mean, std = f["predict"](f["jnp"].asarray(fit["log_theta"]), fit["X"], fit["y"], f["jnp"].asarray(X_test))
    return np.asarray(mean), np.asarray(std)


def tinygp_warmup(X, y, X_test):
    f = _tinygp_functions()
    jnp = f["jnp"]
    theta = jnp.asarray(start_points(0)[0])
    np.asarray(f["value_and_grad"](theta, jnp.asarray(X), jnp.asarray(y))[1])
    np.asarray(f["predict"](theta, jnp.asarray(X), jnp.asarray(y), jnp.asarray(X_test))[1])


def _available(module: str) -> bool:
    try:
        importlib.import_module(module)
        return True
    except Exception:
        return False


# ---------------------------------------------------------------------------------------------
# cold start (compilation) in a fresh process
# ---------------------------------------------------------------------------------------------
_COMPILE_EVENTS = (
    "/jax/core/compile/jaxpr_trace_duration",
    "/jax/core/compile/jaxpr_to_mlir_module_duration",
    "/jax/core/compile/backend_compile_duration",  # XLA compile, or loading from the persistent cache
)


def cold_worker(n: int, libraries: list[str]) -> dict:
    """In a fresh process: the JAX compilation cost of each library's fit + predict at this n.

    Runs each library's warm-up sequence (every jitted program fit + predict use) twice.
    ``compile_s`` is the time JAX itself reports spending on tracing, lowering and compiling
    (or loading from the persistent cache) during the first run, through ``jax.monitoring``;
    ``first_s - second_s`` is the same cost seen from outside (noisier on a loaded machine).
    """
    import jax

    X, y, X_test = make_problem(n)
    out = {"n": n}
    t0 = time.perf_counter()
    import bayeskit  # noqa: F401  (jax_enable_x64 and the compilation cache, as users get them)

    out["import_s"] = time.perf_counter() - t0
    out["cache_dir"] = bayeskit._config.CACHE_DIR
    events: dict[str, float] = {}

    def listener(event, duration, **kwargs):
        events[event] = events.get(event, 0.0) + duration

    jax.monitoring.register_event_duration_secs_listener(listener)
    warmups = {"bayeskit": bayeskit_warmup, "tinygp": tinygp_warmup}
    for lib in libraries:
        fn = warmups[lib]
        events.clear()
        t0 = time.perf_counter()
        fn(X, y, X_test)
        first = time.perf_counter() - t0
        compile_events = {k: v for k, v in events.items() if k in _COMPILE_EVENTS}
        t0 = time.perf_counter()
        fn(X, y, X_test)
        second = time.perf_counter() - t0
        out[lib] = {
            "compile_s": sum(compile_events.values()),
            "events_s": compile_events,
            "first_s": first,
            "second_s": second,
            "first_minus_second_s": first - second,
        }
    return out


def measure_cold(n: int, libraries: list[str], cache_dir: str = "") -> dict:
    args = [str(Path(__file__).resolve()), "--cold-worker", str(n), "--libraries", ",".join(libraries)]
    return run_python(args, env_overrides={"BAYESKIT_JAX_CACHE": cache_dir})


# ---------------------------------------------------------------------------------------------
# per-evaluation breakdown (one LML + gradient, and its parts)
# ---------------------------------------------------------------------------------------------
def per_evaluation_breakdown(n: int, repeats: int, fits: dict) -> dict:
    import jax
    import jax.numpy as jnp
    import scipy.linalg

    from bayeskit.gp import exact, log_marginal_likelihood_and_grad
    from bayeskit.kernels import RBF

    X, y, _ = make_problem(n)
    hp = fits["bayeskit"]["hyperparameters"]
    kernel = RBF(hp["lengthscale"], hp["variance"])
    noise = hp["noise"]
    Xj = jnp.asarray(X)
    gpr = fits["sklearn"]["model"]
    theta_sk = gpr.kernel_.theta

    @jax.jit
    def kernel_matrix(k, X):
        return k(X)

    @jax.jit
    def kernel_matrix_vjp(k, X, G):
        return jax.grad(lambda kk: jnp.sum(kk(X) * G))(k)

    K = np.asarray(kernel_matrix(kernel, Xj)) + noise * np.eye(n)
    Kj = jnp.asarray(K)
    L = np.linalg.cholesky(K)
    Lj = jnp.asarray(L)
    xla_cholesky = jax.jit(jnp.linalg.cholesky)
    chol_inv = jax.jit(exact.cholesky_inverse)
    G = jnp.asarray(np.ones((n, n)))

    fns = {
        "sklearn: LML + gradient": lambda: gpr.log_marginal_likelihood(theta_sk, eval_gradient=True, clone_kernel=False),
        "bayeskit: LML + gradient": lambda: jax.block_until_ready(log_marginal_likelihood_and_grad(kernel, X, y, noise)),
        "kernel matrix k(X) (XLA)": lambda: jax.block_until_ready(kernel_matrix(kernel, Xj)),
        "kernel matrix + its VJP (XLA)": lambda: jax.block_until_ready(kernel_matrix_vjp(kernel, Xj, G)),
        "Cholesky, XLA (jnp.linalg.cholesky)": lambda: jax.block_until_ready(xla_cholesky(Kj)),
        "Cholesky, LAPACK dpotrf (scipy)": lambda: scipy.linalg.lapack.dpotrf(K, lower=1, clean=0),
        "K^-1 from L, LAPACK dpotri (scipy)": lambda: scipy.linalg.lapack.dpotri(L.T, lower=0),
        "K^-1 from L, bayeskit cholesky_inverse": lambda: jax.block_until_ready(chol_inv(Lj)),
    }
    if "tinygp" in fits:
        f = _tinygp_functions()
        theta = jnp.asarray(fits["tinygp"]["log_theta"])
        yj = jnp.asarray(y)
        fns["tinygp: LML + gradient"] = lambda: jax.block_until_ready(f["value_and_grad"](theta, Xj, yj))
    timings, _ = time_interleaved(fns, repeats=repeats, warmup=1)
    return {"n": n, "timings": timings}


# ---------------------------------------------------------------------------------------------
# explorer latency (benchmarks/explorer_latency.py, written separately)
# ---------------------------------------------------------------------------------------------
def explorer_latency(quick: bool) -> dict:
    """HOOK: ``explorer_latency.measure(quick)`` when that module is importable.

    Returns its dict (kernel-side and browser medians), or ``{"available": False, ...}``.
    """
    try:
        module = importlib.import_module("explorer_latency")
    except ImportError as exc:
        return {"available": False, "reason": f"benchmarks/explorer_latency.py not importable: {exc}"}
    if not hasattr(module, "measure"):
        return {"available": False, "reason": "benchmarks/explorer_latency.py has no measure(quick)"}
    try:
        result = dict(module.measure(quick))
    except Exception as exc:  # a broken browser setup should not lose the GP numbers
        return {"available": False, "reason": f"explorer_latency.measure failed: {type(exc).__name__}: {exc}"}
    result.setdefault("available", True)
    return result


def _explorer_headline(result: dict, prefix: str = "") -> dict:
    """Pick the median latencies (any nesting depth) out of what explorer_latency.measure returned."""
    out = {}
    for key, value in result.items():
        name = f"{prefix}{key}"
        if isinstance(value, (int, float)) and not isinstance(value, bool) and "median" in key:
            out[name] = value
        elif isinstance(value, dict):
            out.update(_explorer_headline(value, prefix=f"{name}."))
    return out


# ---------------------------------------------------------------------------------------------
# the run
# ---------------------------------------------------------------------------------------------
def run_size(n: int, libraries: list[str], repeats: int, predict_repeats: int, n_restarts: int = 0) -> dict:
    X, y, X_test = make_problem(n)
    fit_fns = {"sklearn": sklearn_fit, "bayeskit": bayeskit_fit, "tinygp": tinygp_fit}
    predict_fns = {"sklearn": sklearn_predict, "bayeskit": bayeskit_predict, "tinygp": tinygp_predict}
    warmups = {"bayeskit": bayeskit_warmup, "tinygp": tinygp_warmup}
    for lib in libraries:
        if lib in warmups:
            warmups[lib](X, y, X_test)
    timings, fits = time_interleaved(
        {lib: (lambda f=fit_fns[lib]: f(X, y, n_restarts)) for lib in libraries}, repeats=repeats, warmup=0
    )
    predict_timings, predictions = time_interleaved(
        {lib: (lambda f=predict_fns[lib], lib=lib: f(fits[lib], X_test)) for lib in libraries},
        repeats=predict_repeats,
        warmup=1,
    )
    ref_mean, ref_std = predictions["sklearn"]
    row = {"n": n, "n_restarts": n_restarts, "libraries": {}}
    for lib in libraries:
        mean, std = predictions[lib]
        row["libraries"][lib] = {
            "fit_s": timings[lib],
            "predict_s": predict_timings[lib],
            "lml": fits[lib]["lml"],
            "evaluations": fits[lib]["evaluations"],
            "fit_s_per_evaluation": timings[lib]["median"] / max(fits[lib]["evaluations"], 1),
            "hyperparameters": fits[lib]["hyperparameters"],
            "max_abs_mean_diff_vs_sklearn": float(np.max(np.abs(np.asarray(mean) - ref_mean))),
            "max_abs_std_diff_vs_sklearn": float(np.max(np.abs(np.asarray(std) - ref_std))),
        }
        if "jitter_evaluations" in fits[lib]:
            row["libraries"][lib]["jitter_evaluations"] = fits[lib]["jitter_evaluations"]
    return row, fits


def _median(d):
    return d["median"] if d else None


def build_markdown(report: dict) -> str:
    env = report["environment"]
    libs = report["libraries"]
    lines = [
        "# GP regression benchmark: ML-II fit + predict",
        "",
        f"Run {env['timestamp']} on {env['platform']} ({env['cpu_count']} CPUs, load average at start "
        f"{env['loadavg_at_start']}), mode: {'quick' if report['quick'] else 'full'}. "
        f"Versions: {', '.join(f'{k} {v}' for k, v in env['versions'].items() if v)}.",
        "",
        "Problem: X ~ U(-3, 3)^2, y = sin(x1) cos(x2) + N(0, 0.1^2); kernel variance * RBF(lengthscale) + "
        "white noise, all three fitted by ML-II (L-BFGS-B, scipy's default tolerances, start "
        "lengthscale 1, variance 1, noise 0.1, box 1e-5..1e5, no restarts); predict = mean and "
        f"std at {N_TEST} test points. Times in seconds, median of {report['repeats']} interleaved "
        "repeats (minimum in gp.json); compilation is excluded from them and reported separately "
        "(fresh process, persistent cache off).",
        "",
        "## Fit (ML-II)",
        "",
    ]
    headers = ["n", "sklearn fit", "bayeskit fit", "sklearn / bayeskit", "bayeskit compile",
               "sklearn / (bayeskit + compile)"]
    if "tinygp" in libs:
        headers += ["tinygp fit", "tinygp compile", "tinygp / bayeskit"]
    headers += ["evaluations sk / bk" + (" / tg" if "tinygp" in libs else "")]
    rows = []
    for r in report["sizes"]:
        L = r["libraries"]
        sk, bk = _median(L["sklearn"]["fit_s"]), _median(L["bayeskit"]["fit_s"])
        comp = r.get("compile", {}).get("bayeskit", {}).get("compile_s")
        row = [r["n"], sk, bk, ratio(sk, bk), comp, ratio(sk, bk + comp) if comp is not None else None]
        if "tinygp" in libs:
            tg = _median(L["tinygp"]["fit_s"])
            row += [tg, r.get("compile", {}).get("tinygp", {}).get("compile_s"), ratio(tg, bk)]
        row.append(" / ".join(str(L[lib]["evaluations"]) for lib in libs))
        rows.append(row)
    lines.append(markdown_table(headers, rows))
    lines += ["", "## Log marginal likelihood at the optimum, and predict", ""]
    headers = ["n"] + [f"LML {lib}" for lib in libs] + ["LML bayeskit - sklearn"]
    headers += [f"predict {lib} (ms)" for lib in libs] + ["max abs mean / std diff bayeskit vs sklearn"]
    rows = []
    for r in report["sizes"]:
        L = r["libraries"]
        row = [r["n"]] + [L[lib]["lml"] for lib in libs] + [L["bayeskit"]["lml"] - L["sklearn"]["lml"]]
        row += [1e3 * _median(L[lib]["predict_s"]) for lib in libs]
        row.append(f"{fmt(L['bayeskit']['max_abs_mean_diff_vs_sklearn'], 2)} / "
                   f"{fmt(L['bayeskit']['max_abs_std_diff_vs_sklearn'], 2)}")
        rows.append(row)
    lines.append(markdown_table(headers, rows, digits=4))
    if report.get("restarts"):
        r = report["restarts"]
        lines += ["", f"## With {r['n_restarts']} restarts (n = {r['n']}, same start points for all)", ""]
        headers = ["library", "fit (s)", "evaluations", "LML"]
        rows = [[lib, _median(v["fit_s"]), v["evaluations"], v["lml"]] for lib, v in r["libraries"].items()]
        lines.append(markdown_table(headers, rows, digits=4))
    if report.get("cache_restart"):
        c = report["cache_restart"]
        bk = c.get("bayeskit", {})
        lines += ["", "## Compilation", "",
                  f"Fresh process, n = {c['n']}: bayeskit compile {fmt(report['sizes'][0].get('compile', {}).get('bayeskit', {}).get('compile_s'))} s "
                  f"with the persistent cache off, {fmt(bk.get('compile_s'))} s when it is warm "
                  "(a restarted kernel)."]
    pe = report.get("per_evaluation")
    if pe:
        lines += ["", f"## One evaluation of LML + gradient and its parts (n = {pe['n']})", "",
                  "Seconds; minimum and median of interleaved repeats.", ""]
        rows = [[name, t["min"], t["median"]] for name, t in pe["timings"].items()]
        lines.append(markdown_table(["what", "min", "median"], rows))
    ex = report["explorer"]
    lines += ["", "## GPExplorer update latency", ""]
    if ex.get("available"):
        head = _explorer_headline(ex)
        lines.append(markdown_table(["figure", "value"], [[k, v] for k, v in head.items()]) if head else str(ex))
    else:
        lines.append(f"not available: {ex.get('reason')}")
    s = report["summary"]
    lines += ["", "## Summary", "", "```", str(s), "```"]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="n = 500, 1000 and fewer repeats (< 2 minutes)")
    parser.add_argument("--sizes", type=str, default=None, help="comma-separated n (overrides the mode's sizes)")
    parser.add_argument("--repeats", type=int, default=None, help="timed fits per library and n")
    parser.add_argument("--restarts", type=int, default=None,
                        help="also run one configuration with this many restarts (full mode: 2 at n = 1000)")
    parser.add_argument("--libraries", type=str, default=None, help="comma-separated subset of sklearn,bayeskit,tinygp")
    parser.add_argument("--no-cold", action="store_true", help="skip the fresh-process compilation measurement")
    parser.add_argument("--no-explorer", action="store_true", help="skip the explorer-latency hook")
    parser.add_argument("--results-dir", type=str, default=None, help="where to write gp.json / gp.md")
    parser.add_argument("--cold-worker", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.cold_worker is not None:
        import json

        libs = [lib for lib in (args.libraries or "bayeskit").split(",") if lib in ("bayeskit", "tinygp")]
        print(json.dumps(cold_worker(args.cold_worker, libs)))
        return 0

    t_start = time.perf_counter()
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else list(QUICK_SIZES if args.quick else FULL_SIZES)
    repeats = args.repeats or (2 if args.quick else 3)
    predict_repeats = 5 if args.quick else 7
    libraries = ["sklearn", "bayeskit"]
    if _available("tinygp"):
        libraries.append("tinygp")
    if _available("gpjax"):
        log("gpjax is installed but not benchmarked here yet (tinygp is the JAX comparison)")
    if args.libraries:
        wanted = args.libraries.split(",")
        libraries = [lib for lib in libraries if lib in wanted]
    if "sklearn" not in libraries or "bayeskit" not in libraries:
        parser.error("sklearn and bayeskit are both required (the ratios are against scikit-learn)")

    import bayeskit  # noqa: F401  (float64 before any JAX array is made)

    report = {
        "benchmark": "gp",
        "quick": bool(args.quick),
        "environment": environment(["bayeskit", "jax", "jaxlib", "scikit-learn", "scipy", "numpy", "tinygp", "gpjax"]),
        "problem": {
            "inputs": "X ~ U(-3, 3)^2", "targets": "sin(x1) cos(x2) + N(0, 0.1^2)", "n_test": N_TEST,
            "kernel": "variance * RBF(lengthscale) + white noise", "start": START, "bounds": BOUNDS,
            "optimizer": "scipy L-BFGS-B, default tolerances (as sklearn's _constrained_optimization)",
        },
        "libraries": libraries,
        "repeats": repeats,
        "sizes": [],
    }
    # warm sklearn's own code paths (imports, validation) on a tiny problem
    Xs, ys, _ = make_problem(50)
    sklearn_fit(Xs, ys)

    all_fits = {}
    for n in sizes:
        reps = repeats if n <= 2000 else max(1, repeats - 2)
        log(f"[gp] n = {n}: fitting {', '.join(libraries)} ({reps} interleaved repeats), load {loadavg()}")
        row, fits = run_size(n, libraries, reps, predict_repeats)
        row["loadavg_after"] = loadavg()
        if not args.no_cold:
            jax_libs = [lib for lib in libraries if lib in ("bayeskit", "tinygp")]
            log(f"[gp] n = {n}: compile time in a fresh process (cache off)")
            row["compile"] = measure_cold(n, jax_libs, cache_dir="")
        all_fits[n] = fits
        report["sizes"].append(row)
        L = row["libraries"]
        log(f"[gp] n = {n}: sklearn {fmt(L['sklearn']['fit_s']['median'])} s, bayeskit "
            f"{fmt(L['bayeskit']['fit_s']['median'])} s, ratio "
            f"{fmt(ratio(L['sklearn']['fit_s']['median'], L['bayeskit']['fit_s']['median']))}, "
            f"LML {L['sklearn']['lml']:.6f} / {L['bayeskit']['lml']:.6f}")

    if not args.no_cold:
        with tempfile.TemporaryDirectory(prefix="bayeskit-jax-cache-") as cache:
            n0 = sizes[0]
            log(f"[gp] compile time with a warm persistent cache (n = {n0})")
            measure_cold(n0, ["bayeskit"], cache_dir=cache)  # fills the cache
            report["cache_restart"] = measure_cold(n0, ["bayeskit"], cache_dir=cache)

    n_restarts = args.restarts if args.restarts is not None else (0 if args.quick else 2)
    if n_restarts:
        n_r = 1000 if 1000 in sizes else sizes[0]
        log(f"[gp] n = {n_r} with {n_restarts} restarts")
        row, _ = run_size(n_r, libraries, 1, 1, n_restarts=n_restarts)
        report["restarts"] = {"n": n_r, "n_restarts": n_restarts, "libraries": {
            lib: {k: v[k] for k in ("fit_s", "lml", "evaluations", "hyperparameters")} for lib, v in row["libraries"].items()
        }}

    n_pe = 2000 if 2000 in sizes else max(sizes)
    log(f"[gp] per-evaluation breakdown at n = {n_pe}")
    report["per_evaluation"] = per_evaluation_breakdown(n_pe, 3 if args.quick else 5, all_fits[n_pe])

    if args.no_explorer:
        report["explorer"] = {"available": False, "reason": "skipped (--no-explorer)"}
    else:
        log("[gp] GPExplorer latency")
        report["explorer"] = explorer_latency(args.quick)

    by_n = {r["n"]: r["libraries"] for r in report["sizes"]}
    comp = {r["n"]: r.get("compile", {}).get("bayeskit", {}).get("compile_s") for r in report["sizes"]}
    summary = {
        "benchmark": "gp",
        "quick": bool(args.quick),
        "speedup_vs_sklearn": {n: ratio(L["sklearn"]["fit_s"]["median"], L["bayeskit"]["fit_s"]["median"]) for n, L in by_n.items()},
        "speedup_vs_sklearn_incl_compile": {
            n: ratio(L["sklearn"]["fit_s"]["median"], L["bayeskit"]["fit_s"]["median"] + comp[n]) if comp[n] is not None else None
            for n, L in by_n.items()
        },
        "bayeskit_fit_s": {n: L["bayeskit"]["fit_s"]["median"] for n, L in by_n.items()},
        "sklearn_fit_s": {n: L["sklearn"]["fit_s"]["median"] for n, L in by_n.items()},
        "lml_bayeskit_minus_sklearn": {n: L["bayeskit"]["lml"] - L["sklearn"]["lml"] for n, L in by_n.items()},
        "evaluations_sklearn_bayeskit": {n: [L["sklearn"]["evaluations"], L["bayeskit"]["evaluations"]] for n, L in by_n.items()},
        "bayeskit_compile_s": comp,
    }
    if "tinygp" in libraries:
        summary["speedup_vs_tinygp"] = {n: ratio(L["tinygp"]["fit_s"]["median"], L["bayeskit"]["fit_s"]["median"]) for n, L in by_n.items()}
    if 2000 in by_n:
        s2000 = summary["speedup_vs_sklearn"][2000]
        summary["goal_3x_at_2000"] = bool(s2000 is not None and s2000 >= 3 and summary["lml_bayeskit_minus_sklearn"][2000] >= -1e-6)
    ex = report["explorer"]
    summary["explorer"] = _explorer_headline(ex) if ex.get("available") else "not available"
    summary["wall_s"] = round(time.perf_counter() - t_start, 1)
    report["summary"] = summary
    report["environment"]["loadavg_at_end"] = loadavg()
    json_path, md_path = write_results("gp", report, build_markdown(report), args.results_dir)
    log(f"[gp] wrote {json_path} and {md_path} in {summary['wall_s']} s")
    print_result_line(summary)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore::DeprecationWarning")
    sys.exit(main())
