"""EM never lowers the likelihood and agrees with the gradient MLE; samples have the model's moments."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from bayeskit.data import load_nile

import bayeskit  # noqa: F401
from bayeskit.filters import LinearGaussianSSM, fit_em, fit_mle, kalman_filter, sample

from .test_kalman import _nile_model, _random_model


def test_em_matches_gradient_mle_on_the_nile():
    y = load_nile().y
    start = _nile_model()._replace(R=[[np.var(y)]], Q=[[np.var(y) / 10]])
    em = fit_em(start, y, n_iter=3000, update=("Q", "R"), tol=1e-12)
    assert np.all(np.diff(em.log_likelihoods) >= -1e-9 * abs(em.log_likelihoods[0]))

    def build(theta):  # the same objective: fixed prior m0 = 1000, P0 = 1e6, no burn-in
        return LinearGaussianSSM(jnp.eye(1), jnp.eye(1), jnp.exp(theta[1]).reshape(1, 1),
                                 jnp.exp(theta[0]).reshape(1, 1), jnp.array([1000.0]), jnp.array([[1e6]]))

    mle = fit_mle(build, np.log([np.var(y), np.var(y) / 10]), y)
    np.testing.assert_allclose([float(em.model.R[0, 0]), float(em.model.Q[0, 0])], np.exp(mle.theta), rtol=2e-3)
    assert float(kalman_filter(em.model, y).log_likelihood) == pytest.approx(mle.log_likelihood, abs=1e-4)


def test_em_is_monotone_and_recovers_dynamics():
    rng = np.random.default_rng(0)
    truth = _random_model(rng)
    _, ys = sample(truth, jax.random.key(0), 3000)
    start = truth._replace(F=0.5 * np.eye(4), Q=np.eye(4))
    em = fit_em(start, ys, n_iter=60, update=("F", "Q"))
    lls = em.log_likelihoods
    assert np.all(np.diff(lls) >= -1e-9 * abs(lls[0]))
    true_ll = float(kalman_filter(truth, ys).log_likelihood)
    assert lls[-1] > lls[0] + 1000 and abs(lls[-1] - true_ll) < 0.01 * abs(true_ll)


def test_em_with_missing_rows_and_bad_arguments():
    rng = np.random.default_rng(1)
    truth = _random_model(rng)
    _, ys = sample(truth, jax.random.key(1), 300)
    ys = np.array(ys)
    ys[10:20] = np.nan
    em = fit_em(truth._replace(R=np.eye(2)), ys, n_iter=20, update=("R",))
    assert np.all(np.diff(em.log_likelihoods) >= -1e-9 * abs(em.log_likelihoods[0]))
    ys[30, 0] = np.nan
    with pytest.raises(ValueError, match="fully observed or fully missing"):
        fit_em(truth, ys, update=("R",))
    with pytest.raises(ValueError, match="update may name only"):
        fit_em(truth, ys, update=("A",))


def test_samples_have_the_model_moments():
    rng = np.random.default_rng(2)
    model = _random_model(rng, d=2, m=1)
    T = 4
    keys = jax.random.split(jax.random.key(3), 4000)
    draws = [sample(model, k, T) for k in keys]
    xs = np.stack([np.asarray(d[0]) for d in draws])
    ys = np.stack([np.asarray(d[1]) for d in draws])
    F, H, Q, R, m0, P0 = (np.asarray(a) for a in model)
    mean, cov = m0, P0
    for t in range(T):
        if t:
            mean, cov = F @ mean, F @ cov @ F.T + Q
        se = np.sqrt(np.diag(cov) / len(xs))
        assert np.all(np.abs(xs[:, t].mean(0) - mean) < 5 * se)
        np.testing.assert_allclose(np.cov(xs[:, t].T), cov, atol=0.1 * np.abs(cov).max())
        np.testing.assert_allclose(np.var(ys[:, t, 0]), (H @ cov @ H.T + R)[0, 0], rtol=0.1)
    with pytest.raises(ValueError, match="key is required"):
        sample(model, None, 3)
