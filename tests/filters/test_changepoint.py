"""BOCPD: exact against brute-force enumeration of all segmentations, detection on a simulated
series, and the robust DSM variant against Monte Carlo, autodiff and injected outliers."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import gammaln, logsumexp
from scipy.stats import multivariate_normal

import bayeskit  # noqa: F401
from bayeskit.filters.changepoint import (
    DSMGaussian,
    GaussianKnownVariance,
    NormalGamma,
    bocpd,
    changepoint_locations,
    dsm_log_predictive,
    dsm_posterior,
)

NG = NormalGamma(mu0=0.5, kappa0=0.7, alpha0=2.0, beta0=1.5)
GK = GaussianKnownVariance(prior_mean=0.3, prior_var=2.0, noise_var=1.2)
DSM = DSMGaussian(prior_mean=np.array([0.0, 1.0]), prior_cov=np.diag([4.0, 4.0]), omega=0.05,
                  weight_center=0.0, weight_scale=2.0)


def _segment_log_ml_normal_gamma(ys, p):
    """Closed-form log marginal likelihood of y[a:b] under the Normal-Gamma prior."""
    def log_ml(a, b):
        y = ys[a:b]
        n = len(y)
        kn = p.kappa0 + n
        an = p.alpha0 + n / 2
        bn = p.beta0 + 0.5 * np.sum((y - y.mean()) ** 2) + p.kappa0 * n * (y.mean() - p.mu0) ** 2 / (2 * kn)
        return (gammaln(an) - gammaln(p.alpha0) + p.alpha0 * np.log(p.beta0) - an * np.log(bn)
                + 0.5 * np.log(p.kappa0 / kn) - n / 2 * np.log(2 * np.pi))
    return log_ml


def _segment_log_ml_known_variance(ys, p):
    """A segment is jointly Gaussian: covariance noise_var I + prior_var 1 1^T."""
    def log_ml(a, b):
        n = b - a
        return multivariate_normal(np.full(n, p.prior_mean), p.noise_var * np.eye(n) + p.prior_var).logpdf(ys[a:b])
    return log_ml


def _segment_log_ml_dsm(ys, p):
    """DSM has no marginal likelihood; the recursion multiplies its sequential predictives."""
    T = len(ys)
    sequential = {a: [float(dsm_log_predictive(p, ys[a:a + k], ys[a + k])[0]) for k in range(T - a)] for a in range(T)}
    return lambda a, b: sum(sequential[a][: b - a])


def _brute_force(ys, hazard, segment_log_ml):
    """p(r_t | y_1..t) for every t by enumerating all 2^(t-1) segmentations of y_1..t;
    segment_log_ml(a, b) is the log marginal likelihood of ys[a:b]."""
    T = len(ys)
    log_post = np.full((T, T), -np.inf)
    log_evidence = 0.0
    for t in range(1, T + 1):
        by_run = {}
        for c in itertools.product([0, 1], repeat=t - 1):  # c[s-1] = 1: y_{s+1} opens a segment
            starts = [0] + [i + 1 for i, ci in enumerate(c) if ci]
            bounds = starts + [t]
            lp = sum(np.log(hazard) if ci else np.log1p(-hazard) for ci in c)
            lp += sum(segment_log_ml(bounds[k], bounds[k + 1]) for k in range(len(starts)))
            by_run.setdefault(t - 1 - starts[-1], []).append(lp)
        total = logsumexp([v for vs in by_run.values() for v in vs])
        for r, vs in by_run.items():
            log_post[t - 1, r] = logsumexp(vs) - total
        log_evidence = total
    return log_post, log_evidence


@pytest.mark.parametrize("prior, segment_log_ml, T", [
    (NG, _segment_log_ml_normal_gamma, 10),
    (GK, _segment_log_ml_known_variance, 10),
    (DSM, _segment_log_ml_dsm, 8),
])
def test_run_length_posterior_equals_brute_force_enumeration(prior, segment_log_ml, T):
    rng = np.random.default_rng(3)
    ys = np.concatenate([rng.normal(0, 1, T // 2), rng.normal(3, 2, T - T // 2)])
    hazard = 0.15
    res = bocpd(ys, hazard, prior)
    ref, ref_evidence = _brute_force(ys, hazard, segment_log_ml(ys, prior))
    got = np.asarray(res.log_run_length_posterior)
    assert np.array_equal(np.isneginf(got), np.isneginf(ref))  # support: r_t < t
    finite = np.isfinite(ref)
    np.testing.assert_allclose(got[finite], ref[finite], rtol=0, atol=1e-9)
    assert float(res.log_likelihood) == pytest.approx(ref_evidence, rel=0, abs=1e-9)
    np.testing.assert_array_equal(res.map_run_lengths, np.argmax(ref, axis=1))
    np.testing.assert_allclose(res.changepoint_probabilities, np.exp(ref[:, 0]), atol=1e-12)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), hazard=st.floats(1e-4, 0.9), which=st.sampled_from(["ng", "gk", "dsm"]),
       scale=st.floats(1e-2, 1e3))
def test_property_posterior_is_normalised_and_supported_on_feasible_run_lengths(seed, hazard, which, scale):
    rng = np.random.default_rng(seed)
    ys = scale * rng.standard_t(3, size=24)
    prior = {"ng": NG, "gk": GK, "dsm": DSM}[which]
    res = bocpd(ys, hazard, prior, max_run_length=16)
    log_post = np.asarray(res.log_run_length_posterior)
    np.testing.assert_allclose(logsumexp(log_post, axis=1), 0.0, atol=1e-9)
    assert np.all(np.isneginf(log_post[np.triu_indices(16, k=1)]))  # r_t <= t - 1
    assert np.all(np.isfinite(res.step_log_likelihoods))
    assert float(res.log_likelihood) == pytest.approx(float(np.sum(res.step_log_likelihoods)))


def test_truncation_is_exact_when_r_max_covers_the_series_and_close_otherwise():
    rng = np.random.default_rng(0)
    ys = np.concatenate([rng.normal(0, 1, 60), rng.normal(4, 1, 60)])
    full = bocpd(ys, 0.01, NG)
    same = bocpd(ys, 0.01, NG, max_run_length=len(ys) + 5)
    np.testing.assert_allclose(same.log_run_length_posterior[:, :len(ys)], full.log_run_length_posterior, atol=1e-12)
    short = bocpd(ys, 0.01, NG, max_run_length=80)
    np.testing.assert_array_equal(short.map_run_lengths[:80], full.map_run_lengths[:80])
    np.testing.assert_array_equal(changepoint_locations(short.map_run_lengths), [60])


def _piecewise_with_outliers(seed=1):
    rng = np.random.default_rng(seed)
    ys = np.repeat([0.0, 3.0, -1.0], 100) + rng.normal(size=300)
    outliers = np.array([40, 70, 150, 170, 250, 280])
    ys_out = ys.copy()
    ys_out[outliers] += rng.choice([-1, 1], 6) * rng.uniform(7, 10, 6)
    return ys, ys_out, outliers


def _false_alarms(found, true=(100, 200), tolerance=5):
    return [c for c in found if min(abs(c - t) for t in true) > tolerance]


@pytest.mark.parametrize("prior", [NG, GK, DSM])
def test_detects_the_changepoints_of_a_clean_piecewise_constant_series(prior):
    ys, _, _ = _piecewise_with_outliers()
    found = changepoint_locations(bocpd(ys, 0.01, prior).map_run_lengths)
    assert len(found) == 2 and not _false_alarms(found)


def test_outliers_fire_false_changepoints_in_standard_bocpd_but_not_in_the_robust_version():
    _, ys, outliers = _piecewise_with_outliers()
    standard = changepoint_locations(bocpd(ys, 0.01, NormalGamma(0.0, 0.1, 2.0, 2.0)).map_run_lengths)
    robust = changepoint_locations(bocpd(ys, 0.01, DSM).map_run_lengths)
    # the standard model starts a new segment at (or just after) most of the outliers
    at_outliers = [c for c in _false_alarms(standard) if min(abs(c - o) for o in outliers) <= 2]
    assert len(at_outliers) >= 4
    assert _false_alarms(robust) == []
    assert len(robust) == 2  # and both true changepoints are still found
    # the same with unit weight m = 1 (no down-weighting) is not robust: the weight does the work
    unweighted = DSM._replace(weight_scale=np.inf)
    assert len(_false_alarms(changepoint_locations(bocpd(ys, 0.01, unweighted).map_run_lengths))) >= 1


def test_dsm_posterior_matches_the_score_matching_loss_computed_by_autodiff():
    # independent check of A(y), v(y): build L(eta; y) = (m s)^2 + 2 d/dy (m^2 s) with jax.grad,
    # s(y) = d/dy log p(y | eta), and read its quadratic form in eta off by finite evaluation
    ys = np.array([-0.7, 0.2, 1.9, 5.0])
    c, s, omega = 0.4, 1.7, 0.3
    prior = DSMGaussian(np.array([0.2, 1.5]), np.array([[2.0, 0.3], [0.3, 1.0]]), omega, c, s)

    def log_p(y, eta):
        return eta[0] * y - 0.5 * eta[1] * y * y  # + terms free of y

    def weight(y):
        return (1 + ((y - c) / s) ** 2) ** -0.5

    def loss(eta, y):
        score = jax.grad(log_p)(y, eta)
        flux = jax.grad(lambda z: weight(z) ** 2 * jax.grad(log_p)(z, eta))(y)
        return (weight(y) * score) ** 2 + 2 * flux

    def neg_log_post(eta):
        d = eta - prior.prior_mean
        return 0.5 * d @ jnp.linalg.solve(prior.prior_cov, d) + omega * sum(loss(eta, y) for y in ys)

    eta0 = jnp.zeros(2)
    hess = jax.jit(jax.hessian(neg_log_post))(eta0)
    mean_ref = eta0 - jnp.linalg.solve(hess, jax.jit(jax.grad(neg_log_post))(eta0))  # exact: it is quadratic
    mean, cov = dsm_posterior(prior, ys)
    np.testing.assert_allclose(cov, np.linalg.inv(hess), rtol=1e-12)
    np.testing.assert_allclose(mean, mean_ref, rtol=1e-12)


def test_dsm_predictive_matches_monte_carlo_and_integrates_to_one():
    ys = np.array([0.3, -0.5, 1.1, 0.4, -0.2])
    mean, cov = dsm_posterior(DSM, ys)
    rng = np.random.default_rng(0)
    eta = rng.multivariate_normal(np.asarray(mean), np.asarray(cov), size=300_000)
    eta = eta[eta[:, 1] > 0]  # the truncation to positive precision
    points = np.array([-1.0, 0.4, 2.5, 6.0])
    mc = np.array([np.mean(np.sqrt(eta[:, 1] / (2 * np.pi)) * np.exp(-0.5 * eta[:, 1] * (y - eta[:, 0] / eta[:, 1]) ** 2))
                   for y in points])
    got = np.exp(np.asarray(dsm_log_predictive(DSM, ys, points)))
    np.testing.assert_allclose(got, mc, rtol=0.03)
    grid = np.linspace(-300, 300, 60_001)
    density = np.exp(np.asarray(dsm_log_predictive(DSM, ys, grid)))
    assert np.trapezoid(density, grid) == pytest.approx(1.0, abs=2e-3)
    # polynomial tails: far less surprised by a 10-sigma point than a Gaussian would be
    assert float(dsm_log_predictive(DSM, ys, 10.0)[0]) > -15.0


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="hazard"):
        bocpd(np.zeros(5), 1.5, NG)
    with pytest.raises(ValueError, match="ys"):
        bocpd(np.array([0.0, np.nan]), 0.1, NG)
    with pytest.raises(ValueError, match="ys"):
        bocpd(np.zeros((3, 2)), 0.1, NG)
    with pytest.raises(ValueError, match="max_run_length"):
        bocpd(np.zeros(5), 0.1, NG, max_run_length=0)
    with pytest.raises(ValueError, match="beta0"):
        bocpd(np.zeros(5), 0.1, NormalGamma(0.0, 1.0, 1.0, -1.0))
    with pytest.raises(ValueError, match="noise_var"):
        bocpd(np.zeros(5), 0.1, GaussianKnownVariance(0.0, 1.0, 0.0))
    with pytest.raises(ValueError, match="prior_cov"):
        bocpd(np.zeros(5), 0.1, DSM._replace(prior_cov=-np.eye(2)))
    with pytest.raises(ValueError, match="omega"):
        bocpd(np.zeros(5), 0.1, DSM._replace(omega=0.0))
    with pytest.raises(TypeError, match="prior"):
        bocpd(np.zeros(5), 0.1, "gaussian")
    with pytest.raises(ValueError, match="min_duration"):
        changepoint_locations(np.zeros(5, dtype=int), min_duration=0)
