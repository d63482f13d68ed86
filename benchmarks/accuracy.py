"""Gradient accuracy of the ELU family against float64, rectax vs jax.nn, in ulps.

``python -m benchmarks.accuracy``: the table in docs/activations.md ("Numerics"). For each
interval of x < 0, the largest error of ``jax.grad`` in units of the dtype's spacing at the exact
float64 derivative (computed with NumPy from the same rounded inputs).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

import rectax as rx

INTERVALS = ((-30.0, -17.0), (-17.0, -8.0), (-8.0, -3.0), (-3.0, -1e-3))
SELU_ALPHA, SELU_SCALE = rx.SELU_ALPHA, rx.SELU_SCALE

# name -> (rectax, jax.nn, float64 derivative for x < 0)
FUNCTIONS: dict[str, tuple[Callable, Callable, Callable[[np.ndarray], np.ndarray]]] = {
    "elu": (rx.elu, jax.nn.elu, np.exp),
    "celu": (rx.celu, jax.nn.celu, np.exp),
    "selu": (rx.selu, jax.nn.selu, lambda x: SELU_SCALE * SELU_ALPHA * np.exp(x)),
}


def _max_ulps(fn: Callable, dref: Callable, lo: float, hi: float, dtype: jnp.dtype) -> float:
    x = jnp.linspace(lo, hi, 4001, dtype=jnp.float32).astype(dtype)
    d = np.asarray(jax.vmap(jax.grad(fn))(x), np.float64)
    ref = dref(np.asarray(x, np.float64))
    finfo = jnp.finfo(dtype)
    tiny = float(finfo.smallest_normal)
    spacing = 2.0 ** (np.floor(np.log2(np.maximum(np.abs(ref), tiny))) - finfo.nmant)
    return float(np.max(np.abs(d - ref) / spacing))


def main() -> None:
    header = "| function | dtype | " + " | ".join(f"[{lo:g}, {hi:g})" for lo, hi in INTERVALS)
    print(header + " |")
    print("|" + "---|" * (2 + len(INTERVALS)))
    for name, (ours, theirs, dref) in FUNCTIONS.items():
        for dtype in (jnp.float32, jnp.bfloat16):
            cells = []
            for lo, hi in INTERVALS:
                a = _max_ulps(ours, dref, lo, hi, dtype)
                b = _max_ulps(theirs, dref, lo, hi, dtype)
                cells.append(f"{a:.2g} vs {b:.2g}" if math.isfinite(b) else f"{a:.2g} vs inf")
            print(f"| {name} | {jnp.dtype(dtype).name} | " + " | ".join(cells) + " |")
    print("\ncells: max error in ulps, rectax vs jax.nn; " + jax.devices()[0].platform)


if __name__ == "__main__":
    main()
