"""Every Python block of README.md and docs/*.md runs as a reader would run it: in order, each file
in one namespace (a later block may use names an earlier one defined). A ```text block right after
a ```python block is that block's output: what it prints must be exactly that text."""

import contextlib
import io
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"```python\n(.*?)```(?:[ \t]*\n+```text\n(.*?)```)?", flags=re.S)


def blocks(path: Path) -> list[tuple[str, str | None]]:
    """(code, shown output or None) of each ```python block."""
    return [(code, shown or None) for code, shown in BLOCK.findall(path.read_text())]


def _lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.strip("\n").splitlines()]


def test_readme_and_docs_have_examples():
    assert len(blocks(ROOT / "README.md")) >= 2
    assert sum(len(blocks(p)) for p in FILES) >= 8
    # The outputs shown are checked below; the README's quick-start and Flax blocks show theirs.
    assert all(shown is not None for _, shown in blocks(ROOT / "README.md"))
    assert sum(shown is not None for p in FILES for _, shown in blocks(p)) >= 4


@pytest.mark.standard_promotion  # the examples build optax optimizers
@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_examples_run_in_order_and_print_what_they_show(path: Path):
    namespace: dict = {}
    for index, (code, shown) in enumerate(blocks(path)):
        where = f"{path.name}[python block {index}]"
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(compile(code, where, "exec"), namespace)
        if shown is not None:
            assert _lines(printed.getvalue()) == _lines(shown), where
