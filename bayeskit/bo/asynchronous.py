"""Asynchronous Bayesian optimisation with simulated workers: AEGiS and a kriging-believer baseline.

Why asynchronous: with q workers and evaluation times that vary, a *synchronous* batch waits for
its slowest job before the next batch starts, so the other q - 1 workers sit idle. An
asynchronous optimiser hands a new point to each worker the moment it comes free, so it has to
choose points while other evaluations are still running ("pending" or "busy" points).

**AEGiS** (*Asynchronous epsilon-Greedy Bayesian Optimisation*, De Ath, Everson & Fieldsend): each
time a worker comes free, refit the GP to every finished evaluation and choose one of three moves:

* exploit, with probability 1 - epsilon: the minimiser of the posterior mean mu(x);
* Thompson sampling, with probability epsilon * eta: the minimiser of one posterior sample path
  (a random-Fourier-feature path conditioned by Matheron's rule,
  :func:`bayeskit.bo.sampling.pathwise_posterior_sample`);
* Pareto, with probability epsilon * (1 - eta): a point drawn uniformly from the Pareto set of
  the two objectives (minimise mu(x), maximise sigma(x)), the trade-off between exploitation and
  exploration. The paper approximates that set with NSGA-II; here it is the exact non-dominated
  subset (:func:`pareto_front_mask`) of a dense scrambled Sobol set of candidates.

Busy points, as the paper (and the authors' released code) handles them: AEGiS does **not**
condition on pending evaluations at all: no fantasised values, no penalty around them. Diversity
comes from the randomness of the two exploratory moves and from the refit after every completed
evaluation. The one place where busy workers matter is the start, when several proposals are made
from the same data: the first model-based proposal exploits (if epsilon < 1) and the next
``n_workers`` proposals only explore (Thompson or Pareto), after which the epsilon-greedy mixture
applies. Default epsilon, from the authors' code: epsilon = min(2 / sqrt(max(d, 4)), 1), eta = 1/2;
so for d <= 4 the default never exploits (the paper's Branin runs used it; try ``epsilon=0.5``).

**Baseline** (``strategy="kriging_believer"``): the loop's log-EI
(:class:`bayeskit.bo.BayesianOptimizer`), where each busy point is "believed" to return the
posterior mean there: the GP is conditioned on (pending x, mu(x)) with the same hyperparameters
(*Kriging is well-suited to parallelize optimization*), which removes the improvement at busy
points so the next proposal goes elsewhere.

**Simulated workers** (:func:`simulate_workers`): a discrete-event simulation. Each evaluation
takes a random duration (half-normal with mean 1 by default, as in the paper's experiments;
exponential, constant or a callable), drawn from a seeded generator; the simulation clock jumps to
the next completion, the optimiser is told the result and the freed worker gets a new point. With
``synchronous=True`` a batch of ``n_workers`` points is proposed only when every worker is free.
Evaluations are recorded in completion order, with start and finish times and worker ids, so
regret can be plotted against wall-clock time and against the number of evaluations.

All of this is for minimisation. Coordinates are scaled to the unit cube and outputs standardised
inside the model, as in :mod:`bayeskit.bo.loop`.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable

import jax.numpy as jnp
import numpy as np
import scipy.optimize

from .. import _config  # noqa: F401  (float64)
from .loop import BayesianOptimizer, _marginals, _u_log_ei, pad_posterior
from .optimize import bucket_size, maximize_acquisition, sobol_points
from .sampling import pathwise_posterior_sample
from .surrogate import condition_padded

__all__ = [
    "AsyncBayesianOptimizer",
    "aegis_minimize",
    "async_minimize",
    "simulate_workers",
    "pareto_front_mask",
    "aegis_epsilon",
    "incumbent_at",
    "STRATEGIES",
    "DURATIONS",
]

STRATEGIES = ("aegis", "kriging_believer")
DURATIONS = ("halfnormal", "exponential", "constant")


# ---------------------------------------------------------------------------------------------
# Pareto set
# ---------------------------------------------------------------------------------------------
def pareto_front_mask(objectives) -> np.ndarray:
    """Which rows of ``objectives`` (n, k) are non-dominated, all k objectives minimised: (n,) bool.

    Row a dominates row b when a <= b in every objective and a < b in at least one. Equal rows do
    not dominate each other, so duplicates of a non-dominated row are all kept. For k = 2 the
    rows are sorted by the first objective (ties by the second) and swept once: a row survives
    when it is the smallest second objective among rows with its first objective, and strictly
    below every second objective seen at a smaller first objective, O(n log n). For k > 2 the
    pairwise test is done in blocks, O(n^2 k).
    """
    F = np.asarray(objectives, dtype=np.float64)
    if F.ndim != 2 or F.shape[1] < 1:
        raise ValueError(f"objectives must be a 2-D array (n, k) with k >= 1; got shape {F.shape}")
    if not np.all(np.isfinite(F)):
        raise ValueError("objectives contain NaN or infinite values")
    n, k = F.shape
    if n == 0:
        return np.zeros(0, dtype=bool)
    if k == 1:
        return F[:, 0] == F[:, 0].min()
    if k == 2:
        order = np.lexsort((F[:, 1], F[:, 0]))
        f1, f2 = F[order, 0], F[order, 1]
        keep = np.zeros(n, dtype=bool)
        best_before = np.inf  # smallest f2 among rows with a strictly smaller f1
        i = 0
        while i < n:
            j = i
            while j + 1 < n and f1[j + 1] == f1[i]:
                j += 1
            group_min = f2[i]  # sorted by f2 within equal f1
            if group_min < best_before:
                keep[i : j + 1] = f2[i : j + 1] == group_min
            best_before = min(best_before, group_min)
            i = j + 1
        mask = np.zeros(n, dtype=bool)
        mask[order] = keep
        return mask
    mask = np.ones(n, dtype=bool)
    block = max(1, 2_000_000 // max(n * k, 1))
    for start in range(0, n, block):
        B = F[start : start + block]  # rows tested for being dominated
        le = np.all(F[None, :, :] <= B[:, None, :], axis=2)
        lt = np.any(F[None, :, :] < B[:, None, :], axis=2)
        mask[start : start + block] = ~np.any(le & lt, axis=1)
    return mask


def aegis_epsilon(dim: int) -> float:
    """The default exploration probability: min(2 / sqrt(max(d, 4)), 1).

    From the authors' released code for *Asynchronous epsilon-Greedy Bayesian Optimisation*
    (their per-move epsilon 1 / sqrt(d), d floored at 4, capped at 1/2; exploration is two such
    moves). It is 1 for d <= 4 and 0.63 for d = 10.
    """
    return float(min(2.0 / np.sqrt(max(int(dim), 4)), 1.0))


# ---------------------------------------------------------------------------------------------
# Utilities on the unit cube (module level: maximize_acquisition caches compiled code per function)
# ---------------------------------------------------------------------------------------------
def _u_neg_mean(X, post):
    return -_marginals(post, X)[0]


def _u_neg_path(X, path):
    return -path(X)


def _check_probability(value, name):
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number in [0, 1]; got {value!r}") from None
    if not (0.0 <= v <= 1.0):
        raise ValueError(f"{name} must be in [0, 1]; got {v}")
    return v


def _check_int(value, name, minimum):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}; got {value!r}")
    return int(value)


class AsyncBayesianOptimizer:
    """Ask/tell Bayesian optimisation that knows about busy points (minimisation).

    Parameters
    ----------
    bounds : list of (low, high)
        The search box.
    strategy : "aegis" or "kriging_believer"
        How to choose a point while others are pending (see the module docstring).
    seed : int
        Seeds the initial Sobol design, model fits, the move choice and the Monte-Carlo draws.
    n_workers : int
        Number of workers; AEGiS explores only for the first ``n_workers`` proposals after its
        first exploit (they are made before any of its own points has returned).
    epsilon, eta : float
        AEGiS: probability of an exploratory move (default :func:`aegis_epsilon`), and the share
        of those that are Thompson samples (the rest are Pareto-set draws).
    n_initial_points, noise, acquisition_kwargs
        As :class:`bayeskit.bo.BayesianOptimizer` (whose model and data this object uses);
        ``acquisition_kwargs`` also takes ``n_features`` (Thompson paths, default 1024) and
        ``n_pareto`` (Sobol candidates for the Pareto set, default 1024 d).

    After each model-based ``ask``, ``last_move`` is "exploit", "thompson", "pareto" or
    "log_ei"; it is "initial" for design points.
    """

    def __init__(self, bounds, strategy: str = "aegis", seed: int = 0, *, n_workers: int = 1,
                 epsilon: float | None = None, eta: float = 0.5, n_initial_points: int | None = None,
                 noise=None, acquisition_kwargs: dict | None = None):
        if strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {STRATEGIES}; got {strategy!r}")
        self.strategy = strategy
        self._bo = BayesianOptimizer(bounds, "log_ei", seed, n_initial_points=n_initial_points, noise=noise,
                                     acquisition_kwargs=acquisition_kwargs)
        self.bounds, self.dim, self.seed = self._bo.bounds, self._bo.dim, self._bo.seed
        self.n_workers = _check_int(n_workers, "n_workers", 1)
        self.epsilon = aegis_epsilon(self.dim) if epsilon is None else _check_probability(epsilon, "epsilon")
        self.eta = _check_probability(eta, "eta")
        self.acquisition_kwargs = dict(acquisition_kwargs or {})
        self._rng = np.random.default_rng([self.seed, 7])  # move choice and Pareto draws
        self._n_design = 0  # design points handed out
        self._n_model = 0  # model-based proposals made (the paper's t)
        self._fit_n = -1  # number of observations at the last fit
        self.last_move: str | None = None

    # -- data ---------------------------------------------------------------------------------
    @property
    def x_iters(self):
        return self._bo.x_iters

    @property
    def func_vals(self):
        return self._bo.func_vals

    def tell(self, x, y):
        """Record y = f(x) (x (d,) and a scalar, or (k, d) and (k,)); returns self."""
        self._bo.tell(x, y)
        return self

    def result(self) -> scipy.optimize.OptimizeResult:
        """As :meth:`bayeskit.bo.BayesianOptimizer.result`."""
        return self._bo.result()

    def _pending_unit(self, pending):
        if pending is None:
            return np.zeros((0, self.dim))
        P = np.asarray(pending, dtype=np.float64)
        if P.size == 0:
            return np.zeros((0, self.dim))
        if P.ndim == 1:
            P = P[None, :]
        if P.ndim != 2 or P.shape[1] != self.dim:
            raise ValueError(f"pending must have shape (k, {self.dim}); got {np.shape(pending)}")
        if not np.all(np.isfinite(P)):
            raise ValueError("pending contains NaN or infinite values")
        lo, hi = self.bounds[:, 0], self.bounds[:, 1]
        tol = 1e-9 * (hi - lo)
        if np.any(P < lo - tol) or np.any(P > hi + tol):
            raise ValueError(f"pending points must lie inside bounds {self.bounds.tolist()}")
        return np.clip(self._bo._to_unit(P), 0.0, 1.0)

    def _fit(self):
        n = len(self._bo.func_vals)
        if n != self._fit_n:  # refit only when new data arrived
            self._post, self._best = self._bo.fit_model()
            self._U, self._z = np.array(self._bo._U), np.array(self._bo._z)
            self._fit_n = n
        return self._post, self._best

    # -- proposals ----------------------------------------------------------------------------
    def ask(self, pending=None) -> np.ndarray:
        """The next point (d,) for a free worker; ``pending`` (k, d): points still being evaluated."""
        P = self._pending_unit(pending)
        X, _ = self._bo._valid()
        n0 = self._bo.n_initial_points
        if self._n_design < n0 or X.shape[0] < 2:
            i = self._n_design
            if i >= self._bo._initial.shape[0]:
                self._bo._initial = sobol_points(i + 1, self.dim, self.seed)
            self._n_design += 1
            self.last_move = "initial"
            return self._bo._from_unit(self._bo._initial[i])
        post, best = self._fit()
        step = self.seed * 100003 + 7919 * self._n_model + len(self._bo.func_vals)
        if self.strategy == "aegis":
            u = self._aegis(post, step)
        else:
            u = self._believer(post, best, P, step)
        self._n_model += 1
        return self._bo._from_unit(u)

    def _aegis(self, post, step):
        t = self._n_model
        kw = self.acquisition_kwargs
        n_c = int(kw.get("n_candidates", 1024))
        exploit = (t == 0 and self.epsilon < 1.0) or (t > self.n_workers and self._rng.random() < 1.0 - self.epsilon)
        if exploit:
            self.last_move = "exploit"
            x, _ = maximize_acquisition(_u_neg_mean, self.dim, args=(post,), seed=step, n_candidates=n_c,
                                        candidates=self._U)
            return x
        if self._rng.random() < self.eta:
            self.last_move = "thompson"
            path = pathwise_posterior_sample(post, step, int(kw.get("n_features", 1024)))
            x, _ = maximize_acquisition(_u_neg_path, self.dim, args=(path,), seed=step, n_candidates=n_c)
            return x
        self.last_move = "pareto"
        cand = sobol_points(int(kw.get("n_pareto", 1024 * self.dim)), self.dim, step)
        mean, std = _marginals(post, jnp.asarray(cand))
        mask = pareto_front_mask(np.column_stack([np.asarray(mean), -np.asarray(std)]))
        front = np.flatnonzero(mask)
        return cand[int(self._rng.choice(front))]

    def _believer(self, post, best, P, step):
        self.last_move = "log_ei"
        U, z = self._U, self._z
        if len(P):
            believed = np.asarray(_marginals(post, jnp.asarray(P))[0])
            U, z = np.vstack([U, P]), np.append(z, believed)
            # a believed value is an observation too (as the loop's batch ask treats it)
            best = min(best, float(believed.min()))
            post = condition_padded(post.kernel, U, z, float(post.noise), bucket_size(len(z)))
        post = pad_posterior(post, bucket_size(len(z)))
        n_c = int(self.acquisition_kwargs.get("n_candidates", 1024))
        x, _ = maximize_acquisition(_u_log_ei, self.dim, args=(post, best), seed=step, n_candidates=n_c,
                                    candidates=U)
        return x


# ---------------------------------------------------------------------------------------------
# Discrete-event simulation of workers
# ---------------------------------------------------------------------------------------------
def _duration_sampler(duration):
    if duration is None or duration == "halfnormal":
        scale = np.sqrt(np.pi / 2.0)  # |N(0, pi/2)| has mean 1
        return lambda x, rng: abs(scale * rng.standard_normal())
    if duration == "exponential":
        return lambda x, rng: rng.exponential(1.0)
    if duration == "constant":
        return lambda x, rng: 1.0
    if callable(duration):
        return duration
    raise ValueError(f"duration must be None, one of {DURATIONS} or a callable (x, rng) -> seconds; got {duration!r}")


def _evaluate(f, x):
    try:
        return float(np.asarray(f(x)))
    except (TypeError, ValueError) as err:
        raise TypeError(f"f must return a number; at x={np.asarray(x).tolist()} it returned an unusable value ({err})") from None


def simulate_workers(optimizer, f: Callable, n_calls: int, n_workers: int = 4, *, duration=None, seed: int = 0,
                     synchronous: bool = False) -> scipy.optimize.OptimizeResult:
    """Run ``optimizer`` (``ask(pending=...)``/``tell``) with ``n_workers`` simulated workers.

    Discrete-event simulation: a free worker receives ``optimizer.ask(pending=busy points)`` and
    its evaluation finishes ``duration`` simulated seconds later; the clock jumps to the earliest
    finish, f is evaluated there, the optimiser is told (x, y) and the worker is free again.
    Evaluations finishing at exactly the same time are told together before the next ask. With
    ``synchronous=True`` new points are only handed out when all workers are free (a batch of
    ``n_workers``, each proposal seeing the earlier ones in the batch as pending).

    duration: None or "halfnormal" (|N(0, pi / 2)|, mean 1, as in the AEGiS experiments),
    "exponential" (mean 1), "constant" (1), or a callable ``(x, rng) -> seconds`` (rng a numpy
    Generator). Durations come from ``numpy.random.default_rng([seed, 1])``.

    Returns a ``scipy.optimize.OptimizeResult`` with, in completion order: ``x_iters`` (list of
    (d,)), ``func_vals`` (n,), ``start_times``, ``finish_times`` (non-decreasing), ``durations``,
    ``workers`` (int ids), ``moves`` (``optimizer.last_move`` at each ask, or None), plus ``x``,
    ``fun`` (best finite value), ``wall_time`` (last finish), ``utilisation`` (busy worker time /
    (n_workers * wall_time)), ``n_workers``, ``nit``.
    """
    n_calls = _check_int(n_calls, "n_calls", 1)
    n_workers = _check_int(n_workers, "n_workers", 1)
    if not callable(f):
        raise TypeError(f"f must be callable; got {type(f).__name__}")
    sample = _duration_sampler(duration)
    rng = np.random.default_rng([int(seed), 1])
    free = list(range(n_workers))
    running: list = []  # heap of (finish, order, worker, x, start, move)
    now, submitted, order = 0.0, 0, 0
    rec = {k: [] for k in ("x", "y", "start", "finish", "worker", "move")}

    def submit():
        nonlocal submitted, order
        pending = np.array([job[3] for job in running]) if running else None
        x = np.asarray(optimizer.ask(pending=pending), dtype=np.float64)
        move = getattr(optimizer, "last_move", None)
        dt = float(sample(x, rng))
        if not np.isfinite(dt) or dt < 0:
            raise ValueError(f"duration must return a finite time >= 0; got {dt}")
        heapq.heappush(running, (now + dt, order, free.pop(0), x, now, move))
        submitted += 1
        order += 1

    while len(rec["y"]) < n_calls:
        if not synchronous or len(free) == n_workers:
            while free and submitted < n_calls:
                submit()
        finish = running[0][0]
        while running and running[0][0] == finish:
            _, _, worker, x, start, move = heapq.heappop(running)
            now = finish
            y = _evaluate(f, x)
            optimizer.tell(x, y)
            free.append(worker)
            for key, v in zip(("x", "y", "start", "finish", "worker", "move"), (x, y, start, finish, worker, move)):
                rec[key].append(v)
        free.sort()

    y = np.asarray(rec["y"], dtype=np.float64)
    finite = np.isfinite(y)
    if finite.any():
        i = int(np.argmin(np.where(finite, y, np.inf)))
        best_x, best_f = rec["x"][i], float(y[i])
    else:
        best_x, best_f = None, np.nan
    start, finish = np.asarray(rec["start"]), np.asarray(rec["finish"])
    wall = float(finish.max())
    busy = float(np.sum(finish - start))
    return scipy.optimize.OptimizeResult(
        x=best_x, fun=best_f, x_iters=list(rec["x"]), func_vals=y, start_times=start, finish_times=finish,
        durations=finish - start, workers=np.asarray(rec["worker"], dtype=int), moves=list(rec["move"]),
        wall_time=wall, utilisation=busy / (n_workers * wall) if wall > 0 else 1.0, n_workers=n_workers,
        nit=len(y), success=best_x is not None,
        message="done" if best_x is not None else "no finite objective value",
    )


def async_minimize(f: Callable, bounds, n_calls: int = 50, n_workers: int = 4, *, strategy: str = "aegis",
                   synchronous: bool = False, seed: int = 0, duration=None, epsilon: float | None = None,
                   eta: float = 0.5, n_initial_points: int | None = None, noise=None,
                   acquisition_kwargs: dict | None = None) -> scipy.optimize.OptimizeResult:
    """Minimise f over a box with ``n_workers`` simulated parallel workers.

    ``strategy``: "aegis" or "kriging_believer" (log-EI, busy points believed at the posterior
    mean); ``synchronous``: batches instead of asynchronous hand-outs. See
    :class:`AsyncBayesianOptimizer` and :func:`simulate_workers` (for the result's fields).
    """
    opt = AsyncBayesianOptimizer(bounds, strategy, seed, n_workers=n_workers, epsilon=epsilon, eta=eta,
                                 n_initial_points=n_initial_points, noise=noise,
                                 acquisition_kwargs=acquisition_kwargs)
    return simulate_workers(opt, f, n_calls, n_workers, duration=duration, seed=seed, synchronous=synchronous)


def aegis_minimize(f: Callable, bounds, n_calls: int = 50, n_workers: int = 4, *, epsilon: float | None = None,
                   eta: float = 0.5, seed: int = 0, duration=None, synchronous: bool = False,
                   n_initial_points: int | None = None, noise=None,
                   acquisition_kwargs: dict | None = None) -> scipy.optimize.OptimizeResult:
    """AEGiS (*Asynchronous epsilon-Greedy Bayesian Optimisation*) with simulated workers.

    Each free worker gets the posterior-mean minimiser (probability 1 - epsilon), a Thompson
    sample's minimiser (epsilon eta) or a random point of the (mean, std) Pareto set
    (epsilon (1 - eta)); busy points are not modelled (module docstring). Returns the result of
    :func:`simulate_workers`: ``x``, ``fun``, ``x_iters``, ``func_vals``, ``start_times``,
    ``finish_times``, ``workers``, ``moves``, ``wall_time``, ``utilisation``.
    """
    return async_minimize(f, bounds, n_calls, n_workers, strategy="aegis", synchronous=synchronous, seed=seed,
                          duration=duration, epsilon=epsilon, eta=eta, n_initial_points=n_initial_points,
                          noise=noise, acquisition_kwargs=acquisition_kwargs)


def incumbent_at(result, times) -> np.ndarray:
    """Best finite value among evaluations finished by each time in ``times`` (t,); NaN before any.

    For averaging regret-versus-wall-clock curves over seeds on a common time grid.
    """
    times = np.asarray(times, dtype=np.float64)
    finish = np.asarray(result.finish_times, dtype=np.float64)
    y = np.where(np.isfinite(result.func_vals), result.func_vals, np.inf)
    order = np.argsort(finish, kind="stable")
    best = np.minimum.accumulate(y[order])
    idx = np.searchsorted(finish[order], times, side="right") - 1
    out = np.where(idx >= 0, best[np.maximum(idx, 0)], np.nan)
    return np.where(np.isinf(out), np.nan, out)
