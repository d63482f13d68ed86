"""Compiled temp memory of ``jax.grad`` of an MLP with CReLU, three ways (XLA on this machine).

``python benchmarks/crelu_memory.py [--depth 8 --width 512 --batch 256]`` prints MiB per variant:
``rx.crelu`` (one 1-bit mask for both halves, the tangent selected by it), ``jnp.concatenate`` of
``jax.nn.relu`` (plain JAX), ``rx.relu`` on each half (two masks), and rx.crelu's rule with the
tangent *multiplied* by a float factor, ``concatenate([t, t]) * factor``, which made XLA keep the
2x-wide output (why :func:`rectax._core._gradients.two_valued_pair` selects).
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
from jax.ad_checkpoint import checkpoint_name

import rectax as rx
from benchmarks import memory, models
from rectax._core import _gradients

Array = jax.Array


def plain(x: Array) -> Array:
    return jnp.concatenate([jax.nn.relu(x), jax.nn.relu(-x)], axis=-1)


@jax.custom_jvp
def _shared(x: Array) -> Array:
    return plain(x)


@_shared.defjvp
def _shared_rule(primals: tuple[Array], tangents: tuple[Array]) -> tuple[Array, Array]:
    (x,), (t,) = primals, tangents
    words = checkpoint_name(_gradients.pack_mask(x > 0), rx.RESIDUAL_NAME)
    m = _gradients.unpack_mask(words, x.shape)
    factor = jnp.concatenate([jnp.where(m, 1.0, 0.0), jnp.where(m, 0.0, -1.0)], axis=-1)
    return plain(x), jnp.concatenate([t, t], axis=-1) * factor.astype(t.dtype)


multiplied = jax.checkpoint(
    _shared, policy=jax.checkpoint_policies.save_only_these_names(rx.RESIDUAL_NAME)
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--depth", type=int, default=8)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--batch", type=int, default=256)
    args = parser.parse_args()
    spec = models.MlpSpec(depth=args.depth, width=args.width, batch=args.batch)
    params, x = models.mlp_shapes(spec, jnp.float32, width=2)
    variants = {
        "rx.crelu": rx.crelu,
        "jnp.concatenate(jax.nn.relu)": plain,
        "rx.relu on each half": lambda x: jnp.concatenate([rx.relu(x), rx.relu(-x)], axis=-1),
        "one mask, tangent multiplied": multiplied,
    }
    for name, fn in variants.items():
        temp = memory.temp_bytes(jax.grad(models.mlp_loss(fn, linear_head=True)), params, x)
        print(f"{name:30s} {temp / 2**20:8.2f} MiB")


if __name__ == "__main__":
    main()
