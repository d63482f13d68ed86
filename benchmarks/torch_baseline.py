"""Optional PyTorch baselines (``torch.nn.functional``), used only when torch is importable.

torch is not a dependency of rectax; the harness never installs it. Its eager kernels are timed
with the same interleaving as the JAX variants, synchronising CUDA when the tensor lives there.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from benchmarks.cases import LEAKY_SLOPE, PRELU_SLOPE, RRELU_LOWER, RRELU_UPPER

_TORCH_DTYPES = {"f32": "float32", "bf16": "bfloat16", "f16": "float16"}


def load() -> Any | None:
    """The torch module, or None when it is not importable."""
    try:
        return importlib.import_module("torch")
    except ImportError:
        return None


def function(torch: Any, activation: str) -> tuple[str, Callable[[Any], Any]] | None:
    """(name, fn) of torch's counterpart of ``activation``, or None when it has none."""
    F = torch.nn.functional
    table: dict[str, tuple[str, Callable[[Any], Any]]] = {
        "relu": ("F.relu", F.relu),
        "relu6": ("F.relu6", F.relu6),
        "leaky_relu": (f"F.leaky_relu({LEAKY_SLOPE})", lambda x: F.leaky_relu(x, LEAKY_SLOPE)),
        "prelu": (
            f"F.prelu({PRELU_SLOPE})",
            lambda x: F.prelu(x, torch.full((1,), PRELU_SLOPE, dtype=x.dtype, device=x.device)),
        ),
        "rrelu": (
            "F.rrelu(training=True)",
            lambda x: F.rrelu(x, RRELU_LOWER, RRELU_UPPER, training=True),
        ),
        "elu": ("F.elu", F.elu),
        "celu": ("F.celu", F.celu),
        "selu": ("F.selu", F.selu),
        "gelu_tanh": ("F.gelu(approximate='tanh')", lambda x: F.gelu(x, approximate="tanh")),
        "gelu_exact": ("F.gelu", F.gelu),
        "silu": ("F.silu", F.silu),
        "softplus": ("F.softplus", F.softplus),
        "hard_tanh": ("F.hardtanh", F.hardtanh),
        "squared_relu": ("F.relu(x).square()", lambda x: F.relu(x).square()),
    }
    return table.get(activation)


def make_call(
    torch: Any, fn: Callable[[Any], Any], mode: str, x_np: Any, dtype: str, platform: str
) -> Callable[[], None]:
    """A zero-argument launcher for ``mode`` that returns once the device is done."""
    dev = "cuda" if platform == "gpu" and torch.cuda.is_available() else "cpu"
    x = torch.tensor(x_np).to(device=dev, dtype=getattr(torch, _TORCH_DTYPES[dtype]))
    g = torch.ones_like(x)
    leaf = x.detach().requires_grad_(True)

    def sync() -> None:
        if dev == "cuda":
            torch.cuda.synchronize()

    def forward() -> None:
        with torch.no_grad():
            fn(x)
        sync()

    def forward_backward() -> None:
        y = fn(leaf)
        torch.autograd.grad(y, leaf, g)
        sync()

    return forward if mode == "forward" else forward_backward
