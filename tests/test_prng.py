"""rectax._core._prng: the unrolled threefry2x32 key draws exactly what jax.random draws.

The reference is jax.random itself, given the original threefry key: every function below must
return bit-identical values for the re-keyed key, in and out of jit and under vmap; the re-keyed
draw's compiled CPU program must have no loop where jax's has one.
"""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rectax._core._prng import unrolled

DRAWS = {
    "bits_u32": lambda k: jax.random.bits(k, (5, 7), jnp.uint32),
    "bits_u8": lambda k: jax.random.bits(k, (33,), jnp.uint8),
    "bits_u16": lambda k: jax.random.bits(k, (4, 3), jnp.uint16),
    "bits_scalar": lambda k: jax.random.bits(k, (), jnp.uint32),
    "uniform": lambda k: jax.random.uniform(k, (3, 4, 5), jnp.float32, -1.0, 2.0),
    "normal": lambda k: jax.random.normal(k, (1001,), jnp.float32),
    "truncated_normal": lambda k: jax.random.truncated_normal(k, -2.0, 2.0, (64, 4)),
    "randint": lambda k: jax.random.randint(k, (17,), 0, 10),
    "split": lambda k: jax.random.key_data(jax.random.split(k, (2, 3))),
    "fold_in": lambda k: jax.random.key_data(jax.random.fold_in(k, 123456789)),
    "split_then_normal": lambda k: jax.random.normal(jax.random.split(k)[1], (8,)),
}


@pytest.mark.parametrize("name", sorted(DRAWS))
@pytest.mark.parametrize("seed", [0, 7, 2**31 - 1])
def test_unrolled_key_draws_what_jax_random_draws(name: str, seed: int) -> None:
    draw = DRAWS[name]
    key = jax.random.fold_in(jax.random.key(seed), 3)
    expected = np.asarray(jax.jit(draw)(key))
    np.testing.assert_array_equal(np.asarray(jax.jit(draw)(unrolled(key))), expected)
    np.testing.assert_array_equal(np.asarray(draw(unrolled(key))), expected)  # eager


def test_unrolled_keys_under_vmap_and_64_bit_draws() -> None:
    keys = jax.random.split(jax.random.key(11), 4)
    draw = jax.vmap(lambda k: jax.random.normal(jax.random.fold_in(k, 2), (6,)))
    np.testing.assert_array_equal(
        np.asarray(jax.jit(draw)(jax.vmap(unrolled)(keys))), np.asarray(jax.jit(draw)(keys))
    )
    with jax.enable_x64(True):
        key = jax.random.key(5)
        wide = jax.jit(lambda k: jax.random.bits(k, (9,), jnp.uint64))
        np.testing.assert_array_equal(np.asarray(wide(unrolled(key))), np.asarray(wide(key)))


def test_unrolled_draw_has_no_loop_on_cpu() -> None:
    """What the re-keying is for: jax lowers threefry as a 5-trip loop on CPU."""

    def whiles(key: jax.Array) -> int:
        draw = jax.jit(lambda k: jax.random.truncated_normal(jax.random.fold_in(k, 1), -2, 2, (8,)))
        return len(re.findall(r" while\(", draw.lower(key).compile().as_text()))

    key = jax.random.key(0)
    assert whiles(key) >= 2  # fold_in's hash and the draw's
    assert whiles(unrolled(key)) == 0


def test_other_keys_and_the_original_scheme_are_left_alone() -> None:
    rbg = jax.random.key(0, impl="rbg")
    assert unrolled(rbg) is rbg
    key = jax.random.key(0)
    with jax.threefry_partitionable(False):
        assert unrolled(key) is key
    assert str(jax.random.key_impl(unrolled(key))) != "threefry2x32"
