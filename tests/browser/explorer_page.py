"""What every explorer's browser test does on the page: open its test notebook and run it to the
first paint, read the kernel-side state printed by a notebook cell, move a slider by keyboard,
and check the canvas the explorer painted (pixels and the update number it painted).

Every explorer's test checks both sides after each interaction. Kernel side: a cell printing the
explorer's state is run again. Picture: the canvas's pixels change and its ``data-seq`` (the
update it painted) advances to the kernel's ``seq``; the kernel also sees ``painted == seq``,
echoed from the browser after the paint.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parent / "notebooks"
#: the marks of every explorer's browser test
BROWSER_MARKS = [pytest.mark.browser, pytest.mark.slow, pytest.mark.xdist_group("browser")]

STATE_CELL = 1  # in each test notebook, code cell 0 shows the explorer and cell 1 prints its state


def parse_state(text: str) -> dict:
    match = re.search(r"STATE (\{.*\})", text)
    assert match, f"no STATE line in the output: {text!r}"
    return json.loads(match.group(1))


def canvas_snapshot(lab, selector: str) -> dict:
    """The painted picture: data URL of the pixels, the painted update and the plot size."""
    return lab.page.eval_on_selector(
        selector,
        "c => ({pixels: c.toDataURL(), seq: +(c.dataset.seq || -1), width: c.width, height: c.height})",
    )


def wait_painted_after(lab, selector: str, seq: int, timeout_ms: float = 30_000) -> None:
    """Wait until the canvas has painted an update newer than ``seq``."""
    lab.page.wait_for_function(
        "([sel, seq]) => { const c = document.querySelector(sel); return c && +(c.dataset.seq || -1) > seq; }",
        arg=[selector, seq], timeout=timeout_ms,
    )


def wait_for_state(lab, condition, timeout: float = 30.0) -> dict:
    """Re-run the state cell until ``condition(state)`` holds; returns that state."""
    deadline = time.monotonic() + timeout
    while True:
        state = parse_state(lab.run_cell(STATE_CELL))
        if condition(state):
            return state
        assert time.monotonic() < deadline, f"the kernel state never satisfied the check: {state}"
        time.sleep(0.2)


def open_explorer(lab, jupyter_lab, notebook: str, selector: str, run_timeout: float = 180.0) -> tuple[dict, dict]:
    """Open ``notebooks/<notebook>.ipynb``, run all its cells and wait for the explorer's first
    paint, with no widget errors; returns (the kernel's initial state, the first canvas snapshot)."""
    lab.open_notebook(jupyter_lab.add_notebook(NOTEBOOKS / f"{notebook}.ipynb"))
    lab.run_all(timeout=run_timeout)
    lab.page.wait_for_selector(selector, state="visible", timeout=60_000)
    wait_painted_after(lab, selector, 0)
    lab.assert_no_errors()
    initial = parse_state(lab.output_text(STATE_CELL))
    before = canvas_snapshot(lab, selector)
    assert before["width"] > 0 and before["seq"] >= 1
    return initial, before


def press_slider(lab, description: str, times: int, key: str = "ArrowRight") -> None:
    """Move the slider labelled ``description`` as a user would: focus its handle, press ``key``."""
    handle = lab.slider_handle(description)
    handle.focus()
    for _ in range(times):
        handle.press(key)


def assert_repainted(lab, selector: str, state: dict, before: dict, what: str) -> dict:
    """The canvas painted the kernel's latest update (``state["seq"]``) and its pixels differ
    from ``before``; returns the new snapshot."""
    after = canvas_snapshot(lab, selector)
    assert after["seq"] == state["seq"], (after["seq"], state)
    assert after["pixels"] != before["pixels"], f"the canvas did not change after {what}"
    return after


def screenshot_canvas(lab, selector: str, name: str) -> None:
    """Screenshots of the page (``name``.png) and of the canvas alone (``name``_canvas.png): the
    notebook scrolls inside the page, so the plot may be out of the page's picture."""
    page_shot = lab.screenshot(name)
    canvas = lab.page.locator(selector)
    canvas.scroll_into_view_if_needed()
    canvas.screenshot(path=str(page_shot.with_name(f"{name}_canvas.png")))
