"""One benchmark session: configuration from the command line, the run, and every output file."""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from benchmarks import compare, goals, plots, report, runner, torch_baseline
from benchmarks.cases import RECTAX, Case, Config, full_config, generate_cases, quick_config
from benchmarks.schema import SCHEMA_VERSION, Row


def make_config(args: argparse.Namespace, platform: str) -> Config:
    """The quick or full preset, with the command line's overrides."""
    config = quick_config(platform) if args.quick else full_config(platform)
    overrides: dict[str, Any] = {"device_index": args.device, "seed": args.seed}
    for name in ("activations", "sizes", "dtypes", "modes", "repeats", "warmup"):
        value = getattr(args, name)
        if value:
            overrides[name] = value
    if args.dtypes:
        overrides["secondary_activations"] = None
    if args.activations:
        overrides["multidevice_activations"] = args.activations[:2]
        overrides["cnn_activations"] = None
    if getattr(args, "zoo", None):
        overrides["zoo_models"] = args.zoo
    if args.no_torch:
        overrides["torch"] = False
    return config.replace(**overrides)


def output_paths(json_path: Path) -> tuple[Path, Path]:
    """(Markdown path, PNG stem) next to the JSON."""
    return json_path.with_suffix(".md"), json_path.with_suffix("")


def build_result(
    argv: Sequence[str],
    config: Config,
    env: dict[str, Any],
    rows: Sequence[Row],
    goal_results: Sequence[goals.GoalResult],
    wall_s: float,
) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "argv": list(argv),
        "quick": config.quick,
        "wall_s": wall_s,
        "environment": env,
        "config": dataclasses.asdict(config),
        "rows": [r.to_json() for r in rows],
        "goals": [g.to_json() for g in goal_results],
    }


def write_outputs(
    result: dict[str, Any],
    rows: Sequence[Row],
    goal_results: Sequence[goals.GoalResult],
    json_path: Path,
    *,
    figures: bool = True,
) -> list[Path]:
    """Writes the JSON, the Markdown summary and (unless disabled) the PNG figures."""
    json_path.parent.mkdir(parents=True, exist_ok=True)
    md_path, stem = output_paths(json_path)
    json_path.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    md_path.write_text(report.markdown(result, rows, goal_results), encoding="utf-8")
    written = [json_path, md_path]
    if figures:
        written += plots.write_all(rows, stem)
    return written


def make_console() -> Console:
    """A console as wide as the terminal, or 200 columns when writing to a file or a pipe."""
    return Console(width=None if sys.stdout.isatty() else 200)


def run_main(args: argparse.Namespace, argv: Sequence[str]) -> int:
    console = make_console()
    platform = jax.default_backend()
    config = make_config(args, platform)
    cases = generate_cases(config)
    if args.list:
        for case in cases:
            console.print(case.title)
        console.print(f"{len(cases)} cases")
        return 0
    device = jax.devices()[config.device_index]
    torch = torch_baseline.load() if config.torch else None
    ctx = runner.Context(config, device, torch)
    env = runner.environment(device, torch)

    start = time.perf_counter()
    progress = Progress(
        TextColumn("[progress.description]{task.description:<44}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )
    if console.is_terminal:
        with progress:
            task = progress.add_task("starting", total=len(cases))

            def on_case(i: int, case: Case) -> None:
                progress.update(task, completed=i, description=case.title)

            rows = runner.run(cases, ctx, on_case)
            progress.update(task, completed=len(cases), description="done")
    else:  # a log file or pipe: one line per case instead of a redrawn bar

        def log_case(i: int, case: Case) -> None:
            elapsed = time.perf_counter() - start
            console.print(f"[{i + 1}/{len(cases)}] {elapsed:5.0f} s  {case.title}")

        rows = runner.run(cases, ctx, log_case)
    wall_s = time.perf_counter() - start

    goal_results = goals.evaluate(rows)
    result = build_result(argv, config, env, rows, goal_results, wall_s)
    written = write_outputs(result, rows, goal_results, args.output, figures=not args.no_plots)
    report.print_report(console, result, rows, goal_results)
    console.print(f"{len(cases)} cases in {wall_s:.0f} s; wrote " + ", ".join(map(str, written)))
    failed = [r for r in rows if r.status == "error" and r.library == RECTAX]
    for r in failed:
        console.print(
            f"[red]rectax error[/red] {r.kind} {r.mode} {r.activation} {r.dtype}: {r.note}"
        )
    if failed:  # a baseline (torch, flax) may fail alone; rectax failing fails the run
        console.print(f"[red]{len(failed)} rectax case(s) raised[/red]")
        return 1
    return 0


def compare_main(args: argparse.Namespace) -> int:
    console = make_console()
    changes = compare.compare(compare.load(args.old), compare.load(args.new), args.threshold)
    compare.print_changes(console, changes, args.threshold)
    regressed = any(c.verdict == "regression" for c in changes)
    return 1 if regressed and args.fail_on_regression else 0
