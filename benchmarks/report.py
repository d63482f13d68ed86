"""What a reader sees: a short summary on the terminal and the full tables in Markdown.

The summary (:func:`print_summary`) is the headline ratios and one verdict per goal, at most
:data:`WIDTH` columns; the Markdown (:func:`markdown`) has every case.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from benchmarks.cases import RECTAX
from benchmarks.goals import INCONCLUSIVE, MISS, PASS, GoalResult, Headline, case_name
from benchmarks.runner import Row

WIDTH = 100
MIB = 2**20
STYLES = {PASS: "green", MISS: "red", INCONCLUSIVE: "yellow"}
VERDICTS = (PASS, MISS, INCONCLUSIVE)


def fmt_time(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} µs"
    return f"{seconds * 1e3:.2f} ms" if seconds < 1.0 else f"{seconds:.2f} s"


def fmt_ratio(value: float | None, low: float | None = None, high: float | None = None) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if low is None or high is None else f"{value:.3f} ({low:.2f}-{high:.2f})"


def fmt_mib(n: int | None) -> str:
    return "-" if n is None else f"{n / MIB:.1f}"


def make_console() -> Console:
    """A terminal's width up to :data:`WIDTH` columns; :data:`WIDTH` in a file or a pipe."""
    console = Console()
    return Console(width=min(console.width, WIDTH) if console.is_terminal else WIDTH)


# --------------------------------------------------------------------------- terminal
def _spread(low: float | None, high: float | None) -> str:
    return "" if low is None or low == high else f" ({low:.2f}-{high:.2f})"


def _headline_cells(h: Headline) -> list[str]:
    return [h.name, f"{h.value:.3f}", f"{h.spread} {h.low:.3f}-{h.high:.3f}", h.goal, h.over]


def _worst(g: GoalResult) -> str:
    w = g.worst
    if w is None or w.value is None:
        return "-"
    return f"{w.case}: {w.value:.3f}{_spread(w.low, w.high)}"


RULED = box.Box("    \n    \n -- \n    \n    \n    \n    \n    \n", ascii=True)
"""rich's SIMPLE_HEAD in ASCII: a rule under the header, nothing else."""


def _table_of(title: str, headers: Sequence[str], rows: Iterable[Sequence[str]]) -> Table:
    """The last column takes the width left (folded into lines), the others keep theirs."""
    table = Table(
        title=title, title_justify="left", box=RULED, padding=(0, 1, 0, 0), pad_edge=False
    )
    for h in headers[:-1]:
        table.add_column(h, no_wrap=True)
    table.add_column(headers[-1], overflow="fold")
    for row in rows:
        table.add_row(*row)
    return table


def print_summary(
    console: Console,
    result: dict[str, Any],
    heads: Sequence[Headline],
    results: Sequence[GoalResult],
    written: Sequence[Path],
) -> None:
    """The headline ratios and one line per goal, in ASCII, at most the console's width."""
    with console.capture() as captured:
        _summary(console, result, heads, results, written)
    console.file.write("".join(line.rstrip() + "\n" for line in captured.get().splitlines()))


def _summary(
    console: Console,
    result: dict[str, Any],
    heads: Sequence[Headline],
    results: Sequence[GoalResult],
    written: Sequence[Path],
) -> None:
    console.print(f"[bold]rectax benchmark[/bold]: {_describe(result)}", end="\n\n")
    console.print(
        _table_of(
            "Headline ratios, rectax / jax.nn (below 1: rectax uses less)",
            ["ratio", "value", "spread", "verdict", "over"],
            map(_headline_cells, heads),
        )
    )
    console.print(
        _table_of(
            "Goals: PASS/MISS when a case's 95% interval is on one side of the limit, else "
            "INCONCLUSIVE",
            ["verdict", "goal", "limit", "pass/miss/inc.", "worst case"],
            [
                [
                    f"[{STYLES[g.verdict]}]{g.verdict}[/]" if g.verdict in STYLES else g.verdict,
                    g.goal.name, g.goal.limit_text, "/".join(str(g.count(v)) for v in VERDICTS),
                    _worst(g),
                ]
                for g in results
            ],
        )
    )  # fmt: skip
    missed = [g.goal.name for g in results if g.verdict == MISS]
    if missed:
        console.print(
            f"[red]Missed[/red]: {', '.join(missed)}. Findings, not failures: the exit status is 0 "
            "unless a rectax case raised."
        )
    here = [p.relative_to(Path.cwd()) if p.is_relative_to(Path.cwd()) else p for p in written]
    console.print(f"Every table: {here[1]}\nEvery figure: {here[0]}")


def _describe(result: dict[str, Any]) -> str:
    env = result["environment"]
    kind = "quick" if result["quick"] else "full"
    return (
        f"{kind} run on {env['device_count']} {env['backend']} device(s) ({env['device_kind']}), "
        f"jax {env['jax']}, flax {env['flax']}; {result['cases']} cases in {result['wall_s']:.0f} s"
    )


# --------------------------------------------------------------------------- Markdown
def _table(title: str, header: str, rows: Iterable[Sequence[str]], note: str = "") -> list[str]:
    """A Markdown table; ``header`` is its header row, cells separated by ``|``."""
    rows = list(rows)
    if not rows:
        return []
    out = [f"## {title}", ""] + ([note, ""] if note else [])
    out += [f"| {header} |", "|" + "---|" * (header.count("|") + 1)]
    out += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
    return [*out, ""]


def _flags(rows: Iterable[Row]) -> str:
    out = [f"RETRACED {r.label}" for r in rows if r.retraced]
    return "; ".join(out + [f"{r.status} {r.label}: {r.note}" for r in rows if r.status != "ok"])


def _cases(rows: Sequence[Row], kind: str) -> list[tuple[Row, Row | None, list[Row]]]:
    """(rectax row, its primary baseline's row, all rows) per case of ``kind``."""
    groups: dict[tuple[Any, ...], list[Row]] = {}
    for r in rows:
        if r.kind == kind and r.activation != "*":
            key = (r.mode, r.activation, r.size, r.dtype, r.devices)
            groups.setdefault(key, []).append(r)
    out = []
    for group in groups.values():
        mine = next((r for r in group if r.library == RECTAX), None)
        if mine is not None:
            base = next((r for r in group if r.label == mine.baseline), None)
            out.append((mine, base, group))
    return out


def _ratio(r: Row) -> str:
    return fmt_ratio(r.ratio, r.ratio_low, r.ratio_high)


def _others(mine: Row) -> str:
    return ", ".join(f"{k} {v:.3f}" for k, v in mine.ratios.items() if k != mine.baseline)


def zoo_rows(rows: Sequence[Row]) -> list[list[str]]:
    by: dict[tuple[str, str, str], dict[str, Row]] = {}
    for r in rows:
        if r.kind == "zoo":
            by.setdefault((r.activation, r.mode, r.dtype), {})[r.library] = r
    out = []
    for (model, remat, dtype), libs in by.items():
        mine, base = libs.get(RECTAX), libs.get("jax.nn")
        if mine is None or base is None:
            continue
        out.append([
            model, remat, dtype, fmt_mib(base.temp_bytes), fmt_mib(mine.temp_bytes),
            fmt_ratio(mine.temp_ratio), f"{fmt_mib(base.residual_bytes)} / "
            f"{fmt_mib(mine.residual_bytes)}", _ratio(mine), _flags(libs.values()),
        ])  # fmt: skip
    return out


def elementwise_rows(rows: Sequence[Row]) -> list[list[str]]:
    return [
        [
            mine.activation, mine.mode, f"2^{mine.size.bit_length() - 1}", mine.dtype,
            fmt_time(mine.median_s), base.label if base else "-", _ratio(mine),
            f"{mine.gbps:.1f}" if mine.gbps else "-",
            fmt_ratio(mine.roofline_fraction, mine.roofline_low, mine.roofline_high),
            _others(mine), _flags(group),
        ]
        for mine, base, group in _cases(rows, "elementwise")
    ]  # fmt: skip


def train_rows(rows: Sequence[Row]) -> list[list[str]]:
    return [
        [
            mine.activation, mine.mode, mine.dtype, fmt_time(mine.median_s),
            fmt_time(base.median_s if base else None), _ratio(mine),
            f"{fmt_mib(mine.temp_bytes)} / {fmt_mib(base.temp_bytes if base else None)}",
            fmt_ratio(mine.temp_ratio), _others(mine), _flags(group),
        ]
        for mine, base, group in _cases(rows, "train")
    ]  # fmt: skip


def memory_rows(rows: Sequence[Row]) -> list[list[str]]:
    by: dict[str, list[Row]] = {}
    for r in rows:
        if r.kind == "memory":
            by.setdefault(r.activation, []).append(r)
    out = []
    for act, group in by.items():
        residuals = {r.label: r.residual_bytes_per_element for r in group if r.mode == "residuals"}
        ref = [r for r in group if r.mode == "mlp-ref"]
        mine = next((r for r in ref if r.library == RECTAX), None)
        out.append([
            act, ", ".join(f"{k} {v:.3g}" for k, v in residuals.items() if v is not None),
            " / ".join(fmt_mib(r.temp_bytes) for r in ref),
            fmt_ratio(mine.temp_ratio if mine else None), _flags(group),
        ])  # fmt: skip
    return out


def goal_rows(results: Sequence[GoalResult]) -> list[list[str]]:
    return [
        [g.verdict, g.goal.name, g.goal.target, *(str(g.count(v)) for v in VERDICTS), _worst(g)]
        for g in results
    ]


def case_rows(results: Sequence[GoalResult]) -> list[list[str]]:
    return [
        [
            c.goal, c.case, fmt_ratio(c.value),
            "-" if c.low is None else f"{c.low:.3f}–{c.high:.3f}", f"{c.limit:g}", c.verdict,
        ]
        for g in results
        for c in g.cases
    ]  # fmt: skip


def problem_rows(rows: Sequence[Row]) -> list[list[str]]:
    return [
        [f"{r.kind} {case_name(r)}", r.label, "retraced" if r.retraced else r.status, r.note]
        for r in rows
        if r.retraced or r.status != "ok"
    ]


def markdown(
    result: dict[str, Any],
    rows: Sequence[Row],
    heads: Sequence[Headline],
    results: Sequence[GoalResult],
) -> str:
    """Every table: headlines, goals, then each kind of case, and every goal's cases last."""
    lines = [
        "# rectax benchmark results",
        "",
        f"{_describe(result)}; created {result['created']}.",
        "",
        "Ratios are rectax / jax.nn (below 1: rectax uses less). A timed ratio is the median of "
        "the per-round ratios of interleaved calls, with its 95% confidence interval in brackets; "
        "compiled memory is exact.",
        "",
        *_table(
            "Headline ratios",
            "ratio | value | spread | pooled verdict | over",
            map(_headline_cells, heads),
        ),
        *_table(
            "Goals",
            "verdict | goal | target | pass | miss | inconclusive | worst case",
            goal_rows(results),
            "Verdicts from each case's 95% interval: benchmarks/README.md, Goals.",
        ),
        *_table(
            "Model zoo: jit(grad) step, rectax vs jax.nn",
            "model | remat | dtype | jax.nn MiB | rectax MiB | memory | residuals MiB | time | "
            "flags",
            zoo_rows(rows),
            "MiB: compiled temp memory (compiled, not run); residuals: saved for the backward "
            "pass, jax.nn / rectax; time: at the smaller timed size.",
        ),
        *_table(
            "Elementwise kernels",
            "activation | mode | size | dtype | rectax | baseline | ratio | GB/s | roofline | "
            "other ratios | flags",
            elementwise_rows(rows),
            "rectax: median time per call; roofline: fraction of the copy kernel's bandwidth "
            "(x * one) in the same rounds.",
        ),
        *_table(
            "Training steps: jax.jit(jax.grad(loss))",
            "activation | model | dtype | rectax | jax.nn | ratio | temp MiB | temp ratio | "
            "other ratios | flags",
            train_rows(rows),
            "temp MiB: compiled temp memory, rectax / jax.nn.",
        ),
        *_table(
            "Memory: residuals and the reference MLP (compiled, not run)",
            "activation | residual bytes per element | MLP-ref MiB | MLP-ref ratio | flags",
            memory_rows(rows),
            "residual: bytes jax.vjp keeps per input element; MLP-ref MiB: rectax / baselines.",
        ),
        *_table(
            "Retraced, failed and skipped", "case | library | status | note", problem_rows(rows)
        ),
        *_table(
            "Goals, case by case",
            "goal | case | value | 95% interval | limit | verdict",
            case_rows(results),
        ),
    ]
    return "\n".join(lines)
