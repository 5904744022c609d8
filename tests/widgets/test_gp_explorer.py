"""Headless tests of bayeskit.widgets.GPExplorer: state, and what is sent to the browser to draw.

The drawn arrays (float32 bytes traits of the canvas) are compared with scikit-learn's
GaussianProcessRegressor on the same points and hyperparameters, an independent implementation.
"""

from __future__ import annotations

import re
import threading

import numpy as np
import pytest
from bayeskit.widgets import GPExplorer, posterior_on_grid
from bayeskit.widgets.gp_explorer import (
    CONTROLS,
    KERNEL_NAMES,
    LABELS,
    N_GRID,
    N_SAMPLES,
    make_kernel,
)
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process import kernels as sk

from bayeskit.gp import GPRegressor, log_marginal_likelihood

# float32 on the wire: ~7 significant digits
ATOL = 2e-5


def _sklearn_kernel(state):
    name, v = state["kernel"], state["variance"]
    ls = state["lengthscale"]
    base = {
        "RBF": lambda: sk.RBF(ls),
        "Matern 1/2": lambda: sk.Matern(ls, nu=0.5),
        "Matern 3/2": lambda: sk.Matern(ls, nu=1.5),
        "Matern 5/2": lambda: sk.Matern(ls, nu=2.5),
        "Periodic": lambda: sk.ExpSineSquared(ls, state["period"]),
        "Rational quadratic": lambda: sk.RationalQuadratic(ls, state["alpha"]),
        "Linear": lambda: sk.DotProduct(np.sqrt(state["bias"])),
    }[name]()
    return sk.ConstantKernel(v) * base


def _reference(ex: GPExplorer):
    """(mean, sd of f, LML) on the explorer's grid from scikit-learn, fixed hyperparameters."""
    s = ex.state
    X, y = np.array(s["X"])[:, None], np.array(s["y"])
    gp = GaussianProcessRegressor(_sklearn_kernel(s), alpha=s["noise"], optimizer=None).fit(X, y)
    grid = ex.canvas.array("x_grid").astype(np.float64)[:, None]
    mean, sd = gp.predict(grid, return_std=True)
    return mean, sd, gp.log_marginal_likelihood_value_


def _drawn(ex: GPExplorer):
    c = ex.canvas
    mean = c.array("mean")
    return mean, (c.array("upper_f") - c.array("lower_f")) / 4.0


def _join_warm_up_threads():
    for thread in threading.enumerate():
        if thread.name == "GPExplorer-warm-up":
            thread.join()


@pytest.fixture(scope="module", autouse=True)
def _no_compilation_left_running():
    """Join the explorers' background compilations after this module: a process (an xdist
    worker) that exits while XLA compiles in another thread is interrupted mid-compilation."""
    yield
    _join_warm_up_threads()


@pytest.fixture(scope="module")
def explorer():
    return GPExplorer()


def test_constructs_with_no_arguments_and_displays_itself(explorer):
    s = explorer.state
    assert set(CONTROLS) <= set(s)
    assert s["kernel"] == "RBF" and s["presets"] and s["n_points"] == 8
    c = explorer.canvas
    assert c.seq >= 1
    for name in ("x_grid", "mean", "lower_f", "upper_f", "lower_y", "upper_y"):
        assert c.array(name).shape == (N_GRID,), name
    assert c.array("x_presets").size == 8 and c.array("x_added").size == 0
    bundle = explorer._repr_mimebundle_()
    data = bundle[0] if isinstance(bundle, tuple) else bundle
    assert "application/vnd.jupyter.widget-view+json" in data
    assert "What to try" in explorer.help.value


@pytest.mark.parametrize("kernel", KERNEL_NAMES)
def test_drawn_mean_and_band_match_scikit_learn(kernel):
    ex = GPExplorer(warm_up=False).set(kernel=kernel, lengthscale=0.8, variance=1.5, noise=0.05,
                                       period=3.0, alpha=0.7, bias=0.5)
    mean, sd, lml = _reference(ex)
    drawn_mean, drawn_sd = _drawn(ex)
    np.testing.assert_allclose(drawn_mean, mean, atol=ATOL * max(1, np.abs(mean).max()))
    np.testing.assert_allclose(drawn_sd, sd, atol=ATOL * max(1, sd.max()))
    # the band of a new observation y adds the noise variance
    sd_y = (ex.canvas.array("upper_y") - ex.canvas.array("lower_y")) / 4.0
    np.testing.assert_allclose(sd_y, np.sqrt(sd**2 + 0.05), atol=ATOL * max(1, sd.max()))
    assert ex.state["log_marginal_likelihood"] == pytest.approx(lml, rel=1e-8, abs=1e-8)


def test_drawing_follows_set_in_one_update(explorer):
    before_seq, before_mean = explorer.canvas.seq, explorer.canvas.array("mean").copy()
    explorer.set(lengthscale=0.3, noise=0.2)
    assert explorer.canvas.seq == before_seq + 1  # one redraw for several controls
    assert explorer.state["lengthscale"] == 0.3 and explorer.state["noise"] == 0.2
    assert not np.allclose(explorer.canvas.array("mean"), before_mean)
    mean, sd, _ = _reference(explorer)
    np.testing.assert_allclose(_drawn(explorer)[0], mean, atol=ATOL)
    explorer.set(lengthscale=1.0, noise=0.01)


def test_added_points_cross_a_bucket_and_match_the_library_gp():
    ex = GPExplorer(warm_up=False)
    assert ex.state["bucket"] == 8
    ex.add_point(0.7, 1.4).add_point(-4.9, -1.0)
    s = ex.state
    assert s["n_points"] == 10 and s["bucket"] == 16
    assert s["added_points"] == [(0.7, 1.4), (-4.9, -1.0)]
    np.testing.assert_allclose(ex.canvas.array("x_added"), [0.7, -4.9], rtol=1e-6)
    # independent answer on the unpadded points: bayeskit's own GPRegressor and scikit-learn
    X = np.array(s["X"])
    model = GPRegressor(make_kernel("RBF", lengthscale=1.0, variance=1.0), noise=0.01,
                        optimize=False).fit(X, np.array(s["y"]))
    mean, sd = model.predict(ex.canvas.array("x_grid").astype(np.float64), return_std=True)
    drawn_mean, drawn_sd = _drawn(ex)
    np.testing.assert_allclose(drawn_mean, mean, atol=ATOL)
    np.testing.assert_allclose(drawn_sd, sd, atol=ATOL)
    np.testing.assert_allclose(_reference(ex)[0], mean, atol=1e-8)


def test_padding_has_no_influence_on_the_exact_answer():
    """The same 5 points padded to 8 and to 64: identical mean, sd and LML to round-off."""
    rng = np.random.default_rng(1)
    x, y = rng.uniform(-4, 4, 5), rng.normal(size=5)
    grid = np.linspace(-5, 5, N_GRID)
    z = rng.standard_normal((N_GRID, N_SAMPLES))
    outs = []
    for b in (8, 64):
        def pad(v, b=b):
            return np.concatenate([v, np.full(b - v.size, 3.0)])  # junk in the padding

        mask = np.concatenate([np.ones(5), np.zeros(b - 5)])
        outs.append(posterior_on_grid(np.int32(2), np.array([0.7, 1.3, 2.0, 1.0, 1.0]), pad(x),
                                      pad(y), mask, np.float64(0.02), grid, z, np.bool_(True),
                                      np.float64(0.0), np.float64(1e-8)))
    for a, b in zip(outs[0], outs[1], strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-9)
    kernel = make_kernel("Matern 3/2", lengthscale=0.7, variance=1.3)
    assert float(outs[0].log_marginal_likelihood) == pytest.approx(
        float(log_marginal_likelihood(kernel, x, y, 0.02)), rel=1e-10)


def test_toggling_presets():
    ex = GPExplorer(warm_up=False).set(variance=2.0)
    ex.set(presets=False)
    s = ex.state
    assert s["n_points"] == 0 and s["log_marginal_likelihood"] == 0.0
    assert ex.canvas.array("x_presets").size == 0
    drawn_mean, drawn_sd = _drawn(ex)  # no data: the prior
    np.testing.assert_allclose(drawn_mean, 0.0, atol=1e-7)
    np.testing.assert_allclose(drawn_sd, np.sqrt(2.0), rtol=1e-6)
    ex.add_point(1.0, 0.5)
    assert ex.state["X"] == (1.0,)
    np.testing.assert_allclose(_drawn(ex)[0], _reference(ex)[0], atol=ATOL)
    ex.set(presets=True)
    assert ex.state["n_points"] == 9 and ex.canvas.array("x_presets").size == 8
    np.testing.assert_allclose(_drawn(ex)[0], _reference(ex)[0], atol=ATOL)
    ex.clear_points()
    assert ex.state["n_points"] == 8 and ex.canvas.array("x_added").size == 0


def test_lml_label_equals_library_value(explorer):
    s = explorer.state
    expected = float(log_marginal_likelihood(explorer.kernel(), np.array(s["X"]), np.array(s["y"]),
                                             s["noise"]))
    assert s["log_marginal_likelihood"] == pytest.approx(expected, rel=1e-10)
    shown = float(re.search(r"= (-?[\d.]+)", explorer.lml_label.value).group(1))
    assert shown == pytest.approx(expected, abs=5e-4)
    assert f"{expected:.3f}" in explorer.canvas.caption


def test_fit_button_raises_the_marginal_likelihood():
    ex = GPExplorer(warm_up=False).set(lengthscale=0.1, variance=5.0, noise=0.5)
    before = ex.state["log_marginal_likelihood"]
    ex.fit_button.click()
    after = ex.state["log_marginal_likelihood"]
    assert "ML-II" in ex.status.value, ex.status.value
    assert after > before + 1.0
    assert ex.state["lengthscale"] != 0.1
    # the sliders were moved to the optimum and the drawing follows them
    np.testing.assert_allclose(_drawn(ex)[0], _reference(ex)[0], atol=ATOL)
    again = ex.fit()  # already at the optimum: stays there
    assert again.log_marginal_likelihood == pytest.approx(after, abs=1e-3)


def test_every_band_and_marker_is_labelled(explorer):
    labels = explorer.canvas.labels
    assert set(labels) == set(LABELS) == {"band_y", "band_f", "mean", "samples", "presets", "added"}
    assert all(isinstance(v, str) and len(v) > 10 for v in labels.values())
    assert "±2 sd of f" in labels["band_f"] and "95%" in labels["band_f"]
    assert "noise" in labels["band_y"]


def test_samples_toggle_draws_plausible_functions():
    ex = GPExplorer(warm_up=False).set(samples=True)
    c = ex.canvas
    assert c.n_samples == N_SAMPLES
    samples = c.array("samples").reshape(N_SAMPLES, N_GRID)
    mean, sd = _drawn(ex)
    assert np.all(np.isfinite(samples))
    assert np.all(np.abs(samples - mean) <= 6 * sd + 0.01)  # no draw leaves a +-6 sd envelope
    assert np.std(samples - mean) > 0.05  # and they are not all the mean
    # the same seed gives the same draws: samples move smoothly with the sliders
    first = samples.copy()
    ex.set(lengthscale=1.02)
    assert np.max(np.abs(c.array("samples").reshape(N_SAMPLES, N_GRID) - first)) < 0.5
    ex.set(samples=False)
    assert c.n_samples == 0 and c.array("samples").size == 0


def test_kernel_switching_and_adding_points_do_not_recompile():
    ex = GPExplorer()
    ex.add_point(0.0, 0.0)  # 9 points: bucket 16, and the warm-up compiles 32 in the background
    _join_warm_up_threads()
    compiled = posterior_on_grid._cache_size()
    for name in KERNEL_NAMES:
        ex.set(kernel=name, samples=name == "Periodic")
    ex.add_point(1.0, 0.3).set(lengthscale=0.4, noise=0.1, presets=False).set(presets=True)
    assert posterior_on_grid._cache_size() == compiled


def test_click_on_canvas_adds_a_point():
    ex = GPExplorer(warm_up=False)
    ex._on_canvas_message(ex.canvas, {"type": "add_point", "x": 1.25, "y": -0.5}, [])
    assert ex.state["added_points"] == [(1.25, -0.5)]
    ex._on_canvas_message(ex.canvas, {"type": "add_point", "x": 99.0, "y": 0.0}, [])
    assert "could not add" in ex.status.value and ex.state["n_points"] == 9


def test_kernel_aliases():
    ex = GPExplorer(warm_up=False, kernel="matern32")
    assert ex.state["kernel"] == "Matern 3/2"
    assert ex.set(kernel="rq").state["kernel"] == "Rational quadratic"
    # a kernel's unused sliders are hidden
    assert ex.controls["alpha"].layout.display is None
    assert ex.controls["period"].layout.display == "none"


@pytest.mark.parametrize(
    ("controls", "name"),
    [
        ({"lengthscale": -1}, "lengthscale"),
        ({"variance": 0.0}, "variance"),
        ({"noise": float("nan")}, "noise"),
        ({"period": 1e6}, "period"),
        ({"alpha": "big"}, "alpha"),
        ({"kernel": "cubic"}, "kernel"),
        ({"samples": "yes"}, "samples"),
        ({"lenghtscale": 1.0}, "lenghtscale"),
        ({"lengthscale": 0.5, "bias": -2.0}, "bias"),
    ],
)
def test_bad_values_raise_and_change_nothing(explorer, controls, name):
    before = dict(explorer.state)
    with pytest.raises(ValueError, match=name):
        explorer.set(**controls)
    assert dict(explorer.state) == before


def test_bad_points_raise(explorer):
    with pytest.raises(ValueError, match="finite"):
        explorer.add_point(float("nan"), 0.0)
    with pytest.raises(ValueError, match="range"):
        explorer.add_point(7.0, 0.0)
    with pytest.raises(ValueError, match="same length"):
        GPExplorer(X=[0.0, 1.0], y=[1.0], warm_up=False)
