"""Human-readable output: the terminal tables (rich) and the Markdown summary.

Both are rendered from the same :class:`Section` list, so they always agree.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.table import Table

from benchmarks.cases import RECTAX
from benchmarks.goals import GoalResult, summarize
from benchmarks.schema import Row

MIB = 2**20


@dataclass
class Section:
    title: str
    headers: list[str]
    rows: list[list[str]] = field(default_factory=list)
    note: str = ""


# --------------------------------------------------------------------------- formatting
def fmt_time(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} µs"
    if seconds < 1.0:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


def fmt_range(row: Row) -> str:
    if row.median_s is None:
        return "-"
    return f"{fmt_time(row.median_s)} [{fmt_time(row.min_s)}–{fmt_time(row.max_s)}]"


def fmt_ratio(value: float | None, low: float | None = None, high: float | None = None) -> str:
    if value is None:
        return "-"
    if low is None or high is None:
        return f"{value:.3f}"
    return f"{value:.3f} [{low:.2f}–{high:.2f}]"


def fmt_mib(n: int | None) -> str:
    return "-" if n is None else f"{n / MIB:.1f}"


def fmt_num(x: float | None, spec: str = ".1f") -> str:
    return "-" if x is None else format(x, spec)


def fmt_size(n: int) -> str:
    return f"2^{n.bit_length() - 1}" if n and n & (n - 1) == 0 else str(n)


def flags(rows: Iterable[Row]) -> str:
    out = []
    for r in rows:
        if r.retraced:
            out.append(f"RETRACED {r.library}")
        if r.status != "ok":
            out.append(f"{r.status.upper()} {r.library}: {r.note}")
    return "; ".join(out)


def _groups(rows: Iterable[Row], kinds: Sequence[str]) -> dict[tuple[Any, ...], list[Row]]:
    groups: dict[tuple[Any, ...], list[Row]] = {}
    for r in rows:
        if r.kind in kinds and r.activation != "*":
            groups.setdefault(
                (r.kind, r.mode, r.activation, r.size, r.dtype, r.devices), []
            ).append(r)
    return groups


def _split(rows: list[Row]) -> tuple[Row | None, Row | None, list[Row]]:
    """(rectax row, primary baseline row, other rows)."""
    mine = next((r for r in rows if r.library == RECTAX), None)
    primary = None
    if mine is not None and mine.baseline is not None:
        primary = next((r for r in rows if r.label == mine.baseline), None)
    if primary is None:
        primary = next((r for r in rows if r.library != RECTAX), None)
    others = [r for r in rows if r is not mine and r is not primary]
    return mine, primary, others


def _others(others: Iterable[Row]) -> str:
    return ", ".join(f"{r.label} {fmt_ratio(r.ratio)}" for r in others if r.ratio is not None)


# --------------------------------------------------------------------------- sections
def environment_section(env: dict[str, Any]) -> Section:
    s = Section("Environment", ["key", "value"])
    s.rows = [[k, str(v)] for k, v in env.items()]
    return s


def zoo_section(rows: Sequence[Row]) -> Section:
    s = Section(
        "Model zoo: jit(grad) step, rectax vs jax.nn",
        ["model", "remat", "dtype", "jax.nn MiB", "rectax MiB", "ratio", "resid MiB", "time"],
        note=(
            "MiB = compiled temp_size_in_bytes (compiled, not run); ratio = rectax / jax.nn; "
            "resid = saved residuals, jax.nn/rectax; time = median per-round t(rectax)/t(jax.nn), "
            "(min-max), at the smaller timed size."
        ),
    )
    groups: dict[tuple[str, str, str], dict[str, Row]] = {}
    for r in rows:
        if r.kind == "zoo":
            groups.setdefault((r.activation, r.mode, r.dtype), {})[r.library] = r
    for (model, remat, dtype), group in groups.items():
        mine, base = group.get(RECTAX), group.get("jax.nn")
        if mine is None or base is None:
            continue
        bad = [r for r in (mine, base) if r.status != "ok"]
        resid = "-"
        if base.residual_bytes is not None and mine.residual_bytes is not None:
            resid = f"{fmt_mib(base.residual_bytes)}/{fmt_mib(mine.residual_bytes)}"
        time = "-"
        if mine.ratio is not None:
            time = f"{mine.ratio:.2f} ({mine.ratio_min:.2f}-{mine.ratio_max:.2f})"
        s.rows.append(
            [
                model,
                remat,
                dtype,
                fmt_mib(base.temp_bytes),
                fmt_mib(mine.temp_bytes),
                fmt_ratio(mine.temp_ratio),
                resid,
                flags(bad) if bad else time,
            ]
        )
    return s


def roofline_section(rows: Sequence[Row]) -> Section:
    s = Section(
        "Copy roofline (x * one, measured in every elementwise case)",
        ["size", "dtype", "cases", "GB/s median", "GB/s min–max"],
        note="Read + write bytes per second of a trivial elementwise kernel.",
    )
    by: dict[tuple[int, str], list[float]] = {}
    for r in rows:
        if r.kind == "roofline" and r.gbps is not None:
            by.setdefault((r.size, r.dtype), []).append(r.gbps)
    for (size, dtype), values in sorted(by.items()):
        values.sort()
        median = values[len(values) // 2]
        s.rows.append(
            [
                fmt_size(size),
                dtype,
                str(len(values)),
                f"{median:.1f}",
                f"{values[0]:.1f}–{values[-1]:.1f}",
            ]
        )
    return s


def elementwise_section(rows: Sequence[Row]) -> Section:
    s = Section(
        "Elementwise kernels",
        [
            "activation",
            "mode",
            "size",
            "dtype",
            "rectax median [min–max]",
            "baseline",
            "baseline median",
            "ratio [min–max]",
            "GB/s",
            "roofline",
            "compile ms",
            "other ratios",
            "flags",
        ],
        note=(
            "ratio = median over interleaved rounds of t(rectax)/t(baseline); < 1 is faster. "
            "roofline = fraction of the copy kernel's bandwidth in the same rounds. "
            "compile = rectax / baseline."
        ),
    )
    for (_, mode, act, size, dtype, _), group in _groups(rows, ["elementwise"]).items():
        mine, base, others = _split(group)
        if mine is None:
            s.rows.append([act, mode, fmt_size(size), dtype] + ["-"] * 8 + [flags(group)])
            continue
        compile_ms = f"{fmt_num(mine.compile_s and mine.compile_s * 1e3, '.0f')}"
        if base is not None:
            compile_ms += f" / {fmt_num(base.compile_s and base.compile_s * 1e3, '.0f')}"
        s.rows.append(
            [
                act,
                mode,
                fmt_size(size),
                dtype,
                fmt_range(mine),
                base.label if base else "-",
                fmt_time(base.median_s) if base else "-",
                fmt_ratio(mine.ratio, mine.ratio_min, mine.ratio_max),
                fmt_num(mine.gbps),
                fmt_num(mine.roofline_fraction and 100 * mine.roofline_fraction, ".0f") + "%",
                compile_ms,
                _others(others),
                flags(group),
            ]
        )
    return s


def train_section(rows: Sequence[Row]) -> Section:
    s = Section(
        "Training steps: jax.jit(jax.grad(loss))",
        [
            "activation",
            "model",
            "dtype",
            "rectax median [min–max]",
            "jax.nn median",
            "ratio [min–max]",
            "temp MiB rectax",
            "temp MiB base",
            "temp ratio",
            "peak MiB",
            "compile s",
            "other ratios",
            "flags",
        ],
        note="temp = compiled memory_analysis().temp_size_in_bytes; peak = device high-water mark.",
    )
    for (_, mode, act, _, dtype, _), group in _groups(rows, ["train"]).items():
        mine, base, others = _split(group)
        if mine is None:
            continue
        s.rows.append(
            [
                act,
                mode,
                dtype,
                fmt_range(mine),
                fmt_time(base.median_s) if base else "-",
                fmt_ratio(mine.ratio, mine.ratio_min, mine.ratio_max),
                fmt_mib(mine.temp_bytes),
                fmt_mib(base.temp_bytes) if base else "-",
                fmt_ratio(mine.temp_ratio),
                fmt_mib(mine.peak_bytes),
                fmt_num(mine.compile_s, ".2f"),
                _others(others),
                flags(group),
            ]
        )
    return s


def memory_section(rows: Sequence[Row]) -> Section:
    s = Section(
        "Memory: residuals and the reference MLP (compiled, not run)",
        [
            "activation",
            "residual B/elem rectax",
            "residual B/elem baselines",
            "MLP-ref temp MiB rectax",
            "MLP-ref temp MiB base",
            "temp ratio",
            "flags",
        ],
        note=(
            "residual = bytes jax.vjp keeps per input element; "
            "MLP-ref = jit(grad) of an 8 x 2048 MLP at batch 4096, compiled only."
        ),
    )
    acts: dict[str, list[Row]] = {}
    for r in rows:
        if r.kind == "memory":
            acts.setdefault(r.activation, []).append(r)
    for act, group in acts.items():
        res = [r for r in group if r.mode == "residuals"]
        ref = [r for r in group if r.mode == "mlp-ref"]
        mine_res = next((r for r in res if r.library == RECTAX), None)
        base_res = ", ".join(
            f"{r.label} {fmt_num(r.residual_bytes_per_element, '.3g')}"
            for r in res
            if r.library != RECTAX
        )
        mine, base, _ = _split(ref)
        s.rows.append(
            [
                act,
                fmt_num(mine_res.residual_bytes_per_element if mine_res else None, ".3g"),
                base_res,
                fmt_mib(mine.temp_bytes) if mine else "-",
                fmt_mib(base.temp_bytes) if base else "-",
                fmt_ratio(mine.temp_ratio) if mine else "-",
                flags(group),
            ]
        )
    return s


def init_section(rows: Sequence[Row]) -> Section:
    s = Section(
        "Initializers: rectax.initializers vs jax.nn.initializers",
        [
            "initializer",
            "rectax median [min–max]",
            "jax.nn median",
            "ratio",
            "GB/s rectax",
            "status",
        ],
    )
    for (_, _, name, _, _, _), group in _groups(rows, ["init"]).items():
        mine, base, _ = _split(group)
        if mine is None:
            continue
        status = mine.status if mine.status == "ok" else f"{mine.status}: {mine.note}"
        s.rows.append(
            [
                name,
                fmt_range(mine),
                fmt_time(base.median_s) if base else "-",
                fmt_ratio(mine.ratio, mine.ratio_min, mine.ratio_max),
                fmt_num(mine.gbps, ".3f"),
                status,
            ]
        )
    return s


def multidevice_section(rows: Sequence[Row]) -> Section:
    s = Section(
        "Multi-device: batch split over 1..N devices",
        [
            "activation",
            "mode",
            "devices",
            "rectax median",
            "jax.nn median",
            "ratio",
            "scaling rectax",
            "efficiency",
            "scaling jax.nn",
            "flags",
        ],
        note="scaling = median per-pair t(1 device)/t(N devices); efficiency = scaling / N.",
    )
    for (_, mode, act, _, _, k), group in _groups(rows, ["multidevice"]).items():
        mine, base, _ = _split(group)
        if mine is None:
            continue
        s.rows.append(
            [
                act,
                mode,
                str(k),
                fmt_range(mine),
                fmt_time(base.median_s) if base else "-",
                fmt_ratio(mine.ratio),
                fmt_num(mine.scaling, ".2f"),
                fmt_num(mine.efficiency, ".2f"),
                fmt_num(base.scaling if base else None, ".2f"),
                flags(group),
            ]
        )
    return s


def goals_sections(goals: Sequence[GoalResult], *, all_results: bool) -> list[Section]:
    summary = Section(
        "Goals",
        ["goal", "target", "passed", "worst case", "worst value", "margin"],
        note=(
            "margin > 0: met with room to spare; < 0: missed by that much (in the value's units)."
        ),
    )
    for item in summarize(goals):
        worst = item.worst
        unmeasured = f" ({item.unmeasured} unmeasured)" if item.unmeasured else ""
        summary.rows.append(
            [
                item.goal,
                item.target,
                f"{item.passed}/{item.total}{unmeasured}",
                f"{worst.activation} {worst.case}" if worst else "-",
                fmt_num(worst.value, ".3f") if worst else "-",
                fmt_num(worst.margin, "+.3f") if worst else "-",
            ]
        )
    listed = goals if all_results else [g for g in goals if g.passed is False]
    detail = Section(
        "Goal results" if all_results else "Goal misses",
        ["goal", "activation", "case", "value", "limit", "result", "margin"],
    )
    for g in listed:
        result = "n/a" if g.passed is None else ("pass" if g.passed else "MISS")
        detail.rows.append(
            [
                g.goal,
                g.activation,
                g.case,
                fmt_num(g.value, ".3f"),
                f"{g.limit:g}",
                result,
                fmt_num(g.margin, "+.3f"),
            ]
        )
    return [summary, detail]


def problems_section(rows: Sequence[Row]) -> Section:
    s = Section(
        "Retraced, failed and skipped", ["kind", "mode", "activation", "library", "status", "note"]
    )
    for r in rows:
        if r.retraced or r.status != "ok":
            status = "retraced" if r.retraced and r.status == "ok" else r.status
            s.rows.append([r.kind, r.mode, r.activation, r.label, status, r.note])
    return s


def sections(
    result: dict[str, Any], rows: Sequence[Row], goals: Sequence[GoalResult], *, all_goals: bool
) -> list[Section]:
    out = [
        zoo_section(rows),
        roofline_section(rows),
        elementwise_section(rows),
        train_section(rows),
        memory_section(rows),
        init_section(rows),
        multidevice_section(rows),
        problems_section(rows),
        *goals_sections(goals, all_results=all_goals),
    ]
    return [s for s in out if s.rows or s.title == "Goals"]


# --------------------------------------------------------------------------- renderers
def print_report(
    console: Console, result: dict[str, Any], rows: Sequence[Row], goals: Sequence[GoalResult]
) -> None:
    env = result["environment"]
    console.print(
        f"[bold]rectax benchmark[/bold] on {env['device_kind']} ({env['backend']}, "
        f"{env['device_count']} device(s)); jax {env['jax']}, jaxlib {env['jaxlib']}, "
        f"flax {env['flax']}; {'quick' if result['quick'] else 'full'} run"
    )
    for s in sections(result, rows, goals, all_goals=False):
        table = Table(title=s.title, caption=s.note or None, show_lines=False, title_justify="left")
        for h in s.headers:
            table.add_column(h, overflow="fold")
        for r in s.rows:
            table.add_row(*r)
        console.print(table)


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(result: dict[str, Any], rows: Sequence[Row], goals: Sequence[GoalResult]) -> str:
    env = result["environment"]
    lines = [
        "# rectax benchmark results",
        "",
        f"{'Quick' if result['quick'] else 'Full'} run of {result['created']} on "
        f"**{env['device_kind']}** ({env['backend']}, {env['device_count']} device(s)), "
        f"jax {env['jax']}, jaxlib {env['jaxlib']}, flax {env['flax']}.",
        "",
    ]
    secs = sections(result, rows, goals, all_goals=True)
    goal_secs = [s for s in secs if s.title.startswith("Goal")]
    body = [environment_section(env)] + [s for s in secs if not s.title.startswith("Goal")]
    for s in body + goal_secs:
        lines += [f"## {s.title}", ""]
        if s.note:
            lines += [s.note, ""]
        lines.append("| " + " | ".join(s.headers) + " |")
        lines.append("|" + "---|" * len(s.headers))
        lines += ["| " + " | ".join(_md_cell(c) for c in r) + " |" for r in s.rows]
        lines.append("")
    return "\n".join(lines)
