"""Inputs users actually send: extreme hyperparameters, integer overflow, closures, containers."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rectax as rx


# --------------------------------------------------------------------------- softplus extremes
@pytest.mark.parametrize("x", [3e38, 3.4e38, 1e10])
def test_softplus_without_threshold_is_finite_at_large_inputs(x):
    y = rx.softplus(jnp.float32(x), beta=1.5, threshold=None)
    # log1p(exp(-1.5 x)) / 1.5 is below float32's spacing at x: the function is x itself
    assert float(y) == pytest.approx(float(np.float32(x)), rel=1e-7)


@pytest.mark.parametrize("x", [1e10, 3.4e38, -1e10, -3.4e38])
def test_softplus_beta_gradient_vanishes_in_both_tails(x):
    """d/dβ [log(1 + e^{βx}) / β] = -log(1 + e^{βx})/β² + x σ(βx)/β, below 1e-30 here."""
    g = jax.grad(lambda b: rx.softplus(jnp.float32(x), beta=b, threshold=None))(jnp.float32(1.5))
    assert abs(float(g)) < 1e-30


def test_softplus_beta_gradient_in_the_middle():
    b, x = 1.5, 0.5
    expected = -np.logaddexp(0.0, b * x) / b**2 + x / (1 + np.exp(-b * x)) / b
    g = jax.grad(lambda b: rx.softplus(jnp.float32(x), beta=b, threshold=None))(jnp.float32(b))
    assert float(g) == pytest.approx(expected, rel=1e-6)


# --------------------------------------------------------------------------- integers
def test_squared_relu_wraps_integers_as_jax_numpy_does_and_says_so():
    x = jnp.array([100, -100, 11], jnp.int8)
    y = rx.squared_relu(x)
    assert y.dtype == jnp.int8
    np.testing.assert_array_equal(y, jnp.square(jnp.maximum(x, 0)))  # [16, 0, 121]
    assert int(y[0]) == 10000 % 256
    assert "wrap around on overflow" in rx.squared_relu.__doc__


# --------------------------------------------------------------------------- surrogate closures
def _closing(c):
    return rx.surrogate(lambda x: x * c, lambda x: jnp.ones_like(x) * c)


def test_surrogate_may_close_over_traced_values():
    x = jnp.array([1.0, -2.0, 3.0])

    def loss(x, c):
        return _closing(c)(x).sum()

    # under jit, grad in x, and vmap over the closed-over value
    assert float(jax.jit(loss)(x, 2.0)) == pytest.approx(4.0)
    np.testing.assert_allclose(jax.jit(jax.grad(loss))(x, 2.0), [2.0, 2.0, 2.0])
    np.testing.assert_allclose(jax.vmap(loss, (None, 0))(x, jnp.array([0.0, 3.0])), [0.0, 6.0])
    np.testing.assert_allclose(
        jax.vmap(jax.grad(loss), (None, 0))(x, jnp.array([1.0, 3.0])), [[1.0] * 3, [3.0] * 3]
    )

    # the same closure through plain jax.custom_jvp, the reference
    def plain(x, c):
        f = jax.custom_jvp(lambda x: x * c)
        f.defjvp(lambda p, t: (p[0] * c, t[0] * c))
        return f(x).sum()

    np.testing.assert_allclose(jax.jit(jax.grad(loss))(x, 2.0), jax.jit(jax.grad(plain))(x, 2.0))
