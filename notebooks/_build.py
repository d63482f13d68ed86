"""Builds the exploration notebooks from their percent-format sources and executes them.

Each ``notebooks/_src/NN_name.py`` is a script split into cells by ``# %%`` lines
(``# %% [markdown]`` cells hold Markdown as ``# `` comments). This script turns each into
``notebooks/NN_name.ipynb``, executes it top to bottom with nbclient and saves it with its
outputs, so the notebooks read well on a code host and ``pytest --nbmake notebooks`` re-runs
exactly what is committed.

Usage: ``.venv/bin/python notebooks/_build.py [NN ...]`` (default: every source).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
SOURCES = HERE / "_src"


def cells(text: str) -> list[nbformat.NotebookNode]:
    """Splits a percent-format script into notebook cells."""
    out = []
    kind, lines = None, []

    def flush() -> None:
        body = "\n".join(lines).strip("\n")
        if kind == "markdown":
            body = "\n".join(
                line[2:] if line.startswith("# ") else line.lstrip("#") for line in body.split("\n")
            )
            out.append(nbformat.v4.new_markdown_cell(body))
        elif kind == "code" and body:
            out.append(nbformat.v4.new_code_cell(body))

    for line in text.split("\n"):
        if line.startswith("# %%"):
            flush()
            kind, lines = ("markdown" if "[markdown]" in line else "code"), []
        elif kind is not None:
            lines.append(line)
    flush()
    return out


def build(source: Path) -> float:
    """Writes and executes one notebook; returns its execution wall time in seconds."""
    nb = nbformat.v4.new_notebook()
    nb.cells = cells(source.read_text())
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    start = time.perf_counter()
    NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(HERE)}}
    ).execute()
    elapsed = time.perf_counter() - start
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
    nbformat.write(nb, HERE / f"{source.stem}.ipynb")
    return elapsed


def main(argv: list[str]) -> None:
    sources = sorted(SOURCES.glob("*.py"))
    if argv:
        sources = [s for s in sources if any(s.name.startswith(a) for a in argv)]
    for source in sources:
        print(f"{source.stem}: {build(source):.1f} s", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
