"""The one custom-derivative mechanism behind every rectax activation.

An activation states its derivative rule once, in one of three forms, each a constructor here:

* :func:`from_input`: ``f'(x) = derivative(x, *params)`` (elu, gelu, silu, softplus, ...);
* :func:`two_valued`: ``f'(x) = a if mask(x, *params) else b`` with ``(a, b) = values(*params)``
  (relu, leaky_relu, NecroReLU, relu6, hard_tanh, prelu, rrelu);
* :func:`two_valued_pair`: the same for an output of two halves along an axis, one mask
  serving both (CReLU, ``[relu(x), relu(-x)]``);
* :func:`coded`: ``f'(x) = level(code(x))``, a ``b``-bit step function (few-bit residuals).

Each builds a ``jax.custom_jvp`` function whose tangent rule is ``t_out = f' * t_x`` (plus the
true derivative in the direction of any differentiated hyperparameter), casts real
hyperparameters to the input's floating dtype, and is jit-compiled. Because the rule is linear in
the tangent, JAX transposes it for reverse mode, so one rule serves every entry point:

* ``jax.grad``, ``jax.vjp``, ``jax.jacrev`` (reverse mode: the linearised rule, transposed);
* ``jax.jvp``, ``jax.jacfwd``, ``jax.linearize`` (forward mode: the rule itself);
* ``jax.hessian`` and other higher orders (the rule differentiated again: for a surrogate such as
  NecroReLU the second derivative is that of the surrogate, i.e. zero, never a mix).

``jax.custom_vjp`` would give reverse mode only and break ``jvp``/``jacfwd``; a ``custom_vjp``
backward rule that is linear in the cotangent is exactly the transpose of this JVP rule, so
nothing is lost by stating it in forward form.

Lean residuals. Every function is wrapped in ``jax.checkpoint`` with a policy that saves only
values tagged ``RESIDUAL_NAME`` (plus the function's inputs, if the backward pass needs them).

* :func:`two_valued` packs the mask to 1 bit per element (into ``uint32`` words,
  :mod:`rectax._core._packing`; along the last axis, every other axis indexing rows, so that their
  shardings split no word: :func:`_packed_view`) and tags it (on XLA:GPU: ``uint8`` words under
  a name only rectax's own checkpoint saves, :func:`_mask_words`), so reverse mode keeps 1 bit
  per element instead of an array of the input's dtype; the factor is recomputed from the bits
  and the (small) hyperparameters.
  Convolutional feature maps (rank >= 4) are the exception where the mask can be read off the
  output (relu, NecroReLU, relu6: ``output_mask``): there the output ``y`` is tagged and kept
  instead, because 1-bit masks beside the convolutions' backward pass raised the step's peak
  (see :data:`FEATURE_MAP_RANK`). The tag is the same, so a user's
  ``save_only_these_names(RESIDUAL_NAME)`` policy keeps whichever the activation chose.
* :func:`coded` packs the codes the same way, ``b`` bits per element.
* :func:`from_input` tags nothing: reverse mode keeps the input ``x`` and
  recomputes ``derivative(x)`` inside the backward pass, fused with the cotangent product. Saving
  the derivative instead lets XLA keep extra transients alive (a larger step peak for the exact
  GELU in ``python -m benchmarks --target cpu``).
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.ad_checkpoint import checkpoint_name

from . import _packing
from ._dtypes import at_least_float32

Array = jax.Array

RESIDUAL_NAME = "rectax_residual"
"""Name under which residuals are saved: packed 1-bit masks and few-bit codes, or the output of
relu, necro_relu and relu6 on feature maps (see :data:`FEATURE_MAP_RANK`). Save it in your own
checkpoint policies: ``jax.checkpoint_policies.save_only_these_names(RESIDUAL_NAME)``.

One exception: when compiling for XLA:GPU, the 1-bit masks of 16-bit rank-2 activations (an
MLP's in bfloat16) are saved by rectax's own checkpoint only, under another name, so a policy
saving ``RESIDUAL_NAME`` recomputes those blocks in the backward pass, as it does with jax.nn's
rule. ``docs/memory.md`` (the bfloat16 MLP's masks on the H100) has the measurement behind
this choice."""

_LOCAL_NAME = "rectax_local_residual"
"""Name of residuals that only rectax's own checkpoint saves, never a user's
``save_only_these_names(RESIDUAL_NAME)`` policy: the 1-bit masks on XLA:GPU
(:func:`_mask_words`)."""

_SAVE_BITS = jax.checkpoint_policies.save_only_these_names(RESIDUAL_NAME, _LOCAL_NAME)

FEATURE_MAP_RANK = 4
"""Inputs of this rank or more (``(N, H, W, C)`` feature maps) keep the output, not bits.

Measured on the benchmark zoo (``python -m benchmarks --modes zoo``, XLA:CPU; figures in
``docs/memory.md``): in convolutional networks the step's peak is the convolutions' backward
pass, and 1-bit masks kept beside it raised the peak (also under ``jax.checkpoint`` with a
``RESIDUAL_NAME`` policy) where keeping the output and comparing it lowered it. In dense layers
(MLP, transformer FFN, rank <= 3) the bits lower the peak and the output does not: XLA then also
keeps the pre-activation to recompute the mask.
"""


RESIDUAL_TARGETS = ("cpu", "gpu", "tpu")
"""The compilers rectax chooses residuals for (:func:`residual_target`)."""

_TARGET: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "rectax_residual_target", default=None
)


@contextlib.contextmanager
def residual_target(platform: str | None) -> Iterator[None]:
    """Chooses residuals for ``platform``'s compiler while tracing inside the block.

    rectax picks what reverse mode keeps when a function is traced, for the compiler that will
    compile it: by default ``jax.default_backend()``'s. Set it when that is not where the program
    will run, e.g. when compiling ahead of time for a GPU or TPU from a CPU-only machine
    (``jax.jit(f).lower(...)`` with arguments on a compile-only device):

    >>> import jax, jax.numpy as jnp, rectax as rx
    >>> with rx.residual_target("gpu"):
    ...     lowered = jax.jit(jax.grad(lambda x: rx.relu(x).sum())).lower(jnp.ones(4))

    Args:
      platform: ``"cpu"``, ``"gpu"`` or ``"tpu"``; None restores the default.

    Raises:
      ValueError: for another platform.
    """
    if platform is not None and platform not in RESIDUAL_TARGETS:
        raise ValueError(
            f"rectax.residual_target: platform must be one of {RESIDUAL_TARGETS} or None, "
            f"got {platform!r}."
        )
    token = _TARGET.set(platform)
    try:
        yield
    finally:
        _TARGET.reset(token)


def current_residual_target() -> str:
    """The platform residuals are chosen for now: :func:`residual_target`'s, else the backend's."""
    target = _TARGET.get()
    if target is not None:
        return target
    backend = jax.default_backend()
    return backend if backend in ("cpu", "tpu") else "gpu"


def lean_residuals(target: str, form: str, x: Array) -> bool:
    """Whether an activation of ``x`` keeps rectax's lean residuals when compiled for ``target``.

    ``form`` is the rule's (``"from_input"``, ``"from_output"``, ``"two_valued"``, ``"coded"``,
    or a gated unit's: ``"gated"``, ``"gated_silu"`` (SwiGLU), ``"gated_gelu"``,
    ``"gated_from_output"``, ``"gated_coded"``). Lean residuals are the packed bits (or, on
    feature maps, the output) under ``jax.checkpoint``; otherwise the activation keeps what
    jax.nn's own rule keeps, so the compiler sees jax.nn's graph. Each choice is the one that
    measured lowest with ``python -m benchmarks --target``, ``python -m benchmarks.gated
    --target`` and ``python -m benchmarks.ffn_stacks --target`` (``docs/memory.md`` has the
    figures and the HLO behind them):

    * XLA:CPU: lean everywhere, except float32/float64 SwiGLU (``"gated_silu"``), which takes
      jax.nn's expression: the checkpointed rule's optimisation barrier cost step time
      (``python -m benchmarks.ffn_stacks --time``) and, under remat, memory. GLU keeps its rule
      (its plain graph needed more memory than ``jax.nn.glu``).
    * XLA:GPU and XLA:TPU: jax.nn's residuals, except the 1-bit mask of 16-bit rank-2
      activations on GPU (an MLP's; ``uint8`` words that a ``RESIDUAL_NAME`` policy does not
      save, :func:`_mask_words`) and few-bit codes of single-input activations on GPU (asked
      for).
      The ``jax.checkpoint`` around the rule puts an optimisation barrier between the residual
      and the backward pass: cuDNN can no longer fuse relu into the convolution (it then keeps
      the pre-activation), and XLA:GPU/TPU can no longer recompute the cheap elementwise
      derivative in the backward fusions, which is how they keep one tensor per activation.
    * Few-bit codes on XLA:TPU: none; the exact activation instead, with its exact derivative
      (:func:`coded`'s and :func:`gated_coded`'s fallback: the graph the activation without
      ``bits`` has there). A TPU matmul fuses an elementwise producer into its operand, so
      jax.nn's step keeps only the pre-activation and recomputes the activation for the next
      layer's weight gradient; codes, and every step function recomputed from the input, only
      added to that.
    * Gated units on XLA:GPU and XLA:TPU: the plain expression's graph, few-bit gates included
      (their derivative then exact). On TPU the checkpointed rule, and its jit boundary alone,
      kept more. On GPU the rule (few-bit codes included) was below the plain graph only in
      small steps (2 blocks of 256 rows) and above it in larger ones (4 blocks of 2048 rows;
      the Llama 3 FFN stack at its ``quick`` size), where it materialises ``act(gate)`` beside
      the matmul outputs XLA keeps anyway. SwiGLU's and GeGLU's plain graph is jax.nn's
      expression itself (:func:`gated`'s ``reference``): a rule with rectax's float32-widened
      derivative, or rectax's tail-safe GELU forward, measured above it.
    """
    if target == "cpu":
        return form != "gated_silu" or x.dtype.itemsize == 2
    if form in ("gated", "gated_silu", "gated_gelu", "gated_from_output", "gated_coded"):
        return False
    if form == "coded":
        return target != "tpu"
    if form == "coded_output":
        return target == "gpu" and x.dtype.itemsize != 2
    return target == "gpu" and form == "two_valued" and x.ndim <= 2 and x.dtype.itemsize == 2


def _mask_words(target: str) -> tuple[int | None, str]:
    """The word width and the checkpoint name of :func:`two_valued`'s packed mask on ``target``.

    XLA:CPU: :func:`rectax._core._packing.word_bits`'s words (XLA:CPU widens ``uint8``
    reduction outputs), tagged :data:`RESIDUAL_NAME`. XLA:GPU, where only 16-bit rank-2
    activations keep a mask (:func:`lean_residuals`): ``uint8`` words, tagged
    :data:`_LOCAL_NAME`, so a ``save_only_these_names(RESIDUAL_NAME)`` policy recomputes the
    block as it does with jax.nn's rule. With ``uint32`` words, and the mask tagged, the zoo's
    bfloat16 MLP at its small sizes measured above jax.nn's peak, with no remat and under that
    policy (``python -m benchmarks --target h100 --target-sizes small --zoo mlp``,
    ``docs/memory.md``).
    """
    if target == "gpu":
        return 8, _LOCAL_NAME
    return None, RESIDUAL_NAME


def _keeps_output(x: Array) -> bool:
    return x.ndim >= FEATURE_MAP_RANK


def _is_zero(t: Any) -> bool:
    return isinstance(t, jax.custom_derivatives.SymbolicZero)


def _packed_view(shape: Sequence[int], bits: int = 1) -> tuple[int, ...]:
    """The shape ``bits``-bit codes are packed in: along its last axis, one row per index of the
    others.

    Its own shape, except on feature maps (rank 4 or more) whose channels do not fill whole
    words: there the last two axes (width and channels) are merged, so that a row of 3 channels
    does not take a byte. Rows are never merged otherwise: a sharding of the batch, a sequence or
    an image's height then splits no word, and XLA moves no codes between devices
    (collective-permutes and all-gathers that jax.nn's rules do not need;
    ``tests/test_sharding.py``). A row whose codes fit in 8 or 16 bits takes one ``uint8`` or
    ``uint16`` word (:func:`rectax._core._packing.word_bits`).

    The last axis itself may be sharded (a Megatron-style hidden layer, a 1-D array), and under
    ``Auto`` mesh axes its sharding is not known when the rule is traced. In a process of ``D``
    devices (or under a larger mesh set with ``jax.set_mesh``) a mesh splits it evenly into
    ``k`` shards, ``k`` dividing both ``D`` and its length ``n``; where the finest such split
    whose shards still hold a word each (``n / k >= 32 / slot``) would cut a word, the row is
    packed as ``k`` blocks of ``n / k`` codes, each padded to whole words, so that every coarser
    split of it cuts no word either. Shards shorter than a word still share words. With one
    device nothing changes; the blocks cost at most ``k - 1`` words per row (none for
    ``(..., 1000)`` at 1 bit on 4 devices; ``(..., 96)``: 4 words for 3).
    """
    shape = tuple(shape)
    per_word = _packing.WORD_BITS // _packing.slot_bits(bits)
    if len(shape) >= FEATURE_MAP_RANK and shape[-1] % per_word:
        shape = (*shape[:-2], shape[-2] * shape[-1])
    if not shape:
        return shape
    n = shape[-1]
    common = math.gcd(n, _devices())
    # the most even shards of at least a word each: cut there, so that no word spans two shards
    blocks = max(
        (k for k in range(1, common + 1) if common % k == 0 and n // k >= per_word), default=1
    )
    if blocks == 1 or (n // blocks) % per_word == 0:
        return shape
    return (*shape[:-1], blocks, n // blocks)


def _devices() -> int:
    """How many devices a sharding of an activation may split its last axis over: the process's,
    or the mesh's set with ``jax.set_mesh`` if larger (compile-only devices)."""
    mesh = jax.sharding.get_abstract_mesh()
    return max(jax.device_count(), 1 if mesh.empty else mesh.size)


def pack_mask(mask: Array, bits: int = 1, width: int | None = None) -> Array:
    """Packs a boolean mask (or ``bits``-bit codes) into unsigned words (:func:`_packed_view`),
    of ``width`` bits if given (:func:`rectax._core._packing.pack`)."""
    return _packing.pack(mask.reshape(_packed_view(mask.shape, bits)), bits, width)


def unpack_mask(words: Array, shape: Sequence[int], bits: int = 1) -> Array:
    """Inverse of :func:`pack_mask`: a boolean mask, or ``uint32`` codes for ``bits > 1``."""
    codes = _packing.unpack(words, bits, _packed_view(shape, bits)).reshape(tuple(shape))
    return codes.astype(bool) if bits == 1 else codes


def _real(p: Any) -> bool:
    dtype = jnp.result_type(p)
    return bool(jnp.issubdtype(dtype, jnp.floating) or jnp.issubdtype(dtype, jnp.integer))


def _narrow(x: Array, params: Sequence[Any]) -> list[Any]:
    """Real hyperparameters in ``x``'s floating dtype, as the forward pass and the factor use them.

    Integer inputs (relu, hard_tanh, ...) and non-numeric parameters (keys) are left alone.
    """
    if not jnp.issubdtype(x.dtype, jnp.floating):
        return list(params)
    return [lax.convert_element_type(p, x.dtype) if _real(p) else p for p in params]


def _param_tangent(
    forward: Callable[..., Array],
    x: Array,
    params: Sequence[Any],
    tangents: Sequence[Any],
) -> Array | None:
    """JVP of ``forward`` in the direction of the hyperparameters that carry a tangent.

    Evaluated in float32 or wider (:func:`at_least_float32`) and rounded once to
    ``x``'s dtype. Reverse mode transposes it, so a hyperparameter's cotangent (the sum over the
    axes it was broadcast along: ``min(x, 0)`` summed over a whole feature map for a PReLU
    slope) is accumulated in float32 or wider, then converted to the hyperparameter's own dtype
    (:func:`_cast_params`). Accumulated in bfloat16, 2^20 terms of -0.3 sum to -256; in float16
    they overflow to -inf.
    """
    live = [i for i, t in enumerate(tangents) if not _is_zero(t)]
    if not live:
        return None
    floating = jnp.issubdtype(x.dtype, jnp.floating)
    wide = at_least_float32(x.dtype) if floating else x.dtype

    def widen(v: Any) -> Any:
        return lax.convert_element_type(v, wide) if floating and _real(v) else v

    x_wide = widen(x)

    def partial(*live_params: Any) -> Array:
        full = [widen(p) for p in params]
        for i, p in zip(live, live_params, strict=True):
            full[i] = p
        return forward(x_wide, *full)

    _, t = jax.jvp(partial, [widen(params[i]) for i in live], [widen(tangents[i]) for i in live])
    return lax.convert_element_type(t, x.dtype)


def _cast_params(x: Array, params: Sequence[Any]) -> list[Any]:
    """Hyperparameters as the custom-derivative function receives them.

    A floating hyperparameter keeps its own dtype (a float32 slope stays float32 beside a
    bfloat16 ``x``), so its cotangent, accumulated by :func:`_param_tangent` in float32 or wider,
    is rounded once, to that dtype. Weakly typed ones (Python floats, and a float passed to
    ``jax.grad``) become float32 or ``x``'s wider dtype; integers become ``x``'s dtype. The
    forward pass and the factor see them all in ``x``'s dtype (:func:`_narrow`): a float32 slope
    never promotes bfloat16. Integer inputs and non-numeric parameters (keys) are left alone.
    """
    if not jnp.issubdtype(x.dtype, jnp.floating):
        return list(params)
    out = []
    for p in params:
        if not _real(p):
            out.append(p)
            continue
        dtype = jnp.result_type(p)
        if not jnp.issubdtype(dtype, jnp.floating):
            dtype = x.dtype
        elif getattr(p, "weak_type", False) or not isinstance(
            p, jax.Array | np.ndarray | np.generic
        ):
            dtype = at_least_float32(x.dtype)
        out.append(lax.convert_element_type(p, dtype))
    return out


def _build(
    forward: Callable[..., Array],
    tangent_factor: Callable[[Array, Array, Sequence[Any], str], tuple[Array, Array]],
    form: str,
    plain: Callable[[Array, Array, Sequence[Any], Array], Array] | None = None,
    *,
    jit: bool = True,
    combine: Callable[[Array, Array], Array] | None = None,
    exact: Callable[..., Array] | None = None,
) -> Callable[..., Array]:
    """The one construction: ``custom_jvp`` with ``t_out = factor * t_x``, checkpointed, jitted.

    ``jit=False`` leaves out the outer ``jax.jit`` (kept for rectax's own activations: an eager
    call then dispatches one compiled kernel, several times faster on small inputs). A
    user's :func:`rectax.surrogate` may close over traced values (a slope computed inside the
    caller's ``jit``); a ``jax.jit`` around the custom-JVP function turns them into constants of
    its own trace ("No constant handler for type: DynamicJaxprTracer"), so it is built without.

    ``combine(t_x, factor) -> t_out``, if given, replaces the product ``t_x * factor`` for an
    output whose shape differs from ``x``'s (:func:`two_valued_pair`, where ``factor`` is the
    mask). It must be linear in ``t_x``; reverse mode transposes it.

    ``tangent_factor(x, y, params, target) -> (y, factor)`` computes the derivative factor
    inside the rule traced for ``target`` (the :func:`residual_target` the lean variant is
    built for), choosing what reverse mode keeps by tagging it ``RESIDUAL_NAME`` (which
    :data:`_SAVE_BITS` saves). It returns ``y`` too, tagged when the output itself is the
    residual: the rule must return that very value, or an outer ``save_only_these_names``
    policy keeps a second copy (the ResNet blocks of ``python -m benchmarks --modes zoo``).

    ``plain(x, y, params, t_x) -> factor * t_x`` is the same derivative written as jax.nn writes
    its own rule (no checkpoint, nothing packed): where :func:`lean_residuals` says no for the
    :func:`residual_target` being traced for, the activation uses it, so XLA:GPU and XLA:TPU
    see the graph they already fuse well.

    ``exact(x, *params)``, if given, is called instead of ``plain`` where :func:`lean_residuals`
    says no: another activation, with its own derivative (:func:`coded`'s exact activation).
    It is called as it is, not inside this function's ``jax.jit``, so the compiler sees that
    activation's own graph.
    """

    Tangent = Callable[[Array, Array, Sequence[Any], Array], tuple[Array, Array]]

    def make_rule(tangent: Tangent, with_params: Tangent | None = None) -> Callable[..., Any]:
        """The JVP rule; ``with_params`` (if given) replaces ``tangent`` when a hyperparameter
        is differentiated too: that derivative keeps ``x`` itself (PReLU's ``min(x, 0)``), so
        the mask is read off ``x`` rather than also kept as bits."""

        def rule(primals: tuple[Any, ...], tangents: tuple[Any, ...]) -> tuple[Array, Array]:
            x, *params = primals
            t_x, *t_params = tangents
            narrow = _narrow(x, params)
            y = forward(x, *narrow)
            t_out = _param_tangent(forward, x, params, t_params)
            if not _is_zero(t_x):
                use = tangent if t_out is None or with_params is None else with_params
                y, t_dx = use(x, y, narrow, t_x)
                t_out = t_dx if t_out is None else t_out + t_dx
            if t_out is None:  # pragma: no cover - custom_jvp never calls a rule with zero tangents
                t_out = jnp.zeros_like(y)
            return y, t_out

        return rule

    def lean_rule(target: str) -> Tangent:
        """The lean tangent: ``tangent_factor`` for ``target``."""

        def lean(x: Array, y: Array, params: Sequence[Any], t_x: Array) -> tuple[Array, Array]:
            y, d = tangent_factor(x, y, params, target)
            if combine is not None:
                return y, combine(t_x, d)
            return y, t_x * lax.convert_element_type(d, t_x.dtype)

        return lean

    def primal(x: Array, *params: Any) -> Array:
        return forward(x, *_narrow(x, params))

    fn_plain: Callable[..., Array] | None = None
    unpacked: Tangent | None = None
    if plain is not None:
        as_plain = plain

        def unpacked(x: Array, y: Array, params: Sequence[Any], t_x: Array) -> tuple[Array, Array]:
            return y, as_plain(x, y, params, t_x)

        fn_plain = jax.custom_jvp(primal)
        fn_plain.defjvp(make_rule(unpacked), symbolic_zeros=True)

    def variant(target: str) -> Callable[..., Array]:
        # one custom-JVP function per target: JAX caches the rule's trace with the function
        fn = jax.custom_jvp(primal)
        fn.defjvp(make_rule(lean_rule(target), unpacked), symbolic_zeros=True)
        saved = jax.checkpoint(fn, policy=_SAVE_BITS)

        def activation(x: Array, *params: Any) -> Array:
            cast = _cast_params(x, params)
            if fn_plain is not None and not lean_residuals(target, form, x):
                return fn_plain(x, *cast)
            return saved(x, *cast)

        return jax.jit(activation) if jit else activation

    variants: dict[str, Callable[..., Array]] = {}

    def activation(x: Array, *params: Any) -> Array:
        target = current_residual_target()
        if exact is not None and not lean_residuals(target, form, x):
            return exact(x, *params)
        if target not in variants:
            variants[target] = variant(target)
        return variants[target](x, *params)

    return activation


def from_input(
    forward: Callable[..., Array], derivative: Callable[..., Array], *, jit: bool = True
) -> Callable[..., Array]:
    """``f(x, *params)`` whose derivative in ``x`` is ``derivative(x, *params)``.

    Reverse mode keeps the input ``x`` and recomputes the derivative in the backward pass, fused
    with the cotangent product (gelu, silu, elu, ...).

    Args:
      forward: ``forward(x, *params) -> y``, elementwise in ``x``.
      derivative: ``derivative(x, *params) -> dy/dx``; may be a surrogate (any elementwise
        factor), not necessarily the true derivative.
      jit: whether to wrap the result in ``jax.jit`` (:func:`_build`).

    Returns:
      A jitted function of ``(x, *params)``. Real hyperparameters are cast to ``x``'s floating
      dtype. Its derivative in ``x`` is ``derivative``; in each hyperparameter the true one
      (autodiff of ``forward``). Tangents and cotangents have their primal's dtype.
    """

    def plain(x: Array, y: Array, params: Sequence[Any], t_x: Array) -> Array:
        return t_x * lax.convert_element_type(derivative(x, *params), t_x.dtype)

    def factor(x: Array, y: Array, params: Sequence[Any], target: str) -> tuple[Array, Array]:
        del target
        return y, derivative(x, *params)

    return _build(forward, factor, "from_input", plain, jit=jit)


def _scaled(t: Array, value: Any) -> Array:
    """``t * value``, with no multiply for the constants 1 and 0 (jax.nn's graph, exactly)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        if value == 1:
            return t
        if value == 0:
            return lax.full_like(t, 0)
    return jnp.broadcast_to(t * value, t.shape)


def two_valued(
    forward: Callable[..., Array],
    mask: Callable[..., Array],
    values: Callable[..., tuple[Any, Any]],
    *,
    output_mask: Callable[..., Array] | None = None,
    jit: bool = True,
) -> Callable[..., Array]:
    """``f(x, *params)`` whose derivative in ``x`` takes one of two values.

    ``f'(x) = a if mask(x, *params) else b`` with ``(a, b) = values(*params)``. Reverse mode keeps
    only the mask, packed to 1 bit per element (:func:`pack_mask`), and the (small)
    hyperparameters.

    Args:
      forward: ``forward(x, *params) -> y``, elementwise in ``x``.
      mask: ``mask(x, *params) -> bool``.
      values: ``values(*params) -> (a, b)``, the factor where the mask is True and where it is
        False (scalars, or arrays broadcastable to ``x``: PReLU's per-channel slopes, RReLU's
        sampled ones).
      output_mask: optional ``output_mask(y, *params) -> bool`` equal to ``mask(x, *params)``
        for ``y = forward(x, *params)`` (relu: ``y > 0``). If given, inputs of rank
        :data:`FEATURE_MAP_RANK` or more keep the output ``y`` (tagged ``RESIDUAL_NAME``)
        instead of the bits, and the mask is recomputed from it.
      jit: whether to wrap the result in ``jax.jit`` (:func:`_build`).

    Returns:
      A jitted function of ``(x, *params)``, as :func:`from_input`'s.
    """

    def factor(x: Array, y: Array, params: Sequence[Any], target: str) -> tuple[Array, Array]:
        if output_mask is not None and _keeps_output(x):
            y = checkpoint_name(y, RESIDUAL_NAME)
            m = output_mask(y, *params)
        else:
            width, name = _mask_words(target)
            words = checkpoint_name(pack_mask(mask(x, *params), width=width), name)
            m = unpack_mask(words, x.shape)
        where_true, where_false = values(*params)
        return y, jnp.where(m, where_true, where_false)

    def plain(x: Array, y: Array, params: Sequence[Any], t_x: Array) -> Array:
        """As jax.nn.relu's rule, ``select(x > 0, t, 0)``: the mask is what is kept."""
        where_true, where_false = values(*params)
        m = mask(x, *params)
        return lax.select(m, _scaled(t_x, where_true), _scaled(t_x, where_false))

    return _build(forward, factor, "two_valued", plain, jit=jit)


def two_valued_pair(
    forward: Callable[[Array], Array],
    mask: Callable[[Array], Array],
    values: tuple[tuple[Any, Any], tuple[Any, Any]],
    axis: int,
    *,
    output_mask: Callable[[Array], Array] | None = None,
) -> Callable[[Array], Array]:
    """``f(x) = concatenate([f_1(x), f_2(x)], axis)`` whose halves' derivatives take two values.

    ``f_k'(x) = a_k if mask(x) else b_k`` with ``((a_1, b_1), (a_2, b_2)) = values``: one mask
    decides both halves (CReLU: ``[relu(x), relu(-x)]``, ``mask = x > 0``, values
    ``((1, 0), (0, -1))``), so reverse mode keeps 1 bit per *input* element, half a bit per
    output element; the input's cotangent is ``f_1' g_1 + f_2' g_2``.

    Args:
      forward: ``forward(x) -> y``, the two halves concatenated along ``axis``.
      mask: ``mask(x) -> bool``, of ``x``'s shape.
      values: the two halves' ``(where True, where False)`` factors (Python scalars).
        The tangent is selected, never multiplied by a float factor.
      axis: the axis the halves are concatenated along (static).
      output_mask: optional ``output_mask(y) -> bool`` equal to ``mask(x)``; if given, inputs
        of rank :data:`FEATURE_MAP_RANK` or more keep ``y`` instead of the bits, as
        :func:`two_valued`.

    Returns:
      A jitted function of ``x``.
    """

    def factor(x: Array, y: Array, params: Sequence[Any], target: str) -> tuple[Array, Array]:
        del params, target
        if output_mask is not None and _keeps_output(x):
            y = checkpoint_name(y, RESIDUAL_NAME)
            return y, output_mask(y)
        words = checkpoint_name(pack_mask(mask(x)), RESIDUAL_NAME)
        return y, unpack_mask(words, x.shape)

    def combine(t: Array, m: Array) -> Array:
        # selects, not multiplies: ``concatenate([t, t]) * factor`` made XLA keep the 2x-wide
        # output for the next layer (jax.grad of an 8-layer MLP of width 512: 8.50 MiB of
        # temporaries instead of 1.61 MiB; benchmarks/crelu_memory.py)
        halves = [jnp.where(m, _scaled(t, a), _scaled(t, b)) for a, b in values]
        return jnp.concatenate(halves, axis)

    return _build(forward, factor, "two_valued_pair", combine=combine)


def coded(
    forward: Callable[[Array], Array],
    code: Callable[[Array], Array],
    level: Callable[[Array], Array],
    bits: int,
    from_output: Callable[[], OutputCodes] | None = None,
) -> Callable[[Array], Array]:
    """``f(x)`` whose derivative is ``level(code(x))``: a ``bits``-bit step function.

    Reverse mode keeps only the codes, packed to ``bits`` bits per element
    (:func:`rectax._core._packing.slot_bits`): Few-Bit Backward's residual. Where
    :func:`lean_residuals` says no (XLA:TPU, where codes cannot lower the peak), the function is
    ``forward`` itself, with ``forward``'s own, exact derivative: no step function.

    With ``from_output``, on XLA:GPU for 16-bit inputs (``"coded_output"`` in
    :func:`lean_residuals`) the codes are read off the output instead: a ``custom_jvp`` without
    checkpoint whose rule is ``t_x * level(codes(y, side))``, ``side`` a 1-bit mask packed as the
    codes are. The next matmul keeps ``y`` for its weight gradient anyway, so reverse mode adds
    only the 1-bit words to it (:func:`rectax._core._few_bit.output_codes`).

    Args:
      forward: ``forward(x) -> y``, differentiable (a rectax activation uses its own rule).
      code: ``code(x)``: unsigned codes below ``2**bits`` (a boolean for ``bits == 1``).
      level: ``level(codes) -> dy/dx`` for the unpacked codes (``uint32``, or bool for 1 bit).
      bits: 1 to 8.
      from_output: ``from_output() -> (side, codes)``, called once, when first traced for a
        GPU: ``side(x)`` a boolean, ``codes(y, side)`` the codes of ``x`` from ``y = forward(x)``
        and that boolean (for 16-bit ``x``).

    Returns:
      A jitted function of ``x``.
    """

    def factor(x: Array, y: Array, params: Sequence[Any], target: str) -> tuple[Array, Array]:
        del params, target
        words = checkpoint_name(pack_mask(code(x), bits), RESIDUAL_NAME)
        return y, level(unpack_mask(words, x.shape, bits))

    if from_output is None:
        return _build(forward, factor, "coded", exact=forward)
    read_off = _read_off_output(forward, level, from_output)

    def fallback(x: Array) -> Array:
        return forward(x) if current_residual_target() == "tpu" else read_off(x)

    return _build(forward, factor, "coded_output", exact=fallback)


OutputCodes = tuple[Callable[[Array], Array], Callable[[Array, Array], Array]]


def _read_off_output(
    forward: Callable[[Array], Array],
    level: Callable[[Array], Array],
    from_output: Callable[[], OutputCodes],
) -> Callable[[Array], Array]:
    """:func:`coded`'s GPU rule for 16-bit inputs: the codes read off ``y`` and a 1-bit side.

    No checkpoint and no names: XLA:GPU keeps ``y`` (which the next matmul keeps anyway) and the
    packed side bits, and recomputes ``level(codes(y, side))`` in the backward fusion; under
    ``jax.checkpoint`` the block is recomputed as it is with jax.nn's rule. Packing matters: an
    unpacked boolean side was kept as a byte per element.
    """
    parts: list[OutputCodes] = []

    def rule(primals: tuple[Any, ...], tangents: tuple[Any, ...]) -> tuple[Array, Array]:
        (x,), (t_x,) = primals, tangents
        if not parts:
            parts.append(from_output())
        side, codes = parts[0]
        y = forward(x)
        words = pack_mask(side(x))
        d = level(codes(y, unpack_mask(words, x.shape)))
        return y, t_x * lax.convert_element_type(d, t_x.dtype)

    fn = jax.custom_jvp(forward)
    fn.defjvp(rule)
    return jax.jit(fn)


# --------------------------------------------------------------------------- gated units
def _gated_jvp(
    forward: Callable[[Array], Array],
    parts: Callable[[Array, Array], tuple[Array, Array, Array]],
) -> Callable[[Array, Array], Array]:
    """``forward(gate) * up`` as a ``custom_jvp`` whose rule is ``parts(gate, up) -> (y, d_gate,
    d_up)``: ``t = d_gate * t_gate + d_up * t_up``."""

    @jax.custom_jvp
    def fn(gate: Array, up: Array) -> Array:
        return forward(gate) * up

    def rule(primals: tuple[Any, ...], tangents: tuple[Any, ...]) -> tuple[Array, Array]:
        gate, up = primals
        t_gate, t_up = tangents
        y, d_gate, d_up = parts(gate, up)
        t_out = None
        if not _is_zero(t_gate):
            t_out = t_gate * lax.convert_element_type(d_gate, t_gate.dtype)
        if not _is_zero(t_up):
            t_dup = t_up * lax.convert_element_type(d_up, t_up.dtype)
            t_out = t_dup if t_out is None else t_out + t_dup
        if t_out is None:  # pragma: no cover - custom_jvp never calls it with zero tangents
            t_out = jnp.zeros_like(y)
        return y, t_out

    fn.defjvp(rule, symbolic_zeros=True)
    return fn


def _gated_build(
    forward: Callable[[Array], Array],
    factors: Callable[[Array, Array], tuple[Array, Array, Array]],
    plain: Callable[[Array, Array], Array],
    form: str,
) -> Callable[[Array, Array], Array]:
    """``f(gate, up) = forward(gate) * up`` with ``t = d_gate * t_gate + d_up * t_up``.

    ``factors(gate, up) -> (y, d_gate, d_up)`` computes the output and both partial derivatives
    inside the rule, choosing what reverse mode keeps by tagging it ``RESIDUAL_NAME``, as
    :func:`_build`'s ``tangent_factor``; checkpointed with :data:`_SAVE_BITS`. ``plain`` is the
    unit with nothing tagged or packed and no checkpoint (the plain expression's graph, or
    jax.nn's expression itself), used where :func:`lean_residuals` says no for ``form`` and the
    target traced for. Jitted per target, as :func:`_build`'s variants.
    """
    lean_unit = jax.jit(jax.checkpoint(_gated_jvp(forward, factors), policy=_SAVE_BITS))
    # plain is not jitted: a jit boundary kept one more (rows, model) buffer

    def variant(target: str) -> Callable[[Array, Array], Array]:
        def unit(gate: Array, up: Array) -> Array:
            if lean_residuals(target, form, gate):
                return lean_unit(gate, up)
            return plain(gate, up)

        return unit

    variants: dict[str, Callable[[Array, Array], Array]] = {}

    def unit(gate: Array, up: Array) -> Array:
        target = current_residual_target()
        if target not in variants:
            variants[target] = variant(target)
        return variants[target](gate, up)

    return unit


def gated(
    forward: Callable[[Array], Array],
    derivative: Callable[[Array], Array],
    *,
    reference: Callable[[Array], Array] | None = None,
    form: str = "gated",
    tag_16bit: bool = True,
) -> Callable[[Array, Array], Array]:
    """``f(gate, up) = forward(gate) * up`` (GLU, SwiGLU, GeGLU) with ``forward' = derivative``.

    Reverse mode keeps the two inputs and recomputes ``forward(gate)`` and ``derivative(gate)``
    in the backward pass, fused with the cotangent products: what XLA keeps for the plain
    expression ``forward(gate) * up`` (both matmul outputs), so it costs no more memory. The
    product is tagged ``RESIDUAL_NAME``: a ``save_only_these_names(RESIDUAL_NAME)`` policy keeps
    it (the next layer's input) instead of recomputing it.

    Args:
      forward: the gate's activation, elementwise.
      derivative: its derivative, elementwise.
      reference: optional jax.nn's gate activation (``jax.nn.silu``): where
        :func:`lean_residuals` says no, the unit is then ``reference(gate) * up`` under JAX's own
        autodiff, the plain expression's graph itself, with its values (as accurate as jax.nn's
        in the input's dtype). Without it, the rule above with nothing tagged.
      form: :func:`lean_residuals`'s form: ``"gated"``, ``"gated_silu"`` or ``"gated_gelu"``.
      tag_16bit: whether the product is tagged for 16-bit inputs too (False: float32 and
        float64 only). GLU's is not: on XLA:CPU a ``RESIDUAL_NAME`` policy then kept the
        bfloat16 product beside the recomputed inputs, above ``jax.nn.glu``'s peak in a
        residual stack (``docs/memory.md``, "Gated units on XLA:CPU in a residual stack").

    Returns:
      A jitted function of ``(gate, up)`` (same shape and dtype).
    """

    def factors(gate: Array, up: Array) -> tuple[Array, Array, Array]:
        a = forward(gate)
        y = a * up
        if tag_16bit or gate.dtype.itemsize != 2:
            y = checkpoint_name(y, RESIDUAL_NAME)
        return y, derivative(gate) * up, a

    def parts(gate: Array, up: Array) -> tuple[Array, Array, Array]:
        a = forward(gate)
        return a * up, derivative(gate) * up, a

    if reference is None:
        plain = _gated_jvp(forward, parts)
    else:

        def plain(gate: Array, up: Array) -> Array:
            return reference(gate) * up

    return _gated_build(forward, factors, plain, form)


def gated_from_output(
    forward: Callable[[Array], Array], mask_of_output: Callable[[Array], Array]
) -> Callable[[Array, Array], Array]:
    """``f(gate, up) = forward(gate) * up`` for a rectifier gate (ReGLU): ``forward' = mask``.

    The gate's derivative is 1 where ``mask_of_output(forward(gate))`` holds and 0 elsewhere, so
    reverse mode keeps ``a = forward(gate)`` (tagged ``RESIDUAL_NAME``) and ``up``, never
    ``gate``: the same two arrays the plain expression keeps.

    Args:
      forward: the gate's activation (relu).
      mask_of_output: ``mask_of_output(a)``: where the gate's derivative is 1.

    Returns:
      A jitted function of ``(gate, up)``.
    """

    def factors(gate: Array, up: Array) -> tuple[Array, Array, Array]:
        a = checkpoint_name(forward(gate), RESIDUAL_NAME)
        return a * up, jnp.where(mask_of_output(a), up, jnp.zeros_like(up)), a

    def parts(gate: Array, up: Array) -> tuple[Array, Array, Array]:
        a = forward(gate)
        return a * up, jnp.where(mask_of_output(a), up, jnp.zeros_like(up)), a

    return _gated_build(forward, factors, _gated_jvp(forward, parts), "gated_from_output")


def gated_coded(
    forward: Callable[[Array], Array],
    code: Callable[[Array], Array],
    level: Callable[[Array], Array],
    bits: int,
    *,
    reference: Callable[[Array], Array] | None = None,
) -> Callable[[Array, Array], Array]:
    """``f(gate, up) = forward(gate) * up`` whose gate derivative is ``level(code(gate))``.

    Reverse mode keeps the gate's codes (``bits`` bits per element, tagged ``RESIDUAL_NAME``)
    and ``up``, and in 16-bit ``a = forward(gate)`` (tagged too), never ``gate``, whose matmul's
    backward needs only the cotangent. In float32/float64 it keeps ``gate`` instead of ``a``
    and recomputes ``a``: on XLA:CPU tagging ``a`` kept it beside the recomputed block's own
    buffers under plain ``jax.checkpoint``, above the plain expression's peak, while in
    bfloat16 untagging it measured higher (``docs/memory.md``, "Gated units on XLA:CPU in a
    residual stack"). Few-Bit Backward (:func:`coded`) for the gate of a gated unit. Where
    :func:`lean_residuals` says no (XLA:GPU and XLA:TPU), the unit is the plain expression
    ``reference(gate) * up`` (else ``forward(gate) * up``) under JAX's autodiff: the exact
    derivative, no step function, as :func:`coded` there.

    Args:
      forward: the gate's activation, differentiable (a rectax activation uses its own rule).
      code: ``code(gate)``: unsigned codes below ``2**bits`` (bool for 1 bit).
      level: ``level(codes) -> forward'`` for the unpacked codes.
      bits: 1 to 8.
      reference: optional jax.nn's gate activation (``jax.nn.silu``): the plain expression's
        (what :func:`gated`'s ``reference`` runs there, so the unit with and without ``bits``
        is the same graph on that target).

    Returns:
      A jitted function of ``(gate, up)``.
    """

    def factors(gate: Array, up: Array) -> tuple[Array, Array, Array]:
        a = forward(gate)
        if gate.dtype.itemsize == 2:  # float32/float64: gate kept, a recomputed (docstring)
            a = checkpoint_name(a, RESIDUAL_NAME)
        words = checkpoint_name(pack_mask(code(gate), bits), RESIDUAL_NAME)
        d = level(unpack_mask(words, gate.shape, bits))
        return a * up, lax.convert_element_type(d, up.dtype) * up, a

    plain_forward = forward if reference is None else reference

    def plain(gate: Array, up: Array) -> Array:
        return plain_forward(gate) * up

    return _gated_build(forward, factors, plain, "gated_coded")


def from_output(
    forward: Callable[..., Array], derivative_of_output: Callable[..., Array]
) -> Callable[..., Array]:
    """``f(x, *params)`` whose derivative is a function of its output: ``derivative_of_output(y)``.

    Reverse mode keeps only the output ``y`` (tagged ``RESIDUAL_NAME``), never ``x``: the layer
    after the activation keeps ``y`` anyway (its matmul's input), so the activation adds nothing
    to the step's residuals. Squared ReLU is this form, ``f'(x) = 2 sqrt(y)``.

    Args:
      forward: ``forward(x, *params) -> y``, elementwise in ``x``.
      derivative_of_output: ``derivative_of_output(y, *params) -> dy/dx``.

    Returns:
      A jitted function of ``(x, *params)``, as :func:`from_input`'s.
    """

    def factor(x: Array, y: Array, params: Sequence[Any], target: str) -> tuple[Array, Array]:
        del x, target
        y = checkpoint_name(y, RESIDUAL_NAME)
        return y, derivative_of_output(y, *params)

    return _build(forward, factor, "from_output")
