"""The model zoo: the models people train, with jax.nn's activation and with rectax's.

Each model is written the way its original has it (flax linen or nnx) and takes its activation as
an argument, so the two variants differ only there:

* ``mnist``: flax's ``examples/mnist`` CNN (linen: conv 32 - relu - avg pool - conv 64 - relu -
  avg pool - dense 256 - relu - dense 10);
* ``mnist-nnx``: the same network as flax's NNX MNIST tutorial has it, with BatchNorm and Dropout;
* ``resnet``: a ResNet-18-style stack at CIFAR size (He et al., 2016: 3x3 stem, basic blocks of
  conv-BN-relu-conv-BN plus shortcut, then relu; stride 2 between stages);
* ``gpt-gelu``, ``gpt-swiglu``, ``gpt-relu``, ``gpt-sqrelu``: a stack of pre-LayerNorm decoder
  blocks (causal self-attention, then an FFN with GELU, SwiGLU (Shazeer, 2020), ReLU or squared
  ReLU (So et al., 2021));
* ``mlp``: a plain deep MLP (the synthetic model rectax's first claim was measured on);
* ``flax-resnet``, ``flax-lm1b``: flax's own ``examples/imagenet`` ResNet (v1.5, ``ResNet18``'s
  stages, the activation by its ``act`` argument) and ``examples/lm1b`` ``TransformerLM``
  (dropout on, as its ``train.py`` trains; the activation by a config field and the one changed
  line), vendored in :mod:`benchmarks.vendored.flax_examples` (its NOTICE.md).

Every model is measured under three rematerialisation settings: ``none``; ``remat``, a plain
``jax.checkpoint`` around each block (what users write); ``remat-bits``, ``jax.checkpoint`` with
``save_only_these_names(rectax.RESIDUAL_NAME)`` around each block. The figures are XLA's compiled
temp memory of ``jax.jit(jax.grad(loss))`` (compiled, never run), the bytes ``jax.vjp`` of the
loss keeps for the backward pass, and, for the timed subset, the interleaved step-time ratio.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import nnx, struct
from jax._src.ad_checkpoint import (
    saved_residuals as _saved_residuals,
)  # print_saved_residuals' list

import rectax as rx
from benchmarks import memory as mem
from benchmarks import models
from benchmarks.vendored.flax_examples.imagenet import models as flax_imagenet
from benchmarks.vendored.flax_examples.lm1b import models as flax_lm1b

Array = jax.Array
Act = Callable[[Array], Array]

DTYPES: dict[str, Any] = {"f32": jnp.float32, "bf16": jnp.bfloat16}
LIBRARIES = ("jax.nn", "rectax")


# --------------------------------------------------------------------------- activations
def _squared_relu(x: Array) -> Array:
    return jnp.square(jax.nn.relu(x))


FAMILIES: dict[str, dict[str, Act]] = {
    "relu": {"jax.nn": jax.nn.relu, "rectax": rx.relu},
    "gelu": {"jax.nn": jax.nn.gelu, "rectax": rx.gelu},
    "silu": {"jax.nn": jax.nn.silu, "rectax": rx.silu},
    "squared_relu": {"jax.nn": _squared_relu, "rectax": rx.squared_relu},
}
"""Activation family -> library -> function (jax.nn's defaults: tanh-approximate GELU)."""


def _linen_block(cls: Any, remat: str) -> Any:
    """``cls``, or ``cls`` under ``jax.checkpoint`` (``nn.remat``) with the setting's policy."""
    return cls if remat == "none" else nn.remat(cls, policy=models.policy(remat))


def _cross_entropy(logits: Array, labels: Array) -> Array:
    logp = jax.nn.log_softmax(logits.astype(jnp.float32))
    return -jnp.mean(jnp.take_along_axis(logp, labels[..., None], axis=-1))


def _cast(tree: Any, dtype: Any) -> Any:
    def cast(a: Any) -> Any:
        return a.astype(dtype) if jnp.issubdtype(a.dtype, jnp.floating) else a

    return jax.tree_util.tree_map(cast, tree)


# --------------------------------------------------------------------------- linen models
class _ConvPool(nn.Module):
    features: int
    act: Act

    @nn.compact
    def __call__(self, x: Array) -> Array:
        x = self.act(nn.Conv(self.features, (3, 3))(x))
        return nn.avg_pool(x, (2, 2), strides=(2, 2))


class _DenseAct(nn.Module):
    features: int
    act: Act

    @nn.compact
    def __call__(self, x: Array) -> Array:
        return self.act(nn.Dense(self.features)(x))


class MnistCNN(nn.Module):
    """flax ``examples/mnist``'s CNN; under remat, each conv stage and the dense are blocks."""

    act: Act
    remat: str = "none"

    @nn.compact
    def __call__(self, x: Array) -> Array:
        conv = _linen_block(_ConvPool, self.remat)
        x = conv(32, self.act)(x)
        x = conv(64, self.act)(x)
        x = x.reshape((x.shape[0], -1))
        x = _linen_block(_DenseAct, self.remat)(256, self.act)(x)
        return nn.Dense(10)(x)


class _BasicBlock(nn.Module):
    features: int
    strides: int
    act: Act

    @nn.compact
    def __call__(self, x: Array) -> Array:
        norm = functools.partial(nn.BatchNorm, use_running_average=False)
        s = (self.strides, self.strides)
        y = nn.Conv(self.features, (3, 3), s, use_bias=False)(x)
        y = self.act(norm()(y))
        y = nn.Conv(self.features, (3, 3), use_bias=False)(y)
        y = norm(scale_init=nn.initializers.zeros)(y)
        if x.shape != y.shape:
            x = norm()(nn.Conv(self.features, (1, 1), s, use_bias=False)(x))
        return self.act(x + y)


class ResNet(nn.Module):
    """ResNet-18-style at CIFAR size: 3x3 stem, ``blocks`` basic blocks per width."""

    act: Act
    widths: tuple[int, ...] = (64, 128, 256, 512)
    blocks: int = 2
    remat: str = "none"

    @nn.compact
    def __call__(self, x: Array) -> Array:
        x = nn.Conv(self.widths[0], (3, 3), use_bias=False)(x)
        x = self.act(nn.BatchNorm(use_running_average=False)(x))
        block = _linen_block(_BasicBlock, self.remat)
        for i, width in enumerate(self.widths):
            for j in range(self.blocks):
                x = block(width, 2 if i > 0 and j == 0 else 1, self.act)(x)
        return nn.Dense(10)(jnp.mean(x, axis=(1, 2)))


class _DecoderBlock(nn.Module):
    heads: int
    ffn: str
    act: Act

    @nn.compact
    def __call__(self, x: Array) -> Array:
        d = x.shape[-1]
        h = nn.LayerNorm()(x)
        mask = nn.make_causal_mask(jnp.ones(x.shape[:2], jnp.int32))
        x = x + nn.MultiHeadDotProductAttention(self.heads)(h, h, mask=mask)
        h = nn.LayerNorm()(x)
        if self.ffn == "swiglu":
            h = self.act(nn.Dense(4 * d)(h)) * nn.Dense(4 * d)(h)
        else:
            h = self.act(nn.Dense(4 * d)(h))
        return x + nn.Dense(d)(h)


class GPT(nn.Module):
    """A decoder-only transformer: embeddings, ``layers`` pre-LN blocks, LayerNorm, logits."""

    act: Act
    ffn: str = "mlp"
    vocab: int = 256
    d: int = 256
    layers: int = 4
    heads: int = 4
    remat: str = "none"

    @nn.compact
    def __call__(self, tokens: Array) -> Array:
        x = nn.Embed(self.vocab, self.d)(tokens)
        pos = self.param("pos", nn.initializers.normal(0.02), (tokens.shape[-1], self.d))
        x = x + pos.astype(x.dtype)
        block = _linen_block(_DecoderBlock, self.remat)
        for _ in range(self.layers):
            x = block(self.heads, self.ffn, self.act)(x)
        return nn.Dense(self.vocab)(nn.LayerNorm()(x))


class MLP(nn.Module):
    """``depth`` dense layers of ``width`` units with the activation, then 10 logits."""

    act: Act
    width: int = 1024
    depth: int = 8
    remat: str = "none"

    @nn.compact
    def __call__(self, x: Array) -> Array:
        layer = _linen_block(_DenseAct, self.remat)
        for _ in range(self.depth):
            x = layer(self.width, self.act)(x)
        return nn.Dense(10)(x)


# --------------------------------------------------------------------------- nnx model
class MnistNNX(nnx.Module):
    """flax's NNX MNIST tutorial CNN (BatchNorm, Dropout 0.025); blocks as in :class:`MnistCNN`."""

    def __init__(self, act: Act, remat: str, *, rngs: nnx.Rngs) -> None:
        self.act = act
        self.remat = remat
        self.conv1 = nnx.Conv(1, 32, kernel_size=(3, 3), rngs=rngs)
        self.batch_norm1 = nnx.BatchNorm(32, rngs=rngs)
        self.dropout1 = nnx.Dropout(rate=0.025)
        self.conv2 = nnx.Conv(32, 64, kernel_size=(3, 3), rngs=rngs)
        self.batch_norm2 = nnx.BatchNorm(64, rngs=rngs)
        self.linear1 = nnx.Linear(3136, 256, rngs=rngs)
        self.dropout2 = nnx.Dropout(rate=0.025)
        self.linear2 = nnx.Linear(256, 10, rngs=rngs)

    def _stage1(self, x: Array, rngs: nnx.Rngs) -> Array:
        x = self.act(self.batch_norm1(self.dropout1(self.conv1(x), rngs=rngs)))
        return nnx.avg_pool(x, window_shape=(2, 2), strides=(2, 2))

    def _stage2(self, x: Array, rngs: nnx.Rngs) -> Array:
        del rngs
        x = self.act(self.batch_norm2(self.conv2(x)))
        return nnx.avg_pool(x, window_shape=(2, 2), strides=(2, 2))

    def _stage3(self, x: Array, rngs: nnx.Rngs) -> Array:
        return self.act(self.dropout2(self.linear1(x), rngs=rngs))

    def __call__(self, x: Array, key: Array) -> Array:
        rngs = nnx.Rngs(dropout=key)
        stages = [MnistNNX._stage1, MnistNNX._stage2]
        if self.remat != "none":
            stages = [nnx.remat(s, policy=models.policy(self.remat)) for s in stages]
        for stage in stages:
            x = stage(self, x, rngs)
        x = x.reshape(x.shape[0], -1)
        third = MnistNNX._stage3
        if self.remat != "none":
            third = nnx.remat(third, policy=models.policy(self.remat))
        return self.linear2(third(self, x, rngs))


# --------------------------------------------------------------------------- setups
@dataclass(frozen=True)
class Setup:
    """A training step's pieces: ``loss(params, batch)``, ``init(key)``, ``batch(key)``, and
    ``grad(params, batch)`` (``jax.grad(loss)`` unless the framework has its own)."""

    loss: Callable[[Any, Any], Array]
    init: Callable[[Array], Any]
    batch: Callable[[Array], Any]
    grad: Callable[[Any, Any], Any] | None = None

    @property
    def gradient(self) -> Callable[[Any, Any], Any]:
        """The step that is measured: ``grad``, or ``jax.grad(loss)``."""
        return self.grad or jax.grad(self.loss)


def _linen_setup(
    module: nn.Module,
    x_shape: tuple[int, ...],
    dtype: Any,
    tokens: int = 0,
    axis_name: str | None = None,
) -> Setup:
    """Classification (``tokens == 0``: images/features, 10 classes) or next-token prediction.

    With ``axis_name``, the model runs under ``jax.vmap`` over a leading axis of one named so (a
    ``pmap`` over one device, as flax's imagenet ``train.py`` trains its BatchNorm's
    ``axis_name='batch'``).
    """
    mutable = ["batch_stats"]

    def init(key: Array) -> Any:
        x = jnp.zeros((1, *x_shape[1:]), jnp.int32 if tokens else jnp.float32)
        return _cast(module.init(key, x), dtype)

    def batch(key: Array) -> Any:
        kx, ky = jax.random.split(key)
        if tokens:
            seq = jax.random.randint(kx, (x_shape[0], x_shape[1] + 1), 0, tokens)
            return seq[:, :-1], seq[:, 1:]
        return jax.random.normal(kx, x_shape, dtype), jax.random.randint(ky, x_shape[:1], 0, 10)

    def forward(params: Any, x: Array) -> Array:
        logits, _ = module.apply(params, x, mutable=mutable)
        return logits

    def loss(params: Any, data: Any) -> Array:
        x, labels = data
        if axis_name is None:
            logits = forward(params, x)
        else:
            logits = jax.vmap(forward, (None, 0), axis_name=axis_name)(params, x[None])[0]
        return _cross_entropy(logits, labels)

    return Setup(loss, init, batch)


@struct.dataclass
class LM1BConfig(flax_lm1b.TransformerConfig):
    """flax lm1b's ``TransformerConfig`` with the FFN's activation (its ``MlpBlock`` reads it)."""

    activation: Act = struct.field(pytree_node=False, default=jax.nn.relu)


def _lm1b_setup(config: LM1BConfig, remat: str, batch_size: int, seq: int) -> Setup:
    """flax lm1b ``train.py``'s step: ``TransformerLM`` on tokens with dropout, cross-entropy on
    the inputs (the model shifts them right); no padding tokens (0), so every weight is 1. Its
    blocks are not an argument, so remat wraps the whole model (``nn.remat(TransformerLM)``)."""
    module = _linen_block(flax_lm1b.TransformerLM, remat)(config)

    def init(key: Array) -> Any:
        tokens = jnp.ones((1, seq), jnp.int32)
        variables = module.init({"params": key, "dropout": key}, tokens)
        return _cast(nn.meta.unbox(variables), config.dtype)

    def batch(key: Array) -> Any:
        kx, kd = jax.random.split(key)
        return jax.random.randint(kx, (batch_size, seq), 1, config.vocab_size), kd

    def loss(params: Any, data: Any) -> Array:
        tokens, key = data
        logits = module.apply(params, tokens, rngs={"dropout": key})
        return _cross_entropy(logits, tokens)

    return Setup(loss, init, batch)


def _nnx_setup(act: Act, remat: str, dtype: Any, batch_size: int) -> Setup:
    graphdef, *_ = nnx.split(
        nnx.eval_shape(lambda: MnistNNX(act, remat, rngs=nnx.Rngs(0))), nnx.Param, ...
    )

    def init(key: Array) -> Any:
        _, params, *_ = nnx.split(MnistNNX(act, remat, rngs=nnx.Rngs(key)), nnx.Param, ...)
        return _cast(params, dtype)

    def batch(key: Array) -> Any:
        """Images, labels, the dropout key and the model's batch statistics."""
        kx, ky, kd = jax.random.split(key, 3)
        _, _, *rest = nnx.split(MnistNNX(act, remat, rngs=nnx.Rngs(0)), nnx.Param, ...)
        x = jax.random.normal(kx, (batch_size, 28, 28, 1), dtype)
        return x, jax.random.randint(ky, (batch_size,), 0, 10), kd, rest

    def loss(params: Any, data: Any) -> Array:
        x, labels, key, rest = data
        model = nnx.merge(graphdef, params, *rest)
        return _cross_entropy(model(x, key), labels)

    def grad(params: Any, data: Any) -> Any:
        """``nnx.grad``, as the tutorial trains: the BatchNorm statistics update in place."""
        x, labels, key, rest = data
        model = nnx.merge(graphdef, params, *rest)
        return nnx.grad(lambda m: _cross_entropy(m(x, key), labels))(model)

    return Setup(loss, init, batch, grad)


@dataclass(frozen=True)
class Model:
    """A zoo entry: its activation family, a description, and its sizes.

    ``memory_size`` is compiled only (never run); ``quick_size``, if given, replaces it in
    ``--quick`` runs (it compiles faster); ``time_size`` is the timed step's.
    """

    name: str
    family: str
    description: str
    memory_size: Mapping[str, Any]
    time_size: Mapping[str, Any]
    quick_size: Mapping[str, Any] | None = None

    def compiled_size(self, quick: bool) -> Mapping[str, Any]:
        return self.quick_size if quick and self.quick_size is not None else self.memory_size


MODELS: dict[str, Model] = {
    m.name: m
    for m in [
        Model("mnist", "relu", "flax examples/mnist CNN (linen)", {"batch": 128}, {"batch": 32}),
        Model(
            "mnist-nnx",
            "relu",
            "flax NNX MNIST CNN, BatchNorm + Dropout",
            {"batch": 128},
            {"batch": 32},
        ),
        Model(
            "resnet",
            "relu",
            "ResNet-18-style, CIFAR 32x32, conv-BN-relu",
            {"batch": 64, "image": 32, "widths": (64, 128, 256, 512), "blocks": 2},
            {"batch": 8, "image": 32, "widths": (16, 32, 64, 128), "blocks": 2},
            {"batch": 64, "image": 32, "widths": (64,), "blocks": 4},
        ),
        *[
            Model(
                f"gpt-{ffn_name}",
                family,
                f"decoder stack, {ffn_name} FFN",
                {"batch": 8, "seq": 256, "d": 256, "layers": 4, "ffn": ffn},
                {"batch": 4, "seq": 64, "d": 128, "layers": 2, "ffn": ffn},
            )
            for ffn_name, family, ffn in [
                ("gelu", "gelu", "mlp"),
                ("swiglu", "silu", "swiglu"),
                ("relu", "relu", "mlp"),
                ("sqrelu", "squared_relu", "mlp"),
            ]
        ],
        Model(
            "mlp",
            "relu",
            "deep MLP",
            {"batch": 2048, "width": 1024, "depth": 8},
            {"batch": 256, "width": 512, "depth": 4},
        ),
        Model(
            "flax-resnet",
            "relu",
            "flax examples/imagenet ResNet18 (vendored), act=",
            {"batch": 32, "image": 64, "filters": 32},
            {"batch": 8, "image": 32, "filters": 16},
            {"batch": 16, "image": 32, "filters": 32},
        ),
        Model(
            "flax-lm1b",
            "relu",
            "flax examples/lm1b TransformerLM (vendored), 2 layers",
            {"batch": 8, "seq": 128, "vocab": 1024, "d": 256, "layers": 2},
            {"batch": 4, "seq": 64, "vocab": 256, "d": 128, "layers": 2},
        ),
    ]
}


def setup(
    name: str,
    library: str,
    remat: str,
    dtype: str,
    size: Mapping[str, Any],
    act: Act | None = None,
) -> Setup:
    """The training step of zoo model ``name`` with ``library``'s activation (or ``act``)."""
    model = MODELS[name]
    act = FAMILIES[model.family][library] if act is None else act
    dt = DTYPES[dtype]
    s = dict(size)
    if name == "mnist":
        return _linen_setup(MnistCNN(act, remat), (s["batch"], 28, 28, 1), dt)
    if name == "mnist-nnx":
        return _nnx_setup(act, remat, dt, s["batch"])
    module: nn.Module
    if name == "resnet":
        module = ResNet(act, tuple(s["widths"]), s["blocks"], remat)
        return _linen_setup(module, (s["batch"], s["image"], s["image"], 3), dt)
    if name.startswith("gpt-"):
        module = GPT(act, s["ffn"], d=s["d"], layers=s["layers"], remat=remat)
        return _linen_setup(module, (s["batch"], s["seq"]), dt, tokens=module.vocab)
    if name == "mlp":
        module = MLP(act, s["width"], s["depth"], remat)
        return _linen_setup(module, (s["batch"], s["width"]), dt)
    if name == "flax-resnet":
        module = flax_imagenet.ResNet18(
            num_classes=10,
            num_filters=s["filters"],
            dtype=dt,
            act=act,
            block_cls=_linen_block(flax_imagenet.ResNetBlock, remat),
        )
        shape = (s["batch"], s["image"], s["image"], 3)
        return _linen_setup(module, shape, dt, axis_name="batch")
    if name == "flax-lm1b":
        config = LM1BConfig(  # lm1b's configs/default.py at 2 layers and the sizes above
            vocab_size=s["vocab"],
            output_vocab_size=s["vocab"],
            dtype=dt,
            emb_dim=s["d"],
            num_heads=4,
            num_layers=s["layers"],
            qkv_dim=s["d"],
            mlp_dim=4 * s["d"],
            max_len=s["seq"],
            dropout_rate=0.1,
            attention_dropout_rate=0.1,
            deterministic=False,
            activation=act,
        )
        return _lm1b_setup(config, remat, s["batch"], s["seq"])
    raise ValueError(f"unknown zoo model {name!r}; known: {sorted(MODELS)}.")


# --------------------------------------------------------------------------- measurements
def abstract_args(step: Setup, seed: int = 0) -> tuple[Any, Any]:
    """Shapes and dtypes of (params, batch), without materialising either."""
    key = jax.random.key(seed)
    return jax.eval_shape(step.init, key), jax.eval_shape(step.batch, key)


def concrete_args(step: Setup, seed: int = 0) -> tuple[Any, Any]:
    kp, kb = jax.random.split(jax.random.key(seed))
    return jax.jit(step.init)(kp), jax.jit(step.batch)(kb)


def memory(step: Setup, seed: int = 0, target: str | None = None) -> mem.Memory:
    """Compiled memory of the step's gradient, never run (:func:`benchmarks.memory.compiled`)."""
    return mem.compiled(step.gradient, *abstract_args(step, seed), target=target)


def residual_bytes(step: Setup, seed: int = 0) -> int | None:
    """Bytes the forward pass saves for the backward pass (the arguments themselves excluded).

    The same list ``jax.ad_checkpoint.print_saved_residuals(loss, params, batch)`` prints; None
    for a model differentiated by its framework's own ``grad`` (NNX).
    """
    if step.grad is not None:
        return None
    params, data = abstract_args(step, seed)
    saved = _saved_residuals(step.loss, params, data)
    return sum(
        mem.nbytes(aval) for aval, source in saved if not source.startswith("from the argument")
    )
