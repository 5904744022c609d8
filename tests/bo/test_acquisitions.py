"""Acquisitions against Monte-Carlo estimates, series expansions and brute force."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

import bayeskit.bo as bo
from bayeskit.gp import posterior
from bayeskit.kernels import RBF, Matern52

CASES = [(0.3, 1.2, 0.0), (-1.0, 0.5, 0.2), (2.0, 0.7, 0.1), (0.0, 2.0, 0.0)]


@pytest.mark.parametrize("mean,std,best", CASES)
def test_closed_forms_match_monte_carlo(mean, std, best):
    rng = np.random.default_rng(0)
    f = mean + std * rng.standard_normal(400_000)
    se = lambda v: np.std(v) / np.sqrt(v.size)  # noqa: E731
    imp = np.maximum(best - f, 0.0)
    ei = float(bo.expected_improvement(mean, std, best))
    assert abs(ei - imp.mean()) < 5 * se(imp)
    assert math.isclose(math.exp(float(bo.log_expected_improvement(mean, std, best))), ei, rel_tol=1e-12)
    below = (f < best).astype(float)
    pi = float(bo.probability_of_improvement(mean, std, best))
    assert abs(pi - below.mean()) < 5 * se(below)
    assert math.isclose(math.exp(float(bo.log_probability_of_improvement(mean, std, best))), pi, rel_tol=1e-12)
    beta = 2.25
    lcb = float(bo.lower_confidence_bound(mean, std, beta))
    under = (f < lcb).astype(float)  # P(f < LCB) = Phi(-sqrt(beta))
    assert abs(under.mean() - stats.norm.cdf(-1.5)) < 5 * se(under)


def _log_h_continued_fraction(z):
    """Independent reference for z < 0: h(-t) = phi(t) q(t) R(t), with Mills' ratio
    R(t) = 1 / (t + q(t)), q(t) = 1 / (t + 2 / (t + 3 / (t + ...))) (Laplace's continued
    fraction), so 1 - t R = q R: no cancellation. Evaluated backwards with many terms."""
    t = -z
    tail = 0.0
    for k in range(4000, 1, -1):
        tail = k / (t + tail)
    q = 1.0 / (t + tail)
    R = 1.0 / (t + q)
    return -0.5 * t * t - 0.5 * math.log(2 * math.pi) + math.log(q) + math.log(R)


@pytest.mark.parametrize("z", [-1.5, -3.0, -8.0, -20.0, -40.0, -200.0, -1e4, -1e9])
def test_log_h_against_continued_fraction(z):
    got = float(bo.log_h(z))
    assert np.isfinite(got)
    assert math.isclose(got, _log_h_continued_fraction(z), rel_tol=1e-10)


def test_log_ei_finite_and_accurate_where_ei_underflows():
    z = -40.0
    assert float(bo.expected_improvement(0.0, 1.0, z)) == 0.0  # EI underflows
    got = float(bo.log_expected_improvement(40.0, 1.0, 0.0))
    # asymptotic series h(z) ~ phi(z) / z^2 (1 - 3/z^2 + 15/z^4 - 105/z^6 + 945/z^8)
    series = 1 - 3 / z**2 + 15 / z**4 - 105 / z**6 + 945 / z**8
    ref = -0.5 * z * z - 0.5 * math.log(2 * math.pi) - 2 * math.log(-z) + math.log(series)
    assert math.isclose(got, ref, rel_tol=1e-12)
    # std scales: log EI(mean, s, best) = log s + log h((best - mean) / s)
    assert math.isclose(float(bo.log_expected_improvement(80.0, 2.0, 0.0)), math.log(2.0) + ref, rel_tol=1e-12)


def test_log_ei_moderate_range_matches_scipy():
    z = np.linspace(-30, 5, 141)
    ref = np.log(z * stats.norm.cdf(z) + stats.norm.pdf(z))
    ok = z > -25  # where the direct formula keeps its digits
    np.testing.assert_allclose(np.asarray(bo.log_h(jnp.asarray(z)))[ok], ref[ok], rtol=1e-9)


_LOG_EI_VG = jax.jit(jax.value_and_grad(bo.log_expected_improvement))


@settings(max_examples=60, deadline=None)
@given(st.floats(-1e12, 1e3), st.floats(1e-6, 1e3))
def test_log_ei_and_gradient_finite(z, std):
    val, grad = _LOG_EI_VG(-z * std, std, 0.0)
    assert np.isfinite(float(val)) and np.isfinite(float(grad))
    # d log EI / d mean = -Phi(z) / (std h(z)) < 0: EI falls as the mean rises
    assert float(grad) <= 0.0


def _toy_posterior(noise=1e-6):
    rng = np.random.default_rng(1)
    X = rng.uniform(0, 1, (8, 2))
    y = np.sin(6 * X[:, 0]) + X[:, 1]
    return posterior(Matern52(np.array([0.3, 0.5]), 1.0), X, y, noise), X, y


def test_q_ei_with_one_point_matches_closed_form():
    post, X, y = _toy_posterior()
    x = jnp.array([[0.45, 0.7]])
    mean, cov = bo.posterior_mean_cov(post, x)
    best = float(np.min(y))
    ei = float(bo.expected_improvement(mean[0], jnp.sqrt(cov[0, 0]), best))
    base = jax.random.normal(jax.random.key(0), (200_000, 1))
    qei = float(bo.q_expected_improvement(post, x, best, base))
    assert abs(qei - ei) < 0.01 * ei + 1e-4
    # a batch of two can only improve on either point alone (same base samples)
    x2 = jnp.array([[0.45, 0.7], [0.9, 0.1]])
    base2 = jax.random.normal(jax.random.key(1), (100_000, 2))
    both = float(bo.q_expected_improvement(post, x2, best, base2))
    first = float(bo.q_expected_improvement(post, x2[:1], best, base2[:, :1]))
    assert both >= first - 1e-12


def test_noisy_ei_reduces_to_ei_when_incumbent_known():
    # nearly noise-free data: the incumbent's posterior is a point mass at min(y)
    post, X, y = _toy_posterior(noise=1e-10)
    Xs = jnp.array([[0.45, 0.7], [0.1, 0.2]])
    mean, cov = bo.posterior_mean_cov(post, Xs)
    ei = np.asarray(bo.expected_improvement(mean, jnp.sqrt(jnp.diag(cov)), float(np.min(y))))
    base = jax.random.normal(jax.random.key(2), (100_000, X.shape[0] + 1))
    nei = np.asarray(bo.noisy_expected_improvement(post, X, Xs, base))
    np.testing.assert_allclose(nei, ei, rtol=0.03, atol=1e-4)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_expected_max_of_affine_against_monte_carlo(seed):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=12)
    b = rng.normal(size=12)
    b[3] = b[5]  # equal slopes
    a[7], b[7] = a[2], b[2]  # a duplicated line
    Z = rng.standard_normal(400_000)
    vals = np.max(a[None, :] + b[None, :] * Z[:, None], axis=1) - a.max()
    got = bo.expected_max_of_affine(a, b)
    assert abs(got - vals.mean()) < 5 * vals.std() / np.sqrt(Z.size)


def test_knowledge_gradient_against_monte_carlo():
    post, X, y = _toy_posterior(noise=1e-2)
    A = np.asarray(bo.sobol_points(32, 2, 0))
    x = np.array([[0.45, 0.7]])
    pts = np.vstack([A, x])
    mean, cov = (np.asarray(v) for v in bo.posterior_mean_cov(post, jnp.asarray(pts)))
    kg = bo.knowledge_gradient(mean, cov[:, -1:], cov[-1:, -1], 1e-2)[0]
    # brute force: simulate y = f(x) + eps, update the mean on A by the GP rule, take min
    rng = np.random.default_rng(3)
    s = np.sqrt(cov[-1, -1] + 1e-2)
    Z = rng.standard_normal(200_000)
    new_min = np.min(mean[None, :] + (cov[:, -1] / s)[None, :] * Z[:, None], axis=1)
    gain = mean.min() - new_min
    assert kg > 0
    assert abs(kg - gain.mean()) < 5 * gain.std() / np.sqrt(Z.size)


_MES = jax.jit(bo.max_value_entropy_search)


@settings(max_examples=40, deadline=None)
@given(st.floats(-5, 5), st.floats(1e-3, 10), st.lists(st.floats(-20, 5), min_size=4, max_size=4))
def test_mes_is_finite_and_nonnegative(mean, std, mins):
    v = float(_MES(jnp.array([mean]), jnp.array([std]), jnp.array(mins))[0])
    assert np.isfinite(v) and v >= -1e-12  # an information gain


@pytest.mark.parametrize("kernel", [RBF(np.array([0.4, 0.8]), 1.7), Matern52(np.array([0.4, 0.8]), 1.7)])
def test_random_fourier_features_approximate_the_kernel(kernel):
    X = np.asarray(bo.sobol_points(20, 2, 0))
    phi = bo.random_fourier_features(kernel, 2, 40_000, jax.random.key(0))(X)
    err = np.abs(np.asarray(phi @ phi.T) - np.asarray(kernel(X)))
    assert err.max() < 0.06  # O(variance / sqrt(M)) Monte-Carlo error


def test_pathwise_samples_interpolate_and_match_posterior_moments():
    post, X, y = _toy_posterior(noise=1e-8)
    path = bo.pathwise_posterior_sample(post, 0, 512)
    np.testing.assert_allclose(np.asarray(path(X)), y, atol=1e-3)
    Xs = np.asarray(bo.sobol_points(6, 2, 5))
    draws = np.stack([np.asarray(bo.pathwise_posterior_sample(post, k, 512)(Xs)) for k in range(150)])
    mean, cov = (np.asarray(v) for v in bo.posterior_mean_cov(post, jnp.asarray(Xs)))
    sd = np.sqrt(np.diag(cov))
    assert np.all(np.abs(draws.mean(0) - mean) < 5 * sd / np.sqrt(150) + 1e-3)
    np.testing.assert_allclose(draws.std(0), sd, rtol=0.3, atol=1e-3)


def test_exact_thompson_and_joint_samples_match_posterior():
    post, X, y = _toy_posterior()
    C = np.asarray(bo.sobol_points(16, 2, 3))
    draws = bo.joint_posterior_samples(post, C, 0, 4000)
    mean, cov = (np.asarray(v) for v in bo.posterior_mean_cov(post, jnp.asarray(C)))
    np.testing.assert_allclose(draws.mean(0), mean, atol=5 * np.sqrt(np.diag(cov).max() / 4000))
    np.testing.assert_allclose(np.cov(draws.T), cov, atol=0.1 * np.diag(cov).max())
    i, sample = bo.thompson_sample_candidates(post, C, 1)
    assert sample.shape == (16,) and i == int(np.argmin(sample))


def test_gumbel_min_values_match_independent_minimum():
    rng = np.random.default_rng(0)
    mean, std = rng.normal(size=50), rng.uniform(0.2, 1.0, 50)
    # with independent marginals the survival product is exact; Gumbel fits its quartiles
    brute = np.min(mean + std * rng.standard_normal((200_000, 50)), axis=1)
    g = bo.gumbel_min_values(mean, std, 0, 20_000)
    np.testing.assert_allclose(np.quantile(g, [0.25, 0.5, 0.75]), np.quantile(brute, [0.25, 0.5, 0.75]), atol=0.03)
    s = bo.sampled_min_values(_toy_posterior()[0], bo.sobol_points(64, 2, 0), 0, 8)
    assert s.shape == (8,)


def test_rff_rejects_unsupported_kernel():
    from bayeskit.kernels import Periodic

    with pytest.raises(TypeError, match="RBF or Matern"):
        bo.random_fourier_features(Periodic(), 1, 10, 0)
    with pytest.raises(ValueError, match="key is required"):
        bo.thompson_sample_candidates(_toy_posterior()[0], np.zeros((2, 2)), None)
