"""What an accelerator changes: the parallel Kalman filter and exact-GP gradients on JAX's device.

The same script runs on the CPU (the baseline) and, with a CUDA build of JAX installed
(``pip install -e '.[gpu]'``, see README "GPU"), on the GPU; JAX picks the device. It reports:

* Kalman filter, 4-D state, 2-D observations, T = 10^3 ... 10^6: the sequential filter (one
  ``lax.scan``, O(T) depth) against the parallel one (``lax.associative_scan``, O(log T) depth,
  *Temporal Parallelization of Bayesian Smoothers*), run time after compilation and the first
  call (compilation + one run), and the largest difference in filtered means and log-likelihood between them.
* Exact GP: one log marginal likelihood + gradient evaluation (the inner step of ML-II, float64,
  Matern-5/2 ARD in 3-D) at n = 1000 ... 16000 (the largest sizes only off the CPU).

Usage: ``python benchmarks/device.py [--quick]``; writes ``benchmarks/results/device.json|md``
(``--tag gpu`` writes ``device-gpu.*`` instead) and ends stdout with ``RESULT {json}``.
Float64 on a GPU is slower than float32 by a large factor on consumer cards and by about 2x on
data-centre ones (H100/H200); the library keeps float64 for GPs and filters on purpose.
"""

from __future__ import annotations

import argparse
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as bench  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

import bayeskit  # noqa: E402,F401  (float64)
from bayeskit.filters import LinearGaussianSSM, sample  # noqa: E402
from bayeskit.filters.kalman import _filter  # noqa: E402
from bayeskit.filters.parallel import _parallel_filter  # noqa: E402
from bayeskit.gp import log_marginal_likelihood_and_grad  # noqa: E402
from bayeskit.kernels import Matern52  # noqa: E402


def _first_and_rest(fn, repeats):
    """(seconds of the first call, i.e. compile + run; timings of later calls).

    A call slower than a second is repeated once only: the sequential scan on a GPU launches
    T small kernels one after another and takes seconds per call at T = 10^5.
    """
    t0 = time.perf_counter()
    out = jax.block_until_ready(fn())
    first = time.perf_counter() - t0
    timing = bench.time_call(lambda: jax.block_until_ready(fn()), repeats=1, warmup=0)
    if timing["median"] < 1.0 and repeats > 1:
        timing = bench.time_call(lambda: jax.block_until_ready(fn()), repeats=repeats, warmup=0)
    return first, timing, out


#: skip the sequential filter where its extrapolated run time (linear in T) exceeds this
SEQUENTIAL_BUDGET_S = 20.0


def kalman_rows(lengths, repeats):
    rng = np.random.default_rng(0)
    A = rng.normal(size=(4, 4))
    F = 0.95 * A / np.max(np.abs(np.linalg.eigvals(A)))
    model = LinearGaussianSSM(F, rng.normal(size=(2, 4)), 0.1 * np.eye(4), 0.5 * np.eye(2), np.zeros(4), np.eye(4))
    jm = LinearGaussianSSM(*map(jnp.asarray, model))
    rows, seq_per_step = [], 0.0
    for T in lengths:
        _, ys = sample(model, jax.random.key(1), T)
        ys = jax.device_put(jnp.asarray(ys))
        first_p, par, out_p = _first_and_rest(partial(_parallel_filter, jm, ys), repeats)
        row = {"T": T, "parallel_s": par["median"], "parallel_first_call_s": first_p,
               "sequential_s": None, "sequential_first_call_s": None, "speedup_parallel": None,
               "max_abs_mean_diff": None, "ll_rel_diff": None}
        if seq_per_step * T <= SEQUENTIAL_BUDGET_S:
            first_s, seq, out_s = _first_and_rest(partial(_filter, jm, ys, masked=False), repeats)
            seq_per_step = seq["median"] / T
            row.update({
                "sequential_s": seq["median"], "sequential_first_call_s": first_s,
                "speedup_parallel": bench.ratio(seq["median"], par["median"]),
                "max_abs_mean_diff": float(jnp.max(jnp.abs(out_s.means - out_p.means))),
                "ll_rel_diff": float(abs(out_s.log_likelihood - out_p.log_likelihood) / abs(out_s.log_likelihood)),
            })
        rows.append(row)
        seq_ms = "skipped" if row["sequential_s"] is None else f"{row['sequential_s'] * 1e3:.2f} ms"
        bench.log(f"kalman T={T}: sequential {seq_ms}, parallel {par['median'] * 1e3:.2f} ms")
    return rows


def gp_rows(sizes, repeats):
    rows = []
    kernel = Matern52(lengthscale=np.array([0.7, 1.1, 0.9]), variance=1.3)
    for n in sizes:
        rng = np.random.default_rng(n)
        X = rng.uniform(-3, 3, size=(n, 3))
        y = np.sin(X[:, 0]) * np.cos(X[:, 1]) + 0.1 * X[:, 2] + 0.1 * rng.normal(size=n)
        Xd, yd = jax.device_put(jnp.asarray(X)), jax.device_put(jnp.asarray(y))
        first, timing, (value, _) = _first_and_rest(partial(log_marginal_likelihood_and_grad, kernel, Xd, yd, 0.01), repeats)
        rows.append({"n": n, "lml_and_grad_s": timing["median"], "first_call_s": first, "lml": float(value)})
        if timing["median"] > 5.0:
            break
        bench.log(f"gp n={n}: LML + gradient {timing['median'] * 1e3:.1f} ms")
    return rows


def _ms(seconds):
    return "skipped" if seconds is None else f"{seconds * 1e3:.2f} ms"


def _s(seconds):
    return "-" if seconds is None else f"{seconds:.2f} s"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer sizes and repeats")
    parser.add_argument("--tag", default="", help="suffix of the result files (e.g. gpu)")
    parser.add_argument("--results-dir", default=None)
    args = parser.parse_args()
    on_cpu = jax.default_backend() == "cpu"
    repeats = 3 if args.quick else 5
    lengths = [10**3, 10**4, 10**5] if args.quick else [10**3, 10**4, 10**5, 10**6]
    sizes = [1000, 2000] if args.quick else [1000, 2000, 4000]
    if not on_cpu:
        sizes += [8000, 16000]
    env = bench.environment(["jax", "jaxlib"])
    env["device"] = str(jax.devices()[0])
    kalman, gp = kalman_rows(lengths, repeats), gp_rows(sizes, repeats)
    md = [f"# Device benchmark ({env['device']})", "",
          "## Kalman filter: sequential scan vs parallel associative scan (4-D state)", "",
          bench.markdown_table(
              ["T", "sequential", "parallel", "seq / par", "first call seq", "first call par", "max |mean diff|", "LL rel diff"],
              [[r["T"], _ms(r["sequential_s"]), _ms(r["parallel_s"]), r["speedup_parallel"],
                _s(r["sequential_first_call_s"]), _s(r["parallel_first_call_s"]), r["max_abs_mean_diff"],
                r["ll_rel_diff"]] for r in kalman]),
          "", "## Exact GP: one LML + gradient evaluation (float64, Matern-5/2 ARD, d = 3)", "",
          bench.markdown_table(["n", "LML + grad", "first call"],
                               [[r["n"], f"{r['lml_and_grad_s'] * 1e3:.1f} ms", f"{r['first_call_s']:.2f} s"] for r in gp])]
    name = "device" + (f"-{args.tag}" if args.tag else "")
    results_dir = Path(args.results_dir) if args.results_dir else None
    bench.write_results(name, {"environment": env, "kalman": kalman, "gp": gp}, "\n".join(md), results_dir)
    print("\n".join(md))
    summary = {"device": env["device"]}
    summary.update({f"kalman_parallel_ms_T{r['T']}": r["parallel_s"] * 1e3 for r in kalman})
    summary.update({f"kalman_speedup_parallel_T{r['T']}": r["speedup_parallel"] for r in kalman})
    summary.update({f"gp_lml_grad_ms_n{r['n']}": r["lml_and_grad_s"] * 1e3 for r in gp})
    bench.print_result_line(summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
