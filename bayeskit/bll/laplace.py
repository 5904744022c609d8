"""Last-layer Laplace: Gaussian posteriors over the final linear layer, their evidence and predictive.

The pure-array core of :class:`bayeskit.bll.baselines.LastLayerLaplace`, following *Laplace Redux
-- Effortless Bayesian Deep Learning* (Daxberger, Kristiadi, Immer, Eschenhagen, Bauer, Hennig).
A trained network is split into features phi(x) (D,) (here with a constant 1 appended, so the
bias is part of the last layer) and last-layer weights W (D, K); logits / outputs f = W^T phi.
The weights get the prior N(0, alpha^{-1} I) and the posterior

    p(W | data) ~ N(W*, H^{-1}),   H = H_lik + alpha I,   H_lik = sum_n J_n^T Lambda_n J_n,

with J_n = phi_n^T kron I_K the Jacobian of f_n with respect to w = vec(W) (row-major,
w[d K + k] = W[d, k], the layout of :mod:`bayeskit.filters.online_classification`) and
Lambda_n = -d^2 log p(y_n | f) / df^2 the likelihood curvature in function space:

* Gaussian likelihood (regression): Lambda_n = 1 / sigma^2, f linear in w, so the log posterior
  is quadratic and the Laplace posterior *is* Bayesian linear regression on the features; the
  generalized Gauss-Newton (GGN) matrix is the exact Hessian. :func:`regression_posterior`
  re-solves the mean in closed form for the chosen prior precision.
* softmax likelihood (classification): Lambda_n = diag(p_n) - p_n p_n^T, p_n = softmax(f_n).
  Because f is linear in the last-layer weights the GGN (= the Fisher) equals the exact Hessian
  of the negative log-likelihood here (the second-derivative-of-f term vanishes).
  :func:`classification_posterior` keeps the network's W* as the mean (post-hoc Laplace).

Prior precision by the Laplace evidence (Laplace Redux sec. 2; MacKay, *Bayesian Interpolation*)::

    log Z(alpha) = log p(y | W*) - alpha / 2 ||w*||^2 + P / 2 log alpha - 1/2 sum_i log(lambda_i + alpha)

(lambda_i: eigenvalues of H_lik; P = D K). For regression W* = W*(alpha) is the posterior mean
and log Z is the exact marginal likelihood of the linear-Gaussian model. In both cases (for the
regression mean, by the envelope theorem) the derivative with respect to log alpha is

    d log Z / d log alpha = 1/2 [ gamma(alpha) - alpha ||w*||^2 ],   gamma = sum_i lambda_i / (lambda_i + alpha),

MacKay's "effective number of parameters" condition. :func:`optimize_prior_precision` brackets the
roots of this closed-form gradient on a log grid, refines them with Brent's method and keeps the
root with the largest evidence (for fixed w* there is exactly one).

Predictive (linearised: the network is linear in W, so this is exact given the Gaussian weight
posterior): f ~ N(W*^T phi, J Sigma J^T). Regression: y ~ N(f mean, f var + sigma^2).
Classification: E[softmax(f)] by the pairwise probit (mean-field) approximation of
:func:`probit_softmax` (Laplace Redux's default is a "probit" link; MacKay, *The Evidence Framework
Applied to Classification Networks*; the pairwise form, which accounts for the correlation of the
logits, is Lu, Ie & Sha's), or by Monte Carlo over f (:func:`mc_softmax`).

Everything here is float64 NumPy/JAX (posteriors are compared with closed forms).
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from scipy.optimize import brentq

from .. import _config  # noqa: F401  (float64)
from .._validation import as_prng_key, positive_scalar
from ..linalg import cholesky

__all__ = [
    "LastLayerPosterior",
    "with_bias",
    "softmax_ggn",
    "regression_log_evidence",
    "classification_log_evidence",
    "optimize_prior_precision",
    "regression_posterior",
    "classification_posterior",
    "linearized_predictive",
    "probit_softmax",
    "mc_softmax",
]

_LOG_2PI = float(np.log(2.0 * np.pi))
#: search range for the prior precision (the log grid that brackets the evidence maximum)
PRECISION_RANGE = (1e-8, 1e8)


class LastLayerPosterior(NamedTuple):
    """N(vec(mean), cov) over the last layer. mean: (D, K) (last row: bias); cov: (D K, D K) over
    vec(W) in row-major order; prior_precision: alpha; log_evidence: log Z(alpha) (exact marginal
    likelihood for regression, the Laplace approximation for classification)."""

    mean: np.ndarray
    cov: np.ndarray
    prior_precision: float
    log_evidence: float


def with_bias(phi) -> np.ndarray:
    """Features (n, D) -> (n, D + 1) float64 with a column of ones (the bias as a weight)."""
    phi = np.asarray(phi, dtype=np.float64)
    return np.concatenate([phi, np.ones((phi.shape[0], 1))], axis=1)


def _check_phi(phi, name="phi") -> np.ndarray:
    phi = np.asarray(phi, dtype=np.float64)
    if phi.ndim != 2 or phi.shape[0] == 0:
        raise ValueError(f"{name} must be (n, D) features with n >= 1; got shape {phi.shape}")
    if not np.all(np.isfinite(phi)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return phi


def _check_alpha(alpha, name: str = "prior_precision") -> float:
    return positive_scalar(alpha, name)


def softmax_ggn(phi, weights) -> np.ndarray:
    """GGN (= Fisher = Hessian of the negative log-likelihood) of softmax regression on features.

    phi: (n, D); weights: W (D, K). Returns H_lik (D K, D K) = sum_n kron(phi_n phi_n^T, Lambda_n),
    Lambda_n = diag(p_n) - p_n p_n^T, p_n = softmax(W^T phi_n), over vec(W) row-major.
    """
    phi, W = _check_phi(phi), np.asarray(weights, dtype=np.float64)
    if W.ndim != 2 or W.shape[0] != phi.shape[1]:
        raise ValueError(f"weights must be (D, K) = ({phi.shape[1]}, K); got shape {W.shape}")
    D, K = W.shape
    p = np.asarray(jax.nn.softmax(phi @ W, axis=1))
    lam = p[:, :, None] * np.eye(K)[None] - p[:, :, None] * p[:, None, :]  # (n, K, K)
    H = np.einsum("nd,ne,nkl->dkel", phi, phi, lam, optimize=True)
    H = H.reshape(D * K, D * K)
    return 0.5 * (H + H.T)


# ----------------------------------------------------------------------------- evidence
class _RegressionEvidence:
    """log Z(alpha) of y ~ N(Phi w, sigma^2 I), w ~ N(0, alpha^{-1} I), for many alpha at the
    cost of one eigendecomposition Phi^T Phi = U diag(s) U^T."""

    def __init__(self, phi, y, noise_var):
        self.phi, self.y, self.noise_var = phi, y, float(noise_var)
        s, U = np.linalg.eigh(phi.T @ phi)
        self.s = np.clip(s, 0.0, None)  # round-off can make zero eigenvalues slightly negative
        self.U = U
        self.c = U.T @ (phi.T @ y)  # Phi^T y in the eigenbasis
        self.yy = float(y @ y)
        self.lam = self.s / self.noise_var  # eigenvalues of H_lik = Phi^T Phi / sigma^2

    def mean_eig(self, alpha):
        # posterior mean in the eigenbasis: (Phi^T Phi / s2 + alpha)^{-1} Phi^T y / s2
        return self.c / (self.s + alpha * self.noise_var)

    def norm2(self, alpha):
        return float(np.sum(self.mean_eig(alpha) ** 2))

    def __call__(self, alpha):
        n, s2 = self.y.shape[0], self.noise_var
        m = self.mean_eig(alpha)
        fit = max(self.yy - 2.0 * m @ self.c + np.sum(self.s * m**2), 0.0)  # ||y - Phi m||^2
        P = self.s.shape[0]
        return float(-0.5 * n * (_LOG_2PI + np.log(s2)) - 0.5 * fit / s2 - 0.5 * alpha * np.sum(m**2)
                     + 0.5 * P * np.log(alpha) - 0.5 * np.sum(np.log(self.lam + alpha)))


def regression_log_evidence(phi, y, noise_var, prior_precision) -> float:
    """Exact log marginal likelihood log N(y | 0, sigma^2 I + Phi Phi^T / alpha) of Bayesian linear
    regression on features phi (n, P), targets y (n,), noise variance sigma^2, prior precision alpha
    (= the last-layer Laplace evidence for a Gaussian likelihood)."""
    phi = _check_phi(phi)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    if y.shape[0] != phi.shape[0]:
        raise ValueError(f"y has {y.shape[0]} entries but phi has {phi.shape[0]} rows")
    return _RegressionEvidence(phi, y, _check_alpha(noise_var, "noise_var"))(_check_alpha(prior_precision))


def classification_log_evidence(log_likelihood, weights, ggn_eigenvalues, prior_precision) -> float:
    """Laplace evidence at fixed weights w* (P,) with likelihood-Hessian eigenvalues (P,)::

        log Z = log p(y | w*) - alpha/2 ||w*||^2 + P/2 log alpha - 1/2 sum_i log(lambda_i + alpha)
    """
    w = np.asarray(weights, dtype=np.float64).reshape(-1)
    lam = np.clip(np.asarray(ggn_eigenvalues, dtype=np.float64), 0.0, None)
    a = _check_alpha(prior_precision)
    return float(log_likelihood - 0.5 * a * w @ w + 0.5 * w.shape[0] * np.log(a) - 0.5 * np.sum(np.log(lam + a)))


def optimize_prior_precision(eigenvalues, norm2, log_evidence, *, bounds=PRECISION_RANGE, grid_size: int = 161):
    """alpha maximising ``log_evidence(alpha)`` via the roots of its closed-form gradient.

    eigenvalues: (P,) of H_lik; ``norm2(alpha)`` = ||w*(alpha)||^2. Roots of
    g(log alpha) = gamma(alpha) - alpha norm2(alpha) (a maximum where g goes from + to -) are
    bracketed on a log grid of ``grid_size`` points over ``bounds`` and refined by ``brentq``;
    the root with the highest evidence wins. Returns (alpha, log_evidence(alpha)). Warns if the
    maximum sits on a bound (no data information: alpha -> 0 or weights -> 0).
    """
    lam = np.clip(np.asarray(eigenvalues, dtype=np.float64), 0.0, None)

    def g(log_a):
        a = np.exp(log_a)
        return float(np.sum(lam / (lam + a)) - a * norm2(a))

    grid = np.linspace(np.log(bounds[0]), np.log(bounds[1]), grid_size)
    vals = np.array([g(t) for t in grid])
    candidates = []
    for i in range(grid_size - 1):
        if vals[i] > 0 >= vals[i + 1]:
            root = grid[i + 1] if vals[i + 1] == 0 else brentq(g, grid[i], grid[i + 1], xtol=1e-12, rtol=1e-12)
            candidates.append(float(np.exp(root)))
    if not candidates:
        edge = bounds[1] if vals[-1] > 0 else bounds[0]
        warnings.warn(f"the evidence is maximal at the edge of the prior-precision range ({edge:g}); using it",
                      RuntimeWarning, stacklevel=3)
        candidates = [float(edge)]
    scores = [log_evidence(a) for a in candidates]
    best = int(np.argmax(scores))
    return candidates[best], float(scores[best])


# ----------------------------------------------------------------------------- posteriors
def _cov_from_precision(H, what):
    L = np.asarray(cholesky(jnp.asarray(H), what=what))
    Linv = np.linalg.solve(L, np.eye(H.shape[0]))  # the precision is small (P <= a few hundred)
    cov = Linv.T @ Linv
    return 0.5 * (cov + cov.T)


def regression_posterior(phi, y, noise_var, prior_precision=None) -> LastLayerPosterior:
    """Bayesian linear regression on features phi (n, D) (append the bias with :func:`with_bias`).

    y: (n,); noise_var: sigma^2; prior_precision: alpha, or ``None`` to maximise the evidence.
    Posterior: Sigma = (Phi^T Phi / sigma^2 + alpha I)^{-1}, m = Sigma Phi^T y / sigma^2 (the
    last-layer Laplace posterior with the exact GGN). mean is returned as (D, 1).
    """
    phi = _check_phi(phi)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    if y.shape[0] != phi.shape[0] or not np.all(np.isfinite(y)):
        raise ValueError(f"y must be finite with {phi.shape[0]} entries; got shape {y.shape}")
    s2 = _check_alpha(noise_var, "noise_var")
    ev = _RegressionEvidence(phi, y, s2)
    if prior_precision is None:
        alpha, logz = optimize_prior_precision(ev.lam, ev.norm2, ev)
    else:
        alpha = _check_alpha(prior_precision)
        logz = ev(alpha)
    H = phi.T @ phi / s2 + alpha * np.eye(phi.shape[1])
    cov = _cov_from_precision(H, "last-layer posterior precision")
    mean = cov @ (phi.T @ y) / s2
    return LastLayerPosterior(mean[:, None], cov, alpha, logz)


def _softmax_log_likelihood(phi, W, labels):
    logits = phi @ W
    logp = logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)
    return float(np.sum(logp[np.arange(phi.shape[0]), labels]))


def classification_posterior(phi, labels, weights, prior_precision=None) -> LastLayerPosterior:
    """Post-hoc Laplace for a softmax last layer at the trained weights W* (D, K).

    phi: (n, D) (bias column included); labels: (n,) ints in [0, K). H = softmax_ggn + alpha I;
    alpha maximises the Laplace evidence if ``prior_precision`` is None. The mean stays W*.
    """
    phi = _check_phi(phi)
    W = np.asarray(weights, dtype=np.float64)
    labels = np.asarray(labels)
    if labels.shape != (phi.shape[0],):
        raise ValueError(f"labels must be ({phi.shape[0]},); got shape {labels.shape}")
    labels = labels.astype(np.int64)
    H_lik = softmax_ggn(phi, W)
    w = W.reshape(-1)
    loglik = _softmax_log_likelihood(phi, W, labels)
    lam = np.linalg.eigvalsh(H_lik)

    def logz(a):
        return classification_log_evidence(loglik, w, lam, a)

    if prior_precision is None:
        alpha, value = optimize_prior_precision(lam, lambda a: float(w @ w), logz)
    else:
        alpha = _check_alpha(prior_precision)
        value = logz(alpha)
    cov = _cov_from_precision(H_lik + alpha * np.eye(w.shape[0]), "last-layer posterior precision")
    return LastLayerPosterior(W.copy(), cov, alpha, value)


# ----------------------------------------------------------------------------- predictive
def linearized_predictive(posterior: LastLayerPosterior, phi):
    """Moments of f = W^T phi under the posterior: mean (n, K), covariance (n, K, K).

    phi: (n, D) with the bias column. f_cov[n, k, l] = sum_{d, e} phi_nd phi_ne Sigma[dK+k, eK+l].
    """
    phi = _check_phi(phi)
    D, K = posterior.mean.shape
    if phi.shape[1] != D:
        raise ValueError(f"phi must have {D} columns (features + bias); got shape {phi.shape}")
    # two contractions, T = phi Sigma as (n, K, D, K), then T[n] . phi[n]: about ten times faster
    # than one four-index einsum on a few thousand points (the LastLayerExplorer's grid)
    T = (phi @ posterior.cov.reshape(D, K * D * K)).reshape(-1, K, D, K)
    f_cov = np.einsum("nkel,ne->nkl", T, phi, optimize=True)
    return phi @ posterior.mean, 0.5 * (f_cov + np.swapaxes(f_cov, 1, 2))


def probit_softmax(f_mean, f_cov) -> np.ndarray:
    """E[softmax(f)] for f ~ N(f_mean, f_cov) by the pairwise probit (mean-field) approximation.

    f_mean: (n, K); f_cov: (n, K, K) (or (n, K) variances, read as a diagonal covariance). With
    v_kj = var(f_k - f_j) = S_kk + S_jj - 2 S_kj::

        p_k ~ 1 / sum_j exp( -(m_k - m_j) / sqrt(1 + pi/8 v_kj) ),   then normalised,

    from *Mean-Field Approximation to Gaussian-Softmax Integral with Application to Uncertainty
    Estimation* (Lu, Ie, Sha), built on MacKay's probit approximation sigmoid(m / sqrt(1 + pi/8 v))
    of E[sigmoid(f)]. For K = 2 it *is* that binary approximation of p(y=1) = E[sigmoid(f_1 - f_0)],
    so, unlike scaling each logit by its own variance, it sees the (typically strong) correlation
    between the logits of a last layer. Exact as the covariance vanishes.
    """
    f_mean = np.asarray(f_mean, dtype=np.float64)
    S = np.asarray(f_cov, dtype=np.float64)
    if S.ndim == f_mean.ndim:  # variances only
        S = S[..., :, None] * np.eye(f_mean.shape[-1])
    if S.shape != f_mean.shape + f_mean.shape[-1:]:
        raise ValueError(f"f_cov must be (n, K, K) or (n, K) for f_mean {f_mean.shape}; got {np.shape(f_cov)}")
    d = np.diagonal(S, axis1=-2, axis2=-1)
    v = np.clip(d[..., :, None] + d[..., None, :] - 2.0 * S, 0.0, None)  # var(f_k - f_j)
    z = (f_mean[..., :, None] - f_mean[..., None, :]) / np.sqrt(1.0 + np.pi / 8.0 * v)
    log_p = -np.logaddexp.reduce(-z, axis=-1)  # log 1 / sum_j exp(-z_kj)
    p = np.exp(log_p - np.logaddexp.reduce(log_p, axis=-1, keepdims=True))
    return p


def mc_softmax(f_mean, f_cov, key, n_samples: int = 1000) -> np.ndarray:
    """E[softmax(f)] by Monte Carlo, f ~ N(f_mean (n, K), f_cov (n, K, K)); returns (n, K)."""
    key = as_prng_key(key)
    if not isinstance(n_samples, (int, np.integer)) or n_samples < 1:
        raise ValueError(f"n_samples must be a positive integer; got {n_samples!r}")
    f_mean, f_cov = jnp.asarray(f_mean, jnp.float64), jnp.asarray(f_cov, jnp.float64)
    K = f_mean.shape[-1]
    # eigen square root: f_cov is PSD but often singular (softmax shift invariance)
    evals, evecs = jnp.linalg.eigh(f_cov)
    root = evecs * jnp.sqrt(jnp.clip(evals, 0.0, None))[:, None, :]
    z = jax.random.normal(key, (int(n_samples), f_mean.shape[0], K), dtype=jnp.float64)
    f = f_mean[None] + jnp.einsum("nkl,snl->snk", root, z)
    return np.asarray(jnp.mean(jax.nn.softmax(f, axis=-1), axis=0))
