"""Packing small unsigned codes (1, 2, 4 or 8 bits each) into ``uint32`` words.

Residuals of piecewise-constant derivatives (a 1-bit mask) and of few-bit derivatives (a
2- or 4-bit bucket index) are saved for the backward pass as packed words. Codes are packed
along the last axis, so leading-axis shardings stay local (and last-axis ones whose shards fill
whole words, or hold blocks that are padded to whole words: ``_gradients._packed_view``); the
last axis is padded to a whole number of words. ``uint32`` words rather than
bytes, because XLA:CPU widens ``uint8`` buffers of a reduction's output to 32-bit words, which
costs 4 bits per 1-bit code; a last axis whose codes fit in 8 or 16 bits takes one ``uint8`` or
``uint16`` word instead (:func:`word_bits`), so a short row does not cost a 32-bit word.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

Array = jax.Array

WORD_BITS = 32
SLOT_BITS = (1, 2, 4, 8)


def slot_bits(bits: int) -> int:
    """The slot width used for ``bits``-bit codes: the next of 1, 2, 4, 8 (3 bits use 4)."""
    for slot in SLOT_BITS:
        if bits <= slot:
            return slot
    raise ValueError(f"rectax: codes of {bits} bits cannot be packed; at most 8 are supported.")


def word_bits(n: int, bits: int) -> int:
    """Width of the words ``n`` codes of ``bits`` bits are packed in: 8 or 16 when they fit."""
    total = n * slot_bits(bits)
    return 8 if total <= 8 else 16 if total <= 16 else WORD_BITS


def _word_dtype(width: int) -> Any:
    return {8: jnp.uint8, 16: jnp.uint16, 32: jnp.uint32}[width]


def _shifts(slot: int, ndim: int, width: int = WORD_BITS) -> Array:
    """Bit offsets of the slots in a word, shaped to broadcast against the last axis."""
    per_word = width // slot
    dtype = _word_dtype(width)
    shifts = jnp.arange(per_word, dtype=dtype) * jnp.asarray(slot, dtype)
    return shifts.reshape((1,) * (ndim - 1) + (per_word,))


def pack(codes: Array, bits: int, width: int | None = None) -> Array:
    """Packs unsigned integer ``codes`` (each ``< 2**bits``) into words along the last axis.

    Args:
      codes: an unsigned integer or boolean array, any shape (a scalar is treated as shape (1,)).
      bits: code width; 3 is stored in 4-bit slots.
      width: the words' width, 8, 16 or 32; None chooses :func:`word_bits`.

    Returns:
      ``uint32`` array of shape ``codes.shape[:-1] + (ceil(n * slot / 32),)``, ``n`` the last
      axis length; one ``uint8`` or ``uint16`` word per row when ``n * slot`` is at most 8 or 16
      (:func:`word_bits`); words of ``width`` bits if given.
    """
    slot = slot_bits(bits)
    codes = jnp.atleast_1d(codes)
    n = codes.shape[-1]
    width = word_bits(n, bits) if width is None else width
    dtype = _word_dtype(width)
    per_word = width // slot
    words = -(-n // per_word)
    pad = words * per_word - n
    c = lax.convert_element_type(codes, dtype)
    if pad:
        c = jnp.pad(c, [(0, 0)] * (c.ndim - 1) + [(0, pad)])
    c = c.reshape((*c.shape[:-1], words, per_word))
    shifts = _shifts(slot, c.ndim, width)
    if per_word == WORD_BITS:
        # The same sum over (16, 2) codes instead of 32: XLA:CPU's loop vectorizer then sums
        # each word's codes 8 at a time (2 interleaved, from one 16-element load) where it
        # otherwise gathers 32 scalars per 8 words. The codes are split before they are
        # shifted: XLA folds a split of the shifted codes back into one 32-code sum.
        split = (*c.shape[:-1], per_word // 2, 2)
        c = c.reshape(split) << shifts.reshape((*shifts.shape[:-1], per_word // 2, 2))
        # The shifted codes occupy disjoint bits, so their sum is their bitwise OR.
        return jnp.sum(c, axis=(-2, -1), dtype=dtype)
    return jnp.sum(c << shifts, axis=-1, dtype=dtype)


def unpack(words: Array, bits: int, shape: Sequence[int]) -> Array:
    """Inverse of :func:`pack`: the ``uint32`` codes of an array of the given ``shape``."""
    shape = tuple(shape)
    if math.prod(shape) == 0:
        return jnp.zeros(shape, jnp.uint32)
    slot = slot_bits(bits)
    width = words.dtype.itemsize * 8
    per_word = width // slot
    n = shape[-1] if shape else 1
    mask = jnp.asarray((1 << slot) - 1, words.dtype)
    c = (words[..., None] >> _shifts(slot, words.ndim + 1, width)) & mask
    c = c.reshape((*c.shape[:-2], c.shape[-2] * per_word))[..., :n]
    return lax.convert_element_type(c, jnp.uint32).reshape(shape)
