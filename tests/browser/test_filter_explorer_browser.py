"""FilterExplorer in a real JupyterLab + chromium: run the notebook, move a control, check both sides.

Kernel side: a cell printing the explorer's state is run again after the control moved.
Picture: the canvas's pixels change and its ``data-seq`` (the update it painted) advances; the
kernel also sees ``painted == seq``, echoed from the browser after the paint.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parent / "notebooks" / "filter_explorer.ipynb"

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.xdist_group("browser")]

CANVAS = "canvas.bayeskit-filter-canvas"
STATE_CELL = 1  # code cells: 0 shows the explorer, 1 prints its state


def _state(text: str) -> dict:
    match = re.search(r"STATE (\{.*\})", text)
    assert match, f"no STATE line in the output: {text!r}"
    return json.loads(match.group(1))


def _canvas(lab) -> dict:
    return lab.page.eval_on_selector(
        CANVAS,
        "c => ({pixels: c.toDataURL(), seq: +(c.dataset.seq || -1), width: c.width, height: c.height})",
    )


def _wait_painted_after(lab, seq: int, timeout_ms: float = 30_000) -> None:
    lab.page.wait_for_function(
        "([sel, seq]) => { const c = document.querySelector(sel); return c && +(c.dataset.seq || -1) > seq; }",
        arg=[CANVAS, seq], timeout=timeout_ms,
    )


def _wait_for_state(lab, condition, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        state = _state(lab.run_cell(STATE_CELL))
        if condition(state):
            return state
        assert time.monotonic() < deadline, f"the kernel state never satisfied the check: {state}"
        time.sleep(0.2)


def test_filter_explorer_in_jupyterlab(lab_page, jupyter_lab):
    lab = lab_page
    name = jupyter_lab.add_notebook(NOTEBOOK)
    lab.open_notebook(name)
    lab.run_all()
    lab.page.wait_for_selector(CANVAS, state="visible", timeout=60_000)
    _wait_painted_after(lab, 0)
    lab.assert_no_errors()

    initial = _state(lab.output_text(STATE_CELL))
    assert initial["missing"] == pytest.approx(0.1) and initial["method"] == "KF"
    before = _canvas(lab)
    assert before["width"] > 0 and before["seq"] >= 1

    # move the missing-fraction slider as a user would: focus its handle, press ArrowRight 3 times
    handle = lab.slider_handle("missing")
    handle.focus()
    for _ in range(3):
        handle.press("ArrowRight")
    _wait_painted_after(lab, before["seq"])
    state = _wait_for_state(lab, lambda s: s["missing"] == pytest.approx(0.25) and s["painted"] == s["seq"])
    assert state["n_missing"] > initial["n_missing"]
    after = _canvas(lab)
    assert after["seq"] == state["seq"], (after["seq"], state)
    assert after["pixels"] != before["pixels"], "the canvas did not change after the slider moved"

    # switch the method with its toggle button: the UKF's estimate is drawn
    lab.page.get_by_role("button", name="UKF", exact=True).click()
    _wait_painted_after(lab, after["seq"])
    state = _wait_for_state(lab, lambda s: s["method"] == "UKF" and s["painted"] == s["seq"])
    assert _canvas(lab)["seq"] == state["seq"]

    lab.assert_no_errors()
    page_shot = lab.screenshot("filter_explorer")
    canvas = lab.page.locator(CANVAS)  # the notebook scrolls inside the page: the plot on its own too
    canvas.scroll_into_view_if_needed()
    canvas.screenshot(path=str(page_shot.with_name("filter_explorer_canvas.png")))
