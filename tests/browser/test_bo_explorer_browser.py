"""BOExplorer in a real JupyterLab + chromium: run the notebook, press Step, check both sides.

Kernel side: a cell printing the explorer's state is run again after the button was pressed.
Picture: the canvas's pixels change and its ``data-seq`` (the update it painted) advances; the
kernel also sees ``painted == seq``, echoed from the browser after the paint.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from explorer_page import (
    STATE_CELL,
    canvas_snapshot,
    parse_state,
    wait_for_state,
    wait_painted_after,
)

NOTEBOOK = Path(__file__).resolve().parent / "notebooks" / "bo_explorer.ipynb"

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.xdist_group("browser")]

CANVAS = "canvas.bayeskit-bo-canvas"


def test_bo_explorer_in_jupyterlab(lab_page, jupyter_lab):
    lab = lab_page
    name = jupyter_lab.add_notebook(NOTEBOOK)
    lab.open_notebook(name)
    lab.run_all()
    lab.page.wait_for_selector(CANVAS, state="visible", timeout=60_000)
    wait_painted_after(lab, CANVAS, 0)
    lab.assert_no_errors()

    initial = parse_state(lab.output_text(STATE_CELL))
    assert initial["problem"] == "Forrester (1-D)" and initial["n_evaluations"] == 3
    before = canvas_snapshot(lab, CANVAS)
    assert before["width"] > 0 and before["seq"] >= 1

    # press Step from the keyboard: focus the button, press Enter (its accessible name starts with
    # the icon's glyph, so match the end)
    step = lab.page.get_by_role("button", name=re.compile(r"\bStep$"))
    step.focus()
    step.press("Enter")
    wait_painted_after(lab, CANVAS, before["seq"])
    state = wait_for_state(lab, lambda s: s["n_evaluations"] == 4 and s["painted"] == s["seq"])
    # the point evaluated is the one that was marked as next
    assert state["next_point"] != initial["next_point"]
    after = canvas_snapshot(lab, CANVAS)
    assert after["seq"] == state["seq"], (after["seq"], state)
    assert after["pixels"] != before["pixels"], "the canvas did not change after Step"

    # a 2-D problem from the dropdown: a new run, drawn as a heat map
    lab.page.get_by_role("combobox", name="problem").select_option("Branin (2-D)")
    wait_painted_after(lab, CANVAS, after["seq"])
    state = wait_for_state(lab, lambda s: s["dim"] == 2 and s["n_evaluations"] == 5 and s["painted"] == s["seq"])
    heat = canvas_snapshot(lab, CANVAS)
    assert heat["seq"] == state["seq"] and heat["pixels"] != after["pixels"]

    lab.assert_no_errors()
    page_shot = lab.screenshot("bo_explorer")
    canvas = lab.page.locator(CANVAS)
    canvas.scroll_into_view_if_needed()
    canvas.screenshot(path=str(page_shot.with_name("bo_explorer_canvas.png")))
