"""Memory figures: compiled temp bytes, device peak bytes and residual bytes per element.

Only compiled numbers tell the truth about a training step (XLA's own accounting):
``jax.jit(jax.grad(loss)).lower(...).compile().memory_analysis().temp_size_in_bytes``. The
residual figure is what ``jax.vjp`` keeps between the forward and backward pass of the activation
alone (the leaves of the VJP closure, from abstract evaluation, no compilation and no FLOPs).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import numpy as np


def temp_bytes(compiled: Any) -> int | None:
    """Compiled scratch memory of an executable, or None if the backend does not report it."""
    analysis = compiled.memory_analysis()
    if analysis is None:
        return None
    return int(analysis.temp_size_in_bytes)


def peak_bytes(device: jax.Device) -> int | None:
    """The device allocator's high-water mark (GPU/TPU); None where there is none (CPU).

    JAX cannot reset it, so it is a running maximum over the process.
    """
    stats = device.memory_stats()
    if not stats:
        return None
    peak = stats.get("peak_bytes_in_use")
    return None if peak is None else int(peak)


def _nbytes(leaf: Any) -> int:
    return int(np.prod(leaf.shape, dtype=np.int64)) * leaf.dtype.itemsize


def residual_bytes_per_element(
    fn: Callable[[jax.Array], jax.Array], shape: tuple[int, ...], dtype: Any
) -> float:
    """Bytes that ``jax.vjp(fn, x)`` saves for the backward pass, per element of ``x``."""
    x = jax.ShapeDtypeStruct(shape, dtype)
    residuals = jax.eval_shape(lambda x: jax.vjp(fn, x)[1], x)
    total = sum(_nbytes(leaf) for leaf in jax.tree_util.tree_leaves(residuals))
    return total / float(np.prod(shape))
