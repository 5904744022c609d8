"""Data helpers: shapes, regions, reproducibility from an explicit seed, OOD probes really far
from the data (brute-force distances), and the digit shift against a direct pixel loop."""

import jax
import numpy as np
import pytest
from bayeskit.data import load_digits, toy_gap_function

from bayeskit.bll import datasets


def test_gap_regression_regions_and_reproducibility():
    d = datasets.gap_regression(50, 200, seed=3, gap=(-0.5, 1.0), bounds=(-3.0, 3.0), tail=1.5)
    assert d.x_train.shape == (50, 1) and d.y_train.shape == (50,)
    assert d.x_test.shape == (200, 1) and d.y_test.shape == d.f_test.shape == d.region.shape == (200,)
    x = d.x_train[:, 0]
    assert not np.any((x > -0.5) & (x < 1.0)) and x.min() >= -3.0 and x.max() <= 3.0
    xt = d.x_test[:, 0]
    assert xt.min() == pytest.approx(-4.5) and xt.max() == pytest.approx(4.5)
    np.testing.assert_array_equal(d.region == datasets.GAP, (xt > -0.5) & (xt < 1.0))
    np.testing.assert_array_equal(d.region == datasets.TAILS, (xt < -3.0) | (xt > 3.0))
    assert np.all(np.isin(d.region, [0, 1, 2])) and np.sum(d.region == datasets.IN_DISTRIBUTION) > 0
    np.testing.assert_allclose(d.f_test, toy_gap_function(xt))
    # the noise has the stated size: residuals of the training targets about the true function
    resid = d.y_train - toy_gap_function(x)
    assert 0.05 < resid.std() < 0.2
    again = datasets.gap_regression(50, 200, seed=3, gap=(-0.5, 1.0), bounds=(-3.0, 3.0), tail=1.5)
    np.testing.assert_array_equal(again.x_train, d.x_train)
    np.testing.assert_array_equal(again.y_test, d.y_test)
    other = datasets.gap_regression(50, 200, seed=4)
    assert not np.array_equal(other.x_train, d.x_train)
    with_key = datasets.gap_regression(50, 200, seed=jax.random.key(0))
    np.testing.assert_array_equal(with_key.x_train, datasets.gap_regression(50, 200, seed=jax.random.key(0)).x_train)


@pytest.mark.parametrize("make, n_classes", [
    (lambda seed: datasets.two_moons(200, 100, 150, seed=seed), 2),
    (lambda seed: datasets.spirals(300, 100, 150, seed=seed, n_classes=3), 3),
])
def test_2d_sets_and_ood_probes_far_from_the_data(make, n_classes):
    d = make(5)
    assert d.x_train.shape == (d.y_train.shape[0], 2) and d.x_ood.shape == (150, 2)
    assert d.n_classes == n_classes and set(np.unique(d.y_train)) == set(range(n_classes))
    assert np.all(d.y_ood == -1)
    min_distance = 0.5 * np.max(np.std(d.x_train, axis=0))
    # brute force: every probe is at least min_distance from every training point
    for p in d.x_ood:
        assert np.min(np.linalg.norm(d.x_train - p, axis=1)) >= min_distance - 1e-12
    # and the test set is not: most test points sit close to training points
    nearest = [np.min(np.linalg.norm(d.x_train - p, axis=1)) for p in d.x_test]
    assert np.median(nearest) < 0.5 * min_distance
    again = make(5)
    np.testing.assert_array_equal(again.x_ood, d.x_ood)
    np.testing.assert_array_equal(again.y_test, d.y_test)


def test_two_moons_geometry():
    d = datasets.two_moons(400, 10, 10, seed=0, noise=0.0)
    upper, lower = d.x_train[d.y_train == 0], d.x_train[d.y_train == 1]
    np.testing.assert_allclose(np.linalg.norm(upper, axis=1), 1.0)
    np.testing.assert_allclose(np.linalg.norm(lower - [1.0, 0.5], axis=1), 1.0)
    assert np.all(upper[:, 1] >= 0) and np.all(lower[:, 1] <= 0.5)


def test_grid_2d_covers_the_widened_box():
    x = np.array([[0.0, 0.0], [2.0, 1.0]])
    xx, yy, pts = datasets.grid_2d(x, 11, expand=0.5)
    assert xx.shape == yy.shape == (11, 11) and pts.shape == (121, 2)
    assert pts[:, 0].min() == -1.0 and pts[:, 0].max() == 3.0
    assert pts[:, 1].min() == -0.5 and pts[:, 1].max() == 1.5
    np.testing.assert_array_equal(pts[:, 0], xx.ravel())


def test_digits_shift_matches_a_pixel_loop():
    d = datasets.digits_shift(seed=0, test_fraction=0.25, shift=2, noise_std=0.0)
    full = load_digits()
    assert d.x_train.shape[0] + d.x_test.shape[0] == full.X.shape[0] == 1797
    assert d.x_test.shape == d.x_ood.shape and d.x_train.shape[1] == 64 and d.n_classes == 10
    np.testing.assert_array_equal(d.y_ood, d.y_test)
    assert d.x_train.min() >= 0.0 and d.x_train.max() <= 1.0
    img = d.x_test[:5].reshape(-1, 8, 8)
    expected = np.zeros_like(img)
    for r in range(8):
        for c in range(8):
            if r - 2 >= 0 and c - 2 >= 0:
                expected[:, r, c] = img[:, r - 2, c - 2]
    np.testing.assert_array_equal(d.x_ood[:5].reshape(-1, 8, 8), expected)
    noisy = datasets.digits_shift(seed=0, test_fraction=0.25, shift=2, noise_std=0.3)
    np.testing.assert_array_equal(noisy.x_test, d.x_test)  # same split for the same seed
    assert noisy.x_ood.min() >= 0.0 and noisy.x_ood.max() <= 1.0
    assert np.abs(noisy.x_ood - d.x_ood).mean() > 0.05


@pytest.mark.parametrize("call, err, match", [
    (lambda: datasets.gap_regression(0, seed=0), ValueError, "n_train"),
    (lambda: datasets.gap_regression(seed=0, noise_std=-1.0), ValueError, "noise_std"),
    (lambda: datasets.two_moons(seed=None), TypeError, "seed must be"),
    (lambda: datasets.spirals(seed=0, n_classes=1), ValueError, "n_classes"),
    (lambda: datasets.far_points(np.zeros((3, 2)), 5, seed=0, expand=0.0, min_distance=1.0), ValueError,
     "could not place"),
    (lambda: datasets.far_points(np.full((3, 2), np.nan), 5, seed=0), ValueError, "finite"),
    (lambda: datasets.digits_shift(seed=0, shift=8), ValueError, "shift"),
    (lambda: datasets.digits_shift(seed=0, test_fraction=1.0), ValueError, "test_fraction"),
    (lambda: datasets.grid_2d(np.zeros((3, 3))), ValueError, r"\(m, 2\)"),
])
def test_bad_input_is_named(call, err, match):
    with pytest.raises(err, match=match):
        call()
