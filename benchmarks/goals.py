"""The goals rectax is held to, a verdict per case and per goal, and the headline ratios.

A goal bounds a figure of rectax's rows. A timed figure (a time ratio, a roofline fraction) is the
median of per-round values with its 95% confidence interval (:func:`benchmarks.timing.median_ci`);
a compiled-memory ratio is exact, its interval a point. A case

* ``PASS``: the whole interval meets the limit;
* ``MISS``: the whole interval fails it;
* ``INCONCLUSIVE``: the limit lies inside the interval, so the run cannot tell (more rounds or a
  quieter machine can).

A goal is ``MISS`` if any of its cases misses, else ``INCONCLUSIVE`` if any is inconclusive, else
``PASS``; ``n/a`` when nothing it applies to was measured.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from benchmarks.cases import PIECEWISE_LINEAR, RECTAX
from benchmarks.runner import Row
from benchmarks.timing import median_ci

LARGE = 2**24
PASS, MISS, INCONCLUSIVE, UNMEASURED = "PASS", "MISS", "INCONCLUSIVE", "n/a"

Interval = tuple[float, float, float]
"""(value, low, high)."""


def _time(r: Row) -> Interval | None:
    if r.ratio is None or r.ratio_low is None or r.ratio_high is None:
        return None
    return r.ratio, r.ratio_low, r.ratio_high


def _memory(r: Row) -> Interval | None:
    return None if r.temp_ratio is None else (r.temp_ratio, r.temp_ratio, r.temp_ratio)


def _roofline(r: Row) -> Interval | None:
    f, low, high = r.roofline_fraction, r.roofline_low, r.roofline_high
    return None if f is None or low is None or high is None else (f, low, high)


@dataclass(frozen=True)
class Goal:
    name: str
    target: str
    limit: float
    upper: bool
    selects: Callable[[Row], bool]
    value: Callable[[Row], Interval | None]

    @property
    def limit_text(self) -> str:
        return f"{'<=' if self.upper else '>='} {self.limit:g}"

    def verdict(self, low: float, high: float) -> str:
        if self.upper:
            return PASS if high <= self.limit else MISS if low > self.limit else INCONCLUSIVE
        return PASS if low >= self.limit else MISS if high < self.limit else INCONCLUSIVE


GOALS = (
    Goal("zoo-memory", "zoo compiled temp memory / jax.nn <= 1.0", 1.0, True,
         lambda r: r.kind == "zoo", _memory),
    Goal("zoo-time", "zoo step time / jax.nn <= 1.02", 1.02, True,
         lambda r: r.kind == "zoo" and bool(r.times_s), _time),
    Goal("train-time", "MLP/CNN step time / jax.nn <= 1.0", 1.0, True,
         lambda r: r.kind == "train", _time),
    Goal("train-memory", "MLP/CNN temp memory / jax.nn <= 0.6, piecewise linear", 0.6, True,
         lambda r: r.activation in PIECEWISE_LINEAR
         and (r.kind == "train" or (r.kind == "memory" and r.mode == "mlp-ref")), _memory),
    Goal("forward-roofline", "forward at >= 2^24 elements >= 0.9 of copy bandwidth", 0.9, False,
         lambda r: r.kind == "elementwise" and r.mode == "forward" and r.size >= LARGE, _roofline),
    Goal("fwd+bwd-ratio", "lone fwd+bwd kernel time / jax.nn <= 1.05", 1.05, True,
         lambda r: r.kind == "elementwise" and r.mode == "fwd+bwd", _time),
)  # fmt: skip


def case_name(row: Row) -> str:
    size = f" 2^{row.size.bit_length() - 1}" if row.size else ""
    return f"{row.activation} {row.mode}{size} {row.dtype}"


@dataclass(frozen=True)
class CaseResult:
    goal: str
    case: str
    value: float | None
    low: float | None
    high: float | None
    limit: float
    verdict: str


@dataclass(frozen=True)
class GoalResult:
    goal: Goal
    verdict: str
    cases: list[CaseResult]
    worst: CaseResult | None

    def count(self, verdict: str) -> int:
        return sum(c.verdict == verdict for c in self.cases)


def evaluate(rows: Iterable[Row]) -> list[GoalResult]:
    """Every goal with the verdict of each rectax row it applies to."""
    mine = [r for r in rows if r.library == RECTAX]
    out = []
    for goal in GOALS:
        cases = []
        for row in filter(goal.selects, mine):
            found = goal.value(row)
            if found is None:
                cases.append(
                    CaseResult(goal.name, case_name(row), None, None, None, goal.limit, UNMEASURED)
                )
                continue
            value, low, high = found
            cases.append(
                CaseResult(
                    goal.name, case_name(row), value, low, high, goal.limit, goal.verdict(low, high)
                )
            )
        verdicts = {c.verdict for c in cases}
        verdict = next((v for v in (MISS, INCONCLUSIVE, PASS) if v in verdicts), UNMEASURED)
        measured = [c for c in cases if c.value is not None]
        sign = 1 if goal.upper else -1
        worst = max(measured, key=lambda c: sign * (c.value or 0.0), default=None)
        out.append(GoalResult(goal, verdict, cases, worst))
    return out


@dataclass(frozen=True)
class Headline:
    """A ratio rectax / jax.nn over many cases, with its spread.

    Timed: the median of every per-round ratio of the cases pooled, with its 95% confidence
    interval, and that interval's verdict against the cases' goal. Compiled memory (exact): the
    geometric mean, with the range over the cases.
    """

    name: str
    value: float
    low: float
    high: float
    spread: str
    over: str
    goal: str = ""
    """A timed headline: its cases' goal's limit and the pooled interval's verdict against it."""


def _pooled(name: str, rows: Sequence[Row], unit: str, goal: str) -> Headline | None:
    pairs = [p for r in rows for p in r.pair_ratios]
    if not pairs:
        return None
    low, high = median_ci(pairs)
    over = f"{len(rows)} {unit} x {len(pairs) // len(rows)} rounds"
    g = next(g for g in GOALS if g.name == goal)
    verdict = f"{g.limit_text}: {g.verdict(low, high)}"
    return Headline(name, statistics.median(pairs), low, high, "95% CI", over, verdict)


def _geomean(name: str, rows: Sequence[Row], unit: str) -> Headline | None:
    ratios = [r.temp_ratio for r in rows if r.temp_ratio is not None]
    if not ratios:
        return None
    mean = math.exp(statistics.fmean(map(math.log, ratios)))
    return Headline(name, mean, min(ratios), max(ratios), "range", f"{len(ratios)} {unit}")


def headlines(rows: Iterable[Row]) -> list[Headline]:
    mine = [r for r in rows if r.library == RECTAX and r.status == "ok"]
    zoo = [r for r in mine if r.kind == "zoo"]
    kernels = [r for r in mine if r.kind == "elementwise" and r.mode == "fwd+bwd"]
    large = [r for r in kernels if r.size >= LARGE and r.dtype == "f32"]
    found = [
        _geomean("zoo compiled memory", zoo, "models x settings"),
        _pooled("zoo step time", [r for r in zoo if r.pair_ratios], "models", "zoo-time"),
        _pooled("MLP/CNN step time", [r for r in mine if r.kind == "train"], "steps", "train-time"),
        _pooled(
            f"fwd+bwd kernels{' 2^24 f32' if large else ''}",
            large or kernels,
            "kernels",
            "fwd+bwd-ratio",
        ),
        _geomean(
            "MLP-ref compiled memory",
            [r for r in mine if r.kind == "memory" and r.mode == "mlp-ref"],
            "activations",
        ),
    ]
    return [h for h in found if h is not None]
