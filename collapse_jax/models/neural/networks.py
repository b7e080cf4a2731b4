"""The flax NNX modules of the neural setting, and `network`, which splits a module family once so that only
its parameter `State` pytree travels through the chain."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx


class Network(NamedTuple):
    """A network family: `graphdef`, `init(key) -> state`, `apply(state, inputs) -> outputs`."""

    graphdef: Any
    init: Callable
    apply: Callable


def network(make_module: Callable[[nnx.Rngs], nnx.Module]) -> Network:
    """Split a module family once (abstractly, nothing allocated): only states travel through jit."""
    graphdef, _ = nnx.split(nnx.eval_shape(lambda: make_module(nnx.Rngs(0))))

    def init(key):
        return nnx.split(make_module(nnx.Rngs(params=key)))[1]

    def apply(state, inputs):
        return nnx.merge(graphdef, state)(inputs)

    return Network(graphdef, init, apply)


class MLP(nnx.Module):
    """`depth` hidden layers of `width` units (tanh or gelu); depth 0 is a linear map without bias."""

    def __init__(self, inputs: int, width: int, depth: int, outputs: int, *, rngs: nnx.Rngs, activation: str = "tanh"):
        sizes = [inputs] + [width] * depth + [outputs]
        self.layers = nnx.List([nnx.Linear(a, b, use_bias=depth > 0, rngs=rngs) for a, b in zip(sizes, sizes[1:])])
        self.activation = activation

    def __call__(self, x):
        act = jnp.tanh if self.activation == "tanh" else jax.nn.gelu
        for layer in self.layers[:-1]:
            x = act(layer(x))
        return self.layers[-1](x)


class Block(nnx.Module):
    """Pre-norm transformer block: causal self-attention and a 4x GELU MLP, both residual."""

    def __init__(self, width: int, heads: int, *, rngs: nnx.Rngs):
        self.norm_attention = nnx.LayerNorm(width, rngs=rngs)
        self.attention = nnx.MultiHeadAttention(
            num_heads=heads, in_features=width, qkv_features=width, decode=False, keep_rngs=False, rngs=rngs
        )
        self.norm_mlp = nnx.LayerNorm(width, rngs=rngs)
        self.up = nnx.Linear(width, 4 * width, rngs=rngs)
        self.down = nnx.Linear(4 * width, width, rngs=rngs)

    def __call__(self, x, mask):
        x = x + self.attention(self.norm_attention(x), mask=mask)
        return x + self.down(jax.nn.gelu(self.up(self.norm_mlp(x))))


class CausalTransformer(nnx.Module):
    """Token and position embeddings, `depth` blocks, a final norm and an output head.

    Input `(b, L)` int tokens (token `vocab` is the start symbol); output `(b, L, vocab)` logits of the
    next token at each position.
    """

    def __init__(self, vocab: int, length: int, width: int, depth: int, heads: int, *, rngs: nnx.Rngs):
        self.tokens = nnx.Embed(vocab + 1, width, rngs=rngs)
        self.positions = nnx.Embed(length, width, rngs=rngs)
        self.blocks = nnx.List([Block(width, heads, rngs=rngs) for _ in range(depth)])
        self.norm = nnx.LayerNorm(width, rngs=rngs)
        self.head = nnx.Linear(width, vocab, rngs=rngs)

    def __call__(self, tokens):
        length = tokens.shape[-1]
        x = self.tokens(tokens) + self.positions(jnp.arange(length))
        mask = nnx.make_causal_mask(tokens)
        for block in self.blocks:
            x = block(x, mask)
        return self.head(self.norm(x))
