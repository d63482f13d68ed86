"""jax's threefry2x32 PRNG with its hash unrolled on every backend: the same bits, no loop.

jax lowers the threefry2x32 hash under every ``jax.random`` call (``split``, ``fold_in``,
``bits``, ``uniform``, ``normal``, ``truncated_normal``) as a ``fori_loop`` of 5 trips on CPU, to
keep compile times short, and unrolled on GPU and TPU (the lowering of
``jax.extend.random.threefry2x32_p``). XLA:CPU runs a loop body op by op, so on CPU each of
those calls costs a loop's dispatch whatever the draw's size (docs/recycle.md's overhead section
measures it in ``rectax.recycle``'s firing step). :func:`unrolled` re-keys a threefry key into
a PRNG implementation (``jax.extend.random.define_prng_impl``) whose hash is the 20 rounds
written out, which XLA fuses with what consumes the bits; every ``jax.random`` function given
such a key returns exactly what it returns for the original key (the counters and the way the
two words are combined are those of jax's ``jax_threefry_partitionable`` scheme, its default;
tested against ``jax.random`` for keys, bits, uniform, normal and truncated normal draws).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import jax.extend.random
import jax.numpy as jnp
import numpy as np
from jax import lax

Array = jax.Array

# Threefry-2x32's rotation constants (Salmon et al. 2011, "Parallel random numbers: as easy as
# 1, 2, 3", table 4), the key-schedule parity constant, and 5 rounds of 4 mixes between
# key injections: 20 rounds, as jax.
_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_PARITY = np.uint32(0x1BD11BDA)
_THREEFRY = "threefry2x32"


def _hash(k1: Array, k2: Array, x1: Array, x2: Array) -> tuple[Array, Array]:
    """The threefry2x32 block function of key ``(k1, k2)`` on counters ``(x1, x2)``."""
    ks = (k1, k2, k1 ^ k2 ^ _PARITY)
    x1 = x1 + ks[0]
    x2 = x2 + ks[1]
    for i in range(5):
        for r in _ROTATIONS[i % 2]:
            x1 = x1 + x2
            x2 = lax.shift_left(x2, np.uint32(r)) | lax.shift_right_logical(x2, np.uint32(32 - r))
            x2 = x1 ^ x2
        x1 = x1 + ks[(i + 1) % 3]
        x2 = x2 + ks[(i + 2) % 3] + np.uint32(i + 1)
    return x1, x2


def _counted(key: Array, shape: Sequence[int]) -> tuple[Array, Array]:
    """The hash of the flat index of each entry of ``shape`` (its high and low words)."""
    # The row-major index as jax builds it, one iota per axis (partitionable like jax's).
    counter = jnp.zeros(shape, np.uint32)
    for axis in range(len(shape)):
        stride = np.uint32(math.prod(shape[axis + 1 :]))
        counter = counter + lax.broadcasted_iota(np.uint32, shape, axis) * stride
    return _hash(key[0], key[1], jnp.zeros(shape, np.uint32), counter)


def _plain(key: Array) -> Array:
    return jax.random.wrap_key_data(key, impl=_THREEFRY)


def _random_bits(key: Array, bit_width: int, shape: Sequence[int]) -> Array:
    shape = tuple(shape)
    if math.prod(shape) >= 2**32:  # counters with a high word: jax's own
        dtype = np.dtype(f"uint{bit_width}")
        return jax.random.bits(_plain(key), shape, dtype)
    b1, b2 = _counted(key, shape)
    if bit_width == 64:
        wide = np.dtype(np.uint64)
        return lax.shift_left(b1.astype(wide), np.uint64(32)) | b2.astype(wide)
    return (b1 ^ b2).astype(np.dtype(f"uint{bit_width}"))


def _split(key: Array, shape: Sequence[int]) -> Array:
    shape = tuple(shape)
    if math.prod(shape) >= 2**32:
        return jax.random.key_data(jax.random.split(_plain(key), shape))
    b1, b2 = _counted(key, shape)
    return jnp.stack([b1, b2], axis=b1.ndim)


def _fold_in(key: Array, data: int | Array) -> Array:
    # jax: the hash of the counter pair (0, data), data as uint32.
    data = jnp.asarray(data).astype(np.uint32).reshape(1)
    b1, b2 = _hash(key[0], key[1], jnp.zeros((1,), np.uint32), data)
    return jnp.concatenate([b1, b2])


def _seed(seed: Array) -> Array:
    return jax.random.key_data(jax.random.key(seed, impl=_THREEFRY))


_UNROLLED = jax.extend.random.define_prng_impl(
    key_shape=(2,),
    seed=_seed,
    split=_split,
    random_bits=_random_bits,
    fold_in=_fold_in,
    name="threefry2x32_unrolled",
    tag="fru",
)


def unrolled(key: Array) -> Array:
    """``key`` re-keyed to the unrolled threefry2x32 implementation when it is a threefry2x32
    key and jax draws with its partitionable scheme (the default); any other key as it is.

    Every ``jax.random`` function gives the re-keyed key's draws the values it gives ``key``'s.
    """
    if str(jax.random.key_impl(key)) != _THREEFRY or not jax.threefry_partitionable.value:
        return key
    return jax.random.wrap_key_data(jax.random.key_data(key), impl=_UNROLLED)
