"""What is benchmarked: the activation registry, run configurations and case generation.

Each :class:`Activation` holds the rectax implementation first, then its counterparts (the first
counterpart is the *primary baseline* that ratios and goals refer to). PyTorch counterparts live in
:mod:`benchmarks.torch_baseline` and are added only when torch is importable.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import cast

import flax.linen as linen
import jax
import jax.numpy as jnp
from flax import nnx
from jax import lax

import rectax as rx
from benchmarks.models import CnnSpec, MlpSpec
from rectax._core import _catalog

Array = jax.Array


def _default(activation: str, hyperparameter: str) -> float:
    """rectax's default for a hyperparameter (its catalog), which every library is run at."""
    info = _catalog.by_name(activation)
    assert info is not None, activation
    return float(info.hyperparameters[hyperparameter])


LEAKY_SLOPE = _default("leaky_relu", "negative_slope")
NECRO_SLOPE = _default("necro_relu", "negative_slope")
PRELU_SLOPE = _default("prelu", "negative_slope")
RRELU_LOWER = _default("rrelu", "lower")
RRELU_UPPER = _default("rrelu", "upper")
RRELU_KEY_SEED = 0

DTYPES: dict[str, jnp.dtype] = {
    "f32": jnp.dtype(jnp.float32),
    "bf16": jnp.dtype(jnp.bfloat16),
    "f16": jnp.dtype(jnp.float16),
}
ELEMENTWISE_MODES = ("forward", "fwd+bwd")
TRAIN_MODES = ("mlp", "cnn")
OTHER_MODES = ("memory",)
ALL_MODES = ("zoo", *ELEMENTWISE_MODES, *TRAIN_MODES, *OTHER_MODES)

RECTAX = "rectax"


@dataclass(frozen=True)
class Impl:
    """One implementation of an activation: ``fn(x) -> y`` with fixed hyperparameters."""

    library: str
    function: str
    fn: Callable[[Array], Array]

    @property
    def label(self) -> str:
        return f"{self.library}:{self.function}"


@dataclass(frozen=True)
class Activation:
    """An activation, its rectax implementation and its counterparts (primary first)."""

    name: str
    rectax: Impl
    baselines: tuple[Impl, ...]
    piecewise_linear: bool
    width: int = 1
    """Output elements per input element along the last axis (the catalog's; CReLU 2): the
    cotangents, the bytes moved and the next layer's in-features scale with it."""

    @property
    def impls(self) -> tuple[Impl, ...]:
        return (self.rectax, *self.baselines)

    @property
    def primary(self) -> Impl:
        return self.baselines[0]


def _rrelu_key() -> Array:
    return jax.random.key(RRELU_KEY_SEED)


def _rrelu_rectax(x: Array) -> Array:
    return rx.rrelu(x, _rrelu_key(), RRELU_LOWER, RRELU_UPPER)


def _rrelu_jax(x: Array) -> Array:
    slopes = jax.random.uniform(_rrelu_key(), x.shape, jnp.float32, RRELU_LOWER, RRELU_UPPER)
    return jax.nn.leaky_relu(x, slopes.astype(x.dtype))


def _necro_ste(x: Array) -> Array:
    """NecroReLU the plain-JAX way: leaky_relu's gradient, relu's value (straight-through)."""
    leaky = jax.nn.leaky_relu(x, NECRO_SLOPE)
    return leaky + lax.stop_gradient(jax.nn.relu(x) - leaky)


def _flax_linen_prelu(x: Array) -> Array:
    params = {"params": {"negative_slope": jnp.asarray(PRELU_SLOPE, jnp.float32)}}
    return cast(Array, linen.PReLU(negative_slope_init=PRELU_SLOPE).apply(params, x))


_NNX_PRELU = nnx.PReLU(negative_slope_init=PRELU_SLOPE)


def _flax_nnx_prelu(x: Array) -> Array:
    return _NNX_PRELU(x)


def _jax(function: str, fn: Callable[[Array], Array]) -> Impl:
    return Impl("jax.nn", function, fn)


def _rectax(function: str, fn: Callable[[Array], Array]) -> Impl:
    return Impl(RECTAX, function, fn)


def _activation(
    name: str, rectax: Impl | None = None, *baselines: Impl, catalog: str | None = None
) -> Activation:
    """``name`` with its catalog's facts (those of ``catalog``, if given); by default rectax's
    function against its jax.nn namesake, at the defaults."""
    info = _catalog.by_name(catalog or name)
    assert info is not None, name
    if rectax is None:
        rectax, baselines = _rectax(name, info.fn), (_jax(name, info.jax_nn[0]),)
    return Activation(name, rectax, baselines, info.piecewise_linear, info.width)


def _crelu_jax(x: Array) -> Array:
    """CReLU the plain-JAX way: jax.nn.relu of both signs, concatenated."""
    return jnp.concatenate([jax.nn.relu(x), jax.nn.relu(-x)], axis=-1)


def _registry() -> dict[str, Activation]:
    """Every catalogued activation: jax.nn's namesake as the baseline where jax.nn has one (at
    the defaults), the closest plain-JAX equivalent otherwise; gelu in both forms."""
    special = [
        _activation(
            "leaky_relu",
            _rectax(f"leaky_relu(x, {LEAKY_SLOPE})", lambda x: rx.leaky_relu(x, LEAKY_SLOPE)),
            _jax(f"leaky_relu(x, {LEAKY_SLOPE})", lambda x: jax.nn.leaky_relu(x, LEAKY_SLOPE)),
        ),
        _activation(
            "necro_relu",
            _rectax(f"necro_relu(x, {NECRO_SLOPE})", lambda x: rx.necro_relu(x, NECRO_SLOPE)),
            _jax("relu", jax.nn.relu),
            _jax(f"leaky_relu straight-through ({NECRO_SLOPE})", _necro_ste),
        ),
        _activation(
            "prelu",
            _rectax(f"prelu(x, {PRELU_SLOPE})", lambda x: rx.prelu(x, PRELU_SLOPE)),
            _jax(f"leaky_relu(x, {PRELU_SLOPE})", lambda x: jax.nn.leaky_relu(x, PRELU_SLOPE)),
            Impl("flax.linen", f"PReLU({PRELU_SLOPE})", _flax_linen_prelu),
            Impl("flax.nnx", f"PReLU({PRELU_SLOPE})", _flax_nnx_prelu),
        ),
        _activation(
            "rrelu",
            _rectax("rrelu(x, key)", _rrelu_rectax),
            _jax("leaky_relu(x, uniform(key))", _rrelu_jax),
        ),
        _activation(
            "gelu_tanh",
            _rectax("gelu(approximate='tanh')", lambda x: rx.gelu(x, approximate="tanh")),
            _jax("gelu(approximate=True)", lambda x: jax.nn.gelu(x, approximate=True)),
            catalog="gelu",
        ),
        _activation(
            "gelu_exact",
            _rectax("gelu(approximate='none')", lambda x: rx.gelu(x, approximate="none")),
            _jax("gelu(approximate=False)", lambda x: jax.nn.gelu(x, approximate=False)),
            catalog="gelu",
        ),
        _activation(
            "squared_relu",
            _rectax("squared_relu", rx.squared_relu),
            Impl("jax.numpy", "square(jax.nn.relu(x))", lambda x: jnp.square(jax.nn.relu(x))),
        ),
        _activation(
            "crelu",
            _rectax("crelu", rx.crelu),
            Impl("jax.numpy", "concatenate([relu(x), relu(-x)])", _crelu_jax),
        ),
    ]
    by_name = {a.name: a for a in special}
    acts: list[Activation] = []
    for info in _catalog.all_activations():  # the catalog's order
        if info.name == "gelu":
            acts += [by_name["gelu_tanh"], by_name["gelu_exact"]]
        else:
            acts.append(by_name.get(info.name) or _activation(info.name))
    return {a.name: a for a in acts}


ACTIVATIONS: dict[str, Activation] = _registry()
PIECEWISE_LINEAR = tuple(name for name, a in ACTIVATIONS.items() if a.piecewise_linear)


# --------------------------------------------------------------------------- configurations
@dataclass(frozen=True)
class Config:
    """Everything a run measures.

    ``secondary_activations`` limits the dtypes after the first to those activations and to the
    largest size (the quick run's "bf16 for a few"); None runs every combination.
    ``cnn_activations`` limits the CNN step (slow to compile on CPU) likewise; None: all.
    The zoo (:mod:`benchmarks.zoo`) runs ``zoo_models`` under ``zoo_remats`` in ``zoo_dtypes``
    and times the (remat, dtype) pairs in ``zoo_timed`` (None: all); every pair's memory is
    compiled only.
    A case is timed in at least ``repeats`` interleaved rounds, then in more (up to
    ``max_repeats``) until its timed calls have taken ``budget_s`` seconds.
    """

    activations: tuple[str, ...]
    sizes: tuple[int, ...]
    dtypes: tuple[str, ...]
    modes: tuple[str, ...]
    repeats: int
    warmup: int
    quick: bool
    secondary_activations: tuple[str, ...] | None
    mlp: MlpSpec
    cnn: CnnSpec
    mlp_memory: MlpSpec
    cnn_activations: tuple[str, ...] | None = None
    zoo_models: tuple[str, ...] = ()
    zoo_remats: tuple[str, ...] = ("none", "remat", "remat-bits")
    zoo_dtypes: tuple[str, ...] = ("f32", "bf16")
    zoo_timed: tuple[tuple[str, str], ...] | None = None
    budget_s: float = 0.0
    max_repeats: int = 200
    torch: bool = True
    device_index: int = 0
    seed: int = 0

    def replace(self, **changes: object) -> Config:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


ZOO_MODELS = (
    "mnist",
    "mnist-nnx",
    "resnet",
    "gpt-gelu",
    "gpt-swiglu",
    "gpt-relu",
    "gpt-sqrelu",
    "mlp",
    "flax-resnet",
    "flax-lm1b",
)
"""The names of :data:`benchmarks.zoo.MODELS` (kept here: this module does not import the zoo)."""

# The reference MLP (8 dense layers of 2048 units, batch 4096): compiled, never run, for the
# temp-memory figures.
REFERENCE_MLP = MlpSpec(depth=8, width=2048, batch=4096)


def quick_config(platform: str) -> Config:
    """``--quick`` (what ``make bench`` runs): every activation, a representative subset."""
    del platform
    return Config(
        activations=tuple(ACTIVATIONS),
        sizes=(2**12, 2**24),
        dtypes=("f32", "bf16"),
        modes=ALL_MODES,
        repeats=6,
        warmup=1,
        quick=True,
        secondary_activations=("relu", "necro_relu", "gelu_tanh"),
        mlp=MlpSpec(depth=4, width=512, batch=256),
        cnn=CnnSpec(batch=8, image=16, channels=(16, 32)),
        mlp_memory=REFERENCE_MLP,
        cnn_activations=("relu", "leaky_relu", "necro_relu", "gelu_tanh", "silu"),
        zoo_models=ZOO_MODELS,
        zoo_remats=("none", "remat-bits"),
        zoo_dtypes=("f32",),
        zoo_timed=(("none", "f32"),),
        budget_s=1.5,
        max_repeats=100,
    )


def full_config(platform: str) -> Config:
    """The full sweep for real hardware: 2^10..2^26 elements (2^28 off CPU), all dtypes."""
    top = 26 if platform == "cpu" else 28
    return Config(
        activations=tuple(ACTIVATIONS),
        sizes=tuple(2**k for k in range(10, top + 1, 2)),
        dtypes=tuple(DTYPES),
        modes=ALL_MODES,
        repeats=20,
        warmup=2,
        quick=False,
        budget_s=5.0,
        secondary_activations=None,
        mlp=REFERENCE_MLP,
        cnn=CnnSpec(batch=128, image=64, channels=(64, 128, 128)),
        mlp_memory=REFERENCE_MLP,
        zoo_models=ZOO_MODELS,
    )


# --------------------------------------------------------------------------- cases
@dataclass(frozen=True)
class Case:
    """One group of interleaved measurements: every implementation of one activation.

    ``size`` is the element count for elementwise cases and 0 where it does not apply.
    """

    kind: str
    mode: str
    activation: str
    size: int
    dtype: str

    @property
    def title(self) -> str:
        parts = [self.kind, self.mode, self.activation]
        if self.size:
            parts.append(f"2^{self.size.bit_length() - 1}")
        parts.append(self.dtype)
        return " ".join(p for p in parts if p)


def generate_cases(config: Config) -> list[Case]:
    """Expands a configuration into the ordered list of cases the runner executes."""
    unknown = [a for a in config.activations if a not in ACTIVATIONS]
    if unknown:
        raise ValueError(f"unknown activations {unknown}; known: {sorted(ACTIVATIONS)}.")
    bad_modes = [m for m in config.modes if m not in ALL_MODES]
    if bad_modes:
        raise ValueError(f"unknown modes {bad_modes}; known: {list(ALL_MODES)}.")
    bad_zoo = [m for m in config.zoo_models if m not in ZOO_MODELS]
    if bad_zoo:
        raise ValueError(f"unknown zoo models {bad_zoo}; known: {list(ZOO_MODELS)}.")
    bad_dtypes = [d for d in config.dtypes if d not in DTYPES]
    if bad_dtypes:
        raise ValueError(f"unknown dtypes {bad_dtypes}; known: {list(DTYPES)}.")

    cases: list[Case] = []
    first = config.dtypes[0] if config.dtypes else "f32"
    if "zoo" in config.modes:  # the headline: first
        for dtype in config.zoo_dtypes:
            cases += [
                Case("zoo", r, m, 0, dtype) for m in config.zoo_models for r in config.zoo_remats
            ]

    def selection(dtype: str) -> tuple[Sequence[str], Sequence[int]]:
        if dtype == first or config.secondary_activations is None:
            return config.activations, config.sizes
        acts = [a for a in config.activations if a in config.secondary_activations]
        return acts, (max(config.sizes),) if config.sizes else ()

    for mode in ELEMENTWISE_MODES:
        if mode not in config.modes:
            continue
        for dtype in config.dtypes:
            acts, sizes = selection(dtype)
            cases += [Case("elementwise", mode, a, n, dtype) for n in sizes for a in acts]
    for mode in TRAIN_MODES:
        if mode not in config.modes:
            continue
        for dtype in config.dtypes:
            if dtype != first and config.secondary_activations is not None:
                continue  # the quick run trains in the first dtype only
            acts = config.activations
            if mode == "cnn" and config.cnn_activations is not None:
                acts = tuple(a for a in acts if a in config.cnn_activations)
            cases += [Case("train", mode, a, 0, dtype) for a in acts]
    if "memory" in config.modes:
        cases += [Case("memory", "memory", a, 0, first) for a in config.activations]
    return cases
