"""ColaBO (user-guided BO): the prior, the reweighted sample paths and the Monte-Carlo acquisitions
against independent references (scipy's truncated normal, plain Monte-Carlo EI, closed-form EI),
clear errors, and a small end-to-end comparison on Branin."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import bayeskit.bo as bo
from bayeskit.bo import acquisitions as acq
from bayeskit.bo import loop
from bayeskit.bo import user_guided as ug
from bayeskit.bo.optimize import bucket_size, sobol_points
from bayeskit.bo.test_functions import Branin
from bayeskit.bo.user_guided import UserPrior


def _path(paths, i):
    """Path i of a batch of sample paths, as its own PosteriorSamplePath."""
    return jax.tree_util.tree_map(lambda v: v[i], paths)


@pytest.fixture(scope="module")
def branin_model():
    """ML-II model of Branin from 10 Sobol points: (optimiser, padded posterior, best)."""
    f = Branin()
    lo, hi = np.array(f.bounds).T
    opt = bo.BayesianOptimizer(f.bounds, "log_ei", seed=0)
    X = lo + sobol_points(10, 2, 4) * (hi - lo)
    opt.tell(X, f(X))
    post, best = opt.fit_model()
    return opt, loop.pad_posterior(post, bucket_size(10)), best


def test_truncated_normal_prior_matches_scipy():
    bounds = [(-5.0, 10.0), (0.0, 15.0)]
    prior = UserPrior.normal([9.0, 2.0], [2.0, 4.0], bounds=bounds)
    X = np.column_stack([np.linspace(-5, 10, 7), np.linspace(0, 15, 7)])
    ref = sum(stats.truncnorm.logpdf(X[:, i], (b[0] - m) / s, (b[1] - m) / s, loc=m, scale=s)
              for i, (b, m, s) in enumerate(zip(bounds, [9.0, 2.0], [2.0, 4.0])))
    np.testing.assert_allclose(prior.logpdf(X), ref, rtol=1e-10)
    assert prior.logpdf([[11.0, 1.0]])[0] == -np.inf  # outside the box


def test_flat_prior_gives_plain_monte_carlo_ei(branin_model):
    opt, post, best = branin_model
    flat = UserPrior(logpdf=lambda X: np.zeros(len(X)))
    rw = ug.reweighted_sample_paths(post, flat, opt.bounds, 3, n_paths=64, n_grid=128)
    np.testing.assert_allclose(rw.weights, 1 / 64, rtol=1e-12)
    assert rw.ess == pytest.approx(64.0)
    Xs = sobol_points(16, 2, 9)
    # plain MC EI, path by path
    values = np.stack([np.asarray(_path(rw.paths, i)(Xs)) for i in range(64)])
    plain = np.mean(np.maximum(best - values, 0.0), axis=0)
    Xj = jnp.asarray(Xs)
    np.testing.assert_allclose(np.asarray(ug._u_colabo_ei(Xj, rw.paths, rw.log_weights, best)), plain,
                               rtol=1e-10, atol=1e-14)
    # the smoothed log EI: within tau log 2 above the exact MC EI
    smooth = np.exp(np.asarray(ug._u_colabo_log_ei(Xj, rw.paths, rw.log_weights, best)))
    assert np.all(smooth >= plain - 1e-12) and np.all(smooth <= plain + ug.TAU * math.log(2) + 1e-12)
    # ... and the smoothed log PI against the fraction of improving paths (up to the smoothing)
    frac = np.mean(values < best, axis=0)
    pi = np.exp(np.asarray(ug._u_colabo_log_pi(Xj, rw.paths, rw.log_weights, best)))
    assert np.max(np.abs(pi - frac)) < 0.05


def test_monte_carlo_ei_converges_to_closed_form(branin_model):
    _, post, best = branin_model
    n = 2000
    paths = ug._draw_paths(jax.tree_util.tree_map(lambda v: jnp.asarray(v)[None], post)._replace(X=post.X),
                           jnp.zeros(n, dtype=int), jax.random.split(jax.random.key(11), n), 512)
    Xs = jnp.asarray(sobol_points(6, 2, 21))
    values = np.asarray(ug.evaluate_paths(paths, Xs))  # (n, 6)
    imp = np.maximum(best - values, 0.0)
    mean, std = loop._marginals(post, Xs)
    exact = np.asarray(acq.expected_improvement(mean, std, best))
    se = imp.std(axis=0) / math.sqrt(n)
    # Monte-Carlo error plus a small allowance for the random-feature prior (512 features)
    assert np.all(np.abs(imp.mean(axis=0) - exact) < 5 * se + 0.02 * exact + 1e-4), (imp.mean(0), exact, se)
    # the paths reproduce the posterior mean and standard deviation
    np.testing.assert_allclose(values.mean(0), np.asarray(mean), atol=5 * float(np.max(std)) / math.sqrt(n))
    np.testing.assert_allclose(values.std(0), np.asarray(std), rtol=0.1)


def test_concentrated_prior_concentrates_the_argmins(branin_model):
    opt, post, best = branin_model
    f = Branin()
    lo, hi = np.array(f.bounds).T
    for target in f.optimizers:  # three global minimisers, each a plausible belief
        prior = UserPrior.normal(target, 0.5, bounds=f.bounds)
        rw = ug.reweighted_sample_paths(post, prior, f.bounds, 5, n_paths=256, data=opt._U)
        x_star = lo + np.asarray(rw.argmins) * (hi - lo)
        near = np.linalg.norm(x_star - target, axis=1) < 1.5
        weighted = float(np.sum(rw.weights[near]))
        unweighted = float(np.mean(near))
        # where few paths put their minimiser near the target (the data favour another basin),
        # those few still carry most of the weight
        assert weighted > 0.5 and weighted > 10 * unweighted, (target, weighted, unweighted)
        assert 1.0 <= rw.ess <= 256.0


@pytest.mark.parametrize(
    "make,error,match",
    [
        (lambda: UserPrior.normal([1.0, 2.0], 0.0), ValueError, "std must be finite and > 0"),
        (lambda: UserPrior.normal([1.0, 2.0], [1.0, -1.0]), ValueError, "std must be finite and > 0"),
        (lambda: UserPrior.normal([np.nan, 2.0], 1.0), ValueError, "mean must be finite"),
        (lambda: UserPrior.normal([1.0, 2.0], [1.0, 1.0, 1.0]), ValueError, "std must be a scalar or have shape"),
        (lambda: UserPrior.normal([[1.0, 2.0]], 1.0), ValueError, r"mean must have shape \(d,\)"),
        (lambda: UserPrior.normal([20.0, 2.0], 1.0, bounds=Branin().bounds), ValueError,
         r"mean\[0\] = 20.0 lies outside bounds\[0\]"),
        (lambda: UserPrior(logpdf=3.0), TypeError, "logpdf must be a callable"),
        (lambda: UserPrior(lambda X: np.full(len(X), -np.inf)).bind([(0, 1)]), ValueError, "no mass inside"),
        (lambda: UserPrior(lambda X: np.full(len(X), np.nan)).bind([(0, 1)]), ValueError, "returned NaN"),
        (lambda: UserPrior(lambda X: np.zeros((len(X), 3))).bind([(0, 1)]), ValueError, "must return shape"),
        (lambda: bo.BayesianOptimizer([(0, 1)], user_prior=UserPrior.normal([0.5, 0.5], 0.1)), ValueError,
         "user_prior has dimension 2 but bounds has 1"),
        (lambda: bo.BayesianOptimizer([(0, 1)], "lcb", user_prior=UserPrior.normal([0.5], 0.1)), ValueError,
         "user_prior .ColaBO. supports acquisition"),
        (lambda: bo.minimize(lambda x: 0.0, [(0, 1)], 2, user_prior={"mean": 0.5}), TypeError,
         "user_prior must be a bayeskit.bo.user_guided.UserPrior"),
    ],
)
def test_bad_priors_raise_clear_errors(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_a_callable_prior_for_one_point_at_a_time_works():
    prior = UserPrior(lambda x: -float(np.sum((np.asarray(x) - 0.3) ** 2))).bind([(0, 1), (0, 1)])
    values = prior.logpdf(np.array([[0.3, 0.3], [0.0, 0.0]]))
    np.testing.assert_allclose(values, [0.0, -0.18])


@pytest.mark.slow
def test_accurate_prior_helps_and_misleading_prior_costs_little_on_branin():
    f = Branin()
    good = UserPrior.normal(f.optimizers[1], 1.0)  # centred on the minimiser (pi, 2.275)
    bad = UserPrior.normal([-4.0, 1.0], 1.0)  # the worst corner of the box (f ~ 200)
    kw = dict(n_calls=13, acquisition="log_ei", n_initial_points=5,
              acquisition_kwargs={"n_paths": 64, "n_grid": 256, "n_candidates": 128})
    regret = {"none": [], "accurate": [], "misleading": []}
    for seed in range(3):
        for name, prior in (("none", None), ("accurate", good), ("misleading", bad)):
            res = bo.minimize(f, f.bounds, seed=seed, user_prior=prior, **kw)
            regret[name].append(res.fun - f.optimum)
    med = {k: float(np.median(v)) for k, v in regret.items()}
    assert med["accurate"] <= med["none"], regret
    assert med["misleading"] <= 3.0 * med["none"] + 0.5, regret
