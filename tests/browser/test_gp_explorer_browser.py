"""GPExplorer in a real JupyterLab + chromium: run the notebook, move the lengthscale slider, click
in the plot, toggle the samples, and check both sides each time (see ``explorer_page``)."""

from __future__ import annotations

import pytest
from explorer_page import (
    BROWSER_MARKS,
    assert_repainted,
    canvas_snapshot,
    open_explorer,
    press_slider,
    wait_for_state,
    wait_painted_after,
)

pytestmark = BROWSER_MARKS

CANVAS = "canvas.bayeskit-gp-canvas"


def test_gp_explorer_in_jupyterlab(lab_page, jupyter_lab):
    lab = lab_page
    initial, before = open_explorer(lab, jupyter_lab, "gp_explorer", CANVAS)
    assert initial["lengthscale"] == 1.0 and initial["n_points"] == 8

    press_slider(lab, "lengthscale", 5)
    # Fast key presses are throttled by ipywidgets (one message in flight, then the latest value),
    # so wait for the kernel to reach the final value rather than for 5 separate updates.
    wait_painted_after(lab, CANVAS, before["seq"])
    target = 10**0.1  # 5 steps of 0.02 in log10 from 1.0
    state = wait_for_state(lab, lambda s: s["lengthscale"] == pytest.approx(target, rel=1e-3)
                            and s["painted"] == s["seq"])
    # the kernel followed, and the browser painted its latest update: the picture followed
    after = assert_repainted(lab, CANVAS, state, before, "the slider moved")

    # click in the plot: the browser asks the kernel to add a point, and draws it
    canvas = lab.page.locator(CANVAS)
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    lab.page.mouse.click(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.3)
    wait_painted_after(lab, CANVAS, after["seq"])
    clicked = canvas_snapshot(lab, CANVAS)
    assert clicked["pixels"] != after["pixels"]
    state = wait_for_state(lab, lambda s: s["n_points"] == 9 and s["painted"] == s["seq"])
    assert canvas_snapshot(lab, CANVAS)["seq"] == state["seq"]

    # toggle posterior samples with the checkbox: drawn, and known to the kernel
    lab.page.get_by_role("checkbox", name="posterior samples").check()
    wait_painted_after(lab, CANVAS, state["seq"])
    assert canvas_snapshot(lab, CANVAS)["pixels"] != clicked["pixels"]
    state = wait_for_state(lab, lambda s: s["samples"] and s["painted"] == s["seq"])

    lab.assert_no_errors()
    lab.screenshot("gp_explorer")
