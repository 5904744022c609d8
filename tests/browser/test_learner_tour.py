"""The learner's tour, in a real JupyterLab + chromium: start at the index, follow it to one
notebook of each family, run that notebook top to bottom, use its explorer, take a screenshot.

What a learner would notice is what fails the tour: a link in the index that does not open its
notebook, a cell that errors, a widget that does not render ("Error displaying widget", "model
not found", a "Loading widget..." placeholder that never turns into the widget), or an explorer
whose picture does not follow its control. The notebooks run in fast mode (``BAYESKIT_FAST=1``,
inherited by the server's kernels) from a copy of ``notebooks/`` as the server's root, which is
also how a learner sees them after ``make lab`` or on Binder.

Screenshots: ``test-artifacts/tour-<family>.png`` (the whole page) and
``test-artifacts/explorer-<family>.png`` (the explorer alone: the README's family pictures in
``docs/images/`` are copies of these).
"""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path
from typing import NamedTuple

import pytest
from explorer_page import canvas_snapshot, wait_painted_after

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.xdist_group("browser")]

SERIES = Path(__file__).resolve().parents[2] / "notebooks"


class Stop(NamedTuple):
    family: str
    link_text: str  # the link in 00_index.ipynb, as rendered
    notebook: str
    canvas: str  # CSS selector of the explorer's canvas
    slider: str | None  # description of a slider to move by keyboard ...
    button: str | None = None  # ... or the name of a button to press with the keyboard


TOUR = [
    Stop("gp", "GP basics: a distribution over functions", "01a_gp_basics.ipynb",
         "canvas.bayeskit-gp-canvas", "lengthscale"),
    Stop("bo", "Bayesian optimisation 1: acquisition functions side by side", "02a_bo_acquisitions.ipynb",
         "canvas.bayeskit-bo-canvas", None, "Step"),
    Stop("filters", "Kalman filtering 2: nonlinear models, EKF, UKF and the particle filter",
         "03b_nonlinear_filters.ipynb", "canvas.bayeskit-filter-canvas", "missing"),
    Stop("vae", "VAEs 2: a VAE on handwritten digits", "04b_vae_digits.ipynb",
         "canvas.bayeskit-vae-latent", "z1"),
    Stop("bll", "Bayesian last layers 2: variational Bayesian last layers for regression",
         "05b_vbll_regression.ipynb", "canvas.bayeskit-bll-canvas", "prior scale"),
]


def _follow_link(lab, stop: Stop, timeout: float = 120.0) -> None:
    """Click the index's link; wait until that notebook is the visible tab with an idle kernel."""
    index = lab.page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-RenderedMarkdown")
    link = index.locator("a", has_text=stop.link_text).first
    link.scroll_into_view_if_needed()
    link.click()
    deadline = time.monotonic() + timeout
    active_tab = lab.page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab.lm-mod-current .lm-TabBar-tabLabel")
    while True:
        lab.dismiss_kernel_dialog()
        if stop.notebook in active_tab.first.inner_text() and lab._kernel_idle(stop.notebook):
            return
        if time.monotonic() > deadline:
            lab.screenshot(f"tour-{stop.family}-not-opened")
            raise TimeoutError(f"following '{stop.link_text}' did not open {stop.notebook} with an idle kernel")
        time.sleep(0.25)


def _assert_widgets_rendered(lab, timeout: float = 30.0) -> None:
    """No widget placeholder is left: every widget output turned into its view."""
    panel = lab.page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook")
    deadline = time.monotonic() + timeout
    while "Loading widget" in panel.inner_text():
        assert time.monotonic() < deadline, "a widget stayed 'Loading widget...' (never rendered)"
        time.sleep(0.25)


def test_learner_tour(lab_page, jupyter_lab):
    lab = lab_page
    for path in SERIES.iterdir():  # the series as a learner gets it: notebooks and pages
        if path.suffix in (".ipynb", ".md"):
            shutil.copy(path, jupyter_lab.root_dir / path.name)
    lab.open_notebook("00_index.ipynb")
    lab.run_all(timeout=120)
    lab.assert_no_errors()
    lab.screenshot("tour-index")

    for stop in TOUR:
        lab.page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text="00_index.ipynb").first.click()
        _follow_link(lab, stop)
        lab.run_all(timeout=400)
        lab.assert_no_errors()
        _assert_widgets_rendered(lab)

        selector = f".jp-NotebookPanel:not(.lm-mod-hidden) {stop.canvas}"
        lab.page.locator(selector).first.scroll_into_view_if_needed()
        wait_painted_after(lab, selector, 0)
        before = canvas_snapshot(lab, selector)
        if stop.slider:
            handle = lab.slider_handle(stop.slider)
            handle.focus()
            handle.press("ArrowRight")
        else:
            panel = lab.page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
            button = panel.get_by_role("button", name=re.compile(rf"\b{re.escape(stop.button)}$")).first
            button.focus()
            button.press("Enter")
        wait_painted_after(lab, selector, before["seq"])
        after = canvas_snapshot(lab, selector)
        assert after["pixels"] != before["pixels"], f"{stop.notebook}: the explorer did not repaint"
        lab.assert_no_errors()
        page_shot = lab.screenshot(f"tour-{stop.family}")
        explorer = lab.page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output",
                                    has=lab.page.locator(stop.canvas)).first
        explorer.screenshot(path=str(page_shot.with_name(f"explorer-{stop.family}.png")))
