"""Training a VAE: minibatch stochastic gradient ascent on the (beta-)ELBO with optax.

One epoch is one jitted ``lax.scan`` over the minibatches of a fresh random permutation of the
training set (one reparameterised draw per data point per step, the closed-form KL for a
diagonal posterior): a single dispatch per epoch, so small models on small data (8x8 digits)
are not dominated by Python overhead. The last ``n mod batch_size`` points of each permutation
are left out of that epoch (a different few every epoch), so every step has the same shape and
the scan compiles once.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from functools import partial

import jax
import jax.numpy as jnp
import optax
from flax import nnx
from tqdm.auto import tqdm

from .._validation import as_prng_key
from .model import F32, VAE
from .objectives import _beta, _positive_int, as_data, check_vae, elbo_parts

__all__ = ["TrainHistory", "train"]

# Adam with the learning rate kept in the optimiser state (inject_hyperparams): one optimiser
# object for every call, so changing the learning rate does not recompile the epoch.
_ADAM = optax.inject_hyperparams(optax.adam)(learning_rate=1e-3)


@dataclass
class TrainHistory:
    """What :func:`train` measured, one entry per epoch.

    train_elbo: mean over the epoch's minibatches of the single-draw ELBO estimate (beta = 1,
        i.e. the true bound even when training a beta-VAE), nats per data point, measured with
        the parameters of each step (so it lags the end-of-epoch value a little);
    test_elbo: ELBO on ``x_test`` after the epoch (one draw per point, a fixed key, so epochs
        are comparable), or empty without ``x_test``;
    kl: mean KL(q(z | x) || p(z)) over the epoch's minibatches;
    seconds: wall-clock time of each epoch (the first includes JAX compilation);
    beta, learning_rate, batch_size: the settings used.
    """

    train_elbo: list[float] = field(default_factory=list)
    test_elbo: list[float] = field(default_factory=list)
    kl: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    beta: float = 1.0
    learning_rate: float = 1e-3
    batch_size: int = 128

    @property
    def epochs(self) -> int:
        return len(self.train_elbo)

    def as_dict(self) -> dict:
        return {
            "train_elbo": list(self.train_elbo),
            "test_elbo": list(self.test_elbo),
            "kl": list(self.kl),
            "seconds": list(self.seconds),
            "beta": self.beta,
            "learning_rate": self.learning_rate,
            "batch_size": self.batch_size,
        }


def _epoch(graphdef, tx, params, opt_state, x, key, beta, batch_size):
    n = x.shape[0]
    n_batches = n // batch_size
    perm_key, step_key = jax.random.split(key)
    order = jax.random.permutation(perm_key, n)[: n_batches * batch_size].reshape(n_batches, batch_size)
    analytic = nnx.merge(graphdef, params).posterior == "diagonal"

    def loss(p, xb, k):
        rec, kl = elbo_parts(nnx.merge(graphdef, p), xb, k, 1, analytic)
        # maximise E[log p(x|z)] - beta KL; report the beta = 1 ELBO and the KL
        return -jnp.mean(rec - beta * kl), (jnp.mean(rec - kl), jnp.mean(kl))

    def step(carry, inputs):
        p, s = carry
        idx, i = inputs
        (_, (elbo_b, kl_b)), grads = jax.value_and_grad(loss, has_aux=True)(p, x[idx], jax.random.fold_in(step_key, i))
        updates, s = tx.update(grads, s, p)
        return (optax.apply_updates(p, updates), s), (elbo_b, kl_b)

    (params, opt_state), (elbos, kls) = jax.lax.scan(step, (params, opt_state), (order, jnp.arange(n_batches)))
    return params, opt_state, jnp.mean(elbos), jnp.mean(kls)


_epoch_jit = jax.jit(_epoch, static_argnames=("graphdef", "tx", "batch_size"))


@partial(jax.jit, static_argnames=("graphdef",))
def _test_elbo(graphdef, params, x, key):
    vae = nnx.merge(graphdef, params)
    rec, kl = elbo_parts(vae, x, key, 1, vae.posterior == "diagonal")
    return jnp.mean(rec - kl)


def train(
    vae: VAE,
    x_train,
    *,
    epochs: int,
    batch_size: int = 128,
    learning_rate: float = 1e-3,
    beta: float = 1.0,
    key,
    x_test=None,
    optimizer: optax.GradientTransformation | None = None,
    progress: bool = True,
) -> TrainHistory:
    """Fit ``vae`` (in place) to the rows of x_train (n, D) by maximising the (beta-)ELBO.

    Adam (optax) at ``learning_rate`` by default, or any optax ``optimizer`` (then
    ``learning_rate`` is ignored). ``epochs`` passes over the data in minibatches of
    ``batch_size``; ``beta`` weights the KL term (beta-VAE). ``key``: a ``jax.random.key`` (or
    int seed) for the shuffling and the draws. ``x_test`` (m, D): if given, its ELBO is
    recorded after every epoch. ``progress``: a tqdm progress bar over the epochs.

    Each call starts a fresh optimiser state (calling it again continues from the current
    weights with Adam's moments reset); calls with the same model shape, data size and
    ``batch_size`` reuse the compiled epoch (no recompilation).

    Returns a :class:`TrainHistory`. Raises ``FloatingPointError`` if the ELBO becomes NaN or
    infinite (lower the learning rate), leaving ``vae`` at its last finite parameters.
    """
    vae = check_vae(vae)
    epochs = _positive_int(epochs, "epochs")
    batch_size = _positive_int(batch_size, "batch_size")
    beta = _beta(beta)
    key = as_prng_key(key)
    x = as_data(x_train, vae, "x_train")
    if batch_size > x.shape[0]:
        raise ValueError(f"batch_size ({batch_size}) is larger than the training set ({x.shape[0]} rows)")
    xt = None if x_test is None else as_data(x_test, vae, "x_test")
    if optimizer is None:
        lr = float(learning_rate)
        if not math.isfinite(lr) or lr <= 0:
            raise ValueError(f"learning_rate must be finite and > 0; got {learning_rate}")
        tx = _ADAM
    else:
        if not isinstance(optimizer, optax.GradientTransformation):
            raise TypeError(f"optimizer must be an optax.GradientTransformation; got {type(optimizer).__name__}")
        tx, lr = optimizer, float("nan")

    graphdef, params = nnx.split(vae)
    opt_state = tx.init(params)
    if optimizer is None:
        opt_state.hyperparams["learning_rate"] = jnp.asarray(lr, F32)
    history = TrainHistory(beta=beta, learning_rate=lr, batch_size=batch_size)
    beta32 = jnp.asarray(beta, F32)
    key, test_key = jax.random.split(key)
    bar = tqdm(range(epochs), desc="VAE", disable=not progress, leave=True)
    try:
        for epoch in bar:
            t0 = time.perf_counter()
            new_params, opt_state, train_elbo, kl = _epoch_jit(
                graphdef, tx, params, opt_state, x, jax.random.fold_in(key, epoch), beta32, batch_size
            )
            train_elbo, kl = float(train_elbo), float(kl)
            if not (math.isfinite(train_elbo) and math.isfinite(kl)):
                raise FloatingPointError(
                    f"the ELBO became {train_elbo} in epoch {epoch + 1}; lower the learning rate "
                    f"(now {learning_rate}) or check the data"
                )
            params = new_params
            history.train_elbo.append(train_elbo)
            history.kl.append(kl)
            if xt is not None:
                history.test_elbo.append(float(_test_elbo(graphdef, params, xt, test_key)))
            history.seconds.append(time.perf_counter() - t0)
            post = {"train ELBO": f"{train_elbo:.2f}"}
            if history.test_elbo:
                post["test ELBO"] = f"{history.test_elbo[-1]:.2f}"
            bar.set_postfix(post)
    finally:
        bar.close()
        if history.epochs:
            nnx.update(vae, params)
    return history
