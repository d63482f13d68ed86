"""Timing primitives: interleaved A/B rounds, median of per-pair ratios.

* Compile separately from the steady state (:func:`compile_timed`).
* Wait for every result (``jax.block_until_ready``) and time only after the first call.
* Interleave the compared variants, A B C C B A A B C … (:func:`interleave`), so that drift in
  clock speed, cache state and the neighbours' load hits them alike.
* Compare variants pair by pair, round by round, and report the median of the per-pair ratios
  (:func:`ratio_stats`) with its confidence interval (:func:`median_ci`).
* Size the rounds by time: at least ``repeats``, then more until the timed rounds have taken
  ``budget_s`` (cheap kernels get many rounds, whole training steps few).
* Count traces and compilations while timing (:class:`CompileCounter`): a variant that retraces in
  its steady state is flagged instead of silently timed.

Every function takes an injectable ``clock`` so that the arithmetic is testable with fake timers.
"""

from __future__ import annotations

import contextlib
import math
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import jax
from jax import monitoring

Clock = Callable[[], float]

_TRACE_EVENT = "/jax/core/compile/jaxpr_trace_duration"
_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"


CONFIDENCE = 0.95


def median_ci(values: Sequence[float], level: float = CONFIDENCE) -> tuple[float, float]:
    """Distribution-free confidence interval of the median of ``values``.

    The order statistics ``x_(k)`` and ``x_(n+1-k)`` with the largest ``k`` whose coverage,
    ``1 - 2 P(Binomial(n, 1/2) < k)``, is at least ``level`` (the sign-test interval, Conover,
    *Practical Nonparametric Statistics*, §3.2). No assumption about the distribution; below 6
    values no interval reaches 95%, and the range is returned.
    """
    xs = sorted(values)
    n = len(xs)
    if n == 0:
        raise ValueError("median_ci: empty series.")

    def coverage(k: int) -> float:
        return 1 - 2 * sum(math.comb(n, i) for i in range(k)) / 2**n

    k = 1
    while k < (n + 1) // 2 and coverage(k + 1) >= level:
        k += 1
    return xs[k - 1], xs[n - k]


@dataclass(frozen=True)
class Stats:
    """Median, minimum and maximum of a series, and the confidence interval of its median."""

    median: float
    min: float
    max: float
    low: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Stats:
        if not values:
            raise ValueError("Stats.of: empty series.")
        low, high = median_ci(values)
        return cls(statistics.median(values), min(values), max(values), low, high)


class CompileCounter:
    """Counts JAX traces and XLA compilations while active (a context manager).

    Listens to JAX's monitoring events, so it sees every trace and backend compilation in the
    process, including those of nested jitted functions.
    """

    def __init__(self) -> None:
        self.traces = 0
        self.compiles = 0

    def _listen(self, event: str, duration_secs: float, **kwargs: str | int) -> None:
        del duration_secs, kwargs
        if event == _TRACE_EVENT:
            self.traces += 1
        elif event == _COMPILE_EVENT:
            self.compiles += 1

    @property
    def events(self) -> int:
        """Traces plus compilations seen so far."""
        return self.traces + self.compiles

    def __enter__(self) -> CompileCounter:
        monitoring.register_event_duration_secs_listener(self._listen)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        monitoring.unregister_event_duration_listener(self._listen)


@dataclass
class Timings:
    """Raw result of :func:`interleave`: seconds per call and retrace events per variant."""

    times: dict[str, list[float]]
    compiles: dict[str, int] = field(default_factory=dict)

    def stats(self, label: str) -> Stats:
        return Stats.of(self.times[label])

    def retraced(self, label: str) -> bool:
        return self.compiles.get(label, 0) > 0


def compile_timed(jitted: Any, *args: Any, clock: Clock = time.perf_counter) -> tuple[Any, float]:
    """Traces, lowers and compiles ``jitted`` for ``args``; returns (compiled, seconds).

    The ahead-of-time compilation also fills ``jitted``'s own cache, so the first timed call of
    ``jitted(*args)`` does not compile again (the retrace guard would flag it if it did).
    """
    start = clock()
    compiled = jitted.lower(*args).compile()
    return compiled, clock() - start


def interleave(
    fns: Mapping[str, Callable[[], Any]],
    repeats: int,
    *,
    warmup: int = 1,
    clock: Clock = time.perf_counter,
    sync: Callable[[Any], Any] = jax.block_until_ready,
    count_compiles: bool = True,
    budget_s: float = 0.0,
    max_repeats: int = 1000,
) -> Timings:
    """Times each variant in interleaved rounds: at least ``repeats``, up to ``max_repeats``.

    Round ``r`` runs the variants in order for even ``r`` and in reverse order for odd ``r``
    (A B C, C B A, …), so that a variant's position in the round cancels out. Each call is timed
    from dispatch until ``sync`` returns (``block_until_ready``). ``warmup`` untimed interleaved
    rounds come first. After ``repeats`` rounds, rounds go on (in pairs, so that each order runs
    equally often) until the timed calls have taken ``budget_s`` in all. Traces and compilations
    during the timed rounds are counted per variant.

    Args:
      fns: label -> zero-argument callable that launches the work and returns its result.
      repeats: the fewest timed rounds (one call per variant per round).
      warmup: untimed rounds before the timed ones.
      clock: monotonic clock in seconds.
      sync: waits for a result.
      count_compiles: whether to count traces/compilations (the retrace guard).
      budget_s: seconds of timed calls to fill beyond ``repeats`` rounds.
      max_repeats: the most timed rounds.

    Returns:
      :class:`Timings` with the same number of times per label, in round order.
    """
    if repeats < 1:
        raise ValueError(f"interleave: repeats must be >= 1, got {repeats}.")
    labels = list(fns)
    for _ in range(warmup):
        for label in labels:
            sync(fns[label]())
    times: dict[str, list[float]] = {label: [] for label in labels}
    compiles = dict.fromkeys(labels, 0)

    def one_round(r: int) -> None:
        for label in labels if r % 2 == 0 else reversed(labels):
            counter = CompileCounter()
            with counter if count_compiles else contextlib.nullcontext():
                start = clock()
                sync(fns[label]())
                times[label].append(clock() - start)
            compiles[label] += counter.events

    for r in range(repeats):
        one_round(r)
    r = repeats
    while sum(map(sum, times.values())) < budget_s and r + 2 <= max_repeats:
        one_round(r)
        one_round(r + 1)
        r += 2
    return Timings(times, compiles)


def pair_ratios(numerator: Sequence[float], denominator: Sequence[float]) -> list[float]:
    """Round-by-round ratios ``numerator[r] / denominator[r]`` of two interleaved series."""
    if len(numerator) != len(denominator):
        raise ValueError(
            f"pair_ratios: series of unequal length ({len(numerator)} and {len(denominator)})."
        )
    return [a / b for a, b in zip(numerator, denominator, strict=True)]


def ratio_stats(numerator: Sequence[float], denominator: Sequence[float]) -> Stats:
    """Median (and range) of the per-pair ratios: robust to drift that a ratio of medians is not."""
    return Stats.of(pair_ratios(numerator, denominator))
