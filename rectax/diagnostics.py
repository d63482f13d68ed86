"""Dead units, sparsity and signal propagation, as pure functions that run inside ``jit``.

Three layers of tools:

* **Batch statistics** of one layer's pre-activations: :func:`fire_counts`, :func:`dead_units`,
  :func:`dead_fraction`, :func:`sparsity`, :func:`layer_moments`.
* **A streaming accumulator**, :class:`UnitStats`: a small pytree (a ``NamedTuple`` of arrays)
  with :func:`unit_stats` (the summary of one batch), :func:`init_stats`, :func:`update_stats`,
  :func:`merge_stats` and :func:`summarize` (which prints as a per-layer table, :class:`Summary`)
  and :func:`plot_dead_units`. Updating it is a handful of reductions and never
  syncs with the host, so it belongs inside a jitted train step or a ``lax.scan``. Merging is
  associative (counts add, means and variances combine with Chan et al.'s parallel formula), so
  batch summaries can be merged across steps, devices or layers' repeated calls. The Flax
  modules in :mod:`rectax.linen` and :mod:`rectax.nnx` sow exactly these summaries when
  ``record_stats=True``.
* **Probes** for experiments: :func:`signal_propagation` (per-layer forward second moments and
  backward gradient second moments / parameter-gradient norms) and
  :func:`born_dead_probability` (Monte Carlo estimate of the probability that a deep ReLU net is
  born dead, for any initializer, Lu et al. 2020) with :func:`born_dead_bounds` (the exact
  two-ray bounds for bias-free nets on a 1-D input).

Conventions: a *unit* is one index along ``unit_axis`` (default the last axis: a neuron of a
dense layer, a channel of an NHWC convolution); every other axis (batch, space) is reduced. A unit
*fires* at a position when its pre-activation is ``> threshold`` (default 0, where a ReLU is
active); it is *dead* over a set of inputs when it never fires on any of them. *Sparsity* is the
fraction of exact zeros in the activation's output (by default the ReLU of the pre-activation,
i.e. pre-activations ``<= 0``).
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple, Protocol

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.typing import ArrayLike

from ._core._dtypes import at_least_float32
from ._functions import relu
from .initializers._variance import Initializer

Array = jax.Array

__all__ = [
    "RARE_FIRE_RATE",
    "BornDeadEstimate",
    "LayerInit",
    "SignalStats",
    "StatsSummary",
    "Summary",
    "UnitStats",
    "born_dead_bounds",
    "born_dead_probability",
    "count",
    "dead_fraction",
    "dead_units",
    "fire_counts",
    "global_norm",
    "init_stats",
    "layer_moments",
    "merge_stats",
    "plot_dead_units",
    "signal_propagation",
    "sparsity",
    "summarize",
    "unit_stats",
    "update_stats",
]


# --------------------------------------------------------------------------- batch statistics
def _units_last(x: ArrayLike, unit_axis: int) -> Array:
    x = jnp.asarray(x)
    if x.ndim == 0:
        raise ValueError("rectax.diagnostics: pre-activations must have at least one axis.")
    return jnp.moveaxis(x, unit_axis, -1).reshape(-1, x.shape[unit_axis])


def fire_counts(pre: ArrayLike, *, unit_axis: int = -1, threshold: float = 0.0) -> Array:
    """Per-unit number of positions where the pre-activation is above ``threshold``.

    Args:
      pre: pre-activations, e.g. ``(batch, units)`` or ``(batch, height, width, channels)``.
      unit_axis: the axis that indexes units; all other axes are reduced.
      threshold: a unit fires where ``pre > threshold`` (0 for ReLU).

    Returns:
      An int32 array of shape ``(pre.shape[unit_axis],)``.

    Example:
      >>> import jax.numpy as jnp
      >>> from rectax import diagnostics
      >>> pre = jnp.array([[1.0, -1.0, 0.0], [2.0, -3.0, 0.5]])
      >>> diagnostics.fire_counts(pre)
      Array([2, 0, 1], dtype=int32)
    """
    return jnp.sum(_units_last(pre, unit_axis) > threshold, axis=0, dtype=jnp.int32)


def dead_units(pre: ArrayLike, *, unit_axis: int = -1, threshold: float = 0.0) -> Array:
    """Boolean mask of units that never fire over the batch (and spatial) positions.

    Args:
      pre: pre-activations.
      unit_axis: the axis that indexes units.
      threshold: a unit fires where ``pre > threshold``.

    Returns:
      A bool array of shape ``(pre.shape[unit_axis],)``, True for dead units.

    Example:
      >>> import jax.numpy as jnp
      >>> from rectax import diagnostics
      >>> diagnostics.dead_units(jnp.array([[1.0, -1.0], [2.0, 0.0]]))
      Array([False,  True], dtype=bool)
    """
    return fire_counts(pre, unit_axis=unit_axis, threshold=threshold) == 0


def dead_fraction(pre: ArrayLike, *, unit_axis: int = -1, threshold: float = 0.0) -> Array:
    """Fraction of units that never fire over the batch: the dead-unit rate of a layer.

    Args:
      pre: pre-activations.
      unit_axis: the axis that indexes units.
      threshold: a unit fires where ``pre > threshold``.

    Returns:
      A float32 scalar in [0, 1].

    Example:
      >>> import jax.numpy as jnp
      >>> from rectax import diagnostics
      >>> diagnostics.dead_fraction(jnp.array([[1.0, -1.0, -2.0, 3.0]]))
      Array(0.5, dtype=float32)
    """
    return jnp.mean(dead_units(pre, unit_axis=unit_axis, threshold=threshold), dtype=jnp.float32)


def sparsity(post: ArrayLike) -> Array:
    """Fraction of exact zeros in an activation's output.

    Args:
      post: activations (after the rectifier), any shape.

    Returns:
      A float32 scalar in [0, 1].

    Example:
      >>> import jax.numpy as jnp
      >>> import rectax as rx
      >>> from rectax import diagnostics
      >>> diagnostics.sparsity(rx.relu(jnp.array([-1.0, 0.0, 2.0, 3.0])))
      Array(0.5, dtype=float32)
    """
    return jnp.mean(jnp.asarray(post) == 0, dtype=jnp.float32)


def layer_moments(x: ArrayLike) -> tuple[Array, Array, Array]:
    """Mean, variance and second moment over all elements of a layer's activations.

    Computed in float32 (or wider) whatever ``x``'s dtype.

    Args:
      x: a layer's pre-activations or activations, any shape.

    Returns:
      ``(mean, variance, second_moment)``, scalars.

    Example:
      >>> import jax.numpy as jnp
      >>> from rectax import diagnostics
      >>> mean, var, m2 = diagnostics.layer_moments(jnp.array([1.0, 3.0]))
      >>> float(mean), float(var), float(m2)
      (2.0, 1.0, 5.0)
    """
    x = jnp.asarray(x)
    x = x.astype(at_least_float32(x.dtype))
    mean = jnp.mean(x)
    return mean, jnp.mean(jnp.square(x - mean)), jnp.mean(jnp.square(x))


# --------------------------------------------------------------------------- accumulator
class UnitStats(NamedTuple):
    """Streaming per-unit statistics of one layer: a pytree to carry through ``jit``/``scan``.

    Each count is exact to 2^64 without ``jax_enable_x64``: a pair of ``uint32`` words, the low
    word (``seen``, ``fires``, ``zeros``) and the high one (``*_high``), the count being
    ``high * 2**32 + low`` (:func:`count`). An int32 count of a 128x32x32x64 feature map's
    zeros overflowed after 256 steps, and a float32 sum (even compensated) drifts once a step's
    count is far below the total's spacing. Tested: 10^6 steps of that map.

    Attributes:
      seen: uint32 scalar, positions seen per unit (batch size times spatial size, summed).
      fires: uint32 ``(units,)``, positions where each unit fired.
      zeros: uint32 scalar, exact zeros in the layer's output (over ``seen * units`` elements).
      mean: float32 ``(units,)``, running mean of each unit's pre-activation.
      var: float32 ``(units,)``, running variance of each unit's pre-activation (Chan et al.'s
        update, kept as a variance rather than a sum of squares: a float32 sum of squared
        deviations drifted by 1.3% over 10^6 merges).
      seen_high: uint32 scalar, the high word of ``seen``.
      fires_high: uint32 ``(units,)``, that of ``fires``.
      zeros_high: uint32 scalar, that of ``zeros``.
    """

    seen: Array
    fires: Array
    zeros: Array
    mean: Array
    var: Array
    seen_high: Array
    fires_high: Array
    zeros_high: Array


def count(low: Array, high: Array) -> Array:
    """A two-word count of :class:`UnitStats` (``high * 2**32 + low``) as float32.

    Args:
      low: the low word (``stats.seen``, ``stats.fires`` or ``stats.zeros``).
      high: the high word (``stats.seen_high``, ...).

    Returns:
      The count, rounded to float32.

    Example:
      >>> import jax.numpy as jnp
      >>> from rectax import diagnostics
      >>> s = diagnostics.unit_stats(jnp.ones((3, 2)))
      >>> diagnostics.count(s.seen, s.seen_high)
      Array(3., dtype=float32)
    """
    return high.astype(jnp.float32) * float(2**32) + low.astype(jnp.float32)


class StatsSummary(NamedTuple):
    """What :func:`summarize` reports for one layer.

    Attributes:
      dead_fraction: fraction of units that never fired over everything accumulated.
      dead: bool ``(units,)``, the dead units.
      fire_rate: float32 ``(units,)``, fraction of positions where each unit fired.
      sparsity: fraction of exact zeros in the layer's output.
      mean: mean pre-activation over all units and positions.
      var: variance of the pre-activation over all units and positions.
      unit_mean: float32 ``(units,)``.
      unit_var: float32 ``(units,)``.
    """

    dead_fraction: Array
    dead: Array
    fire_rate: Array
    sparsity: Array
    mean: Array
    var: Array
    unit_mean: Array
    unit_var: Array

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in zip(self._fields, self, strict=True))
        return _table([("", self)], RARE_FIRE_RATE) or f"StatsSummary({fields})"


def _is_stats(x: Any) -> bool:
    return isinstance(x, UnitStats)


def init_stats(num_units: int) -> UnitStats:
    """An empty accumulator for a layer of ``num_units`` units.

    Args:
      num_units: the size of the layer's unit axis.

    Returns:
      A :class:`UnitStats` with every count zero.

    Example:
      >>> from rectax import diagnostics
      >>> diagnostics.init_stats(3).fires
      Array([0, 0, 0], dtype=uint32)
    """
    counts = jnp.zeros((num_units,), jnp.uint32)
    zero = jnp.zeros((), jnp.uint32)
    floats = jnp.zeros((num_units,), jnp.float32)
    return UnitStats(zero, counts, zero, floats, floats, zero, counts, zero)


def unit_stats(
    pre: ArrayLike,
    post: ArrayLike | None = None,
    *,
    unit_axis: int = -1,
    threshold: float = 0.0,
) -> UnitStats:
    """The :class:`UnitStats` summary of one batch of pre-activations.

    Args:
      pre: pre-activations (the rectifier's input).
      post: the rectifier's output, for sparsity; None counts ``relu(pre)``'s zeros, i.e.
        pre-activations ``<= 0``.
      unit_axis: the axis that indexes units.
      threshold: a unit fires where ``pre > threshold``.

    Returns:
      A :class:`UnitStats` that :func:`merge_stats` can combine with others.

    Example:
      >>> import jax.numpy as jnp
      >>> from rectax import diagnostics
      >>> s = diagnostics.unit_stats(jnp.array([[1.0, -1.0], [3.0, -2.0]]))
      >>> s.seen, s.fires, s.zeros
      (Array(2, dtype=uint32), Array([2, 0], dtype=uint32), Array(2, dtype=uint32))
    """
    x = _units_last(pre, unit_axis)
    wide = x.astype(at_least_float32(x.dtype))
    # An empty batch has no mean: 0, with weight 0 in the merge (not NaN, which would stay).
    mean = jnp.sum(wide, axis=0) / max(x.shape[0], 1)
    if post is None:
        zeros = jnp.sum(x <= 0, dtype=jnp.uint32)
    else:
        zeros = jnp.sum(jnp.asarray(post) == 0, dtype=jnp.uint32)
    fires = jnp.sum(x > threshold, axis=0, dtype=jnp.uint32)
    zero = jnp.zeros((), jnp.uint32)
    return UnitStats(
        seen=jnp.asarray(x.shape[0], jnp.uint32),
        fires=fires,
        zeros=zeros,
        mean=mean.astype(jnp.float32),
        var=(jnp.sum(jnp.square(wide - mean), axis=0) / max(x.shape[0], 1)).astype(jnp.float32),
        seen_high=zero,
        fires_high=jnp.zeros_like(fires),
        zeros_high=zero,
    )


def _add(a: Array, a_high: Array, b: Array, b_high: Array) -> tuple[Array, Array]:
    """Two-word ``a + b``: the low words wrap around modulo 2^32 and carry into the high ones."""
    low = a + b
    return low, a_high + b_high + (low < a).astype(jnp.uint32)


def _merge(a: UnitStats, b: UnitStats) -> UnitStats:
    na = count(a.seen, a.seen_high)
    nb = count(b.seen, b.seen_high)
    n = jnp.maximum(na + nb, 1.0)
    wa, wb = na / n, nb / n
    delta = b.mean - a.mean
    seen, seen_high = _add(a.seen, a.seen_high, b.seen, b.seen_high)
    fires, fires_high = _add(a.fires, a.fires_high, b.fires, b.fires_high)
    zeros, zeros_high = _add(a.zeros, a.zeros_high, b.zeros, b.zeros_high)
    return UnitStats(
        seen=seen,
        fires=fires,
        zeros=zeros,
        mean=a.mean + delta * wb,
        var=a.var + (b.var - a.var) * wb + jnp.square(delta) * (wa * wb),
        seen_high=seen_high,
        fires_high=fires_high,
        zeros_high=zeros_high,
    )


def merge_stats(a: Any, b: Any) -> Any:
    """Combines two accumulators (or two pytrees of them, e.g. one per layer).

    Associative and commutative up to float rounding, with :func:`init_stats` as identity.

    Args:
      a: a :class:`UnitStats` or a pytree of them.
      b: the same structure.

    Returns:
      The statistics of the union of the data behind ``a`` and ``b``.

    Example:
      >>> import jax.numpy as jnp
      >>> from rectax import diagnostics
      >>> a = diagnostics.unit_stats(jnp.array([[1.0], [3.0]]))
      >>> b = diagnostics.unit_stats(jnp.array([[5.0]]))
      >>> s = diagnostics.merge_stats(a, b)
      >>> s.seen, s.mean
      (Array(3, dtype=uint32), Array([3.], dtype=float32))
    """
    return jax.tree.map(_merge, a, b, is_leaf=_is_stats)


def update_stats(
    state: UnitStats,
    pre: ArrayLike,
    post: ArrayLike | None = None,
    *,
    unit_axis: int = -1,
    threshold: float = 0.0,
) -> UnitStats:
    """Adds one batch of pre-activations to an accumulator.

    Pure and traceable: call it inside the jitted train step or a ``lax.scan`` body.

    Args:
      state: the accumulator so far.
      pre: this batch's pre-activations.
      post: the rectifier's output, or None (see :func:`unit_stats`).
      unit_axis: the axis that indexes units.
      threshold: a unit fires where ``pre > threshold``.

    Returns:
      The updated accumulator.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from rectax import diagnostics
      >>> batches = jnp.array([[[1.0, -1.0]], [[-2.0, -1.0]], [[0.5, -3.0]]])
      >>> def step(state, pre):
      ...     return diagnostics.update_stats(state, pre), None
      >>> state, _ = jax.lax.scan(step, diagnostics.init_stats(2), batches)
      >>> diagnostics.summarize(state).dead
      Array([False,  True], dtype=bool)
    """
    return _merge(state, unit_stats(pre, post, unit_axis=unit_axis, threshold=threshold))


def _summarize(s: UnitStats) -> StatsSummary:
    units = s.fires.shape[0]
    n = count(s.seen, s.seen_high)
    safe_n = jnp.maximum(n, 1.0)
    grand_mean = jnp.mean(s.mean)
    between = jnp.mean(jnp.square(s.mean - grand_mean))
    dead = (s.fires == 0) & (s.fires_high == 0)
    return StatsSummary(
        dead_fraction=jnp.mean(dead, dtype=jnp.float32),
        dead=dead,
        fire_rate=count(s.fires, s.fires_high) / safe_n,
        sparsity=count(s.zeros, s.zeros_high) / jnp.maximum(n * units, 1.0),
        mean=grand_mean,
        var=jnp.mean(s.var) + between,
        unit_mean=s.mean,
        unit_var=s.var,
    )


RARE_FIRE_RATE = 0.01
"""A unit that fires on fewer than this fraction of positions (but not never) is *rarely firing*."""

_SUMMARIZE_INPUT = (
    "a UnitStats (from diagnostics.unit_stats, init_stats or update_stats, or sown by a rectax "
    "module with record_stats=True) or a pytree of them"
)


def _layers(tree: Any) -> list[tuple[str, StatsSummary]]:
    """(name, summary) per layer, named by the tree path without what flax adds around it.

    Left out: ``unit_stats`` (the name rectax modules sow under), the call index Linen's ``sow``
    puts after it when the layer was called once, and ``value`` (an nnx variable's field).
    """
    is_summary = lambda x: isinstance(x, StatsSummary)
    flat = jax.tree_util.tree_flatten_with_path(tree, is_leaf=is_summary)[0]
    named = []
    for path, leaf in flat:
        parts: list[str] = []
        call = None
        for before, entry in zip((None, *path), path, strict=False):
            key = getattr(entry, "key", getattr(entry, "name", getattr(entry, "idx", entry)))
            if key in ("unit_stats", "value"):
                continue
            if isinstance(entry, jax.tree_util.SequenceKey) and (
                getattr(before, "key", None) == "unit_stats"
            ):
                call = len(parts)
            parts.append(str(key))
        named.append((parts, call, leaf))
    called_again = {"/".join(p[:c]) for p, c, _ in named if c is not None and p[c] != "0"}
    rows = []
    for parts, call, leaf in named:
        if call is not None and "/".join(parts[:call]) not in called_again:
            parts = parts[:call] + parts[call + 1 :]
        rows.append(("/".join(parts), leaf))
    return rows


def _table(rows: list[tuple[str, StatsSummary]], rare: float) -> str:
    """A per-layer text table, or "" when the values are traced (inside ``jit``)."""
    try:
        cells = []
        for name, s in rows:
            rate = np.asarray(s.fire_rate)
            units = rate.shape[0]
            dead = int(np.sum(np.asarray(s.dead)))
            rarely = int(np.sum((rate > 0) & (rate < rare)))
            cells.append(
                [
                    name,
                    str(units),
                    f"{dead} ({dead / max(units, 1):.1%})",
                    f"{rarely} ({rarely / max(units, 1):.1%})",
                    f"{float(s.sparsity):.1%}",
                ]
            )
    except (jax.errors.ConcretizationTypeError, jax.errors.TracerArrayConversionError):
        return ""
    header = ["layer", "units", "dead", f"rarely firing (<{rare:.0%})", "sparsity"]
    if all(not row[0] for row in cells):  # one unnamed layer: no layer column
        header, cells = header[1:], [row[1:] for row in cells]
    widths = [max(len(row[i]) for row in [header, *cells]) for i in range(len(header))]

    def line(row: list[str]) -> str:
        first, *rest = (
            cell.rjust(w) if i else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        return "  ".join([first, *rest]).rstrip()

    return "\n".join(line(row) for row in [header, *cells])


class Summary(Mapping):
    """What :func:`summarize` returns for a pytree of accumulators: a table when printed.

    ``summary.tree`` is the input's structure with a :class:`StatsSummary` in place of each
    :class:`UnitStats`, and indexing goes to it (``summary["Dense_0"]``,
    ``summary[layer_name]["unit_stats"][0]``), so code written for that tree keeps working.
    ``print(summary)`` shows one row per layer: units, dead units, rarely firing units (fewer
    than :data:`RARE_FIRE_RATE` of positions, but some) and sparsity. It is a pytree, so
    :func:`summarize` runs inside ``jit``.

    Attributes:
      tree: the per-layer :class:`StatsSummary` values, in the input's structure.
    """

    def __init__(self, tree: Any) -> None:
        self.tree = tree

    def __getitem__(self, key: Any) -> Any:
        return self.tree[key]

    def __iter__(self) -> Any:
        return iter(self.tree)

    def __len__(self) -> int:
        return len(self.tree)

    def layers(self) -> dict[str, StatsSummary]:
        """Layer name (the tree path joined by ``/``) to its :class:`StatsSummary`."""
        return dict(_layers(self.tree))

    def table(self, rare: float = RARE_FIRE_RATE) -> str:
        """The per-layer table; ``rare`` is the fire rate below which a unit is rarely firing."""
        return _table(_layers(self.tree), rare)

    def __repr__(self) -> str:
        return self.table() or f"Summary({self.tree!r})"


jax.tree_util.register_pytree_with_keys(
    Summary,
    lambda s: (((jax.tree_util.GetAttrKey("tree"), s.tree),), None),
    lambda _, children: Summary(*children),
    flatten_func=lambda s: ((s.tree,), None),
)


def summarize(state: Any) -> Any:
    """Turns an accumulator (or a pytree of them) into readable statistics.

    Args:
      state: a :class:`UnitStats`, or a pytree of them such as the ``intermediates`` a Linen
        model with ``record_stats=True`` sows or what ``nnx.capture`` returns.

    Returns:
      For one :class:`UnitStats`, its :class:`StatsSummary`; for a pytree, a :class:`Summary`
      that holds a :class:`StatsSummary` per accumulator in the same structure and prints as a
      per-layer table (dead units, rarely firing units, sparsity).

    Raises:
      TypeError: if ``state`` holds anything but :class:`UnitStats`, or none at all.

    Example:
      >>> import jax.numpy as jnp
      >>> from rectax import diagnostics
      >>> s = diagnostics.unit_stats(jnp.array([[1.0, -1.0, 0.0], [3.0, -1.0, 0.0]]))
      >>> out = diagnostics.summarize(s)
      >>> round(float(out.dead_fraction), 4), round(float(out.sparsity), 4), out.fire_rate
      (0.6667, 0.6667, Array([1., 0., 0.], dtype=float32))
      >>> t = diagnostics.unit_stats(jnp.array([[2.0, 1.0, -1.0, 0.5], [1.0, 3.0, -2.0, 4.0]]))
      >>> print(diagnostics.summarize({"layer1": s, "layer2": t}))
      layer   units       dead  rarely firing (<1%)  sparsity
      layer1      3  2 (66.7%)             0 (0.0%)     66.7%
      layer2      4  1 (25.0%)             0 (0.0%)     25.0%
    """
    flat = jax.tree_util.tree_flatten_with_path(state, is_leaf=_is_stats)[0]
    bad = [(path, leaf) for path, leaf in flat if not _is_stats(leaf)]
    if bad or not flat:
        if bad:
            path, leaf = bad[0]
            where = f" at {jax.tree_util.keystr(path)}" if path else ""
            got = f"{type(leaf).__name__}{where}"
        else:
            got = f"{type(state).__name__} with no UnitStats (was record_stats=True?)"
        raise TypeError(
            f"rectax.diagnostics.summarize: state must be {_SUMMARIZE_INPUT}; got {got}. For "
            "pre-activations use diagnostics.unit_stats(pre) or diagnostics.dead_units(pre)."
        )
    if _is_stats(state):
        return _summarize(state)
    return Summary(jax.tree.map(_summarize, state, is_leaf=_is_stats))


def plot_dead_units(
    history: Sequence[Any],
    steps: Sequence[float] | None = None,
    *,
    ax: Any = None,
) -> Any:
    """Plots each layer's fraction of dead units over training, one line per layer.

    Needs matplotlib (not a dependency of rectax).

    Args:
      history: one entry per checkpoint: what :func:`summarize` returned, or the accumulators
        (a :class:`UnitStats` pytree) to summarize. Every entry has the same layers.
      steps: the x value of each entry (default ``0, 1, ...``).
      ax: a matplotlib ``Axes`` to draw on (default a new figure).

    Returns:
      The ``Axes``, with a legend naming the layers.

    Example:
      >>> import jax.numpy as jnp
      >>> from rectax import diagnostics
      >>> pre = jnp.array([[1.0, -1.0], [2.0, -3.0]])
      >>> history = [{"dense": diagnostics.unit_stats(pre + shift)} for shift in (0.0, -5.0)]
      >>> ax = diagnostics.plot_dead_units(history, steps=[0, 100])
      >>> [[float(y) for y in line.get_ydata()] for line in ax.get_lines()]
      [[0.5, 1.0]]
    """
    try:
        import matplotlib.pyplot as plt
    except ModuleNotFoundError as error:
        raise ImportError(
            "rectax.diagnostics.plot_dead_units needs matplotlib: pip install matplotlib"
        ) from error
    if not history:
        raise ValueError("rectax.diagnostics.plot_dead_units: history is empty.")
    layers = []
    for entry in history:
        if not isinstance(entry, (Summary, StatsSummary)):
            entry = summarize(entry)
        layers.append(_layers(entry.tree) if isinstance(entry, Summary) else [("", entry)])
    names = [name for name, _ in layers[0]]
    if any([name for name, _ in entry] != names for entry in layers):
        raise ValueError(
            "rectax.diagnostics.plot_dead_units: every entry of history must have the same "
            f"layers; the first has {names}."
        )
    xs = list(range(len(history))) if steps is None else list(steps)
    if len(xs) != len(history):
        raise ValueError(
            f"rectax.diagnostics.plot_dead_units: got {len(history)} entries and {len(xs)} steps."
        )
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    for i, name in enumerate(names):
        ys = [float(entry[i][1].dead_fraction) for entry in layers]
        ax.plot(xs, ys, marker="o", label=name or "layer")
    ax.set_xlabel("step")
    ax.set_ylabel("dead units (fraction)")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(title="layer", fontsize="small")
    return ax


# --------------------------------------------------------------------------- signal propagation
class SignalStats(NamedTuple):
    """Per-layer signal statistics from :func:`signal_propagation` (arrays of length L).

    Attributes:
      forward: second moment ``E[h_l²]`` of each layer's output.
      backward: second moment ``E[g_l²]`` of the gradient with respect to each layer's output.
      grad_norm: global L2 norm of the gradient of each layer's parameters (None without
        parameters).
    """

    forward: Array
    backward: Array
    grad_norm: Array | None


def signal_propagation(
    layers: Sequence[Callable[..., Array]],
    x: ArrayLike,
    params: Sequence[Any] | None = None,
    *,
    key: Array | None = None,
    cotangent: ArrayLike | None = None,
) -> SignalStats:
    r"""Probes how signals propagate forward and gradients backward through a stack of layers.

    The network is ``h_0 = x``, ``h_l = layers[l](h_{l-1})`` (or ``layers[l](params[l], h_{l-1})``
    when ``params`` is given). The backward signal is the gradient of
    ``L = sum(h_L * c)`` with respect to each ``h_l``, where ``c`` is ``cotangent`` or a standard
    normal draw from ``key``: with a random unit cotangent, ``E[g_l²]`` is the quantity He et al.
    (2015) keep constant across layers. With Kaiming init and ReLU both moments stay flat with
    depth; with Xavier init they halve per layer.

    Args:
      layers: the layer functions, each mapping one layer's output to the next.
      x: the input batch.
      params: optional per-layer parameters; then each layer is called as ``layer(p, h)`` and
        per-layer parameter gradient norms are reported.
      key: PRNG key for the random cotangent (default ``jax.random.key(0)``).
      cotangent: explicit cotangent of the last layer's output (overrides ``key``).

    Returns:
      A :class:`SignalStats`.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> import rectax as rx
      >>> from rectax import diagnostics
      >>> layers = [lambda h: rx.relu(2.0 * h)] * 3
      >>> s = diagnostics.signal_propagation(layers, jnp.ones((4, 2)), cotangent=jnp.ones((4, 2)))
      >>> s.forward, s.backward
      (Array([ 4., 16., 64.], dtype=float32), Array([16.,  4.,  1.], dtype=float32))
    """
    x = jnp.asarray(x)
    n = len(layers)
    has_params = params is not None
    ps: Sequence[Any] = params if params is not None else [None] * n
    if len(ps) != n:
        raise ValueError(
            f"rectax.diagnostics.signal_propagation: got {n} layers and {len(ps)} params."
        )

    def forward(ps: Sequence[Any], perturbations: Sequence[Any]) -> tuple[Array, list[Array]]:
        h = x
        hs = []
        for layer, p, d in zip(layers, ps, perturbations, strict=True):
            h = (layer(p, h) if has_params else layer(h)) + d
            hs.append(h)
        return h, hs

    shapes = jax.eval_shape(lambda: forward(ps, [0.0] * n)[1])
    zeros = [jnp.zeros(s.shape, s.dtype) for s in shapes]
    out, vjp, hs = jax.vjp(forward, ps, zeros, has_aux=True)
    if cotangent is None:
        k = jax.random.key(0) if key is None else key
        c = jax.random.normal(k, out.shape, at_least_float32(out.dtype))
    else:
        c = jnp.broadcast_to(jnp.asarray(cotangent), out.shape)
    g_params, g_outputs = vjp(c.astype(out.dtype))

    def second_moment(a: Array) -> Array:
        return jnp.mean(jnp.square(a.astype(at_least_float32(a.dtype))))

    grad_norm = None
    if has_params:
        grad_norm = jnp.stack([global_norm(g) for g in g_params])
    return SignalStats(
        forward=jnp.stack([second_moment(h) for h in hs]),
        backward=jnp.stack([second_moment(g) for g in g_outputs]),
        grad_norm=grad_norm,
    )


def global_norm(tree: Any) -> Array:
    """Global L2 norm of a pytree of arrays (``optax.global_norm`` without optax).

    Args:
      tree: any pytree of arrays.

    Returns:
      A float32 (or wider) scalar.

    Example:
      >>> import jax.numpy as jnp
      >>> from rectax import diagnostics
      >>> diagnostics.global_norm({"w": jnp.array([3.0]), "b": jnp.array([4.0])})
      Array(5., dtype=float32)
    """
    leaves = jax.tree.leaves(tree)
    if not leaves:
        return jnp.zeros((), jnp.float32)
    return jnp.sqrt(
        sum(jnp.sum(jnp.square(leaf.astype(at_least_float32(leaf.dtype)))) for leaf in leaves)
    )


# --------------------------------------------------------------------------- born dead
class BornDeadEstimate(NamedTuple):
    """Monte Carlo estimate from :func:`born_dead_probability`.

    Attributes:
      probability: fraction of sampled nets that are born dead.
      stderr: its binomial standard error, ``sqrt(p(1 - p)/n)``.
      dead: bool ``(num_nets,)``, which sampled nets were born dead.
      first_dead_layer: int32 ``(num_nets,)``, index of the first layer with every unit
        inactive on every input, or -1 for live nets. ``first_dead_layer < L`` says whether the
        net's first ``L`` layers (a depth-``L`` net) are born dead, so one deep sample gives the
        whole curve over depth.
      dead_unit_fraction: float32 ``(num_nets, layers)``, per layer the fraction of units that
        are inactive on every input (:func:`dead_fraction`).
    """

    probability: Array
    stderr: Array
    dead: Array
    first_dead_layer: Array
    dead_unit_fraction: Array


class LayerInit(Protocol):
    """A joint per-layer initializer for :func:`born_dead_probability`.

    ``init(key, x, out_features) -> (kernel, bias)`` with ``kernel`` of shape
    ``(x.shape[-1], out_features)`` and ``bias`` of shape ``(out_features,)``. ``x`` is the
    layer's input batch, so data-dependent schemes (LSUV-style rescaling) can use it; others
    ignore it. ``key`` is distinct per net and per layer.
    """

    def __call__(self, key: Array, x: Array, out_features: int, /) -> tuple[Array, Array]: ...


def born_dead_bounds(width: int, depth: int) -> tuple[float, float]:
    r"""Exact bounds on P(born dead) for a bias-free ReLU net on a 1-D input (Lu et al. 2020).

    A bias-free net is positively homogeneous, so the inputs ``x > 0`` and ``x < 0`` are two rays
    that each layer maps to rays. With weights from any symmetric distribution, a layer kills a
    live ray with probability :math:`2^{-N}` (every unit's pre-activation is negative), so with
    :math:`H` hidden layers of width :math:`N`

    .. math:: 1 - 2(1 - 2^{-N})^H + (1 - 2^{1-N})^H \le P(\text{born dead})
       \le 1 - (1 - 2^{-N})^H .

    The net is born dead when both rays die; the upper bound is one ray dying, the lower bound
    counts a layer that kills at least one of two live rays with probability at most
    :math:`2^{1-N}`. Both tend to 1 with depth; the depth at which they reach 1/2 grows like
    :math:`2^N`, so the width needed for a given depth grows like :math:`\log_2(\text{depth})`.

    Args:
      width: hidden width :math:`N` (``>= 1``).
      depth: number of hidden layers :math:`H` (``>= 1``).

    Returns:
      ``(lower, upper)`` as Python floats.

    Example:
      >>> from rectax import diagnostics
      >>> lo, hi = diagnostics.born_dead_bounds(2, 10)
      >>> round(lo, 4), round(hi, 4)
      (0.8883, 0.9437)
    """
    if width < 1 or depth < 1:
        raise ValueError(
            f"rectax.diagnostics.born_dead_bounds: need width, depth >= 1, got {width}, {depth}."
        )
    p = 2.0**-width
    return 1 - 2 * (1 - p) ** depth + (1 - 2 * p) ** depth, 1 - (1 - p) ** depth


def born_dead_probability(
    key: Array,
    x: ArrayLike,
    widths: Sequence[int],
    *,
    num_nets: int = 1000,
    kernel_init: Initializer | None = None,
    bias_init: Initializer | None = None,
    init: LayerInit | None = None,
    activation: Callable[[Array], Array] = relu,
) -> BornDeadEstimate:
    r"""Probability that a randomly initialised deep ReLU net is born dead (Lu et al. 2020).

    Samples ``num_nets`` independent fully connected nets with hidden widths ``widths`` (input
    width ``x.shape[-1]``), each layer ``h_l = activation(h_{l-1} W_l + b_l)``, and runs the batch
    ``x`` through them (vmapped, one compiled program). A net is *born dead* when some hidden layer
    has every unit inactive (pre-activation ``<= 0``) on every input of the batch: from there on
    the net is a constant function of its input and gradient descent cannot revive it
    (Lu, Shin, Su & Karniadakis, "Dying ReLU and initialization", CiCP 2020). For fixed width
    the probability tends to 1 with depth. For bias-free nets on a 1-D input it lies within
    :func:`born_dead_bounds`: the safe depth grows like :math:`2^{\text{width}}`, so the width
    needed grows only like :math:`\log_2(\text{depth})`.

    Known answer: for width 1 and zero biases, each layer after the first dies with probability
    1/2 (its input is non-negative), so ``P = 1 - 2^{-(L-1)}`` when the batch has inputs of
    both signs.

    Two ways to initialise a layer:

    * ``kernel_init``/``bias_init``: separate :class:`jax.nn.initializers.Initializer` s for the
      ``(in, out)`` kernel and the ``(out,)`` bias, each with its own key; default He normal
      (``jax.nn.initializers.he_normal()``, a symmetric init) and zero biases.
    * ``init``: one :class:`LayerInit` ``init(key, x, out_features) -> (kernel, bias)`` that draws
      both together and sees the layer's input batch. Use it for inits that draw ``[W | b]``
      jointly, e.g. RAI (``lambda k, x, n: rectax.initializers.rai(k, x.shape[-1], n)``), and
      for data-dependent ones (LSUV-style rescaling by the variance of ``x @ W``).

    Args:
      key: PRNG key; the estimate is deterministic given it.
      x: input batch, ``(batch, features)``. Lu et al. use a 1-D input on an interval.
      widths: hidden layer widths, one per layer.
      num_nets: number of nets sampled.
      kernel_init: initializer ``(key, shape, dtype)`` for ``(in, out)`` kernels.
      bias_init: initializer for ``(out,)`` biases. Lu et al. draw biases from the same
        symmetric distribution as the weights.
      init: a joint, possibly data-dependent, layer initializer; excludes ``kernel_init`` and
        ``bias_init``.
      activation: the rectifier (default :func:`rectax.relu`).

    Returns:
      A :class:`BornDeadEstimate`.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from rectax import diagnostics
      >>> x = jnp.linspace(-1.0, 1.0, 16)[:, None]
      >>> est = diagnostics.born_dead_probability(jax.random.key(0), x, [1, 1, 1], num_nets=2000)
      >>> abs(float(est.probability) - 0.75) < 0.05
      True
    """
    x = jnp.asarray(x)
    if x.ndim != 2:
        raise ValueError("rectax.diagnostics.born_dead_probability: x must be (batch, features).")
    if num_nets < 1 or not widths:
        raise ValueError(
            "rectax.diagnostics.born_dead_probability: need num_nets >= 1 and at least one layer."
        )
    if init is not None and (kernel_init is not None or bias_init is not None):
        raise ValueError(
            "rectax.diagnostics.born_dead_probability: pass either init or "
            "kernel_init/bias_init, not both."
        )
    k_init = jax.nn.initializers.he_normal() if kernel_init is None else kernel_init
    b_init = jax.nn.initializers.zeros if bias_init is None else bias_init

    def draw(k: Array, h: Array, d_in: int, d_out: int) -> tuple[Array, Array]:
        if init is not None:
            w, b = init(k, h, d_out)
            if w.shape != (d_in, d_out) or b.shape != (d_out,):
                raise ValueError(
                    "rectax.diagnostics.born_dead_probability: init must return a kernel of "
                    f"shape {(d_in, d_out)} and a bias of shape {(d_out,)}, got {w.shape} and "
                    f"{b.shape}."
                )
            return w.astype(h.dtype), b.astype(h.dtype)
        kw, kb = jax.random.split(k)
        return k_init(kw, (d_in, d_out), h.dtype), b_init(kb, (d_out,), h.dtype)

    dims = [x.shape[-1], *widths]
    dtype = at_least_float32(x.dtype)

    pairs = list(itertools.pairwise(dims))

    def one_net(k: Array) -> Array:
        def layer(h: Array, i: Array | int, d_in: int, d_out: int) -> tuple[Array, Array]:
            w, b = draw(jax.random.fold_in(k, i), h, d_in, d_out)
            pre = h @ w + b
            return activation(pre), dead_fraction(pre)[None]

        h = x.astype(dtype)
        dead_layers = []
        start = 0
        while start < len(pairs):  # runs of equal square layers are scanned, not unrolled
            stop = start + 1
            while stop < len(pairs) and pairs[stop] == pairs[start]:
                stop += 1
            d_in, d_out = pairs[start]
            if stop - start == 1:
                h, dead = layer(h, start, d_in, d_out)
            else:
                h, dead = lax.scan(
                    functools.partial(layer, d_in=d_in, d_out=d_out), h, jnp.arange(start, stop)
                )
                dead = dead[:, 0]
            dead_layers.append(dead)
            start = stop
        return jnp.concatenate(dead_layers)

    unit_fraction = jax.jit(jax.vmap(one_net))(jax.random.split(key, num_nets))
    dead_layers = unit_fraction == 1
    dead = jnp.any(dead_layers, axis=1)
    first = jnp.where(dead, jnp.argmax(dead_layers, axis=1), -1).astype(jnp.int32)
    p = jnp.mean(dead, dtype=jnp.float32)
    return BornDeadEstimate(
        probability=p,
        stderr=jnp.sqrt(p * (1 - p) / num_nets),
        dead=dead,
        first_dead_layer=first,
        dead_unit_fraction=unit_fraction,
    )
