"""Two dtype rules: the statistics and samplers compute at least in float32; the tables and gains
evaluate jax functions in float64."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import DTypeLike


def at_least_float32(dtype: DTypeLike) -> np.dtype:
    """``dtype`` if it is a float or complex of 32 bits or more, else float32.

    What ``jnp.promote_types(dtype, jnp.float32)`` gives for floats, integers and bools, without
    the implicit promotion that ``jax_numpy_dtype_promotion="strict"`` forbids.
    """
    dtype = np.dtype(dtype)
    if jnp.issubdtype(dtype, jnp.inexact) and dtype.itemsize >= 4:
        return dtype
    return np.dtype(np.float32)


def in_float64(fn: Callable[[jax.Array], jax.Array]) -> Callable[[np.ndarray], np.ndarray]:
    """``fn`` as a float64 NumPy function: called with 64-bit types enabled for the call.

    Evaluated eagerly (``jax.ensure_compile_time_eval``), so a table or gain computed while an
    outer function is being traced never becomes part of it. The float64 references of the gains
    and few-bit tables are the functions themselves, not a second forward pass in NumPy.
    """

    def call(x: np.ndarray) -> np.ndarray:
        with jax.enable_x64(True), jax.ensure_compile_time_eval():
            return np.asarray(fn(jnp.asarray(x, jnp.float64)), np.float64)

    return call
