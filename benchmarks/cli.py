"""Command line: ``python -m benchmarks`` (run) and ``python -m benchmarks compare OLD NEW``.

This module does not import JAX: ``--backend`` and ``--host-devices`` must reach JAX through the
environment before it initialises, so the run itself lives in :mod:`benchmarks.session`, imported
once the environment is set.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "latest.json"
_FORCE = "--xla_force_host_platform_device_count"


def parse_sizes(tokens: Sequence[str]) -> tuple[int, ...]:
    """Sizes as powers of two: ``24`` or ``2^24`` is 2**24 elements; ``10:26:2`` is a range of
    exponents (inclusive, step 2)."""
    sizes: list[int] = []
    for token in tokens:
        for part in token.split(","):
            part = part.strip()
            if not part:
                continue
            if ":" in part:
                bounds = [int(p) for p in part.split(":")]
                step = bounds[2] if len(bounds) > 2 else 1
                sizes += [2**k for k in range(bounds[0], bounds[1] + 1, step)]
            else:
                sizes.append(2 ** int(re.sub(r"^2\^", "", part)))
    return tuple(sizes)


def _names(tokens: Sequence[str] | None) -> tuple[str, ...] | None:
    if tokens is None:
        return None
    return tuple(n for t in tokens for n in t.split(",") if n)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=(
            "Benchmark rectax activations against jax.nn, flax and (if importable) torch. "
            "Subcommand: 'compare OLD.json NEW.json' (see 'python -m benchmarks compare -h')."
        ),
    )
    p.add_argument("--quick", action="store_true", help="the representative subset (make bench)")
    p.add_argument("--activations", nargs="+", metavar="NAME", help="activations (default all)")
    p.add_argument(
        "--sizes",
        nargs="+",
        metavar="EXP",
        help="element counts as exponents of 2: 12 24 or 10:26:2",
    )
    p.add_argument("--dtypes", nargs="+", metavar="DTYPE", help="f32 bf16 f16")
    p.add_argument(
        "--modes",
        nargs="+",
        metavar="MODE",
        help="forward fwd+bwd mlp cnn memory init multidevice (default all)",
    )
    p.add_argument(
        "--zoo",
        nargs="+",
        metavar="MODEL",
        help="zoo models (default all): mnist mnist-nnx resnet gpt-gelu gpt-swiglu gpt-relu "
        "gpt-sqrelu mlp",
    )
    p.add_argument("--repeats", type=int, help="timed interleaved rounds per case")
    p.add_argument("--warmup", type=int, help="untimed rounds before timing")
    p.add_argument("--backend", help="JAX platform to use: cpu, cuda, rocm, tpu (JAX_PLATFORMS)")
    p.add_argument("--device", type=int, default=0, help="index of the device to run on")
    p.add_argument(
        "--host-devices",
        type=int,
        help="CPU only: forced host devices for the multidevice mode "
        "(default 2 with --quick, else the CPU count; 0 leaves XLA_FLAGS alone)",
    )
    p.add_argument("--no-torch", action="store_true", help="skip the optional PyTorch baseline")
    p.add_argument("--no-plots", action="store_true", help="do not write PNG figures")
    p.add_argument("--seed", type=int, default=0, help="PRNG seed for inputs and parameters")
    p.add_argument(
        "--output", type=Path, default=DEFAULT_OUTPUT, help=f"JSON path (default {DEFAULT_OUTPUT})"
    )
    p.add_argument("--list", action="store_true", help="print the cases and exit")
    return p


def build_compare_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks compare",
        description="Regressions and improvements between two runs.",
    )
    p.add_argument("old", type=Path)
    p.add_argument("new", type=Path)
    p.add_argument("--threshold", type=float, default=0.05, help="relative change to report")
    p.add_argument(
        "--fail-on-regression", action="store_true", help="exit with status 1 on any regression"
    )
    return p


def configure_environment(args: argparse.Namespace) -> None:
    """Sets JAX_PLATFORMS and the forced host-device count; effective only before JAX starts."""
    if args.backend:
        os.environ["JAX_PLATFORMS"] = args.backend
    count = args.host_devices
    if count is None:
        count = 2 if args.quick else os.cpu_count() or 1
    flags = os.environ.get("XLA_FLAGS", "")
    if count > 0 and _FORCE not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} {_FORCE}={count}".strip()


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "compare":
        from benchmarks import session  # after the environment: see the docstring

        return session.compare_main(build_compare_parser().parse_args(argv[1:]))
    args = build_parser().parse_args(argv)
    args.activations = _names(args.activations)
    args.dtypes = _names(args.dtypes)
    args.modes = _names(args.modes)
    args.zoo = _names(args.zoo)
    args.sizes = parse_sizes(args.sizes) if args.sizes else None
    configure_environment(args)
    from benchmarks import session  # JAX starts only now

    return session.run_main(args, argv)
