"""rectax.recycle: what recycling changes (and what it must leave alone), for many optimizers.

The set-up kills chosen units with a bias of -1e3, so which units ReDo (tau = 0) must recycle is
known in advance. A firing step (the update, then ``tx.fire``) is compared with the plain
optimizer run on the same params and gradients: recycled units' incoming columns must have their
initializer's distribution (z-tests on the std and mean and a Kolmogorov-Smirnov test at
two-sided alpha = 1e-6, as tests/test_init_stats.py), their outgoing rows must be zero, the
optimizer state's entries of those weights must equal their initial value (zero for every
optimizer here), and every other entry of the parameters and of the state must be bit-identical
to the plain optimizer's.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import scipy.special
import scipy.stats
from flax import nnx
from test_init_stats import failures, statistics

import rectax as rx
from rectax import diagnostics, optim, recycle
from rectax import linen as rxl
from rectax import nnx as rxn

Z_STAR = 4.892  # two-sided alpha = 1e-6
TRUNC = 0.87962566103423978  # std of the standard normal truncated to [-2, 2]
KURTOSIS_TRUNC = -0.6345  # excess kurtosis of the standard normal truncated to [-2, 2]

IN, H1, H2, OUT = 512, 64, 32, 3
DEAD0 = np.arange(64) < 32  # Dense_0 units killed (every other unit)
DEAD1 = np.arange(32) < 8  # Dense_1 units killed
PERIOD = 3

pytestmark = pytest.mark.standard_promotion  # optax's adam/lion promote their scalars


def _optimizers() -> dict[str, optax.GradientTransformation]:
    return {
        "adam": optax.adam(1e-2),
        "adamw": optim.adamw(1e-2, weight_decay=0.1),
        "sgd_momentum": optax.sgd(1e-2, momentum=0.9),
        "lion": optax.lion(1e-3),
        "chain_masked_decay": optax.chain(
            optax.add_decayed_weights(1e-2, mask=optim.weight_decay_mask),
            optax.scale_by_adam(),
            optax.scale(-1e-2),
        ),
    }


def _setup() -> tuple[rxl.MLP, dict, jax.Array]:
    model = rxl.MLP((H1, H2, OUT), record_stats=True)
    x = jax.random.normal(jax.random.key(1), (32, IN))
    params = model.init(jax.random.key(0), x)["params"]
    params["Dense_0"]["bias"] = jnp.where(jnp.asarray(DEAD0), -1e3, 0.0)
    params["Dense_1"]["bias"] = jnp.where(jnp.asarray(DEAD1), -1e3, 0.0)
    return model, params, x


def _grads(model: rxl.MLP, params: dict, x: jax.Array) -> tuple[dict, dict]:
    def loss(p: dict) -> tuple[jax.Array, dict]:
        y, inter = model.apply({"params": p}, x, mutable=["intermediates"])
        return jnp.mean(jnp.square(y - 1.0)), inter["intermediates"]

    return jax.grad(loss, has_aux=True)(params)


def _changed_masks() -> dict[tuple[str, str], np.ndarray]:
    """Per parameter, the entries recycling may change (written out, not computed by rectax)."""
    k1 = np.zeros((H1, H2), bool)
    k1[:, DEAD1] = True
    k1[DEAD0, :] = True
    k2 = np.zeros((H2, OUT), bool)
    k2[DEAD1, :] = True
    return {
        ("Dense_0", "kernel"): np.broadcast_to(DEAD0, (IN, H1)),
        ("Dense_0", "bias"): DEAD0,
        ("Dense_1", "kernel"): k1,
        ("Dense_1", "bias"): DEAD1,
        ("Dense_2", "kernel"): k2,
        ("Dense_2", "bias"): np.zeros(OUT, bool),
    }


@functools.cache
def _history(name: str) -> tuple[dict, ...]:
    """``PERIOD`` steps of the recycled optimizer (it fires after the last), each step also with
    the plain one from the same params and state: what each step saw and produced."""
    tx_inner = _optimizers()[name]
    model, params, x = _setup()
    tx = recycle.recycle(tx_inner, recycle.links(model), score=recycle.redo(0.0))
    # Moments start away from their init value everywhere (dead units get no gradient, so
    # their moments would otherwise stay at zero and a reset could not be seen).
    plain_state = jax.tree.map(_away_from_init, tx_inner.init(params))
    state = tx.init(params)._replace(inner=plain_state)
    update = jax.jit(tx.update)
    plain_update = jax.jit(tx_inner.update)
    fire = jax.jit(tx.fire)
    history = []
    for i in range(PERIOD):
        grads, stats = _grads(model, params, x)
        updates, state_new = update(grads, state, params, stats=stats)
        plain_updates, plain_state = plain_update(grads, plain_state, params)
        prev, params, state = params, optax.apply_updates(params, updates), state_new
        if i == PERIOD - 1:
            params, state = fire(params, state)
        history.append(
            {
                "prev": prev,
                "params": params,
                "plain_params": optax.apply_updates(prev, plain_updates),
                "updates": updates,
                "plain_updates": plain_updates,
                "state": state,
                "plain_state": plain_state,
                "fresh_state": tx_inner.init(prev),
            }
        )
    return tuple(history)


def _away_from_init(leaf: jax.Array) -> jax.Array:
    if jnp.issubdtype(leaf.dtype, jnp.floating) and leaf.ndim > 0:
        return jnp.full_like(leaf, 0.5)
    return leaf


def _leaves(tree: object) -> dict[tuple[str, ...], np.ndarray]:
    flat = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {
        tuple(str(getattr(e, "key", getattr(e, "name", getattr(e, "idx", e)))) for e in p): (
            np.asarray(v)
        )
        for p, v in flat
    }


@pytest.mark.parametrize("name", list(_optimizers()))
def test_not_firing_is_bit_identical(name: str) -> None:
    out = _history(name)[PERIOD - 2]  # the step before the firing one
    for a, b in zip(
        jax.tree.leaves(out["updates"]), jax.tree.leaves(out["plain_updates"]), strict=True
    ):
        np.testing.assert_array_equal(a, b)
    inner, plain = _leaves(out["state"].inner), _leaves(out["plain_state"])
    assert inner.keys() == plain.keys()
    for k in inner:
        np.testing.assert_array_equal(inner[k], plain[k], err_msg=str(k))
    assert all(int(r) == 0 for r in out["state"].recycled)


@pytest.mark.parametrize("name", list(_optimizers()))
def test_firing_resets_exactly_the_recycled_entries(name: str) -> None:
    out = _history(name)[-1]
    masks = _changed_masks()
    assert [int(r) for r in out["state"].recycled] == [DEAD0.sum(), DEAD1.sum()]

    # Parameters: outgoing rows zero; everything outside the masks bit-identical to plain.
    new, plain = out["params"], out["plain_params"]
    np.testing.assert_array_equal(np.asarray(new["Dense_1"]["kernel"])[DEAD0], 0.0)
    np.testing.assert_array_equal(np.asarray(new["Dense_2"]["kernel"])[DEAD1], 0.0)
    np.testing.assert_array_equal(np.asarray(new["Dense_0"]["bias"])[DEAD0], 0.0)
    for (layer, leaf), mask in masks.items():
        a, b = np.asarray(new[layer][leaf]), np.asarray(plain[layer][leaf])
        np.testing.assert_array_equal(a[~mask], b[~mask], err_msg=f"{layer}/{leaf}")

    # Optimizer state: entries of recycled weights back at their init value, others untouched.
    inner, plain_state = _leaves(out["state"].inner), _leaves(out["plain_state"])
    fresh = _leaves(out["fresh_state"])
    checked = 0
    for path, value in inner.items():
        for (layer, leaf), mask in masks.items():
            if path[-2:] == (layer, leaf) and value.shape == mask.shape:
                np.testing.assert_array_equal(value[mask], fresh[path][mask], err_msg=str(path))
                np.testing.assert_array_equal(value[~mask], plain_state[path][~mask])
                if mask.any():
                    # the plain optimizer's moments there are not at their init value: the
                    # reset is visible
                    assert not np.array_equal(plain_state[path][mask], fresh[path][mask])
                checked += 1
                break
        else:
            np.testing.assert_array_equal(value, plain_state[path], err_msg=str(path))
    assert checked >= 6  # at least one moment per parameter


def _init_statistics(w: np.ndarray, std: float) -> tuple[float, float, float]:
    """z of the sample std, z of the mean, KS p-value against N(0, (std/TRUNC)^2) on [-2, 2]·."""
    x = np.asarray(w, np.float64).ravel()
    n = x.size
    se_std = std * math.sqrt((KURTOSIS_TRUNC + 2) / (4 * n))
    z_std = (x.std() - std) / se_std
    z_mean = x.mean() / (std / math.sqrt(n))
    sigma, lo = std / TRUNC, scipy.special.ndtr(-2.0)
    cdf = lambda t: np.clip((scipy.special.ndtr(t / sigma) - lo) / (1 - 2 * lo), 0, 1)
    return z_std, z_mean, scipy.stats.kstest(x, cdf).pvalue


def test_recycled_incoming_weights_have_the_initializers_statistics() -> None:
    out = _history("adam")[-1]
    fresh = np.asarray(out["params"]["Dense_0"]["kernel"])[:, DEAD0]  # 512 x 32 samples
    z_std, z_mean, p = _init_statistics(fresh, math.sqrt(2 / IN))  # He: Var = 2 / fan_in
    assert abs(z_std) < Z_STAR, z_std
    assert abs(z_mean) < Z_STAR, z_mean
    assert p > 1e-6, p
    # and not the old (trained) weights
    assert not np.allclose(fresh, np.asarray(out["prev"]["Dense_0"]["kernel"])[:, DEAD0])
    # The check fails on the wrong scale (LeCun's, Var = 1 / fan_in).
    z_std, _, p = _init_statistics(fresh, math.sqrt(1 / IN))
    assert abs(z_std) > Z_STAR
    assert p < 1e-6
    # Dense_1's redrawn columns (rows of live Dense_0 units): fan_in 64.
    k1 = np.asarray(out["params"]["Dense_1"]["kernel"])[~DEAD0][:, DEAD1]
    z_std, z_mean, p = _init_statistics(k1, math.sqrt(2 / H1))
    assert abs(z_std) < Z_STAR, z_std
    assert abs(z_mean) < Z_STAR, z_mean
    assert p > 1e-6, p


class _Marked:
    """A test double of the column protocol: ``columns`` fills column ``j`` of a ``count``-column
    draw with ``1000 * count + j``, the whole draw is -1, so the path taken, the cap and where
    each drawn column lands can be read off the recycled kernel."""

    def __call__(self, key: jax.Array, shape: tuple, dtype: object = None) -> jax.Array:
        return jnp.full(shape, -1.0, dtype)

    def columns(self, key: jax.Array, shape: tuple, count: int, dtype: object = None):
        values = 1000.0 * count + jnp.arange(count, dtype=jnp.float32)
        return jnp.broadcast_to(values, (*shape[:-1], count)).astype(dtype)


def _fire_with_dead(
    dead: np.ndarray, init: object, width: int = 64, fan_in: int = 16, score=None
) -> tuple[np.ndarray, np.ndarray, recycle.RecycleState]:
    """One update and a firing with ``dead`` units of Dense_0 killed; (old, new) Dense_0 kernel."""
    model = rxl.MLP((width, 3), record_stats=True)
    x = jax.random.normal(jax.random.key(1), (32, fan_in))
    params = model.init(jax.random.key(0), x)["params"]
    params["Dense_0"]["bias"] = jnp.where(jnp.asarray(dead), -1e3, 0.0)
    link = recycle.Link("Dense_0/kernel", "Dense_1/kernel", "Activation_0/unit_stats", init=init)
    tx = recycle.recycle(optax.sgd(0.0), [link], score=score or recycle.redo(0.0))
    grads, stats = _grads(model, params, x)
    _, state = tx.update(grads, tx.init(params), params, stats=stats)
    new, state = jax.jit(tx.fire)(params, state)
    old_kernel = np.asarray(params["Dense_0"]["kernel"])
    return old_kernel, np.asarray(new["Dense_0"]["kernel"]), state


@pytest.mark.parametrize(("n_dead", "drawn"), [(0, None), (1, 4), (4, 4), (5, -1), (40, -1)])
def test_redraw_takes_the_column_cap_or_the_whole_kernel(n_dead: int, drawn) -> None:
    """64 units: redo's cap is ceil(64/16) = 4 columns; more selected units draw the whole
    kernel; the k-th selected unit (by index) gets drawn column k."""
    assert recycle.redo(0.0).column_cap(64) == 4
    dead = np.zeros(64, bool)
    dead[np.random.default_rng(n_dead).choice(64, n_dead, replace=False)] = True
    old, new, state = _fire_with_dead(dead, _Marked())
    assert int(state.recycled[0]) == n_dead
    np.testing.assert_array_equal(new[:, ~dead], old[:, ~dead])
    if drawn == -1:
        np.testing.assert_array_equal(new[:, dead], -1.0)
    elif drawn is not None:
        expected = 1000.0 * drawn + np.arange(n_dead)
        np.testing.assert_array_equal(new[:, dead], np.broadcast_to(expected, (16, n_dead)))
    # An initializer without ``columns`` (a plain function) always draws the whole kernel.
    if n_dead:
        _, plain, _ = _fire_with_dead(dead, lambda k, s, d=None: jnp.full(s, -2.0, d))
        np.testing.assert_array_equal(plain[:, dead], -2.0)
        np.testing.assert_array_equal(plain[:, ~dead], old[:, ~dead])


@pytest.mark.parametrize(
    ("dead0", "dead1", "plain"),
    [(5, 1, False), (1, 5, False), (0, 2, False), (6, 0, False), (5, 5, False), (1, 2, True)],
)
def test_links_share_one_cond_and_one_loop_and_each_takes_its_own_path(
    dead0: int, dead1: int, plain: bool
) -> None:
    """Two links (64 units each, cap 4) whose draws share one ``cond`` and one loop: a link
    with more selected units than the cap draws its whole kernel (-1), one with at most the cap
    takes its columns (``1000 * 4 + k``), one with nothing selected is untouched, whatever the
    other takes; a plain-function initializer draws the whole kernel (-2) beside a column-path
    link; the rows of the first link's recycled units stay zero in the second kernel."""
    model = rxl.MLP((64, 64, 3), record_stats=True)
    x = jax.random.normal(jax.random.key(1), (32, 16))
    params = model.init(jax.random.key(0), x)["params"]
    dead = [np.zeros(64, bool), np.zeros(64, bool)]
    dead[0][[5, 17, 40, 41, 42, 43][:dead0]] = True
    dead[1][[0, 63, 7, 8, 9][:dead1]] = True
    for i in range(2):
        params[f"Dense_{i}"]["bias"] = jnp.where(jnp.asarray(dead[i]), -1e3, 0.0)
    inits = [_Marked(), (lambda k, s, d=None: jnp.full(s, -2.0, d)) if plain else _Marked()]
    links = [
        recycle.Link(
            f"Dense_{i}/kernel", f"Dense_{i + 1}/kernel", f"Activation_{i}/unit_stats", init=init
        )
        for i, init in enumerate(inits)
    ]
    tx = recycle.recycle(optax.sgd(0.0), links, score=recycle.redo(0.0))
    grads, stats = _grads(model, params, x)
    _, state = tx.update(grads, tx.init(params), params, stats=stats)
    new, state = jax.jit(tx.fire)(params, state)
    # The selected units (age reset): the killed ones, and a unit the kill starves of input may
    # die with them; each link still takes the path its kills put it on.
    chosen = [np.asarray(a) == 0 for a in state.age]
    for c, d, n in zip(chosen, dead, (dead0, dead1), strict=True):
        assert c[d].all()
        assert (c.sum() > 4) == (n > 4), c.sum()
        assert (c.sum() > 0) == (n > 0), c.sum()
    dead = chosen
    for i in range(2):
        old, k = np.asarray(params[f"Dense_{i}"]["kernel"]), np.asarray(new[f"Dense_{i}"]["kernel"])
        live = ~dead[0] if i else np.ones(k.shape[0], bool)
        np.testing.assert_array_equal(k[live][:, ~dead[i]], old[live][:, ~dead[i]])
        np.testing.assert_array_equal(k[~live], 0.0)
        n, fresh = int(dead[i].sum()), k[live][:, dead[i]]
        if i and plain:
            np.testing.assert_array_equal(fresh, -2.0)
        elif n > 4:
            np.testing.assert_array_equal(fresh, -1.0)
        elif n:
            np.testing.assert_array_equal(
                fresh, np.broadcast_to(4000.0 + np.arange(n), fresh.shape)
            )
    np.testing.assert_array_equal(np.asarray(new["Dense_2"]["kernel"])[dead[1]], 0.0)


def test_redraws_take_each_links_keys_and_draw_the_bias() -> None:
    """Two layers through the column path with a random ``bias_init``: link ``i``'s selected
    units take, in index order, the columns of ``init.columns(k_w, shape, cap)`` and the entries
    of ``bias_init(k_b, (units,))``, with ``(k_w, k_b) = split(fold_in(fold_in(key(seed),
    step), i))`` computed here with jax.random; every other entry is untouched."""
    init, bias_init = rx.initializers.he_normal(), jax.nn.initializers.normal(1.0)
    model = rxl.MLP((64, 64, 3), record_stats=True)
    x = jax.random.normal(jax.random.key(1), (32, 16))
    params = model.init(jax.random.key(0), x)["params"]
    dead = [np.isin(np.arange(64), [5, 17, 40]), np.isin(np.arange(64), [0, 63])]
    for i in range(2):
        params[f"Dense_{i}"]["bias"] = jnp.where(jnp.asarray(dead[i]), -1e3, 0.0)
    links = [
        recycle.Link(
            f"Dense_{i}/kernel",
            f"Dense_{i + 1}/kernel",
            f"Activation_{i}/unit_stats",
            init=init,
            bias_init=bias_init,
        )
        for i in range(2)
    ]
    tx = recycle.recycle(optax.sgd(0.0), links, score=recycle.redo(0.0), seed=5)
    grads, stats = _grads(model, params, x)
    _, state = tx.update(grads, tx.init(params), params, stats=stats)
    new, state = jax.jit(tx.fire)(params, state)
    assert [int(r) for r in state.recycled] == [3, 2]
    step_key = jax.random.fold_in(jax.random.key(5), 1)  # one update before the firing
    keep_rows = [np.ones(16, bool), ~dead[0]]  # layer 0's recycled rows of Dense_1 are zeroed
    for i in range(2):
        k_w, k_b = jax.random.split(jax.random.fold_in(step_key, i))
        kernel, bias = (np.asarray(new[f"Dense_{i}"][n]) for n in ("kernel", "bias"))
        old_kernel, old_bias = (np.asarray(params[f"Dense_{i}"][n]) for n in ("kernel", "bias"))
        columns = np.asarray(init.columns(k_w, kernel.shape, 4, jnp.float32))
        n = int(dead[i].sum())
        rows = keep_rows[i]
        np.testing.assert_array_equal(kernel[rows][:, dead[i]], columns[rows][:, :n])
        np.testing.assert_array_equal(kernel[rows][:, ~dead[i]], old_kernel[rows][:, ~dead[i]])
        drawn = np.asarray(bias_init(k_b, (64,), jnp.float32))
        np.testing.assert_array_equal(bias[dead[i]], drawn[dead[i]])
        np.testing.assert_array_equal(bias[~dead[i]], old_bias[~dead[i]])
    np.testing.assert_array_equal(np.asarray(new["Dense_1"]["kernel"])[dead[0]], 0.0)


@pytest.mark.parametrize("score", ["redo", "continual_backprop"])
def test_firing_runs_no_threefry_loop(score: str) -> None:
    """On CPU jax lowers every threefry hash (fold_in, split, each draw) as a 5-trip loop, which
    XLA:CPU runs op by op; fire's keys and column draws take the unrolled hash instead. ReDo's
    compiled firing keeps one loop, the column-path kernels' whole-kernel fallback (0 trips
    unless more units than the cap are selected; one loop for all kernels), which holds no hash
    loop, and draws all kernels' columns under one ``cond`` (a firing often selects nothing).
    Continual backprop selects units at every firing and never more than its cap: no loop, no
    ``cond``."""
    model, params, x = _setup()
    chosen = {
        "redo": recycle.redo(0.0),
        "continual_backprop": recycle.continual_backprop(1 / 16, 0),
    }
    tx = recycle.recycle(optax.adam(1e-2), recycle.links(model), score=chosen[score])
    grads, stats = _grads(model, params, x)
    _, state = tx.update(grads, tx.init(params), params, stats=stats)
    text = jax.jit(tx.fire).lower(params, state).compile().as_text()
    loops = [line for line in text.splitlines() if re.search(r" while\(", line)]
    assert len(loops) == (score == "redo"), loops  # Dense_0's and Dense_1's fallbacks, one loop
    conds = [line for line in text.splitlines() if re.search(r" conditional\(", line)]
    assert len(conds) == (score == "redo"), conds  # both layers' column draws, one cond or none
    assert not [line for line in loops if re.search("threefry|_uniform|random", line)]


@pytest.mark.parametrize("score", ["redo", "continual_backprop"])
@pytest.mark.parametrize("name", ["adam", "lion"])
def test_firing_first_in_the_next_step_equals_firing_last(score: str, name: str) -> None:
    """``fire`` compiled at the start of the step after a period (before the gradient, params
    and state donated; another program) gives bit for bit the parameters and optimizer
    state of ``fire`` compiled at the end of the period's last step."""
    model, params, x = _setup()
    chosen = {"redo": recycle.redo(0.0), "continual_backprop": recycle.continual_backprop(1 / 8, 0)}
    tx = recycle.recycle(_optimizers()[name], recycle.links(model), score=chosen[score])

    def train(params: dict, state: recycle.RecycleState) -> tuple:
        grads, stats = _grads(model, params, x)
        updates, state = tx.update(grads, state, params, stats=stats)
        return optax.apply_updates(params, updates), state

    @functools.partial(jax.jit, static_argnames="fire", donate_argnums=(0, 1))
    def last(params: dict, state: recycle.RecycleState, fire: bool) -> tuple:
        params, state = train(params, state)
        return tx.fire(params, state) if fire else (params, state)

    @functools.partial(jax.jit, static_argnames="fire", donate_argnums=(0, 1))
    def first(params: dict, state: recycle.RecycleState, fire: bool) -> tuple:
        if fire:
            params, state = tx.fire(params, state)
        return train(params, state)

    a = b = (params, tx.init(params))
    a, b = jax.tree.map(jnp.copy, a), jax.tree.map(jnp.copy, b)
    for i in range(3 * PERIOD):  # fires after steps 3, 6 and 9: "last" ends with a firing
        a = last(*a, fire=(i + 1) % PERIOD == 0)
        b = first(*b, fire=i > 0 and i % PERIOD == 0)
    a = last(*a, fire=False)  # step 10 of each, "first" firing before it
    b = first(*b, fire=True)
    assert [int(r) for r in a[1].recycled] == [int(r) for r in b[1].recycled]
    assert all(int(r) > 0 for r in a[1].recycled)
    for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(u), np.asarray(v))


def test_continual_backprop_without_a_mature_unit_changes_nothing() -> None:
    """Continual backprop draws its columns at every firing (no ``cond``); when no unit is
    mature, nothing is selected and the parameters and the optimizer state are returned as
    they are (the drawn columns go to dropped slots)."""
    model, params, x = _setup()
    tx = recycle.recycle(
        optax.adam(1e-2), recycle.links(model), score=recycle.continual_backprop(1 / 8, 100)
    )
    grads, stats = _grads(model, params, x)
    _, state = tx.update(grads, tx.init(params), params, stats=stats)
    new, after = jax.jit(tx.fire)(params, state)
    assert [int(r) for r in after.recycled] == [0, 0]
    for u, v in zip(jax.tree.leaves(params), jax.tree.leaves(new), strict=True):
        np.testing.assert_array_equal(np.asarray(u), np.asarray(v))
    for u, v in zip(jax.tree.leaves(state.inner), jax.tree.leaves(after.inner), strict=True):
        np.testing.assert_array_equal(np.asarray(u), np.asarray(v))


def test_continual_backprops_cap_is_its_count() -> None:
    assert recycle.continual_backprop(1 / 64).column_cap(256) == 4
    assert recycle.continual_backprop(1.0).column_cap(256) == 0  # the whole kernel
    assert recycle.grama(0.1).column_cap(1000) == 63
    dead = np.arange(64) < 30
    _, new, state = _fire_with_dead(
        dead, _Marked(), score=recycle.continual_backprop(4 / 64, maturity=0)
    )
    assert int(state.recycled[0]) == 4  # the 4 lowest-utility units: dead ones, ties by index
    np.testing.assert_array_equal(new[:, :4], np.broadcast_to(4000.0 + np.arange(4), (16, 4)))


@pytest.mark.parametrize(
    ("name", "init", "distribution", "scale", "mode"),
    [
        ("glorot_normal", rx.initializers.glorot_normal(), "truncated_normal", 1.0, "fan_avg"),
        ("glorot_uniform", rx.initializers.glorot_uniform(), "uniform", 1.0, "fan_avg"),
        ("he_normal", rx.initializers.he_normal(distribution="normal"), "normal", 2.0, "fan_in"),
        ("he_uniform", rx.initializers.he_uniform(), "uniform", 2.0, "fan_in"),
    ],
)
def test_column_path_redraws_have_the_whole_kernels_statistics(
    name: str, init, distribution: str, scale: float, mode: str
) -> None:
    """8 of 128 units recycled through the column path (cap 8) of a (384, 128) kernel: the
    redrawn entries have the std of the whole
    (384, 128) kernel's fans (z-tests on std and mean, KS, support at alpha = 1e-6, as
    tests/test_init_stats.py), not that of a (384, 8) column block's."""
    fan_in, width, n_dead = 384, 128, 8
    assert recycle.redo(0.0).column_cap(width) == 8
    dead = np.zeros(width, bool)
    dead[::10][:n_dead] = True
    old, new, _ = _fire_with_dead(dead, init, width=width, fan_in=fan_in)
    fans = {"fan_in": fan_in, "fan_avg": (fan_in + width) / 2}
    std = math.sqrt(scale / fans[mode])
    fresh = new[:, dead]
    assert not failures(statistics(fresh, distribution, std)), statistics(fresh, distribution, std)
    np.testing.assert_array_equal(new[:, ~dead], old[:, ~dead])
    if mode == "fan_avg":  # the column block's own fan average would be 1.14x the std
        block = math.sqrt(scale / ((fan_in + 8) / 2))
        assert "std" in failures(statistics(fresh, distribution, block, ks=False))


def test_column_redraws_of_two_layers_keep_the_recycled_rows_zero() -> None:
    """Both layers recycle units through the column path: each layer's redrawn entries have its
    own kernel's std (fans (384, 128) and (128, 128)), the two are different numbers, and the
    rows of the first layer's recycled units in the second kernel are zero, in its redrawn
    columns too (the rows are zeroed after the redraw)."""
    init = rx.initializers.glorot_normal()
    model = rxl.MLP((128, 128, 3), record_stats=True)
    x = jax.random.normal(jax.random.key(1), (32, 384))
    params = model.init(jax.random.key(0), x)["params"]
    dead = [np.zeros(128, bool), np.zeros(128, bool)]
    dead[0][::16] = True  # 8 units each: redo's cap, ceil(128 / 16)
    dead[1][3::16] = True
    dead[1][0] = True  # unit 0 of layer 1: its column meets layer 0's recycled row 0
    dead[1][3] = False
    for i in range(2):
        params[f"Dense_{i}"]["bias"] = jnp.where(jnp.asarray(dead[i]), -1e3, 0.0)
    links = [
        recycle.Link(f"Dense_{i}/kernel", f"Dense_{i + 1}/kernel", f"Activation_{i}/unit_stats")
        for i in range(2)
    ]
    links = [dataclasses.replace(link, init=init) for link in links]
    tx = recycle.recycle(optax.sgd(0.0), links, score=recycle.redo(0.0))
    grads, stats = _grads(model, params, x)
    _, state = tx.update(grads, tx.init(params), params, stats=stats)
    new, state = jax.jit(tx.fire)(params, state)
    assert [int(r) for r in state.recycled] == [8, 8]
    k0, k1 = (np.asarray(new[f"Dense_{i}"]["kernel"]) for i in range(2))
    old1 = np.asarray(params["Dense_1"]["kernel"])
    fresh0 = k0[:, dead[0]]
    fresh1 = k1[~dead[0]][:, dead[1]]
    for fresh, fans in ((fresh0, (384, 128)), (fresh1, (128, 128))):
        std = math.sqrt(2 / sum(fans))
        found = statistics(fresh, "truncated_normal", std)
        assert not failures(found), found
    assert not np.isin(fresh0[:, :4].ravel(), k1[:, dead[1]].ravel()).any()
    np.testing.assert_array_equal(k1[dead[0]], 0.0)
    np.testing.assert_array_equal(k1[~dead[0]][:, ~dead[1]], old1[~dead[0]][:, ~dead[1]])


def test_redo_keeps_the_function_of_the_network() -> None:
    """Outgoing rows are zeroed, so recycling dead units leaves the outputs as the plain step."""
    model, _, x = _setup()
    out = _history("sgd_momentum")[-1]
    y = model.apply({"params": out["params"]}, x)
    y_plain = model.apply({"params": out["plain_params"]}, x)
    np.testing.assert_allclose(y, y_plain, rtol=1e-5, atol=1e-6)


@nnx.jit
def _nnx_step(model: rxn.MLP, optimizer: nnx.Optimizer, x: jax.Array) -> None:
    def loss(m: rxn.MLP) -> tuple[jax.Array, nnx.State]:
        y, inter = nnx.capture(m, nnx.Intermediate)(x)
        return jnp.mean(jnp.square(y - 1.0)), inter

    grads, stats = nnx.grad(loss, has_aux=True)(model)
    optimizer.update(model, grads, stats=stats)


def _nnx_fire_fn(model: rxn.MLP, optimizer: nnx.Optimizer) -> None:
    """docs/recycle.md's NNX ``fire``."""
    params = nnx.as_pure(nnx.state(model, nnx.Param))
    params, state = optimizer.tx.fire(params, nnx.as_pure(optimizer.opt_state))
    nnx.update(model, params)
    nnx.update(optimizer.opt_state, nnx.state(state))


_nnx_fire = nnx.jit(_nnx_fire_fn)


@nnx.jit(static_argnames="firing", donate_argnums=(0, 1))
def _nnx_train_step(
    model: rxn.MLP, optimizer: nnx.Optimizer, x: jax.Array, firing: bool = False
) -> None:
    """docs/recycle.md's NNX train step: ``fire`` first on the step after a period."""
    if firing:
        _nnx_fire_fn(model, optimizer)

    def loss(m: rxn.MLP) -> tuple[jax.Array, nnx.State]:
        y, inter = nnx.capture(m, nnx.Intermediate)(x)
        return jnp.mean(jnp.square(y - 1.0)), inter

    grads, stats = nnx.grad(loss, has_aux=True)(model)
    optimizer.update(model, grads, stats=stats)


def test_nnx_optimizer_and_builder_wiring() -> None:
    model = rxn.MLP(16, (32, 32, 2), record_stats=True, rngs=nnx.Rngs(0))
    dead = jnp.arange(32) < 10
    model.layers[0].bias[...] = jnp.where(dead, -1e3, 0.0)
    tx = recycle.recycle(optax.adam(1e-2), recycle.links(model), score=recycle.redo(0.0))
    optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)
    x = jax.random.normal(jax.random.key(2), (16, 16))
    for _ in range(2):
        _nnx_step(model, optimizer, x)
    _nnx_fire(model, optimizer)
    state = optimizer.opt_state
    assert int(state.recycled[0][...]) == 10
    np.testing.assert_array_equal(np.asarray(model.layers[1].kernel[...])[:10], 0.0)
    np.testing.assert_array_equal(np.asarray(model.layers[0].bias[...])[:10], 0.0)
    mu = state.inner[0].mu
    np.testing.assert_array_equal(np.asarray(mu["layers"][1]["kernel"][...])[:10], 0.0)
    np.testing.assert_array_equal(np.asarray(mu["layers"][0]["kernel"][...])[:, :10], 0.0)
    assert np.any(np.asarray(mu["layers"][1]["kernel"][...])[10:] != 0.0)  # the rest trained


def test_nnx_train_step_firing_first_equals_a_separate_firing() -> None:
    """NNX: ``fire`` called first inside the donated ``nnx.jit`` train step on the step after
    each period gives bitwise the model and optimizer of a separate jitted ``fire`` after the
    period's last step."""

    def build() -> tuple[rxn.MLP, nnx.Optimizer]:
        model = rxn.MLP(16, (32, 32, 2), record_stats=True, rngs=nnx.Rngs(0))
        model.layers[0].bias[...] = jnp.where(jnp.arange(32) < 10, -1e3, 0.0)
        tx = recycle.recycle(optax.adam(1e-2), recycle.links(model), score=recycle.redo(0.0))
        return model, nnx.Optimizer(model, tx, wrt=nnx.Param)

    x = jax.random.normal(jax.random.key(2), (16, 16))
    (model_a, opt_a), (model_b, opt_b) = build(), build()
    for i in range(2 * PERIOD):
        _nnx_step(model_a, opt_a, x)
        if (i + 1) % PERIOD == 0:
            _nnx_fire(model_a, opt_a)
        _nnx_train_step(model_b, opt_b, x, firing=i > 0 and i % PERIOD == 0)
    _nnx_fire(model_b, opt_b)  # the second period's firing, after its last step
    assert int(opt_b.opt_state.recycled[0][...]) == 10
    a, b = nnx.state((model_a, opt_a)), nnx.state((model_b, opt_b))
    for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(u), np.asarray(v))


def test_builder_wiring_with_crelu_clears_both_halves_rows() -> None:
    """rx.crelu doubles the next kernel's rows: unit i feeds rows i and i + units, both zeroed.

    ReDo's activity follows CReLU: units whose pre-activation is exactly 0 are dormant (both
    halves 0), units that never fire (bias -1e3) are not (their relu(-z) half is live), although
    ReLU's activity would call them dead.
    """
    model = rxn.MLP(16, (32, 32, 2), activation=rx.crelu, record_stats=True, rngs=nnx.Rngs(0))
    assert model.layers[1].kernel.shape == (64, 32)
    chosen = jnp.arange(32) < 10
    negative = (jnp.arange(32) >= 10) & (jnp.arange(32) < 20)
    layer = model.layers[0]
    layer.kernel[...] = jnp.where(chosen, 0.0, layer.kernel[...])
    layer.bias[...] = jnp.where(negative, -1e3, 0.0)
    links = recycle.links(model)[:1]
    tx = recycle.recycle(optax.sgd(0.0), links, score=recycle.redo(0.0))
    optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)
    x = jax.random.normal(jax.random.key(2), (16, 16))
    before = np.asarray(model.layers[1].kernel[...])
    _nnx_step(model, optimizer, x)
    _nnx_fire(model, optimizer)
    after = np.asarray(model.layers[1].kernel[...])
    rows = np.concatenate([np.arange(10), 32 + np.arange(10)])
    np.testing.assert_array_equal(after[rows], 0.0)
    rest = np.setdiff1d(np.arange(64), rows)
    np.testing.assert_array_equal(after[rest], before[rest])  # sgd(0): untouched
    assert int(optimizer.opt_state.recycled[0][...]) == 10


def test_linen_cnn_wiring_conv_to_conv_to_head() -> None:
    model = rxl.CNN(features=(4, 6), dense=(8,), num_classes=2, record_stats=True)
    links = recycle.links(model)
    assert [(link.incoming, link.outgoing) for link in links] == [
        ("Conv_0/kernel", "Conv_1/kernel"),
        ("Conv_1/kernel", "head/Dense_0/kernel"),
        ("head/Dense_0/kernel", "head/Dense_1/kernel"),
    ]
    x = jax.random.normal(jax.random.key(3), (4, 8, 8, 1))
    params = model.init(jax.random.key(0), x)["params"]
    params["Conv_1"]["bias"] = jnp.where(jnp.arange(6) == 2, -1e3, 0.0)
    # the conv links only: the head's own dead units would redraw head/Dense_0's columns
    tx = recycle.recycle(optax.sgd(0.0), links[:2], score=recycle.redo(0.0))

    def loss(p: dict) -> tuple[jax.Array, dict]:
        y, inter = model.apply({"params": p}, x, mutable=["intermediates"])
        return jnp.sum(y), inter["intermediates"]

    grads, stats = jax.grad(loss, has_aux=True)(params)
    updates, state = jax.jit(tx.update)(grads, tx.init(params), params, stats=stats)
    new, state = jax.jit(tx.fire)(optax.apply_updates(params, updates), state)
    head = np.asarray(new["head"]["Dense_0"]["kernel"])  # rows: (h, w, c) flattened, 2*2*6
    rows = np.arange(head.shape[0]) % 6 == 2
    np.testing.assert_array_equal(head[rows], 0.0)
    np.testing.assert_array_equal(
        head[~rows], np.asarray(params["head"]["Dense_0"]["kernel"])[~rows]
    )
    assert [int(r) for r in state.recycled] == [0, 1]


def test_continual_backprop_replaces_the_lowest_utility_mature_units() -> None:
    units, rows = 10, 5
    params = {
        "a": {"kernel": jnp.ones((3, units)), "bias": jnp.zeros(units)},
        "b": {
            "kernel": jnp.asarray(
                np.arange(1, units * rows + 1, dtype=np.float32).reshape(units, rows) % 7 + 1.0
            )
        },
    }
    mean = np.linspace(-0.5, 2.0, units).astype(np.float32)
    stats = {
        "act": diagnostics.UnitStats(
            seen=jnp.asarray(8, jnp.uint32),
            fires=jnp.asarray(np.where(mean > 0, 8, 0), jnp.uint32),
            zeros=jnp.asarray(0, jnp.uint32),
            mean=jnp.asarray(mean),
            var=jnp.zeros(units),
            seen_high=jnp.asarray(0, jnp.uint32),
            fires_high=jnp.zeros(units, jnp.uint32),
            zeros_high=jnp.asarray(0, jnp.uint32),
        )
    }
    link = recycle.Link("a/kernel", "b/kernel", stats="act")
    tx = recycle.recycle(optax.sgd(0.0), [link], score=recycle.continual_backprop(0.3, maturity=0))
    grads = jax.tree.map(jnp.zeros_like, params)
    _, state = tx.update(grads, tx.init(params), params, stats=stats)
    _, state = tx.fire(params, state)
    # independent utility: relu(mean) (no variance) times sum |w_out| of the unit's row
    utility = np.maximum(mean, 0) * np.abs(np.asarray(params["b"]["kernel"])).sum(axis=1)
    expected = np.zeros(units, bool)
    expected[np.argsort(utility, kind="stable")[:3]] = True
    assert int(state.recycled[0]) == 3
    np.testing.assert_array_equal(np.asarray(state.age[0]) == 0, expected)


def test_grama_selects_units_without_gradient() -> None:
    model, params, x = _setup()
    tx = recycle.recycle(optax.sgd(1e-2), recycle.links(model), score=recycle.grama(0.0))
    grads, _ = _grads(model, params, x)
    _, state = tx.update(grads, tx.init(params))  # needs no stats, nor params
    _, state = tx.fire(params, state)
    np.testing.assert_array_equal(np.asarray(state.age[0]) == 0, DEAD0)
    np.testing.assert_array_equal(np.asarray(state.age[1]) == 0, DEAD1)


@pytest.mark.parametrize("score", ["redo", "continual_backprop"])
def test_sharded_batch_matches_single_device(score: str) -> None:
    """ReDo recycles more units than its column caps (the whole-kernel draws); continual
    backprop's 4 and 2 units per layer take the column path (its cap is its count)."""
    assert jax.device_count() >= 4, "tests/conftest.py forces 4 host devices"
    model, params, x = _setup()
    scores = {
        "redo": recycle.redo(0.0),
        "continual_backprop": recycle.continual_backprop(1 / 16, 0),
    }
    tx = recycle.recycle(optax.adam(1e-2), recycle.links(model), score=scores[score])

    @functools.partial(jax.jit, static_argnames="fire")
    def step(params: dict, state: recycle.RecycleState, x: jax.Array, fire: bool) -> tuple:
        grads, stats = _grads(model, params, x)
        updates, state = tx.update(grads, state, params, stats=stats)
        params = optax.apply_updates(params, updates)
        return tx.fire(params, state) if fire else (params, state)

    mesh = jax.make_mesh((4,), ("data",), axis_types=(jax.sharding.AxisType.Auto,))
    sharded = jax.device_put(
        x, jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data"))
    )
    results = []
    for batch in (x, sharded):
        p, s = params, tx.init(params)
        for i in range(2):
            p, s = step(p, s, batch, fire=i == 1)
        results.append((p, s))
    (p1, s1), (p4, s4) = results
    counts = {"redo": [DEAD0.sum(), DEAD1.sum()], "continual_backprop": [4, 2]}[score]
    assert [int(r) for r in s4.recycled] == counts
    np.testing.assert_array_equal(np.asarray(s1.age[0]), np.asarray(s4.age[0]))
    # Adam's m / sqrt(v) turns the all-reduce's different summation order on near-zero
    # gradients into differences up to a fraction of one step (lr = 1e-2): atol 1e-3.
    for a, b in zip(jax.tree.leaves(p1), jax.tree.leaves(p4), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-3)


def test_errors_name_what_could_not_be_wired() -> None:
    _, params, _ = _setup()
    bad = recycle.recycle(optax.sgd(1.0), [recycle.Link("Dense_9/kernel", "Dense_1/kernel")])
    with pytest.raises(ValueError, match="incoming kernel 'Dense_9/kernel' found nothing"):
        bad.init(params)
    wrong = recycle.recycle(optax.sgd(1.0), [recycle.Link("Dense_0/kernel", "Dense_2/kernel")])
    with pytest.raises(ValueError, match=r"cannot wire 'Dense_0/kernel'.*multiple of 64"):
        wrong.init(params)
    with pytest.raises(TypeError, match=r"rectax.recycle.links: cannot wire a Linear"):
        recycle.links(nnx.Linear(2, 2, rngs=nnx.Rngs(0)))
    with pytest.raises(ValueError, match=r"rectax\.recycle\.redo: tau"):
        recycle.redo(-1.0)
    tx = recycle.recycle(optax.sgd(1.0), recycle.links(rxl.MLP((H1, H2, OUT))))
    with pytest.raises(ValueError, match=r"pass update\(\.\.\., stats=\.\.\.\)"):
        tx.update(params, tx.init(params), params)


class _Residual(nn.Module):
    """x + fc2(crelu(fc1(x))), then a head: a model no builder wires."""

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        pre = nn.Dense(16, name="fc1")(x)
        self.sow("intermediates", "fc1_stats", diagnostics.unit_stats(pre))
        h = jnp.concatenate([jax.nn.relu(pre), jax.nn.relu(-pre)], axis=-1)  # CReLU: 32 wide
        x = x + nn.Dense(x.shape[-1], name="fc2")(h)
        return nn.Dense(3, name="out")(x)


def test_declared_link_in_a_residual_block_with_crelu_width() -> None:
    model = _Residual()
    x = jax.random.normal(jax.random.key(4), (16, 8))
    params = model.init(jax.random.key(0), x)["params"]
    dead = np.arange(16) < 4
    # CReLU's two halves: a unit is dead when both relu(pre) and relu(-pre) are zero, i.e. pre
    # is exactly 0 everywhere; a zero column and bias make it so.
    params["fc1"]["kernel"] = jnp.where(jnp.asarray(dead), 0.0, params["fc1"]["kernel"])
    params["fc1"]["bias"] = jnp.zeros(16)
    link = recycle.Link("fc1/kernel", "fc2/kernel", stats="fc1_stats/0")
    tx = recycle.recycle(optax.sgd(0.0), [link], score=recycle.grama(0.0))

    def loss(p: dict) -> tuple[jax.Array, dict]:
        y, inter = model.apply({"params": p}, x, mutable=["intermediates"])
        return jnp.sum(y), inter["intermediates"]

    grads, stats = jax.grad(loss, has_aux=True)(params)
    updates, state = tx.update(grads, tx.init(params), params, stats=stats)
    new, state = tx.fire(optax.apply_updates(params, updates), state)
    rows = np.concatenate([dead, dead])  # unit i feeds rows i and i + 16
    fc2 = np.asarray(new["fc2"]["kernel"])
    np.testing.assert_array_equal(fc2[rows], 0.0)
    np.testing.assert_array_equal(fc2[~rows], np.asarray(params["fc2"]["kernel"])[~rows])
    fc1 = np.asarray(new["fc1"]["kernel"])
    assert np.all(fc1[:, dead] != 0.0)  # redrawn
    np.testing.assert_array_equal(fc1[:, ~dead], np.asarray(params["fc1"]["kernel"])[:, ~dead])
    np.testing.assert_array_equal(new["out"]["kernel"], params["out"]["kernel"])  # the stream
    assert int(state.recycled[0]) == 4


@pytest.mark.parametrize("score", ["redo", "continual_backprop", "grama"])
def test_idle_step_compiles_to_the_plain_optimizers_memory(score: str) -> None:
    """``update`` only keeps per-unit books: the compiled step's temporaries are those of the
    same step with the plain optimizer (which, for the statistics-reading scores, returns the
    statistics so that XLA computes them as the recycler does), and its arguments and outputs
    grow by the recycler's per-unit state only."""
    model = rxl.MLP((64, 64, 10), record_stats=True)
    x = jax.random.normal(jax.random.key(0), (32, 16))
    y = jnp.arange(32) % 10
    params = model.init(jax.random.key(1), x)["params"]
    chosen = {
        "redo": recycle.redo(0.1),
        "continual_backprop": recycle.continual_backprop(0.1, 10),
        "grama": recycle.grama(0.1),
    }[score]
    adam = optax.adam(1e-3)
    tx = recycle.recycle(adam, recycle.links(model), score=chosen)
    reads_stats = chosen.needs_stats

    def compiled(recycling: bool) -> tuple[jax.stages.Compiled, object]:
        opt = tx if recycling else adam

        def step(params: dict, state: object) -> tuple:
            def loss(p: dict) -> tuple[jax.Array, dict]:
                logits, inter = model.apply({"params": p}, x, mutable=["intermediates"])
                ce = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
                return ce, inter["intermediates"]

            grads, stats = jax.grad(loss, has_aux=True)(params)
            if recycling:
                updates, state = opt.update(grads, state, params, stats=stats)
                returned = None
            else:
                updates, state = opt.update(grads, state, params)
                returned = stats if reads_stats else None
            return optax.apply_updates(params, updates), state, returned

        state = opt.init(params)
        return jax.jit(step).lower(params, state).compile(), state

    (plain, plain_state), (idle, idle_state) = compiled(False), compiled(True)
    a, b = plain.memory_analysis(), idle.memory_analysis()
    assert a is not None
    assert b is not None
    assert b.temp_size_in_bytes == a.temp_size_in_bytes
    books = sum(v.nbytes for v in jax.tree.leaves(idle_state)) - sum(
        v.nbytes for v in jax.tree.leaves(plain_state)
    )
    # six words per unit (statistics, gradient magnitude, age) and a few per layer, no kernel
    assert books <= 4 * 6 * (64 + 64) + 4 * 6 * 6 * 2
    assert b.argument_size_in_bytes == a.argument_size_in_bytes + books


def _expected_activity(f: object, mu: float, sd: float, fired: bool) -> float:
    """float64 E|f(z)| summed over f's outputs, z ~ N(mu, sd^2) (conditioned on z <= 0 when the
    unit never fired), by adaptive quadrature on each side of 0."""
    import scipy.integrate

    def g(z: float) -> float:
        return float(np.sum(np.abs(np.asarray(f(np.array([z]))))))  # type: ignore[operator]

    density = lambda z: scipy.stats.norm.pdf(z, mu, sd)
    neg = scipy.integrate.quad(lambda z: g(z) * density(z), -np.inf, 0.0, limit=200)[0]
    if not fired:
        return neg / scipy.stats.norm.cdf(0.0, mu, sd)
    return neg + scipy.integrate.quad(lambda z: g(z) * density(z), 0.0, np.inf, limit=200)[0]


REFERENCE_ACTIVATIONS = {  # numpy definitions, independent of rectax
    "relu": lambda z: np.maximum(z, 0.0),
    "leaky_relu": lambda z: np.where(z > 0, z, 0.01 * z),
    "elu": lambda z: np.where(z > 0, z, np.expm1(np.minimum(z, 0.0))),
    "crelu": lambda z: np.concatenate([np.maximum(z, 0.0), np.maximum(-z, 0.0)]),
}


@pytest.mark.parametrize("name", list(REFERENCE_ACTIVATIONS))
def test_activity_follows_the_activation(name: str) -> None:
    mu = np.array([-3.0, -1.0, -0.2, 0.0, 0.5, 2.0, -1.5, 1.0], np.float32)
    sd = np.array([1.0, 0.5, 2.0, 1.0, 0.1, 3.0, 0.5, 0.0], np.float32)
    fired = np.array([True, True, True, True, True, True, False, True])
    stats = diagnostics.UnitStats(
        seen=jnp.asarray(100, jnp.uint32),
        fires=jnp.asarray(np.where(fired, 10, 0), jnp.uint32),
        zeros=jnp.asarray(0, jnp.uint32),
        mean=jnp.asarray(mu),
        var=jnp.asarray(sd**2),
        seen_high=jnp.asarray(0, jnp.uint32),
        fires_high=jnp.zeros(8, jnp.uint32),
        zeros_high=jnp.asarray(0, jnp.uint32),
    )
    f = REFERENCE_ACTIVATIONS[name]
    expected = [
        float(np.sum(np.abs(f(np.array([m]))))) if s == 0 else _expected_activity(f, m, s, fi)
        for m, s, fi in zip(mu.astype(float), sd.astype(float), fired, strict=True)
    ]
    got = recycle.activity(stats, name)
    assert got.dtype == jnp.float32
    # 32 Gauss-Legendre nodes per side: within 1e-3 relative (measured 5.6e-4 for ReLU)
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-7)
    if name == "relu":  # the closed form agrees
        np.testing.assert_allclose(recycle.activity(stats), expected, rtol=1e-5, atol=1e-7)
        assert float(got[6]) == 0.0  # never fired: exactly 0


def test_redo_with_crelu_links_keeps_never_firing_units() -> None:
    """A unit whose pre-activation never exceeds 0 is dead for ReLU, live for CReLU."""
    units = 4
    params = {"a": {"kernel": jnp.ones((3, units))}, "b": {"kernel": jnp.ones((2 * units, 2))}}
    mean = jnp.asarray([-2.0, 1.0, 1.5, 0.8])
    stats = {
        "act": diagnostics.UnitStats(
            seen=jnp.asarray(8, jnp.uint32),
            fires=jnp.asarray([0, 8, 8, 8], jnp.uint32),
            zeros=jnp.asarray(0, jnp.uint32),
            mean=mean,
            var=jnp.full(units, 0.25),
            seen_high=jnp.asarray(0, jnp.uint32),
            fires_high=jnp.zeros(units, jnp.uint32),
            zeros_high=jnp.asarray(0, jnp.uint32),
        )
    }
    grads = jax.tree.map(jnp.zeros_like, params)
    ages = {}
    for activation in ("relu", rx.crelu):
        link = recycle.Link("a/kernel", "b/kernel", stats="act", activation=activation)
        tx = recycle.recycle(optax.sgd(0.0), [link], score=recycle.redo(0.1))
        _, state = tx.update(grads, tx.init(params), stats=stats)
        _, state = tx.fire(params, state)
        ages[str(activation)] = np.asarray(state.age[0])
    np.testing.assert_array_equal(ages["relu"] == 0, [True, False, False, False])
    np.testing.assert_array_equal(ages[str(rx.crelu)] == 0, [False] * units)
