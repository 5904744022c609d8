"""The associative-scan filter and smoother equal the sequential ones."""

import numpy as np
import pytest

import bayeskit  # noqa: F401
from bayeskit.filters import kalman_filter, rts_smoother
from bayeskit.filters.parallel import parallel_kalman_filter, parallel_rts_smoother

from .test_kalman import _random_model


@pytest.mark.slow
def test_parallel_equals_sequential_at_ten_thousand_steps():
    rng = np.random.default_rng(3)
    model = _random_model(rng)
    ys = rng.normal(size=(10_000, 2))
    ys[100, 1] = np.nan
    ys[2000:2010] = np.nan
    seq = rts_smoother(model, ys)
    par = parallel_rts_smoother(model, ys)
    for a, b in ((seq.filtered, par.filtered), (seq, par)):
        np.testing.assert_allclose(b.means, a.means, rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(b.covariances, a.covariances, rtol=1e-8, atol=1e-10)
    assert float(par.filtered.log_likelihood) == pytest.approx(float(seq.filtered.log_likelihood), rel=1e-10)
    np.testing.assert_allclose(par.filtered.step_log_likelihoods, seq.filtered.step_log_likelihoods, rtol=1e-8, atol=1e-10)
    # and the standalone filter is the same program
    np.testing.assert_allclose(parallel_kalman_filter(model, ys).means, par.filtered.means, rtol=0, atol=0)
    assert kalman_filter(model, ys).means.shape == (10_000, 4)
