"""Gated linear units (swiglu, geglu, reglu, glu): values and both partial derivatives against
float64 references, against the plain jnp expression and jax.nn.glu, what reverse mode keeps,
bad input, and the compiled memory of a 4-layer FFN stack against the plain expression."""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _registry import BY_NAME, RTOL, he_scale, x64_scope
from flax import nnx
from jax.test_util import check_grads
from scipy import special

import rectax as rx
from benchmarks import gated as gated_ffn
from benchmarks import models
from rectax import linen as rxl
from rectax import nnx as rxn

# name -> (rectax gated unit, plain jnp expression, registry entry of the gate's activation)
GATED = {
    "swiglu": (rx.swiglu, lambda g, u: jax.nn.silu(g) * u, "silu"),
    "geglu_tanh": (rx.geglu, lambda g, u: jax.nn.gelu(g, approximate=True) * u, "gelu_tanh"),
    "geglu_exact": (
        functools.partial(rx.geglu, approximate="none"),
        lambda g, u: jax.nn.gelu(g, approximate=False) * u,
        "gelu_exact",
    ),
    "reglu": (rx.reglu, lambda g, u: jax.nn.relu(g) * u, "relu"),
}
gated = pytest.mark.parametrize("name", list(GATED))


def _inputs(dtype, n=257):
    gate = np.linspace(-9.0, 9.0, n)
    up = np.cos(np.linspace(0.0, 7.0, n)) * 3
    return gate, up, jnp.asarray(gate, dtype), jnp.asarray(up, dtype)


def _both_modes(fn, g, u):
    """Output, (d/dgate, d/dup) of sum(fn) by vjp, and the same two by jvp."""
    y, vjp = jax.vjp(fn, g, u)
    grads = vjp(jnp.ones_like(y))
    tangents = tuple(
        jax.jvp(fn, (g, u), tangent)[1]
        for tangent in (
            (jnp.ones_like(g), jnp.zeros_like(u)),
            (jnp.zeros_like(g), jnp.ones_like(u)),
        )
    )
    return y, grads, tangents


@gated
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64], ids=["f32", "f64"])
def test_values_and_partials_match_float64(name, dtype):
    fn, _, gate_act = GATED[name]
    act = BY_NAME[gate_act]
    with x64_scope(dtype):
        gate, up, g, u = _inputs(dtype)
        y, grads, tangents = _both_modes(fn, g, u)
        chex.assert_type([y, *grads, *tangents], dtype)
        rtol, atol = RTOL[jnp.dtype(dtype)] * 4, RTOL[jnp.dtype(dtype)]
        np.testing.assert_allclose(y, act.ref(gate) * up, rtol=rtol, atol=atol * 10)
        for d_gate, d_up in (grads, tangents):
            np.testing.assert_allclose(d_gate, act.dref(gate) * up, rtol=rtol, atol=atol * 10)
            np.testing.assert_allclose(d_up, act.ref(gate), rtol=rtol, atol=atol)


@gated
def test_check_grads_float64(name):
    fn, _, _ = GATED[name]
    with jax.enable_x64(True):
        g = jnp.asarray([-2.3, -0.7, 0.4, 1.9, 3.3])
        u = jnp.asarray([0.5, -1.2, 2.0, 0.3, -0.8])
        check_grads(fn, (g, u), order=1, modes=("fwd", "rev"))


@gated
def test_matches_the_plain_expression(name):
    fn, plain, _ = GATED[name]
    _, _, g, u = _inputs(jnp.float32)
    y, (dg, du), _ = _both_modes(fn, g, u)
    y0, (dg0, du0), _ = _both_modes(plain, g, u)
    for ours, theirs in ((y, y0), (dg, dg0), (du, du0)):
        np.testing.assert_allclose(ours, theirs, rtol=2e-6, atol=2e-6)


@gated
@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_low_precision_is_two_roundings_from_float64(name, dtype):
    """act(gate) and act'(gate) are computed in float32 and rounded once, then multiplied by up
    in ``dtype``: within two roundings of the float64 value (jax.nn's bf16 tanh-gelu is up to
    3.2% off, so the plain expression is no oracle here)."""
    fn, _, gate_act = GATED[name]
    act = BY_NAME[gate_act]
    _, _, g, u = _inputs(dtype)
    gate, up = np.asarray(g, np.float64), np.asarray(u, np.float64)
    y, (dg, du), _ = _both_modes(fn, g, u)
    chex.assert_type([y, dg, du], dtype)
    eps = float(jnp.finfo(dtype).eps)
    tiny = float(jnp.finfo(dtype).tiny)
    for ours, expected in ((y, act.ref(gate) * up), (dg, act.dref(gate) * up), (du, act.ref(gate))):
        err = np.abs(np.asarray(ours, np.float64) - expected)
        assert np.all(err <= eps * np.abs(expected) + 2 * tiny), (name, float(np.max(err)))


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_glu_is_jax_nn_glu(axis):
    x = jax.random.normal(jax.random.key(0), (4, 6, 8))
    np.testing.assert_allclose(rx.glu(x, axis), jax.nn.glu(x, axis), rtol=1e-6, atol=1e-7)
    loss = lambda f: lambda v: jnp.sum(jnp.sin(f(v, axis)))
    np.testing.assert_allclose(
        jax.grad(loss(rx.glu))(x), jax.grad(loss(jax.nn.glu))(x), rtol=1e-5, atol=1e-6
    )


def test_glu_is_the_sigmoid_gated_unit_in_float64():
    with jax.enable_x64(True):
        x = np.linspace(-40.0, 40.0, 202).reshape(2, 101)
        first, second = x[0], x[1]
        s, c = special.expit(second), special.expit(-second)  # σ and 1 - σ, no cancellation
        np.testing.assert_allclose(rx.glu(jnp.asarray(x), axis=0), (first * s)[None], rtol=1e-15)
        d = jax.grad(lambda v: jnp.sum(rx.glu(v, axis=0)))(jnp.asarray(x))
        np.testing.assert_allclose(d[0], s, rtol=1e-15)
        np.testing.assert_allclose(d[1], first * s * c, rtol=1e-14, atol=1e-300)


@pytest.mark.parametrize("bits", [1, 3, 4])
@pytest.mark.parametrize(
    ("fn", "gate_fn"),
    [
        (rx.swiglu, rx.silu),
        (
            functools.partial(rx.geglu, approximate=False),
            functools.partial(rx.gelu, approximate=False),
        ),
    ],
    ids=["swiglu", "geglu_exact"],
)
def test_bits_take_the_gate_activations_few_bit_derivative(fn, gate_fn, bits):
    """Forward bitwise exact; d/dup exact; d/dgate = up times the gate's few-bit derivative."""
    _, _, g, u = _inputs(jnp.float32, n=256)
    y, (dg, du), (tg, tu) = _both_modes(functools.partial(fn, bits=bits), g, u)
    np.testing.assert_array_equal(y, fn(g, u))
    q = jax.vmap(jax.grad(functools.partial(gate_fn, bits=bits)))(g)
    exact_q = jax.vmap(jax.grad(gate_fn))(g)
    assert np.unique(np.asarray(q)).size <= 2**bits
    assert not np.allclose(q, exact_q)  # the step function, not the exact derivative
    for d_gate, d_up in ((dg, du), (tg, tu)):
        np.testing.assert_allclose(d_gate, q * u, rtol=1e-6)
        np.testing.assert_allclose(d_up, gate_fn(g), rtol=1e-6)


def _residuals(fn, g, u):
    _, vjp = jax.vjp(fn, g, u)
    return [np.asarray(r) for r in jax.tree.leaves(vjp)]


def test_what_reverse_mode_keeps():
    """Exact: both inputs (what XLA keeps for the plain expression). Few-bit: gate, up and 4-bit
    codes, never silu(gate) (recomputed: tagging it measured above the plain expression under
    plain jax.checkpoint, test_ffn_stack_memory_never_above_the_plain_expression). ReGLU:
    relu(gate) and up."""
    _, _, g, u = _inputs(jnp.float32, n=256)
    g, u = g.reshape(8, 32), u.reshape(8, 32)

    def kept(residuals, value):
        return any(r.shape == value.shape and np.array_equal(r, value) for r in residuals)

    exact = _residuals(rx.swiglu, g, u)
    assert kept(exact, g)
    assert kept(exact, u)
    few = _residuals(functools.partial(rx.swiglu, bits=4), g, u)
    assert kept(few, g)
    assert kept(few, u)
    assert not kept(few, rx.silu(g))
    assert [r.shape for r in few if r.dtype == np.uint32] == [(8, 4)]  # 4 bits per element
    re = _residuals(rx.reglu, g, u)
    assert kept(re, rx.relu(g))
    assert kept(re, u)
    assert not kept(re, g)


def test_the_product_is_tagged_for_remat_policies():
    """save_only_these_names(RESIDUAL_NAME) around a block keeps the product (the down
    projection's input); plain jax.checkpoint keeps nothing of the block. bfloat16: the rule
    XLA:CPU takes for 16-bit SwiGLU (float32 takes jax.nn's expression, below)."""
    w = jnp.ones((32, 16), jnp.bfloat16) / 32
    g = jax.random.normal(jax.random.key(1), (8, 32), jnp.bfloat16)
    u = jax.random.normal(jax.random.key(2), (8, 32), jnp.bfloat16)

    def block(g, u):
        return jnp.sum(jnp.tanh(rx.swiglu(g, u) @ w))

    policy = jax.checkpoint_policies.save_only_these_names(rx.RESIDUAL_NAME)
    named = _residuals(jax.checkpoint(block, policy=policy), g, u)
    plain = _residuals(jax.checkpoint(block), g, u)
    product = np.asarray(rx.swiglu(g, u))
    assert any(r.shape == product.shape and np.allclose(r, product) for r in named)
    assert not any(r.shape == product.shape and np.allclose(r, product) for r in plain)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64], ids=["f32", "f64"])
def test_cpu_float32_swiglu_is_jax_nns_expression(dtype):
    """Traced for XLA:CPU, float32/float64 SwiGLU is ``jax.nn.silu(gate) * up`` itself: its
    values and both partials bitwise, and so its optimized HLO and step time (the checkpointed
    rule measured 1.19x; ``python -m benchmarks.ffn_stacks --time``, docs/memory.md)."""
    with x64_scope(dtype), rx.residual_target("cpu"):
        _, _, g, u = _inputs(dtype)
        y, (dg, du), (tg, tu) = _both_modes(rx.swiglu, g, u)
        y0, (dg0, du0), (tg0, tu0) = _both_modes(lambda a, b: jax.nn.silu(a) * b, g, u)
        for ours, theirs in ((y, y0), (dg, dg0), (du, du0), (tg, tg0), (tu, tu0)):
            np.testing.assert_array_equal(ours, theirs)


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("api", ["swiglu", "geglu", "reglu"])
def test_bad_inputs(api):
    fn = getattr(rx, api)
    f32, f16 = jnp.ones(4, jnp.float32), jnp.ones(4, jnp.float16)
    with pytest.raises(TypeError, match=rf"rectax\.{api}: gate and up must have the same dtype"):
        fn(f32, f16)
    with pytest.raises(ValueError, match=rf"rectax\.{api}: gate and up must have the same shape"):
        fn(f32, jnp.ones(5, jnp.float32))
    with pytest.raises(TypeError, match=rf"rectax\.{api}: gate must be a real floating.*int32"):
        fn(jnp.ones(4, jnp.int32), f32)
    with pytest.raises(TypeError, match=rf"rectax\.{api}: up must be a real floating.*bool"):
        fn(f32, jnp.ones(4, bool))


@pytest.mark.parametrize(("bits", "error"), [(0, ValueError), (5, ValueError), (2.0, TypeError)])
def test_bad_bits(bits, error):
    with pytest.raises(error, match=r"rectax\.swiglu: bits"):
        rx.swiglu(jnp.ones(4), jnp.ones(4), bits=bits)
    with pytest.raises(ValueError, match="approximate"):
        rx.geglu(jnp.ones(4), jnp.ones(4), approximate="exact")


def test_glu_bad_input():
    with pytest.raises(ValueError, match=r"rectax\.glu: the size of axis 0 must be even"):
        rx.glu(jnp.ones((3, 4)), axis=0)
    with pytest.raises(TypeError, match=r"rectax\.glu: x must be a real floating.*int32"):
        rx.glu(jnp.ones(4, jnp.int32))


def test_python_scalars_stay_weak():
    y = rx.swiglu(1.0, 2.0)
    assert y.dtype == jnp.float32
    assert y.weak_type
    assert (jnp.ones(2, jnp.bfloat16) * y).dtype == jnp.bfloat16


# --------------------------------------------------------------------------- memory
ROWS, MODEL, HIDDEN, LAYERS = 512, 128, 512, 4
REMATS = ("none", "remat", "remat-bits")


@functools.cache
def ffn_temp_bytes(unit, remat: str, dtype) -> int:
    """Compiled temp bytes of jit(grad) of 4 residual FFN blocks ``x + unit(x Wg, x Wu) Wd``."""
    return gated_ffn.temp_bytes(unit, remat, dtype, ROWS, MODEL, HIDDEN, LAYERS)


MEMORY_CASES = {
    "swiglu": (rx.swiglu, "swiglu"),
    "swiglu_bits3": (functools.partial(rx.swiglu, bits=3), "swiglu"),
    "geglu": (rx.geglu, "geglu_tanh"),
    "reglu": (rx.reglu, "reglu"),
}


@pytest.mark.parametrize("remat", REMATS)
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16], ids=["f32", "bf16"])
@pytest.mark.parametrize("case", list(MEMORY_CASES))
def test_ffn_stack_memory_never_above_the_plain_expression(case, dtype, remat):
    """XLA:CPU, measured (`python -m benchmarks.gated`): exact units 0.62-1.00 of the plain
    expression, few-bit 0.60-0.76. The few-bit cells under plain jax.checkpoint in float32
    were 1.007 while the rule tagged silu(gate) beside the codes (the codes' bytes above the
    plain expression); GLU is below (test_glu_residual_stack_memory)."""
    fn, plain = MEMORY_CASES[case]
    ours = ffn_temp_bytes(fn, remat, dtype)
    theirs = ffn_temp_bytes(GATED[plain][1], remat, dtype)
    assert ours <= theirs, f"{case}: {ours / theirs:.3f} of the plain expression"


@functools.cache
def glu_temp_bytes(glu, remat: str, dtype) -> int:
    """Compiled temp bytes of jit(grad) of 4 residual blocks ``x + glu(x W_in) W_out``."""
    block = models.remat(lambda x, w: glu(x @ w[0]) @ w[1], remat)

    def loss(ws, x):
        for w in ws:
            x = x + block(x, w)
        return jnp.mean(jnp.square(x.astype(jnp.float32)))

    w = (
        jax.ShapeDtypeStruct((MODEL, 2 * HIDDEN), dtype),
        jax.ShapeDtypeStruct((HIDDEN, MODEL), dtype),
    )
    x = jax.ShapeDtypeStruct((ROWS, MODEL), dtype)
    compiled = jax.jit(jax.grad(loss)).lower([w] * LAYERS, x).compile()
    return compiled.memory_analysis().temp_size_in_bytes


@pytest.mark.parametrize("remat", REMATS)
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16], ids=["f32", "bf16"])
def test_glu_residual_stack_memory(dtype, remat):
    """XLA:CPU: rx.glu 0.765 of jax.nn.glu in float32, 0.980 / 1.000 / 1.000 in bfloat16 (was
    1.111 under remat-bits while the bfloat16 product was tagged: the policy kept it beside the
    recomputed inputs)."""
    with rx.residual_target("cpu"):
        ours = glu_temp_bytes(rx.glu, remat, dtype)
        theirs = glu_temp_bytes(jax.nn.glu, remat, dtype)
    assert ours <= theirs, f"glu: {ours / theirs:.3f} of jax.nn.glu"


# --------------------------------------------------------------------------- GatedMLP
@pytest.mark.parametrize(
    ("unit", "gate_act"),
    [(rx.swiglu, "silu"), (functools.partial(rx.geglu, approximate="none"), "gelu_exact")],
)
def test_gated_mlp_auto_init_uses_the_gates_gain(unit, gate_act):
    """gate and up kernels: Var = 1 / (fan_in E[f(z)²]) of the gate's activation f (He et al.'s
    argument, by quadrature of the float64 reference); down: LeCun's 1 / fan_in."""
    fan_in, hidden = 512, 1024
    block = rxl.GatedMLP(hidden=hidden, unit=unit)
    params = block.init(jax.random.key(0), jnp.ones((1, fan_in)))["params"]
    expected = np.sqrt(he_scale(BY_NAME[gate_act].ref) / fan_in)
    for name in ("gate", "up"):
        np.testing.assert_allclose(np.std(params[name]["kernel"]), expected, rtol=0.01)
    np.testing.assert_allclose(np.std(params["down"]["kernel"]), np.sqrt(1 / hidden), rtol=0.01)
    nnx_block = rxn.GatedMLP(fan_in, hidden, unit=unit, rngs=nnx.Rngs(0))
    np.testing.assert_allclose(np.std(nnx_block.gate.kernel[...]), expected, rtol=0.01)


def test_gated_mlp_bad_unit():
    with pytest.raises(ValueError, match="unknown gated unit 'swish'"):
        rxl.GatedMLP(hidden=4, unit="swish").init(jax.random.key(0), jnp.ones((1, 2)))
    with pytest.raises(ValueError, match="kernel_init='auto'"):
        rxn.GatedMLP(2, 4, unit=lambda g, u: g * u, rngs=nnx.Rngs(0))
    custom = rxn.GatedMLP(
        2, 4, unit=lambda g, u: g * u, kernel_init=jax.nn.initializers.ones, rngs=nnx.Rngs(0)
    )
    np.testing.assert_array_equal(custom(jnp.ones((1, 2))), [[16.0, 16.0]])  # 4 · (2 · 2)
