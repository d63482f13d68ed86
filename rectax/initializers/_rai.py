r"""Randomized asymmetric initialization (RAI) of a Dense layer's kernel and bias.

Lu, Shin, Su & Karniadakis, "Dying ReLU and Initialization: Theory and Numerical Examples",
CiCP 28 (2020), arXiv:1903.06733.

The layer is :math:`z = V\tilde x` with :math:`V = [W^\top \mid b]` (``N_out`` rows,
``N_in + 1`` columns) and :math:`\tilde x = (x, 1)`. In each row one entry, at a uniformly chosen
column :math:`k^*`, is drawn from a positive distribution :math:`P` (Beta(2, 1) in the paper:
:math:`E\xi = 2/3`, :math:`E\xi^2 = 1/2`); the other ``N_in`` entries are :math:`N(0, \sigma^2)`.

The design condition for :math:`\sigma` (the paper's second-moment bound). Given :math:`\tilde x`
and :math:`k^*`, :math:`z_j = \mu + g` with :math:`\mu = \xi\tilde x_{k^*} \ge 0` (ReLU outputs
and the constant 1 are non-negative) and :math:`g \sim N(0, s^2)`,
:math:`s^2 = \sigma^2\sum_{k \ne k^*}\tilde x_k^2`. For :math:`\mu \ge 0`

.. math:: E[(\mu + g)_+^2] \le \mu^2 + \frac{s^2}{2} + \sqrt{2/\pi}\,\mu s .

If every coordinate of :math:`\tilde x` has second moment at most 1, taking expectations (with
Cauchy-Schwarz on :math:`E[\tilde x_{k^*} s]`) and writing :math:`a = \sigma\sqrt{N_{in}}` bounds
the next layer's second moment by :math:`a^2/2 + \sqrt{2/\pi}E\xi\,a + E\xi^2`. RAI sets this bound
to 1:

.. math:: \frac{a^2}{2} + \sqrt{\frac{2}{\pi}}\,E\xi\,a + E\xi^2 = 1,\qquad
   a^* = -\sqrt{\frac{2}{\pi}}E\xi + \sqrt{\frac{2}{\pi}(E\xi)^2 + 2(1 - E\xi^2)},
   \qquad \sigma = \frac{a^*}{\sqrt{N_{in}}},

:math:`a^* = 0.6007\ldots` for Beta(2, 1), the constant of the authors' reference code
(``0.6007 / sqrt(fan_in)``). Stating the bound over all ``N_in + 1`` columns of the row instead
of the ``N_in`` normal ones gives :math:`\sigma = a^*/\sqrt{N_{in} + 1}`, a slightly smaller
(more conservative) :math:`\sigma`; rectax counts the normal entries exactly, as the reference
code does. He's :math:`\sigma^2 = 2/N` is wrong here: the positive entry makes the ReLU keep more
than half of the signal, and a :math:`(2 - E\xi^2)/N_{in}` variance grows the second moment by
about 1.5x per layer.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import DTypeLike

from ._variance import Initializer, resolve_dtype, sampling_dtype

Array = jax.Array

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


class AsymmetricDistribution(NamedTuple):
    """The positive distribution of RAI's one special entry per row, with its first two moments.

    Attributes:
      sample: ``sample(key, shape, dtype) -> Array`` of positive samples (``dtype`` is float32
        or wider).
      mean: :math:`E\\xi` (``> 0``).
      second_moment: :math:`E\\xi^2` (``>= mean²`` and ``< 1``).
    """

    sample: Callable[[Array, tuple[int, ...], np.dtype], Array]
    mean: float
    second_moment: float


def _beta_2_1(key: Array, shape: tuple[int, ...], dtype: np.dtype) -> Array:
    return jnp.sqrt(jax.random.uniform(key, shape, dtype))  # CDF x² on [0, 1]


BETA_2_1 = AsymmetricDistribution(_beta_2_1, 2.0 / 3.0, 0.5)
"""Beta(2, 1), the paper's choice: density :math:`2x` on [0, 1], drawn as :math:`\\sqrt{U}`."""


def rai_constant(mean: float = 2.0 / 3.0, second_moment: float = 0.5) -> float:
    r"""RAI's constant :math:`a^*`, the positive root of the second-moment design condition.

    .. math:: \frac{a^2}{2} + \sqrt{\frac{2}{\pi}}\,m_1 a + m_2 = 1,\qquad
       a^* = -\sqrt{\frac{2}{\pi}}m_1 + \sqrt{\frac{2}{\pi}m_1^2 + 2(1 - m_2)}

    for a positive distribution with mean :math:`m_1` and second moment :math:`m_2` (the
    derivation is in ``docs/initializers.md``).

    Args:
      mean: :math:`E\xi > 0` (2/3 for Beta(2, 1)).
      second_moment: :math:`E\xi^2`, at least ``mean**2`` and below 1 (1/2 for Beta(2, 1)).

    Returns:
      :math:`a^*` as a Python float.

    Example:
      >>> from rectax.initializers import rai_constant
      >>> round(rai_constant(), 4)
      0.6007
    """
    if not mean > 0:
        raise ValueError(f"rectax.initializers.rai: the mean must be > 0, got {mean!r}.")
    if not mean**2 <= second_moment < 1:
        raise ValueError(
            "rectax.initializers.rai: need mean**2 <= second_moment < 1 (the special entry "
            f"alone must keep the bound below 1), got mean={mean!r}, "
            f"second_moment={second_moment!r}."
        )
    c = _SQRT_2_OVER_PI * mean
    return -c + math.sqrt(c * c + 2.0 * (1.0 - second_moment))


def rai_sigma(in_features: int, *, distribution: AsymmetricDistribution = BETA_2_1) -> float:
    r"""The standard deviation of RAI's symmetric entries, :math:`a^*/\sqrt{N_{in}}`.

    Args:
      in_features: the layer's fan-in :math:`N_{in}` (``> 0``).
      distribution: the positive distribution (default Beta(2, 1)); only its moments matter.

    Returns:
      :math:`\sigma` as a Python float.

    Example:
      >>> from rectax.initializers import rai_sigma
      >>> round(rai_sigma(100), 5)
      0.06007
    """
    if not in_features > 0:
        raise ValueError(f"rectax.initializers.rai: in_features must be > 0, got {in_features}.")
    a = rai_constant(distribution.mean, distribution.second_moment)
    return a / math.sqrt(in_features)


def rai(
    key: Array,
    in_features: int,
    out_features: int,
    *,
    distribution: AsymmetricDistribution = BETA_2_1,
    dtype: DTypeLike | None = None,
) -> tuple[Array, Array]:
    r"""Randomized asymmetric initialization of a Dense layer (Lu et al. 2020).

    .. math::
      V = [W^\top \mid b],\quad V_{j,k_j} = \xi_j \sim P,\ k_j \sim U\{0, \dots, N_{in}\},\quad
      V_{jk} \sim N\Big(0, \frac{a^{*2}}{N_{in}}\Big) \text{ otherwise}

    with :math:`a^*` from :func:`rai_constant` (0.6007 for Beta(2, 1)): the next layer's second
    moment is bounded by the previous one's (the derivation is in ``docs/initializers.md``).
    Sampled in float32 or wider, then cast.

    Args:
      key: PRNG key.
      in_features: the layer's input size :math:`N_{in}`.
      out_features: the layer's output size :math:`N_{out}`.
      distribution: the positive distribution :math:`P` (default :data:`BETA_2_1`).
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
    sigma = rai_sigma(in_features, distribution=distribution)
    dtype = resolve_dtype("rai", dtype)
    if jnp.issubdtype(dtype, jnp.complexfloating):
        raise TypeError("rectax.initializers.rai: RAI is defined for real dtypes only.")
    wide = sampling_dtype(dtype)
    k_normal, k_col, k_xi = jax.random.split(key, 3)
    v = sigma * jax.random.normal(k_normal, (out_features, in_features + 1), wide)
    col = jax.random.randint(k_col, (out_features,), 0, in_features + 1)
    xi = distribution.sample(k_xi, (out_features,), wide).astype(wide)
    v = v.at[jnp.arange(out_features), col].set(xi)
    return v[:, :in_features].T.astype(dtype), v[:, in_features].astype(dtype)


class RAIInitializers(NamedTuple):
    """A kernel/bias initializer pair drawing one RAI sample (see :func:`rai_initializers`)."""

    kernel: Initializer
    bias: Initializer


def rai_initializers(
    key: Array, in_features: int, *, distribution: AsymmetricDistribution = BETA_2_1
) -> RAIInitializers:
    r"""RAI as a Flax ``kernel_init``/``bias_init`` pair that share one draw.

    Flax passes the kernel and bias initializers different keys, but RAI draws ``[W^T | b]``
    jointly (one positive entry per row, in either part). Both initializers therefore ignore the
    key Flax passes and recompute the same draw, :func:`rai` ``(key, in_features, out)``, from
    the ``key`` given here; the kernel returns its ``W`` part, the bias its ``b`` part. Use a
    distinct ``key`` per layer. Works with ``flax.linen.Dense`` and ``flax.nnx.Linear``, and
    under ``jit``.

    Args:
      key: PRNG key of this layer's draw.
      in_features: the layer's input size (checked against the kernel shape).
      distribution: see :func:`rai`.

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
    rai_sigma(in_features, distribution=distribution)  # validate now

    def kernel(
        _key: Array, shape: Sequence[int], dtype: DTypeLike | None = None, out_sharding=None
    ) -> Array:
        shape = tuple(shape)
        if len(shape) != 2 or shape[0] != in_features:
            raise ValueError(
                f"rectax.initializers.rai_initializers: expected a Dense kernel of shape "
                f"({in_features}, out_features), got {shape}."
            )
        return rai(key, in_features, shape[1], distribution=distribution, dtype=dtype)[0]

    def bias(
        _key: Array, shape: Sequence[int], dtype: DTypeLike | None = None, out_sharding=None
    ) -> Array:
        shape = tuple(shape)
        if len(shape) != 1:
            raise ValueError(
                "rectax.initializers.rai_initializers: expected a bias of shape "
                f"(out_features,), got {shape}."
            )
        return rai(key, in_features, shape[0], distribution=distribution, dtype=dtype)[1]

    return RAIInitializers(kernel, bias)
