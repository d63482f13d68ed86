"""Pieces shared by :mod:`rectax.linen` and :mod:`rectax.nnx` that do not need Flax."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from . import _activations, _catalog, diagnostics

Array = jax.Array
Initializer = Callable[..., Array]
Sow = Callable[..., Any]
"""A module's ``sow`` with its collection bound (``'intermediates'`` in Linen,
``nnx.Intermediate`` in NNX): ``sow(name, value, reduce_fn=..., init_fn=...)``."""


def default(activation: str, hyperparameter: str) -> Any:
    """The default of an activation's hyperparameter (from :mod:`rectax._catalog`)."""
    info = _catalog.by_name(activation)
    assert info is not None, activation
    return info.hyperparameters[hyperparameter]


RRELU_LOWER: float = default("rrelu", "lower")
RRELU_UPPER: float = default("rrelu", "upper")
NECRO_SLOPE: float = default("necro_relu", "negative_slope")


def resolve_function(activation: str | Callable[..., Array]) -> Callable[..., Array]:
    """Maps an activation name to a function: rectax's (names and aliases) first, then jax.nn's.

    Args:
      activation: a name such as ``"relu"``, ``"leaky"`` or ``"necro_relu"``, or a callable
        (returned as is).

    Returns:
      The activation function.

    Raises:
      ValueError: for an unknown name.
    """
    if callable(activation):
        return activation
    if isinstance(activation, str):
        info = _catalog.by_name(activation)
        if info is not None:
            fixed = _catalog.variant_params(activation)
            return functools.partial(info.fn, **fixed) if fixed else info.fn
        fn = getattr(jax.nn, activation, None)
        if callable(fn):
            return fn
    raise ValueError(
        f"rectax: unknown activation {activation!r}; pass a name from rectax "
        f"({', '.join(_catalog.names())}) or jax.nn, a function, or a module class."
    )


def module_class(activation: Any) -> type | None:
    """The module class behind ``activation`` (a class or a ``functools.partial`` of one)."""
    if isinstance(activation, type):
        return activation
    if isinstance(activation, functools.partial) and isinstance(activation.func, type):
        return activation.func
    return None


def module_kwargs(activation: Any) -> dict[str, Any]:
    """The keyword arguments a ``functools.partial`` of a module class carries."""
    if isinstance(activation, functools.partial):
        return dict(activation.keywords)
    return {}


def kernel_init_for(
    activation: Any, kernel_init: Initializer | str, layout: Any = None
) -> Initializer:
    """Resolves a builder's ``kernel_init``: an initializer as is, ``"auto"`` matched.

    Args:
      activation: the builder's ``activation``.
      kernel_init: an initializer or ``"auto"``.
      layout: kernel layout for ``rectax.initializers.for_activation`` (``"conv"`` for HWIO
        convolution kernels, None for dense ``(in, out)``).

    Returns:
      The initializer. ``"auto"`` calls ``rectax.initializers.for_activation`` (imported here,
      so the modules import without it).
    """
    if not isinstance(kernel_init, str):
        return kernel_init
    if kernel_init != "auto":
        raise ValueError(
            f"rectax: kernel_init must be an initializer or 'auto', got {kernel_init!r}."
        )
    from rectax import initializers

    target, params = init_target(activation)
    return initializers.for_activation(target, layout=layout, **params)


InitTarget = Callable[[tuple[Any, ...], dict[str, Any]], tuple[Any, dict[str, Any]]]
_INIT_TARGETS: dict[type, InitTarget] = {}


def register_init_target(cls: type, rule: InitTarget) -> None:
    """Says what ``kernel_init="auto"`` matches for an activation module class (and subclasses).

    ``rule(args, kwargs)`` gets a ``functools.partial``'s positional and keyword arguments (empty
    for a bare class) and returns ``(activation, params)`` for ``for_activation``. Dispatch is by
    the class itself, never by its name: a user's class called ``Activation`` is not rectax's.
    """
    _INIT_TARGETS[cls] = rule


def module_target(activation: str, cls: type) -> InitTarget:
    """The rule of a module class that computes ``activation`` with hyperparameters it takes.

    A hyperparameter ``p`` is read from the constructor argument ``p`` or, for a learned one,
    ``p_init`` (flax's ``negative_slope_init``); unset ones take the class's own default (so
    flax's PReLU gives its 0.01, rectax's 0.25), then the activation's.
    """
    info = _catalog.by_name(activation)
    assert info is not None, activation
    # The constructor's own signature (an NNX class's metaclass hides it from signature(cls)).
    init = inspect.signature(cls.__init__)  # type: ignore[misc]
    signature = init.replace(parameters=list(init.parameters.values())[1:])

    def rule(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        bound = signature.bind_partial(*args, **kwargs)
        bound.apply_defaults()
        given = bound.arguments
        params = {}
        for name, fallback in info.hyperparameters.items():
            params[name] = given.get(name, given.get(f"{name}_init", fallback))
        return info.name, params

    return rule


def register_modules(namespace: Mapping[str, Any], wrapper: type) -> None:
    """Registers a Flax API's activation modules: each catalogued ``module`` found in
    ``namespace`` (``PReLU``, ``RReLU``, ``NecroReLU``) and the ``Activation`` wrapper."""
    for info in _catalog.all_activations():
        if info.module is not None:
            cls = namespace[info.module]
            register_init_target(cls, module_target(info.name, cls))
    register_init_target(wrapper, activation_target)


def activation_target(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """The rule of ``Activation(fn, params=None, **kwargs)``: ``fn`` with its hyperparameters."""
    kwargs = dict(kwargs)
    fn = args[0] if args else kwargs.pop("fn")
    for not_a_hyperparameter in ("record_stats", "rngs", "parent", "name"):
        kwargs.pop(not_a_hyperparameter, None)
    params = args[1] if len(args) > 1 else kwargs.pop("params", None)
    return fn, merge_params(params, kwargs)


def init_target(activation: Any) -> tuple[Any, dict[str, Any]]:
    """What ``kernel_init="auto"`` should match for a builder's ``activation``.

    Args:
      activation: a function, a name, or an activation module class registered with
        :func:`register_init_target` (rectax's, and flax's ``PReLU``), or a ``functools.partial``
        of one.

    Returns:
      ``(activation, params)`` for ``rectax.initializers.for_activation``.

    Raises:
      ValueError: for a module class nothing is registered for.
    """
    cls = module_class(activation)
    if cls is None:
        return activation, {}
    rule = next((_INIT_TARGETS[k] for k in cls.__mro__ if k in _INIT_TARGETS), None)
    if rule is None:
        raise ValueError(
            f"rectax: cannot pick kernel_init='auto' for module class {cls.__qualname__}; pass "
            "kernel_init."
        )
    kwargs = module_kwargs(activation)
    args = tuple(activation.args) if isinstance(activation, functools.partial) else ()
    return rule(args, kwargs)


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


def merge_params(params: Mapping[str, Any] | None, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """An ``Activation``'s hyperparameters: the ``params`` mapping, then ``**kwargs`` over it."""
    return {**(params or {}), **kwargs}


# --------------------------------------------------------------------------- forward passes
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


def prelu_forward(x: Array, slope: Array, axis: int, sow: Sow | None) -> Array:
    """PReLU's forward pass with its slope (shared, or one per index of ``axis``)."""
    return recorded(sow, x, _activations.prelu(x, check_slope_axis(x, slope, axis)), axis)


def rrelu_key(deterministic: bool, rng: Array | None, draw: Callable[[], Array]) -> Array | None:
    """RReLU's key: None in evaluation, else the ``rng`` call argument or, failing it, ``draw()``
    (the module's stream)."""
    if deterministic:
        return None
    return rng if rng is not None else draw()


def rrelu_forward(
    x: ArrayLike, key: Array | None, lower: float, upper: float, sow: Sow | None
) -> Array:
    """RReLU's forward pass: random slopes with ``key``, the mean slope with None."""
    return recorded(sow, x, _activations.rrelu(x, key, lower, upper))


def crelu_forward(x: ArrayLike, axis: int, sow: Sow | None) -> Array:
    """CReLU's forward pass; its statistics are those of its input (one unit per input)."""
    return recorded(sow, x, _activations.crelu(x, axis), axis)


def necro_forward(x: ArrayLike, negative_slope: float, sow: Sow | None) -> Array:
    """NecroReLU's forward pass."""
    return recorded(sow, x, _activations.necro_relu(x, negative_slope))


def activation_forward(
    fn: Callable[..., Array], params: Mapping[str, Any], x: ArrayLike, sow: Sow | None
) -> Array:
    """``Activation``'s forward pass: ``fn(x, **params)``."""
    return recorded(sow, x, fn(x, **params))


# --------------------------------------------------------------------------- builders
def width(activation: Any) -> int:
    """Output features per input feature of a builder's ``activation`` (the catalog's
    ``width``: 2 for CReLU, 1 for elementwise ones and for anything not catalogued), so that
    NNX builders give the next layer the right in-features.

    Args:
      activation: a function, a name, a module class or a ``functools.partial`` of one.
    """
    try:
        target, _ = init_target(activation)
    except ValueError:  # a module class nothing is registered for: assumed elementwise
        return 1
    while isinstance(target, functools.partial):
        target = target.func
    info = _catalog.by_name(target) if isinstance(target, str) else _catalog.by_function(target)
    return 1 if info is None else info.width


def accepts(fn: Callable[..., Any], arg: str) -> bool:
    """Whether ``fn``'s signature names ``arg`` (False where it has none)."""
    try:
        return arg in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def make_activation(
    activation: Any, record_stats: bool, wrap: Callable[..., Any], **init_kwargs: Any
) -> Callable[[], Any]:
    """A factory of fresh activation modules for a builder's ``activation``.

    Args:
      activation: a module class (or ``functools.partial`` of one), a function or a name.
      record_stats: passed to module classes that take it.
      wrap: the API's ``Activation`` class, for functions and names.
      **init_kwargs: passed to module classes whose ``__init__`` takes them (NNX's ``rngs``).

    Returns:
      A function of no arguments that builds one activation module.
    """
    cls: Any = module_class(activation)
    if cls is None:
        fn = resolve_function(activation)
        return lambda: wrap(fn, record_stats=record_stats)
    extra = {k: v for k, v in init_kwargs.items() if accepts(cls.__init__, k)}
    if record_stats and accepts(cls.__init__, "record_stats"):
        extra["record_stats"] = True
    return lambda: activation(**extra)


def call_activation(act: Any, x: Array, deterministic: bool | None) -> Array:
    """Calls a builder's activation module, passing ``deterministic`` where it takes it."""
    if deterministic is not None and accepts(act.__call__, "deterministic"):
        return act(x, deterministic=deterministic)
    return act(x)


# --------------------------------------------------------------------------- gated FFN
_GATE_ACTIVATIONS: dict[int, str] = {
    id(_activations.swiglu): "silu",
    id(_activations.geglu): "gelu",
    id(_activations.reglu): "relu",
}
_GATED_UNITS = {
    "swiglu": _activations.swiglu,
    "geglu": _activations.geglu,
    "reglu": _activations.reglu,
}


def resolve_gated(unit: str | Callable[..., Array]) -> Callable[..., Array]:
    """A gated unit ``unit(gate, up)``: a name (``"swiglu"``, ``"geglu"``, ``"reglu"``) or a
    callable (returned as is, e.g. ``functools.partial(rectax.swiglu, bits=4)``)."""
    if callable(unit):
        return unit
    fn = _GATED_UNITS.get(unit.lower()) if isinstance(unit, str) else None
    if fn is None:
        raise ValueError(
            f"rectax GatedMLP: unknown gated unit {unit!r}; pass one of "
            f"{', '.join(_GATED_UNITS)} or a function of (gate, up)."
        )
    return fn


def gate_activation(unit: Callable[..., Array]) -> tuple[str, dict[str, Any]]:
    """The gate's activation of a rectax gated unit (or a ``functools.partial`` of one), with the
    hyperparameters it binds: what ``kernel_init="auto"`` matches for the gate projection."""
    params: dict[str, Any] = {}
    while isinstance(unit, functools.partial):
        params = {**unit.keywords, **params}
        unit = unit.func
    name = _GATE_ACTIVATIONS.get(id(unit))
    if name is None:
        raise ValueError(
            f"rectax GatedMLP: cannot pick kernel_init='auto' for gated unit {unit!r}; pass "
            "kernel_init."
        )
    params.pop("bits", None)
    return name, params


def gated_kernel_inits(
    unit: Callable[..., Array], kernel_init: Initializer | str
) -> tuple[Initializer, Initializer]:
    """``(gate and up projections' init, down projection's init)`` for a ``GatedMLP``.

    ``"auto"``: the gate activation's ``for_activation`` initializer (its gain) for the gate and up
    projections, the linear one (LeCun) for the down projection. An initializer: used for all three.
    """
    if not isinstance(kernel_init, str):
        return kernel_init, kernel_init
    if kernel_init != "auto":
        raise ValueError(
            f"rectax: kernel_init must be an initializer or 'auto', got {kernel_init!r}."
        )
    from rectax import initializers

    name, params = gate_activation(unit)
    return initializers.for_activation(name, **params), initializers.for_activation("linear")
