"""Flax Linen modules for rectax's activations, and MLP/CNN builders with matched initializers.

Twins of :mod:`rectax.nnx`: same class names, hyperparameters, parameter names and numbers.

=================  =========================================================================
module             behaviour
=================  =========================================================================
``PReLU``          learned slope, shared or one per channel (``axis``), initialised at 0.25
``RReLU``          random slope per element in training (rng stream ``'rrelu'``), mean in eval
``NecroReLU``      ReLU forward, leaky derivative backward (:func:`rectax.necro_relu`)
``CReLU``          ``[relu(x), relu(-x)]`` along ``axis`` (:func:`rectax.crelu`): twice as wide
``Activation``     any activation function with fixed hyperparameters, as a module
``MLP``, ``CNN``   builders with ``activation=`` and ``kernel_init="auto"``
``GatedMLP``       a transformer's gated FFN, ``down(unit(gate(x), up(x)))`` (SwiGLU, GeGLU, ReGLU)
=================  =========================================================================

Every activation module names the activation it computes in its ``computes`` class attribute
(``PReLU.computes == "prelu"``), which the builders' ``kernel_init="auto"`` reads. It has
``record_stats: bool = False``; when True it sows a :class:`rectax.diagnostics.UnitStats` summary
of its input under ``('intermediates', 'unit_stats')`` (apply with ``mutable=['intermediates']``).
When False nothing is computed or traced.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
from jax.typing import DTypeLike

import rectax

from . import _layer_parts as parts
from . import _resolve as resolve
from ._functions import PRELU_INIT, check_rrelu
from ._optional import missing_extra

try:
    import flax.linen as nn
    from flax.core import FrozenDict
except ModuleNotFoundError as _error:
    raise missing_extra("rectax.linen", _error) from _error

Array = jax.Array

__all__ = ["CNN", "MLP", "Activation", "CReLU", "GatedMLP", "NecroReLU", "PReLU", "RReLU"]


def _sow(module: Any) -> parts.Sow | None:
    """The module's ``sow`` into ``'intermediates'``, or None when ``record_stats`` is off."""
    return functools.partial(module.sow, "intermediates") if module.record_stats else None


class PReLU(nn.Module):
    """Parametric ReLU (He et al. 2015) with a shared or per-channel learned slope.

    ``y = x`` for ``x >= 0`` and ``a·x`` otherwise (:func:`rectax.prelu`). The slope parameter
    ``'negative_slope'`` has shape ``()`` when ``num_parameters == 1`` and ``(num_parameters,)``
    otherwise, one per index of ``axis``; it is never shaped like spatial dimensions. It is kept in
    ``param_dtype`` and cast to the compute dtype in the forward pass; its gradient comes back in
    ``param_dtype``. Exclude it from weight decay (:func:`rectax.optim.weight_decay_mask`).

    A drop-in for :class:`flax.linen.PReLU`: the same fields in the same positional order
    (``param_dtype``, ``negative_slope_init``) and the same parameter; rectax adds
    ``num_parameters``, ``axis``, ``dtype`` and ``record_stats`` after them. One difference: the
    default slope is 0.25, as in He et al. 2015 and torch; flax's is 0.01 (pass
    ``negative_slope_init=0.01`` to get flax's).

    Attributes:
      param_dtype: dtype of the slope parameter (default float32).
      negative_slope_init: initial slope (default 0.25; flax's default is 0.01).
      num_parameters: 1 for one shared slope, or the number of channels.
      axis: the channel axis for per-channel slopes (default -1).
      dtype: compute dtype; None computes in the input's dtype.
      record_stats: sow :class:`rectax.diagnostics.UnitStats` of the input.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from rectax import linen as rxl
      >>> layer = rxl.PReLU(num_parameters=2)
      >>> variables = layer.init(jax.random.key(0), jnp.ones((1, 2)))
      >>> variables["params"]["negative_slope"]
      Array([0.25, 0.25], dtype=float32)
      >>> layer.apply(variables, jnp.array([[-4.0, 4.0]]))
      Array([[-1.,  4.]], dtype=float32)
    """

    computes: ClassVar[str] = "prelu"

    param_dtype: DTypeLike = jnp.float32
    negative_slope_init: float = PRELU_INIT
    num_parameters: int = 1
    axis: int = -1
    dtype: DTypeLike | None = None
    record_stats: bool = False

    @nn.compact
    def __call__(self, x: Array) -> Array:
        """Applies PReLU.

        Args:
          x: input array.

        Returns:
          ``prelu(x, slope)`` in ``dtype`` (or ``x``'s dtype).
        """
        slope = self.param(
            "negative_slope",
            lambda key, shape, dtype: jnp.full(shape, self.negative_slope_init, dtype),
            parts.slope_shape(self.num_parameters),
            self.param_dtype,
        )
        x = jnp.asarray(x, self.dtype) if self.dtype is not None else jnp.asarray(x)
        return parts.recorded(
            _sow(self), x, rectax.prelu(x, parts.check_slope_axis(x, slope, self.axis)), self.axis
        )


class RReLU(nn.Module):
    """Randomized leaky ReLU (Xu et al. 2015): a random slope per element while training.

    In training (``deterministic=False``) each element's negative slope is drawn from
    ``U(lower, upper)`` with a key from the ``rng_collection`` stream (default ``'rrelu'``, so
    ``apply(..., rngs={'rrelu': key})``) or from the ``rng`` call argument; in evaluation the slope
    is the mean ``(lower + upper)/2``. ``deterministic`` and ``rng`` follow
    :class:`flax.linen.Dropout`: ``deterministic`` is an attribute and a call argument, one of
    which must be set. The call argument is ``rng`` in both twins (:class:`rectax.nnx.RReLU` also
    takes NNX's ``rngs``); Linen cannot name it ``rngs``, which ``Module.apply`` takes for itself.

    Attributes:
      lower: lower bound of the slope (default 1/8, as torch).
      upper: upper bound of the slope (default 1/3, as torch).
      deterministic: evaluation mode if True; None defers to the call argument.
      rng_collection: name of the rng stream.
      record_stats: sow :class:`rectax.diagnostics.UnitStats` of the input.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from rectax import linen as rxl
      >>> x = jnp.array([-1.0, 1.0])
      >>> rxl.RReLU(lower=0.1, upper=0.3).apply({}, x, deterministic=True)
      Array([-0.2,  1. ], dtype=float32)
      >>> y = rxl.RReLU().apply({}, -jnp.ones(3), deterministic=False,
      ...                       rngs={"rrelu": jax.random.key(0)})
      >>> bool(jnp.all((y <= -1 / 8) & (y >= -1 / 3)))
      True
    """

    computes: ClassVar[str] = "rrelu"

    lower: float = parts.RRELU_LOWER
    upper: float = parts.RRELU_UPPER
    deterministic: bool | None = None
    rng_collection: str = "rrelu"
    record_stats: bool = False

    @nn.compact
    def __call__(
        self, x: Array, deterministic: bool | None = None, rng: Array | None = None
    ) -> Array:
        """Applies RReLU.

        Args:
          x: floating input array.
          deterministic: overrides the attribute if given.
          rng: explicit PRNG key for the slopes (training only).

        Returns:
          An array of ``x``'s shape and dtype.
        """
        check_rrelu(self.lower, self.upper)
        deterministic = nn.merge_param("deterministic", self.deterministic, deterministic)
        key = parts.rrelu_key(deterministic, rng, lambda: self.make_rng(self.rng_collection))
        return parts.recorded(_sow(self), x, rectax.rrelu(x, key, self.lower, self.upper))


class NecroReLU(nn.Module):
    """NecroReLU as a module: ReLU forward, derivative ``negative_slope`` for ``x <= 0``.

    See :func:`rectax.necro_relu`.

    Attributes:
      negative_slope: the surrogate derivative on the negative side (default 0.1).
      record_stats: sow :class:`rectax.diagnostics.UnitStats` of the input.

    Example:
      >>> import jax.numpy as jnp
      >>> from rectax import linen as rxl
      >>> rxl.NecroReLU().apply({}, jnp.array([-1.0, 2.0]))
      Array([0., 2.], dtype=float32)
    """

    computes: ClassVar[str] = "necro_relu"

    negative_slope: float = parts.NECRO_SLOPE
    record_stats: bool = False

    @nn.compact
    def __call__(self, x: Array) -> Array:
        """Applies NecroReLU.

        Args:
          x: input array.

        Returns:
          ``rectax.necro_relu(x, negative_slope)``.
        """
        return parts.recorded(_sow(self), x, rectax.necro_relu(x, self.negative_slope))


class CReLU(nn.Module):
    """Concatenated ReLU as a module: ``[relu(x), relu(-x)]`` along ``axis``, twice as wide.

    See :func:`rectax.crelu`. Its unit statistics are those of its input (one unit per input
    feature). :class:`MLP` and :class:`CNN` need nothing more: Flax's layers read their
    in-features from the input.

    Attributes:
      axis: the axis the two halves are concatenated along (default -1).
      record_stats: sow :class:`rectax.diagnostics.UnitStats` of the input.

    Example:
      >>> import jax.numpy as jnp
      >>> from rectax import linen as rxl
      >>> rxl.CReLU().apply({}, jnp.array([-1.0, 2.0]))
      Array([0., 2., 1., 0.], dtype=float32)
    """

    computes: ClassVar[str] = "crelu"

    axis: int = -1
    record_stats: bool = False

    @nn.compact
    def __call__(self, x: Array) -> Array:
        """Applies CReLU.

        Args:
          x: input array.

        Returns:
          ``rectax.crelu(x, axis)``.
        """
        return parts.recorded(_sow(self), x, rectax.crelu(x, self.axis), self.axis)


class _ActivationFields(nn.Module):
    fn: Callable[..., Array]
    params: Mapping[str, Any] = FrozenDict()
    record_stats: bool = False

    @nn.compact
    def __call__(self, x: Array) -> Array:
        """Applies ``fn(x, **params)``.

        Args:
          x: input array.

        Returns:
          The activation's output.
        """
        return parts.recorded(_sow(self), x, self.fn(x, **self.params))


class Activation(_ActivationFields):
    """Wraps an activation function and fixed hyperparameters as a module.

    ``Activation(fn, **params)(x)`` computes ``fn(x, **params)``; ``fn`` may be a rectax or
    jax.nn function, any callable, or a name (``"leaky_relu"``). Hyperparameters can also come as
    a mapping, ``Activation(fn, params={...})``, as in :class:`rectax.nnx.Activation`.

    Args:
      fn: the activation function or its name.
      params: hyperparameters as a mapping (what :meth:`flax.linen.Module.clone` passes);
        ``**kwargs`` override it.
      record_stats: sow :class:`rectax.diagnostics.UnitStats` of the input.
      **kwargs: hyperparameters passed to ``fn``; ``parent`` and ``name`` are Flax's, as for
        any Linen module.

    Example:
      >>> import jax.numpy as jnp
      >>> import rectax as rx
      >>> from rectax import linen as rxl
      >>> act = rxl.Activation(rx.leaky_relu, negative_slope=0.5)
      >>> act.apply({}, jnp.array([-2.0, 2.0]))
      Array([-1.,  2.], dtype=float32)
    """

    computes: ClassVar[str] = resolve.WRAPPED

    def __init__(
        self,
        fn: str | Callable[..., Array],
        params: Mapping[str, Any] | None = None,
        record_stats: bool = False,
        **kwargs: Any,
    ) -> None:
        # Flax's own keywords pass through untouched (unset, Flax picks the parent itself).
        linen = {key: kwargs.pop(key) for key in ("parent", "name") if key in kwargs}
        super().__init__(
            fn=resolve.resolve_function(fn),
            params=FrozenDict({**(params or {}), **kwargs}),
            record_stats=record_stats,
            **linen,
        )


# --------------------------------------------------------------------------- builders
class MLP(nn.Module):
    """A multilayer perceptron: Dense layers with an activation between them (none after the last).

    Attributes:
      features: output widths of the layers, e.g. ``(128, 128, 10)``.
      activation: a function (``rectax.relu``, ``jax.nn.gelu``), a name (``"necro_relu"``), or a
        module class (``rectax.linen.PReLU``, or a ``functools.partial`` of one); module classes
        get a fresh instance per layer.
      kernel_init: an initializer, or ``"auto"`` for
        ``rectax.initializers.for_activation(activation)`` (He for the ReLU family, LeCun for
        SELU, the computed gain otherwise).
      bias_init: bias initializer (zeros).
      dtype: compute dtype of the Dense layers (None: inferred by Flax).
      param_dtype: parameter dtype.
      record_stats: make the activation modules sow their :class:`~rectax.diagnostics.UnitStats`.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from rectax import linen as rxl
      >>> model = rxl.MLP(features=(16, 3), activation="relu",
      ...                 kernel_init=jax.nn.initializers.he_normal())
      >>> params = model.init(jax.random.key(0), jnp.ones((2, 4)))
      >>> model.apply(params, jnp.ones((2, 4))).shape
      (2, 3)
    """

    features: Sequence[int]
    activation: Any = rectax.relu
    # plain callables, not rectax's Initializer protocol: with it, Sphinx's -n build (make
    # docs-test) mis-parses CNN's rendered dataclass signature
    kernel_init: Callable[..., Array] | str = "auto"
    bias_init: Callable[..., Array] = nn.initializers.zeros_init()
    dtype: DTypeLike | None = None
    param_dtype: DTypeLike = jnp.float32
    record_stats: bool = False

    @nn.compact
    def __call__(self, x: Array, deterministic: bool | None = None) -> Array:
        """Runs the MLP.

        Args:
          x: ``(..., in_features)``.
          deterministic: forwarded to activation modules that take it (e.g. :class:`RReLU`).

        Returns:
          ``(..., features[-1])``.
        """
        init = resolve.kernel_init_for(self.activation, self.kernel_init)
        make_act = resolve.make_activation(self.activation, self.record_stats, Activation)
        for i, width in enumerate(self.features):
            x = nn.Dense(
                width,
                kernel_init=init,
                bias_init=self.bias_init,
                dtype=self.dtype,
                param_dtype=self.param_dtype,
                name=f"Dense_{i}",
            )(x)
            if i < len(self.features) - 1:
                x = resolve.call_activation(make_act(), x, deterministic)
        return x


class CNN(nn.Module):
    """A small CNN for NHWC images: [Conv, activation, 2x2 average pool] blocks, then an MLP head.

    Attributes:
      features: channels of the conv blocks, e.g. ``(16, 32)``.
      dense: widths of the hidden Dense layers of the head.
      num_classes: output width.
      kernel_size: convolution window, ``(height, width)`` or an int for a square one.
      activation: as for :class:`MLP`.
      kernel_init: an initializer, or ``"auto"`` (see :class:`MLP`).
      bias_init: bias initializer (zeros).
      dtype: compute dtype.
      param_dtype: parameter dtype.
      record_stats: make the activation modules sow their :class:`~rectax.diagnostics.UnitStats`.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from rectax import linen as rxl
      >>> model = rxl.CNN(features=(4,), dense=(8,), num_classes=3,
      ...                 kernel_init=jax.nn.initializers.he_normal())
      >>> params = model.init(jax.random.key(0), jnp.ones((2, 8, 8, 1)))
      >>> model.apply(params, jnp.ones((2, 8, 8, 1))).shape
      (2, 3)
    """

    features: Sequence[int] = (16, 32)
    dense: Sequence[int] = (64,)
    num_classes: int = 10
    kernel_size: int | tuple[int, int] = (3, 3)
    activation: Any = rectax.relu
    kernel_init: Callable[..., Array] | str = "auto"
    bias_init: Callable[..., Array] = nn.initializers.zeros_init()
    dtype: DTypeLike | None = None
    param_dtype: DTypeLike = jnp.float32
    record_stats: bool = False

    @nn.compact
    def __call__(self, x: Array, deterministic: bool | None = None) -> Array:
        """Runs the CNN.

        Args:
          x: ``(batch, height, width, channels)``.
          deterministic: forwarded to activation modules that take it (e.g. :class:`RReLU`).

        Returns:
          ``(batch, num_classes)`` logits.
        """
        init = resolve.kernel_init_for(self.activation, self.kernel_init, layout="conv")
        make_act = resolve.make_activation(self.activation, self.record_stats, Activation)
        for i, channels in enumerate(self.features):
            x = nn.Conv(
                channels,
                parts.pair(self.kernel_size),
                kernel_init=init,
                bias_init=self.bias_init,
                dtype=self.dtype,
                param_dtype=self.param_dtype,
                name=f"Conv_{i}",
            )(x)
            x = resolve.call_activation(make_act(), x, deterministic)
            x = nn.avg_pool(x, (2, 2), strides=(2, 2))
        x = x.reshape(x.shape[0], -1)
        return MLP(
            features=(*self.dense, self.num_classes),
            activation=self.activation,
            kernel_init=self.kernel_init,
            bias_init=self.bias_init,
            dtype=self.dtype,
            param_dtype=self.param_dtype,
            record_stats=self.record_stats,
            name="head",
        )(x, deterministic)


class GatedMLP(nn.Module):
    """A gated feed-forward block: ``down(unit(gate(x), up(x)))`` (Shazeer 2020).

    The FFN of Llama, PaLM and Gemma with ``unit=rectax.swiglu`` (the default), of T5.1.1 and
    Gemma with ``rectax.geglu``. Three bias-free (by default) Dense layers named ``gate``, ``up``
    and ``down``, as :class:`rectax.nnx.GatedMLP`'s.

    Attributes:
      hidden: width of the gate and up projections.
      features: output width (None: the input's width).
      unit: ``"swiglu"``, ``"geglu"``, ``"reglu"`` or any function of ``(gate, up)``, e.g.
        ``functools.partial(rectax.swiglu, bits=4)``.
      kernel_init: an initializer for all three, or ``"auto"``: the gate activation's
        ``rectax.initializers.for_activation`` (its gain) for ``gate`` and ``up``, LeCun for
        ``down``.
      use_bias: add biases (default False, as Llama and Gemma).
      bias_init: bias initializer (zeros).
      dtype: compute dtype (None: inferred by Flax).
      param_dtype: parameter dtype.
      record_stats: sow the :class:`~rectax.diagnostics.UnitStats` of the gate's pre-activation
        and the unit's output.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from rectax import linen as rxl
      >>> block = rxl.GatedMLP(hidden=16)
      >>> params = block.init(jax.random.key(0), jnp.ones((2, 4)))
      >>> block.apply(params, jnp.ones((2, 4))).shape
      (2, 4)
    """

    hidden: int
    features: int | None = None
    unit: str | Callable[..., Array] = rectax.swiglu
    kernel_init: Callable[..., Array] | str = "auto"
    use_bias: bool = False
    bias_init: Callable[..., Array] = nn.initializers.zeros_init()
    dtype: DTypeLike | None = None
    param_dtype: DTypeLike = jnp.float32
    record_stats: bool = False

    @nn.compact
    def __call__(self, x: Array) -> Array:
        """Applies the block.

        Args:
          x: ``(..., in_features)``.

        Returns:
          ``(..., features)`` (``in_features`` if ``features`` is None).
        """
        unit = resolve.resolve_gated(self.unit)
        inner, outer = resolve.gated_kernel_inits(unit, self.kernel_init)
        dense = functools.partial(
            nn.Dense,
            use_bias=self.use_bias,
            bias_init=self.bias_init,
            dtype=self.dtype,
            param_dtype=self.param_dtype,
        )
        gate = dense(self.hidden, kernel_init=inner, name="gate")(x)
        up = dense(self.hidden, kernel_init=inner, name="up")(x)
        out = self.features if self.features is not None else x.shape[-1]
        hidden = parts.recorded(_sow(self), gate, unit(gate, up))
        return dense(out, kernel_init=outer, name="down")(hidden)


# flax's own PReLU computes prelu (its default slope, 0.01, read from its signature).
resolve.FLAX_COMPUTES[nn.PReLU] = "prelu"
