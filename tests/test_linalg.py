"""Linear algebra helpers against NumPy, including singular matrices."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from collapse_jax.linalg import cholesky_root, nuclear_norm, pivoted_root
from collapse_jax.models.gaussian.model import gaussian_params, make_gaussian


@pytest.mark.parametrize("dim,rank", [(1, 1), (3, 3), (5, 2), (20, 9), (20, 20)])
def test_pivoted_root_reconstructs_and_reveals_rank(dim, rank):
    rng = np.random.default_rng(dim + rank)
    a = rng.normal(size=(dim, rank))
    matrix = a @ a.T
    root, log_det = pivoted_root(jnp.asarray(matrix, jnp.float32))
    np.testing.assert_allclose(np.asarray(root @ root.T), matrix, atol=2e-5 * np.abs(matrix).max())
    if rank < dim:
        assert np.isneginf(float(log_det))
    else:
        assert float(log_det) == pytest.approx(np.linalg.slogdet(matrix)[1], abs=1e-3)
    _, chol_log_det = cholesky_root(jnp.asarray(matrix + np.eye(dim), jnp.float32))
    assert float(chol_log_det) == pytest.approx(np.linalg.slogdet(matrix + np.eye(dim))[1], abs=1e-3)


@pytest.mark.parametrize("dim,rank", [(2, 2), (3, 1), (10, 4), (50, 50)])
def test_nuclear_norm_matches_svd(dim, rank):
    rng = np.random.default_rng(rank)
    matrix = rng.normal(size=(dim, rank)) @ rng.normal(size=(rank, dim)) * 10.0 ** rng.uniform(-6, 3)
    expected = np.linalg.svd(matrix, compute_uv=False).sum()
    assert float(nuclear_norm(jnp.asarray(matrix, jnp.float32))) == pytest.approx(expected, rel=1e-5)


def test_singular_gaussian_fit_samples_stay_in_the_affine_span():
    """M - 1 < d: exact sampling from the singular fit, log det = -inf (not NaN)."""
    dim, n = 10, 4
    est = make_gaussian(ddof=1, full_rank=False)
    data = jax.random.normal(jax.random.key(0), (n, dim))
    params = est.fit(jax.random.key(1), data, jnp.ones(n))
    assert np.isneginf(float(params.log_det))
    np.testing.assert_allclose(params.covariance, np.cov(np.asarray(data), rowvar=False), atol=1e-5)
    draws = np.asarray(est.sample(jax.random.key(2), params, 500))
    centred_fit = np.asarray(data - data.mean(0))
    basis, _ = np.linalg.qr(centred_fit.T)  # span of the centred fitted points, (dim, n)
    residual = (draws - np.asarray(params.mean)) - (draws - np.asarray(params.mean)) @ basis @ basis.T
    assert np.abs(residual).max() < 1e-4
    refit = est.fit(jax.random.key(3), jnp.asarray(draws), jnp.ones(500))
    assert np.isneginf(float(refit.log_det))


def test_sufficient_statistics_have_the_exact_moments():
    """E scatter = (n - 1) Sigma and E mean = mu, for n below and above d (singular Wishart included)."""
    est = make_gaussian(ddof=0)
    cov = np.array([[2.0, 0.5, 0.0], [0.5, 1.0, 0.3], [0.0, 0.3, 0.5]])
    truth = gaussian_params(jnp.array([1.0, -1.0, 0.0]), jnp.asarray(cov, jnp.float32))
    keys = jax.random.split(jax.random.key(4), 40_000)
    for n in (2, 3, 10):
        stats = jax.vmap(lambda k: est.sample_statistics(k, truth, n))(keys)
        np.testing.assert_allclose(np.asarray(stats.scatter).mean(0), (n - 1) * cov, atol=0.05 * n)
        np.testing.assert_allclose(np.asarray(stats.mean).mean(0), [1.0, -1.0, 0.0], atol=0.03)
        np.testing.assert_allclose(np.cov(np.asarray(stats.mean), rowvar=False), cov / n, atol=0.03)
        assert np.isneginf(np.asarray(stats.log_det)).all() == (n - 1 < 3)


def test_pure_cholesky_and_substitutions_match_numpy():
    import numpy as np

    from collapse_jax.linalg import cholesky_lower, triangular_solve

    rng = np.random.default_rng(3)
    a = rng.standard_normal((7, 7))
    matrix = (a @ a.T + 7 * np.eye(7)).astype(np.float32)
    rhs = rng.standard_normal(7).astype(np.float32)
    lower = np.asarray(cholesky_lower(matrix))
    np.testing.assert_allclose(lower, np.linalg.cholesky(matrix), rtol=1e-4, atol=1e-5)
    x = triangular_solve(lower, triangular_solve(lower, rhs), transpose=True)
    np.testing.assert_allclose(np.asarray(x), np.linalg.solve(matrix, rhs), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("pivot", [False, True])
def test_qr_root_lapack_route_equals_the_pure_route(pivot):
    """Where LAPACK is safe qr_root uses geqp3/geqrf (one matrix per call under vmap); the pure-array
    reflections give the same root and diagonal, also for a rank-deficient stack (its absent directions
    at rounding level in both)."""
    import jax

    from collapse_jax.linalg import qr_root

    key = jax.random.PRNGKey(3)
    full = jax.random.normal(key, (4, 41, 20))
    deficient = full[:, :, :7] @ jax.random.normal(jax.random.PRNGKey(4), (7, 20))  # rank 7
    for rows in (full, deficient):
        lapack = jax.jit(jax.vmap(lambda r: qr_root(r, pivot=pivot)))(rows)
        pure = jax.jit(jax.vmap(lambda r: qr_root(r, pivot=pivot, pure=True)))(rows)
        for a, b in zip(lapack, pure):
            assert a.shape == b.shape
        np.testing.assert_allclose(
            np.einsum("bij,bkj->bik", lapack[0], lapack[0]), np.einsum("bij,bkj->bik", pure[0], pure[0]), atol=2e-3
        )
        if rows is full:
            np.testing.assert_allclose(np.sort(lapack[1]), np.sort(pure[1]), atol=1e-3)
        elif pivot:  # rank revealing: the last 13 pivots are at rounding level in both
            for diag in (lapack[1], pure[1]):
                assert np.all(np.asarray(diag)[:, 7:] < np.asarray(diag)[:, :1] - 8)
