"""Compiled memory of jit(grad) training steps: an 8-layer MLP and the benchmark zoo's models.

Only compiled numbers tell the truth, so this reads XLA's own ``memory_analysis()`` of the
compiled step (``jax.jit(jax.grad(loss)).lower(...).compile()``); nothing is executed.
Piecewise-constant derivatives keep 1 bit per element instead of an array of the input's dtype;
the others, recomputed from the input, must not cost more than jax.nn. The zoo tests hold the
models people train (flax's MNIST CNN, a conv-BN-relu ResNet stack, a transformer decoder stack)
to rectax <= jax.nn, at sizes that compile in seconds (``python -m benchmarks --modes zoo``
measures the full sizes).
"""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rectax as rx
from benchmarks import memory, models, zoo
from rectax._core import _catalog

BATCH, WIDTH, LAYERS = 2048, 1024, 8
KEY = jax.random.key(0)
SHAPES = models.mlp_shapes(models.MlpSpec(LAYERS, WIDTH, BATCH), jnp.float32, bias=False)


def temp_bytes(act) -> int:
    """An 8-layer MLP's step, ``act`` after every layer (no biases)."""
    return memory.temp_bytes(jax.grad(models.mlp_loss(act)), *SHAPES)


@functools.cache
def baseline(fn=jax.nn.relu) -> int:
    return temp_bytes(fn)


PIECEWISE = {
    "relu": rx.relu,
    "leaky_relu": rx.leaky_relu,
    "necro_relu": rx.necro_relu,
    "relu6": rx.relu6,
    "hard_tanh": rx.hard_tanh,
    "prelu": lambda x: rx.prelu(x, 0.25),
    "rrelu_eval": rx.rrelu,
    "hard_sigmoid": rx.hard_sigmoid,
}


@pytest.mark.parametrize("name", PIECEWISE)
def test_piecewise_activations_keep_one_bit(name):
    """≤ 0.6 × jax.nn.relu (measured 0.5625: 1 f32 array per layer + 1 bit, instead of 2)."""
    ratio = temp_bytes(PIECEWISE[name]) / baseline()
    assert ratio <= 0.6, f"{name}: {ratio:.4f} of jax.nn.relu's temp memory"


def _from_input_cases() -> dict:
    """The catalog's activations whose derivative is recomputed from the input, and their
    variants, each with its jax.nn namesake (jax.nn.relu where jax.nn has none, e.g. for
    squared_relu)."""
    cases = {}
    for info in _catalog.all_activations():
        if info.derivative == "from_input":
            theirs = info.jax_nn[0] if info.jax_nn else jax.nn.relu
            cases[info.name] = (info.fn, theirs)
            for variant, fixed in info.variants.items():
                cases[variant] = (
                    functools.partial(info.fn, **fixed),
                    functools.partial(theirs, **fixed),
                )
    return cases


FROM_INPUT = _from_input_cases()


@pytest.mark.parametrize("name", FROM_INPUT)
def test_from_input_activations_cost_no_more_than_jax_nn(name):
    fn, counterpart = FROM_INPUT[name]
    ours, theirs = temp_bytes(fn), baseline(counterpart)
    assert ours <= theirs, f"{name}: {ours} bytes vs jax.nn's {theirs}"


@pytest.mark.parametrize("name", FROM_INPUT)
def test_from_input_activations_keep_one_array(name):
    """Saving only the input (derivative recomputed in the backward fusion): jax.nn.relu's cost."""
    ratio = temp_bytes(FROM_INPUT[name][0]) / baseline()
    assert ratio <= 1.0, f"{name}: {ratio:.4f} of jax.nn.relu's temp memory"


def test_keyed_rrelu_costs_less_than_autodiff_of_sampled_slopes():
    """Keyed rrelu keeps bits + its sampled slopes; naive autodiff keeps more (192 vs 248 MiB)."""

    def per_layer_keys(act):
        def loss(weights, x, key):
            h = x
            for i, w in enumerate(weights):
                h = act(h @ w, jax.random.fold_in(key, i))
            return jnp.mean(jnp.square(h))

        return memory.temp_bytes(jax.grad(loss), *SHAPES, KEY)

    def naive(x, key):
        slope = jax.random.uniform(key, x.shape, x.dtype, 1 / 8, 1 / 3)
        return jnp.where(x >= 0, x, slope * x)

    ours = per_layer_keys(lambda x, key: rx.rrelu(x, key))
    assert ours < per_layer_keys(naive)


def test_baseline_is_two_float32_arrays_per_layer():
    """Guards the measurement itself: jax.nn.relu keeps about 2 f32 activations per layer."""
    per_layer = baseline() / LAYERS / (BATCH * WIDTH * 4)
    assert 1.5 <= per_layer <= 2.5, per_layer


@pytest.mark.parametrize("name", PIECEWISE)
@pytest.mark.parametrize("shape", [(4096, 4), (4096, 20), (64, 49, 12), (1000,)])
def test_short_last_axis_still_packs_one_bit(name, shape):
    """A short last axis must not cost a 32-bit word per row (a last axis of 4 would take 8 bits
    each). Codes are packed along the last axis only, one row per index of the other axes, never
    across them (a batch-, sequence- or spatially-sharded array would then move codes between
    devices, tests/test_sharding.py): at most one partly filled word per row, and a row of at
    most 8 codes takes one byte.

    The contract changed when rows stopped being merged: (4096, 4) at 1 bit keeps 4096 bytes
    (0.25 bytes per element; 0.125 when the rows were flattened), and an 8-layer (4096, 4) relu
    MLP's compiled step needs 618496 bytes of temp instead of 604160 (jax.nn.relu: 1048576;
    ``jax.jit(jax.grad(loss)).lower(...).compile().memory_analysis()`` on XLA:CPU). Since the
    trailing axes stopped being merged too, (64, 49, 12) keeps a 16-bit word per 12 codes.
    """
    res = memory.residual_bytes_per_element(PIECEWISE[name], shape, jnp.float32)
    elements = math.prod(shape)
    rows = elements // shape[-1]
    row = shape[-1]
    word = 1 if row <= 8 else 2 if row <= 16 else 4
    slack = word * rows + SCALARS  # a partly filled word per row, and a scalar slope
    assert res <= (elements / 8 + slack) / elements, f"{name} {shape}: {res} bytes per element"


OUTPUT_MASKED = ("relu", "necro_relu", "relu6")
SCALARS = 4
"""Bytes of the scalar hyperparameter (a slope) some activations keep beside their mask."""


@pytest.mark.parametrize("name", PIECEWISE)
def test_feature_maps_keep_the_output_or_one_bit(name):
    """On (N, H, W, C) inputs relu, necro_relu and relu6 keep their output (which the next layer
    keeps anyway) and recompute the mask from it; the others keep 1 bit per element."""
    shape = (8, 6, 6, 64)
    fn = PIECEWISE[name]
    res = memory.residual_bytes_per_element(fn, shape, jnp.float32) - SCALARS / math.prod(shape)
    if name in OUTPUT_MASKED:
        assert 4.0 - SCALARS / math.prod(shape) <= res <= 4.0, res
        x = jax.random.normal(KEY, shape)
        _, vjp = jax.vjp(fn, x)
        leaves = jax.tree_util.tree_leaves(vjp)
        assert any(leaf.shape == shape and bool(jnp.all(leaf == fn(x))) for leaf in leaves)
    else:
        assert res <= 1 / 8, res


ZOO_SIZES = {
    "mnist": {"batch": 32},
    "resnet": {"batch": 8, "image": 16, "widths": (16, 32), "blocks": 1},
    "gpt-gelu": {"batch": 4, "seq": 32, "d": 64, "layers": 2, "ffn": "mlp"},
    "gpt-relu": {"batch": 4, "seq": 32, "d": 64, "layers": 2, "ffn": "mlp"},
}
ZOO_LIMITS = {
    # (model, remat): the largest rectax / jax.nn temp-memory ratio allowed [measured at these
    # sizes; at the zoo's sizes in brackets after the semicolon]
    ("mnist", "none"): 0.9,  # [0.843; 0.718]
    ("mnist", "remat"): 1.0,  # [1.000; 1.000]
    ("mnist", "remat-bits"): 1.0,  # [0.962; 0.955]
    ("resnet", "none"): 1.0,  # [0.966; 0.966]
    ("resnet", "remat-bits"): 0.85,  # [0.788; 0.637]
    ("gpt-gelu", "none"): 0.9,  # [0.874; 0.894]
    ("gpt-gelu", "remat"): 0.9,  # [0.881; 0.894]
    ("gpt-relu", "none"): 0.9,  # [0.859; 0.890]
}


@functools.cache
def zoo_temp_bytes(name: str, library: str, remat: str) -> int:
    return zoo.memory(zoo.setup(name, library, remat, "f32", ZOO_SIZES[name])).temp


@pytest.mark.standard_promotion  # flax's avg_pool/BatchNorm promote implicitly
@pytest.mark.parametrize(("name", "remat"), ZOO_LIMITS)
def test_zoo_models_cost_no_more_than_jax_nn(name, remat):
    ratio = zoo_temp_bytes(name, "rectax", remat) / zoo_temp_bytes(name, "jax.nn", remat)
    limit = ZOO_LIMITS[name, remat]
    assert ratio <= limit, f"{name} under {remat}: {ratio:.4f} of jax.nn's temp memory"


@pytest.mark.parametrize("name", OUTPUT_MASKED)
def test_feature_map_derivatives_match_the_one_bit_path(name):
    """The output-derived mask gives the derivatives the 1-bit mask gives, kinks and NaN
    included: reverse mode (grad), forward mode (jvp) and second order, on (N, H, W, C)."""
    fn = PIECEWISE[name]
    special = jnp.array([0.0, -0.0, 6.0, -1e-30, 1e-30, 5.999, 6.001, jnp.nan], jnp.float32)
    x = jnp.concatenate([special, 4 * jax.random.normal(KEY, (64 * 9 - special.size,))])
    x4 = x.reshape(4, 3, 3, 16)  # rank 4: keeps the output
    x2 = x.reshape(36, 16)  # rank 2: keeps the bits

    def grad(x):
        return jax.grad(lambda x: jnp.sum(fn(x)))(x)

    assert (grad(x4).ravel() == grad(x2).ravel()).all()  # no NaN either (NaN != NaN)
    t = jnp.ones_like(x)
    _, jvp4 = jax.jvp(fn, (x4,), (t.reshape(x4.shape),))
    _, jvp2 = jax.jvp(fn, (x2,), (t.reshape(x2.shape),))
    assert (jvp4.ravel() == jvp2.ravel()).all()
    hvp4 = jax.jvp(grad, (x4,), (t.reshape(x4.shape),))[1]
    assert (hvp4 == 0).all()  # piecewise linear: the second derivative is 0
    # The derivative itself, against the definition: 1 where relu6 / relu is increasing.
    expected = {"relu": x2 > 0, "necro_relu": x2 > 0, "relu6": (x2 > 0) & (x2 < 6)}[name]
    slope = 0.1 if name == "necro_relu" else 0.0
    assert (grad(x2) == jnp.where(expected, 1.0, slope)).all()


def test_squared_relu_from_output_keeps_only_the_output():
    """The output-only rule (f' = 2 sqrt(y)): derivative 2 max(x, 0) where x² is normal, only y
    kept, and never more temp memory than the input-keeping rule (XLA:CPU; equal in f32)."""
    from rectax._functions import _squared_relu_from_output as from_output

    x64 = np.linspace(-5.0, 5.0, 64).reshape(2, 32)
    for dtype, rtol in ((jnp.float32, 1e-6), (jnp.bfloat16, 1e-2)):
        x = jnp.asarray(x64, dtype)
        xr = np.asarray(x, np.float64)
        np.testing.assert_array_equal(from_output(x), rx.squared_relu(x))
        g = jax.grad(lambda v: jnp.sum(from_output(v).astype(jnp.float32)))(x)
        np.testing.assert_allclose(np.asarray(g, np.float64), 2 * np.maximum(xr, 0), rtol=rtol)
    x = jnp.asarray(x64, jnp.float32)
    _, vjp = jax.vjp(from_output, x)
    residuals = [np.asarray(r) for r in jax.tree.leaves(vjp)]
    assert len(residuals) == 1
    np.testing.assert_array_equal(residuals[0], rx.squared_relu(x))
    assert temp_bytes(from_output) <= temp_bytes(rx.squared_relu)
