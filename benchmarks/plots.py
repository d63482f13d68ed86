"""PNG figures saved next to the JSON: throughput vs size against the copy roofline, memory bars,
and a heat map of rectax/baseline time ratios.

Drawn on matplotlib's Agg canvas through :class:`~matplotlib.figure.Figure` (no pyplot state, no
display needed).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from benchmarks.cases import RECTAX
from benchmarks.runner import Row

MIB = 2**20


def _save(fig: Figure, path: Path) -> None:
    FigureCanvasAgg(fig)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def throughput(rows: Sequence[Row], dtype: str, path: Path) -> Path | None:
    """GB/s vs size, one panel per activation, every library's forward (solid) and fwd+bwd
    (dashed), and the copy roofline (grey)."""
    ew = [r for r in rows if r.kind in ("elementwise", "roofline") and r.dtype == dtype and r.gbps]
    acts = sorted({r.activation for r in ew if r.kind == "elementwise"})
    if not acts:
        return None
    cols = min(4, len(acts))
    nrows = math.ceil(len(acts) / cols)
    fig = Figure(figsize=(4 * cols, 3 * nrows))
    axes = fig.subplots(nrows, cols, squeeze=False)
    for ax, act in zip(axes.flat, acts, strict=False):
        mine = [r for r in ew if r.activation == act]
        for mode, style in (("forward", "-"), ("fwd+bwd", "--")):
            for label in sorted({r.label for r in mine if r.kind == "elementwise"}):
                pts = sorted(
                    (r.size, r.gbps or 0.0) for r in mine if r.label == label and r.mode == mode
                )
                if pts:
                    xs, ys = zip(*pts, strict=True)
                    ax.plot(xs, ys, style, marker="o", ms=3, label=f"{label} {mode}")
        roof = sorted(
            (r.size, r.gbps or 0.0) for r in mine if r.kind == "roofline" and r.mode == "forward"
        )
        if roof:
            xs, ys = zip(*roof, strict=True)
            ax.plot(xs, ys, color="grey", lw=3, alpha=0.5, label="copy roofline")
        ax.set_xscale("log", base=2)
        ax.set_title(act, fontsize=9)
        ax.set_xlabel("elements")
        ax.set_ylabel("GB/s")
        ax.legend(fontsize=5)
    for ax in list(axes.flat)[len(acts) :]:
        ax.axis("off")
    fig.suptitle(f"Effective bandwidth (read + write bytes / median time), {dtype}")
    _save(fig, path)
    return path


def memory_bars(rows: Sequence[Row], path: Path) -> Path | None:
    """Compiled temp memory of the training steps (rectax vs primary baseline) and residual
    bytes per element."""
    panels: list[tuple[str, list[Row], str]] = [
        (
            "MLP-ref temp (MiB)",
            [r for r in rows if r.kind == "memory" and r.mode == "mlp-ref"],
            "t",
        ),
        ("MLP step temp (MiB)", [r for r in rows if r.kind == "train" and r.mode == "mlp"], "t"),
        ("CNN step temp (MiB)", [r for r in rows if r.kind == "train" and r.mode == "cnn"], "t"),
        (
            "residual bytes / element",
            [r for r in rows if r.kind == "memory" and r.mode == "residuals"],
            "r",
        ),
    ]
    panels = [p for p in panels if p[1]]
    if not panels:
        return None
    fig = Figure(figsize=(12, 3.2 * len(panels)))
    axes = fig.subplots(len(panels), 1, squeeze=False)
    for ax, (title, group, what) in zip(axes[:, 0], panels, strict=True):
        acts = list(dict.fromkeys(r.activation for r in group))
        mine, base = [], []
        for act in acts:
            rs = [r for r in group if r.activation == act and r.dtype == group[0].dtype]
            r_m = next((r for r in rs if r.library == RECTAX), None)
            r_b = next((r for r in rs if r.library != RECTAX), None)

            def value(r: Row | None, what: str = what) -> float:
                if r is None:
                    return 0.0
                if what == "t":
                    return (r.temp_bytes or 0) / MIB
                return r.residual_bytes_per_element or 0.0

            mine.append(value(r_m))
            base.append(value(r_b))
        x = np.arange(len(acts))
        ax.bar(x - 0.2, mine, 0.4, label="rectax")
        ax.bar(x + 0.2, base, 0.4, label="baseline (jax.nn)")
        ax.set_xticks(x, acts, rotation=30, ha="right", fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=8)
    _save(fig, path)
    return path


def ratio_heatmap(rows: Sequence[Row], path: Path) -> Path | None:
    """t(rectax)/t(jax.nn) per activation (rows) and case (columns); green is faster."""
    mine = [
        r
        for r in rows
        if r.library == RECTAX and r.ratio is not None and r.kind in ("elementwise", "train")
    ]
    if not mine:
        return None

    def column(r: Row) -> str:
        size = f" 2^{r.size.bit_length() - 1}" if r.size else ""
        return f"{r.mode}{size} {r.dtype}"

    acts = list(dict.fromkeys(r.activation for r in mine))
    cols = list(dict.fromkeys(column(r) for r in mine))
    grid = np.full((len(acts), len(cols)), np.nan)
    for r in mine:
        grid[acts.index(r.activation), cols.index(column(r))] = r.ratio or np.nan
    fig = Figure(figsize=(1.0 + 0.9 * len(cols), 1.0 + 0.45 * len(acts)))
    ax = fig.subplots()
    image = ax.imshow(grid, cmap="RdYlGn_r", vmin=0.5, vmax=1.5, aspect="auto")
    ax.set_xticks(range(len(cols)), cols, rotation=40, ha="right", fontsize=7)
    ax.set_yticks(range(len(acts)), acts, fontsize=8)
    for (i, j), v in np.ndenumerate(grid):
        if not np.isnan(v):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=6)
    fig.colorbar(image, ax=ax, label="t(rectax) / t(baseline)")
    ax.set_title("rectax time ratio to the primary baseline (median of per-pair ratios)")
    _save(fig, path)
    return path


def write_all(rows: Sequence[Row], stem: Path) -> list[Path]:
    """Writes every figure as ``<stem>_<name>.png``; returns the paths written."""
    written: list[Path | None] = []
    for dtype in dict.fromkeys(r.dtype for r in rows if r.kind == "elementwise"):
        written.append(
            throughput(rows, dtype, stem.with_name(f"{stem.name}_throughput_{dtype}.png"))
        )
    written.append(memory_bars(rows, stem.with_name(f"{stem.name}_memory.png")))
    written.append(ratio_heatmap(rows, stem.with_name(f"{stem.name}_ratio_heatmap.png")))
    return [p for p in written if p is not None]
