"""Linear VAE: closed form vs pPCA (and scikit-learn), vs gradient training, collapse threshold."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bayeskit  # noqa: F401
from bayeskit.vae import (
    collapsed_dimensions,
    fit_linear_vae,
    linear_vae_elbo,
    linear_vae_kl_per_dimension,
    linear_vae_optimum,
    ppca,
)
from bayeskit.vae.linear import _elbo_terms

D = 6


def data_with_eigenvalues(lam, n=400, seed=0, shift=1.0):
    """X (n, D) whose covariance (divided by n) has exactly the eigenvalues ``lam``."""
    rng = np.random.default_rng(seed)
    Z = rng.normal(size=(n, len(lam)))
    Z -= Z.mean(axis=0)
    Z = Z @ np.linalg.inv(np.linalg.cholesky(Z.T @ Z / n)).T  # exactly white
    Q, _ = np.linalg.qr(rng.normal(size=(len(lam), len(lam))))
    return (Z * np.sqrt(lam)) @ Q.T + shift


LAM = np.array([5.0, 3.0, 1.5, 0.6, 0.3, 0.2])


def test_ppca_matches_scikit_learn():
    from sklearn.decomposition import PCA

    X = data_with_eigenvalues(LAM) + 0.01 * np.random.default_rng(3).normal(size=(400, D))
    n = X.shape[0]
    ours = ppca(X, 3)
    sk = PCA(3).fit(X)  # covariances with ddof = 1
    np.testing.assert_allclose(sk.get_covariance() * (n - 1) / n,
                               ours.weight @ ours.weight.T + ours.noise_variance * np.eye(D), atol=1e-10)
    np.testing.assert_allclose(ours.noise_variance, sk.noise_variance_ * (n - 1) / n, rtol=1e-10)


def test_beta_one_optimum_is_ppca_with_its_exact_posterior():
    X = data_with_eigenvalues(LAM)
    for sigma2 in (None, 1.0):  # the ML noise (the joint optimum) and a fixed one
        ref = ppca(X, 4, sigma2)
        opt = linear_vae_optimum(X, 4, noise_variance=sigma2)
        W, s2 = ref.weight, ref.noise_variance
        np.testing.assert_allclose(opt.decoder_weight @ opt.decoder_weight.T, W @ W.T, atol=1e-10)
        # pPCA's posterior (Tipping & Bishop eq. 6): N(M^-1 W^T (x - mu), s2 M^-1), M = W^T W + s2 I
        M = opt.decoder_weight.T @ opt.decoder_weight + s2 * np.eye(4)
        np.testing.assert_allclose(opt.encoder_weight, np.linalg.solve(M, opt.decoder_weight.T), atol=1e-10)
        np.testing.assert_allclose(np.diag(s2 * np.linalg.inv(M)), opt.posterior_variance, rtol=1e-10)
        np.testing.assert_allclose(M - np.diag(np.diag(M)), 0, atol=1e-10)  # so q's diagonal is exact
        # the posterior is exact, so the ELBO is the log-likelihood
        np.testing.assert_allclose(linear_vae_elbo(opt, X).mean(), ref.log_likelihood, rtol=1e-12)


def test_gradient_training_reaches_the_closed_form():
    X = data_with_eigenvalues(LAM)
    for beta in (1.0, 2.0):
        opt = linear_vae_optimum(X, 4, noise_variance=1.0, beta=beta)
        fit, curve = fit_linear_vae(X, 4, noise_variance=1.0, beta=beta, key=jax.random.key(0), steps=3000, learning_rate=2e-2)
        best = -np.mean(linear_vae_elbo(opt, X, beta))
        assert curve[-1] >= best - 1e-9 and curve[-1] - best < 1e-7, (curve[-1], best)
        np.testing.assert_allclose(fit.decoder_weight @ fit.decoder_weight.T,
                                   opt.decoder_weight @ opt.decoder_weight.T, atol=1e-5)
        np.testing.assert_allclose(np.sort(fit.posterior_variance), np.sort(opt.posterior_variance), atol=1e-6)
        np.testing.assert_allclose(np.sort(linear_vae_kl_per_dimension(fit, X)),
                                   np.sort(linear_vae_kl_per_dimension(opt, X)), atol=1e-5)


def test_collapse_happens_exactly_at_the_threshold():
    sigma2, beta = 0.5, 2.0  # threshold beta sigma^2 = 1
    for lam3, collapsed in ((1.0, True), (1.0 * (1 + 1e-9), False), (0.999, True), (1.2, False)):
        lam = np.array([4.0, 2.0, lam3, 0.5, 0.4, 0.3])
        X = data_with_eigenvalues(lam)
        opt = linear_vae_optimum(X, 3, noise_variance=sigma2, beta=beta)
        kl = linear_vae_kl_per_dimension(opt, X)
        # KL_i = 1/2 log(lambda_i / (beta sigma^2)) when active, 0 when collapsed
        np.testing.assert_allclose(kl, 0.5 * np.log(np.maximum(lam[:3] / (beta * sigma2), 1.0)), atol=1e-9)
        col3 = np.linalg.norm(opt.decoder_weight[:, 2])
        assert (col3 == 0.0) == collapsed and (opt.posterior_variance[2] == 1.0) == collapsed
        assert collapsed_dimensions(lam[:3], sigma2, beta).tolist() == [False, False, collapsed]


def test_growing_beta_collapses_dimensions_one_by_one():
    X = data_with_eigenvalues(LAM)
    counts = []
    for beta in (0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0):
        opt = linear_vae_optimum(X, 6, noise_variance=0.5, beta=beta)
        active = int(np.sum(np.linalg.norm(opt.decoder_weight, axis=0) > 0))
        assert active == int(np.sum(LAM > beta * 0.5))
        counts.append(active)
    assert counts == sorted(counts, reverse=True) and counts[0] == 6 and counts[-1] == 0


_grad = jax.jit(jax.grad(lambda p, X, s2, beta: -jnp.mean(
    (lambda r: r[0] - beta * r[1])(_elbo_terms(p[0], p[1], p[2], p[3], jnp.exp(p[4]), s2, X)))))


@settings(max_examples=15, deadline=None)
@given(
    lam=st.lists(st.floats(0.05, 10.0), min_size=D, max_size=D).map(lambda v: np.sort(np.array(v))[::-1]),
    sigma2=st.floats(0.1, 2.0),
    beta=st.floats(0.2, 4.0),
)
def test_closed_form_is_a_stationary_point_of_the_elbo(lam, sigma2, beta):
    """The gradient of the exact mean beta-ELBO vanishes at the closed form (any eigenvalues)."""
    X = data_with_eigenvalues(lam, n=50)
    opt = linear_vae_optimum(X, 3, noise_variance=sigma2, beta=beta)
    p = tuple(jnp.asarray(a) for a in (opt.decoder_weight, opt.decoder_bias, opt.encoder_weight,
                                       opt.encoder_bias, np.log(opt.posterior_variance)))
    g = _grad(p, jnp.asarray(X), sigma2, beta)
    for gi in g:
        np.testing.assert_allclose(np.asarray(gi), 0.0, atol=1e-8)
    # and every perturbation lowers it
    base = linear_vae_elbo(opt, X, beta).mean()
    rng = np.random.default_rng(0)
    pert = opt._replace(decoder_weight=opt.decoder_weight + 1e-2 * rng.normal(size=opt.decoder_weight.shape),
                        encoder_weight=opt.encoder_weight + 1e-2 * rng.normal(size=opt.encoder_weight.shape))
    assert linear_vae_elbo(pert, X, beta).mean() < base


def test_linear_errors():
    X = data_with_eigenvalues(LAM)
    with pytest.raises(ValueError, match="latent_dim"):
        ppca(X, 0)
    with pytest.raises(ValueError, match="latent_dim < D"):
        ppca(X, D)
    with pytest.raises(ValueError, match="noise_variance"):
        linear_vae_optimum(X, 2, noise_variance=-1.0)
    with pytest.raises(ValueError, match="NaN"):
        ppca(np.full((5, 3), np.nan), 1)
    with pytest.raises(ValueError, match="at least 2 rows"):
        ppca(X[:1], 1)
    with pytest.raises(ValueError, match="key is required"):
        fit_linear_vae(X, 2, noise_variance=1.0, key=None)
    with pytest.raises(TypeError, match="LinearVAEParams"):
        linear_vae_elbo((1, 2), X)
