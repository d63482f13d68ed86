"""Sharded training adds no communication: rectax's residuals are packed per shard.

A batch-sharded activation's packed mask (or few-bit codes) must stay on the device that holds
its rows: words that mix rows of two shards make XLA move codes between devices
(collective-permutes, all-gathers) that jax.nn's rules never need. So the compiled step of a
``jit(grad)`` on 4 forced host devices (tests/conftest.py) must hold no more collectives of each
kind than the same step with jax.nn's activation, over batch sizes whose rows per device times
width is not a multiple of 32 (each of those added collectives before codes were packed per row).
"""

import os
import re
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

import rectax as rx
from rectax._core import _gradients

COLLECTIVES = ("all-gather", "all-reduce", "collective-permute", "all-to-all", "reduce-scatter")

PAIRS = {
    # rectax activation, jax.nn's (the reference step)
    "relu": (rx.relu, jax.nn.relu),
    "gelu_bits2": (lambda x: rx.gelu(x, bits=2), lambda x: jax.nn.gelu(x, approximate=False)),
}

MESHES = {
    # name: (mesh shape, axis names, the activations' batch axes)
    "4": ((4,), ("b",), "b"),
    "2x2-batch-on-one": ((2, 2), ("b", "m"), "b"),
    "2x2-batch-on-both": ((2, 2), ("b", "m"), ("b", "m")),
}


def collectives(hlo: str) -> dict[str, int]:
    """Collective instructions in an optimized HLO module, by kind (async ones counted once)."""
    return {op: len(re.findall(rf"= \S+ {op}(?:-start)?\(", hlo)) for op in COLLECTIVES}


def test_collectives_counts_the_hlo_it_is_given():
    """Guards the counter: a sum over a sharded axis compiles to an all-reduce."""
    mesh = jax.make_mesh((4,), ("b",), axis_types=(jax.sharding.AxisType.Auto,))
    x = jax.ShapeDtypeStruct((8, 4), jnp.float32, sharding=NamedSharding(mesh, P("b")))
    hlo = jax.jit(jnp.sum).lower(x).compile().as_text()
    assert collectives(hlo)["all-reduce"] >= 1
    assert collectives("%x = f32[4]{0} all-gather-start(f32[1]{0} %y)")["all-gather"] == 1


def step_collectives(act, mesh, batch_axes, shape) -> dict[str, int]:
    """Collectives of a compiled grad step ``mean(act(x @ w) ** 2)``, x sharded on its batch."""

    def loss(w, x):
        return jnp.mean(jnp.square(act(x @ w)))

    width = shape[-1]
    w = jax.ShapeDtypeStruct((width, width), jnp.float32, sharding=NamedSharding(mesh, P()))
    x = jax.ShapeDtypeStruct(shape, jnp.float32, sharding=NamedSharding(mesh, P(batch_axes)))
    return collectives(jax.jit(jax.grad(loss)).lower(w, x).compile().as_text())


@pytest.mark.parametrize("mesh_name", MESHES)
@pytest.mark.parametrize("shape", [(4, 30), (12, 20), (8, 100), (8, 3, 20)])
@pytest.mark.parametrize("name", PAIRS)
def test_batch_sharded_step_adds_no_collectives(name, shape, mesh_name):
    mesh_shape, axes, batch_axes = MESHES[mesh_name]
    mesh = jax.make_mesh(mesh_shape, axes, axis_types=(jax.sharding.AxisType.Auto,) * len(axes))
    ours, theirs = PAIRS[name]
    got = step_collectives(ours, mesh, batch_axes, shape)
    ref = step_collectives(theirs, mesh, batch_axes, shape)
    assert all(got[op] <= ref[op] for op in COLLECTIVES), f"rectax {got}, jax.nn {ref}"


@pytest.mark.parametrize(
    ("name", "width"),
    [(name, width) for name in PAIRS for width in (128, 96, 100)],
)
def test_feature_sharded_step_adds_no_collectives(name, width):
    """Megatron-style: the hidden activation (8, width) sharded on batch and features over 2x2.

    Shards of the feature axis stay local while each holds whole words (width 128: 64 codes, two
    words of 1-bit codes; width 96 at 2 bits: 48 codes, three words); a shard width that splits
    a word (48 1-bit codes) still makes XLA move codes.
    """
    mesh = jax.make_mesh((2, 2), ("b", "m"), axis_types=(jax.sharding.AxisType.Auto,) * 2)

    def hlo(act):
        def loss(w1, w2, x):
            return jnp.mean(jnp.square(act(x @ w1) @ w2))

        def spec(shape, *axes):
            return jax.ShapeDtypeStruct(shape, jnp.float32, sharding=NamedSharding(mesh, P(*axes)))

        args = spec((16, width), None, "m"), spec((width, 16), "m", None), spec((8, 16), "b", None)
        return collectives(jax.jit(jax.grad(loss, argnums=(0, 1))).lower(*args).compile().as_text())

    ours, theirs = PAIRS[name]
    got, ref = hlo(ours), hlo(theirs)
    assert all(got[op] <= ref[op] for op in COLLECTIVES), f"rectax {got}, jax.nn {ref}"


@pytest.mark.parametrize("spec", [(None, "m", None), ("b", "m", None)])
@pytest.mark.parametrize("shape", [(8, 6, 20), (4, 8, 12), (4, 8, 5, 3)])
@pytest.mark.parametrize("name", PAIRS)
def test_sharded_middle_axis_adds_no_collectives(name, shape, spec):
    """An activation sharded on its second axis (a sequence, an image's height), with a last
    axis that fills no whole word: codes are packed per row of the last axis (of width and
    channels on a feature map), so no word spans two shards (merged trailing axes made XLA add
    two collective-permutes)."""
    mesh = jax.make_mesh((2, 2), ("b", "m"), axis_types=(jax.sharding.AxisType.Auto,) * 2)

    def hlo(act):
        def loss(w, x):
            return jnp.mean(jnp.square(act(x @ w)))

        w = jax.ShapeDtypeStruct((16, shape[-1]), jnp.float32, sharding=NamedSharding(mesh, P()))
        x = jax.ShapeDtypeStruct(
            (*shape[:-1], 16), jnp.float32, sharding=NamedSharding(mesh, P(*spec))
        )
        return collectives(jax.jit(jax.grad(loss)).lower(w, x).compile().as_text())

    ours, theirs = PAIRS[name]
    got, ref = hlo(ours), hlo(theirs)
    assert all(got[op] <= ref[op] for op in COLLECTIVES), f"rectax {got}, jax.nn {ref}"


def one_d_collectives(act, n: int) -> dict[str, int]:
    """A sharded 1-D activation ``act(sin(x))``, ``x`` of length ``n`` split over 4 devices."""
    mesh = jax.make_mesh((4,), ("b",), axis_types=(jax.sharding.AxisType.Auto,))
    x = jax.ShapeDtypeStruct((n,), jnp.float32, sharding=NamedSharding(mesh, P("b")))
    loss = lambda x: jnp.mean(jnp.square(act(jnp.sin(x))))
    return collectives(jax.jit(jax.grad(loss)).lower(x).compile().as_text())


@pytest.mark.parametrize("n", [4096, 1000, 200, 160])
@pytest.mark.parametrize("name", PAIRS)
def test_sharded_one_d_adds_no_collectives(name, n):
    """A 1-D array is one row: shards that hold whole words (1024 codes) stay local, and so do
    shards of 250, 50 or 40 codes (a word each at least): the row is packed in 4 blocks."""
    ours, theirs = PAIRS[name]
    got, ref = one_d_collectives(ours, n), one_d_collectives(theirs, n)
    assert all(got[op] <= ref[op] for op in COLLECTIVES), f"rectax {got}, jax.nn {ref}"


def test_sharded_gradient_equals_jax_nn():
    """The per-shard packing changes no value: a batch-sharded grad step (12 rows on 4 devices,
    width 20) equals jax.nn.relu's step on one device."""
    mesh = jax.make_mesh((4,), ("b",), axis_types=(jax.sharding.AxisType.Auto,))
    kw, kx = jax.random.split(jax.random.key(0))
    w = jax.random.normal(kw, (20, 20), jnp.float32)
    x = jax.random.normal(kx, (12, 20), jnp.float32)

    def grad(act):
        return jax.grad(lambda w, x: jnp.mean(jnp.square(act(x @ w))))

    xs = jax.device_put(x, NamedSharding(mesh, P("b")))
    np.testing.assert_allclose(
        jax.jit(grad(rx.relu))(w, xs), grad(jax.nn.relu)(w, x), rtol=1e-6, atol=1e-7
    )


@pytest.mark.parametrize(
    "shape",
    [(), (3,), (1000,), (5, 1), (4096, 4), (7, 8), (7, 16), (12, 20), (2, 3, 5), (2, 3, 4, 3)],
)
@pytest.mark.parametrize("bits", [1, 3, 8])
def test_pack_unpack_round_trip_per_row(shape, bits):
    """Codes come back exactly, packed along the last axis one row per index of the other axes
    (a feature map's width and channels merged when the channels fill no whole word; a row
    whose even shards would split a word cut into blocks, one per shard), in a
    uint8/uint16 word when a row's codes fit in 8/16 bits and in uint32 words otherwise."""
    rng = np.random.default_rng(bits)
    codes = rng.integers(0, 2**bits, size=shape, dtype=np.uint32)
    mask = jnp.asarray(codes.astype(bool) if bits == 1 else codes)
    words = jax.jit(_gradients.pack_mask, static_argnums=1)(mask, bits)
    back = jax.jit(_gradients.unpack_mask, static_argnums=(1, 2))(words, shape, bits)
    np.testing.assert_array_equal(np.asarray(back), np.asarray(mask))
    assert back.dtype == mask.dtype
    slot = 4 if bits == 3 else bits
    row = shape[-1] if shape else 1
    if len(shape) >= 4 and row % (32 // slot):  # a feature map's width and channels, merged
        row *= shape[-2]
    # in a process of several devices, a row whose even shards of at least a word each would
    # split a word is packed in blocks, one per shard of the finest such sharding
    per_word = 32 // slot
    devices = jax.device_count()
    shards = [
        k for k in range(2, devices + 1) if devices % k == row % k == 0 and row >= per_word * k
    ]
    if shards and (row // max(shards)) % per_word:
        row //= max(shards)
    rows = int(np.prod(shape)) // row if shape else 1
    width = 8 if row * slot <= 8 else 16 if row * slot <= 16 else 32
    assert words.dtype == jnp.dtype(f"uint{width}")
    assert words.size == rows * -(-row * slot // width)


def test_one_device_process_keeps_whole_rows():
    """The blocks are for processes of several devices only: with one device, a row of 1000 or
    100 1-bit codes still takes ceil(n / 32) words (no block padding), as it always has."""
    script = (
        "import jax, jax.numpy as jnp\n"
        "from rectax._core import _gradients\n"
        "assert jax.device_count() == 1\n"
        "for shape in [(1000,), (8, 100), (2, 3, 36)]:\n"
        "    print(_gradients.pack_mask(jnp.zeros(shape, bool)).shape)\n"
    )
    env = {**os.environ, "XLA_FLAGS": "", "JAX_PLATFORMS": "cpu"}
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.split("\n")[:3] == ["(32,)", "(8, 4)", "(2, 3, 2)"]
