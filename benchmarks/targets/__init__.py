"""Compile-only devices: the zoo's memory on an H100, an A100, an H200 or a TPU v5e, here.

XLA's compiled memory (``memory_analysis()``) is deterministic and needs no accelerator: with the
target's PJRT plugin installed (``jax-cuda12-plugin`` and ``jax-cuda12-pjrt``, or ``libtpu``, at
the installed jax's version; the ``targets`` extra), ``jax.experimental.topologies`` describes a
device that ``jax.jit(f).lower(*args).compile()`` compiles for, on a CPU-only machine:

* GPU: ``get_topology_desc(name, "cuda", target_config=<GpuTargetConfigProto text>,
  topology="1x1x1")``, with ``JAX_SKIP_CUDA_CONSTRAINTS_CHECK=1`` (no CUDA libraries needed). The
  device descriptions are XLA's own (``*.txtpb`` here, see ``NOTICE.md``).
* TPU: ``get_topology_desc("v5e:2x2", platform="tpu", ...)``; the first of its four chips.

Arguments are ``jax.ShapeDtypeStruct`` committed to the device (``SingleDeviceSharding``). The
figure is ``peak_memory_in_bytes``: XLA:TPU reports no temp size (0), XLA:GPU and XLA:CPU report
both. Nothing is executed. :func:`configure_environment` must run before JAX initialises
(``JAX_PLATFORMS=cpu``: the plugins are then loaded for compiling only).
"""

from __future__ import annotations

import functools
import importlib.util
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # benchmarks.memory imports JAX, which configure_environment must precede
    from benchmarks.memory import Memory

SPECS = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Target:
    """A compile target: its name, the PJRT platform, and the GPU spec file (GPU only)."""

    name: str
    platform: str
    description: str
    spec: str | None = None
    plugin: str | None = None

    @property
    def residual_target(self) -> str:
        """What :func:`rectax.residual_target` is set to while tracing for this target."""
        return {"cuda": "gpu"}.get(self.platform, self.platform)


TARGETS: dict[str, Target] = {
    t.name: t
    for t in [
        Target("cpu", "cpu", "XLA:CPU (this machine)"),
        Target("h100", "cuda", "NVIDIA H100 SXM 80GB", "h100_sxm.txtpb", "jax_plugins.xla_cuda12"),
        Target(
            "a100", "cuda", "NVIDIA A100 SXM 80GB", "a100_sxm_80.txtpb", "jax_plugins.xla_cuda12"
        ),
        Target("h200", "cuda", "NVIDIA H200 141GB", "h200.txtpb", "jax_plugins.xla_cuda12"),
        Target("tpu-v5e", "tpu", "TPU v5e (v5 lite), one chip of a 2x2 slice", None, "libtpu"),
    ]
}


def configure_environment() -> None:
    """Compiling for an accelerator from a CPU-only machine: set before JAX initialises."""
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    os.environ.setdefault("JAX_SKIP_CUDA_CONSTRAINTS_CHECK", "1")
    os.environ.setdefault("ALLOW_MULTIPLE_LIBTPU_LOAD", "1")  # no TPU is used: no lock


def missing(name: str) -> str | None:
    """Why ``name`` cannot be compiled for here (its plugin is not installed), else None."""
    target = TARGETS[name]
    if target.plugin is None:
        return None
    try:
        found = importlib.util.find_spec(target.plugin) is not None
    except ModuleNotFoundError:
        found = False
    if found:
        return None
    extra = "jax-cuda12-plugin and jax-cuda12-pjrt" if target.platform == "cuda" else "libtpu"
    return f"{name}: {extra} not installed (pip install -e '.[targets]')"


@functools.cache
def device(name: str) -> Any:
    """A compile-only device of target ``name`` (``cpu`` is this machine's first CPU device)."""
    import jax
    from jax.experimental import topologies

    target = TARGETS[name]
    if target.platform == "cpu":
        return jax.devices("cpu")[0]
    reason = missing(name)
    if reason:
        raise RuntimeError(reason)
    if target.platform == "cuda":
        assert target.spec is not None
        text = (SPECS / target.spec).read_text(encoding="utf-8")
        topo = topologies.get_topology_desc(name, "cuda", target_config=text, topology="1x1x1")
    else:
        topo = topologies.get_topology_desc(
            "v5e:2x2",
            platform="tpu",
            chips_per_host_bounds=(2, 2, 1),
            num_slices=1,
            wrap=(False, False, False),
        )
    return topo.devices[0]


def abstract(tree: Any, dev: Any) -> Any:
    """``tree``'s arrays (or shapes) as ``ShapeDtypeStruct`` committed to ``dev``."""
    import jax
    from jax.sharding import SingleDeviceSharding

    sharding = SingleDeviceSharding(dev)
    return jax.tree_util.tree_map(
        lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=sharding), tree
    )


def compile_for(name: str, fn: Callable[..., Any], *args: Any) -> Any:
    """``jax.jit(fn)`` compiled for target ``name`` on abstract ``args``; traced under
    :func:`rectax.residual_target` set to that target."""
    import jax

    import rectax as rx

    dev = device(name)
    with rx.residual_target(TARGETS[name].residual_target):
        lowered = jax.jit(fn).lower(*abstract(args, dev))
    return lowered.compile()


def memory(name: str, fn: Callable[..., Any], *args: Any) -> Memory:
    """Compiled memory of ``jax.jit(fn)(*args)`` on target ``name``, never run
    (:func:`benchmarks.memory.compiled` with ``target=name``)."""
    from benchmarks import memory as measure

    return measure.compiled(fn, *args, target=name)


# --------------------------------------------------------------------------- the zoo's table
SMALL = "small"
"""The size preset of the compile checks in the tests (:data:`SMALL_SIZES`)."""

SMALL_SIZES: dict[str, dict[str, Any]] = {
    "mnist": {"batch": 32},
    "mnist-nnx": {"batch": 32},
    "resnet": {"batch": 16, "image": 16, "widths": (32,), "blocks": 2},
    "gpt-gelu": {"batch": 4, "seq": 64, "d": 128, "layers": 2, "ffn": "mlp"},
    "gpt-swiglu": {"batch": 4, "seq": 64, "d": 128, "layers": 2, "ffn": "swiglu"},
    "gpt-relu": {"batch": 4, "seq": 64, "d": 128, "layers": 2, "ffn": "mlp"},
    "gpt-sqrelu": {"batch": 4, "seq": 64, "d": 128, "layers": 2, "ffn": "mlp"},
    "mlp": {"batch": 256, "width": 512, "depth": 4},
    "flax-resnet": {"batch": 8, "image": 32, "filters": 16},
    "flax-lm1b": {"batch": 4, "seq": 64, "vocab": 256, "d": 128, "layers": 2},
}


@dataclass(frozen=True)
class ZooRow:
    """One zoo configuration compiled for one target: both libraries' memory."""

    target: str
    model: str
    dtype: str
    remat: str
    jax_nn: Memory
    rectax: Memory

    @property
    def ratio(self) -> float:
        """rectax's peak over jax.nn's."""
        return self.rectax.peak / self.jax_nn.peak


def zoo_size(model: str, preset: str) -> Any:
    """The zoo model's sizes: ``quick`` or ``full`` (the zoo's own), or ``small``."""
    from benchmarks import zoo

    if preset == SMALL:
        return SMALL_SIZES[model]
    return zoo.MODELS[model].compiled_size(preset == "quick")


def zoo_row(target: str, model: str, dtype: str, remat: str, preset: str = "quick") -> ZooRow:
    """Compiles the zoo model's training step with each library's activation for ``target``."""
    from benchmarks import zoo

    size = zoo_size(model, preset)
    figures = {}
    for library in zoo.LIBRARIES:
        step = zoo.setup(model, library, remat, dtype, size)
        figures[library] = zoo.memory(step, target=target)
    return ZooRow(target, model, dtype, remat, figures["jax.nn"], figures["rectax"])


REFERENCES: dict[str, tuple[str, str, dict[str, Any]]] = {
    "mlp gelu": ("mlp", "rx.gelu", {}),
    "mlp gelu bits=4": ("mlp", "rx.gelu", {"bits": 4}),
    "gpt-gelu bits=4": ("gpt-gelu", "rx.gelu", {"bits": 4}),
}
"""Reference steps beside the zoo: name -> (zoo model, rectax function, its keywords), each
against jax.nn.gelu (tanh) in the same model (the README's 8-layer MLP and few-bit GELU)."""


def reference_row(target: str, name: str, dtype: str, preset: str = "quick") -> ZooRow:
    """A :data:`REFERENCES` step with jax.nn.gelu and with rectax's variant, for ``target``."""
    import functools

    import jax

    import rectax as rx
    from benchmarks import zoo

    model, _, kwargs = REFERENCES[name]
    size = dict(zoo_size(model, preset))
    if model == "mlp":
        size = {**size, "depth": 8}
    acts: dict[str, Callable[[Any], Any]] = {
        "jax.nn": jax.nn.gelu,
        "rectax": functools.partial(rx.gelu, **kwargs),
    }
    figures = {}
    for library, act in acts.items():
        figures[library] = zoo.memory(
            zoo.setup(model, library, "none", dtype, size, act=act), target=target
        )
    return ZooRow(target, name, dtype, "none", figures["jax.nn"], figures["rectax"])


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f}"


def table_line(row: ZooRow) -> str:
    """A Markdown table row: model, dtype, remat, both peaks in MiB, the ratio."""
    flag = " **over**" if row.rectax.peak > row.jax_nn.peak else ""
    temp = f"{row.rectax.temp / row.jax_nn.temp:.3f}" if row.jax_nn.temp else "-"
    return (
        f"| {row.model} | {row.dtype} | {row.remat} | {_mib(row.jax_nn.peak)} | "
        f"{_mib(row.rectax.peak)} | {row.ratio:.3f}{flag} | {temp} |"
    )


HEADER = (
    "| model | dtype | remat | jax.nn peak MiB | rectax peak MiB | rectax/jax.nn peak | temp |\n"
    "|---|---|---|---|---|---|---|"
)


def run_table(
    target: str,
    preset: str,
    models: Sequence[str],
    dtypes: Sequence[str],
    remats: Sequence[str],
    references: bool = True,
    write: Callable[[str], None] = print,
) -> list[ZooRow]:
    """Compiles the zoo (and the references) for ``target``; writes a Markdown table as it goes."""
    import time

    start = time.perf_counter()
    write(f"## {TARGETS[target].description}: compiled peak memory ({preset} sizes)\n")
    write(HEADER)
    rows = []
    for model in models:
        for dtype in dtypes:
            for remat in remats:
                rows.append(zoo_row(target, model, dtype, remat, preset))
                write(table_line(rows[-1]))
    if references:
        for name in REFERENCES:
            for dtype in dtypes:
                rows.append(reference_row(target, name, dtype, preset))
                write(table_line(rows[-1]))
    zoo_rows = [r for r in rows if r.model not in REFERENCES]
    over = [r for r in zoo_rows if r.rectax.peak > r.jax_nn.peak]
    worst = max((r.ratio for r in zoo_rows), default=float("nan"))
    write(
        f"\n{len(zoo_rows)} zoo configurations, {len(over)} above jax.nn's peak (worst "
        f"{worst:.3f}); {time.perf_counter() - start:.0f} s.\n"
    )
    return rows
