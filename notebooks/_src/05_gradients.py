# %% [markdown]
# # 05 · Gradients through depth: sigmoid and tanh vs the ReLU family, and NecroReLU's growth
#
# **Questions.**
# 1. ReLU's derivative is 0 or 1, so — unlike sigmoid (derivative ≤ ¼) and tanh — it does not
#    shrink the backward signal by itself. How do per-layer gradient norms compare in a deep MLP?
# 2. NecroReLU keeps ReLU's forward pass but back-propagates a derivative `a` for x ≤ 0. With He
#    init each layer then multiplies the gradient's second moment by (1 + a²) instead of 1, so
#    relative to ReLU the gradient grows like (1 + a²)^(L/2) over L layers. Does the measurement
#    follow the prediction, and which slope is safe at which depth (growth factor < 10)?

# %%
import functools
import time

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

import rectax as rx
from rectax import initializers as init

plt.rcParams.update({"figure.dpi": 80, "axes.grid": True, "grid.alpha": 0.3})
T0 = time.perf_counter()

# %% [markdown]
# ## 1. Per-layer gradient norms, 30 layers of width 128
#
# `h_l = f(h_{l-1} W_l)`, zero bias, a batch of 64 Gaussian inputs and a Gaussian cotangent at
# the output (the loss is `sum(h_L · c)`). We report ‖∂loss/∂W_l‖ for every layer. Sigmoid and
# tanh get Glorot init (their classic pairing) and, separately, `init.for_activation` (the
# computed forward gain); the ReLU family gets `for_activation` (He for relu, leaky, necro),
# SELU gets LeCun (also what `for_activation` picks). The 30 layers run as a `lax.scan`.

# %%
DEPTH, WIDTH, BATCH = 30, 128, 64
key_w, key_x, key_c = jax.random.split(jax.random.key(0), 3)
x = jax.random.normal(key_x, (BATCH, WIDTH))
cotangent = jax.random.normal(key_c, (BATCH, WIDTH))
shape = (DEPTH, WIDTH, WIDTH)


def weight_grad_norms(f, ws):
    def loss(ws):
        def layer(h, w):
            return f(h @ w), None

        out, _ = jax.lax.scan(layer, x, ws)
        return jnp.sum(out * cotangent)

    g = jax.grad(loss)(ws)
    return jnp.sqrt(jnp.sum(g**2, axis=(1, 2)))


CASES = {
    "sigmoid, Glorot": (jax.nn.sigmoid, init.glorot_normal(batch_axis=0)),
    "sigmoid, for_activation": (jax.nn.sigmoid, init.for_activation(jax.nn.sigmoid, batch_axis=0)),
    "tanh, Glorot": (jnp.tanh, init.glorot_normal(batch_axis=0)),
    "tanh, for_activation": (jnp.tanh, init.for_activation(jnp.tanh, batch_axis=0)),
    "relu, He": (rx.relu, init.for_activation(rx.relu, batch_axis=0)),
    "leaky 0.1, He": (
        functools.partial(rx.leaky_relu, negative_slope=0.1),
        init.for_activation(rx.leaky_relu, negative_slope=0.1, batch_axis=0),
    ),
    "necro 0.1, He": (rx.necro_relu, init.for_activation(rx.necro_relu, batch_axis=0)),
    "selu, LeCun": (rx.selu, init.for_activation(rx.selu, batch_axis=0)),
}
norms = {}
for name, (f, kernel_init) in CASES.items():
    norms[name] = np.asarray(
        jax.jit(functools.partial(weight_grad_norms, f))(kernel_init(key_w, shape))
    )
print(f"{'network':26s} {'‖∇W_1‖':>10s} {'‖∇W_30‖':>10s} {'first/last':>11s} {'per layer':>10s}")
ratio = {}
for name, n in norms.items():
    ratio[name] = n[0] / n[-1]
    print(
        f"{name:26s} {n[0]:10.3e} {n[-1]:10.3e} {ratio[name]:11.2e} "
        f"{ratio[name] ** (1 / (DEPTH - 1)):10.3f}"
    )

# %%
fig, ax = plt.subplots(figsize=(10, 4.5))
for name, n in norms.items():
    ax.semilogy(
        np.arange(1, DEPTH + 1), n, marker=".", label=name, ls="--" if "Glorot" in name else "-"
    )
ax.set_xlabel("layer l (1 = input side)")
ax.set_ylabel("‖∂loss/∂W_l‖")
ax.set_title(f"per-layer weight-gradient norms, {DEPTH} layers, width {WIDTH}")
ax.legend(fontsize=8, ncol=2)
plt.show()

# %% [markdown]
# ## 2. NecroReLU's gradient growth: measured vs (1 + a²)^(k/2)
#
# One 50-layer He-initialised net (width 256, batch 64) per weight seed, 4 seeds. Because
# `necro_relu`'s slope is an ordinary traced argument (and a = 0 *is* ReLU's rule), all slopes
# run in one `vmap`. For every k we take the rms of the gradient w.r.t. the activations k layers
# below the output, divided by the same quantity for ReLU with the same weights; the forward
# passes are identical, so the ratio isolates the surrogate derivative.

# %%
L, W2, SEEDS = 50, 256, 4
SLOPES = jnp.array([0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0])
x2 = jax.random.normal(jax.random.key(1), (BATCH, W2))
c2 = jax.random.normal(jax.random.key(2), (BATCH, W2))


def backward_rms(slope, ws):
    """rms of ∂loss/∂h_l for l = 0 (input) … L (output), loss = sum(h_L · c)."""

    def net(ds):
        def layer(h, wd):
            w, d = wd
            h = rx.necro_relu(h @ w, slope) + d
            return h, None

        out, _ = jax.lax.scan(layer, x2 + ds[0], (ws, ds[1:]))
        return jnp.sum(out * c2)

    g = jax.grad(net)(jnp.zeros((L + 1, BATCH, W2)))
    return jnp.sqrt(jnp.mean(g**2, axis=(1, 2)))


he_stack = jax.vmap(lambda k: init.he_normal(batch_axis=0)(k, (L, W2, W2)))(
    jax.random.split(jax.random.key(3), SEEDS)
)
probe = jax.jit(jax.vmap(jax.vmap(backward_rms, in_axes=(None, 0)), in_axes=(0, None)))
rms = np.asarray(probe(SLOPES, he_stack))  # (slopes, seeds, L + 1)
k = np.arange(L + 1)  # layers between the output and the measured point
growth = (rms / rms[0:1])[:, :, ::-1]  # relative to ReLU, indexed by k
measured = np.exp(np.log(growth).mean(1))  # geometric mean over seeds
predicted = (1 + np.asarray(SLOPES)[:, None] ** 2) ** (k / 2)
print(f"{'slope a':>8s} {'measured @50':>13s} {'predicted @50':>14s} {'ratio':>7s}")
for i, a in enumerate(np.asarray(SLOPES)):
    print(
        f"{a:8.2f} {measured[i, -1]:13.3e} {predicted[i, -1]:14.3e} "
        f"{measured[i, -1] / predicted[i, -1]:7.2f}"
    )

# %%
fig, ax = plt.subplots(figsize=(9, 4.8))
for i, a in enumerate(np.asarray(SLOPES)[1:], start=1):
    line = ax.semilogy(k, measured[i], lw=2, label=f"a = {a:g} measured")[0]
    ax.semilogy(k, predicted[i], "--", color=line.get_color(), lw=1)
ax.axhline(10, color="grey", ls=":", label="growth factor 10")
ax.set_xlabel("layers back from the output, k")
ax.set_ylabel("rms gradient, NecroReLU / ReLU")
ax.set_title("NecroReLU gradient growth (solid: measured, dashed: (1 + a²)^(k/2))")
ax.legend(fontsize=8, ncol=2)
plt.show()

# %% [markdown]
# ## 3. Which slope is safe at which depth?
#
# Solving (1 + a²)^(L/2) < 10 gives a < sqrt(10^(2/L) − 1). We check the bound at three depths by
# measuring the growth at exactly that slope (same nets as above).


# %%
def safe_slope(depth, factor=10.0):
    return float(np.sqrt(factor ** (2 / depth) - 1))


for depth in (5, 10, 20, 50, 100, 200):
    print(
        f"depth {depth:4d}: NecroReLU slope a < {safe_slope(depth):.3f} keeps the growth below 10×"
    )
check_depths = (10, 20, 50)
check_slopes = jnp.array([0.0] + [safe_slope(d) for d in check_depths])
rms_check = np.asarray(probe(check_slopes, he_stack))
growth_check = np.exp(np.log(rms_check / rms_check[0:1]).mean(1))[:, ::-1]
safe_measured = {d: float(growth_check[i + 1, d]) for i, d in enumerate(check_depths)}
for d, g in safe_measured.items():
    print(f"measured growth over {d} layers at a = {safe_slope(d):.3f}: {g:.2f}×")

# %% [markdown]
# ## Conclusion

# %%
per = {n: r ** (1 / (DEPTH - 1)) for n, r in ratio.items()}
print(
    f"* Weight-gradient norm of the first layer divided by the last's ({DEPTH} layers): "
    + "; ".join(f"{n} {ratio[n]:.1e}" for n in norms)
    + "."
)
print(
    f"* Sigmoid with Glorot loses a factor {1 / per['sigmoid, Glorot']:.2f} per layer "
    f"(first layer's gradient {ratio['sigmoid, Glorot']:.1e} of the last's; with the computed "
    "gain still "
    f"{1 / per['sigmoid, for_activation']:.2f}); ReLU with He keeps {per['relu, He']:.3f} per "
    "layer. "
    f"tanh does not vanish here ({per['tanh, Glorot']:.3f} per layer with Glorot): small "
    "signals keep it "
    "in its linear regime, where its derivative is ≈ 1."
)
agreement = measured[1:, -1] / predicted[1:, -1]
print(
    f"* NecroReLU growth over 50 layers follows (1 + a²)^(L/2): measured/predicted is "
    f"{agreement.min():.2f}–{agreement.max():.2f} for a = 0.05 … 1 "
    f"(a = 0.3: {measured[4, -1]:.2f}× measured vs {predicted[4, -1]:.2f}× predicted; a = 1: "
    f"{measured[-1, -1]:.2e}× vs {predicted[-1, -1]:.2e}×)."
)
print(
    "* Safe slopes for < 10× growth: "
    + ", ".join(
        f"depth {d}: a < {safe_slope(d):.2f} (measured {g:.1f}×)" for d, g in safe_measured.items()
    )
    + " (the small excess over 10 is the finite-width drift also visible in the table above)"
    + "; the seed's a = 0.1 stays under 10× up to depth "
    f"{int(np.floor(2 * np.log(10) / np.log(1 + 0.1**2)))}."
)
print(f"(notebook body ran in {time.perf_counter() - T0:.0f} s)")
