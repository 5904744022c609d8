"""Acceptance (issue 3): log-EI Bayesian optimisation beats random search by a wide margin.

On Branin (2-D, 30 evaluations) and Hartmann-6 (6-D, 40 evaluations), three seeds each, the
median final simple regret of ``bayeskit.bo.minimize(..., acquisition="log_ei")`` must be at
least ten times smaller than random search's with the same number of evaluations. The random
search reference is the median over 256 independent runs (cheap, and much less noisy than three),
so the test compares BO against what random search typically achieves.

The budgets were measured on the CI machine (seeds 0-4, 2026-11): Branin at 30 evaluations gives
BO regrets 0-0.009 against a random-search median of 1.2; Hartmann-6 at 40 gives 0.011-0.29
(median 0.045) against 1.7, and at 30 evaluations the margin is only about 3x, too thin for a
robust test. The absolute thresholds below sit well above those figures, below what a broken
surrogate or acquisition optimiser reaches (random search's 10th percentile is 0.17 on Branin at
30 evaluations and 0.93 on Hartmann-6 at 40).
"""

import numpy as np
import pytest

import bayeskit.bo as bo
from bayeskit.bo.test_functions import Branin, Hartmann6

SEEDS = (0, 1, 2)


def random_search_regrets(f, n_calls: int, n_runs: int = 256) -> np.ndarray:
    """Final simple regret of n_runs independent uniform random searches of n_calls points: (n_runs,)."""
    box = np.asarray(f.bounds, dtype=np.float64)
    rng = np.random.default_rng(12345)
    X = rng.uniform(box[:, 0], box[:, 1], size=(n_runs, n_calls, f.dim))
    values = f.evaluate(X.reshape(-1, f.dim)).reshape(n_runs, n_calls)
    return values.min(axis=1) - f.optimum


def bo_regrets(f, n_calls: int) -> np.ndarray:
    out = []
    for seed in SEEDS:
        res = bo.minimize(f, f.bounds, n_calls=n_calls, acquisition="log_ei", seed=seed)
        assert len(res.func_vals) == n_calls
        # the reported optimum is a real evaluation of f at res.x
        assert res.fun == pytest.approx(f.evaluate(res.x), rel=1e-12)
        out.append(res.fun - f.optimum)
    return np.asarray(out)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("problem", "n_calls", "max_median_regret"),
    [(Branin, 30, 0.05), (Hartmann6, 40, 0.3)],
    ids=["branin-30", "hartmann6-40"],
)
def test_log_ei_beats_random_search_by_a_wide_margin(problem, n_calls, max_median_regret):
    f = problem()
    bo_r = bo_regrets(f, n_calls)
    rs_r = random_search_regrets(f, n_calls)
    assert np.all(bo_r >= -1e-9), bo_r  # regret cannot be negative: f* is the true minimum
    assert np.median(bo_r) < 0.1 * np.median(rs_r), (bo_r, np.median(rs_r))
    assert np.median(bo_r) < max_median_regret, bo_r
    # and BO's median beats random search's 10th percentile: better than a lucky random search
    assert np.median(bo_r) < np.percentile(rs_r, 10), (bo_r, np.percentile(rs_r, 10))
