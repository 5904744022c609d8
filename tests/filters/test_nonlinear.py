"""EKF, UKF and the bootstrap particle filter: exact in the linear case, and against a
brute-force grid filter on a 1-D nonlinear model."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import norm

import bayeskit  # noqa: F401
from bayeskit.filters import kalman_filter
from bayeskit.filters.nonlinear import (
    NonlinearGaussianSSM,
    bootstrap_particle_filter,
    extended_kalman_filter,
    sigma_points,
    unscented_kalman_filter,
)

from .test_kalman import _random_model


def _linear_pair(seed=0, T=40):
    rng = np.random.default_rng(seed)
    lm = _random_model(rng)
    F, H = jnp.asarray(lm.F), jnp.asarray(lm.H)
    nm = NonlinearGaussianSSM(lambda x: F @ x, lambda x: H @ x, lm.Q, lm.R, lm.m0, lm.P0)
    ys = rng.normal(size=(T, 2))
    ys[7] = np.nan
    return lm, nm, ys


@pytest.mark.parametrize("filter_fn", [extended_kalman_filter, unscented_kalman_filter])
def test_linear_model_gives_the_kalman_filter(filter_fn):
    lm, nm, ys = _linear_pair()
    ref = kalman_filter(lm, ys)
    got = filter_fn(nm, ys)
    np.testing.assert_allclose(got.means, ref.means, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got.covariances, ref.covariances, rtol=1e-10, atol=1e-12)
    assert float(got.log_likelihood) == pytest.approx(float(ref.log_likelihood), rel=1e-12)


def test_sigma_points_reproduce_mean_and_covariance():
    m = jnp.array([1.0, -2.0, 0.5])
    A = np.random.default_rng(1).normal(size=(3, 3))
    P = jnp.asarray(A @ A.T + np.eye(3))
    for alpha, beta, kappa in [(1.0, 2.0, 0.0), (0.5, 2.0, 1.0), (1e-2, 2.0, 0.0)]:
        X, wm, wc = sigma_points(m, P, alpha, beta, kappa)
        assert float(jnp.sum(wm)) == pytest.approx(1.0)
        np.testing.assert_allclose(wm @ X, m, atol=1e-10)
        # the covariance weights without the beta correction reproduce P exactly
        wc_plain = wc.at[0].add(-(1 - alpha**2 + beta))
        np.testing.assert_allclose((X - m).T @ (wc_plain[:, None] * (X - m)), P, rtol=1e-8, atol=1e-8)


def test_particle_filter_linear_log_likelihood_and_means():
    lm, nm, ys = _linear_pair(T=30)
    ref = kalman_filter(lm, ys)
    lls = [float(bootstrap_particle_filter(nm, ys, key=jax.random.key(s), n_particles=5000).log_likelihood)
           for s in range(4)]
    # the estimate of p(y) is unbiased, so log of the mean of the estimates is close to the truth
    log_mean = np.log(np.mean(np.exp(np.array(lls) - max(lls)))) + max(lls)
    assert abs(log_mean - float(ref.log_likelihood)) < 0.5
    pf = bootstrap_particle_filter(nm, ys, key=jax.random.key(9), n_particles=20000)
    sd = np.sqrt(np.diagonal(np.asarray(ref.covariances), axis1=1, axis2=2))
    assert np.max(np.abs(pf.means - ref.means) / sd) < 0.15


# -- 1-D nonlinear model against a brute-force grid filter ----------------------------------
Q1, R1, M0, P01 = 0.5, 0.3, 0.5, 1.0


def _f(x):
    return 0.7 * x + 1.5 * jnp.sin(x)


def _h(x):
    return x + 0.1 * x**3


def _grid_filter(ys, grid):
    dx = grid[1] - grid[0]
    f = np.asarray(_f(jnp.asarray(grid)))
    h = np.asarray(_h(jnp.asarray(grid)))
    trans = norm.pdf(grid[:, None], loc=f[None, :], scale=np.sqrt(Q1)) * dx  # p(x' | x)
    p = norm.pdf(grid, M0, np.sqrt(P01))
    means, ll = [], 0.0
    for t, y in enumerate(ys):
        if t > 0:
            p = trans @ p
        lik = norm.pdf(y, loc=h, scale=np.sqrt(R1))
        evidence = np.sum(lik * p) * dx
        ll += np.log(evidence)
        p = lik * p / evidence
        means.append(np.sum(grid * p) * dx)
    return np.array(means), ll


def _simulate(T=25, seed=4):
    rng = np.random.default_rng(seed)
    x = M0 + np.sqrt(P01) * rng.normal()
    ys = []
    for t in range(T):
        if t > 0:
            x = float(_f(x)) + np.sqrt(Q1) * rng.normal()
        ys.append(float(_h(x)) + np.sqrt(R1) * rng.normal())
    return np.array(ys)


def test_nonlinear_filters_against_grid_filter():
    ys = _simulate()
    grid = np.linspace(-12, 12, 3001)
    ref_means, ref_ll = _grid_filter(ys, grid)
    model = NonlinearGaussianSSM(lambda x: _f(x), lambda x: _h(x), [[Q1]], [[R1]], np.array([M0]), [[P01]])
    pf = bootstrap_particle_filter(model, ys, key=jax.random.key(0), n_particles=20000)
    np.testing.assert_allclose(pf.means[:, 0], ref_means, atol=0.05)
    assert float(pf.log_likelihood) == pytest.approx(ref_ll, abs=0.3)
    # the Gaussian approximations are biased here; the particle filter is the better answer
    pf_error = np.mean(np.abs(np.asarray(pf.means[:, 0]) - ref_means))
    for approx in (extended_kalman_filter(model, ys), unscented_kalman_filter(model, ys)):
        error = np.mean(np.abs(np.asarray(approx.means[:, 0]) - ref_means))
        assert pf_error < error < 0.3
        assert abs(float(approx.log_likelihood) - ref_ll) > abs(float(pf.log_likelihood) - ref_ll)


def test_bad_arguments():
    _, nm, ys = _linear_pair()
    with pytest.raises(ValueError, match="key is required"):
        bootstrap_particle_filter(nm, ys, key=None)
    with pytest.raises(ValueError, match="n_particles must be >= 2"):
        bootstrap_particle_filter(nm, ys, key=jax.random.key(0), n_particles=1)
    with pytest.raises(ValueError, match=r"ys must have shape \(T, 2\)"):
        extended_kalman_filter(nm, np.zeros((5, 3)))
    with pytest.raises(ValueError, match="R must be a finite positive semi-definite"):
        unscented_kalman_filter(nm._replace(R=-np.eye(2)), ys)
    with pytest.raises(ValueError, match="f must map"):
        extended_kalman_filter(nm._replace(h=lambda x: x), ys)
    with pytest.raises(ValueError, match="alpha must be > 0"):
        unscented_kalman_filter(nm, ys, alpha=0.0)
