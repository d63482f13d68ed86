"""Loss of plasticity on a continual task built from digits, and its remedies side by side.

``python examples/continual.py`` (about 3 minutes on 2 CPU cores; ``--quick``: the notebook's run)

The task (no downloads: scikit-learn's bundled digits): a sequence of label permutations. Task
``t`` relabels every image ``y -> perm_t[y]`` with a fresh random permutation; the network keeps
training from where it was, ``steps`` Adam steps per task on the training split, and its accuracy
on the held-out split (relabelled the same way) is read at the end of each task. A network that
keeps its plasticity reaches the same accuracy on task 60 as on task 1; plain ReLU nets lose it
(Dohare et al., Nature 2024; Lyle et al. 2023).

Methods, all an MLP 64-W-W-10 from :mod:`rectax.linen` with its matched initializer and Adam:

* ``relu``, ``leaky_relu`` (slope 0.01), ``necro_relu`` (ReLU forward, derivative 0.1 below 0),
  ``crelu`` (:func:`rectax.crelu`, ``[relu(x), relu(-x)]``, so the next layer has 2W inputs;
  ``for_activation("crelu")`` is He's init on that doubled fan-in: each of the 2W outputs has
  ReLU's forward second moment, 1/2 of the pre-activation's);
* ``redo``: ReLU with :func:`rectax.recycle.recycle` and :func:`rectax.recycle.redo`
  (tau = 0.1, every ``period`` steps);
* ``cbp``: ReLU with :func:`rectax.recycle.continual_backprop` (replacing ``fraction`` of each
  layer's mature units every ``period`` steps).

Reported per method over ``--seeds`` seeds: first-task accuracy, last-tasks accuracy (mean of the
last 3 tasks), their difference with a 95% t-interval over seeds, the hidden layers' dead-unit
fraction on the training set at the end, and the number of recycled units. JSON to
``examples/continual_latest.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import scipy.stats
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import rectax as rx
from rectax import diagnostics, recycle
from rectax import linen as rxl

Array = jax.Array
RESULTS = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Config:
    tasks: int = 60
    steps: int = 300
    width: int = 64
    batch: int = 32
    lr: float = 3e-3
    seeds: int = 8
    period: int = 100
    tau: float = 0.1
    fraction: float = 0.02
    maturity: int = 100
    last: int = 3


# The notebook's reduced run: fewer, shorter tasks and a higher learning rate, so that the
# decline shows within about a minute.
QUICK = Config(tasks=16, steps=200, lr=5e-3, seeds=4, period=50, maturity=50)


@dataclass(frozen=True)
class Method:
    activation: Any
    kernel_init: Any = "auto"
    score: Callable[[Config], recycle.Score] | None = None


METHODS: dict[str, Method] = {
    "relu": Method(rx.relu),
    "leaky_relu": Method("leaky_relu"),
    "necro_relu": Method("necro_relu"),
    "crelu": Method(rx.crelu),  # "auto": for_activation("crelu"), He on the doubled fan-in
    "redo": Method(rx.relu, score=lambda c: recycle.redo(c.tau)),
    "cbp": Method(rx.relu, score=lambda c: recycle.continual_backprop(c.fraction, c.maturity)),
}


def digits() -> tuple[Array, Array, Array, Array]:
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)
    return jnp.asarray(x_tr), jnp.asarray(y_tr), jnp.asarray(x_te), jnp.asarray(y_te)


def make_run(method: Method, cfg: Config) -> Callable[[Array], dict[str, Array]]:
    """A jitted function of the seed's key: every task, end to end, in one program."""
    x_tr, y_tr, x_te, y_te = digits()
    model = rxl.MLP(
        (cfg.width, cfg.width, 10),
        activation=method.activation,
        kernel_init=method.kernel_init,
        record_stats=True,
    )
    tx: Any = optax.adam(cfg.lr)
    recycling = method.score is not None
    if recycling:
        assert method.score is not None
        tx = recycle.recycle(tx, recycle.links(model), score=method.score(cfg))
    assert cfg.steps % cfg.period == 0, "tasks are whole periods"

    def forward(params: Any, x: Array) -> tuple[Array, Any]:
        logits, inter = model.apply({"params": params}, x, mutable=["intermediates"])
        return logits, inter["intermediates"]

    def step(carry: Any, inputs: tuple[Array, Array]) -> tuple[Any, None]:
        params, state = carry
        xb, yb = inputs

        def loss(p: Any) -> tuple[Array, Any]:
            logits, stats = forward(p, xb)
            return optax.softmax_cross_entropy_with_integer_labels(logits, yb).mean(), stats

        grads, stats = jax.grad(loss, has_aux=True)(params)
        if recycling:
            updates, state = tx.update(grads, state, params, stats=stats)
        else:
            updates, state = tx.update(grads, state, params)
        return (optax.apply_updates(params, updates), state), None

    def period(carry: Any, inputs: tuple[Array, Array]) -> tuple[Any, None]:
        carry, _ = jax.lax.scan(step, carry, inputs)
        if recycling:  # the recycler fires after every period of steps
            carry = tx.fire(*carry)
        return carry, None

    def task(carry: Any, key: Array) -> tuple[Any, Array]:
        k_perm, k_batch = jax.random.split(key)
        perm = jax.random.permutation(k_perm, 10)
        shape = (cfg.steps // cfg.period, cfg.period, cfg.batch)
        idx = jax.random.randint(k_batch, shape, 0, x_tr.shape[0])
        carry, _ = jax.lax.scan(period, carry, (x_tr[idx], perm[y_tr[idx]]))
        logits, _ = forward(carry[0], x_te)
        return carry, jnp.mean(jnp.argmax(logits, -1) == perm[y_te])

    @jax.jit
    def run(key: Array) -> dict[str, Array]:
        k_init, k_tasks = jax.random.split(key)
        params = model.init(k_init, x_tr[:1])["params"]
        (params, state), acc = jax.lax.scan(
            task, (params, tx.init(params)), jax.random.split(k_tasks, cfg.tasks)
        )
        _, stats = forward(params, x_tr)
        dead = jnp.stack([s.dead_fraction for s in _summaries(stats)])
        recycled = sum(state.recycled) if recycling else jnp.zeros((), jnp.int32)
        return {"accuracy": acc, "dead_fraction": dead, "recycled": recycled}

    return run


def _summaries(stats: Any) -> list[diagnostics.StatsSummary]:
    leaves = jax.tree.leaves(
        diagnostics.summarize(stats), is_leaf=lambda s: isinstance(s, diagnostics.StatsSummary)
    )
    return leaves


def interval(values: np.ndarray) -> tuple[float, float, float]:
    """Mean and 95% t-interval over seeds."""
    n = len(values)
    mean = float(np.mean(values))
    if n < 2:
        return mean, math.nan, math.nan
    half = float(scipy.stats.t.ppf(0.975, n - 1) * np.std(values, ddof=1) / math.sqrt(n))
    return mean, mean - half, mean + half


def experiment(cfg: Config, methods: list[str] | None = None, log: Callable = print) -> dict:
    out: dict[str, Any] = {"config": asdict(cfg), "methods": {}}
    for name in methods or list(METHODS):
        start = time.perf_counter()
        run = make_run(METHODS[name], cfg)
        runs = [jax.device_get(run(jax.random.key(seed))) for seed in range(cfg.seeds)]
        acc = np.stack([r["accuracy"] for r in runs])  # (seeds, tasks)
        first = acc[:, 0]
        last = acc[:, -cfg.last :].mean(axis=1)
        out["methods"][name] = {
            "accuracy": acc.tolist(),
            "first": interval(first),
            "last": interval(last),
            "drop": interval(first - last),
            "dead_fraction": np.stack([r["dead_fraction"] for r in runs]).mean(0).tolist(),
            "recycled": float(np.mean([r["recycled"] for r in runs])),
            "seconds": time.perf_counter() - start,
        }
        m = out["methods"][name]
        log(
            f"{name:11s} first {m['first'][0]:.3f} [{m['first'][1]:.3f}, {m['first'][2]:.3f}]  "
            f"last {m['last'][0]:.3f} [{m['last'][1]:.3f}, {m['last'][2]:.3f}]  "
            f"drop {m['drop'][0]:+.3f} [{m['drop'][1]:+.3f}, {m['drop'][2]:+.3f}]  "
            f"dead {np.round(m['dead_fraction'], 3).tolist()}  recycled {m['recycled']:.0f}  "
            f"({m['seconds']:.0f} s)"
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="the notebook's reduced run")
    parser.add_argument("--seeds", type=int)
    parser.add_argument("--tasks", type=int)
    parser.add_argument("--methods", nargs="*", choices=list(METHODS))
    parser.add_argument("--out", type=Path, default=RESULTS / "continual_latest.json")
    args = parser.parse_args()
    cfg = QUICK if args.quick else Config()
    overrides = {k: v for k, v in (("seeds", args.seeds), ("tasks", args.tasks)) if v}
    cfg = Config(**{**asdict(cfg), **overrides})
    print(f"config: {cfg}")
    result = experiment(cfg, args.methods)
    result["command"] = "python examples/continual.py" + (" --quick" if args.quick else "")
    result["jax"] = jax.__version__
    args.out.write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
