"""The lone fwd+bwd kernel's compiled form on XLA:CPU (benchmarks/fwd_bwd.py).

XLA:CPU splits a loop fusion whose flops exceed its bytes accessed across threads at any size
(its parallel task assignment); at 2^12 elements the hand-off costs more than the arithmetic.
The tanh-form GELU's forward fusion is written to stay under that line; the test also compiles
the expression it replaced, which is split, so that a change of XLA's heuristic shows here
instead of passing unnoticed.

The 1-bit pack sums each word's 32 codes as (16, 2), the form XLA:CPU's loop vectorizer turns
into vector sums; the test checks that XLA keeps that form (it folds a split of already
shifted codes back into one 32-code sum, which it vectorizes with scalar gathers) and that the
words are still the plain little-endian bit layout.
"""

from __future__ import annotations

import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rectax as rx
from benchmarks import fwd_bwd, models
from rectax._core import _packing

SHAPE = (4, 1024)  # make bench's 2^12 float32 kernel


def _forward_fusions(fn: object) -> str:
    x = jnp.ones(SHAPE, jnp.float32)
    return fwd_bwd.fusions(jax.jit(fn).lower(x).compile().as_text())  # type: ignore[arg-type]


def _gelu_tanh_before(x: jax.Array) -> jax.Array:
    k = math.sqrt(2 / math.pi)
    return jnp.maximum(x, -40.0) * (1 / (1 + jnp.exp(-2 * k * (x + 0.044715 * x * x * x))))


def test_gelu_tanh_forward_is_one_unsplit_fusion() -> None:
    assert _forward_fusions(_gelu_tanh_before) == "P"
    assert _forward_fusions(lambda x: rx.gelu(x, approximate="tanh")) == "1"


def test_fusions_reads_splits_from_the_hlo_text() -> None:
    text = "\n".join(
        [
            "ENTRY %main (x: f32[4]) -> f32[4] {",
            '  %a = f32[4]{0} fusion(%x), kind=kLoop, calls=%c, backend_config={"outer_'
            'dimension_partitions":["2"]}',
            "  %b = f32[4]{0} fusion(%a), kind=kLoop, calls=%d",
            "  ROOT %t = (f32[4]{0}) tuple(%b)",
        ]
    )
    assert fwd_bwd.fusions(text) == "P,1"


def test_measure_compiles_both_kernels_and_times_them() -> None:
    untimed = fwd_bwd.measure("relu", 2**10, budget_s=0)
    assert untimed.ratio is None
    # rectax: the forward, the 1-bit pack, the backward; jax.nn: the forward, the backward
    assert (untimed.rectax_fusions, untimed.baseline_fusions) == ("1,1,1", "1,1")
    timed = fwd_bwd.measure("relu", 2**10, budget_s=0.05, repeats=6)
    assert timed.ratio is not None
    assert timed.ratio.low <= timed.ratio.median <= timed.ratio.high
    assert timed.line().startswith("relu ")
    assert "ratio" in timed.line()


def test_one_bit_pack_sums_each_word_as_16_by_2_codes() -> None:
    x = jnp.ones(SHAPE, jnp.float32)
    kernel = jax.jit(models.forward_backward(rx.relu)).lower(x, x).compile()
    reduces = re.findall(r"= u32\[4,32\]\S* reduce\((.*)", kernel.as_text())  # type: ignore[arg-type]
    assert len(reduces) == 1
    assert "dimensions={2,3}" in reduces[0]


@pytest.mark.parametrize("shape", [(1,), (32,), (3, 64), (2, 100), (2, 3, 1000)])
def test_one_bit_words_are_little_endian_bits(shape: tuple[int, ...]) -> None:
    """Bit ``i`` of word ``j`` is code ``32 j + i`` of its row (rows padded with zeros), as
    numpy's little-endian ``packbits`` read as little-endian 32-bit words."""
    rng = np.random.default_rng(len(shape))
    mask = rng.random(shape) < 0.5
    n = shape[-1]
    width = _packing.word_bits(n, 1)
    padded = -(-n // width) * width
    rows = np.pad(mask, [(0, 0)] * (mask.ndim - 1) + [(0, padded - n)])
    expected = np.packbits(rows, axis=-1, bitorder="little").view(f"<u{width // 8}")
    words = jax.jit(_packing.pack, static_argnums=1)(jnp.asarray(mask), 1)
    assert words.dtype == expected.dtype
    np.testing.assert_array_equal(np.asarray(words), expected)


def test_parts_times_each_fusion_against_the_forward() -> None:
    parts = fwd_bwd.parts(2**10, budget_s=0.05, repeats=6)
    assert list(parts) == ["copy", "read x", "pack", "backward", "jax.nn backward"]
    for stats in parts.values():
        assert 0 < stats.low <= stats.median <= stats.high
