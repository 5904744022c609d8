"""Headless tests of LastLayerExplorer: what is sent to the browser to draw, compared with the
bayeskit.bll library at the same settings (VBLL heads' own predictive and objective, the
baselines' predictive, bayeskit.bll.metrics' reliability bins and entropy).

Networks are trained for a few steps only (the tests check identities, not accuracy)."""

from __future__ import annotations

import threading

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from bayeskit.widgets.bll_explorer import (
    CONTROLS,
    GRID_SIZE,
    LABELS,
    N_BINS,
    LastLayerExplorer,
    _disc_head_optimum,
    _disc_predictive,
    baseline,
    load_head,
    training_key,
)
from flax import nnx

from bayeskit.bll import VBLLDiscClassification, VBLLRegression
from bayeskit.bll import metrics as M

STEPS = 40
ATOL = 3e-5  # float32 on the wire


@pytest.fixture(scope="module", autouse=True)
def _no_training_left_running():
    yield
    for thread in threading.enumerate():
        if thread.name == "LastLayerExplorer-warm-up":
            thread.join()


@pytest.fixture(scope="module")
def gap():
    return LastLayerExplorer(warm_up=False, steps=STEPS, width=16)


@pytest.fixture(scope="module")
def moons():
    return LastLayerExplorer(warm_up=False, steps=STEPS, width=16, dataset="two moons")


def _grads(head, phi, y):
    """Gradient of the library head's own objective in its weight posterior (noise held fixed)."""
    graphdef, params = nnx.split(head, nnx.Param)

    def loss(p):
        return nnx.merge(graphdef, p).loss(phi, y)

    grads = jax.grad(loss)(params)
    return {name: np.asarray(grads[name][...]) for name in ("mean", "log_diag", "factor")}


def test_displays_itself_and_labels_everything(gap):
    s = gap.state
    assert set(CONTROLS) <= set(s) and s["task"] == "regression" and s["method"] == "VBLL"
    bundle = gap._repr_mimebundle_()
    data = bundle[0] if isinstance(bundle, tuple) else bundle
    assert "application/vnd.jupyter.widget-view+json" in data
    assert "What to try" in gap.help.value
    layers = gap.canvas.layers()
    labels = [layer.get("label", "") for layer in layers]
    assert "±2 sd (95%) predictive band of y" in labels
    assert LABELS["gap"] in labels and LABELS["tails"] in labels
    spans = [layer for layer in layers if layer["kind"] == "span"]
    assert any(layer["x0"] == -0.5 and layer["x1"] == 1.0 and layer["text"] == "gap" for layer in spans)
    for layer in layers:  # every array a layer names is sent, with the same length as its partner
        for key in ("x", "y", "lower", "upper", "values"):
            if key in layer:
                assert gap.canvas.array(layer[key]).size > 0


def test_vbll_band_equals_the_library_head_at_its_optimum(gap):
    gap.set(method="VBLL", prior_scale=3.0, regularization_weight=2.0, noise=0.2)
    phi_train, phi_eval, _ = gap.features()
    y = gap.data().y_train
    n, d = phi_train.shape
    head = VBLLRegression(d, 1, regularization_weight=2.0 / n, prior_scale=3.0, rngs=nnx.Rngs(0), dtype=jnp.float64)
    load_head(head, gap.head, 0.2)
    mean, var = head.predict(phi_eval)
    c = gap.canvas
    np.testing.assert_allclose(c.array("mean"), mean[:, 0], atol=ATOL)
    np.testing.assert_allclose(c.array("upper"), mean[:, 0] + 2 * np.sqrt(var[:, 0]), atol=ATOL)
    np.testing.assert_allclose(c.array("lower"), mean[:, 0] - 2 * np.sqrt(var[:, 0]), atol=ATOL)
    # the closed-form head is the minimiser of the library's own VBLL objective
    grads = _grads(head, phi_train, y)
    assert max(np.max(np.abs(g)) for g in grads.values()) < 1e-7
    # ... and the check can fail: a perturbed covariance is not a minimiser
    head.log_diag[...] = head.log_diag[...] + 0.05
    assert max(np.max(np.abs(g)) for g in _grads(head, phi_train, y).values()) > 1e-3


def test_sliders_move_the_band_without_retraining(gap):
    gap.set(method="VBLL", prior_scale=1.0, regularization_weight=1.0, noise=0.1)
    seconds = gap.state["train_seconds"]
    width = gap.canvas.array("upper") - gap.canvas.array("lower")
    gap.set(noise=0.3)
    wider = gap.canvas.array("upper") - gap.canvas.array("lower")
    assert np.all(wider > width)  # aleatoric noise widens the band everywhere
    gap.set(noise=0.1, regularization_weight=10.0)  # a heavier KL term: broader head posterior
    assert gap.state["mean_sd_gap"] > np.mean(width[gap.data().region == 1]) / 4
    assert gap.state["train_seconds"] == seconds  # nothing was trained again


def test_switching_method_changes_the_band_to_the_baselines_predictive(gap):
    gap.set(method="VBLL", prior_scale=1.0, regularization_weight=1.0, noise=0.1)
    vbll_upper = gap.canvas.array("upper").copy()
    gap.set(method="Laplace", prior_scale=2.0)
    laplace_upper = gap.canvas.array("upper").copy()
    assert np.max(np.abs(laplace_upper - vbll_upper)) > 1e-2
    # the library's LastLayerLaplace, trained the same way, with the explorer's prior and its learned noise
    split = gap.data()
    ref = baseline("Laplace", "regression", 16, STEPS, split.x_train.shape[0], prior_precision=16 / 2.0)  # d / prior_scale
    ref.fit(split.x_train, split.y_train, training_key("Laplace", 16, 0))
    noise = float(ref.noise_std_)
    gap.set(noise=noise)
    pred = ref.predict(split.x_test)
    c = gap.canvas
    np.testing.assert_allclose(c.array("mean"), pred.mean, atol=ATOL)
    np.testing.assert_allclose(c.array("upper"), pred.mean + 2 * np.sqrt(pred.variance), atol=ATOL)
    # MAP: the network's mean with the slider's noise only, the same width everywhere
    gap.set(method="MAP", noise=0.1)
    map_model = baseline("MAP", "regression", 16, STEPS, split.x_train.shape[0])
    map_model.fit(split.x_train, split.y_train, training_key("MAP", 16, 0))
    np.testing.assert_allclose(c.array("mean"), map_model.predict(split.x_test).mean, atol=ATOL)
    np.testing.assert_allclose(c.array("upper") - c.array("lower"), 0.4, atol=ATOL)
    gap.set(method="VBLL", prior_scale=1.0)


def test_entropy_map_and_reliability_bins_match_the_library(moons):
    moons.set(method="VBLL", prior_scale=2.0, noise=0.3, regularization_weight=1.0)
    s = moons.state
    assert s["task"] == "classification"
    c = moons.canvas
    entropy = c.array("entropy")
    assert entropy.shape == (GRID_SIZE * GRID_SIZE,)
    assert np.all(entropy >= -1e-6) and np.all(entropy <= np.log(2) + 1e-6)
    assert entropy.max() - entropy.min() > 0.3  # the map is not flat
    heat = [layer for layer in c.layers() if layer["kind"] == "heatmap"][0]
    assert (heat["nx"], heat["ny"], heat["vmin"], heat["vmax"]) == (GRID_SIZE, GRID_SIZE, 0.0, float(np.log(2)))
    # the library's discriminative VBLL head with the explorer's last layer and logit draws
    phi_train, phi_eval, _ = moons.features()
    split = moons.data()
    n, d = phi_train.shape
    head = VBLLDiscClassification(d, 2, regularization_weight=1.0 / n, prior_scale=2.0, rngs=nnx.Rngs(0),
                                  dtype=jnp.float64)
    load_head(head, moons.head, 0.3)
    probs = np.asarray(head.predict_proba_from_draws(phi_eval, moons.logit_draws(phi_eval.shape[0], 2)))
    g = GRID_SIZE**2
    np.testing.assert_allclose(entropy, M.predictive_entropy(probs[:g]), atol=ATOL)
    # the head minimises the library's objective (a few Newton rounds from the trained head)
    grads = _grads(head, phi_train, split.y_train)
    assert max(np.max(np.abs(v)) for v in grads.values()) < 1e-5
    # reliability diagram: the bins of bayeskit.bll.metrics on the test set
    p_test = probs[g:g + split.x_test.shape[0]]
    bins = M.reliability_bins(split.y_test, p_test, n_bins=N_BINS)
    drawn = c.array("accuracy")
    np.testing.assert_allclose(drawn[bins.counts > 0], bins.accuracy[bins.counts > 0], atol=ATOL)
    assert np.all(np.isnan(drawn[bins.counts == 0]))
    assert s["ece"] == pytest.approx(bins.ece, abs=1e-6)
    assert s["ood_auroc"] == pytest.approx(M.ood_auroc(M.predictive_entropy(p_test),
                                                       M.predictive_entropy(probs[g + split.x_test.shape[0]:])), abs=1e-6)


def test_classification_sliders_do_not_recompile(moons):
    moons.set(method="VBLL", prior_scale=1.0, noise=0.1)
    compiled = (_disc_head_optimum._cache_size(), _disc_predictive._cache_size())
    before = moons.canvas.array("entropy").copy()
    for kwargs in (dict(prior_scale=0.3), dict(noise=1.0), dict(regularization_weight=5.0), dict(prior_scale=30.0)):
        moons.set(**kwargs)
    assert (_disc_head_optimum._cache_size(), _disc_predictive._cache_size()) == compiled
    assert np.max(np.abs(moons.canvas.array("entropy") - before)) > 1e-2  # the picture followed
    moons.set(prior_scale=1.0, noise=0.1, regularization_weight=1.0)
    np.testing.assert_allclose(moons.canvas.array("entropy"), before, atol=1e-6)  # and is reproducible


@pytest.mark.parametrize("controls, name", [
    (dict(prior_scale=-1.0), "prior_scale"), (dict(prior_scale=1e6), "prior_scale"),
    (dict(noise=float("nan")), "noise"), (dict(regularization_weight="a lot"), "regularization_weight"),
    (dict(method="bayes-by-backprop"), "method"), (dict(width=17), "width"), (dict(width=True), "width"),
    (dict(dataset="mnist"), "dataset"), (dict(temperature=1.0), "temperature"),
    (dict(prior_scale=2.0, noise=0.0), "noise"),
])
def test_bad_settings_raise_and_change_nothing(gap, controls, name):
    before = dict(gap.state)
    seq = gap.canvas.seq
    with pytest.raises(ValueError, match=name):
        gap.set(**controls)
    assert dict(gap.state) == before and gap.canvas.seq == seq


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="steps"):
        LastLayerExplorer(steps=0, warm_up=False)
    with pytest.raises(ValueError, match="seed"):
        LastLayerExplorer(seed=-1, warm_up=False)
    with pytest.raises(ValueError, match="method"):
        LastLayerExplorer(method="nope", warm_up=False)


def test_retrain_trains_the_current_method_again_with_a_new_seed(gap):
    gap.set(method="VBLL", prior_scale=1.0, regularization_weight=1.0, noise=0.1)
    before = gap.canvas.array("mean").copy()
    gap.retrain()
    assert gap.state["retrains"] == 1
    assert np.max(np.abs(gap.canvas.array("mean") - before)) > 1e-4  # a different network
    gap.set(method="MAP")
    assert gap.state["retrains"] == 0  # the other methods keep their networks
    gap.set(method="VBLL")
    assert gap.state["retrains"] == 1
