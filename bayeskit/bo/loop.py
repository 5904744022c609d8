"""The Bayesian-optimisation loop: an ask/tell optimiser and a scipy-style ``minimize``.

Surrogate: a GP with a Matern-5/2 ARD kernel (``bayeskit.kernels.Matern52`` with one lengthscale
per input) fitted by ML-II (``bayeskit.gp.fit_ml2``) on inputs scaled to the unit cube and outputs
standardised to zero mean and unit variance; the acquisition is maximised on the unit cube
(:func:`bayeskit.bo.optimize.maximize_acquisition`) and the point mapped back to ``bounds``.

Incumbent ``best``: for noise-free problems (``noise=None``) the best observed value; for noisy
ones (``noise`` a variance, or ``"fit"``) observations are unreliable, so it is the lowest
posterior mean at the observed points (Frazier, *A Tutorial on Bayesian Optimization*,
section 5, suggests this plug-in).

``model="fully_bayesian"`` replaces the ML-II fit by NUTS draws of the hyperparameters and
averages the acquisition over them (:mod:`bayeskit.bo.fully_bayesian`, *How Bayesian Should
Bayesian Optimisation Be?*); ``ard=False`` uses one lengthscale for every input (isotropic
Matern-5/2). ``user_prior`` (a :class:`bayeskit.bo.user_guided.UserPrior` over the minimiser's
location) turns EI / log EI / PI / Thompson sampling into their ColaBO versions, Monte-Carlo
estimates over posterior sample paths reweighted by the prior at each path's minimiser
(:mod:`bayeskit.bo.user_guided`, *A General Framework for User-Guided Bayesian Optimization*).

Non-finite objective values are recorded in ``func_vals`` but kept out of the model, with a
warning. Duplicate points are harmless: a noise-free model still carries a 1e-6 nugget (in
standardised units), and jitter escalation covers the rest.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import scipy.optimize

from .. import _config  # noqa: F401  (float64)
from .._validation import as_prng_key
from ..gp.exact import Posterior
from ..kernels import Matern52
from . import acquisitions as acq
from . import fully_bayesian as fb
from . import user_guided as ug
from .optimize import bucket_size, maximize_acquisition, sobol_points
from .sampling import joint_posterior_samples, pathwise_posterior_sample
from .surrogate import FAR, condition_padded, fit_padded_gp

__all__ = ["BayesianOptimizer", "minimize", "validate_bounds", "pad_posterior", "ACQUISITIONS", "MODELS",
           "FULLY_BAYESIAN_ACQUISITIONS"]

ACQUISITIONS = ("ei", "log_ei", "pi", "lcb", "ts", "kg", "mes", "noisy_ei")
MODELS = ("ml2", "fully_bayesian")
#: acquisitions that model="fully_bayesian" averages over hyperparameter draws (and callables)
FULLY_BAYESIAN_ACQUISITIONS = ("ei", "log_ei", "pi", "lcb", "ts")
_MCMC_KEYS = ("num_warmup", "num_samples", "num_chains", "thin", "prior", "target_acceptance_rate")
_NUGGET = 1e-6  # noise variance of a "noise-free" model, in standardised units
_STD_FLOOR = 1e-9  # posterior std floor: the acquisitions divide by it


def validate_bounds(bounds) -> np.ndarray:
    """``bounds`` as a (d, 2) float array of finite (low, high) pairs with low < high."""
    try:
        arr = np.asarray(bounds, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"bounds must be a list of (low, high) pairs of numbers; got {bounds!r}") from None
    if arr.ndim != 2 or arr.shape[1] != 2 or arr.shape[0] == 0:
        raise ValueError(f"bounds must be a non-empty list of (low, high) pairs, shape (d, 2); got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("bounds must be finite numbers; got NaN or infinity")
    bad = np.nonzero(~(arr[:, 0] < arr[:, 1]))[0]
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"bounds[{i}] must satisfy low < high; got ({arr[i, 0]}, {arr[i, 1]})")
    return arr


# ---------------------------------------------------------------------------------------------
# Acquisitions as functions of (X_unit (m, d), posterior, ...) -> utilities (m,), to maximise.
# Module-level so the compiled code is reused between iterations (see maximize_acquisition).
# ---------------------------------------------------------------------------------------------
def _marginals(post, X):
    Ks = post.kernel(post.X, X)
    mean = Ks.T @ post.alpha
    V = jax.scipy.linalg.solve_triangular(post.L, Ks, lower=True)
    var = post.kernel.diag(X) - jnp.sum(V * V, axis=0)
    return mean, jnp.sqrt(jnp.maximum(var, _STD_FLOOR**2))


_marginals_jit = jax.jit(_marginals)
_mean_cov_jit = jax.jit(acq.posterior_mean_cov)


def pad_rows(data: np.ndarray, size: int) -> np.ndarray:
    """data (n, d) padded to (size, d) by repeating its first row.

    Used where the observed points enter a computation whose result a repeated point cannot
    change (a minimum over them, a line of the KG envelope): the shapes then stay at a bucket
    size and the compiled code is reused as n grows.
    """
    return np.vstack([data, np.repeat(data[:1], size - data.shape[0], axis=0)])


def posterior_incumbent(post, data) -> float:
    """The lowest posterior mean at the observed points (the noisy-problem incumbent)."""
    n = data.shape[0]
    mean, _ = _marginals_jit(post, jnp.asarray(pad_rows(data, bucket_size(n))))
    return float(np.min(np.asarray(mean)[:n]))


def mes_min_samples(post, data, step, n_samples: int, best: float | None) -> np.ndarray:
    """Samples of the minimum for MES: minima of joint draws on 256 Sobol points and the data.

    ``best`` (noise-free problems) caps them below the best observed value, which f* cannot exceed.
    """
    cand = np.vstack([sobol_points(256, data.shape[1], step), pad_rows(data, bucket_size(data.shape[0]))])
    mins = joint_posterior_samples(post, cand, step, n_samples).min(axis=1)
    return mins if best is None else np.minimum(mins, best - 1e-6)


def knowledge_gradient_on_sobol(post, data, step, n_candidates: int):
    """(candidates (k, d), exact discrete KG at each (k,)) with the data in the envelope's set A."""
    cand = sobol_points(n_candidates, data.shape[1], step)
    A = np.vstack([cand, pad_rows(data, bucket_size(data.shape[0]))])
    mean, cov = _mean_cov_jit(post, jnp.asarray(A))
    cov = np.asarray(cov)
    k = len(cand)
    return cand, acq.knowledge_gradient(np.asarray(mean), cov[:, :k], np.diag(cov)[:k], float(post.noise))


def noisy_ei_inputs(data, step, n_samples: int):
    """(observed points padded to a bucket (size, d), base normal samples (n_samples, size + 1))."""
    size = bucket_size(data.shape[0])
    return pad_rows(data, size), jax.random.normal(as_prng_key(step), (n_samples, size + 1))


def _u_ei(X, post, best):
    m, s = _marginals(post, X)
    return acq.expected_improvement(m, s, best)


def _u_log_ei(X, post, best):
    m, s = _marginals(post, X)
    return acq.log_expected_improvement(m, s, best)


def _u_log_pi(X, post, best):
    m, s = _marginals(post, X)
    return acq.log_probability_of_improvement(m, s, best)


def _u_lcb(X, post, beta):
    m, s = _marginals(post, X)
    return -acq.lower_confidence_bound(m, s, beta)


def _u_mes(X, post, min_samples):
    m, s = _marginals(post, X)
    return acq.max_value_entropy_search(m, s, min_samples)


def _u_noisy_ei(X, post, X_observed, base_samples):
    return acq.noisy_expected_improvement(post, X_observed, X, base_samples)


def _u_qei(Xflat, post, best, base_samples):
    q = base_samples.shape[1]
    Xq = Xflat.reshape(q, -1)
    return acq.q_expected_improvement(post, Xq, best, base_samples)[None]


_FAR = FAR  # unit-cube coordinate of padding points: every stationary kernel is exactly 0 there


def pad_posterior(post: Posterior, size: int) -> Posterior:
    """The same posterior stored with ``size`` >= n training rows (a fixed shape for jit).

    Padding rows sit at distance ~1e6 (in the unit cube) from everything, where a stationary
    kernel underflows to exactly 0; with an identity block in L and zeros in alpha they change
    neither the mean nor the covariance anywhere in the cube.
    """
    n, d = post.X.shape
    extra = size - n
    if extra <= 0:
        return post
    # built in numpy: eager JAX updates would compile once per shape
    X = np.full((size, d), _FAR)
    X[:n] = np.asarray(post.X)
    L = np.eye(size)
    L[:n, :n] = np.asarray(post.L)
    alpha = np.zeros(size)
    alpha[:n] = np.asarray(post.alpha)
    return Posterior(post.kernel, jnp.asarray(X), jnp.asarray(L), jnp.asarray(alpha), post.noise)


class BayesianOptimizer:
    """Ask/tell Bayesian optimisation of a function on a box, for minimisation.

    Parameters
    ----------
    bounds : list of (low, high)
        The search box, one pair per input dimension.
    acquisition : str or callable
        One of ``"ei"``, ``"log_ei"`` (default), ``"pi"`` (maximised as log PI: same maximiser),
        ``"lcb"`` (``beta`` in ``acquisition_kwargs``, default 4), ``"ts"`` (Thompson sampling:
        a random-Fourier-feature posterior sample path, minimised), ``"kg"`` (knowledge gradient
        on a Sobol set), ``"mes"`` (max-value entropy search with minima of joint posterior
        samples), ``"noisy_ei"`` (Monte-Carlo noisy EI). A callable ``u(mean, std, best)`` gets
        the posterior mean and standard deviation (in the units of y) of f at candidate points
        and the incumbent, as JAX arrays, and returns utilities to maximise; it must be JAX
        differentiable.
    seed : int
        Seeds the initial design, candidate sets, ML-II restarts and Monte-Carlo draws.
    n_initial_points : int, default 2 d + 1
        Points of a scrambled Sobol design evaluated before the GP takes over.
    noise : None, float or "fit"
        None: noise-free objective. A float: known observation-noise variance (units of y^2).
        "fit": estimate the noise variance by ML-II.
    acquisition_kwargs : dict
        ``beta`` (lcb), ``n_samples`` (mes, noisy_ei, batch q-EI), ``n_candidates`` (Sobol
        screen of the acquisition optimiser), ``kg_candidates`` (KG's discrete set, default 128),
        ``kg_method`` (``"discrete"``, default: exact KG on a Sobol set; ``"one_shot"``: the
        one-shot KG of :mod:`bayeskit.bo.one_shot_kg`, with ``n_fantasies``, default 64),
        ``n_features`` (ts, and the sample paths of ColaBO), ``n_paths`` (ColaBO sample paths,
        default 128), ``n_grid`` (Sobol points for each path's minimiser, default 512).
    model : "ml2" (default) or "fully_bayesian"
        ML-II point estimate of the hyperparameters, or NUTS draws of them with the acquisition
        averaged over the draws (``"ei"``, ``"log_ei"``, ``"pi"``, ``"lcb"``, ``"ts"`` or a
        callable); see :mod:`bayeskit.bo.fully_bayesian`.
    ard : bool, default True
        One lengthscale per input (ARD) or a single one (isotropic Matern-5/2).
    user_prior : bayeskit.bo.user_guided.UserPrior, optional
        A prior over the location of the minimiser, in the coordinates of ``bounds``. Turns
        ``"ei"``, ``"log_ei"``, ``"pi"``, ``"ts"`` into ColaBO's reweighted Monte-Carlo versions
        (:mod:`bayeskit.bo.user_guided`); works with either model.
    mcmc_kwargs : dict, optional
        For ``model="fully_bayesian"``: ``num_warmup`` (default 150), ``num_samples`` (64),
        ``num_chains`` (2), ``thin`` (4): S = chains x samples / thin draws (32 by default);
        ``prior`` ({"lengthscale" | "variance" | "noise": bayeskit.gp.bayesian prior}, over
        :data:`bayeskit.bo.fully_bayesian.DEFAULT_HYPER_PRIOR`); ``target_acceptance_rate``.
        Each fit warm-starts its chains at the previous fit's last positions.

    Attributes: ``x_iters`` (list of (d,) arrays), ``func_vals`` (list of floats), and after a
    model fit ``kernel_``, ``noise_`` (standardised units) and ``posterior_`` (a single padded
    posterior; under ``model="fully_bayesian"`` the one at the draws' median hyperparameters,
    with every draw in ``fully_bayesian_`` (:class:`bayeskit.bo.fully_bayesian.FullyBayesianGP`));
    with a ``user_prior``, ``colabo_`` (:class:`bayeskit.bo.user_guided.ReweightedPaths`) holds
    the last step's paths, minimisers and weights.
    """

    def __init__(self, bounds, acquisition="log_ei", seed: int = 0, *, n_initial_points: int | None = None,
                 noise=None, acquisition_kwargs: dict | None = None, model: str = "ml2", ard: bool = True,
                 user_prior=None, mcmc_kwargs: dict | None = None):
        self.bounds = validate_bounds(bounds)
        self.dim = self.bounds.shape[0]
        if not callable(acquisition) and acquisition not in ACQUISITIONS:
            raise ValueError(f"acquisition must be one of {ACQUISITIONS} or a callable; got {acquisition!r}")
        self.acquisition = acquisition
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise TypeError(f"seed must be an int; got {seed!r}")
        self.seed = int(seed)
        n0 = 2 * self.dim + 1 if n_initial_points is None else n_initial_points
        if isinstance(n0, bool) or not isinstance(n0, (int, np.integer)) or n0 < 1:
            raise ValueError(f"n_initial_points must be an int >= 1; got {n_initial_points!r}")
        self.n_initial_points = int(n0)
        if noise is not None and noise != "fit":
            noise = float(noise)
            if not np.isfinite(noise) or noise < 0:
                raise ValueError(f"noise must be None, 'fit' or a finite variance >= 0; got {noise}")
        self.noise = noise
        self.acquisition_kwargs = dict(acquisition_kwargs or {})
        if self.acquisition_kwargs.get("kg_method", "discrete") not in ("discrete", "one_shot"):
            raise ValueError("acquisition_kwargs['kg_method'] must be 'discrete' or 'one_shot'; "
                             f"got {self.acquisition_kwargs['kg_method']!r}")
        if model not in MODELS:
            raise ValueError(f"model must be one of {MODELS}; got {model!r}")
        self.model = model
        if not isinstance(ard, (bool, np.bool_)):
            raise TypeError(f"ard must be True or False; got {ard!r}")
        self.ard = bool(ard)
        if model == "fully_bayesian" and not callable(acquisition) and acquisition not in FULLY_BAYESIAN_ACQUISITIONS:
            raise ValueError(f"model='fully_bayesian' supports acquisition in {FULLY_BAYESIAN_ACQUISITIONS} or a "
                             f"callable; got {acquisition!r}")
        self.mcmc_kwargs = dict(mcmc_kwargs or {})
        unknown = set(self.mcmc_kwargs) - set(_MCMC_KEYS)
        if unknown:
            raise ValueError(f"mcmc_kwargs has unknown keys {sorted(unknown)}; the keys are {_MCMC_KEYS}")
        if user_prior is not None:
            if not isinstance(user_prior, ug.UserPrior):
                raise TypeError(f"user_prior must be a bayeskit.bo.user_guided.UserPrior; got {type(user_prior).__name__}")
            if callable(acquisition) or acquisition not in ug.COLABO_ACQUISITIONS:
                raise ValueError(f"user_prior (ColaBO) supports acquisition in {ug.COLABO_ACQUISITIONS}; "
                                 f"got {acquisition!r}")
            user_prior = user_prior.bind(self.bounds)
        self.user_prior = user_prior
        self.x_iters: list[np.ndarray] = []
        self.func_vals: list[float] = []
        self._initial = sobol_points(max(self.n_initial_points, 1), self.dim, self.seed)
        self._kernel = None
        self._n_fits = 0
        self._fb_last = None  # last NUTS positions: the next fit's warm start

    # -- scaling -----------------------------------------------------------------------------
    def _to_unit(self, X):
        return (np.asarray(X) - self.bounds[:, 0]) / (self.bounds[:, 1] - self.bounds[:, 0])

    def _from_unit(self, U):
        lo, hi = self.bounds[:, 0], self.bounds[:, 1]
        return np.clip(lo + np.asarray(U) * (hi - lo), lo, hi)

    # -- data ----------------------------------------------------------------------------------
    def tell(self, x, y):
        """Record y = f(x); x (d,) and a scalar y, or x (k, d) and y (k,). Returns self.

        A non-finite y is recorded but kept out of the model (with a warning).
        """
        X = np.asarray(x, dtype=np.float64)
        Y = np.atleast_1d(np.asarray(y, dtype=np.float64))
        if X.ndim == 1:
            X = X[None, :]
        if X.ndim != 2 or X.shape[1] != self.dim:
            raise ValueError(f"x must have shape ({self.dim},) or (k, {self.dim}); got {np.shape(x)}")
        if Y.ndim != 1 or Y.shape[0] != X.shape[0]:
            raise ValueError(f"y must be a scalar or (k,) with k = {X.shape[0]} rows of x; got shape {np.shape(y)}")
        if not np.all(np.isfinite(X)):
            raise ValueError("x contains NaN or infinite values")
        lo, hi = self.bounds[:, 0], self.bounds[:, 1]
        tol = 1e-9 * (hi - lo)
        if np.any(X < lo - tol) or np.any(X > hi + tol):
            raise ValueError(f"x must lie inside bounds {self.bounds.tolist()}; got {X.tolist()}")
        for xi, yi in zip(X, Y):
            if not np.isfinite(yi):
                warnings.warn(
                    f"objective value at x={xi.tolist()} is {yi}; it is recorded but kept out of the GP model",
                    RuntimeWarning, stacklevel=2,
                )
            self.x_iters.append(np.clip(xi, lo, hi))
            self.func_vals.append(float(yi))
        return self

    def _valid(self):
        y = np.asarray(self.func_vals, dtype=np.float64)
        ok = np.isfinite(y)
        X = np.asarray(self.x_iters, dtype=np.float64).reshape(-1, self.dim)
        return X[ok], y[ok]

    # -- model ---------------------------------------------------------------------------------
    def fit_model(self):
        """Fit the GP surrogate to the finite observations; returns (posterior, best) in model units.

        Under ``model="fully_bayesian"`` the posterior is the batch of S per-draw posteriors
        (leaves with a leading draw axis; see :class:`bayeskit.bo.fully_bayesian.FullyBayesianGP`).
        """
        X, y = self._valid()
        self._fitted_at = len(self.func_vals)
        U = self._to_unit(X)
        self._y_mean = float(np.mean(y))
        sd = float(np.std(y))
        self._y_std = sd if sd > 0 else 1.0
        z = (y - self._y_mean) / self._y_std
        if self.model == "fully_bayesian":
            return self._fit_fully_bayesian(U, z)
        kernel = self._kernel or Matern52(lengthscale=np.full(self.dim, 0.3) if self.ard else 0.3, variance=1.0)
        if self.noise is None:
            noise0, fixed, nb = _NUGGET, True, None
        elif self.noise == "fit":
            noise0, fixed, nb = 1e-2, False, (1e-6, 1.0)
        else:
            noise0, fixed, nb = max(self.noise / self._y_std**2, _NUGGET), True, None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # jitter warnings during the search are expected
            try:
                # warm start from the last fit; a random restart on every fifth fit guards
                # against staying in a poor local optimum of the marginal likelihood
                restarts = 1 if self._n_fits % 5 == 0 else 0
                kernel, noise, post = fit_padded_gp(
                    kernel, U, z, noise0, size=bucket_size(len(z)), noise_fixed=fixed,
                    noise_bounds=nb or (1e-6, 1.0), n_restarts=restarts, seed=self.seed + len(y))
            except np.linalg.LinAlgError:
                noise = noise0  # keep the previous hyperparameters
                post = condition_padded(kernel, U, z, noise, bucket_size(len(z)))
        self._n_fits += 1
        self._kernel, self.kernel_, self.noise_ = kernel, kernel, noise
        self.posterior_ = post  # padded: see bayeskit.bo.surrogate
        self._U, self._z = U, z
        if self.noise is None:
            best = float(np.min(z))
        else:
            best = posterior_incumbent(post, U)
        return self.posterior_, best

    def _fit_fully_bayesian(self, U, z):
        if self.noise is None:
            noise = _NUGGET
        elif self.noise == "fit":
            noise = None  # sampled with the kernel hyperparameters
        else:
            noise = max(self.noise / self._y_std**2, _NUGGET)
        kw = {k: v for k, v in self.mcmc_kwargs.items()}
        n = len(z)
        # one padded size up to 32 points: the sampler compiles once for a whole short run
        size = _fb_size(n)
        key = jax.random.fold_in(jax.random.key(self.seed), n)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # jitter / divergence chatter is summarised below
            fit = fb.fit_fully_bayesian(U, z, size=size, ard=self.ard, noise=noise, key=key,
                                        init=self._fb_last, **kw)
        fb._check_divergences(fit)
        self._fb_last = fit.last_positions
        self._n_fits += 1
        self.fully_bayesian_ = fit
        # a single representative posterior (median hyperparameters) for plots and widgets
        ls = np.median(np.asarray(fit.lengthscale), axis=0)
        kernel = Matern52(lengthscale=ls if self.ard else float(ls[0]), variance=float(np.median(np.asarray(fit.variance))))
        noise_med = float(np.median(np.asarray(fit.noise)))
        self._kernel, self.kernel_, self.noise_ = kernel, kernel, noise_med
        self.posterior_ = condition_padded(kernel, U, z, noise_med, size)
        self._U, self._z = U, z
        posts = fit.posteriors
        if self.noise is None:
            best = float(np.min(z))
        else:  # lowest hyperparameter-averaged posterior mean at the data
            best = float(np.min(np.mean(np.asarray(fb.draw_marginals(posts, jnp.asarray(U))[0]), axis=0)))
        return posts, best

    def predict(self, X):
        """Posterior mean and standard deviation (m,) of f at X (m, d) in the units of y.

        ML-II: the GP posterior. Fully Bayesian: the mixture over hyperparameter draws (mean of
        the means; variance = mean of the variances + variance of the means). Fits the model
        first if observations arrived since the last fit.
        """
        X = np.atleast_2d(np.asarray(X, dtype=np.float64))
        if X.ndim != 2 or X.shape[1] != self.dim:
            raise ValueError(f"X must have shape (m, {self.dim}); got {X.shape}")
        if len(self._valid()[1]) < 2:
            raise ValueError("predict needs at least two finite observations")
        if getattr(self, "_fitted_at", None) != len(self.func_vals):
            self.fit_model()
        post = self.fully_bayesian_.posteriors if self.model == "fully_bayesian" else self.posterior_
        U = jnp.asarray(self._to_unit(X))
        if self.model == "fully_bayesian":
            m, s = fb.draw_marginals(post, U)
            mean = jnp.mean(m, axis=0)
            var = jnp.mean(s**2, axis=0) + jnp.mean((m - mean) ** 2, axis=0)
            std = jnp.sqrt(var)
        else:
            mean, std = _marginals(post, U)
        return np.asarray(mean) * self._y_std + self._y_mean, np.asarray(std) * self._y_std

    # -- proposals -----------------------------------------------------------------------------
    def ask(self, n_points: int | None = None, strategy: str = "kriging_believer"):
        """The next point to evaluate, (d,); or with n_points = q a batch (q, d).

        Batches: ``strategy="kriging_believer"`` picks points one at a time, each time
        pretending the posterior mean was observed (same hyperparameters, *Kriging is
        well-suited to parallelize optimization*); ``strategy="qei"`` maximises Monte-Carlo
        q-EI jointly over the q points (started from the kriging-believer batch).
        """
        if n_points is None:
            return self._ask_batch(1, strategy)[0]
        if isinstance(n_points, bool) or not isinstance(n_points, (int, np.integer)) or n_points < 1:
            raise ValueError(f"n_points must be an int >= 1; got {n_points!r}")
        if strategy not in ("kriging_believer", "qei"):
            raise ValueError(f"strategy must be 'kriging_believer' or 'qei'; got {strategy!r}")
        if strategy == "qei" and (self.model != "ml2" or self.user_prior is not None):
            raise ValueError("strategy='qei' needs model='ml2' without a user_prior; use 'kriging_believer'")
        return self._ask_batch(int(n_points), strategy)

    def _ask_batch(self, q, strategy):
        n_told = len(self.x_iters)
        X, _ = self._valid()
        if n_told < self.n_initial_points or X.shape[0] < 2:
            need = n_told + q
            if need > self._initial.shape[0]:
                self._initial = sobol_points(need, self.dim, self.seed)
            return self._from_unit(self._initial[n_told:need])
        post, best = self.fit_model()
        U, z = self._U, self._z
        step = self.seed * 100003 + n_told
        points = []
        for j in range(q):
            u = self._propose(post, best, step * 17 + j, U)
            points.append(u)
            if j + 1 < q:  # kriging believer: condition on the mean at the new point
                if self.model == "fully_bayesian":
                    z_new = float(jnp.mean(fb.draw_marginals(post, jnp.asarray(u[None, :]))[0]))
                else:
                    z_new = float(_marginals(post, jnp.asarray(u[None, :]))[0][0])
                # the believed value is an observation too: it can become the incumbent, or
                # the point keeps its improvement and is proposed again
                best = min(best, z_new)
                U, z = np.vstack([U, u[None, :]]), np.append(z, z_new)
                if self.model == "fully_bayesian":
                    post = fb.condition_draws(post, U, z, _fb_size(len(z)))
                else:
                    post = condition_padded(post.kernel, U, z, float(post.noise), bucket_size(len(z)))
        points = np.asarray(points)
        if strategy == "qei" and q > 1:
            points = self._qei(points, best, step)
        return self._from_unit(points)

    def _qei(self, start, best, step):
        q, d = start.shape
        n_s = int(self.acquisition_kwargs.get("n_samples", 128))
        base = jax.random.normal(as_prng_key(step), (n_s, q))
        post = self.posterior_
        x, _ = maximize_acquisition(
            _u_qei, q * d, args=(post, best, base), seed=step, n_candidates=256, n_starts=2,
            candidates=start.reshape(1, -1),
        )
        return x.reshape(q, d)

    def _propose(self, post, best, step, data) -> np.ndarray:
        name = self.acquisition
        kw = self.acquisition_kwargs
        n_c = int(kw.get("n_candidates", 1024))
        n = data.shape[0]
        if self.user_prior is not None:
            return self._propose_colabo(post, best, step, data)
        if self.model == "fully_bayesian":
            return self._propose_fully_bayesian(post, best, step, data)
        padded = pad_posterior(post, bucket_size(n))  # already padded when fitted here
        if callable(name):
            return self._propose_custom(padded, best, step, n_c, data)
        if name in ("ei", "log_ei", "pi"):
            fun = {"ei": _u_ei, "log_ei": _u_log_ei, "pi": _u_log_pi}[name]
            x, _ = maximize_acquisition(fun, self.dim, args=(padded, best), seed=step, n_candidates=n_c, candidates=data)
            return x
        if name == "lcb":
            beta = float(kw.get("beta", 4.0))
            x, _ = maximize_acquisition(_u_lcb, self.dim, args=(padded, beta), seed=step, n_candidates=n_c, candidates=data)
            return x
        if name == "ts":
            path = pathwise_posterior_sample(padded, step, int(kw.get("n_features", 1024)))
            x, _ = maximize_acquisition(_u_path, self.dim, args=(path,), seed=step, n_candidates=n_c)
            return x
        if name == "mes":
            mins = mes_min_samples(post, data, step, int(kw.get("n_samples", 16)), best if self.noise is None else None)
            x, _ = maximize_acquisition(_u_mes, self.dim, args=(padded, jnp.asarray(mins)), seed=step,
                                        n_candidates=n_c, candidates=data)
            return x
        if name == "noisy_ei":
            # the incumbent ranges over the observed points, padded (see pad_rows)
            observed, base = noisy_ei_inputs(data, step, int(kw.get("n_samples", 64)))
            x, _ = maximize_acquisition(_u_noisy_ei, self.dim, args=(padded, jnp.asarray(observed), base), seed=step,
                                        n_candidates=min(n_c, 256), n_starts=3)
            return x
        if name == "kg":
            if kw.get("kg_method", "discrete") == "one_shot":
                from .one_shot_kg import maximize_one_shot_kg  # imports this module: import here

                return maximize_one_shot_kg(padded, self.dim, n_fantasies=int(kw.get("n_fantasies", 64)), seed=step,
                                            data=data, n_candidates=int(kw.get("kg_candidates", 128))).x
            cand, kg = knowledge_gradient_on_sobol(post, data, step, int(kw.get("kg_candidates", 128)))
            return cand[int(np.argmax(kg))]
        raise AssertionError(name)  # pragma: no cover - validated in __init__

    def _propose_fully_bayesian(self, posts, best, step, data):
        """Maximise the acquisition averaged over the S hyperparameter draws."""
        name = self.acquisition
        kw = self.acquisition_kwargs
        n_c = int(kw.get("n_candidates", 1024))
        if callable(name):
            if "_custom_fb_fun" not in self.__dict__:
                user = self.acquisition

                def fun(X, posts, best, y_mean, y_std):
                    m, s = fb.draw_marginals(posts, X)
                    return jnp.mean(jnp.asarray(user(m * y_std + y_mean, s * y_std, best * y_std + y_mean)), axis=0)

                self._custom_fb_fun = fun
            args = (posts, best, self._y_mean, self._y_std)
            x, _ = maximize_acquisition(self._custom_fb_fun, self.dim, args=args, seed=step, n_candidates=n_c,
                                        candidates=data)
            return x
        if name in ("ei", "log_ei", "pi"):
            fun = {"ei": fb._u_fb_ei, "log_ei": fb._u_fb_log_ei, "pi": fb._u_fb_log_pi}[name]
            x, _ = maximize_acquisition(fun, self.dim, args=(posts, best), seed=step, n_candidates=n_c,
                                        candidates=data)
            return x
        if name == "lcb":
            beta = float(kw.get("beta", 4.0))
            x, _ = maximize_acquisition(fb._u_fb_lcb, self.dim, args=(posts, beta), seed=step, n_candidates=n_c,
                                        candidates=data)
            return x
        if name == "ts":  # a hyperparameter draw at random, then a sample path given it
            s = int(np.random.default_rng(step).integers(self.fully_bayesian_.num_draws))
            one = jax.tree_util.tree_map(lambda v: v[s], posts)._replace(X=posts.X)
            path = pathwise_posterior_sample(one, step, int(kw.get("n_features", 1024)))
            x, _ = maximize_acquisition(_u_path, self.dim, args=(path,), seed=step, n_candidates=n_c)
            return x
        raise AssertionError(name)  # pragma: no cover - validated in __init__

    def _propose_colabo(self, post, best, step, data):
        """ColaBO: Monte-Carlo acquisition over sample paths weighted by the user prior."""
        kw = self.acquisition_kwargs
        if self.model == "ml2":
            post = pad_posterior(post, bucket_size(data.shape[0]))
        rw = ug.reweighted_sample_paths(
            post, self.user_prior, self.bounds, jax.random.fold_in(jax.random.key(self.seed), step),
            n_paths=int(kw.get("n_paths", 128)), n_features=int(kw.get("n_features", 256)),
            n_grid=int(kw.get("n_grid", 512)), data=data)
        self.colabo_ = rw
        n_c = int(kw.get("n_candidates", 256))
        if self.acquisition == "ts":  # one path, drawn with probability w_l
            index = int(np.random.default_rng(step).choice(rw.weights.size, p=rw.weights / rw.weights.sum()))
            x, _ = maximize_acquisition(ug._u_single_path, self.dim, args=(rw.paths, index), seed=step,
                                        n_candidates=n_c, candidates=np.asarray(rw.argmins[index])[None, :])
            return x
        fun = {"ei": ug._u_colabo_ei, "log_ei": ug._u_colabo_log_ei, "pi": ug._u_colabo_log_pi}[self.acquisition]
        # the paths' minimisers are where improvement concentrates: screen them with the data
        extra = np.vstack([data, np.asarray(rw.argmins)])
        x, _ = maximize_acquisition(fun, self.dim, args=(rw.paths, rw.log_weights, best), seed=step,
                                    n_candidates=n_c, candidates=extra)
        return x

    def _propose_custom(self, post, best, step, n_c, data):
        if "_custom_fun" not in self.__dict__:
            user = self.acquisition

            # one function per optimiser, so its compiled code is reused; the scaling is an argument
            def fun(X, post, best, y_mean, y_std):
                m, s = _marginals(post, X)
                return jnp.asarray(user(m * y_std + y_mean, s * y_std, best * y_std + y_mean))

            self._custom_fun = fun
        args = (post, best, self._y_mean, self._y_std)
        x, _ = maximize_acquisition(self._custom_fun, self.dim, args=args, seed=step,
                                    n_candidates=n_c, candidates=data)
        return x

    # -- result --------------------------------------------------------------------------------
    def result(self) -> scipy.optimize.OptimizeResult:
        """``x``, ``fun`` (best finite observation), ``x_iters``, ``func_vals``, ``nit``."""
        y = np.asarray(self.func_vals, dtype=np.float64)
        if not np.any(np.isfinite(y)):
            best_x, best_f = None, np.nan
        else:
            i = int(np.nanargmin(np.where(np.isfinite(y), y, np.inf)))
            best_x, best_f = self.x_iters[i], float(y[i])
        return scipy.optimize.OptimizeResult(
            x=best_x, fun=best_f, x_iters=list(self.x_iters), func_vals=y, nit=len(y),
            success=best_x is not None, message="done" if best_x is not None else "no finite objective value",
        )


def _u_path(X, path):
    return -path(X)


def _fb_size(n: int) -> int:
    """Padded size of the fully Bayesian model: at least 32, so one compiled sampler serves a short run."""
    return max(32, bucket_size(n))


def minimize(f: Callable, bounds, n_calls: int = 50, acquisition="log_ei", seed: int = 0,
             n_initial_points: int | None = None, noise=None, acquisition_kwargs: dict | None = None,
             callback: Callable | None = None, *, model: str = "ml2", ard: bool = True, user_prior=None,
             mcmc_kwargs: dict | None = None) -> scipy.optimize.OptimizeResult:
    """Minimise f over a box by Bayesian optimisation with a GP surrogate (see module docs).

    f is called with a (d,) numpy array and must return a number. Returns a
    ``scipy.optimize.OptimizeResult`` shaped like scikit-optimize's: ``x`` (d,), ``fun``,
    ``x_iters`` (n_calls arrays), ``func_vals`` (n_calls,). ``callback(result)`` is called after
    every evaluation; returning True stops early. Other arguments (``model``, ``ard``,
    ``user_prior``, ``mcmc_kwargs`` included) as :class:`BayesianOptimizer`.
    """
    if not callable(f):
        raise TypeError(f"f must be callable; got {type(f).__name__}")
    if isinstance(n_calls, bool) or not isinstance(n_calls, (int, np.integer)) or n_calls < 1:
        raise ValueError(f"n_calls must be an int >= 1; got {n_calls!r}")
    opt = BayesianOptimizer(bounds, acquisition, seed, n_initial_points=n_initial_points, noise=noise,
                            acquisition_kwargs=acquisition_kwargs, model=model, ard=ard, user_prior=user_prior,
                            mcmc_kwargs=mcmc_kwargs)
    for _ in range(int(n_calls)):
        x = opt.ask()
        try:
            y = float(np.asarray(f(x)))
        except (TypeError, ValueError) as err:
            raise TypeError(f"f must return a number; at x={x.tolist()} it returned an unusable value ({err})") from None
        opt.tell(x, y)
        if callback is not None and callback(opt.result()):
            break
    return opt.result()
