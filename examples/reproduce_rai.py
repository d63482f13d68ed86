"""Reproduces Lu et al.'s headline: randomized asymmetric initialization (RAI) keeps deep narrow
ReLU nets from collapsing to a constant function.

Lu, Shin, Su & Karniadakis, "Dying ReLU and Initialization: Theory and Numerical Examples",
CiCP 28 (2020), arXiv:1903.06733, report the fraction of 1000 trained nets (width 2, depth 10)
that collapse: He init 93.8% -> RAI 32.6% for f(x) = |x|, 91.9% -> 29.2% for f(x) = x sin(5x),
and 76.8% -> 9.6% for a multi-dimensional target.

Every net of one (target, init) pair is trained at once: the training step of one net is
vmapped over the nets and scanned over the steps, one compiled program per pair.

Setup (rectax's choices where the paper's details were not at hand; see ``docs/notebooks.md``):
hidden ReLU layers of width 2 (depth = number of hidden layers), a linear output layer; inputs
uniform on [-sqrt 3, sqrt 3]^d (unit variance), ``--points`` random training points; full-batch
Adam (learning rate ``--lr``) on the mean squared error for ``--steps`` steps. He: weights
N(0, 2/fan_in), zero biases. RAI: ``rectax.initializers.rai`` for every layer. A trained net has
*collapsed* when its output on a 1000-point test set is constant: its standard deviation is below
1% of the target's (per output). A net is *born dead* when some hidden layer is 0 on every
training input at initialization (``rectax.diagnostics.born_dead_probability``'s criterion);
born-dead nets stay collapsed, since no gradient reaches the dead layer's parameters.

Usage::

  python examples/reproduce_rai.py                  # 1000 nets per cell, the full table
  python examples/reproduce_rai.py --nets 100 --steps 2000   # a quick look

Prints a table: for each target and init, born dead, collapsed after training (with a 95% Wilson
interval), the paper's figure, the collapsed fraction after every ``--chunk`` steps and the
seconds the cell took. The full run takes about 14 minutes on a shared 2-core CPU (828 s
measured); the results are in ``docs/notebooks.md`` (notebook 08).
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

import rectax as rx
from rectax import initializers as init

Array = jax.Array
Params = list[tuple[Array, Array]]

SQRT3 = math.sqrt(3.0)


class Target(NamedTuple):
    name: str
    fn: Callable[[Array], Array]  # (points, d_in) -> (points, d_out)
    d_in: int
    d_out: int
    paper_he: float
    paper_rai: float


TARGETS = (
    Target("|x|", lambda x: jnp.abs(x), 1, 1, 0.938, 0.326),
    Target("x sin(5x)", lambda x: x * jnp.sin(5 * x), 1, 1, 0.919, 0.292),
    Target(
        "(|x1+x2|, |x1-x2|)",
        lambda x: jnp.abs(jnp.stack([x[:, 0] + x[:, 1], x[:, 0] - x[:, 1]], axis=-1)),
        2,
        2,
        0.768,
        0.096,
    ),
)


def he_layer(key: Array, d_in: int, d_out: int) -> tuple[Array, Array]:
    return init.he_normal(distribution="normal")(key, (d_in, d_out)), jnp.zeros(d_out)


def rai_layer(key: Array, d_in: int, d_out: int) -> tuple[Array, Array]:
    return init.rai(key, d_in, d_out)


INITS = {"He": he_layer, "RAI": rai_layer}


def init_net(key: Array, dims: list[int], layer: Callable[..., tuple[Array, Array]]) -> Params:
    keys = jax.random.split(key, len(dims) - 1)
    return [layer(k, a, b) for k, a, b in zip(keys, dims[:-1], dims[1:], strict=True)]


def forward(params: Params, x: Array) -> tuple[Array, Array]:
    """The output and whether some hidden layer is 0 on every input (the net is dead)."""
    h, dead = x, jnp.zeros((), bool)
    for w, b in params[:-1]:
        pre = h @ w + b
        dead = dead | jnp.all(pre <= 0)
        h = rx.relu(pre)
    w, b = params[-1]
    return h @ w + b, dead


class Result(NamedTuple):
    born_dead: np.ndarray  # (nets,) bool: some hidden layer 0 on every training input at init
    collapsed: np.ndarray  # (nets,) bool: constant function after training
    dead_at: np.ndarray  # (checkpoints,) fraction of all nets collapsed after each chunk
    seconds: float


def run(
    target: Target,
    layer: Callable[..., tuple[Array, Array]],
    *,
    nets: int,
    width: int = 2,
    depth: int = 10,
    points: int = 200,
    steps: int = 2000,
    lr: float = 1e-3,
    chunk: int = 250,
    seed: int = 0,
) -> Result:
    """Initialises ``nets`` nets and trains the ones not born dead (a born-dead net gets zero
    gradient in the dead layer and every layer before it, and Adam moves no parameter with a
    zero gradient, so it stays collapsed: training it would change nothing).

    A net has collapsed when some hidden layer is 0 on every point of a 1000-point test set:
    then its output is exactly constant.
    """
    start = time.perf_counter()
    k_data, k_test, k_nets = jax.random.split(jax.random.key(seed), 3)
    x = jax.random.uniform(k_data, (points, target.d_in), minval=-SQRT3, maxval=SQRT3)
    x_test = jax.random.uniform(k_test, (1000, target.d_in), minval=-SQRT3, maxval=SQRT3)
    y = target.fn(x)
    dims = [target.d_in, *([width] * depth), target.d_out]
    opt = optax.adam(lr)
    keys = jax.random.split(k_nets, nets)
    born_dead = np.asarray(
        jax.jit(jax.vmap(lambda k: forward(init_net(k, dims, layer), x)[1]))(keys)
    )

    def loss(params: Params) -> Array:
        return jnp.mean(jnp.square(forward(params, x)[0] - y))

    def train_one(key: Array) -> Array:
        params = init_net(key, dims, layer)

        def step(carry: tuple[Params, optax.OptState], _: None) -> tuple[tuple, None]:
            params, state = carry
            updates, state = opt.update(jax.grad(loss)(params), state, params)
            return (optax.apply_updates(params, updates), state), None

        def train_chunk(carry: tuple[Params, optax.OptState], _: None) -> tuple[tuple, Array]:
            carry, _ = jax.lax.scan(step, carry, None, length=chunk)
            return carry, forward(carry[0], x_test)[1]

        _, dead = jax.lax.scan(train_chunk, (params, opt.init(params)), None, length=steps // chunk)
        return dead

    alive = np.flatnonzero(~born_dead)
    dead_at = np.zeros((steps // chunk, nets), bool)
    dead_at[:, born_dead] = True
    if alive.size:
        dead_at[:, alive] = np.asarray(jax.jit(jax.vmap(train_one))(keys[alive])).T
    return Result(born_dead, dead_at[-1], dead_at.mean(axis=1), time.perf_counter() - start)


def wilson(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion (95% by default)."""
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nets", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--points", type=int, default=200)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--width", type=int, default=2)
    parser.add_argument("--depth", type=int, default=10)
    parser.add_argument("--chunk", type=int, default=250)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(
        f"{args.nets} nets per cell, width {args.width}, depth {args.depth}, "
        f"{args.points} points, Adam lr {args.lr} x {args.steps} steps, "
        f"{jax.devices()[0].platform}"
    )
    print(
        "| target | init | born dead | collapsed (95% Wilson) | paper | collapsed every "
        "--chunk steps | s |\n|---|---|---|---|---|---|---|"
    )
    start = time.perf_counter()
    for target in TARGETS:
        for name, layer in INITS.items():
            r = run(
                target,
                layer,
                nets=args.nets,
                width=args.width,
                depth=args.depth,
                points=args.points,
                steps=args.steps,
                lr=args.lr,
                chunk=args.chunk,
                seed=args.seed,
            )
            k = int(r.collapsed.sum())
            lo, hi = wilson(k, args.nets)
            paper = target.paper_he if name == "He" else target.paper_rai
            curve = " ".join(f"{p:.3f}" for p in r.dead_at)
            print(
                f"| {target.name} | {name} | {r.born_dead.mean():.1%} | {k / args.nets:.1%} "
                f"[{lo:.1%}, {hi:.1%}] | {paper:.1%} | {curve} | {r.seconds:.0f} |",
                flush=True,
            )
    print(f"total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
