"""What every explorer's browser test reads from the page: the kernel-side state printed by a
notebook cell, and the canvas the explorer painted (pixels and the update number it painted)."""

from __future__ import annotations

import json
import re
import time

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
