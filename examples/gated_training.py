"""Does SwiGLU with a few-bit gate derivative train like jax.nn's SiLU gate?

``python examples/gated_training.py [--steps N --seeds S]`` (2 min 21 s on 2 shared CPU cores): the
training check in docs/activations.md "Gated linear units". A byte-level transformer (2 pre-norm
blocks, width 64, 4 heads, SwiGLU FFN with hidden width 192) on the source of Python's
``textwrap`` module (bytes as tokens, context 32, batch 16, Adam 3e-3; the last 10% held out),
with the FFN's unit ``jax.nn.silu(g) * u`` (the plain expression), ``rx.swiglu`` and
``rx.swiglu(..., bits=4)`` / ``bits=3``, ``--seeds`` seeds each (same seeds, data and
initialisation for every unit); held-out loss mean ± std. The step time of gated units is
measured by ``python -m benchmarks.ffn_stacks --time`` (docs/memory.md).
"""

from __future__ import annotations

import argparse
import functools
import inspect
import math
import statistics
import textwrap
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

import rectax as rx

Array = jax.Array
Unit = Callable[[Array, Array], Array]

UNITS: dict[str, Unit] = {
    "jax.nn.silu(g) * u": lambda g, u: jax.nn.silu(g) * u,
    "rx.swiglu": rx.swiglu,
    "rx.swiglu bits=4": functools.partial(rx.swiglu, bits=4),
    "rx.swiglu bits=3": functools.partial(rx.swiglu, bits=3),
}
CTX, BATCH, WIDTH, HEADS, LAYERS, HIDDEN = 32, 16, 64, 4, 2, 192


def _layer_norm(x: Array) -> Array:
    mean = jnp.mean(x, -1, keepdims=True)
    return (x - mean) * jax.lax.rsqrt(jnp.mean(jnp.square(x - mean), -1, keepdims=True) + 1e-5)


def _init(key: Array) -> dict[str, Any]:
    k_emb, k_pos, k_out, *k_layers = jax.random.split(key, 3 + LAYERS)
    normal = lambda k, shape, fan: jax.random.normal(k, shape) / math.sqrt(fan)
    blocks = []
    for k in k_layers:
        k1, k2, k3, k4, k5 = jax.random.split(k, 5)
        blocks.append(
            {
                "qkv": normal(k1, (WIDTH, 3 * WIDTH), WIDTH),
                "proj": normal(k2, (WIDTH, WIDTH), WIDTH),
                "gate": normal(k3, (WIDTH, HIDDEN), WIDTH),
                "up": normal(k4, (WIDTH, HIDDEN), WIDTH),
                "down": normal(k5, (HIDDEN, WIDTH), HIDDEN),
            }
        )
    return {
        "emb": jax.random.normal(k_emb, (256, WIDTH)) * 0.02,
        "pos": jax.random.normal(k_pos, (CTX, WIDTH)) * 0.02,
        "out": normal(k_out, (WIDTH, 256), WIDTH),
        "blocks": blocks,
    }


def _apply(unit: Unit, params: dict[str, Any], tokens: Array) -> Array:
    b, t = tokens.shape
    x = params["emb"][tokens] + params["pos"][:t]
    causal = jnp.tril(jnp.ones((t, t), bool))
    for p in params["blocks"]:
        q, k, v = jnp.split((_layer_norm(x) @ p["qkv"]).reshape(b, t, HEADS, -1), 3, -1)
        s = jnp.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(q.shape[-1])
        a = jax.nn.softmax(jnp.where(causal, s, -1e9), -1)
        x = x + jnp.einsum("bhqk,bkhd->bqhd", a, v).reshape(b, t, WIDTH) @ p["proj"]
        h = _layer_norm(x)
        x = x + unit(h @ p["gate"], h @ p["up"]) @ p["down"]
    return _layer_norm(x) @ params["out"]


def _loss(unit: Unit, params: dict[str, Any], tokens: Array) -> Array:
    logits = _apply(unit, params, tokens[:, :-1])
    return optax.softmax_cross_entropy_with_integer_labels(logits, tokens[:, 1:]).mean()


def _batch(data: Array, key: Array, n: int = BATCH) -> Array:
    start = jax.random.randint(key, (n,), 0, len(data) - CTX - 1)
    return jax.vmap(lambda s: jax.lax.dynamic_slice(data, (s,), (CTX + 1,)))(start)


def train(unit: Unit, seed: int, steps: int) -> float:
    """Held-out loss (nats per byte) after ``steps`` Adam steps from ``seed``."""
    text = np.frombuffer(inspect.getsource(textwrap).encode(), np.uint8).astype(np.int32)
    split = int(0.9 * len(text))
    train_text, test_text = jnp.asarray(text[:split]), jnp.asarray(text[split:])
    opt = optax.adam(3e-3)
    k_init, k_data = jax.random.split(jax.random.key(seed))
    params = _init(k_init)

    @jax.jit
    def run(params: dict[str, Any]) -> Array:
        def step(carry: Any, k: Array) -> tuple[Any, Array]:
            params, state = carry
            loss, grads = jax.value_and_grad(_loss, argnums=1)(unit, params, _batch(train_text, k))
            updates, state = opt.update(grads, state)
            return (optax.apply_updates(params, updates), state), loss

        (params, _), _ = jax.lax.scan(
            step, (params, opt.init(params)), jax.random.split(k_data, steps)
        )
        return _loss(unit, params, _batch(test_text, jax.random.key(99), 256))

    return float(run(params))


def training(seeds: int, steps: int) -> None:
    print(f"## training: {seeds} seeds x {steps} steps, held-out loss (nats/byte), mean ± std")
    results = {name: [train(unit, s, steps) for s in range(seeds)] for name, unit in UNITS.items()}
    base = results["jax.nn.silu(g) * u"]
    for name, losses in results.items():
        mean, std = statistics.mean(losses), statistics.stdev(losses)
        spread = max(std, statistics.stdev(base))
        within = abs(mean - statistics.mean(base)) <= spread
        runs = ", ".join(f"{v:.4f}" for v in losses)
        print(f"| {name} | {mean:.4f} ± {std:.4f} | {runs} | within spread: {within} |", flush=True)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args(argv)
    training(args.seeds, args.steps)


if __name__ == "__main__":
    main()
