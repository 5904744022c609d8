"""BOExplorer in a real JupyterLab + chromium: run the notebook, press Step, switch to a 2-D
problem, and check both sides each time (see ``explorer_page``)."""

from __future__ import annotations

import re

from explorer_page import (
    BROWSER_MARKS,
    assert_repainted,
    open_explorer,
    screenshot_canvas,
    wait_for_state,
    wait_painted_after,
)

pytestmark = BROWSER_MARKS

CANVAS = "canvas.bayeskit-bo-canvas"


def test_bo_explorer_in_jupyterlab(lab_page, jupyter_lab):
    lab = lab_page
    initial, before = open_explorer(lab, jupyter_lab, "bo_explorer", CANVAS)
    assert initial["problem"] == "Forrester (1-D)" and initial["n_evaluations"] == 3

    # press Step from the keyboard: focus the button, press Enter (its accessible name starts with
    # the icon's glyph, so match the end)
    step = lab.page.get_by_role("button", name=re.compile(r"\bStep$"))
    step.focus()
    step.press("Enter")
    wait_painted_after(lab, CANVAS, before["seq"])
    state = wait_for_state(lab, lambda s: s["n_evaluations"] == 4 and s["painted"] == s["seq"])
    # the point evaluated is the one that was marked as next
    assert state["next_point"] != initial["next_point"]
    after = assert_repainted(lab, CANVAS, state, before, "Step")

    # a 2-D problem from the dropdown: a new run, drawn as a heat map
    lab.page.get_by_role("combobox", name="problem").select_option("Branin (2-D)")
    wait_painted_after(lab, CANVAS, after["seq"])
    state = wait_for_state(lab, lambda s: s["dim"] == 2 and s["n_evaluations"] == 5 and s["painted"] == s["seq"])
    assert_repainted(lab, CANVAS, state, after, "the problem changed")

    lab.assert_no_errors()
    screenshot_canvas(lab, CANVAS, "bo_explorer")
