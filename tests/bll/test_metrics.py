"""Metrics against independent references: scikit-learn's log_loss / accuracy_score /
roc_auc_score, SciPy's densities, a brute-force ECE; hypothesis for bounds and symmetries."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from sklearn.metrics import accuracy_score, log_loss, roc_auc_score

from bayeskit.bll import metrics


def _random_probs(rng, n, k, temperature=1.0):
    logits = rng.normal(size=(n, k)) * temperature
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    return p / p.sum(axis=1, keepdims=True)


def _brute_force_ece(labels, probs, n_bins):
    """Loop over bins and points: (n_b / n) |acc_b - conf_b| with right-closed bins (b/B, (b+1)/B]."""
    n = len(labels)
    total = 0.0
    for b in range(n_bins):
        lo, hi = b / n_bins, (b + 1) / n_bins
        members = []
        for i in range(n):
            c = max(probs[i])
            if (lo < c <= hi) or (b == 0 and c == 0.0):
                members.append(i)
        if members:
            acc = np.mean([np.argmax(probs[i]) == labels[i] for i in members])
            conf = np.mean([max(probs[i]) for i in members])
            total += len(members) / n * abs(acc - conf)
    return total


def test_regression_nlls_match_scipy_densities():
    rng = np.random.default_rng(0)
    y, m, v = rng.normal(size=50), rng.normal(size=50), rng.uniform(0.1, 2.0, size=50)
    ref = -np.mean(stats.norm.logpdf(y, loc=m, scale=np.sqrt(v)))
    assert metrics.gaussian_nll(y, m, v) == pytest.approx(ref, rel=1e-12)
    df = rng.uniform(1.0, 10.0, size=50)
    ref_t = -np.mean(stats.t.logpdf(y, df, loc=m, scale=np.sqrt(v)))
    assert metrics.student_t_nll(y, m, np.sqrt(v), df) == pytest.approx(ref_t, rel=1e-12)
    # nu -> infinity recovers the Gaussian
    assert metrics.student_t_nll(y, m, np.sqrt(v), 1e9) == pytest.approx(metrics.gaussian_nll(y, m, v), rel=1e-6)
    assert metrics.rmse(y, m) == pytest.approx(np.sqrt(np.mean((y - m) ** 2)), rel=1e-12)


def test_classification_metrics_match_sklearn():
    rng = np.random.default_rng(1)
    probs = _random_probs(rng, 300, 4, temperature=2.0)
    labels = rng.integers(0, 4, size=300)
    assert metrics.accuracy(labels, probs) == pytest.approx(accuracy_score(labels, probs.argmax(1)))
    assert metrics.categorical_nll(labels, probs) == pytest.approx(log_loss(labels, probs, labels=range(4)), rel=1e-10)
    ent = metrics.predictive_entropy(probs)
    np.testing.assert_allclose(ent, stats.entropy(probs, axis=1), rtol=1e-12)
    assert metrics.predictive_entropy(np.array([[1.0, 0.0]]))[0] == 0.0


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(1, 60), k=st.integers(2, 5),
       n_bins=st.integers(1, 20), temperature=st.floats(0.0, 8.0))
def test_ece_equals_brute_force_and_lies_in_unit_interval(seed, n, k, n_bins, temperature):
    rng = np.random.default_rng(seed)
    probs = _random_probs(rng, n, k, temperature)
    labels = rng.integers(0, k, size=n)
    bins = metrics.reliability_bins(labels, probs, n_bins=n_bins)
    assert bins.ece == pytest.approx(_brute_force_ece(labels, probs, n_bins), abs=1e-12)
    assert 0.0 <= bins.ece <= 1.0
    assert bins.counts.sum() == n and bins.edges.shape == (n_bins + 1,)
    filled = bins.counts > 0
    assert np.all((bins.confidence[filled] > bins.edges[:-1][filled] - 1e-12)
                  & (bins.confidence[filled] <= bins.edges[1:][filled] + 1e-12))


def test_ece_bin_edges_are_right_closed_and_exact_cases():
    # confidence exactly 0.6 with 5 bins lands in bin (0.4, 0.6], index 2
    probs = np.array([[0.6, 0.4], [0.6, 0.4], [1.0, 0.0]])
    bins = metrics.reliability_bins(np.array([0, 1, 0]), probs, n_bins=5)
    np.testing.assert_array_equal(bins.counts, [0, 0, 2, 0, 1])
    assert bins.ece == pytest.approx((2 / 3) * abs(0.5 - 0.6))
    # always right and fully confident: perfectly calibrated; always wrong and confident: ECE 1
    assert metrics.expected_calibration_error([0, 1], [[1.0, 0.0], [0.0, 1.0]]) == 0.0
    assert metrics.expected_calibration_error([1, 0], [[1.0, 0.0], [0.0, 1.0]]) == 1.0


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(2, 80), n_levels=st.integers(1, 6))
def test_auroc_matches_sklearn_with_ties_and_is_antisymmetric(seed, n, n_levels):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, size=n)
    labels[0], labels[1] = 0, 1
    scores = rng.integers(0, n_levels, size=n).astype(float)  # few levels: many ties
    a = metrics.auroc(labels, scores)
    assert a == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    assert 0.0 <= a <= 1.0
    assert metrics.auroc(labels, -scores) == pytest.approx(1.0 - a, abs=1e-12)


def test_ood_auroc_orientation():
    rng = np.random.default_rng(2)
    inside, outside = rng.normal(size=200), rng.normal(loc=3.0, size=100)
    a = metrics.ood_auroc(inside, outside)
    labels = np.r_[np.zeros(200), np.ones(100)]
    assert a == pytest.approx(roc_auc_score(labels, np.r_[inside, outside]))
    assert a > 0.95
    assert metrics.ood_auroc([1.0, 2.0], [3.0, 4.0]) == 1.0
    assert metrics.ood_auroc([1.0, 1.0], [1.0]) == 0.5


@pytest.mark.parametrize("call, match", [
    (lambda: metrics.gaussian_nll([0.0, 1.0], [0.0, 1.0], [1.0, -1.0]), "variance must be > 0"),
    (lambda: metrics.gaussian_nll([0.0, np.nan], [0.0, 1.0], [1.0, 1.0]), "y contains"),
    (lambda: metrics.rmse([0.0, 1.0], [0.0]), "mean has 1 entries"),
    (lambda: metrics.accuracy([0, 1], [[0.5, 0.6], [0.5, 0.5]]), "sum to 1"),
    (lambda: metrics.accuracy([0, 2], [[0.5, 0.5], [0.5, 0.5]]), r"labels must lie in \[0, 2\)"),
    (lambda: metrics.categorical_nll([0], [[1.0]]), "K >= 2"),
    (lambda: metrics.auroc([1, 1], [0.1, 0.2]), "needs both classes"),
    (lambda: metrics.auroc([0, 2], [0.1, 0.2]), "binary"),
    (lambda: metrics.reliability_bins([0], [[0.5, 0.5]], n_bins=0), "n_bins"),
    (lambda: metrics.student_t_nll([0.0], [0.0], [1.0], 0.0), "df must be > 0"),
    (lambda: metrics.ood_auroc([], [1.0]), "scores_in is empty"),
])
def test_bad_input_is_named(call, match):
    with pytest.raises(ValueError, match=match):
        call()
