"""Key derivation: every random draw depends only on (seed, chain id, generation, purpose).

A chain never sees a key that was split from a batch-level key, so its draws are the same whether it
runs alone, inside a batch of any size, in any chunk, or on any number of devices.
"""

from __future__ import annotations

import enum

import jax


class Purpose(enum.IntEnum):
    """What a key is used for inside one generation of one chain."""

    SYNTHETIC = 0  # points (or statistics) drawn from the previous model
    REAL = 1  # points (or statistics) drawn from the real distribution
    REAL_SELECT = 2  # which points of the generation-1 real sample are reused
    SUBSAMPLE = 3  # which pool points a fixed-budget fit uses
    FIT = 4  # randomness inside an estimator's fit (e.g. neural initialisation)
    VERIFY = 5  # randomness of a verifier
    TRUTH = 6  # a chain's drawn real distribution (design matrix, true weights), at generation 0
    EVALUATE = 7  # randomness of a metric (a downstream model's training data, a held-out test set)
    MIX = 8  # which points of a mixture-drawn batch are real (real_draw="mixture")


_CHAIN_STREAM = 0
_SHARED_STREAM = 1


def root_key(seed: int) -> jax.Array:
    """Typed root key of a run."""
    return jax.random.key(seed)


def chain_key(key: jax.Array, chain_id) -> jax.Array:
    """Key of chain `chain_id` (a global id, the same on one device or many).

    Ids are folded in as 32-bit words: ids 0..2^32 - 1 give distinct keys (an int32 id of 2^31 or more,
    wrapped negative, gives the key of its uint32 value), so a run has at most 2^32 chains."""
    return jax.random.fold_in(jax.random.fold_in(key, _CHAIN_STREAM), chain_id)


def shared_key(key: jax.Array) -> jax.Array:
    """Key of the stream that every chain shares (used by `shared_real_data`)."""
    return jax.random.fold_in(key, _SHARED_STREAM)


def generation_key(key: jax.Array, generation, purpose: Purpose) -> jax.Array:
    """Key of one (generation, purpose) pair inside a chain (or the shared stream)."""
    return jax.random.fold_in(jax.random.fold_in(key, generation), int(purpose))
