#!/usr/bin/env python
"""Write the ``vbll`` reference fixture used by ``tests/bll/test_vbll_reference.py``.

    .venv-torch/bin/python benchmarks/make_vbll_fixture.py

Runs with the PyTorch comparison environment (``make torch-env``: torch + vbll 0.4.9), never
with bayeskit. It builds the ``vbll`` package's ``Regression``, ``tRegression``, ``DiscClassification`` and
``GenClassification`` layers in float64 with fixed seeds, moves their parameters to
non-trivial values (so that every term of the objective matters: off-diagonal covariance
factors well away from zero, noise scales away from 1), and records

* every parameter (``<case>/param/<name>``) and the layer's hyperparameters;
* fixed feature inputs ``x`` (n, d) and targets ``y``;
* for ``tRegression`` (Student-t predictive), the predictive's df, location and scale;
* the training objective (``train_loss_fn(y)``) and validation loss (``val_loss_fn(y)``);
* the predictive: regression mean/variance; discriminative classification: the logit
  predictive mean/variance, the 20-draw Monte-Carlo predictive together with the exact
  standard-normal draws ``vbll`` used (re-drawn here from the same seed and checked), and
  ``max_predictive``; generative classification: the predictive probabilities.

Output: ``tests/bll/fixtures/vbll_reference.npz`` (a few KB) and ``vbll_reference.json``
beside it (versions, the command line, and the case list).
"""

from __future__ import annotations

import json
import shlex
import sys
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch
import vbll
from torch.distributions.utils import _standard_normal

OUT_DIR = Path(__file__).resolve().parent.parent / "tests" / "bll" / "fixtures"
N, D, C = 6, 4, 3
REG_WEIGHT = 0.2
MC_SAMPLES = 20


def _perturb(layer: torch.nn.Module, gen: torch.Generator) -> None:
    """Move parameters away from their (near-degenerate) initial values, reproducibly."""
    with torch.no_grad():
        for name, p in sorted(layer.named_parameters()):
            if name == "noise_mean":
                continue
            if name.endswith("offdiag"):
                p.copy_(0.3 * torch.randn(p.shape, generator=gen))
            elif name.endswith("logdiag"):
                p.copy_(-0.3 + 0.2 * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(0.7 * torch.randn(p.shape, generator=gen))


def _params(layer) -> dict[str, np.ndarray]:
    return {name: p.detach().numpy().copy() for name, p in layer.named_parameters() if name != "noise_mean"}


def main() -> None:
    torch.set_default_dtype(torch.float64)
    gen = torch.Generator().manual_seed(20240101)
    x = torch.randn(N, D, generator=gen)
    out: dict[str, np.ndarray] = {"x": x.numpy().copy(), "reg_weight": np.array(REG_WEIGHT)}
    cases: list[str] = []

    # ---- regression: one output (objective and predictive), two outputs (predictive only) ----
    y1 = torch.randn(N, 1, generator=gen)
    y2 = torch.randn(N, 2, generator=gen)
    out["y_reg1"], out["y_reg2"] = y1.numpy().copy(), y2.numpy().copy()
    for k, y in ((1, y1), (2, y2)):
        for par in ("dense", "diagonal", "lowrank"):
            torch.manual_seed(1)
            kw = dict(parameterization=par, prior_scale=1.7, wishart_scale=0.3, dof=2.5)
            if par == "lowrank":
                kw["cov_rank"] = 2
            layer = vbll.Regression(D, k, REG_WEIGHT, **kw)
            _perturb(layer, gen)
            case = f"reg{k}_{par}"
            cases.append(case)
            for name, v in _params(layer).items():
                out[f"{case}/param/{name}"] = v
            ret = layer(x)
            out[f"{case}/train_loss"] = ret.train_loss_fn(y).detach().numpy()
            out[f"{case}/val_loss"] = ret.val_loss_fn(y).detach().numpy()
            out[f"{case}/pred_mean"] = ret.predictive.mean.detach().numpy()
            out[f"{case}/pred_var"] = ret.predictive.var.detach().numpy()
            out[f"{case}/hyper"] = np.array([1.7, 0.3, 2.5])

    # ---- Student-t regression (variational Gamma noise): objective and predictive, 1 and 2 outputs ----
    for k, y in ((1, y1), (2, y2)):
        for par in ("dense", "diagonal", "lowrank"):
            torch.manual_seed(5)
            kw = dict(parameterization=par, prior_scale=1.2, wishart_scale=4.0, dof=1.5)
            if par == "lowrank":
                kw["cov_rank"] = 2
            layer = vbll.tRegression(D, k, REG_WEIGHT, **kw)
            _perturb(layer, gen)
            case = f"treg{k}_{par}"
            cases.append(case)
            for name, v in _params(layer).items():
                out[f"{case}/param/{name}"] = v
            out[f"{case}/hyper"] = np.array([1.2, 4.0, 1.5])
            ret = layer(x)
            out[f"{case}/train_loss"] = ret.train_loss_fn(y).detach().numpy()
            out[f"{case}/val_loss"] = ret.val_loss_fn(y).detach().numpy()
            out[f"{case}/pred_df"] = ret.predictive.df.detach().numpy()
            out[f"{case}/pred_loc"] = ret.predictive.loc.detach().numpy()
            out[f"{case}/pred_scale"] = ret.predictive.scale.detach().numpy()

    # ---- discriminative classification ---------------------------------------------------------
    labels = torch.tensor([0, 1, 2, 2, 1, 0])
    out["y_cls"] = labels.numpy().copy()
    for par in ("dense", "diagonal", "lowrank"):
        torch.manual_seed(2)
        kw = dict(parameterization=par, prior_scale=0.8, wishart_scale=0.5, dof=1.5)
        if par == "lowrank":
            kw["cov_rank"] = 2
        layer = vbll.DiscClassification(D, C, REG_WEIGHT, return_ood=True, **kw)
        _perturb(layer, gen)
        case = f"disc_{par}"
        cases.append(case)
        for name, v in _params(layer).items():
            out[f"{case}/param/{name}"] = v
        out[f"{case}/hyper"] = np.array([0.8, 0.5, 1.5])
        ret = layer(x)
        out[f"{case}/train_loss"] = ret.train_loss_fn(labels).detach().numpy()
        logit = layer.logit_predictive(x)
        out[f"{case}/logit_mean"] = logit.mean.detach().numpy()
        out[f"{case}/logit_var"] = logit.var.detach().numpy()
        # the Monte-Carlo predictive, and the standard-normal draws behind it
        torch.manual_seed(3)
        probs = layer.predictive(x, n_samples=MC_SAMPLES)
        torch.manual_seed(3)
        eps = _standard_normal((MC_SAMPLES, N, C), dtype=torch.float64, device="cpu")
        check = torch.softmax(logit.mean + eps * logit.scale, dim=-1).mean(0)
        assert torch.allclose(check, probs, atol=1e-14), "could not reproduce vbll's Monte-Carlo draws"
        if "mc_eps" in out:  # the same seed gives the same draws for every case: store them once
            assert np.array_equal(out["mc_eps"], eps.numpy())
        out["mc_eps"] = eps.numpy().copy()
        out[f"{case}/mc_probs"] = probs.detach().numpy()
        out[f"{case}/max_prob"] = probs.max(-1)[0].detach().numpy()

    # ---- generative classification (diagonal only in vbll) ---------------------------------------
    torch.manual_seed(4)
    layer = vbll.GenClassification(D, C, REG_WEIGHT, parameterization="diagonal", prior_scale=1.3,
                                   wishart_scale=0.6, dof=2.0)
    _perturb(layer, gen)
    case = "gen_diagonal"
    cases.append(case)
    for name, v in _params(layer).items():
        out[f"{case}/param/{name}"] = v
    out[f"{case}/hyper"] = np.array([1.3, 0.6, 2.0])
    ret = layer(x)
    out[f"{case}/train_loss"] = ret.train_loss_fn(labels).detach().numpy()
    out[f"{case}/val_loss"] = ret.val_loss_fn(labels).detach().numpy()
    out[f"{case}/probs"] = layer.predictive(x).detach().numpy()

    meta = {
        "vbll_version": version("vbll"),
        "torch_version": torch.__version__,
        "command": ".venv-torch/bin/python " + shlex.join(sys.argv),
        "dtype": "float64",
        "cases": cases,
        "sizes": {"n": N, "d": D, "num_classes": C, "mc_samples": MC_SAMPLES},
        "hyper_columns": ["prior_scale", "wishart_scale", "dof"],
    }
    # one flat float64 vector plus an index (name -> offset, shape, dtype) keeps the file small
    # (an .npz entry per array costs a few hundred bytes of zip headers)
    index, chunks, offset = {}, [], 0
    for name, arr in out.items():
        arr = np.asarray(arr)
        index[name] = [offset, list(arr.shape), str(arr.dtype)]
        chunks.append(arr.astype(np.float64).ravel())
        offset += arr.size
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT_DIR / "vbll_reference.npz", values=np.concatenate(chunks),
                        index_json=np.array(json.dumps(index)), meta_json=np.array(json.dumps(meta)))
    (OUT_DIR / "vbll_reference.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"wrote {OUT_DIR / 'vbll_reference.npz'} ({(OUT_DIR / 'vbll_reference.npz').stat().st_size} bytes)")


if __name__ == "__main__":
    main()
