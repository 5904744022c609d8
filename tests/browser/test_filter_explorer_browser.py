"""FilterExplorer in a real JupyterLab + chromium: run the notebook, move a control, check both sides.

Kernel side: a cell printing the explorer's state is run again after the control moved.
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

NOTEBOOK = Path(__file__).resolve().parent / "notebooks" / "filter_explorer.ipynb"

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.xdist_group("browser")]

CANVAS = "canvas.bayeskit-filter-canvas"


def test_filter_explorer_in_jupyterlab(lab_page, jupyter_lab):
    lab = lab_page
    name = jupyter_lab.add_notebook(NOTEBOOK)
    lab.open_notebook(name)
    lab.run_all()
    lab.page.wait_for_selector(CANVAS, state="visible", timeout=60_000)
    wait_painted_after(lab, CANVAS, 0)
    lab.assert_no_errors()

    initial = parse_state(lab.output_text(STATE_CELL))
    assert initial["missing"] == pytest.approx(0.1) and initial["method"] == "KF"
    before = canvas_snapshot(lab, CANVAS)
    assert before["width"] > 0 and before["seq"] >= 1

    # move the missing-fraction slider as a user would: focus its handle, press ArrowRight 3 times
    handle = lab.slider_handle("missing")
    handle.focus()
    for _ in range(3):
        handle.press("ArrowRight")
    wait_painted_after(lab, CANVAS, before["seq"])
    state = wait_for_state(lab, lambda s: s["missing"] == pytest.approx(0.25) and s["painted"] == s["seq"])
    assert state["n_missing"] > initial["n_missing"]
    after = canvas_snapshot(lab, CANVAS)
    assert after["seq"] == state["seq"], (after["seq"], state)
    assert after["pixels"] != before["pixels"], "the canvas did not change after the slider moved"

    # switch the method with its toggle button: the UKF's estimate is drawn
    lab.page.get_by_role("button", name="UKF", exact=True).click()
    wait_painted_after(lab, CANVAS, after["seq"])
    state = wait_for_state(lab, lambda s: s["method"] == "UKF" and s["painted"] == s["seq"])
    assert canvas_snapshot(lab, CANVAS)["seq"] == state["seq"]

    lab.assert_no_errors()
    page_shot = lab.screenshot("filter_explorer")
    canvas = lab.page.locator(CANVAS)  # the notebook scrolls inside the page: the plot on its own too
    canvas.scroll_into_view_if_needed()
    canvas.screenshot(path=str(page_shot.with_name("filter_explorer_canvas.png")))
