"""ELBO, IWAE and gradient estimators against exact identities and brute-force quadrature."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import bayeskit  # noqa: F401
from bayeskit.vae import (
    VAE,
    elbo,
    elbo_components,
    gradient_estimates,
    gradient_variance,
    iwae_bound,
)
from bayeskit.vae.objectives import sample_terms


def _binary(n=12, d=8, seed=0):
    return (np.random.default_rng(seed).random((n, d)) > 0.5).astype(np.float32)


@pytest.fixture(scope="module")
def small():
    return VAE(8, 2, hidden=(16,), rngs=nnx.Rngs(1))


@pytest.mark.parametrize("posterior", ["diagonal", "planar"])
def test_iwae_with_one_sample_is_the_elbo_estimate(posterior):
    flow = 0 if posterior == "diagonal" else 2
    vae = VAE(8, 2, hidden=(16,), posterior=posterior, flow_length=flow, rngs=nnx.Rngs(2))
    x = _binary()
    key = jax.random.key(3)
    one = iwae_bound(vae, x, key, 1)
    mc = elbo(vae, x, key, analytic_kl=False)
    assert one.shape == (12,) and one.dtype == jnp.float32
    # the same draw of z: equal up to float32 rounding of the sum's order
    np.testing.assert_allclose(one, mc, rtol=2e-6, atol=1e-5)
    # a different key gives a different estimate (so the equality above is not vacuous)
    assert np.max(np.abs(iwae_bound(vae, x, jax.random.key(4), 1) - one)) > 1e-3


def test_iwae_grows_with_k_on_average(small):
    x = _binary()
    means = []
    for k in (1, 16, 256):
        draws = [float(iwae_bound(small, x, jax.random.key(s), k).mean()) for s in range(4)]
        means.append(np.mean(draws))
    assert all(b > a for a, b in zip(means, means[1:])), means


def _log_marginal_by_quadrature(vae, x, lo=-12.0, hi=12.0, n=6001):
    """log p(x) = log int p(x | z) N(z; 0, 1) dz for a 1-D latent, on a fine grid (float64)."""
    z = np.linspace(lo, hi, n)[:, None].astype(np.float32)
    dec = vae.decode(jnp.asarray(z))  # (n, D)
    log_px = np.asarray(vae.log_likelihood(jnp.asarray(x)[None, :, :], dec[:, None, :]), dtype=np.float64)  # (n, m)
    log_prior = -0.5 * z[:, 0].astype(np.float64) ** 2 - 0.5 * np.log(2 * np.pi)
    log_joint = log_px + log_prior[:, None]
    dz = (hi - lo) / (n - 1)
    m = log_joint.max(axis=0)
    return m + np.log(np.sum(np.exp(log_joint - m), axis=0) * dz)


@pytest.mark.parametrize("posterior,flow", [("diagonal", 0), pytest.param("radial", 2, marks=pytest.mark.slow), ("planar", 3)])
def test_bounds_against_the_marginal_likelihood_by_quadrature(posterior, flow):
    """ELBO <= IWAE_K <= log p(x), and IWAE_K -> log p(x): this also checks the flow's log q."""
    vae = VAE(4, 1, hidden=(8,), posterior=posterior, flow_length=flow, rngs=nnx.Rngs(5))
    x = _binary(6, 4, seed=1)
    log_px = _log_marginal_by_quadrature(vae, x)
    bound = np.asarray(elbo(vae, x, jax.random.key(0), n_samples=4000, analytic_kl=posterior == "diagonal"))
    K = 4000
    iwae = np.asarray(iwae_bound(vae, x, jax.random.key(1), K))
    assert np.all(bound < log_px + 1e-3)
    assert np.all(iwae >= bound - 1e-3)
    # exp(IWAE_K) is the mean of K importance weights, an unbiased estimate of p(x): within
    # 5 standard errors of the quadrature value (only if log q(z|x) is the right density)
    log_px_z, log_pz, log_q = (np.asarray(a, np.float64) for a in sample_terms(vae, jnp.asarray(x), jax.random.key(1), K))
    w = np.exp(log_px_z + log_pz - log_q - log_px[None, :])  # weights / p(x), (K, n)
    np.testing.assert_allclose(np.log(w.mean(axis=0)) + log_px, iwae, atol=1e-4)
    assert np.all(np.abs(w.mean(axis=0) - 1.0) < 5 * w.std(axis=0) / np.sqrt(K)), (w.mean(0), w.std(0))
    np.testing.assert_allclose(iwae, log_px, atol=0.05)


def test_elbo_equals_brute_force_expectation_for_a_one_dimensional_latent():
    """E_q[log p(x|z)] by Gauss-Hermite quadrature, KL in closed form, vs the sampled estimate."""
    vae = VAE(4, 1, hidden=(8,), rngs=nnx.Rngs(6))
    x = _binary(5, 4, seed=2)
    mean, log_std = (np.asarray(a, dtype=np.float64)[:, 0] for a in vae.encode(jnp.asarray(x)))
    nodes, weights = np.polynomial.hermite_e.hermegauss(80)  # for the weight exp(-t^2 / 2)
    weights = weights / np.sqrt(2 * np.pi)
    z = (mean[None, :] + np.exp(log_std)[None, :] * nodes[:, None]).astype(np.float32)  # (80, n)
    dec = vae.decode(jnp.asarray(z[..., None]))
    rec = np.sum(weights[:, None] * np.asarray(vae.log_likelihood(jnp.asarray(x), dec), dtype=np.float64), axis=0)
    kl = 0.5 * (mean**2 + np.exp(2 * log_std) - 1 - 2 * log_std)
    parts = elbo_components(vae, x, jax.random.key(0), n_samples=20000)
    np.testing.assert_allclose(parts.kl, kl, rtol=1e-5)
    np.testing.assert_allclose(parts.reconstruction, rec, atol=0.02)
    np.testing.assert_allclose(elbo(vae, x, jax.random.key(0), n_samples=20000), rec - kl, atol=0.02)


def test_closed_form_kl_matches_its_monte_carlo_estimate(small):
    x = _binary()
    analytic = elbo_components(small, x, jax.random.key(0), n_samples=1).kl
    mc = elbo_components(small, x, jax.random.key(0), n_samples=20000, analytic_kl=False).kl
    np.testing.assert_allclose(mc, analytic, atol=0.03)
    assert np.all(np.asarray(analytic) >= 0)


def test_beta_scales_only_the_kl(small):
    x = _binary()
    key = jax.random.key(9)
    parts = elbo_components(small, x, key)
    for beta in (0.0, 1.0, 4.0):
        np.testing.assert_allclose(elbo(small, x, key, beta=beta), parts.reconstruction - beta * parts.kl, rtol=1e-6)


def test_reparameterisation_gradient_has_far_lower_variance_than_score_function(small):
    """Both estimators are unbiased for the same gradient; the pathwise one is far less noisy."""
    x = _binary()
    m = 256
    rep = gradient_estimates(small, x, jax.random.key(0), estimator="reparameterization", n_estimates=m)
    sf = gradient_estimates(small, x, jax.random.key(0), estimator="score_function", n_estimates=m)
    assert set(rep) == set(sf) and all(name.startswith("encoder/") for name in rep)
    assert rep["encoder/gaussian_head/kernel"].shape == (m, 16, 4)
    v_rep, v_sf = gradient_variance(rep), gradient_variance(sf)
    assert v_sf > 10 * v_rep, (v_rep, v_sf)
    # unbiased: the means agree within their Monte-Carlo error (the gaussian head's bias)
    r, s = np.asarray(rep["encoder/gaussian_head/bias"]), np.asarray(sf["encoder/gaussian_head/bias"])
    se = np.sqrt(r.var(axis=0, ddof=1) / m + s.var(axis=0, ddof=1) / m)
    assert np.all(np.abs(r.mean(axis=0) - s.mean(axis=0)) < 5 * se), (r.mean(0), s.mean(0), se)


def test_gaussian_likelihood_variants_give_finite_float32_bounds():
    x = np.random.default_rng(0).random((12, 8)).astype(np.float32) * 4 - 2
    for vae in (VAE(8, 2, hidden=(16,), likelihood="gaussian"), VAE(8, 2, hidden=(16,), likelihood="gaussian", obs_std=0.5)):
        value = elbo(vae, x, jax.random.key(0))
        assert value.shape == (12,) and value.dtype == jnp.float32 and np.all(np.isfinite(value))
    # a fixed noise std: log p(x|z) is the Gaussian log-density with that std (checked by hand)
    vae = VAE(8, 2, hidden=(16,), likelihood="gaussian", obs_std=0.5)
    dec = vae.decode(jnp.zeros((1, 2), jnp.float32))
    by_hand = np.sum(-0.5 * ((x[:1] - np.asarray(dec)) / 0.5) ** 2 - np.log(0.5) - 0.5 * np.log(2 * np.pi))
    np.testing.assert_allclose(vae.log_likelihood(jnp.asarray(x[:1]), dec), [by_hand], rtol=1e-5)


@pytest.mark.slow
def test_convolutional_variant_on_8x8_and_28x28_images():
    for side in (8, 28):
        x = np.random.default_rng(0).random((3, side * side)).astype(np.float32)
        vae = VAE(side * side, 2, hidden=(16,), conv=True)
        assert vae.decode(jnp.zeros((2, 5, 2), jnp.float32)).shape == (2, 5, side * side)
        value = elbo(vae, x, jax.random.key(0))
        assert value.shape == (3,) and np.all(np.isfinite(value))


def test_bad_input_is_refused_with_clear_errors(small):
    x = _binary()
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="2-D"):
        elbo(small, x[0], key)
    with pytest.raises(ValueError, match="8 columns"):
        elbo(small, x[:, :5], key)
    bad = x.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        elbo(small, bad, key)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        elbo(small, x * 3, key)
    with pytest.raises(ValueError, match="empty"):
        elbo(small, x[:0], key)
    with pytest.raises(ValueError, match="key is required"):
        elbo(small, x, None)
    with pytest.raises(ValueError, match="beta"):
        elbo(small, x, key, beta=-1)
    with pytest.raises(ValueError, match="k must be >= 1"):
        iwae_bound(small, x, key, 0)
    with pytest.raises(TypeError, match="VAE"):
        elbo("not a vae", x, key)
    with pytest.raises(ValueError, match="estimator"):
        gradient_estimates(small, x, key, estimator="magic")
    with pytest.raises(ValueError, match="likelihood"):
        VAE(8, 2, likelihood="poisson")
    with pytest.raises(ValueError, match="flow_length"):
        VAE(8, 2, posterior="planar")
    with pytest.raises(ValueError, match="flow_length"):
        VAE(8, 2, flow_length=2)
    with pytest.raises(ValueError, match="conv=True"):
        VAE(60, 2, conv=True)
    with pytest.raises(ValueError, match="latent_dim"):
        VAE(8, 0)
    with pytest.raises(ValueError, match="obs_std"):
        VAE(8, 2, obs_std=0.1)
    flow_vae = VAE(8, 2, posterior="planar", flow_length=1)
    with pytest.raises(ValueError, match="analytic_kl"):
        elbo(flow_vae, x, key, analytic_kl=True)


def test_memory_bounded_chunks_give_the_same_draws(small, monkeypatch):
    from bayeskit.vae import objectives

    x = jnp.asarray(_binary())
    # the chunk size is read when the function is traced: a fresh nnx.jit for each setting
    whole = nnx.jit(lambda v, xs, k: sample_terms(v, xs, k, 13))(small, x, jax.random.key(2))
    monkeypatch.setattr(objectives, "_CHUNK_ELEMENTS", 4 * 12 * 8)  # 4 draws per chunk, 13 = 3 x 4 + 1
    chunked = nnx.jit(lambda v, xs, k: sample_terms(v, xs, k, 13))(small, x, jax.random.key(2))
    for a, b in zip(whole, chunked):
        assert a.shape == (13, 12)
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
