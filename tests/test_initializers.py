"""API, layouts, dtypes, gains, for_activation, torch parity and Flax integration."""

from __future__ import annotations

import functools
import math
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.integrate
import scipy.special
from _registry import BY_NAME, he_scale
from test_init_stats import failures, statistics

import rectax as rx
import rectax.initializers as init
from rectax.initializers._variance import COMPLEX_TRUNCATED_STD

KEY = jax.random.key(0)
F32_EPS = float(jnp.finfo(jnp.float32).eps)

# --------------------------------------------------------------------------- registry
# name -> builder(layout) for every random kernel initializer (layout None: dense, "conv": HWIO)
KERNEL_INITS = {
    "he_normal": lambda layout: init.he_normal(layout=layout),
    "he_uniform": lambda layout: init.he_uniform(layout=layout),
    "kaiming_normal": lambda layout: init.kaiming_normal(distribution="normal", layout=layout),
    "kaiming_uniform": lambda layout: init.kaiming_uniform(negative_slope=0.2, layout=layout),
    "glorot_normal": lambda layout: init.glorot_normal(layout=layout),
    "glorot_uniform": lambda layout: init.glorot_uniform(layout=layout),
    "xavier_normal": lambda layout: init.xavier_normal(layout=layout),
    "xavier_uniform": lambda layout: init.xavier_uniform(layout=layout),
    "lecun_normal": lambda layout: init.lecun_normal(layout=layout),
    "lecun_uniform": lambda layout: init.lecun_uniform(layout=layout),
    "variance_scaling": lambda layout: init.variance_scaling(
        1.5, "fan_geo_avg", "normal", layout=layout
    ),
    "for_activation_relu": lambda layout: init.for_activation(rx.relu, layout=layout),
    "for_activation_gelu": lambda layout: init.for_activation(jax.nn.gelu, layout=layout),
    "torch_default": lambda layout: init.torch_default(layout=layout).kernel,
    "orthogonal": lambda layout: init.orthogonal(),
}


# --------------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    "build",
    [
        lambda: init.variance_scaling(1.0, "fan_sum", "normal"),
        lambda: init.variance_scaling(1.0, "fan_in", "gaussian"),
        lambda: init.variance_scaling(-1.0, "fan_in", "normal"),
        lambda: init.he_normal(mode="fan"),
        lambda: init.he_normal(distribution="cauchy"),
        lambda: init.he_normal(layout="nchw"),
        lambda: init.he_normal(layout="torch", in_axis=0),
        lambda: init.fan_in_bias(0),
        lambda: init.gain("swishy"),
        lambda: init.gain("leaky_relu", alpha=0.3),
        lambda: init.rai_constant(second_moment=1.0),
    ],
)
def test_invalid_arguments_raise_when_built(build):
    with pytest.raises(ValueError, match="rectax"):
        build()


def test_jax_reports_invalid_mode_only_when_called():
    bad = jax.nn.initializers.variance_scaling(1.0, "fan_sum", "normal")  # no error yet
    with pytest.raises(ValueError, match="invalid mode"):
        bad(KEY, (2, 2))


@pytest.mark.parametrize("dtype", [jnp.int32, jnp.uint8, jnp.bool_])
@pytest.mark.parametrize("name", ["he_normal", "orthogonal", "glorot_uniform"])
def test_integer_and_bool_dtypes_raise(name, dtype):
    with pytest.raises(TypeError, match="floating or complex"):
        KERNEL_INITS[name](None)(KEY, (4, 4), dtype)


@pytest.mark.parametrize("name", sorted(KERNEL_INITS))
@pytest.mark.parametrize("shape", [(0, 5), (5, 0), (3, 0, 4, 2)])
def test_zero_size_shapes_are_empty(name, shape):
    layout = "conv" if len(shape) > 2 else None
    w = KERNEL_INITS[name](layout)(KEY, shape)
    assert w.shape == shape
    assert w.size == 0
    assert w.dtype == jnp.float32


def test_rank_below_two_needs_an_explicit_fan():
    with pytest.raises(ValueError, match="fan_in"):
        init.he_normal()(KEY, (7,))
    with pytest.raises(ValueError, match="rank >= 2"):
        init.orthogonal()(KEY, (7,))
    # With explicit fans the scale is theirs: fan_avg = 20, so std = sqrt(1 / 20); jax draws the
    # same standard normals for the same key.
    b = init.variance_scaling(1.0, "fan_avg", "normal", fan_in=10, fan_out=30)(KEY, (7,))
    z = jax.random.normal(KEY, (7,), jnp.float32)
    np.testing.assert_allclose(b, z * np.sqrt(1 / 20), rtol=1e-6)


def test_default_dtype_is_jax_default_float():
    assert init.he_normal()(KEY, (3, 3)).dtype == jnp.float32
    assert init.he_normal(dtype=jnp.bfloat16)(KEY, (3, 3)).dtype == jnp.bfloat16
    assert init.he_normal(dtype=jnp.bfloat16)(KEY, (3, 3), jnp.float16).dtype == jnp.float16


@pytest.mark.parametrize("distribution", ["truncated_normal", "normal", "uniform"])
def test_complex_dtypes_have_the_requested_variance(distribution):
    w = init.variance_scaling(1.0, "fan_in", distribution)(KEY, (500, 400), jnp.complex64)
    assert w.dtype == jnp.complex64
    power = float(jnp.mean(jnp.abs(w) ** 2)) * 500
    # SE of mean |w|² over 2e5 samples is below 0.3%; jax's truncated constant is 1.8% high.
    assert abs(power - 1) < 0.015, power
    if distribution == "truncated_normal":
        assert float(jnp.abs(w).max()) <= 2 / COMPLEX_TRUNCATED_STD / 500**0.5


def test_same_numbers_under_jit():
    f = init.he_normal(layout="conv")
    eager = f(KEY, (3, 3, 4, 8))
    jitted = jax.jit(lambda k: f(k, (3, 3, 4, 8)))(KEY)
    np.testing.assert_array_equal(eager, jitted)


@pytest.mark.parametrize("shape", [(64, 32), (3, 3, 8, 16)])
@pytest.mark.parametrize(
    "name",
    ["glorot_uniform", "glorot_normal", "he_normal", "he_uniform", "lecun_normal", "lecun_uniform"],
)
def test_matches_jax_for_float32(name, shape):
    """In float32 rectax draws jax's samples: the same key gives jax's values to rounding
    (jax's own initializer is the oracle; rectax samples a flat vector, which threefry fills with
    the same bits)."""
    ours = getattr(init, name)()(KEY, shape)
    theirs = getattr(jax.nn.initializers, name)()(KEY, shape)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=2 * float(jnp.finfo(jnp.float32).eps))


# --------------------------------------------------------------------------- layouts and fans
@pytest.mark.parametrize(
    ("shape", "kwargs", "fans"),
    [
        ((784, 256), {}, (784, 256)),
        ((784, 256), {"layout": "dense"}, (784, 256)),
        ((3, 3, 16, 32), {"layout": "conv"}, (144, 288)),
        ((3, 3, 16, 32), {"layout": "hwio"}, (144, 288)),
        ((7, 16, 32), {"layout": "conv"}, (112, 224)),
        ((32, 16, 3, 3), {"layout": "torch"}, (144, 288)),
        ((32, 16, 3, 3), {"layout": "oihw"}, (144, 288)),
        ((256, 784), {"layout": "torch"}, (784, 256)),
        ((64, 1, 3, 3), {"layout": "torch"}, (9, 576)),  # torch depthwise: (C*M, 1, H, W)
        ((3, 3, 1, 64), {"layout": "conv"}, (9, 576)),  # flax/haiku depthwise
        ((3, 3, 64, 2), {"layout": "depthwise"}, (9, 18)),  # keras (H, W, C, M)
        ((12, 768, 64), {"layout": "qkv"}, (768, 768)),
        ((12, 64, 768), {"layout": "attention_out"}, (768, 768)),
        ((768, 12, 64), {"in_axis": 0, "out_axis": (1, 2)}, (768, 768)),
        ((12, 768, 64), {"batch_axis": 0}, (768, 64)),
        ((3, 3, 16, 32), {"layout": "conv", "in_axis": -1, "out_axis": -2}, (288, 144)),
    ],
)
def test_compute_fans(shape, kwargs, fans):
    assert init.compute_fans(shape, **kwargs) == fans


def test_rank3_default_is_jax_rule_and_qkv_layout_fixes_attention():
    """Default fans are jax's (other axes are a receptive field); layout='qkv' names attention."""
    shape = (12, 768, 64)
    assert init.compute_fans(shape) == (12 * 768, 12 * 64)
    w = init.he_normal(distribution="normal")(KEY, shape)
    assert abs(float(w.std()) * math.sqrt(12 * 768 / 2) - 1) < 0.01
    w = init.he_normal(layout="qkv")(KEY, shape)
    assert abs(float(w.std()) * math.sqrt(768 / 2) - 1) < 0.01


@pytest.mark.parametrize(
    ("shape", "kwargs", "fans"),
    [
        ((5,), {"in_axis": [0], "out_axis": []}, (5, 1)),
        ((5,), {"in_axis": [], "out_axis": [0]}, (1, 5)),
        ((), {"in_axis": [], "out_axis": []}, (1, 1)),
        ((2, 3, 4), {"in_axis": [], "out_axis": []}, (24, 24)),
    ],
)
def test_low_rank_named_axes_as_jax(shape, kwargs, fans):
    """Explicitly named (even empty) axes work for rank < 2, with jax's fans."""
    assert init.compute_fans(shape, **kwargs) == fans
    from jax._src.nn.initializers import _compute_fans  # jax's own rule, the oracle

    assert init.compute_fans(shape, **kwargs) == tuple(
        int(f) for f in _compute_fans(shape, **kwargs)
    )


def test_rank1_default_in_axis_raises_with_jax_wording():
    with pytest.raises(ValueError, match="Can't compute input and output sizes of a 1-dimensional"):
        init.he_normal()(KEY, (5,))


@pytest.mark.parametrize(
    ("layout", "shape"),
    [("dense", (3, 3, 4)), ("qkv", (4, 4)), ("attention_out", (2, 3, 4, 5)), ("depthwise", (3, 3))],
)
def test_layout_rank_mismatch_raises(layout, shape):
    with pytest.raises(ValueError, match="needs a rank"):
        init.he_normal(layout=layout)(KEY, shape)


# --------------------------------------------------------------------------- orthogonal
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16, jnp.float16, jnp.float64])
@pytest.mark.parametrize("shape", [(8, 5), (5, 8), (3, 3, 4, 6)])
def test_orthogonal(dtype, shape):
    w = init.orthogonal(scale=2.0)(KEY, shape, dtype)
    assert w.shape == shape
    assert w.dtype == jax.dtypes.canonicalize_dtype(dtype)
    m = np.asarray(w.astype(jnp.float32)).reshape(-1, shape[-1])
    small = m.T @ m if m.shape[0] >= m.shape[1] else m @ m.T
    atol = 5e-2 if dtype in (jnp.bfloat16, jnp.float16) else 1e-4
    np.testing.assert_allclose(small, 4 * np.eye(small.shape[0]), atol=atol)


def test_jax_orthogonal_fails_in_bf16():
    with pytest.raises(NotImplementedError):
        jax.nn.initializers.orthogonal()(KEY, (4, 4), jnp.bfloat16)


def test_reexports():
    assert init.zeros is jax.nn.initializers.zeros
    assert init.ones is jax.nn.initializers.ones
    assert float(init.constant(3.0)(KEY, (2,))[0]) == 3.0
    assert init.kaiming_normal is init.he_normal
    assert init.xavier_uniform is init.glorot_uniform


def test_import_does_not_import_flax():
    code = "import sys, rectax, rectax.initializers; print('flax' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --------------------------------------------------------------------------- gains
REFERENCE_GAINS = {
    "relu": 1.41421,
    "elu": 1.24520,
    "selu": 1.00000,
    "silu": 1.67653,
    "mish": 1.48685,
    "softplus": 1.04187,
    "tanh": 1.59254,
    "squared_relu": 0.81650,
    "sigmoid": 1.84623,
}


@pytest.mark.parametrize(("name", "value"), sorted(REFERENCE_GAINS.items()))
def test_gain_matches_reference(name, value):
    assert init.gain(name) == pytest.approx(value, abs=1e-5)


def test_gain_reference_parametrised():
    assert init.gain("gelu", approximate=False) == pytest.approx(1.53353, abs=1e-5)
    assert init.gain("leaky_relu", negative_slope=0.2) == pytest.approx(1.38675049, abs=1e-8)
    assert init.gain("leaky_relu") == pytest.approx(1.41414286, abs=1e-8)


@pytest.mark.parametrize("a", [0.0, 0.01, 0.2, 0.5, 1.0])
def test_gain_closed_forms(a):
    closed = math.sqrt(2 / (1 + a * a))
    assert init.gain("leaky_relu", negative_slope=a) == pytest.approx(closed, rel=1e-12)
    assert init.gain("prelu", negative_slope=a) == pytest.approx(closed, rel=1e-12)
    assert init.gain("necro_relu", negative_slope=a) == pytest.approx(math.sqrt(2), rel=1e-12)
    backward = init.gain("necro_relu", negative_slope=a, backward=True)
    assert backward == pytest.approx(closed, rel=1e-12)
    assert init.second_moment("necro_relu", negative_slope=a, backward=True) == pytest.approx(
        (1 + a * a) / 2
    )
    # the numerical path (the callable) agrees with the closed form to 1e-4
    numeric = init.gain(lambda x: rx.leaky_relu(x, a))
    assert numeric == pytest.approx(closed, abs=1e-4)
    numeric_backward = init.gain(lambda x: rx.necro_relu(x, a), backward=True)
    assert numeric_backward == pytest.approx(closed, abs=1e-4)


@pytest.mark.parametrize(
    ("name", "f"),
    [
        ("elu", lambda z: np.where(z > 0, z, np.expm1(np.minimum(z, 0)))),
        ("gelu", lambda z: z * scipy.special.ndtr(z)),
        ("silu", lambda z: z * scipy.special.expit(z)),
        ("tanh", np.tanh),
        ("relu6", lambda z: np.clip(z, 0, 6)),
        ("hard_tanh", lambda z: np.clip(z, -1, 1)),
    ],
)
def test_gain_against_adaptive_quadrature(name, f):
    def integrand(z):
        return f(z) ** 2 * math.exp(-z * z / 2) / math.sqrt(2 * math.pi)

    m = sum(
        scipy.integrate.quad(integrand, lo, hi, epsabs=1e-13)[0]
        for lo, hi in [(-np.inf, -1), (-1, 0), (0, 1), (1, 6), (6, np.inf)]
    )
    params = {"approximate": False} if name == "gelu" else {}
    assert init.gain(name, **params) == pytest.approx(1 / math.sqrt(m), abs=1e-9)


def test_gain_accepts_functions_partials_and_aliases():
    assert init.gain(rx.relu) == init.gain(jax.nn.relu) == init.gain("relu") == math.sqrt(2)
    assert init.gain(functools.partial(rx.leaky_relu, negative_slope=0.2)) == init.gain(
        "leaky_relu", negative_slope=0.2
    )
    assert init.gain(jax.nn.swish) == init.gain("swish") == init.gain(rx.silu)
    assert init.gain(rx.selu) == pytest.approx(1.0, abs=1e-7)
    assert init.gain("linear") == init.gain("identity") == 1.0
    # any callable, including ones rectax does not know
    assert init.gain(lambda x: jnp.abs(x)) == pytest.approx(1.0, abs=1e-6)
    assert init.gain(jnp.sin) == pytest.approx(1 / math.sqrt((1 - math.exp(-2)) / 2), abs=1e-6)


def test_gain_torch_convention():
    assert init.gain("selu", convention="torch") == 0.75
    assert init.gain("tanh", convention="torch") == pytest.approx(5 / 3)
    assert init.gain("sigmoid", convention="torch") == 1.0
    assert init.gain("relu", convention="torch") == math.sqrt(2)
    with pytest.raises(ValueError, match="convention"):
        init.gain("relu", convention="keras")


# --------------------------------------------------------------------------- for_activation
def _same(a, b, shape=(64, 32)):
    np.testing.assert_array_equal(a(KEY, shape), b(KEY, shape))


@pytest.mark.parametrize(
    ("activation", "params", "expected"),
    [
        ("relu", {}, init.he_normal()),
        (rx.relu, {}, init.he_normal()),
        (jax.nn.relu, {}, init.he_normal()),
        (rx.necro_relu, {}, init.he_normal()),
        (rx.leaky_relu, {}, init.he_normal(negative_slope=0.01)),
        (jax.nn.leaky_relu, {"negative_slope": 0.2}, init.he_normal(negative_slope=0.2)),
        (rx.prelu, {}, init.he_normal(negative_slope=0.25)),
        (rx.prelu, {"negative_slope": 0.1}, init.he_normal(negative_slope=0.1)),
        (rx.rrelu, {}, init.he_normal(negative_slope=(1 / 8 + 1 / 3) / 2)),
        (rx.selu, {}, init.lecun_normal()),
        (jax.nn.selu, {}, init.lecun_normal()),
        ("linear", {}, init.lecun_normal()),
        (rx.gelu, {}, init.variance_scaling(init.gain("gelu") ** 2, "fan_in", "truncated_normal")),
    ],
)
def test_for_activation(activation, params, expected):
    _same(init.for_activation(activation, **params), expected)


def test_for_activation_backward_mode_uses_surrogate_slope():
    _same(
        init.for_activation(rx.necro_relu, mode="fan_out", negative_slope=0.3),
        init.he_normal(negative_slope=0.3, mode="fan_out"),
    )
    silu = init.for_activation(rx.silu, mode="fan_out", distribution="normal")
    scale = init.gain("silu", backward=True) ** 2
    _same(silu, init.variance_scaling(scale, "fan_out", "normal"))


def test_for_activation_conv_layout():
    """An HWIO kernel with in != out channels: He's variance 2/fan_in with fan_in = 3·3·16 (not
    fan_out = 3·3·64, not the dense rule's 16), and jax's he_normal values for the same key."""
    shape = (3, 3, 16, 64)
    w = init.for_activation(rx.relu, layout="conv")(KEY, shape)
    np.testing.assert_allclose(
        w, jax.nn.initializers.he_normal()(KEY, shape), rtol=0, atol=2 * F32_EPS
    )
    assert not failures(statistics(w, "truncated_normal", math.sqrt(2 / (3 * 3 * 16))))


# --------------------------------------------------------------------------- torch defaults
def test_torch_default_pair():
    kernel, bias = init.torch_default(fan_in=784)
    w, b = kernel(KEY, (784, 300)), bias(KEY, (300,))
    bound = 1 / math.sqrt(784)
    assert float(jnp.abs(w).max()) <= bound
    assert float(jnp.abs(b).max()) <= bound
    assert float(jnp.abs(w).max()) > 0.99 * bound
    with pytest.raises(ValueError, match="fan_in"):
        init.torch_default().bias(KEY, (300,))


def test_torch_parity():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    n_in, n_out = 500, 400
    t = torch.empty(n_out, n_in)
    torch.nn.init.kaiming_normal_(t, a=0.2, nonlinearity="leaky_relu")
    ours = init.he_normal(negative_slope=0.2, distribution="normal", layout="torch")(
        KEY, (n_out, n_in)
    )
    assert float(ours.std()) == pytest.approx(float(t.std()), rel=0.01)
    linear = torch.nn.Linear(n_in, n_out)
    kernel, bias = init.torch_default(fan_in=n_in)
    assert float(kernel(KEY, (n_in, n_out)).std()) == pytest.approx(
        float(linear.weight.std()), rel=0.01
    )
    assert float(jnp.abs(bias(KEY, (n_out,))).max()) <= 1 / math.sqrt(n_in)
    for name in ("linear", "relu", "tanh", "selu", "sigmoid"):
        assert init.gain(name, convention="torch") == pytest.approx(
            torch.nn.init.calculate_gain(name)
        )


# --------------------------------------------------------------------------- flax integration
# name -> (scale, mode, distribution) written from the papers' formulas (He: 2/(1 + a²), Glorot:
# fan_avg, LeCun: 1, torch's Linear: U(±1/√fan_in) = scale 1/3 uniform, jax.nn.gelu: 1/E[gelu(z)²]
# by quadrature of the registry's tanh-form reference). jax's variance_scaling with these
# arguments is the oracle for the values; the variance is scale/denom(fan_in, fan_out).
KERNEL_SPECS = {
    "he_normal": (2.0, "fan_in", "truncated_normal"),
    "he_uniform": (2.0, "fan_in", "uniform"),
    "kaiming_normal": (2.0, "fan_in", "normal"),
    "kaiming_uniform": (2 / (1 + 0.2**2), "fan_in", "uniform"),
    "glorot_normal": (1.0, "fan_avg", "truncated_normal"),
    "glorot_uniform": (1.0, "fan_avg", "uniform"),
    "xavier_normal": (1.0, "fan_avg", "truncated_normal"),
    "xavier_uniform": (1.0, "fan_avg", "uniform"),
    "lecun_normal": (1.0, "fan_in", "truncated_normal"),
    "lecun_uniform": (1.0, "fan_in", "uniform"),
    "variance_scaling": (1.5, "fan_geo_avg", "normal"),
    "for_activation_relu": (2.0, "fan_in", "truncated_normal"),
    "for_activation_gelu": (he_scale(BY_NAME["gelu_tanh"].ref), "fan_in", "truncated_normal"),
    "torch_default": (1 / 3, "fan_in", "uniform"),
}
DENOM = {
    "fan_in": lambda i, o: i,
    "fan_avg": lambda i, o: (i + o) / 2,
    "fan_geo_avg": lambda i, o: math.sqrt(i * o),
}
# The kernels below: fans computed by hand, with fan_in != fan_out so that swapped fans fail.
FLAX_CONV = ((3, 3, 16, 64), 3 * 3 * 16, 3 * 3 * 64)
FLAX_DENSE = ((6 * 6 * 64, 16), 6 * 6 * 64, 16)


def _check_kernel(name: str, kernel: jax.Array, fan_in: int, fan_out: int) -> None:
    """The kernel's distribution against the paper's variance (z-test on the std, mean, KS and
    support at alpha = 1e-6, tests/test_init_stats.py's method); orthogonal: WᵀW = I."""
    if name == "orthogonal":
        m = np.asarray(kernel.astype(jnp.float32), np.float64).reshape(-1, kernel.shape[-1])
        np.testing.assert_allclose(m.T @ m, np.eye(m.shape[1]), atol=1e-2)
        return
    scale, mode, distribution = KERNEL_SPECS[name]
    std = math.sqrt(scale / DENOM[mode](fan_in, fan_out))
    stats = statistics(kernel, distribution, std)
    assert not failures(stats), (name, stats)


def _jax_twin(name: str):
    if name == "orthogonal":
        return jax.nn.initializers.orthogonal()
    return jax.nn.initializers.variance_scaling(*KERNEL_SPECS[name])


@pytest.mark.parametrize("name", sorted(KERNEL_INITS))
def test_flax_linen_dense_and_conv(name):
    """Inside a jitted linen init: the paper's variance at the kernels' fans, and the same values
    as jax's variance_scaling (the oracle) given the same flax keys."""
    import flax.linen as nn

    def net(conv_init, dense_init):
        class Net(nn.Module):
            @nn.compact
            def __call__(self, x):
                x = nn.Conv(64, (3, 3), kernel_init=conv_init)(x)
                x = x.reshape(x.shape[0], -1)
                return nn.Dense(16, kernel_init=dense_init)(x)

        return Net()

    x = jnp.ones((2, 6, 6, 16))
    ours = net(KERNEL_INITS[name]("conv"), KERNEL_INITS[name](None))
    variables = jax.jit(ours.init)(KEY, x)
    params = variables["params"]
    (conv_shape, *conv_fans), (dense_shape, *dense_fans) = FLAX_CONV, FLAX_DENSE
    assert params["Conv_0"]["kernel"].shape == conv_shape
    assert params["Dense_0"]["kernel"].shape == dense_shape
    _check_kernel(name, params["Conv_0"]["kernel"], *conv_fans)
    _check_kernel(name, params["Dense_0"]["kernel"], *dense_fans)
    theirs = jax.jit(net(_jax_twin(name), _jax_twin(name)).init)(KEY, x)["params"]
    for layer in ("Conv_0", "Dense_0"):
        np.testing.assert_allclose(
            params[layer]["kernel"], theirs[layer]["kernel"], rtol=1e-6, atol=2 * F32_EPS
        )


@pytest.mark.parametrize("name", sorted(KERNEL_INITS))
def test_flax_nnx_linear_and_conv(name):
    """nnx layers, with a bfloat16 Linear: the paper's variance at the kernels' fans (the bf16
    kernel sampled in float32 and rounded once) and jax's float32 values for the conv."""
    from flax import nnx

    conv_shape, *conv_fans = FLAX_CONV
    conv = nnx.Conv(16, 64, (3, 3), kernel_init=KERNEL_INITS[name]("conv"), rngs=nnx.Rngs(0))
    twin = nnx.Conv(16, 64, (3, 3), kernel_init=_jax_twin(name), rngs=nnx.Rngs(0))
    assert conv.kernel[...].shape == conv_shape
    _check_kernel(name, conv.kernel[...], *conv_fans)
    np.testing.assert_allclose(conv.kernel[...], twin.kernel[...], rtol=1e-6, atol=2 * F32_EPS)
    dense = nnx.Linear(
        2304, 16, kernel_init=KERNEL_INITS[name](None), param_dtype=jnp.bfloat16, rngs=nnx.Rngs(0)
    )
    assert dense.kernel[...].dtype == jnp.bfloat16
    _check_kernel(name, dense.kernel[...], *FLAX_DENSE[1:])


def test_flax_torch_default_bias():
    from flax import nnx

    kernel, bias = init.torch_default(fan_in=20)
    layer = nnx.Linear(20, 10, kernel_init=kernel, bias_init=bias, rngs=nnx.Rngs(0))
    assert 0 < float(jnp.abs(layer.bias[...]).max()) <= 1 / math.sqrt(20)


@pytest.mark.parametrize("name", ["he_normal", "he_uniform", "glorot_normal", "lecun_normal"])
def test_flax_conv_takes_initializers_unchanged(name):
    """flax's most common call, nn.Conv(..., kernel_init=he_normal()), works with jax's fans."""
    import flax.linen as nn

    conv = nn.Conv(64, (3, 3), kernel_init=getattr(init, name)())
    kernel = conv.init(KEY, jnp.ones((1, 8, 8, 32)))["params"]["kernel"]
    assert kernel.shape == (3, 3, 32, 64)
    fan_in, fan_out = 3 * 3 * 32, 3 * 3 * 64  # jax's rule, computed by hand
    expected = {
        "he_normal": 2 / fan_in,
        "he_uniform": 2 / fan_in,
        "glorot_normal": 2 / (fan_in + fan_out),
        "lecun_normal": 1 / fan_in,
    }[name]
    ref = getattr(jax.nn.initializers, name)()(KEY, kernel.shape)
    # n = 18432 draws: the std is within 3% of the target (about 6 standard errors).
    assert abs(float(kernel.std()) / math.sqrt(expected) - 1) < 0.03
    assert abs(float(ref.std()) / math.sqrt(expected) - 1) < 0.03


JAX_SIGNATURE_NAMES = [
    "variance_scaling",
    "he_normal",
    "he_uniform",
    "kaiming_normal",
    "kaiming_uniform",
    "glorot_normal",
    "glorot_uniform",
    "xavier_normal",
    "xavier_uniform",
    "lecun_normal",
    "lecun_uniform",
    "orthogonal",
]


@pytest.mark.parametrize("name", JAX_SIGNATURE_NAMES)
def test_jax_positional_arguments_come_first(name):
    """jax's parameters, in jax's order with jax's defaults; rectax's extras are keyword-only."""
    import inspect

    ours = list(inspect.signature(getattr(init, name)).parameters.values())
    theirs = list(inspect.signature(getattr(jax.nn.initializers, name)).parameters.values())
    assert [(p.name, p.default) for p in ours[: len(theirs)]] == [
        (p.name, p.default) for p in theirs
    ]
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in ours[len(theirs) :])


def test_positional_call_like_jax():
    w = init.he_normal(0, 1, (), jnp.bfloat16)(KEY, (600, 300))
    assert w.dtype == jnp.bfloat16
    assert abs(float(w.astype(jnp.float32).std()) * math.sqrt(600 / 2) - 1) < 0.02


def test_traced_scale_under_jit():
    def sample(scale):
        return init.variance_scaling(scale, "fan_in", "normal")(KEY, (400, 200))

    w = jax.jit(sample)(jnp.float32(4.0))
    np.testing.assert_allclose(w, sample(4.0), rtol=1e-6)


@pytest.mark.parametrize("name", ["hard_sigmoid", "hard_silu", "mish", "sparse_plus", "squareplus"])
def test_gain_is_the_oracles_second_moment(name):
    """1/sqrt(E[f(z)²]) by scipy's adaptive quadrature of the test oracle's float64 forward;
    squareplus(b = 4) in closed form: E[(z + sqrt(z² + 4))²/4] = (2 + 4)/4, gain sqrt(2/3)."""
    assert init.gain(name) == pytest.approx(math.sqrt(he_scale(BY_NAME[name].ref)), abs=1e-6)
    if name == "squareplus":
        assert init.gain(name) == pytest.approx(math.sqrt(2 / 3), abs=1e-9)


# --------------------------------------------------------------------------- columns
# (initializer, kernel shape, count, distribution, expected std from the WHOLE shape's fans,
# written out by hand). Each shape's column-shaped fans differ from the whole one's, so an
# implementation that took the fans from (*shape[:-1], count) fails the std test.
COLUMNS = {
    "glorot_normal_dense": (
        init.glorot_normal(),
        (2000, 1000),
        25,
        "truncated_normal",
        math.sqrt(2 / 3000),
    ),
    "glorot_uniform_dense": (
        init.glorot_uniform(),
        (2000, 1000),
        25,
        "uniform",
        math.sqrt(2 / 3000),
    ),
    "he_normal_conv": (
        init.he_normal(distribution="normal", layout="conv"),
        (3, 3, 400, 64),
        12,
        "normal",
        math.sqrt(2 / (9 * 400)),
    ),
    "he_uniform_fan_out": (
        init.he_uniform(mode="fan_out"),
        (500, 4000),
        100,
        "uniform",
        math.sqrt(2 / 4000),
    ),
    "lecun_torch_layout": (  # OIHW: the last axis is a spatial one; the entries are i.i.d.
        init.lecun_normal(layout="torch"),
        (64, 200, 3, 30),
        3,
        "truncated_normal",
        math.sqrt(1 / (200 * 3 * 30)),
    ),
    "variance_scaling_batch_axis": (
        init.variance_scaling(3.0, "fan_geo_avg", "normal", batch_axis=0),
        (4, 1000, 250),
        12,
        "normal",
        math.sqrt(3 / math.sqrt(1000 * 250)),
    ),
    "for_activation_relu_qkv": (
        init.for_activation(rx.relu, layout="qkv"),
        (8, 3000, 64),
        4,
        "truncated_normal",
        math.sqrt(2 / 3000),
    ),
}


@pytest.mark.parametrize("name", sorted(COLUMNS))
def test_columns_have_the_whole_kernels_distribution(name):
    """``columns`` draws (*shape[:-1], count) entries with the distribution of the whole draw
    (z-tests, KS and support at alpha = 1e-6, tests/test_init_stats.py's method), and the whole
    draw passes the same test at the same std (the oracle is the hand-written std)."""
    initializer, shape, count, distribution, std = COLUMNS[name]
    cols = initializer.columns(jax.random.key(3), shape, count)
    assert cols.shape == (*shape[:-1], count)
    assert cols.dtype == jnp.float32
    assert not failures(statistics(cols, distribution, std)), statistics(cols, distribution, std)
    whole = initializer(jax.random.key(4), shape)
    assert not failures(statistics(whole, distribution, std))
    if "torch" not in name and "fan_out" not in name:  # fans that the column count changes
        fan_in, fan_out = init.compute_fans(
            (*shape[:-1], count),
            layout=initializer.layout,
            batch_axis=initializer.batch_axis,
        )
        wrong = math.sqrt(
            initializer.scale
            / {"fan_in": fan_in, "fan_avg": (fan_in + fan_out) / 2}.get(
                initializer.mode, math.sqrt(fan_in * fan_out)
            )
        )
        if abs(wrong / std - 1) > 0.05:
            assert "std" in failures(statistics(cols, distribution, wrong, ks=False))


def test_columns_dtypes_jit_pickle_and_edges():
    import pickle

    he = init.he_normal(distribution="normal")
    # bfloat16 is sampled in float32 and cast, as the whole draw; complex keeps its variance.
    cols = he.columns(KEY, (4000, 50), 30, jnp.bfloat16)
    assert cols.dtype == jnp.bfloat16
    z = float(cols.astype(jnp.float32).std()) / math.sqrt(2 / 4000) - 1
    assert abs(z) < 0.01, z
    c = init.variance_scaling(1.0, "fan_avg", "normal").columns(KEY, (300, 100), 400, jnp.complex64)
    assert c.dtype == jnp.complex64
    assert abs(float(jnp.mean(jnp.abs(c) ** 2)) * 200 - 1) < 0.02
    # the builder's dtype is the default; jit with the count static; traced scale
    assert init.he_normal(dtype=jnp.float16).columns(KEY, (8, 4), 2).dtype == jnp.float16
    jitted = jax.jit(he.columns, static_argnums=(1, 2))(KEY, (64, 32), 5)
    np.testing.assert_array_equal(jitted, he.columns(KEY, (64, 32), 5))
    traced = jax.jit(
        lambda s: init.variance_scaling(s, "fan_in", "normal").columns(KEY, (400, 200), 7)
    )(jnp.float32(4.0))
    np.testing.assert_allclose(
        traced, init.variance_scaling(4.0, "fan_in", "normal").columns(KEY, (400, 200), 7)
    )
    # zero columns, zero-size kernels, bad counts
    assert he.columns(KEY, (64, 32), 0).shape == (64, 0)
    assert he.columns(KEY, (0, 32), 3).shape == (0, 3)
    for bad in (-1, 2.0, True):
        with pytest.raises(ValueError, match=r"rectax\.initializers\.variance_scaling: .*count"):
            he.columns(KEY, (64, 32), bad)
    # still a drop-in, picklable initializer that compares by identity like a function
    again = pickle.loads(pickle.dumps(he))
    np.testing.assert_array_equal(again(KEY, (6, 5)), he(KEY, (6, 5)))
    assert he != init.he_normal(distribution="normal")
    assert {he: 1}[he] == 1  # hashable (Flax hashes module attributes)
    assert isinstance(init.glorot_uniform(), init.VarianceScaling)
