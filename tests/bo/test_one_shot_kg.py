"""One-shot KG against the exact discrete KG and a brute-force Monte-Carlo KG that conditions the GP
on each sampled observation and minimises the new posterior mean on a dense grid."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bayeskit.bo import acquisitions as acq
from bayeskit.bo.one_shot_kg import (
    fantasy_means,
    fantasy_minimizers_on_set,
    maximize_one_shot_kg,
    one_shot_knowledge_gradient,
    optimize_fantasy_points,
    qmc_normal_samples,
)
from bayeskit.bo.optimize import sobol_points
from bayeskit.gp import posterior, predict
from bayeskit.kernels import Matern52

NOISE = 1e-2


def _post_1d():
    X = np.array([[0.1], [0.3], [0.45], [0.8], [0.95]])
    y = np.sin(8 * X[:, 0])
    kernel = Matern52(lengthscale=0.2, variance=1.0)
    return kernel, X, y, posterior(kernel, X, y, NOISE)


def _post_2d():
    rng = np.random.default_rng(3)
    X = rng.uniform(size=(7, 2))
    y = np.sin(5 * X[:, 0]) + np.cos(4 * X[:, 1])
    return posterior(Matern52(lengthscale=np.array([0.3, 0.4]), variance=1.5), X, y, NOISE)


def _exact_discrete_kg(post, A, j):
    mean, cov = acq.posterior_mean_cov(post, jnp.asarray(A))
    mean, cov = np.asarray(mean), np.asarray(cov)
    return float(acq.knowledge_gradient(mean, cov[:, [j]], cov[[j], [j]], NOISE)[0]), float(mean.min())


@pytest.mark.parametrize("j", [0, 11, 27])
def test_one_shot_on_a_discrete_set_matches_exact_discrete_kg(j):
    post = _post_2d()
    A = sobol_points(40, 2, 5)
    x = A[j]
    exact, c = _exact_discrete_kg(post, A, j)
    # iid samples: the Monte-Carlo standard error is valid
    z = np.random.default_rng(j).standard_normal(20_000)
    idx, vals = fantasy_minimizers_on_set(post, x, A, z)
    os_kg = float(one_shot_knowledge_gradient(post, x, A[idx], z, current_min=c))
    assert os_kg == pytest.approx(c - vals.mean(), abs=1e-12)  # the one-shot value at the set's minimisers
    se = (c - vals).std() / np.sqrt(z.size)
    assert abs(os_kg - exact) < 4 * se + 1e-9, (os_kg, exact, se)
    # quasi-random base samples: much closer for fewer fantasies
    zq = qmc_normal_samples(4096, 0)
    idx, vals = fantasy_minimizers_on_set(post, x, A, zq)
    assert abs(float(one_shot_knowledge_gradient(post, x, A[idx], zq, current_min=c)) - exact) < max(2e-3 * exact, 2e-5)
    # any other fantasy points give a lower value (one-shot KG is a lower bound)
    other = np.roll(idx, 1)
    assert float(one_shot_knowledge_gradient(post, x, A[other], zq, current_min=c)) <= c - vals.mean() + 1e-12
    # continuous inner minimisation started from the set can only raise the value
    Xf, cont_vals = optimize_fantasy_points(post, x, zq, A)
    assert np.all(cont_vals <= vals + 1e-12) and np.all((Xf >= 0) & (Xf <= 1))


def test_one_shot_matches_brute_force_monte_carlo_kg_in_1d():
    kernel, X, y, post = _post_1d()
    grid = np.linspace(0.0, 1.0, 2001)[:, None]
    x0 = np.array([0.61])
    mu_grid = np.asarray(predict(post, grid)[0])
    m0, v0 = (np.asarray(a)[0] for a in predict(post, x0[None, :]))
    z = np.random.default_rng(0).standard_normal(200)
    # brute force: condition the GP on each sampled y at x0, minimise the new mean on the grid
    mins = []
    for zs in z:
        ys = m0 + np.sqrt(v0 + NOISE) * zs
        post_s = posterior(kernel, np.vstack([X, x0[None, :]]), np.append(y, ys), NOISE)
        mins.append(float(np.min(predict(post_s, grid)[0])))
    mins = np.asarray(mins)
    kg_brute = mu_grid.min() - mins.mean()
    # one-shot with the same base samples (common random numbers) and optimised fantasy points
    Xf, vals = optimize_fantasy_points(post, x0, z, grid[::10])
    # each fantasy's minimum, fantasy by fantasy: the continuous minimum lies at most a grid
    # resolution (spacing 5e-4: ~1e-5 in value) below the grid's
    gap = mins - vals
    assert np.all(gap >= -1e-8) and np.all(gap < 2e-5), (gap.min(), gap.max())
    os_kg = float(one_shot_knowledge_gradient(post, x0, Xf, z, current_min=mu_grid.min()))
    assert -1e-8 <= os_kg - kg_brute < 2e-5
    # and both agree with the exact KG on the dense grid within Monte-Carlo error
    j = int(np.argmin(np.abs(grid[:, 0] - x0[0])))
    A = np.vstack([grid, x0[None, :]])
    exact, _ = _exact_discrete_kg(post, A, A.shape[0] - 1)
    se = mins.std() / np.sqrt(z.size)
    assert abs(kg_brute - exact) < 4 * se, (kg_brute, exact, se, j)


def test_maximize_one_shot_kg_finds_the_kg_maximiser_in_1d():
    _, _, _, post = _post_1d()
    # the exact discrete KG costs O(p^2 log p) on p points: a 101-point grid (KG is flat at its top)
    grid = np.linspace(0.0, 1.0, 101)[:, None]
    mean, cov = acq.posterior_mean_cov(post, jnp.asarray(grid))
    mean, cov = np.asarray(mean), np.asarray(cov)
    kg = acq.knowledge_gradient(mean, cov, np.diag(cov), NOISE)
    fine_mean = np.asarray(predict(post, np.linspace(0.0, 1.0, 4001)[:, None])[0])
    res = maximize_one_shot_kg(post, 1, n_fantasies=64, seed=0)
    assert res.x.shape == (1,) and res.fantasy_points.shape == (64, 1) and res.base_samples.shape == (64,)
    assert np.all((res.fantasy_points >= 0) & (res.fantasy_points <= 1))
    assert fine_mean.min() - 1e-5 < res.current_min <= fine_mean.min() + 1e-12  # continuous minimum of the mean
    at_x = kg[int(np.argmin(np.abs(grid[:, 0] - res.x[0])))]
    assert at_x >= 0.95 * kg.max(), (res.x, at_x, kg.max(), grid[kg.argmax()])
    # its value is a 64-sample estimate of the KG there (measured: 1% off)
    assert res.value == pytest.approx(at_x, rel=0.05)
    # and it is the one-shot KG at the returned fantasy points
    assert res.value == pytest.approx(float(one_shot_knowledge_gradient(
        post, res.x, res.fantasy_points, res.base_samples, current_min=res.current_min)), abs=1e-10)


def test_gradients_match_finite_differences():
    post = _post_2d()
    z = qmc_normal_samples(8, 1)
    x = np.array([0.3, 0.6])
    Xf = sobol_points(8, 2, 2)
    f = lambda x, Xf: one_shot_knowledge_gradient(post, x, Xf, z)  # noqa: E731
    gx, gf = jax.grad(f, argnums=(0, 1))(jnp.asarray(x), jnp.asarray(Xf))
    h = 1e-6
    for i in range(2):
        e = np.zeros(2)
        e[i] = h
        fd = (float(f(x + e, Xf)) - float(f(x - e, Xf))) / (2 * h)
        assert float(gx[i]) == pytest.approx(fd, rel=1e-5, abs=1e-8)
    E = np.zeros_like(Xf)
    E[3, 1] = h
    fd = (float(f(x, Xf + E)) - float(f(x, Xf - E))) / (2 * h)
    assert float(gf[3, 1]) == pytest.approx(fd, rel=1e-5, abs=1e-8)


def test_shapes_and_bad_inputs():
    post = _post_2d()
    z = qmc_normal_samples(5, 0)
    X = sobol_points(3, 2, 0)
    Xf = sobol_points(5, 2, 1)
    assert fantasy_means(post, X, Xf, z).shape == (3, 5)
    assert one_shot_knowledge_gradient(post, X, np.broadcast_to(Xf, (3, 5, 2)), z).shape == (3,)
    assert np.ndim(one_shot_knowledge_gradient(post, X[0], Xf, z)) == 0
    with pytest.raises(ValueError, match="fantasy_points"):
        one_shot_knowledge_gradient(post, X, Xf[:4], z)
    with pytest.raises(ValueError, match="X must have shape"):
        one_shot_knowledge_gradient(post, np.zeros(3), Xf, z)
    with pytest.raises(ValueError, match="base_samples"):
        one_shot_knowledge_gradient(post, X, Xf, np.zeros((5, 1)))
    with pytest.raises(ValueError, match="NaN"):
        one_shot_knowledge_gradient(post, np.array([np.nan, 0.2]), Xf, z)
    with pytest.raises(TypeError, match="Posterior"):
        one_shot_knowledge_gradient("post", X, Xf, z)
    with pytest.raises(ValueError, match="dim"):
        maximize_one_shot_kg(post, 3)
    with pytest.raises(ValueError, match="n_fantasies"):
        maximize_one_shot_kg(post, 2, n_fantasies=0)
