"""What a user installs: the wheel holds only ``rectax`` and imports from a clean virtualenv."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(ROOT), "-w", str(out)],
        check=True,
    )
    (path,) = out.glob("rectax-*.whl")
    return path


def test_wheel_holds_only_rectax(wheel: Path):
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names}
    assert top == {"rectax", wheel.name.split("-py3")[0] + ".dist-info"}, top
    assert "rectax/py.typed" in names
    assert any(name.endswith("licenses/LICENSE") for name in names)
    metadata = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("METADATA")))
    assert b"entry_points" not in metadata
    assert not any("entry_points" in n for n in names)


@pytest.mark.slow
def test_wheel_imports_in_a_clean_venv(wheel: Path, tmp_path: Path):
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", f"{wheel}[flax]"], check=True, cwd=tmp_path
    )
    code = (
        "import rectax, rectax.linen, rectax.nnx, rectax.initializers as i; "
        "import jax.numpy as jnp; "
        f"assert rectax.__file__.startswith({str(env_dir)!r}); "
        "print(float(rectax.relu(jnp.float32(2.0))), i.he_normal is not None)"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # only the venv's rectax
    result = subprocess.run(
        [str(python), "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["2.0", "True"]
