"""NNGP kernels against wide random networks, quadrature, and kernel invariants."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.integrate
import scipy.special
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st

from bayeskit.gp.exact import fit_ml2, log_marginal_likelihood
from bayeskit.gp.nngp import ErfNNGP, ReLUNNGP, erf_expectation, relu_expectation
from bayeskit.kernels import RBF

ACTIVATIONS = {"relu": (ReLUNNGP, jax.nn.relu), "erf": (ErfNNGP, jax.scipy.special.erf)}
X5 = np.array([[0.5, -1.0, 0.3], [1.2, 0.4, -0.7], [-0.8, 0.9, 0.1], [0.0, 0.2, 1.5], [0.5, -1.0, 0.35]])


# ---------------------------------------------------------------------------------------------
# Wide random networks
# ---------------------------------------------------------------------------------------------
def _network_outputs(key, X, activation, depth, width, wv, bv):
    """One draw of f(X) (n,) from a random fully connected network.

    The input layer and the readout are sampled weight by weight. Between hidden layers we use
    an exact shortcut instead of an N x N weight matrix (which would be 4M normals per draw):
    given phi = activation(h^l) (n, N), the N units of layer l+1 are independent and each is
    W_j . phi + b_j, a Gaussian vector over the n inputs with covariance
    bv + wv phi phi^T / N; sampling it through that n x n Cholesky factor has exactly the
    distribution of the finite network's layer. Returns f (n,) and that readout covariance.
    """
    n, d = X.shape
    keys = jax.random.split(key, depth + 2)
    W0 = jax.random.normal(keys[0], (d, width)) * jnp.sqrt(wv / d)
    b0 = jax.random.normal(keys[1], (width,)) * jnp.sqrt(bv)
    h = X @ W0 + b0  # (n, N)
    for layer in range(1, depth + 1):
        phi = activation(h)
        cov = bv + wv * (phi @ phi.T) / width  # (n, n), exact conditional covariance
        L = jnp.linalg.cholesky(cov + 1e-12 * jnp.eye(n))
        if layer < depth:
            h = L @ jax.random.normal(keys[layer + 1], (n, width))
        else:
            f = L @ jax.random.normal(keys[layer + 1], (n,))
    return f, cov


def _literal_one_layer(key, X, activation, width, wv, bv):
    """One hidden layer, every weight sampled explicitly: f = w . phi(W0 x + b0) + b."""
    n, d = X.shape
    k0, k1, k2, k3 = jax.random.split(key, 4)
    h = X @ (jax.random.normal(k0, (d, width)) * jnp.sqrt(wv / d)) + jax.random.normal(k1, (width,)) * jnp.sqrt(bv)
    w = jax.random.normal(k2, (width,)) * jnp.sqrt(wv / width)
    return activation(h) @ w + jax.random.normal(k3, ()) * jnp.sqrt(bv)


def _mc_check(draws, K):
    """Empirical E[f f^T] (the networks have mean zero) within 4 standard errors of K."""
    prods = draws[:, :, None] * draws[:, None, :]  # (D, n, n)
    emp = prods.mean(0)
    se = prods.std(0) / np.sqrt(draws.shape[0])
    assert np.all(np.abs(emp - K) < 4 * se + 1e-3 * np.abs(K)), (emp, K, se)


@pytest.mark.parametrize("name", ["relu", "erf"])
def test_one_hidden_layer_literal_network_matches_kernel(name):
    kernel_cls, act = ACTIVATIONS[name]
    wv, bv = (2.0, 0.2) if name == "relu" else (1.5, 0.1)
    K = np.asarray(kernel_cls(depth=1, weight_variance=wv, bias_variance=bv)(X5))
    keys = jax.random.split(jax.random.key(1), 2000)
    sample = jax.jit(jax.vmap(lambda k: _literal_one_layer(k, jnp.asarray(X5), act, 2000, wv, bv)))
    draws = np.asarray(sample(keys))
    _mc_check(draws, K)


@pytest.mark.parametrize("name,depth", [("relu", 3), ("erf", 3)])
def test_deep_wide_network_matches_kernel(name, depth):
    kernel_cls, act = ACTIVATIONS[name]
    wv, bv = (2.0, 0.1) if name == "relu" else (2.5, 0.2)
    K = np.asarray(kernel_cls(depth=depth, weight_variance=wv, bias_variance=bv)(X5))
    keys = jax.random.split(jax.random.key(2), 2000)
    sample = jax.jit(jax.vmap(lambda k: _network_outputs(k, jnp.asarray(X5), act, depth, 2000, wv, bv)))
    draws, covs = sample(keys)
    _mc_check(np.asarray(draws), K)
    # The conditional readout covariances average to the same matrix with far less noise
    # (Rao-Blackwell), a sharper check; width 2000 leaves an O(1/width) finite-width bias.
    covs = np.asarray(covs)
    se = covs.std(0) / np.sqrt(covs.shape[0])
    assert np.all(np.abs(covs.mean(0) - K) < 4 * se + 2e-3 * np.abs(K))


# ---------------------------------------------------------------------------------------------
# Closed-form expectations against quadrature
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("k11,k22,k12", [(1.0, 1.0, 0.3), (2.0, 0.5, -0.9), (0.7, 1.3, 0.95), (1.5, 1.5, 1.5)])
def test_expectations_equal_quadrature(k11, k22, k12):
    # ReLU: E[relu(u) E[relu(v) | u]] with v | u Gaussian, a 1-D integral over u > 0
    mu_coef, s2 = k12 / k11, k22 - k12**2 / k11
    s = np.sqrt(max(s2, 0.0))

    def inner(u):
        mu = mu_coef * u
        if s == 0:
            return max(mu, 0.0)
        return mu * scipy.stats.norm.cdf(mu / s) + s * scipy.stats.norm.pdf(mu / s)

    relu_ref, _ = scipy.integrate.quad(lambda u: u * inner(u) * scipy.stats.norm.pdf(u, 0, np.sqrt(k11)),
                                       0, np.inf, epsabs=1e-13)
    assert float(relu_expectation(k11, k22, k12)) == pytest.approx(relu_ref, rel=1e-8)
    # erf: 2-D Gauss-Hermite (erf is smooth, so this converges fast)
    nodes, weights = np.polynomial.hermite_e.hermegauss(80)
    L = np.linalg.cholesky(np.array([[k11, k12], [k12, k22]]) + 1e-300 * np.eye(2)) if k11 * k22 > k12**2 else None
    z1, z2 = np.meshgrid(nodes, nodes, indexing="ij")
    w = np.outer(weights, weights) / (2 * np.pi)
    if L is None:  # perfectly correlated: v = sqrt(k22 / k11) u
        u = np.sqrt(k11) * z1
        v = np.sqrt(k22 / k11) * u
    else:
        u = L[0, 0] * z1
        v = L[1, 0] * z1 + L[1, 1] * z2
    erf_ref = np.sum(w * scipy.special.erf(u) * scipy.special.erf(v))
    assert float(erf_expectation(k11, k22, k12)) == pytest.approx(erf_ref, rel=1e-8)


def test_relu_depth_one_is_the_arc_cosine_kernel_with_a_bias_feature():
    """Cho & Saul's degree-1 arc-cosine kernel of the augmented input (x sqrt(wv / d), sqrt(bv))."""
    wv, bv = 1.7, 0.3
    d = X5.shape[1]
    A = np.hstack([X5 * np.sqrt(wv / d), np.full((5, 1), np.sqrt(bv))])
    norms = np.linalg.norm(A, axis=1)
    cos = np.clip(A @ A.T / np.outer(norms, norms), -1, 1)
    theta = np.arccos(cos)
    arccos = np.outer(norms, norms) * (np.sin(theta) + (np.pi - theta) * np.cos(theta)) / np.pi
    ref = bv + wv * arccos / 2
    np.testing.assert_allclose(ReLUNNGP(depth=1, weight_variance=wv, bias_variance=bv)(X5), ref, rtol=1e-10)


# ---------------------------------------------------------------------------------------------
# Kernel invariants and plumbing
# ---------------------------------------------------------------------------------------------
@settings(max_examples=30, deadline=None)
@given(
    name=st.sampled_from(["relu", "erf"]),
    depth=st.sampled_from([0, 1, 3, 6]),  # each depth and shape is a new JAX compile
    n=st.sampled_from([1, 4, 10]),
    d=st.integers(1, 3),
    wv=st.floats(0.1, 5.0),
    bv=st.floats(1e-4, 3.0),
    seed=st.integers(0, 10_000),
)
def test_kernel_is_symmetric_psd_with_matching_diagonal(name, depth, n, d, wv, bv, seed):
    kernel = ACTIVATIONS[name][0](depth=depth, weight_variance=wv, bias_variance=bv)
    X = np.random.default_rng(seed).normal(size=(n, d)) * 2
    K = np.asarray(kernel(X))
    assert np.all(np.isfinite(K))
    np.testing.assert_array_equal(K, K.T)
    np.testing.assert_allclose(np.diag(K), kernel.diag(X), rtol=1e-10)
    eig = np.linalg.eigvalsh(K)
    assert eig.min() >= -1e-10 * max(eig.max(), 1e-300)
    # cross-covariance agrees with the joint matrix
    np.testing.assert_allclose(kernel(X[:1], X), K[:1], rtol=1e-10, atol=1e-14)


def test_depth_is_static_structure_not_a_hyperparameter():
    k = ReLUNNGP(depth=3, weight_variance=2.0, bias_variance=0.1)
    assert jax.tree_util.tree_leaves(k) == [2.0, 0.1]
    assert k.hyperparameters == {"weight_variance": 2.0, "bias_variance": 0.1}
    assert jax.tree_util.tree_structure(k) != jax.tree_util.tree_structure(k.replace(depth=2))
    assert k != k.replace(depth=2) and k == ReLUNNGP(depth=3, weight_variance=2.0, bias_variance=0.1)
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(size=(12, 2)), np.zeros((2, 2))])  # duplicated inputs
    y = np.sin(X[:, 0]) + 0.1 * rng.normal(size=14)
    grad = jax.grad(lambda kk: log_marginal_likelihood(kk, X, y, 0.1))(k)
    assert np.all(np.isfinite(jax.tree_util.tree_leaves(grad)))
    fitted = fit_ml2(k, X, y, 0.1).kernel
    assert fitted.depth == 3
    assert float(log_marginal_likelihood(fitted, X, y, 0.1)) >= float(log_marginal_likelihood(k, X, y, 0.1))
    # composes with the ordinary kernels
    assert (k + RBF())(X).shape == (14, 14)


def test_bad_hyperparameters_raise():
    with pytest.raises(ValueError, match="depth must be an integer >= 0"):
        ReLUNNGP(depth=1.5)
    with pytest.raises(ValueError, match="depth must be an integer >= 0"):
        ErfNNGP(depth=-1)
    with pytest.raises(ValueError, match="weight_variance must be a finite scalar > 0"):
        ReLUNNGP(weight_variance=0.0)
    with pytest.raises(ValueError, match="bias_variance must be a finite scalar > 0"):
        ErfNNGP(bias_variance=np.nan)
