"""rectax.crelu (concatenated ReLU, Shang et al. 2016): values and derivatives against float64
references and jax.nn, dtypes, its 1-bit residual, its gains against float64 quadrature of the
definition and a measured signal propagation, and its modules."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _registry import DTYPES, WIDENING, x64_scope
from flax import nnx
from scipy import integrate

import rectax as rx
from rectax import initializers as init
from rectax import linen as rxl
from rectax import nnx as rxn

CRELU = next(a for a in WIDENING if a.name == "crelu")
GRID = np.concatenate([np.linspace(-6.0, 6.0, 49), [0.0, -0.0, 1e-30, -1e-30, 1e4, -1e4]])


def _grid(dtype) -> np.ndarray:
    """The grid rounded to ``dtype`` (so the float64 reference sees the input rectax sees)."""
    return np.asarray(GRID.astype(jnp.dtype(dtype)), np.float64).reshape(5, 11)


@pytest.mark.parametrize("dtype", DTYPES)
def test_values_match_float64_and_jax_nn(dtype):
    x64 = _grid(dtype)
    with x64_scope(dtype):
        x = jnp.asarray(x64, dtype)
        y = rx.crelu(x)
        assert y.dtype == jnp.dtype(dtype)
        assert y.shape == (5, 22)
        np.testing.assert_array_equal(np.asarray(y, np.float64), CRELU.ref(x64))  # exact
        np.testing.assert_array_equal(y, CRELU.jax_nn(x))


@pytest.mark.parametrize("axis", [0, 1, -2, 2, -1])
def test_axis_concatenates_along_that_axis(axis):
    x64 = np.arange(-12.0, 12.0).reshape(2, 3, 4)
    y = np.asarray(rx.crelu(jnp.asarray(x64, jnp.float32), axis=axis), np.float64)
    expected = np.concatenate([np.maximum(x64, 0), np.maximum(-x64, 0)], axis=axis)
    np.testing.assert_array_equal(y, expected)


@pytest.mark.parametrize("dtype", DTYPES)
def test_vjp_is_the_documented_derivative(dtype):
    """dL/dx = f_1'·g_1 + f_2'·g_2 with [f_1', f_2'] = [1, 0] if x > 0 else [0, -1]."""
    x64 = _grid(dtype)
    g64 = np.asarray(
        np.random.default_rng(0).normal(size=(5, 22)).astype(jnp.dtype(dtype)), np.float64
    )
    d = CRELU.dref(x64)
    expected = d[:, :11] * g64[:, :11] + d[:, 11:] * g64[:, 11:]
    with x64_scope(dtype):
        x = jnp.asarray(x64, dtype)
        _, vjp = jax.vjp(rx.crelu, x)
        (dx,) = vjp(jnp.asarray(g64, dtype))
    assert dx.dtype == jnp.dtype(dtype)
    np.testing.assert_array_equal(np.asarray(dx, np.float64), expected)  # one product: exact
    with x64_scope(dtype):
        jac_fwd = jax.jacfwd(lambda v: rx.crelu(v[None])[0])(jnp.asarray(x64[0], dtype))
        jac_rev = jax.jacrev(lambda v: rx.crelu(v[None])[0])(jnp.asarray(x64[0], dtype))
    np.testing.assert_array_equal(jac_fwd, jac_rev)


def test_grad_matches_jax_nn_away_from_zero_and_documents_zero():
    x = jnp.asarray([-3.0, -0.5, 0.0, 0.5, 3.0])
    w = jnp.arange(1.0, 11.0)

    def loss(f):
        return jax.grad(lambda v: jnp.sum(w * f(v)))(x)

    ours, theirs = loss(rx.crelu), loss(CRELU.jax_nn)
    nonzero = np.asarray(x) != 0
    np.testing.assert_array_equal(np.asarray(ours)[nonzero], np.asarray(theirs)[nonzero])
    assert float(ours[2]) == -float(w[7])  # [0, -1] at 0; jax.nn's relu twice gives 0
    assert float(theirs[2]) == 0.0
    # the law relu(x) - relu(-x) = x, differentiated: 1 everywhere, at 0 too
    law = jax.vmap(jax.grad(lambda v: jnp.sum(rx.crelu(v[None]) * jnp.array([1.0, -1.0]))))
    np.testing.assert_array_equal(law(x), np.ones(5))
    # second derivative: the rule's factor is piecewise constant
    hess = jax.vmap(jax.grad(jax.grad(lambda v: jnp.sum(w[:2] * rx.crelu(v[None])))))(x)
    np.testing.assert_array_equal(hess, np.zeros(5))


def test_feature_maps_keep_the_output_and_give_the_same_gradient():
    """Rank >= 4 keeps the output (as relu) and recomputes the mask: same cotangent as rank 2."""
    x = jax.random.normal(jax.random.key(0), (2, 3, 3, 8)).at[0, 0, 0, :2].set(0.0)
    g = jax.random.normal(jax.random.key(1), (2, 3, 3, 16))
    y, vjp = jax.vjp(rx.crelu, x)
    (dx,) = vjp(g)
    y2, vjp2 = jax.vjp(rx.crelu, x.reshape(-1, 8))
    (dx2,) = vjp2(g.reshape(-1, 16))
    np.testing.assert_array_equal(y.reshape(-1, 16), y2)
    np.testing.assert_array_equal(dx.reshape(-1, 8), dx2)
    (kept,) = jax.tree.leaves(vjp)
    np.testing.assert_array_equal(kept, y)


def test_reverse_mode_keeps_one_bit_per_input_element():
    x = jax.random.normal(jax.random.key(0), (8, 64))
    _, vjp = jax.vjp(rx.crelu, x)
    residuals = jax.tree.leaves(vjp)
    assert len(residuals) == 1
    assert residuals[0].dtype == jnp.uint32
    assert residuals[0].size * 32 == x.size  # 512 bits for 512 inputs (1024 outputs)


def test_nan_propagates_and_types_are_kept():
    y = rx.crelu(jnp.array([jnp.nan, 1.0]))
    assert np.isnan(y[0])
    assert np.isnan(y[2])
    ints = rx.crelu(jnp.array([-2, 3], jnp.int32))
    assert ints.dtype == jnp.int32
    np.testing.assert_array_equal(ints, [0, 3, 2, 0])
    assert jax.jit(rx.crelu, static_argnums=1)(jnp.ones((2, 3), jnp.bfloat16), 0).shape == (4, 3)
    vmapped = jax.vmap(rx.crelu)(jnp.arange(-3.0, 3.0).reshape(2, 3))
    np.testing.assert_array_equal(vmapped, CRELU.jax_nn(jnp.arange(-3.0, 3.0).reshape(2, 3)))


@pytest.mark.parametrize(
    ("x", "kwargs", "error", "match"),
    [
        (jnp.array([True]), {}, TypeError, r"rectax\.crelu: x must be"),
        (jnp.array([1 + 1j]), {}, TypeError, r"rectax\.crelu: x must be"),
        (jnp.array([1], jnp.uint8), {}, TypeError, r"rectax\.crelu: x must be floating or signed"),
        (jnp.asarray(1.0), {}, ValueError, r"rectax\.crelu: axis .*needs an axis"),
        (jnp.ones((2, 3)), {"axis": 2}, ValueError, r"rectax\.crelu: axis must be in \[-2, 2\)"),
        (jnp.ones((2, 3)), {"axis": 1.0}, TypeError, r"rectax\.crelu: axis must be an int"),
    ],
)
def test_bad_input_names_the_function_and_argument(x, kwargs, error, match):
    with pytest.raises(error, match=match):
        rx.crelu(x, **kwargs)


# --------------------------------------------------------------------------- gains
def _gaussian_expectation(g) -> float:
    """E[g(z)], z ~ N(0, 1), by adaptive float64 quadrature split at the kink."""

    def integrand(z: float) -> float:
        return g(z) * math.exp(-z * z / 2) / math.sqrt(2 * math.pi)

    return sum(integrate.quad(integrand, lo, hi, epsabs=1e-13)[0] for lo, hi in ((-40, 0), (0, 40)))


def test_gains_match_float64_quadrature_of_the_definition():
    """Forward: the second moment per output element, (E[relu(z)²] + E[relu(-z)²]) / 2, on the
    next kernel's own (doubled) fan-in. Backward: each pre-activation's squared derivative
    summed over its two outputs, f_1'² + f_2'² (= 1)."""
    forward = _gaussian_expectation(lambda z: (max(z, 0) ** 2 + max(-z, 0) ** 2) / 2)
    backward = _gaussian_expectation(lambda z: float(z > 0) + float(z <= 0))
    assert init.gain("crelu") == pytest.approx(1 / math.sqrt(forward), rel=1e-12)
    assert init.gain(rx.crelu) == pytest.approx(math.sqrt(2), rel=1e-12)
    assert init.gain("crelu", backward=True) == pytest.approx(1 / math.sqrt(backward), rel=1e-12)
    assert init.gain("crelu", backward=True) == pytest.approx(1.0, rel=1e-12)


def test_for_activation_keeps_the_signal_through_the_doubled_width():
    """z -> crelu -> W (2n x m) from for_activation('crelu'): E[out²] ≈ E[z²] = 1 forward
    (fan_in 2n), and with mode='fan_out' E[(dL/dz)²] ≈ E[g²] = 1 backward."""
    n, m, batch = 256, 256, 1024
    kz, kw, kg = jax.random.split(jax.random.key(0), 3)
    z = jax.random.normal(kz, (batch, n))
    w = init.for_activation("crelu", distribution="normal")(kw, (2 * n, m))
    out = rx.crelu(z) @ w
    assert float(jnp.mean(out**2)) == pytest.approx(1.0, abs=0.06)
    w_back = init.for_activation(rx.crelu, mode="fan_out", distribution="normal")(kw, (2 * n, m))
    g = jax.random.normal(kg, (batch, m))
    _, vjp = jax.vjp(lambda v: rx.crelu(v) @ w_back, z)
    (dz,) = vjp(g)
    assert float(jnp.mean(dz**2)) == pytest.approx(1.0, abs=0.06)
    # the initializers are He's (2 / fan_in) and LeCun's (1 / fan_out) variances
    np.testing.assert_array_equal(
        init.for_activation("crelu")(kw, (64, 32)), init.for_activation("relu")(kw, (64, 32))
    )


# --------------------------------------------------------------------------- modules
@pytest.mark.parametrize("api", ["linen", "nnx"])
def test_modules_compute_crelu_and_sow_the_inputs_stats(api):
    x = jnp.arange(-6.0, 6.0).reshape(3, 4)
    if api == "linen":
        y, state = rxl.CReLU(axis=0, record_stats=True).apply({}, x, mutable=["intermediates"])
        stats = state["intermediates"]["unit_stats"]
    else:
        y, inter = nnx.capture(rxn.CReLU(axis=0, record_stats=True), nnx.Intermediate)(x)
        stats = inter["unit_stats"].get_value()
    np.testing.assert_array_equal(y, rx.crelu(x, axis=0))
    assert y.shape == (6, 4)
    np.testing.assert_array_equal(stats.fires, np.sum(np.asarray(x) > 0, axis=1))  # 3 units
    assert int(stats.zeros) == int(np.sum(np.asarray(x) <= 0))


@pytest.mark.standard_promotion  # flax's avg_pool promotes implicitly
@pytest.mark.parametrize("activation", ["crelu", rx.crelu, "module"])
def test_builders_widen_the_next_layer(activation):
    """nnx builders give each layer after CReLU twice the in-features; 'auto' init is He's."""
    act_nnx = rxn.CReLU if activation == "module" else activation
    act_linen = rxl.CReLU if activation == "module" else activation
    mlp = rxn.MLP(3, (6, 5, 2), activation=act_nnx, rngs=nnx.Rngs(0))
    assert [layer.kernel.shape for layer in mlp.layers] == [(3, 6), (12, 5), (10, 2)]
    cnn = rxn.CNN(2, 8, features=(4, 3), dense=(6,), num_classes=3, activation=act_nnx,
                  rngs=nnx.Rngs(0))  # fmt: skip
    assert [c.kernel.shape for c in cnn.convs] == [(3, 3, 2, 4), (3, 3, 8, 3)]
    assert cnn.head.layers[0].kernel.shape == (2 * 2 * 6, 6)
    assert cnn(jnp.ones((2, 8, 8, 2))).shape == (2, 3)
    variables = rxl.MLP(features=(6, 5, 2), activation=act_linen).init(
        jax.random.key(0), jnp.ones((1, 3))
    )
    kernels = [variables["params"][f"Dense_{i}"]["kernel"].shape for i in range(3)]
    assert kernels == [(3, 6), (12, 5), (10, 2)]
    big = rxn.MLP(512, (512, 1), activation=act_nnx, rngs=nnx.Rngs(1))
    std = float(jnp.std(big.layers[1].kernel[...]))
    assert std == pytest.approx(math.sqrt(2 / 1024), rel=0.05)  # He on the doubled fan-in
