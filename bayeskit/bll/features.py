"""Feature networks for Bayesian last layers (Flax NNX, float32).

A Bayesian last layer splits a network into a deterministic feature map phi(x) (everything but
the final layer) and a last layer whose weights get a distribution. This module holds the
feature map; the heads live in :mod:`bayeskit.bll.vbll` and the baselines elsewhere in
:mod:`bayeskit.bll`.

Networks are float32 on purpose (bayeskit enables float64 globally for GPs and filters, but a
network gains nothing from it and runs slower): parameters and activations are float32, and
inputs are cast to float32 on entry.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

__all__ = ["MLPFeatures"]


class MLPFeatures(nnx.Module):
    """A multilayer perceptron phi: R^in_dim -> R^width, float32.

    ``depth`` hidden layers, each ``Linear -> ELU [-> Dropout]``; the output of the last one
    is the feature vector, so the features are bounded below (ELU >= -1) and smooth. The first
    layer maps ``in_dim -> width`` and the rest ``width -> width``.

    Args:
        in_dim: input dimension d (>= 1).
        width: number of features (>= 1).
        depth: number of hidden layers (>= 1).
        rngs: ``nnx.Rngs`` for the initial weights (and, with dropout, a ``dropout`` stream).
        dropout_rate: dropout probability in [0, 1) after each hidden activation (0: none).
            Dropout is active in train mode (``model.train()``) and off after ``model.eval()``.

    Call: ``phi(x)`` with x of shape (n, in_dim) (or (in_dim,) for one point) returns the
    features, float32, of shape (n, width) (or (width,)).
    """

    def __init__(self, in_dim: int, width: int, depth: int, rngs: nnx.Rngs, dropout_rate: float = 0.0):
        for name, v in (("in_dim", in_dim), ("width", width), ("depth", depth)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be a positive integer; got {v!r}")
        if not 0.0 <= float(dropout_rate) < 1.0:
            raise ValueError(f"dropout_rate must be in [0, 1); got {dropout_rate!r}")
        self.in_dim, self.width, self.depth = in_dim, width, depth
        self.dropout_rate = float(dropout_rate)
        sizes = [in_dim] + [width] * depth
        self.layers = nnx.List(
            [
                nnx.Linear(a, b, dtype=jnp.float32, param_dtype=jnp.float32, rngs=rngs)
                for a, b in zip(sizes[:-1], sizes[1:])
            ]
        )
        self.dropout = nnx.Dropout(self.dropout_rate, rngs=rngs) if self.dropout_rate > 0 else None

    def __call__(self, x: jax.Array) -> jax.Array:
        x = jnp.asarray(x, dtype=jnp.float32)
        single = x.ndim == 1
        if single:
            x = x[None, :]
        if x.ndim != 2 or x.shape[-1] != self.in_dim:
            raise ValueError(f"x must have shape (n, {self.in_dim}); got {x.shape}")
        h = x
        for layer in self.layers:
            h = jax.nn.elu(layer(h))
            if self.dropout is not None:
                h = self.dropout(h)
        return h[0] if single else h
