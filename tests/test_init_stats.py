"""Statistical tests of the initializers.

Each assertion draws n = 10⁶ samples with its own fixed key and checks, at two-sided
α = 1e-6 (z* = 4.892): a z-test on the standard deviation (SE(s)/σ = sqrt((κ + 2)/(4n))), a
z-test on the mean, a Kolmogorov–Smirnov test against the exact CDF (scipy.stats) and the exact
support. Shapes are non-square (and conv) so that fan_in, fan_out and fan_avg differ. Mutant
tests show that each check fails on a deliberately wrong initializer.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.special
import scipy.stats

import rectax.initializers as init

Z_STAR = 4.892  # two-sided alpha = 1e-6
ALPHA = 1e-6
TRUNC = 0.87962566103423978
KURTOSIS = {"normal": 0.0, "uniform": -1.2, "truncated_normal": -0.6345}

DENSE = (800, 1250)  # fan_in 800, fan_out 1250, fan_avg 1025, fan_geo_avg 1000
CONV = (5, 5, 125, 320)  # HWIO: fan_in 3125, fan_out 8000
TORCH = (320, 125, 5, 5)  # OIHW: the same fans
QKV = (10, 1000, 100)  # (heads, in, head_dim): fan_in 1000, fan_out 1000


def _cdf(distribution: str, std: float) -> Callable[[np.ndarray], np.ndarray]:
    if distribution == "normal":
        return scipy.stats.norm(scale=std).cdf
    if distribution == "uniform":
        b = math.sqrt(3) * std
        return scipy.stats.uniform(loc=-b, scale=2 * b).cdf
    # scipy.stats.truncnorm(-2, 2, scale=std / TRUNC).cdf, written with ndtr (10x faster).
    sigma, lo = std / TRUNC, scipy.special.ndtr(-2.0)
    return lambda x: np.clip(
        (scipy.special.ndtr(np.asarray(x) / sigma) - lo) / (1 - 2 * lo), 0.0, 1.0
    )


def _bound(distribution: str, std: float) -> float:
    if distribution == "uniform":
        return math.sqrt(3) * std
    if distribution == "truncated_normal":
        return 2 * std / TRUNC
    return math.inf


def statistics(w: jax.Array, distribution: str, std: float, *, ks: bool = True) -> dict:
    """z-scores of the std and the mean, KS p-value and support excess of a sample."""
    x = np.asarray(jnp.asarray(w, jnp.float32), np.float64).ravel()
    n = x.size
    # rounding to the result dtype may move a sample at the bound by half an ulp.
    eps = float(jnp.finfo(w.dtype).eps) if jnp.issubdtype(w.dtype, jnp.floating) else 0.0
    se_std = std * math.sqrt((KURTOSIS[distribution] + 2) / (4 * n))
    out = {
        "z_std": (x.std() - std) / se_std,
        "z_mean": x.mean() / (std / math.sqrt(n)),
        "excess": max(0.0, float(np.abs(x).max()) - _bound(distribution, std) * (1 + eps)),
    }
    if ks:
        out["ks_p"] = scipy.stats.kstest(x, _cdf(distribution, std)).pvalue
    return out


def failures(stats: dict) -> set[str]:
    bad = set()
    if abs(stats["z_std"]) >= Z_STAR:
        bad.add("std")
    if abs(stats["z_mean"]) >= Z_STAR:
        bad.add("mean")
    if stats["excess"] > 0:
        bad.add("support")
    if stats.get("ks_p", 1.0) <= ALPHA:
        bad.add("ks")
    return bad


# (id, initializer, shape, distribution, expected std)
CASES = [
    ("he_normal", init.he_normal(), DENSE, "truncated_normal", math.sqrt(2 / 800)),
    (
        "he_normal_torch_normal",
        init.he_normal(distribution="normal", layout="conv"),
        CONV,
        "normal",
        math.sqrt(2 / 3125),
    ),
    (
        "he_normal_fan_out",
        init.he_normal(mode="fan_out", layout="conv"),
        CONV,
        "truncated_normal",
        math.sqrt(2 / 8000),
    ),
    (
        "he_uniform_leaky_torch",
        init.he_uniform(negative_slope=0.2, layout="torch"),
        TORCH,
        "uniform",
        math.sqrt(2 / 1.04 / 3125),
    ),
    ("glorot_normal", init.glorot_normal(), DENSE, "truncated_normal", math.sqrt(1 / 1025)),
    (
        "glorot_uniform_conv",
        init.glorot_uniform(layout="conv"),
        CONV,
        "uniform",
        math.sqrt(2 / (3125 + 8000)),
    ),
    ("lecun_normal", init.lecun_normal(distribution="normal"), DENSE, "normal", 1 / math.sqrt(800)),
    ("lecun_uniform", init.lecun_uniform(), DENSE, "uniform", 1 / math.sqrt(800)),
    (
        "fan_geo_avg",
        init.variance_scaling(1.0, "fan_geo_avg", "normal"),
        DENSE,
        "normal",
        1 / math.sqrt(1000),
    ),
    (
        "for_activation_gelu",
        init.for_activation("gelu", approximate=False),
        DENSE,
        "truncated_normal",
        1.53353044 / math.sqrt(800),
    ),
    ("torch_default", init.torch_default().kernel, DENSE, "uniform", 1 / math.sqrt(3 * 800)),
    ("fan_in_bias", init.fan_in_bias(100), (10**6,), "uniform", 1 / math.sqrt(300)),
    ("qkv", init.he_normal(layout="qkv"), QKV, "truncated_normal", math.sqrt(2 / 1000)),
    (
        "bf16_he_normal",
        init.he_normal(dtype=jnp.bfloat16),
        DENSE,
        "truncated_normal",
        math.sqrt(2 / 800),
    ),
    (
        "f16_he_uniform",
        init.he_uniform(dtype=jnp.float16),
        DENSE,
        "uniform",
        math.sqrt(2 / 800),
    ),
]


@pytest.mark.parametrize(
    ("seed", "initializer", "shape", "distribution", "std"),
    [pytest.param(i, *case[1:], id=case[0]) for i, case in enumerate(CASES)],
)
def test_distribution(seed, initializer, shape, distribution, std):
    w = initializer(jax.random.key(1000 + seed), shape)
    assert w.shape == shape
    # bf16/f16 values are discrete at a spacing the KS test at n = 1e6 would see; the moments,
    # support and the distinct-value test below cover them.
    low_precision = w.dtype in (jnp.bfloat16, jnp.float16)
    stats = statistics(w, distribution, std, ks=not low_precision)
    assert failures(stats) == set(), stats


# --------------------------------------------------------------------------- mutants
def _he_like(std_factor: float = 1.0, mean_shift: float = 0.0):
    base = init.he_normal(distribution="normal")

    def mutant(key, shape, dtype=None):
        w = base(key, shape, dtype)
        return w * std_factor + mean_shift * math.sqrt(2 / shape[0])

    return mutant


def _untruncated_correction(key, shape, dtype=None):
    # truncated normal without the 1/0.8796 correction
    return jax.random.truncated_normal(key, -2, 2, shape) * math.sqrt(2 / shape[0])


def _uniform_as_normal(key, shape, dtype=None):
    return jax.random.normal(key, shape) * math.sqrt(2 / shape[0])


MUTANTS = [
    ("std_plus_1pct", _he_like(std_factor=1.01), "normal", {"std"}),
    ("std_minus_1pct", _he_like(std_factor=0.99), "normal", {"std"}),
    ("mean_shift_1pct", _he_like(mean_shift=0.01), "normal", {"mean"}),
    ("missing_truncation_correction", _untruncated_correction, "truncated_normal", {"std", "ks"}),
    (
        "fan_avg_instead_of_fan_in",
        init.variance_scaling(2.0, "fan_avg", "truncated_normal"),
        "truncated_normal",
        {"std", "ks"},
    ),
    ("uniform_sampled_as_normal", _uniform_as_normal, "uniform", {"support", "ks"}),
    (
        "normal_instead_of_truncated",
        init.he_normal(distribution="normal"),
        "truncated_normal",
        {"support", "ks"},
    ),
]


@pytest.mark.parametrize(
    ("seed", "mutant", "distribution", "caught_by"),
    [pytest.param(i, *m[1:], id=m[0]) for i, m in enumerate(MUTANTS)],
)
def test_mutant_is_caught(seed, mutant, distribution, caught_by):
    w = mutant(jax.random.key(2000 + seed), DENSE)
    stats = statistics(w, distribution, math.sqrt(2 / 800))
    assert caught_by <= failures(stats), stats


# --------------------------------------------------------------------------- bf16 / f16
def _distinct(w: jax.Array) -> int:
    return len(np.unique(np.asarray(w.astype(jnp.float32)).ravel()[:10_000]))


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
@pytest.mark.parametrize("distribution", ["truncated_normal", "normal", "uniform"])
def test_low_precision_unbiased_and_dense(dtype, distribution):
    w = init.he_normal(distribution=distribution)(jax.random.key(7), DENSE, dtype)
    assert w.dtype == dtype
    stats = statistics(w, distribution, math.sqrt(2 / 800), ks=False)
    assert failures(stats) == set(), stats
    assert _distinct(w) > 1000


def test_jax_bf16_fails_what_rectax_passes():
    """Motivation: jax samples bfloat16 directly, biased (mean about -1.7% of std, z about -17)
    and with only 128 distinct values in 10⁴ draws."""
    key, std = jax.random.key(7), math.sqrt(2 / 800)
    ours = init.he_normal()(key, DENSE, jnp.bfloat16)
    theirs = jax.nn.initializers.he_normal()(key, DENSE, jnp.bfloat16)
    assert "mean" in failures(statistics(theirs, "truncated_normal", std, ks=False))
    assert _distinct(theirs) <= 1000
    assert "mean" not in failures(statistics(ours, "truncated_normal", std, ks=False))
    assert _distinct(ours) > 1000


def test_orthogonal_low_precision():
    # columns of an orthogonal matrix: unit norm; entries of a Haar matrix have mean 0.
    for dtype in (jnp.bfloat16, jnp.float16):
        w = init.orthogonal()(jax.random.key(11), (400, 200), dtype)
        assert w.dtype == dtype
        w = w.astype(jnp.float32)
        gram = np.asarray(w.T @ w)
        assert np.abs(gram - np.eye(200)).max() < 0.05
        # a Haar column is uniform on the sphere: each entry has mean 0 and variance 1/400.
        assert abs(float(w.mean())) * math.sqrt(400 * 80_000) < Z_STAR


# --------------------------------------------------------------------------- signal propagation
def _second_moments(initializer, depth: int = 50, width: int = 512, nets: int = 8) -> np.ndarray:
    """Per-layer mean of relu(h)² of a depth-50 MLP, averaged over ``nets`` independent draws.

    For one net, the log second moment is a random walk with per-layer std about
    sqrt(5 / width) (relu(z)² has relative variance 5), so one draw at width 512 wanders by
    about e^{±0.7} over 50 layers even though its expectation is exactly preserved under He;
    averaging 8 independent nets estimates that expectation to about ±25%.
    """
    x = jax.random.normal(jax.random.key(4), (64, width))

    def net(key):
        def layer(h, k):
            h = jax.nn.relu(h @ initializer(k, (width, width)))
            return h, jnp.mean(h**2)

        return jax.lax.scan(layer, x, jax.random.split(key, depth))[1]

    moments = jax.jit(jax.vmap(net))(jax.random.split(jax.random.key(3), nets))
    return np.asarray(moments).mean(axis=0)


def test_signal_propagation_he_keeps_second_moment():
    m = _second_moments(init.he_normal())
    assert np.all(m / m[0] < 2), m / m[0]
    assert np.all(m / m[0] > 0.5), m / m[0]


@pytest.mark.parametrize("builder", [init.glorot_normal, init.lecun_normal])
def test_signal_propagation_symmetric_inits_decay(builder):
    m = _second_moments(builder(), nets=1)
    assert m[-1] / m[0] < 1e-10, m[-1] / m[0]
