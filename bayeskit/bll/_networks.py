"""Networks and training shared by the last-layer baselines (:mod:`bayeskit.bll.baselines`).

A :class:`LastLayerNetwork` is :class:`~bayeskit.bll.features.MLPFeatures` plus a linear last
layer (float32). Training is MAP with a Gaussian prior on every weight, as a pure function of
the split NNX state (``nnx.split(model, nnx.Param, ...)``), so that the same compiled step trains
one network or, under ``jax.vmap``, a whole deep ensemble at once; every minibatch and dropout
mask comes from ``fold_in(key, step)``. Compiled programs are cached per architecture and
setting (``functools.lru_cache`` around ``jax.jit``), so refits and widgets do not recompile.
"""

from __future__ import annotations

import dataclasses
import math
from functools import lru_cache

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from tqdm.auto import tqdm

from .features import MLPFeatures

_LOG_2PI = math.log(2.0 * math.pi)


class LastLayerNetwork(nnx.Module):
    """``MLPFeatures(in_dim, width, depth)`` followed by ``Linear(width, out_dim)``, float32.

    Regression networks also hold ``log_noise_std`` (the log of the homoscedastic noise sigma).
    Call: x (n, in_dim) -> outputs (n, out_dim) (the mean for regression, logits otherwise);
    ``features(x)`` -> phi(x) (n, width).
    """

    def __init__(self, in_dim: int, out_dim: int, *, width: int, depth: int, rngs: nnx.Rngs,
                 dropout_rate: float = 0.0, regression: bool = False, init_noise_std: float = 0.5):
        self.features = MLPFeatures(in_dim, width, depth, rngs, dropout_rate=dropout_rate)
        self.head = nnx.Linear(width, out_dim, dtype=jnp.float32, param_dtype=jnp.float32, rngs=rngs)
        self.regression = regression
        if regression:
            self.log_noise_std = nnx.Param(jnp.asarray(math.log(init_noise_std), dtype=jnp.float32))

    def __call__(self, x):
        return self.head(self.features(x))


# ----------------------------------------------------------------------------- training (pure)
@dataclasses.dataclass(frozen=True)
class _TrainConfig:
    """Everything that shapes the compiled training step (hashable: a static jit argument)."""

    regression: bool
    batch_size: int
    steps: int
    learning_rate: float
    prior_precision: float
    dropout: bool


def _optimizer(config: _TrainConfig) -> optax.GradientTransformation:
    schedule = optax.cosine_decay_schedule(config.learning_rate, max(config.steps, 1), alpha=0.01)
    return optax.adam(schedule)


def _negative_log_likelihood(model, outputs, y, regression):
    """Per-point -log p(y | outputs): Gaussian with the model's noise, or softmax cross-entropy."""
    if regression:
        log_s = model.log_noise_std[...]
        z = (y - outputs[:, 0]) * jnp.exp(-log_s)
        return 0.5 * _LOG_2PI + log_s + 0.5 * z**2
    logp = jax.nn.log_softmax(outputs, axis=-1)
    return -jnp.take_along_axis(logp, y[:, None], axis=1)[:, 0]


def _merge_with_dropout_key(graphdef, params, rest, dropout_key):
    """The module from its state; with ``dropout_key``, its dropout stream restarts from that key.

    The rng state is copied first (``jax.tree.map``): reseeding mutates variables, which NNX
    allows only for variables created inside the current trace.
    """
    if dropout_key is None:
        return nnx.merge(graphdef, params, rest)
    model = nnx.merge(graphdef, params, jax.tree.map(lambda a: a, rest))
    nnx.reseed(model, dropout=dropout_key)
    return model


def _loss(params, rest, x, y, dropout_key, *, graphdef, config, n):
    model = _merge_with_dropout_key(graphdef, params, rest, dropout_key if config.dropout else None)
    nll = _negative_log_likelihood(model, model(x), y, config.regression)
    weights = jax.tree.leaves(nnx.state(model.features, nnx.Param)) + jax.tree.leaves(nnx.state(model.head, nnx.Param))
    penalty = sum(jnp.sum(jnp.square(w)) for w in weights)
    return jnp.mean(nll) + config.prior_precision / (2.0 * n) * penalty


def _train_steps(params, opt_state, rest, x, y, key, start, n_steps, *, graphdef, config):
    """Run ``n_steps`` Adam steps from global step ``start``; minibatch and dropout keys are
    fold_in(key, step), so splitting training into chunks (for the progress bar) changes nothing."""
    n = x.shape[0]
    batch = min(config.batch_size, n)
    tx = _optimizer(config)
    value_and_grad = jax.value_and_grad(_loss)

    def body(i, carry):
        params, opt_state, _ = carry
        batch_key, dropout_key = jax.random.split(jax.random.fold_in(key, start + i))
        if batch < n:
            idx = jax.random.permutation(batch_key, n)[:batch]
            xb, yb = x[idx], y[idx]
        else:
            xb, yb = x, y
        loss, grads = value_and_grad(params, rest, xb, yb, dropout_key, graphdef=graphdef, config=config, n=n)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss.astype(jnp.float32)

    return jax.lax.fori_loop(0, n_steps, body, (params, opt_state, jnp.zeros((), jnp.float32)))


@lru_cache(maxsize=32)
def _compiled_trainer(graphdef, config: _TrainConfig, members: bool):
    """One jitted trainer per (architecture, settings): refits with the same settings reuse it."""

    def run(params, opt_state, rest, x, y, key, start, n_steps):
        return _train_steps(params, opt_state, rest, x, y, key, start, n_steps, graphdef=graphdef, config=config)

    if members:  # an ensemble: params, optimiser state, rng state and key batched over members
        run = jax.vmap(run, in_axes=(0, 0, 0, None, None, 0, None, None))
    return jax.jit(run)


@dataclasses.dataclass(frozen=True)
class _Architecture:
    """The network's shape (hashable: compiled functions are cached per architecture)."""

    in_dim: int
    out_dim: int
    width: int
    depth: int
    dropout_rate: float
    regression: bool
    init_noise_std: float

    def build(self, key) -> LastLayerNetwork:
        # separate streams: the weights from ``key``, the dropout masks from a key derived from it
        rngs = nnx.Rngs(params=key, dropout=jax.random.fold_in(key, 1))
        return LastLayerNetwork(self.in_dim, self.out_dim, width=self.width, depth=self.depth, rngs=rngs,
                                dropout_rate=self.dropout_rate, regression=self.regression,
                                init_noise_std=self.init_noise_std)


@lru_cache(maxsize=32)
def _graphdefs(arch: _Architecture):
    """(train-mode graphdef: dropout on, eval-mode graphdef: dropout off) of the architecture."""
    abstract = nnx.eval_shape(lambda: arch.build(jax.random.key(0)))
    train_def, _, _ = nnx.split(abstract, nnx.Param, ...)
    abstract.eval()
    eval_def, _, _ = nnx.split(abstract, nnx.Param, ...)
    return train_def, eval_def


@lru_cache(maxsize=32)
def _compiled_init(arch: _Architecture, members: bool):
    def init(key):
        _, params, rest = nnx.split(arch.build(key), nnx.Param, ...)
        return params, rest

    return jax.jit(jax.vmap(init) if members else init)


@lru_cache(maxsize=32)
def _compiled_forward(graphdef, members: bool):
    """x (n, d) -> (outputs (n, out), features (n, width)), deterministic (eval graphdef)."""

    def forward(params, rest, x):
        model = nnx.merge(graphdef, params, rest)
        phi = model.features(x)
        return model.head(phi), phi

    if members:
        forward = jax.vmap(forward, in_axes=(0, 0, None))
    return jax.jit(forward)


@lru_cache(maxsize=32)
def _compiled_dropout_forward(graphdef):
    """Outputs (S, n, out) of S stochastic passes, one dropout key each (a sequential lax.map:
    memory O(n), and one small program to compile)."""

    def forward(params, rest, x, keys):
        def one(key):
            return _merge_with_dropout_key(graphdef, params, rest, key)(x)

        return jax.lax.map(one, keys)

    return jax.jit(forward)


def _fit_networks(arch: _Architecture, config: _TrainConfig, x, y, keys, *, members: bool, progress: bool,
                  desc: str):
    """Initialise and train one network (keys: (3,) init/train/predict) or a batch (M, 3)."""
    train_def, _ = _graphdefs(arch)
    params, rest = _compiled_init(arch, members)(keys[..., 0])
    tx = _optimizer(config)
    opt_state = jax.vmap(tx.init)(params) if members else tx.init(params)
    run = _compiled_trainer(train_def, config, members)
    train_keys = keys[..., 1]
    chunk = max(1, config.steps // 20)
    history = []
    with tqdm(total=config.steps, desc=desc, disable=not progress, leave=False) as bar:
        done = 0
        while done < config.steps:
            todo = min(chunk, config.steps - done)
            params, opt_state, loss = run(params, opt_state, rest, x, y, train_keys, done, todo)
            done += todo
            history.append(np.asarray(loss, dtype=np.float64))
            bar.update(todo)
            bar.set_postfix(loss=f"{float(np.mean(history[-1])):.4g}")
    if not np.all(np.isfinite(history[-1])):
        raise FloatingPointError(f"training diverged (the loss became {history[-1]}); "
                                 f"lower learning_rate (now {config.learning_rate}) or standardise x and y")
    return params, rest, np.stack(history)
