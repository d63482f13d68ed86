"""The plain-JAX models that memory and timing measurements share (no Flax; the Flax models
people train are the zoo, :mod:`benchmarks.zoo`).

Each takes its activation as an argument, so a rectax and a jax.nn variant differ only there:

* :func:`mlp_loss`: dense layers, the activation after each, mean squared output;
* :func:`cnn_loss`: 3x3 SAME convolutions with the activation, global mean pool, dense head;
* :func:`transformer_loss`: pre-LayerNorm blocks, causal attention, a 4x FFN with the activation;
* :func:`ffn_stack`: residual gated-FFN blocks ``x + unit(x @ W_gate, x @ W_up) @ W_down`` under a
  rematerialisation setting;
* :func:`forward_backward`: the activation alone, forward and backward in one function.

Measure them with :func:`benchmarks.memory.compiled` (``jax.grad(loss)`` and the abstract
arguments of :func:`mlp_shapes` or :func:`ffn_stack`) or time them with
:func:`benchmarks.timing.interleave`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

import rectax as rx

Array = jax.Array
Act = Callable[[Array], Array]
Unit = Callable[[Array, Array], Array]
Params = list[Any]
"""Layers: ``(w, b)`` pairs or bare kernels ``w``."""

REMATS = ("none", "remat", "remat-bits")


@dataclass(frozen=True)
class MlpSpec:
    depth: int
    width: int
    batch: int


@dataclass(frozen=True)
class CnnSpec:
    batch: int
    image: int
    channels: tuple[int, ...]
    classes: int = 10


def policy(setting: str) -> Any:
    """The checkpoint policy of a remat setting: ``save_only_these_names(rectax.RESIDUAL_NAME)``
    for ``remat-bits``, None (save nothing) otherwise."""
    if setting == "remat-bits":
        return jax.checkpoint_policies.save_only_these_names(rx.RESIDUAL_NAME)
    return None


def remat(block: Callable[..., Array], setting: str) -> Callable[..., Array]:
    """``block`` as is (``none``), or under ``jax.checkpoint`` with the setting's policy."""
    return block if setting == "none" else jax.checkpoint(block, policy=policy(setting))


def forward_backward(fn: Act) -> Callable[[Array, Array], tuple[Array, Array]]:
    """The lone fwd+bwd kernel: ``y = f(x)`` and ``dx = vjp(g)``, both returned."""

    def step(x: Array, g: Array) -> tuple[Array, Array]:
        y, vjp = jax.vjp(fn, x)
        return y, vjp(g)[0]

    return step


def _mean_square(y: Array) -> Array:
    return jnp.mean(jnp.square(y.astype(jnp.float32)))


# --------------------------------------------------------------------------- MLP
def _dense(x: Array, layer: Any) -> Array:
    return x @ layer[0] + layer[1] if isinstance(layer, tuple) else x @ layer


def mlp_loss(act: Act, *, linear_head: bool = False) -> Callable[[Params, Array], Array]:
    """Mean squared output of dense layers with ``act`` after each (the last one linear with
    ``linear_head``), in float32."""

    def loss(params: Params, x: Array) -> Array:
        for layer in params[:-1]:
            x = act(_dense(x, layer))
        x = _dense(x, params[-1])
        return _mean_square(x if linear_head else act(x))

    return loss


def mlp_init(
    key: Array, spec: MlpSpec, dtype: Any, *, width: int = 1, bias: bool = True, gain: float = 2.0
) -> Params:
    """Normal kernels of variance ``gain / fan_in`` (He's for ``gain=2``), zero biases; the
    layers after an activation read ``width`` times its features (CReLU's 2)."""
    fan_ins = [spec.width] + [width * spec.width] * (spec.depth - 1)
    params: Params = []
    for k, m in zip(jax.random.split(key, spec.depth), fan_ins, strict=True):
        w = (jax.random.normal(k, (m, spec.width), jnp.float32) * (gain / m) ** 0.5).astype(dtype)
        params.append((w, jnp.zeros((spec.width,), dtype)) if bias else w)
    return params


def mlp_batch(key: Array, spec: MlpSpec, dtype: Any) -> Array:
    return jax.random.normal(key, (spec.batch, spec.width), dtype)


def mlp_shapes(spec: MlpSpec, dtype: Any, **init: Any) -> tuple[Params, Any]:
    """Abstract (params, x) of :func:`mlp_init` (keywords passed on) and :func:`mlp_batch`."""
    key = jax.random.key(0)
    return (
        jax.eval_shape(lambda k: mlp_init(k, spec, dtype, **init), key),
        jax.ShapeDtypeStruct((spec.batch, spec.width), dtype),
    )


# --------------------------------------------------------------------------- CNN
def cnn_init(key: Array, spec: CnnSpec, dtype: Any, width: int = 1) -> Params:
    """He-initialised convs and a head; each reads ``width`` times the previous channels."""
    chans = [3, *(width * c for c in spec.channels)]
    keys = jax.random.split(key, len(spec.channels) + 1)
    params: Params = []
    for k, c_in, c_out in zip(keys[:-1], chans[:-1], spec.channels, strict=True):
        w = jax.random.normal(k, (3, 3, c_in, c_out), jnp.float32) * (2.0 / (9 * c_in)) ** 0.5
        params.append((w.astype(dtype), jnp.zeros((c_out,), dtype)))
    w = jax.random.normal(keys[-1], (chans[-1], spec.classes), jnp.float32) / chans[-1] ** 0.5
    params.append((w.astype(dtype), jnp.zeros((spec.classes,), dtype)))
    return params


def cnn_loss(act: Act) -> Callable[[Params, Array], Array]:
    """3x3 SAME convolutions (NHWC, HWIO) with ``act``, global mean pool, dense head."""

    def loss(params: Params, x: Array) -> Array:
        for w, b in params[:-1]:
            x = lax.conv_general_dilated(
                x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
            )
            x = act(x + b)
        return _mean_square(_dense(jnp.mean(x, axis=(1, 2)), params[-1]))

    return loss


def cnn_batch(key: Array, spec: CnnSpec, dtype: Any) -> Array:
    return jax.random.normal(key, (spec.batch, spec.image, spec.image, 3), dtype)


# --------------------------------------------------------------------------- transformer
def layer_norm(x: Array) -> Array:
    mean = jnp.mean(x, -1, keepdims=True)
    var = jnp.mean(jnp.square(x - mean), -1, keepdims=True)
    return (x - mean) * lax.rsqrt(var + 1e-5)


def transformer_loss(act: Act, heads: int) -> Callable[[list[dict[str, Array]], Array], Array]:
    """Pre-LayerNorm blocks: causal multi-head attention, then ``act`` in a 4x-wide FFN."""

    def block(p: dict[str, Array], x: Array) -> Array:
        b, t, d = x.shape
        qkv = (layer_norm(x) @ p["qkv"]).reshape(b, t, 3, heads, d // heads)
        q, k, v = (qkv[:, :, i] for i in range(3))
        logits = jnp.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(d // heads)
        causal = jnp.tril(jnp.ones((t, t), bool))
        att = jax.nn.softmax(jnp.where(causal, logits, -1e9), axis=-1)
        x = x + jnp.einsum("bhqk,bkhd->bqhd", att, v).reshape(b, t, d) @ p["out"]
        return x + act(layer_norm(x) @ p["up"]) @ p["down"]

    def loss(params: list[dict[str, Array]], x: Array) -> Array:
        for p in params:
            x = block(p, x)
        return jnp.mean(jnp.square(x))

    return loss


def transformer_init(
    key: Array, layers: int, batch: int, seq: int, width: int
) -> tuple[list[dict[str, Array]], Array]:
    """1/sqrt(fan_in) kernels of :func:`transformer_loss`, and a standard-normal input."""
    shapes = {"qkv": (width, 3 * width), "out": (width, width)}
    shapes |= {"up": (width, 4 * width), "down": (4 * width, width)}
    params = []
    for k in jax.random.split(key, layers):
        ks = jax.random.split(k, len(shapes))
        params.append(
            {
                n: jax.random.normal(kk, s) / math.sqrt(s[0])
                for kk, (n, s) in zip(ks, shapes.items(), strict=True)
            }
        )
    return params, jax.random.normal(jax.random.fold_in(key, 1), (batch, seq, width))


# --------------------------------------------------------------------------- gated FFN stack
def ffn_stack(
    unit: Unit, setting: str, dtype: Any, rows: int, model: int, hidden: int, layers: int
) -> tuple[Callable[..., Any], list[Any], Any]:
    """``grad(loss)`` of ``layers`` residual gated-FFN blocks under remat ``setting``, and its
    abstract arguments (weights, x)."""

    def block(x: Array, w: tuple[Array, Array, Array]) -> Array:
        return x + unit(x @ w[0], x @ w[1]) @ w[2]

    block = remat(block, setting)

    def loss(weights: Sequence[tuple[Array, Array, Array]], x: Array) -> Array:
        for w in weights:
            x = block(x, w)
        return _mean_square(x)

    spec = functools.partial(jax.ShapeDtypeStruct, dtype=dtype)
    weights = [(spec((model, hidden)), spec((model, hidden)), spec((hidden, model)))] * layers
    return jax.grad(loss), weights, spec((rows, model))
