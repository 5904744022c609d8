"""Student-t process (inverse-gamma scale mixture of a GP) against independent computations."""

import numpy as np
import pytest
import scipy.integrate
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st

from bayeskit.gp.exact import GPRegressor
from bayeskit.gp.nngp import ReLUNNGP
from bayeskit.gp.student_t import (
    StudentTProcessRegressor,
    log_marginal_likelihood,
    scale_posterior,
)
from bayeskit.kernels import RBF, Matern32


def _setup(n=6, seed=0):
    rng = np.random.default_rng(seed)
    X = np.sort(rng.uniform(-2, 2, (n, 1)), axis=0)
    y = np.sin(2 * X[:, 0]) + 0.2 * rng.normal(size=n)
    return X, y


def _cov(kernel, X, noise):
    return np.asarray(kernel(X)) + noise * np.eye(len(X))


@settings(max_examples=25, deadline=None)
@given(
    n=st.sampled_from([1, 4, 9]),
    a=st.floats(0.3, 50.0),
    b=st.floats(0.05, 20.0),
    noise=st.floats(1e-3, 1.0),
    lengthscale=st.floats(0.2, 3.0),
    seed=st.integers(0, 1000),
)
def test_lml_equals_scipy_multivariate_t(n, a, b, noise, lengthscale, seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2))
    y = 2 * rng.normal(size=n)
    k = RBF(lengthscale=lengthscale, variance=1.3)
    ref = scipy.stats.multivariate_t(np.zeros(n), (b / a) * _cov(k, X, noise), df=2 * a).logpdf(y)
    assert float(log_marginal_likelihood(k, X, y, noise, a, b)) == pytest.approx(ref, rel=1e-10, abs=1e-10)


def test_lml_equals_scale_mixture_by_quadrature_and_monte_carlo():
    X, y = _setup(5)
    k, noise, a, b = Matern32(0.8, 1.0), 0.05, 3.0, 2.0
    C = _cov(k, X, noise)
    value = float(log_marginal_likelihood(k, X, y, noise, a, b))

    def integrand(s2):  # p(sigma^2) N(y | 0, sigma^2 C)
        return np.exp(scipy.stats.invgamma.logpdf(s2, a, scale=b)
                      + scipy.stats.multivariate_normal(np.zeros(5), s2 * C).logpdf(y))

    quad, _ = scipy.integrate.quad(integrand, 0, np.inf, epsabs=0, epsrel=1e-12, limit=500)
    assert value == pytest.approx(np.log(quad), abs=1e-7)

    # Monte Carlo: average the Gaussian likelihood over prior draws of the scale
    rng = np.random.default_rng(0)
    s2 = scipy.stats.invgamma.rvs(a, scale=b, size=200_000, random_state=rng)
    L = np.linalg.cholesky(C)
    beta = float(np.sum(np.linalg.solve(L, y) ** 2))
    logdens = (-0.5 * beta / s2 - 2.5 * np.log(2 * np.pi * s2) - np.sum(np.log(np.diag(L))))
    w = np.exp(logdens - logdens.max())
    mc = np.log(w.mean()) + logdens.max()
    mc_se = w.std() / w.mean() / np.sqrt(w.size)  # standard error of the log, delta method
    assert abs(value - mc) < 4 * mc_se + 1e-12


def test_predictive_equals_mixture_over_scale_posterior():
    X, y = _setup(6, seed=1)
    k, noise, a, b = RBF(0.7, 1.0), 0.05, 2.0, 1.0
    model = StudentTProcessRegressor(k, noise, a, b).fit(X, y)
    gp = GPRegressor(k, noise, optimize=False).fit(X, y)
    xs = np.array([[0.3], [2.8]])
    m_gp, sd_gp = gp.predict(xs, return_std=True, include_noise=True)
    C = _cov(k, X, noise)

    def log_post_unnorm(s2):  # p(sigma^2) p(y | sigma^2)
        return (scipy.stats.invgamma.logpdf(s2, a, scale=b)
                + scipy.stats.multivariate_normal(np.zeros(6), s2 * C).logpdf(y))

    shift = log_post_unnorm(0.5)
    Z, _ = scipy.integrate.quad(lambda s: np.exp(log_post_unnorm(s) - shift), 0, np.inf, epsrel=1e-12, limit=500)
    pred = model.predictive(xs, include_noise=True)
    for j in range(2):
        for ystar in (m_gp[j] - 1.0, m_gp[j], m_gp[j] + 3 * sd_gp[j]):
            dens, _ = scipy.integrate.quad(
                lambda s, ystar=ystar, j=j: np.exp(log_post_unnorm(s) - shift)
                * scipy.stats.norm.pdf(ystar, m_gp[j], np.sqrt(s) * sd_gp[j]),
                0, np.inf, epsrel=1e-12, limit=500)
            assert pred.logpdf(np.full(2, ystar))[j] == pytest.approx(np.log(dens / Z), abs=1e-7)
    assert pred.dof == 2 * a + 6
    shape, scale = scale_posterior(k, X, y, noise, a, b)
    assert (shape, scale) == pytest.approx((model.posterior_shape_, model.posterior_scale_))


def test_interval_coverage_under_the_generative_model():
    """Simulate (sigma^2, f, y) from the model many times: 90% intervals cover 90% of new y."""
    rng = np.random.default_rng(3)
    X = np.linspace(-2, 2, 8)[:, None]
    xs = np.array([[0.1], [3.5]])
    k, noise, a, b = RBF(0.8, 1.0), 0.1, 1.5, 1.0  # heavy tails: dof of the prior = 3
    allX = np.vstack([X, xs])
    C = _cov(k, allX, noise)
    L = np.linalg.cholesky(C)
    draws = 600
    s2 = scipy.stats.invgamma.rvs(a, scale=b, size=draws, random_state=rng)
    Y = (L @ rng.normal(size=(10, draws))) * np.sqrt(s2)
    hits = np.zeros(2)
    for i in range(draws):
        lo, hi = StudentTProcessRegressor(k, noise, a, b).fit(X, Y[:8, i]).credible_interval(
            xs, level=0.9, include_noise=True)
        hits += (lo <= Y[8:, i]) & (Y[8:, i] <= hi)
    coverage = hits / draws
    se = np.sqrt(0.9 * 0.1 / draws)
    assert np.all(np.abs(coverage - 0.9) < 4 * se)


def test_predictive_tends_to_gp_as_a_and_b_grow_with_fixed_ratio():
    X, y = _setup(8, seed=2)
    k, noise = RBF(0.6, 1.0), 0.02
    xs = np.linspace(-4, 4, 9)[:, None]
    gp = GPRegressor(2.0 * k, 2.0 * noise, optimize=False).fit(X, y)  # kernel (b / a) k
    m_gp, sd_gp = gp.predict(xs, return_std=True)
    gaps = []
    for a in (1.0, 1e2, 1e4, 1e8):
        model = StudentTProcessRegressor(k, noise, a=a, b=2.0 * a).fit(X, y)
        mean, scale, dof = model.predict(xs, return_scale=True)
        np.testing.assert_allclose(mean, m_gp, atol=1e-10)  # location is always the GP's
        lo, hi = model.credible_interval(xs, level=0.95)
        gaps.append(np.max(np.abs((hi - lo) / (2 * 1.959963984540054 * sd_gp) - 1)))
    assert gaps[-1] < 1e-6
    assert all(g2 < g1 for g1, g2 in zip(gaps, gaps[1:]))


def test_intervals_widen_with_outliers_where_the_gp_does_not():
    X, y = _setup(20, seed=4)
    y_out = y.copy()
    y_out[[3, 11, 17]] += np.array([4.0, -5.0, 4.5])  # three gross outliers
    k, noise = RBF(0.7, 1.0), 0.04
    xs = np.linspace(-2, 2, 25)[:, None]

    def width(model, data):
        lo, hi = model.fit(X, data).credible_interval(xs)
        return hi - lo

    tp_clean = width(StudentTProcessRegressor(k, noise, a=3.0, b=3.0), y)
    tp_out = width(StudentTProcessRegressor(k, noise, a=3.0, b=3.0), y_out)
    gp_clean = GPRegressor(k, noise, optimize=False).fit(X, y).predict(xs, return_std=True)[1]
    gp_out = GPRegressor(k, noise, optimize=False).fit(X, y_out).predict(xs, return_std=True)[1]
    np.testing.assert_allclose(gp_out, gp_clean)  # the GP's bands ignore the data entirely
    assert np.all(tp_out > 2.0 * tp_clean)  # the Student-t bands react to the surprise

    # a surprising value out of distribution is far less improbable under the heavy tails
    tp = StudentTProcessRegressor(k, noise, a=2.0, b=2.0).fit(X, y)
    gp = GPRegressor(k, noise, optimize=False).fit(X, y)
    x_far = np.array([[4.0]])
    m, s = gp.predict(x_far, return_std=True, include_noise=True)
    y_far = m + 6 * s  # a 6-sd surprise for the GP
    gp_logpdf = scipy.stats.norm.logpdf(y_far, m, s)
    tp_logpdf = tp.predictive(x_far, include_noise=True).logpdf(y_far)
    assert tp_logpdf[0] > gp_logpdf[0] + 5


def test_nngp_kernel_as_base_and_optimisation():
    X, y = _setup(15, seed=5)
    model = StudentTProcessRegressor(ReLUNNGP(depth=2), noise=0.1, a=2.0, b=2.0, optimize=True).fit(X, y)
    before = float(log_marginal_likelihood(ReLUNNGP(depth=2), X, y, 0.1, 2.0, 2.0))
    assert model.log_marginal_likelihood() > before
    assert model.kernel_.depth == 2


def test_bad_inputs_raise_clear_errors():
    X, y = _setup(5)
    k = RBF()
    with pytest.raises(ValueError, match="a \\(inverse-gamma shape\\)"):
        log_marginal_likelihood(k, X, y, 0.1, 0.0, 1.0)
    with pytest.raises(ValueError, match="b \\(inverse-gamma scale\\)"):
        log_marginal_likelihood(k, X, y, 0.1, 1.0, -2.0)
    with pytest.raises(ValueError, match="noise"):
        log_marginal_likelihood(k, X, y, -0.1, 1.0, 1.0)
    with pytest.raises(ValueError, match="y contains"):
        log_marginal_likelihood(k, X, np.r_[y[:-1], np.inf], 0.1, 1.0, 1.0)
    with pytest.raises(ValueError, match="1-D"):
        StudentTProcessRegressor(k).fit(X, np.c_[y, y])
    with pytest.raises(RuntimeError, match="not fitted"):
        StudentTProcessRegressor(k).predict(X)
    model = StudentTProcessRegressor(k).fit(X, y)
    with pytest.raises(ValueError, match="level"):
        model.credible_interval(X, level=1.5)
    with pytest.raises(ValueError, match="X must have 1 column"):
        model.predict(np.zeros((2, 3)))
