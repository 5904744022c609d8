"""Kalman-filter throughput: bayeskit against dynamax, filterpy and pykalman, side by side.

Problem: a 4-D state, 2-D observation linear-Gaussian model (a random stable F), T = 10^3,
10^4, 10^5 steps. Every library filters the same data with the same model; the script checks
that they agree (filtered means, and the log-likelihood where the library returns one) before
it reports times. Timings are interleaved repeats after a warm-up (compilation excluded and
reported separately for the JAX libraries); the table gives the minimum and median and the
ratio other / bayeskit of the minima (> 1: bayeskit is faster).

Usage: ``python benchmarks/filters.py [--quick]``. ``--quick`` runs T = 10^3 and 10^4 only and
skips the slowest pure-Python runs; the last stdout line is ``RESULT {json}``.
Goal (issue): within 1.2x of dynamax's sequential filter and at least 5x faster than filterpy.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as bench  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

import bayeskit  # noqa: E402,F401
from bayeskit.filters import LinearGaussianSSM, kalman_filter, sample  # noqa: E402
from bayeskit.filters.kalman import _filter  # noqa: E402
from bayeskit.filters.parallel import parallel_kalman_filter  # noqa: E402


def make_model(seed: int = 0) -> LinearGaussianSSM:
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(4, 4))
    F = 0.95 * A / np.max(np.abs(np.linalg.eigvals(A)))
    H = rng.normal(size=(2, 4))
    return LinearGaussianSSM(F, H, 0.1 * np.eye(4), 0.5 * np.eye(2), np.zeros(4), np.eye(4))


def runners(model: LinearGaussianSSM, ys: np.ndarray, include_slow: bool):
    """name -> zero-argument callable returning (means (T, 4), log-likelihood or None)."""
    F, H, Q, R, m0, P0 = (np.asarray(a) for a in model)
    jm = LinearGaussianSSM(*map(jnp.asarray, model))
    ys_j = jnp.asarray(ys)
    out = {}

    def ours():
        r = kalman_filter(model, ys)
        return np.asarray(r.means), float(r.log_likelihood)

    def ours_core():  # the jitted scan alone, without input validation
        r = _filter(jm, ys_j)
        return np.asarray(r.means), float(r.log_likelihood)

    out["bayeskit"] = ours
    out["bayeskit (core)"] = ours_core
    try:
        from dynamax.linear_gaussian_ssm import lgssm_filter
        from dynamax.linear_gaussian_ssm.inference import (
            ParamsLGSSM,
            ParamsLGSSMDynamics,
            ParamsLGSSMEmissions,
            ParamsLGSSMInitial,
        )

        params = ParamsLGSSM(
            initial=ParamsLGSSMInitial(mean=jnp.asarray(m0), cov=jnp.asarray(P0)),
            dynamics=ParamsLGSSMDynamics(weights=jnp.asarray(F), bias=jnp.zeros(4), input_weights=jnp.zeros((4, 0)), cov=jnp.asarray(Q)),
            emissions=ParamsLGSSMEmissions(weights=jnp.asarray(H), bias=jnp.zeros(2), input_weights=jnp.zeros((2, 0)), cov=jnp.asarray(R)),
        )
        dyn = jax.jit(lgssm_filter)

        def dynamax_run():
            r = dyn(params, ys_j)
            return np.asarray(r.filtered_means), float(r.marginal_loglik)

        out["dynamax"] = dynamax_run
    except ImportError:
        bench.log("dynamax not installed: skipped")
    if include_slow:
        try:
            from filterpy.kalman import KalmanFilter

            def filterpy_run():
                kf = KalmanFilter(dim_x=4, dim_z=2)
                kf.F, kf.H, kf.Q, kf.R = F, H, Q, R
                kf.x, kf.P = m0.copy(), P0.copy()
                means = np.empty((len(ys), 4))
                for t, y in enumerate(ys):
                    if t:
                        kf.predict()
                    kf.update(y)
                    means[t] = kf.x
                return means, None

            out["filterpy"] = filterpy_run
        except ImportError:
            bench.log("filterpy not installed: skipped")
        try:
            from pykalman import KalmanFilter as PyKalman

            pk = PyKalman(transition_matrices=F, observation_matrices=H, transition_covariance=Q,
                          observation_covariance=R, initial_state_mean=m0, initial_state_covariance=P0)

            def pykalman_run():
                means, _ = pk.filter(ys)
                return means, float(pk.loglikelihood(ys))

            out["pykalman"] = pykalman_run
        except ImportError:
            bench.log("pykalman not installed: skipped")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="T = 10^3, 10^4 only, fewer repeats")
    args = parser.parse_args()
    sizes = [1_000, 10_000] if args.quick else [1_000, 10_000, 100_000]
    repeats = 3 if args.quick else 5
    model = make_model()
    rows, results = [], {}
    for T in sizes:
        _, ys = sample(model, jax.random.key(T), T)
        ys = np.asarray(ys)
        include_slow = T <= (10_000 if args.quick else 100_000)
        fns = runners(model, ys, include_slow)
        compile_s = {}
        for name in ("bayeskit", "dynamax"):
            if name in fns:
                t0 = time.perf_counter()
                fns[name]()
                compile_s[name] = time.perf_counter() - t0
        slow_repeats = 1 if T >= 100_000 else repeats
        timings, last = bench.time_interleaved(fns, repeats=repeats if T < 100_000 else slow_repeats, warmup=0)
        ref_means, ref_ll = last["bayeskit"]
        agree = {}
        for name, (means, ll) in last.items():
            agree[name] = {
                "max_abs_mean_diff": float(np.max(np.abs(means - ref_means))),
                "loglik_diff": None if ll is None else float(abs(ll - ref_ll)),
            }
        ours_min = timings["bayeskit"]["min"]
        entry = {"T": T, "timings": timings, "first_call_s": compile_s, "agreement": agree,
                 "ratio_vs_bayeskit": {n: bench.ratio(timings[n]["min"], ours_min) for n in timings}}
        results[str(T)] = entry
        for name, tm in timings.items():
            rows.append([T, name, tm["min"], tm["median"], T / tm["min"], entry["ratio_vs_bayeskit"][name],
                         agree[name]["max_abs_mean_diff"], agree[name]["loglik_diff"]])
        bench.log(f"T={T}: " + ", ".join(f"{n} {tm['min'] * 1e3:.1f} ms" for n, tm in timings.items()))
    parallel = None
    if not args.quick:
        _, ys = sample(model, jax.random.key(7), 10_000)
        t0 = time.perf_counter()
        parallel_kalman_filter(model, ys)
        compile_par = time.perf_counter() - t0
        tm = bench.time_call(lambda: np.asarray(parallel_kalman_filter(model, ys).means), repeats=3, warmup=0)
        parallel = {"T": 10_000, "first_call_s": compile_par, "timing": tm, "device": jax.default_backend()}
    payload = {"environment": bench.environment(["jax", "jaxlib", "dynamax", "filterpy", "pykalman"]),
               "results": results, "parallel_cpu": parallel, "quick": args.quick}
    md = ["# Kalman filter throughput (4-D state, 2-D observations)", "",
          bench.markdown_table(["T", "library", "min s", "median s", "steps/s", "time ratio vs bayeskit",
                                "max |mean diff|", "|loglik diff|"], rows), ""]
    if parallel:
        md.append(f"Parallel (associative scan) filter on {parallel['device']}, T = 10^4: "
                  f"{parallel['timing']['min']:.3f} s per run after a {parallel['first_call_s']:.1f} s first call "
                  "(compilation). On a CPU it does more work than the sequential scan; it pays off on a GPU.")
    bench.write_results("filters", payload, "\n".join(md))
    largest = results[str(sizes[-1])]["ratio_vs_bayeskit"]
    summary = {f"ratio_{k.replace(' ', '_').replace('(', '').replace(')', '')}_T{sizes[-1]}": v for k, v in largest.items()}
    summary["max_abs_mean_diff"] = max(a["max_abs_mean_diff"] for r in results.values() for a in r["agreement"].values())
    bench.print_result_line(summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
