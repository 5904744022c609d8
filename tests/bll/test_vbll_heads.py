"""VBLL heads against brute-force references: covariance algebra, Monte-Carlo expectations, Bayes' rule.

Complements ``test_vbll_reference.py`` (the vbll package) and ``test_vbll_exact.py`` (the
Bayesian-linear-regression optimum): here each closed form is checked against an independent
computation (dense matrices, scipy densities, sampling), plus input checks, the feature
network and the training helper.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats
from flax import nnx
from hypothesis import given, settings
from hypothesis import strategies as st

import bayeskit  # noqa: F401  (float64)
from bayeskit.bll import _gaussian as G
from bayeskit.bll.features import MLPFeatures
from bayeskit.bll.train import _decay_mask, train_vbll
from bayeskit.bll.vbll import (
    VBLLDiscClassification,
    VBLLGenClassification,
    VBLLModel,
    VBLLRegression,
    VBLLStudentTRegression,
    gamma_kl,
    max_probability,
    predictive_entropy,
)

F64 = jnp.float64


def _random_posterior(kind, k, d, r, seed):
    rng = np.random.default_rng(seed)
    factor = {"dense": rng.normal(size=(k, d, d)), "lowrank": rng.normal(size=(k, d, r)), "diagonal": None}[kind]
    return G.WeightPosterior(jnp.asarray(rng.normal(size=(k, d))), jnp.asarray(0.5 * rng.normal(size=(k, d))),
                             None if factor is None else jnp.asarray(factor), kind)


@settings(max_examples=8, deadline=None)
@given(kind=st.sampled_from(G.PARAMETERIZATIONS), k=st.integers(1, 3), d=st.integers(1, 6),
       r=st.integers(1, 3), seed=st.integers(0, 10_000))
def test_covariance_algebra_matches_dense_matrices(kind, k, d, r, seed):
    q = _random_posterior(kind, k, d, r, seed)
    cov = np.asarray(G.covariance(q))
    phi = np.random.default_rng(seed + 1).normal(size=(4, d))
    assert cov.shape == (k, d, d)
    np.testing.assert_allclose(cov, np.swapaxes(cov, -1, -2), atol=1e-12)
    assert np.all(np.linalg.eigvalsh(cov) > 0)  # PSD, and strictly PD by construction
    np.testing.assert_allclose(G.quad_form(q, jnp.asarray(phi)), np.einsum("nd,kde,ne->nk", phi, cov, phi),
                               rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(G.trace(q), np.trace(cov, axis1=-2, axis2=-1), rtol=1e-10)
    np.testing.assert_allclose(G.logdet(q), np.linalg.slogdet(cov)[1], rtol=1e-9, atol=1e-9)


def test_kl_matches_monte_carlo():
    q = _random_posterior("dense", 2, 3, 0, 4)
    q = q._replace(log_diag=q.log_diag - 1.0, factor=0.3 * q.factor)
    prior_var = 0.7
    cov = np.asarray(G.covariance(q))
    rng = np.random.default_rng(0)
    est, se = 0.0, 0.0
    for j in range(2):
        qj = scipy.stats.multivariate_normal(np.asarray(q.mean[j]), cov[j])
        w = qj.rvs(size=200_000, random_state=rng)
        diff = qj.logpdf(w) - scipy.stats.multivariate_normal(np.zeros(3), prior_var * np.eye(3)).logpdf(w)
        est += diff.mean()
        se += diff.var() / len(diff)
    assert abs(float(G.kl_to_isotropic(q, prior_var)) - est) < 5 * np.sqrt(se)


def test_inverse_wishart_is_inverse_gamma_for_one_output():
    nu, psi = 3.0, 0.4
    s2 = np.array([0.05, 0.3, 2.0])
    ours = np.array([float(G.inverse_wishart_log_density(jnp.asarray([0.5 * np.log(v)]), nu, psi)) for v in s2])
    ref = scipy.stats.invgamma.logpdf(s2, nu / 2, scale=psi / 2)
    # equal up to the normalising constant, which the objective leaves out
    np.testing.assert_allclose(ours - ours[0], ref - ref[0], rtol=1e-12)


def test_gamma_kl_matches_monte_carlo():
    a, b, a0, b0 = 3.0, 2.0, 1.5, 0.5
    x = scipy.stats.gamma(a, scale=1 / b).rvs(size=400_000, random_state=np.random.default_rng(1))
    diff = scipy.stats.gamma.logpdf(x, a, scale=1 / b) - scipy.stats.gamma.logpdf(x, a0, scale=1 / b0)
    assert abs(float(gamma_kl(a, b, a0, b0)) - diff.mean()) < 5 * diff.std() / np.sqrt(len(x))


def _perturbed(head, seed, scale=0.4):
    """Move every parameter of ``head`` away from its initial value (in place)."""
    graphdef, params = nnx.split(head, nnx.Param)
    leaves, tree = jax.tree_util.tree_flatten(params)
    keys = jax.random.split(jax.random.key(seed), len(leaves))
    leaves = [x + scale * jax.random.normal(kk, x.shape, x.dtype) for x, kk in zip(leaves, keys)]
    nnx.update(head, jax.tree_util.tree_unflatten(tree, leaves))
    return head


@pytest.mark.parametrize("kind", G.PARAMETERIZATIONS)
def test_regression_expected_log_likelihood_matches_sampling(kind):
    d, k, n = 3, 2, 4
    head = _perturbed(VBLLRegression(d, k, regularization_weight=0.1, parameterization=kind, cov_rank=2,
                                     rngs=nnx.Rngs(0), dtype=F64), 1)
    rng = np.random.default_rng(2)
    phi, y = rng.normal(size=(n, d)), rng.normal(size=(n, k))
    cov, mean = np.asarray(head.weight_covariance()), np.asarray(head.mean[...])
    sigma = np.sqrt(np.asarray(head.noise_variance()))
    total = np.zeros((200_000, n))
    for j in range(k):
        w = rng.multivariate_normal(mean[j], cov[j], size=200_000)  # (S, d)
        total += scipy.stats.norm.logpdf(y[:, j], w @ phi.T, sigma[j])
    np.testing.assert_allclose(head.expected_log_likelihood(phi, y), total.mean(0),
                               atol=5 * total.std(0).max() / np.sqrt(len(total)))
    mean_p, var_p = head.predict(phi)  # the predictive is the Gaussian with these moments
    np.testing.assert_allclose(var_p, np.einsum("nd,kde,ne->nk", phi, cov, phi) + sigma**2, rtol=1e-10)
    np.testing.assert_allclose(head.nll(phi, y), -np.mean(scipy.stats.norm.logpdf(y, mean_p, np.sqrt(var_p)).sum(1)))


def test_student_t_predictive_matches_scipy():
    head = _perturbed(VBLLStudentTRegression(3, 2, regularization_weight=0.1, rngs=nnx.Rngs(0), dtype=F64), 3, 0.2)
    rng = np.random.default_rng(3)
    phi, y = rng.normal(size=(5, 3)), rng.normal(size=(5, 2))
    df, loc, scale = (np.asarray(v) for v in head.predict(phi))
    ref = scipy.stats.t.logpdf(y, df, loc, scale).sum(1)
    np.testing.assert_allclose(head.log_predictive(phi, y), ref, rtol=1e-10)
    var = np.asarray(head.predictive_variance(phi))
    expect = np.where(df > 2, scipy.stats.t.var(df, loc, scale), np.inf)
    np.testing.assert_allclose(var, expect, rtol=1e-10)


@pytest.mark.parametrize("kind", ["dense", "lowrank"])
def test_disc_bound_below_monte_carlo_expectation(kind):
    head = _perturbed(VBLLDiscClassification(3, 4, regularization_weight=0.1, parameterization=kind, cov_rank=2,
                                             rngs=nnx.Rngs(0), dtype=F64), 4, 0.6)
    rng = np.random.default_rng(4)
    phi = rng.normal(size=(6, 3))
    labels = np.array([0, 1, 2, 3, 0, 1])
    mean, var = (np.asarray(v) for v in head.logit_moments(phi))
    z = mean + np.sqrt(var) * rng.normal(size=(100_000, *mean.shape))
    log_sm = z - scipy.special.logsumexp(z, axis=-1, keepdims=True)
    e_log_p = log_sm[:, np.arange(6), labels].mean(0)
    bound = np.asarray(head.log_prob_bound(phi, labels))
    assert np.all(bound <= e_log_p + 1e-3)
    assert np.all(bound > e_log_p - 5.0)  # a bound, but not a vacuous one
    probs = np.asarray(head.predict_proba(phi, key=0, num_samples=20_000))
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-10)
    assert np.all(np.asarray(head.predict_proba_bound(phi)) <= probs + 1e-2)
    ent, mp = np.asarray(predictive_entropy(probs)), np.asarray(max_probability(probs))
    assert np.all((ent >= 0) & (ent <= np.log(4) + 1e-12) & (mp >= 0.25 - 1e-12) & (mp <= 1))


def test_gen_predictive_is_bayes_rule_and_bound_holds():
    d, c = 3, 3
    head = _perturbed(VBLLGenClassification(d, c, regularization_weight=0.1, rngs=nnx.Rngs(0), dtype=F64), 5)
    rng = np.random.default_rng(5)
    phi = rng.normal(size=(5, d))
    labels = np.array([0, 1, 2, 1, 0])
    mu, s2 = np.asarray(head.mean[...]), np.exp(2 * np.asarray(head.log_diag[...]))
    noise = np.asarray(head.noise_variance())
    dens = np.stack([scipy.stats.multivariate_normal(mu[j], np.diag(s2[j] + noise)).pdf(phi) for j in range(c)], 1)
    np.testing.assert_allclose(head.predict_proba(phi), dens / dens.sum(1, keepdims=True), rtol=1e-10)
    np.testing.assert_allclose(head.log_feature_density(phi), np.log(dens.mean(1)), rtol=1e-10)
    # E_q(mu) log p(y | phi, mu) by sampling the class means, against the closed-form bound
    mus = mu + np.sqrt(s2) * rng.normal(size=(50_000, c, d))
    ll = scipy.stats.norm.logpdf(phi[None, :, None, :], mus[:, None], np.sqrt(noise)).sum(-1)  # (S, n, c)
    e_log_p = (ll - scipy.special.logsumexp(ll, axis=-1, keepdims=True))[:, np.arange(5), labels].mean(0)
    bound = np.asarray(head.log_prob_bound(phi, labels))
    assert np.all(bound <= e_log_p + 1e-2)


def test_heads_reject_bad_input():
    head = VBLLRegression(3, 1, regularization_weight=0.1, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="phi"):
        head.predict(np.zeros((4, 2)))
    with pytest.raises(ValueError, match="NaN"):
        head.predict(np.full((2, 3), np.nan))
    with pytest.raises(ValueError, match="y must have shape"):
        head.loss(np.zeros((4, 3)), np.zeros(5))
    with pytest.raises(ValueError, match="parameterization"):
        VBLLRegression(3, 1, regularization_weight=0.1, parameterization="full", rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="cov_rank"):
        VBLLRegression(3, 1, regularization_weight=0.1, parameterization="lowrank", rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="regularization_weight"):
        VBLLRegression(3, 1, regularization_weight=-1.0, rngs=nnx.Rngs(0))
    cls = VBLLDiscClassification(3, 2, regularization_weight=0.1, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        cls.loss(np.zeros((3, 3)), np.array([0, 1, 2]))
    with pytest.raises(TypeError, match="integers"):
        cls.loss(np.zeros((2, 3)), np.array([0.5, 1.0]))
    with pytest.raises(ValueError, match="key is required"):
        cls.predict_proba(np.zeros((2, 3)), key=None)
    with pytest.raises(ValueError, match="num_classes"):
        VBLLGenClassification(3, 1, regularization_weight=0.1, rngs=nnx.Rngs(0))


def test_mlp_features_shapes_dtype_and_dropout():
    net = MLPFeatures(2, 8, 3, nnx.Rngs(0), dropout_rate=0.5)
    x = np.ones((5, 2))  # float64 in, float32 out
    assert net(x).shape == (5, 8) and net(x).dtype == jnp.float32 and net(x[0]).shape == (8,)
    assert not np.allclose(net(x), net(x))  # dropout on in train mode
    net.eval()
    np.testing.assert_array_equal(net(x), net(x))
    with pytest.raises(ValueError, match="width"):
        MLPFeatures(2, 0, 1, nnx.Rngs(0))
    with pytest.raises(ValueError, match="dropout_rate"):
        MLPFeatures(2, 4, 1, nnx.Rngs(0), dropout_rate=1.0)
    with pytest.raises(ValueError, match=r"\(n, 2\)"):
        net(np.ones((3, 4)))


def test_train_vbll_fits_and_leaves_inputs_alone():
    rng = np.random.default_rng(0)
    x = rng.uniform(-2, 2, (128, 1)).astype(np.float32)
    y = (np.sin(2 * x) + 0.1 * rng.normal(size=(128, 1))).astype(np.float32)
    x0, y0 = x.copy(), y.copy()
    model = VBLLModel(MLPFeatures(1, 32, 2, nnx.Rngs(0)),
                      VBLLRegression(32, 1, regularization_weight=1 / 128, rngs=nnx.Rngs(1)))
    hist = train_vbll(model, x, y, epochs=40, batch_size=32, learning_rate=1e-2, key=0, weight_decay=1e-4,
                      progress=False)["loss"]
    assert hist.shape == (40,) and hist[-1] < hist[0] - 1.0
    mean, var = model.head.predict(model.head_inputs(x))
    assert float(np.sqrt(np.mean((np.asarray(mean) - y) ** 2))) < 0.3
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(y, y0)
    mask = _decay_mask(nnx.state(model, nnx.Param))
    flags = {jax.tree_util.keystr(p): v for p, v in jax.tree_util.tree_flatten_with_path(mask)[0]}
    assert all(v == ("head" not in name) for name, v in flags.items())
    with pytest.raises(ValueError, match="epochs"):
        train_vbll(model, x, y, epochs=0, batch_size=8, learning_rate=1e-3, key=0)
    with pytest.raises(ValueError, match="rows"):
        train_vbll(model, x, y[:5], epochs=1, batch_size=8, learning_rate=1e-3, key=0)
