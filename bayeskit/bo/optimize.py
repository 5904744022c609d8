"""Maximising an acquisition over a box: Sobol candidates, then multi-start L-BFGS-B.

Acquisitions are cheap to evaluate but multimodal and flat far from the data, so a global
screen (a scrambled Sobol sequence, *On the distribution of points in a cube and the approximate
evaluation of integrals*) picks the most promising starts, and scipy's L-BFGS-B polishes each
with exact JAX gradients inside the bounds. The search runs on the unit cube; callers map to and
from their own box.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import scipy.optimize
from scipy.stats import qmc

from .. import _config  # noqa: F401  (float64)

__all__ = ["sobol_points", "maximize_acquisition", "bucket_size"]

_JITTED: dict = {}


def sobol_points(n: int, dim: int, seed: int) -> np.ndarray:
    """The first n points (n, dim) of a scrambled Sobol sequence in [0, 1)^dim, seeded."""
    if int(n) < 1 or int(dim) < 1:
        raise ValueError(f"n and dim must be >= 1; got n={n}, dim={dim}")
    sampler = qmc.Sobol(d=int(dim), scramble=True, seed=np.random.default_rng(seed))
    m = int(np.ceil(np.log2(int(n))))
    # drawing a power of two keeps the sequence's balance properties; then take the first n
    return sampler.random_base2(m)[: int(n)]


def bucket_size(n: int) -> int:
    """The padded size for n rows: the next power of two, at least 16.

    JAX compiles a function again for every new input shape (about a second for an acquisition
    and its gradient); padding to a few sizes keeps that to a handful of compilations per run.
    """
    return max(16, 1 << int(np.ceil(np.log2(max(int(n), 1)))))


def _value_and_grad(fun: Callable):
    """jit(value_and_grad) of x (d,) -> -fun(x[None], *args)[0], cached per function object."""
    if fun not in _JITTED:

        def negative(x, args):
            return -fun(x[None, :], *args)[0]

        _JITTED[fun] = (jax.jit(jax.value_and_grad(negative)), jax.jit(lambda X, args: fun(X, *args)))
    return _JITTED[fun]


def maximize_acquisition(
    fun: Callable,
    dim: int,
    *,
    args: tuple = (),
    seed: int = 0,
    n_candidates: int = 1024,
    n_starts: int = 5,
    maxiter: int = 200,
    candidates: np.ndarray | None = None,
):
    """argmax over [0, 1]^dim of ``fun(X, *args)``, where fun maps (m, dim) to (m,) utilities.

    ``fun`` must be a JAX function; define it once at module level (or keep a reference) and
    pass what changes between calls (a posterior, an incumbent) through ``args`` so the compiled
    code is reused. Steps: evaluate on ``n_candidates`` Sobol points (plus ``candidates`` (k, dim)
    if given, e.g. the data), start L-BFGS-B from the ``n_starts`` best, keep the best result.
    Returns (x (dim,), value). Points stay inside the cube: L-BFGS-B respects bounds, and the
    result is clipped against round-off.
    """
    if int(n_starts) < 1:
        raise ValueError(f"n_starts must be >= 1; got {n_starts}")
    value_and_grad, batch = _value_and_grad(fun)
    X = sobol_points(n_candidates, dim, seed)
    if candidates is not None and len(candidates):
        extra = np.clip(np.asarray(candidates, dtype=np.float64), 0.0, 1.0)
        # repeat a row up to a bucket size, so a growing data set does not recompile each step
        extra = np.vstack([extra, np.repeat(extra[:1], bucket_size(len(extra)) - len(extra), axis=0)])
        X = np.vstack([X, extra])
    values = np.asarray(batch(jnp.asarray(X), args), dtype=np.float64)
    values = np.where(np.isfinite(values), values, -np.inf)
    order = np.argsort(-values)[: int(n_starts)]
    best_x, best_v = X[order[0]].copy(), values[order[0]]

    def objective(x):
        v, g = value_and_grad(jnp.asarray(x), args)
        v, g = float(v), np.asarray(g, dtype=np.float64)
        if not (np.isfinite(v) and np.all(np.isfinite(g))):
            return 1e300, np.zeros_like(x)  # L-BFGS-B's line search backs off
        return v, g

    box = [(0.0, 1.0)] * int(dim)
    for i in order:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            res = scipy.optimize.minimize(
                objective, X[i], jac=True, method="L-BFGS-B", bounds=box, options={"maxiter": maxiter}
            )
        x = np.clip(res.x, 0.0, 1.0)
        v = -float(res.fun)
        if np.isfinite(v) and v > best_v:
            best_x, best_v = x, v
    return best_x, float(best_v)
