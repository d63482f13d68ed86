"""The error for a module whose optional dependencies (the ``rectax[flax]`` extra) are missing."""

from __future__ import annotations

EXTRA_PACKAGES = frozenset({"flax", "optax"})


def missing_extra(module: str, error: ModuleNotFoundError) -> BaseException:
    """An ImportError naming the extra to install when ``error`` is about a package of it.

    Any other missing module (a broken install of something else) is returned unchanged.
    """
    top = (error.name or "").partition(".")[0]
    if top not in EXTRA_PACKAGES:
        return error
    return ImportError(
        f"{module} needs {top}, which rectax installs only with its 'flax' extra: "
        f"pip install 'rectax[flax]' (No module named {error.name!r})",
        name=module,
    )
