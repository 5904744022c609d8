"""Baselines against exact identities: last-layer Laplace regression = Bayesian linear regression,
the evidence-optimal prior precision = a brute-force grid search, the softmax GGN = jax.hessian,
MC dropout at rate 0 = MAP, an ensemble of identical members = one member, vmapped ensemble
training = separate MAP fits, and the Kalman-filtered last layer on MLPFeatures features."""

import copy
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

import bayeskit  # noqa: F401  (float64)
from bayeskit.bll import baselines as B
from bayeskit.bll import datasets as D
from bayeskit.bll import laplace as LA
from bayeskit.bll import metrics as M

SMALL = dict(width=16, depth=2, steps=300, batch_size=64, learning_rate=3e-2, progress=False)


@pytest.fixture(scope="module")
def gap():
    return D.gap_regression(60, 120, seed=0)


@pytest.fixture(scope="module")
def moons():
    return D.two_moons(160, 200, 100, seed=1)


@pytest.fixture(scope="module")
def map_regression(gap):
    return B.MAPLastLayer("regression", **SMALL).fit(gap.x_train, gap.y_train, jax.random.key(0))


@pytest.fixture(scope="module")
def laplace_regression(gap):
    return B.LastLayerLaplace("regression", **SMALL).fit(gap.x_train, gap.y_train, jax.random.key(0))


@pytest.fixture(scope="module")
def map_classifier(moons):
    return B.MAPLastLayer("classification", **SMALL).fit(moons.x_train, moons.y_train, jax.random.key(2))


@pytest.fixture(scope="module")
def laplace_classifier(moons):
    return B.LastLayerLaplace("classification", **SMALL).fit(moons.x_train, moons.y_train, jax.random.key(2))


def _blr(phi, y, noise_var, alpha):
    """Textbook Bayesian linear regression: Sigma = (Phi^T Phi / s2 + alpha I)^-1, m = Sigma Phi^T y / s2."""
    cov = np.linalg.inv(phi.T @ phi / noise_var + alpha * np.eye(phi.shape[1]))
    return cov @ phi.T @ y / noise_var, cov


def _evidence_direct(phi, y, noise_var, alpha):
    """log N(y | 0, s2 I + Phi Phi^T / alpha), straight from SciPy's density."""
    return stats.multivariate_normal(np.zeros(len(y)), noise_var * np.eye(len(y)) + phi @ phi.T / alpha).logpdf(y)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(3, 30), D=st.integers(1, 12),
       log_alpha=st.floats(-3, 3), log_noise=st.floats(-3, 1))
def test_laplace_regression_is_closed_form_bayesian_linear_regression(seed, n, D, log_alpha, log_noise):
    rng = np.random.default_rng(seed)
    phi, y = rng.normal(size=(n, D)) * rng.uniform(0.2, 3.0), rng.normal(size=n)
    alpha, s2 = np.exp(log_alpha), np.exp(log_noise)
    post = LA.regression_posterior(phi, y, s2, alpha)
    mean, cov = _blr(phi, y, s2, alpha)
    np.testing.assert_allclose(post.mean[:, 0], mean, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(post.cov, cov, rtol=1e-8, atol=1e-12)
    assert post.log_evidence == pytest.approx(_evidence_direct(phi, y, s2, alpha), rel=1e-9, abs=1e-9)
    f_mean, f_cov = LA.linearized_predictive(post, phi[:3])
    np.testing.assert_allclose(f_cov[:, 0, 0], np.einsum("nd,de,ne->n", phi[:3], cov, phi[:3]), rtol=1e-8, atol=1e-12)


@settings(max_examples=5, deadline=None)
@given(seed=st.integers(0, 2**31 - 1))
def test_optimal_prior_precision_beats_every_grid_point(seed):
    rng = np.random.default_rng(seed)
    phi = rng.normal(size=(30, 3))
    y = phi @ rng.normal(size=3) + 0.3 * rng.normal(size=30)
    post = LA.regression_posterior(phi, y, 0.09)
    grid = np.exp(np.linspace(np.log(1e-3), np.log(1e3), 601))
    ev = np.array([_evidence_direct(phi, y, 0.09, a) for a in grid])
    assert post.log_evidence >= ev.max() - 1e-9
    assert abs(np.log(post.prior_precision) - np.log(grid[np.argmax(ev)])) <= 0.0231
    assert np.all(np.linalg.eigvalsh(post.cov) > 0)


def test_fitted_laplace_regression_equals_bayesian_linear_regression_on_its_features(laplace_regression, gap):
    model = laplace_regression
    phi = LA.with_bias(model.features(gap.x_train))
    s2, alpha = model.noise_std_**2, model.posterior_.prior_precision
    mean, cov = _blr(phi, gap.y_train, s2, alpha)
    phi_test = LA.with_bias(model.features(gap.x_test))
    pred = model.predict(gap.x_test)
    np.testing.assert_allclose(pred.mean, phi_test @ mean, rtol=1e-7, atol=1e-8)
    epistemic = np.einsum("nd,de,ne->n", phi_test, cov, phi_test)
    np.testing.assert_allclose(pred.epistemic_variance, epistemic, rtol=1e-6, atol=1e-10)
    np.testing.assert_allclose(pred.variance, epistemic + s2, rtol=1e-7)
    # in-between and tail uncertainty exceed the in-distribution uncertainty
    by_region = [pred.epistemic_variance[gap.region == r].mean() for r in (D.IN_DISTRIBUTION, D.GAP, D.TAILS)]
    assert by_region[0] < by_region[1] and by_region[0] < by_region[2]


def test_regression_prior_precision_equals_grid_search_of_the_evidence(laplace_regression, gap):
    model = laplace_regression
    phi = LA.with_bias(model.features(gap.x_train))
    s2 = model.noise_std_**2
    grid = np.exp(np.linspace(np.log(1e-4), np.log(1e4), 1601))  # spacing 0.0115 in log alpha
    ev = np.array([_evidence_direct(phi, gap.y_train, s2, a) for a in grid])
    alpha = model.posterior_.prior_precision
    assert abs(np.log(alpha) - np.log(grid[np.argmax(ev)])) <= 0.0116
    assert model.posterior_.log_evidence >= ev.max() - 1e-9
    assert model.posterior_.log_evidence == pytest.approx(_evidence_direct(phi, gap.y_train, s2, alpha), rel=1e-9)


def _softmax_log_likelihood(w, phi, labels, K):
    logits = phi @ w.reshape(phi.shape[1], K)
    return jnp.sum(jax.nn.log_softmax(logits, axis=1)[jnp.arange(phi.shape[0]), labels])


_hessian = jax.jit(jax.hessian(_softmax_log_likelihood), static_argnums=3)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), scale=st.floats(0.0, 5.0))
@pytest.mark.parametrize("K, D", [(2, 3), (4, 5)])
def test_softmax_ggn_equals_the_exact_hessian(K, D, seed, scale):
    rng = np.random.default_rng(seed)
    phi, W = rng.normal(size=(25, D)), rng.normal(size=(D, K)) * scale
    labels = rng.integers(0, K, size=25)
    hess = _hessian(jnp.asarray(W.reshape(-1)), jnp.asarray(phi), labels, K)
    np.testing.assert_allclose(LA.softmax_ggn(phi, W), -np.asarray(hess), rtol=1e-9, atol=1e-12)


def test_fitted_laplace_classifier_hessian_evidence_and_predictive(laplace_classifier, moons):
    model = laplace_classifier
    phi = LA.with_bias(model.features(moons.x_train))
    W = model.last_layer()
    K = W.shape[1]
    hess = -np.asarray(_hessian(jnp.asarray(W.reshape(-1)), jnp.asarray(phi), moons.y_train, K))
    post = model.posterior_
    alpha = post.prior_precision
    np.testing.assert_allclose(np.linalg.inv(post.cov), hess + alpha * np.eye(hess.shape[0]), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(post.mean, W)

    # brute-force evidence on a grid: log p(y|W*) + log N(W* | 0, I/alpha) + P/2 log 2pi - 1/2 log|H|
    w, P = W.reshape(-1), W.size
    loglik = float(_softmax_log_likelihood(jnp.asarray(w), jnp.asarray(phi), moons.y_train, K))

    def evidence(a):
        log_prior = stats.multivariate_normal(np.zeros(P), np.eye(P) / a).logpdf(w)
        return loglik + log_prior + 0.5 * P * np.log(2 * np.pi) - 0.5 * np.linalg.slogdet(hess + a * np.eye(P))[1]

    grid = np.exp(np.linspace(np.log(1e-3), np.log(1e3), 401))
    ev = np.array([evidence(a) for a in grid])
    assert abs(np.log(alpha) - np.log(grid[np.argmax(ev)])) <= 0.0346
    assert post.log_evidence == pytest.approx(evidence(alpha), rel=1e-9)
    assert post.log_evidence >= ev.max() - 1e-9

    # predictive: with two classes p(y=1) = E[sigmoid(f1 - f0)], f1 - f0 ~ N(m, v): 1-D
    # Gauss-Hermite quadrature checks the Monte-Carlo link; the probit link is an approximation
    probit = model.predict(moons.x_ood).probs
    f_mean, f_cov = LA.linearized_predictive(post, LA.with_bias(model.features(moons.x_ood)))
    mc = LA.mc_softmax(f_mean, f_cov, jax.random.key(0), 4000)
    m = f_mean[:, 1] - f_mean[:, 0]
    v = f_cov[:, 0, 0] + f_cov[:, 1, 1] - 2 * f_cov[:, 0, 1]
    nodes, weights = np.polynomial.hermite_e.hermegauss(80)
    quad = (weights * (1 / (1 + np.exp(-(m[:, None] + np.sqrt(v)[:, None] * nodes))))).sum(1) / weights.sum()
    np.testing.assert_allclose(mc[:, 1], quad, atol=0.03)
    # for K = 2 the pairwise probit is MacKay's sigmoid(m / sqrt(1 + pi v / 8)), a close approximation
    np.testing.assert_allclose(probit[:, 1], 1 / (1 + np.exp(-m / np.sqrt(1 + np.pi * v / 8))), rtol=1e-10)
    np.testing.assert_allclose(probit[:, 1], quad, atol=0.03)
    map_probs = np.asarray(jax.nn.softmax(f_mean, axis=1))
    assert np.mean(probit.max(axis=1)) < np.mean(map_probs.max(axis=1))
    assert M.accuracy(moons.y_test, model.predict(moons.x_test).probs) > 0.9


def test_probit_and_mc_reduce_to_softmax_without_variance():
    rng = np.random.default_rng(0)
    f = rng.normal(size=(5, 3))
    np.testing.assert_allclose(LA.probit_softmax(f, np.zeros_like(f)), jax.nn.softmax(f, axis=1), rtol=1e-12)
    np.testing.assert_allclose(LA.probit_softmax(f, np.zeros((5, 3, 3))), jax.nn.softmax(f, axis=1), rtol=1e-12)
    # a common shift of all logits changes nothing: perfectly correlated noise leaves softmax unchanged
    ones = np.ones((5, 3, 3)) * 4.0
    np.testing.assert_allclose(LA.probit_softmax(f, ones), jax.nn.softmax(f, axis=1), rtol=1e-12)
    np.testing.assert_allclose(LA.mc_softmax(f, np.zeros((5, 3, 3)), jax.random.key(1), 3), jax.nn.softmax(f, axis=1),
                               rtol=1e-12)


def test_mc_dropout_with_rate_zero_is_the_map(map_regression, map_classifier, gap, moons):
    reg = B.MCDropout("regression", dropout_rate=0.0, n_samples=7, **SMALL).fit(gap.x_train, gap.y_train,
                                                                               jax.random.key(0))
    p, q = reg.predict(gap.x_test), map_regression.predict(gap.x_test)
    np.testing.assert_allclose(p.mean, q.mean, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(p.variance, q.variance, rtol=1e-6)
    np.testing.assert_allclose(p.epistemic_variance, 0.0, atol=1e-10)
    clf = B.MCDropout("classification", dropout_rate=0.0, n_samples=5, **SMALL).fit(moons.x_train, moons.y_train,
                                                                                   jax.random.key(2))
    np.testing.assert_allclose(clf.predict(moons.x_test).probs, map_classifier.predict(moons.x_test).probs,
                               rtol=1e-6, atol=1e-7)


def test_mc_dropout_samples_vary_and_are_reproducible(gap):
    model = B.MCDropout("regression", dropout_rate=0.2, n_samples=20, **SMALL).fit(gap.x_train, gap.y_train,
                                                                                  jax.random.key(3))
    a, b = model.predict(gap.x_test), model.predict(gap.x_test)
    np.testing.assert_array_equal(a.mean, b.mean)  # the fit-time key: same input, same answer
    assert np.all(a.epistemic_variance > 0)
    c = model.predict(gap.x_test, key=jax.random.key(9))
    assert not np.allclose(c.mean, a.mean)
    np.testing.assert_allclose(a.variance, a.epistemic_variance + model.noise_std_**2)


def test_ensemble_of_identical_members_is_one_member(map_regression, map_classifier, gap, moons):
    ens = B.DeepEnsemble.from_members([map_regression] * 3)
    p, q = ens.predict(gap.x_test), map_regression.predict(gap.x_test)
    np.testing.assert_allclose(p.mean, q.mean, rtol=1e-12)
    np.testing.assert_allclose(p.variance, q.variance, rtol=1e-12)
    np.testing.assert_allclose(p.epistemic_variance, 0.0, atol=1e-12)
    ens_c = B.DeepEnsemble.from_members([map_classifier] * 4)
    np.testing.assert_allclose(ens_c.predict(moons.x_test).probs, map_classifier.predict(moons.x_test).probs,
                               rtol=1e-12)


@pytest.mark.slow  # compiles the vmapped trainer (about 15-20 s on a loaded 2-core machine)
def test_vmapped_ensemble_members_equal_separate_map_fits(map_regression, gap):
    keys = jax.random.split(jax.random.key(5), 2)
    ens = B.DeepEnsemble("regression", n_members=2, **SMALL).fit(gap.x_train, gap.y_train, jax.random.key(5))
    preds = [m.predict(gap.x_test) for m in ens.members_]
    for key, pred in zip(keys, preds):
        single = B.MAPLastLayer("regression", **SMALL).fit(gap.x_train, gap.y_train, key).predict(gap.x_test)
        np.testing.assert_allclose(pred.mean, single.mean, rtol=2e-3, atol=2e-3)  # float32 vmap vs loop
    # the mixture: mean of means, mean of (noise + mean^2) minus mean^2
    mixture = ens.predict(gap.x_test)
    means = np.stack([p.mean for p in preds])
    np.testing.assert_allclose(mixture.mean, means.mean(0), rtol=1e-10)
    second = np.mean([p.variance + p.mean**2 for p in preds], axis=0)
    np.testing.assert_allclose(mixture.variance, second - means.mean(0) ** 2, rtol=1e-6, atol=1e-9)
    assert not np.allclose(preds[0].mean, preds[1].mean)


def test_every_baseline_by_name_has_the_common_interface(map_classifier, laplace_classifier, moons):
    for name, cls in B.BASELINES.items():
        model = B.make_baseline(name, "classification", width=8)
        assert isinstance(model, cls) and model.name == name and model.width == 8 and not model._fitted
    assert B.make_baseline("ensemble", n_members=3).n_members == 3
    assert B.make_baseline("mc_dropout", dropout_rate=0.3).dropout_rate == 0.3
    fitted = [map_classifier, laplace_classifier, B.DeepEnsemble.from_members([map_classifier, map_classifier])]
    for model in fitted:
        pred = model.predict(moons.x_test[:7])
        assert isinstance(pred, B.ClassificationPredictive) and pred.probs.shape == (7, 2)
        np.testing.assert_allclose(pred.probs.sum(1), 1.0, rtol=1e-12)


def test_kalman_filtered_last_layer_on_mlp_features(laplace_regression, map_classifier, gap, moons):
    # regression: the filter with gamma = 1, prior variance 1/alpha and the learned noise is exact
    # Bayesian updating, so it lands on the Laplace (= Bayesian linear regression) posterior
    model = laplace_regression
    alpha = model.posterior_.prior_precision
    kf = B.kalman_last_layer(model, prior_var=1.0 / alpha, gamma=1.0, learn_gamma=False,
                             noise_var=model.noise_std_**2)
    kf.partial_fit(B.kalman_features(model, gap.x_train), gap.y_train)
    np.testing.assert_allclose(kf.coef_, model.posterior_.mean, rtol=1e-6, atol=1e-8)
    # classification: a static stream of moons features, learned online, classifies the test set
    clf = B.kalman_last_layer(map_classifier, gamma=1.0, learn_gamma=False)
    phi = B.kalman_features(map_classifier, moons.x_train)
    assert phi.shape == (moons.x_train.shape[0], map_classifier.width + 1) and np.all(phi[:, -1] == 1.0)
    clf.partial_fit(phi, moons.y_train)
    probs = clf.predict_proba(B.kalman_features(map_classifier, moons.x_test))
    assert M.accuracy(moons.y_test, probs) > 0.9


def test_errors_name_the_problem(map_regression, moons):
    with pytest.raises(ValueError, match="task must be"):
        B.MAPLastLayer("density")
    with pytest.raises(ValueError, match="unknown baseline"):
        B.make_baseline("swag")
    with pytest.raises(RuntimeError, match="not fitted"):
        B.MAPLastLayer("regression").predict(np.zeros((2, 1)))
    with pytest.raises(ValueError, match=r"x must have 1 column"):
        map_regression.predict(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="NaN"):
        map_regression.predict(np.array([[np.nan]]))
    with pytest.raises(ValueError, match="class labels"):
        B.MAPLastLayer("classification", **SMALL).fit(moons.x_train, moons.y_train + 0.5, 0)
    with pytest.raises(ValueError, match="y must be"):
        B.MAPLastLayer("regression", **SMALL).fit(np.zeros((4, 1)), np.zeros(3), 0)
    with pytest.raises(ValueError, match="key is required"):
        B.MAPLastLayer("regression", **SMALL).fit(np.zeros((4, 1)), np.zeros(4), None)
    with pytest.raises(ValueError, match="dropout_rate"):
        B.MCDropout("regression", dropout_rate=1.0)
    with pytest.raises(ValueError, match="prior_precision"):
        B.LastLayerLaplace("regression", prior_precision=-1.0)
    with pytest.raises(ValueError, match="link"):
        B.LastLayerLaplace("classification", link="logit")
    with pytest.raises(TypeError, match="member"):
        B.kalman_features(B.DeepEnsemble.from_members([map_regression]), np.zeros((2, 1)))
    other = copy.copy(map_regression)
    other._arch = dataclasses.replace(map_regression._arch, width=8)
    with pytest.raises(ValueError, match="architecture"):
        B.DeepEnsemble.from_members([map_regression, other])


def test_linearized_predictive_equals_the_jacobian_form():
    """f = W^T phi with vec(W) ~ N(m, Sigma): Cov f = J Sigma J^T, J = phi^T kron I_K (row-major vec)."""
    rng = np.random.default_rng(3)
    D, K = 7, 3
    A = rng.normal(size=(D * K, D * K))
    posterior = LA.LastLayerPosterior(rng.normal(size=(D, K)), A @ A.T + np.eye(D * K), 1.0, 0.0)
    phi = rng.normal(size=(40, D))
    mean, cov = LA.linearized_predictive(posterior, phi)
    for n in (0, 17, 39):
        J = np.kron(phi[n][None, :], np.eye(K))  # (K, D K): J[k, d K + k'] = phi_d [k = k']
        np.testing.assert_allclose(cov[n], J @ posterior.cov @ J.T, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(mean[n], J @ posterior.mean.reshape(-1), rtol=1e-12, atol=1e-12)
