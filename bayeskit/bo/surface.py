"""What a Bayesian-optimisation step looks like: the surrogate and the acquisition on a grid.

:func:`acquisition_surface` reads a :class:`bayeskit.bo.BayesianOptimizer` right after its
``ask()`` (which refits the GP and proposes the next point) and evaluates, at any points X in the
search box, the posterior mean and standard deviation of f and the acquisition that ``ask()``
optimised, in the units of y. It is pure: it changes nothing in the optimiser, so a run that
is drawn is the same run as an undrawn one (``bayeskit.bo.minimize`` with the same seed).

The acquisition is the one the loop optimised, with the loop's own random numbers:

* ``ei``, ``log_ei``, ``pi``, ``lcb``, ``mes`` and a callable: closed forms of the posterior
  marginals (:mod:`bayeskit.bo.acquisitions`); ``mes`` with the same samples of the minimum
  value f* as the loop (minima of joint posterior draws on its Sobol set plus the data).
* ``ts``: the very random-Fourier-feature posterior sample path whose minimiser ``ask()`` took
  (*Efficiently Sampling Functions from Gaussian Process Posteriors*, eq. (13)).
* ``noisy_ei``: Monte-Carlo noisy EI with the loop's base samples (common random numbers).
* ``kg``: the knowledge gradient is defined on the loop's discrete candidate set (a Sobol set);
  it is returned at those points (``points``, ``points_values``), where ``ask()`` took its
  argmax; the values on X are NaN.

Units: the loop works on inputs scaled to the unit cube and standardised outputs
z = (y - mean(y)) / sd(y). Here mean and sd are mapped back to y; EI, noisy EI and KG are
expectations of an improvement in y, so they scale by sd(y) (log EI shifts by log sd(y)); PI and
MES are scale-free; LCB and a Thompson path are values of f in y. ``maximize`` says whether the
loop maximises the acquisition (``False`` for LCB and TS, which it minimises).

The random numbers follow :meth:`bayeskit.bo.BayesianOptimizer.ask` for a single point: the
proposal key is ``17 (100003 seed + n) + 0`` with n the number of points told before the
``ask()``. ``tests/bo/test_surface.py`` checks that the drawn acquisition is optimal at the
proposed point, so a change of that convention in the loop fails a test rather than the picture.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .. import _config  # noqa: F401  (float64)
from ..gp.exact import Posterior
from . import acquisitions as acq
from .loop import (
    _marginals,
    knowledge_gradient_on_sobol,
    mes_min_samples,
    noisy_ei_inputs,
    posterior_incumbent,
)
from .sampling import pathwise_posterior_sample
from .surrogate import FAR

__all__ = ["AcquisitionSurface", "acquisition_surface", "box_grid", "simple_regret"]

class AcquisitionSurface(NamedTuple):
    """Output of :func:`acquisition_surface` (m points X, k candidate points for KG)."""

    X: np.ndarray  # (m, d) the evaluation points, in the search box
    mean: np.ndarray  # (m,) posterior mean of f, units of y
    std: np.ndarray  # (m,) posterior standard deviation of f (noise excluded), units of y
    acquisition: np.ndarray  # (m,) the acquisition at X (NaN for kg), units above
    name: str  # "ei", "log_ei", ..., or "custom"
    maximize: bool  # True: the loop took the argmax; False (lcb, ts): the argmin
    incumbent: float  # the loop's `best` in units of y (best observation, or min posterior mean when noisy)
    points: np.ndarray | None  # (k, d) KG's candidate set, else None
    points_values: np.ndarray | None  # (k,) KG on that set, else None
    n_observations: int  # finite observations the model was fitted to


def box_grid(bounds, n_per_dim: int) -> np.ndarray:
    """A regular grid over a 1-D or 2-D box: (n,) -> (n, 1), or (n * n, 2) with x_1 fastest.

    For d = 2 the row ``j * n + i`` is (g_1[i], g_2[j]): reshape values to (n, n) to get an image
    whose row j is x_2 = g_2[j] and column i is x_1 = g_1[i].
    """
    b = np.asarray(bounds, dtype=np.float64)
    if b.ndim != 2 or b.shape[1] != 2 or b.shape[0] not in (1, 2):
        raise ValueError(f"bounds must be 1 or 2 (low, high) pairs, shape (d, 2) with d <= 2; got shape {b.shape}")
    if isinstance(n_per_dim, bool) or not isinstance(n_per_dim, (int, np.integer)) or n_per_dim < 2:
        raise ValueError(f"n_per_dim must be an int >= 2; got {n_per_dim!r}")
    axes = [np.linspace(lo, hi, int(n_per_dim)) for lo, hi in b]
    if len(axes) == 1:
        return axes[0][:, None]
    g1, g2 = np.meshgrid(axes[0], axes[1], indexing="xy")  # (n2, n1): row j is x_2 = axes[1][j]
    return np.column_stack([g1.ravel(), g2.ravel()])


def simple_regret(true_values, optimum: float) -> np.ndarray:
    """Simple regret after each evaluation: min_{i <= t} f(x_i) - f*, shape (T,).

    ``true_values`` (T,) are the noise-free objective values of the evaluated points (with
    noisy observations, evaluate f without noise: regret measures where the run has been, not
    how lucky the noise was). Non-increasing by construction; NaN entries are skipped.
    """
    v = np.asarray(true_values, dtype=np.float64).ravel()
    v = np.where(np.isfinite(v), v, np.inf)
    return np.minimum.accumulate(v) - float(optimum)


# ---------------------------------------------------------------------------------------------
# jitted pieces: their shapes are (grid size, bucket size), so they compile once per bucket
# ---------------------------------------------------------------------------------------------
@jax.jit
def _analytic(post, U, best, beta, min_samples):
    """Mean, sd and every closed-form acquisition (standardised units) at U: a dict of (m,)."""
    m, s = _marginals(post, U)
    return {
        "mean": m,
        "std": s,
        "ei": acq.expected_improvement(m, s, best),
        "log_ei": acq.log_expected_improvement(m, s, best),
        "pi": acq.probability_of_improvement(m, s, best),
        "lcb": acq.lower_confidence_bound(m, s, beta),
        "mes": acq.max_value_entropy_search(m, s, min_samples),
    }


@jax.jit
def _path_values(path, U):
    return path(U)


@jax.jit
def _noisy_ei(post, observed, U, base):
    return acq.noisy_expected_improvement(post, observed, U, base)


def _n_model_rows(post: Posterior) -> int:
    """Rows of the padded posterior that hold data (padding rows sit at FAR)."""
    return int(np.sum(np.all(np.asarray(post.X) < 0.5 * FAR, axis=1)))


def acquisition_surface(opt, X) -> AcquisitionSurface:
    """Posterior and acquisition of ``opt`` at X (m, d), as ``opt.ask()`` last saw them.

    ``opt`` is a :class:`bayeskit.bo.BayesianOptimizer` (``model="ml2"``, no ``user_prior``)
    whose last call was ``ask()`` after its initial design (so ``opt.posterior_`` is the model fitted to every finite observation told
    so far). X: (m, d) points inside ``opt.bounds``. Returns an :class:`AcquisitionSurface`
    (see the module docstring for the units). Raises ``ValueError`` when the model is missing or
    stale (points were told after the last ``ask()``), or X has the wrong shape or NaNs.
    """
    if getattr(opt, "model", "ml2") != "ml2" or getattr(opt, "user_prior", None) is not None:
        raise ValueError("acquisition_surface draws the ML-II loop (model='ml2', no user_prior); "
                         f"got model={getattr(opt, 'model', None)!r}, user_prior={getattr(opt, 'user_prior', None)!r}")
    post = getattr(opt, "posterior_", None)
    if post is None:
        raise ValueError("the optimizer has no fitted model yet: call ask() after the initial design first")
    X = np.asarray(X, dtype=np.float64)
    if X.ndim == 1 and opt.dim == 1:
        X = X[:, None]
    if X.ndim != 2 or X.shape[1] != opt.dim or X.shape[0] == 0:
        raise ValueError(f"X must have shape (m, {opt.dim}) with m >= 1; got {np.shape(X)}")
    if not np.all(np.isfinite(X)):
        raise ValueError("X contains NaN or infinite values")
    lo, hi = opt.bounds[:, 0], opt.bounds[:, 1]
    y_all = np.asarray(opt.func_vals, dtype=np.float64)
    ok = np.isfinite(y_all)
    n_told = len(opt.func_vals)
    n = int(np.sum(ok))
    if _n_model_rows(post) != n:
        raise ValueError(
            f"the model was fitted to {_n_model_rows(post)} points but the optimizer holds {n} finite "
            "observations: call ask() after tell() before drawing")
    y = y_all[ok]
    data = (np.asarray(opt.x_iters, dtype=np.float64).reshape(-1, opt.dim)[ok] - lo) / (hi - lo)
    # the loop's standardisation (BayesianOptimizer.fit_model)
    y_mean = float(np.mean(y))
    sd = float(np.std(y))
    y_std = sd if sd > 0 else 1.0
    z = (y - y_mean) / y_std
    U = jnp.asarray((X - lo) / (hi - lo))
    best = float(np.min(z)) if opt.noise is None else posterior_incumbent(post, data)

    name = opt.acquisition if isinstance(opt.acquisition, str) else "custom"
    kw = opt.acquisition_kwargs
    key = 17 * (opt.seed * 100003 + n_told)  # BayesianOptimizer.ask, one point (j = 0)
    min_samples = jnp.zeros(1)
    if name == "mes":
        min_samples = jnp.asarray(mes_min_samples(post, data, key, int(kw.get("n_samples", 16)),
                                                  best if opt.noise is None else None))
    out = _analytic(post, U, best, float(kw.get("beta", 4.0)), min_samples)
    mean = np.asarray(out["mean"]) * y_std + y_mean
    std = np.asarray(out["std"]) * y_std
    points = points_values = None
    maximize = True
    if name == "ei":
        a = np.asarray(out["ei"]) * y_std
    elif name == "log_ei":
        a = np.asarray(out["log_ei"]) + np.log(y_std)
    elif name == "pi":
        a = np.asarray(out["pi"])
    elif name == "lcb":
        a, maximize = np.asarray(out["lcb"]) * y_std + y_mean, False
    elif name == "mes":
        a = np.asarray(out["mes"])
    elif name == "ts":
        path = pathwise_posterior_sample(post, key, int(kw.get("n_features", 1024)))
        a, maximize = np.asarray(_path_values(path, U)) * y_std + y_mean, False
    elif name == "noisy_ei":
        observed, base = noisy_ei_inputs(data, key, int(kw.get("n_samples", 64)))
        a = np.asarray(_noisy_ei(post, jnp.asarray(observed), U, base)) * y_std
    elif name == "kg":
        cand, kg = knowledge_gradient_on_sobol(post, data, key, int(kw.get("kg_candidates", 128)))
        points, points_values = lo + cand * (hi - lo), kg * y_std
        a = np.full(X.shape[0], np.nan)
    else:  # a callable u(mean, std, best) in the units of y
        a = np.asarray(opt.acquisition(jnp.asarray(mean), jnp.asarray(std), best * y_std + y_mean),
                       dtype=np.float64)
    return AcquisitionSurface(X, mean, std, a, name, maximize, best * y_std + y_mean, points, points_values, n)
