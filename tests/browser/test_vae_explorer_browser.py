"""LatentExplorer in a real JupyterLab + chromium: run the notebook, move z1 with the keyboard,
hover the latent scatter, and check both sides.

Both sides are checked each time (see ``explorer_page``); the state printed includes the decoded
point and a checksum of the image sent.
"""

from __future__ import annotations

import pytest
from explorer_page import (
    BROWSER_MARKS,
    assert_repainted,
    open_explorer,
    press_slider,
    wait_for_state,
    wait_painted_after,
)

pytestmark = BROWSER_MARKS

CANVAS = "canvas.bayeskit-vae-latent"


def test_vae_explorer_in_jupyterlab(lab_page, jupyter_lab):
    lab = lab_page
    initial, before = open_explorer(lab, jupyter_lab, "vae_explorer", CANVAS)
    assert initial["z1"] == 0.0 and initial["z2"] == 0.0 and initial["epochs_trained"] == 5

    press_slider(lab, "z1", 4)  # step 0.05
    wait_painted_after(lab, CANVAS, before["seq"])
    state = wait_for_state(lab, lambda s: s["z1"] == pytest.approx(0.2, abs=1e-9) and s["painted"] == s["seq"])
    assert state["latent_code"] == pytest.approx([0.2, 0.0], abs=1e-6)
    assert state["image_sum"] != pytest.approx(initial["image_sum"], abs=1e-6), "the kernel decoded no new image"
    after = assert_repainted(lab, CANVAS, state, before, "z1 moved")

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
    assert_repainted(lab, CANVAS, hovered, after, "the hover (no new decoded image)")

    lab.assert_no_errors()
    lab.screenshot("vae_explorer")
