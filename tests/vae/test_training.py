"""Training on the digits, collapse diagnostics, latent helpers and checkpoints."""

import json
import zipfile

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from bayeskit.data import load_digits
from flax import nnx

import bayeskit  # noqa: F401
from bayeskit.vae import (
    VAE,
    TrainHistory,
    active_units,
    elbo,
    elbo_components,
    interpolate,
    kl_per_dimension,
    latent_traversal,
    load,
    posterior_mean,
    save,
    train,
)


@pytest.fixture(scope="module")
def digits():
    X = load_digits().X.astype(np.float32)
    perm = np.random.default_rng(0).permutation(len(X))
    return X[perm[:1200]], X[perm[1200:1500]]


@pytest.fixture(scope="module")
def trained(digits):
    x_train, x_test = digits
    vae = VAE(64, 4, hidden=(64,), rngs=nnx.Rngs(0))
    before = float(elbo(vae, x_test, jax.random.key(1)).mean())
    history = train(vae, x_train, epochs=15, batch_size=100, learning_rate=3e-3, key=jax.random.key(0),
                    x_test=x_test, progress=False)
    return vae, history, before


def test_training_raises_the_test_elbo_and_records_history(trained, digits):
    vae, history, before = trained
    _, x_test = digits
    assert isinstance(history, TrainHistory) and history.epochs == 15
    assert len(history.test_elbo) == len(history.kl) == len(history.seconds) == 15
    after = float(elbo(vae, x_test, jax.random.key(1)).mean())
    assert after > before + 10, (before, after)
    assert history.test_elbo[-1] > history.test_elbo[0]
    # the recorded test ELBO is the ELBO of the final parameters (same estimator, one draw)
    assert abs(history.test_elbo[-1] - after) < 1.0
    assert np.all(np.isfinite(history.train_elbo)) and min(history.kl) > 0
    json.dumps(history.as_dict())


def test_training_leaves_the_inputs_alone_and_is_reproducible(digits):
    x_train, _ = digits
    x = x_train.copy()  # the shapes of the trained fixture: no new compilation
    runs = []
    for _ in range(2):
        vae = VAE(64, 4, hidden=(64,), rngs=nnx.Rngs(0))
        h = train(vae, x, epochs=2, batch_size=100, learning_rate=3e-3, key=7, progress=False)
        runs.append(h.train_elbo)
    np.testing.assert_array_equal(x, x_train)
    np.testing.assert_allclose(runs[0], runs[1], rtol=1e-6)


def test_kl_per_dimension_and_active_units_follow_their_definitions(trained, digits):
    vae, _, _ = trained
    _, x_test = digits
    mean, log_std = (np.asarray(a, np.float64) for a in vae.encode(jnp.asarray(x_test)))
    kl_dims = kl_per_dimension(vae, x_test)
    np.testing.assert_allclose(kl_dims, np.mean(0.5 * (mean**2 + np.exp(2 * log_std) - 1 - 2 * log_std), axis=0), rtol=1e-4)
    np.testing.assert_allclose(kl_dims.sum(), float(elbo_components(vae, x_test, 0).kl.mean()), rtol=1e-4)
    au = active_units(vae, x_test)
    np.testing.assert_allclose(au.variance, mean.var(axis=0), rtol=1e-4)
    assert au.count == int(np.sum(mean.var(axis=0) > 0.01)) and au.active.dtype == bool


def test_a_dimension_cut_off_from_the_data_is_reported_collapsed(trained, digits):
    """Zero the encoder weights of latent 0 (posterior = prior) and its decoder weights."""
    vae, _, _ = trained
    _, x_test = digits
    collapsed = nnx.clone(vae)
    head = collapsed.encoder.gaussian_head
    L = collapsed.latent_dim
    for col in (0, L):  # mean and log-std outputs of latent 0
        head.kernel[...] = head.kernel[...].at[:, col].set(0.0)
        head.bias[...] = head.bias[...].at[col].set(0.0)
    first = collapsed.decoder.layers[0]
    first.kernel[...] = first.kernel[...].at[0, :].set(0.0)
    kl_dims = kl_per_dimension(collapsed, x_test)
    au = active_units(collapsed, x_test)
    assert kl_dims[0] == 0.0 and np.all(kl_dims[1:] > 0)
    assert not au.active[0] and au.variance[0] == 0.0
    images = latent_traversal(collapsed, np.zeros(L), 0, np.linspace(-3, 3, 5))
    assert images.shape == (5, 64)
    np.testing.assert_allclose(images, np.broadcast_to(images[0], images.shape), atol=1e-6)
    moving = latent_traversal(vae, np.zeros(L), int(np.argmax(kl_per_dimension(vae, x_test))), np.linspace(-3, 3, 5))
    assert np.abs(moving[0] - moving[-1]).max() > 0.05
    assert np.all((images >= 0) & (images <= 1))


def test_interpolation_ends_at_the_endpoints(trained):
    vae, _, _ = trained
    a, b = np.array([1.0, -1.0, 0.5, 0.0]), np.array([-1.0, 1.0, 0.0, 0.5])
    for spherical in (False, True):
        path = interpolate(vae, a, b, 6, spherical=spherical)
        assert path.shape == (6, 64)
        np.testing.assert_allclose(path[0], vae.decode_mean(jnp.asarray(a[None], jnp.float32))[0], atol=1e-5)
        np.testing.assert_allclose(path[-1], vae.decode_mean(jnp.asarray(b[None], jnp.float32))[0], atol=1e-5)


def test_checkpoint_round_trip_without_pickle(trained, digits, tmp_path):
    vae, _, _ = trained
    _, x_test = digits
    path = save(vae, tmp_path / "digits_vae")
    assert path.suffix == ".npz"
    with zipfile.ZipFile(path) as z:
        assert "__config__.npy" in z.namelist()
    np.load(path, allow_pickle=False)  # readable with pickle off
    again = load(path)
    assert again.config == vae.config
    key = jax.random.key(3)
    np.testing.assert_array_equal(elbo(again, x_test, key), elbo(vae, x_test, key))
    np.testing.assert_array_equal(posterior_mean(again, x_test), posterior_mean(vae, x_test))
    # a flow VAE and a Gaussian one with a learned noise keep their extra parameters
    for other in (VAE(64, 2, hidden=(8,), posterior="radial", flow_length=2, rngs=nnx.Rngs(4)),
                  VAE(64, 2, hidden=(8,), likelihood="gaussian", rngs=nnx.Rngs(4))):
        p = save(other, tmp_path / "other.npz")
        np.testing.assert_array_equal(elbo(load(p), x_test[:5], key), elbo(other, x_test[:5], key))


def test_checkpoint_errors_are_clear(tmp_path, trained):
    vae, _, _ = trained
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a bayeskit VAE checkpoint"):
        load(tmp_path / "junk.npz")
    np.savez(tmp_path / "plain.npz", a=np.zeros(3))
    with pytest.raises(ValueError, match="__config__"):
        load(tmp_path / "plain.npz")
    # parameters that do not fit the stored config
    path = save(vae, tmp_path / "good.npz")
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["encoder/gaussian_head/bias"] = np.zeros(3, np.float32)
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ValueError, match="gaussian_head/bias"):
        load(tmp_path / "bad.npz")


def test_training_input_errors(digits):
    x_train, _ = digits
    vae = VAE(64, 2, hidden=(8,))
    with pytest.raises(ValueError, match="batch_size"):
        train(vae, x_train[:10], epochs=1, batch_size=32, key=0, progress=False)
    with pytest.raises(ValueError, match="epochs"):
        train(vae, x_train, epochs=0, key=0, progress=False)
    with pytest.raises(ValueError, match="key is required"):
        train(vae, x_train, epochs=1, key=None, progress=False)
    with pytest.raises(ValueError, match="x_test must have 64 columns"):
        train(vae, x_train, epochs=1, key=0, x_test=x_train[:, :10], progress=False)
    with pytest.raises(ValueError, match="learning_rate"):
        train(vae, x_train, epochs=1, key=0, learning_rate=-1.0, progress=False)
    with pytest.raises(ValueError, match="dim must be"):
        latent_traversal(vae, np.zeros(2), 5, [0.0, 1.0])
    with pytest.raises(ValueError, match="z must be a latent vector"):
        latent_traversal(vae, np.zeros(3), 0, [0.0, 1.0])
    flow = VAE(64, 2, hidden=(8,), posterior="planar", flow_length=1)
    with pytest.raises(ValueError, match="diagonal"):
        kl_per_dimension(flow, x_train[:5])
    with pytest.raises(ValueError, match="key is required"):
        active_units(flow, x_train[:5])
