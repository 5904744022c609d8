"""Headless tests of bayeskit.widgets.FilterExplorer: what is sent to the browser to draw, compared
with independent calls of the bayeskit filters (public API) on the same simulated data."""

from __future__ import annotations

import threading

import jax
import numpy as np
import pytest
from bayeskit.widgets import FilterExplorer
from bayeskit.widgets.filter_explorer import (
    CONTROLS,
    METHODS,
    N_TRAIN,
    NEURON_CHOICES,
    T,
    decoding_data,
    neuron_order,
    simulate_tracking,
    tracking_models,
)

from bayeskit.filters import (
    LinearGaussianSSM,
    extended_kalman_filter,
    kalman_filter,
    rts_smoother,
    unscented_kalman_filter,
)
from bayeskit.filters.dkf import DiscriminativeKalmanFilter

ATOL = 2e-5  # float32 on the wire


def _join_warm_up_threads():
    for thread in threading.enumerate():
        if thread.name == "FilterExplorer-warm-up":
            thread.join()


@pytest.fixture(scope="module", autouse=True)
def _no_compilation_left_running():
    yield
    _join_warm_up_threads()


@pytest.fixture(scope="module")
def explorer():
    return FilterExplorer(warm_up=False)


def _drawn_estimate(ex):
    c = ex.canvas
    return np.stack([c.array("est_px"), c.array("est_py")], axis=1)


def _reference_data(ex):
    s = ex.state
    return simulate_tracking(s["seed"], s["process_noise"], s["observation_noise"], s["missing"], s["nonlinearity"])


def test_constructs_displays_and_labels_everything(explorer):
    s = explorer.state
    assert set(CONTROLS) <= set(s)
    assert s["view"] == "tracking" and s["method"] == "KF" and s["showing"] == "KF filter"
    bundle = explorer._repr_mimebundle_()
    data = bundle[0] if isinstance(bundle, tuple) else bundle
    assert "application/vnd.jupyter.widget-view+json" in data
    assert "What to try" in explorer.help.value
    layers = explorer.canvas.layers()
    assert {layer["kind"] for layer in layers} == {"line", "points", "band", "ticks"}
    assert all(len(layer["label"]) > 10 for layer in layers)  # every band and marker is labelled
    labels = " ".join(layer["label"] for layer in layers)
    assert "±2 sd" in labels and "95%" in labels and "missing" in labels
    for layer in layers:  # every array a layer names is sent, with T values (or ellipse points)
        for key in ("x", "y", "lower", "upper"):
            if key in layer:
                assert explorer.canvas.array(layer[key]).size > 0 or "missing" in layer[key]


def test_kf_filter_and_smoother_are_the_library_kalman_filter(explorer):
    explorer.set(method="KF", estimate="filter", nonlinearity=0.0, missing=0.2, process_noise=0.05)
    data = _reference_data(explorer)
    linear, _ = tracking_models(0.05, explorer.state["observation_noise"], 0.0)
    filtered = kalman_filter(linear, data.observations)
    np.testing.assert_allclose(_drawn_estimate(explorer), np.asarray(filtered.means)[:, :2], atol=ATOL * 20)
    sd = np.sqrt(np.asarray(filtered.covariances)[:, 0, 0])
    drawn_sd = (explorer.canvas.array("upper_px") - explorer.canvas.array("lower_px")) / 4
    np.testing.assert_allclose(drawn_sd, sd, atol=ATOL * 10)
    # the truth and the observations drawn are the simulated data
    np.testing.assert_allclose(explorer.canvas.array("true_px"), data.states[:, 0], atol=ATOL * 20)
    rmse = np.sqrt(np.mean(np.sum((np.asarray(filtered.means)[:, :2] - data.states[:, :2]) ** 2, 1)))
    assert explorer.state["rmse"] == pytest.approx(rmse, rel=1e-9)

    explorer.set(estimate="smoother")
    smoothed = rts_smoother(linear, data.observations)
    assert explorer.state["showing"] == "KF smoother"
    np.testing.assert_allclose(_drawn_estimate(explorer), np.asarray(smoothed.means)[:, :2], atol=ATOL * 20)
    assert explorer.state["rmse"] < rmse  # the smoother uses the future too
    explorer.set(estimate="filter")


def test_missing_fraction_masks_the_right_points(explorer):
    explorer.set(missing=0.3, seed=3)
    u = np.random.default_rng(3)
    u.standard_normal(4), u.standard_normal((T, 4)), u.standard_normal((T, 2))
    expected = np.flatnonzero(u.uniform(size=T) < 0.3)
    s = explorer.state
    assert s["missing_steps"] == tuple(expected) and s["n_missing"] == expected.size > 30
    c = explorer.canvas
    obs_x = c.array("obs_x")
    assert np.all(np.isnan(obs_x[expected])) and np.isfinite(np.delete(obs_x, expected)).all()
    np.testing.assert_allclose(c.array("missing_t"), expected * 0.1, atol=1e-6)
    # only the mask changes: the observed values and the true path stay as they were
    before = explorer.tracking_data()
    explorer.set(missing=0.5)
    after = explorer.tracking_data()
    assert set(s["missing_steps"]) <= set(explorer.state["missing_steps"])
    np.testing.assert_array_equal(after.states, before.states)
    both = after.observed & before.observed
    np.testing.assert_array_equal(after.observations[both], before.observations[both])
    explorer.set(missing=0.1, seed=0)


def test_data_fixed_under_filter_settings_and_regenerated_under_noise(explorer):
    explorer.set(method="KF", nonlinearity=0.2)
    data = explorer.tracking_data()
    explorer.set(method="UKF")
    assert explorer.tracking_data() is data  # same simulated data for another method
    explorer.set(observation_noise=1.0)
    changed = explorer.tracking_data()
    assert not np.allclose(np.nan_to_num(changed.observations), np.nan_to_num(data.observations))
    np.testing.assert_array_equal(changed.states, data.states)  # same path: only r changed
    explorer.set(observation_noise=0.25, nonlinearity=0.0, method="KF")


@pytest.mark.parametrize("method", ["EKF", "UKF"])
def test_nonlinear_filters_are_the_library_filters(explorer, method):
    explorer.set(method=method, nonlinearity=0.4, missing=0.1)
    s = explorer.state
    data = _reference_data(explorer)
    _, model = tracking_models(s["process_noise"], s["observation_noise"], 0.4)
    reference = (extended_kalman_filter if method == "EKF" else unscented_kalman_filter)(model, data.observations)
    np.testing.assert_allclose(_drawn_estimate(explorer), np.asarray(reference.means)[:, :2], atol=ATOL * 20)
    assert explorer.state["estimate"] == "filter" and explorer.controls["estimate"].disabled is True


def test_with_a_linear_observation_ekf_ukf_equal_the_kf_and_the_pf_is_close(explorer):
    explorer.set(nonlinearity=0.0, method="KF", missing=0.1)
    kf = _drawn_estimate(explorer).copy()
    for method in ("EKF", "UKF"):
        explorer.set(method=method)
        np.testing.assert_allclose(_drawn_estimate(explorer), kf, atol=1e-4)
    explorer.set(method="PF")
    pf = _drawn_estimate(explorer)
    assert np.sqrt(np.mean((pf - kf) ** 2)) < 0.1  # Monte-Carlo error of 500 particles
    assert explorer.state["rmse"] == pytest.approx(explorer.set(method="KF").state["rmse"], rel=0.15)


def test_ignoring_the_nonlinearity_costs_the_kf(explorer):
    explorer.set(nonlinearity=0.6, method="KF")
    kf = explorer.state["rmse"]
    assert "linearised at the origin" in explorer.note.value
    explorer.set(method="EKF")
    assert explorer.state["rmse"] < 0.5 * kf
    explorer.set(nonlinearity=0.0, method="KF")


def test_interaction_does_not_recompile():
    """After the warm-up, no control of either view compiles anything in the main thread."""
    ex = FilterExplorer(warm_up=True, n_neurons=NEURON_CHOICES[-1])
    ex.wait_ready()
    compiles = []
    main = threading.main_thread()

    def on_event(name, duration, **kwargs):
        if "compile" in name and threading.current_thread() is main:
            compiles.append(name)

    jax.monitoring.register_event_duration_secs_listener(on_event)
    try:
        for method in METHODS:
            ex.set(method=method, nonlinearity=0.3, missing=0.25)
            ex.set(process_noise=0.1, observation_noise=0.5)
        ex.set(method="KF", estimate="smoother").set(missing=0.0).set(seed=5).set(seed=0)
        ex.set(view="decoding")
        for n in NEURON_CHOICES[:3]:
            ex.set(n_neurons=n)
        ex._decoding_cache.pop((0, 30))  # a fresh fit for a new N: same shapes, nothing compiles
        ex.set(n_neurons=30)
    finally:
        jax.monitoring.unregister_event_duration_listener(on_event)
    assert compiles == []
    assert max(ex.handler_times[-len(METHODS) * 2:]) < 2.0  # no 0.3 s+ compilation hiding in there


def test_decoding_view_is_the_library_dkf_and_kalman_filter(explorer):
    explorer.set(view="decoding", n_neurons=20, seed=0)
    velocity, counts, result = explorer.decoding_result()
    # the data are simulate_cursor's, neurons in spread order
    assert velocity.shape == (N_TRAIN + T, 2) and counts.shape == (N_TRAIN + T, 200)
    v2, c2 = decoding_data(0)
    np.testing.assert_array_equal(counts, c2)
    # independent: the DKF fitted on the 20 used neurons only (no padding)
    x = counts[:, :20]
    dkf = DiscriminativeKalmanFilter("nadaraya-watson", seed=0).fit(x[:N_TRAIN], velocity[:N_TRAIN])
    reference = np.asarray(dkf.filter(x[N_TRAIN:]).means)
    c = explorer.canvas
    np.testing.assert_allclose(c.array("dkf_vx"), reference[:, 0], atol=1e-4)
    # the Kalman filter with the full 20-dimensional linear observation model
    dyn = dkf.dynamics_
    zc = velocity[:N_TRAIN] - dyn.state_mean
    b = x[:N_TRAIN].mean(0)
    H = np.linalg.lstsq(zc, x[:N_TRAIN] - b, rcond=None)[0].T
    R = np.cov((x[:N_TRAIN] - b - zc @ H.T).T)
    model = LinearGaussianSSM(dyn.transition, H, dyn.process_cov, R, np.zeros(2), dyn.stationary_cov)
    kf = np.asarray(kalman_filter(model, x[N_TRAIN:] - b).means) + dyn.state_mean
    np.testing.assert_allclose(c.array("kf_vx"), kf[:, 0], atol=1e-4)
    truth = velocity[N_TRAIN:]
    s = explorer.state
    assert s["rmse_dkf"] == pytest.approx(np.sqrt(np.mean(np.sum((truth - reference) ** 2, 1))), rel=1e-4)
    assert s["rmse_kf"] == pytest.approx(np.sqrt(np.mean(np.sum((truth - kf) ** 2, 1))), rel=1e-6)
    assert "DKF" in " ".join(layer["label"] for layer in c.layers())
    # more neurons: a different fit, drawn, and the tracking controls are hidden
    explorer.set(n_neurons=200)
    assert not np.allclose(c.array("dkf_vx"), reference[:, 0])
    assert explorer._tracking_box.layout.display == "none"
    explorer.set(view="tracking", n_neurons=50)


def test_neuron_order_spreads_directions():
    order = neuron_order(200)
    assert sorted(order) == list(range(200))
    assert list(order[:4]) == [0, 100, 50, 150]
    gaps = np.diff(np.sort(order[:20]))
    assert gaps.max() <= 2 * gaps.min() + 1


def test_resample_button_moves_to_the_next_seed(explorer):
    seed = explorer.state["seed"]
    before = explorer.tracking_data().states.copy()
    explorer.resample_button.click()
    assert explorer.state["seed"] == seed + 1
    assert not np.allclose(explorer.tracking_data().states, before)
    explorer.set(seed=seed)


@pytest.mark.parametrize(
    ("controls", "name"),
    [
        ({"process_noise": -1.0}, "process_noise"),
        ({"observation_noise": 1e3}, "observation_noise"),
        ({"missing": 0.95}, "missing"),
        ({"missing": float("nan")}, "missing"),
        ({"nonlinearity": "strong"}, "nonlinearity"),
        ({"method": "EnKF"}, "method"),
        ({"estimate": "both"}, "estimate"),
        ({"view": "3d"}, "view"),
        ({"seed": -1}, "seed"),
        ({"seed": 1.5}, "seed"),
        ({"n_neurons": 7}, "n_neurons"),
        ({"particles": 10}, "particles"),
        ({"missing": 0.2, "method": "??"}, "method"),
    ],
)
def test_bad_values_raise_and_change_nothing(explorer, controls, name):
    before = dict(explorer.state)
    with pytest.raises(ValueError, match=name):
        explorer.set(**controls)
    assert dict(explorer.state) == before


def test_aliases():
    assert FilterExplorer._validate("method", "particle") == "PF"
    assert FilterExplorer._validate("method", "unscented") == "UKF"
    assert FilterExplorer._validate("view", "dkf") == "decoding"
