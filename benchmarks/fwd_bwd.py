"""The lone fwd+bwd kernel on XLA:CPU: what the compiled step runs, and its time against jax.nn.

``python -m benchmarks.fwd_bwd [--activations NAME ...] [--sizes EXP ...] [--clock cpu|wall]
[--budget S] [--parts]``.

The kernel is :func:`benchmarks.models.forward_backward` (``y, vjp = jax.vjp(f, x); return y,
vjp(g)[0]`` in one ``jax.jit``) on ``make bench``'s inputs (:func:`benchmarks.runner.
elementwise_shape`, float32). Per activation and size it prints, for rectax and its baseline
(:data:`benchmarks.cases.ACTIVATIONS`), the fusions of the optimized HLO
(``compiled.as_text()``) in order, each ``1`` or ``P`` (``P``: XLA:CPU's parallel task
assignment splits it across threads, ``outer_dimension_partitions``), and the median of the
per-round time ratios rectax / baseline over interleaved rounds with its 95% interval
(:func:`benchmarks.timing.interleave`, :func:`benchmarks.timing.ratio_stats`).

``--clock cpu`` (the default) times each call in CPU seconds of the process (all its threads,
``time.process_time``) instead of wall-clock seconds: on a shared machine whose other processes
take the cores, its per-round ratios spread less (95% intervals of ±0.01-0.03 where wall-clock
ones reach ±0.1); a run's median still moves with the machine's load from run to run.

Why ``P`` matters: XLA:CPU (``xla/service/cpu/parallel_task_assignment.cc``) splits a loop
fusion whose flops exceed its bytes accessed (``HloCostAnalysis``; transcendentals such as
``exp`` and ``tanh`` are not flops) into as many tasks as threads as soon as
``flops + 2 transcendentals + 10 bytes`` exceeds 100000, i.e. at any size from about 2^10
float32 elements on; a memory-bound one only per 256 KiB accessed. At 2^12 elements a split
fusion costs the hand-off between threads, more than its arithmetic.

``--parts`` times the 1-bit kernel's fusions instead, each jitted alone (:func:`parts`): the
pack, rectax's backward and jax.nn's, and a copy and a row sum of ``x`` for the floors, each
against relu's forward.
"""

from __future__ import annotations

import argparse
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from rectax._core import _gradients

from . import models, timing
from .cases import ACTIVATIONS
from .runner import elementwise_shape

_FUSION = re.compile(r"^\s+(ROOT )?%\S+ = \S+ fusion\(")
_SPLIT = "outer_dimension_partitions"


def fusions(hlo_text: str | None) -> str:
    """The fusions of an optimized HLO module's text in order: ``1`` or ``P`` (split), joined."""
    lines = [line for line in (hlo_text or "").splitlines() if _FUSION.match(line)]
    return ",".join("P" if _SPLIT in line else "1" for line in lines)


def _interleave(
    calls: Mapping[str, Callable[..., Any]], clock: str, budget_s: float, repeats: int
) -> timing.Timings:
    """``calls`` timed in interleaved rounds by ``clock`` (``"cpu"``: process CPU time)."""
    return timing.interleave(
        calls,
        repeats,
        warmup=2,
        budget_s=budget_s,
        max_repeats=2000,
        clock=time.process_time if clock == "cpu" else time.perf_counter,
        count_compiles=False,
    )


@dataclass(frozen=True)
class Result:
    activation: str
    size: int
    rectax_fusions: str
    baseline: str
    baseline_fusions: str
    ratio: timing.Stats | None

    def line(self) -> str:
        r = self.ratio
        timed = "" if r is None else f"  ratio {r.median:.3f} [{r.low:.3f}, {r.high:.3f}]"
        return (
            f"{self.activation:14s} 2^{self.size.bit_length() - 1:<3d} "
            f"rectax [{self.rectax_fusions}]  {self.baseline} [{self.baseline_fusions}]{timed}"
        )


def measure(
    name: str, size: int, *, clock: str = "cpu", budget_s: float = 3.0, repeats: int = 10
) -> Result:
    """Compiles rectax's and the baseline's fwd+bwd kernel of ``name`` at ``size`` elements;
    times them in interleaved rounds unless ``budget_s`` is 0."""
    act = ACTIVATIONS[name]
    shape = elementwise_shape(size)
    key_x, key_g = jax.random.split(jax.random.key(0))
    x = 3 * jax.random.normal(key_x, shape, jnp.float32)
    g = jax.random.normal(key_g, (*shape[:-1], act.width * shape[-1]), jnp.float32)
    impls = {"rectax": act.rectax, "baseline": act.baselines[0]}
    compiled = {
        label: jax.jit(models.forward_backward(impl.fn)).lower(x, g).compile()
        for label, impl in impls.items()
    }
    ratio = None
    if budget_s > 0:
        calls = {label: (lambda c=c: c(x, g)) for label, c in compiled.items()}
        timed = _interleave(calls, clock, budget_s, repeats)
        ratio = timing.ratio_stats(timed.times["rectax"], timed.times["baseline"])
    return Result(
        name,
        size,
        fusions(compiled["rectax"].as_text()),
        f"{act.baselines[0].library}",
        fusions(compiled["baseline"].as_text()),
        ratio,
    )


def parts(
    size: int, *, clock: str = "cpu", budget_s: float = 3.0, repeats: int = 10
) -> dict[str, timing.Stats]:
    """The 1-bit kernel's fusions at ``size`` float32 elements, each jitted alone, timed in
    interleaved rounds: the median ratio (95% interval) of each to relu's forward.

    ``pack``: the mask of ``x > 0`` packed (:func:`rectax._core._gradients.pack_mask`);
    ``backward``: rectax's, the cotangent selected by the unpacked words; ``jax.nn backward``:
    selected by ``x > 0``; ``copy``: reads and writes an array (the forward's traffic);
    ``read x``: a row sum of ``x`` (a pass that only reads it).
    """
    shape = elementwise_shape(size)
    key_x, key_g = jax.random.split(jax.random.key(0))
    x = 3 * jax.random.normal(key_x, shape, jnp.float32)
    g = jax.random.normal(key_g, shape, jnp.float32)
    words = jax.jit(_gradients.pack_mask)(x > 0)
    zero = jnp.zeros((), jnp.float32)
    pieces = {
        "forward": (lambda x, g: jnp.maximum(x, zero), x),
        "copy": (lambda x, g: x * g[(0,) * g.ndim], x),
        "read x": (lambda x, g: jnp.sum(x, axis=-1), x),
        "pack": (lambda x, g: _gradients.pack_mask(x > zero), x),
        "backward": (
            lambda w, g: lax.select(_gradients.unpack_mask(w, g.shape), g, jnp.zeros_like(g)),
            words,
        ),
        "jax.nn backward": (lambda x, g: lax.select(x > zero, g, jnp.zeros_like(g)), x),
    }
    compiled = {label: jax.jit(f).lower(a, g).compile() for label, (f, a) in pieces.items()}
    calls = {label: (lambda c=c, a=pieces[label][1]: c(a, g)) for label, c in compiled.items()}
    timed = _interleave(calls, clock, budget_s, repeats)
    return {
        label: timing.ratio_stats(timed.times[label], timed.times["forward"])
        for label in pieces
        if label != "forward"
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--activations", nargs="+", default=list(ACTIVATIONS))
    parser.add_argument("--sizes", nargs="+", type=int, default=[12, 24], metavar="EXP")
    parser.add_argument("--clock", choices=("cpu", "wall"), default="cpu")
    parser.add_argument("--budget", type=float, default=3.0, help="seconds per case; 0: no timing")
    parser.add_argument("--parts", action="store_true", help="the 1-bit kernel's fusions alone")
    args = parser.parse_args(argv)
    for exp in args.sizes:
        if args.parts:
            for label, r in parts(2**exp, clock=args.clock, budget_s=args.budget).items():
                print(
                    f"2^{exp:<3d} {label:16s} / relu forward {r.median:.3f} "
                    f"[{r.low:.3f}, {r.high:.3f}]",
                    flush=True,
                )
            continue
        for name in args.activations:
            print(measure(name, 2**exp, clock=args.clock, budget_s=args.budget).line(), flush=True)


if __name__ == "__main__":
    main()
