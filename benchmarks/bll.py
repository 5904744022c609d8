#!/usr/bin/env python
"""Variational Bayesian last layers: cost against width, speed against ``vbll``, NLL and OOD against MAP.

    .venv/bin/python benchmarks/bll.py            # full
    .venv/bin/python benchmarks/bll.py --quick    # a few minutes on 2 loaded cores

Three parts (*Variational Bayesian Last Layers*, Harrison, Willes, Snoek):

(a) Cost against last-layer width d in {256, 512, 1024, 2048}: one training step of the dense
    VBLL regression head (value and gradient of its objective on a batch of fixed features)
    and one evaluation (predictive mean and variance), float32. Reported two ways: the FLOP
    count XLA assigns to the compiled program (``jax.jit(...).lower(...).compile()
    .cost_analysis()``, independent of machine load) and the wall-clock minimum of several
    runs. ``width_slope`` is the least-squares slope of log(FLOPs of a training step) against
    log(d): about 2 for a dense covariance (phi^T S phi costs n d^2).
(b) Epoch time against the ``vbll`` PyTorch package on identical data and architecture
    (1-D regression, n = 1024, an ELU MLP of width 64 and depth 2, dense VBLL regression head,
    batch 32, AdamW, float32). The torch side runs in a subprocess with
    ``.venv-torch/bin/python``; both sides exclude compilation / first-epoch warm-up and report
    the minimum and median epoch time over several epochs.
(c) NLL and out-of-distribution AUROC, VBLL against a MAP last layer on the same feature
    network and data (:mod:`bayeskit.bll.datasets`): the 1-D regression with a gap (test NLL on
    the whole test grid: inside the data, the gap and the tails; OOD = gap and tails, scored by
    predictive variance) and two moons with far-away probes (scored by predictive entropy for
    MAP and discriminative VBLL, by the negative feature density for generative VBLL). MAP is
    :class:`bayeskit.bll.baselines.MAPLastLayer` when that module provides it, else a minimal
    MAP network defined here (stated in the results).

It also recomputes the maximal absolute difference between bayeskit and the ``vbll`` package
on the committed fixture (``tests/bll/fixtures/vbll_reference.npz``): losses and predictives.

Timings on a shared 2-core machine are noisy; the FLOP counts are not. Writes
``benchmarks/results/bll.json`` and ``.md``; the last stdout line is ``RESULT {json}``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from _common import (  # noqa: E402
    REPO_ROOT,
    environment,
    log,
    markdown_table,
    print_result_line,
    ratio,
    summarize,
    time_call,
    write_results,
)
from flax import nnx  # noqa: E402

import bayeskit  # noqa: E402, F401
from bayeskit.bll import metrics as bll_metrics  # noqa: E402
from bayeskit.bll.features import MLPFeatures  # noqa: E402
from bayeskit.bll.train import train_vbll  # noqa: E402
from bayeskit.bll.vbll import (  # noqa: E402
    VBLLDiscClassification,
    VBLLGenClassification,
    VBLLModel,
    VBLLRegression,
    VBLLStudentTRegression,
    predictive_entropy,
)

WIDTHS = (256, 512, 1024, 2048)
TORCH_PY = REPO_ROOT / ".venv-torch" / "bin" / "python"


# ---------------------------------------------------------------------------------------------
# (a) cost against width
# ---------------------------------------------------------------------------------------------
def _flops(compiled) -> float:
    ca = compiled.cost_analysis()
    ca = ca[0] if isinstance(ca, (list, tuple)) else ca
    return float(ca.get("flops", float("nan"))) if ca else float("nan")


def _width_row(d: int, batch: int, repeats: int) -> dict:
    """FLOPs (and times) of one training step and one evaluation of a dense head of width d."""
    head = VBLLRegression(d, 1, regularization_weight=1e-3, rngs=nnx.Rngs(0))
    graphdef, params = nnx.split(head, nnx.Param)
    phi = jax.random.normal(jax.random.key(d), (batch, d), dtype=jnp.float32)
    y = jax.random.normal(jax.random.key(d + 1), (batch, 1), dtype=jnp.float32)

    def train_step(p, phi, y):
        return jax.value_and_grad(lambda q: nnx.merge(graphdef, q).loss(phi, y))(p)

    def evaluate(p, phi):
        return nnx.merge(graphdef, p).predict(phi)

    train_c = jax.jit(train_step).lower(params, phi, y).compile()
    eval_c = jax.jit(evaluate).lower(params, phi).compile()
    row = {"width": d, "batch": batch, "train_flops": _flops(train_c), "eval_flops": _flops(eval_c)}
    if repeats > 0:
        row["train_time"] = time_call(lambda: jax.block_until_ready(train_c(params, phi, y)), repeats=repeats)
        row["eval_time"] = time_call(lambda: jax.block_until_ready(eval_c(params, phi)), repeats=repeats)
    return row


def width_scaling(widths, batch: int, repeats: int):
    rows = []
    for d in widths:
        row = _width_row(d, batch, repeats)
        rows.append(row)
        log(f"  width {d}: train {row['train_flops']:.3g} flop, eval {row['eval_flops']:.3g} flop"
            + (f", train {row['train_time']['min'] * 1e3:.2f} ms" if repeats else ""))

    def slope(key, sub=None):
        xs, ys = [], []
        for r in rows:
            v = r.get(key)
            v = v[sub] if (sub and v is not None) else v
            if v is not None and np.isfinite(v) and v > 0:
                xs.append(math.log(r["width"]))
                ys.append(math.log(v))
        return float(np.polyfit(xs, ys, 1)[0]) if len(xs) >= 2 else None

    slopes = {"train_flops": slope("train_flops"), "eval_flops": slope("eval_flops")}
    if repeats > 0:
        slopes["train_time_min"] = slope("train_time", "min")
        slopes["eval_time_min"] = slope("eval_time", "min")
    return rows, slopes


# ---------------------------------------------------------------------------------------------
# (b) epoch time against the vbll package
# ---------------------------------------------------------------------------------------------
EPOCH_N, EPOCH_WIDTH, EPOCH_DEPTH, EPOCH_BATCH, EPOCH_LR = 1024, 64, 2, 32, 1e-3

TORCH_SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    import numpy as np, torch, vbll
    torch.set_num_threads(int(sys.argv[2]))
    data = np.load(sys.argv[1])
    x = torch.tensor(data["x"], dtype=torch.float32); y = torch.tensor(data["y"], dtype=torch.float32)
    n, width, depth, batch, lr, epochs = (int(data["n"]), int(data["width"]), int(data["depth"]),
                                          int(data["batch"]), float(data["lr"]), int(data["epochs"]))
    torch.manual_seed(0)
    layers, d_in = [], x.shape[1]
    for _ in range(depth):
        layers += [torch.nn.Linear(d_in, width), torch.nn.ELU()]
        d_in = width
    features = torch.nn.Sequential(*layers)
    head = vbll.Regression(width, 1, 1.0 / n, parameterization="dense")
    opt = torch.optim.AdamW([{"params": features.parameters(), "weight_decay": 1e-4},
                             {"params": head.parameters(), "weight_decay": 0.0}], lr=lr)
    times, losses = [], []
    for epoch in range(epochs + 1):
        t0 = time.perf_counter()
        perm = torch.randperm(n)
        total = 0.0
        for b in range(n // batch):
            idx = perm[b * batch:(b + 1) * batch]
            opt.zero_grad()
            loss = head(features(x[idx])).train_loss_fn(y[idx])
            loss.backward()
            opt.step()
            total += float(loss)
        times.append(time.perf_counter() - t0)
        losses.append(total / (n // batch))
    from importlib.metadata import version
    print(json.dumps({"epoch_times": times[1:], "final_loss": losses[-1], "torch": torch.__version__,
                      "vbll": version("vbll")}))
    """
)


def epoch_time_vs_vbll(epochs: int, threads: int):
    rng = np.random.default_rng(0)
    x = rng.uniform(-3, 3, (EPOCH_N, 1)).astype(np.float32)
    y = (np.sin(2 * x) + 0.1 * rng.normal(size=(EPOCH_N, 1))).astype(np.float32)
    out: dict = {"n": EPOCH_N, "width": EPOCH_WIDTH, "depth": EPOCH_DEPTH, "batch": EPOCH_BATCH,
                 "steps_per_epoch": EPOCH_N // EPOCH_BATCH, "epochs_timed": epochs}

    model = VBLLModel(MLPFeatures(1, EPOCH_WIDTH, EPOCH_DEPTH, nnx.Rngs(0)),
                      VBLLRegression(EPOCH_WIDTH, 1, regularization_weight=1.0 / EPOCH_N, rngs=nnx.Rngs(1)))
    kw = dict(batch_size=EPOCH_BATCH, learning_rate=EPOCH_LR, weight_decay=1e-4, progress=False)
    t0 = time.perf_counter()
    train_vbll(model, x, y, epochs=1, key=0, **kw)  # compiles the epoch
    out["bayeskit_first_epoch_s"] = time.perf_counter() - t0
    times, hist = [], None
    for e in range(epochs):
        t0 = time.perf_counter()
        hist = train_vbll(model, x, y, epochs=1, key=e + 1, **kw)
        times.append(time.perf_counter() - t0)
    out["bayeskit"] = summarize(times)
    out["bayeskit_final_loss"] = float(hist["loss"][-1])

    if not TORCH_PY.exists():
        out["vbll_package"] = None
        out["vbll_note"] = "no .venv-torch (run make torch-env)"
        return out
    with tempfile.TemporaryDirectory() as tmp:
        np.savez(Path(tmp) / "data.npz", x=x, y=y, n=EPOCH_N, width=EPOCH_WIDTH, depth=EPOCH_DEPTH,
                 batch=EPOCH_BATCH, lr=EPOCH_LR, epochs=epochs)
        script = Path(tmp) / "run_vbll.py"
        script.write_text(TORCH_SCRIPT)
        env = dict(os.environ, OMP_NUM_THREADS=str(threads))
        proc = subprocess.run([str(TORCH_PY), str(script), str(Path(tmp) / "data.npz"), str(threads)],
                              capture_output=True, text=True, timeout=1800, env=env)
    if proc.returncode != 0:
        out["vbll_package"] = None
        out["vbll_note"] = proc.stderr[-2000:]
        return out
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    out["vbll_package"] = summarize(res["epoch_times"])
    out["vbll_final_loss"] = res["final_loss"]
    out["torch_version"] = res["torch"]
    out["vbll_version"] = res["vbll"]
    out["speedup_vs_vbll_median"] = ratio(out["vbll_package"]["median"], out["bayeskit"]["median"])
    return out


# ---------------------------------------------------------------------------------------------
# (c) NLL and OOD against MAP
# ---------------------------------------------------------------------------------------------
class _MAPNet(nnx.Module):
    """Minimal MAP baseline (used only when bayeskit.bll.baselines has no MAPLastLayer):
    the same feature network, a linear last layer with a N(0, s I) prior, learned noise."""

    def __init__(self, in_dim, out_dim, width, depth, n, task, rngs, prior_variance=1.0):
        self.features = MLPFeatures(in_dim, width, depth, rngs)
        self.head = nnx.Linear(width, out_dim, dtype=jnp.float32, param_dtype=jnp.float32, rngs=rngs)
        self.log_noise = nnx.Param(jnp.zeros((), jnp.float32))
        self.task, self.n, self.prior_variance = task, n, prior_variance

    def __call__(self, x):
        return self.head(self.features(x))

    def loss(self, x, y):
        out = self(x)
        if self.task == "regression":
            var = jnp.exp(2 * self.log_noise[...])
            nll = jnp.mean(0.5 * (jnp.log(2 * jnp.pi * var) + (y - out[:, 0]) ** 2 / var))
        else:
            nll = -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(out), y[:, None], axis=-1))
        prior = 0.5 * jnp.sum(self.head.kernel[...] ** 2) / self.prior_variance
        return nll + prior / self.n


def _map_model(task, in_dim, out_dim, width, depth, x, y, epochs, seed):
    """(predict_fn, description) for a MAP last layer: the other helper's if available."""
    try:
        from bayeskit.bll.baselines import MAPLastLayer, make_baseline  # noqa: F401

        model = make_baseline("map", task, width=width, depth=depth)
        model.fit(x, y, jax.random.key(seed))
        return model.predict, "bayeskit.bll.baselines.MAPLastLayer"
    except Exception as exc:  # the baselines module is being written in parallel
        log(f"  (MAP from bayeskit.bll.baselines unavailable: {type(exc).__name__}: {exc}); using the minimal MAP")
    net = _MAPNet(in_dim, out_dim, width, depth, len(x), task, nnx.Rngs(seed))
    train_vbll(net, x.astype(np.float32), y.astype(np.float32) if task == "regression" else y, epochs=epochs,
               batch_size=32, learning_rate=3e-3, key=seed, weight_decay=1e-4, progress=False)

    def predict(xs):
        out = np.asarray(net(jnp.asarray(xs, jnp.float32)), dtype=np.float64)
        if task == "regression":
            return out[:, 0], np.full(len(xs), float(np.exp(2 * net.log_noise[...])))
        return np.asarray(jax.nn.softmax(out))

    return predict, "minimal MAP network in benchmarks/bll.py"


def _predict_arrays(pred, task):
    """Normalise the other helper's predictive tuples and our own to arrays."""
    if task == "regression":
        if hasattr(pred, "mean"):
            return np.asarray(pred.mean, np.float64).ravel(), np.asarray(pred.variance, np.float64).ravel()
        return np.asarray(pred[0], np.float64).ravel(), np.asarray(pred[1], np.float64).ravel()
    return np.asarray(getattr(pred, "probs", pred), np.float64)


def nll_and_ood(width, depth, epochs, seed=0):
    from bayeskit.bll.datasets import GAP, IN_DISTRIBUTION, TAILS, gap_regression, two_moons

    res: dict = {"width": width, "depth": depth, "epochs": epochs}
    # ---- regression with a gap
    reg = gap_regression(n_train=160, n_test=400, seed=seed)
    x, y = reg.x_train, reg.y_train
    n = len(x)
    vb = VBLLModel(MLPFeatures(1, width, depth, nnx.Rngs(seed)),
                   VBLLRegression(width, 1, regularization_weight=1.0 / n, rngs=nnx.Rngs(seed + 1)))
    train_vbll(vb, x.astype(np.float32), y.astype(np.float32), epochs=epochs, batch_size=32,
               learning_rate=3e-3, key=seed, weight_decay=1e-4, progress=False)
    mean, var = vb.head.predict(vb.head_inputs(reg.x_test))
    mean_v, var_v = np.asarray(mean, np.float64)[:, 0], np.asarray(var, np.float64)[:, 0]
    map_predict, map_source = _map_model("regression", 1, 1, width, depth, x, y, epochs, seed)
    mean_m, var_m = _predict_arrays(map_predict(reg.x_test), "regression")
    ood = np.isin(reg.region, (GAP, TAILS))
    ind = reg.region == IN_DISTRIBUTION
    res["regression"] = {
        "map_source": map_source,
        "nll_vbll": bll_metrics.gaussian_nll(reg.y_test, mean_v, var_v),
        "nll_map": bll_metrics.gaussian_nll(reg.y_test, mean_m, var_m),
        "nll_in_distribution_vbll": bll_metrics.gaussian_nll(reg.y_test[ind], mean_v[ind], var_v[ind]),
        "nll_in_distribution_map": bll_metrics.gaussian_nll(reg.y_test[ind], mean_m[ind], var_m[ind]),
        "ood_auroc_vbll": bll_metrics.ood_auroc(var_v[ind], var_v[ood]),
        "ood_auroc_map": bll_metrics.ood_auroc(var_m[ind], var_m[ood]),
    }
    # ---- two moons with far-away probes
    cls = two_moons(n_train=400, n_test=500, n_ood=300, seed=seed)
    x, y = cls.x_train, cls.y_train
    n = len(x)
    out: dict = {}
    for name, head in (
        ("disc", VBLLDiscClassification(width, 2, regularization_weight=1.0 / n, rngs=nnx.Rngs(seed + 1))),
        ("gen", VBLLGenClassification(width, 2, regularization_weight=1.0 / n, rngs=nnx.Rngs(seed + 1))),
    ):
        model = VBLLModel(MLPFeatures(2, width, depth, nnx.Rngs(seed)), head)
        train_vbll(model, x.astype(np.float32), y, epochs=epochs, batch_size=32, learning_rate=3e-3,
                   key=seed, weight_decay=1e-4, progress=False)
        phi_t, phi_o = model.head_inputs(cls.x_test), model.head_inputs(cls.x_ood)
        if name == "disc":
            probs_t = np.asarray(head.predict_proba(phi_t, key=1, num_samples=200), np.float64)
            probs_o = np.asarray(head.predict_proba(phi_o, key=2, num_samples=200), np.float64)
            score_t, score_o = predictive_entropy(probs_t), predictive_entropy(probs_o)
        else:
            probs_t = np.asarray(head.predict_proba(phi_t), np.float64)
            score_t = -np.asarray(head.log_feature_density(phi_t), np.float64)
            score_o = -np.asarray(head.log_feature_density(phi_o), np.float64)
        out[f"accuracy_vbll_{name}"] = bll_metrics.accuracy(cls.y_test, probs_t)
        out[f"nll_vbll_{name}"] = bll_metrics.categorical_nll(cls.y_test, probs_t)
        out[f"ece_vbll_{name}"] = bll_metrics.expected_calibration_error(cls.y_test, probs_t)
        out[f"ood_auroc_vbll_{name}"] = bll_metrics.ood_auroc(np.asarray(score_t), np.asarray(score_o))
    map_predict, map_source = _map_model("classification", 2, 2, width, depth, x, y, epochs, seed)
    probs_t = _predict_arrays(map_predict(cls.x_test), "classification")
    probs_o = _predict_arrays(map_predict(cls.x_ood), "classification")
    out["map_source"] = map_source
    out["accuracy_map"] = bll_metrics.accuracy(cls.y_test, probs_t)
    out["nll_map"] = bll_metrics.categorical_nll(cls.y_test, probs_t)
    out["ece_map"] = bll_metrics.expected_calibration_error(cls.y_test, probs_t)
    out["ood_auroc_map"] = bll_metrics.ood_auroc(bll_metrics.predictive_entropy(probs_t),
                                                 bll_metrics.predictive_entropy(probs_o))
    res["classification"] = out
    return res


# ---------------------------------------------------------------------------------------------
# agreement with the vbll package (the committed fixture)
# ---------------------------------------------------------------------------------------------
def max_diff_vs_vbll_package() -> float:
    sys.path.insert(0, str(REPO_ROOT / "tests" / "bll"))
    import test_vbll_reference as ref  # the mapping lives with the test

    data, meta = ref.load_fixture()
    x, lam = data["x"], float(data["reg_weight"])
    d = x.shape[1]
    diffs = []
    for case in meta["cases"]:
        par = case.split("_", 1)[1]
        rank = 2 if par == "lowrank" else None
        if case.startswith("treg"):
            k = int(case[4])
            y = data[f"y_reg{k}"]
            prior_scale, wishart_scale, dof = data[f"{case}/hyper"]
            head = ref._load(VBLLStudentTRegression(d, k, regularization_weight=lam, parameterization=par,
                                                    cov_rank=rank, prior_scale=prior_scale, noise_prior_shape=dof,
                                                    noise_prior_rate=1.0 / wishart_scale, rngs=nnx.Rngs(0),
                                                    dtype=jnp.float64), data, case)
            _, loc, scale = head.predict(x)
            expected = float(data[f"{case}/train_loss"]) + 0.5 * k * np.log(2 * np.pi) - lam * 0.5 * d * k
            diffs += [np.abs(loc - data[f"{case}/pred_loc"]).max(), np.abs(scale - data[f"{case}/pred_scale"]).max(),
                      abs(float(head.nll(x, y)) - float(data[f"{case}/val_loss"])), abs(float(head.loss(x, y)) - expected)]
        elif case.startswith("reg"):
            k = int(case[3])
            y = data[f"y_reg{k}"]
            head = ref._load(VBLLRegression(d, k, regularization_weight=lam, parameterization=par, cov_rank=rank,
                                            rngs=nnx.Rngs(0), dtype=jnp.float64, **ref._hyper(data, case)), data, case)
            mean, var = head.predict(x)
            diffs += [np.abs(mean - data[f"{case}/pred_mean"]).max(), np.abs(var - data[f"{case}/pred_var"]).max(),
                      abs(float(head.nll(x, y)) - float(data[f"{case}/val_loss"]))]
            if k == 1:
                diffs.append(abs(float(head.loss(x, y)) - (float(data[f"{case}/train_loss"]) - lam * 0.5 * d * k)))
        elif case.startswith("disc"):
            y, c = data["y_cls"], meta["sizes"]["num_classes"]
            head = ref._load(VBLLDiscClassification(d, c, regularization_weight=lam, parameterization=par,
                                                    cov_rank=rank, rngs=nnx.Rngs(0), dtype=jnp.float64,
                                                    **ref._hyper(data, case)), data, case)
            probs = head.predict_proba_from_draws(x, data["mc_eps"])
            diffs += [np.abs(probs - data[f"{case}/mc_probs"]).max(),
                      abs(float(head.loss(x, y)) - (float(data[f"{case}/train_loss"]) - lam * 0.5 * d * c))]
        else:
            y, c = data["y_cls"], meta["sizes"]["num_classes"]
            head = ref._load(VBLLGenClassification(d, c, regularization_weight=lam, rngs=nnx.Rngs(0),
                                                   dtype=jnp.float64, **ref._hyper(data, case)), data, case)
            diffs += [np.abs(head.predict_proba(x) - data[f"{case}/probs"]).max(),
                      abs(float(head.loss(x, y)) - (float(data[f"{case}/train_loss"]) - lam * 0.5 * d * c))]
    return float(max(diffs))


# ---------------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats and epochs")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for the vbll side")
    args = parser.parse_args()
    quick = args.quick
    env = environment(["jax", "flax", "optax", "numpy"])
    log("(a) cost against width")
    rows, slopes = width_scaling(WIDTHS, batch=128 if quick else 256, repeats=3 if quick else 7)
    log(f"    slopes {slopes}")
    log("(b) epoch time against the vbll package")
    epochs = epoch_time_vs_vbll(epochs=3 if quick else 10, threads=args.threads)
    log("(c) NLL and OOD against MAP")
    quality = nll_and_ood(width=64, depth=2, epochs=150 if quick else 400)
    log("agreement with the vbll package")
    max_diff = max_diff_vs_vbll_package()

    payload = {"environment": env, "quick": quick, "loadavg_at_end": os.getloadavg(),
               "width_scaling": {"rows": rows, "slopes": slopes}, "epoch_time": epochs, "quality": quality,
               "max_abs_diff_vs_vbll_package": max_diff}
    md = ["# Variational Bayesian last layers", "",
          f"Run {env['timestamp']} ({'quick' if quick else 'full'}), load average at start "
          f"{env['loadavg_at_start']} on {env['cpu_count']} cores: timings are noisy, FLOP counts are not.", "",
          "## (a) Dense VBLL regression head: cost against width (float32)", "",
          markdown_table(["width d", "train-step FLOPs", "eval FLOPs", "train step min (ms)", "eval min (ms)"],
                         [[r["width"], r["train_flops"], r["eval_flops"],
                           r["train_time"]["min"] * 1e3 if "train_time" in r else None,
                           r["eval_time"]["min"] * 1e3 if "eval_time" in r else None] for r in rows]), "",
          "log-log slopes: " + ", ".join(f"{k} {v:.2f}" for k, v in slopes.items() if v is not None), "",
          "## (b) Epoch time against the vbll package (n = 1024, width 64, batch 32)", "",
          markdown_table(["implementation", "epoch min (s)", "epoch median (s)"],
                         [["bayeskit (jitted scan)", epochs["bayeskit"]["min"], epochs["bayeskit"]["median"]],
                          [f"vbll {epochs.get('vbll_version') or '?'} (torch {epochs.get('torch_version') or '?'}, {args.threads} thread)",
                           (epochs.get("vbll_package") or {}).get("min"),
                           (epochs.get("vbll_package") or {}).get("median")]]), "",
          f"first bayeskit epoch including compilation: {epochs['bayeskit_first_epoch_s']:.2f} s", "",
          "## (c) NLL and OOD AUROC against a MAP last layer", "",
          markdown_table(["task", "metric", "VBLL", "MAP"],
                         [["gap regression", "test NLL (all regions)", quality["regression"]["nll_vbll"],
                           quality["regression"]["nll_map"]],
                          ["gap regression", "NLL in distribution", quality["regression"]["nll_in_distribution_vbll"],
                           quality["regression"]["nll_in_distribution_map"]],
                          ["gap regression", "OOD AUROC (variance; gap+tails)", quality["regression"]["ood_auroc_vbll"],
                           quality["regression"]["ood_auroc_map"]],
                          ["two moons", "test NLL (D-VBLL)", quality["classification"]["nll_vbll_disc"],
                           quality["classification"]["nll_map"]],
                          ["two moons", "ECE (D-VBLL)", quality["classification"]["ece_vbll_disc"],
                           quality["classification"]["ece_map"]],
                          ["two moons", "OOD AUROC, D-VBLL entropy", quality["classification"]["ood_auroc_vbll_disc"],
                           quality["classification"]["ood_auroc_map"]],
                          ["two moons", "OOD AUROC, G-VBLL feature density",
                           quality["classification"]["ood_auroc_vbll_gen"], quality["classification"]["ood_auroc_map"]]]),
          "", f"MAP: {quality['regression']['map_source']}", "",
          f"max |bayeskit - vbll package| on the fixture (losses, predictives, float64): {max_diff:.2e}"]
    write_results("bll", payload, "\n".join(md))
    print_result_line({
        "width_slope": slopes["train_flops"],
        "width_slope_time": slopes.get("train_time_min"),
        "nll_vbll": quality["regression"]["nll_vbll"],
        "nll_map": quality["regression"]["nll_map"],
        "ood_auroc_vbll": quality["classification"]["ood_auroc_vbll_disc"],
        "ood_auroc_vbll_gen": quality["classification"]["ood_auroc_vbll_gen"],
        "ood_auroc_map": quality["classification"]["ood_auroc_map"],
        "epoch_speedup_vs_vbll": epochs.get("speedup_vs_vbll_median"),
        "max_abs_diff_vs_vbll_package": max_diff,
    })


if __name__ == "__main__":
    main()
