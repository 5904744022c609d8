"""Kernels against scikit-learn's formulas, plus algebra, ARD and invariants."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.gaussian_process import kernels as sk

import bayeskit  # noqa: F401  (float64)
from bayeskit import kernels as bk

RNG = np.random.default_rng(0)
X1 = RNG.uniform(-2, 2, (9, 3))
X2 = RNG.uniform(-2, 2, (6, 3))
X1d = X1[:, :1]
X2d = X2[:, :1]

# (bayeskit kernel, equivalent scikit-learn kernel, 1-D only)
PAIRS = [
    (bk.RBF(0.8, 1.7), sk.ConstantKernel(1.7) * sk.RBF(0.8), False),
    (bk.RBF(np.array([0.5, 1.0, 2.0]), 1.3), sk.ConstantKernel(1.3) * sk.RBF([0.5, 1.0, 2.0]), False),
    (bk.Matern12(0.8, 1.7), sk.ConstantKernel(1.7) * sk.Matern(0.8, nu=0.5), False),
    (bk.Matern32(np.array([0.5, 1.0, 2.0]), 1.7), sk.ConstantKernel(1.7) * sk.Matern([0.5, 1.0, 2.0], nu=1.5), False),
    (bk.Matern52(0.8, 1.7), sk.ConstantKernel(1.7) * sk.Matern(0.8, nu=2.5), False),
    (bk.Periodic(0.9, 1.6, 1.7), sk.ConstantKernel(1.7) * sk.ExpSineSquared(0.9, 1.6), True),
    (bk.RationalQuadratic(0.8, 0.6, 1.7), sk.ConstantKernel(1.7) * sk.RationalQuadratic(0.8, 0.6), False),
    (bk.Linear(1.7, 0.3), sk.ConstantKernel(1.7) * sk.DotProduct(np.sqrt(0.3)), False),
    (bk.White(0.4), sk.WhiteKernel(0.4), False),
    (bk.Constant(2.5), sk.ConstantKernel(2.5), False),
    (bk.RBF(0.8) + bk.White(0.1), sk.RBF(0.8) + sk.WhiteKernel(0.1), False),
    (bk.Periodic(1.0, 2.0) * bk.RBF(3.0) + 0.5, sk.ExpSineSquared(1.0, 2.0) * sk.RBF(3.0) + sk.ConstantKernel(0.5), True),
    (2.0 * bk.Matern32(0.7), sk.ConstantKernel(2.0) * sk.Matern(0.7, nu=1.5), False),
]


@pytest.mark.parametrize("ours, theirs, one_d", PAIRS, ids=lambda p: repr(p)[:40] if not isinstance(p, bool) else "")
def test_matrices_match_scikit_learn(ours, theirs, one_d):
    A, B = (X1d, X2d) if one_d else (X1, X2)
    np.testing.assert_allclose(ours(A), theirs(A), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(ours(A, B), theirs(A, B), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(ours.diag(A), theirs.diag(A), rtol=1e-12, atol=1e-14)


def test_white_only_on_the_diagonal_of_k_of_x():
    k = bk.White(0.3)
    np.testing.assert_allclose(k(X1), 0.3 * np.eye(len(X1)))
    np.testing.assert_array_equal(k(X1, X1), np.zeros((len(X1), len(X1))))


def test_scalar_composition_and_repr():
    k = 2.0 * bk.RBF(0.5) + 1.0
    np.testing.assert_allclose(k(X1), 2.0 * bk.RBF(0.5)(X1) + 1.0)
    assert "RBF" in repr(k) and "Constant" in repr(k)
    assert k.hyperparameters["k1.k2.lengthscale"] == 0.5


def test_one_dimensional_inputs_are_points():
    x = np.linspace(0, 1, 5)
    np.testing.assert_allclose(bk.RBF()(x), bk.RBF()(x[:, None]))


@pytest.mark.parametrize("bad", [0.0, -1.0, np.nan, np.inf])
def test_non_positive_hyperparameters_rejected(bad):
    with pytest.raises(ValueError, match="lengthscale"):
        bk.RBF(lengthscale=bad)
    with pytest.raises(ValueError, match="variance"):
        bk.Matern52(variance=bad)


def test_ard_lengthscale_must_be_1d():
    with pytest.raises(ValueError, match="lengthscale"):
        bk.RBF(lengthscale=np.ones((2, 2)))


def test_kernels_are_pytrees_and_differentiable():
    import jax

    k = bk.RBF(0.7, 1.2) * bk.Periodic(1.0, 2.0)
    leaves = jax.tree_util.tree_leaves(k)
    assert len(leaves) == 5
    g = jax.grad(lambda kk: kk(X1d).sum())(k)
    assert isinstance(g, bk.Product)
    # coincident inputs: the Matern kernels' sqrt must not give NaN gradients
    gm = jax.grad(lambda ell: bk.Matern12(ell)(X1).sum())(0.7)
    assert np.isfinite(gm)


STATIONARY = [bk.RBF, bk.Matern12, bk.Matern32, bk.Matern52, bk.RationalQuadratic]


@settings(max_examples=30, deadline=None)
@given(
    family=st.sampled_from(STATIONARY),
    lengthscale=st.floats(0.05, 20.0),
    variance=st.floats(0.01, 50.0),
    seed=st.integers(0, 2**31 - 1),
)
def test_kernel_matrices_are_symmetric_psd(family, lengthscale, variance, seed):
    X = np.random.default_rng(seed).normal(size=(12, 2))
    K = np.asarray(family(lengthscale=lengthscale, variance=variance)(X))
    np.testing.assert_allclose(K, K.T, rtol=0, atol=1e-12 * variance)
    assert np.linalg.eigvalsh(K).min() > -1e-9 * variance
    np.testing.assert_allclose(np.diag(K), variance, rtol=1e-12)
