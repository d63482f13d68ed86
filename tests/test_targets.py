"""The zoo compiled for an H100 and a TPU v5e on this CPU-only machine: rectax <= jax.nn.

XLA:GPU and XLA:TPU assign buffers and fuse differently from XLA:CPU, so rectax's memory claim is
checked where users train: each step is compiled (never run) for a compile-only device
(:mod:`benchmarks.targets`, the ``targets`` extra installs the plugins) and its peak memory
(``memory_analysis().peak_memory_in_bytes``) compared with the same model using jax.nn's
activation. Small sizes; ``python -m benchmarks --target h100`` prints the zoo's full table.
"""

import _registry as registry
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rectax as rx
from benchmarks import targets

CASES = {
    "h100": [
        ("mnist", "f32", "none"),
        ("mnist", "bf16", "remat-bits"),
        ("resnet", "f32", "none"),
        ("resnet", "bf16", "remat-bits"),
        ("gpt-gelu", "bf16", "remat-bits"),
        ("mlp", "f32", "none"),
        ("mlp", "bf16", "none"),  # 1.002 with uint32 words
        ("mlp", "bf16", "remat"),
        ("mlp", "bf16", "remat-bits"),  # 1.007 with the mask tagged RESIDUAL_NAME
    ],
    "tpu-v5e": [
        ("mnist", "f32", "none"),
        ("resnet", "bf16", "none"),
        ("gpt-relu", "bf16", "remat-bits"),
        ("mlp", "bf16", "none"),
        # 1.005-1.03 before _sigmoid_pair lost its select: XLA:TPU kept its predicate (u8)
        ("gpt-swiglu", "f32", "none"),
        ("gpt-gelu", "f32", "remat"),
    ],
}


def _skip_if_absent(target: str) -> None:
    reason = targets.missing(target)
    if reason:  # the test extra installs the plugins; a bare install may lack them
        pytest.skip(reason)


@pytest.mark.standard_promotion
@pytest.mark.parametrize(
    ("target", "model", "dtype", "remat"),
    [
        pytest.param(t, *case.values, marks=case.marks)
        if isinstance(case, type(pytest.param()))
        else (t, *case)
        for t, cases in CASES.items()
        for case in cases
    ],
)
def test_zoo_peak_not_above_jax_nn(target, model, dtype, remat):
    _skip_if_absent(target)
    row = targets.zoo_row(target, model, dtype, remat, targets.SMALL)
    assert row.rectax.peak <= row.jax_nn.peak, (
        f"{target} {model} {dtype} {remat}: rectax {row.rectax.peak} > jax.nn {row.jax_nn.peak} "
        f"bytes ({row.ratio:.3f}x)"
    )


@pytest.mark.standard_promotion
@pytest.mark.parametrize(
    ("name", "dtype"),
    [
        ("gpt-gelu bits=4", "f32"),  # 1.185 with packed codes
        ("gpt-gelu bits=4", "bf16"),  # 1.402
        ("mlp gelu bits=4", "bf16"),  # 1.284; 1.071 with the step function recomputed from x
    ],
)
def test_few_bit_gelu_on_tpu_not_above_jax_nn(name, dtype):
    """Few-bit codes on XLA:TPU cost more than jax.nn.gelu's input (its matmuls fuse the
    activation into their operands), and so did the step function recomputed from the input;
    ``bits=`` there is the exact activation, which meets jax.nn."""
    _skip_if_absent("tpu-v5e")
    row = targets.reference_row("tpu-v5e", name, dtype, targets.SMALL)
    assert row.rectax.peak <= row.jax_nn.peak, f"{row.ratio:.3f}x"


@pytest.mark.standard_promotion
@pytest.mark.parametrize(
    ("remat", "approximate", "most"),
    [
        ("none", True, 0.91),  # 0.929 with packed 4-bit codes (0.906: a GELU keeping nothing)
        ("remat-bits", True, 1.0),  # 1.093 with packed 4-bit codes
        ("remat-bits", False, 1.0),  # the exact GELU: 1.093 with packed 4-bit codes
    ],
)
def test_h100_bf16_few_bit_gelu_reads_its_codes_off_the_output(remat, approximate, most):
    """On XLA:GPU a 16-bit few-bit GELU keeps its output (which the next matmul keeps anyway)
    and a 1-bit mask, not 4-bit codes: the bfloat16 gpt-gelu step with ``bits=4`` against
    jax.nn.gelu's of the same form (small sizes)."""
    import functools

    from benchmarks import zoo

    _skip_if_absent("h100")
    size = targets.zoo_size("gpt-gelu", targets.SMALL)
    ref = functools.partial(jax.nn.gelu, approximate=approximate)
    few = functools.partial(rx.gelu, approximate=approximate, bits=4)
    peaks = {}
    for name, act in (("jax.nn", ref), ("rectax", few)):
        step = zoo.setup("gpt-gelu", name, remat, "bf16", size, act=act)
        peaks[name] = zoo.memory(step, target="h100").peak
    assert peaks["rectax"] <= most * peaks["jax.nn"], f"{peaks['rectax'] / peaks['jax.nn']:.3f}x"


@pytest.mark.parametrize("target", ["h100", "tpu-v5e"])
def test_compile_only_device_is_the_target(target):
    """The compile really is for the accelerator: its HLO names the target's platform."""
    _skip_if_absent(target)
    dev = targets.device(target)
    assert dev.platform == targets.TARGETS[target].platform.replace("cuda", "gpu")
    x = jax.ShapeDtypeStruct((64, 128), jnp.float32)
    text = targets.compile_for(target, jax.grad(lambda x: rx.relu(x).sum()), x).as_text()
    assert "ENTRY" in text


def test_residual_target_selects_the_rule():
    """On a GPU compile, relu keeps jax.nn's residual (a mask); on CPU, packed uint32 words."""
    x = jnp.linspace(-2.0, 2.0, 256, dtype=jnp.float32).reshape(8, 32)

    def residual_dtypes(platform):
        with rx.residual_target(platform):
            _, vjp = jax.vjp(rx.relu, x)
        return {leaf.dtype for leaf in jax.tree_util.tree_leaves(vjp)}

    assert jnp.dtype(jnp.uint32) in residual_dtypes("cpu")
    assert jnp.dtype(jnp.uint32) not in residual_dtypes("gpu")
    for platform in ("cpu", "gpu", "tpu"):
        with rx.residual_target(platform):
            g = jax.grad(lambda x: rx.relu(x).sum())(x)
        assert jnp.array_equal(g, jax.grad(lambda x: jax.nn.relu(x).sum())(x))
    with pytest.raises(ValueError, match=r"rectax\.residual_target: platform"):  # noqa: SIM117
        with rx.residual_target("cuda"):
            pass


def test_gpu_masks_are_bytes_kept_by_rectax_alone():
    """On a GPU compile, a 16-bit rank-2 relu keeps its mask in uint8 words, which a
    ``save_only_these_names(RESIDUAL_NAME)`` policy does not save (the block is recomputed, as
    with jax.nn.relu); on CPU, uint32 words that the policy saves."""
    x = jnp.linspace(-2.0, 2.0, 8 * 64, dtype=jnp.bfloat16).reshape(8, 64)
    policy = jax.checkpoint_policies.save_only_these_names(rx.RESIDUAL_NAME)

    def block():  # a new function per target: JAX caches a function's trace, not the target
        return jax.checkpoint(lambda x: rx.relu(x) * 2, policy=policy)

    def residuals(platform, fn):
        with rx.residual_target(platform):
            _, vjp = jax.vjp(fn, x)
        return [(leaf.dtype, leaf.shape) for leaf in jax.tree_util.tree_leaves(vjp)]

    assert residuals("gpu", rx.relu) == [(jnp.dtype(jnp.uint8), (8, 8))]
    assert residuals("cpu", rx.relu) == [(jnp.dtype(jnp.uint32), (8, 2))]
    assert residuals("cpu", block()) == [(jnp.dtype(jnp.uint32), (8, 2))]
    assert all(dtype == x.dtype for dtype, _ in residuals("gpu", block()))
    for platform in ("cpu", "gpu"):
        with rx.residual_target(platform):
            g = jax.grad(lambda x: block()(x).astype(jnp.float32).sum())(x)
        assert jnp.array_equal(g, jnp.where(x > 0, 2.0, 0.0).astype(x.dtype))


SLOPES = jnp.array([0.1, 0.2, 0.3, 0.4], jnp.float32)
ACTIVATIONS = {
    "relu": rx.relu,
    "leaky_relu": lambda x: rx.leaky_relu(x, 0.2),
    "prelu": lambda x: rx.prelu(x, SLOPES.astype(x.dtype)),
    "relu6": rx.relu6,
    "hard_tanh": rx.hard_tanh,
    "necro_relu": rx.necro_relu,
    "gelu": rx.gelu,
    "gelu_exact": lambda x: rx.gelu(x, approximate=False),
    "silu": rx.silu,
    "elu": rx.elu,
    "softplus": rx.softplus,
    "squared_relu": rx.squared_relu,
}


@pytest.mark.parametrize("name", ACTIVATIONS)
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_every_target_differentiates_the_same(name, dtype):
    """The residual choice changes what is kept, never the derivative: grad and jvp agree
    bitwise between the lean (CPU) rule and jax.nn's form (GPU, TPU), also at the kinks. A
    rank-2 input covers every rule: on GPU, float32 takes jax.nn's form and bfloat16 the bits."""
    fn = ACTIVATIONS[name]
    x = jnp.linspace(-7.0, 7.0, 24, dtype=jnp.float32).reshape(6, 4)
    x = x.at[0, 0].set(0.0).astype(dtype)  # a kink
    t = jnp.ones_like(x)
    out = {}
    for platform in ("cpu", "gpu", "tpu"):
        with rx.residual_target(platform):
            grad = jax.grad(lambda x: jnp.sum(fn(x).astype(jnp.float32) * 1.5))(x)
            _, tangent = jax.jvp(fn, (x,), (t,))
        out[platform] = (grad, tangent)
    for platform, (grad, tangent) in out.items():
        assert grad.dtype == dtype
        assert jnp.array_equal(grad, out["cpu"][0]), (name, platform)
        assert jnp.array_equal(tangent, out["cpu"][1]), (name, platform)


FEW_BIT = {
    "gelu_bits4": (lambda x: rx.gelu(x, bits=4), rx.gelu, "gelu_tanh"),
    "silu_bits4": (lambda x: rx.silu(x, bits=4), rx.silu, "silu"),
    "silu_bits1": (lambda x: rx.silu(x, bits=1), rx.silu, "silu"),
    "gelu_exact_bits3": (
        lambda x: rx.gelu(x, approximate=False, bits=3),
        lambda x: rx.gelu(x, approximate=False),
        "gelu_exact",
    ),
    "few_bit_mish_bits3": (lambda x: rx.few_bit(jax.nn.mish, bits=3)(x), jax.nn.mish, "mish"),
}


@pytest.mark.parametrize("name", FEW_BIT)
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_few_bit_is_exact_on_tpu_and_a_step_function_elsewhere(name, dtype):
    """``bits=`` (and :func:`rectax.few_bit`) on XLA:TPU is the exact activation (codes cannot
    lower the peak there): its gradient is bitwise the one without ``bits`` (or of the function
    given) and within the dtype's tolerance of the float64 derivative. On CPU and GPU it is the
    few-bit step function, bitwise the same on both (packed codes), and far from the exact
    derivative somewhere on the grid."""
    few, exact, oracle = FEW_BIT[name]
    act = registry.BY_NAME[oracle]
    x = jnp.linspace(-7.0, 7.0, 96, dtype=jnp.float32).reshape(8, 12)
    x = x.at[0, 0].set(0.0).astype(dtype)
    t = jnp.ones_like(x)

    def derivatives(fn):
        grad = jax.grad(lambda x: jnp.sum(fn(x).astype(jnp.float32)))(x)
        _, tangent = jax.jvp(fn, (x,), (t,))
        return grad, tangent

    out = {}
    for platform in ("cpu", "gpu", "tpu"):
        with rx.residual_target(platform):
            out[platform] = (derivatives(few), derivatives(exact))
    want = act.dref(np.asarray(x, np.float64))
    rtol = registry.RTOL[jnp.dtype(dtype)]
    atol = registry.derivative_atol(act, dtype)
    (tpu_grad, tpu_tangent), (exact_grad, exact_tangent) = out["tpu"]
    assert tpu_grad.dtype == dtype
    assert jnp.array_equal(tpu_grad, exact_grad)
    assert jnp.array_equal(tpu_tangent, exact_tangent)
    np.testing.assert_allclose(np.asarray(tpu_grad, np.float64), want, rtol=rtol, atol=atol)
    (cpu_grad, cpu_tangent), _ = out["cpu"]
    (gpu_grad, gpu_tangent), _ = out["gpu"]
    assert jnp.array_equal(gpu_grad, cpu_grad)
    assert jnp.array_equal(gpu_tangent, cpu_tangent)
    assert jnp.array_equal(cpu_grad, cpu_tangent)
    # a step function: few distinct values, at least 0.01 from the derivative somewhere
    assert len(np.unique(np.asarray(cpu_grad, np.float32))) <= 2 ** int(name[-1])
    assert np.max(np.abs(np.asarray(cpu_grad, np.float64) - want)) > 1e-2


# --------------------------------------------------------------------------- gated units
GATED_UNITS = {
    "swiglu": (rx.swiglu, lambda g, u: jax.nn.silu(g) * u),
    "swiglu_bits4": (lambda g, u: rx.swiglu(g, u, bits=4), lambda g, u: jax.nn.silu(g) * u),
    "geglu": (rx.geglu, lambda g, u: jax.nn.gelu(g) * u),
    "geglu_bits4": (lambda g, u: rx.geglu(g, u, bits=4), lambda g, u: jax.nn.gelu(g) * u),
    "reglu": (rx.reglu, lambda g, u: jax.nn.relu(g) * u),
    "squared_relu": (
        lambda g, u: rx.squared_relu(u),
        lambda g, u: jnp.square(jax.nn.relu(u)),
    ),
}
GATED_SIZE = (256, 128, 512, 2)  # rows, model, hidden, layers

GATED_CASES = [
    # (target, unit, dtype, remat): before the per-target choice, the checkpointed rule was
    # above the plain expression in each (python -m benchmarks.gated --target ... --rows 256
    # --model 128 --hidden 512 --layers 2; docs/memory.md)
    ("h100", "swiglu", "float32", "remat-bits"),  # 1.018
    ("h100", "geglu", "bfloat16", "remat-bits"),  # 1.043 with either rule; jax.nn's graph now
    ("h100", "reglu", "float32", "remat"),  # the rule: 0.947 here, 1.103 at 2048 rows
    ("h100", "swiglu_bits4", "bfloat16", "remat"),  # the rule: 0.959 here, 1.129 at 2048 rows
    ("h100", "geglu_bits4", "bfloat16", "remat-bits"),  # 1.043 with the rule
    ("tpu-v5e", "swiglu", "float32", "remat"),  # 1.042
    ("tpu-v5e", "swiglu", "bfloat16", "remat"),  # 1.102: the rule's float32 derivative
    ("tpu-v5e", "geglu", "float32", "remat"),  # 1.021: the rule's exp-form gate
    ("tpu-v5e", "reglu", "bfloat16", "none"),  # 1.071
    ("tpu-v5e", "reglu", "float32", "remat-bits"),  # 1.125
    ("tpu-v5e", "squared_relu", "float32", "none"),  # 1.000: the current rule, not output-only
    ("tpu-v5e", "swiglu_bits4", "float32", "remat"),  # 1.083 with the codes' select tree
    ("tpu-v5e", "geglu_bits4", "float32", "remat"),  # 1.021 with rectax's gelu forward
    ("tpu-v5e", "swiglu_bits4", "bfloat16", "remat"),  # 1.102 with a step function
    ("tpu-v5e", "geglu_bits4", "bfloat16", "remat-bits"),  # 1.102 with a step function
]


@pytest.mark.standard_promotion
@pytest.mark.parametrize(("target", "unit", "dtype", "remat"), GATED_CASES)
def test_gated_ffn_peak_not_above_the_plain_expression(target, unit, dtype, remat):
    """A 2-block gated FFN stack's compiled peak, rectax's unit against the plain expression."""
    from benchmarks import gated

    _skip_if_absent(target)
    ours, plain = GATED_UNITS[unit]
    dt = jnp.dtype(dtype)
    mine = gated.peak_bytes(target, ours, remat, dt, *GATED_SIZE)
    theirs = gated.peak_bytes(target, plain, remat, dt, *GATED_SIZE)
    assert mine <= theirs, f"{target} {unit} {dtype} {remat}: {mine / theirs:.3f}x"


# Where SwiGLU and GeGLU run jax.nn's expression itself (its graph is the floor there): XLA:TPU
# and XLA:GPU, few-bit gates included (their exact derivative)
# (rectax._core._gradients.lean_residuals).
JAX_NN_GRAPH = {
    ("swiglu", "tpu"),
    ("swiglu_bits4", "tpu"),
    ("geglu", "tpu"),
    ("geglu", "gpu"),
    ("swiglu", "gpu"),
    ("swiglu_bits4", "gpu"),
}


def _gated_grads(fn, gate, up):
    return jax.jit(  # one compiled program each, as in training
        jax.grad(lambda g, u: jnp.sum(fn(g, u).astype(jnp.float32) * 1.5), (0, 1))
    )(gate, up)


@pytest.mark.parametrize("unit", ["swiglu", "swiglu_bits4", "geglu", "reglu"])
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_gated_units_differentiate_the_same_on_every_target(unit, dtype):
    """The checkpointed rule (CPU) and the plain graph (GPU) give bitwise the same gradients
    in both inputs, packed few-bit codes included, each compiled whole (eagerly, the plain
    graph runs op by op: XLA:CPU's fused exp then differs in the last bit). Where SwiGLU and
    GeGLU run jax.nn's expression itself (``JAX_NN_GRAPH``), their gradients are bitwise
    jax.nn's and within the dtype's tolerance of the rule's (jax.nn computes in the input's
    dtype, rectax's rule in float32); a few-bit gate there is exact: within that tolerance of
    the exact unit's rule, not of its own step function."""
    fn, plain = GATED_UNITS[unit]
    gate = jnp.linspace(-5.0, 5.0, 64, dtype=jnp.float32).reshape(4, 16).at[0, 0].set(0.0)
    up = jnp.cos(gate)
    gate, up = gate.astype(dtype), up.astype(dtype)
    grads = {}
    for platform in ("cpu", "gpu", "tpu"):
        with rx.residual_target(platform):
            grads[platform] = _gated_grads(fn, gate, up)
    jax_nn = _gated_grads(plain, gate, up)
    # jax.nn's tanh GELU cancels in 1 + tanh(u) for negative gates, which the rule's
    # (float32-widened) derivative avoids: absolute errors of ~10 float32 eps at gate = -5, and
    # in bfloat16 1.5% of the largest gradient (0.051 for 0.020 at gate = -2.9)
    tol = 1e-5 if dtype == jnp.float32 else 2e-2
    exact_rule = grads["cpu"]
    if unit.endswith("_bits4"):
        with rx.residual_target("cpu"):
            exact_rule = _gated_grads(GATED_UNITS[unit.removesuffix("_bits4")][0], gate, up)
    for platform, (d_gate, d_up) in grads.items():
        assert d_gate.dtype == dtype
        if {(unit, platform), (unit, platform, jnp.dtype(dtype).name)} & JAX_NN_GRAPH:
            assert jnp.array_equal(d_gate, jax_nn[0]), (unit, platform)
            assert jnp.array_equal(d_up, jax_nn[1]), (unit, platform)
            for ours, rule in zip((d_gate, d_up), exact_rule, strict=True):
                rule = np.asarray(rule, np.float32)
                scale = float(np.max(np.abs(rule)))
                np.testing.assert_allclose(
                    np.asarray(ours, np.float32), rule, rtol=tol, atol=tol * scale
                )
        else:
            assert jnp.array_equal(d_gate, grads["cpu"][0]), (unit, platform)
            assert jnp.array_equal(d_up, grads["cpu"][1]), (unit, platform)
