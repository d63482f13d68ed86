"""Recycling dormant units while training: ReDo, continual backprop and gradient-magnitude scores.

:func:`recycle` wraps any optax optimizer. Its ``update`` is the inner optimizer's plus per-unit
bookkeeping (it merges the units' statistics over the period), so a step that does not recycle
compiles to the plain optimizer's step and its memory. Recycling is a separate call,
``tx.fire(params, state)``, that the training loop makes every ``period`` steps (the host knows
its step count; no host sync is needed). It scores the hidden units of the layers it is told
about, and for the selected units

* re-initialises their **incoming** weights (the producing kernel's column and bias entry) with
  a rectax initializer (the layer's own by default),
* zeroes their **outgoing** weights (the consuming kernel's rows), so the network's function is
  unchanged at the moment of recycling, and
* resets exactly those entries of the optimizer's state to their initial values. The state's
  entries are found by tree structure: every state leaf whose path ends with a recycled
  parameter's path and has its shape (Adam's ``mu`` and ``nu``, a momentum ``trace``, Lion's
  ``mu``, the inner states of ``optax.masked`` and ``optax.chain``), whatever the optimizer.

``fire`` is a pure function: ``jax.jit`` it on its own (donating params and state) or call it
inside a jitted step compiled for firing steps: last, after the update on the period's last
step, or first, before the gradient on the step that follows. Both give the same values (bit for
bit in the tests) from different programs, and which is cheaper depends on the model: first,
the selection reads the step's inputs instead of waiting for its update and the optimizer's
update absorbs the state resets, but the edits come before the forward pass (docs/recycle.md,
Overhead, has both for an MLP and a CNN).

Three scores (Sokar et al. 2023; Dohare et al. 2024; Liu et al. 2025, arXiv 2505.24061):

* :func:`redo`: a unit is dormant when its normalised activity ``a_i / mean_j a_j <= tau``,
  with ``a_i = E|h_i|`` estimated from the unit's :class:`~rectax.diagnostics.UnitStats` (see
  :func:`activity`).
* :func:`continual_backprop`: the ``fraction`` of units with the lowest contribution utility
  ``a_i * sum_k |w_out[i, k]|`` among those older than ``maturity`` steps.
* :func:`grama`: a unit is dormant when the mean magnitude of its incoming weights' gradient,
  normalised by the layer's mean, is ``<= tau``.

The layers come as :class:`Link` s: which kernel produces the units (its last axis), which kernels
consume them (their axis -2, the input axis of ``Dense`` ``(in, out)`` and ``Conv`` ``HWIO``
kernels) and where their statistics are sown. Consumer row ``r`` belongs to unit
``r % units``, which covers ``Dense -> Dense``, ``Conv -> Conv``, a conv block flattened
(channels last) into a ``Dense``, and :func:`rectax.crelu`'s doubled width. :func:`links` derives
them from rectax's :class:`rectax.linen.MLP` / :class:`~rectax.linen.CNN` and their
:mod:`rectax.nnx` twins.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax
from jax.scipy.special import ndtri
from jax.scipy.stats import norm

from . import _functions as _activations
from . import diagnostics
from ._core import _prng
from .diagnostics import UnitStats
from .initializers._variance import Initializer

Array = jax.Array
Path = tuple[str, ...]

__all__ = [
    "Link",
    "RecycleState",
    "Recycler",
    "Score",
    "activity",
    "continual_backprop",
    "grama",
    "links",
    "recycle",
    "redo",
]


# --------------------------------------------------------------------------- paths
def _path(path: str | Sequence[Any]) -> Path:
    if isinstance(path, str):
        return tuple(p for p in path.split("/") if p)
    return tuple(str(p) for p in path)


def _entry_name(entry: Any) -> str:
    for attr in ("key", "name", "idx"):
        if hasattr(entry, attr):
            return str(getattr(entry, attr))
    return str(entry)


def _names(path: Sequence[Any]) -> Path:
    # An NNX Variable flattens to its ``.value``; the variable's own path names the parameter.
    return tuple(
        _entry_name(e)
        for e in path
        if not (isinstance(e, jax.tree_util.GetAttrKey) and e.name == "value")
    )


def _find(tree: Any, path: Path, what: str, is_leaf: Callable[[Any], bool] | None = None) -> Path:
    """The full key path of the one leaf of ``tree`` whose path ends with ``path``."""
    flat = jax.tree_util.tree_flatten_with_path(tree, is_leaf=is_leaf)[0]
    found = [_names(p) for p, _ in flat if _names(p)[-len(path) :] == path]
    found = list(dict.fromkeys(found))
    if found:  # the shortest match wins: "Dense_0/kernel" is not "head/Dense_0/kernel"
        shortest = min(len(f) for f in found)
        found = [f for f in found if len(f) == shortest]
    if len(found) != 1:
        shown = sorted({"/".join(_names(p)) for p, _ in flat})[:20]
        problem = "found nothing" if not found else f"is ambiguous ({len(found)} matches)"
        raise ValueError(
            f"rectax.recycle: {what} {'/'.join(path)!r} {problem}; paths there include {shown}."
        )
    return found[0]


def _get(tree: Any, path: Path, is_leaf: Callable[[Any], bool] | None = None) -> Any:
    for p, leaf in jax.tree_util.tree_flatten_with_path(tree, is_leaf=is_leaf)[0]:
        if _names(p) == path:
            return leaf
    raise KeyError(path)


# --------------------------------------------------------------------------- wiring
@dataclasses.dataclass(frozen=True)
class Link:
    """One layer of recyclable units: the kernel that produces them and the kernels that read them.

    Paths are ``"/"``-separated names (or tuples of names) matched against the end of a
    parameter's path, so ``"Dense_0/kernel"`` finds ``params['params']['Dense_0']['kernel']``
    and ``"layers/0/kernel"`` an NNX model's ``layers[0].kernel``; where several paths end so,
    the shortest wins (``"Dense_0/kernel"`` is not ``"head/Dense_0/kernel"``).

    Attributes:
      incoming: the producing kernel, ``(..., in, units)``: column ``i`` is unit ``i``'s
        incoming weights.
      outgoing: the consuming kernel(s), ``(..., rows, out)`` with ``rows`` a multiple of
        ``units``; row ``r`` carries unit ``r % units`` (a flattened NHWC map, or CReLU's two
        halves).
      stats: where the units' :class:`~rectax.diagnostics.UnitStats` are in the ``stats`` passed
        to ``update`` (``"Activation_0/unit_stats"``); needed by :func:`redo` and
        :func:`continual_backprop`.
      bias: the producing layer's bias; ``"auto"`` takes a ``bias`` beside ``incoming`` if there
        is one, None has none.
      init: initializer for recycled incoming columns (``(key, shape, dtype)``); None uses
        :func:`rectax.initializers.he_normal` (:func:`links` gives a builder's own). One with a
        ``columns(key, shape, count, dtype)`` method (rectax's variance-scaling initializers,
        :class:`rectax.initializers.VarianceScaling`) redraws only the recycled columns; any
        other draws the whole kernel and keeps its recycled columns.
      bias_init: initializer for recycled bias entries; None sets them to zero.
      activation: the layer's activation (a function of one array, or a rectax or ``jax.nn``
        name), which :func:`activity` follows; None is ReLU. A widening activation's output
        (:func:`rectax.crelu`'s ``[relu(z), relu(-z)]``) counts both halves toward unit
        ``r % units``.
    """

    incoming: str | Sequence[str]
    outgoing: str | Sequence[str] | Sequence[Sequence[str]]
    stats: str | Sequence[str] | None = None
    bias: str | Sequence[str] | None = "auto"
    init: Initializer | None = None
    bias_init: Initializer | None = None
    activation: Callable[..., Array] | str | None = None

    def outgoing_paths(self) -> tuple[Path, ...]:
        """The consuming kernels' paths."""
        out = self.outgoing
        if isinstance(out, str):
            return (_path(out),)
        items = list(out)
        if items and all(isinstance(o, str) and "/" not in o for o in items):
            return (_path(items),)  # one path given as a tuple of names
        return tuple(_path(o) for o in items)


@dataclasses.dataclass(frozen=True)
class _Wired:
    """A :class:`Link` resolved against a parameter tree."""

    incoming: Path
    bias: Path | None
    outgoing: tuple[Path, ...]
    stats: Path | None
    units: int
    init: Initializer
    bias_init: Initializer | None
    activation: Callable[..., Array] | None


def _wire(link: Link, params: Any) -> _Wired:
    incoming = _find(params, _path(link.incoming), "incoming kernel")
    kernel = _get(params, incoming)
    if kernel.ndim < 2:
        raise ValueError(
            f"rectax.recycle: incoming kernel {'/'.join(incoming)!r} has shape {kernel.shape}; "
            "expected (..., in, units)."
        )
    units = kernel.shape[-1]
    bias: Path | None = None
    if link.bias == "auto":
        candidate = (*incoming[:-1], "bias")
        flat = jax.tree_util.tree_flatten_with_path(params)[0]
        if any(_names(p) == candidate for p, _ in flat):
            bias = candidate
    elif link.bias is not None:
        bias = _find(params, _path(link.bias), "bias")
    if bias is not None and _get(params, bias).shape != (units,):
        raise ValueError(
            f"rectax.recycle: bias {'/'.join(bias)!r} has shape {_get(params, bias).shape}, "
            f"expected ({units},) for {'/'.join(incoming)!r}."
        )
    outgoing = tuple(_find(params, p, "outgoing kernel") for p in link.outgoing_paths())
    for path in outgoing:
        shape = _get(params, path).shape
        if len(shape) < 2 or shape[-2] % units:
            raise ValueError(
                f"rectax.recycle: cannot wire {'/'.join(incoming)!r} ({units} units) to "
                f"{'/'.join(path)!r} of shape {shape}: its axis -2 must be a multiple of {units}."
            )
    if link.init is None:
        from .initializers import he_normal

        init: Initializer = he_normal()
    else:
        init = link.init
    return _Wired(
        incoming,
        bias,
        outgoing,
        None if link.stats is None else _path(link.stats),
        units,
        init,
        link.bias_init,
        None if link.activation is None else _activation_function(link.activation),
    )


def _activation_function(activation: Any) -> Callable[..., Array]:
    """A builder's or a link's activation (function, name, module class) as a function."""
    from . import _resolve as common

    target, params = common.init_target(activation)
    fn = common.resolve_function(target)
    return functools.partial(fn, **params) if params else fn


def links(model: Any) -> tuple[Link, ...]:
    """The :class:`Link` s of a rectax builder: :class:`rectax.linen.MLP`, :class:`rectax.linen.CNN`
    and their :mod:`rectax.nnx` twins.

    Every hidden layer is linked to the next, the last conv block to the head's first Dense;
    the initializers are the builder's own (``kernel_init``, ``"auto"`` resolved, and
    ``bias_init``), and so is the activation :func:`activity` follows; the statistics are the
    activation modules' (build with ``record_stats=True``).

    Args:
      model: a rectax builder (Linen module or NNX object).

    Returns:
      A tuple of links, first layer first.

    Raises:
      TypeError: for any other model; declare its links with :class:`Link` instead.

    Example:
      >>> from rectax import linen as rxl, recycle
      >>> for link in recycle.links(rxl.MLP((8, 8, 2))):
      ...     print(link.incoming, link.outgoing, link.stats)
      Dense_0/kernel Dense_1/kernel Activation_0/unit_stats
      Dense_1/kernel Dense_2/kernel Activation_1/unit_stats
    """
    from . import _resolve as common
    from . import linen as rxl
    from . import nnx as rxn

    if isinstance(model, (rxl.MLP, rxl.CNN)):
        cls = common.module_class(model.activation) or rxl.Activation
        act = cls.__name__
        parts = (model.bias_init, model.activation)
        if isinstance(model, rxl.CNN):
            conv_init = common.kernel_init_for(model.activation, model.kernel_init, layout="conv")
            dense_init = common.kernel_init_for(model.activation, model.kernel_init)
            return (
                *_chain(
                    "Conv_{}/kernel",
                    f"{act}_{{}}/unit_stats",
                    len(model.features),
                    "head/Dense_0/kernel",
                    conv_init,
                    *parts,
                ),
                *_chain(
                    "head/Dense_{}/kernel",
                    f"head/{act}_{{}}/unit_stats",
                    len(model.dense),
                    None,
                    dense_init,
                    *parts,
                ),
            )
        init = common.kernel_init_for(model.activation, model.kernel_init)
        return _chain(
            "Dense_{}/kernel", f"{act}_{{}}/unit_stats", len(model.features) - 1, None, init, *parts
        )
    if isinstance(model, (rxn.MLP, rxn.CNN)):
        return _nnx_links(model)
    raise TypeError(
        f"rectax.recycle.links: cannot wire a {type(model).__qualname__}; it wires rectax's "
        "linen/nnx MLP and CNN. Declare the layers as rectax.recycle.Link(incoming, outgoing, "
        "stats) instead."
    )


def _nnx_links(model: Any) -> tuple[Link, ...]:
    if hasattr(model, "convs"):
        head = model.head
        return (
            *_chain(
                "convs/{}/kernel",
                "conv_activations/{}/unit_stats",
                len(model.convs),
                "head/layers/0/kernel",
                model.conv_kernel_init,
                model.bias_init,
                model.activation,
            ),
            *_chain(
                "head/layers/{}/kernel",
                "head/activations/{}/unit_stats",
                len(head.layers) - 1,
                None,
                head.kernel_init,
                head.bias_init,
                head.activation,
            ),
        )
    return _chain(
        "layers/{}/kernel",
        "activations/{}/unit_stats",
        len(model.layers) - 1,
        None,
        model.kernel_init,
        model.bias_init,
        model.activation,
    )


def _chain(
    kernel: str,
    stats: str,
    count: int,
    last: str | None,
    init: Any,
    bias_init: Any,
    activation: Any,
) -> tuple[Link, ...]:
    """Links layer ``i`` to layer ``i + 1`` for ``i < count`` (paths: ``kernel`` and ``stats``
    formatted with ``i``); the last link's outgoing kernel is ``last`` when given."""
    return tuple(
        Link(
            kernel.format(i),
            last if last is not None and i == count - 1 else kernel.format(i + 1),
            stats.format(i),
            "auto",
            init,
            bias_init,
            activation,
        )
        for i in range(count)
    )


# --------------------------------------------------------------------------- scores
def activity(
    stats: UnitStats, activation: Callable[..., Array] | str | None = None, *, nodes: int = 32
) -> Array:
    r"""Each unit's mean activity ``E|f(z_i)|``, from the running moments of its pre-activation.

    :class:`~rectax.diagnostics.UnitStats` keeps each unit's mean :math:`\mu` and variance
    :math:`\sigma^2` of its pre-activation :math:`z` and how often it fired (``z > 0``); the
    activity is :math:`E|f(z)|` for :math:`z \sim N(\mu, \sigma^2)`. For ReLU (``activation`` None,
    ``rectax.relu`` or ``jax.nn.relu``) that is :math:`\mu\Phi(\mu/\sigma) +
    \sigma\varphi(\mu/\sigma)`. For any other activation it is Gauss-Legendre quadrature (``nodes``
    points) on each side of 0 in the normal's probability scale (:math:`z = \mu +
    \sigma\Phi^{-1}(u)`), where rectifiers are smooth: within 1e-3 relative of float64 integration
    for ReLU, leaky ReLU, ELU and CReLU at 32 nodes (tested). A unit that never fired has had
    :math:`z \le 0` throughout: its activity is that of the normal conditioned on :math:`z \le 0`
    (exactly 0 for ReLU, so a dead ReLU unit has ReDo score 0 at any ``tau``; not for CReLU, whose
    ``relu(-z)`` half is live, nor for leaky ReLU). A widening activation's outputs (CReLU's two
    halves) are summed per unit, output ``r`` belonging to unit ``r % units``.

    Args:
      stats: one layer's accumulated statistics.
      activation: the layer's activation (a function of one array, or a rectax or ``jax.nn``
        name); None is ReLU, in closed form.
      nodes: quadrature points per side of 0.

    Returns:
      float32 ``(units,)``.

    Example:
      >>> import jax.numpy as jnp
      >>> import rectax as rx
      >>> from rectax import diagnostics, recycle
      >>> s = diagnostics.unit_stats(jnp.array([[1.0, -1.0], [3.0, -2.0]]))
      >>> recycle.activity(s)  # mean 2, sd 1: 2 Phi(2) + phi(2); the dead unit: 0
      Array([2.0084906, 0.       ], dtype=float32)
      >>> recycle.activity(s, rx.crelu)  # E|z|; the never-fired unit's relu(-z) half is live
      Array([2.0168293, 1.5021468], dtype=float32)
    """
    mu = stats.mean
    sigma = jnp.sqrt(jnp.maximum(stats.var, 0.0))
    fired = (stats.fires > 0) | (stats.fires_high > 0)
    fn = None if activation is None else _activation_function(activation)
    if fn is None or fn in _RELUS:  # the closed form (10x cheaper than the quadrature)
        safe = jnp.where(sigma > 0, sigma, 1.0)
        t = mu / safe
        gaussian = mu * norm.cdf(t) + sigma * norm.pdf(t)
        value = jnp.where(sigma > 0, gaussian, jnp.maximum(mu, 0.0))
        return jnp.where(fired, value, 0.0)
    units = mu.shape[0]

    def magnitude(z: Array) -> Array:  # sum over a widening activation's outputs, per unit
        h = jnp.abs(fn(z).astype(jnp.float32))
        return jnp.sum(h.reshape(*z.shape[:-1], -1, units), axis=-2)

    points, weights = np.polynomial.legendre.leggauss(nodes)
    t = jnp.asarray((points + 1) / 2, jnp.float32)[:, None]  # on (0, 1)
    w = jnp.asarray(weights / 2, jnp.float32)[:, None]
    safe = jnp.where(sigma > 0, sigma, 1.0)
    below, above = norm.cdf(-mu / safe), norm.cdf(mu / safe)  # P(z <= 0), P(z > 0)
    # z = mu + sigma ndtri(u) over u in (0, below], and z = mu - sigma ndtri(v), v in (0, above]
    z_neg = jnp.minimum(mu + sigma * ndtri(jnp.where(below > 0, below * t, 0.5)), 0.0)
    z_pos = jnp.maximum(mu - sigma * ndtri(jnp.where(above > 0, above * t, 0.5)), 0.0)
    neg = jnp.sum(w * magnitude(z_neg), axis=0)
    pos = jnp.sum(w * magnitude(z_pos), axis=0)
    gaussian = jnp.where(fired, below * neg + above * pos, neg)
    point = magnitude(jnp.where(fired, mu, jnp.minimum(mu, 0.0))[None])[0]
    return jnp.where(sigma > 0, gaussian, point)


_RELUS = (_activations.relu, jax.nn.relu)


class _Evidence(NamedTuple):
    """What a score sees of one layer at a firing step."""

    stats: UnitStats | None
    activation: Callable[..., Array] | None
    grad: Array  # summed mean |gradient| of each unit's incoming weights over the period
    outgoing: Array  # sum |w_out| over each unit's rows, all consumers
    age: Array  # steps since each unit was (re)initialised


def _normalised(x: Array) -> Array:
    return x / jnp.maximum(jnp.mean(x), jnp.finfo(x.dtype).tiny)


@dataclasses.dataclass(frozen=True)
class Score:
    """How :func:`recycle` picks units; build one with :func:`redo`, :func:`continual_backprop` or
    :func:`grama`.

    Attributes:
      kind: ``"redo"``, ``"utility"`` or ``"gradient"``.
      tau: threshold on the normalised score (``redo``, ``grama``).
      fraction: fraction of a layer's units replaced per firing (``continual_backprop``).
      maturity: units younger than this many steps are kept (``continual_backprop``).
    """

    kind: str
    tau: float = 0.0
    fraction: float = 0.0
    maturity: int = 0

    def column_cap(self, units: int) -> int:
        """How many columns a firing draws alone in a layer of ``units`` units (see
        :func:`recycle`): ``continual_backprop``'s ``round(fraction * units)``, which it never
        exceeds, and ``ceil(units / 16)`` for the thresholds; 0 (the whole kernel is drawn) when
        that is not less than ``units``."""
        cap = round(self.fraction * units) if self.kind == "utility" else math.ceil(units / 16)
        return cap if cap < units else 0

    @property
    def needs_stats(self) -> bool:
        """Whether the score reads the units' :class:`~rectax.diagnostics.UnitStats`."""
        return self.kind in ("redo", "utility")

    def select(self, e: _Evidence) -> Array:
        """Boolean ``(units,)``, True for the units to recycle."""
        if self.kind == "redo":
            assert e.stats is not None
            return _normalised(activity(e.stats, e.activation)) <= self.tau
        if self.kind == "gradient":
            return _normalised(e.grad) <= self.tau
        assert e.stats is not None
        units = e.age.shape[0]
        k = round(self.fraction * units)
        utility = activity(e.stats, e.activation) * e.outgoing
        mature = e.age >= self.maturity
        _, idx = lax.top_k(-jnp.where(mature, utility, jnp.inf), k)
        # The chosen units' mask by comparing with their indices: one fused operation where a
        # scatter into a zero mask is three (broadcast, copy, scatter) on XLA:CPU.
        chosen = jnp.any(jnp.arange(units, dtype=idx.dtype)[:, None] == idx, axis=1)
        return chosen & mature


def redo(tau: float = 0.1) -> Score:
    """ReDo (Sokar et al., ICML 2023): recycle units with normalised activity ``<= tau``.

    ``tau = 0`` recycles exactly the units that never fired over the period (dead ReLUs).

    Args:
      tau: threshold on ``a_i / mean_j a_j`` (:func:`activity`); Sokar et al. use 0 to 0.1.

    Returns:
      A :class:`Score`.
    """
    if not tau >= 0:
        raise ValueError(f"rectax.recycle.redo: tau must be >= 0, got {tau}.")
    return Score("redo", tau=float(tau))


def grama(tau: float = 0.1) -> Score:
    """Gradient-magnitude dormancy (GraMa, arXiv 2505.24061): recycle units whose incoming
    weights' mean gradient magnitude, normalised by the layer's mean, is ``<= tau``.

    Needs no activation statistics, so it also finds dormant units of non-ReLU and residual
    layers, whose activations need not be small.

    Args:
      tau: threshold on the normalised gradient magnitude.

    Returns:
      A :class:`Score`.
    """
    if not tau >= 0:
        raise ValueError(f"rectax.recycle.grama: tau must be >= 0, got {tau}.")
    return Score("gradient", tau=float(tau))


def continual_backprop(fraction: float = 0.01, maturity: int = 100) -> Score:
    """Continual backprop (Dohare et al., Nature 2024): replace the lowest-utility mature units.

    The contribution utility of unit ``i`` is ``a_i * sum_k |w_out[i, k]|`` (:func:`activity`
    times its outgoing weights' magnitude); at each firing the ``round(fraction * units)``
    units with the lowest utility among those at least ``maturity`` steps old are replaced.
    Dohare et al. replace a fraction ``rho ~ 1e-4`` of units per step, i.e. ``rho * period``
    per firing here.

    Args:
      fraction: fraction of each layer's units replaced per firing, ``(0, 1]``.
      maturity: minimum age in steps.

    Returns:
      A :class:`Score`.
    """
    if not 0 < fraction <= 1:
        raise ValueError(
            f"rectax.recycle.continual_backprop: fraction must be in (0, 1], got {fraction}."
        )
    if maturity < 0:
        raise ValueError(
            f"rectax.recycle.continual_backprop: maturity must be >= 0, got {maturity}."
        )
    return Score("utility", fraction=float(fraction), maturity=int(maturity))


# --------------------------------------------------------------------------- the transform
class RecycleState(NamedTuple):
    """State of :func:`recycle`.

    The per-unit books are packed into two arrays per link, because every array of a jitted
    step's state costs a few microseconds of dispatch on CPU (with 23 separate ones the idle step of
    ``examples/recycle_overhead.py`` took 3.5% more CPU than the plain one, packed 2.3%); the
    properties unpack them.

    Attributes:
      inner: the wrapped optimizer's state.
      books: per link, float32 ``(3, units)``: the pre-activation mean and variance accumulated
        since the last firing, and the summed mean gradient magnitude of each unit's incoming
        weights.
      counts: per link, uint32 ``(3, units + 6)``: the units' fire counts (low and high words)
        and ages; row 0's last 6 entries hold the period's sample and zero counts (low words,
        then high words), the number of units recycled so far and the step.
    """

    inner: Any
    books: tuple[Array, ...]
    counts: tuple[Array, ...]

    @property
    def step(self) -> Array:
        """int32 number of updates so far."""
        return self.counts[0][0, -1].astype(jnp.int32)

    @property
    def stats(self) -> tuple[UnitStats, ...]:
        """Per link, the :class:`~rectax.diagnostics.UnitStats` accumulated since the last
        firing."""
        return tuple(_unpack(b, c)[0] for b, c in zip(self.books, self.counts, strict=True))

    @property
    def grad(self) -> tuple[Array, ...]:
        """Per link, the summed mean gradient magnitude of each unit's incoming weights."""
        return tuple(b[2] for b in self.books)

    @property
    def age(self) -> tuple[Array, ...]:
        """Per link, int32 steps since each unit was (re)initialised."""
        return tuple(_unpack(b, c)[2] for b, c in zip(self.books, self.counts, strict=True))

    @property
    def recycled(self) -> tuple[Array, ...]:
        """Per link, int32 number of units recycled so far (a counter for monitoring)."""
        return tuple(_unpack(b, c)[3] for b, c in zip(self.books, self.counts, strict=True))


def _pack(
    stats: UnitStats, grad: Array, age: Array, recycled: Array, step: Array
) -> tuple[Array, Array]:
    books = jnp.stack([stats.mean, stats.var, grad]).astype(jnp.float32)
    tail = jnp.stack(
        [
            stats.seen,
            stats.zeros,
            stats.seen_high,
            stats.zeros_high,
            recycled.astype(jnp.uint32),
            step.astype(jnp.uint32),
        ]
    )
    zeros = jnp.zeros((6,), jnp.uint32)
    counts = jnp.stack(
        [
            jnp.concatenate([stats.fires, tail]),
            jnp.concatenate([stats.fires_high, zeros]),
            jnp.concatenate([age.astype(jnp.uint32), zeros]),
        ]
    )
    return books, counts


def _unpack(books: Array, counts: Array) -> tuple[UnitStats, Array, Array, Array]:
    """(accumulated statistics, gradient magnitudes, int32 ages, int32 recycled count)."""
    units = books.shape[-1]
    tail = counts[0, units:]
    stats = UnitStats(
        seen=tail[0],
        fires=counts[0, :units],
        zeros=tail[1],
        mean=books[0],
        var=books[1],
        seen_high=tail[2],
        fires_high=counts[1, :units],
        zeros_high=tail[3],
    )
    return stats, books[2], counts[2, :units].astype(jnp.int32), tail[4].astype(jnp.int32)


class Recycler(optax.GradientTransformationExtraArgs):
    """What :func:`recycle` returns: an optax transformation (``init``, ``update``) and ``fire``.

    ``fire(params, state) -> (params, state)`` recycles the units its score selects from what
    ``update`` gathered since the last firing; see :func:`recycle`.
    """

    fire: Callable[[Any, RecycleState], tuple[Any, RecycleState]]

    def __new__(
        cls,
        init: optax.TransformInitFn,
        update: optax.TransformUpdateExtraArgsFn,
        fire: Callable[[Any, RecycleState], tuple[Any, RecycleState]],
    ) -> Recycler:
        self = super().__new__(cls, init, update)
        self.fire = fire
        return self


def _column_magnitude(g: Array) -> Array:
    g = jnp.abs(g.astype(jnp.float32))
    return jnp.mean(g.reshape(-1, g.shape[-1]), axis=0)


def _row_magnitude(w: Array, units: int) -> Array:
    w = jnp.abs(jnp.moveaxis(w, -2, 0).astype(jnp.float32))
    per_row = jnp.sum(w.reshape(w.shape[0], -1), axis=1)
    return jnp.sum(per_row.reshape(-1, units), axis=0)


def _row_mask(mask: Array, kernel: Array) -> Array:
    # Row r belongs to unit r % units: the mask tiled (a broadcast XLA fuses, not a gather).
    return jnp.tile(mask, kernel.shape[-2] // mask.shape[0])[:, None]


def _first(mask: Array, count: int, fill: int) -> Array:
    """The indices of ``mask``'s first ``count`` True entries in order, then ``fill``:
    ``jnp.nonzero(mask, size=count, fill_value=fill)[0]`` in one ``top_k`` (``nonzero`` takes
    two cumulative sums and a scatter, each an operation XLA:CPU dispatches on its own)."""
    n = mask.shape[0]
    # float32 ranks (exact below 2**24): XLA:CPU's TopK takes floats; an integer top_k is a sort.
    dtype = jnp.float32 if n < 2**24 else jnp.int32
    value, index = lax.top_k(jnp.where(mask, n - jnp.arange(n, dtype=dtype), 0), count)
    return jnp.where(value > 0, index, fill)


def recycle(
    inner: optax.GradientTransformation,
    links: Sequence[Link],
    *,
    score: Score | None = None,
    seed: int = 0,
) -> Recycler:
    r"""Wraps an optax optimizer so that it can recycle dormant units; ``fire`` recycles them.

    ``update(grads, state, params=None, stats=None, **extra)`` is the inner optimizer's update
    (``**extra`` reaches it) plus per-unit bookkeeping: for :func:`redo` and
    :func:`continual_backprop` it merges ``stats``, this step's
    :class:`~rectax.diagnostics.UnitStats` (the ``'intermediates'`` a builder sows with
    ``record_stats=True``, or any pytree holding them at the links' ``stats`` paths), over the
    period; for :func:`grama` it sums the incoming weights' gradient magnitudes. Its updates
    and inner state are the inner optimizer's, bit for bit, and its compiled step has the plain
    optimizer's temporaries.

    ``fire(params, state) -> (params, state)``, called by the training loop every ``period``
    steps, scores the units from what ``update`` gathered, redraws the selected units'
    incoming columns (and bias entries) from the link's initializer (only those columns when it
    has a ``columns`` method and at most ``score.column_cap(units)`` units are selected: the
    redraw then costs what the recycled units need), sets their outgoing rows to
    zero, resets the optimizer state's entries of exactly those weights to what ``inner.init``
    gives, and starts a new period. Every other parameter and state entry is returned as it
    is. It is a pure function: ``jax.jit(tx.fire, donate_argnums=(0, 1))``, or call it inside a
    jitted step compiled for firing steps (or inside ``lax.scan`` every ``period`` steps): after
    the update on the period's last step, or first, before the gradient, on the step after it
    (the same values; which program is cheaper depends on the model).

    Args:
      inner: any optax optimizer (``adam``, ``adamw``, ``sgd`` with momentum, ``lion``, a
        ``chain`` with ``masked`` weight decay, ...).
      links: the layers, from :func:`links` or declared with :class:`Link`.
      score: :func:`redo` (default, ``tau=0.1``), :func:`continual_backprop` or :func:`grama`.
      seed: seed of the re-initialisation draws (folded with the step and the link).

    Returns:
      A :class:`Recycler`: an ``optax.GradientTransformationExtraArgs`` with ``fire``.

    Example:
      >>> import jax, jax.numpy as jnp, optax
      >>> from rectax import linen as rxl, recycle
      >>> model = rxl.MLP((8, 2), record_stats=True)
      >>> params = model.init(jax.random.key(0), jnp.ones((4, 3)))["params"]
      >>> tx = recycle.recycle(optax.adam(1e-3), recycle.links(model))
      >>> state = tx.init(params)
      >>> def loss(p, x):
      ...     y, inter = model.apply({"params": p}, x, mutable=["intermediates"])
      ...     return jnp.sum(y), inter["intermediates"]
      >>> x = jnp.full((4, 3), -1.0)
      >>> fire = jax.jit(tx.fire)
      >>> for i in range(4):
      ...     grads, stats = jax.grad(loss, has_aux=True)(params, x)
      ...     updates, state = tx.update(grads, state, params, stats=stats)
      ...     params = optax.apply_updates(params, updates)
      ...     if (i + 1) % 2 == 0:  # period 2
      ...         params, state = fire(params, state)
      >>> state.recycled[0] > 0
      Array(True, dtype=bool)
    """
    if not links:
        raise ValueError("rectax.recycle.recycle: links is empty; there is nothing to recycle.")
    score = redo() if score is None else score
    if not isinstance(score, Score):
        raise TypeError(
            "rectax.recycle.recycle: score must come from rectax.recycle.redo, "
            f"continual_backprop or grama, got {score!r}."
        )
    inner = optax.with_extra_args_support(inner)
    links = tuple(links)

    def wired(tree: Any, what: str) -> tuple[_Wired, ...]:
        if tree is None:
            raise ValueError(f"rectax.recycle.recycle: {what} needs params.")
        return tuple(_wire(link, tree) for link in links)

    def init_fn(params: Any) -> RecycleState:
        ws = wired(params, "init")
        for w in ws:
            if score.kind == "utility" and round(score.fraction * w.units) < 1:
                raise ValueError(
                    f"rectax.recycle.continual_backprop: fraction {score.fraction} of "
                    f"{w.units} units of {'/'.join(w.incoming)!r} rounds to 0 units."
                )
        zero = jnp.zeros((), jnp.int32)
        packed = [
            _pack(
                diagnostics.init_stats(w.units),
                jnp.zeros((w.units,), jnp.float32),
                jnp.zeros((w.units,), jnp.int32),
                zero,
                zero,
            )
            for w in ws
        ]
        return RecycleState(inner.init(params), *_split(packed))

    def update_fn(
        updates: Any, state: RecycleState, params: Any = None, stats: Any = None, **extra: Any
    ) -> tuple[Any, RecycleState]:
        ws = wired(updates, "update")  # the gradients have the parameters' structure
        unpacked = [_unpack(b, c) for b, c in zip(state.books, state.counts, strict=True)]
        acc = [u[0] for u in unpacked]
        grad = [u[1] for u in unpacked]
        age = [u[2] for u in unpacked]
        recycled = [u[3] for u in unpacked]
        if score.needs_stats:
            if stats is None:
                raise ValueError(
                    "rectax.recycle.recycle: this score reads unit statistics; pass "
                    "update(..., stats=...) (the 'intermediates' of a model built with "
                    "record_stats=True)."
                )
            for i, w in enumerate(ws):
                if w.stats is None:
                    raise ValueError(
                        f"rectax.recycle: link {'/'.join(w.incoming)!r} has no stats path."
                    )
                found = _find(stats, w.stats, "stats", is_leaf=_is_stats)
                # The barrier keeps XLA from fusing the batch reductions that make this step's
                # statistics into the merge, where they were recomputed per output (the idle
                # step went from x1.08 to x1.04 of the plain one in examples/recycle_overhead.py).
                new = lax.optimization_barrier(_get(stats, found, is_leaf=_is_stats))
                acc[i] = diagnostics.merge_stats(acc[i], new)
        if score.kind == "gradient":
            grad = [
                g + _column_magnitude(_get(updates, w.incoming))
                for g, w in zip(grad, ws, strict=True)
            ]
        new_updates, inner_state = inner.update(updates, state.inner, params, **extra)
        step = state.step + 1
        packed = [
            _pack(a, g, ag + 1, r, step)
            for a, g, ag, r in zip(acc, grad, age, recycled, strict=True)
        ]
        return new_updates, RecycleState(inner_state, *_split(packed))

    def fire_fn(params: Any, state: RecycleState) -> tuple[Any, RecycleState]:
        ws = wired(params, "fire")
        masks = tuple(
            score.select(_evidence(params, w, a, g, ag))
            for w, a, g, ag in zip(ws, state.stats, state.grad, state.age, strict=True)
        )
        # Keys and draws by the unrolled hash: jax.random's values, without its loop on CPU.
        key = jax.random.fold_in(_prng.unrolled(jax.random.key(seed)), state.step)
        caps = tuple(score.column_cap(w.units) for w in ws)
        # Continual backprop selects units at every firing once they are mature, never more
        # than its cap: its columns are drawn without a ``cond`` (a ``cond`` is dispatched on
        # its own and waits for the selection; the draw does not need it) and its kernels need
        # no whole-kernel fallback.
        params, inner_state = _apply(
            params, state.inner, ws, masks, caps, inner, key, bounded=score.kind == "utility"
        )
        packed = [
            _pack(
                diagnostics.init_stats(w.units),
                jnp.zeros((w.units,), jnp.float32),
                jnp.where(m, 0, age),
                recycled + jnp.sum(m, dtype=jnp.int32),
                state.step,
            )
            for w, m, age, recycled in zip(ws, masks, state.age, state.recycled, strict=True)
        ]
        return params, RecycleState(inner_state, *_split(packed))

    return Recycler(init_fn, update_fn, fire_fn)


def _split(packed: list[tuple[Array, Array]]) -> tuple[tuple[Array, ...], tuple[Array, ...]]:
    return tuple(p[0] for p in packed), tuple(p[1] for p in packed)


def _is_stats(x: Any) -> bool:
    return isinstance(x, UnitStats)


def _evidence(params: Any, w: _Wired, acc: Any, grad: Array, age: Array) -> _Evidence:
    outgoing = sum(_row_magnitude(_get(params, p), w.units) for p in w.outgoing)
    return _Evidence(acc, w.activation, grad, jnp.asarray(outgoing), age)


def _redraw(
    p: Array,
    mask: Array,
    init: Initializer,
    key: Array,
    cap: int,
    rows: Array | None = None,
) -> Array:
    """``p`` with the entries in ``mask`` (a parameter's, or its last axis's) redrawn by ``init``.

    Nothing is drawn when no entry is selected. An initializer with a ``columns(key, shape,
    count, dtype)`` method (:class:`rectax.initializers.VarianceScaling`) draws ``cap`` columns
    when at most ``cap`` units are selected, and the selected units take them in order; any other
    initializer, or more selected units, draws the whole parameter. Either way each selected
    entry has the distribution the whole draw gives it. ``rows``, when given, is a mask of rows
    (axis -2) that stay zero in what is written.
    """
    plan = _plan(p, mask, init, key, cap, rows)
    if p.ndim < 2:  # a bias: drawing it costs less than the ``cond`` that would skip the draw
        return plan.whole(p)
    # The columns are drawn under a ``cond`` that does not take ``p`` (a branch taking ``p``
    # copies the kernel on XLA:CPU) and scattered into ``p`` outside it, in place; unused slots
    # point past the last column and are dropped. No loop over the units: on XLA:CPU a loop or
    # ``cond`` body runs op by op, and the key's unrolled hash (``_prng.unrolled``) leaves the
    # draw without the loop jax's threefry has there. A ``cond`` not taken costs a few us, less
    # than drawing the columns for nothing (``ceil(units / 16)`` of them for ``redo``).
    if plan.columns is not None:
        fresh = lax.cond(plan.go, plan.columns, lambda: plan.zeros)
        p = p.at[..., plan.slots].set(fresh, mode="drop")
    # Drawn whole (more than ``cap`` selected, or no ``columns``): a 0-or-1-trip loop, which
    # updates ``p`` in place where a ``cond`` copies it in its identity branch at every firing.
    done = jnp.zeros((), jnp.bool_)
    _, p = lax.while_loop(lambda c: c[0], lambda c: (done, plan.whole(c[1])), (plan.redraw, p))
    return p


class _Plan(NamedTuple):
    """How one kernel's selected columns are redrawn (:func:`_plan`)."""

    columns: Callable[[], Array] | None  # the ``cap`` drawn columns, when drawn alone
    go: Array  # whether to draw the columns
    slots: Array  # the columns they go to; past the last for unused slots
    zeros: Array  # what stands for the columns when none are drawn
    whole: Callable[[Array], Array]  # the kernel with its selected entries drawn whole
    redraw: Array  # whether to draw the whole kernel


def _plan(
    p: Array, mask: Array, init: Initializer, key: Array, cap: int, rows: Array | None
) -> _Plan:
    """How :func:`_redraw` redraws ``p``, in parts, so that the draws of several kernels can go
    under one ``cond`` and one loop (:func:`_apply`); the same values."""
    columns = getattr(init, "columns", None)
    selected = jnp.sum(mask, dtype=jnp.int32)

    def keep(v: Array) -> Array:
        return v if rows is None else jnp.where(rows, jnp.zeros((), v.dtype), v)

    def whole(p: Array) -> Array:
        return keep(jnp.where(mask, init(key, p.shape, p.dtype).astype(p.dtype), p))

    no = jnp.zeros((), jnp.bool_)
    if not (callable(columns) and mask.shape == p.shape[-1:] and 0 < cap < p.shape[-1]):
        return _Plan(None, no, jnp.zeros((0,), jnp.int32), p, whole, selected > 0)
    assert callable(columns)
    few = selected <= cap

    def draw() -> Array:
        assert callable(columns)
        return keep(columns(key, p.shape, cap, p.dtype).astype(p.dtype))

    zeros = jnp.zeros((*p.shape[:-1], cap), p.dtype)
    idx = _first(mask & few, cap, p.shape[-1])
    return _Plan(draw, (selected > 0) & few, idx, zeros, whole, ~few)


def _apply(
    params: Any,
    inner_state: Any,
    ws: tuple[_Wired, ...],
    masks: tuple[Array, ...],
    caps: tuple[int, ...],
    inner: optax.GradientTransformation,
    key: Array,
    bounded: bool = False,
) -> tuple[Any, Any]:
    """Recycles the units in ``masks``: new parameters, and the optimizer state's entries of the
    changed weights back at ``inner.init``'s values. ``bounded``: no link selects more units
    than its nonzero cap, so the column-path links' columns are drawn whether or not a unit is
    selected (no ``cond``) and their kernels have no whole-kernel fallback."""
    # Per parameter path, the edits in order: (mask over the parameter, initializer or None
    # for zeros, key, column cap, outgoing rows?). A kernel that is both incoming and outgoing
    # (a middle layer) ends with its recycled rows zero, in its redrawn columns too.
    edits: dict[Path, list[tuple[Array, Initializer | None, Array, int, bool]]] = {}
    # Each link's keys are ``split(fold_in(key, i))``, derived for all links in one call each
    # (a vmap).
    keys = jax.vmap(lambda i: jax.random.split(jax.random.fold_in(key, i)))(jnp.arange(len(ws)))
    for i, (w, mask, cap) in enumerate(zip(ws, masks, caps, strict=True)):
        k_w, k_b = keys[i]
        edits.setdefault(w.incoming, []).append((mask, w.init, k_w, cap, False))
        if w.bias is not None:
            edits.setdefault(w.bias, []).append((mask, w.bias_init, k_b, 0, False))
    for w, mask in zip(ws, masks, strict=True):
        for path in w.outgoing:
            rows = _row_mask(mask, _get(params, path))
            edits.setdefault(path, []).append((rows, None, key, 0, True))

    changed = {
        path: functools.reduce(jnp.logical_or, [e[0] for e in es]) for path, es in edits.items()
    }

    # Every kernel's redraw is planned first and the draws of all links done together: one
    # ``cond`` draws every column-path link's columns (none when ``bounded``) and one
    # 0-or-1-trip loop every kernel drawn whole, instead of one of each per link (on XLA:CPU
    # each ``cond`` or loop is dispatched on its own, unfused with the rest of the step; op
    # counts in docs/recycle.md).
    flat, treedef = jax.tree_util.tree_flatten_with_path(params)
    leaves: list[Array] = []
    columns: list[tuple[int, Callable[[], Array], Array, Array, Array]] = []
    wholes: list[tuple[int, Callable[[Array], Array], Array]] = []
    for n, (path, p) in enumerate(flat):
        es = edits.get(_names(path), ())
        # The recycled rows are zeroed first, by a ``where`` that XLA fuses with the optimizer's
        # update, and the column redraws keep them zero: the result of zeroing them after the
        # redraws, without a pass over the kernel after the redraws' loop (see docs/recycle.md's
        # overhead figures).
        row_masks = [mask for mask, *_, is_rows in es if is_rows]
        zero_rows = functools.reduce(jnp.logical_or, row_masks) if row_masks else None
        if zero_rows is not None:
            p = jnp.where(zero_rows, jnp.zeros((), p.dtype), p)
        others = [e for e in es if not e[4]]
        first = others[0][1] if len(others) == 1 else None
        if first is not None and p.ndim >= 2:
            mask, _, k, cap, _ = others[0]
            plan = _plan(p, mask, first, k, cap, zero_rows)
            if plan.columns is not None:
                columns.append((n, plan.columns, plan.go, plan.slots, plan.zeros))
            if plan.columns is None or not bounded:
                wholes.append((n, plan.whole, plan.redraw))
        else:
            for mask, init, k, cap, _ in others:
                if init is None:
                    p = jnp.where(mask, jnp.zeros((), p.dtype), p)
                else:
                    p = _redraw(p, mask, init, k, cap, zero_rows)
        leaves.append(p)
    if columns:
        # The columns are drawn (under a ``cond`` that does not take the kernels: a branch
        # taking one copies it on XLA:CPU) and scattered in, in place; unused slots point past
        # the last column and are dropped.
        if bounded:
            fresh = tuple(c[1]() for c in columns)
        else:
            fresh = lax.cond(
                functools.reduce(jnp.logical_or, [c[2] for c in columns]),
                lambda: tuple(c[1]() for c in columns),
                lambda: tuple(c[4] for c in columns),
            )
        for (n, _, _, idx, _), f in zip(columns, fresh, strict=True):
            leaves[n] = leaves[n].at[..., idx].set(f, mode="drop")
    if wholes:
        # The whole kernels, in one 0-or-1-trip loop, which updates them in place where a
        # ``cond`` copies each in its identity branch at every firing; in it each kernel is
        # redrawn when it needs it and kept otherwise.
        done = jnp.zeros((), jnp.bool_)

        def body(c: tuple[Array, tuple[Array, ...]]) -> tuple[Array, tuple[Array, ...]]:
            return done, tuple(
                jnp.where(redraw, whole(v), v)
                for (_, whole, redraw), v in zip(wholes, c[1], strict=True)
            )

        _, drawn = lax.while_loop(
            lambda c: c[0],
            body,
            (
                functools.reduce(jnp.logical_or, [w[2] for w in wholes]),
                tuple(leaves[w[0]] for w in wholes),
            ),
        )
        for (n, _, _), v in zip(wholes, drawn, strict=True):
            leaves[n] = v

    # Reset the optimizer state's entries of the changed weights, found by path and shape.
    fresh_state = inner.init(params)
    shapes = {path: _get(params, path).shape for path in changed}

    def reset(path: Any, leaf: Any, init_leaf: Any) -> Any:
        names = _names(path)
        for target, mask in changed.items():
            if names[-len(target) :] == target and jnp.shape(leaf) == shapes[target]:
                return jnp.where(mask, init_leaf, leaf)
        return leaf

    new_params = jax.tree_util.tree_unflatten(treedef, leaves)
    return new_params, jax.tree_util.tree_map_with_path(reset, inner_state, fresh_state)
