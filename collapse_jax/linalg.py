"""Small, batch-friendly linear algebra used by the estimators: LAPACK where it is safe (`lapack_is_safe`:
one CPU device, GPU, TPU), one matrix per call; pure array code elsewhere (several CPU devices)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from collapse_jax.options import LAPACK_ENV


def cholesky_root(matrix: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Cholesky factor and log-determinant of a positive-definite matrix `(d, d)`.

    A matrix that is singular to working precision gives NaN (reported as non-finite, never hidden):
    use `pivoted_root` where singular matrices are expected. LAPACK where it is safe
    (`lapack_is_safe`), else the pure-array `cholesky_lower`.
    """
    factor = _lapack_cholesky(matrix) if lapack_is_safe() else cholesky_lower(matrix)
    return factor, 2.0 * jnp.sum(jnp.log(jnp.diagonal(factor)))


def triangular_solve(lower: jax.Array, rhs: jax.Array, *, transpose: bool = False) -> jax.Array:
    """Solve `L x = rhs` (or `L^T x = rhs`) for a lower-triangular `(d, d)` L with a non-zero diagonal.

    Substitution as a `fori_loop` of vector products (pure array code): LAPACK's triangular solve
    inside scans run on several CPU devices hangs (JAX 0.10.2), as its SVD does.
    """
    lower, rhs = jnp.asarray(lower), jnp.asarray(rhs)
    d = lower.shape[-1]
    matrix = lower.T if transpose else lower
    order = jnp.arange(d)[::-1] if transpose else jnp.arange(d)

    def step(i, x):
        row = order[i]
        value = (rhs[row] - jnp.dot(matrix[row], x)) / matrix[row, row]
        return x.at[row].set(value)

    return jax.lax.fori_loop(0, d, step, jnp.zeros_like(rhs))


def cholesky_lower(matrix: jax.Array) -> jax.Array:
    """Lower Cholesky factor of a symmetric positive-definite `(d, d)` matrix, by outer-product updates
    in a `fori_loop` (pure array code; LAPACK's potrf inside scans on several CPU devices hangs)."""
    matrix = jnp.asarray(matrix)
    d = matrix.shape[-1]
    index = jnp.arange(d)

    def column(k, state):
        residual, lower = state
        pivot = jnp.sqrt(residual[k, k])
        col = jnp.where(index >= k, residual[:, k] / pivot, 0.0)
        return residual - jnp.outer(col, col), lower.at[:, k].set(col)

    _, lower = jax.lax.fori_loop(0, d, column, (matrix, jnp.zeros_like(matrix)))
    return lower


_LAPACK_MODES = ("", "0", "1", "force", "batched")


def _lapack_mode() -> str:
    import os

    mode = os.environ.get(LAPACK_ENV, "").strip().lower()
    if mode not in _LAPACK_MODES:
        raise ValueError(f"{LAPACK_ENV} must be 0, 1, force or batched, got {os.environ[LAPACK_ENV]!r}")
    return mode


def lapack_is_safe() -> bool:
    """Whether code traced now calls LAPACK (cuSOLVER on GPU) for its factorisations, or pure array code.

    True on GPU and TPU, and on a CPU backend with one device (JAX's default); False on a CPU backend
    with several devices (`--xla_force_host_platform_device_count`), where the factorisations are pure
    array code (`cholesky_lower`, `triangular_solve`): in the d = 50 regression chain (4000 chains,
    one CPU device) 2.7x slower on the sample path and 3.9x on the Wishart path.

    Why LAPACK can hang on CPU, and what avoids it (jax 0.10.2; `benchmarks/lapack_safety.py`,
    `benchmarks/results/lapack_safety_cpu2.json`, 2026-12-04): jaxlib's CPU LAPACK kernels split a
    batch of matrices into chunks, queue them on XLA's intra-op thread pool (one thread per core) and
    block their own pool thread until the chunks are done. Whenever as many such calls run at once as
    the pool has threads (two independent factorisations in one program on a 2-core machine: a metric's
    SVD beside a solve, the downstream fit's two solves; or one call per device with several devices),
    every thread waits for chunks that no thread is left to run, and the process hangs with no CPU use.
    A call on a single matrix runs inline and never waits, so on CPU every LAPACK call here is made one
    matrix at a time (`_one_matrix_per_call`: under `vmap`, a `lax.map` over the batch): 0 hangs in 403
    one-device runs of eight workloads (50 or more each) and in 18 runs with 2 and 4 devices (the batched
    calls: 3 of 3 hung in each of two such checks), and no slower than the batched call.

    The environment variable `COLLAPSE_JAX_CPU_LAPACK` overrides the CPU choice, read when a program is
    traced: `0`, the pure route on every CPU backend; `1` or unset, the rule above; `force`, LAPACK (one
    matrix per call) on several CPU devices too (what `collapse-jax simulate` and `sweep` set when they give
    the CPU one device per core); `batched`, LAPACK with jaxlib's batched calls whatever the device count (the form
    that hangs; only for checking that it still does).
    """
    if jax.default_backend() != "cpu":
        return True
    mode = _lapack_mode()
    if mode == "0":
        return False
    return mode in ("force", "batched") or jax.device_count() == 1


def _one_matrix_per_call(fn):
    """`fn` (one LAPACK call on unbatched arrays) batched under `vmap` as a `lax.map`, so that each call
    factorises a single matrix (see `lapack_is_safe`); with `COLLAPSE_JAX_CPU_LAPACK=batched`, or off CPU,
    as one batched call."""

    @jax.custom_batching.custom_vmap
    def wrapped(*args):
        return fn(*args)

    def every(out, batched: bool):  # the batching spec of every output leaf (fn may return a tuple)
        return jax.tree.map(lambda _: batched, out)

    @wrapped.def_vmap
    def rule(axis_size, in_batched, *args):
        if jax.default_backend() != "cpu" or _lapack_mode() == "batched":
            moved = [a if b else jnp.broadcast_to(a, (axis_size, *a.shape)) for a, b in zip(args, in_batched)]
            out = jax.vmap(fn)(*moved)
            return out, every(out, True)
        if not any(in_batched):
            out = wrapped(*args)
            return out, every(out, False)
        moved = tuple(a if b else jnp.broadcast_to(a, (axis_size, *a.shape)) for a, b in zip(args, in_batched))
        out = jax.lax.map(lambda one: wrapped(*one), moved)
        return out, every(out, True)

    return wrapped


@_one_matrix_per_call
def _lapack_pivoted_qr_r(rows):
    upper, permutation = jax.scipy.linalg.qr(rows, mode="r", pivoting=True)  # LAPACK geqp3
    return upper, permutation.astype(jnp.int32)


@_one_matrix_per_call
def _lapack_qr_r(rows):
    return jnp.linalg.qr(rows, mode="r")  # LAPACK geqrf


@_one_matrix_per_call
def _lapack_cholesky(matrix):
    return jnp.linalg.cholesky(matrix)


@_one_matrix_per_call
def _lapack_factor_solve(lower, rhs):
    return jax.scipy.linalg.cho_solve((lower, True), rhs)


def spd_solve(matrix: jax.Array, rhs: jax.Array, pure: bool = False) -> jax.Array:
    """`matrix^-1 rhs` for a symmetric positive-definite `(d, d)` matrix (Cholesky, then two substitutions).

    LAPACK where it is safe (`lapack_is_safe`), else the pure-array `cholesky_lower` and
    `triangular_solve` (same result up to rounding; slower for large d under vmap). `pure=True` takes
    the pure route on CPU whatever `lapack_is_safe` says.
    """
    return spd_factor_solve(spd_factor(matrix, pure), rhs, pure)


def spd_factor(matrix: jax.Array, pure: bool = False) -> jax.Array:
    """Lower Cholesky factor `(d, d)` of a symmetric positive-definite matrix, for `spd_factor_solve`
    (LAPACK where `lapack_is_safe`, unless `pure` on CPU; else `cholesky_lower`)."""
    if lapack_is_safe() and not (pure and jax.default_backend() == "cpu"):
        return _lapack_cholesky(matrix)
    return cholesky_lower(matrix)


def spd_factor_solve(lower: jax.Array, rhs: jax.Array, pure: bool = False) -> jax.Array:
    """`(L L^T)^-1 rhs` for a factor of `spd_factor` (taken with the same `pure`); rhs `(d,)` or `(d, m)`.
    Factorise once, solve many times: a matrix that stays fixed along a chain is factorised once."""
    if lapack_is_safe() and not (pure and jax.default_backend() == "cpu"):
        return _lapack_factor_solve(lower, rhs)
    return triangular_solve(lower, triangular_solve(lower, rhs), transpose=True)


def bartlett_factor(key: jax.Array, dof, dim: int, dtype) -> jax.Array:
    """Lower-triangular `A` with `A A^T ~ Wishart_dim(dof, I)`, for any integer `dof >= 0`.

    Bartlett: `A_ii = sqrt(chi2_{dof - i})`, `A_ij ~ N(0, 1)` below the diagonal. When `dof < dim`
    (singular Wishart) the columns `j >= dof` are zero, which is the law of `Z Z^T` for `Z` of shape
    `(dim, dof)`.
    """
    key_chi, key_normal = jax.random.split(key)
    index = jnp.arange(dim)
    diag_dof = dof - index
    valid = diag_dof > 0
    gamma = jax.random.gamma(key_chi, jnp.where(valid, diag_dof, 2.0).astype(dtype) / 2, dtype=dtype)
    diag = jnp.where(valid, jnp.sqrt(2.0 * gamma), 0.0)
    below = jax.random.normal(key_normal, (dim, dim), dtype)
    below_mask = (index[:, None] > index[None, :]) & (index[None, :] < dof)
    return jnp.where(below_mask, below, 0.0) + jnp.diag(diag)


def pivoted_root(matrix: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Square root `F` (`F F^T = matrix`) of a positive semi-definite matrix, exact when it is singular.

    Diagonally pivoted outer-product Cholesky (the rank-revealing form of LAPACK's pstrf): each step
    takes the largest remaining diagonal; once it falls below `sqrt(eps) * max(diag)` the remaining
    directions count as absent, so the factor has the matrix's rank and `log det = -inf`. The threshold
    sits far above the rounding that accumulates when scatters are merged over many generations and far
    below the smallest eigenvalue of a well-conditioned pool; it is meant for pools that may be exactly
    singular (a Gaussian fitted on at most d points and all data drawn from it), not for matrices that
    are merely ill-conditioned.

    Args:
      matrix: `(d, d)` symmetric positive semi-definite.

    Returns:
      root: `(d, d)`, a column-permuted lower-triangular factor.
      log_det: `()`, the log-determinant, `-inf` if the matrix is rank deficient.
    """
    d = matrix.shape[-1]
    tol = jnp.sqrt(jnp.finfo(matrix.dtype).eps) * jnp.max(jnp.diagonal(matrix))
    index = jnp.arange(d)

    def column(k, state):
        residual, root, used, log_det = state
        diag = jnp.where(used, -jnp.inf, jnp.diagonal(residual))
        pivot_index = jnp.argmax(diag)
        pivot = diag[pivot_index]
        keep = pivot > tol
        col = residual @ (index == pivot_index).astype(matrix.dtype)
        col = jnp.where(keep & ~used, col / jnp.sqrt(jnp.where(keep, pivot, 1.0)), 0.0)
        residual = residual - jnp.outer(col, col)
        root = root + jnp.outer(col, (index == k).astype(matrix.dtype))
        log_det = log_det + jnp.where(keep, jnp.log(jnp.where(keep, pivot, 1.0)), -jnp.inf)
        return residual, root, used | (index == pivot_index), log_det

    init = (matrix, jnp.zeros_like(matrix), jnp.zeros((d,), bool), jnp.zeros((), matrix.dtype))
    _, root, _, log_det = jax.lax.fori_loop(0, d, column, init)
    return root, log_det


def nuclear_norm(matrix: jax.Array, iterations: int = 50) -> jax.Array:
    """Sum of the singular values of a square `(d, d)` matrix, by Newton-Schulz polar iteration.

    Matrix products only: LAPACK's SVD and eigensolvers hang inside scans run on several CPU devices
    (JAX 0.10.2), and this path also batches and shards like any array code. With `U_0 = B / ||B||_F`,
    `U <- U (3 I - U^T U) / 2` maps every singular value s in (0, 1] towards 1 (growing by 3/2 per step
    while small, then quadratically) and keeps s = 0 at 0, so `tr(U^T B) -> sum_i s_i`. After 50 steps
    singular values above 1e-7 ||B||_F have converged; a smaller one contributes between 0 and itself.
    """
    d = matrix.shape[-1]
    scale = jnp.maximum(jnp.sqrt(jnp.sum(matrix**2)), jnp.finfo(matrix.dtype).tiny)
    identity = jnp.eye(d, dtype=matrix.dtype)

    def step(_, u):
        return 0.5 * u @ (3.0 * identity - u.T @ u)

    polar = jax.lax.fori_loop(0, iterations, step, matrix / scale)
    return jnp.sum(polar * matrix)


_POLAR_FLOOR = 1e-2  # scaled steps are chosen for an interval [max(l, 1e-2), 1]: the map stays positive
# up to 1 + 5e-3, far above rounding, and small singular values still grow by about 2.6 per step


def polar_schedule(lower: float) -> tuple[float, ...]:
    """Static step factors `alpha_k` of the scaled Newton-Schulz polar iteration (Chen and Chow 2014).

    Step k maps each singular value s of the iterate to `f_k(s) = alpha_k s (3 - alpha_k^2 s^2) / 2`,
    with `alpha_k^2 = 3 / (1 + l + l^2)` for the current lower end l (floored at 1e-2) of the interval
    `[l, 1]` that holds the singular values: `[l, 1]` goes to `[f_k(l), 1]` (equioscillation), so l grows
    by about 2.6 per step while small, then quadratically. The schedule ends once every singular value
    that started in `[lower, 1]` is within 1e-10 of 1 (16 steps for `lower = 1e-5`).
    """
    alphas, low = [], float(lower)
    while 1.0 - low > 1e-10 and len(alphas) < 64:
        clipped = min(max(low, _POLAR_FLOOR), 1.0)
        alpha = math.sqrt(3.0 / (1.0 + clipped + clipped * clipped))
        low = min(0.5 * alpha * low * (3.0 - alpha**2 * low**2), 0.5 * alpha * (3.0 - alpha**2))
        alphas.append(alpha)
    return tuple(alphas)


def sum_singular_values(matrix: jax.Array, *, lower: float = 1e-5) -> jax.Array:
    """Sum of the singular values (nuclear norm) of an `(m, k)` matrix, by matrix products only.

    Pure array code (LAPACK's SVD inside scans on several CPU devices hangs). On the `(max, min)`
    orientation, a thin matrix (m >= 2k) is first reduced to the `(k, k)` factor of its Householder QR
    (same singular values, backward stable), so it costs `O(m k^2)` once and `O(k^3)` per step. With
    `G = B^T B` and `c^2 = 1.001 min(||G||_F, ||G||_inf) >= s_max^2`, the scaled Newton-Schulz iteration
    `X <- alpha_k X (3 I - alpha_k^2 X^T X) / 2` from `X_0 = B / c` (`polar_schedule(lower)`) maps every
    singular value s >= lower * c to 1 within rounding and keeps s = 0 at 0, so `tr(X^T B) = sum_i s_i`.
    A smaller singular value contributes between 0 and itself: the sum is short by at most
    `6e-7 c` per such value (`lower = 1e-5`). `(2, 2)` matrices use `sqrt(||B||_F^2 + 2 |det B|)`,
    a single column its norm (exact).

    Args:
      matrix: `(m, k)`.
      lower: singular values above `lower * c` converge (fewer steps for a larger `lower`).

    Returns:
      `()`, the sum of the singular values.
    """
    matrix = jnp.asarray(matrix)
    if matrix.shape[0] < matrix.shape[1]:
        matrix = matrix.T
    m, k = matrix.shape
    if k == 1:
        return robust_norm(matrix[:, 0])
    if m >= 2 * k:  # a thin matrix: the same singular values as the (k, k) factor of its QR (k reflections)
        matrix, _ = qr_root(matrix)
        m = k
    if m == k == 2:
        big = jnp.max(jnp.abs(matrix))
        unit = matrix / jnp.where(big > 0, big, 1.0)
        det = unit[0, 0] * unit[1, 1] - unit[0, 1] * unit[1, 0]
        return big * jnp.sqrt(jnp.sum(unit**2) + 2.0 * jnp.abs(det))
    gram = matrix.T @ matrix
    bound = jnp.minimum(jnp.sqrt(jnp.sum(gram**2)), jnp.max(jnp.sum(jnp.abs(gram), axis=1)))
    scale_sq = jnp.where(bound > 0, 1.001 * bound, 1.0)
    identity = jnp.eye(k, dtype=matrix.dtype)
    alphas = polar_schedule(lower)
    first = alphas[0]  # the first step reuses the Gram matrix
    polar = (0.5 * first) * (matrix / jnp.sqrt(scale_sq)) @ (3.0 * identity - (first**2 / scale_sq) * gram)
    for alpha in alphas[1:]:
        polar = (0.5 * alpha) * polar @ (3.0 * identity - alpha**2 * (polar.T @ polar))
    return jnp.sum(polar * matrix)


def symmetric_eigenvalues(matrix: jax.Array, sweeps: int = 10) -> jax.Array:
    """Ascending eigenvalues of a small symmetric `(d, d)` matrix by cyclic Jacobi rotations.

    Each sweep rotates every off-diagonal pair (p, q) to zero; convergence is quadratic, so a handful
    of sweeps reach working precision for d <= 10 (pure array code: LAPACK's eigh inside scans on
    several CPU devices hangs, as its SVD does). Cost O(sweeps d^4): meant for small d.
    """
    matrix = jnp.asarray(matrix)
    d = matrix.shape[-1]
    pairs = jnp.array([(p, q) for p in range(d) for q in range(p + 1, d)], jnp.int32).reshape(-1, 2)
    eye = jnp.eye(d, dtype=matrix.dtype)

    def rotate(a, pair):
        p, q = pair[0], pair[1]
        apq, app, aqq = a[p, q], a[p, p], a[q, q]
        nonzero = jnp.abs(apq) > 0
        theta = (aqq - app) / (2.0 * jnp.where(nonzero, apq, 1.0))
        t = jnp.sign(theta) / (jnp.abs(theta) + jnp.sqrt(theta * theta + 1.0))
        t = jnp.where(theta == 0, 1.0, t)
        t = jnp.where(nonzero, t, 0.0)
        c = 1.0 / jnp.sqrt(t * t + 1.0)
        s = t * c
        rotation = eye.at[p, p].set(c).at[q, q].set(c).at[p, q].set(s).at[q, p].set(-s)
        return rotation.T @ a @ rotation, None

    def sweep(_, a):
        return jax.lax.scan(rotate, a, pairs)[0]

    if d == 1:
        return matrix.reshape(1)
    diagonal = jnp.diagonal(jax.lax.fori_loop(0, sweeps, sweep, matrix))
    return jnp.sort(diagonal)


def robust_norm(vector: jax.Array) -> jax.Array:
    """Euclidean norm of a vector `(n,)`, free of underflow and overflow (scaled by its largest entry)."""
    big = jnp.max(jnp.abs(vector))
    safe = jnp.where(big > 0, big, 1.0)
    return big * jnp.sqrt(jnp.sum((vector / safe) ** 2))


def qr_root(rows: jax.Array, *, pivot: bool = False, pure: bool = False) -> tuple[jax.Array, jax.Array]:
    """A square root of `rows^T rows` from the Householder QR of `rows`, without forming the product.

    For `rows` `(m, d)` (any m; fewer than d rows are padded with zeros), `rows P = Q R` gives
    `rows^T rows = F F^T` with `F = P R^T`, signs chosen so that `R`'s diagonal is non-negative: the
    Cholesky factor when `pivot` is False (unique, whichever way it is computed), a row-permuted lower
    triangle otherwise (column pivoting on the largest remaining norm makes the factor rank revealing:
    `|R_kk|` decreases). Working on the rows keeps relative precision where forming `rows^T rows`
    would square the condition number (a Cholesky of the scatter fails in float32 once its condition
    passes about 1e7; this factor stays finite and accurate to about eps times the rows' condition).
    LAPACK's QR (geqp3 with pivoting, geqrf without; one matrix per call) where `lapack_is_safe`: a
    201 x 100 pivoted QR took 1.1 ms against 3.9 ms for the pure-array `fori_loop` of d reflections, which
    is used on several CPU devices (where LAPACK inside scans may hang) and with `pure=True`. Both pivot
    on the largest remaining column norm, so both are rank revealing.

    Returns:
      root: `(d, d)` with `root @ root.T == rows.T @ rows` up to rounding.
      log_diag: `(d,)`, `log |R_kk|` (`-inf` for an exactly absent direction), so that
        `log det(rows^T rows) = 2 sum(log_diag)`.
    """
    rows = jnp.asarray(rows)
    m, d = rows.shape
    if m < d:
        rows = jnp.pad(rows, ((0, d - m), (0, 0)))
        m = d
    big = jnp.max(jnp.abs(rows))
    scale = jnp.where(big > 0, big, 1.0)
    work = rows / scale
    if d == 1:
        norm = robust_norm(work[:, 0])
        return (norm * scale).reshape(1, 1), (jnp.log(norm) + jnp.log(scale)).reshape(1)
    if not pure and lapack_is_safe():
        if pivot:
            upper, perm = _lapack_pivoted_qr_r(work)
        else:
            upper, perm = _lapack_qr_r(work), jnp.arange(d)
        return _root_from_upper(upper[:d, :], perm, scale, rows.dtype)
    row_index = jnp.arange(m)
    col_index = jnp.arange(d)

    def reflect(k, state):
        work, perm = state
        if pivot:  # the pivot only needs an order: plain sums of squares (the rows are scaled to max 1)
            norms = jnp.sum(jnp.where(row_index[:, None] >= k, work, 0.0) ** 2, axis=0)
            j = jnp.argmax(jnp.where(col_index >= k, norms, -1.0))
            col_k, col_j = work[:, k], work[:, j]
            work = work.at[:, k].set(col_j).at[:, j].set(col_k)
            perm_k, perm_j = perm[k], perm[j]
            perm = perm.at[k].set(perm_j).at[j].set(perm_k)
        x = jnp.where(row_index >= k, work[:, k], 0.0)
        alpha = -jnp.where(work[k, k] >= 0, 1.0, -1.0) * robust_norm(x)  # R_kk, with no cancellation in v
        v = x - alpha * (row_index == k)
        v_norm = robust_norm(v)
        v = jnp.where(v_norm > 0, v / jnp.where(v_norm > 0, v_norm, 1.0), 0.0)
        reflected = work - 2.0 * jnp.outer(v, v @ work)
        work = jnp.where(col_index[None, :] > k, reflected, work)
        column = jnp.where(row_index == k, alpha, jnp.where(row_index > k, 0.0, work[:, k]))
        return work.at[:, k].set(column), perm

    work, perm = jax.lax.fori_loop(0, d, reflect, (work, jnp.arange(d)))
    return _root_from_upper(work[:d, :], perm, scale, rows.dtype)


def _root_from_upper(upper: jax.Array, perm: jax.Array, scale, dtype) -> tuple[jax.Array, jax.Array]:
    """`qr_root`'s result from the triangle `R` `(d, d)` of `rows[:, perm] = Q R` (rows divided by `scale`)."""
    d = upper.shape[-1]
    upper = jnp.triu(upper)
    upper = upper * jnp.where(jnp.diagonal(upper) < 0, -1.0, 1.0)[:, None]  # the root with a non-negative diagonal
    root = jnp.zeros((d, d), dtype).at[perm].set(upper.T) * scale
    return root, jnp.log(jnp.abs(jnp.diagonal(upper))) + jnp.log(scale)
