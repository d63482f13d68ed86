"""Pieces shared by :mod:`rectax.linen` and :mod:`rectax.nnx` that do not need Flax."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

import rectax

Array = jax.Array
Initializer = Callable[..., Array]

PRELU_INIT = 0.25
"""He et al. (2015) and torch initialise PReLU slopes at 0.25 (flax uses 0.01)."""

RRELU_LOWER = 1.0 / 8.0
RRELU_UPPER = 1.0 / 3.0


def resolve_function(activation: str | Callable[..., Array]) -> Callable[..., Array]:
    """Maps an activation name to a function: rectax's first, then ``jax.nn``'s.

    Args:
      activation: a name such as ``"relu"`` or ``"necro_relu"``, or a callable (returned as is).

    Returns:
      The activation function.

    Raises:
      ValueError: for an unknown name.
    """
    if callable(activation):
        return activation
    if isinstance(activation, str):
        fn = getattr(rectax, activation, None)
        if callable(fn) and activation in rectax.__all__:
            return fn
        fn = getattr(jax.nn, activation, None)
        if callable(fn):
            return fn
    raise ValueError(
        f"rectax: unknown activation {activation!r}; pass a name from rectax or jax.nn, a "
        "function, or a module class."
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


def prelu_target(default_slope: float) -> InitTarget:
    """The rule of a PReLU class whose ``negative_slope_init`` defaults to ``default_slope``."""

    def rule(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        del args
        return "prelu", {"slope": float(kwargs.get("negative_slope_init", default_slope))}

    return rule


def rrelu_target(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    del args
    lower = float(kwargs.get("lower", RRELU_LOWER))
    return "rrelu", {"lower": lower, "upper": float(kwargs.get("upper", RRELU_UPPER))}


def necro_target(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    del args
    return "necro_relu", {"negative_slope": float(kwargs.get("negative_slope", 0.1))}


def activation_target(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    fn = args[0] if args else kwargs.pop("fn")
    return fn, {**kwargs.pop("params", {}), **kwargs}


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
    kwargs.pop("record_stats", None)
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


def check_rrelu_bounds(lower: float, upper: float) -> None:
    """Validates RReLU's bounds at construction time."""
    if not lower <= upper:
        raise ValueError(f"rectax RReLU: lower must be <= upper, got {lower} and {upper}.")
