"""Headless tests of bayeskit.widgets.bo_explorer.BOExplorer: the run, and what is sent to the
browser to draw.

The drawn posterior is compared with scikit-learn's GaussianProcessRegressor at the loop's
fitted hyperparameters, the drawn acquisition with closed forms (scipy) on that posterior, and
the run itself with ``bayeskit.bo.minimize`` at the same seed.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
from bayeskit.widgets import bo_explorer as bx
from bayeskit.widgets.bo_explorer import CONTROLS, LABELS, N_GRID_1D, N_GRID_2D, BOExplorer
from scipy import stats
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process import kernels as sk

import bayeskit.bo as bo
from bayeskit.bo.test_functions import Branin, Forrester

ATOL = 2e-5  # float32 on the wire: ~7 significant digits


@pytest.fixture(scope="module", autouse=True)
def _no_compilation_left_running():
    """Join background compilations after this module (an exiting process must not interrupt XLA)."""
    yield
    for thread in threading.enumerate():
        if thread.name == "BOExplorer-warm-up":
            thread.join()


@pytest.fixture(scope="module")
def explorer():
    return BOExplorer(warm_up=False)


def _reference(ex: BOExplorer):
    """Posterior mean and sd of f on the explorer's grid (units of y) from scikit-learn."""
    opt = ex.optimizer
    lo, hi = opt.bounds[:, 0], opt.bounds[:, 1]
    U = (np.asarray(opt.x_iters) - lo) / (hi - lo)
    y = np.asarray(opt.func_vals)
    kern = opt.kernel_
    k = sk.ConstantKernel(float(kern.variance)) * sk.Matern(np.asarray(kern.lengthscale, dtype=float), nu=2.5)
    gp = GaussianProcessRegressor(k, alpha=float(opt.noise_), optimizer=None).fit(U, (y - y.mean()) / y.std())
    m, s = gp.predict((ex.grid - lo) / (hi - lo), return_std=True)
    return m * y.std() + y.mean(), s * y.std()


def test_constructs_with_defaults_and_displays_itself(explorer):
    s = explorer.state
    assert set(CONTROLS) <= set(s)
    assert s["problem"] == "Forrester (1-D)" and s["acquisition"] == "log_ei" and s["dim"] == 1
    assert s["n_evaluations"] == s["n_initial"] == 3 and len(s["next_point"]) == 1
    c = explorer.canvas
    assert c.seq >= 1
    for name in ("x", "objective", "mean", "lower", "upper", "acq"):
        assert c.array(name).shape == (N_GRID_1D,), name
    labels = [layer.get("label", "") for layer in c.layers()]
    assert any("±2 sd (95%)" in label for label in labels)
    assert any(label.startswith("next point") for label in labels)
    objective = next(layer for layer in c.layers() if layer.get("label") == LABELS["objective"])
    assert objective["dash"], "the objective is drawn dashed"
    bundle = explorer._repr_mimebundle_()
    data = bundle[0] if isinstance(bundle, tuple) else bundle
    assert "application/vnd.jupyter.widget-view+json" in data
    assert "What to try" in explorer.help.value
    assert explorer.controls["show"].layout.display == "none"  # 2-D only


def test_drawn_posterior_and_acquisition_match_independent_references():
    ex = BOExplorer(acquisition="ei", warm_up=False).step(2)
    c = ex.canvas
    mean, sd = _reference(ex)
    scale = np.ptp(ex.optimizer.func_vals)
    np.testing.assert_allclose(c.array("mean"), mean, atol=ATOL * scale)
    np.testing.assert_allclose((c.array("upper") - c.array("lower")) / 4, sd, atol=ATOL * scale)
    # EI in units of y from scipy's normal at the same posterior and incumbent
    best = min(ex.optimizer.func_vals)
    sd = np.maximum(sd, 1e-9 * np.std(ex.optimizer.func_vals))
    z = (best - mean) / sd
    ei = (best - mean) * stats.norm.cdf(z) + sd * stats.norm.pdf(z)
    np.testing.assert_allclose(c.array("acq"), ei, atol=1e-5 * ei.max())
    # the marked next point is the loop's proposal, and no grid point has a larger EI
    assert c.array("next_x")[0] == pytest.approx(ex.state["next_point"][0], abs=1e-6)
    assert c.array("next_acq")[0] >= c.array("acq").max() * (1 - 1e-5)
    np.testing.assert_allclose(c.array("obs_x"), np.ravel(ex.state["x_iters"]), rtol=1e-6)
    np.testing.assert_allclose(c.array("objective"), Forrester().evaluate(ex.grid), rtol=1e-6, atol=1e-6)


def test_a_run_is_bayeskit_minimize_with_the_same_seed():
    ex = BOExplorer(seed=4, warm_up=False).step(3)
    s = ex.state
    reference = bo.minimize(Forrester(), Forrester.bounds, n_calls=s["n_evaluations"] + 1, seed=4)
    np.testing.assert_array_equal(np.asarray(s["x_iters"]), np.asarray(reference.x_iters[:-1]))
    np.testing.assert_array_equal(s["next_point"], reference.x_iters[-1])
    again = BOExplorer(seed=4, warm_up=False).step(3)
    assert again.state["x_iters"] == s["x_iters"]
    other = BOExplorer(seed=5, warm_up=False)
    assert other.state["x_iters"] != s["x_iters"][: other.state["n_evaluations"]]


def test_step_button_reset_and_regret(explorer):
    seq = explorer.canvas.seq
    start = explorer.state
    explorer.step_button.click()  # what a click (or Enter on the focused button) does
    s = explorer.state
    assert s["n_evaluations"] == start["n_evaluations"] + 1 and explorer.canvas.seq == seq + 1
    assert s["x_iters"][-1] == start["next_point"]
    explorer.controls["n_run"].value = 3
    explorer.run_button.click()
    s = explorer.state
    assert s["n_evaluations"] == start["n_evaluations"] + 4
    regret = np.asarray(s["regret_history"])
    assert np.all(np.diff(regret) <= 0)
    np.testing.assert_allclose(regret, np.minimum.accumulate(s["true_vals"]) - Forrester.optimum)
    np.testing.assert_allclose(explorer.canvas.array("log_regret"), np.log10(np.maximum(regret, bx.REGRET_FLOOR)),
                               rtol=1e-6)
    assert len(explorer.handler_times) >= 5 and explorer.timings[-1]["ask_s"] > 0
    explorer.reset_button.click()
    assert explorer.state["x_iters"] == start["x_iters"] and explorer.state["next_point"] == start["next_point"]


def test_two_d_heat_map_and_its_toggle():
    ex = BOExplorer(problem="Branin (2-D)", warm_up=False)
    s = ex.state
    assert s["dim"] == 2 and s["grid_shape"] == (N_GRID_2D, N_GRID_2D) and s["n_initial"] == 5
    assert ex.grid.shape == (N_GRID_2D**2, 2) and ex.controls["show"].layout.display is None
    heat = next(layer for layer in ex.canvas.layers() if layer["kind"] == "heat")
    assert (heat["nx"], heat["ny"]) == (N_GRID_2D, N_GRID_2D)
    np.testing.assert_allclose(ex.canvas.array("heat"), ex.surface.mean, rtol=1e-6, atol=1e-4)
    ex.step()
    seq, x_iters = ex.canvas.seq, ex.state["x_iters"]
    ex.set(show="objective")
    assert ex.canvas.seq == seq + 1 and ex.state["x_iters"] == x_iters  # a redraw, not a new run
    np.testing.assert_allclose(ex.canvas.array("heat"), Branin().evaluate(ex.grid), rtol=1e-6)
    ex.set(show="acquisition")
    log_ei = ex.surface.acquisition  # the default acquisition, drawn over its top LOG_EI_SPAN nats
    np.testing.assert_allclose(ex.canvas.array("heat"), np.maximum(log_ei, log_ei.max() - bx.LOG_EI_SPAN),
                               rtol=1e-5, atol=1e-5)
    assert ex.canvas.array("next_x")[0] == pytest.approx(ex.state["next_point"][0], abs=1e-5)
    ex.step()
    assert ex.state["n_evaluations"] == 7
    ex.set(seed=1, show="posterior mean")  # a setting and the view together: one new run
    assert ex.state["n_evaluations"] == 5 and ex.state["seed"] == 1


def test_settings_start_one_new_run_and_noise_is_told():
    ex = BOExplorer(warm_up=False)
    seq = ex.canvas.seq
    ex.set(acquisition="lcb", noise="5% of range", seed=2)
    s = ex.state
    assert ex.canvas.seq == seq + 1 and s["acquisition"] == "lcb" and s["seed"] == 2
    assert s["noise_std"] == pytest.approx(0.05 * np.ptp(Forrester().evaluate(ex.grid)))
    assert ex.optimizer.noise == pytest.approx(s["noise_std"] ** 2)
    assert np.all(np.abs(np.subtract(s["func_vals"], s["true_vals"])) > 0)
    assert "minimised" in ex.canvas.spec["panels"][1]["title"]


def test_a_full_run_stops(monkeypatch):
    monkeypatch.setattr(bx, "MAX_EVALUATIONS", 5)
    ex = BOExplorer(warm_up=False).step(10)
    s = ex.state
    assert s["n_evaluations"] == 5 and s["full"] and s["next_point"] is None
    ex.step_button.click()
    assert ex.step_button.disabled and ex.state["n_evaluations"] == 5
    assert "full" in ex.status.value


@pytest.mark.parametrize(
    "controls, match",
    [
        ({"problem": "Hartmann-6"}, "problem must be one of"),
        ({"acquisition": "ucb"}, "acquisition must be one of"),
        ({"seed": -1}, "seed must be an integer in"),
        ({"seed": 1.5}, "seed must be an integer"),
        ({"noise": 0.1}, "noise must be one of"),
        ({"show": "variance"}, "show must be one of"),
        ({"n_run": 0}, "n_run must be an integer in"),
        ({"colour": "red"}, "unknown control"),
    ],
)
def test_bad_input_is_rejected_and_changes_nothing(explorer, controls, match):
    before = dict(explorer.state)
    with pytest.raises(ValueError, match=match):
        explorer.set(**{"seed": 7, **controls})  # a good value next to the bad one: neither applies
    assert dict(explorer.state) == before


def test_bad_step_counts(explorer):
    for n in (0, -2, 1.0, True):
        with pytest.raises(ValueError, match="n must be an int"):
            explorer.step(n)
