"""The one custom-derivative mechanism behind every rectax activation.

An activation states its derivative rule once, as an elementwise factor ``d(x, *params)`` with
``f'(x) = d``. :func:`elementwise` turns ``(forward, derivative)`` into a ``jax.custom_jvp``
function whose tangent rule is ``t_out = d * t_x`` (plus the true derivative in the direction of
any differentiated hyperparameter). Because the rule is linear in the tangent, JAX transposes it
for reverse mode, so one rule serves every entry point:

* ``jax.grad``, ``jax.vjp``, ``jax.jacrev`` (reverse mode: the linearised rule, transposed);
* ``jax.jvp``, ``jax.jacfwd``, ``jax.linearize`` (forward mode: the rule itself);
* ``jax.hessian`` and other higher orders (the rule differentiated again: for a surrogate such as
  NecroReLU the second derivative is that of the surrogate, i.e. zero, never a mix).

``jax.custom_vjp`` would give reverse mode only and break ``jvp``/``jacfwd``; a ``custom_vjp``
backward rule that is linear in the cotangent is exactly the transpose of this JVP rule, so
nothing is lost by stating it in forward form.

Lean residuals. Every function is wrapped in ``jax.checkpoint`` with a policy that saves only
values tagged ``RESIDUAL_NAME`` (plus the function's inputs, if the backward pass needs them).

* When the derivative takes one of two values (relu, leaky_relu, NecroReLU, relu6, hard_tanh,
  prelu, rrelu), the rule is given as ``derivative(mask, *params)`` of a boolean
  ``mask(x, *params)``. The mask is packed to 1 bit per element (into ``uint32`` words,
  :mod:`rectax._packing`; along the last axis, or the merged trailing axes when the last one does
  not fill whole words) and tagged, so reverse mode keeps 1 bit per element
  instead of an array of the input's dtype; the factor is recomputed from the bits and the
  (small) hyperparameters.
  Convolutional feature maps (rank >= 4) are the exception where the mask can be read off the
  output (relu, NecroReLU, relu6: ``output_mask``): there the output ``y`` is tagged and kept
  instead, because 1-bit masks beside the convolutions' backward pass raised the step's peak
  (see :data:`FEATURE_MAP_RANK`). The tag is the same, so a user's
  ``save_only_these_names(RESIDUAL_NAME)`` policy keeps whichever the activation chose.
* Otherwise (elu, gelu, silu, ...) nothing is tagged: reverse mode keeps the input ``x`` and
  recomputes ``derivative(x)`` inside the backward pass, fused with the cotangent product. Saving
  the derivative instead lets XLA keep extra transients alive (measured: the exact GELU step
  needed 296 MiB instead of 128 MiB).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax
from jax.ad_checkpoint import checkpoint_name

from . import _packing

Array = jax.Array

RESIDUAL_NAME = "rectax_bits"
"""Name under which residuals are saved: packed 1-bit masks and few-bit codes, or the output of
relu, necro_relu and relu6 on feature maps (see :data:`FEATURE_MAP_RANK`). Save it in your own
checkpoint policies: ``jax.checkpoint_policies.save_only_these_names(RESIDUAL_NAME)``."""

_SAVE_BITS = jax.checkpoint_policies.save_only_these_names(RESIDUAL_NAME)


FEATURE_MAP_RANK = 4
"""Inputs of this rank or more (``(N, H, W, C)`` feature maps) keep the output, not bits.

Measured on the benchmark zoo (``python -m benchmarks --modes zoo``, XLA:CPU): in convolutional
networks the step's peak is the convolutions' backward pass, and 1-bit masks kept beside it
raised the peak (flax's MNIST CNN 1.009x jax.nn, 1.39x under ``jax.checkpoint`` with a
``RESIDUAL_NAME`` policy) where keeping the output and comparing it lowered it (0.72x, 0.96x).
In dense layers (MLP, transformer FFN, rank <= 3) the bits win (0.56x, 0.89x) and the output
does not (1.00x): XLA then also keeps the pre-activation to recompute the mask.
"""


def _keeps_output(x: Array) -> bool:
    return x.ndim >= FEATURE_MAP_RANK


def _is_zero(t: Any) -> bool:
    return isinstance(t, jax.custom_derivatives.SymbolicZero)


def _packed_view(shape: Sequence[int], bits: int = 1) -> tuple[int, ...]:
    """The shape ``bits``-bit codes are packed in: their own when the last axis fills whole words.

    Otherwise the trailing axes are merged (the leading one kept, so a batch sharding stays
    local), or, for 1-D and 2-D arrays, all of them: a short last axis packed alone would cost a
    whole ``uint32`` word per row (``(N, 4)`` would take 8 bits per element, not 1).
    """
    shape = tuple(shape)
    per_word = _packing.WORD_BITS // _packing.slot_bits(bits)
    if not shape or shape[-1] % per_word == 0:
        return shape
    if len(shape) >= 3:
        return (shape[0], math.prod(shape[1:]))
    return (math.prod(shape),)


def pack_mask(mask: Array, bits: int = 1) -> Array:
    """Packs a boolean mask (or ``bits``-bit codes) into ``uint32`` words (:func:`_packed_view`)."""
    return _packing.pack(mask.reshape(_packed_view(mask.shape, bits)), bits)


def unpack_mask(words: Array, shape: Sequence[int], bits: int = 1) -> Array:
    """Inverse of :func:`pack_mask`: a boolean mask, or ``uint32`` codes for ``bits > 1``."""
    codes = _packing.unpack(words, bits, _packed_view(shape, bits)).reshape(tuple(shape))
    return codes.astype(bool) if bits == 1 else codes


def _param_tangent(
    forward: Callable[..., Array],
    x: Array,
    params: Sequence[Any],
    tangents: Sequence[Any],
) -> Array | None:
    """JVP of ``forward`` in the direction of the hyperparameters that carry a tangent."""
    live = [i for i, t in enumerate(tangents) if not _is_zero(t)]
    if not live:
        return None

    def partial(*live_params: Any) -> Array:
        full = list(params)
        for i, p in zip(live, live_params, strict=True):
            full[i] = p
        return forward(x, *full)

    _, t = jax.jvp(partial, [params[i] for i in live], [tangents[i] for i in live])
    return t


def elementwise(
    forward: Callable[..., Array],
    derivative: Callable[..., Array],
    *,
    mask: Callable[..., Array] | None = None,
    output_mask: Callable[..., Array] | None = None,
    mask_bits: int = 1,
) -> Callable[..., Array]:
    """Builds ``f(x, *params)`` from its forward pass and its derivative in ``x``.

    Args:
      forward: ``forward(x, *params) -> y``, elementwise in ``x``.
      derivative: without ``mask``, ``derivative(x, *params) -> dy/dx``; with ``mask``,
        ``derivative(m, *params) -> dy/dx`` where ``m = mask(x, *params)``. May return a
        surrogate (any elementwise factor), not necessarily the true derivative.
      mask: optional ``mask(x, *params) -> bool``. If given, reverse mode saves only this mask,
        packed to 1 bit per element.
      output_mask: optional ``output_mask(y, *params) -> bool`` equal to ``mask(x, *params)``
        for ``y = forward(x, *params)`` (relu: ``y > 0``). If given, inputs of rank
        :data:`FEATURE_MAP_RANK` or more save the output ``y`` (tagged ``RESIDUAL_NAME``)
        instead of the bits, and the mask is recomputed from it.
      mask_bits: with ``mask_bits > 1``, ``mask`` returns unsigned codes ``< 2**mask_bits``
        instead (a few-bit derivative's bucket index), packed to ``mask_bits`` bits per element
        (:func:`rectax._packing.slot_bits`), and ``derivative`` receives them as ``uint32``.

    Returns:
      A function of ``(x, *params)``. Its derivative in ``x`` is ``derivative``; its derivative
      in each hyperparameter is the true one (autodiff of ``forward``). Tangents and cotangents
      have their primal's dtype.
    """

    @jax.custom_jvp
    def fn(x: Array, *params: Any) -> Array:
        return forward(x, *params)

    def rule(primals: tuple[Any, ...], tangents: tuple[Any, ...]) -> tuple[Array, Array]:
        x, *params = primals
        t_x, *t_params = tangents
        y = forward(x, *params)
        t_out = _param_tangent(forward, x, params, t_params)
        if not _is_zero(t_x):
            if mask is None:
                d = derivative(x, *params)
            elif output_mask is not None and _keeps_output(x):
                y = checkpoint_name(y, RESIDUAL_NAME)
                d = derivative(output_mask(y, *params), *params)
            else:
                words = checkpoint_name(pack_mask(mask(x, *params), mask_bits), RESIDUAL_NAME)
                d = derivative(unpack_mask(words, x.shape, mask_bits), *params)
            t_dx = t_x * lax.convert_element_type(d, t_x.dtype)
            t_out = t_dx if t_out is None else t_out + t_dx
        if t_out is None:  # pragma: no cover - custom_jvp never calls a rule with all-zero tangents
            t_out = jnp.zeros_like(y)
        return y, t_out

    fn.defjvp(rule, symbolic_zeros=True)
    return jax.checkpoint(fn, policy=_SAVE_BITS)
