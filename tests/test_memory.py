"""Compiled residual memory of jit(grad) through an 8-layer MLP (REFERENCE.md §3).

Only compiled numbers tell the truth, so this reads XLA's own ``memory_analysis()`` of the
compiled backward pass; nothing is executed. Piecewise-constant derivatives keep 1 bit per
element instead of an array of the input's dtype; smooth ones must not cost more than jax.nn.
"""

import functools

import jax
import jax.numpy as jnp
import pytest

import rectax as rx

BATCH, WIDTH, LAYERS = 2048, 1024, 8
KEY = jax.random.key(0)


def temp_bytes(act) -> int:
    def loss(weights, x):
        h = x
        for w in weights:
            h = act(h @ w)
        return jnp.mean(jnp.square(h))

    weights = [jax.ShapeDtypeStruct((WIDTH, WIDTH), jnp.float32)] * LAYERS
    x = jax.ShapeDtypeStruct((BATCH, WIDTH), jnp.float32)
    compiled = jax.jit(jax.grad(loss)).lower(weights, x).compile()
    return compiled.memory_analysis().temp_size_in_bytes


@functools.cache
def baseline(name: str) -> int:
    if name == "gelu_exact":
        return temp_bytes(lambda x: jax.nn.gelu(x, approximate=False))
    return temp_bytes(getattr(jax.nn, name))


PIECEWISE = {
    "relu": rx.relu,
    "leaky_relu": rx.leaky_relu,
    "necro_relu": rx.necro_relu,
    "relu6": rx.relu6,
    "hard_tanh": rx.hard_tanh,
    "prelu": lambda x: rx.prelu(x, 0.25),
    "rrelu_eval": rx.rrelu,
}


@pytest.mark.parametrize("name", PIECEWISE)
def test_piecewise_activations_keep_one_bit(name):
    """≤ 0.6 × jax.nn.relu (measured 0.5625: 1 f32 array per layer + 1 bit, instead of 2)."""
    ratio = temp_bytes(PIECEWISE[name]) / baseline("relu")
    assert ratio <= 0.6, f"{name}: {ratio:.4f} of jax.nn.relu's temp memory"


SMOOTH = {
    "elu": (rx.elu, "elu"),
    "selu": (rx.selu, "selu"),
    "celu": (rx.celu, "celu"),
    "gelu": (rx.gelu, "gelu"),
    "gelu_exact": (lambda x: rx.gelu(x, approximate=False), "gelu_exact"),
    "silu": (rx.silu, "silu"),
    "softplus": (rx.softplus, "softplus"),
    "squared_relu": (rx.squared_relu, "relu"),  # jax.nn has none
}


@pytest.mark.parametrize("name", SMOOTH)
def test_smooth_activations_cost_no_more_than_jax_nn(name):
    fn, counterpart = SMOOTH[name]
    ours, theirs = temp_bytes(fn), baseline(counterpart)
    assert ours <= theirs, f"{name}: {ours} bytes vs jax.nn.{counterpart} {theirs}"


@pytest.mark.parametrize("name", SMOOTH)
def test_smooth_activations_keep_one_array(name):
    """Saving only the input (derivative recomputed in the backward fusion): jax.nn.relu's cost."""
    ratio = temp_bytes(SMOOTH[name][0]) / baseline("relu")
    assert ratio <= 1.0, f"{name}: {ratio:.4f} of jax.nn.relu's temp memory"


def test_keyed_rrelu_costs_less_than_autodiff_of_sampled_slopes():
    """Keyed rrelu keeps bits + its sampled slopes; naive autodiff keeps more (192 vs 248 MiB)."""

    def per_layer_keys(act):
        def loss(weights, x, key):
            h = x
            for i, w in enumerate(weights):
                h = act(h @ w, jax.random.fold_in(key, i))
            return jnp.mean(jnp.square(h))

        weights = [jax.ShapeDtypeStruct((WIDTH, WIDTH), jnp.float32)] * LAYERS
        x = jax.ShapeDtypeStruct((BATCH, WIDTH), jnp.float32)
        compiled = jax.jit(jax.grad(loss)).lower(weights, x, KEY).compile()
        return compiled.memory_analysis().temp_size_in_bytes

    def naive(x, key):
        slope = jax.random.uniform(key, x.shape, x.dtype, 1 / 8, 1 / 3)
        return jnp.where(x >= 0, x, slope * x)

    ours = per_layer_keys(lambda x, key: rx.rrelu(x, key))
    assert ours < per_layer_keys(naive)


def test_baseline_is_two_float32_arrays_per_layer():
    """Guards the measurement itself: jax.nn.relu keeps about 2 f32 activations per layer."""
    per_layer = baseline("relu") / LAYERS / (BATCH * WIDTH * 4)
    assert 1.5 <= per_layer <= 2.5, per_layer
