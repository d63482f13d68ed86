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

``--explain`` prints, for one configuration, the buffers live at the compiled step's peak as
XLA's buffer assignment reports them (``--xla_dump_to``'s ``memory-usage-report``): the
evidence of what XLA keeps across the forward and backward passes for each unit. ``--time``
times the CPU step of each unit against the plain expression in interleaved rounds
(:func:`benchmarks.timing.interleave`): median of per-round ratios and its 95% interval.
"""

from __future__ import annotations

import argparse
import functools
import re
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
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
MODELS: dict[str, tuple[type[nn.Module], dict[str, tuple[Unit, Unit]]]] = {
    "llama3": (
        LlamaFFNBlock,
        {
            "swiglu": (rx.swiglu, LlamaFeedForward.unit),
            "swiglu bits=4": (functools.partial(rx.swiglu, bits=4), LlamaFeedForward.unit),
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


def _figure(m: Any) -> int:
    """The figure compared: the peak, or the temp size where the peak counts no temporaries."""
    return int(m.temp) if m.temp and m.peak <= m.argument + m.output else int(m.peak)


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
                    a = _figure(memory(target, model, ours, remat, dtype, size))
                    b = _figure(memory(target, model, plain, remat, dtype, size))
                    rows.append((model, name, dtype, remat, a, b))
                    flag = " **over**" if a > b else ""
                    cells.append(f"{a / b:.3f}{flag} ({a / 2**20:.2f} / {b / 2**20:.2f})")
                write(f"| {model} | {name} | {dtype} | " + " | ".join(cells) + " |")
    return rows


# --------------------------------------------------------------------------- what XLA keeps
_PEAK = re.compile(r"Live ranges at (\d+) \(peak\):\n((?:\s+\S+: \d+ bytes.*\n)+)")
_LIVE = re.compile(r"\s+(\S+?)\{(\d*)\}: (\d+) bytes")
_INSTRUCTION = re.compile(r"^\s*(?:ROOT\s+)?%([\w.\-]+) = (.*)$", re.M)
_OP_NAME = re.compile(r'op_name="([^"]*)"')


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
            return parts
    return parts


def peak_buffers(target: str, fn: Callable[..., Any], *args: Any) -> tuple[int, int, list[Any]]:
    """The buffers live at the peak of ``jit(fn)`` compiled for ``target``, by XLA's own live
    ranges (``xla_dump_to``'s ``*live-range.txt``, the compiled schedule): the peak's position,
    the schedule's length, and ``(bytes, shape, op_name)`` per buffer, op_name being the JAX
    operation that made it (``jvp(...)``: the forward pass; ``transpose(jvp(...))``: the
    backward pass; a parameter's name otherwise)."""
    from benchmarks import targets

    dev = targets.device(target)
    with rx.residual_target(targets.TARGETS[target].residual_target):
        lowered = jax.jit(fn).lower(*targets.abstract(args, dev))
    with tempfile.TemporaryDirectory() as tmp:
        lowered.compile({"xla_dump_to": tmp, "xla_dump_hlo_as_text": True})
        live = next(Path(tmp).glob("*jit_loss*live-range.txt")).read_text()
        hlo = next(Path(tmp).glob("*jit_loss*after_optimizations.txt")).read_text()
    length = int(re.search(r"HloLiveRange \(max (\d+)\)", live).group(1))  # type: ignore[union-attr]
    match = _PEAK.search(live)
    assert match is not None, "no peak in XLA's live ranges"
    instructions = {m.group(1): m.group(2) for m in _INSTRUCTION.finditer(hlo)}
    buffers = []
    for name, index, size in _LIVE.findall(match.group(2)):
        rest = instructions.get(name, "")
        shapes = _shapes(rest) if rest else ["?"]
        shape = shapes[int(index)] if index and int(index) < len(shapes) else shapes[0]
        op = _OP_NAME.search(rest)
        buffers.append((int(size), shape, op.group(1) if op else name))
    return int(match.group(1)), length, buffers


def _role(op_name: str) -> str:
    if "transpose(" in op_name:
        return "backward"
    if "jvp(" in op_name:
        return "forward, kept"
    return "argument"


def explain(
    target: str,
    model: str,
    dtype: str,
    remat: str,
    size: dict[str, int],
    units: Sequence[str] | None = None,
    write: Callable[[str], None] = print,
) -> None:
    """Prints, for the plain expression and each rectax unit, the buffers live at the peak."""
    from benchmarks import targets

    named = MODELS[model][1]
    plain = next(iter(named.values()))[1]
    choices = {"plain": plain} | {n: named[n][0] for n in (units or named)}
    write(f"## {targets.TARGETS[target].description}: {model} {dtype} {remat} {size}\n")
    for name, unit in choices.items():
        grad, params, x = step(model, unit, remat, dtype, size)
        at, length, buffers = peak_buffers(target, grad, params, x)
        total = sum(b[0] for b in buffers)
        write(f"{name}: peak {total / 2**20:.2f} MiB at {at} of {length} (XLA's schedule)")
        by_role: dict[str, int] = {}
        for size_, shape, op in buffers:
            role = _role(op)
            by_role[role] = by_role.get(role, 0) + size_
            if role != "argument" and size_ >= total // 64:
                where = op.removeprefix("jit(loss)/")
                write(f"  {role:13s} {size_ / 2**20:6.3f} MiB {shape:18s} {where}")
        summary = ", ".join(f"{r} {b / 2**20:.2f}" for r, b in sorted(by_role.items()))
        write(f"  MiB by role: {summary}\n")


# --------------------------------------------------------------------------- CPU step time
def timing(
    models: Sequence[str],
    remats: Sequence[str],
    size: dict[str, int],
    repeats: int,
    budget_s: float,
    write: Callable[[str], None] = print,
) -> None:
    """Step time of each rectax unit over the plain expression's, float32, this machine:
    interleaved rounds, median of the per-round ratios and its 95% interval."""
    from benchmarks import timing as bt

    write(f"## {jax.default_backend()} step time, float32, {size}: rectax / plain")
    write("| model | unit | remat | median | 95% interval | [min, max] | rounds |")
    write("|---|---|---|---|---|---|---|")
    for model in models:
        named = MODELS[model][1]
        plain = next(iter(named.values()))[1]
        for remat in remats:
            grad, params, x = step(model, plain, remat, "float32", size)
            arrays = jax.tree.map(
                lambda s: jax.random.normal(jax.random.key(1), s.shape, s.dtype) * 0.05,
                (params, x),
            )
            steps = {"plain": jax.jit(grad)} | {
                n: jax.jit(step(model, u, remat, "float32", size)[0]) for n, (u, _) in named.items()
            }
            fns = {n: functools.partial(f, *arrays) for n, f in steps.items()}
            got = bt.interleave(fns, repeats, warmup=2, budget_s=budget_s)
            for name in named:
                s = bt.ratio_stats(got.times[name], got.times["plain"])
                write(
                    f"| {model} | {name} | {remat} | {s.median:.3f} | [{s.low:.3f}, {s.high:.3f}] "
                    f"| [{s.min:.3f}, {s.max:.3f}] | {len(got.times[name])} |"
                )


def main(argv: Sequence[str] | None = None) -> None:
    from benchmarks import targets

    targets.configure_environment()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="cpu", help="cpu, h100, tpu-v5e, ...")
    parser.add_argument("--size", default="small", choices=list(SIZES))
    parser.add_argument("--models", nargs="*", default=list(MODELS))
    parser.add_argument("--dtypes", nargs="*", default=["float32", "bfloat16"])
    parser.add_argument("--remats", nargs="*", default=list(REMATS))
    parser.add_argument("--explain", action="store_true", help="the buffers live at the peak")
    parser.add_argument("--time", action="store_true", help="CPU step time, interleaved")
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument("--budget", type=float, default=20.0, help="seconds per comparison")
    args = parser.parse_args(argv)
    size = SIZES[args.size]
    if args.time:
        timing(args.models, args.remats, size, args.repeats, args.budget)
    elif args.explain:
        for model in args.models:
            for dtype in args.dtypes:
                for remat in args.remats:
                    explain(args.target, model, dtype, remat, size)
    else:
        table(args.target, args.models, args.dtypes, args.remats, size)


if __name__ == "__main__":
    main()
