"""bayeskit.bo.surface: the drawn posterior against scikit-learn, the drawn acquisitions against
closed forms and against the loop's own choice, regret and grids."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process import kernels as sk

import bayeskit.bo as bo
from bayeskit.bo.surface import acquisition_surface, box_grid, simple_regret
from bayeskit.bo.test_functions import Branin, Forrester


def _run(f, acquisition="log_ei", seed=0, n_told=6, noise=None, **kw):
    """An optimiser told n_told points of f, then asked for the next one: (opt, next point)."""
    opt = bo.BayesianOptimizer(f.bounds, acquisition, seed, noise=noise, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for _ in range(n_told):
            x = opt.ask()
            opt.tell(x, f(x))
        return opt, opt.ask()


def _sklearn_posterior(opt, X):
    """Posterior mean and sd of f at X in units of y from scikit-learn, the loop's hyperparameters."""
    lo, hi = opt.bounds[:, 0], opt.bounds[:, 1]
    U = (np.asarray(opt.x_iters) - lo) / (hi - lo)
    y = np.asarray(opt.func_vals)
    y_mean, y_std = y.mean(), y.std()
    kern = opt.kernel_
    k = sk.ConstantKernel(float(kern.variance)) * sk.Matern(np.asarray(kern.lengthscale, dtype=float), nu=2.5)
    gp = GaussianProcessRegressor(k, alpha=float(opt.noise_), optimizer=None).fit(U, (y - y_mean) / y_std)
    m, s = gp.predict((np.asarray(X) - lo) / (hi - lo), return_std=True)
    return m * y_std + y_mean, s * y_std


def test_box_grid_shapes_order_and_errors():
    g1 = box_grid([(0.0, 1.0)], 5)
    assert g1.shape == (5, 1) and g1[0, 0] == 0.0 and g1[-1, 0] == 1.0
    g2 = box_grid([(-5.0, 10.0), (0.0, 15.0)], 4)
    assert g2.shape == (16, 2)
    # x_1 fastest: row j * n + i is (g1[i], g2[j])
    np.testing.assert_allclose(g2[:4, 0], np.linspace(-5, 10, 4))
    assert np.all(g2[:4, 1] == 0.0) and np.all(g2[4:8, 1] == 5.0)
    with pytest.raises(ValueError, match="bounds"):
        box_grid([(0, 1)] * 3, 4)
    with pytest.raises(ValueError, match="n_per_dim"):
        box_grid([(0, 1)], 1)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=30), st.floats(-1e6, 1e6))
def test_simple_regret_is_the_running_minimum(values, optimum):
    r = simple_regret(values, optimum)
    assert r.shape == (len(values),)
    assert np.all(np.diff(r) <= 0)
    np.testing.assert_allclose(r, [min(values[: i + 1]) - optimum for i in range(len(values))])


def test_simple_regret_skips_nan():
    np.testing.assert_allclose(simple_regret([3.0, np.nan, 1.0], 0.5), [2.5, 2.5, 0.5])


def test_posterior_matches_scikit_learn_and_interpolates_the_data():
    f = Forrester()
    opt, _ = _run(f, "ei", n_told=7)
    grid = box_grid(f.bounds, 101)
    s = acquisition_surface(opt, grid)
    mean, sd = _sklearn_posterior(opt, grid)
    scale = np.ptp(opt.func_vals)
    np.testing.assert_allclose(s.mean, mean, atol=1e-7 * scale)
    np.testing.assert_allclose(s.std, np.maximum(sd, 1e-9 * np.std(opt.func_vals)), atol=1e-6 * scale)
    # noise-free model (a 1e-6 nugget in standardised units): the mean passes through the data
    at = acquisition_surface(opt, np.asarray(opt.x_iters))
    np.testing.assert_allclose(at.mean, opt.func_vals, atol=1e-4 * scale)
    assert np.all(at.std < 1e-2 * np.std(opt.func_vals))
    assert s.incumbent == pytest.approx(min(opt.func_vals)) and s.n_observations == 7


@pytest.mark.parametrize("name", ["ei", "log_ei", "pi", "lcb"])
def test_closed_form_acquisitions_in_units_of_y(name):
    """EI, log EI, PI and LCB at the grid from scipy's normal on scikit-learn's posterior."""
    f = Branin()
    opt, _ = _run(f, name, n_told=8)
    grid = box_grid(f.bounds, 12)
    s = acquisition_surface(opt, grid)
    mean, sd = _sklearn_posterior(opt, grid)
    sd = np.maximum(sd, 1e-9 * np.std(opt.func_vals))
    best = min(opt.func_vals)
    z = (best - mean) / sd
    ei = (best - mean) * stats.norm.cdf(z) + sd * stats.norm.pdf(z)
    expected = {"ei": ei, "log_ei": np.log(ei), "pi": stats.norm.cdf(z), "lcb": mean - 2.0 * sd}[name]
    big = ei > 1e-8 * np.ptp(opt.func_vals)  # where EI does not underflow, compare relatively
    if name == "log_ei":
        np.testing.assert_allclose(s.acquisition[big], expected[big], atol=1e-5)
    elif name == "lcb":
        np.testing.assert_allclose(s.acquisition, expected, atol=1e-6 * np.ptp(opt.func_vals))
        assert not s.maximize
    else:
        np.testing.assert_allclose(s.acquisition[big], expected[big], rtol=1e-5)


# KG's exact expectation compiles small JAX programs per envelope size: ~30 s on a cold cache
@pytest.mark.parametrize("name", [pytest.param(a, marks=pytest.mark.slow) if a == "kg" else a for a in bo.ACQUISITIONS])
def test_the_loop_chose_the_optimum_of_the_drawn_acquisition(name):
    """What is drawn is what ask() optimised: no grid point beats the proposed point (the loop's
    random numbers for TS, MES, noisy EI and KG are reproduced), and KG's argmax is the proposal."""
    f = Forrester()
    noise = 1e-4 if name == "noisy_ei" else None
    kw = {"acquisition_kwargs": {"kg_candidates": 32}} if name == "kg" else {}  # KG's hull is a Python loop
    opt, x_next = _run(f, name, seed=3, n_told=5, noise=noise, **kw)
    grid = box_grid(f.bounds, 300)
    s = acquisition_surface(opt, np.vstack([grid, x_next[None, :]]))
    if name == "kg":
        assert s.points is not None and np.all(np.isnan(s.acquisition))
        np.testing.assert_allclose(s.points[np.argmax(s.points_values)], x_next, atol=1e-12)
        return
    at_next, on_grid = s.acquisition[-1], s.acquisition[:-1]
    tol = 1e-6 * max(1.0, abs(at_next))
    if s.maximize:
        assert at_next >= on_grid.max() - tol, (name, x_next, grid[np.argmax(on_grid)])
    else:
        assert at_next <= on_grid.min() + tol, (name, x_next, grid[np.argmin(on_grid)])


def test_drawing_does_not_change_the_run():
    """Drawing after every ask() leaves the run identical to bayeskit.bo.minimize's."""
    f = Forrester()
    opt = bo.BayesianOptimizer(f.bounds, "ts", 1)
    for _ in range(7):
        x = opt.ask()
        if len(opt.func_vals) >= opt.n_initial_points:
            acquisition_surface(opt, box_grid(f.bounds, 50))
        opt.tell(x, f(x))
    reference = bo.minimize(f, f.bounds, n_calls=7, acquisition="ts", seed=1)
    np.testing.assert_array_equal(np.asarray(reference.x_iters), np.asarray(opt.x_iters))


def test_bad_input_and_a_stale_model_are_errors():
    f = Forrester()
    opt = bo.BayesianOptimizer(f.bounds, "ei", 0)
    with pytest.raises(ValueError, match="no fitted model"):
        acquisition_surface(opt, np.zeros((3, 1)))
    opt, x = _run(f, "ei", n_told=4)
    with pytest.raises(ValueError, match=r"shape \(m, 1\)"):
        acquisition_surface(opt, np.zeros((3, 2)))
    with pytest.raises(ValueError, match="NaN"):
        acquisition_surface(opt, np.array([[np.nan]]))
    opt.tell(x, f(x))
    with pytest.raises(ValueError, match="call ask"):
        acquisition_surface(opt, np.zeros((3, 1)))
    if "fully_bayesian" in getattr(bo.loop, "MODELS", ()):  # the NUTS model is not what is drawn
        with pytest.raises(ValueError, match="model='ml2'"):
            acquisition_surface(bo.BayesianOptimizer(f.bounds, "ei", 0, model="fully_bayesian"), np.zeros((3, 1)))
