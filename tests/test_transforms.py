"""Every registry entry under every JAX transformation, against the float64 references.

For the keyed rrelu, whose slopes depend on the key and on the shape the function sees, the
expected forward is the untransformed function applied to the same pieces (rows for vmap and
scan, shards for shard_map) and its derivative is the slope recovered from that forward.
"""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _registry import (
    ACTIVATIONS,
    WITH_HYPER,
    Activation,
    assert_matches_reference,
    derivative_atol,
)
from jax import lax
from jax.sharding import PartitionSpec as P

ids = lambda a: a.name
every = pytest.mark.parametrize("act", ACTIVATIONS, ids=ids)

F32 = jnp.float32
# Points away from the kinks (0, ±1, 6) and both sides of zero; the last axis is not a
# multiple of 8, so the 1-bit masks have a partial byte.
X1 = np.linspace(-7.3, 7.1, 13)
X2 = np.linspace(-9.1, 8.9, 8 * 13).reshape(8, 13)


def expected_value(act: Activation, x64: np.ndarray) -> np.ndarray:
    if act.ref is not None:
        return act.ref(x64)
    # Keyed rrelu: the untransformed function on exactly this array (same shape, same key).
    return np.asarray(act.fn(jnp.asarray(x64, F32)), np.float64)


def check_value(act: Activation, y, x64: np.ndarray) -> None:
    chex.assert_type(y, F32)
    assert_matches_reference(y, expected_value(act, x64), x64, act.dref(x64), F32, what=act.name)


def check_derivative(act: Activation, g, x64: np.ndarray) -> None:
    chex.assert_type(g, F32)
    assert_matches_reference(
        g, act.dref(x64), x64, act.d2ref(x64), F32, what=act.name, atol=derivative_atol(act, F32)
    )


def check_rows_derivative(act: Activation, g, x2: np.ndarray) -> None:
    """Row by row, so that keyed rrelu's slopes are those of a row-shaped call."""
    for gi, r in zip(g, x2, strict=True):
        check_derivative(act, gi, r)


def sum_of(fn):
    return lambda x: jnp.sum(fn(x))


@every
def test_jit(act: Activation):
    check_value(act, jax.jit(act.fn)(jnp.asarray(X1, F32)), X1)
    check_derivative(act, jax.jit(jax.grad(sum_of(act.fn)))(jnp.asarray(X1, F32)), X1)


@every
def test_vmap(act: Activation):
    y = jax.vmap(act.fn)(jnp.asarray(X2, F32))
    for yi, r in zip(y, X2, strict=True):
        check_value(act, yi, r)
    g = jax.vmap(jax.grad(sum_of(act.fn)))(jnp.asarray(X2, F32))
    check_rows_derivative(act, g, X2)


@pytest.mark.parametrize("act", WITH_HYPER, ids=ids)
def test_vmap_over_hyperparameter_sweep(act: Activation):
    fn, sweep = act.hyper
    x = jnp.asarray(X1, F32)
    y = jax.vmap(lambda h: fn(x, h))(jnp.asarray(sweep, F32))
    expected = np.stack([np.asarray(fn(x, h), np.float64) for h in sweep])
    chex.assert_trees_all_close(np.asarray(y, np.float64), expected, rtol=1e-6, atol=1e-7)
    dh = jax.vmap(jax.grad(lambda h: jnp.sum(fn(x, h))))(jnp.asarray(sweep, F32))
    expected = [jax.grad(lambda h: jnp.sum(fn(x, h)))(jnp.float32(h)) for h in sweep]
    chex.assert_trees_all_close(dh, jnp.stack(expected), rtol=1e-6, atol=1e-6)


@every
def test_grad_and_vjp(act: Activation):
    x = jnp.asarray(X1, F32)
    check_derivative(act, jax.grad(sum_of(act.fn))(x), X1)
    w = np.linspace(-2.0, 3.0, X1.size)
    _, vjp = jax.vjp(act.fn, x)
    (g,) = vjp(jnp.asarray(w, F32))
    np.testing.assert_allclose(g, w * act.dref(X1), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("jac", [jax.jacfwd, jax.jacrev], ids=["jacfwd", "jacrev"])
@every
def test_jacobian_is_diagonal_derivative(act: Activation, jac):
    J = np.asarray(jac(act.fn)(jnp.asarray(X1, F32)))
    chex.assert_shape(J, (X1.size, X1.size))
    check_derivative(act, np.diag(J), X1)
    np.testing.assert_array_equal(J - np.diag(np.diag(J)), 0.0)


@every
def test_hessian(act: Activation):
    """The hessian differentiates the documented rule: necro_relu's is the surrogate's (zero,
    on both sides of 0, never the true/surrogate mix a custom_vjp gives)."""
    H = np.asarray(jax.hessian(sum_of(act.fn))(jnp.asarray(X1, F32)))
    chex.assert_shape(H, (X1.size, X1.size))
    np.testing.assert_array_equal(H - np.diag(np.diag(H)), 0.0)
    expected = act.d2ref(X1)
    if not act.smooth and act.name not in ("elu", "celu", "selu"):
        np.testing.assert_array_equal(np.diag(H), expected)  # piecewise linear: exactly 0 or 2
    else:
        # A float32 autodiff of the rule sums terms as large as |x|·|u'|·|gate'|, so the error
        # is absolute, about 10 eps at |x| ≈ 7.
        np.testing.assert_allclose(np.diag(H), expected, rtol=1e-5, atol=1e-5)


@every
def test_checkpoint(act: Activation):
    x = jnp.asarray(X1, F32)
    check_value(act, jax.checkpoint(act.fn)(x), X1)
    check_derivative(act, jax.grad(sum_of(jax.checkpoint(act.fn)))(x), X1)
    policy = jax.checkpoint_policies.nothing_saveable
    check_derivative(act, jax.grad(sum_of(jax.checkpoint(act.fn, policy=policy)))(x), X1)


@every
def test_scan(act: Activation):
    def body(carry, row):
        y = act.fn(row)
        return carry + jnp.sum(y), y

    def total(x):
        return lax.scan(body, jnp.float32(0), x)[0]

    x = jnp.asarray(X2, F32)
    _, ys = lax.scan(body, jnp.float32(0), x)
    for yi, r in zip(ys, X2, strict=True):
        check_value(act, yi, r)
    check_rows_derivative(act, jax.grad(total)(x), X2)


@every
def test_linearize(act: Activation):
    x = jnp.asarray(X1, F32)
    y, f_jvp = jax.linearize(act.fn, x)
    check_value(act, y, X1)
    check_derivative(act, f_jvp(jnp.ones_like(x)), X1)
    w = np.linspace(-2.0, 3.0, X1.size)
    np.testing.assert_allclose(f_jvp(jnp.asarray(w, F32)), w * act.dref(X1), rtol=1e-6, atol=1e-7)


def test_four_host_devices():
    """conftest.py forces 4 CPU devices before jax starts (for shard_map)."""
    assert len(jax.devices()) == 4


@every
def test_shard_map(act: Activation):
    mesh = jax.make_mesh((4,), ("i",), axis_types=(jax.sharding.AxisType.Auto,))
    sharded = jax.jit(jax.shard_map(act.fn, mesh=mesh, in_specs=P("i"), out_specs=P("i")))
    x = jax.device_put(jnp.asarray(X2, F32), jax.sharding.NamedSharding(mesh, P("i")))
    y = sharded(x)
    g = jax.grad(sum_of(sharded))(x)
    for k, shard in enumerate(np.split(X2, 4)):  # 2 rows per device, keyed rrelu's shape
        check_value(act, y[2 * k : 2 * k + 2], shard)
        check_derivative(act, g[2 * k : 2 * k + 2], shard)
