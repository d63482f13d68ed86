"""RAI (Lu et al. 2020) and LSUV (Mishkin & Matas 2016)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize
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


def test_rai_constant_solves_the_design_condition():
    """a* is the positive root of a²/2 + sqrt(2/pi) E[xi] a + E[xi²] = 1, found here by
    bisection in float64; Beta(2, 1) gives the reference code's 0.6007."""
    assert round(init.rai_constant(), 4) == 0.6007
    assert init.rai_constant() == init.rai_constant(2 / 3, 1 / 2)
    for m1, m2 in [(2 / 3, 1 / 2), (0.5, 0.25), (0.5, 0.9), (0.1, 0.5), (0.9, 0.85)]:

        def condition(a, m1=m1, m2=m2):
            return a * a / 2 + math.sqrt(2 / math.pi) * m1 * a + m2 - 1

        root = scipy.optimize.brentq(condition, 0.0, 10.0, xtol=1e-15)
        assert init.rai_constant(m1, m2) == pytest.approx(root, rel=1e-12)
    for m1, m2 in [(0.0, 0.5), (-0.1, 0.5), (0.5, 1.0), (0.8, 0.5)]:  # m2 < m1² is impossible
        with pytest.raises(ValueError, match="rectax"):
            init.rai_constant(m1, m2)


def test_rai_sigma_is_a_star_over_sqrt_fan_in():
    a = init.rai_constant()
    assert init.rai_sigma(150) == pytest.approx(a / math.sqrt(150), rel=1e-15)
    uniform = init.AsymmetricDistribution(lambda k, s, d: jax.random.uniform(k, s, d), 0.5, 1 / 3)
    assert init.rai_sigma(7, distribution=uniform) == pytest.approx(
        init.rai_constant(0.5, 1 / 3) / math.sqrt(7)
    )
    with pytest.raises(ValueError, match="in_features"):
        init.rai_sigma(0)


def test_beta_2_1_sampler_matches_its_cdf_and_moments():
    xi = np.asarray(init.BETA_2_1.sample(jax.random.key(11), (200_000,), np.dtype("float32")))
    assert np.all((xi >= 0) & (xi <= 1))
    assert scipy.stats.kstest(xi, lambda x: np.clip(x, 0, 1) ** 2).pvalue > 1e-6
    assert init.BETA_2_1.mean == pytest.approx(2 / 3)
    assert init.BETA_2_1.second_moment == 0.5


def test_rai_one_special_entry_per_row_uniformly_placed():
    """A distribution far from the normal entries makes the special entry visible: exactly one
    per row of [W^T | b], uniformly placed over the N_in + 1 columns (bias included)."""
    n_in, n_out = 99, 20_000
    far = init.AsymmetricDistribution(lambda k, s, d: 10.0 + jax.random.uniform(k, s, d), 0.5, 0.5)
    w, b = init.rai(jax.random.key(1), n_in, n_out, distribution=far)
    v = np.concatenate([np.asarray(w).T, np.asarray(b)[:, None]], axis=1)
    big = v > 5
    assert np.all(big.sum(axis=1) == 1)
    assert np.all((v[big] >= 10) & (v[big] <= 11))
    counts = np.bincount(np.argmax(big, axis=1), minlength=n_in + 1)
    assert scipy.stats.chisquare(counts).pvalue > 1e-6
    normal = v[~big]  # N(0, sigma²) with sigma = a*(0.5, 0.5) / sqrt(n_in)
    sigma = init.rai_constant(0.5, 0.5) / math.sqrt(n_in)
    assert scipy.stats.kstest(normal / sigma, "norm").pvalue > 1e-6


def test_rai_row_second_moment():
    """E[sum_k V_jk²] = E[xi²] + N_in sigma² = 1/2 + a*², row sums have mean E[xi] = 2/3."""
    n_in, n_out = 500, 4000
    w, b = init.rai(jax.random.key(2), n_in, n_out)
    v = np.concatenate([np.asarray(w, np.float64).T, np.asarray(b, np.float64)[:, None]], axis=1)
    a = init.rai_constant()
    sigma2 = a * a / n_in
    row = (v**2).sum(axis=1)
    var_row = (1 / 3 - 1 / 4) + 2 * n_in * sigma2**2  # Var[xi²] + Var[sigma² chi²_{n_in}]
    z = (row.mean() - (0.5 + a * a)) / math.sqrt(var_row / n_out)
    assert abs(z) < Z_STAR, z
    sums = v.sum(axis=1)
    z_sum = (sums.mean() - 2 / 3) / math.sqrt((1 / 18 + n_in * sigma2) / n_out)
    assert abs(z_sum) < Z_STAR, z_sum


def _second_moments(sample_layer, width=32, depth=50, nets=256, batch=64):
    """E[h_l²] per layer (l = 0 is the N(0, 1) input), averaged over nets, batch and units."""

    def one(key):
        x = jax.random.normal(jax.random.fold_in(key, depth), (batch, width))

        def step(h, k):
            w, b = sample_layer(k, width)
            h = jax.nn.relu(h @ w + b)
            return h, jnp.mean(h**2)

        _, q = jax.lax.scan(step, x, jax.random.split(key, depth))
        return jnp.concatenate([jnp.mean(x**2)[None], q])

    q = jax.jit(jax.vmap(one))(jax.random.split(jax.random.key(12), nets))
    return np.asarray(q, np.float64).mean(axis=0)


def _within_rai_bounds(q, width, sigma, tol=0.1):
    """Lu et al.'s per-layer bounds, given the measured previous layer. With Q the mean second
    moment of the N_in + 1 coordinates of (h, 1) and a = sigma sqrt(N_in):
    (E[xi²] + a²)/2 · Q <= E[h_next²] <= (E[xi²] + a²/2 + sqrt(2/pi) E[xi] a) · Q."""
    a = sigma * math.sqrt(width)
    big_q = (width * q[:-1] + 1) / (width + 1)
    lower = (0.5 + a * a) / 2 * big_q
    upper = (0.5 + a * a / 2 + math.sqrt(2 / math.pi) * (2 / 3) * a) * big_q
    return bool(np.all(q[1:] >= (1 - tol) * lower) and np.all(q[1:] <= (1 + tol) * upper)), upper


def test_rai_second_moment_through_50_layers_stays_within_the_bounds():
    """At a* the upper bound is (N q + 1)/(N + 1) <= 1: the second moment neither explodes
    (it stays below the input's 1) nor collapses faster than the lower bound (measured:
    0.44 at layer 1, 0.09 at layer 50 for width 32)."""
    width = 32
    q = _second_moments(lambda k, n: init.rai(k, n, n), width)
    ok, upper = _within_rai_bounds(q, width, init.rai_sigma(width))
    assert ok, q
    np.testing.assert_allclose(upper, (width * q[:-1] + 1) / (width + 1), rtol=1e-12)
    assert q[1:].max() < 1, q
    assert q[-1] > 0.02, q


def test_the_old_he_style_sigma_violates_the_bound():
    """sigma² = (2 - 1/2)/N_in (He's condition with the special entry) grows E[h²] about 1.5x
    per layer; the bound check above rejects it, so it can fail."""
    width = 32
    old = math.sqrt(1.5 / width)

    def old_rai(key, n):
        k1, k2, k3 = jax.random.split(key, 3)
        v = old * jax.random.normal(k1, (n, n + 1))
        col = jax.random.randint(k2, (n,), 0, n + 1)
        v = v.at[jnp.arange(n), col].set(jnp.sqrt(jax.random.uniform(k3, (n,))))
        return v[:, :n].T, v[:, n]

    q = _second_moments(old_rai, width, depth=20)
    assert not _within_rai_bounds(q, width, init.rai_sigma(width))[0]
    assert q[-1] / q[1] > 1e2, q


def test_rai_initializers_with_flax():
    import flax.linen as nn
    from flax import nnx

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
    from flax import nnx

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
    import flax.linen as nn

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


def test_lsuv_linen_follows_call_order_not_module_tree_order():
    """enc/d0, mid, enc/d1 called in that order: tree order (enc/d0, enc/d1, mid) rescaled mid
    after enc/d1 and left enc/d1 at variance 1.66 while reporting converged=True."""
    import flax.linen as nn

    class Enc(nn.Module):
        def setup(self):
            self.d0 = nn.Dense(32)
            self.d1 = nn.Dense(32)

    class Net(nn.Module):
        def setup(self):
            self.enc = Enc()
            self.mid = nn.Dense(32)

        def __call__(self, x):
            x = nn.relu(self.enc.d0(x))
            x = nn.relu(self.mid(x))
            return self.enc.d1(x)

    model = Net()
    x = 3.0 * jax.random.normal(jax.random.key(1), (256, 16))
    variables = model.init(jax.random.key(0), x)
    new, report = init.lsuv(model, variables, x, key=jax.random.key(2), tol=0.05)
    assert [r.path for r in report] == ["enc/d0", "mid", "enc/d1"]
    _, state = model.apply(new, x, capture_intermediates=True, mutable=["intermediates"])
    inter = state["intermediates"]
    final = {
        "enc/d0": inter["enc"]["d0"]["__call__"][0],
        "mid": inter["mid"]["__call__"][0],
        "enc/d1": inter["enc"]["d1"]["__call__"][0],
    }
    for r in report:
        assert r.converged, r
        measured = float(jnp.var(final[r.path]))
        assert abs(measured - 1) < 0.05, (r.path, measured)
        assert measured == pytest.approx(r.variance, rel=1e-5)


def test_lsuv_argument_errors():
    from flax import nnx

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


def _held_out_variances_nnx(nnx, model, x):
    """Output variance of every Linear/Conv/ConvTranspose on ``x``, measured by running the
    layers one by one (an independent forward pass, no LSUV machinery)."""
    out = {}
    h = x
    for i, layer in enumerate(model.layers):
        h = layer(h)
        if isinstance(layer, nnx.Linear | nnx.Conv | nnx.ConvTranspose):
            out[f"layers/{i}"] = float(jnp.var(h))
    return out


def test_lsuv_fresh_batches_converge_on_held_out_data():
    """An iterator gives a fresh mini-batch per forward pass; afterwards every layer's output
    variance on a held-out batch is within tol (plus sampling slack) of 1."""
    from flax import nnx

    rngs = nnx.Rngs(0)
    model = nnx.Sequential(
        nnx.Linear(8, 64, rngs=rngs),
        jax.nn.relu,
        nnx.Linear(64, 64, rngs=rngs),
        jax.nn.relu,
        nnx.Linear(64, 4, rngs=rngs),
    )
    drawn = []

    def batches():
        for i in range(1000):
            x = 4.0 * jax.random.normal(jax.random.key(100 + i), (512, 8))
            drawn.append(i)
            yield x

    _, report = init.lsuv(model, batches(), key=jax.random.key(1), tol=0.05, max_iters=20)
    assert all(r.converged for r in report), report
    assert len(drawn) == 1 + len(report) + sum(r.iterations for r in report)  # one per pass
    held_out = 4.0 * jax.random.normal(jax.random.key(7), (4096, 8))
    for path, var in _held_out_variances_nnx(nnx, model, held_out).items():
        assert abs(var - 1) < 0.05 + 0.1, (path, var)  # tol + batch-to-batch variation


def test_lsuv_conv_transpose_nnx_and_linen():
    import flax.linen as nn
    from flax import nnx

    x = 3.0 * jax.random.normal(jax.random.key(1), (32, 5, 5, 3))
    rngs = nnx.Rngs(0)
    model = nnx.Sequential(
        nnx.Conv(3, 6, (3, 3), rngs=rngs),
        jax.nn.relu,
        nnx.ConvTranspose(6, 4, (3, 3), strides=(2, 2), rngs=rngs),
    )
    _, report = init.lsuv(model, x, key=jax.random.key(2), tol=0.02, max_iters=20)
    assert [r.kind for r in report] == ["Conv", "ConvTranspose"]
    assert all(r.converged for r in report), report
    var = _held_out_variances_nnx(nnx, model, x)
    assert abs(var["layers/2"] - 1) < 0.02

    class Up(nn.Module):
        @nn.compact
        def __call__(self, x):
            return nn.ConvTranspose(4, (3, 3), strides=(2, 2))(nn.relu(nn.Conv(6, (3, 3))(x)))

    up = Up()
    variables = up.init(jax.random.key(0), x)
    new, report = init.lsuv(up, variables, x, key=jax.random.key(2), tol=0.02, max_iters=20)
    assert [r.path for r in report] == ["Conv_0", "ConvTranspose_0"]
    assert abs(float(jnp.var(up.apply(new, x))) - 1) < 0.02


def test_lsuv_does_not_modify_flax_classes():
    """The layer classes are untouched while LSUV runs (checked from inside its forward pass)
    and afterwards; the user's layer objects keep their class."""
    from flax import nnx

    originals = {c: dict(c.__dict__) for c in (nnx.Linear, nnx.Conv, nnx.ConvTranspose)}
    checks = []

    class Probe(nnx.Module):
        def __init__(self, rngs):
            self.a = nnx.Linear(4, 8, rngs=rngs)
            self.b = nnx.Linear(8, 2, rngs=rngs)

        def __call__(self, x):
            checks.append(all(dict(c.__dict__) == d for c, d in originals.items()))
            return self.b(jax.nn.relu(self.a(x)))

    model = Probe(nnx.Rngs(0))
    _, report = init.lsuv(
        model, jax.random.normal(jax.random.key(1), (64, 4)), key=jax.random.key(2)
    )
    assert [r.path for r in report] == ["a", "b"]
    assert checks
    assert all(checks)
    assert all(dict(c.__dict__) == d for c, d in originals.items())
    assert type(model.a) is nnx.Linear
    assert type(model.b) is nnx.Linear


def test_reproduce_rai_wilson_interval_matches_scipy():
    """The confidence interval ``examples/reproduce_rai.py`` reports, against SciPy's."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "examples" / "reproduce_rai.py"
    spec = importlib.util.spec_from_file_location("reproduce_rai", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for k, n in [(0, 10), (5, 10), (326, 1000), (938, 1000), (1000, 1000)]:
        want = scipy.stats.binomtest(k, n).proportion_ci(0.95, method="wilson")
        lo, hi = module.wilson(k, n)
        assert lo == pytest.approx(want.low, abs=1e-6)
        assert hi == pytest.approx(want.high, abs=1e-6)
