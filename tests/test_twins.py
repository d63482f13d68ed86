"""The linen and nnx twins agree: each module pair, built alike and given the same parameters,
gives the same outputs, gradients and unit statistics, and initialises the same parameters.

Linen's variables are the reference layout; an nnx model's state is mapped onto it by the names
Flax gives sub-modules (``layers[i]`` is ``Dense_i``, ``activations[i]`` is ``PReLU_i``, ...).
"""

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _registry import BY_NAME, he_scale
from flax import nnx
from flax.traverse_util import flatten_dict, unflatten_dict

import rectax as rx
from rectax import linen as rxl
from rectax import nnx as rxn

KEY = jax.random.key(7)


class Twins(NamedTuple):
    linen: Callable[[bool], Any]  # record_stats -> linen module
    nnx: Callable[[bool], Any]  # record_stats -> nnx module
    shape: tuple[int, ...]  # input shape
    call: dict[str, Any]  # keyword arguments of both calls


def _mlp(api: Any, activation: Any, record_stats: bool) -> Any:
    if api is rxl:
        return rxl.MLP(features=(6, 5, 2), activation=activation, record_stats=record_stats)
    return rxn.MLP(3, (6, 5, 2), activation=activation, record_stats=record_stats, rngs=nnx.Rngs(0))


def _cnn(api: Any, activation: Any, record_stats: bool) -> Any:
    kwargs = dict(features=(4,), dense=(6,), num_classes=3, kernel_size=3, activation=activation)
    if api is rxl:
        return rxl.CNN(**kwargs, record_stats=record_stats)
    return rxn.CNN(1, 8, **kwargs, record_stats=record_stats, rngs=nnx.Rngs(0))


def _gated(api: Any, unit: Any, **kwargs: Any) -> Any:
    if api is rxl:
        return rxl.GatedMLP(hidden=6, unit=unit, **kwargs)
    return rxn.GatedMLP(3, 6, unit=unit, **kwargs, rngs=nnx.Rngs(0))


def _pair(make: Callable[[Any, bool], Any], shape, **call) -> Twins:
    return Twins(functools.partial(make, rxl), functools.partial(make, rxn), shape, call)


CASES = {
    "prelu_shared": _pair(lambda api, rs: api.PReLU(record_stats=rs), (4, 3)),
    "prelu_per_channel_nchw": _pair(
        lambda api, rs: api.PReLU(
            negative_slope_init=0.1, num_parameters=3, axis=1, record_stats=rs
        ),
        (2, 3, 4, 4),
    ),
    "rrelu_train_same_key": _pair(
        lambda api, rs: api.RReLU(record_stats=rs), (4, 3), deterministic=False, rng=KEY
    ),
    "rrelu_eval": _pair(lambda api, rs: api.RReLU(record_stats=rs), (4, 3), deterministic=True),
    "necro_relu": _pair(lambda api, rs: api.NecroReLU(0.2, record_stats=rs), (4, 3)),
    "activation_params_mapping": _pair(
        lambda api, rs: api.Activation(
            rx.leaky_relu, params={"negative_slope": 0.3}, record_stats=rs
        ),
        (4, 3),
    ),
    "activation_name_kwargs": _pair(
        lambda api, rs: api.Activation("elu", alpha=0.5, record_stats=rs), (4, 3)
    ),
    "mlp_relu": _pair(lambda api, rs: _mlp(api, "relu", rs), (4, 3)),
    "mlp_prelu": _pair(lambda api, rs: _mlp(api, api.PReLU, rs), (4, 3)),
    "mlp_activation_partial": _pair(
        lambda api, rs: _mlp(
            api, functools.partial(api.Activation, rx.leaky_relu, negative_slope=0.2), rs
        ),
        (4, 3),
    ),
    "mlp_rrelu_eval": _pair(lambda api, rs: _mlp(api, api.RReLU, rs), (4, 3), deterministic=True),
    "cnn_prelu": _pair(lambda api, rs: _cnn(api, api.PReLU, rs), (2, 8, 8, 1)),
    "cnn_necro": _pair(lambda api, rs: _cnn(api, api.NecroReLU, rs), (2, 8, 8, 1)),
    # CReLU doubles the width: nnx builders size the next layers from the catalog's width
    "crelu_nchw": _pair(lambda api, rs: api.CReLU(axis=1, record_stats=rs), (2, 3, 4, 4)),
    "mlp_crelu": _pair(lambda api, rs: _mlp(api, api.CReLU, rs), (4, 3)),
    "mlp_crelu_function": _pair(lambda api, rs: _mlp(api, rx.crelu, rs), (4, 3)),
    "cnn_crelu_name": _pair(lambda api, rs: _cnn(api, "crelu", rs), (2, 8, 8, 1)),
    "gated_mlp_swiglu": _pair(lambda api, rs: _gated(api, rx.swiglu, record_stats=rs), (4, 3)),
    "gated_mlp_geglu_bits_bias": _pair(
        lambda api, rs: _gated(
            api,
            functools.partial(rx.geglu, approximate="none", bits=3),
            use_bias=True,
            record_stats=rs,
        ),
        (4, 3),
    ),
    "gated_mlp_reglu_name": _pair(
        lambda api, rs: _gated(api, "reglu", features=2, record_stats=rs), (4, 3)
    ),
}


def _scopes(model: Any) -> dict[tuple[Any, ...], tuple[str, ...]]:
    """Path of each nnx sub-module -> the name linen gives its twin."""
    if isinstance(model, rxn.MLP):
        scopes = {("layers", i): (f"Dense_{i}",) for i in range(len(model.layers))}
        for i, act in enumerate(model.activations):
            scopes["activations", i] = (f"{type(act).__name__}_{i}",)
        return scopes
    if isinstance(model, rxn.CNN):
        scopes = {("convs", i): (f"Conv_{i}",) for i in range(len(model.convs))}
        for i, act in enumerate(model.conv_activations):
            scopes["conv_activations", i] = (f"{type(act).__name__}_{i}",)
        for path, name in _scopes(model.head).items():
            scopes[("head", *path)] = ("head", *name)
        return scopes
    return {(): ()}


def _rename(tree: Any, scopes: dict[tuple[Any, ...], tuple[Any, ...]]) -> dict[Any, Any]:
    """Moves each leaf of a nested dict from under a key of ``scopes`` to under its value."""
    flat = {}
    for path, leaf in flatten_dict(tree).items():
        prefix = next(p for p in sorted(scopes, key=len, reverse=True) if path[: len(p)] == p)
        flat[(*scopes[prefix], *path[len(prefix) :])] = leaf
    return unflatten_dict(flat) if flat else {}


def _to_linen(model: Any, state: Any) -> dict[Any, Any]:
    return _rename(nnx.to_pure_dict(state), _scopes(model))


def _to_nnx(model: Any, tree: Any) -> dict[Any, Any]:
    return _rename(tree, {v: k for k, v in _scopes(model).items()})


def _assert_same_tree(a: Any, b: Any, *, values: bool = True) -> None:
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        assert (x.shape, x.dtype) == (y.shape, y.dtype)
        if values:
            np.testing.assert_array_equal(x, y)


def _run_linen(module, params, x, call):
    """Output, unit statistics and gradients (params, input) of a linen module."""

    def loss(params, x):
        y, state = module.apply({"params": params}, x, mutable=["intermediates"], **call)
        return jnp.sum(jnp.sin(y)), (y, state.get("intermediates", {}))

    (_, (y, stats)), grads = jax.value_and_grad(loss, argnums=(0, 1), has_aux=True)(params, x)
    return y, stats, grads


def _run_nnx(model, x, call):
    """The same for an nnx model, with its state in linen's layout."""
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)

    def loss(params, x):
        y, stats = nnx.capture(nnx.merge(graphdef, params, rest), nnx.Intermediate)(x, **call)
        return jnp.sum(jnp.sin(y)), (y, stats)

    (_, (y, stats)), (g_params, g_x) = jax.value_and_grad(loss, argnums=(0, 1), has_aux=True)(
        params, x
    )
    return y, _to_linen(model, stats), (_to_linen(model, g_params), g_x)


@pytest.mark.parametrize("record_stats", [False, True], ids=["stats_off", "stats_on"])
@pytest.mark.parametrize(
    "case",
    [
        # flax's avg_pool promotes implicitly
        pytest.param(case, id=name, marks=[pytest.mark.standard_promotion] * name.startswith("cnn"))
        for name, case in CASES.items()
    ],
)
def test_twins_agree(case, record_stats):
    x = jax.random.normal(jax.random.key(0), case.shape)
    lmodule, nmodel = case.linen(record_stats), case.nnx(record_stats)
    params = lmodule.init(jax.random.key(1), x, **case.call).get("params", {})
    nnx_params = _to_linen(nmodel, nnx.state(nmodel, nnx.Param))
    # The same parameter names, shapes and dtypes; the same values but for random kernels.
    _assert_same_tree(nnx_params, params, values=False)
    kernels = {p: v for p, v in flatten_dict(params).items() if p[-1] == "kernel"}
    _assert_same_tree(
        {p: v for p, v in flatten_dict(nnx_params).items() if p not in kernels},
        {p: v for p, v in flatten_dict(params).items() if p not in kernels},
    )
    # Given linen's parameters, the same outputs, statistics and gradients.
    state = nnx.state(nmodel, nnx.Param)
    nnx.replace_by_pure_dict(state, _to_nnx(nmodel, params))
    nnx.update(nmodel, state)
    y_l, stats_l, grads_l = _run_linen(lmodule, params, x, case.call)
    y_n, stats_n, grads_n = _run_nnx(nmodel, x, case.call)
    np.testing.assert_array_equal(y_n, y_l)
    _assert_same_tree(grads_n, grads_l)
    _assert_same_tree(stats_n, stats_l)
    assert bool(jax.tree.leaves(stats_l)) == record_stats


def test_same_public_names():
    assert rxn.__all__ == rxl.__all__


@pytest.mark.parametrize(
    ("activation", "scale"),
    [
        ("relu", he_scale(BY_NAME["relu"].ref)),
        (rx.gelu, he_scale(BY_NAME["gelu_tanh"].ref)),
        ("necro_relu", he_scale(BY_NAME["relu"].ref)),  # ReLU forward: He's forward scale
    ],
    ids=["relu", "gelu", "necro_relu"],
)
def test_auto_init_is_jax_variance_scaling_in_both(activation, scale):
    """The same "auto" init in both APIs: jax's variance_scaling(scale, 'fan_in',
    'truncated_normal') with the activation's He scale (1/E[f(z)²] by quadrature of the oracle's
    float64 reference), value for value with each API's keys, so LeCun's scale (a factor 2)
    fails."""
    x = jnp.array([[-2.0, -1.0, 0.5], [3.0, -4.0, -0.5]])
    jax_init = jax.nn.initializers.variance_scaling(scale, "fan_in", "truncated_normal")
    params = rxl.MLP(features=(8, 8, 2), activation=activation).init(jax.random.key(0), x)
    nmodel = rxn.MLP(3, (8, 8, 2), activation=activation, rngs=nnx.Rngs(1))

    # flax's own layers with jax's initializer, named and built as the MLPs do, are the oracle.
    class Reference(nn.Module):
        @nn.compact
        def __call__(self, x):
            for i, width in enumerate((8, 8, 2)):
                x = nn.Dense(width, kernel_init=jax_init, name=f"Dense_{i}")(x)
            return x

    lexpected = Reference().init(jax.random.key(0), x)["params"]
    rngs = nnx.Rngs(1)
    nexpected = [
        nnx.Linear(i, o, kernel_init=jax_init, rngs=rngs) for i, o in [(3, 8), (8, 8), (8, 2)]
    ]
    for i, layer in enumerate(nmodel.layers):
        np.testing.assert_allclose(
            layer.kernel[...], nexpected[i].kernel[...], rtol=1e-6, atol=1e-7
        )
        np.testing.assert_allclose(
            params["params"][f"Dense_{i}"]["kernel"],
            lexpected[f"Dense_{i}"]["kernel"],
            rtol=1e-6,
            atol=1e-7,
        )
