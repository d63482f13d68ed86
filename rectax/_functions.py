"""The rectifier family, each a docstring and a few lines on top of :mod:`rectax._core._gradients`.

Conventions shared by every function here:

* ``x`` keeps its dtype end to end; hyperparameters are cast to ``x.dtype`` by the mechanism
  (:mod:`rectax._core._gradients`: a float32 slope never promotes a bfloat16 activation) and their
  cotangents come back in their own dtype.
* Bool and complex inputs raise ``TypeError``. Integer inputs are accepted (and stay integer)
  only by the functions that are exact on integers: ``relu``, ``relu6``, ``hard_tanh``,
  ``squared_relu`` and ``necro_relu``; the others raise ``TypeError`` instead of silently
  promoting (cast explicitly, e.g. ``x.astype(jnp.float32)``).
* Python and NumPy hyperparameters are validated (``ValueError`` naming the argument); jax arrays
  never are (checking one would wait for the device), so every hyperparameter stays jit-able,
  vmappable and differentiable, and no call syncs with the device.
* Each activation's facts (aliases, derivative form, gain) are registered with
  :mod:`rectax._core._catalog` right after its definition; a Flax module names the activation it
  computes (its ``computes`` class attribute), the catalog names no module.
* Forward passes propagate NaN and have the right limits at ±inf.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.typing import ArrayLike

from ._core import _few_bit
from ._core._catalog import ActivationInfo, register
from ._core._dtypes import at_least_float32
from ._core._gradients import (
    from_input,
    from_output,
    gated,
    gated_from_output,
    two_valued,
    two_valued_pair,
)

Array = jax.Array

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946

# Beyond |x| > _TAIL the smooth gates (Φ, σ-based GELU, σ) are exactly 0 or 1 in every float
# dtype, so clamping there changes no finite result and turns -inf·0 into 0.
_TAIL = 40.0
_SILU_TAIL = 800.0


# --------------------------------------------------------------------------- input checks
# How an activation treats integer inputs, as its jax.nn namesake does:
#   "keep":    integers stay integer (relu, hard_tanh; rectax's squared_relu and necro_relu);
#   "float":   integers become the default float, weakly typed, as ``jnp.where(x > 0, x, 0.0)``
#              promotes them (relu6, leaky_relu, elu, celu, selu; rectax's prelu and rrelu);
#   "inexact": jax.numpy's inexact promotion, as ``jnp.sin`` promotes (gelu, softplus);
#   "error":   integers raise TypeError (silu, whose jax.nn version raises too).
IntegerRule = Literal["keep", "float", "inexact", "error"]

_PROMOTION_MODELS: dict[str, Callable[[Array], Array]] = {
    "float": lambda v: jnp.where(v > 0, v, 0.0),
    "inexact": jnp.sin,
}


@functools.cache
def _promoted(rule: str, dtype: np.dtype, weak: bool, x64: bool) -> tuple[np.dtype, bool]:
    """(dtype, weak_type) that jax.numpy's promotion gives an integer input under ``rule``."""
    del x64  # part of the cache key only: the default float depends on it
    with jax.numpy_dtype_promotion("standard"):
        out = jax.eval_shape(
            _PROMOTION_MODELS[rule], jax.ShapeDtypeStruct((), dtype, weak_type=weak)
        )
    return np.dtype(out.dtype), bool(out.weak_type)


def _input(name: str, x: ArrayLike, integers: IntegerRule) -> tuple[Array, bool]:
    """Validates ``x`` and promotes integers by ``integers``.

    Returns the array to compute on and whether the result is weakly typed (a Python scalar in
    gives a weakly typed result, as in jax.nn, so ``f16_array + rx.elu(2.0)`` stays float16).
    """
    arr = jnp.asarray(x)
    dtype = arr.dtype
    weak = bool(getattr(arr, "weak_type", False))
    if dtype == jnp.bool_ or jnp.issubdtype(dtype, jnp.complexfloating):
        raise TypeError(
            f"rectax.{name}: x must be a real floating or integer array, got dtype {dtype}. "
            "Complex and boolean inputs are not supported."
        )
    if jnp.issubdtype(dtype, jnp.integer):
        if integers == "error":
            raise TypeError(
                f"rectax.{name}: x has integer dtype {dtype}, which {name} does not accept "
                "(nor does jax.nn's). Cast first, e.g. x.astype(jnp.float32)."
            )
        if integers != "keep":
            dtype, weak = _promoted(
                integers, np.dtype(dtype), weak, bool(jax.config.read("jax_enable_x64"))
            )
            arr = lax.convert_element_type(arr, dtype)
    elif not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"rectax.{name}: unsupported dtype {dtype}.")
    return arr, weak


def _output(y: Array, weak: bool) -> Array:
    """``y``, weakly typed when the input was (a no-op otherwise).

    jax has no public weak-typed cast, but an indexed update keeps its operand's weak type, and
    a Python-scalar fill is weakly typed in the default dtype (the only dtype a weak float has).
    """
    if not weak or getattr(y, "weak_type", False):
        return y
    blank = lax.full(y.shape, 0.0)
    return blank.at[...].set(y) if blank.dtype == y.dtype else y


def _concrete(value: Any) -> np.ndarray | None:
    """A Python or NumPy value as a float64 NumPy array; None for jax arrays (never synced)."""
    if isinstance(value, jax.Array):  # tracers too
        return None
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return None


def _hyper(name: str, arg: str, value: Any) -> Any:
    """``value`` if it can be a hyperparameter (a number or an array), else a TypeError naming it.

    Strings and Python containers would otherwise fail deep inside jit ("Error interpreting
    argument ... static_argnums", "Cannot determine dtype of [JitTracer...]").
    """
    if isinstance(value, str | bytes | list | tuple | dict | set) or value is None:
        raise TypeError(
            f"rectax.{name}: {arg} must be a number or an array (jax or NumPy), got "
            f"{type(value).__name__} {value!r}; convert a list with jnp.asarray first."
        )
    return value


def _finite_for_bits(name: str, arg: str, value: Any) -> None:
    """A few-bit derivative's table is computed from concrete, finite hyperparameters."""
    _check(name, arg, value, np.isfinite, "finite for a few-bit derivative (bits=...)")


def _check(name: str, arg: str, value: Any, ok: Callable[[np.ndarray], Any], allowed: str) -> None:
    v = _concrete(value)
    if v is not None and not bool(np.all(ok(v))):
        raise ValueError(f"rectax.{name}: {arg} must be {allowed}, got {value!r}.")


def _wide(fn: Callable[..., Array]) -> Callable[..., Array]:
    """``fn`` evaluated in float32 for bfloat16/float16 inputs, rounded once to their dtype.

    Smooth activations chain several roundings; in bfloat16 that cost up to 3.2% relative error
    (the tanh-form gelu on [-2.33, -1.86], as jax.nn's). Widening inside the fused elementwise
    kernel costs no memory: only the result is stored in the input's dtype.
    """

    @functools.wraps(fn)
    def wide(x: Array, *params: Array) -> Array:
        wide_dtype = at_least_float32(x.dtype)
        if wide_dtype == x.dtype:
            return fn(x, *params)
        widened = [lax.convert_element_type(v, wide_dtype) for v in (x, *params)]
        return lax.convert_element_type(fn(*widened), x.dtype)

    return wide


# --------------------------------------------------------------------------- piecewise linear
def _relu_forward(x: Array) -> Array:
    return jnp.maximum(x, 0)


_relu = two_valued(_relu_forward, lambda x: x > 0, lambda: (1, 0), output_mask=lambda y: y > 0)


def relu(x: ArrayLike) -> Array:
    r"""Rectified linear unit.

    .. math:: \mathrm{relu}(x) = \max(x, 0)

    The derivative is 1 for ``x > 0`` and 0 otherwise (0 at the kink, as ``jax.nn.relu``; see
    Bertoin et al., NeurIPS 2021), also for positive subnormals. NaN propagates forward. Reverse
    mode keeps 1 bit per element.

    Args:
      x: input array; floating or integer (integers stay integer).

    Returns:
      An array of ``x``'s shape and dtype.

    Example:
      >>> import jax.numpy as jnp
      >>> import rectax as rx
      >>> rx.relu(jnp.array([-2.0, 0.0, 3.0]))
      Array([0., 0., 3.], dtype=float32)

    See also: :func:`necro_relu`, :func:`leaky_relu`, :func:`jax.nn.relu`.
    """
    x, weak = _input("relu", x, "keep")
    return _output(_relu(x), weak)


register(ActivationInfo("relu", relu, "two_valued", jax_nn=(jax.nn.relu,), slope=lambda p, b: 0.0))


_relu6 = two_valued(
    lambda x: jnp.minimum(jnp.maximum(x, 0), 6),
    lambda x: (x > 0) & (x < 6),
    lambda: (1, 0),
    output_mask=lambda y: (y > 0) & (y < 6),
)


def relu6(x: ArrayLike) -> Array:
    r"""ReLU capped at 6 (MobileNet).

    .. math:: \mathrm{relu6}(x) = \min(\max(x, 0), 6)

    The derivative is 1 on the open interval (0, 6) and 0 elsewhere, including both kinks
    (as ``jax.nn.relu6``).

    Args:
      x: input array; floating or integer.

    Returns:
      An array of ``x``'s shape and dtype.

    Example:
      >>> import jax.numpy as jnp
      >>> import rectax as rx
      >>> rx.relu6(jnp.array([-1.0, 3.0, 9.0]))
      Array([0., 3., 6.], dtype=float32)
    """
    x, weak = _input("relu6", x, "float")
    return _output(_relu6(x), weak)


register(ActivationInfo("relu6", relu6, "two_valued", jax_nn=(jax.nn.relu6,), kinks=(6.0,)))


def _leaky_forward(x: Array, slope: Array) -> Array:
    # x * where(x >= 0, 1, slope) where x < 0: the slope's derivative x * where(x >= 0, 0, t)
    # transposes to one fused sum of where(x < 0, g * x, 0); from slope * x, a select of g
    # shared with x's cotangent cost a learned-slope MLP step one more (batch, width) buffer on
    # XLA:CPU (tests/test_model_memory.py). The outer select keeps it 0, not inf * 0, at x = +inf.
    positive = x >= 0
    return jnp.where(positive, x, x * jnp.where(positive, jnp.ones_like(slope), slope))


_leaky = two_valued(_leaky_forward, lambda x, slope: x >= 0, lambda slope: (1, slope))


def leaky_relu(x: ArrayLike, negative_slope: ArrayLike = 0.01) -> Array:
    r"""Leaky rectified linear unit.

    .. math:: \mathrm{leaky\_relu}(x) = x \text{ if } x \ge 0 \text{ else } a x

    Derivative: 1 for ``x >= 0`` (1 at the kink, as ``jax.nn.leaky_relu``; torch uses ``a``),
    ``a`` otherwise. ``negative_slope`` is an ordinary argument: traceable, vmappable, and it
    receives the true gradient ``min(x, 0)``.

    Args:
      x: floating input array.
      negative_slope: slope ``a`` for negative inputs (default 0.01, as jax and torch); any
        array broadcastable to ``x``.

    Returns:
      An array of ``x``'s shape and dtype.

    Example:
      >>> import jax.numpy as jnp
      >>> import rectax as rx
      >>> rx.leaky_relu(jnp.array([-2.0, 3.0]), negative_slope=0.5)
      Array([-1.,  3.], dtype=float32)
    """
    _check_leaky_relu(negative_slope)
    x, weak = _input("leaky_relu", x, "float")
    return _output(_leaky(x, negative_slope), weak)


def _check_leaky_relu(negative_slope: Any) -> None:
    _hyper("leaky_relu", "negative_slope", negative_slope)


register(
    ActivationInfo(
        "leaky_relu",
        leaky_relu,
        "two_valued",
        check=_check_leaky_relu,
        aliases=("leaky",),
        jax_nn=(jax.nn.leaky_relu,),
        slope=lambda p, backward: float(p["negative_slope"]),
    )
)


_necro = two_valued(
    lambda x, slope: _relu_forward(x),
    lambda x, slope: x > 0,
    lambda slope: (1, slope),
    output_mask=lambda y, slope: y > 0,
)


def necro_relu(x: ArrayLike, negative_slope: ArrayLike = 0.1) -> Array:
    r"""NecroReLU: ReLU forward, leaky derivative backward, so units cannot die.

    .. math::
      y = \max(x, 0), \qquad
      \frac{\partial y}{\partial x} := 1 \text{ if } x > 0 \text{ else } a

    The forward pass is bitwise :func:`relu`. Units whose pre-activation is negative still
    pass ``a`` times the incoming gradient back, so a unit that outputs 0 on every example keeps
    learning. The surrogate derivative is used consistently by every AD entry point (grad, vjp,
    jvp, jacfwd, hessian); ``negative_slope`` gets a zero gradient (the forward does not depend on
    it). Backward gradient variance grows like ``(1 + a^2)^{L/2}`` relative to ReLU with depth
    ``L``: keep ``a`` small in deep nets (see the initializers' ``backward`` gain). A cousin of
    straight-through estimators (Bengio et al. 2013) and of SUGAR (arXiv 2505.22074).

    Args:
      x: input array; floating or integer (integers stay integer).
      negative_slope: surrogate derivative ``a`` for ``x <= 0`` (default 0.1).

    Returns:
      An array of ``x``'s shape and dtype, equal to ``relu(x)``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> import rectax as rx
      >>> x = jnp.array([-2.0, 0.0, 3.0])
      >>> rx.necro_relu(x)
      Array([0., 0., 3.], dtype=float32)
      >>> jax.grad(lambda x: rx.necro_relu(x).sum())(x)
      Array([0.1, 0.1, 1. ], dtype=float32)

    See also: :func:`surrogate`, :func:`relu`.
    """
    _check_necro_relu(negative_slope)
    x, weak = _input("necro_relu", x, "keep")
    slope_shape = jnp.shape(negative_slope)
    if np.broadcast_shapes(x.shape, slope_shape) != x.shape:
        raise ValueError(
            f"rectax.necro_relu: negative_slope of shape {slope_shape} must broadcast to x's "
            f"shape {x.shape} (the output has x's shape), not enlarge it."
        )
    if jnp.issubdtype(x.dtype, jnp.integer):
        return _output(_relu(x), weak)
    return _output(_necro(x, negative_slope), weak)


def _check_necro_relu(negative_slope: Any) -> None:
    _hyper("necro_relu", "negative_slope", negative_slope)


register(
    ActivationInfo(
        "necro_relu",
        necro_relu,
        "two_valued",
        check=_check_necro_relu,
        aliases=("necro",),
        # forward: relu's; backward: the surrogate slope
        slope=lambda p, backward: float(p["negative_slope"]) if backward else 0.0,
    )
)


PRELU_INIT = 0.25
"""PReLU's initial slope in He et al. (2015), as torch (flax's PReLU starts at 0.01)."""


def prelu(x: ArrayLike, negative_slope: ArrayLike) -> Array:
    r"""Parametric ReLU (He et al. 2015) with a learned slope.

    .. math:: \mathrm{prelu}(x) = x \text{ if } x \ge 0 \text{ else } a_c x

    ``negative_slope`` broadcasts against ``x`` with NumPy rules: a scalar is shared, a vector
    of length ``C`` is one slope per channel on the last axis. The derivative in ``x`` is 1 for
    ``x >= 0`` (as flax's PReLU; torch uses ``a``), ``a`` otherwise; the slope receives
    ``min(x, 0)`` summed over the broadcast axes.

    Args:
      x: floating input array.
      negative_slope: the slope ``a`` (cast to ``x.dtype``); learned, so it has no default
        (rectax's modules start it at He et al.'s 0.25).

    Returns:
      An array of ``x``'s shape and dtype.

    Example:
      >>> import jax.numpy as jnp
      >>> import rectax as rx
      >>> rx.prelu(jnp.array([[-1.0, -1.0], [2.0, 2.0]]), jnp.array([0.25, 0.5]))
      Array([[-0.25, -0.5 ],
             [ 2.  ,  2.  ]], dtype=float32)
    """
    _check_prelu(negative_slope)
    x, weak = _input("prelu", x, "float")
    return _output(_leaky(x, negative_slope), weak)


def _scalar_slope(value: Any) -> float:
    slope = np.asarray(value, np.float64)
    if slope.size != 1:
        raise ValueError(
            "rectax: prelu's gain needs one scalar slope (the initial value), got shape "
            f"{slope.shape}."
        )
    return float(slope.reshape(()))


def _check_prelu(negative_slope: Any) -> None:
    _hyper("prelu", "negative_slope", negative_slope)


register(
    ActivationInfo(
        "prelu",
        prelu,
        "two_valued",
        check=_check_prelu,
        slope=lambda p, backward: _scalar_slope(p["negative_slope"]),
        init_params={"negative_slope": PRELU_INIT},
    )
)


@jax.jit
def _rrelu_eval(x: Array, lower: ArrayLike, upper: ArrayLike) -> Array:
    # leaky_relu at the mean slope, computed inside the compiled function (one scalar saved).
    return _leaky(x, (jnp.asarray(lower) + jnp.asarray(upper)) / 2)


@jax.jit
def _rrelu_train(x: Array, key: Array, lower: ArrayLike, upper: ArrayLike) -> Array:
    # One slope per element, drawn in float32 or wider and rounded once to x's dtype.
    wide = at_least_float32(x.dtype)
    lo = lax.convert_element_type(lower, wide)
    hi = lax.convert_element_type(upper, wide)
    u = jax.random.uniform(key, x.shape, wide)
    slope = lax.convert_element_type(lo + (hi - lo) * u, x.dtype)
    return _leaky(x, lax.stop_gradient(slope))


def rrelu(
    x: ArrayLike,
    key: Array | None = None,
    lower: ArrayLike = 1.0 / 8.0,
    upper: ArrayLike = 1.0 / 3.0,
) -> Array:
    r"""Randomized leaky ReLU (Xu et al. 2015).

    .. math:: \mathrm{rrelu}(x) = x \text{ if } x \ge 0 \text{ else } a x,\quad
      a \sim U(l, u) \text{ per element (training)},\quad a = (l + u)/2 \text{ (evaluation)}

    With ``key=None`` this is the evaluation form, :func:`leaky_relu` with slope
    ``(lower + upper) / 2`` (0.2291667 with torch's defaults). With a PRNG key it samples one slope
    per element (in float32 or wider, then cast) and its derivative uses the sampled slopes;
    reverse mode keeps the 1-bit mask and the sampled slopes (regenerating them from ``key``
    measured worse: XLA hoists the regeneration into the forward pass).

    Args:
      x: floating input array.
      key: ``jax.random`` key, or None for the deterministic evaluation form.
      lower: lower bound of the slope distribution (default 1/8, as torch).
      upper: upper bound (default 1/3, as torch); must be >= ``lower``.

    Returns:
      An array of ``x``'s shape and dtype.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> import rectax as rx
      >>> rx.rrelu(jnp.array([-1.0, 1.0]), lower=0.1, upper=0.3)
      Array([-0.2,  1. ], dtype=float32)
      >>> y = rx.rrelu(-jnp.ones(3), jax.random.key(0))
      >>> bool(jnp.all((y <= -1 / 8) & (y >= -1 / 3)))
      True
    """
    check_rrelu(lower, upper)
    x, weak = _input("rrelu", x, "float")
    if key is None:
        return _output(_rrelu_eval(x, lower, upper), weak)
    return _output(_rrelu_train(x, key, lower, upper), weak)


def check_rrelu(lower: Any, upper: Any) -> None:
    """RReLU's bounds rule (the function, gains and Flax modules share it)."""
    _hyper("rrelu", "lower", lower)
    _hyper("rrelu", "upper", upper)
    lo, hi = _concrete(lower), _concrete(upper)
    if lo is not None and hi is not None and not bool(np.all(lo <= hi)):
        raise ValueError(
            f"rectax.rrelu: lower must be <= upper, got lower={lower!r}, upper={upper!r}."
        )


register(
    ActivationInfo(
        "rrelu",
        rrelu,
        "two_valued",
        check=check_rrelu,
        slope=lambda p, backward: (float(p["lower"]) + float(p["upper"])) / 2,  # the eval slope
    )
)


def _at_least_minus_one(x: Array) -> Array:
    # An unsigned integer is never below -1 (and -1 would wrap around to its maximum).
    return x if jnp.issubdtype(x.dtype, jnp.unsignedinteger) else jnp.maximum(x, -1)


_hard_tanh = two_valued(
    lambda x: jnp.minimum(_at_least_minus_one(x), 1), lambda x: (x >= -1) & (x <= 1), lambda: (1, 0)
)


def hard_tanh(x: ArrayLike) -> Array:
    r"""Hard tanh: the identity clipped to [-1, 1].

    .. math:: \mathrm{hard\_tanh}(x) = \min(\max(x, -1), 1)

    Derivative: 1 on the closed interval [-1, 1] (1 at ±1, as ``jax.nn.hard_tanh``; torch
    uses 0), 0 outside.

    Args:
      x: input array; floating or integer.

    Returns:
      An array of ``x``'s shape and dtype.

    Example:
      >>> import jax.numpy as jnp
      >>> import rectax as rx
      >>> rx.hard_tanh(jnp.array([-3.0, 0.5, 2.0]))
      Array([-1. ,  0.5,  1. ], dtype=float32)
    """
    x, weak = _input("hard_tanh", x, "keep")
    return _output(_hard_tanh(x), weak)


register(
    ActivationInfo(
        "hard_tanh",
        hard_tanh,
        "two_valued",
        aliases=("hardtanh",),
        jax_nn=(jax.nn.hard_tanh,),
        kinks=(-1.0, 1.0),
    )
)


@functools.cache
def _crelu_along(axis: int) -> Callable[[Array], Array]:
    def forward(x: Array) -> Array:
        return jnp.concatenate([_relu_forward(x), _relu_forward(-x)], axis)

    def first_half_positive(y: Array) -> Array:
        return jnp.split(y, 2, axis)[0] > 0

    return two_valued_pair(
        forward, lambda x: x > 0, ((1, 0), (0, -1)), axis, output_mask=first_half_positive
    )


def crelu(x: ArrayLike, axis: int = -1) -> Array:
    r"""Concatenated ReLU (Shang et al., ICML 2016): both signs of ``x``, rectified.

    .. math:: \mathrm{crelu}(x) = [\max(x, 0),\ \max(-x, 0)] \text{ along } \texttt{axis}

    Each pre-activation feeds two outputs, one of which is live wherever ``x != 0``, so no unit
    ever stops receiving gradient (Abbas et al. 2023 use it against loss of plasticity). The
    output is twice as wide along ``axis``: the next layer has twice the in-features. Its
    initializer (:func:`rectax.initializers.for_activation`, ``"crelu"``) is He's on that
    doubled fan-in: each output element has :math:`E[f(z)^2] = 1/2` as ReLU's. Backward each
    pre-activation receives exactly one of its two outputs' gradients, so the ``fan_out`` gain
    is 1.

    The derivative is ``[1, 0]`` for ``x > 0`` and ``[0, -1]`` otherwise (at 0 too: one mask
    serves both halves, so reverse mode keeps 1 bit per input element; ``relu(x) - relu(-x) = x``
    then has derivative 1 everywhere). ``jax.nn.relu``'s convention would give ``[0, 0]`` at
    exactly 0. NaN propagates forward. On feature maps (rank 4 or more) reverse mode keeps the
    output instead, as :func:`relu`. Its memory beside ``jnp.concatenate`` of ``jax.nn.relu``
    is measured by ``python benchmarks/crelu_memory.py``.

    Args:
      x: input array with at least one axis; floating or signed integer (integers stay
        integer).
      axis: the axis the two halves are concatenated along (default -1, the features).

    Returns:
      An array of ``x``'s dtype, twice as long along ``axis``: ``relu(x)`` first, then
      ``relu(-x)``.

    Raises:
      TypeError: for boolean, complex or unsigned integer ``x``.
      ValueError: for a scalar ``x`` or an ``axis`` out of range.

    Example:
      >>> import jax.numpy as jnp
      >>> import rectax as rx
      >>> rx.crelu(jnp.array([-2.0, 0.0, 3.0]))
      Array([0., 0., 3., 2., 0., 0.], dtype=float32)

    See also: :func:`relu`, :func:`rectax.recycle.recycle` (another cure for dead units).
    """
    arr, weak = _input("crelu", x, "keep")
    if jnp.issubdtype(arr.dtype, jnp.unsignedinteger):
        raise TypeError(
            f"rectax.crelu: x must be floating or signed, got dtype {arr.dtype} (-x would wrap)."
        )
    if not isinstance(axis, int) or isinstance(axis, bool):
        raise TypeError(f"rectax.crelu: axis must be an int, got {axis!r}.")
    if not -arr.ndim <= axis < arr.ndim:
        raise ValueError(
            f"rectax.crelu: axis must be in [-{arr.ndim}, {arr.ndim}) for an input of shape "
            f"{arr.shape}, got {axis}."
            + (" crelu needs an axis to concatenate along." if arr.ndim == 0 else "")
        )
    return _output(_crelu_along(axis)(arr), weak)


register(
    ActivationInfo(
        "crelu",
        crelu,
        "two_valued",
        # Forward: each of the 2n outputs has E[f(z)^2] = 1/2 (ReLU's slope 0). Backward: each
        # pre-activation gets one of its two outputs' gradients, E[f'(z)^2] = 1 (slope 1).
        slope=lambda p, backward: 1.0 if backward else 0.0,
        width=2,
    )
)


_squared_relu = from_input(lambda x: jnp.square(jnp.maximum(x, 0)), lambda x: 2 * jnp.maximum(x, 0))


def squared_relu(x: ArrayLike) -> Array:
    r"""Squared ReLU (So et al. 2021, Primer).

    .. math:: \mathrm{squared\_relu}(x) = \max(x, 0)^2, \qquad f'(x) = 2\max(x, 0)

    Integer inputs stay integer and, like ``jnp.square`` and the rest of jax.numpy's integer
    arithmetic, wrap around on overflow: ``squared_relu(jnp.int8(100))`` is 16 (10000 mod 256).
    Cast to a wider dtype first (``x.astype(jnp.int32)``) when the squares may not fit.

    Args:
      x: input array; floating or integer (integers stay integer and wrap around on overflow).

    Returns:
      An array of ``x``'s shape and dtype.

    Example:
      >>> import jax.numpy as jnp
      >>> import rectax as rx
      >>> rx.squared_relu(jnp.array([-2.0, 3.0]))
      Array([0., 9.], dtype=float32)
    """
    x, weak = _input("squared_relu", x, "keep")
    return _output(_squared_relu(x), weak)


# The output-only rule, f'(x) = 2·sqrt(y): reverse mode keeps only y, which the next matmul keeps
# anyway. XLA:CPU (8 x 1024 MLP, batch 2048): the same temp memory as _squared_relu in f32 under
# none/remat/remat-bits and in bf16 under none/remat, 0.83x under remat-bits in bf16. Not the
# default: where x² underflows (|x| < 1.1e-19 in float32) its derivative is 0, not 2x. For the
# per-target residual choice, on the targets where it lowers the peak.
_squared_relu_from_output = from_output(
    _wide(lambda x: jnp.square(jnp.maximum(x, 0))), _wide(lambda y: 2 * jnp.sqrt(y))
)


register(ActivationInfo("squared_relu", squared_relu, "from_input"))


# --------------------------------------------------------------------------- exponential family
def _nonpositive(x: Array) -> Array:
    """``min(x, 0)`` whose derivative at 0 is 1 (the ``x <= 0`` branch owns the kink)."""
    return jnp.where(x > 0, jnp.zeros_like(x), x)


def _elu_forward(x: Array, alpha: Array) -> Array:
    return jnp.where(x > 0, x, alpha * jnp.expm1(_nonpositive(x)))


def _elu_derivative(x: Array, alpha: Array) -> Array:
    # From the input, never from expm1: exact in the whole negative tail.
    return jnp.where(x > 0, jnp.ones_like(x), alpha * jnp.exp(_nonpositive(x)))


_elu = from_input(_wide(_elu_forward), _wide(_elu_derivative))


def elu(x: ArrayLike, alpha: ArrayLike = 1.0, *, bits: int | None = None) -> Array:
    r"""Exponential linear unit (Clevert et al. 2016).

    .. math:: \mathrm{elu}(x) = x \text{ if } x > 0 \text{ else } \alpha(e^x - 1)

    The derivative is 1 for ``x > 0`` and ``α·exp(x)`` otherwise (``α`` at 0, as jax and torch),
    computed from the input as ``α·exp(min(x, 0))``: correct in float32 below -17 and in bfloat16
    below -6, where ``jax.nn.elu``'s gradient through ``expm1`` is wrong or zero.
    ``elu(-inf) = -α``. ``alpha`` is differentiable.

    Args:
      x: floating input array.
      alpha: saturation value for negative inputs (default 1.0).
      bits: None (default) for the exact derivative, or 1-4 for a few-bit one
        (:func:`few_bit`; precomputed table at the default hyperparameters, else computed
        once and cached; hyperparameters must then be concrete numbers).

    Returns:
      An array of ``x``'s shape and dtype.

    Example:
      >>> import jax.numpy as jnp
      >>> import rectax as rx
      >>> rx.elu(jnp.array([-jnp.inf, 0.0, 2.0]))
      Array([-1.,  0.,  2.], dtype=float32)
    """
    _check_elu(alpha)
    x, weak = _input("elu", x, "float")
    if bits is not None:
        _finite_for_bits("elu", "alpha", alpha)
        return _output(_few_bit.builtin("elu", elu, bits, alpha=alpha)(x), weak)
    return _output(_elu(x, alpha), weak)


def _check_elu(alpha: Any) -> None:
    _hyper("elu", "alpha", alpha)


register(ActivationInfo("elu", elu, "from_input", jax_nn=(jax.nn.elu,), check=_check_elu))


_celu = from_input(
    _wide(lambda x, alpha: jnp.maximum(x, 0) + alpha * jnp.expm1(_nonpositive(x) / alpha)),
    _wide(lambda x, alpha: jnp.where(x > 0, jnp.ones_like(x), jnp.exp(_nonpositive(x) / alpha))),
)


def celu(x: ArrayLike, alpha: ArrayLike = 1.0, *, bits: int | None = None) -> Array:
    r"""Continuously differentiable ELU (Barron 2017).

    .. math:: \mathrm{celu}(x) = \max(0, x) + \min(0, \alpha(e^{x/\alpha} - 1))

    Derivative 1 for ``x > 0``, ``exp(x/α)`` otherwise (1 at 0), computed from the input.

    Args:
      x: floating input array.
      alpha: positive scale (default 1.0).
      bits: None (default) for the exact derivative, or 1-4 for a few-bit one
        (:func:`few_bit`; precomputed table at the default hyperparameters, else computed
        once and cached; hyperparameters must then be concrete numbers).

    Returns:
      An array of ``x``'s shape and dtype.

    Raises:
      ValueError: if a concrete ``alpha`` is not positive.

    Example:
      >>> import jax.numpy as jnp
      >>> import rectax as rx
      >>> rx.celu(jnp.array([-jnp.inf, 1.0]), alpha=2.0)
      Array([-2.,  1.], dtype=float32)
    """
    _check_celu(alpha)
    x, weak = _input("celu", x, "float")
    if bits is not None:
        _finite_for_bits("celu", "alpha", alpha)
        return _output(_few_bit.builtin("celu", celu, bits, alpha=alpha)(x), weak)
    return _output(_celu(x, alpha), weak)


def _check_celu(alpha: Any) -> None:
    _check("celu", "alpha", _hyper("celu", "alpha", alpha), lambda a: a > 0, "positive")


register(
    ActivationInfo(
        "celu",
        celu,
        "from_input",
        check=_check_celu,
        jax_nn=(jax.nn.celu,),
    )
)


# λ·elu(x, α), with λ applied before the one rounding to a low-precision dtype.
_selu = from_input(
    _wide(lambda x: SELU_SCALE * _elu_forward(x, jnp.asarray(SELU_ALPHA, x.dtype))),
    _wide(lambda x: SELU_SCALE * _elu_derivative(x, jnp.asarray(SELU_ALPHA, x.dtype))),
)


def selu(x: ArrayLike, *, bits: int | None = None) -> Array:
    r"""Scaled ELU (Klambauer et al. 2017), self-normalising with LeCun-normal init.

    .. math:: \mathrm{selu}(x) = \lambda\,\mathrm{elu}(x, \alpha),\quad
      \alpha = 1.6732632423543772848\ldots,\ \lambda = 1.0507009873554804934\ldots

    Derivative ``λ`` for ``x > 0``, ``λα·exp(x)`` otherwise (``λα = 1.7580993`` at 0).

    Args:
      x: floating input array.
      bits: None (default) for the exact derivative, or 1-4 for a few-bit one
        (:func:`few_bit`, precomputed table).

    Returns:
      An array of ``x``'s shape and dtype.

    Example:
      >>> import jax.numpy as jnp
      >>> import rectax as rx
      >>> rx.selu(jnp.array([1.0]))
      Array([1.050701], dtype=float32)
    """
    x, weak = _input("selu", x, "float")
    if bits is not None:
        return _output(_few_bit.builtin("selu", selu, bits)(x), weak)
    return _output(_selu(x), weak)


register(
    ActivationInfo(
        "selu",
        selu,
        "from_input",
        jax_nn=(jax.nn.selu,),
        self_normalizing=True,
    )
)


# --------------------------------------------------------------------------- smooth gates
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_GELU_CUBIC = 0.044715


def _gelu_exact_forward(x: Array) -> Array:
    xc = jnp.clip(x, -_TAIL, _TAIL)
    return jnp.maximum(x, -_TAIL) * (0.5 * lax.erfc(-xc * _INV_SQRT_2))


def _gelu_exact_derivative(x: Array) -> Array:
    xc = jnp.clip(x, -_TAIL, _TAIL)
    return 0.5 * lax.erfc(-xc * _INV_SQRT_2) + xc * _INV_SQRT_2PI * jnp.exp(-0.5 * xc * xc)


_GELU_TANH_LINEAR = -2 * _SQRT_2_OVER_PI
_GELU_TANH_CUBIC = -2 * _SQRT_2_OVER_PI * _GELU_CUBIC


def _gelu_tanh_gate(x: Array) -> Array:
    # 0.5 (1 + tanh(u)) written as 1 / (1 + exp(-2u)): keeps relative accuracy in the negative
    # tail, where 1 + tanh(u) cancels; saturates to exactly 0 or 1 (no NaN) when u overflows.
    # -2u = x (c1 + c3 x²): four flops, so that the forward (x · gate) is at most one flop per
    # byte accessed, a fusion that XLA:CPU does not split across threads (benchmarks/fwd_bwd.py).
    return 1 / (1 + jnp.exp(x * (_GELU_TANH_LINEAR + _GELU_TANH_CUBIC * (x * x))))


def _gelu_tanh_forward(x: Array) -> Array:
    return jnp.maximum(x, -_TAIL) * _gelu_tanh_gate(x)


def _sigmoid_pair(z: Array) -> tuple[Array, Array]:
    """``(σ(z), σ(-z))`` from ``exp(-|z|)``: no overflow, and no ``1 - σ`` cancellation.

    ``a = exp(min(z, 0))`` and ``b = exp(-max(z, 0))`` are ``exp(-|z|)`` and 1 in some order,
    so ``σ(z) = a / (a + b)`` and ``σ(-z) = b / (a + b)``: bitwise the values of choosing
    ``1 / (1 + t)`` or ``t / (1 + t)`` by the sign of ``z`` with ``t = exp(-|z|)``, without the
    ``z >= 0`` predicate. XLA:TPU kept such a predicate, packed to a ``u8`` array, for the
    backward pass beside the input, above jax.nn's peak in the decoders' SwiGLU and GELU FFNs
    (``python -m benchmarks --target tpu-v5e``; ``docs/memory.md``).
    """
    a = jnp.exp(jnp.minimum(z, 0))
    b = jnp.exp(-jnp.maximum(z, 0))
    inv = 1 / (a + b)
    return a * inv, b * inv


def _gelu_tanh_derivative(x: Array) -> Array:
    xc = jnp.clip(x, -_TAIL, _TAIL)
    s, c = _sigmoid_pair(2 * _SQRT_2_OVER_PI * (xc + _GELU_CUBIC * xc * xc * xc))
    return s + xc * (2 * s * c * _SQRT_2_OVER_PI * (1 + 3 * _GELU_CUBIC * xc * xc))


_gelu_exact = from_input(_wide(_gelu_exact_forward), _wide(_gelu_exact_derivative))
_gelu_tanh = from_input(_wide(_gelu_tanh_forward), _wide(_gelu_tanh_derivative))


def _gelu_is_tanh(approximate: Any) -> bool:
    """True for the tanh form; accepts what jax.nn.gelu accepts (bools, NumPy bools, 0, 1)."""
    if isinstance(approximate, str):
        if approximate in ("tanh", "none"):
            return approximate == "tanh"
    elif isinstance(approximate, bool | np.bool_ | int | np.integer) and approximate in (0, 1):
        return bool(approximate)
    raise ValueError(
        "rectax.gelu: approximate must be True, False, 'tanh' or 'none' (or 1, 0), got "
        f"{approximate!r}."
    )


def gelu(
    x: ArrayLike,
    approximate: bool | Literal["none", "tanh"] = True,
    *,
    bits: int | None = None,
) -> Array:
    r"""Gaussian error linear unit (Hendrycks & Gimpel 2016).

    .. math::
      \mathrm{gelu}(x) = x\,\Phi(x) \quad\text{(exact)},\qquad
      \tfrac{x}{2}\bigl(1 + \tanh(\sqrt{2/\pi}(x + 0.044715x^3))\bigr) \quad\text{(tanh)}

    ``approximate`` accepts jax.nn's booleans (default True, the tanh form, as jax and flax;
    torch and keras default to the exact form) and torch's strings ``'none'``/``'tanh'``.
    Unlike ``jax.nn.gelu``, ``gelu(-inf) = 0`` and the gradient is finite (0 or 1) at ±inf and
    ±finfo.max in every dtype; the negative tail is computed through ``erfc``/``sigmoid`` so it
    keeps relative accuracy.

    Args:
      x: floating input array.
      approximate: True or ``'tanh'`` for the tanh form, False or ``'none'`` for the exact one.
      bits: None (default) for the exact derivative, or 1-4 for a few-bit one
        (:func:`few_bit`, precomputed table). On XLA:GPU a float16 or bfloat16 input's codes
        are read off the output and a 1-bit side mask rather than kept (``docs/memory.md``).

    Returns:
      An array of ``x``'s shape and dtype.

    Raises:
      ValueError: for any other ``approximate``.

    Example:
      >>> import jax.numpy as jnp
      >>> import rectax as rx
      >>> rx.gelu(jnp.array([-jnp.inf, 0.0, 1.0]), approximate="none")
      Array([-0.       ,  0.       ,  0.8413447], dtype=float32)
    """
    fn = _gelu_tanh if _gelu_is_tanh(approximate) else _gelu_exact
    x, weak = _input("gelu", x, "inexact")
    if bits is not None:
        tanh = fn is _gelu_tanh
        return _output(_few_bit.builtin("gelu", gelu, bits, approximate=tanh)(x), weak)
    return _output(fn(x), weak)


register(
    ActivationInfo(
        "gelu",
        gelu,
        "from_input",
        jax_nn=(jax.nn.gelu,),
        variants={"gelu_tanh": {"approximate": True}, "gelu_exact": {"approximate": False}},
    )
)


def _silu_derivative(x: Array) -> Array:
    s, c = _sigmoid_pair(x)  # c = σ(-x) = 1 - σ(x), without the cancellation where s ≈ 1
    return s + jnp.clip(x, -_SILU_TAIL, _SILU_TAIL) * s * c


def _silu_forward(x: Array) -> Array:
    return jnp.maximum(x, -_SILU_TAIL) * jax.nn.sigmoid(x)


_silu = from_input(_wide(_silu_forward), _wide(_silu_derivative))


def silu(x: ArrayLike, *, bits: int | None = None) -> Array:
    r"""Sigmoid linear unit, also called swish (Ramachandran et al. 2017).

    .. math:: \mathrm{silu}(x) = x\,\sigma(x), \qquad
      f'(x) = \sigma(x)\bigl(1 + x(1 - \sigma(x))\bigr)

    ``silu(-inf) = 0`` and the derivative is 0 and 1 at -inf and +inf.

    Args:
      x: floating input array.
      bits: None (default) for the exact derivative, or 1-4 for a few-bit one
        (:func:`few_bit`, precomputed table).

    Returns:
      An array of ``x``'s shape and dtype.

    Example:
      >>> import jax.numpy as jnp
      >>> import rectax as rx
      >>> rx.silu(jnp.array([-jnp.inf, 0.0]))
      Array([-0.,  0.], dtype=float32)
    """
    x, weak = _input("silu", x, "error")
    if bits is not None:
        return _output(_few_bit.builtin("silu", silu, bits)(x), weak)
    return _output(_silu(x), weak)


swish = silu


register(
    ActivationInfo(
        "silu",
        silu,
        "from_input",
        aliases=("swish",),
        jax_nn=(jax.nn.silu, jax.nn.swish),
    )
)


def _softplus_core(x: Array, beta: Array, threshold: Array) -> Array:
    # max(z, 0) / β written as max(x, 0): βx may overflow (3e38 · 1.5), and the β-gradient of
    # max(βx, 0) / β is x/β - βx/β², a cancellation of two huge terms (-142.7 at x = 1e10).
    z = jnp.minimum(beta * x, threshold)
    return jnp.maximum(x, 0) + jnp.log1p(jnp.exp(-jnp.abs(z))) / beta


def _softplus_forward(x: Array, beta: Array, threshold: Array) -> Array:
    return jnp.where(beta * x > threshold, x, _softplus_core(x, beta, threshold))


def _softplus_derivative(x: Array, beta: Array, threshold: Array) -> Array:
    z = beta * x
    return jnp.where(z > threshold, jnp.ones_like(x), jax.nn.sigmoid(z))


_softplus = from_input(_wide(_softplus_forward), _wide(_softplus_derivative))


def softplus(
    x: ArrayLike,
    beta: ArrayLike = 1.0,
    threshold: ArrayLike | None = 20.0,
    *,
    bits: int | None = None,
) -> Array:
    r"""Softplus, a smooth ReLU, with torch's ``beta`` and ``threshold``.

    .. math:: \mathrm{softplus}(x) = \tfrac{1}{\beta}\log(1 + e^{\beta x}),
      \text{ and } x \text{ where } \beta x > \text{threshold}

    Computed stably as ``(max(z, 0) + log1p(exp(-|z|))) / β`` with ``z = βx``. With the defaults
    it equals ``jax.nn.softplus`` to float32 rounding (the linear tail above 20 is exact in
    float32; in float64 it differs from the smooth function by at most 2e-9). Pass
    ``threshold=None`` for the smooth function everywhere. The derivative is ``σ(βx)`` (0.5 at 0),
    and 1 in the linear tail; ``beta`` is differentiable.

    Args:
      x: floating input array.
      beta: positive sharpness (default 1.0).
      threshold: ``βx`` above which the function is the identity (default 20.0, as torch), or None.
      bits: None (default) for the exact derivative, or 1-4 for a few-bit one
        (:func:`few_bit`; precomputed table at the default hyperparameters, else computed
        once and cached; hyperparameters must then be concrete numbers).

    Returns:
      An array of ``x``'s shape and dtype.

    Raises:
      ValueError: if a concrete ``beta`` is not positive.

    Example:
      >>> import jax.numpy as jnp
      >>> import rectax as rx
      >>> rx.softplus(jnp.array([0.0, 30.0]))
      Array([ 0.6931472, 30.       ], dtype=float32)
    """
    _check_softplus(beta, threshold)
    x, weak = _input("softplus", x, "inexact")
    if bits is not None:
        _finite_for_bits("softplus", "beta", beta)
        fb = _few_bit.builtin("softplus", softplus, bits, beta=beta, threshold=threshold)
        return _output(fb(x), weak)
    return _output(_softplus(x, beta, math.inf if threshold is None else threshold), weak)


def _check_softplus(beta: Any, threshold: Any) -> None:
    _check("softplus", "beta", _hyper("softplus", "beta", beta), lambda b: b > 0, "positive")
    if threshold is not None:
        _hyper("softplus", "threshold", threshold)


register(
    ActivationInfo(
        "softplus",
        softplus,
        "from_input",
        check=_check_softplus,
        jax_nn=(jax.nn.softplus,),
    )
)


# --------------------------------------------------------------------------- jax.nn's others
_hard_sigmoid = two_valued(
    _wide(lambda x: jnp.clip(x + 3, 0, 6) / 6),
    lambda x: (x > -3) & (x < 3),
    lambda: (1 / 6, 0),
)


def hard_sigmoid(x: ArrayLike) -> Array:
    r"""Hard sigmoid (Howard et al. 2019, MobileNetV3): ``relu6(x + 3) / 6``.

    .. math:: \mathrm{hard\_sigmoid}(x) = \min(\max(x + 3, 0), 6) / 6

    The derivative is 1/6 on the open interval (-3, 3) and 0 elsewhere, including both kinks
    (as ``jax.nn.hard_sigmoid``, whose relu6 takes 0 at its kinks). Reverse mode keeps 1 bit per
    element.

    Args:
      x: input array; floating, or integer (promoted as ``jax.nn.hard_sigmoid`` does).

    Returns:
      An array of ``x``'s shape and dtype.

    Example:
      >>> import jax.numpy as jnp
      >>> import rectax as rx
      >>> rx.hard_sigmoid(jnp.array([-4.0, 0.0, 1.5, 4.0]))
      Array([0.  , 0.5 , 0.75, 1.  ], dtype=float32)

    See also: :func:`hard_silu`, :func:`relu6`, :func:`jax.nn.hard_sigmoid`.
    """
    x, weak = _input("hard_sigmoid", x, "float")
    return _output(_hard_sigmoid(x), weak)


register(
    ActivationInfo(
        "hard_sigmoid",
        hard_sigmoid,
        "two_valued",
        jax_nn=(jax.nn.hard_sigmoid,),
        kinks=(-3.0, 3.0),
    )
)


def _hard_silu_derivative(x: Array) -> Array:
    # d/dx [x·relu6(x + 3)/6] with relu6's kink convention: 0 at x <= -3, 1 at x >= 3.
    return jnp.where(
        x <= -3, jnp.zeros_like(x), jnp.where(x >= 3, jnp.ones_like(x), (2 * x + 3) / 6)
    )


_hard_silu = from_input(
    # max(x, -3): the gate is 0 there, and -inf·0 would be NaN
    _wide(lambda x: jnp.maximum(x, -3) * (jnp.clip(x + 3, 0, 6) / 6)),
    _wide(_hard_silu_derivative),
)


def hard_silu(x: ArrayLike) -> Array:
    r"""Hard SiLU, also called hard swish (Howard et al. 2019, MobileNetV3).

    .. math:: \mathrm{hard\_silu}(x) = x \cdot \mathrm{relu6}(x + 3) / 6, \qquad
      f'(x) = 0 \ (x \le -3),\ (2x + 3)/6 \ (-3 < x < 3),\ 1 \ (x \ge 3)

    At the kinks the derivative is jax.nn's: 0 at -3 and 1 at 3 (relu6's derivative is 0 at
    its kinks). ``hard_silu(-inf) = 0`` and ``hard_silu(inf) = inf``.

    Args:
      x: input array; floating, or integer (promoted as ``jax.nn.hard_silu`` does).

    Returns:
      An array of ``x``'s shape and dtype.

    Example:
      >>> import jax.numpy as jnp
      >>> import rectax as rx
      >>> rx.hard_silu(jnp.array([-4.0, -1.5, 0.0, 3.0]))
      Array([-0.   , -0.375,  0.   ,  3.   ], dtype=float32)

    See also: :func:`hard_sigmoid`, :func:`silu`, :func:`jax.nn.hard_silu`.
    """
    x, weak = _input("hard_silu", x, "float")
    return _output(_hard_silu(x), weak)


hard_swish = hard_silu

register(
    ActivationInfo(
        "hard_silu",
        hard_silu,
        "from_input",
        aliases=("hard_swish",),
        jax_nn=(jax.nn.hard_silu, jax.nn.hard_swish),
        kinks=(-3.0, 3.0),
    )
)


def _tanh_softplus(x: Array) -> tuple[Array, Array]:
    """``(tanh(softplus(x)), 1 - tanh(softplus(x)))`` from one ``exp(-|x|)``, without overflow.

    With ``u = e^x``, ``tanh(log(1 + u)) = u(u + 2) / (u(u + 2) + 2)``; for ``x > 0`` the same
    in ``u = e^{-x}``: ``(1 + 2u) / (1 + 2u + 2u²)``, whose complement ``2u² / (...)`` keeps
    relative accuracy where the gate is close to 1.
    """
    u = jnp.exp(-jnp.abs(x))
    positive = x > 0
    n = u * (u + 2)
    neg_den = n + 2
    pos_num = 1 + 2 * u
    pos_den = pos_num + 2 * u * u
    g = jnp.where(positive, pos_num / pos_den, n / neg_den)
    c = jnp.where(positive, 2 * u * u / pos_den, 2 / neg_den)
    return g, c


def _mish_forward(x: Array) -> Array:
    return jnp.maximum(x, -_SILU_TAIL) * _tanh_softplus(x)[0]


def _mish_derivative(x: Array) -> Array:
    # tanh(sp) + x·sech²(sp)·σ(x), sech² = (1 - g)(1 + g) without the cancellation near g = 1.
    g, c = _tanh_softplus(x)
    s, _ = _sigmoid_pair(x)
    return g + jnp.clip(x, -_SILU_TAIL, _SILU_TAIL) * (c * (1 + g)) * s


_mish = from_input(_wide(_mish_forward), _wide(_mish_derivative))


def mish(x: ArrayLike, *, bits: int | None = None) -> Array:
    r"""Mish (Misra 2019, arXiv:1908.08681).

    .. math:: \mathrm{mish}(x) = x \tanh(\mathrm{softplus}(x)), \qquad
      f'(x) = \tanh(\mathrm{sp}(x)) + x\,\mathrm{sech}^2(\mathrm{sp}(x))\,\sigma(x)

    ``tanh(softplus(x))`` is computed as a rational function of ``exp(-|x|)``, so nothing
    overflows, ``mish(-inf) = 0`` and the derivative is 0 and 1 at -inf and +inf.

    Args:
      x: input array; floating, or integer (promoted as ``jax.nn.mish`` does).
      bits: None (default) for the exact derivative, or 1-4 for a few-bit one
        (:func:`few_bit`, precomputed table).

    Returns:
      An array of ``x``'s shape and dtype.

    Example:
      >>> import jax.numpy as jnp
      >>> import rectax as rx
      >>> rx.mish(jnp.array([-jnp.inf, 0.0, 1.0]))
      Array([-0.       ,  0.       ,  0.8650984], dtype=float32)
    """
    x, weak = _input("mish", x, "inexact")
    if bits is not None:
        return _output(_few_bit.builtin("mish", mish, bits)(x), weak)
    return _output(_mish(x), weak)


register(
    ActivationInfo(
        "mish",
        mish,
        "from_input",
        jax_nn=(jax.nn.mish,),
    )
)


_sparse_plus = from_input(
    _wide(lambda x: jnp.where(x >= 1, x, jnp.square(jnp.clip(x, -1, 1) + 1) / 4)),
    _wide(lambda x: jnp.clip(x + 1, 0, 2) / 2),
)


def sparse_plus(x: ArrayLike) -> Array:
    r"""Sparse plus (Blondel et al. 2020, Fenchel-Young losses, section 6.2).

    .. math:: \mathrm{sparse\_plus}(x) = 0 \ (x \le -1),\
      \tfrac14 (x + 1)^2 \ (-1 < x < 1),\ x \ (x \ge 1)

    A softplus with exact zeros: its derivative is ``sparse_sigmoid(x) = clip(x + 1, 0, 2)/2``,
    continuous (0 at -1, 1 at 1, as ``jax.nn.sparse_plus``).

    Args:
      x: input array; floating, or integer (promoted as ``jax.nn.sparse_plus`` does).

    Returns:
      An array of ``x``'s shape and dtype.

    Example:
      >>> import jax.numpy as jnp
      >>> import rectax as rx
      >>> rx.sparse_plus(jnp.array([-2.0, 0.0, 3.0]))
      Array([0.  , 0.25, 3.  ], dtype=float32)
    """
    x, weak = _input("sparse_plus", x, "float")
    return _output(_sparse_plus(x), weak)


register(
    ActivationInfo(
        "sparse_plus",
        sparse_plus,
        "from_input",
        jax_nn=(jax.nn.sparse_plus,),
        kinks=(-1.0, 1.0),
    )
)


def _squareplus_parts(x: Array, b: Array) -> tuple[Array, Array, Array]:
    """``x`` clipped to the finite range, ``h = sqrt(x² + b)`` (no overflow) and ``h - x``."""
    finfo = jnp.finfo(x.dtype)
    xc = jnp.clip(x, finfo.min, finfo.max)
    h = jnp.hypot(xc, jnp.sqrt(b))
    negative = xc < 0
    return xc, h, jnp.where(negative, h - xc, jnp.ones_like(h))


def _squareplus_forward(x: Array, b: Array) -> Array:
    # x/2 + h/2 (no overflow at finfo.max), and b / (2(h - x)) for x < 0, where x + h cancels.
    _, h, gap = _squareplus_parts(x, b)
    return jnp.where(x < 0, b / (2 * gap), x / 2 + h / 2)


def _squareplus_derivative(x: Array, b: Array) -> Array:
    # (1 + x/h)/2, and b / (2h(h - x)) for x < 0.
    xc, h, gap = _squareplus_parts(x, b)
    safe_h = jnp.where(h > 0, h, jnp.ones_like(h))
    return jnp.where(x < 0, b / (2 * safe_h * gap), (1 + xc / safe_h) / 2)


_squareplus = from_input(_wide(_squareplus_forward), _wide(_squareplus_derivative))


def squareplus(x: ArrayLike, b: ArrayLike = 4, *, bits: int | None = None) -> Array:
    r"""Squareplus (Barron 2021, arXiv:2112.11687), a softplus without transcendentals.

    .. math:: \mathrm{squareplus}(x) = \frac{x + \sqrt{x^2 + b}}{2}, \qquad
      f'(x) = \frac12\Bigl(1 + \frac{x}{\sqrt{x^2 + b}}\Bigr)

    For ``x < 0`` both are computed in the cancellation-free forms ``b / (2(h - x))`` and
    ``b / (2h(h - x))`` with ``h = sqrt(x² + b)`` (by ``hypot``, so ``x²`` never overflows):
    accurate in the whole negative tail, ``squareplus(-inf) = 0`` and ``squareplus(inf) = inf``.
    ``b`` is differentiable.

    Args:
      x: input array; floating, or integer (promoted as ``jax.nn.squareplus`` does).
      b: smoothness, ``b >= 0`` (default 4, as jax.nn; ``b = 0`` is relu).
      bits: None (default) for the exact derivative, or 1-4 for a few-bit one
        (:func:`few_bit`; precomputed table at the default ``b``, else computed once and
        cached; ``b`` must then be a concrete number).

    Returns:
      An array of ``x``'s shape and dtype.

    Raises:
      ValueError: if a concrete ``b`` is negative.

    Example:
      >>> import jax.numpy as jnp
      >>> import rectax as rx
      >>> rx.squareplus(jnp.array([-jnp.inf, -1.5, 0.0]))
      Array([0. , 0.5, 1. ], dtype=float32)
    """
    _check("squareplus", "b", b, lambda v: v >= 0, "non-negative")
    x, weak = _input("squareplus", x, "inexact")
    if bits is not None:
        return _output(_few_bit.builtin("squareplus", squareplus, bits, b=b)(x), weak)
    return _output(_squareplus(x, b), weak)


register(
    ActivationInfo(
        "squareplus",
        squareplus,
        "from_input",
        jax_nn=(jax.nn.squareplus,),
    )
)


# --------------------------------------------------------------------------- gated linear units
def _gated_input(name: str, arg: str, value: ArrayLike) -> tuple[Array, bool]:
    arr = jnp.asarray(value)
    if not jnp.issubdtype(arr.dtype, jnp.floating):
        raise TypeError(
            f"rectax.{name}: {arg} must be a real floating array, got dtype {arr.dtype}. "
            "Cast first, e.g. x.astype(jnp.float32)."
        )
    return arr, bool(getattr(arr, "weak_type", False))


def _gated_inputs(name: str, gate: ArrayLike, up: ArrayLike) -> tuple[Array, Array, bool]:
    """Validates a gated unit's two inputs: floating, one dtype, one shape (never promoted)."""
    g, g_weak = _gated_input(name, "gate", gate)
    u, u_weak = _gated_input(name, "up", up)
    if g.dtype != u.dtype:
        raise TypeError(
            f"rectax.{name}: gate and up must have the same dtype, got {g.dtype} and {u.dtype} "
            "(rectax never promotes silently; cast one of them)."
        )
    if g.shape != u.shape:
        raise ValueError(
            f"rectax.{name}: gate and up must have the same shape, got {g.shape} and {u.shape}."
        )
    return g, u, g_weak and u_weak


def _gated_call(
    name: str,
    gate: ArrayLike,
    up: ArrayLike,
    exact: Callable[[Array, Array], Array],
    bits: int | None,
    gate_api: str,
    gate_fn: Callable[..., Array],
    **params: Any,
) -> Array:
    g, u, weak = _gated_inputs(name, gate, up)
    if bits is None:
        return _output(exact(g, u), weak)
    fn = _few_bit.gated_builtin(name, gate_api, gate_fn, bits, g.dtype, **params)
    return _output(fn(g, u), weak)


_swiglu = gated(
    _wide(_silu_forward), _wide(_silu_derivative), reference=jax.nn.silu, form="gated_silu"
)


def swiglu(gate: ArrayLike, up: ArrayLike, *, bits: int | None = None) -> Array:
    r"""SwiGLU (Shazeer 2020, arXiv:2002.05202): a SiLU-gated linear unit.

    .. math:: \mathrm{swiglu}(g, u) = \mathrm{silu}(g) \cdot u

    ``gate`` and ``up`` are the two projections of a transformer FFN (Llama, PaLM, Gemma use
    ``swiglu(x @ W_gate, x @ W_up) @ W_down``). One custom rule: reverse mode keeps ``gate``
    and ``up`` (what XLA keeps for ``jax.nn.silu(gate) * up``) and recomputes ``silu`` and its
    derivative in the backward pass; the product is tagged :data:`rectax.RESIDUAL_NAME`. With
    ``bits``, reverse mode keeps ``up`` and the gate's ``bits``-bit derivative codes, and
    ``silu(gate)`` in 16-bit (never ``gate``) or ``gate`` in float32/float64 (``silu``
    recomputed: what measured lowest on XLA:CPU). Traced for XLA:GPU or XLA:TPU (with or
    without ``bits``: neither the rule nor codes lower the peak there, so the gate's
    derivative is exact), or for XLA:CPU in float32 and float64 without ``bits``, it is
    ``jax.nn.silu(gate) * up`` itself, whose graph is the floor there (on XLA:CPU, its step
    time): jax.nn's values and gradients (:func:`rectax.residual_target`).

    Args:
      gate: floating array, the gate's pre-activation.
      up: floating array of ``gate``'s shape and dtype.
      bits: None (default) for the exact derivative, or 1-4 for the gate's few-bit derivative
        (:func:`few_bit`, silu's precomputed table; exact on XLA:GPU and XLA:TPU).

    Returns:
      ``silu(gate) * up``, of ``gate``'s shape and dtype.

    Raises:
      TypeError: if an input is not floating, or their dtypes differ.
      ValueError: if their shapes differ.

    Example:
      >>> import jax.numpy as jnp
      >>> import rectax as rx
      >>> rx.swiglu(jnp.array([0.0, 1.0]), jnp.array([3.0, 2.0]))
      Array([0.       , 1.4621172], dtype=float32)

    See also: :func:`geglu`, :func:`reglu`, :func:`glu`.
    """
    return _gated_call("swiglu", gate, up, _swiglu, bits, "silu", silu)


_geglu_tanh = gated(
    _wide(_gelu_tanh_forward),
    _wide(_gelu_tanh_derivative),
    reference=functools.partial(jax.nn.gelu, approximate=True),
    form="gated_gelu",
)
_geglu_exact = gated(
    _wide(_gelu_exact_forward),
    _wide(_gelu_exact_derivative),
    reference=functools.partial(jax.nn.gelu, approximate=False),
    form="gated_gelu",
)


def geglu(
    gate: ArrayLike,
    up: ArrayLike,
    approximate: bool | Literal["none", "tanh"] = True,
    *,
    bits: int | None = None,
) -> Array:
    r"""GeGLU (Shazeer 2020, arXiv:2002.05202): a GELU-gated linear unit.

    .. math:: \mathrm{geglu}(g, u) = \mathrm{gelu}(g) \cdot u

    As :func:`swiglu`, with :func:`gelu`'s ``approximate`` (default True, the tanh form, as
    jax.nn and Gemma; ``'none'`` or False for the exact one). Traced for XLA:GPU or XLA:TPU
    (with or without ``bits``, whose derivative is then exact), it is
    ``jax.nn.gelu(gate, approximate) * up`` itself.

    Args:
      gate: floating array, the gate's pre-activation.
      up: floating array of ``gate``'s shape and dtype.
      approximate: True or ``'tanh'`` for the tanh form, False or ``'none'`` for the exact one.
      bits: None (default) for the exact derivative, or 1-4 for the gate's few-bit derivative
        (exact on XLA:GPU and XLA:TPU).

    Returns:
      ``gelu(gate, approximate) * up``, of ``gate``'s shape and dtype.

    Raises:
      TypeError: if an input is not floating, or their dtypes differ.
      ValueError: if their shapes differ, or for any other ``approximate``.

    Example:
      >>> import jax.numpy as jnp
      >>> import rectax as rx
      >>> rx.geglu(jnp.array([0.0, 1.0]), jnp.array([3.0, 2.0]), approximate="none")
      Array([0.       , 1.6826894], dtype=float32)
    """
    tanh = _gelu_is_tanh(approximate)
    exact = _geglu_tanh if tanh else _geglu_exact
    return _gated_call("geglu", gate, up, exact, bits, "gelu", gelu, approximate=tanh)


_reglu = gated_from_output(_relu_forward, lambda a: a > 0)


def reglu(gate: ArrayLike, up: ArrayLike) -> Array:
    r"""ReGLU (Shazeer 2020, arXiv:2002.05202): a ReLU-gated linear unit.

    .. math:: \mathrm{reglu}(g, u) = \max(g, 0) \cdot u

    The gate's derivative is 1 for ``gate > 0`` and 0 otherwise (0 at 0, as :func:`relu`),
    read off ``relu(gate)``: reverse mode keeps ``relu(gate)`` (tagged
    :data:`rectax.RESIDUAL_NAME`) and ``up``, never ``gate``; traced for XLA:GPU or XLA:TPU,
    the same rule without its checkpoint or tag (the plain expression's graph there). The
    derivative is already exact in 1 bit, so there is no ``bits``.

    Args:
      gate: floating array, the gate's pre-activation.
      up: floating array of ``gate``'s shape and dtype.

    Returns:
      ``relu(gate) * up``, of ``gate``'s shape and dtype.

    Example:
      >>> import jax.numpy as jnp
      >>> import rectax as rx
      >>> rx.reglu(jnp.array([-1.0, 2.0]), jnp.array([3.0, 2.0]))
      Array([0., 4.], dtype=float32)
    """
    g, u, weak = _gated_inputs("reglu", gate, up)
    return _output(_reglu(g, u), weak)


def _sigmoid_derivative(x: Array) -> Array:
    s, c = _sigmoid_pair(x)
    return s * c


_glu = gated(_wide(jax.nn.sigmoid), _wide(_sigmoid_derivative), tag_16bit=False)


def glu(x: ArrayLike, axis: int = -1) -> Array:
    r"""Gated linear unit (Dauphin et al. 2017), as ``jax.nn.glu``.

    .. math:: \mathrm{glu}(x) = x_1 \cdot \sigma(x_2),\quad
      (x_1, x_2) = \text{the two halves of } x \text{ along } \texttt{axis}

    One custom rule (:func:`swiglu`'s, with a sigmoid gate): the halves are its two inputs.
    The product is tagged :data:`rectax.RESIDUAL_NAME` in float32 and float64 only: a
    bfloat16 product kept by a ``save_only_these_names`` policy beside the recomputed halves
    measured above ``jax.nn.glu``'s peak on XLA:CPU (``docs/memory.md``).

    Args:
      x: floating input array.
      axis: the axis split in two halves; its size must be even (default -1).

    Returns:
      An array of ``x``'s dtype, half as long along ``axis``.

    Raises:
      TypeError: if ``x`` is not floating.
      ValueError: if ``x.shape[axis]`` is odd.

    Example:
      >>> import jax.numpy as jnp
      >>> import rectax as rx
      >>> rx.glu(jnp.array([1.0, 0.0]), axis=0)
      Array([0.5], dtype=float32)
    """
    arr, weak = _gated_input("glu", "x", x)
    if arr.ndim == 0:
        raise ValueError("rectax.glu: x must have at least one axis to split, got a scalar.")
    size = arr.shape[axis]
    if size % 2:
        raise ValueError(
            f"rectax.glu: the size of axis {axis} must be even, got shape {arr.shape}."
        )
    first, second = jnp.split(arr, 2, axis)
    return _output(_glu(second, first), weak)


# --------------------------------------------------------------------------- surrogates
def _describe(fn: Any) -> str:
    return getattr(fn, "__name__", None) or repr(fn)


def surrogate(
    forward: Callable[..., Array],
    derivative: Callable[..., Array] | None = None,
    *,
    mask: Callable[..., Array] | None = None,
    values: Callable[..., tuple[Any, Any]] | None = None,
) -> Callable[..., Array]:
    r"""Builds an activation from any forward function and any backward derivative.

    The result ``f(x, *params)`` computes ``forward(x, *params)``; every AD entry point (grad,
    vjp, jvp, jacfwd, jacrev, hessian) sees the given derivative as its derivative in ``x`` and
    the true derivative in each hyperparameter. Real hyperparameters are cast to ``x``'s floating
    dtype (their gradients summed in float32 or wider). ``forward`` and ``derivative`` may close
    over traced values (a slope computed inside the caller's ``jit``, a ``vmap``-ed constant), as
    with ``jax.custom_jvp``; as there, a value you want a gradient for must be passed as a
    hyperparameter, not closed over. The two forms of :mod:`rectax._core._gradients`:

    * ``surrogate(forward, derivative)``: ``derivative(x, *params)`` returns the elementwise
      factor; reverse mode keeps one array of ``x``'s dtype.
    * ``surrogate(forward, mask=pred, values=v)``: for derivatives that take one of two values,
      ``a`` where ``pred(x, *params)`` holds and ``b`` elsewhere, ``(a, b) = v(*params)``.
      Reverse mode keeps the mask at 1 bit per element. :func:`necro_relu` is this form.

    The result is named ``surrogate(<forward>, <derivative>)`` and documents itself as such:
    it is not ``forward`` (whose derivative it replaces).

    Args:
      forward: the forward pass, elementwise in ``x``.
      derivative: the (surrogate) derivative, for the first form.
      mask: the predicate, for the two-valued form.
      values: ``values(*params) -> (a, b)``, for the two-valued form.

    Returns:
      The activation function.

    Raises:
      TypeError: unless exactly one form is given.

    Example:
      A straight-through Heaviside step, ReLU with a B-SiLU derivative (SUGAR), and NecroReLU
      with slope 0.2 in the two-valued form:

      >>> import jax, jax.numpy as jnp
      >>> import rectax as rx
      >>> step = rx.surrogate(lambda x: (x > 0).astype(x.dtype), lambda x: jnp.ones_like(x))
      >>> jax.grad(lambda x: step(x).sum())(jnp.array([-1.0, 2.0]))
      Array([1., 1.], dtype=float32)
      >>> def bsilu_derivative(x):
      ...     s = jax.nn.sigmoid(x)
      ...     return s + (x + 1.67) * s * (1 - s)
      >>> relu_bsilu = rx.surrogate(rx.relu, bsilu_derivative)
      >>> relu_bsilu.__name__
      'surrogate(relu, bsilu_derivative)'
      >>> relu_bsilu(jnp.array([-1.0, 2.0]))
      Array([0., 2.], dtype=float32)
      >>> necro = rx.surrogate(rx.relu, mask=lambda x: x > 0, values=lambda: (1.0, 0.2))
      >>> jax.grad(lambda x: necro(x).sum())(jnp.array([-1.0, 2.0]))
      Array([0.2, 1. ], dtype=float32)
    """
    if derivative is not None and mask is None and values is None:
        fn = from_input(forward, derivative, jit=False)
        rule = _describe(derivative)
    elif derivative is None and mask is not None and values is not None:
        fn = two_valued(forward, mask, values, jit=False)
        rule = f"{_describe(mask)} ? {_describe(values)}"
    else:
        raise TypeError(
            "rectax.surrogate: give either derivative (surrogate(forward, derivative), with "
            "derivative(x, *params) the factor) or mask and values (surrogate(forward, "
            "mask=pred, values=v), with v(*params) -> (factor where pred, factor elsewhere))."
        )

    def activation(x: ArrayLike, *params: Any) -> Array:
        x, weak = _input("surrogate", x, "keep")
        return _output(fn(x, *params), weak)

    name = f"surrogate({_describe(forward)}, {rule})"
    activation.__name__ = activation.__qualname__ = name
    activation.__doc__ = (
        f"{name}: the forward pass of ``{_describe(forward)}`` with the derivative "
        f"``{rule}`` in every AD mode (built by :func:`rectax.surrogate`)."
    )
    return activation
