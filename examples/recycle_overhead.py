"""Overhead of :func:`rectax.recycle.recycle` on a training step, and its compiled memory.

``python examples/recycle_overhead.py`` (about a minute on CPU)

Jitted train steps of an MLP 64-256-256-10 (batch 128, Adam), each compiled with its params and
state donated (``donate_argnums=(0, 1)``, as a training loop compiles its step), timed interleaved
(each round runs every variant once, in a fresh random order, ``--steps`` steps each, so drifts
in the machine's load hit all of them alike):

* ``plain``: Adam, the model without statistics;
* ``stats``: Adam, the model sowing its :class:`~rectax.diagnostics.UnitStats`
  (``record_stats=True``), which ReDo and continual backprop read, and the step merging them
  into a running total it carries (:func:`rectax.diagnostics.merge_stats`), as a loop that
  monitors its units keeps them;
* ``idle``: ``recycle(adam, ..., score=redo(0.1))``'s ``update``, a step that does not fire;
* ``firing``: the same step compiled with ``tx.fire`` first, before the gradient (one program,
  what a loop runs on the step after each period), here on every step;
* ``firing_last``: ``tx.fire`` compiled after the update instead (the end of the period's last
  step): the same values (tested bitwise), another program;
* ``firing_call``: the ``idle`` step followed by a separate ``jax.jit(tx.fire,
  donate_argnums=(0, 1))`` call, on every step;
* ``firing_draw``: as ``firing``, with ``continual_backprop(fraction=1/64, maturity=0)``, which
  selects units in every layer at every firing, so every firing redraws both hidden layers'
  incoming kernels (``redo``'s firings redraw a layer only when it has a dormant unit, which
  on this healthy network is rare): 4 of 256 units per layer, whose columns alone are drawn
  (:meth:`rectax.initializers.VarianceScaling.columns`);
* ``firing_draw_last``: as ``firing_draw``, ``fire`` compiled after the update;
* ``firing_whole``: as ``firing_draw`` with the same initializer wrapped in a plain function
  (no ``columns``), so each firing draws both whole kernels, as every initializer that cannot
  draw columns alone does.

Reported: median and minimum time per step (the minimum is the least disturbed by other load on
a shared machine), the median process CPU time per step (all threads; it does not count time
spent waiting for a core, so it is steadier on a shared machine) and, per variant, the ratio to
its baseline (``idle`` and the firing variants to ``stats``; ``stats`` to ``plain``) with a 95%
t-interval over rounds of the per-round ratio, of wall time and of CPU time (and, for the firing
variants, the CPU-time ratio to ``idle``, what a firing adds to the recycler's own step);
and ``memory_analysis()`` of each compiled step (temporaries, arguments, outputs; for
``firing_call`` those of the ``fire`` call). JSON to ``examples/recycle_overhead_latest.json``.

``--model cnn`` times rectax's linen CNN instead (conv blocks of 16 and 32 channels and a Dense
head of ``--width`` units, on 8 x 8 x 1 inputs; continual backprop takes 1 unit in 16).
``--no-donate`` compiles every step without donating its inputs. ``--draws`` times ``fire``'s
keys and column draws alone instead, with jax's threefry key and with the unrolled one ``fire``
uses (:func:`draws`); ``--ops`` counts each step's compiled operations instead (:func:`ops`);
``--target h100`` prints each step's compiled memory for a compile target instead
(:func:`memories`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import random
import re
import sys
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import scipy.stats

from rectax import diagnostics, recycle
from rectax import linen as rxl

RESULTS = Path(__file__).resolve().parent


def _whole(init: Any) -> Any:
    """``init`` as a plain function, which has no ``columns``: fire draws whole kernels."""

    def whole(key: Any, shape: Any, dtype: Any = None) -> Any:
        return init(key, shape, dtype)

    return whole


VARIANTS = (
    "plain",
    "stats",
    "idle",
    "firing",
    "firing_last",
    "firing_call",
    "firing_draw",
    "firing_draw_last",
    "firing_whole",
)


def _model(model: str, width: int, record_stats: bool) -> Any:
    if model == "cnn":  # rectax's linen CNN on 8 x 8 images: two conv blocks and a Dense head
        return rxl.CNN((16, 32), (width,), record_stats=record_stats)
    return rxl.MLP((width, width, 10), record_stats=record_stats)


def steps(
    width: int, batch: int, donate: bool = True, model_name: str = "mlp"
) -> tuple[dict[str, Any], Any, Any]:
    shape = (batch, 8, 8, 1) if model_name == "cnn" else (batch, 64)
    x = jax.random.normal(jax.random.key(0), shape)
    y = jax.random.randint(jax.random.key(1), (batch,), 0, 10)
    out: dict[str, Any] = {}
    for name in VARIANTS:
        model = _model(model_name, width, name != "plain")
        params = model.init(jax.random.key(2), x)["params"]
        tx: Any = optax.adam(1e-3)
        recycling = name not in ("plain", "stats")
        if recycling:
            score = recycle.redo(0.1)
            links = recycle.links(model)
            if name.startswith(("firing_draw", "firing_whole")):
                # 4 of 256 units per layer (MLP); the CNN's 16 channels take 1 unit in 16
                fraction = 1 / 16 if model_name == "cnn" else 1 / 64
                score = recycle.continual_backprop(fraction, maturity=0)
            if name == "firing_whole":
                links = tuple(dataclasses.replace(link, init=_whole(link.init)) for link in links)
            tx = recycle.recycle(tx, links, score=score)
        fires = name.startswith("firing") and name != "firing_call"
        last = name.endswith("_last")

        def step(
            params: Any,
            state: Any,
            model: Any = model,
            tx: Any = tx,
            name: str = name,
            fires: bool = fires,
            last: bool = last,
        ) -> tuple[Any, Any]:
            if fires and not last:  # the step after a period: recycle, then train
                params, state = tx.fire(params, state)

            def loss(p: Any) -> tuple[Any, Any]:
                logits, inter = model.apply({"params": p}, x, mutable=["intermediates"])
                ce = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
                return ce, inter.get("intermediates")

            grads, stats = jax.grad(loss, has_aux=True)(params)
            if name == "plain":
                updates, state = tx.update(grads, state, params)
            elif name == "stats":  # the statistics kept as a running total, as a monitor keeps them
                inner, total = state
                updates, inner = tx.update(grads, inner, params)
                total = jax.tree.map(diagnostics.merge_stats, total, stats, is_leaf=_is_stats)
                state = inner, total
            else:
                updates, state = tx.update(grads, state, params, stats=stats)
            params = optax.apply_updates(params, updates)
            if fires and last:  # the end of a period's last step
                params, state = tx.fire(params, state)
            return params, state

        state = tx.init(params)
        if name == "stats":
            _, inter = model.apply({"params": params}, x, mutable=["intermediates"])
            total = jax.tree.map(
                lambda s: diagnostics.init_stats(s.mean.shape[-1]),
                inter["intermediates"],
                is_leaf=_is_stats,
            )
            state = (state, total)
        fn: Any = jax.jit(step, donate_argnums=(0, 1) if donate else ())
        compiled = fn.lower(params, state).compile()
        if name == "firing_call":
            fire = jax.jit(tx.fire, donate_argnums=(0, 1) if donate else ())
            compiled = fire.lower(params, state).compile()

            def fn(params: Any, state: Any, step: Any = fn, fire: Any = fire) -> tuple:
                return fire(*step(params, state))

        mem = compiled.memory_analysis()
        assert mem is not None
        out[name] = {
            "fn": fn,
            "params": params,
            "state": state,
            "memory": {
                "temp_bytes": int(mem.temp_size_in_bytes),
                "argument_bytes": int(mem.argument_size_in_bytes),
                "output_bytes": int(mem.output_size_in_bytes),
            },
        }
    return out, x, y


def _is_stats(x: Any) -> bool:
    return isinstance(x, diagnostics.UnitStats)


def draws(width: int, rounds: int) -> None:
    """``--draws``: what ``fire``'s keys and column draws cost alone, with jax's threefry key
    (a 5-trip loop per hash on CPU) and with the unrolled key ``fire`` uses (the same values).

    One jitted program per variant, on two kernels ``(64, width)`` and ``(width, width)``: the
    per-step key, the per-link keys (a vmapped ``fold_in`` and ``split``), 4 columns drawn per
    kernel (``he_normal().columns``) and scattered in; timed interleaved against an empty
    program (CPU time of 200 calls per round), and each program's ``while`` loops counted.
    """
    from rectax._core._prng import unrolled
    from rectax.initializers import he_normal

    init = he_normal()
    kernels = [jnp.ones((64, width)), jnp.ones((width, width))]
    slots = jnp.asarray([3, 50, 100, width], jnp.int32)  # the last slot is dropped, as in fire

    def program(rekey: bool) -> Any:
        def f(kernels: list, step: Any) -> list:
            key = jax.random.key(0)
            key = jax.random.fold_in(unrolled(key) if rekey else key, step)
            keys = jax.vmap(lambda i: jax.random.split(jax.random.fold_in(key, i)))(jnp.arange(2))
            return [
                p.at[:, slots].set(init.columns(keys[i][0], p.shape, 4, p.dtype), mode="drop")
                for i, p in enumerate(kernels)
            ]

        return jax.jit(f, donate_argnums=0)

    fns = {
        "empty": jax.jit(lambda kernels, step: kernels, donate_argnums=0),
        "jax key": program(False),
        "unrolled key": program(True),
    }
    step = jnp.int32(1)
    loops = {k: f.lower(kernels, step).compile().as_text().count(" while(") for k, f in fns.items()}
    same = all(
        np.array_equal(a, b)
        for a, b in zip(
            fns["jax key"]([k + 0 for k in kernels], step),
            fns["unrolled key"]([k + 0 for k in kernels], step),
            strict=True,
        )
    )
    carry = {k: [p + 0 for p in kernels] for k in fns}
    cpu: dict[str, list[float]] = {k: [] for k in fns}
    rng = random.Random(0)
    for _ in range(rounds):
        order = list(fns)
        rng.shuffle(order)
        for k in order:
            c, start = carry[k], time.process_time()
            for _ in range(200):
                c = fns[k](c, step)
            jax.block_until_ready(c)
            cpu[k].append((time.process_time() - start) / 200 * 1e6)
            carry[k] = c
    empty = np.asarray(cpu["empty"])
    print(f"same values: {same}")
    for k in fns:
        extra = interval(np.asarray(cpu[k]) - empty)
        print(
            f"{k:12s} while loops {loops[k]}  median CPU {np.median(cpu[k]):6.1f} us/call; over "
            f"empty {extra[0]:6.1f} [{extra[1]:.1f}, {extra[2]:.1f}] us"
        )


# Instructions that are no work of their own in XLA:CPU's compiled program.
_FREE = ("parameter", "constant", "tuple", "get-tuple-element", "bitcast")


def ops(width: int, batch: int, model_name: str = "mlp") -> None:
    """``--ops``: each step's operations in XLA:CPU's compiled program (``as_text()`` of
    ``jax.jit(step).lower(...).compile()``): the entry computation's instructions, each a fusion,
    a dot, a copy, a ``TopK`` call, a ``conditional`` or a ``while`` that the runtime dispatches
    on its own (parameters, constants, tuples and bitcasts left out), and how many of them are
    ``conditional`` s and ``while`` s, whose bodies are dispatched op by op."""
    variants, _, _ = steps(width, batch, model_name=model_name)
    for k, v in variants.items():
        if k == "firing_call":
            continue
        text = v["fn"].lower(v["params"], v["state"]).compile().as_text()
        entry = text[text.index("\nENTRY ") :]
        entry = entry[: entry.index("\n}")]
        # ``%name = type opcode(operands), attributes``; a tuple type is in parentheses.
        kinds = [re.search(r" = .*?\s([a-z][\w-]*)\(", line) for line in entry.splitlines()[1:]]
        work = [m.group(1) for m in kinds if m and m.group(1) not in _FREE]
        print(
            f"{k:13s} {len(work):4d} operations, {work.count('conditional')} conditional, "
            f"{work.count('while')} while"
        )


def _shown(path: Path) -> str:
    """``path`` relative to the repository when it is inside it."""
    try:
        return str(path.resolve().relative_to(RESULTS.parent))
    except ValueError:
        return str(path)


def memories(width: int, batch: int, donate: bool, model_name: str, target: str) -> None:
    """``--target``: each step's compiled memory for a compile target (``h100``, ``tpu-v5e``,
    ...; :mod:`benchmarks.targets`, jax's deviceless ahead-of-time compilation), never run:
    ``peak_memory_in_bytes`` and ``temp_size_in_bytes`` (XLA:TPU reports temporaries for some
    programs only: compare the peaks)."""
    import rectax as rx
    from benchmarks import targets

    dev = targets.device(target)
    variants, _, _ = steps(width, batch, donate, model_name)
    print(f"{target}, {'donated' if donate else 'not donated'}: peak / temporaries, bytes")
    base: tuple[int, int] | None = None
    for k, v in variants.items():
        if k == "firing_call":  # two programs
            continue
        with rx.residual_target(targets.TARGETS[target].residual_target):
            lowered = v["fn"].lower(*targets.abstract((v["params"], v["state"]), dev))
        mem = lowered.compile().memory_analysis()
        peak, temp = int(mem.peak_memory_in_bytes), int(mem.temp_size_in_bytes)
        base = (peak, temp) if k == "stats" else base
        shown = ""
        if base and k != "stats":  # XLA:CPU's peak leaves the temporaries out: both ratios
            shown = f"  peak x{peak / base[0]:.3f}" + (
                f", temporaries x{temp / base[1]:.3f}" if temp and base[1] else ""
            )
            shown += " of stats"
        print(f"{k:16s} {peak:9d} / {temp:9d}{shown}")


def interval(r: np.ndarray) -> tuple[float, float, float]:
    n = len(r)
    half = float(scipy.stats.t.ppf(0.975, n - 1) * np.std(r, ddof=1) / math.sqrt(n))
    return float(np.mean(r)), float(np.mean(r)) - half, float(np.mean(r)) + half


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument(
        "--model",
        choices=("mlp", "cnn"),
        default="mlp",
        help="the MLP 64-width-width-10, or rectax's linen CNN (16, 32) with a Dense head of "
        "width units on 8 x 8 x 1 inputs",
    )
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument(
        "--no-donate", action="store_true", help="compile the steps without donating their inputs"
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "recycle_overhead_latest.json")
    parser.add_argument(
        "--draws", action="store_true", help="time fire's keys and column draws alone (no JSON)"
    )
    parser.add_argument(
        "--ops", action="store_true", help="count each step's compiled operations (no JSON)"
    )
    parser.add_argument(
        "--target", help="print each step's compiled memory for this compile target (no JSON)"
    )
    args = parser.parse_args()
    if args.target:
        memories(args.width, args.batch, not args.no_donate, args.model, args.target)
        return
    if args.ops:
        ops(args.width, args.batch, args.model)
        return
    if args.draws:
        draws(args.width, args.rounds)
        return
    variants, _, _ = steps(args.width, args.batch, not args.no_donate, args.model)
    # Fresh copies: every step donates its params and state.
    carry = {k: jax.tree.map(jnp.copy, (v["params"], v["state"])) for k, v in variants.items()}
    for k, v in variants.items():  # warm up
        for _ in range(3):
            carry[k] = v["fn"](*carry[k])
        jax.block_until_ready(carry[k])
    times: dict[str, list[float]] = {k: [] for k in variants}
    cpu: dict[str, list[float]] = {k: [] for k in variants}
    rng = random.Random(0)
    for _ in range(args.rounds):
        order = list(variants)
        rng.shuffle(order)
        for k in order:
            fn = variants[k]["fn"]
            start, start_cpu = time.perf_counter(), time.process_time()
            c = carry[k]
            for _ in range(args.steps):
                c = fn(*c)
            jax.block_until_ready(c)
            times[k].append((time.perf_counter() - start) / args.steps)
            cpu[k].append((time.process_time() - start_cpu) / args.steps)
            carry[k] = c
    t = {k: np.asarray(v) for k, v in times.items()}
    u = {k: np.asarray(v) for k, v in cpu.items()}
    baseline = {k: "stats" for k in variants} | {"stats": "plain"}
    baseline.pop("plain")
    result: dict[str, Any] = {
        "command": " ".join(["python examples/recycle_overhead.py", *sys.argv[1:]]),
        "config": vars(args) | {"out": _shown(args.out)},
        "device": jax.devices()[0].device_kind,
        "jax": jax.__version__,
        "variants": {},
    }
    for k in variants:
        entry: dict[str, Any] = {
            "median_step_us": float(np.median(t[k]) * 1e6),
            "min_step_us": float(np.min(t[k]) * 1e6),
            "median_cpu_us": float(np.median(u[k]) * 1e6),
            "memory": variants[k]["memory"],
        }
        if k in baseline:
            entry["ratio_to"] = baseline[k]
            entry["ratio"] = interval(t[k] / t[baseline[k]])
            entry["min_ratio"] = float(np.min(t[k]) / np.min(t[baseline[k]]))
            entry["cpu_ratio"] = interval(u[k] / u[baseline[k]])
        if k.startswith("firing"):  # what a firing adds to the recycler's own idle step
            entry["cpu_ratio_to_idle"] = interval(u[k] / u["idle"])
        result["variants"][k] = entry
        ratio = entry.get("ratio")
        shown = ""
        if ratio:
            cr = entry["cpu_ratio"]
            shown = (
                f"  x{ratio[0]:.3f} [{ratio[1]:.3f}, {ratio[2]:.3f}] (min x{entry['min_ratio']:.3f}"
                f"; cpu x{cr[0]:.3f} [{cr[1]:.3f}, {cr[2]:.3f}]) vs {baseline[k]}"
            )
            if "cpu_ratio_to_idle" in entry:
                shown += f" (cpu x{entry['cpu_ratio_to_idle'][0]:.3f} vs idle)"

        print(
            f"{k:16s} median {entry['median_step_us']:7.1f} min {entry['min_step_us']:7.1f} us/step"
            f"{shown}  memory {entry['memory']}"
        )
    args.out.write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    if "--target" in sys.argv:  # compile-only devices: set up before JAX initialises
        sys.path.insert(0, str(RESULTS.parent))
        from benchmarks import targets

        targets.configure_environment()
    jnp.zeros(())  # start the backend before timing
    main()
