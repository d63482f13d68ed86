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


# --------------------------------------------------------------------------- nnx.Activation
@pytest.mark.parametrize(
    "slope",
    [np.full(3, 0.2), jnp.float32(0.2), jnp.full((3,), 0.2)],
    ids=["numpy", "scalar", "jnp"],
)
def test_nnx_activation_accepts_array_hyperparameters_as_linen_does(slope):
    from flax import nnx

    from rectax import linen as rxl
    from rectax import nnx as rxn

    x = jnp.array([[-1.0, 2.0, -3.0]])
    layer = rxn.Activation(rx.prelu, negative_slope=slope)  # failed: "static attribute 'params'"
    expected = np.where(np.asarray(x) >= 0, x, 0.2 * np.asarray(x))
    np.testing.assert_allclose(layer(x), expected, rtol=1e-6)
    np.testing.assert_allclose(nnx.jit(lambda m, x: m(x))(layer, x), expected, rtol=1e-6)
    twin = rxl.Activation(rx.prelu, params={"negative_slope": slope})
    np.testing.assert_array_equal(layer(x), twin.apply({}, x))


# --------------------------------------------------------------------------- error messages
@pytest.mark.parametrize(
    ("call", "names"),
    [
        (lambda: rx.leaky_relu(jnp.ones(3), "0.2"), ("rectax.leaky_relu", "negative_slope")),
        (lambda: rx.prelu(jnp.ones(3), [0.1, 0.2, 0.3]), ("rectax.prelu", "negative_slope")),
        (lambda: rx.elu(jnp.ones(3), alpha=np.nan, bits=3), ("rectax.elu", "alpha")),
        (
            lambda: rx.necro_relu(jnp.ones(3), jnp.ones((2, 3))),
            ("rectax.necro_relu", "negative_slope"),
        ),
        (lambda: rx.rrelu(jnp.ones(3), None, "a"), ("rectax.rrelu", "lower")),
    ],
    ids=["leaky_str", "prelu_list", "elu_nan_bits", "necro_broadcast", "rrelu_str"],
)
def test_errors_name_the_function_and_the_argument(call, names):
    with pytest.raises((TypeError, ValueError)) as info:
        call()
    for n in names:
        assert n in str(info.value), str(info.value)


def test_prelu_module_refuses_an_axis_out_of_range():
    from flax import nnx

    from rectax import linen as rxl
    from rectax import nnx as rxn

    x = jnp.ones((2, 3, 3, 2))
    with pytest.raises(ValueError, match="axis=4 is out of range"):
        rxl.PReLU(num_parameters=2, axis=4).init(jax.random.key(0), x)
    with pytest.raises(ValueError, match="axis=4 is out of range"):
        rxn.PReLU(num_parameters=2, axis=4, rngs=nnx.Rngs(0))(x)


# --------------------------------------------------------------------------- initializers
def test_initializers_refuse_bad_shapes_and_fans():
    from rectax import initializers as init

    key = jax.random.key(0)
    with pytest.raises(ValueError, match=r"rectax\.initializers\.variance_scaling: shape"):
        init.he_normal()(key, (-3, 4))  # was "math domain error"
    with pytest.raises(TypeError, match=r"rectax\.initializers\.variance_scaling: shape"):
        init.he_normal()(key, (3.5, 4))  # was truncated to (3, 4)
    with pytest.raises(TypeError, match=r"rectax\.initializers\.orthogonal: shape"):
        init.orthogonal()(key, (3.5, 4))
    for fan in (0.5, 2.5, 0, -1):  # 0.5 was a ZeroDivisionError, 2.5 truncated to 2
        with pytest.raises(ValueError, match="fan_in must be an int > 0"):
            init.fan_in_bias(fan)
    # jax refuses a float dimension as well
    with pytest.raises(TypeError):
        jax.nn.initializers.he_normal()(key, (3.5, 4))


def test_he_normal_refuses_a_slope_passed_first():
    from rectax import initializers as init

    for fn, name in ((init.he_normal, "he_normal"), (init.kaiming_uniform, "he_uniform")):
        with pytest.raises(TypeError, match=rf"{name}\(negative_slope=0\.2\)"):
            fn(0.2)
    # the right call still works
    w = init.he_normal(negative_slope=0.2)(jax.random.key(0), (64, 8))
    assert w.shape == (64, 8)


# --------------------------------------------------------------------------- one validation
@pytest.mark.parametrize(
    ("call", "names"),
    [
        # returned an all-zero kernel
        (lambda i: i.for_activation("softplus", beta=0), ("rectax.softplus", "beta")),
        # blamed `scale`
        (lambda i: i.for_activation("celu", alpha=0), ("rectax.celu", "alpha")),
        (lambda i: i.gain("celu", alpha=-1.0), ("rectax.celu", "alpha")),
        # accepted
        (lambda i: i.gain("rrelu", lower=0.5, upper=0.1), ("rectax.rrelu", "lower")),
        (lambda i: i.for_activation("leaky_relu", negative_slope="0.2"), ("rectax.leaky_relu",)),
        # a bare ZeroDivisionError
        (lambda i: i.for_activation(lambda x: 0 * x), ("rectax.initializers.for_activation",)),
        (lambda i: i.gain(lambda x: 0 * x), ("rectax.initializers.gain",)),
    ],
    ids=[
        "softplus_beta0",
        "celu_alpha0",
        "celu_negative",
        "rrelu_bounds",
        "leaky_str",
        "zero_fa",
        "zero_gain",
    ],
)
def test_gains_and_for_activation_refuse_what_the_function_refuses(call, names):
    from rectax import initializers as init

    with pytest.raises((TypeError, ValueError)) as info:
        call(init)
    for n in names:
        assert n in str(info.value), str(info.value)


def test_variant_names_mean_the_same_everywhere():
    from flax import nnx

    from rectax import initializers as init
    from rectax import linen as rxl
    from rectax import nnx as rxn

    x = jnp.linspace(-3.0, 3.0, 7)
    assert init.gain("gelu_tanh") == init.gain(rx.gelu, approximate=True)
    assert init.gain("gelu_exact") == init.gain(rx.gelu, approximate=False)
    assert init.gain("gelu_exact") != init.gain("gelu_tanh")
    model = rxn.MLP(7, (4, 2), activation="gelu_exact", rngs=nnx.Rngs(0))  # raised before
    assert model(x[None]).shape == (1, 2)
    np.testing.assert_array_equal(rxn.Activation("gelu_exact")(x), rx.gelu(x, approximate=False))
    np.testing.assert_array_equal(
        rxl.Activation("gelu_tanh").apply({}, x), rx.gelu(x, approximate=True)
    )
