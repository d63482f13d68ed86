"""Flax NNX modules for rectax's activations, and MLP/CNN builders with matched initializers.

Twins of :mod:`rectax.linen` (its table lists them): ``PReLU``, ``RReLU``, ``NecroReLU``,
``CReLU``, ``Activation``, the ``MLP`` and ``CNN`` builders and ``GatedMLP``, with the same class
names, hyperparameters, parameter names and numbers. They differ where NNX does: modules are
built eagerly (builders take the input width and ``rngs``), ``RReLU`` keeps its own stream.

Every activation module names the activation it computes in its ``computes`` class attribute
(``PReLU.computes == "prelu"``), which the builders' ``kernel_init="auto"`` reads. It has
``record_stats: bool = False``; when True it sows a :class:`rectax.diagnostics.UnitStats` summary
of its input as an ``nnx.Intermediate`` named ``'unit_stats'``; collect it with
``nnx.capture(model, nnx.Intermediate)``. When False nothing is computed or traced. All activation
modules accept (and, except :class:`RReLU`, ignore) ``rngs`` so that builders can construct any of
them the same way.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
from jax.typing import DTypeLike

import rectax

from . import _layer_parts as parts
from . import _resolve as resolve
from ._functions import PRELU_INIT, check_rrelu
from ._optional import missing_extra
from .initializers._variance import Initializer

try:
    from flax import nnx
    from flax.nnx.nn import dtypes as flax_dtypes
except ModuleNotFoundError as _error:
    raise missing_extra("rectax.nnx", _error) from _error

Array = jax.Array

_ZEROS = nnx.initializers.zeros_init()

__all__ = ["CNN", "MLP", "Activation", "CReLU", "GatedMLP", "NecroReLU", "PReLU", "RReLU"]


def _sow(module: Any) -> parts.Sow | None:
    """The module's ``sow`` of an ``nnx.Intermediate``, or None when ``record_stats`` is off."""
    return functools.partial(module.sow, nnx.Intermediate) if module.record_stats else None


class PReLU(nnx.Module):
    """Parametric ReLU (He et al. 2015) with a shared or per-channel learned slope.

    ``y = x`` for ``x >= 0`` and ``a·x`` otherwise (:func:`rectax.prelu`). The slope
    ``negative_slope`` is an ``nnx.Param`` of shape ``()`` when ``num_parameters == 1`` and
    ``(num_parameters,)`` otherwise, one per index of ``axis``. It is kept in ``param_dtype`` and
    cast to the compute dtype in the forward pass (a float32 slope never promotes a bfloat16
    activation); its gradient comes back in ``param_dtype``. Exclude it from weight decay
    (:func:`rectax.optim.weight_decay_mask`).

    A drop-in for :class:`flax.nnx.PReLU`: the same arguments (``negative_slope_init`` first,
    then keyword-only ``dtype``, ``param_dtype``, ``promote_dtype``,
    ``negative_slope_metadata``); rectax adds ``num_parameters``, ``axis`` and ``record_stats``.
    One difference: the default slope is 0.25, as in He et al. 2015 and torch; flax's is 0.01.

    Args:
      negative_slope_init: initial slope (default 0.25; flax's default is 0.01).
      num_parameters: 1 for one shared slope, or the number of channels.
      axis: the channel axis for per-channel slopes (default -1).
      dtype: compute dtype; None computes in the input's dtype.
      param_dtype: dtype of the slope parameter (default float32).
      promote_dtype: flax's dtype promotion function, used when ``dtype`` is given.
      negative_slope_metadata: metadata of the ``nnx.Param`` (e.g. sharding), as in flax.
      record_stats: sow :class:`rectax.diagnostics.UnitStats` of the input.
      rngs: ignored (the init is constant); accepted for a uniform constructor.

    Example:
      >>> import jax.numpy as jnp
      >>> from rectax import nnx as rxn
      >>> layer = rxn.PReLU(num_parameters=2)
      >>> layer.negative_slope[...]
      Array([0.25, 0.25], dtype=float32)
      >>> layer(jnp.array([[-4.0, 4.0]]))
      Array([[-1.,  4.]], dtype=float32)
    """

    computes: ClassVar[str] = "prelu"

    def __init__(
        self,
        negative_slope_init: float = PRELU_INIT,
        *,
        num_parameters: int = 1,
        axis: int = -1,
        dtype: DTypeLike | None = None,
        param_dtype: DTypeLike = jnp.float32,
        promote_dtype: Callable[..., Any] = flax_dtypes.promote_dtype,
        negative_slope_metadata: Mapping[str, Any] = MappingProxyType({}),
        record_stats: bool = False,
        rngs: nnx.Rngs | None = None,
    ) -> None:
        del rngs
        self.num_parameters = num_parameters
        self.axis = axis
        self.dtype = dtype
        self.param_dtype = param_dtype
        self.promote_dtype = promote_dtype
        self.record_stats = record_stats
        self.negative_slope = nnx.Param(
            jnp.full(parts.slope_shape(num_parameters), negative_slope_init, param_dtype),
            **negative_slope_metadata,
        )

    def __call__(self, x: Array) -> Array:
        """Applies PReLU.

        Args:
          x: input array.

        Returns:
          ``prelu(x, slope)`` in ``dtype`` (or ``x``'s dtype).
        """
        x = jnp.asarray(x)
        slope = self.negative_slope[...]
        if self.dtype is not None:
            x, slope = self.promote_dtype((x, slope), dtype=self.dtype)
        return parts.recorded(
            _sow(self), x, rectax.prelu(x, parts.check_slope_axis(x, slope, self.axis)), self.axis
        )


class RReLU(nnx.Module):
    """Randomized leaky ReLU (Xu et al. 2015): a random slope per element while training.

    Handles randomness like :class:`flax.nnx.Dropout`: with ``deterministic=False`` (training,
    the default, as Dropout) each element's negative slope is drawn from ``U(lower, upper)`` with
    a key from the ``rng_collection`` stream (default ``'rrelu'``, falling back to ``'default'``)
    of the ``rngs`` given to the constructor (forked) or to the call; with ``deterministic=True``
    the slope is ``(lower + upper)/2``. ``model.eval()`` / ``model.train()`` and ``nnx.view``
    switch it. A key can also come as ``rng=key``, the name :class:`rectax.linen.RReLU` (and
    :class:`flax.linen.Dropout`) use, so both twins can be called the same way.

    Args:
      lower: lower bound of the slope (default 1/8, as torch).
      upper: upper bound of the slope (default 1/3, as torch).
      deterministic: evaluation mode if True (default False).
      rng_collection: name of the rng stream.
      record_stats: sow :class:`rectax.diagnostics.UnitStats` of the input.
      rngs: an ``nnx.Rngs`` or ``RngStream`` for the slopes, or None.

    Example:
      >>> import jax.numpy as jnp
      >>> from flax import nnx
      >>> from rectax import nnx as rxn
      >>> layer = rxn.RReLU(lower=0.1, upper=0.3, rngs=nnx.Rngs(0))
      >>> y = layer(-jnp.ones(3))
      >>> bool(jnp.all((y <= -0.1) & (y >= -0.3)))
      True
      >>> layer.eval()
      >>> layer(jnp.array([-1.0, 1.0]))
      Array([-0.2,  1. ], dtype=float32)
    """

    computes: ClassVar[str] = "rrelu"

    def __init__(
        self,
        lower: float = parts.RRELU_LOWER,
        upper: float = parts.RRELU_UPPER,
        *,
        deterministic: bool = False,
        rng_collection: str = "rrelu",
        record_stats: bool = False,
        rngs: nnx.Rngs | nnx.RngStream | None = None,
    ) -> None:
        check_rrelu(lower, upper)
        self.lower = lower
        self.upper = upper
        self.deterministic = deterministic
        self.rng_collection = rng_collection
        self.record_stats = record_stats
        self.rngs: nnx.RngStream | None
        if isinstance(rngs, nnx.Rngs):
            self.rngs = rngs[rng_collection].fork()
        elif isinstance(rngs, nnx.RngStream):
            self.rngs = rngs.fork()
        elif rngs is None:
            self.rngs = nnx.data(None)
        else:
            raise TypeError(f"rectax RReLU: rngs must be Rngs, RngStream or None, got {rngs!r}.")

    def __call__(
        self,
        x: Array,
        *,
        deterministic: bool | None = None,
        rng: Array | None = None,
        rngs: nnx.Rngs | nnx.RngStream | Array | None = None,
    ) -> Array:
        """Applies RReLU.

        Args:
          x: floating input array.
          deterministic: overrides the attribute if given.
          rng: a PRNG key for the slopes (training only), as in :class:`rectax.linen.RReLU`.
          rngs: a key, ``RngStream`` or ``Rngs`` that overrides the constructor's (NNX's name).

        Returns:
          An array of ``x``'s shape and dtype.
        """
        if rng is not None and rngs is not None:
            raise ValueError("rectax RReLU: pass rng or rngs, not both.")
        det = self.deterministic if deterministic is None else deterministic
        key = parts.rrelu_key(det, rng, lambda: self._draw(rngs))
        return parts.recorded(_sow(self), x, rectax.rrelu(x, key, self.lower, self.upper))

    def _draw(self, rngs: nnx.Rngs | nnx.RngStream | Array | None) -> Array:
        source = rngs if rngs is not None else self.rngs
        if source is None:
            raise ValueError(
                "rectax RReLU: deterministic is False but no rngs were given to the "
                "constructor or the call."
            )
        if isinstance(source, nnx.Rngs):
            return source[self.rng_collection]()
        if isinstance(source, nnx.RngStream):
            return source()
        return source

    def set_view(self, deterministic: bool | None = None) -> None:
        """Used by ``nnx.view``.

        Args:
          deterministic: if True, use the mean slope.
        """
        if deterministic is not None:
            self.deterministic = deterministic


class NecroReLU(nnx.Module):
    """NecroReLU as a module: ReLU forward, derivative ``negative_slope`` for ``x <= 0``.

    See :func:`rectax.necro_relu`.

    Args:
      negative_slope: the surrogate derivative on the negative side (default 0.1).
      record_stats: sow :class:`rectax.diagnostics.UnitStats` of the input.
      rngs: ignored; accepted for a uniform constructor.

    Example:
      >>> import jax.numpy as jnp
      >>> from rectax import nnx as rxn
      >>> rxn.NecroReLU()(jnp.array([-1.0, 2.0]))
      Array([0., 2.], dtype=float32)
    """

    computes: ClassVar[str] = "necro_relu"

    def __init__(
        self,
        negative_slope: float = parts.NECRO_SLOPE,
        *,
        record_stats: bool = False,
        rngs: nnx.Rngs | None = None,
    ) -> None:
        del rngs
        self.negative_slope = negative_slope
        self.record_stats = record_stats

    def __call__(self, x: Array) -> Array:
        """Applies NecroReLU.

        Args:
          x: input array.

        Returns:
          ``rectax.necro_relu(x, negative_slope)``.
        """
        return parts.recorded(_sow(self), x, rectax.necro_relu(x, self.negative_slope))


class CReLU(nnx.Module):
    """Concatenated ReLU as a module: ``[relu(x), relu(-x)]`` along ``axis``, twice as wide.

    The twin of :class:`rectax.linen.CReLU` (same arguments). :class:`MLP` and :class:`CNN` give
    the next layer twice the in-features (the catalog's ``width``), for this module,
    ``rectax.crelu`` or ``"crelu"`` alike.

    Args:
      axis: see :class:`rectax.linen.CReLU`; also ``record_stats``.
      rngs: ignored; accepted for a uniform constructor.

    Example:
      >>> import jax.numpy as jnp
      >>> from rectax import nnx as rxn
      >>> rxn.CReLU()(jnp.array([-1.0, 2.0]))
      Array([0., 2., 1., 0.], dtype=float32)
    """

    computes: ClassVar[str] = "crelu"

    def __init__(
        self, axis: int = -1, *, record_stats: bool = False, rngs: nnx.Rngs | None = None
    ) -> None:
        del rngs
        self.axis = axis
        self.record_stats = record_stats

    def __call__(self, x: Array) -> Array:
        """Applies CReLU.

        Args:
          x: input array.

        Returns:
          ``rectax.crelu(x, axis)``.
        """
        return parts.recorded(_sow(self), x, rectax.crelu(x, self.axis), self.axis)


class Activation(nnx.Module):
    """Wraps an activation function and fixed hyperparameters as a module.

    ``Activation(fn, **params)(x)`` computes ``fn(x, **params)``; ``fn`` may be a rectax or
    jax.nn function, any callable, or a name (``"leaky_relu"``). Hyperparameters can also come as
    a mapping, ``Activation(fn, params={...})``, as in :class:`rectax.linen.Activation`.

    Args:
      fn: the activation function or its name.
      params: hyperparameters as a mapping; ``**kwargs`` override it.
      record_stats: sow :class:`rectax.diagnostics.UnitStats` of the input.
      rngs: ignored; accepted for a uniform constructor.
      **kwargs: hyperparameters passed to ``fn``.

    Example:
      >>> import jax.numpy as jnp
      >>> import rectax as rx
      >>> from rectax import nnx as rxn
      >>> rxn.Activation(rx.leaky_relu, negative_slope=0.5)(jnp.array([-2.0, 2.0]))
      Array([-1.,  2.], dtype=float32)
    """

    computes: ClassVar[str] = resolve.WRAPPED

    def __init__(
        self,
        fn: str | Callable[..., Array],
        /,
        params: Mapping[str, Any] | None = None,
        *,
        record_stats: bool = False,
        rngs: nnx.Rngs | None = None,
        **kwargs: Any,
    ) -> None:
        del rngs
        self.fn = resolve.resolve_function(fn)
        # data, not static: a hyperparameter may be an array (per-channel slopes), which nnx
        # refuses as a static attribute
        self.params = nnx.data({**(params or {}), **kwargs})
        self.record_stats = record_stats

    def __call__(self, x: Array) -> Array:
        """Applies ``fn(x, **params)``.

        Args:
          x: input array.

        Returns:
          The activation's output.
        """
        return parts.recorded(_sow(self), x, self.fn(x, **self.params))


# --------------------------------------------------------------------------- builders
class MLP(nnx.Module):
    """A multilayer perceptron: Linear layers with an activation between them (none after the last).

    Args:
      in_features: input width.
      features: output widths of the layers, e.g. ``(128, 128, 10)``.
      activation: a function (``rectax.relu``, ``jax.nn.gelu``), a name (``"necro_relu"``), or a
        module class (``rectax.nnx.PReLU``, or a ``functools.partial`` of one); module classes get
        a fresh instance per layer.
      kernel_init: an initializer, or ``"auto"`` for
        ``rectax.initializers.for_activation(activation)``.
      bias_init: bias initializer (zeros).
      dtype: compute dtype of the Linear layers (None: inferred by Flax).
      param_dtype: parameter dtype.
      record_stats: make the activation modules sow their :class:`~rectax.diagnostics.UnitStats`.
      rngs: ``nnx.Rngs`` for the parameters (and RReLU's stream).

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from flax import nnx
      >>> from rectax import nnx as rxn
      >>> model = rxn.MLP(4, (16, 3), activation="relu",
      ...                 kernel_init=jax.nn.initializers.he_normal(), rngs=nnx.Rngs(0))
      >>> model(jnp.ones((2, 4))).shape
      (2, 3)
    """

    def __init__(
        self,
        in_features: int,
        features: Sequence[int],
        *,
        activation: Any = rectax.relu,
        kernel_init: Initializer | str = "auto",
        bias_init: Initializer = _ZEROS,
        dtype: DTypeLike | None = None,
        param_dtype: DTypeLike = jnp.float32,
        record_stats: bool = False,
        rngs: nnx.Rngs,
    ) -> None:
        init = resolve.kernel_init_for(activation, kernel_init)
        layer = functools.partial(
            nnx.Linear, kernel_init=init, bias_init=bias_init, dtype=dtype, param_dtype=param_dtype
        )
        # a widening activation (CReLU) gives each hidden layer's successor `wide` times the inputs
        wide = resolve.width(activation)
        sizes_in = [in_features, *(wide * f for f in features[:-1])]
        self.layers = nnx.List(
            [layer(a, b, rngs=rngs) for a, b in zip(sizes_in, features, strict=True)]
        )
        # the layers' own initializers and activation, for rectax.recycle.links
        self.kernel_init, self.bias_init, self.activation = init, bias_init, activation
        make_act = resolve.make_activation(activation, record_stats, Activation, rngs=rngs)
        self.activations = nnx.List([make_act() for _ in features[:-1]])

    def __call__(self, x: Array, *, deterministic: bool | None = None) -> Array:
        """Runs the MLP.

        Args:
          x: ``(..., in_features)``.
          deterministic: forwarded to activation modules that take it (e.g. :class:`RReLU`).

        Returns:
          ``(..., features[-1])``.
        """
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.activations):
                x = resolve.call_activation(self.activations[i], x, deterministic)
        return x


class CNN(nnx.Module):
    """A small CNN for NHWC images: [Conv, activation, 2x2 average pool] blocks, then an MLP head.

    Args:
      in_channels: input channels.
      image_size: ``(height, width)`` of the input, or an int for a square one, to size the head.
      features: channels of the conv blocks, e.g. ``(16, 32)``.
      dense: widths of the hidden Linear layers of the head.
      num_classes: output width.
      kernel_size: convolution window, ``(height, width)`` or an int for a square one.
      activation: as for :class:`MLP`.
      kernel_init: an initializer, or ``"auto"``.
      bias_init: bias initializer (zeros).
      dtype: compute dtype.
      param_dtype: parameter dtype.
      record_stats: make the activation modules sow their :class:`~rectax.diagnostics.UnitStats`.
      rngs: ``nnx.Rngs``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from flax import nnx
      >>> from rectax import nnx as rxn
      >>> model = rxn.CNN(1, 8, features=(4,), dense=(8,), num_classes=3,
      ...                 kernel_init=jax.nn.initializers.he_normal(), rngs=nnx.Rngs(0))
      >>> model(jnp.ones((2, 8, 8, 1))).shape
      (2, 3)
    """

    def __init__(
        self,
        in_channels: int,
        image_size: int | tuple[int, int],
        *,
        features: Sequence[int] = (16, 32),
        dense: Sequence[int] = (64,),
        num_classes: int = 10,
        kernel_size: int | tuple[int, int] = (3, 3),
        activation: Any = rectax.relu,
        kernel_init: Initializer | str = "auto",
        bias_init: Initializer = _ZEROS,
        dtype: DTypeLike | None = None,
        param_dtype: DTypeLike = jnp.float32,
        record_stats: bool = False,
        rngs: nnx.Rngs,
    ) -> None:
        init = resolve.kernel_init_for(activation, kernel_init, layout="conv")
        conv = functools.partial(
            nnx.Conv,
            kernel_size=parts.pair(kernel_size),
            kernel_init=init,
            bias_init=bias_init,
            dtype=dtype,
            param_dtype=param_dtype,
        )
        wide = resolve.width(activation)  # CReLU doubles each block's channels
        channels_in = [in_channels, *(wide * f for f in features[:-1])]
        self.convs = nnx.List(
            [conv(a, b, rngs=rngs) for a, b in zip(channels_in, features, strict=True)]
        )
        # for rectax.recycle.links
        self.conv_kernel_init, self.bias_init, self.activation = init, bias_init, activation
        make_act = resolve.make_activation(activation, record_stats, Activation, rngs=rngs)
        self.conv_activations = nnx.List([make_act() for _ in features])
        self.head = MLP(
            wide * parts.cnn_head_features(image_size, features),
            (*dense, num_classes),
            activation=activation,
            kernel_init=kernel_init,
            bias_init=bias_init,
            dtype=dtype,
            param_dtype=param_dtype,
            record_stats=record_stats,
            rngs=rngs,
        )

    def __call__(self, x: Array, *, deterministic: bool | None = None) -> Array:
        """Runs the CNN.

        Args:
          x: ``(batch, height, width, channels)``.
          deterministic: forwarded to activation modules that take it (e.g. :class:`RReLU`).

        Returns:
          ``(batch, num_classes)`` logits.
        """
        for conv, act in zip(self.convs, self.conv_activations, strict=True):
            x = resolve.call_activation(act, conv(x), deterministic)
            x = nnx.avg_pool(x, (2, 2), strides=(2, 2))
        return self.head(x.reshape(x.shape[0], -1), deterministic=deterministic)


class GatedMLP(nnx.Module):
    """A gated feed-forward block: ``down(unit(gate(x), up(x)))`` (Shazeer 2020).

    The twin of :class:`rectax.linen.GatedMLP`, which describes the block: three Linear layers
    ``gate``, ``up`` and ``down``.

    Args:
      in_features: input width.
      hidden: width of the gate and up projections.
      features: output width (None: ``in_features``).
      unit: and ``kernel_init``, ``use_bias``, ``bias_init``, ``dtype``, ``param_dtype``,
        ``record_stats``: as the attributes of :class:`rectax.linen.GatedMLP`.
      rngs: ``nnx.Rngs`` for the parameters.

    Example:
      >>> import jax.numpy as jnp
      >>> from flax import nnx
      >>> from rectax import nnx as rxn
      >>> block = rxn.GatedMLP(4, 16, rngs=nnx.Rngs(0))
      >>> block(jnp.ones((2, 4))).shape
      (2, 4)
    """

    def __init__(
        self,
        in_features: int,
        hidden: int,
        features: int | None = None,
        *,
        unit: str | Callable[..., Array] = rectax.swiglu,
        kernel_init: Initializer | str = "auto",
        use_bias: bool = False,
        bias_init: Initializer = _ZEROS,
        dtype: DTypeLike | None = None,
        param_dtype: DTypeLike = jnp.float32,
        record_stats: bool = False,
        rngs: nnx.Rngs,
    ) -> None:
        self.unit = resolve.resolve_gated(unit)
        self.record_stats = record_stats
        inner, outer = resolve.gated_kernel_inits(self.unit, kernel_init)
        linear = functools.partial(
            nnx.Linear,
            use_bias=use_bias,
            bias_init=bias_init,
            dtype=dtype,
            param_dtype=param_dtype,
            rngs=rngs,
        )
        self.gate = linear(in_features, hidden, kernel_init=inner)
        self.up = linear(in_features, hidden, kernel_init=inner)
        out = features if features is not None else in_features
        self.down = linear(hidden, out, kernel_init=outer)

    def __call__(self, x: Array) -> Array:
        """Applies the block.

        Args:
          x: ``(..., in_features)``.

        Returns:
          ``(..., features)``.
        """
        gate = self.gate(x)
        return self.down(parts.recorded(_sow(self), gate, self.unit(gate, self.up(x))))


# flax's own PReLU computes prelu (its default slope, 0.01, read from its signature).
resolve.FLAX_COMPUTES[nnx.PReLU] = "prelu"
