"""Runs cases and turns raw timings into :class:`Row` figures (the JSON's rows)."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache, partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import rectax as rx
from benchmarks import memory, models, torch_baseline, zoo
from benchmarks.cases import (
    ACTIVATIONS,
    DTYPES,
    RECTAX,
    Case,
    Config,
)
from benchmarks.timing import (
    Clock,
    Stats,
    Timings,
    compile_timed,
    interleave,
    pair_ratios,
    ratio_stats,
)

COPY = "xla:x * one"
RESIDUAL_SHAPE = (256, 1024)
LANES = 1024
"""Elementwise inputs are (size // LANES, LANES): a last axis that packs to whole bytes."""


@dataclass
class Row:
    """One measured (or skipped) implementation in one case; a field that does not apply is None.

    Time ratios are t(rectax)/t(other) per interleaved round (``pair_ratios``, rectax's rows
    only): ``ratio`` is their median, ``ratio_low``-``ratio_high`` its 95% confidence interval
    (:func:`benchmarks.timing.median_ci`); ``roofline_*`` likewise for the fraction of the copy
    kernel's bandwidth.
    """

    kind: str
    mode: str
    activation: str
    library: str
    function: str
    dtype: str
    size: int = 0
    shape: list[int] | None = None
    devices: int = 1
    status: str = "ok"
    note: str = ""
    compile_s: float | None = None
    times_s: list[float] = field(default_factory=list)
    median_s: float | None = None
    min_s: float | None = None
    max_s: float | None = None
    bytes: int | None = None
    gbps: float | None = None
    roofline_gbps: float | None = None
    roofline_fraction: float | None = None
    roofline_low: float | None = None
    roofline_high: float | None = None
    baseline: str | None = None
    pair_ratios: list[float] = field(default_factory=list)
    ratio: float | None = None
    ratio_low: float | None = None
    ratio_high: float | None = None
    ratios: dict[str, float] = field(default_factory=dict)
    temp_bytes: int | None = None
    temp_ratio: float | None = None
    peak_bytes: int | None = None
    residual_bytes_per_element: float | None = None
    residual_bytes: int | None = None
    compiles_during_timing: int = 0
    retraced: bool = False

    @property
    def label(self) -> str:
        return f"{self.library}:{self.function}"

    def set_ratio(self, stats: Stats) -> None:
        self.ratio, self.ratio_low, self.ratio_high = stats.median, stats.low, stats.high


@dataclass
class Context:
    """What every case needs: the configuration, the device, torch (or None) and the clock."""

    config: Config
    device: jax.Device
    torch: Any | None = None
    clock: Clock = time.perf_counter

    @property
    def platform(self) -> str:
        return str(self.device.platform)


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def environment(device: jax.Device, torch: Any | None) -> dict[str, Any]:
    """Device, backend and versions, logged with every result."""
    return {
        "backend": jax.default_backend(),
        "device": str(device),
        "device_kind": device.device_kind,
        "device_count": len(jax.devices(device.platform)),
        "jax": jax.__version__,
        "jaxlib": _version("jaxlib"),
        "flax": _version("flax"),
        "numpy": np.__version__,
        "python": platform.python_version(),
        "rectax": rx.__version__,
        "torch": None if torch is None else str(torch.__version__),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
    }


# --------------------------------------------------------------------------- helpers
def _error_note(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:300]


def _put(x: Any, where: Any) -> Any:
    return jax.block_until_ready(jax.device_put(x, where))


def _fill_times(row: Row, timings: Timings, label: str) -> None:
    times = timings.times[label]
    stats = timings.stats(label)
    row.times_s = list(times)
    row.median_s, row.min_s, row.max_s = stats.median, stats.min, stats.max
    row.compiles_during_timing = timings.compiles.get(label, 0)
    row.retraced = timings.retraced(label)
    if row.retraced:
        row.note = (row.note + " " if row.note else "") + (
            f"RETRACED: {row.compiles_during_timing} trace/compile events while timing"
        )


def _fill_ratios(rows: dict[str, Row], timings: Timings, rectax: str, baselines: list[str]) -> None:
    """rectax's row: ratio to the primary baseline (and to all); each baseline: rectax / it."""
    measured = [b for b in baselines if b in timings.times]
    if rectax not in timings.times:
        return
    for label in measured:
        stats = ratio_stats(timings.times[rectax], timings.times[label])
        rows[label].set_ratio(stats)
        rows[label].baseline = rectax
        rows[rectax].ratios[label] = stats.median
        if label == baselines[0]:
            row = rows[rectax]
            row.baseline = label
            row.set_ratio(stats)
            row.pair_ratios = pair_ratios(timings.times[rectax], timings.times[label])


def _fill_temp_ratios(rows: dict[str, Row], rectax: str, primary: str) -> None:
    base = rows.get(primary)
    mine = rows.get(rectax)
    if base is None or mine is None or mine.temp_bytes is None:
        return
    if base.temp_bytes:
        mine.temp_ratio = mine.temp_bytes / base.temp_bytes
    for row in rows.values():
        if row is not mine and row.temp_bytes:
            row.temp_ratio = mine.temp_bytes / row.temp_bytes


def _time_group(
    ctx: Context, fns: dict[str, Callable[[], Any]], rows: dict[str, Row]
) -> Timings | None:
    if not fns:
        return None
    config = ctx.config
    timings = interleave(
        fns,
        config.repeats,
        warmup=config.warmup,
        clock=ctx.clock,
        budget_s=config.budget_s,
        max_repeats=config.max_repeats,
    )
    for label, row in rows.items():
        if label in timings.times:
            _fill_times(row, timings, label)
    return timings


def _compile_into(
    ctx: Context,
    row: Row,
    fns: dict[str, Callable[[], Any]],
    label: str,
    fn: Callable[..., Any],
    args: Sequence[Any],
) -> None:
    """Compiles ``jit(fn)`` for ``args`` (timed, with temp memory) and registers its launcher."""
    try:
        jitted = jax.jit(fn)
        compiled, row.compile_s = compile_timed(jitted, *args, clock=ctx.clock)
        row.temp_bytes = _temp(compiled)
        fns[label] = partial(jitted, *args)
    except Exception as exc:  # one failing variant must not end the run
        row.status, row.note = "error", _error_note(exc)


def _temp(compiled: Any) -> int | None:
    found = memory.of(compiled)
    return None if found is None else found.temp


def _base_row(case: Case, library: str, function: str, **fields: Any) -> Row:
    fields.setdefault("kind", case.kind)
    return Row(
        mode=case.mode,
        activation=case.activation,
        library=library,
        function=function,
        dtype=case.dtype,
        size=case.size,
        **fields,
    )


# --------------------------------------------------------------------------- elementwise
def elementwise_shape(size: int) -> tuple[int, int]:
    return (1, size) if size < LANES else (size // LANES, LANES)


def copy_kernel(x: jax.Array, one: jax.Array) -> jax.Array:
    """The roofline kernel: reads and writes every element once; ``one`` is traced so XLA
    cannot simplify ``x * one`` away."""
    return x * one


def bytes_moved(mode: str, size: int, itemsize: int, width: int = 1) -> int:
    """Compulsory traffic: forward reads x, writes y; fwd+bwd reads x, g, writes y, dx (y and g
    are ``width`` times x's size: CReLU's 2)."""
    arrays = {"forward": 1 + width, "fwd+bwd": 2 + 2 * width, "copy": 2}[mode]
    return arrays * size * itemsize


@lru_cache(maxsize=1)
def _elementwise_inputs(
    shape: tuple[int, int], dtype_name: str, seed: int, device: jax.Device, width: int = 1
) -> tuple[np.ndarray, jax.Array, jax.Array, jax.Array]:
    """x (on the host and on ``device``), the cotangent (``width`` times as wide: the output's
    shape) and ``one``; cached: consecutive cases share their inputs."""
    dtype = DTYPES[dtype_name]
    key_x, key_g = jax.random.split(jax.random.key(seed))
    x_host = np.asarray(3 * jax.random.normal(key_x, shape, jnp.float32))
    x = _put(jnp.asarray(x_host, dtype), device)
    g_shape = (*shape[:-1], width * shape[-1])
    g = _put(jax.random.normal(key_g, g_shape, jnp.float32).astype(dtype), device)
    return x_host, x, g, _put(jnp.ones((), dtype), device)


def run_elementwise(case: Case, ctx: Context) -> list[Row]:
    act = ACTIVATIONS[case.activation]
    dtype = DTYPES[case.dtype]
    shape = elementwise_shape(case.size)
    x_host, x, g, one = _elementwise_inputs(
        shape, case.dtype, ctx.config.seed, ctx.device, act.width
    )
    forward = case.mode == "forward"
    args = (x,) if forward else (x, g)
    make = (lambda f: f) if forward else models.forward_backward
    nbytes = bytes_moved(case.mode, case.size, dtype.itemsize, act.width)

    rows: dict[str, Row] = {}
    fns: dict[str, Callable[[], Any]] = {}
    for impl in act.impls:
        row = rows[impl.label] = _base_row(
            case, impl.library, impl.function, shape=list(shape), bytes=nbytes
        )
        _compile_into(ctx, row, fns, impl.label, make(impl.fn), args)
    if ctx.torch is not None:
        found = torch_baseline.function(ctx.torch, case.activation)
        if found is not None:
            name, tfn = found
            row = rows[f"torch:{name}"] = _base_row(
                case, "torch", name, shape=list(shape), bytes=nbytes
            )
            try:
                call = torch_baseline.make_call(
                    ctx.torch, tfn, case.mode, x_host, case.dtype, ctx.platform
                )
                call()  # an optional baseline that fails must fail alone, not inside the group
                fns[row.label] = call
            except Exception as exc:  # e.g. a dtype torch lacks on this device
                row.status, row.note = "error", _error_note(exc)
    copy_row = rows[COPY] = _base_row(
        case,
        "xla",
        "x * one",
        kind="roofline",
        shape=list(shape),
        bytes=bytes_moved("copy", case.size, dtype.itemsize),
    )
    _compile_into(ctx, copy_row, fns, COPY, copy_kernel, (x, one))

    timings = _time_group(ctx, fns, rows)
    if timings is None:
        return list(rows.values())
    copy_times = timings.times.get(COPY)
    for label, row in rows.items():
        if row.median_s is None or row.bytes is None:
            continue
        row.gbps = row.bytes / row.median_s / 1e9
        if copy_times is not None and copy_row.bytes is not None:
            row.roofline_gbps = copy_row.bytes / statistics.median(copy_times) / 1e9
            per_pair = pair_ratios(copy_times, timings.times[label])
            stats = Stats.of([r * row.bytes / copy_row.bytes for r in per_pair])
            row.roofline_fraction = stats.median
            row.roofline_low, row.roofline_high = stats.low, stats.high
    torch_labels = [label for label in rows if label.startswith("torch:")]
    baselines = [b.label for b in act.baselines] + torch_labels
    _fill_ratios(rows, timings, act.rectax.label, baselines)
    return list(rows.values())


# --------------------------------------------------------------------------- training steps
def _model(case: Case, ctx: Context) -> tuple[Any, Callable[..., Any], Any, str]:
    key_p, key_x = jax.random.split(jax.random.key(ctx.config.seed))
    dtype = DTYPES[case.dtype]
    width = ACTIVATIONS[case.activation].width  # CReLU's next layers read twice the features
    if case.mode == "mlp":
        spec = ctx.config.mlp
        params = models.mlp_init(key_p, spec, dtype, width=width)
        x = models.mlp_batch(key_x, spec, dtype)
        note = f"MLP depth {spec.depth}, width {spec.width}, batch {spec.batch}"
        return params, partial(models.mlp_loss, linear_head=True), x, note
    cnn = ctx.config.cnn
    params = models.cnn_init(key_p, cnn, dtype, width)
    x = models.cnn_batch(key_x, cnn, dtype)
    note = f"CNN 3x3 convs {list(cnn.channels)}, batch {cnn.batch}, {cnn.image}x{cnn.image}"
    return params, models.cnn_loss, x, note


def run_train(case: Case, ctx: Context) -> list[Row]:
    act = ACTIVATIONS[case.activation]
    params, loss, x, note = _model(case, ctx)
    params = _put(params, ctx.device)
    x = _put(x, ctx.device)
    rows: dict[str, Row] = {}
    fns: dict[str, Callable[[], Any]] = {}
    for impl in act.impls:
        row = rows[impl.label] = _base_row(
            case, impl.library, impl.function, shape=list(x.shape), note=note
        )
        _compile_into(ctx, row, fns, impl.label, jax.grad(loss(impl.fn)), (params, x))
    timings = _time_group(ctx, fns, rows)
    if timings is not None:
        _fill_ratios(rows, timings, act.rectax.label, [b.label for b in act.baselines])
    _fill_temp_ratios(rows, act.rectax.label, act.primary.label)
    peak = memory.peak_bytes(ctx.device)
    for row in rows.values():
        row.peak_bytes = peak
    return list(rows.values())


# --------------------------------------------------------------------------- memory
def run_memory(case: Case, ctx: Context) -> list[Row]:
    """Residual bytes per element, and the compiled temp memory of the reference MLP."""
    act = ACTIVATIONS[case.activation]
    dtype = DTYPES[case.dtype]
    spec = ctx.config.mlp_memory
    out: list[Row] = []
    for impl in act.impls:
        row = _base_row(case, impl.library, impl.function, shape=list(RESIDUAL_SHAPE))
        row.mode = "residuals"
        try:
            row.residual_bytes_per_element = memory.residual_bytes_per_element(
                impl.fn, RESIDUAL_SHAPE, dtype
            )
        except Exception as exc:
            row.status, row.note = "error", _error_note(exc)
        out.append(row)

    params, x = models.mlp_shapes(spec, dtype, width=act.width)
    rows: dict[str, Row] = {}
    for impl in act.impls:
        row = rows[impl.label] = _base_row(
            case,
            impl.library,
            impl.function,
            shape=[spec.batch, spec.width],
            note=f"compiled only: MLP depth {spec.depth}, width {spec.width}, batch {spec.batch}",
        )
        row.mode = "mlp-ref"
        loss = models.mlp_loss(impl.fn, linear_head=True)
        _compile_into(ctx, row, {}, impl.label, jax.grad(loss), (params, x))  # compiled only
    _fill_temp_ratios(rows, act.rectax.label, act.primary.label)
    return out + list(rows.values())


# --------------------------------------------------------------------------- zoo
def _zoo_timed(case: Case, config: Config) -> bool:
    return config.zoo_timed is None or (case.mode, case.dtype) in config.zoo_timed


def run_zoo(case: Case, ctx: Context) -> list[Row]:
    """One zoo model under one remat setting: jax.nn's activation vs rectax's.

    Memory (compiled temp bytes, saved residual bytes) at the model's memory size, compiled
    only; step time (interleaved, median of per-round ratios) at its smaller timed size.
    """
    model = zoo.MODELS[case.activation]
    size = model.compiled_size(ctx.config.quick)
    rows: dict[str, Row] = {}
    for library in zoo.LIBRARIES:
        row = rows[library] = _base_row(
            case, library, model.family, note=f"{model.description}; {dict(size)}"
        )
        try:
            step = zoo.setup(case.activation, library, case.mode, case.dtype, size)
            row.temp_bytes = zoo.memory(step, ctx.config.seed).temp
            row.residual_bytes = zoo.residual_bytes(step, ctx.config.seed)
        except Exception as exc:  # one failing variant must not end the run
            row.status, row.note = "error", _error_note(exc)
    mine, base = rows[RECTAX], rows["jax.nn"]
    if mine.temp_bytes is not None and base.temp_bytes:
        mine.temp_ratio = base.temp_ratio = mine.temp_bytes / base.temp_bytes
    if not _zoo_timed(case, ctx.config) or any(r.status != "ok" for r in rows.values()):
        return list(rows.values())
    fns: dict[str, Callable[[], Any]] = {}
    args = None
    for library, row in rows.items():
        try:
            step = zoo.setup(case.activation, library, case.mode, case.dtype, model.time_size)
            if args is None:  # one set of parameters and data: the variants differ in act only
                args = _put(zoo.concrete_args(step, ctx.config.seed), ctx.device)
            jitted = jax.jit(step.gradient)
            _, row.compile_s = compile_timed(jitted, *args, clock=ctx.clock)
            fns[library] = partial(jitted, *args)
        except Exception as exc:
            row.status, row.note = "error", _error_note(exc)
    if len(fns) == len(rows):
        timings = _time_group(ctx, fns, rows)
        if timings is not None:
            _fill_ratios(rows, timings, RECTAX, ["jax.nn"])
    return list(rows.values())


# --------------------------------------------------------------------------- driver
RUNNERS: dict[str, Callable[[Case, Context], list[Row]]] = {
    "zoo": run_zoo,
    "elementwise": run_elementwise,
    "train": run_train,
    "memory": run_memory,
}


def run_case(case: Case, ctx: Context) -> list[Row]:
    """Runs one case; an unexpected failure becomes an error row instead of ending the run."""
    try:
        return RUNNERS[case.kind](case, ctx)
    except Exception as exc:
        return [
            Row(
                kind=case.kind,
                mode=case.mode,
                activation=case.activation,
                library=RECTAX,
                function="(case)",
                dtype=case.dtype,
                size=case.size,
                status="error",
                note=_error_note(exc),
            )
        ]


def run(
    cases: Sequence[Case],
    ctx: Context,
    on_case: Callable[[int, Case], None] | None = None,
) -> list[Row]:
    """Runs every case in order; ``on_case(i, case)`` is called before each (the progress bar)."""
    rows: list[Row] = []
    if ctx.config.torch and ctx.torch is None:
        rows.append(
            Row(
                kind="elementwise",
                mode="forward",
                activation="*",
                library="torch",
                function="torch.nn.functional",
                dtype="*",
                status="skipped",
                note="torch is not importable (optional baseline; never installed by the harness)",
            )
        )
    for i, case in enumerate(cases):
        if on_case is not None:
            on_case(i, case)
        rows += run_case(case, ctx)
    return rows
