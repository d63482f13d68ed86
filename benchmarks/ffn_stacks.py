"""Llama-3's and Gemma's FFN stacks as their sources write them: rectax's gated unit vs the plain
expression, compiled memory per target, what XLA keeps, and CPU step time.

``python -m benchmarks.ffn_stacks [--target cpu|h100|tpu-v5e] [--explain] [--time]``.

The FFN blocks are written in Flax as the sources write them, the one line that computes the
gate's product being the module's ``unit`` (the plain expression by default):

* Llama 3: ``meta-llama/llama3``, ``llama/model.py`` at commit
  ``32b7ddc9b638f0fd6b04b80e1845536a95f7a5d5``: ``FeedForward.forward`` is
  ``self.w2(F.silu(self.w1(x)) * self.w3(x))`` (bias-free linears, ``hidden_dim`` =
  ``4 * dim`` scaled by 2/3 and rounded up to ``multiple_of``), the block's FFN half
  ``h + self.feed_forward(self.ffn_norm(h))`` with ``RMSNorm`` computed in float32 and cast
  back (``self._norm(x.float()).type_as(x) * self.weight``). Re-written here, not copied (the
  source is PyTorch, under the Llama 3 Community License).
* Gemma: ``google-deepmind/gemma``, ``gemma/gm/nn/_modules.py`` (``FeedForward``, ``Block``)
  and ``gemma/gm/nn/_layers.py`` (``Einsum``, ``RMSNorm``) at commit
  ``628e070bd8518ba3ac82e73dce603dd7034d8bed`` (Apache License 2.0): one ``gating_einsum``
  ``'...F,NFH->...NH'`` of shape ``(2, features, hidden_dim)``, ``nn.gelu(gate[..., 0, :]) *
  gate[..., 1, :]``, ``linear`` ``'...H,HF->...F'``; the block's FFN half ``pre_ffw_norm``,
  ``mlp``, ``post_ffw_norm``, ``+= attn_output``; ``RMSNorm`` scales by ``1 + scale``.

The step is ``jax.grad`` of ``mean(square(stack(x)))`` in the parameters, the blocks wrapped in
``nn.remat`` (``remat``) or ``nn.remat(policy=save_only_these_names(rx.RESIDUAL_NAME))``
(``remat-bits``) or not (``none``); compiled, never run, for ``--target``
(:mod:`benchmarks.targets`) and read with ``memory_analysis()``: peak bytes, rectax / the plain
expression.

``--squared-relu`` compares squared-ReLU backward rules on ``--target``
(:func:`squared_relu_table`). ``--explain`` prints, per configuration, what the compiled step
keeps from its forward pass for its backward pass and which activation-sized buffers its
backward pass writes, read from the optimized HLO (``compiled.as_text()``,
:func:`kept_buffers`). ``--time`` times the CPU step of each unit against the plain
expression in interleaved rounds (:func:`benchmarks.timing.interleave`): median of per-round
ratios and its 95% interval.
"""

from __future__ import annotations

import argparse
import functools
import math
import re
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

import rectax as rx

Array = jax.Array
Unit = Callable[[Array, Array], Array]

REMATS = ("none", "remat", "remat-bits")


# --------------------------------------------------------------------------- Llama 3
class LlamaRMSNorm(nn.Module):
    """``llama/model.py`` ``RMSNorm``: normalised in float32, cast back, times ``weight``."""

    eps: float = 1e-6
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: Array) -> Array:
        weight = self.param("weight", nn.initializers.ones, (x.shape[-1],), self.dtype)
        f = x.astype(jnp.float32)
        normed = f * jax.lax.rsqrt(jnp.mean(jnp.square(f), -1, keepdims=True) + self.eps)
        return normed.astype(x.dtype) * weight


class LlamaFeedForward(nn.Module):
    """``llama/model.py`` ``FeedForward``: ``w2(silu(w1(x)) * w3(x))``, its product ``unit``."""

    dim: int
    hidden_dim: int
    multiple_of: int = 256
    ffn_dim_multiplier: float | None = None
    unit: Unit = lambda g, u: jax.nn.silu(g) * u
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: Array) -> Array:
        hidden_dim = int(2 * self.hidden_dim / 3)
        if self.ffn_dim_multiplier is not None:
            hidden_dim = int(self.ffn_dim_multiplier * hidden_dim)
        hidden_dim = self.multiple_of * ((hidden_dim + self.multiple_of - 1) // self.multiple_of)
        linear = functools.partial(nn.Dense, use_bias=False, param_dtype=self.dtype)
        w1, w2, w3 = (
            linear(hidden_dim, name="w1"),
            linear(self.dim, name="w2"),
            linear(hidden_dim, name="w3"),
        )
        return w2(self.unit(w1(x), w3(x)))


class LlamaFFNBlock(nn.Module):
    """The FFN half of ``llama/model.py`` ``TransformerBlock``: ``h + ffn(ffn_norm(h))``."""

    dim: int
    unit: Unit
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, h: Array) -> Array:
        ffn = LlamaFeedForward(self.dim, 4 * self.dim, unit=self.unit, dtype=self.dtype)
        return h + ffn(LlamaRMSNorm(dtype=self.dtype, name="ffn_norm")(h))


# --------------------------------------------------------------------------- Gemma
class GemmaEinsum(nn.Module):
    """``gemma/gm/nn/_layers.py`` ``Einsum``: a parameterised ``jnp.einsum``."""

    shape: tuple[int, ...]
    weight_name: str = "w"
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, eqn: str, x: Array) -> Array:
        w = self.param(self.weight_name, nn.initializers.normal(), self.shape, self.dtype)
        return jnp.einsum(eqn, x, w)


class GemmaRMSNorm(nn.Module):
    """``gemma/gm/nn/_layers.py`` ``RMSNorm``: ``x * rsqrt(mean(x²) + 1e-6) * (1 + scale)``."""

    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: Array) -> Array:
        scale = self.param("scale", nn.initializers.zeros_init(), (x.shape[-1],), self.dtype)
        var = jnp.mean(jnp.square(x), axis=-1, keepdims=True)
        normed_inputs = x * jax.lax.rsqrt(var + 1e-06)
        scale = jnp.expand_dims(scale, axis=range(len(x.shape) - 1))
        return normed_inputs * (1 + scale)


class GemmaFeedForward(nn.Module):
    """``gemma/gm/nn/_modules.py`` ``FeedForward``: ``gelu(gate[..., 0, :]) * gate[..., 1, :]``."""

    features: int
    hidden_dim: int
    unit: Unit = lambda g, u: nn.gelu(g) * u
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: Array) -> Array:
        gating = GemmaEinsum((2, self.features, self.hidden_dim), "gating_einsum", self.dtype)
        nn.share_scope(self, gating)
        gate = gating("...F,NFH->...NH", x)
        activations = self.unit(gate[..., 0, :], gate[..., 1, :])
        linear = GemmaEinsum((self.hidden_dim, self.features), "linear", self.dtype)
        nn.share_scope(self, linear)
        return linear("...H,HF->...F", activations)


class GemmaFFNBlock(nn.Module):
    """The FFN half of ``gemma/gm/nn/_modules.py`` ``Block`` (with ``use_post_ffw_norm``)."""

    dim: int
    unit: Unit
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, attn_output: Array) -> Array:
        outputs = GemmaRMSNorm(self.dtype, name="pre_ffw_norm")(attn_output)
        outputs = GemmaFeedForward(self.dim, 4 * self.dim, self.unit, self.dtype, name="mlp")(
            outputs
        )
        outputs = GemmaRMSNorm(self.dtype, name="post_ffw_norm")(outputs)
        return outputs + attn_output


# --------------------------------------------------------------------------- the stacks
@jax.custom_jvp
def swiglu_logistic(gate: Array, up: Array) -> Array:
    """A probe, not rectax: SwiGLU whose rule computes silu's derivative from ``lax.logistic``
    (as jax.nn.silu's own autodiff graph does), with no checkpoint; XLA:TPU then keeps and
    writes what it does for the plain expression (``docs/memory.md``)."""
    return jax.nn.silu(gate) * up


@swiglu_logistic.defjvp
def _swiglu_logistic_rule(primals: Any, tangents: Any) -> tuple[Array, Array]:
    (gate, up), (t_gate, t_up) = primals, tangents
    s = jax.lax.logistic(gate)
    a = gate * s
    return a * up, t_gate * (s * (1 + gate * (1 - s)) * up) + t_up * a


MODELS: dict[str, tuple[type[nn.Module], dict[str, tuple[Unit, Unit]]]] = {
    "llama3": (
        LlamaFFNBlock,
        {
            "swiglu": (rx.swiglu, LlamaFeedForward.unit),
            "swiglu bits=4": (functools.partial(rx.swiglu, bits=4), LlamaFeedForward.unit),
            "probe: logistic rule": (swiglu_logistic, LlamaFeedForward.unit),
        },
    ),
    "gemma": (
        GemmaFFNBlock,
        {
            "geglu": (rx.geglu, GemmaFeedForward.unit),
            "geglu bits=4": (functools.partial(rx.geglu, bits=4), GemmaFeedForward.unit),
        },
    ),
}
"""model -> (its FFN block, unit name -> (rectax's unit, the source's plain expression))."""

SIZES: dict[str, dict[str, int]] = {
    "small": {"batch": 4, "seq": 64, "dim": 128, "layers": 2},
    "quick": {"batch": 8, "seq": 256, "dim": 256, "layers": 4},
    "time": {"batch": 8, "seq": 128, "dim": 256, "layers": 2},
}


class Stack(nn.Module):
    """``layers`` FFN blocks of ``block``, each under ``remat``: none, remat or remat-bits."""

    block: type[nn.Module]
    dim: int
    layers: int
    unit: Unit
    remat: str = "none"
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: Array) -> Array:
        block = self.block
        if self.remat == "remat":
            block = nn.remat(block)
        elif self.remat == "remat-bits":
            block = nn.remat(
                block, policy=jax.checkpoint_policies.save_only_these_names(rx.RESIDUAL_NAME)
            )
        for i in range(self.layers):
            x = block(self.dim, self.unit, self.dtype, name=f"block{i}")(x)
        return x


def step(
    model: str, unit: Unit, remat: str, dtype: Any, size: dict[str, int]
) -> tuple[Callable[..., Any], Any, Any]:
    """``grad`` of the stack's loss in its parameters, and its abstract arguments."""
    block, _ = MODELS[model]
    stack = Stack(block, size["dim"], size["layers"], unit, remat, jnp.dtype(dtype))
    x = jax.ShapeDtypeStruct((size["batch"], size["seq"], size["dim"]), jnp.dtype(dtype))
    params = jax.eval_shape(stack.init, jax.random.key(0), x)

    def loss(params: Any, x: Array) -> Array:
        out: Array = stack.apply(params, x)  # type: ignore[assignment]
        return jnp.mean(jnp.square(out.astype(jnp.float32)))

    return jax.grad(loss), params, x


def memory(target: str, model: str, unit: Unit, remat: str, dtype: Any, size: dict[str, int]):
    """Compiled memory (:class:`benchmarks.targets.Memory`) of the step for ``target``."""
    from benchmarks import targets

    grad, params, x = step(model, unit, remat, dtype, size)
    return targets.memory(target, grad, params, x)


def figure(target: str, m: Any) -> int:
    """The figure compared: the peak; on XLA:CPU the temp size (its peak is the arguments and
    outputs only)."""
    return int(m.temp) if target == "cpu" else int(m.peak)


def table(
    target: str,
    models: Sequence[str],
    dtypes: Sequence[str],
    remats: Sequence[str],
    size: dict[str, int],
    write: Callable[[str], None] = print,
) -> list[tuple[str, str, str, str, int, int]]:
    """Peak memory, rectax / plain, for every model, unit, dtype and remat; Markdown rows."""
    from benchmarks import targets

    what = "temp (XLA:CPU's peak counts no temporaries)" if target == "cpu" else "peak"
    write(f"## {targets.TARGETS[target].description}: {size}, compiled {what}, rectax / plain\n")
    write(f"| model | unit | dtype | {' | '.join(remats)} |\n|---|---|---|{'---|' * len(remats)}")
    rows = []
    for model in models:
        for dtype in dtypes:
            for name, (ours, plain) in MODELS[model][1].items():
                cells = []
                for remat in remats:
                    a = figure(target, memory(target, model, ours, remat, dtype, size))
                    b = figure(target, memory(target, model, plain, remat, dtype, size))
                    rows.append((model, name, dtype, remat, a, b))
                    flag = f" **over** (+{a - b} B)" if a > b else ""
                    cells.append(f"{a / b:.3f}{flag} ({a / 2**20:.2f} / {b / 2**20:.2f})")
                write(f"| {model} | {name} | {dtype} | " + " | ".join(cells) + " |")
    return rows


# --------------------------------------------------------------------------- what XLA keeps
_INSTRUCTION = re.compile(r"^\s*(?:ROOT\s+)?%([\w.\-]+) = (.*)$")
_OP_NAME = re.compile(r'op_name="([^"]*)"')
_BYTES = {"pred": 1, "s8": 1, "u8": 1, "bf16": 2, "f16": 2, "s32": 4, "u32": 4, "f32": 4}
_ALIASES = ("bitcast", "get-tuple-element", "copy", "copy-start", "copy-done", "tuple")


def _shapes(text: str) -> list[str]:
    """An HLO instruction's shape (a tuple's elements) without layouts: ``f32[4,64,512]``."""
    if not text.startswith("("):
        return [re.sub(r"\{.*", "", text.split(" ", 1)[0])]
    depth, parts, start = 0, [], 1
    for i, ch in enumerate(text):
        depth += ch in "([{"
        depth -= ch in ")]}"
        if (ch == "," and depth == 1) or depth == 0:
            parts.append(re.sub(r"\{.*", "", text[start:i].strip()))
            start = i + 1
        if depth == 0:
            break
    return parts


def _nbytes(shape: str) -> int:
    match = re.fullmatch(r"(\w+)\[([\d,]*)\]", shape)
    if match is None or match.group(1) not in _BYTES:
        return 0
    n = _BYTES[match.group(1)]
    for d in filter(None, match.group(2).split(",")):
        n *= int(d)
    return n


def kept_buffers(hlo: str) -> tuple[list[Any], list[Any]]:
    """What a compiled ``jit(grad)`` keeps, from its optimized HLO (``compiled.as_text()``).

    The entry computation's values made by the forward pass (``op_name`` ``jvp(...)``) and read
    by the backward pass (``transpose(jvp(...))``, rematerialised forward ops included) are the
    residuals XLA chose; bitcasts, copies and tuple elements are followed to their producer.
    Returns ``(kept, backward)``: ``(bytes, shape, op_name)`` of each kept value, and of each
    value the backward pass materialises, the largest first.
    """
    entry = hlo[hlo.index("\nENTRY") :].split("\n}", 1)[0].splitlines()[1:]
    role: dict[str, str] = {}
    root: dict[str, str] = {}
    info: dict[str, tuple[int, str, str]] = {}
    readers: dict[str, set[str]] = {}
    for line in entry:
        match = _INSTRUCTION.match(line)
        if match is None:
            continue
        name, rest = match.groups()
        shape_text = rest if rest.startswith("(") else rest.split(" ", 1)[0]
        opcode = re.match(r"(?:\(.*?\)|\S+) ([\w\-]+)\(", rest)
        op = opcode.group(1) if opcode else ""
        operands = re.findall(r"%([\w.\-]+)", rest.split("metadata=")[0])
        op_name = _OP_NAME.search(rest)
        where = op_name.group(1) if op_name else ""
        if op in _ALIASES and operands:
            root[name] = root.get(operands[0], operands[0])
            role[name] = role.get(root[name], "argument")
        else:
            root[name] = name
            is_backward = "transpose(" in where
            forward = where and op != "parameter"
            role[name] = "backward" if is_backward else "forward" if forward else "argument"
            shapes = _shapes(shape_text)
            shape = shapes[0] if len(shapes) == 1 else " ".join(shapes)
            info[name] = (sum(_nbytes(s) for s in shapes), shape, where.removeprefix("jit(loss)/"))
        for operand in operands:
            readers.setdefault(root.get(operand, operand), set()).add(role[name])
    kept = [
        info[n]
        for n, r in role.items()
        if r == "forward" and root[n] == n and "backward" in readers.get(n, ())
    ]
    backward = [info[n] for n, r in role.items() if r == "backward" and root[n] == n]
    return sorted(kept, reverse=True), sorted(backward, reverse=True)


def explain(
    target: str,
    model: str,
    dtype: str,
    remat: str,
    size: dict[str, int],
    units: Sequence[str] | None = None,
    write: Callable[[str], None] = print,
) -> None:
    """Prints, for the plain expression and each rectax unit, what the compiled step keeps from
    its forward pass for its backward pass (:func:`kept_buffers`) and its compiled peak."""
    from benchmarks import targets

    named = MODELS[model][1]
    plain = next(iter(named.values()))[1]
    choices = {"plain": plain} | {n: named[n][0] for n in (units or named)}
    rows = size["batch"] * size["seq"]

    def activation(shapes: str, width: int) -> bool:
        for shape in shapes.split(" "):
            dims = [int(d) for d in re.findall(r"\d+", shape.split("[", 1)[-1])]
            if dims and dims[0] in (size["batch"], rows) and math.prod(dims) >= rows * width:
                return True
        return False

    write(f"## {targets.TARGETS[target].description}: {model} {dtype} {remat} {size}\n")
    for name, unit in choices.items():
        grad, params, x = step(model, unit, remat, dtype, size)
        compiled = targets.compile_for(target, grad, params, x)
        peak = figure(target, targets.memory(target, grad, params, x))
        kept, backward = kept_buffers(compiled.as_text())
        write(
            f"{name}: {'temp' if target == 'cpu' else 'peak'} {peak / 2**20:.2f} MiB; kept "
            f"{sum(k[0] for k in kept) / 2**20:.2f} MiB in {len(kept)} buffers"
        )
        for nbytes, shape, where in kept:
            if activation(shape, size["dim"]):
                write(f"  kept {nbytes / 2**20:6.3f} MiB  {shape:28s} {where}")
        wide = [b for b in backward if activation(b[1], 2 * size["dim"])]
        shapes = ", ".join(sorted({b[1] for b in wide}))
        total = sum(b[0] for b in wide) / 2**20
        write(f"  backward writes {len(wide)} hidden-sized buffers ({total:.2f} MiB): {shapes}\n")


# --------------------------------------------------------------------------- CPU step time
def timing(
    models: Sequence[str],
    remats: Sequence[str],
    size: dict[str, int],
    repeats: int,
    budget_s: float,
    trace_as: str | None = None,
    write: Callable[[str], None] = print,
    dtype: str = "float32",
) -> None:
    """Step time of each rectax unit over the plain expression's, in ``dtype``, this machine:
    interleaved rounds, median of the per-round ratios and its 95% interval. ``trace_as``
    (``"tpu"``, ...) traces rectax's steps under :func:`rectax.residual_target` of that platform,
    so this machine runs the rule chosen there."""
    from benchmarks import timing as bt

    rules = f", rules of {trace_as}" if trace_as else ""
    write(f"## {jax.default_backend()} step time, {dtype}, {size}{rules}: rectax / plain")
    write("| model | unit | remat | median | 95% interval | [min, max] | rounds |")
    write("|---|---|---|---|---|---|---|")
    for model in models:
        named = {n: u for n, u in MODELS[model][1].items() if not n.startswith("probe")}
        plain = next(iter(named.values()))[1]
        for remat in remats:
            grad, params, x = step(model, plain, remat, dtype, size)
            arrays = jax.tree.map(
                lambda s: jax.random.normal(jax.random.key(1), s.shape, s.dtype) * 0.05,
                (params, x),
            )
            steps = {"plain": jax.jit(grad).lower(*arrays).compile()}
            with rx.residual_target(trace_as):
                for n, (u, _) in named.items():
                    g = step(model, u, remat, dtype, size)[0]
                    steps[n] = jax.jit(g).lower(*arrays).compile()
            fns = {n: functools.partial(f, *arrays) for n, f in steps.items()}
            got = bt.interleave(fns, repeats, warmup=2, budget_s=budget_s)
            for name in named:
                s = bt.ratio_stats(got.times[name], got.times["plain"])
                write(
                    f"| {model} | {name} | {remat} | {s.median:.3f} | [{s.low:.3f}, {s.high:.3f}] "
                    f"| [{s.min:.3f}, {s.max:.3f}] | {len(got.times[name])} |"
                )


# --------------------------------------------------------------------------- squared ReLU
def policy_timing(
    models: Sequence[str],
    size: dict[str, int],
    repeats: int,
    budget_s: float,
    write: Callable[[str], None] = print,
    dtype: str = "float32",
) -> None:
    """Step time of each rectax unit under ``remat-bits`` (``save_only_these_names(
    RESIDUAL_NAME)``) over the same unit under plain ``jax.checkpoint``, in ``dtype``, this
    machine: interleaved rounds, median of the per-round ratios and its 95% interval, beside the
    ratio of the two steps' compiled temp memory."""
    from benchmarks import timing as bt

    write(f"## {jax.default_backend()} step time, {dtype}, {size}: remat-bits / remat, rectax")
    write("| model | unit | median | 95% interval | [min, max] | rounds | temp |")
    write("|---|---|---|---|---|---|---|")
    for model in models:
        named = {n: u for n, u in MODELS[model][1].items() if not n.startswith("probe")}
        for name, (unit, _) in named.items():
            steps: dict[str, Any] = {}
            arrays: Any = None
            for remat in ("remat", "remat-bits"):
                grad, params, x = step(model, unit, remat, dtype, size)
                if arrays is None:
                    arrays = jax.tree.map(
                        lambda s: jax.random.normal(jax.random.key(1), s.shape, s.dtype) * 0.05,
                        (params, x),
                    )
                steps[remat] = jax.jit(grad).lower(*arrays).compile()
            temp = {r: c.memory_analysis().temp_size_in_bytes for r, c in steps.items()}
            fns = {r: functools.partial(c, *arrays) for r, c in steps.items()}
            got = bt.interleave(fns, repeats, warmup=2, budget_s=budget_s)
            s = bt.ratio_stats(got.times["remat-bits"], got.times["remat"])
            write(
                f"| {model} | {name} | {s.median:.3f} | [{s.low:.3f}, {s.high:.3f}] "
                f"| [{s.min:.3f}, {s.max:.3f}] | {len(got.times['remat'])} "
                f"| {temp['remat-bits'] / temp['remat']:.3f} |"
            )


def _squared_relu_rule(derivative: Callable[[Array, Array], Array]) -> Callable[[Array], Array]:
    """``relu(x)²`` with a plain custom rule ``t * derivative(x, y)`` (no checkpoint)."""

    @jax.custom_jvp
    def f(x: Array) -> Array:
        return jnp.square(jnp.maximum(x, 0))

    @f.defjvp
    def rule(primals: Any, tangents: Any) -> tuple[Array, Array]:
        (x,), (t,) = primals, tangents
        y = jnp.square(jnp.maximum(x, 0))
        return y, t * derivative(x, y).astype(t.dtype)

    return f


def squared_relu_variants() -> dict[str, Callable[[Array], Array]]:
    """Squared-ReLU backward rules compared on a target (``--squared-relu``)."""
    from rectax import _functions

    return {
        "rx.squared_relu": rx.squared_relu,
        "output-only, checkpointed": _functions._squared_relu_from_output,
        "output-only, plain rule": _squared_relu_rule(lambda x, y: 2 * jnp.sqrt(y)),
        "2 max(x, 0), plain rule": _squared_relu_rule(lambda x, y: 2 * jnp.maximum(x, 0)),
    }


def squared_relu_table(target: str, write: Callable[[str], None] = print) -> None:
    """Compiled peak over ``jnp.square(jax.nn.relu(h))`` of each squared-ReLU rule: the zoo's
    ``gpt-sqrelu`` (small sizes) and ``benchmarks.gated``'s 4-block FFN stack."""
    from benchmarks import targets, zoo

    variants = squared_relu_variants()
    write(f"## {targets.TARGETS[target].description}: squared ReLU, peak / plain")
    write(f"| step | dtype | {' | '.join(variants)} |\n|---|---|{'---|' * len(variants)}")
    for what in ("gpt-sqrelu", "FFN stack"):
        for dtype in ("f32", "bf16"):
            peak = functools.partial(_squared_relu_peak, target, what, dtype)
            base = {r: peak(zoo.FAMILIES["squared_relu"]["jax.nn"], r) for r in REMATS}
            cells = [
                " / ".join(f"{peak(act, r) / base[r]:.3f}" for r in REMATS)
                for act in variants.values()
            ]
            write(f"| {what} | {dtype} | " + " | ".join(cells) + " |")


def _squared_relu_peak(
    target: str, what: str, dtype: str, act: Callable[[Array], Array], remat: str
) -> int:
    from benchmarks import gated, targets, zoo

    if what == "FFN stack":
        unit = gated.squared_unit(act)
        return gated.peak_bytes(target, unit, remat, zoo.DTYPES[dtype], 512, 128, 512, 4)
    step = zoo.setup("gpt-sqrelu", "rectax", remat, dtype, targets.SMALL_SIZES["gpt-sqrelu"], act)
    params, data = zoo.abstract_args(step)
    return targets.memory(target, jax.grad(step.loss), params, data).peak


def main(argv: Sequence[str] | None = None) -> None:
    from benchmarks import targets

    targets.configure_environment()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="cpu", help="cpu, h100, tpu-v5e, ...")
    parser.add_argument("--size", default=None, choices=list(SIZES), help="small; time: --time")
    parser.add_argument("--models", nargs="*", default=list(MODELS))
    parser.add_argument(
        "--dtypes", nargs="*", default=None, help="default float32 bfloat16; --time: float32"
    )
    parser.add_argument("--remats", nargs="*", default=list(REMATS))
    parser.add_argument("--explain", action="store_true", help="the buffers live at the peak")
    parser.add_argument("--time", action="store_true", help="CPU step time, interleaved")
    parser.add_argument("--squared-relu", action="store_true", help="squared-ReLU rules' peak")
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument("--budget", type=float, default=20.0, help="seconds per comparison")
    parser.add_argument("--trace-as", default=None, help="--time with the rules of cpu/gpu/tpu")
    parser.add_argument(
        "--policy",
        action="store_true",
        help="with --time: rectax's remat-bits step over its plain-remat step",
    )
    args = parser.parse_args(argv)
    size = SIZES[args.size or ("time" if args.time else "small")]
    if args.squared_relu:
        squared_relu_table(args.target)
    elif args.time and args.policy:
        for dtype in args.dtypes or ["float32"]:
            policy_timing(args.models, size, args.repeats, args.budget, dtype=dtype)
    elif args.time:
        for dtype in args.dtypes or ["float32"]:
            timing(
                args.models,
                args.remats,
                size,
                args.repeats,
                args.budget,
                args.trace_as,
                dtype=dtype,
            )
    elif args.explain:
        for model in args.models:
            for dtype in args.dtypes or ["float32", "bfloat16"]:
                for remat in args.remats:
                    explain(args.target, model, dtype, remat, size)
    else:
        table(args.target, args.models, args.dtypes or ["float32", "bfloat16"], args.remats, size)


if __name__ == "__main__":
    main()
