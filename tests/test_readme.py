"""Every Python block of README.md and docs/*.md runs as a reader would run it: in order, each file
in one namespace (a later block may use names an earlier one defined)."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)


def test_readme_and_docs_have_examples():
    assert len(blocks(ROOT / "README.md")) >= 2
    assert sum(len(blocks(p)) for p in FILES) >= 8


@pytest.mark.standard_promotion  # the examples build optax optimizers
@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_examples_run_in_order(path: Path):
    namespace: dict = {}
    for index, block in enumerate(blocks(path)):
        exec(compile(block, f"{path.name}[python block {index}]", "exec"), namespace)


def test_readme_printed_values():
    """The README's quick-start comment shows NecroReLU's gradient; it is what rectax returns."""
    namespace: dict = {}
    exec(compile(blocks(ROOT / "README.md")[0], "README.md[0]", "exec"), namespace)
    jax, rx, x = namespace["jax"], namespace["rx"], namespace["x"]
    grad = jax.grad(lambda v: rx.necro_relu(v, 0.1).sum())(x)
    assert [round(float(g), 6) for g in grad] == [0.1, 0.1, 0.1, 0.1, 1.0, 1.0, 1.0]
