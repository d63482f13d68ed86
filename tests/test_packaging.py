"""What a user installs: the wheel holds only ``rectax`` and imports from a clean virtualenv; the
sdist holds everything the tests read and builds the same wheel; the metadata says who, where
and under which license."""

from __future__ import annotations

import email
import email.message
import os
import re
import subprocess
import sys
import tarfile
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


def _metadata(wheel: Path) -> email.message.Message:
    archive = zipfile.ZipFile(wheel)
    name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
    return email.message_from_bytes(archive.read(name))


def test_wheel_metadata_names_the_project(wheel: Path):
    meta = _metadata(wheel)
    urls = dict(entry.split(", ", 1) for entry in meta.get_all("Project-URL"))
    assert set(urls) >= {"Homepage", "Documentation", "Source", "Issues", "Changelog"}
    assert all(url.startswith("https://") for url in urls.values())
    assert meta["Author"]
    assert meta["License-Expression"] == "Apache-2.0"
    assert "Typing :: Typed" in meta.get_all("Classifier")
    # Published extras hold runtime dependencies only; development tools are dependency groups.
    assert meta.get_all("Provides-Extra") == ["flax"]
    extras = [r for r in meta.get_all("Requires-Dist") if "extra ==" in r]
    assert not any("==" in r.split(";")[0] for r in extras), extras
    # The version is the git tag's, or a development version before the first tag.
    assert re.fullmatch(r"\d+\.\d+\.\d+(\.dev\d+)?(\+[\w.]+)?", meta["Version"]), meta["Version"]


@pytest.mark.slow
def test_sdist_holds_what_the_tests_read_and_builds_the_wheel(tmp_path: Path):
    subprocess.run(
        [sys.executable, "-m", "build", "--sdist", "-o", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (sdist,) = tmp_path.glob("rectax-*.tar.gz")
    with tarfile.open(sdist) as archive:
        archive.extractall(tmp_path, filter="data")
    (tree,) = (p for p in tmp_path.iterdir() if p.is_dir())
    for needed in [
        "rectax/py.typed",
        "benchmarks/__main__.py",
        "examples/train.py",
        "tests/conftest.py",
        "docs/conf.py",
        "CHANGELOG.md",
        "Makefile",
    ]:
        assert (tree / needed).is_file(), needed
    # Every module the tests import from the repository's top level is in the sdist.
    for test in (ROOT / "tests").glob("test_*.py"):
        for top in re.findall(
            r"^(?:from|import) (benchmarks|examples|train|reproduce_rai)\b",
            test.read_text(),
            flags=re.M,
        ):
            name = {"train": "examples/train.py", "reproduce_rai": "examples/reproduce_rai.py"}
            assert (tree / name.get(top, top)).exists(), (test.name, top)
    # The sdist (no git history) builds a wheel with the sdist's version.
    out = tmp_path / "wheel"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(tree), "-w", str(out)],
        check=True,
    )
    (built,) = out.glob("rectax-*.whl")
    assert _metadata(built)["Version"] == sdist.name.removeprefix("rectax-").removesuffix(".tar.gz")


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


@pytest.mark.parametrize(
    ("module", "missing"),
    [("rectax.linen", "flax"), ("rectax.nnx", "flax"), ("rectax.optim", "optax")],
)
def test_flax_modules_without_the_extra_name_it(module: str, missing: str):
    # A fresh interpreter where the package cannot be imported, as in `pip install rectax`.
    code = (
        "import sys, importlib\n"
        f"sys.modules[{missing!r}] = None\n"
        "import rectax, rectax.initializers, rectax.diagnostics\n"
        "try:\n"
        f"    importlib.import_module({module!r})\n"
        "except ImportError as error:\n"
        "    print(type(error).__name__, error)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"ImportError {module} needs {missing}"), result.stdout
    assert "pip install 'rectax[flax]'" in result.stdout


def test_other_missing_modules_are_not_blamed_on_the_extra():
    from rectax._optional import missing_extra

    error = ModuleNotFoundError("No module named 'scipy'", name="scipy")
    assert missing_extra("rectax.linen", error) is error
