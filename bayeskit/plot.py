"""One plot style for the series: colours that mean the same thing in every notebook.

Colours come from the Okabe-Ito palette (distinguishable with the common colour-vision
deficiencies). Their meaning is fixed across the series:

=========  =========================================================
DATA       observed data points (black)
MEAN       posterior / predictive mean (blue)
BAND       +-2 standard-deviation credible band (light blue)
SAMPLES    posterior function samples (thin, bluish green)
TRUTH      the true function when it is known (dashed vermilion)
PRIOR      prior quantities (grey)
ACCENT     something to notice: inducing points, a proposal, an argmax (orange)
=========  =========================================================

matplotlib is imported lazily, so ``import bayeskit`` never pulls it in.
"""

from __future__ import annotations

import numpy as np

DATA = "#000000"
MEAN = "#0072B2"
BAND = "#56B4E9"
SAMPLES = "#009E73"
TRUTH = "#D55E00"
PRIOR = "#999999"
ACCENT = "#E69F00"
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")

STYLE = {
    "figure.figsize": (7.0, 3.6),
    "figure.dpi": 100,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.25,
    "axes.prop_cycle": None,  # filled in by use_style (needs matplotlib's cycler)
    "legend.frameon": False,
    "font.size": 10,
}

BAND_LABEL = "mean +- 2 sd (95% credible band)"


def use_style() -> None:
    """Apply the bayeskit matplotlib style to the current session."""
    import matplotlib as mpl
    from cycler import cycler

    style = dict(STYLE)
    style["axes.prop_cycle"] = cycler(color=list(PALETTE))
    mpl.rcParams.update(style)


def _axes(ax):
    if ax is None:
        import matplotlib.pyplot as plt

        use_style()
        _, ax = plt.subplots()
    return ax


def gp(
    x_test,
    mean,
    std=None,
    *,
    X=None,
    y=None,
    samples=None,
    truth=None,
    ax=None,
    band_label: str = BAND_LABEL,
    mean_label: str = "posterior mean",
    data_label: str = "observations",
    title: str | None = None,
):
    """Plot a 1-D GP: mean line, labelled +-2 sd band, samples, data and the true function.

    x_test: (m,) or (m, 1); mean, std: (m,); samples: (m, s); truth: (m,) values of the true
    function at x_test. Returns the axes.
    """
    ax = _axes(ax)
    x = np.asarray(x_test).reshape(-1)
    mean = np.asarray(mean).reshape(-1)
    if std is not None:
        std = np.asarray(std).reshape(-1)
        ax.fill_between(x, mean - 2 * std, mean + 2 * std, color=BAND, alpha=0.35, lw=0, label=band_label)
    if samples is not None:
        samples = np.asarray(samples).reshape(x.size, -1)
        for j in range(samples.shape[1]):
            ax.plot(x, samples[:, j], color=SAMPLES, lw=0.8, alpha=0.7,
                    label="posterior samples" if j == 0 else None)
    if truth is not None:
        ax.plot(x, np.asarray(truth).reshape(-1), color=TRUTH, ls="--", lw=1.2, label="true function")
    ax.plot(x, mean, color=MEAN, lw=2, label=mean_label)
    if X is not None and y is not None:
        ax.scatter(np.asarray(X).reshape(-1), np.asarray(y).reshape(-1), s=14, color=DATA, zorder=3, label=data_label)
    if title:
        ax.set_title(title)
    ax.legend(loc="best", fontsize=8)
    return ax


def samples(x_test, draws, *, ax=None, label: str = "prior samples", color: str = PRIOR):
    """Plot function draws (m, s) against x_test (m,), the first one labelled."""
    ax = _axes(ax)
    x = np.asarray(x_test).reshape(-1)
    draws = np.asarray(draws).reshape(x.size, -1)
    for j in range(draws.shape[1]):
        ax.plot(x, draws[:, j], color=color, lw=1, alpha=0.8, label=label if j == 0 else None)
    ax.legend(loc="best", fontsize=8)
    return ax
