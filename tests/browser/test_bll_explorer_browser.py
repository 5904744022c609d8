"""LastLayerExplorer in a real JupyterLab + chromium: run the notebook, move a slider by keyboard,
click a method, and check both sides.

The test switches to two moons at the end, so the entropy heat map and the reliability diagram are
painted by a real browser too. Kernel side: a cell printing the explorer's state is run again after the control moved.
Picture: the canvas's pixels change and its ``data-seq`` (the update it painted) advances; the
kernel also sees ``painted == seq``, echoed from the browser after the paint.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from explorer_page import (
    STATE_CELL,
    canvas_snapshot,
    parse_state,
    wait_for_state,
    wait_painted_after,
)

NOTEBOOK = Path(__file__).resolve().parent / "notebooks" / "bll_explorer.ipynb"

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.xdist_group("browser")]

CANVAS = "canvas.bayeskit-bll-canvas"


def test_bll_explorer_in_jupyterlab(lab_page, jupyter_lab):
    lab = lab_page
    name = jupyter_lab.add_notebook(NOTEBOOK)
    lab.open_notebook(name)
    lab.run_all(timeout=300)
    lab.page.wait_for_selector(CANVAS, state="visible", timeout=60_000)
    wait_painted_after(lab, CANVAS, 0)
    lab.assert_no_errors()

    initial = parse_state(lab.output_text(STATE_CELL))
    assert initial["prior_scale"] == pytest.approx(1.0) and initial["method"] == "VBLL"
    before = canvas_snapshot(lab, CANVAS)
    assert before["width"] > 0 and before["seq"] >= 1

    # move the prior-scale slider as a user would: focus its handle, press ArrowRight 4 times
    # (log slider, step 0.05 in log10: 10 ** 0.2)
    handle = lab.slider_handle("prior scale")
    handle.focus()
    for _ in range(4):
        handle.press("ArrowRight")
    wait_painted_after(lab, CANVAS, before["seq"])
    state = wait_for_state(lab, lambda s: s["prior_scale"] == pytest.approx(10**0.2, rel=1e-6)
                           and s["painted"] == s["seq"])
    assert state["mean_sd_gap"] != pytest.approx(initial["mean_sd_gap"], rel=1e-9)  # the head changed
    after = canvas_snapshot(lab, CANVAS)
    assert after["seq"] == state["seq"], (after["seq"], state)
    assert after["pixels"] != before["pixels"], "the canvas did not change after the slider moved"

    # switch the method with its toggle button: a MAP network is trained and its band drawn
    lab.page.get_by_role("button", name="MAP", exact=True).click()
    wait_painted_after(lab, CANVAS, after["seq"], timeout_ms=180_000)
    state = wait_for_state(lab, lambda s: s["method"] == "MAP" and s["painted"] == s["seq"], timeout=180)
    final = canvas_snapshot(lab, CANVAS)
    assert final["seq"] == state["seq"] and final["pixels"] != after["pixels"]

    canvas = lab.page.locator(CANVAS)  # the notebook scrolls inside the page: the plot on its own too
    canvas.scroll_into_view_if_needed()
    canvas.screenshot(path=str(lab.screenshot("bll_explorer").with_name("bll_explorer_canvas.png")))

    # classification: the entropy heat map and the reliability diagram are painted
    lab.page.get_by_role("button", name="two moons", exact=True).click()
    wait_painted_after(lab, CANVAS, final["seq"], timeout_ms=180_000)
    state = wait_for_state(lab, lambda s: s["task"] == "classification" and s["painted"] == s["seq"], timeout=180)
    moons = canvas_snapshot(lab, CANVAS)
    assert moons["seq"] == state["seq"] and moons["pixels"] != final["pixels"]
    lab.assert_no_errors()
    canvas.scroll_into_view_if_needed()
    canvas.screenshot(path=str(lab.screenshot("bll_explorer_moons").with_name("bll_explorer_moons_canvas.png")))
