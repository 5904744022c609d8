"""Exact GP regression against scikit-learn, exact identities, and bad input."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process import kernels as sk

import bayeskit  # noqa: F401
from bayeskit import kernels as bk
from bayeskit.gp import (
    GPRegressor,
    fit_ml2,
    log_marginal_likelihood,
    log_marginal_likelihood_and_grad,
)
from bayeskit.linalg import JitterWarning, NotPositiveDefiniteError

NOISE = 0.05


def _data(seed=0, n=35, d=2):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-3, 3, (n, d))
    y = np.sin(X[:, 0]) + 0.3 * X[:, -1] + 0.1 * rng.normal(size=n)
    Xs = rng.uniform(-3.5, 3.5, (11, d))
    return X, y, Xs


FAMILIES = {
    "rbf": (lambda: bk.RBF(0.9, 1.4), lambda: sk.ConstantKernel(1.4) * sk.RBF(0.9), 2),
    "rbf-ard": (lambda: bk.RBF(np.array([0.6, 2.0]), 1.4), lambda: sk.ConstantKernel(1.4) * sk.RBF([0.6, 2.0]), 2),
    "matern12": (lambda: bk.Matern12(0.9, 1.4), lambda: sk.ConstantKernel(1.4) * sk.Matern(0.9, nu=0.5), 2),
    "matern32": (lambda: bk.Matern32(0.9, 1.4), lambda: sk.ConstantKernel(1.4) * sk.Matern(0.9, nu=1.5), 2),
    "matern52": (lambda: bk.Matern52(0.9, 1.4), lambda: sk.ConstantKernel(1.4) * sk.Matern(0.9, nu=2.5), 2),
    "periodic": (lambda: bk.Periodic(0.9, 2.5, 1.4), lambda: sk.ConstantKernel(1.4) * sk.ExpSineSquared(0.9, 2.5), 1),
    "ratquad": (lambda: bk.RationalQuadratic(0.9, 0.7, 1.4), lambda: sk.ConstantKernel(1.4) * sk.RationalQuadratic(0.9, 0.7), 2),
    "linear": (lambda: bk.Linear(1.4, 0.5), lambda: sk.ConstantKernel(1.4) * sk.DotProduct(np.sqrt(0.5)), 2),
    "white+rbf": (lambda: bk.RBF(0.9) + bk.White(0.2), lambda: sk.RBF(0.9) + sk.WhiteKernel(0.2), 2),
    "constant+matern": (lambda: bk.Constant(0.8) + bk.Matern52(1.1), lambda: sk.ConstantKernel(0.8) + sk.Matern(1.1, nu=2.5), 2),
    "product": (lambda: bk.Periodic(1.0, 2.0) * bk.RBF(2.5), lambda: sk.ExpSineSquared(1.0, 2.0) * sk.RBF(2.5), 1),
}


@pytest.mark.parametrize("name", sorted(FAMILIES))
@pytest.mark.parametrize("seed", [0, 1])
def test_lml_and_predictions_match_scikit_learn(name, seed):
    ours_k, theirs_k, d = FAMILIES[name]
    X, y, Xs = _data(seed, d=d)
    ref = GaussianProcessRegressor(theirs_k(), alpha=NOISE, optimizer=None).fit(X, y)
    lml = float(log_marginal_likelihood(ours_k(), X, y, NOISE))
    np.testing.assert_allclose(lml, ref.log_marginal_likelihood_value_, rtol=1e-8)

    gp = GPRegressor(ours_k(), NOISE, optimize=False).fit(X, y)
    assert gp.log_marginal_likelihood_ == pytest.approx(ref.log_marginal_likelihood_value_, rel=1e-8)
    mean, std = gp.predict(Xs, return_std=True)
    ref_mean, ref_std = ref.predict(Xs, return_std=True)
    np.testing.assert_allclose(mean, ref_mean, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(std, ref_std, rtol=1e-8, atol=1e-10)
    _, cov = gp.predict(Xs, return_cov=True)
    _, ref_cov = ref.predict(Xs, return_cov=True)
    np.testing.assert_allclose(cov, ref_cov, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("name", ["rbf", "matern32", "ratquad", "periodic"])
def test_lml_gradient_matches_scikit_learn(name):
    """The analytic gradient (R&W eq. 5.9, custom VJP) against scikit-learn's, in log-space."""
    ours_k, theirs_k, d = FAMILIES[name]
    X, y, _ = _data(3, d=d)
    kernel = ours_k()
    _, (gk, _) = log_marginal_likelihood_and_grad(kernel, X, y, NOISE)
    ref = GaussianProcessRegressor(theirs_k(), alpha=NOISE, optimizer=None).fit(X, y)
    _, ref_grad = ref.log_marginal_likelihood(ref.kernel_.theta, eval_gradient=True)
    # sklearn orders theta as [constant, then the second kernel's parameters]; map by value
    ours_log = {
        name: float(np.asarray(g) * np.asarray(v))
        for name, g, v in zip(kernel.hyperparameters, jax.tree_util.tree_leaves(gk), jax.tree_util.tree_leaves(kernel))
    }
    ref_names = [h.name for h in ref.kernel_.hyperparameters]
    ref_map = dict(zip(ref_names, ref_grad))
    assert ours_log["variance"] == pytest.approx(ref_map["k1__constant_value"], rel=1e-7)
    assert ours_log["lengthscale"] == pytest.approx(ref_map["k2__length_scale"], rel=1e-7)


def test_gradient_matches_autodiff_through_cholesky():
    X, y, _ = _data(4, n=20)
    kernel = bk.Matern52(0.8, 1.3) + bk.White(0.1)

    def plain(k, noise):
        K = k(X) + noise * jnp.eye(len(X))
        L = jnp.linalg.cholesky(K)
        a = jax.scipy.linalg.cho_solve((L, True), y)
        return -0.5 * y @ a - jnp.sum(jnp.log(jnp.diag(L))) - 0.5 * len(X) * jnp.log(2 * jnp.pi)

    v, (gk, gn) = log_marginal_likelihood_and_grad(kernel, X, y, 0.07)
    v2, (gk2, gn2) = jax.value_and_grad(plain, argnums=(0, 1))(kernel, 0.07)
    assert float(v) == pytest.approx(float(v2), rel=1e-12)
    for a, b in zip(jax.tree_util.tree_leaves(gk), jax.tree_util.tree_leaves(gk2)):
        np.testing.assert_allclose(a, b, rtol=1e-9)
    assert float(gn) == pytest.approx(float(gn2), rel=1e-9)


def test_multi_output_is_sum_of_single_outputs():
    X, y, Xs = _data(5)
    Y = np.column_stack([y, np.cos(X[:, 1]), -y])
    k = bk.RBF(1.1, 0.9)
    total = float(log_marginal_likelihood(k, X, Y, NOISE))
    parts = sum(float(log_marginal_likelihood(k, X, Y[:, j], NOISE)) for j in range(3))
    assert total == pytest.approx(parts, rel=1e-12)
    gp = GPRegressor(k, NOISE, optimize=False).fit(X, Y)
    mean, std = gp.predict(Xs, return_std=True)
    assert mean.shape == (11, 3) and std.shape == (11, 3)
    for j in range(3):
        m_j, s_j = GPRegressor(k, NOISE, optimize=False).fit(X, Y[:, j]).predict(Xs, return_std=True)
        np.testing.assert_allclose(mean[:, j], m_j, rtol=1e-10)
        np.testing.assert_allclose(std[:, j], s_j, rtol=1e-10)
    assert gp.sample_y(Xs, 4, key=jax.random.key(0)).shape == (11, 3, 4)


@pytest.mark.parametrize("n_restarts", [0, 3])
def test_ml2_at_least_as_good_as_scikit_learn(n_restarts):
    X, y, _ = _data(6, n=40)
    ref = GaussianProcessRegressor(
        sk.ConstantKernel(1.0) * sk.RBF([1.0, 1.0]) + sk.WhiteKernel(0.1),
        alpha=1e-10, n_restarts_optimizer=n_restarts, random_state=0,
    ).fit(X, y)
    gp = GPRegressor(bk.RBF(np.ones(2), 1.0), noise=0.1, n_restarts=n_restarts, seed=0).fit(X, y)
    # sklearn's alpha=1e-10 adds a tiny extra noise; compare at equal footing within 1e-6
    assert gp.log_marginal_likelihood_ >= ref.log_marginal_likelihood_value_ - 1e-6
    # and the reported value is the LML at the reported hyperparameters
    assert gp.log_marginal_likelihood_ == pytest.approx(
        float(log_marginal_likelihood(gp.kernel_, X, y, gp.noise_)), rel=1e-12
    )


def test_ml2_noise_fixed_keeps_noise():
    X, y, _ = _data(7)
    gp = GPRegressor(bk.RBF(), noise=0.3, noise_fixed=True).fit(X, y)
    assert gp.noise_ == 0.3
    res = fit_ml2(bk.RBF(), X, y, 0.3)
    assert res.log_marginal_likelihood >= gp.log_marginal_likelihood_ - 1e-9


def test_normalize_y_predicts_on_the_original_scale():
    X, y, Xs = _data(8)
    y = 100.0 + 20.0 * y
    gp = GPRegressor(bk.RBF(1.0, 1.0), 0.01, normalize_y=True).fit(X, y)
    ref = GaussianProcessRegressor(
        sk.ConstantKernel(1.0) * sk.RBF(1.0) + sk.WhiteKernel(0.01), alpha=1e-10, normalize_y=True
    ).fit(X, y)
    assert gp.log_marginal_likelihood_ >= ref.log_marginal_likelihood_value_ - 1e-6
    np.testing.assert_allclose(gp.predict(Xs), ref.predict(Xs), rtol=1e-3)


def test_include_noise_adds_noise_variance():
    X, y, Xs = _data(9)
    gp = GPRegressor(bk.RBF(), 0.2, optimize=False).fit(X, y)
    _, s_f = gp.predict(Xs, return_std=True)
    _, s_y = gp.predict(Xs, return_std=True, include_noise=True)
    np.testing.assert_allclose(s_y**2, s_f**2 + 0.2, rtol=1e-12)


def test_posterior_samples_have_the_posterior_moments():
    X, y, _ = _data(10, n=15, d=1)
    Xs = np.linspace(-3, 3, 6)[:, None]
    gp = GPRegressor(bk.RBF(0.8, 1.0), 0.05, optimize=False).fit(X, y)
    draws = gp.sample_y(Xs, 20000, key=jax.random.key(1))
    mean, cov = gp.predict(Xs, return_cov=True)
    se = np.sqrt(np.diag(cov) / 20000)
    assert np.all(np.abs(draws.mean(axis=1) - mean) < 5 * se + 1e-12)
    np.testing.assert_allclose(np.cov(draws), cov, atol=0.05 * np.max(np.diag(cov)))
    # same key, same draws; different key, different draws
    np.testing.assert_array_equal(gp.sample_y(Xs, 3, key=7), gp.sample_y(Xs, 3, key=7))
    assert not np.allclose(gp.sample_y(Xs, 3, key=7), gp.sample_y(Xs, 3, key=8))


@settings(max_examples=25, deadline=None)
@given(
    lengthscale=st.floats(0.05, 10.0),
    variance=st.floats(0.05, 10.0),
    noise=st.floats(1e-4, 1.0),
    seed=st.integers(0, 10_000),
)
def test_posterior_covariance_is_psd_and_below_prior(lengthscale, variance, noise, seed):
    X, y, Xs = _data(seed, n=12, d=1)
    gp = GPRegressor(bk.Matern32(lengthscale, variance), noise, optimize=False).fit(X, y)
    _, cov = gp.predict(Xs, return_cov=True)
    np.testing.assert_allclose(cov, cov.T, atol=1e-10 * variance)
    assert np.linalg.eigvalsh(cov).min() > -1e-8 * variance
    # conditioning never increases the variance
    assert np.all(np.diag(cov) <= variance * (1 + 1e-10))


def test_duplicate_inputs_without_noise_escalate_jitter_with_a_warning():
    X = np.array([[0.0], [0.0], [1.0]])
    y = np.array([0.1, 0.1, 0.5])
    with pytest.warns(JitterWarning, match="jitter"):
        lml = log_marginal_likelihood(bk.RBF(), X, y, 0.0)
    assert np.isfinite(float(lml))


def test_hopeless_matrix_raises():
    X = np.zeros((3, 1))
    y = np.array([1.0, -1.0, 0.5])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", JitterWarning)
        with pytest.raises(NotPositiveDefiniteError, match="positive definite"):
            from bayeskit.linalg import cholesky

            cholesky(-np.eye(3))
    assert np.isfinite(float(log_marginal_likelihood(bk.RBF(), X, y, 0.1)))


# -- bad input ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "X, y, noise, match",
    [
        (np.array([[0.0], [np.nan]]), np.zeros(2), 0.1, "X contains 1 NaN"),
        (np.zeros((2, 1)), np.array([0.0, np.inf]), 0.1, "y contains 1 NaN or infinite"),
        (np.zeros((3, 1)), np.zeros(2), 0.1, "y has 2 rows but X has 3"),
        (np.zeros((0, 1)), np.zeros(0), 0.1, "X is empty"),
        (np.zeros((2, 1, 1)), np.zeros(2), 0.1, "X must be 1-D"),
        (np.zeros((2, 1)), np.zeros(2), -0.1, "noise must be finite and >= 0"),
        (np.zeros((2, 1)), np.zeros(2), np.nan, "noise must be finite"),
        (np.zeros((2, 1)), np.zeros((2, 1, 1)), 0.1, r"y must be \(n,\) or \(n, k\)"),
    ],
)
def test_bad_input_raises_clear_errors(X, y, noise, match):
    with pytest.raises(ValueError, match=match):
        log_marginal_likelihood(bk.RBF(), X, y, noise)


def test_bad_input_to_the_estimator():
    X, y, Xs = _data(11)
    with pytest.raises(ValueError, match="noise must be finite and > 0"):
        GPRegressor(bk.RBF(), noise=0.0).fit(X, y)  # ML-II works on log(noise)
    with pytest.raises(ValueError, match="lengthscale has 3 entries"):
        GPRegressor(bk.RBF(np.ones(3))).fit(X, y)
    with pytest.raises(RuntimeError, match="not fitted"):
        GPRegressor().predict(Xs)
    gp = GPRegressor(bk.RBF(), 0.1, optimize=False).fit(X, y)
    with pytest.raises(ValueError, match="X must have 2 column"):
        gp.predict(np.zeros((3, 5)))
    with pytest.raises(ValueError, match="key is required"):
        gp.sample_y(Xs, 2)
    with pytest.raises(ValueError, match="n_samples must be >= 1"):
        gp.sample_y(Xs, 0, key=0)
    with pytest.raises(TypeError, match="kernel must be a bayeskit"):
        log_marginal_likelihood("rbf", X, y, 0.1)


def test_inputs_given_are_not_modified():
    X, y, _ = _data(12)
    X0, y0 = X.copy(), y.copy()
    GPRegressor(bk.RBF(), 0.1, normalize_y=True).fit(X, y)
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(y, y0)


def test_optimizer_options_reach_lbfgs():
    X, y, _ = _data(13)
    loose = fit_ml2(bk.RBF(), X, y, 0.1, optimizer_options={"maxiter": 1})
    tight = fit_ml2(bk.RBF(), X, y, 0.1, optimizer_options={"ftol": 1e-14, "gtol": 1e-10})
    assert loose.n_evaluations < tight.n_evaluations
    assert tight.log_marginal_likelihood >= loose.log_marginal_likelihood


def test_prediction_with_ard_kernel_and_far_points_in_one_program():
    """Regression: with the double-where sqrt, XLA (CPU) returned wrong means when the kernel
    matrix fed both the mean and a triangular solve, for an ARD Matern kernel and far rows."""
    from bayeskit.gp.exact import Posterior, _predict

    X = np.array([[0.286], [0.905], [0.526], [0.158]] + [[1e4]] * 12)
    kernel = bk.Matern52(np.array([0.23]), 0.32)
    K = np.asarray(kernel(X[:4])) + 1e-6 * np.eye(4)
    y = np.array([0.3, -0.8, 0.1, -0.9])
    L = np.eye(16)
    L[:4, :4] = np.linalg.cholesky(K)
    alpha = np.zeros(16)
    alpha[:4] = np.linalg.solve(K, y)
    post = Posterior(kernel, jnp.asarray(X), jnp.asarray(L), jnp.asarray(alpha), jnp.asarray(1e-6))
    Xs = np.vstack([np.linspace(0, 1, 7)[:, None], X[3:4]])
    mean, _ = _predict(post, jnp.asarray(Xs), False)
    ref = np.asarray(kernel(X[:4], Xs)).T @ alpha[:4]
    np.testing.assert_allclose(mean, ref, rtol=1e-10, atol=1e-12)
