"""Algebraic laws of the rectifiers, checked on hypothesis-generated arrays."""

import math

import chex
import hypothesis.extra.numpy as hnp
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rectax as rx

# Compilation dominates: few, moderately sized examples; no deadline (first calls compile).
LAWS = settings(max_examples=40, deadline=None)

# No subnormals: XLA:CPU flushes them (relu(1e-45) = 0), which test_activations documents; the
# laws below are about normal numbers.
finite = st.floats(-1e4, 1e4, allow_nan=False, allow_subnormal=False, width=32)
# One fixed shape: the laws are elementwise (ranks are covered in test_activations), and every
# new shape would cost a compilation.
arrays = hnp.arrays(np.float32, (64,), elements=finite)
TINY = float(np.finfo(np.float32).tiny)
positive = st.floats(2.0**-10, 2.0**10, width=32)


@LAWS
@given(arrays)
def test_relu_is_nonnegative_and_odd_part_is_identity(x):
    y = rx.relu(x)
    chex.assert_shape(y, x.shape)
    chex.assert_type(y, jnp.float32)
    assert np.all(np.asarray(y) >= 0)
    # relu(x) - relu(-x) = x exactly: one of the two is 0, the other is |x|.
    np.testing.assert_array_equal(rx.relu(x) - rx.relu(-x), x)


@LAWS
@given(arrays, positive)
def test_relu_is_positively_homogeneous(x, c):
    c = np.float32(c)
    # Exact when c·x is computed first (relu only selects), except that XLA flushes a c·x that
    # falls below the smallest normal.
    np.testing.assert_allclose(rx.relu(c * x), c * np.asarray(rx.relu(x)), rtol=0, atol=TINY)


@LAWS
@given(arrays, st.floats(0.0, 1.0, width=32))
def test_leaky_relu_is_max_of_x_and_ax(x, a):
    a = np.float32(a)
    np.testing.assert_allclose(rx.leaky_relu(x, a), np.maximum(x, a * x), rtol=0, atol=TINY)


@LAWS
@given(arrays, st.floats(0.0, 1.0, width=32))
def test_necro_forward_is_relu(x, a):
    np.testing.assert_array_equal(rx.necro_relu(x, np.float32(a)), rx.relu(x))
    np.testing.assert_array_equal(rx.necro_relu(x, np.float32(a)), np.maximum(x, 0))


@LAWS
@given(arrays)
def test_hard_tanh_is_clip(x):
    np.testing.assert_array_equal(rx.hard_tanh(x), np.clip(x, -1, 1))


# Gauss-Legendre nodes on [-12, 0] and [0, 12] (the kink is an endpoint, so each piece is smooth
# and the rule is exact to rounding; the normal density beyond 12 is below 1e-31).
_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(120)
Z = np.concatenate([6 * (_NODES - 1), 6 * (_NODES + 1)])
Z_WEIGHTS = np.concatenate([6 * _WEIGHTS, 6 * _WEIGHTS]) * np.exp(-(Z**2) / 2) / np.sqrt(2 * np.pi)


def _selu_moments(std: float) -> tuple[float, float]:
    """Mean and variance of rx.selu(z), z ~ N(0, std²), in float64 by quadrature."""
    with jax.enable_x64(True):
        y = np.asarray(rx.selu(jnp.asarray(std * Z, jnp.float64)), np.float64)
    mean = float(Z_WEIGHTS @ y)
    return mean, float(Z_WEIGHTS @ y**2) - mean**2


def test_selu_fixed_point_is_zero_mean_unit_variance():
    """Klambauer et al. 2017's defining law (their α and λ solve it): for z ~ N(0, 1), selu(z)
    has mean 0 and variance 1. rectax's selu in float64 against quadrature, not its formula."""
    assert _selu_moments(1.0) == pytest.approx((0.0, 1.0), abs=1e-12)


@LAWS
@given(st.floats(0.8, 1.5).filter(lambda v: abs(v - 1) > 1e-3))
def test_selu_variance_is_pulled_towards_one(variance):
    """The fixed point attracts (Klambauer et al. 2017, Theorem 1, with normalised weights
    ω = 0, τ = 1): a layer maps an input variance ν in [0.8, 1.5] strictly closer to 1."""
    _, out = _selu_moments(math.sqrt(variance))
    assert abs(out - 1) < abs(variance - 1), (variance, out)


@LAWS
@given(arrays)
def test_softplus_odd_part_is_identity(x):
    x = np.clip(x, -80, 80)  # beyond, one term is 0 and the law is about float32 rounding only
    y = rx.softplus(x, 1.0, None) - rx.softplus(-x, 1.0, None)
    # Rounding of the larger softplus term (≈ |x|) is the only error.
    chex.assert_trees_all_close(y, x, rtol=1e-6, atol=1e-6)


@LAWS
@given(arrays)
def test_celu_with_unit_alpha_is_elu(x):
    chex.assert_trees_all_close(rx.celu(x, 1.0), rx.elu(x, 1.0), rtol=1e-6, atol=0)
    chex.assert_trees_all_close(
        jax.grad(lambda x: jnp.sum(rx.celu(x, 1.0)))(x),
        jax.grad(lambda x: jnp.sum(rx.elu(x, 1.0)))(x),
        rtol=1e-6,
        atol=0,
    )
