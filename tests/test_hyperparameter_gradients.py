"""Hyperparameter gradients of low-precision activations against float64.

A hyperparameter (a slope, ``alpha``, ``beta``) is broadcast over the whole input, so its
gradient is a sum over every element. The sum must be accumulated in float32 or wider and
returned in the hyperparameter's own dtype: accumulated in bfloat16, 2^20 terms of -0.3 sum to
-256 (the true value is -314572.8); in float16 they overflow to -inf.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from scipy import special

import rectax as rx
from rectax import linen as rxl
from rectax import nnx as rxn

LOW = [jnp.bfloat16, jnp.float16]

# The gradient of sum(f(x; p)) in p, per element, in float64 NumPy (hyperparameter at ``p``).


def _d_slope(x: np.ndarray, p: float) -> np.ndarray:
    return np.minimum(x, 0.0)


def _d_elu_alpha(x: np.ndarray, p: float) -> np.ndarray:
    return np.where(x > 0, 0.0, np.expm1(np.minimum(x, 0.0)))


def _d_celu_alpha(x: np.ndarray, p: float) -> np.ndarray:
    u = np.minimum(x, 0.0) / p
    return np.expm1(u) - u * np.exp(u)


def _d_softplus_beta(x: np.ndarray, p: float) -> np.ndarray:
    z = p * x
    return -np.logaddexp(0.0, z) / p**2 + x * special.expit(z) / p


# (name, f(x, p), d/dp per element, p): every activation with a differentiable hyperparameter.
CASES = [
    ("prelu", rx.prelu, _d_slope, 0.25),
    ("leaky_relu", rx.leaky_relu, _d_slope, 0.2),
    # evaluation-mode rrelu: slope (lower + upper) / 2, so each bound gets half the sum
    ("rrelu.lower", lambda x, p: rx.rrelu(x, None, p, 1 / 3), lambda x, p: _d_slope(x, p) / 2, 0.1),
    ("rrelu.upper", lambda x, p: rx.rrelu(x, None, 0.1, p), lambda x, p: _d_slope(x, p) / 2, 0.3),
    ("elu", rx.elu, _d_elu_alpha, 0.7),
    ("celu", rx.celu, _d_celu_alpha, 1.3),
    ("softplus", rx.softplus, _d_softplus_beta, 1.5),
]


def _inputs(n: int, dtype: jnp.dtype) -> jax.Array:
    x = jax.random.normal(jax.random.key(n), (n,), jnp.float32) * 2 - 0.5
    return x.astype(dtype)


def _grad(f, x: jax.Array, p: jax.Array) -> jax.Array:
    # the cotangent of every output is 1; the loss is summed in float32, as a user would
    return jax.jit(jax.grad(lambda p: f(x, p).astype(jnp.float32).sum()))(p)


def _reference(d, x: jax.Array, p: float) -> float:
    return float(np.sum(d(np.asarray(x, np.float64), p)))


@pytest.mark.parametrize("dtype", LOW, ids=lambda d: jnp.dtype(d).name)
@pytest.mark.parametrize(("name", "f", "d", "p"), CASES, ids=[c[0] for c in CASES])
def test_float32_hyperparameter_gradient_matches_float64(name, f, d, p, dtype):
    x = _inputs(2**16, dtype)
    g = _grad(f, x, jnp.float32(p))
    assert g.dtype == jnp.float32
    np.testing.assert_allclose(float(g), _reference(d, x, p), rtol=1e-3)


@pytest.mark.parametrize("dtype", LOW, ids=lambda d: jnp.dtype(d).name)
def test_slope_gradient_at_2_22_elements(dtype):
    """The cheapest case at the size the issue names: 2^22 elements, one float32 slope."""
    x = _inputs(2**22, dtype)
    g = _grad(rx.prelu, x, jnp.float32(0.25))
    np.testing.assert_allclose(float(g), _reference(_d_slope, x, 0.25), rtol=1e-3)


def test_issue_example_bfloat16_slope():
    x = -0.3 * jnp.ones((16, 32, 32, 64), jnp.bfloat16)
    g = jax.grad(lambda a: rx.prelu(x, a).astype(jnp.float32).sum())(jnp.float32(0.25))
    true = float(np.asarray(x[0, 0, 0, 0], np.float64)) * x.size  # -315392 (x is bf16's -0.30078)
    np.testing.assert_allclose(float(g), true, rtol=1e-6)


def test_float16_slope_gradient_is_finite_beyond_float16_range():
    x = -0.3 * jnp.ones((2**20,), jnp.float16)
    g = _grad(rx.prelu, x, jnp.float32(0.25))
    true = float(np.asarray(x[0], np.float64)) * x.size  # about -3.1e5, beyond float16's 65504
    np.testing.assert_allclose(float(g), true, rtol=1e-6)


@pytest.mark.parametrize("dtype", LOW, ids=lambda d: jnp.dtype(d).name)
def test_low_precision_hyperparameter_gets_one_rounding(dtype):
    """A hyperparameter in x's own low precision: the sum in float32, rounded once to it.

    (2^14 elements: the sum stays within float16's range.)
    """
    x = _inputs(2**14, dtype)
    g = _grad(rx.prelu, x, jnp.asarray(0.25, dtype))
    assert g.dtype == dtype
    np.testing.assert_allclose(
        float(g), _reference(_d_slope, x, 0.25), rtol=float(jnp.finfo(dtype).eps)
    )


def test_per_channel_slope_gradient():
    x = _inputs(2**16, jnp.bfloat16).reshape(-1, 4)
    g = _grad(rx.prelu, x, jnp.full((4,), 0.25, jnp.float32))
    ref = np.sum(np.minimum(np.asarray(x, np.float64), 0.0), axis=0)
    np.testing.assert_allclose(np.asarray(g), ref, rtol=1e-3)


def test_slope_derivative_is_zero_where_x_is_not_negative_even_at_inf():
    """The slope's derivative is ``min(x, 0)``: 0 at ``x = +inf`` (never ``inf * 0``), in both
    modes; jax.nn.leaky_relu's own slope gradient is NaN there."""
    x = jnp.array([jnp.inf, 3.0, 0.0, -0.0, -2.0], jnp.float32)
    slope = jnp.float32(0.25)
    _, tangent = jax.jvp(lambda a: rx.prelu(x, a), (slope,), (jnp.float32(1.0),))
    np.testing.assert_array_equal(np.asarray(tangent), [0.0, 0.0, 0.0, 0.0, -2.0])
    assert float(jax.grad(lambda a: jnp.sum(rx.prelu(x, a)))(slope)) == -2.0
    assert np.isnan(float(jax.grad(lambda a: jnp.sum(jax.nn.leaky_relu(x, a)))(slope)))


def test_linen_prelu_slope_gradient_bfloat16():
    x = _inputs(2**16, jnp.bfloat16).reshape(-1, 8)
    layer = rxl.PReLU(num_parameters=8)
    params = layer.init(jax.random.key(0), x)["params"]
    g = jax.grad(lambda p: layer.apply({"params": p}, x).astype(jnp.float32).sum())(params)
    ref = np.sum(np.minimum(np.asarray(x, np.float64), 0.0), axis=0)
    np.testing.assert_allclose(np.asarray(g["negative_slope"]), ref, rtol=1e-3)


def test_nnx_prelu_slope_gradient_float16():
    x = _inputs(2**16, jnp.float16).reshape(-1, 8)
    layer = rxn.PReLU(num_parameters=8)
    g = nnx.grad(lambda m: m(x).astype(jnp.float32).sum())(layer)
    ref = np.sum(np.minimum(np.asarray(x, np.float64), 0.0), axis=0)
    np.testing.assert_allclose(np.asarray(g.negative_slope[...]), ref, rtol=1e-3)


def test_flax_prelu_has_the_low_precision_defect():
    """What the docs say of flax's own PReLU: its slope's gradient is summed in bfloat16."""
    x = -0.3 * jnp.ones((2**16,), jnp.bfloat16)
    layer = nn.PReLU()
    params = layer.init(jax.random.key(0), x)["params"]
    g = jax.grad(lambda p: layer.apply({"params": p}, x).astype(jnp.float32).sum())(params)
    true = float(np.asarray(x[0], np.float64)) * x.size
    assert abs(float(g["negative_slope"]) - true) > 1e-2 * abs(true)  # 3% at 2^16 elements
