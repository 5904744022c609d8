"""2-D targets: closed-form normalisers against the grid, the paper's energies at known points."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate

import bayeskit  # noqa: F401  (float64)
from bayeskit.flows import (
    banana,
    gaussian_mixture,
    grid_log_normalizer,
    grid_points,
    paper_energy,
    ring,
    standard_targets,
)


@pytest.mark.parametrize("make", [banana, ring, gaussian_mixture], ids=["banana", "ring", "mixture"])
def test_grid_normaliser_matches_closed_form(make):
    target = make()
    assert grid_log_normalizer(target.log_prob, target.bounds, 400) == pytest.approx(
        target.log_normalizer, abs=2e-5
    )


def test_ring_normaliser_against_scipy_quadrature():
    """The ring's closed form, checked by 1-D polar quadrature (also at a small radius)."""
    for radius, width in ((2.5, 0.3), (0.3, 0.5)):
        target = ring(radius, width)
        val, _ = integrate.quad(lambda r, c=radius, s=width: r * math.exp(-0.5 * ((r - c) / s) ** 2), 0, np.inf)
        assert target.log_normalizer == pytest.approx(math.log(2 * math.pi * val), rel=1e-9)


def test_unequal_mixture_and_banana_are_normalised_densities():
    target = gaussian_mixture(means=[[0.0, 0.0], [3.0, 1.0]], scales=[0.5, 1.0], weights=[0.2, 3.0])
    assert grid_log_normalizer(target.log_prob, target.bounds, 400) == pytest.approx(
        target.log_normalizer, abs=2e-5
    )
    # banana: the z2-conditional is Gaussian with the stated mean
    t = banana(curvature=0.8, scale1=1.0, scale2=0.3)
    z2 = np.linspace(-3, 6, 4001)
    lp = np.asarray(t.log_prob(jnp.stack([np.full_like(z2, 1.5), z2], -1)))
    assert z2[np.argmax(lp)] == pytest.approx(0.8 * (1.5**2 - 1.0), abs=3e-3)


def _paper_U(index, z1, z2):
    """Table 1 of Rezende & Mohamed, written out again in plain numpy."""
    w1 = np.sin(2 * np.pi * z1 / 4)
    w2 = 3 * np.exp(-0.5 * ((z1 - 1) / 0.6) ** 2)
    w3 = 3 / (1 + np.exp(-(z1 - 1) / 0.3))
    if index == 1:
        r = np.hypot(z1, z2)
        return 0.5 * ((r - 2) / 0.4) ** 2 - np.log(
            np.exp(-0.5 * ((z1 - 2) / 0.6) ** 2) + np.exp(-0.5 * ((z1 + 2) / 0.6) ** 2)
        )
    if index == 2:
        return 0.5 * ((z2 - w1) / 0.4) ** 2
    if index == 3:
        return -np.log(np.exp(-0.5 * ((z2 - w1) / 0.35) ** 2) + np.exp(-0.5 * ((z2 - w1 + w2) / 0.35) ** 2))
    return -np.log(np.exp(-0.5 * ((z2 - w1) / 0.4) ** 2) + np.exp(-0.5 * ((z2 - w1 + w3) / 0.35) ** 2))


@pytest.mark.parametrize("index", [1, 2, 3, 4])
def test_paper_energies_inside_the_box_and_the_wall_outside(index):
    rng = np.random.default_rng(index)
    z = rng.uniform(-4, 4, size=(200, 2))
    target = paper_energy(index)
    np.testing.assert_allclose(target.log_prob(z), -_paper_U(index, z[:, 0], z[:, 1]), rtol=1e-12, atol=1e-12)
    # a hand value: U2 at (1, 1) is 0 (z2 = sin(pi / 2)); U1 at (2, 0) is -log(1 + exp(-0.5 (4/0.6)^2))
    if index == 2:
        assert float(target.log_prob(jnp.array([1.0, 1.0]))) == pytest.approx(0.0, abs=1e-15)
    if index == 1:
        assert float(target.log_prob(jnp.array([2.0, 0.0]))) == pytest.approx(
            math.log1p(math.exp(-0.5 * (4 / 0.6) ** 2)), rel=1e-12
        )
    outside = np.array([[4.5, 0.3], [-5.0, -0.2]])
    expected = -_paper_U(index, outside[:, 0], outside[:, 1])
    if index > 1:
        expected = expected - 0.5 * ((np.abs(outside[:, 0]) - 4) / 0.2) ** 2
    np.testing.assert_allclose(target.log_prob(outside), expected, rtol=1e-12)


def test_standard_targets_are_finite_on_their_grids_and_keep_float32():
    for name, target in standard_targets().items():
        _, _, pts, _ = grid_points(target.bounds, 50)
        lp = jax.jit(target.log_prob)(pts)  # one compiled call (eager op-by-op is slower cold)
        assert lp.shape == (50, 50) and bool(jnp.all(jnp.isfinite(lp))), name
        if name in ("mixture", "U4"):  # the flows train in float32: the targets must not upcast
            assert jax.eval_shape(target.log_prob, pts.astype(jnp.float32)).dtype == jnp.float32, name


def test_bad_target_arguments():
    with pytest.raises(ValueError, match="index must be"):
        paper_energy(5)
    with pytest.raises(ValueError, match="width"):
        ring(2.0, -1.0)
    with pytest.raises(ValueError, match="scales"):
        gaussian_mixture(means=[[0.0, 0.0]], scales=[0.0])
    with pytest.raises(ValueError, match=r"means must have shape \(k, 2\)"):
        gaussian_mixture(means=[0.0, 1.0])
    with pytest.raises(ValueError, match=r"shape \(\.\.\., 2\)"):
        banana().log_prob(jnp.zeros((4, 3)))
    with pytest.raises(ValueError, match="bounds"):
        grid_log_normalizer(ring().log_prob, ((1.0, -1.0), (0.0, 1.0)))
    with pytest.raises(ValueError, match="NaN"):
        grid_log_normalizer(lambda z: jnp.full(z.shape[:-1], jnp.nan), ((0, 1), (0, 1)), 10)
