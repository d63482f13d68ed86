"""Layer-sequential unit-variance (LSUV) initialization for Flax models (nnx and linen).

Mishkin & Matas, "All you need is a good init", ICLR 2016. Flax is imported inside
:func:`lsuv`, so ``import rectax.initializers`` does not import it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .._core._dtypes import at_least_float32
from ._variance import orthogonal

Array = jax.Array


class LSUVLayer(NamedTuple):
    """One row of :func:`lsuv`'s report.

    Attributes:
      path: the layer's path in the model, ``/``-joined (``"layers/0"``, ``"Dense_1"``).
      kind: the layer's class name (``"Linear"``, ``"Conv"``, ``"Dense"``).
      iterations: how many times the kernel was rescaled.
      variance_initial: the output variance after the orthonormal pre-init (and after the
        earlier layers were rescaled), before this layer's first rescale.
      variance: the output variance at the end.
      converged: whether ``|variance - 1| < tol``.
    """

    path: str
    kind: str
    iterations: int
    variance_initial: float
    variance: float
    converged: bool


def _path(parts: tuple[Any, ...]) -> str:
    return "/".join(str(p) for p in parts)


def _batches(batch: Any) -> Callable[[], Any]:
    """A source of forward-pass batches: the next item of an iterator, or the same batch."""
    if isinstance(batch, Iterator):
        return lambda: next(batch)
    return lambda: batch


def _recording(cls: type, ids: dict[int, str], seen: dict[str, Array]) -> type:
    """A subclass of ``cls`` whose ``__call__`` records the output variance of the instances in
    ``ids`` (first call only). Assigned to layers of a private ``nnx.merge`` copy inside the
    traced forward pass, so the user's classes and modules are never modified.

    Why not a Flax API: NNX has no method interceptor (Linen's ``nn.intercept_methods`` and
    ``capture_intermediates`` have no NNX twin). ``nnx.capture(..., method_outputs=...)`` sows
    every method's output, but it does so by patching the classes themselves (``setattr`` on
    ``nnx.Linear``, seen by every instance while it runs) and returns the outputs in module-tree
    order, not the call order LSUV must follow. Setting ``__class__`` is plain Python on objects
    this function owns.
    """

    class Recording(cls):
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            out = super().__call__(*args, **kwargs)
            path = ids.get(id(self))
            if path is not None and path not in seen:
                seen[path] = _variance(out)
            return out

    Recording.__name__ = Recording.__qualname__ = cls.__name__
    return Recording


def _variance(y: Array) -> Array:
    return jnp.var(y.astype(at_least_float32(y.dtype)))


class _Options(NamedTuple):
    """What :func:`lsuv` passes to its nnx and linen halves."""

    key: Array | None  # for the orthonormal pre-init; None: no pre-init
    tol: float
    max_iters: int


def _iterate(
    order: list[str],
    kinds: dict[str, str],
    measure: Callable[[], list[float]],
    rescale: Callable[[str, float], None],
    options: _Options,
) -> list[LSUVLayer]:
    tol = options.tol
    report = []
    for i, path in enumerate(order):
        variance = initial = measure()[i]
        iterations = 0
        while abs(variance - 1.0) >= tol and iterations < options.max_iters:
            if not (math.isfinite(variance) and variance > 0):
                break  # a dead or exploding layer cannot be rescaled to unit variance
            rescale(path, 1.0 / math.sqrt(variance))
            iterations += 1
            variance = measure()[i]
        report.append(
            LSUVLayer(path, kinds[path], iterations, initial, variance, abs(variance - 1) < tol)
        )
    return report


def _lsuv_nnx(nnx: Any, model: Any, batch: Any, options: _Options) -> tuple[Any, list[LSUVLayer]]:
    classes = (nnx.Linear, nnx.Conv, nnx.ConvTranspose)
    layers = {_path(p): m for p, m in nnx.iter_modules(model) if isinstance(m, classes)}
    if not layers:
        raise ValueError(
            "rectax.initializers.lsuv: the model has no nnx.Linear, nnx.Conv or nnx.ConvTranspose."
        )
    kinds = {p: type(m).__name__ for p, m in layers.items()}
    if options.key is not None:
        keys = jax.random.split(options.key, len(layers))
        for k, layer in zip(keys, layers.values(), strict=True):
            w = layer.kernel.get_value()
            layer.kernel.set_value(orthogonal()(k, w.shape, w.dtype))
            if layer.bias is not None:
                layer.bias.set_value(jnp.zeros_like(layer.bias.get_value()))
    graphdef, _ = nnx.split(model)
    order: list[str] = []
    next_batch = _batches(batch)

    @jax.jit
    def forward(state: Any, batch: Any) -> list[Array]:
        merged = nnx.merge(graphdef, state)  # a private copy: only its layers are re-classed
        ids: dict[int, str] = {}
        seen: dict[str, Array] = {}
        for p, m in nnx.iter_modules(merged):
            if isinstance(m, classes):
                ids[id(m)] = _path(p)
                m.__class__ = _recording(type(m), ids, seen)
        merged(batch)
        order[:] = list(seen)
        return list(seen.values())

    def measure() -> list[float]:
        return [float(v) for v in forward(nnx.state(model), next_batch())]

    def rescale(path: str, factor: float) -> None:
        kernel = layers[path].kernel
        w = kernel.get_value()
        kernel.set_value((w * factor).astype(w.dtype))

    measure()  # traces once, fixing the call order
    report = _iterate(order, kinds, measure, rescale, options)
    return nnx.state(model, nnx.Param), report


def _lsuv_linen(
    module_or_apply: Any, variables: Any, batch: Any, options: _Options
) -> tuple[Any, list[LSUVLayer]]:
    import flax.linen as nn
    from flax import traverse_util

    apply = module_or_apply.apply if isinstance(module_or_apply, nn.Module) else module_or_apply

    order: list[str] = []
    kinds: dict[str, str] = {}

    def is_layer(module: Any, method: str) -> bool:
        # Flax calls this at every module call, in call order: the order LSUV must follow (the
        # captured intermediates come back in module-tree order: enc/d0, enc/d1, mid for a
        # model that calls enc/d0, mid, enc/d1).
        if method == "__call__" and isinstance(module, (nn.Dense, nn.Conv, nn.ConvTranspose)):
            path = _path(tuple(module.path))
            kinds[path] = type(module).__name__
            if path not in order:
                order.append(path)
            return True
        return False

    @jax.jit
    def forward(variables: Any, batch: Any) -> list[Array]:
        order.clear()
        _, state = apply(
            variables, batch, capture_intermediates=is_layer, mutable=["intermediates"]
        )
        flat = traverse_util.flatten_dict(state.get("intermediates", {}))
        outputs = {_path(p[:-1]): outs[0] for p, outs in flat.items()}
        return [_variance(outputs[path]) for path in order]

    next_batch = _batches(batch)
    params = {_path(k): v for k, v in traverse_util.flatten_dict(variables["params"]).items()}
    raw_keys = {_path(k): k for k in traverse_util.flatten_dict(variables["params"])}
    forward(variables, next_batch())
    if not order:
        raise ValueError(
            "rectax.initializers.lsuv: the model calls no nn.Dense, nn.Conv or nn.ConvTranspose."
        )
    for path in order:
        if path + "/kernel" not in params:
            raise ValueError(f"rectax.initializers.lsuv: no kernel found for layer {path!r}.")
    if options.key is not None:
        for k, path in zip(jax.random.split(options.key, len(order)), order, strict=True):
            w = params[path + "/kernel"]
            params[path + "/kernel"] = orthogonal()(k, w.shape, w.dtype)
            if path + "/bias" in params:
                params[path + "/bias"] = jnp.zeros_like(params[path + "/bias"])

    def current() -> Any:
        unflat = traverse_util.unflatten_dict({raw_keys[p]: v for p, v in params.items()})
        return {**variables, "params": unflat}

    def measure() -> list[float]:
        return [float(v) for v in forward(current(), next_batch())]

    def rescale(path: str, factor: float) -> None:
        w = params[path + "/kernel"]
        params[path + "/kernel"] = (w * factor).astype(w.dtype)

    report = _iterate(list(order), kinds, measure, rescale, options)
    return current(), report


def lsuv(
    model: Any,
    variables_or_batch: Any,
    batch: Any = None,
    *,
    key: Array | None = None,
    tol: float = 0.1,
    max_iters: int = 10,
    orthonormal: bool = True,
) -> tuple[Any, list[LSUVLayer]]:
    r"""Layer-sequential unit-variance initialization (Mishkin & Matas 2016).

    .. math::
      W_\ell \leftarrow W_\ell / \sqrt{\mathrm{Var}[W_\ell x_{\ell-1} + b_\ell]}
      \quad \text{until } |\mathrm{Var} - 1| < \mathrm{tol}

    Every Dense/Linear, Conv and ConvTranspose kernel is first replaced by an orthonormal matrix
    (:func:`orthogonal`, biases zeroed). Then, layer by layer in call order, a mini-batch is fed
    through the model (a jit-compiled forward pass, compiled once), the variance of the layer's
    output (before its nonlinearity, over batch, space and units) is measured, and the kernel is
    divided by its square root, until the variance is within ``tol`` of 1 or ``max_iters``
    rescales were made (Algorithm 1 of the paper; only the scale changes, never the mean). A
    layer whose output variance is 0 or not finite is left as it is and reported as not
    converged.

    Batches: pass an iterator (a generator, ``iter(list_of_batches)``, a data loader's iterator)
    to draw a fresh mini-batch for every forward pass, as the paper's Caffe reference does; an
    array (or any pytree that is not an iterator) is reused for every pass.

    Tolerance (a choice): the paper fixes no single ``tol`` and reports results insensitive to
    it over 0.01-0.1 (and to the batch size); most layers converge in 1-5 iterations. The
    authors' Caffe reference uses 0.02 on the variance and at most 20 iterations, PyTorch ports
    use 0.1 on the standard deviation and 10. rectax's defaults are ``tol=0.1`` on the variance
    and ``max_iters=10``; pass ``tol=0.02, max_iters=20`` for the Caffe reference's.

    Two calling conventions:

    * **nnx**: ``lsuv(model, batch, key=...)`` for an ``nnx.Module``. The ``nnx.Linear``,
      ``nnx.Conv`` and ``nnx.ConvTranspose`` submodules are found with ``nnx.iter_modules``.
      Their outputs are recorded on a private copy of the model (``nnx.merge`` inside the traced
      forward pass, whose layer objects get a recording subclass), so the order is the order of
      the first calls and neither the user's classes nor the model object are patched. The
      model is updated in place; the returned parameters are ``nnx.state(model, nnx.Param)``.
    * **linen**: ``lsuv(module_or_apply_fn, variables, batch, key=...)``. ``nn.Dense``,
      ``nn.Conv`` and ``nn.ConvTranspose`` outputs are captured with Flax's
      ``capture_intermediates``; ``apply_fn`` must accept Flax's ``apply`` keywords
      (``module.apply`` does). Returns new ``variables``.

    Args:
      model: an ``nnx.Module``, a ``flax.linen.Module`` or its ``apply`` function.
      variables_or_batch: the batch or batch iterator (nnx) or the variables (linen).
      batch: the batch or batch iterator (linen only).
      key: PRNG key for the orthonormal pre-init (required unless ``orthonormal=False``).
      tol: tolerance on the output variance (default 0.1).
      max_iters: most rescales per layer (default 10).
      orthonormal: do the orthonormal pre-init (default True).

    Returns:
      ``(params, report)``: the new parameters (nnx: ``nnx.State``; linen: the variables dict)
      and a list of :class:`LSUVLayer`, one per layer in call order.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from flax import nnx
      >>> from rectax.initializers import lsuv
      >>> model = nnx.Sequential(nnx.Linear(16, 32, rngs=nnx.Rngs(0)), jax.nn.relu,
      ...                        nnx.Linear(32, 8, rngs=nnx.Rngs(1)))
      >>> x = jax.random.normal(jax.random.key(2), (256, 16))
      >>> params, report = lsuv(model, x, key=jax.random.key(3))
      >>> [(r.path, r.converged) for r in report]
      [('layers/0', True), ('layers/2', True)]
    """
    if not tol > 0:
        raise ValueError(f"rectax.initializers.lsuv: tol must be > 0, got {tol!r}.")
    if not (isinstance(max_iters, int | np.integer) and max_iters >= 0):
        raise ValueError(
            f"rectax.initializers.lsuv: max_iters must be an int >= 0, got {max_iters!r}."
        )
    if orthonormal and key is None:
        raise ValueError(
            "rectax.initializers.lsuv: pass key= for the orthonormal pre-init "
            "(or orthonormal=False)."
        )
    from flax import nnx

    options = _Options(key if orthonormal else None, tol, max_iters)
    if isinstance(model, nnx.Module):
        if batch is not None:
            raise TypeError(
                "rectax.initializers.lsuv: for an nnx.Module call lsuv(model, batch, key=...)."
            )
        return _lsuv_nnx(nnx, model, variables_or_batch, options)
    if batch is None:
        raise TypeError(
            "rectax.initializers.lsuv: for linen call lsuv(module_or_apply_fn, variables, "
            "batch, key=...)."
        )
    return _lsuv_linen(model, variables_or_batch, batch, options)
