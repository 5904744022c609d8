"""Headless tests of bayeskit.widgets.vae_explorer.LatentExplorer: what is sent to the canvas.

The drawn arrays (float32 bytes traits) are compared with the library computed independently:
the image with ``vae.decode`` at the latent point, the scatter with ``vae.encode`` (and, for a
PCA view, with numpy's SVD of the means), the flow panel with the fitted flow's ``log_prob``.
"""

from __future__ import annotations

import threading

import jax
import numpy as np
import pytest
from bayeskit.data import load_digits
from bayeskit.widgets.vae_explorer import FLOW_LENGTHS, LatentExplorer
from flax import nnx

from bayeskit.flows import grid_points, standard_targets
from bayeskit.vae import VAE

ATOL = 1e-5  # float32 on the wire and float32 networks


@pytest.fixture(scope="module", autouse=True)
def _join_background_work():
    """Join the explorers' training / flow threads after this module (an interpreter that exits
    while XLA compiles in another thread crashes)."""
    yield
    for thread in threading.enumerate():
        if thread.name.startswith("LatentExplorer-"):
            thread.join()


@pytest.fixture(scope="module")
def digits():
    d = load_digits()
    return d.X[:400], d.X[400:520], d.y[400:520]


@pytest.fixture(scope="module")
def explorer(digits):
    x_train, x_test, y_test = digits
    vae = VAE(data_dim=64, latent_dim=2, hidden=(32,), rngs=nnx.Rngs(3))
    ex = LatentExplorer(vae, x_train=x_train, x_test=x_test, y_test=y_test, flow_steps=60,
                        flow_length=2, epochs=2)
    ex.wait_ready()
    return ex


def _decode(vae, z):
    return np.asarray(jax.nn.sigmoid(vae.decode(np.asarray(z, np.float32)[None, :])))[0]


def test_decoded_image_equals_vae_decode_at_the_latent_point(explorer):
    explorer.set(z1=1.25, z2=-0.7)
    assert explorer.state["latent_code"] == pytest.approx((1.25, -0.7))
    drawn = explorer.decoded_image()
    assert drawn.shape == (8, 8)
    np.testing.assert_allclose(drawn.ravel(), _decode(explorer.vae, [1.25, -0.7]), atol=ATOL)
    # and it moves with the point: a different point draws a different image
    explorer.set(z1=-2.0)
    assert not np.allclose(explorer.decoded_image().ravel(), drawn.ravel(), atol=1e-3)


def test_pointer_message_decodes_once_at_the_pointer(explorer):
    seq = explorer.canvas.seq
    explorer._on_canvas_message(explorer.canvas, {"type": "pointer", "z1": 0.5, "z2": 2.25}, [])
    assert explorer.canvas.seq == seq + 1, "z1 and z2 from one pointer message must give one update"
    assert explorer.canvas.pointer == [0.5, 2.25]
    np.testing.assert_allclose(explorer.decoded_image().ravel(), _decode(explorer.vae, [0.5, 2.25]), atol=ATOL)
    # positions outside the box are clipped to it, not refused
    explorer._on_canvas_message(explorer.canvas, {"type": "pointer", "z1": 9.0, "z2": -9.0}, [])
    assert (explorer.state["z1"], explorer.state["z2"]) == (4.0, -4.0)


def test_scatter_equals_the_encoder_means(explorer, digits):
    _, x_test, y_test = digits
    drawn = explorer.canvas.array("points").reshape(-1, 2)
    means = np.asarray(explorer.vae.encode(np.asarray(x_test, np.float32))[0])
    np.testing.assert_allclose(drawn, means, atol=ATOL)
    np.testing.assert_array_equal(explorer.canvas.array("classes"), y_test.astype(np.float32))


def test_training_adds_epochs_and_changes_the_elbo(explorer, digits):
    before = dict(explorer.state)
    points_before = explorer.canvas.array("points").copy()
    explorer.train_more(3)
    after = explorer.state
    assert after["epochs_trained"] == before["epochs_trained"] + 3
    assert len(after["elbo_history"]) == len(before["elbo_history"]) + 1
    assert np.isfinite(after["test_elbo"])
    if before["test_elbo"] is not None:
        assert after["test_elbo"] != before["test_elbo"]
    # the redraw used the trained weights
    assert not np.allclose(explorer.canvas.array("points"), points_before)
    _, x_test, _ = digits
    np.testing.assert_allclose(explorer.canvas.array("points").reshape(-1, 2),
                               np.asarray(explorer.vae.encode(np.asarray(x_test, np.float32))[0]), atol=ATOL)
    explorer.train_more(2)
    assert explorer.state["test_elbo"] != after["test_elbo"]
    assert explorer.state["epochs_trained"] == after["epochs_trained"] + 2


def test_the_callers_vae_is_not_trained(digits):
    x_train, x_test, y_test = digits
    vae = VAE(data_dim=64, latent_dim=2, hidden=(16,), rngs=nnx.Rngs(5))
    before = np.asarray(vae.decode(np.zeros((1, 2), np.float32)))
    ex = LatentExplorer(vae, x_train=x_train, x_test=x_test, y_test=y_test, flow_steps=20, flow_length=1)
    ex.train_more(1)
    ex.wait_ready()
    np.testing.assert_array_equal(np.asarray(vae.decode(np.zeros((1, 2), np.float32))), before)


def test_pca_view_of_a_larger_latent_space(digits):
    x_train, x_test, y_test = digits
    vae = VAE(data_dim=64, latent_dim=4, hidden=(16,), rngs=nnx.Rngs(1))
    ex = LatentExplorer(vae, x_train=x_train, x_test=x_test, y_test=y_test, flow_steps=20, flow_length=1)
    ex.wait_ready()
    assert "dims 1 and 2" in ex.state["plane"]
    means = np.asarray(vae.encode(np.asarray(x_test, np.float32))[0], dtype=np.float64)
    np.testing.assert_allclose(ex.canvas.array("points").reshape(-1, 2), means[:, :2], atol=ATOL)
    ex.set(z1=1.0, z2=0.5)
    assert ex.state["latent_code"] == pytest.approx((1.0, 0.5, 0.0, 0.0))

    ex.set(projection="PCA of means", z1=1.0, z2=0.5)
    assert "principal components" in ex.state["plane"]
    centred = means - means.mean(axis=0)
    cov = centred.T @ centred / len(centred)
    lam, vec = np.linalg.eigh(cov)
    top = vec[:, ::-1][:, :2]
    drawn = ex.canvas.array("points").reshape(-1, 2)
    # the same plane up to the sign of each axis; the variance along each axis is an eigenvalue
    for j in range(2):
        ref = centred @ top[:, j]
        assert abs(abs(np.corrcoef(drawn[:, j], ref)[0, 1]) - 1) < 1e-5
        assert np.var(drawn[:, j]) == pytest.approx(lam[::-1][j], rel=1e-4)
    code = np.asarray(ex.state["latent_code"])
    # the decoded point lies in that plane: mean + p1 v1 + p2 v2
    np.testing.assert_allclose(np.abs((code - means.mean(axis=0)) @ top), [1.0, 0.5], atol=1e-4)
    np.testing.assert_allclose(ex.decoded_image().ravel(), _decode(vae, code), atol=ATOL)


def test_switching_flow_length_draws_that_fits_density(explorer):
    explorer.set(flow_length=1)
    explorer.set(flow_length=2)
    assert set(explorer.state["cached_flows"]) >= {1, 2}
    target = explorer.state["flow_target"]
    fits = {k: explorer.flow_fit(target, k) for k in (1, 2)}
    for k in (1, 2):
        explorer.set(flow_length=k)
        assert explorer.state["flow_kl"] == fits[k]["kl"]
        drawn = explorer.flow_canvas.array("density")
        # independent check: the fitted flow's own log_prob on the grid cells
        tg = standard_targets()[target]
        _, _, pts, area = grid_points(tg.view, explorer.flow_canvas.grid, dtype=np.float32)
        q = np.exp(np.asarray(fits[k]["flow"].log_prob(pts.reshape(-1, 2)), dtype=np.float64))
        np.testing.assert_allclose(drawn, q, rtol=1e-3, atol=1e-6)
        assert drawn.sum() * area == pytest.approx(fits[k]["mass"], rel=1e-4)
    assert not np.allclose(fits[1]["density"], fits[2]["density"])
    # a cached K is not fitted again: the same object comes back, and the target panel is p
    assert explorer.flow_fit(target, 1) is fits[1]
    target_drawn = explorer.flow_canvas.array("target")
    assert target_drawn.sum() * area == pytest.approx(1.0, rel=1e-5)


@pytest.mark.parametrize(
    ("controls", "message"),
    [
        ({"z1": float("nan")}, "z1"),
        ({"z2": 7.0}, "z2"),
        ({"latent_dim": 3}, "latent_dim"),
        ({"latent_dim": True}, "latent_dim"),
        ({"flow_length": 3}, "flow_length"),
        ({"flow_target": "moon"}, "flow_target"),
        ({"beta": -1.0}, "beta"),
        ({"projection": "tsne"}, "projection"),
        ({"epochs": 0}, "epochs"),
        ({"colour": "red"}, "unknown control"),
    ],
)
def test_bad_controls_raise_and_change_nothing(explorer, controls, message):
    before = dict(explorer.state)
    good = {"z2": 0.25} if "z1" in controls else {"z1": 0.25}  # a valid change that must not happen
    with pytest.raises(ValueError, match=message):
        explorer.set(**good, **controls)
    after = dict(explorer.state)
    assert (after["z1"], after["z2"], after["seq"]) == (before["z1"], before["z2"], before["seq"])


def test_bad_constructor_arguments(digits):
    x_train, x_test, y_test = digits
    with pytest.raises(TypeError, match="vae"):
        LatentExplorer("not a vae")
    with pytest.raises(ValueError, match="x_test and y_test"):
        LatentExplorer(x_train=x_train, x_test=x_test, y_test=y_test[:-1])
    with pytest.raises(ValueError, match="both x_test and y_test"):
        LatentExplorer(x_train=x_train, x_test=x_test)
    with pytest.raises(ValueError, match="NaN"):
        LatentExplorer(x_train=x_train, x_test=np.full_like(x_test, np.nan), y_test=y_test)
    with pytest.raises(ValueError, match="square images"):
        LatentExplorer(x_train=x_train[:, :60], x_test=x_test[:, :60], y_test=y_test)
    with pytest.raises(ValueError, match="classes"):
        LatentExplorer(x_train=x_train, x_test=x_test, y_test=y_test + 10)
    with pytest.raises(ValueError, match="data_dim"):
        LatentExplorer(VAE(data_dim=16, latent_dim=2, hidden=(4,)), x_train=x_train, x_test=x_test, y_test=y_test)
    with pytest.raises(ValueError, match="flow_steps"):
        LatentExplorer(VAE(data_dim=64, latent_dim=2, hidden=(4,)), x_train=x_train, x_test=x_test,
                       y_test=y_test, flow_steps=0)
    assert FLOW_LENGTHS == tuple(sorted(FLOW_LENGTHS))


@pytest.mark.slow
def test_switching_latent_size_builds_trains_and_projects(digits):
    """A new latent size builds and trains a model off the UI path; set() waits for it; the view
    then shows that model's means, and switching back is instant (the first model is kept)."""
    x_train, x_test, y_test = digits
    vae = VAE(data_dim=64, latent_dim=2, hidden=(16,), rngs=nnx.Rngs(2))
    ex = LatentExplorer(vae, x_train=x_train, x_test=x_test, y_test=y_test, initial_epochs=2, flow_steps=20)
    first = ex.vae
    ex.set(latent_dim=4)
    s = ex.state
    assert s["latent_dim"] == 4 and s["epochs_trained"] == 2 and not s["training"]
    assert len(s["latent_code"]) == 4 and np.isfinite(s["test_elbo"])
    means = np.asarray(ex.vae.encode(np.asarray(x_test, np.float32))[0])
    np.testing.assert_allclose(ex.canvas.array("points").reshape(-1, 2), means[:, :2], atol=ATOL)
    ex.set(latent_dim=2)
    assert ex.vae is first and ex.state["latent_dim"] == 2
    np.testing.assert_allclose(ex.canvas.array("points").reshape(-1, 2),
                               np.asarray(first.encode(np.asarray(x_test, np.float32))[0]), atol=ATOL)
