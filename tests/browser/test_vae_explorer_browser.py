"""LatentExplorer in a real JupyterLab + chromium: run the notebook, move z1 with the keyboard,
hover the latent scatter, and check both sides.

Kernel side: a cell printing the explorer's state (the decoded point, a checksum of the image
sent, the update number) is run again after each interaction. Picture: the canvas's pixels
change and its ``data-seq`` (the update it painted) reaches the kernel's ``seq``; the kernel
also sees ``painted == seq``, echoed from the browser after the paint.
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

NOTEBOOK = Path(__file__).resolve().parent / "notebooks" / "vae_explorer.ipynb"

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.xdist_group("browser")]

CANVAS = "canvas.bayeskit-vae-latent"


def test_vae_explorer_in_jupyterlab(lab_page, jupyter_lab):
    lab = lab_page
    name = jupyter_lab.add_notebook(NOTEBOOK)
    lab.open_notebook(name)
    lab.run_all()
    lab.page.wait_for_selector(CANVAS, state="visible", timeout=60_000)
    wait_painted_after(lab, CANVAS, 0)
    lab.assert_no_errors()

    initial = parse_state(lab.output_text(STATE_CELL))
    assert initial["z1"] == 0.0 and initial["z2"] == 0.0 and initial["epochs_trained"] == 5
    before = canvas_snapshot(lab, CANVAS)
    assert before["width"] > 0 and before["seq"] >= 1

    # move z1 as a user would: focus the slider's handle, press ArrowRight 4 times (step 0.05)
    handle = lab.slider_handle("z1")
    handle.focus()
    for _ in range(4):
        handle.press("ArrowRight")
    wait_painted_after(lab, CANVAS, before["seq"])
    state = wait_for_state(lab, lambda s: s["z1"] == pytest.approx(0.2, abs=1e-9) and s["painted"] == s["seq"])
    assert state["latent_code"] == pytest.approx([0.2, 0.0], abs=1e-6)
    assert state["image_sum"] != pytest.approx(initial["image_sum"], abs=1e-6), "the kernel decoded no new image"
    after = canvas_snapshot(lab, CANVAS)
    assert after["seq"] == state["seq"], (after["seq"], state)
    assert after["pixels"] != before["pixels"], "the canvas did not change after z1 moved"

    # hover the scatter: the browser sends the latent point under the pointer, the kernel decodes
    canvas = lab.page.locator(CANVAS)
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    # the scatter's plot box is 52..382 px across and 28..358 px down (820 x 430 canvas)
    px, py = box["x"] + (52 + 0.25 * 330) * box["width"] / 820, box["y"] + (28 + 0.25 * 330) * box["height"] / 430
    lab.page.mouse.move(px - 20, py - 20)
    lab.page.mouse.move(px, py, steps=5)
    wait_painted_after(lab, CANVAS, after["seq"])
    # a quarter of the way across from the left and down from the top of [-4, 4]^2: about (-2, 2)
    hovered = wait_for_state(lab, lambda s: abs(s["z1"] + 2.0) < 0.1 and abs(s["z2"] - 2.0) < 0.1
                             and s["painted"] == s["seq"])
    assert hovered["image_sum"] != pytest.approx(state["image_sum"], abs=1e-6)
    shot = canvas_snapshot(lab, CANVAS)
    assert shot["seq"] == hovered["seq"]
    assert shot["pixels"] != after["pixels"], "the decoded image did not repaint after the hover"

    lab.assert_no_errors()
    lab.screenshot("vae_explorer")
