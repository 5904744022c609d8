"""Gaussian last-layer weight posteriors: the three covariance parameterisations and their algebra.

A VBLL head keeps, for each output j = 1..k, a Gaussian q(w_j) = N(m_j, S_j) over the weights
w_j in R^d of that output (d = number of features). The covariances S_j are stored in one of
three unconstrained parameterisations (``log_diag``: (k, d); ``factor``: see below):

* ``"dense"``: S_j = L_j L_j^T with the lower-triangular Cholesky factor
  L_j = strict_lower(factor_j) + diag(exp(log_diag_j)),  factor: (k, d, d);
  the diagonal of L is positive by construction, so L is always a valid Cholesky factor.
* ``"diagonal"``: S_j = diag(exp(2 log_diag_j)),  factor: None  (log_diag is a log std).
* ``"lowrank"``: S_j = U_j U_j^T + diag(exp(2 log_diag_j)),  U_j = factor_j: (k, d, r).

Everything a head needs reduces to four quantities, computed here without forming a d x d
inverse: the quadratic form phi^T S_j phi (the predictive variance of w_j^T phi; O(n k d^2)
for dense, O(n k d r) for low rank), tr S_j, log |S_j| and the KL divergence to an isotropic
Gaussian prior. Their cost is what makes VBLL's training quadratic in the width d.

Relation to the ``vbll`` package (0.4.9): ``mean``, ``log_diag`` and ``factor`` are its
``W_mean``, ``W_logdiag`` and ``W_offdiag`` for ``"dense"`` and ``"diagonal"``; for
``"lowrank"`` that package puts exp(W_logdiag) on the diagonal of the covariance (a log
variance), so ``log_diag = W_logdiag / 2`` there.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

PARAMETERIZATIONS = ("dense", "diagonal", "lowrank")


class WeightPosterior(NamedTuple):
    """q(W) = prod_j N(w_j | mean_j, S_j) in one of the parameterisations of this module.

    mean: (k, d); log_diag: (k, d); factor: (k, d, d) (dense), (k, d, r) (lowrank) or None
    (diagonal); kind: ``"dense" | "diagonal" | "lowrank"``.
    """

    mean: jax.Array
    log_diag: jax.Array
    factor: jax.Array | None
    kind: str


def check_parameterization(kind: str, cov_rank) -> None:
    if kind not in PARAMETERIZATIONS:
        raise ValueError(f"parameterization must be one of {PARAMETERIZATIONS}; got {kind!r}")
    if kind == "lowrank":
        if not isinstance(cov_rank, int) or isinstance(cov_rank, bool) or cov_rank < 1:
            raise ValueError(f"cov_rank must be a positive integer for parameterization='lowrank'; got {cov_rank!r}")


def cholesky_factor(q: WeightPosterior) -> jax.Array:
    """L_j (k, d, d), lower triangular with S_j = L_j L_j^T (dense and diagonal only)."""
    diag = jnp.exp(q.log_diag)
    if q.kind == "dense":
        return jnp.tril(q.factor, k=-1) + jax.vmap(jnp.diag)(diag)
    if q.kind == "diagonal":
        return jax.vmap(jnp.diag)(diag)
    raise ValueError("a low-rank covariance has no cheap Cholesky factor; use covariance(q)")


def covariance(q: WeightPosterior) -> jax.Array:
    """S_j as dense matrices, (k, d, d)."""
    if q.kind == "lowrank":
        return q.factor @ jnp.swapaxes(q.factor, -1, -2) + jax.vmap(jnp.diag)(jnp.exp(2 * q.log_diag))
    L = cholesky_factor(q)
    return L @ jnp.swapaxes(L, -1, -2)


def quad_form(q: WeightPosterior, phi: jax.Array) -> jax.Array:
    """phi_i^T S_j phi_i for every row i of phi (n, d) and output j: (n, k)."""
    if q.kind == "dense":
        L = cholesky_factor(q)
        # ||L_j^T phi||^2; the einsum is the O(n k d^2) step
        return jnp.sum(jnp.einsum("kde,nd->nke", L, phi) ** 2, axis=-1)
    var_diag = jnp.exp(2 * q.log_diag)
    out = (phi**2) @ var_diag.T
    if q.kind == "lowrank":
        out = out + jnp.sum(jnp.einsum("kdr,nd->nkr", q.factor, phi) ** 2, axis=-1)
    return out


def trace(q: WeightPosterior) -> jax.Array:
    """tr S_j, (k,)."""
    tr = jnp.sum(jnp.exp(2 * q.log_diag), axis=-1)
    if q.kind == "dense":
        tr = tr + jnp.sum(jnp.tril(q.factor, k=-1) ** 2, axis=(-1, -2))
    elif q.kind == "lowrank":
        tr = tr + jnp.sum(q.factor**2, axis=(-1, -2))
    return tr


def logdet(q: WeightPosterior) -> jax.Array:
    """log |S_j|, (k,). Low rank uses the matrix determinant lemma
    log|D + U U^T| = log|D| + log|I_r + U^T D^-1 U| (an r x r Cholesky)."""
    base = 2.0 * jnp.sum(q.log_diag, axis=-1)
    if q.kind != "lowrank":
        return base
    scaled = q.factor * jnp.exp(-q.log_diag)[..., None]  # D^{-1/2} U: (k, d, r)
    r = q.factor.shape[-1]
    small = jnp.eye(r, dtype=q.factor.dtype) + jnp.swapaxes(scaled, -1, -2) @ scaled
    chol = jnp.linalg.cholesky(small)
    return base + 2.0 * jnp.sum(jnp.log(jnp.diagonal(chol, axis1=-2, axis2=-1)), axis=-1)


def kl_to_isotropic(q: WeightPosterior, prior_variance: float) -> jax.Array:
    """KL( prod_j N(m_j, S_j) || prod_j N(0, s I_d) ), a scalar (summed over outputs j):

        0.5 sum_j [ (||m_j||^2 + tr S_j) / s - d + d log s - log |S_j| ].

    (The ``vbll`` package leaves out the constant -d/2 per output; this is the full KL.)
    """
    d = q.mean.shape[-1]
    s = prior_variance
    per_output = (jnp.sum(q.mean**2, axis=-1) + trace(q)) / s - d + d * jnp.log(s) - logdet(q)
    return 0.5 * jnp.sum(per_output)


def inverse_wishart_log_density(noise_log_std: jax.Array, dof: float, scale: float) -> jax.Array:
    """log IW(Sigma | nu, psi I) up to its normalising constant, for diagonal Sigma = diag(exp(2 noise_log_std)):

        -(nu + p + 1)/2 log |Sigma| - (psi/2) tr(Sigma^-1),     p = len(noise_log_std).

    This is the noise prior of the paper's regression and classification objectives (the
    constant does not depend on any trained parameter, so it is left out, as in the paper).
    For p = 1 it is the inverse-gamma density with shape nu/2 and scale psi/2 over sigma^2.
    """
    p = noise_log_std.shape[-1]
    log_det = 2.0 * jnp.sum(noise_log_std)
    trace_precision = jnp.sum(jnp.exp(-2.0 * noise_log_std))
    return -0.5 * (dof + p + 1.0) * log_det - 0.5 * scale * trace_precision
