"""The goals rectax is held to, evaluated on a run's rows (pass/miss and by how much).

0. ``zoo-memory`` and ``zoo-time``: every model-zoo step (:mod:`benchmarks.zoo`), compiled temp
   memory / jax.nn's <= 1.00, and (where timed) step time / jax.nn's <= 1.02.
1. ``train-time``: jit(grad) MLP/CNN step with a rectax activation, time ratio to the primary
   baseline (jax.nn) <= 1.0.
2. ``train-memory``: compiled temp memory of that step <= 0.6x the baseline's, for the piecewise
   linear activations (1-bit residuals); also checked on the reference MLP (``mlp-ref``).
3. ``forward-roofline``: forward pass at >= 2^24 elements at >= 90% of the copy roofline measured
   in the same run.
4. ``fwd+bwd-ratio``: lone forward+backward kernel, time ratio to the primary baseline <= 1.05.

``margin`` is signed so that positive means the goal is met with room to spare: ``limit - value``
for upper limits, ``value - limit`` for lower limits.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

from benchmarks.cases import PIECEWISE_LINEAR, RECTAX
from benchmarks.schema import Row

LARGE = 2**24


@dataclass(frozen=True)
class Goal:
    name: str
    target: str
    limit: float
    upper: bool
    selects: Callable[[Row], bool]
    value: Callable[[Row], float | None]


GOALS = (
    Goal(
        "zoo-memory",
        "model zoo: compiled temp memory / jax.nn <= 1.0",
        1.0,
        True,
        lambda r: r.kind == "zoo",
        lambda r: r.temp_ratio,
    ),
    Goal(
        "zoo-time",
        "model zoo: step time / jax.nn <= 1.02 (median of pairs)",
        1.02,
        True,
        lambda r: r.kind == "zoo" and r.ratio is not None,
        lambda r: r.ratio,
    ),
    Goal(
        "train-time",
        "jit(grad) step time / jax.nn <= 1.0",
        1.0,
        True,
        lambda r: r.kind == "train",
        lambda r: r.ratio,
    ),
    Goal(
        "train-memory",
        "compiled temp memory / jax.nn <= 0.6 (piecewise linear)",
        0.6,
        True,
        lambda r: (
            r.activation in PIECEWISE_LINEAR
            and (r.kind == "train" or (r.kind == "memory" and r.mode == "mlp-ref"))
        ),
        lambda r: r.temp_ratio,
    ),
    Goal(
        "forward-roofline",
        "forward at >= 2^24 elements >= 0.9 of copy roofline",
        0.9,
        False,
        lambda r: r.kind == "elementwise" and r.mode == "forward" and r.size >= LARGE,
        lambda r: r.roofline_fraction,
    ),
    Goal(
        "fwd+bwd-ratio",
        "lone fwd+bwd kernel time / jax.nn <= 1.05",
        1.05,
        True,
        lambda r: r.kind == "elementwise" and r.mode == "fwd+bwd",
        lambda r: r.ratio,
    ),
)


@dataclass(frozen=True)
class GoalResult:
    goal: str
    target: str
    case: str
    activation: str
    value: float | None
    limit: float
    passed: bool | None
    margin: float | None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _case(row: Row) -> str:
    if row.kind == "zoo":
        return f"zoo {row.activation} {row.mode} {row.dtype}"
    size = f" 2^{row.size.bit_length() - 1}" if row.size else ""
    return f"{row.kind} {row.mode}{size} {row.dtype}"


def evaluate(rows: Iterable[Row]) -> list[GoalResult]:
    """One result per (goal, rectax row it applies to); ``passed`` is None when unmeasured."""
    out: list[GoalResult] = []
    mine = [r for r in rows if r.library == RECTAX]
    for goal in GOALS:
        for row in mine:
            if not goal.selects(row):
                continue
            value = goal.value(row)
            if value is None:
                passed, margin = None, None
            else:
                margin = goal.limit - value if goal.upper else value - goal.limit
                passed = margin >= 0
            out.append(
                GoalResult(
                    goal.name,
                    goal.target,
                    _case(row),
                    row.activation,
                    value,
                    goal.limit,
                    passed,
                    margin,
                )
            )
    return out


@dataclass(frozen=True)
class GoalSummary:
    goal: str
    target: str
    passed: int
    total: int
    unmeasured: int
    worst: GoalResult | None


def summarize(results: Iterable[GoalResult]) -> list[GoalSummary]:
    """Per goal: passes, total, and the worst case (smallest margin)."""
    results = list(results)
    out = []
    for goal in GOALS:
        mine = [r for r in results if r.goal == goal.name]
        measured = [r for r in mine if r.margin is not None]
        worst = min(measured, key=lambda r: r.margin or 0.0) if measured else None
        out.append(
            GoalSummary(
                goal.name,
                goal.target,
                sum(1 for r in measured if r.passed),
                len(measured),
                len(mine) - len(measured),
                worst,
            )
        )
    return out


def from_json(data: Iterable[dict[str, Any]]) -> list[GoalResult]:
    return [GoalResult(**d) for d in data]
