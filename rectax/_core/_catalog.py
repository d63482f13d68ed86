"""What rectax knows about each of its activations, stated once beside its definition.

:mod:`rectax._functions` registers an :class:`ActivationInfo` right after each function. Every
other place that needs a fact reads it from here: the initializers' gains and ``for_activation``
(:mod:`rectax.initializers`), the name lookup and ``kernel_init="auto"`` of the Flax modules
(:mod:`rectax._resolve`), the benchmark cases and the docs tables (checked by a test).
The hyperparameters' names and defaults are not restated: they are read off the function's own
signature.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Literal

DerivativeForm = Literal["two_valued", "from_input"]

_NOT_HYPERPARAMETERS = ("x", "key", "bits", "axis")  # axis: a layout, not a hyperparameter


@dataclasses.dataclass(frozen=True, eq=False)
class ActivationInfo:
    """One activation's facts.

    Attributes:
      name: the public name (``rectax.<name>``).
      fn: the function.
      derivative: the form of its rule in ``x`` (:mod:`rectax._core._gradients`): ``"two_valued"``
        (a piecewise-constant derivative, saved as 1 bit per element) or ``"from_input"`` (any
        other derivative, recomputed from the kept input).
      aliases: other names accepted wherever a name is (``"leaky"``, ``"swish"``).
      variants: names for the function with some hyperparameters fixed, accepted wherever a
        name is (``"gelu_tanh"`` is gelu with ``approximate=True``, as the benchmark calls it).
      jax_nn: ``jax.nn`` functions that compute the same activation, so that passing one to
        ``for_activation`` or ``gain`` finds these facts.
      kinks: points other than 0 where the derivative jumps (relu6's 6, hard_tanh's ±1): the
        gains' quadrature splits its panels there.
      slope: for the rectifiers, ``slope(params, backward)``: the negative-side slope ``a`` of
        the forward pass (``backward=False``) or of the derivative used backward, so that
        ``E[f(z)^2] = (1 + a^2) / 2``.
      init_params: values an initializer assumes for hyperparameters without a default (PReLU's
        learned slope starts at He et al.'s 0.25).
      self_normalizing: designed for LeCun's init, ``Var[w] = 1/fan`` (SELU, Klambauer et al.
        2017), which ``for_activation`` then uses in both modes.
      check: ``check(**hyperparameters)`` raises the function's own ``TypeError``/``ValueError``
        for a bad concrete hyperparameter; the function calls it too, so the gains,
        ``for_activation`` and the modules refuse exactly what the function refuses.
      width: output features per input feature along the activation's ``axis`` (1 for the
        elementwise ones; CReLU's ``[relu(x), relu(-x)]`` is 2), so that a builder gives the
        next layer ``width`` times the in-features. The gains stay per output element: the
        kernel after the activation reads its (already widened) fan from its own shape.
    """

    name: str
    fn: Callable[..., Any]
    derivative: DerivativeForm
    aliases: tuple[str, ...] = ()
    variants: Mapping[str, Mapping[str, Any]] = dataclasses.field(
        default_factory=lambda: MappingProxyType({})
    )
    jax_nn: tuple[Callable[..., Any], ...] = ()
    kinks: tuple[float, ...] = ()
    slope: Callable[[Mapping[str, Any], bool], float] | None = None
    init_params: Mapping[str, Any] = dataclasses.field(default_factory=lambda: MappingProxyType({}))
    self_normalizing: bool = False
    width: int = 1
    check: Callable[..., None] | None = None

    def validate(self, params: Mapping[str, Any]) -> None:
        """Runs :attr:`check` on the hyperparameters (defaults filled in), if there is one."""
        if self.check is not None:
            full = {**self.hyperparameters, **params}
            self.check(**{k: v for k, v in full.items() if k != "bits"})

    @property
    def hyperparameters(self) -> dict[str, Any]:
        """Name -> default (or :attr:`init_params` value), from the function's signature."""
        out = {}
        for p in inspect.signature(self.fn).parameters.values():
            if p.name in _NOT_HYPERPARAMETERS or p.kind is p.VAR_KEYWORD:
                continue
            default = p.default if p.default is not p.empty else self.init_params.get(p.name)
            out[p.name] = default
        return out

    @property
    def few_bit(self) -> bool:
        """Whether the function takes ``bits=`` (a few-bit derivative)."""
        return "bits" in inspect.signature(self.fn).parameters

    @property
    def piecewise_linear(self) -> bool:
        """Whether the derivative is piecewise constant (the two-valued form)."""
        return self.derivative == "two_valued"


_BY_NAME: dict[str, ActivationInfo] = {}
_VARIANT_PARAMS: dict[str, Mapping[str, Any]] = {}
_BY_FUNCTION: dict[int, ActivationInfo] = {}


def register(info: ActivationInfo) -> ActivationInfo:
    """Adds ``info`` under its name, its aliases and its functions (rectax's and jax.nn's)."""
    for name in (info.name, *info.aliases, *info.variants):
        if name in _BY_NAME:
            raise ValueError(f"rectax: activation name {name!r} registered twice.")
        _BY_NAME[name] = info
    _VARIANT_PARAMS.update(info.variants)
    for fn in (info.fn, *info.jax_nn):
        _BY_FUNCTION[id(fn)] = info
    return info


def all_activations() -> tuple[ActivationInfo, ...]:
    """Every registered activation, once each, in registration order."""
    return tuple(dict.fromkeys(_BY_NAME.values()))


def names() -> tuple[str, ...]:
    """Every accepted name: the public names and their aliases."""
    return tuple(_BY_NAME)


def by_name(name: str) -> ActivationInfo | None:
    """The activation called ``name`` (or an alias of it, any case), or None."""
    return _BY_NAME.get(name.lower())


def variant_params(name: str) -> dict[str, Any]:
    """The hyperparameters a variant name fixes (``{"approximate": True}`` for ``"gelu_tanh"``);
    empty for a plain name or alias."""
    return dict(_VARIANT_PARAMS.get(name.lower(), {}))


def by_function(fn: Any) -> ActivationInfo | None:
    """The activation ``fn`` is (rectax's function or a jax.nn namesake), or None."""
    info = _BY_FUNCTION.get(id(fn))
    return info if info is not None and (fn is info.fn or fn in info.jax_nn) else None
