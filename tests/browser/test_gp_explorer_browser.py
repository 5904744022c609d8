"""GPExplorer in a real JupyterLab + chromium: run the notebook, move a control, check both sides.

Kernel side: a cell printing the explorer's state is run again after the slider moved.
Picture: the canvas's pixels change and its ``data-seq`` (the update it painted) advances; the
kernel also sees ``painted == seq``, echoed from the browser after the paint.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parent / "notebooks" / "gp_explorer.ipynb"

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.xdist_group("browser")]

CANVAS = "canvas.bayeskit-gp-canvas"
STATE_CELL = 1  # code cells: 0 shows the explorer, 1 prints its state


def _state(text: str) -> dict:
    match = re.search(r"STATE (\{.*\})", text)
    assert match, f"no STATE line in the output: {text!r}"
    return json.loads(match.group(1))


def _canvas(lab) -> dict:
    """The painted picture: data URL of the pixels, the painted update and the plot size."""
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
    """Re-run the state cell until ``condition(state)`` holds; returns that state."""
    deadline = time.monotonic() + timeout
    while True:
        state = _state(lab.run_cell(STATE_CELL))
        if condition(state):
            return state
        assert time.monotonic() < deadline, f"the kernel state never satisfied the check: {state}"
        time.sleep(0.2)


def test_gp_explorer_in_jupyterlab(lab_page, jupyter_lab):
    lab = lab_page
    name = jupyter_lab.add_notebook(NOTEBOOK)
    lab.open_notebook(name)
    lab.run_all()
    lab.page.wait_for_selector(CANVAS, state="visible", timeout=60_000)
    _wait_painted_after(lab, 0)
    lab.assert_no_errors()

    initial = _state(lab.output_text(STATE_CELL))
    assert initial["lengthscale"] == 1.0 and initial["n_points"] == 8
    before = _canvas(lab)
    assert before["width"] > 0 and before["seq"] >= 1

    # move the lengthscale slider as a user would: focus its handle, press ArrowRight 5 times
    handle = lab.slider_handle("lengthscale")
    handle.focus()
    for _ in range(5):
        handle.press("ArrowRight")
    # Fast key presses are throttled by ipywidgets (one message in flight, then the latest value),
    # so wait for the kernel to reach the final value rather than for 5 separate updates.
    _wait_painted_after(lab, before["seq"])
    target = 10**0.1  # 5 steps of 0.02 in log10 from 1.0
    state = _wait_for_state(lab, lambda s: s["lengthscale"] == pytest.approx(target, rel=1e-3)
                            and s["painted"] == s["seq"])
    # the kernel followed, and the browser painted its latest update: the picture followed
    after = _canvas(lab)
    assert after["seq"] == state["seq"], (after["seq"], state)
    assert after["pixels"] != before["pixels"], "the canvas did not change after the slider moved"

    # click in the plot: the browser asks the kernel to add a point, and draws it
    canvas = lab.page.locator(CANVAS)
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    lab.page.mouse.click(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.3)
    _wait_painted_after(lab, after["seq"])
    clicked = _canvas(lab)
    assert clicked["pixels"] != after["pixels"]
    state = _wait_for_state(lab, lambda s: s["n_points"] == 9 and s["painted"] == s["seq"])
    assert _canvas(lab)["seq"] == state["seq"]

    # toggle posterior samples with the checkbox: drawn, and known to the kernel
    lab.page.get_by_role("checkbox", name="posterior samples").check()
    _wait_painted_after(lab, state["seq"])
    assert _canvas(lab)["pixels"] != clicked["pixels"]
    state = _wait_for_state(lab, lambda s: s["samples"] and s["painted"] == s["seq"])

    lab.assert_no_errors()
    lab.screenshot("gp_explorer")
