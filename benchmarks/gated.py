"""Compiled memory of a gated-FFN stack: rectax's gated units vs the plain jnp expression.

``python -m benchmarks.gated [--rows N --model D --hidden F --layers L]``: the measurement behind
docs/activations.md "Gated linear units" (and ``tests/test_gated.py``, which asserts it at the
default size). Each block is ``x + unit(x @ W_gate, x @ W_up) @ W_down``; the step is
``jax.jit(jax.grad(loss))``, compiled, not run, and read with ``memory_analysis()``.
"""

from __future__ import annotations

import argparse
import functools
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp

import rectax as rx

Array = jax.Array
Unit = Callable[[Array, Array], Array]

REMATS = ("none", "remat", "remat-bits")
PLAIN: dict[str, Unit] = {
    "swiglu": lambda g, u: jax.nn.silu(g) * u,
    "geglu": lambda g, u: jax.nn.gelu(g) * u,
    "reglu": lambda g, u: jax.nn.relu(g) * u,
}
UNITS: dict[str, tuple[Unit, str]] = {
    "swiglu": (rx.swiglu, "swiglu"),
    "swiglu bits=4": (functools.partial(rx.swiglu, bits=4), "swiglu"),
    "swiglu bits=3": (functools.partial(rx.swiglu, bits=3), "swiglu"),
    "geglu": (rx.geglu, "geglu"),
    "geglu bits=4": (functools.partial(rx.geglu, bits=4), "geglu"),
    "reglu": (rx.reglu, "reglu"),
}


def temp_bytes(
    unit: Unit, remat: str, dtype: jnp.dtype, rows: int, model: int, hidden: int, layers: int
) -> int:
    """Compiled temp bytes of ``jit(grad)`` of ``layers`` residual gated-FFN blocks."""

    def block(x: Array, w: tuple[Array, Array, Array]) -> Array:
        return x + unit(x @ w[0], x @ w[1]) @ w[2]

    if remat == "remat":
        block = jax.checkpoint(block)
    elif remat == "remat-bits":
        policy = jax.checkpoint_policies.save_only_these_names(rx.RESIDUAL_NAME)
        block = jax.checkpoint(block, policy=policy)

    def loss(weights: Sequence[tuple[Array, Array, Array]], x: Array) -> Array:
        for w in weights:
            x = block(x, w)
        return jnp.mean(jnp.square(x.astype(jnp.float32)))

    spec = functools.partial(jax.ShapeDtypeStruct, dtype=dtype)
    weights = [(spec((model, hidden)), spec((model, hidden)), spec((hidden, model)))] * layers
    compiled = jax.jit(jax.grad(loss)).lower(weights, spec((rows, model))).compile()
    analysis = compiled.memory_analysis()
    assert analysis is not None, "this backend reports no memory analysis"
    return int(analysis.temp_size_in_bytes)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=512)
    parser.add_argument("--model", type=int, default=128)
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--layers", type=int, default=4)
    args = parser.parse_args(argv)
    size = (args.rows, args.model, args.hidden, args.layers)
    print(f"{jax.default_backend()}: rows, model, hidden, layers = {size}")
    print("| unit | dtype | none | remat | remat-bits |\n|---|---|---|---|---|")
    for dtype in (jnp.dtype(jnp.float32), jnp.dtype(jnp.bfloat16)):
        for name, (unit, plain) in UNITS.items():
            cells = []
            for remat in REMATS:
                ours = temp_bytes(unit, remat, dtype, *size)
                theirs = temp_bytes(PLAIN[plain], remat, dtype, *size)
                cells.append(
                    f"{ours / theirs:.3f} ({ours / 2**20:.1f} vs {theirs / 2**20:.1f} MiB)"
                )
            print(f"| {name} | {dtype.name} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
