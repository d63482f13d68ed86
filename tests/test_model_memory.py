"""Compiled memory of models the zoo's authors did not write: equinox's own ``eqx.nn.MLP`` and a
PReLU MLP whose slope is learned, each step measured beside jax.nn's in the same process.

``eqx.nn.MLP`` vmaps its activation over every scalar of a layer, so rectax's rule is traced on
a 0-d array and its 1-bit mask is packed per scalar, into one ``uint8`` word, then batched by
the vmaps: 8 bits per element instead of 1 (``jax.custom_batching.custom_vmap`` cannot hand the
rule the batched array here, because a ``custom_vmap`` function has no reverse mode). A byte
per element is still less than what jax.nn's rule keeps in these steps, so the step must cost
no more than jax.nn's.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rectax as rx

PAIRS = {
    "relu": (rx.relu, jax.nn.relu),
    "leaky_relu": (rx.leaky_relu, jax.nn.leaky_relu),
}


def eqx_mlp_temp(act, batch: int, in_size: int, width: int, depth: int) -> int:
    """Compiled temp bytes of ``jit(grad)`` of a vmapped ``eqx.nn.MLP`` (XLA:CPU)."""
    model = eqx.nn.MLP(in_size, 10, width, depth, activation=act, key=jax.random.key(0))
    params, static = eqx.partition(model, eqx.is_array)

    def loss(p, x):
        return jnp.mean(jnp.square(jax.vmap(eqx.combine(p, static))(x)))

    shapes = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), params)
    x = jax.ShapeDtypeStruct((batch, in_size), jnp.float32)
    compiled = jax.jit(jax.grad(loss)).lower(shapes, x).compile()
    return compiled.memory_analysis().temp_size_in_bytes


@pytest.mark.parametrize("name", PAIRS)
@pytest.mark.parametrize(
    ("batch", "in_size", "width", "depth"),
    [(2048, 64, 256, 2), (8192, 20, 20, 4), (8192, 5, 5, 3)],
)
def test_equinox_mlp_costs_no_more_than_jax_nn(name, batch, in_size, width, depth):
    """Measured (XLA:CPU, batch 8192, 64 -> 256 x 2 -> 10): relu 28.0 MiB vs jax.nn 32.3 MiB."""
    ours, theirs = PAIRS[name]
    got = eqx_mlp_temp(ours, batch, in_size, width, depth)
    ref = eqx_mlp_temp(theirs, batch, in_size, width, depth)
    assert got <= ref, f"rectax {got} bytes, jax.nn {ref} bytes"


def test_equinox_mlp_gradient_equals_jax_nn():
    """Per-scalar packing under two vmaps changes no value."""
    kx = jax.random.key(1)
    x = jax.random.normal(kx, (64, 8), jnp.float32)

    def grads(act):
        model = eqx.nn.MLP(8, 3, 20, 2, activation=act, key=jax.random.key(0))
        params, static = eqx.partition(model, eqx.is_array)

        def loss(p):
            return jnp.mean(jnp.square(jax.vmap(eqx.combine(p, static))(x)))

        return jax.tree.leaves(jax.jit(jax.grad(loss))(params))

    for got, ref in zip(grads(rx.relu), grads(jax.nn.relu), strict=True):
        np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-7)


def residual_leaves(act, x, slope):
    """The arrays ``jax.vjp`` keeps for the backward pass of ``act(x, slope)``."""
    _, vjp = jax.vjp(act, x, slope)
    return jax.tree.leaves(vjp)


def test_learned_prelu_slope_keeps_only_the_input():
    """A differentiated slope needs ``min(x, 0)``, so ``x`` is kept; the mask is read off it
    rather than kept again as packed bits (jax.nn.leaky_relu keeps ``x`` and a bool mask)."""
    x = jax.random.normal(jax.random.key(2), (64, 512), jnp.float32)
    slope = jnp.float32(0.25)
    ours = residual_leaves(rx.prelu, x, slope)
    theirs = residual_leaves(jax.nn.leaky_relu, x, slope)
    assert [leaf.dtype for leaf in ours if leaf.size > 1] == [jnp.float32]
    assert sum(leaf.nbytes for leaf in ours) <= sum(leaf.nbytes for leaf in theirs)
    # with the slope fixed, the packed mask alone
    _, vjp = jax.vjp(lambda x: rx.prelu(x, slope), x)
    assert [leaf.dtype for leaf in jax.tree.leaves(vjp) if leaf.size > 1] == [jnp.uint32]


def prelu_mlp_temp(
    act, batch: int = 4096, width: int = 512, depth: int = 2, dtype=jnp.float32
) -> int:
    def loss(p, x):
        for w, a in zip(*p, strict=True):
            x = act(x @ w, a)
        return jnp.mean(jnp.square(x.astype(jnp.float32)))

    ws = [jax.ShapeDtypeStruct((width, width), dtype)] * depth
    slopes = [jax.ShapeDtypeStruct((), dtype)] * depth
    x = jax.ShapeDtypeStruct((batch, width), dtype)
    compiled = jax.jit(jax.grad(loss)).lower((ws, slopes), x).compile()
    return compiled.memory_analysis().temp_size_in_bytes


def test_learned_prelu_mlp_costs_no_more_than_jax_nn():
    """The slope's derivative is ``x * where(x >= 0, 0, t_slope)`` inside a select (the forward
    is ``x * where(x >= 0, 1, slope)`` where x < 0), so its transpose sums ``where(x < 0, g * x)``
    in one fusion; ``where(x >= 0, x, slope * x)`` transposed to a select of ``g`` shared with
    x's cotangent, and XLA:CPU kept one more (batch, width) buffer than jax.nn's step (24 vs 16
    MiB at 1 layer, 136 vs 128 at 8)."""
    assert prelu_mlp_temp(rx.prelu) <= prelu_mlp_temp(jax.nn.leaky_relu)
    bf16 = prelu_mlp_temp(rx.prelu, batch=1024, dtype=jnp.bfloat16)
    assert bf16 <= prelu_mlp_temp(jax.nn.leaky_relu, batch=1024, dtype=jnp.bfloat16)
