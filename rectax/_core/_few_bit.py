"""Few-bit residuals: a ``b``-bit piecewise-constant derivative for any elementwise activation.

Few-Bit Backward (Novikov et al., "Few-Bit Backward: Quantized Gradients of Activation Functions
for Memory Footprint Reduction", ICML 2023, arXiv:2202.00441) keeps the forward pass exact and
replaces ``f'`` in the backward pass by a step function ``q`` with ``2**b`` levels. The forward
pass saves only each element's bucket index (``b`` bits, packed into ``uint32`` words by
:mod:`rectax._core._packing`, tagged :data:`rectax.RESIDUAL_NAME`); the backward pass computes
``levels[idx] * g``.

The table (borders and levels) minimises the L2 error

.. math:: \\int_{-100}^{100} \\bigl(f'(x) - q(x)\\bigr)^2\\,dx,

unweighted, as the paper's reference code. Given the borders, the best level of an interval is
the mean of ``f'`` over it, ``(f(b_{i+1}) - f(b_i)) / (b_{i+1} - b_i)``. The reference code
moves the borders by a local search; here they are a global optimum: a dynamic program over all
segmentations of a fine grid (step 0.01 on [-12, 12], geometric beyond), then four rounds of the
same program restricted to a window of ±2 steps around each border, each round dividing the step
by 32. This lowers the error where the local search stops early (SiLU 3-bit 0.0279 -> 0.0177,
GELU 4-bit 0.0041 -> 0.0032, ELU 3-bit 0.0072 -> 0.0054).

Why unweighted: weighting the error by a standard-normal input density halves it for inputs of
scale <= 1 but multiplies it by up to 10 for inputs of scale 4-10, and its outermost levels are
biased (GELU 3-bit: 1.09 for every large positive input instead of 1.0002; softplus 3-bit:
0.86), because it spends no levels on the tails. Pre-activation scales vary across layers and
during training, so the tables here are the unweighted ones; ``python -m benchmarks.few_bit``
prints both errors at several input scales.

The tables of the built-in activations at their default hyperparameters are precomputed in
:mod:`rectax._core._few_bit_tables` by ``python -m tools.few_bit_generate`` (rerunnable); any other
function or hyperparameter value gets its table computed once, in float64, and cached.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from . import _few_bit_tables
from ._dtypes import in_float64
from ._gradients import coded, gated_coded

Array = jax.Array
NumpyFn = Callable[[np.ndarray], np.ndarray]
Weight = Literal["uniform", "normal"]

BITS = (1, 2, 3, 4)
"""Supported code widths (3 bits are stored in 4-bit slots)."""

DOMAIN = (-100.0, 100.0)
"""The interval over which the L2 error is minimised (as the paper's reference code)."""

_FINE_HALF_WIDTH = 12.0
_FINE_STEP = 0.01
_TAIL_POINTS = 60
_REFINE_ROUNDS = 4
_REFINE_POINTS = 129  # per border, spanning ±2 current steps: the step shrinks 32x per round
_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(8)


class FewBitTable(NamedTuple):
    """A step function: ``levels[i]`` on ``(borders[i-1], borders[i]]``.

    ``borders`` are the ``2**b - 1`` increasing interior borders, ``levels`` the ``2**b``
    values; the index of ``x`` is the number of borders below it.
    """

    borders: tuple[float, ...]
    levels: tuple[float, ...]


# --------------------------------------------------------------------------- table optimiser
def _weight(kind: Weight) -> NumpyFn:
    if kind == "uniform":
        return np.ones_like
    if kind == "normal":
        return lambda x: np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)
    raise ValueError(f"rectax: weight must be 'uniform' or 'normal', got {kind!r}.")


def _base_grid(lo: float, hi: float) -> np.ndarray:
    """Candidate borders: step 0.01 on [-12, 12], geometric out to the domain, 0 included."""
    n = round(2 * _FINE_HALF_WIDTH / _FINE_STEP) + 1
    fine = np.linspace(-_FINE_HALF_WIDTH, _FINE_HALF_WIDTH, n)
    reach = max(abs(lo), abs(hi), 2 * _FINE_HALF_WIDTH)
    tail = np.geomspace(_FINE_HALF_WIDTH, reach, _TAIL_POINTS + 1)[1:]
    grid = np.concatenate([-tail[::-1], fine, tail])
    return np.concatenate([[lo], grid[(grid > lo) & (grid < hi)], [hi]])


def _moments(derivative: NumpyFn, weight: NumpyFn, points: np.ndarray) -> np.ndarray:
    """Cumulative ``∫ w``, ``∫ w f'``, ``∫ w f'²`` from ``points[0]`` to each point, shape (3, n).

    Gauss-Legendre (8 nodes) on each gap between consecutive points (exact to float64 rounding
    for smooth integrands on the gaps used here).
    """
    a, b = points[:-1], points[1:]
    half = (b - a) / 2
    x = (a + b)[:, None] / 2 + half[:, None] * _GL_NODES
    d = np.asarray(derivative(x.ravel()), np.float64).reshape(x.shape)
    if not np.all(np.isfinite(d)):
        bad = x[~np.isfinite(d)][0]
        raise ValueError(f"rectax.few_bit: the derivative is not finite at x = {bad!r}.")
    w = weight(x) * _GL_WEIGHTS * half[:, None]
    cells = np.stack([np.sum(w, 1), np.sum(w * d, 1), np.sum(w * d * d, 1)])
    return np.concatenate([np.zeros((3, 1)), np.cumsum(cells, 1)], 1)


def _cost(m: np.ndarray, i: Any, j: Any) -> np.ndarray:
    """Squared error of the best constant on ``[points[i], points[j]]``: ``S2 - S1²/S0``."""
    s0, s1, s2 = (m[k][j] - m[k][i] for k in range(3))
    safe = np.where(s0 > 0, s0, 1.0)
    return np.where(s0 > 0, s2 - s1 * s1 / safe, 0.0)


def _global_borders(m: np.ndarray, intervals: int) -> np.ndarray:
    """Indices of the interior borders that minimise the total cost (``O(K n²)`` DP)."""
    n = m.shape[1]
    i = np.arange(n)
    cost = _cost(m, i[None, :], i[:, None])  # cost[j, i]: interval from point i to point j
    cost[i[None, :] >= i[:, None]] = np.inf
    best = np.full(n, np.inf)
    best[0] = 0.0
    back = []
    for _ in range(intervals):
        total = best[None, :] + cost
        arg = np.argmin(total, axis=1)
        best = total[i, arg]
        back.append(arg)
    path = [n - 1]
    for arg in reversed(back):
        path.append(int(arg[path[-1]]))
    return np.array(path[::-1][1:-1])


def _refine(
    derivative: NumpyFn, weight: NumpyFn, grid: np.ndarray, borders: np.ndarray, steps: np.ndarray
) -> np.ndarray:
    """The same DP over ``_REFINE_POINTS`` candidates in a ±2-step window around each border."""
    lo, hi = grid[0], grid[-1]
    offsets = np.linspace(-2.0, 2.0, _REFINE_POINTS)
    for _ in range(_REFINE_ROUNDS):
        cands = np.clip(borders[:, None] + steps[:, None] * offsets, lo, hi)
        points = np.unique(np.concatenate([grid, cands.ravel()]))
        m = _moments(derivative, weight, points)
        pos = np.searchsorted(points, cands)
        best = _cost(m, 0, pos[0])
        back = []
        for k in range(1, len(borders)):
            total = best[:, None] + _cost(m, pos[k - 1][:, None], pos[k][None, :])
            total[cands[k - 1][:, None] >= cands[k][None, :]] = np.inf
            arg = np.argmin(total, axis=0)
            back.append(arg)
            best = total[arg, np.arange(len(arg))]
        best = best + _cost(m, pos[-1], len(points) - 1)
        choice = [int(np.argmin(best))]
        for arg in reversed(back):
            choice.append(int(arg[choice[-1]]))
        borders = cands[np.arange(len(borders)), choice[::-1]]
        steps = steps * (offsets[1] - offsets[0])
    return borders


def _interval_moments(
    derivative: NumpyFn,
    weight: NumpyFn,
    borders: Sequence[float] | np.ndarray,
    domain: tuple[float, float],
) -> np.ndarray:
    """``∫ w``, ``∫ w f'``, ``∫ w f'²`` over each interval the borders make, shape (3, K)."""
    grid = _base_grid(*domain)
    edges = np.concatenate([[domain[0]], np.asarray(borders, np.float64), [domain[1]]])
    points = np.unique(np.concatenate([grid, edges]))
    m = _moments(derivative, weight, points)
    pos = np.searchsorted(points, edges)
    return m[:, pos[1:]] - m[:, pos[:-1]]


def optimal_table(
    derivative: NumpyFn,
    bits: int,
    *,
    weight: Weight = "uniform",
    domain: tuple[float, float] = DOMAIN,
) -> FewBitTable:
    """The step function with ``2**bits`` levels closest to ``derivative`` in L2.

    Args:
      derivative: ``f'`` as a vectorised float64 NumPy function.
      bits: code width; ``2**bits`` levels.
      weight: ``"uniform"`` (the library's choice, see the module docstring) or ``"normal"``
        (error weighted by a standard normal density).
      domain: the interval of the error integral.

    Returns:
      The table; each level is the (weighted) mean of ``f'`` over its interval.
    """
    w = _weight(weight)
    grid = _base_grid(*domain)
    idx = _global_borders(_moments(derivative, w, grid), 2**bits)
    if len(idx):
        steps = np.maximum(grid[idx + 1] - grid[idx], grid[idx] - grid[idx - 1])
        borders = _refine(derivative, w, grid, grid[idx], steps)
    else:
        borders = grid[idx]
    s0, s1, _ = _interval_moments(derivative, w, borders, domain)
    return FewBitTable(tuple(map(float, borders)), tuple(map(float, s1 / s0)))


def l2_error(
    derivative: NumpyFn,
    table: FewBitTable,
    *,
    weight: Weight = "uniform",
    domain: tuple[float, float] = DOMAIN,
) -> float:
    """``∫ w (f' - q)²`` over ``domain`` for any table (optimal or not).

    With ``weight="normal"`` this is ``E[(f'(x) - q(x))²]`` for a standard normal ``x``.
    """
    s0, s1, s2 = _interval_moments(derivative, _weight(weight), table.borders, domain)
    levels = np.asarray(table.levels, np.float64)
    return float(np.sum(s2 - 2 * levels * s1 + levels * levels * s0))


def numpy_derivative(fn: Callable[[Array], Array]) -> NumpyFn:
    """``fn'`` as a float64 NumPy function (``jax.grad`` under :func:`in_float64`)."""
    return in_float64(jax.vmap(jax.grad(fn)))


# --------------------------------------------------------------------------- activations
def check_bits(api: str, bits: Any) -> int:
    """Validates ``bits`` at the call: a Python int in 1..4, never traced."""
    if isinstance(bits, jax.core.Tracer):
        raise TypeError(
            f"rectax.{api}: bits must be a Python int from 1 to 4, got a traced value. It picks "
            "the derivative table and the size of the saved residual, so it must be static."
        )
    if isinstance(bits, bool) or not isinstance(bits, int | np.integer):
        raise TypeError(
            f"rectax.{api}: bits must be an int from 1 to 4 (None for the exact derivative), "
            f"got {bits!r}."
        )
    if int(bits) not in BITS:
        raise ValueError(f"rectax.{api}: bits must be 1, 2, 3 or 4, got {bits!r}.")
    return int(bits)


def step_function(
    table: FewBitTable, bits: int, dtype: np.dtype
) -> tuple[Callable[[Array], Array], Callable[[Array], Array]]:
    """``(index, derivative)`` of a table in ``dtype``: codes of an input, and their levels.

    Borders and levels are rounded once from float64 to ``dtype``: the indices are computed on
    the input as given and the levels applied in its dtype.
    """
    borders = np.asarray(table.borders, np.float64).astype(dtype)
    levels = np.asarray(table.levels, np.float64).astype(dtype)

    def index(x: Array) -> Array:
        if bits == 1:
            return x > borders[0]
        codes = jnp.zeros(x.shape, jnp.uint32)
        for b in borders:
            codes = codes + (x > b).astype(jnp.uint32)
        return codes

    def derivative(codes: Array) -> Array:
        if bits == 1:
            return jnp.where(codes, levels[1], levels[0])
        # A tree of selects on the code's bits (fuses into the backward pass; a gather
        # from the table measured one extra input-sized buffer per layer).
        values: list[Any] = list(levels)
        for bit in range(bits):
            high = (codes >> bit) & 1 == 1
            values = [jnp.where(high, values[i + 1], values[i]) for i in range(0, len(values), 2)]
        return values[0]

    return index, derivative


def output_split(table: FewBitTable) -> int:
    """The index of the first border above the minimum of a function with one minimum (GELU):
    the border after the last interval whose level is not positive (0 if none is)."""
    levels = np.asarray(table.levels)
    falling = np.flatnonzero(levels <= 0)
    return int(falling[-1]) if len(falling) else 0


def output_codes(
    fn: Callable[[Array], Array], table: FewBitTable, dtype: np.dtype
) -> tuple[Callable[[Array], Array], Callable[[Array, Array], Array]]:
    """``(side, codes)``: the codes of a 16-bit ``x`` read off ``y = fn(x)`` and one bit.

    For ``fn`` with one minimum and strictly monotone on each side of it (GELU). ``side(x)`` is
    ``x > b_s``, ``b_s`` the first border above the minimum (:func:`output_split`): on that side
    ``fn`` rises, and ``x > b_k`` for a border ``b_k > b_s`` is ``y > t_k``; below it
    ``x > b_k`` (``b_k < b_s``) is ``y < t_k``. The thresholds ``t_k`` are the largest (smallest)
    ``y`` of the inputs on that side at or below ``b_k``, found over every value of ``dtype``
    (all 2^16, NaN excepted), evaluated by ``fn`` itself on the backend tracing it. The codes
    differ from ``x``'s only where two inputs on either side of a border round to the same
    ``y``: then by one, for inputs within a few units in the last place of the border
    (4 bits, bfloat16: 7 of the 65536 inputs for the tanh GELU, 4 for the exact one;
    ``tests/test_few_bit.py``). A NaN gets code 0,
    as ``x``'s own code.
    """
    dtype = np.dtype(dtype)
    if dtype.itemsize != 2:  # pragma: no cover - only 16-bit inputs take this rule
        raise ValueError(f"rectax: codes are read off the output for 16-bit inputs, not {dtype}.")
    every = np.arange(2**16, dtype=np.uint16).view(dtype)
    with np.errstate(invalid="ignore"):  # ml_dtypes warns casting NaN
        x64 = every.astype(np.float64)
    x = every[~np.isnan(x64)]
    x64 = x64[~np.isnan(x64)]
    with jax.ensure_compile_time_eval():
        y = np.asarray(fn(jnp.asarray(x)), np.float64)
    borders = np.asarray(table.borders, np.float64).astype(dtype)
    split = output_split(table)
    right = x64 > float(borders[split])
    rising, falling = [], []
    for k, b in enumerate(borders.astype(np.float64)):
        if k > split:  # x > b_k  <=>  y > t
            below = y[right & (x64 <= b)]
            rising.append(np.asarray(below.max() if below.size else -np.inf, dtype))
        elif k < split:  # x > b_k  <=>  y < t
            below = y[~right & (x64 <= b)]
            falling.append(np.asarray(below.min() if below.size else np.inf, dtype))
    cut = borders[split]

    def side(x: Array) -> Array:
        return x > cut

    def codes(y: Array, side: Array) -> Array:
        high = jnp.full(y.shape, split + 1, jnp.uint32)
        for t in rising:
            high = high + (y > t).astype(jnp.uint32)
        low = jnp.zeros(y.shape, jnp.uint32)
        for t in falling:
            low = low + (y < t).astype(jnp.uint32)
        return jnp.where(side, high, low)

    return side, codes


class FewBit:
    """An activation whose backward pass uses a few-bit derivative; see :func:`few_bit`.

    Attributes:
      fn: the exact activation (the forward pass).
      bits: code width.
      table: the :class:`FewBitTable` of the derivative.
      unimodal: ``fn`` has one minimum and is strictly monotone on each side of it (GELU): on
        XLA:GPU its 16-bit codes are read off the output (:func:`output_codes`).
    """

    def __init__(
        self,
        fn: Callable[[Array], Array],
        bits: int,
        table: FewBitTable,
        name: str,
        unimodal: bool = False,
    ):
        self.fn = fn
        self.bits = bits
        self.table = table
        self.unimodal = unimodal
        self.__name__ = name
        self.__doc__ = f"{name}: exact forward pass, {bits}-bit derivative (rectax.few_bit)."
        self._compiled: dict[np.dtype, Callable[[Array], Array]] = {}

    def __repr__(self) -> str:
        return f"<rectax {self.__name__}>"

    def _for(self, dtype: np.dtype) -> Callable[[Array], Array]:
        index, derivative = step_function(self.table, self.bits, dtype)
        if self.unimodal and np.dtype(dtype).itemsize == 2:
            reader = functools.partial(output_codes, self.fn, self.table, np.dtype(dtype))
            return coded(self.fn, index, derivative, self.bits, from_output=reader)
        return coded(self.fn, index, derivative, self.bits)

    def __call__(self, x: ArrayLike) -> Array:
        x = jnp.asarray(x)
        if not jnp.issubdtype(x.dtype, jnp.floating):
            raise TypeError(
                f"rectax.{self.__name__}: x must be a real floating array, got dtype {x.dtype}."
            )
        fn = self._compiled.get(x.dtype)
        if fn is None:
            fn = self._compiled[x.dtype] = self._for(x.dtype)
        return fn(x)


_USER_TABLES: dict[tuple[Callable[..., Any], int], FewBitTable] = {}


def few_bit(fn: Callable[[Array], Array], bits: int = 3) -> FewBit:
    r"""Makes a few-bit version of an elementwise activation (Few-Bit Backward).

    The forward pass is ``fn`` itself (bitwise). The backward pass uses a step function ``q``
    with ``2**bits`` levels in place of ``fn'``: the forward pass saves each element's bucket
    index, ``bits`` bits packed into ``uint32`` words (3 bits use 4-bit slots) and tagged
    :data:`rectax.RESIDUAL_NAME`, instead of a copy of the input, and every AD entry point (grad,
    vjp, jvp, jacfwd, jacrev, hessian) sees ``q`` as the derivative (its own derivative is 0).

    Traced for XLA:TPU (:func:`rectax.residual_target`), the result is ``fn`` itself, with its
    own, exact derivative: a TPU matmul fuses the activation into its operand, so jax.nn's step
    keeps only the pre-activation and codes cannot lower the peak there (codes, and a step
    function recomputed from the input, measured above jax.nn's peak:
    ``python -m benchmarks --target tpu-v5e``, ``docs/memory.md``).
    The same holds for the ``bits`` keyword of rectax's activations and gated units. To train
    with ``q`` on a TPU anyway, trace under ``rectax.residual_target("gpu")`` (packed codes;
    ``"cpu"`` for a gated unit, whose gate is exact on GPU too).

    .. math:: \min_q \int_{-100}^{100} \bigl(f'(x) - q(x)\bigr)^2\,dx

    The table is the global optimum of this L2 error (Novikov et al., ICML 2023, arXiv
    2202.00441, with a dynamic program instead of their local search), computed once per
    ``(fn, bits)`` from ``jax.grad(fn)`` in float64 (about a second) and cached; for rectax's
    own activations prefer their ``bits=`` keyword, which uses precomputed tables. Inputs of
    any floating dtype: borders and levels are rounded to it. A NaN input gets ``levels[0]``.

    Args:
      fn: an elementwise function of one array (bind hyperparameters with
        ``functools.partial``).
      bits: 1, 2, 3 or 4.

    Returns:
      The activation, a ``FewBit`` (``.table`` holds its borders and levels).

    Raises:
      TypeError: ``bits`` is not an int (or is traced).
      ValueError: ``bits`` is outside 1..4, or ``fn'`` is not finite on [-100, 100].

    Example:
      >>> import jax, jax.numpy as jnp
      >>> import rectax as rx
      >>> act = rx.few_bit(jax.nn.mish, bits=3)
      >>> x = jnp.array([-3.0, 0.5, 2.0])
      >>> bool(jnp.all(act(x) == jax.nn.mish(x)))
      True
      >>> [round(float(g), 3) for g in jax.grad(lambda x: act(x).sum())(x)]
      [-0.077, 0.844, 1.055]
      >>> [round(float(g), 3) for g in jax.grad(lambda x: jax.nn.mish(x).sum())(x)]
      [-0.093, 0.886, 1.069]

    See also: the ``bits`` keyword of :func:`gelu`, :func:`silu`, :func:`elu`, :func:`celu`,
    :func:`selu`, :func:`softplus`.
    """
    bits = check_bits("few_bit", bits)
    key = (fn, bits)
    if key not in _USER_TABLES:
        _USER_TABLES[key] = optimal_table(numpy_derivative(fn), bits)
    name = getattr(fn, "__name__", type(fn).__name__)
    return FewBit(fn, bits, _USER_TABLES[key], f"few_bit({name}, bits={bits})")


def _static(api: str, arg: str, value: Any) -> Any:
    """A hyperparameter as a hashable constant; a table exists per concrete value only."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, jax.core.Tracer):
        raise TypeError(
            f"rectax.{api}: with bits, {arg} must be a concrete number, got a traced value "
            "(the derivative table depends on it). Pass a Python float, or bits=None."
        )
    v = np.asarray(value)
    if v.ndim != 0 or not np.issubdtype(v.dtype, np.number):
        raise TypeError(
            f"rectax.{api}: with bits, {arg} must be a scalar number, got {value!r} (the "
            "derivative table depends on it). Use bits=None for per-element values."
        )
    return float(v)


_BUILTINS: dict[tuple[Any, ...], FewBit] = {}

_UNIMODAL = (("gelu", (("approximate", True),)), ("gelu", (("approximate", False),)))
"""Built-ins (name, hyperparameters) whose 16-bit codes are read off the output on XLA:GPU
(:func:`output_codes`): the GELU, tanh and exact, at every ``bits``, for float16 and bfloat16
inputs (32- and 64-bit ones keep their codes). Why, with the compiled peaks of both rules and
the commands: ``docs/memory.md``, "Codes read off the output"."""


def builtin(api: str, exact: Callable[..., Array], bits: Any, **params: Any) -> FewBit:
    """The few-bit version of a rectax activation at these hyperparameters (cached).

    Args:
      api: the public name (error messages and the precomputed tables' key).
      exact: the public function; ``exact(x, **params)`` is the forward pass.
      bits: as given by the user (validated here).
      **params: the hyperparameters, which must be concrete.

    Returns:
      The activation, with the precomputed table at the default hyperparameters.
    """
    bits = check_bits(api, bits)
    frozen = tuple(sorted((k, _static(api, k, v)) for k, v in params.items()))
    key = (api, frozen, bits)
    if key not in _BUILTINS:
        forward = functools.partial(exact, **dict(frozen))
        stored = _few_bit_tables.TABLES.get((api, frozen), {}).get(bits)
        if stored is None:
            table = optimal_table(numpy_derivative(forward), bits)
        else:
            table = FewBitTable(*stored)
        args = "".join(f", {k}={v!r}" for k, v in frozen)
        name = f"{api}(bits={bits}{args})"
        _BUILTINS[key] = FewBit(forward, bits, table, name, unimodal=(api, frozen) in _UNIMODAL)
    return _BUILTINS[key]


_GATED: dict[tuple[Any, ...], Callable[[Array, Array], Array]] = {}

_REFERENCES: dict[tuple[Any, ...], Callable[[Array], Array]] = {
    ("silu", ()): jax.nn.silu,
    ("gelu", (("approximate", True),)): functools.partial(jax.nn.gelu, approximate=True),
    ("gelu", (("approximate", False),)): functools.partial(jax.nn.gelu, approximate=False),
}
"""jax.nn's gate activations, keyed as ``_GATED`` without bits: a few-bit gated unit on XLA:GPU
and XLA:TPU is ``reference(gate) * up``, the exact unit's graph there
(:func:`rectax._core._gradients.gated_coded`)."""


def gated_builtin(
    api: str, gate_api: str, exact: Callable[..., Array], bits: Any, dtype: np.dtype, **params: Any
) -> Callable[[Array, Array], Array]:
    """``exact(gate, **params) * up`` with the gate's few-bit derivative (cached per dtype).

    Args:
      api: the gated unit's public name (error messages).
      gate_api: the gate activation's public name (its precomputed table).
      exact: the gate activation's public function.
      bits: as given by the user (validated here).
      dtype: the inputs' dtype.
      **params: the gate's hyperparameters, which must be concrete.

    Returns:
      A function of ``(gate, up)`` whose reverse mode keeps ``exact(gate)``, ``up`` and the
      gate's ``bits``-bit codes (:func:`rectax._core._gradients.gated_coded`); on XLA:GPU and
      XLA:TPU the exact unit.
    """
    bits = check_bits(api, bits)
    frozen = tuple(sorted((k, _static(api, k, v)) for k, v in params.items()))
    key = (gate_api, frozen, bits, np.dtype(dtype))
    if key not in _GATED:
        fb = builtin(gate_api, exact, bits, **dict(frozen))
        index, derivative = step_function(fb.table, bits, np.dtype(dtype))
        _GATED[key] = gated_coded(
            fb.fn, index, derivative, bits, reference=_REFERENCES.get(key[:2])
        )
    return _GATED[key]
