"""Few-bit residuals: memory, speed and gradient fidelity (``python -m benchmarks.few_bit``).

Prints compact tables:

* compiled temp memory (``memory_analysis().temp_size_in_bytes``, deterministic) of ``jit(grad)``
  through an 8-layer MLP (batch 2048, width 1024; f32 and bf16) and through a stack of
  transformer blocks (LayerNorm, causal attention, GELU FFN of 4x width), each as a ratio to the
  same model with ``jax.nn``'s activation;
* time ratios, few-bit over ``jax.nn`` (interleaved A/B rounds, median of the per-pair ratios
  with min and max): the MLP training step (gradient and SGD update) and the lone activation
  (forward value and input gradient, one jitted function);
* gradient fidelity: the L2 error of each built-in's table against ``f'`` (unweighted on
  [-100, 100], the quantity minimised, and under a standard normal input), the same for tables
  fitted to the normal-weighted error at input scales 0.5-10 (why rectax fits the unweighted
  one), and the cosine similarity of exact and few-bit parameter gradients at initialisation.

``--quick`` shrinks every size (for a smoke run); ``--fewbit-npz PATH`` adds the error of the
reference implementation's shipped tables (``fewbit/data/builtin.npz`` of skolai/fewbit);
``--output PATH`` writes the tables there and prints only where (what ``make bench`` does).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import platform
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import rectax as rx
from benchmarks import memory, models
from benchmarks.models import mlp_loss, transformer_init, transformer_loss
from benchmarks.timing import interleave, ratio_stats
from rectax._core import _few_bit
from tools import few_bit_generate as _few_bit_generate

Array = jax.Array
Act = Callable[[Array], Array]

BITS = (1, 2, 3, 4)

# name -> (jax.nn counterpart, rectax function with its keyword arguments)
PAIRS: dict[str, tuple[Act, Callable[..., Array], dict[str, Any]]] = {
    "gelu_tanh": (jax.nn.gelu, rx.gelu, {}),
    "gelu": (functools.partial(jax.nn.gelu, approximate=False), rx.gelu, {"approximate": False}),
    "silu": (jax.nn.silu, rx.silu, {}),
    "elu": (jax.nn.elu, rx.elu, {}),
}


def variant(name: str, bits: int | None) -> Act:
    """rectax's activation ``name``, exact (``bits=None``) or few-bit."""
    _, fn, kwargs = PAIRS[name]
    return functools.partial(fn, **kwargs, bits=bits)


def temp_mib(loss: Callable[..., Array], *args: Any) -> float:
    return memory.temp_bytes(jax.grad(loss), *args) / 2**20


def mlp_data(key: Array, batch: int, width: int, layers: int) -> tuple[Any, Array]:
    """1/sqrt(fan_in) kernels (no biases) and a standard-normal batch, float32."""
    spec = models.MlpSpec(layers, width, batch)
    k_w, k_x = jax.random.split(key)
    w = models.mlp_init(k_w, spec, jnp.float32, bias=False, gain=1.0)
    return w, models.mlp_batch(k_x, spec, jnp.float32)


def cosine(a: Any, b: Any) -> float:
    va = jnp.concatenate([jnp.ravel(x) for x in jax.tree_util.tree_leaves(a)])
    vb = jnp.concatenate([jnp.ravel(x) for x in jax.tree_util.tree_leaves(b)])
    return float(jnp.dot(va, vb) / (jnp.linalg.norm(va) * jnp.linalg.norm(vb)))


# --------------------------------------------------------------------------- sections
def memory_section(batch: int, width: int, layers: int, tf: dict[str, int]) -> None:
    print(f"\n## Compiled temp memory, jit(grad) of an {layers}-layer MLP {batch}x{width}")
    print("ratio to the same MLP with jax.nn's activation (rx.relu's 1-bit floor for scale)")
    print(f"{'activation':<10} {'dtype':<9} {'jax.nn MiB':>10} {'exact':>6}", end="")
    print("".join(f" {f'bits={b}':>7}" for b in BITS), f" {'rx.relu':>7}")
    for dtype in (jnp.float32, jnp.bfloat16):
        shapes = models.mlp_shapes(models.MlpSpec(layers, width, batch), dtype, bias=False)
        relu = temp_mib(mlp_loss(rx.relu), *shapes)
        for name, (base, _, _) in PAIRS.items():
            ref = temp_mib(mlp_loss(base), *shapes)
            row = [temp_mib(mlp_loss(variant(name, b)), *shapes) / ref for b in (None, *BITS)]
            cells = "".join(f" {r:>7.3f}" for r in row[1:])
            print(
                f"{name:<10} {jnp.dtype(dtype).name:<9} {ref:>10.1f} {row[0]:>6.3f}{cells}", end=""
            )
            print(f"  {relu / ref:>7.3f}")

    print(
        f"\n## Compiled temp memory, jit(grad) of {tf['layers']} transformer blocks "
        f"(batch {tf['batch']}, seq {tf['seq']}, width {tf['width']}, {tf['heads']} heads, "
        "GELU FFN 4x), f32"
    )
    params, x = transformer_init(
        jax.random.key(0), tf["layers"], tf["batch"], tf["seq"], tf["width"]
    )
    shapes = jax.tree_util.tree_map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), (params, x))
    for name in ("gelu_tanh", "gelu"):
        ref = temp_mib(transformer_loss(PAIRS[name][0], tf["heads"]), *shapes)
        row = [
            temp_mib(transformer_loss(variant(name, b), tf["heads"]), *shapes) / ref
            for b in (None, *BITS)
        ]
        cells = "".join(f" bits={b}: {r:.3f}" for b, r in zip(BITS, row[1:], strict=True))
        print(f"{name:<10} jax.nn {ref:.1f} MiB; exact {row[0]:.3f};{cells}")


def speed_section(batch: int, width: int, layers: int, repeats: int, bits: int) -> None:
    print(f"\n## Time ratio few-bit (bits={bits}) / jax.nn, f32: {repeats} interleaved pairs")
    print(f"of MLP steps ({batch}x{width}, {layers} layers), {5 * repeats} of the lone activation")
    print("median [min, max] of per-pair ratios")
    w, x = mlp_data(jax.random.key(0), batch, width, layers)
    g = jax.random.normal(jax.random.key(1), x.shape)

    def sgd_step(act: Act) -> Callable[..., Any]:
        grad = jax.grad(mlp_loss(act))

        @jax.jit
        def step(w: list[Array], x: Array) -> list[Array]:
            return [wi - 1e-3 * gi for wi, gi in zip(w, grad(w, x), strict=True)]

        return step

    for name, (base, _, _) in PAIRS.items():
        ours = variant(name, bits)
        cells = []
        # The lone kernel takes milliseconds: 5x the pairs, for the same wall time budget.
        for make, args, n in (
            (sgd_step, (w, x), repeats),
            (lambda f: jax.jit(models.forward_backward(f)), (x, g), 5 * repeats),
        ):
            fa, fb = make(base), make(ours)
            fns = {"jax.nn": functools.partial(fa, *args), "few": functools.partial(fb, *args)}
            t = interleave(fns, n, warmup=2)
            s = ratio_stats(t.times["few"], t.times["jax.nn"])
            cells.append(f"{s.median:.2f} [{s.min:.2f}, {s.max:.2f}]")
        print(f"{name:<10} MLP step {cells[0]}   lone fwd+bwd {cells[1]}")


def cosine_section(mlp: tuple[int, int, int], tf: dict[str, int]) -> None:
    print("\n## Cosine similarity of exact and few-bit parameter gradients at init, f32")
    batch, width, layers = mlp
    w, x = mlp_data(jax.random.key(2), batch, width, layers)
    params, xt = transformer_init(
        jax.random.key(3), tf["layers"], tf["batch"], tf["seq"], tf["width"]
    )
    for name in ("gelu", "silu", "elu"):
        exact = jax.grad(mlp_loss(variant(name, None)))(w, x)
        row = [cosine(exact, jax.grad(mlp_loss(variant(name, b)))(w, x)) for b in BITS]
        print(
            f"MLP {name:<12}"
            + "".join(f" bits={b}: {c:.4f}" for b, c in zip(BITS, row, strict=True))
        )
    exact = jax.grad(transformer_loss(variant("gelu", None), tf["heads"]))(params, xt)
    row = [
        cosine(exact, jax.grad(transformer_loss(variant("gelu", b), tf["heads"]))(params, xt))
        for b in BITS
    ]
    print(
        "transformer gelu" + "".join(f" bits={b}: {c:.4f}" for b, c in zip(BITS, row, strict=True))
    )


def _scaled_normal(derivative: _few_bit.NumpyFn, scale: float) -> _few_bit.NumpyFn:
    # E_{x ~ N(0, s²)}[(f'(x) - q(x))²] = E_{z ~ N(0,1)}[(f'(sz) - q(sz))²]
    return lambda z: derivative(scale * z)


def fidelity_section(fewbit_npz: str | None) -> None:
    print("\n## L2 error of the few-bit derivative q against f'")
    print("uniform: ∫(f' - q)² on [-100, 100] (minimised); normal: E[(f'(x) - q(x))²], x ~ N(0,1)")
    reference = np.load(fewbit_npz) if fewbit_npz else None
    print(f"{'activation':<10} {'bits':>4} {'uniform':>9} {'normal':>9}", end="")
    print(f" {'fewbit uniform':>15} {'fewbit normal':>14}" if reference is not None else "")
    derivatives = {}
    for api, params in _few_bit_generate.builtin_defaults():
        fn = getattr(rx, api)
        name = f"{api}_tanh" if dict(params).get("approximate") is True else api
        d = derivatives[name] = _few_bit.numpy_derivative(functools.partial(fn, **dict(params)))
        for b in BITS:
            t = _few_bit.builtin(api, fn, b, **dict(params)).table
            line = f"{name:<10} {b:>4} {_few_bit.l2_error(d, t):>9.5f}"
            line += f" {_few_bit.l2_error(d, t, weight='normal'):>9.5f}"
            if reference is not None and name != "gelu_tanh":
                key = f"{api}{b:02d}"  # fewbit's gelu is the exact form, as torch's
                theirs = _few_bit.FewBitTable(
                    tuple(reference[f"{key}-borders"][1:-1]), tuple(reference[f"{key}-levels"])
                )
                line += f" {_few_bit.l2_error(d, theirs):>15.5f}"
                line += f" {_few_bit.l2_error(d, theirs, weight='normal'):>14.5f}"
            print(line)

    scales = (0.5, 1.0, 2.0, 4.0, 10.0)
    print("\n## Which error to fit: E[(f'(x) - q(x))²] for x ~ N(0, s²)")
    print("rectax's unweighted table / a table fitted to the normal-weighted error, and their")
    print("outermost levels (q at -inf and +inf)")
    for name in ("gelu", "silu", "elu", "softplus"):
        d = derivatives[name]
        for b in (2, 3, 4):
            uniform = _few_bit.optimal_table(d, b)
            normal = _few_bit.optimal_table(d, b, weight="normal")
            cells = ""
            for s in scales:
                ds = _scaled_normal(d, s)
                eu = _few_bit.l2_error(ds, _scaled(uniform, s), weight="normal")
                en = _few_bit.l2_error(ds, _scaled(normal, s), weight="normal")
                cells += f" s={s:g}: {eu:.1e}/{en:.1e}"
            ends = (
                f" ends {uniform.levels[0]:+.4f},{uniform.levels[-1]:.4f}"
                f" / {normal.levels[0]:+.4f},{normal.levels[-1]:.4f}"
            )
            print(f"{name:<9} bits={b}{cells}{ends}")


def _scaled(table: _few_bit.FewBitTable, scale: float) -> _few_bit.FewBitTable:
    """The table as a function of ``z = x / s`` (so that ``z`` is standard normal)."""
    return _few_bit.FewBitTable(tuple(b / scale for b in table.borders), table.levels)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.few_bit", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, few repeats")
    parser.add_argument("--repeats", type=int, default=None, help="interleaved timing pairs")
    parser.add_argument("--bits", type=int, default=4, help="width for the timing section")
    parser.add_argument("--fewbit-npz", default=None, help="skolai/fewbit's builtin.npz")
    parser.add_argument(
        "--sections",
        default="memory,speed,cosine,fidelity",
        help="comma-separated subset of memory,speed,cosine,fidelity",
    )
    parser.add_argument("--output", type=Path, default=None, help="write the tables here")
    args = parser.parse_args(argv)
    if args.output is None:
        run(args)
        return
    args.output.parent.mkdir(parents=True, exist_ok=True)
    with args.output.open("w", encoding="utf-8") as f, contextlib.redirect_stdout(f):
        run(args)
    print(f"Few-bit residuals (memory, speed, gradient fidelity): {args.output}")


def run(args: argparse.Namespace) -> None:
    if args.quick:
        mlp = (256, 128, 8)
        tf = {"layers": 2, "batch": 2, "seq": 64, "width": 64, "heads": 4}
        repeats = args.repeats or 5
    else:
        mlp = (2048, 1024, 8)
        tf = {"layers": 4, "batch": 8, "seq": 256, "width": 256, "heads": 4}
        repeats = args.repeats or 15
    sections = set(args.sections.split(","))
    print(
        f"# rectax few-bit residuals: jax {jax.__version__}, {jax.devices()[0].platform}, "
        f"{platform.machine()}"
    )
    if "memory" in sections:
        memory_section(*mlp, tf)
    if "speed" in sections:
        speed_section(*mlp, repeats, args.bits)
    if "cosine" in sections:
        cosine_section(mlp, tf)
    if "fidelity" in sections:
        fidelity_section(args.fewbit_npz)


if __name__ == "__main__":
    main()
