"""Implicit MAP filtering: exact Kalman equivalence, a hand-written reference loop, and the
stochastic Lorenz-96 comparison with the EKF."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bayeskit  # noqa: F401
from bayeskit.filters import LinearGaussianSSM, kalman_filter
from bayeskit.filters.implicit_map import implicit_map_filter, kalman_learning_rates
from bayeskit.filters.nonlinear import NonlinearGaussianSSM, extended_kalman_filter


def _random_linear(rng, d=4, m=2):
    F = 0.95 * np.linalg.qr(rng.normal(size=(d, d)))[0]
    H = rng.normal(size=(m, d))
    A = rng.normal(size=(d, d))
    B = rng.normal(size=(m, m))
    Q = A @ A.T / d + 0.1 * np.eye(d)
    R = B @ B.T + 0.3 * np.eye(m)
    return LinearGaussianSSM(F, H, Q, R, rng.normal(size=d), 2.0 * np.eye(d))


@pytest.mark.parametrize("n_steps", [1, 4])
def test_gradient_descent_with_kalman_learning_rates_is_the_kalman_filter(n_steps):
    rng = np.random.default_rng(0)
    model = _random_linear(rng)
    ys = rng.normal(size=(80, 2)) * 3.0
    ys[10] = np.nan  # a missing row: no update
    ys[17, 1] = np.nan  # a partly missing row: only the observed entry enters the loss
    kf = kalman_filter(model, ys)
    L = kalman_learning_rates(model, ys, n_steps)
    F, H = jnp.asarray(model.F), jnp.asarray(model.H)
    res = implicit_map_filter(lambda x: F @ x, lambda x: H @ x, ys, model.m0, optax.sgd(1.0), n_steps,
                              R=model.R, preconditioners=L)
    np.testing.assert_allclose(res.means, kf.means, rtol=0, atol=1e-8)
    np.testing.assert_allclose(res.predicted_means, kf.predicted_means, rtol=0, atol=1e-8)
    # K = 1: the learning rate is the Kalman posterior covariance (one Newton step)
    if n_steps == 1:
        np.testing.assert_allclose(L[1:], kf.covariances[1:], rtol=1e-9, atol=1e-12)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n_steps=st.sampled_from([1, 2, 3, 7]))
def test_property_k_preconditioned_steps_give_the_kalman_update(seed, n_steps):
    # plain NumPy gradient steps x <- x - L_t H^T R^-1 (H x - y) from the Kalman prediction
    rng = np.random.default_rng(seed)
    model = _random_linear(rng, d=3, m=2)
    ys = rng.normal(size=(6, 2)) * rng.uniform(0.1, 10.0)
    kf = kalman_filter(model, ys)
    L = np.asarray(kalman_learning_rates(model, ys, n_steps))
    Rinv = np.linalg.inv(model.R)
    for t in range(6):
        x = np.asarray(kf.predicted_means[t]).copy()
        for _ in range(n_steps):
            x = x - L[t] @ (model.H.T @ Rinv @ (model.H @ x - ys[t]))
        np.testing.assert_allclose(x, kf.means[t], rtol=1e-8, atol=1e-8)
        # every step contracts: the learning rate is symmetric PSD
        np.testing.assert_allclose(L[t], L[t].T, atol=1e-12)
        assert np.linalg.eigvalsh(L[t]).min() > -1e-12


def test_matches_a_hand_written_optimiser_loop():
    # independent reference: momentum gradient descent written out by hand, state reset per step
    a, lr, beta, K = 0.8, 0.05, 0.9, 6
    ys = np.array([0.3, 1.2, -0.5, 2.0, np.nan, 0.7])

    def f(x):
        return a * jnp.sin(x) + 0.5 * x

    def h(x):
        return jnp.stack([x[0] ** 2, jnp.tanh(x[1])])

    ys2 = np.stack([ys, 0.5 * ys], axis=1)
    R = np.diag([0.5, 0.2])
    res = implicit_map_filter(f, h, ys2, np.array([0.5, -0.2]), optax.sgd(lr, momentum=beta), K, R=R)

    def grad(x, y):
        e = y - np.array([x[0] ** 2, np.tanh(x[1])])
        J = np.array([[2 * x[0], 0.0], [0.0, 1 - np.tanh(x[1]) ** 2]])
        return -J.T @ np.linalg.solve(R, e)

    x = np.array([0.5, -0.2])
    for t in range(len(ys)):
        if t > 0:
            x = a * np.sin(x) + 0.5 * x
        assert np.allclose(res.predicted_means[t], x, atol=1e-12)
        if not np.isnan(ys2[t]).any():
            v = np.zeros(2)
            for _ in range(K):
                v = beta * v + grad(x, ys2[t])  # optax's trace: v <- g + beta v, x <- x - lr v
                x = x - lr * v
        np.testing.assert_allclose(res.means[t], x, rtol=1e-12, atol=1e-12)


def test_zero_steps_returns_the_predictions_and_custom_loss_works():
    ys = np.linspace(0, 1, 5)
    res0 = implicit_map_filter(lambda x: 2 * x, lambda x: x, ys, np.array([1.0]), optax.adam(0.1), 0, R=[[1.0]])
    np.testing.assert_allclose(res0.means[:, 0], 2.0 ** np.arange(5))
    # a robust (Cauchy) loss through ``loss``: finite estimates, and the state-carrying mode runs
    res = implicit_map_filter(lambda x: x, lambda x: x, ys, np.array([0.0]), optax.adam(0.1), 5,
                              loss=lambda x, y: jnp.sum(jnp.log1p((y - x) ** 2)), reset_optimizer_state=False)
    assert np.all(np.isfinite(res.means)) and np.all(np.diff(res.means[:, 0]) > 0)


def _lorenz96(d=40, forcing=8.0, dt=0.05):
    def drift(x):
        return (jnp.roll(x, -1) - jnp.roll(x, 2)) * jnp.roll(x, 1) - x + forcing

    def step(x):  # one RK4 step
        k1 = drift(x)
        k2 = drift(x + 0.5 * dt * k1)
        k3 = drift(x + 0.5 * dt * k2)
        k4 = drift(x + dt * k3)
        return x + dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)

    return step


def test_stochastic_lorenz96_adam_imap_is_stable_and_robust_to_misspecified_noise():
    d, T, q, r = 40, 150, 0.1, 4.0
    f = _lorenz96(d)
    f_jit = jax.jit(f)
    rng = np.random.default_rng(0)
    x = 8.0 * np.ones(d)
    x[0] += 0.01
    for _ in range(500):  # spin up onto the attractor
        x = np.asarray(f_jit(x))
    xs, ys = [], []
    for _ in range(T):
        x = np.asarray(f_jit(x)) + np.sqrt(q) * rng.normal(size=d)
        xs.append(x)
        ys.append(x + np.sqrt(r) * rng.normal(size=d))
    xs, ys = np.array(xs), np.array(ys)
    m0 = 8.0 * np.ones(d)

    def rmse(means):
        return float(np.sqrt(np.mean((np.asarray(means) - xs) ** 2)))

    imap = rmse(implicit_map_filter(f, lambda v: v, ys, m0, optax.adam(0.2), 5, R=r * np.eye(d)).means)
    raw = rmse(ys)
    ekf_true = rmse(extended_kalman_filter(NonlinearGaussianSSM(f, lambda v: v, q * np.eye(d), r * np.eye(d), m0, 4 * np.eye(d)), ys).means)
    ekf_misspecified = rmse(extended_kalman_filter(
        NonlinearGaussianSSM(f, lambda v: v, 0.01 * q * np.eye(d), r * np.eye(d), m0, 4 * np.eye(d)), ys).means)
    assert np.isfinite(imap)
    assert imap < 0.8 * raw  # filtering helps: better than reading off the noisy measurements
    assert imap < 0.6 * ekf_misspecified  # with process noise 100x too small the EKF loses track
    # what is true here: an EKF given the true noise is better still (IMAP does not know Q)
    assert ekf_true < imap


def test_bad_inputs_raise_clear_errors():
    f, h = (lambda x: x), (lambda x: x)
    ys = np.zeros((4, 1))
    with pytest.raises(ValueError, match="exactly one of R"):
        implicit_map_filter(f, h, ys, np.zeros(1), optax.sgd(0.1), 2)
    with pytest.raises(ValueError, match="n_steps"):
        implicit_map_filter(f, h, ys, np.zeros(1), optax.sgd(0.1), -1, R=[[1.0]])
    with pytest.raises(ValueError, match="R must be symmetric positive definite"):
        implicit_map_filter(f, h, ys, np.zeros(1), optax.sgd(0.1), 2, R=[[-1.0]])
    with pytest.raises(ValueError, match="ys must have shape"):
        implicit_map_filter(f, h, np.zeros((4, 3)), np.zeros(1), optax.sgd(0.1), 2, R=[[1.0]])
    with pytest.raises(ValueError, match="infinite"):
        implicit_map_filter(f, h, np.array([0.0, np.inf]), np.zeros(1), optax.sgd(0.1), 2, R=[[1.0]])
    with pytest.raises(ValueError, match="x0"):
        implicit_map_filter(f, h, ys, np.array([np.nan]), optax.sgd(0.1), 2, R=[[1.0]])
    with pytest.raises(ValueError, match="preconditioners"):
        implicit_map_filter(f, h, ys, np.zeros(1), optax.sgd(0.1), 2, R=[[1.0]], preconditioners=np.ones((3, 1, 1)))
    with pytest.raises(TypeError, match="optax"):
        implicit_map_filter(f, h, ys, np.zeros(1), "adam", 2, R=[[1.0]])
    model = LinearGaussianSSM(np.eye(1), np.eye(1), np.eye(1), np.eye(1), np.zeros(1), np.eye(1))
    with pytest.raises(ValueError, match="n_steps"):
        kalman_learning_rates(model, ys, 0)
