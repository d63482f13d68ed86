"""Test-wide setup: 4 forced host devices (for shard_map) before jax starts its backend."""

import os

_FLAG = "--xla_force_host_platform_device_count=4"
if _FLAG not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {_FLAG}".strip()

import jax  # noqa: E402  (must come after XLA_FLAGS)
import pytest  # noqa: E402


@pytest.fixture
def strict_promotion():
    """Turns silent dtype promotion (a float32 constant upcasting bf16 data) into an error."""
    with jax.numpy_dtype_promotion("strict"):
        yield
