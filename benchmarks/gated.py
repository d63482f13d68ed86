"""Compiled memory of a gated-FFN stack: rectax's gated units vs the plain jnp expression.

``python -m benchmarks.gated [--rows N --model D --hidden F --layers L]``: the measurement behind
docs/activations.md "Gated linear units" (and ``tests/test_gated.py``, which asserts it at the
default size). Each block is ``x + unit(x @ W_gate, x @ W_up) @ W_down``; the step is
``jax.jit(jax.grad(loss))``, compiled, not run, and read with ``memory_analysis()``.

``--target h100`` or ``--target tpu-v5e`` compiles the same steps for a compile-only
accelerator (:mod:`benchmarks.targets`) and compares peak memory instead (XLA:TPU reports no
temp size); the squared-ReLU rows are ``x + squared_relu(x @ W_up) @ W_down`` against
``jnp.square(jax.nn.relu(h))``.
"""

from __future__ import annotations

import argparse
import functools
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp

import rectax as rx
from benchmarks import memory, models

Array = jax.Array
Unit = Callable[[Array, Array], Array]

REMATS = models.REMATS
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


SQUARED: dict[str, Callable[[Array], Array]] = {
    "squared_relu": rx.squared_relu,
    "plain": lambda h: jnp.square(jax.nn.relu(h)),
}
"""Squared ReLU (rectax's and the plain expression) in an FFN: ``x + f(x @ W_up) @ W_down``."""


def temp_bytes(
    unit: Unit, remat: str, dtype: jnp.dtype, rows: int, model: int, hidden: int, layers: int
) -> int:
    """Compiled temp bytes of ``jit(grad)`` of ``layers`` residual gated-FFN blocks."""
    return memory.temp_bytes(*models.ffn_stack(unit, remat, dtype, rows, model, hidden, layers))


def peak_bytes(
    target: str,
    unit: Unit,
    remat: str,
    dtype: jnp.dtype,
    rows: int,
    model: int,
    hidden: int,
    layers: int,
) -> int:
    """Compiled peak bytes of the gated-FFN step for compile target ``target`` (never run)."""
    step = models.ffn_stack(unit, remat, dtype, rows, model, hidden, layers)
    return memory.compiled(*step, target=target).peak


def squared_unit(act: Callable[[Array], Array]) -> Unit:
    """A squared-ReLU FFN as a gated step's unit: ``act(up)`` (the gate's matmul unused)."""
    return lambda gate, up: act(up)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=512)
    parser.add_argument("--model", type=int, default=128)
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--target", default=None, help="h100, tpu-v5e, ...: peak, compile-only")
    parser.add_argument("--units", nargs="*", default=None, help="rows to print (default all)")
    parser.add_argument("--dtypes", nargs="*", default=["float32", "bfloat16"])
    parser.add_argument("--remats", nargs="*", default=list(REMATS))
    args = parser.parse_args(argv)
    size = (args.rows, args.model, args.hidden, args.layers)
    units: dict[str, tuple[Unit, Unit]] = {n: (u, PLAIN[p]) for n, (u, p) in UNITS.items()}
    units["squared_relu"] = (squared_unit(SQUARED["squared_relu"]), squared_unit(SQUARED["plain"]))
    names = args.units or list(units)
    if args.target is None:
        what = "temp"
        measure = temp_bytes
        print(f"{jax.default_backend()}: rows, model, hidden, layers = {size}")
    else:
        from benchmarks import targets

        targets.configure_environment()
        what = "peak"
        measure = functools.partial(peak_bytes, args.target)
        print(f"{targets.TARGETS[args.target].description}: rows, model, hidden, layers = {size}")
    print(f"rectax/plain {what} memory")
    print(f"| unit | dtype | {' | '.join(args.remats)} |\n|---|---|{'---|' * len(args.remats)}")
    for dtype in map(jnp.dtype, args.dtypes):
        for name in names:
            unit, plain = units[name]
            cells = []
            for remat in args.remats:
                ours = measure(unit, remat, dtype, *size)
                theirs = measure(plain, remat, dtype, *size)
                cells.append(
                    f"{ours / theirs:.3f} ({ours / 2**20:.2f} vs {theirs / 2**20:.2f} MiB)"
                )
            print(f"| {name} | {dtype.name} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
