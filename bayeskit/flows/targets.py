"""Two-dimensional unnormalised target densities for testing variational posteriors.

Each target is a :class:`Target`: an *unnormalised* log-density ``log_prob(z)`` taking points of
shape (..., 2) and returning (...), a rectangle ``bounds`` that holds practically all of its
mass (used for plots and for the brute-force normaliser), and, where a closed form exists, the
exact ``log_normalizer`` log Z = log of the integral of exp(log_prob), so tests can check the
grid quadrature.

* :func:`banana` -- a curved Gaussian (the "banana"): z1 ~ N(0, s1^2),
  z2 | z1 ~ N(c (z1^2 - s1^2), s2^2);
* :func:`ring` -- a thin annulus, log p = -((|z| - R) / s)^2 / 2;
* :func:`gaussian_mixture` -- well-separated isotropic Gaussian components;
* :func:`paper_energy` -- the four test energies U1-U4 of Rezende & Mohamed, *Variational
  Inference with Normalizing Flows* (ICML 2015), table 1, p(z) proportional to exp(-U(z)).

:func:`grid_log_normalizer` computes log Z by the midpoint rule on a fine grid (all that is
needed in 2-D, and what makes exact KL(q || p) evaluation possible for these tests).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from scipy.special import log_ndtr

__all__ = [
    "Target",
    "banana",
    "ring",
    "gaussian_mixture",
    "paper_energy",
    "standard_targets",
    "grid_points",
    "grid_log_normalizer",
]

Bounds = tuple[tuple[float, float], tuple[float, float]]


@dataclass(frozen=True)
class Target:
    """An unnormalised 2-D log-density with the box where its mass lives.

    Attributes
    ----------
    name : short label for plots and tables.
    log_prob : ``z (..., 2) -> (...)`` unnormalised log-density, pure JAX (jit/grad/vmap-able),
        keeping the input dtype.
    bounds : ``((z1_lo, z1_hi), (z2_lo, z2_hi))`` holding all but a negligible part of the mass.
    log_normalizer : exact log Z where a closed form exists, else ``None`` (use
        :func:`grid_log_normalizer`).
    view : a tighter box for pictures (defaults to ``bounds``); not for integrals.
    """

    name: str
    log_prob: Callable[[jax.Array], jax.Array]
    bounds: Bounds
    log_normalizer: float | None = None
    view: Bounds | None = None

    def __post_init__(self):
        if self.view is None:
            object.__setattr__(self, "view", self.bounds)

    def __call__(self, z):
        return self.log_prob(z)


def _check_2d(z) -> jax.Array:
    z = jnp.asarray(z)
    if z.ndim < 1 or z.shape[-1] != 2:
        raise ValueError(f"z must have shape (..., 2) for a 2-D target; got shape {z.shape}")
    if not jnp.issubdtype(z.dtype, jnp.floating):
        z = z.astype(jnp.result_type(float))
    return z


def _positive(value, name: str) -> float:
    v = float(value)
    if not math.isfinite(v) or v <= 0:
        raise ValueError(f"{name} must be finite and > 0; got {value!r}")
    return v


# ---------------------------------------------------------------------------------------------
# targets with a closed-form normaliser
# ---------------------------------------------------------------------------------------------
def banana(curvature: float = 0.5, scale1: float = 1.0, scale2: float = 0.35) -> Target:
    """The banana: z1 ~ N(0, scale1^2), z2 | z1 ~ N(curvature (z1^2 - scale1^2), scale2^2).

    Unnormalised log p = -z1^2 / (2 scale1^2) - (z2 - curvature (z1^2 - scale1^2))^2 / (2 scale2^2),
    so log Z = log(2 pi scale1 scale2) exactly (a Gaussian conditional on a Gaussian). The mean
    of z2 is 0; the curved ridge is what a diagonal Gaussian cannot follow.
    """
    c = float(curvature)
    if not math.isfinite(c):
        raise ValueError(f"curvature must be finite; got {curvature!r}")
    s1 = _positive(scale1, "scale1")
    s2 = _positive(scale2, "scale2")

    def log_prob(z):
        z = _check_2d(z)
        z1, z2 = z[..., 0], z[..., 1]
        return -0.5 * (z1 / s1) ** 2 - 0.5 * ((z2 - c * (z1**2 - s1**2)) / s2) ** 2

    # 4.5 sd in z1; in z2 the ridge reaches c (z1^2 - s1^2) at the ends, plus 5 sd either way
    half = 4.5 * s1
    ends = sorted([c * (half**2 - s1**2), -c * s1**2])
    bounds = ((-half, half), (ends[0] - 5 * s2, ends[1] + 5 * s2))
    # pictures: 3 sd in z1 (99.7% of the mass) and the ridge over that range
    view_half = 3.0 * s1
    view_ends = sorted([c * (view_half**2 - s1**2), -c * s1**2])
    view = ((-view_half, view_half), (view_ends[0] - 3 * s2, view_ends[1] + 3 * s2))
    return Target("banana", log_prob, bounds, math.log(2 * math.pi * s1 * s2), view)


def ring(radius: float = 2.5, width: float = 0.3) -> Target:
    """A ring: unnormalised log p = -((|z| - radius) / width)^2 / 2.

    In polar coordinates Z = 2 pi int_0^inf r exp(-(r - R)^2 / (2 s^2)) dr
    = 2 pi [s^2 exp(-R^2 / (2 s^2)) + R s sqrt(2 pi) Phi(R / s)], evaluated in log space.
    """
    R = _positive(radius, "radius")
    s = _positive(width, "width")

    def log_prob(z):
        z = _check_2d(z)
        r = jnp.sqrt(jnp.sum(z * z, axis=-1))
        return -0.5 * ((r - R) / s) ** 2

    log_z = math.log(2 * math.pi) + float(
        np.logaddexp(2 * math.log(s) - 0.5 * (R / s) ** 2,
                     math.log(R * s * math.sqrt(2 * math.pi)) + log_ndtr(R / s))
    )
    half = R + 5 * s
    return Target("ring", log_prob, ((-half, half), (-half, half)), log_z)


def gaussian_mixture(means=None, scales=None, weights=None) -> Target:
    """A mixture of isotropic Gaussians, unnormalised as sum_k w_k exp(-|z - m_k|^2 / (2 s_k^2)).

    Defaults: four components of sd 0.45 at (+-2, +-2) with equal weights -- modes eight
    standard deviations apart, which a reverse-KL fit tends to miss (it is mode seeking).
    ``means`` (k, 2), ``scales`` (k,) > 0, ``weights`` (k,) > 0 (any total). Because the
    components are left unnormalised, Z = sum_k w_k 2 pi s_k^2 exactly.
    """
    m = np.array([[-2.0, -2.0], [-2.0, 2.0], [2.0, -2.0], [2.0, 2.0]]) if means is None else means
    m = np.asarray(m, dtype=np.float64)
    if m.ndim != 2 or m.shape[1] != 2 or m.shape[0] == 0:
        raise ValueError(f"means must have shape (k, 2) with k >= 1; got {m.shape}")
    k = m.shape[0]
    s = np.full(k, 0.45) if scales is None else np.asarray(scales, dtype=np.float64)
    w = np.ones(k) if weights is None else np.asarray(weights, dtype=np.float64)
    for name, arr in (("scales", s), ("weights", w)):
        if arr.shape != (k,):
            raise ValueError(f"{name} must have shape ({k},), one per component; got {arr.shape}")
        if not np.all(np.isfinite(arr)) or np.any(arr <= 0):
            raise ValueError(f"{name} must be finite and > 0; got {arr}")
    if not np.all(np.isfinite(m)):
        raise ValueError("means must be finite")
    log_w = np.log(w)

    def log_prob(z):
        z = _check_2d(z)
        mm = jnp.asarray(m, dtype=z.dtype)
        sq = jnp.sum((z[..., None, :] - mm) ** 2, axis=-1)  # (..., k)
        return jax.nn.logsumexp(jnp.asarray(log_w, z.dtype) - 0.5 * sq / jnp.asarray(s**2, z.dtype), axis=-1)

    log_z = float(np.log(np.sum(w * 2 * np.pi * s**2)))
    pad = 5 * s.max()
    bounds = (
        (float(m[:, 0].min() - pad), float(m[:, 0].max() + pad)),
        (float(m[:, 1].min() - pad), float(m[:, 1].max() + pad)),
    )
    return Target("mixture", log_prob, bounds, log_z)


# ---------------------------------------------------------------------------------------------
# the test energies of Rezende & Mohamed (table 1)
# ---------------------------------------------------------------------------------------------
def _w1(z1):
    return jnp.sin(2 * jnp.pi * z1 / 4)


def _w2(z1):
    return 3 * jnp.exp(-0.5 * ((z1 - 1) / 0.6) ** 2)


def _w3(z1):
    return 3 * jax.nn.sigmoid((z1 - 1) / 0.3)


def _energy(index: int, z):
    z1, z2 = z[..., 0], z[..., 1]
    if index == 1:
        r = jnp.sqrt(jnp.sum(z * z, axis=-1))
        return 0.5 * ((r - 2) / 0.4) ** 2 - jnp.logaddexp(
            -0.5 * ((z1 - 2) / 0.6) ** 2, -0.5 * ((z1 + 2) / 0.6) ** 2
        )
    if index == 2:
        return 0.5 * ((z2 - _w1(z1)) / 0.4) ** 2
    if index == 3:
        return -jnp.logaddexp(
            -0.5 * ((z2 - _w1(z1)) / 0.35) ** 2, -0.5 * ((z2 - _w1(z1) + _w2(z1)) / 0.35) ** 2
        )
    return -jnp.logaddexp(
        -0.5 * ((z2 - _w1(z1)) / 0.4) ** 2, -0.5 * ((z2 - _w1(z1) + _w3(z1)) / 0.35) ** 2
    )


#: where U2-U4 are confined: the paper shows them on [-4, 4]^2
PAPER_BOX = 4.0
#: width of the quadratic wall outside |z1| > PAPER_BOX (see :func:`paper_energy`)
WALL_WIDTH = 0.2


def paper_energy(index: int) -> Target:
    """Test energy U_index (1-4) of Rezende & Mohamed, table 1, as log p = -U (unnormalised).

    With w1(z) = sin(2 pi z1 / 4), w2(z) = 3 exp(-((z1 - 1) / 0.6)^2 / 2),
    w3(z) = 3 sigma((z1 - 1) / 0.3), sigma the logistic function::

        U1(z) = ((|z| - 2) / 0.4)^2 / 2 - log(exp(-((z1 - 2) / 0.6)^2 / 2) + exp(-((z1 + 2) / 0.6)^2 / 2))
        U2(z) = ((z2 - w1(z)) / 0.4)^2 / 2
        U3(z) = -log(exp(-((z2 - w1(z)) / 0.35)^2 / 2) + exp(-((z2 - w1(z) + w2(z)) / 0.35)^2 / 2))
        U4(z) = -log(exp(-((z2 - w1(z)) / 0.4)^2 / 2) + exp(-((z2 - w1(z) + w3(z)) / 0.35)^2 / 2))

    U2-U4 do not depend on z1 far from the origin except through the periodic w1, so exp(-U) has
    infinite mass on the plane; the paper plots them on [-4, 4]^2. To make them proper densities
    (reverse KL and ESS need a finite Z) a quadratic wall ``((|z1| - 4)_+ / 0.2)^2 / 2`` is
    added: inside the box the target is exactly the paper's, outside it falls off like a
    Gaussian of sd 0.2 (about 5% of the mass). U1 (a ring with two lobes) needs no wall.
    """
    if index not in (1, 2, 3, 4):
        raise ValueError(f"index must be 1, 2, 3 or 4 (the paper's U1-U4); got {index!r}")

    def log_prob(z):
        z = _check_2d(z)
        lp = -_energy(index, z)
        if index > 1:
            excess = jax.nn.relu(jnp.abs(z[..., 0]) - PAPER_BOX)
            lp = lp - 0.5 * (excess / WALL_WIDTH) ** 2
        return lp

    edge = PAPER_BOX + (0.0 if index == 1 else 6 * WALL_WIDTH)
    return Target(f"U{index}", log_prob, ((-edge, edge), (-edge, edge)), None)


def standard_targets() -> dict[str, Target]:
    """The targets used in the notebook and the K-sweep: banana, ring, mixture, U1-U4."""
    out = {"banana": banana(), "ring": ring(), "mixture": gaussian_mixture()}
    for i in (1, 2, 3, 4):
        out[f"U{i}"] = paper_energy(i)
    return out


# ---------------------------------------------------------------------------------------------
# brute-force normaliser
# ---------------------------------------------------------------------------------------------
def _check_bounds(bounds) -> Bounds:
    try:
        (a0, a1), (b0, b1) = bounds
        a0, a1, b0, b1 = (float(v) for v in (a0, a1, b0, b1))
    except (TypeError, ValueError):
        raise ValueError(f"bounds must be ((z1_lo, z1_hi), (z2_lo, z2_hi)); got {bounds!r}") from None
    if not all(math.isfinite(v) for v in (a0, a1, b0, b1)) or a1 <= a0 or b1 <= b0:
        raise ValueError(f"bounds must be finite with lo < hi on both axes; got {bounds!r}")
    return (a0, a1), (b0, b1)


def grid_points(bounds, size: int = 400, dtype=jnp.float64):
    """Cell centres of a ``size`` x ``size`` grid over ``bounds`` (midpoint rule).

    Returns ``(x1 (size,), x2 (size,), points (size, size, 2), cell_area)`` with
    ``points[i, j] = (x1[j], x2[i])`` (rows follow z2, as ``plt.pcolormesh(x1, x2, values)``
    expects).
    """
    (a0, a1), (b0, b1) = _check_bounds(bounds)
    if int(size) != size or size < 2:
        raise ValueError(f"size must be an integer >= 2; got {size!r}")
    size = int(size)
    h1, h2 = (a1 - a0) / size, (b1 - b0) / size
    x1 = jnp.asarray(a0 + h1 * (np.arange(size) + 0.5), dtype=dtype)
    x2 = jnp.asarray(b0 + h2 * (np.arange(size) + 0.5), dtype=dtype)
    g1, g2 = jnp.meshgrid(x1, x2)
    return x1, x2, jnp.stack([g1, g2], axis=-1), h1 * h2


def grid_log_normalizer(log_prob, bounds, size: int = 400) -> float:
    """log Z = log of the integral of exp(log_prob) over ``bounds``, by the midpoint rule.

    ``log Z ~ logsumexp_cells(log_prob(centre)) + log(cell area)``, in float64 and log space (no
    underflow for peaked targets). The error is O(h^2) for smooth densities plus the mass
    outside ``bounds``; 400 x 400 cells resolve the targets here to ~1e-4 in log Z.
    """
    _, _, pts, area = grid_points(bounds, size)
    lp = jnp.asarray(log_prob(pts), dtype=jnp.float64)
    if lp.shape != pts.shape[:-1]:
        raise ValueError(f"log_prob must map (..., 2) points to (...); got output shape {lp.shape}")
    if not bool(jnp.all(jnp.isfinite(lp) | (lp == -jnp.inf))):
        raise ValueError("log_prob returned NaN or +inf on the grid")
    return float(jax.nn.logsumexp(lp) + math.log(area))
