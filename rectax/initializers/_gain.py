"""Gains of activations and the initializer that matches an activation.

The gain of an activation ``f`` is the factor that keeps the second moment of a signal constant
through a layer initialised with ``Var[w] = gain² / fan``:

.. math:: g_f = 1 / \\sqrt{E[f(z)^2]},\\quad z \\sim N(0, 1)

(forward), or ``1 / sqrt(E[f'(z)^2])`` for the backward pass. It is exact (closed form) for
the piecewise-linear rectifiers and computed by deterministic quadrature otherwise: composite
Gauss–Legendre on [-12, 12] with panels of width 1/4, whose boundaries include every kink of the
built-in activations (0 and the catalog's ``kinks``), evaluating the activation itself in float64.
Beyond ±12 the Gaussian weight is below 1e-31.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import DTypeLike

from .._core import _catalog
from .._core._dtypes import in_float64
from ._variance import (
    Axes,
    Distribution,
    Initializer,
    Layout,
    Mode,
    VarianceScaling,
    _he_scale,
    fan_in_bias,
    variance_scaling,
)

_HALF_WIDTH = 12.0
_PANEL = 0.25
_NODES = 16


@functools.cache
def _base_rule() -> tuple[np.ndarray, np.ndarray]:
    return np.polynomial.legendre.leggauss(_NODES)


def _quadrature(kinks: Sequence[float] = ()) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of E[g(z)], z ~ N(0, 1), split at the panel grid and at ``kinks``."""
    edges = np.arange(-_HALF_WIDTH, _HALF_WIDTH + _PANEL / 2, _PANEL)
    extra = [k for k in kinks if -_HALF_WIDTH < k < _HALF_WIDTH]
    edges = np.unique(np.concatenate([edges, np.asarray(extra, np.float64)]))
    lo, hi = edges[:-1, None], edges[1:, None]
    x, w = _base_rule()
    nodes = (lo + hi) / 2 + (hi - lo) / 2 * x
    weights = (hi - lo) / 2 * w * np.exp(-0.5 * nodes**2) / math.sqrt(2 * math.pi)
    return nodes.ravel(), weights.ravel()


def _expect(g: Callable[[np.ndarray], np.ndarray], kinks: Sequence[float] = ()) -> float:
    z, w = _quadrature(kinks)
    return float(np.sum(w * np.asarray(g(z), np.float64)))


# --------------------------------------------------------------------------- named activations
# rectax's activations bring their own facts (rectax._core._catalog); below, the others a gain
# is asked for (torch's calculate_gain names and jax.nn's non-rectifiers).
_OTHERS: dict[str, Callable[..., Any]] = {
    "linear": jax.nn.identity,
    "tanh": jnp.tanh,
    "sigmoid": jax.nn.sigmoid,
}
_OTHER_ALIASES = {
    "identity": "linear",
    "conv1d": "linear",
    "conv2d": "linear",
    "conv3d": "linear",
    "kaiming": "relu",
}
_OTHER_FUNCTIONS = {
    id(jax.nn.identity): "linear",
    id(jax.nn.tanh): "tanh",
    id(jnp.tanh): "tanh",
    id(jax.nn.sigmoid): "sigmoid",
}

# torch.nn.init.calculate_gain, for porting.
_TORCH = {"linear": 1.0, "sigmoid": 1.0, "tanh": 5.0 / 3.0, "selu": 0.75}


def _name_of(activation: str) -> str:
    key = _OTHER_ALIASES.get(activation.lower(), activation.lower())
    info = _catalog.by_name(key)
    if info is not None:
        return info.name
    if key in _OTHERS:
        return key
    known = sorted({*_catalog.names(), *_OTHERS, *_OTHER_ALIASES})
    raise ValueError(
        f"rectax.initializers: unknown activation {activation!r}; known names are "
        f"{', '.join(known)}. Pass the function itself to have its gain computed."
    )


def resolve(activation: str | Callable[..., Any], params: dict[str, Any]) -> tuple[Any, dict]:
    """``(name or callable, params)``: unwraps ``functools.partial`` and known functions."""
    params = dict(params)
    while isinstance(activation, functools.partial):
        if activation.args:
            raise ValueError(
                "rectax.initializers: functools.partial activations must bind their "
                "hyperparameters by keyword, e.g. partial(rx.leaky_relu, negative_slope=0.2)."
            )
        params = {**activation.keywords, **params}
        activation = activation.func
    if isinstance(activation, str):
        name = _name_of(activation)
        params = {**_catalog.variant_params(activation), **params}
    elif callable(activation):
        info = _catalog.by_function(activation)
        if info is not None:
            name = info.name
        elif id(activation) in _OTHER_FUNCTIONS:
            name = _OTHER_FUNCTIONS[id(activation)]
        else:
            return activation, params
    else:
        raise TypeError(
            f"rectax.initializers: activation must be a name or a callable, got {activation!r}."
        )
    info = _catalog.by_name(name)
    allowed = () if info is None else (*info.hyperparameters, *(("bits",) * info.few_bit))
    unknown = set(params) - set(allowed)
    if unknown:
        raise ValueError(
            f"rectax.initializers: activation {name!r} takes no parameter(s) "
            f"{sorted(unknown)}; it takes {list(allowed) or 'none'}."
        )
    if info is not None:
        info.validate(params)  # the function's own checks: what it refuses, a gain refuses
    return name, params


def _rectifier_slope(name: str, params: dict[str, Any], backward: bool) -> float | None:
    """The closed-form gain's slope for rectax's rectifiers (None for the others)."""
    info = _catalog.by_name(name)
    if info is None or info.slope is None:
        return None
    return info.slope({**info.hyperparameters, **params}, backward)


def _second_moment_of_callable(
    fn: Callable[..., Any], params: dict[str, Any], backward: bool, kinks: Sequence[float]
) -> float:
    def f(x: jax.Array) -> jax.Array:
        return fn(x, **params)

    g = jax.vmap(jax.grad(f)) if backward else f

    def squared(z: np.ndarray) -> np.ndarray:
        return np.asarray(g(jnp.asarray(z)), np.float64) ** 2

    return _expect(squared, (0.0, *kinks))


def second_moment(
    activation: str | Callable[..., Any],
    *,
    backward: bool = False,
    kinks: Sequence[float] = (),
    **params: Any,
) -> float:
    """E[f(z)²] (or E[f'(z)²] with ``backward``), z ~ N(0, 1); exact for rectifiers."""
    act, params = resolve(activation, params)
    if not isinstance(act, str):
        return _second_moment_of_callable(act, params, backward, kinks)
    slope = _rectifier_slope(act, params, backward)
    if slope is not None:
        return (1.0 + slope * slope) / 2.0
    if act == "linear":
        return 1.0
    info = _catalog.by_name(act)
    kinks = (*(k for i in _catalog.all_activations() for k in i.kinks), *kinks)
    if backward:
        fn = _OTHERS[act] if info is None else functools.partial(info.fn, **params)
        return _second_moment_of_callable(fn, {}, True, kinks)
    if info is not None:  # the forward pass in float64; bits changes only the derivative
        fn = functools.partial(info.fn, **{k: v for k, v in params.items() if k != "bits"})
    forward = in_float64(_OTHERS[act] if info is None else fn)
    return _expect(lambda z: forward(z) ** 2, kinks)


def gain(
    activation: str | Callable[..., Any],
    *,
    backward: bool = False,
    convention: Literal["second_moment", "torch"] = "second_moment",
    kinks: Sequence[float] = (),
    **params: Any,
) -> float:
    r"""The gain that keeps a signal's second moment constant through ``activation``.

    .. math::
      g = \frac{1}{\sqrt{E[f(z)^2]}} \text{ (forward)},\qquad
      g = \frac{1}{\sqrt{E[f'(z)^2]}} \text{ (backward)},\qquad z \sim N(0, 1)

    With :math:`\mathrm{Var}[w] = g^2 / n_{in}` (``variance_scaling(g**2, "fan_in", ...)``),
    a unit-variance pre-activation gives a unit-variance pre-activation in the next layer
    (He et al. 2015 for ReLU; the general form e.g. in Hayou et al. 2019). Closed forms:
    linear 1, relu :math:`\sqrt2`, leaky/prelu :math:`\sqrt{2/(1+a^2)}`, selu 1 (self-normalising;
    numerically 1 to 1e-7), NecroReLU forward :math:`\sqrt2` and backward
    :math:`\sqrt{2/(1+a^2)}` (its surrogate derivative's second moment is :math:`(1+a^2)/2`).
    Other activations, and any callable, use deterministic float64 quadrature, accurate to
    about 1e-10 for the built-ins (callables run in jax's default float, about 1e-7). For a
    callable with kinks other than 0, ±1 and multiples of 1/4, pass them as ``kinks``.

    ``convention="torch"`` returns :func:`torch.nn.init.calculate_gain`'s values instead where
    they differ: tanh 5/3, sigmoid 1, selu 3/4 (empirical, tuned for non-self-normalising use);
    torch has no gain for gelu, silu and most others.

    Args:
      activation: a name (``"relu"``, ``"leaky_relu"``, ``"necro_relu"``, ``"selu"``,
        ``"tanh"``, ``"linear"``, ``"gelu"``, ...) or a callable ``f(x, **params)`` (rectax and
        jax.nn functions are recognised; ``functools.partial`` keywords become params).
      backward: use the derivative's second moment (the ``mode="fan_out"`` condition).
      convention: ``"second_moment"`` (default) or ``"torch"``.
      kinks: extra quadrature breakpoints for callables.
      **params: the activation's hyperparameters, e.g. ``negative_slope=0.2``.

    Returns:
      The gain as a Python float.

    Example:
      >>> import rectax as rx
      >>> from rectax.initializers import gain
      >>> round(gain("relu"), 5), round(gain("leaky_relu", negative_slope=0.2), 5)
      (1.41421, 1.38675)
      >>> round(gain(rx.gelu, approximate=False), 5), round(gain("selu"), 5)
      (1.53353, 1.0)
      >>> round(gain("necro_relu", backward=True, negative_slope=1.0), 5)
      1.0
    """
    if convention not in ("second_moment", "torch"):
        raise ValueError(
            f"rectax.initializers.gain: invalid convention {convention!r}; expected "
            "'second_moment' or 'torch'."
        )
    if convention == "torch":
        act, _ = resolve(activation, params)
        if isinstance(act, str) and act in _TORCH:
            return _TORCH[act]
    return math.sqrt(1.0 / _positive_moment("gain", activation, backward, kinks, params))


def _positive_moment(
    name: str,
    activation: str | Callable[..., Any],
    backward: bool,
    kinks: Sequence[float],
    params: dict[str, Any],
) -> float:
    """:func:`second_moment`, refused unless it is positive and finite (no gain exists else)."""
    m = second_moment(activation, backward=backward, kinks=kinks, **params)
    if not (math.isfinite(m) and m > 0):
        what = "E[f'(z)^2]" if backward else "E[f(z)^2]"
        raise ValueError(
            f"rectax.initializers.{name}: {what} = {m!r} for activation {activation!r} "
            f"with {params or 'no parameters'}; a gain needs a positive, finite second moment "
            "(an activation that is 0, or not finite, almost everywhere has none)."
        )
    return m


def for_activation(
    activation: str | Callable[..., Any],
    *,
    mode: Mode = "fan_in",
    distribution: Distribution = "truncated_normal",
    in_axis: Axes = -2,
    out_axis: Axes = -1,
    batch_axis: Axes = (),
    layout: Layout | None = None,
    dtype: DTypeLike | None = None,
    **params: Any,
) -> VarianceScaling:
    r"""The kernel initializer that matches an activation.

    .. math:: \mathrm{Var}[w] = g^2 / n,\qquad g = \mathrm{gain}(f)

    relu, leaky_relu, prelu (initial slope, default 0.25 as He et al.), rrelu (its evaluation
    slope) and necro_relu get He's scale :math:`2/(1+a^2)` (:func:`he_normal`); selu and linear
    get LeCun's scale 1 (:func:`lecun_normal`); everything else (gelu, silu, elu, tanh, any
    callable) gets :func:`variance_scaling` with the computed gain. ``mode="fan_out"``
    preserves the backward pass, so it uses the backward gain: for NecroReLU that is
    :math:`2/(1+a^2)` with its surrogate slope ``a``, whereas ``"fan_in"`` uses its forward
    (ReLU) gain 2.

    Args:
      activation: a name or a function (``rx.relu``, ``jax.nn.gelu``,
        ``functools.partial(rx.leaky_relu, negative_slope=0.2)``, any callable).
      mode: which fan (default ``"fan_in"``).
      distribution: default ``"truncated_normal"``, as jax.
      in_axis: input axes.
      out_axis: output axes.
      batch_axis: axes in neither fan.
      layout: named kernel layout (``"conv"`` for flax convolutions).
      dtype: default dtype.
      **params: the activation's hyperparameters.

    Returns:
      A :class:`~rectax.initializers.VarianceScaling` initializer.

    Example:
      >>> import jax
      >>> import rectax as rx
      >>> from rectax.initializers import for_activation
      >>> init = for_activation(rx.leaky_relu, negative_slope=0.2, distribution="normal")
      >>> w = init(jax.random.key(0), (1000, 500))
      >>> round(float(w.std() ** 2 * 1000 * (1 + 0.2**2) / 2), 2)
      1.0
    """
    backward = mode == "fan_out"
    act, bound = resolve(activation, params)
    slope = _rectifier_slope(act, bound, backward) if isinstance(act, str) else None
    info = _catalog.by_name(act) if isinstance(act, str) else None
    if slope is not None:
        scale = _he_scale(slope)
    elif act == "linear" or (info is not None and info.self_normalizing):
        scale = 1.0
    else:
        scale = 1.0 / _positive_moment("for_activation", activation, backward, (), params)
    return variance_scaling(
        scale, mode, distribution, in_axis, out_axis, batch_axis, dtype, layout=layout
    )


class TorchDefault(NamedTuple):
    """The PyTorch ``nn.Linear``/``nn.ConvNd`` default pair, as two initializers."""

    kernel: Initializer
    bias: Initializer


def _missing_fan_in(key: jax.Array, shape: Sequence[int], dtype: DTypeLike | None = None) -> Any:
    raise ValueError(
        "rectax.initializers.torch_default: the bias initializer needs the layer's fan_in "
        "(its shape does not tell it); call torch_default(fan_in=in_features) or "
        "torch_default(fan_in=in_channels * prod(kernel_size))."
    )


def torch_default(
    fan_in: int | None = None,
    *,
    layout: Layout | None = None,
    dtype: DTypeLike | None = None,
) -> TorchDefault:
    r"""PyTorch's default Linear/Conv initialization: kernel and bias :math:`U(\pm1/\sqrt{n})`.

    torch initialises ``nn.Linear`` and ``nn.ConvNd`` with ``kaiming_uniform_(a=sqrt(5))``,
    which is :math:`U(\pm 1/\sqrt{n_{in}})` (variance :math:`1/(3n)`, a third of LeCun's), and
    the bias with the same bound. Use it to reproduce a PyTorch model's initial statistics in
    Flax. The kernel initializer reads the fan from the shape (flax layout by default; pass
    ``layout="conv"`` for flax convolutions or ``"torch"`` for arrays in torch's layout); the
    bias needs ``fan_in``.

    Args:
      fan_in: the layer's fan-in, for the bias (``in_features`` or
        ``in_channels * prod(kernel_size)``). Without it the bias initializer raises.
      layout: kernel layout.
      dtype: default dtype.

    Returns:
      A pair ``(kernel, bias)`` (also ``.kernel`` and ``.bias``).

    Example:
      >>> import jax
      >>> from rectax.initializers import torch_default
      >>> kernel_init, bias_init = torch_default(fan_in=64)
      >>> w = kernel_init(jax.random.key(0), (64, 10))
      >>> b = bias_init(jax.random.key(1), (10,))
      >>> bool(abs(w).max() <= 1 / 8 and abs(b).max() <= 1 / 8)
      True
    """
    kernel = variance_scaling(1.0 / 3.0, "fan_in", "uniform", dtype=dtype, layout=layout)
    bias = _missing_fan_in if fan_in is None else fan_in_bias(fan_in, dtype=dtype)
    return TorchDefault(kernel, bias)
