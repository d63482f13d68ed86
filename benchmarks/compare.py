"""Compare mode: two result files in, a table of regressions and improvements out.

Rows are matched on (kind, mode, activation, library, function, dtype, size, devices). For each
matched pair the median time and the compiled temp memory are compared as ``new / old``; a change
beyond ``threshold`` (default 5%) is a regression (larger) or an improvement (smaller).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from benchmarks.schema import Row

METRICS = ("median_s", "temp_bytes")


@dataclass(frozen=True)
class Change:
    case: str
    metric: str
    old: float
    new: float
    ratio: float
    verdict: str


def load(path: str | Path) -> dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        data: dict[str, Any] = json.load(f)
    return data


def _describe(row: Row) -> str:
    size = f" 2^{row.size.bit_length() - 1}" if row.size else ""
    devices = f" x{row.devices}" if row.devices != 1 else ""
    return f"{row.kind} {row.mode} {row.activation}{size} {row.dtype}{devices} {row.label}"


def compare(old: dict[str, Any], new: dict[str, Any], threshold: float = 0.05) -> list[Change]:
    """Every metric of every row present (and measured) in both results, with its verdict."""
    before = {r.key(): r for r in map(Row.from_json, old["rows"]) if r.status == "ok"}
    changes: list[Change] = []
    for row in map(Row.from_json, new["rows"]):
        prev = before.get(row.key())
        if prev is None or row.status != "ok":
            continue
        for metric in METRICS:
            a, b = getattr(prev, metric), getattr(row, metric)
            if not a or b is None:
                continue
            ratio = b / a
            verdict = (
                "regression"
                if ratio > 1 + threshold
                else "improvement"
                if ratio < 1 / (1 + threshold)
                else "unchanged"
            )
            changes.append(Change(_describe(row), metric, float(a), float(b), ratio, verdict))
    return changes


def print_changes(console: Console, changes: Sequence[Change], threshold: float) -> None:
    for verdict in ("regression", "improvement"):
        rows = sorted(
            (c for c in changes if c.verdict == verdict),
            key=lambda c: -c.ratio if verdict == "regression" else c.ratio,
        )
        table = Table(
            title=f"{verdict.capitalize()}s (new/old beyond {threshold:.0%}): {len(rows)}",
            title_justify="left",
        )
        for h in ("case", "metric", "old", "new", "new/old"):
            table.add_column(h, overflow="fold")
        for c in rows:
            table.add_row(c.case, c.metric, f"{c.old:.4g}", f"{c.new:.4g}", f"{c.ratio:.3f}")
        console.print(table)
    same = sum(1 for c in changes if c.verdict == "unchanged")
    console.print(f"{same} of {len(changes)} compared figures unchanged within {threshold:.0%}.")
