"""LastLayerExplorer in a real JupyterLab + chromium: run the notebook, move a slider by keyboard,
click a method, and check both sides each time (see ``explorer_page``).

The test switches to two moons at the end, so the entropy heat map and the reliability diagram are
painted by a real browser too.
"""

from __future__ import annotations

import pytest
from explorer_page import (
    BROWSER_MARKS,
    assert_repainted,
    open_explorer,
    press_slider,
    screenshot_canvas,
    wait_for_state,
    wait_painted_after,
)

pytestmark = BROWSER_MARKS

CANVAS = "canvas.bayeskit-bll-canvas"


def test_bll_explorer_in_jupyterlab(lab_page, jupyter_lab):
    lab = lab_page
    initial, before = open_explorer(lab, jupyter_lab, "bll_explorer", CANVAS, run_timeout=300)
    assert initial["prior_scale"] == pytest.approx(1.0) and initial["method"] == "VBLL"

    # log slider, step 0.05 in log10: 4 steps right is 10 ** 0.2
    press_slider(lab, "prior scale", 4)
    wait_painted_after(lab, CANVAS, before["seq"])
    state = wait_for_state(lab, lambda s: s["prior_scale"] == pytest.approx(10**0.2, rel=1e-6)
                           and s["painted"] == s["seq"])
    assert state["mean_sd_gap"] != pytest.approx(initial["mean_sd_gap"], rel=1e-9)  # the head changed
    after = assert_repainted(lab, CANVAS, state, before, "the slider moved")

    # switch the method with its toggle button: a MAP network is trained and its band drawn
    lab.page.get_by_role("button", name="MAP", exact=True).click()
    wait_painted_after(lab, CANVAS, after["seq"], timeout_ms=180_000)
    state = wait_for_state(lab, lambda s: s["method"] == "MAP" and s["painted"] == s["seq"], timeout=180)
    final = assert_repainted(lab, CANVAS, state, after, "the method changed")
    screenshot_canvas(lab, CANVAS, "bll_explorer")

    # classification: the entropy heat map and the reliability diagram are painted
    lab.page.get_by_role("button", name="two moons", exact=True).click()
    wait_painted_after(lab, CANVAS, final["seq"], timeout_ms=180_000)
    state = wait_for_state(lab, lambda s: s["task"] == "classification" and s["painted"] == s["seq"], timeout=180)
    assert_repainted(lab, CANVAS, state, final, "the dataset changed")
    lab.assert_no_errors()
    screenshot_canvas(lab, CANVAS, "bll_explorer_moons")
