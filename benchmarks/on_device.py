"""The harness on a real accelerator: time and memory of zoo steps, rectax vs jax.nn.

``python -m benchmarks.on_device`` runs where a GPU (or TPU) is attached, within a time budget
(default 8 minutes), and writes ``benchmarks/results/<device>-<date>-on-device.{json,md}``, the
device named by its kind (``nvidia-h200``). For each zoo configuration (model, dtype; no remat):

* memory: each library's training step runs in a process of its own, because the allocator's
  high-water mark (``peak_bytes_in_use``) cannot be reset; beside it, the compile-time figure of
  the same executable (``memory_analysis().peak_memory_in_bytes``, what ``--target`` tables
  report for a compile-only device), so the two can be compared;
* time: both libraries' steps in one process, interleaved (:func:`benchmarks.timing.interleave`),
  the median of the per-pair ratios and its 95% interval.

``--dry-run`` checks the whole path on any backend in seconds (the small MLP, one round, every
child in this process) and writes to ``--out`` (a temporary directory by default); on CPU the
measured peak is None (XLA:CPU has no allocator statistics).
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
MODELS = ("mlp", "gpt-gelu", "gpt-swiglu", "gpt-relu", "mnist", "resnet")
DTYPES = ("f32", "bf16")
BUDGET_S = 480.0


def device_name(kind: str) -> str:
    """A file-name slug of a device kind: ``"NVIDIA H200"`` -> ``"nvidia-h200"``."""
    return re.sub(r"[^a-z0-9]+", "-", kind.lower()).strip("-") or "device"


def _size(model: str, sizes: str) -> Any:
    from benchmarks import targets

    return targets.zoo_size(model, sizes)


def measure_memory(model: str, dtype: str, library: str, sizes: str) -> dict[str, Any]:
    """One library's step: compiled figures, then the allocator's peak over three runs."""
    import jax

    from benchmarks import zoo

    step = zoo.setup(model, library, "none", dtype, _size(model, sizes))
    params, data = zoo.concrete_args(step)
    compiled = jax.jit(step.gradient).lower(params, data).compile()
    analysis = compiled.memory_analysis()
    assert analysis is not None, "this backend reports no compiled memory"
    dev = jax.devices()[0]
    before = (dev.memory_stats() or {}).get("bytes_in_use")
    for _ in range(3):
        jax.block_until_ready(compiled(params, data))
    stats = dev.memory_stats() or {}
    return {
        "model": model,
        "dtype": dtype,
        "library": library,
        "compiled_peak": int(analysis.peak_memory_in_bytes),
        "compiled_temp": int(analysis.temp_size_in_bytes),
        "in_use_before": before,
        "measured_peak": stats.get("peak_bytes_in_use"),
    }


def measure_time(
    model: str, dtype: str, sizes: str, repeats: int, budget_s: float
) -> dict[str, Any]:
    """Both libraries' steps, interleaved: median rectax/jax.nn time ratio and its interval."""
    import jax

    from benchmarks import timing, zoo

    calls = {}
    for library in zoo.LIBRARIES:
        step = zoo.setup(model, library, "none", dtype, _size(model, sizes))
        params, data = zoo.concrete_args(step)
        fn = jax.jit(step.gradient)
        jax.block_until_ready(fn(params, data))
        calls[library] = lambda fn=fn, params=params, data=data: fn(params, data)
    times = timing.interleave(calls, repeats, budget_s=budget_s, count_compiles=False).times
    stats = timing.ratio_stats(times["rectax"], times["jax.nn"])
    return {
        "model": model,
        "dtype": dtype,
        "time_ratio": stats.median,
        "time_ratio_ci": [stats.low, stats.high],
        "rounds": len(times["rectax"]),
        "jax_nn_ms": 1e3 * sorted(times["jax.nn"])[len(times["jax.nn"]) // 2],
    }


def _child(task: dict[str, Any], in_process: bool, timeout_s: float) -> dict[str, Any] | None:
    """Runs ``task`` here, or in a fresh Python (its own allocator peak); None if it failed."""
    if in_process:
        return _run_task(task)
    cmd = [sys.executable, "-m", "benchmarks.on_device", "--child", json.dumps(task)]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=True)
    except (subprocess.SubprocessError, OSError) as err:
        print(f"  {task}: failed ({type(err).__name__})", file=sys.stderr)
        return None
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def _run_task(task: dict[str, Any]) -> dict[str, Any]:
    if task["kind"] == "memory":
        return measure_memory(task["model"], task["dtype"], task["library"], task["sizes"])
    return measure_time(
        task["model"], task["dtype"], task["sizes"], task["repeats"], task["budget"]
    )


def _mib(n: int | None) -> str:
    return "-" if n is None else f"{n / 2**20:.1f}"


def markdown(device: str, rows: Sequence[dict[str, Any]]) -> str:
    """The results as a table: per configuration, both libraries' peaks and the time ratio."""
    lines = [
        f"# rectax vs jax.nn on {device}",
        "",
        "| model | dtype | jax.nn peak (compiled / measured MiB) "
        "| rectax peak (compiled / measured MiB) | measured ratio | time ratio [95% CI] |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        nn, rx = r.get("jax.nn") or {}, r.get("rectax") or {}
        ratio = "-"
        if nn.get("measured_peak") and rx.get("measured_peak"):
            ratio = f"{rx['measured_peak'] / nn['measured_peak']:.3f}"
        t = r.get("time")
        timed = (
            "-" if not t else "{:.3f} [{:.3f}, {:.3f}]".format(t["time_ratio"], *t["time_ratio_ci"])
        )
        lines.append(
            f"| {r['model']} | {r['dtype']} "
            f"| {_mib(nn.get('compiled_peak'))} / {_mib(nn.get('measured_peak'))} "
            f"| {_mib(rx.get('compiled_peak'))} / {_mib(rx.get('measured_peak'))} "
            f"| {ratio} | {timed} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.on_device", description=__doc__)
    p.add_argument("--models", nargs="+", default=list(MODELS), help=f"zoo models {MODELS}")
    p.add_argument("--dtypes", nargs="+", default=list(DTYPES))
    p.add_argument("--sizes", choices=("small", "quick", "full"), default="quick")
    p.add_argument("--budget-s", type=float, default=BUDGET_S, help="stop starting configs after")
    p.add_argument("--time-budget", type=float, default=4.0, help="seconds of timed calls each")
    p.add_argument("--out", type=Path, help=f"results folder (default {RESULTS})")
    p.add_argument("--dry-run", action="store_true", help="the small MLP, in this process")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(_run_task(json.loads(args.child))))
        return 0

    import jax

    start = time.monotonic()
    kind = jax.devices()[0].device_kind
    device = device_name(kind)
    models, dtypes, sizes = args.models, args.dtypes, args.sizes
    repeats, time_budget = 5, args.time_budget
    if args.dry_run:
        models, dtypes, sizes, repeats, time_budget = ["mlp"], ["f32"], "small", 1, 0.0
    out = args.out or (Path(tempfile.mkdtemp()) if args.dry_run else RESULTS)
    rows: list[dict[str, Any]] = []
    for model in models:
        for dtype in dtypes:
            left = args.budget_s - (time.monotonic() - start)
            if left <= 0:
                print(f"budget spent: {model} {dtype} and after skipped", file=sys.stderr)
                break
            row: dict[str, Any] = {"model": model, "dtype": dtype}
            for library in ("jax.nn", "rectax"):
                task = {"kind": "memory", "model": model, "dtype": dtype, "library": library}
                row[library] = _child({**task, "sizes": sizes}, args.dry_run, left)
            task = {"kind": "time", "model": model, "dtype": dtype, "sizes": sizes}
            task |= {"repeats": repeats, "budget": time_budget}
            row["time"] = _child(task, args.dry_run, left)
            rows.append(row)
            print(markdown(kind, [row]).splitlines()[-1], flush=True)
    stem = f"{device}-{datetime.date.today().isoformat()}-on-device"
    out.mkdir(parents=True, exist_ok=True)
    meta = {
        "device": kind,
        "jax": jax.__version__,
        "sizes": sizes,
        "seconds": time.monotonic() - start,
    }
    (out / f"{stem}.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    (out / f"{stem}.md").write_text(markdown(kind, rows))
    print(f"wrote {out / stem}.json and .md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
