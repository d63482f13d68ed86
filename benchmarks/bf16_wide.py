"""bf16 MLP training step: smooth activations computed wide (float32, rounded once) vs in bf16.

``python -m benchmarks.bf16_wide``: the measurement behind docs/activations.md "Input types".
Interleaved pairs in one process; prints the median ratio and its interquartile range.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp

import rectax as rx
from benchmarks import models
from rectax import _functions as act
from rectax._core._gradients import from_input

Array = jax.Array


def _elu_in_bf16(x: Array) -> Array:
    return from_input(act._elu_forward, act._elu_derivative)(x, 1.0)


def _silu_forward(x: Array) -> Array:
    return jnp.maximum(x, -act._SILU_TAIL) * jax.nn.sigmoid(x)


# The same rules with every intermediate rounded to the input's dtype (rectax 0.1).
NARROW: dict[str, Callable[[Array], Array]] = {
    "gelu_tanh": from_input(act._gelu_tanh_forward, act._gelu_tanh_derivative),
    "silu": from_input(_silu_forward, act._silu_derivative),
    "elu": jax.jit(_elu_in_bf16),
}
WIDE: dict[str, Callable[[Array], Array]] = {"gelu_tanh": rx.gelu, "silu": rx.silu, "elu": rx.elu}


def _step(activation: Callable[[Array], Array]) -> Callable[..., list[Array]]:
    return jax.jit(jax.grad(models.mlp_loss(activation)))


def _seconds(fn: Callable[..., list[Array]], *args: object) -> float:
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    return time.perf_counter() - start


def main(batch: int = 512, width: int = 512, depth: int = 4, pairs: int = 30) -> None:
    key = jax.random.key(0)
    ws = [
        jax.random.normal(k, (width, width), jnp.bfloat16) * 0.05
        for k in jax.random.split(key, depth)
    ]
    x = jax.random.normal(key, (batch, width), jnp.bfloat16)
    for name, wide in WIDE.items():
        narrow_step, wide_step = _step(NARROW[name]), _step(wide)
        _seconds(narrow_step, ws, x)
        _seconds(wide_step, ws, x)
        ratios = [_seconds(wide_step, ws, x) / _seconds(narrow_step, ws, x) for _ in range(pairs)]
        q1, _, q3 = statistics.quantiles(ratios, n=4)
        print(
            f"{name}: wide/bf16 step time median {statistics.median(ratios):.3f} "
            f"(IQR {q1:.3f}-{q3:.3f}), {pairs} interleaved pairs, {jax.devices()[0].platform}"
        )


if __name__ == "__main__":
    main()
