"""The drop-in contract: the peers' own tests, vendored unmodified, run with rectax swapped in.

Before any test module here is imported (so before jax's module-level initializer records are
built), rectax's activations replace their namesakes in :mod:`jax.nn`, rectax's initializers
replace theirs in :mod:`jax.nn.initializers`, and rectax's ``PReLU`` modules replace
``flax.linen.PReLU`` and ``flax.nnx.PReLU``. The vendored files (see ``README.md`` beside this
file for their sources and licence) are then collected as they are:

* ``nn_test.py``: jax's ``tests/nn_test.py`` at tag ``jax-v0.10.2``;
* ``linen_activation_test.py``: flax's ``tests/linen/linen_activation_test.py`` (v0.12.8);
* ``linear_test.py``: flax's ``tests/nnx/nn/linear_test.py`` (v0.12.8), of which only
  ``TestPReLUConsistency`` concerns rectax (the rest is deselected).

``make test`` runs this directory twice: with the default configuration and with
``JAX_ENABLE_X64=1``. Every exception is listed in ``EXPECTED_DIFFERENCES`` with its reason.
"""

from __future__ import annotations

import flax.linen
import flax.nnx
import jax
import pytest

import rectax
import rectax.linen
import rectax.nnx
from rectax import initializers as rx_init

# rectax's public functions that jax.nn has too (activations, aliases such as swish, glu).
ACTIVATIONS = tuple(sorted(name for name in rectax.__all__ if hasattr(jax.nn, name)))
INITIALIZERS = (
    "variance_scaling",
    "he_normal",
    "he_uniform",
    "kaiming_normal",
    "kaiming_uniform",
    "glorot_normal",
    "glorot_uniform",
    "xavier_normal",
    "xavier_uniform",
    "lecun_normal",
    "lecun_uniform",
    "orthogonal",
)

for _name in ACTIVATIONS:
    setattr(jax.nn, _name, getattr(rectax, _name))
for _name in INITIALIZERS:
    setattr(jax.nn.initializers, _name, getattr(rx_init, _name))
flax.linen.PReLU = rectax.linen.PReLU  # type: ignore[misc]
flax.nnx.PReLU = rectax.nnx.PReLU  # type: ignore[misc]

# Vendored files that hold more than rectax replaces: only these of their tests are collected.
SELECTED = {"linear_test.py": ("TestPReLUConsistency",)}

# Tests that check jax's own wording of an error message rectax words differently (the error
# itself, its type and its trigger are the same). Empty when rectax matches them all.
EXPECTED_DIFFERENCES: dict[str, str] = {}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    keep, drop = [], []
    for item in items:
        wanted = SELECTED.get(item.path.name)
        if wanted is not None and not any(f"::{cls}::" in item.nodeid for cls in wanted):
            drop.append(item)
            continue
        for name, reason in EXPECTED_DIFFERENCES.items():
            if name in item.nodeid:
                item.add_marker(pytest.mark.xfail(reason=reason, strict=True))
        keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
