"""Kalman filter and RTS smoother against statsmodels and an independent NumPy computation."""

import numpy as np
import pytest
import statsmodels.api as sm
from bayeskit.data import load_nile
from hypothesis import given, settings
from hypothesis import strategies as st

import bayeskit  # noqa: F401
from bayeskit.filters import LinearGaussianSSM, fit_mle, kalman_filter, rts_smoother

# Durbin & Koopman's maximum-likelihood variances for the Nile local-level model
NILE_OBS_VAR, NILE_LEVEL_VAR = 15099.0, 1469.1


def _statsmodels_nile(y, m0=1000.0, P0=1e6):
    # loglikelihood_burn=0: statsmodels otherwise leaves the first observation out of llf
    mod = sm.tsa.UnobservedComponents(y, "local level", loglikelihood_burn=0)
    mod.ssm.initialize_known(np.array([m0]), np.array([[P0]]))
    return mod.smooth([NILE_OBS_VAR, NILE_LEVEL_VAR])


def _nile_model(m0=1000.0, P0=1e6):
    return LinearGaussianSSM(
        F=np.eye(1), H=np.eye(1), Q=[[NILE_LEVEL_VAR]], R=[[NILE_OBS_VAR]], m0=np.array([m0]), P0=[[P0]]
    )


@pytest.mark.parametrize("missing", [False, True])
def test_nile_matches_statsmodels(missing):
    y = load_nile().y.copy()
    if missing:
        y[20:40] = np.nan
        y[70] = np.nan
    ref = _statsmodels_nile(y)
    f = kalman_filter(_nile_model(), y)
    assert float(f.log_likelihood) == pytest.approx(ref.llf, rel=1e-8)
    np.testing.assert_allclose(f.means[:, 0], ref.filtered_state[0], rtol=1e-10)
    np.testing.assert_allclose(f.covariances[:, 0, 0], ref.filtered_state_cov[0, 0], rtol=1e-10)
    s = rts_smoother(_nile_model(), y)
    np.testing.assert_allclose(s.means[:, 0], ref.smoothed_state[0], rtol=1e-10)
    np.testing.assert_allclose(s.covariances[:, 0, 0], ref.smoothed_state_cov[0, 0], rtol=1e-10)


def _numpy_reference(F, H, Q, R, m0, P0, ys):
    """Textbook filter + smoother in plain NumPy: explicit inverses, the short covariance form."""
    T, d = len(ys), len(m0)
    ms, Ps, mps, Pps, ll = [], [], [], [], 0.0
    m, P = m0, P0
    for t in range(T):
        if t > 0:
            m, P = F @ m, F @ P @ F.T + Q
        mps.append(m)
        Pps.append(P)
        obs = ~np.isnan(ys[t])
        if obs.any():
            Ho, Ro, yo = H[obs], R[np.ix_(obs, obs)], ys[t][obs]
            S = Ho @ P @ Ho.T + Ro
            K = P @ Ho.T @ np.linalg.inv(S)
            e = yo - Ho @ m
            ll += -0.5 * (e @ np.linalg.solve(S, e) + np.linalg.slogdet(2 * np.pi * S)[1])
            m, P = m + K @ e, (np.eye(d) - K @ Ho) @ P
        ms.append(m)
        Ps.append(P)
    sm_, sP = [ms[-1]], [Ps[-1]]
    for t in range(T - 2, -1, -1):
        G = Ps[t] @ F.T @ np.linalg.inv(Pps[t + 1])
        sm_.insert(0, ms[t] + G @ (sm_[0] - mps[t + 1]))
        sP.insert(0, Ps[t] + G @ (sP[0] - Pps[t + 1]) @ G.T)
    return np.array(ms), np.array(Ps), ll, np.array(sm_), np.array(sP)


def _random_model(rng, d=4, m=2):
    A = rng.normal(size=(d, d))
    F = 0.9 * A / np.max(np.abs(np.linalg.eigvals(A)))
    H = rng.normal(size=(m, d))
    B = rng.normal(size=(d, d))
    Q = 0.1 * B @ B.T + 0.01 * np.eye(d)
    C = rng.normal(size=(m, m))
    R = 0.2 * C @ C.T + 0.05 * np.eye(m)
    return LinearGaussianSSM(F, H, Q, R, rng.normal(size=d), np.eye(d))


def test_multivariate_partly_missing_matches_numpy_reference():
    rng = np.random.default_rng(0)
    model = _random_model(rng)
    ys = rng.normal(size=(60, 2))
    ys[5, 0] = np.nan  # partly missing row
    ys[17] = np.nan  # fully missing row
    ys[30, 1] = np.nan
    ms, Ps, ll, sms, sPs = _numpy_reference(*model, ys)
    f = kalman_filter(model, ys)
    s = rts_smoother(model, ys)
    np.testing.assert_allclose(f.means, ms, rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(f.covariances, Ps, rtol=1e-9, atol=1e-11)
    assert float(f.log_likelihood) == pytest.approx(ll, rel=1e-10)
    np.testing.assert_allclose(s.means, sms, rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(s.covariances, sPs, rtol=1e-9, atol=1e-11)


def test_log_likelihood_equals_the_joint_gaussian_density():
    """log p(y) from the filter equals log N(vec y | mean, Cov) built by brute force."""
    from scipy.stats import multivariate_normal

    rng = np.random.default_rng(1)
    model = _random_model(rng, d=3, m=2)
    F, H, Q, R, m0, P0 = model
    T = 8
    means, covs = [m0], [P0]
    for _ in range(T - 1):
        means.append(F @ means[-1])
        covs.append(F @ covs[-1] @ F.T + Q)
    # Cov(x_s, x_t) = F^(t-s) Cov(x_s) for t >= s
    d = len(m0)
    Cx = np.zeros((T * d, T * d))
    for s in range(T):
        for t in range(s, T):
            block = np.linalg.matrix_power(F, t - s) @ covs[s]
            Cx[t * d:(t + 1) * d, s * d:(s + 1) * d] = block
            Cx[s * d:(s + 1) * d, t * d:(t + 1) * d] = block.T
    Hb = np.kron(np.eye(T), H)
    Cy = Hb @ Cx @ Hb.T + np.kron(np.eye(T), R)
    ys = rng.normal(size=(T, 2))
    ref = multivariate_normal(Hb @ np.concatenate(means), Cy).logpdf(ys.ravel())
    assert float(kalman_filter(model, ys).log_likelihood) == pytest.approx(ref, rel=1e-10)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), T=st.integers(1, 40))
def test_covariances_are_symmetric_psd(seed, T):
    rng = np.random.default_rng(seed)
    model = _random_model(rng)
    ys = rng.normal(size=(T, 2))
    for result in (kalman_filter(model, ys), rts_smoother(model, ys)):
        P = np.asarray(result.covariances)
        np.testing.assert_array_equal(P, np.swapaxes(P, 1, 2))
        assert np.linalg.eigvalsh(P).min() > -1e-12


@pytest.mark.slow
def test_joseph_form_stays_psd_over_a_million_steps():
    rng = np.random.default_rng(2)
    model = _random_model(rng)
    ys = rng.normal(size=(1_000_000, 2))
    f = kalman_filter(model, ys)
    P = np.asarray(f.covariances[::1000])
    np.testing.assert_array_equal(P, np.swapaxes(P, 1, 2))
    assert np.linalg.eigvalsh(P).min() > 0
    assert np.isfinite(float(f.log_likelihood))


@pytest.mark.parametrize(
    "change, match",
    [
        ({"F": np.eye(2)}, r"F must have shape \(1, 1\)"),
        ({"R": [[-1.0]]}, "R must be positive semi-definite"),
        ({"Q": [[np.nan]]}, "Q contains NaN"),
        ({"P0": np.array([[1.0, 2.0], [0.0, 1.0]])}, r"P0 must have shape"),
        ({"m0": np.zeros((1, 1))}, r"m0 must be a vector"),
    ],
)
def test_bad_models_raise_clear_errors(change, match):
    model = _nile_model()._replace(**change)
    with pytest.raises(ValueError, match=match):
        kalman_filter(model, np.zeros(5))


def test_bad_observations_raise_clear_errors():
    with pytest.raises(ValueError, match=r"ys must have shape \(T, 1\)"):
        kalman_filter(_nile_model(), np.zeros((5, 2)))
    with pytest.raises(ValueError, match="ys is empty"):
        kalman_filter(_nile_model(), np.zeros(0))
    with pytest.raises(ValueError, match="infinite"):
        kalman_filter(_nile_model(), np.array([1.0, np.inf]))
    with pytest.raises(ValueError, match="Q must be symmetric"):
        kalman_filter(_random_model(np.random.default_rng(0))._replace(Q=np.triu(np.ones((4, 4)))), np.zeros((3, 2)))


def _nile_builder(y):
    import jax.numpy as jnp

    def build(theta):  # theta = log(observation variance), log(level variance)
        return LinearGaussianSSM(
            F=jnp.eye(1), H=jnp.eye(1), Q=jnp.exp(theta[1]).reshape(1, 1), R=jnp.exp(theta[0]).reshape(1, 1),
            m0=jnp.zeros(1), P0=jnp.full((1, 1), 1e7 * np.var(y)),
        )

    return build


def test_nile_mle_matches_durbin_koopman():
    """Approximate-diffuse MLE (wide prior, first term left out) vs D&K's 15099 and 1469.1."""
    y = load_nile().y
    res = fit_mle(_nile_builder(y), np.log([np.var(y), np.var(y) / 10]), y, burn_in=1)
    obs_var, level_var = np.exp(res.theta)
    assert obs_var == pytest.approx(NILE_OBS_VAR, rel=0.02)
    assert level_var == pytest.approx(NILE_LEVEL_VAR, rel=0.02)


def test_nile_mle_matches_statsmodels_fit():
    """With statsmodels' default (approximate diffuse, first observation burned) the fits agree."""
    y = load_nile().y
    ref = sm.tsa.UnobservedComponents(y, "local level").fit(disp=False)
    res = fit_mle(_nile_builder(y), np.log([np.var(y), np.var(y) / 10]), y, burn_in=1)
    np.testing.assert_allclose(np.exp(res.theta), ref.params, rtol=0.02)
    with pytest.raises(ValueError, match="burn_in"):
        fit_mle(_nile_builder(y), np.zeros(2), y, burn_in=100)
