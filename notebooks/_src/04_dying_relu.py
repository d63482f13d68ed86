# %% [markdown]
# # 04 · Dying ReLU: born dead, killed by training, and the remedies
#
# **Questions.**
# 1. At initialization, how likely is a deep narrow ReLU net to be *born dead* (some layer
#    outputs 0 for every input, so the net is constant and cannot train)? Lu et al. (2020) prove
#    the probability → 1 with depth at fixed width; the safe depth grows like 2^width, so the
#    width needed grows like log₂(depth).
# 2. During training with a too-high learning rate, what fraction of units dies, and which
#    remedy helps: leaky ReLU, PReLU, NecroReLU (ReLU forward, leaky derivative) with several
#    slopes, a SUGAR-style B-SiLU surrogate derivative, RAI init, LSUV init?
# 3. Do dead units come back? Under NecroReLU a dead unit still receives gradient; under ReLU
#    only its inputs can move.

# %%
import time

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import rectax as rx
from rectax import diagnostics
from rectax import initializers as init
from rectax import linen as rxl

plt.rcParams.update({"figure.dpi": 80, "axes.grid": True, "grid.alpha": 0.3})
T0 = time.perf_counter()

# %% [markdown]
# ## 1. Born dead (Lu et al. 2020)
#
# The setting of the paper: a 1-D input on a uniform grid of 32 points in [−1, 1], fully
# connected ReLU layers of equal width, He-normal weights (symmetric), zero biases. A net is born
# dead when some hidden layer has every unit ≤ 0 on every input. Nets of depth L are prefixes of
# one depth-100 net, so one sample of 500 deep nets per width gives the whole curve
# P(born dead | depth ≤ L) from the index of the first dead layer.
#
# `rectax.diagnostics.born_dead_probability` samples the nets (vmapped, layers scanned) and
# returns, per net, the index of the first dead layer and the dead-unit fraction of every layer.
# For widths 3 and 4 we also sample nets initialised with RAI (`init.rai`: one positive Beta(2, 1)
# entry per row of [W | b]), the remedy Lu et al. propose (they report collapsed deep narrow nets
# going from 93.8% with He to 32.6% with RAI). RAI draws each layer's kernel and bias together,
# so it goes through `born_dead_probability`'s joint `init(key, x, out) -> (W, b)` argument.
# Notebook 08 compares He and RAI at widths 2–5 against the paper's exact bounds.

# %%
GRID = jnp.linspace(-1.0, 1.0, 32)[:, None]
NUM_NETS, MAX_DEPTH = 500, 100
WIDTHS = (2, 3, 4, 6, 8)
kernel_init = init.he_normal()

depths = np.arange(1, MAX_DEPTH + 1)
born_dead, dead_units_frac = {}, {}
for w in WIDTHS:
    est = diagnostics.born_dead_probability(
        jax.random.key(w), GRID, [w] * MAX_DEPTH, num_nets=NUM_NETS, kernel_init=kernel_init
    )
    f = np.asarray(est.first_dead_layer)
    born_dead[w] = np.array([np.mean((f >= 0) & (f < d)) for d in depths])
    dead_units_frac[w] = np.asarray(est.dead_unit_fraction).mean(0)
    print(
        f"width {w}: P(born dead) at depth {MAX_DEPTH} = {float(est.probability):.3f} "
        f"± {float(est.stderr):.3f}"
    )


RAI_WIDTHS = (3, 4)
born_dead_rai = {}
for w in RAI_WIDTHS:
    est = diagnostics.born_dead_probability(
        jax.random.key(100 + w),
        GRID,
        [w] * MAX_DEPTH,
        num_nets=NUM_NETS,
        init=lambda k, x, out: init.rai(k, x.shape[-1], out),
    )
    f = np.asarray(est.first_dead_layer)
    born_dead_rai[w] = np.array([np.mean((f >= 0) & (f < d)) for d in depths])
for w in RAI_WIDTHS:
    print(
        f"width {w}: P(born dead) at depth 10 / 50 / {MAX_DEPTH}: He "
        f"{born_dead[w][9]:.2f} / {born_dead[w][49]:.2f} / {born_dead[w][-1]:.2f}, RAI "
        f"{born_dead_rai[w][9]:.2f} / {born_dead_rai[w][49]:.2f} / {born_dead_rai[w][-1]:.2f}"
    )


def safe_depth(p, level):
    """Largest depth whose born-dead probability is at most ``level``."""
    ok = np.nonzero(p <= level)[0]
    return int(depths[ok[-1]]) if ok.size else 0


for level in (0.1, 0.5):
    print(
        f"safe depth at P(born dead) ≤ {level}: "
        + ", ".join(f"w={w}: {safe_depth(born_dead[w], level)}" for w in WIDTHS)
    )

# %%
fig, (ax0, ax1, ax2) = plt.subplots(1, 3, figsize=(17, 4.2))
for w in WIDTHS:
    ax0.plot(depths, dead_units_frac[w], label=f"width {w}")
    ax1.plot(depths, born_dead[w], label=f"width {w}")
    if w in born_dead_rai:
        ax1.plot(
            depths,
            born_dead_rai[w],
            ":",
            lw=2.5,
            color=ax1.lines[-1].get_color(),
            label=f"width {w}, RAI",
        )
ax0.set_xscale("log")
ax0.set_xlabel("layer index")
ax0.set_ylabel("mean fraction of dead units")
ax0.set_title("dead units per layer at init")
ax1.set_xscale("log")
ax1.set_xlabel("depth L")
ax1.set_ylabel("P(born dead)")
ax1.set_title(f"{NUM_NETS} ReLU nets per width, 1-D input (solid He, dotted RAI)")
ax1.legend(fontsize=8)
safe = {level: np.array([safe_depth(born_dead[w], level) for w in WIDTHS]) for level in (0.1, 0.5)}
reached = safe[0.5] < MAX_DEPTH
w_arr = np.array(WIDTHS)
# per-layer death probability q from P(depth L) = 1 - (1 - q)^L at the half-way depth
q_hat = np.log(2) / safe[0.5][reached]
ax2.semilogy(
    w_arr[reached], safe[0.5][reached], "o", ms=8, label="measured: P(born dead) reaches ½"
)
ax2.semilogy(
    w_arr[~reached],
    safe[0.5][~reached],
    "^",
    ms=8,
    color="C0",
    mfc="none",
    label=f"not reached by depth {MAX_DEPTH}",
)
ax2.semilogy(
    w_arr, np.log(2) * 2.0**w_arr, "--", color="grey", label="ln2 · 2^w (a layer dies w.p. 2^-w)"
)
ax2.set_xlabel("width w")
ax2.set_ylabel("depth (log scale)")
ax2.set_title("depth at which half the nets are born dead")
ax2.legend(fontsize=8)
fig.tight_layout()
plt.show()
print("estimated per-layer death probability q vs 2^-w:")
for w, q in zip(w_arr[reached], q_hat, strict=True):
    print(f"  w={w}: q ≈ {q:.4f}, 2^-w = {2.0**-w:.4f}, ratio {q * 2.0**w:.2f}")
# %% [markdown]
# Reading the right panel: once a layer's inputs are non-negative and (with a 1-D input) nearly
# collinear, each unit is inactive on the whole grid with probability about ½, so a layer of
# width w dies with probability about 2^-w, and P(born dead) ≈ 1 − (1 − 2^-w)^L. The measured
# per-layer probability q is close to 2^-w. So P → 1 with depth at any fixed width (Lu et al.),
# and the depth that is safe grows *exponentially* with width — equivalently, the width needed
# for a given depth grows like log₂(depth) (an earlier docstring said "safe depth grows like
# log(width)", the two the wrong way round). The practical point stands: a symmetric init of a
# deep *narrow* ReLU net is often dead on arrival.
#
# ## 2. Dead units on digits: training with a too-high learning rate
#
# MLP 64 → 4 × 64 → 10 on scikit-learn's digits (standardised), Adam with learning rate 0.02
# (20× the usual 1e-3), batch 128, 450 steps. A unit is dead when its pre-activation is ≤ 0 on
# every one of the 1347 training images (`diagnostics.dead_units`), measured every 30 steps.
#
# Variants (same data order; He-normal kernels and zero biases unless stated):
#
# | variant | forward | derivative for x ≤ 0 | init |
# |---|---|---|---|
# | relu | max(x, 0) | 0 | He |
# | leaky 0.01 | leaky | 0.01 | He |
# | PReLU | learned slope per layer, starts at 0.25 | slope | He |
# | necro a | max(x, 0) | a ∈ {0.05, 0.1, 0.3} | He |
# | B-SiLU surrogate | max(x, 0) | d/dx[(x + 1.67)σ(x) − 0.835] | He |
# | relu + RAI | max(x, 0) | 0 | `init.rai` (hidden layers) |
# | relu + LSUV | max(x, 0) | 0 | `init.lsuv` on a `rectax.linen.MLP` |
#
# Efficiency on a 2-core CPU: relu, the three NecroReLU slopes, RAI and LSUV all use
# `necro_relu` with a traced slope (a = 0 is exactly ReLU's rule: derivative 0 at and below 0),
# so six runs share one compiled, `vmap`ped training program.

# %%
X, y = load_digits(return_X_y=True)
X = (X - X.mean(0)) / (X.std(0) + 1e-6)
Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
Xtr, Xte = jnp.asarray(Xtr, jnp.float32), jnp.asarray(Xte, jnp.float32)
ytr, yte = jnp.asarray(ytr), jnp.asarray(yte)
DIMS = [64, 64, 64, 64, 64, 10]
LR, STEPS, EVERY, BATCH = 0.02, 450, 30, 128
CHUNKS = STEPS // EVERY
print(
    "relu == necro_relu(a=0) in value and gradient:",
    bool(
        jnp.all(
            jax.vmap(jax.grad(rx.relu))(Xtr[0])
            == jax.vmap(jax.grad(lambda v: rx.necro_relu(v, 0.0)))(Xtr[0])
        )
    ),
)


def he_params(key):
    keys = jax.random.split(key, len(DIMS) - 1)
    return [
        {"w": init.he_normal()(k, (a, b)), "b": jnp.zeros(b)}
        for k, a, b in zip(keys, DIMS[:-1], DIMS[1:], strict=True)
    ]


def rai_params(key):
    keys = jax.random.split(key, len(DIMS) - 1)
    layers = []
    for k, a, b in zip(keys[:-1], DIMS[:-2], DIMS[1:-1], strict=True):
        w, bias = init.rai(k, a, b)
        layers.append({"w": w, "b": bias})
    layers.append(
        {"w": init.lecun_normal()(keys[-1], (DIMS[-2], DIMS[-1])), "b": jnp.zeros(DIMS[-1])}
    )
    return layers


def lsuv_params(key):
    model = rxl.MLP(features=tuple(DIMS[1:]), activation=rx.relu)
    variables = model.init(key, Xtr[:1])
    variables, report = init.lsuv(model.apply, variables, Xtr[:512], key=jax.random.fold_in(key, 1))
    print("LSUV:", ", ".join(f"{r.path}: {r.iterations} it., var {r.variance:.2f}" for r in report))
    p = variables["params"]
    return [
        {"w": p[f"Dense_{i}"]["kernel"], "b": p[f"Dense_{i}"]["bias"]} for i in range(len(DIMS) - 1)
    ]


def make_train(act):
    """A jitted trainer for activation ``act(pre, layer_params, extra)``; returns dead masks."""

    def forward(params, extra, x):
        pres = []
        for p in params[:-1]:
            pre = x @ p["w"] + p["b"]
            pres.append(pre)
            x = act(pre, p, extra)
        return x @ params[-1]["w"] + params[-1]["b"], pres

    def loss_fn(params, extra, x, y):
        return optax.softmax_cross_entropy_with_integer_labels(
            forward(params, extra, x)[0], y
        ).mean()

    opt = optax.adam(LR)

    def train(params, extra, key):
        batches = jax.random.randint(key, (CHUNKS, EVERY, BATCH), 0, Xtr.shape[0])

        def step(carry, idx):
            params, state = carry
            g = jax.grad(loss_fn)(params, extra, Xtr[idx], ytr[idx])
            updates, state = opt.update(g, state, params)
            return (optax.apply_updates(params, updates), state), None

        def dead(params):
            return jnp.stack([diagnostics.dead_units(p) for p in forward(params, extra, Xtr)[1]])

        def chunk(carry, idxs):
            carry, _ = jax.lax.scan(step, carry, idxs)
            return carry, dead(carry[0])

        at_init = dead(params)
        (params, _), masks = jax.lax.scan(chunk, (params, opt.init(params)), batches)
        masks = jnp.concatenate([at_init[None], masks])
        acc = jnp.mean(forward(params, extra, Xte)[0].argmax(-1) == yte)
        return masks, acc, params

    return forward, train


def stack(trees):
    return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


# %%
relu_bsilu = rx.surrogate(
    rx.relu, lambda x: jax.nn.sigmoid(x) + (x + 1.67) * jax.nn.sigmoid(x) * (1 - jax.nn.sigmoid(x))
)
fwd_a, train_a = make_train(lambda pre, p, a: rx.necro_relu(pre, a))
fwd_b, train_b = make_train(
    lambda pre, p, learn: rx.prelu(pre, jnp.where(learn, p["a"], jax.lax.stop_gradient(p["a"])))
)
fwd_c, train_c = make_train(lambda pre, p, _: relu_bsilu(pre))
v = Xtr[:4].ravel()
print(
    "prelu with frozen slope 0.01 == leaky_relu(0.01), values and gradients:",
    bool(
        jnp.all(
            jax.vmap(jax.grad(lambda t: rx.prelu(t, 0.01)))(v)
            == jax.vmap(jax.grad(rx.leaky_relu))(v)
        )
        and jnp.all(rx.prelu(v, 0.01) == rx.leaky_relu(v))
    ),
)

key_init, key_data = jax.random.key(10), jax.random.key(11)
he = he_params(key_init)
with_slope = lambda ps, a: [{**p, "a": jnp.float32(a)} for p in ps[:-1]] + [ps[-1]]
group_a = {
    "relu": (he, 0.0),
    "necro a=0.05": (he, 0.05),
    "necro a=0.1": (he, 0.1),
    "necro a=0.3": (he, 0.3),
    "relu + RAI": (rai_params(key_init), 0.0),
    "relu + LSUV": (lsuv_params(key_init), 0.0),
}
group_b = {"leaky 0.01": (with_slope(he, 0.01), False), "PReLU": (with_slope(he, 0.25), True)}

runs = {}
for group, trainer in ((group_a, train_a), (group_b, train_b)):
    params = stack([p for p, _ in group.values()])
    extra = jnp.array([e for _, e in group.values()])
    masks, acc, final = jax.jit(jax.vmap(trainer, in_axes=(0, 0, None)))(params, extra, key_data)
    for i, name in enumerate(group):
        runs[name] = {"masks": np.asarray(masks[i]), "acc": float(acc[i])}
    if group is group_b:
        prelu_slopes = [float(p["a"][1]) for p in final[:-1]]
masks, acc, _ = jax.jit(train_c)(he, 0.0, key_data)
runs["B-SiLU surrogate"] = {"masks": np.asarray(masks), "acc": float(acc)}
print("learned PReLU slopes per layer:", np.round(prelu_slopes, 3))

# %% [markdown]
# ## 3. Results: dead units, accuracy, revived units
#
# A unit is *revived* if it is dead at some checkpoint and fires again at a later one. For leaky
# ReLU and PReLU "dead" only means "never positive on the training set": such a unit still passes
# a scaled signal and gradient, so their counts measure something milder than a dead ReLU.

# %%
summary = {}
print(
    f"{'variant':18s} {'dead @init':>10s} {'dead max':>9s} {'dead @end':>10s} "
    f"{'ever dead':>10s} {'revived':>8s} {'test acc':>9s}"
)
for name, r in runs.items():
    m = r["masks"]  # (checkpoints, layers, units)
    frac = m.mean(axis=(1, 2))
    alive_later = np.flip(np.logical_or.accumulate(np.flip(~m, 0), 0), 0)
    revived = np.any(m[:-1] & alive_later[1:], axis=0)
    summary[name] = {
        "curve": frac,
        "end": frac[-1],
        "max": frac.max(),
        "ever": m.any(0).mean(),
        "revived": int(revived.sum()),
        "acc": r["acc"],
        "revived_by_layer": revived.sum(-1),
    }
    s = summary[name]
    print(
        f"{name:18s} {frac[0]:10.1%} {s['max']:9.1%} {s['end']:10.1%} {s['ever']:10.1%} "
        f"{s['revived']:8d} {s['acc']:9.3f}"
    )

# %%
ckpt = np.arange(0, STEPS + 1, EVERY)
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(15, 4.5), gridspec_kw={"width_ratios": [1.3, 1]})
for name, s in summary.items():
    ax1.plot(ckpt, s["curve"], marker=".", label=name, lw=2.5 if name == "relu" else 1.5)
ax1.set_xlabel("Adam step (lr 0.02)")
ax1.set_ylabel("fraction of dead hidden units")
ax1.set_title("dead units during training (on the full training set)")
ax1.legend(fontsize=8, ncol=2)
names = list(summary)
pos = np.arange(len(names))
ax2.bar(pos - 0.2, [summary[n]["end"] for n in names], 0.4, label="dead at end")
ax2.bar(pos + 0.2, [summary[n]["acc"] for n in names], 0.4, label="test accuracy")
ax2.set_xticks(pos, names, rotation=45, ha="right")
ax2.set_ylim(0, 1)
ax2.legend()
fig.tight_layout()
plt.show()

# %% [markdown]
# Which units die and which come back: each row is one hidden unit that was dead at some
# checkpoint (black = dead on the whole training set), for plain ReLU and NecroReLU a = 0.1.
#
# A dead ReLU unit gets no gradient for its own weights and bias, but in layers 2 and up its
# *inputs* are the outputs of earlier layers, which keep training; when they move, the unit can
# fire again. So "dead ReLU units never recover" holds exactly only in the first hidden layer
# (fixed inputs); the per-layer revival counts below show it.

# %%
fig, axes = plt.subplots(1, 2, figsize=(14, 4.5))
for ax, name in zip(axes, ("relu", "necro a=0.1"), strict=True):
    m = runs[name]["masks"].reshape(len(ckpt), -1)
    ever = m.any(0)
    ax.imshow(
        m[:, ever].T,
        aspect="auto",
        cmap="Greys",
        interpolation="nearest",
        extent=(0, STEPS, int(ever.sum()), 0),
    )
    ax.set_title(f"{name}: {int(ever.sum())} units ever dead, {summary[name]['revived']} revived")
    ax.set_xlabel("Adam step")
    ax.set_ylabel("unit (ever dead)")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Conclusion

# %%
r, best = summary["relu"], min(summary, key=lambda n: summary[n]["end"])
print(
    f"* Born dead: with {MAX_DEPTH} layers, P(born dead) is "
    + ", ".join(f"{born_dead[w][-1]:.2f} (w={w})" for w in WIDTHS)
    + "; the depth at which P reaches ½ is "
    + ", ".join(f"{d} (w={w})" for w, d in zip(w_arr[reached], safe[0.5][reached], strict=True))
    + f" and beyond {MAX_DEPTH} for w ≥ {w_arr[~reached].min() if (~reached).any() else '—'}: "
    "the per-layer death "
    "probability is "
    f"{np.min(q_hat * 2.0 ** w_arr[reached]):.2f}–"
    f"{np.max(q_hat * 2.0 ** w_arr[reached]):.2f} × 2^-w, "
    "so the safe depth grows like 2^w (the width needed like log₂ of the depth)."
)
print(
    "* RAI at init: P(born dead) at depth "
    f"{MAX_DEPTH} is "
    + ", ".join(
        f"{born_dead_rai[w][-1]:.2f} with RAI vs {born_dead[w][-1]:.2f} with He (w={w})"
        for w in RAI_WIDTHS
    )
    + "."
)
print(
    f"* Training with lr {LR}: plain ReLU ends with {r['end']:.1%} dead hidden units "
    f"(test accuracy {r['acc']:.3f}); "
    + "; ".join(f"{n} {s['end']:.1%} ({s['acc']:.3f})" for n, s in summary.items() if n != "relu")
    + f". Fewest dead units at the end: {best}."
)
print(
    f"* Revival: {summary['relu']['revived']} ReLU units came back after being dead "
    f"(per hidden layer {summary['relu']['revived_by_layer'].tolist()}; the first layer's "
    "inputs are "
    "fixed, so a unit dead there can only return through its bias and weights, which get no "
    "gradient); "
    + ", ".join(f"{n}: {summary[n]['revived']}" for n in summary if n.startswith("necro"))
    + " units revived under NecroReLU."
)
print(f"(notebook body ran in {time.perf_counter() - T0:.0f} s)")
