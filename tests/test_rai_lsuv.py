"""RAI (Lu et al. 2020) and LSUV (Mishkin & Matas 2016)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

import rectax.initializers as init

Z_STAR = 4.892  # two-sided alpha = 1e-6


# --------------------------------------------------------------------------- RAI
def test_rai_shapes_and_dtypes():
    for dtype in (jnp.float32, jnp.bfloat16, jnp.float16):
        w, b = init.rai(jax.random.key(0), 16, 8, dtype=dtype)
        assert w.shape == (16, 8)
        assert b.shape == (8,)
        assert w.dtype == b.dtype == dtype
    with pytest.raises(TypeError):
        init.rai(jax.random.key(0), 16, 8, dtype=jnp.int32)


def test_rai_sigma_formula():
    assert init.rai_sigma(150) == pytest.approx(math.sqrt(1.5 / 150))
    assert init.rai_sigma(10, scale=1.0) == pytest.approx(math.sqrt(0.05))


def test_rai_one_beta_entry_per_row():
    """With scale just above 1/2 the normal entries vanish and the Beta(2, 1) entries remain:
    exactly one per row of [W^T | b], uniformly placed, with CDF x²."""
    n_in, n_out = 99, 20_000
    w, b = init.rai(jax.random.key(1), n_in, n_out, scale=0.5 + 1e-14)
    v = np.concatenate([np.asarray(w).T, np.asarray(b)[:, None]], axis=1)
    big = np.abs(v) > 1e-4
    assert np.all(big.sum(axis=1) <= 1)
    assert big.sum() >= n_out - 5
    xi = v[big]
    assert np.all((xi > 0) & (xi <= 1))
    assert scipy.stats.kstest(xi, lambda x: np.clip(x, 0, 1) ** 2).pvalue > 1e-6
    counts = np.bincount(np.argmax(big, axis=1)[big.any(axis=1)], minlength=n_in + 1)
    assert scipy.stats.chisquare(counts).pvalue > 1e-6  # bias column included


def test_rai_second_moment_property():
    """E[sum_k V_jk^2] = scale per row, and so E[z^2] = scale for unit-second-moment inputs."""
    n_in, n_out = 500, 2000
    w, b = init.rai(jax.random.key(2), n_in, n_out)
    v = np.concatenate([np.asarray(w, np.float64).T, np.asarray(b, np.float64)[:, None]], axis=1)
    row = (v**2).sum(axis=1)  # per row: 1/2-moment xi² plus sigma² chi²_{n_in}
    sigma2 = 1.5 / n_in
    var_row = (1 / 3 - 1 / 4) + 2 * n_in * sigma2**2  # Var[xi²] + Var[sigma² chi²]
    z = (row.mean() - 2.0) / math.sqrt(var_row / n_out)
    assert abs(z) < Z_STAR, z
    # row sums have mean E[xi] = 2/3
    sums = v.sum(axis=1)
    z_sum = (sums.mean() - 2 / 3) / math.sqrt((1 / 18 + n_in * sigma2) / n_out)
    assert abs(z_sum) < Z_STAR, z_sum
    # pre-activations of unit-second-moment inputs
    x = np.asarray(jax.random.normal(jax.random.key(3), (256, n_in)), np.float64)
    z2 = ((x @ np.asarray(w, np.float64) + np.asarray(b, np.float64)) ** 2).mean()
    assert z2 == pytest.approx(2.0, rel=0.05)


def test_rai_keeps_deep_narrow_relu_nets_alive():
    """Lu et al.: a deep narrow ReLU net with symmetric init is often born dead (constant
    output); RAI makes that rarer."""
    depth, width, trials = 20, 2, 200
    x = jax.random.uniform(jax.random.key(4), (64, 1), minval=-1.0, maxval=1.0)

    def dead(key, use_rai):
        h = x
        for k in jax.random.split(key, depth):
            n_in = h.shape[1]
            if use_rai:
                w, b = init.rai(k, n_in, width)
            else:
                w, b = init.he_normal(distribution="normal")(k, (n_in, width)), jnp.zeros(width)
            h = jax.nn.relu(h @ w + b)
        return jnp.all(h.std(axis=0) == 0)

    keys = jax.random.split(jax.random.key(5), trials)
    he_dead = float(jnp.mean(jax.vmap(lambda k: dead(k, False))(keys)))
    rai_dead = float(jnp.mean(jax.vmap(lambda k: dead(k, True))(keys)))
    assert rai_dead < he_dead, (rai_dead, he_dead)


def test_rai_initializers_with_flax():
    nnx = pytest.importorskip("flax.nnx")
    nn = pytest.importorskip("flax.linen")
    key = jax.random.key(6)
    w, b = init.rai(key, 12, 7)
    pair = init.rai_initializers(key, 12)
    layer = nnx.Linear(12, 7, kernel_init=pair.kernel, bias_init=pair.bias, rngs=nnx.Rngs(0))
    np.testing.assert_array_equal(layer.kernel[...], w)
    np.testing.assert_array_equal(layer.bias[...], b)
    params = jax.jit(nn.Dense(7, kernel_init=pair.kernel, bias_init=pair.bias).init)(
        jax.random.key(9), jnp.ones((1, 12))
    )["params"]
    # under jit XLA may fuse sigma * normal differently: equal to 1 ulp
    np.testing.assert_allclose(params["kernel"], w, rtol=3e-7)
    np.testing.assert_allclose(params["bias"], b, rtol=3e-7)
    with pytest.raises(ValueError, match="Dense kernel"):
        pair.kernel(key, (13, 7))


# --------------------------------------------------------------------------- LSUV
def _deep_nnx(nnx, rngs):
    return nnx.Sequential(
        nnx.Conv(3, 8, (3, 3), rngs=rngs),
        jax.nn.relu,
        lambda x: x.reshape(x.shape[0], -1),
        nnx.Linear(8 * 8 * 8, 64, rngs=rngs),
        jax.nn.relu,
        nnx.Linear(64, 64, rngs=rngs),
        jnp.tanh,
        nnx.Linear(64, 10, rngs=rngs),
    )


def test_lsuv_nnx():
    nnx = pytest.importorskip("flax.nnx")
    model = _deep_nnx(nnx, nnx.Rngs(0))
    x = 3.0 * jax.random.normal(jax.random.key(1), (128, 8, 8, 3))
    params, report = init.lsuv(model, x, key=jax.random.key(2))
    assert [r.path for r in report] == ["layers/0", "layers/3", "layers/5", "layers/7"]
    assert [r.kind for r in report] == ["Conv", "Linear", "Linear", "Linear"]
    assert all(r.converged and abs(r.variance - 1) < 0.1 for r in report), report
    assert all(0 <= r.iterations <= 10 for r in report)
    assert report[0].iterations >= 1  # the input has variance 9
    assert isinstance(params, nnx.State)
    # the model was updated in place: layer outputs now have unit variance
    h = model.layers[0](x)
    assert abs(float(jnp.var(h)) - 1) < 0.1
    assert float(jnp.abs(model.layers[3].bias[...]).max()) == 0.0


def test_lsuv_linen():
    nn = pytest.importorskip("flax.linen")

    class Net(nn.Module):
        @nn.compact
        def __call__(self, x):
            x = nn.relu(nn.Conv(8, (3, 3))(x))
            x = x.reshape(x.shape[0], -1)
            x = nn.relu(nn.Dense(32)(x))
            return nn.Dense(4)(x)

    model = Net()
    x = 5.0 * jax.random.normal(jax.random.key(1), (64, 6, 6, 2))
    variables = model.init(jax.random.key(0), x)
    new, report = init.lsuv(model, variables, x, key=jax.random.key(2), tol=0.05)
    assert [r.path for r in report] == ["Conv_0", "Dense_0", "Dense_1"]
    assert [r.kind for r in report] == ["Conv", "Dense", "Dense"]
    assert all(r.converged and abs(r.variance - 1) < 0.05 for r in report), report
    _, state = model.apply(new, x, capture_intermediates=True, mutable=["intermediates"])
    out = state["intermediates"]["Dense_1"]["__call__"][0]
    assert abs(float(jnp.var(out)) - 1) < 0.05
    # apply functions work too, and max_iters=0 only does the orthonormal pre-init
    _, report0 = init.lsuv(model.apply, variables, x, key=jax.random.key(2), max_iters=0)
    assert all(r.iterations == 0 for r in report0)


def test_lsuv_argument_errors():
    nnx = pytest.importorskip("flax.nnx")
    model = nnx.Linear(4, 4, rngs=nnx.Rngs(0))
    x = jnp.ones((8, 4))
    with pytest.raises(ValueError, match="key"):
        init.lsuv(model, x)
    with pytest.raises(ValueError, match="tol"):
        init.lsuv(model, x, key=jax.random.key(0), tol=0)
    with pytest.raises(TypeError, match="nnx"):
        init.lsuv(model, {}, x, key=jax.random.key(0))
    with pytest.raises(ValueError, match=r"no nnx\.Linear"):
        init.lsuv(nnx.Sequential(jax.nn.relu), x, key=jax.random.key(0))
