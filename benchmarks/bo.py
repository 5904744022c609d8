"""Bayesian optimisation: bayeskit against BoTorch and random search, side by side.

Problems (``bayeskit.bo.test_functions``): Branin (2-D, 30 evaluations) and Hartmann-6 (6-D, 60
evaluations), noise-free, minimised. For every seed all methods start from the **same initial
design**: the first 2 d + 1 points of the scrambled Sobol sequence ``bayeskit.bo.sobol_points(
2 d + 1, d, seed)`` mapped to the box (bayeskit's own default design for that seed; the script
checks that ``minimize`` really evaluated exactly those points first, and sends them to BoTorch).

* bayeskit: ``bayeskit.bo.minimize(f, bounds, n_calls, acquisition="log_ei", seed=seed)``
  (Matern-5/2 ARD GP, ML-II, log-EI maximised by Sobol screen + multi-start L-BFGS-B).
* BoTorch: the standard loop in ``benchmarks/_bo_botorch.py``, run with the PyTorch
  environment's interpreter (``--torch-python``, default ``.venv-torch/bin/python``; build it
  with ``make torch-env``): ``SingleTaskGP`` + ``fit_gpytorch_mll`` + ``LogExpectedImprovement``
  + ``optimize_acqf(num_restarts=10, raw_samples=512)``. It evaluates the test function with its
  own numpy formula and refuses to run if that disagrees with bayeskit's at the initial points.
* random search: the initial design, then uniform random points (the same number of evaluations).
* user-guided BO (ColaBO, Branin only), when ``bayeskit.bo.user_guided`` exists:
  ``minimize(..., user_prior=UserPrior.normal(mean, std))`` with an accurate prior (centred on a
  true minimiser, std 10% of the box) and a misleading one (centred at the point of the box
  farthest from every minimiser), on the first ``--user-seeds`` seeds (default 3: a ColaBO step
  costs far more than a log-EI step). ``minimize(..., user_prior=)`` is used when it exists,
  otherwise the same loop through ``BayesianOptimizer(..., user_prior=)``.

Figures: simple regret r_k = min_{i <= k} f(x_i) - f* after k evaluations, median and quartiles
over seeds at several budgets, also as log10 r_k; wall time per BO iteration (surrogate fit +
acquisition optimisation + one evaluation; the initial design is not counted), median and mean
over all iterations of all seeds (the mean includes JAX compilation of the first iterations at
each padded size, and BoTorch's first-call overheads). Seeds run interleaved (bayeskit, BoTorch,
random, ... for seed 0, then seed 1, ...) so machine load hits both libraries alike.

Usage: ``python benchmarks/bo.py [--quick] [--seeds N] [--torch-python PATH]``. ``--quick``:
3 seeds, Branin 25 and Hartmann-6 40 evaluations (a few minutes). Results go to
``benchmarks/results/bo.json`` and ``bo.md``; the last stdout line is ``RESULT {json}``.
Goal (issue 3): median regret no worse than BoTorch's, and less wall time per iteration.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import subprocess
import sys
import time
from pathlib import Path


def _threads_from_argv(argv) -> int:
    """``--threads N`` read before NumPy, torch or JAX start their thread pools (default 1)."""
    for i, a in enumerate(argv):
        if a.startswith("--threads="):
            return int(a.split("=", 1)[1])
        if a == "--threads" and i + 1 < len(argv):
            return int(argv[i + 1])
    return 1


if __name__ == "__main__":
    # One BLAS / OpenMP thread per library (as `make test` does): on a loaded 2-core machine,
    # spinning BLAS threads slow small factorisations down by orders of magnitude, and the same
    # setting for both libraries keeps the comparison fair. The BoTorch process inherits it.
    _n = _threads_from_argv(sys.argv[1:])
    if _n > 0:
        for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[_var] = str(_n)

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as bench  # noqa: E402

import bayeskit.bo as bo  # noqa: E402
from bayeskit.bo.test_functions import Branin, Hartmann6  # noqa: E402

PROBLEMS = {"branin": Branin, "hartmann6": Hartmann6}
FULL_BUDGET = {"branin": 30, "hartmann6": 60}
QUICK_BUDGET = {"branin": 25, "hartmann6": 40}
REGRET_FLOOR = 1e-12  # log10 regret is reported for max(regret, floor)


# ---------------------------------------------------------------------------------------------
# the shared pieces
# ---------------------------------------------------------------------------------------------
def initial_design(f, seed: int) -> np.ndarray:
    """The first 2 d + 1 scrambled-Sobol points for ``seed``, in f's box: (2 d + 1, d)."""
    box = np.asarray(f.bounds, dtype=np.float64)
    U = bo.sobol_points(2 * f.dim + 1, f.dim, seed)
    return box[:, 0] + U * (box[:, 1] - box[:, 0])


def regret_trace(y, optimum: float) -> np.ndarray:
    """Simple regret after each evaluation: min_{i <= k} y_i - f*, (n,); >= 0 (clipped round-off)."""
    return np.maximum(np.minimum.accumulate(np.asarray(y, dtype=np.float64)) - optimum, 0.0)


def budgets_for(n0: int, n_calls: int) -> list[int]:
    return sorted({n0, n_calls, *[b for b in (10, 15, 20, 30, 40, 50) if n0 < b < n_calls]})


def quartiles(values) -> dict:
    q25, q50, q75 = np.percentile(np.asarray(values, dtype=np.float64), [25, 50, 75])
    return {"median": float(q50), "q25": float(q25), "q75": float(q75)}


# ---------------------------------------------------------------------------------------------
# the runners: each returns {"y": (n_calls,), "sec_per_iter": [...]} for one seed
# ---------------------------------------------------------------------------------------------
def _ask_tell(f, n_calls: int, seed: int, n0: int, callback, **extra):
    """minimize's loop written out with BayesianOptimizer (for options minimize does not take yet)."""
    opt = bo.BayesianOptimizer(f.bounds, "log_ei", seed, n_initial_points=n0, **extra)
    for _ in range(n_calls):
        x = opt.ask()
        opt.tell(x, f(x))
        callback(None)
    return opt.result()


def run_bayeskit(f, n_calls: int, seed: int, X0: np.ndarray, **extra) -> dict:
    stamps = [time.perf_counter()]
    tick = lambda r: stamps.append(time.perf_counter())  # noqa: E731
    if set(extra) <= set(inspect.signature(bo.minimize).parameters):
        res = bo.minimize(f, f.bounds, n_calls=n_calls, acquisition="log_ei", seed=seed,
                          n_initial_points=X0.shape[0], callback=tick, **extra)
    else:
        res = _ask_tell(f, n_calls, seed, X0.shape[0], tick, **extra)
    X = np.asarray(res.x_iters)
    if not np.allclose(X[: X0.shape[0]], X0, rtol=0, atol=1e-12):
        raise RuntimeError(f"bayeskit's initial design for seed {seed} is not the shared Sobol design:\n"
                           f"{X[: X0.shape[0]]}\nvs\n{X0}")
    steps = np.diff(stamps)
    return {"y": np.asarray(res.func_vals).tolist(), "sec_per_iter": steps[X0.shape[0]:].tolist()}


def run_random(f, n_calls: int, seed: int, X0: np.ndarray) -> dict:
    rng = np.random.default_rng(10_000 + seed)
    box = np.asarray(f.bounds, dtype=np.float64)
    Xr = rng.uniform(box[:, 0], box[:, 1], size=(n_calls - X0.shape[0], f.dim))
    return {"y": f.evaluate(np.vstack([X0, Xr])).tolist(), "sec_per_iter": []}


class BoTorchServer:
    """``_bo_botorch.py`` in the PyTorch environment, fed one JSON job per line."""

    def __init__(self, python: Path):
        script = Path(__file__).resolve().parent / "_bo_botorch.py"
        self.proc = subprocess.Popen([str(python), str(script)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, cwd=bench.REPO_ROOT, bufsize=1)
        self.info = self._read()

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            code = self.proc.wait()
            raise RuntimeError(f"the BoTorch script stopped (exit status {code}); its stderr is above. "
                               "Status 3 means its test function disagreed with bayeskit's.")
        return json.loads(line)

    def run(self, problem: str, f, n_calls: int, seed: int, X0: np.ndarray) -> dict:
        y0 = f.evaluate(X0)
        job = {"problem": problem, "seed": seed, "n_calls": n_calls, "X0": X0.tolist(), "y0": y0.tolist()}
        self.proc.stdin.write(json.dumps(job) + "\n")
        self.proc.stdin.flush()
        out = self._read()
        X = np.asarray(out["X"])
        y = np.asarray(out["y"])
        # the other direction of the cross-check: bayeskit's formula at BoTorch's points
        if not np.allclose(f.evaluate(X), y, rtol=1e-9, atol=1e-9):
            raise RuntimeError(f"BoTorch's values of {problem} disagree with bayeskit's at its own points")
        if not np.allclose(X[: X0.shape[0]], X0, atol=1e-12):
            raise RuntimeError("BoTorch did not start from the shared initial design")
        return {"y": y.tolist(), "sec_per_iter": out["sec_per_iter"], "y0_check": out["y0_check"]}

    def close(self):
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(timeout=60)


def user_prior_support():
    """(UserPrior class, None) when ColaBO's ``user_prior`` is available, else (None, reason).

    ``minimize(..., user_prior=...)`` is used when it exists, otherwise the same loop through
    ``BayesianOptimizer(..., user_prior=...)`` (ask/tell).
    """
    try:
        from bayeskit.bo.user_guided import UserPrior
    except ImportError as err:
        return None, f"bayeskit.bo.user_guided is not importable ({err})"
    if not any("user_prior" in inspect.signature(fn).parameters for fn in (bo.minimize, bo.BayesianOptimizer)):
        return None, "neither bayeskit.bo.minimize nor BayesianOptimizer takes a user_prior yet"
    return UserPrior, None


def misleading_centre(f, grid: int = 201) -> np.ndarray:
    """The point of f's box farthest (in box-scaled distance) from its nearest known minimiser."""
    box = np.asarray(f.bounds, dtype=np.float64)
    axes = [np.linspace(0.0, 1.0, grid)] * f.dim
    U = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, f.dim)
    opt = (np.asarray(f.optimizers) - box[:, 0]) / (box[:, 1] - box[:, 0])
    nearest = np.min(np.linalg.norm(U[:, None, :] - opt[None], axis=-1), axis=1)
    return box[:, 0] + U[np.argmax(nearest)] * (box[:, 1] - box[:, 0])


# ---------------------------------------------------------------------------------------------
# the report
# ---------------------------------------------------------------------------------------------
def summarise(f, n0: int, n_calls: int, runs: dict) -> dict:
    """Per method: regret quartiles (and log10) at each budget, timing over all iterations."""
    budgets = budgets_for(n0, n_calls)
    out = {"budgets": budgets, "methods": {}}
    for method, per_seed in runs.items():
        traces = np.array([regret_trace(r["y"], f.optimum) for r in per_seed])  # (seeds, n_calls)
        steps = [t for r in per_seed for t in r["sec_per_iter"]]
        out["methods"][method] = {
            "regret": {b: quartiles(traces[:, b - 1]) for b in budgets},
            "log10_regret": {b: quartiles(np.log10(np.maximum(traces[:, b - 1], REGRET_FLOOR))) for b in budgets},
            "final_regret_per_seed": traces[:, -1].tolist(),
            "sec_per_iter": {"median": float(np.median(steps)) if steps else None,
                             "mean": float(np.mean(steps)) if steps else None,
                             "total": float(np.sum(steps)) if steps else None},
            "regret_traces": traces.tolist(),
        }
    return out


def build_markdown(report: dict) -> str:
    env = report["environment"]
    lines = [
        "# Bayesian optimisation: bayeskit vs BoTorch vs random search",
        "",
        f"{env['timestamp']}, {report['mode']} mode, {report['n_seeds']} seeds, load average "
        f"{env['loadavg_at_start']} at the start and {report['loadavg_end']} at the end, "
        f"{env['cpu_count']} CPUs. BoTorch: {report.get('botorch_info') or 'not run'}.",
        "",
        "Simple regret min_{i<=k} f(x_i) - f* after k evaluations: median [quartiles] over seeds; "
        "every method starts from the same 2d+1 Sobol points.",
    ]
    for name, s in report["problems"].items():
        lines += ["", f"## {name} ({s['n_calls']} evaluations, {s['n0']} initial)", ""]
        headers = ["method"] + [f"k = {b}" for b in s["budgets"]] + [f"log10 r (k = {s['n_calls']})"]
        rows = []
        for method, m in s["methods"].items():
            cells = [method]
            for b in s["budgets"]:
                q = m["regret"][b]
                cells.append(f"{bench.fmt(q['median'])} [{bench.fmt(q['q25'])}, {bench.fmt(q['q75'])}]")
            q = m["log10_regret"][s["n_calls"]]
            cells.append(f"{q['median']:.2f} [{q['q25']:.2f}, {q['q75']:.2f}]")
            rows.append(cells)
        lines.append(bench.markdown_table(headers, rows))
        for note in s.get("notes", []):
            lines += ["", note]
    lines += ["", "## Wall time per BO iteration (fit + acquisition optimisation + one evaluation)", ""]
    rows = []
    for name, s in report["problems"].items():
        for method, m in s["methods"].items():
            t = m["sec_per_iter"]
            if t["median"] is not None:
                rows.append([name, method, t["median"], t["mean"], t["total"]])
    lines.append(bench.markdown_table(["problem", "method", "median s", "mean s", "total s"], rows))
    lines += ["", "## Goals (issue 3)", ""]
    for goal in report["goals"]:
        lines.append(f"- {goal}")
    lines += ["", "Timings come from a shared machine: compare the two libraries within this run only."]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 seeds, Branin 25 / Hartmann-6 40 evaluations")
    parser.add_argument("--seeds", type=int, default=None, help="number of seeds (default 10, quick 3)")
    parser.add_argument("--problems", type=str, default="branin,hartmann6", help="comma-separated subset")
    parser.add_argument("--torch-python", type=str, default=str(bench.REPO_ROOT / ".venv-torch" / "bin" / "python"),
                        help="interpreter of the PyTorch environment (make torch-env)")
    parser.add_argument("--user-seeds", type=int, default=3,
                        help="seeds for the user-guided (ColaBO) rows, which are much slower per step (default 3)")
    parser.add_argument("--threads", type=int, default=1,
                        help="BLAS/OpenMP threads for both libraries (0: leave the environment alone)")
    parser.add_argument("--no-botorch", action="store_true", help="skip BoTorch")
    parser.add_argument("--results-dir", type=str, default=None, help="where to write bo.json / bo.md")
    args = parser.parse_args(argv)

    n_seeds = args.seeds or (3 if args.quick else 10)
    budget = QUICK_BUDGET if args.quick else FULL_BUDGET
    problems = [p.strip() for p in args.problems.split(",") if p.strip()]
    for p in problems:
        if p not in PROBLEMS:
            parser.error(f"--problems: unknown problem {p!r}; choose from {sorted(PROBLEMS)}")

    report = {"environment": bench.environment(["bayeskit", "jax", "jaxlib", "numpy", "scipy"]),
              "threads": {v: os.environ.get(v) for v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")},
              "mode": "quick" if args.quick else "full", "n_seeds": n_seeds, "problems": {}, "goals": []}
    server = None
    if not args.no_botorch:
        torch_python = Path(args.torch_python)
        if not torch_python.exists():
            bench.log(f"BoTorch skipped: no interpreter at {torch_python}. Build the PyTorch environment "
                      "with `make torch-env` (Python 3.11, CPU torch, BoTorch), or pass --torch-python PATH.")
        else:
            server = BoTorchServer(torch_python)
            report["botorch_info"] = server.info
            bench.log(f"BoTorch {server.info['botorch']} (torch {server.info['torch']}, "
                      f"{server.info['threads']} threads)")
    UserPrior, why_not = user_prior_support()
    if UserPrior is None:
        bench.log(f"user-guided rows skipped: {why_not}")

    summary: dict = {"quick": bool(args.quick), "n_seeds": n_seeds}
    try:
        for name in problems:
            f = PROBLEMS[name]()
            n_calls, n0 = budget[name], 2 * f.dim + 1
            runs: dict = {"bayeskit log-EI": [], "random search": []}
            if server is not None:
                runs["BoTorch LogEI"] = []
            priors = {}
            notes = []
            if UserPrior is not None and name == "branin":
                width = np.diff(np.asarray(f.bounds), axis=1)[:, 0]
                good, bad = np.asarray(f.optimizers[0]), misleading_centre(f)
                priors = {"bayeskit user-guided, accurate prior": UserPrior.normal(good, 0.1 * width),
                          "bayeskit user-guided, misleading prior": UserPrior.normal(bad, 0.1 * width)}
                notes.append(f"User priors: normal, std 10% of the box; accurate centred at {good.round(3).tolist()} "
                             f"(a true minimiser), misleading at {bad.round(3).tolist()} (farthest from all).")
                runs.update({k: [] for k in priors})
            elif name == "branin":
                notes.append(f"User-guided rows not run: {why_not}.")
            for seed in range(n_seeds):
                X0 = initial_design(f, seed)
                t0 = time.perf_counter()
                runs["bayeskit log-EI"].append(run_bayeskit(f, n_calls, seed, X0))
                t1 = time.perf_counter()
                if server is not None:
                    runs["BoTorch LogEI"].append(server.run(name, f, n_calls, seed, X0))
                t2 = time.perf_counter()
                runs["random search"].append(run_random(f, n_calls, seed, X0))
                if seed < args.user_seeds:
                    for label, prior in priors.items():
                        runs[label].append(run_bayeskit(f, n_calls, seed, X0, user_prior=prior))
                finals = {k: f"{regret_trace(v[-1]['y'], f.optimum)[-1]:.2e}" for k, v in runs.items() if v}
                bench.log(f"{name} seed {seed}: bayeskit {t1 - t0:.1f} s, BoTorch {t2 - t1:.1f} s; final regret {finals}")
            k = min(args.user_seeds, n_seeds)
            if priors and k > 0:
                same = [regret_trace(r["y"], f.optimum)[-1] for r in runs["bayeskit log-EI"][:k]]
                notes.append(f"The user-guided rows use the first {k} seeds (ColaBO steps are much slower); "
                             f"bayeskit log-EI without a prior on those seeds: median final regret "
                             f"{np.median(same):.3g}.")
            s = summarise(f, n0, n_calls, {k: v for k, v in runs.items() if v})
            s.update({"n_calls": n_calls, "n0": n0, "optimum": f.optimum, "notes": notes})
            report["problems"][name] = s
            for method, key in (("bayeskit log-EI", "bayeskit"), ("BoTorch LogEI", "botorch"),
                                ("random search", "random"),
                                ("bayeskit user-guided, accurate prior", "userprior_accurate"),
                                ("bayeskit user-guided, misleading prior", "userprior_misleading")):
                if method in s["methods"]:
                    m = s["methods"][method]
                    summary[f"regret_{key}_{name}"] = m["regret"][n_calls]["median"]
                    summary[f"log10_regret_{key}_{name}"] = m["log10_regret"][n_calls]["median"]
                    if key in ("bayeskit", "botorch"):
                        summary[f"sec_per_iter_{key}_{name}"] = m["sec_per_iter"]["median"]
            report["loadavg_end"] = bench.loadavg()
            # written after every problem, so a long run that is stopped keeps what it finished
            bench.write_results("bo", report, build_markdown(report), args.results_dir)
    finally:
        if server is not None:
            server.close()

    # overall figures and the goals
    for key in ("bayeskit", "botorch"):  # the median of the per-problem medians
        per_problem = [summary.get(f"sec_per_iter_{key}_{name}") for name in report["problems"]]
        per_problem = [v for v in per_problem if v is not None]
        summary[f"sec_per_iter_{key}"] = float(np.median(per_problem)) if per_problem else None
    if server is not None:
        for name in report["problems"]:
            a, b = summary[f"regret_bayeskit_{name}"], summary[f"regret_botorch_{name}"]
            verdict = "met" if a <= b else "not met"
            report["goals"].append(f"{name}: median final regret bayeskit {a:.3g} vs BoTorch {b:.3g}: {verdict}")
            ta, tb = summary[f"sec_per_iter_bayeskit_{name}"], summary[f"sec_per_iter_botorch_{name}"]
            report["goals"].append(f"{name}: median s/iteration bayeskit {ta:.3g} vs BoTorch {tb:.3g} "
                                   f"({tb / ta:.1f}x): {'met' if ta < tb else 'not met'}")
    else:
        report["goals"].append("BoTorch not run: goals not checked")
    report["loadavg_end"] = bench.loadavg()
    report["summary"] = summary
    json_path, md_path = bench.write_results("bo", report, build_markdown(report), args.results_dir)
    bench.log(f"wrote {json_path} and {md_path}")
    print(build_markdown(report))
    bench.print_result_line(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
