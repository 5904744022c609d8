#!/usr/bin/env python
"""The PyTorch side of ``benchmarks/vae.py``: the same VAE, data, initial weights and optimiser.

Run by ``benchmarks/vae.py`` with the PyTorch environment's interpreter (``.venv-torch``, which
has no bayeskit or JAX)::

    .venv-torch/bin/python benchmarks/_vae_torch.py problem.npz result.json

``problem.npz`` holds ``x_train``, ``x_test`` (float32, values in [0, 1]), the settings
(``latent_dim``, ``epochs``, ``batch_size``, ``learning_rate``, ``seed``, ``eval_samples``,
``threads``, ``device``: "cpu" or "cuda") and the initial weights of every ``nn.Linear`` as ``enc_W0``, ``enc_b0``, ...,
``head_W``, ``head_b``, ``dec_W0``, ``dec_b0``, ..., ``out_W``, ``out_b`` (in bayeskit's
(in, out) layout; transposed here). The model matches ``bayeskit.vae.VAE(latent_dim=L,
hidden=(h, ...), likelihood="bernoulli")``: ReLU MLPs, an encoder head giving the mean and log
std, Bernoulli logits out, the closed-form Gaussian KL and one reparameterised draw per data
point per step; Adam (PyTorch's defaults besides the learning rate, which are optax's too).
Each epoch shuffles, drops the last incomplete batch (as bayeskit does) and then evaluates the
test ELBO with one draw, as bayeskit's ``train(x_test=...)`` does. Writes per-epoch seconds,
train/test ELBO per epoch, and the final test ELBO averaged over ``eval_samples`` draws.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
import torch
from torch import nn


class VAE(nn.Module):
    def __init__(self, data_dim: int, latent_dim: int, hidden: list[int]):
        super().__init__()
        sizes = [data_dim, *hidden]
        self.enc = nn.ModuleList([nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:])])
        self.head = nn.Linear(sizes[-1], 2 * latent_dim)
        dec_sizes = [latent_dim, *reversed(hidden)]
        self.dec = nn.ModuleList([nn.Linear(a, b) for a, b in zip(dec_sizes[:-1], dec_sizes[1:])])
        self.out = nn.Linear(dec_sizes[-1], data_dim)
        self.latent_dim = latent_dim

    def encode(self, x):
        h = x
        for layer in self.enc:
            h = torch.relu(layer(h))
        out = self.head(h)
        return out[:, : self.latent_dim], out[:, self.latent_dim:]

    def decode(self, z):
        h = z
        for layer in self.dec:
            h = torch.relu(layer(h))
        return self.out(h)

    def elbo_parts(self, x, n_samples: int = 1):
        mean, log_std = self.encode(x)
        std = torch.exp(log_std)
        rec = 0.0
        for _ in range(n_samples):
            z = mean + std * torch.randn_like(mean)
            logits = self.decode(z)
            # log Bernoulli(x; sigmoid(l)) = x l - softplus(l)
            rec = rec + torch.sum(x * logits - nn.functional.softplus(logits), dim=1)
        kl = 0.5 * torch.sum(mean**2 + std**2 - 1.0 - 2.0 * log_std, dim=1)
        return rec / n_samples, kl


def set_weights(model: VAE, p: dict) -> None:
    def put(layer: nn.Linear, w, b):
        with torch.no_grad():
            layer.weight.copy_(torch.from_numpy(np.ascontiguousarray(w.T)))
            layer.bias.copy_(torch.from_numpy(b))

    for i, layer in enumerate(model.enc):
        put(layer, p[f"enc_W{i}"], p[f"enc_b{i}"])
    put(model.head, p["head_W"], p["head_b"])
    for i, layer in enumerate(model.dec):
        put(layer, p[f"dec_W{i}"], p[f"dec_b{i}"])
    put(model.out, p["out_W"], p["out_b"])


def main(problem_path: str, out_path: str) -> None:
    with np.load(problem_path, allow_pickle=False) as f:
        p = {k: f[k] for k in f.files}
    threads = int(p["threads"])
    if threads > 0:
        torch.set_num_threads(threads)
    torch.manual_seed(int(p["seed"]))
    device = torch.device(str(p["device"]) if "device" in p else "cpu")
    x_train = torch.from_numpy(p["x_train"].astype(np.float32)).to(device)
    x_test = torch.from_numpy(p["x_test"].astype(np.float32)).to(device)
    hidden = [int(h) for h in p["hidden"]]
    model = VAE(x_train.shape[1], int(p["latent_dim"]), hidden)
    set_weights(model, p)
    model.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=float(p["learning_rate"]))
    n, bs = x_train.shape[0], int(p["batch_size"])
    n_batches = n // bs
    seconds, train_elbo, test_elbo = [], [], []
    for _ in range(int(p["epochs"])):
        t0 = time.perf_counter()
        model.train()
        order = torch.randperm(n, device=device)[: n_batches * bs].view(n_batches, bs)
        total = torch.zeros((), device=device)
        for idx in order:
            xb = x_train[idx]
            rec, kl = model.elbo_parts(xb)
            loss = -(rec - kl).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total -= loss.detach()  # no host sync per step (it would stall a GPU)
        with torch.no_grad():
            rec, kl = model.elbo_parts(x_test)
            test_elbo.append(float((rec - kl).mean()))
        train_elbo.append(float(total) / n_batches)
        seconds.append(time.perf_counter() - t0)
    with torch.no_grad():
        rec, kl = model.elbo_parts(x_test, int(p["eval_samples"]))
        final = float((rec - kl).mean())
    result = {
        "seconds": seconds,
        "train_elbo": train_elbo,
        "test_elbo": test_elbo,
        "final_test_elbo": final,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "device": str(device),
    }
    with open(out_path, "w") as fh:
        json.dump(result, fh)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
