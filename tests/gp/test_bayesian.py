"""Fully Bayesian GP hyperparameters: log posterior, NUTS draws, averaged predictive.

References used here: finite differences (gradient), the conjugate inverse-gamma posterior of a
kernel amplitude (exact), brute-force quadrature of a one-parameter posterior on a grid,
scipy.stats densities (priors), a Python loop over draws with bayeskit.gp.exact (averaged
predictive), and the mixture CDF (intervals).
"""


import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats
from bayeskit.data import toy_gap
from hypothesis import given, settings
from hypothesis import strategies as st

import bayeskit  # noqa: F401  (float64)
from bayeskit.gp import exact
from bayeskit.gp.bayesian import (
    FIXED,
    Gamma,
    HalfNormal,
    HyperparameterDraws,
    HyperPosterior,
    InverseGamma,
    LogNormal,
    _to_draws,
    default_prior,
    predict_averaged,
    predictive_interval,
    sample_hyperparameters,
)
from bayeskit.kernels import RBF, Matern52, White
from bayeskit.linalg import JitterWarning

HYPOTHESIS = settings(max_examples=25, deadline=None)


@pytest.fixture(scope="module")
def gap_data():
    return toy_gap(20, seed=1)


@pytest.fixture(scope="module")
def gap_draws(gap_data):
    return sample_hyperparameters(
        RBF(1.0, 1.0), gap_data.X, gap_data.y, 0.05, key=jax.random.key(0),
        num_warmup=300, num_samples=250, num_chains=4,
    )


# ---------------------------------------------------------------------------------------------
# Log posterior
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kernel, d",
    [
        (RBF(0.7, 1.3), 1),
        (Matern52(np.array([0.8, 1.5]), 0.9) + RBF(2.0, 0.3), 2),
    ],
)
def test_log_density_gradient_matches_finite_differences(kernel, d):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(15, d))
    y = np.sin(X.sum(axis=1)) + 0.1 * rng.normal(size=15)
    post = HyperPosterior(kernel, X, y, 0.04)
    u = post.initial_position() + 0.1 * jnp.asarray(rng.normal(size=post.dim))
    grad = np.asarray(jax.grad(post.log_density)(u))
    log_density = jax.jit(post.log_density)
    h = 1e-5
    fd = np.array([
        (log_density(u + h * e) - log_density(u - h * e)) / (2 * h)
        for e in np.eye(post.dim)
    ])
    np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-7)


def test_log_likelihood_equals_exact_lml(gap_data):
    kernel = RBF(0.6, 1.4)
    post = HyperPosterior(kernel, gap_data.X, gap_data.y, 0.03)
    expected = exact.log_marginal_likelihood(kernel, gap_data.X, gap_data.y, 0.03)
    np.testing.assert_allclose(post.log_likelihood(post.initial_position()), expected, rtol=1e-12)


def _conjugate_setup():
    """Only the amplitude s free, no noise: K = s K0, so s | y ~ InvGamma(a + n/2, b + q/2)."""
    X = np.linspace(0.0, 5.0, 10)
    y = np.sin(X) + 0.3 * np.cos(3 * X)
    a, b = 3.0, 2.0
    kernel = RBF(0.6, 1.0)
    post = HyperPosterior(kernel, X, y, 0.0, prior={"variance": InverseGamma(a, b),
                                                   "lengthscale": FIXED, "noise": FIXED})
    K0 = np.asarray(RBF(0.6, 1.0)(X[:, None]))
    q = float(y @ np.linalg.solve(K0, y))
    return post, kernel, X, y, scipy.stats.invgamma(a + len(y) / 2, scale=b + q / 2)


def test_log_density_matches_conjugate_inverse_gamma_up_to_a_constant():
    post, *_, exact_posterior = _conjugate_setup()
    u = np.linspace(-1.0, 2.0, 7)
    ours = np.array([float(post.log_density(jnp.array([v]))) for v in u])
    reference = exact_posterior.logpdf(np.exp(u)) + u  # density of log s
    diff = ours - reference
    np.testing.assert_allclose(diff, diff[0], atol=1e-9)


def test_nuts_matches_conjugate_posterior():
    post, kernel, X, y, exact_posterior = _conjugate_setup()
    draws = sample_hyperparameters(
        kernel, X, y, 0.0, key=jax.random.key(1), num_warmup=300, num_samples=400, num_chains=2,
        prior={"variance": InverseGamma(3.0, 2.0), "lengthscale": FIXED, "noise": FIXED},
    )
    assert list(draws.idata.posterior.data_vars) == ["variance"]
    s = draws.idata.posterior["variance"]
    mcse_mean = float(az.mcse(draws.idata, var_names=["variance"])["variance"])
    mcse_sd = float(az.mcse(draws.idata, var_names=["variance"], method="sd")["variance"])
    assert abs(float(s.mean()) - exact_posterior.mean()) < 4 * mcse_mean
    assert abs(float(s.std()) - exact_posterior.std()) < 4 * mcse_sd
    # the held values stay where they were
    np.testing.assert_array_equal(np.asarray(draws.kernels.lengthscale), 0.6)
    np.testing.assert_array_equal(np.asarray(draws.noise), 0.0)


def test_nuts_matches_grid_quadrature_of_a_lengthscale_posterior(gap_data):
    X, y = gap_data.X, gap_data.y
    prior = {"lengthscale": Gamma(3.0, 4.0), "variance": FIXED, "noise": FIXED}
    kernel = RBF(0.7, 1.0)
    draws = sample_hyperparameters(kernel, X, y, 0.02, key=jax.random.key(2), num_warmup=300,
                                   num_samples=400, num_chains=2, prior=prior)
    # brute force: unnormalised posterior of the lengthscale on a fine grid
    grid = np.linspace(0.05, 3.0, 4000)
    log_post = np.array([
        float(exact.log_marginal_likelihood(RBF(ell, 1.0), X, y, 0.02)) for ell in grid[::10]
    ])
    log_post = np.interp(grid, grid[::10], log_post) + scipy.stats.gamma(3.0, scale=1 / 4.0).logpdf(grid)
    w = np.exp(log_post - log_post.max())
    w /= w.sum()
    mean = np.sum(w * grid)
    sd = np.sqrt(np.sum(w * (grid - mean) ** 2))
    ls = draws.idata.posterior["lengthscale"]
    mcse_mean = float(az.mcse(draws.idata, var_names=["lengthscale"])["lengthscale"])
    mcse_sd = float(az.mcse(draws.idata, var_names=["lengthscale"], method="sd")["lengthscale"])
    assert abs(float(ls.mean()) - mean) < 4 * mcse_mean + 1e-3
    assert abs(float(ls.std()) - sd) < 4 * mcse_sd + 1e-3


def test_nuts_chains_converge(gap_draws):
    rhat = az.rhat(gap_draws.idata)
    for name in ("lengthscale", "variance", "noise"):
        assert float(rhat[name]) < 1.05, name
    assert not bool(gap_draws.idata.sample_stats["diverging"].any())
    assert gap_draws.num_draws == 4 * 250
    assert gap_draws.kernels.lengthscale.shape == (1000,)


def test_draws_hold_the_idata_values(gap_draws):
    post = gap_draws.idata.posterior
    np.testing.assert_allclose(np.asarray(gap_draws.kernels.variance),
                               np.asarray(post["variance"]).reshape(-1))
    np.testing.assert_allclose(np.asarray(gap_draws.noise), np.asarray(post["noise"]).reshape(-1))


def test_sampling_is_reproducible_from_the_key(gap_data, gap_draws):
    # the same call as the gap_draws fixture (the compiled sampler is reused)
    again = sample_hyperparameters(
        RBF(1.0, 1.0), gap_data.X, gap_data.y, 0.05, key=jax.random.key(0),
        num_warmup=300, num_samples=250, num_chains=4,
    )
    np.testing.assert_array_equal(np.asarray(again.noise), np.asarray(gap_draws.noise))


# ---------------------------------------------------------------------------------------------
# Averaged predictive
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("include_noise", [False, True])
def test_averaged_predictive_equals_a_loop_over_draws(gap_data, gap_draws, include_noise):
    X, y = gap_data.X, gap_data.y
    Xs = np.linspace(-4.0, 4.0, 13)[:, None]
    mean, var = predict_averaged(gap_draws, X, y, Xs, include_noise=include_noise, batch_size=64)
    means, variances = [], []
    for s in range(gap_draws.num_draws):
        kernel = RBF(float(gap_draws.kernels.lengthscale[s]), float(gap_draws.kernels.variance[s]))
        nz = float(gap_draws.noise[s])
        m, v = exact.predict(exact.posterior(kernel, X, y, nz), Xs)
        means.append(np.asarray(m))
        variances.append(np.asarray(v) + (nz if include_noise else 0.0))
    means, variances = np.array(means), np.array(variances)
    np.testing.assert_allclose(mean, means.mean(axis=0), rtol=1e-9, atol=1e-12)
    # law of total variance, computed the naive way
    np.testing.assert_allclose(var, variances.mean(0) + (means**2).mean(0) - means.mean(0) ** 2,
                               rtol=1e-7, atol=1e-12)


def test_from_arrays_gives_the_same_predictive(gap_data, gap_draws):
    X, y = gap_data.X, gap_data.y
    post = gap_draws.idata.posterior
    rebuilt = HyperparameterDraws.from_arrays(
        RBF(), {"lengthscale": np.asarray(post["lengthscale"]).reshape(-1),
                "variance": np.asarray(post["variance"]).reshape(-1)},
        np.asarray(post["noise"]).reshape(-1),
    )
    Xs = np.linspace(-1, 2, 5)
    np.testing.assert_allclose(predict_averaged(rebuilt, X, y, Xs), predict_averaged(gap_draws, X, y, Xs))


def test_predictive_interval_hits_the_mixture_quantiles(gap_data, gap_draws):
    X, y = gap_data.X, gap_data.y
    Xs = np.array([-2.0, 0.2, 3.5])
    lower, upper = predictive_interval(gap_draws, X, y, Xs, prob=0.9)
    _, _, means, variances = predict_averaged(gap_draws, X, y, Xs, include_noise=True,
                                              return_per_draw=True)
    sd = np.sqrt(np.asarray(variances))

    def cdf(t):
        return scipy.stats.norm.cdf((t[None, :] - np.asarray(means)) / sd).mean(axis=0)

    np.testing.assert_allclose(cdf(np.asarray(lower)), 0.05, atol=1e-8)
    np.testing.assert_allclose(cdf(np.asarray(upper)), 0.95, atol=1e-8)


def test_single_draw_interval_is_the_gaussian_one(gap_data):
    X, y = gap_data.X, gap_data.y
    one = HyperparameterDraws.from_arrays(RBF(), {"lengthscale": [0.5], "variance": [1.2]}, [0.02])
    Xs = np.linspace(-3, 3, 4)
    lower, upper = predictive_interval(one, X, y, Xs, prob=0.95)
    m, v = exact.predict(exact.posterior(RBF(0.5, 1.2), X, y, 0.02), Xs)
    half = scipy.stats.norm.ppf(0.975) * np.sqrt(np.asarray(v) + 0.02)
    np.testing.assert_allclose(lower, np.asarray(m) - half, rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(upper, np.asarray(m) + half, rtol=1e-8, atol=1e-9)


@HYPOTHESIS
@given(st.lists(st.tuples(st.floats(0.2, 3.0), st.floats(0.1, 4.0), st.floats(1e-3, 0.5)),
                min_size=4, max_size=4))  # a fixed number of draws: one compiled program
def test_mixture_variance_is_at_least_the_average_variance(params):
    data = toy_gap(8, seed=4)
    ls, var, nz = (np.array(c) for c in zip(*params))
    draws = HyperparameterDraws.from_arrays(RBF(), {"lengthscale": ls, "variance": var}, nz)
    Xs = np.linspace(-3, 3, 5)
    _, total, _, each = predict_averaged(draws, data.X, data.y, Xs, return_per_draw=True)
    assert np.all(np.asarray(total) >= np.asarray(each).mean(axis=0) - 1e-12)


# ---------------------------------------------------------------------------------------------
# Priors and packing
# ---------------------------------------------------------------------------------------------
@HYPOTHESIS
@given(st.floats(-3, 3), st.floats(0.5, 5.0), st.floats(0.2, 5.0), st.sampled_from(range(4)))
def test_prior_densities_match_scipy(u, a, b, which):
    prior, reference = [
        (LogNormal(a - 2.5, b), scipy.stats.lognorm(b, scale=np.exp(a - 2.5))),
        (Gamma(a, b), scipy.stats.gamma(a, scale=1 / b)),
        (InverseGamma(a, b), scipy.stats.invgamma(a, scale=b)),
        (HalfNormal(b), scipy.stats.halfnorm(scale=b)),
    ][which]
    p = np.exp(u)
    np.testing.assert_allclose(prior.log_prob(p), reference.logpdf(p), rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(prior.log_prob_log(u), reference.logpdf(p) + u, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("prior", [LogNormal(0.3, 0.5), Gamma(3.0, 2.0), InverseGamma(4.0, 3.0), HalfNormal(2.0)])
def test_prior_sampler_matches_its_density(prior):
    draws = np.asarray(prior.sample(jax.random.key(0), (4000,)))
    cdf = {
        LogNormal: lambda: scipy.stats.lognorm(0.5, scale=np.exp(0.3)).cdf,
        Gamma: lambda: scipy.stats.gamma(3.0, scale=0.5).cdf,
        InverseGamma: lambda: scipy.stats.invgamma(4.0, scale=3.0).cdf,
        HalfNormal: lambda: scipy.stats.halfnorm(scale=2.0).cdf,
    }[type(prior)]()
    assert scipy.stats.kstest(draws, cdf).pvalue > 1e-3


@HYPOTHESIS
@given(st.floats(0.05, 20.0), st.floats(0.05, 20.0), st.floats(0.05, 20.0), st.floats(1e-4, 2.0))
def test_pack_unpack_round_trip(l1, l2, v, nz):
    kernel = RBF(np.array([l1, l2]), v) + White(0.1)
    post = HyperPosterior(kernel, np.zeros((3, 2)) + np.arange(3)[:, None], np.zeros(3), nz,
                          prior={"k2.variance": FIXED})
    assert post.names == ["k1.lengthscale", "k1.variance", "noise"] and post.dim == 4
    k, n = post.unpack(post.initial_position())
    np.testing.assert_allclose(k.k1.lengthscale, [l1, l2], rtol=1e-12)
    np.testing.assert_allclose([k.k1.variance, k.k2.variance, n], [v, 0.1, nz], rtol=1e-12)


def test_prior_resolution_full_names_win_over_short_names():
    kernel = RBF() + Matern52()
    assert set(default_prior(kernel)) == {"k1.lengthscale", "k1.variance", "k2.lengthscale",
                                          "k2.variance", "noise"}
    post = HyperPosterior(kernel, np.arange(4.0), np.zeros(4), 0.1,
                          prior={"k2.lengthscale": Gamma(2.0, 2.0), "lengthscale": InverseGamma()})
    assert post.priors["k1.lengthscale"] == InverseGamma()
    assert post.priors["k2.lengthscale"] == Gamma(2.0, 2.0)
    assert post.priors["noise"] == LogNormal(-3.0, 1.5)


def test_singular_covariance_gets_jitter_not_nan():
    X = np.array([0.0, 0.0, 1.0, 1.0])  # duplicated inputs, no noise: K is singular
    post = HyperPosterior(RBF(), X, np.array([0.1, 0.1, 0.5, 0.5]), 0.0, prior={"noise": FIXED})
    u = post.initial_position()
    assert np.isfinite(post.log_density(u))
    assert np.all(np.isfinite(jax.grad(post.log_density)(u)))
    # draws where the matrix needed jitter are counted and reported (here every draw does;
    # exact duplicates can factorise by round-off at other values, so positions are fixed)
    positions = jnp.broadcast_to(u, (1, 5, post.dim))
    stats = {"diverging": np.zeros((1, 5), bool), "lp": np.zeros((1, 5))}
    with pytest.warns(JitterWarning, match="at 5 of 5 draws"):
        draws = _to_draws(post, positions, stats, num_warmup=0)
    np.testing.assert_allclose(np.asarray(draws.kernels.lengthscale), 1.0)


# ---------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------
def test_bad_arguments_raise_clear_errors(gap_data, gap_draws):
    X, y = gap_data.X, gap_data.y
    run = dict(num_warmup=10, num_samples=10, num_chains=1)
    with pytest.raises(ValueError, match="key is required"):
        sample_hyperparameters(RBF(), X, y, 0.1, key=None, **run)
    with pytest.raises(TypeError, match="key"):
        sample_hyperparameters(RBF(), X, y, 0.1, key="seed", **run)
    for name in ("num_warmup", "num_samples", "num_chains"):
        with pytest.raises(ValueError, match=name):
            sample_hyperparameters(RBF(), X, y, 0.1, key=0, **{**run, name: 0})
    with pytest.raises(ValueError, match="'period'.*not a hyperparameter"):
        HyperPosterior(RBF(), X, y, 0.1, prior={"period": LogNormal()})
    with pytest.raises(TypeError, match=r"prior\['lengthscale'\]"):
        HyperPosterior(RBF(), X, y, 0.1, prior={"lengthscale": scipy.stats.gamma(2.0)})
    with pytest.raises(TypeError, match="prior must be a mapping"):
        HyperPosterior(RBF(), X, y, 0.1, prior=[LogNormal()])
    with pytest.raises(ValueError, match="LogNormal.scale"):
        LogNormal(0.0, -1.0)
    with pytest.raises(ValueError, match="Gamma.rate"):
        Gamma(2.0, 0.0)
    with pytest.raises(ValueError, match="noise"):
        HyperPosterior(RBF(), X, y, -0.1)
    with pytest.raises(ValueError, match="noise"):
        HyperPosterior(RBF(), X, y, 0.0)  # a sampled noise must start > 0
    with pytest.raises(ValueError, match="y must be 1-D"):
        HyperPosterior(RBF(), X, np.stack([y, y], axis=1), 0.1)
    with pytest.raises(ValueError, match="X contains 1 NaN"):
        HyperPosterior(RBF(), np.where(np.arange(20)[:, None] == 3, np.nan, X), y, 0.1)
    with pytest.raises(ValueError, match="y has 19 rows"):
        HyperPosterior(RBF(), X, y[:-1], 0.1)
    with pytest.raises(ValueError, match="nothing to sample"):
        HyperPosterior(RBF(), X, y, 0.1, prior={"lengthscale": FIXED, "variance": FIXED, "noise": FIXED})
    with pytest.raises(ValueError, match="ARD"):
        HyperPosterior(RBF(np.ones(3)), X, y, 0.1)
    with pytest.raises(TypeError, match="kernel must be"):
        HyperPosterior("rbf", X, y, 0.1)
    with pytest.raises(TypeError, match="draws must be a HyperparameterDraws"):
        predict_averaged({"lengthscale": 1.0}, X, y, X)
    with pytest.raises(ValueError, match="Xs must have 1 column"):
        predict_averaged(gap_draws, X, y, np.zeros((3, 2)))
    with pytest.raises(ValueError, match="prob"):
        predictive_interval(gap_draws, X, y, X, prob=1.5)
    with pytest.raises(ValueError, match="same number of draws"):
        HyperparameterDraws.from_arrays(RBF(), {"lengthscale": [1.0, 2.0], "variance": [1.0]}, 0.1)
    with pytest.raises(ValueError, match=r"values\['variance'\] must be finite and > 0"):
        HyperparameterDraws.from_arrays(RBF(), {"variance": [1.0, -2.0]}, 0.1)
