"""rectax.nnx: parity with the functional API, rng modes, stats, state (twins: test_twins.py)."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _registry import RRELU_LOWER, RRELU_UPPER
from flax import nnx, serialization

import rectax as rx
from rectax import diagnostics, optim
from rectax import nnx as rxn

X = jnp.array([[-2.0, -1.0, 0.5], [3.0, -4.0, -0.5]])


def test_prelu_matches_functional():
    slopes = jnp.array([0.1, 0.2, 0.3])
    layer = rxn.PReLU(num_parameters=3)
    assert layer.negative_slope[...].shape == (3,)
    np.testing.assert_array_equal(layer.negative_slope[...], jnp.full(3, 0.25))
    layer.negative_slope[...] = slopes
    np.testing.assert_array_equal(layer(X), rx.prelu(X, slopes))
    grads = nnx.grad(lambda m: m(X).sum())(layer)
    np.testing.assert_allclose(grads["negative_slope"][...], jnp.minimum(X, 0).sum(0))


def test_prelu_shared_axis_and_errors():
    layer = rxn.PReLU()
    assert layer.negative_slope[...].shape == ()
    x = jax.random.normal(jax.random.key(0), (2, 3, 4, 4))
    nchw = rxn.PReLU(num_parameters=3, axis=1)
    nchw.negative_slope[...] = jnp.array([0.0, 0.5, 1.0])
    y = nchw(x)
    np.testing.assert_allclose(y[:, 2], x[:, 2])
    np.testing.assert_allclose(y[:, 0], jnp.maximum(x[:, 0], 0))
    with pytest.raises(ValueError, match="num_parameters=4"):
        rxn.PReLU(num_parameters=4)(X)


def test_prelu_bf16_compute_with_f32_params():
    layer = rxn.PReLU(num_parameters=3)
    y = layer(X.astype(jnp.bfloat16))
    assert y.dtype == jnp.bfloat16
    assert layer.negative_slope[...].dtype == jnp.float32
    grads = nnx.grad(lambda m: m(X.astype(jnp.bfloat16)).astype(jnp.float32).sum())(layer)
    assert grads["negative_slope"][...].dtype == jnp.float32
    assert rxn.PReLU(dtype=jnp.bfloat16)(X).dtype == jnp.bfloat16
    assert rxn.PReLU(param_dtype=jnp.bfloat16).negative_slope[...].dtype == jnp.bfloat16


def test_rrelu_train_eval_and_reproducibility():
    x = -jnp.ones((64,))
    a = rxn.RReLU(rngs=nnx.Rngs(rrelu=0))
    b = rxn.RReLU(rngs=nnx.Rngs(rrelu=0))
    ya, yb = a(x), b(x)
    np.testing.assert_array_equal(ya, yb)  # same seed, same slopes
    assert not np.array_equal(ya, a(x))  # the stream advances
    assert bool(jnp.all((-ya >= 1 / 8) & (-ya <= 1 / 3)))
    a.eval()
    np.testing.assert_allclose(a(X), rx.rrelu(X), rtol=1e-6)
    a.train()
    assert not np.allclose(a(X), rx.rrelu(X))
    view = nnx.view(a, deterministic=True)
    np.testing.assert_allclose(view(X), rx.rrelu(X), rtol=1e-6)
    assert a.deterministic is False


def test_rrelu_call_arguments_and_errors():
    x = -jnp.ones((16,))
    key = jax.random.key(3)
    np.testing.assert_array_equal(rxn.RReLU()(x, rngs=key), rx.rrelu(x, key))
    np.testing.assert_array_equal(rxn.RReLU()(x, deterministic=True), rx.rrelu(x))
    # rng=, Linen's name, takes a key too, and wins over the constructor's stream.
    np.testing.assert_array_equal(rxn.RReLU(rngs=nnx.Rngs(0))(x, rng=key), rx.rrelu(x, key))
    with pytest.raises(ValueError, match="not both"):
        rxn.RReLU()(x, rng=key, rngs=key)
    with pytest.raises(ValueError, match="rngs"):
        rxn.RReLU()(x)
    with pytest.raises(ValueError, match="lower"):
        rxn.RReLU(lower=0.5, upper=0.1)

    # Falls back to the 'default' stream: the slopes a 'rrelu' stream with its seed gives; a
    # 'rrelu' stream wins when both are present; a custom collection is read instead of 'rrelu'.
    def slopes(**kwargs):
        return np.asarray(rxn.RReLU(**kwargs)(x))

    seeded_0, seeded_7 = slopes(rngs=nnx.Rngs(rrelu=0)), slopes(rngs=nnx.Rngs(rrelu=7))
    assert not np.array_equal(seeded_0, seeded_7)
    assert np.all((-seeded_0 >= RRELU_LOWER) & (-seeded_0 <= RRELU_UPPER))
    assert len(np.unique(seeded_0)) > 8
    np.testing.assert_array_equal(slopes(rngs=nnx.Rngs(0)), seeded_0)
    np.testing.assert_array_equal(slopes(rngs=nnx.Rngs(default=0, rrelu=7)), seeded_7)
    noise = slopes(rng_collection="noise", rngs=nnx.Rngs(noise=0, rrelu=7))
    np.testing.assert_array_equal(noise, seeded_0)


def test_rrelu_inside_nnx_jit():
    model = rxn.MLP(
        3,
        (8, 2),
        activation=rxn.RReLU,
        kernel_init=jax.nn.initializers.he_normal(),
        rngs=nnx.Rngs(0),
    )
    f = nnx.jit(lambda m, x: m(x))
    y1, y2 = f(model, X), f(model, X)
    assert not np.array_equal(y1, y2)
    model.eval()
    np.testing.assert_array_equal(f(model, X), f(model, X))


def test_necro_and_activation_match_functional():
    x = X.ravel()
    g = jax.grad(lambda x: rxn.NecroReLU(0.2)(x).sum())(x)
    np.testing.assert_allclose(g, jax.grad(lambda x: rx.necro_relu(x, 0.2).sum())(x))
    act = rxn.Activation(rx.leaky_relu, negative_slope=0.3)
    np.testing.assert_array_equal(act(X), rx.leaky_relu(X, 0.3))
    np.testing.assert_array_equal(rxn.Activation("silu")(X), rx.silu(X))
    # Hyperparameters as a mapping, as linen's clone passes them; keywords override it.
    act = rxn.Activation(rx.elu, params={"alpha": 0.5})
    np.testing.assert_array_equal(act(X), rx.elu(X, 0.5))
    act = rxn.Activation(rx.elu, {"alpha": 0.5}, alpha=2.0)
    np.testing.assert_array_equal(act(X), rx.elu(X, 2.0))


def test_record_stats_through_nnx_capture():
    model = rxn.MLP(
        3,
        (4, 4, 2),
        activation=rxn.NecroReLU,
        kernel_init=jax.nn.initializers.he_normal(),
        record_stats=True,
        rngs=nnx.Rngs(0),
    )
    _, inter = nnx.capture(model, nnx.Intermediate)(X)
    stats = inter["activations"][0]["unit_stats"].get_value()
    assert isinstance(stats, diagnostics.UnitStats)
    # Recomputed in float64 NumPy from the first layer's own parameters.
    layer = model.layers[0]
    pre = np.asarray(X, np.float64) @ np.asarray(layer.kernel[...], np.float64)
    pre += np.asarray(layer.bias[...], np.float64)
    assert int(stats.seen) == X.shape[0]
    np.testing.assert_array_equal(stats.fires, (pre > 0).sum(axis=0))
    assert int(stats.zeros) == int((pre <= 0).sum())
    np.testing.assert_allclose(stats.mean, pre.mean(axis=0), rtol=1e-5, atol=1e-6)
    m2 = ((pre - pre.mean(axis=0)) ** 2).sum(axis=0)
    np.testing.assert_allclose(stats.var * X.shape[0], m2, rtol=1e-4, atol=1e-6)
    # Off by default: nothing is sown.
    plain = rxn.MLP(3, (4, 2), kernel_init=jax.nn.initializers.he_normal(), rngs=nnx.Rngs(0))
    _, inter = nnx.capture(plain, nnx.Intermediate)(X)
    assert not jax.tree.leaves(inter)


@pytest.mark.standard_promotion  # flax's avg_pool promotes implicitly
def test_cnn_takes_ints_for_square_images_and_kernels():
    model = rxn.CNN(1, 8, features=(4,), dense=(), num_classes=3, kernel_size=3, rngs=nnx.Rngs(0))
    assert model.convs[0].kernel[...].shape == (3, 3, 1, 4)
    assert model.head.layers[0].kernel[...].shape == (4 * 4 * 4, 3)
    assert model(jnp.ones((2, 8, 8, 1))).shape == (2, 3)
    wide = rxn.CNN(1, (8, 16), features=(4, 2), dense=(), num_classes=3, rngs=nnx.Rngs(0))
    assert wide.head.layers[0].kernel[...].shape == (2 * 4 * 2, 3)


@pytest.mark.standard_promotion  # optax/flax promote implicitly
def test_weight_decay_mask_with_nnx_optimizer():
    model = rxn.MLP(3, (8, 2), activation=rxn.PReLU, rngs=nnx.Rngs(0))
    mask = optim.weight_decay_mask(nnx.state(model, nnx.Param))
    assert mask["activations"][0]["negative_slope"].get_value() is False
    assert mask["layers"][0]["kernel"].get_value() is True
    assert mask["layers"][0]["bias"].get_value() is False
    opt = nnx.Optimizer(model, optim.adamw(0.1, weight_decay=0.5), wrt=nnx.Param)
    before = nnx.state(model, nnx.Param)
    before = jax.tree.map(jnp.copy, before)
    zero_grads = jax.tree.map(jnp.zeros_like, nnx.state(model, nnx.Param))
    opt.update(model, zero_grads)
    assert float(model.activations[0].negative_slope[...]) == 0.25
    assert not np.allclose(model.layers[0].kernel[...], before["layers"][0]["kernel"][...])


def test_checkpoint_roundtrip_keeps_slopes():
    model = rxn.MLP(
        3, (8, 2), activation=functools.partial(rxn.PReLU, num_parameters=8), rngs=nnx.Rngs(0)
    )
    model.activations[0].negative_slope[...] = jnp.linspace(0.0, 1.0, 8)
    state = nnx.state(model)
    pure = nnx.to_pure_dict(state)
    restored = serialization.from_bytes(pure, serialization.to_bytes(pure))
    jax.tree.map(np.testing.assert_array_equal, pure, restored)
    fresh = rxn.MLP(
        3, (8, 2), activation=functools.partial(rxn.PReLU, num_parameters=8), rngs=nnx.Rngs(1)
    )
    fresh_state = nnx.state(fresh)
    nnx.replace_by_pure_dict(fresh_state, restored)
    nnx.update(fresh, fresh_state)
    np.testing.assert_array_equal(fresh.activations[0].negative_slope[...], jnp.linspace(0, 1, 8))
    np.testing.assert_array_equal(fresh(X), model(X))
