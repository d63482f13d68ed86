"""The zoo compiled for an H100 and a TPU v5e on this CPU-only machine: rectax <= jax.nn.

XLA:GPU and XLA:TPU assign buffers and fuse differently from XLA:CPU, so rectax's memory claim is
checked where users train: each step is compiled (never run) for a compile-only device
(:mod:`benchmarks.targets`, the ``targets`` extra installs the plugins) and its peak memory
(``memory_analysis().peak_memory_in_bytes``) compared with the same model using jax.nn's
activation. Small sizes; ``python -m benchmarks --target h100`` prints the zoo's full table.
"""

import jax
import jax.numpy as jnp
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
        ("mlp", "bf16", "remat"),
    ],
    "tpu-v5e": [
        ("mnist", "f32", "none"),
        ("resnet", "bf16", "none"),
        ("gpt-relu", "bf16", "remat-bits"),
        ("mlp", "bf16", "none"),
        pytest.param(
            "gpt-swiglu",
            "f32",
            "none",
            marks=pytest.mark.xfail(
                strict=True,
                reason="open: silu's rule keeps its derivative, 1.005-1.03x jax.nn's autodiff "
                "graph on XLA:TPU (docs/memory.md)",
            ),
        ),
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
