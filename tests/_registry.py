"""The one registry of rectax activations that drives the parametrized tests.

Each entry pairs a rectax function with an independent float64 NumPy/SciPy reference of its
forward pass, of the derivative it is documented to use (the true derivative, or the surrogate
for ``necro_relu``) and of the second derivative of that rule (what ``jax.hessian`` must see),
plus its jax.nn counterpart where the semantics are the same, its defaults and its derivative
convention at the kinks. Constants come from the papers and the peers (jax.nn, torch's docs),
never from rectax.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from scipy import special

import rectax as rx

Ref = Callable[[np.ndarray], np.ndarray]

# Published constants (Klambauer et al. 2017), written out independently of rectax.
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946
GELU_CUBIC = 0.044715
SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)

# Torch's defaults (torch.nn.RReLU, torch.nn.PReLU docs).
RRELU_LOWER = 1.0 / 8.0
RRELU_UPPER = 1.0 / 3.0
RRELU_EVAL_SLOPE = (RRELU_LOWER + RRELU_UPPER) / 2  # 0.2291667
PRELU_SLOPE = 0.25  # He et al. 2015 init
RRELU_KEY = jax.random.key(1234)


@dataclasses.dataclass(frozen=True)
class Activation:
    """One public activation and everything the tests need to know about it."""

    name: str
    api: str
    """The public function's name, as its error messages spell it."""
    fn: Callable[[Any], jax.Array]
    """The activation with its default hyperparameters."""
    ref: Ref | None
    """float64 forward reference; None where the forward is random (keyed rrelu)."""
    dref: Ref
    """float64 derivative the function documents (true derivative or surrogate)."""
    d2ref: Ref
    """float64 derivative of ``dref`` (what a hessian of the rule must return)."""
    jax_nn: Callable[[Any], jax.Array] | None = None
    """jax.nn function with the same forward semantics, if any."""
    defaults: dict[str, float] = dataclasses.field(default_factory=dict)
    kinks: dict[float, float] = dataclasses.field(default_factory=dict)
    """Derivative convention at each kink: point -> documented derivative."""
    smooth: bool = False
    """True derivative that is itself smooth away from ``kinks``: check_grads of order 2."""
    surrogate: bool = False
    """The derivative is a surrogate, not the true derivative of the forward pass."""
    integers: bool = False
    """Accepts integer input and keeps its dtype."""
    hyper: tuple[Callable[[Any, Any], jax.Array], tuple[float, ...]] | None = None
    """``(fn(x, h), sweep)`` over one differentiable/vmappable hyperparameter."""
    random: bool = False
    """The forward depends on a PRNG key and the shape of ``x`` (keyed rrelu)."""
    width: int = 1
    """Output elements per input element along the last axis (CReLU: 2). Only the elementwise
    ones (width 1) are in :data:`ACTIVATIONS`; the others are in :data:`WIDENING`, where ``ref``,
    ``dref`` and ``d2ref`` return the halves concatenated: ``dref`` is each output's derivative
    in its input element."""

    def __repr__(self) -> str:
        return self.name


def _where(cond: np.ndarray, a: Any, b: Any) -> np.ndarray:
    return np.where(cond, a, b).astype(np.float64)


def _step(cond: np.ndarray) -> np.ndarray:
    return cond.astype(np.float64)


def _zeros(x: np.ndarray) -> np.ndarray:
    return np.zeros_like(x, dtype=np.float64)


# --------------------------------------------------------------------------- references
def _leaky(a: float) -> tuple[Ref, Ref]:
    return (lambda x: _where(x >= 0, x, a * x)), (lambda x: _where(x >= 0, 1.0, a))


def _elu_ref(x: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    return _where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))


def _elu_dref(x: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    return _where(x > 0, 1.0, alpha * np.exp(np.minimum(x, 0)))


def _elu_d2ref(x: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    return _where(x > 0, 0.0, alpha * np.exp(np.minimum(x, 0)))


def _celu_ref(x: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    return np.maximum(x, 0) + np.minimum(0, alpha * np.expm1(np.minimum(x, 0) / alpha))


def _gelu_exact_ref(x: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        y = x * special.ndtr(x)
    return _where(np.isneginf(x), 0.0, y)


# Beyond |x| = 1000 every gate (Φ, σ) is exactly 0 or 1 in float64 and x·gate'(x) is exactly 0:
# clipping there gives the limits at ±inf instead of 0·inf = NaN.
_GATE_SATURATED = 1000.0


def _normal_pdf(x: np.ndarray) -> np.ndarray:
    return np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)


def _gelu_exact_dref(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, -_GATE_SATURATED, _GATE_SATURATED)
    return special.ndtr(x) + x * _normal_pdf(x)


def _gelu_exact_d2ref(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, -_GATE_SATURATED, _GATE_SATURATED)
    return _normal_pdf(x) * (2 - x * x)


def _gelu_tanh_parts(x: np.ndarray) -> tuple[np.ndarray, ...]:
    """x (clipped), the gate s = 0.5 (1 + tanh(u)) = expit(2u), 1 - s, u' and u''."""
    # expit(±2u) rather than 1 + tanh(u): keeps relative accuracy in the negative tail.
    x = np.clip(x, -_GATE_SATURATED, _GATE_SATURATED)
    u = SQRT_2_OVER_PI * (x + GELU_CUBIC * x**3)
    du = SQRT_2_OVER_PI * (1 + 3 * GELU_CUBIC * x**2)
    d2u = SQRT_2_OVER_PI * 6 * GELU_CUBIC * x
    return x, special.expit(2 * u), special.expit(-2 * u), du, d2u


def _gelu_tanh_ref(x: np.ndarray) -> np.ndarray:
    _, s, _, _, _ = _gelu_tanh_parts(x)  # the gate is exactly 0 or 1 beyond the clip
    with np.errstate(invalid="ignore"):
        return _where(np.isneginf(x), 0.0, x * s)


def _gelu_tanh_dref(x: np.ndarray) -> np.ndarray:
    x, s, c, du, _ = _gelu_tanh_parts(x)
    return s + 2 * x * s * c * du


def _gelu_tanh_d2ref(x: np.ndarray) -> np.ndarray:
    x, s, c, du, d2u = _gelu_tanh_parts(x)
    g = s * c
    return 4 * g * du + 4 * x * g * (c - s) * du * du + 2 * x * g * d2u


def _silu_ref(x: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return _where(np.isneginf(x), 0.0, x * special.expit(x))


def _silu_dref(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, -_GATE_SATURATED, _GATE_SATURATED)
    s = special.expit(x)
    return s * (1 + x * special.expit(-x))


def _silu_d2ref(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, -_GATE_SATURATED, _GATE_SATURATED)
    s = special.expit(x)
    return s * special.expit(-x) * (2 + x * (1 - 2 * s))


def softplus_ref(x: np.ndarray, beta: float = 1.0, threshold: float | None = 20.0) -> np.ndarray:
    """torch's softplus: (1/β) log(1 + e^{βx}), the identity where βx > threshold."""
    smooth = np.logaddexp(0.0, beta * x) / beta
    if threshold is None:
        return smooth
    return _where(beta * x > threshold, x, smooth)


def _softplus_dref(x: np.ndarray, beta: float = 1.0, threshold: float = 20.0) -> np.ndarray:
    return _where(beta * x > threshold, 1.0, special.expit(beta * x))


def _softplus_d2ref(x: np.ndarray, beta: float = 1.0, threshold: float = 20.0) -> np.ndarray:
    s = special.expit(beta * x)
    return _where(beta * x > threshold, 0.0, beta * s * (1 - s))


def _hard_silu_ref(x: np.ndarray) -> np.ndarray:
    """x·relu6(x + 3)/6 (Howard et al. 2019), 0 at -inf (the gate is 0 below -3)."""
    with np.errstate(invalid="ignore"):
        return _where(np.isneginf(x), 0.0, x * (np.clip(x + 3, 0, 6) / 6))


def _hard_silu_dref(x: np.ndarray) -> np.ndarray:
    return _where(x <= -3, 0.0, _where(x >= 3, 1.0, (2 * x + 3) / 6))


def _mish_parts(x: np.ndarray) -> tuple[np.ndarray, ...]:
    """x (clipped), tanh(sp), sech²(sp) and σ(x), sp = softplus(x) (Misra 2019)."""
    x = np.clip(x, -_GATE_SATURATED, _GATE_SATURATED)
    sp = np.logaddexp(0.0, x)
    with np.errstate(over="ignore"):
        sech2 = 1 / np.cosh(sp) ** 2  # no 1 - tanh² cancellation
    return x, np.tanh(sp), sech2, special.expit(x)


def _mish_ref(x: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        y = x * np.tanh(np.logaddexp(0.0, x))
    return _where(np.isneginf(x), 0.0, y)


def _mish_dref(x: np.ndarray) -> np.ndarray:
    x, t, sech2, s = _mish_parts(x)
    return t + x * sech2 * s


def _mish_d2ref(x: np.ndarray) -> np.ndarray:
    x, t, sech2, s = _mish_parts(x)
    return sech2 * (2 * s + x * (s * (1 - s) - 2 * t * s * s))


def squareplus_ref(x: np.ndarray, b: float = 4.0) -> np.ndarray:
    """(x + sqrt(x² + b))/2 (Barron 2021); b/(2(h - x)) for x < 0, where x + h cancels."""
    h = np.hypot(x, math.sqrt(b))
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        return _where(x < 0, b / (2 * (h - x)), x / 2 + h / 2)


def squareplus_dref(x: np.ndarray, b: float = 4.0) -> np.ndarray:
    x = np.clip(x, -1e300, 1e300)  # the limits 0 and 1 at ±inf, not inf/inf
    h = np.hypot(x, math.sqrt(b))
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        return _where(x < 0, b / (2 * h * (h - x)), (1 + x / h) / 2)


def _squareplus_d2ref(x: np.ndarray, b: float = 4.0) -> np.ndarray:
    with np.errstate(over="ignore"):
        return b / (2 * np.hypot(x, math.sqrt(b)) ** 3)


def rrelu_keyed(x: Any) -> jax.Array:
    return rx.rrelu(x, RRELU_KEY)


def _rrelu_keyed_dref(x: np.ndarray) -> np.ndarray:
    """The documented derivative: the sampled slope, recovered from the forward output."""
    y = np.asarray(rrelu_keyed(jnp.asarray(x, jnp.float32)), np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return _where(x >= 0, 1.0, y / x)


_leaky_ref, _leaky_dref = _leaky(0.01)
_necro_dref = lambda x: _where(x > 0, 1.0, 0.1)
_prelu_ref, _prelu_dref = _leaky(PRELU_SLOPE)
_rrelu_ref, _rrelu_dref = _leaky(RRELU_EVAL_SLOPE)

ACTIVATIONS: tuple[Activation, ...] = (
    Activation(
        "relu",
        "relu",
        rx.relu,
        lambda x: np.maximum(x, 0),
        lambda x: _step(x > 0),
        _zeros,
        jax_nn=jax.nn.relu,
        kinks={0.0: 0.0},
        integers=True,
    ),
    Activation(
        "relu6",
        "relu6",
        rx.relu6,
        lambda x: np.clip(x, 0, 6),
        lambda x: _step((x > 0) & (x < 6)),
        _zeros,
        jax_nn=jax.nn.relu6,
        kinks={0.0: 0.0, 6.0: 0.0},
    ),
    Activation(
        "leaky_relu",
        "leaky_relu",
        rx.leaky_relu,
        _leaky_ref,
        _leaky_dref,
        _zeros,
        jax_nn=jax.nn.leaky_relu,
        defaults={"negative_slope": 0.01},
        kinks={0.0: 1.0},
        hyper=(lambda x, a: rx.leaky_relu(x, a), (0.0, 0.01, 0.2, 1.0)),
    ),
    Activation(
        "necro_relu",
        "necro_relu",
        rx.necro_relu,
        lambda x: np.maximum(x, 0),
        _necro_dref,
        _zeros,  # the surrogate's second derivative: zero, not the relu/leaky mix
        jax_nn=jax.nn.relu,  # forward semantics only; the derivative is the surrogate
        defaults={"negative_slope": 0.1},
        kinks={0.0: 0.1},
        surrogate=True,
        integers=True,
        hyper=(lambda x, a: rx.necro_relu(x, a), (0.0, 0.05, 0.1, 1.0)),
    ),
    Activation(
        "prelu",
        "prelu",
        lambda x: rx.prelu(x, PRELU_SLOPE),
        _prelu_ref,
        _prelu_dref,
        _zeros,
        kinks={0.0: 1.0},
        hyper=(lambda x, a: rx.prelu(x, a), (0.0, 0.25, 0.5)),
    ),
    Activation(
        "rrelu_eval",
        "rrelu",
        rx.rrelu,
        _rrelu_ref,
        _rrelu_dref,
        _zeros,
        jax_nn=lambda x: jax.nn.leaky_relu(x, RRELU_EVAL_SLOPE),
        defaults={"lower": RRELU_LOWER, "upper": RRELU_UPPER},
        kinks={0.0: 1.0},
        hyper=(lambda x, lo: rx.rrelu(x, None, lo, 0.5), (0.0, 0.1, 0.5)),
    ),
    Activation(
        "rrelu_keyed",
        "rrelu",
        rrelu_keyed,
        None,
        _rrelu_keyed_dref,
        _zeros,
        defaults={"lower": RRELU_LOWER, "upper": RRELU_UPPER},
        kinks={0.0: 1.0},
        hyper=(lambda x, hi: rx.rrelu(x, RRELU_KEY, 0.1, hi), (0.1, 0.3, 0.5)),
        random=True,
    ),
    Activation(
        "elu",
        "elu",
        rx.elu,
        _elu_ref,
        _elu_dref,
        _elu_d2ref,
        jax_nn=jax.nn.elu,
        defaults={"alpha": 1.0},
        kinks={0.0: 1.0},
        hyper=(lambda x, a: rx.elu(x, a), (0.5, 1.0, 2.0)),
    ),
    Activation(
        "celu",
        "celu",
        rx.celu,
        _celu_ref,
        lambda x: _where(x > 0, 1.0, np.exp(np.minimum(x, 0))),
        lambda x: _where(x > 0, 0.0, np.exp(np.minimum(x, 0))),
        jax_nn=jax.nn.celu,
        defaults={"alpha": 1.0},
        kinks={0.0: 1.0},
        hyper=(lambda x, a: rx.celu(x, a), (0.5, 1.0, 2.0)),
    ),
    Activation(
        "selu",
        "selu",
        rx.selu,
        lambda x: SELU_SCALE * _elu_ref(x, SELU_ALPHA),
        lambda x: SELU_SCALE * _elu_dref(x, SELU_ALPHA),
        lambda x: SELU_SCALE * _elu_d2ref(x, SELU_ALPHA),
        jax_nn=jax.nn.selu,
        kinks={0.0: 1.7580993408473766},  # λα
    ),
    Activation(
        "gelu_tanh",
        "gelu",
        rx.gelu,
        _gelu_tanh_ref,
        _gelu_tanh_dref,
        _gelu_tanh_d2ref,
        jax_nn=lambda x: jax.nn.gelu(x, approximate=True),
        defaults={"approximate": True},
        smooth=True,
    ),
    Activation(
        "gelu_exact",
        "gelu",
        lambda x: rx.gelu(x, approximate=False),
        _gelu_exact_ref,
        _gelu_exact_dref,
        _gelu_exact_d2ref,
        jax_nn=lambda x: jax.nn.gelu(x, approximate=False),
        smooth=True,
    ),
    Activation(  # rx.swish is rx.silu (test_activations checks the alias)
        "silu",
        "silu",
        rx.silu,
        _silu_ref,
        _silu_dref,
        _silu_d2ref,
        jax_nn=jax.nn.silu,
        smooth=True,
    ),
    Activation(
        "softplus",
        "softplus",
        rx.softplus,
        softplus_ref,
        _softplus_dref,
        _softplus_d2ref,
        jax_nn=jax.nn.softplus,
        defaults={"beta": 1.0, "threshold": 20.0},
        kinks={0.0: 0.5},  # not a kink; the documented value σ(0)
        smooth=True,
        hyper=(lambda x, b: rx.softplus(x, b), (0.5, 1.0, 3.0)),
    ),
    Activation(
        "hard_tanh",
        "hard_tanh",
        rx.hard_tanh,
        lambda x: np.clip(x, -1, 1),
        lambda x: _step(np.abs(x) <= 1),
        _zeros,
        jax_nn=jax.nn.hard_tanh,
        kinks={-1.0: 1.0, 1.0: 1.0},
        integers=True,
    ),
    Activation(
        "squared_relu",
        "squared_relu",
        rx.squared_relu,
        lambda x: np.square(np.maximum(x, 0)),
        lambda x: 2 * np.maximum(x, 0),
        lambda x: 2 * _step(x > 0),
        kinks={0.0: 0.0},
        integers=True,
    ),
    Activation(
        "hard_sigmoid",
        "hard_sigmoid",
        rx.hard_sigmoid,
        lambda x: np.clip(x + 3, 0, 6) / 6,
        lambda x: _where((x > -3) & (x < 3), 1 / 6, 0.0),
        _zeros,
        jax_nn=jax.nn.hard_sigmoid,
        kinks={-3.0: 0.0, 3.0: 0.0},
    ),
    Activation(  # rx.hard_swish is rx.hard_silu (test_activations checks the alias)
        "hard_silu",
        "hard_silu",
        rx.hard_silu,
        _hard_silu_ref,
        _hard_silu_dref,
        lambda x: _where((x > -3) & (x < 3), 1 / 3, 0.0),
        jax_nn=jax.nn.hard_silu,
        kinks={-3.0: 0.0, 3.0: 1.0},
        smooth=True,
    ),
    Activation(
        "mish",
        "mish",
        rx.mish,
        _mish_ref,
        _mish_dref,
        _mish_d2ref,
        jax_nn=jax.nn.mish,
        smooth=True,
    ),
    Activation(
        "sparse_plus",
        "sparse_plus",
        rx.sparse_plus,
        lambda x: _where(x <= -1, 0.0, _where(x >= 1, x, (x + 1) ** 2 / 4)),
        lambda x: np.clip(x + 1, 0, 2) / 2,  # sparse_sigmoid (Blondel et al. 2020)
        lambda x: _where((x > -1) & (x < 1), 0.5, 0.0),
        jax_nn=jax.nn.sparse_plus,
        kinks={-1.0: 0.0, 1.0: 1.0},
        smooth=True,
    ),
    Activation(
        "squareplus",
        "squareplus",
        rx.squareplus,
        squareplus_ref,
        squareplus_dref,
        _squareplus_d2ref,
        jax_nn=jax.nn.squareplus,
        defaults={"b": 4.0},
        kinks={0.0: 0.5},  # not a kink; the documented value
        smooth=True,
        hyper=(lambda x, b: rx.squareplus(x, b), (0.5, 4.0, 9.0)),
    ),
)


def _crelu_ref(x: np.ndarray) -> np.ndarray:
    return np.concatenate([np.maximum(x, 0), np.maximum(-x, 0)], axis=-1)


def _crelu_dref(x: np.ndarray) -> np.ndarray:
    """[1, 0] for x > 0, [0, -1] otherwise: one mask for both halves (at 0 too)."""
    return np.concatenate([_step(x > 0), -_step(~(x > 0))], axis=-1)


WIDENING: tuple[Activation, ...] = (
    Activation(
        "crelu",
        "crelu",
        rx.crelu,
        _crelu_ref,
        _crelu_dref,
        lambda x: np.zeros((*x.shape[:-1], 2 * x.shape[-1])),
        jax_nn=lambda x: jnp.concatenate([jax.nn.relu(x), jax.nn.relu(-x)], axis=-1),
        integers=True,
        width=2,
    ),
)
"""Activations whose output is wider than their input (Shang et al. 2016 for CReLU)."""

BY_NAME = {a.name: a for a in (*ACTIVATIONS, *WIDENING)}
DETERMINISTIC = tuple(a for a in ACTIVATIONS if not a.random)
TRUE_DERIVATIVE = tuple(a for a in ACTIVATIONS if not a.surrogate)
WITH_JAX_NN = tuple(a for a in ACTIVATIONS if a.jax_nn is not None)
WITH_HYPER = tuple(a for a in ACTIVATIONS if a.hyper is not None)


# rectax's exports that are not elementwise activations of one input: constructors and aliases
# (swish is silu, hard_swish is hard_silu), and the gated units (two inputs: tests/test_gated.py).
NOT_ELEMENTWISE = {"surrogate", "few_bit", "swish", "hard_swish", "residual_target"}
GATED = {"glu", "swiglu", "geglu", "reglu"}
PUBLIC_ACTIVATIONS = sorted(
    n
    for n in rx.__all__
    if n.islower() and callable(getattr(rx, n)) and n not in NOT_ELEMENTWISE | GATED
)
"""rectax's public elementwise activations, read from its ``__all__`` (not from its catalog)."""


# --------------------------------------------------------------------------- dtypes and tolerances
DTYPES = (jnp.bfloat16, jnp.float16, jnp.float32, jnp.float64)
LOW_PRECISION = (jnp.bfloat16, jnp.float16)

RTOL = {
    jnp.dtype(jnp.bfloat16): 1e-2,
    jnp.dtype(jnp.float16): 1e-3,
    jnp.dtype(jnp.float32): 1e-6,
    jnp.dtype(jnp.float64): 1e-15,
}
"""jax's own per-dtype tolerances (jax._src.public_test_util.default_tolerance)."""

ATOL = {
    jnp.dtype(jnp.bfloat16): 1e4 * float(jnp.finfo(jnp.bfloat16).tiny),
    jnp.dtype(jnp.float16): 10 * float(jnp.finfo(jnp.float16).tiny),
    jnp.dtype(jnp.float32): 1e4 * float(jnp.finfo(jnp.float32).tiny),
    jnp.dtype(jnp.float64): 1e4 * float(jnp.finfo(jnp.float64).tiny),
}
"""Absolute floor for results near zero: a few thousand smallest normals (1.2e-34 in float32).

XLA:CPU flushes subnormal intermediates to zero, so a gate such as σ(x) or Φ(x) that drops below
the smallest normal becomes 0 and the product ``x·gate`` (or the derivative term
``x·u'(x)·gate``) loses up to ``|x|·|u'(x)|·tiny``, which reaches ~1e3·tiny in the negative tails
of gelu/silu/softplus on the -50..50 grid. float16's normal range is so narrow (tiny = 6.1e-5)
that it is flushed in a window of only a few units (x ≈ -4 for tanh-gelu), where the factor is
below 10; a 1e4 factor there would be an absolute tolerance of 0.6, hence 10.
"""


def derivative_atol(act: Activation, dtype: Any) -> float:
    """Absolute floor for derivatives of the smooth gates.

    gelu' = Φ + xφ and silu' = σ + xσ(1 - σ) are sums of terms of size up to ~0.2 that cancel
    near the derivative's minimum (x ≈ -1.5 for gelu, -2.4 for silu), where the condition term
    |x·f''| vanishes; the float error there is absolute, about eps. The exponential family is
    not given this floor, so its tail derivatives stay checked to full relative accuracy.
    """
    return RTOL[jnp.dtype(dtype)] if act.smooth else 0.0


def x64_scope(dtype: Any) -> Any:
    """A scoped ``jax.enable_x64`` for float64 cases, leaving the global x32 default alone."""
    return jax.enable_x64(jnp.dtype(dtype) == jnp.float64)


def beyond_range(values: np.ndarray, dtype: Any) -> np.ndarray:
    """The float64 ``values`` with anything that rounds to ±inf in ``dtype`` as ±inf.

    Rounded by NumPy (ml_dtypes for bfloat16): a value just above ``finfo.max`` but below the
    overflow threshold (``max`` plus half an ulp) rounds to ``max``, not to inf.
    """
    with np.errstate(invalid="ignore", over="ignore"):
        overflows = np.isinf(np.asarray(values).astype(jnp.dtype(dtype))) & np.isfinite(values)
        return np.where(overflows, np.sign(values) * np.inf, values)


def assert_matches_reference(
    actual: Any,
    expected: np.ndarray,
    x: np.ndarray,
    slope: np.ndarray,
    dtype: Any,
    *,
    what: str = "",
    atol: float = 0.0,
) -> None:
    """Elementwise ``|actual - expected| <= RTOL·(|expected| + |x·slope|) + ATOL + atol``.

    ``expected`` is the exact (float64) value of some elementwise ``g`` at the (exactly
    representable) input ``x`` and ``slope = g'(x)``. The ``|x·g'(x)|`` term is ``g``'s condition
    number times ``|g|``: evaluating ``g`` in ``dtype`` perturbs its internal arguments (βx,
    x + 0.044715x³, x/√2, ...) by one rounding, which moves the result by about ``eps·|x·g'(x)|``
    even when every operation is correctly rounded. Without it tanh-gelu at x = -10 (condition
    number ~230) could not meet 1e-6 in float32. Values beyond ``dtype``'s range must be ±inf and
    non-finite expectations must match exactly.
    """
    dtype = jnp.dtype(dtype)
    actual = np.asarray(actual).astype(np.float64)
    expected = beyond_range(np.asarray(expected, np.float64), dtype)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    finite = np.isfinite(expected)
    np.testing.assert_array_equal(
        actual[~finite], expected[~finite], err_msg=f"{what}: non-finite values differ"
    )
    with np.errstate(invalid="ignore", over="ignore"):
        tol = RTOL[dtype] * (np.abs(expected) + np.abs(x * slope)) + ATOL[dtype] + atol
        err = np.abs(actual - expected)
    bad = finite & ~(err <= tol)
    if bad.any():
        i = np.flatnonzero(bad)[:8]
        raise AssertionError(
            f"{what} [{dtype}]: {bad.sum()} of {bad.size} outside tolerance; "
            f"x={x[i]}, actual={actual[i]}, expected={expected[i]}, tol={tol[i]}"
        )


# --------------------------------------------------------------------------- initializer scales
def he_scale(ref: Ref) -> float:
    """The variance-scaling ``scale`` that keeps a layer's second moment (He et al. 2015's
    argument for any activation): ``1 / E[f(z)²]``, z ~ N(0, 1), by adaptive quadrature of the
    float64 reference (2 for relu, 2/(1 + a²) for a leaky slope a)."""
    from scipy import integrate

    def integrand(z: float) -> float:
        return float(ref(np.asarray(z))) ** 2 * math.exp(-z * z / 2) / math.sqrt(2 * math.pi)

    pieces = [(-np.inf, -1.0), (-1.0, 0.0), (0.0, 1.0), (1.0, 6.0), (6.0, np.inf)]
    return 1 / sum(integrate.quad(integrand, lo, hi, epsabs=1e-13)[0] for lo, hi in pieces)
