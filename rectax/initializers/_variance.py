"""Variance-scaling initializers, fans and kernel layouts.

Every initializer built here follows :class:`jax.nn.initializers.Initializer`,
``init(key, shape, dtype=None, out_sharding=None) -> jax.Array``, and differs from
:mod:`jax.nn.initializers` in the ways :doc:`docs/initializers.md` lists:

* samples are drawn in float32 (or wider) and cast, so bfloat16 and float16 kernels are unbiased
  and use the whole mantissa;
* invalid ``mode``, ``distribution`` or ``layout`` raise ``ValueError`` when the initializer is
  built;
* the fans follow jax's rule (axes that are neither ``in_axis``, ``out_axis`` nor
  ``batch_axis`` are a convolution's receptive field), which is right for flax's HWIO ``Conv``
  kernels; ``layout=`` names other layouts (torch OIHW, depthwise, attention ``qkv``), and
  ``layout="dense"`` refuses anything but a rank-2 kernel for code that wants that check;
* a shape with a zero dimension gives an empty array; integer and bool dtypes raise ``TypeError``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from functools import partial
from typing import Any, Literal, Protocol

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import DTypeLike

from .._core._dtypes import at_least_float32

Array = jax.Array

Mode = Literal["fan_in", "fan_out", "fan_avg", "fan_geo_avg"]
Distribution = Literal["truncated_normal", "normal", "uniform"]
Layout = Literal["dense", "conv", "hwio", "torch", "oihw", "depthwise", "qkv", "attention_out"]
Axes = int | Sequence[int]

MODES = ("fan_in", "fan_out", "fan_avg", "fan_geo_avg")
DISTRIBUTIONS = ("truncated_normal", "normal", "uniform")
LAYOUTS = ("dense", "conv", "hwio", "torch", "oihw", "depthwise", "qkv", "attention_out")

# Standard deviation of the standard normal truncated to (-2, 2) (jax's and keras's constant).
TRUNCATED_STD = 0.87962566103423978
# RMS modulus of the complex standard normal (E|z|^2 = 1, so |z|^2 ~ Exp(1)) truncated to
# |z| < 2: sqrt(1 - 4 e^-4 / (1 - e^-4)). jax uses 0.95311164380491208, which leaves its complex
# truncated normal with 1.8% too much variance.
COMPLEX_TRUNCATED_STD = math.sqrt(1 - 4 * math.exp(-4) / (1 - math.exp(-4)))


class Initializer(Protocol):
    """What rectax's builders return (for annotations): a callable that satisfies
    :class:`jax.nn.initializers.Initializer`, which :mod:`rectax.initializers` re-exports."""

    def __call__(
        self, key: Array, shape: Sequence[int], dtype: DTypeLike | None = None, /
    ) -> Array: ...


# --------------------------------------------------------------------------- dtypes
def resolve_dtype(name: str, dtype: DTypeLike | None) -> np.dtype:
    """The canonical inexact dtype to return; ``None`` is jax's default float."""
    resolved = jax.dtypes.canonicalize_dtype(jnp.float_ if dtype is None else dtype)
    if not jnp.issubdtype(resolved, jnp.inexact):
        raise TypeError(
            f"rectax.initializers.{name}: dtype must be a floating or complex dtype, got "
            f"{resolved}. Random initializers do not produce integer or boolean arrays; "
            "initialize in float and cast explicitly if you really need to."
        )
    return np.dtype(resolved)


def sampling_dtype(dtype: np.dtype) -> np.dtype:
    """float32 for bfloat16 and float16 (sample wide, then cast); the dtype itself otherwise."""
    return at_least_float32(dtype)


# --------------------------------------------------------------------------- layouts and fans
def check_shape(name: str, shape: Any) -> tuple[int, ...]:
    """``shape`` as a tuple of Python ints, or a ``ValueError``/``TypeError`` naming ``name``.

    As jax's initializers: every dimension an integer >= 0 (``(3.5, 4)`` is refused, not
    truncated to ``(3, 4)``; a negative dimension is refused, not a "math domain error").
    """
    try:
        dims = tuple(shape)
    except TypeError:
        raise TypeError(
            f"rectax.initializers.{name}: shape must be a sequence of ints, got {shape!r}."
        ) from None
    for d in dims:
        if isinstance(d, bool) or not isinstance(d, int | np.integer):
            raise TypeError(
                f"rectax.initializers.{name}: shape must be a sequence of ints, got {shape!r} "
                f"(dimension {d!r} is a {type(d).__name__})."
            )
        if d < 0:
            raise ValueError(
                f"rectax.initializers.{name}: shape must have dimensions >= 0, got {shape!r}."
            )
    return tuple(int(d) for d in dims)


def check_fan(name: str, arg: str, fan: Any) -> None:
    """An explicit fan is a positive int (``fan_in=0.5`` or ``2.5`` is not a count)."""
    if fan is None:
        return
    if isinstance(fan, bool) or not isinstance(fan, int | np.integer) or not fan > 0:
        raise ValueError(f"rectax.initializers.{name}: {arg} must be an int > 0, got {fan!r}.")


def check_axes_args(name: str, **axes: Any) -> None:
    """Axis arguments are ints or sequences of ints, checked when the initializer is built.

    ``he_normal(0.2)`` (a slope passed first, as torch's ``kaiming_normal_(w, a)``) would
    otherwise build and fail at call time with "'float' object is not iterable".
    """
    for arg, value in axes.items():
        items = (value,) if isinstance(value, int | np.integer) else value
        ok = isinstance(items, Sequence) and not isinstance(items, str)
        ok = ok and all(isinstance(a, int | np.integer) and not isinstance(a, bool) for a in items)
        if not ok:
            hint = ""
            if name in ("he_normal", "he_uniform") and isinstance(value, float):
                hint = f" Pass the slope by keyword: {name}(negative_slope={value!r})."
            raise TypeError(
                f"rectax.initializers.{name}: {arg} must be an int or a sequence of ints, got "
                f"{value!r}.{hint}"
            )


def _axes(name: str, arg: str, axes: Axes, ndim: int) -> tuple[int, ...]:
    items = (axes,) if isinstance(axes, int) else tuple(axes)
    out = []
    for a in items:
        if not -ndim <= a < ndim:
            raise ValueError(
                f"rectax.initializers.{name}: {arg}={axes!r} is out of range for a "
                f"rank-{ndim} kernel."
            )
        out.append(a % ndim)
    return tuple(out)


def _preset(layout: str, ndim: int) -> tuple[Axes, Axes, Axes]:
    """(in_axis, out_axis, batch_axis) of a fixed layout."""
    if layout in ("torch", "oihw"):
        return 1, 0, ()
    if layout == "depthwise":
        return (), -1, -2
    if layout == "qkv":
        return 1, (0, 2), ()
    if layout == "attention_out":
        return (0, 1), 2, ()
    return -2, -1, ()  # dense, conv, hwio


_MIN_RANK = {"qkv": 3, "attention_out": 3, "depthwise": 3}
_EXACT_RANK = {"dense": 2, "qkv": 3, "attention_out": 3}


def check_layout(
    name: str, layout: str | None, in_axis: Axes, out_axis: Axes, batch_axis: Axes
) -> None:
    """Build-time validation of ``layout`` against the explicit axes."""
    if layout is None:
        return
    if layout not in LAYOUTS:
        raise ValueError(
            f"rectax.initializers.{name}: invalid layout {layout!r}; expected one of "
            f"{', '.join(map(repr, LAYOUTS))} or None."
        )
    defaults = in_axis == -2 and out_axis == -1 and tuple(np.atleast_1d(batch_axis)) == ()
    if layout not in ("conv", "hwio") and not defaults:
        raise ValueError(
            f"rectax.initializers.{name}: layout={layout!r} fixes the axes; do not also pass "
            "in_axis, out_axis or batch_axis (only layout='conv' combines with explicit axes)."
        )


def compute_fans(
    shape: Sequence[int],
    in_axis: Axes = -2,
    out_axis: Axes = -1,
    batch_axis: Axes = (),
    *,
    layout: str | None = None,
    name: str = "compute_fans",
) -> tuple[int, int]:
    r"""Effective fan-in and fan-out of a kernel.

    .. math::
      \mathrm{fan\_in} = r \prod_{a \in \mathrm{in}} s_a,\qquad
      \mathrm{fan\_out} = r \prod_{a \in \mathrm{out}} s_a,

    where the receptive field :math:`r` is the product of the remaining (non-batch) axes: jax's
    rule, exactly right for flax's HWIO ``Conv`` kernels (flax's ``DenseGeneral`` and attention
    flatten their kernels to rank 2 before calling the initializer). The pitfall: a rank-3
    kernel that is *not* a convolution, such as a raw attention kernel ``(heads, in, head_dim)``
    ``(12, 768, 64)``, gets ``fan_in = 12 * 768 = 9216`` instead of 768 (a 3.5x too small
    std), as in jax. Name its layout (``layout="qkv"``) or its axes to get the right fans.

    Layouts (``None`` means the explicit axes plus jax's receptive field):

    ======================  ======================================  ============================
    layout                  shape                                   fans
    ======================  ======================================  ============================
    ``"dense"``             ``(in, out)`` (flax, keras, haiku)      in, out
    ``"conv"``/``"hwio"``   ``(*spatial, in, out)`` (flax, keras)   in·r, out·r
    ``"torch"``/``"oihw"``  ``(out, in, *spatial)`` (torch)         in·r, out·r
    ``"depthwise"``         ``(*spatial, C, M)`` (keras depthwise)  r, M·r
    ``"qkv"``               ``(heads, in, head_dim)``               in, heads·head_dim
    ``"attention_out"``     ``(heads, head_dim, out)``              heads·head_dim, out
    ======================  ======================================  ============================

    Args:
      shape: the kernel's shape.
      in_axis: input axis or axes (ignored by fixed layouts).
      out_axis: output axis or axes.
      batch_axis: axes excluded from both fans (e.g. stacked layers).
      layout: a layout name from the table, or None.
      name: the caller's name for error messages.

    Returns:
      ``(fan_in, fan_out)`` as Python ints.

    Example:
      >>> from rectax.initializers import compute_fans
      >>> compute_fans((3, 3, 16, 32), layout="conv")
      (144, 288)
      >>> compute_fans((12, 768, 64), layout="qkv")
      (768, 768)
    """
    shape = check_shape(name, shape)
    ndim = len(shape)
    if layout is not None and layout not in ("conv", "hwio"):
        in_axis, out_axis, batch_axis = _preset(layout, ndim)
    if layout is not None:
        exact, least = _EXACT_RANK.get(layout), _MIN_RANK.get(layout, 2)
        if (exact is not None and ndim != exact) or ndim < least:
            want = f"rank {exact}" if exact is not None else f"rank >= {least}"
            raise ValueError(
                f"rectax.initializers.{name}: layout={layout!r} needs a {want} kernel, got "
                f"shape {shape}."
            )
    if ndim < 2 and isinstance(in_axis, int) and in_axis == -2:
        raise ValueError(  # jax's wording, so code that matches jax's message keeps working
            f"rectax.initializers.{name}: Can't compute input and output sizes of a "
            f"{ndim}-dimensional weights tensor with default in_axis. Must be at least 2D or "
            "specify in_axis explicitly (or give the fans: variance_scaling(..., fan_in=, "
            "fan_out=), or fan_in_bias(fan_in) for a bias)."
        )
    ins = _axes(name, "in_axis", in_axis, ndim)
    outs = _axes(name, "out_axis", out_axis, ndim)
    batch = _axes(name, "batch_axis", batch_axis, ndim)
    named = ins + outs + batch
    if len(set(named)) != len(named):
        raise ValueError(
            f"rectax.initializers.{name}: in_axis={in_axis!r}, out_axis={out_axis!r} and "
            f"batch_axis={batch_axis!r} overlap for shape {shape}."
        )
    rest = tuple(a for a in range(ndim) if a not in named)
    receptive = math.prod(shape[a] for a in rest)
    fan_in = math.prod(shape[a] for a in ins) * receptive
    fan_out = math.prod(shape[a] for a in outs) * receptive
    return fan_in, fan_out


def _denominator(mode: str, fan_in: int, fan_out: int) -> float:
    if mode == "fan_in":
        return float(fan_in)
    if mode == "fan_out":
        return float(fan_out)
    if mode == "fan_avg":
        return (fan_in + fan_out) / 2
    return math.sqrt(fan_in * fan_out)


# --------------------------------------------------------------------------- samplers
def _complex_modulus_phase(key: Array, shape: tuple[int, ...], dtype: np.dtype, r: Any) -> Array:
    real = np.dtype(jnp.finfo(dtype).dtype)
    k_r, k_theta = jax.random.split(key)
    u = jax.random.uniform(k_r, shape, real)
    theta = 2 * np.pi * jax.random.uniform(k_theta, shape, real)
    modulus = r(u)
    return jax.lax.complex(modulus * jnp.cos(theta), modulus * jnp.sin(theta)).astype(dtype)


def unit_sample(
    key: Array,
    shape: tuple[int, ...],
    dtype: np.dtype,
    distribution: str,
    out_sharding: Any = None,
) -> Array:
    """Zero-mean, unit-variance samples in ``dtype`` (a sampling dtype: float32 or wider)."""
    if jnp.issubdtype(dtype, jnp.complexfloating):
        if out_sharding is not None:
            raise NotImplementedError("rectax.initializers: out_sharding with complex dtypes.")
        if distribution == "normal":
            return jax.random.normal(key, shape, dtype)
        if distribution == "uniform":  # uniform on the disk of radius sqrt(2), as jax
            return _complex_modulus_phase(key, shape, dtype, lambda u: jnp.sqrt(2 * u))
        tail = 1 - math.exp(-4.0)  # modulus truncated to 2, as jax
        return _complex_modulus_phase(
            key, shape, dtype, lambda u: jnp.sqrt(-jnp.log1p(-tail * u))
        ) / jnp.asarray(COMPLEX_TRUNCATED_STD, dtype)
    kw = {"out_sharding": out_sharding} if out_sharding is not None else {}
    if distribution == "normal":
        return jax.random.normal(key, shape, dtype, **kw)
    if distribution == "uniform":
        return jax.random.uniform(key, shape, dtype, -1.0, 1.0, **kw) * math.sqrt(3.0)
    return jax.random.truncated_normal(key, -2.0, 2.0, shape, dtype, **kw) / TRUNCATED_STD


@partial(jax.jit, static_argnums=(2, 3, 4, 5))
def scaled_sample(
    key: Array,
    std: Any,
    shape: tuple[int, ...],
    dtype: np.dtype,
    distribution: str,
    out_sharding: Any = None,
) -> Array:
    """``std`` times unit samples, drawn in the sampling dtype and cast to ``dtype``."""
    wide = sampling_dtype(dtype)
    sample = unit_sample(key, shape, wide, distribution, out_sharding)
    # std in the sample's own dtype (complex for complex samples): no implicit promotion.
    return (sample * jnp.asarray(std, wide)).astype(dtype)


def _concrete_number(value: Any) -> float | None:
    """A Python or NumPy real scalar as a float; None for jax arrays and tracers (no sync)."""
    if isinstance(value, int | float | np.number | np.ndarray) and np.ndim(value) == 0:
        return float(value)
    return None


def _check_choice(name: str, arg: str, value: Any, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise ValueError(
            f"rectax.initializers.{name}: invalid {arg} {value!r}; expected one of "
            f"{', '.join(map(repr, allowed))}."
        )


# --------------------------------------------------------------------------- public builders
def variance_scaling(
    scale: float,
    mode: Mode,
    distribution: Distribution,
    in_axis: Axes = -2,
    out_axis: Axes = -1,
    batch_axis: Axes = (),
    dtype: DTypeLike | None = None,
    *,
    layout: Layout | None = None,
    fan_in: int | None = None,
    fan_out: int | None = None,
) -> VarianceScaling:
    r"""Initializer whose variance adapts to the kernel's fans (jax-compatible).

    .. math::
      \mathrm{Var}[w] = \frac{\mathrm{scale}}{n},\quad n \in \{\mathrm{fan\_in},\
      \mathrm{fan\_out},\ (\mathrm{fan\_in} + \mathrm{fan\_out})/2,\
      \sqrt{\mathrm{fan\_in}\,\mathrm{fan\_out}}\}

    ``truncated_normal``: :math:`N(0, 1)` truncated to (-2, 2), rescaled by 1/0.8796 so the
    variance is exact; ``normal``: :math:`N(0, \mathrm{Var})`; ``uniform``: :math:`U(-b, b)`,
    :math:`b = \sqrt{3\,\mathrm{Var}}`. Complex dtypes follow jax (modulus-truncated complex
    normal, uniform on a disk). The arguments and defaults are jax's
    (:func:`jax.nn.initializers.variance_scaling`; Glorot & Bengio 2010, He et al. 2015), with
    three differences: mode, distribution and layout are checked here, not at call time; samples
    are drawn in float32 or wider and cast, so bfloat16/float16 results are unbiased; and axes not
    named by ``in_axis``/``out_axis``/``batch_axis`` are an error unless ``layout`` says the
    kernel is a convolution (see :func:`compute_fans`).

    Args:
      scale: the variance scale (torch's ``gain ** 2``); must be >= 0.
      mode: ``"fan_in"``, ``"fan_out"``, ``"fan_avg"`` or ``"fan_geo_avg"``.
      distribution: ``"truncated_normal"``, ``"normal"`` or ``"uniform"``.
      in_axis: input axis or axes (default -2, jax's).
      out_axis: output axis or axes (default -1).
      batch_axis: axes counted in neither fan.
      dtype: default dtype of the result (None: jax's default float).
      layout: a named kernel layout (see :func:`compute_fans`); ``"conv"`` allows a receptive
        field over the unnamed axes.
      fan_in: explicit fan-in, overriding the shape (needed for rank < 2, e.g. biases).
      fan_out: explicit fan-out.

    Returns:
      A :class:`VarianceScaling`: an initializer ``init(key, shape, dtype=None) -> jax.Array``
      that can also draw a few columns of a kernel alone (``VarianceScaling.columns``).

    Example:
      >>> import jax
      >>> from rectax.initializers import variance_scaling
      >>> init = variance_scaling(2.0, "fan_in", "normal")
      >>> w = init(jax.random.key(0), (512, 256))
      >>> w.shape, w.dtype
      ((512, 256), dtype('float32'))
      >>> round(float(w.std() * 512**0.5), 1)
      1.4
    """
    return VarianceScaling(
        scale,
        mode,
        distribution,
        in_axis,
        out_axis,
        batch_axis,
        dtype,
        layout=layout,
        fan_in=fan_in,
        fan_out=fan_out,
    )


@dataclasses.dataclass(frozen=True, eq=False)
class VarianceScaling:
    r"""The initializer :func:`variance_scaling` returns (and so :func:`he_normal`,
    :func:`glorot_uniform`, :func:`lecun_normal`, :func:`for_activation`, ...).

    Calling it, ``init(key, shape, dtype=None, out_sharding=None)``, draws a whole kernel, as
    :class:`jax.nn.initializers.Initializer`. Every entry is drawn independently with the same
    distribution, whose standard deviation comes from the fans of the *whole* ``shape``; so
    any part of the kernel can be drawn alone with exactly the distribution it has in the whole
    draw. ``columns(key, shape, count, dtype=None)`` draws ``count`` slices of the last axis
    (``count`` units' incoming weights: a Dense ``(in, out)`` kernel's columns, a flax ``Conv``
    HWIO kernel's output channels), which is what :func:`rectax.recycle.recycle` uses to redraw
    a few recycled units without drawing the whole kernel.

    The attributes are :func:`variance_scaling`'s arguments, checked when it is built. Instances
    compare and hash by identity (as functions do), pickle, and work as Flax's ``kernel_init``.

    Example:
      >>> import jax
      >>> from rectax.initializers import glorot_normal
      >>> init = glorot_normal()
      >>> init.columns(jax.random.key(0), (300, 100), 3).shape  # 3 columns of a (300, 100)
      (300, 3)
    """

    scale: Any
    mode: Mode
    distribution: Distribution
    in_axis: Axes = -2
    out_axis: Axes = -1
    batch_axis: Axes = ()
    dtype: DTypeLike | None = None
    _: dataclasses.KW_ONLY
    layout: Layout | None = None
    fan_in: int | None = None
    fan_out: int | None = None

    def __post_init__(self) -> None:
        name = "variance_scaling"
        _check_choice(name, "mode", self.mode, MODES)
        _check_choice(name, "distribution", self.distribution, DISTRIBUTIONS)
        check_layout(name, self.layout, self.in_axis, self.out_axis, self.batch_axis)
        concrete_scale = _concrete_number(self.scale)
        if concrete_scale is not None and not concrete_scale >= 0:
            raise ValueError(f"rectax.initializers.{name}: scale must be >= 0, got {self.scale!r}.")
        check_fan(name, "fan_in", self.fan_in)
        check_fan(name, "fan_out", self.fan_out)
        check_axes_args(
            name, in_axis=self.in_axis, out_axis=self.out_axis, batch_axis=self.batch_axis
        )

    def _std(self, shape: tuple[int, ...]) -> Any:
        """The entries' standard deviation for a kernel of ``shape`` (no zero dimension)."""
        mode, fan_in, fan_out = self.mode, self.fan_in, self.fan_out
        needs_in = mode != "fan_out"
        needs_out = mode != "fan_in"
        if (needs_in and fan_in is None) or (needs_out and fan_out is None):
            shape_fans = compute_fans(
                shape,
                self.in_axis,
                self.out_axis,
                self.batch_axis,
                layout=self.layout,
                name="variance_scaling",
            )
        else:
            shape_fans = (0, 0)
        n_in = shape_fans[0] if fan_in is None else int(fan_in)
        n_out = shape_fans[1] if fan_out is None else int(fan_out)
        denominator = _denominator(mode, n_in, n_out)
        concrete_scale = _concrete_number(self.scale)
        if concrete_scale is not None:
            return math.sqrt(concrete_scale / denominator)
        # a traced (or device-array) scale, e.g. under jit: stays on the device
        return jnp.sqrt(jnp.asarray(self.scale) / denominator)

    def __call__(
        self,
        key: Array,
        shape: Sequence[int],
        dtype: DTypeLike | None = None,
        out_sharding: Any = None,
    ) -> Array:
        """A kernel of ``shape`` (``dtype`` None: the initializer's ``dtype``)."""
        shape = check_shape("variance_scaling", shape)
        dtype = resolve_dtype("variance_scaling", self.dtype if dtype is None else dtype)
        if 0 in shape:
            return jnp.zeros(shape, dtype)
        std = self._std(shape)
        if out_sharding is not None:
            return scaled_sample(key, std, shape, dtype, self.distribution, out_sharding)
        # Sampling flat shares one compiled sampler between all shapes of the same size.
        flat = scaled_sample(key, std, (math.prod(shape),), dtype, self.distribution)
        return flat.reshape(shape)

    def columns(
        self, key: Array, shape: Sequence[int], count: int, dtype: DTypeLike | None = None
    ) -> Array:
        """``count`` slices of the last axis of a kernel of ``shape``: ``(*shape[:-1], count)``.

        Each entry has exactly the distribution it has in ``init(key, shape, dtype)`` (the
        standard deviation from the whole ``shape``'s fans, Glorot's fan average included), and
        the entries are independent, as there; the values differ from the whole draw's columns
        (another sample). The cost is that of drawing ``count`` columns, not the kernel.

        Args:
          key: a PRNG key.
          shape: the whole kernel's shape, which sets the fans.
          count: how many slices of the last axis, an int >= 0 (more than ``shape[-1]`` is
            allowed: they are independent draws).
          dtype: the result's dtype (None: the initializer's ``dtype``).

        Returns:
          An array of shape ``(*shape[:-1], count)``.
        """
        name = "variance_scaling"
        shape = check_shape(name, shape)
        dtype = resolve_dtype(name, self.dtype if dtype is None else dtype)
        if isinstance(count, bool) or not isinstance(count, int | np.integer) or count < 0:
            raise ValueError(
                f"rectax.initializers.{name}: columns' count must be an int >= 0, got {count!r}."
            )
        if not shape:
            raise ValueError(
                f"rectax.initializers.{name}: columns needs a kernel of rank >= 1, got shape ()."
            )
        out = (*shape[:-1], int(count))
        if 0 in shape or 0 in out:
            return jnp.zeros(out, dtype)
        std = self._std(shape)
        flat = scaled_sample(key, std, (math.prod(out),), dtype, self.distribution)
        return flat.reshape(out)


def he_normal(
    in_axis: Axes = -2,
    out_axis: Axes = -1,
    batch_axis: Axes = (),
    dtype: DTypeLike | None = None,
    *,
    negative_slope: float = 0.0,
    mode: Mode = "fan_in",
    distribution: Distribution = "truncated_normal",
    layout: Layout | None = None,
) -> VarianceScaling:
    r"""He (Kaiming) normal initializer for (leaky) rectifiers.

    .. math:: \mathrm{Var}[w] = \frac{2}{(1 + a^2)\,n}

    He et al. 2015, "Delving Deep into Rectifiers": :math:`\tfrac12(1 + a^2)\,n\,\mathrm{Var}[w]
    = 1` keeps the forward second moment (``mode="fan_in"``) or the backward one
    (``"fan_out"``) constant through layers with negative slope ``a``. The default distribution
    is jax's truncated normal; ``distribution="normal"`` has the statistics of torch's
    ``kaiming_normal_``.

    Args:
      negative_slope: slope ``a`` of the rectifier's negative part (0 for ReLU).
      mode: which fan to preserve (default ``"fan_in"``).
      distribution: ``"truncated_normal"`` (default), ``"normal"`` or ``"uniform"``.
      in_axis: input axes (see :func:`variance_scaling`).
      out_axis: output axes.
      batch_axis: axes in neither fan.
      layout: named kernel layout, e.g. ``"conv"`` for flax convolutions.
      dtype: default dtype.

    Returns:
      An initializer.

    Example:
      >>> import jax
      >>> from rectax.initializers import he_normal
      >>> w = he_normal(distribution="normal")(jax.random.key(0), (1024, 256))
      >>> round(float(w.std() * 1024**0.5), 2)
      1.41
    """
    check_axes_args("he_normal", in_axis=in_axis, out_axis=out_axis, batch_axis=batch_axis)
    return variance_scaling(
        _he_scale(negative_slope),
        mode,
        distribution,
        in_axis,
        out_axis,
        batch_axis,
        dtype,
        layout=layout,
    )


def _he_scale(negative_slope: float) -> float:
    a = float(negative_slope)
    if not math.isfinite(a):
        raise ValueError(f"rectax.initializers: negative_slope must be finite, got {a!r}.")
    return 2.0 / (1.0 + a * a)


def he_uniform(
    in_axis: Axes = -2,
    out_axis: Axes = -1,
    batch_axis: Axes = (),
    dtype: DTypeLike | None = None,
    *,
    negative_slope: float = 0.0,
    mode: Mode = "fan_in",
    layout: Layout | None = None,
) -> VarianceScaling:
    r"""He (Kaiming) uniform initializer: :math:`U(-b, b)`, :math:`b = \sqrt{6 / ((1+a^2) n)}`.

    torch's ``kaiming_uniform_`` (He et al. 2015). See :func:`he_normal`.

    Args:
      negative_slope: slope ``a`` of the rectifier's negative part.
      mode: which fan to preserve.
      in_axis: input axes.
      out_axis: output axes.
      batch_axis: axes in neither fan.
      layout: named kernel layout.
      dtype: default dtype.

    Returns:
      An initializer.

    Example:
      >>> import jax
      >>> from rectax.initializers import he_uniform
      >>> w = he_uniform()(jax.random.key(0), (600, 10))
      >>> bool(abs(w).max() <= 0.1)
      True
    """
    check_axes_args("he_uniform", in_axis=in_axis, out_axis=out_axis, batch_axis=batch_axis)
    return variance_scaling(
        _he_scale(negative_slope),
        mode,
        "uniform",
        in_axis,
        out_axis,
        batch_axis,
        dtype,
        layout=layout,
    )


def glorot_normal(
    in_axis: Axes = -2,
    out_axis: Axes = -1,
    batch_axis: Axes = (),
    dtype: DTypeLike | None = None,
    *,
    layout: Layout | None = None,
) -> VarianceScaling:
    r"""Glorot (Xavier) normal: truncated normal with :math:`\mathrm{Var}[w] = 2/(n_in + n_out)`.

    Glorot & Bengio 2010; jax's ``glorot_normal`` (truncated), keras's ``GlorotNormal``.

    Args:
      in_axis: input axes.
      out_axis: output axes.
      batch_axis: axes in neither fan.
      layout: named kernel layout.
      dtype: default dtype.

    Returns:
      An initializer.

    Example:
      >>> import jax
      >>> from rectax.initializers import glorot_normal
      >>> glorot_normal()(jax.random.key(0), (4, 8)).shape
      (4, 8)
    """
    return variance_scaling(
        1.0, "fan_avg", "truncated_normal", in_axis, out_axis, batch_axis, dtype, layout=layout
    )


def glorot_uniform(
    in_axis: Axes = -2,
    out_axis: Axes = -1,
    batch_axis: Axes = (),
    dtype: DTypeLike | None = None,
    *,
    layout: Layout | None = None,
) -> VarianceScaling:
    r"""Glorot (Xavier) uniform: :math:`U(-b, b)`, :math:`b = \sqrt{6/(n_in + n_out)}`.

    Glorot & Bengio 2010; keras's default kernel initializer, torch's ``xavier_uniform_``.

    Args:
      in_axis: input axes.
      out_axis: output axes.
      batch_axis: axes in neither fan.
      layout: named kernel layout.
      dtype: default dtype.

    Returns:
      An initializer.

    Example:
      >>> import jax
      >>> from rectax.initializers import glorot_uniform
      >>> w = glorot_uniform()(jax.random.key(0), (30, 30))
      >>> bool(abs(w).max() <= (6 / 60) ** 0.5)
      True
    """
    return variance_scaling(
        1.0, "fan_avg", "uniform", in_axis, out_axis, batch_axis, dtype, layout=layout
    )


def lecun_normal(
    in_axis: Axes = -2,
    out_axis: Axes = -1,
    batch_axis: Axes = (),
    dtype: DTypeLike | None = None,
    *,
    distribution: Distribution = "truncated_normal",
    layout: Layout | None = None,
) -> VarianceScaling:
    r"""LeCun normal: :math:`\mathrm{Var}[w] = 1/n_{in}`, the SELU initializer.

    LeCun et al. 1998; Klambauer et al. 2017 (SELU). flax's default Dense/Conv kernel init.
    Truncated by default (jax, flax, keras); ``distribution="normal"`` is the SELU paper's.

    Args:
      distribution: ``"truncated_normal"`` (default) or ``"normal"``.
      in_axis: input axes.
      out_axis: output axes.
      batch_axis: axes in neither fan.
      layout: named kernel layout.
      dtype: default dtype.

    Returns:
      An initializer.

    Example:
      >>> import jax
      >>> from rectax.initializers import lecun_normal
      >>> w = lecun_normal()(jax.random.key(0), (400, 300))
      >>> round(float(w.std() * 20), 1)
      1.0
    """
    return variance_scaling(
        1.0, "fan_in", distribution, in_axis, out_axis, batch_axis, dtype, layout=layout
    )


def lecun_uniform(
    in_axis: Axes = -2,
    out_axis: Axes = -1,
    batch_axis: Axes = (),
    dtype: DTypeLike | None = None,
    *,
    layout: Layout | None = None,
) -> VarianceScaling:
    r"""LeCun uniform: :math:`U(-b, b)`, :math:`b = \sqrt{3/n_{in}}`.

    LeCun et al. 1998.

    Args:
      in_axis: input axes.
      out_axis: output axes.
      batch_axis: axes in neither fan.
      layout: named kernel layout.
      dtype: default dtype.

    Returns:
      An initializer.

    Example:
      >>> import jax
      >>> from rectax.initializers import lecun_uniform
      >>> w = lecun_uniform()(jax.random.key(0), (300, 5))
      >>> bool(abs(w).max() <= 0.1)
      True
    """
    return variance_scaling(
        1.0, "fan_in", "uniform", in_axis, out_axis, batch_axis, dtype, layout=layout
    )


def fan_in_bias(
    fan_in: int,
    scale: float = 1.0 / 3.0,
    distribution: Distribution = "uniform",
    dtype: DTypeLike | None = None,
) -> VarianceScaling:
    r"""Bias initializer with an explicit fan-in: :math:`\mathrm{Var}[b] = \mathrm{scale}/n`.

    A bias's shape ``(out,)`` does not know the layer's fan-in, so it is given here. The
    defaults are torch's ``nn.Linear``/``nn.Conv`` bias, :math:`U(\pm 1/\sqrt{n})`.

    Args:
      fan_in: the layer's fan-in (``in_features``, or ``in_channels * prod(kernel_size)``).
      scale: variance scale (default 1/3, torch's bias).
      distribution: ``"uniform"`` (default), ``"normal"`` or ``"truncated_normal"``.
      dtype: default dtype.

    Returns:
      An initializer for arrays of any shape.

    Example:
      >>> import jax
      >>> from rectax.initializers import fan_in_bias
      >>> b = fan_in_bias(100)(jax.random.key(0), (1000,))
      >>> bool(abs(b).max() <= 0.1)
      True
    """
    return variance_scaling(scale, "fan_in", distribution, dtype=dtype, fan_in=fan_in)


@partial(jax.jit, static_argnums=(2, 3, 4))
def _orthogonal(
    key: Array, scale: Any, shape: tuple[int, ...], axis: int, dtype: np.dtype
) -> Array:
    n_cols = shape[axis]
    n_rows = math.prod(shape) // n_cols
    q = jax.random.orthogonal(key, n_rows, (), sampling_dtype(dtype), n_cols)
    q = jnp.reshape(q, (*np.delete(np.array(shape), axis).tolist(), n_cols))
    q = jnp.moveaxis(q, -1, axis)
    return (q * scale).astype(dtype)


def orthogonal(
    scale: float = 1.0, column_axis: int = -1, dtype: DTypeLike | None = None
) -> Initializer:
    r"""Orthogonal initializer (Saxe et al. 2014): :math:`W^\top W = \mathrm{scale}^2 I`.

    The kernel is viewed as a matrix with ``shape[column_axis]`` columns; the smaller side is
    orthonormal, scaled by ``scale``. Drawn in float32 (or wider) and cast, so it works for
    bfloat16 and float16, where :func:`jax.nn.initializers.orthogonal` raises.

    Args:
      scale: multiplier of the orthonormal matrix.
      column_axis: the axis holding the orthogonal columns.
      dtype: default dtype.

    Returns:
      An initializer for rank >= 2 shapes.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from rectax.initializers import orthogonal
      >>> w = orthogonal()(jax.random.key(0), (6, 4), jnp.bfloat16)
      >>> bool(jnp.allclose(w.astype(jnp.float32).T @ w.astype(jnp.float32), jnp.eye(4),
      ...                   atol=2e-2))
      True
    """
    name = "orthogonal"
    default_dtype = dtype

    def init(
        key: Array,
        shape: Sequence[int],
        dtype: DTypeLike | None = default_dtype,
        out_sharding: Any = None,
    ) -> Array:
        shape = check_shape(name, shape)
        dtype = resolve_dtype(name, dtype)
        if len(shape) < 2:
            raise ValueError(f"rectax.initializers.{name}: needs a rank >= 2 shape, got {shape}.")
        if out_sharding is not None:
            raise NotImplementedError("rectax.initializers.orthogonal: out_sharding.")
        if 0 in shape:
            return jnp.zeros(shape, dtype)
        axis = _axes(name, "column_axis", column_axis, len(shape))[0]
        return _orthogonal(key, scale, shape, axis, dtype)

    return init


kaiming_normal = he_normal
kaiming_uniform = he_uniform
xavier_normal = glorot_normal
xavier_uniform = glorot_uniform
