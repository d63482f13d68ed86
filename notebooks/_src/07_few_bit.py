# %% [markdown]
# # 07 · Few-bit residuals: do GELU networks train with 1–4 bits per element saved?
#
# `rx.gelu(x, bits=b)` keeps the exact forward pass but saves only a `b`-bit bucket index per
# element for the backward pass, where the derivative becomes a step function with `2**b`
# levels (Few-Bit Backward, Novikov et al., ICML 2023). The paper reports no loss of quality at
# 3–4 bits. **Questions.**
# 1. What does the backward pass see at each width?
# 2. How much training memory does it save (compiled temp memory of the training step)?
# 3. Does training match the exact derivative, on a digits MLP and on a small byte-level
#    transformer, within the spread over seeds? From which width on?

# %%
import inspect
import math
import sys
import textwrap
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax
from sklearn.datasets import load_digits

import rectax as rx

sys.path.insert(
    0, str(next(p for p in (Path.cwd(), Path.cwd().parent) if (p / "benchmarks").is_dir()))
)
from benchmarks import memory  # the repository root, on the path above

plt.rcParams.update({"figure.dpi": 80, "axes.grid": True, "grid.alpha": 0.3})
T0 = time.perf_counter()
VARIANTS = (None, 1, 2, 3, 4)  # None: the exact derivative
LABEL = {None: "exact", 1: "1 bit", 2: "2 bits", 3: "3 bits", 4: "4 bits"}
SEEDS = 3


def gelu(bits):
    """Exact GELU (the erf form, as torch's default) with the given residual width."""
    return lambda x: rx.gelu(x, approximate=False, bits=bits)


def gelu_variant(v):
    """GELU of ``VARIANTS[v]`` for a traced index ``v``: one compiled program trains them all
    (``vmap`` over the index turns the switch into a select; each run sees its own derivative).
    """
    return lambda x: jax.lax.switch(v, [gelu(bits) for bits in VARIANTS], x)


def train_all(run, seed):
    """``run(variant_index, key)`` for every variant and seed, as one jitted double ``vmap``."""
    v = jnp.repeat(jnp.arange(len(VARIANTS)), SEEDS)
    keys = jnp.concatenate([jax.random.split(jax.random.key(seed), SEEDS)] * len(VARIANTS))
    out = jax.jit(jax.vmap(run))(v, keys)
    return {
        bits: jax.tree_util.tree_map(lambda a, i=i: a[i * SEEDS : (i + 1) * SEEDS], out)
        for i, bits in enumerate(VARIANTS)
    }


# %% [markdown]
# ## 1. The derivative the backward pass sees
#
# `jax.grad` of the few-bit activation on a grid: a step function whose levels are the means of
# GELU′ over each interval, with borders that minimise ∫(f′ − q)² on [−100, 100].

# %%
xs = jnp.linspace(-4, 4, 801)
fig, ax = plt.subplots(figsize=(7, 3.5))
for bits in VARIANTS:
    g = jax.vmap(jax.grad(gelu(bits)))(xs)
    ax.plot(xs, g, label=LABEL[bits], lw=2.5 if bits is None else 1.2)
ax.set(xlabel="x", ylabel="derivative seen by jax.grad", title="GELU′ and its few-bit versions")
ax.legend()
plt.show()

# %% [markdown]
# ## 2. Digits MLP (64 → 128 → 128 → 10, GELU), 3 seeds each
#
# scikit-learn's bundled `load_digits` (1797 8×8 images), 1500 for training and 297 held out,
# Adam (learning rate 3e-3), 200 steps of 128-example minibatches. The seeds change the
# initialisation and the minibatches; the three runs of a variant are one `vmap`-ed `lax.scan`.

# %%
digits = load_digits()
features = (digits.data / 16.0).astype(np.float32)
labels = digits.target.astype(np.int32)
order = np.random.default_rng(0).permutation(len(labels))
train, test = order[:1500], order[1500:]
X_train, y_train = jnp.asarray(features[train]), jnp.asarray(labels[train])
X_test, y_test = jnp.asarray(features[test]), jnp.asarray(labels[test])
SIZES = (64, 128, 128, 10)
STEPS, MLP_BATCH = 200, 128
opt = optax.adam(3e-3)


def mlp_init(key):
    keys = jax.random.split(key, len(SIZES) - 1)
    return [
        (jax.random.normal(k, (m, n)) * math.sqrt(2.0 / m), jnp.zeros(n))
        for k, m, n in zip(keys, SIZES[:-1], SIZES[1:], strict=True)
    ]


def mlp_apply(act, params, x):
    for w, b in params[:-1]:
        x = act(x @ w + b)
    w, b = params[-1]
    return x @ w + b


def mlp_loss(act, params, x, y):
    logits = mlp_apply(act, params, x)
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


def train_mlp():
    def run(v, key):
        act = gelu_variant(v)
        k_init, k_data = jax.random.split(key)
        params = mlp_init(k_init)

        def step(carry, k):
            params, state = carry
            i = jax.random.randint(k, (MLP_BATCH,), 0, len(y_train))
            loss, grads = jax.value_and_grad(mlp_loss, argnums=1)(
                act, params, X_train[i], y_train[i]
            )
            updates, state = opt.update(grads, state)
            return (optax.apply_updates(params, updates), state), loss

        keys = jax.random.split(k_data, STEPS)
        (params, _), losses = jax.lax.scan(step, (params, opt.init(params)), keys)
        accuracy = jnp.mean(jnp.argmax(mlp_apply(act, params, X_test), -1) == y_test)
        return losses, mlp_loss(act, params, X_test, y_test), accuracy

    return train_all(run, 0)


def step_temp_mib(loss, *args):
    """Compiled temp memory of jit(grad(loss)) with respect to the first argument."""
    return memory.temp_bytes(jax.grad(loss), *args) / 2**20


mlp_runs = train_mlp()
# Temp memory of one training step (gradient of a 128-example minibatch). Every width packs
# into the same words here, so 1-3 bits compile to the 4-bit figure (tests/test_few_bit.py
# asserts it for the MLP and transformer blocks); compiling each once is enough.
params0 = mlp_init(jax.random.key(0))
mlp_data = (params0, X_train[:MLP_BATCH], y_train[:MLP_BATCH])
mlp_mem = {
    bits: step_temp_mib(lambda p, x, y, b=bits: mlp_loss(gelu(b), p, x, y), *mlp_data)
    for bits in (None, 4)
}
mlp_mem.update({bits: mlp_mem[4] for bits in (1, 2, 3)})
mlp_mem["jax.nn"] = step_temp_mib(
    lambda p, x, y: mlp_loss(lambda v: jax.nn.gelu(v, approximate=False), p, x, y), *mlp_data
)


# %%
def summary(runs, mem, metric_name):
    print(
        f"{'variant':8s} {'final train loss':>20s} {'held-out loss':>18s} "
        f"{metric_name:>18s} {'temp MiB':>9s} {'vs exact':>8s}"
    )
    for bits, (losses, test_loss, metric) in runs.items():
        final = np.asarray(losses[:, -10:].mean(1))
        print(
            f"{LABEL[bits]:8s} {final.mean():12.4f} ± {final.std():.4f} "
            f"{np.mean(test_loss):10.4f} ± {np.std(test_loss):.4f} "
            f"{np.mean(metric):10.4f} ± {np.std(metric):.4f} "
            f"{mem[bits]:9.2f} {mem[bits] / mem[None]:8.2f}"
        )
    print(f"{'jax.nn':8s} {'':>59s} {mem['jax.nn']:9.2f} {mem['jax.nn'] / mem[None]:8.2f}")


def matches_exact(runs, key=1):
    """Widths whose mean held-out loss is within the seed spread of exact's: the difference of
    the means is at most the larger of the two standard deviations over seeds."""
    ref = np.asarray(runs[None][key])
    return [
        b
        for b in VARIANTS[1:]
        if abs(np.mean(runs[b][key]) - ref.mean()) <= max(ref.std(), np.std(runs[b][key]))
    ]


summary(mlp_runs, mlp_mem, "accuracy")
print("within the seed spread of exact (held-out loss):", matches_exact(mlp_runs))

fig, ax = plt.subplots(figsize=(7, 3.5))
for bits, (losses, _, _) in mlp_runs.items():
    m = np.asarray(losses).mean(0)
    ax.plot(m, label=LABEL[bits])
ax.set(yscale="log", xlabel="step", ylabel="train loss (mean of 3 seeds)", title="Digits MLP")
ax.legend()
plt.show()

# %% [markdown]
# ## 3. Byte-level transformer (2 blocks, width 64, 4 heads, GELU FFN 4×), 3 seeds each
#
# Trained on the source of Python's `textwrap` module (it ships with Python), bytes as tokens,
# context 32, batch 16, Adam (3e-3), 200 steps; the last 10% of the text is held out. Pre-norm
# blocks: LayerNorm, causal attention, LayerNorm, `Linear → GELU → Linear`.

# %%
text = np.frombuffer(inspect.getsource(textwrap).encode(), np.uint8).astype(np.int32)
split = int(0.9 * len(text))
text_train, text_test = jnp.asarray(text[:split]), jnp.asarray(text[split:])
CTX, BATCH, WIDTH, HEADS, LAYERS, TF_STEPS = 32, 16, 64, 4, 2, 200
print(f"{len(text)} bytes of textwrap.py; {split} for training")


def layer_norm(x):
    mean = x.mean(-1, keepdims=True)
    return (x - mean) * jax.lax.rsqrt(((x - mean) ** 2).mean(-1, keepdims=True) + 1e-5)


def tf_init(key):
    k_emb, k_pos, k_out, *k_layers = jax.random.split(key, 3 + LAYERS)
    blocks = []
    for k in k_layers:
        k1, k2, k3, k4 = jax.random.split(k, 4)
        blocks.append(
            {
                "qkv": jax.random.normal(k1, (WIDTH, 3 * WIDTH)) / math.sqrt(WIDTH),
                "proj": jax.random.normal(k2, (WIDTH, WIDTH)) / math.sqrt(WIDTH),
                "up": jax.random.normal(k3, (WIDTH, 4 * WIDTH)) / math.sqrt(WIDTH),
                "down": jax.random.normal(k4, (4 * WIDTH, WIDTH)) / math.sqrt(4 * WIDTH),
            }
        )
    return {
        "emb": jax.random.normal(k_emb, (256, WIDTH)) * 0.02,
        "pos": jax.random.normal(k_pos, (CTX, WIDTH)) * 0.02,
        "out": jax.random.normal(k_out, (WIDTH, 256)) / math.sqrt(WIDTH),
        "blocks": blocks,
    }


def tf_apply(act, params, tokens):
    b, t = tokens.shape
    x = params["emb"][tokens] + params["pos"][:t]
    causal = jnp.tril(jnp.ones((t, t), bool))
    for p in params["blocks"]:
        q, k, v = jnp.split((layer_norm(x) @ p["qkv"]).reshape(b, t, HEADS, -1), 3, -1)
        s = jnp.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(q.shape[-1])
        a = jax.nn.softmax(jnp.where(causal, s, -1e9), -1)
        x = x + jnp.einsum("bhqk,bkhd->bqhd", a, v).reshape(b, t, WIDTH) @ p["proj"]
        x = x + act(layer_norm(x) @ p["up"]) @ p["down"]
    return layer_norm(x) @ params["out"]


def tf_loss(act, params, tokens):
    logits = tf_apply(act, params, tokens[:, :-1])
    return optax.softmax_cross_entropy_with_integer_labels(logits, tokens[:, 1:]).mean()


def batch(data, key, n=BATCH):
    start = jax.random.randint(key, (n,), 0, len(data) - CTX - 1)
    return jax.vmap(lambda s: jax.lax.dynamic_slice(data, (s,), (CTX + 1,)))(start)


def train_tf():
    eval_tokens = batch(text_test, jax.random.key(99), 256)

    def run(v, key):
        act = gelu_variant(v)
        k_init, k_data = jax.random.split(key)
        params = tf_init(k_init)

        def step(carry, k):
            params, state = carry
            loss, grads = jax.value_and_grad(tf_loss, argnums=1)(act, params, batch(text_train, k))
            updates, state = opt.update(grads, state)
            return (optax.apply_updates(params, updates), state), loss

        keys = jax.random.split(k_data, TF_STEPS)
        (params, _), losses = jax.lax.scan(step, (params, opt.init(params)), keys)
        test_loss = tf_loss(act, params, eval_tokens)
        return losses, test_loss, test_loss / math.log(2)  # bits per byte

    return train_all(run, 1)


tf_runs = train_tf()
p0, tokens0 = jax.jit(tf_init)(jax.random.key(0)), batch(text_train, jax.random.key(0))
tf_mem = {
    bits: step_temp_mib(lambda p, t, b=bits: tf_loss(gelu(b), p, t), p0, tokens0)
    for bits in (None, 4)
}
tf_mem.update({bits: tf_mem[4] for bits in (1, 2, 3)})
tf_mem["jax.nn"] = step_temp_mib(
    lambda p, t: tf_loss(lambda v: jax.nn.gelu(v, approximate=False), p, t), p0, tokens0
)

# %%
summary(tf_runs, tf_mem, "bits/byte")
print("within the seed spread of exact (held-out loss):", matches_exact(tf_runs))
fig, ax = plt.subplots(figsize=(7, 3.5))
for bits, (losses, _, _) in tf_runs.items():
    m = np.convolve(np.asarray(losses).mean(0), np.ones(10) / 10, mode="valid")
    ax.plot(m, label=LABEL[bits])
ax.set(
    xlabel="step",
    ylabel="train loss (mean of 3 seeds, 10-step average)",
    title="Byte-level transformer on textwrap.py",
)
ax.legend()
plt.show()
print(f"notebook time {time.perf_counter() - T0:.0f} s")

# %% [markdown]
# ## Conclusions
#
# Numbers from the committed run (XLA:CPU, jax 0.10.2, 3 seeds; "±" is the standard deviation
# over seeds; "within the spread" means the difference of the mean held-out losses is at most
# the larger of the two standard deviations):
#
# - **Digits MLP** (held-out loss 0.0374 ± 0.0018 exact, accuracy 99.2%): 2, 3 and 4 bits are
#   within the spread of exact (0.0369, 0.0373, 0.0373; the same 99.2% accuracy); 1 bit is not
#   (0.0408 ± 0.0024, 99.0%).
# - **Byte-level transformer** (held-out loss 2.254 ± 0.017 nats, 3.25 bits/byte): every width
#   from 1 to 4 bits is within the spread (2.243–2.258). The residual stream carries most of the
#   gradient around the FFN, so even a 1-bit GELU derivative changes little in 200 steps.
# - **Memory**: the step's compiled temp memory drops to 0.78× of rectax's exact GELU for the
#   MLP (0.20 vs 0.25 MiB; `jax.nn.gelu` needs 0.50) and to 0.54× for the transformer (5.9 vs
#   10.9 MiB; `jax.nn.gelu` 8.9); every width costs the same here.
#
# So training matches the exact derivative within the seed spread **from 2 bits on** in both
# models, which confirms Few-Bit Backward's report of no loss at 3–4 bits (and extends it to 2
# here); 1 bit is measurably worse on the MLP. These are small models and short runs (200
# steps); the spread over 3 seeds bounds what they can show.
