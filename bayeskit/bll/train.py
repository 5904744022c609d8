"""Mini-batch training of VBLL models with optax (AdamW) and a tqdm.auto progress bar.

:func:`train_vbll` minimises ``model.loss(x_batch, y_batch)`` for any Flax NNX module that has
one: a :class:`~bayeskit.bll.vbll.VBLLModel` (feature network + head, trained jointly) or a
bare head on fixed features. One epoch is one jitted ``lax.scan`` over the shuffled
mini-batches, so the Python loop runs once per epoch, not once per step.

With VBLL heads the per-batch objective is mean_batch(-E log p) + lambda * regulariser, whose
expectation over the batches is the full-data objective when lambda = 1/N: mini-batching keeps
the optimum.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from tqdm.auto import tqdm

from .._validation import as_prng_key

__all__ = ["train_vbll"]


def _decay_mask(params):
    """True for parameters outside the ``head`` (weight decay for the feature network only:
    the Bayesian last layer is regularised by its KL term, decay would count the prior twice)."""

    def is_feature_param(path, _):
        first = path[0]
        name = getattr(first, "key", getattr(first, "name", first))
        return str(name) != "head"

    return jax.tree_util.tree_map_with_path(is_feature_param, params)


@functools.lru_cache(maxsize=32)
def _epoch_runner(graphdef, learning_rate: float, weight_decay: float, n: int, batch: int):
    """(optax transformation, jitted epoch) for one model structure and setting; cached so that
    repeated calls (more epochs later, benchmarks) reuse the compiled program."""
    num_batches = n // batch
    tx = optax.adamw(learning_rate, weight_decay=weight_decay, mask=_decay_mask)

    def batch_loss(p, r, xb, yb):
        m = nnx.merge(graphdef, p, r)
        value = m.loss(xb, yb)
        return value, nnx.state(m, nnx.Not(nnx.Param))

    @jax.jit
    def run_epoch(p, r, opt_state, key, x, y):
        perm = jax.random.permutation(key, n)[: num_batches * batch].reshape(num_batches, batch)

        def step(carry, idx):
            p, r, s = carry
            (value, r), grads = jax.value_and_grad(batch_loss, has_aux=True)(p, r, x[idx], y[idx])
            updates, s = tx.update(grads, s, p)
            return (optax.apply_updates(p, updates), r, s), value

        (p, r, opt_state), values = jax.lax.scan(step, (p, r, opt_state), perm)
        return p, r, opt_state, jnp.mean(values)

    return tx, run_epoch


def train_vbll(model: nnx.Module, x, y, *, epochs: int, batch_size: int, learning_rate: float, key,
               weight_decay: float = 0.0, progress: bool = True) -> dict[str, np.ndarray]:
    """Train ``model`` in place with AdamW on mini-batches of (x, y); returns the loss history.

    Args:
        model: an NNX module with ``loss(x_batch, y_batch) -> scalar`` (e.g. ``VBLLModel``).
        x: inputs (n, ...); y: targets (n, ...) (regression values or integer labels).
        epochs: passes over the data (>= 1).
        batch_size: rows per step (>= 1); each epoch uses floor(n / batch_size) full batches
            of a fresh permutation (all n rows when batch_size >= n), so shapes never change
            and the step compiles once.
        learning_rate: AdamW step size (> 0).
        key: PRNG key (or int seed) for the shuffling.
        weight_decay: AdamW decoupled weight decay, applied to parameters outside
            ``model.head`` only (0 disables it).
        progress: show a tqdm.auto bar over epochs.

    Returns:
        ``{"loss": (epochs,) mean training objective per epoch}``.
    """
    key = as_prng_key(key)
    for name, v in (("epochs", epochs), ("batch_size", batch_size)):
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{name} must be a positive integer; got {v!r}")
    if not np.isfinite(learning_rate) or learning_rate <= 0:
        raise ValueError(f"learning_rate must be finite and > 0; got {learning_rate}")
    if not np.isfinite(weight_decay) or weight_decay < 0:
        raise ValueError(f"weight_decay must be finite and >= 0; got {weight_decay}")
    if not hasattr(model, "loss"):
        raise TypeError(f"model must have a loss(x, y) method; got {type(model).__name__}")
    x = jnp.asarray(x)
    y = jnp.asarray(y)
    n = x.shape[0]
    if n == 0:
        raise ValueError("x is empty: at least one row is needed")
    if y.shape[0] != n:
        raise ValueError(f"y has {y.shape[0]} rows but x has {n}; they must match")
    batch = min(int(batch_size), n)

    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    tx, run_epoch = _epoch_runner(graphdef, float(learning_rate), float(weight_decay), n, batch)
    opt_state = tx.init(params)

    history = np.empty(epochs)
    for epoch in tqdm(range(epochs), disable=not progress, desc="train_vbll", leave=False):
        key, sub = jax.random.split(key)
        params, rest, opt_state, value = run_epoch(params, rest, opt_state, sub, x, y)
        history[epoch] = float(value)
        if not np.isfinite(history[epoch]):
            raise FloatingPointError(
                f"the training objective became {history[epoch]} in epoch {epoch}; lower learning_rate"
            )
    nnx.update(model, params, rest)
    return {"loss": history}
