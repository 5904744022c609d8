"""Test functions: optima at the published optimisers, local optimality, noise handling."""

import numpy as np
import pytest
import scipy.optimize

import bayeskit.bo as bo
from bayeskit.bo import test_functions as tf

FUNCS = [tf.Forrester(), tf.Branin(), tf.Hartmann3(), tf.Hartmann6(), tf.Ackley(3), tf.Levy(4), tf.Rosenbrock(3)]


@pytest.mark.parametrize("f", FUNCS, ids=lambda f: f.name)
def test_optimum_value_at_optimizers(f):
    vals = f.evaluate(f.optimizers)
    np.testing.assert_allclose(vals, f.optimum, atol=1e-5)
    # a local search from each optimiser cannot go meaningfully below the published value
    for x0 in f.optimizers:
        res = scipy.optimize.minimize(f.evaluate, x0, method="L-BFGS-B", bounds=f.bounds)
        assert res.fun >= f.optimum - 1e-6
        assert abs(res.fun - f.optimum) < 1e-5
    # and no random point beats it
    rng = np.random.default_rng(0)
    lo, hi = np.array(f.bounds).T
    X = rng.uniform(lo, hi, (2000, f.dim))
    assert np.all(f.evaluate(X) >= f.optimum - 1e-9)


def test_known_closed_form_values():
    assert tf.Branin().optimum == pytest.approx(0.397887357729738, abs=1e-14)
    np.testing.assert_allclose(tf.Branin().evaluate(tf.Branin.optimizers), 5 / (4 * np.pi), atol=1e-12)
    assert bo.benchmarks is tf


def test_noise_is_seeded_and_evaluate_is_noise_free():
    a, b = tf.Branin(noise_std=0.5, seed=3), tf.Branin(noise_std=0.5, seed=3)
    x = np.array([1.0, 2.0])
    assert a(x) == b(x) and a(x) != tf.Branin()(x)
    assert a.evaluate(x) == tf.Branin()(x)
    with pytest.raises(ValueError, match="seed is required"):
        tf.Branin(noise_std=0.1)
    with pytest.raises(ValueError, match="noise_std"):
        tf.Branin(noise_std=-1, seed=0)
    with pytest.raises(ValueError, match="x must have shape"):
        tf.Branin()(np.zeros(3))
    with pytest.raises(ValueError, match="dim"):
        tf.Rosenbrock(1)
