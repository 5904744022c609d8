"""Fit a flow to an unnormalised density by maximising the reverse-KL ELBO; evaluate the fit.

Rezende & Mohamed, *Variational Inference with Normalizing Flows* (ICML 2015), section 6.1: for
an unnormalised target p~(z) = Z p(z), the flow q_K is fitted by maximising

    ELBO = E_{q_K}[log p~(z_K) - log q_K(z_K)] = log Z - KL(q_K || p),

estimated with n reparameterised draws z_K = f_K o ... o f_1(z_0), z_0 ~ q_0, and eq. 7 for
log q_K. The gradient flows through the draws (the reparameterisation trick); Adam (optax) takes
the steps. Like the paper, an optional annealing schedule multiplies log p~ by
beta_t = min(1, 0.01 + t / anneal_steps), which lets the flow spread before it commits to modes.

:func:`evaluate_flow` measures a fitted flow three ways, with log Z from the brute-force grid:
the Monte-Carlo KL = log Z - ELBO, the grid KL = sum over cells of q (log q - log p) dA (with
q's exact density from the inverted flow), and the effective sample size of the importance
weights p~ / q, ESS = (sum w)^2 / sum w^2. (An ESS from q's own draws cannot see modes of p
that q misses: a flow locked onto one of four modes has KL ~ log 4 and an ESS near n.)

:func:`length_sweep` fits every flow length to every target over several seeds: the experiment
behind the claim that longer flows fit better. Measured (planar, 4000 Adam steps with annealing
over 3000, 128 draws per step, learning rate 1e-2, seeds 0-2, 200 x 200 grid), mean KL(q || p):
banana 0.298 / 0.096 / 0.015 / 0.018 for K = 1 / 2 / 8 / 32; ring 1.399 / 0.932 / 0.064 / 0.045;
mixture 2.407 / 0.315 / 0.259 / 0.094; U1 0.414 / 0.311 / 0.066 / 0.103; U2 0.896 / 0.649 /
0.106 / 0.067; U3 1.024 / 0.525 / 0.230 / 0.110; U4 1.055 / 1.136 / 0.440 / 0.081. Without
annealing (3000 steps) the mixture stays at ~log 4 for K = 8 and 32 and U1 at ~log 2 for
every K >= 2 (mode seeking).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from tqdm.auto import tqdm

from .. import _config  # noqa: F401  (float64 available for evaluation)
from .._validation import as_prng_key
from .modules import FLOW_KINDS, flow_log_prob, flow_sample_and_log_prob, make_flow
from .targets import Target, grid_log_normalizer, grid_points

__all__ = ["fit_flow", "evaluate_flow", "FlowEvaluation", "elbo_estimate", "length_sweep"]


def _positive_int(value, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}")
    return int(value)


def _target_fn(target) -> Callable:
    if isinstance(target, Target):
        return target.log_prob
    if callable(target):
        return target
    raise TypeError(f"target_log_prob must be a callable z (..., d) -> (...) or a Target; got {type(target).__name__}")


def elbo_estimate(flow, target_log_prob, key, n_samples: int):
    """Monte-Carlo ELBO terms: (log p~(z) - log q(z)) for n_samples draws z ~ q; shape (n,)."""
    z, log_q = flow.sample_and_log_prob(key, n_samples)
    return _target_fn(target_log_prob)(z) - log_q


@functools.lru_cache(maxsize=64)
def _training_program(graphdef, log_p, n_samples: int, anneal_steps: int, lr: float, clip_norm: float):
    """The optimiser and a jitted ``lax.scan`` over training steps, built once per configuration.

    Cached on (flow structure, target function, sizes, optimiser settings) so refitting with
    another seed or continuing a fit reuses the compiled program instead of recompiling (a few
    seconds each on a CPU).
    """
    # Adam on the reparameterised ELBO; global-norm clipping guards against single steep draws
    tx = optax.chain(optax.clip_by_global_norm(clip_norm), optax.adam(lr))

    def loss(params, rest, key, beta):
        model = nnx.merge(graphdef, params, rest)
        z, log_q = model.sample_and_log_prob(key, n_samples)
        lp = log_p(z).astype(log_q.dtype)
        # ELBO = E_q[log p~(z) - log q(z)]; annealing tempers only the target term
        elbo = jnp.mean(lp - log_q)
        return -jnp.mean(beta * lp - log_q), elbo

    grad_fn = jax.value_and_grad(loss, has_aux=True)

    def one_step(carry, t):
        params, rest, opt_state, key = carry
        key, sub = jax.random.split(key)
        if anneal_steps > 0:
            beta = jnp.minimum(1.0, 0.01 + t / anneal_steps)
        else:
            beta = jnp.ones((), t.dtype)
        (neg_obj, elbo), grads = grad_fn(params, rest, sub, beta)
        updates, opt_state = tx.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        return (params, rest, opt_state, key), (elbo, -neg_obj, beta)

    @jax.jit
    def run(params, rest, opt_state, key, ts):
        (params, rest, opt_state, key), out = jax.lax.scan(one_step, (params, rest, opt_state, key), ts)
        return (params, opt_state, key), out

    return tx, run


def fit_flow(
    target_log_prob,
    kind: str = "planar",
    length: int = 8,
    *,
    steps: int = 2000,
    learning_rate: float = 1e-2,
    key,
    n_samples: int = 128,
    dim: int = 2,
    anneal_steps: int = 0,
    clip_norm: float = 10.0,
    flow=None,
    dtype=jnp.float32,
    progress: bool = True,
    chunk: int = 100,
):
    """Fit a planar / radial flow of ``length`` layers to ``target_log_prob`` by reverse KL.

    Parameters
    ----------
    target_log_prob : callable ``z (..., dim) -> (...)`` (unnormalised log-density, pure JAX), or
        a :class:`~bayeskit.flows.targets.Target`.
    kind : ``"planar"`` or ``"radial"``; ignored when ``flow`` is given.
    length : number of layers K (0 gives the diagonal-Gaussian baseline).
    steps : Adam steps; learning_rate : Adam step size; n_samples : draws per ELBO estimate.
    key : ``jax.random`` key or int seed (initialisation and all draws).
    anneal_steps : if > 0, log p~ is multiplied by min(1, 0.01 + t / anneal_steps) (paper, 6.1).
    clip_norm : gradients are clipped to this global norm (single bad draws of a steep target
        would otherwise throw the flow far away).
    flow : an existing :class:`PlanarFlow` / :class:`RadialFlow` to continue training (it is not
        modified; a trained copy is returned).
    chunk : steps per compiled ``lax.scan`` call (the progress bar advances per chunk).

    Returns
    -------
    flow : the trained module.
    history : dict of numpy arrays, ``"step"`` (steps,), ``"elbo"`` (steps,) -- the
        un-annealed Monte-Carlo ELBO estimate at each step, before its update --, ``"objective"``
        (steps,) the annealed quantity maximised, and ``"beta"`` (steps,).

    Raises ``FloatingPointError`` naming the step if the ELBO becomes NaN (lower the learning
    rate or raise ``n_samples``).
    """
    log_p = _target_fn(target_log_prob)
    steps = _positive_int(steps, "steps")
    n_samples = _positive_int(n_samples, "n_samples")
    chunk = _positive_int(chunk, "chunk")
    anneal_steps = _positive_int(anneal_steps, "anneal_steps", minimum=0)
    lr = float(learning_rate)
    if not math.isfinite(lr) or lr <= 0:
        raise ValueError(f"learning_rate must be finite and > 0; got {learning_rate!r}")
    if not (float(clip_norm) > 0):
        raise ValueError(f"clip_norm must be > 0; got {clip_norm!r}")
    key = as_prng_key(key)
    init_key, key = jax.random.split(key)
    if flow is None:
        if kind not in FLOW_KINDS:
            raise ValueError(f"kind must be one of {FLOW_KINDS}; got {kind!r}")
        flow = make_flow(kind, _positive_int(dim, "dim"), _positive_int(length, "length", 0),
                         nnx.Rngs(init_key), dtype=dtype)
    graphdef, params, rest = nnx.split(flow, nnx.Param, ...)
    params = jax.tree.map(jnp.array, params)  # a copy: the caller's flow is left as it was
    tx, run = _training_program(graphdef, log_p, n_samples, anneal_steps, lr, float(clip_norm))
    opt_state = tx.init(params)

    # a quick check on the target before compiling the loop
    probe = nnx.merge(graphdef, params, rest)
    z_probe, _ = probe.sample_and_log_prob(jax.random.key(0), 2)
    lp_probe = jnp.asarray(log_p(z_probe))
    if lp_probe.shape != (2,):
        raise ValueError(
            f"target_log_prob must map points (n, {probe.dim}) to (n,); got output shape {lp_probe.shape}"
        )

    elbos, objectives, betas = [], [], []
    with tqdm(total=steps, desc=f"fit {getattr(flow, 'kind', 'flow')} K={flow.length}",
              disable=not progress, leave=False) as bar:
        done = 0
        while done < steps:
            # chunks of `chunk` steps per compiled call; a shorter last chunk compiles once more
            todo = min(chunk, steps - done)
            ts = jnp.arange(done, done + todo, dtype=flow.dtype)
            (params, opt_state, key), (e, o, b) = run(params, rest, opt_state, key, ts)
            e = np.asarray(e)
            if not np.all(np.isfinite(e)):
                bad = done + int(np.argmax(~np.isfinite(e)))
                raise FloatingPointError(
                    f"the ELBO became non-finite at step {bad}; lower learning_rate ({lr}) or "
                    f"raise n_samples ({n_samples})"
                )
            elbos.append(e)
            objectives.append(np.asarray(o))
            betas.append(np.asarray(b))
            done += todo
            bar.update(todo)
            bar.set_postfix(elbo=f"{e[-min(todo, 20):].mean():.3f}")
    trained = nnx.merge(graphdef, params, rest)
    history = {
        "step": np.arange(steps),
        "elbo": np.concatenate(elbos),
        "objective": np.concatenate(objectives),
        "beta": np.concatenate(betas),
    }
    return trained, history


class FlowEvaluation(NamedTuple):
    """How well q approximates p (Monte-Carlo quantities use n draws from q)."""

    elbo: float  # E_q[log p~ - log q], Monte-Carlo
    elbo_se: float  # its standard error
    log_normalizer: float  # log Z of the target, brute force on the grid
    kl: float  # KL(q || p) = log Z - ELBO (Monte-Carlo; noise about elbo_se)
    kl_grid: float  # sum_cells q (log q - log p) dA with p = p~ / Z (quadrature; no noise)
    q_mass_on_grid: float  # sum_cells q dA: near 1 when q stays inside the grid
    ess: float  # (sum w)^2 / sum w^2 for w = p~ / q
    ess_fraction: float  # ess / n, in (0, 1]; 1 means q = p


def evaluate_flow(flow, target, *, key, n_samples: int = 20000, grid_size: int = 300,
                  bounds=None, log_normalizer: float | None = None) -> FlowEvaluation:
    """ELBO, KL(q || p) two ways, and importance-sampling ESS of a flow against a 2-D target.

    ``target`` is a :class:`~bayeskit.flows.targets.Target` (its ``bounds`` are used unless
    ``bounds`` is given) or a log-density callable with ``bounds``. log Z comes from
    :func:`~bayeskit.flows.targets.grid_log_normalizer` on the same grid unless
    ``log_normalizer`` is given. Everything is computed in float64 from the flow's density.
    """
    key = as_prng_key(key)
    n_samples = _positive_int(n_samples, "n_samples", minimum=2)
    log_p = _target_fn(target)
    if bounds is None:
        if not isinstance(target, Target):
            raise ValueError("bounds are required when target is a plain callable")
        bounds = target.bounds
    if log_normalizer is None:
        log_normalizer = grid_log_normalizer(log_p, bounds, grid_size)
    log_z = float(log_normalizer)

    z, log_q = flow_sample_and_log_prob(flow, key, n_samples)
    log_w = jnp.asarray(log_p(z.astype(jnp.float64)), jnp.float64) - log_q.astype(jnp.float64)
    log_w = np.asarray(log_w)
    if not np.all(np.isfinite(log_w)):
        raise FloatingPointError("log p~(z) - log q(z) is not finite for some draws from q")
    elbo = float(log_w.mean())
    elbo_se = float(log_w.std(ddof=1) / math.sqrt(n_samples))
    lse = float(jax.nn.logsumexp(log_w))
    ess = float(np.exp(2 * lse - float(jax.nn.logsumexp(2 * log_w))))

    _, _, pts, area = grid_points(bounds, grid_size)
    log_q_grid = jnp.asarray(flow_log_prob(flow, pts), jnp.float64)
    log_p_grid = jnp.asarray(log_p(pts), jnp.float64) - log_z
    q_grid = jnp.exp(log_q_grid)
    # q log(q / p), with 0 log 0 = 0 where q underflows
    integrand = jnp.where(q_grid > 0, q_grid * (log_q_grid - log_p_grid), 0.0)
    kl_grid = float(jnp.sum(integrand) * area)
    mass = float(jnp.sum(q_grid) * area)
    return FlowEvaluation(
        elbo=elbo, elbo_se=elbo_se, log_normalizer=log_z, kl=log_z - elbo, kl_grid=kl_grid,
        q_mass_on_grid=mass, ess=ess, ess_fraction=ess / n_samples,
    )


def length_sweep(targets, lengths=(1, 2, 8, 32), seeds=(0, 1, 2), *, kind: str = "planar",
                 steps: int = 2000, learning_rate: float = 1e-2, n_samples: int = 128,
                 anneal_steps: int = 0, eval_samples: int = 5000, grid_size: int = 200,
                 progress: bool = True) -> list[dict]:
    """Fit a flow of every length to every target with every seed; one evaluation row each.

    ``targets``: a dict name -> :class:`~bayeskit.flows.targets.Target`. Returns a list of dicts
    with keys ``target, kind, length, seed, kl, kl_grid, elbo, elbo_se, ess_fraction,
    q_mass_on_grid`` (see :class:`FlowEvaluation`); the grid log Z of each target is computed
    once. This is the experiment behind the claim that the fit improves with flow length K
    (Rezende & Mohamed, figure 3).
    """
    if not isinstance(targets, dict) or not targets:
        raise ValueError("targets must be a non-empty dict of name -> Target")
    rows = []
    total = len(targets) * len(lengths) * len(seeds)
    with tqdm(total=total, desc=f"{kind} length sweep", disable=not progress) as bar:
        for name, target in targets.items():
            log_z = grid_log_normalizer(target.log_prob, target.bounds, grid_size)
            for length in lengths:
                for seed in seeds:
                    flow, _ = fit_flow(target, kind, length, steps=steps, learning_rate=learning_rate,
                                       key=jax.random.key(seed), n_samples=n_samples,
                                       anneal_steps=anneal_steps, progress=False)
                    ev = evaluate_flow(flow, target, key=jax.random.key(10_000 + seed),
                                       n_samples=eval_samples, grid_size=grid_size,
                                       log_normalizer=log_z)
                    rows.append({"target": name, "kind": kind, "length": int(length), "seed": int(seed),
                                 **{k: float(v) for k, v in ev._asdict().items()
                                    if k not in ("log_normalizer", "ess")}})
                    bar.update(1)
    return rows
