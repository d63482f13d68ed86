"""rectax.diagnostics: hand-made pre-activations with known answers, jit/scan, probes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rectax as rx
from rectax import diagnostics as dg
from rectax import initializers

# Two units over a batch of 3; unit 1 never fires, unit 0 fires twice; a 0 is not firing.
PRE = jnp.array([[1.0, -1.0], [0.0, -2.0], [2.0, 0.0]])


def test_fire_counts_dead_units_and_fraction():
    np.testing.assert_array_equal(dg.fire_counts(PRE), [2, 0])
    np.testing.assert_array_equal(dg.dead_units(PRE), [False, True])
    assert float(dg.dead_fraction(PRE)) == 0.5
    assert dg.fire_counts(PRE).dtype == jnp.int32


def test_threshold_and_unit_axis_for_convolutions():
    # NHWC: channel 0 fires at exactly one position, channel 1 never, channel 2 everywhere.
    x = -jnp.ones((2, 3, 3, 3))
    x = x.at[1, 2, 0, 0].set(0.5).at[..., 2].set(1.0)
    np.testing.assert_array_equal(dg.fire_counts(x), [1, 0, 18])
    np.testing.assert_array_equal(dg.dead_units(x, threshold=0.75), [True, True, False])
    # NCHW: the same tensor transposed, units on axis 1.
    np.testing.assert_array_equal(dg.fire_counts(jnp.moveaxis(x, -1, 1), unit_axis=1), [1, 0, 18])


def test_sparsity_counts_exact_zeros_only():
    post = jnp.array([[0.0, 1e-30, -0.0, 2.0]])
    assert float(dg.sparsity(post)) == 0.5
    assert float(dg.sparsity(rx.relu(PRE))) == pytest.approx(4 / 6)


def test_layer_moments_known_values_and_bf16_input():
    mean, var, m2 = dg.layer_moments(jnp.array([[1.0, 2.0], [3.0, 6.0]]))
    assert (float(mean), float(var), float(m2)) == (3.0, 3.5, 12.5)
    mean, var, _ = dg.layer_moments(jnp.array([1.0, 3.0], jnp.bfloat16))
    assert mean.dtype == jnp.float32
    assert (float(mean), float(var)) == (2.0, 1.0)


def test_unit_stats_summary_matches_numpy():
    x = jax.random.normal(jax.random.key(0), (64, 5)) + jnp.arange(5.0)
    s = dg.summarize(dg.unit_stats(x))
    xn = np.asarray(x, np.float64)
    np.testing.assert_allclose(s.unit_mean, xn.mean(0), rtol=1e-5)
    np.testing.assert_allclose(s.unit_var, xn.var(0), rtol=1e-5)
    np.testing.assert_allclose(s.mean, xn.mean(), rtol=1e-5)
    np.testing.assert_allclose(s.var, xn.var(), rtol=1e-5)
    np.testing.assert_allclose(s.fire_rate, (xn > 0).mean(0), rtol=1e-6)
    np.testing.assert_allclose(s.sparsity, (xn <= 0).mean(), rtol=1e-6)


def test_unit_stats_counts_zeros_of_given_output():
    s = dg.unit_stats(PRE, rx.leaky_relu(PRE))  # leaky output is zero only where pre == 0
    assert int(s.zeros) == 2
    assert int(dg.unit_stats(PRE).zeros) == 4


def test_merge_equals_stats_of_concatenation_and_init_is_identity():
    key_a, key_b = jax.random.split(jax.random.key(1))
    a = jax.random.normal(key_a, (7, 3)) * 3 + 1
    b = jax.random.normal(key_b, (20, 3)) - 2
    merged = dg.merge_stats(dg.merge_stats(dg.init_stats(3), dg.unit_stats(a)), dg.unit_stats(b))
    whole = dg.unit_stats(jnp.concatenate([a, b]))
    for got, want in zip(merged, whole, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_merge_stats_over_a_pytree_of_layers():
    tree = {"l0": dg.unit_stats(PRE), "l1": dg.unit_stats(PRE[:, :1])}
    out = dg.summarize(dg.merge_stats(tree, tree))
    assert float(out["l0"].dead_fraction) == 0.5
    assert float(out["l1"].dead_fraction) == 0.0
    assert int(dg.merge_stats(tree, tree)["l0"].seen) == 6


def test_accumulator_inside_jit_and_scan_tracks_dead_units():
    batches = jax.random.normal(jax.random.key(2), (10, 8, 4))
    batches = batches.at[..., 3].set(-jnp.abs(batches[..., 3]))  # unit 3 is dead throughout
    batches = batches.at[4, 0, 2].set(5.0).at[..., 2].min(0.0)  # unit 2 fires zero times...
    batches = batches.at[4, 0, 2].set(5.0)  # ...except once, in the fifth batch

    @jax.jit
    def run(batches):
        def step(state, pre):
            return dg.update_stats(state, pre), dg.dead_fraction(pre)

        return jax.lax.scan(step, dg.init_stats(4), batches)

    state, per_batch = run(batches)
    summary = dg.summarize(state)
    np.testing.assert_array_equal(summary.dead, [False, False, False, True])
    assert float(summary.dead_fraction) == 0.25
    assert int(state.seen) == 80
    assert int(state.fires[2]) == 1
    # Per batch, unit 2 looks dead in nine of ten batches: dead over training != dead per batch.
    np.testing.assert_allclose(per_batch[4], 0.25)
    np.testing.assert_allclose(per_batch[0], 0.5)


def test_signal_propagation_known_answers_with_params():
    layers = [lambda w, h: w * h] * 3
    params = [jnp.array(2.0), jnp.array(3.0), jnp.array(0.5)]
    x = jnp.ones((4,))
    s = dg.signal_propagation(layers, x, params, cotangent=jnp.ones(4))
    np.testing.assert_allclose(s.forward, [4.0, 36.0, 9.0])
    np.testing.assert_allclose(s.backward, [2.25, 0.25, 1.0])
    # dL/dw_l = sum(h_{l-1} * g_l) = 4 * h_{l-1} * g_l.
    np.testing.assert_allclose(s.grad_norm, [4 * 1 * 1.5, 4 * 2 * 0.5, 4 * 6 * 1.0])


def test_signal_propagation_he_flat_xavier_halves():
    width, depth = 256, 12
    x = jax.random.normal(jax.random.key(0), (512, width))

    def stats(init):
        keys = jax.random.split(jax.random.key(1), depth)
        ws = [init(k, (width, width), jnp.float32) for k in keys]
        layers = [lambda w, h: rx.relu(h @ w)] * depth
        return dg.signal_propagation(layers, x, ws, key=jax.random.key(2))

    he = stats(initializers.he_normal())
    xavier = stats(initializers.glorot_normal())
    ratio_he = float(he.forward[-1] / he.forward[0])
    ratio_xavier = float(xavier.forward[-1] / xavier.forward[0])
    assert 0.5 < ratio_he < 2.0
    assert ratio_xavier == pytest.approx(0.5 ** (depth - 1), rel=0.5)
    assert 0.5 < float(he.backward[0] / he.backward[-1]) < 2.0
    assert float(xavier.backward[0] / xavier.backward[-1]) < 0.5 ** (depth - 3)


def test_signal_propagation_rejects_mismatched_params():
    with pytest.raises(ValueError, match="layers"):
        dg.signal_propagation([lambda p, h: h], jnp.ones(2), [1.0, 2.0])


def test_born_dead_width_one_known_answer():
    x = jnp.linspace(-1.0, 1.0, 16)[:, None]
    est = dg.born_dead_probability(jax.random.key(0), x, [1, 1, 1, 1], num_nets=4000)
    want = 1 - 0.5**3
    assert abs(float(est.probability) - want) < 5 * float(est.stderr) + 1e-3
    assert est.dead.shape == (4000,)
    # The first layer sees inputs of both signs, so it is never the dead one.
    assert int(jnp.min(jnp.where(est.dead, est.first_dead_layer, 99))) >= 1
    assert bool(jnp.all(jnp.where(est.dead, est.first_dead_layer >= 0, est.first_dead_layer == -1)))
    # Width 1: a layer's single unit is dead (fraction 1) or alive (0), and once a layer is dead
    # every later one is too (its input is constant 0, its bias 0).
    frac = est.dead_unit_fraction
    assert frac.shape == (4000, 4)
    assert bool(jnp.all((frac == 0) | (frac == 1)))
    assert bool(jnp.all(jnp.diff(frac, axis=1) >= 0))
    # Each later layer dies with probability 1/2 given a live input: fractions 0, 1/2, 3/4, 7/8.
    per_layer = jnp.mean(frac, axis=0)
    np.testing.assert_allclose(per_layer, [0.0, 0.5, 0.75, 0.875], atol=0.03)


def test_born_dead_wide_shallow_nets_live_and_narrow_deep_nets_die():
    x = jax.random.uniform(jax.random.key(1), (64, 1), minval=-(3**0.5), maxval=3**0.5)
    wide = dg.born_dead_probability(jax.random.key(2), x, [64] * 3, num_nets=200)
    assert float(wide.probability) == 0.0
    kw = {"num_nets": 500, "bias_init": jax.nn.initializers.normal(0.5)}
    shallow = dg.born_dead_probability(jax.random.key(3), x, [3] * 5, **kw)
    deep = dg.born_dead_probability(jax.random.key(3), x, [3] * 40, **kw)
    assert float(deep.probability) > float(shallow.probability) + 0.2


def test_born_dead_is_deterministic_and_validates():
    x = jnp.linspace(-1.0, 1.0, 8)[:, None]
    a = dg.born_dead_probability(jax.random.key(5), x, [2, 2], num_nets=64)
    b = dg.born_dead_probability(jax.random.key(5), x, [2, 2], num_nets=64)
    np.testing.assert_array_equal(a.dead, b.dead)
    with pytest.raises(ValueError, match="batch"):
        dg.born_dead_probability(jax.random.key(0), jnp.ones(3), [2])
    with pytest.raises(ValueError, match="num_nets"):
        dg.born_dead_probability(jax.random.key(0), x, [])


def _first_dead_curve(est, depths):
    f = np.asarray(est.first_dead_layer)
    return np.array([np.mean((f >= 0) & (f < d)) for d in depths])


def test_born_dead_bounds_formula():
    lo, hi = dg.born_dead_bounds(2, 10)
    assert lo == pytest.approx(1 - 2 * 0.75**10 + 0.5**10, rel=1e-15)
    assert hi == pytest.approx(1 - 0.75**10, rel=1e-15)
    for n in (1, 2, 5):
        for h in (1, 7, 50):
            lo, hi = dg.born_dead_bounds(n, h)
            assert 0 <= lo <= hi <= 1
    assert dg.born_dead_bounds(1, 5)[0] == pytest.approx(1 - 2 * 0.5**5)
    with pytest.raises(ValueError, match="width"):
        dg.born_dead_bounds(0, 3)


@pytest.mark.parametrize("width", [2, 3])
def test_born_dead_bias_free_he_within_the_two_ray_bounds(width):
    """Bias-free He nets on a 1-D input with both signs: at every depth 1..20 the estimate lies
    within the exact bounds (widened by 5 standard errors)."""
    n = 4000
    x = jnp.linspace(-(3**0.5), 3**0.5, 9)[:, None]
    est = dg.born_dead_probability(jax.random.key(width), x, [width] * 20, num_nets=n)
    depths = np.arange(1, 21)
    p = _first_dead_curve(est, depths)
    for d, pd in zip(depths, p, strict=True):
        lo, hi = dg.born_dead_bounds(width, int(d))
        se = max(np.sqrt(pd * (1 - pd) / n), 1 / n)
        assert lo - 5 * se <= pd <= hi + 5 * se, (d, pd, lo, hi)
    assert float(est.probability) == pytest.approx(p[-1])


def _simulate_born_dead(rng, x, width, depth, nets, sample_layer):
    """An independent NumPy simulation: dead when a layer's pre-activations are <= 0 on every
    input."""
    dead = 0
    for _ in range(nets):
        h = x
        for _ in range(depth):
            w, b = sample_layer(rng, h.shape[1], width)
            pre = h @ w + b
            if np.all(pre <= 0):
                dead += 1
                break
            h = np.maximum(pre, 0)
    return dead / nets


def _numpy_rai(rng, n_in, n_out):
    v = rng.standard_normal((n_out, n_in + 1)) * 0.6007 / np.sqrt(n_in)
    v[np.arange(n_out), rng.integers(0, n_in + 1, n_out)] = rng.beta(2, 1, n_out)
    return v[:, :n_in].T, v[:, n_in]


def _numpy_he(rng, n_in, n_out):
    return rng.standard_normal((n_in, n_out)) * np.sqrt(2 / n_in), np.zeros(n_out)


@pytest.mark.parametrize(
    ("name", "numpy_layer"), [("he", _numpy_he), ("rai", _numpy_rai)], ids=["he", "rai"]
)
def test_born_dead_matches_an_independent_simulation(name, numpy_layer):
    """Width 2, depth 10 on [-sqrt 3, sqrt 3]: rectax's estimate (He by default, RAI through
    ``init``) against a NumPy simulation, two-proportion z-test. Measured: He 0.91, RAI 0.27."""
    x = np.linspace(-(3**0.5), 3**0.5, 33)[:, None]
    n, width, depth = 3000, 2, 10
    layer_init = None
    if name == "rai":
        layer_init = lambda k, h, out: initializers.rai(k, h.shape[-1], out)
    est = dg.born_dead_probability(
        jax.random.key(7), jnp.asarray(x, jnp.float32), [width] * depth, num_nets=n, init=layer_init
    )
    p_sim = _simulate_born_dead(np.random.default_rng(8), x, width, depth, n, numpy_layer)
    p = float(est.probability)
    pooled = (p + p_sim) / 2
    z = (p - p_sim) / np.sqrt(2 * pooled * (1 - pooled) / n)
    assert abs(z) < 4.892, (p, p_sim)
    assert (0.85 < p < 0.96) if name == "he" else (0.2 < p < 0.34), p


def test_born_dead_data_dependent_init_sees_each_layers_input():
    """``init`` gets the layer's actual input batch: a bias that lifts every pre-activation above
    0 on the batch never dies; one that pushes all below 0 kills layer 0 of every net."""
    x = jax.random.normal(jax.random.key(1), (32, 3))
    he = jax.nn.initializers.he_normal()

    def lift(sign):
        def layer_init(key, h, out):
            w = he(key, (h.shape[-1], out))
            pre = h @ w
            return w, (-pre.min(axis=0) + 0.1) if sign > 0 else (-pre.max(axis=0) - 0.1)

        return layer_init

    alive = dg.born_dead_probability(jax.random.key(2), x, [2] * 30, num_nets=64, init=lift(+1))
    assert float(alive.probability) == 0.0
    assert float(jnp.max(alive.dead_unit_fraction)) == 0.0
    dead = dg.born_dead_probability(jax.random.key(2), x, [2] * 3, num_nets=64, init=lift(-1))
    assert float(dead.probability) == 1.0
    np.testing.assert_array_equal(dead.first_dead_layer, np.zeros(64, np.int32))


def test_born_dead_init_validation():
    x = jnp.ones((4, 2))
    with pytest.raises(ValueError, match="either init"):
        dg.born_dead_probability(
            jax.random.key(0), x, [2], init=lambda k, h, n: (h, h), bias_init=jnp.zeros
        )
    with pytest.raises(ValueError, match="shape"):
        dg.born_dead_probability(
            jax.random.key(0), x, [2], init=lambda k, h, n: (jnp.ones((3, n)), jnp.zeros(n))
        )


# --------------------------------------------------------------------------- readable summaries
def _known_layer(positions: int = 200) -> np.ndarray:
    """Pre-activations with 1 dead unit, 1 rarely firing (once in 200) and 2 firing often."""
    pre = np.full((positions, 4), -1.0, np.float32)
    pre[:, 0] = 1.0  # always fires
    pre[7, 2] = 3.0  # fires at one position: 0.5% < 1%
    pre[::2, 3] = 2.0  # fires at half the positions
    return pre


def test_summary_prints_a_per_layer_table_of_dead_rare_and_sparsity():
    pre = _known_layer()
    zeros = (pre <= 0).mean()  # numpy: relu(pre) == 0
    stats = {"Dense_0": dg.unit_stats(pre), "Dense_1": dg.unit_stats(pre[:, :2])}
    lines = str(dg.summarize(stats)).splitlines()
    assert lines[0].split() == ["layer", "units", "dead", "rarely", "firing", "(<1%)", "sparsity"]
    assert lines[1].split() == ["Dense_0", "4", "1", "(25.0%)", "1", "(25.0%)", f"{zeros:.1%}"]
    zeros_1 = (pre[:, :2] <= 0).mean()
    assert lines[2].split() == ["Dense_1", "2", "1", "(50.0%)", "0", "(0.0%)", f"{zeros_1:.1%}"]
    assert len(lines) == 3
    # One accumulator prints the same row without a layer column; a stricter "rare" counts more.
    assert str(dg.summarize(stats["Dense_0"])).splitlines()[1].split()[:3] == ["4", "1", "(25.0%)"]
    assert dg.summarize(stats).table(rare=0.6).splitlines()[1].split()[4] == "2"


def test_summary_keeps_the_tree_of_stats_summaries():
    stats = {"a": {"unit_stats": (dg.unit_stats(PRE),)}, "b": dg.unit_stats(PRE[:, :1])}
    out = dg.summarize(stats)
    assert isinstance(out["a"]["unit_stats"][0], dg.StatsSummary)
    np.testing.assert_array_equal(out["a"]["unit_stats"][0].dead, [False, True])
    assert sorted(out) == ["a", "b"]
    assert list(out.layers()) == ["a", "b"]  # linen's ("unit_stats", 0) wrapping left out
    # A pytree: through jit and tree.map like the tree it holds.
    jitted = jax.jit(dg.summarize)(stats)
    assert float(jitted["b"].dead_fraction) == float(out["b"].dead_fraction) == 0.0
    fractions = jax.tree.map(
        lambda s: float(s.dead_fraction), out, is_leaf=lambda s: isinstance(s, dg.StatsSummary)
    )
    assert fractions["a"]["unit_stats"][0] == 0.5


def test_summary_of_linen_and_nnx_intermediates_names_the_layers():
    from flax import nnx

    from rectax import linen as rxl
    from rectax import nnx as rxn

    x = jnp.asarray(_known_layer(16)[:, :3])
    lmodel = rxl.MLP(features=(5, 2), record_stats=True)
    params = lmodel.init(jax.random.key(0), x)["params"]
    _, state = lmodel.apply({"params": params}, x, mutable=["intermediates"])
    assert list(dg.summarize(state["intermediates"]).layers()) == ["Activation_0"]
    nmodel = rxn.MLP(3, (5, 2), record_stats=True, rngs=nnx.Rngs(0))
    _, inter = nnx.capture(nmodel, nnx.Intermediate)(x)
    assert list(dg.summarize(inter).layers()) == ["activations/0"]


@pytest.mark.parametrize(
    ("bad", "got"),
    [
        (jnp.ones((3, 2)), "got ArrayImpl"),
        ({"Dense_0": {"__call__": (jnp.ones((3, 2)),)}}, "got ArrayImpl at ['Dense_0']"),
        ({}, "got dict with no UnitStats"),
    ],
)
def test_summarize_names_itself_and_what_it_takes(bad, got):
    with pytest.raises(TypeError, match=r"rectax\.diagnostics\.summarize: state must be") as err:
        dg.summarize(bad)
    assert got in str(err.value)
    assert "UnitStats" in str(err.value)


def test_plot_dead_units_draws_each_layers_dead_fraction_over_steps():
    import matplotlib

    matplotlib.use("Agg")
    pre = _known_layer(20)
    history = [
        {"Dense_0": dg.unit_stats(pre + shift), "Dense_1": dg.unit_stats(pre[:, :2])}
        for shift in (0.0, -1.5, -5.0)
    ]
    ax = dg.plot_dead_units([dg.summarize(h) for h in history[:1]] + history[1:], [0, 10, 20])
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert list(lines) == ["Dense_0", "Dense_1"]
    # Shifted by -1.5, only units 2 and 3 (peaks 3 and 2) still fire; by -5, none does.
    np.testing.assert_allclose(lines["Dense_0"].get_ydata(), [0.25, 0.5, 1.0])
    np.testing.assert_allclose(lines["Dense_1"].get_ydata(), [0.5, 0.5, 0.5])
    np.testing.assert_allclose(lines["Dense_0"].get_xdata(), [0, 10, 20])
    with pytest.raises(ValueError, match="plot_dead_units: every entry"):
        dg.plot_dead_units([history[0], {"other": history[0]["Dense_0"]}])


def test_counts_stay_right_for_a_million_steps_of_a_large_feature_map():
    """10^6 steps of a 128x32x32x64 map (1.3e11 positions, 8.4e12 outputs) without x64.

    int32 counts overflowed: sparsity read -0.4989 after about 16k steps of a 64x16x16x16 map.
    Simulated cheaply: a 2x32x32x64 batch merged with itself 6 times is the summary of a
    128x32x32x64 one; two such summaries are merged alternately 10^6 times in a loop.
    """
    steps = 10**6
    # unit 0 fires rarely (a count far below the total's float32 spacing), unit 1 never
    shift = jnp.zeros(64).at[0].set(-3.0).at[1].set(-jnp.inf).at[2:].set(0.3)
    keys = jax.random.split(jax.random.key(0))
    small = [jax.random.normal(k, (2, 32, 32, 64)) + shift for k in keys]
    per_step = []
    for b in small:
        s = dg.unit_stats(b)
        for _ in range(6):
            s = dg.merge_stats(s, s)
        per_step.append(s)
    assert int(per_step[0].seen) == 128 * 32 * 32
    pre64 = np.concatenate([np.asarray(b, np.float64).reshape(-1, 64) for b in small])
    repeat = 64 * steps // 2  # each small batch stands for this many of its copies
    fires = np.sum(pre64 > 0, axis=0) * repeat
    zeros = np.sum(pre64 <= 0) * repeat

    @jax.jit
    def run(a, b):
        def body(i, state):
            return dg.merge_stats(state, jax.tree.map(lambda u, v: jnp.where(i % 2, v, u), a, b))

        return jax.lax.fori_loop(0, steps, body, dg.init_stats(64))

    state = run(*per_step)
    np.testing.assert_array_equal(
        np.asarray(state.fires_high, np.float64) * 2**32 + np.asarray(state.fires), fires
    )
    exact_zeros = float(state.zeros_high) * 2**32 + float(state.zeros)
    assert exact_zeros == zeros
    out = dg.summarize(state)
    positions = steps * 128 * 32 * 32
    np.testing.assert_allclose(np.asarray(out.fire_rate), fires / positions, rtol=1e-6)
    np.testing.assert_allclose(float(out.sparsity), zeros / (positions * 64), rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(out.dead), np.arange(64) == 1)
    finite = np.isfinite(pre64[:, 0])
    np.testing.assert_allclose(float(out.unit_mean[0]), pre64[finite, 0].mean(), rtol=1e-4)
    # float32 rounding of 10^6 updates: the running variance is within 1.1e-3 (measured); the
    # float32 sum of squared deviations it replaced drifted by 1.3%
    np.testing.assert_allclose(np.asarray(out.unit_var[2:]), pre64[:, 2:].var(axis=0), rtol=3e-3)


def test_an_empty_batch_leaves_the_running_statistics_unchanged():
    state = dg.unit_stats(PRE)
    after = dg.update_stats(state, jnp.zeros((0, 2)))
    for name in ("seen", "fires", "zeros", "mean", "var"):
        np.testing.assert_array_equal(getattr(after, name), getattr(state, name), err_msg=name)
    after = dg.update_stats(after, PRE)
    assert np.all(np.isfinite(np.asarray(dg.summarize(after).unit_mean)))
