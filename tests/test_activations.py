"""Values, derivatives, dtypes, edge values and bad input of every activation in the registry."""

import functools
import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _registry import (
    ACTIVATIONS,
    BY_NAME,
    DETERMINISTIC,
    DTYPES,
    LOW_PRECISION,
    PUBLIC_ACTIVATIONS,
    RRELU_EVAL_SLOPE,
    RRELU_LOWER,
    RRELU_UPPER,
    RTOL,
    SELU_ALPHA,
    SELU_SCALE,
    TRUE_DERIVATIVE,
    WIDENING,
    WITH_HYPER,
    WITH_JAX_NN,
    Activation,
    assert_matches_reference,
    derivative_atol,
    softplus_ref,
    x64_scope,
)
from jax.test_util import check_grads
from scipy import special, stats

import rectax as rx

ids = lambda a: a.name
by_dtype = pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: jnp.dtype(d).name)

# Dense grid over the whole range, the negative tail included, plus far points and tiny values.
GRID = np.concatenate(
    [
        np.linspace(-50.0, 50.0, 2001),
        [-1e4, -1e3, -100.0, 100.0, 1e3, 1e4],
        np.geomspace(1e-30, 1.0, 31),
        -np.geomspace(1e-30, 1.0, 31),
    ]
)


def special_values(dtype) -> np.ndarray:
    info = jnp.finfo(dtype)
    return np.array(
        [
            0.0,
            -0.0,
            float(info.smallest_subnormal),
            -float(info.smallest_subnormal),
            float(info.tiny) / 2,
            -float(info.tiny) / 2,
            float(info.tiny),
            -float(info.tiny),
            1.0,
            -1.0,
            6.0,
            1e4,
            -1e4,
            float(info.max),
            -float(info.max),
        ]
    )


def grid(dtype) -> tuple[jax.Array, np.ndarray]:
    """The grid plus ``dtype``'s special values (±0, subnormals, ±finfo.max), in ``dtype``, and
    the same (exactly representable) points in float64."""
    x = np.asarray(jnp.asarray(np.concatenate([GRID, special_values(dtype)]), dtype))
    return jnp.asarray(x), x.astype(np.float64)


def normal(x64: np.ndarray, dtype) -> np.ndarray:
    """Points that are 0 or normal numbers (XLA:CPU may flush subnormals; tested separately)."""
    return (x64 == 0) | (np.abs(x64) >= float(jnp.finfo(dtype).tiny))


@functools.cache
def _both_modes_jit(fn):
    @jax.jit
    def both(x):
        y, vjp = jax.vjp(fn, x)
        (g,) = vjp(jnp.ones_like(y))
        _, t = jax.jvp(fn, (x,), (jnp.ones_like(x),))
        return g, t

    return both


def derivative(fn, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Elementwise derivative by reverse mode (vjp) and by forward mode (jvp), jit-compiled once
    per function and shape (the tests reuse shapes so that compilation is shared)."""
    return _both_modes_jit(fn)(x)


# --------------------------------------------------------------------------- values
@by_dtype
@pytest.mark.parametrize("act", [a for a in DETERMINISTIC], ids=ids)
def test_values_match_float64_reference(act: Activation, dtype):
    with x64_scope(dtype):
        x, x64 = grid(dtype)
        y = act.fn(x)
        chex.assert_type(y, dtype)
        keep = normal(x64, dtype)
        y, x64 = np.asarray(y)[keep], x64[keep]
        with np.errstate(over="ignore"):
            assert_matches_reference(y, act.ref(x64), x64, act.dref(x64), dtype, what=act.name)


@pytest.mark.parametrize("act", WITH_JAX_NN, ids=ids)
def test_values_match_jax_nn_float32(act: Activation):
    x, x64 = grid(jnp.float32)
    keep = normal(x64, jnp.float32) & (np.abs(x64) <= 1e4)
    x, x64 = x[keep], x64[keep]
    if act.name == "gelu_tanh":
        # jax.nn forms 1 + tanh(u), which cancels for x < 0 (1e-5 relative error at -2.8, 0
        # below -10 in float32) where rectax keeps relative accuracy; the float64 reference
        # test covers the negative tail.
        keep = x64 > -1
        x, x64 = x[keep], x64[keep]
    if act.name == "squareplus":
        # jax.nn forms x + sqrt(x² + b), which cancels for x < 0 (4e-5 relative error at -50 in
        # float32) where rectax computes b / (2(sqrt(x² + b) - x)); the float64 reference test
        # covers the negative tail.
        keep = x64 > -1
        x, x64 = x[keep], x64[keep]
    expected = np.asarray(act.jax_nn(x), np.float64)
    assert_matches_reference(act.fn(x), expected, x64, act.dref(x64), jnp.float32, what=act.name)


# --------------------------------------------------------------------------- derivatives
@by_dtype
@pytest.mark.parametrize("act", DETERMINISTIC, ids=ids)
def test_derivative_matches_documented_rule(act: Activation, dtype):
    """Reverse and forward mode give the documented derivative (surrogate for necro_relu)."""
    with x64_scope(dtype):
        x, x64 = grid(dtype)
        keep = normal(x64, dtype)
        xk = x64[keep]
        with np.errstate(over="ignore", invalid="ignore"):
            dref, d2ref = act.dref(xk), act.d2ref(xk)
        for g in derivative(act.fn, x):
            chex.assert_type(g, dtype)
            assert_matches_reference(
                np.asarray(g)[keep],
                dref,
                xk,
                d2ref,
                dtype,
                what=act.name,
                atol=derivative_atol(act, dtype),
            )


KINKS = [(a, p, d) for a in ACTIVATIONS for p, d in a.kinks.items()]


@by_dtype
@pytest.mark.parametrize(
    ("act", "point", "expected"), KINKS, ids=[f"{a.name}@{p:g}" for a, p, _ in KINKS]
)
def test_kink_convention(act: Activation, point, expected, dtype):
    with x64_scope(dtype):
        x = jnp.asarray([point, -0.0 if point == 0 else point], dtype)
        for g in derivative(act.fn, x):
            chex.assert_type(g, dtype)
            np.testing.assert_allclose(
                np.asarray(g, np.float64), expected, rtol=RTOL[jnp.dtype(dtype)], atol=0
            )


def _flax_prelu(x):
    import flax.linen as nn

    layer = nn.PReLU(negative_slope_init=0.25)
    return layer.apply(layer.init(jax.random.key(0), x), x)


# The peer whose measured derivative at the kinks is the convention, where the registry has none
# with the same derivative: flax's PReLU; any leaky slope for keyed rrelu (the kink's derivative
# is the positive branch's); squared ReLU as jax.nn.relu squared (So et al. 2021).
KINK_PEERS = {
    "prelu": _flax_prelu,
    "rrelu_keyed": lambda x: jax.nn.leaky_relu(x, RRELU_LOWER),
    "squared_relu": lambda x: jnp.square(jax.nn.relu(x)),
}


@pytest.mark.parametrize("act", [a for a in ACTIVATIONS if a.kinks], ids=ids)
def test_kink_table_is_the_peers_measured_derivative(act: Activation):
    """The registry's conventions are the peers' measured kink derivatives (jax.nn's, flax's) in
    float64, not rectax's: NecroReLU's surrogate is the leaky slope a wherever relu's derivative
    is 0, so a + (1 - a)·relu'(0) with jax.nn.relu's measured relu'(0)."""
    with jax.enable_x64(True):
        if act.surrogate:
            a = act.defaults["negative_slope"]
            relu_kink = float(jax.grad(jax.nn.relu)(jnp.float64(0.0)))
            measured = {0.0: a + (1 - a) * relu_kink}
        else:
            peer = KINK_PEERS.get(act.name, act.jax_nn)
            measured = {p: float(jax.grad(peer)(jnp.float64(p))) for p in act.kinks}
    assert act.kinks == pytest.approx(measured, rel=1e-15, abs=0), act.name


def test_selu_kink_is_the_published_constants():
    """λα from Klambauer et al.'s constants and from jax.nn.selu's own (its measured derivative)."""
    with jax.enable_x64(True):
        jax_selu = float(jax.grad(jax.nn.selu)(jnp.float64(0.0)))
    assert BY_NAME["selu"].kinks[0.0] == pytest.approx(SELU_SCALE * SELU_ALPHA, rel=1e-15)
    assert jax_selu == pytest.approx(SELU_SCALE * SELU_ALPHA, rel=1e-15)


# Points at least 0.05 from every kink (0, ±1, 6) and from softplus's threshold.
AWAY_FROM_KINKS = np.array([-4.3, -1.7, -0.6, -0.05, 0.07, 0.45, 1.3, 3.2, 7.4])


@pytest.mark.parametrize("act", TRUE_DERIVATIVE, ids=ids)
def test_check_grads(act: Activation):
    """Finite differences agree with the rule in both modes, to second order (float64)."""
    # Second order only where the rule is smooth (piecewise-linear hessians: test_transforms).
    order = 2 if act.smooth else 1
    with jax.enable_x64(True):
        check_grads(act.fn, (jnp.asarray(AWAY_FROM_KINKS),), order=order, modes=("fwd", "rev"))


def test_check_grads_rejects_necro_surrogate():
    """necro_relu's derivative is deliberately not the forward's: finite differences disagree."""
    with jax.enable_x64(True), pytest.raises(AssertionError):
        check_grads(rx.necro_relu, (jnp.asarray(AWAY_FROM_KINKS),), order=1, modes=("rev",))


EXP_FAMILY = {
    "elu": (lambda x: rx.elu(x, 2.0), lambda x: jax.nn.elu(x, 2.0), lambda x: 2.0 * np.exp(x)),
    "celu": (
        lambda x: rx.celu(x, 2.0),
        lambda x: jax.nn.celu(x, 2.0),
        lambda x: np.exp(x / 2.0),
    ),
    "selu": (rx.selu, jax.nn.selu, lambda x: SELU_SCALE * SELU_ALPHA * np.exp(x)),
}
TAILS = {
    jnp.float32: np.array([-17.0, -18.5, -20.0, -25.0, -40.0, -60.0, -80.0]),
    jnp.bfloat16: np.array([-6.0, -6.5, -7.0, -8.0, -10.0, -20.0, -40.0]),
}


@pytest.mark.parametrize("dtype", TAILS, ids=lambda d: jnp.dtype(d).name)
@pytest.mark.parametrize("name", EXP_FAMILY)
def test_exponential_tail_gradient_is_exact_where_jax_nn_is_not(name, dtype):
    rx_fn, nn_fn, dref = EXP_FAMILY[name]
    tail = TAILS[dtype]
    if name == "celu":
        tail = 2.0 * tail  # celu(x, α) saturates like exp(x/α)
    x = jnp.asarray(tail, dtype)
    x64 = np.asarray(x, np.float64)
    expected = dref(x64)
    ours = np.asarray(jax.vmap(jax.grad(rx_fn))(x), np.float64)
    rtol = RTOL[jnp.dtype(dtype)]
    if name == "selu" and dtype == jnp.bfloat16:
        # λ·α·exp(x) in bfloat16 is four roundings (α cast, exp, α·, λ·) of up to 0.39% each,
        # 1.3% measured at -6: twice jax's table, and still 40x better than jax.nn.
        rtol = 2 * rtol
    np.testing.assert_allclose(ours, expected, rtol=rtol, atol=0)
    # The motivation: jax.nn differentiates through expm1, which cancels in the tail.
    theirs = np.asarray(jax.vmap(jax.grad(nn_fn))(x), np.float64)
    rel = np.abs(theirs - expected) / expected
    assert np.max(rel) > 0.3, f"jax.nn.{name} is now accurate in the tail: {rel}"
    assert np.any(theirs == 0.0)


@by_dtype
@pytest.mark.parametrize("act", ACTIVATIONS, ids=ids)
def test_no_nan_from_finite_input_and_dtype_is_kept(act: Activation, dtype):
    """No NaN value or gradient (in x, or in the hyperparameter) for any finite input."""
    with x64_scope(dtype):
        x = grid(dtype)[0]  # includes ±0, subnormals, ±1e4 and ±finfo.max
        y = act.fn(x)
        chex.assert_type(y, dtype)  # the dtype is kept end to end, in both AD modes
        assert not jnp.isnan(y).any()
        for g in derivative(act.fn, x):
            chex.assert_type(g, dtype)
            assert not jnp.isnan(g).any(), np.asarray(x)[np.asarray(jnp.isnan(g))]
        if act.hyper is not None:
            fn, sweep = act.hyper
            dh = jax.jit(jax.vmap(jax.grad(lambda h: jnp.sum(fn(x, h).astype(jnp.float32)))))
            assert not jnp.isnan(dh(jnp.asarray(sweep, jnp.float32))).any(), act.name


def _softplus_dbeta(x: np.ndarray, beta: float) -> np.ndarray:
    """d/dβ of (1/β) log(1 + e^{βx}) = x σ(βx)/β − log(1 + e^{βx})/β²."""
    return x * special.expit(beta * x) / beta - np.logaddexp(0.0, beta * x) / beta**2


def _celu_dalpha(x: np.ndarray, alpha: float) -> np.ndarray:
    z = np.minimum(x, 0) / alpha
    return np.expm1(z) - z * np.exp(z)


HYPER_GRADS = {
    # name: (fn(x, h), h, closed-form dy/dh in float64)
    "leaky_relu": (rx.leaky_relu, 0.2, lambda x, a: np.minimum(x, 0)),
    "prelu": (rx.prelu, 0.25, lambda x, a: np.minimum(x, 0)),
    "rrelu_eval": (
        lambda x, lo: rx.rrelu(x, None, lo, 0.5),
        0.1,
        lambda x, _: np.minimum(x, 0) / 2,
    ),
    "elu": (rx.elu, 1.5, lambda x, a: np.expm1(np.minimum(x, 0))),
    "celu": (rx.celu, 1.5, _celu_dalpha),
    "softplus": (lambda x, b: rx.softplus(x, b, None), 1.7, _softplus_dbeta),
    "necro_relu": (rx.necro_relu, 0.1, lambda x, a: np.zeros_like(x)),
    # d/db (x + sqrt(x² + b))/2 = 1 / (4 sqrt(x² + b))
    "squareplus": (rx.squareplus, 2.5, lambda x, b: 1 / (4 * np.sqrt(x * x + b))),
}


@pytest.mark.parametrize("name", HYPER_GRADS)
def test_hyperparameter_gradient(name):
    fn, h, dref = HYPER_GRADS[name]
    with jax.enable_x64(True):
        x64 = np.linspace(-6.0, 6.0, 41)
        x = jnp.asarray(x64)
        _, t = jax.jvp(lambda h: fn(x, h), (jnp.float64(h),), (jnp.float64(1.0),))
        np.testing.assert_allclose(t, dref(x64, h), rtol=1e-12, atol=1e-14)
        g = jax.grad(lambda h: jnp.sum(fn(x, h)))(jnp.float64(h))
        np.testing.assert_allclose(g, np.sum(dref(x64, h)), rtol=1e-12, atol=1e-13)
        if name != "necro_relu":  # its slope has a zero gradient by design
            check_grads(lambda h: fn(x, h), (jnp.float64(h),), order=1, modes=("fwd", "rev"))


def test_prelu_per_channel_slope_gets_summed_gradient():
    with jax.enable_x64(True):
        x = jax.random.normal(jax.random.key(0), (16, 5), jnp.float64)
        slope = jnp.asarray([0.0, 0.1, 0.25, 0.5, 1.0])
        w = jax.random.normal(jax.random.key(1), (16, 5), jnp.float64)
        g = jax.grad(lambda a: jnp.sum(w * rx.prelu(x, a)))(slope)
        expected = np.sum(np.asarray(w) * np.minimum(np.asarray(x), 0), axis=0)
        chex.assert_shape(g, (5,))
        np.testing.assert_allclose(g, expected, rtol=1e-13)
        check_grads(lambda a: rx.prelu(x, a), (slope,), order=1, modes=("fwd", "rev"))


# --------------------------------------------------------------------------- dtypes
@pytest.mark.parametrize("dtype", LOW_PRECISION, ids=lambda d: jnp.dtype(d).name)
@pytest.mark.parametrize("act", WITH_HYPER, ids=ids)
def test_float32_hyperparameter_does_not_promote(act: Activation, dtype):
    fn, sweep = act.hyper
    x = jnp.linspace(-3, 3, 10, dtype=dtype)
    h = jnp.float32(sweep[-1])
    chex.assert_type(fn(x, h), dtype)
    g = jax.grad(lambda h: jnp.sum(fn(x, h)).astype(jnp.float32))(h)
    chex.assert_type(g, jnp.float32)
    gx = jax.grad(lambda x: jnp.sum(fn(x, h)))(x)
    chex.assert_type(gx, dtype)


def test_float32_per_channel_slope_with_bfloat16_input():
    x = jnp.linspace(-3, 3, 12, dtype=jnp.bfloat16).reshape(3, 4)
    slope = jnp.asarray([0.1, 0.2, 0.3, 0.4], jnp.float32)
    chex.assert_type(rx.prelu(x, slope), jnp.bfloat16)
    g = jax.grad(lambda a: jnp.sum(rx.prelu(x, a).astype(jnp.float32)))(slope)
    chex.assert_type(g, jnp.float32)
    chex.assert_shape(g, (4,))


# --------------------------------------------------------------------------- edge values
# The derivative of the branch each piecewise function took, read off its output.
BRANCH = {
    "relu": lambda x, y: np.where(y > 0, 1.0, 0.0),
    "relu6": lambda x, y: np.where(y > 0, 1.0, 0.0),
    "necro_relu": lambda x, y: np.where(y > 0, 1.0, 0.1),
    "leaky_relu": lambda x, y: np.where(y == x, 1.0, 0.01),
    "prelu": lambda x, y: np.where(y == x, 1.0, 0.25),
    "rrelu_eval": lambda x, y: np.where(y == x, 1.0, RRELU_EVAL_SLOPE),
    "hard_tanh": lambda x, y: np.ones_like(x),
    # alpha = 1: both branches' derivatives are 1 at ±0 (alpha·e^x); see the alpha = 2 test below.
    "elu": lambda x, y: np.where(y > 0, 1.0, np.exp(x)),
    "celu": lambda x, y: np.where(y > 0, 1.0, np.exp(x)),
    "selu": lambda x, y: np.where(y > 0, SELU_SCALE, SELU_SCALE * SELU_ALPHA),
    "squared_relu": lambda x, y: 2 * y,
}


@by_dtype
@pytest.mark.parametrize("act", DETERMINISTIC, ids=ids)
def test_subnormals_forward_and_derivative_agree(act: Activation, dtype):
    """XLA:CPU flushes float32/bfloat16 subnormals (relu(1e-45) = 0) but float16 ones survive
    (float16 is computed in float32, where they are normal). Either way the derivative is that
    of the branch the forward took (read off the output), and smooth gates see f'(0)."""
    with x64_scope(dtype):
        info = jnp.finfo(dtype)
        sub = float(info.smallest_subnormal)
        x = jnp.asarray([sub, -sub, 3 * sub, -3 * sub], dtype)
        x64 = np.asarray(x, np.float64)
        y = np.asarray(act.fn(x), np.float64)
        ref = act.ref(x64)
        assert np.all(np.abs(y - ref) <= RTOL[jnp.dtype(dtype)] * np.abs(ref) + 2 * info.tiny)
        if act.name in BRANCH:
            expected = BRANCH[act.name](x64, y)
        else:
            expected = np.broadcast_to(act.dref(np.zeros(1)), x64.shape)
        for g in derivative(act.fn, x):
            np.testing.assert_allclose(
                np.asarray(g, np.float64),
                expected,
                rtol=RTOL[jnp.dtype(dtype)],
                atol=2 * float(info.tiny),
            )


@by_dtype
@pytest.mark.parametrize("alpha", [0.5, 2.0])
def test_elu_subnormals_take_the_branch_of_the_output(alpha, dtype):
    """With alpha != 1 ELU's branches differ at ±0 (1 against alpha): the derivative at ±subnormals
    is the branch the forward took, read off the output (flushed to 0 or not, per dtype)."""
    with x64_scope(dtype):
        sub = float(jnp.finfo(dtype).smallest_subnormal)
        x = jnp.asarray([sub, -sub, 3 * sub, -3 * sub], dtype)
        x64 = np.asarray(x, np.float64)
        y = np.asarray(rx.elu(x, alpha), np.float64)
        expected = np.where(y > 0, 1.0, alpha * np.exp(x64))
        for g in derivative(lambda v: rx.elu(v, alpha), x):
            np.testing.assert_allclose(
                np.asarray(g, np.float64), expected, rtol=RTOL[jnp.dtype(dtype)]
            )


def test_float32_subnormals_are_flushed_consistently():
    """Documents what XLA:CPU does: relu(smallest subnormal) is 0 and so is its derivative
    (jnp.maximum's own gradient would be 0.5 there: jax.grad(lambda x: jnp.maximum(x, 0.))(0.))."""
    x = jnp.asarray([1e-45, 1e-40], jnp.float32)
    assert np.all(np.asarray(x) > 0)  # they are subnormal, not zero, on the host
    np.testing.assert_array_equal(rx.relu(x), [0.0, 0.0])
    np.testing.assert_array_equal(jax.grad(lambda x: jnp.sum(rx.relu(x)))(x), [0.0, 0.0])
    np.testing.assert_array_equal(
        jax.grad(lambda x: jnp.sum(rx.necro_relu(x, 0.25)))(x), [0.25, 0.25]
    )


@pytest.mark.parametrize("act", DETERMINISTIC, ids=ids)
def test_infinities(act: Activation):
    """Limits at ±inf: values and derivatives equal the reference's (0/1, never NaN)."""
    x64 = np.array([-np.inf, np.inf])
    x = jnp.asarray(x64, jnp.float32)
    np.testing.assert_array_equal(act.fn(x), act.ref(x64).astype(np.float32))
    for g in derivative(act.fn, x):
        np.testing.assert_allclose(g, act.dref(x64), rtol=RTOL[jnp.dtype(jnp.float32)])


def test_documented_limits_at_minus_inf():
    ninf = jnp.float32(-jnp.inf)
    assert rx.gelu(ninf) == 0
    assert rx.gelu(ninf, approximate=False) == 0
    assert rx.silu(ninf) == 0
    assert rx.elu(ninf, 2.5) == -2.5
    assert rx.celu(ninf, 2.5) == -2.5
    assert rx.softplus(ninf) == 0
    np.testing.assert_allclose(rx.selu(ninf), -SELU_SCALE * SELU_ALPHA, rtol=1e-6)


@pytest.mark.parametrize("act", ACTIVATIONS, ids=ids)
def test_nan_propagates(act: Activation):
    for dtype in DTYPES:
        with x64_scope(dtype):
            x = jnp.asarray([jnp.nan, -1.0, 1.0, jnp.nan], dtype)
            y = act.fn(x)
            np.testing.assert_array_equal(np.isnan(np.asarray(y)), [True, False, False, True])


@pytest.mark.parametrize("act", DETERMINISTIC, ids=ids)
def test_python_and_numpy_scalars(act: Activation):
    for value in (1.5, -2.25, np.float32(-0.5)):
        y = act.fn(value)
        chex.assert_shape(y, ())
        chex.assert_type(y, jnp.float32)
        expected = act.ref(np.float64(value))
        np.testing.assert_allclose(y, expected, rtol=RTOL[jnp.dtype(jnp.float32)])


@pytest.mark.parametrize("act", ACTIVATIONS, ids=ids)
def test_empty_arrays(act: Activation):
    for shape in [(0,), (3, 0), (0, 5)]:
        x = jnp.zeros(shape, jnp.float32)
        chex.assert_shape(act.fn(x), shape)
        g, t = derivative(act.fn, x)
        chex.assert_shape([g, t], shape)


RANKS = [(), (7,), (3, 9), (2, 1, 3, 17)]


@pytest.mark.parametrize("act", ACTIVATIONS, ids=ids)
def test_ranks_0_to_4(act: Activation):
    for shape in RANKS:
        _check_rank(act, shape)


def _check_rank(act: Activation, shape):
    """Values and derivatives at one rank (last axes not multiples of 8, for the bit masks)."""
    n = math.prod(shape)
    x64 = np.linspace(-7.3, 7.1, n).reshape(shape)
    x = jnp.asarray(x64, jnp.float32)
    y = act.fn(x)
    chex.assert_shape(y, shape)
    if act.ref is not None:
        assert_matches_reference(y, act.ref(x64), x64, act.dref(x64), jnp.float32, what=act.name)
    g, t = derivative(act.fn, x)
    chex.assert_trees_all_close(g, t, rtol=1e-6)
    if not act.random:
        dref = act.dref(x64)
        assert_matches_reference(g, dref, x64, act.d2ref(x64), jnp.float32, what=act.name)
    else:
        y64 = np.asarray(y, np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            slopes = np.where(x64 >= 0, 1.0, y64 / x64)
        np.testing.assert_allclose(g, slopes, rtol=1e-6)


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("bad", [jnp.bool_, jnp.complex64])
@pytest.mark.parametrize("act", ACTIVATIONS, ids=ids)
def test_bool_and_complex_raise_type_error(act: Activation, bad):
    x = jnp.zeros((3,), bad)
    with pytest.raises(TypeError, match=rf"rectax\.{act.api}\b.*{jnp.dtype(bad).name}"):
        act.fn(x)


INTEGER_EXACT = {
    "relu": lambda x: np.maximum(x, 0),
    "hard_tanh": lambda x: np.clip(x.astype(np.int64), -1, 1),
    "squared_relu": lambda x: np.maximum(x, 0) ** 2,
    "necro_relu": lambda x: np.maximum(x, 0),
}
# Functions without a jax.nn namesake promote integers as leaky_relu does.
INTEGER_LIKE = {"prelu": jax.nn.leaky_relu, "rrelu_eval": jax.nn.leaky_relu}


def _weak(y) -> bool:
    return bool(getattr(y, "weak_type", False))


@pytest.mark.parametrize("act", ACTIVATIONS, ids=ids)
def test_integer_input(act: Activation):
    for int_dtype in (jnp.int8, jnp.uint8, jnp.int16, jnp.int32):
        _check_integer(act, int_dtype)


def _check_integer(act: Activation, int_dtype):
    x_np = np.arange(0 if int_dtype == jnp.uint8 else -9, 10).astype(int_dtype)
    x = jnp.asarray(x_np)
    if act.name in INTEGER_EXACT:
        assert act.integers
        y = act.fn(x)
        chex.assert_type(y, int_dtype)
        np.testing.assert_array_equal(y, INTEGER_EXACT[act.name](x_np).astype(int_dtype))
        return
    assert not act.integers
    oracle = act.jax_nn or INTEGER_LIKE.get(act.name)
    if oracle is None:  # keyed rrelu: the same promotion as its eval mode
        oracle = jax.nn.leaky_relu
    try:
        with jax.numpy_dtype_promotion("standard"):  # jax.nn promotes integers implicitly
            expected = oracle(x)
    except TypeError:  # jax.nn rejects integers here (silu): so must rectax
        with pytest.raises(TypeError, match=rf"rectax\.{act.api}\b.*{jnp.dtype(int_dtype).name}"):
            act.fn(x)
        return
    y = act.fn(x)
    assert (y.dtype, _weak(y)) == (expected.dtype, _weak(expected)), act.name
    if not act.random:
        np.testing.assert_allclose(
            np.asarray(y, np.float64),
            np.asarray(act.fn(x_np.astype(np.float32)), np.float64),
            rtol=1e-6,
        )


@pytest.mark.parametrize("act", [a for a in ACTIVATIONS if a.jax_nn is not None], ids=ids)
@pytest.mark.parametrize("value", [0, 2, -1.5, 2.0])
def test_python_scalar_like_jax_nn(act: Activation, value):
    """A Python scalar gives what jax.nn gives: same dtype and, except gelu, weak type."""
    try:
        with jax.numpy_dtype_promotion("standard"):
            expected = act.jax_nn(value)
    except TypeError:
        with pytest.raises(TypeError, match=rf"rectax\.{act.api}\b"):
            act.fn(value)
        return
    y = act.fn(value)
    assert y.dtype == expected.dtype
    # jax.nn.gelu drops the weak type (a NumPy constant in its formula); rectax keeps it, so a
    # Python scalar never promotes a low-precision array it is combined with.
    assert _weak(y)
    np.testing.assert_allclose(float(y), float(expected), rtol=1e-5, atol=1e-7)
    assert (jnp.ones(2, jnp.float16) + y).dtype == jnp.float16


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (lambda x: rx.gelu(x, approximate="bogus"), "approximate"),
        (lambda x: rx.gelu(x, approximate="exact"), "approximate"),
        (lambda x: rx.rrelu(x, lower=0.5, upper=0.1), "lower"),
        (lambda x: rx.rrelu(x, jax.random.key(0), lower=0.5, upper=0.1), "lower"),
        (lambda x: rx.rrelu(x, lower=np.asarray([0.1, 0.6]), upper=0.5), "lower"),
        (lambda x: rx.softplus(x, beta=0.0), "beta"),
        (lambda x: rx.softplus(x, beta=-1.0), "beta"),
        (lambda x: rx.softplus(x, beta=np.asarray([1.0, -1.0])), "beta"),
        (lambda x: rx.celu(x, alpha=0.0), "alpha"),
        (lambda x: rx.celu(x, alpha=-2.0), "alpha"),
        (lambda x: rx.squareplus(x, b=-1.0), "b"),
        (lambda x: rx.squareplus(x, b=np.asarray([4.0, -1.0])), "b"),
    ],
)
def test_bad_hyperparameters_raise_value_error(call, argument):
    with pytest.raises(ValueError, match=argument):
        call(jnp.ones(2))


@pytest.mark.parametrize(
    "call",
    [
        lambda x, p: rx.softplus(x, beta=p),
        lambda x, p: rx.celu(x, alpha=p),
        lambda x, p: rx.rrelu(x, lower=p * 0.1, upper=p * 0.3),
        lambda x, p: rx.leaky_relu(x, p),
        lambda x, p: rx.elu(x, p),
    ],
)
def test_device_array_hyperparameters_never_sync(call, monkeypatch):
    """A jax-array hyperparameter is not validated on the host: no device-to-host transfer.

    The transfer guard catches it on accelerators; on CPU, where reading a device array costs no
    transfer, a spy on NumPy's conversions checks that none receives a jax array.
    """
    x = jnp.linspace(-2.0, 2.0, 8)
    p = jnp.asarray(1.5)
    expected = np.asarray(call(x, 1.5))
    converted = []
    real_asarray = np.asarray

    def spy(value, *args, **kwargs):
        if isinstance(value, jax.Array):
            converted.append(value)
        return real_asarray(value, *args, **kwargs)

    monkeypatch.setattr(np, "asarray", spy)
    with jax.transfer_guard_device_to_host("disallow"):
        y = call(x, p)
    monkeypatch.undo()
    assert converted == []
    np.testing.assert_array_equal(np.asarray(y), expected)


def test_traced_hyperparameters_are_not_validated():
    x = jnp.linspace(-2, 2, 5)
    betas = jnp.asarray([-1.0, 0.5, 2.0])
    y = jax.vmap(lambda b: rx.softplus(x, b))(betas)
    chex.assert_shape(y, (3, 5))
    np.testing.assert_allclose(y[1:], [softplus_ref(np.asarray(x), b) for b in (0.5, 2.0)], 1e-6)
    chex.assert_shape(jax.jit(rx.celu)(x, -1.0), (5,))
    chex.assert_shape(jax.jit(lambda lo, hi: rx.rrelu(x, None, lo, hi))(0.5, 0.1), (5,))
    g = jax.jit(jax.grad(lambda b: jnp.sum(rx.softplus(x, b))))(2.0)
    assert np.isfinite(g)


# --------------------------------------------------------------------------- rrelu
def test_rrelu_eval_slope_is_midpoint():
    x = jnp.asarray([-3.0, -1.0, 0.0, 2.0])
    expected = np.where(np.asarray(x) >= 0, np.asarray(x), 0.2291667 * np.asarray(x))
    np.testing.assert_allclose(rx.rrelu(x), expected, rtol=1e-6)
    np.testing.assert_allclose(rx.rrelu(x, None, 0.1, 0.3), [-0.6, -0.2, 0.0, 2.0], rtol=1e-6)
    assert pytest.approx(0.2291667, abs=1e-7) == RRELU_EVAL_SLOPE


N_SLOPES = 1_000_000
Z_STAR = 4.892  # two-sided α = 1e-6: scipy.stats.norm.isf(0.5e-6)


def test_rrelu_keyed_samples_uniform_slopes_per_element():
    x = -jnp.ones((N_SLOPES,), jnp.float32)
    slopes = -np.asarray(rx.rrelu(x, jax.random.key(7)), np.float64)
    lo, hi = float(np.float32(RRELU_LOWER)), float(np.float32(RRELU_UPPER))
    assert slopes.min() >= lo
    assert slopes.max() <= hi
    width = RRELU_UPPER - RRELU_LOWER
    sigma = width / math.sqrt(12)
    assert abs(slopes.mean() - RRELU_EVAL_SLOPE) < Z_STAR * sigma / math.sqrt(N_SLOPES)
    se_std = math.sqrt((-1.2 + 2) / (4 * N_SLOPES))  # uniform: excess kurtosis -1.2
    assert abs(slopes.std() / sigma - 1) < Z_STAR * se_std
    assert stats.kstest(slopes, stats.uniform(RRELU_LOWER, width).cdf).pvalue > 1e-6
    assert len(np.unique(slopes)) > N_SLOPES // 2  # one draw per element, not one per call


def test_rrelu_keyed_bounds_in_bfloat16():
    x = -jnp.ones((4096,), jnp.bfloat16)
    slopes = -np.asarray(rx.rrelu(x, jax.random.key(3), 0.1, 0.2), np.float64)
    lo, hi = (float(jnp.asarray(v, jnp.bfloat16)) for v in (0.1, 0.2))
    assert slopes.min() >= lo
    assert slopes.max() <= hi
    assert len(np.unique(slopes)) > 8


def test_rrelu_keyed_is_reproducible():
    x = jnp.linspace(-5.0, 5.0, 101)
    a = rx.rrelu(x, jax.random.key(11))
    np.testing.assert_array_equal(a, rx.rrelu(x, jax.random.key(11)))
    np.testing.assert_array_equal(a, jax.jit(rx.rrelu)(x, jax.random.key(11)))
    assert not np.array_equal(a, rx.rrelu(x, jax.random.key(12)))
    np.testing.assert_array_equal(a[x >= 0], x[x >= 0])


def test_rrelu_keyed_gradient_is_the_sampled_slope():
    x = jax.random.normal(jax.random.key(5), (4, 257)) * 3
    key = jax.random.key(9)
    fn = lambda x: rx.rrelu(x, key, 0.05, 0.6)
    x64, y64 = np.asarray(x, np.float64), np.asarray(fn(x), np.float64)
    neg = x64 < 0
    slopes = y64[neg] / x64[neg]
    assert slopes.min() >= 0.05 - 1e-6
    assert slopes.max() <= 0.6 + 1e-6
    assert slopes.std() > 0.1  # really per element
    for g in derivative(fn, x):
        g = np.asarray(g, np.float64)
        np.testing.assert_allclose(g[neg], slopes, rtol=1e-6)
        np.testing.assert_array_equal(g[~neg], 1.0)


# --------------------------------------------------------------------------- surrogate()
def _both_modes(fn, x):
    g, t = derivative(fn, x)
    np.testing.assert_array_equal(g, t)
    return np.asarray(g, np.float64)


def test_surrogate_straight_through_step():
    step = rx.surrogate(lambda x: (x > 0).astype(x.dtype), lambda x: jnp.ones_like(x))
    x = jnp.asarray([-2.0, -0.0, 0.5, 3.0])
    np.testing.assert_array_equal(step(x), [0.0, 0.0, 1.0, 1.0])
    np.testing.assert_array_equal(_both_modes(step, x), 1.0)


def test_surrogate_relu_with_bsilu_derivative():
    """SUGAR: ReLU forward, derivative of B-SiLU(x) = (x + 1.67)σ(x) − 0.835."""

    def bsilu_derivative(x):
        s = jax.nn.sigmoid(x)
        return s + (x + 1.67) * s * (1 - s)

    fn = rx.surrogate(rx.relu, bsilu_derivative)
    x64 = np.linspace(-6.0, 6.0, 49)
    x = jnp.asarray(x64, jnp.float32)
    np.testing.assert_array_equal(fn(x), rx.relu(x))
    s = special.expit(x64)
    expected = s + (x64 + 1.67) * s * special.expit(-x64)
    # σ(x)(1 − σ(x)) in float32 loses relative accuracy where σ(x) ≈ 1 (absolute error ~eps).
    np.testing.assert_allclose(_both_modes(fn, x), expected, rtol=1e-6, atol=1e-6)
    # Independent check of the closed form: finite differences of B-SiLU itself in float64.
    bsilu = lambda x: (x + 1.67) * special.expit(x) - 0.835
    fd = (bsilu(x64 + 1e-6) - bsilu(x64 - 1e-6)) / 2e-6
    np.testing.assert_allclose(expected, fd, rtol=1e-7, atol=1e-9)


def test_surrogate_mask_form():
    fn = rx.surrogate(
        lambda x, a: jnp.where(x >= 0, x, a * x),
        mask=lambda x, a: x >= 0,
        values=lambda a: (1.0, a),
    )
    x64 = np.linspace(-3.0, 3.0, 25)
    x = jnp.asarray(x64, jnp.float32)
    a = jnp.float32(0.3)
    f = lambda x: fn(x, a)
    np.testing.assert_allclose(f(x), np.where(x64 >= 0, x64, 0.3 * x64), rtol=1e-6)
    np.testing.assert_allclose(_both_modes(f, x), np.where(x64 >= 0, 1.0, 0.3), rtol=1e-7)
    g = jax.grad(lambda a: jnp.sum(fn(x, a)))(a)
    np.testing.assert_allclose(g, np.sum(np.minimum(x64, 0)), rtol=1e-6)
    hess = jax.hessian(lambda x: jnp.sum(f(x)))(x)
    np.testing.assert_array_equal(hess, 0.0)


def test_hard_swish_is_hard_silu():
    assert rx.hard_swish is rx.hard_silu


def test_swish_is_silu():
    assert rx.swish is rx.silu


def test_surrogate_rejects_bad_dtypes():
    fn = rx.surrogate(rx.relu, lambda x: jnp.ones_like(x))
    with pytest.raises(TypeError, match=r"rectax\.surrogate.*bool"):
        fn(jnp.zeros(2, bool))


# Where exact GELU, x·Φ(x) (scipy), is a normal number far above each dtype's smallest normal.
TAIL = {
    jnp.bfloat16: np.linspace(-10.0, -5.0, 11),  # 7.6e-23 .. 1.4e-6
    jnp.float16: np.linspace(-3.5, -3.0, 6),  # 8.1e-4 .. 4.0e-3
    jnp.float32: np.linspace(-10.0, -5.0, 11),
    jnp.float64: np.linspace(-30.0, -10.0, 11),  # 1.5e-196 .. 7.6e-23
}


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: jnp.dtype(d).name)
def test_absolute_floor_catches_a_zeroed_tail(dtype):
    """The absolute floor (ATOL) stays negligible: a GELU that returns 0 in its negative tail,
    where the true value is a normal number of the dtype, fails the value check; the correctly
    rounded values pass it."""
    x64 = TAIL[dtype]
    exact = x64 * special.ndtr(x64)
    slope = special.ndtr(x64) + x64 * np.exp(-(x64**2) / 2) / math.sqrt(2 * math.pi)
    with x64_scope(dtype):
        rounded = np.asarray(jnp.asarray(exact, dtype), np.float64)
    assert_matches_reference(rounded, exact, x64, slope, dtype)
    with pytest.raises(AssertionError, match="outside tolerance"):
        assert_matches_reference(np.zeros_like(exact), exact, x64, slope, dtype)


# --------------------------------------------------------------------------- low-precision ulps
def _ulp(ref: np.ndarray, dtype) -> np.ndarray:
    """The spacing of ``dtype`` at ``ref`` (its smallest normal spacing near 0)."""
    r = np.asarray(ref, np.float64)
    finfo = jnp.finfo(dtype)
    exponent = np.floor(np.log2(np.maximum(np.abs(r), float(finfo.smallest_normal))))
    return 2.0 ** (exponent - finfo.nmant)


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16], ids=["bf16", "f16"])
@pytest.mark.parametrize("act", [a for a in ACTIVATIONS if a.ref is not None], ids=ids)
def test_low_precision_within_one_ulp_of_float64(act: Activation, dtype):
    """Forward and derivative in bf16/f16 are within 1 ulp of the float64 value: computed wide and
    rounded once (jax.nn's tanh-form gelu in bf16 is up to 3.2% off on [-2.33, -1.86])."""
    x = jnp.linspace(-8.0, 8.0, 20001, dtype=jnp.float32).astype(dtype)
    x64 = np.asarray(x, np.float64)
    y = np.asarray(act.fn(x), np.float64)
    ref = act.ref(x64)
    finite = np.isfinite(ref) & (np.abs(ref) <= float(jnp.finfo(dtype).max))
    err = np.abs(y - ref)[finite] / _ulp(ref, dtype)[finite]
    assert err.max() <= 1.0, (act.name, float(err.max()), x64[finite][err.argmax()])
    d = np.asarray(jax.vmap(jax.grad(lambda v: act.fn(v)))(x), np.float64)
    dref = act.dref(x64)
    kinks = np.isin(x64, list(act.kinks))
    ok = np.isfinite(dref) & ~kinks
    derr = np.abs(d - dref)[ok] / _ulp(dref, dtype)[ok]
    assert derr.max() <= 1.0, (act.name, float(derr.max()), x64[ok][derr.argmax()])


def test_registry_covers_every_public_activation():
    """The test oracle knows every activation rectax exports (swish is silu's alias)."""
    public = set(PUBLIC_ACTIVATIONS)
    assert len(public) >= 14
    known = {a.api for a in (*ACTIVATIONS, *WIDENING)}
    assert public <= known, public - known


def test_surrogate_names_itself_not_its_forward():
    """surrogate(rx.relu, d) is not relu: its name and docstring say what it is."""

    def straight_through(x):
        return jnp.ones_like(x)

    fn = rx.surrogate(rx.relu, straight_through)
    assert fn.__name__ == "surrogate(relu, straight_through)"
    assert fn.__doc__ != rx.relu.__doc__
    assert "relu" in fn.__doc__
    assert "straight_through" in fn.__doc__
    two = rx.surrogate(rx.relu, mask=lambda x: x > 0, values=lambda: (1.0, 0.1))
    assert two.__name__.startswith("surrogate(relu, ")


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"derivative": jnp.ones_like, "mask": lambda x: x > 0},
        {"mask": lambda x: x > 0},
        {"values": lambda: (1.0, 0.0)},
        {"derivative": jnp.ones_like, "mask": lambda x: x > 0, "values": lambda: (1.0, 0.0)},
    ],
)
def test_surrogate_needs_exactly_one_form(kwargs):
    with pytest.raises(TypeError, match=r"rectax\.surrogate: give either derivative"):
        rx.surrogate(rx.relu, **kwargs)
