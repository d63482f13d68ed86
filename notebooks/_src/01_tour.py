# %% [markdown]
# # 01 · A tour of the rectax family
#
# **Questions.** What does each rectax activation look like, and what derivative does autodiff
# see (including the surrogate derivatives of NecroReLU and a SUGAR-style B-SiLU ReLU)? Which
# value does each derivative take exactly *at* its kinks, and where does that differ from
# `jax.nn` and torch? How much memory does reverse mode keep per activation in a compiled
# training step, compared with `jax.nn`?
#
# Everything below uses only `rectax`'s public API plus jax/numpy/matplotlib (and, to measure
# memory, the repository's `benchmarks.memory` and `benchmarks.models`), runs on a CPU in well
# under a minute, and is deterministic.

# %%
import functools
import math
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

import rectax as rx

sys.path.insert(
    0, str(next(p for p in (Path.cwd(), Path.cwd().parent) if (p / "benchmarks").is_dir()))
)
from benchmarks import models  # the repository root, on the path above
from benchmarks.memory import temp_bytes as compiled_temp_bytes

plt.rcParams.update({"figure.dpi": 80, "axes.grid": True, "grid.alpha": 0.3})
print("rectax", rx.__version__, "| jax", jax.__version__, "| backend", jax.default_backend())


# %% [markdown]
# ## 1. Every activation and its derivative
#
# The derivative is what `jax.grad` returns, i.e. whatever rule the activation states. For
# `necro_relu` and the B-SiLU surrogate that is *not* the derivative of the forward pass: both
# compute a ReLU forward and a leaky / smooth derivative backward (`rx.surrogate` builds such a
# function from any forward and any derivative). The dashed grey line is the forward pass's true
# derivative estimated by central finite differences, so a gap between the two curves marks a
# surrogate.


# %%
def bsilu_derivative(x):
    """d/dx of the B-SiLU (x + 1.67)·σ(x) − 0.835 (SUGAR, arXiv 2505.22074)."""
    s = jax.nn.sigmoid(x)
    return s + (x + 1.67) * s * (1 - s)


relu_bsilu = rx.surrogate(rx.relu, bsilu_derivative)

ACTIVATIONS = {
    "relu": rx.relu,
    "relu6": rx.relu6,
    "leaky_relu (a=0.1)": functools.partial(rx.leaky_relu, negative_slope=0.1),
    "prelu (a=0.25)": lambda x: rx.prelu(x, 0.25),
    "rrelu (eval: a=(l+u)/2)": rx.rrelu,
    "necro_relu (a=0.1)": rx.necro_relu,
    "relu + B-SiLU surrogate": relu_bsilu,
    "elu": rx.elu,
    "celu (α=0.5)": functools.partial(rx.celu, alpha=0.5),
    "selu": rx.selu,
    "gelu (tanh form)": rx.gelu,
    "silu / swish": rx.silu,
    "softplus": rx.softplus,
    "hard_tanh": rx.hard_tanh,
    "squared_relu": rx.squared_relu,
}

x = jnp.linspace(-4.0, 7.0, 1101)
fig, axes = plt.subplots(3, 5, figsize=(16, 8.5), sharex=True)
for ax, (name, f) in zip(axes.flat, ACTIVATIONS.items(), strict=True):
    y = f(x)
    dy = jax.vmap(jax.grad(f))(x)
    h = 1e-3
    fd = (f(x + h) - f(x - h)) / (2 * h)
    ax.plot(x, y, label="f(x)", lw=2)
    ax.plot(x, dy, label="f′ seen by autodiff", lw=2)
    ax.plot(x, fd, "--", color="grey", lw=1, label="finite difference")
    ax.set_title(name, fontsize=10)
    ax.set_ylim(-2.2, 7.2)
axes[0, 0].legend(fontsize=8, loc="upper left")
fig.suptitle("rectax activations (blue) and the derivative autodiff uses (orange)")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 2. Conventions at the kinks
#
# At a kink the derivative is a *choice*. The table evaluates `jax.grad` of each function at its
# kinks and at a NaN input, next to `jax.nn`'s answer (computed here) and torch's (torch is not
# installed; its column is the value measured with torch 2.13 on CPU and recorded in
# `docs/activations.md`).

# %%
nan = float("nan")
jnn_prelu = lambda x: jnp.where(x >= 0, x, 0.25 * x)  # flax's PReLU formula
KINKS = [
    # (label, rectax fn, jax.nn fn or None, point, torch's documented value)
    ("relu′(0)", rx.relu, jax.nn.relu, 0.0, "0"),
    ("relu′(NaN)", rx.relu, jax.nn.relu, nan, "1"),
    ("relu6′(0)", rx.relu6, jax.nn.relu6, 0.0, "0"),
    ("relu6′(6)", rx.relu6, jax.nn.relu6, 6.0, "0"),
    ("leaky_relu′(0), a=0.01", rx.leaky_relu, jax.nn.leaky_relu, 0.0, "0.01"),
    ("leaky_relu′(NaN)", rx.leaky_relu, jax.nn.leaky_relu, nan, "—"),
    ("prelu′(0), a=0.25", lambda x: rx.prelu(x, 0.25), jnn_prelu, 0.0, "0.25"),
    ("rrelu′(0)", rx.rrelu, None, 0.0, "a"),
    ("necro_relu′(0), a=0.1", rx.necro_relu, None, 0.0, "—"),
    ("necro_relu′(NaN)", rx.necro_relu, None, nan, "—"),
    ("hard_tanh′(−1)", rx.hard_tanh, jax.nn.hard_tanh, -1.0, "0"),
    ("hard_tanh′(1)", rx.hard_tanh, jax.nn.hard_tanh, 1.0, "0"),
    ("elu′(0)", rx.elu, jax.nn.elu, 0.0, "1 (α)"),
    ("celu′(0)", rx.celu, jax.nn.celu, 0.0, "1"),
    ("selu′(0)", rx.selu, jax.nn.selu, 0.0, "1.7581"),
    ("softplus′(0)", rx.softplus, jax.nn.softplus, 0.0, "0.5"),
    ("squared_relu′(0)", rx.squared_relu, None, 0.0, "—"),
    ("gelu′(NaN)", rx.gelu, jax.nn.gelu, nan, "NaN"),
    ("max(x, 0)′(0) via jnp.maximum", lambda x: jnp.maximum(x, 0.0), None, 0.0, "—"),
]


def fmt(v):
    return "NaN" if math.isnan(v) else f"{v:.7g}"


rows = []
for label, f, g, point, torch_value in KINKS:
    ours = float(jax.grad(f)(jnp.float32(point)))
    theirs = fmt(float(jax.grad(g)(jnp.float32(point)))) if g is not None else "—"
    rows.append((label, fmt(ours), theirs, torch_value))
print(f"{'derivative':32s} {'rectax':>10s} {'jax.nn':>10s} {'torch (doc)':>12s}")
for r in rows:
    print(f"{r[0]:32s} {r[1]:>10s} {r[2]:>10s} {r[3]:>12s}")
same = sum(r[1] == r[2] for r in rows if r[2] != "—")
compared = sum(r[2] != "—" for r in rows)
print(f"\nrectax agrees with jax.nn at {same} of {compared} points it can be compared on.")

# %% [markdown]
# The last row is why rectax states every derivative explicitly: a plain `jnp.maximum(x, 0)`
# gets the subgradient 0.5 at 0, which no convention wants.
#
# ## 3. Where rectax and `jax.nn` differ numerically
#
# From `docs/activations.md`: ELU-family gradients computed through `expm1` of the output cancel
# in the negative tail, and GELU is NaN at −inf. Measured here in float32 against the exact
# float64 value.

# %%
for x0 in (-10.0, -17.0, -25.0):
    exact = math.exp(x0)
    ours = float(jax.grad(rx.elu)(jnp.float32(x0)))
    theirs = float(jax.grad(jax.nn.elu)(jnp.float32(x0)))
    print(
        f"elu′({x0:6.1f}): exact {exact:.4e} | rectax {ours:.4e} ({ours / exact - 1:+.1%})"
        f" | jax.nn {theirs:.4e} ({theirs / exact - 1:+.1%})"
    )
print("gelu(−inf):  rectax", float(rx.gelu(-jnp.inf)), "| jax.nn", float(jax.nn.gelu(-jnp.inf)))
g_inf = [float(jax.grad(f)(jnp.float32(jnp.inf))) for f in (rx.gelu, jax.nn.gelu)]
print("gelu′(+inf): rectax", g_inf[0], "| jax.nn", g_inf[1])

# %% [markdown]
# Differences from torch that matter when porting (from `docs/activations.md`; torch is not run
# here): torch's `leaky_relu`, PReLU and RReLU take the negative slope at 0 (rectax and jax: 1);
# torch's `hardtanh` has derivative 0 at ±1 (rectax and jax: 1); torch's ReLU passes gradient 1
# to a NaN input (rectax: 0, while the forward NaN still reaches the loss); torch's GELU defaults
# to the exact erf form (rectax follows jax: `approximate=True`, up to 4.7e-4 apart); torch's
# RReLU default bounds are 1/8 and 1/3 and rectax uses them too.
#
# ## 4. Residual memory of a training step
#
# Reverse mode must keep something per activation to compute its derivative. rectax keeps
# **1 bit per element** for activations whose derivative takes two values (relu, leaky, necro,
# relu6, hard_tanh, prelu, rrelu) and exactly one array for the smooth ones. We compile
# `jit(grad(loss))` of an 8-layer MLP and read XLA's own temporary-buffer size from
# `memory_analysis()` (nothing is executed, so this is cheap) with the benchmark harness's
# `memory.temp_bytes` and `models.mlp_loss`. Batch 1024, width 512, float32.

# %%
BATCH, WIDTH, DEPTH = 1024, 512, 8
SHAPES = models.mlp_shapes(models.MlpSpec(DEPTH, WIDTH, BATCH), jnp.float32, bias=False)


def temp_bytes(act):
    """Compiled temp bytes of jit(grad) of the MLP's mean squared output (never run)."""
    return compiled_temp_bytes(jax.grad(models.mlp_loss(act)), *SHAPES)


PAIRS = {
    "relu": (rx.relu, jax.nn.relu),
    "leaky_relu": (rx.leaky_relu, jax.nn.leaky_relu),
    "necro_relu": (rx.necro_relu, None),
    "relu6": (rx.relu6, jax.nn.relu6),
    "hard_tanh": (rx.hard_tanh, jax.nn.hard_tanh),
    "elu": (rx.elu, jax.nn.elu),
    "selu": (rx.selu, jax.nn.selu),
    "softplus": (rx.softplus, jax.nn.softplus),
    "gelu": (rx.gelu, jax.nn.gelu),
    "silu": (rx.silu, jax.nn.silu),
}
baseline = temp_bytes(jax.nn.relu)
memory = {}
for name, (ours, theirs) in PAIRS.items():
    memory[name] = (temp_bytes(ours), temp_bytes(theirs) if theirs is not None else None)
print(f"jax.nn.relu: {baseline / 2**20:.1f} MiB of temporaries (the reference, 1.00)")
print(f"{'activation':12s} {'rectax MiB':>11s} {'jax.nn MiB':>11s} {'rectax/jax.nn.relu':>19s}")
for name, (a, b) in memory.items():
    b_txt = f"{b / 2**20:11.1f}" if b is not None else f"{'—':>11s}"
    print(f"{name:12s} {a / 2**20:11.1f} {b_txt} {a / baseline:19.3f}")

# %%
names = list(memory)
pos = np.arange(len(names))
fig, ax = plt.subplots(figsize=(11, 3.8))
ax.bar(pos - 0.2, [memory[n][0] / 2**20 for n in names], 0.4, label="rectax")
ax.bar(pos + 0.2, [(memory[n][1] or 0) / 2**20 for n in names], 0.4, label="jax.nn")
ax.set_xticks(pos, names)
ax.set_ylabel("compiled temp MiB")
ax.set_title(f"jit(grad) of a {DEPTH}-layer MLP, batch {BATCH}, width {WIDTH}, float32 (XLA:CPU)")
ax.legend()
plt.show()

# %% [markdown]
# ## Conclusion

# %%
relu_ratio = memory["relu"][0] / memory["relu"][1]
one_bit = [n for n in ("relu", "leaky_relu", "necro_relu", "relu6", "hard_tanh")]
max_one_bit = max(memory[n][0] / baseline for n in one_bit)
smooth_ratios = {n: memory[n][0] / memory[n][1] for n in ("elu", "selu", "gelu", "silu")}
print(
    f"* Kinks: rectax agrees with jax.nn at {same}/{compared} comparable points; it never returns "
    f"the 0.5 that jnp.maximum gives at 0, and NecroReLU's derivative at 0 is its slope."
)
print(
    f"* Residual memory: rectax.relu needs {relu_ratio:.2f}× the temporaries of jax.nn.relu; "
    f"every 1-bit activation ({', '.join(one_bit)}) is at most {max_one_bit:.2f}× jax.nn.relu."
)
print(
    "* Smooth activations, rectax/jax.nn: "
    + ", ".join(f"{n} {r:.2f}×" for n, r in smooth_ratios.items())
)
