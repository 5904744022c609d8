"""Online Kalman classifier: exact Bayesian linear regression at gamma = 1, convergence on a
static separable stream, tracking a rotating boundary, and the learned forgetting coefficient."""

import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.linear_model import LogisticRegression

import bayeskit  # noqa: F401
from bayeskit.filters.online_classification import OnlineKalmanClassifier


def _rotating_stream(T, seed, turns):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(T, 2))
    angle = 2 * np.pi * turns * np.arange(T) / T
    w = np.stack([np.cos(angle), np.sin(angle)], axis=1)
    labels = (np.sum(w * x, axis=1) > 0).astype(int)
    return np.concatenate([x, np.ones((T, 1))], axis=1), labels


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n_outputs=st.sampled_from([1, 2]))
def test_gaussian_likelihood_with_gamma_one_is_closed_form_bayesian_linear_regression(seed, n_outputs):
    rng = np.random.default_rng(seed)
    n, D, prior_var, noise_var = 40, 4, 2.5, 0.3
    Phi = rng.normal(size=(n, D)) * rng.uniform(0.1, 3.0)
    Y = rng.normal(size=(n, n_outputs))
    clf = OnlineKalmanClassifier(D, n_outputs, prior_var=prior_var, gamma=1.0, learn_gamma=False,
                                 likelihood="gaussian", noise_var=noise_var)
    for t in range(0, n, 10):  # in chunks: the state carries over between calls
        clf.partial_fit(Phi[t:t + 10], Y[t:t + 10])
    # batch posterior: Sigma_N = (I / prior_var + Phi^T Phi / noise_var)^-1, same for every output
    cov = np.linalg.inv(np.eye(D) / prior_var + Phi.T @ Phi / noise_var)
    mean = cov @ Phi.T @ Y / noise_var
    np.testing.assert_allclose(clf.coef_, mean, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(np.asarray(clf.state.cov), np.kron(cov, np.eye(n_outputs)), rtol=1e-9, atol=1e-12)
    # and the summed one-step log predictive is the log marginal likelihood of the data
    log_pred = np.concatenate([np.asarray(r.log_predictive) for r in clf.history])
    evidence_cov = prior_var * Phi @ Phi.T + noise_var * np.eye(n)
    _, logdet = np.linalg.slogdet(evidence_cov)
    ref = sum(-0.5 * (y @ np.linalg.solve(evidence_cov, y) + logdet + n * np.log(2 * np.pi)) for y in Y.T)
    assert log_pred.sum() == pytest.approx(ref, rel=1e-9)


def test_static_separable_stream_converges_to_near_perfect_accuracy():
    phi, labels = _rotating_stream(2000, 0, turns=0.0)
    clf = OnlineKalmanClassifier(3, 2)
    result = clf.partial_fit(phi, labels)
    online = np.argmax(np.asarray(result.predictive), axis=1) == labels
    assert online[1000:].mean() >= 0.97
    rng = np.random.default_rng(5)
    x = rng.normal(size=(500, 2))
    test_phi = np.concatenate([x, np.ones((500, 1))], axis=1)
    assert np.mean(clf.predict(test_phi) == (x[:, 0] > 0)) >= 0.97
    probs = clf.predict_proba(test_phi)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-12)


def test_tracks_a_rotating_boundary_where_static_models_fail():
    phi, labels = _rotating_stream(2000, 1, turns=1.0)
    adaptive = OnlineKalmanClassifier(3, 2)
    acc_adaptive = np.mean(np.argmax(np.asarray(adaptive.partial_fit(phi, labels).predictive), axis=1) == labels)
    static = OnlineKalmanClassifier(3, 2, gamma=1.0, learn_gamma=False)  # exact static Bayes
    acc_static = np.mean(np.argmax(np.asarray(static.partial_fit(phi, labels).predictive), axis=1) == labels)
    offline = LogisticRegression().fit(phi[:400], labels[:400])  # trained on the first part only
    acc_offline = np.mean(offline.predict(phi[400:]) == labels[400:])
    assert acc_adaptive >= 0.9
    assert acc_adaptive > acc_static + 0.15
    assert acc_adaptive > acc_offline + 0.3


def test_learned_forgetting_coefficient_is_lower_on_drifting_data():
    # regression stream (gaussian likelihood: exact one-step predictive), weights static or rotating
    T = 1500
    forgetting = {}
    for kind, turns in (("static", 0.0), ("drifting", 2.0)):
        rng = np.random.default_rng(0)
        x = rng.normal(size=(T, 2))
        angle = 2 * np.pi * turns * np.arange(T) / T
        y = 3 * np.sum(np.stack([np.cos(angle), np.sin(angle)], axis=1) * x, axis=1) + 0.5 * rng.normal(size=T)
        clf = OnlineKalmanClassifier(3, 1, likelihood="gaussian", noise_var=0.25, gamma=0.99,
                                     gamma_optimizer=optax.adam(0.1))
        gammas = np.asarray(clf.partial_fit(np.concatenate([x, np.ones((T, 1))], axis=1), y).gammas)
        forgetting[kind] = 1 - np.median(gammas[T // 2:])
    assert forgetting["static"] < 1e-4  # gamma -> 1: nothing to forget
    assert forgetting["drifting"] > 10 * forgetting["static"]


def test_single_updates_match_a_batch_run_and_bad_inputs_raise():
    phi, labels = _rotating_stream(30, 2, turns=0.5)
    batch = OnlineKalmanClassifier(3, 2)
    batch.partial_fit(phi, labels)
    single = OnlineKalmanClassifier(3, 2)
    for p, y in zip(phi, labels):
        single.update(p, y)
    np.testing.assert_allclose(single.coef_, batch.coef_, rtol=1e-10, atol=1e-12)
    assert single.gamma_ == pytest.approx(batch.gamma_, rel=1e-12)
    with pytest.raises(ValueError, match="labels"):
        batch.partial_fit(phi[:2], [0, 2])
    with pytest.raises(ValueError, match="phis"):
        batch.partial_fit(np.full((2, 3), np.nan), [0, 1])
    with pytest.raises(ValueError, match="features"):
        batch.partial_fit(np.ones((2, 4)), [0, 1])
    with pytest.raises(ValueError, match="gamma"):
        OnlineKalmanClassifier(3, 2, gamma=1.5)
    with pytest.raises(ValueError, match="n_classes"):
        OnlineKalmanClassifier(3, 1)
    with pytest.raises(ValueError, match="likelihood"):
        OnlineKalmanClassifier(3, 2, likelihood="probit")
    with pytest.raises(ValueError, match="prior_var"):
        OnlineKalmanClassifier(3, 2, prior_var=-1.0)
    with pytest.raises(ValueError, match="predict_proba"):
        OnlineKalmanClassifier(3, 1, likelihood="gaussian").predict_proba(np.ones((1, 3)))
