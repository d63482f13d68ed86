"""Memory figures: compiled temp and peak bytes, device peak bytes and residual bytes per element.

Only compiled numbers tell the truth about a training step (XLA's own accounting):
:func:`compiled` is ``jax.jit(fn).lower(*args).compile().memory_analysis()``, on this machine's
backend or, with ``target=``, for a compile-only accelerator (:mod:`benchmarks.targets`); nothing
is run. The residual figure is what ``jax.vjp`` keeps between the forward and backward pass of
the activation alone (the leaves of the VJP closure, from abstract evaluation, no compilation and
no FLOPs).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np


@dataclass(frozen=True)
class Memory:
    """A compiled function's memory in bytes (temp is 0 on TPU, which reports none)."""

    peak: int
    temp: int
    argument: int
    output: int


def of(executable: Any) -> Memory | None:
    """The memory analysis of a compiled executable, or None if the backend reports none."""
    m = executable.memory_analysis()
    if m is None:
        return None
    return Memory(
        int(m.peak_memory_in_bytes),
        int(m.temp_size_in_bytes),
        int(m.argument_size_in_bytes),
        int(m.output_size_in_bytes),
    )


def compiled(fn: Callable[..., Any], *args: Any, target: str | None = None) -> Memory:
    """Compiled memory of ``jax.jit(fn)(*args)``, never run: on this machine's default backend,
    or for compile target ``target`` (``h100``, ``tpu-v5e``, …; :mod:`benchmarks.targets`).

    ``args`` are arrays or ``jax.ShapeDtypeStruct`` pytrees. ``temp_bytes(fn, *args)`` is
    ``compiled(fn, *args).temp``.
    """
    if target is None:
        executable = jax.jit(fn).lower(*args).compile()
    else:
        from benchmarks import targets

        executable = targets.compile_for(target, fn, *args)
    found = of(executable)
    if found is None:
        raise RuntimeError(f"{jax.default_backend()} reports no memory analysis")
    return found


def temp_bytes(fn: Callable[..., Any], *args: Any, target: str | None = None) -> int:
    """Compiled temp (scratch) bytes of ``jax.jit(fn)(*args)`` (:func:`compiled`)."""
    return compiled(fn, *args, target=target).temp


def peak_bytes(device: jax.Device) -> int | None:
    """The device allocator's high-water mark (GPU/TPU); None where there is none (CPU).

    JAX cannot reset it, so it is a running maximum over the process.
    """
    stats = device.memory_stats()
    if not stats:
        return None
    peak = stats.get("peak_bytes_in_use")
    return None if peak is None else int(peak)


def nbytes(leaf: Any) -> int:
    """Bytes of an array or a ``ShapeDtypeStruct``."""
    return int(np.prod(leaf.shape, dtype=np.int64)) * np.dtype(leaf.dtype).itemsize


def residual_bytes_per_element(
    fn: Callable[[jax.Array], jax.Array], shape: tuple[int, ...], dtype: Any
) -> float:
    """Bytes that ``jax.vjp(fn, x)`` saves for the backward pass, per element of ``x``."""
    x = jax.ShapeDtypeStruct(shape, dtype)
    residuals = jax.eval_shape(lambda x: jax.vjp(fn, x)[1], x)
    total = sum(nbytes(leaf) for leaf in jax.tree_util.tree_leaves(residuals))
    return total / float(np.prod(shape))
