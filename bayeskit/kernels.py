"""Covariance functions (kernels) for Gaussian processes.

A kernel is a small immutable pytree of positive hyperparameters. ``kernel(X1, X2)`` returns the
(n1, n2) covariance matrix; ``kernel(X)`` the (n, n) matrix of X with itself, which is the only
place :class:`White` adds its variance. Kernels compose with ``+`` and ``*``, also with plain
numbers (``2.0 * RBF()`` is ``Constant(2.0) * RBF()``).

Every formula is written as scikit-learn writes it, so results compare one to one:

=====================  ===============================================  =========================
bayeskit               k(x, x')  (r = |x - x'| / lengthscale)           scikit-learn equivalent
=====================  ===============================================  =========================
RBF                    s exp(-r^2 / 2)                                  C(s) * RBF(l)
Matern12/32/52         s Matern_nu(r), nu = 1/2, 3/2, 5/2               C(s) * Matern(l, nu)
Periodic               s exp(-2 sin^2(pi |x - x'| / p) / l^2)           C(s) * ExpSineSquared(l, p)
RationalQuadratic      s (1 + r^2 / (2 alpha))^(-alpha)                 C(s) * RationalQuadratic(l, alpha)
Linear                 s (c + x . x')                                   C(s) * DotProduct(sqrt(c))
White                  s [x is x'] (only in kernel(X))                  WhiteKernel(s)
Constant               s                                                ConstantKernel(s)
=====================  ===============================================  =========================

``lengthscale`` may be a scalar or a (d,) array (automatic relevance determination, ARD).
Reference: Rasmussen & Williams, *Gaussian Processes for Machine Learning*, chapter 4.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_derivatives import SymbolicZero

__all__ = [
    "Kernel",
    "RBF",
    "Matern12",
    "Matern32",
    "Matern52",
    "Periodic",
    "RationalQuadratic",
    "Linear",
    "White",
    "Constant",
    "Sum",
    "Product",
]


def _as_2d(X):
    X = jnp.asarray(X)
    return X[:, None] if X.ndim == 1 else X


def _sqdist_from_scaled(X1, X2, lengthscale):
    A = X1 / lengthscale
    B = X2 / lengthscale
    return jnp.sum((A[:, None, :] - B[None, :, :]) ** 2, axis=-1)


@jax.custom_jvp
def _scaled_sqdist(X1, X2, lengthscale):
    """Squared distances |x1 - x2|^2 / lengthscale^2 as an (n1, n2) array.

    Computed from differences rather than |a|^2 + |b|^2 - 2 a.b: exact zeros on the diagonal
    matter for the 1e-8 agreement with scikit-learn and for the Matern kernels' square root.

    The derivative is given explicitly (:func:`_scaled_sqdist_jvp`) for speed only: for a scalar
    lengthscale l, d D / d l = -2 D / l reuses the output, so the gradient of an ML-II objective
    is one fused pass over (n1, n2) instead of automatic differentiation's several passes over
    the (n1, n2, d) array of differences.
    """
    return _sqdist_from_scaled(X1, X2, lengthscale)


def _is_zero(tangent) -> bool:
    return isinstance(tangent, SymbolicZero)


def _scaled_sqdist_jvp(primals, tangents):
    X1, X2, lengthscale = primals
    dX1, dX2, dl = tangents
    out = _sqdist_from_scaled(X1, X2, lengthscale)
    terms = []
    if not _is_zero(dl):
        rel = dl / lengthscale  # d log l: scalar or (d,)
        if jnp.ndim(lengthscale) == 0:
            terms.append(-2.0 * out * rel)
        else:
            A = X1 / lengthscale
            B = X2 / lengthscale
            terms.append(-2.0 * jnp.sum((A[:, None, :] - B[None, :, :]) ** 2 * rel, axis=-1))
    if not (_is_zero(dX1) and _is_zero(dX2)):
        diff = X1[:, None, :] / lengthscale - X2[None, :, :] / lengthscale
        dA = 0.0 if _is_zero(dX1) else (dX1 / lengthscale)[:, None, :]
        dB = 0.0 if _is_zero(dX2) else (dX2 / lengthscale)[None, :, :]
        terms.append(2.0 * jnp.sum(diff * (dA - dB), axis=-1))
    tangent = terms[0] if terms else jnp.zeros_like(out)
    for term in terms[1:]:
        tangent = tangent + term
    return out, tangent.astype(out.dtype)


_scaled_sqdist.defjvp(_scaled_sqdist_jvp, symbolic_zeros=True)


def _safe_sqrt(x):
    """sqrt with a zero (not NaN) gradient at 0, so coincident inputs are differentiable.

    sqrt(max(x, tiny)): below ``tiny`` the gradient flows to the constant, and sqrt(tiny) ~ 1e-154
    leaves every Matern value at distance 0 exactly 1 in float64. (The textbook double-``where``
    form, where(x > 0, sqrt(where(x > 0, x, 1)), 0), is miscompiled by XLA on the CPU when a
    triangular solve of the same matrix shares the program: posterior means came out wrong for
    ARD kernels with far-away points; see tests/gp/test_exact.py.)
    """
    return jnp.sqrt(jnp.maximum(x, jnp.finfo(x.dtype).tiny))


class Kernel:
    """Base class: subclasses are frozen dataclasses whose fields are positive hyperparameters."""

    #: names of the fields holding child kernels (composites) rather than numbers
    _children: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "__dataclass_fields__" not in cls.__dict__:
            dataclasses.dataclass(frozen=True, repr=False, eq=False)(cls)
        names = [f.name for f in dataclasses.fields(cls)]
        jax.tree_util.register_dataclass(cls, data_fields=names, meta_fields=[])

    def __post_init__(self):
        for f in dataclasses.fields(self):
            if f.name in self._children:
                continue
            value = getattr(self, f.name)
            if isinstance(value, (int, float, np.ndarray, list, tuple)):
                arr = np.asarray(value, dtype=np.float64)
                if arr.ndim > 1 or arr.size == 0:
                    raise ValueError(
                        f"{type(self).__name__}.{f.name} must be a positive scalar or a 1-D "
                        f"array (ARD); got shape {arr.shape}"
                    )
                if not np.all(np.isfinite(arr)) or np.any(arr <= 0):
                    raise ValueError(
                        f"{type(self).__name__}.{f.name} must be finite and > 0; got {value!r}"
                    )
                object.__setattr__(self, f.name, float(arr) if arr.ndim == 0 else arr)

    # -- evaluation -------------------------------------------------------------------------
    def __call__(self, X1, X2=None) -> jax.Array:
        """Covariance matrix (n1, n2) between rows of X1 (n1, d) and X2 (n2, d).

        With X2 omitted: the (n, n) matrix of X1 with itself (where :class:`White` contributes).
        1-D inputs are read as n points in one dimension.
        """
        X1 = _as_2d(X1)
        same = X2 is None
        X2 = X1 if same else _as_2d(X2)
        return self._matrix(X1, X2, same)

    def diag(self, X) -> jax.Array:
        """Prior variances k(x, x) for each row of X, shape (n,); cheaper than the full matrix."""
        X = _as_2d(X)
        return self._diag(X)

    def _matrix(self, X1, X2, same):  # pragma: no cover - abstract
        raise NotImplementedError

    def _diag(self, X):
        return jnp.diagonal(self._matrix(X, X, True))

    # -- composition ------------------------------------------------------------------------
    def __add__(self, other):
        return Sum(self, _as_kernel(other))

    def __radd__(self, other):
        return Sum(_as_kernel(other), self)

    def __mul__(self, other):
        return Product(self, _as_kernel(other))

    def __rmul__(self, other):
        return Product(_as_kernel(other), self)

    # -- parameters -------------------------------------------------------------------------
    def replace(self, **changes) -> Kernel:
        """A copy with some hyperparameters changed (kernels are immutable)."""
        return dataclasses.replace(self, **changes)

    @property
    def hyperparameters(self) -> dict[str, object]:
        """Flat ``{name: value}`` of every hyperparameter, children prefixed ``k1.``, ``k2.``."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in self._children:
                out.update({f"{f.name}.{k}": v for k, v in value.hyperparameters.items()})
            else:
                out[f.name] = value
        return out

    def __repr__(self):
        parts = []
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            v = np.asarray(v)
            text = f"{float(v):.4g}" if v.ndim == 0 else np.array2string(v, precision=4)
            parts.append(f"{f.name}={text}")
        return f"{type(self).__name__}({', '.join(parts)})"

    def __eq__(self, other):
        if type(self) is not type(other):
            return NotImplemented
        a, b = jax.tree_util.tree_leaves(self), jax.tree_util.tree_leaves(other)
        return len(a) == len(b) and all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(a, b))

    __hash__ = None


def _as_kernel(value) -> Kernel:
    if isinstance(value, Kernel):
        return value
    if isinstance(value, (int, float, np.floating, np.integer)):
        return Constant(float(value))
    return NotImplemented


class Stationary(Kernel):
    """Shared code for kernels of the scaled distance r = |x - x'| / lengthscale."""

    def _diag(self, X):
        return jnp.full(X.shape[0], self.variance, dtype=X.dtype)


class RBF(Stationary):
    """Squared exponential: ``variance * exp(-r^2 / 2)`` (R&W eq. 4.9)."""

    lengthscale: float | jax.Array = 1.0
    variance: float | jax.Array = 1.0

    def _matrix(self, X1, X2, same):
        return self.variance * jnp.exp(-0.5 * _scaled_sqdist(X1, X2, self.lengthscale))


class Matern12(Stationary):
    """Matern nu = 1/2 (exponential): ``variance * exp(-r)`` (R&W eq. 4.14)."""

    lengthscale: float | jax.Array = 1.0
    variance: float | jax.Array = 1.0

    def _matrix(self, X1, X2, same):
        r = _safe_sqrt(_scaled_sqdist(X1, X2, self.lengthscale))
        return self.variance * jnp.exp(-r)


class Matern32(Stationary):
    """Matern nu = 3/2: ``variance * (1 + sqrt3 r) exp(-sqrt3 r)`` (R&W eq. 4.17)."""

    lengthscale: float | jax.Array = 1.0
    variance: float | jax.Array = 1.0

    def _matrix(self, X1, X2, same):
        r = jnp.sqrt(3.0) * _safe_sqrt(_scaled_sqdist(X1, X2, self.lengthscale))
        return self.variance * (1.0 + r) * jnp.exp(-r)


class Matern52(Stationary):
    """Matern nu = 5/2: ``variance * (1 + sqrt5 r + 5 r^2 / 3) exp(-sqrt5 r)`` (R&W eq. 4.17)."""

    lengthscale: float | jax.Array = 1.0
    variance: float | jax.Array = 1.0

    def _matrix(self, X1, X2, same):
        d2 = _scaled_sqdist(X1, X2, self.lengthscale)
        r = jnp.sqrt(5.0) * _safe_sqrt(d2)
        return self.variance * (1.0 + r + 5.0 * d2 / 3.0) * jnp.exp(-r)


class Periodic(Stationary):
    """Periodic (scikit-learn's ExpSineSquared): ``variance * exp(-2 sin^2(pi d / period) / l^2)``.

    d = |x - x'| is the unscaled Euclidean distance (R&W eq. 4.31), so ``lengthscale`` is a
    scalar here.
    """

    lengthscale: float | jax.Array = 1.0
    period: float | jax.Array = 1.0
    variance: float | jax.Array = 1.0

    def _matrix(self, X1, X2, same):
        d = _safe_sqrt(_scaled_sqdist(X1, X2, 1.0))
        s = jnp.sin(jnp.pi * d / self.period) / self.lengthscale
        return self.variance * jnp.exp(-2.0 * s**2)


class RationalQuadratic(Stationary):
    """Rational quadratic: ``variance * (1 + r^2 / (2 alpha))^(-alpha)`` (R&W eq. 4.19).

    A scale mixture of RBF kernels; alpha -> infinity recovers the RBF.
    """

    lengthscale: float | jax.Array = 1.0
    alpha: float | jax.Array = 1.0
    variance: float | jax.Array = 1.0

    def _matrix(self, X1, X2, same):
        d2 = _scaled_sqdist(X1, X2, self.lengthscale)
        return self.variance * (1.0 + d2 / (2.0 * self.alpha)) ** (-self.alpha)


class Linear(Kernel):
    """Linear (dot product): ``variance * (bias + x . x')``; Bayesian linear regression as a GP.

    scikit-learn's ``DotProduct(sigma_0)`` is ``bias = sigma_0 ** 2`` with ``variance = 1``.
    """

    variance: float | jax.Array = 1.0
    bias: float | jax.Array = 1.0

    def _matrix(self, X1, X2, same):
        return self.variance * (self.bias + X1 @ X2.T)

    def _diag(self, X):
        return self.variance * (self.bias + jnp.sum(X * X, axis=-1))


class White(Kernel):
    """White noise: ``variance`` on the diagonal of ``kernel(X)``, zero between distinct calls.

    As scikit-learn's ``WhiteKernel``: ``kernel(X1, X2)`` is all zeros even if the rows coincide,
    so white noise enters training covariances and ``kernel.diag`` but not cross-covariances.
    """

    variance: float | jax.Array = 1.0

    def _matrix(self, X1, X2, same):
        if same:
            return self.variance * jnp.eye(X1.shape[0], dtype=X1.dtype)
        return jnp.zeros((X1.shape[0], X2.shape[0]), dtype=X1.dtype)

    def _diag(self, X):
        return jnp.full(X.shape[0], self.variance, dtype=X.dtype)


class Constant(Kernel):
    """Constant: ``variance`` everywhere (a random offset shared by all function values)."""

    variance: float | jax.Array = 1.0

    def _matrix(self, X1, X2, same):
        return jnp.full((X1.shape[0], X2.shape[0]), self.variance, dtype=X1.dtype)

    def _diag(self, X):
        return jnp.full(X.shape[0], self.variance, dtype=X.dtype)


class Sum(Kernel):
    """k1 + k2: independent processes added together."""

    _children = ("k1", "k2")
    k1: Kernel
    k2: Kernel

    def _matrix(self, X1, X2, same):
        return self.k1._matrix(X1, X2, same) + self.k2._matrix(X1, X2, same)

    def _diag(self, X):
        return self.k1._diag(X) + self.k2._diag(X)

    def __repr__(self):
        return f"{self.k1!r} + {self.k2!r}"


class Product(Kernel):
    """k1 * k2: e.g. a periodic pattern whose shape drifts (Periodic * RBF)."""

    _children = ("k1", "k2")
    k1: Kernel
    k2: Kernel

    def _matrix(self, X1, X2, same):
        return self.k1._matrix(X1, X2, same) * self.k2._matrix(X1, X2, same)

    def _diag(self, X):
        return self.k1._diag(X) * self.k2._diag(X)

    def __repr__(self):
        def wrap(k):
            return f"({k!r})" if isinstance(k, Sum) else repr(k)

        return f"{wrap(self.k1)} * {wrap(self.k2)}"
