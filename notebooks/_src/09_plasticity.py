# %% [markdown]
# # 09 · Loss of plasticity, and curing dead units while training
#
# **Questions.**
# 1. On a continual task built from digits (a sequence of label permutations, training on from
#    where the last task left off), does a plain ReLU MLP lose its ability to learn a new task,
#    as Dohare et al. (Nature 2024) found for Continual ImageNet?
# 2. Which remedy keeps it: an activation that cannot die (leaky ReLU, NecroReLU, CReLU), or
#    recycling dormant units while training with `rectax.recycle` (ReDo, Sokar et al. 2023;
#    continual backprop, Dohare et al. 2024)?
#
# This is the reduced run of `examples/continual.py` (same code, imported from it: 16 tasks of
# 200 Adam steps at learning rate 5e-3, 4 seeds); the full run (60 tasks of 300 steps at 3e-3,
# 8 seeds) is `python examples/continual.py`, with its figures in `docs/recycle.md`.

# %%
import importlib.util
import sys
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

T0 = time.perf_counter()
path = Path.cwd().parent / "examples" / "continual.py"
spec = importlib.util.spec_from_file_location("continual", path)
continual = importlib.util.module_from_spec(spec)
sys.modules["continual"] = continual
spec.loader.exec_module(continual)
plt.rcParams.update({"figure.dpi": 80, "axes.grid": True, "grid.alpha": 0.3})
cfg = continual.QUICK
print(cfg)

# %% [markdown]
# ## The six methods, side by side
#
# Each row: test accuracy on the first task and on the last 3 tasks (mean), their difference, all
# as mean [95% t-interval over seeds]; the fraction of hidden units that never fire on the
# training set at the end (per hidden layer); units recycled over the run.

# %%
result = continual.experiment(cfg)

# %%
fig, ax = plt.subplots(figsize=(8, 4.5))
tasks = np.arange(1, cfg.tasks + 1)
for name, m in result["methods"].items():
    acc = np.asarray(m["accuracy"])
    mean, sd = acc.mean(0), acc.std(0)
    ax.plot(tasks, mean, label=name)
    ax.fill_between(tasks, mean - sd, mean + sd, alpha=0.15)
ax.set(xlabel="task", ylabel="test accuracy at the end of the task", ylim=(0, 1.02))
ax.set_title(f"label-permuted digits, {cfg.seeds} seeds (band: ±1 sd)")
ax.legend(ncol=3, loc="lower left")
plt.show()

# %% [markdown]
# ## Conclusions (computed from the numbers above)

# %%
ms = result["methods"]
relu = ms["relu"]
print(
    f"* Plain ReLU: first task {relu['first'][0]:.3f}, last tasks {relu['last'][0]:.3f}; "
    f"drop {relu['drop'][0]:+.3f} [{relu['drop'][1]:+.3f}, {relu['drop'][2]:+.3f}] "
    + (
        "(the interval excludes 0: plasticity is lost)"
        if relu["drop"][1] > 0
        else "(the interval includes 0 in this reduced run)"
    )
    + f", with {np.round(relu['dead_fraction'], 2).tolist()} of its hidden units dead."
)
for name, m in ms.items():
    if name == "relu":
        continue
    kept = m["last"][0] >= relu["first"][1]
    print(
        f"* {name}: last tasks {m['last'][0]:.3f} [{m['last'][1]:.3f}, {m['last'][2]:.3f}], "
        f"drop {m['drop'][0]:+.3f}; "
        + ("within" if kept else "below")
        + " ReLU's first-task interval"
        + (f"; {m['recycled']:.0f} units recycled." if m["recycled"] else ".")
    )
print(f"(notebook body ran in {time.perf_counter() - T0:.0f} s)")
