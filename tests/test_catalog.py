"""rectax._core._catalog: every activation's facts, stated once and read everywhere.

The oracle here is independent of the catalog: the public API (``rx.__all__``), the functions'
signatures, jax.nn's functions, and the docs table a reader sees.
"""

from __future__ import annotations

import functools
import inspect
import pathlib
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _registry import PUBLIC_ACTIVATIONS, WIDENING
from flax import nnx

import rectax as rx
from rectax import _resolve
from rectax import initializers as init
from rectax import linen as rxl
from rectax import nnx as rxn
from rectax._core import _catalog

DOCS = pathlib.Path(__file__).resolve().parents[1] / "docs" / "activations.md"
ALIASES = [(alias, info.name) for info in _catalog.all_activations() for alias in info.aliases]


def test_every_public_activation_is_catalogued_once():
    infos = _catalog.all_activations()
    assert sorted(i.name for i in infos) == PUBLIC_ACTIVATIONS
    for info in infos:
        assert info.fn is getattr(rx, info.name)
        assert _catalog.by_function(info.fn) is info
        assert _catalog.by_name(info.name.upper()) is info
    assert _catalog.by_function(rx.swish).name == "silu"
    assert _catalog.by_function(jax.nn.swish).name == "silu"
    assert _catalog.by_function(rx.hard_swish).name == "hard_silu"
    assert _catalog.by_function(jax.nn.hard_swish).name == "hard_silu"
    assert _catalog.by_function(lambda x: x) is None


def test_hyperparameters_are_the_signatures():
    """Names and defaults come from the function itself; prelu's learned slope has none there."""
    for info in _catalog.all_activations():
        params = inspect.signature(info.fn).parameters
        expected = {
            n: p.default
            for n, p in params.items()
            if n not in ("x", "key", "bits", "axis") and p.default is not p.empty
        }
        got = {k: v for k, v in info.hyperparameters.items() if k in expected}
        assert got == expected, info.name
    assert _catalog.by_name("prelu").hyperparameters == {"negative_slope": 0.25}
    assert _catalog.by_name("leaky_relu").hyperparameters == {"negative_slope": 0.01}


def test_piecewise_linear_activations_have_constant_derivatives():
    """The two-valued form is exactly the activations whose second derivative vanishes."""
    x = jnp.linspace(-5.0, 8.0, 53) + 0.0123  # no kinks
    for info in _catalog.all_activations():
        fn = functools.partial(info.fn, key=None) if info.name == "rrelu" else info.fn
        if info.name == "prelu":
            fn = functools.partial(info.fn, negative_slope=0.25)
        # a widening activation (CReLU) needs an axis: the sum of its outputs for one input
        second = jax.vmap(jax.grad(jax.grad(lambda v, f=fn: jnp.sum(f(v[None])))))(x)
        assert bool(jnp.all(second == 0)) == info.piecewise_linear, info.name


def _docs_table() -> dict[str, dict[str, object]]:
    """The first table of docs/activations.md: name -> {hyperparameter: default} as printed."""
    rows = {}
    for line in DOCS.read_text().splitlines():
        m = re.match(r"\| `(\w+)\(x(?:, )?([^`]*)\)`", line)
        if m is None:
            continue
        name, args = m.groups()
        params: dict[str, object] = {}
        for arg in filter(None, (a.strip() for a in args.split(","))):
            key, _, default = arg.partition("=")
            params[key] = (
                eval(default, {"__builtins__": {}}) if default else inspect.Parameter.empty
            )
        rows[name] = params
    return rows


def test_width_is_the_output_per_input_feature():
    """The catalog's width is what the function does to its last axis (the oracle states it too),
    and what the NNX builders give the next layer, whichever way the activation is named."""
    widening = {a.api: a.width for a in WIDENING}
    assert widening == {"crelu": 2}
    x = jax.ShapeDtypeStruct((3, 8), jnp.float32)
    for info in _catalog.all_activations():
        fn = functools.partial(info.fn, key=None) if info.name == "rrelu" else info.fn
        if info.name == "prelu":
            fn = functools.partial(info.fn, negative_slope=0.25)
        expected = widening.get(info.name, 1)
        assert info.width == expected, info.name
        assert jax.eval_shape(fn, x).shape == (3, 8 * expected), info.name
    for activation in ("crelu", rx.crelu, rxn.CReLU, functools.partial(rxn.CReLU, axis=-1)):
        model = rxn.MLP(3, (6, 5, 2), activation=activation, rngs=nnx.Rngs(0))
        assert [layer.kernel.shape for layer in model.layers] == [(3, 6), (12, 5), (10, 2)]
        assert model(jnp.ones((4, 3))).shape == (4, 2)
    assert _resolve.width(rxn.PReLU) == 1
    assert _resolve.width(lambda v: v) == 1


def test_docs_table_matches_the_catalog():
    table = _docs_table()
    for info in _catalog.all_activations():
        assert info.name in table, f"docs/activations.md has no row for {info.name}"
        row = {k: v for k, v in table[info.name].items() if k not in ("key", "bits", "axis")}
        assert set(row) == set(info.hyperparameters), info.name
        for key, value in row.items():
            if value is not inspect.Parameter.empty:
                assert value == pytest.approx(info.hyperparameters[key]), (info.name, key)


@pytest.mark.parametrize(("alias", "name"), ALIASES)
def test_an_alias_means_the_same_everywhere(alias, name):
    """'leaky' works wherever 'leaky_relu' does: gains, for_activation, modules, builders."""
    fn = getattr(rx, name)
    assert _resolve.resolve_function(alias) is fn
    assert init.gain(alias) == init.gain(name)
    key = jax.random.key(0)
    w_alias = init.for_activation(alias)(key, (64, 32))
    w_name = init.for_activation(fn)(key, (64, 32))
    np.testing.assert_array_equal(w_alias, w_name)
    x = jnp.linspace(-2.0, 2.0, 12).reshape(3, 4)
    linen = rxl.MLP(features=(8, 2), activation=alias)
    variables = linen.init(key, x)
    reference = rxl.MLP(features=(8, 2), activation=fn)
    np.testing.assert_array_equal(linen.apply(variables, x), reference.apply(variables, x))
    nnx_model = rxn.MLP(4, (8, 2), activation=alias, rngs=nnx.Rngs(0))
    nnx_reference = rxn.MLP(4, (8, 2), activation=fn, rngs=nnx.Rngs(0))
    np.testing.assert_array_equal(nnx_model(x), nnx_reference(x))


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown activation 'leakyy'.*leaky_relu"):
        _resolve.resolve_function("leakyy")
