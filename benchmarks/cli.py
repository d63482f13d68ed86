"""Command line: ``python -m benchmarks`` runs the cases, writes the results, prints a summary.

``--backend`` must reach JAX before it initialises, so JAX and everything that imports it are
imported inside :func:`run` and :func:`run_target`.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "latest.json"


def parse_sizes(tokens: Sequence[str]) -> tuple[int, ...]:
    """Sizes as powers of two: ``24`` or ``2^24`` is 2**24 elements; ``10:26:2`` is a range of
    exponents (inclusive, step 2)."""
    sizes: list[int] = []
    for token in tokens:
        for part in token.split(","):
            part = part.strip()
            if not part:
                continue
            if ":" in part:
                bounds = [int(p) for p in part.split(":")]
                step = bounds[2] if len(bounds) > 2 else 1
                sizes += [2**k for k in range(bounds[0], bounds[1] + 1, step)]
            else:
                sizes.append(2 ** int(re.sub(r"^2\^", "", part)))
    return tuple(sizes)


def _names(tokens: Sequence[str] | None) -> tuple[str, ...] | None:
    if tokens is None:
        return None
    return tuple(n for t in tokens for n in t.split(",") if n)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Benchmark rectax activations against jax.nn, flax and (if importable) torch.",
    )
    p.add_argument("--quick", action="store_true", help="the representative subset (make bench)")
    p.add_argument("--activations", nargs="+", metavar="NAME", help="activations (default all)")
    p.add_argument(
        "--sizes",
        nargs="+",
        metavar="EXP",
        help="element counts as exponents of 2: 12 24 or 10:26:2",
    )
    p.add_argument("--dtypes", nargs="+", metavar="DTYPE", help="f32 bf16 f16")
    p.add_argument(
        "--modes",
        nargs="+",
        metavar="MODE",
        help="zoo forward fwd+bwd mlp cnn memory (default all)",
    )
    p.add_argument(
        "--zoo",
        nargs="+",
        metavar="MODEL",
        help="zoo models (default all): mnist mnist-nnx resnet gpt-gelu gpt-swiglu gpt-relu "
        "gpt-sqrelu mlp flax-resnet flax-lm1b",
    )
    p.add_argument("--repeats", type=int, help="the fewest timed interleaved rounds per case")
    p.add_argument("--budget", type=float, help="seconds of timed calls per case, beyond --repeats")
    p.add_argument("--warmup", type=int, help="untimed rounds before timing")
    p.add_argument("--backend", help="JAX platform to use: cpu, cuda, rocm, tpu (JAX_PLATFORMS)")
    p.add_argument("--device", type=int, default=0, help="index of the device to run on")
    p.add_argument("--no-torch", action="store_true", help="skip the optional PyTorch baseline")
    p.add_argument("--seed", type=int, default=0, help="PRNG seed for inputs and parameters")
    p.add_argument(
        "--output", type=Path, default=DEFAULT_OUTPUT, help=f"JSON path (default {DEFAULT_OUTPUT})"
    )
    p.add_argument("--list", action="store_true", help="print the cases and exit")
    p.add_argument(
        "--target",
        metavar="TARGET",
        help="compile only, for a target (cpu h100 a100 h200 tpu-v5e; benchmarks/targets): "
        "print the zoo's and the references' peak memory, rectax vs jax.nn",
    )
    p.add_argument(
        "--target-sizes",
        choices=("small", "quick", "full"),
        help="model sizes of the --target table (default quick; --quick: quick)",
    )
    return p


def run_target(args: argparse.Namespace) -> int:
    """``--target``: the zoo compiled for a target (never run); 1 if rectax is ever over."""
    from benchmarks import targets
    from benchmarks.cases import ZOO_MODELS
    from benchmarks.models import REMATS

    reason = targets.missing(args.target)
    if reason:
        print(reason, file=sys.stderr)
        return 2
    rows = targets.run_table(
        args.target,
        args.target_sizes or "quick",
        args.zoo or ZOO_MODELS,
        args.dtypes or ("f32", "bf16"),
        REMATS,
        write=lambda line: print(line, flush=True),
    )
    return 1 if any(r.rectax.peak > r.jax_nn.peak for r in rows if r.model in ZOO_MODELS) else 0


def make_config(args: argparse.Namespace, platform: str) -> Any:
    """The quick or full preset, with the command line's overrides."""
    from benchmarks.cases import full_config, quick_config

    config = quick_config(platform) if args.quick else full_config(platform)
    overrides: dict[str, Any] = {"device_index": args.device, "seed": args.seed}
    for name in ("activations", "sizes", "dtypes", "modes", "repeats", "warmup"):
        if getattr(args, name):
            overrides[name] = getattr(args, name)
    if args.budget is not None:
        overrides["budget_s"] = args.budget
    if args.dtypes:
        overrides["secondary_activations"] = None
    if args.activations:
        overrides["cnn_activations"] = None
    if args.zoo:
        overrides["zoo_models"] = args.zoo
    if args.no_torch:
        overrides["torch"] = False
    return config.replace(**overrides)


def run(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """Runs the cases; writes the JSON and the Markdown; prints the summary.

    Returns 1 when a rectax case raised, else 0 (a missed goal is a finding, not a failure).
    """
    import jax  # only now: see the module docstring

    from benchmarks import goals, report, runner, torch_baseline
    from benchmarks.cases import RECTAX, generate_cases

    console = report.make_console()
    config = make_config(args, jax.default_backend())
    cases = generate_cases(config)
    if args.list:
        for case in cases:
            console.print(case.title)
        console.print(f"{len(cases)} cases")
        return 0
    torch = torch_baseline.load() if config.torch else None
    ctx = runner.Context(config, jax.devices()[config.device_index], torch)
    start = time.perf_counter()

    def progress(i: int, case: Any) -> None:  # one line per kind of case, on stderr
        if i == 0 or case.kind != cases[i - 1].kind:
            count = sum(c.kind == case.kind for c in cases)
            elapsed = time.perf_counter() - start
            print(f"[{elapsed:4.0f} s] {case.kind}: {count} cases", file=sys.stderr, flush=True)

    rows = runner.run(cases, ctx, progress)
    results, heads = goals.evaluate(rows), goals.headlines(rows)
    result = {
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "argv": list(argv),
        "quick": config.quick,
        "cases": len(cases),
        "wall_s": time.perf_counter() - start,
        "environment": runner.environment(ctx.device, torch),
        "config": dataclasses.asdict(config),
        "rows": [dataclasses.asdict(r) for r in rows],
        "goals": {
            g.goal.name: {"verdict": g.verdict, "cases": [dataclasses.asdict(c) for c in g.cases]}
            for g in results
        },
        "headlines": [dataclasses.asdict(h) for h in heads],
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    md = args.output.with_suffix(".md")
    args.output.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    md.write_text(report.markdown(result, rows, heads, results), encoding="utf-8")
    report.print_summary(console, result, heads, results, [args.output, md])
    failed = [r for r in rows if r.status == "error" and r.library == RECTAX]
    for r in failed:  # a baseline (torch, flax) may fail alone; rectax failing fails the run
        console.print(f"[red]rectax error[/red] {r.kind} {r.mode} {r.activation}: {r.note}")
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.activations = _names(args.activations)
    args.dtypes = _names(args.dtypes)
    args.modes = _names(args.modes)
    args.zoo = _names(args.zoo)
    args.sizes = parse_sizes(args.sizes) if args.sizes else None
    if args.target:
        from benchmarks import targets

        if args.target not in targets.TARGETS:
            print(
                f"unknown --target {args.target!r}; known: {list(targets.TARGETS)}", file=sys.stderr
            )
            return 2
        targets.configure_environment()
        return run_target(args)
    if args.backend:
        os.environ["JAX_PLATFORMS"] = args.backend
    return run(args, argv)
