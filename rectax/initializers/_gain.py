"""Gains of activations and the initializer that matches an activation.

The gain of an activation ``f`` is the factor that keeps the second moment of a signal constant
through a layer initialised with ``Var[w] = gain² / fan``:

.. math:: g_f = 1 / \\sqrt{E[f(z)^2]},\\quad z \\sim N(0, 1)

(forward), or ``1 / sqrt(E[f'(z)^2])`` for the backward pass. It is exact (closed form) for
the piecewise-linear rectifiers and computed by deterministic quadrature otherwise: composite
Gauss–Legendre on [-12, 12] with panels of width 1/4, whose boundaries include every kink of the
built-in activations (0, ±1, 6), in float64 NumPy. Beyond ±12 the Gaussian weight is below 1e-31.
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

from .. import _activations as _act
from ._variance import (
    Axes,
    Distribution,
    Initializer,
    Layout,
    Mode,
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
def _erf(z: np.ndarray) -> np.ndarray:
    return np.vectorize(math.erf)(z)


def _softplus(z: np.ndarray, beta: float = 1.0) -> np.ndarray:
    return np.logaddexp(0.0, beta * z) / beta


def _gelu(z: np.ndarray, approximate: bool | str = True) -> np.ndarray:
    if approximate is True or approximate == "tanh":
        return 0.5 * z * (1 + np.tanh(math.sqrt(2 / math.pi) * (z + 0.044715 * z**3)))
    return 0.5 * z * (1 + _erf(z / math.sqrt(2)))


def _elu(z: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    return np.where(z > 0, z, alpha * np.expm1(np.minimum(z, 0)))


def _celu(z: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    return np.maximum(z, 0) + np.minimum(0, alpha * np.expm1(np.minimum(z, 0) / alpha))


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1 + np.tanh(z / 2))


# float64 forward functions; params are keyword arguments with the rectax defaults.
_FORWARD: dict[str, Callable[..., np.ndarray]] = {
    "linear": lambda z: z,
    "relu6": lambda z: np.clip(z, 0, 6),
    "hard_tanh": lambda z: np.clip(z, -1, 1),
    "squared_relu": lambda z: np.maximum(z, 0) ** 2,
    "elu": _elu,
    "celu": _celu,
    "selu": lambda z: _act.SELU_SCALE * _elu(z, _act.SELU_ALPHA),
    "gelu": _gelu,
    "silu": lambda z: z * _sigmoid(z),
    "softplus": lambda z, beta=1.0, threshold=20.0: _softplus(z, beta),
    "mish": lambda z: z * np.tanh(_softplus(z)),
    "tanh": np.tanh,
    "sigmoid": _sigmoid,
}

_ALIASES = {
    "identity": "linear",
    "conv1d": "linear",
    "conv2d": "linear",
    "conv3d": "linear",
    "swish": "silu",
    "kaiming": "relu",
    "hardtanh": "hard_tanh",
    "leaky": "leaky_relu",
    "necro": "necro_relu",
}

# Activations whose gains are closed forms of a slope: forward slope, backward slope.
_RECTIFIERS = ("relu", "leaky_relu", "prelu", "rrelu", "necro_relu")

# torch.nn.init.calculate_gain, for porting.
_TORCH = {"linear": 1.0, "sigmoid": 1.0, "tanh": 5.0 / 3.0, "selu": 0.75}

_PARAMS: dict[str, tuple[str, ...]] = {
    "leaky_relu": ("negative_slope",),
    "necro_relu": ("negative_slope",),
    "prelu": ("slope",),
    "rrelu": ("lower", "upper"),
    "elu": ("alpha",),
    "celu": ("alpha",),
    "gelu": ("approximate",),
    "softplus": ("beta", "threshold"),
}
_FEW_BIT = ("gelu", "silu", "elu", "celu", "selu", "softplus")
"""Activations with a ``bits`` keyword: it changes the derivative (backward gain), not f."""


def _known_functions() -> list[tuple[Any, str]]:
    import jax.nn as jnn

    pairs: list[tuple[Any, str]] = [
        (_act.relu, "relu"),
        (_act.relu6, "relu6"),
        (_act.leaky_relu, "leaky_relu"),
        (_act.necro_relu, "necro_relu"),
        (_act.prelu, "prelu"),
        (_act.rrelu, "rrelu"),
        (_act.elu, "elu"),
        (_act.celu, "celu"),
        (_act.selu, "selu"),
        (_act.gelu, "gelu"),
        (_act.silu, "silu"),
        (_act.softplus, "softplus"),
        (_act.hard_tanh, "hard_tanh"),
        (_act.squared_relu, "squared_relu"),
        (jnn.relu, "relu"),
        (jnn.relu6, "relu6"),
        (jnn.leaky_relu, "leaky_relu"),
        (jnn.elu, "elu"),
        (jnn.celu, "celu"),
        (jnn.selu, "selu"),
        (jnn.gelu, "gelu"),
        (jnn.silu, "silu"),
        (jnn.swish, "silu"),
        (jnn.softplus, "softplus"),
        (jnn.hard_tanh, "hard_tanh"),
        (jnn.mish, "mish"),
        (jnn.sigmoid, "sigmoid"),
        (jnn.tanh, "tanh"),
        (jnp.tanh, "tanh"),
        (jnn.identity, "linear"),
    ]
    return pairs


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
        key = activation.lower()
        name = _ALIASES.get(key, key)
        if name not in _FORWARD and name not in _RECTIFIERS:
            known = sorted({*_FORWARD, *_RECTIFIERS, *_ALIASES})
            raise ValueError(
                f"rectax.initializers: unknown activation {activation!r}; known names are "
                f"{', '.join(known)}. Pass the function itself to have its gain computed."
            )
    elif callable(activation):
        match = [n for f, n in _known_functions() if f is activation]
        if not match:
            return activation, params
        name = match[0]
    else:
        raise TypeError(
            f"rectax.initializers: activation must be a name or a callable, got {activation!r}."
        )
    allowed = _PARAMS.get(name, ()) + (("bits",) if name in _FEW_BIT else ())
    unknown = set(params) - set(allowed)
    if unknown:
        raise ValueError(
            f"rectax.initializers: activation {name!r} takes no parameter(s) "
            f"{sorted(unknown)}; it takes {list(allowed) or 'none'}."
        )
    return name, params


def _slope(name: str, params: dict[str, Any], backward: bool) -> float:
    if name == "relu":
        return 0.0
    if name == "leaky_relu":
        return float(params.get("negative_slope", 0.01))
    if name == "prelu":
        slope = np.asarray(params.get("slope", 0.25), np.float64)
        if slope.size != 1:
            raise ValueError(
                "rectax.initializers: prelu's gain needs one scalar slope (the initial value), "
                f"got shape {slope.shape}."
            )
        return float(slope.reshape(()))
    if name == "rrelu":
        return (float(params.get("lower", 1.0 / 8.0)) + float(params.get("upper", 1.0 / 3.0))) / 2
    # necro_relu: forward is relu; the backward pass uses the surrogate slope.
    return float(params.get("negative_slope", 0.1)) if backward else 0.0


def _jax_callable(name: str, params: dict[str, Any]) -> Callable[..., Any]:
    if name in ("mish", "sigmoid", "tanh", "linear"):
        fn = {"mish": jax.nn.mish, "sigmoid": jax.nn.sigmoid, "tanh": jnp.tanh}.get(
            name, lambda x: x
        )
        return fn
    return functools.partial(getattr(_act, name), **params)


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
    if act in _RECTIFIERS:
        a = _slope(act, params, backward)
        return (1.0 + a * a) / 2.0
    if act == "linear":
        return 1.0
    if backward:
        return _second_moment_of_callable(
            _jax_callable(act, params), params={}, backward=True, kinks=(-1.0, 1.0, 6.0, *kinks)
        )
    f = _FORWARD[act]
    forward_params = {k: v for k, v in params.items() if k != "bits"}
    return _expect(lambda z: f(z, **forward_params) ** 2, kinks)


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
    return math.sqrt(1.0 / second_moment(activation, backward=backward, kinks=kinks, **params))


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
) -> Initializer:
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
      An initializer.

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
    if isinstance(act, str) and act in _RECTIFIERS:
        scale = _he_scale(_slope(act, bound, backward))
    elif isinstance(act, str) and act in ("selu", "linear"):
        scale = 1.0
    else:
        scale = 1.0 / second_moment(activation, backward=backward, **params)
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
