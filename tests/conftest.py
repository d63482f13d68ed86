"""Test-wide setup: 4 forced host devices (for shard_map) before jax starts its backend."""

import os

# The compile-only targets (tests/test_targets.py): the CUDA plugin must load without CUDA
# libraries, and libtpu must not lock the TPU to one process (xdist runs two); tests still run on
# the CPU backend.
os.environ.setdefault("JAX_SKIP_CUDA_CONSTRAINTS_CHECK", "1")
os.environ.setdefault("ALLOW_MULTIPLE_LIBTPU_LOAD", "1")

_FLAG = "--xla_force_host_platform_device_count=4"
if _FLAG not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {_FLAG}".strip()

import jax  # noqa: E402  (must come after XLA_FLAGS)
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def strict_promotion(request):
    """Every rectax test runs under strict dtype promotion, as jax's initializer tests do: a silent
    upcast (a float32 constant promoting bf16 data) is an error. The vendored peer suites keep
    their own configuration, and tests marked ``standard_promotion`` run code of optax or flax
    that promotes implicitly (optax's bias correction, flax's ``avg_pool``)."""
    if "peer" in request.node.path.parts or request.node.get_closest_marker("standard_promotion"):
        yield
        return
    with jax.numpy_dtype_promotion("strict"):
        yield


def pytest_ignore_collect(collection_path, config):
    """The vendored peer suites swap rectax into jax.nn for their whole process: they run only
    when asked for by path (``pytest tests/peer``, as ``make test`` does), never beside the rest."""
    if collection_path.name == "peer" and not any("peer" in str(a) for a in config.args):
        return True
    return None
