"""NNGP kernels: the Gaussian-process limit of deep, infinitely wide, fully connected networks.

References: J. Lee, Y. Bahri, R. Novak, S. Schoenholz, J. Pennington, J. Sohl-Dickstein,
*Deep Neural Networks as Gaussian Processes* (ICLR 2018); C. Williams, *Computing
with Infinite Networks* (NIPS 1996), for the erf expectation; Y. Cho and L. Saul, *Kernel
Methods for Deep Learning* (NIPS 2009), for the ReLU (arc-cosine) expectation.

The network. Inputs x in R^d, ``depth`` = L hidden layers of width N with activation phi, a
scalar readout; every weight is N(0, weight_variance / fan_in), every bias
N(0, bias_variance)::

    h^1(x) = W^0 x + b^0,     h^{l+1}(x) = W^l phi(h^l(x)) + b^l,     f(x) = h^{L+1}(x)

As N -> infinity every pre-activation becomes a GP whose covariance follows the recursion
(Lee et al., eqs. 4-5)::

    K^0(x, x') = bias_variance + weight_variance * x . x' / d
    K^l(x, x') = bias_variance + weight_variance * E[phi(u) phi(v)],
                 (u, v) ~ N(0, [[K^{l-1}(x, x), K^{l-1}(x, x')], [., K^{l-1}(x', x')]])

and the kernel of f is K^L. The two activations here have that expectation in closed form.
With k11, k22 the variances and k12 the covariance of (u, v):

* ReLU (Cho & Saul's arc-cosine kernel of degree 1), theta = arccos(k12 / sqrt(k11 k22))::

      E[relu(u) relu(v)] = (sqrt(k11 k22 - k12^2) + (pi - theta) k12) / (2 pi)

* erf (Williams)::

      E[erf(u) erf(v)] = (2 / pi) arcsin(2 k12 / sqrt((1 + 2 k11)(1 + 2 k22)))

Why ``depth`` is a static field. :class:`bayeskit.kernels.Kernel` registers every dataclass
field as a pytree *leaf*, so ``jax.grad``, ``jit`` and the ML-II optimisers treat it as a
continuous hyperparameter. Depth is an integer that sets how many times the recursion runs,
i.e. the structure of the computation, so it must be part of the tree *structure*: the NNGP
base class below overrides the subclass hook to register ``depth`` as a meta field. Then jit
compiles one program per depth (the loop unrolls), the optimisers never see it, and two
kernels of different depth have different tree structures. The alternative (one class per
depth) would make depth impossible to change with ``kernel.replace(depth=...)``.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from .. import _config  # noqa: F401  (float64)
from ..kernels import Kernel, _safe_sqrt

__all__ = ["NNGPKernel", "ReLUNNGP", "ErfNNGP", "relu_expectation", "erf_expectation"]


def relu_expectation(k11, k22, k12):
    """E[relu(u) relu(v)] for zero-mean Gaussian (u, v) with Var u = k11, Var v = k22,
    Cov = k12 (broadcasting arrays). Cho & Saul's arc-cosine kernel of degree 1.

    theta = arctan2(sqrt(k11 k22 - k12^2), k12) is the arccos form written so that its gradient
    stays finite when u and v are perfectly correlated (on the diagonal of a kernel matrix).
    """
    det = jnp.maximum(k11 * k22 - k12 * k12, 0.0)
    root = _safe_sqrt(det)
    theta = jnp.arctan2(root, k12)
    return (root + (jnp.pi - theta) * k12) / (2.0 * jnp.pi)


def erf_expectation(k11, k22, k12):
    """E[erf(u) erf(v)] = (2 / pi) arcsin(2 k12 / sqrt((1 + 2 k11)(1 + 2 k22))) (Williams,
    *Computing with Infinite Networks*); arguments as in :func:`relu_expectation`."""
    return (2.0 / jnp.pi) * jnp.arcsin(2.0 * k12 / jnp.sqrt((1.0 + 2.0 * k11) * (1.0 + 2.0 * k22)))


class NNGPKernel(Kernel):
    """Base class of NNGP kernels: fields ``depth`` (static int >= 0), ``weight_variance`` and
    ``bias_variance`` (positive floats). Subclasses define ``_expect(k11, k22, k12)``."""

    def __init_subclass__(cls, **kwargs):
        # Deliberately not Kernel.__init_subclass__: that one makes every field a leaf.
        super(Kernel, cls).__init_subclass__(**kwargs)
        if "__dataclass_fields__" not in cls.__dict__:
            dataclasses.dataclass(frozen=True, repr=False, eq=False)(cls)
        names = [f.name for f in dataclasses.fields(cls) if f.name != "depth"]
        jax.tree_util.register_dataclass(cls, data_fields=names, meta_fields=["depth"])

    def __post_init__(self):
        depth = self.depth
        if isinstance(depth, bool) or not isinstance(depth, (int, np.integer)) or depth < 0:
            raise ValueError(f"{type(self).__name__}.depth must be an integer >= 0 (number of "
                             f"hidden layers); got {depth!r}")
        object.__setattr__(self, "depth", int(depth))
        for name in ("weight_variance", "bias_variance"):
            value = getattr(self, name)
            # tracers and placeholders pass through (jit, grad and tree_unflatten build these)
            if isinstance(value, (int, float, np.ndarray, list, tuple)):
                arr = np.asarray(value, dtype=np.float64)
                if arr.ndim != 0 or not np.isfinite(arr) or arr <= 0:
                    raise ValueError(f"{type(self).__name__}.{name} must be a finite scalar > 0; "
                                     f"got {value!r}")
                object.__setattr__(self, name, float(arr))

    def _expect(self, k11, k22, k12):  # pragma: no cover - abstract
        raise NotImplementedError

    def _matrix(self, X1, X2, same):
        d = X1.shape[1]
        wv, bv = self.weight_variance, self.bias_variance
        k12 = bv + wv * (X1 @ X2.T) / d
        k11 = bv + wv * jnp.sum(X1 * X1, axis=1) / d
        k22 = k11 if same else bv + wv * jnp.sum(X2 * X2, axis=1) / d
        for _ in range(self.depth):  # depth is static: the loop unrolls under jit
            k12 = bv + wv * self._expect(k11[:, None], k22[None, :], k12)
            k11 = bv + wv * self._expect(k11, k11, k11)
            k22 = k11 if same else bv + wv * self._expect(k22, k22, k22)
        if same:  # exact symmetry despite round-off in X1 @ X1.T
            k12 = 0.5 * (k12 + k12.T)
        return k12

    def _diag(self, X):
        d = X.shape[1]
        wv, bv = self.weight_variance, self.bias_variance
        k = bv + wv * jnp.sum(X * X, axis=1) / d
        for _ in range(self.depth):
            k = bv + wv * self._expect(k, k, k)
        return k

    @property
    def hyperparameters(self) -> dict[str, object]:
        """``{name: value}`` of the continuous hyperparameters (depth is structure, not listed)."""
        return {"weight_variance": self.weight_variance, "bias_variance": self.bias_variance}

    def __repr__(self):
        return (f"{type(self).__name__}(depth={self.depth}, "
                f"weight_variance={float(np.asarray(self.weight_variance)):.4g}, "
                f"bias_variance={float(np.asarray(self.bias_variance)):.4g})")

    def __eq__(self, other):
        result = super().__eq__(other)
        return result if result is NotImplemented else (result and self.depth == other.depth)

    __hash__ = None


class ReLUNNGP(NNGPKernel):
    """NNGP kernel of a ReLU network with ``depth`` hidden layers (arc-cosine recursion).

    ``weight_variance = 2`` (He initialisation) keeps the pre-activation variance from
    shrinking or growing with depth when the bias variance is small.
    """

    depth: int = 1
    weight_variance: float | jax.Array = 2.0
    bias_variance: float | jax.Array = 0.1

    def _expect(self, k11, k22, k12):
        return relu_expectation(k11, k22, k12)


class ErfNNGP(NNGPKernel):
    """NNGP kernel of an erf network with ``depth`` hidden layers (Williams' arcsine formula)."""

    depth: int = 1
    weight_variance: float | jax.Array = 1.0
    bias_variance: float | jax.Array = 0.1

    def _expect(self, k11, k22, k12):
        return erf_expectation(k11, k22, k12)
