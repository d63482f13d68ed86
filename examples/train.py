"""Training on scikit-learn's bundled digits (no downloads): ``python examples/train.py``.

What it runs (all deterministic given ``--seed``):

1. **Activation sweep.** An MLP (64-128-128-10) and a small CNN (8x8x1 -> conv16 -> pool -> conv32
   -> pool -> 64 -> 10), from :mod:`rectax.linen`, for every activation with its matched
   initializer (``kernel_init="auto"``, i.e. ``rectax.initializers.for_activation``), trained
   with AdamW whose weight decay skips biases and PReLU slopes (:func:`rectax.optim.adamw`).
   Reported: test accuracy, final train loss, steady-state step time, compile time, and the
   dead-unit fraction per epoch, accumulated inside the jitted epoch (``lax.scan`` over steps)
   with :mod:`rectax.diagnostics` from the modules' ``record_stats`` intermediates.
2. **He et al. (2015), deep plain net.** A 30-layer ReLU MLP (width 64) trained with SGD +
   momentum from Kaiming (He) and from Xavier (Glorot) init: loss per epoch for both.
3. **Data parallel.** The same train step with the batch split over a ``jax.sharding.Mesh`` of
   all devices, compared with one device (use ``--devices 4`` to force 4 CPU devices).
4. **Checkpoint.** A trained PReLU model's variables round-trip through
   ``flax.serialization.to_bytes``/``from_bytes``.

The JSON goes to ``train_latest.json`` in the system's temporary directory, outside the source
tree; ``--out PATH`` writes it elsewhere (``--out examples/train_latest.json`` refreshes the
committed run).
"""

from __future__ import annotations

import os
import sys

if __name__ == "__main__":  # must configure XLA before jax initialises its backends
    for _i, _arg in enumerate(sys.argv):
        if _arg == "--devices" and _i + 1 < len(sys.argv):
            _flag = f"--xla_force_host_platform_device_count={sys.argv[_i + 1]}"
            os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {_flag}".strip()

import argparse
import json
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import serialization
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

import rectax as rx
from rectax import diagnostics, initializers, optim
from rectax import linen as rxl

Array = jax.Array
DEFAULT_OUT = Path(tempfile.gettempdir()) / "rectax" / "train_latest.json"

# name -> what the builders take as ``activation=``
ACTIVATIONS: dict[str, Any] = {
    "relu": rx.relu,
    "leaky_relu": rx.leaky_relu,
    "necro_relu": rxl.NecroReLU,
    "prelu": rxl.PReLU,
    "rrelu": rxl.RReLU,
    "relu6": rx.relu6,
    "elu": rx.elu,
    "celu": rx.celu,
    "selu": rx.selu,
    "gelu": rx.gelu,
    "silu": rx.silu,
    "softplus": rx.softplus,
    "squared_relu": rx.squared_relu,
    "hard_tanh": rx.hard_tanh,
}

# --quick trains the CNN on these only (the MLP on all); compile time dominates on small CPUs.
QUICK_CNN = ("relu", "necro_relu", "prelu", "rrelu", "selu", "gelu")


# --------------------------------------------------------------------------- data
class Digits(NamedTuple):
    """The digits split: images in [0, 1], NHWC, and int32 labels."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def load_digits(seed: int = 0, test_fraction: float = 0.2) -> Digits:
    """scikit-learn's bundled 8x8 digits (1797 samples), shuffled and split with ``seed``.

    Args:
      seed: seed of the split.
      test_fraction: fraction held out for testing.

    Returns:
      A :class:`Digits` with ``(n, 8, 8, 1)`` float32 images scaled to [0, 1].
    """
    from sklearn.datasets import load_digits as sk_load_digits

    data = sk_load_digits()
    x = (data.images.astype(np.float32) / 16.0)[..., None]
    y = data.target.astype(np.int32)
    order = np.random.default_rng(seed).permutation(len(y))
    n_test = round(len(y) * test_fraction)
    test, train = order[:n_test], order[n_test:]
    return Digits(x[train], y[train], x[test], y[test])


# --------------------------------------------------------------------------- models and steps
def make_model(
    kind: str,
    activation: Any,
    *,
    kernel_init: Any = "auto",
    record_stats: bool = False,
    depth: int = 3,
    width: int = 128,
) -> nn.Module:
    """The benchmark's models.

    Args:
      kind: ``"mlp"`` (on flattened images) or ``"cnn"``.
      activation: what the builders take as ``activation=``.
      kernel_init: an initializer or ``"auto"``.
      record_stats: have the activations sow unit statistics.
      depth: number of Dense layers of the MLP (including the output layer).
      width: hidden width of the MLP.

    Returns:
      A Linen module mapping ``(batch, 8, 8, 1)`` images to 10 logits.
    """
    if kind == "mlp":
        mlp = rxl.MLP(
            features=(*([width] * (depth - 1)), 10),
            activation=activation,
            kernel_init=kernel_init,
            record_stats=record_stats,
        )
        return _Flatten(mlp)
    if kind == "cnn":
        return rxl.CNN(
            features=(16, 32),
            dense=(64,),
            num_classes=10,
            activation=activation,
            kernel_init=kernel_init,
            record_stats=record_stats,
        )
    raise ValueError(f"unknown model kind {kind!r}")


class _Flatten(nn.Module):
    inner: nn.Module

    def __call__(self, x: Array, deterministic: bool | None = None) -> Array:
        return self.inner(x.reshape(x.shape[0], -1), deterministic)


class TrainState(NamedTuple):
    """Parameters and optimizer state (a pytree carried through ``lax.scan``)."""

    params: Any
    opt_state: Any


def cross_entropy(logits: Array, labels: Array) -> Array:
    """Mean softmax cross-entropy with integer labels."""
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()


def make_train_step(
    model: nn.Module, tx: optax.GradientTransformation, *, record_stats: bool = False
) -> Callable[..., tuple[TrainState, Array, Any]]:
    """One optimisation step: ``step(state, x, y, key) -> (state, loss, unit_stats)``.

    ``unit_stats`` is the pytree of :class:`rectax.diagnostics.UnitStats` the activations sowed
    (an empty dict without ``record_stats``). The step is pure, so it can be jitted as is, with
    sharded inputs (the batch split over a mesh), or scanned over an epoch.

    Args:
      model: the Linen model.
      tx: the optax transformation.
      record_stats: collect the ``'intermediates'`` collection.

    Returns:
      The step function.
    """

    def loss_fn(params: Any, x: Array, y: Array, key: Array) -> tuple[Array, Any]:
        rngs = {"rrelu": key}
        if record_stats:
            logits, state = model.apply(
                {"params": params},
                x,
                deterministic=False,
                rngs=rngs,
                mutable=["intermediates"],
            )
            stats = state.get("intermediates", {})
        else:
            logits = model.apply({"params": params}, x, deterministic=False, rngs=rngs)
            stats = {}
        return cross_entropy(logits, y), stats

    def step(state: TrainState, x: Array, y: Array, key: Array) -> tuple[TrainState, Array, Any]:
        (loss, stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params, x, y, key)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        return TrainState(optax.apply_updates(state.params, updates), opt_state), loss, stats

    return step


def init_state(
    model: nn.Module, tx: optax.GradientTransformation, x: Array, seed: int
) -> TrainState:
    """Initial parameters (from ``seed``) and optimizer state."""
    key = jax.random.key(seed)
    variables = model.init(
        {"params": key, "rrelu": jax.random.fold_in(key, 1)}, x, deterministic=True
    )
    params = variables["params"]
    return TrainState(params, tx.init(params))


def accuracy(model: nn.Module, params: Any, x: Array, y: Array) -> float:
    """Test accuracy in evaluation mode (RReLU at its mean slope)."""
    logits = jax.jit(lambda p, x: model.apply({"params": p}, x, deterministic=True))(params, x)
    return float(jnp.mean(jnp.argmax(logits, -1) == y))


def _stats_step(
    step: Callable[..., tuple[TrainState, Array, Any]],
) -> Callable[..., tuple[TrainState, Any, Array]]:
    """Wraps a step so it also folds the sowed unit statistics into a running accumulator."""

    def run(
        state: TrainState, acc: Any, x: Array, y: Array, key: Array
    ) -> tuple[TrainState, Any, Array]:
        state, loss, stats = step(state, x, y, key)
        return state, diagnostics.merge_stats(acc, stats), loss

    return run


def _mean_dead(summary: Any) -> tuple[float, dict[str, float]]:
    per_layer: dict[str, float] = {}
    units = 0
    dead = 0.0
    flat = jax.tree_util.tree_flatten_with_path(
        summary.tree, is_leaf=lambda s: isinstance(s, diagnostics.StatsSummary)
    )[0]
    for path, s in flat:
        name = "/".join(str(getattr(k, "key", k)) for k in path[:-1])
        per_layer[name] = round(float(s.dead_fraction), 4)
        units += s.dead.shape[0]
        dead += float(jnp.sum(s.dead))
    return (dead / units if units else 0.0), per_layer


def train(
    kind: str,
    activation: Any,
    data: Digits,
    *,
    epochs: int,
    seed: int = 0,
    kernel_init: Any = "auto",
    tx: optax.GradientTransformation | None = None,
    batch_size: int = 128,
    depth: int = 3,
    width: int = 128,
    record_stats: bool = True,
) -> dict[str, Any]:
    """Trains one model and reports accuracy, losses, timings and dead units.

    Args:
      kind: ``"mlp"`` or ``"cnn"``.
      activation: the builders' ``activation=``.
      data: the digits split.
      epochs: passes over the training set.
      seed: seed of the init, the shuffling and RReLU's slopes.
      kernel_init: an initializer or ``"auto"``.
      tx: optimizer (default :func:`rectax.optim.adamw` at 3e-3, weight decay 1e-4).
      batch_size: examples per step.
      depth: MLP depth.
      width: MLP width.
      record_stats: accumulate dead-unit statistics per epoch.

    Returns:
      A JSON-ready dict; ``"params"`` holds the trained parameters (drop it before dumping).
    """
    tx = optim.adamw(3e-3, weight_decay=1e-4) if tx is None else tx
    model = make_model(
        kind,
        activation,
        kernel_init=kernel_init,
        record_stats=record_stats,
        depth=depth,
        width=width,
    )
    x_train, y_train = jnp.asarray(data.x_train), jnp.asarray(data.y_train)
    state = init_state(model, tx, x_train[:batch_size], seed)
    step = make_train_step(model, tx, record_stats=record_stats)
    stats_shape = jax.eval_shape(
        step, state, x_train[:batch_size], y_train[:batch_size], jax.random.key(0)
    )[2]
    stats0 = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), stats_shape)
    jstep = jax.jit(_stats_step(step), donate_argnums=0)
    steps = len(data.y_train) // batch_size
    rng = np.random.default_rng(seed + 1)
    key = jax.random.key(seed + 1)

    losses: list[float] = []
    dead: list[float] = []
    times: list[float] = []
    dead_layers: dict[str, float] = {}
    for e in range(epochs):
        order = rng.permutation(len(data.y_train))[: steps * batch_size].reshape(steps, -1)
        t0 = time.perf_counter()
        acc = stats0
        step_losses = []
        for i in range(steps):  # no host sync inside the epoch: dispatch is asynchronous
            state, acc, loss = jstep(
                state,
                acc,
                x_train[order[i]],
                y_train[order[i]],
                jax.random.fold_in(key, e * steps + i),
            )
            step_losses.append(loss)
        epoch_losses = jnp.stack(step_losses).block_until_ready()
        times.append(time.perf_counter() - t0)
        losses.append(float(epoch_losses.mean()))
        if record_stats:
            frac, dead_layers = _mean_dead(diagnostics.summarize(acc))
            dead.append(round(frac, 4))
    steady = times[1:] or times
    return {
        "model": kind,
        "test_accuracy": round(
            accuracy(model, state.params, jnp.asarray(data.x_test), jnp.asarray(data.y_test)), 4
        ),
        "final_train_loss": round(losses[-1], 5),
        "loss_per_epoch": [round(v, 5) for v in losses],
        "dead_fraction_per_epoch": dead,
        "dead_fraction_by_layer_last_epoch": dead_layers,
        "compile_and_first_epoch_s": round(times[0], 3),
        "step_ms_median": round(1e3 * statistics.median(steady) / steps, 4),
        "step_ms_min": round(1e3 * min(steady) / steps, 4),
        "step_ms_max": round(1e3 * max(steady) / steps, 4),
        "steps_per_epoch": steps,
        "epochs": epochs,
        "params": state.params,
    }


# --------------------------------------------------------------------------- data parallel
def data_parallel_losses(
    data: Digits,
    *,
    steps: int = 5,
    batch_size: int = 128,
    seed: int = 0,
    devices: list[Any] | None = None,
) -> tuple[list[float], list[float], int]:
    """Losses of the same MLP train steps on one device and sharded over a mesh of devices.

    The batch is split over the mesh's ``'data'`` axis (``NamedSharding(mesh, P('data'))``);
    parameters and optimizer state are replicated. XLA inserts the gradient all-reduce.

    Args:
      data: the digits split.
      steps: number of steps compared.
      batch_size: global batch (divisible by the number of devices).
      seed: init seed.
      devices: devices of the mesh (default all).

    Returns:
      ``(single_device_losses, sharded_losses, num_devices)``.
    """
    devs = jax.devices() if devices is None else devices
    model = make_model("mlp", rx.relu, kernel_init=initializers.he_normal())
    tx = optim.adamw(3e-3, weight_decay=1e-4)
    x = jnp.asarray(data.x_train[: steps * batch_size])
    y = jnp.asarray(data.y_train[: steps * batch_size])
    step = make_train_step(model, tx)

    def run(
        jitted: Callable[..., Any], put_batch: Callable[[Array], Array], state: TrainState
    ) -> list[float]:
        out = []
        for i in range(steps):
            sl = slice(i * batch_size, (i + 1) * batch_size)
            state, loss, _ = jitted(state, put_batch(x[sl]), put_batch(y[sl]), jax.random.key(i))
            out.append(float(loss))
        return out

    single = jax.jit(step)
    state = init_state(model, tx, x[:batch_size], seed)
    base = run(single, lambda a: jax.device_put(a, devs[0]), jax.device_put(state, devs[0]))

    mesh = Mesh(np.array(devs), ("data",))
    replicated = NamedSharding(mesh, P())
    batch = NamedSharding(mesh, P("data"))
    sharded = jax.jit(
        step,
        in_shardings=(replicated, batch, batch, replicated),
        out_shardings=(replicated, replicated, replicated),
    )
    state = jax.device_put(init_state(model, tx, x[:batch_size], seed), replicated)
    return base, run(sharded, lambda a: jax.device_put(a, batch), state), len(devs)


# --------------------------------------------------------------------------- checkpoint
def checkpoint_roundtrip(params: Any) -> bool:
    """True when ``params`` survive ``flax.serialization`` (msgpack) bit for bit."""
    restored = serialization.from_bytes(params, serialization.to_bytes(params))
    same = jax.tree.map(
        lambda a, b: bool(np.array_equal(np.asarray(a), np.asarray(b))), params, restored
    )
    return all(jax.tree.leaves(same))


# --------------------------------------------------------------------------- main
def deep_he_vs_xavier(
    data: Digits, *, epochs: int, seed: int = 0, depth: int = 30, width: int = 64
) -> dict[str, Any]:
    """He et al. 2015 in miniature: a deep plain ReLU MLP from Kaiming vs Xavier init (SGD)."""
    out: dict[str, Any] = {"depth": depth, "width": width, "optimizer": "sgd(0.01, momentum=0.9)"}
    for name, init in (
        ("kaiming", initializers.he_normal()),
        ("xavier", initializers.glorot_normal()),
    ):
        r = train(
            "mlp",
            rx.relu,
            data,
            epochs=epochs,
            seed=seed,
            kernel_init=init,
            tx=optax.sgd(0.01, momentum=0.9),
            depth=depth,
            width=width,
            record_stats=False,
            batch_size=64,
        )
        r.pop("params")
        out[name] = {k: r[k] for k in ("test_accuracy", "loss_per_epoch", "final_train_loss")}
    return out


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer epochs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--devices",
        type=int,
        default=None,
        help="force this many host devices (CPU) for the data-parallel check",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help=f"where the JSON goes (default {DEFAULT_OUT}, outside the source tree)",
    )
    parser.add_argument("--only", nargs="*", default=None, help="subset of activations")
    args = parser.parse_args(argv)

    t_start = time.perf_counter()
    data = load_digits(args.seed)
    epochs = {"mlp": 10, "cnn": 8} if args.quick else {"mlp": 30, "cnn": 20}
    deep_epochs = 8 if args.quick else 20
    names = args.only or list(ACTIVATIONS)
    cnn_names = [n for n in names if n in QUICK_CNN] if args.quick else names

    runs = []
    prelu_params = None
    print(f"{'model':5} {'activation':13} {'test acc':>8} {'loss':>8} {'dead':>6} {'step ms':>8}")
    for kind, kind_names in (("mlp", names), ("cnn", cnn_names)):
        for name in kind_names:
            r = train(kind, ACTIVATIONS[name], data, epochs=epochs[kind], seed=args.seed)
            params = r.pop("params")
            if name == "prelu" and kind == "mlp":
                prelu_params = params
            r["activation"] = name
            r["kernel_init"] = "auto (rectax.initializers.for_activation)"
            runs.append(r)
            print(
                f"{kind:5} {name:13} {r['test_accuracy']:8.4f} {r['final_train_loss']:8.4f} "
                f"{r['dead_fraction_per_epoch'][-1]:6.3f} {r['step_ms_median']:8.3f}",
                flush=True,
            )

    deep = deep_he_vs_xavier(data, epochs=deep_epochs, seed=args.seed)
    print(
        f"deep 30-layer ReLU MLP, loss per epoch\n  kaiming {deep['kaiming']['loss_per_epoch']}"
        f"\n  xavier  {deep['xavier']['loss_per_epoch']}"
    )

    base, sharded, ndev = data_parallel_losses(data, seed=args.seed)
    dp = {
        "devices": ndev,
        "single_device_loss": base,
        "sharded_loss": sharded,
        "max_abs_diff": float(np.max(np.abs(np.subtract(base, sharded)))),
    }
    print(f"data parallel over {ndev} device(s): max |loss diff| = {dp['max_abs_diff']:.2e}")

    ckpt = {
        "prelu_mlp_roundtrip_equal": checkpoint_roundtrip(prelu_params)
        if prelu_params is not None
        else None
    }

    result: dict[str, Any] = {
        "benchmark": "train_digits",
        "meta": {
            "quick": args.quick,
            "epochs": {**epochs, "deep": deep_epochs},
            "cnn_activations": cnn_names,
            "seed": args.seed,
            "jax": jax.__version__,
            "flax": flax.__version__,
            "optax": optax.__version__,
            "rectax": rx.__version__,
            "platform": jax.devices()[0].platform,
            "device_kind": jax.devices()[0].device_kind,
            "device_count": jax.device_count(),
            "python": platform.python_version(),
            "dataset": "sklearn.datasets.load_digits (1797 8x8 images), 80/20 split",
            "optimizer": "rectax.optim.adamw(3e-3, weight_decay=1e-4), no decay on biases/slopes",
            "batch_size": 128,
            "wall_s": None,
        },
        "runs": runs,
        "deep_he_vs_xavier": deep,
        "data_parallel": dp,
        "checkpoint": ckpt,
    }
    result["meta"]["wall_s"] = round(time.perf_counter() - t_start, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out} in {result['meta']['wall_s']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
