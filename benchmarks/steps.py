"""The functions that are timed: elementwise kernels, jit(grad) training steps, initialisation."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from benchmarks.cases import CnnSpec, MlpSpec

Array = jax.Array
Activation = Callable[[Array], Array]
Params = list[tuple[Array, Array]]

LANES = 1024
"""Elementwise inputs are (size // LANES, LANES): a last axis that packs to whole bytes."""


def elementwise_shape(size: int) -> tuple[int, int]:
    if size < LANES:
        return (1, size)
    return (size // LANES, LANES)


# --------------------------------------------------------------------------- elementwise
def copy_kernel(x: Array, one: Array) -> Array:
    """The roofline kernel: reads and writes every element once; ``one`` is traced so XLA
    cannot simplify ``x * one`` away."""
    return x * one


def forward(fn: Activation) -> Callable[[Array], Array]:
    return fn


def forward_backward(fn: Activation) -> Callable[[Array, Array], tuple[Array, Array]]:
    """The lone fwd+bwd kernel: ``y = f(x)`` and ``dx = vjp(g)``, both returned."""

    def step(x: Array, g: Array) -> tuple[Array, Array]:
        y, vjp = jax.vjp(fn, x)
        (dx,) = vjp(g)
        return y, dx

    return step


def bytes_moved(mode: str, size: int, itemsize: int, width: int = 1) -> int:
    """Compulsory traffic: forward reads x, writes y; fwd+bwd reads x, g, writes y, dx (y and g
    are ``width`` times x's size: CReLU's 2)."""
    arrays = {"forward": 1 + width, "fwd+bwd": 2 + 2 * width, "copy": 2}[mode]
    return arrays * size * itemsize


# --------------------------------------------------------------------------- models
def mlp_init(
    key: Array, spec: MlpSpec, dtype: Any, d_in: int | None = None, width: int = 1
) -> Params:
    """He-initialised layers; those after an activation read ``width`` times its features."""
    fan_ins = [d_in or spec.width] + [width * spec.width] * (spec.depth - 1)
    params: Params = []
    for k, m in zip(jax.random.split(key, spec.depth), fan_ins, strict=True):
        n = spec.width
        w = jax.random.normal(k, (m, n), jnp.float32) * (2.0 / m) ** 0.5
        params.append((w.astype(dtype), jnp.zeros((n,), dtype)))
    return params


def mlp_loss(act: Activation) -> Callable[[Params, Array], Array]:
    """Mean squared output of a depth-L MLP with ``act`` after every hidden layer."""

    def loss(params: Params, x: Array) -> Array:
        h = x
        for w, b in params[:-1]:
            h = act(h @ w + b)
        w, b = params[-1]
        out = h @ w + b
        return jnp.mean(jnp.square(out.astype(jnp.float32)))

    return loss


def mlp_batch(key: Array, spec: MlpSpec, dtype: Any) -> Array:
    return jax.random.normal(key, (spec.batch, spec.width), dtype)


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


def cnn_loss(act: Activation) -> Callable[[Params, Array], Array]:
    """3x3 SAME convolutions (NHWC, HWIO) with ``act``, global mean pool, dense head."""

    def loss(params: Params, x: Array) -> Array:
        h = x
        for w, b in params[:-1]:
            h = lax.conv_general_dilated(
                h, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
            )
            h = act(h + b)
        w, b = params[-1]
        out = jnp.mean(h, axis=(1, 2)) @ w + b
        return jnp.mean(jnp.square(out.astype(jnp.float32)))

    return loss


def cnn_batch(key: Array, spec: CnnSpec, dtype: Any) -> Array:
    return jax.random.normal(key, (spec.batch, spec.image, spec.image, 3), dtype)


def train_step(loss: Callable[[Params, Array], Array]) -> Callable[[Params, Array], Params]:
    """``jax.jit(jax.grad(loss))``: the step whose time and compiled memory are compared."""
    return jax.jit(jax.grad(loss))


# --------------------------------------------------------------------------- initialisers
def init_model(
    initializer: Callable[..., Array], shapes: Sequence[tuple[int, ...]], dtype: Any
) -> Callable[[Array], list[Array]]:
    """Initialises every kernel of a model from one key (jitted by the caller)."""

    def init(key: Array) -> list[Array]:
        keys = jax.random.split(key, len(shapes))
        return [initializer(k, s, dtype) for k, s in zip(keys, shapes, strict=True)]

    return init


def make_initializer(namespace: Any, name: str) -> Callable[..., Array]:
    """``namespace.<name>()`` with jax's signature; variance_scaling as He (2, fan_in)."""
    factory = getattr(namespace, name)
    if name == "variance_scaling":
        out: Callable[..., Array] = factory(2.0, "fan_in", "truncated_normal")
        return out
    made: Callable[..., Array] = factory()
    return made
