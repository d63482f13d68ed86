r"""Randomized asymmetric initialization (RAI) of a Dense layer's kernel and bias.

Lu, Shin, Su & Karniadakis, "Dying ReLU and Initialization: Theory and Numerical Examples",
CiCP 28 (2020), arXiv:1903.06733.

Derivation of :math:`\sigma` (the second-moment condition). Write the layer as
:math:`z = V\tilde x` with :math:`V = [W^\top \mid b]` (``N_out`` rows, ``N_in + 1`` columns) and
:math:`\tilde x = (x, 1)`. In each row one entry is :math:`\xi \sim \mathrm{Beta}(2, 1)`
(:math:`E\xi = 2/3`, :math:`E\xi^2 = 1/2`) and the other ``N_in`` entries are
:math:`N(0, \sigma^2)`, all independent and independent of :math:`\tilde x`. Every cross term of
:math:`z_j^2 = \sum_{k,l} V_{jk}V_{jl}\tilde x_k\tilde x_l` with :math:`k \ne l` contains a
zero-mean normal entry, so if every input coordinate has second moment :math:`q`
(:math:`q = 1` for normalised inputs, matching the constant 1 of the bias column)

.. math:: E[z_j^2] = q\,\Big(E\xi^2 + N_{in}\,\sigma^2\Big) = q\,E\Big[\sum_k V_{jk}^2\Big].

He's condition for ReLU asks :math:`E[z^2] = 2q` (half of the signal is cut by the rectifier).
Setting the row's expected squared norm to ``scale`` (2 by default) gives

.. math:: \sigma^2 = \frac{\mathrm{scale} - E\xi^2}{N_{in}} = \frac{\mathrm{scale} - 1/2}{N_{in}},
   \qquad \sigma^2 = \frac{3}{2N_{in}} \text{ for ReLU.}

The positive entry gives every unit a positive mean pre-activation (``E[z_j] = (2/3)E[\tilde
x_k]`` for its column ``k``), which is what keeps deep narrow ReLU nets from being born dead.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import DTypeLike

from ._variance import Initializer, resolve_dtype, sampling_dtype

Array = jax.Array

BETA_SECOND_MOMENT = 0.5  # E[xi^2] for xi ~ Beta(2, 1)


def rai_sigma(in_features: int, scale: float = 2.0) -> float:
    r"""The standard deviation of RAI's symmetric entries, :math:`\sqrt{(s - 1/2)/N_{in}}`.

    Args:
      in_features: the layer's fan-in :math:`N_{in}` (``> 0``).
      scale: the target expected squared norm of each row of ``[W^T | b]`` (2 for ReLU).

    Returns:
      :math:`\sigma` as a Python float.

    Example:
      >>> from rectax.initializers import rai_sigma
      >>> rai_sigma(150)
      0.1
    """
    if not in_features > 0:
        raise ValueError(f"rectax.initializers.rai: in_features must be > 0, got {in_features}.")
    if not scale > BETA_SECOND_MOMENT:
        raise ValueError(
            f"rectax.initializers.rai: scale must exceed E[xi^2] = 1/2, got {scale!r}."
        )
    return math.sqrt((scale - BETA_SECOND_MOMENT) / in_features)


def rai(
    key: Array,
    in_features: int,
    out_features: int,
    *,
    scale: float = 2.0,
    dtype: DTypeLike | None = None,
) -> tuple[Array, Array]:
    r"""Randomized asymmetric initialization of a Dense layer (Lu et al. 2020).

    .. math::
      V = [W^\top \mid b],\quad V_{j,k_j} = \xi_j \sim \mathrm{Beta}(2, 1),\ k_j \sim
      U\{0, \dots, N_{in}\},\quad V_{jk} \sim N\Big(0, \frac{\mathrm{scale} - 1/2}{N_{in}}\Big)
      \text{ otherwise}

    so that every row has :math:`E\|V_j\|^2 = \mathrm{scale}` (the derivation is in the module
    docstring and ``docs/initializers.md``). :math:`\xi` is drawn as :math:`\sqrt{U}` (its CDF
    is :math:`x^2`). Sampled in float32 or wider, then cast.

    Args:
      key: PRNG key.
      in_features: the layer's input size :math:`N_{in}`.
      out_features: the layer's output size :math:`N_{out}`.
      scale: expected squared norm of each row of ``[W^T | b]``; 2 (default) is He's ReLU
        condition.
      dtype: result dtype (None: jax's default float).

    Returns:
      ``(kernel, bias)`` with flax's shapes ``(in_features, out_features)`` and
      ``(out_features,)``.

    Example:
      >>> import jax
      >>> from rectax.initializers import rai
      >>> kernel, bias = rai(jax.random.key(0), 64, 32)
      >>> kernel.shape, bias.shape
      ((64, 32), (32,))
    """
    sigma = rai_sigma(in_features, scale)
    dtype = resolve_dtype("rai", dtype)
    wide = sampling_dtype(dtype)
    if jnp.issubdtype(dtype, jnp.complexfloating):
        raise TypeError("rectax.initializers.rai: RAI is defined for real dtypes only.")
    k_normal, k_col, k_xi = jax.random.split(key, 3)
    v = sigma * jax.random.normal(k_normal, (out_features, in_features + 1), wide)
    col = jax.random.randint(k_col, (out_features,), 0, in_features + 1)
    xi = jnp.sqrt(jax.random.uniform(k_xi, (out_features,), wide))
    v = v.at[jnp.arange(out_features), col].set(xi)
    return v[:, :in_features].T.astype(dtype), v[:, in_features].astype(dtype)


class RAIInitializers(NamedTuple):
    """A kernel/bias initializer pair drawing one RAI sample (see :func:`rai_initializers`)."""

    kernel: Initializer
    bias: Initializer


def rai_initializers(key: Array, in_features: int, *, scale: float = 2.0) -> RAIInitializers:
    r"""RAI as a Flax ``kernel_init``/``bias_init`` pair that share one draw.

    Flax passes the kernel and bias initializers different keys, but RAI draws ``[W^T | b]``
    jointly (one positive entry per row, in either part). Both initializers therefore ignore the
    key Flax passes and recompute the same draw, :func:`rai` ``(key, in_features, out)``, from
    the ``key`` given here; the kernel returns its ``W`` part, the bias its ``b`` part. Use a
    distinct ``key`` per layer. Works with ``flax.linen.Dense`` and ``flax.nnx.Linear``, and
    under ``jit``.

    .. math:: \sigma^2 = (\mathrm{scale} - 1/2) / N_{in}

    Args:
      key: PRNG key of this layer's draw.
      in_features: the layer's input size (checked against the kernel shape).
      scale: see :func:`rai`.

    Returns:
      ``RAIInitializers(kernel, bias)``.

    Example:
      >>> import jax
      >>> from flax import nnx
      >>> from rectax.initializers import rai, rai_initializers
      >>> init = rai_initializers(jax.random.key(1), 8)
      >>> layer = nnx.Linear(8, 4, kernel_init=init.kernel, bias_init=init.bias,
      ...                    rngs=nnx.Rngs(0))
      >>> w, b = rai(jax.random.key(1), 8, 4)
      >>> bool((layer.kernel[...] == w).all() and (layer.bias[...] == b).all())
      True
    """
    rai_sigma(in_features, scale)  # validate now

    def kernel(
        _key: Array, shape: Sequence[int], dtype: DTypeLike | None = None, out_sharding=None
    ) -> Array:
        shape = tuple(shape)
        if len(shape) != 2 or shape[0] != in_features:
            raise ValueError(
                f"rectax.initializers.rai_initializers: expected a Dense kernel of shape "
                f"({in_features}, out_features), got {shape}."
            )
        return rai(key, in_features, shape[1], scale=scale, dtype=dtype)[0]

    def bias(
        _key: Array, shape: Sequence[int], dtype: DTypeLike | None = None, out_sharding=None
    ) -> Array:
        shape = tuple(shape)
        if len(shape) != 1:
            raise ValueError(
                "rectax.initializers.rai_initializers: expected a bias of shape "
                f"(out_features,), got {shape}."
            )
        return rai(key, in_features, shape[0], scale=scale, dtype=dtype)[1]

    return RAIInitializers(kernel, bias)
