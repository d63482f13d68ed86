"""Hypothesis property suite: random shapes, dtypes, hyperparameters and transforms.

Shapes of rank 0-5 with sizes that are not multiples of 32 (the packed residuals' word) and
size 0; dtypes bfloat16, float16, float32 and float64 (under a scoped x64); hyperparameters
including NaN, negative values and arrays that broadcast; transforms jit, vmap (over x and over
a hyperparameter), grad, jacfwd, remat and scan. Values and gradients, hyperparameter gradients
included, are checked against the float64 references of ``tests/_registry.py``; every refusal
must be a TypeError or ValueError naming ``rectax.<function>`` and the argument.

``make test`` runs the "ci" profile (a few examples per property, derandomized); ``make fuzz``
runs the "fuzz" profile (many more, random), chosen by ``RECTAX_FUZZ_PROFILE``. The profile is
applied to this file's tests only (the other property tests keep hypothesis's defaults).
"""

from __future__ import annotations

import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _registry import DETERMINISTIC, assert_matches_reference, derivative_atol, x64_scope
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from test_hyperparameter_gradients import CASES as HYPER_CASES

import rectax as rx

# Every example compiles new shapes: no deadline, and hypothesis's slowness checks are moot.
_SLOW = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]
settings.register_profile(
    "ci", max_examples=10, deadline=None, derandomize=True, suppress_health_check=_SLOW
)
settings.register_profile("fuzz", max_examples=300, deadline=None, suppress_health_check=_SLOW)
PROFILE = settings.get_profile(os.environ.get("RECTAX_FUZZ_PROFILE", "ci"))

DTYPES = [jnp.bfloat16, jnp.float16, jnp.float32, jnp.float64]
ACTS = {a.name: a for a in DETERMINISTIC}

shapes = st.lists(st.sampled_from([0, 1, 2, 3, 5, 7, 31, 33]), min_size=0, max_size=5).filter(
    lambda s: math.prod(s) <= 4096
)
dtypes = st.sampled_from(DTYPES)


def _values(draw, shape, dtype):
    n = math.prod(shape)
    elements = st.one_of(
        st.floats(-8, 8, width=16),
        st.sampled_from([0.0, -0.0, 1.0, -1.0, 6.0, 20.0, -30.0, float("nan")]),
    )
    vals = draw(st.lists(elements, min_size=n, max_size=n))
    with x64_scope(dtype):
        x = jnp.asarray(np.asarray(vals, np.float64).reshape(shape), dtype)
    return x


@st.composite
def inputs(draw):
    dtype = draw(dtypes)
    shape = tuple(draw(shapes))
    return _values(draw, shape, dtype), dtype


def _x64(x):
    return np.asarray(x.astype(jnp.float32) if x.dtype != jnp.float64 else x, np.float64)


@PROFILE
@given(name=st.sampled_from(sorted(ACTS)), data=inputs())
def test_values_and_gradients_match_float64(name, data):
    act = ACTS[name]
    x, dtype = data
    x64 = _x64(x)
    with x64_scope(dtype):
        y = act.fn(x)
        g = jax.grad(lambda v: act.fn(v).astype(jnp.float32).sum())(x)
    assert y.shape == x.shape
    assert y.dtype == x.dtype
    assert g.dtype == x.dtype
    nan = np.isnan(x64)
    assert np.all(np.isnan(np.asarray(y, np.float64))[nan]), "NaN must propagate"
    keep = ~nan
    if act.ref is not None:
        assert_matches_reference(
            np.asarray(y, np.float64)[keep],
            act.ref(x64)[keep],
            x64[keep],
            act.dref(x64)[keep],
            dtype,
            what=f"{name} value",
        )
    off_kink = keep & ~np.isin(x64, list(act.kinks))
    assert_matches_reference(
        np.asarray(g, np.float64)[off_kink],
        act.dref(x64)[off_kink],
        x64[off_kink],
        act.d2ref(x64)[off_kink],
        dtype,
        what=f"{name} grad",
        atol=derivative_atol(act, dtype),
    )


@PROFILE
@given(
    name=st.sampled_from(sorted(ACTS)),
    data=inputs(),
    transform=st.sampled_from(["jit", "vmap", "remat", "scan", "jacfwd"]),
)
def test_transforms_agree_with_the_plain_call(name, data, transform):
    act = ACTS[name]
    x, dtype = data
    assume(x.ndim >= 1 and x.shape[0] >= 1)
    with x64_scope(dtype):
        plain = act.fn(x)
        if transform == "jit":
            out = jax.jit(act.fn)(x)
        elif transform == "vmap":
            out = jax.vmap(act.fn)(x)
        elif transform == "remat":
            out = jax.checkpoint(act.fn)(x)
        elif transform == "scan":
            out = jax.lax.scan(lambda c, r: (c, act.fn(r)), 0, x)[1]
        else:
            assume(x.size <= 64)
            flat = x.reshape(-1)
            jac = jax.jacfwd(act.fn)(flat)
            ref = jax.grad(lambda v: act.fn(v).astype(jnp.float32).sum())(flat)
            # the diagonal: off it, a NaN input's factor times a zero tangent is NaN (as jax.nn)
            np.testing.assert_array_equal(
                np.asarray(jnp.diagonal(jac), np.float64), np.asarray(ref, np.float64)
            )
            return
    np.testing.assert_array_equal(np.asarray(out, np.float64), np.asarray(plain, np.float64))


@PROFILE
@given(
    case=st.sampled_from(HYPER_CASES),
    dtype=dtypes,
    shape=st.lists(st.sampled_from([1, 2, 3, 5, 33]), min_size=1, max_size=3),
    p=st.floats(0.05, 2.0),
    per_last_axis=st.booleans(),
)
def test_hyperparameter_gradients_match_float64(case, dtype, shape, p, per_last_axis):
    name, f, d, _ = case
    assume(not (per_last_axis and name.startswith("rrelu")))
    key = jax.random.key(len(shape) * 7 + shape[-1])
    with x64_scope(dtype):
        x = (jax.random.normal(key, tuple(shape), jnp.float32) * 3).astype(dtype)
        pdtype = jnp.float64 if dtype == jnp.float64 else jnp.float32
        param = jnp.full((shape[-1],) if per_last_axis else (), p, pdtype)
        g = jax.grad(lambda a: f(x, a).astype(pdtype).sum())(param)
    assert g.dtype == pdtype
    assert g.shape == param.shape
    x64 = _x64(x)
    per_elem = d(x64, float(np.float32(p)) if pdtype == jnp.float32 else p)
    expected = per_elem.reshape(-1, shape[-1]).sum(0) if per_last_axis else per_elem.sum()
    scale = (
        np.abs(per_elem).reshape(-1, shape[-1]).sum(0) if per_last_axis else np.abs(per_elem).sum()
    )
    np.testing.assert_array_less(np.abs(np.asarray(g, np.float64) - expected), 1e-3 * scale + 1e-6)


@PROFILE
@given(case=st.sampled_from(HYPER_CASES), p=st.lists(st.floats(0.05, 2.0), min_size=2, max_size=4))
def test_vmap_over_a_hyperparameter(case, p):
    _name, f, _, _ = case
    x = jnp.linspace(-3.0, 3.0, 13)
    ps = jnp.asarray(p, jnp.float32)
    batched = jax.vmap(lambda a: f(x, a))(ps)
    for i, a in enumerate(p):
        # vmapped and scalar kernels may round one step differently (1 ulp measured)
        np.testing.assert_allclose(batched[i], f(x, jnp.float32(a)), rtol=1e-6, atol=1e-7)


# --------------------------------------------------------------------------- refusals
# (function name, call with a bad hyperparameter value, argument name)
_BAD = st.sampled_from([-1.0, 0.0, -math.inf, math.nan])


def _refusals(v):
    return [
        ("celu", lambda: rx.celu(jnp.ones(3), alpha=v), "alpha", v <= 0 or math.isnan(v)),
        ("softplus", lambda: rx.softplus(jnp.ones(3), beta=v), "beta", v <= 0 or math.isnan(v)),
        ("rrelu", lambda: rx.rrelu(jnp.ones(3), lower=1.0, upper=v), "lower", not v >= 1.0),
        ("leaky_relu", lambda: rx.leaky_relu(jnp.ones(3), str(v)), "negative_slope", True),
        ("prelu", lambda: rx.prelu(jnp.ones(3), [v, v, v]), "negative_slope", True),
        ("elu", lambda: rx.elu(jnp.ones(3), alpha=v, bits=3), "alpha", not math.isfinite(v)),
    ]


@PROFILE
@given(v=_BAD, which=st.integers(0, 5))
def test_refusals_name_the_function_and_the_argument(v, which):
    name, call, arg, refused = _refusals(v)[which]
    if not refused:
        call()
        return
    with pytest.raises((TypeError, ValueError)) as info:
        call()
    message = str(info.value)
    assert f"rectax.{name}" in message, message
    assert arg in message, message
