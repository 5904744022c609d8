"""The BoTorch side of ``benchmarks/bo.py``; runs in the PyTorch environment (``make torch-env``).

It is a small server: it reads one JSON job per line on stdin and writes one JSON result per line
on stdout (progress goes to stderr), so one process serves every seed and torch is imported once.
A job::

    {"problem": "branin" | "hartmann6", "seed": int, "n_calls": int,
     "X0": [[...], ...] (n0, d) initial design in the problem's box,
     "y0": [...] (n0,) bayeskit's values of the test function at X0}

The test functions are written again here in numpy (the formulas of the Virtual Library of
Simulation Experiments, as in ``bayeskit.bo.test_functions``) so this script does not import
bayeskit. Before it optimises, it evaluates its own formula at X0 and refuses the job (exit
status 3) if that disagrees with bayeskit's y0 by more than 1e-9 relative: both sides must
optimise the same function.

The loop is BoTorch's standard one for a noise-free minimisation (BoTorch maximises, so it sees
-f): inputs scaled to the unit cube, ``SingleTaskGP`` (its default Matern-5/2 ARD kernel with
priors and inferred noise) with an ``Standardize`` outcome transform, ``fit_gpytorch_mll``,
analytic ``LogExpectedImprovement`` with ``best_f`` the best observed value, and
``optimize_acqf(q=1, num_restarts=10, raw_samples=512)``. A result::

    {"problem", "seed", "X": (n_calls, d), "y": (n_calls,), "y0_check": max abs difference at X0,
     "sec_per_iter": [...] (one per BO iteration: fit + acquisition optimisation + evaluation)}

Run by itself: ``echo '{...}' | .venv-torch/bin/python benchmarks/_bo_botorch.py``.
"""

from __future__ import annotations

import json
import math
import sys
import time
import warnings

import numpy as np

# ---------------------------------------------------------------------------------------------
# test functions, numpy, minimisation (independent of bayeskit)
# ---------------------------------------------------------------------------------------------


def branin(X):
    x1, x2 = X[:, 0], X[:, 1]
    b, c, t = 5.1 / (4 * math.pi**2), 5.0 / math.pi, 1.0 / (8 * math.pi)
    return (x2 - b * x1**2 + c * x1 - 6.0) ** 2 + 10.0 * (1 - t) * np.cos(x1) + 10.0


_H6_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])
_H6_A = np.array([[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14],
                  [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]])
_H6_P = 1e-4 * np.array([[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
                         [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]])


def hartmann6(X):
    inner = np.sum(_H6_A[None] * (X[:, None, :] - _H6_P[None]) ** 2, axis=-1)
    return -np.sum(_H6_ALPHA * np.exp(-inner), axis=-1)


PROBLEMS = {
    "branin": (branin, np.array([[-5.0, 10.0], [0.0, 15.0]])),
    "hartmann6": (hartmann6, np.array([[0.0, 1.0]] * 6)),
}


def log(*args):
    print(*args, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# the BoTorch loop
# ---------------------------------------------------------------------------------------------
def run_job(job: dict) -> dict:
    import torch
    from botorch.acquisition.analytic import LogExpectedImprovement
    from botorch.fit import fit_gpytorch_mll
    from botorch.models import SingleTaskGP
    from botorch.models.transforms.outcome import Standardize
    from botorch.optim import optimize_acqf
    from gpytorch.mlls import ExactMarginalLogLikelihood

    f, box = PROBLEMS[job["problem"]]
    lo, hi = box[:, 0], box[:, 1]
    d = box.shape[0]
    X0 = np.asarray(job["X0"], dtype=np.float64).reshape(-1, d)
    y0_bk = np.asarray(job["y0"], dtype=np.float64)
    y0 = f(X0)
    diff = float(np.max(np.abs(y0 - y0_bk)))
    if not np.allclose(y0, y0_bk, rtol=1e-9, atol=1e-9):
        log(f"_bo_botorch: {job['problem']} disagrees with bayeskit at the initial points: "
            f"max |difference| = {diff:.3e}\nours: {y0.tolist()}\nbayeskit: {y0_bk.tolist()}")
        sys.exit(3)

    torch.manual_seed(int(job["seed"]))
    dtype = torch.float64
    unit_bounds = torch.stack([torch.zeros(d, dtype=dtype), torch.ones(d, dtype=dtype)])
    U = torch.tensor((X0 - lo) / (hi - lo), dtype=dtype)
    Y = torch.tensor(-y0, dtype=dtype).unsqueeze(-1)  # BoTorch maximises
    times = []
    for _ in range(int(job["n_calls"]) - X0.shape[0]):
        t0 = time.perf_counter()
        model = SingleTaskGP(U, Y, outcome_transform=Standardize(m=1))
        mll = ExactMarginalLogLikelihood(model.likelihood, model)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # fit / optimisation warnings are part of normal use
            fit_gpytorch_mll(mll)
            acqf = LogExpectedImprovement(model, best_f=Y.max())
            cand, _ = optimize_acqf(acqf, bounds=unit_bounds, q=1, num_restarts=10, raw_samples=512)
        u = cand.detach().clamp(0.0, 1.0)
        x = lo + u.numpy()[0] * (hi - lo)
        y = float(f(x[None, :])[0])
        U = torch.cat([U, u])
        Y = torch.cat([Y, torch.tensor([[-y]], dtype=dtype)])
        times.append(time.perf_counter() - t0)
    X = lo + U.numpy() * (hi - lo)
    return {"problem": job["problem"], "seed": job["seed"], "X": X.tolist(), "y": (-Y[:, 0]).tolist(),
            "y0_check": diff, "sec_per_iter": times}


def main() -> int:
    import botorch
    import torch

    log(f"_bo_botorch: torch {torch.__version__}, botorch {botorch.__version__}, "
        f"{torch.get_num_threads()} threads")
    print(json.dumps({"ready": True, "torch": torch.__version__, "botorch": botorch.__version__,
                      "threads": torch.get_num_threads()}), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        result = run_job(json.loads(line))
        print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
