# %% [markdown]
# # 06 · Benchmarks: speed and memory against the roofline
#
# **Question.** How fast are rectax's activations compared with `jax.nn`, relative to the
# hardware limit (the *roofline*: an elementwise op is memory-bound, so its limit is the
# device's copy bandwidth, measured in the same run), and how much memory does a training step
# keep? CPU and GPU side by side when both have results.
#
# This notebook only *reads* what the benchmark harness wrote (`make bench` →
# `benchmarks/results/*.json`; the format is documented in `benchmarks/README.md`). It runs
# nothing heavy, and it says so when there are no results yet.
# Set `RECTAX_BENCH_RESULTS` to read another directory.

# %%
import json
import os
from collections import defaultdict
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

plt.rcParams.update({"figure.dpi": 80, "axes.grid": True, "grid.alpha": 0.3})


def results_dir():
    if "RECTAX_BENCH_RESULTS" in os.environ:
        return Path(os.environ["RECTAX_BENCH_RESULTS"])
    for candidate in (Path("../benchmarks/results"), Path("benchmarks/results")):
        if candidate.is_dir():
            return candidate
    return Path("../benchmarks/results")


RESULTS = results_dir()
runs = []
for path in sorted(RESULTS.glob("*.json")):
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        print(f"skipping {path.name}: {exc}")
        continue
    if not isinstance(data, dict) or not isinstance(data.get("rows"), list):
        print(f"skipping {path.name}: not a benchmark result (no 'rows')")
        continue
    env = data.get("environment", {})
    backend = str(env.get("backend", "unknown"))
    runs.append(
        {
            "path": path,
            "backend": backend,
            "device": env.get("device_kind", env.get("device", "?")),
            "created": data.get("created", ""),
            "quick": data.get("quick"),
            "rows": data["rows"],
            "goals": data.get("goals", []),
            "env": env,
        }
    )
    print(
        f"{path.name}: backend {backend}, device {runs[-1]['device']}, created "
        f"{runs[-1]['created']}, "
        f"{len(data['rows'])} rows, quick={data.get('quick')}, jax {env.get('jax', '?')}"
    )

# the newest run per backend ("cpu", "gpu"/"cuda", ...)
latest = {}
for run in sorted(runs, key=lambda r: r["created"]):
    latest[run["backend"]] = run
BACKENDS = sorted(latest, key=lambda b: (b != "cpu", b))
if not runs:
    print(
        f"No benchmark results found in {RESULTS.resolve()}.\n"
        "Run `make bench` (CPU, quick) or `python -m benchmarks --backend cuda` on a GPU machine, "
        "then re-run this notebook."
    )
else:
    print("\nshowing:", ", ".join(f"{b} ← {latest[b]['path'].name}" for b in BACKENDS))

# %% [markdown]
# ## 1. Elementwise throughput vs the roofline
#
# For each activation, the achieved bandwidth (bytes read + written per second) of rectax and
# `jax.nn` at the largest size measured, float32, forward and forward+backward; the dashed line
# is the copy-kernel roofline of the same run. `roofline_fraction` = achieved / roofline. On a
# shared CPU the copy kernel itself is noisy, so fractions somewhat above 1 occur; compare rectax
# with `jax.nn` within a run rather than reading single fractions literally.


# %%
def ok_rows(run, **match):
    return [
        r
        for r in run["rows"]
        if r.get("status") == "ok" and all(r.get(k) == v for k, v in match.items())
    ]


def pick_dtype(rows):
    dtypes = {r.get("dtype") for r in rows}
    return "f32" if "f32" in dtypes else (sorted(dtypes)[0] if dtypes else None)


elementwise = {}
for b in BACKENDS:
    rows = ok_rows(latest[b], kind="elementwise")
    dtype = pick_dtype(rows)
    rows = [r for r in rows if r.get("dtype") == dtype]
    if not rows:
        continue
    size = max(r.get("size", 0) for r in rows)
    elementwise[b] = {
        "dtype": dtype,
        "size": size,
        "rows": [r for r in rows if r.get("size") == size],
    }

modes = sorted({r["mode"] for e in elementwise.values() for r in e["rows"]})
if not elementwise:
    print("no elementwise rows in the results")
else:
    fig, axes = plt.subplots(
        len(modes),
        len(elementwise),
        figsize=(7.5 * len(elementwise), 3.8 * len(modes)),
        squeeze=False,
    )
    for j, (b, e) in enumerate(elementwise.items()):
        for i, mode in enumerate(modes):
            ax = axes[i, j]
            rows = [r for r in e["rows"] if r["mode"] == mode and r.get("gbps") is not None]
            acts = sorted({r["activation"] for r in rows})
            libs = sorted({r["library"] for r in rows}, key=lambda lib: (lib != "rectax", lib))
            width = 0.8 / max(len(libs), 1)
            for k, lib in enumerate(libs):
                vals = []
                for a in acts:
                    match = [
                        r["gbps"] for r in rows if r["activation"] == a and r["library"] == lib
                    ]
                    vals.append(max(match) if match else np.nan)
                ax.bar(
                    np.arange(len(acts)) + (k - (len(libs) - 1) / 2) * width, vals, width, label=lib
                )
            roof = [r["roofline_gbps"] for r in rows if r.get("roofline_gbps")]
            if roof:
                ax.axhline(float(np.median(roof)), ls="--", color="k", label="roofline (copy)")
            ax.set_xticks(np.arange(len(acts)), acts, rotation=45, ha="right", fontsize=8)
            ax.set_title(
                f"{b} ({latest[b]['device']}): {mode}, {e['dtype']}, {e['size']:,} elements",
                fontsize=9,
            )
            ax.set_ylabel("GB/s")
            ax.legend(fontsize=7)
    fig.tight_layout()
    plt.show()

# %%
fractions, jax_fractions = defaultdict(dict), defaultdict(dict)
for b, e in elementwise.items():
    print(
        f"\n{b}: roofline fraction (achieved / copy bandwidth), {e['dtype']}, {e['size']:,} "
        "elements"
    )
    print(
        f"{'activation':16s} {'mode':10s} {'rectax':>8s} {'jax.nn':>8s} {'time rectax/jax.nn':>19s}"
    )
    for r in sorted(e["rows"], key=lambda r: (r["activation"], r["mode"])):
        if r["library"] != "rectax":
            continue
        other = [
            o
            for o in e["rows"]
            if o["activation"] == r["activation"]
            and o["mode"] == r["mode"]
            and o["library"] == "jax.nn"
        ]
        rf = r.get("roofline_fraction")
        of = other[0].get("roofline_fraction") if other else None
        ratio = r.get("ratio")
        fractions[b][r["activation"], r["mode"]] = rf
        jax_fractions[b][r["activation"], r["mode"]] = of
        print(
            f"{r['activation']:16s} {r['mode']:10s} {rf if rf is not None else float('nan'):8.2f} "
            f"{of if of is not None else float('nan'):8.2f} "
            f"{ratio if ratio is not None else float('nan'):19.2f}"
        )

# %% [markdown]
# ## 2. Memory and training steps
#
# Three views: compiled temporary bytes of `jit(grad)` of the reference MLP (`memory`/`mlp-ref`
# rows, from `memory_analysis()`), residual bytes kept per activation element (`memory`/
# `residuals`), and whole training steps (`train` rows, median step time).

# %%
PANELS = (
    ("memory", "mlp-ref", "temp_bytes", 2**20, "compiled temp MiB"),
    ("memory", "residuals", "residual_bytes_per_element", 1, "residual bytes / element"),
    ("train", None, "median_s", 1e-3, "median step time (ms)"),
)
panels = []
for b in BACKENDS:
    for kind, mode, field, unit, ylabel in PANELS:
        rows = [
            r
            for r in ok_rows(latest[b], kind=kind)
            if (mode is None or r["mode"] == mode) and r.get(field) is not None
        ]
        if rows:
            panels.append(
                (b, kind if mode is None else f"{kind}: {mode}", rows, field, unit, ylabel)
            )
if not panels:
    print("no memory or train rows in the results")
else:
    cols = min(len(panels), 3)
    nrows = -(-len(panels) // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(6 * cols, 4 * nrows), squeeze=False)
    for ax, (b, title, rows, field, unit, ylabel) in zip(axes.flat, panels, strict=False):
        labels = sorted({(r["activation"], r["mode"], r.get("dtype")) for r in rows})
        libs = sorted({r["library"] for r in rows}, key=lambda lib: (lib != "rectax", lib))
        width = 0.8 / max(len(libs), 1)
        for k, lib in enumerate(libs):
            vals = []
            for lab in labels:
                match = [
                    r[field]
                    for r in rows
                    if (r["activation"], r["mode"], r.get("dtype")) == lab and r["library"] == lib
                ]
                vals.append(match[0] / unit if match else np.nan)
            ax.bar(
                np.arange(len(labels)) + (k - (len(libs) - 1) / 2) * width, vals, width, label=lib
            )
        ax.set_xticks(
            np.arange(len(labels)),
            [f"{a} {m}\n{d}" for a, m, d in labels],
            rotation=45,
            ha="right",
            fontsize=7,
        )
        ax.set_ylabel(ylabel)
        ax.set_title(f"{b} ({latest[b]['device']}): {title}", fontsize=9)
        ax.legend(fontsize=7)
    for ax in axes.flat[len(panels) :]:
        ax.set_visible(False)
    fig.tight_layout()
    plt.show()

mem_ratio, train_ratio = defaultdict(list), defaultdict(list)
for b in BACKENDS:
    for r in ok_rows(latest[b], kind="memory", mode="mlp-ref", library="rectax"):
        if r.get("temp_ratio") is not None:
            mem_ratio[b].append(r["temp_ratio"])
            print(
                f"{b}: mlp-ref {r['activation']:12s} rectax temp {r['temp_bytes'] / 2**20:7.1f} "
                "MiB = "
                f"{r['temp_ratio']:.3f} × {r.get('baseline') or 'baseline'}"
            )
    for r in ok_rows(latest[b], kind="train", library="rectax"):
        if r.get("ratio") is not None:
            train_ratio[b].append(r["ratio"])
            print(
                f"{b}: train {r['mode']:5s} {r['activation']:12s} {r.get('dtype')}: step time "
                f"{r['ratio']:.2f} × {r.get('baseline')} (interval "
                f"{r.get('ratio_low', r.get('ratio_min')) or float('nan'):.2f}-"
                f"{r.get('ratio_high', r.get('ratio_max')) or float('nan'):.2f})"
            )

# %% [markdown]
# ## Conclusion

# %%
if not runs:
    print(f"* No results in {RESULTS}: nothing to conclude yet. `make bench` writes them.")
for b in BACKENDS:
    vals = [v for v in fractions[b].values() if v is not None]
    if vals:
        best = max(fractions[b], key=lambda k: fractions[b][k] or 0)
        print(
            f"* {b} ({latest[b]['device']}): rectax elementwise kernels reach a median "
            f"{np.median(vals):.0%} of the copy roofline (range {min(vals):.0%}–{max(vals):.0%} "
            "over "
            f"{len(vals)} activation × mode cases; best {best[0]} {best[1]})."
        )
        pairs = [
            (fractions[b][k], jax_fractions[b][k])
            for k in fractions[b]
            if fractions[b][k] is not None and jax_fractions[b].get(k) is not None
        ]
        if pairs:
            ours, theirs = np.array(pairs).T
            print(
                f"* {b}: on the {len(pairs)} cases jax.nn also has, the median roofline fraction "
                f"is {np.median(ours):.0%} for rectax vs {np.median(theirs):.0%} for jax.nn; "
                f"rectax is as close or closer in {int(np.sum(ours >= theirs))} of them."
            )
    ratios = mem_ratio[b]
    if ratios:
        print(
            f"* {b}: compiled jit(grad) temporaries of the reference MLP with rectax are "
            f"{min(ratios):.2f}–{max(ratios):.2f}× jax.nn's (median {np.median(ratios):.2f}; "
            f"{sum(r < 1 for r in ratios)} of {len(ratios)} activations below 1)."
        )
    train_ratios = train_ratio[b]
    if train_ratios:
        print(
            f"* {b}: whole training steps take {np.median(train_ratios):.2f}× the jax.nn time "
            "(median over "
            f"{len(train_ratios)} cases, range {min(train_ratios):.2f}–{max(train_ratios):.2f})."
        )
if runs and len(BACKENDS) == 1:
    print(
        f"* Only {BACKENDS[0]} results exist; GPU results appear beside them once a GPU run is "
        "saved here."
    )
