"""Acceptance: with frozen features and lambda = 1/N, VBLL regression is exact Bayesian linear regression.

Derivation (one output, features Phi (N, d), targets y (N,)). With lambda = 1/N,

    N * loss = sum_i [ log(2 pi sigma^2)/2 + ((y_i - m^T phi_i)^2 + phi_i^T S phi_i) / (2 sigma^2) ]
               + KL(N(m, S) || N(0, s0 I)) + (nu + 2)/2 log sigma^2 + psi / (2 sigma^2),

s0 = prior_scale / d, which is -ELBO(q, sigma^2) - log IW(sigma^2) + const. For fixed sigma^2 the
ELBO is maximised by the exact posterior (the KL to it vanishes):

    S = (Phi^T Phi / sigma^2 + I / s0)^-1,        m = S Phi^T y / sigma^2,

and setting d/d sigma^2 = 0 gives sigma^2 = (R + psi) / (N + nu + 2) with
R = ||y - Phi m||^2 + tr(Phi S Phi^T): at the joint optimum sigma^2 is the MAP noise of the
collapsed problem, and (m, S) is the Bayesian-linear-regression posterior at that noise.
With a diagonal covariance the optimum is the mean-field posterior: the same mean m and
S_jj = 1 / (S^-1)_jj.

The test (a) checks that the objective's gradient vanishes at that point (analytic stationary
point, float64), and (b) trains the dense head from its random initialisation with L-BFGS and
compares mean, covariance and noise with the closed form, computed independently in NumPy.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import bayeskit  # noqa: F401  (float64)
from bayeskit.bll.vbll import VBLLRegression, VBLLStudentTRegression

N, D = 80, 5
PRIOR_SCALE, WISHART_SCALE, DOF = 2.0, 0.05, 1.0


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    phi = rng.normal(size=(N, D))
    y = phi @ rng.normal(size=D) * 0.5 + 0.3 * rng.normal(size=N)
    return phi, y


def closed_form(phi, y, *, diagonal=False):
    """The joint optimum (m, S, sigma^2) by fixed-point iteration on sigma^2 (NumPy, float64)."""
    s0 = PRIOR_SCALE / D
    sigma2 = 1.0
    for _ in range(500):
        precision = phi.T @ phi / sigma2 + np.eye(D) / s0
        cov = np.linalg.inv(precision)
        m = cov @ phi.T @ y / sigma2
        if diagonal:
            cov = np.diag(1.0 / np.diag(precision))
        resid = np.sum((y - phi @ m) ** 2) + np.trace(phi @ cov @ phi.T)
        new = (resid + WISHART_SCALE) / (N + DOF + 2.0)
        if abs(new - sigma2) < 1e-15:
            break
        sigma2 = new
    return m, cov, sigma2


def _head(parameterization):
    return VBLLRegression(D, 1, regularization_weight=1.0 / N, parameterization=parameterization,
                          prior_scale=PRIOR_SCALE, wishart_scale=WISHART_SCALE, dof=DOF,
                          rngs=nnx.Rngs(3), dtype=jnp.float64)


def _set(head, m, cov, sigma2=None):
    L = np.linalg.cholesky(cov)
    head.mean[...] = jnp.asarray(m[None, :])
    head.log_diag[...] = jnp.asarray(np.log(np.diag(L))[None, :])
    if head.factor is not None:
        head.factor[...] = jnp.asarray(np.tril(L, -1)[None])
    if sigma2 is not None:
        head.noise_log_std[...] = jnp.asarray([0.5 * np.log(sigma2)])


def _grad_norm(head, phi, y):
    graphdef, params = nnx.split(head, nnx.Param)
    grads = jax.grad(lambda p: nnx.merge(graphdef, p).loss(phi, y))(params)
    return max(float(jnp.max(jnp.abs(g))) for g in jax.tree_util.tree_leaves(grads))


@pytest.mark.parametrize("parameterization", ["dense", "diagonal"])
def test_closed_form_is_stationary_point(data, parameterization):
    phi, y = data
    head = _head(parameterization)
    m, cov, sigma2 = closed_form(phi, y, diagonal=parameterization == "diagonal")
    _set(head, m, cov, sigma2)
    assert _grad_norm(head, phi, y) < 1e-10
    # and it can fail: a slightly different covariance is not stationary
    _set(head, m, cov * 1.05, sigma2)
    assert _grad_norm(head, phi, y) > 1e-4


def test_trained_dense_vbll_equals_bayesian_linear_regression(data):
    phi, y = data
    head = _head("dense")
    graphdef, params = nnx.split(head, nnx.Param)

    def objective(p):
        return nnx.merge(graphdef, p).loss(phi, y)

    solver = optax.lbfgs()
    value_and_grad = optax.value_and_grad_from_state(objective)

    @jax.jit
    def step(p, state):
        value, grad = value_and_grad(p, state=state)
        updates, state = solver.update(grad, state, p, value=value, grad=grad, value_fn=objective)
        return optax.apply_updates(p, updates), state, optax.tree.norm(grad)

    state = solver.init(params)
    for _ in range(400):
        params, state, gnorm = step(params, state)
        if gnorm < 1e-12:
            break
    nnx.update(head, params)
    m, cov, sigma2 = closed_form(phi, y)
    np.testing.assert_allclose(head.mean[...][0], m, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(head.weight_covariance()[0], cov, rtol=1e-6, atol=1e-10)
    np.testing.assert_allclose(head.noise_variance()[0], sigma2, rtol=1e-7)
    # the predictive is then the BLR predictive at the MAP noise
    mean, var = head.predict(phi[:4])
    np.testing.assert_allclose(var[:, 0], np.einsum("nd,de,ne->n", phi[:4], cov, phi[:4]) + sigma2, rtol=1e-6)


def test_student_t_vbll_optimum_is_normal_gamma_posterior(data):
    """With unknown noise (q(tau) Gamma, q(w | tau) = N(m, S / tau)) the family holds the exact
    conjugate posterior, so with lambda = 1/N the objective is stationary exactly there:
    S = (Phi^T Phi + I / s)^-1, m = S Phi^T y, a = a0 + N / 2, b = b0 + (y^T y - m^T S^-1 m) / 2."""
    phi, y = data
    a0, b0 = 2.0, 0.5
    head = VBLLStudentTRegression(D, 1, regularization_weight=1.0 / N, prior_scale=PRIOR_SCALE,
                                  noise_prior_shape=a0, noise_prior_rate=b0, rngs=nnx.Rngs(0), dtype=jnp.float64)
    s = 2.0 * PRIOR_SCALE / D
    precision = phi.T @ phi + np.eye(D) / s
    cov = np.linalg.inv(precision)
    m = cov @ phi.T @ y
    a, b = a0 + N / 2, b0 + 0.5 * (y @ y - m @ precision @ m)
    _set(head, m, cov)
    head.noise_log_shape[...] = jnp.asarray([np.log(a)])
    head.noise_log_rate[...] = jnp.asarray([np.log(b)])
    assert _grad_norm(head, phi, y) < 1e-10
    df, loc, scale = head.predict(phi[:3])
    np.testing.assert_allclose(df, [2 * a])
    np.testing.assert_allclose(scale[:, 0] ** 2, (1 + np.einsum("nd,de,ne->n", phi[:3], cov, phi[:3])) * b / a)
    head.noise_log_rate[...] = jnp.asarray([np.log(1.1 * b)])
    assert _grad_norm(head, phi, y) > 1e-4
