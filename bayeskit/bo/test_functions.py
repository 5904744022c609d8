"""Standard test functions for Bayesian optimisation, with bounds, optimum and optimisers.

Definitions follow the Virtual Library of Simulation Experiments (Surjanovic & Bingham) and the
original papers: Forrester (*Engineering Design via Surrogate Modelling*), Branin (as in
*Towards Global Optimization 2*, Dixon & Szego), Hartmann-3 and -6 (Dixon & Szego), Ackley,
Levy and Rosenbrock.

A test function is an object: ``f = Branin()``; ``f(x)`` takes x (d,) -> float or X (n, d) ->
(n,). ``Branin(noise_std=0.1, seed=0)`` adds N(0, noise_std^2) noise to every call, drawn from a
generator the object keeps (an explicit seed makes runs repeatable); ``f.evaluate(x)`` is always
noise-free. ``f.bounds`` is a list of (low, high), ``f.optimum`` the minimum value and
``f.optimizers`` (k, d) the known minimisers.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "TestFunction",
    "Forrester",
    "Branin",
    "Hartmann3",
    "Hartmann6",
    "Ackley",
    "Levy",
    "Rosenbrock",
    "ALL",
]


class TestFunction:
    """Base class: subclasses define ``_f(X (n, d)) -> (n,)``, ``dim``, ``bounds``, ``optimum``."""

    __test__ = False  # not a pytest test class, despite the name

    name: str = "test function"
    dim: int
    bounds: list
    optimum: float
    optimizers: np.ndarray

    def __init__(self, noise_std: float = 0.0, seed: int | None = None):
        noise_std = float(noise_std)
        if not np.isfinite(noise_std) or noise_std < 0:
            raise ValueError(f"noise_std must be finite and >= 0; got {noise_std}")
        if noise_std > 0 and seed is None:
            raise ValueError("seed is required when noise_std > 0 (an int, so the noise is repeatable)")
        self.noise_std = noise_std
        self._rng = np.random.default_rng(seed)

    def _as_points(self, x):
        X = np.asarray(x, dtype=np.float64)
        single = X.ndim == 1
        X = np.atleast_2d(X)
        if X.ndim != 2 or X.shape[1] != self.dim:
            raise ValueError(f"x must have shape ({self.dim},) or (n, {self.dim}) for {self.name}; got {np.shape(x)}")
        return X, single

    def evaluate(self, x):
        """The noise-free value at x (d,) -> float, or X (n, d) -> (n,)."""
        X, single = self._as_points(x)
        out = self._f(X)
        return float(out[0]) if single else out

    def __call__(self, x):
        """The value at x, plus N(0, noise_std^2) noise when noise_std > 0."""
        X, single = self._as_points(x)
        out = self._f(X)
        if self.noise_std > 0:
            out = out + self.noise_std * self._rng.standard_normal(out.shape)
        return float(out[0]) if single else out

    def regret(self, value):
        """Simple regret: value - optimum (>= 0 up to round-off for noise-free values)."""
        return np.asarray(value) - self.optimum

    def __repr__(self):
        noise = f", noise_std={self.noise_std}" if self.noise_std else ""
        return f"{type(self).__name__}(dim={self.dim}{noise})"


class Forrester(TestFunction):
    """f(x) = (6x - 2)^2 sin(12x - 4) on [0, 1]; one global and one local minimum."""

    name, dim = "Forrester", 1
    bounds = [(0.0, 1.0)]
    optimum = -6.020740055766075
    optimizers = np.array([[0.7572487144081974]])

    def _f(self, X):
        x = X[:, 0]
        return (6 * x - 2) ** 2 * np.sin(12 * x - 4)


class Branin(TestFunction):
    """Branin-Hoo on [-5, 10] x [0, 15]: three global minima, value 5 / (4 pi)."""

    name, dim = "Branin", 2
    bounds = [(-5.0, 10.0), (0.0, 15.0)]
    optimum = 5.0 / (4.0 * np.pi)  # 0.39788735772973816
    optimizers = np.array([[-np.pi, 12.275], [np.pi, 2.275], [3 * np.pi, 2.475]])

    def _f(self, X):
        x1, x2 = X[:, 0], X[:, 1]
        b, c, t = 5.1 / (4 * np.pi**2), 5.0 / np.pi, 1.0 / (8 * np.pi)
        return (x2 - b * x1**2 + c * x1 - 6.0) ** 2 + 10.0 * (1 - t) * np.cos(x1) + 10.0


class _Hartmann(TestFunction):
    alpha = np.array([1.0, 1.2, 3.0, 3.2])

    def _f(self, X):
        inner = np.sum(self.A[None] * (X[:, None, :] - self.P[None]) ** 2, axis=-1)  # (n, 4)
        return -np.sum(self.alpha * np.exp(-inner), axis=-1)


class Hartmann3(_Hartmann):
    """Hartmann 3-D on [0, 1]^3, four local minima."""

    name, dim = "Hartmann-3", 3
    bounds = [(0.0, 1.0)] * 3
    optimum = -3.862782147820756
    optimizers = np.array([[0.114614, 0.555649, 0.852547]])
    A = np.array([[3.0, 10, 30], [0.1, 10, 35], [3.0, 10, 30], [0.1, 10, 35]])
    P = 1e-4 * np.array([[3689, 1170, 2673], [4699, 4387, 7470], [1091, 8732, 5547], [381, 5743, 8828]])


class Hartmann6(_Hartmann):
    """Hartmann 6-D on [0, 1]^6, six local minima."""

    name, dim = "Hartmann-6", 6
    bounds = [(0.0, 1.0)] * 6
    optimum = -3.322368011391339
    optimizers = np.array([[0.20168952, 0.15001069, 0.47687398, 0.27533243, 0.31165162, 0.65730054]])
    A = np.array([
        [10, 3, 17, 3.5, 1.7, 8],
        [0.05, 10, 17, 0.1, 8, 14],
        [3, 3.5, 1.7, 10, 17, 8],
        [17, 8, 0.05, 10, 0.1, 14],
    ])
    P = 1e-4 * np.array([
        [1312, 1696, 5569, 124, 8283, 5886],
        [2329, 4135, 8307, 3736, 1004, 9991],
        [2348, 1451, 3522, 2883, 3047, 6650],
        [4047, 8828, 8732, 5743, 1091, 381],
    ])


class _Scalable(TestFunction):
    def __init__(self, dim: int = 2, noise_std: float = 0.0, seed: int | None = None):
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 1:
            raise ValueError(f"dim must be an int >= 1; got {dim!r}")
        super().__init__(noise_std, seed)
        self.dim = int(dim)
        self.bounds = [self._box] * self.dim
        self.optimizers = np.full((1, self.dim), self._argmin)


class Ackley(_Scalable):
    """Ackley on [-32.768, 32.768]^d: a = 20, b = 0.2, c = 2 pi; minimum 0 at the origin."""

    name, optimum, _box, _argmin = "Ackley", 0.0, (-32.768, 32.768), 0.0

    def _f(self, X):
        d = X.shape[1]
        r = np.sqrt(np.sum(X**2, axis=1) / d)
        return -20.0 * np.exp(-0.2 * r) - np.exp(np.sum(np.cos(2 * np.pi * X), axis=1) / d) + 20.0 + np.e


class Levy(_Scalable):
    """Levy on [-10, 10]^d with w = 1 + (x - 1) / 4; minimum 0 at (1, ..., 1)."""

    name, optimum, _box, _argmin = "Levy", 0.0, (-10.0, 10.0), 1.0

    def _f(self, X):
        w = 1.0 + (X - 1.0) / 4.0
        head = np.sin(np.pi * w[:, 0]) ** 2
        mid = np.sum((w[:, :-1] - 1) ** 2 * (1 + 10 * np.sin(np.pi * w[:, :-1] + 1) ** 2), axis=1)
        tail = (w[:, -1] - 1) ** 2 * (1 + np.sin(2 * np.pi * w[:, -1]) ** 2)
        return head + mid + tail


class Rosenbrock(_Scalable):
    """Rosenbrock on [-5, 10]^d: sum 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2; minimum 0 at ones."""

    name, optimum, _box, _argmin = "Rosenbrock", 0.0, (-5.0, 10.0), 1.0

    def __init__(self, dim: int = 2, noise_std: float = 0.0, seed: int | None = None):
        if isinstance(dim, (int, np.integer)) and not isinstance(dim, bool) and dim < 2:
            raise ValueError(f"dim must be an int >= 2 for Rosenbrock; got {dim!r}")
        super().__init__(dim, noise_std, seed)

    def _f(self, X):
        return np.sum(100.0 * (X[:, 1:] - X[:, :-1] ** 2) ** 2 + (1 - X[:, :-1]) ** 2, axis=1)


ALL = (Forrester, Branin, Hartmann3, Hartmann6, Ackley, Levy, Rosenbrock)
