"""GPExplorer in a real JupyterLab + chromium: run the notebook, move a control, check both sides.

Kernel side: a cell printing the explorer's state is run again after the slider moved.
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

NOTEBOOK = Path(__file__).resolve().parent / "notebooks" / "gp_explorer.ipynb"

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.xdist_group("browser")]

CANVAS = "canvas.bayeskit-gp-canvas"


def test_gp_explorer_in_jupyterlab(lab_page, jupyter_lab):
    lab = lab_page
    name = jupyter_lab.add_notebook(NOTEBOOK)
    lab.open_notebook(name)
    lab.run_all()
    lab.page.wait_for_selector(CANVAS, state="visible", timeout=60_000)
    wait_painted_after(lab, CANVAS, 0)
    lab.assert_no_errors()

    initial = parse_state(lab.output_text(STATE_CELL))
    assert initial["lengthscale"] == 1.0 and initial["n_points"] == 8
    before = canvas_snapshot(lab, CANVAS)
    assert before["width"] > 0 and before["seq"] >= 1

    # move the lengthscale slider as a user would: focus its handle, press ArrowRight 5 times
    handle = lab.slider_handle("lengthscale")
    handle.focus()
    for _ in range(5):
        handle.press("ArrowRight")
    # Fast key presses are throttled by ipywidgets (one message in flight, then the latest value),
    # so wait for the kernel to reach the final value rather than for 5 separate updates.
    wait_painted_after(lab, CANVAS, before["seq"])
    target = 10**0.1  # 5 steps of 0.02 in log10 from 1.0
    state = wait_for_state(lab, lambda s: s["lengthscale"] == pytest.approx(target, rel=1e-3)
                            and s["painted"] == s["seq"])
    # the kernel followed, and the browser painted its latest update: the picture followed
    after = canvas_snapshot(lab, CANVAS)
    assert after["seq"] == state["seq"], (after["seq"], state)
    assert after["pixels"] != before["pixels"], "the canvas did not change after the slider moved"

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
