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
  ``mask(x, *params)``. The mask is packed to 1 bit per element along the last axis (into
  ``uint32`` words, :mod:`rectax._packing`) and tagged, so reverse mode keeps 1 bit per element
  instead of an array of the input's dtype; the factor is recomputed from the bits and the
  (small) hyperparameters.
* Otherwise (elu, gelu, silu, ...) nothing is tagged: reverse mode keeps the input ``x`` and
  recomputes ``derivative(x)`` inside the backward pass, fused with the cotangent product. Saving
  the derivative instead lets XLA keep extra transients alive (measured: the exact GELU step
  needed 296 MiB instead of 128 MiB).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax
from jax.ad_checkpoint import checkpoint_name

from . import _packing

Array = jax.Array

RESIDUAL_NAME = "rectax_bits"
"""Name under which packed residual masks and codes are saved (usable in your own checkpoint
policies)."""

_SAVE_BITS = jax.checkpoint_policies.save_only_these_names(RESIDUAL_NAME)


def _is_zero(t: Any) -> bool:
    return isinstance(t, jax.custom_derivatives.SymbolicZero)


def pack_mask(mask: Array) -> Array:
    """Packs a boolean array to ``uint32`` words along its last axis (1 bit per element)."""
    return _packing.pack(mask, 1)


def unpack_mask(bits: Array, shape: Sequence[int]) -> Array:
    """Inverse of :func:`pack_mask` for an array of the given ``shape``."""
    return _packing.unpack(bits, 1, shape).astype(bool)


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
            else:
                codes = mask(x, *params)
                words = checkpoint_name(_packing.pack(codes, mask_bits), RESIDUAL_NAME)
                if mask_bits == 1:
                    d = derivative(unpack_mask(words, x.shape), *params)
                else:
                    d = derivative(_packing.unpack(words, mask_bits, x.shape), *params)
            t_dx = t_x * lax.convert_element_type(d, t_x.dtype)
            t_out = t_dx if t_out is None else t_out + t_dx
        if t_out is None:  # pragma: no cover - custom_jvp never calls a rule with all-zero tangents
            t_out = jnp.zeros_like(y)
        return y, t_out

    fn.defjvp(rule, symbolic_zeros=True)
    return jax.checkpoint(fn, policy=_SAVE_BITS)
