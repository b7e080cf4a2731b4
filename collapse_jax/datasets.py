"""Toy datasets: exact samplers, the log-density of the law they sample, and its exact mean and variance.

The two-dimensional laws (`NAMES`) and, in any dimension d, `gaussian`: N(0, sigma^2 I_d), sigma the
`noise` (default 1; `make_dataset("gaussian", sigma, dim=d)`). `law_moments` gives each law's exact mean
and mean per-coordinate variance (closed forms, below).

Each law is a measure on a few points or curves convolved with isotropic Gaussian noise of standard
deviation `noise` (sigma), so its density at x is `E_t N(x; c(t), sigma^2 I)`, an average over the
curve parameter t:

  blobs       three equally weighted points, the vertices of an equilateral triangle centred at the
              origin with circumradius 4 (`BLOB_CENTRES`: (0, 4), (-2 sqrt 3, -2), (2 sqrt 3, -2));
              sigma is the blob standard deviation (default 1). Density: the Gaussian mixture, exact.
  circles     radius 1 or 0.5 (`CIRCLE_RADII`, sklearn's factor 0.5) with probability 1/2 each, angle
              uniform on [0, 2 pi); default sigma 0.1. Density: exact, through the angular average
              `exp(-(rho^2 + r^2) / 2 sigma^2) I0(rho r / sigma^2) / (2 pi sigma^2)` (I0 the modified
              Bessel function), summed over the two radii with weight 1/2.
  moons       with probability 1/2 the upper half circle (cos t, sin t), else the lower one
              (1 - cos t, 0.5 - sin t), t ~ U[0, pi]; default sigma 0.1.
  swiss_roll  `SWISS_ROLL_SCALE * (t cos t, t sin t)`, t ~ U[1.5 pi, 4.5 pi], scale 0.2 (so the roll
              lies within [-2.9, 2.9]^2, each coordinate with standard deviation about 1.4); the noise
              is added after scaling; default sigma 0.1.

Mean and variance (`law_moments`, exact): blobs mean 0, per-coordinate variance 8 + sigma^2 (the
centres lie at radius 4); circles mean 0, variance (1 + 1/4)/4 + sigma^2; moons mean (1/2, 1/4),
variance (21/16 - 1/pi)/2 + sigma^2; swiss roll mean s (E t cos t, E t sin t) and variance
(s^2 E t^2 - |mean|^2)/2 + sigma^2 for t ~ U[a, b], with E t cos t = [t sin t + cos t]_a^b / (b - a),
E t sin t = [sin t - t cos t]_a^b / (b - a), E t^2 = (b^3 - a^3) / (3 (b - a)).

Points choose their branch independently (Bernoulli 1/2), so a sample is i.i.d. from the law, unlike
sklearn's fixed half-and-half split. For moons and swiss_roll the average over t is a composite
Gauss-Legendre rule (`NODES_PER_PANEL` nodes per panel, panels no longer than sigma in arc length),
evaluated as a logsumexp so that far-away points keep a finite log-density. Against a float64
brute-force integral its log-density error is below 1e-4 (float32 rounding dominates) for sigma from
0.03 to 0.3, on the data and a few sigma away; the node count grows as 1/sigma (512 nodes for the moons
and about 2,100 for the swiss roll at sigma = 0.1). `log_density` evaluates at most 2^22
point-node pairs at once (`lax.map` over chunks of points).

Example:
  >>> dataset = make_dataset("moons", noise=0.1)
  >>> points = dataset.sample(key, 1000)            # (1000, 2)
  >>> log_p = dataset.log_density(points)            # (1000,)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from collapse_jax.options import DATASET_NAMES as NAMES  # re-exported
from collapse_jax.options import GAUSSIAN_DATASET

MAX_GAUSSIAN_DIM = 64

DEFAULT_NOISE = {"blobs": 1.0, "circles": 0.1, "moons": 0.1, "swiss_roll": 0.1, GAUSSIAN_DATASET: 1.0}
BLOB_CENTRES = np.array([[4.0 * math.cos(a), 4.0 * math.sin(a)] for a in np.deg2rad([90.0, 210.0, 330.0])])
CIRCLE_RADII = (1.0, 0.5)
SWISS_ROLL_SCALE = 0.2
SWISS_ROLL_RANGE = (1.5 * math.pi, 4.5 * math.pi)
NODES_PER_PANEL = 8
_CHUNK_ELEMENTS = 1 << 22  # points x nodes evaluated at once by `log_density` (bounds its memory)


class Dataset(NamedTuple):
    """A law on R^dim (dim 2 but for `gaussian`). sample(key, n) -> `(n, dim)` (n static);
    log_density(points `(m, dim)`) -> `(m,)`."""

    sample: Callable[..., jax.Array]
    log_density: Callable[..., jax.Array]
    name: str
    noise: float
    dim: int = 2


def blobs_mixture(noise: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The blobs law as a Gaussian mixture: weights `(3,)`, means `(3, 2)`, covariances `(3, 2, 2)`."""
    return np.full(3, 1.0 / 3.0), BLOB_CENTRES.copy(), np.broadcast_to(noise**2 * np.eye(2), (3, 2, 2)).copy()


def _gauss_legendre(low: float, high: float, panels: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights `(panels * NODES_PER_PANEL,)` of a composite Gauss-Legendre rule on [low, high]."""
    x, w = np.polynomial.legendre.leggauss(NODES_PER_PANEL)
    edges = np.linspace(low, high, panels + 1)
    half = 0.5 * np.diff(edges)[:, None]
    centre = 0.5 * (edges[1:] + edges[:-1])[:, None]
    return (centre + half * x).ravel(), (half * w).ravel()


def _curve_nodes(name: str, noise: float) -> tuple[np.ndarray, np.ndarray]:
    """Curve points `(K, 2)` and log-masses `(K,)` (quadrature weight times the law of t and branch)."""
    if name == "moons":
        panels = math.ceil(math.pi / noise)  # speed 1: arc length pi per half circle
        t, w = _gauss_legendre(0.0, math.pi, panels)
        upper = np.stack([np.cos(t), np.sin(t)], axis=1)
        lower = np.stack([1.0 - np.cos(t), 0.5 - np.sin(t)], axis=1)
        mass = 0.5 * w / math.pi
        return np.concatenate([upper, lower]), np.log(np.concatenate([mass, mass]))
    low, high = SWISS_ROLL_RANGE
    speed = SWISS_ROLL_SCALE * math.sqrt(1.0 + high**2)  # largest |dc/dt|
    panels = math.ceil((high - low) * speed / noise)
    t, w = _gauss_legendre(low, high, panels)
    curve = SWISS_ROLL_SCALE * np.stack([t * np.cos(t), t * np.sin(t)], axis=1)
    return curve, np.log(w / (high - low))


def _mixture_log_density(points: jax.Array, centres: np.ndarray, log_mass: np.ndarray, noise: float) -> jax.Array:
    """`log sum_k exp(log_mass_k) N(x; centre_k, noise^2 I)` for points `(m, 2)`, in chunks of points."""
    dtype = points.dtype if jnp.issubdtype(points.dtype, jnp.floating) else jnp.float32
    points = points.astype(dtype)
    centres_j = jnp.asarray(centres, dtype)
    log_mass_j = jnp.asarray(log_mass, dtype)
    norm = math.log(2.0 * math.pi * noise**2)

    def one(x):
        sq = jnp.sum((x[None, :] - centres_j) ** 2, axis=-1)
        return jax.nn.logsumexp(log_mass_j - sq / (2.0 * noise**2)) - norm

    batch = max(1, _CHUNK_ELEMENTS // len(log_mass))
    if points.shape[0] <= batch:
        return jax.vmap(one)(points)
    return jax.lax.map(one, points, batch_size=batch)


def _circles_log_density(points: jax.Array, noise: float) -> jax.Array:
    dtype = points.dtype if jnp.issubdtype(points.dtype, jnp.floating) else jnp.float32
    rho = jnp.sqrt(jnp.sum(points.astype(dtype) ** 2, axis=-1))
    var = noise**2
    parts = [-((rho - r) ** 2) / (2.0 * var) + jnp.log(jax.scipy.special.i0e(rho * r / var)) for r in CIRCLE_RADII]
    return jax.nn.logsumexp(jnp.stack(parts, axis=-1), axis=-1) - math.log(2.0) - math.log(2.0 * math.pi * var)


def _sampler(name: str, noise: float) -> Callable[..., jax.Array]:
    centres = BLOB_CENTRES

    def sample(key, n: int) -> jax.Array:
        key_branch, key_t, key_noise = jax.random.split(key, 3)
        eps = noise * jax.random.normal(key_noise, (n, 2))
        if name == "blobs":
            return jnp.asarray(centres, eps.dtype)[jax.random.randint(key_branch, (n,), 0, 3)] + eps
        branch = jax.random.bernoulli(key_branch, 0.5, (n,))
        if name == "circles":
            angle = jax.random.uniform(key_t, (n,), maxval=2.0 * math.pi)
            radius = jnp.where(branch, CIRCLE_RADII[1], CIRCLE_RADII[0])
            return radius[:, None] * jnp.stack([jnp.cos(angle), jnp.sin(angle)], axis=1) + eps
        if name == "moons":
            t = jax.random.uniform(key_t, (n,), maxval=math.pi)
            upper = jnp.stack([jnp.cos(t), jnp.sin(t)], axis=1)
            lower = jnp.stack([1.0 - jnp.cos(t), 0.5 - jnp.sin(t)], axis=1)
            return jnp.where(branch[:, None], lower, upper) + eps
        low, high = SWISS_ROLL_RANGE
        t = jax.random.uniform(key_t, (n,), minval=low, maxval=high)
        return SWISS_ROLL_SCALE * jnp.stack([t * jnp.cos(t), t * jnp.sin(t)], axis=1) + eps

    return sample


def _checked(name: str, noise: float | None, dim: int) -> float:
    """The noise of dataset `name` (None: its default) after checking name, noise and dim."""
    if name not in NAMES and name != GAUSSIAN_DATASET:
        raise ValueError(f"dataset must be one of {', '.join((GAUSSIAN_DATASET,) + NAMES)}, got {name!r}")
    if name == GAUSSIAN_DATASET:
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or not 1 <= dim <= MAX_GAUSSIAN_DIM:
            raise ValueError(f"dim must be an integer in [1, {MAX_GAUSSIAN_DIM}] for the gaussian dataset, got {dim!r}")
    elif dim != 2:
        raise ValueError(f"dim must be 2 for the 2-D dataset {name}, got {dim!r}")
    noise = DEFAULT_NOISE[name] if noise is None else noise
    try:
        noise = float(noise)
    except (TypeError, ValueError):
        raise ValueError(f"noise must be a number > 0, got {noise!r}") from None
    if not (math.isfinite(noise) and noise > 0):
        raise ValueError(f"noise must be a finite number > 0, got {noise!r}")
    return noise


def _gaussian_dataset(noise: float, dim: int) -> Dataset:
    """N(0, noise^2 I_dim): exact sampler and log-density."""

    def sample(key, n: int) -> jax.Array:
        return noise * jax.random.normal(key, (n, dim))

    def log_density(points) -> jax.Array:
        points = jnp.asarray(points)
        dtype = points.dtype if jnp.issubdtype(points.dtype, jnp.floating) else jnp.float32
        sq = jnp.sum(points.astype(dtype) ** 2, axis=-1)
        return -sq / (2.0 * noise**2) - 0.5 * dim * math.log(2.0 * math.pi * noise**2)

    return Dataset(sample, log_density, GAUSSIAN_DATASET, noise, dim)


def law_moments(name: str, noise: float | None = None, dim: int = 2) -> tuple[np.ndarray, float]:
    """The exact mean `(dim,)` and mean per-coordinate variance tr Cov / dim of dataset `name`'s law
    (closed forms in the module docstring; float64 NumPy). Arguments as `make_dataset`.

    Example:
      >>> law_moments("gaussian", 2.0, dim=3)   # (array([0., 0., 0.]), 4.0)
    """
    noise = _checked(name, noise, dim)
    if name == GAUSSIAN_DATASET:
        return np.zeros(dim), noise**2
    if name == "blobs":
        mean = BLOB_CENTRES.mean(axis=0)
        spread = np.mean(np.sum((BLOB_CENTRES - mean) ** 2, axis=1))
    elif name == "circles":
        mean, spread = np.zeros(2), float(np.mean(np.square(CIRCLE_RADII)))
    elif name == "moons":
        mean, spread = np.array([0.5, 0.25]), 21.0 / 16.0 - 1.0 / math.pi
    else:
        a, b = SWISS_ROLL_RANGE
        cos_part = ((b * math.sin(b) + math.cos(b)) - (a * math.sin(a) + math.cos(a))) / (b - a)
        sin_part = ((math.sin(b) - b * math.cos(b)) - (math.sin(a) - a * math.cos(a))) / (b - a)
        mean = SWISS_ROLL_SCALE * np.array([cos_part, sin_part])
        spread = SWISS_ROLL_SCALE**2 * (b**3 - a**3) / (3.0 * (b - a)) - float(mean @ mean)
    return np.asarray(mean, float), float(spread) / 2.0 + noise**2


def make_dataset(name: str, noise: float | None = None, *, dim: int = 2) -> Dataset:
    """The dataset `name` (`gaussian` or one of `NAMES`) with noise standard deviation `noise` (None:
    `DEFAULT_NOISE`) in `dim` dimensions (any in [1, 64] for `gaussian`, 2 for the others).

    Raises:
      ValueError: an unknown `dataset` name, `noise` not a finite number > 0, or a `dim` the law lacks.
    """
    noise = _checked(name, noise, dim)
    if name == GAUSSIAN_DATASET:
        return _gaussian_dataset(noise, dim)

    if name == "blobs":
        weights, means, _ = blobs_mixture(noise)
        centres, log_mass = means, np.log(weights)
    elif name == "circles":
        centres = log_mass = None
    else:
        centres, log_mass = _curve_nodes(name, noise)

    def log_density(points) -> jax.Array:
        points = jnp.asarray(points)
        if name == "circles":
            return _circles_log_density(points, noise)
        return _mixture_log_density(points, centres, log_mass, noise)

    return Dataset(_sampler(name, noise), log_density, name, noise)


DATASETS = {name: make_dataset(name) for name in NAMES}
