"""The Flax-free parts of :mod:`rectax.linen`'s and :mod:`rectax.nnx`'s layers: hyperparameter
defaults, PReLU's slope shape and axis, RReLU's key, the sown unit statistics, CNN shapes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from . import diagnostics
from ._core import _catalog

Array = jax.Array
Sow = Callable[..., Any]
"""A module's ``sow`` with its collection bound (``'intermediates'`` in Linen,
``nnx.Intermediate`` in NNX): ``sow(name, value, reduce_fn=..., init_fn=...)``."""


def default(activation: str, hyperparameter: str) -> Any:
    """The default of an activation's hyperparameter (from :mod:`rectax._core._catalog`)."""
    info = _catalog.by_name(activation)
    assert info is not None, activation
    return info.hyperparameters[hyperparameter]


RRELU_LOWER: float = default("rrelu", "lower")
RRELU_UPPER: float = default("rrelu", "upper")
NECRO_SLOPE: float = default("necro_relu", "negative_slope")


def check_slope_axis(x: Array, slope: Array, axis: int) -> Array:
    """Reshapes a per-channel slope so it broadcasts along ``axis`` of ``x``.

    Args:
      x: the input.
      slope: a scalar (shared) or a vector of one slope per channel.
      axis: the channel axis of ``x``.

    Returns:
      ``slope`` with ``x.ndim`` axes, its channels on ``axis``.

    Raises:
      ValueError: if the number of slopes does not match ``x.shape[axis]``.
    """
    slope = jnp.asarray(slope)
    if slope.ndim == 0:
        return slope
    if x.ndim == 0:
        raise ValueError("rectax PReLU: per-channel slopes need an input with a channel axis.")
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(
            f"rectax PReLU: axis={axis} is out of range for an input of rank {x.ndim} "
            f"(allowed: {-x.ndim} to {x.ndim - 1})."
        )
    ax = axis % x.ndim
    if x.shape[ax] != slope.shape[0]:
        raise ValueError(
            f"rectax PReLU: num_parameters={slope.shape[0]} does not match the input's "
            f"axis {axis} of size {x.shape[ax]} (input shape {x.shape})."
        )
    shape = [1] * x.ndim
    shape[ax] = slope.shape[0]
    return jnp.reshape(slope, shape)


def slope_shape(num_parameters: int) -> tuple[int, ...]:
    """Shape of the PReLU slope parameter: ``()`` when shared, ``(C,)`` per channel."""
    if num_parameters < 1:
        raise ValueError(f"rectax PReLU: num_parameters must be >= 1, got {num_parameters}.")
    return () if num_parameters == 1 else (num_parameters,)


def pair(size: int | Sequence[int]) -> tuple[int, int]:
    """``(size, size)`` for an int, else the two sizes (a CNN's ``image_size``, ``kernel_size``)."""
    if isinstance(size, int):
        return size, size
    height, width = size
    return height, width


def cnn_head_features(image_size: int | Sequence[int], features: Sequence[int]) -> int:
    """Input width of a CNN's head: ``image_size`` halved by each block's 2x2 pool, times the
    last block's channels."""
    height, width = pair(image_size)
    for _ in features:
        height, width = height // 2, width // 2
    return height * width * features[-1]


def _merge_stats(prev: Any, new: Any) -> Any:
    return new if prev is None else diagnostics.merge_stats(prev, new)


def _no_stats() -> None:
    return None


def recorded(sow: Sow | None, pre: ArrayLike, post: Array, unit_axis: int = -1) -> Array:
    """Returns ``post``, first sowing the :class:`~rectax.diagnostics.UnitStats` of ``pre`` and
    ``post`` as ``'unit_stats'`` (merged over repeated calls) unless ``sow`` is None.

    Args:
      sow: the module's ``sow`` with its collection bound, or None when ``record_stats`` is off
        (then nothing is computed or traced).
      pre: the activation's input.
      post: its output (its zeros give the sparsity when it has ``pre``'s shape; a widening
        activation's, CReLU's, are not the units', so then ``pre <= 0`` is counted).
      unit_axis: the axis of units (PReLU's ``axis``; the last axis otherwise).
    """
    if sow is not None:
        pre = jnp.asarray(pre)
        # a widening activation (CReLU): the units are the inputs, counted by their own sign
        counted = post if post.shape == pre.shape else None
        stats = diagnostics.unit_stats(pre, counted, unit_axis=unit_axis)
        sow("unit_stats", stats, reduce_fn=_merge_stats, init_fn=_no_stats)
    return post


def rrelu_key(deterministic: bool, rng: Array | None, draw: Callable[[], Array]) -> Array | None:
    """RReLU's key: None in evaluation, else the ``rng`` call argument or, failing it, ``draw()``
    (the module's stream)."""
    if deterministic:
        return None
    return rng if rng is not None else draw()
