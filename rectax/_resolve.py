"""What a Flax layer's ``activation``, ``unit`` and ``kernel_init`` arguments mean (no Flax here).

A builder's ``activation`` is a function, a catalog name, or a module class (or a
``functools.partial`` of one). ``kernel_init="auto"`` asks it for its init target through one
protocol, :func:`init_target`: a function or a name is its own target; a module class names the
activation it computes in its ``computes`` class attribute.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeGuard

import jax

from . import _functions
from ._core import _catalog
from .initializers import for_activation
from .initializers._variance import Initializer

Array = jax.Array

WRAPPED = "fn"
"""``computes`` of the ``Activation`` wrappers: they compute the function given as ``fn``."""

FLAX_COMPUTES: dict[type, str] = {}
"""``computes`` of Flax's own activation modules (``flax.linen.PReLU``, ``flax.nnx.PReLU``),
which cannot carry rectax's attribute; filled by :mod:`rectax.linen` and :mod:`rectax.nnx`."""


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


def init_target(activation: Any) -> tuple[Any, dict[str, Any]]:
    """What ``kernel_init="auto"`` matches for a builder's ``activation``.

    A function or a name is its own target. A module class (or a ``functools.partial`` of one)
    computes the catalog activation named by its ``computes`` class attribute (inherited by
    subclasses); each hyperparameter ``p`` is the constructor's argument ``p`` or, for a learned
    one, ``p_init`` (flax's ``negative_slope_init``), unset ones the class's own default (flax's
    PReLU gives its 0.01, rectax's 0.25), then the activation's. The ``Activation`` wrappers
    (``computes = WRAPPED``) compute their ``fn`` with their hyperparameters.

    Args:
      activation: a function, a name, a module class or a ``functools.partial`` of one.

    Returns:
      ``(activation, params)`` for ``rectax.initializers.for_activation``.

    Raises:
      ValueError: for a module class that does not say what it computes.
    """
    cls = module_class(activation)
    if cls is None:
        return activation, {}
    computes = getattr(cls, "computes", None)
    computes = next((FLAX_COMPUTES[k] for k in cls.__mro__ if k in FLAX_COMPUTES), computes)
    if not isinstance(computes, str):
        raise ValueError(
            f"rectax: cannot pick kernel_init='auto' for module class {cls.__qualname__}; pass "
            "kernel_init."
        )
    args, kwargs = (
        (activation.args, activation.keywords)
        if isinstance(activation, functools.partial)
        else ((), {})
    )
    # The constructor's own signature (an NNX class's metaclass hides it from signature(cls)).
    bound = inspect.signature(cls.__init__).bind_partial(None, *args, **kwargs)  # type: ignore[misc]
    bound.apply_defaults()
    given = bound.arguments
    if computes == WRAPPED:
        return given["fn"], {**(given.get("params") or {}), **given.get("kwargs", {})}
    info = _catalog.by_name(computes)
    assert info is not None, computes
    params = {p: given.get(p, given.get(f"{p}_init", d)) for p, d in info.hyperparameters.items()}
    return info.name, params


def _given(kernel_init: Initializer | str) -> TypeGuard[Initializer]:
    """True for an initializer, False for ``"auto"``; raises for any other string."""
    if not isinstance(kernel_init, str):
        return True
    if kernel_init != "auto":
        raise ValueError(
            f"rectax: kernel_init must be an initializer or 'auto', got {kernel_init!r}."
        )
    return False


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
      The initializer. ``"auto"`` calls ``rectax.initializers.for_activation``.
    """
    if _given(kernel_init):
        return kernel_init
    target, params = init_target(activation)
    return for_activation(target, layout=layout, **params)


def width(activation: Any) -> int:
    """Output features per input feature of a builder's ``activation`` (the catalog's
    ``width``: 2 for CReLU, 1 for elementwise ones and for anything not catalogued), so that
    NNX builders give the next layer the right in-features.

    Args:
      activation: a function, a name, a module class or a ``functools.partial`` of one.
    """
    try:
        target, _ = init_target(activation)
    except ValueError:  # a module class that does not say what it computes: elementwise
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
    id(_functions.swiglu): "silu",
    id(_functions.geglu): "gelu",
    id(_functions.reglu): "relu",
}
_GATED_UNITS = {
    "swiglu": _functions.swiglu,
    "geglu": _functions.geglu,
    "reglu": _functions.reglu,
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
    if _given(kernel_init):
        return kernel_init, kernel_init
    name, params = gate_activation(unit)
    return for_activation(name, **params), for_activation("linear")
