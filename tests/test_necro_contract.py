"""NecroReLU's contract: forward bitwise ReLU, derivative the leaky one, in every AD mode."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rectax as rx

X = jnp.array([-3.0, -1e-3, -0.0, 0.0, 1e-3, 2.0, 1e4], jnp.float32)


@pytest.mark.parametrize("slope", [0.0, 0.05, 0.1, 1.0])
def test_forward_is_bitwise_relu(slope):
    np.testing.assert_array_equal(
        np.asarray(rx.necro_relu(X, slope)).view(np.uint32),
        np.asarray(jax.nn.relu(X)).view(np.uint32),
    )


@pytest.mark.parametrize("slope", [0.05, 0.1])
def test_reverse_and_forward_mode_use_leaky_derivative(slope):
    expected = np.where(np.asarray(X) > 0, 1.0, slope).astype(np.float32)
    grad = jax.vmap(jax.grad(lambda x: rx.necro_relu(x, slope)))(X)
    _, jvp = jax.jvp(lambda x: rx.necro_relu(x, slope), (X,), (jnp.ones_like(X),))
    np.testing.assert_allclose(grad, expected, rtol=0)
    np.testing.assert_allclose(jvp, expected, rtol=0)
    np.testing.assert_allclose(jnp.diag(jax.jacfwd(lambda x: rx.necro_relu(x, slope))(X)), expected)
