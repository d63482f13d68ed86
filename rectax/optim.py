"""Optax helpers: keep PReLU slopes (and biases) out of weight decay, as He et al. (2015) do.

He et al. learn PReLU slopes without weight decay: decay pulls the slopes towards 0 and turns
PReLU back into ReLU. :func:`weight_decay_mask` builds the boolean mask that
``optax.adamw(mask=...)`` and ``optax.add_decayed_weights(mask=...)`` take; :func:`adamw` wires
it in. Both work for Linen parameter dicts and for the ``nnx.State`` that ``nnx.Optimizer``
hands to optax.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import jax

from ._optional import missing_extra

try:
    import optax
except ModuleNotFoundError as _error:
    raise missing_extra("rectax.optim", _error) from _error

__all__ = ["NO_DECAY", "adamw", "weight_decay_mask"]

NO_DECAY: tuple[str, ...] = ("bias", "negative_slope")
"""The parameter names that weight decay skips by default (biases and PReLU slopes)."""


def _key_name(entry: Any) -> str | None:
    for attr in ("key", "name"):
        value = getattr(entry, attr, None)
        if isinstance(value, str):
            return value
    return None


def weight_decay_mask(params: Any, exclude: Iterable[str] = NO_DECAY) -> Any:
    """A pytree of bools, True where weight decay applies, False for slopes and biases.

    A leaf is excluded when any key on its path (a dict key or attribute name) is in
    ``exclude``: Linen's ``{'PReLU_0': {'negative_slope': ...}, 'Dense_0': {'bias': ...}}``
    and the same names in an ``nnx.State``. Pass the function itself as ``mask=`` to optax so
    it sees exactly the structure optax is given.

    Args:
      params: a parameter pytree (Linen dict, ``FrozenDict`` or ``nnx.State``).
      exclude: parameter names never decayed (default ``("bias", "negative_slope")``).

    Returns:
      A pytree with ``params``' structure and bool leaves.

    Example:
      >>> import jax.numpy as jnp
      >>> from rectax.optim import weight_decay_mask
      >>> params = {"Dense_0": {"kernel": jnp.ones((2, 2)), "bias": jnp.zeros(2)},
      ...           "PReLU_0": {"negative_slope": jnp.array(0.25)}}
      >>> weight_decay_mask(params)
      {'Dense_0': {'bias': False, 'kernel': True}, 'PReLU_0': {'negative_slope': False}}
    """
    names = frozenset(exclude)

    def decay(path: tuple[Any, ...], _: Any) -> bool:
        return not any(_key_name(entry) in names for entry in path)

    return jax.tree_util.tree_map_with_path(decay, params)


def adamw(
    learning_rate: optax.ScalarOrSchedule,
    weight_decay: float = 1e-4,
    *,
    exclude: Iterable[str] = NO_DECAY,
    **kwargs: Any,
) -> optax.GradientTransformation:
    """``optax.adamw`` with PReLU slopes and biases excluded from weight decay.

    Args:
      learning_rate: learning rate or schedule.
      weight_decay: decoupled weight decay for the remaining parameters.
      exclude: parameter names never decayed.
      **kwargs: passed to ``optax.adamw`` (``b1``, ``b2``, ``eps``, ...).

    Returns:
      The optax transformation.

    Example:
      >>> import jax.numpy as jnp
      >>> from rectax import optim
      >>> params = {"kernel": jnp.ones(2), "negative_slope": jnp.array(0.25)}
      >>> tx = optim.adamw(1.0, weight_decay=0.5)
      >>> grads = {"kernel": jnp.zeros(2), "negative_slope": jnp.array(0.0)}
      >>> updates, _ = tx.update(grads, tx.init(params), params)
      >>> updates
      {'kernel': Array([-0.5, -0.5], dtype=float32), 'negative_slope': Array(-0., dtype=float32)}
    """
    names = tuple(exclude)
    return optax.adamw(
        learning_rate,
        weight_decay=weight_decay,
        mask=lambda p: weight_decay_mask(p, names),
        **kwargs,
    )
