"""One dtype rule shared by the statistics and samplers: compute at least in float32."""

from __future__ import annotations

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
