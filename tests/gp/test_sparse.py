"""Sparse variational GP (Titsias's collapsed bound) against the exact GP."""

import time
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bayeskit.gp.exact import log_marginal_likelihood, posterior, predict
from bayeskit.gp.sparse import (
    SparseGPRegressor,
    fit_sparse,
    select_inducing,
    sparse_elbo,
    sparse_posterior,
    sparse_predict,
)
from bayeskit.kernels import RBF, Matern32, Matern52


def _data(n, seed=0, d=1):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-3, 3, (n, d))
    y = np.sin(2 * X[:, 0]) + 0.5 * X.sum(axis=1) + 0.1 * rng.normal(size=n)
    return X, y


def _naive_bound(kernel, X, y, Z, noise):
    """Titsias eq. 9 written with n x n matrices (the O(n^3) way), as an independent reference."""
    Knn = np.asarray(kernel(X))
    Knm = np.asarray(kernel(X, Z))
    Kmm = np.asarray(kernel(Z, Z))
    Q = Knm @ np.linalg.solve(Kmm, Knm.T)
    C = Q + noise * np.eye(len(y))
    sign, logdet = np.linalg.slogdet(C)
    gauss = -0.5 * (y @ np.linalg.solve(C, y) + logdet + len(y) * np.log(2 * np.pi))
    return gauss - np.trace(Knn - Q) / (2 * noise)


def test_bound_matches_dense_formula():
    X, y = _data(40)
    Z = select_inducing(X, 7, seed=3)
    k = Matern52(lengthscale=0.9, variance=1.4)
    assert float(sparse_elbo(k, X, y, Z, 0.05)) == pytest.approx(_naive_bound(k, X, y, Z, 0.05), rel=1e-9)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.sampled_from([2, 9, 25]),  # a few shapes: each new shape costs a JAX compile
    m=st.sampled_from([1, 3, 8]),
    d=st.integers(1, 2),
    lengthscale=st.floats(0.1, 5.0),
    variance=st.floats(0.1, 5.0),
    noise=st.floats(1e-3, 2.0),
    seed=st.integers(0, 10_000),
)
def test_bound_never_exceeds_exact_lml(n, m, d, lengthscale, variance, noise, seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = rng.normal(size=n) * np.sqrt(variance)
    Z = rng.normal(size=(m, d))  # anywhere, not only at data points
    k = RBF(lengthscale=lengthscale, variance=variance)
    lml = float(log_marginal_likelihood(k, X, y, noise))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # close random inducing points may need jitter
        bound = float(sparse_elbo(k, X, y, Z, noise))
    assert bound <= lml + 1e-8 * (1 + abs(lml))


def test_bound_equals_lml_when_inducing_at_data():
    X, y = _data(30, seed=1)
    k = Matern32(lengthscale=0.6, variance=1.3)
    lml = float(log_marginal_likelihood(k, X, y, 0.02))
    assert float(sparse_elbo(k, X, y, X, 0.02)) == pytest.approx(lml, rel=1e-10, abs=1e-9)


def test_bound_grows_toward_lml_with_nested_inducing_sets():
    X, y = _data(200, seed=2)
    k = RBF(lengthscale=0.4, variance=1.0)
    lml = float(log_marginal_likelihood(k, X, y, 0.01))
    full = select_inducing(X, 64, seed=5)
    bounds = [float(sparse_elbo(k, X, y, full[:m], 0.01)) for m in (1, 2, 4, 8, 16, 32, 64)]
    # nested sets: the bound can only grow (Titsias, sec. 3); tiny slack for round-off
    assert all(b2 >= b1 - 1e-8 * abs(b1) for b1, b2 in zip(bounds, bounds[1:]))
    assert bounds[0] < lml - 100  # far from the LML with one point
    assert lml - bounds[-1] < 0.05  # and essentially tight with 64
    assert all(b <= lml + 1e-8 for b in bounds)


def test_select_inducing_is_nested_and_spread():
    X, _ = _data(500, seed=3, d=2)
    for method in ("kmeans++", "random"):
        Z10 = select_inducing(X, 10, method=method, seed=9)
        Z20 = select_inducing(X, 20, method=method, seed=9)
        np.testing.assert_array_equal(Z10, Z20[:10])
        assert len({tuple(r) for r in Z20}) == 20  # distinct rows of X
        assert all((X == r).all(axis=1).any() for r in Z20)
    # k-means++ spreads the points: mean distance from data to its nearest inducing point is
    # smaller than for a random subset (averaged over seeds)
    def cover(Z):
        return np.sqrt(((X[:, None, :] - Z[None]) ** 2).sum(-1)).min(1).mean()
    kpp = np.mean([cover(select_inducing(X, 15, seed=s)) for s in range(10)])
    rnd = np.mean([cover(select_inducing(X, 15, method="random", seed=s)) for s in range(10)])
    assert kpp < rnd


def test_predictive_equals_exact_gp_when_inducing_at_data():
    X, y = _data(25, seed=4)
    k = Matern32(lengthscale=0.7, variance=2.0)
    Xs = np.linspace(-4, 4, 31)[:, None]
    sp = sparse_posterior(k, X, y, X, 0.05)
    mean, cov = sparse_predict(sp, Xs, full_cov=True)
    mean_e, cov_e = predict(posterior(k, X, y, 0.05), Xs, full_cov=True)
    np.testing.assert_allclose(mean, mean_e, atol=1e-9)
    np.testing.assert_allclose(cov, cov_e, atol=1e-9)
    # the optimal q(u) at Z = X is the exact posterior of f(X)
    mu_f, cov_f = predict(posterior(k, X, y, 0.05), X, full_cov=True)
    np.testing.assert_allclose(sp.q_mean, mu_f, atol=1e-9)
    np.testing.assert_allclose(sp.q_cov, cov_f, atol=1e-9)


def test_q_u_is_the_posterior_of_inducing_values_under_the_nystrom_model():
    """With Z a subset, q(u) is the exact posterior of u under y = K_nm K_mm^-1 u + noise."""
    X, y = _data(60, seed=6)
    Z = select_inducing(X, 6, seed=1)
    k = RBF(lengthscale=1.0, variance=1.5)
    noise = 0.1
    sp = sparse_posterior(k, X, y, Z, noise)
    Kmm = np.asarray(k(Z, Z))
    H = np.asarray(k(X, Z)) @ np.linalg.inv(Kmm)  # y = H u + e
    prec = np.linalg.inv(Kmm) + H.T @ H / noise
    cov = np.linalg.inv(prec)
    np.testing.assert_allclose(sp.q_cov, cov, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(sp.q_mean, cov @ H.T @ y / noise, rtol=1e-6, atol=1e-9)


def test_regressor_fit_improves_bound_and_predicts_well():
    X, y = _data(300, seed=7)
    model = SparseGPRegressor(RBF(), n_inducing=15, noise=0.1, seed=0)
    start = float(sparse_elbo(RBF(), X, y, select_inducing(X, 15, seed=0), 0.1))
    model.fit(X, y)
    assert model.elbo_ > start
    assert model.inducing_points_.shape == (15, 1)
    assert 0.003 < model.noise_ < 0.03  # true noise variance 0.01
    exact = float(log_marginal_likelihood(model.kernel_, X, y, model.noise_))
    assert model.elbo_ <= exact + 1e-8 and exact - model.elbo_ < 2.0
    Xs = np.linspace(-2.5, 2.5, 50)[:, None]
    mean, std = model.predict(Xs, return_std=True)
    truth = np.sin(2 * Xs[:, 0]) + 0.5 * Xs[:, 0]
    assert np.sqrt(np.mean((mean - truth) ** 2)) < 0.05
    assert np.all(std > 0) and np.all(std < 0.1)
    _, std_y = model.predict(Xs, return_std=True, include_noise=True)
    assert np.all(std_y > std)


def test_fixed_inducing_points_stay_put():
    X, y = _data(100, seed=8)
    Z = select_inducing(X, 5, seed=2)
    res = fit_sparse(RBF(), X, y, Z, 0.1, optimize_inducing=False)
    np.testing.assert_array_equal(res.Z, Z)
    model = SparseGPRegressor(RBF(), Z=Z, optimize=False).fit(X, y)
    np.testing.assert_array_equal(model.inducing_points_, Z)
    assert model.elbo_ == pytest.approx(float(sparse_elbo(RBF(), X, y, Z, 1e-2)))


def test_bad_inputs_raise_clear_errors():
    X, y = _data(20)
    Z = X[:4]
    k = RBF()
    with pytest.raises(ValueError, match="noise"):
        sparse_elbo(k, X, y, Z, 0.0)
    with pytest.raises(ValueError, match="noise"):
        sparse_elbo(k, X, y, Z, -1.0)
    with pytest.raises(ValueError, match="Z must have 1 column"):
        sparse_elbo(k, X, y, np.zeros((3, 2)), 0.1)
    with pytest.raises(ValueError, match="y has 19 rows"):
        sparse_elbo(k, X, y[:-1], Z, 0.1)
    with pytest.raises(ValueError, match="y contains 1 NaN"):
        sparse_elbo(k, X, np.where(np.arange(20) == 3, np.nan, y), Z, 0.1)
    with pytest.raises(ValueError, match="Z contains"):
        sparse_elbo(k, X, y, np.full((2, 1), np.inf), 0.1)
    with pytest.raises(ValueError, match="Z is empty"):
        sparse_elbo(k, X, y, np.zeros((0, 1)), 0.1)
    with pytest.raises(TypeError, match="kernel must be"):
        sparse_elbo("rbf", X, y, Z, 0.1)
    with pytest.raises(ValueError, match="n_inducing"):
        SparseGPRegressor(n_inducing=0).fit(X, y)
    with pytest.raises(ValueError, match="must be an integer in"):
        select_inducing(X, 21)
    with pytest.raises(ValueError, match="method"):
        select_inducing(X, 3, method="grid")
    with pytest.raises(RuntimeError, match="not fitted"):
        SparseGPRegressor().predict(X)
    with pytest.raises(ValueError, match="1-D"):
        SparseGPRegressor().fit(X, np.c_[y, y])


@pytest.mark.slow
def test_fits_one_hundred_thousand_points_on_cpu():
    rng = np.random.default_rng(11)
    n = 100_000
    X = rng.uniform(0, 10, (n, 2))
    f = np.sin(X[:, 0]) * np.cos(0.5 * X[:, 1])
    y = f + 0.2 * rng.normal(size=n)
    start = time.perf_counter()
    model = SparseGPRegressor(RBF(lengthscale=np.ones(2)), n_inducing=50, noise=0.1,
                              maxiter=60, seed=0).fit(X, y)
    elapsed = time.perf_counter() - start
    print(f"\nSparse GP fit, n = {n}, m = 50, d = 2: {elapsed:.1f} s, "
          f"{model.fit_result_.n_evaluations} bound evaluations")
    Xs = rng.uniform(1, 9, (500, 2))
    truth = np.sin(Xs[:, 0]) * np.cos(0.5 * Xs[:, 1])
    assert np.sqrt(np.mean((model.predict(Xs) - truth) ** 2)) < 0.05
    assert 0.03 < model.noise_ < 0.05  # true noise variance 0.04
