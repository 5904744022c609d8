"""FilterExplorer in a real JupyterLab + chromium: run the notebook, move the missing-fraction
slider, switch the method, and check both sides each time (see ``explorer_page``)."""

from __future__ import annotations

import pytest
from explorer_page import (
    BROWSER_MARKS,
    assert_repainted,
    canvas_snapshot,
    open_explorer,
    press_slider,
    screenshot_canvas,
    wait_for_state,
    wait_painted_after,
)

pytestmark = BROWSER_MARKS

CANVAS = "canvas.bayeskit-filter-canvas"


def test_filter_explorer_in_jupyterlab(lab_page, jupyter_lab):
    lab = lab_page
    initial, before = open_explorer(lab, jupyter_lab, "filter_explorer", CANVAS)
    assert initial["missing"] == pytest.approx(0.1) and initial["method"] == "KF"

    press_slider(lab, "missing", 3)
    wait_painted_after(lab, CANVAS, before["seq"])
    state = wait_for_state(lab, lambda s: s["missing"] == pytest.approx(0.25) and s["painted"] == s["seq"])
    assert state["n_missing"] > initial["n_missing"]
    after = assert_repainted(lab, CANVAS, state, before, "the slider moved")

    # switch the method with its toggle button: the UKF's estimate is drawn
    lab.page.get_by_role("button", name="UKF", exact=True).click()
    wait_painted_after(lab, CANVAS, after["seq"])
    state = wait_for_state(lab, lambda s: s["method"] == "UKF" and s["painted"] == s["seq"])
    assert canvas_snapshot(lab, CANVAS)["seq"] == state["seq"]

    lab.assert_no_errors()
    screenshot_canvas(lab, CANVAS, "filter_explorer")
