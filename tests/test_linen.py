"""rectax.linen: PReLU channels and dtypes, RReLU rng, stats, builders, decay mask, checkpoints."""

import functools
import subprocess
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from _registry import BY_NAME, RRELU_EVAL_SLOPE, RRELU_LOWER, RRELU_UPPER, he_scale
from flax import serialization

import rectax as rx
from rectax import diagnostics, optim
from rectax import linen as rxl

X = jnp.array([[-2.0, -1.0, 0.5], [3.0, -4.0, -0.5]])


def test_import_rectax_stays_light():
    code = (
        "import sys, rectax, rectax.diagnostics; "
        "print('flax' in sys.modules, 'optax' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_prelu_default_is_one_shared_slope_of_a_quarter():
    layer = rxl.PReLU()
    variables = layer.init(jax.random.key(0), X)
    slope = variables["params"]["negative_slope"]
    assert slope.shape == ()
    assert slope.dtype == jnp.float32
    assert float(slope) == 0.25
    np.testing.assert_array_equal(layer.apply(variables, X), rx.prelu(X, 0.25))


@pytest.mark.parametrize(("shape", "axis"), [((2, 3), -1), ((2, 4, 4, 3), -1), ((2, 3, 4, 4), 1)])
def test_prelu_per_channel_shape_and_values(shape, axis):
    x = jax.random.normal(jax.random.key(1), shape)
    layer = rxl.PReLU(num_parameters=3, axis=axis)
    variables = layer.init(jax.random.key(0), x)
    assert variables["params"]["negative_slope"].shape == (3,)
    slopes = jnp.array([0.1, 0.2, 0.3])
    y = layer.apply({"params": {"negative_slope": slopes}}, x)
    bshape = [1] * len(shape)
    bshape[axis] = 3
    np.testing.assert_allclose(y, jnp.where(x >= 0, x, slopes.reshape(bshape) * x), rtol=1e-6)


def test_prelu_wrong_channel_count_raises():
    with pytest.raises(ValueError, match="num_parameters=4"):
        rxl.PReLU(num_parameters=4).init(jax.random.key(0), X)
    with pytest.raises(ValueError, match="num_parameters"):
        rxl.PReLU(num_parameters=0).init(jax.random.key(0), X)


def test_prelu_gradient_reaches_the_slopes():
    layer = rxl.PReLU(num_parameters=3)
    variables = layer.init(jax.random.key(0), X)
    grads = jax.grad(lambda v: layer.apply(v, X).sum())(variables)
    np.testing.assert_allclose(grads["params"]["negative_slope"], jnp.minimum(X, 0).sum(0))


def test_prelu_bf16_compute_with_f32_params():
    x = X.astype(jnp.bfloat16)
    layer = rxl.PReLU(num_parameters=3)
    variables = layer.init(jax.random.key(0), x)
    assert variables["params"]["negative_slope"].dtype == jnp.float32
    y = layer.apply(variables, x)
    assert y.dtype == jnp.bfloat16
    g = jax.grad(lambda v: layer.apply(v, x).astype(jnp.float32).sum())(variables)
    assert g["params"]["negative_slope"].dtype == jnp.float32
    # dtype= sets the compute dtype whatever the input's.
    y = rxl.PReLU(dtype=jnp.bfloat16).apply({"params": {"negative_slope": jnp.float32(0.5)}}, X)
    assert y.dtype == jnp.bfloat16


def test_prelu_param_dtype():
    variables = rxl.PReLU(param_dtype=jnp.bfloat16).init(jax.random.key(0), X)
    assert variables["params"]["negative_slope"].dtype == jnp.bfloat16


def test_rrelu_eval_uses_mean_slope_and_needs_deterministic():
    layer = rxl.RReLU()
    np.testing.assert_allclose(
        layer.apply({}, X, deterministic=True), rx.leaky_relu(X, (1 / 8 + 1 / 3) / 2), rtol=1e-6
    )
    np.testing.assert_allclose(rxl.RReLU(deterministic=True).apply({}, X), rx.rrelu(X), rtol=1e-6)
    with pytest.raises(ValueError, match="deterministic"):
        layer.apply({}, X)


def test_rrelu_train_is_random_in_bounds_and_reproducible():
    layer = rxl.RReLU(deterministic=False)
    x = -jnp.ones((64,))
    y1 = layer.apply({}, x, rngs={"rrelu": jax.random.key(0)})
    y2 = layer.apply({}, x, rngs={"rrelu": jax.random.key(0)})
    y3 = layer.apply({}, x, rngs={"rrelu": jax.random.key(1)})
    np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(y1, y3)
    assert bool(jnp.all((-y1 >= 1 / 8) & (-y1 <= 1 / 3)))
    assert len(np.unique(np.asarray(y1))) > 32


def test_rrelu_explicit_rng_and_custom_collection():
    x = -jnp.ones((16,))
    key = jax.random.key(3)
    y = rxl.RReLU().apply({}, x, deterministic=False, rng=key)
    np.testing.assert_array_equal(y, rx.rrelu(x, key))

    # A custom collection: the slopes are rrelu's for the key flax's make_rng draws from that
    # collection (a probe module at the same path is the oracle), not from 'rrelu' when present.
    class Probe(nn.Module):
        @nn.compact
        def __call__(self):
            return self.make_rng("noise")

    rngs = {"noise": key, "rrelu": jax.random.key(4)}
    y = rxl.RReLU(rng_collection="noise").apply({}, x, deterministic=False, rngs=rngs)
    np.testing.assert_array_equal(y, rx.rrelu(x, Probe().apply({}, rngs={"noise": key})))
    assert bool(jnp.all((-y >= RRELU_LOWER) & (-y <= RRELU_UPPER)))
    assert len(np.unique(np.asarray(y))) > 8
    with pytest.raises(ValueError, match="lower"):
        rxl.RReLU(lower=0.5, upper=0.1).apply({}, x, deterministic=True)


def test_necro_relu_and_activation_wrapper_match_functional():
    x = X.ravel()
    g = jax.grad(lambda x: rxl.NecroReLU(0.2).apply({}, x).sum())(x)
    np.testing.assert_allclose(g, jax.grad(lambda x: rx.necro_relu(x, 0.2).sum())(x))
    act = rxl.Activation(rx.leaky_relu, negative_slope=0.3)
    np.testing.assert_array_equal(act.apply({}, X), rx.leaky_relu(X, 0.3))
    np.testing.assert_array_equal(rxl.Activation("gelu").apply({}, X), rx.gelu(X))
    assert act.clone().params == {"negative_slope": 0.3}
    act = rxl.Activation(rx.elu, {"alpha": 0.5}, alpha=2.0)  # keywords override the mapping
    np.testing.assert_array_equal(act.apply({}, X), rx.elu(X, 2.0))
    with pytest.raises(ValueError, match="unknown activation"):
        rxl.Activation("not_an_activation")


def test_record_stats_off_by_default_and_sows_unit_stats_when_on():
    _, state = rxl.PReLU().apply({"params": {"negative_slope": 0.25}}, X, mutable=["intermediates"])
    assert state == {}
    layer = rxl.NecroReLU(record_stats=True)
    _y, state = layer.apply({}, X, mutable=["intermediates"])
    stats = state["intermediates"]["unit_stats"]
    assert isinstance(stats, diagnostics.UnitStats)
    np.testing.assert_array_equal(stats.fires, [1, 0, 1])
    assert int(stats.seen) == 2
    assert int(stats.zeros) == 4


def test_record_stats_merges_repeated_calls():
    class Twice(nn.Module):
        @nn.compact
        def __call__(self, x):
            act = rxl.Activation(rx.relu, record_stats=True)
            return act(act(x) - 1.0)

    _, state = Twice().apply({}, X, mutable=["intermediates"])
    assert int(state["intermediates"]["Activation_0"]["unit_stats"].seen) == 4


def test_record_stats_inside_jit_no_cost_when_off():
    model = rxl.MLP(features=(8, 3), kernel_init=jax.nn.initializers.he_normal())
    variables = model.init(jax.random.key(0), X)
    off = jax.jit(lambda v, x: model.apply(v, x)).lower(variables, X).as_text()
    on_model = model.clone(record_stats=True)
    on = (
        jax.jit(lambda v, x: on_model.apply(v, x, mutable=["intermediates"]))
        .lower(variables, X)
        .as_text()
    )
    assert "reduce" not in off
    assert "reduce" in on


def _leaky_ref(a):
    return lambda x: np.where(x >= 0, x, a * x)


def _reference_mlp(features, scale):
    """flax's own Dense layers, named as rxl.MLP names them, with jax's initializer."""
    kernel_init = jax.nn.initializers.variance_scaling(scale, "fan_in", "truncated_normal")

    class Reference(nn.Module):
        @nn.compact
        def __call__(self, x):
            for i, width in enumerate(features):
                x = nn.Dense(width, kernel_init=kernel_init, name=f"Dense_{i}")(x)
            return x

    return Reference()


RELU_REF = BY_NAME["relu"].ref
GELU_TANH_REF = BY_NAME["gelu_tanh"].ref


@pytest.mark.parametrize(
    ("activation", "scale", "ref"),
    [
        ("relu", he_scale(RELU_REF), RELU_REF),
        (rx.necro_relu, he_scale(RELU_REF), RELU_REF),  # ReLU forward: He's forward scale
        (jax.nn.gelu, he_scale(GELU_TANH_REF), GELU_TANH_REF),
        (rxl.PReLU, 2 / (1 + 0.25**2), _leaky_ref(0.25)),
        (
            functools.partial(rxl.PReLU, negative_slope_init=0.1),
            2 / (1 + 0.1**2),
            _leaky_ref(0.1),
        ),
        (rxl.RReLU, 2 / (1 + RRELU_EVAL_SLOPE**2), _leaky_ref(RRELU_EVAL_SLOPE)),
        (rxl.NecroReLU, he_scale(RELU_REF), RELU_REF),
        (
            functools.partial(rxl.Activation, rx.leaky_relu, negative_slope=0.2),
            2 / (1 + 0.2**2),
            _leaky_ref(0.2),
        ),
    ],
    ids=["relu", "necro_relu", "jax_gelu", "PReLU", "PReLU_0.1", "RReLU", "NecroReLU", "leaky_0.2"],
)
def test_mlp_auto_init_with_any_activation(activation, scale, ref):
    """kernel_init='auto' is jax's variance_scaling(scale, 'fan_in', 'truncated_normal') with the
    He scale of the activation, 1/E[f(z)²] by quadrature of a float64 reference (2/(1 + a²) for a
    slope a): the same values for flax's keys, so LeCun's 1 or swapped fans fail. The evaluation
    forward pass is the float64 reference network."""
    x = jax.random.normal(jax.random.key(1), (2, 64))
    model = rxl.MLP(features=(32, 32, 4), activation=activation)
    params = model.init(jax.random.key(0), x, deterministic=True)["params"]
    expected = _reference_mlp((32, 32, 4), scale).init(jax.random.key(0), x)["params"]
    for i in range(3):
        np.testing.assert_allclose(
            params[f"Dense_{i}"]["kernel"], expected[f"Dense_{i}"]["kernel"], rtol=1e-6, atol=1e-7
        )
    h = np.asarray(x, np.float64)
    for i in range(3):
        layer = params[f"Dense_{i}"]
        h = h @ np.asarray(layer["kernel"], np.float64) + np.asarray(layer["bias"], np.float64)
        h = ref(h) if i < 2 else h
    y = model.apply({"params": params}, x, deterministic=True)
    np.testing.assert_allclose(y, h, rtol=1e-5, atol=1e-6)


def test_mlp_selu_auto_is_lecun_and_prelu_slopes_are_per_layer():
    x = jnp.ones((1, 256))
    params = rxl.MLP(features=(256, 4), activation="selu").init(jax.random.key(0), x)["params"]
    lecun = _reference_mlp((256, 4), 1.0).init(jax.random.key(0), x)["params"]  # SELU's init
    np.testing.assert_allclose(
        params["Dense_1"]["kernel"], lecun["Dense_1"]["kernel"], rtol=1e-6, atol=1e-7
    )
    variables = rxl.MLP(features=(8, 8, 2), activation=rxl.PReLU).init(
        jax.random.key(0), jnp.ones((1, 3))
    )
    assert set(variables["params"]) == {"Dense_0", "Dense_1", "Dense_2", "PReLU_0", "PReLU_1"}


@pytest.mark.standard_promotion  # optax/flax promote implicitly
def test_cnn_shapes_record_stats_and_rrelu_modes():
    model = rxl.CNN(features=(4,), dense=(), num_classes=5, activation=rxl.RReLU, record_stats=True)
    x = jax.random.normal(jax.random.key(0), (3, 8, 8, 1))
    variables = jax.jit(functools.partial(model.init, deterministic=True))(jax.random.key(1), x)
    assert variables["params"]["Conv_0"]["kernel"].shape == (3, 3, 1, 4)
    square = model.clone(kernel_size=5).init(jax.random.key(1), x, deterministic=True)
    assert square["params"]["Conv_0"]["kernel"].shape == (5, 5, 1, 4)
    apply = jax.jit(model.apply, static_argnames=("deterministic", "mutable"))
    y, state = apply(
        variables,
        x,
        deterministic=False,
        rngs={"rrelu": jax.random.key(2)},
        mutable=("intermediates",),
    )
    assert y.shape == (3, 5)
    stats = state["intermediates"]["RReLU_0"]["unit_stats"]
    assert stats.fires.shape == (4,)
    assert int(stats.seen) == 3 * 8 * 8
    y_eval = apply(variables, x, deterministic=True, mutable=("intermediates",))[0]
    assert not np.allclose(y, y_eval)


@pytest.mark.standard_promotion  # optax/flax promote implicitly
def test_weight_decay_mask_excludes_slopes_and_biases():
    model = rxl.MLP(features=(8, 2), activation=rxl.PReLU)
    params = model.init(jax.random.key(0), jnp.ones((1, 3)))["params"]
    mask = optim.weight_decay_mask(params)
    assert mask["Dense_0"] == {"kernel": True, "bias": False}
    assert mask["PReLU_0"] == {"negative_slope": False}
    # With zero gradients, AdamW changes kernels (decay) and leaves slopes and biases alone.
    params = jax.tree.map(lambda p: p + 1.0, params)
    tx = optim.adamw(0.1, weight_decay=0.5)
    zeros = jax.tree.map(jnp.zeros_like, params)
    updates, _ = tx.update(zeros, tx.init(params), params)
    assert float(jnp.abs(updates["PReLU_0"]["negative_slope"])) == 0.0
    assert float(jnp.abs(updates["Dense_0"]["bias"]).max()) == 0.0
    assert float(jnp.abs(updates["Dense_0"]["kernel"]).min()) > 0.0
    # As an explicit optax mask as well.
    tx = optax.adamw(0.1, weight_decay=0.5, mask=optim.weight_decay_mask)
    updates, _ = tx.update(zeros, tx.init(params), params)
    assert float(jnp.abs(updates["PReLU_0"]["negative_slope"])) == 0.0


def test_checkpoint_roundtrip_keeps_slopes():
    model = rxl.MLP(features=(8, 2), activation=functools.partial(rxl.PReLU, num_parameters=8))
    variables = model.init(jax.random.key(0), jnp.ones((1, 3)))
    variables = jax.tree.map(lambda p: p + 0.125, variables)
    restored = serialization.from_bytes(variables, serialization.to_bytes(variables))
    jax.tree.map(np.testing.assert_array_equal, variables, restored)
    assert restored["params"]["PReLU_0"]["negative_slope"].shape == (8,)
    state = serialization.msgpack_restore(
        serialization.msgpack_serialize(serialization.to_state_dict(variables))
    )
    np.testing.assert_array_equal(
        state["params"]["PReLU_0"]["negative_slope"], np.full(8, 0.375, np.float32)
    )


def test_auto_init_dispatches_on_the_class_not_its_name():
    """flax's own PReLU is matched with flax's slope (0.01), not rectax's 0.25; a user class that
    happens to be called Activation is refused clearly instead of raising KeyError."""
    import functools

    import flax.linen as nn
    from flax import nnx

    from rectax import _resolve as common
    from rectax import nnx as rxn

    assert common.init_target(nn.PReLU) == ("prelu", {"negative_slope": 0.01})
    assert common.init_target(rxl.PReLU) == ("prelu", {"negative_slope": 0.25})
    assert common.init_target(functools.partial(rxn.PReLU, negative_slope_init=0.1)) == (
        "prelu",
        {"negative_slope": 0.1},
    )

    class Sub(rxl.NecroReLU):
        pass

    assert common.init_target(Sub) == ("necro_relu", {"negative_slope": 0.1})

    class Activation(nn.Module):  # a user's class with rectax's class name
        pass

    with pytest.raises(ValueError, match="cannot pick kernel_init='auto'"):
        common.init_target(Activation)

    class Leaky(nn.Module):  # a user's class that says what it computes
        computes = "leaky_relu"
        negative_slope: float = 0.2

    assert common.init_target(Leaky) == ("leaky_relu", {"negative_slope": 0.2})
    assert common.init_target(nnx.PReLU) == ("prelu", {"negative_slope": 0.01})
    assert common.init_target(functools.partial(rxl.Activation, rx.elu, alpha=0.5)) == (
        rx.elu,
        {"alpha": 0.5},
    )
